/* SPDX-License-Identifier: Apache-2.0 */
/* Stream muxers (src/p2p/mux.h): yamux and mplex cores driven back to back
 * with an explicit clock, byte layouts checked against the specs by hand,
 * and hostile frames crafted by hand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "p2p/mux.h"
#include "support/support.h"

static uint64_t seed_state;

/* ------------------------------------------------------------------ */
/* a test peer: a muxer plus what its events told us                  */

#define MAXS 300

typedef struct rstream {
    uint32_t h;
    uint8_t *buf;
    size_t len, cap, consumed;
    bool opened, eof, reset, writable;
    pl_err reset_err;
} rstream;

typedef struct side {
    pl__mux *m;
    rstream st[MAXS];
    size_t nst;
    int n_opened, n_eof, n_reset, n_writable, n_ping, n_goaway, n_failed;
    pl_err failed;
    int64_t rtt;
    size_t goaway_code;
    bool auto_consume;
    size_t max_unconsumed; /* highest unconsumed count seen on any stream */
} side;

static rstream *rs_get(side *s, uint32_t h) {
    for (size_t i = 0; i < s->nst; i++)
        if (s->st[i].h == h) return &s->st[i];
    assert_true(s->nst < MAXS);
    rstream *r = &s->st[s->nst++];
    memset(r, 0, sizeof *r);
    r->h = h;
    return r;
}

static void side_init(side *s, pl__mux_kind kind, bool initiator, const pl__mux_limits *lim,
                      int64_t now) {
    memset(s, 0, sizeof *s);
    s->auto_consume = true;
    assert_int_equal(pl__mux_new(&s->m, kind, initiator, lim, now), PL_OK);
    assert_int_equal(pl__mux_kind_of(s->m), kind);
}

static void side_free(side *s) {
    for (size_t i = 0; i < s->nst; i++)
        free(s->st[i].buf);
    pl__mux_free(s->m);
    s->m = NULL;
}

static void drain(side *s) {
    pl__mux_event ev;
    while (pl__mux_poll(s->m, &ev)) {
        rstream *r;
        switch (ev.kind) {
        case PL__MUX_EV_DATA:
            assert_non_null(ev.data);
            assert_true(ev.len > 0);
            r = rs_get(s, ev.handle);
            if (r->len + ev.len > r->cap) {
                r->cap = (r->len + ev.len) * 2;
                r->buf = realloc(r->buf, r->cap);
                assert_non_null(r->buf);
            }
            memcpy(r->buf + r->len, ev.data, ev.len);
            r->len += ev.len;
            if (r->len - r->consumed > s->max_unconsumed) s->max_unconsumed = r->len - r->consumed;
            if (s->auto_consume) {
                pl__mux_consumed(s->m, ev.handle, ev.len);
                r->consumed += ev.len;
            }
            break;
        case PL__MUX_EV_STREAM_OPENED:
            r = rs_get(s, ev.handle);
            assert_false(r->opened);
            r->opened = true;
            s->n_opened++;
            break;
        case PL__MUX_EV_EOF:
            r = rs_get(s, ev.handle);
            assert_false(r->eof);
            r->eof = true;
            s->n_eof++;
            break;
        case PL__MUX_EV_RESET:
            r = rs_get(s, ev.handle);
            assert_false(r->reset);
            r->reset = true;
            r->reset_err = ev.err;
            s->n_reset++;
            break;
        case PL__MUX_EV_WRITABLE:
            rs_get(s, ev.handle)->writable = true;
            s->n_writable++;
            break;
        case PL__MUX_EV_PING:
            s->n_ping++;
            s->rtt = ev.rtt_ms;
            break;
        case PL__MUX_EV_GOAWAY:
            assert_int_equal(ev.err, PL_ERR_P2P_GOAWAY);
            s->n_goaway++;
            s->goaway_code = ev.len;
            break;
        case PL__MUX_EV_FAILED:
            assert_int_equal(s->n_failed, 0);
            s->n_failed++;
            s->failed = ev.err;
            break;
        default:
            fail_msg("unknown event kind %d", (int)ev.kind);
        }
    }
}

/* Consume up to n unconsumed bytes of stream h, as a slow reader would. */
static void consume(side *s, uint32_t h, size_t n) {
    rstream *r = rs_get(s, h);
    size_t k = r->len - r->consumed;
    if (k > n) k = n;
    pl__mux_consumed(s->m, h, k);
    r->consumed += k;
}

/* split: 0 all at once, 1 byte by byte, SIZE_MAX random pieces. */
static size_t move(side *from, side *to, size_t split, int64_t now) {
    const uint8_t *d;
    size_t n = pl__mux_output(from->m, &d);
    for (size_t off = 0; off < n;) {
        size_t k = n - off;
        if (split == SIZE_MAX)
            k = 1 + (size_t)(pl_test_rand(&seed_state) % (k < 3000 ? k : 3000));
        else if (split && k > split)
            k = split;
        if (pl__mux_recv(to->m, d + off, k, now) != PL_OK) break;
        off += k;
    }
    pl__mux_output_done(from->m, n);
    drain(to);
    drain(from);
    return n;
}

static void pump_split(side *a, side *b, size_t split, int64_t now) {
    drain(a);
    drain(b);
    for (int guard = 0; guard < 10000; guard++)
        if (move(a, b, split, now) + move(b, a, split, now) == 0) return;
    fail_msg("pump does not settle");
}

static void pump(side *a, side *b, int64_t now) {
    pump_split(a, b, 0, now);
}

static void feed(side *s, const uint8_t *b, size_t n, pl_err want, int64_t now) {
    assert_int_equal(pl__mux_recv(s->m, b, n, now), want);
    drain(s);
}

/* Everything in s's output, taken. */
static size_t take_out(side *s, uint8_t *buf, size_t cap) {
    const uint8_t *d;
    size_t n = pl__mux_output(s->m, &d);
    assert_true(n <= cap);
    if (n) memcpy(buf, d, n);
    pl__mux_output_done(s->m, n);
    return n;
}

static void yhdr(uint8_t *p, uint8_t ver, uint8_t type, uint16_t flags, uint32_t id, uint32_t len) {
    p[0] = ver;
    p[1] = type;
    p[2] = (uint8_t)(flags >> 8);
    p[3] = (uint8_t)flags;
    for (int i = 0; i < 4; i++) {
        p[4 + i] = (uint8_t)(id >> (24 - 8 * i));
        p[8 + i] = (uint8_t)(len >> (24 - 8 * i));
    }
}

static void pattern(uint8_t *p, size_t n, uint32_t salt) {
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 7 + (i >> 9) + salt);
}

static const pl__mux_kind kinds[] = {PL__MUX_YAMUX, PL__MUX_MPLEX};

/* ------------------------------------------------------------------ */
/* byte layouts from the specs                                         */

static void test_yamux_vectors(void **st) {
    (void)st;
    side a, b;
    side_init(&a, PL__MUX_YAMUX, true, NULL, 0);
    side_init(&b, PL__MUX_YAMUX, false, NULL, 0);
    uint8_t out[256];
    uint32_t h;
    assert_int_equal(pl__mux_open(a.m, &h), PL_OK);
    assert_int_equal(h, 1);
    /* WINDOW_UPDATE | SYN, stream 1, delta 0 */
    static const uint8_t syn[12] = {0, 1, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0};
    assert_int_equal(take_out(&a, out, sizeof out), 12);
    assert_memory_equal(out, syn, 12);
    feed(&b, syn, 12, PL_OK, 0);
    assert_int_equal(b.n_opened, 1);
    assert_true(rs_get(&b, 1)->opened);
    static const uint8_t ack[12] = {0, 1, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0};
    assert_int_equal(take_out(&b, out, sizeof out), 12);
    assert_memory_equal(out, ack, 12);

    size_t taken;
    assert_int_equal(pl__mux_write(a.m, 1, (const uint8_t *)"hi", 2, &taken), PL_OK);
    assert_int_equal(taken, 2);
    static const uint8_t data[14] = {0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 'h', 'i'};
    assert_int_equal(take_out(&a, out, sizeof out), 14);
    assert_memory_equal(out, data, 14);

    assert_int_equal(pl__mux_close_write(a.m, 1), PL_OK);
    static const uint8_t fin[12] = {0, 1, 0, 4, 0, 0, 0, 1, 0, 0, 0, 0};
    assert_int_equal(take_out(&a, out, sizeof out), 12);
    assert_memory_equal(out, fin, 12);
    assert_int_equal(pl__mux_close_write(a.m, 1), PL_OK); /* idempotent: nothing more */
    assert_int_equal(take_out(&a, out, sizeof out), 0);

    /* The listener's first stream is 2; a reset is WINDOW_UPDATE | RST. */
    assert_int_equal(pl__mux_open(b.m, &h), PL_OK);
    assert_int_equal(h, 2);
    static const uint8_t syn2[12] = {0, 1, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0};
    assert_int_equal(take_out(&b, out, sizeof out), 12);
    assert_memory_equal(out, syn2, 12);
    assert_int_equal(pl__mux_reset(b.m, 2), PL_OK);
    static const uint8_t rst[12] = {0, 1, 0, 8, 0, 0, 0, 2, 0, 0, 0, 0};
    assert_int_equal(take_out(&b, out, sizeof out), 12);
    assert_memory_equal(out, rst, 12);
    assert_int_equal(pl__mux_reset(b.m, 2), PL_ERR_NOT_FOUND);

    /* Ping: SYN with an opaque value; the answer is ACK with the same. */
    pl__mux_ping(a.m, 1000);
    static const uint8_t ping[12] = {0, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1};
    assert_int_equal(take_out(&a, out, sizeof out), 12);
    assert_memory_equal(out, ping, 12);
    static const uint8_t peer_ping[12] = {0, 2, 0, 1, 0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef};
    feed(&a, peer_ping, 12, PL_OK, 1000);
    static const uint8_t pong[12] = {0, 2, 0, 2, 0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef};
    assert_int_equal(take_out(&a, out, sizeof out), 12);
    assert_memory_equal(out, pong, 12);

    pl__mux_go_away(a.m);
    static const uint8_t away[12] = {0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(take_out(&a, out, sizeof out), 12);
    assert_memory_equal(out, away, 12);
    pl__mux_go_away(a.m); /* once */
    assert_int_equal(take_out(&a, out, sizeof out), 0);

    /* A SYN riding on DATA, as some implementations open streams. */
    uint8_t f[12 + 3];
    yhdr(f, 0, 0, 1, 3, 3);
    memcpy(f + 12, "abc", 3);
    side c;
    side_init(&c, PL__MUX_YAMUX, false, NULL, 0);
    feed(&c, f, sizeof f, PL_OK, 0);
    assert_true(rs_get(&c, 3)->opened);
    assert_int_equal(rs_get(&c, 3)->len, 3);
    assert_memory_equal(rs_get(&c, 3)->buf, "abc", 3);
    static const uint8_t ack3[12] = {0, 1, 0, 2, 0, 0, 0, 3, 0, 0, 0, 0};
    assert_int_equal(take_out(&c, out, sizeof out), 12);
    assert_memory_equal(out, ack3, 12);
    side_free(&a);
    side_free(&b);
    side_free(&c);
}

static void test_mplex_vectors(void **st) {
    (void)st;
    side a, b;
    side_init(&a, PL__MUX_MPLEX, true, NULL, 0);
    side_init(&b, PL__MUX_MPLEX, false, NULL, 0);
    uint8_t out[256];
    uint32_t h;
    assert_int_equal(pl__mux_open(a.m, &h), PL_OK);
    assert_int_not_equal(h, 0);
    /* NewStream: uvarint(0 << 3 | 0), uvarint(1), "0" */
    static const uint8_t nw[3] = {0x00, 0x01, '0'};
    assert_int_equal(take_out(&a, out, sizeof out), 3);
    assert_memory_equal(out, nw, 3);
    feed(&b, nw, 3, PL_OK, 0);
    assert_int_equal(b.n_opened, 1);
    uint32_t bh = b.st[0].h;
    assert_int_equal(take_out(&b, out, sizeof out), 0); /* mplex has no ACK */

    size_t taken;
    assert_int_equal(pl__mux_write(a.m, h, (const uint8_t *)"hi", 2, &taken), PL_OK);
    assert_int_equal(taken, 2);
    static const uint8_t msg_i[4] = {0x02, 0x02, 'h', 'i'}; /* MessageInitiator */
    assert_int_equal(take_out(&a, out, sizeof out), 4);
    assert_memory_equal(out, msg_i, 4);
    feed(&b, msg_i, 4, PL_OK, 0);
    assert_int_equal(rs_get(&b, bh)->len, 2);

    assert_int_equal(pl__mux_write(b.m, bh, (const uint8_t *)"yo", 2, &taken), PL_OK);
    static const uint8_t msg_r[4] = {0x01, 0x02, 'y', 'o'}; /* MessageReceiver */
    assert_int_equal(take_out(&b, out, sizeof out), 4);
    assert_memory_equal(out, msg_r, 4);
    feed(&a, msg_r, 4, PL_OK, 0);
    assert_memory_equal(rs_get(&a, h)->buf, "yo", 2);

    assert_int_equal(pl__mux_close_write(b.m, bh), PL_OK);
    static const uint8_t close_r[2] = {0x03, 0x00};
    assert_int_equal(take_out(&b, out, sizeof out), 2);
    assert_memory_equal(out, close_r, 2);
    assert_int_equal(pl__mux_close_write(a.m, h), PL_OK);
    static const uint8_t close_i[2] = {0x04, 0x00};
    assert_int_equal(take_out(&a, out, sizeof out), 2);
    assert_memory_equal(out, close_i, 2);

    /* Second stream: id 1, header byte 1 << 3 = 0x08; reset initiator 0x0e. */
    assert_int_equal(pl__mux_open(a.m, &h), PL_OK);
    static const uint8_t nw1[3] = {0x08, 0x01, '1'};
    assert_int_equal(take_out(&a, out, sizeof out), 3);
    assert_memory_equal(out, nw1, 3);
    assert_int_equal(pl__mux_reset(a.m, h), PL_OK);
    static const uint8_t rst1[2] = {0x0e, 0x00};
    assert_int_equal(take_out(&a, out, sizeof out), 2);
    assert_memory_equal(out, rst1, 2);

    /* A two-byte varint: stream 16 (16 << 3 = 128 = 0x80 0x01). */
    for (int i = 0; i < 14; i++)
        assert_int_equal(pl__mux_open(a.m, &h), PL_OK); /* 2..15 */
    take_out(&a, out, sizeof out);
    assert_int_equal(pl__mux_open(a.m, &h), PL_OK);
    static const uint8_t nw16[5] = {0x80, 0x01, 0x02, '1', '6'};
    assert_int_equal(take_out(&a, out, sizeof out), 5);
    assert_memory_equal(out, nw16, 5);

    /* The peer's stream 0 and our stream 0 are different streams. */
    side c;
    side_init(&c, PL__MUX_MPLEX, false, NULL, 0);
    uint32_t ch;
    assert_int_equal(pl__mux_open(c.m, &ch), PL_OK);
    take_out(&c, out, sizeof out);
    static const uint8_t peer0[] = {0x00, 0x00, 0x02, 0x01, 'p', 0x01, 0x01, 'q'};
    feed(&c, peer0, sizeof peer0, PL_OK, 0);
    assert_int_equal(c.n_opened, 1);
    uint32_t peer_h = c.st[0].h;
    assert_int_not_equal(peer_h, ch);
    assert_memory_equal(rs_get(&c, peer_h)->buf, "p", 1);
    assert_memory_equal(rs_get(&c, ch)->buf, "q", 1);
    side_free(&a);
    side_free(&b);
    side_free(&c);
}

/* ------------------------------------------------------------------ */
/* both kinds back to back                                              */

static void test_open_data_halfclose(void **st) {
    (void)st;
    for (size_t k = 0; k < PL_ARRAY_LEN(kinds); k++) {
        for (size_t split = 0; split < 3; split++) {
            size_t sp = split == 2 ? SIZE_MAX : split;
            side a, b;
            side_init(&a, kinds[k], true, NULL, 0);
            side_init(&b, kinds[k], false, NULL, 0);
            uint32_t h1, h2;
            assert_int_equal(pl__mux_open(a.m, &h1), PL_OK);
            assert_int_equal(pl__mux_open(b.m, &h2), PL_OK);
            pump_split(&a, &b, sp, 0);
            assert_int_equal(a.n_opened, 1);
            assert_int_equal(b.n_opened, 1);
            assert_int_equal(pl__mux_stream_count(a.m), 2);
            assert_int_equal(pl__mux_stream_count(b.m), 2);
            uint32_t bh1 = b.st[0].h; /* b's handle for a's stream */
            uint32_t ah2 = a.st[0].h;

            uint8_t msg[70000];
            pattern(msg, sizeof msg, 1);
            size_t taken;
            assert_int_equal(pl__mux_write(a.m, h1, msg, sizeof msg, &taken), PL_OK);
            assert_int_equal(taken, sizeof msg);
            assert_int_equal(pl__mux_write(b.m, bh1, msg + 5, 100, &taken), PL_OK);
            assert_int_equal(pl__mux_write(b.m, h2, msg + 9, 33, &taken), PL_OK);
            pump_split(&a, &b, sp, 0);
            assert_int_equal(rs_get(&b, bh1)->len, sizeof msg);
            assert_memory_equal(rs_get(&b, bh1)->buf, msg, sizeof msg);
            assert_int_equal(rs_get(&a, h1)->len, 100);
            assert_memory_equal(rs_get(&a, h1)->buf, msg + 5, 100);
            assert_int_equal(rs_get(&a, ah2)->len, 33);

            /* Half-close: a closes, b still writes, then b closes. */
            assert_int_equal(pl__mux_close_write(a.m, h1), PL_OK);
            assert_int_equal(pl__mux_write(a.m, h1, msg, 1, &taken), PL_ERR_CLOSED);
            pump_split(&a, &b, sp, 0);
            assert_true(rs_get(&b, bh1)->eof);
            assert_int_equal(pl__mux_write(b.m, bh1, (const uint8_t *)"late", 4, &taken), PL_OK);
            assert_int_equal(taken, 4);
            assert_int_equal(pl__mux_close_write(b.m, bh1), PL_OK);
            pump_split(&a, &b, sp, 0);
            assert_int_equal(rs_get(&a, h1)->len, 104);
            assert_memory_equal(rs_get(&a, h1)->buf + 100, "late", 4);
            assert_true(rs_get(&a, h1)->eof);
            /* both sides closed: the stream is gone on both ends */
            assert_int_equal(pl__mux_stream_count(a.m), 1);
            assert_int_equal(pl__mux_stream_count(b.m), 1);
            assert_int_equal(pl__mux_write(a.m, h1, msg, 1, &taken), PL_ERR_NOT_FOUND);
            assert_int_equal(pl__mux_close_write(b.m, bh1), PL_ERR_NOT_FOUND);
            assert_int_equal(a.n_failed + b.n_failed, 0);
            assert_int_equal(a.n_reset + b.n_reset, 0);
            side_free(&a);
            side_free(&b);
        }
    }
}

/* 1 MiB through a reader that takes 10 000 bytes per round. */
static void test_slow_reader_transfer(void **st) {
    (void)st;
    for (size_t k = 0; k < PL_ARRAY_LEN(kinds); k++) {
        side a, b;
        side_init(&a, kinds[k], true, NULL, 0);
        side_init(&b, kinds[k], false, NULL, 0);
        b.auto_consume = false;
        const size_t total = 1u << 20;
        uint8_t *src = malloc(total);
        assert_non_null(src);
        pattern(src, total, 3);
        uint32_t h;
        assert_int_equal(pl__mux_open(a.m, &h), PL_OK);
        pump(&a, &b, 0);
        uint32_t bh = b.st[0].h;
        size_t sent = 0;
        bool can_write = true;
        int rounds = 0;
        while (rs_get(&b, bh)->len < total) {
            assert_true(++rounds < 2000);
            if (can_write && sent < total) {
                size_t taken;
                assert_int_equal(pl__mux_write(a.m, h, src + sent, total - sent, &taken), PL_OK);
                sent += taken;
                if (sent < total) can_write = false;
            }
            pump_split(&a, &b, SIZE_MAX, 0);
            if (rs_get(&a, h)->writable) {
                rs_get(&a, h)->writable = false;
                can_write = true;
            }
            consume(&b, bh, 10000);
            pump(&a, &b, 0);
            if (rs_get(&a, h)->writable) {
                rs_get(&a, h)->writable = false;
                can_write = true;
            }
        }
        assert_int_equal(sent, total);
        assert_memory_equal(rs_get(&b, bh)->buf, src, total);
        assert_int_equal(a.n_failed + b.n_failed, 0);
        if (kinds[k] == PL__MUX_YAMUX) {
            /* flow control held: never more than a window unread, and the
             * writer had to wait for window updates */
            assert_true(b.max_unconsumed <= PL_MUX_YAMUX_WINDOW);
            assert_true(a.n_writable > 1);
            assert_true(rounds > 50);
        }
        free(src);
        side_free(&a);
        side_free(&b);
    }
}

static void test_yamux_window_writable(void **st) {
    (void)st;
    side a, b;
    side_init(&a, PL__MUX_YAMUX, true, NULL, 0);
    side_init(&b, PL__MUX_YAMUX, false, NULL, 0);
    b.auto_consume = false;
    uint32_t h;
    assert_int_equal(pl__mux_open(a.m, &h), PL_OK);
    pump(&a, &b, 0);
    static uint8_t big[300 * 1024];
    size_t taken;
    assert_int_equal(pl__mux_write(a.m, h, big, sizeof big, &taken), PL_OK);
    assert_int_equal(taken, PL_MUX_YAMUX_WINDOW);
    assert_int_equal(pl__mux_write(a.m, h, big, sizeof big, &taken), PL_OK);
    assert_int_equal(taken, 0);
    pump(&a, &b, 0);
    assert_int_equal(rs_get(&b, h)->len, PL_MUX_YAMUX_WINDOW);
    /* Less than half a window consumed: no update yet. */
    consume(&b, h, PL_MUX_YAMUX_WINDOW / 2 - 1);
    const uint8_t *d;
    assert_int_equal(pl__mux_output(b.m, &d), 0);
    consume(&b, h, 1);
    assert_int_equal(pl__mux_output(b.m, &d), 12);
    static const uint8_t upd[12] = {0, 1, 0, 0, 0, 0, 0, 1, 0, 2, 0, 0}; /* delta 128 KiB */
    assert_memory_equal(d, upd, 12);
    pump(&a, &b, 0);
    assert_true(rs_get(&a, h)->writable);
    assert_int_equal(a.n_writable, 1);
    assert_int_equal(pl__mux_write(a.m, h, big, sizeof big, &taken), PL_OK);
    assert_int_equal(taken, PL_MUX_YAMUX_WINDOW / 2);
    /* The peer may grant more than 256 KiB; we use it. */
    uint8_t f[12];
    yhdr(f, 0, 1, 0, h, 1000000);
    feed(&a, f, 12, PL_OK, 0);
    assert_int_equal(pl__mux_write(a.m, h, big, sizeof big, &taken), PL_OK);
    assert_int_equal(taken, sizeof big);
    /* ...but not past 2^32-1 in total. */
    yhdr(f, 0, 1, 0, h, UINT32_MAX);
    feed(&a, f, 12, PL_ERR_P2P_MUXER, 0);
    side_free(&a);
    side_free(&b);
}

static void test_output_cap(void **st) {
    (void)st;
    for (size_t k = 0; k < PL_ARRAY_LEN(kinds); k++) {
        pl__mux_limits lim = {.max_output = 4096};
        side a, b;
        side_init(&a, kinds[k], true, &lim, 0);
        side_init(&b, kinds[k], false, NULL, 0);
        uint32_t h;
        assert_int_equal(pl__mux_open(a.m, &h), PL_OK);
        pump(&a, &b, 0);
        static uint8_t big[100000];
        pattern(big, sizeof big, 9);
        size_t taken, sent = 0;
        assert_int_equal(pl__mux_write(a.m, h, big, sizeof big, &taken), PL_OK);
        assert_true(taken > 0 && taken < 4096);
        sent += taken;
        const uint8_t *d;
        assert_true(pl__mux_output(a.m, &d) <= 4096);
        assert_int_equal(pl__mux_write(a.m, h, big + sent, sizeof big - sent, &taken), PL_OK);
        assert_int_equal(taken, 0);
        /* Control frames still go out beyond the cap. */
        uint32_t h2;
        assert_int_equal(pl__mux_open(a.m, &h2), PL_OK);
        assert_true(pl__mux_output(a.m, &d) > 4096 - 64);
        int rounds = 0;
        while (sent < sizeof big) {
            assert_true(++rounds < 1000);
            pump(&a, &b, 0);
            assert_true(rs_get(&a, h)->writable);
            rs_get(&a, h)->writable = false;
            assert_int_equal(pl__mux_write(a.m, h, big + sent, sizeof big - sent, &taken), PL_OK);
            assert_true(taken > 0);
            assert_true(pl__mux_output(a.m, &d) <= 4096);
            sent += taken;
        }
        pump(&a, &b, 0);
        assert_memory_equal(rs_get(&b, b.st[0].h)->buf, big, sizeof big);
        assert_int_equal(a.n_failed + b.n_failed, 0);
        side_free(&a);
        side_free(&b);
    }
}

static void test_reset(void **st) {
    (void)st;
    for (size_t k = 0; k < PL_ARRAY_LEN(kinds); k++) {
        side a, b;
        side_init(&a, kinds[k], true, NULL, 0);
        side_init(&b, kinds[k], false, NULL, 0);
        uint32_t h;
        assert_int_equal(pl__mux_open(a.m, &h), PL_OK);
        pump(&a, &b, 0);
        uint32_t bh = b.st[0].h;
        /* b writes while a resets: the crossing data is dropped quietly. */
        size_t taken;
        uint8_t buf[5000];
        pattern(buf, sizeof buf, 2);
        for (int i = 0; i < 50; i++)
            assert_int_equal(pl__mux_write(b.m, bh, buf, 100, &taken), PL_OK);
        assert_int_equal(pl__mux_reset(a.m, h), PL_OK);
        assert_int_equal(pl__mux_stream_count(a.m), 0);
        pump(&a, &b, 0);
        assert_true(rs_get(&b, bh)->reset);
        assert_int_equal(rs_get(&b, bh)->reset_err, PL_ERR_P2P_STREAM_RESET);
        assert_int_equal(a.n_reset, 0); /* our own reset gives no event */
        assert_int_equal(rs_get(&a, h)->len, 0);
        assert_int_equal(pl__mux_write(b.m, bh, buf, 1, &taken), PL_ERR_NOT_FOUND);
        assert_int_equal(pl__mux_write(a.m, h, buf, 1, &taken), PL_ERR_NOT_FOUND);
        assert_int_equal(pl__mux_stream_count(b.m), 0);
        assert_int_equal(a.n_failed + b.n_failed, 0);
        /* Nothing answered the crossing data (no reset ping-pong). */
        const uint8_t *d;
        assert_int_equal(pl__mux_output(a.m, &d), 0);
        /* Events queued before our reset are withdrawn with the stream. */
        uint32_t x, y;
        assert_int_equal(pl__mux_open(b.m, &x), PL_OK);
        assert_int_equal(pl__mux_open(b.m, &y), PL_OK);
        pump(&a, &b, 0);
        uint32_t ax = a.st[a.nst - 2].h, ay = a.st[a.nst - 1].h;
        assert_int_equal(pl__mux_write(b.m, x, buf, 10, &taken), PL_OK);
        assert_int_equal(pl__mux_write(b.m, y, buf, 20, &taken), PL_OK);
        assert_int_equal(pl__mux_write(b.m, x, buf, 30, &taken), PL_OK);
        assert_int_equal(pl__mux_close_write(b.m, x), PL_OK);
        const uint8_t *o;
        size_t on = pl__mux_output(b.m, &o);
        assert_int_equal(pl__mux_recv(a.m, o, on, 0), PL_OK);
        pl__mux_output_done(b.m, on);
        assert_int_equal(pl__mux_reset(a.m, ax), PL_OK);
        drain(&a);
        assert_int_equal(rs_get(&a, ax)->len, 0);
        assert_false(rs_get(&a, ax)->eof);
        assert_int_equal(rs_get(&a, ay)->len, 20);
        pump(&a, &b, 0);
        assert_true(rs_get(&b, x)->reset);
        /* New streams still work afterwards. */
        assert_int_equal(pl__mux_open(b.m, &h), PL_OK);
        assert_int_equal(pl__mux_write(b.m, h, buf, sizeof buf, &taken), PL_OK);
        pump(&a, &b, 0);
        assert_int_equal(a.n_opened, 3);
        assert_int_equal(rs_get(&a, a.st[a.nst - 1].h)->len, sizeof buf);
        side_free(&a);
        side_free(&b);
    }
}

static void test_ping(void **st) {
    (void)st;
    pl__mux_limits lim = {.ping_interval_ms = 1000, .ping_timeout_ms = 500};
    side a, b;
    int64_t now = 1000000;
    side_init(&a, PL__MUX_YAMUX, true, &lim, now);
    side_init(&b, PL__MUX_YAMUX, false, &lim, now);
    /* explicit ping, answer after 37 ms */
    pl__mux_ping(a.m, now);
    assert_int_equal(pl__mux_next_deadline(a.m), now + 500);
    move(&a, &b, 0, now);
    now += 37;
    move(&b, &a, 0, now);
    assert_int_equal(a.n_ping, 1);
    assert_int_equal(a.rtt, 37);
    assert_int_equal(b.n_ping, 0);
    /* keep-alive after a second of silence */
    assert_int_equal(pl__mux_next_deadline(a.m), now + 1000);
    pl__mux_on_timer(a.m, now + 999);
    const uint8_t *d;
    assert_int_equal(pl__mux_output(a.m, &d), 0);
    now += 1000;
    pl__mux_on_timer(a.m, now);
    assert_int_equal(pl__mux_output(a.m, &d), 12);
    assert_int_equal(d[1], 2);
    move(&a, &b, 0, now);
    now += 5;
    move(&b, &a, 0, now);
    assert_int_equal(a.n_ping, 2);
    assert_int_equal(a.rtt, 5);
    /* a wrong opaque value answers nothing */
    pl__mux_ping(a.m, now);
    uint8_t f[12];
    take_out(&a, f, sizeof f);
    f[3] = 2;
    f[11] ^= 0x55;
    feed(&a, f, 12, PL_OK, now);
    assert_int_equal(a.n_ping, 2);
    /* time-out: the peer never answers */
    pl__mux_on_timer(a.m, now + 499);
    assert_int_equal(a.n_failed, 0);
    pl__mux_on_timer(a.m, now + 500);
    drain(&a);
    assert_int_equal(a.n_failed, 1);
    assert_int_equal(a.failed, PL_ERR_TIMEOUT);
    assert_int_equal(pl__mux_next_deadline(a.m), INT64_MAX);
    uint32_t h;
    assert_int_equal(pl__mux_open(a.m, &h), PL_ERR_STATE);
    assert_int_equal(pl__mux_recv(a.m, f, 1, now), PL_ERR_TIMEOUT);
    /* disabled keep-alive */
    pl__mux_limits off = {.ping_interval_ms = -1};
    side c;
    side_init(&c, PL__MUX_YAMUX, true, &off, now);
    assert_int_equal(pl__mux_next_deadline(c.m), INT64_MAX);
    /* mplex: no pings at all */
    side m;
    side_init(&m, PL__MUX_MPLEX, true, &lim, now);
    pl__mux_ping(m.m, now);
    assert_int_equal(pl__mux_output(m.m, &d), 0);
    assert_int_equal(pl__mux_next_deadline(m.m), INT64_MAX);
    side_free(&a);
    side_free(&b);
    side_free(&c);
    side_free(&m);
}

static void test_goaway(void **st) {
    (void)st;
    side a, b;
    side_init(&a, PL__MUX_YAMUX, true, NULL, 0);
    side_init(&b, PL__MUX_YAMUX, false, NULL, 0);
    uint32_t h, h2;
    assert_int_equal(pl__mux_open(a.m, &h), PL_OK);
    pump(&a, &b, 0);
    pl__mux_go_away(a.m);
    assert_int_equal(pl__mux_open(a.m, &h2), PL_ERR_P2P_GOAWAY);
    pump(&a, &b, 0);
    assert_int_equal(b.n_goaway, 1);
    assert_int_equal(b.goaway_code, 0);
    assert_int_equal(pl__mux_open(b.m, &h2), PL_ERR_P2P_GOAWAY);
    /* the existing stream goes on */
    size_t taken;
    assert_int_equal(pl__mux_write(b.m, h, (const uint8_t *)"still", 5, &taken), PL_OK);
    pump(&a, &b, 0);
    assert_memory_equal(rs_get(&a, h)->buf, "still", 5);
    /* a SYN after our GO_AWAY is refused with RST, without an event */
    uint8_t f[12], out[64];
    yhdr(f, 0, 1, 1, 4, 0);
    feed(&a, f, 12, PL_OK, 0);
    assert_int_equal(a.n_opened, 0);
    static const uint8_t rst[12] = {0, 1, 0, 8, 0, 0, 0, 4, 0, 0, 0, 0};
    assert_int_equal(take_out(&a, out, sizeof out), 12);
    assert_memory_equal(out, rst, 12);
    /* a second GO_AWAY gives no second event; a code is passed up */
    side c;
    side_init(&c, PL__MUX_YAMUX, true, NULL, 0);
    yhdr(f, 0, 3, 0, 0, 2);
    feed(&c, f, 12, PL_OK, 0);
    feed(&c, f, 12, PL_OK, 0);
    assert_int_equal(c.n_goaway, 1);
    assert_int_equal(c.goaway_code, 2);
    assert_int_equal(c.n_failed, 0);
    /* mplex: go-away refuses inbound streams with a reset */
    side m;
    side_init(&m, PL__MUX_MPLEX, true, NULL, 0);
    pl__mux_go_away(m.m);
    assert_int_equal(pl__mux_open(m.m, &h2), PL_ERR_P2P_GOAWAY);
    assert_int_equal(take_out(&m, out, sizeof out), 0);
    static const uint8_t nw[3] = {0x18, 0x01, '3'};
    feed(&m, nw, 3, PL_OK, 0);
    assert_int_equal(m.n_opened, 0);
    static const uint8_t rst_r[2] = {0x1d, 0x00}; /* 3 << 3 | ResetReceiver */
    assert_int_equal(take_out(&m, out, sizeof out), 2);
    assert_memory_equal(out, rst_r, 2);
    side_free(&a);
    side_free(&b);
    side_free(&c);
    side_free(&m);
}

static void test_stream_limit(void **st) {
    (void)st;
    for (size_t k = 0; k < PL_ARRAY_LEN(kinds); k++) {
        pl__mux_limits lim = {.max_streams = 3};
        side a, b;
        side_init(&a, kinds[k], true, NULL, 0);
        side_init(&b, kinds[k], false, &lim, 0);
        uint32_t hs[5];
        for (int i = 0; i < 5; i++) {
            assert_int_equal(pl__mux_open(a.m, &hs[i]), PL_OK);
            size_t taken;
            assert_int_equal(pl__mux_write(a.m, hs[i], (const uint8_t *)"x", 1, &taken), PL_OK);
        }
        pump(&a, &b, 0);
        assert_int_equal(b.n_opened, 3);
        assert_int_equal(pl__mux_stream_count(b.m), 3);
        for (int i = 0; i < 5; i++) {
            assert_int_equal(rs_get(&a, hs[i])->reset, i >= 3);
            if (i >= 3) assert_int_equal(rs_get(&a, hs[i])->reset_err, PL_ERR_P2P_STREAM_RESET);
        }
        assert_int_equal(pl__mux_stream_count(a.m), 3);
        assert_int_equal(a.n_failed + b.n_failed, 0);
        /* outbound: the same limit on b's own streams, separately */
        uint32_t h;
        for (int i = 0; i < 3; i++)
            assert_int_equal(pl__mux_open(b.m, &h), PL_OK);
        assert_int_equal(pl__mux_open(b.m, &h), PL_ERR_P2P_STREAM_LIMIT);
        /* closing one makes room for one more inbound */
        uint32_t bh = b.st[0].h;
        assert_int_equal(pl__mux_reset(b.m, bh), PL_OK);
        assert_int_equal(pl__mux_open(a.m, &h), PL_OK);
        pump(&a, &b, 0);
        assert_int_equal(b.n_opened, 4);
        assert_false(rs_get(&a, h)->reset);
        side_free(&a);
        side_free(&b);
    }
}

/* mplex has no flow control: a reader that does not keep up loses the
 * stream, and the peer's data still in flight is dropped quietly. */
static void test_mplex_backpressure(void **st) {
    (void)st;
    pl__mux_limits lim = {.max_stream_buffer = 64 * 1024};
    side a, b;
    side_init(&a, PL__MUX_MPLEX, true, NULL, 0);
    side_init(&b, PL__MUX_MPLEX, false, &lim, 0);
    b.auto_consume = false;
    uint32_t h;
    assert_int_equal(pl__mux_open(a.m, &h), PL_OK);
    pump(&a, &b, 0);
    uint32_t bh = b.st[0].h;
    static uint8_t buf[40000];
    size_t taken;
    assert_int_equal(pl__mux_write(a.m, h, buf, sizeof buf, &taken), PL_OK);
    pump(&a, &b, 0);
    consume(&b, bh, 30000); /* 10 000 left unconsumed */
    /* 50 000 more fit (60 000 <= 64 KiB); the next 40 000 do not */
    assert_int_equal(pl__mux_write(a.m, h, buf, 30000, &taken), PL_OK);
    assert_int_equal(pl__mux_write(a.m, h, buf, 20000, &taken), PL_OK);
    pump(&a, &b, 0);
    assert_false(rs_get(&b, bh)->reset);
    assert_int_equal(rs_get(&b, bh)->len - rs_get(&b, bh)->consumed, 60000);
    for (int i = 0; i < 30; i++)
        assert_int_equal(pl__mux_write(a.m, h, buf, sizeof buf, &taken), PL_OK);
    move(&a, &b, 0, 0);
    assert_true(rs_get(&b, bh)->reset);
    assert_int_equal(rs_get(&b, bh)->reset_err, PL_ERR_P2P_BACKPRESSURE);
    assert_true(rs_get(&b, bh)->len - rs_get(&b, bh)->consumed <= 64 * 1024);
    assert_int_equal(pl__mux_stream_count(b.m), 0);
    pump(&a, &b, 0);
    assert_true(rs_get(&a, h)->reset);
    assert_int_equal(a.n_failed + b.n_failed, 0);
    side_free(&a);
    side_free(&b);
}

/* ------------------------------------------------------------------ */
/* hostile input                                                       */

static void expect_yamux_failure(bool initiator, const uint8_t *in, size_t n, pl_err want) {
    side s;
    side_init(&s, PL__MUX_YAMUX, initiator, NULL, 0);
    /* byte by byte, so that partial headers are exercised too */
    pl_err got = PL_OK;
    for (size_t i = 0; i < n && got == PL_OK; i++)
        got = pl__mux_recv(s.m, in + i, 1, 0);
    assert_int_equal(got, want);
    drain(&s);
    assert_int_equal(s.n_failed, 1);
    assert_int_equal(s.failed, want);
    /* afterwards: the same error, nothing accepted, a GO_AWAY went out */
    assert_int_equal(pl__mux_recv(s.m, in, n, 0), want);
    drain(&s);
    assert_int_equal(s.n_failed, 1);
    const uint8_t *d;
    size_t o = pl__mux_output(s.m, &d);
    assert_true(o >= 12);
    assert_int_equal(d[o - 12 + 1], 3);
    assert_int_equal(d[o - 1], want == PL_ERR_P2P_BACKPRESSURE ? 2 : 1);
    size_t taken;
    assert_int_equal(pl__mux_write(s.m, 1, in, 1, &taken), PL_ERR_STATE);
    side_free(&s);
}

static void test_yamux_hostile(void **st) {
    (void)st;
    uint8_t f[64];
    /* bad version */
    yhdr(f, 1, 1, 1, 2, 0);
    expect_yamux_failure(true, f, 12, PL_ERR_P2P_MUXER);
    /* unknown type */
    yhdr(f, 0, 4, 0, 0, 0);
    expect_yamux_failure(true, f, 12, PL_ERR_P2P_MUXER);
    /* wrong parity: the listener's SYN on an odd id */
    yhdr(f, 0, 1, 1, 3, 0);
    expect_yamux_failure(true, f, 12, PL_ERR_P2P_MUXER);
    /* SYN on the session id 0 */
    yhdr(f, 0, 1, 1, 0, 0);
    expect_yamux_failure(false, f, 12, PL_ERR_P2P_MUXER);
    /* SYN reusing an id in use */
    yhdr(f, 0, 1, 1, 2, 0);
    yhdr(f + 12, 0, 0, 1, 2, 0);
    expect_yamux_failure(true, f, 24, PL_ERR_P2P_MUXER);
    /* SYN reusing a stream just closed */
    yhdr(f, 0, 1, 1, 2, 0);
    yhdr(f + 12, 0, 1, 8, 2, 0);
    yhdr(f + 24, 0, 1, 1, 2, 0);
    expect_yamux_failure(true, f, 36, PL_ERR_P2P_MUXER);
    /* DATA on a new stream above the 256 KiB window */
    yhdr(f, 0, 0, 1, 2, PL_MUX_YAMUX_WINDOW + 1);
    expect_yamux_failure(true, f, 12, PL_ERR_P2P_WINDOW);
    /* two frames that together pass the window */
    yhdr(f, 0, 1, 1, 2, 0);
    yhdr(f + 12, 0, 0, 0, 2, 0);
    yhdr(f + 24, 0, 0, 0, 2, PL_MUX_YAMUX_WINDOW);
    yhdr(f + 36, 0, 0, 0, 2, 1);
    {
        side s;
        side_init(&s, PL__MUX_YAMUX, true, NULL, 0);
        s.auto_consume = false; /* a reader that takes nothing */
        feed(&s, f, 36, PL_OK, 0);
        static uint8_t body[PL_MUX_YAMUX_WINDOW];
        feed(&s, body, sizeof body, PL_OK, 0);
        assert_int_equal(rs_get(&s, 2)->len, PL_MUX_YAMUX_WINDOW);
        assert_int_equal(pl__mux_recv(s.m, f + 36, 12, 0), PL_ERR_P2P_WINDOW);
        side_free(&s);
    }
    /* data after the peer's FIN */
    yhdr(f, 0, 1, 1 | 4, 2, 0);
    yhdr(f + 12, 0, 0, 0, 2, 1);
    f[24] = 'x';
    expect_yamux_failure(true, f, 25, PL_ERR_P2P_MUXER);
    /* DATA for an unknown id above a window */
    yhdr(f, 0, 0, 0, 7, PL_MUX_YAMUX_WINDOW + 1);
    expect_yamux_failure(false, f, 12, PL_ERR_P2P_WINDOW);
}

static void test_yamux_unknown_ids(void **st) {
    (void)st;
    side s;
    side_init(&s, PL__MUX_YAMUX, true, NULL, 0);
    uint8_t f[16], out[64];
    /* DATA without SYN for an id never opened: RST back, no failure */
    yhdr(f, 0, 0, 0, 4, 3);
    memcpy(f + 12, "abc", 3);
    feed(&s, f, 15, PL_OK, 0);
    static const uint8_t rst[12] = {0, 1, 0, 8, 0, 0, 0, 4, 0, 0, 0, 0};
    assert_int_equal(take_out(&s, out, sizeof out), 12);
    assert_memory_equal(out, rst, 12);
    /* more for the same id: already answered, dropped quietly */
    feed(&s, f, 15, PL_OK, 0);
    assert_int_equal(take_out(&s, out, sizeof out), 0);
    /* a RST for an unknown id is never answered with a RST */
    yhdr(f, 0, 1, 8, 6, 0);
    feed(&s, f, 12, PL_OK, 0);
    assert_int_equal(take_out(&s, out, sizeof out), 0);
    assert_int_equal(s.n_failed, 0);
    assert_int_equal(pl__mux_stream_count(s.m), 0);
    /* a flood of distinct unknown ids ends the connection */
    pl_err e = PL_OK;
    uint32_t id = 100;
    for (int i = 0; i < 5000 && e == PL_OK; i++, id += 2) {
        yhdr(f, 0, 1, 0, id, 1);
        e = pl__mux_recv(s.m, f, 12, 0);
        const uint8_t *d;
        pl__mux_output_done(s.m, pl__mux_output(s.m, &d));
    }
    assert_int_equal(e, PL_ERR_P2P_MUXER);
    drain(&s);
    assert_int_equal(s.failed, PL_ERR_P2P_MUXER);
    assert_true(id > 2 * 1000);
    side_free(&s);
}

/* A peer that makes us answer faster than our output drains. */
static void test_control_flood(void **st) {
    (void)st;
    pl__mux_limits lim = {.max_output = 4096};
    side s;
    side_init(&s, PL__MUX_YAMUX, true, &lim, 0);
    uint8_t f[12];
    yhdr(f, 0, 2, 1, 0, 42);
    pl_err e = PL_OK;
    int i;
    for (i = 0; i < 100000 && e == PL_OK; i++)
        e = pl__mux_recv(s.m, f, 12, 0);
    assert_int_equal(e, PL_ERR_P2P_BACKPRESSURE);
    assert_true(i > 20000);
    const uint8_t *d;
    assert_true(pl__mux_output(s.m, &d) <= 4096 + 256 * 1024 + 12);
    drain(&s);
    assert_int_equal(s.failed, PL_ERR_P2P_BACKPRESSURE);
    side_free(&s);
}

static void expect_mplex_failure(const uint8_t *in, size_t n, pl_err want) {
    for (int bytewise = 0; bytewise < 2; bytewise++) {
        side s;
        side_init(&s, PL__MUX_MPLEX, false, NULL, 0);
        pl_err got = PL_OK;
        if (bytewise)
            for (size_t i = 0; i < n && got == PL_OK; i++)
                got = pl__mux_recv(s.m, in + i, 1, 0);
        else
            got = pl__mux_recv(s.m, in, n, 0);
        assert_int_equal(got, want);
        drain(&s);
        assert_int_equal(s.failed, want);
        assert_int_equal(pl__mux_recv(s.m, in, n, 0), want);
        drain(&s);
        assert_int_equal(s.n_failed, 1);
        side_free(&s);
    }
}

static void test_mplex_hostile(void **st) {
    (void)st;
    /* a message of 1 MiB + 1 */
    static const uint8_t big[] = {0x00, 0x00, 0x02, 0x81, 0x80, 0x40};
    expect_mplex_failure(big, sizeof big, PL_ERR_P2P_FRAME);
    /* a length varint that never ends */
    static const uint8_t endless[] = {0x02, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
                                      0x80, 0x80, 0x80, 0x80, 0x80, 0x80};
    expect_mplex_failure(endless, sizeof endless, PL_ERR_P2P_FRAME);
    /* a header varint over 64 bits */
    static const uint8_t wide[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
    expect_mplex_failure(wide, sizeof wide, PL_ERR_P2P_FRAME);
    /* flag 7 */
    static const uint8_t flag7[] = {0x07, 0x00};
    expect_mplex_failure(flag7, sizeof flag7, PL_ERR_P2P_MUXER);
    /* a stream name over 1 KiB */
    static const uint8_t name[] = {0x00, 0x81, 0x08};
    expect_mplex_failure(name, sizeof name, PL_ERR_P2P_FRAME);
    /* NewStream reusing an open id, and a closed one */
    static const uint8_t reuse[] = {0x00, 0x00, 0x00, 0x00};
    expect_mplex_failure(reuse, sizeof reuse, PL_ERR_P2P_MUXER);
    static const uint8_t reuse2[] = {0x00, 0x00, 0x06, 0x00, 0x00, 0x00};
    expect_mplex_failure(reuse2, sizeof reuse2, PL_ERR_P2P_MUXER);
    /* a message after the peer's close */
    static const uint8_t after[] = {0x00, 0x00, 0x04, 0x00, 0x02, 0x01, 'x'};
    expect_mplex_failure(after, sizeof after, PL_ERR_P2P_MUXER);
    /* the largest frame is fine */
    side s;
    side_init(&s, PL__MUX_MPLEX, false, NULL, 0);
    static const uint8_t maxf[] = {0x00, 0x00, 0x02, 0x80, 0x80, 0x40};
    feed(&s, maxf, sizeof maxf, PL_OK, 0);
    uint8_t *body = calloc(1, PL_MUX_MAX_FRAME);
    assert_non_null(body);
    feed(&s, body, PL_MUX_MAX_FRAME, PL_OK, 0);
    assert_int_equal(rs_get(&s, s.st[0].h)->len, PL_MUX_MAX_FRAME);
    free(body);
    assert_int_equal(s.n_failed, 0);
    side_free(&s);
}

static void test_mplex_unknown_streams(void **st) {
    (void)st;
    side s;
    side_init(&s, PL__MUX_MPLEX, false, NULL, 0);
    uint8_t out[64];
    /* messages, closes and resets for streams nobody opened: ignored */
    static const uint8_t msgs[] = {0x2a, 0x02, 'h', 'i', 0x29, 0x01, 'x', 0x2c, 0x00, 0x2e, 0x00};
    for (int i = 0; i < 3000; i++)
        feed(&s, msgs, sizeof msgs, PL_OK, 0);
    assert_int_equal(take_out(&s, out, sizeof out), 0);
    assert_int_equal(s.n_failed, 0);
    assert_int_equal(s.nst, 0);
    /* ... but a flood of distinct ones ends the connection */
    pl_err e = PL_OK;
    uint32_t id = 1000;
    for (int i = 0; i < 5000 && e == PL_OK; i++, id++) {
        uint8_t f[8];
        size_t n = 0;
        uint64_t v = (uint64_t)id << 3 | 2;
        while (v >= 0x80) {
            f[n++] = (uint8_t)(v | 0x80);
            v >>= 7;
        }
        f[n++] = (uint8_t)v;
        f[n++] = 0;
        e = pl__mux_recv(s.m, f, n, 0);
    }
    assert_int_equal(e, PL_ERR_P2P_MUXER);
    assert_true(id > 1000 + 1000);
    drain(&s);
    assert_int_equal(s.failed, PL_ERR_P2P_MUXER);
    side_free(&s);
}

/* A peer churning streams while nobody polls: the event queue is bounded. */
static void test_event_bound(void **st) {
    (void)st;
    side s;
    side_init(&s, PL__MUX_MPLEX, false, NULL, 0);
    pl_err e = PL_OK;
    uint64_t id = 0;
    size_t fed = 0;
    uint8_t buf[64];
    while (e == PL_OK && fed < 4000000) {
        size_t n = 0;
        for (int j = 0; j < 2; j++) { /* NewStream then ResetInitiator */
            uint64_t v = id << 3 | (j ? 6 : 0);
            while (v >= 0x80) {
                buf[n++] = (uint8_t)(v | 0x80);
                v >>= 7;
            }
            buf[n++] = (uint8_t)v;
            buf[n++] = 0;
        }
        id++;
        e = pl__mux_recv(s.m, buf, n, 0);
        fed += n;
    }
    assert_int_equal(e, PL_ERR_P2P_BACKPRESSURE);
    size_t events = 0;
    pl__mux_event ev;
    pl__mux_event_kind last = 0;
    while (pl__mux_poll(s.m, &ev)) {
        events++;
        last = ev.kind;
    }
    assert_true(events > 60000 && events <= 65536);
    assert_int_equal(last, PL__MUX_EV_FAILED);
    side_free(&s);
}

/* Random splits and random operations on both sides, checked against what
 * was written. */
static void test_random_traffic(void **st) {
    (void)st;
    for (size_t k = 0; k < PL_ARRAY_LEN(kinds); k++) {
        side a, b;
        side_init(&a, kinds[k], true, NULL, 0);
        side_init(&b, kinds[k], false, NULL, 0);
        enum { N = 6, LEN = 200000 };
        uint32_t h[N];
        uint8_t *src = malloc(LEN);
        assert_non_null(src);
        pattern(src, LEN, 5);
        size_t sent[N] = {0};
        for (int i = 0; i < N; i++)
            assert_int_equal(pl__mux_open(a.m, &h[i]), PL_OK);
        pump(&a, &b, 0);
        for (int round = 0; round < 400; round++) {
            int i = (int)(pl_test_rand(&seed_state) % N);
            size_t want = (size_t)(pl_test_rand(&seed_state) % 9000);
            if (want > LEN - sent[i]) want = LEN - sent[i];
            size_t taken;
            assert_int_equal(pl__mux_write(a.m, h[i], src + sent[i], want, &taken), PL_OK);
            sent[i] += taken;
            if (round % 7 == 0) pump_split(&a, &b, SIZE_MAX, round);
        }
        pump_split(&a, &b, 1, 1000);
        for (int i = 0; i < N; i++) {
            rstream *r = rs_get(&b, b.st[i].h);
            assert_int_equal(r->len, sent[i]);
            if (sent[i]) assert_memory_equal(r->buf, src, sent[i]);
        }
        assert_int_equal(a.n_failed + b.n_failed, 0);
        free(src);
        side_free(&a);
        side_free(&b);
    }
}

int main(void) {
    seed_state = pl_test_seed();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_yamux_vectors),
        cmocka_unit_test(test_mplex_vectors),
        cmocka_unit_test(test_open_data_halfclose),
        cmocka_unit_test(test_slow_reader_transfer),
        cmocka_unit_test(test_yamux_window_writable),
        cmocka_unit_test(test_output_cap),
        cmocka_unit_test(test_reset),
        cmocka_unit_test(test_ping),
        cmocka_unit_test(test_goaway),
        cmocka_unit_test(test_stream_limit),
        cmocka_unit_test(test_mplex_backpressure),
        cmocka_unit_test(test_yamux_hostile),
        cmocka_unit_test(test_yamux_unknown_ids),
        cmocka_unit_test(test_control_flood),
        cmocka_unit_test(test_mplex_hostile),
        cmocka_unit_test(test_mplex_unknown_streams),
        cmocka_unit_test(test_event_bound),
        cmocka_unit_test(test_random_traffic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
