/* SPDX-License-Identifier: Apache-2.0 */
/* Node-manager pairing core: the code P, kdf, HELLO messages, fingerprint,
 * rendezvous, and the two engines run against each other through the
 * loopback transport (loopback.h) on a virtual driver. The vectors printed in
 * docs/protocol/node-manager-pairing.md are recomputed and compared
 * (PL_NM_PRINT_VECTORS=1 prints the block instead). Seeded:
 * PL_TEST_SEED=<n> repeats a run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pairlink/codec.h"
#include "pairlink/crypto.h"
#include "pairlink/driver.h"
#include "pairlink/hash.h"
#include "pairlink/loopback.h"
#include "pairlink/nm_pairing.h"
#include "pairlink/relay_client.h"
#include "support/support.h"

#define T0 1700000000000LL
#define MIN_MS 60000LL

static uint64_t seed_state;
static const pl_nm_kdf_params light = {.opslimit = 1, .memlimit = 8192};
static const char crock[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
static const uint8_t weights[15] = {2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 32, 1};

static void test_rng(void *ctx, uint8_t *buf, size_t len) {
    pl_test_rand_bytes((uint64_t *)ctx, buf, len);
}

static int cval(char c) {
    const char *p = strchr(crock, c);
    return p && c ? (int)(p - crock) : -1;
}

/* ======================= the code P ======================= */

static void random_code(uint8_t code[8]) { pl_test_rand_bytes(&seed_state, code, 8); }

static void test_code_roundtrip_and_shape(void **state) {
    (void)state;
    for (int k = 0; k < 5000; k++) {
        uint8_t code[8], back[8];
        random_code(code);
        if (k == 0) memset(code, 0, 8);
        if (k == 1) memset(code, 0xff, 8);
        char text[PL_NM_CODE_TEXT_SIZE];
        pl_nm_code_format(text, code);
        assert_int_equal(strlen(text), 17);
        assert_true(text[5] == '-' && text[11] == '-');
        /* the 65-bit value 0 || P: first digit at most F */
        assert_true(cval(text[0]) >= 0 && cval(text[0]) <= 15);
        /* weighted sum over the 15 digits is 0 mod 37, check value canonical */
        int v[15], n = 0;
        for (int i = 0; i < 17; i++)
            if (text[i] != '-') v[n++] = cval(text[i]);
        assert_int_equal(n, 15);
        unsigned s = 0;
        for (int i = 0; i < 15; i++) {
            assert_true(v[i] >= 0);
            s += weights[i] * (unsigned)v[i];
        }
        assert_int_equal(s % 37, 0);
        assert_true(32 * v[13] + v[14] <= 36);
        uint64_t p = 0;
        for (int i = 0; i < 13; i++) p = p << 5 | (uint64_t)v[i];
        for (int i = 0; i < 8; i++) assert_int_equal(code[i], (uint8_t)(p >> (56 - 8 * i)));

        assert_int_equal(pl_nm_code_parse(back, text, strlen(text)), PL_OK);
        assert_memory_equal(back, code, 8);
        /* lower case, no separators, spaces, and the I/L/O aliases */
        char alt[64];
        size_t m = 0;
        for (int i = 0; i < 17; i++) {
            char c = text[i];
            if (c == '-') {
                alt[m++] = ' ';
                continue;
            }
            if (c == '1') c = (k & 1) ? 'i' : 'L';
            else if (c == '0') c = 'o';
            else if (c >= 'A' && c <= 'Z' && (k & 2)) c = (char)(c - 'A' + 'a');
            alt[m++] = c;
        }
        memset(back, 0xee, 8);
        assert_int_equal(pl_nm_code_parse(back, alt, m), PL_OK);
        assert_memory_equal(back, code, 8);
        m = 0;
        for (int i = 0; i < 17; i++)
            if (text[i] != '-') alt[m++] = text[i];
        assert_int_equal(pl_nm_code_parse(back, alt, m), PL_OK);
        assert_memory_equal(back, code, 8);
    }
}

static void test_code_single_substitution_detected(void **state) {
    (void)state;
    long checked = 0;
    for (int k = 0; k < 300; k++) {
        uint8_t code[8], back[8];
        random_code(code);
        char text[PL_NM_CODE_TEXT_SIZE];
        pl_nm_code_format(text, code);
        for (int pos = 0; pos < 17; pos++) {
            if (text[pos] == '-') continue;
            char orig = text[pos];
            for (int d = 0; d < 32; d++) {
                if (crock[d] == orig) continue;
                text[pos] = crock[d];
                memset(back, 0xee, 8);
                assert_int_equal(pl_nm_code_parse(back, text, 17), PL_ERR_CODE_CHECKSUM);
                assert_true(back[0] == 0 && back[7] == 0);
                checked++;
            }
            text[pos] = orig;
        }
    }
    assert_int_equal(checked, 300L * 15 * 31);
}

static void test_code_transpositions_detected(void **state) {
    (void)state;
    long checked = 0;
    for (int k = 0; k < 2000; k++) {
        uint8_t code[8], back[8];
        random_code(code);
        char text[PL_NM_CODE_TEXT_SIZE], d[16];
        pl_nm_code_format(text, code);
        int n = 0;
        for (int i = 0; i < 17; i++)
            if (text[i] != '-') d[n++] = text[i];
        d[n] = '\0';
        for (int i = 0; i < 15; i++) {
            for (int j = i + 1; j < 15; j++) {
                if (d[i] == d[j]) continue;
                char t = d[i];
                d[i] = d[j];
                d[j] = t;
                assert_int_equal(pl_nm_code_parse(back, d, 15), PL_ERR_CODE_CHECKSUM);
                d[j] = d[i];
                d[i] = t;
                checked++;
            }
        }
    }
    assert_true(checked > 2000L * 90);
}

static void test_code_format_errors(void **state) {
    (void)state;
    uint8_t code[8] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}, back[8];
    char text[PL_NM_CODE_TEXT_SIZE];
    pl_nm_code_format(text, code);
    char buf[128];
    /* one character short, one too many */
    assert_int_equal(pl_nm_code_parse(back, text, 16), PL_ERR_CODE_FORMAT);
    snprintf(buf, sizeof buf, "%s0", text);
    assert_int_equal(pl_nm_code_parse(back, buf, strlen(buf)), PL_ERR_CODE_FORMAT);
    /* characters outside the alphabet: U, punctuation, NUL, non-ASCII */
    static const char bad[] = {'U', 'u', '*', '_', '.', '\0', '\t', (char)0xc3};
    for (size_t i = 0; i < sizeof bad; i++) {
        memcpy(buf, text, 18);
        buf[3] = bad[i];
        assert_int_equal(pl_nm_code_parse(back, buf, 17), PL_ERR_CODE_FORMAT);
    }
    assert_int_equal(pl_nm_code_parse(back, "", 0), PL_ERR_CODE_FORMAT);
    assert_int_equal(pl_nm_code_parse(back, NULL, 0), PL_ERR_CODE_FORMAT);
    /* too much input, even if only separators */
    memset(buf, '-', sizeof buf);
    memcpy(buf + 60, text, 17);
    assert_int_equal(pl_nm_code_parse(back, buf, 77), PL_ERR_CODE_FORMAT);
    memcpy(buf + 47, text, 17);
    assert_int_equal(pl_nm_code_parse(back, buf, 64), PL_OK);
    assert_memory_equal(back, code, 8);
    /* a first digit above F with a valid checksum (several errors) */
    int v[15] = {16};
    unsigned s = 16 * 2;
    for (int i = 1; i < 13; i++) {
        v[i] = i;
        s += weights[i] * (unsigned)i;
    }
    unsigned c = (37 - s % 37) % 37;
    v[13] = (int)(c >> 5);
    v[14] = (int)(c & 31);
    for (int i = 0; i < 15; i++) buf[i] = crock[v[i]];
    assert_int_equal(pl_nm_code_parse(back, buf, 15), PL_ERR_CODE_FORMAT);
    /* a valid sum with non-canonical check digits (32a + b = c + 37) */
    pl_nm_code_format(text, code);
    int n = 0;
    for (int i = 0; i < 17; i++)
        if (text[i] != '-') v[n++] = cval(text[i]);
    c = (unsigned)(32 * v[13] + v[14]) + 37;
    buf[13] = crock[c >> 5];
    buf[14] = crock[c & 31];
    for (int i = 0; i < 13; i++) buf[i] = crock[v[i]];
    assert_int_equal(pl_nm_code_parse(back, buf, 15), PL_ERR_CODE_CHECKSUM);
}

/* ======================= kdf, fingerprint, rendezvous ======================= */

static void test_kdf_deterministic(void **state) {
    (void)state;
    uint8_t a[8], b[8];
    random_code(a);
    memcpy(b, a, 8);
    b[7] ^= 1;
    pl_nm_secrets s1, s2, s3;
    assert_int_equal(pl_nm_derive(&s1, a, &light), PL_OK);
    assert_int_equal(pl_nm_derive(&s2, a, &light), PL_OK);
    assert_int_equal(pl_nm_derive(&s3, b, &light), PL_OK);
    assert_memory_equal(&s1, &s2, sizeof s1);
    assert_memory_not_equal(s1.topic_key, s3.topic_key, 32);
    assert_memory_not_equal(s1.hs, s3.hs, 32);
    assert_memory_not_equal(s1.topic_key, s1.hs, 32);
    /* T and HS are Argon2id of the 8 bytes with the two salts */
    uint8_t t[32], hs[32];
    assert_int_equal(pl_argon2id(t, 32, a, 8, (const uint8_t *)"pairlink-topic-1", 1, 8192), PL_OK);
    assert_int_equal(pl_argon2id(hs, 32, a, 8, (const uint8_t *)"pairlink-hskey-1", 1, 8192), PL_OK);
    assert_memory_equal(t, s1.topic_key, 32);
    assert_memory_equal(hs, s1.hs, 32);
    char hex[33], want[80];
    assert_int_equal(pl_hex_encode(hex, sizeof hex, t, 16), PL_OK);
    snprintf(want, sizeof want, "/pairlink/1/pair-%s/proto", hex);
    assert_string_equal(s1.content_topic, want);
    /* out-of-range parameters */
    pl_nm_kdf_params badp = {.opslimit = 0, .memlimit = 8192};
    memset(&s3, 0xaa, sizeof s3);
    assert_int_equal(pl_nm_derive(&s3, a, &badp), PL_ERR_INVALID_ARG);
    uint8_t zero[sizeof s3];
    memset(zero, 0, sizeof zero);
    assert_memory_equal(&s3, zero, sizeof s3);
    pl_nm_secrets_wipe(&s1);
    assert_memory_equal(&s1, zero, sizeof s1);
}

/* The worked example of spec section 7: a second implementation must show
 * the same strings. */
static void test_fingerprint_known_answer(void **state) {
    (void)state;
    uint8_t hs[32], app[32], nm[32];
    for (int i = 0; i < 32; i++) {
        hs[i] = (uint8_t)i;
        app[i] = (uint8_t)(32 + i);
        nm[i] = (uint8_t)(64 + i);
    }
    char fp[PL_NM_FINGERPRINT_SIZE];
    pl_nm_fingerprint(fp, hs, app, nm);
    assert_string_equal(fp, "W74C-VQRA");
    pl_nm_fingerprint(fp, hs, nm, app);
    assert_string_equal(fp, "A4YW-3D6D");
}

static void test_fingerprint_and_rendezvous(void **state) {
    (void)state;
    uint8_t hs[32], app[32], nm[32];
    pl_test_rand_bytes(&seed_state, hs, 32);
    pl_test_rand_bytes(&seed_state, app, 32);
    pl_test_rand_bytes(&seed_state, nm, 32);
    char fp[PL_NM_FINGERPRINT_SIZE], fp2[PL_NM_FINGERPRINT_SIZE];
    pl_nm_fingerprint(fp, hs, app, nm);
    assert_int_equal(strlen(fp), 9);
    assert_int_equal(fp[4], '-');
    /* first 40 bits of sha256("pairlink-fp-1" | HS | app | nm) */
    uint8_t in[13 + 96], h[32];
    memcpy(in, "pairlink-fp-1", 13);
    memcpy(in + 13, hs, 32);
    memcpy(in + 45, app, 32);
    memcpy(in + 77, nm, 32);
    pl_sha256(h, in, sizeof in);
    uint64_t x = 0;
    for (int i = 0; i < 5; i++) x = x << 8 | h[i];
    for (int i = 0, k = 0; i < 8; i++, k++) {
        if (i == 4) k++;
        assert_int_equal(fp[k], crock[(x >> (35 - 5 * i)) & 31]);
    }
    pl_nm_fingerprint(fp2, hs, nm, app); /* roles matter */
    assert_string_not_equal(fp, fp2);

    pl_nm_rendezvous rv, rv2;
    pl_nm_rendezvous_derive(&rv, nm, app);
    uint8_t ikm[64], want[48];
    memcpy(ikm, nm, 32);
    memcpy(ikm + 32, app, 32);
    assert_int_equal(pl_hkdf_sha256(want, 48, (const uint8_t *)"pairlink-rv-1", 13, ikm, 64, NULL, 0), PL_OK);
    assert_memory_equal(rv.rv, want, 48);
    assert_memory_equal(rv.nametag, want + 32, 16);
    char hex[33], ct[80];
    assert_int_equal(pl_hex_encode(hex, sizeof hex, want, 16), PL_OK);
    snprintf(ct, sizeof ct, "/pairlink/1/rv-%s/proto", hex);
    assert_string_equal(rv.content_topic, ct);
    pl_nm_rendezvous_derive(&rv2, app, nm); /* direction matters */
    assert_memory_not_equal(rv.rv, rv2.rv, 48);
}

/* ======================= HELLO ======================= */

static void make_hello(pl_nm_hello *h, pl_nm_role role, const char *name) {
    memset(h, 0, sizeof *h);
    h->role = role;
    uint8_t priv[32];
    pl_x25519_keypair(h->identity, priv);
    h->created_at_ms = (uint64_t)T0;
    pl_test_rand_bytes(&seed_state, h->nonce, 16);
    if (role == PL_NM_ROLE_APP) pl_test_rand_bytes(&seed_state, h->echo, 16);
    snprintf(h->name, sizeof h->name, "%s", name);
}

static void test_hello_layout(void **state) {
    (void)state;
    pl_nm_hello h, d;
    make_hello(&h, PL_NM_ROLE_APP, "Nimbus GUI \xc3\xa9");
    h.created_at_ms = 0x0102030405060708ull;
    uint8_t body[PL_NM_HELLO_BODY_MAX];
    size_t n = 0;
    assert_int_equal(pl_nm_hello_encode(body, &n, &h), PL_OK);
    size_t nl = strlen(h.name);
    assert_int_equal(n, 78 + nl);
    assert_memory_equal(body, "PLH1", 4);
    assert_int_equal(body[4], 1);
    assert_memory_equal(body + 5, h.identity, 32);
    for (int i = 0; i < 8; i++) assert_int_equal(body[37 + i], i + 1);
    assert_memory_equal(body + 45, h.nonce, 16);
    assert_memory_equal(body + 61, h.echo, 16);
    assert_int_equal(body[77], nl);
    assert_memory_equal(body + 78, h.name, nl);
    assert_int_equal(pl_nm_hello_decode(&d, body, n), PL_OK);
    assert_memory_equal(&d, &h, sizeof h);

    /* every length but the right one */
    for (size_t k = 0; k < PL_NM_HELLO_BODY_MAX + 2; k++) {
        if (k == n) continue;
        uint8_t big[PL_NM_HELLO_BODY_MAX + 2];
        memset(big, 0, sizeof big);
        memcpy(big, body, k < n ? k : n);
        assert_int_equal(pl_nm_hello_decode(&d, big, k), PL_ERR_HELLO_MALFORMED);
        assert_int_equal(d.role, 0);
    }
    uint8_t b2[PL_NM_HELLO_BODY_MAX];
    memcpy(b2, body, n);
    b2[3] = '2'; /* magic "PLH2": a future version */
    assert_int_equal(pl_nm_hello_decode(&d, b2, n), PL_ERR_HELLO_MALFORMED);
    memcpy(b2, body, n);
    for (int r = 0; r < 256; r++) {
        if (r == 1 || r == 2) continue;
        b2[4] = (uint8_t)r;
        assert_int_equal(pl_nm_hello_decode(&d, b2, n), PL_ERR_HELLO_MALFORMED);
    }
    memcpy(b2, body, n);
    b2[77] = 65;
    assert_int_equal(pl_nm_hello_decode(&d, b2, n), PL_ERR_HELLO_MALFORMED);

    /* names: invalid UTF-8, controls, too long */
    static const char *const badnames[] = {"a\x01", "\x7f", "\xc2\x85", "\xc0\xaf", "\xed\xa0\x80",
                                           "\xf4\x90\x80\x80", "\xe2\x82", "\xff", "tab\there"};
    for (size_t i = 0; i < sizeof badnames / sizeof badnames[0]; i++) {
        pl_nm_hello x = h;
        snprintf(x.name, sizeof x.name, "%s", badnames[i]);
        assert_int_equal(pl_nm_hello_encode(body, &n, &x), PL_ERR_BAD_UTF8);
        assert_int_equal(n, 0);
        /* and the same bytes received */
        assert_int_equal(pl_nm_hello_encode(b2, &n, &h), PL_OK);
        size_t bl = strlen(badnames[i]);
        b2[77] = (uint8_t)bl;
        memcpy(b2 + 78, badnames[i], bl);
        assert_int_equal(pl_nm_hello_decode(&d, b2, 78 + bl), PL_ERR_BAD_UTF8);
    }
    pl_nm_hello x = h;
    memset(x.name, 'a', sizeof x.name); /* 65 bytes, no NUL */
    assert_int_equal(pl_nm_hello_encode(body, &n, &x), PL_ERR_TOO_LARGE);
    x.name[64] = '\0';
    assert_int_equal(pl_nm_hello_encode(body, &n, &x), PL_OK);
    assert_int_equal(n, PL_NM_HELLO_BODY_MAX);
    x.role = 3;
    assert_int_equal(pl_nm_hello_encode(body, &n, &x), PL_ERR_INVALID_ARG);

    /* low-order identity keys (0, 1, and a point of order 8) */
    static const char *const low[] = {
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"};
    for (size_t i = 0; i < 3; i++) {
        x = h;
        size_t kl;
        uint8_t *k = pl_test_unhex(low[i], &kl);
        memcpy(x.identity, k, 32);
        free(k);
        assert_int_equal(pl_nm_hello_encode(body, &n, &x), PL_OK);
        assert_int_equal(pl_nm_hello_decode(&d, body, n), PL_ERR_WEAK_KEY);
    }
}

static void test_hello_seal_open_tamper(void **state) {
    (void)state;
    pl_nm_hello h, d;
    make_hello(&h, PL_NM_ROLE_NODE_MANAGER, "node manager");
    uint8_t hs[32], wire[PL_NM_HELLO_WIRE_BYTES];
    pl_test_rand_bytes(&seed_state, hs, 32);
    assert_int_equal(pl_nm_hello_seal(wire, hs, &h, NULL), PL_OK);
    assert_int_equal(pl_nm_hello_open(&d, hs, wire, sizeof wire), PL_OK);
    assert_memory_equal(&d, &h, sizeof h);
    for (size_t i = 0; i < sizeof wire; i++) {
        wire[i] ^= 0x40;
        assert_int_equal(pl_nm_hello_open(&d, hs, wire, sizeof wire), PL_ERR_DECRYPT);
        assert_int_equal(d.role, 0);
        wire[i] ^= 0x40;
    }
    hs[0] ^= 1;
    assert_int_equal(pl_nm_hello_open(&d, hs, wire, sizeof wire), PL_ERR_DECRYPT);
    hs[0] ^= 1;
    /* a valid Waku payload that is not a HELLO, and one that is too long */
    uint8_t junk[300], w2[PL_NM_HELLO_WIRE_MAX + 1];
    size_t wl;
    pl_test_rand_bytes(&seed_state, junk, sizeof junk);
    assert_int_equal(pl_waku_v1_seal(w2, sizeof w2, &wl, hs, junk, 100, NULL), PL_OK);
    assert_int_equal(pl_nm_hello_open(&d, hs, w2, wl), PL_ERR_HELLO_MALFORMED);
    assert_int_equal(pl_waku_v1_seal(w2, sizeof w2, &wl, hs, junk, 143, NULL), PL_OK);
    assert_int_equal(pl_nm_hello_open(&d, hs, w2, wl), PL_ERR_HELLO_MALFORMED);
    assert_int_equal(pl_nm_hello_open(&d, hs, w2, PL_NM_HELLO_WIRE_MAX + 1), PL_ERR_TOO_LARGE);
    assert_int_equal(pl_nm_hello_open(&d, hs, w2, 10), PL_ERR_TRUNCATED);
    /* a HELLO padded differently (another encoder) still opens */
    uint8_t body[PL_NM_HELLO_BODY_MAX];
    size_t n;
    assert_int_equal(pl_nm_hello_encode(body, &n, &h), PL_OK);
    assert_int_equal(pl_waku_v1_seal(w2, sizeof w2, &wl, hs, body, n, NULL), PL_OK);
    assert_int_equal(wl, PL_NM_HELLO_WIRE_BYTES);
}

/* ======================= the engines ======================= */

#define MAXSIDES 4

/* A side: one engine on one loopback endpoint, driven as a runtime would
 * (a driver task: its deadline, its outputs before every wait). */
typedef struct side {
    const char *label;
    pl_nm_pairing_config cfg;
    pl_nm_secrets sec;
    uint8_t priv[32];
    char name[PL_NM_NAME_MAX + 1];
    pl_nm_pairing *p;
    pl_transport *tp;
    pl_driver_task task;
    int64_t start_ms;
    bool started, subscribed;
    /* persistence, done by the test as a runtime would */
    bool need_confirm;
    pl_err confirm_result;
    int persisted;
    int published, published_before_confirm;
    /* events */
    int learned, completed, failed, reanswered, dropped;
    int drops[PL_NM_DROP__COUNT];
    pl_err fail_err, last_drop_err;
    int64_t completed_at;
    pl_nm_peer peer;
    uint8_t last_publish[PL_NM_HELLO_WIRE_BYTES];
    int last_rc; /* pl_err of the last on_message */
} side;

static side S[MAXSIDES];
static int n_sides;
static pl_driver *D;
static pl_loopback_hub *H;
static int64_t now;
static bool echo_to_sender; /* set before the first side: the hub's echo */
static uint64_t engine_rng;

static bool drain(side *s);

static void on_message(void *ud, pl_transport *t, const char *topic, const uint8_t *data,
                       size_t len, const pl_delivery_info *info) {
    (void)t;
    side *s = ud;
    now = pl_driver_now(D);
    if (!s->p || strcmp(topic, pl_nm_pairing_topic(s->p))) return;
    s->last_rc = info->err ? pl_nm_pairing_on_bad_delivery(s->p, info->err, now)
                           : pl_nm_pairing_on_message(s->p, data, len, now);
}

static int64_t side_deadline(pl_driver_task *t) {
    side *s = t->data;
    return s->started ? pl_nm_pairing_next_deadline(s->p) : s->start_ms;
}

static void side_timer(pl_driver_task *t, int64_t at) {
    side *s = t->data;
    now = at;
    if (!s->started) {
        assert_int_equal(pl_nm_pairing_new(&s->p, &s->cfg, now), PL_OK);
        s->started = true;
    } else {
        pl_nm_pairing_on_timer(s->p, now);
    }
}

/* Outputs, then persistence, until the engine is quiet. */
static void side_before_wait(pl_driver_task *t, int64_t at) {
    side *s = t->data;
    now = at;
    for (bool progress = true; progress;) {
        progress = drain(s);
        if (s->need_confirm) {
            s->need_confirm = false;
            if (s->confirm_result == PL_OK) s->persisted++;
            assert_int_equal(pl_nm_pairing_confirm_persisted(s->p, s->confirm_result, now), PL_OK);
            progress = true;
        }
    }
}

static side *add_side(const char *label, pl_nm_role role, const uint8_t code[8], int64_t start,
                      const char *name) {
    if (!D) {
        assert_int_equal(pl_driver_new_virtual(&D, T0), PL_OK);
        pl_loopback_config lc = {.echo = echo_to_sender};
        assert_int_equal(pl_loopback_hub_new(&H, D, &lc), PL_OK);
    }
    side *s = &S[n_sides++];
    memset(s, 0, sizeof *s);
    s->label = label;
    s->start_ms = start;
    s->confirm_result = PL_OK;
    assert_int_equal(pl_nm_derive(&s->sec, code, &light), PL_OK);
    s->cfg.role = role;
    pl_x25519_keypair(s->cfg.identity_pub, s->priv);
    snprintf(s->name, sizeof s->name, "%s", name);
    s->cfg.name = s->name;
    s->cfg.secrets = &s->sec;
    s->cfg.rng = test_rng;
    s->cfg.rng_ctx = &engine_rng;
    pl_transport_handler h = {on_message, NULL, s, NULL};
    assert_int_equal(pl_loopback_new(&s->tp, H, label, &h), PL_OK);
    s->task.data = s;
    s->task.next_deadline = side_deadline;
    s->task.on_timer = side_timer;
    s->task.before_wait = side_before_wait;
    pl_driver_start(D, &s->task);
    return s;
}

static void reset_world(void) {
    for (int i = 0; i < n_sides; i++) {
        pl_driver_stop(&S[i].task);
        pl_transport_close(S[i].tp, 0, NULL, NULL);
    }
    if (D) pl_driver_run(D);
    pl_loopback_hub_free(H);
    pl_driver_free(D);
    H = NULL;
    D = NULL;
    for (int i = 0; i < n_sides; i++) pl_nm_pairing_free(S[i].p);
    memset(S, 0, sizeof S);
    n_sides = 0;
    now = T0;
    echo_to_sender = true;
}

static int setup(void **state) {
    (void)state;
    reset_world();
    return 0;
}

static int teardown(void **state) {
    (void)state;
    reset_world();
    return 0;
}

static bool drain(side *s) {
    pl_nm_output o;
    bool any = false;
    while (s->p && pl_nm_pairing_poll(s->p, &o)) {
        any = true;
        switch (o.kind) {
        case PL_NM_OUT_SUBSCRIBE:
            assert_string_equal(o.content_topic, pl_nm_pairing_topic(s->p));
            s->subscribed = true;
            assert_int_equal(pl_transport_subscribe(s->tp, o.content_topic), PL_OK);
            break;
        case PL_NM_OUT_UNSUBSCRIBE:
            s->subscribed = false;
            assert_int_equal(pl_transport_unsubscribe(s->tp, o.content_topic), PL_OK);
            break;
        case PL_NM_OUT_PUBLISH: {
            assert_int_equal(o.payload_len, PL_NM_HELLO_WIRE_BYTES);
            s->published++;
            if (s->learned && !s->persisted) s->published_before_confirm++;
            memcpy(s->last_publish, o.payload, sizeof s->last_publish);
            pl_publish_opts po = {.ttl_s = PL_NM_RELAY_TTL_S};
            assert_int_equal(pl_transport_publish(s->tp, o.content_topic, o.payload, o.payload_len, &po),
                             PL_OK);
            break;
        }
        case PL_NM_OUT_EVENT:
            switch (o.event) {
            case PL_NM_EV_PEER_LEARNED:
                s->learned++;
                s->peer = o.peer;
                s->need_confirm = true;
                break;
            case PL_NM_EV_COMPLETED:
                s->completed++;
                s->completed_at = now;
                assert_memory_equal(&s->peer, &o.peer, sizeof o.peer);
                break;
            case PL_NM_EV_FAILED:
                s->failed++;
                s->fail_err = o.err;
                break;
            case PL_NM_EV_DROPPED:
                s->dropped++;
                s->drops[o.reason]++;
                s->last_drop_err = o.err;
                break;
            case PL_NM_EV_REANSWERED:
                s->reanswered++;
                break;
            }
            break;
        }
    }
    return any;
}

/* Run the world until `end` (virtual ms). A test may have moved `now`
 * ahead by hand (direct calls): the driver catches up first. */
static void run_until(int64_t end) {
    if (now > pl_driver_now(D)) pl_driver_advance(D, now - pl_driver_now(D));
    pl_driver_advance(D, end - pl_driver_now(D));
    now = end;
}

static void assert_paired(side *app, side *nm) {
    assert_int_equal(app->learned, 1);
    assert_int_equal(nm->learned, 1);
    assert_int_equal(app->completed, 1);
    assert_int_equal(nm->completed, 1);
    assert_int_equal(app->failed + nm->failed, 0);
    assert_memory_equal(app->peer.identity, nm->cfg.identity_pub, 32);
    assert_memory_equal(nm->peer.identity, app->cfg.identity_pub, 32);
    assert_int_equal(app->peer.role, PL_NM_ROLE_NODE_MANAGER);
    assert_int_equal(nm->peer.role, PL_NM_ROLE_APP);
    assert_string_equal(app->peer.name, nm->name);
    assert_string_equal(nm->peer.name, app->name);
    assert_string_equal(app->peer.fingerprint, nm->peer.fingerprint);
    char fp[PL_NM_FINGERPRINT_SIZE];
    pl_nm_fingerprint(fp, app->sec.hs, app->cfg.identity_pub, nm->cfg.identity_pub);
    assert_string_equal(fp, app->peer.fingerprint);
    /* step 7 before step 8: nothing sent before the app persisted */
    assert_int_equal(app->published_before_confirm, 0);
    assert_true(app->persisted == 1 && nm->persisted == 1);
}

static void test_pair_app_first(void **state) {
    (void)state;
    uint8_t code[8];
    random_code(code);
    side *app = add_side("app", PL_NM_ROLE_APP, code, T0, "Nimbus GUI");
    side *nm = add_side("nm", PL_NM_ROLE_NODE_MANAGER, code, T0 + 20000, "node manager");
    run_until(T0 + 30000);
    assert_paired(app, nm);
    assert_true(nm->completed_at == T0 + 20000); /* first HELLO answered at once */
    assert_int_equal(pl_nm_pairing_state(nm->p), PL_NM_ST_DONE);
    assert_false(nm->subscribed);
    assert_int_equal(pl_nm_pairing_next_deadline(nm->p), INT64_MAX);
    assert_int_equal(pl_nm_pairing_state(app->p), PL_NM_ST_ANSWERING);
    assert_true(app->subscribed);
    assert_true(nm->drops[PL_NM_DROP_OWN] >= 1); /* our relay echoes: own HELLO seen */
    assert_int_equal(nm->published, 1);
    /* the app lingers (re-answering) until its code expires, then stops */
    assert_int_equal(pl_nm_pairing_next_deadline(app->p), T0 + 5 * MIN_MS);
    run_until(T0 + 6 * MIN_MS);
    assert_int_equal(pl_nm_pairing_state(app->p), PL_NM_ST_DONE);
    assert_false(app->subscribed);
    assert_int_equal(app->failed, 0);
    assert_int_equal(pl_nm_pairing_role(app->p), PL_NM_ROLE_APP);
    pl_nm_pairing_stats st;
    pl_nm_pairing_stats_get(nm->p, &st);
    assert_int_equal(st.published, 1);
    assert_true(st.received >= 2);
}

static void test_pair_nm_first(void **state) {
    (void)state;
    /* The node manager's first HELLOs go out before the app is subscribed
     * and are lost (a relay does not buffer); a repetition gets through. */
    uint8_t code[8];
    random_code(code);
    echo_to_sender = false;
    side *nm = add_side("nm", PL_NM_ROLE_NODE_MANAGER, code, T0, "node manager");
    side *app = add_side("app", PL_NM_ROLE_APP, code, T0 + 5000, "Nimbus GUI");
    run_until(T0 + 20000);
    assert_paired(app, nm);
    assert_int_equal(nm->published, 4); /* T0, +2 s, +4 s, +6 s */
    assert_int_equal(nm->completed_at, T0 + 6000);
    assert_int_equal(nm->drops[PL_NM_DROP_OWN], 0);
}

static void test_pair_lossy_answer(void **state) {
    (void)state;
    /* The app's first answer is lost; the node manager's repetition makes
     * the app answer again (REANSWERED), and the pairing completes. */
    uint8_t code[8];
    random_code(code);
    side *app = add_side("app", PL_NM_ROLE_APP, code, T0, "a");
    side *nm = add_side("nm", PL_NM_ROLE_NODE_MANAGER, code, T0 + 1000, "n");
    pl_loopback_set_deaf(nm->tp, true); /* deaf while the app answers */
    run_until(T0 + 1500);
    assert_int_equal(app->completed, 1);
    assert_int_equal(nm->learned, 0);
    pl_loopback_set_deaf(nm->tp, false);
    run_until(T0 + 10000);
    assert_paired(app, nm);
    assert_int_equal(app->reanswered, 1);
    assert_int_equal(nm->completed_at, T0 + 3000);
}

static void test_wrong_code(void **state) {
    (void)state;
    uint8_t code[8], other[8];
    random_code(code);
    memcpy(other, code, 8);
    other[3] ^= 0x10;
    side *app = add_side("app", PL_NM_ROLE_APP, code, T0, "a");
    side *nm = add_side("nm", PL_NM_ROLE_NODE_MANAGER, other, T0 + 30000, "n");
    run_until(T0 + 10 * MIN_MS);
    assert_int_equal(app->learned + nm->learned + app->completed + nm->completed, 0);
    assert_int_equal(app->failed, 1);
    assert_int_equal(app->fail_err, PL_ERR_CODE_EXPIRED);
    assert_int_equal(nm->failed, 1);
    assert_int_equal(nm->fail_err, PL_ERR_TIMEOUT);
    assert_false(app->subscribed || nm->subscribed);
    assert_int_equal(pl_nm_pairing_state(app->p), PL_NM_ST_FAILED);
    assert_int_equal(pl_nm_pairing_state(nm->p), PL_NM_ST_FAILED);
    /* the node manager repeated its HELLO every 2 s for 5 minutes */
    assert_int_equal(nm->published, 150);

    /* A HELLO under another key delivered on the app's topic: wrong key. */
    reset_world();
    app = add_side("app", PL_NM_ROLE_APP, code, T0, "a");
    nm = add_side("nm", PL_NM_ROLE_NODE_MANAGER, other, T0, "n");
    run_until(T0 + 100);
    assert_true(nm->published >= 1);
    assert_int_equal(pl_nm_pairing_on_message(app->p, nm->last_publish, sizeof nm->last_publish, now),
                     PL_ERR_DECRYPT);
    drain(app);
    assert_int_equal(app->drops[PL_NM_DROP_WRONG_KEY], 1);
    assert_int_equal(app->last_drop_err, PL_ERR_DECRYPT);
    assert_int_equal(app->learned, 0);
}

static void test_expired_code(void **state) {
    (void)state;
    uint8_t code[8];
    random_code(code);
    side *app = add_side("app", PL_NM_ROLE_APP, code, T0, "a");
    side *nm = add_side("nm", PL_NM_ROLE_NODE_MANAGER, code, T0 + 5 * MIN_MS + 1000, "n");
    run_until(T0 + 11 * MIN_MS);
    assert_int_equal(app->failed, 1);
    assert_int_equal(app->fail_err, PL_ERR_CODE_EXPIRED);
    assert_int_equal(nm->failed, 1);
    assert_int_equal(nm->fail_err, PL_ERR_TIMEOUT);
    assert_int_equal(app->learned + nm->learned, 0);
    /* the expired engine refuses messages without events */
    assert_int_equal(pl_nm_pairing_on_message(app->p, nm->last_publish, sizeof nm->last_publish, now),
                     PL_ERR_STATE);
    assert_int_equal(pl_nm_pairing_confirm_persisted(app->p, PL_OK, now), PL_ERR_STATE);

    /* a message arriving at the expiry instant expires the engine first */
    reset_world();
    app = add_side("app", PL_NM_ROLE_APP, code, T0, "a");
    nm = add_side("nm", PL_NM_ROLE_NODE_MANAGER, code, T0 + 2000, "n");
    run_until(T0 + 1000);
    nm->started = true;
    assert_int_equal(pl_nm_pairing_new(&nm->p, &nm->cfg, T0 + 4 * MIN_MS), PL_OK);
    pl_loopback_hub_drop_next(H, 1); /* it does not reach the app through the hub */
    drain(nm);
    now = T0 + 5 * MIN_MS;
    assert_int_equal(pl_nm_pairing_on_message(app->p, nm->last_publish, sizeof nm->last_publish, now),
                     PL_ERR_STATE);
    drain(app);
    assert_int_equal(app->failed, 1);
    assert_int_equal(app->learned, 0);

    /* expiry while waiting for persistence: FAILED, and confirm says so */
    reset_world();
    app = add_side("app", PL_NM_ROLE_APP, code, T0, "a");
    nm = add_side("nm", PL_NM_ROLE_NODE_MANAGER, code, T0 + 1000, "n");
    app->started = true;
    assert_int_equal(pl_nm_pairing_new(&app->p, &app->cfg, T0), PL_OK);
    drain(app);
    pl_driver_stop(&app->task); /* the test drives the app by hand from here */
    now = T0 + 1000;
    nm->started = true;
    assert_int_equal(pl_nm_pairing_new(&nm->p, &nm->cfg, now), PL_OK);
    pl_driver_stop(&nm->task);
    drain(nm);
    pl_driver_advance(D, now - pl_driver_now(D)); /* the hub delivers the HELLO */
    drain(app);
    assert_int_equal(app->learned, 1);
    app->need_confirm = false;
    assert_int_equal(pl_nm_pairing_confirm_persisted(app->p, PL_OK, T0 + 5 * MIN_MS), PL_ERR_CODE_EXPIRED);
    drain(app);
    assert_int_equal(app->failed, 1);
    assert_int_equal(app->fail_err, PL_ERR_CODE_EXPIRED);
    assert_int_equal(app->completed, 0);
    assert_int_equal(app->published, 0);
}

/* Seal a HELLO with the pairing's HS as a third party knowing the code would. */
static void inject(side *to, const side *as, const pl_nm_hello *h) {
    uint8_t wire[PL_NM_HELLO_WIRE_BYTES];
    assert_int_equal(pl_nm_hello_seal(wire, as->sec.hs, h, NULL), PL_OK);
    to->last_rc = pl_nm_pairing_on_message(to->p, wire, sizeof wire, now);
    drain(to);
}

static void hello_from(pl_nm_hello *h, const side *s, pl_nm_role role, int64_t created) {
    memset(h, 0, sizeof *h);
    h->role = role;
    memcpy(h->identity, s->cfg.identity_pub, 32);
    h->created_at_ms = (uint64_t)created;
    pl_test_rand_bytes(&seed_state, h->nonce, 16);
    snprintf(h->name, sizeof h->name, "%s", s->name);
}

static void test_replayed_hello(void **state) {
    (void)state;
    uint8_t code[8];
    random_code(code);
    side *app = add_side("app", PL_NM_ROLE_APP, code, T0, "a");
    side *nm = add_side("nm", PL_NM_ROLE_NODE_MANAGER, code, T0 + 1000, "n");
    run_until(T0 + 1500);
    assert_paired(app, nm);
    uint8_t nm_hello[PL_NM_HELLO_WIRE_BYTES], app_answer[PL_NM_HELLO_WIRE_BYTES];
    memcpy(app_answer, app->last_publish, sizeof app_answer);
    /* the node manager's HELLO as the app saw it */
    pl_nm_hello h;
    memcpy(nm_hello, nm->last_publish, sizeof nm_hello);
    assert_int_equal(pl_nm_hello_open(&h, app->sec.hs, nm_hello, sizeof nm_hello), PL_OK);

    /* (1) the same HELLO again within a second: duplicate, not answered */
    now = T0 + 1500;
    assert_int_equal(pl_nm_pairing_on_message(app->p, nm_hello, sizeof nm_hello, now), PL_OK);
    drain(app);
    assert_int_equal(app->drops[PL_NM_DROP_DUPLICATE], 1);
    assert_int_equal(app->reanswered, 0);
    /* later: answered again, same body (same nonce) */
    now = T0 + 2500;
    assert_int_equal(pl_nm_pairing_on_message(app->p, nm_hello, sizeof nm_hello, now), PL_OK);
    drain(app);
    assert_int_equal(app->reanswered, 1);
    pl_nm_hello a1, a2;
    assert_int_equal(pl_nm_hello_open(&a1, app->sec.hs, app_answer, sizeof app_answer), PL_OK);
    assert_int_equal(pl_nm_hello_open(&a2, app->sec.hs, app->last_publish, sizeof app->last_publish), PL_OK);
    assert_memory_equal(&a1, &a2, sizeof a1);
    assert_memory_not_equal(app_answer, app->last_publish, sizeof app_answer); /* fresh IV */
    assert_memory_equal(a1.echo, h.nonce, 16);

    /* (2) that nonce with other contents: replay */
    pl_nm_hello forged = h;
    forged.created_at_ms += 1;
    inject(app, nm, &forged);
    assert_int_equal(app->last_rc, PL_ERR_HELLO_REPLAY);
    assert_int_equal(app->drops[PL_NM_DROP_REPLAY], 1);
    assert_int_equal(app->learned, 1);

    /* (3) the finished node manager refuses everything */
    assert_int_equal(pl_nm_pairing_on_message(nm->p, app_answer, sizeof app_answer, now), PL_ERR_STATE);

    /* (4) the node manager restarts (same key, same code, new nonce): the old
     * answer replayed to it does not echo its nonce; the app answers the new
     * HELLO, and the pairing completes again with the same peer. */
    pl_nm_pairing_free(nm->p);
    nm->p = NULL;
    assert_int_equal(pl_nm_pairing_new(&nm->p, &nm->cfg, now), PL_OK);
    nm->learned = nm->completed = 0;
    nm->persisted = 0;
    pl_loopback_hub_drop_next(H, 1); /* its first HELLO is lost */
    drain(nm);
    assert_int_equal(pl_nm_pairing_on_message(nm->p, app_answer, sizeof app_answer, now), PL_ERR_HELLO_ECHO);
    drain(nm);
    assert_int_equal(nm->drops[PL_NM_DROP_WRONG_ECHO], 1);
    run_until(now + 5000);
    assert_int_equal(nm->completed, 1);
    assert_memory_equal(nm->peer.identity, app->cfg.identity_pub, 32);
    assert_int_equal(app->learned, 1); /* not learned twice */
    assert_int_equal(app->reanswered, 2);

    /* (5) a second node manager with the code, after the first: code used */
    pl_nm_hello other;
    side *nm2 = add_side("nm2", PL_NM_ROLE_NODE_MANAGER, code, INT64_MAX, "intruder");
    hello_from(&other, nm2, PL_NM_ROLE_NODE_MANAGER, now);
    inject(app, nm2, &other);
    assert_int_equal(app->last_rc, PL_ERR_PAIRING_EXISTS);
    assert_int_equal(app->drops[PL_NM_DROP_CODE_USED], 1);
    assert_int_equal(app->learned, 1);
}

static void test_stale_and_other_drops(void **state) {
    (void)state;
    uint8_t code[8];
    random_code(code);
    side *app = add_side("app", PL_NM_ROLE_APP, code, T0, "a");
    side *nm = add_side("nm", PL_NM_ROLE_NODE_MANAGER, code, INT64_MAX, "n");
    run_until(T0 + 60000);
    pl_nm_hello h;

    /* stale: older than 5 min + 30 s, or more than 30 s ahead */
    hello_from(&h, nm, PL_NM_ROLE_NODE_MANAGER, now - 5 * MIN_MS - 30001);
    inject(app, nm, &h);
    assert_int_equal(app->last_rc, PL_ERR_HELLO_STALE);
    hello_from(&h, nm, PL_NM_ROLE_NODE_MANAGER, now + 30001);
    inject(app, nm, &h);
    assert_int_equal(app->last_rc, PL_ERR_HELLO_STALE);
    h.created_at_ms = UINT64_MAX;
    inject(app, nm, &h);
    assert_int_equal(app->last_rc, PL_ERR_HELLO_STALE);
    assert_int_equal(app->drops[PL_NM_DROP_STALE], 3);

    /* wrong role: a role-1 HELLO sent to the app */
    hello_from(&h, nm, PL_NM_ROLE_APP, now);
    inject(app, nm, &h);
    assert_int_equal(app->last_rc, PL_ERR_HELLO_ROLE);
    assert_int_equal(app->drops[PL_NM_DROP_WRONG_ROLE], 1);
    /* own key */
    hello_from(&h, app, PL_NM_ROLE_NODE_MANAGER, now);
    inject(app, nm, &h);
    assert_int_equal(app->last_rc, PL_OK);
    assert_int_equal(app->drops[PL_NM_DROP_OWN], 1);
    /* a HELLO_APP must not echo anything */
    hello_from(&h, nm, PL_NM_ROLE_NODE_MANAGER, now);
    h.echo[5] = 1;
    inject(app, nm, &h);
    assert_int_equal(app->last_rc, PL_ERR_HELLO_ECHO);
    /* malformed: undecodable by the transport, too long, not a HELLO, weak
     * key */
    assert_int_equal(pl_nm_pairing_on_bad_delivery(app->p, PL_ERR_BAD_BASE64, now), PL_ERR_BAD_BASE64);
    static uint8_t longmsg[1500];
    assert_int_equal(pl_nm_pairing_on_message(app->p, longmsg, sizeof longmsg, now), PL_ERR_TOO_LARGE);
    uint8_t junk[100], wire[PL_NM_HELLO_WIRE_MAX];
    size_t wl;
    pl_test_rand_bytes(&seed_state, junk, sizeof junk);
    assert_int_equal(pl_waku_v1_seal(wire, sizeof wire, &wl, app->sec.hs, junk, sizeof junk, NULL), PL_OK);
    assert_int_equal(pl_nm_pairing_on_message(app->p, wire, wl, now), PL_ERR_HELLO_MALFORMED);
    assert_int_equal(pl_nm_pairing_on_message(app->p, wire, 0, now), PL_ERR_TRUNCATED);
    hello_from(&h, nm, PL_NM_ROLE_NODE_MANAGER, now);
    memset(h.identity, 0, 32);
    inject(app, nm, &h);
    assert_int_equal(app->last_rc, PL_ERR_WEAK_KEY);
    drain(app);
    assert_int_equal(app->drops[PL_NM_DROP_MALFORMED], 5);
    assert_int_equal(app->learned, 0);

    /* the edge of the window is accepted */
    hello_from(&h, nm, PL_NM_ROLE_NODE_MANAGER, now + 30000);
    inject(app, nm, &h);
    assert_int_equal(app->last_rc, PL_OK);
    assert_int_equal(app->learned, 1);
    assert_int_equal(pl_nm_pairing_state(app->p), PL_NM_ST_PERSISTING);
    /* while persisting: the same node manager's repeat is a duplicate,
     * nothing is published */
    app->need_confirm = false;
    app->last_rc = pl_nm_pairing_on_message(app->p, wire, wl, now);
    uint8_t w2[PL_NM_HELLO_WIRE_BYTES];
    assert_int_equal(pl_nm_hello_seal(w2, nm->sec.hs, &h, NULL), PL_OK);
    assert_int_equal(pl_nm_pairing_on_message(app->p, w2, sizeof w2, now), PL_OK);
    drain(app);
    assert_int_equal(app->drops[PL_NM_DROP_DUPLICATE], 1);
    assert_int_equal(app->published, 0);
    pl_nm_pairing_stats st;
    pl_nm_pairing_stats_get(app->p, &st);
    assert_int_equal(st.dropped[PL_NM_DROP_MALFORMED], 6);
    assert_int_equal(st.published, 0);
}

static void test_persistence_failure(void **state) {
    (void)state;
    uint8_t code[8];
    random_code(code);
    side *app = add_side("app", PL_NM_ROLE_APP, code, T0, "a");
    side *nm = add_side("nm", PL_NM_ROLE_NODE_MANAGER, code, T0 + 1000, "n");
    app->confirm_result = PL_ERR_STORE;
    run_until(T0 + 10 * MIN_MS);
    assert_int_equal(app->learned, 1);
    assert_int_equal(app->failed, 1);
    assert_int_equal(app->fail_err, PL_ERR_STORE);
    assert_int_equal(app->published, 0); /* never answered */
    assert_int_equal(nm->failed, 1);
    assert_int_equal(nm->fail_err, PL_ERR_TIMEOUT);
    assert_int_equal(nm->learned, 0);

    /* the node manager's store fails */
    reset_world();
    app = add_side("app", PL_NM_ROLE_APP, code, T0, "a");
    nm = add_side("nm", PL_NM_ROLE_NODE_MANAGER, code, T0 + 1000, "n");
    nm->confirm_result = PL_ERR_STORE_CORRUPT;
    run_until(T0 + 2000);
    assert_int_equal(app->completed, 1);
    assert_int_equal(nm->failed, 1);
    assert_int_equal(nm->fail_err, PL_ERR_STORE_CORRUPT);
    assert_int_equal(nm->completed, 0);
    assert_int_equal(pl_nm_pairing_confirm_persisted(app->p, PL_OK, now), PL_ERR_STATE);
}

static void test_cancel_and_config(void **state) {
    (void)state;
    uint8_t code[8];
    random_code(code);
    side *nm = add_side("nm", PL_NM_ROLE_NODE_MANAGER, code, INT64_MAX, "n");
    pl_nm_pairing *p = NULL;
    pl_nm_pairing_config c = nm->cfg;
    c.expires_at_ms = T0 + 5 * MIN_MS + 1;
    assert_int_equal(pl_nm_pairing_new(&p, &c, T0), PL_ERR_INVALID_ARG);
    assert_null(p);
    c.expires_at_ms = T0;
    assert_int_equal(pl_nm_pairing_new(&p, &c, T0), PL_ERR_INVALID_ARG);
    c.expires_at_ms = 0;
    c.resend_ms = 99;
    assert_int_equal(pl_nm_pairing_new(&p, &c, T0), PL_ERR_INVALID_ARG);
    c.resend_ms = 0;
    c.name = "bad\x1b[2J";
    assert_int_equal(pl_nm_pairing_new(&p, &c, T0), PL_ERR_BAD_UTF8);
    char longname[80];
    memset(longname, 'x', 65);
    longname[65] = '\0';
    c.name = longname;
    assert_int_equal(pl_nm_pairing_new(&p, &c, T0), PL_ERR_TOO_LARGE);
    c.name = NULL;
    memset(c.identity_pub, 0, 32);
    assert_int_equal(pl_nm_pairing_new(&p, &c, T0), PL_ERR_WEAK_KEY);
    c = nm->cfg;
    c.expires_at_ms = T0 + 60000;
    c.resend_ms = 500;
    assert_int_equal(pl_nm_pairing_new(&p, &c, T0), PL_OK);
    pl_nm_output o;
    assert_true(pl_nm_pairing_poll(p, &o));
    assert_int_equal(o.kind, PL_NM_OUT_SUBSCRIBE);
    assert_true(pl_nm_pairing_poll(p, &o));
    assert_int_equal(o.kind, PL_NM_OUT_PUBLISH);
    assert_false(pl_nm_pairing_poll(p, &o));
    assert_int_equal(o.kind, 0);
    assert_int_equal(pl_nm_pairing_next_deadline(p), T0 + 500);
    pl_nm_pairing_on_timer(p, T0 + 100); /* early: nothing */
    assert_false(pl_nm_pairing_poll(p, &o));
    pl_nm_pairing_on_timer(p, T0 + 59900); /* late: one repeat, not a burst */
    assert_true(pl_nm_pairing_poll(p, &o));
    assert_int_equal(o.kind, PL_NM_OUT_PUBLISH);
    assert_false(pl_nm_pairing_poll(p, &o));
    assert_int_equal(pl_nm_pairing_next_deadline(p), T0 + 60000);
    pl_nm_pairing_cancel(p);
    assert_true(pl_nm_pairing_poll(p, &o));
    assert_int_equal(o.kind, PL_NM_OUT_EVENT);
    assert_int_equal(o.event, PL_NM_EV_FAILED);
    assert_int_equal(o.err, PL_ERR_CANCELLED);
    assert_true(pl_nm_pairing_poll(p, &o));
    assert_int_equal(o.kind, PL_NM_OUT_UNSUBSCRIBE);
    assert_int_equal(pl_nm_pairing_state(p), PL_NM_ST_FAILED);
    pl_nm_pairing_cancel(p); /* idempotent */
    assert_false(pl_nm_pairing_poll(p, &o));
    pl_nm_pairing_free(p);
    pl_nm_pairing_free(NULL);
    assert_string_equal(pl_nm_drop_reason_name(PL_NM_DROP_WRONG_KEY), "wrong_key");
    assert_string_equal(pl_nm_drop_reason_name((pl_nm_drop_reason)99), "unknown");
}

static void test_queue_is_bounded(void **state) {
    (void)state;
    uint8_t code[8];
    random_code(code);
    side *app = add_side("app", PL_NM_ROLE_APP, code, T0, "a");
    side *nm = add_side("nm", PL_NM_ROLE_NODE_MANAGER, code, INT64_MAX, "n");
    app->started = true;
    assert_int_equal(pl_nm_pairing_new(&app->p, &app->cfg, T0), PL_OK);
    /* 1000 junk messages, never polled */
    uint8_t junk[PL_NM_HELLO_WIRE_BYTES];
    for (int i = 0; i < 1000; i++) {
        pl_test_rand_bytes(&seed_state, junk, sizeof junk);
        assert_int_equal(pl_nm_pairing_on_message(app->p, junk, sizeof junk, T0 + i), PL_ERR_DECRYPT);
    }
    /* a real HELLO still gets through, and its PEER_LEARNED is queued */
    pl_nm_hello h;
    now = T0 + 2000;
    hello_from(&h, nm, PL_NM_ROLE_NODE_MANAGER, now);
    uint8_t wire[PL_NM_HELLO_WIRE_BYTES];
    assert_int_equal(pl_nm_hello_seal(wire, nm->sec.hs, &h, NULL), PL_OK);
    assert_int_equal(pl_nm_pairing_on_message(app->p, wire, sizeof wire, now), PL_OK);
    assert_int_equal(pl_nm_pairing_confirm_persisted(app->p, PL_OK, now), PL_OK);
    pl_nm_pairing_stats st;
    pl_nm_pairing_stats_get(app->p, &st);
    assert_int_equal(st.dropped[PL_NM_DROP_WRONG_KEY], 1000);
    assert_int_equal(st.received, 1001);
    assert_true(st.events_lost >= 1000 - PL_NM_QUEUE_MAX);
    int n = 0;
    bool learned = false, completed = false, published = false;
    pl_nm_output o;
    while (pl_nm_pairing_poll(app->p, &o)) {
        n++;
        if (o.kind == PL_NM_OUT_EVENT && o.event == PL_NM_EV_PEER_LEARNED) learned = true;
        if (o.kind == PL_NM_OUT_EVENT && o.event == PL_NM_EV_COMPLETED) completed = true;
        if (o.kind == PL_NM_OUT_PUBLISH) published = true;
    }
    assert_true(n <= PL_NM_QUEUE_MAX);
    assert_true(learned && completed && published);
}

/* ======================= vectors ======================= */

/* Inputs of the vectors: HKDF-SHA256(ikm "pairlink-vectors", info label). */
static void vbytes(uint8_t *out, size_t n, const char *label) {
    assert_int_equal(pl_hkdf_sha256(out, n, NULL, 0, (const uint8_t *)"pairlink-vectors", 16,
                                    (const uint8_t *)label, strlen(label)),
                     PL_OK);
}

typedef struct kv {
    char key[64];
    char *val;
} kv;

#define MAXKV 64
static kv computed[MAXKV];
static int n_computed;

static void put(const char *key, const char *val) {
    assert_true(n_computed < MAXKV);
    snprintf(computed[n_computed].key, sizeof computed[0].key, "%s", key);
    computed[n_computed].val = strdup(val);
    n_computed++;
}

static void put_hex(const char *key, const uint8_t *b, size_t n) {
    char *h = malloc(2 * n + 1);
    assert_int_equal(pl_hex_encode(h, 2 * n + 1, b, n), PL_OK);
    put(key, h);
    free(h);
}

static void put_u64(const char *key, uint64_t v) {
    char b[32];
    snprintf(b, sizeof b, "%llu", (unsigned long long)v);
    put(key, b);
}

static void vector_hello(const char *prefix, const pl_nm_hello *h, const uint8_t hs[32]) {
    char k[64];
    uint8_t body[PL_NM_HELLO_BODY_MAX], iv[12], pad[256], wire[PL_NM_HELLO_WIRE_BYTES];
    size_t n;
    assert_int_equal(pl_nm_hello_encode(body, &n, h), PL_OK);
    snprintf(k, sizeof k, "%s.iv", prefix);
    vbytes(iv, 12, k);
    snprintf(k, sizeof k, "%s.padding", prefix);
    vbytes(pad, pl_waku_v1_padding_len(n), k);
    pl_waku_v1_seal_opts o = {.iv = iv, .padding = pad};
    assert_int_equal(pl_nm_hello_seal(wire, hs, h, &o), PL_OK);
    snprintf(k, sizeof k, "%s.created_at_ms", prefix);
    put_u64(k, h->created_at_ms);
    snprintf(k, sizeof k, "%s.nonce", prefix);
    put_hex(k, h->nonce, 16);
    snprintf(k, sizeof k, "%s.echo", prefix);
    put_hex(k, h->echo, 16);
    snprintf(k, sizeof k, "%s.body", prefix);
    put_hex(k, body, n);
    snprintf(k, sizeof k, "%s.iv", prefix);
    put_hex(k, iv, 12);
    snprintf(k, sizeof k, "%s.padding", prefix);
    put_hex(k, pad, pl_waku_v1_padding_len(n));
    snprintf(k, sizeof k, "%s.wire", prefix);
    put_hex(k, wire, sizeof wire);
    char b64[PL_NM_HELLO_WIRE_BYTES / 3 * 4 + 5]; /* what a WalletConnect relay carries */
    assert_int_equal(pl_base64_encode(b64, sizeof b64, wire, sizeof wire, PL_B64_STD), PL_OK);
    snprintf(k, sizeof k, "%s.wire_base64", prefix);
    put(k, b64);
    /* and it opens to the same HELLO */
    pl_nm_hello d;
    assert_int_equal(pl_nm_hello_open(&d, hs, wire, sizeof wire), PL_OK);
    assert_memory_equal(&d, h, sizeof d);
}

static void compute_vectors(void) {
    n_computed = 0;
    char text[PL_NM_CODE_TEXT_SIZE];
    uint8_t p[8];
    vbytes(p, 8, "P");
    pl_nm_code_format(text, p);
    put_hex("P", p, 8);
    put("P.text", text);
    uint8_t edge[8];
    memset(edge, 0, 8);
    pl_nm_code_format(text, edge);
    put("P_zero.text", text);
    memset(edge, 0xff, 8);
    pl_nm_code_format(text, edge);
    put("P_max.text", text);

    put_u64("kdf.opslimit", PL_NM_KDF_OPSLIMIT);
    put_u64("kdf.memlimit", PL_NM_KDF_MEMLIMIT);
    put_hex("TOPIC_SALT", (const uint8_t *)PL_NM_TOPIC_SALT, 16);
    put_hex("HANDSHAKE_KEY_SALT", (const uint8_t *)PL_NM_HANDSHAKE_KEY_SALT, 16);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    pl_nm_secrets s;
    assert_int_equal(pl_nm_derive(&s, p, NULL), PL_OK); /* the real parameters, once */
    clock_gettime(CLOCK_MONOTONIC, &b);
    fprintf(stderr, "kdf with the protocol parameters (t=%llu, m=%u MiB): %.3f s for T and HS\n",
            (unsigned long long)PL_NM_KDF_OPSLIMIT, PL_NM_KDF_MEMLIMIT >> 20,
            (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9);
    put_hex("T", s.topic_key, 32);
    put_hex("HS", s.hs, 32);
    put("pair.content_topic", s.content_topic);
    char rt[PL_TOPIC_HEX_SIZE];
    assert_int_equal(pl_relay_topic(rt, s.content_topic), PL_OK); /* spec 4.3 */
    put("pair.relay_topic", rt);

    uint8_t app_priv[32], nm_priv[32], app_pub[32], nm_pub[32];
    vbytes(app_priv, 32, "app.identity_priv");
    vbytes(nm_priv, 32, "nm.identity_priv");
    pl_x25519_public(app_pub, app_priv);
    pl_x25519_public(nm_pub, nm_priv);
    put_hex("app.identity_priv", app_priv, 32);
    put_hex("app.identity_pub", app_pub, 32);
    put_hex("nm.identity_priv", nm_priv, 32);
    put_hex("nm.identity_pub", nm_pub, 32);

    pl_nm_hello ha, hn;
    memset(&ha, 0, sizeof ha);
    ha.role = PL_NM_ROLE_NODE_MANAGER;
    memcpy(ha.identity, nm_pub, 32);
    ha.created_at_ms = 1700000000000ull;
    vbytes(ha.nonce, 16, "hello_app.nonce");
    snprintf(ha.name, sizeof ha.name, "Status node manager");
    put("hello_app.name", ha.name);
    vector_hello("hello_app", &ha, s.hs);

    memset(&hn, 0, sizeof hn);
    hn.role = PL_NM_ROLE_APP;
    memcpy(hn.identity, app_pub, 32);
    hn.created_at_ms = 1700000001234ull;
    vbytes(hn.nonce, 16, "hello_node_manager.nonce");
    memcpy(hn.echo, ha.nonce, 16);
    snprintf(hn.name, sizeof hn.name, "Nimbus GUI");
    put("hello_node_manager.name", hn.name);
    vector_hello("hello_node_manager", &hn, s.hs);

    char fp[PL_NM_FINGERPRINT_SIZE];
    pl_nm_fingerprint(fp, s.hs, app_pub, nm_pub);
    put("fingerprint", fp);

    pl_nm_rendezvous rv;
    pl_nm_rendezvous_derive(&rv, nm_pub, app_pub);
    put_hex("rv", rv.rv, 48);
    put("rv.content_topic", rv.content_topic);
    assert_int_equal(pl_relay_topic(rt, rv.content_topic), PL_OK);
    put("rv.relay_topic", rt);
    put_hex("rv.nametag", rv.nametag, 16);
    pl_nm_secrets_wipe(&s);
}

static void free_vectors(void) {
    for (int i = 0; i < n_computed; i++) free(computed[i].val);
    n_computed = 0;
}

static void test_vectors_in_spec(void **state) {
    (void)state;
    compute_vectors();
    if (getenv("PL_NM_PRINT_VECTORS")) {
        printf("<!-- BEGIN VECTORS -->\n```text\n");
        for (int i = 0; i < n_computed; i++) printf("%s = %s\n", computed[i].key, computed[i].val);
        printf("```\n<!-- END VECTORS -->\n");
        free_vectors();
        return;
    }
    const char *path = PL_SOURCE_DIR "/docs/protocol/node-manager-pairing.md";
    FILE *f = fopen(path, "r");
    if (!f) fail_msg("cannot open %s", path);
    static char line[4096];
    bool in = false;
    int matched = 0, seen_keys = 0;
    while (fgets(line, sizeof line, f)) {
        if (strstr(line, "<!-- BEGIN VECTORS -->")) {
            in = true;
            continue;
        }
        if (strstr(line, "<!-- END VECTORS -->")) break;
        if (!in || strncmp(line, "```", 3) == 0) continue;
        line[strcspn(line, "\r\n")] = '\0';
        char *eq = strstr(line, " = ");
        if (!eq) continue;
        *eq = '\0';
        const char *key = line, *val = eq + 3;
        seen_keys++;
        int i;
        for (i = 0; i < n_computed; i++)
            if (strcmp(computed[i].key, key) == 0) break;
        if (i == n_computed) fail_msg("the spec has a vector '%s' the test does not compute", key);
        if (strcmp(computed[i].val, val) != 0)
            fail_msg("vector %s: spec says %s, computed %s", key, val, computed[i].val);
        matched++;
    }
    fclose(f);
    assert_int_equal(seen_keys, matched);
    if (matched != n_computed) fail_msg("the spec lists %d of %d vectors", matched, n_computed);
    /* the code text in the spec parses back */
    uint8_t p[8], back[8];
    vbytes(p, 8, "P");
    char text[PL_NM_CODE_TEXT_SIZE];
    pl_nm_code_format(text, p);
    assert_int_equal(pl_nm_code_parse(back, text, strlen(text)), PL_OK);
    assert_memory_equal(p, back, 8);
    free_vectors();
}

int main(void) {
    if (pl_init() != PL_OK) return 1;
    seed_state = pl_test_seed();
    engine_rng = seed_state ^ 0x9e3779b97f4a7c15ull;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_code_roundtrip_and_shape),
        cmocka_unit_test(test_code_single_substitution_detected),
        cmocka_unit_test(test_code_transpositions_detected),
        cmocka_unit_test(test_code_format_errors),
        cmocka_unit_test(test_kdf_deterministic),
        cmocka_unit_test(test_fingerprint_known_answer),
        cmocka_unit_test(test_fingerprint_and_rendezvous),
        cmocka_unit_test(test_hello_layout),
        cmocka_unit_test(test_hello_seal_open_tamper),
        cmocka_unit_test_setup_teardown(test_pair_app_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pair_nm_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pair_lossy_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_code, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expired_code, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replayed_hello, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_and_other_drops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_persistence_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_and_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_is_bounded, setup, teardown),
        cmocka_unit_test(test_vectors_in_spec),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
