/* WalletConnect relay client over libwebsockets on a libuv loop.
 * Public contract: include/pairlink/relay_client.h; design: docs/relay-client.md.
 *
 * Layout of this file: pure helpers (URL, LRU, backoff), then the client:
 * requests and the outgoing frame queue, the connection state machine, the
 * libwebsockets callback, the deadline timer, the public API, and the close
 * sequence (the libwebsockets foreign-loop shutdown recipe). */
#include "pairlink/relay_client.h"

#include "core/internal.h"
#include "pairlink/codec.h"
#include "pairlink/crypto.h"
#include "pairlink/hash.h"
#include "pairlink/jsonrpc.h"
#include "runtime/relay_client_internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netdb.h>
#include <netinet/in.h>
#include <jansson.h>
#include <libwebsockets.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
        while (h_end < auth_end && *h_end != ':') h_end++;
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

#define DD_NIL UINT32_MAX

typedef struct dd_ent {
    uint8_t d[32];
    uint32_t prev, next; /* recency list, most recent at head */
    uint32_t hnext;      /* bucket chain */
} dd_ent;

struct pl__dedup {
    uint32_t cap, count, nbuckets;
    uint32_t head, tail;
    uint32_t *buckets;
    dd_ent *e;
    /* Buckets are chosen by a keyed hash so that a hostile relay cannot pile
     * messages into one chain. */
    uint8_t key[crypto_shorthash_KEYBYTES];
};

pl_err pl__dedup_new(pl__dedup **out, uint32_t capacity) {
    PL_REQUIRE(out != NULL && capacity >= 1);
    *out = NULL;
    pl__dedup *d = calloc(1, sizeof *d);
    if (!d) return PL_ERR_NOMEM;
    d->cap = capacity;
    d->nbuckets = 1;
    while (d->nbuckets < capacity && d->nbuckets < (1u << 30)) d->nbuckets <<= 1;
    d->buckets = malloc((size_t)d->nbuckets * sizeof *d->buckets);
    d->e = calloc(capacity, sizeof *d->e);
    if (!d->buckets || !d->e) {
        pl__dedup_free(d);
        return PL_ERR_NOMEM;
    }
    for (uint32_t i = 0; i < d->nbuckets; i++) d->buckets[i] = DD_NIL;
    d->head = d->tail = DD_NIL;
    pl_random(d->key, sizeof d->key);
    *out = d;
    return PL_OK;
}

void pl__dedup_free(pl__dedup *d) {
    if (!d) return;
    free(d->buckets);
    free(d->e);
    free(d);
}

size_t pl__dedup_size(const pl__dedup *d) { return d->count; }

static uint32_t dd_bucket(const pl__dedup *d, const uint8_t digest[32]) {
    uint8_t h[crypto_shorthash_BYTES];
    crypto_shorthash(h, digest, 32, d->key);
    uint32_t v = (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 24;
    return v & (d->nbuckets - 1);
}

static void dd_unlink(pl__dedup *d, uint32_t i) {
    dd_ent *x = &d->e[i];
    if (x->prev != DD_NIL) d->e[x->prev].next = x->next; else d->head = x->next;
    if (x->next != DD_NIL) d->e[x->next].prev = x->prev; else d->tail = x->prev;
    x->prev = x->next = DD_NIL;
}

static void dd_push_front(pl__dedup *d, uint32_t i) {
    dd_ent *x = &d->e[i];
    x->prev = DD_NIL;
    x->next = d->head;
    if (d->head != DD_NIL) d->e[d->head].prev = i;
    d->head = i;
    if (d->tail == DD_NIL) d->tail = i;
}

bool pl__dedup_check(pl__dedup *d, const uint8_t digest[32]) {
    uint32_t b = dd_bucket(d, digest);
    for (uint32_t i = d->buckets[b]; i != DD_NIL; i = d->e[i].hnext) {
        if (memcmp(d->e[i].d, digest, 32) == 0) { /* public data: no ct needed */
            dd_unlink(d, i);
            dd_push_front(d, i);
            return true;
        }
    }
    uint32_t slot;
    if (d->count < d->cap) {
        slot = d->count++;
    } else {
        slot = d->tail;
        dd_unlink(d, slot);
        uint32_t ob = dd_bucket(d, d->e[slot].d);
        uint32_t *pp = &d->buckets[ob];
        while (*pp != slot) pp = &d->e[*pp].hnext;
        *pp = d->e[slot].hnext;
    }
    memcpy(d->e[slot].d, digest, 32);
    d->e[slot].hnext = d->buckets[b];
    d->buckets[b] = slot;
    dd_push_front(d, slot);
    return false;
}

void pl__relay_dedup_key(uint8_t out[32], const char *topic, const char *message, size_t len) {
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, (const unsigned char *)topic, strlen(topic));
    crypto_hash_sha256_update(&st, (const unsigned char *)"|", 1);
    crypto_hash_sha256_update(&st, (const unsigned char *)message, len);
    crypto_hash_sha256_final(&st, out);
}

uint32_t pl__relay_backoff_ms(unsigned attempt, uint32_t min_ms, uint32_t max_ms, uint32_t rnd) {
    uint64_t b = min_ms;
    for (unsigned i = 0; i < attempt && b < max_ms; i++) b <<= 1;
    if (b > max_ms) b = max_ms;
    uint64_t half = b / 2;
    return (uint32_t)(half + (uint64_t)rnd % (b - half + 1));
}

/* ------------------------------------------------------------------------ */
/* Client state                                                             */
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
#define DEF_TTL 86400u
/* A request unanswered this many times in a row means the relay is stuck
 * even though the socket is alive: reconnect, which re-sends everything. */
#define MAX_REQUEST_TIMEOUTS 3u
#define RATE_PAUSE_MS 1000u
#define RATE_PAUSE_MAX_MS 16000u
/* A connection that stayed open this long resets the backoff. */
#define HEALTHY_MS 10000u
#define CLOSE_GRACE_MS 1000u
#define BATCH_MAX 500u
#define PROTOCOL_NAME "pl-relay-client"
#define LWS_STATIC_HANDLES_MAX 8 /* lws 4.1 on a foreign loop adds 2 */

typedef enum req_kind {
    REQ_PUBLISH = 1,
    REQ_SUBSCRIBE = 2,
    REQ_BATCH_SUBSCRIBE = 3,
    REQ_UNSUBSCRIBE = 4,
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
    bool sent;       /* on the current connection */
    bool rate_wait;  /* deadline is a pause after 3001, not a time-out */
    unsigned timeouts, rate_hits;
    uint64_t deadline; /* loop ms */
    /* PUBLISH */
    uint64_t seq;
    size_t msg_bytes;
    uint64_t expires; /* loop ms: the message's TTL */
    /* SUBSCRIBE / UNSUBSCRIBE: topic; BATCH_SUBSCRIBE: topics */
    topic_str topic;
    topic_str *topics;
    size_t ntopics;
} req;

typedef struct outframe {
    struct outframe *next;
    size_t len;
    unsigned char buf[]; /* LWS_PRE headroom + payload */
} outframe;

typedef struct topic_ent {
    topic_str topic;
    char sub_id[PL_TOPIC_HEX_SIZE + 64]; /* relay's subscription id ("" if none yet) */
} topic_ent;

typedef enum conn_state {
    ST_BACKOFF = 1,    /* waiting to (re)connect at backoff_at */
    ST_CONNECTING = 2, /* socket/TLS/upgrade in progress */
    ST_OPEN = 3,
    ST_FAILED = 4,     /* auth rejected: idle until closed */
    ST_CLOSING = 5,
} conn_state;

typedef enum close_phase {
    CP_WAIT_WS = 1,  /* close frame sent, waiting for the socket to go */
    CP_DESTROY = 2,  /* first lws_context_destroy */
    CP_POLL = 3,     /* waiting for lws's uv handles to finish closing */
    CP_HANDLES = 4,  /* waiting for our own uv handles */
} close_phase;

struct pl_relay_client {
    uv_loop_t *loop;
    void *foreign_loops[1];
    struct lws_context *lws;
    uv_handle_t *lws_handles[LWS_STATIC_HANDLES_MAX]; /* see walk_arg */
    size_t n_lws_handles;
    uv_getaddrinfo_t *gai; /* the latest name lookup in flight, if any */
    unsigned resolving;    /* lookups in flight (close waits for them) */
    struct lws *wsi;     /* current connection, NULL when none */
    uintptr_t gen;       /* current connection's generation (opaque user data) */
    bool conn_live;      /* callbacks of connection `gen` still matter */
    conn_state st;

    uv_timer_t timer;       /* every deadline of the state machine */
    uv_timer_t close_timer; /* drives the close sequence */
    uint64_t timer_due;     /* when `timer` fires; UINT64_MAX when idle */
    int handles_open;
    close_phase cphase;
    uint64_t close_deadline;
    unsigned close_ticks;
    pl_relay_closed_cb on_closed;

    /* configuration */
    char *url_str;
    pl__relay_url url;
    char *project_id;
    char *ca_file;
    char *jwt_fixed;
    SSL_CTX *ssl_ctx; /* wss:// only */
    uint8_t seed[PL_ED25519_SEED_BYTES];
    char did[PL_DID_KEY_SIZE];
    pl_relay_message_cb on_message;
    pl_relay_state_cb on_state;
    pl_relay_result_cb on_result;
    void *user_data;
    uint32_t connect_timeout, request_timeout, reconnect_min, reconnect_max;
    uint32_t ping_interval, ping_timeout, max_queue, max_topics;
    size_t max_queue_bytes, max_frame;

    /* connection */
    uint64_t conn_deadline, backoff_at, open_since, last_rx, ping_sent_at;
    bool ping_wanted;
    unsigned backoff_attempt;
    int peer_close_code;
    outframe *out_head, *out_tail;
    unsigned char *rx;
    size_t rx_len, rx_cap;
    bool rx_discard;

    /* requests, publish queue, topics */
    req *req_head, *req_tail;
    size_t pub_count, pub_bytes;
    uint64_t next_seq;
    int64_t last_id;
    topic_ent *topics;
    size_t ntopics, topics_cap;
    pl__dedup *dedup;

    pl_relay_client_stats stats;
};

static uint64_t now_ms(const pl_relay_client *c) { return uv_now(c->loop); }

static int64_t wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Lowercase only: topics are compared as strings, and relays and the JS SDK
 * write them in lowercase. */
static bool valid_topic(const char *t) {
    if (!t) return false;
    for (size_t i = 0; i < 64; i++) {
        if (!((t[i] >= '0' && t[i] <= '9') || (t[i] >= 'a' && t[i] <= 'f'))) return false;
    }
    return t[64] == '\0';
}

static void arm_at(pl_relay_client *c, uint64_t due);

/* ---- topics ------------------------------------------------------------ */

static topic_ent *topic_find(pl_relay_client *c, const char *topic) {
    for (size_t i = 0; i < c->ntopics; i++) {
        if (strcmp(c->topics[i].topic, topic) == 0) return &c->topics[i];
    }
    return NULL;
}

/* ---- requests ---------------------------------------------------------- */

static void req_free(req *r) {
    if (!r) return;
    free(r->text);
    free(r->topics);
    free(r);
}

static void req_link(pl_relay_client *c, req *r) {
    r->prev = c->req_tail;
    r->next = NULL;
    if (c->req_tail) c->req_tail->next = r; else c->req_head = r;
    c->req_tail = r;
}

static void req_unlink(pl_relay_client *c, req *r) {
    if (r->prev) r->prev->next = r->next; else c->req_head = r->next;
    if (r->next) r->next->prev = r->prev; else c->req_tail = r->prev;
    r->prev = r->next = NULL;
    if (r->kind == REQ_PUBLISH) {
        c->pub_count--;
        c->pub_bytes -= r->msg_bytes;
    }
}

static req *req_find(pl_relay_client *c, int64_t id) {
    for (req *r = c->req_head; r; r = r->next) {
        if (r->id == id) return r;
    }
    return NULL;
}

static int64_t next_id(pl_relay_client *c) {
    /* JS-style ids (ms * 1000 + random), kept strictly increasing so that
     * two requests of one client never share an id; below 2^53 for
     * decades. */
    int64_t v = pl_rpc_id_new(wall_ms()).num;
    if (v <= c->last_id) v = c->last_id + 1;
    c->last_id = v;
    return v;
}

/* Encode `method` with params built by the caller into a new request. */
static pl_err req_new(req **out, pl_relay_client *c, req_kind kind, const char *method,
                      json_t *params) {
    *out = NULL;
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
    r->id = next_id(c);
    pl_rpc_id id = pl_rpc_id_num(r->id);
    pl_err err = pl_rpc_encode_request(&r->text, &id, method, ptext);
    free(ptext);
    if (err != PL_OK) {
        free(r);
        return err;
    }
    r->len = strlen(r->text);
    *out = r;
    return PL_OK;
}

/* ---- outgoing frames ---------------------------------------------------- */

static pl_err out_push(pl_relay_client *c, const char *text, size_t len) {
    outframe *f = malloc(sizeof *f + LWS_PRE + len);
    if (!f) return PL_ERR_NOMEM;
    f->next = NULL;
    f->len = len;
    memcpy(f->buf + LWS_PRE, text, len);
    if (c->out_tail) c->out_tail->next = f; else c->out_head = f;
    c->out_tail = f;
    if (c->wsi && c->st == ST_OPEN) lws_callback_on_writable(c->wsi);
    return PL_OK;
}

static void out_clear(pl_relay_client *c) {
    outframe *f = c->out_head;
    while (f) {
        outframe *n = f->next;
        free(f);
        f = n;
    }
    c->out_head = c->out_tail = NULL;
}

/* Put a request on the wire (connection must be open). */
static void req_send(pl_relay_client *c, req *r) {
    r->sent = true;
    r->rate_wait = false;
    r->deadline = now_ms(c) + c->request_timeout;
    arm_at(c, r->deadline);
    if (out_push(c, r->text, r->len) != PL_OK) {
        /* Out of memory: the time-out re-sends it. */
    }
}

static pl_err send_subscribe(pl_relay_client *c, const char *topic) {
    req *r;
    PL_TRY(req_new(&r, c, REQ_SUBSCRIBE, "irn_subscribe", json_pack("{s:s}", "topic", topic)));
    memcpy(r->topic, topic, sizeof r->topic);
    req_link(c, r);
    req_send(c, r);
    return PL_OK;
}

static pl_err send_unsubscribe(pl_relay_client *c, const char *topic, const char *sub_id) {
    req *r;
    PL_TRY(req_new(&r, c, REQ_UNSUBSCRIBE, "irn_unsubscribe",
                   json_pack("{s:s,s:s}", "topic", topic, "id", sub_id)));
    memcpy(r->topic, topic, sizeof r->topic);
    req_link(c, r);
    req_send(c, r);
    return PL_OK;
}

/* After (re)connecting: every topic again, in batches of the protocol's
 * bound, then every queued publish in order. */
static void resume_after_connect(pl_relay_client *c) {
    for (size_t i = 0; i < c->ntopics; i += BATCH_MAX) {
        size_t n = c->ntopics - i < BATCH_MAX ? c->ntopics - i : BATCH_MAX;
        json_t *arr = json_array();
        topic_str *copy = malloc(n * sizeof *copy);
        if (!arr || !copy) {
            json_decref(arr);
            free(copy);
            continue;
        }
        for (size_t k = 0; k < n; k++) {
            json_array_append_new(arr, json_string(c->topics[i + k].topic));
            memcpy(copy[k], c->topics[i + k].topic, sizeof copy[k]);
        }
        req *r;
        if (req_new(&r, c, REQ_BATCH_SUBSCRIBE, "irn_batchSubscribe",
                    json_pack("{s:o}", "topics", arr)) != PL_OK) {
            free(copy);
            continue;
        }
        r->topics = copy;
        r->ntopics = n;
        req_link(c, r);
        req_send(c, r);
    }
    for (req *r = c->req_head; r; r = r->next) {
        if (r->kind == REQ_PUBLISH && !r->sent && !r->rate_wait) req_send(c, r);
    }
}

/* ------------------------------------------------------------------------ */
/* Connection state machine                                                 */
/* ------------------------------------------------------------------------ */

static void notify_state(pl_relay_client *c, pl_relay_state s, pl_err err) {
    if (c->on_state && c->st != ST_CLOSING) c->on_state(c->user_data, s, err);
}

/* The current connection is over (whatever ended it). Requests of that
 * connection are dropped, publishes go back to the queue, and either a
 * reconnect is scheduled or, when `fatal`, the client stops. */
static void conn_lost(pl_relay_client *c, pl_err err, bool fatal) {
    bool was_open = c->st == ST_OPEN;
    uint64_t now = now_ms(c);
    c->conn_live = false;
    c->wsi = NULL;
    out_clear(c);
    c->rx_len = 0;
    c->rx_discard = false;
    c->ping_wanted = false;
    c->ping_sent_at = 0;
    req *r = c->req_head;
    while (r) {
        req *n = r->next;
        if (r->kind == REQ_PUBLISH) {
            /* Re-sent at once after the reconnect, with the same id. */
            r->sent = false;
            r->rate_wait = false;
        } else {
            req_unlink(c, r);
            req_free(r);
        }
        r = n;
    }
    for (size_t i = 0; i < c->ntopics; i++) c->topics[i].sub_id[0] = '\0';
    if (c->st == ST_CLOSING) return;

    if (fatal) {
        c->st = ST_FAILED;
        notify_state(c, PL_RELAY_FAILED, err);
        return;
    }
    if (was_open && now - c->open_since >= HEALTHY_MS) c->backoff_attempt = 0;
    uint32_t rnd;
    pl_random((uint8_t *)&rnd, sizeof rnd);
    uint32_t delay = pl__relay_backoff_ms(c->backoff_attempt, c->reconnect_min,
                                          c->reconnect_max, rnd);
    if (c->backoff_attempt < 31) c->backoff_attempt++;
    c->st = ST_BACKOFF;
    c->backoff_at = now + delay;
    arm_at(c, c->backoff_at);
    notify_state(c, PL_RELAY_DISCONNECTED, err);
}

/* Drop the current connection from outside an lws callback (a timer):
 * lws closes the socket on its next service; its late callbacks are
 * ignored because conn_live is cleared. */
static void conn_kill(pl_relay_client *c, pl_err err) {
    if (c->wsi) {
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        /* Under libuv, lws re-arms its timer only after socket activity:
         * wake it so the kill happens now, not at the next packet. */
        lws_cancel_service(c->lws);
    }
    conn_lost(c, err, false);
}

static char *build_connect_path(pl_relay_client *c, pl_err *err) {
    char *jwt = NULL;
    *err = PL_OK;
    if (c->jwt_fixed) {
        jwt = strdup(c->jwt_fixed);
        if (!jwt) *err = PL_ERR_NOMEM;
    } else {
        /* sub: a fresh random hex string per token, as relay-auth does. */
        uint8_t sub_raw[32];
        char sub[PL_HEX_SIZE(32)];
        pl_random(sub_raw, sizeof sub_raw);
        pl_hex_encode(sub, sizeof sub, sub_raw, sizeof sub_raw);
        *err = pl_jwt_sign(&jwt, c->seed, sub, c->url_str, wall_ms() / 1000, PL_JWT_DEFAULT_TTL);
    }
    if (*err != PL_OK) return NULL;
    size_t cap = strlen(c->url.path) + strlen(jwt) + (c->project_id ? strlen(c->project_id) : 0) + 128;
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

/* Open the WebSocket to `address` (a numeric IP). */
static void conn_open(pl_relay_client *c, const char *address) {
    pl_err err;
    char *path = build_connect_path(c, &err);
    if (!path) {
        conn_lost(c, err, false);
        return;
    }
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof ci);
    ci.context = c->lws;
    ci.address = address;
    ci.port = c->url.port;
    ci.path = path;
    ci.host = c->url.host_header; /* also the TLS SNI and certificate name */
    ci.origin = NULL;
    ci.protocol = NULL; /* no Sec-WebSocket-Protocol header, as JS clients */
    ci.local_protocol_name = PROTOCOL_NAME;
    ci.ietf_version_or_minus_one = -1;
    /* Never follow a redirect: the JWT's aud names this URL only. */
    ci.ssl_connection = LCCSCF_HTTP_NO_FOLLOW_REDIRECT | (c->url.tls ? LCCSCF_USE_SSL : 0);
    ci.opaque_user_data = (void *)c->gen;
    struct lws *w = lws_client_connect_via_info(&ci);
    free(path);
    if (!c->conn_live || c->st == ST_CLOSING) return; /* ended inside the call */
    if (!w) {
        conn_lost(c, PL_ERR_WEBSOCKET, false);
        return;
    }
    c->wsi = w;
}

typedef struct resolve_req {
    uv_getaddrinfo_t req;
    pl_relay_client *c;
    uintptr_t gen;
} resolve_req;

static void on_resolved(uv_getaddrinfo_t *gr, int status, struct addrinfo *res) {
    resolve_req *rr = gr->data;
    pl_relay_client *c = rr->c;
    uintptr_t gen = rr->gen;
    free(rr);
    c->resolving--;
    if (c->gai == gr) c->gai = NULL;
    char addr[INET6_ADDRSTRLEN] = "";
    if (status == 0 && res) {
        /* Rotate through the addresses across attempts: a dead first
         * address does not block the others. */
        size_t n = 0;
        for (struct addrinfo *a = res; a; a = a->ai_next) n++;
        struct addrinfo *a = res;
        for (size_t k = c->backoff_attempt % n; k > 0; k--) a = a->ai_next;
        if (a->ai_family == AF_INET) {
            inet_ntop(AF_INET, &((struct sockaddr_in *)a->ai_addr)->sin_addr, addr, sizeof addr);
        } else if (a->ai_family == AF_INET6) {
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)a->ai_addr)->sin6_addr, addr, sizeof addr);
        }
    }
    uv_freeaddrinfo(res);
    if (c->st == ST_CLOSING || gen != c->gen || !c->conn_live) return;
    if (!addr[0]) {
        conn_lost(c, PL_ERR_WEBSOCKET, false); /* name does not resolve */
        return;
    }
    conn_open(c, addr);
}

static void conn_start(pl_relay_client *c) {
    c->gen++;
    c->conn_live = true;
    c->st = ST_CONNECTING;
    c->peer_close_code = 0;
    c->conn_deadline = now_ms(c) + c->connect_timeout;
    c->stats.connect_attempts++;
    arm_at(c, c->conn_deadline);

    unsigned char buf[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, c->url.host, buf) == 1 || inet_pton(AF_INET6, c->url.host, buf) == 1) {
        conn_open(c, c->url.host);
        return;
    }
    /* lws 4.1 as packaged resolves names with a blocking getaddrinfo() on
     * the loop thread; resolve on libuv's thread pool instead. */
    resolve_req *rr = calloc(1, sizeof *rr);
    if (!rr) {
        conn_lost(c, PL_ERR_NOMEM, false);
        return;
    }
    rr->c = c;
    rr->gen = c->gen;
    rr->req.data = rr;
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (uv_getaddrinfo(c->loop, &rr->req, on_resolved, c->url.host, NULL, &hints) != 0) {
        free(rr);
        conn_lost(c, PL_ERR_WEBSOCKET, false);
        return;
    }
    c->resolving++;
    c->gai = &rr->req;
}

/* ------------------------------------------------------------------------ */
/* Incoming frames                                                          */
/* ------------------------------------------------------------------------ */

static void send_reply(pl_relay_client *c, const pl_rpc_id *id, const char *result_json,
                       int64_t err_code, const char *err_msg) {
    char *text = NULL;
    pl_err err = result_json ? pl_rpc_encode_result(&text, id, result_json)
                             : pl_rpc_encode_error(&text, id, err_code, err_msg, NULL);
    if (err == PL_OK) out_push(c, text, strlen(text));
    free(text);
}

static void handle_subscription(pl_relay_client *c, const pl_rpc_msg *m) {
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
    if (!topic || !message || !valid_topic(topic) || !topic_find(c, topic)) {
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
    if (pl__dedup_check(c->dedup, key)) {
        c->stats.duplicates++;
    } else {
        c->stats.delivered++;
        topic_str t;
        memcpy(t, topic, sizeof t);
        c->on_message(c->user_data, t, message, mlen, published_at, tag);
    }
    json_decref(p);
}

static void report(pl_relay_client *c, pl_relay_op op, uint64_t seq, const char *topic,
                   pl_err err, int64_t code) {
    if (c->on_result && c->st != ST_CLOSING) c->on_result(c->user_data, op, seq, topic, err, code);
}

static void handle_result(pl_relay_client *c, req *r, const pl_rpc_msg *m) {
    req_unlink(c, r);
    switch (r->kind) {
    case REQ_PUBLISH: {
        topic_str t;
        memcpy(t, r->topic, sizeof t);
        uint64_t seq = r->seq;
        req_free(r);
        report(c, PL_RELAY_OP_PUBLISH, seq, t, PL_OK, 0);
        return;
    }
    case REQ_SUBSCRIBE:
    case REQ_BATCH_SUBSCRIBE: {
        json_t *res = m->result ? json_loads(m->result, JSON_DECODE_ANY, NULL) : NULL;
        size_t n = r->kind == REQ_SUBSCRIBE ? 1 : r->ntopics;
        for (size_t i = 0; i < n; i++) {
            const char *topic = r->kind == REQ_SUBSCRIBE ? r->topic : r->topics[i];
            const char *sid = r->kind == REQ_SUBSCRIBE
                                  ? json_string_value(res)
                                  : json_string_value(json_array_get(res, i));
            if (!sid) sid = "";
            topic_ent *te = topic_find(c, topic);
            if (te) {
                snprintf(te->sub_id, sizeof te->sub_id, "%s", sid);
            } else if (*sid && strlen(sid) < sizeof te->sub_id) {
                /* Unsubscribed while the subscribe was in flight. */
                send_unsubscribe(c, topic, sid);
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

static void handle_error(pl_relay_client *c, req *r, const pl_rpc_msg *m) {
    if (m->err_code == 3001) {
        /* Rate limited: the request is fine, the timing is not. */
        uint32_t pause = RATE_PAUSE_MS;
        for (unsigned i = 0; i < r->rate_hits && pause < RATE_PAUSE_MAX_MS; i++) pause <<= 1;
        if (pause > RATE_PAUSE_MAX_MS) pause = RATE_PAUSE_MAX_MS;
        r->rate_hits++;
        r->rate_wait = true;
        r->deadline = now_ms(c) + pause;
        arm_at(c, r->deadline);
        return;
    }
    req_unlink(c, r);
    switch (r->kind) {
    case REQ_PUBLISH:
        report(c, PL_RELAY_OP_PUBLISH, r->seq, r->topic, PL_ERR_RELAY, m->err_code);
        break;
    case REQ_SUBSCRIBE:
        report(c, PL_RELAY_OP_SUBSCRIBE, 0, r->topic, PL_ERR_RELAY, m->err_code);
        break;
    case REQ_BATCH_SUBSCRIBE:
        for (size_t i = 0; i < r->ntopics && c->st != ST_CLOSING; i++) {
            report(c, PL_RELAY_OP_SUBSCRIBE, 0, r->topics[i], PL_ERR_RELAY, m->err_code);
        }
        break;
    case REQ_UNSUBSCRIBE:
        report(c, PL_RELAY_OP_UNSUBSCRIBE, 0, r->topic, PL_ERR_RELAY, m->err_code);
        break;
    }
    req_free(r);
}

static void handle_frame(pl_relay_client *c, const char *text, size_t len) {
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
        if (!r || !r->sent) continue;
        if (m->kind == PL_RPC_RESULT) {
            handle_result(c, r, m);
        } else {
            handle_error(c, r, m);
        }
    }
    pl_rpc_msgs_free(msgs, n);
}

static void rx_append(pl_relay_client *c, const void *in, size_t len, bool final) {
    if (!c->rx_discard) {
        if (c->rx_len + len > c->max_frame) {
            /* Too large to take: drop it whole. Not a reason to disconnect:
             * the relay would re-deliver the same message after reconnect. */
            c->rx_discard = true;
            c->rx_len = 0;
        } else {
            if (c->rx_len + len + 1 > c->rx_cap) {
                size_t cap = c->rx_cap ? c->rx_cap : 4096;
                while (cap < c->rx_len + len + 1) cap *= 2;
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
                memcpy(c->rx + c->rx_len, in, len);
                c->rx_len += len;
            }
        }
    }
    if (!final) return;
    if (!c->rx_discard) {
        c->rx[c->rx_len] = '\0';
        handle_frame(c, (const char *)c->rx, c->rx_len);
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
/* libwebsockets callback                                                   */
/* ------------------------------------------------------------------------ */

static bool contains_ci(const char *hay, const char *needle) {
    size_t nl = strlen(needle);
    for (; *hay; hay++) {
        if (strncasecmp(hay, needle, nl) == 0) return true;
    }
    return false;
}

static pl_err classify_connect_error(pl_relay_client *c, struct lws *wsi, const char *why,
                                     bool *fatal) {
    *fatal = false;
    unsigned status = wsi ? lws_http_client_http_response(wsi) : 0;
    if (status == 401 || status == 403) {
        *fatal = true;
        return PL_ERR_RELAY_AUTH;
    }
    if (status != 0) return PL_ERR_WEBSOCKET;
    if (c->url.tls && why &&
        (contains_ci(why, "tls") || contains_ci(why, "ssl") || contains_ci(why, "cert"))) {
        return PL_ERR_TLS;
    }
    return PL_ERR_WEBSOCKET;
}

static int on_writeable(pl_relay_client *c, struct lws *wsi) {
    if (c->ping_wanted) {
        unsigned char buf[LWS_PRE + 1];
        c->ping_wanted = false;
        if (lws_write(wsi, buf + LWS_PRE, 0, LWS_WRITE_PING) < 0) return -1;
        if (c->out_head) lws_callback_on_writable(wsi);
        return 0;
    }
    outframe *f = c->out_head;
    if (!f) return 0;
    c->out_head = f->next;
    if (!c->out_head) c->out_tail = NULL;
    int n = lws_write(wsi, f->buf + LWS_PRE, f->len, LWS_WRITE_TEXT);
    bool ok = n >= 0 && (size_t)n >= f->len;
    free(f);
    if (!ok) return -1;
    if (c->out_head) lws_callback_on_writable(wsi);
    return 0;
}

static int relay_lws_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                        size_t len) {
    (void)user;
    if (!wsi) return 0;
    struct lws_context *ctx = lws_get_context(wsi);
    pl_relay_client *c = ctx ? lws_context_user(ctx) : NULL;
    if (!c) return 0;
    uintptr_t gen = (uintptr_t)lws_get_opaque_user_data(wsi);
    bool current = gen != 0 && gen == c->gen && c->conn_live;

    switch (reason) {
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        if (!current || c->st != ST_CONNECTING) return -1;
        c->wsi = wsi;
        c->st = ST_OPEN;
        c->open_since = c->last_rx = now_ms(c);
        c->ping_sent_at = 0;
        c->stats.connects++;
        arm_at(c, c->last_rx + c->ping_interval);
        resume_after_connect(c);
        notify_state(c, PL_RELAY_CONNECTED, PL_OK);
        return 0;

    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (!current || c->st != ST_OPEN) return 0;
        c->last_rx = now_ms(c);
        c->ping_sent_at = 0;
        if (lws_frame_is_binary(wsi)) return 0; /* the protocol is text only */
        rx_append(c, in, len, lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi));
        return 0;

    case LWS_CALLBACK_CLIENT_RECEIVE_PONG:
        if (current) {
            c->last_rx = now_ms(c);
            c->ping_sent_at = 0;
        }
        return 0;

    case LWS_CALLBACK_CLIENT_WRITEABLE:
        if (!current || c->st != ST_OPEN) return 0;
        return on_writeable(c, wsi);

    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (current && in && len >= 2) {
            const unsigned char *p = in;
            c->peer_close_code = (int)p[0] << 8 | p[1];
        }
        return 0;

    case LWS_CALLBACK_TIMER:
        /* Our own graceful close (pl_relay_client_close): closing from a
         * timer callback sends the close frame under libuv, unlike from
         * WRITEABLE (see docs/relay-client.md). */
        if (c->st == ST_CLOSING) {
            static const char bye[] = "bye";
            lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, (unsigned char *)bye, sizeof bye - 1);
            return -1;
        }
        return 0;

    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR: {
        if (c->st == ST_CLOSING && gen == c->gen) c->wsi = NULL;
        if (!current || c->st == ST_CLOSING) return 0;
        bool fatal;
        pl_err err = classify_connect_error(c, wsi, in ? (const char *)in : NULL, &fatal);
        conn_lost(c, err, fatal);
        return 0;
    }

    case LWS_CALLBACK_CLIENT_CLOSED:
        if (c->st == ST_CLOSING && gen == c->gen) c->wsi = NULL;
        if (!current || c->st == ST_CLOSING) return 0;
        if (c->peer_close_code == 3000) {
            conn_lost(c, PL_ERR_RELAY_AUTH, true);
        } else {
            conn_lost(c, PL_ERR_DISCONNECTED, false);
        }
        return 0;

    case LWS_CALLBACK_WSI_DESTROY:
        if (gen != 0 && gen == c->gen) {
            c->wsi = NULL;
            /* Safety net: a connection that vanished without CLOSED or
             * CONNECTION_ERROR still gets a reconnect. */
            if (c->conn_live && c->st != ST_CLOSING) conn_lost(c, PL_ERR_WEBSOCKET, false);
        }
        return 0;

    default:
        return 0;
    }
}

static const struct lws_protocols relay_protocols[] = {
    {PROTOCOL_NAME, relay_lws_cb, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ------------------------------------------------------------------------ */
/* Deadlines                                                                */
/* ------------------------------------------------------------------------ */

static void on_tick(uv_timer_t *t);

static void arm_at(pl_relay_client *c, uint64_t due) {
    if (c->st == ST_CLOSING || due >= c->timer_due) return;
    c->timer_due = due;
    uint64_t now = now_ms(c);
    /* At least 1 ms: libuv 1.44 runs a timer re-armed with 0 from its own
     * callback again in the same pass, forever. */
    uv_timer_start(&c->timer, on_tick, due > now ? due - now : 1, 0);
}

/* Publishes whose TTL ran out are useless to the relay: report and drop. */
static void expire_publishes(pl_relay_client *c, uint64_t now) {
    req *r = c->req_head;
    while (r && c->st != ST_CLOSING) {
        req *n = r->next;
        if (r->kind == REQ_PUBLISH && now >= r->expires) {
            req_unlink(c, r);
            topic_str t;
            memcpy(t, r->topic, sizeof t);
            uint64_t seq = r->seq;
            req_free(r);
            report(c, PL_RELAY_OP_PUBLISH, seq, t, PL_ERR_TIMEOUT, 0);
        }
        r = n;
    }
}

static void on_tick(uv_timer_t *t) {
    pl_relay_client *c = t->data;
    uint64_t now = now_ms(c);
    c->timer_due = UINT64_MAX;
    if (c->st == ST_CLOSING) return;

    expire_publishes(c, now);

    switch (c->st) {
    case ST_BACKOFF:
        if (now >= c->backoff_at) conn_start(c);
        break;
    case ST_CONNECTING:
        if (now >= c->conn_deadline) conn_kill(c, PL_ERR_TIMEOUT);
        break;
    case ST_OPEN:
        if (c->ping_sent_at != 0 && now >= c->ping_sent_at + c->ping_timeout) {
            conn_kill(c, PL_ERR_TIMEOUT);
            break;
        }
        if (c->ping_sent_at == 0 && now >= c->last_rx + c->ping_interval) {
            c->ping_sent_at = now;
            c->ping_wanted = true;
            if (c->wsi) lws_callback_on_writable(c->wsi);
        }
        for (req *r = c->req_head; r && c->st == ST_OPEN; r = r->next) {
            if (!r->sent && !r->rate_wait) continue;
            if (now < r->deadline) continue;
            if (!r->rate_wait && ++r->timeouts >= MAX_REQUEST_TIMEOUTS) {
                conn_kill(c, PL_ERR_TIMEOUT);
                break;
            }
            c->stats.resent++;
            req_send(c, r);
        }
        break;
    default:
        break;
    }
    if (c->st == ST_CLOSING) return;

    /* Re-arm at the earliest remaining deadline. */
    uint64_t due = UINT64_MAX;
    if (c->st == ST_BACKOFF) due = c->backoff_at;
    if (c->st == ST_CONNECTING) due = c->conn_deadline;
    if (c->st == ST_OPEN) {
        due = c->ping_sent_at ? c->ping_sent_at + c->ping_timeout : c->last_rx + c->ping_interval;
    }
    for (req *r = c->req_head; r; r = r->next) {
        if (r->kind == REQ_PUBLISH && r->expires < due) due = r->expires;
        if (c->st == ST_OPEN && (r->sent || r->rate_wait) && r->deadline < due) due = r->deadline;
    }
    if (due != UINT64_MAX) arm_at(c, due);
}

/* ------------------------------------------------------------------------ */
/* Public API                                                               */
/* ------------------------------------------------------------------------ */

/* lws's static uv handles (its idle and timer) are closed only after every
 * connection's handle is, and the second lws_context_destroy() may only run
 * once they are gone. They are the handles lws_create_context() added to the
 * loop; libuv appends new handles at the end of its handle queue, which
 * uv_walk() follows, so they are the last ones after creation. Comparing
 * addresses only, we never read a field of the application's handles. */
typedef struct walk_arg {
    size_t idx, skip;
    uv_handle_t *const *want;
    size_t nwant;
    uv_handle_t **rec;
    size_t nrec;
    bool found;
} walk_arg;

static void count_cb(uv_handle_t *h, void *arg) {
    (void)h;
    ((walk_arg *)arg)->idx++;
}

static void record_cb(uv_handle_t *h, void *arg) {
    walk_arg *w = arg;
    if (w->idx++ >= w->skip && w->nrec < LWS_STATIC_HANDLES_MAX) w->rec[w->nrec++] = h;
}

static void find_cb(uv_handle_t *h, void *arg) {
    walk_arg *w = arg;
    for (size_t i = 0; i < w->nwant; i++) {
        if (h == w->want[i]) w->found = true;
    }
}

static bool url_safe_token(const char *s, bool jwt) {
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (isalnum(ch) || ch == '-' || ch == '_' || ch == '.') continue;
        if (!jwt && ch == '~') continue;
        return false;
    }
    return true;
}

/* The client's own TLS context, handed to lws as provided_client_ssl_ctx.
 * lws 4.1.6 keeps the ex-data index that finds its own client SSL_CTX in a
 * process global that every new context overwrites, so with several
 * clients in a process it cannot find (and leaks) the SSL_CTX of all but
 * the newest context. Owning it avoids that. lws still sets SSL_VERIFY_PEER
 * and the host name / IP check on every connection. */
static pl_err make_ssl_ctx(SSL_CTX **out, const char *ca_file) {
    *out = NULL;
    SSL_CTX *t = SSL_CTX_new(TLS_client_method());
    if (!t) return pl__fail(PL_ERR_TLS, (long)ERR_get_error());
    pl_err err = PL_OK;
    if (SSL_CTX_set_min_proto_version(t, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_default_verify_paths(t) != 1) {
        err = pl__fail(PL_ERR_TLS, (long)ERR_get_error());
    } else if (ca_file && SSL_CTX_load_verify_locations(t, ca_file, NULL) != 1) {
        err = pl__fail(PL_ERR_TLS, (long)ERR_get_error());
    }
    ERR_clear_error();
    if (err != PL_OK) {
        SSL_CTX_free(t);
        return err;
    }
    SSL_CTX_set_verify(t, SSL_VERIFY_PEER, NULL);
    *out = t;
    return PL_OK;
}

static void client_free(pl_relay_client *c) {
    if (!c) return;
    out_clear(c);
    req *r = c->req_head;
    while (r) {
        req *n = r->next;
        req_free(r);
        r = n;
    }
    free(c->rx);
    free(c->topics);
    pl__dedup_free(c->dedup);
    free(c->url_str);
    free(c->project_id);
    free(c->ca_file);
    free(c->jwt_fixed);
    SSL_CTX_free(c->ssl_ctx); /* after the lws context: it used it */
    sodium_memzero(c->seed, sizeof c->seed);
    free(c);
}

#define OPT(v, d) ((v) ? (v) : (d))

pl_err pl_relay_client_new(pl_relay_client **out, uv_loop_t *loop,
                           const pl_relay_client_opts *opts) {
    PL_REQUIRE(out != NULL);
    *out = NULL;
    PL_REQUIRE(loop != NULL);
    PL_REQUIRE(opts != NULL);
    PL_REQUIRE(opts->seed != NULL);
    PL_REQUIRE(opts->on_message != NULL);

    pl__relay_url url;
    PL_TRY(pl__relay_url_parse(&url, opts->url));
    if (opts->project_id && (strlen(opts->project_id) > PL_RELAY_PROJECT_ID_MAX ||
                             !url_safe_token(opts->project_id, false))) {
        return PL_ERR_INVALID_ARG;
    }
    if (opts->jwt && (strnlen(opts->jwt, PL_JWT_MAX_LEN + 1) > PL_JWT_MAX_LEN ||
                      !url_safe_token(opts->jwt, true))) {
        return PL_ERR_INVALID_ARG;
    }
    pl_relay_client *c = calloc(1, sizeof *c);
    if (!c) return PL_ERR_NOMEM;
    c->loop = loop;
    c->url = url;
    c->url_str = strdup(opts->url);
    c->project_id = opts->project_id ? strdup(opts->project_id) : NULL;
    c->ca_file = opts->ca_file ? strdup(opts->ca_file) : NULL;
    c->jwt_fixed = opts->jwt ? strdup(opts->jwt) : NULL;
    if (!c->url_str || (opts->project_id && !c->project_id) || (opts->ca_file && !c->ca_file) ||
        (opts->jwt && !c->jwt_fixed)) {
        client_free(c);
        return PL_ERR_NOMEM;
    }
    memcpy(c->seed, opts->seed, sizeof c->seed);
    uint8_t pub[PL_ED25519_PUB_BYTES];
    pl_ed25519_public(pub, c->seed);
    pl_err err = pl_did_key_encode(c->did, pub);
    if (err != PL_OK) {
        client_free(c);
        return err;
    }
    c->on_message = opts->on_message;
    c->on_state = opts->on_state;
    c->on_result = opts->on_result;
    c->user_data = opts->user_data;
    c->connect_timeout = OPT(opts->connect_timeout_ms, DEF_CONNECT_TIMEOUT);
    c->request_timeout = OPT(opts->request_timeout_ms, DEF_REQUEST_TIMEOUT);
    c->reconnect_min = OPT(opts->reconnect_min_ms, DEF_RECONNECT_MIN);
    c->reconnect_max = OPT(opts->reconnect_max_ms, DEF_RECONNECT_MAX);
    if (c->reconnect_max < c->reconnect_min) c->reconnect_max = c->reconnect_min;
    c->ping_interval = OPT(opts->ping_interval_ms, DEF_PING_INTERVAL);
    c->ping_timeout = OPT(opts->ping_timeout_ms, DEF_PING_TIMEOUT);
    c->max_queue = OPT(opts->max_queue, DEF_MAX_QUEUE);
    c->max_queue_bytes = OPT(opts->max_queue_bytes, DEF_MAX_QUEUE_BYTES);
    c->max_topics = OPT(opts->max_topics, DEF_MAX_TOPICS);
    c->max_frame = OPT(opts->max_frame_bytes, DEF_MAX_FRAME);
    c->timer_due = UINT64_MAX;
    err = pl__dedup_new(&c->dedup, OPT(opts->dedup_capacity, DEF_DEDUP));
    /* A bad ca_file is reported even for ws://: the option is wrong. */
    if (err == PL_OK && (url.tls || c->ca_file)) err = make_ssl_ctx(&c->ssl_ctx, c->ca_file);
    if (err != PL_OK) {
        client_free(c);
        return err;
    }
    /* The first token is signed now so that a seed or URL the JWT code
     * refuses is reported here rather than as an endless reconnect. */
    if (!c->jwt_fixed) {
        char *probe = NULL;
        err = pl_jwt_sign(&probe, c->seed, "00", c->url_str, wall_ms() / 1000, PL_JWT_DEFAULT_TTL);
        free(probe);
        if (err != PL_OK) {
            client_free(c);
            return err;
        }
    }

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    c->foreign_loops[0] = loop;
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = relay_protocols;
    info.options = LWS_SERVER_OPTION_LIBUV;
    if (url.tls) info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.foreign_loops = c->foreign_loops;
    info.pcontext = &c->lws;
    info.user = c;
    if (url.tls) info.provided_client_ssl_ctx = c->ssl_ctx;
    info.max_http_header_data = 8192;
    /* A small fd table: one socket (two while an old one dies) plus lws's
     * own pipe. Without it lws sizes its tables by RLIMIT_NOFILE. */
    info.fd_limit_per_thread = 16;
    info.timeout_secs = (c->connect_timeout + 999) / 1000 + 5; /* ours fires first */
    walk_arg w = {0};
    uv_walk(loop, count_cb, &w);
    c->lws = lws_create_context(&info);
    if (!c->lws) {
        client_free(c);
        return PL_ERR_WEBSOCKET;
    }
    w.skip = w.idx;
    w.idx = 0;
    w.rec = c->lws_handles;
    uv_walk(loop, record_cb, &w);
    c->n_lws_handles = w.nrec;
    uv_timer_init(loop, &c->timer);
    uv_timer_init(loop, &c->close_timer);
    c->timer.data = c;
    c->close_timer.data = c;
    c->handles_open = 2;
    /* Connect from the loop, so no callback runs inside this function. */
    c->st = ST_BACKOFF;
    c->backoff_at = now_ms(c);
    arm_at(c, c->backoff_at);
    *out = c;
    return PL_OK;
}

pl_err pl_relay_client_publish(pl_relay_client *c, const char *topic, const char *message,
                               const pl_publish_opts *opts, uint64_t *seq) {
    PL_REQUIRE(c != NULL);
    if (seq) *seq = 0;
    if (c->st == ST_CLOSING || c->st == ST_FAILED) return PL_ERR_STATE;
    if (!valid_topic(topic) || !message) return PL_ERR_INVALID_ARG;
    size_t mlen = strnlen(message, PL_RELAY_MESSAGE_MAX + 1);
    if (mlen > PL_RELAY_MESSAGE_MAX) return PL_ERR_TOO_LARGE;
    uint32_t ttl = opts ? opts->ttl : DEF_TTL;
    uint32_t tag = opts ? opts->tag : 0;
    if (ttl == 0) return PL_ERR_INVALID_ARG;
    json_t *m = json_stringn(message, mlen);
    if (!m) return PL_ERR_INVALID_ARG; /* not UTF-8 */
    if (c->pub_count >= c->max_queue || c->pub_bytes + mlen > c->max_queue_bytes) {
        json_decref(m);
        return PL_ERR_TOO_LARGE;
    }
    json_t *params = json_pack("{s:s,s:o,s:I,s:I}", "topic", topic, "message", m, "ttl",
                               (json_int_t)ttl, "tag", (json_int_t)tag);
    if (params && opts && opts->prompt) json_object_set_new(params, "prompt", json_true());
    req *r;
    PL_TRY(req_new(&r, c, REQ_PUBLISH, "irn_publish", params));
    memcpy(r->topic, topic, sizeof r->topic);
    r->seq = ++c->next_seq;
    r->msg_bytes = mlen;
    r->expires = now_ms(c) + (uint64_t)ttl * 1000;
    req_link(c, r);
    c->pub_count++;
    c->pub_bytes += mlen;
    arm_at(c, r->expires);
    if (c->st == ST_OPEN) req_send(c, r);
    if (seq) *seq = r->seq;
    return PL_OK;
}

pl_err pl_relay_client_subscribe(pl_relay_client *c, const char *topic) {
    PL_REQUIRE(c != NULL);
    if (c->st == ST_CLOSING) return PL_ERR_STATE;
    if (!valid_topic(topic)) return PL_ERR_INVALID_ARG;
    if (topic_find(c, topic)) return PL_OK;
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
    if (c->st == ST_OPEN) PL_TRY(send_subscribe(c, topic));
    c->ntopics++;
    return PL_OK;
}

pl_err pl_relay_client_unsubscribe(pl_relay_client *c, const char *topic) {
    PL_REQUIRE(c != NULL);
    if (c->st == ST_CLOSING) return PL_ERR_STATE;
    if (!valid_topic(topic)) return PL_ERR_INVALID_ARG;
    topic_ent *te = topic_find(c, topic);
    if (!te) return PL_OK;
    pl_err err = PL_OK;
    /* Without a subscription id the subscribe is still in flight: its
     * result finds the topic gone and unsubscribes then. */
    if (c->st == ST_OPEN && te->sub_id[0]) err = send_unsubscribe(c, topic, te->sub_id);
    if (err != PL_OK) return err;
    *te = c->topics[c->ntopics - 1];
    c->ntopics--;
    return PL_OK;
}

static pl_err tr_publish(void *ctx, const char *topic, const char *message,
                         const pl_publish_opts *opts) {
    return pl_relay_client_publish(ctx, topic, message, opts, NULL);
}
static pl_err tr_subscribe(void *ctx, const char *topic) {
    return pl_relay_client_subscribe(ctx, topic);
}
static pl_err tr_unsubscribe(void *ctx, const char *topic) {
    return pl_relay_client_unsubscribe(ctx, topic);
}

pl_transport pl_relay_client_transport(pl_relay_client *c) {
    PL_REQUIRE(c != NULL);
    pl_transport t = {c, tr_publish, tr_subscribe, tr_unsubscribe};
    return t;
}

bool pl_relay_client_connected(const pl_relay_client *c) {
    PL_REQUIRE(c != NULL);
    return c->st == ST_OPEN;
}

size_t pl_relay_client_pending(const pl_relay_client *c) {
    PL_REQUIRE(c != NULL);
    return c->pub_count;
}

const char *pl_relay_client_did(const pl_relay_client *c) {
    PL_REQUIRE(c != NULL);
    return c->did;
}

void pl_relay_client_get_stats(const pl_relay_client *c, pl_relay_client_stats *out) {
    PL_REQUIRE(c != NULL && out != NULL);
    *out = c->stats;
}

/* ------------------------------------------------------------------------ */
/* Close                                                                    */
/* ------------------------------------------------------------------------ */

static void finish_close(pl_relay_client *c) {
    pl_relay_closed_cb cb = c->on_closed;
    void *ud = c->user_data;
    /* Cancelled publishes are reported after close() returned, as libuv
     * reports cancelled writes before the close callback. */
    if (c->on_result) {
        for (req *r = c->req_head; r; r = r->next) {
            if (r->kind == REQ_PUBLISH) {
                c->on_result(ud, PL_RELAY_OP_PUBLISH, r->seq, r->topic, PL_ERR_CANCELLED, 0);
            }
        }
    }
    client_free(c);
    if (cb) cb(ud);
}

static void on_handle_closed(uv_handle_t *h) {
    pl_relay_client *c = h->data;
    if (--c->handles_open == 0) finish_close(c);
}

static void on_close_tick(uv_timer_t *t) {
    pl_relay_client *c = t->data;
    switch (c->cphase) {
    case CP_WAIT_WS:
        if (c->wsi && now_ms(c) < c->close_deadline) return;
        c->cphase = CP_DESTROY;
        /* fall through */
    case CP_DESTROY:
        /* Outside any lws callback: this is our own timer. */
        lws_context_destroy(c->lws);
        c->cphase = CP_POLL;
        return;
    case CP_POLL:
        if (c->lws) {
            walk_arg w = {0};
            w.want = c->lws_handles;
            w.nwant = c->n_lws_handles;
            uv_walk(c->loop, find_cb, &w);
            if (w.found) return;
            /* Nothing recorded (another lws build?): give its closes a
             * few loop turns. */
            if (c->n_lws_handles == 0 && c->close_ticks++ < 20) return;
            lws_context_destroy(c->lws); /* the second call frees it */
            if (c->lws) return;          /* not yet: try on the next tick */
        }
        if (c->resolving) return; /* a cancelled lookup still reports back */
        uv_timer_stop(&c->timer);
        uv_timer_stop(&c->close_timer);
        c->cphase = CP_HANDLES;
        uv_close((uv_handle_t *)&c->timer, on_handle_closed);
        uv_close((uv_handle_t *)&c->close_timer, on_handle_closed);
        return;
    case CP_HANDLES:
        return;
    }
}

void pl_relay_client_close(pl_relay_client *c, pl_relay_closed_cb on_closed) {
    PL_REQUIRE(c != NULL);
    PL_REQUIRE(c->st != ST_CLOSING);
    conn_state prev = c->st;
    c->st = ST_CLOSING;
    c->on_closed = on_closed;
    uv_timer_stop(&c->timer);
    c->timer_due = UINT64_MAX;
    if (c->gai) uv_cancel((uv_req_t *)c->gai);
    if (prev == ST_OPEN && c->wsi) {
        /* Graceful: the close frame goes out from LWS_CALLBACK_TIMER. */
        lws_set_timer_usecs(c->wsi, 1);
        lws_cancel_service(c->lws); /* see conn_kill */
        c->cphase = CP_WAIT_WS;
        c->close_deadline = now_ms(c) + CLOSE_GRACE_MS;
    } else {
        c->cphase = CP_DESTROY;
    }
    uv_timer_start(&c->close_timer, on_close_tick, 0, 5);
}
