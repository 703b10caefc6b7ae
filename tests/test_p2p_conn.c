/* SPDX-License-Identifier: Apache-2.0 */
/* The connection core without sockets: two cores wired back to back, and a
 * scripted peer built from the layer primitives that sends crafted bytes at
 * each stage. Time is explicit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "p2p/conn.h"
#include "p2p/mss.h"
#include "pairlink/codec.h"
#include "pairlink/hash.h"
#include "support/support.h"

static uint64_t rng;

static int setup(void **state) {
    (void)state;
    assert_int_equal(pl_init(), PL_OK);
    rng = pl_test_seed();
    return 0;
}

/* ---- a registry ---- */

static const char *served[] = {"/pairlink/test/echo/1.0.0", "/vac/waku/relay/2.0.0"};

static bool reg_supports(void *ud, const char *p, size_t n) {
    (void)ud;
    for (size_t i = 0; i < PL_ARRAY_LEN(served); i++)
        if (strlen(served[i]) == n && !memcmp(served[i], p, n)) return true;
    return false;
}

static size_t reg_list(void *ud, const char *const **protos) {
    (void)ud;
    *protos = served;
    return PL_ARRAY_LEN(served);
}

static const pl__conn_registry registry = {reg_supports, reg_list, NULL};

/* ---- a node: key, identity, core, and the events it saw ---- */

#define MAX_EV 4096

typedef struct node {
    pl_p2p_key *key;
    pl__nxx_identity id;
    pl__conn *c;
    pl__ma listen;
    pl__conn_event ev[MAX_EV];
    char proto[MAX_EV][64];
    size_t nev;
} node;

static void node_init(node *n, pl_p2p_key_type t) {
    memset(n, 0, sizeof *n);
    assert_int_equal(pl_p2p_key_generate(&n->key, t), PL_OK);
    assert_int_equal(pl__nxx_identity_init(&n->id, n->key, NULL), PL_OK);
    assert_int_equal(pl__ma_parse(&n->listen, "/ip4/127.0.0.1/tcp/4001", 23), PL_OK);
}

static void node_start(node *n, bool initiator, const pl_p2p_peer_id *expect, pl__mux_kind m1,
                       pl__mux_kind m2, int64_t now) {
    pl__conn_config cfg = {
        .initiator = initiator,
        .identity = &n->id,
        .key = n->key,
        .muxers = {m1, m2},
        .registry = &registry,
        .listen_addrs = &n->listen,
        .nlisten_addrs = 1,
    };
    if (expect) cfg.expected_peer = *expect;
    assert_int_equal(pl__ma_parse(&cfg.observed, "/ip4/10.1.2.3/tcp/55555", 23), PL_OK);
    assert_int_equal(pl__conn_new(&n->c, &cfg, now), PL_OK);
}

static void node_free(node *n) {
    pl__conn_free(n->c);
    pl__nxx_identity_clear(&n->id);
    pl_p2p_key_free(n->key);
}

static void collect(node *n) {
    pl__conn_event e;
    while (pl__conn_poll(n->c, &e)) {
        assert_true(n->nev < MAX_EV);
        n->ev[n->nev] = e;
        snprintf(n->proto[n->nev], 64, "%s", e.protocol ? e.protocol : "");
        n->nev++;
    }
}

static bool has_event(const node *n, pl__conn_event_kind k, pl_err err) {
    for (size_t i = 0; i < n->nev; i++)
        if (n->ev[i].kind == k && n->ev[i].err == err) return true;
    return false;
}

static const pl__conn_event *find_event(const node *n, pl__conn_event_kind k, size_t from) {
    for (size_t i = from; i < n->nev; i++)
        if (n->ev[i].kind == k) return &n->ev[i];
    return NULL;
}

/* Move bytes both ways until nothing moves. `chunk` > 0 splits every
 * delivery into pieces of that size. */
static size_t wire(node *a, node *b, int64_t now, size_t chunk) {
    size_t moved = 0;
    for (int round = 0; round < 10000; round++) {
        bool any = false;
        node *pair[2][2] = {{a, b}, {b, a}};
        for (int d = 0; d < 2; d++) {
            node *from = pair[d][0], *to = pair[d][1];
            const uint8_t *p;
            size_t n = pl__conn_output(from->c, &p);
            if (!n) continue;
            uint8_t *copy = malloc(n);
            memcpy(copy, p, n);
            pl__conn_output_done(from->c, n, now);
            size_t step = chunk ? chunk : n;
            for (size_t off = 0; off < n && !pl__conn_is_closed(to->c); off += step)
                (void)pl__conn_recv(to->c, copy + off, n - off < step ? n - off : step, now);
            free(copy);
            moved += n;
            any = true;
        }
        collect(a);
        collect(b);
        if (!any) return moved;
    }
    fail_msg("wire: no quiescence");
    return moved;
}

static void connect_pair(node *a, node *b, pl__mux_kind am1, pl__mux_kind am2, pl__mux_kind bm1,
                         pl__mux_kind bm2, size_t chunk) {
    node_start(a, true, &b->id.peer, am1, am2, 0);
    node_start(b, false, NULL, bm1, bm2, 0);
    wire(a, b, 0, chunk);
}

static void check_identified(const node *n, const node *other) {
    assert_true(has_event(n, PL__CONN_EV_SECURED, PL_OK));
    assert_true(has_event(n, PL__CONN_EV_READY, PL_OK));
    assert_true(has_event(n, PL__CONN_EV_IDENTIFIED, PL_OK));
    assert_true(pl_p2p_peer_id_equal(pl__conn_remote_peer(n->c), &other->id.peer));
    const pl_p2p_identify *id = pl__conn_identify(n->c);
    assert_non_null(id);
    assert_string_equal(id->agent_version, "pairlink/" PL_VERSION_STRING);
    assert_string_equal(id->protocol_version, "ipfs/0.1.0");
    assert_int_equal(id->nprotocols, 4);
    assert_string_equal(id->protocols[0], "/ipfs/id/1.0.0");
    assert_string_equal(id->protocols[1], "/ipfs/ping/1.0.0");
    assert_string_equal(id->protocols[2], "/pairlink/test/echo/1.0.0");
    assert_string_equal(id->protocols[3], "/vac/waku/relay/2.0.0");
    assert_int_equal(id->nlisten_addrs, 1);
    assert_string_equal(id->listen_addrs[0], "/ip4/127.0.0.1/tcp/4001");
    assert_string_equal(id->observed_addr, "/ip4/10.1.2.3/tcp/55555");
    /* identify's streams are finished and gone */
    assert_int_equal(pl__conn_stream_count(n->c), 0);
}

static void test_handshake_yamux(void **state) {
    (void)state;
    node a, b;
    node_init(&a, PL_P2P_KEY_ED25519);
    node_init(&b, PL_P2P_KEY_SECP256K1);
    connect_pair(&a, &b, PL__MUX_YAMUX, PL__MUX_MPLEX, PL__MUX_YAMUX, PL__MUX_MPLEX, 0);
    assert_int_equal(pl__conn_muxer(a.c), PL__MUX_YAMUX);
    assert_int_equal(pl__conn_muxer(b.c), PL__MUX_YAMUX);
    check_identified(&a, &b);
    check_identified(&b, &a);
    node_free(&a);
    node_free(&b);
}

static void test_handshake_mplex_and_splits(void **state) {
    (void)state;
    /* The listener takes only mplex: the dialer's yamux is refused (na). */
    for (size_t chunk = 0; chunk <= 7; chunk += 7) {
        node a, b;
        node_init(&a, PL_P2P_KEY_SECP256K1);
        node_init(&b, PL_P2P_KEY_ED25519);
        connect_pair(&a, &b, PL__MUX_YAMUX, PL__MUX_MPLEX, PL__MUX_MPLEX, 0, chunk ? 1 : 0);
        assert_int_equal(pl__conn_muxer(a.c), PL__MUX_MPLEX);
        check_identified(&a, &b);
        check_identified(&b, &a);
        node_free(&a);
        node_free(&b);
    }
    /* No muxer in common. */
    node a, b;
    node_init(&a, PL_P2P_KEY_ED25519);
    node_init(&b, PL_P2P_KEY_ED25519);
    connect_pair(&a, &b, PL__MUX_MPLEX, 0, PL__MUX_YAMUX, 0, 0);
    assert_true(has_event(&a, PL__CONN_EV_CLOSED, PL_ERR_P2P_NEGOTIATION));
    assert_false(has_event(&a, PL__CONN_EV_READY, PL_OK));
    node_free(&a);
    node_free(&b);
}

/* Echo: b's side reads what arrives and writes it back; each side reads
 * with consume in odd-sized bites so that buffers wrap. */
static void echo_pump(node *n, uint32_t h, bool *eof_seen, int64_t now) {
    const uint8_t *p;
    size_t k = pl__conn_stream_peek(n->c, h, &p);
    while (k > 0) {
        size_t take = 0;
        assert_int_equal(pl__conn_stream_write(n->c, h, p, k > 3000 ? 3000 : k, &take), PL_OK);
        if (take == 0) break;
        pl__conn_stream_consume(n->c, h, take, now);
        k = pl__conn_stream_peek(n->c, h, &p);
    }
    if (*eof_seen && k == 0) pl__conn_stream_close(n->c, h, now);
}

static void run_echo(pl__mux_kind mux, size_t total) {
    node a, b;
    node_init(&a, PL_P2P_KEY_ED25519);
    node_init(&b, PL_P2P_KEY_ED25519);
    connect_pair(&a, &b, mux, 0, PL__MUX_YAMUX, PL__MUX_MPLEX, 0);
    const char *protos[] = {"/other/1.0.0", "/pairlink/test/echo/1.0.0"};
    uint32_t ha = 0;
    assert_int_equal(pl__conn_stream_open(a.c, protos, 2, 0, &ha), PL_OK);
    uint8_t *src = malloc(total), *got = malloc(total);
    pl_test_rand_bytes(&rng, src, total);
    size_t sent = 0, recvd = 0;
    bool a_closed = false, b_eof = false, a_closed_ev = false;
    uint32_t hb = 0;
    size_t max_unread = 0;
    size_t a_from = 0, b_from = 0;
    for (int it = 0; it < 100000 && !a_closed_ev; it++) {
        if (sent < total) {
            size_t take = 0;
            pl_err e = pl__conn_stream_write(a.c, ha, src + sent, total - sent, &take);
            assert_int_equal(e, PL_OK);
            sent += take;
        } else if (!a_closed) {
            assert_int_equal(pl__conn_stream_close(a.c, ha, 0), PL_OK);
            a_closed = true;
        }
        wire(&a, &b, 0, 0);
        for (; b_from < b.nev; b_from++) {
            const pl__conn_event *e = &b.ev[b_from];
            if (e->kind == PL__CONN_EV_STREAM_OPENED) {
                assert_true(e->inbound);
                assert_string_equal(b.proto[b_from], "/pairlink/test/echo/1.0.0");
                hb = e->stream;
            }
            if (e->kind == PL__CONN_EV_STREAM_EOF) b_eof = true;
        }
        if (hb) {
            const uint8_t *p;
            size_t u = pl__conn_stream_peek(b.c, hb, &p);
            if (u > max_unread) max_unread = u;
            echo_pump(&b, hb, &b_eof, 0);
        }
        for (; a_from < a.nev; a_from++) {
            const pl__conn_event *e = &a.ev[a_from];
            if (e->kind == PL__CONN_EV_STREAM_OPENED) {
                assert_false(e->inbound);
                assert_string_equal(a.proto[a_from], "/pairlink/test/echo/1.0.0");
            }
            if (e->kind == PL__CONN_EV_STREAM_CLOSED && e->stream == ha) {
                assert_int_equal(e->err, PL_OK);
                a_closed_ev = true;
            }
        }
        const uint8_t *p;
        size_t k;
        while ((k = pl__conn_stream_peek(a.c, ha, &p)) > 0) {
            assert_true(recvd + k <= total);
            memcpy(got + recvd, p, k);
            recvd += k;
            pl__conn_stream_consume(a.c, ha, k, 0);
        }
    }
    assert_true(a_closed_ev);
    assert_int_equal(recvd, total);
    assert_memory_equal(got, src, total);
    /* Flow control held b's buffer under its cap. */
    assert_true(max_unread <= PL__CONN_DEF_STREAM_RECV);
    wire(&a, &b, 0, 0);
    assert_true(has_event(&b, PL__CONN_EV_STREAM_CLOSED, PL_OK));
    assert_int_equal(pl__conn_stream_count(a.c), 0);
    assert_int_equal(pl__conn_stream_count(b.c), 0);
    free(src);
    free(got);
    node_free(&a);
    node_free(&b);
}

static void test_echo_1mib_yamux(void **state) {
    (void)state;
    run_echo(PL__MUX_YAMUX, 1u << 20);
}

static void test_echo_1mib_mplex(void **state) {
    (void)state;
    run_echo(PL__MUX_MPLEX, 1u << 20);
}

static void test_ping_responder(void **state) {
    (void)state;
    node a, b;
    node_init(&a, PL_P2P_KEY_ED25519);
    node_init(&b, PL_P2P_KEY_ED25519);
    connect_pair(&a, &b, PL__MUX_YAMUX, 0, PL__MUX_YAMUX, 0, 0);
    const char *protos[] = {"/ipfs/ping/1.0.0"};
    uint32_t h = 0;
    assert_int_equal(pl__conn_stream_open(a.c, protos, 1, 0, &h), PL_OK);
    uint8_t ping[32];
    pl_test_rand_bytes(&rng, ping, sizeof ping);
    size_t take = 0;
    assert_int_equal(pl__conn_stream_write(a.c, h, ping, 32, &take), PL_OK);
    assert_int_equal(take, 32);
    wire(&a, &b, 0, 0);
    const uint8_t *p;
    assert_int_equal(pl__conn_stream_peek(a.c, h, &p), 32);
    assert_memory_equal(p, ping, 32);
    /* The ping stream is not the application's business on b. */
    assert_null(find_event(&b, PL__CONN_EV_STREAM_OPENED, 0));
    pl__conn_stream_consume(a.c, h, 32, 0);
    pl__conn_stream_close(a.c, h, 0);
    wire(&a, &b, 0, 0);
    assert_true(has_event(&a, PL__CONN_EV_STREAM_CLOSED, PL_OK));
    assert_int_equal(pl__conn_stream_count(b.c), 0);
    node_free(&a);
    node_free(&b);
}

static void test_stream_refused_and_timeouts(void **state) {
    (void)state;
    node a, b;
    node_init(&a, PL_P2P_KEY_ED25519);
    node_init(&b, PL_P2P_KEY_ED25519);
    connect_pair(&a, &b, PL__MUX_YAMUX, 0, PL__MUX_YAMUX, 0, 0);
    const char *protos[] = {"/nobody/1.0.0", "/nobody/2.0.0"};
    uint32_t h = 0;
    assert_int_equal(pl__conn_stream_open(a.c, protos, 2, 0, &h), PL_OK);
    wire(&a, &b, 0, 0);
    const pl__conn_event *e = find_event(&a, PL__CONN_EV_STREAM_CLOSED, 0);
    assert_non_null(e);
    assert_int_equal(e->stream, h);
    assert_int_equal(e->err, PL_ERR_P2P_NEGOTIATION);
    /* Bad arguments. */
    const char *bad[] = {"no\nnewline"};
    assert_int_equal(pl__conn_stream_open(a.c, bad, 1, 0, &h), PL_ERR_INVALID_ARG);
    assert_int_equal(pl__conn_stream_open(a.c, protos, 0, 0, &h), PL_ERR_INVALID_ARG);
    size_t taken = 9;
    assert_int_equal(pl__conn_stream_write(a.c, 999, (const uint8_t *)"x", 1, &taken), PL_ERR_NOT_FOUND);
    assert_int_equal(taken, 0);

    /* A stream whose answer never comes times out; the connection lives. */
    const char *echo[] = {"/pairlink/test/echo/1.0.0"};
    assert_int_equal(pl__conn_stream_open(a.c, echo, 1, 1000, &h), PL_OK);
    const uint8_t *p;
    size_t n = pl__conn_output(a.c, &p);
    pl__conn_output_done(a.c, n, 1000); /* lost on the way */
    assert_int_equal(pl__conn_next_deadline(a.c), 1000 + PL__CONN_DEF_NEGOTIATION_MS);
    pl__conn_on_timer(a.c, 1000 + PL__CONN_DEF_NEGOTIATION_MS - 1);
    collect(&a);
    assert_false(has_event(&a, PL__CONN_EV_STREAM_CLOSED, PL_ERR_TIMEOUT));
    pl__conn_on_timer(a.c, 1000 + PL__CONN_DEF_NEGOTIATION_MS);
    collect(&a);
    assert_true(has_event(&a, PL__CONN_EV_STREAM_CLOSED, PL_ERR_TIMEOUT));
    assert_false(pl__conn_is_closed(a.c));
    node_free(&a);
    node_free(&b);

    /* The handshake itself has a deadline. */
    node_init(&a, PL_P2P_KEY_ED25519);
    node_start(&a, false, NULL, PL__MUX_YAMUX, 0, 500);
    assert_int_equal(pl__conn_next_deadline(a.c), 500 + PL__CONN_DEF_HANDSHAKE_MS);
    pl__conn_on_timer(a.c, 500 + PL__CONN_DEF_HANDSHAKE_MS);
    collect(&a);
    assert_true(has_event(&a, PL__CONN_EV_CLOSED, PL_ERR_TIMEOUT));
    node_free(&a);
}

static void test_identify_timeout(void **state) {
    (void)state;
    node a, b;
    node_init(&a, PL_P2P_KEY_ED25519);
    node_init(&b, PL_P2P_KEY_ED25519);
    node_start(&a, true, NULL, PL__MUX_YAMUX, 0, 0);
    node_start(&b, false, NULL, PL__MUX_YAMUX, 0, 0);
    /* Run the handshake, then stop delivering b's output. */
    for (int i = 0; i < 20 && !has_event(&a, PL__CONN_EV_READY, PL_OK); i++) {
        const uint8_t *p;
        size_t n = pl__conn_output(a.c, &p);
        if (n) {
            uint8_t *copy = malloc(n);
            memcpy(copy, p, n);
            pl__conn_output_done(a.c, n, 0);
            pl__conn_recv(b.c, copy, n, 0);
            free(copy);
        }
        n = pl__conn_output(b.c, &p);
        if (n && !has_event(&a, PL__CONN_EV_READY, PL_OK)) {
            uint8_t *copy = malloc(n);
            memcpy(copy, p, n);
            pl__conn_output_done(b.c, n, 0);
            pl__conn_recv(a.c, copy, n, 0);
            free(copy);
        }
        collect(&a);
    }
    assert_true(has_event(&a, PL__CONN_EV_READY, PL_OK));
    pl__conn_on_timer(a.c, PL__CONN_DEF_IDENTIFY_MS);
    collect(&a);
    assert_true(has_event(&a, PL__CONN_EV_IDENTIFIED, PL_ERR_TIMEOUT));
    assert_null(pl__conn_identify(a.c));
    assert_false(pl__conn_is_closed(a.c));
    node_free(&a);
    node_free(&b);
}

static void test_close_goes_away(void **state) {
    (void)state;
    node a, b;
    node_init(&a, PL_P2P_KEY_ED25519);
    node_init(&b, PL_P2P_KEY_ED25519);
    connect_pair(&a, &b, PL__MUX_YAMUX, 0, PL__MUX_YAMUX, 0, 0);
    const char *echo[] = {"/pairlink/test/echo/1.0.0"};
    uint32_t h = 0;
    assert_int_equal(pl__conn_stream_open(a.c, echo, 1, 0, &h), PL_OK);
    wire(&a, &b, 0, 0);
    size_t from = a.nev;
    pl__conn_close(a.c, PL_ERR_CANCELLED, 0);
    collect(&a);
    const pl__conn_event *sc = find_event(&a, PL__CONN_EV_STREAM_CLOSED, from);
    assert_non_null(sc);
    assert_int_equal(sc->err, PL_ERR_CLOSED);
    assert_true(has_event(&a, PL__CONN_EV_CLOSED, PL_ERR_CANCELLED));
    assert_int_equal(pl__conn_error(a.c), PL_ERR_CANCELLED);
    /* The GO_AWAY is in the output; b learns that no new streams come. */
    const uint8_t *p;
    size_t n = pl__conn_output(a.c, &p);
    assert_true(n > 0);
    assert_int_equal(pl__conn_recv(b.c, p, n, 0), PL_OK);
    collect(&b);
    assert_int_equal(pl__conn_stream_open(b.c, echo, 1, 0, &h), PL_ERR_P2P_GOAWAY);
    /* The socket ends: b's connection is over. */
    pl__conn_recv_eof(b.c, 0);
    collect(&b);
    assert_true(has_event(&b, PL__CONN_EV_CLOSED, PL_ERR_CLOSED));
    node_free(&a);
    node_free(&b);
}

/* ---- a scripted peer: the stack by hand, for crafted bytes ---- */

typedef struct script {
    bool initiator;
    pl_p2p_key *key;
    pl__nxx_identity id;
    int phase; /* 0 mss /noise, 1 noise, 2 mss muxer, 3 transport */
    pl__mss *mss;
    pl__nxx *nxx;
    pl__nxx_framer fr;
    const char *muxer;
    uint8_t *out;
    size_t out_len;
    pl_err err;
} script;

static const char *const sp_sec[] = {"/noise"};
static const char *sp_mux[1];

static bool sp_supports(void *ud, const char *p, size_t n) {
    const char *want = ud;
    return strlen(want) == n && !memcmp(want, p, n);
}

static void sp_out(script *s, const uint8_t *d, size_t n) {
    s->out = realloc(s->out, s->out_len + n);
    memcpy(s->out + s->out_len, d, n);
    s->out_len += n;
}

static void sp_mss_out(script *s) {
    const uint8_t *d;
    size_t n = pl__mss_output(s->mss, &d);
    if (s->phase == 0) {
        sp_out(s, d, n);
    } else {
        uint8_t *f = malloc(n + 18);
        assert_int_equal(pl__nxx_encrypt(s->nxx, d, n, f), PL_OK);
        sp_out(s, f, n + 18);
        free(f);
    }
    pl__mss_output_done(s->mss, n);
}

static void sp_init(script *s, bool initiator, pl_p2p_key_type t, const char *muxer) {
    memset(s, 0, sizeof *s);
    s->initiator = initiator;
    s->muxer = muxer;
    assert_int_equal(pl_p2p_key_generate(&s->key, t), PL_OK);
    assert_int_equal(pl__nxx_identity_init(&s->id, s->key, NULL), PL_OK);
    if (initiator) assert_int_equal(pl__mss_new_dialer(&s->mss, sp_sec, 1, 0, 1000), PL_OK);
    else assert_int_equal(pl__mss_new_listener(&s->mss, sp_supports, (void *)"/noise", 0, 1000), PL_OK);
    sp_mss_out(s);
}

static void sp_free(script *s) {
    pl__mss_free(s->mss);
    pl__nxx_free(s->nxx);
    pl__nxx_framer_free(&s->fr);
    pl__nxx_identity_clear(&s->id);
    pl_p2p_key_free(s->key);
    free(s->out);
}

/* Encrypted bytes to the core (transport phase). */
static void sp_send(script *s, const uint8_t *d, size_t n) {
    while (n) {
        size_t k = n > PL__NXX_MAX_PLAIN ? PL__NXX_MAX_PLAIN : n;
        uint8_t *f = malloc(k + 18);
        assert_int_equal(pl__nxx_encrypt(s->nxx, d, k, f), PL_OK);
        sp_out(s, f, k + 18);
        free(f);
        d += k;
        n -= k;
    }
}

static void sp_noise_write(script *s) {
    uint8_t buf[2048];
    size_t len = 0;
    assert_int_equal(pl__nxx_write(s->nxx, buf, sizeof buf, &len), PL_OK);
    sp_out(s, buf, len);
}

static void sp_after_noise(script *s) {
    if (pl__nxx_action_of(s->nxx) != PL__NXX_DONE) return;
    s->phase = 2;
    sp_mux[0] = s->muxer;
    if (s->initiator) assert_int_equal(pl__mss_new_dialer(&s->mss, sp_mux, 1, 0, 1000), PL_OK);
    else assert_int_equal(pl__mss_new_listener(&s->mss, sp_supports, (void *)s->muxer, 0, 1000), PL_OK);
    sp_mss_out(s);
}

/* Bytes from the core. */
static void sp_recv(script *s, const uint8_t *d, size_t n) {
    while (n && s->err == PL_OK) {
        size_t used = 0;
        if (s->phase == 0) {
            s->err = pl__mss_recv(s->mss, d, n, &used);
            sp_mss_out(s);
            if (pl__mss_state_of(s->mss) == PL__MSS_DONE) {
                pl__mss_free(s->mss);
                s->mss = NULL;
                s->phase = 1;
                assert_int_equal(pl__nxx_new(&s->nxx, s->initiator, &s->id, NULL, NULL), PL_OK);
                if (s->initiator) sp_noise_write(s);
            }
            d += used, n -= used;
            continue;
        }
        const uint8_t *f;
        size_t fl;
        s->err = pl__nxx_framer_feed(&s->fr, d, n, &used, &f, &fl);
        d += used, n -= used;
        if (!f) continue;
        if (s->phase == 1) {
            s->err = pl__nxx_read(s->nxx, f, fl);
            if (s->err == PL_OK && pl__nxx_action_of(s->nxx) == PL__NXX_WRITE) sp_noise_write(s);
            if (s->err == PL_OK) sp_after_noise(s);
            continue;
        }
        uint8_t plain[PL__NXX_MAX_FRAME];
        size_t pl = 0;
        s->err = pl__nxx_decrypt(s->nxx, f, fl, plain, &pl);
        if (s->err == PL_OK && s->phase == 2) {
            size_t u = 0;
            s->err = pl__mss_recv(s->mss, plain, pl, &u);
            sp_mss_out(s);
            if (pl__mss_state_of(s->mss) == PL__MSS_DONE) s->phase = 3;
        }
        /* Transport bytes (the core's yamux frames) are not looked at. */
    }
}

/* Wire a core node and a scripted peer. */
static void sp_wire(node *n, script *s, int64_t now) {
    for (int i = 0; i < 100; i++) {
        bool any = false;
        const uint8_t *p;
        size_t k = pl__conn_output(n->c, &p);
        if (k) {
            uint8_t *copy = malloc(k);
            memcpy(copy, p, k);
            pl__conn_output_done(n->c, k, now);
            sp_recv(s, copy, k);
            free(copy);
            any = true;
        }
        if (s->out_len && !pl__conn_is_closed(n->c)) {
            uint8_t *copy = s->out;
            size_t len = s->out_len;
            s->out = NULL;
            s->out_len = 0;
            (void)pl__conn_recv(n->c, copy, len, now);
            free(copy);
            any = true;
        }
        collect(n);
        if (!any) return;
    }
}

static pl_err closed_with(const node *n) {
    const pl__conn_event *e = find_event(n, PL__CONN_EV_CLOSED, 0);
    return e ? e->err : PL_OK;
}

/* Raw garbage before anything. */
static void test_bad_multistream(void **state) {
    (void)state;
    static const struct {
        const char *bytes;
        size_t len;
        pl_err want;
    } cases[] = {
        {"GET / HTTP/1.1\r\nHost: x\r\nAccept: */*\r\nUser-Agent: curl/7.88.1\r\nConnection: close\r\n\r\n",
         84, PL_ERR_P2P_MULTISTREAM},
        {"\x13/multistream/9.9.9\n", 20, PL_ERR_P2P_MULTISTREAM},
        {"\x13/multistream/1.0.0\n\x07/tls/1\n", 28, PL_OK}, /* na: dialer may try more */
        {"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 11, PL_ERR_P2P_MULTISTREAM},
    };
    for (size_t i = 0; i < PL_ARRAY_LEN(cases); i++) {
        node a;
        node_init(&a, PL_P2P_KEY_ED25519);
        node_start(&a, false, NULL, PL__MUX_YAMUX, 0, 0);
        pl_err e = pl__conn_recv(a.c, (const uint8_t *)cases[i].bytes, cases[i].len, 0);
        collect(&a);
        assert_int_equal(e, cases[i].want);
        assert_int_equal(closed_with(&a), cases[i].want);
        node_free(&a);
    }
}

static void test_bad_noise_frames(void **state) {
    (void)state;
    /* A listener gets /noise, then bad frames. */
    static const uint8_t hello[] = "\x13/multistream/1.0.0\n\x07/noise\n";
    static const struct {
        const char *frame;
        size_t len;
        pl_err want;
    } cases[] = {
        {"\x00\x00", 2, PL_ERR_P2P_FRAME},                /* empty frame */
        {"\x00\x05hello", 7, PL_ERR_P2P_FRAME},          /* too short for e */
    };
    for (size_t i = 0; i < PL_ARRAY_LEN(cases); i++) {
        node a;
        node_init(&a, PL_P2P_KEY_ED25519);
        node_start(&a, false, NULL, PL__MUX_YAMUX, 0, 0);
        assert_int_equal(pl__conn_recv(a.c, hello, sizeof hello - 1, 0), PL_OK);
        pl_err e = pl__conn_recv(a.c, (const uint8_t *)cases[i].frame, cases[i].len, 0);
        collect(&a);
        assert_int_equal(e, cases[i].want);
        assert_int_equal(closed_with(&a), cases[i].want);
        node_free(&a);
    }

    /* A dialer receives message 2 with a flipped bit. */
    node a;
    script s;
    node_init(&a, PL_P2P_KEY_ED25519);
    sp_init(&s, false, PL_P2P_KEY_ED25519, "/yamux/1.0.0");
    node_start(&a, true, NULL, PL__MUX_YAMUX, 0, 0);
    /* multistream both ways, then message 1 to the scripted peer, which
     * answers with message 2. */
    for (int i = 0; i < 3; i++) {
        const uint8_t *p;
        size_t n = pl__conn_output(a.c, &p);
        sp_recv(&s, p, n);
        pl__conn_output_done(a.c, n, 0);
        if (s.phase == 1 && s.out_len > 100) break;
        assert_int_equal(pl__conn_recv(a.c, s.out, s.out_len, 0), PL_OK);
        s.out_len = 0;
    }
    assert_true(s.out_len > 100);
    s.out[s.out_len - 3] ^= 0x10;
    assert_int_equal(pl__conn_recv(a.c, s.out, s.out_len, 0), PL_ERR_DECRYPT);
    collect(&a);
    assert_int_equal(closed_with(&a), PL_ERR_DECRYPT);
    node_free(&a);
    sp_free(&s);
}

/* The scripted responder's payload is replaced. */
static pl_err with_payload(const uint8_t *pl, size_t n, const pl_p2p_peer_id *expect) {
    node a;
    script s;
    node_init(&a, PL_P2P_KEY_ED25519);
    sp_init(&s, false, PL_P2P_KEY_SECP256K1, "/yamux/1.0.0");
    if (pl) {
        free(s.id.payload);
        s.id.payload = malloc(n);
        memcpy(s.id.payload, pl, n);
        s.id.payload_len = n;
    }
    node_start(&a, true, expect, PL__MUX_YAMUX, 0, 0);
    sp_wire(&a, &s, 0);
    pl_err e = closed_with(&a);
    if (e != PL_OK) assert_false(has_event(&a, PL__CONN_EV_SECURED, PL_OK));
    node_free(&a);
    sp_free(&s);
    return e;
}

static void test_bad_payloads_and_mismatch(void **state) {
    (void)state;
    /* Baseline: the scripted peer is accepted. */
    assert_int_equal(with_payload(NULL, 0, NULL), PL_OK);
    /* Unsigned: the key alone. */
    pl_p2p_key *k = NULL;
    assert_int_equal(pl_p2p_key_generate(&k, PL_P2P_KEY_ED25519), PL_OK);
    pl__p2p_pubkey pk;
    pl__p2p_key_public(k, &pk);
    uint8_t buf[128];
    buf[0] = 0x0a;
    buf[1] = (uint8_t)pl__p2p_pubkey_encode(&pk, buf + 2);
    assert_int_equal(with_payload(buf, 2u + buf[1], NULL), PL_ERR_P2P_NOISE);
    /* Signed by another key than the one it names: the signature is over
     * a random static key. */
    uint8_t st[32];
    pl_random(st, 32);
    uint8_t *p = NULL;
    size_t pl = 0;
    assert_int_equal(pl__nxx_payload_build(k, st, &p, &pl), PL_OK);
    assert_int_equal(with_payload(p, pl, NULL), PL_ERR_BAD_SIGNATURE);
    free(p);
    /* A valid peer that is not the one we dialed. */
    pl_p2p_peer_id other;
    pl_p2p_key_peer_id(k, &other);
    assert_int_equal(with_payload(NULL, 0, &other), PL_ERR_P2P_PEER_MISMATCH);
    pl_p2p_key_free(k);
}

/* After a complete handshake, crafted muxer frames. */
static void muxer_attack(const char *muxer, const uint8_t *frames, size_t n, pl_err want) {
    node a;
    script s;
    node_init(&a, PL_P2P_KEY_ED25519);
    sp_init(&s, false, PL_P2P_KEY_ED25519, muxer);
    node_start(&a, true, NULL, !strcmp(muxer, "/yamux/1.0.0") ? PL__MUX_YAMUX : PL__MUX_MPLEX, 0, 0);
    sp_wire(&a, &s, 0);
    assert_int_equal(s.phase, 3);
    assert_true(has_event(&a, PL__CONN_EV_READY, PL_OK));
    sp_send(&s, frames, n);
    sp_wire(&a, &s, 0);
    assert_int_equal(closed_with(&a), want);
    node_free(&a);
    sp_free(&s);
}

static void put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

static size_t yamux_hdr(uint8_t *p, uint8_t type, uint16_t flags, uint32_t id, uint32_t len) {
    p[0] = 0;
    p[1] = type;
    p[2] = (uint8_t)(flags >> 8);
    p[3] = (uint8_t)flags;
    put32(p + 4, id);
    put32(p + 8, len);
    return 12;
}

static void test_bad_muxer_frames(void **state) {
    (void)state;
    /* yamux: a bad version byte. */
    uint8_t f[12];
    yamux_hdr(f, 0, 0, 2, 0);
    f[0] = 1;
    muxer_attack("/yamux/1.0.0", f, 12, PL_ERR_P2P_MUXER);
    /* yamux: frames for streams that do not exist, again and again. */
    size_t count = 1100;
    uint8_t *many = malloc(count * 12);
    for (size_t i = 0; i < count; i++) yamux_hdr(many + 12 * i, 1, 0, (uint32_t)(1000 + 2 * i), 1);
    muxer_attack("/yamux/1.0.0", many, count * 12, PL_ERR_P2P_MUXER);
    free(many);
    /* yamux: a new stream that sends past its 256 KiB window. */
    size_t big = PL_MUX_YAMUX_WINDOW + 1;
    uint8_t *w = calloc(1, 12 + big);
    yamux_hdr(w, 0, 1 /* SYN */, 2, (uint32_t)big);
    muxer_attack("/yamux/1.0.0", w, 12 + big, PL_ERR_P2P_WINDOW);
    free(w);
    /* mplex: a frame above 1 MiB is refused from its header. */
    uint8_t m[16];
    size_t k = 0;
    m[k++] = (uint8_t)(1 << 3 | 0); /* NewStream id 1 */
    m[k++] = 1;
    m[k++] = '1';
    m[k++] = (uint8_t)(1 << 3 | 2); /* MessageInitiator id 1 */
    k += pl_uvarint_encode(m + k, (1u << 20) + 1);
    muxer_attack("/mplex/6.7.0", m, k, PL_ERR_P2P_FRAME);
    /* mplex: flag 7. */
    uint8_t m7[] = {(uint8_t)(1 << 3 | 7), 0};
    muxer_attack("/mplex/6.7.0", m7, sizeof m7, PL_ERR_P2P_MUXER);
}

/* mplex has no window: a peer that streams more than the receive buffer
 * into an unread stream loses the stream, not the connection. */
static void test_mplex_backpressure(void **state) {
    (void)state;
    node a;
    script s;
    node_init(&a, PL_P2P_KEY_ED25519);
    sp_init(&s, false, PL_P2P_KEY_ED25519, "/mplex/6.7.0");
    node_start(&a, true, NULL, PL__MUX_MPLEX, 0, 0);
    sp_wire(&a, &s, 0);
    assert_int_equal(s.phase, 3);
    /* Open stream 0 (initiator from the script's side), negotiate echo. */
    uint8_t buf[256];
    size_t k = 0;
    buf[k++] = 0 << 3 | 0;
    buf[k++] = 1;
    buf[k++] = '0';
    uint8_t mss[128];
    size_t ml = 0;
    mss[ml++] = 19;
    memcpy(mss + ml, "/multistream/1.0.0\n", 19);
    ml += 19;
    mss[ml++] = 26;
    memcpy(mss + ml, "/pairlink/test/echo/1.0.0\n", 26);
    ml += 26;
    buf[k++] = 0 << 3 | 2;
    buf[k++] = (uint8_t)ml;
    memcpy(buf + k, mss, ml);
    k += ml;
    sp_send(&s, buf, k);
    sp_wire(&a, &s, 0);
    const pl__conn_event *op = find_event(&a, PL__CONN_EV_STREAM_OPENED, 0);
    assert_non_null(op);
    uint32_t h = op->stream;
    /* 1 MiB + 64 KiB of data the application never reads. */
    uint8_t *chunk = calloc(1, 64 * 1024 + 8);
    for (int i = 0; i < 17; i++) {
        size_t c = 0;
        chunk[c++] = 0 << 3 | 2;
        c += pl_uvarint_encode(chunk + c, 64 * 1024);
        sp_send(&s, chunk, c + 64 * 1024);
        sp_wire(&a, &s, 0);
    }
    free(chunk);
    const pl__conn_event *cl = find_event(&a, PL__CONN_EV_STREAM_CLOSED, 0);
    assert_non_null(cl);
    assert_int_equal(cl->stream, h);
    assert_int_equal(cl->err, PL_ERR_P2P_BACKPRESSURE);
    assert_false(pl__conn_is_closed(a.c));
    node_free(&a);
    sp_free(&s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_yamux),
        cmocka_unit_test(test_handshake_mplex_and_splits),
        cmocka_unit_test(test_echo_1mib_yamux),
        cmocka_unit_test(test_echo_1mib_mplex),
        cmocka_unit_test(test_ping_responder),
        cmocka_unit_test(test_stream_refused_and_timeouts),
        cmocka_unit_test(test_identify_timeout),
        cmocka_unit_test(test_close_goes_away),
        cmocka_unit_test(test_bad_multistream),
        cmocka_unit_test(test_bad_noise_frames),
        cmocka_unit_test(test_bad_payloads_and_mismatch),
        cmocka_unit_test(test_bad_muxer_frames),
        cmocka_unit_test(test_mplex_backpressure),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
