/* WalletConnect relay client: a WebSocket client of the "irn" JSON-RPC relay
 * protocol (ws:// and wss://) driven by a libuv loop, behind the
 * pl_transport interface.
 *
 * What it does for the caller:
 *  - authenticates with a relay-auth JWT signed by the caller's Ed25519 seed
 *    (aud = the relay URL exactly as given), sent as ?auth= in the connect
 *    URL together with projectId (when set), ua and useOnCloseEvent=true;
 *  - keeps a set of subscribed topics and re-subscribes every one of them
 *    (irn_batchSubscribe) after each reconnect;
 *  - keeps every publish in a bounded queue until the relay acknowledges it:
 *    messages published while disconnected are sent after the reconnect,
 *    unanswered requests are re-sent every request_timeout_ms (15 s), and a
 *    request the relay refused for rate (3001) is re-sent after a pause;
 *  - answers every irn_subscription push with `true`, and delivers each
 *    (topic, message) once: at-least-once re-deliveries are dropped on a
 *    bounded LRU of sha256(topic | message);
 *  - reconnects with exponential backoff and jitter (capped, ~30 s), except
 *    after the relay rejected the client's authentication (HTTP 401/403 on
 *    the upgrade, or a close with code 3000): then it reports
 *    PL_RELAY_FAILED / PL_ERR_RELAY_AUTH and stays idle until closed;
 *  - answers WebSocket pings; sends its own ping after ping_interval_ms
 *    without traffic and drops the connection (then reconnects) when nothing
 *    arrives within ping_timeout_ms after it.
 *
 * Threads: a client belongs to the loop it was created on. Every function
 * must be called from that loop's thread; callbacks run on it. Several
 * clients may share one loop; there is no global state (each client owns a
 * libwebsockets context created on the caller's loop).
 *
 * Callbacks may call any function of this header, including
 * pl_relay_client_close() on their own client. They are never called from
 * inside a function of this header, only from the loop.
 *
 * Logging: the client prints nothing; libwebsockets logs through its own
 * process-wide setting (lws_set_log_level), which the application owns. */
#ifndef PAIRLINK_RELAY_CLIENT_H
#define PAIRLINK_RELAY_CLIENT_H

#include "pairlink/common.h"
#include "pairlink/crypto.h"
#include "pairlink/transport.h"

#include <stdbool.h>
#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PL_RELAY_URL_MAX 1000        /* longest relay URL accepted */
#define PL_RELAY_PROJECT_ID_MAX 128  /* longest projectId accepted */
#define PL_RELAY_MESSAGE_MAX (512u << 10) /* the relay's per-message bound */
#define PL_RELAY_USER_AGENT "pairlink-c/0.1"

typedef struct pl_relay_client pl_relay_client;

typedef enum pl_relay_state {
    PL_RELAY_CONNECTED = 1,    /* the WebSocket is open; err is PL_OK */
    PL_RELAY_DISCONNECTED = 2, /* lost or failed; a reconnect is scheduled */
    PL_RELAY_FAILED = 3,       /* given up (auth rejected); no more attempts */
} pl_relay_state;

typedef enum pl_relay_op {
    PL_RELAY_OP_PUBLISH = 1,
    PL_RELAY_OP_SUBSCRIBE = 2,
    PL_RELAY_OP_UNSUBSCRIBE = 3,
} pl_relay_op;

/* A message delivered on a subscribed topic. topic (64 lowercase hex) and message
 * (NUL-terminated, message_len bytes) are valid during the call only.
 * published_at_ms: the relay's timestamp (unix ms, 0 if absent); tag: the
 * publisher's tag (0 if absent or out of range). */
typedef void (*pl_relay_message_cb)(void *user_data, const char *topic, const char *message,
                                    size_t message_len, int64_t published_at_ms, uint32_t tag);

/* Connection state changes. DISCONNECTED and FAILED carry the reason:
 * PL_ERR_RELAY_AUTH (rejected; comes with FAILED), PL_ERR_TLS (handshake or
 * certificate), PL_ERR_TIMEOUT (connect, ping or request time-out),
 * PL_ERR_WEBSOCKET (refused, unreachable, name not resolved, bad upgrade,
 * reset), PL_ERR_DISCONNECTED (the relay closed the connection). */
typedef void (*pl_relay_state_cb)(void *user_data, pl_relay_state state, pl_err err);

/* Outcome of a request (optional). PUBLISH: seq is the number that
 * pl_relay_client_publish() returned; err is PL_OK once the relay
 * acknowledged the message, PL_ERR_RELAY when it refused it (relay_code holds
 * the JSON-RPC error code), PL_ERR_TIMEOUT when the message's TTL ran out
 * before the relay took it, PL_ERR_CANCELLED when the client was closed
 * first. SUBSCRIBE / UNSUBSCRIBE (seq 0): reported only on failure
 * (PL_ERR_RELAY + relay_code); a failed subscription is tried again after the
 * next reconnect. */
typedef void (*pl_relay_result_cb)(void *user_data, pl_relay_op op, uint64_t seq,
                                   const char *topic, pl_err err, int64_t relay_code);

typedef void (*pl_relay_closed_cb)(void *user_data);

typedef struct pl_relay_client_opts {
    const char *url;        /* required: ws://host[:port][/path][?query] or wss://... */
    const uint8_t *seed;    /* required: PL_ED25519_SEED_BYTES; copied and wiped on free */
    const char *project_id; /* optional (NULL: not sent) */
    const char *ca_file;    /* wss: PEM file of extra trusted CAs (NULL: system store) */
    const char *jwt;        /* optional: send this token instead of signing one per
                               connect (a persisted token; tests use a bad one) */

    pl_relay_message_cb on_message; /* required */
    pl_relay_state_cb on_state;     /* optional */
    pl_relay_result_cb on_result;   /* optional */
    void *user_data;

    /* Tuning; 0 means the default in brackets. */
    uint32_t connect_timeout_ms; /* [15000] socket + TLS + upgrade */
    uint32_t request_timeout_ms; /* [15000] then the request is re-sent */
    uint32_t reconnect_min_ms;   /* [1000] first backoff step */
    uint32_t reconnect_max_ms;   /* [30000] backoff cap */
    uint32_t ping_interval_ms;   /* [20000] silence before we ping */
    uint32_t ping_timeout_ms;    /* [10000] silence after the ping before we drop */
    uint32_t max_queue;          /* [1024] unacknowledged publishes */
    size_t max_queue_bytes;      /* [16 MiB] their message bytes together */
    uint32_t max_topics;         /* [1000] subscribed topics */
    uint32_t dedup_capacity;     /* [4096] (topic, message) digests remembered */
    size_t max_frame_bytes;      /* [2 MiB] larger frames from the relay are dropped */
} pl_relay_client_opts;

/* Create a client on `loop` and start connecting (asynchronously: the result
 * arrives through on_state). The options are copied; opts->seed is wiped from
 * the client's memory when it is freed (the caller wipes its own copy).
 * Errors (nothing is left on the loop then): PL_ERR_BAD_URL (not ws:// or
 * wss://, no host, bad port, longer than PL_RELAY_URL_MAX, userinfo or
 * fragment), PL_ERR_INVALID_ARG (projectId or jwt too long or with
 * characters outside the URL-safe set), PL_ERR_TLS (ca_file unreadable or not
 * PEM, TLS library set-up failed), PL_ERR_WEBSOCKET (libwebsockets context
 * could not be created: e.g. its libuv plugin is not installed),
 * PL_ERR_NOMEM, errors of pl_jwt_sign. */
PL_EXPORT pl_err pl_relay_client_new(pl_relay_client **out, uv_loop_t *loop,
                                     const pl_relay_client_opts *opts);

/* The transport view of the client (publish, subscribe, unsubscribe), valid
 * until pl_relay_client_close(). ctx is the client. */
PL_EXPORT pl_transport pl_relay_client_transport(pl_relay_client *c);

/* Queue a message on a topic (64 lowercase hex characters). opts NULL: ttl 86400,
 * tag 0. The message is copied and stays queued until the relay acknowledges
 * it (see on_result). *seq (may be NULL) receives the number on_result will
 * report. Errors: PL_ERR_INVALID_ARG (topic not 64 hex, message not
 * UTF-8 text, ttl 0), PL_ERR_TOO_LARGE (message above
 * PL_RELAY_MESSAGE_MAX, or the queue is full: max_queue / max_queue_bytes),
 * PL_ERR_STATE (closing or FAILED), PL_ERR_NOMEM. */
PL_EXPORT pl_err pl_relay_client_publish(pl_relay_client *c, const char *topic,
                                         const char *message, const pl_publish_opts *opts,
                                         uint64_t *seq);

/* Add a topic to the subscription set (idempotent); subscribes at once when
 * connected, else after connecting. Errors: PL_ERR_INVALID_ARG (topic not 64
 * lowercase hex), PL_ERR_TOO_LARGE (max_topics), PL_ERR_STATE (closing), PL_ERR_NOMEM. */
PL_EXPORT pl_err pl_relay_client_subscribe(pl_relay_client *c, const char *topic);

/* Remove a topic from the set (idempotent); messages for it are no longer
 * delivered. Errors: PL_ERR_INVALID_ARG, PL_ERR_STATE (closing), PL_ERR_NOMEM. */
PL_EXPORT pl_err pl_relay_client_unsubscribe(pl_relay_client *c, const char *topic);

/* True while the WebSocket is open. */
PL_EXPORT bool pl_relay_client_connected(const pl_relay_client *c);

/* Publishes not yet acknowledged by the relay. */
PL_EXPORT size_t pl_relay_client_pending(const pl_relay_client *c);

/* The client's did:key (from the seed); valid while the client lives. */
PL_EXPORT const char *pl_relay_client_did(const pl_relay_client *c);

typedef struct pl_relay_client_stats {
    uint64_t connect_attempts; /* WebSocket connections started */
    uint64_t connects;         /* of which reached the open state */
    uint64_t delivered;        /* messages passed to on_message */
    uint64_t duplicates;       /* pushes dropped as already delivered */
    uint64_t resent;           /* requests re-sent after a time-out or 3001 */
} pl_relay_client_stats;

PL_EXPORT void pl_relay_client_get_stats(const pl_relay_client *c, pl_relay_client_stats *out);

/* Close the client: the connection is closed (with a close frame when it is
 * open) and every handle is closed. From the loop, after this call returns,
 * each publish not yet acknowledged is reported to on_result as
 * PL_ERR_CANCELLED, then on_closed (may be NULL) is called and the client is
 * freed; no other callback runs after this call. To be sure a message got to
 * the relay, wait for its on_result (or pl_relay_client_pending() == 0)
 * before closing. Calling it twice is misuse. The loop must keep running
 * until on_closed; then uv_loop_close() succeeds. */
PL_EXPORT void pl_relay_client_close(pl_relay_client *c, pl_relay_closed_cb on_closed);

#ifdef __cplusplus
}
#endif
#endif
