/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the WalletConnect envelope opener (pl_envelope_peek,
 * pl_envelope_open, pl_envelope_open_type1) and the seal/open round trip.
 *
 * Input: the base64 text of an envelope as the relay delivers it. The keys
 * are fixed: the symKey and receiver private key of the vectors
 * (/work/shared/vectors/walletconnect.json), so the vector envelopes in the
 * seed corpus open. Checks, besides "no crash, no leak, no UB":
 *  - peek, open with the key, open without a key and open_type1 agree on
 *    the outer layer (same error when it is bad, same type and sender key
 *    when it is good); errors are named envelope errors; out-parameters are
 *    cleared on failure;
 *  - with a key only types 0/1 open, without a key only type 2;
 *  - whatever opens re-seals (same type, sender key and IV, taken from the
 *    input) to exactly the input text, and that re-opens to the same
 *    plaintext: the encoding is unique, so the opener accepts no malleable
 *    variant of an envelope;
 *  - the input bytes as a plaintext, sealed as type 0, 1 and 2, open back to
 *    themselves. */
#include "pairlink/codec.h"
#include "pairlink/crypto.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* From the vectors: session_key.sym_key, x25519.b_priv, x25519.a_pub. */
static const char sym_key_hex[] = "0653ca620c7b4990392e1c53c4a51c14a2840cd20f0f1524cf435b17b6fe988c";
static const char b_priv_hex[] = "36bf507903537de91f5e573666eaa69b1fa313974f23b2b59645f20fea505854";
static const char a_pub_hex[] = "ff7a7d5767c362b0a17ad92299ebdb7831dcbd9a56959c01368c7404543b3342";
static uint8_t sym_key[32], b_priv[32], a_pub[32];

static void check(bool cond) {
    if (!cond) abort();
}

static bool zero(const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i]) return false;
    return true;
}

static bool outer_error(pl_err e) {
    return e == PL_ERR_BAD_BASE64 || e == PL_ERR_BAD_ENVELOPE || e == PL_ERR_ENVELOPE_TYPE ||
           e == PL_ERR_TOO_LARGE;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    check(pl_init() == PL_OK);
    check(pl_hex_decode_exact(sym_key, 32, sym_key_hex, 64) == PL_OK);
    check(pl_hex_decode_exact(b_priv, 32, b_priv_hex, 64) == PL_OK);
    check(pl_hex_decode_exact(a_pub, 32, a_pub_hex, 64) == PL_OK);
    return 0;
}

/* `msg` opened from `b64` with `key` (NULL for type 2): sealing it again
 * with the input's own IV must give back the input text byte for byte. */
static void reseal(const char *b64, size_t len, const pl_envelope_info *info, const uint8_t *key,
                   const uint8_t *msg, size_t msg_len) {
    size_t cap = len / 4 * 3 + 3, n = 0;
    uint8_t *raw = malloc(cap);
    check(raw != NULL);
    check(pl_base64_decode(raw, cap, &n, b64, len, PL_B64_STD) == PL_OK && n > 0);
    check(raw[0] == info->type);
    pl_envelope_params p = {info->type, NULL, NULL};
    if (info->type == 1) {
        check(n >= 1 + 32 + 12 + 16 && memcmp(raw + 1, info->sender_pub, 32) == 0);
        p.sender_pub = info->sender_pub;
        p.iv = raw + 1 + 32;
    } else if (info->type == 0) {
        check(n >= 1 + 12 + 16);
        p.iv = raw + 1;
    }
    char *again = NULL;
    check(pl_envelope_seal(&again, key, msg, msg_len, &p) == PL_OK);
    check(strlen(again) == len && memcmp(again, b64, len) == 0);
    free(raw);

    uint8_t *m2 = NULL;
    size_t l2 = 0;
    check(pl_envelope_open(&m2, &l2, NULL, key, again, len) == PL_OK);
    check(l2 == msg_len && memcmp(m2, msg, msg_len) == 0);
    pl_free_secret(m2, l2 + 1);
    pl_free(again);
}

static void open_input(const char *s, size_t size) {
    pl_envelope_info peek, info;
    memset(&peek, 0xAA, sizeof peek);
    pl_err ek = pl_envelope_peek(&peek, s, size);
    if (ek != PL_OK) {
        check(outer_error(ek) && zero(&peek, sizeof peek));
    } else {
        check(peek.type >= 0 && peek.type <= 2);
        if (peek.type != 1) check(zero(peek.sender_pub, sizeof peek.sender_pub));
    }

    /* With the symKey. */
    uint8_t *msg = (uint8_t *)1;
    size_t len = 1;
    memset(&info, 0xAA, sizeof info);
    pl_err e = pl_envelope_open(&msg, &len, &info, sym_key, s, size);
    if (e == PL_OK) {
        check(ek == PL_OK && peek.type != 2 && memcmp(&info, &peek, sizeof info) == 0);
        check(msg != NULL && msg[len] == 0 && len <= size);
        reseal(s, size, &info, sym_key, msg, len);
        pl_free_secret(msg, len + 1);
    } else {
        check(msg == NULL && len == 0 && zero(&info, sizeof info));
        if (ek != PL_OK) check(e == ek);
        else check(e == (peek.type == 2 ? PL_ERR_ENVELOPE_TYPE : PL_ERR_DECRYPT));
    }

    /* Without a key: type 2 only. */
    msg = (uint8_t *)1, len = 1;
    memset(&info, 0xAA, sizeof info);
    e = pl_envelope_open(&msg, &len, &info, NULL, s, size);
    if (e == PL_OK) {
        check(ek == PL_OK && peek.type == 2 && info.type == 2);
        check(msg != NULL && msg[len] == 0 && len <= size);
        reseal(s, size, &info, NULL, msg, len);
        pl_free_secret(msg, len + 1);
    } else {
        check(msg == NULL && len == 0 && zero(&info, sizeof info));
        check(ek != PL_OK ? e == ek : (peek.type != 2 && e == PL_ERR_ENVELOPE_TYPE));
    }

    /* Type 1 with the receiver's private key. */
    msg = (uint8_t *)1, len = 1;
    memset(&info, 0xAA, sizeof info);
    e = pl_envelope_open_type1(&msg, &len, &info, b_priv, s, size);
    if (e == PL_OK) {
        check(ek == PL_OK && peek.type == 1 && memcmp(&info, &peek, sizeof info) == 0);
        check(msg != NULL && msg[len] == 0);
        uint8_t k[32];
        check(pl_wc_session_key(k, b_priv, info.sender_pub) == PL_OK);
        reseal(s, size, &info, k, msg, len);
        pl_free_secret(msg, len + 1);
    } else {
        check(msg == NULL && len == 0 && zero(&info, sizeof info));
        if (ek != PL_OK) check(e == ek);
        else if (peek.type != 1) check(e == PL_ERR_ENVELOPE_TYPE);
        else check(e == PL_ERR_DECRYPT || e == PL_ERR_WEAK_KEY);
    }
}

/* The input as a plaintext: every type round-trips. */
static void seal_input(const uint8_t *data, size_t size) {
    static const uint8_t iv[12] = {0x71, 0x77, 0x65, 0x63, 0x66, 0x61, 0x61, 0x73, 0x64, 0x61, 0x64, 0x73};
    for (int type = 0; type <= 2; type++) {
        pl_envelope_params p = {type, type == 1 ? a_pub : NULL, iv};
        char *b64 = NULL;
        check(pl_envelope_seal(&b64, type == 2 ? NULL : sym_key, data, size, &p) == PL_OK);
        size_t bl = strlen(b64);
        uint8_t *msg = NULL;
        size_t len = 0;
        pl_envelope_info info;
        if (type == 1)
            check(pl_envelope_open_type1(&msg, &len, &info, b_priv, b64, bl) == PL_OK);
        else
            check(pl_envelope_open(&msg, &len, &info, type == 2 ? NULL : sym_key, b64, bl) == PL_OK);
        check(info.type == type && len == size && (size == 0 || memcmp(msg, data, size) == 0));
        pl_free_secret(msg, len + 1);
        pl_free(b64);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    open_input((const char *)data, size);
    if (size <= PL_ENVELOPE_MAX_MESSAGE) seal_input(data, size);
    return 0;
}
