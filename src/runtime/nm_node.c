/* SPDX-License-Identifier: Apache-2.0 */
/* Node-manager pairing node: see include/pairlink/nm_node.h. Glue only:
 * the core (src/nm/node_core.h) decides; this file opens the files, gives
 * the core its store hooks, and runs it on a driver and a transport. */
#include "pairlink/nm_node.h"

#include "core/internal.h"
#include "nm/node_core.h"
#include "pairlink/crypto.h"
#include "pairlink/hash.h"
#include "pairlink/nm_store.h"
#include "pairlink/relay_client.h"
#include "pairlink/store.h"
#include "runtime/attach.h"
#include "store/store_internal.h"

#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEED_KEY "nm_relay_seed"

/* A key derivation on the thread pool. Its own allocation: a node closed
 * meanwhile leaves it orphaned (node NULL), and it frees itself. */
typedef struct kdf_work {
    uv_work_t req;
    pl_nm_node *node;
    uint8_t p[PL_NM_CODE_BYTES];
    pl_nm_kdf_params kdf;
    bool has_kdf;
    pl_nm_secrets sec;
    pl_err err;
} kdf_work;

struct pl_nm_node {
    pl_nm_node_opts opts;
    pl_nm_kdf_params kdf; /* opts.kdf, copied */
    kdf_work *work;       /* a derivation under way */
    uv_timer_t *poll;     /* store watch (heap: freed by its close callback) */
    int64_t data_version;
    pl_store *store;
    uint8_t pub[PL_NM_KEY_BYTES];
    pl__attach at; /* driver and transport */
    pl_driver_task task;
    pl__nmn *core;
    bool closing, held;
};

static int64_t now_of(const pl_nm_node *n) {
    return pl_driver_now(n->at.d);
}

/* ---- group commit ----
 * The turn's writes in one transaction (store_internal.h); what the core
 * sent meanwhile waits in the held transport until it is committed. A
 * failed commit keeps the transport held (those messages may depend on the
 * lost writes) and makes every later write fail. */
static void hold_transport(void *ud) {
    pl_nm_node *n = ud;
    pl_transport_hold(n->at.tp);
    n->held = true;
}

static pl_err commit_turn(pl_nm_node *n, bool last) {
    pl_err e = last ? pl__store_unbatch(n->store) : pl__store_commit(n->store);
    if (e == PL_OK && n->held) {
        n->held = false;
        pl_transport_release(n->at.tp);
    }
    return e;
}

/* ---- the core's store hooks ----
 * A counterparty stored or forgotten is committed at once: rare, and
 * PAIR_STORED promises "durably stored"; the touch of an established
 * session (one per counterparty at start-up) waits for the turn's commit. */

static pl_err st_put(void *ctx, const pl_nm_counterparty *c) {
    pl_nm_node *n = ctx;
    pl_err e = pl_nm_store_put(n->store, c);
    return e != PL_OK ? e : commit_turn(n, false);
}

static pl_err st_touch(void *ctx, const uint8_t pub[PL_NM_KEY_BYTES], int64_t now_ms) {
    return pl_nm_store_touch(((pl_nm_node *)ctx)->store, pub, now_ms);
}

static pl_err st_remove(void *ctx, const uint8_t pub[PL_NM_KEY_BYTES]) {
    pl_nm_node *n = ctx;
    pl_err e = pl_nm_store_remove(n->store, pub);
    return e != PL_OK ? e : commit_turn(n, false);
}

static void on_core_event(void *ud, pl_nm_node_event *ev) {
    pl_nm_node *n = ud;
    if (!n->closing) n->opts.on_event(n->opts.ud, n, ev);
}

/* ---- the driver task and the transport handler ---- */

static int64_t task_deadline(pl_driver_task *t) {
    return pl__nmn_next_deadline(((pl_nm_node *)t->data)->core);
}

static void task_timer(pl_driver_task *t, int64_t now) {
    pl__nmn_on_timer(((pl_nm_node *)t->data)->core, now);
}

/* Before the driver waits: whatever API calls the application made since,
 * then the turn's commit. */
static void task_before_wait(pl_driver_task *t, int64_t now) {
    pl_nm_node *n = t->data;
    pl__nmn_drain(n->core, now);
    (void)commit_turn(n, false);
}

static void on_message(void *ud, pl_transport *t, const char *topic, const uint8_t *data,
                       size_t len, const pl_delivery_info *info) {
    (void)t;
    pl_nm_node *n = ud;
    pl__nmn_on_message(n->core, topic, data, len, info, now_of(n));
}

static void on_state(void *ud, pl_transport *t, pl_transport_state state, pl_err err) {
    (void)t;
    pl_nm_node *n = ud;
    pl__nmn_on_state(n->core, state, err);
}

static void on_publish_error(void *ud, pl_transport *t, const char *topic, pl_err err,
                             int64_t code) {
    (void)t;
    pl__nmn_on_publish_error(((pl_nm_node *)ud)->core, topic, err, code);
}

/* ---- the store, changed by other processes ----
 * SQLite's data_version changes when another connection committed: then
 * the counterparties are read again and the core compares (a `pair` or
 * `peers remove` beside a daemon). A control socket would tell at once,
 * but needs a protocol, permissions and a peer to be running; a read of one
 * pragma a second costs nothing and sees every writer. */

static pl_err read_data_version(pl_nm_node *n, int64_t *v) {
    sqlite3_stmt *st = NULL;
    *v = 0;
    if (sqlite3_prepare_v2(pl__store_db(n->store), "PRAGMA data_version", -1, &st, NULL) !=
        SQLITE_OK)
        return PL_ERR_STORE;
    pl_err e = sqlite3_step(st) == SQLITE_ROW ? PL_OK : PL_ERR_STORE;
    if (e == PL_OK) *v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return e;
}

pl_err pl_nm_node_check_store(pl_nm_node *n) {
    PL_REQUIRE(n && !n->closing);
    /* what this turn wrote first: a read inside our own open transaction
     * would not see the others' commits */
    PL_TRY(commit_turn(n, false));
    int64_t v;
    PL_TRY(read_data_version(n, &v));
    if (v == n->data_version) return PL_OK;
    n->data_version = v;
    pl_nm_counterparty *all = NULL;
    size_t nall = 0;
    PL_TRY(pl_nm_store_list(n->store, &all, &nall));
    pl__nmn_sync(n->core, all, nall, now_of(n));
    pl_free(all);
    return PL_OK;
}

static void on_poll(uv_timer_t *t) {
    pl_nm_node *n = t->data;
    if (n && !n->closing) (void)pl_nm_node_check_store(n);
}

static void start_watch(pl_nm_node *n) {
    uv_loop_t *loop = pl_driver_loop(n->at.d);
    (void)read_data_version(n, &n->data_version);
    if (!loop || n->opts.store_poll_ms < 0) return;
    int64_t every = n->opts.store_poll_ms ? n->opts.store_poll_ms : 1000;
    n->poll = malloc(sizeof *n->poll);
    if (!n->poll) return; /* no watch: the store is read at the next start */
    uv_timer_init(loop, n->poll);
    n->poll->data = n;
    uv_timer_start(n->poll, on_poll, (uint64_t)every, (uint64_t)every);
    uv_unref((uv_handle_t *)n->poll); /* never what keeps a loop alive */
}

static void free_handle(uv_handle_t *h) {
    free(h);
}

/* ---- the key derivation on the thread pool ---- */

static void kdf_run(uv_work_t *req) {
    kdf_work *w = req->data;
    w->err = pl_nm_derive(&w->sec, w->p, w->has_kdf ? &w->kdf : NULL);
}

static void kdf_done(uv_work_t *req, int status) {
    kdf_work *w = req->data;
    pl_nm_node *n = w->node;
    if (n) {
        n->work = NULL;
        pl_err e = status == UV_ECANCELED ? PL_ERR_CANCELLED : w->err;
        pl__nmn_pair_derived(n->core, e == PL_OK ? &w->sec : NULL, e, now_of(n));
    }
    pl_nm_secrets_wipe(&w->sec);
    sodium_memzero(w, sizeof *w);
    free(w);
}

/* ---- start and close ---- */

static void release(void *owner) {
    pl_nm_node *n = owner;
    pl__nmn_free(n->core);
    pl_store_close(n->store);
    sodium_memzero(n, sizeof *n);
    free(n);
}

/* A Waku transport of the node's own, its identity beside the store. */
static pl_err open_waku(pl_nm_node *n, const pl_nm_node_opts *opts, const pl_transport_handler *h) {
    pl_waku_transport_opts wo = *opts->waku;
    wo.handler = *h;
    char *path = NULL;
    if (!wo.node.key && !wo.key_file && strcmp(opts->store_path, ":memory:") != 0) {
        size_t len = strlen(opts->store_path) + sizeof ".p2p.key";
        path = malloc(len);
        if (!path) return PL_ERR_NOMEM;
        snprintf(path, len, "%s.p2p.key", opts->store_path);
        wo.key_file = path;
    }
    /* two content topics per counterparty (rendezvous, session) and the
     * pairing's; one handshake message per counterparty at start-up */
    if (!wo.node.max_content_topics) wo.node.max_content_topics = 2 * PL_NM_SESSION_MAX_PEERS + 16;
    if (!wo.node.publish_queue_max) wo.node.publish_queue_max = PL_NM_SESSION_MAX_PEERS + 1024;
    /* Listen once the transport is ours: a failure then closes it with the
     * rest (pl__attach_abandon), never leaving a node closing on a driver
     * that is being freed. */
    wo.listen = NULL;
    wo.n_listen = 0;
    pl_transport *tp = NULL;
    pl_err e = pl_waku_transport_new(&tp, n->at.d, &wo);
    free(path);
    if (e != PL_OK) return e;
    pl__attach_adopt(&n->at, tp);
    if (opts->waku->n_listen > 8) return PL_ERR_INVALID_ARG;
    for (size_t i = 0; e == PL_OK && i < opts->waku->n_listen; i++)
        e = pl_waku_node_listen(pl_waku_transport_node(tp), opts->waku->listen[i]);
    return e;
}

/* The transport (given, a Waku transport, or a relay client with the
 * identity kept in the store). */
static pl_err open_transport(pl_nm_node *n, const pl_nm_node_opts *opts) {
    pl_transport_handler h = {on_message, on_state, n, on_publish_error};
    if (opts->transport) return pl__attach_transport(&n->at, opts->transport, &h, NULL);
    if (opts->waku) return open_waku(n, opts, &h);
    uint8_t seed[PL_ED25519_SEED_BYTES];
    pl_err e = pl_store_secret(n->store, SEED_KEY, seed, PL_ED25519_SEED_BYTES);
    if (e == PL_OK) {
        pl_relay_client_opts ro = {
            .url = opts->relay_url,
            .seed = seed,
            .project_id = opts->project_id,
            /* two topics per counterparty (rendezvous, session), the pairing's */
            .max_topics = 2 * PL_NM_SESSION_MAX_PEERS + 16,
            /* A start-up with many counterparties publishes two handshake
             * messages to each before the relay has taken them all: room for
             * every one, so that none is lost to a full queue (the relay
             * client batches them and paces to the relay's allowance). */
            .max_queue = 2 * PL_NM_SESSION_MAX_PEERS + 1024,
        };
        e = pl__attach_transport(&n->at, NULL, &h, &ro);
    }
    pl_wipe(seed, sizeof seed);
    return e;
}

/* The store, the identity, the transport, then the core with the stored
 * counterparties. */
static pl_err open_all(pl_nm_node *n, const pl_nm_node_opts *opts) {
    uint8_t priv[PL_NM_KEY_BYTES];
    pl_nm_counterparty *all = NULL;
    size_t nall = 0;
    pl_err e = pl_store_open(&n->store, opts->store_path);
    if (e == PL_OK) e = pl_nm_store_init(n->store);
    if (e == PL_OK) e = pl_nm_store_identity(opts->store_path, priv, n->pub, NULL);
    if (e == PL_OK) e = pl_nm_store_list(n->store, &all, &nall);
    if (e == PL_OK) e = open_transport(n, opts);
    if (e == PL_OK) {
        pl__nmn_config cfg = {
            .role = opts->role,
            .priv = priv,
            .pub = n->pub,
            .name = opts->name,
            .sessions = opts->sessions,
            .code_ttl_ms = opts->code_ttl_ms,
            .kdf = opts->kdf ? &n->kdf : NULL,
            .pair_no_session = opts->pair_no_session,
            .verify = opts->verify,
            .session_cfg = opts->session_cfg,
            .peers = all,
            .npeers = nall,
            .store = {n, st_put, st_touch, st_remove},
            .tp = n->at.tp,
            .on_event = on_core_event,
            .ud = n,
        };
        e = pl__nmn_new(&n->core, &cfg, now_of(n));
    }
    pl_free(all);
    pl_wipe(priv, sizeof priv);
    return e;
}

pl_err pl_nm_node_new(pl_nm_node **out, uv_loop_t *loop, const pl_nm_node_opts *opts) {
    PL_REQUIRE(out && opts && (opts->relay_url || opts->transport || opts->waku) &&
               opts->store_path && opts->on_event && (loop || opts->driver));
    *out = NULL;
    if (opts->role != PL_NM_ROLE_APP && opts->role != PL_NM_ROLE_NODE_MANAGER)
        return PL_ERR_INVALID_ARG;
    if (opts->name && strlen(opts->name) > PL_NM_NAME_MAX) return PL_ERR_TOO_LARGE;
    if (opts->code_ttl_ms < 0 || opts->code_ttl_ms > PL_NM_CODE_TTL_MS) return PL_ERR_INVALID_ARG;
    pl_nm_node *n = calloc(1, sizeof *n);
    if (!n) return PL_ERR_NOMEM;
    n->opts = *opts;
    if (opts->kdf) n->kdf = *opts->kdf;
    n->opts.kdf = opts->kdf ? &n->kdf : NULL;
    n->opts.name = NULL; /* none kept: the core has its copy */
    n->opts.relay_url = NULL;
    n->opts.store_path = NULL;
    n->opts.waku = NULL;
    pl_err e = pl__attach_driver(&n->at, loop, opts->driver);
    if (e == PL_OK) e = open_all(n, opts);
    if (e != PL_OK) {
        n->closing = true;
        pl__attach_abandon(&n->at, release, n);
        return e;
    }
    /* One transaction per loop turn, if the transport can hold what
     * depends on it. */
    if (pl_transport_can_hold(n->at.tp)) pl__store_batch(n->store, hold_transport, n);
    n->task.data = n;
    n->task.next_deadline = task_deadline;
    n->task.on_timer = task_timer;
    n->task.before_wait = task_before_wait;
    pl_driver_start(n->at.d, &n->task);
    start_watch(n);
    *out = n;
    return PL_OK;
}

void pl_nm_node_close(pl_nm_node *n, int64_t flush_ms, void (*on_closed)(void *ud)) {
    PL_REQUIRE(n && !n->closing && flush_ms >= 0);
    n->closing = true;
    if (n->work) {
        n->work->node = NULL; /* it finishes on its own */
        (void)uv_cancel((uv_req_t *)&n->work->req);
        n->work = NULL;
    }
    if (n->poll) {
        n->poll->data = NULL;
        uv_timer_stop(n->poll);
        uv_close((uv_handle_t *)n->poll, free_handle);
        n->poll = NULL;
    }
    pl__nmn_silence(n->core);
    /* before the flush: the last messages may wait for it; what the close
     * itself writes is committed at once */
    (void)commit_turn(n, true);
    pl_driver_stop(&n->task);
    pl__attach_close(&n->at, flush_ms, release, n, on_closed, n->opts.ud);
}

/* ---- operations: the core's, with the driver's time ---- */

pl_err pl_nm_node_pair(pl_nm_node *n, const char *code, char code_out[PL_NM_CODE_TEXT_SIZE]) {
    PL_REQUIRE(n && !n->closing);
    uv_loop_t *loop = pl_driver_loop(n->at.d);
    if (!loop) return pl__nmn_pair(n->core, code, code_out, now_of(n));
    /* Argon2id takes ~0.4 s: on the thread pool, not on the loop */
    kdf_work *w = calloc(1, sizeof *w);
    if (!w) return PL_ERR_NOMEM;
    pl_err e = pl__nmn_pair_begin(n->core, code, w->p, code_out, now_of(n));
    if (e != PL_OK) {
        free(w);
        return e;
    }
    w->node = n;
    w->req.data = w;
    w->has_kdf = n->opts.kdf != NULL;
    if (w->has_kdf) w->kdf = n->kdf;
    if (uv_queue_work(loop, &w->req, kdf_run, kdf_done) != 0) {
        /* no thread pool: derive here */
        kdf_run(&w->req);
        kdf_done(&w->req, 0);
        return PL_OK;
    }
    n->work = w;
    return PL_OK;
}

pl_err pl_nm_node_pair_verify(pl_nm_node *n, bool match) {
    PL_REQUIRE(n && !n->closing);
    return pl__nmn_pair_verify(n->core, match, now_of(n));
}

pl_err pl_nm_node_revoke(pl_nm_node *n, const uint8_t peer[PL_NM_KEY_BYTES]) {
    PL_REQUIRE(n && peer && !n->closing);
    return pl__nmn_revoke(n->core, peer, now_of(n));
}

void pl_nm_node_pair_cancel(pl_nm_node *n) {
    PL_REQUIRE(n);
    if (!n->closing) pl__nmn_pair_cancel(n->core, now_of(n));
}

pl_err pl_nm_node_connect(pl_nm_node *n, const uint8_t peer[PL_NM_KEY_BYTES]) {
    PL_REQUIRE(n && peer && !n->closing);
    return pl__nmn_connect(n->core, peer, now_of(n));
}

pl_err pl_nm_node_request(pl_nm_node *n, const uint8_t peer[PL_NM_KEY_BYTES], const uint8_t *body,
                          size_t len, uint64_t *id) {
    PL_REQUIRE(n && peer && !n->closing);
    return pl__nmn_request(n->core, peer, body, len, now_of(n), id);
}

pl_err pl_nm_node_respond(pl_nm_node *n, const uint8_t peer[PL_NM_KEY_BYTES], uint64_t id,
                          const uint8_t *body, size_t len) {
    PL_REQUIRE(n && peer && !n->closing);
    return pl__nmn_respond(n->core, peer, id, body, len, now_of(n));
}

pl_err pl_nm_node_remove_peer(pl_nm_node *n, const uint8_t peer[PL_NM_KEY_BYTES]) {
    PL_REQUIRE(n && peer && !n->closing);
    return pl__nmn_remove_peer(n->core, peer, now_of(n));
}

void pl_nm_node_identity(const pl_nm_node *n, uint8_t pub[PL_NM_KEY_BYTES]) {
    PL_REQUIRE(n && pub);
    memcpy(pub, n->pub, PL_NM_KEY_BYTES);
}

const pl_nm_sessions *pl_nm_node_sessions(const pl_nm_node *n) {
    PL_REQUIRE(n);
    return pl__nmn_sessions(n->core);
}

size_t pl_nm_node_restored(const pl_nm_node *n) {
    PL_REQUIRE(n);
    return pl__nmn_restored(n->core);
}

pl_transport *pl_nm_node_transport(pl_nm_node *n) {
    PL_REQUIRE(n);
    return n->at.tp;
}

pl_driver *pl_nm_node_driver(pl_nm_node *n) {
    PL_REQUIRE(n);
    return n->at.d;
}
