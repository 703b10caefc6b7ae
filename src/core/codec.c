/* SPDX-License-Identifier: Apache-2.0 */
/* Hex, base64, base58btc and unsigned varints.
 *
 * Hex and base64 go through libsodium's constant-time codecs because they
 * carry keys; base58btc only ever carries public data (did:key, peer ids). */
#include "pairlink/codec.h"

#include "core/internal.h"

#include <sodium.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* ---- hex ------------------------------------------------------------------ */

pl_err pl_hex_encode(char *out, size_t cap, const uint8_t *in, size_t len) {
    PL_REQUIRE((out || cap == 0) && (in || len == 0));
    if (len > (SIZE_MAX - 1) / 2 || cap < len * 2 + 1) {
        if (cap) out[0] = '\0';
        return PL_ERR_BUFFER_TOO_SMALL;
    }
    sodium_bin2hex(out, cap, in, len);
    return PL_OK;
}

pl_err pl_hex_decode(uint8_t *out, size_t cap, size_t *out_len, const char *in, size_t in_len) {
    PL_REQUIRE(out_len && (out || cap == 0) && (in || in_len == 0));
    *out_len = 0;
    if (in_len % 2) return PL_ERR_BAD_HEX;
    if (in_len / 2 > cap) return PL_ERR_BUFFER_TOO_SMALL;
    const char *end = NULL;
    size_t n = 0;
    /* ignore = NULL and the end-pointer check: no whitespace, no partial
     * decode, nothing after the last pair. */
    int rc = sodium_hex2bin(out, cap, in, in_len, NULL, &n, &end);
    if (rc != 0 || end != in + in_len || n != in_len / 2) {
        /* The prefix may already hold key bytes. */
        sodium_memzero(out, in_len / 2);
        return PL_ERR_BAD_HEX;
    }
    *out_len = n;
    return PL_OK;
}

pl_err pl_hex_decode_exact(uint8_t *out, size_t len, const char *in, size_t in_len) {
    PL_REQUIRE((out || len == 0) && (in || in_len == 0));
    pl_err e = PL_ERR_BAD_LENGTH;
    size_t n = 0;
    if (in_len % 2) e = PL_ERR_BAD_HEX;
    else if (in_len / 2 == len) e = pl_hex_decode(out, len, &n, in, in_len);
    if (e != PL_OK) sodium_memzero(out, len);
    return e;
}

/* ---- base64 --------------------------------------------------------------- */

static int sodium_variant(pl_b64_variant v) {
    switch (v) {
    case PL_B64_STD: return sodium_base64_VARIANT_ORIGINAL;
    case PL_B64_STD_NOPAD: return sodium_base64_VARIANT_ORIGINAL_NO_PADDING;
    case PL_B64_URL: return sodium_base64_VARIANT_URLSAFE;
    case PL_B64_URL_NOPAD: return sodium_base64_VARIANT_URLSAFE_NO_PADDING;
    }
    pl__misuse("unknown pl_b64_variant", __FILE__, __LINE__);
}

static int padded(pl_b64_variant v) { return v == PL_B64_STD || v == PL_B64_URL; }

size_t pl_base64_encoded_size(size_t n, pl_b64_variant v) {
    (void)sodium_variant(v);
    size_t full = n / 3, rem = n % 3;
    /* No buffer can be that large; SIZE_MAX makes every capacity check fail. */
    if (full > (SIZE_MAX - 6) / 4) return SIZE_MAX;
    size_t chars = full * 4;
    if (rem) chars += padded(v) ? 4 : rem + 1;
    return chars + 1;
}

pl_err pl_base64_encode(char *out, size_t cap, const uint8_t *in, size_t len, pl_b64_variant v) {
    PL_REQUIRE((out || cap == 0) && (in || len == 0));
    size_t need = pl_base64_encoded_size(len, v);
    if (need == SIZE_MAX || cap < need) {
        if (cap) out[0] = '\0';
        return PL_ERR_BUFFER_TOO_SMALL;
    }
    sodium_bin2base64(out, cap, in, len, sodium_variant(v));
    return PL_OK;
}

pl_err pl_base64_decode(uint8_t *out, size_t cap, size_t *out_len, const char *in, size_t in_len,
                        pl_b64_variant v) {
    PL_REQUIRE(out_len && (out || cap == 0) && (in || in_len == 0));
    *out_len = 0;
    int variant = sodium_variant(v);

    /* Exact size of a well-formed input, so that "too small" is told apart
     * from "malformed" without a second pass. */
    size_t chars = in_len;
    for (int i = 0; i < 2 && chars > 0 && in[chars - 1] == '='; i++) chars--;
    size_t need = chars / 4 * 3 + (chars % 4) * 3 / 4;
    if (need > cap) return PL_ERR_BUFFER_TOO_SMALL;

    /* libsodium 1.0.18 reads the text as (signed) char, and its
     * constant-time comparisons then take every byte >= 0x80 for '/'
     * (or '_'): a second spelling of the same bytes. Refuse such bytes
     * first, folding with OR so there is no branch per character. */
    unsigned char high = 0;
    for (size_t i = 0; i < in_len; i++) high |= (unsigned char)in[i];
    if (high & 0x80) return PL_ERR_BAD_BASE64;

    const char *end = NULL;
    size_t n = 0;
    int rc = sodium_base642bin(out, cap, in, in_len, NULL, &n, &end, variant);
    if (rc != 0 || end != in + in_len) {
        sodium_memzero(out, need);
        return PL_ERR_BAD_BASE64;
    }
    *out_len = n;
    return PL_OK;
}

/* ---- base64 of public bytes (variable time) -------------------------------
 *
 * Envelope ciphertexts and relay payloads are public, so they need no
 * constant time, and libsodium's constant-time codecs were the largest cost
 * of an envelope (docs/performance.md). The tables are built on first use;
 * racing initialisers write the same bytes, and the ready flag is written
 * last with release order. Index 0: standard alphabet, 1: URL-safe. */
static const char *const b64_alphabet[2] = {
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
};
/* Encoding: the two characters of each 12-bit value, in memory order. */
static uint16_t b64_enc_pair[2][4096];
/* Decoding: the value of a character at each of the four positions of a
 * quantum, already shifted into place; B64_BAD (bit 31) for characters
 * outside the alphabet, so that one OR over a whole input finds any. */
#define B64_BAD 0x80000000u
static uint32_t b64_dec[2][4][256];
static _Atomic bool b64_tables_ready;

/* ---- SIMD blocks: 12 bytes <-> 16 characters per SSSE3 step, 24 <-> 32 per
 * AVX2 step. Chosen at run time (neither is in the x86-64 baseline); the
 * scalar code below handles the rest of the input and every other CPU, and
 * the tests run every level against libsodium. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define PL_B64_SSSE3 1
#include <immintrin.h>

/* 0: scalar only, 1: SSSE3, 2: AVX2 then SSSE3; set by b64_init and
 * pl__base64_simd_level */
static _Atomic int b64_simd;

static int b64_simd_max(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") ? 2 : __builtin_cpu_supports("ssse3") ? 1 : 0;
}

/* Encode 12 bytes from each 16-byte load while 16 bytes can be read;
 * returns the bytes consumed (a multiple of 12). Reads in[i..i+15] before
 * writing out[4i/3..4i/3+15]: the in-place rule of b64_encode_body holds. */
__attribute__((target("ssse3"))) static size_t b64_encode_ssse3(char *out, const uint8_t *in,
                                                                size_t len, int alpha) {
    /* Each 32-bit lane gets input bytes (b1, b0, b2, b1): as 16-bit halves,
     * b0b1 and b1b2 big-endian, from which the four 6-bit indices are cut
     * with one multiply-high and one multiply-low. */
    const __m128i spread = _mm_setr_epi8(1, 0, 2, 1, 4, 3, 5, 4, 7, 6, 8, 7, 10, 9, 11, 10);
    const __m128i mask_a = _mm_set1_epi32(0x0fc0fc00), mul_a = _mm_set1_epi32(0x04000040);
    const __m128i mask_b = _mm_set1_epi32(0x003f03f0), mul_b = _mm_set1_epi32(0x01000010);
    /* Index to ASCII: an offset chosen by class. Class 0: 26..51 ('a'..),
     * 1..10: 52..61 (digits), 11: 62, 12: 63, 13: 0..25 ('A'..). */
    const __m128i offsets =
        alpha ? _mm_setr_epi8(71, -4, -4, -4, -4, -4, -4, -4, -4, -4, -4, -17, 32, 65, 0, 0)
              : _mm_setr_epi8(71, -4, -4, -4, -4, -4, -4, -4, -4, -4, -4, -19, -16, 65, 0, 0);
    const __m128i c51 = _mm_set1_epi8(51), c26 = _mm_set1_epi8(26), c13 = _mm_set1_epi8(13);
    size_t i = 0, o = 0;
    for (; i + 16 <= len; i += 12, o += 16) {
        __m128i w = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(in + i)), spread);
        __m128i a = _mm_mulhi_epu16(_mm_and_si128(w, mask_a), mul_a);
        __m128i b = _mm_mullo_epi16(_mm_and_si128(w, mask_b), mul_b);
        __m128i idx = _mm_or_si128(a, b); /* bytes: the 6-bit values, in order */
        __m128i cls = _mm_subs_epu8(idx, c51);
        cls = _mm_or_si128(cls, _mm_and_si128(_mm_cmpgt_epi8(c26, idx), c13));
        __m128i text = _mm_add_epi8(idx, _mm_shuffle_epi8(offsets, cls));
        _mm_storeu_si128((__m128i *)(out + o), text);
    }
    return i;
}

/* Decode 16 characters into 12 bytes per step while the characters are
 * there and 16 bytes of room remain; returns the characters consumed (a
 * multiple of 16) and ORs into *bad a nonzero value if any was outside the
 * alphabet (the caller then wipes and fails). */
__attribute__((target("ssse3"))) static size_t b64_decode_ssse3(uint8_t *out, size_t need,
                                                                const char *in, size_t chars,
                                                                int alpha, uint32_t *bad) {
    const __m128i c_up_lo = _mm_set1_epi8('A' - 1), c_up_hi = _mm_set1_epi8('Z' + 1);
    const __m128i c_lo_lo = _mm_set1_epi8('a' - 1), c_lo_hi = _mm_set1_epi8('z' + 1);
    const __m128i c_dg_lo = _mm_set1_epi8('0' - 1), c_dg_hi = _mm_set1_epi8('9' + 1);
    const __m128i c62 = _mm_set1_epi8(alpha ? '-' : '+'), c63 = _mm_set1_epi8(alpha ? '_' : '/');
    const __m128i d_up = _mm_set1_epi8(-'A'), d_lo = _mm_set1_epi8(26 - 'a');
    const __m128i d_dg = _mm_set1_epi8(52 - '0');
    const __m128i d62 = _mm_set1_epi8((char)(62 - (alpha ? '-' : '+')));
    const __m128i d63 = _mm_set1_epi8((char)(63 - (alpha ? '_' : '/')));
    const __m128i pack1 = _mm_set1_epi32(0x01400140), pack2 = _mm_set1_epi32(0x00011000);
    const __m128i gather = _mm_setr_epi8(2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1);
    __m128i invalid = _mm_setzero_si128();
    size_t i = 0, o = 0;
    for (; i + 16 <= chars && o + 16 <= need; i += 16, o += 12) {
        __m128i c = _mm_loadu_si128((const __m128i *)(in + i));
        /* Signed compares: bytes >= 0x80 are negative and in no range. */
        __m128i up = _mm_and_si128(_mm_cmpgt_epi8(c, c_up_lo), _mm_cmpgt_epi8(c_up_hi, c));
        __m128i lo = _mm_and_si128(_mm_cmpgt_epi8(c, c_lo_lo), _mm_cmpgt_epi8(c_lo_hi, c));
        __m128i dg = _mm_and_si128(_mm_cmpgt_epi8(c, c_dg_lo), _mm_cmpgt_epi8(c_dg_hi, c));
        __m128i s62 = _mm_cmpeq_epi8(c, c62), s63 = _mm_cmpeq_epi8(c, c63);
        __m128i delta = _mm_or_si128(
            _mm_or_si128(_mm_and_si128(up, d_up), _mm_and_si128(lo, d_lo)),
            _mm_or_si128(_mm_and_si128(dg, d_dg),
                         _mm_or_si128(_mm_and_si128(s62, d62), _mm_and_si128(s63, d63))));
        __m128i ok = _mm_or_si128(_mm_or_si128(up, lo), _mm_or_si128(dg, _mm_or_si128(s62, s63)));
        invalid = _mm_or_si128(invalid, _mm_andnot_si128(ok, _mm_set1_epi8(-1)));
        __m128i v = _mm_add_epi8(c, delta); /* 6-bit values */
        /* a<<6|b and c<<6|d per 16 bits, then 24 bits per lane */
        __m128i w = _mm_madd_epi16(_mm_maddubs_epi16(v, pack1), pack2);
        _mm_storeu_si128((__m128i *)(out + o), _mm_shuffle_epi8(w, gather));
    }
    if (_mm_movemask_epi8(invalid)) *bad |= B64_BAD;
    return i;
}

/* The same two steps on 256-bit registers: each 128-bit lane does what the
 * SSSE3 code does (the shuffles stay within lanes), so 24 bytes <-> 32
 * characters per step. Encoding reads in[i..i+27] before writing
 * out[4i/3..4i/3+31]; the in-place rule still holds. */
__attribute__((target("avx2"))) static size_t b64_encode_avx2(char *out, const uint8_t *in,
                                                              size_t len, int alpha) {
    const __m256i spread = _mm256_broadcastsi128_si256(
        _mm_setr_epi8(1, 0, 2, 1, 4, 3, 5, 4, 7, 6, 8, 7, 10, 9, 11, 10));
    const __m256i mask_a = _mm256_set1_epi32(0x0fc0fc00), mul_a = _mm256_set1_epi32(0x04000040);
    const __m256i mask_b = _mm256_set1_epi32(0x003f03f0), mul_b = _mm256_set1_epi32(0x01000010);
    const __m256i offsets = _mm256_broadcastsi128_si256(
        alpha ? _mm_setr_epi8(71, -4, -4, -4, -4, -4, -4, -4, -4, -4, -4, -17, 32, 65, 0, 0)
              : _mm_setr_epi8(71, -4, -4, -4, -4, -4, -4, -4, -4, -4, -4, -19, -16, 65, 0, 0));
    const __m256i c51 = _mm256_set1_epi8(51), c26 = _mm256_set1_epi8(26);
    const __m256i c13 = _mm256_set1_epi8(13);
    size_t i = 0, o = 0;
    for (; i + 28 <= len; i += 24, o += 32) {
        __m256i raw = _mm256_inserti128_si256(
            _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(in + i))),
            _mm_loadu_si128((const __m128i *)(in + i + 12)), 1);
        __m256i w = _mm256_shuffle_epi8(raw, spread);
        __m256i a = _mm256_mulhi_epu16(_mm256_and_si256(w, mask_a), mul_a);
        __m256i b = _mm256_mullo_epi16(_mm256_and_si256(w, mask_b), mul_b);
        __m256i idx = _mm256_or_si256(a, b);
        __m256i cls = _mm256_subs_epu8(idx, c51);
        cls = _mm256_or_si256(cls, _mm256_and_si256(_mm256_cmpgt_epi8(c26, idx), c13));
        __m256i text = _mm256_add_epi8(idx, _mm256_shuffle_epi8(offsets, cls));
        _mm256_storeu_si256((__m256i *)(out + o), text);
    }
    return i;
}

__attribute__((target("avx2"))) static size_t
b64_decode_avx2(uint8_t *out, size_t need, const char *in, size_t chars, int alpha, uint32_t *bad) {
    const __m256i c_up_lo = _mm256_set1_epi8('A' - 1), c_up_hi = _mm256_set1_epi8('Z' + 1);
    const __m256i c_lo_lo = _mm256_set1_epi8('a' - 1), c_lo_hi = _mm256_set1_epi8('z' + 1);
    const __m256i c_dg_lo = _mm256_set1_epi8('0' - 1), c_dg_hi = _mm256_set1_epi8('9' + 1);
    const __m256i c62 = _mm256_set1_epi8(alpha ? '-' : '+');
    const __m256i c63 = _mm256_set1_epi8(alpha ? '_' : '/');
    const __m256i d_up = _mm256_set1_epi8(-'A'), d_lo = _mm256_set1_epi8(26 - 'a');
    const __m256i d_dg = _mm256_set1_epi8(52 - '0');
    const __m256i d62 = _mm256_set1_epi8((char)(62 - (alpha ? '-' : '+')));
    const __m256i d63 = _mm256_set1_epi8((char)(63 - (alpha ? '_' : '/')));
    const __m256i pack1 = _mm256_set1_epi32(0x01400140), pack2 = _mm256_set1_epi32(0x00011000);
    const __m256i gather = _mm256_broadcastsi128_si256(
        _mm_setr_epi8(2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1));
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 4, 5, 6, 3, 7); /* 24 bytes together */
    __m256i invalid = _mm256_setzero_si256();
    size_t i = 0, o = 0;
    for (; i + 32 <= chars && o + 32 <= need; i += 32, o += 24) {
        __m256i c = _mm256_loadu_si256((const __m256i *)(in + i));
        __m256i up = _mm256_and_si256(_mm256_cmpgt_epi8(c, c_up_lo), _mm256_cmpgt_epi8(c_up_hi, c));
        __m256i lo = _mm256_and_si256(_mm256_cmpgt_epi8(c, c_lo_lo), _mm256_cmpgt_epi8(c_lo_hi, c));
        __m256i dg = _mm256_and_si256(_mm256_cmpgt_epi8(c, c_dg_lo), _mm256_cmpgt_epi8(c_dg_hi, c));
        __m256i s62 = _mm256_cmpeq_epi8(c, c62), s63 = _mm256_cmpeq_epi8(c, c63);
        __m256i delta =
            _mm256_or_si256(_mm256_or_si256(_mm256_and_si256(up, d_up), _mm256_and_si256(lo, d_lo)),
                            _mm256_or_si256(_mm256_and_si256(dg, d_dg),
                                            _mm256_or_si256(_mm256_and_si256(s62, d62),
                                                            _mm256_and_si256(s63, d63))));
        __m256i ok = _mm256_or_si256(_mm256_or_si256(up, lo),
                                     _mm256_or_si256(dg, _mm256_or_si256(s62, s63)));
        invalid = _mm256_or_si256(invalid, _mm256_andnot_si256(ok, _mm256_set1_epi8(-1)));
        __m256i v = _mm256_add_epi8(c, delta);
        __m256i w = _mm256_madd_epi16(_mm256_maddubs_epi16(v, pack1), pack2);
        w = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(w, gather), lanes);
        _mm256_storeu_si256((__m256i *)(out + o), w);
    }
    if (_mm256_movemask_epi8(invalid)) *bad |= B64_BAD;
    return i;
}
#endif

static int b64_alpha(pl_b64_variant v);

static void b64_init(void) {
    for (int a = 0; a < 2; a++) {
        const char *al = b64_alphabet[a];
        for (int i = 0; i < 4096; i++) {
            uint8_t pair[2] = {(uint8_t)al[i >> 6], (uint8_t)al[i & 63]};
            memcpy(&b64_enc_pair[a][i], pair, 2);
        }
        for (int pos = 0; pos < 4; pos++)
            for (int c = 0; c < 256; c++)
                b64_dec[a][pos][c] = B64_BAD;
        for (uint32_t v = 0; v < 64; v++)
            for (int pos = 0; pos < 4; pos++)
                b64_dec[a][pos][(unsigned char)al[v]] = v << (6 * (3 - pos));
    }
#ifdef PL_B64_SSSE3
    atomic_store_explicit(&b64_simd, b64_simd_max(), memory_order_relaxed);
#endif
    atomic_store_explicit(&b64_tables_ready, true, memory_order_release);
}

int pl__base64_simd_level(int max) {
#ifdef PL_B64_SSSE3
    (void)b64_alpha(PL_B64_STD);
    int level = b64_simd_max();
    if (max >= 0 && max < level) level = max;
    atomic_store_explicit(&b64_simd, level, memory_order_relaxed);
    return level;
#else
    (void)max;
    return 0;
#endif
}

static int b64_alpha(pl_b64_variant v) {
    (void)sodium_variant(v); /* misuse check */
    if (!atomic_load_explicit(&b64_tables_ready, memory_order_acquire)) b64_init();
    return v == PL_B64_URL || v == PL_B64_URL_NOPAD;
}

/* The body of the encoder. `in` may lie inside `out` as long as it starts
 * at least (len + 3) / 3 bytes after it (pl__base64_encode_public_tail):
 * every quantum is read before the characters of any earlier quantum can
 * reach it, and nothing here assumes the two do not alias. */
static void b64_encode_body(char *out, const uint8_t *in, size_t len, int alpha, bool pad) {
    const uint16_t *t = b64_enc_pair[alpha];
    size_t i = 0, o = 0;
#ifdef PL_B64_SSSE3
    int simd = atomic_load_explicit(&b64_simd, memory_order_relaxed);
    if (simd >= 2) i = b64_encode_avx2(out, in, len, alpha);
    if (simd >= 1) i += b64_encode_ssse3(out + i / 3 * 4, in + i, len - i, alpha);
    o = i / 3 * 4;
#endif
    /* Six bytes per step from an 8-byte load: four 12-bit lookups, one
     * 8-character store. */
    for (; i + 8 <= len; i += 6, o += 8) {
        uint8_t b[8];
        memcpy(b, in + i, 8);
        uint64_t w = (uint64_t)b[0] << 40 | (uint64_t)b[1] << 32 | (uint64_t)b[2] << 24 |
                     (uint64_t)b[3] << 16 | (uint64_t)b[4] << 8 | (uint64_t)b[5];
        uint16_t c[4] = {t[w >> 36], t[(w >> 24) & 4095], t[(w >> 12) & 4095], t[w & 4095]};
        memcpy(out + o, c, 8);
    }
    for (; i + 3 <= len; i += 3, o += 4) {
        uint32_t w = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        uint16_t c[2] = {t[w >> 12], t[w & 4095]};
        memcpy(out + o, c, 4);
    }
    const char *al = b64_alphabet[alpha];
    size_t rest = len - i;
    if (rest) {
        uint32_t w = (uint32_t)in[i] << 16 | (rest == 2 ? (uint32_t)in[i + 1] << 8 : 0);
        out[o++] = al[w >> 18];
        out[o++] = al[(w >> 12) & 63];
        if (rest == 2) out[o++] = al[(w >> 6) & 63];
        if (pad) {
            if (rest == 1) out[o++] = '=';
            out[o++] = '=';
        }
    }
    out[o] = '\0';
}

pl_err pl_base64_encode_public(char *out, size_t cap, const uint8_t *in, size_t len,
                               pl_b64_variant v) {
    PL_REQUIRE((out || cap == 0) && (in || len == 0));
    int alpha = b64_alpha(v);
    size_t need = pl_base64_encoded_size(len, v);
    if (need == SIZE_MAX || cap < need) {
        if (cap) out[0] = '\0';
        return PL_ERR_BUFFER_TOO_SMALL;
    }
    b64_encode_body(out, in, len, alpha, padded(v));
    return PL_OK;
}

void pl__base64_encode_public_tail(char *buf, size_t len, pl_b64_variant v) {
    size_t cap = pl_base64_encoded_size(len, v);
    /* the margin the body needs between the text and the bytes still unread */
    PL_REQUIRE(buf && cap != SIZE_MAX && 3 * (cap - len) >= len + 3);
    int alpha = b64_alpha(v);
    b64_encode_body(buf, (const uint8_t *)buf + (cap - len), len, alpha, padded(v));
}

/* Acceptance mirrors libsodium's sodium_base642bin with no ignore set: the
 * alphabet of the variant only, padding exactly when the variant has it (to
 * a multiple of 4, at most two '='), no data after padding, and zero unused
 * bits in the last character. */
pl_err pl_base64_decode_public(uint8_t *out, size_t cap, size_t *out_len, const char *in,
                               size_t in_len, pl_b64_variant v) {
    PL_REQUIRE(out_len && (out || cap == 0) && (in || in_len == 0));
    *out_len = 0;
    int alpha = b64_alpha(v);
    const uint32_t(*t)[256] = b64_dec[alpha];
    bool pad = padded(v);

    size_t chars = in_len;
    for (int i = 0; i < 2 && chars > 0 && in[chars - 1] == '='; i++)
        chars--;
    size_t pads = in_len - chars;
    if (pad ? (in_len % 4 != 0) : (pads != 0)) return PL_ERR_BAD_BASE64;
    if (chars % 4 == 1) return PL_ERR_BAD_BASE64;
    if (pad && pads != (4 - chars % 4) % 4) return PL_ERR_BAD_BASE64;
    size_t need = chars / 4 * 3 + (chars % 4) * 3 / 4;
    if (need > cap) return PL_ERR_BUFFER_TOO_SMALL;

    /* Bad characters are collected in `bad` and judged once at the end:
     * output written before that is inside `need` and wiped on failure. */
    const unsigned char *p = (const unsigned char *)in;
    uint32_t bad = 0;
    size_t o = 0, i = 0;
#ifdef PL_B64_SSSE3
    int simd = atomic_load_explicit(&b64_simd, memory_order_relaxed);
    if (simd >= 2) i = b64_decode_avx2(out, need, in, chars, alpha, &bad);
    if (simd >= 1)
        i += b64_decode_ssse3(out + i / 4 * 3, need - i / 4 * 3, in + i, chars - i, alpha, &bad);
    o = i / 4 * 3;
#endif
    /* A 4-byte store per quantum while a spare byte of room remains. */
    for (; i + 4 <= chars && o + 4 <= need; i += 4, o += 3) {
        uint32_t w = t[0][p[i]] | t[1][p[i + 1]] | t[2][p[i + 2]] | t[3][p[i + 3]];
        bad |= w;
        uint8_t b[4] = {(uint8_t)(w >> 16), (uint8_t)(w >> 8), (uint8_t)w, 0};
        memcpy(out + o, b, 4);
    }
    for (; i + 4 <= chars; i += 4) {
        uint32_t w = t[0][p[i]] | t[1][p[i + 1]] | t[2][p[i + 2]] | t[3][p[i + 3]];
        bad |= w;
        out[o++] = (uint8_t)(w >> 16);
        out[o++] = (uint8_t)(w >> 8);
        out[o++] = (uint8_t)w;
    }
    size_t rest = chars - i;
    if (rest >= 2) {
        uint32_t w = t[0][p[i]] | t[1][p[i + 1]] | (rest == 3 ? t[2][p[i + 2]] : 0);
        bad |= w;
        /* the bits below the last byte must be zero */
        if (w & (rest == 2 ? 0xffffu : 0xffu)) bad |= B64_BAD;
        out[o++] = (uint8_t)(w >> 16);
        if (rest == 3) out[o++] = (uint8_t)(w >> 8);
    }
    if (bad & B64_BAD) {
        memset(out, 0, need);
        return PL_ERR_BAD_BASE64;
    }
    *out_len = o;
    return PL_OK;
}

/* ---- base58btc ------------------------------------------------------------ */

static const char b58_alphabet[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/* Upper bounds: log(256)/log(58) < 1.366, log(58)/log(256) < 0.733. */
#define B58_MAX_CHARS (PL_BASE58_MAX_BYTES * 1366 / 1000 + 2)

pl_err pl_base58btc_encode(char *out, size_t cap, const uint8_t *in, size_t len) {
    PL_REQUIRE((out || cap == 0) && (in || len == 0));
    if (cap) out[0] = '\0';
    if (len > PL_BASE58_MAX_BYTES) return PL_ERR_TOO_LARGE;

    size_t zeros = 0;
    while (zeros < len && in[zeros] == 0) zeros++;

    /* Big-endian base-58 digits of the number, grown by repeated
     * multiply-by-256-and-add; `used` tracks the significant tail. */
    uint8_t digits[B58_MAX_CHARS];
    size_t size = (len - zeros) * 1366 / 1000 + 1, used = 0;
    memset(digits, 0, size);
    for (size_t i = zeros; i < len; i++) {
        unsigned carry = in[i];
        size_t j = 0;
        for (size_t k = size; k-- > 0 && (carry != 0 || j < used); j++) {
            carry += 256u * digits[k];
            digits[k] = (uint8_t)(carry % 58);
            carry /= 58;
        }
        used = j;
    }
    size_t first = size - used;
    while (first < size && digits[first] == 0) first++;

    size_t total = zeros + (size - first);
    if (cap < total + 1) return PL_ERR_BUFFER_TOO_SMALL;
    memset(out, '1', zeros);
    for (size_t i = first; i < size; i++) out[zeros + i - first] = b58_alphabet[digits[i]];
    out[total] = '\0';
    return PL_OK;
}

static int b58_value(unsigned char c) {
    const char *p = c ? memchr(b58_alphabet, c, sizeof b58_alphabet - 1) : NULL;
    return p ? (int)(p - b58_alphabet) : -1;
}

pl_err pl_base58btc_decode(uint8_t *out, size_t cap, size_t *out_len, const char *in,
                           size_t in_len) {
    PL_REQUIRE(out_len && (out || cap == 0) && (in || in_len == 0));
    *out_len = 0;
    if (in_len > B58_MAX_CHARS) return PL_ERR_TOO_LARGE;

    size_t ones = 0;
    while (ones < in_len && in[ones] == '1') ones++;

    uint8_t bytes[B58_MAX_CHARS];
    size_t size = (in_len - ones) * 733 / 1000 + 1, used = 0;
    memset(bytes, 0, size);
    for (size_t i = ones; i < in_len; i++) {
        int d = b58_value((unsigned char)in[i]);
        if (d < 0) return PL_ERR_BAD_BASE58;
        unsigned carry = (unsigned)d;
        size_t j = 0;
        for (size_t k = size; k-- > 0 && (carry != 0 || j < used); j++) {
            carry += 58u * bytes[k];
            bytes[k] = (uint8_t)(carry & 0xff);
            carry >>= 8;
        }
        used = j;
    }
    size_t first = size - used;
    while (first < size && bytes[first] == 0) first++;

    size_t total = ones + (size - first);
    if (total > PL_BASE58_MAX_BYTES) return PL_ERR_TOO_LARGE;
    if (total > cap) return PL_ERR_BUFFER_TOO_SMALL;
    memset(out, 0, ones);
    memcpy(out + ones, bytes + first, size - first);
    *out_len = total;
    return PL_OK;
}

/* ---- unsigned varints ----------------------------------------------------- */

size_t pl_uvarint_encode(uint8_t out[PL_UVARINT_MAX_BYTES], uint64_t v) {
    PL_REQUIRE(out);
    size_t n = 0;
    while (v >= 0x80) {
        out[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (uint8_t)v;
    return n;
}

pl_err pl_uvarint_decode(uint64_t *v, size_t *used, const uint8_t *in, size_t len) {
    PL_REQUIRE(v && used && (in || len == 0));
    *v = 0;
    *used = 0;
    uint64_t acc = 0;
    for (size_t i = 0; i < len && i < PL_UVARINT_MAX_BYTES; i++) {
        uint8_t b = in[i];
        /* The tenth byte holds only bit 63: anything else overflows. */
        if (i == PL_UVARINT_MAX_BYTES - 1 && b > 1) return PL_ERR_BAD_VARINT;
        acc |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            /* A zero final byte after others means the value had a shorter
             * form; two encodings of one value would break hashing. */
            if (b == 0 && i > 0) return PL_ERR_BAD_VARINT;
            *v = acc;
            *used = i + 1;
            return PL_OK;
        }
    }
    return len < PL_UVARINT_MAX_BYTES ? PL_ERR_TRUNCATED : PL_ERR_BAD_VARINT;
}
