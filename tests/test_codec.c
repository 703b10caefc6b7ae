/* SPDX-License-Identifier: Apache-2.0 */
/* hex, base64, base58btc and uvarint codecs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pairlink/codec.h"
#include "core/internal.h"
#include "support/support.h"

/* ---- hex ---- */

static void test_hex_roundtrip(void **state) {
    (void)state;
    const uint8_t bin[] = {0x00, 0x01, 0xab, 0xcd, 0xef, 0xff};
    char hex[PL_HEX_SIZE(sizeof bin)];
    assert_int_equal(pl_hex_encode(hex, sizeof hex, bin, sizeof bin), PL_OK);
    assert_string_equal(hex, "0001abcdefff");

    uint8_t out[8];
    size_t n = 99;
    assert_int_equal(pl_hex_decode(out, sizeof out, &n, "0001ABCDEFff", 12), PL_OK);
    assert_int_equal(n, sizeof bin);
    assert_memory_equal(out, bin, sizeof bin);

    assert_int_equal(pl_hex_decode(out, sizeof out, &n, "", 0), PL_OK);
    assert_int_equal(n, 0);
    assert_int_equal(pl_hex_encode(hex, 1, NULL, 0), PL_OK);
    assert_string_equal(hex, "");
}

static void test_hex_rejects(void **state) {
    (void)state;
    uint8_t out[8];
    size_t n;
    static const char *const bad[] = {
        "0",     /* odd */
        "abc",   /* odd */
        "0g",    /* non-hex */
        " 00",   /* leading space (ignore set is NULL) */
        "00 ",   /* trailing space */
        "00:11", /* separator */
        "0x00",  /* prefix */
        "zz",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        n = 77;
        assert_int_equal(pl_hex_decode(out, sizeof out, &n, bad[i], strlen(bad[i])), PL_ERR_BAD_HEX);
        assert_int_equal(n, 0);
    }
    /* Embedded NUL inside the counted length. */
    n = 77;
    assert_int_equal(pl_hex_decode(out, sizeof out, &n, "00\0001", 4), PL_ERR_BAD_HEX);
    assert_int_equal(n, 0);
    /* Bad character after a good prefix: the prefix must not survive. */
    memset(out, 0xaa, sizeof out);
    assert_int_equal(pl_hex_decode(out, sizeof out, &n, "1122334x", 8), PL_ERR_BAD_HEX);
    for (size_t i = 0; i < 4; i++) assert_int_equal(out[i], 0);
    /* Buffer too small. */
    assert_int_equal(pl_hex_decode(out, 2, &n, "001122", 6), PL_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(n, 0);
    char hex[4];
    const uint8_t two[2] = {1, 2};
    assert_int_equal(pl_hex_encode(hex, sizeof hex, two, 2), PL_ERR_BUFFER_TOO_SMALL);
    assert_string_equal(hex, "");
}

static void test_hex_exact(void **state) {
    (void)state;
    uint8_t key[4];
    assert_int_equal(pl_hex_decode_exact(key, 4, "deadBEEF", 8), PL_OK);
    assert_int_equal(key[0], 0xde);
    assert_int_equal(key[3], 0xef);
    assert_int_equal(pl_hex_decode_exact(key, 4, "deadbe", 6), PL_ERR_BAD_LENGTH);
    assert_int_equal(pl_hex_decode_exact(key, 4, "deadbeef00", 10), PL_ERR_BAD_LENGTH);
    assert_int_equal(pl_hex_decode_exact(key, 4, "deadbeef0", 9), PL_ERR_BAD_HEX);
    memset(key, 0x55, sizeof key);
    assert_int_equal(pl_hex_decode_exact(key, 4, "deadbeeq", 8), PL_ERR_BAD_HEX);
    const uint8_t zero[4] = {0};
    assert_memory_equal(key, zero, 4); /* wiped on failure */
}

/* ---- base64 ---- */

/* RFC 4648 section 10. */
static const char *const rfc4648[][2] = {
    {"", ""},           {"f", "Zg=="},         {"fo", "Zm8="},        {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
};

static void strip_pad(char *dst, const char *src) {
    size_t n = strlen(src);
    while (n && src[n - 1] == '=') n--;
    memcpy(dst, src, n);
    dst[n] = 0;
}

static void test_base64_rfc4648(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof rfc4648 / sizeof rfc4648[0]; i++) {
        const char *plain = rfc4648[i][0];
        size_t plen = strlen(plain);
        char nopad[16];
        strip_pad(nopad, rfc4648[i][1]);
        for (int v = PL_B64_STD; v <= PL_B64_URL_NOPAD; v++) {
            const char *want = (v == PL_B64_STD || v == PL_B64_URL) ? rfc4648[i][1] : nopad;
            char enc[32];
            assert_int_equal(pl_base64_encoded_size(plen, (pl_b64_variant)v), strlen(want) + 1);
            assert_int_equal(pl_base64_encode(enc, sizeof enc, (const uint8_t *)plain, plen,
                                              (pl_b64_variant)v),
                             PL_OK);
            assert_string_equal(enc, want);
            uint8_t dec[16];
            size_t n = 99;
            assert_int_equal(pl_base64_decode(dec, sizeof dec, &n, want, strlen(want),
                                              (pl_b64_variant)v),
                             PL_OK);
            assert_int_equal(n, plen);
            assert_memory_equal(dec, plain, plen);
        }
    }
}

static void test_base64_alphabets(void **state) {
    (void)state;
    const uint8_t bin[] = {0xfb, 0xff, 0xbf};
    char enc[8];
    assert_int_equal(pl_base64_encode(enc, sizeof enc, bin, 3, PL_B64_STD), PL_OK);
    assert_string_equal(enc, "+/+/");
    assert_int_equal(pl_base64_encode(enc, sizeof enc, bin, 3, PL_B64_URL_NOPAD), PL_OK);
    assert_string_equal(enc, "-_-_");
    uint8_t out[4];
    size_t n;
    assert_int_equal(pl_base64_decode(out, 4, &n, "-_-_", 4, PL_B64_STD), PL_ERR_BAD_BASE64);
    assert_int_equal(pl_base64_decode(out, 4, &n, "+/+/", 4, PL_B64_URL), PL_ERR_BAD_BASE64);
    assert_int_equal(pl_base64_decode(out, 4, &n, "-_-_", 4, PL_B64_URL), PL_OK);
    assert_memory_equal(out, bin, 3);
}

static void test_base64_rejects(void **state) {
    (void)state;
    struct {
        const char *in;
        pl_b64_variant v;
    } bad[] = {
        {"Zg", PL_B64_STD},          /* padding missing */
        {"Zg=", PL_B64_STD},         /* padding short */
        {"Zg===", PL_B64_STD},       /* padding long */
        {"Zg==", PL_B64_STD_NOPAD},  /* padding where none is allowed */
        {"Zg==", PL_B64_URL_NOPAD},
        {"Zh==", PL_B64_STD},        /* non-zero trailing bits */
        {"Zm9=", PL_B64_STD},        /* non-zero trailing bits */
        {"Z", PL_B64_STD_NOPAD},     /* a lone sextet */
        {"Zm9vY", PL_B64_STD_NOPAD},
        {"Zg==Zg==", PL_B64_STD},    /* data after padding */
        {"Zm9v\n", PL_B64_STD},      /* whitespace is not ignored */
        {" Zm9v", PL_B64_STD},
        {"Zm 9v", PL_B64_STD},
        {"Zm9v!", PL_B64_STD},
        {"=", PL_B64_STD},
        {"====", PL_B64_STD},
        {"Zm9v\xc3\xa9", PL_B64_STD},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t out[16];
        size_t n = 55;
        pl_err e = pl_base64_decode(out, sizeof out, &n, bad[i].in, strlen(bad[i].in), bad[i].v);
        if (e != PL_ERR_BAD_BASE64) fprintf(stderr, "accepted or misreported: '%s'\n", bad[i].in);
        assert_int_equal(e, PL_ERR_BAD_BASE64);
        assert_int_equal(n, 0);
    }
    uint8_t out[8];
    size_t n = 5;
    assert_int_equal(pl_base64_decode(out, sizeof out, &n, "Zm9v\0Zm9v", 9, PL_B64_STD),
                     PL_ERR_BAD_BASE64);
    assert_int_equal(pl_base64_decode(out, 5, &n, "Zm9vYmFy", 8, PL_B64_STD),
                     PL_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(n, 0);
    assert_int_equal(pl_base64_decode(out, 6, &n, "Zm9vYmFy", 8, PL_B64_STD), PL_OK);
    assert_int_equal(pl_base64_decode(out, 1, &n, "Zg==", 4, PL_B64_STD), PL_OK);
    char enc[8];
    assert_int_equal(pl_base64_encode(enc, 8, (const uint8_t *)"foobar", 6, PL_B64_STD),
                     PL_ERR_BUFFER_TOO_SMALL);
    assert_string_equal(enc, "");
    assert_int_equal(pl_base64_encoded_size(SIZE_MAX, PL_B64_STD), SIZE_MAX);
}

/* ---- base58btc ---- */

/* Bitcoin Core's base58_encode_decode.json cases (checked with the
 * multiformats package's base58btc). */
static const char *const b58_vectors[][2] = {
    {"", ""},
    {"61", "2g"},
    {"626262", "a3gV"},
    {"636363", "aPEr"},
    {"73696d706c792061206c6f6e6720737472696e67", "2cFupjhnEsSn59qHXstmK2ffpLv2"},
    {"00eb15231dfceb60925886b67d065299925915aeb172c06647", "1NS17iag9jJgTHD1VXjvLCEnZuQ3rJDE9L"},
    {"516b6fcd0f", "ABnLTmg"},
    {"bf4f89001e670274dd", "3SEo3LWLoPntC"},
    {"572e4794", "3EFU7m"},
    {"ecac89cad93923c02321", "EJDM8drfXA6uyA"},
    {"10c8511e", "Rt5zm"},
    {"00000000000000000000", "1111111111"},
};

static void check_b58(const uint8_t *bin, size_t len, const char *want) {
    char enc[400];
    assert_int_equal(pl_base58btc_encode(enc, sizeof enc, bin, len), PL_OK);
    assert_string_equal(enc, want);
    uint8_t dec[PL_BASE58_MAX_BYTES];
    size_t n = 999;
    assert_int_equal(pl_base58btc_decode(dec, sizeof dec, &n, want, strlen(want)), PL_OK);
    assert_int_equal(n, len);
    if (len) assert_memory_equal(dec, bin, len);
}

static void test_base58_vectors(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof b58_vectors / sizeof b58_vectors[0]; i++) {
        size_t len;
        uint8_t *bin = pl_test_unhex(b58_vectors[i][0], &len);
        check_b58(bin, len, b58_vectors[i][1]);
        free(bin);
    }
}

/* libp2p peer ids are base58btc of an identity multihash (0x00, length,
 * protobuf PublicKey): the published waku-message.json vectors. */
static void check_peer(json_t *v, const char *proto_path, const char *id_path) {
    size_t len;
    uint8_t *proto = pl_test_unhex(pl_test_str(v, proto_path), &len);
    uint8_t mh[64];
    assert_true(len + 2 <= sizeof mh);
    mh[0] = 0x00;
    mh[1] = (uint8_t)len;
    memcpy(mh + 2, proto, len);
    check_b58(mh, len + 2, pl_test_str(v, id_path));
    free(proto);
}

static void test_base58_peer_ids(void **state) {
    (void)state;
    json_t *v = pl_test_vectors("waku-message.json");
    check_peer(v, "libp2p.ed25519_peer.public_key_proto", "libp2p.ed25519_peer.peer_id");
    check_peer(v, "libp2p.secp256k1_peer.public_key_proto", "libp2p.secp256k1_peer.peer_id");
    json_decref(v);
}

static void test_base58_rejects(void **state) {
    (void)state;
    uint8_t out[PL_BASE58_MAX_BYTES];
    size_t n;
    static const char *const bad[] = {"0", "O", "I", "l", "2g0", "+", " 2g", "2g ", "\xc3\xa9"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        n = 9;
        assert_int_equal(pl_base58btc_decode(out, sizeof out, &n, bad[i], strlen(bad[i])),
                         PL_ERR_BAD_BASE58);
        assert_int_equal(n, 0);
    }
    assert_int_equal(pl_base58btc_decode(out, sizeof out, &n, "2g\0", 3), PL_ERR_BAD_BASE58);

    char big[1000];
    memset(big, 'z', sizeof big);
    assert_int_equal(pl_base58btc_decode(out, sizeof out, &n, big, sizeof big), PL_ERR_TOO_LARGE);
    memset(big, '1', 300); /* 300 zero bytes: short text, too many bytes */
    assert_int_equal(pl_base58btc_decode(out, sizeof out, &n, big, 300), PL_ERR_TOO_LARGE);
    memset(big, 'z', 350); /* a number of more than 256 bytes */
    assert_int_equal(pl_base58btc_decode(out, sizeof out, &n, big, 350), PL_ERR_TOO_LARGE);
    assert_int_equal(pl_base58btc_decode(out, 2, &n, "a3gV", 4), PL_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(n, 0);

    uint8_t in[PL_BASE58_MAX_BYTES + 1] = {0};
    char enc[400];
    assert_int_equal(pl_base58btc_encode(enc, sizeof enc, in, sizeof in), PL_ERR_TOO_LARGE);
    assert_int_equal(pl_base58btc_encode(enc, 4, (const uint8_t *)"bbb", 3), PL_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(pl_base58btc_encode(enc, 5, (const uint8_t *)"bbb", 3), PL_OK);
    assert_string_equal(enc, "a3gV");
}

/* Random lengths up to the bound, with leading zeros, both ways. */
static void test_base58_roundtrip_random(void **state) {
    (void)state;
    uint64_t seed = pl_test_seed();
    uint8_t in[PL_BASE58_MAX_BYTES], out[PL_BASE58_MAX_BYTES];
    char enc[400];
    for (int iter = 0; iter < 300; iter++) {
        size_t len = (size_t)(pl_test_rand(&seed) % (PL_BASE58_MAX_BYTES + 1));
        pl_test_rand_bytes(&seed, in, len);
        size_t zeros = len ? (size_t)(pl_test_rand(&seed) % 4) : 0;
        for (size_t i = 0; i < zeros && i < len; i++) in[i] = 0;
        if (iter == 0) len = PL_BASE58_MAX_BYTES, memset(in, 0xff, len);
        assert_int_equal(pl_base58btc_encode(enc, sizeof enc, in, len), PL_OK);
        size_t n = 0;
        assert_int_equal(pl_base58btc_decode(out, sizeof out, &n, enc, strlen(enc)), PL_OK);
        assert_int_equal(n, len);
        if (len) assert_memory_equal(out, in, len);
    }
}

/* ---- uvarint ---- */

static void test_uvarint_vectors(void **state) {
    (void)state;
    json_t *v = pl_test_vectors("waku-message.json");
    json_t *tbl = json_object_get(json_object_get(v, "libp2p"), "varint");
    assert_true(json_is_object(tbl) && json_object_size(tbl) > 0);
    const char *key;
    json_t *val;
    json_object_foreach(tbl, key, val) {
        uint64_t want = strtoull(key, NULL, 10);
        size_t len;
        uint8_t *bytes = pl_test_unhex(json_string_value(val), &len);
        uint8_t enc[PL_UVARINT_MAX_BYTES];
        size_t n = pl_uvarint_encode(enc, want);
        assert_int_equal(n, len);
        assert_memory_equal(enc, bytes, len);
        uint64_t got = 0;
        size_t used = 0;
        assert_int_equal(pl_uvarint_decode(&got, &used, bytes, len), PL_OK);
        assert_int_equal(used, len);
        assert_true(got == want);
        free(bytes);
    }
    json_decref(v);
}

static void test_uvarint_edges(void **state) {
    (void)state;
    uint8_t enc[PL_UVARINT_MAX_BYTES];
    uint64_t v;
    size_t used;
    const uint8_t max[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    assert_int_equal(pl_uvarint_encode(enc, UINT64_MAX), 10);
    assert_memory_equal(enc, max, 10);
    assert_int_equal(pl_uvarint_decode(&v, &used, max, 10), PL_OK);
    assert_true(v == UINT64_MAX);
    assert_int_equal(pl_uvarint_encode(enc, 0), 1);
    assert_int_equal(enc[0], 0);

    /* Trailing bytes are left for the caller. */
    const uint8_t two[] = {0x01, 0xff};
    assert_int_equal(pl_uvarint_decode(&v, &used, two, 2), PL_OK);
    assert_true(v == 1 && used == 1);

    struct {
        const char *hex;
        pl_err want;
    } bad[] = {
        {"", PL_ERR_TRUNCATED},
        {"80", PL_ERR_TRUNCATED},
        {"ffff", PL_ERR_TRUNCATED},
        {"8000", PL_ERR_BAD_VARINT},                 /* 0 in two bytes */
        {"ff00", PL_ERR_BAD_VARINT},                 /* 127 in two bytes */
        {"808080808080808080" "00", PL_ERR_BAD_VARINT},
        {"ffffffffffffffffff" "02", PL_ERR_BAD_VARINT}, /* 2^64 */
        {"ffffffffffffffffff" "81" "00", PL_ERR_BAD_VARINT},
        {"8080808080808080808001", PL_ERR_BAD_VARINT}, /* 11 bytes */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t len;
        uint8_t *b = pl_test_unhex(bad[i].hex, &len);
        v = 7, used = 7;
        assert_int_equal(pl_uvarint_decode(&v, &used, b, len), bad[i].want);
        assert_true(v == 0 && used == 0);
        free(b);
    }

    uint64_t seed = pl_test_seed();
    for (int i = 0; i < 2000; i++) {
        uint64_t x = pl_test_rand(&seed) >> (pl_test_rand(&seed) % 64);
        size_t n = pl_uvarint_encode(enc, x);
        assert_int_equal(pl_uvarint_decode(&v, &used, enc, n), PL_OK);
        assert_true(v == x && used == n);
        if (n > 1) assert_int_equal(pl_uvarint_decode(&v, &used, enc, n - 1), PL_ERR_TRUNCATED);
    }
}


/* The variable-time decoder must accept and reject exactly what the
 * constant-time one does, and produce the same bytes. */
static void test_base64_public_matches_constant_time(void **state) {
    (void)state;
    uint64_t seed = pl_test_seed();
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_= .\n";
    size_t agree_ok = 0;
    for (int round = 0; round < 200000; round++) {
        char in[24];
        size_t len = (size_t)(pl_test_rand(&seed) % sizeof in);
        /* mostly valid characters so that many inputs decode */
        for (size_t i = 0; i < len; i++) {
            uint64_t r = pl_test_rand(&seed);
            in[i] = alphabet[(r % 100) < 95 ? r % 64 : 64 + (r >> 8) % (sizeof alphabet - 65)];
        }
        if (len && pl_test_rand(&seed) % 3 == 0) in[len - 1] = '=';
        if (len > 1 && pl_test_rand(&seed) % 5 == 0) in[len - 2] = '=';
        for (int v = 0; v < 4; v++) {
            uint8_t a[24], b[24];
            size_t na = 99, nb = 99;
            pl_err ea = pl_base64_decode(a, sizeof a, &na, in, len, (pl_b64_variant)v);
            pl_err eb = pl_base64_decode_public(b, sizeof b, &nb, in, len, (pl_b64_variant)v);
            if (ea != eb) fprintf(stderr, "variant %d input '%.*s': %s vs %s\n", v, (int)len, in, pl_errname(ea), pl_errname(eb));
            assert_int_equal(ea, eb);
            assert_int_equal(na, nb);
            if (ea == PL_OK) {
                assert_memory_equal(a, b, na);
                agree_ok++;
            }
        }
    }
    assert_true(agree_ok > 10000); /* the comparison covered real decodes */
    /* too small a buffer is reported the same way */
    uint8_t small[2];
    size_t n;
    assert_int_equal(pl_base64_decode_public(small, sizeof small, &n, "AAAA", 4, PL_B64_STD), PL_ERR_BUFFER_TOO_SMALL);
}

/* The same comparison over longer texts, where the SIMD blocks of the
 * public decoder run (16 characters at a time), with the blocks on and off:
 * valid texts of every length up to 300, then with one character replaced
 * by anything, '=' and bytes >= 0x80 included, at any position. */
static void test_base64_public_long_matches_constant_time(void **state) {
    (void)state;
    uint64_t seed = pl_test_seed();
    size_t agree_ok = 0, agree_bad = 0;
    for (int simd = 0; simd < 3; simd++) {
        pl__base64_simd_level(simd);
        for (int round = 0; round < 20000; round++) {
            uint8_t bin[225], a[240], b[240];
            char txt[305];
            size_t blen = (size_t)(pl_test_rand(&seed) % sizeof bin);
            pl_test_rand_bytes(&seed, bin, blen);
            pl_b64_variant v = (pl_b64_variant)(pl_test_rand(&seed) % 4);
            assert_int_equal(pl_base64_encode(txt, sizeof txt, bin, blen, v), PL_OK);
            size_t len = strlen(txt);
            int corrupt = round % 2 && len > 0;
            if (corrupt) txt[pl_test_rand(&seed) % len] = (char)(pl_test_rand(&seed) & 0xff);
            size_t cap = round % 3 ? sizeof a : blen; /* exact room too */
            size_t na = 99, nb = 99;
            pl_err ea = pl_base64_decode(a, cap, &na, txt, len, v);
            pl_err eb = pl_base64_decode_public(b, cap, &nb, txt, len, v);
            assert_int_equal(ea, eb);
            assert_int_equal(na, nb);
            if (ea == PL_OK) {
                assert_memory_equal(a, b, na);
                if (!corrupt) assert_memory_equal(b, bin, blen);
                agree_ok++;
            } else {
                agree_bad++;
            }
        }
    }
    pl__base64_simd_level(-1);
    assert_true(agree_ok > 15000 && agree_bad > 5000);
}

/* The public encoder writes exactly what libsodium's does, for every
 * length up to 400 and random larger ones, every variant, with the SIMD
 * blocks on and off; too small a buffer fails the same way; and the
 * in-place form (bytes at the tail of the text buffer) gives the same text. */
static void test_base64_public_encoder_matches_constant_time(void **state) {
    (void)state;
    uint64_t seed = pl_test_seed();
    enum { MAXN = 3000 };
    uint8_t *bin = malloc(MAXN);
    char *x = malloc(MAXN * 2), *y = malloc(MAXN * 2), *z = malloc(MAXN * 2);
    assert_non_null(bin);
    assert_non_null(x);
    assert_non_null(y);
    assert_non_null(z);
    for (int simd = 0; simd < 3; simd++) {
        pl__base64_simd_level(simd);
        for (size_t round = 0; round < 1200; round++) {
            size_t n = round < 400 ? round : (size_t)(pl_test_rand(&seed) % MAXN);
            pl_test_rand_bytes(&seed, bin, n);
            for (int v = 0; v < 4; v++) {
                size_t cap = pl_base64_encoded_size(n, (pl_b64_variant)v);
                assert_int_equal(pl_base64_encode(x, cap, bin, n, (pl_b64_variant)v), PL_OK);
                memset(y, '#', cap + 8);
                assert_int_equal(pl_base64_encode_public(y, cap, bin, n, (pl_b64_variant)v), PL_OK);
                assert_memory_equal(x, y, cap);
                assert_int_equal(y[cap], '#'); /* nothing written past cap */
                assert_int_equal(pl_base64_encode_public(y, cap - 1, bin, n, (pl_b64_variant)v),
                                 PL_ERR_BUFFER_TOO_SMALL);
                assert_int_equal(y[0], '\0');
                memcpy(z + cap - n, bin, n);
                pl__base64_encode_public_tail(z, n, (pl_b64_variant)v);
                assert_memory_equal(x, z, cap);
            }
        }
    }
    pl__base64_simd_level(-1);
    free(bin);
    free(x);
    free(y);
    free(z);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64_public_matches_constant_time),
        cmocka_unit_test(test_base64_public_long_matches_constant_time),
        cmocka_unit_test(test_base64_public_encoder_matches_constant_time),
        cmocka_unit_test(test_hex_roundtrip),
        cmocka_unit_test(test_hex_rejects),
        cmocka_unit_test(test_hex_exact),
        cmocka_unit_test(test_base64_rfc4648),
        cmocka_unit_test(test_base64_alphabets),
        cmocka_unit_test(test_base64_rejects),
        cmocka_unit_test(test_base58_vectors),
        cmocka_unit_test(test_base58_peer_ids),
        cmocka_unit_test(test_base58_rejects),
        cmocka_unit_test(test_base58_roundtrip_random),
        cmocka_unit_test(test_uvarint_vectors),
        cmocka_unit_test(test_uvarint_edges),
    };
    if (pl_init() != PL_OK) return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
