/* SPDX-License-Identifier: Apache-2.0 */
/* The I/O runtime of `pairlink relay`: a libwebsockets server on one libuv
 * loop that drives the relay protocol core (relay/relay_core.h) and its
 * SQLite store (relay/relay_store.h).
 *
 * Per connection: a write queue drained one lws_write per WRITEABLE, a ping
 * every ping interval (the JS client drops a socket silent for 35 s), reaping
 * after the idle timeout without any frame or pong. Relay auth: the JWT comes
 * from `?auth=` or `Authorization: Bearer`; its aud must be one of the
 * relay's public URLs (opts.public_urls, by default those of the listening
 * address): the policy is relay/auth.h. Time and timers come from the driver
 * (pairlink/driver.h). Store actions produced during one loop iteration
 * are committed in one transaction before the frames that follow them are
 * released (group commit), so a publish answered `true` is on disk.
 *
 * Library code does not print: log lines go to the callback in the options.
 * All functions run on the thread that calls pl__ws_server_run. Private to
 * the library; behaviour and options are described in docs/relay.md. */
#ifndef PAIRLINK_WS_SERVER_H
#define PAIRLINK_WS_SERVER_H

#include "pairlink/log.h"
#include "relay/observe.h"
#include "relay/relay_backend.h"
#include "relay/relay_config.h"
#include "relay/relay_core.h"

#include <stdbool.h>
#include <stddef.h>

enum { PL__LOG_ERROR = 0, PL__LOG_WARN = 1, PL__LOG_INFO = 2, PL__LOG_DEBUG = 3 };

/* One log line (no trailing newline). */
typedef void (*pl__ws_log_fn)(void *ud, int level, const char *line);
/* One log line with its fields (for a JSON log); the fields are never
 * secrets (no JWT, no message body). */
typedef void (*pl__ws_logkv_fn)(void *ud, int level, const char *msg, const pl_log_field *fields,
                                size_t nfields);

typedef struct pl__ws_server_opts {
    const char *host;        /* address to bind; NULL: 127.0.0.1 */
    int port;                /* 0: the kernel picks a free port */
    const char *db_path;     /* SQLite mailbox; NULL: in memory (lost on exit) */
    /* cluster.urls non-NULL: the mailbox is a NATS JetStream cluster shared
     * with other instances (relay_backend.h; exclusive with db_path; its
     * max_mailbox and max_message come from limits). */
    pl__relay_nats_opts cluster;
    bool require_auth;       /* refuse (HTTP 401) clients without a valid JWT */
    /* Zero fields: defaults. limits.max_memory_bytes is ignored: the
     * core's budget comes from max_memory below. */
    pl__relay_limits limits;
    /* The process's memory budget (its RSS): what the relay holds at
     * start-up and a reserve for one request's transient copies
     * (PL__WS_MEMORY_RESERVE) come off it, the rest is the core's
     * accounted budget. 0: PL_RELAY_DEF_MEMORY. */
    size_t max_memory;
    int ping_interval_ms;    /* 0: 20000 */
    int idle_timeout_ms;     /* 0: 2 * ping interval + 10000 */
    int handshake_timeout_s; /* a socket must complete its upgrade in this; 0: 10 */
    /* SO_SNDBUF of every accepted socket; 0: the kernel's autotuning (which
     * may keep a few MiB per connection that does not read, outside the
     * relay's budget). */
    int socket_sndbuf;
    bool handle_signals;     /* stop cleanly on SIGINT/SIGTERM */
    pl__ws_log_fn log;       /* NULL: silent */
    void *log_ud;
    int log_level;           /* highest PL__LOG_* level passed to log */
    /* The URLs clients reach this relay at, which their JWTs name as aud
     * (at most PL__RELAY_AUD_MAX). n_public_urls 0: the listening address
     * (see pl__relay_audience_default). */
    const char *const *public_urls;
    size_t n_public_urls;
    const char *tls_cert;    /* PEM certificate and key: serve wss:// (both or neither) */
    const char *tls_key;
    /* More listening sockets than host/port (at most PL__RELAY_LISTEN_MAX):
     * nlisten 0 means host and port above; otherwise these replace them.
     * An IPv6 listener takes an address literal (binds that address only,
     * IPV6_V6ONLY, so [::] and 0.0.0.0 can listen side by side). */
    const pl__relay_listen *listen;
    size_t nlisten;
    /* With require_auth: the client keys (did:key, sorted with strcmp)
     * admitted; a valid JWT whose iss is not among them gets HTTP 401.
     * nallow 0: any valid JWT. Copied. */
    const char (*allow)[PL_DID_KEY_SIZE];
    size_t nallow;
    /* GET /health and GET /metrics: pl__relay_http_access (0: served). */
    int health, metrics;
    pl__ws_logkv_fn logkv; /* NULL: log; else every line goes here instead */
    /* SIGHUP (with handle_signals): called on the loop thread; the callee
     * reloads and calls pl__ws_server_apply. NULL: a log line says there
     * is nothing to reload. */
    void (*on_reload)(void *ud);
    void *reload_ud;
    /* Misbehaving on purpose, for the clients' socket tests
     * (tests/test_relay_client.c), never in service: */
    int fault_close_code;    /* close every connection with this code once it is open */
    bool fault_ignore;       /* read every frame, answer none (a stuck relay) */
} pl__ws_server_opts;

/* Memory kept out of the core's budget for what one request copies while
 * it runs (the frame, its JSON tree, an answer page as tree, text and
 * frame, a store action) and what SQLite and libwebsockets allocate. */
#define PL__WS_MEMORY_RESERVE ((size_t)16 << 20)
/* The smallest core budget a relay starts with. */
#define PL__WS_MEMORY_MIN ((size_t)4 << 20)

typedef struct pl__ws_server pl__ws_server;

/* Open the store, load the unexpired mailbox, create the loop and bind the
 * listening socket. opts is copied. Errors: PL_ERR_STORE,
 * PL_ERR_STORE_CORRUPT, PL_ERR_INVALID_ARG (bad limits or address),
 * PL_ERR_WEBSOCKET (libwebsockets could not start or bind), PL_ERR_SYS,
 * PL_ERR_NOMEM. *out is NULL on failure. */
pl_err pl__ws_server_new(pl__ws_server **out, const pl__ws_server_opts *opts);

/* The port actually bound (useful when opts.port was 0): the first
 * listener's. */
int pl__ws_server_port(const pl__ws_server *s);

/* The listeners, in the order given: how many, and each one's bound
 * address (numeric, IPv6 without brackets), port and family. */
size_t pl__ws_server_listeners(const pl__ws_server *s);
const char *pl__ws_server_listener_host(const pl__ws_server *s, size_t i);
int pl__ws_server_listener_port(const pl__ws_server *s, size_t i);
bool pl__ws_server_listener_ipv6(const pl__ws_server *s, size_t i);

/* Apply the settings of o that may change while the relay runs (a reload):
 * limits (the core's, pl__relay_core_set_limits), max_memory, require_auth,
 * allow, health, metrics, log_level. Everything else in o is ignored.
 * Errors (nothing changed): PL_ERR_INVALID_ARG (inconsistent limits, a
 * max_memory too small), PL_ERR_NOMEM. Loop thread only. */
pl_err pl__ws_server_apply(pl__ws_server *s, const pl__ws_server_opts *o);

/* The counters behind /health and /metrics, now. */
void pl__ws_server_observe(pl__ws_server *s, pl__relay_observed *out);

/* Count a reload (the metrics show them). */
void pl__ws_server_count_reload(pl__ws_server *s, bool ok);

/* Serve until pl__ws_server_stop or a signal (with handle_signals). Returns
 * PL_OK after a clean shutdown (open transaction committed, connections
 * closed), PL_ERR_STORE if the last commit failed. Call once. */
pl_err pl__ws_server_run(pl__ws_server *s);

/* Begin a clean shutdown; only from the loop thread (a callback). */
void pl__ws_server_stop(pl__ws_server *s);

/* Free everything; NULL ok. After run returned, or instead of it. */
void pl__ws_server_free(pl__ws_server *s);

#endif
