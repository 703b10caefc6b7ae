/* SPDX-License-Identifier: Apache-2.0 */
/* Error model and hash/HKDF primitives. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/htable.h"
#include "core/internal.h"
#include "pairlink/codec.h"
#include "pairlink/common.h"
#include "pairlink/hash.h"
#include "pairlink/store.h"
#include "pairlink/transport.h"
#include "support/support.h"

#include <pthread.h>

static void test_strerror_names_every_code(void **state) {
    (void)state;
    assert_string_equal(pl_strerror(PL_OK), "success");
    assert_string_equal(pl_errname(PL_ERR_URI_EXPIRED), "PL_ERR_URI_EXPIRED");
    assert_string_equal(pl_strerror((pl_err)99999), "unknown error");
    assert_string_equal(pl_errname((pl_err)99999), "PL_ERR_UNKNOWN");
#define CHECK(name, value, msg)                                                                    \
    assert_int_equal((int)name, value);                                                            \
    assert_true(strlen(pl_strerror(name)) > 0);                                                    \
    assert_string_equal(pl_errname(name), #name);
    PL_ERRORS(CHECK)
#undef CHECK
}

/* The words behind a wrapped errno and SQLite code (what the CLI prints
 * after the path). */
static void test_detail_text(void **state) {
    (void)state;
    char dir[] = "/tmp/pl-detail-XXXXXX", path[64], buf[128];
    assert_non_null(mkdtemp(dir));
    pl_store *s = NULL;
    assert_int_equal(pl_store_open(&s, dir), PL_ERR_SYS); /* a directory */
    assert_string_equal(pl_detail_text(PL_ERR_SYS, buf, sizeof buf), "Is a directory");
    snprintf(path, sizeof path, "%s/junk.db", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < 64; i++)
        fputs("not a database ", f);
    fclose(f);
    chmod(path, 0600);
    assert_int_equal(pl_store_open(&s, path), PL_ERR_STORE_CORRUPT);
    assert_string_equal(pl_detail_text(PL_ERR_STORE_CORRUPT, buf, sizeof buf),
                        "file is not a database");
    /* an error whose detail is of another kind, and a short buffer */
    assert_string_equal(pl_detail_text(PL_ERR_URI_EXPIRED, buf, sizeof buf), "");
    assert_string_equal(pl_detail_text(PL_ERR_STORE_CORRUPT, buf, 5), "file");
    unlink(path);
    rmdir(dir);
}

static void check_hkdf(const char *ikm_hex, const char *salt_hex, const char *info_hex,
                       const char *okm_hex) {
    size_t ikm_n, salt_n, info_n, okm_n;
    uint8_t *ikm = pl_test_unhex(ikm_hex, &ikm_n);
    uint8_t *salt = pl_test_unhex(salt_hex, &salt_n);
    uint8_t *info = pl_test_unhex(info_hex, &info_n);
    uint8_t *okm = pl_test_unhex(okm_hex, &okm_n);
    uint8_t out[128];
    assert_int_equal(pl_hkdf_sha256(out, okm_n, salt_n ? salt : NULL, salt_n, ikm, ikm_n,
                                    info_n ? info : NULL, info_n),
                     PL_OK);
    assert_memory_equal(out, okm, okm_n);
    free(ikm), free(salt), free(info), free(okm);
}

/* RFC 5869 appendix A, test cases 1-3 (SHA-256). */
static void test_hkdf_rfc5869(void **state) {
    (void)state;
    check_hkdf(
        "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "000102030405060708090a0b0c",
        "f0f1f2f3f4f5f6f7f8f9",
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
    check_hkdf("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f2021222324252627282"
               "92a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f",
               "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f8081828384858687888"
               "98a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeaf",
               "b0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d"
               "9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
               "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271c"
               "b41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87");
    check_hkdf(
        "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "", "",
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
}

static void test_hkdf_length_bounds(void **state) {
    (void)state;
    uint8_t out[1];
    assert_int_equal(pl_hkdf_sha256(out, 0, NULL, 0, NULL, 0, NULL, 0), PL_ERR_BAD_LENGTH);
    assert_int_equal(pl_hkdf_sha256(out, PL_HKDF_SHA256_MAX_OUT + 1, NULL, 0, NULL, 0, NULL, 0),
                     PL_ERR_BAD_LENGTH);
}

static void test_ct_equal(void **state) {
    (void)state;
    uint8_t a[32] = {1}, b[32] = {1};
    assert_true(pl_ct_equal(a, b, 32));
    b[31] ^= 1;
    assert_false(pl_ct_equal(a, b, 32));
}

typedef struct item {
    int v;
    pl__hnode node;
} item;

/* Entries with equal hashes are all found; removal, the walk and pop see
 * every entry once; growth keeps them. */
static void test_htable(void **state) {
    (void)state;
    static const uint8_t key[16] = {1, 2, 3};
    pl__htable t;
    pl__ht_init(&t, key);
    assert_null(pl__ht_first(&t, 7));
    assert_null(pl__ht_pop(&t));
    enum { N = 200 };
    item it[N];
    for (int i = 0; i < N; i++) {
        it[i].v = i;
        /* Half share one hash: the chains must tell them apart. */
        uint64_t h = i % 2 ? 42 : pl__ht_hash(&t, &i, sizeof i);
        assert_int_equal(pl__ht_insert(&t, &it[i].node, h), PL_OK);
    }
    assert_int_equal(t.n, N);
    assert_true(t.nb > N);
    assert_int_equal(pl__ht_hash(&t, "a", 1), pl__ht_hash(&t, "a", 1));
    assert_int_not_equal(pl__ht_hash(&t, "a", 1), pl__ht_hash(&t, "b", 1));
    int odd = 0;
    for (pl__hnode *n = pl__ht_first(&t, 42); n; n = pl__ht_next(n, 42)) {
        assert_int_equal(PL__ENTRY(n, item, node)->v % 2, 1);
        odd++;
    }
    assert_int_equal(odd, N / 2);
    pl__ht_remove(&t, &it[3].node);
    pl__ht_remove(&t, &it[4].node);
    int seen[N] = {0}, count = 0;
    size_t cur = 0;
    for (pl__hnode *n = pl__ht_each(&t, &cur, NULL); n; n = pl__ht_each(&t, &cur, n)) {
        seen[PL__ENTRY(n, item, node)->v]++;
        count++;
    }
    assert_int_equal(count, N - 2);
    for (int i = 0; i < N; i++)
        assert_int_equal(seen[i], i == 3 || i == 4 ? 0 : 1);
    assert_int_equal(pl__ht_reserve(&t, 1000), PL_OK);
    assert_true(t.nb > 1000);
    int four = 4;
    assert_ptr_equal(pl__ht_first(&t, pl__ht_hash(&t, &four, sizeof four)), NULL);
    int ten = 10;
    pl__hnode *f = pl__ht_first(&t, pl__ht_hash(&t, &ten, sizeof ten));
    assert_non_null(f);
    assert_int_equal(PL__ENTRY(f, item, node)->v, 10);
    memset(seen, 0, sizeof seen);
    count = 0;
    for (pl__hnode *n; (n = pl__ht_pop(&t));) {
        seen[PL__ENTRY(n, item, node)->v]++;
        count++;
    }
    assert_int_equal(count, N - 2);
    assert_int_equal(t.n, 0);
    for (int i = 0; i < N; i++)
        assert_int_equal(seen[i], i == 3 || i == 4 ? 0 : 1);
    pl__ht_free(&t);
    assert_int_equal(t.nb, 0);
}

static uint64_t fnv1a64(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return h;
}

/* Keys chosen to share one chain of an unkeyed FNV-1a table (their hashes
 * agree in the low 16 bits: issue 11, hole 4) spread over the keyed table
 * like any others: no chain is long. The last four hex digits of each key
 * are found by meeting in the middle on 16-bit FNV states. */
static void test_htable_resists_chosen_keys(void **state) {
    (void)state;
    enum { N = 4096 };
    static const char hex[] = "0123456789abcdef";
    static char keys[N][65];
    static item it[N];
    const uint16_t p = (uint16_t)0x100000001b3ull;
    uint16_t pinv = 1;
    for (int i = 0; i < 15; i++)
        pinv = (uint16_t)(pinv * pinv * p); /* p^(2^16 - 1) */
    assert_int_equal((uint16_t)(pinv * p), 1);
    static int16_t back[65536];
    memset(back, -1, sizeof back);
    for (int k = 0; k < 256; k++) {
        uint16_t y = (uint16_t)((uint16_t)(0 * pinv) ^ (unsigned char)hex[k & 15]);
        y = (uint16_t)((uint16_t)(y * pinv) ^ (unsigned char)hex[k >> 4]);
        back[y] = (int16_t)k;
    }
    uint64_t seed = 11;
    for (int made = 0; made < N;) {
        char *t = keys[made];
        for (int i = 0; i < 60; i++)
            t[i] = hex[pl_test_rand(&seed) % 16];
        uint16_t s0 = (uint16_t)fnv1a64(t, 60);
        for (int k = 0; k < 256; k++) {
            uint16_t x = (uint16_t)((s0 ^ (unsigned char)hex[k >> 4]) * p);
            x = (uint16_t)((x ^ (unsigned char)hex[k & 15]) * p);
            if (back[x] < 0) continue;
            int j = back[x];
            t[60] = hex[k >> 4], t[61] = hex[k & 15], t[62] = hex[j >> 4], t[63] = hex[j & 15];
            t[64] = '\0';
            assert_int_equal((uint16_t)fnv1a64(t, 64), 0);
            made++;
            break;
        }
    }
    uint8_t key[16];
    pl_random(key, sizeof key);
    pl__htable t;
    pl__ht_init(&t, key);
    for (int i = 0; i < N; i++)
        assert_int_equal(pl__ht_insert(&t, &it[i].node, pl__ht_hash(&t, keys[i], 64)), PL_OK);
    size_t longest = 0;
    for (size_t b = 0; b < t.nb; b++) {
        size_t len = 0;
        for (pl__hnode *n = t.b[b]; n; n = n->next)
            len++;
        if (len > longest) longest = len;
    }
    assert_true(t.nb >= N);
    assert_true(longest <= 12); /* about 6 expected for 4096 keys; 4096 unkeyed */
    pl__ht_free(&t);
}

static jmp_buf misuse_jmp;
static char misuse_what[512];

static void catch_misuse(const char *what) {
    snprintf(misuse_what, sizeof misuse_what, "%s", what);
    longjmp(misuse_jmp, 1);
}

/* A precondition that fails reaches the handler with what and where. */
static void test_misuse_check_fires(void **state) {
    (void)state;
    pl_set_misuse_handler(catch_misuse);
    misuse_what[0] = '\0';
    uint8_t out[4];
    volatile int reached = 0;
    if (!setjmp(misuse_jmp)) {
        (void)pl_hex_decode(out, sizeof out, NULL, "00", 2); /* out_len NULL */
        reached = 1;
    }
    assert_int_equal(reached, 0);
    assert_non_null(strstr(misuse_what, "precondition failed: out_len"));
    assert_non_null(strstr(misuse_what, "codec.c:"));
    misuse_what[0] = '\0';
    if (!setjmp(misuse_jmp)) {
        (void)pl_transport_publish(NULL, "t", (const uint8_t *)"x", 1, NULL);
        reached = 1;
    }
    assert_int_equal(reached, 0);
    assert_non_null(strstr(misuse_what, "precondition failed"));
    pl_set_misuse_handler(NULL);
}

/* The default handler says what went wrong on stderr and aborts. */
static void test_misuse_default_aborts(void **state) {
    (void)state;
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fd[1], 2);
        uint8_t out[4];
        (void)pl_hex_decode(out, sizeof out, NULL, "00", 2);
        _exit(0); /* not reached when the check fires */
    }
    close(fd[1]);
    char buf[512] = {0};
    size_t n = 0;
    for (ssize_t r; n < sizeof buf - 1 && (r = read(fd[0], buf + n, sizeof buf - 1 - n)) > 0;)
        n += (size_t)r;
    close(fd[0]);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGABRT);
    assert_non_null(strstr(buf, "pairlink: API misuse: precondition failed: out_len"));
}

/* SHA-256, HMAC and HKDF run on libcrypto; libsodium's results are the
 * reference: random lengths around the 64-byte block, keys longer than a
 * block (hashed first), empty inputs, outputs of every length to 300. */
static void check_hash_against_sodium(uint64_t *seed, int rounds) {
    uint8_t buf[700], key[200], info[90], a[32], b[32];
    uint8_t oa[300], ob[300]; /* per thread: the test runs in several */
    for (int i = 0; i < rounds; i++) {
        size_t n = (size_t)(pl_test_rand(seed) % sizeof buf);
        size_t kn = (size_t)(pl_test_rand(seed) % sizeof key);
        size_t in = (size_t)(pl_test_rand(seed) % sizeof info);
        size_t on = 1 + (size_t)(pl_test_rand(seed) % sizeof oa);
        if (i % 10 == 0) n = kn = in = 0;
        pl_test_rand_bytes(seed, buf, n);
        pl_test_rand_bytes(seed, key, kn);
        pl_test_rand_bytes(seed, info, in);
        pl_sha256(a, buf, n);
        pl__sha256_sodium(b, buf, n);
        assert_memory_equal(a, b, 32);
        size_t cut = n ? (size_t)(pl_test_rand(seed) % n) : 0;
        pl__sha256_cat(a, buf, cut, NULL, 0, buf + cut, n - cut);
        assert_memory_equal(a, b, 32);
        pl_hmac_sha256(a, kn ? key : NULL, kn, n ? buf : NULL, n);
        pl__hmac_sha256_sodium(b, key, kn, buf, n);
        assert_memory_equal(a, b, 32);
        assert_int_equal(
            pl_hkdf_sha256(oa, on, kn ? key : NULL, kn, n ? buf : NULL, n, in ? info : NULL, in),
            PL_OK);
        pl__hkdf_sha256_sodium(ob, on, key, kn, buf, n, info, in);
        assert_memory_equal(oa, ob, on);
    }
}

static void *hash_thread(void *arg) {
    uint64_t seed = (uint64_t)(uintptr_t)arg;
    check_hash_against_sodium(&seed, 300);
    return NULL;
}

static void test_hash_matches_sodium(void **state) {
    (void)state;
    uint64_t seed = pl_test_seed();
    check_hash_against_sodium(&seed, 3000);
    /* Other threads get their own contexts (freed when they end: ASan's
     * leak check sees it). */
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(
            pthread_create(&th[i], NULL, hash_thread, (void *)(uintptr_t)(seed + 1 + i)), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
}

int main(void) {
    if (pl_init() != PL_OK) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strerror_names_every_code),
        cmocka_unit_test(test_detail_text),
        cmocka_unit_test(test_hkdf_rfc5869),
        cmocka_unit_test(test_hkdf_length_bounds),
        cmocka_unit_test(test_hash_matches_sodium),
        cmocka_unit_test(test_ct_equal),
        cmocka_unit_test(test_htable),
        cmocka_unit_test(test_htable_resists_chosen_keys),
        cmocka_unit_test(test_misuse_check_fires),
        cmocka_unit_test(test_misuse_default_aborts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
