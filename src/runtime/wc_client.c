/* WalletConnect pairing client runtime: see include/pairlink/wc_client.h.
 * The only place that reads the clock for the engine and owns its timer. */
#include "pairlink/wc_client.h"

#include "core/internal.h"
#include "pairlink/crypto.h"
#include "pairlink/hash.h"
#include "pairlink/store.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SEED_KEY "relay_client_seed"

struct pl_wc_client {
    uv_loop_t *loop;
    pl_wc_client_opts opts;
    char *relay_url;
    pl_store *store;
    pl_relay_client *relay;
    pl_wc_engine *engine;
    uv_timer_t timer;
    uv_prepare_t prepare;
    int64_t armed_for; /* deadline the timer is set for; INT64_MAX: none */
    size_t restored;
    int closing_handles;
    void (*on_closed)(void *ud);
};

int64_t pl_wc_client_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_timer(uv_timer_t *t) {
    pl_wc_client *c = t->data;
    c->armed_for = INT64_MAX;
    pl_wc_engine_on_timer(c->engine, pl_wc_client_now_ms());
}

/* Before the loop waits: make the timer match the engine's next deadline,
 * whatever API calls the application made since. */
static void on_prepare(uv_prepare_t *p) {
    pl_wc_client *c = p->data;
    if (!c->engine) return;
    int64_t d = pl_wc_engine_next_deadline(c->engine);
    if (d == c->armed_for) return;
    c->armed_for = d;
    if (d == INT64_MAX) {
        uv_timer_stop(&c->timer);
        return;
    }
    int64_t wait = d - pl_wc_client_now_ms();
    if (wait < 0) wait = 0;
    uv_timer_start(&c->timer, on_timer, (uint64_t)wait, 0);
}

static void on_relay_message(void *ud, const char *topic, const char *message, size_t len,
                             int64_t published_at_ms, uint32_t tag) {
    (void)published_at_ms, (void)tag;
    pl_wc_client *c = ud;
    pl_err e = pl_wc_engine_on_message(c->engine, topic, message, len, pl_wc_client_now_ms());
    if (e == PL_ERR_NO_MATCHING_KEY && c->opts.on_other_message)
        c->opts.on_other_message(c->opts.ud, c, topic, message, len);
}

static void on_relay_state(void *ud, pl_relay_state state, pl_err err) {
    pl_wc_client *c = ud;
    if (c->opts.on_relay_state) c->opts.on_relay_state(c->opts.ud, c, state, err);
}

static void on_engine_event(void *ud, pl_wc_engine *e, const pl_wc_event *ev) {
    (void)e;
    pl_wc_client *c = ud;
    if (c->opts.on_event) c->opts.on_event(c->opts.ud, c, ev);
}

static void free_client(pl_wc_client *c) {
    pl_wc_engine_free(c->engine);
    pl_store_close(c->store);
    free(c->relay_url);
    free(c);
}

pl_err pl_wc_client_new(pl_wc_client **out, uv_loop_t *loop, const pl_wc_client_opts *opts) {
    PL_REQUIRE(out && loop && opts && opts->relay_url && opts->store_path);
    *out = NULL;
    pl_wc_client *c = calloc(1, sizeof *c);
    if (!c) return PL_ERR_NOMEM;
    c->loop = loop;
    c->opts = *opts;
    c->armed_for = INT64_MAX;
    c->relay_url = strdup(opts->relay_url);
    if (!c->relay_url) {
        free(c);
        return PL_ERR_NOMEM;
    }
    c->opts.relay_url = c->relay_url;
    c->opts.store_path = NULL; /* not kept */

    uint8_t seed[PL_ED25519_SEED_BYTES];
    pl_err e = pl_store_open(&c->store, opts->store_path);
    if (e == PL_OK) e = pl_store_secret(c->store, SEED_KEY, seed, PL_ED25519_SEED_BYTES);
    if (e == PL_OK) {
        pl_relay_client_opts ro = {
            .url = opts->relay_url,
            .seed = seed,
            .project_id = opts->project_id,
            .ca_file = opts->ca_file,
            .on_message = on_relay_message,
            .on_state = on_relay_state,
            .user_data = c,
        };
        e = pl_relay_client_new(&c->relay, loop, &ro);
    }
    pl_wipe(seed, sizeof seed);
    if (e != PL_OK) {
        free_client(c);
        return e;
    }
    pl_wc_config cfg = {.inactive_ttl = opts->inactive_ttl,
                        .active_ttl = opts->active_ttl,
                        .on_event = on_engine_event,
                        .ud = c};
    pl_transport tp = pl_relay_client_transport(c->relay);
    pl_wc_store hooks = pl_store_wc_hooks(c->store);
    e = pl_wc_engine_new(&c->engine, &cfg, &tp, &hooks);
    if (e == PL_OK) e = pl_store_wc_load(c->store, c->engine, pl_wc_client_now_ms(), &c->restored);
    if (e != PL_OK) {
        /* The relay client closes asynchronously; free the rest once it has. */
        pl_relay_client_close(c->relay, NULL);
        c->relay = NULL;
        free_client(c);
        return e;
    }
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    uv_prepare_init(loop, &c->prepare);
    c->prepare.data = c;
    uv_prepare_start(&c->prepare, on_prepare);
    *out = c;
    return PL_OK;
}

pl_wc_engine *pl_wc_client_engine(pl_wc_client *c) {
    PL_REQUIRE(c);
    return c->engine;
}

pl_relay_client *pl_wc_client_relay(pl_wc_client *c) {
    PL_REQUIRE(c);
    return c->relay;
}

size_t pl_wc_client_restored(const pl_wc_client *c) {
    PL_REQUIRE(c);
    return c->restored;
}

static void maybe_done(pl_wc_client *c) {
    if (c->closing_handles > 0) return;
    void (*cb)(void *) = c->on_closed;
    void *ud = c->opts.ud;
    free_client(c);
    if (cb) cb(ud);
}

static void on_handle_closed(uv_handle_t *h) {
    pl_wc_client *c = h->data;
    c->closing_handles--;
    maybe_done(c);
}

static void on_relay_closed(void *ud) {
    pl_wc_client *c = ud;
    c->relay = NULL;
    c->closing_handles--;
    maybe_done(c);
}

void pl_wc_client_close(pl_wc_client *c, void (*on_closed)(void *ud)) {
    PL_REQUIRE(c);
    c->on_closed = on_closed;
    c->closing_handles = 3;
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->prepare, on_handle_closed);
    pl_relay_client_close(c->relay, on_relay_closed);
}
