/* SPDX-License-Identifier: Apache-2.0 */
/* The in-memory loopback transport: see include/pairlink/loopback.h. No
 * I/O: deliveries are deadlines of one driver task. */
#include "pairlink/loopback.h"

#include "core/internal.h"
#include "pairlink/driver.h"

#include <stdlib.h>
#include <string.h>

#define DEF_TTL_S 86400u
#define DEF_MAX_MESSAGE ((size_t)1 << 20)
#define DEF_REORDER_MS 10
#define NAME_MAX_LEN 63

/* A message as the hub keeps it: shared by its deliveries and the mailbox. */
typedef struct lb_msg {
    unsigned refs;
    struct lb_msg *next; /* mailbox, oldest first */
    uint64_t from;       /* endpoint id; 0: injected */
    char topic[PL_TRANSPORT_TOPIC_MAX + 1];
    uint8_t *data;
    size_t len;
    pl_err err;
    int64_t published_at;
    int64_t expires;
} lb_msg;

typedef struct lb_delivery {
    struct lb_delivery *next;
    int64_t at;
    uint64_t seq; /* keeps equal times in publish order */
    uint64_t to;  /* endpoint id: an endpoint closed meanwhile is skipped */
    lb_msg *m;
} lb_delivery;

/* A publish made while offline, sent when back online. */
typedef struct lb_out {
    struct lb_out *next;
    lb_msg *m;
    pl_publish_opts opts; /* ext dropped: only read during the publish */
} lb_out;

typedef struct lb_ep {
    pl_transport t; /* first: the handle users hold */
    pl_loopback_hub *h;
    struct lb_ep *next;
    uint64_t id;
    char name[NAME_MAX_LEN + 1];
    char **topics;
    size_t ntopics, cap;
    bool online;
    bool deaf;
    pl_transport_state state;
    pl_err err;
    bool report; /* a state change to tell from the driver */
    lb_out *out_head, *out_tail;
    size_t pending;
    pl_driver_call done_call;
    void (*done)(pl_transport *t);
} lb_ep;

struct pl_loopback_hub {
    pl_driver *d;
    pl_driver_task task;
    pl_loopback_config cfg;
    pl_loopback_faults faults;
    uint64_t rng;
    lb_ep *eps;
    uint64_t next_id, next_seq;
    lb_msg *mail_head, *mail_tail;
    lb_delivery *queue; /* sorted by (at, seq) */
    size_t in_flight;
    bool hold;
    unsigned drop_next, dup_next;
    pl_loopback_tap_fn tap;
    void *tap_ud;
    pl_loopback_stats st;
};

static const pl_transport_ops lb_ops;

static lb_ep *ep_of(pl_transport *t) {
    PL_REQUIRE(t && t->ops == &lb_ops);
    return (lb_ep *)t;
}

/* splitmix64: small, seeded, good enough for fault injection. */
static uint64_t rnd(pl_loopback_hub *h) {
    uint64_t z = (h->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static bool chance(pl_loopback_hub *h, uint32_t permille) {
    return permille > 0 && rnd(h) % 1000 < permille;
}

static void msg_unref(lb_msg *m) {
    if (m && --m->refs == 0) {
        free(m->data);
        free(m);
    }
}

static lb_ep *ep_find(pl_loopback_hub *h, uint64_t id) {
    for (lb_ep *e = h->eps; e; e = e->next)
        if (e->id == id) return e;
    return NULL;
}

static bool ep_subscribed(const lb_ep *e, const char *topic) {
    for (size_t i = 0; i < e->ntopics; i++)
        if (!strcmp(e->topics[i], topic)) return true;
    return false;
}

static void set_state(lb_ep *e, pl_transport_state s, pl_err err) {
    e->state = s;
    e->err = err;
    e->report = true;
}

/* ---- deliveries ---- */

static void queue_insert(pl_loopback_hub *h, lb_delivery *x) {
    lb_delivery **pp = &h->queue;
    while (*pp && ((*pp)->at < x->at || ((*pp)->at == x->at && (*pp)->seq < x->seq)))
        pp = &(*pp)->next;
    x->next = *pp;
    *pp = x;
    h->in_flight++;
}

static void schedule_one(pl_loopback_hub *h, lb_ep *to, lb_msg *m, int64_t extra) {
    lb_delivery *x = calloc(1, sizeof *x);
    if (!x) return; /* a lost message: what a network does too */
    const pl_loopback_faults *f = &h->faults;
    int64_t delay = f->delay_min_ms;
    if (f->delay_max_ms > f->delay_min_ms)
        delay += (int64_t)(rnd(h) % (uint64_t)(f->delay_max_ms - f->delay_min_ms + 1));
    if (chance(h, f->reorder_permille)) delay += f->reorder_ms ? f->reorder_ms : DEF_REORDER_MS;
    x->at = pl_driver_now(h->d) + delay + extra;
    x->seq = h->next_seq++;
    x->to = to->id;
    x->m = m;
    m->refs++;
    queue_insert(h, x);
}

/* Deliveries of m to endpoint `to`, with the faults applied. */
static void schedule(pl_loopback_hub *h, lb_ep *to, lb_msg *m, bool forced_dup) {
    if (chance(h, h->faults.drop_permille)) {
        h->st.dropped++;
        return;
    }
    schedule_one(h, to, m, 0);
    if (forced_dup || chance(h, h->faults.duplicate_permille)) {
        h->st.duplicated++;
        schedule_one(h, to, m, 0);
    }
}

static bool wants(const pl_loopback_hub *h, const lb_ep *e, const lb_msg *m) {
    return e->online && e->state != PL_TRANSPORT_CLOSED && (h->cfg.echo || e->id != m->from) &&
           ep_subscribed(e, m->topic);
}

static void mailbox_purge(pl_loopback_hub *h) {
    int64_t now = pl_driver_now(h->d);
    while (h->mail_head && h->mail_head->expires <= now) {
        lb_msg *m = h->mail_head;
        h->mail_head = m->next;
        if (!h->mail_head) h->mail_tail = NULL;
        msg_unref(m);
    }
}

/* What a subscriber that just arrived (or came back) gets from the mailbox. */
static void mailbox_replay(pl_loopback_hub *h, lb_ep *e, const char *only_topic) {
    if (!h->cfg.mailbox) return;
    mailbox_purge(h);
    for (lb_msg *m = h->mail_head; m; m = m->next) {
        if (only_topic && strcmp(m->topic, only_topic)) continue;
        if (wants(h, e, m)) schedule(h, e, m, false);
    }
}

/* The hub takes a message: mailbox, then every subscriber. */
static void hub_take(pl_loopback_hub *h, lb_msg *m, uint32_t ttl_s) {
    bool drop = false, dup = false;
    if (h->drop_next) {
        h->drop_next--;
        drop = true;
    } else if (h->dup_next) {
        h->dup_next--;
        dup = true;
    }
    h->st.published++;
    if (drop) {
        h->st.dropped++;
        return;
    }
    if (h->cfg.mailbox) {
        uint32_t ttl = ttl_s ? ttl_s : (h->cfg.default_ttl_s ? h->cfg.default_ttl_s : DEF_TTL_S);
        m->expires = pl_driver_now(h->d) + (int64_t)ttl * 1000;
        m->refs++;
        /* Kept in arrival order; expiry is checked from the head, which is
         * close enough for a test hub (ttls differ rarely). */
        if (h->mail_tail)
            h->mail_tail->next = m;
        else
            h->mail_head = m;
        h->mail_tail = m;
    }
    for (lb_ep *e = h->eps; e; e = e->next)
        if (wants(h, e, m)) schedule(h, e, m, dup);
}

static lb_msg *msg_new(const char *topic, const uint8_t *data, size_t len, uint64_t from) {
    lb_msg *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->refs = 1;
    m->from = from;
    snprintf(m->topic, sizeof m->topic, "%s", topic);
    if (len) {
        m->data = malloc(len);
        if (!m->data) {
            free(m);
            return NULL;
        }
        memcpy(m->data, data, len);
    }
    m->len = len;
    return m;
}

/* ---- the hub's driver task ---- */

static int64_t hub_deadline(pl_driver_task *task) {
    pl_loopback_hub *h = task->data;
    if (h->hold || !h->queue) return INT64_MAX;
    return h->queue->at;
}

static void hub_before_wait(pl_driver_task *task, int64_t now_ms) {
    (void)now_ms;
    pl_loopback_hub *h = task->data;
    for (lb_ep *e = h->eps; e; e = e->next) {
        if (e->state == PL_TRANSPORT_CONNECTING && e->online)
            set_state(e, PL_TRANSPORT_CONNECTED, PL_OK);
    }
    /* Reports may close endpoints: restart the walk after each one. */
    for (bool again = true; again;) {
        again = false;
        for (lb_ep *e = h->eps; e; e = e->next) {
            if (!e->report) continue;
            e->report = false;
            pl_transport_report_state(&e->t, e->state, e->err);
            again = true;
            break;
        }
    }
}

/* Hand one delivery over (it is off the queue); true if a handler got it. */
static bool deliver_one(pl_loopback_hub *h, lb_delivery *x) {
    lb_ep *e = ep_find(h, x->to);
    lb_msg *m = x->m;
    free(x);
    bool got = false;
    /* Checked again now: the endpoint may have unsubscribed or gone. */
    if (e && e->deaf) {
        h->st.dropped++;
    } else if (e && e->online && ep_subscribed(e, m->topic)) {
        pl_delivery_info info = {.published_at_ms = m->published_at, .err = m->err};
        h->st.delivered++;
        got = true;
        pl_transport_deliver(&e->t, m->topic, m->err ? NULL : m->data, m->err ? 0 : m->len, &info);
    }
    msg_unref(m);
    return got;
}

static void hub_on_timer(pl_driver_task *task, int64_t now_ms) {
    pl_loopback_hub *h = task->data;
    while (!h->hold && h->queue && h->queue->at <= now_ms) {
        lb_delivery *x = h->queue;
        h->queue = x->next;
        h->in_flight--;
        deliver_one(h, x);
    }
}

size_t pl_loopback_hub_flush(pl_loopback_hub *h) {
    PL_REQUIRE(h);
    lb_delivery *batch = h->queue;
    h->queue = NULL;
    h->in_flight = 0;
    size_t n = 0;
    while (batch) {
        lb_delivery *x = batch;
        batch = x->next;
        n += deliver_one(h, x);
    }
    return n;
}

/* ---- the transport operations ---- */

static pl_err lb_publish(pl_transport *t, const char *topic, const uint8_t *data, size_t len,
                         const pl_publish_opts *opts) {
    lb_ep *e = ep_of(t);
    pl_loopback_hub *h = e->h;
    if (e->state == PL_TRANSPORT_CLOSED) return PL_ERR_STATE;
    size_t max = h->cfg.max_message ? h->cfg.max_message : DEF_MAX_MESSAGE;
    if (len > max) return PL_ERR_TOO_LARGE;
    lb_msg *m = msg_new(topic, data, len, e->id);
    if (!m) return PL_ERR_NOMEM;
    m->published_at = pl_driver_now(h->d);
    if (h->tap) h->tap(h->tap_ud, e->name, topic, data, len, opts);
    /* Offline, or held (group commit): sent when back online / released. */
    if (!e->online || pl_transport_held(t)) {
        lb_out *o = calloc(1, sizeof *o);
        if (!o) {
            msg_unref(m);
            return PL_ERR_NOMEM;
        }
        o->m = m;
        o->opts = *opts;
        o->opts.ext = NULL;
        if (e->out_tail)
            e->out_tail->next = o;
        else
            e->out_head = o;
        e->out_tail = o;
        e->pending++;
        return PL_OK;
    }
    hub_take(h, m, opts->ttl_s);
    msg_unref(m);
    return PL_OK;
}

static pl_err lb_subscribe(pl_transport *t, const char *topic) {
    lb_ep *e = ep_of(t);
    if (ep_subscribed(e, topic)) return PL_OK;
    if (e->ntopics == e->cap) {
        size_t nc = e->cap ? 2 * e->cap : 8;
        char **nt = realloc(e->topics, nc * sizeof *nt);
        if (!nt) return PL_ERR_NOMEM;
        e->topics = nt;
        e->cap = nc;
    }
    char *copy = strdup(topic);
    if (!copy) return PL_ERR_NOMEM;
    e->topics[e->ntopics++] = copy;
    mailbox_replay(e->h, e, topic);
    return PL_OK;
}

static pl_err lb_unsubscribe(pl_transport *t, const char *topic) {
    lb_ep *e = ep_of(t);
    for (size_t i = 0; i < e->ntopics; i++) {
        if (strcmp(e->topics[i], topic)) continue;
        free(e->topics[i]);
        e->topics[i] = e->topics[--e->ntopics];
        break;
    }
    return PL_OK;
}

static pl_transport_state lb_state(const pl_transport *t, pl_err *err) {
    const lb_ep *e = (const lb_ep *)t;
    *err = e->err;
    return e->state;
}

static size_t lb_pending(const pl_transport *t) {
    return ((const lb_ep *)t)->pending;
}

static void out_clear(lb_ep *e) {
    while (e->out_head) {
        lb_out *o = e->out_head;
        e->out_head = o->next;
        msg_unref(o->m);
        free(o);
    }
    e->out_tail = NULL;
    e->pending = 0;
}

/* Hand what waits to the hub, in order. */
static void out_flush(lb_ep *e) {
    while (e->out_head) {
        lb_out *o = e->out_head;
        e->out_head = o->next;
        if (!e->out_head) e->out_tail = NULL;
        e->pending--;
        hub_take(e->h, o->m, o->opts.ttl_s);
        msg_unref(o->m);
        free(o);
    }
}

static void lb_release(pl_transport *t) {
    lb_ep *e = ep_of(t);
    if (e->online && e->state != PL_TRANSPORT_CLOSED) out_flush(e);
}

static void lb_done(pl_driver_call *c) {
    lb_ep *e = c->data;
    e->done(&e->t);
}

static void lb_close(pl_transport *t, void (*done)(pl_transport *t)) {
    lb_ep *e = ep_of(t);
    pl_loopback_hub *h = e->h;
    for (lb_ep **pp = &h->eps; *pp; pp = &(*pp)->next) {
        if (*pp == e) {
            *pp = e->next;
            break;
        }
    }
    out_clear(e);
    e->done = done;
    e->done_call.fn = lb_done;
    e->done_call.data = e;
    pl_driver_defer(h->d, &e->done_call);
}

static void lb_free(pl_transport *t) {
    lb_ep *e = (lb_ep *)t;
    for (size_t i = 0; i < e->ntopics; i++)
        free(e->topics[i]);
    free(e->topics);
    free(e);
}

static const pl_transport_ops lb_ops = {
    .name = "loopback",
    .publish = lb_publish,
    .subscribe = lb_subscribe,
    .unsubscribe = lb_unsubscribe,
    .state = lb_state,
    .pending = lb_pending,
    .close = lb_close,
    .free = lb_free,
    .release = lb_release,
};

/* ---- public API ---- */

pl_err pl_loopback_hub_new(pl_loopback_hub **out, pl_driver *d, const pl_loopback_config *cfg) {
    PL_REQUIRE(out && d);
    *out = NULL;
    pl_loopback_hub *h = calloc(1, sizeof *h);
    if (!h) return PL_ERR_NOMEM;
    h->d = d;
    if (cfg) h->cfg = *cfg;
    h->rng = h->cfg.seed;
    h->next_id = 1;
    h->task.data = h;
    h->task.next_deadline = hub_deadline;
    h->task.on_timer = hub_on_timer;
    h->task.before_wait = hub_before_wait;
    pl_driver_start(d, &h->task);
    *out = h;
    return PL_OK;
}

void pl_loopback_hub_free(pl_loopback_hub *h) {
    if (!h) return;
    PL_REQUIRE(!h->eps); /* close every endpoint first */
    pl_driver_stop(&h->task);
    while (h->queue) {
        lb_delivery *x = h->queue;
        h->queue = x->next;
        msg_unref(x->m);
        free(x);
    }
    while (h->mail_head) {
        lb_msg *m = h->mail_head;
        h->mail_head = m->next;
        msg_unref(m);
    }
    free(h);
}

pl_err pl_loopback_new(pl_transport **out, pl_loopback_hub *h, const char *name,
                       const pl_transport_handler *handler) {
    PL_REQUIRE(out && h && name);
    *out = NULL;
    if (strlen(name) > NAME_MAX_LEN) return PL_ERR_TOO_LARGE;
    lb_ep *e = calloc(1, sizeof *e);
    if (!e) return PL_ERR_NOMEM;
    pl_transport_init(&e->t, &lb_ops, h->d, handler);
    e->h = h;
    e->id = h->next_id++;
    snprintf(e->name, sizeof e->name, "%s", name);
    e->online = true;
    e->state = PL_TRANSPORT_CONNECTING;
    e->next = h->eps;
    h->eps = e;
    *out = &e->t;
    return PL_OK;
}

void pl_loopback_set_online(pl_transport *t, bool online) {
    lb_ep *e = ep_of(t);
    if (e->online == online || e->state == PL_TRANSPORT_CLOSED) return;
    e->online = online;
    if (!online) {
        set_state(e, PL_TRANSPORT_RECONNECTING, PL_ERR_DISCONNECTED);
        return;
    }
    set_state(e, PL_TRANSPORT_CONNECTED, PL_OK);
    if (!pl_transport_held(t)) out_flush(e);
    mailbox_replay(e->h, e, NULL);
}

void pl_loopback_set_deaf(pl_transport *t, bool deaf) {
    ep_of(t)->deaf = deaf;
}

size_t pl_loopback_subscriptions(const pl_transport *t) {
    return ep_of((pl_transport *)t)->ntopics;
}

bool pl_loopback_is_subscribed(const pl_transport *t, const char *topic) {
    PL_REQUIRE(topic);
    return ep_subscribed(ep_of((pl_transport *)t), topic);
}

void pl_loopback_fail(pl_transport *t, pl_err err) {
    lb_ep *e = ep_of(t);
    e->online = false;
    set_state(e, PL_TRANSPORT_CLOSED, err);
}

void pl_loopback_hub_set_faults(pl_loopback_hub *h, const pl_loopback_faults *f) {
    PL_REQUIRE(h && f && f->delay_min_ms >= 0 && f->delay_max_ms >= 0 && f->reorder_ms >= 0);
    h->faults = *f;
}

void pl_loopback_hub_drop_next(pl_loopback_hub *h, unsigned n) {
    PL_REQUIRE(h);
    h->drop_next = n;
}

void pl_loopback_hub_duplicate_next(pl_loopback_hub *h, unsigned n) {
    PL_REQUIRE(h);
    h->dup_next = n;
}

void pl_loopback_hub_hold(pl_loopback_hub *h, bool hold) {
    PL_REQUIRE(h);
    h->hold = hold;
}

void pl_loopback_hub_release_reversed(pl_loopback_hub *h) {
    PL_REQUIRE(h);
    lb_delivery *rev = NULL;
    while (h->queue) {
        lb_delivery *x = h->queue;
        h->queue = x->next;
        x->next = rev;
        rev = x;
    }
    int64_t now = pl_driver_now(h->d);
    h->in_flight = 0;
    while (rev) {
        lb_delivery *x = rev;
        rev = x->next;
        x->at = now;
        x->seq = h->next_seq++;
        queue_insert(h, x);
    }
    h->hold = false;
}

void pl_loopback_hub_clear_mailbox(pl_loopback_hub *h) {
    PL_REQUIRE(h);
    while (h->mail_head) {
        lb_msg *m = h->mail_head;
        h->mail_head = m->next;
        msg_unref(m);
    }
    h->mail_tail = NULL;
}

size_t pl_loopback_hub_in_flight(const pl_loopback_hub *h) {
    PL_REQUIRE(h);
    return h->in_flight;
}

void pl_loopback_hub_set_tap(pl_loopback_hub *h, pl_loopback_tap_fn fn, void *ud) {
    PL_REQUIRE(h);
    h->tap = fn;
    h->tap_ud = ud;
}

pl_err pl_loopback_hub_inject(pl_loopback_hub *h, const char *topic, const uint8_t *data,
                              size_t len, const pl_delivery_info *info) {
    PL_REQUIRE(h && topic && (data || len == 0 || (info && info->err)));
    if (!pl_transport_topic_valid(topic)) return PL_ERR_INVALID_ARG;
    bool bad = info && info->err != PL_OK;
    size_t max = h->cfg.max_message ? h->cfg.max_message : DEF_MAX_MESSAGE;
    if (!bad && len > max) return PL_ERR_TOO_LARGE;
    lb_msg *m = msg_new(topic, bad ? NULL : data, bad ? 0 : len, 0);
    if (!m) return PL_ERR_NOMEM;
    m->err = bad ? info->err : PL_OK;
    m->published_at = info && info->published_at_ms ? info->published_at_ms : pl_driver_now(h->d);
    hub_take(h, m, 0);
    msg_unref(m);
    return PL_OK;
}

void pl_loopback_hub_stats(const pl_loopback_hub *h, pl_loopback_stats *out) {
    PL_REQUIRE(h && out);
    *out = h->st;
}
