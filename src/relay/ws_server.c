/* SPDX-License-Identifier: Apache-2.0 */
/* libwebsockets + libuv runtime of the relay: see ws_server.h. */
#include "relay/ws_server.h"

#include "core/htable.h"
#include "core/internal.h"
#include "pairlink/crypto.h"
#include "pairlink/driver.h"
#include "platform/log_internal.h"
#include "relay/auth.h"
#include "relay/relay_backend.h"
#include "relay/relay_store.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libwebsockets.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define DEF_PING_MS 20000
#define DEF_HANDSHAKE_S 10
#define REFUSAL_LOG_MS 1000
/* A closing connection whose socket never becomes writable (a client that
 * does not read) is dropped after this. */
#define CLOSE_BACKSTOP_S 3 /* refused sockets are logged once a second at most */
#define LOG_FRAME_CHARS 200
#define WRITE_BURST 64 /* frames written per writable event, at most */

/* A frame to write lives in the headroom of the core's SEND text
 * (PL_RELAY_TEXT_HEADROOM): this header, LWS_PRE bytes for libwebsockets,
 * then the text, in the one allocation the core made; no copy. */
typedef struct frame {
    struct frame *next;
    size_t len;
    unsigned char buf[]; /* LWS_PRE headroom, then len bytes */
} frame;

#define FRAME_OFFSET (PL_RELAY_TEXT_HEADROOM - LWS_PRE - offsetof(frame, buf))
_Static_assert(PL_RELAY_TEXT_HEADROOM >= LWS_PRE + offsetof(frame, buf) &&
                   FRAME_OFFSET % _Alignof(frame) == 0,
               "the core's headroom holds the frame header and LWS_PRE");

static void frame_free(frame *f) {
    free((char *)f - FRAME_OFFSET);
}

/* Per-connection state, living in lws's per-session user space. */
typedef struct sess {
    struct lws *wsi;
    uint64_t id;
    struct sess *prev, *next; /* every established session */
    pl__hnode hnode;          /* id table */
    frame *qhead, *qtail;
    size_t qbytes;
    char *rx;
    size_t rxlen, rxcap;
    uint64_t last_rx, last_ping; /* loop time, ms */
    bool established, ping_pending, closing;
    bool rx_paused; /* not reading: its queue is too long (pl__relay_core_wants_input) */
    int close_code;
    char close_reason[64];
    char did[PL_DID_KEY_SIZE]; /* from a verified JWT, else "" */
    char peer[64];
} sess;

/* The address of an admitted socket, hung on its wsi (opaque user data)
 * from accept to destruction, so that the core's count of sockets per
 * address is given back exactly once. */
typedef struct sockref {
    char addr[INET6_ADDRSTRLEN];
} sockref;

typedef struct held {
    struct held *next;
    uint64_t conn;
    frame *f;
} held;

struct pl__ws_server {
    pl__ws_server_opts o;
    char host[256];
    char *db_path;
    uv_loop_t loop;
    bool loop_ok;
    bool loop_poisoned; /* lws failed half-way: its handles on the loop dangle */
    struct lws_context *ctx;
    pl_driver *d;
    /* The core's deadlines, and the commit before the loop waits. */
    pl_driver_task core_task;
    /* Pings and reaping, every sweep_ms. */
    pl_driver_task sweep_task;
    int64_t next_sweep, sweep_ms;
    int64_t started_at; /* wall clock ms at start-up (the store's load) */
    uv_signal_t sigint, sigterm, sigusr1;
    bool handles_open, stopping, ran;
    pl__relay_core *core;
    pl__relay_store *store;     /* while loading at start-up; then the backend's */
    pl__relay_backend *backend; /* NULL: the core's mailbox alone (no --db, no --cluster) */
    int port;
    sess *sessions;
    pl__htable tab; /* id -> established session */
    uint64_t next_id;
    held *held_head, *held_tail;
    bool holding, tx_failed;
    pl_err final_err;
    sockref *pending; /* admitted by FILTER_NETWORK_CONNECTION, wsi not yet created */
    uint64_t refused_log_at;
    size_t refused_quiet;
    pl__relay_audience aud;           /* public URLs: the JWT audiences accepted */
    char urlarg[PL_JWT_MAX_LEN + 64]; /* scratch for the handshake (one thread) */
    /* The relay as a service: listeners, reloads, the allow-list, the
     * counters of /metrics. */
    struct {
        char addr[INET6_ADDRSTRLEN];
        int port;
        bool ipv6;
    } listen[PL__RELAY_LISTEN_MAX];
    size_t nlisten;
    uv_signal_t sighup;
    size_t base_rss;                 /* resident size before the core: off the budget */
    pl__relay_allowance *allowances; /* the core borrows them */
    char (*allow)[PL_DID_KEY_SIZE];  /* sorted */
    size_t nallow;
    uint64_t sockets_refused, auth_refused, not_allowed, http_requests, reloads, reload_failures;
};

/* ---- logging and clocks ------------------------------------------------------ */

static void vlog_(pl__ws_server *s, int level, const pl_log_field *f, size_t nf, const char *fmt,
                  va_list ap) {
    if ((!s->o.log && !s->o.logkv) || level > s->o.log_level) return;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    if (s->o.logkv)
        s->o.logkv(s->o.log_ud, level, line, f, nf);
    else
        s->o.log(s->o.log_ud, level, line);
}

__attribute__((format(printf, 3, 4))) static void logf_(pl__ws_server *s, int level,
                                                        const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vlog_(s, level, NULL, 0, fmt, ap);
    va_end(ap);
}

/* A line with fields for a JSON log (the text log shows the message). */
__attribute__((format(printf, 5, 6))) static void
logkv_(pl__ws_server *s, int level, const pl_log_field *f, size_t nf, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vlog_(s, level, f, nf, fmt, ap);
    va_end(ap);
}

static int64_t wall_ms(const pl__ws_server *s) {
    return pl_driver_now(s->d);
}

/* ---- session table -------------------------------------------------------------- */

static uint64_t sess_hash(const pl__ws_server *s, uint64_t id) {
    return pl__ht_hash(&s->tab, &id, sizeof id);
}

static sess *sess_find(pl__ws_server *s, uint64_t id) {
    uint64_t h = sess_hash(s, id);
    for (pl__hnode *n = pl__ht_first(&s->tab, h); n; n = pl__ht_next(n, h)) {
        sess *e = PL__ENTRY(n, sess, hnode);
        if (e->id == id) return e;
    }
    return NULL;
}

static pl_err sess_insert(pl__ws_server *s, sess *e) {
    PL_TRY(pl__ht_insert(&s->tab, &e->hnode, sess_hash(s, e->id)));
    e->prev = NULL;
    e->next = s->sessions;
    if (s->sessions) s->sessions->prev = e;
    s->sessions = e;
    return PL_OK;
}

static void sess_remove(pl__ws_server *s, sess *e) {
    pl__ht_remove(&s->tab, &e->hnode);
    if (e->prev)
        e->prev->next = e->next;
    else
        s->sessions = e->next;
    if (e->next) e->next->prev = e->prev;
}

/* A frame of e's queue is gone (written or dropped): the core counts it
 * no more. */
static void frame_done(pl__ws_server *s, uint64_t conn, frame *f) {
    pl__relay_core_sent(s->core, conn, f->len);
    frame_free(f);
}

static void sess_free_buffers(pl__ws_server *s, sess *e) {
    while (e->qhead) {
        frame *f = e->qhead;
        e->qhead = f->next;
        frame_done(s, e->id, f);
    }
    e->qtail = NULL;
    e->qbytes = 0;
    free(e->rx);
    e->rx = NULL;
    e->rxlen = e->rxcap = 0;
}

static void sess_free_buffers(pl__ws_server *s, sess *e);

/* Close from outside a RECEIVE callback. Returning -1 from WRITEABLE under
 * libuv drops the TCP connection without a CLOSE frame (Debian's 4.1.6), so
 * WRITEABLE arms a 1 us lws timer and the TIMER callback closes. The timer is
 * armed from inside lws: one armed from our own uv callbacks is only noticed
 * at lws's next housekeeping, seconds later. The timeout is a backstop for a
 * peer whose socket never becomes writable again. */
static void sess_close_later(pl__ws_server *s, sess *e, int code, const char *reason) {
    if (e->closing) return;
    e->closing = true;
    e->close_code = code;
    snprintf(e->close_reason, sizeof e->close_reason, "%s", reason);
    /* What is still queued will not be written: free it now, so that a
     * client closed for not reading gives its memory back at once. */
    sess_free_buffers(s, e);
    lws_callback_on_writable(e->wsi);
    lws_set_timeout(e->wsi, PENDING_TIMEOUT_USER_OK, CLOSE_BACKSTOP_S);
}

/* Take the text of SEND a as a frame (a->text is NULL afterwards). */
static frame *frame_take(pl__relay_action *a) {
    frame *f = (frame *)((char *)pl__relay_action_take_text(a) + FRAME_OFFSET);
    f->next = NULL;
    f->len = a->len;
    return f;
}

/* Queue f for e. The core bounds each queue (it closes a connection whose
 * queue outgrows max_queue_bytes_per_conn) and counts every byte until
 * frame_done. */
static void sess_enqueue(pl__ws_server *s, sess *e, frame *f) {
    if (e->closing) {
        frame_done(s, e->id, f);
        return;
    }
    bool was_empty = !e->qhead;
    /* Nothing waiting and room in the socket: written now. Asking for a
     * writable event first cost two epoll_ctl and a loop iteration per
     * frame (a quarter of the relay's CPU and a third of its latency in a
     * ping round trip); lws_write keeps what the socket does not take and
     * sends it when it can, as in the WRITEABLE callback. */
    if (was_empty && !lws_send_pipe_choked(e->wsi)) {
        size_t flen = f->len;
        int n = lws_write(e->wsi, f->buf + LWS_PRE, flen, LWS_WRITE_TEXT);
        frame_done(s, e->id, f);
        if (n < (int)flen) {
            logf_(s, PL__LOG_INFO, "conn %llu: write failed", (unsigned long long)e->id);
            sess_close_later(s, e, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "write failed");
        } else if (e->rx_paused && pl__relay_core_wants_input(s->core, e->id)) {
            /* (as WRITEABLE does: frames released by a commit may all go
             * this way, and nothing else would read the connection again) */
            e->rx_paused = false;
            lws_rx_flow_control(e->wsi, 1);
        }
        return;
    }
    if (e->qtail)
        e->qtail->next = f;
    else
        e->qhead = f;
    e->qtail = f;
    e->qbytes += f->len;
    /* A queue that was not empty already has its writable event asked for
     * (WRITEABLE asks again when it leaves frames): asking once per frame
     * cost an epoll_ctl each (10 % of the relay's CPU under load). */
    if (was_empty) lws_callback_on_writable(e->wsi);
}

/* ---- driving the core ------------------------------------------------------------ */

static void backend_log(void *ud, int level, const char *line) {
    logf_(ud, level, "%s", line);
}

/* Apply every action the core produced, in order. Frames that follow a
 * store write wait in `held` until the check phase commits. */
static void drain(pl__ws_server *s) {
    pl__relay_action a;
    while (pl__relay_core_pop(s->core, &a)) {
        switch (a.kind) {
        case PL__RELAY_SEND: {
            sess *e = sess_find(s, a.conn);
            if (!e) break;
            if (s->o.log_level >= PL__LOG_DEBUG) {
                char shown[LOG_FRAME_CHARS + 4];
                pl__relay_redact_frame(a.text, a.len, shown, sizeof shown);
                logf_(s, PL__LOG_DEBUG, "conn %llu -> %s", (unsigned long long)a.conn, shown);
            }
            frame *f = frame_take(&a);
            if (!s->holding) {
                sess_enqueue(s, e, f);
                break;
            }
            held *h = malloc(sizeof *h);
            if (!h) {
                frame_done(s, a.conn, f);
                sess_close_later(s, e, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out of memory");
                break;
            }
            h->next = NULL;
            h->conn = a.conn;
            h->f = f;
            if (s->held_tail)
                s->held_tail->next = h;
            else
                s->held_head = h;
            s->held_tail = h;
            break;
        }
        case PL__RELAY_CLOSE: {
            sess *e = sess_find(s, a.conn);
            if (!e) break;
            const pl_log_field f[] = {{"conn", NULL, (long long)a.conn},
                                      {"close_code", NULL, a.close_code},
                                      {"reason", a.reason, 0}};
            logkv_(s, PL__LOG_INFO, f, 3, "conn %llu: closing %d (%s)", (unsigned long long)a.conn,
                   a.close_code, a.reason);
            sess_close_later(s, e, a.close_code, a.reason);
            break;
        }
        case PL__RELAY_STORE_PUT:
        case PL__RELAY_STORE_DEL:
        case PL__RELAY_LOAD:
        case PL__RELAY_WATCH:
        case PL__RELAY_UNWATCH:
        case PL__RELAY_ROOM:
        case PL__RELAY_EVICT:
            /* relay_backend.h: a synchronous backend holds what follows a
             * put until its commit (flush). */
            if (s->backend && s->backend->ops->apply(s->backend, &a)) s->holding = true;
            break;
        }
        pl__relay_action_release(&a);
    }
}

/* Before the loop waits: commit what this loop iteration wrote, then
 * release the frames that were waiting for it (group commit). */
static void commit(pl__ws_server *s) {
    if (s->backend && s->backend->ops->flush && s->backend->ops->flush(s->backend) != PL_OK)
        s->tx_failed = true;
    while (s->held_head) {
        held *x = s->held_head;
        s->held_head = x->next;
        sess *e = sess_find(s, x->conn);
        if (!e) {
            frame_done(s, x->conn, x->f);
        } else if (s->tx_failed) {
            /* Not durable, so not acknowledged: the client republishes. */
            frame_done(s, x->conn, x->f);
            sess_close_later(s, e, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "storage failure");
        } else {
            sess_enqueue(s, e, x->f);
        }
        free(x);
    }
    s->held_tail = NULL;
    if (s->tx_failed) s->final_err = PL_ERR_STORE;
    s->holding = false;
    s->tx_failed = false;
}

static int64_t core_deadline(pl_driver_task *t) {
    pl__ws_server *s = t->data;
    return pl__relay_core_next_deadline(s->core);
}

static void core_timer(pl_driver_task *t, int64_t now) {
    pl__ws_server *s = t->data;
    pl__relay_core_tick(s->core, now);
    drain(s);
}

static void core_before_wait(pl_driver_task *t, int64_t now) {
    (void)now;
    commit(t->data);
}

/* ---- pings and reaping ----------------------------------------------------------- */

static int64_t sweep_deadline(pl_driver_task *t) {
    return ((pl__ws_server *)t->data)->next_sweep;
}

/* Liveness is measured on the loop's monotonic time, not the wall clock. */
static void on_sweep(pl_driver_task *t, int64_t wall) {
    pl__ws_server *s = t->data;
    s->next_sweep = wall + s->sweep_ms;
    uint64_t now = uv_now(&s->loop);
    for (sess *e = s->sessions; e; e = e->next) {
        if (e->closing) continue;
        if (now - e->last_rx >= (uint64_t)s->o.idle_timeout_ms) {
            logf_(s, PL__LOG_INFO, "conn %llu: no frame or pong for %d ms, reaping",
                  (unsigned long long)e->id, s->o.idle_timeout_ms);
            sess_close_later(s, e, LWS_CLOSE_STATUS_GOINGAWAY, "idle timeout");
            continue;
        }
        if (now - e->last_ping >= (uint64_t)s->o.ping_interval_ms) {
            e->last_ping = now;
            e->ping_pending = true;
            lws_callback_on_writable(e->wsi);
        }
    }
}

/* ---- authentication ---------------------------------------------------------------- */

static int did_cmp(const void *a, const void *b) {
    return strcmp(a, b);
}

static bool is_allowed(const pl__ws_server *s, const char *did) {
    return bsearch(did, s->allow, s->nallow, sizeof *s->allow, did_cmp) != NULL;
}

/* Find the JWT, verify it, and record the client's did:key. -1: refuse. */
static int authenticate(pl__ws_server *s, struct lws *wsi, sess *e) {
    const char *jwt = lws_get_urlarg_by_name(wsi, "auth=", s->urlarg, (int)sizeof s->urlarg);
    if (!jwt &&
        lws_hdr_copy(wsi, s->urlarg, (int)sizeof s->urlarg, WSI_TOKEN_HTTP_AUTHORIZATION) > 0)
        jwt = pl__relay_auth_bearer(s->urlarg);
    pl_err err = PL_ERR_RELAY_AUTH;
    if (jwt && *jwt) {
        pl_jwt_claims claims;
        err = pl__relay_auth_verify(&claims, jwt, strlen(jwt), &s->aud, wall_ms(s) / 1000);
        if (err == PL_OK && s->o.require_auth && s->nallow && !is_allowed(s, claims.iss)) {
            /* A valid key the operator did not list: refused like a
             * missing JWT (the JS SDK sees "Unexpected server response: 401"). */
            const pl_log_field f[] = {{"peer", e->peer, 0},
                                      {"did", claims.iss, 0},
                                      {"code", pl_errname(PL_ERR_RELAY_NOT_ALLOWED), 0}};
            logkv_(s, PL__LOG_INFO, f, 3,
                   "refused connection from %s: %s is not in the allow-list (%s)", e->peer,
                   claims.iss, pl_errname(PL_ERR_RELAY_NOT_ALLOWED));
            s->not_allowed++;
            lws_return_http_status(wsi, HTTP_STATUS_UNAUTHORIZED, NULL);
            return -1;
        }
        if (err == PL_OK) {
            snprintf(e->did, sizeof e->did, "%s", claims.iss);
            return 0;
        }
    }
    if (s->o.require_auth) {
        const pl_log_field f[] = {{"peer", e->peer, 0}, {"code", pl_errname(err), 0}};
        logkv_(s, PL__LOG_INFO, f, 2, "refused connection from %s: %s (%s)", e->peer,
               jwt ? pl_strerror(err) : "no JWT", pl_errname(err));
        s->auth_refused++;
        lws_return_http_status(wsi, HTTP_STATUS_UNAUTHORIZED, NULL);
        return -1;
    }
    if (jwt)
        logf_(s, PL__LOG_INFO, "connection from %s has an invalid JWT (%s): anonymous", e->peer,
              pl_errname(err));
    return 0;
}

/* ---- admission ------------------------------------------------------------------------ */

/* A new socket (FILTER_NETWORK_CONNECTION): admitted by the core, or
 * refused (-1: lws closes it at once). Refusals are logged at most once a
 * second, with the count of those not logged. */
static int admit(pl__ws_server *s, const struct lws_filter_network_conn_args *a) {
    sockref *ref = s->pending;
    s->pending = NULL;
    if (ref) { /* the last admitted socket got no wsi: its adoption failed */
        pl__relay_core_unadmit(s->core, ref->addr);
        free(ref);
    }
    if (s->stopping) return -1;
    char addr[INET6_ADDRSTRLEN] = "?";
    if (a->cli_addr.ss_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)&a->cli_addr)->sin_addr, addr,
                  sizeof addr);
    else if (a->cli_addr.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&a->cli_addr)->sin6_addr, addr,
                  sizeof addr);
    pl_err e = pl__relay_core_admit(s->core, addr);
    if (e == PL_OK && !(ref = malloc(sizeof *ref))) {
        pl__relay_core_unadmit(s->core, addr);
        e = PL_ERR_NOMEM;
    }
    if (e != PL_OK) {
        uint64_t now = uv_now(&s->loop);
        s->sockets_refused++;
        if (now >= s->refused_log_at) {
            pl__relay_stats st;
            pl__relay_core_stats(s->core, &st);
            const pl_log_field f[] = {{"peer", addr, 0},
                                      {"code", pl_errname(e), 0},
                                      {"sockets", NULL, (long long)st.sockets},
                                      {"memory", NULL, (long long)st.memory},
                                      {"refused_quietly", NULL, (long long)s->refused_quiet}};
            logkv_(s, PL__LOG_INFO, f, 5,
                   "refused a socket from %s: %s (%zu sockets, %zu bytes of memory in use; "
                   "%zu more refused quietly)",
                   addr, pl_errname(e), st.sockets, st.memory, s->refused_quiet);
            s->refused_log_at = now + REFUSAL_LOG_MS;
            s->refused_quiet = 0;
        } else {
            s->refused_quiet++;
        }
        return -1;
    }
    snprintf(ref->addr, sizeof ref->addr, "%s", addr);
    s->pending = ref;
    if (s->o.socket_sndbuf > 0)
        (void)setsockopt(a->accept_fd, SOL_SOCKET, SO_SNDBUF, &s->o.socket_sndbuf,
                         sizeof s->o.socket_sndbuf);
    return 0;
}

/* ---- /health and /metrics ---------------------------------------------------------- */

static bool addr_is_loopback(const char *a) {
    return !strncmp(a, "127.", 4) || !strcmp(a, "::1") || !strncmp(a, "::ffff:127.", 11);
}

/* One whole HTTP/1 answer in one write, as lws_return_http_status does. */
static int http_reply(struct lws *wsi, unsigned status, const char *ctype, const char *body,
                      size_t len) {
    enum { HEAD_ROOM = 512 };
    unsigned char *buf = malloc(LWS_PRE + HEAD_ROOM + len);
    if (!buf) return -1;
    unsigned char *start = buf + LWS_PRE, *p = start, *end = start + HEAD_ROOM;
    int rc = -1;
    if (!lws_add_http_common_headers(wsi, status, ctype, (lws_filepos_t)len, &p, end) &&
        !lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
                                      (const unsigned char *)"no-store", 8, &p, end) &&
        !lws_finalize_http_header(wsi, &p, end)) {
        memcpy(p, body, len);
        p += len;
        int n = (int)(p - start);
        if (lws_write(wsi, start, (size_t)n, LWS_WRITE_HTTP) == n)
            rc = lws_http_transaction_completed(wsi) ? -1 : 0;
    }
    free(buf);
    return rc;
}

static int serve_http(pl__ws_server *s, struct lws *wsi, const char *uri) {
    int which = !uri ? 0 : !strcmp(uri, "/health") ? 1 : !strcmp(uri, "/metrics") ? 2 : 0;
    if (!s || !which || lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) <= 0) {
        if (lws_return_http_status(wsi, HTTP_STATUS_BAD_REQUEST, "WebSocket only")) return -1;
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    }
    int access = which == 1 ? s->o.health : s->o.metrics;
    const sockref *ref = lws_get_opaque_user_data(wsi);
    if (access == PL__RELAY_HTTP_OFF ||
        (access == PL__RELAY_HTTP_LOOPBACK && !(ref && addr_is_loopback(ref->addr)))) {
        static const char nf[] = "not found\n";
        return http_reply(
            wsi, access == PL__RELAY_HTTP_OFF ? HTTP_STATUS_NOT_FOUND : HTTP_STATUS_FORBIDDEN,
            "text/plain; charset=utf-8", nf, sizeof nf - 1);
    }
    s->http_requests++;
    pl__relay_observed ob;
    pl__ws_server_observe(s, &ob);
    if (which == 1) {
        char body[512];
        int status = pl__relay_health_json(&ob, body, sizeof body);
        return http_reply(wsi, (unsigned)status, "application/json", body, strlen(body));
    }
    char *text;
    size_t len;
    if (pl__relay_metrics_text(&ob, &text, &len) != PL_OK) return -1;
    int rc = http_reply(wsi, HTTP_STATUS_OK, "text/plain; version=0.0.4; charset=utf-8", text, len);
    free(text);
    return rc;
}

/* ---- the lws protocol callback ----------------------------------------------------- */

static int on_receive(pl__ws_server *s, sess *e, struct lws *wsi, const void *in, size_t len) {
    e->last_rx = uv_now(&s->loop);
    if (e->closing || s->o.fault_ignore) return 0;
    if (lws_frame_is_binary(wsi)) {
        static const char why[] = "binary frames are not supported";
        logf_(s, PL__LOG_INFO, "conn %llu: binary frame, closing 1003", (unsigned long long)e->id);
        lws_close_reason(wsi, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE, (unsigned char *)why,
                         sizeof why - 1);
        return -1;
    }
    size_t max = pl__relay_core_limits(s->core)->max_frame_bytes;
    if (e->rxlen + len > max) {
        char why[64];
        int n = snprintf(why, sizeof why, "frame exceeds %zu bytes", max);
        logf_(s, PL__LOG_INFO, "conn %llu: frame over %zu bytes, closing 1009",
              (unsigned long long)e->id, max);
        lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, (unsigned char *)why, (size_t)n);
        return -1;
    }
    bool final = lws_is_final_fragment(wsi);
    const char *text = in;
    size_t tlen = len;
    if (!final || e->rxlen) { /* fragmented: gather the whole message */
        if (e->rxlen + len > e->rxcap) {
            size_t nc = e->rxcap ? e->rxcap : 4096;
            while (nc < e->rxlen + len)
                nc *= 2;
            if (nc > max) nc = max;
            char *nr = realloc(e->rx, nc);
            if (!nr) {
                lws_close_reason(wsi, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION,
                                 (unsigned char *)"out of memory", 13);
                return -1;
            }
            e->rx = nr;
            e->rxcap = nc;
        }
        memcpy(e->rx + e->rxlen, in, len);
        e->rxlen += len;
        if (!final) return 0;
        text = e->rx;
        tlen = e->rxlen;
    }
    if (s->o.log_level >= PL__LOG_DEBUG) { /* message bodies left out */
        char shown[LOG_FRAME_CHARS + 4];
        pl__relay_redact_frame(text, tlen, shown, sizeof shown);
        logf_(s, PL__LOG_DEBUG, "conn %llu <- %s", (unsigned long long)e->id, shown);
    }
    pl_err r = pl__relay_core_receive(s->core, e->id, text, tlen, wall_ms(s));
    if (r != PL_OK)
        logf_(s, PL__LOG_DEBUG, "conn %llu: request failed: %s", (unsigned long long)e->id,
              pl_errname(r));
    e->rxlen = 0;
    if (e->rxcap > 65536) { /* do not keep a large buffer for an idle client */
        free(e->rx);
        e->rx = NULL;
        e->rxcap = 0;
    }
    drain(s);
    /* A client that does not read its answers is not read from either. */
    if (!e->closing && !e->rx_paused && !pl__relay_core_wants_input(s->core, e->id)) {
        e->rx_paused = true;
        lws_rx_flow_control(wsi, 0);
    }
    return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len) {
    struct lws_context *ctx = lws_get_context(wsi);
    pl__ws_server *s = ctx ? lws_context_user(ctx) : NULL;
    sess *e = user;
    switch (reason) {
    case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
        /* Before a byte is read: the connection limits and the memory
         * budget decide, so that a storm of sockets costs an accept and a
         * close each. wsi is the listening socket here. */
        return s && user ? admit(s, user) : -1;

    case LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED:
        /* The wsi of the socket just admitted (adoption follows the filter
         * in the same call; lws sets the opaque data itself before this,
         * so not at WSI_CREATE). */
        if (s && s->pending) {
            lws_set_opaque_user_data(wsi, s->pending);
            s->pending = NULL;
        }
        return 0;

    case LWS_CALLBACK_WSI_DESTROY: {
        sockref *ref = s ? lws_get_opaque_user_data(wsi) : NULL;
        if (ref) {
            lws_set_opaque_user_data(wsi, NULL);
            pl__relay_core_unadmit(s->core, ref->addr);
            free(ref);
        }
        return 0;
    }

    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        if (!s || !e) return -1;
        memset(e, 0, sizeof *e);
        lws_get_peer_simple(wsi, e->peer, sizeof e->peer);
        if (s->stopping) return -1;
        return authenticate(s, wsi, e);

    case LWS_CALLBACK_ESTABLISHED: {
        if (!s || !e) return -1;
        e->wsi = wsi;
        e->id = s->next_id++;
        e->last_rx = e->last_ping = uv_now(&s->loop);
        const sockref *ref = lws_get_opaque_user_data(wsi);
        pl_err err = pl__relay_core_open(s->core, e->id, e->did[0] ? e->did : NULL,
                                         ref ? ref->addr : NULL, wall_ms(s));
        if (err == PL_OK && (err = sess_insert(s, e)) != PL_OK)
            pl__relay_core_close(s->core, e->id);
        if (err != PL_OK) {
            logf_(s, PL__LOG_ERROR, "conn from %s: cannot open: %s", e->peer, pl_errname(err));
            lws_close_reason(wsi, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION,
                             (unsigned char *)"internal error", 14);
            return -1;
        }
        e->established = true;
        const pl_log_field f[] = {{"conn", NULL, (long long)e->id},
                                  {"peer", e->peer, 0},
                                  {"did", e->did[0] ? e->did : "anonymous", 0},
                                  {"connected", NULL, (long long)s->tab.n}};
        logkv_(s, PL__LOG_INFO, f, 4, "conn %llu open from %s (%s%s); %zu connected",
               (unsigned long long)e->id, e->peer, e->did[0] ? e->did : "anonymous",
               ref ? "" : ", not admitted", s->tab.n);
        if (s->o.fault_close_code) sess_close_later(s, e, s->o.fault_close_code, "fault injected");
        return 0;
    }

    case LWS_CALLBACK_RECEIVE:
        if (!s || !e || !e->established) return -1;
        return on_receive(s, e, wsi, in, len);

    case LWS_CALLBACK_RECEIVE_PONG:
        if (s && e && e->established) e->last_rx = uv_now(&s->loop);
        return 0;

    case LWS_CALLBACK_SERVER_WRITEABLE: {
        if (!s || !e || !e->established) return 0;
        if (e->closing) {
            lws_set_timer_usecs(wsi, 1);
            return 0;
        }
        if (e->ping_pending) {
            /* lws 4.1 reports a pong only when it carries payload. */
            unsigned char buf[LWS_PRE + 4] = {0};
            memcpy(buf + LWS_PRE, "ping", 4);
            e->ping_pending = false;
            if (lws_write(wsi, buf + LWS_PRE, 4, LWS_WRITE_PING) < 4) return -1;
            if (e->qhead) lws_callback_on_writable(wsi);
            return 0;
        }
        /* Several frames per writable event while the socket takes them
         * (lws_send_pipe_choked() is lws's licence for the next lws_write):
         * one frame per event cost a loop iteration and an epoll_ctl per
         * frame and capped a busy subscriber at one frame per iteration. A
         * bound keeps one connection from starving the others. */
        for (int burst = 0; e->qhead; burst++) {
            if (burst && (burst >= WRITE_BURST || lws_send_pipe_choked(wsi))) {
                lws_callback_on_writable(wsi);
                break;
            }
            frame *f = e->qhead;
            e->qhead = f->next;
            if (!e->qhead) e->qtail = NULL;
            e->qbytes -= f->len;
            int n = lws_write(wsi, f->buf + LWS_PRE, f->len, LWS_WRITE_TEXT);
            size_t flen = f->len;
            frame_done(s, e->id, f);
            if (n < (int)flen) {
                logf_(s, PL__LOG_INFO, "conn %llu: write failed", (unsigned long long)e->id);
                return -1;
            }
        }
        if (e->rx_paused && pl__relay_core_wants_input(s->core, e->id)) {
            e->rx_paused = false;
            lws_rx_flow_control(wsi, 1);
        }
        return 0;
    }

    case LWS_CALLBACK_TIMER:
        if (e && e->closing) {
            lws_close_reason(wsi, (enum lws_close_status)e->close_code,
                             (unsigned char *)e->close_reason, strlen(e->close_reason));
            return -1;
        }
        return 0;

    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (s && e && e->established && len >= 2) {
            const unsigned char *p = in;
            logf_(s, PL__LOG_DEBUG, "conn %llu: peer sent close %d", (unsigned long long)e->id,
                  (p[0] << 8) | p[1]);
        }
        return 0;

    case LWS_CALLBACK_CLOSED:
        if (s && e && e->established) {
            e->established = false;
            pl__relay_core_close(s->core, e->id);
            sess_remove(s, e);
            sess_free_buffers(s, e);
            const pl_log_field f[] = {{"conn", NULL, (long long)e->id},
                                      {"connected", NULL, (long long)s->tab.n}};
            logkv_(s, PL__LOG_INFO, f, 2, "conn %llu closed; %zu connected",
                   (unsigned long long)e->id, s->tab.n);
            drain(s);
        }
        return 0;

    case LWS_CALLBACK_HTTP:
        /* WebSocket upgrades, and GET /health and /metrics. */
        return serve_http(s, wsi, in);

    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

/* lws allocates rx_buffer_size for every connection when it upgrades (two
 * thirds of an idle connection's memory); larger frames arrive in pieces
 * and are gathered in the session's own buffer. Smaller buffers cost CPU in
 * lws 4.1 (1 KiB: 3.0 KiB per idle connection instead of 6.1, but +25 % CPU
 * per 1 KiB message; 512 B: +48 %; docs/performance.md, "Memory per idle
 * connection"). tx_packet_size: one send() per frame (0 would cap each
 * send() at rx_buffer_size and write a larger frame in pieces). */
static const struct lws_protocols protocols[] = {
    {"irn", callback, sizeof(sess), 4096, 0, NULL, 65536},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---- lifecycle ----------------------------------------------------------------------- */

static void on_signal(uv_signal_t *h, int signum) {
    pl__ws_server *s = h->data;
    logf_(s, PL__LOG_INFO, "signal %d: shutting down", signum);
    pl__ws_server_stop(s);
}

/* SIGHUP: reload (the owner's callback), never die of it. */
static void on_hup_signal(uv_signal_t *h, int signum) {
    (void)signum;
    pl__ws_server *s = h->data;
    if (s->o.on_reload)
        s->o.on_reload(s->o.reload_ud);
    else
        logf_(s, PL__LOG_INFO, "SIGHUP: no configuration file to reload");
}

/* SIGUSR1: one line of the core's accounting, for operators (and the
 * hostile-client suite). */
static void on_stats_signal(uv_signal_t *h, int signum) {
    (void)signum;
    pl__ws_server *s = h->data;
    pl__relay_stats st;
    pl__relay_core_stats(s->core, &st);
    const pl_log_field f[] = {
        {"memory", NULL, (long long)st.memory},
        {"memory_budget", NULL, (long long)pl__relay_core_limits(s->core)->max_memory_bytes},
        {"sockets", NULL, (long long)st.sockets},
        {"connections", NULL, (long long)st.conns},
        {"topics", NULL, (long long)st.topics},
        {"messages", NULL, (long long)st.messages},
        {"subscriptions", NULL, (long long)st.subscriptions},
        {"published", NULL, (long long)st.published},
        {"delivered", NULL, (long long)st.delivered}};
    logkv_(s, PL__LOG_INFO, f, sizeof f / sizeof f[0],
           "stats: memory %zu of %zu bytes (stored %zu, queued %zu); %zu sockets, %zu connections, "
           "%zu topics, %zu messages, %zu subscriptions, %zu pushes in flight; %llu refused, %llu "
           "evicted, %llu closed slow",
           st.memory, pl__relay_core_limits(s->core)->max_memory_bytes, st.stored_bytes,
           st.queued_bytes, st.sockets, st.conns, st.topics, st.messages, st.subscriptions,
           st.inflight, (unsigned long long)st.refused, (unsigned long long)st.evicted,
           (unsigned long long)st.slow_closed);
}

static void backend_changed(void *ud) {
    drain(ud);
}

static int64_t backend_now(void *ud) {
    return wall_ms(ud);
}

/* --cluster: the NATS JetStream backend on this loop (relay_backend.h). */
static pl_err start_cluster(pl__ws_server *s) {
    if (s->db_path) return PL_ERR_INVALID_ARG;
    pl__relay_nats_opts no = s->o.cluster;
    const pl__relay_limits *l = pl__relay_core_limits(s->core);
    no.max_mailbox = l->max_mailbox_per_topic;
    no.max_message = l->max_message_bytes;
    pl__relay_backend_sink sink = {.core = s->core,
                                   .changed = backend_changed,
                                   .log = backend_log,
                                   .ud = s,
                                   .now = backend_now};
    return pl__relay_backend_nats(&s->backend, &s->loop, &no, &sink);
}

static pl_err restore_one(void *ud, const pl__relay_record *r) {
    pl__ws_server *s = ud;
    pl_err e = pl__relay_core_restore(s->core, r, s->started_at);
    if (e == PL_ERR_NOMEM) return e;
    if (e != PL_OK)
        logf_(s, PL__LOG_WARN, "store: message %.16s... on topic %.16s... not restored: %s", r->id,
              r->topic, pl_errname(e));
    return PL_OK;
}

int pl__ws_server_port(const pl__ws_server *s) {
    PL_REQUIRE(s);
    return s->port;
}

/* The driver closes after the signal handles it counts. */
static void close_handles(pl__ws_server *s) {
    if (!s->handles_open) return;
    s->handles_open = false;
    pl_driver_stop(&s->core_task);
    pl_driver_stop(&s->sweep_task);
    if (s->o.handle_signals) {
        pl_driver_close_handle(s->d, (uv_handle_t *)&s->sigint);
        pl_driver_close_handle(s->d, (uv_handle_t *)&s->sigterm);
        pl_driver_close_handle(s->d, (uv_handle_t *)&s->sigusr1);
        pl_driver_close_handle(s->d, (uv_handle_t *)&s->sighup);
    }
    pl_driver_close(s->d, NULL, NULL);
    s->d = NULL;
}

void pl__ws_server_stop(pl__ws_server *s) {
    PL_REQUIRE(s);
    if (s->stopping) return;
    s->stopping = true;
    commit(s); /* make what was acknowledged durable before anything else */
    if (s->backend) s->backend->ops->stop(s->backend);
    close_handles(s);
    if (s->ctx) lws_context_destroy(s->ctx); /* starts closing; the loop finishes it */
}

void pl__ws_server_free(pl__ws_server *s) {
    if (!s) return;
    if (s->loop_poisoned) {
        /* A failed lws_create_context can leave handles on the loop that
         * point into memory it already freed: running the loop again would
         * crash, so the loop is abandoned (a one-off leak on a failed start). */
        s->loop_ok = false;
    }
    if (s->loop_ok) {
        if (!s->stopping) pl__ws_server_stop(s);
        uv_run(&s->loop, UV_RUN_DEFAULT);
        if (s->ctx) lws_context_destroy(s->ctx);
        uv_run(&s->loop, UV_RUN_DEFAULT);
        if (uv_loop_close(&s->loop) != 0) {
            /* A handle outlived the context: run once more to let it go. */
            uv_run(&s->loop, UV_RUN_NOWAIT);
            (void)uv_loop_close(&s->loop);
        }
    }
    while (s->held_head) {
        held *x = s->held_head;
        s->held_head = x->next;
        frame_free(x->f);
        free(x);
    }
    free(s->pending);
    pl_driver_free(s->d); /* only one that never ran anything is left here */
    if (s->backend) s->backend->ops->free(s->backend);
    pl__relay_core_free(s->core);
    pl__relay_store_close(s->store);
    pl__ht_free(&s->tab);
    free(s->db_path);
    free(s->allowances);
    free(s->allow);
    free(s);
}

/* Resident memory of this process, bytes (0 if /proc cannot tell). */
static size_t rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    unsigned long size = 0, resident = 0;
    int n = fscanf(f, "%lu %lu", &size, &resident);
    fclose(f);
    long page = sysconf(_SC_PAGESIZE);
    return n == 2 && page > 0 ? (size_t)resident * (size_t)page : 0;
}

/* An IPv6 listener: an address literal, bound as given (IPV6_V6ONLY). */
static pl_err probe_bind6(const char *host, int port, char addr[INET6_ADDRSTRLEN]) {
    struct sockaddr_in6 sa;
    memset(&sa, 0, sizeof sa);
    sa.sin6_family = AF_INET6;
    sa.sin6_port = htons((uint16_t)port);
    if (inet_pton(AF_INET6, host, &sa.sin6_addr) != 1) return PL_ERR_INVALID_ARG;
    inet_ntop(AF_INET6, &sa.sin6_addr, addr, INET6_ADDRSTRLEN);
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return pl__fail(PL_ERR_SYS, errno);
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof sa);
    int err = errno;
    close(fd);
    return rc == 0 ? PL_OK : pl__fail(PL_ERR_SYS, err);
}

/* Resolve host to an IPv4 address (lws binds only what it is given) and try
 * the bind once ourselves: libwebsockets 4.1 with a foreign libuv loop
 * cannot be cleaned up after it fails to bind, so the common failures
 * (address in use, not local, no permission) are caught here first. */
static pl_err probe_bind(const char *host, int port, char addr[INET_ADDRSTRLEN]) {
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        struct addrinfo hints, *res = NULL;
        memset(&hints, 0, sizeof hints);
        hints.ai_family = AF_INET;
        hints.ai_socktype = SOCK_STREAM;
        if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res) return PL_ERR_INVALID_ARG;
        sa.sin_addr = ((struct sockaddr_in *)res->ai_addr)->sin_addr;
        freeaddrinfo(res);
    }
    inet_ntop(AF_INET, &sa.sin_addr, addr, INET_ADDRSTRLEN);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return pl__fail(PL_ERR_SYS, errno);
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof sa);
    int err = errno;
    close(fd);
    return rc == 0 ? PL_OK : pl__fail(PL_ERR_SYS, err);
}

pl_err pl__ws_server_new(pl__ws_server **out, const pl__ws_server_opts *opts) {
    PL_REQUIRE(out && opts);
    *out = NULL;
    if (opts->port < 0 || opts->port > 65535 || opts->ping_interval_ms < 0 ||
        opts->idle_timeout_ms < 0 || opts->handshake_timeout_s < 0 || opts->socket_sndbuf < 0 ||
        !opts->tls_cert != !opts->tls_key || opts->nlisten > PL__RELAY_LISTEN_MAX ||
        (opts->nlisten && !opts->listen))
        return PL_ERR_INVALID_ARG;
    pl__relay_listen one;
    const pl__relay_listen *ls = opts->listen;
    size_t nl = opts->nlisten;
    if (!nl) {
        memset(&one, 0, sizeof one);
        snprintf(one.host, sizeof one.host, "%s", opts->host ? opts->host : "127.0.0.1");
        one.port = opts->port;
        ls = &one;
        nl = 1;
    }
    char addrs[PL__RELAY_LISTEN_MAX][INET6_ADDRSTRLEN];
    for (size_t i = 0; i < nl; i++) {
        if (ls[i].port < 0 || ls[i].port > 65535) return PL_ERR_INVALID_ARG;
        PL_TRY(ls[i].ipv6 ? probe_bind6(ls[i].host, ls[i].port, addrs[i])
                          : probe_bind(ls[i].host, ls[i].port, addrs[i]));
    }
    const char *addr = addrs[0];
    pl__ws_server *s = calloc(1, sizeof *s);
    if (!s) return PL_ERR_NOMEM;
    for (size_t i = 0; i < nl; i++) {
        memcpy(s->listen[i].addr, addrs[i], sizeof s->listen[i].addr);
        s->listen[i].port = ls[i].port;
        s->listen[i].ipv6 = ls[i].ipv6;
    }
    s->nlisten = nl;
    /* Copies of what the caller may free or change (a reload). */
    if (opts->limits.nallowances) {
        s->allowances = malloc(opts->limits.nallowances * sizeof *s->allowances);
        if (!s->allowances) {
            free(s);
            return PL_ERR_NOMEM;
        }
        memcpy(s->allowances, opts->limits.allowances,
               opts->limits.nallowances * sizeof *s->allowances);
    }
    if (opts->nallow) {
        s->allow = malloc(opts->nallow * sizeof *s->allow);
        if (!s->allow) {
            free(s->allowances);
            free(s);
            return PL_ERR_NOMEM;
        }
        memcpy(s->allow, opts->allow, opts->nallow * sizeof *s->allow);
        s->nallow = opts->nallow;
    }
    for (size_t i = 0; i < opts->n_public_urls; i++) {
        pl_err ae = pl__relay_audience_add(&s->aud, opts->public_urls[i]);
        if (ae != PL_OK) {
            free(s->allowances);
            free(s->allow);
            free(s);
            return ae;
        }
    }
    s->o = *opts;
    s->o.public_urls = NULL; /* not kept: copied into s->aud */
    snprintf(s->host, sizeof s->host, "%s", addr);
    s->o.host = s->host;
    s->o.listen = NULL; /* copied into s->listen */
    s->o.allow = NULL;  /* copied into s->allow */
    if (opts->db_path && !(s->db_path = strdup(opts->db_path))) {
        free(s->allowances);
        free(s->allow);
        free(s);
        return PL_ERR_NOMEM;
    }
    s->o.db_path = s->db_path;
    if (!s->o.ping_interval_ms) s->o.ping_interval_ms = DEF_PING_MS;
    if (!s->o.idle_timeout_ms) s->o.idle_timeout_ms = 2 * s->o.ping_interval_ms + 10000;
    if (!s->o.handshake_timeout_s) s->o.handshake_timeout_s = DEF_HANDSHAKE_S;
    if (!s->o.max_memory) s->o.max_memory = PL_RELAY_DEF_MEMORY;
    s->next_id = 1;
    uint8_t key[16];
    pl_random(key, sizeof key);
    pl__ht_init(&s->tab, key);
    pl_err e;
    int64_t now = s->started_at = pl_wall_clock_ms();
    /* The core's budget: the process budget less what the process holds
     * now (code, libraries) and the reserve. */
    pl__relay_limits lim = opts->limits;
    lim.allowances = s->allowances;
    size_t base = s->base_rss = rss_bytes();
    if (s->o.max_memory < base + PL__WS_MEMORY_RESERVE + PL__WS_MEMORY_MIN) {
        logf_(s, PL__LOG_ERROR, "--max-memory %zu is below the %zu bytes the relay needs to start",
              s->o.max_memory, base + PL__WS_MEMORY_RESERVE + PL__WS_MEMORY_MIN);
        e = PL_ERR_INVALID_ARG;
        goto fail;
    }
    lim.max_memory_bytes = s->o.max_memory - base - PL__WS_MEMORY_RESERVE;
    /* Without --db the mailbox is the core's own, in memory: no store, no
     * second copy, and no frame waits for a commit (issue 12: the SQLite
     * mailbox in memory was a fifth of the relay's CPU per message). */
    lim.memory_store = false;
    lim.no_store = !s->db_path && !s->o.cluster.urls;
    lim.cluster = s->o.cluster.urls != NULL;
    if ((e = pl__relay_core_new(&s->core, &lim, now)) != PL_OK) goto fail;
    if (s->db_path) {
        if ((e = pl__relay_store_open(&s->store, s->db_path)) != PL_OK) goto fail;
        size_t pruned = 0, skipped = 0;
        if ((e = pl__relay_store_prune(s->store, now, &pruned)) != PL_OK) goto fail;
        if ((e = pl__relay_store_load(s->store, now, restore_one, s, &skipped)) != PL_OK) goto fail;
        pl__relay_stats st;
        pl__relay_core_stats(s->core, &st);
        logf_(s, PL__LOG_INFO,
              "store %s: %zu messages on %zu topics restored, %zu expired pruned%s", s->db_path,
              st.messages, st.topics, pruned, skipped ? ", some malformed rows skipped" : "");
        if ((e = pl__relay_backend_sqlite(&s->backend, s->store, backend_log, s)) != PL_OK)
            goto fail;
        s->store = NULL;
    }

    if (uv_loop_init(&s->loop) != 0) {
        e = PL_ERR_SYS;
        goto fail;
    }
    s->loop_ok = true;
    if ((e = pl_driver_new(&s->d, &s->loop)) != PL_OK) goto fail;
    s->core_task = (pl_driver_task){.data = s,
                                    .next_deadline = core_deadline,
                                    .on_timer = core_timer,
                                    .before_wait = core_before_wait};
    s->sweep_task =
        (pl_driver_task){.data = s, .next_deadline = sweep_deadline, .on_timer = on_sweep};
    if (s->o.cluster.urls && (e = start_cluster(s)) != PL_OK) goto fail;
    if (s->o.handle_signals) {
        uv_signal_init(&s->loop, &s->sigint);
        uv_signal_init(&s->loop, &s->sigterm);
        uv_signal_init(&s->loop, &s->sigusr1);
        uv_signal_init(&s->loop, &s->sighup);
        s->sigint.data = s->sigterm.data = s->sigusr1.data = s->sighup.data = s;
        /* Armed now, not when the loop starts: a script that stops the
         * relay as soon as it printed its port must get a clean stop. */
        uv_signal_start(&s->sigint, on_signal, SIGINT);
        uv_signal_start(&s->sigterm, on_signal, SIGTERM);
        uv_signal_start(&s->sigusr1, on_stats_signal, SIGUSR1);
        uv_signal_start(&s->sighup, on_hup_signal, SIGHUP);
    }
    s->handles_open = true;

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    void *loops[] = {&s->loop};
    /* One vhost per listener, each with its own address and family. */
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.gid = -1;
    info.uid = -1;
    info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
                   LWS_SERVER_OPTION_VALIDATE_UTF8;
    if (s->o.tls_cert) {
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.ssl_cert_filepath = s->o.tls_cert;
        info.ssl_private_key_filepath = s->o.tls_key;
        /* HTTP/1.1 only: WebSocket clients upgrade over it, and /health
         * and /metrics answer in one HTTP/1 write (curl would pick h2). */
        info.alpn = "http/1.1";
    }
    info.foreign_loops = loops;
    info.pcontext = &s->ctx;
    info.user = s;
    /* A JS client's JWT travels in the query; lws drops a longer header
     * silently at the default 4096. */
    info.max_http_header_data = 16384;
    /* A socket has this long to finish its upgrade (lws closes it then),
     * and an HTTP header buffer is held as long: slowloris gets no more. */
    info.timeout_secs = (unsigned)s->o.handshake_timeout_s;
    info.timeout_secs_ah_idle = (unsigned)s->o.handshake_timeout_s;
    pl__log_apply(); /* lws logs through pl_set_log, never to stderr */
    s->ctx = lws_create_context(&info);
    if (!s->ctx) {
        logf_(s, PL__LOG_ERROR,
              "cannot listen on %s:%d (address in use, or no lws evlib_uv plugin)", s->host,
              s->o.port);
        s->loop_poisoned = true;
        e = PL_ERR_WEBSOCKET;
        goto fail;
    }
    static const char *const vhost_names[PL__RELAY_LISTEN_MAX] = {"l0", "l1", "l2", "l3",
                                                                  "l4", "l5", "l6", "l7"};
    for (size_t i = 0; i < s->nlisten; i++) {
        struct lws_context_creation_info vi = info;
        vi.vhost_name = vhost_names[i];
        vi.port = s->listen[i].port;
        vi.iface = s->listen[i].addr;
        /* An IPv4 vhost with IPv6 on would bind every interface whatever
         * its iface (lws maps the address into ::); an IPv6 one binds its
         * address only, so [::] sits beside 0.0.0.0. */
        vi.options = LWS_SERVER_OPTION_VALIDATE_UTF8 |
                     (s->listen[i].ipv6 ? LWS_SERVER_OPTION_IPV6_V6ONLY_MODIFY |
                                              LWS_SERVER_OPTION_IPV6_V6ONLY_VALUE
                                        : LWS_SERVER_OPTION_DISABLE_IPV6);
        if (s->o.tls_cert) vi.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        struct lws_vhost *vh = lws_create_vhost(s->ctx, &vi);
        int port = vh ? lws_get_vhost_listen_port(vh) : -1;
        if (port <= 0) {
            logf_(s, PL__LOG_ERROR, "cannot listen on %s port %d", s->listen[i].addr,
                  s->listen[i].port);
            e = PL_ERR_WEBSOCKET;
            goto fail;
        }
        s->listen[i].port = port;
    }
    s->port = s->listen[0].port;
    if (!opts->n_public_urls) {
        for (size_t i = 0; i < s->nlisten; i++) {
            /* The name as given (what local clients type) and the address. */
            char given[sizeof one.host + 2], bound[INET6_ADDRSTRLEN + 2];
            const pl__relay_listen *l = &ls[i];
            snprintf(given, sizeof given, l->ipv6 ? "[%s]" : "%s", l->host);
            snprintf(bound, sizeof bound, l->ipv6 ? "[%s]" : "%s", s->listen[i].addr);
            if ((e = pl__relay_audience_default(&s->aud, given, s->listen[i].port,
                                                s->o.tls_cert)) != PL_OK ||
                (e = pl__relay_audience_default(&s->aud, bound, s->listen[i].port,
                                                s->o.tls_cert)) != PL_OK)
                goto fail;
            if (!pl__relay_host_is_loopback(bound))
                logf_(s, PL__LOG_WARN,
                      "listening on %s without --public-url: only JWTs for %s are accepted; "
                      "name the URL clients use with --public-url",
                      bound, s->aud.url[0]);
        }
    }
    *out = s;
    return PL_OK;
fail:
    pl__ws_server_free(s);
    return e;
}

pl_err pl__ws_server_run(pl__ws_server *s) {
    PL_REQUIRE(s && !s->ran);
    s->ran = true;
    if (!s->stopping) {
        int64_t sweep = s->o.ping_interval_ms / 4;
        if (sweep < 50) sweep = 50;
        if (sweep > 5000) sweep = 5000;
        s->sweep_ms = sweep;
        s->next_sweep = pl_driver_now(s->d) + sweep;
        pl_driver_start(s->d, &s->core_task);
        pl_driver_start(s->d, &s->sweep_task);
    }
    uv_run(&s->loop, UV_RUN_DEFAULT);
    if (s->ctx) lws_context_destroy(s->ctx);
    pl_err e = s->final_err;
    logf_(s, PL__LOG_INFO, "stopped");
    return e;
}

/* ---- the relay as a service ------------------------------------------------------------ */

size_t pl__ws_server_listeners(const pl__ws_server *s) {
    PL_REQUIRE(s);
    return s->nlisten;
}

const char *pl__ws_server_listener_host(const pl__ws_server *s, size_t i) {
    PL_REQUIRE(s && i < s->nlisten);
    return s->listen[i].addr;
}

int pl__ws_server_listener_port(const pl__ws_server *s, size_t i) {
    PL_REQUIRE(s && i < s->nlisten);
    return s->listen[i].port;
}

bool pl__ws_server_listener_ipv6(const pl__ws_server *s, size_t i) {
    PL_REQUIRE(s && i < s->nlisten);
    return s->listen[i].ipv6;
}

pl_err pl__ws_server_apply(pl__ws_server *s, const pl__ws_server_opts *o) {
    PL_REQUIRE(s && o && (o->allow || !o->nallow));
    size_t max_memory = o->max_memory ? o->max_memory : PL_RELAY_DEF_MEMORY;
    if (max_memory < s->base_rss + PL__WS_MEMORY_RESERVE + PL__WS_MEMORY_MIN) {
        logf_(s, PL__LOG_ERROR, "--max-memory %zu is below the %zu bytes the relay needs",
              max_memory, s->base_rss + PL__WS_MEMORY_RESERVE + PL__WS_MEMORY_MIN);
        return PL_ERR_INVALID_ARG;
    }
    /* Everything new is allocated first, so that a failure changes nothing. */
    pl__relay_allowance *al = NULL;
    char(*allow)[PL_DID_KEY_SIZE] = NULL;
    if (o->limits.nallowances) {
        if (!(al = malloc(o->limits.nallowances * sizeof *al))) return PL_ERR_NOMEM;
        memcpy(al, o->limits.allowances, o->limits.nallowances * sizeof *al);
    }
    if (o->nallow) {
        if (!(allow = malloc(o->nallow * sizeof *allow))) {
            free(al);
            return PL_ERR_NOMEM;
        }
        memcpy(allow, o->allow, o->nallow * sizeof *allow);
    }
    pl__relay_limits lim = o->limits;
    lim.allowances = al;
    lim.max_memory_bytes = max_memory - s->base_rss - PL__WS_MEMORY_RESERVE;
    pl_err e = pl__relay_core_set_limits(s->core, &lim);
    if (e != PL_OK) {
        free(al);
        free(allow);
        return e;
    }
    free(s->allowances);
    s->allowances = al;
    free(s->allow);
    s->allow = allow;
    s->nallow = o->nallow;
    s->o.max_memory = max_memory;
    s->o.require_auth = o->require_auth;
    s->o.health = o->health;
    s->o.metrics = o->metrics;
    s->o.log_level = o->log_level;
    return PL_OK;
}

void pl__ws_server_observe(pl__ws_server *s, pl__relay_observed *out) {
    PL_REQUIRE(s && out);
    memset(out, 0, sizeof *out);
    pl__relay_core_stats(s->core, &out->st);
    out->memory_budget = pl__relay_core_limits(s->core)->max_memory_bytes;
    out->max_memory = s->o.max_memory;
    out->rss = rss_bytes();
    out->uptime_ms = (s->d ? pl_driver_now(s->d) : pl_wall_clock_ms()) - s->started_at;
    out->listeners = s->nlisten;
    out->sockets_refused = s->sockets_refused;
    out->auth_refused = s->auth_refused;
    out->not_allowed = s->not_allowed;
    out->http_requests = s->http_requests;
    out->reloads = s->reloads;
    out->reload_failures = s->reload_failures;
    if (s->backend && s->backend->ops->stats) {
        out->cluster = true;
        s->backend->ops->stats(s->backend, &out->cl);
    }
}

void pl__ws_server_count_reload(pl__ws_server *s, bool ok) {
    PL_REQUIRE(s);
    if (ok)
        s->reloads++;
    else
        s->reload_failures++;
}
