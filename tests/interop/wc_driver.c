/* SPDX-License-Identifier: Apache-2.0 */
/* The C half of the WalletConnect interop rounds (tests/interop/wc_rounds.sh).
 *
 * Reads JSON-lines cases made by interop/wc-rounds.mjs with the pinned JS SDK
 * from stdin and checks them with pairlink: URIs parse to the JS fields and
 * format back byte for byte, envelopes open (and reseal to the same bytes
 * with the same iv), JWTs verify with the right aud and time and fail with
 * the wrong ones, and every tampered case gets the named error. Then writes
 * its own seeded cases (URIs, envelopes, JWTs made by pairlink) to --out for
 * the JS side to check.
 *
 *   interop_wc_driver [--seed N] [--rounds N] [--out FILE] [--report N] < js_cases.jsonl
 *
 * stdout ends with "RESULT rounds=R lines=L failures=F" (JS->C) and, when
 * cases were written, "GENERATED rounds=N lines=L errors=E" (E: pairlink
 * calls that failed while making them). Exit 0 only if every line was read
 * and passed and nothing failed; 1 on any failure; 2 on bad usage.
 *
 * The input is untrusted: lines are bounded, every field is type-checked
 * before use, and a malformed line is a reported failure, never a crash. */
#include "pairlink/codec.h"
#include "pairlink/common.h"
#include "pairlink/crypto.h"
#include "pairlink/hash.h"
#include "pairlink/jsonrpc.h"
#include "pairlink/uri.h"
#include "support/support.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LINE (2u << 20) /* longest accepted case line */
#define MAX_ROUND 100000000
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static unsigned long max_report = 10; /* failures printed in full (--report) */

/* ------------------------------------------------------------------ report */

typedef struct drv {
    unsigned long line_no; /* physical line being read */
    unsigned long lines;   /* case lines (the end line excluded) */
    unsigned long failures;
    unsigned long rounds_seen;
    unsigned long rounds_failed;
    int64_t cur_round;
    bool cur_failed;
    bool end_seen;
    const char *kind; /* of the case being checked, for messages */
} drv;

static void fail(drv *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(drv *d, const char *fmt, ...) {
    d->failures++;
    d->cur_failed = true;
    if (d->failures > max_report) return;
    fprintf(stderr, "FAIL JS->C line %lu round %" PRId64 " (%s): ", d->line_no, d->cur_round,
            d->kind ? d->kind : "?");
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* A bounded, escaped excerpt of bytes for messages. */
static const char *excerpt(char *buf, size_t cap, const void *p, size_t len, size_t from) {
    const unsigned char *s = p;
    size_t o = 0;
    if (from > len) from = len;
    for (size_t i = from; i < len && o + 5 < cap; i++) {
        if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\\')
            buf[o++] = (char)s[i];
        else
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", s[i]);
    }
    buf[o < cap ? o : cap - 1] = '\0';
    return buf;
}

static bool expect_bytes(drv *d, const char *what, const void *got, size_t glen, const void *want,
                         size_t wlen) {
    if (glen == wlen && (glen == 0 || memcmp(got, want, glen) == 0)) return true;
    size_t at = 0;
    const unsigned char *g = got, *w = want;
    while (at < glen && at < wlen && g[at] == w[at])
        at++;
    size_t from = at > 16 ? at - 16 : 0;
    char b1[256], b2[256];
    fail(d, "%s differs at byte %zu (C %zu bytes, JS %zu bytes)\n    C : ...%s\n    JS: ...%s",
         what, at, glen, wlen, excerpt(b1, 200, got, glen, from),
         excerpt(b2, 200, want, wlen, from));
    return false;
}

static bool expect_str(drv *d, const char *what, const char *got, const char *want, size_t wlen) {
    if (!got) {
        fail(d, "%s: C has none", what);
        return false;
    }
    return expect_bytes(d, what, got, strlen(got), want, wlen);
}

static bool expect_err(drv *d, const char *what, pl_err got, pl_err want) {
    if (got == want) return true;
    fail(d, "%s: got %s, want %s", what, pl_errname(got), pl_errname(want));
    return false;
}

static bool expect_i64(drv *d, const char *what, int64_t got, int64_t want) {
    if (got == want) return true;
    fail(d, "%s: C %" PRId64 ", JS %" PRId64, what, got, want);
    return false;
}

/* ----------------------------------------------------------- case fields */

static const char *get_str(json_t *o, const char *k, size_t *len) {
    json_t *v = json_object_get(o, k);
    if (!json_is_string(v)) return NULL;
    if (len) *len = json_string_length(v);
    return json_string_value(v);
}

/* A C string field: no embedded NUL. */
static const char *get_cstr(json_t *o, const char *k, size_t *len) {
    size_t n = 0;
    const char *s = get_str(o, k, &n);
    if (!s || strlen(s) != n) return NULL;
    if (len) *len = n;
    return s;
}

static bool get_int(json_t *o, const char *k, int64_t *out) {
    json_t *v = json_object_get(o, k);
    if (!json_is_integer(v)) return false;
    *out = json_integer_value(v);
    return true;
}

static bool get_hex(json_t *o, const char *k, uint8_t *out, size_t n) {
    size_t len = 0;
    const char *s = get_str(o, k, &len);
    return s && pl_hex_decode_exact(out, n, s, len) == PL_OK;
}

#define NEED(cond, field)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fail(d, "malformed case: field %s", field);                                            \
            return;                                                                                \
        }                                                                                          \
    } while (0)

/* ------------------------------------------------------------- JS -> C */

static void check_uri(drv *d, json_t *c) {
    size_t ulen = 0, clen = 0, tlen = 0, rplen = 0;
    const char *uri = get_str(c, "uri", &ulen);
    const char *canon = get_str(c, "canonical", &clen);
    const char *topic = get_str(c, "topic", &tlen);
    const char *rp = get_str(c, "relay_protocol", &rplen);
    json_t *rd = json_object_get(c, "relay_data");
    json_t *methods = json_object_get(c, "methods");
    uint8_t key[PL_SYMKEY_BYTES];
    int64_t expiry = 0;
    NEED(uri, "uri");
    NEED(canon, "canonical");
    NEED(topic, "topic");
    NEED(rp, "relay_protocol");
    NEED(json_is_null(rd) || json_is_string(rd), "relay_data");
    NEED(json_is_array(methods), "methods");
    NEED(get_hex(c, "symKey", key, sizeof key), "symKey");
    NEED(get_int(c, "expiry", &expiry) && expiry >= 0 && expiry < INT64_MAX, "expiry");

    pl_uri u;
    pl_err e = pl_uri_parse(&u, uri, ulen, -1);
    if (e != PL_OK) {
        char b[256];
        fail(d, "pl_uri_parse: %s on %s", pl_errname(e), excerpt(b, 200, uri, ulen, 0));
        pl_uri_clear(&u);
        return;
    }
    expect_str(d, "topic", u.topic, topic, tlen);
    expect_i64(d, "version", u.version, 2);
    if (!pl_ct_equal(u.sym_key, key, sizeof key)) fail(d, "symKey differs");
    expect_str(d, "relay-protocol", u.relay_protocol, rp, rplen);
    if (json_is_null(rd)) {
        if (u.relay_data) fail(d, "relay-data: C has one, JS has none");
    } else {
        expect_str(d, "relay-data", u.relay_data, json_string_value(rd), json_string_length(rd));
    }
    expect_i64(d, "expiryTimestamp", u.expiry, expiry);
    if (expect_i64(d, "number of methods", (int64_t)u.n_methods,
                   (int64_t)json_array_size(methods))) {
        for (size_t i = 0; i < u.n_methods; i++) {
            json_t *m = json_array_get(methods, i);
            if (!json_is_string(m)) {
                fail(d, "malformed case: methods[%zu]", i);
                break;
            }
            expect_str(d, "method", u.methods[i], json_string_value(m), json_string_length(m));
        }
    }
    char *out = NULL;
    e = pl_uri_format(&out, &u);
    if (expect_err(d, "pl_uri_format", e, PL_OK)) {
        expect_str(d, "pl_uri_format vs JS formatUri", out, canon, clen);
    }
    pl_free(out);
    pl_uri_clear(&u);

    if (expiry > 0) {
        /* Expired at the expiry second itself; valid one second before. */
        e = pl_uri_parse(&u, uri, ulen, expiry);
        pl_uri_clear(&u);
        expect_err(d, "parse at now = expiryTimestamp", e, PL_ERR_URI_EXPIRED);
        e = pl_uri_parse(&u, uri, ulen, expiry - 1);
        pl_uri_clear(&u);
        expect_err(d, "parse at now = expiryTimestamp - 1", e, PL_OK);
    }
}

static void check_uri_bad(drv *d, json_t *c) {
    size_t ulen = 0;
    const char *uri = get_str(c, "uri", &ulen);
    const char *want = get_cstr(c, "expect", NULL);
    int64_t now = 0;
    NEED(uri, "uri");
    NEED(want, "expect");
    NEED(get_int(c, "now", &now), "now");
    pl_uri u;
    pl_err e = pl_uri_parse(&u, uri, ulen, now);
    pl_uri_clear(&u);
    if (strcmp(pl_errname(e), want) != 0) {
        char b[256];
        fail(d, "pl_uri_parse: got %s, want %s, on %s", pl_errname(e), want,
             excerpt(b, 200, uri, ulen, 0));
    }
}

static int rpc_kind_of(const char *s) {
    if (!s) return -1;
    if (!strcmp(s, "request")) return PL_RPC_REQUEST;
    if (!strcmp(s, "result")) return PL_RPC_RESULT;
    if (!strcmp(s, "error")) return PL_RPC_ERROR;
    return -1;
}

/* JSON text from the C codec against the value JS put in the case. */
static void expect_json(drv *d, const char *what, const char *text, json_t *want) {
    if (!want) {
        if (text) fail(d, "%s: C has %.80s, JS has none", what, text);
        return;
    }
    if (!text) {
        fail(d, "%s: C has none", what);
        return;
    }
    json_error_t err;
    json_t *got = json_loads(text, JSON_DECODE_ANY, &err);
    if (!got) {
        fail(d, "%s: C's JSON text does not parse: %s", what, err.text);
        return;
    }
    if (!json_equal(got, want)) {
        char *w = json_dumps(want, JSON_COMPACT | JSON_ENCODE_ANY);
        fail(d, "%s differs\n    C : %.200s\n    JS: %.200s", what, text, w ? w : "?");
        free(w);
    }
    json_decref(got);
}

static void check_rpc(drv *d, json_t *rpc, const uint8_t *text, size_t len) {
    json_t *want = json_object_get(rpc, "msgs");
    json_t *batch = json_object_get(rpc, "batch");
    NEED(json_is_array(want) && json_is_boolean(batch), "rpc");
    pl_rpc_msg *msgs = NULL;
    size_t n = 0;
    bool is_batch = false;
    pl_err e = pl_rpc_decode(&msgs, &n, &is_batch, (const char *)text, len);
    if (!expect_err(d, "pl_rpc_decode", e, PL_OK)) return;
    if (is_batch != json_is_true(batch)) fail(d, "JSON-RPC batch flag: C %d", (int)is_batch);
    if (!expect_i64(d, "JSON-RPC message count", (int64_t)n, (int64_t)json_array_size(want))) {
        pl_rpc_msgs_free(msgs, n);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const pl_rpc_msg *m = &msgs[i];
        json_t *w = json_array_get(want, i);
        json_t *id = json_object_get(w, "id");
        const char *t = get_cstr(id, "t", NULL);
        size_t vlen = 0;
        const char *v = get_cstr(id, "v", &vlen);
        int kind = rpc_kind_of(get_cstr(w, "kind", NULL));
        if (!t || !v || kind < 0) {
            fail(d, "malformed case: rpc.msgs[%zu]", i);
            break;
        }
        expect_i64(d, "JSON-RPC kind", m->kind, kind);
        if (!strcmp(t, "num")) {
            char num[32];
            snprintf(num, sizeof num, "%" PRId64, m->id.num);
            if (m->id.kind != PL_RPC_ID_NUM)
                fail(d, "id kind %d, want number %s", (int)m->id.kind, v);
            else
                expect_str(d, "numeric id", num, v, vlen);
        } else if (!strcmp(t, "str")) {
            if (m->id.kind != PL_RPC_ID_STR)
                fail(d, "id kind %d, want string %s", (int)m->id.kind, v);
            else
                expect_str(d, "string id", m->id.str, v, vlen);
        } else if (m->id.kind != PL_RPC_ID_NULL) {
            fail(d, "id kind %d, want null", (int)m->id.kind);
        }
        if ((int)m->kind != kind) continue;
        if (kind == PL_RPC_REQUEST) {
            size_t ml = 0;
            const char *method = get_cstr(w, "method", &ml);
            if (!method)
                fail(d, "malformed case: method");
            else
                expect_str(d, "method", m->method, method, ml);
            expect_json(d, "params", m->params, json_object_get(w, "params"));
        } else if (kind == PL_RPC_RESULT) {
            expect_json(d, "result", m->result, json_object_get(w, "result"));
        } else {
            int64_t code = 0;
            size_t ml = 0;
            const char *msg = get_cstr(w, "message", &ml);
            if (!get_int(w, "code", &code) || !msg) {
                fail(d, "malformed case: error");
                continue;
            }
            expect_i64(d, "error code", m->err_code, code);
            expect_str(d, "error message", m->err_message, msg, ml);
            expect_json(d, "error data", m->err_data, json_object_get(w, "data"));
        }
    }
    pl_rpc_msgs_free(msgs, n);
}

static void check_env(drv *d, json_t *c) {
    int64_t type = -1;
    size_t blen = 0, mlen = 0, tlen = 0;
    const char *b64 = get_str(c, "envelope", &blen);
    const char *msg = get_str(c, "message", &mlen);
    const char *topic = get_str(c, "topic", &tlen);
    uint8_t key[PL_SYMKEY_BYTES], iv[PL_IV_BYTES];
    uint8_t spriv[PL_X25519_BYTES], spub[PL_X25519_BYTES], rpriv[PL_X25519_BYTES],
        rpub[PL_X25519_BYTES];
    NEED(get_int(c, "type", &type) && type >= 0 && type <= 2, "type");
    NEED(b64, "envelope");
    NEED(msg, "message");
    NEED(get_hex(c, "iv", iv, sizeof iv), "iv");
    if (type != 2) {
        NEED(get_hex(c, "symKey", key, sizeof key), "symKey");
        NEED(topic, "topic");
    }
    if (type == 1) {
        NEED(get_hex(c, "senderPriv", spriv, sizeof spriv), "senderPriv");
        NEED(get_hex(c, "senderPub", spub, sizeof spub), "senderPub");
        NEED(get_hex(c, "receiverPriv", rpriv, sizeof rpriv), "receiverPriv");
        NEED(get_hex(c, "receiverPub", rpub, sizeof rpub), "receiverPub");
    }

    pl_envelope_info info;
    pl_err e = pl_envelope_peek(&info, b64, blen);
    if (!expect_err(d, "pl_envelope_peek", e, PL_OK)) return;
    expect_i64(d, "envelope type", info.type, type);
    if (type == 1) expect_bytes(d, "type 1 sender key", info.sender_pub, 32, spub, 32);

    uint8_t *m = NULL;
    size_t ml = 0;
    if (type == 1) {
        uint8_t k[PL_SYMKEY_BYTES], pub[PL_X25519_BYTES];
        pl_x25519_public(pub, rpriv);
        expect_bytes(d, "X25519 public of receiverPriv", pub, 32, rpub, 32);
        pl_x25519_public(pub, spriv);
        expect_bytes(d, "X25519 public of senderPriv", pub, 32, spub, 32);
        e = pl_wc_session_key(k, rpriv, spub);
        if (expect_err(d, "pl_wc_session_key (receiver)", e, PL_OK) &&
            !pl_ct_equal(k, key, sizeof k))
            fail(d, "session key (receiver side) differs from JS deriveSymKey");
        e = pl_wc_session_key(k, spriv, rpub);
        if (expect_err(d, "pl_wc_session_key (sender)", e, PL_OK) && !pl_ct_equal(k, key, sizeof k))
            fail(d, "session key (sender side) differs from JS deriveSymKey");
        pl_wipe(k, sizeof k);
        e = pl_envelope_open_type1(&m, &ml, &info, rpriv, b64, blen);
        if (expect_err(d, "pl_envelope_open_type1", e, PL_OK))
            expect_bytes(d, "type 1 message (receiver key)", m, ml, msg, mlen);
        pl_free(m);
        m = NULL;
    }
    e = pl_envelope_open(&m, &ml, &info, type == 2 ? NULL : key, b64, blen);
    if (expect_err(d, "pl_envelope_open", e, PL_OK) && !m) {
        fail(d, "pl_envelope_open returned PL_OK and no message");
    } else if (e == PL_OK) {
        expect_bytes(d, "message", m, ml, msg, mlen);
        if (m[ml] != '\0') fail(d, "opened message lacks the trailing NUL");
        json_t *rpc = json_object_get(c, "rpc");
        if (rpc) check_rpc(d, rpc, m, ml);
    }
    pl_free(m);

    /* Same key, iv and plaintext must give the very same envelope. */
    pl_envelope_params p = {.type = (int)type, .sender_pub = type == 1 ? spub : NULL, .iv = iv};
    char *sealed = NULL;
    e = pl_envelope_seal(&sealed, type == 2 ? NULL : key, (const uint8_t *)msg, mlen, &p);
    if (expect_err(d, "pl_envelope_seal", e, PL_OK))
        expect_str(d, "pl_envelope_seal with the JS iv vs JS encrypt", sealed, b64, blen);
    pl_free(sealed);

    if (type != 2) {
        char t[PL_TOPIC_HEX_SIZE];
        pl_wc_topic(t, key);
        expect_str(d, "topic = sha256(symKey)", t, topic, tlen);
    }
}

static void check_env_bad(drv *d, json_t *c) {
    int64_t type = -1, index = -1;
    size_t blen = 0;
    const char *b64 = get_str(c, "envelope", &blen);
    uint8_t key[PL_SYMKEY_BYTES], rpriv[PL_X25519_BYTES];
    NEED(get_int(c, "type", &type) && (type == 0 || type == 1), "type");
    NEED(get_int(c, "index", &index), "index");
    NEED(b64, "envelope");
    NEED(get_hex(c, "symKey", key, sizeof key), "symKey");
    if (type == 1) NEED(get_hex(c, "receiverPriv", rpriv, sizeof rpriv), "receiverPriv");

    uint8_t *m = NULL;
    size_t ml = 0;
    pl_envelope_info info;
    pl_err e;
    /* A type 1 receiver derives the key from the sender key inside, so a
     * flipped sender key must fail too; a type 0 receiver holds the key. */
    if (type == 1)
        e = pl_envelope_open_type1(&m, &ml, &info, rpriv, b64, blen);
    else
        e = pl_envelope_open(&m, &ml, &info, key, b64, blen);
    if (e == PL_OK) {
        fail(d,
             "a type %" PRId64 " envelope with a flipped bit at byte %" PRId64
             " opened (as type %d)",
             type, index, info.type);
    } else if (m || ml) {
        fail(d, "failed open left output behind (%s)", pl_errname(e));
    }
    pl_free(m);
}

static void check_jwt(drv *d, json_t *c) {
    size_t jlen = 0, isslen = 0, sublen = 0, audlen = 0;
    const char *jwt = get_str(c, "jwt", &jlen);
    const char *iss = get_cstr(c, "iss", &isslen);
    const char *sub = get_cstr(c, "sub", &sublen);
    const char *aud = get_cstr(c, "aud", &audlen);
    uint8_t seed[PL_ED25519_SEED_BYTES], pub[PL_ED25519_PUB_BYTES];
    int64_t iat = 0, exp = 0, ttl = 0, now = 0, leeway = 0;
    json_t *sign_equal = json_object_get(c, "sign_equal");
    NEED(jwt, "jwt");
    NEED(iss, "iss");
    NEED(sub, "sub");
    NEED(aud && audlen < PL_JWT_AUD_MAX - 1, "aud");
    NEED(get_hex(c, "seed", seed, sizeof seed), "seed");
    NEED(get_hex(c, "pub", pub, sizeof pub), "pub");
    NEED(get_int(c, "iat", &iat) && get_int(c, "exp", &exp) && get_int(c, "ttl", &ttl),
         "iat/exp/ttl");
    NEED(get_int(c, "now", &now) && get_int(c, "leeway", &leeway), "now/leeway");
    NEED(iat > 0 && exp > iat && exp < INT32_MAX * 4LL && leeway >= 0 && leeway < 1000000, "times");
    NEED(json_is_boolean(sign_equal), "sign_equal");

    uint8_t p[PL_ED25519_PUB_BYTES];
    pl_ed25519_public(p, seed);
    expect_bytes(d, "Ed25519 public key of seed", p, sizeof p, pub, sizeof pub);
    char did[PL_DID_KEY_SIZE];
    pl_err e = pl_did_key_encode(did, pub);
    if (expect_err(d, "pl_did_key_encode", e, PL_OK)) expect_str(d, "did:key", did, iss, isslen);
    e = pl_did_key_decode(p, iss, isslen);
    if (expect_err(d, "pl_did_key_decode", e, PL_OK))
        expect_bytes(d, "did:key decode", p, 32, pub, 32);

    pl_jwt_claims cl;
    e = pl_jwt_verify(&cl, jwt, jlen, aud, now, leeway);
    if (expect_err(d, "pl_jwt_verify", e, PL_OK)) {
        expect_str(d, "claim iss", cl.iss, iss, isslen);
        expect_str(d, "claim sub", cl.sub, sub, sublen);
        expect_str(d, "claim aud", cl.aud, aud, audlen);
        expect_i64(d, "claim iat", cl.iat, iat);
        expect_i64(d, "claim exp", cl.exp, exp);
        expect_bytes(d, "key from iss", cl.pub, 32, pub, 32);
    }
    expect_err(d, "verify without an expected aud",
               pl_jwt_verify(NULL, jwt, jlen, NULL, now, leeway), PL_OK);
    char wrong[PL_JWT_AUD_MAX + 2];
    memcpy(wrong, aud, audlen);
    memcpy(wrong + audlen, "x", 2);
    expect_err(d, "verify with aud + \"x\"", pl_jwt_verify(NULL, jwt, jlen, wrong, now, leeway),
               PL_ERR_JWT_AUDIENCE);
    if (audlen > 0) {
        wrong[audlen - 1] = '\0';
        expect_err(d, "verify with aud shortened by a byte",
                   pl_jwt_verify(NULL, jwt, jlen, wrong, now, leeway), PL_ERR_JWT_AUDIENCE);
    }
    expect_err(d, "verify at exp + leeway",
               pl_jwt_verify(NULL, jwt, jlen, aud, exp + leeway, leeway), PL_OK);
    expect_err(d, "verify at exp + leeway + 1",
               pl_jwt_verify(NULL, jwt, jlen, aud, exp + leeway + 1, leeway), PL_ERR_JWT_EXPIRED);
    expect_err(d, "verify at iat - leeway - 1",
               pl_jwt_verify(NULL, jwt, jlen, aud, iat - leeway - 1, leeway),
               PL_ERR_JWT_NOT_YET_VALID);

    if (json_is_true(sign_equal)) {
        char *mine = NULL;
        e = pl_jwt_sign(&mine, seed, sub, aud, iat, ttl);
        if (expect_err(d, "pl_jwt_sign", e, PL_OK))
            expect_str(d, "pl_jwt_sign vs JS signJWT", mine, jwt, jlen);
        pl_free(mine);
    }
    pl_wipe(seed, sizeof seed);
}

static void check_jwt_bad(drv *d, json_t *c) {
    size_t jlen = 0;
    const char *jwt = get_str(c, "jwt", &jlen);
    const char *aud = get_cstr(c, "aud", NULL);
    const char *want = get_cstr(c, "expect", NULL);
    int64_t now = 0, leeway = 0;
    NEED(jwt, "jwt");
    NEED(aud, "aud");
    NEED(want, "expect");
    NEED(get_int(c, "now", &now) && get_int(c, "leeway", &leeway), "now/leeway");
    pl_err e = pl_jwt_verify(NULL, jwt, jlen, aud, now, leeway);
    if (strcmp(pl_errname(e), want) != 0)
        fail(d, "pl_jwt_verify: got %s, want %s", pl_errname(e), want);
}

static void finish_round(drv *d) {
    if (d->cur_round < 0) return;
    d->rounds_seen++;
    if (d->cur_failed) d->rounds_failed++;
}

static void check_line(drv *d, const char *line, size_t len) {
    json_error_t err;
    d->kind = NULL;
    json_t *c = json_loadb(line, len, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &err);
    if (!json_is_object(c)) {
        d->lines++;
        fail(d, "not a JSON object: %s", c ? "other JSON value" : err.text);
        json_decref(c);
        return;
    }
    const char *kind = get_cstr(c, "kind", NULL);
    d->kind = kind;
    int64_t round = -1;
    if (kind && !strcmp(kind, "end")) {
        int64_t rounds = -1, lines = -1;
        if (d->end_seen) fail(d, "second end line");
        d->end_seen = true;
        if (!get_int(c, "rounds", &rounds) || !get_int(c, "lines", &lines)) {
            fail(d, "malformed end line");
        } else {
            finish_round(d);
            d->cur_round = -1;
            if ((unsigned long)lines != d->lines || lines < 0)
                fail(d, "end line says %" PRId64 " lines, read %lu", lines, d->lines);
            if ((unsigned long)rounds != d->rounds_seen || rounds < 0)
                fail(d, "end line says %" PRId64 " rounds, saw %lu", rounds, d->rounds_seen);
        }
        json_decref(c);
        return;
    }
    d->lines++;
    if (d->end_seen) fail(d, "case after the end line");
    if (!get_int(c, "round", &round) || round < 0 || round > MAX_ROUND || round < d->cur_round) {
        fail(d, "missing, bad or decreasing round number");
        json_decref(c);
        return;
    }
    if (round != d->cur_round) {
        finish_round(d);
        d->cur_round = round;
        d->cur_failed = false;
    }
    if (!kind)
        fail(d, "no kind");
    else if (!strcmp(kind, "uri"))
        check_uri(d, c);
    else if (!strcmp(kind, "uri_bad"))
        check_uri_bad(d, c);
    else if (!strcmp(kind, "env"))
        check_env(d, c);
    else if (!strcmp(kind, "env_bad"))
        check_env_bad(d, c);
    else if (!strcmp(kind, "jwt"))
        check_jwt(d, c);
    else if (!strcmp(kind, "jwt_bad"))
        check_jwt_bad(d, c);
    else
        fail(d, "unknown kind");
    json_decref(c);
}

/* Reads one line into buf (at most cap bytes kept). Returns false at EOF with
 * nothing read; *too_long when the line exceeded cap (the rest is skipped). */
static bool read_line(FILE *f, char *buf, size_t cap, size_t *len, bool *too_long) {
    size_t n = 0;
    int ch = EOF;
    *too_long = false;
    while ((ch = getc(f)) != EOF && ch != '\n') {
        if (n < cap)
            buf[n] = (char)ch;
        else
            *too_long = true;
        n++;
    }
    if (ch == EOF && n == 0) return false;
    *len = n < cap ? n : cap;
    return true;
}

static void check_stream(drv *d, FILE *in) {
    char *buf = malloc(MAX_LINE);
    if (!buf) {
        fail(d, "out of memory");
        return;
    }
    size_t len = 0;
    bool too_long = false;
    while (read_line(in, buf, MAX_LINE, &len, &too_long)) {
        d->line_no++;
        if (too_long) {
            d->kind = NULL;
            d->lines++;
            fail(d, "line longer than %u bytes", MAX_LINE);
            continue;
        }
        check_line(d, buf, len);
    }
    free(buf);
    finish_round(d);
    if (!d->end_seen) {
        d->kind = NULL;
        fail(d, "no end line: the JS output is truncated");
    }
}

/* ------------------------------------------------------------- C -> JS */

typedef struct gen {
    uint64_t st;
    FILE *out;
    unsigned long lines;
    unsigned long errors; /* library calls that failed while making cases */
    int64_t round;
} gen;

static void gen_fail(gen *g, const char *what, pl_err e) {
    g->errors++;
    if (g->errors <= max_report)
        fprintf(stderr, "FAIL C-side round %" PRId64 ": %s: %s\n", g->round, what, pl_errname(e));
}

static uint64_t below(gen *g, uint64_t n) {
    return pl_test_rand(&g->st) % n;
}

static int64_t between(gen *g, int64_t lo, int64_t hi) {
    return lo + (int64_t)below(g, (uint64_t)(hi - lo) + 1);
}

static bool chance(gen *g, double p) {
    return (double)(pl_test_rand(&g->st) >> 11) / 9007199254740992.0 < p;
}

#define T_CTRL 1u  /* U+0001..U+001F and U+007F */
#define T_NUL 2u   /* U+0000 */
#define T_NLTAB 4u /* only \n and \t among the controls */

static const char RESERVED[] = " !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
#define ALNUM "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

static uint32_t rand_cp(gen *g, unsigned flags) {
    uint64_t r = below(g, 100);
    if (r < 50) return (uint32_t)between(g, 0x20, 0x7e);
    if (r < 62) return (unsigned char)RESERVED[below(g, sizeof RESERVED - 1)];
    if (r < 66 && (flags & (T_CTRL | T_NLTAB))) {
        if (flags & T_NLTAB) return chance(g, 0.5) ? '\n' : '\t';
        int64_t c = between(g, (flags & T_NUL) ? -1 : 0, 0x1f);
        return c < 0 ? 0 : c == 0 ? 0x7f : (uint32_t)c;
    }
    if (r < 80) return (uint32_t)between(g, 0xa0, 0x7ff);
    if (r < 94) {
        for (;;) {
            uint32_t c = (uint32_t)between(g, 0x800, 0xfffd);
            if (c < 0xd800 || c > 0xdfff) return c;
        }
    }
    return (uint32_t)between(g, 0x10000, 0x10ffff);
}

static size_t put_utf8(char *p, uint32_t c) {
    if (c < 0x80) {
        p[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        p[0] = (char)(0xc0 | (c >> 6));
        p[1] = (char)(0x80 | (c & 0x3f));
        return 2;
    }
    if (c < 0x10000) {
        p[0] = (char)(0xe0 | (c >> 12));
        p[1] = (char)(0x80 | ((c >> 6) & 0x3f));
        p[2] = (char)(0x80 | (c & 0x3f));
        return 3;
    }
    p[0] = (char)(0xf0 | (c >> 18));
    p[1] = (char)(0x80 | ((c >> 12) & 0x3f));
    p[2] = (char)(0x80 | ((c >> 6) & 0x3f));
    p[3] = (char)(0x80 | (c & 0x3f));
    return 4;
}

/* Random valid UTF-8 of lo..hi code points; malloc'd, NUL-terminated. */
static char *rand_text(gen *g, size_t lo, size_t hi, unsigned flags, size_t *len) {
    size_t n = (size_t)between(g, (int64_t)lo, (int64_t)hi);
    char *s = malloc(n * 4 + 1);
    if (!s) abort();
    size_t o = 0;
    for (size_t i = 0; i < n; i++)
        o += put_utf8(s + o, rand_cp(g, flags));
    s[o] = '\0';
    if (len) *len = o;
    return s;
}

static char *rand_name(gen *g, const char *alphabet, size_t lo, size_t hi) {
    size_t n = (size_t)between(g, (int64_t)lo, (int64_t)hi), k = strlen(alphabet);
    char *s = malloc(n + 1);
    if (!s) abort();
    for (size_t i = 0; i < n; i++)
        s[i] = alphabet[below(g, k)];
    s[n] = '\0';
    return s;
}

/* @walletconnect/safe-json, which the SDK parses relay payloads with, turns
 * any string value of the form "<digits>n" into a BigInt and rewrites runs
 * of 17+ digits even inside strings. Real payloads do not look like that;
 * generated JSON-RPC strings avoid it so that a mismatch means a C bug. */
static bool sdk_misreads(const char *s) {
    size_t digits = 0, run = 0;
    for (const char *p = s; *p; p++) {
        run = (*p >= '0' && *p <= '9') ? run + 1 : 0;
        if (run >= 16) return true;
        digits += run > 0;
    }
    size_t n = strlen(s);
    return n >= 2 && digits == n - 1 && s[n - 1] == 'n';
}

static char *rand_rpc_text(gen *g, size_t lo, size_t hi, size_t *len) {
    for (;;) {
        char *t = rand_text(g, lo, hi, T_NLTAB, len);
        if (!sdk_misreads(t)) return t;
        free(t);
    }
}

static char *rand_method_once(gen *g) {
    static const char *const known[] = {"wc_sessionPropose",    "wc_authRequest",
                                        "personal_sign",        "eth_sendTransaction",
                                        "eth_signTypedData_v4", "wallet_switchEthereumChain",
                                        "solana_signMessage"};
    if (chance(g, 0.3)) return strdup(known[below(g, ARRAY_LEN(known))]);
    if (chance(g, 0.85)) return rand_name(g, ALNUM "_", 1, 30);
    return rand_name(g, ALNUM "_.-:~/ *", 1, 30);
}

static char *rand_method(gen *g) {
    for (;;) {
        char *m = rand_method_once(g);
        if (!sdk_misreads(m)) return m;
        free(m);
    }
}

static void hexstr(char *out, const uint8_t *in, size_t n) {
    if (pl_hex_encode(out, n * 2 + 1, in, n) != PL_OK) abort();
}

static void set_str(json_t *o, const char *k, const char *v) {
    json_object_set_new(o, k, v ? json_string(v) : json_null());
}

static void set_strn(json_t *o, const char *k, const char *v, size_t n) {
    json_object_set_new(o, k, json_stringn(v, n));
}

static void set_hex(json_t *o, const char *k, const uint8_t *v, size_t n) {
    char h[130];
    hexstr(h, v, n);
    set_str(o, k, h);
}

static json_t *new_case(gen *g, const char *kind) {
    json_t *o = json_object();
    set_str(o, "kind", kind);
    json_object_set_new(o, "round", json_integer(g->round));
    return o;
}

static void emit(gen *g, json_t *o) {
    char *s = json_dumps(o, JSON_COMPACT);
    if (!s) {
        gen_fail(g, "json_dumps of a case (invalid UTF-8?)", PL_ERR_JSON);
    } else {
        fputs(s, g->out);
        fputc('\n', g->out);
        g->lines++;
        free(s);
    }
    json_decref(o);
}

static void gen_uri(gen *g) {
    pl_uri u;
    memset(&u, 0, sizeof u);
    char *methods[8] = {0};
    size_t nm = chance(g, 0.8) ? (size_t)between(g, 1, 8) : 0;
    for (size_t i = 0; i < nm; i++)
        methods[i] = rand_method(g);
    char *relay_data = NULL;
    bool fresh = chance(g, 0.1);
    pl_err e;
    if (fresh) {
        int64_t now = between(g, 1600000000, 2100000000);
        int64_t ttl = chance(g, 0.3) ? 0 : between(g, 1, 1000000);
        e = pl_uri_new(&u, (const char *const *)methods, nm, now, ttl);
        if (e != PL_OK) {
            gen_fail(g, "pl_uri_new", e);
            goto out;
        }
        char t[PL_TOPIC_HEX_SIZE];
        pl_wc_topic(t, u.sym_key);
        if (u.expiry != now + (ttl ? ttl : 300) || strcmp(t, u.topic) != 0 || u.version != 2 ||
            strcmp(u.relay_protocol, "irn") != 0 || u.n_methods != nm)
            gen_fail(g, "pl_uri_new fields (expiry, topic, version, relay, methods)",
                     PL_ERR_INTERNAL);
    } else {
        pl_test_rand_bytes(&g->st, u.sym_key, sizeof u.sym_key);
        pl_wc_topic(u.topic, u.sym_key);
        u.version = 2;
        if (chance(g, 0.9)) {
            strcpy(u.relay_protocol, "irn");
        } else {
            char *p = rand_name(g, "abcdefghijklmnopqrstuvwxyz0123456789", 1, 16);
            strcpy(u.relay_protocol, p);
            free(p);
        }
        if (chance(g, 0.6)) relay_data = rand_text(g, 1, 60, T_CTRL, NULL);
        u.relay_data = relay_data;
        u.expiry = chance(g, 0.8) ? between(g, 1000000000, 9999999999LL) : 0;
        u.n_methods = nm;
        for (size_t i = 0; i < nm; i++)
            u.methods[i] = methods[i];
    }
    char *s = NULL;
    e = pl_uri_format(&s, &u);
    if (e != PL_OK) {
        gen_fail(g, "pl_uri_format", e);
    } else {
        json_t *o = new_case(g, "uri");
        set_str(o, "uri", s);
        set_str(o, "topic", u.topic);
        set_hex(o, "symKey", u.sym_key, sizeof u.sym_key);
        set_str(o, "relay_protocol", u.relay_protocol);
        set_str(o, "relay_data", u.relay_data);
        json_object_set_new(o, "expiry", json_integer(u.expiry));
        json_t *ms = json_array();
        for (size_t i = 0; i < u.n_methods; i++)
            json_array_append_new(ms, json_string(u.methods[i]));
        json_object_set_new(o, "methods", ms);
        emit(g, o);
    }
    pl_free(s);
out:
    if (!fresh) {
        /* Those pointers are ours, not the struct's to free. */
        u.relay_data = NULL;
        u.n_methods = 0;
    }
    pl_uri_clear(&u);
    free(relay_data);
    for (size_t i = 0; i < nm; i++)
        free(methods[i]);
}

/* JSON values whose compact text reads the same from jansson and from
 * JSON.stringify: integers, strings without escapes that differ in case,
 * and object keys that JS does not reorder (never an array index). */
static json_t *gen_json(gen *g, int depth) {
    uint64_t r = below(g, 100);
    if (depth <= 0 || r < 55) {
        uint64_t s = below(g, 100);
        if (s < 30) return json_integer(between(g, -2147483648LL, 2147483648LL));
        if (s < 80) {
            size_t n = 0;
            char *t = rand_rpc_text(g, 0, 40, &n);
            json_t *v = json_stringn(t, n);
            free(t);
            return v;
        }
        if (s < 90) return json_boolean(chance(g, 0.5));
        return json_null();
    }
    if (r < 75) {
        json_t *a = json_array();
        for (int64_t i = between(g, 0, 5); i > 0; i--)
            json_array_append_new(a, gen_json(g, depth - 1));
        return a;
    }
    static const char *const keys[] = {"topic", "message", "ttl",     "tag",    "prompt",
                                       "id",    "data",    "chainId", "relays", "proposer"};
    json_t *o = json_object();
    for (int64_t i = between(g, 0, 6); i > 0; i--) {
        char *k =
            chance(g, 0.6) ? strdup(keys[below(g, ARRAY_LEN(keys))]) : rand_text(g, 0, 12, 0, NULL);
        if (strspn(k, "0123456789") == strlen(k)) {
            char *k2 = malloc(strlen(k) + 2);
            if (!k2) abort();
            k2[0] = 'k';
            strcpy(k2 + 1, k);
            free(k);
            k = k2;
        }
        json_object_set_new(o, k, gen_json(g, depth - 1));
        free(k);
    }
    return o;
}

static char *dump_any(json_t *v) {
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!s) abort();
    return s;
}

/* One JSON-RPC message: fills *m (strings malloc'd) and returns its
 * description for the JS side. *big is set for ids above 2^53. */
static json_t *gen_rpc_msg(gen *g, pl_rpc_msg *m, bool *big) {
    json_t *w = json_object();
    json_t *id = json_object();
    char v[PL_RPC_ID_MAX + 1];
    uint64_t r = below(g, 100);
    memset(m, 0, sizeof *m);
    if (r < 55) {
        m->id = pl_rpc_id_num(between(g, 1, (1LL << 53) - 1));
    } else if (r < 70) {
        m->id = pl_rpc_id_num(between(g, (1LL << 53) + 1, INT64_MAX));
        *big = true;
    } else if (r < 92) {
        snprintf(v, sizeof v, "%" PRId64, between(g, 1000000000000000000LL, INT64_MAX));
        m->id = pl_rpc_id_str(v);
    } else {
        char *s = rand_name(g, ALNUM "-_:", 1, 40);
        while (sdk_misreads(s)) {
            free(s);
            s = rand_name(g, ALNUM "-_:", 1, 40);
        }
        m->id = pl_rpc_id_str(s);
        free(s);
    }
    if (m->id.kind == PL_RPC_ID_NUM) {
        snprintf(v, sizeof v, "%" PRId64, m->id.num);
        set_str(id, "t", "num");
        set_str(id, "v", v);
    } else {
        set_str(id, "t", "str");
        set_str(id, "v", m->id.str);
    }
    r = below(g, 100);
    if (r < 50) {
        m->kind = PL_RPC_REQUEST;
        m->method = rand_method(g);
        set_str(w, "kind", "request");
        set_str(w, "method", m->method);
        if (chance(g, 0.9)) {
            json_t *p = gen_json(g, 3);
            if (!json_is_object(p) && !json_is_array(p)) {
                json_t *wrap = json_object();
                json_object_set_new(wrap, "value", p);
                p = wrap;
            }
            m->params = dump_any(p);
            json_object_set_new(w, "params", p);
        }
    } else if (r < 75) {
        m->kind = PL_RPC_RESULT;
        json_t *res = chance(g, 0.4) ? json_true() : gen_json(g, 3);
        m->result = dump_any(res);
        set_str(w, "kind", "result");
        json_object_set_new(w, "result", res);
    } else {
        m->kind = PL_RPC_ERROR;
        if (chance(g, 0.2)) {
            bool parse = chance(g, 0.5);
            m->err_code = parse ? -32700 : -32601;
            m->err_message = strdup(parse ? "Parse error" : "Method not found");
        } else {
            m->err_code = between(g, -31999, 99999);
            m->err_message = rand_rpc_text(g, 0, 40, NULL);
        }
        set_str(w, "kind", "error");
        json_object_set_new(w, "code", json_integer(m->err_code));
        set_str(w, "message", m->err_message);
        if (chance(g, 0.3)) {
            json_t *data = gen_json(g, 2);
            m->err_data = dump_any(data);
            json_object_set_new(w, "data", data);
        }
    }
    json_object_set_new(w, "id", id);
    return w;
}

static void free_rpc_msg(pl_rpc_msg *m) {
    free(m->method);
    free(m->params);
    free(m->result);
    free(m->err_message);
    free(m->err_data);
}

/* A JSON-RPC text made by the C encoders; *desc describes it for JS. */
static char *gen_rpc(gen *g, json_t **desc) {
    bool batch = chance(g, 0.1), big = false;
    size_t n = batch ? (size_t)between(g, 2, 5) : 1;
    pl_rpc_msg msgs[5];
    json_t *ws = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(ws, gen_rpc_msg(g, &msgs[i], &big));
    char *text = NULL;
    pl_err e;
    if (batch)
        e = pl_rpc_encode_batch(&text, msgs, n);
    else if (msgs[0].kind == PL_RPC_REQUEST)
        e = pl_rpc_encode_request(&text, &msgs[0].id, msgs[0].method, msgs[0].params);
    else if (msgs[0].kind == PL_RPC_RESULT)
        e = pl_rpc_encode_result(&text, &msgs[0].id, msgs[0].result);
    else
        e = pl_rpc_encode_error(&text, &msgs[0].id, msgs[0].err_code, msgs[0].err_message,
                                msgs[0].err_data);
    for (size_t i = 0; i < n; i++)
        free_rpc_msg(&msgs[i]);
    if (e != PL_OK) {
        gen_fail(g, "pl_rpc_encode_*", e);
        json_decref(ws);
        *desc = NULL;
        return NULL;
    }
    json_t *d = json_object();
    json_object_set_new(d, "batch", json_boolean(batch));
    json_object_set_new(d, "msgs", ws);
    /* JSON.stringify cannot write ids beyond 2^53: compare those by value. */
    json_object_set_new(d, "js_equal", json_boolean(!big));
    *desc = d;
    return text;
}

static void flip_and_emit(gen *g, const char *b64, int type, const uint8_t *key,
                          const uint8_t *rpriv) {
    size_t blen = strlen(b64), n = 0;
    uint8_t *raw = malloc(blen);
    char *out = malloc(blen + 4);
    if (!raw || !out) abort();
    pl_err e = pl_base64_decode(raw, blen, &n, b64, blen, PL_B64_STD);
    if (e != PL_OK || n < 2) {
        gen_fail(g, "pl_base64_decode of an own envelope", e);
    } else {
        /* Not the type byte: JS reads an unknown type as type 0 and a
         * 0x00 -> 0x02 flip as a plaintext envelope, neither of which is a
         * tamper check of the AEAD. */
        size_t idx = 1 + (size_t)below(g, n - 1);
        unsigned bit = (unsigned)below(g, 8);
        /* Nor bit 255 of a type 1 sender key: X25519 ignores it (RFC 7748
         * section 5), so the JS SDK derives the same key and opens the
         * envelope. pairlink refuses such non-canonical keys; the JS->C
         * rounds check that. */
        if (type == 1 && idx == PL_X25519_BYTES && bit == 7) bit = (unsigned)below(g, 7);
        raw[idx] ^= (uint8_t)(1u << bit);
        e = pl_base64_encode(out, blen + 4, raw, n, PL_B64_STD);
        if (e != PL_OK) {
            gen_fail(g, "pl_base64_encode", e);
        } else {
            json_t *o = new_case(g, "env_bad");
            json_object_set_new(o, "type", json_integer(type));
            set_str(o, "envelope", out);
            json_object_set_new(o, "index", json_integer((json_int_t)idx));
            set_hex(o, "symKey", key, PL_SYMKEY_BYTES);
            if (rpriv) set_hex(o, "receiverPriv", rpriv, PL_X25519_BYTES);
            emit(g, o);
        }
    }
    free(raw);
    free(out);
}

static void gen_env(gen *g) {
    uint64_t r = below(g, 100);
    int type = r < 45 ? 0 : r < 90 ? 1 : 2;
    json_t *rpc = NULL;
    char *msg = NULL;
    size_t mlen = 0;
    if (chance(g, 0.4)) {
        msg = gen_rpc(g, &rpc);
        if (!msg) return;
        mlen = strlen(msg);
    } else {
        uint64_t s = below(g, 100);
        size_t lo = s < 2 ? 0 : s < 42 ? 1 : s < 87 ? 65 : 2049;
        size_t hi = s < 2 ? 0 : s < 42 ? 64 : s < 87 ? 2048 : 32768;
        msg = rand_text(g, lo, hi, T_CTRL | T_NUL, &mlen);
    }
    uint8_t key[PL_SYMKEY_BYTES], iv[PL_IV_BYTES];
    uint8_t spriv[PL_X25519_BYTES], spub[PL_X25519_BYTES], rpriv[PL_X25519_BYTES],
        rpub[PL_X25519_BYTES];
    pl_test_rand_bytes(&g->st, iv, sizeof iv);
    pl_err e = PL_OK;
    if (type == 0) {
        pl_test_rand_bytes(&g->st, key, sizeof key);
    } else if (type == 1) {
        pl_test_rand_bytes(&g->st, spriv, sizeof spriv);
        pl_test_rand_bytes(&g->st, rpriv, sizeof rpriv);
        pl_x25519_public(spub, spriv);
        pl_x25519_public(rpub, rpriv);
        e = pl_wc_session_key(key, spriv, rpub);
    }
    char *b64 = NULL;
    if (e == PL_OK) {
        pl_envelope_params p = {.type = type, .sender_pub = type == 1 ? spub : NULL, .iv = iv};
        e = pl_envelope_seal(&b64, type == 2 ? NULL : key, (const uint8_t *)msg, mlen, &p);
    }
    if (e != PL_OK) {
        gen_fail(g, "making an envelope (pl_wc_session_key / pl_envelope_seal)", e);
    } else {
        json_t *o = new_case(g, "env");
        json_object_set_new(o, "type", json_integer(type));
        set_str(o, "envelope", b64);
        set_strn(o, "message", msg, mlen);
        set_hex(o, "iv", iv, sizeof iv);
        if (type != 2) {
            char t[PL_TOPIC_HEX_SIZE];
            pl_wc_topic(t, key);
            set_hex(o, "symKey", key, sizeof key);
            set_str(o, "topic", t);
        }
        if (type == 1) {
            set_hex(o, "senderPriv", spriv, sizeof spriv);
            set_hex(o, "senderPub", spub, sizeof spub);
            set_hex(o, "receiverPriv", rpriv, sizeof rpriv);
            set_hex(o, "receiverPub", rpub, sizeof rpub);
        }
        if (rpc) json_object_set(o, "rpc", rpc);
        emit(g, o);
        if (type != 2) flip_and_emit(g, b64, type, key, type == 1 ? rpriv : NULL);
    }
    json_decref(rpc);
    pl_free(b64);
    free(msg);
}

static char *gen_aud(gen *g) {
    if (chance(g, 0.25)) return rand_text(g, 0, 80, T_CTRL, NULL);
    static const char *const schemes[] = {"wss://", "ws://", "https://"};
    static const char *const tlds[] = {"com", "org", "io", "xyz"};
    char *host = rand_name(g, "abcdefghijklmnopqrstuvwxyz0123456789-", 1, 20);
    char *path = chance(g, 0.5) ? rand_text(g, 0, 20, 0, NULL) : NULL;
    uint8_t pid[16];
    char pidhex[33];
    pl_test_rand_bytes(&g->st, pid, sizeof pid);
    hexstr(pidhex, pid, sizeof pid);
    bool local = chance(g, 0.2);
    char port[16] = "";
    if (chance(g, 0.4)) snprintf(port, sizeof port, ":%" PRId64, between(g, 1, 65535));
    bool query = chance(g, 0.3);
    size_t cap = 64 + strlen(host) + (path ? strlen(path) : 0) + 64;
    char *s = malloc(cap);
    if (!s) abort();
    snprintf(s, cap, "%s%s%s%s%s%s%s%s", schemes[below(g, 3)], local ? "127.0.0.1" : host,
             local ? "" : ".", local ? "" : tlds[below(g, 4)], port, path ? "/" : "",
             path ? path : "", query ? "?projectId=" : "");
    if (query) strcat(s, pidhex);
    free(host);
    free(path);
    return s;
}

/* "h.p.s" with the signature of `sig_from` and the payload of `payload_from`. */
static char *splice(const char *payload_from, const char *sig_from) {
    const char *p1 = strchr(payload_from, '.'), *p2 = p1 ? strchr(p1 + 1, '.') : NULL;
    const char *s1 = strrchr(sig_from, '.');
    if (!p2 || !s1) return NULL;
    size_t a = (size_t)(p2 - payload_from), b = strlen(s1);
    char *out = malloc(a + b + 1);
    if (!out) abort();
    memcpy(out, payload_from, a);
    memcpy(out + a, s1, b + 1);
    return out;
}

static void gen_jwt(gen *g) {
    uint8_t seed[PL_ED25519_SEED_BYTES], pub[PL_ED25519_PUB_BYTES], sb[64];
    pl_test_rand_bytes(&g->st, seed, sizeof seed);
    pl_ed25519_public(pub, seed);
    size_t sublen = chance(g, 0.8) ? 32 : (size_t)between(g, 1, 64);
    pl_test_rand_bytes(&g->st, sb, sublen);
    char sub[129], sub2[65];
    hexstr(sub, sb, sublen);
    pl_test_rand_bytes(&g->st, sb, 32);
    hexstr(sub2, sb, 32);
    char *aud = gen_aud(g);
    int64_t iat = between(g, 1500000000, 2100000000);
    int64_t ttl = chance(g, 0.5) ? 86400 : between(g, 1, 10000000);
    char did[PL_DID_KEY_SIZE];
    char *jwt = NULL, *other = NULL, *bad = NULL;
    pl_err e = pl_did_key_encode(did, pub);
    if (e == PL_OK) e = pl_jwt_sign(&jwt, seed, sub, aud, iat, ttl);
    if (e != PL_OK) {
        gen_fail(g, "pl_did_key_encode / pl_jwt_sign", e);
        goto out;
    }
    json_t *o = new_case(g, "jwt");
    set_str(o, "jwt", jwt);
    set_hex(o, "seed", seed, sizeof seed);
    set_hex(o, "pub", pub, sizeof pub);
    set_str(o, "iss", did);
    set_str(o, "sub", sub);
    set_str(o, "aud", aud);
    json_object_set_new(o, "iat", json_integer(iat));
    json_object_set_new(o, "exp", json_integer(iat + ttl));
    json_object_set_new(o, "ttl", json_integer(ttl));
    bool ctl = false;
    for (const char *p = aud; *p; p++)
        ctl |= (unsigned char)*p < 0x20;
    json_object_set_new(o, "sign_equal", json_boolean(!ctl));
    emit(g, o);

    uint64_t v = below(g, 3);
    if (v == 0) {
        /* one bit of the signature */
        const char *dot = strrchr(jwt, '.');
        uint8_t sig[PL_ED25519_SIG_BYTES + 4];
        size_t n = 0;
        char enc[128];
        e = pl_base64_decode(sig, sizeof sig, &n, dot + 1, strlen(dot + 1), PL_B64_URL_NOPAD);
        if (e != PL_OK || n != PL_ED25519_SIG_BYTES) {
            gen_fail(g, "decoding an own JWT signature", e);
            goto out;
        }
        sig[below(g, n)] ^= (uint8_t)(1u << below(g, 8));
        e = pl_base64_encode(enc, sizeof enc, sig, n, PL_B64_URL_NOPAD);
        size_t keep = (size_t)(dot - jwt) + 1;
        bad = malloc(keep + strlen(enc) + 1);
        if (!bad) abort();
        memcpy(bad, jwt, keep);
        strcpy(bad + keep, enc);
    } else {
        /* another subject, or another issuer, under the original signature */
        uint8_t seed2[PL_ED25519_SEED_BYTES];
        memcpy(seed2, seed, sizeof seed2);
        if (v == 2) pl_test_rand_bytes(&g->st, seed2, sizeof seed2);
        e = pl_jwt_sign(&other, seed2, v == 1 ? sub2 : sub, aud, iat, ttl);
        if (e == PL_OK) bad = splice(other, jwt);
    }
    if (e != PL_OK || !bad) {
        gen_fail(g, "making a tampered JWT", e);
        goto out;
    }
    o = new_case(g, "jwt_bad");
    set_str(o, "jwt", bad);
    emit(g, o);
out:
    free(aud);
    free(bad);
    pl_free(jwt);
    pl_free(other);
    pl_wipe(seed, sizeof seed);
}

static void gen_rounds(gen *g, uint64_t seed, long rounds) {
    for (long r = 0; r < rounds; r++) {
        g->round = r;
        /* Each round its own stream, so one round can be replayed alone. */
        g->st = seed ^ (0x9E3779B97F4A7C15ULL * (uint64_t)(r + 1));
        if (!g->st) g->st = 1;
        for (int i = 0; i < 4; i++)
            pl_test_rand(&g->st);
        gen_uri(g);
        gen_env(g);
        gen_jwt(g);
    }
    fprintf(g->out, "{\"kind\":\"end\",\"rounds\":%ld,\"lines\":%lu}\n", rounds, g->lines);
}

/* ------------------------------------------------------------------ main */

static void usage(void) {
    fprintf(stderr, "usage: interop_wc_driver [--seed N] [--rounds N] [--out FILE] [--report N]"
                    " < cases.jsonl\n");
}

int main(int argc, char **argv) {
    const char *seed_arg = NULL, *out_path = NULL;
    long rounds = 0;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && !strcmp(argv[i], "--seed"))
            seed_arg = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "--rounds"))
            rounds = strtol(argv[++i], NULL, 10);
        else if (i + 1 < argc && !strcmp(argv[i], "--out"))
            out_path = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "--report"))
            max_report = strtoul(argv[++i], NULL, 10);
        else {
            usage();
            return 2;
        }
    }
    if (rounds < 0 || rounds > MAX_ROUND || (rounds > 0 && !out_path)) {
        usage();
        return 2;
    }
    if (pl_init() != PL_OK) {
        fprintf(stderr, "pl_init failed\n");
        return 2;
    }
    uint64_t seed = seed_arg ? strtoull(seed_arg, NULL, 10) : pl_test_seed();

    drv d = {.cur_round = -1};
    check_stream(&d, stdin);
    printf("RESULT rounds=%lu lines=%lu failures=%lu\n", d.rounds_seen - d.rounds_failed, d.lines,
           d.failures);

    unsigned long gen_errors = 0;
    if (rounds > 0) {
        FILE *f = fopen(out_path, "w");
        if (!f) {
            perror(out_path);
            return 2;
        }
        gen g = {.out = f};
        gen_rounds(&g, seed, rounds);
        if (fclose(f) != 0) {
            perror(out_path);
            return 2;
        }
        gen_errors = g.errors;
        printf("GENERATED rounds=%ld lines=%lu errors=%lu\n", rounds, g.lines, g.errors);
    }
    return d.failures || gen_errors ? 1 : 0;
}
