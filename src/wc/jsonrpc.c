/* SPDX-License-Identifier: Apache-2.0 */
/* JSON-RPC 2.0 codec over jansson.
 *
 * Ids: jansson keeps integers as json_int_t (64-bit), so an integer id is
 * exact up to int64; it never goes through a double. jansson fails the whole
 * parse on an integer literal beyond int64; when that happens we parse again
 * with integers read as reals only to tell whether the culprit was the id
 * (PL_ERR_RPC_BAD_ID) or something in the payload (PL_ERR_JSON).
 *
 * Texts handed out (params/result/data) are written with json_dumpb into our
 * own malloc'd buffers, so pl_free releases them even if someone installs
 * other jansson allocators. Duplicate object keys are refused: JS keeps the
 * last one and other parsers the first, and a relay and a client must never
 * disagree on what a message says. */
#include "pairlink/jsonrpc.h"

#include "core/internal.h"
#include "wc/wc_internal.h"
#include "pairlink/hash.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define LOAD_FLAGS (JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES)
#define DUMP_FLAGS (JSON_COMPACT | JSON_ENCODE_ANY)


/* Compact JSON text of v in a malloc'd NUL-terminated buffer. */
static pl_err dump_alloc(char **out, const json_t *v) {
    *out = NULL;
    size_t need = json_dumpb(v, NULL, 0, DUMP_FLAGS);
    if (need == 0) return PL_ERR_NOMEM; /* jansson's only failure left here */
    if (need > PL_RPC_MAX_TEXT) return PL_ERR_TOO_LARGE;
    char *buf = malloc(need + 1);
    if (!buf) return PL_ERR_NOMEM;
    if (json_dumpb(v, buf, need, DUMP_FLAGS) != need) {
        free(buf);
        return PL_ERR_NOMEM;
    }
    buf[need] = '\0';
    *out = buf;
    return PL_OK;
}

/* A C string copy of a JSON string; NULL in *out when it has an embedded
 * NUL (which the C API could not represent). */
static pl_err string_copy(char **out, const json_t *s, bool *has_nul) {
    size_t n = json_string_length(s);
    const char *v = json_string_value(s);
    *out = NULL;
    *has_nul = memchr(v, '\0', n) != NULL;
    if (*has_nul) return PL_OK;
    *out = strndup(v, n);
    return *out ? PL_OK : PL_ERR_NOMEM;
}

/* ---- decoding ---- */

static pl_err decode_id(pl_rpc_id *id, const json_t *v) {
    memset(id, 0, sizeof *id);
    if (!v) {
        id->kind = PL_RPC_ID_NONE;
    } else if (json_is_integer(v)) {
        id->kind = PL_RPC_ID_NUM;
        id->num = (int64_t)json_integer_value(v);
    } else if (json_is_string(v)) {
        size_t n = json_string_length(v);
        const char *s = json_string_value(v);
        if (n > PL_RPC_ID_MAX || memchr(s, '\0', n)) return PL_ERR_RPC_BAD_ID;
        id->kind = PL_RPC_ID_STR;
        memcpy(id->str, s, n);
        id->str[n] = '\0';
    } else if (json_is_null(v)) {
        id->kind = PL_RPC_ID_NULL;
    } else {
        /* reals (fraction/exponent), booleans, objects, arrays */
        return PL_ERR_RPC_BAD_ID;
    }
    return PL_OK;
}

static void msg_clear(pl_rpc_msg *m) {
    free(m->method);
    free(m->params);
    free(m->result);
    free(m->err_message);
    free(m->err_data);
    memset(m, 0, sizeof *m);
}

static pl_err decode_msg_inner(pl_rpc_msg *m, const json_t *o) {
    if (!json_is_object(o)) return PL_ERR_RPC_INVALID;
    const json_t *ver = json_object_get(o, "jsonrpc");
    if (!json_is_string(ver) || json_string_length(ver) != 3 ||
        memcmp(json_string_value(ver), "2.0", 3) != 0)
        return PL_ERR_RPC_INVALID;
    PL_TRY(decode_id(&m->id, json_object_get(o, "id")));

    const json_t *method = json_object_get(o, "method");
    const json_t *result = json_object_get(o, "result");
    const json_t *error = json_object_get(o, "error");
    bool nul;

    if (method) {
        if (result || error || !json_is_string(method)) return PL_ERR_RPC_INVALID;
        PL_TRY(string_copy(&m->method, method, &nul));
        if (nul) return PL_ERR_RPC_INVALID;
        m->kind = PL_RPC_REQUEST;
        const json_t *params = json_object_get(o, "params");
        if (params) PL_TRY(dump_alloc(&m->params, params));
        return PL_OK;
    }
    if (!result == !error) return PL_ERR_RPC_INVALID;
    /* A response without an id cannot be matched to anything. */
    if (m->id.kind == PL_RPC_ID_NONE) return PL_ERR_RPC_INVALID;
    if (result) {
        m->kind = PL_RPC_RESULT;
        return dump_alloc(&m->result, result);
    }
    const json_t *code = json_object_get(error, "code");
    const json_t *msg = json_object_get(error, "message");
    if (!json_is_object(error) || !json_is_integer(code) || !json_is_string(msg))
        return PL_ERR_RPC_INVALID;
    m->kind = PL_RPC_ERROR;
    m->err_code = (int64_t)json_integer_value(code);
    PL_TRY(string_copy(&m->err_message, msg, &nul));
    if (nul) return PL_ERR_RPC_INVALID;
    const json_t *data = json_object_get(error, "data");
    if (data) PL_TRY(dump_alloc(&m->err_data, data));
    return PL_OK;
}

static pl_err decode_msg(pl_rpc_msg *m, const json_t *o) {
    pl_err e = decode_msg_inner(m, o);
    if (e != PL_OK) msg_clear(m);
    return e;
}

/* The id is a number outside int64 (seen only after reading integers as
 * reals). -2^63 itself is ambiguous here and counted as out of range: a
 * valid INT64_MIN id could only land here next to an overflowing payload. */
static bool id_out_of_range(const json_t *o) {
    const json_t *id = json_is_object(o) ? json_object_get(o, "id") : NULL;
    if (!json_is_real(id)) return false;
    double d = json_real_value(id);
    return d >= 9223372036854775808.0 || d <= -9223372036854775808.0;
}

static bool overflow_is_in_id(const char *text, size_t len) {
    json_t *r = json_loadb(text, len, LOAD_FLAGS | JSON_DECODE_INT_AS_REAL, NULL);
    bool hit = false;
    if (json_is_array(r)) {
        for (size_t i = 0; i < json_array_size(r) && !hit; i++)
            hit = id_out_of_range(json_array_get(r, i));
    } else {
        hit = id_out_of_range(r);
    }
    json_decref(r);
    return hit;
}

pl_err pl_rpc_decode(pl_rpc_msg **out, size_t *n, bool *is_batch, const char *text, size_t len) {
    PL_REQUIRE(out && n && is_batch && (text || len == 0));
    *out = NULL;
    *n = 0;
    *is_batch = false;
    if (len > PL_RPC_MAX_TEXT) return PL_ERR_TOO_LARGE;

    json_error_t jerr;
    /* jansson bounds nesting (JSON_PARSER_MAX_DEPTH) and fails cleanly. */
    json_t *root = json_loadb(text ? text : "", len, LOAD_FLAGS, &jerr);
    if (!root) {
        if (json_error_code(&jerr) == json_error_numeric_overflow && overflow_is_in_id(text, len))
            return PL_ERR_RPC_BAD_ID;
        return PL_ERR_JSON;
    }

    pl_err e = PL_OK;
    size_t count = 1;
    bool batch = json_is_array(root);
    if (batch) {
        count = json_array_size(root);
        if (count == 0)
            e = PL_ERR_RPC_EMPTY_BATCH;
        else if (count > PL_RPC_MAX_BATCH)
            e = PL_ERR_TOO_LARGE;
    } else if (!json_is_object(root)) {
        e = PL_ERR_RPC_INVALID;
    }

    pl_rpc_msg *msgs = NULL;
    if (e == PL_OK && !(msgs = calloc(count, sizeof *msgs))) e = PL_ERR_NOMEM;
    size_t done = 0;
    for (; e == PL_OK && done < count; done++)
        e = decode_msg(&msgs[done], batch ? json_array_get(root, done) : root);
    json_decref(root);
    if (e != PL_OK) {
        pl_rpc_msgs_free(msgs, count);
        return e;
    }
    *out = msgs;
    *n = count;
    *is_batch = batch;
    return PL_OK;
}

void pl_rpc_msgs_free(pl_rpc_msg *msgs, size_t n) {
    if (!msgs) return;
    for (size_t i = 0; i < n; i++)
        msg_clear(&msgs[i]);
    free(msgs);
}

/* ---- encoding ---- */

static pl_err new_string(json_t **out, const char *s) {
    size_t n = strlen(s);
    *out = NULL;
    if (!pl__utf8_valid((const unsigned char *)s, n)) return PL_ERR_INVALID_ARG;
    *out = json_stringn(s, n);
    return *out ? PL_OK : PL_ERR_NOMEM;
}

static pl_err id_json(json_t **out, const pl_rpc_id *id) {
    switch (id->kind) {
    case PL_RPC_ID_NUM:
        *out = json_integer((json_int_t)id->num);
        break;
    case PL_RPC_ID_STR:
        PL_REQUIRE(memchr(id->str, '\0', sizeof id->str));
        return new_string(out, id->str);
    case PL_RPC_ID_NULL:
        *out = json_null();
        break;
    default:
        PL_REQUIRE(!"a valid pl_rpc_id kind"); /* NONE is handled by callers */
    }
    return *out ? PL_OK : PL_ERR_NOMEM;
}

static pl_err parse_text(json_t **out, const char *text) {
    *out = NULL;
    size_t n = strnlen(text, PL_RPC_MAX_TEXT + 1);
    if (n > PL_RPC_MAX_TEXT) return PL_ERR_TOO_LARGE;
    *out = json_loadb(text, n, LOAD_FLAGS, NULL);
    return *out ? PL_OK : PL_ERR_JSON;
}

/* Steals `v` (NULL is out of memory). */
static pl_err set_new(json_t *o, const char *key, json_t *v) {
    if (!v) return PL_ERR_NOMEM;
    return json_object_set_new(o, key, v) == 0 ? PL_OK : PL_ERR_NOMEM;
}

static pl_err add_id(json_t *o, const pl_rpc_id *id) {
    json_t *v;
    PL_TRY(id_json(&v, id));
    return set_new(o, "id", v);
}

static pl_err add_text(json_t *o, const char *key, const char *text) {
    json_t *v;
    PL_TRY(parse_text(&v, text));
    return set_new(o, key, v);
}

static pl_err add_string(json_t *o, const char *key, const char *s) {
    json_t *v;
    PL_TRY(new_string(&v, s));
    return set_new(o, key, v);
}

/* Member order follows the JS SDK's formatJsonRpc* helpers; jansson keeps
 * insertion order when dumping. */
static pl_err build_request(json_t *o, const pl_rpc_id *id, const char *method,
                            const char *params) {
    if (id->kind != PL_RPC_ID_NONE) PL_TRY(add_id(o, id));
    PL_TRY(set_new(o, "jsonrpc", json_string("2.0")));
    PL_TRY(add_string(o, "method", method));
    if (params) PL_TRY(add_text(o, "params", params));
    return PL_OK;
}

static pl_err build_result(json_t *o, const pl_rpc_id *id, const char *result) {
    PL_REQUIRE(id->kind != PL_RPC_ID_NONE); /* a response always carries an id */
    PL_TRY(add_id(o, id));
    PL_TRY(set_new(o, "jsonrpc", json_string("2.0")));
    if (result) return add_text(o, "result", result);
    return set_new(o, "result", json_null());
}

static pl_err build_error(json_t *o, const pl_rpc_id *id, int64_t code, const char *message,
                          const char *data) {
    PL_REQUIRE(id->kind != PL_RPC_ID_NONE);
    PL_TRY(add_id(o, id));
    PL_TRY(set_new(o, "jsonrpc", json_string("2.0")));
    json_t *err = json_object();
    PL_TRY(set_new(o, "error", err)); /* o owns err from here on */
    PL_TRY(set_new(err, "code", json_integer((json_int_t)code)));
    PL_TRY(add_string(err, "message", message));
    if (data) PL_TRY(add_text(err, "data", data));
    return PL_OK;
}

static pl_err build_msg(json_t *o, const pl_rpc_msg *m) {
    switch (m->kind) {
    case PL_RPC_REQUEST:
        PL_REQUIRE(m->method);
        return build_request(o, &m->id, m->method, m->params);
    case PL_RPC_RESULT:
        return build_result(o, &m->id, m->result);
    case PL_RPC_ERROR:
        PL_REQUIRE(m->err_message);
        return build_error(o, &m->id, m->err_code, m->err_message, m->err_data);
    }
    PL_REQUIRE(!"a valid pl_rpc_kind");
    return PL_ERR_INTERNAL;
}

static pl_err finish(char **out, json_t *root, pl_err e) {
    if (e == PL_OK) e = dump_alloc(out, root);
    json_decref(root);
    return e;
}

pl_err pl_rpc_encode_request(char **out, const pl_rpc_id *id, const char *method,
                             const char *params_json) {
    PL_REQUIRE(out && id && method);
    *out = NULL;
    json_t *o = json_object();
    if (!o) return PL_ERR_NOMEM;
    return finish(out, o, build_request(o, id, method, params_json));
}

pl_err pl_rpc_encode_result(char **out, const pl_rpc_id *id, const char *result_json) {
    PL_REQUIRE(out && id);
    *out = NULL;
    json_t *o = json_object();
    if (!o) return PL_ERR_NOMEM;
    return finish(out, o, build_result(o, id, result_json));
}

pl_err pl_rpc_encode_error(char **out, const pl_rpc_id *id, int64_t code, const char *message,
                           const char *data_json) {
    PL_REQUIRE(out && id && message);
    *out = NULL;
    json_t *o = json_object();
    if (!o) return PL_ERR_NOMEM;
    return finish(out, o, build_error(o, id, code, message, data_json));
}

pl_err pl_rpc_encode_batch(char **out, const pl_rpc_msg *msgs, size_t n) {
    PL_REQUIRE(out && (msgs || n == 0));
    *out = NULL;
    if (n == 0) return PL_ERR_RPC_EMPTY_BATCH;
    if (n > PL_RPC_MAX_BATCH) return PL_ERR_TOO_LARGE;
    json_t *arr = json_array();
    if (!arr) return PL_ERR_NOMEM;
    pl_err e = PL_OK;
    for (size_t i = 0; i < n && e == PL_OK; i++) {
        json_t *o = json_object();
        if (!o || json_array_append_new(arr, o) != 0)
            e = PL_ERR_NOMEM;
        else
            e = build_msg(o, &msgs[i]);
    }
    return finish(out, arr, e);
}

/* ---- ids ---- */

pl_rpc_id pl_rpc_id_num(int64_t v) {
    pl_rpc_id id;
    memset(&id, 0, sizeof id);
    id.kind = PL_RPC_ID_NUM;
    id.num = v;
    return id;
}

pl_rpc_id pl_rpc_id_str(const char *s) {
    PL_REQUIRE(s);
    size_t n = strnlen(s, PL_RPC_ID_MAX + 1);
    PL_REQUIRE(n <= PL_RPC_ID_MAX);
    pl_rpc_id id;
    memset(&id, 0, sizeof id);
    id.kind = PL_RPC_ID_STR;
    memcpy(id.str, s, n);
    return id;
}

bool pl_rpc_id_equal(const pl_rpc_id *a, const pl_rpc_id *b) {
    PL_REQUIRE(a && b);
    if (a->kind != b->kind) return false;
    switch (a->kind) {
    case PL_RPC_ID_NUM:
        return a->num == b->num;
    case PL_RPC_ID_STR:
        return strncmp(a->str, b->str, sizeof a->str) == 0;
    default:
        return true;
    }
}

pl_rpc_id pl_rpc_id_new(int64_t now_ms) { return pl__rpc_id_new(now_ms, NULL, NULL); }

pl_rpc_id pl__rpc_id_new(int64_t now_ms, pl_rng_fn rng, void *rng_ctx) {
    PL_REQUIRE(now_ms >= 0 && now_ms <= (INT64_MAX - 999) / 1000);
    /* Rejection sampling keeps 0..999 uniform: 64000 is a multiple of 1000. */
    uint16_t r;
    do {
        pl__rng(rng, rng_ctx, (uint8_t *)&r, sizeof r);
    } while (r >= 64000);
    return pl_rpc_id_num(now_ms * 1000 + r % 1000);
}
