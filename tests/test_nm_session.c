/* SPDX-License-Identifier: Apache-2.0 */
/* Node-manager session core (nm_session.h) over the loopback transport
 * (loopback.h) on a virtual driver: no sockets, time is explicit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "pairlink/codec.h"
#include "pairlink/crypto.h"
#include "pairlink/driver.h"
#include "pairlink/loopback.h"
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

/* ---- the parties: each on a loopback endpoint, one virtual driver ---- */

typedef struct party {
    pl_nm_sessions *m;
    uint8_t priv[32], pub[32];
    pl_nm_role role;
    bool online; /* offline: deaf, and what it publishes is lost */
    pl_transport *tp;
    pl_driver_task task;
    char topics[MAXTOPICS][PL_NM_SESSION_TOPIC_SIZE];
    size_t ntopics;
    /* what happened */
    int established, rejected, retries, requests, responses, failed, connecting, knocks, revoked;
    bool last_replaced;
    uint8_t session_id[32];
    uint64_t last_id;
    char last_body[256];
    pl_err last_err;
    int64_t retry_at[32];
    size_t nretry;
} party;

typedef struct captured_msg {
    uint8_t *data;
    size_t len;
} captured_msg;

static party P[MAXN];
static size_t NP;
static pl_driver *D;
static pl_loopback_hub *H;
static int64_t NOW;
/* Capture: every message published on a topic, for replay tests. */
static captured_msg captured[64];
static size_t ncaptured;
static const char *capture_topic;

static void drain(int who);

static void free_world(void) {
    for (size_t i = 0; i < NP; i++) {
        pl_driver_stop(&P[i].task);
        if (P[i].tp) pl_transport_close(P[i].tp, 0, NULL, NULL);
        pl_nm_sessions_free(P[i].m);
    }
    if (D) pl_driver_run(D);
    pl_loopback_hub_free(H);
    pl_driver_free(D);
    D = NULL;
    H = NULL;
    memset(P, 0, sizeof P);
    NP = 0;
    for (size_t i = 0; i < ncaptured; i++) free(captured[i].data);
    ncaptured = 0;
    capture_topic = NULL;
}

static void reset_world(void) {
    free_world();
    NOW = 1700000000000;
    assert_int_equal(pl_driver_new_virtual(&D, NOW), PL_OK);
    assert_int_equal(pl_loopback_hub_new(&H, D, NULL), PL_OK);
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
            if (!subscribed(p, o.topic)) {
                assert_true(p->ntopics < MAXTOPICS);
                memcpy(p->topics[p->ntopics++], o.topic, PL_NM_SESSION_TOPIC_SIZE);
            }
            assert_int_equal(pl_transport_subscribe(p->tp, o.topic), PL_OK);
            break;
        case PL_NM_SOUT_UNSUBSCRIBE:
            for (size_t i = 0; i < p->ntopics; i++)
                if (!strcmp(p->topics[i], o.topic)) {
                    memcpy(p->topics[i], p->topics[--p->ntopics], PL_NM_SESSION_TOPIC_SIZE);
                    break;
                }
            assert_int_equal(pl_transport_unsubscribe(p->tp, o.topic), PL_OK);
            break;
        case PL_NM_SOUT_PUBLISH:
            assert_int_equal(o.ttl_s, PL_NM_SESSION_RELAY_TTL_S);
            if (capture_topic && !strcmp(capture_topic, o.topic) && ncaptured < 64) {
                captured_msg *c = &captured[ncaptured++];
                c->data = malloc(o.message_len);
                assert_non_null(c->data);
                memcpy(c->data, o.message, o.message_len);
                c->len = o.message_len;
            }
            if (p->online) {
                pl_publish_opts po = {.ttl_s = o.ttl_s};
                assert_int_equal(pl_transport_publish(p->tp, o.topic, o.message, o.message_len, &po),
                                 PL_OK);
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
            case PL_NM_SEV_REVOKED:
                p->revoked++;
                p->last_id = o.id;
                assert_null(o.body);
                break;
            }
            break;
        }
        pl_nm_session_output_clear(&o);
    }
}

static void on_message(void *ud, pl_transport *t, const char *topic, const uint8_t *data,
                       size_t len, const pl_delivery_info *info) {
    (void)t, (void)info;
    party *p = ud;
    if (!p->m) return;
    NOW = pl_driver_now(D);
    pl_nm_sessions_on_message(p->m, topic, data, len, NOW);
    drain((int)(p - P));
}

static int64_t party_deadline(pl_driver_task *t) {
    party *p = t->data;
    return p->m ? pl_nm_sessions_next_deadline(p->m) : INT64_MAX;
}

static void party_timer(pl_driver_task *t, int64_t now) {
    party *p = t->data;
    NOW = now;
    pl_nm_sessions_on_timer(p->m, NOW);
    drain((int)(p - P));
}

static void party_before_wait(pl_driver_task *t, int64_t now) {
    party *p = t->data;
    NOW = now;
    if (p->m) drain((int)(p - P));
}

/* The driver catches up with a NOW moved by hand (direct calls). */
static void catch_up(void) {
    if (NOW > pl_driver_now(D)) pl_driver_advance(D, NOW - pl_driver_now(D));
}

/* Deliver what is in flight (and what that causes) until quiet. */
static void pump(void) {
    catch_up();
    pl_driver_run(D);
}

static void advance(int64_t ms) {
    catch_up();
    pl_driver_advance(D, ms);
    NOW = pl_driver_now(D);
}

static uint32_t g_max_handshakes; /* 0: the default */

static void start(int i, int64_t hs_timeout) {
    pl_nm_sessions_config cfg = {.role = P[i].role, .static_priv = P[i].priv,
                                 .handshake_timeout_ms = hs_timeout, .request_timeout_ms = 20000,
                                 .max_handshakes = g_max_handshakes};
    assert_int_equal(pl_nm_sessions_new(&P[i].m, &cfg, NOW), PL_OK);
    P[i].online = true;
    P[i].ntopics = 0;
    pl_transport_handler h = {on_message, NULL, &P[i], NULL};
    assert_int_equal(pl_loopback_new(&P[i].tp, H, "party", &h), PL_OK);
    P[i].task.data = &P[i];
    P[i].task.next_deadline = party_deadline;
    P[i].task.on_timer = party_timer;
    P[i].task.before_wait = party_before_wait;
    pl_driver_start(D, &P[i].task);
}

static int new_party(pl_nm_role role) {
    int i = (int)NP++;
    P[i].role = role;
    pl_x25519_keypair(P[i].pub, P[i].priv);
    start(i, 0);
    return i;
}

static void set_online(int i, bool online) {
    P[i].online = online;
    pl_loopback_set_deaf(P[i].tp, !online);
}

static void stop(int i) {
    pl_driver_stop(&P[i].task);
    pl_transport_close(P[i].tp, 0, NULL, NULL);
    P[i].tp = NULL;
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

/* REVOKE (spec 13.5): a frame of its own, never a request; queued until a
 * session is up, answered like a request. */
static void test_revoke(void **state) {
    (void)state;
    reset_world();
    int nm = new_party(PL_NM_ROLE_NODE_MANAGER), app = new_party(PL_NM_ROLE_APP);
    assert_int_equal(pl_nm_sessions_add_peer(P[app].m, P[nm].pub, NOW), PL_OK);
    uint64_t id = 99;
    assert_int_equal(pl_nm_sessions_revoke(P[app].m, P[nm].pub, NOW, &id), PL_OK); /* no session yet */
    uint8_t stranger[32] = {7};
    assert_int_equal(pl_nm_sessions_revoke(P[app].m, stranger, NOW, NULL), PL_ERR_NOT_FOUND);
    drain(app);
    assert_int_equal(pl_nm_sessions_add_peer(P[nm].m, P[app].pub, NOW), PL_OK);
    pump();
    assert_int_equal(P[nm].revoked, 1);
    assert_int_equal(P[nm].requests, 0);
    assert_int_equal(P[nm].last_id, id);
    assert_int_equal(pl_nm_sessions_respond(P[nm].m, P[app].pub, id, NULL, 0, NOW), PL_OK);
    pump();
    assert_int_equal(P[app].responses, 1);
    assert_int_equal(P[app].last_id, id);
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
    capture_topic = rv.content_topic;
    assert_int_equal(pl_nm_sessions_add_peer(P[nm].m, P[app].pub, NOW), PL_OK);
    drain(nm);
    assert_int_equal(ncaptured, 1);
    const uint8_t *w1 = captured[0].data;
    size_t w1len = captured[0].len;

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
    assert_int_not_equal(pl_nm_sessions_on_message(P[nm].m, rv.content_topic, w2, w2len, NOW), PL_OK);
    pl_free(w2);
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
    capture_topic = rv.content_topic;
    set_online(app, false); /* hold the app's answers: we deliver by hand */
    assert_int_equal(pl_nm_sessions_add_peer(P[nm].m, P[app].pub, NOW), PL_OK);
    drain(nm);
    /* captured[0] = message 1; give it to the app, capture message 2 */
    assert_int_equal(pl_nm_sessions_on_message(P[app].m, rv.content_topic, captured[0].data, captured[0].len, NOW), PL_OK);
    drain(app);
    assert_int_equal(ncaptured, 2);
    assert_int_equal(pl_nm_sessions_on_message(P[nm].m, rv.content_topic, captured[1].data, captured[1].len, NOW), PL_OK);
    drain(nm);
    assert_int_equal(ncaptured, 3);
    /* flip a byte of message 3's ciphertext (after nametag, id, length) */
    uint8_t w[4096];
    size_t wl = captured[2].len;
    assert_true(wl <= sizeof w);
    memcpy(w, captured[2].data, wl);
    w[wl - 5] ^= 1;
    assert_int_not_equal(pl_nm_sessions_on_message(P[app].m, rv.content_topic, w, wl, NOW), PL_OK);
    drain(app);
    assert_int_equal(P[app].rejected, 1);
    assert_int_equal(P[app].established, 0);
    /* Replaying the genuine message 3 now finds no handshake to finish. */
    assert_int_equal(pl_nm_sessions_on_message(P[app].m, rv.content_topic, captured[2].data, captured[2].len, NOW), PL_OK);
    drain(app);
    assert_int_equal(P[app].established, 0);
    /* Life goes on: the node manager gets no READY, retries, succeeds. */
    set_online(app, true);
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
    capture_topic = rv.content_topic;
    set_online(nm, false);
    assert_int_equal(pl_nm_sessions_add_peer(P[nm].m, P[app].pub, NOW), PL_OK);
    drain(nm);
    size_t before = ncaptured;
    NOW += 60000;
    assert_int_equal(pl_nm_sessions_on_message(P[app].m, rv.content_topic, captured[0].data, captured[0].len, NOW), PL_OK);
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
    set_online(app, false); /* the app vanished without a word */
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
        for (int who = 0; who < 2; who++) {
            pl_nm_sessions_on_message(P[who].m, rv.content_topic, junk, n, NOW);
            for (size_t t = 0; t < P[who].ntopics; t++)
                pl_nm_sessions_on_message(P[who].m, P[who].topics[t], junk, n, NOW);
            drain(who);
        }
    }
    /* through the hub too: garbage injected on the rendezvous topic */
    uint8_t junk[40] = {0};
    assert_int_equal(pl_loopback_hub_inject(H, rv.content_topic, junk, sizeof junk, NULL), PL_OK);
    pump();
    assert_int_equal(pl_nm_sessions_on_bad_delivery(P[app].m, rv.content_topic, PL_ERR_BAD_BASE64, NOW),
                     PL_ERR_BAD_BASE64);
    static uint8_t huge[PL_NOISE_MAX_WIRE + 1];
    assert_int_equal(pl_nm_sessions_on_message(P[app].m, rv.content_topic, huge, sizeof huge, NOW),
                     PL_ERR_TOO_LARGE);
    const char *other = "/pairlink/1/rv-0123456789abcdef0123456789abcdef/proto";
    assert_int_equal(pl_nm_sessions_on_message(P[app].m, other, junk, 4, NOW), PL_ERR_NOT_FOUND);
    assert_int_equal(pl_nm_sessions_on_bad_delivery(P[app].m, other, PL_ERR_BAD_BASE64, NOW),
                     PL_ERR_NOT_FOUND);
    /* still working */
    uint64_t id;
    request(nm, app, "ok?", &id);
    pump();
    assert_string_equal(P[app].last_body, "ok?");
    /* adding our own key or a low-order key is refused */
    assert_int_equal(pl_nm_sessions_add_peer(P[nm].m, P[nm].pub, NOW), PL_ERR_WEAK_KEY);
    uint8_t zero[32] = {0}, one[32] = {1}, order8[32];
    assert_int_equal(pl_nm_sessions_add_peer(P[nm].m, zero, NOW), PL_ERR_WEAK_KEY);
    assert_int_equal(pl_nm_sessions_add_peer(P[nm].m, one, NOW), PL_ERR_WEAK_KEY);
    assert_int_equal(pl_hex_decode_exact(order8, sizeof order8,
                                   "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800", 64),
                     PL_OK);
    assert_int_equal(pl_nm_sessions_add_peer(P[nm].m, order8, NOW), PL_ERR_WEAK_KEY);
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

/* Admission: with at most 8 handshakes under way, 40 peers added at once
 * get 8 attempts, the rest wait their turn (never more than 8 at a time),
 * and all 40 sessions come up without a time-out or a retry. */
static void test_handshake_admission(void **state) {
    (void)state;
    reset_world();
    g_max_handshakes = 8;
    int nm = new_party(PL_NM_ROLE_NODE_MANAGER);
    g_max_handshakes = 0;
    int apps[40];
    for (int i = 0; i < 40; i++) apps[i] = new_party(PL_NM_ROLE_APP);
    for (int i = 0; i < 40; i++) assert_int_equal(pl_nm_sessions_add_peer(P[apps[i]].m, P[nm].pub, NOW), PL_OK);
    for (int i = 0; i < 40; i++) assert_int_equal(pl_nm_sessions_add_peer(P[nm].m, P[apps[i]].pub, NOW), PL_OK);
    pl_nm_sessions_stats st;
    pl_nm_sessions_stats_get(P[nm].m, &st);
    assert_int_equal(st.handshakes_started, 8);
    assert_int_equal(st.handshakes_deferred, 32);
    size_t est = 0;
    for (int step = 0; step < 200 && est < 40; step++) {
        pump();
        pl_nm_sessions_stats_get(P[nm].m, &st);
        pl_nm_sessions_count(P[nm].m, &est);
        assert_true(st.handshakes_started - est <= 8);
        advance(50);
    }
    assert_int_equal(est, 40);
    assert_int_equal(st.handshakes_started, 40);
    assert_int_equal(P[nm].retries, 0);
    for (int i = 0; i < 40; i++) assert_int_equal(P[apps[i]].established, 1);
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

static int group_teardown(void **state) {
    (void)state;
    free_world();
    return 0;
}

int main(void) {
    pl_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_second_process_gets_its_own_handshake),
        cmocka_unit_test(test_establish_and_request),
        cmocka_unit_test(test_revoke),
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
        cmocka_unit_test(test_handshake_admission),
        cmocka_unit_test(test_config_validation),
    };
    return cmocka_run_group_tests(tests, NULL, group_teardown);
}
