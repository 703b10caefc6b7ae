/* SPDX-License-Identifier: Apache-2.0 */
/* The transport interface (transport.h), the driver (driver.h) and the
 * loopback transport (loopback.h): deadlines in order on a virtual clock,
 * the same driver on a libuv loop, deferred calls, close counting, the
 * generic checks and flush-then-close, and every fault the hub can make. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "pairlink/driver.h"
#include "pairlink/loopback.h"
#include "pairlink/transport.h"
#include "support/support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T0 INT64_C(1700000000000)

/* ======================================================================== */
/* The driver                                                               */
/* ======================================================================== */

typedef struct tk {
    pl_driver_task task;
    int64_t deadline;
    int64_t fired[16];
    int nfired;
    int waits;
    int64_t every; /* > 0: re-arm that far after each firing */
    char log;
} tk;

static char order[64];
static size_t norder;

static int64_t tk_deadline(pl_driver_task *t) {
    return ((tk *)t->data)->deadline;
}

static void tk_timer(pl_driver_task *t, int64_t now) {
    tk *k = t->data;
    assert_true(now >= k->deadline);
    if (k->nfired < 16) k->fired[k->nfired] = now;
    k->nfired++;
    if (norder < sizeof order - 1) order[norder++] = k->log;
    k->deadline = k->every ? now + k->every : INT64_MAX;
}

static void tk_wait(pl_driver_task *t, int64_t now) {
    (void)now;
    ((tk *)t->data)->waits++;
}

static void tk_init(tk *k, char log, int64_t deadline) {
    memset(k, 0, sizeof *k);
    k->log = log;
    k->deadline = deadline;
    k->task.data = k;
    k->task.next_deadline = tk_deadline;
    k->task.on_timer = tk_timer;
    k->task.before_wait = tk_wait;
}

static void test_virtual_driver_order(void **state) {
    (void)state;
    pl_driver *d;
    assert_int_equal(pl_driver_new_virtual(&d, T0), PL_OK);
    assert_null(pl_driver_loop(d));
    assert_int_equal(pl_driver_now(d), T0);
    assert_int_equal(pl_driver_next_deadline(d), INT64_MAX);
    tk a, b, c;
    tk_init(&a, 'a', T0 + 300);
    tk_init(&b, 'b', T0 + 100);
    tk_init(&c, 'c', T0 + 200);
    c.every = 150;
    pl_driver_start(d, &a.task);
    pl_driver_start(d, &b.task);
    pl_driver_start(d, &c.task);
    norder = 0;
    /* the deadlines within are run in order, each at its own time */
    pl_driver_advance(d, 400);
    order[norder] = 0;
    assert_string_equal(order, "bcac");
    assert_int_equal(b.fired[0], T0 + 100);
    assert_int_equal(c.fired[0], T0 + 200);
    assert_int_equal(a.fired[0], T0 + 300);
    assert_int_equal(c.fired[1], T0 + 350);
    assert_int_equal(pl_driver_now(d), T0 + 400);
    assert_true(a.waits > 0 && b.waits > 0);
    assert_int_equal(pl_driver_next_deadline(d), T0 + 500);
    /* a task may stop itself or another; stopping twice is harmless */
    pl_driver_stop(&c.task);
    pl_driver_stop(&c.task);
    pl_driver_advance(d, 1000);
    assert_int_equal(c.nfired, 2);
    /* a deadline in the past runs at the next run, at the current time */
    a.deadline = T0;
    pl_driver_run(d);
    assert_int_equal(a.nfired, 2);
    assert_int_equal(a.fired[1], T0 + 1400);
    pl_driver_stop(&a.task);
    pl_driver_stop(&b.task);
    pl_driver_free(d);
    pl_driver_free(NULL);
}

typedef struct callrec {
    pl_driver_call call;
    int ran;
    pl_driver *d;
    pl_driver_call *requeue; /* queued from inside the call */
} callrec;

static void call_fn(pl_driver_call *c) {
    callrec *r = c->data;
    r->ran++;
    if (r->requeue) {
        pl_driver_defer(r->d, r->requeue);
        r->requeue = NULL;
    }
}

static void test_deferred_calls(void **state) {
    (void)state;
    pl_driver *d;
    assert_int_equal(pl_driver_new_virtual(&d, T0), PL_OK);
    callrec a = {.call = {.fn = call_fn}}, b = {.call = {.fn = call_fn}},
            c = {.call = {.fn = call_fn}};
    a.call.data = &a;
    b.call.data = &b;
    c.call.data = &c;
    a.d = d;
    a.requeue = &c.call;
    pl_driver_defer(d, &a.call);
    pl_driver_defer(d, &a.call); /* already queued: once */
    pl_driver_defer(d, &b.call);
    pl_driver_cancel(d, &b.call);
    pl_driver_cancel(d, &b.call);               /* not queued: no-op */
    assert_int_equal(a.ran + b.ran + c.ran, 0); /* never inside the call */
    pl_driver_run(d);
    assert_int_equal(a.ran, 1);
    assert_int_equal(b.ran, 0);
    assert_int_equal(c.ran, 1); /* queued by a, run in the same run */
    /* cancel the last of several */
    pl_driver_defer(d, &a.call);
    pl_driver_defer(d, &b.call);
    pl_driver_cancel(d, &b.call);
    pl_driver_defer(d, &c.call);
    pl_driver_run(d);
    assert_int_equal(a.ran, 2);
    assert_int_equal(b.ran, 0);
    assert_int_equal(c.ran, 2);
    pl_driver_free(d);
}

/* ---- on a libuv loop ---- */

typedef struct loopfx {
    uv_loop_t loop;
    pl_driver *d;
    bool closed;
    int handle_closes;
} loopfx;

static void tick_cb(uv_timer_t *t) {
    (void)t;
}

typedef bool (*cond_fn)(void *);

static bool run_until(uv_loop_t *loop, cond_fn cond, void *arg, uint64_t timeout_ms) {
    uv_timer_t guard;
    uv_timer_init(loop, &guard);
    uv_timer_start(&guard, tick_cb, 10, 10);
    uint64_t end = uv_now(loop) + timeout_ms;
    bool ok = cond(arg);
    while (!ok && uv_now(loop) < end) {
        uv_run(loop, UV_RUN_ONCE);
        ok = cond(arg);
    }
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return ok;
}

static bool tk_fired(void *arg) {
    return ((tk *)arg)->nfired > 0;
}
static bool tk_fired_twice(void *arg) {
    return ((tk *)arg)->nfired > 1;
}
static bool call_ran(void *arg) {
    return ((callrec *)arg)->ran > 0;
}
static bool fx_closed(void *arg) {
    return ((loopfx *)arg)->closed;
}

static void on_driver_closed(void *ud) {
    loopfx *f = ud;
    /* every counted handle finished closing first */
    assert_int_equal(f->handle_closes, 0);
    f->closed = true;
}

static void test_loop_driver(void **state) {
    (void)state;
    loopfx f;
    memset(&f, 0, sizeof f);
    uv_loop_init(&f.loop);
    /* a driver that never ran anything is freed at once */
    assert_int_equal(pl_driver_new(&f.d, &f.loop), PL_OK);
    pl_driver_free(f.d);
    assert_int_equal(uv_loop_close(&f.loop), 0);

    uv_loop_init(&f.loop);
    assert_int_equal(pl_driver_new(&f.d, &f.loop), PL_OK);
    assert_ptr_equal(pl_driver_loop(f.d), &f.loop);
    int64_t start = pl_driver_now(f.d);
    assert_true(start >= pl_wall_clock_ms() - 1000 && start <= pl_wall_clock_ms());
    tk a;
    tk_init(&a, 'a', start + 30);
    a.every = 20;
    pl_driver_start(f.d, &a.task);
    assert_true(run_until(&f.loop, tk_fired, &a, 5000));
    assert_true(a.fired[0] >= start + 30);
    assert_true(run_until(&f.loop, tk_fired_twice, &a, 5000));
    assert_true(a.fired[1] >= a.fired[0] + 20);
    assert_true(a.waits > 0);
    pl_driver_stop(&a.task);
    /* a deferred call runs from the loop */
    callrec c = {.call = {.fn = call_fn}};
    c.call.data = &c;
    pl_driver_defer(f.d, &c.call);
    assert_int_equal(c.ran, 0);
    assert_true(run_until(&f.loop, call_ran, &c, 5000));
    /* close: a counted handle of the application's, then the driver */
    uv_timer_t extra;
    uv_timer_init(&f.loop, &extra);
    uv_timer_start(&extra, tick_cb, 100000, 0);
    pl_driver_close_handle(f.d, (uv_handle_t *)&extra);
    pl_driver_close(f.d, on_driver_closed, &f);
    assert_true(run_until(&f.loop, fx_closed, &f, 5000));
    uv_run(&f.loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&f.loop), 0);

    /* closing a driver that never started anything still completes */
    uv_loop_init(&f.loop);
    f.closed = false;
    assert_int_equal(pl_driver_new(&f.d, &f.loop), PL_OK);
    pl_driver_close(f.d, on_driver_closed, &f);
    assert_false(f.closed); /* from the loop, not inside the call */
    assert_true(run_until(&f.loop, fx_closed, &f, 5000));
    assert_int_equal(uv_loop_close(&f.loop), 0);
}

/* ======================================================================== */
/* The loopback transport and the generic half                              */
/* ======================================================================== */

typedef struct ep {
    const char *name;
    pl_transport *t;
    int msgs;
    char last_topic[PL_TRANSPORT_TOPIC_MAX + 1];
    char last[256];
    size_t last_len;
    pl_err last_err;
    int64_t last_published;
    pl_transport_state state;
    pl_err state_err;
    int states;
    bool closed;
    char order[64];
    size_t norder;
} ep;

static void on_msg(void *ud, pl_transport *t, const char *topic, const uint8_t *data, size_t len,
                   const pl_delivery_info *info) {
    ep *e = ud;
    assert_ptr_equal(t, e->t);
    e->msgs++;
    snprintf(e->last_topic, sizeof e->last_topic, "%s", topic);
    assert_true(len < sizeof e->last);
    if (len) memcpy(e->last, data, len);
    e->last[len] = 0;
    e->last_len = len;
    e->last_err = info->err;
    e->last_published = info->published_at_ms;
    if (len == 1 && e->norder < sizeof e->order - 1) e->order[e->norder++] = (char)data[0];
}

static void on_state(void *ud, pl_transport *t, pl_transport_state s, pl_err err) {
    (void)t;
    ep *e = ud;
    e->state = s;
    e->state_err = err;
    e->states++;
}

static void on_closed(void *ud) {
    ((ep *)ud)->closed = true;
}

typedef struct net {
    pl_driver *d;
    pl_loopback_hub *h;
} net;

static void net_open(net *n, const pl_loopback_config *cfg) {
    assert_int_equal(pl_driver_new_virtual(&n->d, T0), PL_OK);
    assert_int_equal(pl_loopback_hub_new(&n->h, n->d, cfg), PL_OK);
}

static void ep_open(net *n, ep *e, const char *name) {
    memset(e, 0, sizeof *e);
    e->name = name;
    pl_transport_handler h = {on_msg, on_state, e, NULL};
    assert_int_equal(pl_loopback_new(&e->t, n->h, name, &h), PL_OK);
}

static void ep_close(net *n, ep *e) {
    if (!e->t) return;
    pl_transport_close(e->t, 0, on_closed, e);
    pl_driver_run(n->d);
    assert_true(e->closed);
    e->t = NULL;
}

static void net_close(net *n) {
    pl_driver_run(n->d);
    pl_loopback_hub_free(n->h);
    pl_driver_free(n->d);
}

static void pub(ep *e, const char *topic, const char *text) {
    assert_int_equal(pl_transport_publish(e->t, topic, (const uint8_t *)text, strlen(text), NULL),
                     PL_OK);
}

static int pub_errors;
static pl_err pub_error;
static int64_t pub_error_code;
static char pub_error_topic[64];

static void on_pub_error(void *ud, pl_transport *t, const char *topic, pl_err err, int64_t code) {
    (void)ud, (void)t;
    pub_errors++;
    pub_error = err;
    pub_error_code = code;
    snprintf(pub_error_topic, sizeof pub_error_topic, "%s", topic);
}

/* The generic half passes an implementation's publish error to the
 * handler, and stops once closing. */
static void test_publish_error_report(void **state) {
    (void)state;
    net n;
    net_open(&n, NULL);
    ep a;
    ep_open(&n, &a, "a");
    pub_errors = 0;
    pl_transport_report_publish_error(a.t, "t1", PL_ERR_RELAY, -32000); /* no callback set */
    assert_int_equal(pub_errors, 0);
    pl_transport_handler h = {on_msg, on_state, &a, on_pub_error};
    pl_transport_set_handler(a.t, &h);
    pl_transport_report_publish_error(a.t, "t1", PL_ERR_RELAY, -32000);
    assert_int_equal(pub_errors, 1);
    assert_int_equal(pub_error, PL_ERR_RELAY);
    assert_int_equal(pub_error_code, -32000);
    assert_string_equal(pub_error_topic, "t1");
    pl_transport_close(a.t, 0, on_closed, &a);
    pl_transport_report_publish_error(a.t, "t1", PL_ERR_TIMEOUT, 0);
    assert_int_equal(pub_errors, 1);
    pl_driver_run(n.d);
    assert_true(a.closed);
    net_close(&n);
}

static void test_generic_checks(void **state) {
    (void)state;
    net n;
    net_open(&n, NULL);
    ep a;
    ep_open(&n, &a, "a");
    assert_string_equal(pl_transport_name(a.t), "loopback");
    assert_ptr_equal(pl_transport_driver(a.t), n.d);
    /* topic names: 1..255 printable ASCII */
    assert_true(pl_transport_topic_valid("/pairlink/1/rv-00/proto"));
    assert_false(pl_transport_topic_valid(""));
    assert_false(pl_transport_topic_valid(NULL));
    assert_false(pl_transport_topic_valid("a b"));
    assert_false(pl_transport_topic_valid("\x7f"));
    assert_false(pl_transport_topic_valid("caf\xc3\xa9"));
    char longt[PL_TRANSPORT_TOPIC_MAX + 2];
    memset(longt, 'x', sizeof longt);
    longt[PL_TRANSPORT_TOPIC_MAX] = 0;
    assert_true(pl_transport_topic_valid(longt));
    longt[PL_TRANSPORT_TOPIC_MAX] = 'x';
    longt[PL_TRANSPORT_TOPIC_MAX + 1] = 0;
    assert_false(pl_transport_topic_valid(longt));
    assert_int_equal(pl_transport_publish(a.t, longt, (const uint8_t *)"x", 1, NULL),
                     PL_ERR_INVALID_ARG);
    assert_int_equal(pl_transport_subscribe(a.t, "a b"), PL_ERR_INVALID_ARG);
    assert_int_equal(pl_transport_unsubscribe(a.t, ""), PL_ERR_INVALID_ARG);
    assert_int_equal(pl_transport_publish(a.t, "t", NULL, 0, NULL), PL_OK); /* empty message */
    /* state: connecting, then connected from the driver (reported once) */
    pl_err err = PL_ERR_INTERNAL;
    assert_int_equal(pl_transport_get_state(a.t, &err), PL_TRANSPORT_CONNECTING);
    assert_int_equal(err, PL_OK);
    assert_int_equal(pl_transport_get_state(a.t, NULL), PL_TRANSPORT_CONNECTING);
    assert_int_equal(a.states, 0);
    pl_driver_run(n.d);
    assert_int_equal(a.states, 1);
    assert_int_equal(a.state, PL_TRANSPORT_CONNECTED);
    for (int s = PL_TRANSPORT_CONNECTING; s <= PL_TRANSPORT_CLOSED; s++)
        assert_string_not_equal(pl_transport_state_name((pl_transport_state)s), "unknown");
    assert_string_equal(pl_transport_state_name((pl_transport_state)0), "unknown");
    /* the handler can be replaced or removed */
    ep b;
    ep_open(&n, &b, "b");
    assert_int_equal(pl_transport_subscribe(b.t, "t"), PL_OK);
    pl_transport_set_handler(b.t, NULL);
    pub(&a, "t", "lost");
    pl_driver_run(n.d);
    assert_int_equal(b.msgs, 0);
    pl_transport_handler h = {on_msg, on_state, &b, NULL};
    pl_transport_set_handler(b.t, &h);
    pub(&a, "t", "kept");
    pl_driver_run(n.d);
    assert_int_equal(b.msgs, 1);
    assert_string_equal(b.last, "kept");
    assert_string_equal(b.last_topic, "t");
    assert_int_equal(b.last_published, T0);
    /* closing: every operation refused from the call on, nothing delivered */
    pl_transport_close(b.t, 0, on_closed, &b);
    assert_true(pl_transport_is_closing(b.t));
    assert_int_equal(pl_transport_publish(b.t, "t", (const uint8_t *)"x", 1, NULL), PL_ERR_STATE);
    assert_int_equal(pl_transport_subscribe(b.t, "t"), PL_ERR_STATE);
    assert_int_equal(pl_transport_unsubscribe(b.t, "t"), PL_ERR_STATE);
    pub(&a, "t", "after");
    assert_false(b.closed); /* from the driver, not inside the call */
    pl_driver_run(n.d);
    assert_true(b.closed);
    assert_int_equal(b.msgs, 1);
    ep_close(&n, &a);
    net_close(&n);
}

static void test_flush_then_close(void **state) {
    (void)state;
    net n;
    net_open(&n, NULL);
    ep a, b;
    ep_open(&n, &a, "a");
    ep_open(&n, &b, "b");
    assert_int_equal(pl_transport_subscribe(b.t, "t"), PL_OK);
    pl_driver_run(n.d);
    /* offline: the publish waits; a flush waits for it up to its limit */
    pl_loopback_set_online(a.t, false);
    pl_driver_run(n.d);
    assert_int_equal(a.state, PL_TRANSPORT_RECONNECTING);
    assert_int_equal(a.state_err, PL_ERR_DISCONNECTED);
    pub(&a, "t", "last");
    assert_int_equal(pl_transport_pending(a.t), 1);
    pl_transport_close(a.t, 5000, on_closed, &a);
    pl_driver_advance(n.d, 1000);
    assert_false(a.closed);
    /* back online within the limit: it goes out, then the close completes */
    pl_loopback_set_online(a.t, true);
    pl_driver_run(n.d);
    assert_true(a.closed);
    assert_int_equal(b.msgs, 1);
    assert_string_equal(b.last, "last");
    assert_int_equal(pl_driver_now(n.d), T0 + 1000);

    /* never back: closed at the limit, the message dropped */
    ep_open(&n, &a, "a2");
    pl_driver_run(n.d);
    pl_loopback_set_online(a.t, false);
    pub(&a, "t", "lost");
    pl_transport_close(a.t, 2000, on_closed, &a);
    pl_driver_advance(n.d, 1999);
    assert_false(a.closed);
    pl_driver_advance(n.d, 1);
    assert_true(a.closed);
    assert_int_equal(b.msgs, 1);

    /* given up for good: no wait */
    ep_open(&n, &a, "a3");
    pl_driver_run(n.d);
    pl_loopback_set_online(a.t, false);
    pub(&a, "t", "never");
    pl_loopback_fail(a.t, PL_ERR_RELAY_AUTH);
    pl_driver_run(n.d);
    assert_int_equal(a.state, PL_TRANSPORT_CLOSED);
    assert_int_equal(a.state_err, PL_ERR_RELAY_AUTH);
    assert_int_equal(pl_transport_publish(a.t, "t", (const uint8_t *)"x", 1, NULL), PL_ERR_STATE);
    pl_loopback_set_online(a.t, true); /* a failed endpoint stays down */
    assert_int_equal(pl_transport_get_state(a.t, NULL), PL_TRANSPORT_CLOSED);
    pl_transport_close(a.t, 60000, on_closed, &a);
    pl_driver_run(n.d);
    assert_true(a.closed);
    ep_close(&n, &b);
    net_close(&n);
}

static void test_loopback_basics(void **state) {
    (void)state;
    pl_loopback_config cfg = {.max_message = 8};
    net n;
    net_open(&n, &cfg);
    ep a, b, c;
    ep_open(&n, &a, "a");
    ep_open(&n, &b, "b");
    ep_open(&n, &c, "c");
    pl_transport *t;
    char longname[80];
    memset(longname, 'n', sizeof longname);
    longname[79] = 0;
    assert_int_equal(pl_loopback_new(&t, n.h, longname, NULL), PL_ERR_TOO_LARGE);
    assert_int_equal(pl_transport_subscribe(b.t, "t"), PL_OK);
    assert_int_equal(pl_transport_subscribe(b.t, "t"), PL_OK);
    assert_int_equal(pl_transport_subscribe(b.t, "u"), PL_OK);
    assert_int_equal(pl_transport_subscribe(c.t, "u"), PL_OK);
    assert_int_equal(pl_transport_subscribe(a.t, "t"), PL_OK);
    assert_int_equal(pl_loopback_subscriptions(b.t), 2);
    assert_true(pl_loopback_is_subscribed(b.t, "u"));
    assert_false(pl_loopback_is_subscribed(a.t, "u"));
    /* to every other subscriber, not back to the publisher (no echo) */
    pub(&a, "t", "1");
    pub(&a, "u", "2");
    assert_int_equal(b.msgs + c.msgs, 0); /* not inside publish */
    pl_driver_run(n.d);
    assert_int_equal(b.msgs, 2);
    assert_int_equal(c.msgs, 1);
    assert_int_equal(a.msgs, 0);
    /* the bound, in bytes */
    assert_int_equal(pl_transport_publish(a.t, "t", (const uint8_t *)"123456789", 9, NULL),
                     PL_ERR_TOO_LARGE);
    /* unsubscribed: nothing more, even for what was in flight */
    pub(&a, "u", "3");
    assert_int_equal(pl_transport_unsubscribe(b.t, "u"), PL_OK);
    assert_int_equal(pl_transport_unsubscribe(b.t, "u"), PL_OK);
    pl_driver_run(n.d);
    assert_int_equal(b.msgs, 2);
    assert_int_equal(c.msgs, 2);
    /* a deaf endpoint loses what is sent to it, still publishes */
    pl_loopback_set_deaf(c.t, true);
    pub(&a, "u", "4");
    assert_int_equal(pl_transport_subscribe(a.t, "u"), PL_OK);
    pub(&c, "u", "5");
    pl_driver_run(n.d);
    assert_int_equal(c.msgs, 2);
    assert_int_equal(a.msgs, 1);
    assert_string_equal(a.last, "5");
    pl_loopback_set_deaf(c.t, false);
    /* an undecodable arrival injected from outside */
    pl_delivery_info bad = {.err = PL_ERR_BAD_BASE64, .published_at_ms = 42};
    assert_int_equal(pl_loopback_hub_inject(n.h, "u", NULL, 0, &bad), PL_OK);
    assert_int_equal(pl_loopback_hub_inject(n.h, "u", (const uint8_t *)"x", 1, NULL), PL_OK);
    assert_int_equal(pl_loopback_hub_inject(n.h, "", (const uint8_t *)"x", 1, NULL),
                     PL_ERR_INVALID_ARG);
    assert_int_equal(pl_loopback_hub_inject(n.h, "u", (const uint8_t *)"123456789", 9, NULL),
                     PL_ERR_TOO_LARGE);
    pl_driver_run(n.d);
    assert_int_equal(c.msgs, 4);
    assert_string_equal(c.last, "x");
    assert_int_equal(a.msgs, 3);
    pl_loopback_stats st;
    pl_loopback_hub_stats(n.h, &st);
    assert_int_equal(st.published, 7);
    assert_int_equal(st.delivered, 3 + 4 + 2);
    assert_int_equal(st.dropped, 1);
    ep_close(&n, &a);
    ep_close(&n, &b);
    ep_close(&n, &c);
    net_close(&n);
}

/* Held (group commit): publishes are taken (errors at once, counted as
 * pending) but nothing leaves until the last hold is released, then in
 * order; a closed transport is released of nothing. */
static void test_loopback_hold(void **state) {
    (void)state;
    pl_loopback_config cfg = {.max_message = 8};
    net n;
    net_open(&n, &cfg);
    ep a, b;
    ep_open(&n, &a, "a");
    ep_open(&n, &b, "b");
    assert_int_equal(pl_transport_subscribe(b.t, "t"), PL_OK);
    assert_true(pl_transport_can_hold(a.t));
    assert_false(pl_transport_held(a.t));
    pl_transport_hold(a.t);
    pl_transport_hold(a.t);
    assert_true(pl_transport_held(a.t));
    pub(&a, "t", "1");
    pub(&a, "t", "2");
    assert_int_equal(pl_transport_publish(a.t, "t", (const uint8_t *)"123456789", 9, NULL),
                     PL_ERR_TOO_LARGE);
    assert_int_equal(pl_transport_pending(a.t), 2);
    pl_driver_advance(n.d, 1000);
    assert_int_equal(b.msgs, 0);
    pl_transport_release(a.t);
    pl_driver_advance(n.d, 1000);
    assert_int_equal(b.msgs, 0); /* one hold left */
    pl_transport_release(a.t);
    assert_false(pl_transport_held(a.t));
    pl_driver_run(n.d);
    assert_int_equal(b.msgs, 2);
    assert_string_equal(b.last, "2");
    assert_int_equal(pl_transport_pending(a.t), 0);
    /* offline and held: sent only when both are over */
    pl_transport_hold(a.t);
    pl_loopback_set_online(a.t, false);
    pub(&a, "t", "3");
    pl_loopback_set_online(a.t, true);
    pl_driver_run(n.d);
    assert_int_equal(b.msgs, 2);
    pl_transport_release(a.t);
    pl_driver_run(n.d);
    assert_int_equal(b.msgs, 3);
    ep_close(&n, &a);
    ep_close(&n, &b);
    net_close(&n);
}

/* Each publish: its delivery to b after a delay in [10, 50] ms. */
static void test_loopback_faults(void **state) {
    (void)state;
    pl_loopback_config cfg = {.seed = pl_test_seed()};
    net n;
    net_open(&n, &cfg);
    ep a, b;
    ep_open(&n, &a, "a");
    ep_open(&n, &b, "b");
    assert_int_equal(pl_transport_subscribe(b.t, "t"), PL_OK);
    pl_driver_run(n.d);
    pl_loopback_faults f = {.delay_min_ms = 10, .delay_max_ms = 50};
    pl_loopback_hub_set_faults(n.h, &f);
    pub(&a, "t", "d");
    pl_driver_advance(n.d, 9);
    assert_int_equal(b.msgs, 0);
    assert_int_equal(pl_loopback_hub_in_flight(n.h), 1);
    pl_driver_advance(n.d, 41);
    assert_int_equal(b.msgs, 1);
    /* on demand: the next publish dropped, the one after duplicated */
    pl_loopback_faults none = {0};
    pl_loopback_hub_set_faults(n.h, &none);
    pl_loopback_hub_drop_next(n.h, 1);
    pub(&a, "t", "x");
    pl_loopback_hub_duplicate_next(n.h, 1);
    pub(&a, "t", "y");
    pub(&a, "t", "z");
    pl_driver_run(n.d);
    assert_int_equal(b.msgs, 4);
    b.order[b.norder] = 0;
    assert_string_equal(b.order, "dyyz");
    /* held, then handed over newest first */
    b.norder = 0;
    pl_loopback_hub_hold(n.h, true);
    pub(&a, "t", "1");
    pub(&a, "t", "2");
    pub(&a, "t", "3");
    pl_driver_run(n.d);
    assert_int_equal(b.norder, 0);
    pl_loopback_hub_release_reversed(n.h);
    pl_driver_run(n.d);
    b.order[b.norder] = 0;
    assert_string_equal(b.order, "321");
    /* stepping: only what was in flight */
    b.norder = 0;
    pl_loopback_hub_hold(n.h, true);
    pub(&a, "t", "4");
    assert_int_equal(pl_loopback_hub_flush(n.h), 1);
    assert_int_equal(pl_loopback_hub_flush(n.h), 0);
    pl_loopback_hub_hold(n.h, false);
    /* probabilities: all lost, all doubled, all reordered */
    pl_loopback_faults drop = {.drop_permille = 1000};
    pl_loopback_hub_set_faults(n.h, &drop);
    int before = b.msgs;
    for (int i = 0; i < 5; i++)
        pub(&a, "t", "p");
    pl_driver_run(n.d);
    assert_int_equal(b.msgs, before);
    pl_loopback_faults dup = {.duplicate_permille = 1000};
    pl_loopback_hub_set_faults(n.h, &dup);
    for (int i = 0; i < 5; i++)
        pub(&a, "t", "q");
    pl_driver_run(n.d);
    assert_int_equal(b.msgs, before + 10);
    /* every other one held back by 10 ms: later ones overtake it */
    b.norder = 0;
    pl_loopback_faults reorder = {.reorder_permille = 1000, .reorder_ms = 10};
    pl_loopback_hub_set_faults(n.h, &reorder);
    pub(&a, "t", "A");
    pl_loopback_hub_set_faults(n.h, &none);
    pub(&a, "t", "B");
    pl_driver_advance(n.d, 20);
    b.order[b.norder] = 0;
    assert_string_equal(b.order, "BA");
    /* half of them lost, with the seed printed above for a replay */
    pl_loopback_faults half = {.drop_permille = 500};
    pl_loopback_hub_set_faults(n.h, &half);
    before = b.msgs;
    for (int i = 0; i < 400; i++)
        pub(&a, "t", "h");
    pl_driver_run(n.d);
    assert_true(b.msgs - before > 100 && b.msgs - before < 300);
    ep_close(&n, &a);
    ep_close(&n, &b);
    net_close(&n);
}

static void test_loopback_mailbox_and_echo(void **state) {
    (void)state;
    pl_loopback_config cfg = {.mailbox = true, .echo = true, .default_ttl_s = 60};
    net n;
    net_open(&n, &cfg);
    ep a, b;
    ep_open(&n, &a, "a");
    ep_open(&n, &b, "b");
    assert_int_equal(pl_transport_subscribe(a.t, "t"), PL_OK);
    pl_publish_opts short_ttl = {.ttl_s = 1};
    assert_int_equal(pl_transport_publish(a.t, "t", (const uint8_t *)"1", 1, &short_ttl), PL_OK);
    pub(&a, "t", "2");
    pl_driver_run(n.d);
    assert_int_equal(a.msgs, 2); /* echo: its own, being subscribed */
    /* a late subscriber gets what the mailbox keeps */
    assert_int_equal(pl_transport_subscribe(b.t, "t"), PL_OK);
    pl_driver_run(n.d);
    assert_int_equal(b.msgs, 2);
    /* after a ttl only the longer-lived one; coming back online replays */
    pl_driver_advance(n.d, 1000);
    pl_loopback_set_online(b.t, false);
    pl_loopback_set_online(b.t, false); /* no change */
    pl_driver_run(n.d);
    pl_loopback_set_online(b.t, true);
    pl_driver_run(n.d);
    assert_int_equal(b.state, PL_TRANSPORT_CONNECTED);
    assert_int_equal(b.msgs, 3);
    assert_string_equal(b.last, "2");
    /* a relay that lost its store */
    pl_loopback_hub_clear_mailbox(n.h);
    assert_int_equal(pl_transport_unsubscribe(b.t, "t"), PL_OK);
    assert_int_equal(pl_transport_subscribe(b.t, "t"), PL_OK);
    pl_driver_run(n.d);
    assert_int_equal(b.msgs, 3);
    /* the hub frees what is still stored and in flight */
    pub(&a, "t", "3");
    pl_loopback_faults later = {.delay_min_ms = 1000, .delay_max_ms = 1000};
    pl_loopback_hub_set_faults(n.h, &later);
    pub(&a, "t", "4");
    ep_close(&n, &a);
    ep_close(&n, &b);
    net_close(&n);
}

int main(void) {
    if (pl_init() != PL_OK) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_virtual_driver_order),
        cmocka_unit_test(test_deferred_calls),
        cmocka_unit_test(test_loop_driver),
        cmocka_unit_test(test_generic_checks),
        cmocka_unit_test(test_publish_error_report),
        cmocka_unit_test(test_flush_then_close),
        cmocka_unit_test(test_loopback_basics),
        cmocka_unit_test(test_loopback_hold),
        cmocka_unit_test(test_loopback_faults),
        cmocka_unit_test(test_loopback_mailbox_and_echo),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
