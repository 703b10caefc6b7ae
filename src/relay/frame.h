/* SPDX-License-Identifier: Apache-2.0 */
/* The relay core's fast reading of an incoming frame: one parse with
 * simdjson (C++, behind this C interface; frame.cpp) into what the core
 * needs for the frames that make up its traffic: the answer to a push, and
 * the irn_publish and irn_subscribe requests (and, for clients, a relay's
 * irn_subscription push). Anything else, and anything
 * unusual about these (a parse error, a duplicate key, an id that is not an
 * integer, a NUL in a string, a nested value the core would ignore), is
 * PL__RS_FRAME_OTHER: the core then reads the frame with jansson as before,
 * so every error answer stays what it was. docs/performance.md, "JSON
 * libraries", has the measurements behind the choice. */
#ifndef PAIRLINK_RELAY_FRAME_H
#define PAIRLINK_RELAY_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum pl__rs_frame_kind {
    PL__RS_FRAME_OTHER = 0, /* read it with jansson */
    PL__RS_FRAME_RESPONSE,  /* {"id":N,"jsonrpc":"2.0","result"|"error":...} */
    PL__RS_FRAME_PUBLISH,   /* irn_publish with params {topic, message, ...} */
    PL__RS_FRAME_SUBSCRIBE, /* irn_subscribe with params {topic} */
    /* A relay's irn_subscription push, {"id":N,"jsonrpc":"2.0","method":
     * "irn_subscription","params":{"id":SUBID,"data":{"topic","message",
     * "publishedAt","tag",...}}}: for clients (and load generators). */
    PL__RS_FRAME_PUSH,
} pl__rs_frame_kind;

/* Strings point into the parser: valid until its next parse. They are
 * unescaped and hold no NUL byte. */
typedef struct pl__rs_frame {
    pl__rs_frame_kind kind;
    int64_t id;
    const char *topic;
    size_t topic_len;
    const char *message; /* PUBLISH */
    size_t message_len;
    bool has_ttl;
    int64_t ttl;
    bool has_tag; /* present and not null */
    int64_t tag;
    const char *attestation; /* present, not null; may be empty */
    size_t attestation_len;
    const char *sub_id; /* PUSH: params.id */
    size_t sub_id_len;
    int64_t published_at; /* PUSH: data.publishedAt (0 when absent) */
} pl__rs_frame;

typedef struct pl__rs_parser pl__rs_parser;

/* A parser for frames of at most max_bytes; NULL: out of memory. */
pl__rs_parser *pl__rs_parser_new(size_t max_bytes);
void pl__rs_parser_free(pl__rs_parser *p); /* NULL ok */

/* Read text[0..len) into *out (kind OTHER when the fast path does not
 * take it). Never fails otherwise. */
void pl__rs_parse_frame(pl__rs_parser *p, const char *text, size_t len, pl__rs_frame *out);

#ifdef __cplusplus
}
#endif

#endif
