/* SPDX-License-Identifier: Apache-2.0 */
/* WalletConnect pairing client: see include/pairlink/wc_client.h. Glue
 * only: the engine decides, the driver keeps time, the transport moves
 * bytes, the store persists. */
#include "pairlink/wc_client.h"

#include "core/internal.h"
#include "pairlink/crypto.h"
#include "pairlink/hash.h"
#include "pairlink/relay_client.h"
#include "pairlink/store.h"
#include "runtime/attach.h"
#include "store/store_internal.h"

#include <stdlib.h>
#include <string.h>

#define SEED_KEY "relay_client_seed"

struct pl_wc_client {
    pl_wc_client_opts opts;
    pl__attach at; /* driver and transport */
    pl_store *store;
    pl_wc_engine *engine;
    pl_driver_task task;
    pl_wc_store hooks; /* the store's own */
    size_t restored;
    bool closing, held;
};

static int64_t task_deadline(pl_driver_task *t) {
    pl_wc_client *c = t->data;
    return pl_wc_engine_next_deadline(c->engine);
}

static void task_timer(pl_driver_task *t, int64_t now) {
    pl_wc_client *c = t->data;
    pl_wc_engine_on_timer(c->engine, now);
}

/* Group commit: the turn's writes in one transaction (store_internal.h);
 * what the engine sent meanwhile waits in the held transport until it is
 * committed. A failed commit keeps the transport held (those messages may
 * depend on the lost writes) and makes every later write fail. */
static void hold_transport(void *ud) {
    pl_wc_client *c = ud;
    pl_transport_hold(c->at.tp);
    c->held = true;
}

static pl_err commit_turn(pl_wc_client *c, bool last) {
    pl_err e = last ? pl__store_unbatch(c->store) : pl__store_commit(c->store);
    if (e == PL_OK && c->held) {
        c->held = false;
        pl_transport_release(c->at.tp);
    }
    return e;
}

static void task_before_wait(pl_driver_task *t, int64_t now) {
    (void)now;
    (void)commit_turn(t->data, false);
}

/* The engine's store hooks: the store's, but a pairing made or deleted is
 * committed at once (rare, and an application may show its URI or report
 * it gone as soon as the call returns); requests, answers and handled ids,
 * one or more per message, wait for the turn's commit. */
static pl_err hk_save_pairing(void *ctx, const pl_wc_pairing *p) {
    pl_wc_client *c = ctx;
    pl_err e = c->hooks.save_pairing(c->hooks.ctx, p);
    return e != PL_OK ? e : commit_turn(c, false);
}

static pl_err hk_remove_pairing(void *ctx, const char *topic) {
    pl_wc_client *c = ctx;
    pl_err e = c->hooks.remove_pairing(c->hooks.ctx, topic);
    return e != PL_OK ? e : commit_turn(c, false);
}

static pl_err hk_save_pending(void *ctx, const pl_wc_pending *r) {
    pl_wc_client *c = ctx;
    return c->hooks.save_pending(c->hooks.ctx, r);
}

static pl_err hk_remove_pending(void *ctx, const char *topic, const pl_rpc_id *id) {
    pl_wc_client *c = ctx;
    return c->hooks.remove_pending(c->hooks.ctx, topic, id);
}

static pl_err hk_save_seen(void *ctx, const char *topic, const pl_rpc_id *id, int64_t until_ms) {
    pl_wc_client *c = ctx;
    return c->hooks.save_seen(c->hooks.ctx, topic, id, until_ms);
}

static void on_message(void *ud, pl_transport *t, const char *topic, const uint8_t *data,
                       size_t len, const pl_delivery_info *info) {
    (void)t;
    pl_wc_client *c = ud;
    if (c->closing) return;
    pl_err e = pl_wc_engine_on_message(c->engine, topic, data, len, info, pl_driver_now(c->at.d));
    if (e == PL_ERR_NO_MATCHING_KEY && c->opts.on_other_message && info->err == PL_OK)
        c->opts.on_other_message(c->opts.ud, c, topic, data, len);
}

static void on_state(void *ud, pl_transport *t, pl_transport_state state, pl_err err) {
    (void)t;
    pl_wc_client *c = ud;
    if (!c->closing && c->opts.on_transport_state)
        c->opts.on_transport_state(c->opts.ud, c, state, err);
}

static void on_publish_error(void *ud, pl_transport *t, const char *topic, pl_err err,
                             int64_t code) {
    (void)t;
    pl_wc_client *c = ud;
    if (!c->closing) pl_wc_engine_on_publish_error(c->engine, topic, err, code);
}

static void on_engine_event(void *ud, pl_wc_engine *e, const pl_wc_event *ev) {
    (void)e;
    pl_wc_client *c = ud;
    if (!c->closing && c->opts.on_event) c->opts.on_event(c->opts.ud, c, ev);
}

static void release(void *owner) {
    pl_wc_client *c = owner;
    pl_wc_engine_free(c->engine);
    pl_store_close(c->store);
    free((char *)c->opts.relay_url);
    free(c);
}

void pl_wc_client_close(pl_wc_client *c, int64_t flush_ms, void (*on_closed)(void *ud)) {
    PL_REQUIRE(c && !c->closing && flush_ms >= 0);
    c->closing = true;
    /* before the flush: the last messages may wait for it; what the close
     * itself writes is committed at once */
    (void)commit_turn(c, true);
    pl_driver_stop(&c->task);
    pl__attach_close(&c->at, flush_ms, release, c, on_closed, c->opts.ud);
}

pl_err pl_wc_client_new(pl_wc_client **out, uv_loop_t *loop, const pl_wc_client_opts *opts) {
    PL_REQUIRE(out && opts && opts->store_path && (opts->relay_url || opts->transport));
    PL_REQUIRE(opts->driver || loop);
    *out = NULL;
    pl_wc_client *c = calloc(1, sizeof *c);
    if (!c) return PL_ERR_NOMEM;
    c->opts = *opts;
    c->opts.relay_url = NULL;
    c->opts.store_path = NULL; /* not kept */
    if (opts->relay_url && !(c->opts.relay_url = strdup(opts->relay_url))) {
        free(c);
        return PL_ERR_NOMEM;
    }
    pl_err e = pl__attach_driver(&c->at, loop, opts->driver);
    if (e == PL_OK) e = pl_store_open(&c->store, opts->store_path);
    uint8_t seed[PL_ED25519_SEED_BYTES] = {0};
    if (e == PL_OK && !opts->transport)
        e = pl_store_secret(c->store, SEED_KEY, seed, PL_ED25519_SEED_BYTES);
    if (e == PL_OK) {
        pl_transport_handler h = {on_message, on_state, c, on_publish_error};
        pl_relay_client_opts ro = {
            .url = opts->relay_url,
            .seed = seed,
            .project_id = opts->project_id,
            .ca_file = opts->ca_file,
        };
        e = pl__attach_transport(&c->at, opts->transport, &h, &ro);
    }
    pl_wipe(seed, sizeof seed);
    if (e == PL_OK) {
        pl_wc_config cfg = {.inactive_ttl = opts->inactive_ttl,
                            .active_ttl = opts->active_ttl,
                            .on_event = on_engine_event,
                            .ud = c};
        c->hooks = pl_store_wc_hooks(c->store);
        pl_wc_store hooks = {c, hk_save_pairing, hk_remove_pairing, hk_save_pending,
                             hk_remove_pending, hk_save_seen};
        e = pl_wc_engine_new(&c->engine, &cfg, c->at.tp, &hooks);
    }
    if (e == PL_OK) e = pl_store_wc_load(c->store, c->engine, pl_driver_now(c->at.d), &c->restored);
    if (e != PL_OK) {
        c->closing = true;
        pl__attach_abandon(&c->at, release, c);
        return e;
    }
    /* Restored as it was; from now on one transaction per loop turn, if
     * the transport can hold what depends on it. */
    if (pl_transport_can_hold(c->at.tp)) pl__store_batch(c->store, hold_transport, c);
    c->task.data = c;
    c->task.next_deadline = task_deadline;
    c->task.on_timer = task_timer;
    c->task.before_wait = task_before_wait;
    pl_driver_start(c->at.d, &c->task);
    *out = c;
    return PL_OK;
}

pl_wc_engine *pl_wc_client_engine(pl_wc_client *c) {
    PL_REQUIRE(c);
    return c->engine;
}

pl_transport *pl_wc_client_transport(pl_wc_client *c) {
    PL_REQUIRE(c);
    return c->at.tp;
}

pl_driver *pl_wc_client_driver(pl_wc_client *c) {
    PL_REQUIRE(c);
    return c->at.d;
}

int64_t pl_wc_client_now(const pl_wc_client *c) {
    PL_REQUIRE(c);
    return pl_driver_now(c->at.d);
}

size_t pl_wc_client_restored(const pl_wc_client *c) {
    PL_REQUIRE(c);
    return c->restored;
}
