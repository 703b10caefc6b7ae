/* SPDX-License-Identifier: Apache-2.0 */
/* Waku Noise: the js-noise transcript, live handshakes for every pattern,
 * tampering, sessions (window, restore), PayloadV2, padding, WakuPairing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "noise/noise_internal.h"
#include "pairlink/hash.h"
#include "pairlink/noise.h"
#include "tools/noise_transcript.h"
#include "support/support.h"

static uint64_t seed_state;

static const pl_noise_pattern all_patterns[] = {PL_NOISE_K1K1, PL_NOISE_XK1, PL_NOISE_XX,
                                                PL_NOISE_XXPSK0, PL_NOISE_WAKU_PAIRING};

/* ------------------------------------------------------------------ */
/* helpers                                                             */

typedef struct keyset {
    uint8_t is[32], ie[32], rs[32], re[32], psk[32];
    uint8_t isp[32], iep[32], rsp[32], rep[32];
} keyset;

static void keyset_random(keyset *k) {
    pl_test_rand_bytes(&seed_state, k->is, 32);
    pl_test_rand_bytes(&seed_state, k->ie, 32);
    pl_test_rand_bytes(&seed_state, k->rs, 32);
    pl_test_rand_bytes(&seed_state, k->re, 32);
    pl_test_rand_bytes(&seed_state, k->psk, 32);
    pl__noise_pub(k->isp, k->is);
    pl__noise_pub(k->iep, k->ie);
    pl__noise_pub(k->rsp, k->rs);
    pl__noise_pub(k->rep, k->re);
}

/* Both parties; inject = false leaves the ephemerals random. */
static void make_pair(const keyset *k, pl_noise_pattern p, bool inject, pl_noise_hs **hi,
                      pl_noise_hs **hr) {
    /* The responder is given its static public key, the initiator derives
     * its own: both ways must give the same transcripts. */
    pl_noise_keys ki = {k->is, inject ? k->ie : NULL, k->rsp, k->rep, NULL};
    pl_noise_keys kr = {k->rs, k->re, k->isp, k->iep, k->rsp};
    const uint8_t *psk = p == PL_NOISE_XXPSK0 ? k->psk : NULL;
    static const uint8_t prologue[] = "pairlink test prologue";
    assert_int_equal(pl_noise_hs_new(hi, p, PL_NOISE_INITIATOR, &ki, prologue, sizeof prologue, psk),
                     PL_OK);
    assert_int_equal(pl_noise_hs_new(hr, p, PL_NOISE_RESPONDER, &kr, prologue, sizeof prologue, psk),
                     PL_OK);
}

static const uint8_t tag1[16] = {0x51, 0x7a, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14};

/* Drive both parties with the next-action loop until both split. */
static void run_handshake(pl_noise_hs *hi, pl_noise_hs *hr, pl_noise_session **si,
                          pl_noise_session **sr) {
    for (int step = 0; step < 3; step++) {
        pl_noise_hs *w = pl_noise_hs_action(hi) == PL_NOISE_ACTION_WRITE ? hi : hr;
        pl_noise_hs *rd = w == hi ? hr : hi;
        assert_int_equal(pl_noise_hs_action(w), PL_NOISE_ACTION_WRITE);
        assert_int_equal(pl_noise_hs_action(rd), PL_NOISE_ACTION_READ);
        uint8_t payload[300];
        size_t plen = (size_t)(pl_test_rand(&seed_state) % sizeof payload);
        pl_test_rand_bytes(&seed_state, payload, plen);
        uint8_t *wire, *got;
        size_t wl, gl;
        const uint8_t *tag = step == 0 ? tag1 : NULL;
        assert_int_equal(pl_noise_hs_write(w, tag, payload, plen, &wire, &wl), PL_OK);
        assert_int_equal(pl_noise_hs_read(rd, wire, wl, tag, &got, &gl), PL_OK);
        assert_int_equal(gl, plen);
        if (plen) assert_memory_equal(got, payload, plen);
        pl_free_secret(got, gl);
        free(wire);
    }
    assert_int_equal(pl_noise_hs_action(hi), PL_NOISE_ACTION_SPLIT);
    assert_int_equal(pl_noise_hs_action(hr), PL_NOISE_ACTION_SPLIT);
    assert_int_equal(pl_noise_hs_split(hi, si), PL_OK);
    assert_int_equal(pl_noise_hs_split(hr, sr), PL_OK);
    assert_int_equal(pl_noise_hs_action(hi), PL_NOISE_ACTION_DONE);
}

static void send_ok(pl_noise_session *from, pl_noise_session *to, const char *text) {
    uint8_t *wire, *got;
    size_t wl, gl;
    assert_int_equal(pl_noise_session_encrypt(from, (const uint8_t *)text, strlen(text), &wire, &wl),
                     PL_OK);
    assert_int_equal(pl_noise_session_decrypt(to, wire, wl, &got, &gl), PL_OK);
    assert_int_equal(gl, strlen(text));
    assert_memory_equal(got, text, gl);
    pl_free_secret(got, gl);
    free(wire);
}

static char *read_vector_text(const char *name) {
    json_t *j = pl_test_vectors(name);
    char *s = json_dumps(j, 0);
    json_decref(j);
    assert_non_null(s);
    return s;
}

/* ------------------------------------------------------------------ */
/* js-noise transcript                                                 */

static void test_vector_replay(void **state) {
    (void)state;
    char *text = read_vector_text("waku-noise-pairing.json");
    pl_noise_replay_report r;
    assert_int_equal(pl_noise_transcript_replay(text, strlen(text), &r), PL_OK);
    if (!r.match) fprintf(stderr, "difference: %s\n", r.first_difference);
    assert_true(r.match);
    assert_int_equal(r.pattern, PL_NOISE_WAKU_PAIRING);
    assert_int_equal(r.handshake_messages, 3);
    assert_int_equal(r.transport_messages, 1);
    assert_true(r.checked_authcode);
    assert_true(r.checked_commitments);
    assert_string_equal(r.authcode, "83295987");
    free(text);
}

/* The replay must be able to fail: flip one byte of each checked item. */
static void test_vector_replay_detects_changes(void **state) {
    (void)state;
    static const char *paths[][2] = {
        {"messages.0", "wire"}, {"messages.1", "wire"}, {"messages.2", "payload"},
        {"messages.1", "nametag"}, {"transport.0", "wire"}, {NULL, "final_h"},
        {NULL, "initiator_outbound_key"}, {NULL, "authcode"}, {NULL, "prologue"}};
    for (size_t t = 0; t < PL_ARRAY_LEN(paths); t++) {
        json_t *j = pl_test_vectors("waku-noise-pairing.json");
        json_t *obj = j;
        if (paths[t][0]) {
            char idx = paths[t][0][strlen(paths[t][0]) - 1];
            obj = json_array_get(json_object_get(j, paths[t][0][0] == 'm' ? "messages" : "transport"),
                                 (size_t)(idx - '0'));
        }
        const char *v = json_string_value(json_object_get(obj, paths[t][1]));
        char *mod = strdup(v);
        size_t at = strlen(mod) / 2;
        mod[at] = mod[at] == '0' ? '1' : '0';
        json_object_set_new(obj, paths[t][1], json_string(mod));
        char *text = json_dumps(j, 0);
        pl_noise_replay_report r;
        pl_err e = pl_noise_transcript_replay(text, strlen(text), &r);
        assert_true(e == PL_OK || e == PL_ERR_BAD_HEX);
        assert_false(r.match);
        assert_true(r.first_difference[0] != '\0');
        free(text);
        free(mod);
        json_decref(j);
    }
}

static void test_vector_unusable(void **state) {
    (void)state;
    pl_noise_replay_report r;
    assert_int_equal(pl_noise_transcript_replay("{", 1, &r), PL_ERR_JSON);
    assert_false(r.match);
    const char *bad = "{\"pattern\":\"Noise_Foo\"}";
    assert_int_equal(pl_noise_transcript_replay(bad, strlen(bad), &r), PL_ERR_NOISE_PATTERN);
    const char *nokeys = "{\"pattern\":\"Noise_XX_25519_ChaChaPoly_SHA256\",\"prologue\":\"\"}";
    assert_int_equal(pl_noise_transcript_replay(nokeys, strlen(nokeys), &r), PL_ERR_JSON);
    assert_non_null(strstr(r.first_difference, "initiator"));
}

/* The authcode is read big-endian (js-noise); nwaku's little-endian reading
 * of the same 8 bytes gives the other code named in the vector notes. Those
 * bytes are also the start of message 2's nametag (both are HKDF(h)). */
static void test_authcode_endianness(void **state) {
    (void)state;
    json_t *j = pl_test_vectors("waku-noise-pairing.json");
    uint8_t tag2[16];
    pl_test_hex(j, "messages.1.nametag", tag2, 16);
    uint64_t be = 0, le = 0;
    for (int i = 0; i < 8; i++) be = be << 8 | tag2[i], le |= (uint64_t)tag2[i] << (8 * i);
    char b[16], l[16];
    snprintf(b, sizeof b, "%08llu", (unsigned long long)(be % 100000000u));
    snprintf(l, sizeof l, "%08llu", (unsigned long long)(le % 100000000u));
    assert_string_equal(b, pl_test_str(j, "authcode"));
    assert_string_equal(l, "55642007");
    json_decref(j);
}

static void test_vector_qr_and_commitments(void **state) {
    (void)state;
    json_t *j = pl_test_vectors("waku-noise-pairing.json");
    const char *qs = pl_test_str(j, "prologue_utf8");
    pl_noise_qr qr;
    assert_int_equal(pl_noise_qr_parse(&qr, qs, strlen(qs)), PL_OK);
    assert_string_equal(qr.app, "nimbus-gui");
    assert_string_equal(qr.version, "0.0.0");
    assert_string_equal(qr.shard, "10");
    uint8_t rep[32], rsp[32], isp[32], m1[32];
    assert_memory_equal(qr.ephemeral_pub, pl_test_hex(j, "responder.ephemeral_pub", rep, 32), 32);
    char *enc;
    assert_int_equal(pl_noise_qr_encode(&enc, &qr), PL_OK);
    assert_string_equal(enc, qs);
    pl_free(enc);
    char *topic;
    assert_int_equal(pl_noise_qr_content_topic(&topic, &qr), PL_OK);
    assert_string_equal(topic, "/nimbus-gui/0.0.0/wakunoise/1/sessions_shard-10/proto");
    pl_free(topic);

    /* The vector notes: r = sha256("r-commit"), s = sha256("s-commit"). */
    uint8_t r[32], s[32];
    pl_sha256(r, (const uint8_t *)"r-commit", 8);
    pl_sha256(s, (const uint8_t *)"s-commit", 8);
    pl_test_hex(j, "responder.static_pub", rsp, 32);
    pl_test_hex(j, "initiator.static_pub", isp, 32);
    pl_test_hex(j, "messages.0.payload", m1, 32);
    assert_int_equal(pl_noise_commit_check(qr.committed_static, rsp, r, 32), PL_OK);
    assert_int_equal(pl_noise_commit_check(m1, isp, s, 32), PL_OK);
    assert_int_equal(pl_noise_commit_check(m1, isp, r, 32), PL_ERR_NOISE_COMMITMENT);
    assert_int_equal(pl_noise_commit_check(qr.committed_static, isp, r, 32),
                     PL_ERR_NOISE_COMMITMENT);
    json_decref(j);
}

static void test_qr_malformed(void **state) {
    (void)state;
    pl_noise_qr qr;
    const char *good = "YQ==:MQ==:MA==:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:"
                       "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    assert_int_equal(pl_noise_qr_parse(&qr, good, strlen(good)), PL_OK);
    assert_int_equal(pl_noise_qr_parse(&qr, good, strlen(good) - 1), PL_ERR_BAD_BASE64);
    const char *four = "YQ==:MQ==:MA==:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    assert_int_equal(pl_noise_qr_parse(&qr, four, strlen(four)), PL_ERR_URI_MALFORMED);
    const char *six = "YQ==:MQ==:MA==:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:"
                      "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:YQ==";
    assert_int_equal(pl_noise_qr_parse(&qr, six, strlen(six)), PL_ERR_URI_MALFORMED);
    const char *shortkey = "YQ==:MQ==:MA==:AAAA:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    assert_int_equal(pl_noise_qr_parse(&qr, shortkey, strlen(shortkey)), PL_ERR_URI_MALFORMED);
    const char *slash = "Lw==:MQ==:MA==:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:"
                        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="; /* app "/" */
    assert_int_equal(pl_noise_qr_parse(&qr, slash, strlen(slash)), PL_ERR_URI_MALFORMED);
    const char *std = "YQ==:MQ==:MA==:+AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:"
                      "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    assert_int_equal(pl_noise_qr_parse(&qr, std, strlen(std)), PL_ERR_BAD_BASE64);
    memset(&qr, 0, sizeof qr);
    char *out;
    assert_int_equal(pl_noise_qr_encode(&out, &qr), PL_ERR_INVALID_ARG);
    assert_null(out);
}

/* ------------------------------------------------------------------ */
/* live handshakes                                                     */

static void test_live_all_patterns(void **state) {
    (void)state;
    for (size_t i = 0; i < PL_ARRAY_LEN(all_patterns); i++) {
        keyset k;
        keyset_random(&k);
        pl_noise_hs *hi, *hr;
        pl_noise_session *si, *sr;
        make_pair(&k, all_patterns[i], false, &hi, &hr);
        run_handshake(hi, hr, &si, &sr);
        uint8_t a[32], b[32];
        pl_noise_session_handshake_hash(si, a);
        pl_noise_session_handshake_hash(sr, b);
        assert_memory_equal(a, b, 32);
        pl_noise_session_remote_static(si, a);
        assert_memory_equal(a, k.rsp, 32);
        pl_noise_session_remote_static(sr, a);
        assert_memory_equal(a, k.isp, 32);
        pl_noise_session_id(si, a);
        pl_noise_session_id(sr, b);
        assert_memory_equal(a, b, 32);
        char *ti, *tr;
        assert_int_equal(pl_noise_session_content_topic(&ti, si, "pairlink", "1"), PL_OK);
        assert_int_equal(pl_noise_session_content_topic(&tr, sr, "pairlink", "1"), PL_OK);
        assert_string_equal(ti, tr);
        uint8_t d[32];
        char hex[65], want[200];
        pl_sha256(d, a, 32);
        pl_sha256(d, d, 32);
        sodium_bin2hex(hex, sizeof hex, d, 32);
        snprintf(want, sizeof want, "/pairlink/1/wakunoise/1/sessions/%s/proto", hex);
        assert_string_equal(ti, want);
        pl_free(ti), pl_free(tr);
        for (int n = 0; n < 5; n++) {
            send_ok(si, sr, "hello responder");
            send_ok(sr, si, "hello initiator");
        }
        send_ok(si, sr, "");
        assert_int_equal(pl_noise_session_sent(si), 6);
        assert_int_equal(pl_noise_session_next_inbound(sr), 6);
        pl_noise_session_free(si), pl_noise_session_free(sr);
        pl_noise_hs_free(hi), pl_noise_hs_free(hr);
    }
}

/* A responder whose static key differs from what a K1K1/XK1 initiator
 * expects must not complete, and a wrong psk must not either. */
static void test_wrong_keys_fail(void **state) {
    (void)state;
    pl_noise_pattern ps[] = {PL_NOISE_K1K1, PL_NOISE_XK1, PL_NOISE_XXPSK0, PL_NOISE_WAKU_PAIRING};
    for (size_t i = 0; i < PL_ARRAY_LEN(ps); i++) {
        keyset k, other;
        keyset_random(&k);
        keyset_random(&other);
        pl_noise_keys ki = {k.is, NULL, other.rsp, other.rep, NULL};
        pl_noise_keys kr = {k.rs, k.re, k.isp, k.iep, NULL};
        pl_noise_hs *hi, *hr;
        const uint8_t *pi = ps[i] == PL_NOISE_XXPSK0 ? other.psk : NULL;
        const uint8_t *pr = ps[i] == PL_NOISE_XXPSK0 ? k.psk : NULL;
        assert_int_equal(pl_noise_hs_new(&hi, ps[i], PL_NOISE_INITIATOR, &ki, NULL, 0, pi), PL_OK);
        assert_int_equal(pl_noise_hs_new(&hr, ps[i], PL_NOISE_RESPONDER, &kr, NULL, 0, pr), PL_OK);
        bool failed = false;
        for (int step = 0; step < 3 && !failed; step++) {
            pl_noise_hs *w = pl_noise_hs_action(hi) == PL_NOISE_ACTION_WRITE ? hi : hr;
            pl_noise_hs *rd = w == hi ? hr : hi;
            uint8_t *wire, *got;
            size_t wl, gl;
            assert_int_equal(pl_noise_hs_write(w, NULL, NULL, 0, &wire, &wl), PL_OK);
            pl_err e = pl_noise_hs_read(rd, wire, wl, NULL, &got, &gl);
            free(wire);
            if (e == PL_OK) pl_free_secret(got, gl);
            else failed = true;
        }
        assert_true(failed);
        pl_noise_hs_free(hi), pl_noise_hs_free(hr);
    }
}

static void test_hs_new_errors(void **state) {
    (void)state;
    keyset k;
    keyset_random(&k);
    pl_noise_hs *hs = (pl_noise_hs *)1;
    pl_noise_keys none = {NULL, NULL, NULL, NULL, NULL};
    assert_int_equal(pl_noise_hs_new(&hs, PL_NOISE_XX, PL_NOISE_INITIATOR, &none, NULL, 0, NULL),
                     PL_ERR_NOISE_MISSING_KEY);
    assert_null(hs);
    pl_noise_keys only_s = {k.is, NULL, NULL, NULL, NULL};
    assert_int_equal(pl_noise_hs_new(&hs, PL_NOISE_K1K1, PL_NOISE_INITIATOR, &only_s, NULL, 0, NULL),
                     PL_ERR_NOISE_MISSING_KEY);
    assert_int_equal(pl_noise_hs_new(&hs, PL_NOISE_XK1, PL_NOISE_INITIATOR, &only_s, NULL, 0, NULL),
                     PL_ERR_NOISE_MISSING_KEY);
    assert_int_equal(pl_noise_hs_new(&hs, PL_NOISE_WAKU_PAIRING, PL_NOISE_INITIATOR, &only_s, NULL,
                                     0, NULL),
                     PL_ERR_NOISE_MISSING_KEY);
    assert_int_equal(pl_noise_hs_new(&hs, PL_NOISE_XXPSK0, PL_NOISE_INITIATOR, &only_s, NULL, 0,
                                     NULL),
                     PL_ERR_NOISE_MISSING_KEY);
    assert_int_equal(pl_noise_hs_new(&hs, PL_NOISE_XX, PL_NOISE_INITIATOR, &only_s, NULL, 0, k.psk),
                     PL_ERR_INVALID_ARG);
    assert_int_equal(pl_noise_hs_new(&hs, (pl_noise_pattern)15, PL_NOISE_INITIATOR, &only_s, NULL,
                                     0, NULL),
                     PL_ERR_NOISE_PATTERN);
    static uint8_t big[PL_NOISE_MAX_PROLOGUE + 1];
    assert_int_equal(pl_noise_hs_new(&hs, PL_NOISE_XX, PL_NOISE_INITIATOR, &only_s, big, sizeof big,
                                     NULL),
                     PL_ERR_TOO_LARGE);
    /* The WakuPairing responder gets a fresh QR key when none is given. */
    assert_int_equal(pl_noise_hs_new(&hs, PL_NOISE_WAKU_PAIRING, PL_NOISE_RESPONDER, &only_s, NULL,
                                     0, NULL),
                     PL_OK);
    uint8_t e[32], zero[32] = {0};
    assert_int_equal(pl_noise_hs_local_ephemeral(hs, e), PL_OK);
    assert_memory_not_equal(e, zero, 32);
    assert_int_equal(pl_noise_hs_remote_static(hs, e), PL_ERR_STATE);
    assert_int_equal(pl_noise_hs_action(hs), PL_NOISE_ACTION_READ);
    pl_noise_hs_free(hs);

    pl_noise_pattern p;
    assert_int_equal(pl_noise_pattern_from_name(&p, "XXpsk0"), PL_OK);
    assert_int_equal(p, PL_NOISE_XXPSK0);
    assert_int_equal(pl_noise_pattern_from_name(&p, "Noise_WakuPairing_25519_ChaChaPoly_SHA256"),
                     PL_OK);
    assert_int_equal(p, 14);
    assert_int_equal(pl_noise_pattern_from_name(&p, "IK"), PL_ERR_NOISE_PATTERN);
    assert_null(pl_noise_pattern_name((pl_noise_pattern)0));
}

static void test_out_of_turn_and_permanent_failure(void **state) {
    (void)state;
    keyset k;
    keyset_random(&k);
    pl_noise_hs *hi, *hr;
    make_pair(&k, PL_NOISE_XX, true, &hi, &hr);
    uint8_t *wire = (uint8_t *)1, *got = (uint8_t *)1;
    size_t wl = 9, gl = 9;
    /* The responder may not write first; the initiator may not read. */
    assert_int_equal(pl_noise_hs_write(hr, NULL, NULL, 0, &wire, &wl), PL_ERR_NOISE_STATE);
    assert_null(wire);
    assert_int_equal(wl, 0);
    assert_int_equal(pl_noise_hs_action(hr), PL_NOISE_ACTION_READ);
    assert_int_equal(pl_noise_hs_split(hr, &(pl_noise_session *){NULL}), PL_ERR_NOISE_STATE);

    assert_int_equal(pl_noise_hs_write(hi, NULL, (const uint8_t *)"x", 1, &wire, &wl), PL_OK);
    /* A message with an unknown nametag is dropped and changes nothing. */
    uint8_t other[16] = {1};
    assert_int_equal(pl_noise_hs_read(hr, wire, wl, other, &got, &gl), PL_ERR_NOISE_NAMETAG);
    assert_null(got);
    assert_int_equal(pl_noise_hs_read(hr, wire, 10, NULL, &got, &gl), PL_ERR_NOISE_PAYLOAD);
    assert_int_equal(pl_noise_hs_action(hr), PL_NOISE_ACTION_READ);
    /* An addressed but broken message fails the handshake for good. */
    wire[wl - 1] ^= 1;
    assert_int_not_equal(pl_noise_hs_read(hr, wire, wl, NULL, &got, &gl), PL_OK);
    assert_null(got);
    assert_int_equal(gl, 0);
    assert_int_equal(pl_noise_hs_action(hr), PL_NOISE_ACTION_FAILED);
    wire[wl - 1] ^= 1;
    assert_int_equal(pl_noise_hs_read(hr, wire, wl, NULL, &got, &gl), PL_ERR_NOISE_STATE);
    free(wire);
    assert_int_equal(pl_noise_hs_write(hr, NULL, NULL, 0, &wire, &wl), PL_ERR_NOISE_STATE);
    assert_null(wire);
    pl_noise_hs_free(hi), pl_noise_hs_free(hr);
}

/* ------------------------------------------------------------------ */
/* tampering                                                           */

typedef struct honest {
    uint8_t *wire[3];
    size_t len[3];
} honest;

/* Run the handshake, optionally flipping `bit` of byte `at` of message
 * `which` on delivery. Returns true if the handshake completed on both
 * sides with matching keys and h; records the honest wires when h != NULL. */
static bool run_tampered(const keyset *k, pl_noise_pattern p, int which, size_t at, uint8_t bit,
                         honest *rec) {
    pl_noise_hs *hi, *hr;
    make_pair(k, p, true, &hi, &hr);
    bool rejected = false;
    for (int step = 0; step < 3 && !rejected; step++) {
        pl_noise_hs *w = pl_noise_hs_action(hi) == PL_NOISE_ACTION_WRITE ? hi : hr;
        pl_noise_hs *rd = w == hi ? hr : hi;
        uint8_t payload[40];
        memset(payload, 0x40 + step, sizeof payload);
        uint8_t *wire, *got;
        size_t wl, gl;
        const uint8_t *tag = step == 0 ? tag1 : NULL;
        assert_int_equal(pl_noise_hs_write(w, tag, payload, sizeof payload, &wire, &wl), PL_OK);
        if (rec) {
            rec->wire[step] = wire;
            rec->len[step] = wl;
        }
        if (step == which) wire[at] ^= bit;
        pl_err e = pl_noise_hs_read(rd, wire, wl, tag, &got, &gl);
        if (step == which) wire[at] ^= bit;
        if (e == PL_OK) {
            /* A keyless message 1 (K1K1, XK1, XX) may be read changed; the
             * change is in h, so a later message must fail: carry on. */
            pl_free_secret(got, gl);
        } else {
            assert_null(got);
            rejected = true;
        }
        if (!rec) free(wire);
    }
    bool complete = false;
    if (!rejected) {
        pl_noise_session *si, *sr;
        assert_int_equal(pl_noise_hs_split(hi, &si), PL_OK);
        assert_int_equal(pl_noise_hs_split(hr, &sr), PL_OK);
        uint8_t io[32], ii[32], ro[32], ri[32];
        pl__noise_session_keys(si, io, ii);
        pl__noise_session_keys(sr, ro, ri);
        complete = !memcmp(io, ri, 32) && !memcmp(ii, ro, 32);
        pl_noise_session_free(si), pl_noise_session_free(sr);
    }
    pl_noise_hs_free(hi), pl_noise_hs_free(hr);
    return complete;
}

static void test_tamper_every_handshake_byte(void **state) {
    (void)state;
    for (size_t i = 0; i < PL_ARRAY_LEN(all_patterns); i++) {
        keyset k;
        keyset_random(&k);
        honest h;
        memset(&h, 0, sizeof h);
        assert_true(run_tampered(&k, all_patterns[i], -1, 0, 0, &h));
        for (int m = 0; m < 3; m++) {
            for (size_t at = 0; at < h.len[m]; at++) {
                uint8_t bit = (uint8_t)(1u << (at % 8));
                if (run_tampered(&k, all_patterns[i], m, at, bit, NULL)) {
                    fail_msg("pattern %d message %d byte %zu: tampering not detected",
                             all_patterns[i], m + 1, at);
                }
            }
            free(h.wire[m]);
        }
    }
}

static void test_tamper_every_transport_byte(void **state) {
    (void)state;
    keyset k;
    keyset_random(&k);
    pl_noise_hs *hi, *hr;
    pl_noise_session *si, *sr;
    make_pair(&k, PL_NOISE_XX, false, &hi, &hr);
    run_handshake(hi, hr, &si, &sr);
    uint8_t *wire, *got;
    size_t wl, gl;
    assert_int_equal(pl_noise_session_encrypt(si, (const uint8_t *)"secret", 6, &wire, &wl), PL_OK);
    for (size_t at = 0; at < wl; at++) {
        for (int bit = 0; bit < 8; bit += 3) {
            wire[at] ^= (uint8_t)(1u << bit);
            got = (uint8_t *)1;
            assert_int_not_equal(pl_noise_session_decrypt(sr, wire, wl, &got, &gl), PL_OK);
            assert_null(got);
            wire[at] ^= (uint8_t)(1u << bit);
        }
    }
    /* Nothing of that moved the window: the genuine message still opens. */
    assert_int_equal(pl_noise_session_decrypt(sr, wire, wl, &got, &gl), PL_OK);
    assert_memory_equal(got, "secret", 6);
    pl_free_secret(got, gl);
    /* ... once. */
    assert_int_equal(pl_noise_session_decrypt(sr, wire, wl, &got, &gl), PL_ERR_NOISE_REPLAY);
    /* A truncated copy is rejected too. */
    assert_int_not_equal(pl_noise_session_decrypt(sr, wire, wl - 1, &got, &gl), PL_OK);
    free(wire);
    pl_noise_session_free(si), pl_noise_session_free(sr);
    pl_noise_hs_free(hi), pl_noise_hs_free(hr);
}

/* ------------------------------------------------------------------ */
/* sessions                                                            */

static void make_sessions(pl_noise_session **si, pl_noise_session **sr) {
    keyset k;
    keyset_random(&k);
    pl_noise_hs *hi, *hr;
    make_pair(&k, PL_NOISE_K1K1, false, &hi, &hr);
    run_handshake(hi, hr, si, sr);
    pl_noise_hs_free(hi), pl_noise_hs_free(hr);
}

static pl_err recv_n(pl_noise_session *s, uint8_t **wires, size_t *lens, size_t n,
                     uint64_t expect_byte) {
    uint8_t *got;
    size_t gl;
    pl_err e = pl_noise_session_decrypt(s, wires[n], lens[n], &got, &gl);
    if (e == PL_OK) {
        assert_int_equal(gl, 8);
        uint64_t v;
        memcpy(&v, got, 8);
        assert_int_equal(v, expect_byte);
        pl_free_secret(got, gl);
    }
    return e;
}

#define NMSG 160

static void test_window(void **state) {
    (void)state;
    pl_noise_session *si, *sr;
    make_sessions(&si, &sr);
    uint8_t *w[NMSG];
    size_t l[NMSG];
    for (uint64_t i = 0; i < NMSG; i++)
        assert_int_equal(pl_noise_session_encrypt(si, (const uint8_t *)&i, 8, &w[i], &l[i]), PL_OK);

    /* reordered: 2, 0, 1 */
    assert_int_equal(recv_n(sr, w, l, 2, 2), PL_OK);
    assert_int_equal(recv_n(sr, w, l, 0, 0), PL_OK);
    assert_int_equal(recv_n(sr, w, l, 1, 1), PL_OK);
    assert_int_equal(recv_n(sr, w, l, 1, 1), PL_ERR_NOISE_REPLAY);
    assert_int_equal(pl_noise_session_next_inbound(sr), 3);
    /* 3 + 50 is just outside the look-ahead, 3 + 49 just inside. */
    assert_int_equal(recv_n(sr, w, l, 53, 53), PL_ERR_NOISE_WINDOW);
    assert_int_equal(recv_n(sr, w, l, 52, 52), PL_OK);
    assert_int_equal(pl_noise_session_next_inbound(sr), 53);
    /* skipped ones arrive late, once */
    assert_int_equal(recv_n(sr, w, l, 3, 3), PL_OK);
    assert_int_equal(recv_n(sr, w, l, 3, 3), PL_ERR_NOISE_REPLAY);
    assert_int_equal(recv_n(sr, w, l, 51, 51), PL_OK);
    assert_int_equal(recv_n(sr, w, l, 52, 52), PL_ERR_NOISE_REPLAY);
    /* 53 is now in reach */
    assert_int_equal(recv_n(sr, w, l, 53, 53), PL_OK);
    /* window behind: next = 54, so 4 is the oldest reachable (54 - 50) */
    assert_int_equal(recv_n(sr, w, l, 100, 100), PL_OK); /* next = 101, oldest 51 */
    assert_int_equal(recv_n(sr, w, l, 50, 50), PL_ERR_NOISE_WINDOW);
    assert_int_equal(recv_n(sr, w, l, 4, 4), PL_ERR_NOISE_WINDOW);
    assert_int_equal(recv_n(sr, w, l, 51, 51), PL_ERR_NOISE_REPLAY);
    assert_int_equal(recv_n(sr, w, l, 60, 60), PL_OK);
    /* in order again */
    for (size_t i = 101; i < NMSG; i++) assert_int_equal(recv_n(sr, w, l, i, i), PL_OK);
    /* next = 160: 110..159 are replays, 109 has left the window */
    for (size_t i = 110; i < NMSG; i++) assert_int_equal(recv_n(sr, w, l, i, i), PL_ERR_NOISE_REPLAY);
    assert_int_equal(recv_n(sr, w, l, 109, 109), PL_ERR_NOISE_WINDOW);
    /* Messages in the other direction are not the responder's to read. */
    uint8_t *own, *got;
    size_t ol, gl;
    assert_int_equal(pl_noise_session_encrypt(sr, (const uint8_t *)"x", 1, &own, &ol), PL_OK);
    assert_int_equal(pl_noise_session_decrypt(sr, own, ol, &got, &gl), PL_ERR_NOISE_WINDOW);
    free(own);
    for (size_t i = 0; i < NMSG; i++) free(w[i]);
    pl_noise_session_free(si), pl_noise_session_free(sr);
}

/* The window rule against a model, over random deliveries (jumps ahead,
 * late ones, replays, the other direction's messages), with a save and
 * restore now and then: nametags are derived lazily and looked up through
 * the expected one first, which must not change what is accepted. */
static void test_window_random_against_model(void **state) {
    (void)state;
    enum { N = 1000 };
    pl_noise_session *si, *sr;
    make_sessions(&si, &sr);
    uint8_t *w[N];
    size_t l[N];
    for (uint64_t i = 0; i < N; i++)
        assert_int_equal(pl_noise_session_encrypt(si, (const uint8_t *)&i, 8, &w[i], &l[i]), PL_OK);
    uint8_t *own;
    size_t ol;
    assert_int_equal(pl_noise_session_encrypt(sr, (const uint8_t *)"x", 1, &own, &ol), PL_OK);
    bool seen[N] = {false};
    uint64_t next = 0; /* the model: highest accepted + 1 */
    size_t accepted = 0, refused = 0;
    for (int step = 0; step < 3000; step++) {
        uint64_t r = pl_test_rand(&seed_state);
        if (r % 50 == 0) { /* the other direction: never ours */
            uint8_t *got;
            size_t gl;
            assert_int_equal(pl_noise_session_decrypt(sr, own, ol, &got, &gl), PL_ERR_NOISE_WINDOW);
            continue;
        }
        if (r % 97 == 1) { /* persist and continue from the copy */
            uint8_t *st;
            size_t sl;
            pl_noise_session *back;
            assert_int_equal(pl_noise_session_serialize(sr, &st, &sl), PL_OK);
            assert_int_equal(pl_noise_session_restore(&back, st, sl), PL_OK);
            pl_free_secret(st, sl);
            pl_noise_session_free(sr);
            sr = back;
            continue;
        }
        /* mostly the next one or near it, sometimes far either way */
        int64_t d = (int64_t)((r >> 8) % 8) - 2;
        if (r % 7 == 0) d = (int64_t)((r >> 16) % 140) - 70;
        int64_t kk = (int64_t)next + d;
        if (kk < 0 || kk >= N) continue;
        uint64_t k = (uint64_t)kk;
        uint64_t lo = next > 50 ? next - 50 : 0, hi = next + 50;
        pl_err want = k < lo || k >= hi ? PL_ERR_NOISE_WINDOW
                      : seen[k]         ? PL_ERR_NOISE_REPLAY
                                        : PL_OK;
        assert_int_equal(recv_n(sr, w, l, k, k), want);
        if (want == PL_OK) {
            seen[k] = true;
            if (k >= next) next = k + 1;
            accepted++;
        } else {
            refused++;
        }
        assert_int_equal(pl_noise_session_next_inbound(sr), next);
    }
    if (!(accepted > 150 && refused > 100)) fprintf(stderr, "accepted %zu refused %zu\n", accepted, refused);
    assert_true(accepted > 150 && refused > 100);
    free(own);
    for (size_t i = 0; i < N; i++) free(w[i]);
    pl_noise_session_free(si), pl_noise_session_free(sr);
}

static void test_session_restore(void **state) {
    (void)state;
    pl_noise_session *si, *sr;
    make_sessions(&si, &sr);
    uint8_t *w[NMSG];
    size_t l[NMSG];
    for (uint64_t i = 0; i < 6; i++)
        assert_int_equal(pl_noise_session_encrypt(si, (const uint8_t *)&i, 8, &w[i], &l[i]), PL_OK);
    assert_int_equal(recv_n(sr, w, l, 0, 0), PL_OK);
    assert_int_equal(recv_n(sr, w, l, 3, 3), PL_OK);
    send_ok(sr, si, "before");

    uint8_t *bi, *br;
    size_t bil, brl;
    assert_int_equal(pl_noise_session_serialize(si, &bi, &bil), PL_OK);
    assert_int_equal(pl_noise_session_serialize(sr, &br, &brl), PL_OK);
    assert_int_equal(bil, PL_NOISE_SESSION_STATE_BYTES);
    uint8_t id_before[32], id_after[32];
    pl_noise_session_id(sr, id_before);

    /* The restored sender writes exactly what the original would have. */
    pl_noise_session *si2;
    assert_int_equal(pl_noise_session_restore(&si2, bi, bil), PL_OK);
    uint8_t *a, *b;
    size_t al, bl;
    assert_int_equal(pl_noise_session_encrypt(si, (const uint8_t *)"same", 4, &a, &al), PL_OK);
    assert_int_equal(pl_noise_session_encrypt(si2, (const uint8_t *)"same", 4, &b, &bl), PL_OK);
    assert_int_equal(al, bl);
    assert_memory_equal(a, b, al);
    free(a), free(b);
    pl_noise_session_free(si);
    pl_noise_session_free(si2);
    pl_noise_session_free(sr);

    pl_noise_session *ri, *rr;
    assert_int_equal(pl_noise_session_restore(&ri, bi, bil), PL_OK);
    assert_int_equal(pl_noise_session_restore(&rr, br, brl), PL_OK);
    pl_noise_session_id(rr, id_after);
    assert_memory_equal(id_before, id_after, 32);
    assert_int_equal(pl_noise_session_role(rr), PL_NOISE_RESPONDER);
    assert_int_equal(pl_noise_session_pattern(rr), PL_NOISE_K1K1);
    /* The window survived: 0 and 3 are replays, 1, 2, 4, 5 still welcome. */
    assert_int_equal(recv_n(rr, w, l, 0, 0), PL_ERR_NOISE_REPLAY);
    assert_int_equal(recv_n(rr, w, l, 3, 3), PL_ERR_NOISE_REPLAY);
    assert_int_equal(recv_n(rr, w, l, 1, 1), PL_OK);
    assert_int_equal(recv_n(rr, w, l, 5, 5), PL_OK);
    assert_int_equal(recv_n(rr, w, l, 2, 2), PL_OK);
    assert_int_equal(recv_n(rr, w, l, 4, 4), PL_OK);
    send_ok(ri, rr, "after restore");
    send_ok(rr, ri, "and back");
    for (size_t i = 0; i < 6; i++) free(w[i]);

    /* Damaged states are refused. */
    pl_noise_session *x = (pl_noise_session *)1;
    assert_int_equal(pl_noise_session_restore(&x, br, brl - 1), PL_ERR_BAD_LENGTH);
    assert_null(x);
    br[0] ^= 1;
    assert_int_equal(pl_noise_session_restore(&x, br, brl), PL_ERR_STORE_CORRUPT);
    br[0] ^= 1;
    br[4] = 2;
    assert_int_equal(pl_noise_session_restore(&x, br, brl), PL_ERR_UNSUPPORTED);
    br[4] = 1;
    br[5] = 99;
    assert_int_equal(pl_noise_session_restore(&x, br, brl), PL_ERR_STORE_CORRUPT);
    br[5] = PL_NOISE_K1K1;
    br[6] = 3;
    assert_int_equal(pl_noise_session_restore(&x, br, brl), PL_ERR_STORE_CORRUPT);
    br[6] = PL_NOISE_RESPONDER;
    br[216 + 7] = 0x80; /* a bit beyond the window */
    assert_int_equal(pl_noise_session_restore(&x, br, brl), PL_ERR_STORE_CORRUPT);
    br[216 + 7] = 0;
    br[216] &= 0xfe; /* the highest accepted nonce not marked */
    assert_int_equal(pl_noise_session_restore(&x, br, brl), PL_ERR_STORE_CORRUPT);
    br[216] |= 1;
    memset(br + 208, 0, 8); /* nothing accepted, yet bits set */
    br[208] = 2;
    assert_int_equal(pl_noise_session_restore(&x, br, brl), PL_ERR_STORE_CORRUPT);
    pl_free_secret(bi, bil);
    pl_free_secret(br, brl);
    pl_noise_session_free(ri), pl_noise_session_free(rr);
}

static void put64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* 64-bit nonces run to 2^64-2; 2^64-1 is never used (Noise 5.1). */
static void test_nonce_exhaustion(void **state) {
    (void)state;
    pl_noise_session *si, *sr;
    make_sessions(&si, &sr);
    uint8_t *bi, *br;
    size_t n;
    assert_int_equal(pl_noise_session_serialize(si, &bi, &n), PL_OK);
    assert_int_equal(pl_noise_session_serialize(sr, &br, &n), PL_OK);
    put64(bi + 200, UINT64_MAX - 1);
    put64(br + 208, UINT64_MAX - 1); /* responder accepted up to 2^64-3 */
    put64(br + 216, 1);
    pl_noise_session_free(si), pl_noise_session_free(sr);
    assert_int_equal(pl_noise_session_restore(&si, bi, n), PL_OK);
    assert_int_equal(pl_noise_session_restore(&sr, br, n), PL_OK);
    send_ok(si, sr, "last but one"); /* nonce 2^64-2 */
    uint8_t *wire = (uint8_t *)1;
    size_t wl;
    assert_int_equal(pl_noise_session_encrypt(si, (const uint8_t *)"x", 1, &wire, &wl),
                     PL_ERR_NOISE_NONCE);
    assert_null(wire);
    pl_free_secret(bi, n), pl_free_secret(br, n);
    pl_noise_session_free(si), pl_noise_session_free(sr);
}

static void test_session_errors(void **state) {
    (void)state;
    pl_noise_session *si, *sr;
    make_sessions(&si, &sr);
    uint8_t *wire, *got;
    size_t wl, gl;
    static uint8_t big[PL_NOISE_MAX_MESSAGE + 1];
    assert_int_equal(pl_noise_session_encrypt(si, big, sizeof big, &wire, &wl), PL_ERR_TOO_LARGE);
    assert_int_equal(pl_noise_session_encrypt(si, big, PL_NOISE_MAX_MESSAGE, &wire, &wl), PL_OK);
    assert_true(wl <= PL_NOISE_MAX_WIRE);
    assert_int_equal(pl_noise_session_decrypt(sr, wire, wl, &got, &gl), PL_OK);
    assert_int_equal(gl, PL_NOISE_MAX_MESSAGE);
    pl_free_secret(got, gl);
    /* A handshake-type PayloadV2 is not a transport message. */
    wire[16] = PL_NOISE_XX;
    assert_int_equal(pl_noise_session_decrypt(sr, wire, wl, &got, &gl), PL_ERR_NOISE_PROTOCOL_ID);
    free(wire);
    char *t;
    assert_int_equal(pl_noise_session_content_topic(&t, si, "a/b", "1"), PL_ERR_INVALID_ARG);
    assert_int_equal(pl_noise_session_content_topic(&t, si, "", "1"), PL_ERR_INVALID_ARG);
    assert_int_equal(pl_noise_session_content_topic(&t, si, "app", "\n"), PL_ERR_INVALID_ARG);
    assert_null(t);
    pl_noise_session_free(si), pl_noise_session_free(sr);
}

/* ------------------------------------------------------------------ */
/* PayloadV2 and padding                                               */

static void test_payload_roundtrip_and_errors(void **state) {
    (void)state;
    pl_noise_payload p;
    memset(&p, 0, sizeof p);
    memset(p.nametag, 0xab, 16);
    p.protocol_id = PL_NOISE_XX;
    p.nkeys = 2;
    p.keys[0].flag = 0;
    memset(p.keys[0].data, 1, 32);
    p.keys[1].flag = 1;
    memset(p.keys[1].data, 2, 48);
    uint8_t tr[300];
    memset(tr, 3, sizeof tr);
    p.transport = tr;
    p.transport_len = sizeof tr;
    uint8_t *w;
    size_t wl;
    assert_int_equal(pl_noise_payload_serialize(&w, &wl, &p), PL_OK);
    assert_int_equal(wl, 16 + 1 + 1 + 33 + 49 + 8 + 300);
    assert_int_equal(w[16], 12);
    assert_int_equal(w[17], 82);
    assert_int_equal(w[18 + 82], 300 & 0xff);
    assert_int_equal(w[18 + 82 + 1], 300 >> 8);
    pl_noise_payload q;
    assert_int_equal(pl_noise_payload_parse(&q, w, wl), PL_OK);
    assert_int_equal(q.nkeys, 2);
    assert_int_equal(q.keys[1].flag, 1);
    assert_memory_equal(q.keys[1].data, p.keys[1].data, 48);
    assert_int_equal(q.transport_len, 300);
    assert_ptr_equal(q.transport, w + 18 + 82 + 8);

    /* every truncation fails */
    for (size_t n = 0; n < wl; n++) assert_int_not_equal(pl_noise_payload_parse(&q, w, n), PL_OK);
    uint8_t *x = malloc(wl + 1);
    memcpy(x, w, wl);
    x[wl] = 0;
    assert_int_equal(pl_noise_payload_parse(&q, x, wl + 1), PL_ERR_NOISE_PAYLOAD); /* trailing */
    memcpy(x, w, wl);
    x[18] = 2; /* bad flag */
    assert_int_equal(pl_noise_payload_parse(&q, x, wl), PL_ERR_NOISE_PAYLOAD);
    memcpy(x, w, wl);
    x[17] = 81; /* keys do not fill hs_len */
    assert_int_equal(pl_noise_payload_parse(&q, x, wl), PL_ERR_NOISE_PAYLOAD);
    memcpy(x, w, wl);
    x[16] = 15;
    assert_int_equal(pl_noise_payload_parse(&q, x, wl), PL_ERR_NOISE_PROTOCOL_ID);
    x[16] = 0; /* transport messages carry no keys */
    assert_int_equal(pl_noise_payload_parse(&q, x, wl), PL_ERR_NOISE_PAYLOAD);
    memcpy(x, w, wl);
    x[18 + 82 + 7] = 0x80; /* absurd transport length */
    assert_int_equal(pl_noise_payload_parse(&q, x, wl), PL_ERR_NOISE_PAYLOAD);
    free(x);
    free(w);

    p.nkeys = 8;
    assert_int_equal(pl_noise_payload_serialize(&w, &wl, &p), PL_ERR_NOISE_PAYLOAD);
    p.nkeys = 6; /* 6 * 49 > 255 */
    for (int i = 0; i < 6; i++) p.keys[i].flag = 1;
    assert_int_equal(pl_noise_payload_serialize(&w, &wl, &p), PL_ERR_NOISE_PAYLOAD);
    p.nkeys = 0;
    p.protocol_id = 7;
    assert_int_equal(pl_noise_payload_serialize(&w, &wl, &p), PL_ERR_NOISE_PROTOCOL_ID);
    assert_null(w);
    static uint8_t huge[PL_NOISE_MAX_WIRE + 1];
    assert_int_equal(pl_noise_payload_parse(&q, huge, sizeof huge), PL_ERR_TOO_LARGE);
}

static void test_padding(void **state) {
    (void)state;
    assert_int_equal(pl__noise_padded_len(0), 248);
    assert_int_equal(pl__noise_padded_len(247), 248);
    assert_int_equal(pl__noise_padded_len(248), 496);
    uint8_t buf[496], in[248];
    memset(in, 7, sizeof in);
    size_t n;
    for (size_t len = 0; len <= 248; len += 31) {
        size_t pl = pl__noise_padded_len(len);
        pl__noise_pad(buf, in, len);
        assert_int_equal(buf[pl - 1], pl - len);
        assert_int_equal(pl__noise_unpad(buf, pl, &n), PL_OK);
        assert_int_equal(n, len);
    }
    pl__noise_pad(buf, in, 10);
    buf[240] ^= 1;
    assert_int_equal(pl__noise_unpad(buf, 248, &n), PL_ERR_NOISE_PADDING);
    memset(buf, 0, 248);
    assert_int_equal(pl__noise_unpad(buf, 248, &n), PL_ERR_NOISE_PADDING);
    memset(buf, 249, 248);
    assert_int_equal(pl__noise_unpad(buf, 248, &n), PL_ERR_NOISE_PADDING);
    pl__noise_pad(buf, in, 10);
    assert_int_equal(pl__noise_unpad(buf, 247, &n), PL_ERR_NOISE_PADDING);
    assert_int_equal(pl__noise_unpad(buf, 0, &n), PL_ERR_NOISE_PADDING);
}

/* C-generated transcripts replay for every pattern (the same format the
 * interop tests exchange with js-noise). */
static void test_generated_transcripts(void **state) {
    (void)state;
    for (size_t i = 0; i < PL_ARRAY_LEN(all_patterns); i++) {
        char *json;
        assert_int_equal(pl_noise_transcript_generate(&json, all_patterns[i], 4), PL_OK);
        pl_noise_replay_report r;
        assert_int_equal(pl_noise_transcript_replay(json, strlen(json), &r), PL_OK);
        if (!r.match) fprintf(stderr, "difference: %s\n", r.first_difference);
        assert_true(r.match);
        assert_int_equal(r.pattern, all_patterns[i]);
        assert_int_equal(r.transport_messages, 4);
        assert_int_equal(r.checked_commitments, all_patterns[i] == PL_NOISE_WAKU_PAIRING);
        pl_free(json);
    }
    char *json;
    assert_int_equal(pl_noise_transcript_generate(&json, PL_NOISE_XX, 65), PL_ERR_INVALID_ARG);
    assert_int_equal(pl_noise_transcript_generate(&json, (pl_noise_pattern)1, 1),
                     PL_ERR_NOISE_PATTERN);
}

int main(void) {
    if (pl_init() != PL_OK) return 1;
    seed_state = pl_test_seed();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vector_replay),
        cmocka_unit_test(test_vector_replay_detects_changes),
        cmocka_unit_test(test_vector_unusable),
        cmocka_unit_test(test_authcode_endianness),
        cmocka_unit_test(test_vector_qr_and_commitments),
        cmocka_unit_test(test_qr_malformed),
        cmocka_unit_test(test_live_all_patterns),
        cmocka_unit_test(test_wrong_keys_fail),
        cmocka_unit_test(test_hs_new_errors),
        cmocka_unit_test(test_out_of_turn_and_permanent_failure),
        cmocka_unit_test(test_tamper_every_handshake_byte),
        cmocka_unit_test(test_tamper_every_transport_byte),
        cmocka_unit_test(test_window),
        cmocka_unit_test(test_window_random_against_model),
        cmocka_unit_test(test_session_restore),
        cmocka_unit_test(test_nonce_exhaustion),
        cmocka_unit_test(test_session_errors),
        cmocka_unit_test(test_payload_roundtrip_and_errors),
        cmocka_unit_test(test_padding),
        cmocka_unit_test(test_generated_transcripts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
