/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: libp2p Noise XX frames and handshake payloads.
 *
 * Input: selector byte, then the data. selector % 5:
 *  0: a NoiseHandshakePayload given to pl__nxx_payload_verify;
 *  1: message 1 read by a responder, which then writes message 2;
 *  2: the responder's payload plaintext, encrypted honestly into message 2
 *     and read by the initiator (reaches payload checks through the
 *     handshake);
 *  3: the same for the initiator's payload in message 3;
 *  4: raw bytes through the framer and transport decryption after an
 *     honest handshake.
 * Properties: errors leave outputs empty and the handshake FAILED for good;
 * nothing crashes or leaks. */
#include "p2p/noise_xx.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static pl_p2p_key *ki, *kr;
static pl__nxx_identity idi, idr;
static const uint8_t ei[32] = {1, 2, 3}, er[32] = {4, 5, 6};

static void check(int cond) {
    if (!cond) abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    if (pl_init() != PL_OK) abort();
    uint8_t s1[32], s2[32];
    memset(s1, 7, 32);
    memset(s2, 9, 32);
    check(pl_p2p_key_from_secret(&ki, PL_P2P_KEY_ED25519, s1) == PL_OK);
    check(pl_p2p_key_from_secret(&kr, PL_P2P_KEY_SECP256K1, s2) == PL_OK);
    check(pl__nxx_identity_init(&idi, ki, s1) == PL_OK);
    check(pl__nxx_identity_init(&idr, kr, s2) == PL_OK);
    return 0;
}

static pl_err xfer(pl__nxx *w, pl__nxx *r) {
    uint8_t out[PL__NXX_MAX_FRAME + 2];
    size_t len = 0;
    pl_err e = pl__nxx_write(w, out, sizeof out, &len);
    if (e != PL_OK) return e;
    return pl__nxx_read(r, out + 2, len - 2);
}

static void after_error(pl__nxx *n, pl_err e) {
    if (e == PL_OK) return;
    check(pl__nxx_action_of(n) == PL__NXX_FAILED);
    check(pl__nxx_read(n, (const uint8_t *)"x", 1) == PL_ERR_NOISE_STATE);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > PL__NXX_MAX_FRAME) return 0;
    const uint8_t *in = data + 1;
    size_t n = size - 1;
    int mode = data[0] % 5;
    if (mode == 0) {
        pl__p2p_pubkey key;
        pl_p2p_peer_id peer;
        pl_err e = pl__nxx_payload_verify(in, n, idr.static_pub, &key, &peer);
        if (e != PL_OK)
            check(key.len == 0 && peer.len == 0);
        else
            check(peer.len > 0);
        return 0;
    }
    /* The payload under test replaces one side's honest payload. */
    pl__nxx_identity fi = idi, fr = idr;
    uint8_t *copy = NULL;
    if (mode == 2 || mode == 3) {
        copy = malloc(n ? n : 1);
        if (!copy) return 0;
        if (n) memcpy(copy, in, n);
        if (mode == 2)
            fr.payload = copy, fr.payload_len = n;
        else
            fi.payload = copy, fi.payload_len = n;
    }
    pl__nxx *a = NULL, *b = NULL;
    check(pl__nxx_new(&a, true, &fi, &idr.peer, ei) == PL_OK);
    check(pl__nxx_new(&b, false, &fr, NULL, er) == PL_OK);
    pl_err e;
    switch (mode) {
    case 1:
        e = pl__nxx_read(b, in, n);
        after_error(b, e);
        if (e == PL_OK) {
            uint8_t out[1024];
            size_t len = 0;
            e = pl__nxx_write(b, out, sizeof out, &len);
            after_error(b, e);
            if (e != PL_OK) check(len == 0);
        }
        break;
    case 2:
        check(xfer(a, b) == PL_OK);
        e = xfer(b, a);
        after_error(a, e);
        break;
    case 3:
        check(xfer(a, b) == PL_OK && xfer(b, a) == PL_OK);
        e = xfer(a, b);
        after_error(b, e);
        break;
    default: {
        check(xfer(a, b) == PL_OK && xfer(b, a) == PL_OK && xfer(a, b) == PL_OK);
        pl__nxx_framer f = {0};
        uint8_t *plain = malloc(PL__NXX_MAX_FRAME);
        size_t off = 0;
        while (plain && off < n) {
            size_t used = 0, fl = 0;
            const uint8_t *fr2 = NULL;
            if (pl__nxx_framer_feed(&f, in + off, n - off, &used, &fr2, &fl) != PL_OK) break;
            check(used > 0 && used <= n - off);
            off += used;
            if (fr2) {
                size_t pl = 1;
                if (pl__nxx_decrypt(b, fr2, fl, plain, &pl) != PL_OK) check(pl == 0);
            }
        }
        free(plain);
        pl__nxx_framer_free(&f);
        break;
    }
    }
    pl__nxx_free(a);
    pl__nxx_free(b);
    free(copy);
    return 0;
}
