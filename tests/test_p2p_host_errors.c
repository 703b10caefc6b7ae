/* SPDX-License-Identifier: Apache-2.0 */
/* The libp2p host (include/pairlink/p2p.h) where things go wrong, over
 * loopback sockets on one uv loop, each wait bounded by a timer: dial,
 * handshake, identify, ping and close time-outs (a listener whose accept
 * queue is full, a listener that never speaks, a proxy that stops
 * forwarding), a peer that resets the connection (read and write errors),
 * connections ended while dialing or resolving (from every loop phase),
 * DNS dials, listen errors, muxer mismatch, stream resets and handlers
 * that change under a stream, and a dial when no descriptor is left.
 * Every host and handle is closed at the end of each test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "pairlink/p2p.h"
#include "support/p2p_echo.h"
#include "support/support.h"

#define P1 "/pairlink/test/one/1.0.0"
#define P2 "/pairlink/test/two/1.0.0"
#define MAX_EV 32

static bool verbose;
static pl_driver *drv; /* one per test, on its loop */

static void on_log(void *ud, const char *line) {
    if (verbose) fprintf(stderr, "[%s] %s\n", (const char *)ud, line);
}

/* ---- a host and what it reported ---- */

typedef struct rec {
    pl_p2p_event_kind kind;
    pl_p2p_conn_id conn;
    pl_err err;
    bool established, inbound, has_identify;
    char remote[128];
    char muxer[32];
} rec;

typedef struct peer peer;
struct peer {
    pl_p2p_host *h;
    pl_p2p_key *key;
    uv_loop_t *loop;
    char name[8];
    rec ev[MAX_EV];
    size_t n;
    pl_test_echo echo;
    bool closed;
    unsigned reqs_at_close; /* requests still on the loop when on_closed ran */
    char addr[256];         /* first listen address with /p2p/ */
    char id_text[PL_P2P_PEER_ID_TEXT_SIZE];
    void (*hook)(peer *p, const pl_p2p_event *ev); /* after recording */
    void *hook_ud;
};

static void on_event(void *ud, pl_p2p_host *h, const pl_p2p_event *ev) {
    (void)h;
    peer *p = ud;
    assert_true(p->n < MAX_EV);
    rec *r = &p->ev[p->n++];
    r->kind = ev->kind;
    r->conn = ev->conn;
    r->err = ev->err;
    r->established = ev->established;
    r->inbound = ev->inbound;
    r->has_identify = ev->identify != NULL;
    snprintf(r->remote, sizeof r->remote, "%s", ev->remote_addr ? ev->remote_addr : "");
    snprintf(r->muxer, sizeof r->muxer, "%s", ev->muxer ? ev->muxer : "");
    if (p->hook) p->hook(p, ev);
}

static size_t count_of(const peer *p, pl_p2p_event_kind k) {
    size_t n = 0;
    for (size_t i = 0; i < p->n; i++)
        n += p->ev[i].kind == k;
    return n;
}

static const rec *last_of(const peer *p, pl_p2p_event_kind k) {
    for (size_t i = p->n; i-- > 0;)
        if (p->ev[i].kind == k) return &p->ev[i];
    return NULL;
}

static void peer_new(peer *p, uv_loop_t *loop, const char *name, const pl_p2p_host_opts *extra) {
    memset(p, 0, sizeof *p);
    p->loop = loop;
    snprintf(p->name, sizeof p->name, "%s", name);
    assert_int_equal(pl_p2p_key_generate(&p->key, PL_P2P_KEY_ED25519), PL_OK);
    pl_p2p_host_opts o = extra ? *extra : (pl_p2p_host_opts){0};
    o.key = p->key;
    o.on_event = on_event;
    o.ud = p;
    o.on_log = on_log;
    o.log_ud = p->name;
    assert_int_equal(pl_p2p_host_new(&p->h, drv, &o), PL_OK);
    assert_int_equal(pl_p2p_host_handle(p->h, PL_TEST_ECHO_PROTOCOL, pl_test_echo_cb, &p->echo),
                     PL_OK);
    pl_p2p_peer_id id;
    pl_p2p_host_peer_id(p->h, &id);
    assert_int_equal(pl_p2p_peer_id_format(p->id_text, &id), PL_OK);
}

static int port_of_text(const char *a) {
    return atoi(strrchr(a, '/') + 1);
}

/* Listen on 127.0.0.1, any port; returns the port. */
static int peer_listen(peer *p) {
    assert_int_equal(pl_p2p_host_listen(p->h, "/ip4/127.0.0.1/tcp/0"), PL_OK);
    const char *const *a;
    size_t n = pl_p2p_host_listen_addrs(p->h, &a);
    assert_true(n >= 1);
    snprintf(p->addr, sizeof p->addr, "%s/p2p/%s", a[0], p->id_text);
    return port_of_text(a[0]);
}

/* ---- running the loop until a condition holds ---- */

typedef bool (*cond_fn)(void *);

typedef struct waiter {
    cond_fn cond;
    void *arg;
} waiter;

static void on_poll(uv_timer_t *t) {
    waiter *w = t->data;
    if (w->cond && w->cond(w->arg)) uv_stop(t->loop);
}

static void on_limit(uv_timer_t *t) {
    uv_stop(t->loop);
}

/* Run until cond holds (polled every millisecond, so that what the
 * driver's prepare callback changed is seen too), at most ms. */
static bool run_until(uv_loop_t *loop, cond_fn cond, void *arg, uint64_t ms) {
    waiter w = {cond, arg};
    uv_timer_t poll, limit;
    uv_timer_init(loop, &poll);
    uv_timer_init(loop, &limit);
    poll.data = &w;
    uv_timer_start(&poll, on_poll, 1, 1);
    uv_timer_start(&limit, on_limit, ms, 0);
    if (!cond || !cond(arg)) uv_run(loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&poll, NULL);
    uv_close((uv_handle_t *)&limit, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return !cond || cond(arg);
}

static bool is_true(void *arg) {
    return *(const bool *)arg;
}

typedef struct has_ev {
    const peer *p;
    pl_p2p_event_kind k;
    size_t n;
} has_ev;

static bool has(void *arg) {
    has_ev *h = arg;
    return count_of(h->p, h->k) >= h->n;
}

/* Run until p reported n events of kind k. */
static void wait_ev(peer *p, pl_p2p_event_kind k, size_t n) {
    has_ev h = {p, k, n};
    assert_true(run_until(p->loop, has, &h, 10000));
}

static void on_host_closed(void *ud) {
    peer *p = ud;
    p->closed = true;
    p->reqs_at_close = p->loop->active_reqs.count;
}

typedef struct all {
    peer **ps;
    size_t n;
} all;

static bool all_closed(void *arg) {
    all *a = arg;
    for (size_t i = 0; i < a->n; i++)
        if (!a->ps[i]->closed) return false;
    return true;
}

static void loop_start(uv_loop_t *loop) {
    uv_loop_init(loop);
    assert_int_equal(pl_driver_new(&drv, loop), PL_OK);
}

/* Close the hosts not closed yet, wait for their on_closed, then the
 * driver: the loop must run dry and close. */
static void finish(uv_loop_t *loop, peer **ps, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (ps[i]->h && !ps[i]->closed) {
            pl_p2p_host_close(ps[i]->h, on_host_closed, ps[i]);
            ps[i]->h = NULL;
        }
    all a = {ps, n};
    assert_true(run_until(loop, all_closed, &a, 10000));
    for (size_t i = 0; i < n; i++) {
        pl_p2p_key_free(ps[i]->key);
        ps[i]->key = NULL;
    }
    pl_driver_close(drv, NULL, NULL);
    drv = NULL;
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}

/* ---- a TCP proxy that misbehaves on demand -------------------------------------
 *
 * One connection: accepted from a dialer ("down"), forwarded to the target
 * port ("up"). blackhole: bytes both ways are read and dropped, and EOFs
 * are ignored (a peer that went silent without closing). With no target
 * it is a listener that accepts and never says anything (it closes when
 * the dialer does). reset: the dialer's side is aborted (RST). */

typedef struct proxy proxy;

typedef struct pside {
    uv_tcp_t tcp;
    proxy *px;
    bool open, eof;
} pside;

struct proxy {
    uv_loop_t *loop;
    uv_tcp_t srv;
    bool srv_open;
    int port, target;
    pside down, up;
    uv_connect_t cr;
    bool blackhole; /* drop what is read */
    bool hold;      /* and ignore EOFs: never close */
    size_t dropped, forwarded;
};

typedef struct pxwrite {
    uv_write_t w;
    char data[];
} pxwrite;

static void on_side_closed(uv_handle_t *h) {
    pside *s = h->data;
    s->open = false;
}

static void side_close(pside *s) {
    if (s->open && !uv_is_closing((uv_handle_t *)&s->tcp))
        uv_close((uv_handle_t *)&s->tcp, on_side_closed);
}

static void on_pwrite(uv_write_t *w, int status) {
    (void)status;
    free(w);
}

static void on_shut(uv_shutdown_t *r, int status) {
    (void)status;
    free(r);
}

static void on_px_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b) {
    (void)h;
    *b = uv_buf_init(malloc(sz), (unsigned)sz);
}

static void on_px_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf) {
    pside *s = st->data;
    proxy *px = s->px;
    pside *other = s == &px->down ? &px->up : &px->down;
    if (n > 0 && px->blackhole) {
        px->dropped += (size_t)n;
    } else if (n > 0 && other->open) {
        pxwrite *w = malloc(sizeof *w + (size_t)n);
        memcpy(w->data, buf->base, (size_t)n);
        uv_buf_t b = uv_buf_init(w->data, (unsigned)n);
        if (uv_write(&w->w, (uv_stream_t *)&other->tcp, &b, 1, on_pwrite) != 0)
            free(w);
        else
            px->forwarded += (size_t)n;
    } else if (n < 0) {
        uv_read_stop(st);
        if (!px->hold) {
            s->eof = true;
            if (n != UV_EOF || !other->open || other->eof) {
                side_close(s);
                side_close(other);
            } else {
                uv_shutdown_t *r = malloc(sizeof *r);
                if (uv_shutdown(r, (uv_stream_t *)&other->tcp, on_shut) != 0) free(r);
            }
        }
    }
    free(buf->base);
}

static void on_up(uv_connect_t *r, int status) {
    proxy *px = r->data;
    if (status < 0) {
        side_close(&px->down);
        side_close(&px->up);
        return;
    }
    uv_read_start((uv_stream_t *)&px->down.tcp, on_px_alloc, on_px_read);
    uv_read_start((uv_stream_t *)&px->up.tcp, on_px_alloc, on_px_read);
}

static void on_px_conn(uv_stream_t *srv, int status) {
    proxy *px = srv->data;
    assert_int_equal(status, 0);
    assert_false(px->down.open); /* one connection per proxy */
    uv_tcp_init(px->loop, &px->down.tcp);
    px->down.open = true;
    assert_int_equal(uv_accept(srv, (uv_stream_t *)&px->down.tcp), 0);
    if (!px->target) {
        px->blackhole = true;
        uv_read_start((uv_stream_t *)&px->down.tcp, on_px_alloc, on_px_read);
        return;
    }
    uv_tcp_init(px->loop, &px->up.tcp);
    px->up.open = true;
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", px->target, &sa);
    px->cr.data = px;
    assert_int_equal(uv_tcp_connect(&px->cr, &px->up.tcp, (const struct sockaddr *)&sa, on_up), 0);
}

static void px_start(proxy *px, uv_loop_t *loop, int target) {
    memset(px, 0, sizeof *px);
    px->loop = loop;
    px->target = target;
    px->down.px = px->up.px = px;
    px->down.tcp.data = &px->down;
    px->up.tcp.data = &px->up;
    uv_tcp_init(loop, &px->srv);
    px->srv.data = px;
    px->srv_open = true;
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    assert_int_equal(uv_tcp_bind(&px->srv, (const struct sockaddr *)&sa, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&px->srv, 8, on_px_conn), 0);
    struct sockaddr_storage ss;
    int len = sizeof ss;
    assert_int_equal(uv_tcp_getsockname(&px->srv, (struct sockaddr *)&ss, &len), 0);
    px->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void on_srv_closed(uv_handle_t *h) {
    ((proxy *)h->data)->srv_open = false;
}

/* Abort the dialer's side (RST), close the other. */
static void px_reset_down(proxy *px) {
    assert_true(px->down.open);
    uv_read_stop((uv_stream_t *)&px->down.tcp);
    assert_int_equal(uv_tcp_close_reset(&px->down.tcp, on_side_closed), 0);
    side_close(&px->up);
}

static void px_close(proxy *px) {
    side_close(&px->down);
    side_close(&px->up);
    if (px->srv_open && !uv_is_closing((uv_handle_t *)&px->srv))
        uv_close((uv_handle_t *)&px->srv, on_srv_closed);
}

static bool px_closed(void *arg) {
    proxy *px = arg;
    return !px->srv_open && !px->down.open && !px->up.open;
}

/* The dial address of a proxy in front of p. */
static void px_addr(char *out, size_t cap, const proxy *px, const peer *p) {
    snprintf(out, cap, "/ip4/127.0.0.1/tcp/%d/p2p/%s", px->port, p->id_text);
}

/* A listening socket whose accept queue is full (backlog 0 and one
 * connection in it, never accepted): a SYN to it goes unanswered, so a
 * dial to it stays in TCP connect. Plain sockets: libuv would accept. */
typedef struct full_listener {
    int lfd, filler, port;
} full_listener;

static void full_listener_open(full_listener *f) {
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(f->lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(f->lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(f->lfd, 0), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&a, &len), 0);
    f->port = ntohs(a.sin_port);
    f->filler = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(f->filler, (struct sockaddr *)&a, sizeof a), 0);
}

static void full_listener_close(full_listener *f) {
    close(f->filler);
    close(f->lfd);
}

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

static void on_nop_stream(void *ud, pl_p2p_host *h, const pl_p2p_stream_event *ev) {
    (void)ud, (void)h, (void)ev;
}

/* ---- dialing: time-outs and ends before the connection was up ----------------- */

static void test_dial_timeout_and_cancel(void **state) {
    (void)state;
    uv_loop_t loop;
    loop_start(&loop);
    peer b;
    pl_p2p_host_opts o = {.dial_timeout_ms = 200};
    peer_new(&b, &loop, "b", &o);
    full_listener f;
    full_listener_open(&f);
    char addr[64];
    snprintf(addr, sizeof addr, "/ip4/127.0.0.1/tcp/%d", f.port);

    /* TCP connect never completes: the dial time-out ends it. */
    uint64_t t0 = uv_hrtime();
    pl_p2p_conn_id c1 = 0;
    assert_int_equal(pl_p2p_host_dial(b.h, addr, &c1), PL_OK);
    assert_int_equal(pl_p2p_host_conns(b.h, NULL, 0), 1);
    wait_ev(&b, PL_P2P_EV_DISCONNECTED, 1);
    double ms = (double)(uv_hrtime() - t0) / 1e6;
    const rec *d = last_of(&b, PL_P2P_EV_DISCONNECTED);
    assert_int_equal(d->conn, c1);
    assert_int_equal(d->err, PL_ERR_TIMEOUT);
    assert_false(d->established);
    assert_string_equal(d->remote, addr);
    assert_true(ms >= 150 && ms < 5000);
    assert_int_equal(count_of(&b, PL_P2P_EV_CONNECTED), 0);
    assert_int_equal(pl_p2p_host_conns(b.h, NULL, 0), 0);
    pl_p2p_conn_info info;
    assert_int_equal(pl_p2p_conn_info_get(b.h, c1, &info), PL_ERR_NOT_FOUND);

    /* Ended by the application while connecting: its reason, at once,
     * and the id is gone. */
    pl_p2p_conn_id c2 = 0;
    assert_int_equal(pl_p2p_host_dial(b.h, addr, &c2), PL_OK);
    assert_true(c2 != c1);
    assert_int_equal(pl_p2p_conn_info_get(b.h, c2, &info), PL_OK);
    assert_false(info.established);
    assert_false(info.inbound);
    assert_string_equal(info.muxer, "");
    assert_null(info.identify);
    ping_res pr = {0};
    assert_int_equal(pl_p2p_ping(b.h, c2, on_ping, &pr), PL_ERR_STATE);
    const char *protos[] = {P1};
    pl_p2p_stream_id s = 9;
    assert_int_equal(pl_p2p_stream_open(b.h, c2, protos, 1, on_nop_stream, NULL, &s), PL_ERR_STATE);
    assert_int_equal(s, 0);
    assert_int_equal(pl_p2p_conn_close(b.h, c2, PL_ERR_CANCELLED), PL_OK);
    assert_int_equal(count_of(&b, PL_P2P_EV_DISCONNECTED), 2);
    d = last_of(&b, PL_P2P_EV_DISCONNECTED);
    assert_int_equal(d->conn, c2);
    assert_int_equal(d->err, PL_ERR_CANCELLED);
    assert_false(d->established);
    assert_int_equal(pl_p2p_conn_close(b.h, c2, PL_ERR_CANCELLED), PL_ERR_NOT_FOUND);

    /* The same while the name is being resolved. */
    char dns[64];
    snprintf(dns, sizeof dns, "/dns4/localhost/tcp/%d", f.port);
    pl_p2p_conn_id c3 = 0;
    assert_int_equal(pl_p2p_host_dial(b.h, dns, &c3), PL_OK);
    assert_int_equal(pl_p2p_conn_close(b.h, c3, PL_ERR_CANCELLED), PL_OK);
    d = last_of(&b, PL_P2P_EV_DISCONNECTED);
    assert_int_equal(d->conn, c3);
    assert_int_equal(d->err, PL_ERR_CANCELLED);
    assert_false(d->established);
    assert_int_equal(pl_p2p_host_conns(b.h, NULL, 0), 0);

    /* The host closes with a dial in TCP connect: it ends as closed. */
    pl_p2p_conn_id c4 = 0;
    assert_int_equal(pl_p2p_host_dial(b.h, addr, &c4), PL_OK);
    pl_p2p_host_close(b.h, on_host_closed, &b);
    d = last_of(&b, PL_P2P_EV_DISCONNECTED);
    assert_int_equal(d->conn, c4);
    assert_int_equal(d->err, PL_ERR_CLOSED);
    assert_false(d->established);
    /* closing: nothing new is taken */
    pl_p2p_conn_id c5 = 7;
    assert_int_equal(pl_p2p_host_dial(b.h, addr, &c5), PL_ERR_STATE);
    assert_int_equal(c5, 0);
    assert_int_equal(pl_p2p_host_listen(b.h, "/ip4/127.0.0.1/tcp/0"), PL_ERR_STATE);
    b.h = NULL;
    peer *ps[] = {&b};
    finish(&loop, ps, 1);
    assert_int_equal(count_of(&b, PL_P2P_EV_DISCONNECTED), 4);
    full_listener_close(&f);
}

/* The host closed while a name is being resolved, from a callback that
 * runs after the loop's poll phase (here a uv_check; any I/O callback is
 * alike): on_closed must wait for the resolver's answer, which comes
 * through the loop later, rather than free the host under it. */
typedef struct late_close {
    uv_check_t chk;
    peer *p;
    char dns[64];
    pl_p2p_conn_id conn;
    bool done;
} late_close;

static void on_late_check(uv_check_t *h) {
    late_close *l = h->data;
    uv_check_stop(h);
    if (l->done) return;
    l->done = true;
    assert_int_equal(pl_p2p_host_dial(l->p->h, l->dns, &l->conn), PL_OK);
    pl_p2p_host_close(l->p->h, on_host_closed, l->p);
    l->p->h = NULL;
}

static bool late_done(void *arg) {
    return ((late_close *)arg)->p->closed;
}

static void test_close_while_resolving(void **state) {
    (void)state;
    uv_loop_t loop;
    loop_start(&loop);
    peer a;
    peer_new(&a, &loop, "a", NULL);
    int port = peer_listen(&a); /* a listener makes the close wait for its handle */
    late_close l = {.p = &a};
    snprintf(l.dns, sizeof l.dns, "/dns4/localhost/tcp/%d", port);
    uv_check_init(&loop, &l.chk);
    l.chk.data = &l;
    uv_check_start(&l.chk, on_late_check);
    assert_true(run_until(&loop, late_done, &l, 10000));
    uv_close((uv_handle_t *)&l.chk, NULL);
    const rec *d = last_of(&a, PL_P2P_EV_DISCONNECTED);
    assert_non_null(d);
    assert_int_equal(d->conn, l.conn);
    assert_int_equal(d->err, PL_ERR_CLOSED);
    assert_false(d->established);
    assert_int_equal(count_of(&a, PL_P2P_EV_CONNECTED), 0);
    peer *ps[] = {&a};
    finish(&loop, ps, 1);
    /* when on_closed ran, nothing of the host was left on the loop: the
     * resolver's request had called back */
    assert_int_equal(a.reqs_at_close, 0);
}

/* ---- DNS dials ---------------------------------------------------------------- */

static void test_dns_dials(void **state) {
    (void)state;
    uv_loop_t loop;
    loop_start(&loop);
    peer a, b;
    peer_new(&a, &loop, "a", NULL);
    peer_new(&b, &loop, "b", NULL);
    int port = peer_listen(&a);
    char addr[256];

    /* /dns4/localhost: resolved, then the peer id is checked as usual */
    snprintf(addr, sizeof addr, "/dns4/localhost/tcp/%d/p2p/%s", port, a.id_text);
    pl_p2p_conn_id c = 0;
    assert_int_equal(pl_p2p_host_dial(b.h, addr, &c), PL_OK);
    wait_ev(&b, PL_P2P_EV_CONNECTED, 1);
    const rec *e = last_of(&b, PL_P2P_EV_CONNECTED);
    assert_int_equal(e->conn, c);
    char want[64];
    snprintf(want, sizeof want, "/ip4/127.0.0.1/tcp/%d", port);
    assert_string_equal(e->remote, want); /* the address it reached */

    /* /dns/ (either family) with a numeric name */
    snprintf(addr, sizeof addr, "/dns/127.0.0.1/tcp/%d", port);
    assert_int_equal(pl_p2p_host_dial(b.h, addr, &c), PL_OK);
    wait_ev(&b, PL_P2P_EV_CONNECTED, 2);
    assert_int_equal(last_of(&b, PL_P2P_EV_CONNECTED)->conn, c);

    /* A name without an address of the family asked for: NOT_FOUND,
     * decided locally (no DNS query is sent for a numeric name). */
    assert_int_equal(pl_p2p_host_dial(b.h, "/dns6/127.0.0.1/tcp/1", &c), PL_OK);
    wait_ev(&b, PL_P2P_EV_DISCONNECTED, 1);
    const rec *d = last_of(&b, PL_P2P_EV_DISCONNECTED);
    assert_int_equal(d->conn, c);
    assert_int_equal(d->err, PL_ERR_NOT_FOUND);
    assert_false(d->established);
    assert_int_equal(count_of(&b, PL_P2P_EV_CONNECTED), 2);
    assert_int_equal(pl_p2p_host_conns(b.h, NULL, 0), 2);

    peer *ps[] = {&a, &b};
    finish(&loop, ps, 2);
}

/* ---- time-outs of a connection that was up, and of its close ------------------- */

static void hook_blackhole(peer *p, const pl_p2p_event *ev) {
    /* From CONNECTED on, nothing reaches the other side: our identify
     * request was not flushed yet (it leaves after this callback). */
    if (ev->kind == PL_P2P_EV_CONNECTED) {
        proxy *px = p->hook_ud;
        px->blackhole = px->hold = true;
    }
}

typedef struct two_pings {
    ping_res *a, *b;
} two_pings;

static bool pings_done(void *arg) {
    two_pings *t = arg;
    return t->a->n > 0 && t->b->n > 0;
}

typedef struct conns_zero {
    pl_p2p_host *h;
} conns_zero;

static bool no_conns(void *arg) {
    return pl_p2p_host_conns(((conns_zero *)arg)->h, NULL, 0) == 0;
}

static void test_silent_peer_timeouts(void **state) {
    (void)state;
    uv_loop_t loop;
    loop_start(&loop);
    peer a, b;
    pl_p2p_host_opts oa = {.close_timeout_ms = 300};
    pl_p2p_host_opts ob = {.identify_timeout_ms = 300,
                           .ping_timeout_ms = 300,
                           .close_timeout_ms = 300,
                           .handshake_timeout_ms = 300};
    peer_new(&a, &loop, "a", &oa);
    peer_new(&b, &loop, "b", &ob);
    int port = peer_listen(&a);

    /* A listener that accepts and never answers: the handshake time-out. */
    proxy mute;
    px_start(&mute, &loop, 0);
    char addr[256];
    snprintf(addr, sizeof addr, "/ip4/127.0.0.1/tcp/%d", mute.port);
    pl_p2p_conn_id c0 = 0;
    uint64_t t0 = uv_hrtime();
    assert_int_equal(pl_p2p_host_dial(b.h, addr, &c0), PL_OK);
    wait_ev(&b, PL_P2P_EV_DISCONNECTED, 1);
    const rec *d = last_of(&b, PL_P2P_EV_DISCONNECTED);
    assert_int_equal(d->conn, c0);
    assert_int_equal(d->err, PL_ERR_TIMEOUT);
    assert_false(d->established);
    assert_true((double)(uv_hrtime() - t0) / 1e6 >= 250);
    assert_true(mute.dropped > 0); /* it did hear our hello */
    px_close(&mute);

    /* Through a proxy that goes silent once b is connected. */
    proxy px;
    px_start(&px, &loop, port);
    b.hook = hook_blackhole;
    b.hook_ud = &px;
    px_addr(addr, sizeof addr, &px, &a);
    pl_p2p_conn_id c = 0;
    assert_int_equal(pl_p2p_host_dial(b.h, addr, &c), PL_OK);
    wait_ev(&b, PL_P2P_EV_CONNECTED, 1);
    /* identify does not come: IDENTIFIED with the time-out, and the
     * connection stays */
    wait_ev(&b, PL_P2P_EV_IDENTIFIED, 1);
    const rec *id = last_of(&b, PL_P2P_EV_IDENTIFIED);
    assert_int_equal(id->conn, c);
    assert_int_equal(id->err, PL_ERR_TIMEOUT);
    assert_false(id->has_identify);
    pl_p2p_conn_info info;
    assert_int_equal(pl_p2p_conn_info_get(b.h, c, &info), PL_OK);
    assert_true(info.established);
    assert_null(info.identify);
    assert_string_equal(info.muxer, "/yamux/1.0.0");

    /* Two pings at once: each times out, each callback exactly once, and
     * the connection is still there. */
    ping_res p1 = {0}, p2 = {0};
    t0 = uv_hrtime();
    assert_int_equal(pl_p2p_ping(b.h, c, on_ping, &p1), PL_OK);
    assert_int_equal(pl_p2p_ping(b.h, c, on_ping, &p2), PL_OK);
    two_pings tp = {&p1, &p2};
    assert_true(run_until(&loop, pings_done, &tp, 10000));
    assert_true((double)(uv_hrtime() - t0) / 1e6 >= 250);
    assert_true(run_until(&loop, NULL, NULL, 50)); /* a second callback would show */
    assert_int_equal(p1.n, 1);
    assert_int_equal(p2.n, 1);
    assert_int_equal(p1.err, PL_ERR_TIMEOUT);
    assert_int_equal(p2.err, PL_ERR_TIMEOUT);
    assert_int_equal(count_of(&b, PL_P2P_EV_DISCONNECTED), 1);
    assert_int_equal(pl_p2p_conn_info_get(b.h, c, &info), PL_OK);

    /* Closing: DISCONNECTED at once; the peer never acknowledges our FIN,
     * so the connection lingers until close_timeout_ms, then is gone. */
    t0 = uv_hrtime();
    assert_int_equal(pl_p2p_conn_close(b.h, c, PL_ERR_CANCELLED), PL_OK);
    wait_ev(&b, PL_P2P_EV_DISCONNECTED, 2);
    d = last_of(&b, PL_P2P_EV_DISCONNECTED);
    assert_int_equal(d->conn, c);
    assert_int_equal(d->err, PL_ERR_CANCELLED);
    assert_true(d->established);
    assert_int_equal(pl_p2p_host_conns(b.h, NULL, 0), 1);
    conns_zero z = {b.h};
    assert_true(run_until(&loop, no_conns, &z, 10000));
    assert_true((double)(uv_hrtime() - t0) / 1e6 >= 250);
    assert_true(px.dropped > 0);

    px_close(&px);
    assert_true(run_until(&loop, px_closed, &px, 10000));
    assert_true(run_until(&loop, px_closed, &mute, 10000));
    peer *ps[] = {&a, &b};
    finish(&loop, ps, 2);
}

/* ---- a peer that resets the connection ------------------------------------------ */

typedef struct sclient {
    pl_p2p_stream_id s;
    bool opened, closed;
    pl_err err;
    size_t closed_at_ev; /* how many host events there were at CLOSED */
    peer *p;
} sclient;

static void on_sclient(void *ud, pl_p2p_host *h, const pl_p2p_stream_event *ev) {
    (void)h;
    sclient *c = ud;
    if (ev->kind == PL_P2P_STREAM_OPENED) c->opened = true;
    if (ev->kind == PL_P2P_STREAM_CLOSED) {
        assert_false(c->closed);
        c->closed = true;
        c->err = ev->err;
        c->closed_at_ev = c->p->n;
    }
}

static bool sclient_opened(void *arg) {
    return ((sclient *)arg)->opened;
}

/* b dials a through a proxy and opens an echo stream. */
static pl_p2p_conn_id connect_via(proxy *px, peer *a, peer *b, int port, sclient *sc) {
    px_start(px, a->loop, port);
    char addr[256];
    px_addr(addr, sizeof addr, px, a);
    pl_p2p_conn_id c = 0;
    size_t before = count_of(b, PL_P2P_EV_IDENTIFIED);
    assert_int_equal(pl_p2p_host_dial(b->h, addr, &c), PL_OK);
    wait_ev(b, PL_P2P_EV_IDENTIFIED, before + 1);
    assert_int_equal(last_of(b, PL_P2P_EV_IDENTIFIED)->err, PL_OK);
    memset(sc, 0, sizeof *sc);
    sc->p = b;
    const char *protos[] = {PL_TEST_ECHO_PROTOCOL};
    assert_int_equal(pl_p2p_stream_open(b->h, c, protos, 1, on_sclient, sc, &sc->s), PL_OK);
    assert_true(run_until(a->loop, sclient_opened, sc, 10000));
    return c;
}

static void test_peer_reset(void **state) {
    (void)state;
    uv_loop_t loop;
    loop_start(&loop);
    peer a, b;
    peer_new(&a, &loop, "a", NULL);
    peer_new(&b, &loop, "b", NULL);
    int port = peer_listen(&a);

    /* The reset arrives while b is idle: the read fails. */
    proxy px1;
    sclient s1;
    pl_p2p_conn_id c1 = connect_via(&px1, &a, &b, port, &s1);
    px_reset_down(&px1);
    wait_ev(&b, PL_P2P_EV_DISCONNECTED, 1);
    const rec *d = last_of(&b, PL_P2P_EV_DISCONNECTED);
    assert_int_equal(d->conn, c1);
    assert_int_equal(d->err, PL_ERR_IO);
    assert_true(d->established);
    /* its stream ended first, as the connection's end */
    assert_true(s1.closed);
    assert_int_equal(s1.err, PL_ERR_CLOSED);
    assert_true(s1.closed_at_ev < b.n);
    size_t taken = 1;
    assert_int_equal(pl_p2p_stream_write(b.h, s1.s, (const uint8_t *)"x", 1, &taken),
                     PL_ERR_NOT_FOUND);
    assert_int_equal(taken, 0);

    /* The reset arrives before b writes: the write fails. */
    proxy px2;
    sclient s2;
    pl_p2p_conn_id c2 = connect_via(&px2, &a, &b, port, &s2);
    px_reset_down(&px2);
    uint8_t buf[1000] = {0};
    assert_int_equal(pl_p2p_stream_write(b.h, s2.s, buf, sizeof buf, &taken), PL_OK);
    assert_int_equal(taken, sizeof buf);
    wait_ev(&b, PL_P2P_EV_DISCONNECTED, 2);
    d = last_of(&b, PL_P2P_EV_DISCONNECTED);
    assert_int_equal(d->conn, c2);
    assert_int_equal(d->err, PL_ERR_IO);
    assert_true(d->established);
    assert_true(s2.closed);
    assert_int_equal(s2.err, PL_ERR_CLOSED);
    assert_int_equal(pl_p2p_host_conns(b.h, NULL, 0), 0);

    /* a hears both ends too, and keeps serving */
    wait_ev(&a, PL_P2P_EV_DISCONNECTED, 2);
    proxy *pxs[] = {&px1, &px2};
    for (int i = 0; i < 2; i++) {
        px_close(pxs[i]);
        assert_true(run_until(&loop, px_closed, pxs[i], 10000));
    }
    peer *ps[] = {&a, &b};
    finish(&loop, ps, 2);
}

/* ---- listen and handler registration errors -------------------------------------- */

static void test_listen_errors(void **state) {
    (void)state;
    uv_loop_t loop;
    loop_start(&loop);
    peer a, b;
    peer_new(&a, &loop, "a", NULL);
    peer_new(&b, &loop, "b", NULL);
    int port = peer_listen(&a);

    /* the port is taken: the libuv code in the detail; b is unchanged */
    char addr[128];
    snprintf(addr, sizeof addr, "/ip4/127.0.0.1/tcp/%d", port);
    assert_int_equal(pl_p2p_host_listen(b.h, addr), PL_ERR_SYS);
    assert_int_equal(pl_last_detail(), UV_EADDRINUSE);
    const char *const *la;
    assert_int_equal(pl_p2p_host_listen_addrs(b.h, &la), 0);
    /* valid addresses that cannot be listened on */
    assert_int_equal(pl_p2p_host_listen(b.h, "/ip4/127.0.0.1/tcp/0/ws"), PL_ERR_P2P_TRANSPORT);
    assert_int_equal(pl_p2p_host_listen(b.h, "/ip4/127.0.0.1/tcp/0/tls/ws"), PL_ERR_P2P_TRANSPORT);
    assert_int_equal(pl_p2p_host_listen(b.h, "/dns4/localhost/tcp/0"), PL_ERR_P2P_MULTIADDR);
    snprintf(addr, sizeof addr, "/ip4/127.0.0.1/tcp/0/p2p/%s", b.id_text);
    assert_int_equal(pl_p2p_host_listen(b.h, addr), PL_ERR_P2P_MULTIADDR);
    assert_int_equal(pl_p2p_host_listen(b.h, "/ip4/127.0.0.1/udp/0"), PL_ERR_P2P_TRANSPORT);
    assert_int_equal(pl_p2p_host_listen(b.h, "127.0.0.1:0"), PL_ERR_P2P_MULTIADDR);
    assert_int_equal(pl_p2p_host_listen_addrs(b.h, &la), 0);

    /* IPv6 loopback, where the machine has it: listen, dial, and both
     * ends see /ip6/ addresses */
    size_t nl = 0;
    pl_err e6 = pl_p2p_host_listen(b.h, "/ip6/::1/tcp/0");
    if (e6 == PL_OK) {
        nl = pl_p2p_host_listen_addrs(b.h, &la);
        assert_int_equal(nl, 1);
        assert_true(strncmp(la[0], "/ip6/::1/tcp/", 13) == 0);
        snprintf(addr, sizeof addr, "%s/p2p/%s", la[0], b.id_text);
        pl_p2p_conn_id c = 0;
        assert_int_equal(pl_p2p_host_dial(a.h, addr, &c), PL_OK);
        wait_ev(&b, PL_P2P_EV_CONNECTED, 1);
        const rec *in = last_of(&b, PL_P2P_EV_CONNECTED);
        assert_true(in->inbound);
        assert_true(strncmp(in->remote, "/ip6/::1/tcp/", 13) == 0);
    } else {
        assert_int_equal(e6, PL_ERR_SYS);
        fprintf(stderr, "(no IPv6 loopback here: that part skipped)\n");
    }

    /* at most 8 listeners */
    while (nl < 8) {
        assert_int_equal(pl_p2p_host_listen(b.h, "/ip4/127.0.0.1/tcp/0"), PL_OK);
        nl++;
    }
    assert_int_equal(pl_p2p_host_listen(b.h, "/ip4/127.0.0.1/tcp/0"), PL_ERR_TOO_LARGE);
    assert_int_equal(pl_p2p_host_listen_addrs(b.h, &la), 8);
    for (size_t i = 0; i < 8; i++)
        assert_true(port_of_text(la[i]) > 0);

    /* protocol ids: identify and ping are the host's own, ids are bounded */
    assert_int_equal(pl_p2p_host_handle(b.h, "/ipfs/ping/1.0.0", pl_test_echo_cb, &b.echo),
                     PL_ERR_INVALID_ARG);
    assert_int_equal(pl_p2p_host_handle(b.h, "/ipfs/id/1.0.0", pl_test_echo_cb, &b.echo),
                     PL_ERR_INVALID_ARG);
    assert_int_equal(pl_p2p_host_handle(b.h, "", pl_test_echo_cb, &b.echo), PL_ERR_INVALID_ARG);
    assert_int_equal(pl_p2p_host_handle(b.h, "/a\n/b", pl_test_echo_cb, &b.echo),
                     PL_ERR_INVALID_ARG);
    char *longp = malloc(1100);
    memset(longp, 'p', 1099);
    longp[1099] = '\0';
    assert_int_equal(pl_p2p_host_handle(b.h, longp, pl_test_echo_cb, &b.echo), PL_ERR_INVALID_ARG);
    free(longp);
    assert_int_equal(pl_p2p_host_unhandle(b.h, P1), PL_ERR_NOT_FOUND);
    assert_int_equal(pl_p2p_host_unhandle(b.h, PL_TEST_ECHO_PROTOCOL), PL_OK);
    assert_int_equal(pl_p2p_host_unhandle(b.h, PL_TEST_ECHO_PROTOCOL), PL_ERR_NOT_FOUND);

    peer *ps[] = {&a, &b};
    finish(&loop, ps, 2);
}

/* ---- muxers -------------------------------------------------------------------------- */

static void test_muxer_choice(void **state) {
    (void)state;
    uv_loop_t loop;
    loop_start(&loop);
    peer y, m, any;
    pl_p2p_host_opts oy = {.muxers = PL_P2P_MUXERS_YAMUX};
    pl_p2p_host_opts om = {.muxers = PL_P2P_MUXERS_MPLEX};
    peer_new(&y, &loop, "y", &oy);
    peer_new(&m, &loop, "m", &om);
    peer_new(&any, &loop, "any", NULL);
    peer_listen(&m);
    peer_listen(&any);

    /* yamux only against mplex only: no muxer in common, both refuse */
    pl_p2p_conn_id c = 0;
    assert_int_equal(pl_p2p_host_dial(y.h, m.addr, &c), PL_OK);
    wait_ev(&y, PL_P2P_EV_DISCONNECTED, 1);
    wait_ev(&m, PL_P2P_EV_DISCONNECTED, 1);
    const rec *d = last_of(&y, PL_P2P_EV_DISCONNECTED);
    assert_int_equal(d->conn, c);
    assert_int_equal(d->err, PL_ERR_P2P_NEGOTIATION);
    assert_false(d->established);
    assert_false(last_of(&m, PL_P2P_EV_DISCONNECTED)->established);
    assert_int_equal(count_of(&y, PL_P2P_EV_CONNECTED), 0);
    assert_int_equal(count_of(&m, PL_P2P_EV_CONNECTED), 0);

    /* yamux only against the default: yamux, on both ends */
    assert_int_equal(pl_p2p_host_dial(y.h, any.addr, &c), PL_OK);
    wait_ev(&y, PL_P2P_EV_CONNECTED, 1);
    wait_ev(&any, PL_P2P_EV_CONNECTED, 1);
    assert_string_equal(last_of(&y, PL_P2P_EV_CONNECTED)->muxer, "/yamux/1.0.0");
    assert_string_equal(last_of(&any, PL_P2P_EV_CONNECTED)->muxer, "/yamux/1.0.0");

    peer *ps[] = {&y, &m, &any};
    finish(&loop, ps, 3);
}

/* ---- streams: reset, handlers that change, concurrent pings ----------------------------- */

typedef struct counter {
    int opened, closed;
    pl_err err;
    peer *owner;        /* the host whose handler this is */
    const char *remove; /* unhandled at OPENED */
} counter;

static void on_counted(void *ud, pl_p2p_host *h, const pl_p2p_stream_event *ev) {
    counter *k = ud;
    if (ev->kind == PL_P2P_STREAM_OPENED) {
        k->opened++;
        if (k->remove) assert_int_equal(pl_p2p_host_unhandle(h, k->remove), PL_OK);
    }
    if (ev->kind == PL_P2P_STREAM_CLOSED) {
        k->closed++;
        k->err = ev->err;
    }
    if (ev->kind == PL_P2P_STREAM_EOF) (void)pl_p2p_stream_close(h, ev->stream);
}

static bool counter_closed(void *arg) {
    return ((counter *)arg)->closed > 0;
}

static bool counter_opened(void *arg) {
    return ((counter *)arg)->opened > 0;
}

typedef struct echo_done {
    int n;
    pl_err err;
    size_t bytes;
} echo_done;

static void on_echo_done(void *ud, const pl_p2p_stream_event *ev, size_t bytes) {
    echo_done *d = ud;
    d->n++;
    d->err = ev->err;
    d->bytes = bytes;
}

static bool echo_finished(void *arg) {
    return ((echo_done *)arg)->n > 0;
}

static void test_streams(void **state) {
    (void)state;
    uv_loop_t loop;
    loop_start(&loop);
    peer a, b;
    peer_new(&a, &loop, "a", NULL);
    peer_new(&b, &loop, "b", NULL);
    peer_listen(&a);
    pl_p2p_conn_id c = 0;
    assert_int_equal(pl_p2p_host_dial(b.h, a.addr, &c), PL_OK);
    wait_ev(&b, PL_P2P_EV_IDENTIFIED, 1);

    /* calls with what is not there */
    const char *bad[] = {"/x\n"};
    const char *echo[] = {PL_TEST_ECHO_PROTOCOL};
    counter k0 = {0};
    pl_p2p_stream_id s = 5;
    assert_int_equal(pl_p2p_stream_open(b.h, c + 100, echo, 1, on_counted, &k0, &s),
                     PL_ERR_NOT_FOUND);
    assert_int_equal(pl_p2p_stream_open(b.h, c, echo, 0, on_counted, &k0, &s), PL_ERR_INVALID_ARG);
    assert_int_equal(pl_p2p_stream_open(b.h, c, bad, 1, on_counted, &k0, &s), PL_ERR_INVALID_ARG);
    assert_int_equal(s, 0);
    ping_res pr = {0};
    assert_int_equal(pl_p2p_ping(b.h, c + 100, on_ping, &pr), PL_ERR_NOT_FOUND);
    assert_int_equal(pl_p2p_stream_reset(b.h, (c << 32) | 77), PL_ERR_NOT_FOUND);
    assert_int_equal(pl_p2p_stream_send_space(b.h, (c << 32) | 77), 0);

    /* Reset: the id is gone at once, no CLOSED on our side; the peer's
     * handler hears the reset. */
    echo_done ed = {0};
    a.echo.on_done = on_echo_done;
    a.echo.done_ud = &ed;
    counter k1 = {0};
    assert_int_equal(pl_p2p_stream_open(b.h, c, echo, 1, on_counted, &k1, &s), PL_OK);
    assert_true(run_until(&loop, counter_opened, &k1, 10000));
    size_t taken = 0;
    assert_int_equal(pl_p2p_stream_write(b.h, s, (const uint8_t *)"hello", 5, &taken), PL_OK);
    assert_int_equal(pl_p2p_stream_reset(b.h, s), PL_OK);
    assert_int_equal(pl_p2p_stream_reset(b.h, s), PL_ERR_NOT_FOUND);
    assert_int_equal(pl_p2p_stream_write(b.h, s, (const uint8_t *)"x", 1, &taken),
                     PL_ERR_NOT_FOUND);
    assert_true(run_until(&loop, echo_finished, &ed, 10000));
    assert_int_equal(ed.err, PL_ERR_P2P_STREAM_RESET);
    assert_int_equal(k1.closed, 0);

    /* Registering a protocol again replaces its handler. */
    counter old = {0}, neu = {0};
    assert_int_equal(pl_p2p_host_handle(a.h, P1, on_counted, &old), PL_OK);
    assert_int_equal(pl_p2p_host_handle(a.h, P1, on_counted, &neu), PL_OK);
    counter k2 = {0};
    const char *p1[] = {P1};
    assert_int_equal(pl_p2p_stream_open(b.h, c, p1, 1, on_counted, &k2, &s), PL_OK);
    assert_true(run_until(&loop, counter_opened, &neu, 10000));
    assert_int_equal(old.opened, 0);
    assert_int_equal(pl_p2p_stream_close(b.h, s), PL_OK);
    assert_true(run_until(&loop, counter_closed, &k2, 10000));
    assert_int_equal(k2.err, PL_OK);

    /* A handler that unregisters another protocol while a stream for it
     * is on its way: that stream is refused (reset if it was already
     * negotiated, "na" if not), and the removed handler never runs. */
    counter h2 = {0};
    assert_int_equal(pl_p2p_host_handle(a.h, P2, on_counted, &h2), PL_OK);
    neu.remove = P2;
    counter k3 = {0}, k4 = {0};
    const char *p2[] = {P2};
    pl_p2p_stream_id s3, s4;
    assert_int_equal(pl_p2p_stream_open(b.h, c, p1, 1, on_counted, &k3, &s3), PL_OK);
    assert_int_equal(pl_p2p_stream_open(b.h, c, p2, 1, on_counted, &k4, &s4), PL_OK);
    assert_true(run_until(&loop, counter_closed, &k4, 10000));
    assert_true(k4.err == PL_ERR_P2P_STREAM_RESET || k4.err == PL_ERR_P2P_NEGOTIATION);
    assert_int_equal(k4.opened, 0);
    assert_int_equal(h2.opened, 0);
    assert_int_equal(neu.opened, 2);
    assert_true(k3.opened > 0 || run_until(&loop, counter_opened, &k3, 10000));

    /* Two pings at once on a live connection: both answered, once each. */
    ping_res q1 = {0}, q2 = {0};
    assert_int_equal(pl_p2p_ping(b.h, c, on_ping, &q1), PL_OK);
    assert_int_equal(pl_p2p_ping(b.h, c, on_ping, &q2), PL_OK);
    two_pings tp = {&q1, &q2};
    assert_true(run_until(&loop, pings_done, &tp, 10000));
    assert_true(run_until(&loop, NULL, NULL, 20));
    assert_int_equal(q1.n, 1);
    assert_int_equal(q2.n, 1);
    assert_int_equal(q1.err, PL_OK);
    assert_int_equal(q2.err, PL_OK);
    assert_true(q1.rtt > 0 && q2.rtt > 0);

    peer *ps[] = {&a, &b};
    finish(&loop, ps, 2);
}

/* ---- the stream limit ------------------------------------------------------------------ */

static void test_stream_limit(void **state) {
    (void)state;
    uv_loop_t loop;
    loop_start(&loop);
    peer a, b;
    pl_p2p_host_opts ob = {.max_streams = 1};
    peer_new(&a, &loop, "a", NULL);
    peer_new(&b, &loop, "b", &ob);
    peer_listen(&a);
    pl_p2p_conn_id c = 0;
    assert_int_equal(pl_p2p_host_dial(b.h, a.addr, &c), PL_OK);
    wait_ev(&b, PL_P2P_EV_IDENTIFIED, 1);
    wait_ev(&a, PL_P2P_EV_IDENTIFIED, 1);
    assert_true(run_until(&loop, NULL, NULL, 20)); /* identify's streams end */

    /* one stream open: no second one, and no ping either (it needs a
     * stream); neither call leaves anything behind */
    const char *echo[] = {PL_TEST_ECHO_PROTOCOL};
    counter k1 = {0}, k2 = {0};
    pl_p2p_stream_id s1 = 0, s2 = 9;
    assert_int_equal(pl_p2p_stream_open(b.h, c, echo, 1, on_counted, &k1, &s1), PL_OK);
    assert_true(run_until(&loop, counter_opened, &k1, 10000));
    assert_int_equal(pl_p2p_stream_open(b.h, c, echo, 1, on_counted, &k2, &s2),
                     PL_ERR_P2P_STREAM_LIMIT);
    assert_int_equal(s2, 0);
    ping_res pr = {0};
    assert_int_equal(pl_p2p_ping(b.h, c, on_ping, &pr), PL_ERR_P2P_STREAM_LIMIT);
    assert_true(run_until(&loop, NULL, NULL, 20));
    assert_int_equal(pr.n, 0);
    assert_int_equal(k2.opened + k2.closed, 0);

    /* once it ended, both work again */
    assert_int_equal(pl_p2p_stream_close(b.h, s1), PL_OK);
    assert_true(run_until(&loop, counter_closed, &k1, 10000));
    assert_int_equal(k1.err, PL_OK);
    assert_int_equal(pl_p2p_ping(b.h, c, on_ping, &pr), PL_OK);
    two_pings tp = {&pr, &pr};
    assert_true(run_until(&loop, pings_done, &tp, 10000));
    assert_int_equal(pr.n, 1);
    assert_int_equal(pr.err, PL_OK);
    peer *ps[] = {&a, &b};
    finish(&loop, ps, 2);
}

/* ---- a reader that takes its messages outside the callbacks --------------------------
 *
 * READABLE only says bytes wait; an application may take them later, from
 * outside any callback of the host (here: from the test, between runs of
 * the loop). What it takes must still open the sender's window. */

#define SINK "/pairlink/test/sink/1.0.0"
#define NMSG 40
#define MSG_BYTES (64u * 1024u)

typedef struct sink {
    pl_p2p_stream_id s;
    bool paused, eof, closed;
    pl_err err;
    int msgs;
    size_t bytes;
} sink;

static void sink_read(sink *k, pl_p2p_host *h) {
    for (;;) {
        const uint8_t *m;
        size_t len;
        assert_int_equal(pl_p2p_stream_read_msg(h, k->s, MSG_BYTES, &m, &len), PL_OK);
        if (!m) return;
        assert_int_equal(len, MSG_BYTES);
        assert_int_equal(m[0], (uint8_t)k->msgs);
        k->msgs++;
        k->bytes += len;
    }
}

static void on_sink(void *ud, pl_p2p_host *h, const pl_p2p_stream_event *ev) {
    sink *k = ud;
    if (ev->kind == PL_P2P_STREAM_OPENED) k->s = ev->stream;
    if (ev->kind == PL_P2P_STREAM_READABLE && !k->paused) sink_read(k, h);
    if (ev->kind == PL_P2P_STREAM_EOF) k->eof = true;
    if (ev->kind == PL_P2P_STREAM_CLOSED) {
        k->closed = true;
        k->err = ev->err;
    }
}

typedef struct source {
    pl_p2p_stream_id s;
    int sent, total; /* total 0: NMSG */
    bool close_after;
    uint8_t *buf;
} source;

static void source_send(source *o, pl_p2p_host *h) {
    int total = o->total ? o->total : NMSG;
    while (o->sent < total) {
        o->buf[0] = (uint8_t)o->sent;
        pl_err e = pl_p2p_stream_write_msg(h, o->s, o->buf, MSG_BYTES);
        if (e == PL_ERR_P2P_BACKPRESSURE) return; /* WRITABLE follows */
        assert_int_equal(e, PL_OK);
        o->sent++;
        if (o->sent == total && o->close_after)
            assert_int_equal(pl_p2p_stream_close(h, o->s), PL_OK);
    }
}

static void on_source(void *ud, pl_p2p_host *h, const pl_p2p_stream_event *ev) {
    source *o = ud;
    if (ev->kind == PL_P2P_STREAM_OPENED || ev->kind == PL_P2P_STREAM_WRITABLE) source_send(o, h);
}

typedef struct unread_at_least {
    pl_p2p_host *h;
    sink *k;
    size_t n;
} unread_at_least;

static bool unread_ge(void *arg) {
    unread_at_least *u = arg;
    const uint8_t *d;
    size_t n = 0;
    if (!u->k->s || pl_p2p_stream_peek(u->h, u->k->s, &d, &n) != PL_OK) return false;
    return n >= u->n;
}

typedef struct int_at_least {
    const int *v;
    int n;
} int_at_least;

static bool int_ge(void *arg) {
    int_at_least *w = arg;
    return *w->v >= w->n;
}

static void test_read_outside_callbacks(void **state) {
    (void)state;
    uv_loop_t loop;
    loop_start(&loop);
    peer a, b;
    peer_new(&a, &loop, "a", NULL);
    peer_new(&b, &loop, "b", NULL);
    sink k = {.paused = true};
    assert_int_equal(pl_p2p_host_handle(b.h, SINK, on_sink, &k), PL_OK);
    peer_listen(&b);
    pl_p2p_conn_id c = 0;
    assert_int_equal(pl_p2p_host_dial(a.h, b.addr, &c), PL_OK);
    wait_ev(&a, PL_P2P_EV_CONNECTED, 1);
    source o = {.buf = calloc(1, MSG_BYTES)};
    const char *sp[] = {SINK};
    assert_int_equal(pl_p2p_stream_open(a.h, c, sp, 1, on_source, &o, &o.s), PL_OK);

    /* b does not read: a fills b's window and stops */
    unread_at_least u = {b.h, &k, 200 * 1024};
    assert_true(run_until(&loop, unread_ge, &u, 10000));
    assert_true(run_until(&loop, NULL, NULL, 50));
    int sent = o.sent;
    assert_true(sent < NMSG);
    assert_true(run_until(&loop, NULL, NULL, 50));
    assert_int_equal(o.sent, sent);

    /* b takes what waits, outside any callback, then reads as it comes:
     * all of it arrives */
    sink_read(&k, b.h);
    assert_true(k.msgs > 0);
    k.paused = false;
    int_at_least all_in = {&k.msgs, NMSG};
    assert_true(run_until(&loop, int_ge, &all_in, 10000));
    assert_int_equal(k.bytes, (size_t)NMSG * MSG_BYTES);
    assert_int_equal(o.sent, NMSG);

    /* A last message taken outside, after the peer and we closed: its
     * bytes are consumed at the return to the loop at the latest, and
     * then the stream is done (CLOSED, PL_OK) without another call. */
    sink k2 = {.paused = true};
    assert_int_equal(pl_p2p_host_handle(b.h, SINK "/2", on_sink, &k2), PL_OK);
    source o2 = {.buf = o.buf, .total = 1, .close_after = true};
    const char *sp2[] = {SINK "/2"};
    assert_int_equal(pl_p2p_stream_open(a.h, c, sp2, 1, on_source, &o2, &o2.s), PL_OK);
    assert_true(run_until(&loop, is_true, &k2.eof, 10000));
    assert_int_equal(pl_p2p_stream_close(b.h, k2.s), PL_OK);
    const uint8_t *m;
    size_t len;
    assert_int_equal(pl_p2p_stream_read_msg(b.h, k2.s, MSG_BYTES, &m, &len), PL_OK);
    assert_non_null(m);
    assert_int_equal(len, MSG_BYTES);
    assert_false(k2.closed);
    assert_true(run_until(&loop, is_true, &k2.closed, 10000));
    assert_int_equal(k2.err, PL_OK);
    free(o.buf);
    peer *ps[] = {&a, &b};
    finish(&loop, ps, 2);
}

/* ---- no descriptor left ------------------------------------------------------------------- */

static void test_dial_without_descriptors(void **state) {
    (void)state;
    uv_loop_t loop;
    loop_start(&loop);
    peer b;
    peer_new(&b, &loop, "b", NULL);
    struct rlimit old;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    int lowest = dup(0); /* the next descriptor the process would get */
    assert_true(lowest >= 0);
    close(lowest);
    struct rlimit tight = {(rlim_t)lowest, old.rlim_max};
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &tight), 0);
    int probe = socket(AF_INET, SOCK_STREAM, 0);
    if (probe >= 0) {
        /* the limit is not enforced here (e.g. under valgrind) */
        close(probe);
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
        fprintf(stderr, "(descriptor limit not enforced here: skipped)\n");
    } else {
        /* The dial fails in the call: the error and its libuv code, no
         * id, no event, nothing left. */
        pl_p2p_conn_id c = 7;
        pl_err e = pl_p2p_host_dial(b.h, "/ip4/127.0.0.1/tcp/9", &c);
        long detail = pl_last_detail();
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
        assert_int_equal(e, PL_ERR_SYS);
        assert_int_equal(detail, UV_EMFILE);
        assert_int_equal(c, 0);
        assert_int_equal(pl_p2p_host_conns(b.h, NULL, 0), 0);
        assert_true(run_until(&loop, NULL, NULL, 20));
        assert_int_equal(b.n, 0);
    }
    peer *ps[] = {&b};
    finish(&loop, ps, 1);
}

int main(void) {
    verbose = getenv("PL_TEST_VERBOSE") != NULL;
    signal(SIGPIPE, SIG_IGN); /* reset peers: write errors, not signals */
    assert_int_equal(pl_init(), PL_OK);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dial_timeout_and_cancel),
        cmocka_unit_test(test_close_while_resolving),
        cmocka_unit_test(test_dns_dials),
        cmocka_unit_test(test_silent_peer_timeouts),
        cmocka_unit_test(test_peer_reset),
        cmocka_unit_test(test_listen_errors),
        cmocka_unit_test(test_muxer_choice),
        cmocka_unit_test(test_streams),
        cmocka_unit_test(test_stream_limit),
        cmocka_unit_test(test_read_outside_callbacks),
        cmocka_unit_test(test_dial_without_descriptors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
