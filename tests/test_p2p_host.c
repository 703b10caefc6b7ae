/* SPDX-License-Identifier: Apache-2.0 */
/* The libp2p host over real loopback sockets, C <-> C, on one uv loop
 * bounded by a timer: the whole stack, identify both ways, ping both ways,
 * 1 MiB through the echo protocol, length-prefixed messages, bad peers
 * disconnected with a named error while the host keeps serving, limits,
 * and a clean shutdown (every handle closed). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "pairlink/p2p.h"
#include "support/p2p_echo.h"
#include "support/support.h"

#define MSG_PROTOCOL "/pairlink/test/msg/1.0.0"
#define MAX_EV 64

static uint64_t rng;
static pl_driver *drv; /* one per test, shared by its hosts */

typedef struct ev_log {
    pl_p2p_event ev[MAX_EV];
    char agent[MAX_EV][128];
    bool has_echo[MAX_EV];
    size_t n;
} ev_log;

typedef struct peer {
    pl_p2p_host *h;
    pl_p2p_key *key;
    ev_log log;
    pl_test_echo echo;
    bool closed;
    char addr[256]; /* listen address with /p2p/ */
} peer;

static bool verbose;

static void on_log(void *ud, const char *line) {
    if (verbose) fprintf(stderr, "[%s] %s\n", (const char *)ud, line);
}

static void on_event(void *ud, pl_p2p_host *h, const pl_p2p_event *ev) {
    (void)h;
    peer *p = ud;
    assert_true(p->log.n < MAX_EV);
    size_t i = p->log.n++;
    p->log.ev[i] = *ev;
    p->log.ev[i].identify = NULL;
    p->log.ev[i].peer = NULL;
    p->log.ev[i].remote_addr = NULL;
    p->log.ev[i].muxer = NULL;
    if (ev->identify) {
        snprintf(p->log.agent[i], 128, "%s", ev->identify->agent_version);
        for (size_t k = 0; k < ev->identify->nprotocols; k++)
            if (!strcmp(ev->identify->protocols[k], PL_TEST_ECHO_PROTOCOL)) p->log.has_echo[i] = true;
    }
}

static const pl_p2p_event *last_of(const peer *p, pl_p2p_event_kind k) {
    for (size_t i = p->log.n; i-- > 0;)
        if (p->log.ev[i].kind == k) return &p->log.ev[i];
    return NULL;
}

static size_t count_of(const peer *p, pl_p2p_event_kind k) {
    size_t n = 0;
    for (size_t i = 0; i < p->log.n; i++) n += p->log.ev[i].kind == k;
    return n;
}

/* ---- the message protocol: the server answers each message with its
 * length as a decimal string. ---- */
static void on_msg_server(void *ud, pl_p2p_host *h, const pl_p2p_stream_event *ev) {
    (void)ud;
    if (ev->kind == PL_P2P_STREAM_EOF) {
        pl_p2p_stream_close(h, ev->stream);
        return;
    }
    if (ev->kind != PL_P2P_STREAM_READABLE && ev->kind != PL_P2P_STREAM_OPENED) return;
    for (;;) {
        const uint8_t *m;
        size_t len;
        assert_int_equal(pl_p2p_stream_read_msg(h, ev->stream, 1 << 20, &m, &len), PL_OK);
        if (!m) break;
        char ans[32];
        int n = snprintf(ans, sizeof ans, "%zu", len);
        assert_int_equal(pl_p2p_stream_write_msg(h, ev->stream, (const uint8_t *)ans, (size_t)n), PL_OK);
    }
}

static void peer_new(peer *p, uv_loop_t *loop, const char *name, const pl_p2p_host_opts *extra) {
    memset(p, 0, sizeof *p);
    assert_int_equal(pl_p2p_key_generate(&p->key, PL_P2P_KEY_ED25519), PL_OK);
    pl_p2p_host_opts o = extra ? *extra : (pl_p2p_host_opts){0};
    o.key = p->key;
    o.on_event = on_event;
    o.ud = p;
    o.on_log = on_log;
    o.log_ud = (void *)name;
    (void)loop;
    assert_int_equal(pl_p2p_host_new(&p->h, drv, &o), PL_OK);
    assert_int_equal(pl_p2p_host_handle(p->h, PL_TEST_ECHO_PROTOCOL, pl_test_echo_cb, &p->echo), PL_OK);
    assert_int_equal(pl_p2p_host_handle(p->h, MSG_PROTOCOL, on_msg_server, NULL), PL_OK);
}

static void peer_listen(peer *p) {
    assert_int_equal(pl_p2p_host_listen(p->h, "/ip4/127.0.0.1/tcp/0"), PL_OK);
    const char *const *a;
    assert_int_equal(pl_p2p_host_listen_addrs(p->h, &a), 1);
    pl_p2p_peer_id id;
    pl_p2p_host_peer_id(p->h, &id);
    char t[PL_P2P_PEER_ID_TEXT_SIZE];
    assert_int_equal(pl_p2p_peer_id_format(t, &id), PL_OK);
    snprintf(p->addr, sizeof p->addr, "%s/p2p/%s", a[0], t);
}


/* ---- running the loop until a condition holds ---- */

typedef bool (*cond_fn)(void *);

typedef struct waiter {
    cond_fn cond;
    void *arg;
    bool timed_out;
} waiter;

static void on_check(uv_prepare_t *t) {
    waiter *w = t->data;
    if (w->cond(w->arg)) uv_stop(t->loop);
}

static void on_deadline(uv_timer_t *t) {
    waiter *w = t->data;
    w->timed_out = true;
    uv_stop(t->loop);
}

/* Run until cond holds (checked before every loop wait), at most 20 s. */
static void run_until(uv_loop_t *loop, cond_fn cond, void *arg) {
    waiter w = {cond, arg, false};
    uv_prepare_t pr;
    uv_timer_t tm;
    uv_prepare_init(loop, &pr);
    uv_timer_init(loop, &tm);
    pr.data = tm.data = &w;
    uv_prepare_start(&pr, on_check);
    uv_timer_start(&tm, on_deadline, 20000, 0);
    if (!cond(arg)) uv_run(loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&pr, NULL);
    uv_close((uv_handle_t *)&tm, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    assert_false(w.timed_out);
}

typedef struct closing {
    size_t left;
    uv_loop_t *loop;
} closing;
static closing shut;

/* on_closed runs from the driver just before the loop would wait: stop the
 * loop from here, nothing else would wake it. */
static void on_host_closed(void *ud) {
    peer *p = ud;
    p->closed = true;
    if (--shut.left == 0) uv_stop(shut.loop);
}

static void uv_stop_cb(uv_timer_t *t) { uv_stop(t->loop); }

static void shutdown_peers(uv_loop_t *loop, peer *ps, size_t n) {
    shut = (closing){n, loop};
    for (size_t i = 0; i < n; i++) pl_p2p_host_close(ps[i].h, on_host_closed, &ps[i]);
    uv_timer_t guard; /* bounds the wait: a host that never closes fails */
    uv_timer_init(loop, &guard);
    uv_timer_start(&guard, uv_stop_cb, 20000, 0);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&guard, NULL);
    for (size_t i = 0; i < n; i++) {
        assert_true(ps[i].closed);
        pl_p2p_key_free(ps[i].key);
    }
    /* Then the driver; everything closes by itself: the loop runs dry. */
    pl_driver_close(drv, NULL, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}

static void loop_start(uv_loop_t *loop) {
    uv_loop_init(loop);
    assert_int_equal(pl_driver_new(&drv, loop), PL_OK);
}

/* ---- the echo client ---- */

typedef struct echo_client {
    uint8_t *src, *got;
    size_t total, sent, recvd;
    pl_p2p_stream_id s;
    bool opened, closed_write, done;
    pl_err err;
    char proto[64];
} echo_client;

static void echo_send(echo_client *e, pl_p2p_host *h) {
    while (e->sent < e->total) {
        size_t t = 0;
        assert_int_equal(pl_p2p_stream_write(h, e->s, e->src + e->sent, e->total - e->sent, &t), PL_OK);
        if (!t) return;
        e->sent += t;
    }
    if (!e->closed_write) {
        e->closed_write = true;
        assert_int_equal(pl_p2p_stream_close(h, e->s), PL_OK);
    }
}

static void on_echo_client(void *ud, pl_p2p_host *h, const pl_p2p_stream_event *ev) {
    echo_client *e = ud;
    switch (ev->kind) {
    case PL_P2P_STREAM_OPENED:
        e->opened = true;
        snprintf(e->proto, sizeof e->proto, "%s", ev->protocol);
        echo_send(e, h);
        break;
    case PL_P2P_STREAM_WRITABLE: echo_send(e, h); break;
    case PL_P2P_STREAM_READABLE: {
        const uint8_t *d;
        size_t n;
        assert_int_equal(pl_p2p_stream_peek(h, ev->stream, &d, &n), PL_OK);
        assert_true(e->recvd + n <= e->total);
        memcpy(e->got + e->recvd, d, n);
        e->recvd += n;
        assert_int_equal(pl_p2p_stream_consume(h, ev->stream, n), PL_OK);
        break;
    }
    case PL_P2P_STREAM_EOF: break;
    case PL_P2P_STREAM_CLOSED:
        e->done = true;
        e->err = ev->err;
        break;
    }
}

static bool echo_done(void *arg) { return ((echo_client *)arg)->done; }

/* ---- ping ---- */

typedef struct ping_res {
    int n;
    pl_err err;
    double rtt;
} ping_res;

static void on_ping(void *ud, pl_p2p_host *h, pl_p2p_conn_id c, pl_err err, double rtt) {
    (void)h, (void)c;
    ping_res *r = ud;
    r->n++;
    r->err = err;
    r->rtt = rtt;
}

static bool ping_done(void *arg) { return ((ping_res *)arg)->n > 0; }

typedef struct two {
    peer *a, *b;
    pl_p2p_event_kind k;
    size_t n;
} two;

static bool both_have(void *arg) {
    two *t = arg;
    return count_of(t->a, t->k) >= t->n && count_of(t->b, t->k) >= t->n;
}

static bool one_has(void *arg) {
    two *t = arg;
    return count_of(t->a, t->k) >= t->n;
}

static void test_c_to_c(void **state) {
    (void)state;
    uv_loop_t loop;
    loop_start(&loop);
    peer ps[2];
    peer *a = &ps[0], *b = &ps[1];
    peer_new(a, &loop, "a", NULL);
    peer_new(b, &loop, "b", NULL);
    peer_listen(a);

    pl_p2p_conn_id cb = 0;
    assert_int_equal(pl_p2p_host_dial(b->h, a->addr, &cb), PL_OK);
    assert_true(cb != 0);
    two t = {a, b, PL_P2P_EV_IDENTIFIED, 1};
    run_until(&loop, both_have, &t);
    for (int i = 0; i < 2; i++) {
        const pl_p2p_event *e = last_of(&ps[i], PL_P2P_EV_IDENTIFIED);
        assert_int_equal(e->err, PL_OK);
        size_t idx = (size_t)(e - ps[i].log.ev);
        assert_string_equal(ps[i].log.agent[idx], "pairlink/" PL_VERSION_STRING);
        assert_true(ps[i].log.has_echo[idx]);
        assert_non_null(last_of(&ps[i], PL_P2P_EV_CONNECTED));
    }
    assert_false(last_of(b, PL_P2P_EV_CONNECTED)->inbound);
    assert_true(last_of(a, PL_P2P_EV_CONNECTED)->inbound);
    pl_p2p_conn_id ca = last_of(a, PL_P2P_EV_CONNECTED)->conn;
    pl_p2p_conn_info info;
    assert_int_equal(pl_p2p_conn_info_get(b->h, cb, &info), PL_OK);
    assert_string_equal(info.muxer, "/yamux/1.0.0");
    assert_non_null(info.identify);
    /* b sees a's listen address and how a sees b. */
    assert_int_equal(info.identify->nlisten_addrs, 1);
    assert_true(strncmp(a->addr, info.identify->listen_addrs[0], strlen(info.identify->listen_addrs[0])) == 0);
    assert_true(strncmp(info.identify->observed_addr, "/ip4/127.0.0.1/tcp/", 19) == 0);

    /* Ping both ways. */
    ping_res pa = {0}, pb = {0};
    assert_int_equal(pl_p2p_ping(b->h, cb, on_ping, &pb), PL_OK);
    assert_int_equal(pl_p2p_ping(a->h, ca, on_ping, &pa), PL_OK);
    run_until(&loop, ping_done, &pb);
    run_until(&loop, ping_done, &pa);
    assert_int_equal(pa.err, PL_OK);
    assert_int_equal(pb.err, PL_OK);
    assert_true(pa.rtt > 0 && pa.rtt < 5000);

    /* 1 MiB each way through the echo protocol. */
    echo_client e = {.total = 1u << 20};
    e.src = malloc(e.total);
    e.got = malloc(e.total);
    pl_test_rand_bytes(&rng, e.src, e.total);
    const char *protos[] = {"/nope/1.0.0", PL_TEST_ECHO_PROTOCOL};
    assert_int_equal(pl_p2p_stream_open(b->h, cb, protos, 2, on_echo_client, &e, &e.s), PL_OK);
    run_until(&loop, echo_done, &e);
    assert_int_equal(e.err, PL_OK);
    assert_string_equal(e.proto, PL_TEST_ECHO_PROTOCOL);
    assert_int_equal(e.recvd, e.total);
    assert_memory_equal(e.got, e.src, e.total);
    assert_int_equal(a->echo.echoed, e.total);
    /* The id is gone with its CLOSED. */
    size_t taken = 0;
    assert_int_equal(pl_p2p_stream_write(b->h, e.s, e.src, 1, &taken), PL_ERR_NOT_FOUND);
    free(e.src);
    free(e.got);

    /* b ends the connection with a reason; a hears an orderly end. */
    assert_int_equal(pl_p2p_conn_close(b->h, cb, PL_ERR_CANCELLED), PL_OK);
    t.k = PL_P2P_EV_DISCONNECTED;
    run_until(&loop, both_have, &t);
    assert_int_equal(last_of(b, PL_P2P_EV_DISCONNECTED)->err, PL_ERR_CANCELLED);
    assert_int_equal(last_of(a, PL_P2P_EV_DISCONNECTED)->err, PL_ERR_CLOSED);
    assert_true(last_of(a, PL_P2P_EV_DISCONNECTED)->established);
    assert_int_equal(pl_p2p_conn_info_get(b->h, cb, &info), PL_ERR_NOT_FOUND);
    shutdown_peers(&loop, ps, 2);
}

/* ---- messages ---- */

typedef struct msg_client {
    pl_p2p_stream_id s;
    int answers;
    char last[32];
    bool done;
} msg_client;

static void on_msg_client(void *ud, pl_p2p_host *h, const pl_p2p_stream_event *ev) {
    msg_client *m = ud;
    if (ev->kind == PL_P2P_STREAM_READABLE) {
        const uint8_t *d;
        size_t n;
        while (pl_p2p_stream_read_msg(h, ev->stream, 64, &d, &n) == PL_OK && d) {
            snprintf(m->last, sizeof m->last, "%.*s", (int)n, (const char *)d);
            m->answers++;
        }
    }
    if (ev->kind == PL_P2P_STREAM_CLOSED) m->done = true;
}

static bool msg_done(void *arg) { return ((msg_client *)arg)->done; }

static void test_messages_and_backpressure(void **state) {
    (void)state;
    uv_loop_t loop;
    loop_start(&loop);
    peer ps[2];
    peer *a = &ps[0], *b = &ps[1];
    pl_p2p_host_opts small = {.stream_send_buffer = 64 * 1024, .muxers = PL_P2P_MUXERS_MPLEX};
    peer_new(a, &loop, "a", NULL);
    peer_new(b, &loop, "b", &small);
    peer_listen(a);
    pl_p2p_conn_id c = 0;
    assert_int_equal(pl_p2p_host_dial(b->h, a->addr, &c), PL_OK);
    two t = {b, a, PL_P2P_EV_CONNECTED, 1};
    run_until(&loop, one_has, &t);
    pl_p2p_conn_info info;
    assert_int_equal(pl_p2p_conn_info_get(b->h, c, &info), PL_OK);
    assert_string_equal(info.muxer, "/mplex/6.7.0");

    msg_client m = {0};
    const char *p[] = {MSG_PROTOCOL};
    assert_int_equal(pl_p2p_stream_open(b->h, c, p, 1, on_msg_client, &m, &m.s), PL_OK);
    /* Before OPENED the messages wait in the send buffer; one that can
     * never fit is refused, then the buffer fills and refuses more. */
    uint8_t *big = calloc(1, 64 * 1024);
    assert_int_equal(pl_p2p_stream_write_msg(b->h, m.s, big, 64 * 1024), PL_ERR_TOO_LARGE);
    assert_int_equal(pl_p2p_stream_write_msg(b->h, m.s, big, 1000), PL_OK);
    assert_int_equal(pl_p2p_stream_write_msg(b->h, m.s, big, 0), PL_OK);
    assert_int_equal(pl_p2p_stream_write_msg(b->h, m.s, big, 40000), PL_OK);
    assert_int_equal(pl_p2p_stream_write_msg(b->h, m.s, big, 30000), PL_ERR_P2P_BACKPRESSURE);
    assert_true(pl_p2p_stream_send_space(b->h, m.s) < 30000);
    assert_int_equal(pl_p2p_stream_close(b->h, m.s), PL_OK);
    assert_int_equal(pl_p2p_stream_write_msg(b->h, m.s, big, 1), PL_ERR_CLOSED);
    free(big);
    run_until(&loop, msg_done, &m);
    assert_int_equal(m.answers, 3);
    assert_string_equal(m.last, "40000");
    shutdown_peers(&loop, ps, 2);
}

/* ---- bad peers and limits ---- */

typedef struct raw {
    uv_tcp_t tcp;
    uv_connect_t req;
    uv_write_t w;
    const char *bytes;
    size_t len;
    bool connected, closed;
} raw;

static void on_raw_closed(uv_handle_t *h) { ((raw *)h->data)->closed = true; }

static void on_raw_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
    free(buf->base);
    if (n < 0) uv_close((uv_handle_t *)s, on_raw_closed);
}

static void on_raw_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b) {
    (void)h;
    *b = uv_buf_init(malloc(sz), (unsigned)sz);
}

static void on_raw_connect(uv_connect_t *req, int status) {
    raw *r = req->data;
    assert_int_equal(status, 0);
    r->connected = true;
    uv_buf_t b = uv_buf_init((char *)r->bytes, (unsigned)r->len);
    uv_write(&r->w, (uv_stream_t *)&r->tcp, &b, 1, NULL);
    uv_read_start((uv_stream_t *)&r->tcp, on_raw_alloc, on_raw_read);
}

static void raw_send(uv_loop_t *loop, raw *r, int port, const char *bytes, size_t len) {
    memset(r, 0, sizeof *r);
    r->bytes = bytes;
    r->len = len;
    uv_tcp_init(loop, &r->tcp);
    r->tcp.data = r->req.data = r;
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", port, &sa);
    assert_int_equal(uv_tcp_connect(&r->req, &r->tcp, (const struct sockaddr *)&sa, on_raw_connect), 0);
}

static int port_of(const peer *p) {
    const char *const *a;
    pl_p2p_host_listen_addrs(p->h, &a);
    return atoi(strrchr(a[0], '/') + 1);
}

static bool raw_closed(void *arg) { return ((raw *)arg)->closed; }

static void test_bad_peers_and_limits(void **state) {
    (void)state;
    uv_loop_t loop;
    loop_start(&loop);
    peer ps[3];
    peer *a = &ps[0], *b = &ps[1], *x = &ps[2];
    pl_p2p_host_opts lim = {.max_connections_per_ip = 3};
    peer_new(a, &loop, "a", &lim);
    peer_new(b, &loop, "b", NULL);
    peer_new(x, &loop, "x", NULL);
    peer_listen(a);

    /* b is connected to a and stays so through everything below. */
    pl_p2p_conn_id cb = 0;
    assert_int_equal(pl_p2p_host_dial(b->h, a->addr, &cb), PL_OK);
    two t = {b, a, PL_P2P_EV_IDENTIFIED, 1};
    run_until(&loop, both_have, &t);

    /* Garbage instead of multistream: a names the error and drops it. */
    static const char http[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: curl/7.88.1\r\n"
                               "Accept: */*\r\nConnection: close\r\n\r\n";
    raw r;
    raw_send(&loop, &r, port_of(a), http, sizeof http - 1);
    run_until(&loop, raw_closed, &r);
    const pl_p2p_event *d = last_of(a, PL_P2P_EV_DISCONNECTED);
    assert_non_null(d);
    assert_int_equal(d->err, PL_ERR_P2P_MULTISTREAM);
    assert_false(d->established);
    /* A good multistream hello, then a Noise message too short for a key. */
    static const char bad_noise[] = "\x13/multistream/1.0.0\n\x07/noise\n\x00\x05hello";
    raw_send(&loop, &r, port_of(a), bad_noise, sizeof bad_noise - 1);
    run_until(&loop, raw_closed, &r);
    assert_int_equal(last_of(a, PL_P2P_EV_DISCONNECTED)->err, PL_ERR_P2P_FRAME);

    /* A dial naming another peer id: refused after Noise. */
    pl_p2p_peer_id xid;
    pl_p2p_host_peer_id(x->h, &xid);
    char xt[PL_P2P_PEER_ID_TEXT_SIZE], wrong[300];
    pl_p2p_peer_id_format(xt, &xid);
    snprintf(wrong, sizeof wrong, "%.*s/p2p/%s", (int)(strstr(a->addr, "/p2p/") - a->addr), a->addr, xt);
    pl_p2p_conn_id cw = 0;
    assert_int_equal(pl_p2p_host_dial(x->h, wrong, &cw), PL_OK);
    two tx = {x, NULL, PL_P2P_EV_DISCONNECTED, 1};
    run_until(&loop, one_has, &tx);
    assert_int_equal(last_of(x, PL_P2P_EV_DISCONNECTED)->err, PL_ERR_P2P_PEER_MISMATCH);
    assert_int_equal(last_of(x, PL_P2P_EV_DISCONNECTED)->conn, cw);

    /* The per-IP limit (3): b holds one; x opens two more and the third is
     * refused at accept. */
    pl_p2p_conn_id c1, c2, c3;
    assert_int_equal(pl_p2p_host_dial(x->h, a->addr, &c1), PL_OK);
    assert_int_equal(pl_p2p_host_dial(x->h, a->addr, &c2), PL_OK);
    tx.k = PL_P2P_EV_CONNECTED;
    tx.n = 2;
    run_until(&loop, one_has, &tx);
    assert_int_equal(pl_p2p_host_dial(x->h, a->addr, &c3), PL_OK);
    tx.k = PL_P2P_EV_DISCONNECTED;
    tx.n = 2;
    run_until(&loop, one_has, &tx);
    d = last_of(x, PL_P2P_EV_DISCONNECTED);
    assert_int_equal(d->conn, c3);
    assert_false(d->established);

    /* Unsupported transports and nowhere to connect. */
    pl_p2p_conn_id cz = 7;
    assert_int_equal(pl_p2p_host_dial(x->h, "/ip4/127.0.0.1/tcp/1/ws", &cz), PL_ERR_P2P_TRANSPORT);
    assert_int_equal(cz, 0);
    assert_int_equal(pl_p2p_host_dial(x->h, "/ip4/127.0.0.1/tcp", &cz), PL_ERR_P2P_MULTIADDR);
    /* a port nobody listens on (bound, then closed: port 1 may be taken
     * on a shared machine) */
    uv_tcp_t probe;
    uv_tcp_init(&loop, &probe);
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    assert_int_equal(uv_tcp_bind(&probe, (const struct sockaddr *)&sa, 0), 0);
    int salen = sizeof sa;
    assert_int_equal(uv_tcp_getsockname(&probe, (struct sockaddr *)&sa, &salen), 0);
    uv_close((uv_handle_t *)&probe, NULL);
    char refused[64];
    snprintf(refused, sizeof refused, "/dns4/localhost/tcp/%d", ntohs(sa.sin_port));
    assert_int_equal(pl_p2p_host_dial(x->h, refused, &cz), PL_OK);
    tx.n = 3;
    run_until(&loop, one_has, &tx);
    d = last_of(x, PL_P2P_EV_DISCONNECTED);
    assert_int_equal(d->conn, cz);
    assert_int_equal(d->err, PL_ERR_SYS); /* connection refused */

    /* Through all this, a kept serving b. */
    ping_res pr = {0};
    assert_int_equal(pl_p2p_ping(b->h, cb, on_ping, &pr), PL_OK);
    run_until(&loop, ping_done, &pr);
    assert_int_equal(pr.err, PL_OK);
    assert_int_equal(count_of(b, PL_P2P_EV_DISCONNECTED), 0);

    /* Shutdown with connections up: both ends hear it, nothing leaks. */
    shutdown_peers(&loop, ps, 3);
    assert_int_equal(count_of(b, PL_P2P_EV_DISCONNECTED), 1);
}

int main(void) {
    verbose = getenv("PL_TEST_VERBOSE") != NULL;
    assert_int_equal(pl_init(), PL_OK);
    rng = pl_test_seed();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_c_to_c),
        cmocka_unit_test(test_messages_and_backpressure),
        cmocka_unit_test(test_bad_peers_and_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
