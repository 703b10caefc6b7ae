/* Hex, base64, base58btc and unsigned varints.
 *
 * Hex and base64 go through libsodium's constant-time codecs because they
 * carry keys; base58btc only ever carries public data (did:key, peer ids). */
#include "pairlink/codec.h"

#include "core/internal.h"

#include <sodium.h>
#include <stdint.h>
#include <stdbool.h>
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

/* Variable-time decoder for public data. Acceptance mirrors libsodium's
 * sodium_base642bin with no ignore set: the alphabet of the variant only,
 * padding exactly when the variant has it (to a multiple of 4, at most two
 * '='), no data after padding, and zero unused bits in the last character. */
static int8_t b64_table[2][256];
static bool b64_table_ready;

static void b64_init(void) {
    static const char std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    static const char url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    memset(b64_table, -1, sizeof b64_table);
    for (int i = 0; i < 64; i++) {
        b64_table[0][(unsigned char)std[i]] = (int8_t)i;
        b64_table[1][(unsigned char)url[i]] = (int8_t)i;
    }
    b64_table_ready = true; /* idempotent: racing initialisers write the same bytes */
}

pl_err pl_base64_decode_public(uint8_t *out, size_t cap, size_t *out_len, const char *in,
                               size_t in_len, pl_b64_variant v) {
    PL_REQUIRE(out_len && (out || cap == 0) && (in || in_len == 0));
    *out_len = 0;
    if (!b64_table_ready) b64_init();
    const int8_t *t = b64_table[v == PL_B64_URL || v == PL_B64_URL_NOPAD];
    bool padded = v == PL_B64_STD || v == PL_B64_URL;

    size_t chars = in_len;
    for (int i = 0; i < 2 && chars > 0 && in[chars - 1] == '='; i++) chars--;
    size_t pads = in_len - chars;
    if (padded ? (in_len % 4 != 0) : (pads != 0)) return PL_ERR_BAD_BASE64;
    if (chars % 4 == 1) return PL_ERR_BAD_BASE64;
    if (padded && pads != (4 - chars % 4) % 4) return PL_ERR_BAD_BASE64;
    size_t need = chars / 4 * 3 + (chars % 4) * 3 / 4;
    if (need > cap) return PL_ERR_BUFFER_TOO_SMALL;

    const unsigned char *p = (const unsigned char *)in;
    size_t o = 0, i = 0;
    for (; i + 4 <= chars; i += 4) {
        int a = t[p[i]], b = t[p[i + 1]], c = t[p[i + 2]], d = t[p[i + 3]];
        if ((a | b | c | d) < 0) goto bad;
        uint32_t w = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
        out[o++] = (uint8_t)(w >> 16);
        out[o++] = (uint8_t)(w >> 8);
        out[o++] = (uint8_t)w;
    }
    size_t rest = chars - i;
    if (rest == 2) {
        int a = t[p[i]], b = t[p[i + 1]];
        if ((a | b) < 0 || (b & 0x0f)) goto bad;
        out[o++] = (uint8_t)(a << 2 | b >> 4);
    } else if (rest == 3) {
        int a = t[p[i]], b = t[p[i + 1]], c = t[p[i + 2]];
        if ((a | b | c) < 0 || (c & 0x03)) goto bad;
        out[o++] = (uint8_t)(a << 2 | b >> 4);
        out[o++] = (uint8_t)((b & 0x0f) << 4 | c >> 2);
    }
    *out_len = o;
    return PL_OK;
bad:
    memset(out, 0, need);
    return PL_ERR_BAD_BASE64;
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
