/* The process-wide log sink (include/pairlink/log.h) and the routing of
 * libwebsockets' own logging into it. */
#include "pairlink/log.h"
#include "platform/log_internal.h"

#include <libwebsockets.h>
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
