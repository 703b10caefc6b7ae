/* SPDX-License-Identifier: Apache-2.0 */
/* The Waku relay node on a libp2p host (include/pairlink/waku_node.h): moves
 * bytes between the host's streams and the node core (src/waku/node.h),
 * reads the clock and arms one timer for the core's deadlines. Decisions
 * (who is a relay peer, what goes where) are the core's. */
#include "pairlink/waku_node.h"

#include "core/internal.h"
#include "waku/metadata.h"
#include "waku/node.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RELAY_IN_MAX 2 /* inbound relay streams kept per connection */
#define DEF_MAX_CONNECTIONS 64
#define DEF_FLUSH_TIMEOUT_MS 2000
/* A whole RPC of the gossip core's largest size must fit the buffer. */
#define RELAY_RECV_BUFFER ((1u << 20) + (128u << 10))

typedef struct sendbuf {
    struct sendbuf *next;
    uint8_t *data;
    size_t len, off;
} sendbuf;

typedef struct rconn {
    struct rconn *next;
    pl_p2p_conn_id id;
    pl_p2p_peer_id peer;
    bool inbound;
    char *addr;
    pl_p2p_stream_id relay_out;
    pl_p2p_stream_id relay_in[RELAY_IN_MAX];
    size_t nin;
    pl_p2p_stream_id meta_out;
    bool meta_done;
    sendbuf *qh, *qt;
    size_t qbytes;
    bool flushing; /* inside flush_sendq: the host's callbacks may re-enter */
} rconn;

typedef struct pdial {
    struct pdial *next;
    pl_p2p_conn_id conn;
    const char *addr; /* the core's copy */
} pdial;

struct pl_waku_node {
    pl_driver *drv;
    pl_driver_task task; /* the core's deadlines, and its outputs before each wait */
    pl_waku_node_opts o;
    pl_p2p_host *host;
    pl__wnode *core;
    rconn *conns;
    pdial *dials;
    bool draining, closing, host_closing, freed_host;
    int64_t flush_deadline;
    bool flush_pinged;
    size_t flush_pings; /* pings in flight while closing */
    size_t max_rpc;     /* the gossip core's bound on one RPC */
    pl_p2p_peer_id self;
    char self_text[PL_P2P_PEER_ID_TEXT_SIZE];
    void (*on_closed)(void *ud);
    void *closed_ud;
};

/* ---- small things ---------------------------------------------------------- */

__attribute__((format(printf, 2, 3))) static void logf_(pl_waku_node *n, const char *fmt, ...) {
    if (!n->o.on_log) return;
    char line[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    n->o.on_log(n->o.log_ud, line);
}

static int64_t now_ms(const pl_waku_node *n) {
    return pl_driver_now(n->drv);
}

static const char *ptext(const pl_p2p_peer_id *id, char buf[PL_P2P_PEER_ID_TEXT_SIZE]) {
    if (!id->len || pl_p2p_peer_id_format(buf, id) != PL_OK)
        snprintf(buf, PL_P2P_PEER_ID_TEXT_SIZE, "?");
    return buf;
}

static rconn *rc_find(const pl_waku_node *n, pl_p2p_conn_id id) {
    for (rconn *c = n->conns; c; c = c->next)
        if (c->id == id) return c;
    return NULL;
}

static void sendq_clear(rconn *c) {
    while (c->qh) {
        sendbuf *b = c->qh;
        c->qh = b->next;
        free(b->data);
        free(b);
    }
    c->qt = NULL;
    c->qbytes = 0;
}

static void rc_free(pl_waku_node *n, rconn *c) {
    rconn **pp = &n->conns;
    while (*pp && *pp != c)
        pp = &(*pp)->next;
    if (*pp) *pp = c->next;
    sendq_clear(c);
    free(c->addr);
    free(c);
}

static void emit(pl_waku_node *n, const pl_waku_event *ev) {
    if (n->o.on_event) n->o.on_event(n->o.ud, n, ev);
}

static void drain(pl_waku_node *n);

/* ---- sending ------------------------------------------------------------------ */

/* Hand queued RPCs to the relay stream as far as it takes them. */
static void flush_sendq(pl_waku_node *n, rconn *c) {
    if (c->flushing) return;
    pl_p2p_conn_id id = c->id;
    c->flushing = true;
    while (c->qh && c->relay_out) {
        sendbuf *b = c->qh;
        size_t taken = 0;
        pl_err e =
            pl_p2p_stream_write(n->host, c->relay_out, b->data + b->off, b->len - b->off, &taken);
        /* The callbacks of that write may have ended the connection (ids
         * are never reused). */
        if (rc_find(n, id) != c) return;
        if (e != PL_OK) { /* the stream is gone: its CLOSED event tells the core */
            sendq_clear(c);
            break;
        }
        if (taken) pl__wnode_sent(n->core, id, taken);
        b->off += taken;
        c->qbytes -= taken;
        if (b->off < b->len) break; /* WRITABLE follows */
        c->qh = b->next;
        if (!c->qh) c->qt = NULL;
        free(b->data);
        free(b);
    }
    c->flushing = false;
}

static void queue_send(pl_waku_node *n, rconn *c, uint8_t *data, size_t len) {
    sendbuf *b = malloc(sizeof *b);
    if (!b) {
        free(data);
        pl__wnode_drop(n->core, c->id, PL_ERR_NOMEM, now_ms(n));
        return;
    }
    b->next = NULL;
    b->data = data;
    b->len = len;
    b->off = 0;
    if (c->qt)
        c->qt->next = b;
    else
        c->qh = b;
    c->qt = b;
    c->qbytes += len;
    if (c->qh == b) flush_sendq(n, c);
}

/* ---- reading relay RPCs ----------------------------------------------------------- */

/* Give the core every whole RPC waiting on stream s of connection id. */
static void read_rpcs(pl_waku_node *n, pl_p2p_conn_id id, pl_p2p_stream_id s) {
    size_t max = n->max_rpc;
    while (pl__wnode_relay_ready(n->core, id)) {
        const uint8_t *d;
        size_t len = 0, hl = 0, bl = 0;
        if (pl_p2p_stream_peek(n->host, s, &d, &len) != PL_OK || !len) return;
        pl_err e = pl__gossip_unframe(d, len, max, &hl, &bl);
        if (e == PL_ERR_TRUNCATED) return;
        if (e != PL_OK) {
            char pt[PL_P2P_PEER_ID_TEXT_SIZE];
            rconn *c = rc_find(n, id);
            logf_(n, "relay stream of %s: bad frame (%s)", c ? ptext(&c->peer, pt) : "?",
                  pl_errname(e));
            pl__wnode_drop(n->core, id, e == PL_ERR_TOO_LARGE ? e : PL_ERR_GOSSIP_PROTOCOL,
                           now_ms(n));
            drain(n);
            return;
        }
        e = pl__wnode_relay_rpc(n->core, id, d + hl, bl, now_ms(n));
        if (e != PL_OK && e != PL_ERR_STATE) {
            char pt[PL_P2P_PEER_ID_TEXT_SIZE];
            rconn *c = rc_find(n, id);
            logf_(n, "relay RPC from %s: %s (%s)", c ? ptext(&c->peer, pt) : "?", pl_strerror(e),
                  pl_errname(e));
        }
        (void)pl_p2p_stream_consume(n->host, s, hl + bl);
        drain(n);
    }
}

static void read_all_inbound(pl_waku_node *n, rconn *c) {
    pl_p2p_conn_id id = c->id;
    for (size_t i = 0; i < RELAY_IN_MAX; i++) {
        c = rc_find(n, id);
        if (!c || i >= c->nin) return;
        read_rpcs(n, id, c->relay_in[i]);
    }
    c = rc_find(n, id);
    if (c && c->relay_out) read_rpcs(n, id, c->relay_out);
}

/* ---- streams ------------------------------------------------------------------------ */

static void on_relay_out(void *ud, pl_p2p_host *h, const pl_p2p_stream_event *ev) {
    (void)h;
    pl_waku_node *n = ud;
    rconn *c = rc_find(n, ev->conn);
    if (!c || c->relay_out != ev->stream) return;
    switch (ev->kind) {
    case PL_P2P_STREAM_OPENED:
        pl__wnode_relay_opened(n->core, c->id, now_ms(n));
        drain(n);
        if ((c = rc_find(n, ev->conn)) != NULL) read_all_inbound(n, c);
        break;
    case PL_P2P_STREAM_READABLE:
        read_rpcs(n, c->id, ev->stream);
        break;
    case PL_P2P_STREAM_WRITABLE:
        flush_sendq(n, c);
        break;
    case PL_P2P_STREAM_EOF:
        break;
    case PL_P2P_STREAM_CLOSED:
        c->relay_out = 0;
        sendq_clear(c);
        /* PL_ERR_CLOSED: the connection is ending; DISCONNECTED follows. */
        if (ev->err != PL_ERR_CLOSED) {
            pl__wnode_relay_failed(n->core, c->id, ev->err, now_ms(n));
            drain(n);
        }
        break;
    }
}

static void on_relay_in(void *ud, pl_p2p_host *h, const pl_p2p_stream_event *ev) {
    pl_waku_node *n = ud;
    rconn *c = rc_find(n, ev->conn);
    if (!c) {
        if (ev->kind != PL_P2P_STREAM_CLOSED) (void)pl_p2p_stream_reset(h, ev->stream);
        return;
    }
    switch (ev->kind) {
    case PL_P2P_STREAM_OPENED:
        /* gossipsub keeps one inbound stream per peer; a new one replaces
         * the oldest, as js-libp2p does. */
        if (c->nin == RELAY_IN_MAX) {
            (void)pl_p2p_stream_reset(h, c->relay_in[0]);
            memmove(&c->relay_in[0], &c->relay_in[1], (RELAY_IN_MAX - 1) * sizeof c->relay_in[0]);
            c->nin--;
        }
        c->relay_in[c->nin++] = ev->stream;
        break;
    case PL_P2P_STREAM_READABLE:
        read_rpcs(n, c->id, ev->stream);
        break;
    case PL_P2P_STREAM_EOF:
        (void)pl_p2p_stream_close(h, ev->stream);
        break;
    case PL_P2P_STREAM_WRITABLE:
        break;
    case PL_P2P_STREAM_CLOSED:
        for (size_t i = 0; i < c->nin; i++)
            if (c->relay_in[i] == ev->stream) {
                memmove(&c->relay_in[i], &c->relay_in[i + 1],
                        (c->nin - i - 1) * sizeof c->relay_in[0]);
                c->nin--;
                break;
            }
        break;
    }
}

static void meta_answer(pl_waku_node *n, rconn *c, const uint8_t *msg, size_t len) {
    c->meta_done = true;
    pl_err e = pl__wnode_metadata_answer(n->core, c->id, msg, len, now_ms(n));
    if (e != PL_OK && e != PL_ERR_STATE) {
        char pt[PL_P2P_PEER_ID_TEXT_SIZE];
        logf_(n, "metadata of %s: %s (%s)", ptext(&c->peer, pt), pl_strerror(e), pl_errname(e));
    }
    drain(n);
}

static void on_meta_out(void *ud, pl_p2p_host *h, const pl_p2p_stream_event *ev) {
    pl_waku_node *n = ud;
    rconn *c = rc_find(n, ev->conn);
    if (!c || c->meta_out != ev->stream) {
        /* spent: drain to the end */
        if (ev->kind == PL_P2P_STREAM_READABLE) {
            const uint8_t *d;
            size_t len = 0;
            if (pl_p2p_stream_peek(h, ev->stream, &d, &len) == PL_OK)
                (void)pl_p2p_stream_consume(h, ev->stream, len);
        }
        return;
    }
    switch (ev->kind) {
    case PL_P2P_STREAM_OPENED:
        (void)pl_p2p_stream_close(h, ev->stream);
        break;
    case PL_P2P_STREAM_READABLE:
    case PL_P2P_STREAM_EOF: {
        const uint8_t *m = NULL;
        size_t len = 0;
        pl_err e = pl_p2p_stream_read_msg(h, ev->stream, PL__WAKU_METADATA_MAX_BYTES, &m, &len);
        if (e != PL_OK) {
            c->meta_out = 0;
            (void)pl_p2p_stream_reset(h, ev->stream);
            meta_answer(n, c, NULL, 0);
        } else if (m) {
            c->meta_out = 0; /* spent */
            meta_answer(n, c, m, len);
        } else if (ev->kind == PL_P2P_STREAM_EOF) {
            c->meta_out = 0;
            meta_answer(n, c, NULL, 0);
        }
        break;
    }
    case PL_P2P_STREAM_WRITABLE:
        break;
    case PL_P2P_STREAM_CLOSED:
        c->meta_out = 0;
        if (!c->meta_done) meta_answer(n, c, NULL, 0);
        break;
    }
}

static void on_meta_in(void *ud, pl_p2p_host *h, const pl_p2p_stream_event *ev) {
    pl_waku_node *n = ud;
    switch (ev->kind) {
    case PL_P2P_STREAM_OPENED: {
        /* Answer first, then read the request: js-waku's requester and
         * nwaku's both read an answer that is already there. */
        uint8_t buf[PL__WAKU_METADATA_MAX_BYTES];
        size_t len = 0;
        if (pl__wnode_metadata_ours(n->core, buf, sizeof buf, &len) == PL_OK)
            (void)pl_p2p_stream_write_msg(h, ev->stream, buf, len);
        (void)pl_p2p_stream_close(h, ev->stream);
        break;
    }
    case PL_P2P_STREAM_READABLE:
        for (;;) {
            const uint8_t *m = NULL;
            size_t len = 0;
            pl_err e = pl_p2p_stream_read_msg(h, ev->stream, PL__WAKU_METADATA_MAX_BYTES, &m, &len);
            if (e != PL_OK) {
                (void)pl_p2p_stream_reset(h, ev->stream);
                break;
            }
            if (!m) break;
            pl_err v = pl__wnode_metadata_request(n->core, ev->conn, m, len, now_ms(n));
            if (v == PL_ERR_WAKU_CLUSTER) {
                char pt[PL_P2P_PEER_ID_TEXT_SIZE];
                logf_(n, "metadata request of %s names another cluster", ptext(ev->peer, pt));
            }
            /* Not reset: that could discard our answer before it left. */
            drain(n);
        }
        break;
    default:
        break;
    }
}

/* ---- host events ------------------------------------------------------------------------ */

static void on_host_event(void *ud, pl_p2p_host *h, const pl_p2p_event *ev) {
    (void)h;
    pl_waku_node *n = ud;
    switch (ev->kind) {
    case PL_P2P_EV_CONNECTED: {
        for (pdial **pp = &n->dials; *pp; pp = &(*pp)->next)
            if ((*pp)->conn == ev->conn) {
                pdial *d = *pp;
                *pp = d->next;
                free(d);
                break;
            }
        rconn *c = calloc(1, sizeof *c);
        char *a = strdup(ev->remote_addr ? ev->remote_addr : "");
        if (!c || !a) {
            free(c), free(a);
            (void)pl_p2p_conn_close(n->host, ev->conn, PL_ERR_NOMEM);
            return;
        }
        c->id = ev->conn;
        c->peer = *ev->peer;
        c->inbound = ev->inbound;
        c->addr = a;
        c->next = n->conns;
        n->conns = c;
        pl__wnode_conn_up(n->core, c->id, &c->peer, c->inbound, now_ms(n));
        drain(n);
        break;
    }
    case PL_P2P_EV_IDENTIFIED:
        break;
    case PL_P2P_EV_DISCONNECTED: {
        if (!ev->established) {
            for (pdial **pp = &n->dials; *pp; pp = &(*pp)->next)
                if ((*pp)->conn == ev->conn) {
                    pdial *d = *pp;
                    *pp = d->next;
                    pl_waku_event we = {.kind = PL_WAKU_EV_PEER_REFUSED,
                                        .peer = ev->peer,
                                        .conn = ev->conn,
                                        .addr = d->addr,
                                        .pubsub_topic = "",
                                        .err = ev->err};
                    free(d);
                    emit(n, &we);
                    break;
                }
        }
        pl__wnode_conn_down(n->core, ev->conn, ev->err, now_ms(n));
        drain(n);
        rconn *c = rc_find(n, ev->conn);
        if (c) rc_free(n, c);
        break;
    }
    }
}

/* ---- the core's outputs -------------------------------------------------------------------- */

static const char *const relay_proto[] = {PL__GOSSIP_PROTOCOL};
static const char *const meta_proto[] = {PL__WAKU_METADATA_PROTOCOL};

static void do_dial(pl_waku_node *n, const pl__wnode_out *o) {
    pl_p2p_conn_id conn = 0;
    pl_err e = pl_p2p_host_dial(n->host, o->addr, &conn);
    if (e != PL_OK) {
        logf_(n, "dial %s: %s (%s)", o->addr, pl_strerror(e), pl_errname(e));
        pl_waku_event we = {.kind = PL_WAKU_EV_PEER_REFUSED,
                            .peer = &o->peer,
                            .addr = o->addr,
                            .pubsub_topic = "",
                            .err = e};
        emit(n, &we);
        conn = 0;
    } else {
        pdial *d = malloc(sizeof *d);
        if (d) {
            d->conn = conn;
            d->addr = o->addr;
            d->next = n->dials;
            n->dials = d;
        }
    }
    pl__wnode_dialing(n->core, o->boot, conn, now_ms(n));
}

static void open_meta(pl_waku_node *n, rconn *c) {
    pl_p2p_stream_id s = 0;
    pl_err e = pl_p2p_stream_open(n->host, c->id, meta_proto, 1, on_meta_out, n, &s);
    uint8_t buf[PL__WAKU_METADATA_MAX_BYTES];
    size_t len = 0;
    if (e == PL_OK) e = pl__wnode_metadata_ours(n->core, buf, sizeof buf, &len);
    if (e == PL_OK) e = pl_p2p_stream_write_msg(n->host, s, buf, len);
    if (e != PL_OK) {
        if (s) (void)pl_p2p_stream_reset(n->host, s);
        meta_answer(n, c, NULL, 0);
        return;
    }
    c->meta_out = s;
}

static void open_relay(pl_waku_node *n, rconn *c) {
    pl_p2p_stream_id s = 0;
    pl_err e = pl_p2p_stream_open(n->host, c->id, relay_proto, 1, on_relay_out, n, &s);
    if (e != PL_OK) {
        pl__wnode_relay_failed(n->core, c->id, e, now_ms(n));
        return;
    }
    c->relay_out = s;
}

static void on_output(pl_waku_node *n, pl__wnode_out *o) {
    char pt[PL_P2P_PEER_ID_TEXT_SIZE];
    rconn *c = o->conn ? rc_find(n, o->conn) : NULL;
    switch (o->kind) {
    case PL__WNODE_DIAL:
        do_dial(n, o);
        break;
    case PL__WNODE_OPEN_METADATA:
        if (c) open_meta(n, c);
        break;
    case PL__WNODE_OPEN_RELAY:
        if (c) open_relay(n, c);
        break;
    case PL__WNODE_SEND:
        if (c && c->relay_out) {
            queue_send(n, c, o->data, o->len);
            o->data = NULL;
        } else {
            logf_(n, "RPC for %s dropped: no relay stream",
                  c ? ptext(&c->peer, pt) : "a closed connection");
        }
        break;
    case PL__WNODE_DISCONNECT:
        logf_(n, "disconnecting %s: %s (%s)", ptext(&o->peer, pt), pl_strerror(o->err),
              pl_errname(o->err));
        if (c) sendq_clear(c);
        (void)pl_p2p_conn_close(n->host, o->conn, o->err);
        break;
    case PL__WNODE_MESSAGE:
        if (n->o.on_message) {
            char ct[PL__WNODE_CONTENT_TOPIC_MAX + 1];
            size_t l = o->msg.content_topic_len < PL__WNODE_CONTENT_TOPIC_MAX
                           ? o->msg.content_topic_len
                           : PL__WNODE_CONTENT_TOPIC_MAX;
            memcpy(ct, o->msg.content_topic, l);
            ct[l] = '\0';
            pl_waku_delivery d = {.msg = &o->msg,
                                  .content_topic = ct,
                                  .pubsub_topic = o->pubsub_topic,
                                  .hash = o->hash,
                                  .from = &o->peer};
            n->o.on_message(n->o.ud, n, &d);
        }
        break;
    case PL__WNODE_PUBLISHED:
    case PL__WNODE_PUBLISH_FAILED: {
        char ct[PL_TRANSPORT_TOPIC_MAX + 1] = "";
        if (o->msg.content_topic_len && o->msg.content_topic_len < sizeof ct) {
            memcpy(ct, o->msg.content_topic, o->msg.content_topic_len);
            ct[o->msg.content_topic_len] = '\0';
        }
        pl_waku_event we = {.kind = o->kind == PL__WNODE_PUBLISHED ? PL_WAKU_EV_PUBLISHED
                                                                   : PL_WAKU_EV_PUBLISH_FAILED,
                            .peer = &o->peer,
                            .addr = "",
                            .pubsub_topic = o->pubsub_topic,
                            .content_topic = ct,
                            .publish_id = o->publish_id,
                            .sent_to = o->sent_to,
                            .err = o->err};
        if (o->kind == PL__WNODE_PUBLISHED)
            logf_(n, "published queued message %llu to %zu peers",
                  (unsigned long long)o->publish_id, o->sent_to);
        else
            logf_(n, "gave up queued message %llu: %s", (unsigned long long)o->publish_id,
                  pl_strerror(o->err));
        emit(n, &we);
        break;
    }
    case PL__WNODE_PEER_UP:
    case PL__WNODE_PEER_DOWN:
    case PL__WNODE_REFUSED: {
        pl_waku_event_kind k = o->kind == PL__WNODE_PEER_UP     ? PL_WAKU_EV_PEER_UP
                               : o->kind == PL__WNODE_PEER_DOWN ? PL_WAKU_EV_PEER_DOWN
                                                                : PL_WAKU_EV_PEER_REFUSED;
        const char *addr = c ? c->addr : "";
        if (k == PL_WAKU_EV_PEER_UP)
            logf_(n, "peer up %s %s %s", ptext(&o->peer, pt), addr,
                  o->inbound ? "inbound" : "outbound");
        else
            logf_(n, "peer %s %s %s: %s (%s)", k == PL_WAKU_EV_PEER_DOWN ? "down" : "refused",
                  ptext(&o->peer, pt), addr, pl_strerror(o->err), pl_errname(o->err));
        pl_waku_event we = {.kind = k,
                            .peer = &o->peer,
                            .conn = o->conn,
                            .inbound = o->inbound,
                            .addr = addr,
                            .pubsub_topic = "",
                            .err = o->err};
        emit(n, &we);
        break;
    }
    case PL__WNODE_GRAFTED:
    case PL__WNODE_PRUNED: {
        size_t size = pl__wnode_mesh_size(n->core, o->pubsub_topic);
        bool g = o->kind == PL__WNODE_GRAFTED;
        logf_(n, "mesh %s %c%s (%zu peers)", o->pubsub_topic, g ? '+' : '-', ptext(&o->peer, pt),
              size);
        pl_waku_event we = {.kind = PL_WAKU_EV_MESH,
                            .peer = &o->peer,
                            .conn = o->conn,
                            .inbound = o->inbound,
                            .addr = c ? c->addr : "",
                            .pubsub_topic = o->pubsub_topic,
                            .grafted = g,
                            .mesh_size = size,
                            .err = o->err};
        emit(n, &we);
        break;
    }
    }
}

/* Act on every output of the core. Nested calls (from callbacks of the
 * host or the application run while acting) leave the work to the outer
 * loop. */
static void drain(pl_waku_node *n) {
    if (n->draining) return;
    n->draining = true;
    pl__wnode_out o;
    while (pl__wnode_pop(n->core, &o)) {
        on_output(n, &o);
        pl__wnode_out_release(&o);
    }
    n->draining = false;
}

/* ---- time, closing ------------------------------------------------------------------------- */

static void host_closed(void *ud);
static void maybe_finish_flush(pl_waku_node *n);

static int64_t task_deadline(pl_driver_task *t) {
    pl_waku_node *n = t->data;
    if (n->host_closing) return INT64_MAX;
    int64_t d = pl__wnode_next_deadline(n->core);
    if (n->closing && n->flush_deadline < d) d = n->flush_deadline;
    return d;
}

static void task_timer(pl_driver_task *t, int64_t now) {
    pl_waku_node *n = t->data;
    if (n->host_closing) return;
    pl__wnode_on_timer(n->core, now);
    drain(n);
    if (n->closing) maybe_finish_flush(n);
}

/* Before the loop waits: what API calls produced goes out (never inside
 * the calls), and a close moves on. */
static void task_before_wait(pl_driver_task *t, int64_t now) {
    (void)now;
    pl_waku_node *n = t->data;
    if (n->host_closing) return;
    drain(n);
    if (n->closing) maybe_finish_flush(n);
}

static bool sends_pending(const pl_waku_node *n) {
    for (const rconn *c = n->conns; c; c = c->next)
        if (c->qh && c->relay_out) return true;
    return false;
}

static void on_flush_ping(void *ud, pl_p2p_host *h, pl_p2p_conn_id conn, pl_err err,
                          double rtt_ms) {
    (void)h, (void)conn, (void)err, (void)rtt_ms;
    pl_waku_node *n = ud;
    n->flush_pings--;
}

/* Closing, in three steps: queued messages and relay bytes go out (or the
 * flush deadline passes); then each relay peer is pinged, because a peer
 * whose connection ends right after our last bytes may drop what it had
 * not yet taken off the stream (js-libp2p aborts a closing connection's
 * streams): the ping's answer comes after the peer read those bytes; then
 * the host closes. */
static void maybe_finish_flush(pl_waku_node *n) {
    if (n->host_closing) return;
    bool late = now_ms(n) >= n->flush_deadline;
    if (!n->flush_pinged) {
        bool done = pl__wnode_queued(n->core) == 0 && !sends_pending(n);
        if (!done && !late) return;
        pl__wnode_fail_queued(n->core, PL_ERR_CLOSED);
        drain(n);
        n->flush_pinged = true;
        for (rconn *c = n->conns; c && !late; c = c->next)
            if (c->relay_out && pl__wnode_relay_ready(n->core, c->id) &&
                pl_p2p_ping(n->host, c->id, on_flush_ping, n) == PL_OK)
                n->flush_pings++;
    }
    if (n->flush_pings > 0 && !late) return;
    n->host_closing = true;
    pl_p2p_host_close(n->host, host_closed, n);
}

static void free_node(pl_waku_node *n) {
    while (n->conns)
        rc_free(n, n->conns);
    while (n->dials) {
        pdial *d = n->dials;
        n->dials = d->next;
        free(d);
    }
    pl__wnode_free(n->core);
    free(n);
}

/* From the driver, after the host's last callback. */
static void host_closed(void *ud) {
    pl_waku_node *n = ud;
    n->host = NULL;
    pl_driver_stop(&n->task);
    void (*cb)(void *) = n->on_closed;
    void *cud = n->closed_ud;
    free_node(n);
    if (cb) cb(cud);
}

void pl_waku_node_close(pl_waku_node *n, void (*on_closed)(void *ud), void *ud) {
    PL_REQUIRE(n && !n->closing);
    n->closing = true;
    n->on_closed = on_closed;
    n->closed_ud = ud;
    pl__wnode_close(n->core);
    int64_t t = n->o.flush_timeout_ms ? n->o.flush_timeout_ms : DEF_FLUSH_TIMEOUT_MS;
    n->flush_deadline = now_ms(n) + t;
    /* The rest happens from the driver (before_wait, the deadline), never
     * inside this call, so that a callback may close the node. */
}

/* ---- creation and the API ------------------------------------------------------------------ */

void pl_waku_node_opts_init(pl_waku_node_opts *o) {
    PL_REQUIRE(o);
    memset(o, 0, sizeof *o);
    pl_waku_sharding_default(&o->sharding);
}

pl_err pl_waku_node_new(pl_waku_node **out, pl_driver *driver, const pl_waku_node_opts *opts) {
    PL_REQUIRE(out && driver && opts && (opts->peers || !opts->n_peers) &&
               (opts->shards || !opts->n_shards));
    *out = NULL;
    if (!pl_driver_loop(driver) || opts->n_peers > PL_WAKU_NODE_MAX_PEERS_OPT ||
        opts->n_shards > PL_WAKU_NODE_MAX_SHARDS_OPT || opts->flush_timeout_ms < 0)
        return PL_ERR_INVALID_ARG;
    pl_waku_node *n = calloc(1, sizeof *n);
    if (!n) return PL_ERR_NOMEM;
    n->drv = driver;
    n->o = *opts;
    n->o.peers = NULL, n->o.shards = NULL, n->o.key = NULL;
    pl__gossip_config gc;
    pl__gossip_config_default(&gc);
    n->max_rpc = gc.max_rpc_bytes;

    /* The core first: it checks the configuration and the bootstrap
     * addresses, so that the host (whose close is asynchronous) is made
     * only once nothing else can fail but memory. */
    pl__wnode_config wc;
    pl__wnode_config_default(&wc);
    wc.sharding = opts->sharding;
    wc.shards = opts->shards;
    wc.n_shards = opts->n_shards;
    wc.bootstrap = opts->peers;
    wc.n_bootstrap = opts->n_peers;
    wc.metadata_timeout_ms = opts->metadata_timeout_ms;
    wc.reconnect_min_ms = opts->reconnect_min_ms;
    wc.reconnect_max_ms = opts->reconnect_max_ms;
    wc.publish_ttl_ms = opts->publish_ttl_ms;
    wc.queue_max = opts->publish_queue_max;
    wc.queue_bytes = opts->publish_queue_bytes;
    wc.max_conns = opts->max_connections ? opts->max_connections : DEF_MAX_CONNECTIONS;
    wc.max_content_topics = opts->max_content_topics;
    wc.publish_needs_mesh = opts->publish_needs_mesh;
    pl_p2p_key *tmp = NULL;
    const pl_p2p_key *key = opts->key;
    pl_err e = PL_OK;
    if (!key) {
        e = pl_p2p_key_generate(&tmp, PL_P2P_KEY_ED25519);
        key = tmp;
    }
    /* our peer id is the core's too (duplicate connections) */
    if (e == PL_OK) pl_p2p_key_peer_id(key, &wc.self);
    if (e == PL_OK) e = pl__wnode_new(&n->core, &wc, now_ms(n));
    pl_p2p_host_opts ho = {0};
    ho.key = key;
    ho.on_event = on_host_event;
    ho.ud = n;
    ho.on_log = opts->on_log;
    ho.log_ud = opts->log_ud;
    ho.muxers = opts->muxers;
    ho.max_connections = (uint32_t)wc.max_conns;
    ho.stream_recv_buffer = RELAY_RECV_BUFFER;
    if (e == PL_OK) e = pl_p2p_host_new(&n->host, driver, &ho);
    pl_p2p_key_free(tmp);
    if (e != PL_OK) {
        pl__wnode_free(n->core);
        free(n);
        return e;
    }
    pl_p2p_host_peer_id(n->host, &n->self);
    ptext(&n->self, n->self_text);
    e = pl_p2p_host_handle(n->host, PL__GOSSIP_PROTOCOL, on_relay_in, n);
    if (e == PL_OK) e = pl_p2p_host_handle(n->host, PL__WAKU_METADATA_PROTOCOL, on_meta_in, n);
    if (e != PL_OK) {
        /* memory only; the host frees itself from the driver */
        pl_p2p_host_close(n->host, NULL, NULL);
        pl__wnode_free(n->core);
        free(n);
        return e;
    }
    n->task.data = n;
    n->task.next_deadline = task_deadline;
    n->task.on_timer = task_timer;
    n->task.before_wait = task_before_wait;
    /* The bootstrap dials are due now: the driver runs them from the loop. */
    pl_driver_start(driver, &n->task);
    *out = n;
    return PL_OK;
}

pl_err pl_waku_node_listen(pl_waku_node *n, const char *multiaddr) {
    PL_REQUIRE(n && multiaddr);
    if (n->closing) return PL_ERR_STATE;
    return pl_p2p_host_listen(n->host, multiaddr);
}

pl_driver *pl_waku_node_driver(const pl_waku_node *n) {
    PL_REQUIRE(n);
    return n->drv;
}

void pl_waku_node_peer_id(const pl_waku_node *n, pl_p2p_peer_id *id) {
    PL_REQUIRE(n && id);
    *id = n->self;
}

size_t pl_waku_node_listen_addr(const pl_waku_node *n, size_t i, char *out, size_t cap) {
    PL_REQUIRE(n && (out || cap == 0));
    if (!n->host) return 0;
    const char *const *a;
    size_t k = pl_p2p_host_listen_addrs(n->host, &a);
    if (i < k && cap) snprintf(out, cap, "%s/p2p/%s", a[i], n->self_text);
    return k;
}

pl_err pl_waku_node_subscribe(pl_waku_node *n, const char *ct) {
    PL_REQUIRE(n && ct);
    if (n->closing) return PL_ERR_STATE;
    return pl__wnode_subscribe(n->core, ct, strlen(ct), now_ms(n));
    /* outputs (subscription RPCs) go out from the loop's prepare */
}

pl_err pl_waku_node_unsubscribe(pl_waku_node *n, const char *ct) {
    PL_REQUIRE(n && ct);
    if (n->closing) return PL_ERR_STATE;
    return pl__wnode_unsubscribe(n->core, ct, strlen(ct), now_ms(n));
}

static int64_t wall_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

pl_err pl_waku_node_publish(pl_waku_node *n, const char *ct, const uint8_t *payload, size_t len,
                            const pl_waku_publish_opts *opts, pl_waku_publish_result *result) {
    PL_REQUIRE(n && ct && (payload || len == 0));
    if (result) memset(result, 0, sizeof *result);
    if (n->closing) return PL_ERR_STATE;
    pl_waku_message m = {.payload = payload,
                         .payload_len = len,
                         .has_payload = true,
                         .content_topic = ct,
                         .content_topic_len = strlen(ct)};
    if (opts) {
        m.version = opts->version;
        m.timestamp = opts->timestamp;
        m.meta = opts->meta;
        m.meta_len = opts->meta ? opts->meta_len : 0;
        m.ephemeral = opts->ephemeral;
    }
    if (!m.timestamp) m.timestamp = wall_ns();
    pl__wnode_pub r;
    pl_err e = pl__wnode_publish(n->core, &m, now_ms(n), &r);
    if (e != PL_OK) return e;
    if (result) {
        result->id = r.id;
        result->queued = r.queued;
        result->sent_to = r.sent_to;
        memcpy(result->hash, r.hash, sizeof r.hash);
        memcpy(result->pubsub_topic, r.pubsub_topic, sizeof r.pubsub_topic);
    }
    /* The SENDs go out from the loop (prepare), so that no callback runs
     * inside this call. */
    return PL_OK;
}

void pl_waku_node_get_callbacks(const pl_waku_node *n, pl_waku_message_cb *on_message,
                                pl_waku_event_cb *on_event, void **ud) {
    PL_REQUIRE(n && on_message && on_event && ud);
    *on_message = n->o.on_message;
    *on_event = n->o.on_event;
    *ud = n->o.ud;
}

void pl_waku_node_set_callbacks(pl_waku_node *n, pl_waku_message_cb on_message,
                                pl_waku_event_cb on_event, void *ud) {
    PL_REQUIRE(n);
    n->o.on_message = on_message;
    n->o.on_event = on_event;
    n->o.ud = ud;
}

size_t pl_waku_node_pending(const pl_waku_node *n) {
    PL_REQUIRE(n);
    size_t k = pl__wnode_queued(n->core);
    for (const rconn *c = n->conns; c; c = c->next)
        for (const sendbuf *b = c->qh; b; b = b->next)
            k++;
    return k;
}

size_t pl_waku_node_peer_count(const pl_waku_node *n) {
    PL_REQUIRE(n);
    return pl__wnode_relay_peers(n->core);
}

size_t pl_waku_node_mesh_size(const pl_waku_node *n, const char *topic) {
    PL_REQUIRE(n && topic);
    return pl__wnode_mesh_size(n->core, topic);
}

pl_err pl_waku_node_pubsub_topic(const pl_waku_node *n, const char *ct,
                                 char out[PL_WAKU_PUBSUB_TOPIC_SIZE]) {
    PL_REQUIRE(n && ct && out);
    return pl__wnode_pubsub_topic_for(n->core, out, ct, strlen(ct));
}

void pl_waku_node_stats_get(const pl_waku_node *n, pl_waku_node_stats *s) {
    PL_REQUIRE(n && s);
    memset(s, 0, sizeof *s);
    pl__wnode_stats ws;
    pl__wnode_stats_get(n->core, &ws);
    pl__gossip_stats gs;
    pl__gossip_stats_get(pl__wnode_gossip(n->core), &gs);
    s->peers = pl__wnode_relay_peers(n->core);
    s->connections = n->host ? pl_p2p_host_conns(n->host, NULL, 0) : 0;
    s->queued = pl__wnode_queued(n->core);
    s->delivered = ws.delivered;
    s->filtered = ws.filtered;
    s->keepalives = ws.keepalives;
    s->published = ws.published;
    s->expired = ws.expired;
    s->refused = ws.refused;
    s->forwarded = gs.forwarded;
    s->duplicates = gs.duplicates;
    s->rejected = gs.rejected;
}
