/* SPDX-License-Identifier: Apache-2.0 */
/* The generic half of every transport (include/pairlink/transport.h):
 * argument checks, the handler, and flush-then-close, written once. */
#include "pairlink/transport.h"

#include "core/internal.h"
#include "pairlink/driver.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* The flush in progress: watched before every wait of the driver, given up
 * at its deadline. */
struct pl__transport_close {
    pl_driver_task task;
    int64_t until;
};

const char *pl_transport_state_name(pl_transport_state s) {
    switch (s) {
    case PL_TRANSPORT_CONNECTING:
        return "connecting";
    case PL_TRANSPORT_CONNECTED:
        return "connected";
    case PL_TRANSPORT_RECONNECTING:
        return "reconnecting";
    case PL_TRANSPORT_CLOSED:
        return "closed";
    }
    return "unknown";
}

bool pl_transport_topic_valid(const char *topic) {
    if (!topic) return false;
    size_t n = 0;
    for (; topic[n]; n++) {
        if (n >= PL_TRANSPORT_TOPIC_MAX) return false;
        /* Printable ASCII: names end up in logs and in JSON. */
        if ((unsigned char)topic[n] < 0x21 || (unsigned char)topic[n] > 0x7e) return false;
    }
    return n > 0;
}

void pl_transport_init(pl_transport *t, const pl_transport_ops *ops, pl_driver *driver,
                       const pl_transport_handler *h) {
    PL_REQUIRE(t && ops && ops->name && ops->publish && ops->subscribe && ops->unsubscribe &&
               ops->state && ops->pending && ops->close && ops->free && driver);
    memset(t, 0, sizeof *t);
    t->ops = ops;
    t->driver = driver;
    if (h) t->handler_ = *h;
}

void pl_transport_set_handler(pl_transport *t, const pl_transport_handler *h) {
    PL_REQUIRE(t);
    if (h)
        t->handler_ = *h;
    else
        memset(&t->handler_, 0, sizeof t->handler_);
}

pl_err pl_transport_publish(pl_transport *t, const char *topic, const uint8_t *data, size_t len,
                            const pl_publish_opts *opts) {
    PL_REQUIRE(t && topic && (data || len == 0));
    if (t->closing_) return PL_ERR_STATE;
    if (!pl_transport_topic_valid(topic)) return PL_ERR_INVALID_ARG;
    static const pl_publish_opts none;
    return t->ops->publish(t, topic, data, len, opts ? opts : &none);
}

pl_err pl_transport_subscribe(pl_transport *t, const char *topic) {
    PL_REQUIRE(t && topic);
    if (t->closing_) return PL_ERR_STATE;
    if (!pl_transport_topic_valid(topic)) return PL_ERR_INVALID_ARG;
    return t->ops->subscribe(t, topic);
}

pl_err pl_transport_unsubscribe(pl_transport *t, const char *topic) {
    PL_REQUIRE(t && topic);
    if (t->closing_) return PL_ERR_STATE;
    if (!pl_transport_topic_valid(topic)) return PL_ERR_INVALID_ARG;
    return t->ops->unsubscribe(t, topic);
}

pl_transport_state pl_transport_get_state(const pl_transport *t, pl_err *err) {
    PL_REQUIRE(t);
    pl_err e = PL_OK;
    pl_transport_state s = t->ops->state(t, &e);
    if (err) *err = e;
    return s;
}

size_t pl_transport_pending(const pl_transport *t) {
    PL_REQUIRE(t);
    return t->ops->pending(t);
}

const char *pl_transport_name(const pl_transport *t) {
    PL_REQUIRE(t);
    return t->ops->name;
}

pl_driver *pl_transport_driver(const pl_transport *t) {
    PL_REQUIRE(t);
    return t->driver;
}

bool pl_transport_can_hold(const pl_transport *t) {
    PL_REQUIRE(t);
    return t->ops->release != NULL;
}

void pl_transport_hold(pl_transport *t) {
    PL_REQUIRE(t && t->ops->release && t->holds_ < UINT_MAX);
    t->holds_++;
}

void pl_transport_release(pl_transport *t) {
    PL_REQUIRE(t && t->holds_ > 0);
    if (--t->holds_ == 0 && !t->closing_) t->ops->release(t);
}

bool pl_transport_held(const pl_transport *t) {
    PL_REQUIRE(t);
    return t->holds_ > 0;
}

bool pl_transport_is_closing(const pl_transport *t) {
    PL_REQUIRE(t);
    return t->closing_;
}

void pl_transport_deliver(pl_transport *t, const char *topic, const uint8_t *data, size_t len,
                          const pl_delivery_info *info) {
    PL_REQUIRE(t && topic && (data || len == 0));
    if (t->closing_ || !t->handler_.on_message) return;
    static const pl_delivery_info none;
    t->handler_.on_message(t->handler_.ud, t, topic, data, len, info ? info : &none);
}

void pl_transport_report_state(pl_transport *t, pl_transport_state state, pl_err err) {
    PL_REQUIRE(t);
    if (t->closing_ || !t->handler_.on_state) return;
    t->handler_.on_state(t->handler_.ud, t, state, err);
}

void pl_transport_report_publish_error(pl_transport *t, const char *topic, pl_err err,
                                       int64_t code) {
    PL_REQUIRE(t && topic);
    if (t->closing_ || !t->handler_.on_publish_error) return;
    t->handler_.on_publish_error(t->handler_.ud, t, topic, err, code);
}

/* ---- flush, then close ---- */

static void closed_done(pl_transport *t) {
    pl_transport_closed_fn cb = t->on_closed_;
    void *ud = t->closed_ud_;
    free(t->close_);
    t->close_ = NULL;
    t->ops->free(t);
    if (cb) cb(ud);
}

static void close_now(pl_transport *t) {
    if (t->close_) pl_driver_stop(&t->close_->task);
    t->ops->close(t, closed_done);
}

static bool flushed(const pl_transport *t) {
    pl_err e;
    return t->ops->pending(t) == 0 || t->ops->state(t, &e) == PL_TRANSPORT_CLOSED;
}

static int64_t flush_deadline(pl_driver_task *task) {
    return ((pl_transport *)task->data)->close_->until;
}

static void flush_timeout(pl_driver_task *task, int64_t now_ms) {
    (void)now_ms;
    close_now(task->data);
}

static void flush_check(pl_driver_task *task, int64_t now_ms) {
    (void)now_ms;
    if (flushed(task->data)) close_now(task->data);
}

void pl_transport_close(pl_transport *t, int64_t flush_ms, pl_transport_closed_fn on_closed,
                        void *ud) {
    PL_REQUIRE(t && !t->closing_ && flush_ms >= 0);
    t->closing_ = true;
    t->on_closed_ = on_closed;
    t->closed_ud_ = ud;
    if (flush_ms == 0 || flushed(t)) {
        close_now(t);
        return;
    }
    t->close_ = calloc(1, sizeof *t->close_);
    if (!t->close_) { /* no memory to wait with: close at once */
        close_now(t);
        return;
    }
    int64_t now = pl_driver_now(t->driver);
    t->close_->until = flush_ms > INT64_MAX - now ? INT64_MAX : now + flush_ms;
    t->close_->task.data = t;
    t->close_->task.next_deadline = flush_deadline;
    t->close_->task.on_timer = flush_timeout;
    t->close_->task.before_wait = flush_check;
    pl_driver_start(t->driver, &t->close_->task);
}
