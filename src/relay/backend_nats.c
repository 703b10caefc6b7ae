/* SPDX-License-Identifier: Apache-2.0 */
/* The NATS JetStream backend of the relay (--cluster): see relay_backend.h
 * and docs/relay.md "Cluster". */
#include "relay/relay_backend.h"

#include "core/internal.h"

#ifdef PL_HAVE_NATS

#include "core/htable.h"
#include "pairlink/codec.h"
#include "pairlink/crypto.h"
#include "pairlink/hash.h"
#include "relay/cluster_ctl.h"
#include "relay/ws_server.h"

#include <jansson.h>
#include <limits.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* TTL classes: NATS 2.9 has no per-message TTL, so a message goes to the
 * stream of the smallest class that holds its ttl (MaxAge), and the relay
 * hides it at its own expiry (the record carries it). */
static const struct ttl_class {
    const char *name;
    int64_t seconds;
} classes[] = {{"5m", 300}, {"1h", 3600}, {"1d", 86400}, {"7d", 604800}, {"30d", 2592000}};
#define NCLASSES (sizeof classes / sizeof classes[0])

#define MAX_WORKERS 16
#define MAX_INFLIGHT 16384 /* puts and loads queued or out, all workers */
/* Bytes of the puts out: their records are held for the retries, outside
 * the core's budget (which counts the cached message once). */
#define MAX_INFLIGHT_BYTES ((size_t)64 << 20)
#define REQ_WAIT_MS 2000   /* one JetStream request */
#define CLAIM_WAIT_MS 1500 /* an instance holding our id answers within it (loaded machines) */
#define RETRY_PAUSE_MS 100 /* between tries while the cluster elects a leader */
#define RECORD_OVERHEAD 4096
#define REFUSED_BIT (UINT64_C(1) << 63) /* a RES_PUT for a put refused in apply */
/* Presence and rooms: relay/cluster_ctl.h (the plane). A newcomer says
 * hello and collects the answers for HELLO_MS before it serves. */
#define HELLO_MS 300
#define OPS_TICK_MS 50
/* The system's CAs (Debian's ca-certificates), for tls:// without
 * --cluster-ca. */
#define SYSTEM_CA_FILE "/etc/ssl/certs/ca-certificates.crt"
#define REF_SEQ_MASK ((UINT64_C(1) << 56) - 1) /* store_ref: class + 1 << 56 | seq */

enum { JOB_LOAD };
enum { RES_PUT, RES_LIVE, RES_LOADED, RES_LOG, RES_RESYNC, RES_CTL, RES_REPLY };
enum { CTL_HB, CTL_HELLO, CTL_BYE, CTL_ROOM, CTL_EVICT };

typedef struct job {
    struct job *next;
    int kind;
    uint64_t put_id;
    char topic[PL_RELAY_TOPIC_HEX + 1];
    char subj[96];
    char msgid[PL_RELAY_TOPIC_HEX + PL_RELAY_ID_HEX + 2];
    char *data;
    size_t len;
    int64_t queued; /* monotonic ms */
} job;

typedef struct result {
    struct result *next;
    int kind;
    uint64_t put_id; /* REPLY: the token after the inbox */
    uint64_t ref;    /* PUT, LIVE: where the store keeps it (0: unknown) */
    pl_err err;
    char topic[PL_RELAY_TOPIC_HEX + 1];
    /* LIVE: one record; LOADED: records, each "%016llx" ref then JSON,
     * NUL-terminated; CTL, REPLY: the message */
    char *data;
    size_t len;
    size_t nrecs;
    int level;
    int ctl;         /* CTL_* */
    char reply[128]; /* CTL: where to answer */
    char line[200];
} result;

typedef struct worker {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job *head, *tail;
    bool quit, started;
    struct nats_backend *b;
} worker;

/* A put on its way (loop thread): kept until JetStream acknowledged it,
 * for the retries. */
typedef struct pput {
    pl__hnode hnode;
    uint64_t put_id;
    int64_t deadline; /* monotonic ms: then it is answered PL_ERR_CLUSTER */
    int64_t retry_at; /* on the retry list: when */
    int tries;
    struct pput *rnext;
    char subj[96];
    char msgid[PL_RELAY_TOPIC_HEX + PL_RELAY_ID_HEX + 2];
    char *data;
    size_t len;
} pput;

/* Loop-thread state of a topic the core watches or loads. */
typedef struct tstate {
    pl__hnode hnode;
    char topic[PL_RELAY_TOPIC_HEX + 1];
    natsSubscription *sub;
    bool loading;
    result *buf_head, *buf_tail; /* live messages that came during the load */
    /* Deletes (EVICT) out: the topic's puts wait for them, so that the
     * store's own per-subject limit never refuses the message that the
     * eviction made room for. */
    size_t dels;
    struct pput *held_head, *held_tail;
} tstate;

/* A delete of the store out. */
typedef struct del {
    struct del *next;
    uint64_t token;
    char topic[PL_RELAY_TOPIC_HEX + 1];
    int64_t deadline;
} del;

/* What /metrics shows of the cluster (pl__relay_backend_stats). */
typedef struct nstats {
    uint64_t puts, put_failures, put_retries, loads, load_failures, live, resyncs;
    uint64_t rooms, rooms_failed, rooms_answered, evictions, evicted_by_others, delete_failures;
} nstats;

typedef struct nats_backend {
    pl__relay_backend base;
    pl__relay_backend_sink sink;
    uv_loop_t *loop;
    uv_async_t async;
    bool async_open;
    natsOptions *nopts;
    natsConnection *nc;
    jsCtx *js;
    char instance[64];
    int64_t retry_ms;
    int nworkers;
    worker w[MAX_WORKERS];
    pthread_mutex_t mu; /* results, closed */
    result *res_head, *res_tail;
    bool closed;           /* the async handle is closing: results are dropped */
    size_t inflight;       /* loop thread: puts and loads out */
    size_t inflight_bytes; /* loop thread: bytes of the puts out */
    size_t max_mailbox;    /* a load reads at most this many per class */
    pl__htable topics;
    pl__htable puts;               /* put_id -> pput */
    natsSubscription *advisories;  /* stream leader elections */
    natsSubscription *claim;       /* answers whoever else starts with our instance id */
    char claim_nonce[33];          /* our own claim's request, not answered */
    pput *retry_head, *retry_tail; /* puts to send again, in order */
    uv_timer_t retry_timer;
    bool timer_open;
    _Atomic bool stopping;          /* read by the load threads */
    _Atomic int64_t load_failed_at; /* monotonic ms of the last failed read (load threads) */
    natsSubscription *ctl;          /* PAIRLINK.CTL.>: presence, rooms, evictions */
    natsSubscription *replies;      /* <inbox>.*: answers to our rooms and deletes */
    char inbox[96];
    pl__relay_plane *plane; /* who is here, our rooms out */
    bool overflow_said;     /* the "too many instances" warning was logged */
    del *dels;
    uint64_t next_token;
    uv_timer_t hb_timer, ops_timer;
    bool hb_open, ops_open;
    /* libnats calls our handlers from its threads, and may do so once more
     * after a subscription or the connection is closed: b is freed only
     * when every subscription said it is done (natsSubscription_SetOnCompleteCB)
     * and the connection said it is closed. */
    pthread_mutex_t gate_mu;
    pthread_cond_t gate_cv;
    int live_subs;
    bool nc_closed;

    nstats st;
} nats_backend;

static void blog(nats_backend *b, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void blog(nats_backend *b, int level, const char *fmt, ...) {
    if (!b->sink.log) return;
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    b->sink.log(b->sink.ud, level, line);
}

/* A URL fit for a log line: a user and password (SCHEME://USER:PASS@...)
 * are left out. */
static void show_url(const char *in, char *out, size_t cap) {
    const char *s = strstr(in, "://");
    const char *at = s ? strchr(s + 3, '@') : NULL, *slash = s ? strchr(s + 3, '/') : NULL;
    if (at && (!slash || at < slash))
        snprintf(out, cap, "%.*s***@%s", (int)(s + 3 - in), in, at + 1);
    else
        snprintf(out, cap, "%s", in);
}

static int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- results: any thread -> loop thread ------------------------------------- */

static void post(nats_backend *b, result *r) {
    pthread_mutex_lock(&b->mu);
    if (b->closed) {
        pthread_mutex_unlock(&b->mu);
        free(r->data);
        free(r);
        return;
    }
    if (b->res_tail)
        b->res_tail->next = r;
    else
        b->res_head = r;
    b->res_tail = r;
    uv_async_send(&b->async); /* under the lock: the handle cannot close meanwhile */
    pthread_mutex_unlock(&b->mu);
}

static void post_log(nats_backend *b, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void post_log(nats_backend *b, int level, const char *fmt, ...) {
    result *r = calloc(1, sizeof *r);
    if (!r) return;
    r->kind = RES_LOG;
    r->level = level;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->line, sizeof r->line, fmt, ap);
    va_end(ap);
    post(b, r);
}

/* ---- libnats handlers: counted, so that b outlives them ---------------------------- */

static void on_sub_complete(void *closure) {
    nats_backend *b = closure;
    pthread_mutex_lock(&b->gate_mu);
    b->live_subs--;
    pthread_cond_broadcast(&b->gate_cv);
    pthread_mutex_unlock(&b->gate_mu);
}

static void on_closed(natsConnection *nc, void *closure) {
    (void)nc;
    nats_backend *b = closure;
    pthread_mutex_lock(&b->gate_mu);
    b->nc_closed = true;
    pthread_cond_broadcast(&b->gate_cv);
    pthread_mutex_unlock(&b->gate_mu);
}

/* An asynchronous subscription whose end is counted (see gate_mu). */
static natsStatus subscribe(nats_backend *b, natsSubscription **out, const char *subj,
                            natsMsgHandler cb) {
    natsStatus s = natsConnection_Subscribe(out, b->nc, subj, cb, b);
    if (s != NATS_OK) return s;
    pthread_mutex_lock(&b->gate_mu);
    b->live_subs++;
    pthread_mutex_unlock(&b->gate_mu);
    s = natsSubscription_SetOnCompleteCB(*out, on_sub_complete, b);
    if (s != NATS_OK) { /* closed already: it will not call back */
        pthread_mutex_lock(&b->gate_mu);
        b->live_subs--;
        pthread_mutex_unlock(&b->gate_mu);
    }
    return NATS_OK;
}

/* ---- records <-> JSON ------------------------------------------------------ */

/* The stored form of a record: the message and everything the protocol
 * shows of it, its exact expiry, and who published it (did:key, or this
 * instance and connection when anonymous, so that its own subscription
 * never gets it back). */
static char *record_json(const nats_backend *b, const pl__relay_record *r, uint64_t conn,
                         size_t *len) {
    json_t *j = json_object();
    if (!j) return NULL;
    json_object_set_new(j, "m", json_stringn(r->message, r->message_len));
    if (r->attestation) json_object_set_new(j, "a", json_string(r->attestation));
    json_object_set_new(j, "p", json_integer(r->published_at_ms));
    json_object_set_new(j, "e", json_integer(r->expires_at_ms));
    json_object_set_new(j, "t", json_integer(r->tag));
    if (r->publisher[0]) json_object_set_new(j, "u", json_string(r->publisher));
    json_object_set_new(j, "i", json_string(b->instance));
    json_object_set_new(j, "k", json_integer((json_int_t)conn));
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (s) *len = strlen(s);
    return s;
}

/* Parse a stored record of topic into r (borrowing from *root, which the
 * caller decrefs); *conn: the local publisher, if it was this instance. */
static pl_err record_parse(const nats_backend *b, const char *topic, const char *data, size_t len,
                           json_t **root, pl__relay_record *r, uint64_t *conn) {
    *root = NULL;
    *conn = 0;
    memset(r, 0, sizeof *r);
    json_t *j = json_loadb(data, len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(j)) goto bad;
    json_t *m = json_object_get(j, "m"), *a = json_object_get(j, "a"), *u = json_object_get(j, "u");
    json_t *i = json_object_get(j, "i"), *k = json_object_get(j, "k");
    if (!json_is_string(m) || !json_is_integer(json_object_get(j, "p")) ||
        !json_is_integer(json_object_get(j, "e")) || (a && !json_is_string(a)) ||
        (u && (!json_is_string(u) || json_string_length(u) >= sizeof r->publisher)))
        goto bad;
    memcpy(r->topic, topic, PL_RELAY_TOPIC_HEX);
    r->message = (char *)json_string_value(m);
    r->message_len = json_string_length(m);
    r->attestation = a ? (char *)json_string_value(a) : NULL;
    r->published_at_ms = json_integer_value(json_object_get(j, "p"));
    r->expires_at_ms = json_integer_value(json_object_get(j, "e"));
    r->tag = json_integer_value(json_object_get(j, "t"));
    if (u) memcpy(r->publisher, json_string_value(u), json_string_length(u) + 1);
    if (!u && json_is_string(i) && !strcmp(json_string_value(i), b->instance) && json_is_integer(k))
        *conn = (uint64_t)json_integer_value(k);
    *root = j;
    return PL_OK;
bad:
    json_decref(j);
    return PL_ERR_JSON;
}

static size_t class_of(int64_t ttl_ms) {
    for (size_t i = 0; i < NCLASSES; i++)
        if (ttl_ms <= classes[i].seconds * 1000) return i;
    return NCLASSES - 1;
}

/* ---- worker threads: blocking JetStream calls ------------------------------------ */

/* One MSG.GET on the stream leader (consistent, unlike a direct get from a
 * replica that may lag): the first message of subj after seq. 1: found
 * (*out set, *seq moved), 0: none, -1: failure. */
static int msg_get(nats_backend *b, const char *stream, const char *subj, uint64_t *seq, char **out,
                   size_t *outlen) {
    char api[128], req[192];
    snprintf(api, sizeof api, "$JS.API.STREAM.MSG.GET.%s", stream);
    snprintf(req, sizeof req, "{\"seq\":%llu,\"next_by_subj\":\"%s\"}",
             (unsigned long long)(*seq + 1), subj);
    natsMsg *reply = NULL;
    natsStatus s = natsConnection_RequestString(&reply, b->nc, api, req, REQ_WAIT_MS);
    if (s != NATS_OK) return -1;
    json_t *j = json_loadb(natsMsg_GetData(reply), (size_t)natsMsg_GetDataLength(reply), 0, NULL);
    natsMsg_Destroy(reply);
    int rc = -1;
    json_t *err = json_object_get(j, "error"), *msg = json_object_get(j, "message");
    if (err) {
        rc = json_integer_value(json_object_get(err, "code")) == 404 ? 0 : -1;
    } else if (json_is_object(msg)) {
        json_t *d = json_object_get(msg, "data"), *sq = json_object_get(msg, "seq");
        if (json_is_string(d) && json_is_integer(sq)) {
            size_t cap = json_string_length(d) / 4 * 3 + 3;
            uint8_t *buf = malloc(cap + 1);
            size_t n = 0;
            if (buf && pl_base64_decode_public(buf, cap, &n, json_string_value(d),
                                               json_string_length(d), PL_B64_STD) == PL_OK) {
                buf[n] = '\0';
                *out = (char *)buf;
                *outlen = n;
                *seq = (uint64_t)json_integer_value(sq);
                rc = 1;
            } else {
                free(buf);
            }
        }
    }
    json_decref(j);
    return rc;
}

static void do_load(nats_backend *b, job *jb, result *r) {
    size_t cap = 0, used = 0, n = 0;
    char *all = NULL;
    int64_t start = mono_ms(), until = start + b->retry_ms;
    /* Queued longer than a load may try while reads fail (no quorum): it
     * fails at once instead of trying retry_ms more, so that what waits
     * behind a backlog of failing loads (a resync of many topics) hears
     * within about retry_ms. A healthy but busy cluster (no failure since
     * it was queued) is waited for. */
    if (start >= jb->queued + b->retry_ms && atomic_load(&b->load_failed_at) >= jb->queued) {
        r->err = PL_ERR_CLUSTER;
        return;
    }
    for (size_t c = 0; c < NCLASSES; c++) {
        char stream[32], subj[96];
        snprintf(stream, sizeof stream, "PAIRLINK_%s", classes[c].name);
        snprintf(subj, sizeof subj, "irn.%s.%s", classes[c].name, jb->topic);
        uint64_t seq = 0;
        size_t got = 0;
        while (got < b->max_mailbox) {
            char *rec = NULL;
            size_t len = 0;
            int rc = msg_get(b, stream, subj, &seq, &rec, &len);
            if (rc == 0) break;
            if (rc < 0) {
                atomic_store(&b->load_failed_at, mono_ms());
                if (mono_ms() + RETRY_PAUSE_MS >= until || b->stopping) {
                    post_log(b, PL__LOG_WARN, "cluster: load of %.16s... incomplete: %s", jb->topic,
                             nats_GetLastError(NULL) ? nats_GetLastError(NULL) : "");
                    r->err = PL_ERR_CLUSTER;
                    goto done;
                }
                usleep(RETRY_PAUSE_MS * 1000);
                continue;
            }
            if (used + 16 + len + 1 > cap) {
                size_t nc = (used + 16 + len + 1) * 2;
                char *na = realloc(all, nc);
                if (!na) {
                    free(rec);
                    r->err = PL_ERR_NOMEM;
                    goto done;
                }
                all = na;
                cap = nc;
            }
            /* Where the store keeps it, for an eviction. */
            snprintf(all + used, 17, "%016llx",
                     (unsigned long long)(((uint64_t)(c + 1) << 56) | (seq & REF_SEQ_MASK)));
            used += 16;
            memcpy(all + used, rec, len + 1);
            used += len + 1;
            n++;
            got++;
            free(rec);
        }
    }
done:
    r->data = all;
    r->len = used;
    r->nrecs = n;
}

static void *worker_main(void *arg) {
    worker *w = arg;
    nats_backend *b = w->b;
    for (;;) {
        pthread_mutex_lock(&w->mu);
        while (!w->head && !w->quit)
            pthread_cond_wait(&w->cv, &w->mu);
        job *jb = w->head;
        if (jb) {
            w->head = jb->next;
            if (!w->head) w->tail = NULL;
        }
        pthread_mutex_unlock(&w->mu);
        if (!jb) break;
        result *r = calloc(1, sizeof *r);
        if (r) {
            memcpy(r->topic, jb->topic, sizeof r->topic);
            r->put_id = jb->put_id;
            r->kind = RES_LOADED;
            do_load(b, jb, r);
            post(b, r);
        }
        free(jb->data);
        free(jb);
    }
    return NULL;
}

/* Loads of one topic go to one worker, in order. */
static void submit(nats_backend *b, job *jb) {
    jb->queued = mono_ms();
    uint64_t h = 0;
    for (int i = 0; i < 16; i++)
        h = h * 16 + (uint64_t)(jb->topic[i] <= '9' ? jb->topic[i] - '0' : jb->topic[i] - 'a' + 10);
    worker *w = &b->w[h % (uint64_t)b->nworkers];
    pthread_mutex_lock(&w->mu);
    if (w->tail)
        w->tail->next = jb;
    else
        w->head = jb;
    w->tail = jb;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* ---- libnats callbacks (its threads) ------------------------------------------------ */

/* The store_ref of a message of stream (a name of ours) at seq; 0 if the
 * stream is not one of ours. */
static uint64_t ref_of(const char *stream, uint64_t seq) {
    if (!stream || strncmp(stream, "PAIRLINK_", 9) || !seq || seq > REF_SEQ_MASK) return 0;
    for (size_t c = 0; c < NCLASSES; c++)
        if (!strcmp(stream + 9, classes[c].name)) return ((uint64_t)(c + 1) << 56) | seq;
    return 0;
}

/* A result of kind holding a copy of msg's data (NUL-terminated), when it
 * has between min and max bytes; NULL otherwise (or out of memory). */
static result *result_of(int kind, natsMsg *msg, int min, int max) {
    int len = natsMsg_GetDataLength(msg);
    if (len < min || len > max) return NULL;
    result *r = calloc(1, sizeof *r);
    if (!r || !(r->data = malloc((size_t)len + 1))) {
        free(r);
        return NULL;
    }
    r->kind = kind;
    if (len) memcpy(r->data, natsMsg_GetData(msg), (size_t)len);
    r->data[len] = '\0';
    r->len = (size_t)len;
    return r;
}

static void on_live(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure) {
    (void)nc;
    (void)sub;
    nats_backend *b = closure;
    /* live.irn.<class>.<topic> */
    const char *subj = natsMsg_GetSubject(msg);
    const char *dot = subj ? strrchr(subj, '.') : NULL;
    result *r =
        dot && strlen(dot + 1) == PL_RELAY_TOPIC_HEX ? result_of(RES_LIVE, msg, 1, INT_MAX) : NULL;
    if (r) {
        const char *stream = NULL, *seq = NULL;
        if (natsMsgHeader_Get(msg, "Nats-Stream", &stream) == NATS_OK &&
            natsMsgHeader_Get(msg, "Nats-Sequence", &seq) == NATS_OK && seq)
            r->ref = ref_of(stream, strtoull(seq, NULL, 10));
        memcpy(r->topic, dot + 1, PL_RELAY_TOPIC_HEX);
        post(b, r);
    }
    natsMsg_Destroy(msg);
}

/* JetStream's answer to an asynchronous publish (a libnats thread): to the
 * loop, which retries or answers the core. */
static void on_pub_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure) {
    (void)js;
    nats_backend *b = closure;
    const char *id = NULL;
    result *r = calloc(1, sizeof *r);
    if (r && natsMsgHeader_Get(msg, "Pl-Put", &id) == NATS_OK && id) {
        r->kind = RES_PUT;
        r->put_id = strtoull(id, NULL, 10);
        r->err = PL_OK;
        if (pa) r->ref = ref_of(pa->Stream, pa->Sequence);
        if (!pa) {
            r->err = PL_ERR_CLUSTER;
            const char *txt = pae && pae->ErrText ? pae->ErrText : "";
            if (strstr(txt, "maximum messages per subject")) r->err = PL_ERR_MAILBOX_FULL;
            snprintf(r->line, sizeof r->line, "%s%s%s",
                     natsStatus_GetText(pae ? pae->Err : NATS_ERR), *txt ? ": " : "", txt);
        }
        post(b, r);
    } else {
        free(r);
    }
    natsMsg_Destroy(msg);
}

static void on_disconnected(natsConnection *nc, void *closure) {
    (void)nc;
    post_log(closure, PL__LOG_WARN, "cluster: disconnected from NATS, reconnecting");
}

static void on_reconnected(natsConnection *nc, void *closure) {
    char url[256] = "", shown[256];
    natsConnection_GetConnectedUrl(nc, url, sizeof url);
    show_url(url, shown, sizeof shown);
    post_log(closure, PL__LOG_INFO, "cluster: reconnected to %s", shown);
    result *r = calloc(1, sizeof *r);
    if (!r) return;
    r->kind = RES_RESYNC;
    post(closure, r);
}

/* A stream of ours elected a leader (JetStream advisory). The old leader
 * may have acknowledged messages whose republication died with it: every
 * instance reads its watched topics again. */
static void on_leader_elected(natsConnection *nc, natsSubscription *sub, natsMsg *msg,
                              void *closure) {
    (void)nc;
    (void)sub;
    const char *subj = natsMsg_GetSubject(msg);
    const char *stream = subj ? strrchr(subj, '.') : NULL;
    if (stream && !strncmp(stream + 1, "PAIRLINK_", 9)) {
        post_log(closure, PL__LOG_INFO, "cluster: stream %s elected a leader", stream + 1);
        result *r = calloc(1, sizeof *r);
        if (r) {
            r->kind = RES_RESYNC;
            post(closure, r);
        }
    }
    natsMsg_Destroy(msg);
}

/* Another relay starting with our instance id asks on our claim subject:
 * we answer (not our own request, recognised by its nonce). */
static void on_claim(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure) {
    (void)sub;
    nats_backend *b = closure;
    const char *reply = natsMsg_GetReply(msg);
    int len = natsMsg_GetDataLength(msg);
    bool ours = len == (int)strlen(b->claim_nonce) &&
                !memcmp(natsMsg_GetData(msg), b->claim_nonce, (size_t)len);
    if (reply && !ours) (void)natsConnection_PublishString(nc, reply, "in use");
    natsMsg_Destroy(msg);
}

/* Live deliveries are told apart by instance id (an instance ignores what
 * it published itself), so two instances with one id would each drop the
 * other's messages. The id is claimed at start: subscribe to its subject
 * first, then ask it; any answer is another relay holding the id. Two
 * starting at once both see each other and both refuse (never both run). */
static pl_err claim_instance(nats_backend *b) {
    uint8_t h[PL_SHA256_BYTES], nonce[16];
    pl_sha256(h, (const uint8_t *)b->instance, strlen(b->instance));
    char hex[33], subj[64];
    (void)pl_hex_encode(hex, sizeof hex, h, 16);
    snprintf(subj, sizeof subj, "PAIRLINK.INSTANCE.%s", hex);
    pl_random(nonce, sizeof nonce);
    (void)pl_hex_encode(b->claim_nonce, sizeof b->claim_nonce, nonce, sizeof nonce);
    natsStatus s = subscribe(b, &b->claim, subj, on_claim);
    if (s == NATS_OK) s = natsConnection_Flush(b->nc);
    if (s != NATS_OK) {
        blog(b, PL__LOG_ERROR, "cluster: cannot claim instance id %s: %s", b->instance,
             natsStatus_GetText(s));
        return PL_ERR_CLUSTER;
    }
    natsMsg *reply = NULL;
    s = natsConnection_RequestString(&reply, b->nc, subj, b->claim_nonce, CLAIM_WAIT_MS);
    natsMsg_Destroy(reply);
    if (s == NATS_OK) {
        blog(b, PL__LOG_ERROR,
             "cluster: instance id %s is in use by another relay (every instance needs its own "
             "--instance-id)",
             b->instance);
        return PL_ERR_CLUSTER_INSTANCE;
    }
    if (s != NATS_TIMEOUT && s != NATS_NO_RESPONDERS) {
        blog(b, PL__LOG_ERROR, "cluster: cannot claim instance id %s: %s", b->instance,
             natsStatus_GetText(s));
        return PL_ERR_CLUSTER;
    }
    return PL_OK;
}

/* The control plane (cluster_ctl.h) arrives on one subscription, so that
 * its messages keep their order (a hello before that instance's rooms). */
static void on_ctl(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure) {
    (void)nc;
    (void)sub;
    nats_backend *b = closure;
    const char *subj = natsMsg_GetSubject(msg), *reply = natsMsg_GetReply(msg);
    static const char pre[] = "PAIRLINK.CTL.";
    int kind = -1;
    if (subj && !strncmp(subj, pre, sizeof pre - 1)) {
        const char *k = subj + sizeof pre - 1;
        if (!strcmp(k, "HB"))
            kind = CTL_HB;
        else if (!strcmp(k, "HELLO"))
            kind = CTL_HELLO;
        else if (!strcmp(k, "BYE"))
            kind = CTL_BYE;
        else if (!strncmp(k, "ROOM.", 5))
            kind = CTL_ROOM;
        else if (!strncmp(k, "EVICT.", 6))
            kind = CTL_EVICT;
    }
    result *r = kind >= 0 && (!reply || strlen(reply) < sizeof r->reply)
                    ? result_of(RES_CTL, msg, 1, PL__RELAY_CTL_MAX)
                    : NULL;
    if (r) {
        r->ctl = kind;
        if (reply) memcpy(r->reply, reply, strlen(reply) + 1);
        post(b, r);
    }
    natsMsg_Destroy(msg);
}

/* Answers to our rooms and to our deletes: <inbox>.<token>. */
static void on_reply(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure) {
    (void)nc;
    (void)sub;
    nats_backend *b = closure;
    const char *subj = natsMsg_GetSubject(msg);
    const char *dot = subj ? strrchr(subj, '.') : NULL;
    result *r = dot ? result_of(RES_REPLY, msg, 0, PL__RELAY_CTL_MAX) : NULL;
    if (r) {
        r->put_id = strtoull(dot + 1, NULL, 10);
        post(b, r);
    }
    natsMsg_Destroy(msg);
}

/* ---- loop thread -------------------------------------------------------------------- */

static uint64_t thash(const nats_backend *b, const char *topic) {
    return pl__ht_hash(&b->topics, topic, PL_RELAY_TOPIC_HEX);
}

static tstate *tfind(const nats_backend *b, const char *topic) {
    uint64_t h = thash(b, topic);
    for (pl__hnode *n = pl__ht_first(&b->topics, h); n; n = pl__ht_next(n, h)) {
        tstate *t = PL__ENTRY(n, tstate, hnode);
        if (!memcmp(t->topic, topic, PL_RELAY_TOPIC_HEX)) return t;
    }
    return NULL;
}

static tstate *tget(nats_backend *b, const char *topic) {
    tstate *t = tfind(b, topic);
    if (t) return t;
    if (!(t = calloc(1, sizeof *t))) return NULL;
    memcpy(t->topic, topic, PL_RELAY_TOPIC_HEX);
    if (pl__ht_insert(&b->topics, &t->hnode, thash(b, topic)) != PL_OK) {
        free(t);
        return NULL;
    }
    return t;
}

static void result_free(result *r) {
    free(r->data);
    free(r);
}

static void tgc(nats_backend *b, tstate *t) {
    if (t->sub || t->loading || t->dels || t->held_head) return;
    while (t->buf_head) {
        result *r = t->buf_head;
        t->buf_head = r->next;
        result_free(r);
    }
    pl__ht_remove(&b->topics, &t->hnode);
    free(t);
}

static void ingest_one(nats_backend *b, const char *topic, const char *data, size_t len,
                       uint64_t ref, int64_t now) {
    json_t *root;
    pl__relay_record rec;
    uint64_t conn;
    if (record_parse(b, topic, data, len, &root, &rec, &conn) != PL_OK) {
        blog(b, PL__LOG_WARN, "cluster: malformed record on topic %.16s... skipped", topic);
        return;
    }
    rec.store_ref = ref;
    b->st.live++;
    (void)pl__relay_core_ingest(b->sink.core, &rec, conn, now);
    json_decref(root);
}

typedef struct loaded_rec {
    json_t *root;
    pl__relay_record rec;
    uint64_t conn;
    size_t order;
} loaded_rec;

static int loaded_cmp(const void *x, const void *y) {
    const loaded_rec *a = x, *c = y;
    if (a->rec.published_at_ms != c->rec.published_at_ms)
        return a->rec.published_at_ms < c->rec.published_at_ms ? -1 : 1;
    return a->order < c->order ? -1 : a->order > c->order;
}

/* A load's records, oldest first across the TTL classes (each class stream
 * is in order; together they are merged on publishedAt). */
static void ingest_loaded(nats_backend *b, result *r, int64_t now) {
    loaded_rec *v = r->nrecs ? calloc(r->nrecs, sizeof *v) : NULL;
    if (r->nrecs && !v) {
        blog(b, PL__LOG_ERROR, "cluster: out of memory loading topic %.16s...", r->topic);
        return;
    }
    size_t n = 0, bad = 0;
    for (size_t off = 0; off + 16 < r->len && n < r->nrecs;) {
        char hex[17];
        memcpy(hex, r->data + off, 16);
        hex[16] = '\0';
        const char *d = r->data + off + 16;
        size_t len = strlen(d);
        off += 16 + len + 1;
        if (record_parse(b, r->topic, d, len, &v[n].root, &v[n].rec, &v[n].conn) != PL_OK) {
            bad++;
            continue;
        }
        v[n].rec.store_ref = strtoull(hex, NULL, 16);
        v[n].order = n;
        n++;
    }
    if (n) qsort(v, n, sizeof *v, loaded_cmp);
    for (size_t i = 0; i < n; i++) {
        /* The record borrows from its root: the qsort moved both. */
        (void)pl__relay_core_ingest(b->sink.core, &v[i].rec, v[i].conn, now);
        json_decref(v[i].root);
    }
    if (bad)
        blog(b, PL__LOG_WARN, "cluster: %zu malformed records on topic %.16s... skipped", bad,
             r->topic);
    free(v);
}

static uint64_t phash(const nats_backend *b, uint64_t id) {
    return pl__ht_hash(&b->puts, &id, sizeof id);
}

static pput *pfind(const nats_backend *b, uint64_t id) {
    uint64_t h = phash(b, id);
    for (pl__hnode *n = pl__ht_first(&b->puts, h); n; n = pl__ht_next(n, h)) {
        pput *p = PL__ENTRY(n, pput, hnode);
        if (p->put_id == id) return p;
    }
    return NULL;
}

static void pput_free(nats_backend *b, pput *p) {
    pl__ht_remove(&b->puts, &p->hnode);
    b->inflight--;
    b->inflight_bytes -= p->len;
    free(p->data);
    free(p);
}

/* Send p (again) with the same Nats-Msg-Id: JetStream stores it once. A
 * send that fails at once (no connection, closed) is retried like a
 * negative acknowledgement. */
static void retry_later(nats_backend *b, pput *p);

static void send_put(nats_backend *b, pput *p) {
    natsMsg *m = NULL;
    char idtxt[24];
    snprintf(idtxt, sizeof idtxt, "%llu", (unsigned long long)p->put_id);
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MsgId = p->msgid;
    po.MaxWait = REQ_WAIT_MS;
    p->tries++;
    natsStatus s = natsMsg_Create(&m, p->subj, NULL, p->data, (int)p->len);
    if (s == NATS_OK) s = natsMsgHeader_Set(m, "Pl-Put", idtxt);
    if (s == NATS_OK) s = js_PublishMsgAsync(b->js, &m, &po);
    natsMsg_Destroy(m); /* NULL when the library took it */
    if (s != NATS_OK) retry_later(b, p);
}

static void on_retry(uv_timer_t *t) {
    nats_backend *b = t->data;
    int64_t now = mono_ms();
    while (b->retry_head && b->retry_head->retry_at <= now) {
        pput *p = b->retry_head;
        b->retry_head = p->rnext;
        if (!b->retry_head) b->retry_tail = NULL;
        p->rnext = NULL;
        send_put(b, p);
    }
    if (b->retry_head) uv_timer_start(&b->retry_timer, on_retry, RETRY_PAUSE_MS, 0);
}

static void retry_later(nats_backend *b, pput *p) {
    p->retry_at = mono_ms() + RETRY_PAUSE_MS;
    p->rnext = NULL;
    if (b->retry_tail)
        b->retry_tail->rnext = p;
    else
        b->retry_head = p;
    b->retry_tail = p;
    if (b->timer_open && !uv_is_active((uv_handle_t *)&b->retry_timer))
        uv_timer_start(&b->retry_timer, on_retry, RETRY_PAUSE_MS, 0);
}

/* JetStream answered put r->put_id. */
static void put_answered(nats_backend *b, result *r, int64_t now) {
    pput *p = pfind(b, r->put_id);
    if (!p) return; /* answered already (a late duplicate answer) */
    pl_err e = r->err;
    if (e == PL_ERR_CLUSTER && mono_ms() + RETRY_PAUSE_MS < p->deadline && !b->stopping) {
        retry_later(b, p); /* an election, a node going away: same id again */
        return;
    }
    if (e == PL_ERR_CLUSTER)
        blog(b, PL__LOG_WARN, "cluster: publish on %s not stored after %d tries: %s", p->subj,
             p->tries, r->line);
    else if (p->tries > 1) {
        blog(b, PL__LOG_INFO, "cluster: publish on %s stored after %d tries", p->subj, p->tries);
        /* A retry through an election is often answered "duplicate": the
         * first try was stored, but the leader that would have republished
         * it to the watching instances died. Announce it once more on the
         * live subject (plain NATS); the instances drop what they have. */
        char live[104];
        snprintf(live, sizeof live, "live.%s", p->subj);
        natsStatus s = natsConnection_Publish(b->nc, live, p->data, (int)p->len);
        if (s != NATS_OK)
            blog(b, PL__LOG_WARN, "cluster: cannot announce %s again: %s", p->subj,
                 natsStatus_GetText(s));
    }
    uint64_t id = p->put_id;
    if (e == PL_OK) {
        b->st.puts++;
        if (p->tries > 1) b->st.put_retries += (uint64_t)(p->tries - 1);
        /* msgid: topic ":" id */
        if (r->ref && strlen(p->msgid) == PL_RELAY_TOPIC_HEX + 1 + PL_RELAY_ID_HEX) {
            char topic[PL_RELAY_TOPIC_HEX + 1];
            memcpy(topic, p->msgid, PL_RELAY_TOPIC_HEX);
            topic[PL_RELAY_TOPIC_HEX] = '\0';
            pl__relay_core_stored_at(b->sink.core, topic, p->msgid + PL_RELAY_TOPIC_HEX + 1,
                                     r->ref);
        }
    } else {
        b->st.put_failures++;
    }
    pput_free(b, p);
    pl__relay_core_put_done(b->sink.core, id, e, now);
}

/* ---- the control plane (loop thread) ------------------------------------------------ */

static void ctl_publish(nats_backend *b, const char *subj, const char *reply, const char *topic,
                        const char *ids, size_t nids, const uint8_t *flags, size_t nflags) {
    char *msg = NULL;
    size_t len = 0;
    if (pl__relay_ctl_format(b->instance, topic, ids, nids, flags, nflags, &msg, &len) != PL_OK)
        return;
    natsStatus s = reply ? natsConnection_PublishRequest(b->nc, subj, reply, msg, (int)len)
                         : natsConnection_Publish(b->nc, subj, msg, (int)len);
    if (s != NATS_OK)
        blog(b, PL__LOG_WARN, "cluster: cannot send %s: %s", subj, natsStatus_GetText(s));
    free(msg);
}

static void ops_tick(uv_timer_t *t);

static void ops_timer_on(nats_backend *b) {
    if (b->ops_open && !uv_is_active((uv_handle_t *)&b->ops_timer))
        uv_timer_start(&b->ops_timer, ops_tick, OPS_TICK_MS, OPS_TICK_MS);
}

static void member_seen(nats_backend *b, const char *id, int64_t mono) {
    int r = pl__relay_plane_seen(b->plane, id, mono);
    if (r > 0) blog(b, PL__LOG_INFO, "cluster: instance %s is here", id);
    if (r < 0 && !b->overflow_said) {
        b->overflow_said = true;
        blog(b, PL__LOG_WARN, "cluster: more than %d relay instances: full topics refuse",
             PL__RELAY_CTL_MEMBERS_MAX);
    }
}

/* Answer the core for every room the plane decided by now. */
static void rooms_settle(nats_backend *b, int64_t now) {
    pl__relay_room_done d;
    bool any = false;
    while (pl__relay_plane_take(b->plane, mono_ms(), &d)) {
        any = true;
        if (d.flags) {
            size_t go = 0;
            for (size_t i = 0; i < d.n; i++)
                go += d.flags[i] == (PL_RELAY_ROOM_DONE | PL_RELAY_ROOM_ACKED);
            blog(b, PL__LOG_DEBUG,
                 "cluster: topic %.16s...: %zu of %zu messages done everywhere and acknowledged",
                 d.topic, go, d.n);
            pl__relay_core_room_answer(b->sink.core, d.topic, d.ids, d.flags, d.n, now);
        } else {
            b->st.rooms_failed++;
            blog(b, PL__LOG_WARN,
                 "cluster: no answer from instance %s within %d ms: the full topic %.16s... "
                 "refuses",
                 d.silent, PL__RELAY_CTL_ROOM_WAIT_MS, d.topic);
            pl__relay_core_room_answer(b->sink.core, d.topic, d.ids, NULL, 0, now);
        }
        free(d.ids);
        free(d.flags);
    }
    if (any && b->sink.changed) b->sink.changed(b->sink.ud);
}

/* An instance left: rooms stop waiting for it (its clients are gone). */
static void member_gone(nats_backend *b, const char *id, const char *why, int64_t now) {
    if (!pl__relay_plane_gone(b->plane, id)) return;
    blog(b, PL__LOG_INFO, "cluster: instance %s left (%s)", id, why);
    rooms_settle(b, now);
}

/* Ask every other instance about the core's candidates. Never answers
 * from here (apply runs while the runtime drains the core): the plane's
 * decisions, and refusals, reach the core through the result queue. */
static void room_ask(nats_backend *b, const pl__relay_action *a) {
    uint64_t token = 0;
    bool ask = false;
    pl_err e =
        pl__relay_plane_room(b->plane, a->rec.topic, a->ids, a->nids, mono_ms(), &token, &ask);
    b->st.rooms++;
    result *r = calloc(1, sizeof *r);
    if (e != PL_OK) {
        blog(b, PL__LOG_WARN, "cluster: topic %.16s... is full and cannot ask the others: %s",
             a->rec.topic, pl_strerror(e));
        if (r) memcpy(r->topic, a->rec.topic, sizeof r->topic); /* answered "nothing goes" */
    } else {
        blog(b, PL__LOG_DEBUG,
             "cluster: topic %.16s... is full: asking %zu instances about %zu messages",
             a->rec.topic, pl__relay_plane_members(b->plane), a->nids);
    }
    if (e == PL_OK && ask) {
        char subj[96], reply[128];
        snprintf(subj, sizeof subj, "PAIRLINK.CTL.ROOM.%s", a->rec.topic);
        snprintf(reply, sizeof reply, "%s.%llu", b->inbox, (unsigned long long)token);
        ctl_publish(b, subj, reply, a->rec.topic, a->ids, a->nids, NULL, 0);
    }
    if (r) {
        r->kind = RES_REPLY; /* token 0: settle (and a refusal, with its topic) */
        post(b, r);
    }
    ops_timer_on(b);
}

/* The delete of the store for topic is answered (or given up): puts of
 * the topic held behind it go. */
static void del_done(nats_backend *b, const char *topic) {
    tstate *t = tfind(b, topic);
    if (!t || !t->dels || --t->dels) return;
    pput *p = t->held_head;
    t->held_head = t->held_tail = NULL;
    while (p) {
        pput *nx = p->rnext;
        p->rnext = NULL;
        send_put(b, p);
        p = nx;
    }
    tgc(b, t);
}

static void evict(nats_backend *b, const pl__relay_action *a) {
    b->st.evictions++;
    char subj[96];
    snprintf(subj, sizeof subj, "PAIRLINK.CTL.EVICT.%s", a->rec.topic);
    ctl_publish(b, subj, NULL, a->rec.topic, a->rec.id, 1, NULL, 0);
    uint64_t cls = a->rec.store_ref >> 56, seq = a->rec.store_ref & REF_SEQ_MASK;
    if (!cls || cls > NCLASSES || !seq) {
        b->st.delete_failures++;
        blog(b, PL__LOG_WARN,
             "cluster: evicted message of %.16s... not deleted from the store: its position is "
             "unknown (it expires there)",
             a->rec.topic);
        return;
    }
    del *d = calloc(1, sizeof *d);
    tstate *t = tget(b, a->rec.topic);
    if (!d || !t) {
        free(d);
        b->st.delete_failures++;
        return;
    }
    d->token = ++b->next_token;
    memcpy(d->topic, a->rec.topic, sizeof d->topic);
    d->deadline = mono_ms() + REQ_WAIT_MS;
    char api[96], reply[128], body[64];
    snprintf(api, sizeof api, "$JS.API.STREAM.MSG.DELETE.PAIRLINK_%s", classes[cls - 1].name);
    snprintf(reply, sizeof reply, "%s.%llu", b->inbox, (unsigned long long)d->token);
    snprintf(body, sizeof body, "{\"seq\":%llu,\"no_erase\":true}", (unsigned long long)seq);
    natsStatus s = natsConnection_PublishRequestString(b->nc, api, reply, body);
    if (s != NATS_OK) {
        b->st.delete_failures++;
        blog(b, PL__LOG_WARN, "cluster: cannot delete an evicted message: %s",
             natsStatus_GetText(s));
        free(d);
        tgc(b, t);
        return;
    }
    t->dels++;
    d->next = b->dels;
    b->dels = d;
    ops_timer_on(b);
}

static void on_reply_result(nats_backend *b, result *r, int64_t now) {
    if (!r->put_id) {
        if (r->topic[0]) { /* a room that could not be asked */
            b->st.rooms_failed++;
            pl__relay_core_room_answer(b->sink.core, r->topic, NULL, NULL, 0, now);
            if (b->sink.changed) b->sink.changed(b->sink.ud);
        }
        rooms_settle(b, now);
        return;
    }
    pl__relay_ctl m;
    if (pl__relay_ctl_parse(r->data, r->len, &m) == PL_OK) {
        pl_err e = pl__relay_plane_answer(b->plane, r->put_id, &m, mono_ms());
        if (e == PL_ERR_INVALID_ARG)
            blog(b, PL__LOG_WARN, "cluster: instance %s answered a room with a malformed answer",
                 m.instance);
        if (e != PL_ERR_NOT_FOUND) {
            rooms_settle(b, now);
            return;
        }
    }
    for (del **pp = &b->dels; *pp; pp = &(*pp)->next) {
        del *d = *pp;
        if (d->token != r->put_id) continue;
        *pp = d->next;
        json_t *j = json_loadb(r->data, r->len, 0, NULL);
        if (!json_is_true(json_object_get(j, "success"))) {
            b->st.delete_failures++;
            json_t *e = json_object_get(j, "error");
            blog(b, PL__LOG_WARN, "cluster: an evicted message of %.16s... was not deleted: %s",
                 d->topic,
                 json_is_string(json_object_get(e, "description"))
                     ? json_string_value(json_object_get(e, "description"))
                     : "no answer");
        }
        json_decref(j);
        del_done(b, d->topic);
        free(d);
        return;
    }
}

static void on_ctl_result(nats_backend *b, result *r, int64_t now) {
    pl__relay_ctl m;
    if (pl__relay_ctl_parse(r->data, r->len, &m) != PL_OK) {
        blog(b, PL__LOG_WARN, "cluster: a malformed control message was ignored");
        return;
    }
    if (!strcmp(m.instance, b->instance)) return; /* our own */
    int64_t mono = mono_ms();
    switch (r->ctl) {
    case CTL_BYE:
        member_gone(b, m.instance, "stopped", now);
        return;
    case CTL_HB:
        member_seen(b, m.instance, mono);
        return;
    case CTL_HELLO:
        member_seen(b, m.instance, mono);
        if (r->reply[0]) ctl_publish(b, r->reply, NULL, NULL, NULL, 0, NULL, 0);
        return;
    case CTL_ROOM: {
        member_seen(b, m.instance, mono);
        if (!m.topic[0] || !m.has_ids || !r->reply[0]) return;
        uint8_t flags[PL_RELAY_ROOM_MAX];
        pl__relay_core_room_query(b->sink.core, m.topic, m.ids, m.nids, flags);
        ctl_publish(b, r->reply, NULL, m.topic, NULL, 0, flags, m.nids);
        b->st.rooms_answered++;
        return;
    }
    case CTL_EVICT:
        member_seen(b, m.instance, mono);
        if (!m.topic[0] || !m.has_ids) return;
        for (size_t i = 0; i < m.nids; i++)
            pl__relay_core_evicted(b->sink.core, m.topic, m.ids + i * PL_RELAY_ID_HEX);
        b->st.evicted_by_others += m.nids;
        if (b->sink.changed) b->sink.changed(b->sink.ud);
        return;
    default:
        return;
    }
}

/* Rooms and deletes past their time. */
static void ops_tick(uv_timer_t *t) {
    nats_backend *b = t->data;
    int64_t mono = mono_ms(), now = b->sink.now(b->sink.ud);
    rooms_settle(b, now);
    for (del **pp = &b->dels; *pp;) {
        del *d = *pp;
        if (d->deadline > mono) {
            pp = &d->next;
            continue;
        }
        *pp = d->next;
        b->st.delete_failures++;
        blog(b, PL__LOG_WARN, "cluster: the delete of an evicted message of %.16s... timed out",
             d->topic);
        del_done(b, d->topic);
        free(d);
    }
    if (!pl__relay_plane_rooms(b->plane) && !b->dels) uv_timer_stop(t);
}

/* Heartbeat, and instances not heard for PL__RELAY_CTL_LOST_MS are gone. */
static void hb_tick(uv_timer_t *t) {
    nats_backend *b = t->data;
    ctl_publish(b, "PAIRLINK.CTL.HB", NULL, NULL, NULL, 0, NULL, 0);
    int64_t mono = mono_ms(), now = b->sink.now(b->sink.ud);
    char id[PL__RELAY_INSTANCE_MAX + 1];
    while (pl__relay_plane_expire(b->plane, mono, id)) {
        blog(b, PL__LOG_INFO, "cluster: instance %s left (no heartbeat)", id);
        rooms_settle(b, now);
    }
}

static void on_results(uv_async_t *h) {
    nats_backend *b = h->data;
    pthread_mutex_lock(&b->mu);
    result *r = b->res_head;
    b->res_head = b->res_tail = NULL;
    pthread_mutex_unlock(&b->mu);
    bool changed = false;
    int64_t now = b->sink.now(b->sink.ud);
    while (r) {
        result *next = r->next;
        r->next = NULL;
        switch (r->kind) {
        case RES_LOG:
            blog(b, r->level, "%s", r->line);
            break;
        case RES_PUT:
            if (r->put_id & REFUSED_BIT) { /* refused in apply, never sent */
                b->inflight--;
                pl__relay_core_put_done(b->sink.core, r->put_id & ~REFUSED_BIT, r->err, now);
            } else {
                put_answered(b, r, now);
            }
            changed = true;
            break;
        case RES_LIVE: {
            tstate *t = tfind(b, r->topic);
            if (t && t->loading) { /* after the load, in order */
                if (t->buf_tail)
                    t->buf_tail->next = r;
                else
                    t->buf_head = r;
                t->buf_tail = r;
                r = NULL;
            } else if (t && t->sub) {
                ingest_one(b, r->topic, r->data, r->len, r->ref, now);
                changed = true;
            }
            break;
        }
        case RES_LOADED: {
            b->inflight--;
            b->st.loads++;
            if (r->err != PL_OK) b->st.load_failures++;
            ingest_loaded(b, r, now);
            tstate *t = tfind(b, r->topic);
            if (t && r->put_id == 1) { /* the core's LOAD (0: a resync) */
                t->loading = false;
                while (t->buf_head) {
                    result *x = t->buf_head;
                    t->buf_head = x->next;
                    ingest_one(b, x->topic, x->data, x->len, x->ref, now);
                    result_free(x);
                }
                t->buf_tail = NULL;
                tgc(b, t);
            }
            if (r->put_id == 1 && r->err != PL_OK)
                pl__relay_core_load_failed(b->sink.core, r->topic, now);
            else if (r->put_id == 1)
                pl__relay_core_loaded(b->sink.core, r->topic, now);
            changed = true;
            break;
        }
        case RES_CTL:
            on_ctl_result(b, r, now);
            break;
        case RES_REPLY:
            on_reply_result(b, r, now);
            break;
        case RES_RESYNC: {
            /* What was republished while this connection was down, or by a
             * stream leader that died, is not resent: read the watched
             * topics again (the core drops what it has). */
            size_t cur = 0, n = 0;
            b->st.resyncs++;
            for (pl__hnode *x = pl__ht_each(&b->topics, &cur, NULL); x;
                 x = pl__ht_each(&b->topics, &cur, x)) {
                tstate *t = PL__ENTRY(x, tstate, hnode);
                if (!t->sub || t->loading) continue;
                job *jb = calloc(1, sizeof *jb);
                if (!jb) break;
                jb->kind = JOB_LOAD;
                jb->put_id = 0;
                memcpy(jb->topic, t->topic, sizeof jb->topic);
                b->inflight++;
                submit(b, jb);
                n++;
            }
            if (n) blog(b, PL__LOG_INFO, "cluster: re-reading %zu watched topics", n);
            break;
        }
        }
        if (r) result_free(r);
        r = next;
    }
    if (changed && b->sink.changed) b->sink.changed(b->sink.ud);
}

/* A put the backend cannot take: answered through the queue (never from
 * inside apply, which runs while the runtime drains the core). */
static void refuse_put(nats_backend *b, uint64_t put_id, pl_err e) {
    result *r = calloc(1, sizeof *r);
    if (!r) return; /* the client times out and publishes again */
    r->kind = RES_PUT;
    r->put_id = put_id | REFUSED_BIT;
    r->err = e;
    b->inflight++;
    post(b, r);
}

static bool nb_apply(pl__relay_backend *base, const pl__relay_action *a) {
    nats_backend *b = (nats_backend *)base;
    switch (a->kind) {
    case PL__RELAY_STORE_PUT: {
        if (b->stopping) {
            refuse_put(b, a->put_id, PL_ERR_CLUSTER);
            break;
        }
        if (b->inflight >= MAX_INFLIGHT || b->inflight_bytes >= MAX_INFLIGHT_BYTES) {
            refuse_put(b, a->put_id, PL_ERR_RELAY_BUSY);
            break;
        }
        pput *p = calloc(1, sizeof *p);
        if (!p || !(p->data = record_json(b, &a->rec, a->conn, &p->len)) ||
            pl__ht_insert(&b->puts, &p->hnode, phash(b, a->put_id)) != PL_OK) {
            if (p) free(p->data);
            free(p);
            refuse_put(b, a->put_id, PL_ERR_NOMEM);
            break;
        }
        p->put_id = a->put_id;
        p->deadline = mono_ms() + b->retry_ms;
        b->inflight_bytes += p->len;
        size_t c = class_of(a->rec.expires_at_ms - a->rec.published_at_ms);
        snprintf(p->subj, sizeof p->subj, "irn.%s.%s", classes[c].name, a->rec.topic);
        snprintf(p->msgid, sizeof p->msgid, "%s:%s", a->rec.topic, a->rec.id);
        b->inflight++;
        tstate *t = tfind(b, a->rec.topic);
        if (t && t->dels) { /* after the deletes that made room for it */
            if (t->held_tail)
                t->held_tail->rnext = p;
            else
                t->held_head = p;
            t->held_tail = p;
            break;
        }
        send_put(b, p);
        break;
    }
    case PL__RELAY_ROOM:
        room_ask(b, a);
        break;
    case PL__RELAY_EVICT:
        evict(b, a);
        break;
    case PL__RELAY_LOAD: {
        tstate *t = tget(b, a->rec.topic);
        job *jb = calloc(1, sizeof *jb);
        if (!t || !jb) {
            free(jb);
            blog(b, PL__LOG_ERROR, "cluster: out of memory loading a topic");
            break;
        }
        t->loading = true;
        jb->kind = JOB_LOAD;
        jb->put_id = 1;
        memcpy(jb->topic, a->rec.topic, sizeof jb->topic);
        b->inflight++;
        submit(b, jb);
        break;
    }
    case PL__RELAY_WATCH: {
        tstate *t = tget(b, a->rec.topic);
        if (!t || t->sub) break;
        char subj[96];
        snprintf(subj, sizeof subj, "live.irn.*.%s", a->rec.topic);
        natsStatus s = subscribe(b, &t->sub, subj, on_live);
        if (s != NATS_OK) {
            t->sub = NULL;
            blog(b, PL__LOG_ERROR, "cluster: cannot watch %.16s...: %s", a->rec.topic,
                 natsStatus_GetText(s));
            tgc(b, t);
        }
        break;
    }
    case PL__RELAY_UNWATCH: {
        tstate *t = tfind(b, a->rec.topic);
        if (!t || !t->sub) break;
        natsSubscription_Unsubscribe(t->sub);
        natsSubscription_Destroy(t->sub);
        t->sub = NULL;
        tgc(b, t);
        break;
    }
    default: /* STORE_DEL: the streams expire messages by themselves */
        break;
    }
    return false;
}

static void stop_workers(nats_backend *b) {
    for (int i = 0; i < b->nworkers; i++) {
        worker *w = &b->w[i];
        if (!w->started) continue;
        pthread_mutex_lock(&w->mu);
        w->quit = true;
        pthread_cond_signal(&w->cv);
        pthread_mutex_unlock(&w->mu);
    }
    for (int i = 0; i < b->nworkers; i++) {
        worker *w = &b->w[i];
        if (!w->started) continue;
        pthread_join(w->th, NULL);
        w->started = false;
        while (w->head) {
            job *jb = w->head;
            w->head = jb->next;
            free(jb->data);
            free(jb);
        }
    }
}

static void nb_stop(pl__relay_backend *base) {
    nats_backend *b = (nats_backend *)base;
    if (b->stopping) return;
    b->stopping = true;
    /* Workers finish the job they hold (bounded by retry_ms) and drop the
     * rest: their clients got no `true` and publish again elsewhere. */
    stop_workers(b);
    if (b->nc) {
        /* Our own bye need not come back to us. */
        if (b->ctl) natsSubscription_Unsubscribe(b->ctl);
        /* The others stop waiting for us in their rooms. */
        ctl_publish(b, "PAIRLINK.CTL.BYE", NULL, NULL, NULL, 0, NULL, 0);
        (void)natsConnection_FlushTimeout(b->nc, 200);
        natsConnection_Close(b->nc);
    }
    if (b->timer_open) {
        uv_close((uv_handle_t *)&b->retry_timer, NULL);
        b->timer_open = false;
    }
    if (b->hb_open) {
        uv_close((uv_handle_t *)&b->hb_timer, NULL);
        b->hb_open = false;
    }
    if (b->ops_open) {
        uv_close((uv_handle_t *)&b->ops_timer, NULL);
        b->ops_open = false;
    }
    if (b->async_open) {
        pthread_mutex_lock(&b->mu);
        b->closed = true;
        pthread_mutex_unlock(&b->mu);
        uv_close((uv_handle_t *)&b->async, NULL);
        b->async_open = false;
    }
}

static void nb_free(pl__relay_backend *base) {
    nats_backend *b = (nats_backend *)base;
    if (!b) return;
    b->stopping = true;
    stop_workers(b);
    /* Wait until libnats is done calling us (see gate_mu); closing the
     * connection ends every subscription. Bounded: if it does not say so,
     * b is left allocated rather than freed under a running handler. */
    bool done = true;
    if (b->nc) {
        natsConnection_Close(b->nc);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 5;
        pthread_mutex_lock(&b->gate_mu);
        while ((b->live_subs > 0 || !b->nc_closed) &&
               pthread_cond_timedwait(&b->gate_cv, &b->gate_mu, &until) == 0)
            ;
        done = b->live_subs <= 0 && b->nc_closed;
        pthread_mutex_unlock(&b->gate_mu);
    }
    for (pl__hnode *n; (n = pl__ht_pop(&b->topics));) {
        tstate *t = PL__ENTRY(n, tstate, hnode);
        if (t->sub) natsSubscription_Destroy(t->sub);
        while (t->buf_head) {
            result *r = t->buf_head;
            t->buf_head = r->next;
            result_free(r);
        }
        free(t);
    }
    pl__ht_free(&b->topics);
    for (pl__hnode *n; (n = pl__ht_pop(&b->puts));) {
        pput *p = PL__ENTRY(n, pput, hnode);
        free(p->data);
        free(p);
    }
    pl__ht_free(&b->puts);
    natsSubscription_Destroy(b->advisories);
    natsSubscription_Destroy(b->claim);
    natsSubscription_Destroy(b->ctl);
    natsSubscription_Destroy(b->replies);
    for (del *d = b->dels, *nx; d; d = nx) {
        nx = d->next;
        free(d);
    }
    pl__relay_plane_free(b->plane);
    jsCtx_Destroy(b->js);
    natsConnection_Destroy(b->nc);
    natsOptions_Destroy(b->nopts);
    for (result *r = b->res_head, *nx; r; r = nx) {
        nx = r->next;
        result_free(r);
    }
    for (int i = 0; i < MAX_WORKERS; i++) {
        pthread_mutex_destroy(&b->w[i].mu);
        pthread_cond_destroy(&b->w[i].cv);
    }
    if (!done) return; /* a libnats thread may still hold b: not freed */
    pthread_mutex_destroy(&b->mu);
    pthread_mutex_destroy(&b->gate_mu);
    pthread_cond_destroy(&b->gate_cv);
    free(b);
}

static void nb_stats(const pl__relay_backend *base, pl__relay_cluster_stats *out) {
    const nats_backend *b = (const nats_backend *)base;
    memset(out, 0, sizeof *out);
    out->connected = b->nc && natsConnection_Status(b->nc) == NATS_CONN_STATUS_CONNECTED;
    out->instances = b->plane ? pl__relay_plane_members(b->plane) : 0;
    out->puts = b->st.puts;
    out->put_failures = b->st.put_failures;
    out->put_retries = b->st.put_retries;
    out->loads = b->st.loads;
    out->load_failures = b->st.load_failures;
    out->live = b->st.live;
    out->resyncs = b->st.resyncs;
    out->rooms = b->st.rooms;
    out->rooms_failed = b->st.rooms_failed;
    out->rooms_answered = b->st.rooms_answered;
    out->evictions = b->st.evictions;
    out->evicted_by_others = b->st.evicted_by_others;
    out->delete_failures = b->st.delete_failures;
}

static const pl__relay_backend_ops nats_ops = {.name = "nats",
                                               .apply = nb_apply,
                                               .flush = NULL,
                                               .stop = nb_stop,
                                               .free = nb_free,
                                               .stats = nb_stats};

/* Create the TTL class streams, or bring existing ones to this
 * configuration (every instance does it at start; the same configuration
 * twice is a no-op for the server). */
static pl_err ensure_streams(nats_backend *b, int replicas, size_t max_mailbox,
                             size_t max_message) {
    for (size_t c = 0; c < NCLASSES; c++) {
        char name[32], subj[32];
        snprintf(name, sizeof name, "PAIRLINK_%s", classes[c].name);
        snprintf(subj, sizeof subj, "irn.%s.*", classes[c].name);
        const char *subjects[] = {subj};
        jsRePublish rp;
        jsRePublish_Init(&rp);
        rp.Source = ">";
        rp.Destination = "live.>";
        jsStreamConfig sc;
        jsStreamConfig_Init(&sc);
        sc.Name = name;
        sc.Subjects = subjects;
        sc.SubjectsLen = 1;
        sc.Storage = js_FileStorage;
        sc.Replicas = replicas;
        sc.MaxAge = classes[c].seconds * INT64_C(1000000000);
        sc.MaxMsgsPerSubject = (int64_t)max_mailbox;
        sc.Discard = js_DiscardNew;
        sc.DiscardNewPerSubject = true;
        sc.MaxMsgSize = (int32_t)(max_message * 2 + RECORD_OVERHEAD + PL_RELAY_ATTESTATION_MAX);
        sc.Duplicates = INT64_C(120) * 1000000000; /* the Nats-Msg-Id window */
        sc.RePublish = &rp;
        jsErrCode jerr = 0;
        natsStatus s = js_AddStream(NULL, b->js, &sc, NULL, &jerr);
        if (s != NATS_OK && jerr == JSStreamNameExistErr)
            s = js_UpdateStream(NULL, b->js, &sc, NULL, &jerr);
        if (s != NATS_OK) {
            blog(b, PL__LOG_ERROR, "cluster: stream %s: %s (%s, JetStream error %d)", name,
                 natsStatus_GetText(s), nats_GetLastError(NULL) ? nats_GetLastError(NULL) : "",
                 (int)jerr);
            return PL_ERR_CLUSTER;
        }
    }
    return PL_OK;
}

bool pl__relay_backend_nats_available(void) {
    return true;
}

/* Subscribe to the control plane and our answers, say hello, and learn
 * who is here from the answers (HELLO_MS) before serving: an instance
 * that serves clients is known to the others, whose rooms then wait for
 * it. Then the heartbeat. */
static pl_err control_plane_start(nats_backend *b) {
    pl_err e = pl__relay_plane_new(&b->plane, b->instance, mono_ms());
    if (e != PL_OK) {
        if (e == PL_ERR_INVALID_ARG)
            blog(b, PL__LOG_ERROR,
                 "cluster: instance id %s cannot be used (printable ASCII, no spaces, at most 63 "
                 "bytes)",
                 b->instance);
        return e;
    }
    natsInbox *inbox = NULL;
    natsStatus s = natsInbox_Create(&inbox);
    if (s == NATS_OK) {
        snprintf(b->inbox, sizeof b->inbox, "%s", (const char *)inbox);
        natsInbox_Destroy(inbox);
        char subj[112];
        snprintf(subj, sizeof subj, "%s.*", b->inbox);
        s = subscribe(b, &b->replies, subj, on_reply);
    }
    if (s == NATS_OK) s = subscribe(b, &b->ctl, "PAIRLINK.CTL.>", on_ctl);
    natsSubscription *hs = NULL;
    char hello_inbox[112];
    snprintf(hello_inbox, sizeof hello_inbox, "%s.hello", b->inbox);
    if (s == NATS_OK) s = natsConnection_SubscribeSync(&hs, b->nc, hello_inbox);
    if (s == NATS_OK) {
        char *msg = NULL;
        size_t len = 0;
        if (pl__relay_ctl_format(b->instance, NULL, NULL, 0, NULL, 0, &msg, &len) != PL_OK) {
            natsSubscription_Destroy(hs);
            blog(b, PL__LOG_ERROR,
                 "cluster: instance id %s cannot be used (printable ASCII, "
                 "no spaces, at most 63 bytes)",
                 b->instance);
            return PL_ERR_INVALID_ARG;
        }
        s = natsConnection_PublishRequest(b->nc, "PAIRLINK.CTL.HELLO", hello_inbox, msg, (int)len);
        free(msg);
    }
    if (s != NATS_OK) {
        natsSubscription_Destroy(hs);
        blog(b, PL__LOG_ERROR, "cluster: cannot join the control plane: %s", natsStatus_GetText(s));
        return PL_ERR_CLUSTER;
    }
    int64_t until = mono_ms() + HELLO_MS;
    for (int64_t left; (left = until - mono_ms()) > 0;) {
        natsMsg *m = NULL;
        if (natsSubscription_NextMsg(&m, hs, left) != NATS_OK) break;
        pl__relay_ctl c;
        if (pl__relay_ctl_parse(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), &c) == PL_OK)
            member_seen(b, c.instance, mono_ms());
        natsMsg_Destroy(m);
    }
    natsSubscription_Destroy(hs);
    uv_timer_start(&b->hb_timer, hb_tick, PL__RELAY_CTL_HB_MS, PL__RELAY_CTL_HB_MS);
    return PL_OK;
}

/* "nats://a:1,tls://b:2" -> a list (each at most 255 chars, 16 of them). */
static int split_urls(const char *urls, char (*out)[256], int max) {
    int n = 0;
    const char *p = urls;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (!len || len >= 256 || n == max ||
            (strncmp(p, "nats://", 7) != 0 && strncmp(p, "tls://", 6) != 0))
            return -1;
        memcpy(out[n], p, len);
        out[n][len] = '\0';
        n++;
        if (!e) break;
        p = e + 1;
    }
    return n;
}

pl_err pl__relay_backend_nats(pl__relay_backend **out, uv_loop_t *loop,
                              const pl__relay_nats_opts *opts, const pl__relay_backend_sink *sink) {
    PL_REQUIRE(out && loop && opts && sink && sink->core && sink->now);
    *out = NULL;
    char urls[16][256];
    int nurls = opts->urls ? split_urls(opts->urls, urls, 16) : -1;
    if (nurls <= 0 || opts->replicas < 0 || opts->replicas > 5 || opts->workers < 0 ||
        opts->workers > MAX_WORKERS)
        return PL_ERR_INVALID_ARG;
    nats_backend *b = calloc(1, sizeof *b);
    if (!b) return PL_ERR_NOMEM;
    b->base.ops = &nats_ops;
    b->sink = *sink;
    b->loop = loop;
    b->retry_ms = opts->retry_ms > 0 ? opts->retry_ms : 5000;
    b->nworkers = opts->workers ? opts->workers : 4;
    pthread_mutex_init(&b->mu, NULL);
    pthread_mutex_init(&b->gate_mu, NULL);
    pthread_cond_init(&b->gate_cv, NULL);
    for (int i = 0; i < MAX_WORKERS; i++) {
        pthread_mutex_init(&b->w[i].mu, NULL);
        pthread_cond_init(&b->w[i].cv, NULL);
        b->w[i].b = b;
    }
    uint8_t key[16];
    pl_random(key, sizeof key);
    pl__ht_init(&b->topics, key);
    pl_random(key, sizeof key);
    pl__ht_init(&b->puts, key);
    if (opts->instance_id && *opts->instance_id) {
        snprintf(b->instance, sizeof b->instance, "%s", opts->instance_id);
    } else {
        char host[40] = "relay";
        gethostname(host, sizeof host - 1);
        snprintf(b->instance, sizeof b->instance, "%s-%ld", host, (long)getpid());
    }
    const char *list[16];
    for (int i = 0; i < nurls; i++)
        list[i] = urls[i];
    /* The hand-off to the loop first: libnats may call back (a disconnect)
     * as soon as it is connected. */
    pl_err e = PL_ERR_SYS;
    natsStatus s = NATS_OK;
    if (uv_async_init(loop, &b->async, on_results) != 0) goto fail;
    b->async.data = b;
    b->async_open = true;
    if (uv_timer_init(loop, &b->retry_timer) != 0) goto fail;
    b->retry_timer.data = b;
    b->timer_open = true;
    if (uv_timer_init(loop, &b->hb_timer) != 0) goto fail;
    b->hb_timer.data = b;
    b->hb_open = true;
    if (uv_timer_init(loop, &b->ops_timer) != 0) goto fail;
    b->ops_timer.data = b;
    b->ops_open = true;
    e = PL_ERR_CLUSTER;
    s = natsOptions_Create(&b->nopts);
    if (s == NATS_OK) s = natsOptions_SetServers(b->nopts, list, nurls);
    char name[96];
    snprintf(name, sizeof name, "pairlink-relay %s", b->instance);
    if (s == NATS_OK) s = natsOptions_SetName(b->nopts, name); /* in the servers' connz */
    if (s == NATS_OK) s = natsOptions_SetMaxReconnect(b->nopts, -1);
    if (s == NATS_OK) s = natsOptions_SetReconnectWait(b->nopts, 100);
    if (s == NATS_OK) s = natsOptions_SetTimeout(b->nopts, REQ_WAIT_MS);
    if (s == NATS_OK) s = natsOptions_SetPingInterval(b->nopts, 2000);
    if (s == NATS_OK) s = natsOptions_SetMaxPingsOut(b->nopts, 2);
    if (s == NATS_OK) s = natsOptions_SetReconnectBufSize(b->nopts, 64 << 20);
    if (s == NATS_OK) s = natsOptions_SetDisconnectedCB(b->nopts, on_disconnected, b);
    if (s == NATS_OK) s = natsOptions_SetReconnectedCB(b->nopts, on_reconnected, b);
    if (s == NATS_OK) s = natsOptions_SetClosedCB(b->nopts, on_closed, b);
    /* TLS: asked by a tls:// URL or by a CA or client certificate. The
     * servers' certificates are checked (against --cluster-ca, or the
     * system's CAs) and must name the host of the URL. */
    bool tls = opts->ca || opts->cert;
    for (int i = 0; i < nurls; i++)
        tls = tls || !strncmp(urls[i], "tls://", 6);
    if (s == NATS_OK && tls) {
        s = natsOptions_SetSecure(b->nopts, true);
        const char *ca = opts->ca ? opts->ca : SYSTEM_CA_FILE;
        if (s == NATS_OK) s = natsOptions_LoadCATrustedCertificates(b->nopts, ca);
        if (s == NATS_OK && opts->cert)
            s = natsOptions_LoadCertificatesChain(b->nopts, opts->cert, opts->key);
        if (s != NATS_OK) {
            blog(b, PL__LOG_ERROR, "cluster: TLS set-up failed (%s%s%s): %s", ca,
                 opts->cert ? ", " : "", opts->cert ? opts->cert : "",
                 nats_GetLastError(NULL) ? nats_GetLastError(NULL) : natsStatus_GetText(s));
            goto fail;
        }
    }
    if (s == NATS_OK) s = natsConnection_Connect(&b->nc, b->nopts);
    if (s != NATS_OK) {
        char shown[16 * 64] = "";
        for (int i = 0; i < nurls; i++) {
            char one[256];
            show_url(urls[i], one, sizeof one);
            size_t n = strlen(shown);
            snprintf(shown + n, sizeof shown - n, "%s%s", i ? "," : "", one);
        }
        const char *last = nats_GetLastError(NULL);
        blog(b, PL__LOG_ERROR, "cluster: cannot connect to %s: %s%s%s", shown,
             natsStatus_GetText(s), last && *last ? ": " : "", last && *last ? last : "");
        goto fail;
    }
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = REQ_WAIT_MS;
    jo.PublishAsync.MaxPending = MAX_INFLIGHT; /* apply bounds it first: never stalls */
    jo.PublishAsync.AckHandler = on_pub_ack;
    jo.PublishAsync.AckHandlerClosure = b;
    if ((s = natsConnection_JetStream(&b->js, b->nc, &jo)) != NATS_OK) goto fail;
    if ((e = claim_instance(b)) != PL_OK) goto fail;
    e = PL_ERR_CLUSTER;
    int replicas = opts->replicas ? opts->replicas : (nurls >= 3 ? 3 : 1);
    b->max_mailbox = opts->max_mailbox ? opts->max_mailbox : 1000;
    if ((e = ensure_streams(b, replicas, b->max_mailbox,
                            opts->max_message ? opts->max_message : (512u << 10))) != PL_OK)
        goto fail;
    s = subscribe(b, &b->advisories, "$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED.>",
                  on_leader_elected);
    if (s != NATS_OK) {
        blog(b, PL__LOG_ERROR, "cluster: cannot follow leader elections: %s",
             natsStatus_GetText(s));
        e = PL_ERR_CLUSTER;
        goto fail;
    }
    if ((e = control_plane_start(b)) != PL_OK) goto fail;
    e = PL_ERR_SYS;
    for (int i = 0; i < b->nworkers; i++) {
        if (pthread_create(&b->w[i].th, NULL, worker_main, &b->w[i]) != 0) goto fail;
        b->w[i].started = true;
    }
    char url[256] = "", shown[256];
    natsConnection_GetConnectedUrl(b->nc, url, sizeof url);
    show_url(url, shown, sizeof shown);
    blog(b, PL__LOG_INFO, "cluster: connected to %s as instance %s, streams R%d ready", shown,
         b->instance, replicas);
    *out = &b->base;
    return PL_OK;
fail:
    /* Handles of b close with the loop, after which b may go: run it once. */
    if (b->timer_open || b->async_open || b->hb_open || b->ops_open) {
        if (b->timer_open) uv_close((uv_handle_t *)&b->retry_timer, NULL);
        if (b->hb_open) uv_close((uv_handle_t *)&b->hb_timer, NULL);
        if (b->ops_open) uv_close((uv_handle_t *)&b->ops_timer, NULL);
        b->hb_open = b->ops_open = false;
        if (b->async_open) {
            pthread_mutex_lock(&b->mu);
            b->closed = true;
            pthread_mutex_unlock(&b->mu);
            uv_close((uv_handle_t *)&b->async, NULL);
        }
        b->timer_open = b->async_open = false;
        uv_run(loop, UV_RUN_NOWAIT);
    }
    nb_free(&b->base);
    return e;
}

#else

bool pl__relay_backend_nats_available(void) {
    return false;
}

pl_err pl__relay_backend_nats(pl__relay_backend **out, uv_loop_t *loop,
                              const pl__relay_nats_opts *opts, const pl__relay_backend_sink *sink) {
    PL_REQUIRE(out && loop && opts && sink);
    *out = NULL;
    return PL_ERR_NO_CLUSTER;
}

#endif
