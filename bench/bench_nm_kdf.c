/* SPDX-License-Identifier: Apache-2.0 */
/* Cost per guess of the node-manager pairing kdf (issue 5, "Measured").
 *
 * An eavesdropper sees T's first 16 bytes in the pairing topic and tests a
 * candidate code P offline by computing T = kdf(P, TOPIC_SALT): one Argon2id
 * v1.3 evaluation with the protocol parameters (t = 3, m = 64 MiB, p = 1,
 * 32-byte output; docs/protocol/node-manager-pairing.md section 3) per
 * guess. This program measures:
 *
 *  1. one guess on one thread: pl_argon2id() with the protocol parameters,
 *     against the raw libsodium crypto_pwhash(ALG_ARGON2ID13) call it is made
 *     of, timed back to back in alternating order in each round (their
 *     outputs are compared, so both compute the same function);
 *  2. pl_nm_derive(): T and HS, what a user waits for once per pairing;
 *  3. parallel throughput: THREADS threads (default: the online cores) each
 *     computing guesses at once, in guesses per second for the machine, and
 *     its scaling against the single-thread rate;
 *  4. from the single-thread median: the core-time to search the 2^64 code
 *     space (expected: half of it).
 *
 *   bench_nm_kdf [ROUNDS] [THREADS]   (ROUNDS default 15, at least 3)
 *
 * Medians of ROUNDS rounds; min and max show the spread. Benchmarks are not
 * part of `make test`; results and the machine go to docs/performance.md. */
#include "pairlink/common.h"
#include "pairlink/crypto.h"
#include "pairlink/hash.h"
#include "pairlink/nm_pairing.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SECONDS_PER_YEAR (365.25 * 86400.0)

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct spread {
    double med, min, max;
} spread;

static spread stats(double *v, size_t n) {
    qsort(v, n, sizeof *v, cmp_double);
    spread s = {v[n / 2], v[0], v[n - 1]};
    return s;
}

static void die(const char *what, pl_err e) {
    fprintf(stderr, "bench_nm_kdf: %s: %s\n", what, pl_errname(e));
    exit(1);
}

static void cpu_model(char *out, size_t cap) {
    snprintf(out, cap, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
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

/* One guess: T = kdf(P, TOPIC_SALT) through pairlink. */
static void guess_pl(uint8_t t[PL_NM_KEY_BYTES], const uint8_t p[PL_NM_CODE_BYTES]) {
    pl_err e = pl_argon2id(t, PL_NM_KEY_BYTES, p, PL_NM_CODE_BYTES,
                           (const uint8_t *)PL_NM_TOPIC_SALT, PL_NM_KDF_OPSLIMIT,
                           PL_NM_KDF_MEMLIMIT);
    if (e != PL_OK) die("pl_argon2id", e);
}

/* The same guess through libsodium directly. */
static void guess_raw(uint8_t t[PL_NM_KEY_BYTES], const uint8_t p[PL_NM_CODE_BYTES]) {
    if (crypto_pwhash(t, PL_NM_KEY_BYTES, (const char *)p, PL_NM_CODE_BYTES,
                      (const unsigned char *)PL_NM_TOPIC_SALT, PL_NM_KDF_OPSLIMIT,
                      PL_NM_KDF_MEMLIMIT, crypto_pwhash_ALG_ARGON2ID13) != 0)
        die("crypto_pwhash", PL_ERR_NOMEM);
}

/* ---- parallel throughput ---- */

typedef struct worker {
    pthread_t th;
    int guesses;
    uint8_t first[PL_NM_CODE_BYTES];
    pthread_barrier_t *start;
} worker;

static void *work(void *arg) {
    worker *w = arg;
    uint8_t p[PL_NM_CODE_BYTES], t[PL_NM_KEY_BYTES];
    memcpy(p, w->first, sizeof p);
    pthread_barrier_wait(w->start);
    for (int i = 0; i < w->guesses; i++) {
        guess_pl(t, p);
        p[PL_NM_CODE_BYTES - 1]++; /* the next candidate, as a search would */
    }
    return NULL;
}

/* Wall time for `threads` threads computing `per_thread` guesses each. */
static double parallel_run(int threads, int per_thread) {
    worker *w = calloc((size_t)threads, sizeof *w);
    pthread_barrier_t start;
    if (!w || pthread_barrier_init(&start, NULL, (unsigned)threads + 1) != 0)
        die("threads", PL_ERR_NOMEM);
    for (int i = 0; i < threads; i++) {
        w[i].guesses = per_thread;
        w[i].start = &start;
        pl_random(w[i].first, sizeof w[i].first);
        if (pthread_create(&w[i].th, NULL, work, &w[i]) != 0) die("pthread_create", PL_ERR_SYS);
    }
    pthread_barrier_wait(&start);
    double t0 = now_s();
    for (int i = 0; i < threads; i++) pthread_join(w[i].th, NULL);
    double dt = now_s() - t0;
    pthread_barrier_destroy(&start);
    free(w);
    return dt;
}

int main(int argc, char **argv) {
    if (pl_init() != PL_OK) die("pl_init", PL_ERR_CRYPTO);
    int rounds = argc > 1 ? atoi(argv[1]) : 15;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = argc > 2 ? atoi(argv[2]) : (int)(ncpu > 0 ? ncpu : 1);
    if (rounds < 3 || rounds > 1000 || threads < 1 || threads > 256) {
        fprintf(stderr, "usage: bench_nm_kdf [ROUNDS >= 3] [THREADS]\n");
        return 2;
    }
    char cpu[256];
    cpu_model(cpu, sizeof cpu);
    double load[3] = {0, 0, 0};
    if (getloadavg(load, 3) < 0) load[0] = -1;
    printf("machine: %s, %ld online cores (nproc); load average %.2f at start\n", cpu, ncpu,
           load[0]);
    printf("libsodium %s; Argon2id fill routine chosen at run time: %s\n",
           sodium_version_string(),
           sodium_runtime_has_avx512f() ? "avx512f"
           : sodium_runtime_has_avx2()  ? "avx2"
           : sodium_runtime_has_ssse3() ? "ssse3"
                                        : "portable");
    printf("kdf: Argon2id v1.3, t = %llu, m = %u KiB, p = 1, 32-byte output, salt \"%s\"\n",
           (unsigned long long)PL_NM_KDF_OPSLIMIT, PL_NM_KDF_MEMLIMIT / 1024, PL_NM_TOPIC_SALT);

    uint8_t p[PL_NM_CODE_BYTES], t1[PL_NM_KEY_BYTES], t2[PL_NM_KEY_BYTES];
    pl_random(p, sizeof p);
    guess_pl(t1, p); /* warm-up: first-touch of the allocator's pages, caches */

    /* 1. one guess, pairlink and raw, alternating which goes first */
    double *tp = calloc((size_t)rounds, sizeof *tp), *tr = calloc((size_t)rounds, sizeof *tr);
    double *ratio = calloc((size_t)rounds, sizeof *ratio);
    if (!tp || !tr || !ratio) die("calloc", PL_ERR_NOMEM);
    for (int i = 0; i < rounds; i++) {
        pl_random(p, sizeof p);
        for (int k = 0; k < 2; k++) {
            bool pl_side = (k == 0) == (i % 2 == 0);
            double t0 = now_s();
            if (pl_side) guess_pl(t1, p);
            else guess_raw(t2, p);
            double dt = now_s() - t0;
            if (pl_side) tp[i] = dt;
            else tr[i] = dt;
        }
        if (sodium_memcmp(t1, t2, sizeof t1) != 0) {
            fprintf(stderr, "bench_nm_kdf: pl_argon2id and crypto_pwhash disagree\n");
            return 1;
        }
        ratio[i] = tp[i] / tr[i];
    }
    spread sp = stats(tp, (size_t)rounds), sr = stats(tr, (size_t)rounds);
    spread sq = stats(ratio, (size_t)rounds);
    printf("one guess, pl_argon2id:  median %.1f ms (min %.1f, max %.1f) over %d rounds\n",
           sp.med * 1e3, sp.min * 1e3, sp.max * 1e3, rounds);
    printf("raw crypto_pwhash:       median %.1f ms (min %.1f, max %.1f)\n", sr.med * 1e3,
           sr.min * 1e3, sr.max * 1e3);
    printf("ratio pl/raw:            median %.3f (min %.3f, max %.3f); outputs identical\n",
           sq.med, sq.min, sq.max);

    /* 2. what the user waits for: T and HS */
    int dr = rounds < 7 ? rounds : 7;
    for (int i = 0; i < dr; i++) {
        pl_nm_secrets sec;
        pl_random(p, sizeof p);
        double t0 = now_s();
        pl_err e = pl_nm_derive(&sec, p, NULL);
        tp[i] = now_s() - t0;
        if (e != PL_OK) die("pl_nm_derive", e);
        pl_nm_secrets_wipe(&sec);
    }
    spread sd = stats(tp, (size_t)dr);
    printf("pl_nm_derive (T and HS): median %.1f ms (min %.1f, max %.1f) over %d rounds\n",
           sd.med * 1e3, sd.min * 1e3, sd.max * 1e3, dr);

    /* 3. all cores at once */
    int per_thread = rounds < 10 ? rounds : 10;
    int preps = 3;
    for (int i = 0; i < preps; i++)
        tr[i] = (double)(threads * per_thread) / parallel_run(threads, per_thread);
    spread st = stats(tr, (size_t)preps);
    double single = 1.0 / sp.med;
    printf("%d threads x %d guesses: median %.2f guesses/s (min %.2f, max %.2f) over %d runs; "
           "%.2fx the single-thread rate of %.2f/s\n",
           threads, per_thread, st.med, st.min, st.max, preps, st.med / single, single);

    /* 4. the code space */
    double space = 18446744073709551616.0; /* 2^64 */
    double core_s = space * sp.med;
    printf("2^64 guesses at the single-thread median: %.3g core-seconds = %.3g core-years; "
           "expected (2^63): %.3g core-years\n",
           core_s, core_s / SECONDS_PER_YEAR, core_s / 2 / SECONDS_PER_YEAR);
    printf("at the measured %.2f guesses/s of this %ld-core machine: 2^63 guesses take %.3g "
           "machine-years\n",
           st.med, ncpu, space / 2 / st.med / SECONDS_PER_YEAR);
    if (getloadavg(load, 3) < 0) load[0] = -1;
    printf("load average %.2f at the end (above 0 on an idle machine: other work shared the "
           "cores)\n",
           load[0]);
    free(tp);
    free(tr);
    free(ratio);
    return 0;
}
