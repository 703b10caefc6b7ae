/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: reading handshake messages at every step of every
 * pattern, and transport messages in a session.
 *
 * Input: selector byte, then the message. selector % 5 picks the pattern,
 * (selector / 5) % 4 the step: 0..2 = handshake message index read after an
 * honest prefix, 3 = a transport message for the responder's session. The
 * harness writes the expected nametag over the message's first 16 bytes
 * (for transport: the tag of nonce next + byte 16 % 2W - W) so that the
 * fuzzer gets past the nametag check it could not guess.
 *
 * With PL_FUZZ_WRITE_SEEDS=DIR in the environment, the initializer writes
 * the honest messages for every (pattern, step) to DIR as seeds. */
#include "noise/noise_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const pl_noise_pattern patterns[5] = {PL_NOISE_K1K1, PL_NOISE_XK1, PL_NOISE_XX,
                                             PL_NOISE_XXPSK0, PL_NOISE_WAKU_PAIRING};
static uint8_t is[32], ie[32], rs[32], re[32], isp[32], iep[32], rsp[32], rep[32], psk[32];
static const uint8_t tag1[16] = {0xf0, 0x0d};

static void check(int cond) {
    if (!cond) abort();
}

static void make(pl_noise_pattern p, pl_noise_hs **hi, pl_noise_hs **hr) {
    pl_noise_keys ki = {is, ie, rsp, rep, NULL}, kr = {rs, re, isp, iep, NULL};
    const uint8_t *k = p == PL_NOISE_XXPSK0 ? psk : NULL;
    check(pl_noise_hs_new(hi, p, PL_NOISE_INITIATOR, &ki, (const uint8_t *)"fuzz", 4, k) == PL_OK);
    check(pl_noise_hs_new(hr, p, PL_NOISE_RESPONDER, &kr, (const uint8_t *)"fuzz", 4, k) == PL_OK);
}

/* Run honest messages [0, upto); returns the honest message `upto` (if
 * upto < 3) in *wire without delivering it. */
static void honest(pl_noise_hs *hi, pl_noise_hs *hr, int upto, uint8_t **wire, size_t *wl) {
    *wire = NULL;
    *wl = 0;
    for (int step = 0; step < 3; step++) {
        pl_noise_hs *w = pl_noise_hs_action(hi) == PL_NOISE_ACTION_WRITE ? hi : hr;
        pl_noise_hs *rd = w == hi ? hr : hi;
        uint8_t *m, *got;
        size_t ml, gl;
        check(pl_noise_hs_write(w, step == 0 ? tag1 : NULL, (const uint8_t *)"payload", 7, &m,
                                &ml) == PL_OK);
        if (step == upto) {
            *wire = m;
            *wl = ml;
            return;
        }
        check(pl_noise_hs_read(rd, m, ml, step == 0 ? tag1 : NULL, &got, &gl) == PL_OK);
        pl_free_secret(got, gl);
        free(m);
    }
}

static void write_seed(const char *dir, int sel, const uint8_t *m, size_t ml) {
    char path[4096];
    snprintf(path, sizeof path, "%s/seed-%02d", dir, sel);
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fputc(sel, f);
    fwrite(m, 1, ml, f);
    fclose(f);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    if (pl_init() != PL_OK) abort();
    for (int i = 0; i < 32; i++) {
        is[i] = (uint8_t)(i + 1), ie[i] = (uint8_t)(i + 2), rs[i] = (uint8_t)(i + 3);
        re[i] = (uint8_t)(i + 4), psk[i] = (uint8_t)(i + 5);
    }
    pl__noise_pub(isp, is), pl__noise_pub(iep, ie), pl__noise_pub(rsp, rs), pl__noise_pub(rep, re);
    const char *dir = getenv("PL_FUZZ_WRITE_SEEDS");
    if (!dir) return 0;
    for (int pi = 0; pi < 5; pi++) {
        for (int step = 0; step < 4; step++) {
            pl_noise_hs *hi, *hr;
            uint8_t *m;
            size_t ml;
            make(patterns[pi], &hi, &hr);
            if (step < 3) {
                honest(hi, hr, step, &m, &ml);
            } else {
                pl_noise_session *si = NULL, *sr = NULL;
                honest(hi, hr, 3, &m, &ml);
                check(pl_noise_hs_split(hi, &si) == PL_OK && pl_noise_hs_split(hr, &sr) == PL_OK);
                check(pl_noise_session_encrypt(si, (const uint8_t *)"hi", 2, &m, &ml) == PL_OK);
                pl_noise_session_free(si), pl_noise_session_free(sr);
            }
            write_seed(dir, step * 5 + pi, m, ml);
            free(m);
            pl_noise_hs_free(hi), pl_noise_hs_free(hr);
        }
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > PL_NOISE_MAX_WIRE + 1) return 0;
    pl_noise_pattern p = patterns[data[0] % 5];
    int step = (data[0] / 5) % 4;
    size_t ml = size - 1;
    uint8_t *m = malloc(ml ? ml : 1);
    if (!m) return 0;
    if (ml) memcpy(m, data + 1, ml);

    pl_noise_hs *hi, *hr;
    make(p, &hi, &hr);
    uint8_t *unused;
    size_t ul;
    honest(hi, hr, step < 3 ? step : 3, &unused, &ul);
    free(unused);
    if (step < 3) {
        pl_noise_hs *rd = pl_noise_hs_action(hi) == PL_NOISE_ACTION_READ ? hi : hr;
        uint8_t tag[16];
        if (step == 0) memcpy(tag, tag1, 16);
        else pl_noise_hs_next_nametag(rd, tag);
        if (ml >= 16) memcpy(m, tag, 16);
        uint8_t *got = (uint8_t *)1;
        size_t gl = 1;
        pl_err e = pl_noise_hs_read(rd, m, ml, step == 0 ? tag1 : NULL, &got, &gl);
        if (e == PL_OK) {
            check(got != NULL && gl <= ml);
            pl_free_secret(got, gl ? gl : 1);
            check(pl_noise_hs_action(rd) != PL_NOISE_ACTION_FAILED);
        } else {
            check(got == NULL && gl == 0);
            pl_noise_action a = pl_noise_hs_action(rd);
            /* Only a message not addressed to us leaves the state as it was. */
            check(a == PL_NOISE_ACTION_FAILED || (ml < 16 && a == PL_NOISE_ACTION_READ));
        }
    } else {
        pl_noise_session *si = NULL, *sr = NULL;
        check(pl_noise_hs_split(hi, &si) == PL_OK && pl_noise_hs_split(hr, &sr) == PL_OK);
        if (ml > 16) {
            uint64_t next = sr->in_next;
            uint64_t k = next + (m[16] % (2 * PL_NOISE_WINDOW));
            k = k >= PL_NOISE_WINDOW ? k - PL_NOISE_WINDOW : k;
            pl__noise_nametag(m, sr->nms_in, k);
        }
        uint8_t *got = (uint8_t *)1;
        size_t gl = 1;
        pl_err e = pl_noise_session_decrypt(sr, m, ml, &got, &gl);
        if (e == PL_OK) pl_free_secret(got, gl ? gl : 1);
        else check(got == NULL && gl == 0);
        pl_noise_session_free(si), pl_noise_session_free(sr);
    }
    pl_noise_hs_free(hi), pl_noise_hs_free(hr);
    free(m);
    return 0;
}
