/* SPDX-License-Identifier: Apache-2.0 */
/* The pairing code P in text form, and the pairing fingerprint.
 *
 * Text form: 13 Crockford base32 digits of the 65-bit value 0 || P (so the
 * first digit is 0..F), then two check digits a, b with
 *   sum_{i=1..15} w_i * v_i == 0 (mod 37),
 *   w = 2, 3, ..., 14 for the data digits, 32 for a, 1 for b.
 * 37 is prime and above the largest digit difference (31), and the weights
 * are distinct and non-zero mod 37, so a single changed digit changes the
 * sum by w*(d) != 0 and a swap of two different digits by
 * (w_i - w_j)*(v_j - v_i) != 0: both are always caught. The canonical check
 * value c = 32a + b is the residue itself (0..36), so a is 0 or 1. */
#include "nm/nm_internal.h"

#include "core/internal.h"
#include "pairlink/hash.h"

#include <string.h>

const char pl__nm_crockford[33] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

#define DATA_DIGITS 13
#define CHECK_MOD 37u

static const uint8_t weights[PL_NM_CODE_CHARS] = {2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 32, 1};

/* All-ones if a == b, else 0, without a branch. */
static unsigned eq_mask(unsigned a, unsigned b) { return 0u - ((((a ^ b) & 0xffu) - 1u) >> 8 & 1u); }

/* Crockford value of an input character, or -1; case-insensitive, with the
 * I/L -> 1 and O -> 0 aliases. U is not a digit. The code is a secret, so
 * the whole alphabet is scanned whatever the character. */
static int digit_value(unsigned char ch) {
    unsigned c = ch;
    unsigned lower = (unsigned)(c - 'a') <= 'z' - 'a' ? 1u : 0u;
    c -= lower * ('a' - 'A');
    unsigned found = 0, val = 0;
    for (unsigned v = 0; v < 32; v++) {
        unsigned m = eq_mask(c, (unsigned char)pl__nm_crockford[v]);
        found |= m;
        val |= m & v;
    }
    unsigned one = eq_mask(c, 'I') | eq_mask(c, 'L'), zero = eq_mask(c, 'O');
    found |= one | zero;
    val |= one & 1u;
    return found ? (int)val : -1;
}

static uint32_t check_value(const uint8_t v[DATA_DIGITS]) {
    uint32_t s = 0;
    for (int i = 0; i < DATA_DIGITS; i++) s += (uint32_t)weights[i] * v[i];
    return (CHECK_MOD - s % CHECK_MOD) % CHECK_MOD;
}

static uint64_t load_be64(const uint8_t b[8]) {
    uint64_t x = 0;
    for (int i = 0; i < 8; i++) x = x << 8 | b[i];
    return x;
}

void pl_nm_code_generate(uint8_t code[PL_NM_CODE_BYTES]) {
    PL_REQUIRE(code);
    pl_random(code, PL_NM_CODE_BYTES);
}

void pl_nm_code_format(char out[PL_NM_CODE_TEXT_SIZE], const uint8_t code[PL_NM_CODE_BYTES]) {
    PL_REQUIRE(out && code);
    uint64_t p = load_be64(code);
    uint8_t v[PL_NM_CODE_CHARS];
    v[0] = (uint8_t)(p >> 60);
    for (int i = 1; i < DATA_DIGITS; i++) v[i] = (uint8_t)((p >> (60 - 5 * i)) & 31u);
    uint32_t c = check_value(v);
    v[13] = (uint8_t)(c >> 5);
    v[14] = (uint8_t)(c & 31u);
    size_t o = 0;
    for (int i = 0; i < PL_NM_CODE_CHARS; i++) {
        if (i == 5 || i == 10) out[o++] = '-';
        out[o++] = pl__nm_crockford[v[i]];
    }
    out[o] = '\0';
    pl_wipe(v, sizeof v);
    pl_wipe(&p, sizeof p);
}

pl_err pl_nm_code_parse(uint8_t code[PL_NM_CODE_BYTES], const char *text, size_t len) {
    PL_REQUIRE(code && (text || len == 0));
    memset(code, 0, PL_NM_CODE_BYTES);
    if (len > PL_NM_CODE_TEXT_MAX) return PL_ERR_CODE_FORMAT;

    uint8_t v[PL_NM_CODE_CHARS];
    size_t n = 0;
    pl_err e = PL_ERR_CODE_FORMAT;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)text[i];
        if (ch == '-' || ch == ' ') continue;
        int d = digit_value(ch);
        if (d < 0 || n == PL_NM_CODE_CHARS) goto out;
        v[n++] = (uint8_t)d;
    }
    if (n != PL_NM_CODE_CHARS) goto out;

    uint32_t s = 0;
    for (int i = 0; i < PL_NM_CODE_CHARS; i++) s += (uint32_t)weights[i] * v[i];
    if (s % CHECK_MOD != 0 || 32u * v[13] + v[14] != check_value(v)) {
        e = PL_ERR_CODE_CHECKSUM;
        goto out;
    }
    if (v[0] > 15) goto out; /* only reachable with several errors */

    uint64_t p = v[0];
    for (int i = 1; i < DATA_DIGITS; i++) p = p << 5 | v[i];
    for (int i = 0; i < 8; i++) code[i] = (uint8_t)(p >> (56 - 8 * i));
    pl_wipe(&p, sizeof p);
    e = PL_OK;
out:
    pl_wipe(v, sizeof v);
    return e;
}

void pl_nm_fingerprint(char out[PL_NM_FINGERPRINT_SIZE], const uint8_t hs[PL_NM_KEY_BYTES],
                       const uint8_t app_pub[PL_NM_KEY_BYTES], const uint8_t nm_pub[PL_NM_KEY_BYTES]) {
    PL_REQUIRE(out && hs && app_pub && nm_pub);
    static const char label[] = "pairlink-fp-1";
    uint8_t buf[sizeof label - 1 + 3 * PL_NM_KEY_BYTES];
    size_t o = 0;
    memcpy(buf, label, sizeof label - 1);
    o += sizeof label - 1;
    memcpy(buf + o, hs, PL_NM_KEY_BYTES);
    o += PL_NM_KEY_BYTES;
    memcpy(buf + o, app_pub, PL_NM_KEY_BYTES);
    o += PL_NM_KEY_BYTES;
    memcpy(buf + o, nm_pub, PL_NM_KEY_BYTES);
    o += PL_NM_KEY_BYTES;
    uint8_t h[PL_SHA256_BYTES];
    pl_sha256(h, buf, o);
    pl_wipe(buf, sizeof buf);
    uint64_t x = 0; /* the first 40 bits, big-endian */
    for (int i = 0; i < 5; i++) x = x << 8 | h[i];
    size_t k = 0;
    for (int i = 0; i < 8; i++) {
        if (i == 4) out[k++] = '-';
        out[k++] = pl__nm_crockford[(x >> (35 - 5 * i)) & 31u];
    }
    out[k] = '\0';
}
