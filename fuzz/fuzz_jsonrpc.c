/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the JSON-RPC 2.0 decoder (pl_rpc_decode) and the
 * decode/encode/decode round trip.
 *
 * Input: the text of a relay or peer message. Checks, besides "no crash, no
 * leak, no UB":
 *  - errors are named JSON-RPC errors, and out-parameters are cleared;
 *  - a decoded message is consistent: a request has a method, a response
 *    has an id, the fields of other kinds are NULL, a string id is
 *    NUL-terminated within PL_RPC_ID_MAX;
 *  - every decoded message, re-encoded on its own (request/result/error
 *    encoder) and all of them as a batch, decodes again to the same kind,
 *    id, method, error code and message, and the same JSON texts (params,
 *    result, error data): jansson writes reals with 17 significant digits,
 *    so a second pass must be a fixed point. */
#include "pairlink/jsonrpc.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool cond) {
    if (!cond) abort();
}

static bool str_eq(const char *a, const char *b) {
    if (!a || !b) return a == b;
    return strcmp(a, b) == 0;
}

static bool same_msg(const pl_rpc_msg *a, const pl_rpc_msg *b) {
    return a->kind == b->kind && pl_rpc_id_equal(&a->id, &b->id) && str_eq(a->method, b->method) &&
           str_eq(a->params, b->params) && str_eq(a->result, b->result) &&
           a->err_code == b->err_code && str_eq(a->err_message, b->err_message) &&
           str_eq(a->err_data, b->err_data);
}

static void well_formed(const pl_rpc_msg *m) {
    if (m->id.kind == PL_RPC_ID_STR)
        check(memchr(m->id.str, '\0', sizeof m->id.str) != NULL);
    switch (m->kind) {
    case PL_RPC_REQUEST:
        check(m->method && !m->result && !m->err_message && !m->err_data && m->err_code == 0);
        break;
    case PL_RPC_RESULT:
        check(m->result && !m->method && !m->params && !m->err_message && !m->err_data &&
              m->id.kind != PL_RPC_ID_NONE);
        break;
    case PL_RPC_ERROR:
        check(m->err_message && !m->method && !m->params && !m->result &&
              m->id.kind != PL_RPC_ID_NONE);
        break;
    default:
        check(false);
    }
}

static bool rpc_error(pl_err e) {
    return e == PL_ERR_TOO_LARGE || e == PL_ERR_JSON || e == PL_ERR_RPC_INVALID ||
           e == PL_ERR_RPC_BAD_ID || e == PL_ERR_RPC_EMPTY_BATCH;
}

static void decode_one(const char *text, const pl_rpc_msg *want) {
    pl_rpc_msg *m = NULL;
    size_t n = 0;
    bool batch = true;
    check(pl_rpc_decode(&m, &n, &batch, text, strlen(text)) == PL_OK);
    check(n == 1 && !batch && same_msg(&m[0], want));
    pl_rpc_msgs_free(m, n);
}

static void reencode(const pl_rpc_msg *m) {
    char *text = NULL;
    pl_err e = PL_ERR_INTERNAL;
    switch (m->kind) {
    case PL_RPC_REQUEST: e = pl_rpc_encode_request(&text, &m->id, m->method, m->params); break;
    case PL_RPC_RESULT: e = pl_rpc_encode_result(&text, &m->id, m->result); break;
    case PL_RPC_ERROR:
        e = pl_rpc_encode_error(&text, &m->id, m->err_code, m->err_message, m->err_data);
        break;
    }
    check(e == PL_OK && text != NULL);
    decode_one(text, m);
    pl_free(text);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    check(pl_init() == PL_OK);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pl_rpc_msg *msgs = (pl_rpc_msg *)1;
    size_t n = 1;
    bool batch = true;
    pl_err e = pl_rpc_decode(&msgs, &n, &batch, (const char *)data, size);
    if (e != PL_OK) {
        check(rpc_error(e) && msgs == NULL && n == 0 && !batch);
        return 0;
    }
    check(msgs != NULL && n >= 1 && n <= PL_RPC_MAX_BATCH && (batch || n == 1));
    for (size_t i = 0; i < n; i++) {
        well_formed(&msgs[i]);
        reencode(&msgs[i]);
    }

    char *text = NULL;
    check(pl_rpc_encode_batch(&text, msgs, n) == PL_OK);
    pl_rpc_msg *again = NULL;
    size_t n2 = 0;
    bool batch2 = false;
    check(pl_rpc_decode(&again, &n2, &batch2, text, strlen(text)) == PL_OK);
    check(batch2 && n2 == n);
    for (size_t i = 0; i < n; i++)
        check(same_msg(&msgs[i], &again[i]));
    pl_rpc_msgs_free(again, n2);
    pl_free(text);
    pl_rpc_msgs_free(msgs, n);
    return 0;
}
