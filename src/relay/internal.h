/* SPDX-License-Identifier: Apache-2.0 */
/* The relay core's private data model, shared by its parts, each of which
 * uses only those listed before it:
 *   actions.c     the action queue and JSON-RPC replies out; ids; the send
 *                 queue bytes of each connection
 *   topics.c      topics, connections and subscriptions (who listens to
 *                 what, and how far each listener got)
 *   budget.c      memory accounting, publisher quotas, admission of
 *                 sockets, relief of memory pressure: every cost and every
 *                 relay-wide limit in one place
 *   mailbox.c     stored messages, their id index and expiry heap;
 *                 expiry and eviction
 *   deliveries.c  messages owed to connections: paged pushes under flow
 *                 control, acks, re-pushes
 *   methods.c     the irn_* and wc_* request handlers
 *   core.c        lifecycle, frames in, rate limit, ticks, stats
 * Only the relay core includes it; everyone else uses relay_core.h. */
#ifndef PAIRLINK_RELAY_INTERNAL_H
#define PAIRLINK_RELAY_INTERNAL_H

#include "core/htable.h"
#include "relay/relay_core.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rmsg rmsg;
typedef struct topic topic;
typedef struct conn conn;
typedef struct sub sub;
typedef struct delivery delivery;
typedef struct principal principal;

/* Who is charged for what: a publisher's did:key ("did:key:z...") or the
 * address a connection came from ("ip:192.0.2.7"). Lives while anything
 * counts in it. */
#define PL__RS_PRINCIPAL_KEY 72
struct principal {
    pl__hnode hnode;
    size_t sockets; /* address: sockets open (handshakes included) */
    size_t conns;   /* connections that name it */
    size_t msgs;    /* stored messages it published */
    size_t bytes;   /* their cost (budget.c) */
    size_t topics;  /* topics it brought in that still exist */
    char key[PL__RS_PRINCIPAL_KEY];
};

struct rmsg {
    pl__relay_record rec;    /* owns message and attestation */
    topic *t;                /* NULL once the message left the mailbox */
    rmsg *prev, *next;       /* the topic's mailbox, oldest first */
    pl__hnode inode;         /* the core's id index: (topic, id) */
    uint64_t publisher_conn; /* 0 for restored messages */
    uint64_t seq;            /* order within its topic (cursors compare on it) */
    size_t hidx;             /* position in the expiry heap */
    size_t cost;             /* accounted bytes (budget.c) */
    size_t wire;             /* bytes of its JSON form ({topic, message, ...}), at most */
    size_t msg_json;         /* bytes of the message as a JSON string, quotes included */
    principal *owner[2];     /* charged: address and did (either may be NULL) */
    unsigned refs;           /* deliveries, plus one while in the mailbox */
    unsigned inflight;       /* deliveries of it waiting for an ack */
    bool acked;              /* some subscriber acknowledged it */
    bool putting;            /* cluster: its STORE_PUT is not answered yet */
    bool others_done;        /* cluster: every other instance is done with it (a ROOM
                                answer, valid while a request waits on it) */
};

struct topic {
    char hex[PL_RELAY_TOPIC_HEX + 1];
    pl__hnode hnode;
    rmsg *head, *tail;
    size_t nmsgs;
    uint64_t next_seq;
    sub **subs;
    size_t nsubs, capsubs;
    principal *owner[2]; /* charged for the record */
    /* cluster (cluster.c): WATCH sent; LOAD sent, not yet loaded; loaded;
     * what keeps it in the cache without subscribers (a LOAD, fetches). */
    bool watched, loading, loaded;
    unsigned pins;
    /* cluster: kept (one pin) until linger_until after a publish or fetch
     * used it; in the core's linger list, oldest first. */
    bool lingering;
    int64_t linger_until;
    topic *lprev, *lnext;
    /* cluster: a ROOM is out; requests waiting on its answer. */
    bool room_out;
    unsigned room_waiters;
};

/* Connection k listens to topic t. `next` is the first stored message not
 * yet pushed to k (k's own messages skipped); NULL when k has them all.
 * A subscription with a `next` sits on k's ready list. */
struct sub {
    conn *k;
    topic *t;
    pl__hnode hnode; /* the core's table, key (conn id, topic) */
    rmsg *next;
    size_t ti, ki; /* positions in t->subs and k->subs */
    sub *rprev, *rnext;
    bool ready;
};

/* One message pushed to one connection and waiting for the client's `true`. */
struct delivery {
    rmsg *m;
    conn *c;
    int64_t push_id;
    int64_t deadline;
    uint32_t attempts;
    size_t bytes;            /* of the push frame */
    delivery *cprev, *cnext; /* conn inflight list */
    delivery *gprev, *gnext; /* global ack-timeout list */
};

typedef struct dlist {
    delivery *head, *tail;
    size_t n;
} dlist;

/* Where the last irn_fetchMessages answer stopped, so that the same request
 * again gets the next page. */
typedef struct fetch_cursor {
    uint64_t key;   /* hash of the request's topic list */
    size_t ti;      /* index in that list */
    uint64_t after; /* last seq given from topic ti */
    bool live;
} fetch_cursor;

struct conn {
    uint64_t id;
    pl__hnode hnode;
    char client[PL_DID_KEY_SIZE]; /* did:key, or "conn:<id>" when anonymous */
    bool has_did;
    bool closing; /* a CLOSE was queued: nothing more is sent */
    sub **subs;
    size_t nsubs, capsubs;
    sub *ready_head, *ready_tail;
    dlist inflight;
    size_t inflight_bytes;
    size_t unsent; /* bytes of frames queued for it, not yet written (+ overhead) */
    principal *paddr, *pdid;
    fetch_cursor fetch;
    int64_t tokens_milli; /* request rate bucket, in thousandths of a request */
    int64_t entry_milli;  /* batch entry bucket (PL_RELAY_ENTRY_FACTOR times larger) */
    int64_t last_refill_ms;
    uint32_t rate_per_s, rate_burst; /* this connection's allowance */
    unsigned parked;                 /* cluster: its requests waiting for loads or a ROOM */
};

typedef struct action_q {
    pl__relay_action *a;
    size_t head, len, cap;
} action_q;

/* Everything accounted, in bytes (budget.c says what each thing costs). */
typedef struct budget {
    size_t used;    /* all of it */
    size_t stored;  /* messages in the mailbox */
    size_t queued;  /* send queues */
    size_t sockets; /* sockets admitted */
    bool refused;   /* work was refused for memory since the last relief */
    int64_t next_relief;
} budget;

struct pl__relay_core {
    pl__relay_limits lim;
    struct pl__rs_parser *parser; /* frame.h: the fast reading of frames */
    pl__htable topics, conns, ids, subs, principals;
    rmsg **heap; /* min-heap on expires_at_ms */
    size_t nheap, capheap;
    delivery *g_head, *g_tail; /* inflight, in deadline order */
    budget mem;
    int64_t next_push_id;
    action_q q;
    pl__relay_stats st;
    struct pl__rs_cluster *cl; /* cluster mode (cluster.c); NULL otherwise */
    size_t frame_len;          /* of the frame being handled */
};

/* ---- accounting, used by every part (budget.c has the costs and the
 * policies built on them) ---- */

#define PL__RS_MALLOC_OVERHEAD 16 /* an allocation's header and rounding, about */
#define PL__RS_FRAME_COST 64      /* a queued frame beyond its text (runtime header, LWS_PRE) */

static inline void pl__rs_charge(pl__relay_core *c, size_t bytes) {
    c->mem.used += bytes;
}

static inline void pl__rs_release(pl__relay_core *c, size_t bytes) {
    c->mem.used = c->mem.used > bytes ? c->mem.used - bytes : 0;
}

/* True if `bytes` more fit the memory budget. */
static inline bool pl__rs_room(const pl__relay_core *c, size_t bytes) {
    return c->mem.used <= c->lim.max_memory_bytes && bytes <= c->lim.max_memory_bytes - c->mem.used;
}

/* Bulk data (pushes beyond the one every connection may have in flight)
 * stops at three quarters of the budget: the last quarter stays for
 * requests and their answers, so that clients keep being served while
 * subscribers that do not read hold what they were sent. Memory pressure
 * (pl__rs_relieve) starts there too. */
static inline size_t pl__rs_bulk_limit(const pl__relay_core *c) {
    return c->lim.max_memory_bytes / 4 * 3;
}

static inline bool pl__rs_room_bulk(const pl__relay_core *c, size_t bytes) {
    size_t lim = pl__rs_bulk_limit(c);
    return c->mem.used <= lim && bytes <= lim - c->mem.used;
}

/* ---- actions.c ---- */

void pl__rs_hex(char *out, const uint8_t *in, size_t n);
bool pl__rs_is_topic_hex(const char *s, size_t n);
/* sha256(message) as lowercase hex: a message's id. */
void pl__rs_message_id(char out[PL_RELAY_ID_HEX + 1], const char *message, size_t len);
/* Bytes of s as a JSON string (quotes and escapes included), as jansson
 * writes it. */
size_t pl__rs_json_string_len(const char *s, size_t len);
/* Whether s has a byte a JSON string must escape. */
bool pl__rs_json_needs_escape(const char *s, size_t len);
/* Write s as a JSON string (quotes, escapes: what jansson writes) to out,
 * which has room for pl__rs_json_string_len(s, len) bytes; returns the end. */
char *pl__rs_json_escape(char *out, const char *s, size_t len);
pl_err pl__rs_queue(pl__relay_core *c, const pl__relay_action *a);
/* A buffer for a SEND text of n bytes (+ NUL), with the runtime's headroom
 * before it (relay_core.h); NULL: out of memory. Free with pl__rs_text_free. */
char *pl__rs_text_alloc(size_t n);
void pl__rs_text_free(char *text);
/* Queue text (of pl__rs_text_alloc, n bytes, consumed) as a frame to k:
 * what pl__rs_send_json does after writing its JSON. */
pl_err pl__rs_send_text(pl__relay_core *c, conn *k, char *text, size_t n);
/* {"id":id,"jsonrpc":"2.0","result":true} to k. */
pl_err pl__rs_reply_true(pl__relay_core *c, conn *k, int64_t id);
/* Queue j (consumed, NULL: out of memory) as a text frame to k; *len (may
 * be NULL) gets its size. A connection that is closing gets nothing (not
 * an error); one whose send queue would exceed its bound is closed with
 * 1008. */
pl_err pl__rs_send_json(pl__relay_core *c, conn *k, json_t *j, size_t *len);
/* Queue CLOSE with code and reason for k (once). */
void pl__rs_close_conn(pl__relay_core *c, conn *k, int code, const char *reason);
/* Answer request id (NULL: null) with result (consumed) or an error. */
pl_err pl__rs_reply_result(pl__relay_core *c, conn *k, json_t *id, json_t *result);
pl_err pl__rs_reply_error(pl__relay_core *c, conn *k, json_t *id, int code, const char *message);
/* One more error answer (st.errors, and by code for the metrics). */
static inline void pl__rs_count_error(pl__relay_core *c, int code) {
    c->st.errors++;
    for (size_t i = 0; i < PL_RELAY_ERR_KINDS; i++) {
        if (pl__relay_error_code(i) == code) {
            c->st.rpc_errors[i]++;
            break;
        }
    }
}

/* ---- topics.c ---- */

topic *pl__rs_topic_find(const pl__relay_core *c, const char *hex);
/* A new topic (it must not exist); NULL: out of memory. Charged to owner
 * (either may be NULL) by the caller (budget.c). */
topic *pl__rs_topic_new(pl__relay_core *c, const char *hex);
/* Forget a topic nobody listens to and nothing is stored for. */
void pl__rs_topic_gc(pl__relay_core *c, topic *t);
conn *pl__rs_conn_find(const pl__relay_core *c, uint64_t id);
pl_err pl__rs_conn_open(pl__relay_core *c, uint64_t id, const char *client_did, int64_t now_ms,
                        conn **out);
/* Take k out of the table (core.c then frees it, and what hangs on it). */
void pl__rs_conn_remove(pl__relay_core *c, conn *k);
/* Take some connection out of the table; NULL when none is left. */
conn *pl__rs_conn_pop(pl__relay_core *c);
/* Visit every connection (none may be opened or closed meanwhile). */
conn *pl__rs_conn_each(const pl__relay_core *c, size_t *cursor, conn *prev);
sub *pl__rs_sub_find(const pl__relay_core *c, const conn *k, const topic *t);
/* Subscribe k to t (not yet subscribed), nothing owed yet. Errors:
 * PL_ERR_NOMEM (nothing changed). */
pl_err pl__rs_sub_new(pl__relay_core *c, conn *k, topic *t, sub **out);
/* End subscription s; its topic may be gone afterwards. */
void pl__rs_sub_free(pl__relay_core *c, sub *s);
/* Put s on / take s off its connection's ready list. */
void pl__rs_ready_add(sub *s);
void pl__rs_ready_remove(sub *s);
/* Core teardown, after every connection (pl__rs_conn_pop) and every
 * message (pl__rs_mailbox_free) went: the topics and the tables. */
void pl__rs_topics_free(pl__relay_core *c);

/* ---- budget.c ---- */

/* What one stored message costs: its record, its bytes, the index and heap
 * slots, and its copy in an in-memory store. */
size_t pl__rs_msg_cost(const pl__relay_core *c, size_t message_len, size_t attestation_len);
/* What a topic record and a subscription cost. */
size_t pl__rs_topic_cost(void);
size_t pl__rs_sub_cost(void);
size_t pl__rs_conn_cost(void);
size_t pl__rs_delivery_cost(void);
/* The principal with key, created when missing (NULL: out of memory). */
principal *pl__rs_principal_get(pl__relay_core *c, const char *key);
principal *pl__rs_principal_find(const pl__relay_core *c, const char *key);
/* Free p when nothing counts in it any more (NULL ok). */
void pl__rs_principal_gc(pl__relay_core *c, principal *p);
/* Charge / release a stored message and a topic record to their owners. */
void pl__rs_charge_msg(pl__relay_core *c, rmsg *m, principal *a, principal *b);
void pl__rs_release_msg(pl__relay_core *c, rmsg *m);
void pl__rs_charge_topic(pl__relay_core *c, topic *t, principal *a, principal *b);
void pl__rs_release_topic(pl__relay_core *c, topic *t);
/* Whether k may add msgs stored messages costing bytes and new_topics
 * topics (publisher quotas of its address and did). PL_OK, or
 * PL_ERR_MAILBOX_FULL with *why set. */
pl_err pl__rs_quota_check(const pl__relay_core *c, const conn *k, size_t msgs, size_t bytes,
                          size_t new_topics, const char **why);
/* Past the bulk limit (3/4 of the budget), or after work was refused for
 * memory: close the connection that holds the most unsent bytes (at least
 * 64 KiB; at most one every 100 ms). */
void pl__rs_relieve(pl__relay_core *c, int64_t now_ms);

/* ---- mailbox.c ---- */

/* A message published by connection k (or by its authenticated did). */
bool pl__rs_is_own(const conn *k, const rmsg *m);
/* The first message from m on that k does not own (NULL: none). */
rmsg *pl__rs_owed_from(const conn *k, rmsg *m);
void pl__rs_msg_unref(rmsg *m);
rmsg *pl__rs_mailbox_find(const pl__relay_core *c, const topic *t, const char *id);
/* Insert a new message into t's mailbox; the record is copied; charged to
 * the principals a and b (may be NULL). Errors: PL_ERR_NOMEM (nothing
 * changed). */
pl_err pl__rs_mailbox_add(pl__relay_core *c, topic *t, const pl__relay_record *rec,
                          uint64_t publisher_conn, principal *a, principal *b, rmsg **out);
/* Queue STORE_PUT (with a copy of the message) or STORE_DEL for m. */
pl_err pl__rs_store_action(pl__relay_core *c, pl__relay_action_kind kind, const rmsg *m);
/* Take m out of the mailbox (STORE_DEL, cursors moved past it, charges
 * released); its topic may be gone afterwards. */
void pl__rs_msg_remove(pl__relay_core *c, rmsg *m);
/* Remove every message whose TTL ran out by now_ms. */
void pl__rs_expire(pl__relay_core *c, int64_t now_ms);
/* Messages of t that may make room when t is at its limit: acknowledged
 * by a subscriber, none in flight, and behind every current subscriber's
 * position. Counts up to `want` of them from the oldest; *cost (may be
 * NULL) gets their cost. */
size_t pl__rs_evictable(const pl__relay_core *c, const topic *t, size_t want, size_t *cost);
/* Evict the oldest such message of t; false if there is none. In cluster
 * mode only messages a ROOM answer cleared go, each with an EVICT. */
bool pl__rs_evict_one(pl__relay_core *c, topic *t);
/* The oldest messages of t this instance is past (every local subscriber
 * is beyond it, none in flight, stored): up to max of them into ids
 * (max * PL_RELAY_ID_HEX chars); their number. */
size_t pl__rs_past(const topic *t, char *ids, size_t max);
/* Whether no local subscriber of t still needs m (cluster ROOM). */
bool pl__rs_done_here(const topic *t, const rmsg *m);
/* The message as the protocol shows it ({topic, message, publishedAt, tag,
 * attestation?}); NULL: out of memory. */
json_t *pl__rs_message_json(const rmsg *m);
int64_t pl__rs_mailbox_deadline(const pl__relay_core *c);
/* Release every message (core teardown). */
void pl__rs_mailbox_free(pl__relay_core *c);

/* ---- deliveries.c ---- */

/* Push what k is owed while its window allows (in flight: count, bytes,
 * the memory budget; one push is always allowed). */
void pl__rs_pump(pl__relay_core *c, conn *k, int64_t now_ms);
/* A new message m on t: every subscriber that has everything else gets it
 * next (pushed now if its window allows). */
void pl__rs_fan_out(pl__relay_core *c, topic *t, rmsg *m, int64_t now_ms);
/* The client answered push `id`. Unknown ids are ignored. */
void pl__rs_on_ack(pl__relay_core *c, conn *k, int64_t id, int64_t now_ms);
/* Re-push (or give up on) deliveries whose ack is overdue at now_ms. */
void pl__rs_repush(pl__relay_core *c, int64_t now_ms);
int64_t pl__rs_deliveries_deadline(const pl__relay_core *c);
/* Drop everything owed to k. */
void pl__rs_deliveries_drop(pl__relay_core *c, conn *k);

/* ---- methods.c ---- */

/* What a request costs against its connection's entry allowance, in
 * thousandths of an entry (docs/relay.md, "Request rate"): for a batch
 * method each item PL_RELAY_COST_*_ITEM_MILLI (relay_client.h), 0 for any
 * other request (which costs one request, as a batch does too). */
int64_t pl__rs_cost_milli(const char *method, json_t *params);
/* Run request `method` (id non-NULL) from k and queue its answer, an error
 * reply included. Returns what pl__relay_core_receive returns. */
pl_err pl__rs_call(pl__relay_core *c, conn *k, json_t *id, const char *method, json_t *params,
                   int64_t now_ms);
/* The same for a request the fast reader took (frame.h: PUBLISH or
 * SUBSCRIBE), with the same checks, answers and errors. */
struct pl__rs_frame;
pl_err pl__rs_call_fast(pl__relay_core *c, conn *k, const struct pl__rs_frame *f, int64_t now_ms);

/* ---- cluster.c (limits.cluster; each a no-op otherwise) ---- */

/* A connection with this many requests waiting is not read from (see
 * pl__relay_core_wants_input); PL__RS_PARKED_MAX more are refused (busy). */
#define PL__RS_PARKED_READ 64
#define PL__RS_PARKED_MAX 1024

pl_err pl__rs_cluster_new(pl__relay_core *c);
void pl__rs_cluster_free(pl__relay_core *c);
/* A request starts (pl__rs_call) / was answered with an error. */
void pl__rs_cluster_request(pl__relay_core *c);
/* A STORE_PUT for m is queued: its put id (0 outside cluster mode). */
uint64_t pl__rs_cluster_put(pl__relay_core *c, rmsg *m);
/* The answer to the current request, held when it stored something
 * until every put is acknowledged. true: taken (result consumed). */
bool pl__rs_cluster_defer(pl__relay_core *c, conn *k, json_t *id, json_t *result);
/* A local subscriber joined t / the last one left it. */
void pl__rs_cluster_subscribed(pl__relay_core *c, topic *t);
void pl__rs_cluster_unsubscribed(pl__relay_core *c, topic *t);
/* Before a fetch of ts: true when every topic is loaded; otherwise the
 * request is parked (answered when they are) or refused (*e set). */
bool pl__rs_cluster_ready(pl__relay_core *c, conn *k, json_t *id, const char *method,
                          json_t *params, char (*ts)[PL_RELAY_TOPIC_HEX + 1], size_t n,
                          int64_t now_ms, pl_err *e);
/* check_capacity found t full with too few messages to evict. true: a
 * ROOM is asked (or already out) and the current request is parked until
 * it is answered (*e unchanged); false: refuse (the request runs again
 * after a ROOM answer, or nothing here could go). */
bool pl__rs_cluster_need_room(pl__relay_core *c, conn *k, json_t *id, const char *method,
                              json_t *params, topic *t);
/* The current request was answered (an error after all): what it parked
 * is dropped. */
void pl__rs_cluster_answered(pl__relay_core *c, int64_t now_ms);
/* The linger list: topics past their time leave the cache; its next
 * deadline (INT64_MAX: none). */
void pl__rs_cluster_tick(pl__relay_core *c, int64_t now_ms);
int64_t pl__rs_cluster_deadline(const pl__relay_core *c);

#endif
