/* SPDX-License-Identifier: Apache-2.0 */
/* The WalletConnect relay client as a protocol core: no I/O, no clock.
 *
 * Frames, connection events and time (`now_ms`, unix ms) in; frames to
 * send, connection commands, transport events and one deadline out, polled
 * with pl__rc_poll() after every call. The runtime (ws_client.c) only moves
 * bytes between libwebsockets and this core; everything the client decides
 * (publish queue, resend, rate-limit pauses, backoff, pings, de-duplication,
 * topic names to relay topics, base64) is here and is tested with explicit
 * time (tests/test_relay_client.c).
 *
 * Connection life as the core sees it: it asks for a connection with a
 * CONNECT output (the path and query to request, JWT included); the runtime
 * answers with exactly one of on_open / on_failed, and later, for an open
 * connection, on_closed or on_lost. DROP asks the runtime to abandon the
 * current connection at once; the core already counts it as lost, so the
 * runtime reports nothing more about that connection.
 *
 * Also here, pure and exposed to the tests: relay URL parsing, the
 * de-duplication LRU and the backoff curve. Private to the library. */
#ifndef PAIRLINK_WC_RELAY_CLIENT_CORE_H
#define PAIRLINK_WC_RELAY_CLIENT_CORE_H

#include "pairlink/common.h"
#include "pairlink/relay_client.h"
#include "pairlink/transport.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- pure helpers ---- */

#define PL__RELAY_HOST_MAX 255

typedef struct pl__relay_url {
    bool tls;                                 /* wss:// */
    char host[PL__RELAY_HOST_MAX + 1];        /* for connect(): IPv6 without brackets */
    char host_header[PL__RELAY_HOST_MAX + 9]; /* Host: value ([v6] and :port when not default) */
    int port;
    char path[PL_RELAY_URL_MAX + 1]; /* "/" when absent; includes any ?query */
    bool has_query;
} pl__relay_url;

/* Parse ws://host[:port][/path][?query] or wss://... (scheme case-insensitive).
 * Errors: PL_ERR_BAD_URL. */
pl_err pl__relay_url_parse(pl__relay_url *out, const char *url);

/* Bounded LRU set of 32-byte digests. */
typedef struct pl__dedup pl__dedup;

/* capacity >= 1; key: the SipHash key of the buckets (16 bytes). Errors:
 * PL_ERR_NOMEM. */
pl_err pl__dedup_new(pl__dedup **out, uint32_t capacity, const uint8_t key[16]);
void pl__dedup_free(pl__dedup *d); /* NULL ok */
/* True if digest was already present (it becomes the most recent); false if
 * it was not (it is inserted, evicting the least recently seen when full). */
bool pl__dedup_check(pl__dedup *d, const uint8_t digest[32]);
size_t pl__dedup_size(const pl__dedup *d);

/* sha256(topic | '|' | message): the key at-least-once deliveries are
 * de-duplicated on. */
void pl__relay_dedup_key(uint8_t out[32], const char *topic, const char *message, size_t len);

/* Backoff before reconnect attempt `attempt` (0-based): a uniformly jittered
 * value in [b/2, b] where b = min(max_ms, min_ms * 2^attempt); rnd is a
 * random 32-bit number. */
uint32_t pl__relay_backoff_ms(unsigned attempt, uint32_t min_ms, uint32_t max_ms, uint32_t rnd);

/* ---- the core ---- */

typedef struct pl__rc pl__rc;

typedef struct pl__rc_config {
    const char *url;     /* required, see pl_relay_client_opts */
    const uint8_t *seed; /* required, copied */
    const char *project_id;
    const char *jwt;
    pl_rng_fn rng; /* NULL: pl_random */
    void *rng_ctx;
    uint32_t connect_timeout_ms, request_timeout_ms, reconnect_min_ms, reconnect_max_ms;
    uint32_t ping_interval_ms, ping_timeout_ms, max_queue, max_topics, dedup_capacity;
    size_t max_queue_bytes, max_frame_bytes, max_unsent_bytes;
    /* items per batch frame (0: the protocol's 500; 1: no batches); the
     * allowance paced to (see pl_relay_client_opts) */
    uint32_t batch_max, rate_per_s, rate_burst;
    /* true: pl__rc_poll does not put queued requests on the wire; the
     * runtime calls pl__rc_flush once per loop turn, so that everything a
     * turn produced (a node manager answering the pushes one recv brought)
     * leaves in one batch frame per kind instead of one frame per push. */
    bool flush_per_turn;
} pl__rc_config;

typedef enum pl__rc_out_kind {
    PL__RC_CONNECT = 1, /* open a connection to the URL's host: text = path?query */
    PL__RC_SEND,        /* a text frame: text, len */
    PL__RC_PING,        /* a WebSocket ping */
    PL__RC_DROP,        /* abandon the current connection now (no close frame) */
    PL__RC_STATE,       /* state, err */
    PL__RC_MESSAGE,     /* topic (name), relay_topic, data/len, published_at, tag, err */
    PL__RC_RESULT,      /* op, seq, topic (name), err, relay_code */
} pl__rc_out_kind;

typedef struct pl__rc_output {
    pl__rc_out_kind kind;
    char *text; /* CONNECT, SEND: owned, NUL-terminated */
    size_t len;
    char topic[PL_TRANSPORT_TOPIC_MAX + 1];
    char relay_topic[PL_TOPIC_HEX_SIZE];
    uint8_t *data; /* MESSAGE: owned; NULL when err is set */
    size_t data_len;
    int64_t published_at;
    uint32_t tag;
    pl_err err;
    pl_transport_state state;
    pl_relay_op op;
    uint64_t seq;
    int64_t relay_code;
} pl__rc_output;

void pl__rc_output_clear(pl__rc_output *o);

/* A core that connects at now_ms (its first deadline). Errors:
 * PL_ERR_BAD_URL, PL_ERR_INVALID_ARG (projectId, jwt), PL_ERR_NOMEM, errors
 * of pl_jwt_sign (checked once here so that a refused seed or URL is not an
 * endless reconnect). */
pl_err pl__rc_new(pl__rc **out, const pl__rc_config *cfg, int64_t now_ms);
void pl__rc_free(pl__rc *c); /* NULL ok; wipes the seed */

const pl__relay_url *pl__rc_url(const pl__rc *c);
const char *pl__rc_did(const pl__rc *c);

/* The transport operations (names already checked by the caller). */
pl_err pl__rc_publish(pl__rc *c, const char *name, const uint8_t *data, size_t len,
                      const pl_publish_opts *opts, int64_t now_ms, uint64_t *seq);
pl_err pl__rc_subscribe(pl__rc *c, const char *name, int64_t now_ms);
pl_err pl__rc_unsubscribe(pl__rc *c, const char *name, int64_t now_ms);
size_t pl__rc_pending(const pl__rc *c);
pl_transport_state pl__rc_state(const pl__rc *c, pl_err *err);
void pl__rc_stats(const pl__rc *c, pl_relay_client_stats *out);

/* Connection events from the runtime. Each is ignored when it does not fit
 * the state (a late event of a connection the core dropped). */
void pl__rc_on_open(pl__rc *c, int64_t now_ms);
/* The attempt failed before opening: http_status of the upgrade answer (0:
 * none), why: the library's reason text (may be NULL). */
void pl__rc_on_failed(pl__rc *c, unsigned http_status, const char *why, int64_t now_ms);
/* The open connection ended; close_code: the relay's close code (0: none). */
void pl__rc_on_closed(pl__rc *c, int close_code, int64_t now_ms);
/* The connection vanished (any state) for `err`. */
void pl__rc_on_lost(pl__rc *c, pl_err err, int64_t now_ms);
/* The runtime wrote (or discarded) `len` bytes of a SEND output. The core
 * counts what it gave the runtime to send until then; beyond
 * max_unsent_bytes the relay is not reading and the connection is
 * dropped. */
void pl__rc_on_written(pl__rc *c, size_t len);
/* Bytes of a frame from the relay (fragments in order; final on the last). */
void pl__rc_on_data(pl__rc *c, const void *data, size_t len, bool binary, bool final,
                    int64_t now_ms);
void pl__rc_on_pong(pl__rc *c, int64_t now_ms);

void pl__rc_on_timer(pl__rc *c, int64_t now_ms);
/* Why the last attempt failed or the connection ended, in words ("" while
 * connected or before any failure); valid until the next call. */
const char *pl__rc_why(const pl__rc *c);
int64_t pl__rc_next_deadline(const pl__rc *c);

/* Closing: every unacknowledged publish becomes a RESULT PL_ERR_CANCELLED;
 * nothing else is produced afterwards. Returns whether a connection was
 * open (the runtime then closes it gracefully). */
bool pl__rc_close(pl__rc *c);

/* Take the oldest output (false and *out zeroed when none). Unless
 * flush_per_turn, it first puts the queued requests on the wire. */
bool pl__rc_poll(pl__rc *c, pl__rc_output *out);

/* Put the queued subscriptions and publishes on the wire (batched, as
 * pacing allows): with flush_per_turn, once per loop turn. */
void pl__rc_flush(pl__rc *c, int64_t now_ms);

#endif
