/* SPDX-License-Identifier: Apache-2.0 */
/* The driver: see include/pairlink/driver.h. The only place that arms a
 * timer for the cores' deadlines and that counts handles to close. */
#include "pairlink/driver.h"

#include "core/internal.h"

#include <stdlib.h>
#include <string.h>

/* A task whose deadline never leaves the past, or calls that keep queueing
 * each other, would spin a virtual driver forever: a bug, reported. */
#define RUN_GUARD 1000000
#define WALL_RECHECK_MS (3600 * 1000)

struct pl_driver {
    uv_loop_t *loop; /* NULL: virtual */
    int64_t vnow;
    uv_timer_t timer;
    uv_prepare_t prepare;
    int64_t armed_for; /* deadline the timer is set for; INT64_MAX: idle */
    pl_driver_task *tasks;
    pl_driver_task *iter; /* next task of the pass under way (stop() keeps it valid) */
    pl_driver_call *calls_head, *calls_tail;
    bool running;
    bool handles; /* the uv handles are on the loop (from the first use on) */
    bool closing;
    unsigned closing_handles;
    void (*on_closed)(void *ud);
    void *closed_ud;
};

int64_t pl_driver_now(const pl_driver *d) {
    PL_REQUIRE(d);
    return d->loop ? pl_wall_clock_ms() : d->vnow;
}

uv_loop_t *pl_driver_loop(const pl_driver *d) {
    PL_REQUIRE(d);
    return d->loop;
}

static void on_uv_prepare(uv_prepare_t *h);

/* The uv handles go on the loop at the first use, so that a driver that
 * never ran anything can be freed at once (a start-up that failed). */
static void ensure_handles(pl_driver *d) {
    if (!d->loop || d->handles) return;
    d->handles = true;
    /* Neither can fail in libuv 1.x (they only fill the struct). */
    uv_timer_init(d->loop, &d->timer);
    uv_prepare_init(d->loop, &d->prepare);
    d->timer.data = d->prepare.data = d;
    uv_prepare_start(&d->prepare, on_uv_prepare);
}

/* ---- tasks and calls ---- */

void pl_driver_start(pl_driver *d, pl_driver_task *t) {
    PL_REQUIRE(d && t && t->next_deadline && t->on_timer && !t->driver_ && !d->closing);
    ensure_handles(d);
    t->driver_ = d;
    t->prev_ = NULL;
    t->next_ = d->tasks;
    if (d->tasks) d->tasks->prev_ = t;
    d->tasks = t;
}

void pl_driver_stop(pl_driver_task *t) {
    PL_REQUIRE(t);
    pl_driver *d = t->driver_;
    if (!d) return;
    if (d->iter == t) d->iter = t->next_;
    if (t->prev_)
        t->prev_->next_ = t->next_;
    else
        d->tasks = t->next_;
    if (t->next_) t->next_->prev_ = t->prev_;
    t->prev_ = t->next_ = NULL;
    t->driver_ = NULL;
}

void pl_driver_defer(pl_driver *d, pl_driver_call *c) {
    PL_REQUIRE(d && c && c->fn && !d->closing);
    if (c->queued_) return;
    ensure_handles(d);
    c->queued_ = true;
    c->next_ = NULL;
    if (d->calls_tail)
        d->calls_tail->next_ = c;
    else
        d->calls_head = c;
    d->calls_tail = c;
}

void pl_driver_cancel(pl_driver *d, pl_driver_call *c) {
    PL_REQUIRE(d && c);
    if (!c->queued_) return;
    pl_driver_call **pp = &d->calls_head, *prev = NULL;
    while (*pp && *pp != c) {
        prev = *pp;
        pp = &(*pp)->next_;
    }
    PL_REQUIRE(*pp == c); /* queued on another driver: misuse */
    *pp = c->next_;
    if (d->calls_tail == c) d->calls_tail = prev;
    c->queued_ = false;
    c->next_ = NULL;
}

static bool run_calls(pl_driver *d) {
    bool any = false;
    for (int guard = 0; d->calls_head; guard++) {
        PL_REQUIRE(guard < RUN_GUARD);
        pl_driver_call *c = d->calls_head;
        d->calls_head = c->next_;
        if (!d->calls_head) d->calls_tail = NULL;
        c->queued_ = false;
        c->next_ = NULL;
        c->fn(c); /* may free c */
        any = true;
    }
    return any;
}

/* One pass over the tasks; a callback may stop any task, itself included,
 * or start new ones (seen from the next pass). */
static void each_before_wait(pl_driver *d, int64_t now) {
    for (pl_driver_task *t = d->tasks; t; t = d->iter) {
        d->iter = t->next_;
        if (t->before_wait) t->before_wait(t, now);
    }
    d->iter = NULL;
}

static bool run_due(pl_driver *d, int64_t now) {
    bool any = false;
    for (pl_driver_task *t = d->tasks; t; t = d->iter) {
        d->iter = t->next_;
        if (t->next_deadline(t) <= now) {
            any = true;
            t->on_timer(t, now);
        }
    }
    d->iter = NULL;
    return any;
}

int64_t pl_driver_next_deadline(const pl_driver *d) {
    PL_REQUIRE(d);
    int64_t min = INT64_MAX;
    for (pl_driver_task *t = d->tasks; t; t = t->next_) {
        int64_t x = t->next_deadline(t);
        if (x < min) min = x;
    }
    return min;
}

/* ---- on a libuv loop ---- */

static void on_uv_timer(uv_timer_t *h) {
    pl_driver *d = h->data;
    d->armed_for = INT64_MAX;
    d->running = true;
    run_due(d, pl_wall_clock_ms());
    d->running = false;
}

/* Before the loop waits: what callbacks queued, what the cores produced
 * since, then the one timer for the earliest deadline. */
static void on_uv_prepare(uv_prepare_t *h) {
    pl_driver *d = h->data;
    if (d->closing) return;
    d->running = true;
    run_calls(d);
    each_before_wait(d, pl_wall_clock_ms());
    run_calls(d);
    d->running = false;
    if (d->closing) return; /* a call closed the driver */
    int64_t next = pl_driver_next_deadline(d);
    if (next == d->armed_for) return;
    d->armed_for = next;
    if (next == INT64_MAX) {
        uv_timer_stop(&d->timer);
        return;
    }
    /* The loop's cached time may be well behind after a busy iteration;
     * the timer counts from it. */
    uv_update_time(d->loop);
    int64_t wait = next - pl_wall_clock_ms();
    if (wait < 0) wait = 0;
    /* The timer counts monotonic time, deadlines are wall clock: read the
     * clock again at least hourly in case it was set. */
    if (wait > WALL_RECHECK_MS) wait = WALL_RECHECK_MS;
    uv_timer_start(&d->timer, on_uv_timer, (uint64_t)wait, 0);
}

pl_err pl_driver_new(pl_driver **out, uv_loop_t *loop) {
    PL_REQUIRE(out && loop);
    *out = NULL;
    pl_driver *d = calloc(1, sizeof *d);
    if (!d) return PL_ERR_NOMEM;
    d->loop = loop;
    d->armed_for = INT64_MAX;
    *out = d;
    return PL_OK;
}

/* ---- closing ---- */

static void maybe_finish(pl_driver *d) {
    if (!d->closing || d->closing_handles > 0) return;
    void (*cb)(void *) = d->on_closed;
    void *ud = d->closed_ud;
    free(d);
    if (cb) cb(ud);
}

static void on_counted_closed(uv_handle_t *h) {
    pl_driver *d = h->data;
    d->closing_handles--;
    maybe_finish(d);
}

void pl_driver_close_handle(pl_driver *d, uv_handle_t *h) {
    PL_REQUIRE(d && d->loop && h && h->loop == d->loop && !uv_is_closing(h));
    ensure_handles(d);
    /* The owner is done with the handle: its data now finds the driver. */
    h->data = d;
    d->closing_handles++;
    uv_close(h, on_counted_closed);
}

void pl_driver_close(pl_driver *d, void (*on_closed)(void *ud), void *ud) {
    PL_REQUIRE(d && d->loop && !d->closing);
    PL_REQUIRE(!d->tasks && !d->calls_head); /* stop tasks and let calls run first */
    /* Closing is asynchronous even for a driver that never ran anything. */
    ensure_handles(d);
    uv_timer_stop(&d->timer);
    uv_prepare_stop(&d->prepare);
    pl_driver_close_handle(d, (uv_handle_t *)&d->timer);
    pl_driver_close_handle(d, (uv_handle_t *)&d->prepare);
    d->on_closed = on_closed;
    d->closed_ud = ud;
    d->closing = true;
}

/* ---- virtual ---- */

pl_err pl_driver_new_virtual(pl_driver **out, int64_t start_ms) {
    PL_REQUIRE(out && start_ms >= 0);
    *out = NULL;
    pl_driver *d = calloc(1, sizeof *d);
    if (!d) return PL_ERR_NOMEM;
    d->vnow = start_ms;
    d->armed_for = INT64_MAX;
    *out = d;
    return PL_OK;
}

void pl_driver_run(pl_driver *d) {
    PL_REQUIRE(d && !d->loop && !d->running);
    d->running = true;
    for (int guard = 0;; guard++) {
        PL_REQUIRE(guard < RUN_GUARD);
        bool any = run_calls(d);
        each_before_wait(d, d->vnow);
        any |= run_calls(d);
        any |= run_due(d, d->vnow);
        if (!any) break;
    }
    d->running = false;
}

void pl_driver_advance(pl_driver *d, int64_t ms) {
    PL_REQUIRE(d && !d->loop && ms >= 0 && ms <= INT64_MAX - d->vnow);
    int64_t target = d->vnow + ms;
    pl_driver_run(d);
    for (int guard = 0;; guard++) {
        PL_REQUIRE(guard < RUN_GUARD);
        int64_t next = pl_driver_next_deadline(d);
        if (next > target) break;
        if (next > d->vnow) d->vnow = next;
        pl_driver_run(d);
    }
    d->vnow = target;
    pl_driver_run(d);
}

void pl_driver_free(pl_driver *d) {
    if (!d) return;
    PL_REQUIRE(!d->handles && !d->tasks && !d->calls_head && !d->running && !d->closing);
    free(d);
}
