/* The relay core's private data model, shared by its parts, each of which
 * uses only those listed before it:
 *   actions.c     the action queue and JSON-RPC replies out; ids
 *   topics.c      topics and connections (who listens to what)
 *   mailbox.c     stored messages, their id index and expiry heap
 *   deliveries.c  messages owed to connections: push, ack, re-push
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
typedef struct delivery delivery;

struct rmsg {
    pl__relay_record rec;    /* owns message and attestation */
    topic *t;                /* NULL once the message expired */
    rmsg *prev, *next;       /* the topic's mailbox, oldest first */
    pl__hnode inode;         /* the core's id index: (topic, id) */
    uint64_t publisher_conn; /* 0 for restored messages */
    unsigned refs;           /* deliveries, plus one while in the mailbox */
};

struct topic {
    char hex[PL_RELAY_TOPIC_HEX + 1];
    pl__hnode hnode;
    rmsg *head, *tail;
    size_t nmsgs;
    conn **subs;
    size_t nsubs, capsubs;
};

/* One message owed to one connection: waiting in the connection's backlog,
 * or pushed and waiting for the client's `true`. */
struct delivery {
    rmsg *m;
    conn *c;
    int64_t push_id;
    int64_t deadline;
    uint32_t attempts;
    bool inflight;
    delivery *cprev, *cnext; /* conn inflight list or backlog */
    delivery *gprev, *gnext; /* global ack-timeout list (inflight only) */
};

typedef struct dlist {
    delivery *head, *tail;
    size_t n;
} dlist;

struct conn {
    uint64_t id;
    pl__hnode hnode;
    char client[PL_DID_KEY_SIZE]; /* did:key, or "conn:<id>" when anonymous */
    bool has_did;
    topic **topics;
    size_t ntopics, captopics;
    dlist inflight, backlog;
    int64_t tokens_milli; /* request rate bucket, in thousandths of a request */
    int64_t last_refill_ms;
};

typedef struct action_q {
    pl__relay_action *a;
    size_t head, len, cap;
} action_q;

struct pl__relay_core {
    pl__relay_limits lim;
    pl__htable topics, conns, ids;
    rmsg **heap; /* min-heap on expires_at_ms */
    size_t nheap, capheap;
    delivery *g_head, *g_tail; /* inflight, in push order (= deadline order) */
    size_t total_bytes;
    int64_t next_push_id;
    action_q q;
    pl__relay_stats st;
};

/* ---- actions.c ---- */

void pl__rs_hex(char *out, const uint8_t *in, size_t n);
bool pl__rs_is_topic_hex(const char *s, size_t n);
/* sha256(message) as lowercase hex: a message's id. */
void pl__rs_message_id(char out[PL_RELAY_ID_HEX + 1], const char *message, size_t len);
pl_err pl__rs_queue(pl__relay_core *c, const pl__relay_action *a);
/* Queue j (consumed, NULL: out of memory) as a text frame to conn. */
pl_err pl__rs_send_json(pl__relay_core *c, uint64_t conn_id, json_t *j);
/* Answer request id (NULL: null) with result (consumed) or an error. */
pl_err pl__rs_reply_result(pl__relay_core *c, uint64_t conn_id, json_t *id, json_t *result);
pl_err pl__rs_reply_error(pl__relay_core *c, uint64_t conn_id, json_t *id, int code,
                          const char *message);

/* ---- topics.c ---- */

topic *pl__rs_topic_find(const pl__relay_core *c, const char *hex);
/* The topic, created if needed; NULL: out of memory. */
topic *pl__rs_topic_get(pl__relay_core *c, const char *hex);
/* Forget a topic nobody listens to and nothing is stored for. */
void pl__rs_topic_gc(pl__relay_core *c, topic *t);
conn *pl__rs_conn_find(const pl__relay_core *c, uint64_t id);
pl_err pl__rs_conn_open(pl__relay_core *c, uint64_t id, const char *client_did, int64_t now_ms);
/* Take k out of the table (core.c then frees it, and what hangs on it). */
void pl__rs_conn_remove(pl__relay_core *c, conn *k);
/* Take some connection out of the table; NULL when none is left. */
conn *pl__rs_conn_pop(pl__relay_core *c);
bool pl__rs_subscribed(const conn *k, const topic *t);
/* Add k to t's listeners. Errors: PL_ERR_NOMEM (nothing changed). */
pl_err pl__rs_link(conn *k, topic *t);
/* Remove k from t's listeners (no-op if it is not one); t may be gone
 * afterwards. */
void pl__rs_unlink(pl__relay_core *c, conn *k, topic *t);
/* Visit every connection (none may be opened or closed meanwhile). */
conn *pl__rs_conn_each(const pl__relay_core *c, size_t *cursor, conn *prev);
/* Core teardown, after every connection (pl__rs_conn_pop) and every
 * message (pl__rs_mailbox_free) went: the topics and the tables. */
void pl__rs_topics_free(pl__relay_core *c);

/* ---- mailbox.c ---- */

/* A message published by connection k (or by its authenticated did). */
bool pl__rs_is_own(const conn *k, const rmsg *m);
void pl__rs_msg_unref(rmsg *m);
rmsg *pl__rs_mailbox_find(const pl__relay_core *c, const topic *t, const char *id);
/* Insert a new message into t's mailbox; the record is copied. Errors:
 * PL_ERR_NOMEM (nothing changed). */
pl_err pl__rs_mailbox_add(pl__relay_core *c, topic *t, const pl__relay_record *rec,
                          uint64_t publisher_conn, rmsg **out);
/* Queue STORE_PUT (with a copy of the message) or STORE_DEL for m. */
pl_err pl__rs_store_action(pl__relay_core *c, pl__relay_action_kind kind, const rmsg *m);
/* Remove every message whose TTL ran out by now_ms (STORE_DEL each). */
void pl__rs_expire(pl__relay_core *c, int64_t now_ms);
/* The message as the protocol shows it ({topic, message, publishedAt, tag,
 * attestation?}); NULL: out of memory. */
json_t *pl__rs_message_json(const rmsg *m);
int64_t pl__rs_mailbox_deadline(const pl__relay_core *c);
/* Release every message (core teardown). */
void pl__rs_mailbox_free(pl__relay_core *c);

/* ---- deliveries.c ---- */

/* Owe message m to connection k: push now, or queue behind the in-flight
 * window (dropped, and counted, when the backlog is full). */
void pl__rs_deliver(pl__relay_core *c, conn *k, rmsg *m, int64_t now_ms);
/* The client answered push `id`. Unknown ids are ignored. */
void pl__rs_on_ack(pl__relay_core *c, conn *k, int64_t id, int64_t now_ms);
/* Re-push (or give up on) deliveries whose ack is overdue at now_ms. */
void pl__rs_repush(pl__relay_core *c, int64_t now_ms);
int64_t pl__rs_deliveries_deadline(const pl__relay_core *c);
/* Drop everything owed to k. */
void pl__rs_deliveries_drop(pl__relay_core *c, conn *k);

/* ---- methods.c ---- */

/* Run request `method` (id non-NULL) from k and queue its answer, an error
 * reply included. Returns what pl__relay_core_receive returns. */
pl_err pl__rs_call(pl__relay_core *c, conn *k, json_t *id, const char *method, json_t *params,
                   int64_t now_ms);

#endif
