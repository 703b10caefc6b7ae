/* SPDX-License-Identifier: Apache-2.0 */
/* Envelope seal+open of a 1 KiB JSON-RPC message, as a throughput ratio to
 * raw libsodium ChaCha20-Poly1305 encrypt+decrypt of the same buffer (the
 * floor: everything above it is base64, framing and allocation); 1.0 would
 * be the floor itself. */
#include "pairlink/crypto.h"
#include "pairlink/hash.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (pl_init() != PL_OK) return 1;
    long iters = argc > 1 ? atol(argv[1]) : 200000;
    uint8_t key[32];
    pl_random(key, sizeof key);
    /* A 1 KiB JSON-RPC request such as a session proposal. */
    char msg[1024];
    int off = snprintf(msg, sizeof msg,
                       "{\"id\":1700000000000123,\"jsonrpc\":\"2.0\",\"method\":\"wc_"
                       "sessionPropose\",\"params\":{\"pad\":\"");
    memset(msg + off, 'x', sizeof msg - (size_t)off - 3);
    memcpy(msg + sizeof msg - 3, "\"}}", 3);

    /* Rounds alternate the baseline and the envelope back to back, so that
     * load from other processes hits both sides of each ratio alike; the
     * median ratio is reported with its spread. */
    enum { ROUNDS = 15 };
    double ratios[ROUNDS], env_us[ROUNDS], raw_us[ROUNDS];
    long n = iters / ROUNDS;
    uint8_t ct[sizeof msg + 16], pt[sizeof msg], iv[12];
    unsigned long long clen, plen;
    pl_envelope_params p = {.type = 0};
    for (int r = 0; r < ROUNDS; r++) {
        double raw = 0, env = 0;
        /* The side that runs first alternates too (caches, frequency). */
        for (int side = 0; side < 2; side++) {
            double t0 = now_s();
            if ((side ^ r) & 1) {
                for (long i = 0; i < n; i++) {
                    char *b64 = NULL;
                    uint8_t *out = NULL;
                    size_t len;
                    if (pl_envelope_seal(&b64, key, (const uint8_t *)msg, sizeof msg, &p) != PL_OK)
                        return 1;
                    if (pl_envelope_open(&out, &len, NULL, key, b64, strlen(b64)) != PL_OK)
                        return 1;
                    pl_free(b64);
                    pl_free_secret(out, len);
                }
                env = now_s() - t0;
            } else {
                for (long i = 0; i < n; i++) {
                    randombytes_buf(iv, sizeof iv);
                    crypto_aead_chacha20poly1305_ietf_encrypt(ct, &clen, (const uint8_t *)msg,
                                                              sizeof msg, NULL, 0, NULL, iv, key);
                    if (crypto_aead_chacha20poly1305_ietf_decrypt(pt, &plen, NULL, ct, clen, NULL,
                                                                  0, iv, key))
                        return 1;
                }
                raw = now_s() - t0;
            }
        }
        ratios[r] = raw / env; /* throughput, envelope / raw */
        env_us[r] = env / n * 1e6;
        raw_us[r] = raw / n * 1e6;
    }
    qsort(ratios, ROUNDS, sizeof *ratios, cmp_double);
    qsort(env_us, ROUNDS, sizeof *env_us, cmp_double);
    qsort(raw_us, ROUNDS, sizeof *raw_us, cmp_double);
    printf("envelope type0 seal+open 1 KiB: median %.2f us/op (%.0f ops/s)\n", env_us[ROUNDS / 2],
           1e6 / env_us[ROUNDS / 2]);
    printf("raw chacha20poly1305 enc+dec 1 KiB: median %.2f us/op (%.0f ops/s)\n",
           raw_us[ROUNDS / 2], 1e6 / raw_us[ROUNDS / 2]);
    printf("ratio envelope/raw throughput: median %.2f (min %.2f, max %.2f over %d rounds)\n",
           ratios[ROUNDS / 2], ratios[0], ratios[ROUNDS - 1], ROUNDS);
    /* for scripts/bench-check.sh */
    printf("BENCH envelope_seal_open_1k %.3f\n", ratios[ROUNDS / 2]);
    return 0;
}
