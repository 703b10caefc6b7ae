/* SPDX-License-Identifier: Apache-2.0 */
/* The JSON libraries packaged in Debian 12, measured on the relay's real
 * frames (issue 12): what the relay core needs from an incoming frame
 * (id, method, params.topic, params.message, ttl, tag; for an answer, the
 * id and that it is one), parsed, extracted and freed, per frame; and
 * building the irn_subscription push of a 1 KiB message. Built and run by
 * scripts/bench-json.sh (not by CMake: only the library the relay uses is
 * a build dependency). Results: docs/performance.md, "JSON libraries".
 *
 *   bench_json [ITERATIONS]   (default 200000 per round; 7 rounds) */
#define _GNU_SOURCE
#include "shim.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ROUNDS 7
#define PAD 64

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static volatile size_t sink;

static void take(const fields *f) {
    sink += (size_t)f->id + f->message_len + f->topic_len + f->method_len + (size_t)f->ttl +
            (size_t)f->has_result;
}

/* ---- jansson (what the relay used) ---- */
static int p_jansson(const char *b, size_t n, size_t cap, fields *f) {
    (void)cap;
    memset(f, 0, sizeof *f);
    json_error_t je;
    json_t *r = json_loadb(b, n, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (!r) return -1;
    f->id = json_integer_value(json_object_get(r, "id"));
    f->has_result = json_object_get(r, "result") != NULL;
    json_t *m = json_object_get(r, "method");
    if (m) {
        f->method = json_string_value(m);
        f->method_len = json_string_length(m);
    }
    json_t *p = json_object_get(r, "params");
    if (p) {
        json_t *v = json_object_get(p, "topic");
        f->topic = json_string_value(v);
        f->topic_len = json_string_length(v);
        v = json_object_get(p, "message");
        f->message = json_string_value(v);
        f->message_len = json_string_length(v);
        f->ttl = json_integer_value(json_object_get(p, "ttl"));
        f->tag = json_integer_value(json_object_get(p, "tag"));
    }
    take(f);
    json_decref(r);
    return 0;
}

/* ---- cJSON ---- */
static int p_cjson(const char *b, size_t n, size_t cap, fields *f) {
    (void)cap;
    memset(f, 0, sizeof *f);
    cJSON *r = cJSON_ParseWithLength(b, n);
    if (!r) return -1;
    cJSON *v = cJSON_GetObjectItemCaseSensitive(r, "id");
    f->id = v ? (int64_t)v->valuedouble : 0;
    f->has_result = cJSON_GetObjectItemCaseSensitive(r, "result") != NULL;
    v = cJSON_GetObjectItemCaseSensitive(r, "method");
    if (cJSON_IsString(v)) {
        f->method = v->valuestring;
        f->method_len = strlen(v->valuestring);
    }
    cJSON *p = cJSON_GetObjectItemCaseSensitive(r, "params");
    if (p) {
        v = cJSON_GetObjectItemCaseSensitive(p, "topic");
        if (cJSON_IsString(v)) f->topic = v->valuestring, f->topic_len = strlen(v->valuestring);
        v = cJSON_GetObjectItemCaseSensitive(p, "message");
        if (cJSON_IsString(v)) f->message = v->valuestring, f->message_len = strlen(v->valuestring);
        v = cJSON_GetObjectItemCaseSensitive(p, "ttl");
        f->ttl = v ? (int64_t)v->valuedouble : 0;
        v = cJSON_GetObjectItemCaseSensitive(p, "tag");
        f->tag = v ? (int64_t)v->valuedouble : 0;
    }
    take(f);
    cJSON_Delete(r);
    return 0;
}

static int p_jsonparser(const char *b, size_t n, size_t cap, fields *f) {
    int r = jp_parse(b, n, cap, f);
    take(f);
    return r;
}

static int p_simdjson(const char *b, size_t n, size_t cap, fields *f) {
    int r = sj_parse(b, n, cap, f);
    take(f);
    return r;
}

static int p_simdjson_dom(const char *b, size_t n, size_t cap, fields *f) {
    int r = sj_dom_parse(b, n, cap, f);
    take(f);
    return r;
}

typedef int (*parse_fn)(const char *, size_t, size_t, fields *);
static const struct {
    const char *name;
    parse_fn fn;
} parsers[] = {
    {"jansson", p_jansson},           {"cjson", p_cjson},
    {"json-parser", p_jsonparser},    {"simdjson-ondemand", p_simdjson},
    {"simdjson-dom", p_simdjson_dom},
};
#define NP (sizeof parsers / sizeof parsers[0])

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static char topic[65];
static char message[1025];

static size_t make_publish(char *out, size_t cap) {
    return (size_t)snprintf(
        out, cap,
        "{\"id\":1715000000000123,\"jsonrpc\":\"2.0\",\"method\":\"irn_publish\","
        "\"params\":{\"topic\":\"%s\",\"message\":\"%s\",\"ttl\":30,\"tag\":1}}",
        topic, message);
}

/* ---- building the push (a 1 KiB message) ---- */
static size_t b_jansson(char *out, size_t cap) {
    json_t *d = json_object();
    json_object_set_new(d, "topic", json_string(topic));
    json_object_set_new(d, "message", json_stringn(message, 1024));
    json_object_set_new(d, "publishedAt", json_integer(1715000000123));
    json_object_set_new(d, "tag", json_integer(1));
    json_t *p = json_object();
    json_object_set_new(p, "id", json_string(topic));
    json_object_set_new(p, "data", d);
    json_t *j = json_object();
    json_object_set_new(j, "id", json_integer(1715000000000999));
    json_object_set_new(j, "jsonrpc", json_string("2.0"));
    json_object_set_new(j, "method", json_string("irn_subscription"));
    json_object_set_new(j, "params", p);
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    size_t n = strlen(s);
    if (n < cap) memcpy(out, s, n);
    free(s);
    return n;
}

static size_t b_cjson(char *out, size_t cap) {
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "topic", topic);
    cJSON_AddStringToObject(d, "message", message);
    cJSON_AddNumberToObject(d, "publishedAt", 1715000000123.0);
    cJSON_AddNumberToObject(d, "tag", 1);
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "id", topic);
    cJSON_AddItemToObject(p, "data", d);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "id", 1715000000000999.0);
    cJSON_AddStringToObject(j, "jsonrpc", "2.0");
    cJSON_AddStringToObject(j, "method", "irn_subscription");
    cJSON_AddItemToObject(j, "params", p);
    if (!cJSON_PrintPreallocated(j, out, (int)cap, 0)) abort();
    cJSON_Delete(j);
    return strlen(out);
}

/* Direct: the frame's fixed shape written around the message, whose
 * escaped text is copied (the relay writes it with pl__rs_json_escape). */
static size_t b_direct(char *out, size_t cap) {
    int n = snprintf(out, cap,
                     "{\"id\":%" PRId64 ",\"jsonrpc\":\"2.0\",\"method\":\"irn_subscription\","
                     "\"params\":{\"id\":\"%s\",\"data\":{\"topic\":\"%s\",\"message\":\"",
                     (int64_t)1715000000000999, topic, topic);
    memcpy(out + n, message, 1024);
    n += 1024;
    n += snprintf(out + n, cap - (size_t)n, "\",\"publishedAt\":%" PRId64 ",\"tag\":%d}}}",
                  (int64_t)1715000000123, 1);
    return (size_t)n;
}

typedef size_t (*build_fn)(char *, size_t);

int main(int argc, char **argv) {
    long iters = argc > 1 ? atol(argv[1]) : 200000;
    for (int i = 0; i < 64; i++)
        topic[i] = "0123456789abcdef"[(i * 7) & 15];
    for (int i = 0; i < 1024; i++)
        message[i] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[(i * 37) & 63];
    static char pub[2048 + PAD], ack[128 + PAD], subf[256 + PAD];
    size_t npub = make_publish(pub, sizeof pub - PAD);
    size_t nack = (size_t)snprintf(ack, sizeof ack - PAD,
                                   "{\"id\":1715000000000456,\"jsonrpc\":\"2.0\",\"result\":true}");
    size_t nsub = (size_t)snprintf(subf, sizeof subf - PAD,
                                   "{\"id\":1715000000000124,\"jsonrpc\":\"2.0\",\"method\":"
                                   "\"irn_subscribe\",\"params\":{\"topic\":\"%s\"}}",
                                   topic);
    struct {
        const char *name;
        const char *buf;
        size_t len, cap;
    } frames[] = {{"publish_1k", pub, npub, sizeof pub},
                  {"ack", ack, nack, sizeof ack},
                  {"subscribe", subf, nsub, sizeof subf}};
    /* Every parser must read the same fields. */
    for (size_t fi = 0; fi < 3; fi++) {
        fields ref;
        if (p_jansson(frames[fi].buf, frames[fi].len, frames[fi].cap, &ref)) abort();
        for (size_t p = 1; p < NP; p++) {
            fields f;
            if (parsers[p].fn(frames[fi].buf, frames[fi].len, frames[fi].cap, &f) ||
                f.id != ref.id || f.message_len != ref.message_len || f.ttl != ref.ttl ||
                f.has_result != ref.has_result || f.topic_len != ref.topic_len ||
                f.method_len != ref.method_len) {
                fprintf(stderr, "%s disagrees with jansson on %s\n", parsers[p].name,
                        frames[fi].name);
                return 1;
            }
        }
    }
    printf("frames: publish %zu B, ack %zu B, subscribe %zu B; %ld iterations x %d rounds, rounds "
           "rotate the order\n",
           npub, nack, nsub, iters, ROUNDS);
    for (size_t fi = 0; fi < 3; fi++) {
        double t[NP][ROUNDS];
        for (int r = 0; r < ROUNDS; r++) {
            for (size_t k = 0; k < NP; k++) {
                size_t p = (k + (size_t)r) % NP;
                fields f;
                long it = fi == 0 ? iters : iters * 4;
                double t0 = now_ns();
                for (long i = 0; i < it; i++)
                    parsers[p].fn(frames[fi].buf, frames[fi].len, frames[fi].cap, &f);
                t[p][r] = (now_ns() - t0) / (double)it;
            }
        }
        double base = 0;
        for (size_t p = 0; p < NP; p++) {
            qsort(t[p], ROUNDS, sizeof t[p][0], cmp_d);
            double med = t[p][ROUNDS / 2];
            if (!p) base = med;
            printf("RESULT parse frame=%s lib=%s ns=%.0f min=%.0f max=%.0f vs_jansson=%.2f\n",
                   frames[fi].name, parsers[p].name, med, t[p][0], t[p][ROUNDS - 1], med / base);
        }
    }
    static const struct {
        const char *name;
        build_fn fn;
    } builders[] = {{"jansson", b_jansson}, {"cjson", b_cjson}, {"direct", b_direct}};
    double t[3][ROUNDS];
    static char out[4096];
    for (int r = 0; r < ROUNDS; r++)
        for (size_t k = 0; k < 3; k++) {
            size_t b = (k + (size_t)r) % 3;
            double t0 = now_ns();
            for (long i = 0; i < iters; i++)
                sink += builders[b].fn(out, sizeof out);
            t[b][r] = (now_ns() - t0) / (double)iters;
        }
    double base = 0;
    for (size_t b = 0; b < 3; b++) {
        qsort(t[b], ROUNDS, sizeof t[b][0], cmp_d);
        if (!b) base = t[b][ROUNDS / 2];
        printf("RESULT build frame=push_1k lib=%s ns=%.0f min=%.0f max=%.0f vs_jansson=%.2f\n",
               builders[b].name, t[b][ROUNDS / 2], t[b][0], t[b][ROUNDS - 1],
               t[b][ROUNDS / 2] / base);
    }
    return 0;
}
