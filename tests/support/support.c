/* SPDX-License-Identifier: Apache-2.0 */
#include "support/support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void die(const char *what, const char *detail) {
    fprintf(stderr, "test support: %s: %s\n", what, detail ? detail : "");
    abort();
}

json_t *pl_test_vectors(const char *name) {
    const char *dir = getenv("PL_SHARED_DIR");
    if (!dir || !*dir) dir = PL_SHARED_DIR;
    char path[4096];
    snprintf(path, sizeof path, "%s/vectors/%s", dir, name);
    json_error_t e;
    json_t *j = json_load_file(path, 0, &e);
    if (!j) die("cannot load vectors", path);
    return j;
}

static json_t *lookup(json_t *root, const char *path) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *cur = root;
    for (char *save = NULL, *tok = strtok_r(buf, ".", &save); tok; tok = strtok_r(NULL, ".", &save)) {
        if (json_is_array(cur)) cur = json_array_get(cur, (size_t)strtoul(tok, NULL, 10));
        else cur = json_object_get(cur, tok);
        if (!cur) die("missing vector field", path);
    }
    return cur;
}

const char *pl_test_str(json_t *root, const char *path) {
    json_t *v = lookup(root, path);
    if (!json_is_string(v)) die("vector field is not a string", path);
    return json_string_value(v);
}

uint8_t *pl_test_unhex(const char *hex, size_t *len) {
    size_t n = strlen(hex);
    if (n % 2) die("odd hex", hex);
    uint8_t *out = malloc(n / 2 + 1);
    if (!out) die("oom", NULL);
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1) die("bad hex", hex);
        out[i] = (uint8_t)v;
    }
    *len = n / 2;
    return out;
}

uint8_t *pl_test_hex(json_t *root, const char *path, uint8_t *out, size_t len) {
    size_t n;
    uint8_t *b = pl_test_unhex(pl_test_str(root, path), &n);
    if (n != len) die("vector hex has unexpected length", path);
    memcpy(out, b, n);
    free(b);
    return out;
}

uint64_t pl_test_seed(void) {
    const char *s = getenv("PL_TEST_SEED");
    uint64_t seed = s && *s ? strtoull(s, NULL, 0) : ((uint64_t)time(NULL) ^ (uint64_t)clock() << 20);
    if (!seed) seed = 1;
    fprintf(stderr, "PL_TEST_SEED=%llu\n", (unsigned long long)seed);
    return seed;
}

uint64_t pl_test_rand(uint64_t *st) {
    uint64_t x = *st;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *st = x;
    return x * 0x2545F4914F6CDD1DULL;
}

void pl_test_rand_bytes(uint64_t *st, uint8_t *out, size_t len) {
    for (size_t i = 0; i < len; i++) out[i] = (uint8_t)(pl_test_rand(st) >> 56);
}
