/* SPDX-License-Identifier: Apache-2.0 */
/* Waku Noise costs against their floors (issue 4, item 7), on one thread:
 *
 * 1. K1K1 handshakes per second per core, as a ratio to the bound set by
 *    the X25519 operations a K1K1 handshake needs on both sides:
 *      -> e            initiator generates e                  1 keygen
 *      <- e, ee, es    responder generates e, ee, es          1 keygen + 2 DH
 *                      initiator reads: ee, es                2 DH
 *      -> se           initiator se, responder reads se       2 DH
 *    = 8 operations; bound = 1 / (8 * t_x25519), with t_x25519 one libsodium
 *    crypto_scalarmult measured here. The static public keys are passed in
 *    (pl_noise_keys.static_pub), as a node manager keeps its own; without
 *    them pl_noise_hs_new derives each, 2 more fixed-base multiplications.
 * 2. Session encrypt+decrypt of 1 KiB messages, as a throughput ratio to the
 *    protocol's floor: libsodium ChaCha20-Poly1305 (IETF) encrypt+decrypt of
 *    the 1240 bytes the padding makes of 1 KiB, and one nametag hash per side.
 *    Above that the session builds and parses the PayloadV2, looks up the
 *    nametag and allocates.
 *
 *   bench_noise [SCALE]   (SCALE multiplies the iteration counts; default 1)
 *
 * Each figure is the median of 15 runs; each ratio is the median of the
 * ratios of the runs (both of its sides are timed back to back). */
#include "pairlink/common.h"
#include "pairlink/crypto.h"
#include "pairlink/hash.h"
#include "pairlink/noise.h"

#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define REPS 15
#define K1K1_X25519_OPS 8

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, size_t n) {
    qsort(v, n, sizeof *v, cmp_double);
    return v[n / 2];
}

static void die(const char *what, pl_err e) {
    fprintf(stderr, "bench_noise: %s: %s\n", what, pl_errname(e));
    exit(1);
}

typedef struct keys {
    uint8_t is[32], isp[32], rs[32], rsp[32];
} keys;

/* One whole K1K1 handshake, both parties, in this thread. Returns the two
 * sessions when si/sr are given, else frees them. */
static void k1k1(const keys *k, pl_noise_session **si, pl_noise_session **sr) {
    static const uint8_t empty[1];
    /* The static public keys are known, as a node manager keeps its own. */
    pl_noise_keys ki = {k->is, NULL, k->rsp, NULL, k->isp}, kr = {k->rs, NULL, k->isp, NULL, k->rsp};
    pl_noise_hs *hi = NULL, *hr = NULL;
    pl_err e;
    if ((e = pl_noise_hs_new(&hi, PL_NOISE_K1K1, PL_NOISE_INITIATOR, &ki, NULL, 0, NULL)) !=
            PL_OK ||
        (e = pl_noise_hs_new(&hr, PL_NOISE_K1K1, PL_NOISE_RESPONDER, &kr, NULL, 0, NULL)) != PL_OK)
        die("pl_noise_hs_new", e);
    while (pl_noise_hs_action(hi) != PL_NOISE_ACTION_SPLIT) {
        bool from_i = pl_noise_hs_action(hi) == PL_NOISE_ACTION_WRITE;
        pl_noise_hs *w = from_i ? hi : hr, *r = from_i ? hr : hi;
        uint8_t *wire = NULL, *pl = NULL;
        size_t wl = 0, pll = 0;
        if ((e = pl_noise_hs_write(w, NULL, empty, 0, &wire, &wl)) != PL_OK) die("hs_write", e);
        if ((e = pl_noise_hs_read(r, wire, wl, NULL, &pl, &pll)) != PL_OK) die("hs_read", e);
        pl_free(wire);
        pl_free_secret(pl, pll ? pll : 1);
    }
    pl_noise_session *a = NULL, *b = NULL;
    if ((e = pl_noise_hs_split(hi, &a)) != PL_OK || (e = pl_noise_hs_split(hr, &b)) != PL_OK)
        die("hs_split", e);
    pl_noise_hs_free(hi);
    pl_noise_hs_free(hr);
    if (si)
        *si = a, *sr = b;
    else
        pl_noise_session_free(a), pl_noise_session_free(b);
}

static void cpu_model(char *out, size_t cap) {
    snprintf(out, cap, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10)) continue;
        char *v = strchr(line, ':');
        if (!v) break;
        v += 1 + (v[1] == ' ');
        v[strcspn(v, "\n")] = '\0';
        snprintf(out, cap, "%s", v);
        break;
    }
    fclose(f);
}

int main(int argc, char **argv) {
    if (pl_init() != PL_OK) return 1;
    long scale = argc > 1 ? atol(argv[1]) : 1;
    if (scale < 1) scale = 1;
    char cpu[128];
    cpu_model(cpu, sizeof cpu);
    printf("machine: %s, %ld online cores (nproc); measured on one thread\n", cpu,
           sysconf(_SC_NPROCESSORS_ONLN));

    /* ---- X25519 and K1K1 handshakes, interleaved ----
     * The machine may be busy with other work: each run times X25519 just
     * before and just after its handshakes, and the ratio is taken per run,
     * so that a slow stretch moves both sides of the ratio together. */
    uint8_t a[32], apub[32], b[32], bpub[32], out[32];
    pl_x25519_keypair(apub, a);
    pl_x25519_keypair(bpub, b);
    keys k;
    pl_x25519_keypair(k.isp, k.is);
    pl_x25519_keypair(k.rsp, k.rs);
    long nx = 500 * scale, nh = 100 * scale;
    double t_dh[REPS], t_base[REPS], t_hs[REPS], r_hs[REPS];
    for (int r = 0; r < REPS; r++) {
        double t0 = now_s(), dh = 0;
        for (int half = 0; half < 2; half++) {
            if (half) { /* the handshakes between the two X25519 halves */
                double h0 = now_s();
                for (long i = 0; i < nh; i++)
                    k1k1(&k, NULL, NULL);
                t_hs[r] = (now_s() - h0) / (double)nh;
            }
            t0 = now_s();
            for (long i = 0; i < nx / 2; i++) {
                if (crypto_scalarmult(out, a, bpub) != 0) return 1;
                a[0] ^= out[0] & 0xf8; /* depend on the previous result */
            }
            dh += now_s() - t0;
        }
        t_dh[r] = dh / (double)(nx / 2 * 2);
        t0 = now_s();
        for (long i = 0; i < nx; i++) {
            crypto_scalarmult_base(out, a);
            a[1] ^= out[1];
        }
        t_base[r] = (now_s() - t0) / (double)nx;
        r_hs[r] = (1.0 / t_hs[r]) / (1.0 / (K1K1_X25519_OPS * t_dh[r]));
    }
    double tx = median(t_dh, REPS), tb = median(t_base, REPS), th = median(t_hs, REPS);
    double ratio = median(r_hs, REPS);
    printf("x25519 crypto_scalarmult: %.2f us; crypto_scalarmult_base: %.2f us\n", tx * 1e6,
           tb * 1e6);
    printf("K1K1 X25519 operations per handshake, both sides: 2 key generations + 6 DH = %d\n",
           K1K1_X25519_OPS);
    printf("K1K1 bound 1/(%d * t_x25519): %.0f handshakes/s/core\n", K1K1_X25519_OPS,
           1.0 / (K1K1_X25519_OPS * tx));
    printf("K1K1 measured: %.0f handshakes/s/core (%.1f us per handshake, both sides)\n", 1.0 / th,
           th * 1e6);
    printf("K1K1 ratio measured/bound: %.3f (median of %d per-run ratios)\n", ratio, REPS);
    printf("  (the 8 counted ops priced as x25519: %.1f us; X25519 work pl_noise actually does,\n"
           "   6 DH + 2 ephemeral public keys by crypto_scalarmult_base: %.1f us)\n",
           K1K1_X25519_OPS * tx * 1e6, (6 * tx + 2 * tb) * 1e6);

    /* ---- session vs its floor, 1 KiB ----
     * The floor is what the protocol itself makes every 1 KiB message cost
     * (RFC 35/37): PKCS#7 padding to 5 x 248 = 1240 bytes, so ChaCha20-
     * Poly1305 encrypt + decrypt of 1240 bytes with the 16-byte nametag as
     * associated data, and the nametag sha256(secret || LE64(n)), which the
     * sender derives to write it and the receiver to recognise it: one hash
     * per side. Timed here with the library's own pl_sha256. The figure of
     * earlier reports, against unpadded raw AEAD of 1024 bytes, is printed
     * too. Each round times the three loops back to back, the session in
     * the middle, so the ratio of a round compares like with like. */
    uint8_t msg[1024];
    pl_random(msg, sizeof msg);
    pl_noise_session *si = NULL, *sr = NULL;
    k1k1(&k, &si, &sr);
    long nm = 10000 * scale;
    enum { PADDED = 1240 };
    double t_sess[REPS], t_raw[REPS], t_floor[REPS], r_sess[REPS], r_floor[REPS], r_floor1[REPS];
    double t_hash[REPS];
    uint8_t key[32], nonce[12] = {0}, ad[16], ct[PADDED + 16], pt[PADDED], pmsg[PADDED];
    uint8_t secret[40], tag[32];
    pl_random(key, sizeof key);
    pl_random(ad, sizeof ad);
    pl_random(secret, sizeof secret);
    memcpy(pmsg, msg, sizeof msg);
    memset(pmsg + sizeof msg, PADDED - sizeof msg, PADDED - sizeof msg);
    for (int r = 0; r < REPS; r++) {
        /* the floor: hash, encrypt, hash, decrypt */
        double t0 = now_s();
        for (long i = 0; i < nm; i++) {
            unsigned long long cl, ml;
            uint64_t n = (uint64_t)i; /* Noise: 4 zero bytes + 64-bit LE counter */
            memcpy(nonce + 4, &n, 8);
            memcpy(secret + 32, &n, 8);
            pl_sha256(tag, secret, sizeof secret);
            crypto_aead_chacha20poly1305_ietf_encrypt(ct, &cl, pmsg, PADDED, tag, sizeof ad, NULL,
                                                      nonce, key);
            pl_sha256(tag, secret, sizeof secret);
            if (crypto_aead_chacha20poly1305_ietf_decrypt(pt, &ml, NULL, ct, cl, tag, sizeof ad,
                                                          nonce, key) != 0 ||
                ml != PADDED || pt[0] != msg[0])
                die("floor round trip", PL_ERR_DECRYPT);
        }
        t_floor[r] = (now_s() - t0) / (double)nm;

        t0 = now_s();
        for (long i = 0; i < nm; i++) {
            uint8_t *wire = NULL, *got = NULL;
            size_t wl = 0, gl = 0;
            pl_err e = pl_noise_session_encrypt(si, msg, sizeof msg, &wire, &wl);
            if (e != PL_OK) die("session_encrypt", e);
            if ((e = pl_noise_session_decrypt(sr, wire, wl, &got, &gl)) != PL_OK)
                die("session_decrypt", e);
            if (gl != sizeof msg || got[0] != msg[0]) die("session round trip", PL_ERR_DECRYPT);
            pl_free(wire);
            pl_free_secret(got, gl);
        }
        t_sess[r] = (now_s() - t0) / (double)nm;

        t0 = now_s();
        for (long i = 0; i < nm; i++) {
            unsigned long long cl, ml;
            uint64_t n = (uint64_t)i;
            memcpy(nonce + 4, &n, 8);
            crypto_aead_chacha20poly1305_ietf_encrypt(ct, &cl, msg, sizeof msg, ad, sizeof ad, NULL,
                                                      nonce, key);
            if (crypto_aead_chacha20poly1305_ietf_decrypt(pt, &ml, NULL, ct, cl, ad, sizeof ad,
                                                          nonce, key) != 0 ||
                ml != sizeof msg || pt[0] != msg[0])
                die("raw round trip", PL_ERR_DECRYPT);
        }
        t_raw[r] = (now_s() - t0) / (double)nm;

        t0 = now_s();
        for (long i = 0; i < nm; i++) {
            memcpy(secret + 32, &i, 8);
            pl_sha256(tag, secret, sizeof secret);
        }
        t_hash[r] = (now_s() - t0) / (double)nm;
        r_sess[r] = t_raw[r] / t_sess[r];
        r_floor[r] = t_floor[r] / t_sess[r];
        r_floor1[r] = (t_floor[r] - t_hash[r]) / t_sess[r];
    }
    pl_noise_session_free(si);
    pl_noise_session_free(sr);
    double ts = median(t_sess, REPS), tr = median(t_raw, REPS), tf = median(t_floor, REPS);
    double th1 = median(t_hash, REPS);
    printf("session encrypt+decrypt 1 KiB: %.0f msgs/s, %.1f MiB/s of payload (%.2f us/msg)\n",
           1.0 / ts, 1024.0 / ts / 1048576.0, ts * 1e6);
    printf("floor: chacha20poly1305-ietf encrypt+decrypt of the padded 1240 bytes + 2 nametag "
           "hashes: %.2f us/msg (one nametag hash: %.3f us)\n",
           tf * 1e6, th1 * 1e6);
    printf("raw chacha20poly1305-ietf encrypt+decrypt 1 KiB unpadded: %.2f us/msg\n", tr * 1e6);
    double rf = median(r_floor, REPS);
    printf("session/floor throughput ratio: %.3f (median of %d per-run ratios; "
           "%.3f with one nametag hash in the floor)\n",
           rf, REPS, median(r_floor1, REPS));
    printf("session/raw unpadded throughput ratio (the earlier figure): %.3f\n",
           median(r_sess, REPS));
    /* for scripts/bench-check.sh */
    printf("BENCH noise_k1k1_x25519_bound %.3f\n", ratio);
    printf("BENCH noise_session_1k_floor %.3f\n", rf);
    return 0;
}
