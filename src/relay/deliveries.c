/* The relay core's deliveries: every message owed to a connection, pushed
 * as an irn_subscription request within a per-connection in-flight window,
 * re-pushed when its acknowledgement is overdue. */
#include "relay/internal.h"

#include "core/internal.h"

#include <stdlib.h>

static void dl_append(dlist *l, delivery *d) {
    d->cnext = NULL;
    d->cprev = l->tail;
    if (l->tail)
        l->tail->cnext = d;
    else
        l->head = d;
    l->tail = d;
    l->n++;
}

static void dl_remove(dlist *l, delivery *d) {
    if (d->cprev)
        d->cprev->cnext = d->cnext;
    else
        l->head = d->cnext;
    if (d->cnext)
        d->cnext->cprev = d->cprev;
    else
        l->tail = d->cprev;
    d->cprev = d->cnext = NULL;
    l->n--;
}

static void g_append(pl__relay_core *c, delivery *d) {
    d->gnext = NULL;
    d->gprev = c->g_tail;
    if (c->g_tail)
        c->g_tail->gnext = d;
    else
        c->g_head = d;
    c->g_tail = d;
}

static void g_remove(pl__relay_core *c, delivery *d) {
    if (d->gprev)
        d->gprev->gnext = d->gnext;
    else
        c->g_head = d->gnext;
    if (d->gnext)
        d->gnext->gprev = d->gprev;
    else
        c->g_tail = d->gprev;
    d->gprev = d->gnext = NULL;
}

static void delivery_free(delivery *d) {
    pl__rs_msg_unref(d->m);
    free(d);
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
    json_t *data = pl__rs_message_json(d->m);
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
    return pl__rs_send_json(c, d->c->id, j);
}

void pl__rs_deliver(pl__relay_core *c, conn *k, rmsg *m, int64_t now_ms) {
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
    if (window)
        push(c, d, now_ms);
    else
        dl_append(&k->backlog, d);
}

/* A delivery still makes sense: message alive, connection still subscribed. */
static bool delivery_wanted(const delivery *d) {
    return d->m->t && pl__rs_subscribed(d->c, d->m->t);
}

static void drain_backlog(pl__relay_core *c, conn *k, int64_t now_ms) {
    while (k->backlog.head && k->inflight.n < c->lim.max_inflight_per_conn) {
        delivery *d = k->backlog.head;
        dl_remove(&k->backlog, d);
        if (delivery_wanted(d))
            push(c, d, now_ms);
        else
            delivery_free(d);
    }
}

void pl__rs_on_ack(pl__relay_core *c, conn *k, int64_t id, int64_t now_ms) {
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

void pl__rs_repush(pl__relay_core *c, int64_t now_ms) {
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

int64_t pl__rs_deliveries_deadline(const pl__relay_core *c) {
    return c->g_head ? c->g_head->deadline : INT64_MAX;
}

void pl__rs_deliveries_drop(pl__relay_core *c, conn *k) {
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
}
