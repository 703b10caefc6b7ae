/* Node-manager session core (nm_session.h) over an in-memory relay: no
 * sockets, time is simulated. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "pairlink/codec.h"
#include "pairlink/crypto.h"
#include "pairlink/hash.h"
#include "pairlink/noise.h"
#include "pairlink/nm_session.h"
#include "support/support.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXN 64
#define MAXTOPICS 256
#define MAXMSG 4096

/* ---- a tiny relay: publish reaches every *other* subscribed party ---- */

typedef struct party {
    pl_nm_sessions *m;
    uint8_t priv[32], pub[32];
    pl_nm_role role;
    bool online;
    char topics[MAXTOPICS][PL_TOPIC_HEX_SIZE];
    size_t ntopics;
    /* what happened */
    int established, rejected, retries, requests, responses, failed, connecting, knocks;
    bool last_replaced;
    uint8_t session_id[32];
    uint64_t last_id;
    char last_body[256];
    pl_err last_err;
    int64_t retry_at[32];
    size_t nretry;
} party;

typedef struct msg {
    int from;
    char topic[PL_TOPIC_HEX_SIZE];
    char *b64;
} msg;

static party P[MAXN];
static size_t NP;
static msg Q[MAXMSG];
static size_t QH, QT;
static int64_t NOW;
/* Capture: every message published on a topic, for replay tests. */
static char *captured[64];
static size_t ncaptured;
static const char *capture_topic;

static void reset_world(void) {
    for (size_t i = 0; i < NP; i++) pl_nm_sessions_free(P[i].m);
    memset(P, 0, sizeof P);
    NP = 0;
    for (size_t i = QH; i < QT; i++) free(Q[i % MAXMSG].b64);
    QH = QT = 0;
    for (size_t i = 0; i < ncaptured; i++) free(captured[i]);
    ncaptured = 0;
    capture_topic = NULL;
    NOW = 1700000000000;
}

static bool subscribed(const party *p, const char *t) {
    for (size_t i = 0; i < p->ntopics; i++)
        if (!strcmp(p->topics[i], t)) return true;
    return false;
}

static void drain(int who) {
    party *p = &P[who];
    pl_nm_session_output o;
    while (pl_nm_sessions_poll(p->m, &o)) {
        switch (o.kind) {
        case PL_NM_SOUT_SUBSCRIBE:
            if (!subscribed(p, o.relay_topic)) {
                assert_true(p->ntopics < MAXTOPICS);
                memcpy(p->topics[p->ntopics++], o.relay_topic, PL_TOPIC_HEX_SIZE);
            }
            break;
        case PL_NM_SOUT_UNSUBSCRIBE:
            for (size_t i = 0; i < p->ntopics; i++)
                if (!strcmp(p->topics[i], o.relay_topic)) {
                    memcpy(p->topics[i], p->topics[--p->ntopics], PL_TOPIC_HEX_SIZE);
                    break;
                }
            break;
        case PL_NM_SOUT_PUBLISH:
            assert_int_equal(o.ttl_s, PL_NM_SESSION_RELAY_TTL_S);
            if (capture_topic && !strcmp(capture_topic, o.relay_topic) && ncaptured < 64)
                captured[ncaptured++] = strdup(o.message);
            if (p->online) {
                assert_true(QT - QH < MAXMSG);
                msg *m = &Q[QT++ % MAXMSG];
                m->from = who;
                memcpy(m->topic, o.relay_topic, PL_TOPIC_HEX_SIZE);
                m->b64 = strdup(o.message);
            }
            break;
        case PL_NM_SOUT_EVENT:
            switch (o.event) {
            case PL_NM_SEV_ESTABLISHED:
                p->established++;
                p->last_replaced = o.replaced;
                memcpy(p->session_id, o.session_id, 32);
                break;
            case PL_NM_SEV_REJECTED:
                p->rejected++;
                p->last_err = o.err;
                break;
            case PL_NM_SEV_RETRY:
                p->retries++;
                if (p->nretry < 32) p->retry_at[p->nretry++] = o.retry_at_ms;
                break;
            case PL_NM_SEV_REQUEST:
            case PL_NM_SEV_RESPONSE:
                if (o.event == PL_NM_SEV_REQUEST) p->requests++;
                else p->responses++;
                p->last_id = o.id;
                snprintf(p->last_body, sizeof p->last_body, "%.*s", (int)o.body_len, (char *)o.body);
                break;
            case PL_NM_SEV_REQUEST_FAILED:
                p->failed++;
                p->last_err = o.err;
                p->last_id = o.id;
                break;
            case PL_NM_SEV_CONNECTING: p->connecting++; break;
            case PL_NM_SEV_KNOCKED: p->knocks++; break;
            case PL_NM_SEV_DROPPED: break;
            }
            break;
        }
        pl_nm_session_output_clear(&o);
    }
}

/* Deliver queued messages until quiet. */
static void pump(void) {
    for (size_t i = 0; i < NP; i++)
        if (P[i].m) drain((int)i);
    while (QH < QT) {
        msg m = Q[QH++ % MAXMSG];
        for (size_t i = 0; i < NP; i++) {
            if ((int)i == m.from || !P[i].m || !P[i].online || !subscribed(&P[i], m.topic)) continue;
            pl_nm_sessions_on_relay_message(P[i].m, m.topic, m.b64, strlen(m.b64), NOW);
            drain((int)i);
        }
        free(m.b64);
    }
}

static void advance(int64_t ms) {
    int64_t end = NOW + ms;
    for (;;) {
        int64_t next = INT64_MAX;
        for (size_t i = 0; i < NP; i++)
            if (P[i].m) {
                int64_t d = pl_nm_sessions_next_deadline(P[i].m);
                if (d < next) next = d;
            }
        if (next > end) break;
        if (next > NOW) NOW = next;
        for (size_t i = 0; i < NP; i++)
            if (P[i].m) {
                pl_nm_sessions_on_timer(P[i].m, NOW);
                drain((int)i);
            }
        pump();
    }
    NOW = end;
}

static void start(int i, int64_t hs_timeout) {
    pl_nm_sessions_config cfg = {.role = P[i].role, .static_priv = P[i].priv,
                                 .handshake_timeout_ms = hs_timeout, .request_timeout_ms = 20000};
    assert_int_equal(pl_nm_sessions_new(&P[i].m, &cfg, NOW), PL_OK);
    P[i].online = true;
    P[i].ntopics = 0;
}

static int new_party(pl_nm_role role) {
    int i = (int)NP++;
    P[i].role = role;
    pl_x25519_keypair(P[i].pub, P[i].priv);
    start(i, 0);
    return i;
}

static void stop(int i) {
    pl_nm_sessions_free(P[i].m);
    P[i].m = NULL;
    P[i].online = false;
}

static void link_pair(int nm, int app) {
    assert_int_equal(pl_nm_sessions_add_peer(P[app].m, P[nm].pub, NOW), PL_OK);
    assert_int_equal(pl_nm_sessions_add_peer(P[nm].m, P[app].pub, NOW), PL_OK);
}

static void request(int from, int to, const char *text, uint64_t *id) {
    assert_int_equal(pl_nm_sessions_request(P[from].m, P[to].pub, (const uint8_t *)text, strlen(text),
                                            NOW, id),
                     PL_OK);
    drain(from);
}

/* ---- tests ---- */

static void test_establish_and_request(void **state) {
    (void)state;
    reset_world();
    int nm = new_party(PL_NM_ROLE_NODE_MANAGER), app = new_party(PL_NM_ROLE_APP);
    link_pair(nm, app);
    pump();
    assert_int_equal(P[nm].established, 1);
    assert_int_equal(P[app].established, 1);
    assert_false(P[nm].last_replaced);
    assert_memory_equal(P[nm].session_id, P[app].session_id, 32);
    pl_nm_peer_state st;
    assert_int_equal(pl_nm_sessions_peer_state(P[nm].m, P[app].pub, &st), PL_OK);
    assert_int_equal(st, PL_NM_PEER_ESTABLISHED);

    uint64_t id;
    request(nm, app, "ping", &id);
    pump();
    assert_int_equal(P[app].requests, 1);
    assert_string_equal(P[app].last_body, "ping");
    assert_int_equal(P[app].last_id, id);
    assert_int_equal(pl_nm_sessions_respond(P[app].m, P[nm].pub, id, (const uint8_t *)"pong", 4, NOW), PL_OK);
    pump();
    assert_int_equal(P[nm].responses, 1);
    assert_string_equal(P[nm].last_body, "pong");
    assert_int_equal(P[nm].last_id, id);
    /* A second response to the same id is a late duplicate: ignored. */
    assert_int_equal(pl_nm_sessions_respond(P[app].m, P[nm].pub, id, (const uint8_t *)"x", 1, NOW), PL_OK);
    pump();
    assert_int_equal(P[nm].responses, 1);

    /* The app asks too; bodies up to the bound, not beyond. */
    request(app, nm, "status?", &id);
    pump();
    assert_int_equal(P[nm].requests, 1);
    static uint8_t big[PL_NM_SESSION_BODY_MAX + 1];
    assert_int_equal(pl_nm_sessions_request(P[app].m, P[nm].pub, big, sizeof big, NOW, NULL), PL_ERR_TOO_LARGE);
    assert_int_equal(pl_nm_sessions_request(P[app].m, P[nm].pub, big, sizeof big - 1, NOW, &id), PL_OK);
    pump();
    assert_int_equal(P[nm].requests, 2);
    reset_world();
}

static void test_requests_queue_until_established(void **state) {
    (void)state;
    reset_world();
    int nm = new_party(PL_NM_ROLE_NODE_MANAGER), app = new_party(PL_NM_ROLE_APP);
    assert_int_equal(pl_nm_sessions_add_peer(P[nm].m, P[app].pub, NOW), PL_OK);
    uint64_t id;
    request(nm, app, "early", &id);
    pump(); /* the app has not added the peer: nothing answers */
    assert_int_equal(P[nm].established, 0);
    assert_int_equal(pl_nm_sessions_add_peer(P[app].m, P[nm].pub, NOW), PL_OK);
    pump();
    /* This relay keeps no mailbox, so message 1 was lost; the knock came
     * while that attempt was fresh, so the next attempt (after the
     * time-out and one backoff step) brings the session. */
    advance(PL_NM_SESSION_HS_TIMEOUT_MS + PL_NM_SESSION_BACKOFF_MIN_MS);
    assert_int_equal(P[nm].established, 1);
    assert_int_equal(P[app].requests, 1);
    assert_string_equal(P[app].last_body, "early");
    reset_world();
}

static void test_app_restart_reestablishes(void **state) {
    (void)state;
    reset_world();
    int nm = new_party(PL_NM_ROLE_NODE_MANAGER), app = new_party(PL_NM_ROLE_APP);
    link_pair(nm, app);
    pump();
    uint8_t old_id[32];
    memcpy(old_id, P[nm].session_id, 32);
    advance(5000);
    stop(app);
    start(app, 0);
    assert_int_equal(pl_nm_sessions_add_peer(P[app].m, P[nm].pub, NOW), PL_OK);
    pump();
    assert_int_equal(P[nm].established, 2);
    assert_true(P[nm].last_replaced);
    assert_memory_not_equal(old_id, P[nm].session_id, 32);
    assert_memory_equal(P[nm].session_id, P[app].session_id, 32);
    uint64_t id;
    request(nm, app, "after restart", &id);
    pump();
    assert_string_equal(P[app].last_body, "after restart");
    reset_world();
}

static void test_nm_restart_reestablishes(void **state) {
    (void)state;
    reset_world();
    int nm = new_party(PL_NM_ROLE_NODE_MANAGER), app = new_party(PL_NM_ROLE_APP);
    link_pair(nm, app);
    pump();
    advance(3000);
    stop(nm);
    start(nm, 0);
    assert_int_equal(pl_nm_sessions_add_peer(P[nm].m, P[app].pub, NOW), PL_OK);
    pump();
    assert_int_equal(P[app].established, 2);
    assert_true(P[app].last_replaced);
    uint64_t id;
    request(app, nm, "hi", &id);
    pump();
    assert_string_equal(P[nm].last_body, "hi");
    reset_world();
}

/* Peer offline: retries back off exponentially up to the cap; when it comes
 * back, its knock brings the session up at once. */
static void test_backoff_while_offline(void **state) {
    (void)state;
    reset_world();
    int nm = new_party(PL_NM_ROLE_NODE_MANAGER), app = new_party(PL_NM_ROLE_APP);
    stop(app);
    assert_int_equal(pl_nm_sessions_add_peer(P[nm].m, P[app].pub, NOW), PL_OK);
    int64_t t0 = NOW;
    advance(10 * 60 * 1000);
    assert_true(P[nm].nretry >= 8);
    /* Gaps between a failure and its retry: [0.75, 1] * min(1 s * 2^(n-1), 60 s). */
    int64_t fail_at = t0 + PL_NM_SESSION_HS_TIMEOUT_MS;
    for (size_t i = 0; i < P[nm].nretry; i++) {
        int64_t gap = P[nm].retry_at[i] - fail_at;
        int64_t full = PL_NM_SESSION_BACKOFF_MIN_MS << (i < 6 ? i : 6);
        if (full > PL_NM_SESSION_BACKOFF_MAX_MS) full = PL_NM_SESSION_BACKOFF_MAX_MS;
        assert_true(gap <= full);
        assert_true(gap >= full - full / 4);
        fail_at = P[nm].retry_at[i] + PL_NM_SESSION_HS_TIMEOUT_MS;
    }
    start(app, 0);
    int retries = P[nm].retries;
    assert_int_equal(pl_nm_sessions_add_peer(P[app].m, P[nm].pub, NOW), PL_OK);
    pump();
    if (P[nm].established == 0) {
        /* The app came back while an attempt was under way (the backoff's
         * jitter put one within hs_timeout/2 of now): this test relay has
         * no mailbox, so that attempt's message 1 is lost and the knock is
         * answered by the next attempt, within one handshake time-out. */
        advance(PL_NM_SESSION_HS_TIMEOUT_MS + PL_NM_SESSION_BACKOFF_MIN_MS);
        assert_true(P[nm].retries <= retries + 1);
    } else {
        assert_int_equal(P[nm].retries, retries);
    }
    assert_int_equal(P[nm].established, 1);
    assert_int_equal(P[app].established, 1);
    reset_world();
}

/* The app's knocks back off too while the node manager is away. */
static void test_app_knocks_back_off(void **state) {
    (void)state;
    reset_world();
    int nm = new_party(PL_NM_ROLE_NODE_MANAGER), app = new_party(PL_NM_ROLE_APP);
    stop(nm);
    assert_int_equal(pl_nm_sessions_add_peer(P[app].m, P[nm].pub, NOW), PL_OK);
    drain(app);
    advance(5 * 60 * 1000);
    pl_nm_sessions_stats st;
    pl_nm_sessions_stats_get(P[app].m, &st);
    /* 1 + knocks at ~1, 2, 4, ... 60 s: about a dozen in 5 minutes, not 300. */
    assert_true(st.knocks_sent >= 6 && st.knocks_sent <= 16);
    reset_world();
}

/* Someone who knows both public keys (they are not secret) answers the
 * node manager's message 1 with another static key: rejected. */
static void test_impostor_app_rejected(void **state) {
    (void)state;
    reset_world();
    int nm = new_party(PL_NM_ROLE_NODE_MANAGER), app = new_party(PL_NM_ROLE_APP);
    stop(app);
    pl_nm_rendezvous rv;
    pl_nm_rendezvous_derive(&rv, P[nm].pub, P[app].pub);
    capture_topic = rv.relay_topic;
    assert_int_equal(pl_nm_sessions_add_peer(P[nm].m, P[app].pub, NOW), PL_OK);
    drain(nm);
    assert_int_equal(ncaptured, 1);
    uint8_t w1[4096];
    size_t w1len;
    assert_int_equal(pl_base64_decode(w1, sizeof w1, &w1len, captured[0], strlen(captured[0]), PL_B64_STD), PL_OK);

    /* The nametag the node manager expects for message 2 (computed with the
     * real app's key, which the impostor lacks; the tag is public anyway). */
    const uint8_t *prologue = (const uint8_t *)PL_NM_SESSION_PROLOGUE;
    size_t plen = strlen(PL_NM_SESSION_PROLOGUE);
    pl_noise_keys real = {.static_priv = P[app].priv, .remote_static_pub = P[nm].pub};
    pl_noise_hs *shadow = NULL;
    assert_int_equal(pl_noise_hs_new(&shadow, PL_NOISE_K1K1, PL_NOISE_RESPONDER, &real, prologue, plen, NULL), PL_OK);
    uint8_t *pl = NULL;
    size_t pllen = 0;
    assert_int_equal(pl_noise_hs_read(shadow, w1, w1len, rv.nametag, &pl, &pllen), PL_OK);
    uint8_t tag2[16];
    pl_noise_hs_next_nametag(shadow, tag2);
    pl_free_secret(pl, pllen);
    pl_noise_hs_free(shadow);

    uint8_t ipriv[32], ipub[32];
    pl_x25519_keypair(ipub, ipriv);
    pl_noise_keys fake = {.static_priv = ipriv, .remote_static_pub = P[nm].pub};
    pl_noise_hs *imp = NULL;
    assert_int_equal(pl_noise_hs_new(&imp, PL_NOISE_K1K1, PL_NOISE_RESPONDER, &fake, prologue, plen, NULL), PL_OK);
    assert_int_equal(pl_noise_hs_read(imp, w1, w1len, rv.nametag, &pl, &pllen), PL_OK);
    uint8_t *w2 = NULL;
    size_t w2len = 0;
    assert_int_equal(pl_noise_hs_write(imp, tag2, pl, pllen, &w2, &w2len), PL_OK);
    pl_free_secret(pl, pllen);
    pl_noise_hs_free(imp);
    char b64[8192];
    assert_int_equal(pl_base64_encode(b64, sizeof b64, w2, w2len, PL_B64_STD), PL_OK);
    pl_free(w2);
    assert_int_not_equal(pl_nm_sessions_on_relay_message(P[nm].m, rv.relay_topic, b64, strlen(b64), NOW), PL_OK);
    drain(nm);
    assert_int_equal(P[nm].rejected, 1);
    assert_int_equal(P[nm].last_err, PL_ERR_UNKNOWN_PEER);
    assert_int_equal(P[nm].established, 0);
    assert_int_equal(P[nm].retries, 1);
    reset_world();
}

/* A tampered message 3 at the app: rejected, no session; the next genuine
 * handshake still works. */
static void test_tampered_msg3_rejected(void **state) {
    (void)state;
    reset_world();
    int nm = new_party(PL_NM_ROLE_NODE_MANAGER), app = new_party(PL_NM_ROLE_APP);
    assert_int_equal(pl_nm_sessions_add_peer(P[app].m, P[nm].pub, NOW), PL_OK);
    drain(app);
    pl_nm_rendezvous rv;
    pl_nm_rendezvous_derive(&rv, P[nm].pub, P[app].pub);
    capture_topic = rv.relay_topic;
    P[app].online = false; /* hold the app's answers: we deliver by hand */
    assert_int_equal(pl_nm_sessions_add_peer(P[nm].m, P[app].pub, NOW), PL_OK);
    drain(nm);
    /* captured[0] = message 1; give it to the app, capture message 2 */
    assert_int_equal(pl_nm_sessions_on_relay_message(P[app].m, rv.relay_topic, captured[0], strlen(captured[0]), NOW), PL_OK);
    drain(app);
    assert_int_equal(ncaptured, 2);
    assert_int_equal(pl_nm_sessions_on_relay_message(P[nm].m, rv.relay_topic, captured[1], strlen(captured[1]), NOW), PL_OK);
    drain(nm);
    assert_int_equal(ncaptured, 3);
    /* flip a byte of message 3's ciphertext (after nametag, id, length) */
    uint8_t w[4096];
    size_t wl;
    assert_int_equal(pl_base64_decode(w, sizeof w, &wl, captured[2], strlen(captured[2]), PL_B64_STD), PL_OK);
    w[wl - 5] ^= 1;
    char b64[8192];
    assert_int_equal(pl_base64_encode(b64, sizeof b64, w, wl, PL_B64_STD), PL_OK);
    assert_int_not_equal(pl_nm_sessions_on_relay_message(P[app].m, rv.relay_topic, b64, strlen(b64), NOW), PL_OK);
    drain(app);
    assert_int_equal(P[app].rejected, 1);
    assert_int_equal(P[app].established, 0);
    /* Replaying the genuine message 3 now finds no handshake to finish. */
    assert_int_equal(pl_nm_sessions_on_relay_message(P[app].m, rv.relay_topic, captured[2], strlen(captured[2]), NOW), PL_OK);
    drain(app);
    assert_int_equal(P[app].established, 0);
    /* Life goes on: the node manager gets no READY, retries, succeeds. */
    P[app].online = true;
    capture_topic = NULL;
    advance(30000);
    assert_int_equal(P[app].established, 1);
    assert_int_equal(P[nm].established, 1);
    reset_world();
}

/* A message 1 kept by a relay mailbox and delivered a minute later is not
 * answered (and a replay of a fresh one gets an answer nobody can finish). */
static void test_stale_msg1_ignored(void **state) {
    (void)state;
    reset_world();
    int nm = new_party(PL_NM_ROLE_NODE_MANAGER), app = new_party(PL_NM_ROLE_APP);
    assert_int_equal(pl_nm_sessions_add_peer(P[app].m, P[nm].pub, NOW), PL_OK);
    drain(app);
    pl_nm_rendezvous rv;
    pl_nm_rendezvous_derive(&rv, P[nm].pub, P[app].pub);
    capture_topic = rv.relay_topic;
    P[nm].online = false;
    assert_int_equal(pl_nm_sessions_add_peer(P[nm].m, P[app].pub, NOW), PL_OK);
    drain(nm);
    size_t before = ncaptured;
    NOW += 60000;
    assert_int_equal(pl_nm_sessions_on_relay_message(P[app].m, rv.relay_topic, captured[0], strlen(captured[0]), NOW), PL_OK);
    drain(app);
    assert_int_equal(ncaptured, before); /* no message 2 */
    reset_world();
}

static void test_request_timeout_triggers_rehandshake(void **state) {
    (void)state;
    reset_world();
    int nm = new_party(PL_NM_ROLE_NODE_MANAGER), app = new_party(PL_NM_ROLE_APP);
    link_pair(nm, app);
    pump();
    P[app].online = false; /* the app vanished without a word */
    uint64_t id;
    request(nm, app, "anyone?", &id);
    int connecting = P[nm].connecting;
    advance(20000);
    assert_int_equal(P[nm].failed, 1);
    assert_int_equal(P[nm].last_err, PL_ERR_TIMEOUT);
    assert_int_equal(P[nm].last_id, id);
    assert_true(P[nm].connecting > connecting);
    /* Removing a peer cancels its requests. */
    request(nm, app, "again", &id);
    assert_int_equal(pl_nm_sessions_remove_peer(P[nm].m, P[app].pub, NOW), PL_OK);
    drain(nm);
    assert_int_equal(P[nm].failed, 2);
    assert_int_equal(P[nm].last_err, PL_ERR_CANCELLED);
    assert_int_equal(pl_nm_sessions_remove_peer(P[nm].m, P[app].pub, NOW), PL_ERR_NOT_FOUND);
    assert_int_equal(pl_nm_sessions_request(P[nm].m, P[app].pub, NULL, 0, NOW, NULL), PL_ERR_NOT_FOUND);
    reset_world();
}

static void test_bad_input(void **state) {
    (void)state;
    reset_world();
    int nm = new_party(PL_NM_ROLE_NODE_MANAGER), app = new_party(PL_NM_ROLE_APP);
    link_pair(nm, app);
    pump();
    pl_nm_rendezvous rv;
    pl_nm_rendezvous_derive(&rv, P[nm].pub, P[app].pub);
    uint64_t seed = pl_test_seed();
    for (int round = 0; round < 500; round++) {
        uint8_t junk[600];
        size_t n = (size_t)(pl_test_rand(&seed) % sizeof junk);
        pl_test_rand_bytes(&seed, junk, n);
        if (round % 3 == 0 && n >= 16) memcpy(junk, rv.nametag, 16);      /* looks like msg 1 */
        if (round % 3 == 1 && n >= 16) memcpy(junk, rv.rv + 16, 16);      /* looks like a knock */
        char b64[1024];
        assert_int_equal(pl_base64_encode(b64, sizeof b64, junk, n, PL_B64_STD), PL_OK);
        for (int who = 0; who < 2; who++) {
            pl_nm_sessions_on_relay_message(P[who].m, rv.relay_topic, b64, strlen(b64), NOW);
            for (size_t t = 0; t < P[who].ntopics; t++)
                pl_nm_sessions_on_relay_message(P[who].m, P[who].topics[t], b64, strlen(b64), NOW);
            drain(who);
        }
    }
    assert_int_equal(pl_nm_sessions_on_relay_message(P[app].m, rv.relay_topic, "%%%", 3, NOW), PL_ERR_BAD_BASE64);
    char other[PL_TOPIC_HEX_SIZE];
    memset(other, 'a', 64);
    other[64] = 0;
    assert_int_equal(pl_nm_sessions_on_relay_message(P[app].m, other, "AAAA", 4, NOW), PL_ERR_NOT_FOUND);
    /* still working */
    uint64_t id;
    request(nm, app, "ok?", &id);
    pump();
    assert_string_equal(P[app].last_body, "ok?");
    /* adding our own key or a low-order key is refused */
    assert_int_equal(pl_nm_sessions_add_peer(P[nm].m, P[nm].pub, NOW), PL_ERR_WEAK_KEY);
    uint8_t zero[32] = {0};
    assert_int_equal(pl_nm_sessions_add_peer(P[nm].m, zero, NOW), PL_ERR_WEAK_KEY);
    assert_int_equal(pl_nm_sessions_add_peer(P[nm].m, P[app].pub, NOW), PL_ERR_EXISTS);
    reset_world();
}

static void test_many_peers(void **state) {
    (void)state;
    reset_world();
    int nm = new_party(PL_NM_ROLE_NODE_MANAGER);
    int apps[50];
    for (int i = 0; i < 50; i++) apps[i] = new_party(PL_NM_ROLE_APP);
    for (int i = 0; i < 50; i++) link_pair(nm, apps[i]);
    pump();
    size_t est = 0;
    assert_int_equal(pl_nm_sessions_count(P[nm].m, &est), 50);
    assert_int_equal(est, 50);
    for (int i = 0; i < 50; i++) assert_int_equal(P[apps[i]].established, 1);
    reset_world();
}

static void test_config_validation(void **state) {
    (void)state;
    uint8_t priv[32] = {1};
    pl_nm_sessions *m = NULL;
    pl_nm_sessions_config cfg = {.role = 3, .static_priv = priv};
    assert_int_equal(pl_nm_sessions_new(&m, &cfg, 0), PL_ERR_INVALID_ARG);
    assert_null(m);
    cfg.role = PL_NM_ROLE_APP;
    cfg.backoff_min_ms = 5000;
    cfg.backoff_max_ms = 1000;
    assert_int_equal(pl_nm_sessions_new(&m, &cfg, 0), PL_ERR_INVALID_ARG);
    cfg.backoff_max_ms = 0;
    cfg.backoff_min_ms = 0;
    assert_int_equal(pl_nm_sessions_new(&m, &cfg, 0), PL_OK);
    assert_int_equal(pl_nm_sessions_next_deadline(m), INT64_MAX);
    pl_nm_sessions_free(m);
}


/* A second process of the same app identity (a one-shot `pairlink send`
 * beside the daemon) knocks: the node manager's new handshake echoes that
 * knock, so only the knocking process answers it; the daemon leaves it. */
static void test_second_process_gets_its_own_handshake(void **state) {
    (void)state;
    reset_world();
    int nm = new_party(PL_NM_ROLE_NODE_MANAGER), daemon = new_party(PL_NM_ROLE_APP);
    link_pair(nm, daemon);
    pump();
    assert_int_equal(P[daemon].established, 1);
    advance(3000);
    int sender = new_party(PL_NM_ROLE_APP);
    stop(sender);
    memcpy(P[sender].priv, P[daemon].priv, 32);
    memcpy(P[sender].pub, P[daemon].pub, 32);
    start(sender, 0);
    pl_nm_sessions_stats before, after;
    pl_nm_sessions_stats_get(P[daemon].m, &before);
    assert_int_equal(pl_nm_sessions_add_peer(P[sender].m, P[nm].pub, NOW), PL_OK);
    pump();
    assert_int_equal(P[sender].established, 1);
    assert_int_equal(P[nm].established, 2); /* the sender's session replaced the daemon's */
    assert_memory_equal(P[nm].session_id, P[sender].session_id, 32);
    /* the daemon saw the handshake meant for the sender and left it alone */
    assert_int_equal(P[daemon].established, 1);
    pl_nm_sessions_stats_get(P[daemon].m, &after);
    assert_true(after.dropped > before.dropped);
    uint64_t id;
    request(sender, nm, "from send", &id);
    pump();
    assert_string_equal(P[nm].last_body, "from send");
    reset_world();
}

int main(void) {
    pl_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_second_process_gets_its_own_handshake),
        cmocka_unit_test(test_establish_and_request),
        cmocka_unit_test(test_requests_queue_until_established),
        cmocka_unit_test(test_app_restart_reestablishes),
        cmocka_unit_test(test_nm_restart_reestablishes),
        cmocka_unit_test(test_backoff_while_offline),
        cmocka_unit_test(test_app_knocks_back_off),
        cmocka_unit_test(test_impostor_app_rejected),
        cmocka_unit_test(test_tampered_msg3_rejected),
        cmocka_unit_test(test_stale_msg1_ignored),
        cmocka_unit_test(test_request_timeout_triggers_rehandshake),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_many_peers),
        cmocka_unit_test(test_config_validation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
