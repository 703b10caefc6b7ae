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

#ifdef __cplusplus
}
#endif
#endif
