/* SPDX-License-Identifier: Apache-2.0 */
/* Shared body of fuzz_yamux.c and fuzz_mplex.c: one muxer (src/p2p/mux.h)
 * fed arbitrary peer bytes, with the application side driven by a PRNG.
 * Include after defining FUZZ_KIND.
 *
 * Input: byte 0 configures the run:
 *   bit 0     we are the initiator (dialer);
 *   bit 1     small limits (3 streams, 4 KiB stream buffer, 2 KiB output,
 *             pings every 100 ms with a 50 ms time-out), so the limit paths
 *             are reached;
 *   bit 2     the application consumes DATA as it arrives (else only when
 *             the PRNG says so);
 *   bits 3-7  PRNG seed.
 * The rest is what the peer sends, fed to pl__mux_recv in pieces of PRNG
 * lengths (1 byte up to 4 KiB). Between pieces the PRNG picks application
 * calls: open, write, close, reset, consume, ping, go-away, a clock step
 * with on_timer, draining the output or leaving it to pile up.
 *
 * Checks, besides "no crash, no leak, no UB, no hang":
 *  - recv returns PL_OK or a documented connection error, the same one on
 *    every call after the first; exactly one FAILED event, last of all;
 *  - the output never holds more than max_output + the control slack + one
 *    GO_AWAY, and data frames only appear while under max_output;
 *  - what we send parses as frames of the protocol: yamux version 0, type
 *    <= 3, DATA at most one send frame long and never on stream 0; mplex
 *    flags <= 6 and bodies at most one send frame;
 *  - stream events name a non-zero handle; DATA is non-empty; nothing
 *    follows the RESET of a handle or our pl__mux_reset of it, even when
 *    events were still queued (the harness sometimes leaves some); what a stream has handed up and
 * not had consumed stays within one window (yamux) or max_stream_buffer (mplex);
 *  - open streams stay within both stream limits;
 *  - after on_timer(now) the next deadline is later than now. */
#ifndef FUZZ_KIND
#error define FUZZ_KIND first
#endif

#include "p2p/mux_internal.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond) {
    if (!cond) abort();
}

#define TRACK 256

typedef struct tracked {
    uint32_t handle;
    size_t unconsumed;
    bool dead;
} tracked;

typedef struct harness {
    pl__mux *m;
    pl__mux_limits lim;
    uint64_t rng;
    int64_t now;
    bool consume_all;
    pl_err failed;
    int n_failed;
    bool saw_goaway;
    uint32_t handles[16]; /* live-ish handles the application knows */
    size_t nh;
    tracked tr[TRACK];
    uint8_t scratch[8192];
} harness;

static uint64_t rnd(harness *h) {
    h->rng ^= h->rng >> 12;
    h->rng ^= h->rng << 25;
    h->rng ^= h->rng >> 27;
    return h->rng * UINT64_C(2685821657736338717);
}

static tracked *track(harness *h, uint32_t handle) {
    tracked *t = &h->tr[handle % TRACK];
    if (t->handle != handle) {
        t->handle = handle;
        t->unconsumed = 0;
        t->dead = false;
    }
    return t;
}

static void remember(harness *h, uint32_t handle) {
    if (h->nh < PL_ARRAY_LEN(h->handles))
        h->handles[h->nh++] = handle;
    else
        h->handles[rnd(h) % PL_ARRAY_LEN(h->handles)] = handle;
}

static uint32_t some_handle(harness *h) {
    if (!h->nh || rnd(h) % 8 == 0) return (uint32_t)rnd(h); /* a stale or made-up one */
    return h->handles[rnd(h) % h->nh];
}

static bool conn_error(pl_err e) {
    return e == PL_ERR_P2P_MUXER || e == PL_ERR_P2P_WINDOW || e == PL_ERR_P2P_FRAME ||
           e == PL_ERR_NOMEM || e == PL_ERR_P2P_BACKPRESSURE || e == PL_ERR_TIMEOUT;
}

/* Takes all events, or (some = true) sometimes only a few, so that the
 * application also acts while events are still queued. */
static void drain_events(harness *h, bool some) {
    pl__mux_event ev;
    size_t budget = some && rnd(h) % 4 == 0 ? (size_t)(rnd(h) % 8) : SIZE_MAX;
    while (budget-- && pl__mux_poll(h->m, &ev)) {
        check(h->n_failed == 0); /* FAILED comes last */
        tracked *t;
        switch (ev.kind) {
        case PL__MUX_EV_DATA:
            check(ev.handle != 0 && ev.data != NULL && ev.len > 0);
            t = track(h, ev.handle);
            check(!t->dead);
            t->unconsumed += ev.len;
            if (FUZZ_KIND == PL__MUX_YAMUX)
                check(t->unconsumed <= PL_MUX_YAMUX_WINDOW);
            else
                check(t->unconsumed <= h->lim.max_stream_buffer);
            if (h->consume_all || rnd(h) % 4 == 0) {
                pl__mux_consumed(h->m, ev.handle, t->unconsumed);
                t->unconsumed = 0;
            }
            break;
        case PL__MUX_EV_STREAM_OPENED:
            check(ev.handle != 0);
            t = track(h, ev.handle);
            t->unconsumed = 0;
            t->dead = false;
            remember(h, ev.handle);
            break;
        case PL__MUX_EV_EOF:
        case PL__MUX_EV_WRITABLE:
            check(ev.handle != 0 && !track(h, ev.handle)->dead);
            break;
        case PL__MUX_EV_RESET:
            check(ev.handle != 0);
            check(ev.err == PL_ERR_P2P_STREAM_RESET || ev.err == PL_ERR_P2P_BACKPRESSURE);
            t = track(h, ev.handle);
            check(!t->dead);
            t->dead = true;
            break;
        case PL__MUX_EV_PING:
            check(FUZZ_KIND == PL__MUX_YAMUX && ev.rtt_ms >= 0);
            break;
        case PL__MUX_EV_GOAWAY:
            check(FUZZ_KIND == PL__MUX_YAMUX && !h->saw_goaway && ev.err == PL_ERR_P2P_GOAWAY);
            h->saw_goaway = true;
            break;
        case PL__MUX_EV_FAILED:
            check(conn_error(ev.err));
            h->n_failed++;
            h->failed = ev.err;
            break;
        default:
            check(0);
        }
    }
}

static uint64_t get_uvarint(const uint8_t *p, size_t n, size_t *i) {
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        check(*i < n);
        uint8_t b = p[(*i)++];
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return v;
    }
    check(0);
    return 0;
}

/* The pending output always ends on a frame boundary: parse all of it. */
static void check_output(const uint8_t *p, size_t n) {
    size_t i = 0;
    while (i < n) {
        if (FUZZ_KIND == PL__MUX_YAMUX) {
            check(n - i >= 12);
            check(p[i] == 0 && p[i + 1] <= 3);
            uint32_t id = (uint32_t)p[i + 4] << 24 | (uint32_t)p[i + 5] << 16 |
                          (uint32_t)p[i + 6] << 8 | p[i + 7];
            uint32_t len = (uint32_t)p[i + 8] << 24 | (uint32_t)p[i + 9] << 16 |
                           (uint32_t)p[i + 10] << 8 | p[i + 11];
            i += 12;
            if (p[i - 11] == 0) {
                check(id != 0 && len <= PL__MUX_SEND_FRAME && n - i >= len);
                i += len;
            } else if (p[i - 11] == 1) {
                check(id != 0);
            }
        } else {
            uint64_t hdr = get_uvarint(p, n, &i);
            uint64_t len = get_uvarint(p, n, &i);
            check((hdr & 7) <= 6 && len <= PL__MUX_SEND_FRAME && n - i >= len);
            if ((hdr & 7) != 0 && (hdr & 7) != 1 && (hdr & 7) != 2) check(len == 0);
            i += (size_t)len;
        }
    }
}

static void drain_output(harness *h, bool all) {
    const uint8_t *d;
    size_t n = pl__mux_output(h->m, &d);
    check(n <= h->lim.max_output + PL__MUX_CTRL_SLACK + 64);
    if (!n || !all) return;
    check_output(d, n);
    pl__mux_output_done(h->m, n);
}

static void app_step(harness *h) {
    uint32_t handle;
    size_t taken;
    pl_err e;
    switch (rnd(h) % 12) {
    case 0:
        e = pl__mux_open(h->m, &handle);
        check(e == PL_OK || e == PL_ERR_P2P_STREAM_LIMIT || e == PL_ERR_P2P_GOAWAY ||
              e == PL_ERR_STATE || e == PL_ERR_P2P_BACKPRESSURE || e == PL_ERR_NOMEM);
        if (e == PL_OK) {
            check(handle != 0);
            track(h, handle);
            remember(h, handle);
        }
        break;
    case 1:
    case 2:
    case 3: {
        size_t len = (size_t)(rnd(h) % sizeof h->scratch);
        size_t before = h->m->out_len - h->m->out_head;
        e = pl__mux_write(h->m, some_handle(h), h->scratch, len, &taken);
        check(e == PL_OK || e == PL_ERR_NOT_FOUND || e == PL_ERR_CLOSED || e == PL_ERR_STATE ||
              e == PL_ERR_NOMEM);
        check(taken <= len && (e == PL_OK || taken == 0 || e == PL_ERR_NOMEM));
        if (taken) check(before < h->lim.max_output);
        check(h->m->out_len - h->m->out_head <= h->lim.max_output + PL__MUX_CTRL_SLACK + 64);
        break;
    }
    case 4:
        e = pl__mux_close_write(h->m, some_handle(h));
        check(e == PL_OK || e == PL_ERR_NOT_FOUND || conn_error(e));
        break;
    case 5:
        handle = some_handle(h);
        e = pl__mux_reset(h->m, handle);
        check(e == PL_OK || e == PL_ERR_NOT_FOUND || conn_error(e));
        if (e == PL_OK) track(h, handle)->dead = true; /* no event may follow */
        break;
    case 6: {
        handle = some_handle(h);
        tracked *t = track(h, handle);
        size_t n = (size_t)(rnd(h) % 100000);
        if (n > t->unconsumed) n = t->unconsumed;
        pl__mux_consumed(h->m, handle, n);
        t->unconsumed -= n;
        break;
    }
    case 7:
        pl__mux_ping(h->m, h->now);
        break;
    case 8:
        if (rnd(h) % 8 == 0) pl__mux_go_away(h->m);
        break;
    case 9: {
        static const int64_t steps[4] = {0, 1, 60, 40000};
        h->now += steps[rnd(h) % 4];
        int64_t dl = pl__mux_next_deadline(h->m);
        pl__mux_on_timer(h->m, h->now);
        if (dl <= h->now) check(pl__mux_next_deadline(h->m) > h->now);
        break;
    }
    case 10:
        drain_output(h, false);
        break;
    default:
        drain_output(h, true);
        break;
    }
    drain_events(h, true);
    check(pl__mux_stream_count(h->m) <= 2 * (size_t)h->lim.max_streams);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    harness *h = calloc(1, sizeof *h);
    if (!h) return 0;
    uint8_t cfg = data[0];
    h->rng = UINT64_C(0x9E3779B97F4A7C15) ^ ((uint64_t)(cfg >> 3) << 32) ^ size;
    h->now = 1000000;
    h->consume_all = cfg & 4;
    pl__mux_limits small = {.max_streams = 3,
                            .max_stream_buffer = 4096,
                            .max_output = 2048,
                            .ping_interval_ms = 100,
                            .ping_timeout_ms = 50};
    check(pl__mux_new(&h->m, FUZZ_KIND, cfg & 1, (cfg & 2) ? &small : NULL, h->now) == PL_OK);
    h->lim = h->m->lim;
    for (size_t i = 0; i < sizeof h->scratch; i++)
        h->scratch[i] = (uint8_t)i;

    size_t off = 1;
    while (off < size) {
        size_t piece = 1 + (size_t)(rnd(h) % ((size_t)1 << (rnd(h) % 13)));
        if (piece > size - off) piece = size - off;
        pl_err e = pl__mux_recv(h->m, data + off, piece, h->now);
        off += piece;
        if (h->failed != PL_OK)
            check(e == h->failed);
        else
            check(e == PL_OK || conn_error(e));
        drain_events(h, e == PL_OK);
        if (e != PL_OK) check(h->n_failed == 1 && h->failed == e);
        for (int k = (int)(rnd(h) % 3); k > 0; k--)
            app_step(h);
    }
    drain_output(h, true);
    drain_events(h, false);
    check(h->n_failed <= 1);
    pl__mux_free(h->m);
    free(h);
    return 0;
}
