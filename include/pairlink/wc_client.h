/* A ready WalletConnect pairing client on a libuv loop: the pairing engine
 * (wc_pairing.h) driven by the relay client (relay_client.h), persisted in a
 * store (store.h), with the engine's deadlines on a loop timer.
 *
 * At start it opens the store, loads (or creates and saves) the client's
 * Ed25519 relay identity, connects to the relay, restores every live pairing
 * and pending request, and re-subscribes their topics. After that the
 * application uses pl_wc_client_engine() with the functions of
 * wc_pairing.h (create, pair, request, respond, ping, delete); the client
 * re-arms its timer before the loop next waits, so nothing else is needed.
 *
 * Threads: everything runs on the loop's thread; callbacks too. */
#ifndef PAIRLINK_WC_CLIENT_H
#define PAIRLINK_WC_CLIENT_H

#include "pairlink/common.h"
#include "pairlink/relay_client.h"
#include "pairlink/wc_pairing.h"

#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pl_wc_client pl_wc_client;

typedef struct pl_wc_client_opts {
    const char *relay_url;  /* required: ws://127.0.0.1:8787 for `pairlink relay` */
    const char *store_path; /* required: SQLite file (":memory:" for tests) */
    const char *project_id; /* optional */
    const char *ca_file;    /* optional, wss:// */
    int64_t inactive_ttl;   /* seconds; 0: 300 */
    int64_t active_ttl;     /* seconds; 0: 30 days */
    /* Engine events (pairing created, activated, renewed, expired, deleted...). */
    void (*on_event)(void *ud, pl_wc_client *c, const pl_wc_event *ev);
    /* Relay connection state (optional). */
    void (*on_relay_state)(void *ud, pl_wc_client *c, pl_relay_state state, pl_err err);
    /* A message on a topic that is not a pairing (e.g. a session topic the
     * application subscribed through the transport). Optional. */
    void (*on_other_message)(void *ud, pl_wc_client *c, const char *topic, const char *message,
                             size_t len);
    void *ud;
} pl_wc_client_opts;

/* Create and start. Errors: those of pl_store_open, pl_relay_client_new,
 * pl_wc_engine_new, pl_store_wc_load. Nothing is left on the loop on error. */
PL_EXPORT pl_err pl_wc_client_new(pl_wc_client **out, uv_loop_t *loop, const pl_wc_client_opts *opts);

/* The engine: register protocols and call wc_pairing.h functions on it. */
PL_EXPORT pl_wc_engine *pl_wc_client_engine(pl_wc_client *c);
/* The relay client underneath (for stats, pending count, extra topics). */
PL_EXPORT pl_relay_client *pl_wc_client_relay(pl_wc_client *c);
/* Current wall-clock time in unix milliseconds (what the client passes to
 * the engine). */
PL_EXPORT int64_t pl_wc_client_now_ms(void);
/* Number of pairings restored from the store at start-up. */
PL_EXPORT size_t pl_wc_client_restored(const pl_wc_client *c);

/* Close: relay connection, timers, store. on_closed (may be NULL) runs from
 * the loop once everything is closed; then the client is freed. */
PL_EXPORT void pl_wc_client_close(pl_wc_client *c, void (*on_closed)(void *ud));

#ifdef __cplusplus
}
#endif
#endif
