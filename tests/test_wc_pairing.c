/* SPDX-License-Identifier: Apache-2.0 */
/* The WalletConnect pairing engine, two engines joined by the loopback
 * transport (loopback.h): deliveries are held and handed over by pump(),
 * one step of a conversation at a time, with time passed in explicitly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pairlink/codec.h"
#include "pairlink/driver.h"
#include "pairlink/hash.h"
#include "pairlink/loopback.h"
#include "pairlink/relay_client.h"
#include "pairlink/uri.h"
#include "pairlink/wc_pairing.h"
#include "support/support.h"

#define T0 1700000000000LL
#define MAXPUB 64

typedef struct party party;

struct party {
    const char *name;
    pl_wc_engine *e;
    pl_transport *tp;
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
    uint8_t last_pending_msg[4096];
    size_t last_pending_len;
    pl_rpc_id last_seen;
    int seen_saved;
};

/* What was published, in order (the tap), with its relay tag and ttl. */
typedef struct published {
    uint8_t data[4096];
    size_t len;
} published;

static pl_driver *D;
static pl_loopback_hub *H;
static published pubs[MAXPUB];
static int npubs;
static uint32_t last_tag, last_ttl;
static bool last_prompt;
static int64_t pump_now; /* the time deliveries happen at */

static void tap(void *ud, const char *ep, const char *topic, const uint8_t *data, size_t len,
                const pl_publish_opts *o) {
    (void)ud, (void)ep, (void)topic;
    assert_true(npubs < MAXPUB && len <= sizeof pubs[0].data);
    memcpy(pubs[npubs].data, data, len);
    pubs[npubs++].len = len;
    assert_non_null(o->ext);
    assert_int_equal(o->ext->kind, PL_TRANSPORT_EXT_WC_RELAY);
    last_tag = ((const pl_wc_relay_publish_ext *)o->ext)->tag;
    last_prompt = ((const pl_wc_relay_publish_ext *)o->ext)->prompt;
    last_ttl = o->ttl_s;
}

static void on_message(void *ud, pl_transport *t, const char *topic, const uint8_t *data,
                       size_t len, const pl_delivery_info *info) {
    (void)t;
    party *p = ud;
    pl_wc_engine_on_message(p->e, topic, data, len, info, pump_now);
}

static bool subscribed(party *p, const char *topic) {
    return pl_loopback_is_subscribed(p->tp, topic);
}

/* Deliver what was published so far (what deliveries cause waits for the
 * next pump, so tests can step through a conversation); returns the number
 * delivered. */
static int pump(int64_t now_ms) {
    pump_now = now_ms;
    return (int)pl_loopback_hub_flush(H);
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
    assert_true(r->message_len <= sizeof p->last_pending_msg);
    if (r->message_len) memcpy(p->last_pending_msg, r->message, r->message_len);
    p->last_pending_len = r->message ? r->message_len : 0;
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
    pl_transport_handler h = {on_message, NULL, p, NULL};
    assert_int_equal(pl_loopback_new(&p->tp, H, name, &h), PL_OK);
    pl_wc_store st = {p, st_save, st_remove, st_save_pending, st_remove_pending, st_save_seen};
    assert_int_equal(pl_wc_engine_new(&p->e, &cfg, p->tp, &st), PL_OK);
    if (register_test) assert_int_equal(pl_wc_register(p->e, &test_method, on_request, on_response, p), PL_OK);
}

static void party_free(party *p) {
    pl_wc_engine_free(p->e);
    p->e = NULL;
    pl_transport_close(p->tp, 0, NULL, NULL);
    p->tp = NULL;
}

/* A restart: the engine and its endpoint go, a new pair comes. */
static void party_restart(party *p, const char *name, bool register_test) {
    party_free(p);
    party_init(p, name, register_test);
}

static party A, B;

static int setup(void **state) {
    (void)state;
    assert_int_equal(pl_driver_new_virtual(&D, T0), PL_OK);
    assert_int_equal(pl_loopback_hub_new(&H, D, NULL), PL_OK);
    pl_loopback_hub_hold(H, true); /* pump() hands deliveries over */
    pl_loopback_hub_set_tap(H, tap, NULL);
    npubs = 0;
    party_init(&A, "A", true);
    party_init(&B, "B", true);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    pump(T0); /* drain */
    party_free(&A);
    party_free(&B);
    pl_driver_run(D);
    pl_loopback_hub_free(H);
    pl_driver_free(D);
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

/* Event names: one per kind, the CLI's vocabulary (docs/cli.md). */
static void test_event_names(void **state) {
    (void)state;
    static const char *const want[] = {
        NULL,          "created",       "activated", "renewed",         "expired",
        "deleted",     "ping",          "pong",      "request_timeout", "unsupported_method",
        "bad_message", "publish_failed"};
    for (int k = PL_WC_EV_CREATED; k <= PL_WC_EV_PUBLISH_FAILED; k++)
        assert_string_equal(pl_wc_event_name((pl_wc_event_kind)k), want[k]);
    assert_string_equal(pl_wc_event_name((pl_wc_event_kind)0), "unknown");
    assert_string_equal(pl_wc_event_name((pl_wc_event_kind)99), "unknown");
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
    party_restart(&B, "B", false);
    assert_int_equal(pl_wc_register(A.e, pl_wc_sign_method("wc_sessionPropose"), NULL, on_response,
                                    &A),
                     PL_OK);
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
    published copy = pubs[npubs - 1];
    pump(T0);
    assert_int_equal(pl_wc_engine_on_message(B.e, topic, copy.data, copy.len, NULL, T0), PL_OK);
    assert_int_equal(B.requests, 1);
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
    pl_loopback_hub_drop_next(H, 1); /* the relay loses it */
    assert_int_equal(pl_wc_request(A.e, topic, "test_method", NULL, T0, &id), PL_OK);
    assert_int_equal(pl_loopback_hub_in_flight(H), 0);
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
    /* a message the relay refused is an event, with the relay's code */
    pl_wc_engine_on_publish_error(A.e, topic, PL_ERR_RELAY, -32000);
    assert_int_equal(A.ev_count[PL_WC_EV_PUBLISH_FAILED], 1);
    assert_int_equal(A.last_ev.err, PL_ERR_RELAY);
    assert_int_equal(A.last_ev.relay_code, -32000);
}

static void test_bad_input(void **state) {
    (void)state;
    char topic[PL_TOPIC_HEX_SIZE];
    pair_up(topic);
    /* as the relay carried them (base64 text); "!!!" does not decode and
     * arrives as an undecodable message */
    const char *garbage[] = {"", "!!!", "AAAA", "AHF3ZWNmYWFzZGFkc3paHoQ96/mLAdanVxi17icRXq+jyrqXA8ocVgGmryQZBFMg"};
    for (size_t i = 0; i < sizeof garbage / sizeof *garbage; i++) {
        uint8_t raw[64];
        size_t n = 0;
        pl_delivery_info info = {0};
        info.err = pl_base64_decode(raw, sizeof raw, &n, garbage[i], strlen(garbage[i]), PL_B64_STD);
        pl_err e = pl_wc_engine_on_message(B.e, topic, info.err ? NULL : raw, n, &info, T0);
        assert_int_not_equal(e, PL_OK);
        if (info.err) assert_int_equal(e, PL_ERR_BAD_BASE64);
    }
    assert_int_equal(B.ev_count[PL_WC_EV_BAD_MESSAGE], 4);
    assert_int_equal(B.last_ev.err, PL_ERR_DECRYPT);
    /* a sealed non-JSON-RPC payload */
    pl_wc_pairing pb;
    assert_int_equal(pl_wc_pairing_get(B.e, topic, &pb), PL_OK);
    uint8_t *env = NULL;
    size_t env_len = 0;
    pl_envelope_params prm = {.type = 0};
    assert_int_equal(pl_envelope_seal_raw(&env, &env_len, pb.sym_key, (const uint8_t *)"[1,2]", 5, &prm), PL_OK);
    assert_int_not_equal(pl_wc_engine_on_message(B.e, topic, env, env_len, NULL, T0), PL_OK);
    pl_free(env);
    /* unknown topic */
    assert_int_equal(pl_wc_engine_on_message(B.e, "00", (const uint8_t *)"x", 1, NULL, T0),
                     PL_ERR_NO_MATCHING_KEY);
    /* pairing twice, and an expired URI */
    char *uri = NULL, t2[PL_TOPIC_HEX_SIZE];
    assert_int_equal(pl_wc_create(A.e, NULL, 0, T0, &uri, t2), PL_OK);
    assert_int_equal(pl_wc_pair(B.e, uri, strlen(uri), T0, NULL), PL_OK);
    assert_int_equal(pl_wc_pair(B.e, uri, strlen(uri), T0, NULL), PL_ERR_PAIRING_EXISTS);
    party C;
    party_init(&C, "C", false);
    assert_int_equal(pl_wc_pair(C.e, uri, strlen(uri), T0 + 301 * 1000, NULL), PL_ERR_URI_EXPIRED);
    party_free(&C);
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
    party_restart(&A, "A", true);
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
    party_free(&A3);
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
    pl_loopback_hub_drop_next(H, 1); /* ...and the relay will lose it */
    assert_int_equal(pl_wc_request(A.e, topic, "test_method", "{\"n\":7}", T0, &id), PL_OK);
    assert_true(A.last_pending_len > 0);
    assert_int_equal(A.last_pending_len, pubs[npubs - 1].len);
    assert_memory_equal(A.last_pending_msg, pubs[npubs - 1].data, A.last_pending_len);
    assert_int_equal(A.last_pending.tag, 1200);
    assert_int_equal(pl_loopback_hub_in_flight(H), 0);
    /* A restarts and restores it: published again. */
    pl_wc_pairing saved = A.stored[0];
    pl_wc_pending pend = A.last_pending;
    uint8_t msg_copy[4096];
    memcpy(msg_copy, A.last_pending_msg, A.last_pending_len);
    pend.message = msg_copy; /* party_init below clears A */
    pend.message_len = A.last_pending_len;
    party_restart(&A, "A", true);
    assert_int_equal(pl_wc_restore_pairing(A.e, &saved, T0 + 1000), PL_OK);
    assert_int_equal(pl_wc_restore_pending(A.e, &pend), PL_OK);
    assert_int_equal(pl_loopback_hub_in_flight(H), 1);
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
    published again = pubs[npubs - 1];
    pump(T0 + 3000);
    pump(T0 + 3000);
    party_restart(&B, "B", true);
    assert_int_equal(pl_wc_restore_pairing(B.e, &bsaved, T0 + 4000), PL_OK);
    pl_wc_restore_seen(B.e, topic, &seen);
    /* the first request (id) redelivered: ignored; a new one: handled */
    pl_wc_pairing pa;
    assert_int_equal(pl_wc_pairing_get(A.e, topic, &pa), PL_OK);
    char *json = NULL;
    uint8_t *env = NULL;
    size_t env_len = 0;
    assert_int_equal(pl_rpc_encode_request(&json, &id, "test_method", "{\"n\":7}"), PL_OK);
    pl_envelope_params prm = {.type = 0};
    assert_int_equal(pl_envelope_seal_raw(&env, &env_len, pa.sym_key, (const uint8_t *)json, strlen(json), &prm),
                     PL_OK);
    assert_int_equal(pl_wc_engine_on_message(B.e, topic, env, env_len, NULL, T0 + 4000), PL_OK);
    assert_int_equal(B.requests, 0);
    assert_int_equal(pl_wc_engine_on_message(B.e, topic, again.data, again.len, NULL, T0 + 4000), PL_OK);
    assert_int_equal(B.requests, 1);
    pl_free(json);
    pl_free(env);
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
    uint8_t *env = NULL;
    size_t env_len = 0;
    pl_envelope_params prm = {.type = 1, .sender_pub = pub};
    assert_int_equal(pl_envelope_seal_raw(&env, &env_len, pb.sym_key, (const uint8_t *)ping, strlen(ping), &prm),
                     PL_OK);
    assert_int_equal(pl_wc_engine_on_message(B.e, topic, env, env_len, NULL, T0), PL_ERR_ENVELOPE_TYPE);
    assert_int_equal(B.ev_count[PL_WC_EV_PING], 0);
    assert_int_equal(B.ev_count[PL_WC_EV_BAD_MESSAGE], 1);
    assert_int_equal(pl_loopback_hub_in_flight(H), 0);
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
    for (int i = 0; i < 30; i++) { /* the tap keeps 64 messages */
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

/* The Sign method table: a request and its answer go out with the JS SDK's
 * tags, TTLs and prompt flag. */
static void test_sign_methods(void **state) {
    (void)state;
    static const struct {
        const char *name;
        uint32_t req_tag, ttl, res_tag;
    } want[] = {{"wc_sessionPropose", 1100, 300, 1101},
                {"wc_sessionAuthenticate", 1116, 3600, 1117},
                {"wc_authRequest", 3000, 86400, 3001}};
    assert_null(pl_wc_sign_method("wc_sessionRequest"));
    assert_null(pl_wc_sign_method(""));
    char topic[PL_TOPIC_HEX_SIZE];
    pair_up(topic);
    B.auto_answer = true;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const pl_wc_method *m = pl_wc_sign_method(want[i].name);
        assert_non_null(m);
        assert_string_equal(m->name, want[i].name);
        assert_int_equal(pl_wc_register(A.e, m, NULL, on_response, &A), PL_OK);
        assert_int_equal(pl_wc_register(B.e, m, on_request, NULL, &B), PL_OK);
        assert_int_equal(pl_wc_request(A.e, topic, m->name, "{}", T0 + 2000, NULL), PL_OK);
        assert_int_equal(last_tag, want[i].req_tag);
        assert_int_equal(last_ttl, want[i].ttl);
        assert_true(last_prompt);
        assert_int_equal(pump(T0 + 2000), 1);
        assert_int_equal(B.requests, (int)i + 1);
        assert_int_equal(last_tag, want[i].res_tag);
        assert_int_equal(last_ttl, want[i].ttl);
        assert_false(last_prompt);
        assert_int_equal(pump(T0 + 2000), 1);
        assert_int_equal(A.responses, (int)i + 1);
        assert_int_equal(A.last_res_err, PL_OK);
    }
}

static void fill_ab(void *ctx, uint8_t *buf, size_t len) {
    ++*(int *)ctx;
    memset(buf, 0xab, len);
}

/* The engine draws every random byte from the configured source: the
 * symKey (so the topic), the request id's random part, the envelope IVs. */
static void test_injected_randomness(void **state) {
    (void)state;
    int calls = 0;
    pl_wc_config cfg = {.rng = fill_ab, .rng_ctx = &calls};
    pl_transport *tp;
    pl_transport_handler h = {NULL, NULL, NULL, NULL};
    assert_int_equal(pl_loopback_new(&tp, H, "R", &h), PL_OK);
    pl_wc_engine *e;
    assert_int_equal(pl_wc_engine_new(&e, &cfg, tp, NULL), PL_OK);
    assert_int_equal(pl_wc_register(e, &test_method, NULL, NULL, NULL), PL_OK);
    char *uri = NULL, topic[PL_TOPIC_HEX_SIZE];
    assert_int_equal(pl_wc_create(e, NULL, 0, T0, &uri, topic), PL_OK);
    uint8_t key[32], h32[32];
    memset(key, 0xab, sizeof key);
    pl_sha256(h32, key, sizeof key);
    char hex[65];
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", h32[i]);
    assert_string_equal(topic, hex);
    assert_non_null(strstr(uri, "symKey=abababab"));
    pl_free(uri);
    pl_rpc_id id;
    int before = npubs;
    assert_int_equal(pl_wc_request(e, topic, "test_method", "{}", T0, &id), PL_OK);
    assert_int_equal(id.num, T0 * 1000 + 0xabab % 1000);
    assert_int_equal(npubs, before + 1);
    /* type 0 envelope: type byte, then the 12-byte IV */
    assert_true(pubs[npubs - 1].len > 13);
    for (int i = 1; i <= 12; i++) assert_int_equal(pubs[npubs - 1].data[i], 0xab);
    assert_true(calls >= 3);
    pl_wc_engine_free(e);
    pl_transport_close(tp, 0, NULL, NULL);
}

int main(void) {
    if (pl_init() != PL_OK) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_names),
        cmocka_unit_test_setup_teardown(test_create_and_pair_lifecycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unregistered_method_gets_10001, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sign_methods, setup, teardown),
        cmocka_unit_test_setup_teardown(test_injected_randomness, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redelivery_handled_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inactive_pairing_expires, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_reaches_peer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_timeout_and_pending_on_delete, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restore_continues, setup, teardown),
        cmocka_unit_test_setup_teardown(test_extend, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_republishes_and_remembers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_type1_on_pairing_topic_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ids_unique_within_a_millisecond, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
