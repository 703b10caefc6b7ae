/* SPDX-License-Identifier: Apache-2.0 */
/* What a runtime object (wc_client.c, nm_node.c) holds to run on a driver
 * and a transport that are either given to it or its own, and the one
 * close sequence they share: the transport flushed and closed, the owner's
 * own resources released, then the driver closed. Private to the library. */
#ifndef PAIRLINK_RUNTIME_ATTACH_H
#define PAIRLINK_RUNTIME_ATTACH_H

#include "pairlink/driver.h"
#include "pairlink/relay_client.h"
#include "pairlink/transport.h"

#include <stdbool.h>

typedef struct pl__attach {
    pl_driver *d;
    pl_transport *tp;
    bool own_driver, own_transport, closing;
    pl_driver_call call;
    void (*release)(void *owner); /* frees the owner; called once, last but the driver */
    void *owner;
    void (*on_closed)(void *ud);
    void *ud;
} pl__attach;

/* The driver: `given`, or a new one on `loop`. Errors: PL_ERR_NOMEM. */
pl_err pl__attach_driver(pl__attach *a, uv_loop_t *loop, pl_driver *given);

/* The transport: `given` (its handler is set to h), or a new relay client
 * with ro (whose handler is set to h). Errors: those of pl_relay_client_new. */
pl_err pl__attach_transport(pl__attach *a, pl_transport *given, const pl_transport_handler *h,
                            const pl_relay_client_opts *ro);

/* Take tp (made by the owner, its handler set) as the owner's own
 * transport: closed by pl__attach_close. */
void pl__attach_adopt(pl__attach *a, pl_transport *tp);

/* Close: flush and close an own transport (flush_ms), or detach from a given
 * one; then release(owner); then close an own driver; then on_closed(ud),
 * from the driver. */
void pl__attach_close(pl__attach *a, int64_t flush_ms, void (*release)(void *owner), void *owner,
                      void (*on_closed)(void *ud), void *ud);

/* Undo a start that failed half-way: as close without a flush and without
 * a callback; an own driver that never ran anything is freed at once. */
void pl__attach_abandon(pl__attach *a, void (*release)(void *owner), void *owner);

#endif
