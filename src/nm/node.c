/* SPDX-License-Identifier: Apache-2.0 */
/* The node-manager node core: see node_core.h. */
#include "nm/node_core.h"

#include "core/internal.h"
#include "pairlink/crypto.h"
#include "pairlink/waku_transport.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An established session is written to the store at most this often. */
#define TOUCH_EVERY_MS 60000
/* Publishes kept while the transport's queue is full (see retry_publish). */
#define RETRY_MAX (2 * PL_NM_SESSION_MAX_PEERS)
/* Revocations under way at once (a user removing peers one by one). */
#define REVOKES_MAX 16

typedef struct retry_pub {
    struct retry_pub *next;
    char topic[PL_TRANSPORT_TOPIC_MAX + 1];
    uint32_t ttl_s;
    bool ephemeral;
    size_t len;
    uint8_t data[];
} retry_pub;

struct pl__nmn {
    pl_nm_role role;
    uint8_t priv[PL_NM_KEY_BYTES];
    uint8_t pub[PL_NM_KEY_BYTES];
    char name[PL_NM_NAME_MAX + 1];
    int64_t code_ttl_ms;
    const pl_nm_kdf_params *kdf;
    pl__nmn_store store;
    pl_transport *tp;
    pl__nmn_event_fn on_event;
    void *ud;
    pl_rng_fn rng;
    void *rng_ctx;
    bool silent;
    int64_t now; /* of the call under way */
    pl_nm_sessions *sess;
    pl_nm_pairing *pairing;
    bool learned_new; /* the peer learned by this pairing was not stored before */
    pl_nm_counterparty learned;
    pl_nm_counterparty *peers; /* cache of the store, for names and last_seen */
    size_t npeers, cap;
    size_t restored;
    retry_pub *retry_head, *retry_tail;
    size_t nretry;
    bool sessions;           /* sessions with every stored counterparty (a daemon) */
    bool pair_no_session;    /* a completed pairing starts no session */
    bool verify;             /* PAIR_VERIFY before storing */
    bool verifying;          /* PAIR_VERIFY emitted, no answer yet */
    bool completed_deferred; /* app: COMPLETED came while verifying */
    bool rejecting;          /* the user said no: the failure says so */
    pl_nm_peer vpeer;        /* the peer awaiting the user's answer */
    bool deriving;           /* pair_begin done, pair_derived not yet */
    bool derive_cancelled;
    int64_t pair_started;
    /* revocations told to peers, waiting for their answer */
    struct {
        uint8_t pub[PL_NM_KEY_BYTES];
        uint64_t id;
        char name[PL_NM_NAME_MAX + 1];
    } revokes[REVOKES_MAX];
    size_t nrevokes;
};

static void rng_bytes(pl__nmn *n, uint8_t *buf, size_t len) {
    pl__rng(n->rng, n->rng_ctx, buf, len);
}

/* ---- counterparty cache ---- */

static pl_nm_counterparty *cache_find(pl__nmn *n, const uint8_t pub[PL_NM_KEY_BYTES]) {
    for (size_t i = 0; i < n->npeers; i++)
        if (!memcmp(n->peers[i].pub, pub, PL_NM_KEY_BYTES)) return &n->peers[i];
    return NULL;
}

static void cache_put(pl__nmn *n, const pl_nm_counterparty *c) {
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

static void cache_remove(pl__nmn *n, const uint8_t pub[PL_NM_KEY_BYTES]) {
    pl_nm_counterparty *c = cache_find(n, pub);
    if (c) *c = n->peers[--n->npeers];
}

/* ---- events ---- */

static void emit(pl__nmn *n, pl_nm_node_event *ev) {
    if (n->silent) return;
    if (ev->kind != PL_NM_NODE_TRANSPORT && ev->kind != PL_NM_NODE_PAIR_CODE &&
        ev->kind != PL_NM_NODE_PAIR_FAILED && ev->kind != PL_NM_NODE_PAIR_DROPPED &&
        ev->kind != PL_NM_NODE_PUBLISH_FAILED) {
        pl_nm_peer_id(ev->peer_id, ev->peer);
        const pl_nm_counterparty *c = cache_find(n, ev->peer);
        if (c && !ev->name[0]) snprintf(ev->name, sizeof ev->name, "%s", c->name);
    }
    n->on_event(n->ud, ev);
}

/* ---- session manager outputs ---- */

static void on_established(pl__nmn *n, const uint8_t peer[PL_NM_KEY_BYTES]) {
    pl_nm_counterparty *c = cache_find(n, peer);
    if (c && (!c->confirmed || n->now - c->last_seen_ms > TOUCH_EVERY_MS) &&
        n->store.touch(n->store.ctx, peer, n->now) == PL_OK) {
        c->confirmed = true;
        c->last_seen_ms = n->now;
    }
}

/* ---- publishes the transport could not queue ----
 * A full transport queue must not lose a handshake message (the session
 * would wait for its time-out and a backoff): the message is kept, in
 * order, and offered again at every drain. Bounded by RETRY_MAX (then the
 * oldest goes, and the session layer's retry takes over). */

static bool retry_push(pl__nmn *n, const char *topic, const uint8_t *data, size_t len,
                       uint32_t ttl_s, bool ephemeral) {
    if (n->nretry == RETRY_MAX) {
        retry_pub *old = n->retry_head;
        n->retry_head = old->next;
        if (!n->retry_head) n->retry_tail = NULL;
        free(old);
        n->nretry--;
    }
    retry_pub *r = malloc(sizeof *r + len);
    if (!r) return false;
    r->next = NULL;
    snprintf(r->topic, sizeof r->topic, "%s", topic);
    r->ttl_s = ttl_s;
    r->ephemeral = ephemeral;
    r->len = len;
    if (len) memcpy(r->data, data, len);
    if (n->retry_tail)
        n->retry_tail->next = r;
    else
        n->retry_head = r;
    n->retry_tail = r;
    n->nretry++;
    return true;
}

/* Publish, or keep it for later when the queue is full (or others wait
 * already: order is kept). A message too large for the transport is not
 * kept: it would never fit. */
/* Spec 4.4: every session message is a PayloadV2 (version 2) on Waku; the
 * relay transport ignores the extension. */
static pl_err session_publish(pl__nmn *n, const char *topic, const uint8_t *data, size_t len,
                              uint32_t ttl_s, bool ephemeral) {
    pl_waku_publish_ext wx = {.ext = {PL_TRANSPORT_EXT_WAKU},
                              .version = PL_NM_WAKU_VERSION_SESSION};
    pl_publish_opts po = {.ttl_s = ttl_s, .ephemeral = ephemeral, .ext = &wx.ext};
    return pl_transport_publish(n->tp, topic, data, len, &po);
}

static bool queue_full(pl__nmn *n, pl_err e) {
    return (e == PL_ERR_TOO_LARGE && pl_transport_pending(n->tp) > 0) || e == PL_ERR_NOMEM;
}

static void publish_or_keep(pl__nmn *n, const char *topic, const uint8_t *data, size_t len,
                            uint32_t ttl_s, bool ephemeral) {
    if (n->retry_head) {
        (void)retry_push(n, topic, data, len, ttl_s, ephemeral);
        return;
    }
    pl_err e = session_publish(n, topic, data, len, ttl_s, ephemeral);
    if (queue_full(n, e)) (void)retry_push(n, topic, data, len, ttl_s, ephemeral);
}

static void retry_flush(pl__nmn *n) {
    while (n->retry_head) {
        retry_pub *r = n->retry_head;
        pl_err e = session_publish(n, r->topic, r->data, r->len, r->ttl_s, r->ephemeral);
        if (queue_full(n, e)) return; /* still full: next time */
        n->retry_head = r->next;
        if (!n->retry_head) n->retry_tail = NULL;
        n->nretry--;
        free(r);
    }
}

static void emit_removed(pl__nmn *n, const uint8_t pub[PL_NM_KEY_BYTES], const char *name,
                         bool by_peer, bool revoked, pl_err err) {
    pl_nm_node_event ev = {
        .kind = PL_NM_NODE_PEER_REMOVED, .by_peer = by_peer, .revoked = revoked, .err = err};
    memcpy(ev.peer, pub, PL_NM_KEY_BYTES);
    snprintf(ev.name, sizeof ev.name, "%s", name ? name : "");
    emit(n, &ev);
}

/* The peer told us it forgot us: answer, then forget it too. */
static void on_revoked(pl__nmn *n, const pl_nm_session_output *o) {
    char name[PL_NM_NAME_MAX + 1] = "";
    const pl_nm_counterparty *c = cache_find(n, o->peer);
    if (c) snprintf(name, sizeof name, "%s", c->name);
    (void)pl_nm_sessions_respond(n->sess, o->peer, o->id, NULL, 0, n->now);
    if (c) (void)n->store.remove(n->store.ctx, o->peer);
    cache_remove(n, o->peer);
    (void)pl_nm_sessions_remove_peer(n->sess, o->peer, n->now);
    emit_removed(n, o->peer, name, true, false, PL_OK);
}

/* The answer (or time-out) of a revocation we sent: the peer is gone. */
static bool revoke_done(pl__nmn *n, const pl_nm_session_output *o) {
    for (size_t i = 0; i < n->nrevokes; i++) {
        if (memcmp(n->revokes[i].pub, o->peer, PL_NM_KEY_BYTES) || n->revokes[i].id != o->id)
            continue;
        char name[PL_NM_NAME_MAX + 1];
        snprintf(name, sizeof name, "%s", n->revokes[i].name);
        n->revokes[i] = n->revokes[--n->nrevokes];
        (void)pl_nm_sessions_remove_peer(n->sess, o->peer, n->now);
        emit_removed(n, o->peer, name, false, true,
                     o->event == PL_NM_SEV_RESPONSE ? PL_OK : o->err);
        return true;
    }
    return false;
}

static void drain_sessions(pl__nmn *n) {
    pl_nm_session_output o;
    retry_flush(n);
    while (n->sess && pl_nm_sessions_poll(n->sess, &o)) {
        switch (o.kind) {
        case PL_NM_SOUT_SUBSCRIBE:
            (void)pl_transport_subscribe(n->tp, o.topic);
            break;
        case PL_NM_SOUT_UNSUBSCRIBE:
            (void)pl_transport_unsubscribe(n->tp, o.topic);
            break;
        case PL_NM_SOUT_PUBLISH:
            publish_or_keep(n, o.topic, o.message, o.message_len, o.ttl_s, o.ephemeral);
            break;
        case PL_NM_SOUT_EVENT: {
            if (o.event == PL_NM_SEV_REVOKED) {
                on_revoked(n, &o);
                break;
            }
            if ((o.event == PL_NM_SEV_RESPONSE || o.event == PL_NM_SEV_REQUEST_FAILED) &&
                revoke_done(n, &o))
                break;
            if (o.event == PL_NM_SEV_ESTABLISHED) on_established(n, o.peer);
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

static void persist_learned(pl__nmn *n, const pl_nm_peer *p, bool confirm);

/* --verify (magic-wormhole's verifier): the user compares the fingerprint
 * before the peer is stored. The node manager learns the app's key only
 * from the app's answer, so the app answers at once, without storing, and
 * both screens show the fingerprint together; each side stores the peer
 * once its user said yes (the app's PAIRED waits for that too). */
static void on_peer_learned(pl__nmn *n, const pl_nm_peer *p) {
    if (n->verify) {
        n->vpeer = *p;
        n->verifying = true;
        n->completed_deferred = false;
        if (n->role == PL_NM_ROLE_APP)
            (void)pl_nm_pairing_confirm_persisted(n->pairing, PL_OK, n->now);
        pl_nm_node_event ev = {.kind = PL_NM_NODE_PAIR_VERIFY};
        memcpy(ev.peer, p->identity, PL_NM_KEY_BYTES);
        snprintf(ev.name, sizeof ev.name, "%s", p->name);
        snprintf(ev.fingerprint, sizeof ev.fingerprint, "%s", p->fingerprint);
        emit(n, &ev);
        return;
    }
    persist_learned(n, p, true);
}

static void persist_learned(pl__nmn *n, const pl_nm_peer *p, bool confirm) {
    pl_nm_counterparty c = {.role = p->role, .first_seen_ms = n->now, .last_seen_ms = n->now};
    memcpy(c.pub, p->identity, PL_NM_KEY_BYTES);
    snprintf(c.name, sizeof c.name, "%s", p->name);
    const pl_nm_counterparty *old = cache_find(n, c.pub);
    n->learned_new = old == NULL;
    if (old) {
        c.first_seen_ms = old->first_seen_ms;
        c.confirmed = old->confirmed;
    }
    /* Seed step 7/9: durably stored before anything the peer could act on. */
    pl_err e = n->store.put(n->store.ctx, &c);
    if (e == PL_OK) {
        cache_put(n, &c);
        n->learned = c;
        pl_nm_node_event ev = {.kind = PL_NM_NODE_PAIR_STORED};
        memcpy(ev.peer, c.pub, PL_NM_KEY_BYTES);
        emit(n, &ev);
    }
    if (confirm) pl_nm_pairing_confirm_persisted(n->pairing, e, n->now);
}

static void on_completed(pl__nmn *n, const pl_nm_peer *p) {
    if (n->rejecting) return; /* the app's user said no: not paired */
    if (n->verifying) {       /* the app, its user not asked yet: PAIRED waits */
        n->completed_deferred = true;
        return;
    }
    pl_nm_counterparty *c = cache_find(n, p->identity);
    if (c) {
        snprintf(c->fingerprint, sizeof c->fingerprint, "%s", p->fingerprint);
        (void)n->store.put(n->store.ctx, c); /* the fingerprint is informative */
    }
    pl_nm_node_event ev = {.kind = PL_NM_NODE_PAIRED};
    memcpy(ev.peer, p->identity, PL_NM_KEY_BYTES);
    snprintf(ev.fingerprint, sizeof ev.fingerprint, "%s", p->fingerprint);
    emit(n, &ev);
    /* Seed step 10: a session at once (a re-paired peer starts afresh),
     * unless the application wants none. */
    if (!n->silent && !n->pair_no_session) {
        (void)pl_nm_sessions_remove_peer(n->sess, p->identity, n->now);
        (void)pl_nm_sessions_add_peer(n->sess, p->identity, n->now);
    }
}

/* A peer stored by a pairing that never completed is forgotten (the
 * seed's "fully recorded or absent"). */
static void on_failed(pl__nmn *n, pl_err err) {
    n->verifying = false;
    if (n->rejecting) err = PL_ERR_FINGERPRINT_REJECTED;
    n->rejecting = false;
    if (n->learned_new && cache_find(n, n->learned.pub)) {
        (void)n->store.remove(n->store.ctx, n->learned.pub);
        cache_remove(n, n->learned.pub);
    }
    pl_nm_node_event ev = {.kind = PL_NM_NODE_PAIR_FAILED, .err = err};
    emit(n, &ev);
}

static void drain_pairing(pl__nmn *n) {
    pl_nm_output o;
    while (n->pairing && pl_nm_pairing_poll(n->pairing, &o)) {
        switch (o.kind) {
        case PL_NM_OUT_SUBSCRIBE:
            (void)pl_transport_subscribe(n->tp, o.content_topic);
            break;
        case PL_NM_OUT_UNSUBSCRIBE:
            (void)pl_transport_unsubscribe(n->tp, o.content_topic);
            break;
        case PL_NM_OUT_PUBLISH: {
            /* Spec 4.2/4.4: a HELLO is a 26/WAKU-PAYLOAD (version 1), and
             * ephemeral: it is repeated while it matters and worthless
             * after the code's 5 minutes. */
            pl_waku_publish_ext wx = {.ext = {PL_TRANSPORT_EXT_WAKU},
                                      .version = PL_NM_WAKU_VERSION_HELLO};
            pl_publish_opts po = {.ttl_s = PL_NM_RELAY_TTL_S, .ephemeral = true, .ext = &wx.ext};
            (void)pl_transport_publish(n->tp, o.content_topic, o.payload, o.payload_len, &po);
            break;
        }
        case PL_NM_OUT_EVENT:
            switch (o.event) {
            case PL_NM_EV_PEER_LEARNED:
                on_peer_learned(n, &o.peer);
                break;
            case PL_NM_EV_COMPLETED:
                on_completed(n, &o.peer);
                break;
            case PL_NM_EV_FAILED:
                on_failed(n, o.err);
                break;
            case PL_NM_EV_DROPPED: {
                pl_nm_node_event ev = {
                    .kind = PL_NM_NODE_PAIR_DROPPED, .err = o.err, .reason = o.reason};
                if (o.has_peer) memcpy(ev.peer, o.peer.identity, PL_NM_KEY_BYTES);
                emit(n, &ev);
                break;
            }
            case PL_NM_EV_REANSWERED:
                break;
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

void pl__nmn_drain(pl__nmn *n, int64_t now_ms) {
    PL_REQUIRE(n);
    n->now = now_ms;
    drain_pairing(n);
    drain_sessions(n);
}

/* ---- construction ---- */

pl_err pl__nmn_new(pl__nmn **out, const pl__nmn_config *cfg, int64_t now_ms) {
    PL_REQUIRE(out && cfg && cfg->priv && cfg->pub && cfg->tp && cfg->on_event);
    PL_REQUIRE(cfg->store.put && cfg->store.touch && cfg->store.remove);
    PL_REQUIRE(cfg->peers || cfg->npeers == 0);
    *out = NULL;
    if (cfg->role != PL_NM_ROLE_APP && cfg->role != PL_NM_ROLE_NODE_MANAGER)
        return PL_ERR_INVALID_ARG;
    if (cfg->name && strlen(cfg->name) > PL_NM_NAME_MAX) return PL_ERR_TOO_LARGE;
    if (cfg->code_ttl_ms < 0 || cfg->code_ttl_ms > PL_NM_CODE_TTL_MS) return PL_ERR_INVALID_ARG;
    pl__nmn *n = calloc(1, sizeof *n);
    if (!n) return PL_ERR_NOMEM;
    n->role = cfg->role;
    memcpy(n->priv, cfg->priv, PL_NM_KEY_BYTES);
    memcpy(n->pub, cfg->pub, PL_NM_KEY_BYTES);
    snprintf(n->name, sizeof n->name, "%s", cfg->name ? cfg->name : "");
    n->code_ttl_ms = cfg->code_ttl_ms;
    n->kdf = cfg->kdf;
    n->store = cfg->store;
    n->tp = cfg->tp;
    n->on_event = cfg->on_event;
    n->ud = cfg->ud;
    n->rng = cfg->rng;
    n->rng_ctx = cfg->rng_ctx;
    n->now = now_ms;
    n->sessions = cfg->sessions;
    n->pair_no_session = cfg->pair_no_session;
    n->verify = cfg->verify;
    for (size_t i = 0; i < cfg->npeers; i++)
        cache_put(n, &cfg->peers[i]);
    pl_nm_sessions_config sc = cfg->session_cfg;
    sc.role = cfg->role;
    sc.static_priv = n->priv;
    if (!sc.rng) {
        sc.rng = cfg->rng;
        sc.rng_ctx = cfg->rng_ctx;
    }
    pl_err e = pl_nm_sessions_new(&n->sess, &sc, now_ms);
    if (e != PL_OK) {
        pl__nmn_free(n);
        return e;
    }
    /* Seed step 11: every stored counterparty of the other role at once.
     * Subscriptions made before the transport connects go out on connect. */
    if (cfg->sessions) {
        pl_nm_role want = n->role == PL_NM_ROLE_APP ? PL_NM_ROLE_NODE_MANAGER : PL_NM_ROLE_APP;
        for (size_t i = 0; i < n->npeers; i++) {
            if (n->peers[i].role != want) continue;
            if (pl_nm_sessions_add_peer(n->sess, n->peers[i].pub, now_ms) == PL_OK) n->restored++;
        }
    }
    *out = n;
    return PL_OK;
}

void pl__nmn_free(pl__nmn *n) {
    if (!n) return;
    pl_nm_pairing_free(n->pairing);
    pl_nm_sessions_free(n->sess);
    free(n->peers);
    while (n->retry_head) {
        retry_pub *r = n->retry_head;
        n->retry_head = r->next;
        free(r);
    }
    sodium_memzero(n, sizeof *n);
    free(n);
}

void pl__nmn_silence(pl__nmn *n) {
    PL_REQUIRE(n);
    n->silent = true;
}

/* ---- operations ---- */

pl_err pl__nmn_pair_begin(pl__nmn *n, const char *code, uint8_t p[PL_NM_CODE_BYTES],
                          char code_out[PL_NM_CODE_TEXT_SIZE], int64_t now_ms) {
    PL_REQUIRE(n && p);
    if (code_out) code_out[0] = '\0';
    if (n->pairing || n->deriving) return PL_ERR_STATE;
    bool app = n->role == PL_NM_ROLE_APP;
    if (app == (code != NULL)) return PL_ERR_INVALID_ARG;
    n->now = now_ms;
    char text[PL_NM_CODE_TEXT_SIZE];
    if (app)
        rng_bytes(n, p, PL_NM_CODE_BYTES); /* P: 64 random bits */
    else
        PL_TRY(pl_nm_code_parse(p, code, strlen(code)));
    pl_nm_code_format(text, p);
    n->deriving = true;
    n->derive_cancelled = false;
    n->pair_started = now_ms;
    n->learned_new = false;
    /* The code is shown while the keys are derived: the other person needs
     * far longer to type it than the derivation takes. */
    if (app) {
        if (code_out) memcpy(code_out, text, PL_NM_CODE_TEXT_SIZE);
        pl_nm_node_event ev = {.kind = PL_NM_NODE_PAIR_CODE};
        memcpy(ev.code, text, sizeof text);
        emit(n, &ev);
    }
    sodium_memzero(text, sizeof text);
    return PL_OK;
}

/* The engine from the derived secrets; errors returned, no event. */
static pl_err pair_start(pl__nmn *n, const pl_nm_secrets *sec) {
    int64_t left = n->code_ttl_ms ? n->pair_started + n->code_ttl_ms : 0;
    pl_nm_pairing_config cfg = {
        .role = n->role,
        .name = n->name,
        .secrets = sec,
        .expires_at_ms = left,
        .rng = n->rng,
        .rng_ctx = n->rng_ctx,
    };
    memcpy(cfg.identity_pub, n->pub, PL_NM_KEY_BYTES);
    return pl_nm_pairing_new(&n->pairing, &cfg, n->now);
}

void pl__nmn_pair_derived(pl__nmn *n, const pl_nm_secrets *sec, pl_err err, int64_t now_ms) {
    PL_REQUIRE(n && n->deriving && (sec || err != PL_OK));
    n->deriving = false;
    n->now = now_ms;
    if (n->derive_cancelled) return; /* reported by the cancel */
    if (err == PL_OK) err = pair_start(n, sec);
    if (err != PL_OK) {
        pl_nm_node_event ev = {.kind = PL_NM_NODE_PAIR_FAILED, .err = err};
        emit(n, &ev);
        return;
    }
    pl__nmn_drain(n, now_ms);
}

pl_err pl__nmn_pair(pl__nmn *n, const char *code, char code_out[PL_NM_CODE_TEXT_SIZE],
                    int64_t now_ms) {
    PL_REQUIRE(n);
    uint8_t p[PL_NM_CODE_BYTES];
    PL_TRY(pl__nmn_pair_begin(n, code, p, code_out, now_ms));
    pl_nm_secrets sec;
    pl_err e = pl_nm_derive(&sec, p, n->kdf);
    sodium_memzero(p, sizeof p);
    n->deriving = false;
    if (e == PL_OK) e = pair_start(n, &sec);
    pl_nm_secrets_wipe(&sec);
    if (e != PL_OK) return e;
    pl__nmn_drain(n, now_ms);
    return PL_OK;
}

pl_err pl__nmn_pair_verify(pl__nmn *n, bool match, int64_t now_ms) {
    PL_REQUIRE(n);
    /* the app's pairing may be over already (answered, then expired): the
     * answer still decides */
    if (!n->verifying) return PL_ERR_STATE;
    n->verifying = false;
    n->now = now_ms;
    bool app = n->role == PL_NM_ROLE_APP;
    if (match) {
        persist_learned(n, &n->vpeer, !app);
        if (app && n->completed_deferred) on_completed(n, &n->vpeer);
    } else if (!app) {
        (void)pl_nm_pairing_confirm_persisted(n->pairing, PL_ERR_FINGERPRINT_REJECTED, now_ms);
    } else {
        /* the app answered already: stop answering; the failure is ours to
         * report (an engine that completed has none to give) */
        n->rejecting = true;
        if (n->pairing) {
            pl_nm_pairing_cancel(n->pairing);
            pl__nmn_drain(n, now_ms);
        }
        if (n->rejecting) {
            n->rejecting = false;
            pl_nm_node_event ev = {.kind = PL_NM_NODE_PAIR_FAILED,
                                   .err = PL_ERR_FINGERPRINT_REJECTED};
            emit(n, &ev);
        }
    }
    n->completed_deferred = false;
    sodium_memzero(&n->vpeer, sizeof n->vpeer);
    pl__nmn_drain(n, now_ms);
    return PL_OK;
}

void pl__nmn_pair_cancel(pl__nmn *n, int64_t now_ms) {
    PL_REQUIRE(n);
    if (n->deriving && !n->derive_cancelled) {
        n->derive_cancelled = true;
        pl_nm_node_event ev = {.kind = PL_NM_NODE_PAIR_FAILED, .err = PL_ERR_CANCELLED};
        emit(n, &ev);
        return;
    }
    if (!n->pairing) return;
    pl_nm_pairing_cancel(n->pairing);
    pl__nmn_drain(n, now_ms);
}

pl_err pl__nmn_connect(pl__nmn *n, const uint8_t peer[PL_NM_KEY_BYTES], int64_t now_ms) {
    PL_REQUIRE(n && peer);
    const pl_nm_counterparty *c = cache_find(n, peer);
    if (!c) return PL_ERR_NOT_FOUND;
    if (c->role == n->role) return PL_ERR_HELLO_ROLE;
    pl_err e = pl_nm_sessions_add_peer(n->sess, peer, now_ms);
    pl__nmn_drain(n, now_ms);
    return e == PL_ERR_EXISTS ? PL_OK : e;
}

pl_err pl__nmn_request(pl__nmn *n, const uint8_t peer[PL_NM_KEY_BYTES], const uint8_t *body,
                       size_t len, int64_t now_ms, uint64_t *id) {
    PL_REQUIRE(n && peer);
    pl_err e = pl_nm_sessions_request(n->sess, peer, body, len, now_ms, id);
    pl__nmn_drain(n, now_ms);
    return e;
}

pl_err pl__nmn_respond(pl__nmn *n, const uint8_t peer[PL_NM_KEY_BYTES], uint64_t id,
                       const uint8_t *body, size_t len, int64_t now_ms) {
    PL_REQUIRE(n && peer);
    pl_err e = pl_nm_sessions_respond(n->sess, peer, id, body, len, now_ms);
    pl__nmn_drain(n, now_ms);
    return e;
}

pl_err pl__nmn_remove_peer(pl__nmn *n, const uint8_t peer[PL_NM_KEY_BYTES], int64_t now_ms) {
    PL_REQUIRE(n && peer);
    pl_err e = n->store.remove(n->store.ctx, peer);
    pl_err e2 = pl_nm_sessions_remove_peer(n->sess, peer, now_ms);
    cache_remove(n, peer);
    pl__nmn_drain(n, now_ms);
    if (e == PL_ERR_NOT_FOUND && e2 == PL_OK) e = PL_OK;
    return e;
}

pl_err pl__nmn_revoke(pl__nmn *n, const uint8_t peer[PL_NM_KEY_BYTES], int64_t now_ms) {
    PL_REQUIRE(n && peer);
    const pl_nm_counterparty *c = cache_find(n, peer);
    if (!c) return PL_ERR_NOT_FOUND;
    if (n->nrevokes == REVOKES_MAX) return PL_ERR_TOO_LARGE;
    char name[PL_NM_NAME_MAX + 1];
    snprintf(name, sizeof name, "%s", c->name);
    /* revoked at once: from now on no session with it is accepted */
    PL_TRY(n->store.remove(n->store.ctx, peer));
    cache_remove(n, peer);
    pl_err e = pl_nm_sessions_add_peer(n->sess, peer, now_ms);
    uint64_t id = 0;
    if (e == PL_OK || e == PL_ERR_EXISTS) e = pl_nm_sessions_revoke(n->sess, peer, now_ms, &id);
    if (e == PL_OK) {
        memcpy(n->revokes[n->nrevokes].pub, peer, PL_NM_KEY_BYTES);
        n->revokes[n->nrevokes].id = id;
        snprintf(n->revokes[n->nrevokes].name, sizeof n->revokes[0].name, "%s", name);
        n->nrevokes++;
    } else {
        (void)pl_nm_sessions_remove_peer(n->sess, peer, now_ms);
    }
    pl__nmn_drain(n, now_ms);
    return e;
}

static bool is_revoking(const pl__nmn *n, const uint8_t pub[PL_NM_KEY_BYTES]) {
    for (size_t i = 0; i < n->nrevokes; i++)
        if (!memcmp(n->revokes[i].pub, pub, PL_NM_KEY_BYTES)) return true;
    return false;
}

void pl__nmn_sync(pl__nmn *n, const pl_nm_counterparty *all, size_t nall, int64_t now_ms) {
    PL_REQUIRE(n && (all || nall == 0));
    n->now = now_ms;
    pl_nm_role want = n->role == PL_NM_ROLE_APP ? PL_NM_ROLE_NODE_MANAGER : PL_NM_ROLE_APP;
    /* gone from the store: another process removed it */
    for (size_t i = 0; i < n->npeers;) {
        pl_nm_counterparty *c = &n->peers[i];
        bool kept = false;
        for (size_t j = 0; j < nall && !kept; j++)
            kept = !memcmp(all[j].pub, c->pub, PL_NM_KEY_BYTES);
        if (kept) {
            i++;
            continue;
        }
        pl_nm_counterparty gone = *c;
        cache_remove(n, gone.pub); /* moves the last entry to i */
        if (!is_revoking(n, gone.pub)) (void)pl_nm_sessions_remove_peer(n->sess, gone.pub, now_ms);
        emit_removed(n, gone.pub, gone.name, false, false, PL_OK);
    }
    /* new in the store: another process paired */
    for (size_t j = 0; j < nall; j++) {
        pl_nm_counterparty *c = cache_find(n, all[j].pub);
        if (c) {
            snprintf(c->name, sizeof c->name, "%s", all[j].name);
            snprintf(c->fingerprint, sizeof c->fingerprint, "%s", all[j].fingerprint);
            continue;
        }
        cache_put(n, &all[j]);
        if (!cache_find(n, all[j].pub)) continue; /* out of memory: next time */
        if (n->sessions && all[j].role == want) {
            (void)pl_nm_sessions_remove_peer(n->sess, all[j].pub, now_ms);
            (void)pl_nm_sessions_add_peer(n->sess, all[j].pub, now_ms);
        }
        pl_nm_node_event ev = {.kind = PL_NM_NODE_PEER_ADDED};
        memcpy(ev.peer, all[j].pub, PL_NM_KEY_BYTES);
        emit(n, &ev);
    }
    pl__nmn_drain(n, now_ms);
}

/* ---- driving ---- */

void pl__nmn_on_message(pl__nmn *n, const char *topic, const uint8_t *data, size_t len,
                        const pl_delivery_info *info, int64_t now_ms) {
    PL_REQUIRE(n && topic && info && (data || len == 0));
    if (n->silent) return;
    bool pairing = n->pairing && !strcmp(topic, pl_nm_pairing_topic(n->pairing));
    if (pairing && info->err)
        (void)pl_nm_pairing_on_bad_delivery(n->pairing, info->err, now_ms);
    else if (pairing)
        (void)pl_nm_pairing_on_message(n->pairing, data, len, now_ms);
    else if (info->err)
        (void)pl_nm_sessions_on_bad_delivery(n->sess, topic, info->err, now_ms);
    else
        (void)pl_nm_sessions_on_message(n->sess, topic, data, len, now_ms);
    pl__nmn_drain(n, now_ms);
}

void pl__nmn_on_state(pl__nmn *n, pl_transport_state state, pl_err err) {
    PL_REQUIRE(n);
    pl_nm_node_event ev = {.kind = PL_NM_NODE_TRANSPORT, .transport_state = state, .err = err};
    emit(n, &ev);
}

void pl__nmn_on_publish_error(pl__nmn *n, const char *topic, pl_err err, int64_t code) {
    PL_REQUIRE(n && topic);
    pl_nm_node_event ev = {
        .kind = PL_NM_NODE_PUBLISH_FAILED, .err = err, .relay_code = code, .topic = topic};
    emit(n, &ev);
}

void pl__nmn_on_timer(pl__nmn *n, int64_t now_ms) {
    PL_REQUIRE(n);
    if (n->pairing) pl_nm_pairing_on_timer(n->pairing, now_ms);
    pl_nm_sessions_on_timer(n->sess, now_ms);
    pl__nmn_drain(n, now_ms);
}

int64_t pl__nmn_next_deadline(const pl__nmn *n) {
    PL_REQUIRE(n);
    int64_t d = pl_nm_sessions_next_deadline(n->sess);
    if (n->pairing) {
        int64_t p = pl_nm_pairing_next_deadline(n->pairing);
        if (p < d) d = p;
    }
    return d;
}

const pl_nm_sessions *pl__nmn_sessions(const pl__nmn *n) {
    PL_REQUIRE(n);
    return n->sess;
}

size_t pl__nmn_restored(const pl__nmn *n) {
    PL_REQUIRE(n);
    return n->restored;
}
