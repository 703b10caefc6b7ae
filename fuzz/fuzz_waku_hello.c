/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: Waku payload v1 (pl_waku_v1_open), node-manager HELLO
 * parsing (pl_nm_hello_decode, pl_nm_hello_open) and the typed pairing code
 * (pl_nm_code_parse).
 *
 * Input: any bytes; every parser sees all of them. The key is fixed (it
 * stands for both the Waku symmetric key and HS), so the seed HELLOs and
 * payloads sealed with it open. Checks, besides "no crash, no leak, no UB":
 *  - pl_waku_v1_open: errors are its documented codes, *out_len is 0 on
 *    failure; what opens re-seals (random IV and padding) and re-opens to
 *    the same payload; with a buffer one byte short it is
 *    PL_ERR_BUFFER_TOO_SMALL;
 *  - the layout parser behind the tag: the input as the padded plaintext,
 *    encrypted with the key (pl_aes256gcm_encrypt, IV appended), must open
 *    exactly as an independent reading of the layout says (flags & 4:
 *    SIGNED; width flags & 3 of 0 or past the end, or size past the end:
 *    WAKU_PAYLOAD; else the size bytes after the size field);
 *  - pl_nm_hello_decode: *h zeroed on failure, named errors; what decodes
 *    encodes to exactly the input (the body encoding is unique);
 *  - pl_nm_hello_open of the input, and of the input sealed as a Waku
 *    payload: the latter agrees exactly with pl_nm_hello_decode (same
 *    error, same struct), bodies too long for a HELLO being MALFORMED;
 *  - pl_nm_code_parse: code zeroed on failure, named errors; what parses
 *    formats to the canonical spelling of the input (separators dropped,
 *    upper case, I/L as 1, O as 0) and parses back to the same code.
 *
 * With PL_FUZZ_WRITE_SEEDS=DIR in the environment, the initializer writes
 * seeds made with the library: sealed HELLOs of both roles, HELLO bodies,
 * Waku payloads, formatted codes. */
#include "pairlink/nm_pairing.h"
#include "pairlink/waku_payload.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t key[32];

static void check(int cond) {
    if (!cond) abort();
}

static bool zero(const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i]) return false;
    return true;
}

static void waku_open(const uint8_t *data, size_t size) {
    size_t cap = size ? size : 1;
    uint8_t *out = malloc(cap);
    check(out != NULL);
    size_t len = 1;
    pl_err e = pl_waku_v1_open(out, cap, &len, key, data, size);
    if (e != PL_OK) {
        check(len == 0);
        check(e == PL_ERR_TOO_LARGE || e == PL_ERR_TRUNCATED || e == PL_ERR_DECRYPT ||
              e == PL_ERR_WAKU_PAYLOAD || e == PL_ERR_WAKU_SIGNED || e == PL_ERR_NOMEM);
        free(out);
        return;
    }
    check(len <= size - PL_WAKU_V1_OVERHEAD);
    if (len > 0) {
        size_t l2 = 1;
        check(pl_waku_v1_open(out, len - 1, &l2, key, data, size) == PL_ERR_BUFFER_TOO_SMALL && l2 == 0);
    }
    size_t sl = pl_waku_v1_sealed_size(len);
    check(sl > 0);
    uint8_t *wire = malloc(sl), *back = malloc(len ? len : 1);
    check(wire && back);
    size_t wl = 0, bl = 0;
    check(pl_waku_v1_seal(wire, sl, &wl, key, out, len, NULL) == PL_OK && wl == sl);
    check(pl_waku_v1_open(back, len, &bl, key, wire, wl) == PL_OK);
    check(bl == len && (len == 0 || memcmp(back, out, len) == 0));
    free(wire), free(back), free(out);
}

/* The input as the padded plaintext, under the key. */
static void waku_layout(const uint8_t *data, size_t size) {
    static const uint8_t iv[PL_WAKU_V1_IV_BYTES] = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2};
    size_t wl = size + PL_WAKU_V1_OVERHEAD;
    if (wl > PL_WAKU_MESSAGE_MAX) return;
    uint8_t *wire = malloc(wl), *out = malloc(size ? size : 1);
    check(wire && out);
    check(pl_aes256gcm_encrypt(wire, key, iv, NULL, 0, data, size) == PL_OK);
    memcpy(wire + size + PL_WAKU_V1_TAG_BYTES, iv, sizeof iv);
    size_t len = 1;
    pl_err e = pl_waku_v1_open(out, size, &len, key, wire, wl);

    pl_err want = PL_ERR_WAKU_PAYLOAD;
    size_t w = 0, n = 0;
    if (size >= 1 && (data[0] & PL_WAKU_V1_FLAG_SIGNED)) {
        want = PL_ERR_WAKU_SIGNED;
    } else if (size >= 1 && (w = data[0] & 3u) != 0 && 1 + w <= size) {
        for (size_t i = 0; i < w; i++) n |= (size_t)data[1 + i] << (8 * i);
        if (n <= size - 1 - w) want = PL_OK;
    }
    check(e == want);
    if (e == PL_OK) check(len == n && (n == 0 || memcmp(out, data + 1 + w, n) == 0));
    else check(len == 0);
    free(wire), free(out);
}

static bool hello_equal(const pl_nm_hello *a, const pl_nm_hello *b) {
    return a->role == b->role && !memcmp(a->identity, b->identity, sizeof a->identity) &&
           a->created_at_ms == b->created_at_ms && !memcmp(a->nonce, b->nonce, sizeof a->nonce) &&
           !memcmp(a->echo, b->echo, sizeof a->echo) && !strcmp(a->name, b->name);
}

static void check_hello(pl_err e, const pl_nm_hello *h) {
    if (e != PL_OK) {
        check(zero(h, sizeof *h));
        return;
    }
    check(h->role == PL_NM_ROLE_APP || h->role == PL_NM_ROLE_NODE_MANAGER);
    check(strlen(h->name) <= PL_NM_NAME_MAX);
}

static void hello(const uint8_t *data, size_t size) {
    pl_nm_hello h, h2;
    memset(&h, 0xa5, sizeof h);
    pl_err ed = pl_nm_hello_decode(&h, data, size);
    check(ed == PL_OK || ed == PL_ERR_HELLO_MALFORMED || ed == PL_ERR_BAD_UTF8 || ed == PL_ERR_WEAK_KEY);
    check_hello(ed, &h);
    if (ed == PL_OK) {
        uint8_t body[PL_NM_HELLO_BODY_MAX];
        size_t bl = 0;
        check(pl_nm_hello_encode(body, &bl, &h) == PL_OK);
        check(bl == size && memcmp(body, data, size) == 0);
        uint8_t wire[PL_NM_HELLO_WIRE_BYTES];
        check(pl_nm_hello_seal(wire, key, &h, NULL) == PL_OK);
        check(pl_nm_hello_open(&h2, key, wire, sizeof wire) == PL_OK && hello_equal(&h, &h2));
    }

    /* The input as a sealed HELLO. */
    memset(&h2, 0xa5, sizeof h2);
    pl_err eo = pl_nm_hello_open(&h2, key, data, size);
    check(eo == PL_OK || eo == PL_ERR_TOO_LARGE || eo == PL_ERR_TRUNCATED || eo == PL_ERR_DECRYPT ||
          eo == PL_ERR_WAKU_PAYLOAD || eo == PL_ERR_WAKU_SIGNED || eo == PL_ERR_HELLO_MALFORMED ||
          eo == PL_ERR_BAD_UTF8 || eo == PL_ERR_WEAK_KEY || eo == PL_ERR_NOMEM);
    check_hello(eo, &h2);

    /* The input as a HELLO body, sealed: open must agree with decode. */
    size_t sl = pl_waku_v1_sealed_size(size);
    if (sl == 0 || sl > PL_NM_HELLO_WIRE_MAX) return;
    uint8_t wire[PL_NM_HELLO_WIRE_MAX];
    size_t wl = 0;
    check(pl_waku_v1_seal(wire, sizeof wire, &wl, key, data, size, NULL) == PL_OK);
    memset(&h2, 0xa5, sizeof h2);
    eo = pl_nm_hello_open(&h2, key, wire, wl);
    check(eo == ed);
    check_hello(eo, &h2);
    if (eo == PL_OK) check(hello_equal(&h, &h2));
}

static void code(const uint8_t *data, size_t size) {
    uint8_t c[PL_NM_CODE_BYTES], c2[PL_NM_CODE_BYTES];
    memset(c, 0xa5, sizeof c);
    pl_err e = pl_nm_code_parse(c, (const char *)data, size);
    if (e != PL_OK) {
        check(e == PL_ERR_CODE_FORMAT || e == PL_ERR_CODE_CHECKSUM);
        check(zero(c, sizeof c));
        return;
    }
    check(size <= PL_NM_CODE_TEXT_MAX);
    char text[PL_NM_CODE_TEXT_SIZE], canon[PL_NM_CODE_TEXT_MAX + 1], formatted[PL_NM_CODE_TEXT_SIZE];
    pl_nm_code_format(text, c);
    check(strlen(text) == PL_NM_CODE_TEXT_SIZE - 1);
    size_t n = 0, m = 0;
    for (size_t i = 0; i < size; i++) {
        int ch = toupper(data[i]);
        if (ch == '-' || ch == ' ') continue;
        canon[n++] = (char)(ch == 'I' || ch == 'L' ? '1' : ch == 'O' ? '0' : ch);
    }
    for (size_t i = 0; text[i]; i++)
        if (text[i] != '-') formatted[m++] = text[i];
    check(n == m && memcmp(canon, formatted, n) == 0);
    check(pl_nm_code_parse(c2, text, strlen(text)) == PL_OK && memcmp(c, c2, sizeof c) == 0);
}

/* ---- seeds ---- */

static void write_seed(const char *dir, const char *name, const void *b, size_t n) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(b, 1, n, f);
    fclose(f);
}

static void write_seeds(const char *dir) {
    uint8_t priv[32], pub[32];
    for (int i = 0; i < 32; i++) priv[i] = (uint8_t)(0x40 + i);
    pl_x25519_public(pub, priv);
    pl_nm_hello h = {.role = PL_NM_ROLE_NODE_MANAGER, .created_at_ms = UINT64_C(1700000000000)};
    memcpy(h.identity, pub, 32);
    memset(h.nonce, 0x11, sizeof h.nonce);
    strcpy(h.name, "node manager \xc3\xa9");
    uint8_t wire[PL_NM_HELLO_WIRE_BYTES], body[PL_NM_HELLO_BODY_MAX];
    size_t bl = 0;
    check(pl_nm_hello_seal(wire, key, &h, NULL) == PL_OK);
    write_seed(dir, "seed-hello-node-manager", wire, sizeof wire);
    check(pl_nm_hello_encode(body, &bl, &h) == PL_OK);
    write_seed(dir, "seed-body-node-manager", body, bl);

    h.role = PL_NM_ROLE_APP;
    memset(h.echo, 0x11, sizeof h.echo);
    memset(h.nonce, 0x22, sizeof h.nonce);
    h.name[0] = '\0';
    check(pl_nm_hello_seal(wire, key, &h, NULL) == PL_OK);
    write_seed(dir, "seed-hello-app", wire, sizeof wire);
    check(pl_nm_hello_encode(body, &bl, &h) == PL_OK);
    write_seed(dir, "seed-body-app", body, bl);

    static const uint8_t msg[] = "a Waku payload";
    uint8_t w[600];
    size_t wl = 0;
    check(pl_waku_v1_seal(w, sizeof w, &wl, key, msg, sizeof msg - 1, NULL) == PL_OK);
    write_seed(dir, "seed-waku-payload", w, wl);
    check(pl_waku_v1_seal(w, sizeof w, &wl, key, NULL, 0, NULL) == PL_OK);
    write_seed(dir, "seed-waku-empty", w, wl);
    /* A plaintext layout: flags 2 (two size bytes), size 3, payload, padding. */
    static const uint8_t layout[] = {0x02, 0x03, 0x00, 'a', 'b', 'c', 0xee, 0xee};
    write_seed(dir, "seed-layout", layout, sizeof layout);

    uint8_t c[PL_NM_CODE_BYTES];
    char text[PL_NM_CODE_TEXT_SIZE];
    for (int i = 0; i < 8; i++) c[i] = (uint8_t)(0x9e * i + 1);
    pl_nm_code_format(text, c);
    write_seed(dir, "seed-code", text, strlen(text));
    for (char *p = text; *p; p++) *p = (char)tolower(*p);
    write_seed(dir, "seed-code-lower", text, strlen(text));
    memset(c, 0xff, sizeof c);
    pl_nm_code_format(text, c);
    write_seed(dir, "seed-code-max", text, strlen(text));
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    if (pl_init() != PL_OK) abort();
    for (int i = 0; i < 32; i++) key[i] = (uint8_t)(0xc0 ^ i);
    const char *dir = getenv("PL_FUZZ_WRITE_SEEDS");
    if (dir) write_seeds(dir);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    waku_open(data, size);
    waku_layout(data, size);
    hello(data, size);
    code(data, size);
    return 0;
}
