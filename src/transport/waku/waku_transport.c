/* SPDX-License-Identifier: Apache-2.0 */
/* The Waku relay transport: see include/pairlink/waku_transport.h. Glue
 * between the transport table and a Waku node; the node (src/waku/,
 * src/runtime/waku_node.c) does the networking and the WakuMessage
 * framing, this file only maps operations, deliveries and peer events. */
#include "pairlink/waku_transport.h"

#include "core/internal.h"

#include <stdlib.h>
#include <string.h>

#define MAX_LISTEN 8

typedef struct wt {
    pl_transport t; /* first: the handle users hold */
    pl_waku_node *node;
    bool own; /* the node is ours: closed with the transport */
    /* the node's callbacks before us: called after our own handling */
    pl_waku_message_cb prev_msg;
    pl_waku_event_cb prev_ev;
    void *prev_ud;
    pl_transport_state state;
    pl_err err;
    pl_driver_call call; /* a state to report (wrap), or done (close of a given node) */
    void (*done)(pl_transport *t);
} wt;

static const pl_transport_ops waku_ops;

static wt *of(pl_transport *t) {
    return (wt *)(void *)t;
}

static const wt *cof(const pl_transport *t) {
    return (const wt *)(const void *)t;
}

/* ---- up: deliveries and peer events, from the driver ---- */

static void on_node_message(void *ud, pl_waku_node *n, const pl_waku_delivery *d) {
    wt *w = ud;
    const pl_waku_message *m = d->msg;
    pl_waku_delivery_ext x = {.ext = {PL_TRANSPORT_EXT_WAKU},
                              .version = m->version,
                              .timestamp_ns = m->timestamp,
                              .ephemeral = m->ephemeral,
                              .meta = m->meta_len ? m->meta : NULL,
                              .meta_len = m->meta_len,
                              .pubsub_topic = d->pubsub_topic,
                              .hash = d->hash,
                              .from = d->from};
    pl_delivery_info info = {.published_at_ms = m->timestamp > 0 ? m->timestamp / 1000000 : 0,
                             .ext = &x.ext};
    /* Subscribed content topics passed pl_transport_topic_valid; anything
     * else the node delivers belongs to the callbacks before us. */
    if (pl_transport_topic_valid(d->content_topic))
        pl_transport_deliver(&w->t, d->content_topic, m->payload_len ? m->payload : NULL,
                             m->payload_len, &info);
    if (w->prev_msg) w->prev_msg(w->prev_ud, n, d);
}

static void set_state(wt *w, pl_transport_state s, pl_err err) {
    w->state = s;
    w->err = err;
    pl_transport_report_state(&w->t, s, err);
}

static void on_node_event(void *ud, pl_waku_node *n, const pl_waku_event *ev) {
    wt *w = ud;
    switch (ev->kind) {
    case PL_WAKU_EV_PEER_UP:
        if (w->state != PL_TRANSPORT_CONNECTED) set_state(w, PL_TRANSPORT_CONNECTED, PL_OK);
        break;
    case PL_WAKU_EV_PEER_DOWN:
        if (pl_waku_node_peer_count(n) == 0)
            set_state(w, PL_TRANSPORT_RECONNECTING, ev->err ? ev->err : PL_ERR_DISCONNECTED);
        break;
    case PL_WAKU_EV_PEER_REFUSED:
        /* One of our attempts failed while we have no relay peer (a
         * bootstrap dial, a peer of another cluster). Refused inbound
         * connections are the dialers' business, and a duplicate
         * connection is no failure: the other one stays. */
        if (pl_waku_node_peer_count(n) == 0 && !ev->inbound && ev->err != PL_ERR_EXISTS)
            set_state(w, PL_TRANSPORT_RECONNECTING, ev->err ? ev->err : PL_ERR_DISCONNECTED);
        break;
    case PL_WAKU_EV_PUBLISH_FAILED:
        /* A publish queued for want of peers was given up: the core above
         * hears of it (its own event), never silence. */
        if (ev->content_topic && pl_transport_topic_valid(ev->content_topic))
            pl_transport_report_publish_error(&w->t, ev->content_topic, ev->err, 0);
        break;
    default:
        break;
    }
    if (w->prev_ev) w->prev_ev(w->prev_ud, n, ev);
}

/* ---- down: the table ---- */

static pl_err op_publish(pl_transport *t, const char *topic, const uint8_t *data, size_t len,
                         const pl_publish_opts *opts) {
    wt *w = of(t);
    pl_waku_publish_opts po = {.ephemeral = opts->ephemeral};
    if (opts->ext && opts->ext->kind == PL_TRANSPORT_EXT_WAKU) {
        const pl_waku_publish_ext *x = (const pl_waku_publish_ext *)(const void *)opts->ext;
        po.version = x->version;
        po.meta = x->meta;
        po.meta_len = x->meta ? x->meta_len : 0;
    }
    /* ttl_s: relay keeps nothing, so there is nothing to bound. */
    pl_err e = pl_waku_node_publish(w->node, topic, data, len, &po, NULL);
    switch (e) {
    case PL_ERR_EXISTS:
        /* The same message bytes were published or seen within the seen
         * cache's time: the network already has them. */
        return PL_OK;
    case PL_ERR_WAKU_QUEUE_FULL:
        return PL_ERR_TOO_LARGE; /* transport.h's name for a full queue */
    default:
        return e;
    }
}

static pl_err op_subscribe(pl_transport *t, const char *topic) {
    pl_err e = pl_waku_node_subscribe(of(t)->node, topic);
    return e == PL_ERR_EXISTS ? PL_OK : e;
}

static pl_err op_unsubscribe(pl_transport *t, const char *topic) {
    pl_err e = pl_waku_node_unsubscribe(of(t)->node, topic);
    return e == PL_ERR_NOT_FOUND ? PL_OK : e;
}

static pl_transport_state op_state(const pl_transport *t, pl_err *err) {
    *err = cof(t)->err;
    return cof(t)->state;
}

static size_t op_pending(const pl_transport *t) {
    return pl_waku_node_pending(cof(t)->node);
}

static void node_closed(void *ud) {
    wt *w = ud;
    w->node = NULL;
    w->done(&w->t);
}

static void call_done(pl_driver_call *c) {
    wt *w = c->data;
    w->done(&w->t);
}

static void op_close(pl_transport *t, void (*done)(pl_transport *t)) {
    wt *w = of(t);
    w->done = done;
    pl_driver_cancel(t->driver, &w->call);
    if (w->own) {
        /* From the driver, then node_closed: the node's own flush takes
         * what the transport's left (at most its flush_timeout_ms). */
        pl_waku_node_close(w->node, node_closed, w);
        return;
    }
    pl_waku_node_set_callbacks(w->node, w->prev_msg, w->prev_ev, w->prev_ud);
    w->call.fn = call_done;
    w->call.data = w;
    pl_driver_defer(t->driver, &w->call);
}

static void op_free(pl_transport *t) {
    free(of(t));
}

static const pl_transport_ops waku_ops = {
    .name = "waku",
    .publish = op_publish,
    .subscribe = op_subscribe,
    .unsubscribe = op_unsubscribe,
    .state = op_state,
    .pending = op_pending,
    .close = op_close,
    .free = op_free,
};

/* ---- construction ---- */

void pl_waku_transport_opts_init(pl_waku_transport_opts *o) {
    PL_REQUIRE(o);
    memset(o, 0, sizeof *o);
    pl_waku_node_opts_init(&o->node);
}

static void report_initial(pl_driver_call *c) {
    wt *w = c->data;
    if (w->state == PL_TRANSPORT_CONNECTED) pl_transport_report_state(&w->t, w->state, PL_OK);
}

pl_err pl_waku_transport_new(pl_transport **out, pl_driver *d, const pl_waku_transport_opts *o) {
    PL_REQUIRE(out && d && o && (o->listen || !o->n_listen));
    *out = NULL;
    if (o->n_listen > MAX_LISTEN) return PL_ERR_INVALID_ARG;
    wt *w = calloc(1, sizeof *w);
    if (!w) return PL_ERR_NOMEM;
    pl_waku_node_opts no = o->node;
    /* Request/response protocols on top: see waku_node.h. */
    no.publish_needs_mesh = true;
    w->own = true;
    w->prev_msg = no.on_message;
    w->prev_ev = no.on_event;
    w->prev_ud = no.ud;
    no.on_message = on_node_message;
    no.on_event = on_node_event;
    no.ud = w;
    pl_p2p_key *key = NULL;
    pl_err e = PL_OK;
    if (!no.key && o->key_file) {
        e = pl_p2p_key_load_or_create(o->key_file, PL_P2P_KEY_ED25519, &key, NULL);
        no.key = key;
    }
    if (e == PL_OK) e = pl_waku_node_new(&w->node, d, &no);
    pl_p2p_key_free(key); /* the node keeps its copy */
    for (size_t i = 0; e == PL_OK && i < o->n_listen; i++)
        e = pl_waku_node_listen(w->node, o->listen[i]);
    if (e != PL_OK) {
        if (w->node) pl_waku_node_close(w->node, NULL, NULL); /* finishes from the driver */
        free(w);
        return e;
    }
    pl_transport_init(&w->t, &waku_ops, d, &o->handler);
    w->state = PL_TRANSPORT_CONNECTING;
    *out = &w->t;
    return PL_OK;
}

pl_err pl_waku_transport_wrap(pl_transport **out, pl_waku_node *node,
                              const pl_transport_handler *h) {
    PL_REQUIRE(out && node);
    *out = NULL;
    pl_waku_message_cb pm;
    pl_waku_event_cb pe;
    void *pud;
    pl_waku_node_get_callbacks(node, &pm, &pe, &pud);
    PL_REQUIRE(pm != on_node_message); /* one transport per node */
    wt *w = calloc(1, sizeof *w);
    if (!w) return PL_ERR_NOMEM;
    w->node = node;
    w->prev_msg = pm;
    w->prev_ev = pe;
    w->prev_ud = pud;
    pl_transport_init(&w->t, &waku_ops, pl_waku_node_driver(node), h);
    w->state = pl_waku_node_peer_count(node) ? PL_TRANSPORT_CONNECTED : PL_TRANSPORT_CONNECTING;
    pl_waku_node_set_callbacks(node, on_node_message, on_node_event, w);
    if (w->state == PL_TRANSPORT_CONNECTED) { /* told from the driver, never inside this call */
        w->call.fn = report_initial;
        w->call.data = w;
        pl_driver_defer(w->t.driver, &w->call);
    }
    *out = &w->t;
    return PL_OK;
}

bool pl_waku_transport_is(const pl_transport *t) {
    PL_REQUIRE(t);
    return t->ops == &waku_ops;
}

pl_waku_node *pl_waku_transport_node(pl_transport *t) {
    PL_REQUIRE(t && t->ops == &waku_ops);
    return of(t)->node;
}
