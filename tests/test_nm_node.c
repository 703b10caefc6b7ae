/* SPDX-License-Identifier: Apache-2.0 */
/* The node-manager node (nm_node.h) end to end without a socket: two nodes
 * (an app and a node manager) with real stores in a temporary directory,
 * joined by the loopback transport on a virtual driver, so that pairing,
 * sessions, restarts, re-pairing and the node's policies (what is stored
 * when, what is forgotten, which counterparties come back at start-up) run
 * with explicit time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "pairlink/driver.h"
#include "pairlink/hash.h"
#include "pairlink/loopback.h"
#include "pairlink/nm_node.h"
#include "pairlink/nm_store.h"
#include "pairlink/relay_client.h"
#include "pairlink/store.h"
#include "pairlink/waku_transport.h"
#include "support/support.h"

#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define T0 INT64_C(1700000000000)

static const pl_nm_kdf_params light = {.opslimit = 1, .memlimit = 8192};
static char dir[64];

typedef struct side {
    const char *label;
    pl_nm_role role;
    char store[128];
    pl_transport *tp;
    pl_nm_node *n;
    bool closed;
    /* events */
    int transport_events, codes, stored, paired, failed, dropped, publish_failed, established,
        requests, responses, req_failed;
    pl_transport_state tstate;
    pl_err last_err;
    char code[PL_NM_CODE_TEXT_SIZE];
    char fingerprint[PL_NM_FINGERPRINT_SIZE];
    char peer_name[PL_NM_NAME_MAX + 1];
    char peer_id[17];
    uint8_t peer[PL_NM_KEY_BYTES];
    uint64_t last_id;
    char body[128];
    bool answer; /* respond to requests */
    int verify, added, removed, removed_by_peer, removed_revoked;
    pl_err removed_err;
    char vfp[PL_NM_FINGERPRINT_SIZE];
} side;

static pl_driver *D;
static pl_loopback_hub *H;
/* Sides still open, closed by the teardown when a test failed half-way. */
static struct side *open_sides[8];

static void on_event(void *ud, pl_nm_node *n, const pl_nm_node_event *ev) {
    side *s = ud;
    switch (ev->kind) {
    case PL_NM_NODE_TRANSPORT:
        s->transport_events++;
        s->tstate = ev->transport_state;
        break;
    case PL_NM_NODE_PAIR_CODE:
        s->codes++;
        snprintf(s->code, sizeof s->code, "%s", ev->code);
        break;
    case PL_NM_NODE_PAIR_DROPPED:
        s->dropped++;
        break;
    case PL_NM_NODE_PUBLISH_FAILED:
        s->publish_failed++;
        break;
    case PL_NM_NODE_PAIR_STORED:
        s->stored++;
        memcpy(s->peer, ev->peer, PL_NM_KEY_BYTES);
        snprintf(s->peer_name, sizeof s->peer_name, "%s", ev->name);
        break;
    case PL_NM_NODE_PAIRED:
        s->paired++;
        snprintf(s->fingerprint, sizeof s->fingerprint, "%s", ev->fingerprint);
        break;
    case PL_NM_NODE_PAIR_FAILED:
        s->failed++;
        s->last_err = ev->err;
        break;
    case PL_NM_NODE_PAIR_VERIFY:
        s->verify++;
        snprintf(s->vfp, sizeof s->vfp, "%s", ev->fingerprint);
        memcpy(s->peer, ev->peer, PL_NM_KEY_BYTES);
        break;
    case PL_NM_NODE_PEER_ADDED:
        s->added++;
        break;
    case PL_NM_NODE_PEER_REMOVED:
        s->removed++;
        s->removed_by_peer += ev->by_peer;
        s->removed_revoked += ev->revoked;
        s->removed_err = ev->err;
        memcpy(s->peer, ev->peer, PL_NM_KEY_BYTES);
        break;
    case PL_NM_NODE_SESSION: {
        const pl_nm_session_output *o = ev->session;
        assert_non_null(o);
        snprintf(s->peer_id, sizeof s->peer_id, "%s", ev->peer_id);
        if (o->event == PL_NM_SEV_ESTABLISHED) {
            s->established++;
            memcpy(s->peer, ev->peer, PL_NM_KEY_BYTES);
            snprintf(s->peer_name, sizeof s->peer_name, "%s", ev->name);
        } else if (o->event == PL_NM_SEV_REQUEST) {
            s->requests++;
            snprintf(s->body, sizeof s->body, "%.*s", (int)o->body_len, (const char *)o->body);
            if (s->answer)
                assert_int_equal(pl_nm_node_respond(n, ev->peer, o->id, (const uint8_t *)"ok", 2),
                                 PL_OK);
        } else if (o->event == PL_NM_SEV_RESPONSE) {
            s->responses++;
            s->last_id = o->id;
            snprintf(s->body, sizeof s->body, "%.*s", (int)o->body_len, (const char *)o->body);
        } else if (o->event == PL_NM_SEV_REQUEST_FAILED) {
            s->req_failed++;
            s->last_id = o->id;
            s->last_err = o->err;
        }
        break;
    }
    }
}

static void on_closed(void *ud) {
    ((side *)ud)->closed = true;
}

static pl_nm_node_opts opts_of(side *s, bool sessions) {
    pl_nm_node_opts o = {.role = s->role,
                         .transport = s->tp,
                         .driver = D,
                         .store_path = s->store,
                         .name = s->label,
                         .sessions = sessions,
                         .code_ttl_ms = 60000,
                         .kdf = &light,
                         .on_event = on_event,
                         .ud = s};
    return o;
}

static void track(side *s, bool add) {
    for (int i = 0; i < 8; i++)
        if (add ? !open_sides[i] : open_sides[i] == s) {
            open_sides[i] = add ? s : NULL;
            return;
        }
}

static void side_start(side *s, bool sessions) {
    s->closed = false;
    track(s, true);
    assert_int_equal(pl_loopback_new(&s->tp, H, s->label, NULL), PL_OK);
    pl_nm_node_opts o = opts_of(s, sessions);
    assert_int_equal(pl_nm_node_new(&s->n, NULL, &o), PL_OK);
    assert_ptr_equal(pl_nm_node_transport(s->n), s->tp);
    assert_ptr_equal(pl_nm_node_driver(s->n), D);
}

static void side_init(side *s, const char *label, pl_nm_role role) {
    memset(s, 0, sizeof *s);
    s->label = label;
    s->role = role;
    snprintf(s->store, sizeof s->store, "%s/%s.db", dir, label);
    side_start(s, true);
}

/* Close the node (its transport is borrowed: closed after it). */
static void side_stop(side *s) {
    pl_nm_node_close(s->n, 0, on_closed);
    assert_false(s->closed);
    pl_driver_run(D);
    assert_true(s->closed);
    pl_transport_close(s->tp, 0, NULL, NULL);
    pl_driver_run(D);
    s->n = NULL;
    s->tp = NULL;
    track(s, false);
}

static int setup(void **state) {
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/pl-nmnode-XXXXXX");
    assert_non_null(mkdtemp(dir));
    assert_int_equal(pl_driver_new_virtual(&D, T0), PL_OK);
    /* a relay: messages kept for late subscribers */
    pl_loopback_config lc = {.mailbox = true, .seed = 1};
    assert_int_equal(pl_loopback_hub_new(&H, D, &lc), PL_OK);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    for (int i = 0; i < 8; i++) {
        side *s = open_sides[i];
        if (!s) continue;
        if (s->n) pl_nm_node_close(s->n, 0, NULL);
        if (s->tp) pl_transport_close(s->tp, 0, NULL, NULL);
        open_sides[i] = NULL;
    }
    pl_driver_run(D);
    pl_loopback_hub_free(H);
    pl_driver_free(D);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static void pair(side *app, side *nm) {
    char code[PL_NM_CODE_TEXT_SIZE];
    int codes = app->codes;
    assert_int_equal(pl_nm_node_pair(app->n, NULL, code), PL_OK);
    assert_int_equal(app->codes, codes + 1); /* delivered before pair() returned */
    assert_string_equal(code, app->code);
    assert_int_equal(pl_nm_node_pair(app->n, NULL, NULL), PL_ERR_STATE); /* one at a time */
    assert_int_equal(pl_nm_node_pair(nm->n, code, NULL), PL_OK);
    pl_driver_advance(D, 5000);
}

static pl_nm_counterparty stored_of(side *s, const uint8_t pub[PL_NM_KEY_BYTES]) {
    pl_store *st;
    assert_int_equal(pl_store_open(&st, s->store), PL_OK);
    pl_nm_counterparty *all = NULL, out;
    size_t n = 0;
    assert_int_equal(pl_nm_store_list(st, &all, &n), PL_OK);
    memset(&out, 0, sizeof out);
    for (size_t i = 0; i < n; i++)
        if (!memcmp(all[i].pub, pub, PL_NM_KEY_BYTES)) out = all[i];
    pl_free(all);
    pl_store_close(st);
    return out;
}

static void test_pair_session_request(void **state) {
    (void)state;
    side app, nm;
    side_init(&app, "app", PL_NM_ROLE_APP);
    side_init(&nm, "nm", PL_NM_ROLE_NODE_MANAGER);
    pl_driver_run(D);
    assert_int_equal(app.tstate, PL_TRANSPORT_CONNECTED);
    pair(&app, &nm);
    /* both stored the other before answering, and agree on the fingerprint */
    assert_int_equal(app.stored, 1);
    assert_int_equal(nm.stored, 1);
    assert_int_equal(app.paired, 1);
    assert_int_equal(nm.paired, 1);
    assert_string_equal(app.fingerprint, nm.fingerprint);
    assert_string_equal(app.peer_name, "nm");
    assert_string_equal(nm.peer_name, "app");
    /* the session came up at once after pairing (seed step 10) */
    assert_int_equal(app.established, 1);
    assert_int_equal(nm.established, 1);
    uint8_t app_pub[32], nm_pub[32];
    pl_nm_node_identity(app.n, app_pub);
    pl_nm_node_identity(nm.n, nm_pub);
    assert_memory_equal(nm.peer, app_pub, 32);
    char id[PL_NM_PEER_ID_SIZE];
    pl_nm_peer_id(id, app_pub);
    assert_string_equal(nm.peer_id, id);
    size_t est = 0;
    assert_int_equal(pl_nm_sessions_count(pl_nm_node_sessions(nm.n), &est), 1);
    assert_int_equal(est, 1);
    /* the store says confirmed, seen when the session came up */
    pl_nm_counterparty c = stored_of(&nm, app_pub);
    assert_true(c.confirmed);
    assert_string_equal(c.fingerprint, nm.fingerprint);
    assert_string_equal(c.name, "app");
    int64_t seen = c.last_seen_ms;
    assert_true(seen >= T0 && seen <= pl_driver_now(D));

    /* a request and its answer */
    nm.answer = true;
    uint64_t rid;
    assert_int_equal(pl_nm_node_request(app.n, nm_pub, (const uint8_t *)"status?", 7, &rid), PL_OK);
    pl_driver_advance(D, 100);
    assert_int_equal(nm.requests, 1);
    assert_string_equal(nm.body, "status?");
    assert_int_equal(app.responses, 1);
    assert_int_equal(app.last_id, rid);
    assert_string_equal(app.body, "ok");
    uint8_t stranger[32] = {9};
    assert_int_equal(pl_nm_node_request(app.n, stranger, (const uint8_t *)"x", 1, NULL),
                     PL_ERR_NOT_FOUND);
    assert_int_equal(pl_nm_node_respond(app.n, stranger, 1, (const uint8_t *)"x", 1),
                     PL_ERR_NOT_FOUND);

    /* a re-established session within the minute does not write the store
     * again; after it, it does */
    side_stop(&app);
    side_start(&app, true);
    assert_int_equal(pl_nm_node_restored(app.n), 1);
    pl_driver_advance(D, 3000);
    assert_int_equal(nm.established, 2);
    assert_int_equal(stored_of(&nm, app_pub).last_seen_ms, seen);
    pl_driver_advance(D, 61000);
    side_stop(&app);
    side_start(&app, true);
    pl_driver_advance(D, 3000);
    assert_int_equal(nm.established, 3);
    assert_true(stored_of(&nm, app_pub).last_seen_ms > seen);

    /* pairing again with the same peer: stored once, the session restarts */
    int before = nm.established;
    pair(&app, &nm);
    assert_int_equal(app.paired, 2);
    assert_int_equal(nm.paired, 2);
    assert_true(nm.established > before);
    pl_store *st;
    assert_int_equal(pl_store_open(&st, nm.store), PL_OK);
    pl_nm_counterparty *all = NULL;
    size_t n = 0;
    assert_int_equal(pl_nm_store_list(st, &all, &n), PL_OK);
    assert_int_equal(n, 1);
    assert_int_equal(all[0].first_seen_ms, c.first_seen_ms); /* kept */
    pl_free(all);
    pl_store_close(st);

    /* forgetting a counterparty: gone from the store and the sessions */
    assert_int_equal(pl_nm_node_remove_peer(nm.n, app_pub), PL_OK);
    assert_int_equal(pl_nm_sessions_count(pl_nm_node_sessions(nm.n), NULL), 0);
    assert_false(stored_of(&nm, app_pub).role);
    assert_int_equal(pl_nm_node_remove_peer(nm.n, app_pub), PL_ERR_NOT_FOUND);
    assert_int_equal(pl_nm_node_connect(nm.n, app_pub), PL_ERR_NOT_FOUND);
    side_stop(&app);
    side_stop(&nm);
}

/* At start-up only counterparties of the other role get a session;
 * without `sessions` none, until connect(). */
static void test_restore_and_roles(void **state) {
    (void)state;
    side app, nm;
    side_init(&app, "app", PL_NM_ROLE_APP);
    side_init(&nm, "nm", PL_NM_ROLE_NODE_MANAGER);
    pair(&app, &nm);
    uint8_t nm_pub[32];
    pl_nm_node_identity(nm.n, nm_pub);
    side_stop(&app);
    /* a stored counterparty of the app's own role (a damaged store) */
    pl_store *st;
    assert_int_equal(pl_store_open(&st, app.store), PL_OK);
    pl_nm_counterparty odd = {.role = PL_NM_ROLE_APP, .first_seen_ms = T0};
    memset(odd.pub, 0x42, 32);
    snprintf(odd.name, sizeof odd.name, "odd");
    assert_int_equal(pl_nm_store_put(st, &odd), PL_OK);
    pl_store_close(st);
    /* a one-shot process: no sessions until it asks for one */
    side_start(&app, false);
    assert_int_equal(pl_nm_node_restored(app.n), 0);
    assert_int_equal(pl_nm_sessions_count(pl_nm_node_sessions(app.n), NULL), 0);
    assert_int_equal(pl_nm_node_connect(app.n, odd.pub), PL_ERR_HELLO_ROLE);
    assert_int_equal(pl_nm_node_connect(app.n, nm_pub), PL_OK);
    assert_int_equal(pl_nm_node_connect(app.n, nm_pub), PL_OK); /* already there */
    int before = app.established;
    pl_driver_advance(D, 3000);
    assert_int_equal(app.established, before + 1);
    side_stop(&app);
    /* with sessions: the node manager only */
    side_start(&app, true);
    assert_int_equal(pl_nm_node_restored(app.n), 1);
    assert_int_equal(pl_nm_sessions_count(pl_nm_node_sessions(app.n), NULL), 1);
    side_stop(&app);
    side_stop(&nm);
}

static void test_pairing_failures(void **state) {
    (void)state;
    side app, nm;
    side_init(&app, "app", PL_NM_ROLE_APP);
    side_init(&nm, "nm", PL_NM_ROLE_NODE_MANAGER);
    /* argument checks */
    assert_int_equal(pl_nm_node_pair(app.n, "ABCDE-FGHJK-MNPQR", NULL), PL_ERR_INVALID_ARG);
    assert_int_equal(pl_nm_node_pair(nm.n, NULL, NULL), PL_ERR_INVALID_ARG);
    assert_int_equal(pl_nm_node_pair(nm.n, "not a code", NULL), PL_ERR_CODE_FORMAT);
    pl_nm_node_pair_cancel(nm.n); /* none running */
    /* a code typed wrong (another valid code: another topic): nobody
     * answers; both sides give up when their code expires */
    char code[PL_NM_CODE_TEXT_SIZE];
    assert_int_equal(pl_nm_node_pair(app.n, NULL, code), PL_OK);
    char other[PL_NM_CODE_TEXT_SIZE];
    uint8_t p[8];
    assert_int_equal(pl_nm_code_parse(p, code, strlen(code)), PL_OK);
    p[7] ^= 1;
    pl_nm_code_format(other, p);
    assert_int_equal(pl_nm_node_pair(nm.n, other, NULL), PL_OK);
    /* garbage on the app's pairing topic, and an arrival the transport could
     * not decode: both dropped, reported */
    pl_nm_secrets sec;
    assert_int_equal(pl_nm_code_parse(p, code, strlen(code)), PL_OK);
    assert_int_equal(pl_nm_derive(&sec, p, &light), PL_OK);
    assert_int_equal(pl_loopback_hub_inject(H, sec.content_topic, (const uint8_t *)"junk", 4, NULL),
                     PL_OK);
    pl_delivery_info bad = {.err = PL_ERR_BAD_BASE64};
    assert_int_equal(pl_loopback_hub_inject(H, sec.content_topic, NULL, 0, &bad), PL_OK);
    pl_nm_secrets_wipe(&sec);
    pl_driver_run(D);
    assert_int_equal(app.dropped, 2);
    pl_driver_advance(D, 61000);
    assert_int_equal(app.failed, 1);
    assert_int_equal(app.last_err, PL_ERR_CODE_EXPIRED);
    assert_int_equal(nm.failed, 1);
    assert_int_equal(nm.last_err, PL_ERR_TIMEOUT);
    assert_int_equal(app.stored + nm.stored, 0);
    /* cancelled */
    assert_int_equal(pl_nm_node_pair(app.n, NULL, NULL), PL_OK);
    pl_nm_node_pair_cancel(app.n);
    assert_int_equal(app.failed, 2);
    assert_int_equal(app.last_err, PL_ERR_CANCELLED);
    /* the transport's state reaches the application */
    int seen = app.transport_events;
    pl_loopback_set_online(app.tp, false);
    pl_driver_run(D);
    assert_int_equal(app.transport_events, seen + 1);
    assert_int_equal(app.tstate, PL_TRANSPORT_RECONNECTING);
    side_stop(&app);
    side_stop(&nm);
}

static void test_options(void **state) {
    (void)state;
    side s;
    memset(&s, 0, sizeof s);
    s.label = "x";
    s.role = PL_NM_ROLE_APP;
    snprintf(s.store, sizeof s.store, "%s/x.db", dir);
    assert_int_equal(pl_loopback_new(&s.tp, H, "x", NULL), PL_OK);
    track(&s, true);
    pl_nm_node *n = (pl_nm_node *)&s;
    pl_nm_node_opts o = opts_of(&s, true);
    o.role = 3;
    assert_int_equal(pl_nm_node_new(&n, NULL, &o), PL_ERR_INVALID_ARG);
    assert_null(n);
    o = opts_of(&s, true);
    o.code_ttl_ms = PL_NM_CODE_TTL_MS + 1;
    assert_int_equal(pl_nm_node_new(&n, NULL, &o), PL_ERR_INVALID_ARG);
    o = opts_of(&s, true);
    char longname[PL_NM_NAME_MAX + 2];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    o.name = longname;
    assert_int_equal(pl_nm_node_new(&n, NULL, &o), PL_ERR_TOO_LARGE);
    /* a store that cannot be opened: nothing is left behind */
    o = opts_of(&s, true);
    o.store_path = "/nonexistent-dir/x.db";
    assert_int_not_equal(pl_nm_node_new(&n, NULL, &o), PL_OK);
    assert_null(n);
    /* a relay client of its own on a loop (nothing listens: it keeps
     * trying), closed again; then nothing is left on the loop */
    uv_loop_t loop;
    uv_loop_init(&loop);
    o = opts_of(&s, true);
    o.transport = NULL;
    o.driver = NULL;
    o.relay_url = "ws://127.0.0.1:1";
    assert_int_equal(pl_nm_node_new(&n, &loop, &o), PL_OK);
    pl_transport *relay = pl_nm_node_transport(n);
    s.closed = false;
    pl_nm_node_close(n, 1000, on_closed);
    assert_true(pl_relay_client_is(relay));
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_true(s.closed);
    assert_int_equal(uv_loop_close(&loop), 0);
    /* a store in memory: a fresh identity each time */
    o = opts_of(&s, true);
    o.store_path = ":memory:";
    assert_int_equal(pl_nm_node_new(&n, NULL, &o), PL_OK);
    s.n = n;
    s.closed = false;
    side_stop(&s);
}

/* pair --no-session: stored and paired, and no session at all */
static void test_pair_no_session(void **state) {
    (void)state;
    side app, nm;
    memset(&app, 0, sizeof app);
    memset(&nm, 0, sizeof nm);
    app.label = "app", app.role = PL_NM_ROLE_APP;
    nm.label = "nm", nm.role = PL_NM_ROLE_NODE_MANAGER;
    snprintf(app.store, sizeof app.store, "%s/app.db", dir);
    snprintf(nm.store, sizeof nm.store, "%s/nm.db", dir);
    side *both[2] = {&app, &nm};
    for (int i = 0; i < 2; i++) {
        side *x = both[i];
        track(x, true);
        assert_int_equal(pl_loopback_new(&x->tp, H, x->label, NULL), PL_OK);
        pl_nm_node_opts o = opts_of(x, false);
        o.pair_no_session = true;
        assert_int_equal(pl_nm_node_new(&x->n, NULL, &o), PL_OK);
    }
    pair(&app, &nm);
    assert_int_equal(app.paired, 1);
    assert_int_equal(nm.paired, 1);
    assert_int_equal(app.stored, 1);
    pl_driver_advance(D, 30000);
    assert_int_equal(app.established + nm.established, 0);
    assert_int_equal(pl_nm_sessions_count(pl_nm_node_sessions(app.n), NULL), 0);
    assert_int_equal(pl_nm_sessions_count(pl_nm_node_sessions(nm.n), NULL), 0);
    side_stop(&app);
    side_stop(&nm);
}

static void start_verifying(side *x, const char *label, pl_nm_role role) {
    memset(x, 0, sizeof *x);
    x->label = label;
    x->role = role;
    snprintf(x->store, sizeof x->store, "%s/%s.db", dir, label);
    track(x, true);
    assert_int_equal(pl_loopback_new(&x->tp, H, x->label, NULL), PL_OK);
    pl_nm_node_opts o = opts_of(x, true);
    o.verify = true;
    assert_int_equal(pl_nm_node_new(&x->n, NULL, &o), PL_OK);
}

/* --verify: each side stops before storing until its user confirms the
 * fingerprint; a refusal stores nothing on either side. */
static void test_verify(void **state) {
    (void)state;
    side app, nm;
    start_verifying(&app, "app", PL_NM_ROLE_APP);
    start_verifying(&nm, "nm", PL_NM_ROLE_NODE_MANAGER);
    assert_int_equal(pl_nm_node_pair_verify(app.n, true), PL_ERR_STATE); /* nothing pending */
    pair(&app, &nm);
    /* the app answered without storing: both screens show the fingerprint
     * together, and nothing is stored before the users said yes */
    assert_int_equal(app.verify, 1);
    assert_int_equal(nm.verify, 1);
    assert_string_equal(nm.vfp, app.vfp);
    assert_int_equal(app.stored + nm.stored + app.paired + nm.paired, 0);
    uint8_t nm_pub[32], app_pub[32];
    pl_nm_node_identity(nm.n, nm_pub);
    pl_nm_node_identity(app.n, app_pub);
    assert_memory_equal(app.peer, nm_pub, 32);
    assert_memory_equal(nm.peer, app_pub, 32);
    assert_int_equal(stored_of(&app, nm_pub).role, 0);
    assert_int_equal(stored_of(&nm, app_pub).role, 0);
    pl_driver_advance(D, 10000); /* the users take their time */
    assert_int_equal(pl_nm_node_pair_verify(nm.n, true), PL_OK);
    assert_int_equal(nm.stored, 1);
    assert_int_equal(nm.paired, 1);
    assert_int_equal(pl_nm_node_pair_verify(app.n, true), PL_OK);
    assert_int_equal(pl_nm_node_pair_verify(app.n, true), PL_ERR_STATE);
    assert_int_equal(app.stored, 1);
    assert_int_equal(app.paired, 1);
    assert_string_equal(nm.fingerprint, app.vfp);
    assert_string_equal(app.fingerprint, app.vfp);
    pl_driver_advance(D, 3000);
    assert_int_equal(nm.established, 1);
    /* again, refused on both sides (different fingerprints): nothing stored */
    assert_int_equal(pl_nm_node_remove_peer(app.n, nm_pub), PL_OK);
    assert_int_equal(pl_nm_node_remove_peer(nm.n, app_pub), PL_OK);
    pl_driver_advance(D, 61000); /* the app answers its code until it expires */
    pair(&app, &nm);
    assert_int_equal(nm.verify, 2);
    assert_int_equal(app.verify, 2);
    assert_int_equal(pl_nm_node_pair_verify(nm.n, false), PL_OK);
    assert_int_equal(nm.failed, 1);
    assert_int_equal(nm.last_err, PL_ERR_FINGERPRINT_REJECTED);
    assert_int_equal(pl_nm_node_pair_verify(app.n, false), PL_OK);
    assert_int_equal(app.failed, 1);
    assert_int_equal(app.last_err, PL_ERR_FINGERPRINT_REJECTED);
    pl_driver_advance(D, 61000);
    assert_int_equal(stored_of(&nm, app_pub).role, 0);
    assert_int_equal(stored_of(&app, nm_pub).role, 0);
    assert_int_equal(app.paired + nm.paired, 2);
    assert_int_equal(app.failed + nm.failed, 2);
    side_stop(&app);
    side_stop(&nm);
}

/* Revocation: forgotten here at once, the peer told and forgetting us;
 * a daemon notices counterparties removed and added by other processes. */
static void test_revoke_and_store_changes(void **state) {
    (void)state;
    side app, nm;
    side_init(&app, "app", PL_NM_ROLE_APP);
    side_init(&nm, "nm", PL_NM_ROLE_NODE_MANAGER);
    pair(&app, &nm);
    uint8_t nm_pub[32], app_pub[32];
    pl_nm_node_identity(nm.n, nm_pub);
    pl_nm_node_identity(app.n, app_pub);
    assert_int_equal(app.established, 1);
    assert_int_equal(pl_nm_node_revoke(app.n, nm_pub), PL_OK);
    assert_int_equal(stored_of(&app, nm_pub).role, 0); /* at once */
    assert_int_equal(pl_nm_node_revoke(app.n, nm_pub), PL_ERR_NOT_FOUND);
    pl_driver_advance(D, 2000);
    assert_int_equal(nm.removed, 1);
    assert_int_equal(nm.removed_by_peer, 1);
    assert_memory_equal(nm.peer, app_pub, 32);
    assert_int_equal(stored_of(&nm, app_pub).role, 0);
    assert_int_equal(pl_nm_sessions_count(pl_nm_node_sessions(nm.n), NULL), 0);
    assert_int_equal(app.removed, 1);
    assert_int_equal(app.removed_revoked, 1);
    assert_int_equal(app.removed_err, PL_OK);
    assert_int_equal(pl_nm_sessions_count(pl_nm_node_sessions(app.n), NULL), 0);

    /* a peer that is away: revoked here all the same, the telling times out */
    pl_driver_advance(D, 61000); /* the app answers its code until it expires */
    pair(&app, &nm);
    side_stop(&nm);
    assert_int_equal(pl_nm_node_revoke(app.n, nm_pub), PL_OK);
    pl_driver_advance(D, PL_NM_SESSION_REQUEST_TIMEOUT_MS + 1000);
    assert_int_equal(app.removed, 2);
    assert_int_equal(app.removed_err, PL_ERR_TIMEOUT);
    assert_int_equal(stored_of(&app, nm_pub).role, 0);
    side_start(&nm, true);
    assert_int_equal(pl_nm_node_restored(nm.n), 1); /* it was not told */

    /* another process removes the app from the node manager's store */
    pl_nm_counterparty c = stored_of(&nm, app_pub);
    assert_int_equal(c.role, PL_NM_ROLE_APP);
    pl_store *st;
    assert_int_equal(pl_store_open(&st, nm.store), PL_OK);
    assert_int_equal(pl_nm_store_remove(st, app_pub), PL_OK);
    int removed = nm.removed;
    assert_int_equal(pl_nm_node_check_store(nm.n), PL_OK);
    assert_int_equal(nm.removed, removed + 1);
    assert_int_equal(nm.removed_by_peer + nm.removed_revoked, 1);
    assert_int_equal(pl_nm_sessions_count(pl_nm_node_sessions(nm.n), NULL), 0);
    assert_int_equal(pl_nm_node_check_store(nm.n), PL_OK); /* nothing new */
    assert_int_equal(nm.removed, removed + 1);
    /* ... and stores it again (a pairing made beside the daemon) */
    assert_int_equal(pl_nm_store_put(st, &c), PL_OK);
    pl_store_close(st);
    assert_int_equal(pl_nm_node_check_store(nm.n), PL_OK);
    assert_int_equal(nm.added, 1);
    assert_int_equal(pl_nm_sessions_count(pl_nm_node_sessions(nm.n), NULL), 1);
    side_stop(&app);
    side_stop(&nm);
}

/* Argon2id with the protocol's parameters runs on the thread pool: the
 * loop keeps turning (a 5 ms timer never waits long) while both sides
 * derive, and the pairing completes. */
typedef struct ticker {
    uint64_t last, max_gap;
    unsigned ticks;
    bool gave_up;
    side *a, *b;
    uv_timer_t t, stop;
} ticker;

static void on_tick(uv_timer_t *t) {
    ticker *k = t->data;
    uint64_t now = uv_hrtime();
    if (k->last && now - k->last > k->max_gap) k->max_gap = now - k->last;
    k->last = now;
    k->ticks++;
    if (k->a->paired && k->b->paired) {
        uv_timer_stop(&k->t);
        uv_timer_stop(&k->stop);
    }
}

static void on_give_up(uv_timer_t *t) {
    ticker *k = t->data;
    k->gave_up = true;
}

static void test_kdf_off_the_loop(void **state) {
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    pl_driver *d;
    pl_loopback_hub *hub;
    assert_int_equal(pl_driver_new(&d, &loop), PL_OK);
    pl_loopback_config lc = {.mailbox = true, .seed = 2};
    assert_int_equal(pl_loopback_hub_new(&hub, d, &lc), PL_OK);
    side app, nm;
    side *both[2] = {&app, &nm};
    for (int i = 0; i < 2; i++) {
        side *x = both[i];
        memset(x, 0, sizeof *x);
        x->label = i ? "nm" : "app";
        x->role = i ? PL_NM_ROLE_NODE_MANAGER : PL_NM_ROLE_APP;
        snprintf(x->store, sizeof x->store, "%s/k%d.db", dir, i);
        assert_int_equal(pl_loopback_new(&x->tp, hub, x->label, NULL), PL_OK);
        pl_nm_node_opts o = opts_of(x, true);
        o.driver = d;
        o.kdf = NULL; /* the protocol's Argon2id: ~0.4 s */
        assert_int_equal(pl_nm_node_new(&x->n, NULL, &o), PL_OK);
    }
    ticker k = {.a = &app, .b = &nm};
    uv_timer_init(&loop, &k.t);
    uv_timer_init(&loop, &k.stop);
    k.t.data = k.stop.data = &k;
    uv_timer_start(&k.t, on_tick, 5, 5);
    uv_timer_start(&k.stop, on_give_up, 20000, 0);
    char code[PL_NM_CODE_TEXT_SIZE];
    uint64_t t0 = uv_hrtime();
    assert_int_equal(pl_nm_node_pair(app.n, NULL, code), PL_OK);
    assert_int_equal(pl_nm_node_pair(nm.n, code, NULL), PL_OK);
    print_message("pair() x2: %.1f ms\n", (uv_hrtime() - t0) / 1e6);
    /* pair() returned at once: the derivation is not done in it */
    assert_true(uv_hrtime() - t0 < 100 * 1000000ull);
    assert_int_equal(pl_nm_node_pair(app.n, NULL, NULL), PL_ERR_STATE);
    while (!(app.paired && nm.paired) && !k.gave_up)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(app.paired, 1);
    assert_int_equal(nm.paired, 1);
    assert_string_equal(app.fingerprint, nm.fingerprint);
    /* the loop turned all along: many ticks, none late by a derivation */
    print_message("kdf off the loop: %u ticks, longest gap %.1f ms, pairing %.0f ms\n", k.ticks,
                  k.max_gap / 1e6, (uv_hrtime() - t0) / 1e6);
    assert_true(k.ticks >= 20);
    /* one derivation, timed here: run on the loop, it would be a gap at
     * least that long */
    uint8_t p[PL_NM_CODE_BYTES] = {1};
    pl_nm_secrets sec;
    uint64_t d0 = uv_hrtime();
    assert_int_equal(pl_nm_derive(&sec, p, NULL), PL_OK);
    uint64_t derive_ns = uv_hrtime() - d0;
    pl_nm_secrets_wipe(&sec);
    print_message("one derivation: %.1f ms\n", derive_ns / 1e6);
    assert_true(k.max_gap < derive_ns / 2);
    /* a pairing closed while deriving: the work ends on its own */
    assert_int_equal(pl_nm_node_pair(nm.n, code, NULL), PL_OK);
    for (int i = 0; i < 2; i++) {
        both[i]->closed = false;
        pl_nm_node_close(both[i]->n, 0, on_closed);
    }
    uv_close((uv_handle_t *)&k.t, NULL);
    uv_close((uv_handle_t *)&k.stop, NULL);
    /* the driver's own handles keep the loop alive until it is closed */
    while (!(app.closed && nm.closed))
        uv_run(&loop, UV_RUN_ONCE);
    for (int i = 0; i < 2; i++)
        pl_transport_close(both[i]->tp, 0, NULL, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    pl_loopback_hub_free(hub);
    pl_driver_close(d, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- on a network that stores nothing (Waku relay) ---- */

/* A hub like a Waku relay: no mailbox, so a message nobody is subscribed
 * to (or that is dropped) is gone for good. */
static int setup_relay(void **state) {
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/pl-nmnode-XXXXXX");
    assert_non_null(mkdtemp(dir));
    assert_int_equal(pl_driver_new_virtual(&D, T0), PL_OK);
    pl_loopback_config lc = {.mailbox = false, .seed = 1};
    assert_int_equal(pl_loopback_hub_new(&H, D, &lc), PL_OK);
    return 0;
}

enum { K_HELLO_APP, K_HELLO_NM, K_MSG1, K_MSG2, K_MSG3, K_KNOCK, K_READY, K_FRAME, K_COUNT };
static const char *const kind_names[K_COUNT] = {"HELLO_APP", "HELLO_NODE_MANAGER", "message 1",
                                                "message 2", "message 3",          "knock",
                                                "READY",     "request/response"};

typedef struct tapped {
    int seen[K_COUNT];
    int dropped[K_COUNT];
    bool drop_first; /* drop the first publish of every kind but K_FRAME */
    int bad;         /* publishes whose options contradict the spec */
} tapped;

/* What a publish is, from who sent it, its topic and the first bytes of a
 * PayloadV2: nametag(16) | protocol id(1) | handshake length(1). */
static int kind_of(const char *ep, const char *topic, const uint8_t *d, size_t len,
                   const pl_publish_opts *o) {
    bool app = !strcmp(ep, "app");
    if (!strncmp(topic, "/pairlink/1/pair-", 17)) return app ? K_HELLO_NM : K_HELLO_APP;
    if (!strncmp(topic, "/pairlink/1/wakunoise/1/sessions/", 33))
        return o->ephemeral ? K_READY : K_FRAME;
    assert_true(!strncmp(topic, "/pairlink/1/rv-", 15) && len > 18);
    if (app) return d[16] == 0 ? K_KNOCK : K_MSG2;
    return d[17] ? K_MSG1 : K_MSG3;
}

/* Every publish carries the Waku mapping of the spec (section 4.4): HELLOs
 * version 1, session messages version 2; ephemeral all but requests and
 * responses; the relay's ttl unchanged. */
static void on_tap(void *ud, const char *ep, const char *topic, const uint8_t *d, size_t len,
                   const pl_publish_opts *o) {
    tapped *t = ud;
    int k = kind_of(ep, topic, d, len, o);
    t->seen[k]++;
    const pl_waku_publish_ext *x = (const pl_waku_publish_ext *)(const void *)o->ext;
    bool hello = k == K_HELLO_APP || k == K_HELLO_NM;
    if (!x || x->ext.kind != PL_TRANSPORT_EXT_WAKU || x->meta || x->version != (hello ? 1u : 2u) ||
        o->ephemeral != (k != K_FRAME) ||
        o->ttl_s != (hello ? PL_NM_RELAY_TTL_S : PL_NM_SESSION_RELAY_TTL_S))
        t->bad++;
    if (t->drop_first && k != K_FRAME && t->seen[k] == 1) {
        pl_loopback_hub_drop_next(H, 1); /* this very publish */
        t->dropped[k]++;
    }
}

/* Advance until each side has established a session more than it had
 * (a0, b0); at most ms. */
static void advance_until_established(side *a, side *b, int a0, int b0, int64_t ms) {
    for (int64_t t = 0; t < ms && !(a->established > a0 && b->established > b0); t += 100)
        pl_driver_advance(D, 100);
    if (!(a->established > a0 && b->established > b0))
        fprintf(stderr, "established: %s %d (was %d), %s %d (was %d)\n", a->label, a->established,
                a0, b->label, b->established, b0);
    assert_true(a->established > a0 && b->established > b0);
}

static void test_waku_publish_options(void **state) {
    (void)state;
    tapped t = {0};
    pl_loopback_hub_set_tap(H, on_tap, &t);
    side app, nm;
    side_init(&app, "app", PL_NM_ROLE_APP);
    side_init(&nm, "nm", PL_NM_ROLE_NODE_MANAGER);
    pair(&app, &nm);
    advance_until_established(&app, &nm, 0, 0, 5000);
    nm.answer = true;
    uint8_t nm_pub[32];
    pl_nm_node_identity(nm.n, nm_pub);
    assert_int_equal(pl_nm_node_request(app.n, nm_pub, (const uint8_t *)"q", 1, NULL), PL_OK);
    pl_driver_advance(D, 100);
    assert_int_equal(app.responses, 1);
    assert_int_equal(t.bad, 0);
    for (int k = 0; k < K_COUNT; k++)
        if (k != K_KNOCK) assert_true(t.seen[k] >= 1); /* every kind was checked */
    assert_int_equal(t.seen[K_FRAME], 2);
    pl_loopback_hub_set_tap(H, NULL, NULL);
    side_stop(&app);
    side_stop(&nm);
}

/* Relay does not store: each kind of message of the flow is lost once
 * (its first copy), and the flow still completes by the protocol's own
 * repetitions: HELLO_APP repeated every 2 s, the app's answer sent again
 * for a repeated HELLO_APP, handshake attempts retried with backoff and
 * knocks. Then both sides restart while the other is away (everything the
 * first one sends meanwhile reaches nobody) and the sessions come back. */
static void test_each_message_lost_once(void **state) {
    (void)state;
    tapped t = {.drop_first = true};
    pl_loopback_hub_set_tap(H, on_tap, &t);
    side app, nm;
    side_init(&app, "app", PL_NM_ROLE_APP);
    side_init(&nm, "nm", PL_NM_ROLE_NODE_MANAGER);
    pair(&app, &nm);
    for (int i = 0; i < 60 && !(app.paired && nm.paired); i++)
        pl_driver_advance(D, 500);
    assert_int_equal(app.paired, 1);
    assert_int_equal(nm.paired, 1);
    assert_string_equal(app.fingerprint, nm.fingerprint);
    advance_until_established(&app, &nm, 0, 0, 120000);
    for (int k = 0; k < K_COUNT; k++) {
        if (k == K_FRAME) continue;
        if (t.dropped[k] != 1) fprintf(stderr, "%s was not lost once\n", kind_names[k]);
        assert_int_equal(t.dropped[k], 1);
        assert_true(t.seen[k] >= 2); /* and sent again */
    }
    assert_int_equal(t.bad, 0);
    /* the request goes over the re-made session */
    nm.answer = true;
    uint8_t nm_pub[32];
    pl_nm_node_identity(nm.n, nm_pub);
    assert_int_equal(pl_nm_node_request(app.n, nm_pub, (const uint8_t *)"q", 1, NULL), PL_OK);
    pl_driver_advance(D, 100);
    assert_int_equal(app.responses, 1);

    /* the node manager restarts while the app is away: its message 1 is
     * lost; the app comes back later and knocks */
    side_stop(&app);
    side_stop(&nm);
    int nm_est = nm.established, app_est = app.established;
    side_start(&nm, true);
    pl_driver_advance(D, 3000);
    assert_int_equal(nm.established, nm_est);
    side_start(&app, true);
    advance_until_established(&app, &nm, app_est, nm_est, 5000);
    /* and the reverse: the app first */
    side_stop(&app);
    side_stop(&nm);
    nm_est = nm.established, app_est = app.established;
    side_start(&app, true);
    pl_driver_advance(D, 20000); /* knocks into the void, backing off */
    assert_int_equal(app.established, app_est);
    side_start(&nm, true);
    advance_until_established(&app, &nm, app_est, nm_est, 3000); /* at once: message 1 */
    assert_int_equal(t.bad, 0);
    pl_loopback_hub_set_tap(H, NULL, NULL);
    side_stop(&app);
    side_stop(&nm);
}

/* A network that loses a fifth of all deliveries, nothing stored, for
 * several seeds: pairing, the session, and a restart of both sides. */
static void test_lossy_network(void **state) {
    (void)state;
    for (uint64_t seed = 1; seed <= 6; seed++) {
        /* a hub per seed (the teardown frees the last one) */
        pl_loopback_hub_free(H);
        pl_loopback_config lc = {.mailbox = false, .seed = seed};
        assert_int_equal(pl_loopback_hub_new(&H, D, &lc), PL_OK);
        pl_loopback_faults f = {.drop_permille = 200, .delay_min_ms = 1, .delay_max_ms = 40};
        pl_loopback_hub_set_faults(H, &f);
        side app, nm;
        char a[16], n[16];
        snprintf(a, sizeof a, "app%llu", (unsigned long long)seed);
        snprintf(n, sizeof n, "nm%llu", (unsigned long long)seed);
        side_init(&app, a, PL_NM_ROLE_APP);
        side_init(&nm, n, PL_NM_ROLE_NODE_MANAGER);
        pair(&app, &nm);
        for (int i = 0; i < 110 && !(app.paired && nm.paired); i++)
            pl_driver_advance(D, 500);
        if (!(app.paired && nm.paired))
            fprintf(stderr, "seed %llu: no pairing\n", (unsigned long long)seed);
        assert_true(app.paired && nm.paired);
        advance_until_established(&app, &nm, 0, 0, 180000);
        side_stop(&app);
        side_stop(&nm);
        int ae = app.established, ne = nm.established;
        side_start(&nm, true);
        side_start(&app, true);
        advance_until_established(&app, &nm, ae, ne, 180000);
        pl_loopback_stats st;
        pl_loopback_hub_stats(H, &st);
        assert_true(st.dropped > 0);
        side_stop(&app);
        side_stop(&nm);
    }
}

int main(void) {
    if (pl_init() != PL_OK) return 1;
    lws_set_log_level(0, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pair_session_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restore_and_roles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pairing_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pair_no_session, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoke_and_store_changes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kdf_off_the_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_waku_publish_options, setup_relay, teardown),
        cmocka_unit_test_setup_teardown(test_each_message_lost_once, setup_relay, teardown),
        cmocka_unit_test_setup_teardown(test_lossy_network, setup_relay, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
