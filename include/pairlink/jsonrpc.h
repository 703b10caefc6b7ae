/* SPDX-License-Identifier: Apache-2.0 */
/* JSON-RPC 2.0 codec (jansson underneath). Ids may be numbers or strings and
 * are echoed exactly: a string id keeps its text (the JS relay client sends
 * 19-digit string ids), an integer id keeps its full 64-bit value (JSON
 * numbers above 2^53 are not rounded). params/result/error.data are carried
 * as compact JSON text so the public API does not expose jansson types.
 * Texts are re-serialised by jansson: same JSON values as the input, but not
 * necessarily the same bytes (reals are written with 17 significant digits,
 * control characters as \u00XX in uppercase, non-ASCII as raw UTF-8).
 * Pure code: no I/O, no clock. Reentrant. */
#ifndef PAIRLINK_JSONRPC_H
#define PAIRLINK_JSONRPC_H

#include "pairlink/common.h"

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PL_RPC_MAX_TEXT (4u << 20) /* 4 MiB: larger input is PL_ERR_TOO_LARGE */
#define PL_RPC_MAX_BATCH 500       /* the relay protocol's batch bound */
#define PL_RPC_ID_MAX 64           /* longest string id accepted */

typedef enum pl_rpc_id_kind {
    PL_RPC_ID_NONE = 0, /* notification (no id member) */
    PL_RPC_ID_NUM = 1,
    PL_RPC_ID_STR = 2,
    PL_RPC_ID_NULL = 3, /* "id": null (error replies to unparseable requests) */
} pl_rpc_id_kind;

typedef struct pl_rpc_id {
    pl_rpc_id_kind kind;
    int64_t num;                  /* PL_RPC_ID_NUM */
    char str[PL_RPC_ID_MAX + 1];  /* PL_RPC_ID_STR, NUL-terminated */
} pl_rpc_id;

typedef enum pl_rpc_kind {
    PL_RPC_REQUEST = 1, /* has method (and id unless a notification) */
    PL_RPC_RESULT = 2,
    PL_RPC_ERROR = 3,
} pl_rpc_kind;

typedef struct pl_rpc_msg {
    pl_rpc_kind kind;
    pl_rpc_id id;
    char *method;      /* REQUEST */
    char *params;      /* REQUEST: compact JSON text or NULL when absent */
    char *result;      /* RESULT: compact JSON text (e.g. "true") */
    int64_t err_code;  /* ERROR */
    char *err_message; /* ERROR */
    char *err_data;    /* ERROR: compact JSON text or NULL */
} pl_rpc_msg;

/* Decode one message or a batch. *out is an array of *n messages (1 for a
 * single message), *is_batch tells which form it was. Free with
 * pl_rpc_msgs_free(*out, *n). On failure *out is NULL, *n 0, *is_batch false;
 * one bad element fails the whole batch.
 * Errors: PL_ERR_TOO_LARGE (len > PL_RPC_MAX_TEXT, or more than
 * PL_RPC_MAX_BATCH elements), PL_ERR_JSON (not JSON, not UTF-8, trailing
 * data, a duplicate object key, nesting beyond jansson's depth limit, or a
 * number beyond int64/double outside the id), PL_ERR_RPC_INVALID (top level
 * not an object/array, missing/incorrect jsonrpc, method not a string, both
 * or neither of result/error, a response without id, error lacking an
 * integer code or string message, a NUL inside method/message),
 * PL_ERR_RPC_BAD_ID (id is a real, beyond int64, a bool/object/array, or a
 * string longer than PL_RPC_ID_MAX or holding a NUL), PL_ERR_RPC_EMPTY_BATCH,
 * PL_ERR_NOMEM. A request's params may be any JSON value. */
PL_EXPORT pl_err pl_rpc_decode(pl_rpc_msg **out, size_t *n, bool *is_batch, const char *text,
                               size_t len);

PL_EXPORT void pl_rpc_msgs_free(pl_rpc_msg *msgs, size_t n);

/* Encoders write compact JSON with members in the order the JS SDK uses:
 * {"id":..,"jsonrpc":"2.0","method":..,"params":..} / {"id","jsonrpc","result"} /
 * {"id","jsonrpc","error":{"code","message"[,"data"]}}. params/result/data
 * are JSON text (NULL params: omitted; NULL result: "null"). A request with
 * id kind PL_RPC_ID_NONE is a notification (no "id"); a response with
 * PL_RPC_ID_NONE is misuse. *out is caller-owned (pl_free), NULL on failure.
 * Errors: PL_ERR_JSON if a JSON text argument does not parse (same rules as
 * pl_rpc_decode), PL_ERR_INVALID_ARG if method, message or a string id is
 * not UTF-8, PL_ERR_TOO_LARGE if the output would exceed PL_RPC_MAX_TEXT,
 * PL_ERR_NOMEM. */
PL_EXPORT pl_err pl_rpc_encode_request(char **out, const pl_rpc_id *id, const char *method,
                                       const char *params_json);
PL_EXPORT pl_err pl_rpc_encode_result(char **out, const pl_rpc_id *id, const char *result_json);
PL_EXPORT pl_err pl_rpc_encode_error(char **out, const pl_rpc_id *id, int64_t code,
                                     const char *message, const char *data_json);
/* Encode messages as a JSON array (a batch). Errors as above, plus
 * PL_ERR_RPC_EMPTY_BATCH for n == 0 and PL_ERR_TOO_LARGE for
 * n > PL_RPC_MAX_BATCH. */
PL_EXPORT pl_err pl_rpc_encode_batch(char **out, const pl_rpc_msg *msgs, size_t n);

/* Helpers for ids. */
PL_EXPORT pl_rpc_id pl_rpc_id_num(int64_t v);
PL_EXPORT pl_rpc_id pl_rpc_id_str(const char *s); /* misuse if longer than PL_RPC_ID_MAX */
PL_EXPORT bool pl_rpc_id_equal(const pl_rpc_id *a, const pl_rpc_id *b);
/* A JS-style payload id: now_ms * 1000 + random(0..999) (16 digits). */
PL_EXPORT pl_rpc_id pl_rpc_id_new(int64_t now_ms);

#ifdef __cplusplus
}
#endif
#endif
