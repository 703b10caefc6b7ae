/* SPDX-License-Identifier: Apache-2.0 */
/* Logging: where the library's log lines go, one process-wide setting.
 *
 * pairlink itself prints nothing. The libraries it drives may have things
 * to say (libwebsockets, under the relay client and the relay server:
 * connection errors, TLS details, and much more at debug level); from the
 * first relay client or server on, their lines go to the function set here,
 * filtered by its level, never straight to the program's stderr. Without a
 * call, nothing is printed.
 *
 * Threads: libwebsockets keeps one process-wide setting, so does this; set
 * it at start-up, before any client or server runs. The function is called
 * on the thread of the loop that runs the client or server that logs. */
#ifndef PAIRLINK_LOG_H
#define PAIRLINK_LOG_H

#include "pairlink/common.h"

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum pl_log_level {
    PL_LOG_OFF = 0,   /* nothing */
    PL_LOG_ERROR = 1, /* failures */
    PL_LOG_WARN = 2,  /* and anomalies that were handled */
    PL_LOG_INFO = 3,  /* and notices (connections, start-up) */
    PL_LOG_DEBUG = 4, /* and everything the libraries offer */
} pl_log_level;

/* One line, without its newline; `source` names who logs ("libwebsockets").
 * Both strings are valid during the call only. */
typedef void (*pl_log_fn)(void *ud, pl_log_level level, const char *source, const char *line);

/* Send the lines at `level` or more severe to fn (NULL: drop them all).
 * Replaces the previous setting and applies at once. */
PL_EXPORT void pl_set_log(pl_log_fn fn, void *ud, pl_log_level level);

/* "off", "error", "warn", "info", "debug"; never NULL. */
PL_EXPORT const char *pl_log_level_name(pl_log_level level);

/* The level named name ("error", "warn", "info", "debug", "off"); false
 * (and *out PL_LOG_OFF) for any other string. */
PL_EXPORT bool pl_log_level_parse(const char *name, pl_log_level *out);

/* One structured field of a log line: a string (str non-NULL) or a number
 * (num). Never a secret: callers pass identifiers and counts, not keys,
 * tokens or message bodies. */
typedef struct pl_log_field {
    const char *key;
    const char *str;
    long long num;
} pl_log_field;

typedef enum pl_log_format {
    /* "2026-01-02T03:04:05.678Z SOURCE LEVEL: MSG" (fields left out: the
     * message says the same in words) */
    PL_LOG_FORMAT_TEXT = 0,
    /* {"ts":"2026-...Z","level":"info","source":SOURCE,"msg":MSG, FIELDS...}:
     * one JSON object; a field named like ts, level, source or msg is
     * dropped. */
    PL_LOG_FORMAT_JSON = 1,
} pl_log_format;

/* Format one log line (no newline) into buf (cap > 0: always
 * NUL-terminated, cut at cap - 1 bytes; a JSON line cut short is not valid
 * JSON, so give it a few KiB). unix_ms: the time of the line. Returns the
 * length the whole line needs, as snprintf. Thread-safe. */
PL_EXPORT size_t pl_log_format_line(char *buf, size_t cap, pl_log_format format, int64_t unix_ms,
                                    pl_log_level level, const char *source, const char *msg,
                                    const pl_log_field *fields, size_t nfields);

#ifdef __cplusplus
}
#endif
#endif
