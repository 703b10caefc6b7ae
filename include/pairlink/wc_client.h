/* SPDX-License-Identifier: Apache-2.0 */
/* A ready WalletConnect pairing client: the pairing engine (wc_pairing.h)
 * on a transport (transport.h; the relay client of relay_client.h unless
 * one is given), persisted in a store (store.h), run by a driver
 * (driver.h) that keeps the engine's deadlines.
 *
 * At start it opens the store, loads (or creates and saves) the client's
 * Ed25519 relay identity, connects to the relay, restores every live pairing
 * and pending request, and re-subscribes their topics. After that the
 * application uses pl_wc_client_engine() with the functions of
 * wc_pairing.h (create, pair, request, respond, ping, delete); the driver
 * re-arms its timer before the loop next waits, so nothing else is needed.
 *
 * Threads: everything runs on the driver's thread; callbacks too. */
#ifndef PAIRLINK_WC_CLIENT_H
#define PAIRLINK_WC_CLIENT_H

#include "pairlink/common.h"
#include "pairlink/driver.h"
#include "pairlink/transport.h"
#include "pairlink/wc_pairing.h"

#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pl_wc_client pl_wc_client;

typedef struct pl_wc_client_opts {
    const char *relay_url;  /* the relay (ws://127.0.0.1:8787 for `pairlink relay`);
                               required unless transport is set */
    const char *store_path; /* required: SQLite file (":memory:" for tests) */
    const char *project_id; /* optional */
    const char *ca_file;    /* optional, wss:// */
    /* Optional: carry the engine on this transport instead of a relay client
     * of the client's own. Not owned (it must outlive the client); the
     * client sets its handler. */
    pl_transport *transport;
    /* Optional: run on this driver (and its clock; a virtual one in tests).
     * NULL: the client makes one on `loop`. */
    pl_driver *driver;
    int64_t inactive_ttl; /* seconds; 0: 300 */
    int64_t active_ttl;   /* seconds; 0: 30 days */
    /* Engine events (pairing created, activated, renewed, expired, deleted...). */
    void (*on_event)(void *ud, pl_wc_client *c, const pl_wc_event *ev);
    /* Transport state changes (optional; transport.h). */
    void (*on_transport_state)(void *ud, pl_wc_client *c, pl_transport_state state, pl_err err);
    /* A message on a topic that is not a pairing (e.g. a session topic the
     * application subscribed through the transport). Optional. */
    void (*on_other_message)(void *ud, pl_wc_client *c, const char *topic, const uint8_t *data,
                             size_t len);
    void *ud;
} pl_wc_client_opts;

/* Create and start, on opts->driver or else on a driver of its own on
 * `loop` (then required). Errors: those of pl_store_open, pl_relay_client_new,
 * pl_wc_engine_new, pl_store_wc_load. Nothing is left on the loop on error. */
PL_EXPORT pl_err pl_wc_client_new(pl_wc_client **out, uv_loop_t *loop,
                                  const pl_wc_client_opts *opts);

/* The engine: register protocols and call wc_pairing.h functions on it. */
PL_EXPORT pl_wc_engine *pl_wc_client_engine(pl_wc_client *c);
/* The transport underneath (state, pending count, extra topics). */
PL_EXPORT pl_transport *pl_wc_client_transport(pl_wc_client *c);
/* The driver, and its time in unix ms (what the client passes to the engine). */
PL_EXPORT pl_driver *pl_wc_client_driver(pl_wc_client *c);
PL_EXPORT int64_t pl_wc_client_now(const pl_wc_client *c);
/* Number of pairings restored from the store at start-up. */
PL_EXPORT size_t pl_wc_client_restored(const pl_wc_client *c);

/* Close. The engine stops (no more events). With a transport of its own,
 * the client first waits up to flush_ms until the relay acknowledged every
 * message (pl_transport_close): a process that answered a request and exits
 * passes a few seconds so that its last reply is not lost; 0 closes at
 * once. Then the transport, the store and the client's own driver close;
 * on_closed (may be NULL) runs from the driver once everything is closed,
 * and the client is freed. A borrowed transport is left open (close it, with
 * its own flush, afterwards). Calling it twice is misuse. */
PL_EXPORT void pl_wc_client_close(pl_wc_client *c, int64_t flush_ms, void (*on_closed)(void *ud));

#ifdef __cplusplus
}
#endif
#endif
