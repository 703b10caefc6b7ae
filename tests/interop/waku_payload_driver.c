/* SPDX-License-Identifier: Apache-2.0 */
/* The C half of the Waku payload v1 / HELLO interop (tests/interop/waku_payload.sh).
 *
 *   interop_waku_payload_driver open < js_cases.jsonl
 *       opens every case sealed by @waku/message-encryption (interop/waku-payload.mjs
 *       gen): the payload must come out byte for byte, a HELLO must decode to the
 *       JS fields and re-encode to the same body, and the tampered copy must be
 *       refused with PL_ERR_DECRYPT.
 *   interop_waku_payload_driver seal --seed N --rounds N --out FILE
 *       writes seeded cases sealed by pairlink for the JS side to open.
 *
 * stdout ends with "RESULT lines=L failures=F". Exit 0 only if all passed,
 * 1 on any failure, 2 on bad usage. The input is untrusted: lines and fields
 * are bounded and type-checked; a malformed line is a failure, never a crash. */
#include "pairlink/codec.h"
#include "pairlink/common.h"
#include "pairlink/hash.h"
#include "pairlink/nm_pairing.h"
#include "pairlink/waku_payload.h"
#include "support/support.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LINE (1u << 20)
#define MAX_REPORT 10

static unsigned long failures;

static void fail(unsigned long line, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(unsigned long line, const char *fmt, ...) {
    failures++;
    if (failures > MAX_REPORT) return;
    fprintf(stderr, "FAIL JS->C line %lu: ", line);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* Hex field of at most `max` bytes into a malloc'd buffer; NULL if absent or bad. */
static uint8_t *hex_field(json_t *o, const char *name, size_t max, size_t *len) {
    const char *s = json_string_value(json_object_get(o, name));
    *len = 0;
    if (!s) return NULL;
    size_t sl = strlen(s);
    if (sl / 2 > max) return NULL;
    uint8_t *b = malloc(sl / 2 + 1);
    if (!b) return NULL;
    if (pl_hex_decode(b, sl / 2 + 1, len, s, sl) != PL_OK) {
        free(b);
        return NULL;
    }
    return b;
}

static bool hello_matches(const pl_nm_hello *h, json_t *j) {
    json_t *role = json_object_get(j, "role");
    const char *id = json_string_value(json_object_get(j, "identity"));
    const char *created = json_string_value(json_object_get(j, "created_at_ms"));
    const char *nonce = json_string_value(json_object_get(j, "nonce"));
    const char *echo = json_string_value(json_object_get(j, "echo"));
    const char *name = json_string_value(json_object_get(j, "name"));
    if (!json_is_integer(role) || !id || !created || !nonce || !echo || !name) return false;
    char buf[PL_HEX_SIZE(32)];
    char num[32];
    snprintf(num, sizeof num, "%" PRIu64, h->created_at_ms);
    if (json_integer_value(role) != (json_int_t)h->role || strcmp(num, created) != 0 ||
        strcmp(name, h->name) != 0)
        return false;
    if (pl_hex_encode(buf, sizeof buf, h->identity, 32) != PL_OK || strcmp(buf, id) != 0) return false;
    if (pl_hex_encode(buf, sizeof buf, h->nonce, 16) != PL_OK || strcmp(buf, nonce) != 0) return false;
    if (pl_hex_encode(buf, sizeof buf, h->echo, 16) != PL_OK || strcmp(buf, echo) != 0) return false;
    return true;
}

static void check_case(unsigned long ln, json_t *c) {
    const char *kind = json_string_value(json_object_get(c, "kind"));
    size_t kl, pl, wl, tl;
    uint8_t *key = hex_field(c, "key", 32, &kl);
    uint8_t *payload = hex_field(c, "payload", PL_WAKU_MESSAGE_MAX, &pl);
    uint8_t *wire = hex_field(c, "wire", PL_WAKU_MESSAGE_MAX, &wl);
    uint8_t *tampered = hex_field(c, "tampered", PL_WAKU_MESSAGE_MAX, &tl);
    uint8_t *out = malloc(PL_WAKU_MESSAGE_MAX);
    if (!kind || !key || kl != 32 || !payload || !wire || !tampered || !out) {
        fail(ln, "malformed case");
        goto done;
    }
    size_t ol = 0;
    pl_err e = pl_waku_v1_open(out, PL_WAKU_MESSAGE_MAX, &ol, key, wire, wl);
    if (e != PL_OK) {
        fail(ln, "%s: open failed: %s", kind, pl_errname(e));
        goto done;
    }
    if (ol != pl || memcmp(out, payload, pl) != 0) {
        fail(ln, "%s: payload differs (%zu vs %zu bytes)", kind, ol, pl);
        goto done;
    }
    if (wl != pl_waku_v1_sealed_size(pl)) fail(ln, "%s: JS padded to %zu, pairlink to %zu", kind, wl, pl_waku_v1_sealed_size(pl));
    e = pl_waku_v1_open(out, PL_WAKU_MESSAGE_MAX, &ol, key, tampered, tl);
    if (e != PL_ERR_DECRYPT) fail(ln, "%s: tampered copy gave %s", kind, pl_errname(e));
    if (strcmp(kind, "hello") == 0) {
        pl_nm_hello h;
        e = pl_nm_hello_open(&h, key, wire, wl);
        if (e != PL_OK) {
            fail(ln, "hello: pl_nm_hello_open: %s", pl_errname(e));
            goto done;
        }
        if (!hello_matches(&h, json_object_get(c, "hello"))) fail(ln, "hello: fields differ");
        uint8_t body[PL_NM_HELLO_BODY_MAX];
        size_t bl;
        if (pl_nm_hello_encode(body, &bl, &h) != PL_OK || bl != pl || memcmp(body, payload, pl) != 0)
            fail(ln, "hello: re-encoding differs from the JS body");
    } else if (strcmp(kind, "raw") != 0) {
        fail(ln, "unknown kind %s", kind);
    }
done:
    free(key);
    free(payload);
    free(wire);
    free(tampered);
    free(out);
}

static int cmd_open(void) {
    char *line = malloc(MAX_LINE);
    if (!line) return 2;
    unsigned long ln = 0, lines = 0;
    long end_lines = -1;
    while (fgets(line, MAX_LINE, stdin)) {
        ln++;
        size_t n = strlen(line);
        if (n == MAX_LINE - 1 && line[n - 1] != '\n') {
            fail(ln, "line too long");
            int ch;
            while ((ch = getchar()) != EOF && ch != '\n') {
            }
            continue;
        }
        json_error_t err;
        json_t *c = json_loads(line, 0, &err);
        if (!json_is_object(c)) {
            fail(ln, "not a JSON object");
            json_decref(c);
            continue;
        }
        const char *kind = json_string_value(json_object_get(c, "kind"));
        if (kind && strcmp(kind, "end") == 0) {
            end_lines = (long)json_integer_value(json_object_get(c, "lines"));
        } else {
            lines++;
            check_case(ln, c);
        }
        json_decref(c);
    }
    free(line);
    if (end_lines < 0 || (unsigned long)end_lines != lines) fail(ln, "stream truncated (%lu lines, end says %ld)", lines, end_lines);
    printf("RESULT lines=%lu failures=%lu\n", lines, failures);
    return failures ? 1 : 0;
}

static const char *const names[] = {"", "Nimbus GUI", "Status node manager", "n\xc5\x93ud",
                                    "\xe3\x83\x8e\xe3\x83\xbc\xe3\x83\x89", "\xf0\x9f\x9a\x80 node"};

static int cmd_seal(uint64_t seed, unsigned long rounds, const char *path) {
    FILE *f = fopen(path, "w");
    if (!f) return 2;
    uint64_t st = seed ? seed : 1;
    static const size_t sizes[] = {0, 1, 2, 142, 253, 254, 255, 256, 257, 1000, 65535, 65536, 70000};
    uint8_t *payload = malloc(PL_WAKU_MESSAGE_MAX), *wire = malloc(PL_WAKU_MESSAGE_MAX);
    char *hexbuf = malloc(2 * PL_WAKU_MESSAGE_MAX + 1);
    if (!payload || !wire || !hexbuf) return 2;
    for (unsigned long i = 0; i < rounds; i++) {
        uint8_t key[32], ct[16];
        pl_test_rand_bytes(&st, key, sizeof key);
        pl_test_rand_bytes(&st, ct, sizeof ct);
        json_t *o = json_object();
        char kh[65], cth[33], topic[80];
        pl_hex_encode(kh, sizeof kh, key, 32);
        pl_hex_encode(cth, sizeof cth, ct, 16);
        snprintf(topic, sizeof topic, "/pairlink/1/pair-%s/proto", cth);
        json_object_set_new(o, "round", json_integer((json_int_t)i));
        json_object_set_new(o, "key", json_string(kh));
        json_object_set_new(o, "content_topic", json_string(topic));
        size_t pl, wl = 0;
        pl_err e;
        if (i % 3 == 2) {
            size_t nsz = i % 30 == 2 ? 13 : 10;
            pl = sizes[pl_test_rand(&st) % nsz];
            pl_test_rand_bytes(&st, payload, pl);
            e = pl_waku_v1_seal(wire, PL_WAKU_MESSAGE_MAX, &wl, key, payload, pl, NULL);
            json_object_set_new(o, "kind", json_string("raw"));
        } else {
            pl_nm_hello h;
            memset(&h, 0, sizeof h);
            h.role = (pl_nm_role)(1 + pl_test_rand(&st) % 2);
            uint8_t priv[32];
            pl_test_rand_bytes(&st, priv, 32);
            pl_x25519_public(h.identity, priv);
            h.created_at_ms = pl_test_rand(&st) >> 1;
            pl_test_rand_bytes(&st, h.nonce, 16);
            if (pl_test_rand(&st) & 1) pl_test_rand_bytes(&st, h.echo, 16);
            snprintf(h.name, sizeof h.name, "%s", names[pl_test_rand(&st) % (sizeof names / sizeof names[0])]);
            e = pl_nm_hello_encode(payload, &pl, &h);
            if (e == PL_OK) e = pl_nm_hello_seal(wire, key, &h, NULL);
            wl = PL_NM_HELLO_WIRE_BYTES;
            json_t *hj = json_object();
            char b[65], num[32];
            json_object_set_new(hj, "role", json_integer(h.role));
            pl_hex_encode(b, sizeof b, h.identity, 32);
            json_object_set_new(hj, "identity", json_string(b));
            snprintf(num, sizeof num, "%" PRIu64, h.created_at_ms);
            json_object_set_new(hj, "created_at_ms", json_string(num));
            pl_hex_encode(b, sizeof b, h.nonce, 16);
            json_object_set_new(hj, "nonce", json_string(b));
            pl_hex_encode(b, sizeof b, h.echo, 16);
            json_object_set_new(hj, "echo", json_string(b));
            json_object_set_new(hj, "name", json_string(h.name));
            json_object_set_new(o, "hello", hj);
            json_object_set_new(o, "kind", json_string("hello"));
        }
        if (e != PL_OK) {
            fprintf(stderr, "seal failed: %s\n", pl_errname(e));
            failures++;
        }
        pl_hex_encode(hexbuf, 2 * PL_WAKU_MESSAGE_MAX + 1, payload, pl);
        json_object_set_new(o, "payload", json_string(hexbuf));
        pl_hex_encode(hexbuf, 2 * PL_WAKU_MESSAGE_MAX + 1, wire, wl);
        json_object_set_new(o, "wire", json_string(hexbuf));
        wire[pl_test_rand(&st) % wl] ^= (uint8_t)(1u << (pl_test_rand(&st) % 8));
        pl_hex_encode(hexbuf, 2 * PL_WAKU_MESSAGE_MAX + 1, wire, wl);
        json_object_set_new(o, "tampered", json_string(hexbuf));
        char *s = json_dumps(o, JSON_COMPACT);
        fprintf(f, "%s\n", s);
        free(s);
        json_decref(o);
    }
    fprintf(f, "{\"kind\":\"end\",\"lines\":%lu}\n", rounds);
    free(payload);
    free(wire);
    free(hexbuf);
    if (fclose(f) != 0) return 2;
    printf("GENERATED lines=%lu errors=%lu\n", rounds, failures);
    return failures ? 1 : 0;
}

int main(int argc, char **argv) {
    if (pl_init() != PL_OK) return 2;
    if (argc >= 2 && strcmp(argv[1], "open") == 0) return cmd_open();
    if (argc >= 2 && strcmp(argv[1], "seal") == 0) {
        uint64_t seed = 1;
        unsigned long rounds = 100;
        const char *out = NULL;
        for (int i = 2; i + 1 < argc; i += 2) {
            if (strcmp(argv[i], "--seed") == 0) seed = strtoull(argv[i + 1], NULL, 10);
            else if (strcmp(argv[i], "--rounds") == 0) rounds = strtoul(argv[i + 1], NULL, 10);
            else if (strcmp(argv[i], "--out") == 0) out = argv[i + 1];
            else return 2;
        }
        if (!out || rounds > 1000000) return 2;
        return cmd_seal(seed, rounds, out);
    }
    fprintf(stderr, "usage: %s open < cases.jsonl | seal --seed N --rounds N --out FILE\n", argv[0]);
    return 2;
}
