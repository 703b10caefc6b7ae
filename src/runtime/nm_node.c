/* Node-manager pairing node: see include/pairlink/nm_node.h. */
#include "pairlink/nm_node.h"

#include "core/internal.h"
#include "pairlink/crypto.h"
#include "pairlink/hash.h"
#include "pairlink/nm_store.h"
#include "pairlink/relay_client.h"
#include "pairlink/store.h"
#include "runtime/attach.h"

#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEED_KEY "nm_relay_seed"

struct pl_nm_node {
    pl_nm_node_opts opts;
    char name[PL_NM_NAME_MAX + 1];
    pl_store *store;
    uint8_t priv[PL_NM_KEY_BYTES];
    uint8_t pub[PL_NM_KEY_BYTES];
    pl__attach at; /* driver and transport */
    pl_driver_task task;
    pl_nm_sessions *sess;
    pl_nm_pairing *pairing;
    bool pairing_finished; /* free the engine once its outputs are drained */
    bool learned_new;      /* the peer learned by this pairing was not stored before */
    pl_nm_counterparty learned;
    pl_nm_counterparty *peers; /* cache of the store, for names and last_seen */
    size_t npeers, cap;
    size_t restored;
    bool closing;
};

static int64_t now_of(const pl_nm_node *n) { return pl_driver_now(n->at.d); }

/* ---- counterparty cache ---- */

static pl_nm_counterparty *cache_find(pl_nm_node *n, const uint8_t pub[PL_NM_KEY_BYTES]) {
    for (size_t i = 0; i < n->npeers; i++)
        if (!memcmp(n->peers[i].pub, pub, PL_NM_KEY_BYTES)) return &n->peers[i];
    return NULL;
}

static void cache_put(pl_nm_node *n, const pl_nm_counterparty *c) {
    pl_nm_counterparty *old = cache_find(n, c->pub);
    if (old) {
        *old = *c;
        return;
    }
    if (n->npeers == n->cap) {
        size_t nc = n->cap ? n->cap * 2 : 16;
        pl_nm_counterparty *np = realloc(n->peers, nc * sizeof *np);
        if (!np) return; /* only names are lost from events */
        n->peers = np;
        n->cap = nc;
    }
    n->peers[n->npeers++] = *c;
}

static void cache_remove(pl_nm_node *n, const uint8_t pub[PL_NM_KEY_BYTES]) {
    pl_nm_counterparty *c = cache_find(n, pub);
    if (c) *c = n->peers[--n->npeers];
}

/* ---- events ---- */

static void emit(pl_nm_node *n, pl_nm_node_event *ev) {
    if (n->closing) return;
    if (ev->kind != PL_NM_NODE_TRANSPORT && ev->kind != PL_NM_NODE_PAIR_CODE &&
        ev->kind != PL_NM_NODE_PAIR_FAILED && ev->kind != PL_NM_NODE_PAIR_DROPPED) {
        pl_nm_peer_id(ev->peer_id, ev->peer);
        const pl_nm_counterparty *c = cache_find(n, ev->peer);
        if (c && !ev->name[0]) snprintf(ev->name, sizeof ev->name, "%s", c->name);
    }
    n->opts.on_event(n->opts.ud, n, ev);
}

/* ---- session manager outputs ---- */

static void drain_sessions(pl_nm_node *n) {
    pl_nm_session_output o;
    while (n->sess && pl_nm_sessions_poll(n->sess, &o)) {
        switch (o.kind) {
        case PL_NM_SOUT_SUBSCRIBE: (void)pl_transport_subscribe(n->at.tp, o.topic); break;
        case PL_NM_SOUT_UNSUBSCRIBE: (void)pl_transport_unsubscribe(n->at.tp, o.topic); break;
        case PL_NM_SOUT_PUBLISH: {
            pl_publish_opts po = {.ttl_s = o.ttl_s};
            /* A full queue loses this message; the session layer retries. */
            (void)pl_transport_publish(n->at.tp, o.topic, o.message, o.message_len, &po);
            break;
        }
        case PL_NM_SOUT_EVENT: {
            if (o.event == PL_NM_SEV_ESTABLISHED) {
                pl_nm_counterparty *c = cache_find(n, o.peer);
                int64_t now = now_of(n);
                /* One durable write per peer per minute at most: 1000 peers
                 * coming up together must not mean 1000 fsyncs each time. */
                if (c && (!c->confirmed || now - c->last_seen_ms > 60000) &&
                    pl_nm_store_touch(n->store, o.peer, now) == PL_OK) {
                    c->confirmed = true;
                    c->last_seen_ms = now;
                }
            }
            pl_nm_node_event ev = {.kind = PL_NM_NODE_SESSION, .err = o.err, .session = &o};
            memcpy(ev.peer, o.peer, PL_NM_KEY_BYTES);
            emit(n, &ev);
            break;
        }
        }
        pl_nm_session_output_clear(&o);
    }
}

/* ---- pairing engine outputs ---- */

static void on_peer_learned(pl_nm_node *n, const pl_nm_peer *p, int64_t now) {
    pl_nm_counterparty c = {.role = p->role, .first_seen_ms = now, .last_seen_ms = now};
    memcpy(c.pub, p->identity, PL_NM_KEY_BYTES);
    snprintf(c.name, sizeof c.name, "%s", p->name);
    const pl_nm_counterparty *old = cache_find(n, c.pub);
    n->learned_new = old == NULL;
    if (old) {
        c.first_seen_ms = old->first_seen_ms;
        c.confirmed = old->confirmed;
    }
    /* Seed step 7/9: durably stored before anything the peer could act on. */
    pl_err e = pl_nm_store_put(n->store, &c);
    if (e == PL_OK) {
        cache_put(n, &c);
        n->learned = c;
        pl_nm_node_event ev = {.kind = PL_NM_NODE_PAIR_STORED};
        memcpy(ev.peer, c.pub, PL_NM_KEY_BYTES);
        emit(n, &ev);
    }
    pl_nm_pairing_confirm_persisted(n->pairing, e, now);
}

static void on_completed(pl_nm_node *n, const pl_nm_peer *p, int64_t now) {
    pl_nm_counterparty *c = cache_find(n, p->identity);
    if (c) {
        snprintf(c->fingerprint, sizeof c->fingerprint, "%s", p->fingerprint);
        (void)pl_nm_store_put(n->store, c); /* the fingerprint is informative */
    }
    pl_nm_node_event ev = {.kind = PL_NM_NODE_PAIRED};
    memcpy(ev.peer, p->identity, PL_NM_KEY_BYTES);
    snprintf(ev.fingerprint, sizeof ev.fingerprint, "%s", p->fingerprint);
    emit(n, &ev);
    /* Seed step 10: a session at once (a re-paired peer starts afresh). */
    if (n->sess && !n->closing) {
        (void)pl_nm_sessions_remove_peer(n->sess, p->identity, now);
        (void)pl_nm_sessions_add_peer(n->sess, p->identity, now);
    }
}

static void drain_pairing(pl_nm_node *n) {
    pl_nm_output o;
    while (n->pairing && pl_nm_pairing_poll(n->pairing, &o)) {
        int64_t now = now_of(n);
        switch (o.kind) {
        case PL_NM_OUT_SUBSCRIBE: (void)pl_transport_subscribe(n->at.tp, o.content_topic); break;
        case PL_NM_OUT_UNSUBSCRIBE: (void)pl_transport_unsubscribe(n->at.tp, o.content_topic); break;
        case PL_NM_OUT_PUBLISH: {
            pl_publish_opts po = {.ttl_s = PL_NM_RELAY_TTL_S};
            (void)pl_transport_publish(n->at.tp, o.content_topic, o.payload, o.payload_len, &po);
            break;
        }
        case PL_NM_OUT_EVENT:
            switch (o.event) {
            case PL_NM_EV_PEER_LEARNED: on_peer_learned(n, &o.peer, now); break;
            case PL_NM_EV_COMPLETED: on_completed(n, &o.peer, now); break;
            case PL_NM_EV_FAILED: {
                /* A peer stored by this pairing that never completed is
                 * forgotten (the seed's "fully recorded or absent"). */
                if (n->learned_new && cache_find(n, n->learned.pub)) {
                    (void)pl_nm_store_remove(n->store, n->learned.pub);
                    cache_remove(n, n->learned.pub);
                }
                pl_nm_node_event ev = {.kind = PL_NM_NODE_PAIR_FAILED, .err = o.err};
                emit(n, &ev);
                break;
            }
            case PL_NM_EV_DROPPED: {
                pl_nm_node_event ev = {.kind = PL_NM_NODE_PAIR_DROPPED, .err = o.err,
                                       .reason = o.reason};
                if (o.has_peer) memcpy(ev.peer, o.peer.identity, PL_NM_KEY_BYTES);
                emit(n, &ev);
                break;
            }
            case PL_NM_EV_REANSWERED: break;
            }
            break;
        }
    }
    if (n->pairing) {
        pl_nm_state st = pl_nm_pairing_state(n->pairing);
        if (st == PL_NM_ST_DONE || st == PL_NM_ST_FAILED) {
            pl_nm_pairing_free(n->pairing);
            n->pairing = NULL;
            n->learned_new = false;
        }
    }
}

static void drain(pl_nm_node *n) {
    drain_pairing(n);
    drain_sessions(n);
}

/* ---- the driver task and the transport handler ---- */

static int64_t task_deadline(pl_driver_task *t) {
    const pl_nm_node *n = t->data;
    int64_t d = n->sess ? pl_nm_sessions_next_deadline(n->sess) : INT64_MAX;
    if (n->pairing) {
        int64_t p = pl_nm_pairing_next_deadline(n->pairing);
        if (p < d) d = p;
    }
    return d;
}

static void task_timer(pl_driver_task *t, int64_t now) {
    pl_nm_node *n = t->data;
    if (n->pairing) pl_nm_pairing_on_timer(n->pairing, now);
    if (n->sess) pl_nm_sessions_on_timer(n->sess, now);
    drain(n);
}

/* Before the driver waits: whatever API calls the application made since. */
static void task_before_wait(pl_driver_task *t, int64_t now) {
    (void)now;
    drain(t->data);
}

static void on_message(void *ud, pl_transport *t, const char *topic, const uint8_t *data,
                       size_t len, const pl_delivery_info *info) {
    (void)t;
    pl_nm_node *n = ud;
    if (n->closing) return;
    int64_t now = now_of(n);
    bool pairing = n->pairing && !strcmp(topic, pl_nm_pairing_topic(n->pairing));
    if (pairing && info->err) (void)pl_nm_pairing_on_bad_delivery(n->pairing, info->err, now);
    else if (pairing) (void)pl_nm_pairing_on_message(n->pairing, data, len, now);
    else if (n->sess && info->err) (void)pl_nm_sessions_on_bad_delivery(n->sess, topic, info->err, now);
    else if (n->sess) (void)pl_nm_sessions_on_message(n->sess, topic, data, len, now);
    drain(n);
}

static void on_state(void *ud, pl_transport *t, pl_transport_state state, pl_err err) {
    (void)t;
    pl_nm_node *n = ud;
    pl_nm_node_event ev = {.kind = PL_NM_NODE_TRANSPORT, .transport_state = state, .err = err};
    emit(n, &ev);
}

static void release(void *owner) {
    pl_nm_node *n = owner;
    pl_nm_pairing_free(n->pairing);
    pl_nm_sessions_free(n->sess);
    pl_store_close(n->store);
    free(n->peers);
    sodium_memzero(n, sizeof *n);
    free(n);
}

pl_err pl_nm_node_new(pl_nm_node **out, uv_loop_t *loop, const pl_nm_node_opts *opts) {
    PL_REQUIRE(out && opts && (opts->relay_url || opts->transport) && opts->store_path &&
               opts->on_event && (loop || opts->driver));
    *out = NULL;
    if (opts->role != PL_NM_ROLE_APP && opts->role != PL_NM_ROLE_NODE_MANAGER) return PL_ERR_INVALID_ARG;
    if (opts->name && strlen(opts->name) > PL_NM_NAME_MAX) return PL_ERR_TOO_LARGE;
    if (opts->code_ttl_ms < 0 || opts->code_ttl_ms > PL_NM_CODE_TTL_MS) return PL_ERR_INVALID_ARG;
    pl_nm_node *n = calloc(1, sizeof *n);
    if (!n) return PL_ERR_NOMEM;
    n->opts = *opts;
    snprintf(n->name, sizeof n->name, "%s", opts->name ? opts->name : "");
    n->opts.name = n->name;
    n->opts.relay_url = NULL; /* not kept */
    n->opts.store_path = NULL;

    uint8_t seed[PL_ED25519_SEED_BYTES] = {0};
    pl_err e = pl__attach_driver(&n->at, loop, opts->driver);
    if (e == PL_OK) e = pl_store_open(&n->store, opts->store_path);
    if (e == PL_OK) e = pl_nm_store_init(n->store);
    if (e == PL_OK) e = pl_nm_store_identity(opts->store_path, n->priv, n->pub, NULL);
    if (e == PL_OK && !opts->transport) e = pl_store_secret(n->store, SEED_KEY, seed, PL_ED25519_SEED_BYTES);
    pl_nm_counterparty *all = NULL;
    size_t nall = 0;
    if (e == PL_OK) e = pl_nm_store_list(n->store, &all, &nall);
    for (size_t i = 0; e == PL_OK && i < nall; i++) cache_put(n, &all[i]);
    free(all);
    if (e == PL_OK) {
        pl_nm_sessions_config sc = opts->session_cfg;
        sc.role = opts->role;
        sc.static_priv = n->priv;
        e = pl_nm_sessions_new(&n->sess, &sc, now_of(n));
    }
    if (e == PL_OK) {
        pl_transport_handler h = {on_message, on_state, n};
        pl_relay_client_opts ro = {
            .url = opts->relay_url,
            .seed = seed,
            .project_id = opts->project_id,
            /* two topics per counterparty (rendezvous, session), the pairing's */
            .max_topics = 2 * PL_NM_SESSION_MAX_PEERS + 16,
            /* a start-up with many counterparties publishes one handshake each */
            .max_queue = PL_NM_SESSION_MAX_PEERS + 1024,
        };
        e = pl__attach_transport(&n->at, opts->transport, &h, &ro);
    }
    pl_wipe(seed, sizeof seed);
    if (e != PL_OK) {
        n->closing = true;
        pl__attach_abandon(&n->at, release, n);
        return e;
    }
    /* Seed step 11: every stored counterparty at once. Subscriptions made
     * before the transport connects are sent on connect. */
    if (opts->sessions) {
        int64_t now = now_of(n);
        for (size_t i = 0; i < n->npeers; i++) {
            pl_nm_role want = opts->role == PL_NM_ROLE_APP ? PL_NM_ROLE_NODE_MANAGER : PL_NM_ROLE_APP;
            if (n->peers[i].role != want) continue;
            if (pl_nm_sessions_add_peer(n->sess, n->peers[i].pub, now) == PL_OK) n->restored++;
        }
    }
    n->task.data = n;
    n->task.next_deadline = task_deadline;
    n->task.on_timer = task_timer;
    n->task.before_wait = task_before_wait;
    pl_driver_start(n->at.d, &n->task);
    *out = n;
    return PL_OK;
}

pl_err pl_nm_node_pair(pl_nm_node *n, const char *code, char code_out[PL_NM_CODE_TEXT_SIZE]) {
    PL_REQUIRE(n && !n->closing);
    if (code_out) code_out[0] = '\0';
    if (n->pairing) return PL_ERR_STATE;
    bool app = n->opts.role == PL_NM_ROLE_APP;
    if (app == (code != NULL)) return PL_ERR_INVALID_ARG;
    uint8_t p[PL_NM_CODE_BYTES];
    char text[PL_NM_CODE_TEXT_SIZE];
    if (app) {
        pl_nm_code_generate(p);
    } else {
        PL_TRY(pl_nm_code_parse(p, code, strlen(code)));
    }
    pl_nm_code_format(text, p);
    pl_nm_secrets sec;
    pl_err e = pl_nm_derive(&sec, p, n->opts.kdf);
    sodium_memzero(p, sizeof p);
    int64_t now = now_of(n);
    if (e == PL_OK) {
        pl_nm_pairing_config cfg = {
            .role = n->opts.role,
            .name = n->name,
            .secrets = &sec,
            .expires_at_ms = n->opts.code_ttl_ms ? now + n->opts.code_ttl_ms : 0,
        };
        memcpy(cfg.identity_pub, n->pub, PL_NM_KEY_BYTES);
        e = pl_nm_pairing_new(&n->pairing, &cfg, now);
    }
    pl_nm_secrets_wipe(&sec);
    if (e != PL_OK) {
        sodium_memzero(text, sizeof text);
        return e;
    }
    n->learned_new = false;
    if (app) {
        if (code_out) memcpy(code_out, text, PL_NM_CODE_TEXT_SIZE);
        pl_nm_node_event ev = {.kind = PL_NM_NODE_PAIR_CODE};
        memcpy(ev.code, text, sizeof text);
        emit(n, &ev);
    }
    sodium_memzero(text, sizeof text);
    drain(n);
    return PL_OK;
}

void pl_nm_node_pair_cancel(pl_nm_node *n) {
    PL_REQUIRE(n);
    if (!n->pairing) return;
    pl_nm_pairing_cancel(n->pairing);
    drain(n);
}

pl_err pl_nm_node_connect(pl_nm_node *n, const uint8_t peer[PL_NM_KEY_BYTES]) {
    PL_REQUIRE(n && peer && !n->closing);
    const pl_nm_counterparty *c = cache_find(n, peer);
    if (!c) return PL_ERR_NOT_FOUND;
    if (c->role == n->opts.role) return PL_ERR_HELLO_ROLE;
    pl_err e = pl_nm_sessions_add_peer(n->sess, peer, now_of(n));
    drain_sessions(n);
    return e == PL_ERR_EXISTS ? PL_OK : e;
}

pl_transport *pl_nm_node_transport(pl_nm_node *n) {
    PL_REQUIRE(n);
    return n->at.tp;
}

pl_driver *pl_nm_node_driver(pl_nm_node *n) {
    PL_REQUIRE(n);
    return n->at.d;
}

pl_err pl_nm_node_request(pl_nm_node *n, const uint8_t peer[PL_NM_KEY_BYTES], const uint8_t *body,
                          size_t len, uint64_t *id) {
    PL_REQUIRE(n && peer && !n->closing);
    pl_err e = pl_nm_sessions_request(n->sess, peer, body, len, now_of(n), id);
    drain_sessions(n);
    return e;
}

pl_err pl_nm_node_respond(pl_nm_node *n, const uint8_t peer[PL_NM_KEY_BYTES], uint64_t id,
                          const uint8_t *body, size_t len) {
    PL_REQUIRE(n && peer && !n->closing);
    pl_err e = pl_nm_sessions_respond(n->sess, peer, id, body, len, now_of(n));
    drain_sessions(n);
    return e;
}

pl_err pl_nm_node_remove_peer(pl_nm_node *n, const uint8_t peer[PL_NM_KEY_BYTES]) {
    PL_REQUIRE(n && peer && !n->closing);
    pl_err e = pl_nm_store_remove(n->store, peer);
    pl_err e2 = pl_nm_sessions_remove_peer(n->sess, peer, now_of(n));
    cache_remove(n, peer);
    drain_sessions(n);
    if (e == PL_ERR_NOT_FOUND && e2 == PL_OK) e = PL_OK;
    return e;
}

void pl_nm_node_identity(const pl_nm_node *n, uint8_t pub[PL_NM_KEY_BYTES]) {
    PL_REQUIRE(n && pub);
    memcpy(pub, n->pub, PL_NM_KEY_BYTES);
}

const pl_nm_sessions *pl_nm_node_sessions(const pl_nm_node *n) {
    PL_REQUIRE(n);
    return n->sess;
}

size_t pl_nm_node_restored(const pl_nm_node *n) {
    PL_REQUIRE(n);
    return n->restored;
}

void pl_nm_node_close(pl_nm_node *n, int64_t flush_ms, void (*on_closed)(void *ud)) {
    PL_REQUIRE(n && !n->closing && flush_ms >= 0);
    n->closing = true;
    pl_driver_stop(&n->task);
    pl__attach_close(&n->at, flush_ms, release, n, on_closed, n->opts.ud);
}
