/* The relay protocol core: see relay_core.h. No I/O, no clock. */
#include "relay/relay_core.h"

#include "core/internal.h"
#include "pairlink/hash.h"

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- data model ---------------------------------------------------------- */

typedef struct rmsg rmsg;
typedef struct topic topic;
typedef struct conn conn;
typedef struct delivery delivery;

struct rmsg {
    pl__relay_record rec; /* owns message and attestation */
    topic *t;             /* NULL once the message expired */
    rmsg *prev, *next;    /* the topic's mailbox, oldest first */
    rmsg *inext;          /* the topic's id index */
    uint64_t publisher_conn; /* 0 for restored messages */
    unsigned refs;           /* deliveries, plus one while in the mailbox */
};

typedef struct sub {
    conn *c;
} sub;

struct topic {
    char hex[PL_RELAY_TOPIC_HEX + 1];
    topic *hnext;
    rmsg *head, *tail;
    size_t nmsgs;
    /* Message id -> message, for the re-publish check of every publish: a
     * walk of the mailbox made a publish cost O(messages on the topic). */
    rmsg **ibuckets;
    size_t inb;
    sub *subs;
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
    conn *hnext;
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
    topic **tbuckets;
    size_t tnb, ntopics;
    conn **cbuckets;
    size_t cnb, nconns;
    rmsg **heap; /* min-heap on expires_at_ms */
    size_t nheap, capheap;
    delivery *g_head, *g_tail; /* inflight, in push order (= deadline order) */
    size_t total_bytes;
    int64_t next_push_id;
    action_q q;
    pl__relay_stats st;
};

/* ---- small helpers --------------------------------------------------------- */

static void to_hex(char *out, const uint8_t *in, size_t n) {
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[in[i] >> 4];
        out[2 * i + 1] = d[in[i] & 15];
    }
    out[2 * n] = '\0';
}

void pl__relay_subscription_id(char out[PL_RELAY_ID_HEX + 1], const char *topic_hex,
                               const char *client) {
    size_t tl = strlen(topic_hex), cl = strlen(client);
    char buf[PL_RELAY_TOPIC_HEX + PL_DID_KEY_SIZE + 1];
    PL_REQUIRE(tl + cl < sizeof buf);
    memcpy(buf, topic_hex, tl);
    memcpy(buf + tl, client, cl);
    uint8_t h[PL_SHA256_BYTES];
    pl_sha256(h, (const uint8_t *)buf, tl + cl);
    to_hex(out, h, sizeof h);
}

static bool is_topic_hex(const char *s, size_t n) {
    if (n != PL_RELAY_TOPIC_HEX) return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) return false;
    }
    return true;
}

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    while (*s) {
        h ^= (uint8_t)*s++;
        h *= 1099511628211ull;
    }
    return h;
}

static uint64_t hash_u64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

void pl__relay_limits_default(pl__relay_limits *l) {
    PL_REQUIRE(l);
    memset(l, 0, sizeof *l);
    l->max_frame_bytes = PL_RELAY_DEF_MAX_FRAME;
    l->max_message_bytes = PL_RELAY_DEF_MAX_MESSAGE;
    l->min_ttl_s = PL_RELAY_DEF_MIN_TTL;
    l->max_ttl_s = PL_RELAY_DEF_MAX_TTL;
    l->max_topics_per_conn = PL_RELAY_DEF_TOPICS_PER_CONN;
    l->max_mailbox_per_topic = PL_RELAY_DEF_MAILBOX_PER_TOPIC;
    l->max_total_bytes = PL_RELAY_DEF_TOTAL_BYTES;
    l->rate_per_s = PL_RELAY_DEF_RATE_PER_S;
    l->rate_burst = PL_RELAY_DEF_RATE_BURST;
    l->rate_unlimited = false;
    l->ack_timeout_ms = PL_RELAY_DEF_ACK_TIMEOUT_MS;
    l->max_push_attempts = PL_RELAY_DEF_PUSH_ATTEMPTS;
    l->max_inflight_per_conn = PL_RELAY_DEF_INFLIGHT;
    l->max_backlog_per_conn = PL_RELAY_DEF_BACKLOG;
}

void pl__relay_action_release(pl__relay_action *a) {
    if (!a) return;
    free(a->text);
    free(a->rec.message);
    free(a->rec.attestation);
    a->text = NULL;
    a->rec.message = NULL;
    a->rec.attestation = NULL;
}

/* ---- the action queue ------------------------------------------------------ */

static pl_err q_push(pl__relay_core *c, const pl__relay_action *a) {
    action_q *q = &c->q;
    if (q->head > 0 && q->head == q->len) q->head = q->len = 0;
    if (q->len == q->cap) {
        if (q->head > 0) { /* compact before growing */
            memmove(q->a, q->a + q->head, (q->len - q->head) * sizeof *q->a);
            q->len -= q->head;
            q->head = 0;
        }
        if (q->len == q->cap) {
            size_t nc = q->cap ? q->cap * 2 : 64;
            pl__relay_action *na = realloc(q->a, nc * sizeof *na);
            if (!na) return PL_ERR_NOMEM;
            q->a = na;
            q->cap = nc;
        }
    }
    q->a[q->len++] = *a;
    return PL_OK;
}

bool pl__relay_core_pop(pl__relay_core *c, pl__relay_action *out) {
    PL_REQUIRE(c && out);
    memset(out, 0, sizeof *out);
    if (c->q.head == c->q.len) return false;
    *out = c->q.a[c->q.head++];
    if (c->q.head == c->q.len) c->q.head = c->q.len = 0;
    return true;
}

/* Queue `j` (consumed) as a text frame to conn. */
static pl_err send_json(pl__relay_core *c, uint64_t conn_id, json_t *j) {
    if (!j) return PL_ERR_NOMEM;
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!s) return PL_ERR_NOMEM;
    pl__relay_action a = {.kind = PL__RELAY_SEND, .conn = conn_id, .text = s, .len = strlen(s)};
    pl_err e = q_push(c, &a);
    if (e != PL_OK) free(s);
    return e;
}

static json_t *id_or_null(json_t *id) { return id ? json_incref(id) : json_null(); }

static pl_err reply_result(pl__relay_core *c, uint64_t conn_id, json_t *id, json_t *result) {
    json_t *j = json_object();
    if (!j || !result) {
        json_decref(j);
        json_decref(result);
        return PL_ERR_NOMEM;
    }
    json_object_set_new(j, "id", id_or_null(id));
    json_object_set_new(j, "jsonrpc", json_string("2.0"));
    json_object_set_new(j, "result", result);
    return send_json(c, conn_id, j);
}

static pl_err reply_error(pl__relay_core *c, uint64_t conn_id, json_t *id, int code,
                          const char *message) {
    json_t *j = json_object();
    json_t *e = json_object();
    if (!j || !e) {
        json_decref(j);
        json_decref(e);
        return PL_ERR_NOMEM;
    }
    json_object_set_new(e, "code", json_integer(code));
    json_object_set_new(e, "message", json_string(message));
    json_object_set_new(j, "id", id_or_null(id));
    json_object_set_new(j, "jsonrpc", json_string("2.0"));
    json_object_set_new(j, "error", e);
    c->st.errors++;
    return send_json(c, conn_id, j);
}

/* The JSON-RPC code a pl_err is answered with. */
static int rpc_code(pl_err e) {
    switch (e) {
    case PL_ERR_JSON: return PL_RELAY_ERR_PARSE;
    case PL_ERR_RPC_INVALID:
    case PL_ERR_RPC_BAD_ID:
    case PL_ERR_TOO_LARGE: return PL_RELAY_ERR_INVALID_REQUEST;
    case PL_ERR_NOT_FOUND: return PL_RELAY_ERR_METHOD_NOT_FOUND;
    case PL_ERR_INVALID_ARG: return PL_RELAY_ERR_INVALID_PARAMS;
    case PL_ERR_BAD_TTL:
    case PL_ERR_MAILBOX_FULL: return PL_RELAY_ERR_HANDLER;
    case PL_ERR_RATE_LIMITED: return PL_RELAY_ERR_RATE;
    case PL_ERR_RELAY_AUTH: return PL_RELAY_ERR_AUTH;
    default: return PL_RELAY_ERR_INTERNAL;
    }
}

/* ---- topics ---------------------------------------------------------------- */

/* Chained hash tables that double when they hold as many entries as buckets.
 * A failed doubling leaves the old table in use: slower, still correct. */
static pl_err topics_grow(pl__relay_core *c) {
    if (c->tnb && c->ntopics < c->tnb) return PL_OK;
    size_t nn = c->tnb ? c->tnb * 2 : 64;
    topic **nb = calloc(nn, sizeof *nb);
    if (!nb) return c->tnb ? PL_OK : PL_ERR_NOMEM;
    for (size_t i = 0; i < c->tnb; i++) {
        for (topic *t = c->tbuckets[i], *next; t; t = next) {
            next = t->hnext;
            size_t b = hash_str(t->hex) & (nn - 1);
            t->hnext = nb[b];
            nb[b] = t;
        }
    }
    free(c->tbuckets);
    c->tbuckets = nb;
    c->tnb = nn;
    return PL_OK;
}

static pl_err conns_grow(pl__relay_core *c) {
    if (c->cnb && c->nconns < c->cnb) return PL_OK;
    size_t nn = c->cnb ? c->cnb * 2 : 64;
    conn **nb = calloc(nn, sizeof *nb);
    if (!nb) return c->cnb ? PL_OK : PL_ERR_NOMEM;
    for (size_t i = 0; i < c->cnb; i++) {
        for (conn *k = c->cbuckets[i], *next; k; k = next) {
            next = k->hnext;
            size_t b = hash_u64(k->id) & (nn - 1);
            k->hnext = nb[b];
            nb[b] = k;
        }
    }
    free(c->cbuckets);
    c->cbuckets = nb;
    c->cnb = nn;
    return PL_OK;
}

static topic *topic_find(const pl__relay_core *c, const char *hex) {
    if (!c->tnb) return NULL;
    for (topic *t = c->tbuckets[hash_str(hex) & (c->tnb - 1)]; t; t = t->hnext)
        if (!memcmp(t->hex, hex, PL_RELAY_TOPIC_HEX)) return t;
    return NULL;
}

static topic *topic_get(pl__relay_core *c, const char *hex) {
    topic *t = topic_find(c, hex);
    if (t) return t;
    if (topics_grow(c) != PL_OK) return NULL;
    t = calloc(1, sizeof *t);
    if (!t) return NULL;
    memcpy(t->hex, hex, PL_RELAY_TOPIC_HEX);
    size_t b = hash_str(t->hex) & (c->tnb - 1);
    t->hnext = c->tbuckets[b];
    c->tbuckets[b] = t;
    c->ntopics++;
    return t;
}

/* Forget a topic nobody listens to and nothing is stored for. */
static void topic_gc(pl__relay_core *c, topic *t) {
    if (t->nsubs || t->nmsgs) return;
    topic **pp = &c->tbuckets[hash_str(t->hex) & (c->tnb - 1)];
    while (*pp && *pp != t) pp = &(*pp)->hnext;
    if (*pp) *pp = t->hnext;
    c->ntopics--;
    free(t->subs);
    free(t->ibuckets);
    free(t);
}

/* ---- connections ---------------------------------------------------------- */

static conn *conn_find(const pl__relay_core *c, uint64_t id) {
    if (!c->cnb) return NULL;
    for (conn *k = c->cbuckets[hash_u64(id) & (c->cnb - 1)]; k; k = k->hnext)
        if (k->id == id) return k;
    return NULL;
}

static bool conn_subscribed(const conn *k, const topic *t) {
    for (size_t i = 0; i < k->ntopics; i++)
        if (k->topics[i] == t) return true;
    return false;
}

static bool is_own(const conn *k, const rmsg *m) {
    if (m->publisher_conn == k->id) return true;
    return k->has_did && m->rec.publisher[0] && !strcmp(m->rec.publisher, k->client);
}

/* ---- messages and the expiry heap ------------------------------------------ */

static void msg_unref(rmsg *m) {
    if (--m->refs) return;
    free(m->rec.message);
    free(m->rec.attestation);
    free(m);
}

static bool heap_less(rmsg *a, rmsg *b) { return a->rec.expires_at_ms < b->rec.expires_at_ms; }

static pl_err heap_push(pl__relay_core *c, rmsg *m) {
    if (c->nheap == c->capheap) {
        size_t nc = c->capheap ? c->capheap * 2 : 256;
        rmsg **nh = realloc(c->heap, nc * sizeof *nh);
        if (!nh) return PL_ERR_NOMEM;
        c->heap = nh;
        c->capheap = nc;
    }
    size_t i = c->nheap++;
    c->heap[i] = m;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(c->heap[i], c->heap[p])) break;
        rmsg *tmp = c->heap[i];
        c->heap[i] = c->heap[p];
        c->heap[p] = tmp;
        i = p;
    }
    return PL_OK;
}

static rmsg *heap_pop(pl__relay_core *c) {
    rmsg *top = c->heap[0];
    c->heap[0] = c->heap[--c->nheap];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < c->nheap && heap_less(c->heap[l], c->heap[m])) m = l;
        if (r < c->nheap && heap_less(c->heap[r], c->heap[m])) m = r;
        if (m == i) break;
        rmsg *tmp = c->heap[i];
        c->heap[i] = c->heap[m];
        c->heap[m] = tmp;
        i = m;
    }
    return top;
}

static rmsg *mailbox_find(const topic *t, const char *id) {
    if (!t->inb) return NULL;
    for (rmsg *m = t->ibuckets[hash_str(id) & (t->inb - 1)]; m; m = m->inext)
        if (!memcmp(m->rec.id, id, PL_RELAY_ID_HEX)) return m;
    return NULL;
}

/* Same policy as topics_grow: double at one message per bucket. */
static pl_err index_grow(topic *t) {
    if (t->inb && t->nmsgs < t->inb) return PL_OK;
    size_t nn = t->inb ? t->inb * 2 : 8;
    rmsg **nb = calloc(nn, sizeof *nb);
    if (!nb) return t->inb ? PL_OK : PL_ERR_NOMEM;
    for (size_t i = 0; i < t->inb; i++) {
        for (rmsg *m = t->ibuckets[i], *next; m; m = next) {
            next = m->inext;
            size_t b = hash_str(m->rec.id) & (nn - 1);
            m->inext = nb[b];
            nb[b] = m;
        }
    }
    free(t->ibuckets);
    t->ibuckets = nb;
    t->inb = nn;
    return PL_OK;
}

static void index_remove(topic *t, rmsg *m) {
    rmsg **pp = &t->ibuckets[hash_str(m->rec.id) & (t->inb - 1)];
    while (*pp && *pp != m) pp = &(*pp)->inext;
    if (*pp) *pp = m->inext;
    m->inext = NULL;
}

/* Insert a new message into t's mailbox; the record is copied. */
static pl_err mailbox_add(pl__relay_core *c, topic *t, const pl__relay_record *rec,
                          uint64_t publisher_conn, rmsg **out) {
    if (index_grow(t) != PL_OK) return PL_ERR_NOMEM;
    rmsg *m = calloc(1, sizeof *m);
    if (!m) return PL_ERR_NOMEM;
    m->rec = *rec;
    m->rec.message = malloc(rec->message_len + 1);
    m->rec.attestation = rec->attestation ? strdup(rec->attestation) : NULL;
    if (!m->rec.message || (rec->attestation && !m->rec.attestation)) goto nomem;
    memcpy(m->rec.message, rec->message, rec->message_len);
    m->rec.message[rec->message_len] = '\0';
    if (heap_push(c, m) != PL_OK) goto nomem;
    m->t = t;
    m->refs = 1;
    m->publisher_conn = publisher_conn;
    m->prev = t->tail;
    if (t->tail) t->tail->next = m;
    else t->head = m;
    t->tail = m;
    t->nmsgs++;
    size_t b = hash_str(m->rec.id) & (t->inb - 1);
    m->inext = t->ibuckets[b];
    t->ibuckets[b] = m;
    c->total_bytes += rec->message_len;
    *out = m;
    return PL_OK;
nomem:
    free(m->rec.message);
    free(m->rec.attestation);
    free(m);
    return PL_ERR_NOMEM;
}

static pl_err store_action(pl__relay_core *c, pl__relay_action_kind kind, const rmsg *m) {
    pl__relay_action a = {.kind = kind};
    a.rec = m->rec;
    a.rec.message = NULL;
    a.rec.attestation = NULL;
    if (kind == PL__RELAY_STORE_PUT) {
        a.rec.message = malloc(m->rec.message_len + 1);
        if (!a.rec.message) return PL_ERR_NOMEM;
        memcpy(a.rec.message, m->rec.message, m->rec.message_len + 1);
        if (m->rec.attestation && !(a.rec.attestation = strdup(m->rec.attestation))) {
            free(a.rec.message);
            return PL_ERR_NOMEM;
        }
    } else {
        a.rec.message_len = 0;
    }
    pl_err e = q_push(c, &a);
    if (e != PL_OK) pl__relay_action_release(&a);
    return e;
}

/* ---- deliveries -------------------------------------------------------------- */

static void dl_append(dlist *l, delivery *d) {
    d->cnext = NULL;
    d->cprev = l->tail;
    if (l->tail) l->tail->cnext = d;
    else l->head = d;
    l->tail = d;
    l->n++;
}

static void dl_remove(dlist *l, delivery *d) {
    if (d->cprev) d->cprev->cnext = d->cnext;
    else l->head = d->cnext;
    if (d->cnext) d->cnext->cprev = d->cprev;
    else l->tail = d->cprev;
    d->cprev = d->cnext = NULL;
    l->n--;
}

static void g_append(pl__relay_core *c, delivery *d) {
    d->gnext = NULL;
    d->gprev = c->g_tail;
    if (c->g_tail) c->g_tail->gnext = d;
    else c->g_head = d;
    c->g_tail = d;
}

static void g_remove(pl__relay_core *c, delivery *d) {
    if (d->gprev) d->gprev->gnext = d->gnext;
    else c->g_head = d->gnext;
    if (d->gnext) d->gnext->gprev = d->gprev;
    else c->g_tail = d->gprev;
    d->gprev = d->gnext = NULL;
}

static void delivery_free(delivery *d) {
    msg_unref(d->m);
    free(d);
}

static json_t *message_json(const rmsg *m) {
    json_t *d = json_object();
    if (!d) return NULL;
    json_object_set_new(d, "topic", json_string(m->rec.topic));
    json_object_set_new(d, "message", json_stringn(m->rec.message, m->rec.message_len));
    json_object_set_new(d, "publishedAt", json_integer(m->rec.published_at_ms));
    json_object_set_new(d, "tag", json_integer(m->rec.tag));
    if (m->rec.attestation) json_object_set_new(d, "attestation", json_string(m->rec.attestation));
    return d;
}

/* Send d as an irn_subscription request and start its ack timer. */
static pl_err push(pl__relay_core *c, delivery *d, int64_t now_ms) {
    char subid[PL_RELAY_ID_HEX + 1];
    pl__relay_subscription_id(subid, d->m->rec.topic, d->c->client);
    d->push_id = c->next_push_id++;
    d->deadline = now_ms + c->lim.ack_timeout_ms;
    d->attempts++;
    d->inflight = true;
    dl_append(&d->c->inflight, d);
    g_append(c, d);
    json_t *params = json_object();
    json_t *j = json_object();
    json_t *data = message_json(d->m);
    if (!params || !j || !data) {
        json_decref(params);
        json_decref(j);
        json_decref(data);
        return PL_ERR_NOMEM; /* stays inflight: the timer re-pushes it */
    }
    json_object_set_new(params, "id", json_string(subid));
    json_object_set_new(params, "data", data);
    json_object_set_new(j, "id", json_integer(d->push_id));
    json_object_set_new(j, "jsonrpc", json_string("2.0"));
    json_object_set_new(j, "method", json_string("irn_subscription"));
    json_object_set_new(j, "params", params);
    c->st.delivered++;
    return send_json(c, d->c->id, j);
}

/* Owe message m to connection k: push now, or queue behind the in-flight
 * window. */
static void deliver(pl__relay_core *c, conn *k, rmsg *m, int64_t now_ms) {
    bool window = k->inflight.n < c->lim.max_inflight_per_conn && !k->backlog.n;
    if (!window && k->backlog.n >= c->lim.max_backlog_per_conn) {
        c->st.dropped++; /* still in the mailbox: a re-subscribe gets it */
        return;
    }
    delivery *d = calloc(1, sizeof *d);
    if (!d) {
        c->st.dropped++;
        return;
    }
    d->m = m;
    d->c = k;
    m->refs++;
    if (window) push(c, d, now_ms);
    else dl_append(&k->backlog, d);
}

/* A delivery still makes sense: message alive, connection still subscribed. */
static bool delivery_wanted(const delivery *d) {
    return d->m->t && conn_subscribed(d->c, d->m->t);
}

static void drain_backlog(pl__relay_core *c, conn *k, int64_t now_ms) {
    while (k->backlog.head && k->inflight.n < c->lim.max_inflight_per_conn) {
        delivery *d = k->backlog.head;
        dl_remove(&k->backlog, d);
        if (delivery_wanted(d)) push(c, d, now_ms);
        else delivery_free(d);
    }
}

static void on_ack(pl__relay_core *c, conn *k, json_int_t id, int64_t now_ms) {
    for (delivery *d = k->inflight.head; d; d = d->cnext) {
        if (d->push_id != id) continue;
        dl_remove(&k->inflight, d);
        g_remove(c, d);
        delivery_free(d);
        c->st.acked++;
        drain_backlog(c, k, now_ms);
        return;
    }
    /* Unknown id: a late ack for a push that was already re-sent, or noise. */
}

/* ---- lifecycle ---------------------------------------------------------------- */

pl_err pl__relay_core_new(pl__relay_core **out, const pl__relay_limits *limits, int64_t now_ms) {
    PL_REQUIRE(out);
    *out = NULL;
    pl__relay_limits def;
    pl__relay_limits_default(&def);
    pl__relay_limits l = def;
    if (limits) {
        l = *limits;
#define DEF(f) if (!l.f) l.f = def.f
        DEF(max_frame_bytes);
        DEF(max_message_bytes);
        DEF(min_ttl_s);
        DEF(max_ttl_s);
        DEF(max_topics_per_conn);
        DEF(max_mailbox_per_topic);
        DEF(max_total_bytes);
        DEF(rate_per_s);
        DEF(rate_burst);
        DEF(ack_timeout_ms);
        DEF(max_push_attempts);
        DEF(max_inflight_per_conn);
        DEF(max_backlog_per_conn);
#undef DEF
    }
    if (l.min_ttl_s < 1 || l.max_ttl_s < l.min_ttl_s || l.max_ttl_s > INT64_MAX / 1000 / 4 ||
        l.max_message_bytes > l.max_frame_bytes || l.ack_timeout_ms < 1)
        return PL_ERR_INVALID_ARG;
    pl__relay_core *c = calloc(1, sizeof *c);
    if (!c) return PL_ERR_NOMEM;
    c->lim = l;
    /* JS-shaped ids (ms * 1000) stay below 2^53 until the year 2255 and
     * differ from the ids of a relay that ran before a restart. */
    c->next_push_id = now_ms > 0 && now_ms < (INT64_C(1) << 53) / 1000 ? now_ms * 1000 : 1;
    *out = c;
    return PL_OK;
}

static void conn_destroy(pl__relay_core *c, conn *k) {
    while (k->inflight.head) {
        delivery *d = k->inflight.head;
        dl_remove(&k->inflight, d);
        g_remove(c, d);
        delivery_free(d);
    }
    while (k->backlog.head) {
        delivery *d = k->backlog.head;
        dl_remove(&k->backlog, d);
        delivery_free(d);
    }
    for (size_t i = 0; i < k->ntopics; i++) {
        topic *t = k->topics[i];
        for (size_t j = 0; j < t->nsubs; j++) {
            if (t->subs[j].c != k) continue;
            t->subs[j] = t->subs[--t->nsubs];
            break;
        }
        topic_gc(c, t);
    }
    free(k->topics);
    free(k);
}

void pl__relay_core_free(pl__relay_core *c) {
    if (!c) return;
    for (size_t i = 0; i < c->cnb; i++) {
        while (c->cbuckets[i]) {
            conn *k = c->cbuckets[i];
            c->cbuckets[i] = k->hnext;
            conn_destroy(c, k);
        }
    }
    for (size_t i = 0; i < c->nheap; i++) {
        rmsg *m = c->heap[i];
        m->t = NULL;
        msg_unref(m);
    }
    for (size_t i = 0; i < c->tnb; i++) {
        while (c->tbuckets[i]) {
            topic *t = c->tbuckets[i];
            c->tbuckets[i] = t->hnext;
            free(t->subs);
            free(t->ibuckets);
            free(t);
        }
    }
    while (c->q.head < c->q.len) pl__relay_action_release(&c->q.a[c->q.head++]);
    free(c->q.a);
    free(c->heap);
    free(c->tbuckets);
    free(c->cbuckets);
    free(c);
}

const pl__relay_limits *pl__relay_core_limits(const pl__relay_core *c) {
    PL_REQUIRE(c);
    return &c->lim;
}

pl_err pl__relay_core_open(pl__relay_core *c, uint64_t conn_id, const char *client_did,
                           int64_t now_ms) {
    PL_REQUIRE(c);
    if (conn_find(c, conn_id)) return PL_ERR_EXISTS;
    if (client_did && strlen(client_did) >= PL_DID_KEY_SIZE) return PL_ERR_BAD_DID;
    PL_TRY(conns_grow(c));
    conn *k = calloc(1, sizeof *k);
    if (!k) return PL_ERR_NOMEM;
    k->id = conn_id;
    if (client_did && *client_did) {
        snprintf(k->client, sizeof k->client, "%s", client_did);
        k->has_did = true;
    } else {
        snprintf(k->client, sizeof k->client, "conn:%llu", (unsigned long long)conn_id);
    }
    k->tokens_milli = (int64_t)c->lim.rate_burst * 1000;
    k->last_refill_ms = now_ms;
    size_t b = hash_u64(conn_id) & (c->cnb - 1);
    k->hnext = c->cbuckets[b];
    c->cbuckets[b] = k;
    c->nconns++;
    return PL_OK;
}

void pl__relay_core_close(pl__relay_core *c, uint64_t conn_id) {
    PL_REQUIRE(c);
    conn *k = conn_find(c, conn_id);
    if (!k) return;
    conn **pp = &c->cbuckets[hash_u64(conn_id) & (c->cnb - 1)];
    while (*pp != k) pp = &(*pp)->hnext;
    *pp = k->hnext;
    c->nconns--;
    conn_destroy(c, k);
}

/* ---- expiry and re-push --------------------------------------------------------- */

static void expire(pl__relay_core *c, int64_t now_ms) {
    while (c->nheap && c->heap[0]->rec.expires_at_ms <= now_ms) {
        rmsg *m = heap_pop(c);
        topic *t = m->t;
        if (m->prev) m->prev->next = m->next;
        else t->head = m->next;
        if (m->next) m->next->prev = m->prev;
        else t->tail = m->prev;
        m->prev = m->next = NULL;
        index_remove(t, m);
        t->nmsgs--;
        c->total_bytes -= m->rec.message_len;
        m->t = NULL;
        store_action(c, PL__RELAY_STORE_DEL, m);
        topic_gc(c, t);
        msg_unref(m);
    }
}

void pl__relay_core_tick(pl__relay_core *c, int64_t now_ms) {
    PL_REQUIRE(c);
    expire(c, now_ms);
    while (c->g_head && c->g_head->deadline <= now_ms) {
        delivery *d = c->g_head;
        conn *k = d->c;
        g_remove(c, d);
        dl_remove(&k->inflight, d);
        if (!delivery_wanted(d)) {
            delivery_free(d);
        } else if (d->attempts >= c->lim.max_push_attempts) {
            c->st.dropped++;
            delivery_free(d);
        } else {
            c->st.repushed++;
            push(c, d, now_ms);
        }
        drain_backlog(c, k, now_ms);
    }
}

int64_t pl__relay_core_next_deadline(const pl__relay_core *c) {
    PL_REQUIRE(c);
    int64_t t = INT64_MAX;
    if (c->nheap) t = c->heap[0]->rec.expires_at_ms;
    if (c->g_head && c->g_head->deadline < t) t = c->g_head->deadline;
    return t;
}

void pl__relay_core_stats(const pl__relay_core *c, pl__relay_stats *out) {
    PL_REQUIRE(c && out);
    *out = c->st;
    out->conns = c->nconns;
    out->topics = c->ntopics;
    out->messages = c->nheap;
    out->message_bytes = c->total_bytes;
    size_t subs = 0, infl = 0, bl = 0;
    for (size_t i = 0; i < c->cnb; i++)
        for (conn *k = c->cbuckets[i]; k; k = k->hnext) {
            subs += k->ntopics;
            infl += k->inflight.n;
            bl += k->backlog.n;
        }
    out->subscriptions = subs;
    out->inflight = infl;
    out->backlog = bl;
}

/* ---- restore ---------------------------------------------------------------------- */

pl_err pl__relay_core_restore(pl__relay_core *c, const pl__relay_record *rec, int64_t now_ms) {
    PL_REQUIRE(c && rec);
    if (!is_topic_hex(rec->topic, strlen(rec->topic)) || !rec->message || !rec->message_len)
        return PL_ERR_INVALID_ARG;
    if (rec->message_len > c->lim.max_message_bytes) return PL_ERR_TOO_LARGE;
    if (rec->expires_at_ms <= now_ms) return PL_ERR_BAD_TTL;
    /* The id is recomputed: the store is trusted for durability, not for
     * the relation between a message and its id. */
    pl__relay_record r = *rec;
    uint8_t h[PL_SHA256_BYTES];
    pl_sha256(h, (const uint8_t *)rec->message, rec->message_len);
    to_hex(r.id, h, sizeof h);
    topic *t = topic_get(c, r.topic);
    if (!t) return PL_ERR_NOMEM;
    if (mailbox_find(t, r.id)) return PL_ERR_EXISTS;
    if (t->nmsgs >= c->lim.max_mailbox_per_topic ||
        c->total_bytes + r.message_len > c->lim.max_total_bytes) {
        topic_gc(c, t);
        return PL_ERR_MAILBOX_FULL;
    }
    rmsg *m;
    pl_err e = mailbox_add(c, t, &r, 0, &m);
    if (e != PL_OK) topic_gc(c, t);
    return e;
}

/* ---- request handlers ------------------------------------------------------------ */

typedef struct req {
    pl__relay_core *c;
    conn *k;
    json_t *id;
    json_t *params;
    int64_t now;
    const char *err_msg; /* message for the error reply, when a handler fails */
    char err_buf[96];
} req;

static pl_err fail(req *r, pl_err e, const char *msg) {
    r->err_msg = msg;
    return e;
}

static pl_err param_topic(req *r, json_t *obj, const char *name, char out[PL_RELAY_TOPIC_HEX + 1]) {
    json_t *v = json_object_get(obj, name);
    if (!json_is_string(v)) {
        snprintf(r->err_buf, sizeof r->err_buf, "missing or non-string %s", name);
        return fail(r, PL_ERR_INVALID_ARG, r->err_buf);
    }
    if (!is_topic_hex(json_string_value(v), json_string_length(v))) {
        snprintf(r->err_buf, sizeof r->err_buf, "%s must be 64 lowercase hex characters", name);
        return fail(r, PL_ERR_INVALID_ARG, r->err_buf);
    }
    memcpy(out, json_string_value(v), PL_RELAY_TOPIC_HEX + 1);
    return PL_OK;
}

static json_t *params_object(req *r) { return json_is_object(r->params) ? r->params : NULL; }

/* A publish, checked and not yet applied. */
typedef struct pub {
    char topic[PL_RELAY_TOPIC_HEX + 1];
    const char *message;
    size_t message_len;
    int64_t ttl_s;
    int64_t tag;
    const char *attestation;
} pub;

static pl_err check_message(req *r, json_t *obj, const char *name, pub *p) {
    json_t *v = json_object_get(obj, name);
    if (!json_is_string(v)) {
        snprintf(r->err_buf, sizeof r->err_buf, "missing or non-string %s", name);
        return fail(r, PL_ERR_INVALID_ARG, r->err_buf);
    }
    p->message = json_string_value(v);
    p->message_len = json_string_length(v);
    if (!p->message_len) return fail(r, PL_ERR_INVALID_ARG, "empty message");
    if (p->message_len > r->c->lim.max_message_bytes) {
        snprintf(r->err_buf, sizeof r->err_buf, "Payload too large: message exceeds %zu bytes",
                 r->c->lim.max_message_bytes);
        return fail(r, PL_ERR_TOO_LARGE, r->err_buf);
    }
    return PL_OK;
}

/* ttl, tag and attestation shared by every publishing method. ttl_default
 * < 0: ttl is required. */
static pl_err check_common(req *r, json_t *obj, int64_t ttl_default, pub *p) {
    json_t *ttl = json_object_get(obj, "ttl");
    if (!ttl && ttl_default >= 0) {
        p->ttl_s = ttl_default;
    } else if (!json_is_integer(ttl)) {
        return fail(r, PL_ERR_INVALID_ARG, "missing or non-integer ttl");
    } else {
        p->ttl_s = json_integer_value(ttl);
    }
    if (p->ttl_s < r->c->lim.min_ttl_s) {
        snprintf(r->err_buf, sizeof r->err_buf, "ttl too short: minimum is %lld s",
                 (long long)r->c->lim.min_ttl_s);
        return fail(r, PL_ERR_BAD_TTL, r->err_buf);
    }
    if (p->ttl_s > r->c->lim.max_ttl_s) {
        snprintf(r->err_buf, sizeof r->err_buf, "ttl too long: maximum is %lld s",
                 (long long)r->c->lim.max_ttl_s);
        return fail(r, PL_ERR_BAD_TTL, r->err_buf);
    }
    json_t *tag = json_object_get(obj, "tag");
    if (tag && !json_is_null(tag)) {
        if (!json_is_integer(tag) || json_integer_value(tag) < 0 ||
            json_integer_value(tag) > UINT32_MAX)
            return fail(r, PL_ERR_INVALID_ARG, "tag must be an unsigned 32-bit integer");
        p->tag = json_integer_value(tag);
    }
    json_t *att = json_object_get(obj, "attestation");
    if (att && !json_is_null(att)) {
        if (!json_is_string(att)) return fail(r, PL_ERR_INVALID_ARG, "attestation must be a string");
        if (json_string_length(att) > PL_RELAY_ATTESTATION_MAX)
            return fail(r, PL_ERR_TOO_LARGE, "attestation too large");
        if (json_string_length(att)) p->attestation = json_string_value(att);
    }
    return PL_OK;
}

/* Room for the new (not duplicate) messages of a whole request. */
static pl_err check_capacity(req *r, const pub *ps, size_t n) {
    pl__relay_core *c = r->c;
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t h[PL_SHA256_BYTES];
        char id[PL_RELAY_ID_HEX + 1];
        pl_sha256(h, (const uint8_t *)ps[i].message, ps[i].message_len);
        to_hex(id, h, sizeof h);
        topic *t = topic_find(c, ps[i].topic);
        if (t && mailbox_find(t, id)) continue;
        size_t same = 0;
        for (size_t j = 0; j < i; j++)
            if (!memcmp(ps[j].topic, ps[i].topic, PL_RELAY_TOPIC_HEX)) same++;
        if ((t ? t->nmsgs : 0) + same + 1 > c->lim.max_mailbox_per_topic) {
            snprintf(r->err_buf, sizeof r->err_buf, "mailbox limit reached: %zu messages per topic",
                     c->lim.max_mailbox_per_topic);
            return fail(r, PL_ERR_MAILBOX_FULL, r->err_buf);
        }
        bytes += ps[i].message_len;
    }
    if (c->total_bytes + bytes > c->lim.max_total_bytes)
        return fail(r, PL_ERR_MAILBOX_FULL, "mailbox limit reached: relay storage is full");
    return PL_OK;
}

/* Store and fan out one checked publish. Duplicates are acknowledged
 * without a second copy or a second delivery. */
static pl_err apply_publish(req *r, const pub *p) {
    pl__relay_core *c = r->c;
    pl__relay_record rec;
    memset(&rec, 0, sizeof rec);
    memcpy(rec.topic, p->topic, sizeof rec.topic);
    uint8_t h[PL_SHA256_BYTES];
    pl_sha256(h, (const uint8_t *)p->message, p->message_len);
    to_hex(rec.id, h, sizeof h);
    topic *t = topic_get(c, p->topic);
    if (!t) return fail(r, PL_ERR_NOMEM, "out of memory");
    if (mailbox_find(t, rec.id)) return PL_OK;
    rec.message = (char *)p->message;
    rec.message_len = p->message_len;
    rec.attestation = (char *)p->attestation;
    rec.published_at_ms = r->now;
    rec.expires_at_ms = r->now + p->ttl_s * 1000;
    rec.tag = p->tag;
    if (r->k->has_did) memcpy(rec.publisher, r->k->client, sizeof rec.publisher);
    rmsg *m;
    pl_err e = mailbox_add(c, t, &rec, r->k->id, &m);
    if (e != PL_OK) {
        topic_gc(c, t);
        return fail(r, e, "out of memory");
    }
    c->st.published++;
    if ((e = store_action(c, PL__RELAY_STORE_PUT, m)) != PL_OK) return fail(r, e, "out of memory");
    for (size_t i = 0; i < t->nsubs; i++) {
        conn *k = t->subs[i].c;
        if (!is_own(k, m)) deliver(c, k, m, r->now);
    }
    return PL_OK;
}

/* Subscribe r->k to topic. *fresh: a new subscription (its mailbox must be
 * replayed after the answer is queued). */
static pl_err do_subscribe(req *r, const char *hex, bool *fresh) {
    pl__relay_core *c = r->c;
    conn *k = r->k;
    *fresh = false;
    topic *t = topic_find(c, hex);
    if (t && conn_subscribed(k, t)) return PL_OK;
    if (k->ntopics >= c->lim.max_topics_per_conn) {
        snprintf(r->err_buf, sizeof r->err_buf, "subscription limit reached: %zu topics per client",
                 c->lim.max_topics_per_conn);
        return fail(r, PL_ERR_MAILBOX_FULL, r->err_buf);
    }
    if (!t && !(t = topic_get(c, hex))) return fail(r, PL_ERR_NOMEM, "out of memory");
    if (t->nsubs == t->capsubs) {
        size_t nc = t->capsubs ? t->capsubs * 2 : 4;
        sub *ns = realloc(t->subs, nc * sizeof *ns);
        if (!ns) goto nomem;
        t->subs = ns;
        t->capsubs = nc;
    }
    if (k->ntopics == k->captopics) {
        size_t nc = k->captopics ? k->captopics * 2 : 8;
        topic **nt = realloc(k->topics, nc * sizeof *nt);
        if (!nt) goto nomem;
        k->topics = nt;
        k->captopics = nc;
    }
    t->subs[t->nsubs++].c = k;
    k->topics[k->ntopics++] = t;
    *fresh = true;
    return PL_OK;
nomem:
    topic_gc(c, t);
    return fail(r, PL_ERR_NOMEM, "out of memory");
}

static void replay(req *r, const char *hex) {
    topic *t = topic_find(r->c, hex);
    if (!t) return;
    for (rmsg *m = t->head; m; m = m->next)
        if (!is_own(r->k, m)) deliver(r->c, r->k, m, r->now);
}

static void do_unsubscribe(req *r, const char *hex) {
    topic *t = topic_find(r->c, hex);
    conn *k = r->k;
    if (!t) return;
    for (size_t i = 0; i < k->ntopics; i++) {
        if (k->topics[i] != t) continue;
        k->topics[i] = k->topics[--k->ntopics];
        for (size_t j = 0; j < t->nsubs; j++) {
            if (t->subs[j].c != k) continue;
            t->subs[j] = t->subs[--t->nsubs];
            break;
        }
        topic_gc(r->c, t);
        return;
    }
}

static json_t *sub_id_json(req *r, const char *hex) {
    char id[PL_RELAY_ID_HEX + 1];
    pl__relay_subscription_id(id, hex, r->k->client);
    return json_string(id);
}

static pl_err m_publish(req *r) {
    json_t *p = params_object(r);
    if (!p) return fail(r, PL_ERR_INVALID_ARG, "params must be an object");
    pub pb;
    memset(&pb, 0, sizeof pb);
    PL_TRY(param_topic(r, p, "topic", pb.topic));
    PL_TRY(check_message(r, p, "message", &pb));
    PL_TRY(check_common(r, p, -1, &pb));
    PL_TRY(check_capacity(r, &pb, 1));
    PL_TRY(apply_publish(r, &pb));
    return reply_result(r->c, r->k->id, r->id, json_true());
}

static pl_err array_param(req *r, const char *name, json_t **out) {
    json_t *p = params_object(r);
    json_t *a = p ? json_object_get(p, name) : NULL;
    if (!json_is_array(a)) {
        snprintf(r->err_buf, sizeof r->err_buf, "params.%s must be an array", name);
        return fail(r, PL_ERR_INVALID_ARG, r->err_buf);
    }
    if (json_array_size(a) > PL_RELAY_BATCH_MAX) {
        snprintf(r->err_buf, sizeof r->err_buf, "too many items in %s: at most %d", name,
                 PL_RELAY_BATCH_MAX);
        return fail(r, PL_ERR_INVALID_ARG, r->err_buf);
    }
    *out = a;
    return PL_OK;
}

static pl_err m_batch_publish(req *r) {
    json_t *a;
    PL_TRY(array_param(r, "messages", &a));
    size_t n = json_array_size(a);
    pub *ps = calloc(n ? n : 1, sizeof *ps);
    if (!ps) return fail(r, PL_ERR_NOMEM, "out of memory");
    pl_err e = PL_OK;
    for (size_t i = 0; i < n && e == PL_OK; i++) {
        json_t *o = json_array_get(a, i);
        if (!json_is_object(o)) {
            e = fail(r, PL_ERR_INVALID_ARG, "every batch item must be an object");
            break;
        }
        if ((e = param_topic(r, o, "topic", ps[i].topic)) != PL_OK) break;
        if ((e = check_message(r, o, "message", &ps[i])) != PL_OK) break;
        e = check_common(r, o, -1, &ps[i]);
    }
    if (e == PL_OK) e = check_capacity(r, ps, n);
    for (size_t i = 0; i < n && e == PL_OK; i++) e = apply_publish(r, &ps[i]);
    free(ps);
    if (e != PL_OK) return e;
    return reply_result(r->c, r->k->id, r->id, json_true());
}

static pl_err m_subscribe(req *r) {
    json_t *p = params_object(r);
    if (!p) return fail(r, PL_ERR_INVALID_ARG, "params must be an object");
    char hex[PL_RELAY_TOPIC_HEX + 1];
    bool fresh;
    PL_TRY(param_topic(r, p, "topic", hex));
    PL_TRY(do_subscribe(r, hex, &fresh));
    pl_err e = reply_result(r->c, r->k->id, r->id, sub_id_json(r, hex));
    if (fresh) replay(r, hex);
    return e;
}

static pl_err topics_param(req *r, char (**out)[PL_RELAY_TOPIC_HEX + 1], size_t *n) {
    json_t *a;
    *out = NULL;
    PL_TRY(array_param(r, "topics", &a));
    *n = json_array_size(a);
    char(*ts)[PL_RELAY_TOPIC_HEX + 1] = calloc(*n ? *n : 1, sizeof *ts);
    if (!ts) return fail(r, PL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < *n; i++) {
        json_t *v = json_array_get(a, i);
        if (!json_is_string(v) || !is_topic_hex(json_string_value(v), json_string_length(v))) {
            free(ts);
            return fail(r, PL_ERR_INVALID_ARG, "topics must be 64 lowercase hex characters");
        }
        memcpy(ts[i], json_string_value(v), PL_RELAY_TOPIC_HEX + 1);
    }
    *out = ts;
    return PL_OK;
}

static pl_err m_batch_subscribe(req *r) {
    char(*ts)[PL_RELAY_TOPIC_HEX + 1];
    size_t n;
    PL_TRY(topics_param(r, &ts, &n));
    /* All or nothing on the subscription limit. */
    size_t need = 0;
    for (size_t i = 0; i < n; i++) {
        topic *t = topic_find(r->c, ts[i]);
        bool dup = false;
        for (size_t j = 0; j < i && !dup; j++) dup = !memcmp(ts[j], ts[i], PL_RELAY_TOPIC_HEX);
        if (!dup && !(t && conn_subscribed(r->k, t))) need++;
    }
    if (r->k->ntopics + need > r->c->lim.max_topics_per_conn) {
        free(ts);
        snprintf(r->err_buf, sizeof r->err_buf, "subscription limit reached: %zu topics per client",
                 r->c->lim.max_topics_per_conn);
        return fail(r, PL_ERR_MAILBOX_FULL, r->err_buf);
    }
    bool *fresh = calloc(n ? n : 1, sizeof *fresh);
    json_t *ids = json_array();
    pl_err e = (!fresh || !ids) ? fail(r, PL_ERR_NOMEM, "out of memory") : PL_OK;
    for (size_t i = 0; i < n && e == PL_OK; i++) {
        e = do_subscribe(r, ts[i], &fresh[i]);
        if (e == PL_OK) json_array_append_new(ids, sub_id_json(r, ts[i]));
    }
    if (e == PL_OK) {
        e = reply_result(r->c, r->k->id, r->id, ids);
        ids = NULL;
        for (size_t i = 0; i < n; i++)
            if (fresh[i]) replay(r, ts[i]);
    }
    json_decref(ids);
    free(fresh);
    free(ts);
    return e;
}

static pl_err m_unsubscribe(req *r) {
    json_t *p = params_object(r);
    if (!p) return fail(r, PL_ERR_INVALID_ARG, "params must be an object");
    char hex[PL_RELAY_TOPIC_HEX + 1];
    PL_TRY(param_topic(r, p, "topic", hex));
    json_t *id = json_object_get(p, "id");
    if (id && !json_is_string(id)) return fail(r, PL_ERR_INVALID_ARG, "id must be a string");
    do_unsubscribe(r, hex);
    return reply_result(r->c, r->k->id, r->id, json_true());
}

static pl_err m_batch_unsubscribe(req *r) {
    json_t *a;
    PL_TRY(array_param(r, "subscriptions", &a));
    size_t n = json_array_size(a);
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(a, i);
        char hex[PL_RELAY_TOPIC_HEX + 1];
        if (!json_is_object(o)) return fail(r, PL_ERR_INVALID_ARG, "subscriptions must be objects");
        PL_TRY(param_topic(r, o, "topic", hex));
        json_t *id = json_object_get(o, "id");
        if (id && !json_is_string(id)) return fail(r, PL_ERR_INVALID_ARG, "id must be a string");
    }
    for (size_t i = 0; i < n; i++)
        do_unsubscribe(r, json_string_value(json_object_get(json_array_get(a, i), "topic")));
    return reply_result(r->c, r->k->id, r->id, json_true());
}

/* {messages:[...], hasMore} for the topics, oldest first, the caller's own
 * messages left out. */
static pl_err fetch(req *r, char (*ts)[PL_RELAY_TOPIC_HEX + 1], size_t n) {
    json_t *msgs = json_array();
    json_t *res = json_object();
    if (!msgs || !res) {
        json_decref(msgs);
        json_decref(res);
        return fail(r, PL_ERR_NOMEM, "out of memory");
    }
    bool more = false;
    size_t count = 0;
    for (size_t i = 0; i < n && !more; i++) {
        bool dup = false;
        for (size_t j = 0; j < i && !dup; j++) dup = !memcmp(ts[j], ts[i], PL_RELAY_TOPIC_HEX);
        topic *t = dup ? NULL : topic_find(r->c, ts[i]);
        for (rmsg *m = t ? t->head : NULL; m; m = m->next) {
            if (is_own(r->k, m)) continue;
            if (count == PL_RELAY_FETCH_MAX) {
                more = true;
                break;
            }
            json_array_append_new(msgs, message_json(m));
            count++;
        }
    }
    json_object_set_new(res, "messages", msgs);
    json_object_set_new(res, "hasMore", json_boolean(more));
    return reply_result(r->c, r->k->id, r->id, res);
}

static pl_err m_fetch(req *r) {
    json_t *p = params_object(r);
    if (!p) return fail(r, PL_ERR_INVALID_ARG, "params must be an object");
    char hex[1][PL_RELAY_TOPIC_HEX + 1];
    PL_TRY(param_topic(r, p, "topic", hex[0]));
    return fetch(r, hex, 1);
}

static pl_err m_batch_fetch(req *r) {
    char(*ts)[PL_RELAY_TOPIC_HEX + 1];
    size_t n;
    PL_TRY(topics_param(r, &ts, &n));
    pl_err e = fetch(r, ts, n);
    free(ts);
    return e;
}

/* wc_proposeSession: the relay publishes the proposal on the pairing topic
 * (tag 1100) and subscribes the caller to that topic. */
static pl_err m_propose_session(req *r) {
    json_t *p = params_object(r);
    if (!p) return fail(r, PL_ERR_INVALID_ARG, "params must be an object");
    pub pb;
    memset(&pb, 0, sizeof pb);
    PL_TRY(param_topic(r, p, "pairingTopic", pb.topic));
    PL_TRY(check_message(r, p, "sessionProposal", &pb));
    PL_TRY(check_common(r, p, 300, &pb));
    pb.tag = 1100;
    PL_TRY(check_capacity(r, &pb, 1));
    bool fresh;
    PL_TRY(do_subscribe(r, pb.topic, &fresh));
    PL_TRY(apply_publish(r, &pb));
    pl_err e = reply_result(r->c, r->k->id, r->id, json_true());
    if (fresh) replay(r, pb.topic);
    return e;
}

/* wc_approveSession: the proposal response goes to the pairing topic (1101),
 * the settle request to the session topic (1102), and the caller is
 * subscribed to the session topic. */
static pl_err m_approve_session(req *r) {
    json_t *p = params_object(r);
    if (!p) return fail(r, PL_ERR_INVALID_ARG, "params must be an object");
    pub pb[2];
    memset(pb, 0, sizeof pb);
    PL_TRY(param_topic(r, p, "pairingTopic", pb[0].topic));
    PL_TRY(param_topic(r, p, "sessionTopic", pb[1].topic));
    PL_TRY(check_message(r, p, "sessionProposalResponse", &pb[0]));
    PL_TRY(check_message(r, p, "sessionSettlementRequest", &pb[1]));
    PL_TRY(check_common(r, p, 300, &pb[0]));
    pb[1].ttl_s = pb[0].ttl_s;
    pb[1].attestation = pb[0].attestation;
    pb[0].tag = 1101;
    pb[1].tag = 1102;
    PL_TRY(check_capacity(r, pb, 2));
    bool fresh;
    PL_TRY(do_subscribe(r, pb[1].topic, &fresh));
    PL_TRY(apply_publish(r, &pb[0]));
    PL_TRY(apply_publish(r, &pb[1]));
    pl_err e = reply_result(r->c, r->k->id, r->id, json_true());
    if (fresh) replay(r, pb[1].topic);
    return e;
}

static const struct method {
    const char *name;
    pl_err (*fn)(req *r);
} methods[] = {
    {"irn_publish", m_publish},
    {"irn_batchPublish", m_batch_publish},
    {"irn_subscribe", m_subscribe},
    {"irn_batchSubscribe", m_batch_subscribe},
    {"irn_unsubscribe", m_unsubscribe},
    {"irn_batchUnsubscribe", m_batch_unsubscribe},
    {"irn_fetchMessages", m_fetch},
    {"irn_batchFetchMessages", m_batch_fetch},
    {"wc_proposeSession", m_propose_session},
    {"wc_approveSession", m_approve_session},
};

/* ---- frames ------------------------------------------------------------------------ */

/* Take a token from the connection's bucket; false when it is empty. */
static bool rate_take(pl__relay_core *c, conn *k, int64_t now_ms) {
    if (c->lim.rate_unlimited) return true;
    int64_t cap = (int64_t)c->lim.rate_burst * 1000;
    if (now_ms > k->last_refill_ms) {
        int64_t dt = now_ms - k->last_refill_ms;
        if (dt > 3600 * 1000) dt = 3600 * 1000;
        k->tokens_milli += dt * (int64_t)c->lim.rate_per_s;
        if (k->tokens_milli > cap) k->tokens_milli = cap;
        k->last_refill_ms = now_ms;
    }
    if (k->tokens_milli < 1000) return false;
    k->tokens_milli -= 1000;
    return true;
}

#define PL_RELAY_ID_STR_MAX 128

pl_err pl__relay_core_receive(pl__relay_core *c, uint64_t conn_id, const char *text, size_t len,
                              int64_t now_ms) {
    PL_REQUIRE(c && (text || !len));
    conn *k = conn_find(c, conn_id);
    if (!k) return PL_ERR_DISCONNECTED;
    if (len > c->lim.max_frame_bytes) {
        char m[96];
        snprintf(m, sizeof m, "Payload too large: frame exceeds %zu bytes", c->lim.max_frame_bytes);
        reply_error(c, conn_id, NULL, PL_RELAY_ERR_INVALID_REQUEST, m);
        return PL_ERR_TOO_LARGE;
    }
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (!root) {
        reply_error(c, conn_id, NULL, PL_RELAY_ERR_PARSE, "Parse error");
        return PL_ERR_JSON;
    }
    pl_err e = PL_OK;
    const char *why = NULL;
    json_t *id = NULL;
    if (!json_is_object(root)) {
        why = json_is_array(root) ? "Invalid Request: batch requests are not supported"
                                  : "Invalid Request: not an object";
        goto invalid;
    }
    /* The id first, so that even an invalid request is answered with it. */
    id = json_object_get(root, "id");
    if (id && !json_is_integer(id) &&
        !(json_is_string(id) && json_string_length(id) <= PL_RELAY_ID_STR_MAX)) {
        id = NULL; /* never echo an id we refuse */
        why = "Invalid Request: id must be an integer or a short string";
        goto invalid;
    }
    json_t *ver = json_object_get(root, "jsonrpc");
    if (!json_is_string(ver) || strcmp(json_string_value(ver), "2.0") != 0) {
        why = "Invalid Request: jsonrpc must be \"2.0\"";
        goto invalid;
    }
    json_t *method = json_object_get(root, "method");
    if (!method) {
        json_t *result = json_object_get(root, "result"), *error = json_object_get(root, "error");
        if ((!result) == (!error) || !json_is_integer(id)) {
            why = "Invalid Request: neither a request nor a response";
            goto invalid;
        }
        /* A client's answer to an irn_subscription push: either way the
         * client has the message. */
        on_ack(c, k, json_integer_value(id), now_ms);
        json_decref(root);
        return PL_OK;
    }
    if (!json_is_string(method)) {
        why = "Invalid Request: method must be a string";
        goto invalid;
    }
    /* Notifications count against the rate too: they cost as much to parse. */
    if (!rate_take(c, k, now_ms)) {
        if (id) reply_error(c, conn_id, id, PL_RELAY_ERR_RATE, "Too many requests");
        json_decref(root);
        return PL_ERR_RATE_LIMITED;
    }
    if (!id) { /* a notification: nothing here expects one, and it gets no answer */
        json_decref(root);
        return PL_OK;
    }
    const char *name = json_string_value(method);
    req r = {.c = c, .k = k, .id = id, .params = json_object_get(root, "params"), .now = now_ms};
    e = PL_ERR_NOT_FOUND;
    for (size_t i = 0; i < PL_ARRAY_LEN(methods); i++) {
        if (strcmp(methods[i].name, name) != 0) continue;
        e = methods[i].fn(&r);
        break;
    }
    if (e == PL_ERR_NOT_FOUND && !r.err_msg) {
        snprintf(r.err_buf, sizeof r.err_buf, "Method not found: %.48s", name);
        r.err_msg = r.err_buf;
    }
    if (e != PL_OK && r.err_msg) reply_error(c, conn_id, id, rpc_code(e), r.err_msg);
    else if (e != PL_OK) reply_error(c, conn_id, id, rpc_code(e), pl_strerror(e));
    json_decref(root);
    return e;
invalid:
    reply_error(c, conn_id, id, PL_RELAY_ERR_INVALID_REQUEST, why);
    json_decref(root);
    return PL_ERR_RPC_INVALID;
}
