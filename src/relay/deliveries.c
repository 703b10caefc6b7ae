/* SPDX-License-Identifier: Apache-2.0 */
/* The relay core's deliveries: every message owed to a connection, pushed
 * as an irn_subscription request under flow control, re-pushed when its
 * acknowledgement is overdue.
 *
 * Nothing owed is copied: a subscription keeps its position in the topic's
 * mailbox (sub.next) and sits on its connection's ready list while it has
 * messages to get. pl__rs_pump() turns positions into pushes, round robin
 * over the ready subscriptions, while the connection's window allows: at
 * most max_inflight_per_conn pushes and max_inflight_bytes_per_conn bytes
 * unacknowledged, and only while the relay's memory is under its bulk limit
 * (internal.h); a connection with nothing in flight always gets one, so every backlog
 * moves at the pace its client acknowledges, whatever the topic holds. */
#include "relay/internal.h"

#include "core/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Take d off its connection's in-flight list and the timer list. */
static void inflight_remove(pl__relay_core *c, delivery *d) {
    dl_remove(&d->c->inflight, d);
    g_remove(c, d);
    d->c->inflight_bytes -= d->bytes;
    d->m->inflight--;
}

static void delivery_free(pl__relay_core *c, delivery *d) {
    pl__rs_msg_unref(d->m);
    free(d);
    pl__rs_release(c, pl__rs_delivery_cost());
}

/* The irn_subscription request of d, written straight into its frame
 * (the fields in the order jansson wrote them); *n gets its length. NULL:
 * out of memory. */
static char *push_text(const pl__relay_core *c, const delivery *d, size_t *n) {
    const rmsg *m = d->m;
    size_t att = m->rec.attestation ? strlen(m->rec.attestation) : 0;
    size_t att_json = m->rec.attestation ? pl__rs_json_string_len(m->rec.attestation, att) : 0;
    size_t cap = 192 + PL_RELAY_ID_HEX + PL_RELAY_TOPIC_HEX + m->msg_json + att_json;
    char *s = pl__rs_text_alloc(cap), *p = s;
    if (!s) return NULL;
    char subid[PL_RELAY_ID_HEX + 1];
    pl__relay_subscription_id(subid, m->rec.topic, d->c->client);
    p += sprintf(p,
                 "{\"id\":%lld,\"jsonrpc\":\"2.0\",\"method\":\"irn_subscription\",\"params\":"
                 "{\"id\":\"%s\",\"data\":{\"topic\":\"%s\",\"message\":",
                 (long long)d->push_id, subid, m->rec.topic);
    if (m->msg_json == m->rec.message_len + 2) { /* nothing to escape (base64) */
        *p = '"';
        memcpy(p + 1, m->rec.message, m->rec.message_len);
        p[m->msg_json - 1] = '"';
        p += m->msg_json;
    } else {
        p = pl__rs_json_escape(p, m->rec.message, m->rec.message_len);
    }
    p += sprintf(p, ",\"publishedAt\":%lld,\"tag\":%lld", (long long)m->rec.published_at_ms,
                 (long long)m->rec.tag);
    if (m->rec.attestation) {
        memcpy(p, ",\"attestation\":", 15);
        p = pl__rs_json_escape(p + 15, m->rec.attestation, att);
    }
    memcpy(p, "}}}", 3);
    p += 3;
    (void)c;
    *n = (size_t)(p - s);
    return s;
}

/* Send d as an irn_subscription request and start its ack timer; d goes
 * (back) in flight. */
static pl_err push(pl__relay_core *c, delivery *d, int64_t now_ms) {
    d->push_id = c->next_push_id++;
    d->deadline = now_ms + c->lim.ack_timeout_ms;
    d->attempts++;
    dl_append(&d->c->inflight, d);
    g_append(c, d);
    d->m->inflight++;
    size_t len = 0;
    char *text = push_text(c, d, &len);
    if (!text) {
        d->bytes = d->m->wire; /* stays in flight: the timer re-pushes it */
        d->c->inflight_bytes += d->bytes;
        return PL_ERR_NOMEM;
    }
    c->st.delivered++;
    pl_err e = pl__rs_send_text(c, d->c, text, len);
    d->bytes = len;
    d->c->inflight_bytes += d->bytes;
    return e;
}

/* The frame of a push of m, about (before it is built). */
static size_t push_size(const rmsg *m) {
    return m->wire + 2 * PL_RELAY_ID_HEX + 96;
}

/* Whether k may have one more push of m in flight now. */
static bool window_open(const pl__relay_core *c, const conn *k, const rmsg *m) {
    if (k->closing) return false;
    if (!k->inflight.n) return true; /* progress, whatever the budgets */
    size_t sz = push_size(m);
    return k->inflight.n < c->lim.max_inflight_per_conn &&
           k->inflight_bytes + sz <= c->lim.max_inflight_bytes_per_conn &&
           pl__rs_room_bulk(c, sz + pl__rs_delivery_cost());
}

void pl__rs_pump(pl__relay_core *c, conn *k, int64_t now_ms) {
    while (k->ready_head && window_open(c, k, k->ready_head->next)) {
        sub *s = k->ready_head;
        rmsg *m = s->next;
        /* Round robin: the subscription goes to the back while it still
         * has messages to get. */
        pl__rs_ready_remove(s);
        s->next = pl__rs_owed_from(k, m->next);
        if (s->next) pl__rs_ready_add(s);
        delivery *d = calloc(1, sizeof *d);
        if (!d) {
            c->st.dropped++; /* still in the mailbox: a re-subscribe gets it */
            continue;
        }
        pl__rs_charge(c, pl__rs_delivery_cost());
        d->m = m;
        d->c = k;
        m->refs++;
        push(c, d, now_ms);
    }
}

void pl__rs_fan_out(pl__relay_core *c, topic *t, rmsg *m, int64_t now_ms) {
    for (size_t i = 0; i < t->nsubs; i++) {
        sub *s = t->subs[i];
        if (s->next || pl__rs_is_own(s->k, m)) continue; /* it gets there in order */
        s->next = m;
        pl__rs_ready_add(s);
        pl__rs_pump(c, s->k, now_ms);
    }
}

void pl__rs_on_ack(pl__relay_core *c, conn *k, int64_t id, int64_t now_ms) {
    for (delivery *d = k->inflight.head; d; d = d->cnext) {
        if (d->push_id != id) continue;
        inflight_remove(c, d);
        d->m->acked = true;
        delivery_free(c, d);
        c->st.acked++;
        pl__rs_pump(c, k, now_ms);
        return;
    }
    /* Unknown id: a late ack for a push that was already re-sent, or noise. */
}

/* A delivery still makes sense: message alive, connection still subscribed. */
static bool delivery_wanted(const pl__relay_core *c, const delivery *d) {
    return d->m->t && pl__rs_sub_find(c, d->c, d->m->t);
}

void pl__rs_repush(pl__relay_core *c, int64_t now_ms) {
    while (c->g_head && c->g_head->deadline <= now_ms) {
        delivery *d = c->g_head;
        conn *k = d->c;
        inflight_remove(c, d);
        if (!delivery_wanted(c, d)) {
            delivery_free(c, d);
        } else if (k->unsent) {
            /* The client has not even read what was sent: sending it again
             * would only grow its queue. The same push waits longer (its
             * id stays valid). */
            d->deadline = now_ms + c->lim.ack_timeout_ms;
            dl_append(&k->inflight, d);
            g_append(c, d);
            k->inflight_bytes += d->bytes;
            d->m->inflight++;
            continue;
        } else if (d->attempts >= c->lim.max_push_attempts) {
            c->st.dropped++;
            delivery_free(c, d);
        } else {
            c->st.repushed++;
            push(c, d, now_ms);
        }
        pl__rs_pump(c, k, now_ms);
    }
}

int64_t pl__rs_deliveries_deadline(const pl__relay_core *c) {
    return c->g_head ? c->g_head->deadline : INT64_MAX;
}

void pl__rs_deliveries_drop(pl__relay_core *c, conn *k) {
    while (k->inflight.head) {
        delivery *d = k->inflight.head;
        inflight_remove(c, d);
        delivery_free(c, d);
    }
}
