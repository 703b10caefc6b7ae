/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: multiaddrs (text and binary), peer ids and marshalled
 * public keys, the parsers of layer 1 that see outside bytes.
 *
 * Input: selector byte, then the data. selector % 4: 0 = multiaddr text,
 * 1 = binary multiaddr, 2 = peer id text, 3 = marshalled PublicKey.
 * Properties: whatever parses formats, and the formatted text parses back
 * to the same bytes; rejected input leaves the outputs empty. */
#include "p2p/key.h"
#include "p2p/multiaddr.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond) {
    if (!cond) abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    if (pl_init() != PL_OK) abort();
    return 0;
}

static void binary_roundtrip(const uint8_t *b, size_t len) {
    char text[PL__MA_TEXT_MAX + 1];
    pl_err e = pl__ma_format(text, sizeof text, b, len);
    check(e == PL_OK || e == PL_ERR_BUFFER_TOO_SMALL);
    if (e != PL_OK) return;
    pl__ma back;
    check(pl__ma_parse(&back, text, strlen(text)) == PL_OK);
    check(back.len == len && memcmp(back.b, b, len) == 0);
    pl__ma_dial d;
    e = pl__ma_dial_target(&d, b, len);
    check(e == PL_OK || e == PL_ERR_P2P_MULTIADDR || e == PL_ERR_P2P_TRANSPORT);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > 4096) return 0;
    const uint8_t *in = data + 1;
    size_t n = size - 1;
    switch (data[0] % 4) {
    case 0: {
        pl__ma ma;
        pl_err e = pl__ma_parse(&ma, (const char *)in, n);
        if (e == PL_OK) {
            check(pl__ma_check(ma.b, ma.len) == PL_OK);
            binary_roundtrip(ma.b, ma.len);
        } else {
            check(ma.len == 0);
        }
        break;
    }
    case 1:
        if (pl__ma_check(in, n) == PL_OK) binary_roundtrip(in, n);
        break;
    case 2: {
        pl_p2p_peer_id id;
        if (pl_p2p_peer_id_parse(&id, (const char *)in, n) == PL_OK) {
            char t[PL_P2P_PEER_ID_TEXT_SIZE];
            check(pl_p2p_peer_id_format(t, &id) == PL_OK);
            pl_p2p_peer_id back;
            check(pl_p2p_peer_id_parse(&back, t, strlen(t)) == PL_OK);
            check(pl_p2p_peer_id_equal(&id, &back));
        } else {
            check(id.len == 0);
        }
        break;
    }
    case 3: {
        pl__p2p_pubkey pk;
        if (pl__p2p_pubkey_decode(&pk, in, n) == PL_OK) {
            uint8_t out[PL__P2P_PUBKEY_PROTO_MAX];
            check(pl__p2p_pubkey_encode(&pk, out) == n && memcmp(out, in, n) == 0);
            /* Any signature over any message is rejected or accepted, never crashes. */
            (void)pl__p2p_verify(&pk, in, n, in, n);
        } else {
            check(pk.len == 0);
        }
        break;
    }
    }
    return 0;
}
