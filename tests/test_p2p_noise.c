/* SPDX-License-Identifier: Apache-2.0 */
/* libp2p Noise XX: the signature vector of waku-message.json, transcripts
 * from an independent implementation (tests/data/p2p_noise_xx.json, see
 * scripts/gen-p2p-noise-vector.py), live handshakes with both key types,
 * and every way a handshake must fail. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libp2p.pb-c.h"
#include "p2p/noise_xx.h"
#include "pairlink/hash.h"
#include "support/support.h"

static json_t *vec, *kat;

static int setup(void **state) {
    (void)state;
    assert_int_equal(pl_init(), PL_OK);
    vec = pl_test_vectors("waku-message.json");
    json_error_t err;
    kat = json_load_file(PL_SOURCE_DIR "/tests/data/p2p_noise_xx.json", 0, &err);
    if (!kat) fail_msg("tests/data/p2p_noise_xx.json: %s", err.text);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    json_decref(vec);
    json_decref(kat);
    return 0;
}

static pl_p2p_key *ed_key(json_t *root, const char *path) {
    uint8_t seed[32];
    pl_test_hex(root, path, seed, 32);
    pl_p2p_key *k = NULL;
    assert_int_equal(pl_p2p_key_from_secret(&k, PL_P2P_KEY_ED25519, seed), PL_OK);
    return k;
}

static const char *msg_hex(const char *which, int i) {
    json_t *m = json_object_get(json_object_get(kat, which), "messages");
    return json_string_value(json_array_get(m, (size_t)i));
}

/* The frame body of a framed hex message. */
static uint8_t *unframe(const char *hex, size_t *len) {
    size_t n = 0;
    uint8_t *b = pl_test_unhex(hex, &n);
    assert_true(n >= 2);
    assert_int_equal((size_t)b[0] << 8 | b[1], n - 2);
    memmove(b, b + 2, n - 2);
    *len = n - 2;
    return b;
}

static void write_expect(pl__nxx *n, const char *hex) {
    uint8_t out[1024];
    size_t len = 0;
    assert_int_equal(pl__nxx_write(n, out, sizeof out, &len), PL_OK);
    size_t wl = 0;
    uint8_t *want = pl_test_unhex(hex, &wl);
    assert_int_equal(len, wl);
    assert_memory_equal(out, want, len);
    free(want);
}

static void read_ok(pl__nxx *n, const char *hex) {
    size_t len = 0;
    uint8_t *m = unframe(hex, &len);
    assert_int_equal(pl__nxx_read(n, m, len), PL_OK);
    free(m);
}

static void test_signature_vector(void **state) {
    (void)state;
    pl_p2p_key *k = ed_key(vec, "libp2p.ed25519_peer.private_seed");
    uint8_t spub[32], sig[64];
    pl_test_hex(vec, "libp2p.noise_handshake_signature.static_pub", spub, 32);
    pl_test_hex(vec, "libp2p.noise_handshake_signature.signature", sig, 64);
    uint8_t *p = NULL;
    size_t pl = 0;
    assert_int_equal(pl__nxx_payload_build(k, spub, &p, &pl), PL_OK);
    Libp2p__NoiseHandshakePayload *m = libp2p__noise_handshake_payload__unpack(NULL, pl, p);
    assert_non_null(m);
    assert_true(m->has_identity_sig && m->identity_sig.len == 64);
    assert_memory_equal(m->identity_sig.data, sig, 64);
    size_t kl = 0;
    uint8_t *kp = pl_test_unhex(pl_test_str(vec, "libp2p.ed25519_peer.public_key_proto"), &kl);
    assert_int_equal(m->identity_key.len, kl);
    assert_memory_equal(m->identity_key.data, kp, kl);
    assert_null(m->extensions); /* no stream_muxers: js negotiates by multistream */
    libp2p__noise_handshake_payload__free_unpacked(m, NULL);

    pl__p2p_pubkey key;
    pl_p2p_peer_id peer;
    assert_int_equal(pl__nxx_payload_verify(p, pl, spub, &key, &peer), PL_OK);
    char t[PL_P2P_PEER_ID_TEXT_SIZE];
    assert_int_equal(pl_p2p_peer_id_format(t, &peer), PL_OK);
    assert_string_equal(t, pl_test_str(vec, "libp2p.ed25519_peer.peer_id"));
    /* The same payload does not vouch for another static key. */
    spub[0] ^= 1;
    assert_int_equal(pl__nxx_payload_verify(p, pl, spub, &key, &peer), PL_ERR_BAD_SIGNATURE);
    assert_int_equal(peer.len, 0);
    free(kp);
    free(p);
    pl_p2p_key_free(k);
}

typedef struct side {
    pl_p2p_key *key;
    pl__nxx_identity id;
    pl__nxx *n;
} side;

static void side_kat(side *s, bool initiator, pl_p2p_key *key) {
    uint8_t st[32], eph[32];
    pl_test_hex(kat, initiator ? "initiator_static" : "responder_static", st, 32);
    pl_test_hex(kat, initiator ? "initiator_ephemeral" : "responder_ephemeral", eph, 32);
    s->key = key;
    assert_int_equal(pl__nxx_identity_init(&s->id, key, st), PL_OK);
    assert_int_equal(pl__nxx_new(&s->n, initiator, &s->id, NULL, eph), PL_OK);
}

static void side_free(side *s) {
    pl__nxx_free(s->n);
    pl__nxx_identity_clear(&s->id);
    pl_p2p_key_free(s->key);
}

static void check_transport(pl__nxx *from, pl__nxx *to, const char *text, const char *hex) {
    size_t n = strlen(text);
    uint8_t out[128];
    assert_int_equal(pl__nxx_encrypt(from, (const uint8_t *)text, n, out), PL_OK);
    if (hex) {
        size_t wl = 0;
        uint8_t *want = pl_test_unhex(hex, &wl);
        assert_int_equal(wl, n + 18);
        assert_memory_equal(out, want, wl);
        free(want);
    }
    uint8_t plain[128];
    size_t pl = 0;
    assert_int_equal(pl__nxx_decrypt(to, out + 2, n + 16, plain, &pl), PL_OK);
    assert_int_equal(pl, n);
    assert_memory_equal(plain, text, n);
}

static void test_known_transcript_ed25519(void **state) {
    (void)state;
    side i, r;
    side_kat(&i, true, ed_key(kat, "initiator_identity_seed"));
    side_kat(&r, false, ed_key(kat, "ed25519.responder_identity_seed"));
    assert_int_equal(pl__nxx_action_of(i.n), PL__NXX_WRITE);
    assert_int_equal(pl__nxx_action_of(r.n), PL__NXX_READ);
    write_expect(i.n, msg_hex("ed25519", 0));
    read_ok(r.n, msg_hex("ed25519", 0));
    write_expect(r.n, msg_hex("ed25519", 1));
    read_ok(i.n, msg_hex("ed25519", 1));
    write_expect(i.n, msg_hex("ed25519", 2));
    read_ok(r.n, msg_hex("ed25519", 2));
    assert_int_equal(pl__nxx_action_of(i.n), PL__NXX_DONE);
    assert_int_equal(pl__nxx_action_of(r.n), PL__NXX_DONE);
    assert_true(pl_p2p_peer_id_equal(pl__nxx_remote_peer(i.n), &r.id.peer));
    assert_true(pl_p2p_peer_id_equal(pl__nxx_remote_peer(r.n), &i.id.peer));
    json_t *e = json_object_get(kat, "ed25519");
    check_transport(i.n, r.n, "hello from the initiator",
                    json_string_value(json_object_get(e, "transport_i2r")));
    check_transport(r.n, i.n, "hello from the responder",
                    json_string_value(json_object_get(e, "transport_r2i")));
    side_free(&i);
    side_free(&r);
}

static void test_known_transcript_secp256k1_high_s(void **state) {
    (void)state;
    /* The responder is Python with a secp256k1 key and a high-S signature;
     * we play the initiator. */
    side i;
    side_kat(&i, true, ed_key(kat, "initiator_identity_seed"));
    write_expect(i.n, msg_hex("secp256k1_high_s", 0));
    read_ok(i.n, msg_hex("secp256k1_high_s", 1));
    const pl__p2p_pubkey *rk = pl__nxx_remote_key(i.n);
    assert_int_equal(rk->type, PL_P2P_KEY_SECP256K1);
    uint8_t secret[32];
    pl_test_hex(kat, "secp256k1_high_s.responder_secret", secret, 32);
    pl_p2p_key *sk = NULL;
    assert_int_equal(pl_p2p_key_from_secret(&sk, PL_P2P_KEY_SECP256K1, secret), PL_OK);
    pl_p2p_peer_id want;
    pl_p2p_key_peer_id(sk, &want);
    assert_true(pl_p2p_peer_id_equal(pl__nxx_remote_peer(i.n), &want));
    write_expect(i.n, msg_hex("secp256k1_high_s", 2));
    /* The responder's first transport frame. */
    size_t tl = 0;
    uint8_t *t = unframe(json_string_value(json_object_get(json_object_get(kat, "secp256k1_high_s"),
                                                            "transport_r2i")),
                         &tl);
    uint8_t plain[128];
    size_t pl = 0;
    assert_int_equal(pl__nxx_decrypt(i.n, t, tl, plain, &pl), PL_OK);
    assert_int_equal(pl, 24);
    assert_memory_equal(plain, "hello from the responder", 24);
    free(t);
    pl_p2p_key_free(sk);
    side_free(&i);
}

/* ---- live handshakes ----------------------------------------------------- */

typedef struct pair {
    side i, r;
} pair;

static void pair_new(pair *p, pl_p2p_key_type ti, pl_p2p_key_type tr, const pl_p2p_peer_id *expect) {
    memset(p, 0, sizeof *p);
    assert_int_equal(pl_p2p_key_generate(&p->i.key, ti), PL_OK);
    assert_int_equal(pl_p2p_key_generate(&p->r.key, tr), PL_OK);
    assert_int_equal(pl__nxx_identity_init(&p->i.id, p->i.key, NULL), PL_OK);
    assert_int_equal(pl__nxx_identity_init(&p->r.id, p->r.key, NULL), PL_OK);
    assert_int_equal(pl__nxx_new(&p->i.n, true, &p->i.id, expect ? expect : &p->r.id.peer, NULL),
                     PL_OK);
    assert_int_equal(pl__nxx_new(&p->r.n, false, &p->r.id, NULL, NULL), PL_OK);
}

static void pair_free(pair *p) {
    side_free(&p->i);
    side_free(&p->r);
}

/* Move message `step` from writer to reader; returns the reader's result.
 * mutate (may be NULL) edits the frame body first. */
static pl_err step(pl__nxx *w, pl__nxx *r, void (*mutate)(uint8_t *, size_t *)) {
    uint8_t out[2048];
    size_t len = 0;
    assert_int_equal(pl__nxx_write(w, out, sizeof out, &len), PL_OK);
    size_t body = len - 2;
    if (mutate) mutate(out + 2, &body);
    return pl__nxx_read(r, out + 2, body);
}

static void test_live_handshakes(void **state) {
    (void)state;
    const pl_p2p_key_type types[2] = {PL_P2P_KEY_ED25519, PL_P2P_KEY_SECP256K1};
    for (int a = 0; a < 2; a++) {
        for (int b = 0; b < 2; b++) {
            pair p;
            pair_new(&p, types[a], types[b], NULL);
            assert_int_equal(step(p.i.n, p.r.n, NULL), PL_OK);
            assert_int_equal(step(p.r.n, p.i.n, NULL), PL_OK);
            assert_int_equal(step(p.i.n, p.r.n, NULL), PL_OK);
            assert_int_equal(pl__nxx_remote_key(p.i.n)->type, types[b]);
            assert_int_equal(pl__nxx_remote_key(p.r.n)->type, types[a]);
            assert_true(pl_p2p_peer_id_equal(pl__nxx_remote_peer(p.r.n), &p.i.id.peer));
            check_transport(p.i.n, p.r.n, "ping", NULL);
            check_transport(p.r.n, p.i.n, "pong", NULL);
            /* Out of turn and after the end. */
            uint8_t out[256];
            size_t len = 5;
            assert_int_equal(pl__nxx_write(p.i.n, out, sizeof out, &len), PL_ERR_NOISE_STATE);
            assert_int_equal(len, 0);
            pair_free(&p);
        }
    }
}

static void flip_last(uint8_t *b, size_t *len) { b[*len - 1] ^= 0x80; }
static void flip_s(uint8_t *b, size_t *len) {
    (void)len;
    b[40] ^= 1;
}
static void cut_short(uint8_t *b, size_t *len) {
    (void)b;
    *len = 60;
}

static void expect_fail_at_msg2(void (*mutate)(uint8_t *, size_t *), pl_err want) {
    pair p;
    pair_new(&p, PL_P2P_KEY_ED25519, PL_P2P_KEY_ED25519, NULL);
    assert_int_equal(step(p.i.n, p.r.n, NULL), PL_OK);
    assert_int_equal(step(p.r.n, p.i.n, mutate), want);
    assert_int_equal(pl__nxx_action_of(p.i.n), PL__NXX_FAILED);
    /* Failed for good. */
    uint8_t out[256];
    size_t len = 0;
    assert_int_equal(pl__nxx_write(p.i.n, out, sizeof out, &len), PL_ERR_NOISE_STATE);
    assert_int_equal(pl__nxx_read(p.i.n, out, 100), PL_ERR_NOISE_STATE);
    assert_int_equal(pl__nxx_encrypt(p.i.n, out, 1, out), PL_ERR_NOISE_STATE);
    pair_free(&p);
}

static void test_tampered_messages(void **state) {
    (void)state;
    expect_fail_at_msg2(flip_last, PL_ERR_DECRYPT);
    expect_fail_at_msg2(flip_s, PL_ERR_DECRYPT);
    expect_fail_at_msg2(cut_short, PL_ERR_P2P_FRAME);

    /* Message 3 tampered: the responder fails. */
    pair p;
    pair_new(&p, PL_P2P_KEY_SECP256K1, PL_P2P_KEY_ED25519, NULL);
    assert_int_equal(step(p.i.n, p.r.n, NULL), PL_OK);
    assert_int_equal(step(p.r.n, p.i.n, NULL), PL_OK);
    assert_int_equal(step(p.i.n, p.r.n, flip_last), PL_ERR_DECRYPT);
    assert_int_equal(pl__nxx_action_of(p.r.n), PL__NXX_FAILED);
    pair_free(&p);

    /* Message 1 too short for a key. */
    pair_new(&p, PL_P2P_KEY_ED25519, PL_P2P_KEY_ED25519, NULL);
    uint8_t junk[31] = {0};
    assert_int_equal(pl__nxx_read(p.r.n, junk, sizeof junk), PL_ERR_P2P_FRAME);
    pair_free(&p);

    /* A low-order ephemeral key: the DH result would be known to anyone. */
    pair_new(&p, PL_P2P_KEY_ED25519, PL_P2P_KEY_ED25519, NULL);
    uint8_t zero[32] = {0};
    assert_int_equal(pl__nxx_read(p.r.n, zero, 32), PL_OK);
    uint8_t out[512];
    size_t len = 0;
    assert_int_equal(pl__nxx_write(p.r.n, out, sizeof out, &len), PL_ERR_WEAK_KEY);
    assert_int_equal(len, 0);
    assert_int_equal(pl__nxx_action_of(p.r.n), PL__NXX_FAILED);
    pair_free(&p);
}

static void test_peer_mismatch(void **state) {
    (void)state;
    pl_p2p_key *other = NULL;
    assert_int_equal(pl_p2p_key_generate(&other, PL_P2P_KEY_ED25519), PL_OK);
    pl_p2p_peer_id want;
    pl_p2p_key_peer_id(other, &want);
    pair p;
    pair_new(&p, PL_P2P_KEY_ED25519, PL_P2P_KEY_SECP256K1, &want);
    assert_int_equal(step(p.i.n, p.r.n, NULL), PL_OK);
    assert_int_equal(step(p.r.n, p.i.n, NULL), PL_ERR_P2P_PEER_MISMATCH);
    assert_int_equal(pl__nxx_action_of(p.i.n), PL__NXX_FAILED);
    /* Who answered instead is kept for the log. */
    assert_true(pl_p2p_peer_id_equal(pl__nxx_remote_peer(p.i.n), &p.r.id.peer));
    pair_free(&p);
    pl_p2p_key_free(other);
}

/* A responder whose payload is replaced by `payload`. */
static pl_err msg2_with_payload(const uint8_t *payload, size_t len) {
    pair p;
    pair_new(&p, PL_P2P_KEY_ED25519, PL_P2P_KEY_ED25519, NULL);
    free(p.r.id.payload);
    p.r.id.payload = malloc(len ? len : 1);
    if (len) memcpy(p.r.id.payload, payload, len);
    p.r.id.payload_len = len;
    assert_int_equal(step(p.i.n, p.r.n, NULL), PL_OK);
    pl_err e = step(p.r.n, p.i.n, NULL);
    if (e != PL_OK) assert_int_equal(pl__nxx_action_of(p.i.n), PL__NXX_FAILED);
    pair_free(&p);
    return e;
}

static void test_bad_payloads(void **state) {
    (void)state;
    pl_p2p_key *k = NULL;
    assert_int_equal(pl_p2p_key_generate(&k, PL_P2P_KEY_ED25519), PL_OK);
    pl__p2p_pubkey pk;
    pl__p2p_key_public(k, &pk);
    uint8_t kp[PL__P2P_PUBKEY_PROTO_MAX];
    size_t kl = pl__p2p_pubkey_encode(&pk, kp);

    /* Unsigned: only the key. */
    uint8_t buf[512];
    size_t n = 0;
    buf[n++] = 0x0a;
    buf[n++] = (uint8_t)kl;
    memcpy(buf + n, kp, kl);
    n += kl;
    assert_int_equal(msg2_with_payload(buf, n), PL_ERR_P2P_NOISE);
    /* Empty payload. */
    assert_int_equal(msg2_with_payload(buf, 0), PL_ERR_P2P_NOISE);
    /* Signed by the key, but over a static key that is not the one used. */
    uint8_t wrong_static[32];
    pl_random(wrong_static, 32);
    uint8_t *p = NULL;
    size_t pl = 0;
    assert_int_equal(pl__nxx_payload_build(k, wrong_static, &p, &pl), PL_OK);
    assert_int_equal(msg2_with_payload(p, pl), PL_ERR_BAD_SIGNATURE);
    /* A signature of garbage bytes. */
    p[pl - 1] ^= 0x55;
    assert_int_equal(msg2_with_payload(p, pl), PL_ERR_BAD_SIGNATURE);
    free(p);
    /* An RSA key (not supported) with some signature. */
    static const uint8_t rsa[] = {0x0a, 0x06, 0x08, 0x00, 0x12, 0x02, 0xaa, 0xbb, 0x12, 0x01, 0x01};
    assert_int_equal(msg2_with_payload(rsa, sizeof rsa), PL_ERR_P2P_KEY);
    /* Not a protobuf at all. */
    assert_int_equal(msg2_with_payload((const uint8_t *)"\xff\xff\xff\xff", 4), PL_ERR_P2P_PROTOBUF);
    pl_p2p_key_free(k);
}

static void test_extensions_ignored(void **state) {
    (void)state;
    pair p;
    pair_new(&p, PL_P2P_KEY_ED25519, PL_P2P_KEY_ED25519, NULL);
    /* The responder's payload gains a NoiseExtensions{stream_muxers} field,
     * as js-libp2p sends it. */
    uint8_t *buf = malloc(p.r.id.payload_len + 32);
    memcpy(buf, p.r.id.payload, p.r.id.payload_len);
    static const uint8_t ext[] = {0x22, 0x0e, 0x12, 0x0c, '/', 'y', 'a', 'm', 'u',
                                  'x', '/', '1', '.', '0', '.', '0'};
    memcpy(buf + p.r.id.payload_len, ext, sizeof ext);
    free(p.r.id.payload);
    p.r.id.payload = buf;
    p.r.id.payload_len += sizeof ext;
    assert_int_equal(step(p.i.n, p.r.n, NULL), PL_OK);
    assert_int_equal(step(p.r.n, p.i.n, NULL), PL_OK);
    assert_int_equal(step(p.i.n, p.r.n, NULL), PL_OK);
    assert_int_equal(pl__nxx_action_of(p.i.n), PL__NXX_DONE);
    pair_free(&p);
}

static void test_transport_limits(void **state) {
    (void)state;
    pair p;
    pair_new(&p, PL_P2P_KEY_ED25519, PL_P2P_KEY_ED25519, NULL);
    uint8_t out[256];
    assert_int_equal(pl__nxx_encrypt(p.i.n, out, 1, out), PL_ERR_NOISE_STATE);
    assert_int_equal(step(p.i.n, p.r.n, NULL), PL_OK);
    assert_int_equal(step(p.r.n, p.i.n, NULL), PL_OK);
    assert_int_equal(step(p.i.n, p.r.n, NULL), PL_OK);

    /* A full frame: 65519 plaintext bytes make 65535 on the wire. */
    uint8_t *big = calloc(1, PL__NXX_MAX_FRAME + 2);
    uint8_t *plain = malloc(PL__NXX_MAX_FRAME);
    assert_int_equal(pl__nxx_encrypt(p.i.n, big + 2, PL__NXX_MAX_PLAIN, big), PL_OK);
    assert_int_equal((size_t)big[0] << 8 | big[1], PL__NXX_MAX_FRAME);
    size_t pl = 0;
    assert_int_equal(pl__nxx_decrypt(p.r.n, big + 2, PL__NXX_MAX_FRAME, plain, &pl), PL_OK);
    assert_int_equal(pl, PL__NXX_MAX_PLAIN);
    /* A replayed frame does not decrypt (the nonce moved on). */
    assert_int_equal(pl__nxx_decrypt(p.r.n, big + 2, PL__NXX_MAX_FRAME, plain, &pl),
                     PL_ERR_DECRYPT);
    assert_int_equal(pl, 0);
    assert_int_equal(pl__nxx_decrypt(p.r.n, big, 15, plain, &pl), PL_ERR_P2P_FRAME);
    free(big);
    free(plain);

    /* The end of the nonce space: 2^64 - 2 is the last nonce used. */
    pl__nxx_test_set_nonces(p.i.n, UINT64_MAX - 1, 0);
    pl__nxx_test_set_nonces(p.r.n, 0, UINT64_MAX - 1);
    assert_int_equal(pl__nxx_encrypt(p.i.n, (const uint8_t *)"last", 4, out), PL_OK);
    uint8_t pt[32];
    assert_int_equal(pl__nxx_decrypt(p.r.n, out + 2, 20, pt, &pl), PL_OK);
    assert_int_equal(pl__nxx_encrypt(p.i.n, (const uint8_t *)"more", 4, out), PL_ERR_NOISE_NONCE);
    assert_int_equal(pl__nxx_decrypt(p.r.n, out + 2, 20, pt, &pl), PL_ERR_NOISE_NONCE);
    pair_free(&p);
}

static void test_framer(void **state) {
    (void)state;
    pl__nxx_framer f = {0};
    /* Two frames and half a third, fed in every split. */
    uint8_t in[3 + 5 + 2 + 2];
    memcpy(in, "\x00\x01" "A" "\x00\x03" "BCD" "\x00\x02" "E", 11);
    for (size_t cut = 0; cut <= 11; cut++) {
        memset(&f, 0, sizeof f);
        char got[16] = {0};
        size_t ng = 0;
        const uint8_t *parts[2] = {in, in + cut};
        size_t lens[2] = {cut, 11 - cut};
        for (int k = 0; k < 2; k++) {
            size_t off = 0;
            while (off < lens[k]) {
                size_t used = 0, fl = 0;
                const uint8_t *fr = NULL;
                assert_int_equal(pl__nxx_framer_feed(&f, parts[k] + off, lens[k] - off, &used, &fr, &fl),
                                 PL_OK);
                assert_true(used > 0);
                off += used;
                if (fr) {
                    memcpy(got + ng, fr, fl);
                    ng += fl;
                    got[ng++] = '|';
                }
            }
        }
        assert_string_equal(got, "A|BCD|");
        assert_int_equal(f.need, 2);
        pl__nxx_framer_free(&f);
    }
    /* A zero-length frame is malformed. */
    size_t used = 0, fl = 0;
    const uint8_t *fr = NULL;
    assert_int_equal(pl__nxx_framer_feed(&f, (const uint8_t *)"\x00\x00", 2, &used, &fr, &fl),
                     PL_ERR_P2P_FRAME);
    pl__nxx_framer_free(&f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signature_vector),
        cmocka_unit_test(test_known_transcript_ed25519),
        cmocka_unit_test(test_known_transcript_secp256k1_high_s),
        cmocka_unit_test(test_live_handshakes),
        cmocka_unit_test(test_tampered_messages),
        cmocka_unit_test(test_peer_mismatch),
        cmocka_unit_test(test_bad_payloads),
        cmocka_unit_test(test_extensions_ignored),
        cmocka_unit_test(test_transport_limits),
        cmocka_unit_test(test_framer),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
