/* SPDX-License-Identifier: Apache-2.0 */
/* The shared start and close of the runtime objects: see attach.h. */
#include "runtime/attach.h"

#include "core/internal.h"

pl_err pl__attach_driver(pl__attach *a, uv_loop_t *loop, pl_driver *given) {
    PL_REQUIRE(a && (loop || given));
    if (given) {
        a->d = given;
        return PL_OK;
    }
    PL_TRY(pl_driver_new(&a->d, loop));
    a->own_driver = true;
    return PL_OK;
}

pl_err pl__attach_transport(pl__attach *a, pl_transport *given, const pl_transport_handler *h,
                            const pl_relay_client_opts *ro) {
    PL_REQUIRE(a && a->d && h);
    if (given) {
        a->tp = given;
        pl_transport_set_handler(given, h);
        return PL_OK;
    }
    pl_relay_client_opts o = *ro;
    o.handler = *h;
    PL_TRY(pl_relay_client_new(&a->tp, a->d, &o));
    a->own_transport = true;
    return PL_OK;
}

void pl__attach_adopt(pl__attach *a, pl_transport *tp) {
    PL_REQUIRE(a && tp && !a->tp);
    a->tp = tp;
    a->own_transport = true;
}

static void finish(pl__attach *a) {
    void (*cb)(void *) = a->on_closed;
    void *ud = a->ud;
    pl_driver *own = a->own_driver ? a->d : NULL;
    a->release(a->owner); /* a lives inside the owner: gone from here on */
    if (own)
        pl_driver_close(own, cb, ud);
    else if (cb)
        cb(ud);
}

static void on_transport_closed(void *ud) {
    finish(ud);
}

static void on_call(pl_driver_call *call) {
    finish(call->data);
}

void pl__attach_close(pl__attach *a, int64_t flush_ms, void (*release)(void *owner), void *owner,
                      void (*on_closed)(void *ud), void *ud) {
    PL_REQUIRE(a && !a->closing && release);
    a->closing = true;
    a->release = release;
    a->owner = owner;
    a->on_closed = on_closed;
    a->ud = ud;
    if (a->own_transport) {
        pl_transport_close(a->tp, flush_ms, on_transport_closed, a);
        return;
    }
    if (a->tp) pl_transport_set_handler(a->tp, NULL);
    a->call.fn = on_call;
    a->call.data = a;
    pl_driver_defer(a->d, &a->call);
}

void pl__attach_abandon(pl__attach *a, void (*release)(void *owner), void *owner) {
    PL_REQUIRE(a && release);
    if (a->own_transport) { /* it closes asynchronously, then the rest */
        pl__attach_close(a, 0, release, owner, NULL, NULL);
        return;
    }
    if (a->tp) pl_transport_set_handler(a->tp, NULL);
    pl_driver *own = a->own_driver ? a->d : NULL;
    release(owner);
    pl_driver_free(own); /* it never ran anything: no task was started */
}
