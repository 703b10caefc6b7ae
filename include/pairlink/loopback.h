/* SPDX-License-Identifier: Apache-2.0 */
/* The in-memory loopback transport: several endpoints (pl_transport) on one
 * hub, in one process, on one driver (driver.h). With a virtual driver it
 * runs whole runtimes in tests with explicit time and no sockets; it also
 * serves applications' own tests.
 *
 * A publish reaches every other endpoint subscribed to the topic (and the
 * publisher too with `echo`) after a delay, from the driver, never inside
 * the publish. The hub behaves like a network on demand:
 *  - `mailbox`: it keeps each message for its ttl and hands it to endpoints
 *    that subscribe later or come back online (a store-and-forward relay,
 *    which is at-least-once: a re-subscribe delivers again);
 *  - faults: each delivery may be dropped, duplicated, delayed or reordered
 *    (probabilities from a seeded generator, so a failing run replays), and
 *    the next n publishes may be dropped or duplicated on purpose;
 *  - an endpoint may be taken offline: it reports RECONNECTING, keeps its
 *    publishes pending and receives nothing until it is back; or made deaf
 *    (a one-way partition: it loses what is sent to it, still publishes);
 *  - a tap sees every publish with its options, and inject() delivers a
 *    message from outside (garbage, replays, undecodable arrivals).
 *
 * Threads: as for every transport, the hub and its endpoints belong to the
 * driver's thread. */
#ifndef PAIRLINK_LOOPBACK_H
#define PAIRLINK_LOOPBACK_H

#include "pairlink/common.h"
#include "pairlink/transport.h"

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pl_loopback_hub pl_loopback_hub;

typedef struct pl_loopback_config {
    bool mailbox;           /* store-and-forward (see above) */
    bool echo;              /* deliver a publish to its publisher too, if subscribed */
    uint32_t default_ttl_s; /* for publishes with ttl 0; 0: 86400 */
    size_t max_message;     /* longest message accepted; 0: 1 MiB */
    uint64_t seed;          /* the faults' random generator */
} pl_loopback_config;

typedef struct pl_loopback_faults {
    uint32_t drop_permille;      /* each delivery is lost with this probability */
    uint32_t duplicate_permille; /* ... or delivered twice */
    uint32_t reorder_permille;   /* ... or held back by reorder_ms, letting later ones pass */
    int64_t reorder_ms;          /* 0: 10 ms */
    int64_t delay_min_ms;        /* each delivery waits uniformly in [min, max] */
    int64_t delay_max_ms;
} pl_loopback_faults;

typedef struct pl_loopback_stats {
    uint64_t published;  /* publishes taken by the hub (after going online) */
    uint64_t delivered;  /* messages handed to an endpoint's handler */
    uint64_t dropped;    /* deliveries lost on purpose */
    uint64_t duplicated; /* extra deliveries made on purpose */
} pl_loopback_stats;

/* One publish, as the tap sees it. data is valid during the call only. */
typedef void (*pl_loopback_tap_fn)(void *ud, const char *endpoint, const char *topic,
                                   const uint8_t *data, size_t len, const pl_publish_opts *opts);

/* A hub on driver d. cfg may be NULL (defaults: no mailbox, no echo, no
 * faults). Errors: PL_ERR_NOMEM. */
PL_EXPORT pl_err pl_loopback_hub_new(pl_loopback_hub **out, pl_driver *d,
                                     const pl_loopback_config *cfg);
/* Free the hub; every endpoint must be closed first (their on_closed run).
 * NULL ok. */
PL_EXPORT void pl_loopback_hub_free(pl_loopback_hub *h);

/* New endpoint named `name` (for the tap and debugging; copied, <= 63
 * bytes). It reports CONNECTED from the driver soon after. h (the handler)
 * may be NULL and set later with pl_transport_set_handler. Free it with
 * pl_transport_close(). Errors: PL_ERR_NOMEM, PL_ERR_TOO_LARGE (name). */
PL_EXPORT pl_err pl_loopback_new(pl_transport **out, pl_loopback_hub *hub, const char *name,
                                 const pl_transport_handler *h);

/* Take an endpoint offline (reports RECONNECTING with PL_ERR_DISCONNECTED)
 * or back online (reports CONNECTED; its pending publishes go out; with a
 * mailbox, what it missed is delivered). t must be a loopback endpoint. */
PL_EXPORT void pl_loopback_set_online(pl_transport *t, bool online);
/* A one-way partition: while deaf, every delivery to the endpoint is lost
 * (counted as dropped); it still publishes. */
PL_EXPORT void pl_loopback_set_deaf(pl_transport *t, bool deaf);
/* Make an endpoint fail for good: CLOSED with `err` (e.g. PL_ERR_RELAY_AUTH). */
PL_EXPORT void pl_loopback_fail(pl_transport *t, pl_err err);

PL_EXPORT void pl_loopback_hub_set_faults(pl_loopback_hub *h, const pl_loopback_faults *f);
/* The next n publishes (counting from this call) are lost / delivered twice. */
PL_EXPORT void pl_loopback_hub_drop_next(pl_loopback_hub *h, unsigned n);
PL_EXPORT void pl_loopback_hub_duplicate_next(pl_loopback_hub *h, unsigned n);
/* Hold every delivery (they wait, in order) until released; release with
 * reverse = true hands them over newest first. */
PL_EXPORT void pl_loopback_hub_hold(pl_loopback_hub *h, bool hold);
PL_EXPORT void pl_loopback_hub_release_reversed(pl_loopback_hub *h);
/* Test stepping: hand over now, in order, every delivery in flight at the
 * time of the call (held or delayed ones too), but none of those they
 * cause; returns how many reached a handler. The handlers run inside this
 * call: call it from the test, not from a callback. */
PL_EXPORT size_t pl_loopback_hub_flush(pl_loopback_hub *h);
/* Forget every stored mailbox message (a relay that lost its store). */
PL_EXPORT void pl_loopback_hub_clear_mailbox(pl_loopback_hub *h);
/* Deliveries not yet made (held or delayed). */
PL_EXPORT size_t pl_loopback_hub_in_flight(const pl_loopback_hub *h);

/* Topics an endpoint is subscribed to now; whether it is to `topic`. */
PL_EXPORT size_t pl_loopback_subscriptions(const pl_transport *t);
PL_EXPORT bool pl_loopback_is_subscribed(const pl_transport *t, const char *topic);

/* See every publish (NULL removes the tap). */
PL_EXPORT void pl_loopback_hub_set_tap(pl_loopback_hub *h, pl_loopback_tap_fn fn, void *ud);

/* Deliver a message from outside to every endpoint subscribed to topic
 * (and store it, with a mailbox), as if a stranger had published it. info
 * may be NULL; with info->err set, data/len are ignored and the endpoints
 * get an undecodable arrival. Errors: PL_ERR_INVALID_ARG (topic),
 * PL_ERR_TOO_LARGE, PL_ERR_NOMEM. */
PL_EXPORT pl_err pl_loopback_hub_inject(pl_loopback_hub *h, const char *topic, const uint8_t *data,
                                        size_t len, const pl_delivery_info *info);

PL_EXPORT void pl_loopback_hub_stats(const pl_loopback_hub *h, pl_loopback_stats *out);

#ifdef __cplusplus
}
#endif
#endif
