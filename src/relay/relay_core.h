/* SPDX-License-Identifier: Apache-2.0 */
/* The WalletConnect relay protocol core ("irn" JSON-RPC over WebSocket text
 * frames), without I/O and without a clock.
 *
 * The runtime feeds it connection events and complete text frames together
 * with the current wall-clock time in milliseconds, then drains the actions
 * it produced, in order: frames to send, connections to close, and mailbox
 * records to persist or forget. A STORE_PUT always precedes the SEND that
 * acknowledges the publish (`true`), so a runtime that commits store
 * operations before it writes the frames that follow them never acknowledges
 * a message it could lose. pl__relay_core_next_deadline() says when
 * pl__relay_core_tick() must run next (message expiry, re-push of
 * unacknowledged irn_subscription requests).
 *
 * What it owns: subscriptions per connection, the mailbox per topic (every
 * message until its TTL), de-duplication of re-published messages
 * (message id = sha256(message) hex), subscription ids
 * (sha256(topic_hex + client did:key) hex), the limits and their JSON-RPC
 * error codes, and the irn_subscription push with acknowledgement tracking.
 *
 * Not thread-safe: one core is driven from one thread (the loop thread).
 * Private to the library (pl__ prefix); described in docs/relay.md. */
#ifndef PAIRLINK_RELAY_CORE_H
#define PAIRLINK_RELAY_CORE_H

#include "pairlink/common.h"
#include "pairlink/crypto.h"
#include "pairlink/hash.h"
#include "pairlink/relay_client.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* JSON-RPC error codes the relay answers with. */
#define PL_RELAY_ERR_PARSE (-32700)           /* frame is not JSON */
#define PL_RELAY_ERR_INVALID_REQUEST (-32600) /* not JSON-RPC 2.0; payload too large */
#define PL_RELAY_ERR_METHOD_NOT_FOUND (-32601)
#define PL_RELAY_ERR_INVALID_PARAMS (-32602)
#define PL_RELAY_ERR_INTERNAL (-32603)
#define PL_RELAY_ERR_HANDLER (-32000) /* ttl bounds, mailbox, storage, quota, subscription limits  \
                                       */
#define PL_RELAY_ERR_AUTH PL_RELAY_CODE_AUTH
#define PL_RELAY_ERR_RATE PL_RELAY_CODE_RATE /* too many requests; relay busy (memory budget) */
#define PL_RELAY_ERR_KINDS 8 /* the codes above, counted by pl__relay_stats.rpc_errors */

#define PL_RELAY_TOPIC_HEX 64
#define PL_RELAY_ID_HEX 64
#define PL_RELAY_BATCH_MAX 500 /* items in one batch method, as in the protocol */
#define PL_RELAY_ATTESTATION_MAX 8192
#define PL_RELAY_FETCH_MAX 500 /* messages in one fetch answer; hasMore tells the rest */
/* JSON values in one frame (counted as commas, '[' and '{' outside
 * strings): what jansson allocates to parse a frame stays bounded. */
#define PL_RELAY_JSON_VALUES_MAX 16384

/* A request allowance of its own for one identity (--allowance). */
typedef struct pl__relay_allowance {
    char did[PL_DID_KEY_SIZE];
    uint32_t rate_per_s, burst;
} pl__relay_allowance;

/* Every limit the core enforces. Zero in a field of the struct given to
 * pl__relay_core_new means "the default" (the PL_RELAY_DEF_* value);
 * SIZE_MAX in a count or byte limit means "no limit". docs/relay.md lists
 * each with its error code. */
typedef struct pl__relay_limits {
    size_t max_frame_bytes;   /* a whole text frame */
    size_t max_message_bytes; /* the `message` string of one publish */
    int64_t min_ttl_s;        /* publish ttl bounds, seconds */
    int64_t max_ttl_s;
    size_t max_topics_per_conn;   /* live subscriptions per connection */
    size_t max_mailbox_per_topic; /* stored messages per topic */
    /* Stored messages, all topics together: their cost with overhead
     * (pl__relay_message_cost), and their number. The default cost bound is
     * PL_RELAY_DEF_TOTAL_BYTES or half the memory budget, the smaller. */
    size_t max_total_bytes;
    size_t max_messages;
    size_t max_topics; /* topics the relay holds (stored or listened to) */
    /* The relay-wide memory budget of the core, in accounted bytes:
     * messages, topics, subscriptions, connections (conn_cost_bytes each),
     * pushes in flight, send queues. Beyond it new work is refused (3001)
     * and the connection holding the largest send queue is closed. */
    size_t max_memory_bytes;
    /* Per publisher, charged to both its address and its did:key: stored
     * messages, their cost, and the topics it brought in that still exist.
     * The defaults of the first two are at most a quarter of max_messages
     * and max_total_bytes. */
    size_t quota_messages;
    size_t quota_bytes;
    size_t quota_topics;
    size_t max_conns;          /* sockets admitted, handshakes included */
    size_t max_conns_per_addr; /* of them from one address */
    uint32_t rate_per_s;       /* requests per second per connection (token refill) */
    uint32_t rate_burst;       /* bucket size */
    bool rate_unlimited;       /* true: no request rate limit */
    /* Identities (did:key of a verified JWT) that get their own allowance
     * instead of rate_per_s / rate_burst: an operator's node manager, say.
     * Borrowed: must outlive the core. */
    const struct pl__relay_allowance *allowances;
    size_t nallowances;
    int64_t ack_timeout_ms;             /* re-push an unacknowledged irn_subscription after this */
    uint32_t max_push_attempts;         /* then give up on that connection (mailbox keeps it) */
    size_t max_inflight_per_conn;       /* unacknowledged pushes per connection */
    size_t max_inflight_bytes_per_conn; /* their frame bytes (one push always goes) */
    size_t max_queue_bytes_per_conn;    /* frames not yet written; beyond: close 1008 */
    size_t fetch_page_bytes;            /* one irn_fetchMessages answer (one message always fits) */
    /* Not limits: what the runtime tells the core about its own costs. */
    size_t conn_cost_bytes; /* memory one socket costs the runtime */
    bool memory_store;      /* the store keeps a second copy in memory */
    bool no_store;          /* no store at all (no --db): no STORE_* actions; the
                               mailbox lives in the core alone */
    /* The mailbox is a cache of a store shared with other relay instances
     * (relay/relay_backend.h, docs/relay.md "Cluster"): a publish is
     * answered once pl__relay_core_put_done acknowledged its STORE_PUTs;
     * a topic is watched (WATCH/UNWATCH) and loaded (LOAD,
     * pl__relay_core_ingest, then pl__relay_core_loaded) while local
     * clients subscribe to it, and for cluster_linger_ms after a publish
     * or fetch used it (a publish counts the topic's messages, so it
     * waits for the load), then dropped from the cache. No STORE_DEL (the
     * shared store expires by itself); a full topic makes room with ROOM
     * (every instance's view, pl__relay_core_room_answer) and EVICT. */
    bool cluster;
    int64_t cluster_linger_ms; /* 0: PL_RELAY_DEF_CLUSTER_LINGER_MS */
    /* Where the keys of the core's hash tables come from (NULL:
     * pl_random). Tests and fuzzing pass a seeded one. */
    pl_rng_fn rng;
    void *rng_ctx;
} pl__relay_limits;

#define PL_RELAY_DEF_MAX_FRAME (1u << 20)     /* 1 MiB */
#define PL_RELAY_DEF_MAX_MESSAGE (512u << 10) /* 512 KiB */
#define PL_RELAY_DEF_MIN_TTL 10               /* seconds */
#define PL_RELAY_DEF_MAX_TTL (30 * 86400)     /* 30 days */
/* A node manager holds two topics per paired app (rendezvous + session),
 * up to PL_NM_SESSION_MAX_PEERS apps: 1000 stopped it at 500 apps. */
#define PL_RELAY_DEF_TOPICS_PER_CONN 20480
#define PL_RELAY_DEF_MAILBOX_PER_TOPIC 1000
#define PL_RELAY_DEF_TOTAL_BYTES ((size_t)256 << 20) /* 256 MiB */
#define PL_RELAY_DEF_MESSAGES 1000000
#define PL_RELAY_DEF_TOPICS 1000000
#define PL_RELAY_DEF_MEMORY ((size_t)1 << 30) /* 1 GiB */
#define PL_RELAY_DEF_QUOTA_MESSAGES 100000
#define PL_RELAY_DEF_QUOTA_BYTES ((size_t)64 << 20)
#define PL_RELAY_DEF_QUOTA_TOPICS 65536
#define PL_RELAY_DEF_CONNS 10000
#define PL_RELAY_DEF_CONNS_PER_ADDR 256
#define PL_RELAY_DEF_RATE_PER_S 100
#define PL_RELAY_DEF_RATE_BURST 500
#define PL_RELAY_DEF_ACK_TIMEOUT_MS 10000
#define PL_RELAY_DEF_PUSH_ATTEMPTS 5
#define PL_RELAY_DEF_INFLIGHT 1024
#define PL_RELAY_DEF_INFLIGHT_BYTES ((size_t)1 << 20)
#define PL_RELAY_DEF_QUEUE_BYTES ((size_t)4 << 20)
#define PL_RELAY_DEF_FETCH_PAGE_BYTES ((size_t)256 << 10)
#define PL_RELAY_DEF_CONN_COST ((size_t)24 << 10)
#define PL_RELAY_DEF_CLUSTER_LINGER_MS 30000
/* Candidates of one ROOM (the oldest messages this instance is past). */
#define PL_RELAY_ROOM_MAX 256

/* What one stored message costs against max_total_bytes, the memory
 * budget and its publisher's quota. */
size_t pl__relay_message_cost(const pl__relay_limits *l, size_t message_len,
                              size_t attestation_len);

/* The limits with every default filled in. */
void pl__relay_limits_default(pl__relay_limits *out);

/* One mailbox message as the store keeps it. */
typedef struct pl__relay_record {
    char topic[PL_RELAY_TOPIC_HEX + 1];
    char id[PL_RELAY_ID_HEX + 1]; /* sha256(message) hex */
    char *message;                /* NUL-terminated */
    size_t message_len;
    char *attestation; /* NULL when the publisher sent none */
    int64_t published_at_ms;
    int64_t expires_at_ms;
    int64_t tag;
    char publisher[PL_DID_KEY_SIZE]; /* did:key of an authenticated publisher, else "" */
    /* cluster: where the shared store keeps it (the backend's own number,
     * carried by the core for EVICT); 0: not known. */
    uint64_t store_ref;
} pl__relay_record;

typedef enum pl__relay_action_kind {
    PL__RELAY_SEND = 1,      /* text frame (text, len) to conn */
    PL__RELAY_CLOSE = 2,     /* close conn with close_code and reason */
    PL__RELAY_STORE_PUT = 3, /* persist rec; commit before sending any later frame */
    PL__RELAY_STORE_DEL = 4, /* forget rec.topic/rec.id (expired) */
    /* cluster only (pl__relay_limits.cluster), rec.topic alone set: */
    PL__RELAY_LOAD = 5,    /* read the topic's stored messages: ingest, then loaded */
    PL__RELAY_WATCH = 6,   /* deliver other instances' new messages on it (ingest) */
    PL__RELAY_UNWATCH = 7, /* no more */
    /* A publish found the topic full: ask every other instance which of
     * the candidates (ids: nids ids of PL_RELAY_ID_HEX chars, oldest
     * first) it is done with; answer with pl__relay_core_room_answer. */
    PL__RELAY_ROOM = 8,
    /* The message rec.topic/rec.id (rec.store_ref) leaves the shared store
     * to make room: delete it there, tell the other instances
     * (pl__relay_core_evicted), and store later puts of the topic only
     * after the delete. */
    PL__RELAY_EVICT = 9,
} pl__relay_action_kind;

/* A SEND's text lies PL_RELAY_TEXT_HEADROOM bytes into its allocation, so
 * that the runtime can put its own frame header and the WebSocket header
 * in front of it without copying the text (pl__relay_action_take_text). */
#define PL_RELAY_TEXT_HEADROOM 64

typedef struct pl__relay_action {
    pl__relay_action_kind kind;
    uint64_t conn;
    char *text; /* SEND: NUL-terminated JSON, owned by the action (see above) */
    size_t len;
    int close_code;
    char reason[64];
    pl__relay_record rec; /* STORE_*: message and attestation owned by the action */
    uint64_t put_id;      /* STORE_PUT in cluster mode: answer with pl__relay_core_put_done */
    char *ids;            /* ROOM: nids * PL_RELAY_ID_HEX characters, owned, no separators */
    size_t nids;
} pl__relay_action;

/* Release what an action owns; the struct itself is the caller's. */
void pl__relay_action_release(pl__relay_action *a);

/* Take a SEND's text out of the action: the returned pointer is the start
 * of its allocation (free() it), the text lies PL_RELAY_TEXT_HEADROOM bytes
 * in. a->text is NULL afterwards. */
void *pl__relay_action_take_text(pl__relay_action *a);

typedef struct pl__relay_core pl__relay_core;

/* New core. limits may be NULL (defaults). now_ms seeds the ids the relay
 * invents for its pushes (now_ms * 1000, below 2^53, as JS does). Errors:
 * PL_ERR_NOMEM, PL_ERR_INVALID_ARG for inconsistent limits (ttl bounds, a
 * frame below the message bound). */
pl_err pl__relay_core_new(pl__relay_core **out, const pl__relay_limits *limits, int64_t now_ms);
void pl__relay_core_free(pl__relay_core *c); /* NULL ok */

const pl__relay_limits *pl__relay_core_limits(const pl__relay_core *c);

/* Replace the limits of a running core (the operator reloaded its
 * settings), with the defaults and checks of pl__relay_core_new.
 * conn_cost_bytes, memory_store, no_store and the rng keep their values
 * from creation. Everything applies from the next request on; what is
 * already stored or open stays (a lower limit refuses new work, and a lower
 * memory budget relieves pressure as usual). Allowances (borrowed, as in
 * new) apply to connections opened from now on. Errors: PL_ERR_INVALID_ARG
 * (the core keeps its limits). */
pl_err pl__relay_core_set_limits(pl__relay_core *c, const pl__relay_limits *limits);

/* Put back a message loaded from the store at start-up (no action is
 * produced). It is charged to its publisher's did (the address of an
 * anonymous publisher is not stored); publisher quotas do not refuse it,
 * the relay-wide limits do. Records that cannot be taken are skipped with:
 * PL_ERR_BAD_TTL (expired), PL_ERR_EXISTS (duplicate), PL_ERR_MAILBOX_FULL
 * (a limit), PL_ERR_TOO_LARGE, PL_ERR_INVALID_ARG (malformed topic or
 * message), PL_ERR_NOMEM. rec is copied. Linear in the number of records
 * whatever their topics (keyed tables). */
pl_err pl__relay_core_restore(pl__relay_core *c, const pl__relay_record *rec, int64_t now_ms);

/* A socket from addr (its IP address as text) was accepted, before its
 * handshake: count it against the connection limits (total, per address)
 * and the memory budget (conn_cost_bytes). Errors: PL_ERR_RELAY_BUSY (a
 * limit: close the socket), PL_ERR_NOMEM. Every PL_OK is matched by one
 * pl__relay_core_unadmit(addr) when the socket is gone. */
pl_err pl__relay_core_admit(pl__relay_core *c, const char *addr);
void pl__relay_core_unadmit(pl__relay_core *c, const char *addr);

/* A connection was accepted. client_did: the did:key from a verified relay
 * JWT, or NULL for an anonymous client (its subscription ids then use a
 * per-connection name and its own messages are recognised by connection).
 * addr: the address it was admitted from (publisher quotas), or NULL.
 * Errors: PL_ERR_EXISTS if conn is already open, PL_ERR_BAD_DID if the did
 * is too long, PL_ERR_NOMEM. */
pl_err pl__relay_core_open(pl__relay_core *c, uint64_t conn, const char *client_did,
                           const char *addr, int64_t now_ms);

/* The connection is gone: its subscriptions and pending pushes are dropped
 * (the mailbox keeps the messages). Unknown conn: no-op. */
void pl__relay_core_close(pl__relay_core *c, uint64_t conn);

/* The runtime wrote (or discarded) a frame of `bytes` that a SEND action
 * gave it for conn: its send queue shrank. The core counts every SEND
 * toward its connection's queue until this call; a connection over
 * max_queue_bytes_per_conn is closed (1008). Unknown conn: no-op. */
void pl__relay_core_sent(pl__relay_core *c, uint64_t conn, size_t bytes);

/* Whether the runtime should read more frames from conn now: false while
 * what is queued for it exceeds half of max_queue_bytes_per_conn, so that
 * a client that does not read its answers gets no more work done (and the
 * others wait less). The runtime stops reading that socket and starts
 * again once written bytes (pl__relay_core_sent) bring it back under.
 * Unknown conn: false. */
bool pl__relay_core_wants_input(const pl__relay_core *c, uint64_t conn);

/* One complete text frame from conn. Every problem with the frame is
 * answered on the wire (a JSON-RPC error) and also returned: PL_OK when the
 * frame was a valid request or response, PL_ERR_JSON (-32700),
 * PL_ERR_RPC_INVALID (-32600), PL_ERR_TOO_LARGE (-32600), PL_ERR_NOT_FOUND
 * (unknown method, -32601), PL_ERR_INVALID_ARG (-32602), PL_ERR_BAD_TTL,
 * PL_ERR_MAILBOX_FULL (-32000), PL_ERR_RATE_LIMITED (3001), PL_ERR_NOMEM
 * (-32603). PL_ERR_DISCONNECTED if conn is not open (nothing is sent). */
pl_err pl__relay_core_receive(pl__relay_core *c, uint64_t conn, const char *text, size_t len,
                              int64_t now_ms);

/* Run expiry and re-pushes due at now_ms. */
void pl__relay_core_tick(pl__relay_core *c, int64_t now_ms);

/* Wall-clock ms at which tick must run next; INT64_MAX if nothing is due. */
int64_t pl__relay_core_next_deadline(const pl__relay_core *c);

/* Take the oldest pending action (ownership moves to *out; release it with
 * pl__relay_action_release). false when there is none. */
bool pl__relay_core_pop(pl__relay_core *c, pl__relay_action *out);

typedef struct pl__relay_stats {
    size_t conns, topics, messages, message_bytes, subscriptions, inflight;
    size_t backlog;      /* subscriptions with stored messages not yet pushed */
    size_t memory;       /* accounted bytes, everything */
    size_t stored_bytes; /* of which messages (the max_total_bytes count) */
    size_t queued_bytes; /* of which send queues */
    size_t sockets;      /* admitted */
    uint64_t published, delivered, acked, repushed, dropped, errors;
    uint64_t evicted;     /* acknowledged messages that made room in a full topic */
    uint64_t rooms;       /* cluster: ROOMs asked for full topics */
    uint64_t refused;     /* sockets and requests refused for a budget (busy) */
    uint64_t slow_closed; /* connections closed for their send queue */
    /* Error answers by JSON-RPC code, in the order of
     * pl__relay_error_code(i) (for the operator's metrics). */
    uint64_t rpc_errors[PL_RELAY_ERR_KINDS];
} pl__relay_stats;

/* The JSON-RPC error codes the relay answers with, i < PL_RELAY_ERR_KINDS. */
int pl__relay_error_code(size_t i);

void pl__relay_core_stats(const pl__relay_core *c, pl__relay_stats *out);

/* ---- cluster mode (limits.cluster): inputs from the shared store ---- */

/* A message of the shared store: loaded after a LOAD, or published on
 * another instance (or this one) on a WATCHed topic. Taken only for a
 * topic the core loads or watches, once (de-duplicated by (topic, id)),
 * until its expires_at_ms (exact TTL whatever the store keeps), and
 * pushed to the local subscribers but its publisher: publisher_conn (a
 * connection of this instance, 0: none) or rec.publisher (its did:key).
 * Errors: PL_ERR_NOT_FOUND (topic not wanted), PL_ERR_EXISTS (duplicate),
 * PL_ERR_BAD_TTL (expired), PL_ERR_BAD_UTF8 (message or attestation not
 * UTF-8), PL_ERR_INVALID_ARG, PL_ERR_TOO_LARGE,
 * PL_ERR_MAILBOX_FULL (a relay-wide limit), PL_ERR_NOMEM; rec is copied. */
pl_err pl__relay_core_ingest(pl__relay_core *c, const pl__relay_record *rec,
                             uint64_t publisher_conn, int64_t now_ms);

/* Every stored message of topic (LOAD) was ingested: fetches waiting for
 * it are answered, and a topic nobody subscribes to leaves the cache. */
void pl__relay_core_loaded(pl__relay_core *c, const char *topic, int64_t now_ms);

/* The LOAD of topic failed (the store did not answer in time): requests
 * waiting for it are answered -32603, and the topic is not loaded (a
 * subscriber's next request, or the next publish, loads it again). */
void pl__relay_core_load_failed(pl__relay_core *c, const char *topic, int64_t now_ms);

/* The STORE_PUT put_id is stored (PL_OK) or failed: PL_ERR_MAILBOX_FULL
 * (the store's per-topic limit: -32000), anything else (-32603, storage
 * unavailable). When every put of a request is answered, the request is
 * (true, or the first error); a failed message leaves the cache. Unknown
 * ids are ignored. */
void pl__relay_core_put_done(pl__relay_core *c, uint64_t put_id, pl_err result, int64_t now_ms);

/* Where the store keeps a message of the cache (known after its put or a
 * later delivery): carried in its EVICT. Unknown messages: no-op. */
void pl__relay_core_stored_at(pl__relay_core *c, const char *topic, const char *id,
                              uint64_t store_ref);

/* What this instance says of a ROOM another instance asked about topic:
 * for each of the n candidate ids (n * PL_RELAY_ID_HEX characters),
 * flags[i] gets PL_RELAY_ROOM_DONE when no local subscriber still needs
 * it (none here, or all past it with no push in flight; a message not in
 * the cache of a loaded topic is done) and PL_RELAY_ROOM_ACKED when a
 * local subscriber acknowledged it. A topic still loading is done with
 * nothing. */
#define PL_RELAY_ROOM_DONE 1u
#define PL_RELAY_ROOM_ACKED 2u
void pl__relay_core_room_query(const pl__relay_core *c, const char *topic, const char *ids,
                               size_t n, uint8_t *flags);

/* The answer to this core's ROOM on topic: for each of its n candidates
 * (ids as asked), the flags of every other instance combined (DONE: all
 * of them said done; ACKED: one of them said acked). n = 0: not every
 * instance answered (nothing may go). The requests that waited for it run
 * again: a full topic now evicts its oldest messages that every instance
 * is done with and some subscriber acknowledged (EVICT), or refuses
 * (-32000). */
void pl__relay_core_room_answer(pl__relay_core *c, const char *topic, const char *ids,
                                const uint8_t *flags, size_t n, int64_t now_ms);

/* Another instance evicted topic/id from the shared store: the cache lets
 * it go too (unless its own put of it is out). Unknown: no-op. */
void pl__relay_core_evicted(pl__relay_core *c, const char *topic, const char *id);

/* sha256(topic_hex + client) as lowercase hex: the subscription id. */
void pl__relay_subscription_id(char out[PL_RELAY_ID_HEX + 1], const char *topic,
                               const char *client);

#endif
