/* SPDX-License-Identifier: Apache-2.0 */
/* The libp2p host on a driver's libuv loop (include/pairlink/p2p.h): TCP,
 * DNS, limits, and the application's callbacks around one connection core
 * (src/p2p/conn.c) per TCP connection. Protocol decisions are the core's;
 * this file moves bytes and keeps handles. Time comes from the driver: each
 * connection is a driver task whose deadline is its core's (or its dial,
 * close or ping deadline). */
#include "pairlink/p2p.h"

#include "core/internal.h"
#include "p2p/conn.h"
#include "p2p/identify.h"
#include "p2p/key.h"
#include "p2p/mss.h"
#include "p2p/multiaddr.h"
#include "pairlink/codec.h"
#include "pairlink/hash.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LISTENERS 8
#define READ_BUF (64u * 1024u)
#define WRITE_CHUNK (256u * 1024u)

typedef struct hstream {
    struct hstream *next;
    uint32_t handle;
    pl_p2p_stream_cb cb;
    void *ud;
    size_t deferred; /* bytes read_msg handed out, consumed at the next call */
} hstream;

typedef struct hping {
    struct hping *next;
    pl_p2p_host *host;
    pl_p2p_conn_id conn;
    uint32_t handle;
    pl__ping p;
    uint64_t t0_ns;
    int64_t deadline;
    bool sent, done;
    pl_p2p_ping_cb cb;
    void *ud;
} hping;

typedef enum hc_state {
    HC_RESOLVING = 1,
    HC_CONNECTING,
    HC_OPEN,
    HC_CLOSING, /* flushing the last bytes */
    HC_DEAD,    /* handles closing */
} hc_state;

typedef struct hconn {
    struct hconn *next;
    pl_p2p_host *host;
    pl_p2p_conn_id id;
    hc_state st;
    bool inbound, established, reported;
    uv_tcp_t tcp;
    pl_driver_task task;
    uv_connect_t connect;
    uv_getaddrinfo_t gai;
    bool gai_pending;
    int handles; /* open uv handles (the TCP one) */
    pl__conn *core;
    pl__ma_dial target;
    pl__ma remote_ma;
    char remote[PL__MA_TEXT_MAX + 1];
    char ip[64];
    size_t inflight;
    int64_t dial_deadline, close_deadline;
    /* Graceful end: FIN once the last bytes are out, then wait for the
     * peer's EOF (reading and discarding), so that closing never finds
     * unread bytes in the kernel, which would turn our FIN into an RST
     * and the peer's orderly end into "connection reset". */
    uv_shutdown_t shut;
    bool shut_sent, peer_eof;
    hstream *streams;
    hping *pings;
    int depth;  /* inside pump */
    bool again; /* pump asked for while pumping */
    /* A reader took bytes outside a callback (peek, read_msg): their
     * consumption and what it releases (window credit, a stream now
     * done) wait for the pump before the loop waits. */
    bool dirty;
    pl_p2p_peer_id peer;
} hconn;

typedef struct handler {
    char *proto;
    pl_p2p_stream_cb cb;
    void *ud;
} handler;

typedef struct listener {
    uv_tcp_t tcp;
    pl_p2p_host *host;
} listener;

struct pl_p2p_host {
    pl_driver *drv;
    uv_loop_t *loop;
    pl_p2p_host_opts o;
    pl_p2p_key *key;
    pl__nxx_identity nid;
    char agent[128];
    handler *handlers;
    size_t nhandlers;
    const char **names; /* handler protocol ids, for identify */
    pl__conn_registry reg;
    listener *lst[MAX_LISTENERS];
    pl__ma lma[MAX_LISTENERS];
    char *ltext[MAX_LISTENERS];
    size_t nlisten;
    hconn *conns;
    size_t nconns;
    uint64_t next_id;
    uint8_t readbuf[READ_BUF];
    bool closing;
    int handles;           /* listeners + connections' TCP handles */
    pl_driver_call finish; /* the end of pl_p2p_host_close, from the driver */
    void (*on_closed)(void *ud);
    void *closed_ud;
};

/* ---- small things -------------------------------------------------------------------- */

__attribute__((format(printf, 2, 3))) static void logf_(pl_p2p_host *h, const char *fmt, ...) {
    if (!h->o.on_log) return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    h->o.on_log(h->o.log_ud, line);
}

static int64_t now_ms(const pl_p2p_host *h) {
    return pl_driver_now(h->drv);
}

static const char *peer_text(const pl_p2p_peer_id *id, char buf[PL_P2P_PEER_ID_TEXT_SIZE]) {
    if (!id->len || pl_p2p_peer_id_format(buf, id) != PL_OK)
        snprintf(buf, PL_P2P_PEER_ID_TEXT_SIZE, "?");
    return buf;
}

static hconn *conn_find(const pl_p2p_host *h, pl_p2p_conn_id id) {
    for (hconn *c = h->conns; c; c = c->next)
        if (c->id == id && c->st != HC_DEAD) return c;
    return NULL;
}

static hstream *hs_find(const hconn *c, uint32_t handle) {
    for (hstream *s = c->streams; s; s = s->next)
        if (s->handle == handle) return s;
    return NULL;
}

static void hs_free(hconn *c, hstream *s) {
    hstream **pp = &c->streams;
    while (*pp && *pp != s)
        pp = &(*pp)->next;
    if (*pp) *pp = s->next;
    free(s);
}

static pl_p2p_stream_id sid(const hconn *c, uint32_t handle) {
    return c->id << 32 | handle;
}

/* A stream id to its connection and stream record. */
static hstream *stream_of(const pl_p2p_host *h, pl_p2p_stream_id s, hconn **conn) {
    *conn = NULL;
    hconn *c = conn_find(h, s >> 32);
    if (!c || !c->core || c->st != HC_OPEN) return NULL;
    hstream *r = hs_find(c, (uint32_t)s);
    if (r) *conn = c;
    return r;
}

/* read_msg's message stays valid until the next call on its stream or
 * the return to the loop (conn_before_wait). */
static void apply_deferred(hconn *c, hstream *s) {
    if (!s->deferred) return;
    size_t n = s->deferred;
    s->deferred = 0;
    pl__conn_stream_consume(c->core, s->handle, n, now_ms(c->host));
    if (!c->depth) c->dirty = true;
}

/* ---- registry for the core ------------------------------------------------------------- */

static bool reg_supports(void *ud, const char *p, size_t n) {
    pl_p2p_host *h = ud;
    for (size_t i = 0; i < h->nhandlers; i++)
        if (strlen(h->handlers[i].proto) == n && !memcmp(h->handlers[i].proto, p, n)) return true;
    return false;
}

static size_t reg_list(void *ud, const char *const **protos) {
    pl_p2p_host *h = ud;
    *protos = h->names;
    return h->nhandlers;
}

static handler *handler_find(pl_p2p_host *h, const char *p) {
    for (size_t i = 0; i < h->nhandlers; i++)
        if (!strcmp(h->handlers[i].proto, p)) return &h->handlers[i];
    return NULL;
}

/* ---- closing ------------------------------------------------------------------------------ */

static void host_maybe_done(pl_p2p_host *h);
static void pump(hconn *c);

static void conn_free(hconn *c) {
    pl_p2p_host *h = c->host;
    hconn **pp = &h->conns;
    while (*pp && *pp != c)
        pp = &(*pp)->next;
    if (*pp) *pp = c->next;
    h->nconns--;
    while (c->streams)
        hs_free(c, c->streams);
    while (c->pings) {
        hping *p = c->pings;
        c->pings = p->next;
        free(p);
    }
    pl__conn_free(c->core);
    free(c);
    host_maybe_done(h);
}

static void on_conn_handle_closed(uv_handle_t *hd) {
    hconn *c = hd->data;
    c->host->handles--;
    if (--c->handles == 0 && !c->gai_pending) conn_free(c);
}

/* Close the handles; the record goes when the last one reports back (and
 * a DNS request in flight, cancelled, has called back). */
static void conn_kill(hconn *c) {
    if (c->st == HC_DEAD) return;
    c->st = HC_DEAD;
    pl_driver_stop(&c->task);
    if (c->gai_pending) uv_cancel((uv_req_t *)&c->gai);
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
}

static void report_disconnected(hconn *c, pl_err err) {
    if (c->reported) return;
    c->reported = true;
    pl_p2p_host *h = c->host;
    char pt[PL_P2P_PEER_ID_TEXT_SIZE];
    logf_(h, "disconnected %s %s %s: %s (%s)", peer_text(&c->peer, pt), c->remote,
          c->inbound ? "inbound" : "outbound", pl_strerror(err), pl_errname(err));
    if (!h->o.on_event) return;
    pl_p2p_event ev = {.kind = PL_P2P_EV_DISCONNECTED,
                       .conn = c->id,
                       .peer = &c->peer,
                       .inbound = c->inbound,
                       .established = c->established,
                       .remote_addr = c->remote,
                       .muxer = "",
                       .err = err};
    h->o.on_event(h->o.ud, h, &ev);
}

/* A connection without a core (before TCP was up) fails. */
static void conn_fail_early(hconn *c, pl_err err) {
    if (c->st == HC_DEAD) return;
    report_disconnected(c, err);
    conn_kill(c);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
    hconn *c = req->data;
    /* Cancelled when the handle is closed first; a failed FIN leaves
     * nothing to wait for. */
    if (status < 0 && c->st == HC_CLOSING) {
        c->peer_eof = true;
        conn_kill(c);
    }
}

static void try_finish_close(hconn *c) {
    if (c->st != HC_CLOSING) return;
    const uint8_t *d;
    if (c->inflight != 0 || (c->core && pl__conn_output(c->core, &d) != 0)) return;
    if (c->peer_eof) {
        conn_kill(c);
        return;
    }
    if (!c->shut_sent) {
        c->shut_sent = true;
        c->shut.data = c;
        if (uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, on_shutdown) != 0) conn_kill(c);
    }
}

/* ---- time: each connection is a driver task ----------------------------------------------- */

static void ping_finish(hconn *c, hping *p, pl_err err, double rtt);

static int64_t conn_deadline(pl_driver_task *t) {
    hconn *c = t->data;
    switch (c->st) {
    case HC_RESOLVING:
    case HC_CONNECTING:
        return c->dial_deadline;
    case HC_CLOSING:
        return c->close_deadline;
    case HC_OPEN: {
        int64_t d = pl__conn_next_deadline(c->core);
        for (hping *p = c->pings; p; p = p->next)
            if (!p->done && p->deadline < d) d = p->deadline;
        return d;
    }
    case HC_DEAD:
        break;
    }
    return INT64_MAX;
}

static void conn_timer(pl_driver_task *t, int64_t now) {
    hconn *c = t->data;
    switch (c->st) {
    case HC_RESOLVING:
    case HC_CONNECTING:
        if (now >= c->dial_deadline) {
            logf_(c->host, "dial %s: timed out", c->remote);
            conn_fail_early(c, PL_ERR_TIMEOUT);
        }
        return;
    case HC_CLOSING:
        if (now >= c->close_deadline) conn_kill(c);
        return;
    case HC_OPEN:
        for (hping *p = c->pings, *next; p; p = next) {
            next = p->next; /* ping_finish frees p */
            if (!p->done && now >= p->deadline) {
                pl__conn_stream_reset(c->core, p->handle, now);
                hstream *s = hs_find(c, p->handle);
                if (s) hs_free(c, s);
                ping_finish(c, p, PL_ERR_TIMEOUT, 0);
                /* Its callback may have ended other pings or the connection. */
                if (c->st != HC_OPEN) return;
                next = c->pings;
            }
        }
        pl__conn_on_timer(c->core, now);
        pump(c);
        return;
    case HC_DEAD:
        return;
    }
}

/* Before the loop waits: what readers took outside the callbacks is
 * consumed, and what that released goes out (a peer waiting for window
 * credit would otherwise wait for some other event on the connection). */
static void conn_before_wait(pl_driver_task *t, int64_t now) {
    (void)now;
    hconn *c = t->data;
    if (!c->dirty || c->st != HC_OPEN) return;
    for (hstream *s = c->streams; s; s = s->next)
        apply_deferred(c, s);
    c->dirty = false;
    pump(c);
}

/* ---- output -------------------------------------------------------------------------------------
 */

typedef struct wreq {
    uv_write_t req;
    hconn *c;
    size_t n;
    uint8_t data[];
} wreq;

static void on_write(uv_write_t *req, int status) {
    wreq *w = (wreq *)req;
    hconn *c = w->c;
    c->inflight -= w->n;
    free(w);
    if (c->st == HC_DEAD) return;
    if (status < 0) {
        pl__set_detail(status);
        logf_(c->host, "write to %s: %s", c->remote, uv_strerror(status));
        if (c->st == HC_OPEN) {
            pl__conn_close(c->core, PL_ERR_IO, now_ms(c->host));
            pump(c);
        } else {
            conn_kill(c);
        }
        return;
    }
    if (c->st == HC_OPEN)
        pump(c);
    else
        try_finish_close(c);
}

/* Send what the core has, keeping at most conn_send_buffer in flight. */
static bool flush(hconn *c) {
    bool moved = false;
    while (c->core && (c->st == HC_OPEN || c->st == HC_CLOSING) &&
           c->inflight < c->host->o.conn_send_buffer) {
        const uint8_t *d;
        size_t n = pl__conn_output(c->core, &d);
        if (n == 0) break;
        if (n > WRITE_CHUNK) n = WRITE_CHUNK;
        wreq *w = malloc(sizeof *w + n);
        if (!w) break;
        memcpy(w->data, d, n);
        w->c = c;
        w->n = n;
        uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)n);
        int r = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
        if (r < 0) {
            free(w);
            pl__set_detail(r);
            if (c->st == HC_OPEN)
                pl__conn_close(c->core, PL_ERR_IO, now_ms(c->host));
            else
                conn_kill(c);
            return true;
        }
        c->inflight += n;
        pl__conn_output_done(c->core, n, now_ms(c->host));
        moved = true;
    }
    return moved;
}

/* ---- events
 * --------------------------------------------------------------------------------------- */

static void stream_event(hconn *c, const pl__conn_event *e) {
    pl_p2p_host *h = c->host;
    hstream *s = hs_find(c, e->stream);
    pl_p2p_stream_event ev = {.stream = sid(c, e->stream),
                              .conn = c->id,
                              .peer = &c->peer,
                              .protocol = pl__conn_stream_protocol(c->core, e->stream),
                              .inbound = e->inbound,
                              .err = e->err};
    switch (e->kind) {
    case PL__CONN_EV_STREAM_OPENED:
        ev.kind = PL_P2P_STREAM_OPENED;
        if (e->inbound) {
            handler *hd = handler_find(h, e->protocol);
            s = hd ? calloc(1, sizeof *s) : NULL;
            if (!s) { /* unregistered since, or no memory */
                pl__conn_stream_reset(c->core, e->stream, now_ms(h));
                return;
            }
            s->handle = e->stream;
            s->cb = hd->cb;
            s->ud = hd->ud;
            s->next = c->streams;
            c->streams = s;
        }
        break;
    case PL__CONN_EV_STREAM_READABLE:
        ev.kind = PL_P2P_STREAM_READABLE;
        break;
    case PL__CONN_EV_STREAM_EOF:
        ev.kind = PL_P2P_STREAM_EOF;
        break;
    case PL__CONN_EV_STREAM_WRITABLE:
        ev.kind = PL_P2P_STREAM_WRITABLE;
        break;
    case PL__CONN_EV_STREAM_CLOSED:
        ev.kind = PL_P2P_STREAM_CLOSED;
        break;
    default:
        return;
    }
    if (!s) return;
    ev.inbound = e->kind == PL__CONN_EV_STREAM_OPENED ? e->inbound : ev.inbound;
    pl_p2p_stream_cb cb = s->cb;
    void *ud = s->ud;
    uint32_t handle = s->handle;
    if (e->kind == PL__CONN_EV_STREAM_CLOSED) {
        hs_free(c, s);
        s = NULL;
    } else {
        apply_deferred(c, s);
    }
    cb(ud, h, &ev);
    /* The callback may have reset or closed it, or the connection. */
    if (s && c->st == HC_OPEN && (s = hs_find(c, handle)) != NULL) apply_deferred(c, s);
}

static void conn_event(hconn *c, const pl__conn_event *e) {
    pl_p2p_host *h = c->host;
    char pt[PL_P2P_PEER_ID_TEXT_SIZE];
    switch (e->kind) {
    case PL__CONN_EV_SECURED:
        c->peer = *pl__conn_remote_peer(c->core);
        break;
    case PL__CONN_EV_READY: {
        c->established = true;
        const char *mux = pl__conn_muxer(c->core) == PL__MUX_YAMUX ? PL_MUX_YAMUX_PROTOCOL
                                                                   : PL_MUX_MPLEX_PROTOCOL;
        logf_(h, "connected %s %s %s %s", peer_text(&c->peer, pt), c->remote,
              c->inbound ? "inbound" : "outbound", mux);
        if (h->o.on_event) {
            pl_p2p_event ev = {.kind = PL_P2P_EV_CONNECTED,
                               .conn = c->id,
                               .peer = &c->peer,
                               .inbound = c->inbound,
                               .remote_addr = c->remote,
                               .muxer = mux};
            h->o.on_event(h->o.ud, h, &ev);
        }
        break;
    }
    case PL__CONN_EV_IDENTIFIED: {
        const pl_p2p_identify *id = e->err == PL_OK ? pl__conn_identify(c->core) : NULL;
        if (id)
            logf_(h, "identified %s: %s, %zu protocols", peer_text(&c->peer, pt),
                  id->agent_version[0] ? id->agent_version : "(no agent)", id->nprotocols);
        else
            logf_(h, "identify of %s failed: %s", peer_text(&c->peer, pt), pl_errname(e->err));
        if (h->o.on_event) {
            pl_p2p_event ev = {.kind = PL_P2P_EV_IDENTIFIED,
                               .conn = c->id,
                               .peer = &c->peer,
                               .inbound = c->inbound,
                               .established = true,
                               .remote_addr = c->remote,
                               .muxer = "",
                               .identify = id,
                               .err = e->err};
            h->o.on_event(h->o.ud, h, &ev);
        }
        break;
    }
    case PL__CONN_EV_CLOSED:
        report_disconnected(c, e->err);
        c->st = HC_CLOSING;
        c->close_deadline = now_ms(h) + h->o.close_timeout_ms;
        break;
    default:
        stream_event(c, e);
        break;
    }
}

static void pump(hconn *c) {
    if (c->depth) {
        c->again = true;
        return;
    }
    c->depth++;
    do {
        c->again = false;
        pl__conn_event e;
        while (c->core && (c->st == HC_OPEN || c->st == HC_CLOSING) && pl__conn_poll(c->core, &e))
            conn_event(c, &e);
        if (flush(c)) c->again = true;
    } while (c->again && c->st != HC_DEAD);
    c->depth--;
    if (c->st == HC_CLOSING) try_finish_close(c);
}

/* ---- reading
 * ----------------------------------------------------------------------------------------- */

static void on_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *buf) {
    (void)suggested;
    hconn *c = hd->data;
    /* One buffer per host: libuv reads one stream at a time and the core
     * copies what it keeps. */
    *buf = uv_buf_init((char *)c->host->readbuf, READ_BUF);
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf) {
    (void)buf;
    hconn *c = st->data;
    if (c->st == HC_CLOSING) {
        /* Closing: what still arrives is read and dropped until the
         * peer's EOF (or an error) ends the wait. */
        if (n < 0) {
            c->peer_eof = true;
            uv_read_stop(st);
            try_finish_close(c);
        }
        return;
    }
    if (c->st != HC_OPEN) return;
    int64_t now = now_ms(c->host);
    if (n > 0) {
        (void)pl__conn_recv(c->core, c->host->readbuf, (size_t)n, now);
    } else if (n == UV_EOF) {
        c->peer_eof = true;
        pl__conn_recv_eof(c->core, now);
    } else if (n < 0) {
        c->peer_eof = true;
        pl__set_detail(n);
        logf_(c->host, "read from %s: %s", c->remote, uv_strerror((int)n));
        pl__conn_close(c->core, PL_ERR_IO, now);
    }
    pump(c);
}

/* ---- connections
 * --------------------------------------------------------------------------------------- */

static hconn *conn_new(pl_p2p_host *h, bool inbound) {
    hconn *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->host = h;
    c->inbound = inbound;
    c->id = ++h->next_id;
    if (uv_tcp_init(h->loop, &c->tcp) != 0) {
        free(c);
        return NULL;
    }
    c->tcp.data = c;
    c->handles = 1;
    h->handles += 1;
    c->task.data = c;
    c->task.next_deadline = conn_deadline;
    c->task.on_timer = conn_timer;
    c->task.before_wait = conn_before_wait;
    pl_driver_start(h->drv, &c->task);
    c->next = h->conns;
    h->conns = c;
    h->nconns++;
    return c;
}

static void remote_of(hconn *c) {
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) != 0) return;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
        pl__ma_from_ip_port(&c->remote_ma, (const uint8_t *)&a->sin_addr, 4, ntohs(a->sin_port));
        uv_ip4_name(a, c->ip, sizeof c->ip);
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
        pl__ma_from_ip_port(&c->remote_ma, (const uint8_t *)&a->sin6_addr, 16, ntohs(a->sin6_port));
        uv_ip6_name(a, c->ip, sizeof c->ip);
    }
    if (c->remote_ma.len)
        pl__ma_format(c->remote, sizeof c->remote, c->remote_ma.b, c->remote_ma.len);
}

static pl_err start_core(hconn *c) {
    pl_p2p_host *h = c->host;
    uv_tcp_nodelay(&c->tcp, 1);
    remote_of(c);
    pl__conn_config cfg = {
        .initiator = !c->inbound,
        .identity = &h->nid,
        .key = h->key,
        .expected_peer = c->target.peer,
        .registry = &h->reg,
        .listen_addrs = h->lma,
        .nlisten_addrs = h->nlisten,
        .observed = c->remote_ma,
        .agent_version = h->agent,
        .handshake_timeout_ms = h->o.handshake_timeout_ms,
        .negotiation_timeout_ms = h->o.negotiation_timeout_ms,
        .identify_timeout_ms = h->o.identify_timeout_ms,
        .stream_recv_buffer = h->o.stream_recv_buffer,
        .stream_send_buffer = h->o.stream_send_buffer,
        .max_output = h->o.conn_send_buffer,
        .mux = {.max_streams = h->o.max_streams},
    };
    switch (h->o.muxers) {
    case PL_P2P_MUXERS_YAMUX:
        cfg.muxers[0] = PL__MUX_YAMUX;
        break;
    case PL_P2P_MUXERS_MPLEX:
        cfg.muxers[0] = PL__MUX_MPLEX;
        break;
    default:
        cfg.muxers[0] = PL__MUX_YAMUX;
        cfg.muxers[1] = PL__MUX_MPLEX;
        break;
    }
    PL_TRY(pl__conn_new(&c->core, &cfg, now_ms(h)));
    c->st = HC_OPEN;
    int r = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (r != 0) return pl__fail(PL_ERR_SYS, r);
    pump(c);
    return PL_OK;
}

static void on_connect(uv_connect_t *req, int status) {
    hconn *c = req->data;
    if (c->st == HC_DEAD) return;
    if (status < 0) {
        pl__set_detail(status);
        logf_(c->host, "dial %s: %s", c->remote, uv_strerror(status));
        conn_fail_early(c, PL_ERR_SYS);
        return;
    }
    pl_err e = start_core(c);
    if (e != PL_OK) conn_fail_early(c, e);
}

static void connect_to(hconn *c, const struct sockaddr *sa) {
    c->st = HC_CONNECTING;
    c->connect.data = c;
    int r = uv_tcp_connect(&c->connect, &c->tcp, sa, on_connect);
    if (r < 0) {
        pl__set_detail(r);
        logf_(c->host, "dial %s: %s", c->remote, uv_strerror(r));
        conn_fail_early(c, PL_ERR_SYS);
    }
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
    hconn *c = req->data;
    c->gai_pending = false;
    if (c->st == HC_DEAD) {
        uv_freeaddrinfo(res);
        if (c->handles == 0) conn_free(c);
        return;
    }
    if (status < 0 || !res) {
        logf_(c->host, "dial %s: %s", c->remote, status < 0 ? uv_strerror(status) : "no address");
        uv_freeaddrinfo(res);
        conn_fail_early(c, PL_ERR_NOT_FOUND);
        return;
    }
    /* The first address only: the dial time-out covers one attempt. */
    struct sockaddr_storage ss;
    memcpy(&ss, res->ai_addr, res->ai_addrlen);
    uv_freeaddrinfo(res);
    struct sockaddr *sa = (struct sockaddr *)&ss;
    if (sa->sa_family == AF_INET)
        ((struct sockaddr_in *)sa)->sin_port = htons(c->target.port);
    else
        ((struct sockaddr_in6 *)sa)->sin6_port = htons(c->target.port);
    connect_to(c, sa);
}

/* ---- inbound
 * ---------------------------------------------------------------------------------------------- */

static size_t conns_from(const pl_p2p_host *h, const char *ip) {
    size_t n = 0;
    for (const hconn *c = h->conns; c; c = c->next)
        if (c->inbound && c->st != HC_DEAD && !strcmp(c->ip, ip)) n++;
    return n;
}

static size_t live_conns(const pl_p2p_host *h) {
    size_t n = 0;
    for (const hconn *c = h->conns; c; c = c->next)
        if (c->st != HC_DEAD) n++;
    return n;
}

static void on_connection(uv_stream_t *server, int status) {
    listener *l = server->data;
    pl_p2p_host *h = l->host;
    if (status < 0 || h->closing) return;
    bool over = live_conns(h) >= h->o.max_connections;
    hconn *c = conn_new(h, true);
    if (!c) return;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        c->reported = true; /* never announced */
        conn_kill(c);
        return;
    }
    remote_of(c);
    /* The count includes the new connection itself. */
    if (!over && conns_from(h, c->ip) > h->o.max_connections_per_ip) over = true;
    if (over) {
        logf_(h, "refused %s: connection limit", c->remote);
        c->reported = true;
        conn_kill(c);
        return;
    }
    pl_err e = start_core(c);
    if (e != PL_OK) conn_fail_early(c, e);
}

static void on_listener_closed(uv_handle_t *hd) {
    listener *l = hd->data;
    pl_p2p_host *h = l->host;
    free(l);
    h->handles--;
    host_maybe_done(h);
}

/* ---- the host
 * --------------------------------------------------------------------------------------------- */

pl_err pl_p2p_host_new(pl_p2p_host **out, pl_driver *driver, const pl_p2p_host_opts *opts) {
    PL_REQUIRE(out && driver && opts);
    *out = NULL;
    uv_loop_t *loop = pl_driver_loop(driver);
    if (!opts->key || !loop) return PL_ERR_INVALID_ARG;
    if (opts->stream_recv_buffer && opts->stream_recv_buffer < 64 * 1024) return PL_ERR_INVALID_ARG;
    pl_p2p_host *h = calloc(1, sizeof *h);
    if (!h) return PL_ERR_NOMEM;
    h->drv = driver;
    h->loop = loop;
    h->o = *opts;
    pl_p2p_host_opts *o = &h->o;
    if (!o->max_connections) o->max_connections = PL_P2P_DEF_MAX_CONNECTIONS;
    if (!o->max_connections_per_ip) o->max_connections_per_ip = PL_P2P_DEF_MAX_CONNECTIONS_PER_IP;
    if (!o->max_streams) o->max_streams = PL_P2P_DEF_MAX_STREAMS;
    if (!o->stream_recv_buffer) o->stream_recv_buffer = PL_P2P_DEF_STREAM_RECV_BUFFER;
    if (!o->stream_send_buffer) o->stream_send_buffer = PL_P2P_DEF_STREAM_SEND_BUFFER;
    if (!o->conn_send_buffer) o->conn_send_buffer = PL_P2P_DEF_CONN_SEND_BUFFER;
    if (!o->dial_timeout_ms) o->dial_timeout_ms = PL_P2P_DEF_DIAL_TIMEOUT_MS;
    if (!o->handshake_timeout_ms) o->handshake_timeout_ms = PL_P2P_DEF_HANDSHAKE_TIMEOUT_MS;
    if (!o->negotiation_timeout_ms) o->negotiation_timeout_ms = PL_P2P_DEF_NEGOTIATION_TIMEOUT_MS;
    if (!o->identify_timeout_ms) o->identify_timeout_ms = PL_P2P_DEF_IDENTIFY_TIMEOUT_MS;
    if (!o->ping_timeout_ms) o->ping_timeout_ms = PL_P2P_DEF_PING_TIMEOUT_MS;
    if (!o->close_timeout_ms) o->close_timeout_ms = PL_P2P_DEF_CLOSE_TIMEOUT_MS;
    snprintf(h->agent, sizeof h->agent, "%s",
             opts->agent_version ? opts->agent_version : "pairlink/" PL_VERSION_STRING);
    o->agent_version = h->agent;
    pl_err e = pl_p2p_key_from_secret(&h->key, opts->key->type, opts->key->secret);
    if (e == PL_OK) e = pl__nxx_identity_init(&h->nid, h->key, NULL);
    if (e != PL_OK) {
        pl_p2p_key_free(h->key);
        free(h);
        return e;
    }
    o->key = h->key;
    h->reg = (pl__conn_registry){reg_supports, reg_list, h};
    *out = h;
    return PL_OK;
}

void pl_p2p_host_peer_id(const pl_p2p_host *h, pl_p2p_peer_id *id) {
    PL_REQUIRE(h && id);
    *id = h->nid.peer;
}

static void host_free(pl_p2p_host *h) {
    for (size_t i = 0; i < h->nhandlers; i++)
        free(h->handlers[i].proto);
    free(h->handlers);
    free(h->names);
    for (size_t i = 0; i < h->nlisten; i++)
        free(h->ltext[i]);
    pl__nxx_identity_clear(&h->nid);
    pl_p2p_key_free(h->key);
    free(h);
}

static void on_finish(pl_driver_call *call) {
    pl_p2p_host *h = call->data;
    void (*cb)(void *) = h->on_closed;
    void *ud = h->closed_ud;
    host_free(h);
    if (cb) cb(ud);
}

static void host_maybe_done(pl_p2p_host *h) {
    /* From the driver, so that on_closed never runs inside
     * pl_p2p_host_close, and only once every handle reported back and
     * every connection record is gone: a dead connection whose DNS
     * request could not be cancelled (already running) outlives its TCP
     * handle, and its resolver callback still needs the host. */
    if (h->closing && h->handles == 0 && !h->conns) {
        h->finish.fn = on_finish;
        h->finish.data = h;
        pl_driver_defer(h->drv, &h->finish);
    }
}

void pl_p2p_host_close(pl_p2p_host *h, void (*on_closed)(void *ud), void *ud) {
    PL_REQUIRE(h && !h->closing);
    h->closing = true;
    h->on_closed = on_closed;
    h->closed_ud = ud;
    for (size_t i = 0; i < h->nlisten; i++)
        uv_close((uv_handle_t *)&h->lst[i]->tcp, on_listener_closed);
    for (hconn *c = h->conns, *next; c; c = next) {
        next = c->next;
        if (c->st == HC_OPEN) {
            pl__conn_close(c->core, PL_ERR_CLOSED, now_ms(h));
            pump(c);
        } else if (c->st == HC_RESOLVING || c->st == HC_CONNECTING) {
            conn_fail_early(c, PL_ERR_CLOSED);
        }
    }
    host_maybe_done(h);
}

pl_err pl_p2p_host_listen(pl_p2p_host *h, const char *multiaddr) {
    PL_REQUIRE(h && multiaddr);
    if (h->closing) return PL_ERR_STATE;
    if (h->nlisten == MAX_LISTENERS) return PL_ERR_TOO_LARGE;
    pl__ma ma;
    PL_TRY(pl__ma_parse(&ma, multiaddr, strlen(multiaddr)));
    pl__ma_dial d;
    PL_TRY(pl__ma_dial_target(&d, ma.b, ma.len));
    if ((d.kind != PL__MA_HOST_IP4 && d.kind != PL__MA_HOST_IP6) || d.peer.len)
        return PL_ERR_P2P_MULTIADDR;
    struct sockaddr_storage ss;
    int r = d.kind == PL__MA_HOST_IP4 ? uv_ip4_addr(d.host, d.port, (struct sockaddr_in *)&ss)
                                      : uv_ip6_addr(d.host, d.port, (struct sockaddr_in6 *)&ss);
    if (r != 0) return PL_ERR_P2P_MULTIADDR;
    listener *l = calloc(1, sizeof *l);
    if (!l) return PL_ERR_NOMEM;
    l->host = h;
    uv_tcp_init(h->loop, &l->tcp);
    l->tcp.data = l;
    h->handles++;
    r = uv_tcp_bind(&l->tcp, (const struct sockaddr *)&ss, 0);
    if (r == 0) r = uv_listen((uv_stream_t *)&l->tcp, 128, on_connection);
    int len = sizeof ss;
    if (r == 0) r = uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&ss, &len);
    if (r != 0) {
        uv_close((uv_handle_t *)&l->tcp, on_listener_closed);
        return pl__fail(PL_ERR_SYS, r);
    }
    pl__ma bound;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
        pl__ma_from_ip_port(&bound, (const uint8_t *)&a->sin_addr, 4, ntohs(a->sin_port));
    } else {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
        pl__ma_from_ip_port(&bound, (const uint8_t *)&a->sin6_addr, 16, ntohs(a->sin6_port));
    }
    char text[PL__MA_TEXT_MAX + 1];
    pl__ma_format(text, sizeof text, bound.b, bound.len);
    char *copy = strdup(text);
    if (!copy) {
        uv_close((uv_handle_t *)&l->tcp, on_listener_closed);
        return PL_ERR_NOMEM;
    }
    h->lst[h->nlisten] = l;
    h->lma[h->nlisten] = bound;
    h->ltext[h->nlisten] = copy;
    h->nlisten++;
    logf_(h, "listening on %s", text);
    return PL_OK;
}

size_t pl_p2p_host_listen_addrs(const pl_p2p_host *h, const char *const **addrs) {
    PL_REQUIRE(h && addrs);
    *addrs = (const char *const *)h->ltext;
    return h->nlisten;
}

pl_err pl_p2p_host_handle(pl_p2p_host *h, const char *protocol, pl_p2p_stream_cb cb, void *ud) {
    PL_REQUIRE(h && protocol && cb);
    if (!pl__mss_protocol_ok(protocol) || !strcmp(protocol, PL__ID_PROTOCOL) ||
        !strcmp(protocol, PL__PING_PROTOCOL))
        return PL_ERR_INVALID_ARG;
    handler *hd = handler_find(h, protocol);
    if (hd) {
        hd->cb = cb;
        hd->ud = ud;
        return PL_OK;
    }
    handler *nh = realloc(h->handlers, (h->nhandlers + 1) * sizeof *nh);
    if (!nh) return PL_ERR_NOMEM;
    h->handlers = nh;
    const char **nn = realloc(h->names, (h->nhandlers + 1) * sizeof *nn);
    if (!nn) return PL_ERR_NOMEM;
    h->names = nn;
    char *p = strdup(protocol);
    if (!p) return PL_ERR_NOMEM;
    h->handlers[h->nhandlers] = (handler){p, cb, ud};
    h->names[h->nhandlers] = p;
    h->nhandlers++;
    return PL_OK;
}

pl_err pl_p2p_host_unhandle(pl_p2p_host *h, const char *protocol) {
    PL_REQUIRE(h && protocol);
    handler *hd = handler_find(h, protocol);
    if (!hd) return PL_ERR_NOT_FOUND;
    size_t i = (size_t)(hd - h->handlers);
    free(hd->proto);
    memmove(&h->handlers[i], &h->handlers[i + 1], (h->nhandlers - i - 1) * sizeof *h->handlers);
    memmove(&h->names[i], &h->names[i + 1], (h->nhandlers - i - 1) * sizeof *h->names);
    h->nhandlers--;
    return PL_OK;
}

pl_err pl_p2p_host_dial(pl_p2p_host *h, const char *multiaddr, pl_p2p_conn_id *conn) {
    PL_REQUIRE(h && multiaddr && conn);
    *conn = 0;
    if (h->closing) return PL_ERR_STATE;
    pl__ma ma;
    PL_TRY(pl__ma_parse(&ma, multiaddr, strlen(multiaddr)));
    pl__ma_dial d;
    PL_TRY(pl__ma_dial_target(&d, ma.b, ma.len));
    if (live_conns(h) >= h->o.max_connections) return PL_ERR_P2P_CONN_LIMIT;
    struct sockaddr_storage ss;
    bool literal = d.kind == PL__MA_HOST_IP4 || d.kind == PL__MA_HOST_IP6;
    if (literal) {
        int r = d.kind == PL__MA_HOST_IP4 ? uv_ip4_addr(d.host, d.port, (struct sockaddr_in *)&ss)
                                          : uv_ip6_addr(d.host, d.port, (struct sockaddr_in6 *)&ss);
        if (r != 0) return PL_ERR_P2P_MULTIADDR;
    }
    hconn *c = conn_new(h, false);
    if (!c) return PL_ERR_NOMEM;
    c->target = d;
    pl__ma_format(c->remote, sizeof c->remote, ma.b, ma.len);
    c->dial_deadline = now_ms(h) + h->o.dial_timeout_ms;
    *conn = c->id;
    if (literal) {
        c->st = HC_CONNECTING;
        c->connect.data = c;
        int r = uv_tcp_connect(&c->connect, &c->tcp, (const struct sockaddr *)&ss, on_connect);
        if (r < 0) {
            /* Failed before it started: the caller hears it from us, not
             * from an event. */
            c->reported = true;
            conn_kill(c);
            *conn = 0;
            return pl__fail(PL_ERR_SYS, r);
        }
    } else {
        c->st = HC_RESOLVING;
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                                 .ai_family = d.kind == PL__MA_HOST_DNS4   ? AF_INET
                                              : d.kind == PL__MA_HOST_DNS6 ? AF_INET6
                                                                           : AF_UNSPEC};
        c->gai.data = c;
        int r = uv_getaddrinfo(h->loop, &c->gai, on_resolved, d.host, NULL, &hints);
        if (r < 0) {
            pl__set_detail(r);
            conn_kill(c);
            *conn = 0;
            return PL_ERR_SYS;
        }
        c->gai_pending = true;
    }
    return PL_OK;
}

pl_err pl_p2p_conn_close(pl_p2p_host *h, pl_p2p_conn_id id, pl_err reason) {
    PL_REQUIRE(h && reason != PL_OK);
    hconn *c = conn_find(h, id);
    if (!c) return PL_ERR_NOT_FOUND;
    if (c->st == HC_OPEN) {
        pl__conn_close(c->core, reason, now_ms(h));
        pump(c);
    } else if (c->st == HC_RESOLVING || c->st == HC_CONNECTING) {
        conn_fail_early(c, reason);
    }
    return PL_OK;
}

pl_err pl_p2p_conn_info_get(const pl_p2p_host *h, pl_p2p_conn_id id, pl_p2p_conn_info *info) {
    PL_REQUIRE(h && info);
    memset(info, 0, sizeof *info);
    hconn *c = conn_find(h, id);
    if (!c) return PL_ERR_NOT_FOUND;
    info->peer = c->peer;
    info->inbound = c->inbound;
    info->established = c->established;
    info->remote_addr = c->remote;
    info->muxer = "";
    if (c->core && c->established)
        info->muxer = pl__conn_muxer(c->core) == PL__MUX_YAMUX ? PL_MUX_YAMUX_PROTOCOL
                                                               : PL_MUX_MPLEX_PROTOCOL;
    info->identify = c->core ? pl__conn_identify(c->core) : NULL;
    return PL_OK;
}

size_t pl_p2p_host_conns(const pl_p2p_host *h, pl_p2p_conn_id *ids, size_t cap) {
    PL_REQUIRE(h && (ids || cap == 0));
    size_t n = 0;
    for (const hconn *c = h->conns; c; c = c->next) {
        if (c->st == HC_DEAD) continue;
        if (n < cap) ids[n] = c->id;
        n++;
    }
    return n;
}

/* ---- streams
 * ------------------------------------------------------------------------------------------------
 */

pl_err pl_p2p_stream_open(pl_p2p_host *h, pl_p2p_conn_id id, const char *const *protocols, size_t n,
                          pl_p2p_stream_cb cb, void *ud, pl_p2p_stream_id *out) {
    PL_REQUIRE(h && (protocols || n == 0) && cb && out);
    *out = 0;
    hconn *c = conn_find(h, id);
    if (!c) return PL_ERR_NOT_FOUND;
    if (c->st != HC_OPEN || !c->established) return PL_ERR_STATE;
    hstream *s = calloc(1, sizeof *s);
    if (!s) return PL_ERR_NOMEM;
    uint32_t handle = 0;
    pl_err e = pl__conn_stream_open(c->core, protocols, n, now_ms(h), &handle);
    if (e != PL_OK) {
        free(s);
        return e;
    }
    s->handle = handle;
    s->cb = cb;
    s->ud = ud;
    s->next = c->streams;
    c->streams = s;
    *out = sid(c, handle);
    pump(c);
    return PL_OK;
}

pl_err pl_p2p_stream_write(pl_p2p_host *h, pl_p2p_stream_id id, const uint8_t *data, size_t len,
                           size_t *taken) {
    PL_REQUIRE(h && (data || len == 0) && taken);
    *taken = 0;
    hconn *c;
    hstream *s = stream_of(h, id, &c);
    if (!s) return PL_ERR_NOT_FOUND;
    apply_deferred(c, s);
    pl_err e = pl__conn_stream_write(c->core, s->handle, data, len, taken);
    pump(c);
    return e;
}

pl_err pl_p2p_stream_write_msg(pl_p2p_host *h, pl_p2p_stream_id id, const uint8_t *data,
                               size_t len) {
    PL_REQUIRE(h && (data || len == 0));
    hconn *c;
    hstream *s = stream_of(h, id, &c);
    if (!s) return PL_ERR_NOT_FOUND;
    uint8_t v[PL_UVARINT_MAX_BYTES];
    size_t vl = pl_uvarint_encode(v, len);
    if (len > h->o.stream_send_buffer - vl) return PL_ERR_TOO_LARGE;
    size_t space = pl__conn_stream_send_space(c->core, s->handle);
    if (space < vl + len) {
        size_t probe = 0;
        /* Closed streams say so rather than "try later". */
        if (pl__conn_stream_write(c->core, s->handle, v, 0, &probe) == PL_ERR_CLOSED)
            return PL_ERR_CLOSED;
        pl__conn_stream_want_writable(c->core, s->handle);
        return PL_ERR_P2P_BACKPRESSURE;
    }
    size_t t1 = 0, t2 = 0;
    pl_err e = pl__conn_stream_write(c->core, s->handle, v, vl, &t1);
    if (e == PL_OK) e = pl__conn_stream_write(c->core, s->handle, data, len, &t2);
    /* The room was checked, so all of it went in. */
    PL_REQUIRE(e != PL_OK || (t1 == vl && t2 == len));
    pump(c);
    return e;
}

size_t pl_p2p_stream_send_space(const pl_p2p_host *h, pl_p2p_stream_id id) {
    PL_REQUIRE(h);
    hconn *c;
    hstream *s = stream_of(h, id, &c);
    return s ? pl__conn_stream_send_space(c->core, s->handle) : 0;
}

pl_err pl_p2p_stream_peek(pl_p2p_host *h, pl_p2p_stream_id id, const uint8_t **data, size_t *len) {
    PL_REQUIRE(h && data && len);
    *data = NULL;
    *len = 0;
    hconn *c;
    hstream *s = stream_of(h, id, &c);
    if (!s) return PL_ERR_NOT_FOUND;
    apply_deferred(c, s);
    *len = pl__conn_stream_peek(c->core, s->handle, data);
    return PL_OK;
}

pl_err pl_p2p_stream_consume(pl_p2p_host *h, pl_p2p_stream_id id, size_t n) {
    PL_REQUIRE(h);
    hconn *c;
    hstream *s = stream_of(h, id, &c);
    if (!s) return PL_ERR_NOT_FOUND;
    apply_deferred(c, s);
    const uint8_t *d;
    if (n > pl__conn_stream_peek(c->core, s->handle, &d)) return PL_ERR_INVALID_ARG;
    pl__conn_stream_consume(c->core, s->handle, n, now_ms(h));
    pump(c);
    return PL_OK;
}

pl_err pl_p2p_stream_read_msg(pl_p2p_host *h, pl_p2p_stream_id id, size_t max, const uint8_t **msg,
                              size_t *len) {
    PL_REQUIRE(h && msg && len);
    *msg = NULL;
    *len = 0;
    hconn *c;
    hstream *s = stream_of(h, id, &c);
    if (!s) return PL_ERR_NOT_FOUND;
    apply_deferred(c, s);
    size_t cap = h->o.stream_recv_buffer - PL_UVARINT_MAX_BYTES;
    if (max > cap) max = cap;
    const uint8_t *d;
    size_t n = pl__conn_stream_peek(c->core, s->handle, &d);
    size_t used = 0;
    pl_err e = pl__lp_parse(d, n, max, msg, len, &used);
    if (e == PL_ERR_TRUNCATED) return PL_OK;
    if (e != PL_OK) return e;
    s->deferred = used;
    c->dirty = true;
    return PL_OK;
}

pl_err pl_p2p_stream_close(pl_p2p_host *h, pl_p2p_stream_id id) {
    PL_REQUIRE(h);
    hconn *c;
    hstream *s = stream_of(h, id, &c);
    if (!s) return PL_ERR_NOT_FOUND;
    apply_deferred(c, s);
    pl_err e = pl__conn_stream_close(c->core, s->handle, now_ms(h));
    pump(c);
    return e;
}

pl_err pl_p2p_stream_reset(pl_p2p_host *h, pl_p2p_stream_id id) {
    PL_REQUIRE(h);
    hconn *c;
    hstream *s = stream_of(h, id, &c);
    if (!s) return PL_ERR_NOT_FOUND;
    pl_err e = pl__conn_stream_reset(c->core, s->handle, now_ms(h));
    hs_free(c, s);
    pump(c);
    return e;
}

/* ---- ping
 * -------------------------------------------------------------------------------------------------------
 */

static void ping_finish(hconn *c, hping *p, pl_err err, double rtt) {
    if (p->done) return;
    p->done = true;
    hping **pp = &c->pings;
    while (*pp && *pp != p)
        pp = &(*pp)->next;
    if (*pp) *pp = p->next;
    pl_p2p_ping_cb cb = p->cb;
    void *ud = p->ud;
    pl_p2p_conn_id conn = p->conn;
    pl_p2p_host *h = p->host;
    free(p);
    cb(ud, h, conn, err, rtt);
}

static hping *ping_of(hconn *c, uint32_t handle) {
    for (hping *p = c->pings; p; p = p->next)
        if (p->handle == handle) return p;
    return NULL;
}

/* A ping stream whose round is over only drains to its end. */
static void on_spent_ping_stream(void *ud, pl_p2p_host *h, const pl_p2p_stream_event *ev) {
    (void)ud;
    if (ev->kind == PL_P2P_STREAM_READABLE) {
        const uint8_t *d;
        size_t n = 0;
        if (pl_p2p_stream_peek(h, ev->stream, &d, &n) == PL_OK)
            (void)pl_p2p_stream_consume(h, ev->stream, n);
    }
}

static void on_ping_stream(void *ud, pl_p2p_host *h, const pl_p2p_stream_event *ev) {
    (void)ud;
    hconn *c = conn_find(h, ev->conn);
    hping *p = c ? ping_of(c, (uint32_t)ev->stream) : NULL;
    if (!p) return;
    switch (ev->kind) {
    case PL_P2P_STREAM_OPENED: {
        size_t taken = 0;
        p->t0_ns = uv_hrtime();
        (void)pl_p2p_stream_write(h, ev->stream, p->p.sent, PL__PING_SIZE, &taken);
        p->sent = true;
        break;
    }
    case PL_P2P_STREAM_READABLE: {
        const uint8_t *d;
        size_t n = 0;
        if (pl_p2p_stream_peek(h, ev->stream, &d, &n) != PL_OK) return;
        size_t used = 0;
        bool done = false;
        pl_err e = pl__ping_recv(&p->p, d, n, &used, &done);
        (void)pl_p2p_stream_consume(h, ev->stream, used);
        if (e != PL_OK) {
            (void)pl_p2p_stream_reset(h, ev->stream);
            ping_finish(c, p, e, 0);
        } else if (done) {
            double rtt = (double)(uv_hrtime() - p->t0_ns) / 1e6;
            /* One round per stream, as js-libp2p pings: close, and let the
             * stream drain to its end. */
            hstream *s = hs_find(c, (uint32_t)ev->stream);
            if (s) s->cb = on_spent_ping_stream;
            (void)pl_p2p_stream_close(h, ev->stream);
            p->handle = 0;
            ping_finish(c, p, PL_OK, rtt);
        }
        break;
    }
    case PL_P2P_STREAM_EOF:
        break;
    case PL_P2P_STREAM_WRITABLE:
        break;
    case PL_P2P_STREAM_CLOSED:
        ping_finish(c, p, ev->err == PL_OK ? PL_ERR_CLOSED : ev->err, 0);
        break;
    }
}

pl_err pl_p2p_ping(pl_p2p_host *h, pl_p2p_conn_id id, pl_p2p_ping_cb cb, void *ud) {
    PL_REQUIRE(h && cb);
    hconn *c = conn_find(h, id);
    if (!c) return PL_ERR_NOT_FOUND;
    if (c->st != HC_OPEN || !c->established) return PL_ERR_STATE;
    hping *p = calloc(1, sizeof *p);
    if (!p) return PL_ERR_NOMEM;
    uint8_t r[PL__PING_SIZE];
    pl_random(r, sizeof r);
    pl__ping_start(&p->p, r);
    p->host = h;
    p->conn = id;
    p->cb = cb;
    p->ud = ud;
    p->deadline = now_ms(h) + h->o.ping_timeout_ms;
    static const char *const proto[] = {PL__PING_PROTOCOL};
    pl_p2p_stream_id s = 0;
    /* Registered before the stream exists so that no event can miss it. */
    p->next = c->pings;
    c->pings = p;
    pl_err e = pl_p2p_stream_open(h, id, proto, 1, on_ping_stream, NULL, &s);
    if (e != PL_OK) {
        c->pings = p->next;
        free(p);
        return e;
    }
    p->handle = (uint32_t)s;
    return PL_OK;
}
