/* SPDX-License-Identifier: Apache-2.0 */
/* The relay client's runtime: libwebsockets on the driver's libuv loop,
 * moving frames and connection events between the sockets and the core
 * (client_core.h), and the transport table (relay_client.h). The only file
 * of the relay client that does I/O; it decides nothing the core could.
 * Notes on libwebsockets 4.1.6 under a foreign loop: docs/relay-client.md. */
#include "pairlink/relay_client.h"

#include "core/internal.h"
#include "pairlink/driver.h"
#include "platform/log_internal.h"
#include "transport/wc_relay/client_core.h"

#include <arpa/inet.h>
#include <libwebsockets.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define CLOSE_GRACE_MS 1000
#define CLOSE_TICK_MS 5
#define PROTOCOL_NAME "pl-relay-client"
#define LWS_STATIC_HANDLES_MAX 8 /* lws 4.1 on a foreign loop adds 2 */

typedef struct outframe {
    struct outframe *next;
    size_t len;
    unsigned char buf[]; /* LWS_PRE headroom + payload */
} outframe;

typedef enum close_phase {
    CP_NONE = 0,
    CP_WAIT_WS = 1, /* close frame sent, waiting for the socket to go */
    CP_DESTROY = 2, /* first lws_context_destroy */
    CP_POLL = 3,    /* waiting for lws's uv handles, then lookups */
} close_phase;

typedef struct rc_rt {
    pl_transport t; /* first: the handle users hold */
    pl__rc *core;
    pl_driver *d;
    uv_loop_t *loop;
    pl_driver_task task;
    void *foreign_loops[1];
    struct lws_context *lws;
    uv_handle_t *lws_handles[LWS_STATIC_HANDLES_MAX]; /* see walk_arg */
    size_t n_lws_handles;
    SSL_CTX *ssl_ctx; /* wss:// (or a ca_file given) only */
    pl_relay_result_cb on_result;
    void *result_ud;

    /* the current connection */
    uv_getaddrinfo_t *gai; /* the latest name lookup in flight, if any */
    unsigned resolving;    /* lookups in flight (close waits for them) */
    struct lws *wsi;
    uintptr_t gen;  /* current connection's generation (opaque user data) */
    bool conn_live; /* callbacks of connection `gen` still matter */
    bool tcp_up;    /* the TCP connection was made (TLS or the upgrade began) */
    int tcp_err;    /* else: why not (errno), if the socket said */
    bool open;
    int peer_close_code;
    outframe *out_head, *out_tail;
    bool ping_wanted;

    /* closing */
    close_phase cphase;
    int64_t close_deadline, next_tick;
    unsigned close_ticks;
    void (*done)(pl_transport *t);
} rc_rt;

static const pl_transport_ops rc_ops;

static rc_rt *rt_of(const pl_transport *t) {
    PL_REQUIRE(t && t->ops == &rc_ops);
    return (rc_rt *)t;
}

static int64_t now_ms(const rc_rt *rt) {
    return pl_driver_now(rt->d);
}

/* ---- outgoing frames ---- */

#define WRITE_BURST 64 /* frames written at once, at most */

/* Write queued frames while the socket takes them (lws_send_pipe_choked)
 * and nothing holds them (group commit), then ask for a writable event if
 * some are left. Writing at once saves a loop iteration and two epoll_ctl
 * per frame (a ping round trip has four). False: a write failed, and the
 * connection is being killed. */
static bool out_write(rc_rt *rt, struct lws *wsi) {
    int burst = 0;
    while (rt->out_head && !pl_transport_held(&rt->t) && burst++ < WRITE_BURST &&
           !lws_send_pipe_choked(wsi)) {
        outframe *f = rt->out_head;
        rt->out_head = f->next;
        if (!rt->out_head) rt->out_tail = NULL;
        int n = lws_write(wsi, f->buf + LWS_PRE, f->len, LWS_WRITE_TEXT);
        bool ok = n >= 0 && (size_t)n >= f->len;
        pl__rc_on_written(rt->core, f->len);
        free(f);
        if (!ok) return false;
    }
    if (rt->out_head && !pl_transport_held(&rt->t)) lws_callback_on_writable(wsi);
    return true;
}

/* out_write outside lws's callbacks: a failed write kills the connection
 * as a drop does (its CLOSED callback tells the core). */
static void out_write_now(rc_rt *rt) {
    if (!rt->wsi || !rt->open || out_write(rt, rt->wsi)) return;
    lws_set_timeout(rt->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    lws_cancel_service(rt->lws);
}

static void out_push(rc_rt *rt, const char *text, size_t len) {
    /* Whatever is not queued counts as written for the core's bound. */
    if (!rt->wsi || !rt->open) { /* the core re-sends after a reconnect */
        pl__rc_on_written(rt->core, len);
        return;
    }
    outframe *f = malloc(sizeof *f + LWS_PRE + len);
    if (!f) { /* the request's time-out sends it again */
        pl__rc_on_written(rt->core, len);
        return;
    }
    f->next = NULL;
    f->len = len;
    memcpy(f->buf + LWS_PRE, text, len);
    if (rt->out_tail)
        rt->out_tail->next = f;
    else
        rt->out_head = f;
    rt->out_tail = f;
    if (rt->out_head == f)
        out_write_now(rt);
    else if (!pl_transport_held(&rt->t))
        lws_callback_on_writable(rt->wsi);
}

static void out_clear(rc_rt *rt) {
    while (rt->out_head) {
        outframe *f = rt->out_head;
        rt->out_head = f->next;
        free(f);
    }
    rt->out_tail = NULL;
}

/* Forget the current connection (the core has been, or is being, told). */
/* Was the TCP connection of socket fd made? The pending socket error
 * says it was not (ECONNREFUSED, EHOSTUNREACH, ...). */
static void note_tcp(rc_rt *rt, int fd) {
    int so = 0;
    socklen_t len = sizeof so;
    if (fd >= 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &len) == 0 && so != 0) {
        rt->tcp_err = so;
        return;
    }
    rt->tcp_up = true;
}

static void conn_reset(rc_rt *rt) {
    rt->conn_live = false;
    rt->wsi = NULL;
    rt->open = false;
    rt->ping_wanted = false;
    out_clear(rt);
}

/* ---- the core's outputs ---- */

static void conn_start(rc_rt *rt, char *path);

static void report_result(rc_rt *rt, const pl__rc_output *o) {
    if (rt->on_result) rt->on_result(rt->result_ud, o->op, o->seq, o->topic, o->err, o->relay_code);
}

static void drain(rc_rt *rt) {
    pl__rc_output o;
    while (!rt->cphase && pl__rc_poll(rt->core, &o)) {
        switch (o.kind) {
        case PL__RC_CONNECT:
            conn_start(rt, o.text);
            o.text = NULL; /* taken */
            break;
        case PL__RC_SEND:
            out_push(rt, o.text, o.len);
            break;
        case PL__RC_PING:
            rt->ping_wanted = true;
            if (rt->wsi && rt->open) lws_callback_on_writable(rt->wsi);
            break;
        case PL__RC_DROP:
            if (rt->wsi) {
                lws_set_timeout(rt->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
                /* Under libuv, lws re-arms its timer only after socket
                 * activity: wake it so the kill happens now. */
                lws_cancel_service(rt->lws);
            }
            conn_reset(rt);
            break;
        case PL__RC_STATE:
            pl_transport_report_state(&rt->t, o.state, o.err);
            break;
        case PL__RC_MESSAGE: {
            pl_wc_relay_delivery_ext ext = {{PL_TRANSPORT_EXT_WC_RELAY}, o.tag, o.relay_topic};
            pl_delivery_info info = {
                .published_at_ms = o.published_at, .err = o.err, .ext = &ext.ext};
            pl_transport_deliver(&rt->t, o.topic, o.data, o.data_len, &info);
            break;
        }
        case PL__RC_RESULT:
            report_result(rt, &o);
            /* A refused or expired publish reaches the transport's user too:
             * a core must not wait in silence for an answer that will not
             * come. */
            if (o.op == PL_RELAY_OP_PUBLISH && (o.err == PL_ERR_RELAY || o.err == PL_ERR_TIMEOUT))
                pl_transport_report_publish_error(&rt->t, o.topic, o.err, o.relay_code);
            break;
        }
        pl__rc_output_clear(&o);
    }
}

/* ---- opening a connection ---- */

/* Open the WebSocket to `address` (a numeric IP). */
static void conn_open(rc_rt *rt, const char *address, const char *path) {
    const pl__relay_url *url = pl__rc_url(rt->core);
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof ci);
    ci.context = rt->lws;
    ci.address = address;
    ci.port = url->port;
    ci.path = path;
    ci.host = url->host_header; /* also the TLS SNI and certificate name */
    ci.origin = NULL;
    ci.protocol = NULL; /* no Sec-WebSocket-Protocol header, as JS clients */
    ci.local_protocol_name = PROTOCOL_NAME;
    ci.ietf_version_or_minus_one = -1;
    /* Never follow a redirect: the JWT's aud names this URL only. */
    ci.ssl_connection = LCCSCF_HTTP_NO_FOLLOW_REDIRECT | (url->tls ? LCCSCF_USE_SSL : 0);
    ci.opaque_user_data = (void *)rt->gen;
    uintptr_t gen = rt->gen;
    struct lws *w = lws_client_connect_via_info(&ci);
    /* Ended inside the call (a callback reported the failure)? */
    if (rt->cphase || gen != rt->gen || !rt->conn_live) return;
    if (!w) {
        conn_reset(rt);
        pl__rc_on_failed(rt->core, 0, NULL, now_ms(rt));
        drain(rt);
        return;
    }
    rt->wsi = w;
}

typedef struct resolve_req {
    uv_getaddrinfo_t req;
    rc_rt *rt;
    uintptr_t gen;
    char *path;
} resolve_req;

static void on_resolved(uv_getaddrinfo_t *gr, int status, struct addrinfo *res) {
    resolve_req *rr = gr->data;
    rc_rt *rt = rr->rt;
    uintptr_t gen = rr->gen;
    char *path = rr->path;
    free(rr);
    rt->resolving--;
    if (rt->gai == gr) rt->gai = NULL;
    char addr[INET6_ADDRSTRLEN] = "";
    if (status == 0 && res) {
        /* Rotate through the addresses across attempts: a dead first
         * address does not block the others. */
        size_t n = 0;
        for (struct addrinfo *a = res; a; a = a->ai_next)
            n++;
        pl_relay_client_stats st;
        pl__rc_stats(rt->core, &st);
        struct addrinfo *a = res;
        for (size_t k = (size_t)(st.connect_attempts - 1) % n; k > 0; k--)
            a = a->ai_next;
        if (a->ai_family == AF_INET) {
            inet_ntop(AF_INET, &((struct sockaddr_in *)a->ai_addr)->sin_addr, addr, sizeof addr);
        } else if (a->ai_family == AF_INET6) {
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)a->ai_addr)->sin6_addr, addr, sizeof addr);
        }
    }
    uv_freeaddrinfo(res);
    if (!rt->cphase && gen == rt->gen && rt->conn_live) {
        if (addr[0]) {
            conn_open(rt, addr, path);
        } else { /* the name does not resolve */
            char why[PL__RELAY_HOST_MAX + 64];
            snprintf(why, sizeof why, "cannot resolve %s: %s", pl__rc_url(rt->core)->host,
                     status ? uv_strerror(status) : "no address");
            conn_reset(rt);
            pl__rc_on_failed(rt->core, 0, why, now_ms(rt));
            drain(rt);
        }
    }
    free(path);
}

static void conn_start(rc_rt *rt, char *path) {
    rt->gen++;
    rt->conn_live = true;
    rt->tcp_up = false;
    rt->tcp_err = 0;
    rt->open = false;
    rt->peer_close_code = 0;
    const pl__relay_url *url = pl__rc_url(rt->core);
    unsigned char buf[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, url->host, buf) == 1 || inet_pton(AF_INET6, url->host, buf) == 1) {
        conn_open(rt, url->host, path);
        free(path);
        return;
    }
    /* lws 4.1 as packaged resolves names with a blocking getaddrinfo() on
     * the loop thread; resolve on libuv's thread pool instead. */
    resolve_req *rr = calloc(1, sizeof *rr);
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (!rr || (rr->rt = rt, rr->gen = rt->gen, rr->path = path, rr->req.data = rr,
                uv_getaddrinfo(rt->loop, &rr->req, on_resolved, url->host, NULL, &hints) != 0)) {
        free(rr);
        free(path);
        conn_reset(rt);
        pl__rc_on_failed(rt->core, 0, NULL, now_ms(rt));
        drain(rt);
        return;
    }
    rt->resolving++;
    rt->gai = &rr->req;
}

/* ---- libwebsockets callback ---- */

static int on_writeable(rc_rt *rt, struct lws *wsi) {
    if (rt->ping_wanted) {
        unsigned char buf[LWS_PRE + 1];
        rt->ping_wanted = false;
        if (lws_write(wsi, buf + LWS_PRE, 0, LWS_WRITE_PING) < 0) return -1;
        if (rt->out_head) lws_callback_on_writable(wsi);
        return 0;
    }
    /* Held (group commit): the release writes them. */
    return out_write(rt, wsi) ? 0 : -1;
}

static int relay_lws_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                        size_t len) {
    (void)user;
    if (!wsi) return 0;
    struct lws_context *ctx = lws_get_context(wsi);
    rc_rt *rt = ctx ? lws_context_user(ctx) : NULL;
    if (!rt) return 0;
    uintptr_t gen = (uintptr_t)lws_get_opaque_user_data(wsi);
    bool closing = rt->cphase != CP_NONE;
    bool current = gen != 0 && gen == rt->gen && rt->conn_live && !closing;

    switch (reason) {
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        if (!current || rt->open) return -1;
        rt->wsi = wsi;
        rt->open = true;
        pl__rc_on_open(rt->core, now_ms(rt));
        drain(rt);
        return 0;

    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (!current || !rt->open) return 0;
        pl__rc_on_data(rt->core, in, len, lws_frame_is_binary(wsi),
                       lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi),
                       now_ms(rt));
        drain(rt);
        return 0;

    case LWS_CALLBACK_CLIENT_RECEIVE_PONG:
        if (current) pl__rc_on_pong(rt->core, now_ms(rt));
        return 0;

    case LWS_CALLBACK_CLIENT_WRITEABLE:
        if (!current || !rt->open) return 0;
        return on_writeable(rt, wsi);

    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (current && in && len >= 2) {
            const unsigned char *p = in;
            rt->peer_close_code = (int)p[0] << 8 | p[1];
        }
        return 0;

    case LWS_CALLBACK_TIMER:
        /* Our own graceful close: closing from a timer callback sends the
         * close frame under libuv, unlike from WRITEABLE. */
        if (closing) {
            static const char bye[] = "bye";
            lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, (unsigned char *)bye, sizeof bye - 1);
            return -1;
        }
        return 0;

    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
        /* the upgrade request is about to be written: on a connection that
         * was made, or (lws 4.1 takes a failed connect's POLLOUT for
         * success) on one that failed, which the socket tells */
        if (current) note_tcp(rt, lws_get_socket_fd(wsi));
        return 0;

    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR: {
        if (closing && gen == rt->gen) rt->wsi = NULL;
        if (!current) return 0;
        unsigned status = lws_http_client_http_response(wsi);
        /* lws's words ("read failed", or a TLS error for a refused wss://
         * connection) hide whether the relay was reached at all */
        const pl__relay_url *url = pl__rc_url(rt->core);
        char why[PL__RELAY_HOST_MAX + 256];
        const char *text = in ? (const char *)in : NULL;
        if (!status && !rt->tcp_up) {
            snprintf(why, sizeof why, "cannot connect to %s port %d: %s", url->host, url->port,
                     rt->tcp_err ? strerror(rt->tcp_err)
                                 : "connection refused, or the host is unreachable");
            text = why;
        } else if (!status && url->tls) {
            snprintf(why, sizeof why, "TLS handshake with %s port %d failed%s%s", url->host,
                     url->port, text ? ": " : "", text ? text : "");
            text = why;
        } else if (!status) {
            snprintf(why, sizeof why, "%s port %d did not answer the WebSocket upgrade%s%s",
                     url->host, url->port, text ? ": " : "", text ? text : "");
            text = why;
        }
        conn_reset(rt);
        pl__rc_on_failed(rt->core, status, text, now_ms(rt));
        drain(rt);
        return 0;
    }

    case LWS_CALLBACK_CLIENT_CLOSED: {
        if (closing && gen == rt->gen) rt->wsi = NULL;
        if (!current) return 0;
        bool was_open = rt->open;
        conn_reset(rt);
        if (was_open)
            pl__rc_on_closed(rt->core, rt->peer_close_code, now_ms(rt));
        else
            pl__rc_on_lost(rt->core, PL_ERR_WEBSOCKET, now_ms(rt));
        drain(rt);
        return 0;
    }

    case LWS_CALLBACK_WSI_DESTROY:
        if (gen != 0 && gen == rt->gen) {
            rt->wsi = NULL;
            /* Safety net: a connection that vanished without CLOSED or
             * CONNECTION_ERROR still gets a reconnect. */
            if (current) {
                conn_reset(rt);
                pl__rc_on_lost(rt->core, PL_ERR_WEBSOCKET, now_ms(rt));
                drain(rt);
            }
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

/* ---- the driver task: the core's deadlines, then the close sequence ---- */

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

static void finish_close(rc_rt *rt) {
    pl_driver_stop(&rt->task);
    /* Cancelled publishes are reported before the closed callback, as libuv
     * reports cancelled writes before the close callback. */
    pl__rc_output o;
    while (pl__rc_poll(rt->core, &o)) {
        if (o.kind == PL__RC_RESULT) report_result(rt, &o);
        pl__rc_output_clear(&o);
    }
    rt->done(&rt->t);
}

/* The foreign-loop shutdown recipe, one step per tick (docs/relay-client.md). */
static void close_tick(rc_rt *rt, int64_t now) {
    rt->next_tick = now + CLOSE_TICK_MS;
    switch (rt->cphase) {
    case CP_NONE:
        return;
    case CP_WAIT_WS:
        if (rt->wsi && now < rt->close_deadline) return;
        rt->cphase = CP_DESTROY;
        /* fall through */
    case CP_DESTROY:
        /* Outside any lws callback: this is the driver's timer. */
        lws_context_destroy(rt->lws);
        rt->cphase = CP_POLL;
        return;
    case CP_POLL:
        if (rt->lws) {
            walk_arg w = {0};
            w.want = rt->lws_handles;
            w.nwant = rt->n_lws_handles;
            uv_walk(rt->loop, find_cb, &w);
            if (w.found) return;
            /* Nothing recorded (another lws build?): give its closes a
             * few loop turns. */
            if (rt->n_lws_handles == 0 && rt->close_ticks++ < 20) return;
            lws_context_destroy(rt->lws); /* the second call frees it */
            if (rt->lws) return;          /* not yet: try on the next tick */
        }
        if (rt->resolving) return; /* a cancelled lookup still reports back */
        finish_close(rt);
        return;
    }
}

static int64_t task_deadline(pl_driver_task *task) {
    rc_rt *rt = task->data;
    return rt->cphase ? rt->next_tick : pl__rc_next_deadline(rt->core);
}

static void task_timer(pl_driver_task *task, int64_t now) {
    rc_rt *rt = task->data;
    if (rt->cphase) {
        close_tick(rt, now);
        return;
    }
    pl__rc_on_timer(rt->core, now);
    drain(rt);
}

/* What the operations produced since (frames to send, results). */
static void task_before_wait(pl_driver_task *task, int64_t now) {
    rc_rt *rt = task->data;
    pl__rc_flush(rt->core, now);
    drain(rt);
}

/* ---- the transport table ---- */

static pl_err op_publish(pl_transport *t, const char *topic, const uint8_t *data, size_t len,
                         const pl_publish_opts *opts) {
    rc_rt *rt = rt_of(t);
    return pl__rc_publish(rt->core, topic, data, len, opts, now_ms(rt), NULL);
}

static pl_err op_subscribe(pl_transport *t, const char *topic) {
    rc_rt *rt = rt_of(t);
    return pl__rc_subscribe(rt->core, topic, now_ms(rt));
}

static pl_err op_unsubscribe(pl_transport *t, const char *topic) {
    rc_rt *rt = rt_of(t);
    return pl__rc_unsubscribe(rt->core, topic, now_ms(rt));
}

/* The last hold was released: write what waits (frames already moved from
 * the core; the rest follows from the next drain). */
static void op_release(pl_transport *t) {
    rc_rt *rt = rt_of(t);
    if (rt->out_head) out_write_now(rt);
}

static pl_transport_state op_state(const pl_transport *t, pl_err *err) {
    return pl__rc_state(rt_of(t)->core, err);
}

static size_t op_pending(const pl_transport *t) {
    return pl__rc_pending(rt_of(t)->core);
}

static void op_close(pl_transport *t, void (*done)(pl_transport *t)) {
    rc_rt *rt = rt_of(t);
    rt->done = done;
    bool was_open = pl__rc_close(rt->core);
    if (rt->gai) uv_cancel((uv_req_t *)rt->gai);
    int64_t now = now_ms(rt);
    rt->next_tick = now;
    if (was_open && rt->wsi) {
        /* Graceful: the close frame goes out from LWS_CALLBACK_TIMER. */
        lws_set_timer_usecs(rt->wsi, 1);
        lws_cancel_service(rt->lws); /* see the DROP output */
        rt->cphase = CP_WAIT_WS;
        rt->close_deadline = now + CLOSE_GRACE_MS;
    } else {
        rt->cphase = CP_DESTROY;
    }
}

static void rt_free(rc_rt *rt) {
    out_clear(rt);
    pl__rc_free(rt->core);
    SSL_CTX_free(rt->ssl_ctx); /* after the lws context: it used it */
    free(rt);
}

static void op_free(pl_transport *t) {
    rt_free(rt_of(t));
}

static const pl_transport_ops rc_ops = {
    .name = "wc-relay",
    .publish = op_publish,
    .subscribe = op_subscribe,
    .unsubscribe = op_unsubscribe,
    .state = op_state,
    .pending = op_pending,
    .close = op_close,
    .free = op_free,
    .release = op_release,
};

/* ---- public API ---- */

/* Our slot in the SSL_CTX's ex-data: the client it belongs to. */
static int ssl_rt_index = -1;
static uv_once_t ssl_index_once = UV_ONCE_INIT;

static void ssl_index_init(void) {
    ssl_rt_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

/* A TLS handshake starts only on a TCP connection that was made: what
 * tells "refused" from "TLS failed" when lws says neither. */
static void tls_info(const SSL *ssl, int where, int ret) {
    (void)ret;
    if (!(where & SSL_CB_HANDSHAKE_START) || ssl_rt_index < 0) return;
    rc_rt *rt = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ssl_rt_index);
    if (rt) note_tcp(rt, SSL_get_fd(ssl));
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

pl_err pl_relay_client_new(pl_transport **out, pl_driver *d, const pl_relay_client_opts *opts) {
    PL_REQUIRE(out != NULL);
    *out = NULL;
    PL_REQUIRE(d != NULL && opts != NULL && opts->seed != NULL);
    if (!pl_driver_loop(d)) return PL_ERR_INVALID_ARG; /* sockets need a loop */
    pl__rc_config cfg = {
        .url = opts->url,
        .seed = opts->seed,
        .project_id = opts->project_id,
        .jwt = opts->jwt,
        .rng = opts->rng,
        .rng_ctx = opts->rng_ctx,
        .connect_timeout_ms = opts->connect_timeout_ms,
        .request_timeout_ms = opts->request_timeout_ms,
        .reconnect_min_ms = opts->reconnect_min_ms,
        .reconnect_max_ms = opts->reconnect_max_ms,
        .ping_interval_ms = opts->ping_interval_ms,
        .ping_timeout_ms = opts->ping_timeout_ms,
        .max_queue = opts->max_queue,
        .max_topics = opts->max_topics,
        .dedup_capacity = opts->dedup_capacity,
        .max_queue_bytes = opts->max_queue_bytes,
        .max_frame_bytes = opts->max_frame_bytes,
        .rate_per_s = opts->rate_per_s,
        .rate_burst = opts->rate_burst,
        .max_unsent_bytes = opts->max_unsent_bytes,
        .flush_per_turn = true,
    };
    rc_rt *rt = calloc(1, sizeof *rt);
    if (!rt) return PL_ERR_NOMEM;
    pl_transport_init(&rt->t, &rc_ops, d, &opts->handler);
    rt->d = d;
    rt->loop = pl_driver_loop(d);
    rt->on_result = opts->on_result;
    rt->result_ud = opts->result_ud;
    pl_err err = pl__rc_new(&rt->core, &cfg, pl_driver_now(d));
    /* A bad ca_file is reported even for ws://: the option is wrong. */
    if (err == PL_OK && (pl__rc_url(rt->core)->tls || opts->ca_file))
        err = make_ssl_ctx(&rt->ssl_ctx, opts->ca_file);
    if (err == PL_OK && rt->ssl_ctx) {
        uv_once(&ssl_index_once, ssl_index_init);
        if (ssl_rt_index >= 0 && SSL_CTX_set_ex_data(rt->ssl_ctx, ssl_rt_index, rt) == 1)
            SSL_CTX_set_info_callback(rt->ssl_ctx, tls_info);
    }
    if (err != PL_OK) {
        rt_free(rt);
        return err;
    }
    bool tls = pl__rc_url(rt->core)->tls;
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    rt->foreign_loops[0] = rt->loop;
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = relay_protocols;
    info.options = LWS_SERVER_OPTION_LIBUV;
    if (tls) info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.foreign_loops = rt->foreign_loops;
    info.pcontext = &rt->lws;
    info.user = rt;
    if (tls) info.provided_client_ssl_ctx = rt->ssl_ctx;
    info.max_http_header_data = 8192;
    /* A small fd table: one socket (two while an old one dies) plus lws's
     * own pipe. Without it lws sizes its tables by RLIMIT_NOFILE. */
    info.fd_limit_per_thread = 16;
    uint32_t ct = opts->connect_timeout_ms ? opts->connect_timeout_ms : 15000;
    info.timeout_secs = (ct + 999) / 1000 + 5; /* ours fires first */
    walk_arg w = {0};
    uv_walk(rt->loop, count_cb, &w);
    pl__log_apply(); /* lws logs through pl_set_log, never to stderr */
    rt->lws = lws_create_context(&info);
    if (!rt->lws) {
        rt_free(rt);
        return PL_ERR_WEBSOCKET;
    }
    w.skip = w.idx;
    w.idx = 0;
    w.rec = rt->lws_handles;
    uv_walk(rt->loop, record_cb, &w);
    rt->n_lws_handles = w.nrec;
    /* The first connect starts from the driver (its deadline is now), so no
     * callback runs inside this function. */
    rt->task.data = rt;
    rt->task.next_deadline = task_deadline;
    rt->task.on_timer = task_timer;
    rt->task.before_wait = task_before_wait;
    pl_driver_start(d, &rt->task);
    *out = &rt->t;
    return PL_OK;
}

bool pl_relay_client_is(const pl_transport *t) {
    PL_REQUIRE(t);
    return t->ops == &rc_ops;
}

pl_err pl_relay_client_publish(pl_transport *t, const char *topic, const uint8_t *data, size_t len,
                               const pl_publish_opts *opts, uint64_t *seq) {
    rc_rt *rt = rt_of(t);
    PL_REQUIRE(topic && (data || len == 0));
    if (seq) *seq = 0;
    if (pl_transport_is_closing(t)) return PL_ERR_STATE;
    if (!pl_transport_topic_valid(topic)) return PL_ERR_INVALID_ARG;
    static const pl_publish_opts none;
    return pl__rc_publish(rt->core, topic, data, len, opts ? opts : &none, now_ms(rt), seq);
}

const char *pl_relay_client_reason(const pl_transport *t) {
    return pl__rc_why(rt_of(t)->core);
}

const char *pl_relay_client_did(const pl_transport *t) {
    return pl__rc_did(rt_of(t)->core);
}

void pl_relay_client_get_stats(const pl_transport *t, pl_relay_client_stats *out) {
    PL_REQUIRE(out);
    pl__rc_stats(rt_of(t)->core, out);
}
