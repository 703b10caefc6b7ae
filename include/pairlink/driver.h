/* SPDX-License-Identifier: Apache-2.0 */
/* The driver: the one piece that turns time into calls for every runtime.
 *
 * Protocol cores take `now_ms` in and give a next deadline out
 * (next_deadline() / on_timer(now)). A driver reads the clock, keeps one
 * timer armed for the earliest deadline of all the tasks it runs, runs
 * deferred calls ("from the loop, never inside the API call"), counts the
 * handles that must finish closing, and carries the transports' "flush, then
 * close". The WalletConnect client, the node-manager node, the relay client
 * and the relay server all run on one; several may share one.
 *
 * Two kinds:
 *  - on a libuv loop (pl_driver_new): the clock is the wall clock (unix ms),
 *    the driver owns one uv_timer_t and one uv_prepare_t; before the loop
 *    waits it runs the deferred calls and every task's before_wait, then arms
 *    the timer for the earliest deadline;
 *  - virtual (pl_driver_new_virtual): no loop, time moves only when the
 *    caller says so (pl_driver_advance), and everything that is due runs in
 *    deadline order, so tests drive whole runtimes with explicit time.
 *
 * Threads: a driver and everything on it belong to one thread (the loop's).
 * No function is thread-safe. */
#ifndef PAIRLINK_DRIVER_H
#define PAIRLINK_DRIVER_H

#include "pairlink/common.h"
#include "pairlink/transport.h"

#include <stdbool.h>
#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pl_driver_task pl_driver_task;
typedef struct pl_driver_call pl_driver_call;

/* A core (or anything with deadlines) run by a driver. Embed it, set the
 * callbacks and data, then pl_driver_start(). */
struct pl_driver_task {
    void *data;
    /* Unix ms of the next on_timer wanted; INT64_MAX for none. Asked before
     * every wait, so it may change at any time. Required. */
    int64_t (*next_deadline)(pl_driver_task *task);
    /* Called at (or after) the deadline with the driver's time. Required. */
    void (*on_timer)(pl_driver_task *task, int64_t now_ms);
    /* Called before the loop waits (after I/O callbacks), e.g. to move a
     * core's outputs or to commit a transaction. Optional. */
    void (*before_wait)(pl_driver_task *task, int64_t now_ms);
    /* Private to the driver. */
    pl_driver *driver_;
    pl_driver_task *prev_, *next_;
};

/* A call to make from the driver soon (before it next waits), never inside
 * the function that asked for it. Embed it; it may be queued once at a
 * time. */
struct pl_driver_call {
    void (*fn)(pl_driver_call *call);
    void *data;
    /* Private to the driver. */
    pl_driver_call *next_;
    bool queued_;
};

/* The wall clock in unix milliseconds (CLOCK_REALTIME). */
PL_EXPORT int64_t pl_wall_clock_ms(void);

/* A driver on `loop`. Its uv handles go on the loop when it is first used.
 * Errors: PL_ERR_NOMEM. Close it with pl_driver_close(). */
PL_EXPORT pl_err pl_driver_new(pl_driver **out, uv_loop_t *loop);

/* A virtual driver whose clock starts at start_ms. Errors: PL_ERR_NOMEM.
 * Free it with pl_driver_free(). */
PL_EXPORT pl_err pl_driver_new_virtual(pl_driver **out, int64_t start_ms);

/* The driver's time, unix ms: the wall clock, or the virtual time. */
PL_EXPORT int64_t pl_driver_now(const pl_driver *d);

/* The loop, or NULL for a virtual driver. */
PL_EXPORT uv_loop_t *pl_driver_loop(const pl_driver *d);

/* Run `task` from now on (it must not be running). Its deadline is asked for
 * before the next wait. */
PL_EXPORT void pl_driver_start(pl_driver *d, pl_driver_task *task);
/* Stop running `task` (no-op if it is not running). Safe from inside its own
 * callbacks. */
PL_EXPORT void pl_driver_stop(pl_driver_task *task);

/* Queue `call` (its fn and data set) to run from the driver before it next
 * waits. Queuing a call that is already queued is a no-op. */
PL_EXPORT void pl_driver_defer(pl_driver *d, pl_driver_call *call);
/* Take a queued call back (no-op if not queued). */
PL_EXPORT void pl_driver_cancel(pl_driver *d, pl_driver_call *call);

/* uv_close() `h` (a handle on the driver's loop) and count it: the driver's
 * own close completes only after every counted handle has finished closing.
 * Misuse on a virtual driver. */
PL_EXPORT void pl_driver_close_handle(pl_driver *d, uv_handle_t *h);

/* Close a loop driver: no task may still be running and no call queued.
 * Closes its handles; once they and every handle counted with
 * pl_driver_close_handle() have finished closing, on_closed (may be NULL)
 * runs from the loop and the driver is freed. */
PL_EXPORT void pl_driver_close(pl_driver *d, void (*on_closed)(void *ud), void *ud);

/* Virtual drivers: run the deferred calls, the before_wait callbacks and the
 * tasks that are due at the current time, repeatedly, until nothing more is
 * due. */
PL_EXPORT void pl_driver_run(pl_driver *d);
/* Virtual drivers: move time forward by ms (>= 0), stopping at each deadline
 * that falls within, in order, and running what is due there (as
 * pl_driver_run). */
PL_EXPORT void pl_driver_advance(pl_driver *d, int64_t ms);
/* Virtual drivers: the earliest deadline of the running tasks (INT64_MAX if
 * none). */
PL_EXPORT int64_t pl_driver_next_deadline(const pl_driver *d);
/* Free a virtual driver, or a loop driver that never ran anything (no task
 * was ever started, no call queued, no handle counted: nothing of it is on
 * the loop yet, e.g. after a start-up that failed). NULL ok. */
PL_EXPORT void pl_driver_free(pl_driver *d);

#ifdef __cplusplus
}
#endif
#endif
