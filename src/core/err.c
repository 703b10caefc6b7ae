/* SPDX-License-Identifier: Apache-2.0 */
#include "core/internal.h"

#include <openssl/crypto.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>

const char *pl_strerror(pl_err err) {
    switch (err) {
#define PL__ERR_MSG(name, value, msg) \
    case name: return msg;
        PL_ERRORS(PL__ERR_MSG)
#undef PL__ERR_MSG
    }
    return "unknown error";
}

const char *pl_errname(pl_err err) {
    switch (err) {
#define PL__ERR_NAME(name, value, msg) \
    case name: return #name;
        PL_ERRORS(PL__ERR_NAME)
#undef PL__ERR_NAME
    }
    return "PL_ERR_UNKNOWN";
}

static _Thread_local long last_detail;

void pl__set_detail(long detail) { last_detail = detail; }
long pl_last_detail(void) { return last_detail; }

static void default_misuse(const char *what) {
    fprintf(stderr, "pairlink: API misuse: %s\n", what);
}

static pl_misuse_fn misuse_fn = default_misuse;

void pl_set_misuse_handler(pl_misuse_fn fn) { misuse_fn = fn ? fn : default_misuse; }

_Noreturn void pl__misuse(const char *what, const char *file, int line) {
    char buf[512];
    snprintf(buf, sizeof buf, "%s (%s:%d)", what, file, line);
    misuse_fn(buf);
    abort();
}

pl_err pl_init(void) {
    /* sodium_init is itself idempotent and thread-safe; -1 means failure. */
    if (sodium_init() < 0) return PL_ERR_CRYPTO;
    if (OPENSSL_init_crypto(0, NULL) != 1) return PL_ERR_CRYPTO;
    /* libcrypto loads its provider at the first digest (about 1 ms): here,
     * rather than in the middle of the first handshake or request. */
    uint8_t h[PL_SHA256_BYTES];
    pl_sha256(h, h, 0);
    return PL_OK;
}

void pl_free(void *p) { free(p); }

void pl_free_secret(void *p, size_t len) {
    if (!p) return;
    sodium_memzero(p, len);
    free(p);
}

bool pl__utf8_valid(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0) lo = 0xA0; /* overlong */
            if (c == 0xED) hi = 0x9F; /* surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0) lo = 0x90; /* overlong */
            if (c == 0xF4) hi = 0x8F; /* above U+10FFFF */
        } else {
            return false;
        }
        if (n - i - 1 < need) return false;
        if (s[i + 1] < lo || s[i + 1] > hi) return false;
        for (size_t k = 2; k <= need; k++)
            if ((s[i + k] & 0xC0) != 0x80) return false;
        i += need + 1;
    }
    return true;
}
