/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the text and integer decoders of codec.h (hex, base64
 * in all four variants, base58btc, unsigned varints) and their round trips.
 *
 * Input: one selector byte, then the data. sel % 5 picks the decoder:
 *  0 hex, 1 base64 (variant (sel / 5) % 4), 2 base58btc, 3 uvarint,
 *  4 the encoders (the data as bytes; every codec, every base64 variant).
 * Output buffers are malloc'd at exactly the capacity passed, so ASan sees
 * any write past it. Checks, besides "no crash, no leak, no UB":
 *  - errors are the named ones, *out_len is 0 on failure;
 *  - pl_base64_decode and pl_base64_decode_public agree exactly (code,
 *    length, bytes), with room enough and with one byte too little, with
 *    the public decoder's SIMD blocks on and off;
 *  - pl_base64_encode_public (SIMD on and off, and in place) writes exactly
 *    what pl_base64_encode writes;
 *  - decoders are canonical: what decodes encodes back to the input (hex
 *    modulo case), so no two texts decode to the same bytes;
 *  - encoders round-trip: decode(encode(x)) == x. */
#include "pairlink/codec.h"

#include "core/internal.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool cond) {
    if (!cond) abort();
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    check(p != NULL);
    return p;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    check(pl_init() == PL_OK);
    return 0;
}

static void hex(const char *in, size_t len) {
    size_t cap = len / 2, n = 7;
    uint8_t *out = xmalloc(cap);
    pl_err e = pl_hex_decode(out, cap, &n, in, len);
    pl_err ex = pl_hex_decode_exact(out, cap, in, len);
    check(ex == e);
    if (e != PL_OK) {
        check(e == PL_ERR_BAD_HEX && n == 0);
    } else {
        check(n == cap);
        char *txt = xmalloc(PL_HEX_SIZE(n));
        check(pl_hex_encode(txt, PL_HEX_SIZE(n), out, n) == PL_OK && strlen(txt) == len);
        for (size_t i = 0; i < len; i++)
            check(txt[i] == tolower((unsigned char)in[i]));
        free(txt);
        if (cap) {
            n = 7;
            check(pl_hex_decode(out, cap - 1, &n, in, len) == PL_ERR_BUFFER_TOO_SMALL && n == 0);
        }
    }
    free(out);
}

/* Both base64 decoders into fresh buffers of `cap` bytes; they must agree. */
static pl_err b64_both(const char *in, size_t len, pl_b64_variant v, size_t cap, uint8_t **res,
                       size_t *res_len) {
    uint8_t *a = xmalloc(cap), *b = xmalloc(cap);
    size_t na = 7, nb = 9;
    pl_err ea = pl_base64_decode(a, cap, &na, in, len, v);
    for (int simd = 0; simd < 3; simd++) {
        pl__base64_simd_level(simd);
        nb = 9;
        pl_err eb = pl_base64_decode_public(b, cap, &nb, in, len, v);
        check(ea == eb && na == nb);
        if (ea == PL_OK) check(na <= cap && memcmp(a, b, na) == 0);
    }
    if (ea != PL_OK) check(na == 0 && (ea == PL_ERR_BAD_BASE64 || ea == PL_ERR_BUFFER_TOO_SMALL));
    free(b);
    *res = a;
    *res_len = na;
    return ea;
}

static void b64(const char *in, size_t len, pl_b64_variant v) {
    uint8_t *out;
    size_t n;
    pl_err e = b64_both(in, len, v, len / 4 * 3 + 3, &out, &n);
    if (e == PL_OK) {
        size_t tcap = pl_base64_encoded_size(n, v);
        char *txt = xmalloc(tcap);
        check(pl_base64_encode(txt, tcap, out, n, v) == PL_OK);
        check(strlen(txt) == len && memcmp(txt, in, len) == 0);
        free(txt);
    }
    free(out);
    if (e == PL_OK && n > 0) {
        /* One byte short: both refuse, with the same code. */
        check(b64_both(in, len, v, n - 1, &out, &n) == PL_ERR_BUFFER_TOO_SMALL);
        free(out);
    }
}

static void b58(const char *in, size_t len) {
    size_t cap = PL_BASE58_MAX_BYTES, n = 7;
    uint8_t *out = xmalloc(cap);
    pl_err e = pl_base58btc_decode(out, cap, &n, in, len);
    if (e != PL_OK) {
        check(n == 0 && (e == PL_ERR_BAD_BASE58 || e == PL_ERR_TOO_LARGE));
    } else {
        check(n <= cap);
        size_t tcap = len + 1;
        char *txt = xmalloc(tcap);
        check(pl_base58btc_encode(txt, tcap, out, n) == PL_OK);
        check(strlen(txt) == len && memcmp(txt, in, len) == 0);
        free(txt);
        if (n) {
            uint8_t *small = xmalloc(n - 1);
            size_t m = 7;
            check(pl_base58btc_decode(small, n - 1, &m, in, len) == PL_ERR_BUFFER_TOO_SMALL &&
                  m == 0);
            free(small);
        }
    }
    free(out);
}

static void uvarint(const uint8_t *in, size_t len) {
    uint64_t v = 7;
    size_t used = 7;
    pl_err e = pl_uvarint_decode(&v, &used, in, len);
    if (e == PL_OK) {
        check(used >= 1 && used <= len && used <= PL_UVARINT_MAX_BYTES);
        uint8_t buf[PL_UVARINT_MAX_BYTES];
        check(pl_uvarint_encode(buf, v) == used && memcmp(buf, in, used) == 0);
    } else {
        check(v == 0 && used == 0);
        /* Truncated means: every byte present asks for one more. */
        if (e == PL_ERR_TRUNCATED) {
            check(len < PL_UVARINT_MAX_BYTES);
            for (size_t i = 0; i < len; i++)
                check(in[i] & 0x80);
        } else {
            check(e == PL_ERR_BAD_VARINT);
        }
    }
}

static void encoders(const uint8_t *in, size_t len) {
    size_t n;
    char *txt = xmalloc(PL_HEX_SIZE(len));
    uint8_t *back = xmalloc(len + 3);
    check(pl_hex_encode(txt, PL_HEX_SIZE(len), in, len) == PL_OK);
    check(pl_hex_decode(back, len, &n, txt, 2 * len) == PL_OK && n == len);
    check(len == 0 || memcmp(back, in, len) == 0);
    free(txt);
    free(back);

    for (int v = 0; v < 4; v++) {
        size_t tcap = pl_base64_encoded_size(len, (pl_b64_variant)v);
        txt = xmalloc(tcap);
        check(pl_base64_encode(txt, tcap, in, len, (pl_b64_variant)v) == PL_OK);
        check(strlen(txt) == tcap - 1);
        check(pl_base64_encode(txt, tcap - 1, in, len, (pl_b64_variant)v) ==
              PL_ERR_BUFFER_TOO_SMALL);
        check(pl_base64_encode(txt, tcap, in, len, (pl_b64_variant)v) == PL_OK);
        char *pub = xmalloc(tcap);
        for (int simd = 0; simd < 3; simd++) {
            pl__base64_simd_level(simd);
            check(pl_base64_encode_public(pub, tcap, in, len, (pl_b64_variant)v) == PL_OK);
            check(memcmp(pub, txt, tcap) == 0);
            check(pl_base64_encode_public(pub, tcap - 1, in, len, (pl_b64_variant)v) ==
                  PL_ERR_BUFFER_TOO_SMALL);
            if (len) memcpy(pub + tcap - len, in, len);
            pl__base64_encode_public_tail(pub, len, (pl_b64_variant)v);
            check(memcmp(pub, txt, tcap) == 0);
        }
        free(pub);
        check(b64_both(txt, tcap - 1, (pl_b64_variant)v, len, &back, &n) == PL_OK && n == len);
        check(len == 0 || memcmp(back, in, len) == 0);
        free(back);
        free(txt);
    }

    if (len <= PL_BASE58_MAX_BYTES) {
        size_t tcap = len * 2 + 2; /* 1.37 characters per byte at most */
        txt = xmalloc(tcap);
        back = xmalloc(len);
        check(pl_base58btc_encode(txt, tcap, in, len) == PL_OK);
        check(pl_base58btc_decode(back, len, &n, txt, strlen(txt)) == PL_OK && n == len);
        check(len == 0 || memcmp(back, in, len) == 0);
        free(back);
        free(txt);
    } else {
        char small[8];
        check(pl_base58btc_encode(small, sizeof small, in, len) == PL_ERR_TOO_LARGE);
    }

    uint64_t v = 0, got;
    for (size_t i = 0; i < len && i < 8; i++)
        v = v << 8 | in[i];
    uint8_t buf[PL_UVARINT_MAX_BYTES];
    size_t w = pl_uvarint_encode(buf, v), used;
    check(w >= 1 && w <= PL_UVARINT_MAX_BYTES);
    check(pl_uvarint_decode(&got, &used, buf, w) == PL_OK && got == v && used == w);
    if (w > 1) check(pl_uvarint_decode(&got, &used, buf, w - 1) == PL_ERR_TRUNCATED);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    unsigned sel = data[0];
    const uint8_t *in = data + 1;
    size_t len = size - 1;
    switch (sel % 5) {
    case 0: hex((const char *)in, len); break;
    case 1: b64((const char *)in, len, (pl_b64_variant)((sel / 5) % 4)); break;
    case 2: b58((const char *)in, len); break;
    case 3: uvarint(in, len); break;
    default: encoders(in, len); break;
    }
    return 0;
}
