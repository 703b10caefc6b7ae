/* SPDX-License-Identifier: Apache-2.0 */
/* WalletConnect relay client: the pl_transport (transport.h) of the "irn"
 * JSON-RPC relay protocol over WebSocket (ws:// and wss://), run by a loop
 * driver (driver.h). Design and wire format: docs/relay-client.md.
 *
 * As a transport it maps every topic name onto a relay topic (a name of 64
 * lowercase hex characters passes through unchanged, any other name becomes
 * hex(sha256(name)): pl_relay_topic()) and delivers under the name that was
 * subscribed; it carries the message bytes as standard base64 text.
 *
 * What it does for the caller:
 *  - authenticates with a relay-auth JWT signed by the caller's Ed25519 seed
 *    (aud = the relay URL exactly as given), sent as ?auth= in the connect
 *    URL together with projectId (when set), ua and useOnCloseEvent=true;
 *  - keeps the subscribed topics and re-subscribes every one of them
 *    (irn_batchSubscribe) after each reconnect;
 *  - keeps every publish in a bounded queue until the relay acknowledges it
 *    (pl_transport_pending counts them): messages published while
 *    disconnected are sent after the reconnect, unanswered requests are
 *    re-sent every request_timeout_ms (15 s), and a request the relay refused
 *    for rate (3001) is re-sent after a pause;
 *  - answers every irn_subscription push with `true`, and delivers each
 *    (topic, message) once: at-least-once re-deliveries are dropped on a
 *    bounded LRU of sha256(topic | message); a message that is not valid
 *    base64 is delivered as an undecodable arrival (info->err
 *    PL_ERR_BAD_BASE64);
 *  - reconnects with exponential backoff and jitter (capped, ~30 s), except
 *    after the relay rejected the client's authentication (HTTP 401/403 on
 *    the upgrade, or a close with code 3000): then the state is CLOSED with
 *    PL_ERR_RELAY_AUTH and it stays idle until closed;
 *  - sends a ping after ping_interval_ms without traffic and drops the
 *    connection (then reconnects) when nothing arrives within
 *    ping_timeout_ms after it.
 *
 * States reported to the handler's on_state: CONNECTED on every open;
 * RECONNECTING with the reason on every lost connection and failed attempt:
 * PL_ERR_TLS (handshake or certificate), PL_ERR_TIMEOUT (connect, ping or
 * request time-out, or a relay that stopped reading: max_unsent_bytes),
 * PL_ERR_WEBSOCKET (refused, unreachable, name not
 * resolved, bad upgrade, reset), PL_ERR_DISCONNECTED (the relay closed the
 * connection); CLOSED with PL_ERR_RELAY_AUTH.
 *
 * Threads and callbacks: as for every transport (transport.h). Several
 * clients may share one driver; there is no global state (each client owns
 * a libwebsockets context created on the driver's loop).
 *
 * Logging: the client prints nothing; libwebsockets' own lines go to the
 * process-wide sink of pl_set_log() (log.h), nowhere without one.
 * pl_relay_client_reason() says in words why the last attempt failed. */
#ifndef PAIRLINK_RELAY_CLIENT_H
#define PAIRLINK_RELAY_CLIENT_H

#include "pairlink/common.h"
#include "pairlink/crypto.h"
#include "pairlink/hash.h"
#include "pairlink/transport.h"

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PL_RELAY_URL_MAX 1000             /* longest relay URL accepted */
#define PL_RELAY_PROJECT_ID_MAX 128       /* longest projectId accepted */
#define PL_RELAY_MESSAGE_MAX (512u << 10) /* the relay's bound on one message (base64 text) */
/* The most bytes one publish may carry: their base64 fits the relay's bound. */
#define PL_RELAY_PAYLOAD_MAX (PL_RELAY_MESSAGE_MAX / 4 * 3)
#define PL_RELAY_USER_AGENT "pairlink-c/0.1"

/* JSON-RPC error codes of the relay protocol that change what a client does. */
#define PL_RELAY_CODE_AUTH 3000 /* also the close code of a rejected JWT: final */
#define PL_RELAY_CODE_RATE 3001 /* too many requests: send again after a pause */

/* A relay's allowance per connection, as `pairlink relay` counts it
 * (docs/relay.md, "Request rate"): two token buckets. Every request (a
 * frame) costs one request: PL_RELAY_DEF_ALLOWANCE_PER_S a second, a bucket
 * of PL_RELAY_DEF_ALLOWANCE_BURST. The items of a batch method also cost
 * entries, from a bucket PL_RELAY_ENTRY_FACTOR times larger (and refilled
 * that much faster): PL_RELAY_COST_*_ITEM_MILLI thousandths of an entry
 * each. A 3001 from it carries error data {perSecond, burst,
 * entriesPerSecond, entryBurst, retryAfterMs}; the client paces itself to
 * that (pl_relay_client_opts.rate_per_s). */
#define PL_RELAY_DEF_ALLOWANCE_PER_S 100
#define PL_RELAY_DEF_ALLOWANCE_BURST 500
#define PL_RELAY_ENTRY_FACTOR 10
#define PL_RELAY_COST_PUBLISH_ITEM_MILLI 1000 /* irn_batchPublish: each message */
#define PL_RELAY_COST_TOPIC_ITEM_MILLI 200    /* batch (un)subscribe / fetch: each topic */

/* Publish options only the WalletConnect relay reads (pl_publish_opts.ext). */
typedef struct pl_wc_relay_publish_ext {
    pl_transport_ext ext; /* .kind = PL_TRANSPORT_EXT_WC_RELAY */
    uint32_t tag;         /* routing/push hint of the WalletConnect protocols */
    bool prompt;          /* ask the relay to push-notify the wallet */
} pl_wc_relay_publish_ext;

/* What the relay says about a delivered message (pl_delivery_info.ext). */
typedef struct pl_wc_relay_delivery_ext {
    pl_transport_ext ext;    /* .kind = PL_TRANSPORT_EXT_WC_RELAY */
    uint32_t tag;            /* the publisher's tag (0 if absent or out of range) */
    const char *relay_topic; /* the 64-hex topic it came on */
} pl_wc_relay_delivery_ext;

/* The relay topic a topic name travels on: the name itself when it is 64
 * lowercase hex characters, else lowercase hex of sha256(name bytes)
 * (docs/protocol/node-manager-pairing.md, section 4.3). Errors:
 * PL_ERR_INVALID_ARG (not a valid topic name, transport.h). */
PL_EXPORT pl_err pl_relay_topic(char out[PL_TOPIC_HEX_SIZE], const char *name);

typedef enum pl_relay_op {
    PL_RELAY_OP_PUBLISH = 1,
    PL_RELAY_OP_SUBSCRIBE = 2,
    PL_RELAY_OP_UNSUBSCRIBE = 3,
} pl_relay_op;

/* Outcome of a request (optional). PUBLISH: seq is the number
 * pl_relay_client_publish() gave; err is PL_OK once the relay acknowledged
 * the message, PL_ERR_RELAY when it refused it (relay_code holds the
 * JSON-RPC error code), PL_ERR_TIMEOUT when the message's TTL ran out before
 * the relay took it, PL_ERR_CANCELLED when the client closed first (reported
 * from the driver after pl_transport_close, before its on_closed).
 * SUBSCRIBE / UNSUBSCRIBE (seq 0): reported only on failure (PL_ERR_RELAY +
 * relay_code); a failed subscription is tried again after the next
 * reconnect. topic is the topic name. */
typedef void (*pl_relay_result_cb)(void *ud, pl_relay_op op, uint64_t seq, const char *topic,
                                   pl_err err, int64_t relay_code);

typedef struct pl_relay_client_opts {
    const char *url;        /* required: ws://host[:port][/path][?query] or wss://... */
    const uint8_t *seed;    /* required: PL_ED25519_SEED_BYTES; copied and wiped on free */
    const char *project_id; /* optional (NULL: not sent) */
    const char *ca_file;    /* wss: PEM file of extra trusted CAs (NULL: system store) */
    const char *jwt;        /* optional: send this token instead of signing one per
                               connect (a persisted token; tests use a bad one) */

    pl_transport_handler handler; /* deliveries and states (may be set later) */
    pl_relay_result_cb on_result; /* optional */
    void *result_ud;
    pl_rng_fn rng; /* ids, backoff jitter, JWT sub, LRU key; NULL: pl_random */
    void *rng_ctx;

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
    /* Publishes and subscriptions made in one loop turn go out together, in
     * batches (irn_batchPublish, irn_batchSubscribe) when there are several.
     * Pacing: the client keeps a model of the relay's request allowance (a
     * token bucket in the cost model above) and holds back what would not
     * fit, which then joins the next batch. The model: rate_per_s requests
     * per second, bucket rate_burst [5 * rate_per_s], when given; [0] none
     * until the relay first refuses a request (3001), then what the refusal
     * says (pairlink relay's carries its allowance) or, from a relay that
     * says nothing, PL_RELAY_DEF_ALLOWANCE_*, halved at each further
     * refusal; UINT32_MAX: never pace. */
    uint32_t rate_per_s, rate_burst;
    /* [max_queue_bytes + 1 MiB] frames (publishes, answers to the relay's
     * pushes) waiting to be written to the socket; beyond it the relay is
     * not reading what it is sent: the connection is dropped
     * (RECONNECTING, PL_ERR_TIMEOUT) and its queue freed. */
    size_t max_unsent_bytes;
} pl_relay_client_opts;

/* Create a client on a loop driver and start connecting (asynchronously: the
 * result arrives through the handler's on_state). The options are copied;
 * opts->seed is wiped from the client's memory when it is freed (the caller
 * wipes its own copy). Close it with pl_transport_close().
 * Errors (nothing is left on the loop then): PL_ERR_BAD_URL (not ws:// or
 * wss://, no host, bad port, longer than PL_RELAY_URL_MAX, userinfo or
 * fragment), PL_ERR_INVALID_ARG (projectId or jwt too long or with characters
 * outside the URL-safe set, or a virtual driver), PL_ERR_TLS (ca_file
 * unreadable or not PEM, TLS library set-up failed), PL_ERR_WEBSOCKET
 * (libwebsockets context could not be created: e.g. its libuv plugin is not
 * installed), PL_ERR_NOMEM, errors of pl_jwt_sign. */
PL_EXPORT pl_err pl_relay_client_new(pl_transport **out, pl_driver *d,
                                     const pl_relay_client_opts *opts);

/* True if t is a relay client. */
PL_EXPORT bool pl_relay_client_is(const pl_transport *t);

/* pl_transport_publish with options, that also gives the number on_result
 * will report (*seq may be NULL; 0 on error). Same errors; PL_ERR_TOO_LARGE
 * above PL_RELAY_PAYLOAD_MAX bytes. t must be a relay client. */
PL_EXPORT pl_err pl_relay_client_publish(pl_transport *t, const char *topic, const uint8_t *data,
                                         size_t len, const pl_publish_opts *opts, uint64_t *seq);

/* Why the last connection attempt failed or the connection ended, in words
 * for people, e.g. "connection refused", "cannot resolve relay.example:
 * unknown node or service", "the relay refused our authentication (HTTP
 * 401)", "HTTP 404 instead of a WebSocket upgrade", a TLS library's reason,
 * "the relay closed the connection (code 1001)", "no answer to a ping
 * within 10 s". "" while connected and before any failure. Read it from
 * on_state; valid until the client's next callback or call. t must be a
 * relay client. */
PL_EXPORT const char *pl_relay_client_reason(const pl_transport *t);

/* The client's did:key (from the seed); valid while the client lives. */
PL_EXPORT const char *pl_relay_client_did(const pl_transport *t);

typedef struct pl_relay_client_stats {
    uint64_t connect_attempts; /* WebSocket connections started */
    uint64_t connects;         /* of which reached the open state */
    uint64_t delivered;        /* messages passed to on_message */
    uint64_t duplicates;       /* pushes dropped as already delivered */
    uint64_t resent;           /* requests re-sent after a time-out or 3001 */
} pl_relay_client_stats;

PL_EXPORT void pl_relay_client_get_stats(const pl_transport *t, pl_relay_client_stats *out);

#ifdef __cplusplus
}
#endif
#endif
