/* Node-manager pairing node on a libuv loop: see include/pairlink/nm_node.h.
 * The only place that reads the clock for the pairing engine and the session
 * manager, and owns their timer. */
#include "pairlink/nm_node.h"

#include "core/internal.h"
#include "pairlink/crypto.h"
#include "pairlink/hash.h"
#include "pairlink/nm_store.h"
#include "pairlink/store.h"

#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SEED_KEY "nm_relay_seed"

struct pl_nm_node {
    uv_loop_t *loop;
    pl_nm_node_opts opts;
    char name[PL_NM_NAME_MAX + 1];
    pl_store *store;
    uint8_t priv[PL_NM_KEY_BYTES];
    uint8_t pub[PL_NM_KEY_BYTES];
    pl_relay_client *relay;
    /* The cores' subscribe/publish go through the transport interface: the
     * relay client today, any other pub/sub transport (Waku) tomorrow. */
    pl_transport tp;
    pl_nm_sessions *sess;
    pl_nm_pairing *pairing;
    bool pairing_finished; /* free the engine once its outputs are drained */
    bool learned_new;      /* the peer learned by this pairing was not stored before */
    pl_nm_counterparty learned;
    pl_nm_counterparty *peers; /* cache of the store, for names and last_seen */
    size_t npeers, cap;
    uv_timer_t timer;
    uv_prepare_t prepare;
    int64_t armed_for;
    size_t restored;
    bool closing;
    int closing_handles;
    void (*on_closed)(void *ud);
};

int64_t pl_nm_node_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

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
    if (ev->kind != PL_NM_NODE_RELAY && ev->kind != PL_NM_NODE_PAIR_CODE &&
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
        case PL_NM_SOUT_SUBSCRIBE: (void)n->tp.subscribe(n->tp.ctx, o.relay_topic); break;
        case PL_NM_SOUT_UNSUBSCRIBE: (void)n->tp.unsubscribe(n->tp.ctx, o.relay_topic); break;
        case PL_NM_SOUT_PUBLISH: {
            pl_publish_opts po = {.ttl = o.ttl_s};
            /* A full queue loses this message; the session layer retries. */
            (void)n->tp.publish(n->tp.ctx, o.relay_topic, o.message, &po);
            break;
        }
        case PL_NM_SOUT_EVENT: {
            if (o.event == PL_NM_SEV_ESTABLISHED) {
                pl_nm_counterparty *c = cache_find(n, o.peer);
                int64_t now = pl_nm_node_now_ms();
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
        int64_t now = pl_nm_node_now_ms();
        switch (o.kind) {
        case PL_NM_OUT_SUBSCRIBE: (void)n->tp.subscribe(n->tp.ctx, o.relay_topic); break;
        case PL_NM_OUT_UNSUBSCRIBE: (void)n->tp.unsubscribe(n->tp.ctx, o.relay_topic); break;
        case PL_NM_OUT_PUBLISH: {
            pl_publish_opts po = {.ttl = PL_NM_RELAY_TTL_S};
            (void)n->tp.publish(n->tp.ctx, o.relay_topic, o.payload_b64, &po);
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

/* ---- loop plumbing ---- */

static int64_t next_deadline(const pl_nm_node *n) {
    int64_t d = n->sess ? pl_nm_sessions_next_deadline(n->sess) : INT64_MAX;
    if (n->pairing) {
        int64_t p = pl_nm_pairing_next_deadline(n->pairing);
        if (p < d) d = p;
    }
    return d;
}

static void on_timer(uv_timer_t *t) {
    pl_nm_node *n = t->data;
    n->armed_for = INT64_MAX;
    int64_t now = pl_nm_node_now_ms();
    if (n->pairing) pl_nm_pairing_on_timer(n->pairing, now);
    if (n->sess) pl_nm_sessions_on_timer(n->sess, now);
    drain(n);
}

/* Before the loop waits: make the timer match the cores' next deadline,
 * whatever API calls the application made since. */
static void on_prepare(uv_prepare_t *p) {
    pl_nm_node *n = p->data;
    if (n->closing) return;
    drain(n);
    int64_t d = next_deadline(n);
    if (d == n->armed_for) return;
    n->armed_for = d;
    if (d == INT64_MAX) {
        uv_timer_stop(&n->timer);
        return;
    }
    int64_t wait = d - pl_nm_node_now_ms();
    if (wait < 0) wait = 0;
    uv_timer_start(&n->timer, on_timer, (uint64_t)wait, 0);
}

static void on_relay_message(void *ud, const char *topic, const char *message, size_t len,
                             int64_t published_at_ms, uint32_t tag) {
    (void)published_at_ms, (void)tag;
    pl_nm_node *n = ud;
    if (n->closing) return;
    int64_t now = pl_nm_node_now_ms();
    if (n->pairing && !strcmp(topic, pl_nm_pairing_topic(n->pairing, true)))
        (void)pl_nm_pairing_on_relay_message(n->pairing, message, len, now);
    else if (n->sess)
        (void)pl_nm_sessions_on_relay_message(n->sess, topic, message, len, now);
    drain(n);
}

static void on_relay_state(void *ud, pl_relay_state state, pl_err err) {
    pl_nm_node *n = ud;
    pl_nm_node_event ev = {.kind = PL_NM_NODE_RELAY, .relay_state = state, .err = err};
    emit(n, &ev);
}


static void free_node(pl_nm_node *n) {
    pl_nm_pairing_free(n->pairing);
    pl_nm_sessions_free(n->sess);
    pl_store_close(n->store);
    free(n->peers);
    sodium_memzero(n, sizeof *n);
    free(n);
}

pl_err pl_nm_node_new(pl_nm_node **out, uv_loop_t *loop, const pl_nm_node_opts *opts) {
    PL_REQUIRE(out && loop && opts && opts->relay_url && opts->store_path && opts->on_event);
    *out = NULL;
    if (opts->role != PL_NM_ROLE_APP && opts->role != PL_NM_ROLE_NODE_MANAGER) return PL_ERR_INVALID_ARG;
    if (opts->name && strlen(opts->name) > PL_NM_NAME_MAX) return PL_ERR_TOO_LARGE;
    if (opts->code_ttl_ms < 0 || opts->code_ttl_ms > PL_NM_CODE_TTL_MS) return PL_ERR_INVALID_ARG;
    pl_nm_node *n = calloc(1, sizeof *n);
    if (!n) return PL_ERR_NOMEM;
    n->loop = loop;
    n->opts = *opts;
    n->armed_for = INT64_MAX;
    snprintf(n->name, sizeof n->name, "%s", opts->name ? opts->name : "");
    n->opts.name = n->name;
    n->opts.relay_url = NULL; /* not kept */
    n->opts.store_path = NULL;

    uint8_t seed[PL_ED25519_SEED_BYTES];
    pl_err e = pl_store_open(&n->store, opts->store_path);
    if (e == PL_OK) e = pl_nm_store_init(n->store);
    if (e == PL_OK) e = pl_nm_store_identity(opts->store_path, n->priv, n->pub, NULL);
    if (e == PL_OK) e = pl_store_secret(n->store, SEED_KEY, seed, PL_ED25519_SEED_BYTES);
    pl_nm_counterparty *all = NULL;
    size_t nall = 0;
    if (e == PL_OK) e = pl_nm_store_list(n->store, &all, &nall);
    for (size_t i = 0; e == PL_OK && i < nall; i++) cache_put(n, &all[i]);
    free(all);
    if (e == PL_OK) {
        pl_nm_sessions_config sc = opts->session_cfg;
        sc.role = opts->role;
        sc.static_priv = n->priv;
        e = pl_nm_sessions_new(&n->sess, &sc, pl_nm_node_now_ms());
    }
    if (e == PL_OK) {
        pl_relay_client_opts ro = {
            .url = opts->relay_url,
            .seed = seed,
            .project_id = opts->project_id,
            .on_message = on_relay_message,
            .on_state = on_relay_state,
            .user_data = n,
            /* two topics per counterparty (rendezvous, session), the pairing's */
            .max_topics = 2 * PL_NM_SESSION_MAX_PEERS + 16,
            /* a start-up with many counterparties publishes one handshake each */
            .max_queue = PL_NM_SESSION_MAX_PEERS + 1024,
        };
        e = pl_relay_client_new(&n->relay, loop, &ro);
    }
    pl_wipe(seed, sizeof seed);
    if (e != PL_OK) {
        free_node(n);
        return e;
    }
    n->tp = pl_relay_client_transport(n->relay);
    /* Seed step 11: every stored counterparty at once. Subscriptions made
     * before the relay connects are sent on connect. */
    if (opts->sessions) {
        int64_t now = pl_nm_node_now_ms();
        for (size_t i = 0; i < n->npeers; i++) {
            pl_nm_role want = opts->role == PL_NM_ROLE_APP ? PL_NM_ROLE_NODE_MANAGER : PL_NM_ROLE_APP;
            if (n->peers[i].role != want) continue;
            if (pl_nm_sessions_add_peer(n->sess, n->peers[i].pub, now) == PL_OK) n->restored++;
        }
    }
    uv_timer_init(loop, &n->timer);
    n->timer.data = n;
    uv_prepare_init(loop, &n->prepare);
    n->prepare.data = n;
    uv_prepare_start(&n->prepare, on_prepare);
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
    int64_t now = pl_nm_node_now_ms();
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
    pl_err e = pl_nm_sessions_add_peer(n->sess, peer, pl_nm_node_now_ms());
    drain_sessions(n);
    return e == PL_ERR_EXISTS ? PL_OK : e;
}

size_t pl_nm_node_pending(const pl_nm_node *n) {
    PL_REQUIRE(n);
    return n->relay ? pl_relay_client_pending(n->relay) : 0;
}

pl_err pl_nm_node_request(pl_nm_node *n, const uint8_t peer[PL_NM_KEY_BYTES], const uint8_t *body,
                          size_t len, uint64_t *id) {
    PL_REQUIRE(n && peer && !n->closing);
    pl_err e = pl_nm_sessions_request(n->sess, peer, body, len, pl_nm_node_now_ms(), id);
    drain_sessions(n);
    return e;
}

pl_err pl_nm_node_respond(pl_nm_node *n, const uint8_t peer[PL_NM_KEY_BYTES], uint64_t id,
                          const uint8_t *body, size_t len) {
    PL_REQUIRE(n && peer && !n->closing);
    pl_err e = pl_nm_sessions_respond(n->sess, peer, id, body, len, pl_nm_node_now_ms());
    drain_sessions(n);
    return e;
}

pl_err pl_nm_node_remove_peer(pl_nm_node *n, const uint8_t peer[PL_NM_KEY_BYTES]) {
    PL_REQUIRE(n && peer && !n->closing);
    pl_err e = pl_nm_store_remove(n->store, peer);
    pl_err e2 = pl_nm_sessions_remove_peer(n->sess, peer, pl_nm_node_now_ms());
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

static void maybe_done(pl_nm_node *n) {
    if (n->closing_handles > 0) return;
    void (*cb)(void *) = n->on_closed;
    void *ud = n->opts.ud;
    free_node(n);
    if (cb) cb(ud);
}

static void on_handle_closed(uv_handle_t *h) {
    pl_nm_node *n = h->data;
    n->closing_handles--;
    maybe_done(n);
}

static void on_relay_closed(void *ud) {
    pl_nm_node *n = ud;
    n->relay = NULL;
    n->closing_handles--;
    maybe_done(n);
}

void pl_nm_node_close(pl_nm_node *n, void (*on_closed)(void *ud)) {
    PL_REQUIRE(n && !n->closing);
    n->closing = true;
    n->on_closed = on_closed;
    n->closing_handles = 3;
    uv_close((uv_handle_t *)&n->timer, on_handle_closed);
    uv_close((uv_handle_t *)&n->prepare, on_handle_closed);
    pl_relay_client_close(n->relay, on_relay_closed);
}
