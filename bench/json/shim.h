/* SPDX-License-Identifier: Apache-2.0 */
/* What the relay core needs from one incoming frame, as every parser under
 * test extracts it (bench_json.c). */
#ifndef PL_BENCH_JSON_SHIM_H
#define PL_BENCH_JSON_SHIM_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif
typedef struct fields {
    int64_t id;
    int has_result;
    const char *method;
    size_t method_len;
    const char *topic;
    size_t topic_len;
    const char *message;
    size_t message_len;
    int64_t ttl, tag;
} fields;
/* simdjson On-Demand behind C: parse buf[0..len) (buf has cap >= len + 64
 * bytes, the padding simdjson reads past the end). 0: ok. */
int sj_parse(const char *buf, size_t len, size_t cap, fields *out);
/* json-parser (jsonparser_part.c). */
int jp_parse(const char *buf, size_t len, size_t cap, fields *out);
/* The same with simdjson's DOM parser, which validates the whole document. */
int sj_dom_parse(const char *buf, size_t len, size_t cap, fields *out);
#ifdef __cplusplus
}
#endif
#endif
