/* SPDX-License-Identifier: Apache-2.0 */
/* The process-wide log sink (include/pairlink/log.h) and the routing of
 * libwebsockets' own logging into it. */
#include "pairlink/log.h"
#include "platform/log_internal.h"

#include "core/internal.h"

#include <jansson.h>
#include <libwebsockets.h>
#include <stdlib.h>
#include <time.h>
#include <stdio.h>
#include <string.h>

static pl_log_fn log_fn;
static void *log_ud;
static pl_log_level log_level = PL_LOG_OFF;

const char *pl_log_level_name(pl_log_level level) {
    switch (level) {
    case PL_LOG_OFF:
        return "off";
    case PL_LOG_ERROR:
        return "error";
    case PL_LOG_WARN:
        return "warn";
    case PL_LOG_INFO:
        return "info";
    case PL_LOG_DEBUG:
        return "debug";
    }
    return "off";
}

static pl_log_level from_lws(int lws_level) {
    if (lws_level & LLL_ERR) return PL_LOG_ERROR;
    if (lws_level & LLL_WARN) return PL_LOG_WARN;
    if (lws_level & (LLL_NOTICE | LLL_INFO | LLL_USER)) return PL_LOG_INFO;
    return PL_LOG_DEBUG;
}

static void lws_emit(int lws_level, const char *line) {
    pl_log_fn fn = log_fn;
    if (!fn || !line) return;
    /* lws ends its lines with a newline; the sink gets lines without */
    char buf[1024];
    size_t n = strlen(line);
    if (n >= sizeof buf) n = sizeof buf - 1;
    memcpy(buf, line, n);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    buf[n] = '\0';
    fn(log_ud, from_lws(lws_level), "libwebsockets", buf);
}

void pl__log_apply(void) {
    int mask = 0;
    if (log_fn) {
        if (log_level >= PL_LOG_ERROR) mask |= LLL_ERR;
        if (log_level >= PL_LOG_WARN) mask |= LLL_WARN;
        if (log_level >= PL_LOG_INFO) mask |= LLL_NOTICE | LLL_INFO | LLL_USER;
        if (log_level >= PL_LOG_DEBUG)
            mask |= LLL_DEBUG | LLL_PARSER | LLL_HEADER | LLL_EXT | LLL_CLIENT | LLL_LATENCY;
    }
    lws_set_log_level(mask, lws_emit);
}

void pl_set_log(pl_log_fn fn, void *ud, pl_log_level level) {
    log_fn = fn;
    log_ud = ud;
    log_level = level < PL_LOG_OFF ? PL_LOG_OFF : level > PL_LOG_DEBUG ? PL_LOG_DEBUG : level;
    pl__log_apply();
}

bool pl_log_level_parse(const char *name, pl_log_level *out) {
    PL_REQUIRE(name && out);
    for (pl_log_level l = PL_LOG_OFF; l <= PL_LOG_DEBUG; l++) {
        if (!strcmp(name, pl_log_level_name(l))) {
            *out = l;
            return true;
        }
    }
    *out = PL_LOG_OFF;
    return false;
}

static bool reserved_field(const char *k) {
    return !strcmp(k, "ts") || !strcmp(k, "level") || !strcmp(k, "source") || !strcmp(k, "msg");
}

size_t pl_log_format_line(char *buf, size_t cap, pl_log_format format, int64_t unix_ms,
                          pl_log_level level, const char *source, const char *msg,
                          const pl_log_field *fields, size_t nfields) {
    PL_REQUIRE(buf && cap && (fields || !nfields));
    if (!source) source = "";
    if (!msg) msg = "";
    char ts[40];
    time_t secs = (time_t)(unix_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof ts - n, ".%03dZ", (int)(unix_ms % 1000 + 1000) % 1000);
    if (format != PL_LOG_FORMAT_JSON) {
        int r = snprintf(buf, cap, "%s %s %s: %s", ts, source, pl_log_level_name(level), msg);
        return r < 0 ? 0 : (size_t)r;
    }
    /* jansson escapes what a hand-made writer would get wrong (control
     * characters, invalid UTF-8 is refused: the message is then given as
     * bytes replaced). */
    json_t *o = json_object();
    if (!o) {
        buf[0] = '\0';
        return 0;
    }
    json_object_set_new(o, "ts", json_string(ts));
    json_object_set_new(o, "level", json_string(pl_log_level_name(level)));
    json_object_set_new(o, "source", json_string(source));
    json_t *m = json_string(msg);
    if (!m) { /* not UTF-8: keep the ASCII, mark the rest */
        size_t ml = strlen(msg);
        char *copy = malloc(ml + 1);
        if (copy) {
            for (size_t i = 0; i <= ml; i++)
                copy[i] = (unsigned char)msg[i] < 0x80 ? msg[i] : '?';
            m = json_string(copy);
            free(copy);
        }
    }
    json_object_set_new(o, "msg", m ? m : json_string(""));
    for (size_t i = 0; i < nfields; i++) {
        const pl_log_field *f = &fields[i];
        if (!f->key || reserved_field(f->key)) continue;
        json_t *v = f->str ? json_string(f->str) : json_integer((json_int_t)f->num);
        if (v) json_object_set_new(o, f->key, v);
    }
    char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!text) {
        buf[0] = '\0';
        return 0;
    }
    size_t len = strlen(text);
    snprintf(buf, cap, "%s", text);
    free(text);
    return len;
}
