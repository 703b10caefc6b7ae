/* SPDX-License-Identifier: Apache-2.0 */
/* libp2p layer 1: identity keys, signatures, peer ids, multiaddrs, key
 * files. Vectors: ../shared/vectors/waku-message.json (libp2p). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "p2p/key.h"
#include "p2p/multiaddr.h"
#include "pairlink/codec.h"
#include "pairlink/hash.h"
#include "pairlink/p2p.h"
#include "support/support.h"

static json_t *vec;

static int setup(void **state) {
    (void)state;
    assert_int_equal(pl_init(), PL_OK);
    vec = pl_test_vectors("waku-message.json");
    return 0;
}

static int teardown(void **state) {
    (void)state;
    json_decref(vec);
    return 0;
}

static void peer_text(const pl_p2p_peer_id *id, char out[PL_P2P_PEER_ID_TEXT_SIZE]) {
    assert_int_equal(pl_p2p_peer_id_format(out, id), PL_OK);
}

/* ---- keys and peer ids ------------------------------------------------- */

static void test_ed25519_vector(void **state) {
    (void)state;
    uint8_t seed[32];
    pl_test_hex(vec, "libp2p.ed25519_peer.private_seed", seed, 32);
    pl_p2p_key *k = NULL;
    assert_int_equal(pl_p2p_key_from_secret(&k, PL_P2P_KEY_ED25519, seed), PL_OK);
    assert_int_equal(pl_p2p_key_type_of(k), PL_P2P_KEY_ED25519);

    size_t want_len = 0;
    uint8_t *want =
        pl_test_unhex(pl_test_str(vec, "libp2p.ed25519_peer.public_key_proto"), &want_len);
    pl__p2p_pubkey pk;
    pl__p2p_key_public(k, &pk);
    uint8_t proto[PL__P2P_PUBKEY_PROTO_MAX];
    size_t n = pl__p2p_pubkey_encode(&pk, proto);
    assert_int_equal(n, want_len);
    assert_memory_equal(proto, want, n);

    pl_p2p_peer_id id;
    pl_p2p_key_peer_id(k, &id);
    char text[PL_P2P_PEER_ID_TEXT_SIZE];
    peer_text(&id, text);
    assert_string_equal(text, pl_test_str(vec, "libp2p.ed25519_peer.peer_id"));

    /* Decoding the marshalled key gives the same key back. */
    pl__p2p_pubkey back;
    assert_int_equal(pl__p2p_pubkey_decode(&back, want, want_len), PL_OK);
    assert_int_equal(back.type, PL_P2P_KEY_ED25519);
    assert_memory_equal(back.data, pk.data, 32);
    free(want);
    pl_p2p_key_free(k);
}

static void test_secp256k1_vector(void **state) {
    (void)state;
    size_t len = 0;
    uint8_t *proto =
        pl_test_unhex(pl_test_str(vec, "libp2p.secp256k1_peer.public_key_proto"), &len);
    pl__p2p_pubkey pk;
    assert_int_equal(pl__p2p_pubkey_decode(&pk, proto, len), PL_OK);
    assert_int_equal(pk.type, PL_P2P_KEY_SECP256K1);
    assert_int_equal(pk.len, 33);
    pl_p2p_peer_id id;
    pl__p2p_peer_id_from_proto(&id, proto, len);
    char text[PL_P2P_PEER_ID_TEXT_SIZE];
    peer_text(&id, text);
    assert_string_equal(text, pl_test_str(vec, "libp2p.secp256k1_peer.peer_id"));

    pl_p2p_peer_id parsed;
    assert_int_equal(pl_p2p_peer_id_parse(&parsed, text, strlen(text)), PL_OK);
    assert_true(pl_p2p_peer_id_equal(&parsed, &id));
    free(proto);
}

static void test_noise_signature_vector(void **state) {
    (void)state;
    uint8_t seed[32], spub[32], sig_want[64];
    pl_test_hex(vec, "libp2p.ed25519_peer.private_seed", seed, 32);
    pl_test_hex(vec, "libp2p.noise_handshake_signature.static_pub", spub, 32);
    pl_test_hex(vec, "libp2p.noise_handshake_signature.signature", sig_want, 64);
    pl_p2p_key *k = NULL;
    assert_int_equal(pl_p2p_key_from_secret(&k, PL_P2P_KEY_ED25519, seed), PL_OK);
    uint8_t msg[24 + 32];
    memcpy(msg, "noise-libp2p-static-key:", 24);
    memcpy(msg + 24, spub, 32);
    uint8_t sig[PL__P2P_SIG_MAX];
    size_t sl = 0;
    pl__p2p_sign(k, msg, sizeof msg, sig, &sl);
    assert_int_equal(sl, 64);
    assert_memory_equal(sig, sig_want, 64);
    pl__p2p_pubkey pk;
    pl__p2p_key_public(k, &pk);
    assert_int_equal(pl__p2p_verify(&pk, msg, sizeof msg, sig, sl), PL_OK);
    sig[10] ^= 1;
    assert_int_equal(pl__p2p_verify(&pk, msg, sizeof msg, sig, sl), PL_ERR_BAD_SIGNATURE);
    pl_p2p_key_free(k);
}

/* The secp256k1 group order n, big-endian. */
static const uint8_t secp_n[32] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                   0xff, 0xff, 0xff, 0xff, 0xfe, 0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48,
                                   0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41};

/* Rewrite a DER signature's s as n - s (its high-S twin). Only for the
 * short form every libsecp256k1 signature has. */
static size_t der_high_s(const uint8_t *der, size_t len, uint8_t *out) {
    assert_true(der[0] == 0x30 && der[2] == 0x02);
    size_t rlen = der[3];
    const uint8_t *r = der + 4;
    assert_int_equal(der[4 + rlen], 0x02);
    size_t slen = der[5 + rlen];
    const uint8_t *s = der + 6 + rlen;
    assert_int_equal(6 + rlen + slen, len);
    uint8_t sv[32] = {0}, hs[32];
    memcpy(sv + 32 - (slen > 32 ? 32 : slen), s + (slen > 32 ? slen - 32 : 0),
           slen > 32 ? 32 : slen);
    int borrow = 0;
    for (int i = 31; i >= 0; i--) {
        int d = secp_n[i] - sv[i] - borrow;
        borrow = d < 0;
        hs[i] = (uint8_t)(d + (borrow ? 256 : 0));
    }
    /* DER integer: minimal, with a 0x00 pad when the top bit is set. */
    uint8_t sint[33];
    size_t sn = 0;
    size_t first = 0;
    while (first < 31 && hs[first] == 0)
        first++;
    if (hs[first] & 0x80) sint[sn++] = 0;
    memcpy(sint + sn, hs + first, 32 - first);
    sn += 32 - first;
    size_t o = 0;
    out[o++] = 0x30;
    out[o++] = (uint8_t)(4 + rlen + sn);
    out[o++] = 0x02;
    out[o++] = (uint8_t)rlen;
    memcpy(out + o, r, rlen);
    o += rlen;
    out[o++] = 0x02;
    out[o++] = (uint8_t)sn;
    memcpy(out + o, sint, sn);
    return o + sn;
}

static void test_secp256k1_sign_verify(void **state) {
    (void)state;
    pl_p2p_key *k = NULL;
    assert_int_equal(pl_p2p_key_generate(&k, PL_P2P_KEY_SECP256K1), PL_OK);
    pl__p2p_pubkey pk;
    pl__p2p_key_public(k, &pk);
    assert_int_equal(pk.len, 33);
    assert_true(pk.data[0] == 2 || pk.data[0] == 3);
    static const uint8_t msg[] = "noise-libp2p-static-key:0123456789abcdef0123456789abcdef";
    uint8_t sig[PL__P2P_SIG_MAX];
    size_t sl = 0;
    pl__p2p_sign(k, msg, sizeof msg, sig, &sl);
    assert_true(sl >= 8 && sl <= 72);
    assert_int_equal(pl__p2p_verify(&pk, msg, sizeof msg, sig, sl), PL_OK);
    assert_int_equal(pl__p2p_verify(&pk, msg, sizeof msg - 1, sig, sl), PL_ERR_BAD_SIGNATURE);

    /* A high-S signature (what some implementations send) verifies too. */
    uint8_t high[80];
    size_t hl = der_high_s(sig, sl, high);
    assert_memory_not_equal(high, sig, hl < sl ? hl : sl);
    assert_int_equal(pl__p2p_verify(&pk, msg, sizeof msg, high, hl), PL_OK);
    /* Garbage DER and oversized signatures fail cleanly. */
    high[0] = 0x31;
    assert_int_equal(pl__p2p_verify(&pk, msg, sizeof msg, high, hl), PL_ERR_BAD_SIGNATURE);
    uint8_t big[200] = {0};
    assert_int_equal(pl__p2p_verify(&pk, msg, sizeof msg, big, sizeof big), PL_ERR_BAD_SIGNATURE);
    assert_int_equal(pl__p2p_verify(&pk, msg, sizeof msg, big, 0), PL_ERR_BAD_SIGNATURE);

    /* Marshal round trip; peer id is 16Uiu2... */
    uint8_t *pb = NULL;
    size_t pbl = 0;
    assert_int_equal(pl_p2p_key_marshal(k, &pb, &pbl), PL_OK);
    assert_int_equal(pbl, 36);
    pl_p2p_key *k2 = NULL;
    assert_int_equal(pl_p2p_key_unmarshal(&k2, pb, pbl), PL_OK);
    pl_p2p_peer_id a, b;
    pl_p2p_key_peer_id(k, &a);
    pl_p2p_key_peer_id(k2, &b);
    assert_true(pl_p2p_peer_id_equal(&a, &b));
    char text[PL_P2P_PEER_ID_TEXT_SIZE];
    peer_text(&a, text);
    assert_int_equal(strncmp(text, "16Uiu2", 6), 0);
    pl_free_secret(pb, pbl);
    pl_p2p_key_free(k);
    pl_p2p_key_free(k2);

    /* Secrets outside [1, n-1] are refused. */
    uint8_t zero[32] = {0};
    assert_int_equal(pl_p2p_key_from_secret(&k, PL_P2P_KEY_SECP256K1, zero), PL_ERR_P2P_KEY);
    assert_null(k);
    assert_int_equal(pl_p2p_key_from_secret(&k, PL_P2P_KEY_SECP256K1, secp_n), PL_ERR_P2P_KEY);
}

static void test_private_key_marshal(void **state) {
    (void)state;
    uint8_t seed[32];
    pl_test_hex(vec, "libp2p.ed25519_peer.private_seed", seed, 32);
    pl_p2p_key *k = NULL;
    assert_int_equal(pl_p2p_key_from_secret(&k, PL_P2P_KEY_ED25519, seed), PL_OK);
    uint8_t *pb = NULL;
    size_t n = 0;
    assert_int_equal(pl_p2p_key_marshal(k, &pb, &n), PL_OK);
    /* 08 01 12 40 | seed | pub: libp2p's marshalled Ed25519 private key. */
    assert_int_equal(n, 68);
    assert_memory_equal(pb, "\x08\x01\x12\x40", 4);
    assert_memory_equal(pb + 4, seed, 32);
    pl_p2p_key *back = NULL;
    assert_int_equal(pl_p2p_key_unmarshal(&back, pb, n), PL_OK);
    /* A public half that does not belong to the seed is refused. */
    pb[n - 1] ^= 1;
    pl_p2p_key *bad = (pl_p2p_key *)1;
    assert_int_equal(pl_p2p_key_unmarshal(&bad, pb, n), PL_ERR_P2P_KEY);
    assert_null(bad);
    assert_int_equal(pl_p2p_key_unmarshal(&bad, pb, 10), PL_ERR_P2P_PROTOBUF);
    /* RSA and a 32-byte Ed25519 Data are not keys we take. */
    static const uint8_t rsa[] = {0x08, 0x00, 0x12, 0x02, 0xaa, 0xbb};
    assert_int_equal(pl_p2p_key_unmarshal(&bad, rsa, sizeof rsa), PL_ERR_P2P_KEY);
    pl_free_secret(pb, n);
    pl_p2p_key_free(k);
    pl_p2p_key_free(back);
}

static void test_pubkey_decode_rejects(void **state) {
    (void)state;
    pl__p2p_pubkey pk;
    size_t len = 0;
    uint8_t *ok = pl_test_unhex(pl_test_str(vec, "libp2p.ed25519_peer.public_key_proto"), &len);
    /* Fields in the other order: the same key, another peer id; refused. */
    uint8_t swapped[64];
    memcpy(swapped, ok + 2, len - 2);
    memcpy(swapped + len - 2, ok, 2);
    assert_int_equal(pl__p2p_pubkey_decode(&pk, swapped, len), PL_ERR_P2P_KEY);
    /* A trailing unknown field: refused (not canonical). */
    uint8_t extra[64];
    memcpy(extra, ok, len);
    extra[len] = 0x18, extra[len + 1] = 0x01;
    assert_int_equal(pl__p2p_pubkey_decode(&pk, extra, len + 2), PL_ERR_P2P_KEY);
    /* Wrong sizes and types. */
    uint8_t short_key[64];
    memcpy(short_key, ok, len);
    short_key[3] = 31;
    assert_int_equal(pl__p2p_pubkey_decode(&pk, short_key, len - 1), PL_ERR_P2P_KEY);
    short_key[1] = 3; /* ECDSA */
    short_key[3] = 32;
    assert_int_equal(pl__p2p_pubkey_decode(&pk, short_key, len), PL_ERR_P2P_KEY);
    assert_int_equal(pl__p2p_pubkey_decode(&pk, ok, 5), PL_ERR_P2P_PROTOBUF);
    assert_int_equal(pl__p2p_pubkey_decode(&pk, NULL, 0), PL_ERR_P2P_PROTOBUF);
    /* secp256k1: a 33-byte string that is not a point. */
    uint8_t notpoint[37] = {0x08, 0x02, 0x12, 0x21, 0x02};
    memset(notpoint + 5, 0xff, 32);
    assert_int_equal(pl__p2p_pubkey_decode(&pk, notpoint, sizeof notpoint), PL_ERR_P2P_KEY);
    free(ok);
}

static void test_peer_id_text(void **state) {
    (void)state;
    pl_p2p_peer_id id;
    const char *ed = pl_test_str(vec, "libp2p.ed25519_peer.peer_id");
    assert_int_equal(pl_p2p_peer_id_parse(&id, ed, strlen(ed)), PL_OK);
    assert_int_equal(id.len, 38);
    assert_int_equal(id.bytes[0], 0x00);
    assert_int_equal(id.bytes[1], 36);

    /* The CIDv1 form of the same ids, computed with Python's base32, and
     * the example of libp2p/specs peer-ids (a sha256 multihash id). */
    pl_p2p_peer_id c;
    const char *cid = "bafzaajaiaejcahwr5d5ofrfbis4l5d6uwr57hu5tjodrypfm6yaq6dsc2r2pzyt6";
    assert_int_equal(pl_p2p_peer_id_parse(&c, cid, strlen(cid)), PL_OK);
    assert_true(pl_p2p_peer_id_equal(&c, &id));
    const char *qm = "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N";
    const char *qmcid = "bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe";
    pl_p2p_peer_id q1, q2;
    assert_int_equal(pl_p2p_peer_id_parse(&q1, qm, strlen(qm)), PL_OK);
    assert_int_equal(pl_p2p_peer_id_parse(&q2, qmcid, strlen(qmcid)), PL_OK);
    assert_true(pl_p2p_peer_id_equal(&q1, &q2));
    assert_int_equal(q1.len, 34);
    char text[PL_P2P_PEER_ID_TEXT_SIZE];
    peer_text(&q2, text);
    assert_string_equal(text, qm);

    static const char *const bad[] = {
        "",
        "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3p",         /* one char short */
        "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pqq",       /* one more */
        "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3p0",        /* '0' not base58 */
        "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5",               /* short digest */
        "bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqx",  /* cut */
        "bafybeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe", /* dag-pb, not libp2p-key */
        "BAFZBEIE5745RPV2M6TJYUUGYWY4D5EWRQGQQHFNF445HE3OMZPJBX5XQXE", /* upper case */
        "1111",
    };
    for (size_t i = 0; i < PL_ARRAY_LEN(bad); i++) {
        id.len = 7;
        assert_int_equal(pl_p2p_peer_id_parse(&id, bad[i], strlen(bad[i])), PL_ERR_P2P_PEER_ID);
        assert_int_equal(id.len, 0);
    }
    char long_text[300];
    memset(long_text, 'z', sizeof long_text);
    assert_int_equal(pl_p2p_peer_id_parse(&id, long_text, sizeof long_text), PL_ERR_P2P_PEER_ID);
    pl_p2p_peer_id empty = {0};
    assert_int_equal(pl_p2p_peer_id_format(text, &empty), PL_ERR_P2P_PEER_ID);
    assert_string_equal(text, "");
}

/* ---- multiaddrs ------------------------------------------------------------ */

static void ma_roundtrip(const char *text, const char *hex, const char *canon) {
    pl__ma ma;
    assert_int_equal(pl__ma_parse(&ma, text, strlen(text)), PL_OK);
    size_t n = 0;
    uint8_t *want = pl_test_unhex(hex, &n);
    assert_int_equal(ma.len, n);
    assert_memory_equal(ma.b, want, n);
    char out[PL__MA_TEXT_MAX + 1];
    assert_int_equal(pl__ma_format(out, sizeof out, ma.b, ma.len), PL_OK);
    assert_string_equal(out, canon ? canon : text);
    assert_int_equal(pl__ma_check(ma.b, ma.len), PL_OK);
    free(want);
}

static void test_multiaddr_codec(void **state) {
    (void)state;
    /* Byte forms from multiformats/multiaddr (protocols.csv codes). */
    ma_roundtrip("/ip4/127.0.0.1/tcp/4001", "047f000001060fa1", NULL);
    ma_roundtrip("/ip6/::1/tcp/8080", "2900000000000000000000000000000001061f90", NULL);
    ma_roundtrip("/ip6/2001:DB8::1/tcp/1", "2920010db8000000000000000000000001060001",
                 "/ip6/2001:db8::1/tcp/1");
    ma_roundtrip("/dns4/example.com/tcp/443/wss", "360b6578616d706c652e636f6d0601bbde03", NULL);
    ma_roundtrip("/dns/node-01.status.im/tcp/30303/ws",
                 "35116e6f64652d30312e7374617475732e696d06765fdd03", NULL);
    ma_roundtrip("/dns6/a.b/tcp/0/", "3703612e62060000", "/dns6/a.b/tcp/0");
    ma_roundtrip("/ip4/1.2.3.4/udp/53/quic-v1",
                 "04010203049102"
                 "0035cd03",
                 NULL);
    const char *ed = pl_test_str(vec, "libp2p.ed25519_peer.peer_id");
    char text[256], hex[512];
    snprintf(text, sizeof text, "/ip4/10.0.0.1/tcp/60000/p2p/%s", ed);
    pl_p2p_peer_id id;
    assert_int_equal(pl_p2p_peer_id_parse(&id, ed, strlen(ed)), PL_OK);
    char idhex[PL_HEX_SIZE(PL_P2P_PEER_ID_MAX)];
    assert_int_equal(pl_hex_encode(idhex, sizeof idhex, id.bytes, id.len), PL_OK);
    snprintf(hex, sizeof hex,
             "040a000001"
             "06ea60"
             "a503%02x%s",
             id.len, idhex);
    ma_roundtrip(text, hex, NULL);
    /* /ipfs/ is read as /p2p/. */
    char old[256];
    snprintf(old, sizeof old, "/ip4/10.0.0.1/tcp/60000/ipfs/%s", ed);
    ma_roundtrip(old, hex, text);
}

static void test_multiaddr_rejects(void **state) {
    (void)state;
    static const char *const bad[] = {
        "",
        "/",
        "ip4/1.2.3.4",
        "/ip4",
        "/ip4/1.2.3",
        "/ip4/1.2.3.256",
        "/ip4/01.2.3.4",
        "/ip4/1.2.3.4/tcp",
        "/ip4/1.2.3.4/tcp/65536",
        "/ip4/1.2.3.4/tcp/-1",
        "/ip4/1.2.3.4/tcp/08",
        "/ip4/1.2.3.4/tcp/1x",
        "/ip4/1.2.3.4//tcp/1",
        "/ip6/1.2.3.4",
        "/ip6/::1%eth0",
        "/dns4/a b/tcp/1",
        "/dns4//tcp/1",
        "/unknown/1",
        "/ip4/1.2.3.4/tcp/1/p2p/notapeer",
        "/ip4/1.2.3.4/tcp/1/p2p",
        "/tcp/123456",
    };
    pl__ma ma;
    for (size_t i = 0; i < PL_ARRAY_LEN(bad); i++) {
        pl_err e = pl__ma_parse(&ma, bad[i], strlen(bad[i]));
        if (e != PL_ERR_P2P_MULTIADDR && e != PL_ERR_P2P_PEER_ID) fail_msg("accepted %s", bad[i]);
        assert_int_equal(ma.len, 0);
    }
    char huge[PL__MA_TEXT_MAX + 10];
    memset(huge, 'a', sizeof huge);
    memcpy(huge, "/dns/", 5);
    assert_int_equal(pl__ma_parse(&ma, huge, sizeof huge), PL_ERR_P2P_MULTIADDR);

    /* Binary: truncated values, unknown codes, bad varints, empty. */
    static const char *const badbin[] = {
        "",
        "04",
        "047f0000",
        "047f00000106",
        "060fa1ff",
        "ff",
        "8080808080808080808080",
        "3500",
        "35056162",
        "a50300",
        "a5032200",
        "3502612f",
        "0200",
    };
    for (size_t i = 0; i < PL_ARRAY_LEN(badbin); i++) {
        size_t n = 0;
        uint8_t *b = pl_test_unhex(badbin[i], &n);
        char out[64] = "x";
        if (pl__ma_check(b, n) != PL_ERR_P2P_MULTIADDR) fail_msg("accepted binary %s", badbin[i]);
        assert_int_equal(pl__ma_format(out, sizeof out, b, n), PL_ERR_P2P_MULTIADDR);
        assert_string_equal(out, "");
        free(b);
    }
    /* Too small an output buffer. */
    assert_int_equal(pl__ma_parse(&ma, "/ip4/127.0.0.1/tcp/4001", 23), PL_OK);
    char small[10];
    assert_int_equal(pl__ma_format(small, sizeof small, ma.b, ma.len), PL_ERR_BUFFER_TOO_SMALL);
}

static void test_multiaddr_dial_target(void **state) {
    (void)state;
    pl__ma ma;
    pl__ma_dial d;
    const char *ed = pl_test_str(vec, "libp2p.ed25519_peer.peer_id");
    char text[256];
    snprintf(text, sizeof text, "/dns4/localhost/tcp/9000/p2p/%s", ed);
    assert_int_equal(pl__ma_parse(&ma, text, strlen(text)), PL_OK);
    assert_int_equal(pl__ma_dial_target(&d, ma.b, ma.len), PL_OK);
    assert_int_equal(d.kind, PL__MA_HOST_DNS4);
    assert_string_equal(d.host, "localhost");
    assert_int_equal(d.port, 9000);
    char pt[PL_P2P_PEER_ID_TEXT_SIZE];
    peer_text(&d.peer, pt);
    assert_string_equal(pt, ed);

    assert_int_equal(pl__ma_parse(&ma, "/ip6/::1/tcp/1", 14), PL_OK);
    assert_int_equal(pl__ma_dial_target(&d, ma.b, ma.len), PL_OK);
    assert_int_equal(d.kind, PL__MA_HOST_IP6);
    assert_string_equal(d.host, "::1");
    assert_int_equal(d.peer.len, 0);

    static const char *const transport[] = {"/ip4/1.2.3.4/tcp/1/ws", "/dns4/a.b/tcp/443/wss",
                                            "/ip4/1.2.3.4/udp/1/quic-v1",
                                            "/ip4/1.2.3.4/tcp/1/tls/ws"};
    for (size_t i = 0; i < PL_ARRAY_LEN(transport); i++) {
        assert_int_equal(pl__ma_parse(&ma, transport[i], strlen(transport[i])), PL_OK);
        assert_int_equal(pl__ma_dial_target(&d, ma.b, ma.len), PL_ERR_P2P_TRANSPORT);
    }
    static const char *const other[] = {"/ip4/1.2.3.4", "/tcp/1", "/dnsaddr/a.b",
                                        "/ip4/1.2.3.4/tcp/1/tcp/2"};
    for (size_t i = 0; i < PL_ARRAY_LEN(other); i++) {
        assert_int_equal(pl__ma_parse(&ma, other[i], strlen(other[i])), PL_OK);
        assert_int_equal(pl__ma_dial_target(&d, ma.b, ma.len), PL_ERR_P2P_MULTIADDR);
    }
    uint8_t ip[4] = {127, 0, 0, 1};
    pl__ma_from_ip_port(&ma, ip, 4, 4001);
    char out[64];
    assert_int_equal(pl__ma_format(out, sizeof out, ma.b, ma.len), PL_OK);
    assert_string_equal(out, "/ip4/127.0.0.1/tcp/4001");
}

/* ---- key files ------------------------------------------------------------- */

static void test_key_file(void **state) {
    (void)state;
    char dir[] = "/tmp/pl_p2p_keyXXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/p2p.key", dir);

    pl_p2p_key *k = NULL, *k2 = NULL;
    bool created = false;
    assert_int_equal(pl_p2p_key_load_or_create(path, PL_P2P_KEY_ED25519, &k, &created), PL_OK);
    assert_true(created);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 68);
    /* Second use: the same key, even when asked for another type. */
    assert_int_equal(pl_p2p_key_load_or_create(path, PL_P2P_KEY_SECP256K1, &k2, &created), PL_OK);
    assert_false(created);
    pl_p2p_peer_id a, b;
    pl_p2p_key_peer_id(k, &a);
    pl_p2p_key_peer_id(k2, &b);
    assert_true(pl_p2p_peer_id_equal(&a, &b));
    pl_p2p_key_free(k2);
    k2 = NULL;
    assert_int_equal(pl_p2p_key_save(path, k), PL_ERR_EXISTS);

    /* Unsafe permissions are refused. */
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(pl_p2p_key_load_or_create(path, PL_P2P_KEY_ED25519, &k2, NULL),
                     PL_ERR_KEY_FILE);
    assert_null(k2);
    assert_int_equal(chmod(path, 0600), 0);
    /* Garbage content. */
    FILE *f = fopen(path, "wb");
    fwrite("garbage!", 1, 8, f);
    fclose(f);
    assert_int_equal(pl_p2p_key_load_or_create(path, PL_P2P_KEY_ED25519, &k2, NULL),
                     PL_ERR_P2P_PROTOBUF);
    unlink(path);

    /* An imported nwaku-style secp256k1 key. */
    uint8_t secret[32];
    for (int i = 0; i < 32; i++)
        secret[i] = (uint8_t)(i + 1);
    pl_p2p_key *s = NULL;
    assert_int_equal(pl_p2p_key_from_secret(&s, PL_P2P_KEY_SECP256K1, secret), PL_OK);
    assert_int_equal(pl_p2p_key_save(path, s), PL_OK);
    assert_int_equal(pl_p2p_key_load_or_create(path, PL_P2P_KEY_ED25519, &k2, &created), PL_OK);
    assert_false(created);
    assert_int_equal(pl_p2p_key_type_of(k2), PL_P2P_KEY_SECP256K1);
    pl_p2p_key_peer_id(s, &a);
    pl_p2p_key_peer_id(k2, &b);
    assert_true(pl_p2p_peer_id_equal(&a, &b));
    unlink(path);
    rmdir(dir);
    pl_p2p_key_free(k);
    pl_p2p_key_free(k2);
    pl_p2p_key_free(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ed25519_vector),
        cmocka_unit_test(test_secp256k1_vector),
        cmocka_unit_test(test_noise_signature_vector),
        cmocka_unit_test(test_secp256k1_sign_verify),
        cmocka_unit_test(test_private_key_marshal),
        cmocka_unit_test(test_pubkey_decode_rejects),
        cmocka_unit_test(test_peer_id_text),
        cmocka_unit_test(test_multiaddr_codec),
        cmocka_unit_test(test_multiaddr_rejects),
        cmocka_unit_test(test_multiaddr_dial_target),
        cmocka_unit_test(test_key_file),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
