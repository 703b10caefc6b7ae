/* The WalletConnect pairing engine, driven by two engines joined by an
 * in-memory relay: every publish is queued and delivered by pump(), like a
 * relay would, with time passed in explicitly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pairlink/hash.h"
#include "pairlink/uri.h"
#include "pairlink/wc_pairing.h"
#include "support/support.h"

#define T0 1700000000000LL /* unix ms */
#define MAXQ 64
#define MAXSUB 16

typedef struct party party;

typedef struct queued {
    char topic[PL_TOPIC_HEX_SIZE];
    char *message;
    pl_publish_opts opts;
    party *from;
} queued;

struct party {
    const char *name;
    pl_wc_engine *e;
    char subs[MAXSUB][PL_TOPIC_HEX_SIZE];
    int n_subs;
    /* recorded events */
    int ev_count[16];
    pl_wc_event last_ev;
    /* recorded requests/responses */
    int requests;
    pl_rpc_id last_req_id;
    char last_req_topic[PL_TOPIC_HEX_SIZE];
    int responses;
    pl_err last_res_err;
    int64_t last_err_code;
    char last_err_msg[128];
    char last_result[64];
    bool auto_answer;
    /* store */
    pl_wc_pairing stored[8];
    int n_stored;
    int pending_saved, pending_removed;
    pl_wc_pending last_pending;
    char last_pending_msg[4096];
    pl_rpc_id last_seen;
    int seen_saved;
};

static queued q[MAXQ];
static int nq;
static party *world[2];
static uint32_t last_tag, last_ttl;

static pl_err tp_publish(void *ctx, const char *topic, const char *message, const pl_publish_opts *o) {
    assert_true(nq < MAXQ);
    snprintf(q[nq].topic, sizeof q[nq].topic, "%s", topic);
    q[nq].message = strdup(message);
    q[nq].opts = *o;
    q[nq].from = ctx;
    last_tag = o->tag;
    last_ttl = o->ttl;
    nq++;
    return PL_OK;
}

static pl_err tp_subscribe(void *ctx, const char *topic) {
    party *p = ctx;
    for (int i = 0; i < p->n_subs; i++)
        if (!strcmp(p->subs[i], topic)) return PL_OK;
    assert_true(p->n_subs < MAXSUB);
    snprintf(p->subs[p->n_subs++], PL_TOPIC_HEX_SIZE, "%s", topic);
    return PL_OK;
}

static pl_err tp_unsubscribe(void *ctx, const char *topic) {
    party *p = ctx;
    for (int i = 0; i < p->n_subs; i++)
        if (!strcmp(p->subs[i], topic)) {
            memmove(p->subs[i], p->subs[i + 1], (size_t)(p->n_subs - i - 1) * PL_TOPIC_HEX_SIZE);
            p->n_subs--;
            break;
        }
    return PL_OK;
}

static bool subscribed(party *p, const char *topic) {
    for (int i = 0; i < p->n_subs; i++)
        if (!strcmp(p->subs[i], topic)) return true;
    return false;
}

/* Deliver everything queued (including what deliveries cause) to every
 * other subscribed party; returns the number delivered. */
static int pump(int64_t now_ms) {
    int delivered = 0, n = nq;
    /* Deliver what was queued when called; what deliveries cause waits for
     * the next pump, so tests can step through a conversation. */
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < 2; k++) {
            party *to = world[k];
            if (to && to != q[i].from && subscribed(to, q[i].topic)) {
                pl_wc_engine_on_message(to->e, q[i].topic, q[i].message, strlen(q[i].message), now_ms);
                delivered++;
            }
        }
    }
    for (int i = 0; i < n; i++) free(q[i].message);
    memmove(q, q + n, (size_t)(nq - n) * sizeof *q);
    nq -= n;
    return delivered;
}

static void on_event(void *ud, pl_wc_engine *e, const pl_wc_event *ev) {
    party *p = ud;
    (void)e;
    p->ev_count[ev->kind]++;
    p->last_ev = *ev;
}

static void on_request(void *ud, pl_wc_engine *e, const char *topic, const pl_rpc_msg *req) {
    party *p = ud;
    p->requests++;
    p->last_req_id = req->id;
    snprintf(p->last_req_topic, sizeof p->last_req_topic, "%s", topic);
    if (p->auto_answer) assert_int_equal(pl_wc_respond(e, topic, req->method, &req->id, "{\"ok\":1}"), PL_OK);
}

static void on_response(void *ud, pl_wc_engine *e, const char *topic, const char *method,
                        const pl_rpc_id *id, const pl_rpc_msg *res, pl_err err) {
    party *p = ud;
    (void)e, (void)topic, (void)method, (void)id;
    p->responses++;
    p->last_res_err = err;
    p->last_err_code = 0;
    p->last_result[0] = 0;
    if (res && res->kind == PL_RPC_ERROR) {
        p->last_err_code = res->err_code;
        snprintf(p->last_err_msg, sizeof p->last_err_msg, "%s", res->err_message);
    } else if (res) {
        snprintf(p->last_result, sizeof p->last_result, "%s", res->result);
    }
}

static pl_err st_save(void *ctx, const pl_wc_pairing *pr) {
    party *p = ctx;
    for (int i = 0; i < p->n_stored; i++)
        if (!strcmp(p->stored[i].topic, pr->topic)) {
            p->stored[i] = *pr;
            return PL_OK;
        }
    p->stored[p->n_stored++] = *pr;
    return PL_OK;
}

static pl_err st_remove(void *ctx, const char *topic) {
    party *p = ctx;
    for (int i = 0; i < p->n_stored; i++)
        if (!strcmp(p->stored[i].topic, topic)) {
            p->stored[i] = p->stored[--p->n_stored];
            return PL_OK;
        }
    return PL_OK;
}

static pl_err st_save_pending(void *ctx, const pl_wc_pending *r) {
    party *p = ctx;
    p->pending_saved++;
    p->last_pending = *r;
    snprintf(p->last_pending_msg, sizeof p->last_pending_msg, "%s", r->message ? r->message : "");
    p->last_pending.message = NULL;
    return PL_OK;
}

static pl_err st_save_seen(void *ctx, const char *topic, const pl_rpc_id *id, int64_t until_ms) {
    party *p = ctx;
    (void)topic, (void)until_ms;
    p->last_seen = *id;
    p->seen_saved++;
    return PL_OK;
}

static pl_err st_remove_pending(void *ctx, const char *topic, const pl_rpc_id *id) {
    (void)topic, (void)id;
    ((party *)ctx)->pending_removed++;
    return PL_OK;
}

static const pl_wc_method test_method = {"test_method", 1200, 300, false, 1201, 300};

static void party_init(party *p, const char *name, bool register_test) {
    memset(p, 0, sizeof *p);
    p->name = name;
    pl_wc_config cfg = {.on_event = on_event, .ud = p};
    pl_transport tp = {p, tp_publish, tp_subscribe, tp_unsubscribe};
    pl_wc_store st = {p, st_save, st_remove, st_save_pending, st_remove_pending, st_save_seen};
    assert_int_equal(pl_wc_engine_new(&p->e, &cfg, &tp, &st), PL_OK);
    if (register_test) assert_int_equal(pl_wc_register(p->e, &test_method, on_request, on_response, p), PL_OK);
}

static party A, B;

static int setup(void **state) {
    (void)state;
    party_init(&A, "A", true);
    party_init(&B, "B", true);
    world[0] = &A;
    world[1] = &B;
    nq = 0;
    return 0;
}

static int teardown(void **state) {
    (void)state;
    while (nq) pump(T0); /* drain */
    pl_wc_engine_free(A.e);
    pl_wc_engine_free(B.e);
    return 0;
}

/* A creates, B pairs: returns the topic. */
static void pair_up(char topic[PL_TOPIC_HEX_SIZE]) {
    char *uri = NULL;
    const char *methods[] = {"test_method"};
    assert_int_equal(pl_wc_create(A.e, methods, 1, T0, &uri, topic), PL_OK);
    char topic_b[PL_TOPIC_HEX_SIZE];
    assert_int_equal(pl_wc_pair(B.e, uri, strlen(uri), T0 + 1000, topic_b), PL_OK);
    assert_string_equal(topic, topic_b);
    pl_free(uri);
}

static void test_create_and_pair_lifecycle(void **state) {
    (void)state;
    char topic[PL_TOPIC_HEX_SIZE];
    pair_up(topic);
    pl_wc_pairing pa, pb;
    assert_int_equal(pl_wc_pairing_get(A.e, topic, &pa), PL_OK);
    assert_int_equal(pl_wc_pairing_get(B.e, topic, &pb), PL_OK);
    /* proposer inactive for 5 min; responder active for 30 days */
    assert_false(pa.active);
    assert_int_equal(pa.expiry, T0 / 1000 + 300);
    assert_true(pb.active);
    assert_int_equal(pb.expiry, (T0 + 1000) / 1000 + 30 * 86400);
    assert_memory_equal(pa.sym_key, pb.sym_key, 32);
    uint8_t h[32];
    char hex[65];
    pl_sha256(h, pa.sym_key, 32);
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", h[i]);
    assert_string_equal(hex, topic);
    assert_true(subscribed(&A, topic) && subscribed(&B, topic));
    assert_int_equal(A.n_stored, 1);
    assert_int_equal(B.n_stored, 1);

    /* A request from the proposer answered by the responder activates A. */
    B.auto_answer = true;
    pl_rpc_id id;
    assert_int_equal(pl_wc_request(A.e, topic, "test_method", "{\"x\":1}", T0 + 2000, &id), PL_OK);
    assert_int_equal(last_tag, 1200);
    assert_int_equal(pump(T0 + 3000), 1); /* request to B; B's answer is queued */
    assert_int_equal(B.requests, 1);
    assert_true(pl_rpc_id_equal(&B.last_req_id, &id));
    assert_int_equal(last_tag, 1201);
    assert_int_equal(pump(T0 + 4000), 1);
    assert_int_equal(A.responses, 1);
    assert_int_equal(A.last_res_err, PL_OK);
    assert_string_equal(A.last_result, "{\"ok\":1}");
    assert_int_equal(A.ev_count[PL_WC_EV_ACTIVATED], 1);
    assert_int_equal(pl_wc_pairing_get(A.e, topic, &pa), PL_OK);
    assert_true(pa.active);
    assert_int_equal(pa.expiry, (T0 + 4000) / 1000 + 30 * 86400);
    assert_true(A.stored[0].active); /* persisted */
    assert_int_equal(A.pending_saved, 1);
    assert_int_equal(A.pending_removed, 1);

    /* Every later delivery renews the active pairing on both sides. */
    int64_t later = T0 + 10LL * 86400 * 1000;
    assert_int_equal(pl_wc_ping(B.e, topic, later, NULL), PL_OK);
    pump(later);
    pump(later);
    assert_int_equal(B.ev_count[PL_WC_EV_PONG], 1);
    assert_int_equal(A.ev_count[PL_WC_EV_PING], 1);
    assert_int_equal(pl_wc_pairing_get(A.e, topic, &pa), PL_OK);
    assert_int_equal(pl_wc_pairing_get(B.e, topic, &pb), PL_OK);
    assert_int_equal(pa.expiry, later / 1000 + 30 * 86400);
    assert_int_equal(pb.expiry, later / 1000 + 30 * 86400);
    assert_true(A.ev_count[PL_WC_EV_RENEWED] >= 1);
}

static void test_unregistered_method_gets_10001(void **state) {
    (void)state;
    char topic[PL_TOPIC_HEX_SIZE];
    /* B has no protocol for wc_sessionPropose; A does. */
    pl_wc_engine_free(B.e);
    party_init(&B, "B", false);
    world[1] = &B;
    const pl_wc_method propose = {"wc_sessionPropose", 1100, 300, true, 1101, 300};
    assert_int_equal(pl_wc_register(A.e, &propose, NULL, on_response, &A), PL_OK);
    pair_up(topic);
    pl_rpc_id id;
    assert_int_equal(pl_wc_request(A.e, topic, "wc_sessionPropose", "{}", T0 + 2000, &id), PL_OK);
    pump(T0 + 2000);
    assert_int_equal(B.ev_count[PL_WC_EV_UNSUPPORTED], 1);
    assert_int_equal(last_tag, 0);
    assert_int_equal(last_ttl, 86400);
    pump(T0 + 2000);
    assert_int_equal(A.responses, 1);
    assert_int_equal(A.last_err_code, 10001);
    assert_string_equal(A.last_err_msg, "Unsupported wc_ method. wc_sessionPropose");
}

static void test_redelivery_handled_once(void **state) {
    (void)state;
    char topic[PL_TOPIC_HEX_SIZE];
    pair_up(topic);
    assert_int_equal(pl_wc_request(A.e, topic, "test_method", "{}", T0, NULL), PL_OK);
    char *copy = strdup(q[0].message);
    pump(T0);
    assert_int_equal(pl_wc_engine_on_message(B.e, topic, copy, strlen(copy), T0), PL_OK);
    assert_int_equal(B.requests, 1);
    free(copy);
}

static void test_inactive_pairing_expires(void **state) {
    (void)state;
    char *uri = NULL, topic[PL_TOPIC_HEX_SIZE];
    assert_int_equal(pl_wc_create(A.e, NULL, 0, T0, &uri, topic), PL_OK);
    pl_free(uri);
    assert_int_equal(pl_wc_engine_next_deadline(A.e), T0 + 300 * 1000);
    pl_wc_engine_on_timer(A.e, T0 + 299 * 1000);
    assert_int_equal(A.ev_count[PL_WC_EV_EXPIRED], 0);
    pl_wc_engine_on_timer(A.e, T0 + 300 * 1000);
    assert_int_equal(A.ev_count[PL_WC_EV_EXPIRED], 1);
    assert_false(subscribed(&A, topic));
    assert_int_equal(A.n_stored, 0);
    pl_wc_pairing p;
    assert_int_equal(pl_wc_pairing_get(A.e, topic, &p), PL_ERR_NO_MATCHING_KEY);
    assert_int_equal(pl_wc_ping(A.e, topic, T0, NULL), PL_ERR_NO_MATCHING_KEY);
}

static void test_delete_reaches_peer(void **state) {
    (void)state;
    char topic[PL_TOPIC_HEX_SIZE];
    pair_up(topic);
    assert_int_equal(pl_wc_delete(B.e, topic, T0), PL_OK);
    assert_int_equal(last_tag, 1000);
    assert_int_equal(B.ev_count[PL_WC_EV_DELETED], 1);
    assert_false(B.last_ev.by_peer);
    /* B unsubscribed already, so deliver by hand as the relay would to A */
    assert_int_equal(pump(T0), 1);
    assert_int_equal(A.ev_count[PL_WC_EV_DELETED], 1);
    assert_true(A.last_ev.by_peer);
    assert_false(subscribed(&A, topic));
    assert_int_equal(A.n_stored + B.n_stored, 0);
}

static void test_request_timeout_and_pending_on_delete(void **state) {
    (void)state;
    char topic[PL_TOPIC_HEX_SIZE];
    pair_up(topic);
    pl_rpc_id id;
    assert_int_equal(pl_wc_request(A.e, topic, "test_method", NULL, T0, &id), PL_OK);
    nq = 0; /* the relay lost it */
    free(q[0].message);
    assert_int_equal(pl_wc_engine_next_deadline(A.e), T0 + 300 * 1000);
    pl_wc_engine_on_timer(A.e, T0 + 300 * 1000);
    assert_int_equal(A.ev_count[PL_WC_EV_REQUEST_TIMEOUT], 1);
    assert_int_equal(A.responses, 1);
    assert_int_equal(A.last_res_err, PL_ERR_TIMEOUT);
    /* the inactive pairing expired at that moment too */
    assert_int_equal(A.ev_count[PL_WC_EV_EXPIRED], 1);
    /* a pending request whose pairing disappears is failed with NO_MATCHING_KEY */
    pair_up(topic);
    assert_int_equal(pl_wc_request(A.e, topic, "test_method", NULL, T0, &id), PL_OK);
    assert_int_equal(pl_wc_delete(A.e, topic, T0), PL_OK);
    assert_int_equal(A.responses, 2);
    assert_int_equal(A.last_res_err, PL_ERR_NO_MATCHING_KEY);
}

static void test_bad_input(void **state) {
    (void)state;
    char topic[PL_TOPIC_HEX_SIZE];
    pair_up(topic);
    const char *garbage[] = {"", "!!!", "AAAA", "AHF3ZWNmYWFzZGFkc3paHoQ96/mLAdanVxi17icRXq+jyrqXA8ocVgGmryQZBFMg"};
    for (size_t i = 0; i < sizeof garbage / sizeof *garbage; i++)
        assert_int_not_equal(pl_wc_engine_on_message(B.e, topic, garbage[i], strlen(garbage[i]), T0), PL_OK);
    assert_int_equal(B.ev_count[PL_WC_EV_BAD_MESSAGE], 4);
    /* a sealed non-JSON-RPC payload */
    pl_wc_pairing pb;
    assert_int_equal(pl_wc_pairing_get(B.e, topic, &pb), PL_OK);
    char *env = NULL;
    pl_envelope_params prm = {.type = 0};
    assert_int_equal(pl_envelope_seal(&env, pb.sym_key, (const uint8_t *)"[1,2]", 5, &prm), PL_OK);
    assert_int_not_equal(pl_wc_engine_on_message(B.e, topic, env, strlen(env), T0), PL_OK);
    pl_free(env);
    /* unknown topic */
    assert_int_equal(pl_wc_engine_on_message(B.e, "00", "x", 1, T0), PL_ERR_NO_MATCHING_KEY);
    /* pairing twice, and an expired URI */
    char *uri = NULL, t2[PL_TOPIC_HEX_SIZE];
    assert_int_equal(pl_wc_create(A.e, NULL, 0, T0, &uri, t2), PL_OK);
    assert_int_equal(pl_wc_pair(B.e, uri, strlen(uri), T0, NULL), PL_OK);
    assert_int_equal(pl_wc_pair(B.e, uri, strlen(uri), T0, NULL), PL_ERR_PAIRING_EXISTS);
    party C;
    party_init(&C, "C", false);
    assert_int_equal(pl_wc_pair(C.e, uri, strlen(uri), T0 + 301 * 1000, NULL), PL_ERR_URI_EXPIRED);
    pl_wc_engine_free(C.e);
    pl_free(uri);
    /* registering a built-in or a duplicate */
    const pl_wc_method ping = {"wc_pairingPing", 1, 1, false, 1, 1};
    assert_int_equal(pl_wc_register(A.e, &ping, NULL, NULL, NULL), PL_ERR_INVALID_ARG);
    assert_int_equal(pl_wc_register(A.e, &test_method, NULL, NULL, NULL), PL_ERR_EXISTS);
    assert_int_equal(pl_wc_request(A.e, topic, "nope", NULL, T0, NULL), PL_ERR_UNSUPPORTED_METHOD);
}

static void test_restore_continues(void **state) {
    (void)state;
    char topic[PL_TOPIC_HEX_SIZE];
    pair_up(topic);
    B.auto_answer = true;
    assert_int_equal(A.n_stored, 1);
    pl_wc_pairing saved = A.stored[0];
    /* A "restarts": a fresh engine restored from what its store held. */
    pl_wc_engine_free(A.e);
    party_init(&A, "A", true);
    assert_int_equal(pl_wc_restore_pairing(A.e, &saved, T0 + 5000), PL_OK);
    assert_true(subscribed(&A, topic));
    assert_int_equal(pl_wc_restore_pairing(A.e, &saved, T0 + 5000), PL_ERR_PAIRING_EXISTS);
    assert_int_equal(pl_wc_request(A.e, topic, "test_method", NULL, T0 + 6000, NULL), PL_OK);
    pump(T0 + 6000);
    pump(T0 + 6000);
    assert_int_equal(A.responses, 1);
    assert_int_equal(A.last_res_err, PL_OK);
    /* an expired stored pairing is dropped on restore */
    saved.expiry = T0 / 1000;
    party A3;
    party_init(&A3, "A3", true);
    assert_int_equal(pl_wc_restore_pairing(A3.e, &saved, T0 + 5000), PL_ERR_PAIRING_EXPIRED);
    pl_wc_engine_free(A3.e);
    pl_wipe(&saved, sizeof saved);
}

static void test_extend(void **state) {
    (void)state;
    char topic[PL_TOPIC_HEX_SIZE];
    pair_up(topic);
    int64_t target = T0 / 1000 + 20 * 86400;
    assert_int_equal(pl_wc_extend(A.e, topic, target, T0), PL_OK);
    pl_wc_pairing pa, pb;
    assert_int_equal(pl_wc_pairing_get(A.e, topic, &pa), PL_OK);
    assert_int_equal(pa.expiry, target);
    assert_int_equal(last_tag, 1004);
    pump(T0);
    assert_int_equal(last_tag, 1005); /* B answered */
    pump(T0);
    /* B's later expiry stays; A's answer proves the peer: active, 30 days */
    assert_int_equal(pl_wc_pairing_get(A.e, topic, &pa), PL_OK);
    assert_int_equal(pl_wc_pairing_get(B.e, topic, &pb), PL_OK);
    assert_true(pb.expiry >= target);
    assert_true(pa.active);
    assert_int_equal(pa.expiry, T0 / 1000 + 30 * 86400);
    assert_int_equal(pl_wc_extend(A.e, topic, T0 / 1000 - 1, T0), PL_ERR_INVALID_ARG);
}


/* A restart must neither lose a request the relay never got nor handle
 * again a request the relay hands out a second time. */
static void test_restart_republishes_and_remembers(void **state) {
    (void)state;
    char topic[PL_TOPIC_HEX_SIZE];
    pair_up(topic);
    /* A's request is stored with its sealed bytes... */
    pl_rpc_id id;
    assert_int_equal(pl_wc_request(A.e, topic, "test_method", "{\"n\":7}", T0, &id), PL_OK);
    assert_true(A.last_pending_msg[0] != 0);
    assert_string_equal(A.last_pending_msg, q[nq - 1].message);
    assert_int_equal(A.last_pending.tag, 1200);
    /* ...and the relay lost it; A restarts and restores it: published again. */
    free(q[--nq].message);
    pl_wc_pairing saved = A.stored[0];
    pl_wc_pending pend = A.last_pending;
    char msg_copy[4096];
    snprintf(msg_copy, sizeof msg_copy, "%s", A.last_pending_msg);
    pend.message = msg_copy; /* party_init below clears A */
    pl_wc_engine_free(A.e);
    party_init(&A, "A", true);
    assert_int_equal(pl_wc_restore_pairing(A.e, &saved, T0 + 1000), PL_OK);
    assert_int_equal(pl_wc_restore_pending(A.e, &pend), PL_OK);
    assert_int_equal(nq, 1);
    B.auto_answer = true;
    pump(T0 + 2000);
    assert_int_equal(B.requests, 1);
    assert_int_equal(B.seen_saved, 1);
    assert_true(pl_rpc_id_equal(&B.last_seen, &id));
    pump(T0 + 2000);
    assert_int_equal(A.responses, 1);
    assert_int_equal(A.last_res_err, PL_OK);

    /* B restarts with the id it handled; the relay hands the request out
     * again: not handled twice. */
    pl_wc_pairing bsaved = B.stored[0];
    pl_rpc_id seen = B.last_seen;
    assert_int_equal(pl_wc_request(A.e, topic, "test_method", "{}", T0 + 3000, NULL), PL_OK);
    char *again = strdup(q[nq - 1].message);
    pump(T0 + 3000);
    pump(T0 + 3000);
    pl_wc_engine_free(B.e);
    party_init(&B, "B", true);
    world[1] = &B;
    assert_int_equal(pl_wc_restore_pairing(B.e, &bsaved, T0 + 4000), PL_OK);
    pl_wc_restore_seen(B.e, topic, &seen);
    /* the first request (id) redelivered: ignored; a new one: handled */
    pl_wc_pairing pa;
    assert_int_equal(pl_wc_pairing_get(A.e, topic, &pa), PL_OK);
    char *json = NULL, *env = NULL;
    assert_int_equal(pl_rpc_encode_request(&json, &id, "test_method", "{\"n\":7}"), PL_OK);
    pl_envelope_params prm = {.type = 0};
    assert_int_equal(pl_envelope_seal(&env, pa.sym_key, (const uint8_t *)json, strlen(json), &prm), PL_OK);
    assert_int_equal(pl_wc_engine_on_message(B.e, topic, env, strlen(env), T0 + 4000), PL_OK);
    assert_int_equal(B.requests, 0);
    assert_int_equal(pl_wc_engine_on_message(B.e, topic, again, strlen(again), T0 + 4000), PL_OK);
    assert_int_equal(B.requests, 1);
    pl_free(json);
    pl_free(env);
    free(again);
    pl_wipe(&pa, sizeof pa);
    pl_wipe(&saved, sizeof saved);
    pl_wipe(&bsaved, sizeof bsaved);
}

/* Pairing topics carry type 0 envelopes only, as in the JS SDK: a type 1
 * envelope sealed with the pairing key is dropped, not answered. */
static void test_type1_on_pairing_topic_dropped(void **state) {
    (void)state;
    char topic[PL_TOPIC_HEX_SIZE];
    pair_up(topic);
    pl_wc_pairing pb;
    assert_int_equal(pl_wc_pairing_get(B.e, topic, &pb), PL_OK);
    uint8_t pub[32], priv[32];
    pl_x25519_keypair(pub, priv);
    const char *ping = "{\"id\":1700000000000001,\"jsonrpc\":\"2.0\",\"method\":\"wc_pairingPing\",\"params\":{}}";
    char *env = NULL;
    pl_envelope_params prm = {.type = 1, .sender_pub = pub};
    assert_int_equal(pl_envelope_seal(&env, pb.sym_key, (const uint8_t *)ping, strlen(ping), &prm), PL_OK);
    assert_int_equal(pl_wc_engine_on_message(B.e, topic, env, strlen(env), T0), PL_ERR_ENVELOPE_TYPE);
    assert_int_equal(B.ev_count[PL_WC_EV_PING], 0);
    assert_int_equal(B.ev_count[PL_WC_EV_BAD_MESSAGE], 1);
    assert_int_equal(nq, 0);
    pl_free(env);
    pl_wipe(&pb, sizeof pb);
}


/* Requests sent in the same millisecond get distinct, increasing ids: the
 * peer drops a repeated (topic, id) as a redelivery. */
static void test_ids_unique_within_a_millisecond(void **state) {
    (void)state;
    char topic[PL_TOPIC_HEX_SIZE];
    pair_up(topic);
    pl_rpc_id prev = {0};
    for (int i = 0; i < 30; i++) { /* the test relay holds 64 messages */
        pl_rpc_id id;
        assert_int_equal(pl_wc_request(A.e, topic, "test_method", NULL, T0, &id), PL_OK);
        assert_int_equal(id.kind, PL_RPC_ID_NUM);
        if (i) assert_true(id.num > prev.num);
        assert_true(id.num >= T0 * 1000);
        prev = id;
    }
    B.auto_answer = true;
    pump(T0);
    assert_int_equal(B.requests, 30);
}

int main(void) {
    if (pl_init() != PL_OK) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_and_pair_lifecycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unregistered_method_gets_10001, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redelivery_handled_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inactive_pairing_expires, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_reaches_peer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_timeout_and_pending_on_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restore_continues, setup, teardown),
        cmocka_unit_test_setup_teardown(test_extend, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_republishes_and_remembers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_type1_on_pairing_topic_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ids_unique_within_a_millisecond, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
