/* SPDX-License-Identifier: Apache-2.0 */
/* The relay client core: see client_core.h. No I/O, no clock.
 *
 * Layout: pure helpers (URL, LRU, backoff), then the core: requests and
 * outputs, topics, the connection state machine, incoming frames, time,
 * and the operations. */
#include "transport/wc_relay/client_core.h"

#include "core/htable.h"
#include "core/internal.h"
#include "pairlink/codec.h"
#include "pairlink/crypto.h"
#include "pairlink/hash.h"
#include "pairlink/jsonrpc.h"
#include "relay/frame.h"

#include <ctype.h>
#include <jansson.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Pure helpers                                                             */
/* ------------------------------------------------------------------------ */

static bool host_char(char ch) {
    return isalnum((unsigned char)ch) || ch == '.' || ch == '-' || ch == '_';
}

pl_err pl__relay_url_parse(pl__relay_url *out, const char *url) {
    PL_REQUIRE(out != NULL);
    memset(out, 0, sizeof *out);
    if (!url) return PL_ERR_BAD_URL;
    size_t len = strnlen(url, PL_RELAY_URL_MAX + 1);
    if (len == 0 || len > PL_RELAY_URL_MAX) return PL_ERR_BAD_URL;
    for (size_t i = 0; i < len; i++) {
        /* Printable ASCII only; a fragment never goes to a server. */
        if (url[i] <= 0x20 || url[i] >= 0x7f || url[i] == '#') return PL_ERR_BAD_URL;
    }
    const char *p;
    if (strncasecmp(url, "wss://", 6) == 0) {
        out->tls = true;
        p = url + 6;
    } else if (strncasecmp(url, "ws://", 5) == 0) {
        p = url + 5;
    } else {
        return PL_ERR_BAD_URL;
    }
    size_t alen = strcspn(p, "/?");
    const char *auth_end = p + alen;
    if (memchr(p, '@', alen)) return PL_ERR_BAD_URL; /* userinfo would leak into logs */

    const char *h = p, *h_end;
    bool v6 = false;
    if (*h == '[') {
        const char *rb = memchr(h, ']', alen);
        if (!rb || rb == h + 1) return PL_ERR_BAD_URL;
        for (const char *q = h + 1; q < rb; q++) {
            if (!isxdigit((unsigned char)*q) && *q != ':' && *q != '.') return PL_ERR_BAD_URL;
        }
        v6 = true;
        h_end = rb + 1;
    } else {
        h_end = h;
        while (h_end < auth_end && *h_end != ':')
            h_end++;
        if (h_end == h) return PL_ERR_BAD_URL;
        for (const char *q = h; q < h_end; q++) {
            if (!host_char(*q)) return PL_ERR_BAD_URL;
        }
    }
    size_t hlen = (size_t)(h_end - h);
    if (hlen > PL__RELAY_HOST_MAX) return PL_ERR_BAD_URL;

    int port = out->tls ? 443 : 80;
    bool explicit_port = false;
    if (h_end < auth_end) {
        if (*h_end != ':' || h_end + 1 == auth_end) return PL_ERR_BAD_URL;
        long v = 0;
        for (const char *q = h_end + 1; q < auth_end; q++) {
            if (!isdigit((unsigned char)*q)) return PL_ERR_BAD_URL;
            v = v * 10 + (*q - '0');
            if (v > 65535) return PL_ERR_BAD_URL;
        }
        if (v == 0) return PL_ERR_BAD_URL;
        port = (int)v;
        explicit_port = true;
    }
    out->port = port;
    if (v6) {
        memcpy(out->host, h + 1, hlen - 2);
        out->host[hlen - 2] = '\0';
    } else {
        memcpy(out->host, h, hlen);
        out->host[hlen] = '\0';
    }
    if (explicit_port && port != (out->tls ? 443 : 80)) {
        snprintf(out->host_header, sizeof out->host_header, "%.*s:%d", (int)hlen, h, port);
    } else {
        snprintf(out->host_header, sizeof out->host_header, "%.*s", (int)hlen, h);
    }
    if (*auth_end == '\0') {
        strcpy(out->path, "/");
    } else if (*auth_end == '?') {
        snprintf(out->path, sizeof out->path, "/%s", auth_end);
    } else {
        snprintf(out->path, sizeof out->path, "%s", auth_end);
    }
    out->has_query = strchr(out->path, '?') != NULL;
    return PL_OK;
}

/* The LRU: entries in one array (no allocation after creation), found
 * through the library's hash table, most recent first on a list. */
typedef struct dd_ent {
    uint8_t d[32];
    pl__hnode hnode;
    struct dd_ent *prev, *next;
} dd_ent;

struct pl__dedup {
    size_t cap, count;
    dd_ent *head, *tail;
    dd_ent *e;
    /* Keyed by the owner's random key, so that a hostile relay cannot pile
     * messages into one chain. */
    pl__htable tab;
};

pl_err pl__dedup_new(pl__dedup **out, uint32_t capacity, const uint8_t key[16]) {
    PL_REQUIRE(out != NULL && capacity >= 1 && key);
    *out = NULL;
    pl__dedup *d = calloc(1, sizeof *d);
    if (!d) return PL_ERR_NOMEM;
    d->cap = capacity;
    pl__ht_init(&d->tab, key);
    d->e = calloc(capacity, sizeof *d->e);
    if (!d->e || pl__ht_reserve(&d->tab, capacity) != PL_OK) {
        pl__dedup_free(d);
        return PL_ERR_NOMEM;
    }
    *out = d;
    return PL_OK;
}

void pl__dedup_free(pl__dedup *d) {
    if (!d) return;
    pl__ht_free(&d->tab);
    free(d->e);
    free(d);
}

size_t pl__dedup_size(const pl__dedup *d) {
    return d->count;
}

static void dd_unlink(pl__dedup *d, dd_ent *x) {
    if (x->prev) x->prev->next = x->next;
    else d->head = x->next;
    if (x->next) x->next->prev = x->prev;
    else d->tail = x->prev;
    x->prev = x->next = NULL;
}

static void dd_push_front(pl__dedup *d, dd_ent *x) {
    x->prev = NULL;
    x->next = d->head;
    if (d->head) d->head->prev = x;
    d->head = x;
    if (!d->tail) d->tail = x;
}

bool pl__dedup_check(pl__dedup *d, const uint8_t digest[32]) {
    uint64_t h = pl__ht_hash(&d->tab, digest, 32);
    for (pl__hnode *n = pl__ht_first(&d->tab, h); n; n = pl__ht_next(n, h)) {
        dd_ent *x = PL__ENTRY(n, dd_ent, hnode);
        if (memcmp(x->d, digest, 32) == 0) { /* public data: no ct needed */
            dd_unlink(d, x);
            dd_push_front(d, x);
            return true;
        }
    }
    dd_ent *x;
    if (d->count < d->cap) {
        x = &d->e[d->count++];
    } else {
        x = d->tail;
        dd_unlink(d, x);
        pl__ht_remove(&d->tab, &x->hnode);
    }
    memcpy(x->d, digest, 32);
    (void)pl__ht_insert(&d->tab, &x->hnode, h); /* cannot fail: room was reserved */
    dd_push_front(d, x);
    return false;
}

void pl__relay_dedup_key(uint8_t out[32], const char *topic, const char *message, size_t len) {
    pl__sha256_cat(out, topic, strlen(topic), "|", 1, message, len);
}

uint32_t pl__relay_backoff_ms(unsigned attempt, uint32_t min_ms, uint32_t max_ms, uint32_t rnd) {
    uint64_t b = min_ms;
    for (unsigned i = 0; i < attempt && b < max_ms; i++)
        b <<= 1;
    if (b > max_ms) b = max_ms;
    uint64_t half = b / 2;
    return (uint32_t)(half + (uint64_t)rnd % (b - half + 1));
}

static bool is_hex64(const char *t) {
    for (size_t i = 0; i < 64; i++) {
        if (!((t[i] >= '0' && t[i] <= '9') || (t[i] >= 'a' && t[i] <= 'f'))) return false;
    }
    return t[64] == '\0';
}

pl_err pl_relay_topic(char out[PL_TOPIC_HEX_SIZE], const char *name) {
    PL_REQUIRE(out);
    out[0] = '\0';
    if (!pl_transport_topic_valid(name)) return PL_ERR_INVALID_ARG;
    /* Lowercase only passes: topics are compared as strings, and relays and
     * the JS SDK write them in lowercase. */
    if (strlen(name) == 64 && is_hex64(name)) {
        memcpy(out, name, PL_TOPIC_HEX_SIZE);
        return PL_OK;
    }
    uint8_t h[PL_SHA256_BYTES];
    pl_sha256(h, (const uint8_t *)name, strlen(name));
    return pl_hex_encode(out, PL_TOPIC_HEX_SIZE, h, sizeof h);
}

/* ------------------------------------------------------------------------ */
/* Core state                                                               */
/* ------------------------------------------------------------------------ */

#define DEF_CONNECT_TIMEOUT 15000u
#define DEF_REQUEST_TIMEOUT 15000u
#define DEF_RECONNECT_MIN 1000u
#define DEF_RECONNECT_MAX 30000u
#define DEF_PING_INTERVAL 20000u
#define DEF_PING_TIMEOUT 10000u
#define DEF_MAX_QUEUE 1024u
#define DEF_MAX_QUEUE_BYTES ((size_t)16 << 20)
#define DEF_MAX_TOPICS 1000u
#define DEF_DEDUP 4096u
#define DEF_MAX_FRAME ((size_t)2 << 20)
#define DEF_UNSENT_EXTRA ((size_t)1 << 20) /* answers to pushes, beyond the publish queue */
#define DEF_TTL 86400u
/* A request unanswered this many times in a row means the relay is stuck
 * even though the socket is alive: reconnect, which re-sends everything. */
#define MAX_REQUEST_TIMEOUTS 3u
#define RATE_PAUSE_MS 1000u
#define RATE_PAUSE_MAX_MS 16000u
/* A connection that stayed open this long resets the backoff. */
#define HEALTHY_MS 10000u
#define BATCH_MAX 500u
/* A batch frame's messages together: well under the relays' frame limits
 * (pairlink relay: 1 MiB), so that one large message does not hold the
 * others back. */
#define PL__RC_BATCH_BYTES ((size_t)256 << 10)

typedef enum req_kind {
    REQ_PUBLISH = 1,
    REQ_SUBSCRIBE = 2,
    REQ_BATCH_SUBSCRIBE = 3,
    REQ_UNSUBSCRIBE = 4,
    REQ_BATCH_PUBLISH = 5, /* carries several REQ_PUBLISH (its members) */
} req_kind;

typedef char topic_str[PL_TOPIC_HEX_SIZE];

/* One JSON-RPC request. Publishes live from publish() until acknowledged,
 * across reconnects; the others only for the connection they were sent on. */
typedef struct req {
    struct req *prev, *next;
    req_kind kind;
    int64_t id;
    char *text; /* encoded request, re-sent as is (same id) */
    size_t len;
    bool sent;      /* on the current connection */
    bool rate_wait; /* deadline is a pause after 3001, not a time-out */
    unsigned timeouts, rate_hits;
    int64_t deadline;
    /* PUBLISH */
    uint64_t seq;
    size_t msg_bytes;
    int64_t expires; /* the message's TTL */
    char *name;      /* PUBLISH: the topic name given */
    size_t params_off, params_len; /* PUBLISH: where its params object is in text */
    struct req *batch;             /* PUBLISH: the batch frame carrying it, if any */
    /* BATCH_PUBLISH: the publishes it carries (NULL: expired meanwhile) */
    struct req **members;
    size_t nmembers;
    /* SUBSCRIBE / UNSUBSCRIBE / PUBLISH: relay topic; BATCH_SUBSCRIBE: topics */
    topic_str topic;
    topic_str *topics;
    size_t ntopics;
} req;

typedef struct topic_ent {
    topic_str topic;
    char *name;
    char sub_id[PL_TOPIC_HEX_SIZE + 64]; /* relay's subscription id ("" if none yet) */
    bool unsent; /* a subscribe is due on this connection and not yet sent */
} topic_ent;

typedef enum conn_state {
    ST_BACKOFF = 1,    /* waiting to (re)connect at backoff_at */
    ST_CONNECTING = 2, /* CONNECT asked, waiting for open or failure */
    ST_OPEN = 3,
    ST_FAILED = 4, /* auth rejected: idle until closed */
    ST_CLOSING = 5,
} conn_state;

typedef struct outnode {
    struct outnode *next;
    pl__rc_output o;
} outnode;

struct pl__rc {
    conn_state st;
    pl_transport_state tstate;
    pl_err terr;

    /* configuration */
    char *url_str;
    pl__relay_url url;
    char *project_id;
    char *jwt_fixed;
    uint8_t seed[PL_ED25519_SEED_BYTES];
    char did[PL_DID_KEY_SIZE];
    pl_rng_fn rng;
    void *rng_ctx;
    uint32_t connect_timeout, request_timeout, reconnect_min, reconnect_max;
    uint32_t ping_interval, ping_timeout, max_queue, max_topics, batch_max;
    size_t max_queue_bytes, max_frame, max_unsent;
    size_t unsent; /* SEND bytes the runtime has not written yet */

    /* connection */
    int64_t conn_deadline, backoff_at, open_since, last_rx, ping_sent_at;
    unsigned backoff_attempt;
    unsigned char *rx;
    size_t rx_len, rx_cap;
    bool rx_discard;

    /* requests, publish queue, topics */
    req *req_head, *req_tail;
    size_t pub_count, pub_bytes;
    size_t unsent_pubs, unsent_topics; /* waiting for the next flush */
    int64_t now;                       /* the latest time given to the core */
    bool no_batch_publish;             /* the relay does not know irn_batchPublish */
    bool flush_per_turn;               /* pl__rc_config.flush_per_turn */
    /* pacing: our model of the relay's token bucket (docs/relay-client.md) */
    int64_t pace_tokens, pace_etokens, pace_refill_at, pace_until;
    uint32_t pace_rate, pace_burst, pace_rate_max; /* pace_rate 0: not pacing (yet) */
    bool pace_advertised;                          /* the relay told us its allowance */
    bool pace_never;                               /* configured not to pace */
    uint64_t next_seq;
    int64_t last_id;
    topic_ent *topics;
    size_t ntopics, topics_cap;
    pl__dedup *dedup;
    pl__rs_parser *fast; /* relay/frame.h: pushes read once, by simdjson */

    outnode *out_head, *out_tail;
    pl_relay_client_stats stats;
    char why[200]; /* the last failure in words (pl__rc_why) */
};

static void rng_bytes(pl__rc *c, void *buf, size_t len) { pl__rng(c->rng, c->rng_ctx, buf, len); }

/* ---- outputs ---- */

static void flush(pl__rc *c, int64_t now_ms);

void pl__rc_output_clear(pl__rc_output *o) {
    if (!o) return;
    free(o->text);
    free(o->data);
    memset(o, 0, sizeof *o);
}

/* Queue an output (ownership of its buffers moves). On no memory the
 * output is lost; the state machine recovers (time-outs re-send). */
static void out(pl__rc *c, pl__rc_output *o) {
    outnode *n = malloc(sizeof *n);
    if (!n) {
        pl__rc_output_clear(o);
        return;
    }
    n->next = NULL;
    n->o = *o;
    if (c->out_tail)
        c->out_tail->next = n;
    else
        c->out_head = n;
    c->out_tail = n;
}

void pl__rc_flush(pl__rc *c, int64_t now_ms) {
    PL_REQUIRE(c);
    if (now_ms > c->now) c->now = now_ms;
    flush(c, c->now);
}

bool pl__rc_poll(pl__rc *c, pl__rc_output *o) {
    PL_REQUIRE(c && o);
    memset(o, 0, sizeof *o);
    /* What the operations queued since the last poll goes out now, batched
     * (or at the end of the loop turn: pl__rc_flush). */
    if (!c->flush_per_turn) flush(c, c->now);
    outnode *n = c->out_head;
    if (!n) return false;
    c->out_head = n->next;
    if (!c->out_head) c->out_tail = NULL;
    *o = n->o;
    free(n);
    return true;
}

/* Queue a frame for the relay. What the relay does not read piles up in
 * the runtime: counted here until pl__rc_on_written, and bounded by
 * max_unsent (check_unsent). */
static void out_send(pl__rc *c, const char *text, size_t len) {
    pl__rc_output o = {.kind = PL__RC_SEND, .len = len};
    o.text = malloc(len + 1);
    if (!o.text) return;
    memcpy(o.text, text, len);
    o.text[len] = '\0';
    c->unsent += len;
    out(c, &o);
}

static void out_simple(pl__rc *c, pl__rc_out_kind kind) {
    pl__rc_output o = {.kind = kind};
    out(c, &o);
}

/* Say in words why the connection failed or ended, for people. */
static void set_why(pl__rc *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_why(pl__rc *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->why, sizeof c->why, fmt, ap);
    va_end(ap);
}

const char *pl__rc_why(const pl__rc *c) {
    PL_REQUIRE(c);
    return c->why;
}

static void set_state(pl__rc *c, pl_transport_state s, pl_err err) {
    if (s == PL_TRANSPORT_CONNECTED) c->why[0] = '\0';
    c->tstate = s;
    c->terr = err;
    pl__rc_output o = {.kind = PL__RC_STATE, .state = s, .err = err};
    out(c, &o);
}

static void report(pl__rc *c, pl_relay_op op, uint64_t seq, const char *name, pl_err err,
                   int64_t code) {
    if (c->st == ST_CLOSING && err != PL_ERR_CANCELLED) return;
    pl__rc_output o = {.kind = PL__RC_RESULT, .op = op, .seq = seq, .err = err, .relay_code = code};
    snprintf(o.topic, sizeof o.topic, "%s", name);
    out(c, &o);
}

/* ---- topics ---- */

static topic_ent *topic_find(pl__rc *c, const char *relay_topic) {
    for (size_t i = 0; i < c->ntopics; i++) {
        if (strcmp(c->topics[i].topic, relay_topic) == 0) return &c->topics[i];
    }
    return NULL;
}

/* The name a relay topic is known by (the relay topic itself if none). */
static const char *name_of(pl__rc *c, const char *relay_topic) {
    topic_ent *te = topic_find(c, relay_topic);
    return te ? te->name : relay_topic;
}

/* ---- requests ---- */

static void req_free(req *r) {
    if (!r) return;
    free(r->text);
    free(r->topics);
    free(r->name);
    free(r->members);
    free(r);
}

static void req_link(pl__rc *c, req *r) {
    r->prev = c->req_tail;
    r->next = NULL;
    if (c->req_tail)
        c->req_tail->next = r;
    else
        c->req_head = r;
    c->req_tail = r;
}

static void req_unlink(pl__rc *c, req *r) {
    if (r->prev)
        r->prev->next = r->next;
    else
        c->req_head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        c->req_tail = r->prev;
    r->prev = r->next = NULL;
    if (r->kind == REQ_PUBLISH) {
        c->pub_count--;
        c->pub_bytes -= r->msg_bytes;
        if (!r->sent) c->unsent_pubs--;
        if (r->batch) { /* taken out of the batch carrying it */
            for (size_t i = 0; i < r->batch->nmembers; i++)
                if (r->batch->members[i] == r) r->batch->members[i] = NULL;
            r->batch = NULL;
        }
    }
}

static req *req_find(pl__rc *c, int64_t id) {
    for (req *r = c->req_head; r; r = r->next) {
        if (r->id == id) return r;
    }
    return NULL;
}

static int64_t next_id(pl__rc *c, int64_t now_ms) {
    /* JS-style ids (ms * 1000 + random 0..999), kept strictly increasing so
     * that two requests of one client never share an id; below 2^53 for
     * decades. Rejection sampling keeps 0..999 uniform. */
    uint16_t r;
    do {
        rng_bytes(c, &r, sizeof r);
    } while (r >= 64000);
    int64_t v = (now_ms > 0 ? now_ms : 0) * 1000 + r % 1000;
    if (v <= c->last_id) v = c->last_id + 1;
    c->last_id = v;
    return v;
}

/* Encode `method` with params built by the caller into a new request. */
static pl_err req_new(req **out_r, pl__rc *c, req_kind kind, const char *method, json_t *params,
                      int64_t now_ms) {
    *out_r = NULL;
    if (!params) return PL_ERR_NOMEM;
    char *ptext = json_dumps(params, JSON_COMPACT);
    json_decref(params);
    if (!ptext) return PL_ERR_NOMEM;
    req *r = calloc(1, sizeof *r);
    if (!r) {
        free(ptext);
        return PL_ERR_NOMEM;
    }
    r->kind = kind;
    r->id = next_id(c, now_ms);
    pl_rpc_id id = pl_rpc_id_num(r->id);
    pl_err err = pl_rpc_encode_request(&r->text, &id, method, ptext);
    free(ptext);
    if (err != PL_OK) {
        free(r);
        return err;
    }
    r->len = strlen(r->text);
    *out_r = r;
    return PL_OK;
}

/* ---- pacing ----
 * The client keeps a model of the relay's allowance: a bucket of requests
 * (pl_relay_client_opts.rate_per_s / rate_burst; pairlink relay's defaults
 * unless told) and one of batch entries, PL_RELAY_ENTRY_FACTOR times
 * larger, and charges each frame what the relay will charge it (one
 * request; its batch items PL_RELAY_COST_*). A frame that does not fit
 * waits, and meanwhile more work joins the next batch. A refusal (3001)
 * means the model is too generous: the buckets are emptied and the rate
 * halved; every answered request wins some of it back, up to the
 * configured rate. */

static void pace_refill(pl__rc *c, int64_t now_ms) {
    if (now_ms <= c->pace_refill_at) return;
    int64_t dt = now_ms - c->pace_refill_at;
    if (dt > 3600 * 1000) dt = 3600 * 1000;
    int64_t cap = (int64_t)c->pace_burst * 1000;
    c->pace_tokens += dt * (int64_t)c->pace_rate;
    if (c->pace_tokens > cap) c->pace_tokens = cap;
    c->pace_etokens += dt * (int64_t)c->pace_rate * PL_RELAY_ENTRY_FACTOR;
    if (c->pace_etokens > cap * PL_RELAY_ENTRY_FACTOR)
        c->pace_etokens = cap * PL_RELAY_ENTRY_FACTOR;
    c->pace_refill_at = now_ms;
}

/* Charge one request and `entries` (thousandths of an entry) if the model
 * has them; else note when it will and return false. */
static bool pace_take(pl__rc *c, int64_t entries, int64_t now_ms) {
    if (!c->pace_rate) return true; /* unlimited */
    pace_refill(c, now_ms);
    /* more than a whole bucket can never fit: send it when the bucket is full */
    int64_t cap = (int64_t)c->pace_burst * 1000, ecap = cap * PL_RELAY_ENTRY_FACTOR;
    int64_t need = 1000 < cap ? 1000 : cap, eneed = entries < ecap ? entries : ecap;
    if (c->pace_tokens < need || c->pace_etokens < eneed) {
        int64_t rate = c->pace_rate, erate = rate * PL_RELAY_ENTRY_FACTOR;
        int64_t w = c->pace_tokens < need ? (need - c->pace_tokens + rate - 1) / rate : 0;
        int64_t ew = c->pace_etokens < eneed ? (eneed - c->pace_etokens + erate - 1) / erate : 0;
        c->pace_until = now_ms + (w > ew ? w : ew);
        return false;
    }
    c->pace_tokens -= 1000 < c->pace_tokens ? 1000 : c->pace_tokens;
    c->pace_etokens -= entries < c->pace_etokens ? entries : c->pace_etokens;
    c->pace_until = 0;
    return true;
}

/* A 3001. A relay that says what it allows (pairlink relay: error data
 * {perSecond, burst, retryAfterMs}) is believed; otherwise the model starts
 * from PL_RELAY_DEF_ALLOWANCE_* and halves at every refusal. Either way the
 * bucket is empty now. Returns the pause the relay asked for (0: none). */
static int64_t pace_refused(pl__rc *c, const char *data, int64_t now_ms) {
    if (c->pace_never) return 0;
    json_t *d = data ? json_loads(data, 0, NULL) : NULL;
    json_t *ps = json_object_get(d, "perSecond"), *bu = json_object_get(d, "burst");
    json_t *ra = json_object_get(d, "retryAfterMs");
    int64_t pause = 0;
    if (json_is_integer(ps) && json_integer_value(ps) > 0 && json_integer_value(ps) <= 10000000 &&
        json_is_integer(bu) && json_integer_value(bu) > 0 && json_integer_value(bu) <= 100000000) {
        c->pace_rate = c->pace_rate_max = (uint32_t)json_integer_value(ps);
        c->pace_burst = (uint32_t)json_integer_value(bu);
        c->pace_advertised = true;
    } else if (!c->pace_rate) {
        c->pace_rate = c->pace_rate_max = PL_RELAY_DEF_ALLOWANCE_PER_S;
        c->pace_burst = PL_RELAY_DEF_ALLOWANCE_BURST;
    } else if (!c->pace_advertised) {
        c->pace_rate = c->pace_rate > 1 ? c->pace_rate / 2 : 1;
    }
    if (json_is_integer(ra) && json_integer_value(ra) > 0 && json_integer_value(ra) <= 3600000)
        pause = json_integer_value(ra);
    json_decref(d);
    c->pace_tokens = c->pace_etokens = 0;
    c->pace_refill_at = now_ms;
    return pause;
}

static void pace_answered(pl__rc *c) {
    if (c->pace_rate && c->pace_rate < c->pace_rate_max) c->pace_rate++;
}

/* Pacing is only as good as the model: with no model yet (rate 0) nothing
 * waits until the relay first refuses something. */

/* The entries a frame costs (thousandths of an entry): its batch items. */
static int64_t cost_milli(req_kind kind, size_t items) {
    if (kind != REQ_BATCH_PUBLISH && kind != REQ_BATCH_SUBSCRIBE) return 0;
    int64_t each = kind == REQ_BATCH_PUBLISH ? PL_RELAY_COST_PUBLISH_ITEM_MILLI
                                             : PL_RELAY_COST_TOPIC_ITEM_MILLI;
    return (int64_t)items * each;
}

/* Put a request on the wire (connection must be open). */
static void req_send(pl__rc *c, req *r, int64_t now_ms) {
    r->sent = true;
    r->rate_wait = false;
    r->deadline = now_ms + c->request_timeout;
    out_send(c, r->text, r->len);
}

static pl_err send_unsubscribe(pl__rc *c, const char *topic, const char *sub_id, int64_t now_ms) {
    req *r;
    PL_TRY(req_new(&r, c, REQ_UNSUBSCRIBE, "irn_unsubscribe",
                   json_pack("{s:s,s:s}", "topic", topic, "id", sub_id), now_ms));
    memcpy(r->topic, topic, sizeof r->topic);
    req_link(c, r);
    req_send(c, r, now_ms);
    return PL_OK;
}

/* The topics waiting for a subscribe: one irn_subscribe, or
 * irn_batchSubscribe frames of up to batch_max topics, as pacing allows. */
static void flush_topics(pl__rc *c, int64_t now_ms) {
    size_t i = 0;
    while (c->unsent_topics > 0) {
        while (i < c->ntopics && !c->topics[i].unsent)
            i++;
        if (i == c->ntopics) { /* cannot happen: the count says otherwise */
            c->unsent_topics = 0;
            return;
        }
        size_t n = c->unsent_topics < c->batch_max ? c->unsent_topics : c->batch_max;
        if (!pace_take(c, cost_milli(n == 1 ? REQ_SUBSCRIBE : REQ_BATCH_SUBSCRIBE, n), now_ms))
            return;
        req *r = NULL;
        topic_str *copy = n > 1 ? malloc(n * sizeof *copy) : NULL;
        json_t *arr = n > 1 ? json_array() : NULL;
        size_t k = 0, j = i;
        for (; j < c->ntopics && k < n; j++) {
            if (!c->topics[j].unsent) continue;
            if (copy) memcpy(copy[k], c->topics[j].topic, sizeof copy[k]);
            if (arr) json_array_append_new(arr, json_string(c->topics[j].topic));
            k++;
        }
        pl_err e;
        if (n == 1)
            e = req_new(&r, c, REQ_SUBSCRIBE, "irn_subscribe",
                        json_pack("{s:s}", "topic", c->topics[i].topic), now_ms);
        else if (!copy || !arr)
            e = PL_ERR_NOMEM;
        else
            e = req_new(&r, c, REQ_BATCH_SUBSCRIBE, "irn_batchSubscribe",
                        json_pack("{s:o}", "topics", arr), now_ms), arr = NULL;
        json_decref(arr);
        if (e != PL_OK) {
            free(copy);
            return; /* no memory: the next flush tries again */
        }
        if (n == 1) memcpy(r->topic, c->topics[i].topic, sizeof r->topic);
        r->topics = copy;
        r->ntopics = copy ? n : 0;
        for (size_t m = i; m < j; m++) {
            if (c->topics[m].unsent) {
                c->topics[m].unsent = false;
                c->unsent_topics--;
            }
        }
        i = j;
        req_link(c, r);
        req_send(c, r, now_ms);
    }
}

/* The params object of publish r, as it sits in its request text. */
static const char *params_of(const req *r) {
    return r->text + r->params_off;
}

/* The publishes waiting to be sent, in order: alone as irn_publish (its own
 * text and id), or several in irn_batchPublish frames of up to batch_max
 * messages and PL__RC_BATCH_BYTES, as pacing allows. */
static void flush_publishes(pl__rc *c, int64_t now_ms) {
    req *r = c->req_head;
    while (c->unsent_pubs > 0) {
        while (r && !(r->kind == REQ_PUBLISH && !r->sent && !r->rate_wait))
            r = r->next;
        if (!r) return; /* the rest wait for their 3001 pause */
        /* how many go together */
        size_t n = 0, bytes = 0;
        req *end = r;
        for (req *q = r; q && n < c->batch_max && !c->no_batch_publish; q = q->next) {
            if (!(q->kind == REQ_PUBLISH && !q->sent && !q->rate_wait)) continue;
            if (n > 0 && bytes + q->params_len + 1 > PL__RC_BATCH_BYTES) break;
            n++;
            bytes += q->params_len + 1;
            end = q->next;
        }
        if (n <= 1) {
            if (!pace_take(c, cost_milli(REQ_PUBLISH, 1), now_ms)) return;
            c->unsent_pubs--;
            req *next = r->next;
            req_send(c, r, now_ms);
            r = next;
            continue;
        }
        if (!pace_take(c, cost_milli(REQ_BATCH_PUBLISH, n), now_ms)) return;
        req *b = calloc(1, sizeof *b);
        req **members = calloc(n, sizeof *members);
        size_t cap = bytes + 128;
        char *text = malloc(cap);
        if (!b || !members || !text) {
            free(b), free(members), free(text);
            return; /* no memory: the next flush tries again */
        }
        b->kind = REQ_BATCH_PUBLISH;
        b->id = next_id(c, now_ms);
        size_t off = (size_t)snprintf(
            text, cap, "{\"id\":%lld,\"jsonrpc\":\"2.0\",\"method\":\"irn_batchPublish\",\"params\":{\"messages\":[",
            (long long)b->id);
        size_t k = 0;
        for (req *q = r; q != end; q = q->next) {
            if (!(q->kind == REQ_PUBLISH && !q->sent && !q->rate_wait)) continue;
            if (k) text[off++] = ',';
            memcpy(text + off, params_of(q), q->params_len);
            off += q->params_len;
            members[k++] = q;
            q->sent = true;
            q->batch = b;
            c->unsent_pubs--;
        }
        memcpy(text + off, "]}}", 4);
        off += 3;
        b->text = text;
        b->len = off;
        b->members = members;
        b->nmembers = k;
        r = end;
        req_link(c, b);
        req_send(c, b, now_ms);
    }
}

/* Everything that waits for the wire (connection open): subscriptions first,
 * so that a publish to a topic subscribed in the same turn follows it. */
static void flush(pl__rc *c, int64_t now_ms) {
    if (c->st != ST_OPEN || (!c->unsent_topics && !c->unsent_pubs)) return;
    if (c->pace_until && now_ms < c->pace_until) return;
    flush_topics(c, now_ms);
    if (!c->unsent_topics) flush_publishes(c, now_ms);
}

/* After (re)connecting: every topic again, then every queued publish in
 * order, batched (flush). */
static void resume_after_connect(pl__rc *c, int64_t now_ms) {
    c->unsent_topics = c->ntopics;
    for (size_t i = 0; i < c->ntopics; i++)
        c->topics[i].unsent = true;
    flush(c, now_ms);
}

/* ------------------------------------------------------------------------ */
/* Connection state machine                                                 */
/* ------------------------------------------------------------------------ */

/* The current connection is over (whatever ended it). Requests of that
 * connection are dropped, publishes go back to the queue, and either a
 * reconnect is scheduled or, when `fatal`, the client stops. */
static void conn_lost(pl__rc *c, pl_err err, bool fatal, int64_t now_ms) {
    bool was_open = c->st == ST_OPEN;
    c->unsent = 0; /* the runtime drops the connection's queue with it */
    c->rx_len = 0;
    c->rx_discard = false;
    c->ping_sent_at = 0;
    req *r = c->req_head;
    while (r) {
        req *n = r->next;
        if (r->kind == REQ_PUBLISH) {
            /* Re-sent at once after the reconnect: alone with the same id,
             * or in a new batch. */
            if (r->sent) c->unsent_pubs++;
            r->sent = false;
            r->rate_wait = false;
            r->batch = NULL; /* its batch frame is freed here too */
        } else {
            if (r->kind == REQ_BATCH_PUBLISH) r->nmembers = 0;
            req_unlink(c, r);
            req_free(r);
        }
        r = n;
    }
    for (size_t i = 0; i < c->ntopics; i++) {
        c->topics[i].sub_id[0] = '\0';
        c->topics[i].unsent = false;
    }
    c->unsent_topics = 0;
    if (fatal) {
        c->st = ST_FAILED;
        set_state(c, PL_TRANSPORT_CLOSED, err);
        return;
    }
    if (was_open && now_ms - c->open_since >= HEALTHY_MS) c->backoff_attempt = 0;
    uint32_t rnd;
    rng_bytes(c, &rnd, sizeof rnd);
    uint32_t delay =
        pl__relay_backoff_ms(c->backoff_attempt, c->reconnect_min, c->reconnect_max, rnd);
    if (c->backoff_attempt < 31) c->backoff_attempt++;
    c->st = ST_BACKOFF;
    c->backoff_at = now_ms + delay;
    set_state(c, PL_TRANSPORT_RECONNECTING, err);
}

/* Give up on the current connection ourselves. */
static void conn_drop(pl__rc *c, pl_err err, int64_t now_ms) {
    out_simple(c, PL__RC_DROP);
    conn_lost(c, err, false, now_ms);
}

static char *build_connect_path(pl__rc *c, int64_t now_ms, pl_err *err) {
    char *jwt = NULL;
    *err = PL_OK;
    if (c->jwt_fixed) {
        jwt = strdup(c->jwt_fixed);
        if (!jwt) *err = PL_ERR_NOMEM;
    } else {
        /* sub: a fresh random hex string per token, as relay-auth does. */
        uint8_t sub_raw[32];
        char sub[PL_HEX_SIZE(32)];
        rng_bytes(c, sub_raw, sizeof sub_raw);
        pl_hex_encode(sub, sizeof sub, sub_raw, sizeof sub_raw);
        *err = pl_jwt_sign(&jwt, c->seed, sub, c->url_str, now_ms / 1000, PL_JWT_DEFAULT_TTL);
    }
    if (*err != PL_OK) return NULL;
    size_t cap =
        strlen(c->url.path) + strlen(jwt) + (c->project_id ? strlen(c->project_id) : 0) + 128;
    char *path = malloc(cap);
    if (!path) {
        free(jwt);
        *err = PL_ERR_NOMEM;
        return NULL;
    }
    int n = snprintf(path, cap, "%s%cauth=%s%s%s&ua=%s&useOnCloseEvent=true", c->url.path,
                     c->url.has_query ? '&' : '?', jwt, c->project_id ? "&projectId=" : "",
                     c->project_id ? c->project_id : "", PL_RELAY_USER_AGENT);
    free(jwt);
    if (n < 0 || (size_t)n >= cap) {
        free(path);
        *err = PL_ERR_INTERNAL;
        return NULL;
    }
    return path;
}

static void conn_start(pl__rc *c, int64_t now_ms) {
    c->st = ST_CONNECTING;
    c->conn_deadline = now_ms + c->connect_timeout;
    c->stats.connect_attempts++;
    pl_err err;
    char *path = build_connect_path(c, now_ms, &err);
    if (!path) {
        set_why(c, "cannot sign the connection's token: %s", pl_strerror(err));
        conn_lost(c, err, false, now_ms);
        return;
    }
    pl__rc_output o = {.kind = PL__RC_CONNECT, .text = path, .len = strlen(path)};
    out(c, &o);
}

void pl__rc_on_open(pl__rc *c, int64_t now_ms) {
    PL_REQUIRE(c);
    if (now_ms > c->now) c->now = now_ms;
    if (c->st != ST_CONNECTING) return;
    c->st = ST_OPEN;
    c->open_since = c->last_rx = now_ms;
    c->ping_sent_at = 0;
    c->stats.connects++;
    resume_after_connect(c, now_ms);
    set_state(c, PL_TRANSPORT_CONNECTED, PL_OK);
}

static bool contains_ci(const char *hay, const char *needle) {
    size_t nl = strlen(needle);
    for (; *hay; hay++) {
        if (strncasecmp(hay, needle, nl) == 0) return true;
    }
    return false;
}

void pl__rc_on_failed(pl__rc *c, unsigned http_status, const char *why, int64_t now_ms) {
    PL_REQUIRE(c);
    if (now_ms > c->now) c->now = now_ms;
    if (c->st != ST_CONNECTING) return;
    if (http_status == 401 || http_status == 403) {
        set_why(c, "the relay refused our authentication (HTTP %u)", http_status);
        conn_lost(c, PL_ERR_RELAY_AUTH, true, now_ms);
        return;
    }
    pl_err err = PL_ERR_WEBSOCKET;
    if (http_status == 0 && c->url.tls && why &&
        (contains_ci(why, "tls") || contains_ci(why, "ssl") || contains_ci(why, "cert")))
        err = PL_ERR_TLS;
    if (http_status)
        set_why(c, "HTTP %u instead of a WebSocket upgrade%s%s", http_status,
                why && *why ? ": " : "", why ? why : "");
    else
        set_why(c, "%s", why && *why ? why : "cannot connect");
    conn_lost(c, err, false, now_ms);
}

void pl__rc_on_closed(pl__rc *c, int close_code, int64_t now_ms) {
    PL_REQUIRE(c);
    if (now_ms > c->now) c->now = now_ms;
    if (c->st != ST_OPEN) return;
    if (close_code)
        set_why(c, "the relay closed the connection (code %d%s)", close_code,
                close_code == PL_RELAY_CODE_AUTH ? ": authentication refused" : "");
    else
        set_why(c, "the relay closed the connection");
    if (close_code == PL_RELAY_CODE_AUTH)
        conn_lost(c, PL_ERR_RELAY_AUTH, true, now_ms);
    else
        conn_lost(c, PL_ERR_DISCONNECTED, false, now_ms);
}

void pl__rc_on_lost(pl__rc *c, pl_err err, int64_t now_ms) {
    PL_REQUIRE(c);
    if (now_ms > c->now) c->now = now_ms;
    if (c->st != ST_OPEN && c->st != ST_CONNECTING) return;
    set_why(c, "%s", c->st == ST_OPEN ? "the connection was lost" : "the connection failed");
    conn_lost(c, err, false, now_ms);
}

/* ------------------------------------------------------------------------ */
/* Incoming frames                                                          */
/* ------------------------------------------------------------------------ */

static void send_reply(pl__rc *c, const pl_rpc_id *id, const char *result_json, int64_t err_code,
                       const char *err_msg) {
    if (id->kind == PL_RPC_ID_NUM && result_json && !strcmp(result_json, "true")) {
        /* the acknowledgement of every push: no JSON library needed */
        char ack[80];
        int n = snprintf(ack, sizeof ack, "{\"id\":%lld,\"jsonrpc\":\"2.0\",\"result\":true}",
                         (long long)id->num);
        out_send(c, ack, (size_t)n);
        return;
    }
    char *text = NULL;
    pl_err err = result_json ? pl_rpc_encode_result(&text, id, result_json)
                             : pl_rpc_encode_error(&text, id, err_code, err_msg, NULL);
    if (err == PL_OK) out_send(c, text, strlen(text));
    free(text);
}

static void deliver(pl__rc *c, topic_ent *te, const char *message, size_t mlen,
                    int64_t published_at, uint32_t tag) {
    pl__rc_output o = {.kind = PL__RC_MESSAGE, .published_at = published_at, .tag = tag};
    snprintf(o.topic, sizeof o.topic, "%s", te->name);
    memcpy(o.relay_topic, te->topic, sizeof o.relay_topic);
    size_t cap = mlen / 4 * 3 + 3;
    o.data = malloc(cap);
    if (!o.data) return;
    /* Message bytes are ciphertext or public: the fast decoder is fine. */
    pl_err e = pl_base64_decode_public(o.data, cap, &o.data_len, message, mlen, PL_B64_STD);
    if (e != PL_OK) {
        free(o.data);
        o.data = NULL;
        o.data_len = 0;
        o.err = e;
    }
    c->stats.delivered++;
    out(c, &o);
}

static void handle_subscription(pl__rc *c, const pl_rpc_msg *m) {
    /* Acknowledge first, whatever the content: the relay only stops
     * re-pushing on an answer, and a malformed push will not improve. */
    if (m->id.kind == PL_RPC_ID_NUM || m->id.kind == PL_RPC_ID_STR) {
        send_reply(c, &m->id, "true", 0, NULL);
    }
    if (!m->params) return;
    json_t *p = json_loads(m->params, 0, NULL);
    if (!p) return;
    json_t *data = json_object_get(p, "data");
    const char *topic = json_string_value(json_object_get(data, "topic"));
    json_t *msg = json_object_get(data, "message");
    const char *message = json_string_value(msg);
    topic_ent *te =
        topic && message && strlen(topic) == 64 && is_hex64(topic) ? topic_find(c, topic) : NULL;
    if (!te) {
        json_decref(p);
        return;
    }
    size_t mlen = json_string_length(msg);
    int64_t published_at = 0;
    json_t *pa = json_object_get(data, "publishedAt");
    if (json_is_integer(pa)) published_at = json_integer_value(pa);
    uint32_t tag = 0;
    json_t *tg = json_object_get(data, "tag");
    if (json_is_integer(tg) && json_integer_value(tg) >= 0 &&
        json_integer_value(tg) <= (json_int_t)UINT32_MAX) {
        tag = (uint32_t)json_integer_value(tg);
    }
    uint8_t key[32];
    pl__relay_dedup_key(key, topic, message, mlen);
    if (pl__dedup_check(c->dedup, key))
        c->stats.duplicates++;
    else
        deliver(c, te, message, mlen, published_at, tag);
    json_decref(p);
}

static void handle_result(pl__rc *c, req *r, const pl_rpc_msg *m, int64_t now_ms) {
    req_unlink(c, r);
    pace_answered(c);
    switch (r->kind) {
    case REQ_PUBLISH:
        report(c, PL_RELAY_OP_PUBLISH, r->seq, r->name, PL_OK, 0);
        req_free(r);
        return;
    case REQ_BATCH_PUBLISH:
        /* The relay takes a batch whole (docs/relay.md). */
        for (size_t i = 0; i < r->nmembers; i++) {
            req *q = r->members[i];
            if (!q) continue;
            q->batch = NULL;
            req_unlink(c, q);
            report(c, PL_RELAY_OP_PUBLISH, q->seq, q->name, PL_OK, 0);
            req_free(q);
        }
        req_free(r);
        return;
    case REQ_SUBSCRIBE:
    case REQ_BATCH_SUBSCRIBE: {
        json_t *res = m->result ? json_loads(m->result, JSON_DECODE_ANY, NULL) : NULL;
        size_t n = r->kind == REQ_SUBSCRIBE ? 1 : r->ntopics;
        for (size_t i = 0; i < n; i++) {
            const char *topic = r->kind == REQ_SUBSCRIBE ? r->topic : r->topics[i];
            const char *sid = r->kind == REQ_SUBSCRIBE ? json_string_value(res)
                                                       : json_string_value(json_array_get(res, i));
            if (!sid) sid = "";
            topic_ent *te = topic_find(c, topic);
            if (te) {
                snprintf(te->sub_id, sizeof te->sub_id, "%s", sid);
            } else if (*sid && strlen(sid) < sizeof te->sub_id) {
                /* Unsubscribed while the subscribe was in flight. */
                send_unsubscribe(c, topic, sid, now_ms);
            }
        }
        json_decref(res);
        req_free(r);
        return;
    }
    case REQ_UNSUBSCRIBE:
        req_free(r);
        return;
    }
}

static void handle_error(pl__rc *c, req *r, const pl_rpc_msg *m, int64_t now_ms) {
    int64_t asked = m->err_code == PL_RELAY_CODE_RATE ? pace_refused(c, m->err_data, now_ms) : 0;
    if (r->kind == REQ_BATCH_PUBLISH && m->err_code != PL_RELAY_CODE_RATE &&
        (m->err_code == -32601 || m->err_code == -32600)) {
        /* A relay without irn_batchPublish: one at a time from now on. */
        c->no_batch_publish = true;
        for (size_t i = 0; i < r->nmembers; i++) {
            req *q = r->members[i];
            if (!q) continue;
            q->batch = NULL;
            q->sent = false;
            c->unsent_pubs++;
        }
        req_unlink(c, r);
        req_free(r);
        return;
    }
    if (m->err_code == PL_RELAY_CODE_RATE) {
        /* Rate limited: the request is fine, the timing is not. Again when
         * the relay says it fits, or after a pause that doubles. */
        uint32_t pause = RATE_PAUSE_MS;
        for (unsigned i = 0; i < r->rate_hits && pause < RATE_PAUSE_MAX_MS; i++)
            pause <<= 1;
        if (pause > RATE_PAUSE_MAX_MS) pause = RATE_PAUSE_MAX_MS;
        r->rate_hits++;
        r->rate_wait = true;
        r->deadline = now_ms + (asked ? asked : pause);
        return;
    }
    req_unlink(c, r);
    switch (r->kind) {
    case REQ_PUBLISH:
        report(c, PL_RELAY_OP_PUBLISH, r->seq, r->name, PL_ERR_RELAY, m->err_code);
        break;
    case REQ_SUBSCRIBE:
        report(c, PL_RELAY_OP_SUBSCRIBE, 0, name_of(c, r->topic), PL_ERR_RELAY, m->err_code);
        break;
    case REQ_BATCH_SUBSCRIBE:
        for (size_t i = 0; i < r->ntopics; i++) {
            report(c, PL_RELAY_OP_SUBSCRIBE, 0, name_of(c, r->topics[i]), PL_ERR_RELAY,
                   m->err_code);
        }
        break;
    case REQ_UNSUBSCRIBE:
        report(c, PL_RELAY_OP_UNSUBSCRIBE, 0, r->topic, PL_ERR_RELAY, m->err_code);
        break;
    case REQ_BATCH_PUBLISH:
        /* refused whole: every message it carried */
        for (size_t i = 0; i < r->nmembers; i++) {
            req *q = r->members[i];
            if (!q) continue;
            q->batch = NULL;
            req_unlink(c, q);
            report(c, PL_RELAY_OP_PUBLISH, q->seq, q->name, PL_ERR_RELAY, m->err_code);
            req_free(q);
        }
        break;
    }
    req_free(r);
}

/* A push the fast reader took: what handle_subscription does, without the
 * generic decoder's parse, re-serialisation of params and second parse. */
static void handle_push_fast(pl__rc *c, const pl__rs_frame *f) {
    pl_rpc_id id = {.kind = PL_RPC_ID_NUM, .num = f->id};
    send_reply(c, &id, "true", 0, NULL);
    if (f->topic_len != 64) return;
    char topic[65];
    memcpy(topic, f->topic, 64);
    topic[64] = '\0';
    topic_ent *te = is_hex64(topic) ? topic_find(c, topic) : NULL;
    if (!te) return;
    uint32_t tag = f->has_tag && f->tag >= 0 && f->tag <= (int64_t)UINT32_MAX ? (uint32_t)f->tag : 0;
    uint8_t key[32];
    pl__relay_dedup_key(key, topic, f->message, f->message_len);
    if (pl__dedup_check(c->dedup, key))
        c->stats.duplicates++;
    else
        deliver(c, te, f->message, f->message_len, f->published_at, tag);
}

static void handle_frame(pl__rc *c, const char *text, size_t len, int64_t now_ms) {
    if (c->fast) {
        pl__rs_frame f;
        pl__rs_parse_frame(c->fast, text, len, &f);
        if (f.kind == PL__RS_FRAME_PUSH) {
            handle_push_fast(c, &f);
            return;
        }
    }
    pl_rpc_msg *msgs = NULL;
    size_t n = 0;
    bool batch = false;
    if (pl_rpc_decode(&msgs, &n, &batch, text, len) != PL_OK) return;
    for (size_t i = 0; i < n && c->st == ST_OPEN; i++) {
        const pl_rpc_msg *m = &msgs[i];
        if (m->kind == PL_RPC_REQUEST) {
            if (strcmp(m->method, "irn_subscription") == 0) {
                handle_subscription(c, m);
            } else if (m->id.kind == PL_RPC_ID_NUM || m->id.kind == PL_RPC_ID_STR) {
                send_reply(c, &m->id, NULL, -32601, "Method not found");
            }
            continue;
        }
        if (m->id.kind != PL_RPC_ID_NUM) continue; /* not one of ours */
        req *r = req_find(c, m->id.num);
        if (!r || !r->sent || r->batch) continue;
        if (m->kind == PL_RPC_RESULT)
            handle_result(c, r, m, now_ms);
        else
            handle_error(c, r, m, now_ms);
    }
    pl_rpc_msgs_free(msgs, n);
}

/* A relay that sends (pushes) but does not read our frames (their
 * answers) would grow the runtime's queue without end: drop it. */
static void check_unsent(pl__rc *c, int64_t now_ms) {
    if (c->st == ST_OPEN && c->unsent > c->max_unsent) {
        set_why(c, "the relay stopped reading what we send");
        conn_drop(c, PL_ERR_TIMEOUT, now_ms);
    }
}

void pl__rc_on_written(pl__rc *c, size_t len) {
    PL_REQUIRE(c);
    c->unsent = len < c->unsent ? c->unsent - len : 0;
}

static void alive(pl__rc *c, int64_t now_ms) {
    c->last_rx = now_ms;
    c->ping_sent_at = 0;
}

void pl__rc_on_pong(pl__rc *c, int64_t now_ms) {
    PL_REQUIRE(c);
    if (now_ms > c->now) c->now = now_ms;
    if (c->st == ST_OPEN) alive(c, now_ms);
}

void pl__rc_on_data(pl__rc *c, const void *in, size_t len, bool binary, bool final,
                    int64_t now_ms) {
    PL_REQUIRE(c && (in || len == 0));
    if (now_ms > c->now) c->now = now_ms;
    if (c->st != ST_OPEN) return;
    alive(c, now_ms);
    if (binary) return; /* the protocol is text only */
    if (!c->rx_discard) {
        if (c->rx_len + len > c->max_frame) {
            /* Too large to take: drop it whole. Not a reason to disconnect:
             * the relay would re-deliver the same message after reconnect. */
            c->rx_discard = true;
            c->rx_len = 0;
        } else {
            if (c->rx_len + len + 1 > c->rx_cap) {
                size_t cap = c->rx_cap ? c->rx_cap : 4096;
                while (cap < c->rx_len + len + 1)
                    cap *= 2;
                if (cap > c->max_frame + 1) cap = c->max_frame + 1;
                unsigned char *nb = realloc(c->rx, cap);
                if (!nb) {
                    c->rx_discard = true;
                    c->rx_len = 0;
                } else {
                    c->rx = nb;
                    c->rx_cap = cap;
                }
            }
            if (!c->rx_discard) {
                if (len) memcpy(c->rx + c->rx_len, in, len);
                c->rx_len += len;
            }
        }
    }
    if (!final) return;
    if (!c->rx_discard) {
        c->rx[c->rx_len] = '\0';
        handle_frame(c, (const char *)c->rx, c->rx_len, now_ms);
        check_unsent(c, now_ms);
    }
    c->rx_len = 0;
    c->rx_discard = false;
    /* Do not keep a large buffer around for an idle connection. */
    if (c->rx_cap > 65536) {
        free(c->rx);
        c->rx = NULL;
        c->rx_cap = 0;
    }
}

/* ------------------------------------------------------------------------ */
/* Time                                                                     */
/* ------------------------------------------------------------------------ */

/* Publishes whose TTL ran out are useless to the relay: report and drop. */
static void expire_publishes(pl__rc *c, int64_t now_ms) {
    req *r = c->req_head;
    while (r) {
        req *n = r->next;
        if (r->kind == REQ_PUBLISH && now_ms >= r->expires) {
            req_unlink(c, r);
            report(c, PL_RELAY_OP_PUBLISH, r->seq, r->name, PL_ERR_TIMEOUT, 0);
            req_free(r);
        }
        r = n;
    }
}

void pl__rc_on_timer(pl__rc *c, int64_t now_ms) {
    PL_REQUIRE(c);
    if (now_ms > c->now) c->now = now_ms;
    if (c->st == ST_CLOSING) return;
    expire_publishes(c, now_ms);
    switch (c->st) {
    case ST_BACKOFF:
        if (now_ms >= c->backoff_at) conn_start(c, now_ms);
        break;
    case ST_CONNECTING:
        if (now_ms >= c->conn_deadline) {
            set_why(c, "not connected within %u s", c->connect_timeout / 1000);
            conn_drop(c, PL_ERR_TIMEOUT, now_ms);
        }
        break;
    case ST_OPEN:
        if (c->ping_sent_at != 0 && now_ms >= c->ping_sent_at + c->ping_timeout) {
            set_why(c, "no answer to a ping within %u s", c->ping_timeout / 1000);
            conn_drop(c, PL_ERR_TIMEOUT, now_ms);
            break;
        }
        if (c->ping_sent_at == 0 && now_ms >= c->last_rx + c->ping_interval) {
            c->ping_sent_at = now_ms;
            out_simple(c, PL__RC_PING);
        }
        for (req *r = c->req_head; r && c->st == ST_OPEN; r = r->next) {
            if (!r->sent && !r->rate_wait) continue;
            if (r->batch) continue; /* its batch frame is timed instead */
            if (now_ms < r->deadline) continue;
            if (r->rate_wait) {
                /* A refused request goes again through the pacing model
                 * like any frame: re-sent on its own schedule, the requests
                 * refused together came back together and were refused
                 * again, thousands of times in a node manager's start. */
                size_t items = r->kind == REQ_BATCH_PUBLISH     ? r->nmembers
                               : r->kind == REQ_BATCH_SUBSCRIBE ? r->ntopics
                                                                : 1;
                if (!pace_take(c, cost_milli(r->kind, items), now_ms)) {
                    if (c->pace_until > r->deadline) r->deadline = c->pace_until;
                    continue;
                }
            }
            if (!r->rate_wait && ++r->timeouts >= MAX_REQUEST_TIMEOUTS) {
                set_why(c, "the relay did not answer a request %d times", MAX_REQUEST_TIMEOUTS);
                conn_drop(c, PL_ERR_TIMEOUT, now_ms);
                break;
            }
            c->stats.resent++;
            req_send(c, r, now_ms);
        }
        flush(c, now_ms);
        check_unsent(c, now_ms);
        break;
    default:
        break;
    }
}

int64_t pl__rc_next_deadline(const pl__rc *c) {
    PL_REQUIRE(c);
    int64_t due = INT64_MAX;
    if (c->st == ST_CLOSING) return due;
    if (c->st == ST_BACKOFF) due = c->backoff_at;
    if (c->st == ST_CONNECTING) due = c->conn_deadline;
    if (c->st == ST_OPEN) {
        due = c->ping_sent_at ? c->ping_sent_at + c->ping_timeout : c->last_rx + c->ping_interval;
    }
    for (req *r = c->req_head; r; r = r->next) {
        if (r->kind == REQ_PUBLISH && r->expires < due) due = r->expires;
        if (c->st == ST_OPEN && (r->sent || r->rate_wait) && !r->batch && r->deadline < due)
            due = r->deadline;
    }
    /* paced work waits for the model's tokens */
    if (c->st == ST_OPEN && (c->unsent_topics || c->unsent_pubs) && c->pace_until &&
        c->pace_until < due)
        due = c->pace_until;
    return due;
}

/* ------------------------------------------------------------------------ */
/* Construction and operations                                              */
/* ------------------------------------------------------------------------ */

static bool url_safe_token(const char *s, bool jwt) {
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (isalnum(ch) || ch == '-' || ch == '_' || ch == '.') continue;
        if (!jwt && ch == '~') continue;
        return false;
    }
    return true;
}

#define OPT(v, d) ((v) ? (v) : (d))

pl_err pl__rc_new(pl__rc **out_c, const pl__rc_config *cfg, int64_t now_ms) {
    PL_REQUIRE(out_c && cfg && cfg->seed);
    *out_c = NULL;
    pl__relay_url url;
    PL_TRY(pl__relay_url_parse(&url, cfg->url));
    if (cfg->project_id && (strlen(cfg->project_id) > PL_RELAY_PROJECT_ID_MAX ||
                            !url_safe_token(cfg->project_id, false))) {
        return PL_ERR_INVALID_ARG;
    }
    if (cfg->jwt && (strnlen(cfg->jwt, PL_JWT_MAX_LEN + 1) > PL_JWT_MAX_LEN ||
                     !url_safe_token(cfg->jwt, true))) {
        return PL_ERR_INVALID_ARG;
    }
    pl__rc *c = calloc(1, sizeof *c);
    if (!c) return PL_ERR_NOMEM;
    c->url = url;
    c->rng = cfg->rng;
    c->rng_ctx = cfg->rng_ctx;
    c->url_str = strdup(cfg->url);
    c->project_id = cfg->project_id ? strdup(cfg->project_id) : NULL;
    c->jwt_fixed = cfg->jwt ? strdup(cfg->jwt) : NULL;
    if (!c->url_str || (cfg->project_id && !c->project_id) || (cfg->jwt && !c->jwt_fixed)) {
        pl__rc_free(c);
        return PL_ERR_NOMEM;
    }
    memcpy(c->seed, cfg->seed, sizeof c->seed);
    uint8_t pub[PL_ED25519_PUB_BYTES];
    pl_ed25519_public(pub, c->seed);
    pl_err err = pl_did_key_encode(c->did, pub);
    c->connect_timeout = OPT(cfg->connect_timeout_ms, DEF_CONNECT_TIMEOUT);
    c->request_timeout = OPT(cfg->request_timeout_ms, DEF_REQUEST_TIMEOUT);
    c->reconnect_min = OPT(cfg->reconnect_min_ms, DEF_RECONNECT_MIN);
    c->reconnect_max = OPT(cfg->reconnect_max_ms, DEF_RECONNECT_MAX);
    if (c->reconnect_max < c->reconnect_min) c->reconnect_max = c->reconnect_min;
    c->ping_interval = OPT(cfg->ping_interval_ms, DEF_PING_INTERVAL);
    c->ping_timeout = OPT(cfg->ping_timeout_ms, DEF_PING_TIMEOUT);
    c->max_queue = OPT(cfg->max_queue, DEF_MAX_QUEUE);
    c->max_queue_bytes = OPT(cfg->max_queue_bytes, DEF_MAX_QUEUE_BYTES);
    c->max_topics = OPT(cfg->max_topics, DEF_MAX_TOPICS);
    c->max_frame = OPT(cfg->max_frame_bytes, DEF_MAX_FRAME);
    c->max_unsent = OPT(cfg->max_unsent_bytes, c->max_queue_bytes + DEF_UNSENT_EXTRA);
    c->batch_max = cfg->batch_max && cfg->batch_max < BATCH_MAX ? cfg->batch_max : BATCH_MAX;
    c->flush_per_turn = cfg->flush_per_turn;
    /* An allowance given: paced from the start. Otherwise unpaced until
     * the relay first refuses (3001), then paced to what it says. */
    if (cfg->rate_per_s && cfg->rate_per_s != UINT32_MAX) {
        c->pace_rate = c->pace_rate_max = cfg->rate_per_s;
        c->pace_burst = OPT(cfg->rate_burst, 5 * cfg->rate_per_s);
        c->pace_tokens = (int64_t)c->pace_burst * 1000;
        c->pace_etokens = c->pace_tokens * PL_RELAY_ENTRY_FACTOR;
        c->pace_refill_at = now_ms;
        c->pace_advertised = true;
    }
    c->pace_never = cfg->rate_per_s == UINT32_MAX;
    c->now = now_ms;
    uint8_t key[16];
    rng_bytes(c, key, sizeof key);
    if (err == PL_OK) err = pl__dedup_new(&c->dedup, OPT(cfg->dedup_capacity, DEF_DEDUP), key);
    if (err == PL_OK && !(c->fast = pl__rs_parser_new(c->max_frame))) err = PL_ERR_NOMEM;
    /* The first token is signed now so that a seed or URL the JWT code
     * refuses is reported here rather than as an endless reconnect. */
    if (err == PL_OK && !c->jwt_fixed) {
        char *probe = NULL;
        err = pl_jwt_sign(&probe, c->seed, "00", c->url_str, now_ms / 1000, PL_JWT_DEFAULT_TTL);
        free(probe);
    }
    if (err != PL_OK) {
        pl__rc_free(c);
        return err;
    }
    c->st = ST_BACKOFF;
    c->backoff_at = now_ms;
    c->tstate = PL_TRANSPORT_CONNECTING;
    *out_c = c;
    return PL_OK;
}

void pl__rc_free(pl__rc *c) {
    if (!c) return;
    req *r = c->req_head;
    while (r) {
        req *n = r->next;
        req_free(r);
        r = n;
    }
    pl__rc_output o;
    while (pl__rc_poll(c, &o))
        pl__rc_output_clear(&o);
    for (size_t i = 0; i < c->ntopics; i++)
        free(c->topics[i].name);
    free(c->rx);
    free(c->topics);
    pl__dedup_free(c->dedup);
    pl__rs_parser_free(c->fast);
    free(c->url_str);
    free(c->project_id);
    free(c->jwt_fixed);
    sodium_memzero(c->seed, sizeof c->seed);
    free(c);
}

const pl__relay_url *pl__rc_url(const pl__rc *c) {
    PL_REQUIRE(c);
    return &c->url;
}

const char *pl__rc_did(const pl__rc *c) {
    PL_REQUIRE(c);
    return c->did;
}

pl_err pl__rc_publish(pl__rc *c, const char *name, const uint8_t *data, size_t len,
                      const pl_publish_opts *opts, int64_t now_ms, uint64_t *seq) {
    PL_REQUIRE(c && name && (data || len == 0) && opts);
    if (now_ms > c->now) c->now = now_ms;
    if (seq) *seq = 0;
    if (c->st == ST_CLOSING || c->st == ST_FAILED) return PL_ERR_STATE;
    topic_str topic;
    if (pl_relay_topic(topic, name) != PL_OK) return PL_ERR_INVALID_ARG;
    if (len > PL_RELAY_PAYLOAD_MAX) return PL_ERR_TOO_LARGE;
    size_t mlen = pl_base64_encoded_size(len, PL_B64_STD) - 1;
    if (c->pub_count >= c->max_queue || c->pub_bytes + mlen > c->max_queue_bytes)
        return PL_ERR_TOO_LARGE;
    uint32_t ttl = opts->ttl_s ? opts->ttl_s : DEF_TTL;
    uint32_t tag = 0;
    bool prompt = false;
    if (opts->ext && opts->ext->kind == PL_TRANSPORT_EXT_WC_RELAY) {
        const pl_wc_relay_publish_ext *x = (const pl_wc_relay_publish_ext *)opts->ext;
        tag = x->tag;
        prompt = x->prompt;
    }
    /* The request text is written here, not through a JSON library: every
     * field is a 64-hex topic, base64 or a number (nothing to escape), and
     * this runs for every message. Its params object is kept apart for a
     * batch (params_off, params_len). */
    req *r = calloc(1, sizeof *r);
    size_t cap = mlen + 256;
    char *text = malloc(cap);
    if (!r || !text) {
        free(r);
        free(text);
        return PL_ERR_NOMEM;
    }
    r->kind = REQ_PUBLISH;
    r->id = next_id(c, now_ms);
    int head = snprintf(text, cap,
                        "{\"id\":%lld,\"jsonrpc\":\"2.0\",\"method\":\"irn_publish\",\"params\":",
                        (long long)r->id);
    size_t off = (size_t)head;
    r->params_off = off;
    off += (size_t)snprintf(text + off, cap - off, "{\"topic\":\"%s\",\"message\":\"", topic);
    pl_err e = pl_base64_encode_public(text + off, cap - off, data, len, PL_B64_STD);
    if (e != PL_OK) {
        free(text);
        free(r);
        return e;
    }
    off += mlen;
    off += (size_t)snprintf(text + off, cap - off, "\",\"ttl\":%u,\"tag\":%u%s}", ttl, tag,
                            prompt ? ",\"prompt\":true" : "");
    r->params_len = off - r->params_off;
    text[off++] = '}';
    text[off] = '\0';
    r->text = text;
    r->len = off;
    r->name = strdup(name);
    if (!r->name) {
        req_free(r);
        return PL_ERR_NOMEM;
    }
    memcpy(r->topic, topic, sizeof r->topic);
    r->seq = ++c->next_seq;
    r->msg_bytes = mlen;
    r->expires = now_ms + (int64_t)ttl * 1000;
    req_link(c, r);
    c->pub_count++;
    c->pub_bytes += mlen;
    c->unsent_pubs++; /* sent by the next flush (pl__rc_poll), with what else waits */
    if (seq) *seq = r->seq;
    return PL_OK;
}

/* What subscribe and unsubscribe check first: the state, then the name. */
static pl_err topic_op_start(const pl__rc *c, const char *name, topic_str topic) {
    if (c->st == ST_CLOSING) return PL_ERR_STATE;
    return pl_relay_topic(topic, name) == PL_OK ? PL_OK : PL_ERR_INVALID_ARG;
}

pl_err pl__rc_subscribe(pl__rc *c, const char *name, int64_t now_ms) {
    PL_REQUIRE(c && name);
    if (now_ms > c->now) c->now = now_ms;
    topic_str topic;
    PL_TRY(topic_op_start(c, name, topic));
    topic_ent *old = topic_find(c, topic);
    if (old) return strcmp(old->name, name) ? PL_ERR_EXISTS : PL_OK;
    if (c->ntopics >= c->max_topics) return PL_ERR_TOO_LARGE;
    if (c->ntopics == c->topics_cap) {
        size_t cap = c->topics_cap ? c->topics_cap * 2 : 8;
        topic_ent *nt = realloc(c->topics, cap * sizeof *nt);
        if (!nt) return PL_ERR_NOMEM;
        c->topics = nt;
        c->topics_cap = cap;
    }
    topic_ent *te = &c->topics[c->ntopics];
    memcpy(te->topic, topic, sizeof te->topic);
    te->sub_id[0] = '\0';
    te->name = strdup(name);
    if (!te->name) return PL_ERR_NOMEM;
    (void)now_ms;
    /* Open: subscribed by the next flush, with the others of this turn.
     * Not open: by the batch after the next connect. */
    te->unsent = c->st == ST_OPEN;
    if (te->unsent) c->unsent_topics++;
    c->ntopics++;
    return PL_OK;
}

pl_err pl__rc_unsubscribe(pl__rc *c, const char *name, int64_t now_ms) {
    PL_REQUIRE(c && name);
    if (now_ms > c->now) c->now = now_ms;
    topic_str topic;
    PL_TRY(topic_op_start(c, name, topic));
    topic_ent *te = topic_find(c, topic);
    if (!te) return PL_OK;
    /* Never sent: nothing to undo. Without a subscription id the subscribe
     * is still in flight: its result finds the topic gone and unsubscribes
     * then. */
    if (te->unsent) {
        te->unsent = false;
        c->unsent_topics--;
    } else if (c->st == ST_OPEN && te->sub_id[0]) {
        PL_TRY(send_unsubscribe(c, topic, te->sub_id, now_ms));
    }
    free(te->name);
    *te = c->topics[c->ntopics - 1];
    c->ntopics--;
    return PL_OK;
}

size_t pl__rc_pending(const pl__rc *c) {
    PL_REQUIRE(c);
    return c->pub_count;
}

pl_transport_state pl__rc_state(const pl__rc *c, pl_err *err) {
    PL_REQUIRE(c && err);
    *err = c->terr;
    return c->tstate;
}

void pl__rc_stats(const pl__rc *c, pl_relay_client_stats *o) {
    PL_REQUIRE(c && o);
    *o = c->stats;
}

bool pl__rc_close(pl__rc *c) {
    PL_REQUIRE(c && c->st != ST_CLOSING);
    bool was_open = c->st == ST_OPEN;
    c->st = ST_CLOSING;
    /* What the runtime has not taken yet is moot, except results. */
    outnode *keep_head = NULL, *keep_tail = NULL;
    while (c->out_head) {
        outnode *n = c->out_head;
        c->out_head = n->next;
        n->next = NULL;
        if (n->o.kind == PL__RC_RESULT) {
            if (keep_tail)
                keep_tail->next = n;
            else
                keep_head = n;
            keep_tail = n;
        } else {
            pl__rc_output_clear(&n->o);
            free(n);
        }
    }
    c->out_head = keep_head;
    c->out_tail = keep_tail;
    for (req *r = c->req_head; r; r = r->next) {
        if (r->kind == REQ_PUBLISH)
            report(c, PL_RELAY_OP_PUBLISH, r->seq, r->name, PL_ERR_CANCELLED, 0);
    }
    return was_open;
}
