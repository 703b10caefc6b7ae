/* SPDX-License-Identifier: Apache-2.0 */
/* Waku relay benchmarks against a relaying node in another process (run by
 * scripts/bench-waku.sh, which starts `pairlink waku node` or js-waku's
 * waku-node.mjs as that node; results in docs/performance.md).
 *
 *   bench_waku line RELAY_MULTIADDR [--size B] [--rate R] [--seconds S] [--burst N]
 *     A publisher and a subscriber node in this process (one loop, one
 *     clock), both connected only to the relay: the 3-node line publisher -
 *     relay - subscriber. Phase 1 publishes B-byte payloads at R per second
 *     for S seconds and reports the latency publish -> delivery (p50, p99,
 *     max); phase 2 publishes N messages at once and reports messages per
 *     second until the last one is delivered. One JSON line.
 *   bench_waku peers MULTIADDR [--n N] [--hold S]
 *     N nodes in this process, each connected to MULTIADDR; prints
 *     {"event":"ready"} once all N are relay peers of it, then holds S
 *     seconds (the caller reads the node's RSS meanwhile).
 * With no arguments it prints the usage and exits 0 (run-bench.sh runs every
 * bench; this one needs its relay: scripts/bench-waku.sh). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "pairlink/waku_node.h"

#define CT "/pairlink/1/bench/proto"
#define TOPIC "/waku/2/rs/16/64"

typedef struct bench {
    uv_loop_t loop;
    pl_driver *drv;
    uv_timer_t tick, guard;
    pl_waku_node *pub, *sub;
    size_t size;
    unsigned rate, seconds, burst;
    /* phase 1 */
    uint32_t sent, got;
    uint64_t *lat_ns; /* by sequence */
    uint64_t *sent_ns;
    uint64_t t_start;
    int phase; /* 0 waiting for the mesh, 1 paced, 2 burst, 3 done */
    uint32_t phase1_n;
    uint64_t burst_t0, burst_t1;
    uint32_t burst_got;
    int closed;
    bool timed_out;
} bench;

static uint64_t now_ns(void) {
    return uv_hrtime();
}

static void on_message(void *ud, pl_waku_node *n, const pl_waku_delivery *d) {
    (void)n;
    bench *b = ud;
    if (d->msg->payload_len < 4) return;
    uint32_t seq;
    memcpy(&seq, d->msg->payload, 4);
    uint64_t t = now_ns();
    if (seq < b->phase1_n) {
        if (!b->lat_ns[seq]) b->lat_ns[seq] = t - b->sent_ns[seq] + 1;
        b->got++;
    } else {
        b->burst_got++;
        b->burst_t1 = t;
    }
}

static void publish_seq(bench *b, uint32_t seq) {
    uint8_t *p = calloc(1, b->size);
    memcpy(p, &seq, 4);
    for (size_t i = 4; i < b->size; i++)
        p[i] = (uint8_t)(i * 31 + seq);
    if (seq < b->phase1_n) b->sent_ns[seq] = now_ns();
    pl_waku_publish_result r;
    pl_err e = pl_waku_node_publish(b->pub, CT, p, b->size, NULL, &r);
    if (e != PL_OK || r.queued)
        fprintf(stderr, "bench_waku: publish %u: %s%s\n", seq, pl_errname(e),
                r.queued ? " (queued)" : "");
    free(p);
}

static void on_closed(void *ud) {
    bench *b = ud;
    if (++b->closed == 2) {
        uv_close((uv_handle_t *)&b->tick, NULL);
        uv_close((uv_handle_t *)&b->guard, NULL);
        pl_driver_close(b->drv, NULL, NULL);
    }
}

static void finish(bench *b) {
    if (b->phase == 3) return;
    b->phase = 3;
    uv_timer_stop(&b->tick);
    pl_waku_node_close(b->pub, on_closed, b);
    pl_waku_node_close(b->sub, on_closed, b);
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void on_tick(uv_timer_t *t) {
    bench *b = t->data;
    uint64_t now = now_ns();
    switch (b->phase) {
    case 0:
        /* the relay must have both in its mesh: wait until each has the relay in its own */
        if (pl_waku_node_mesh_size(b->pub, TOPIC) >= 1 &&
            pl_waku_node_mesh_size(b->sub, TOPIC) >= 1) {
            if (!b->t_start)
                b->t_start = now + 1500000000ull; /* a heartbeat more for the relay's side */
            if (now >= b->t_start) {
                b->phase = 1;
                b->t_start = now;
            }
        }
        break;
    case 1: {
        uint64_t due = (uint64_t)((double)(now - b->t_start) * b->rate / 1e9);
        while (b->sent < b->phase1_n && b->sent <= due)
            publish_seq(b, b->sent++);
        if (b->sent == b->phase1_n &&
            (b->got == b->phase1_n ||
             now - b->t_start > (uint64_t)(b->seconds + 5) * 1000000000ull)) {
            b->phase = 2;
            b->burst_t0 = now_ns();
            for (uint32_t i = 0; i < b->burst; i++)
                publish_seq(b, b->phase1_n + i);
        }
        break;
    }
    case 2:
        if (b->burst_got >= b->burst || now - b->burst_t0 > 60000000000ull) finish(b);
        break;
    default:
        break;
    }
}

static void on_guard(uv_timer_t *t) {
    bench *b = t->data;
    b->timed_out = true;
    finish(b);
}

static int line(const char *relay, size_t size, unsigned rate, unsigned seconds, unsigned burst) {
    static bench b;
    b.size = size < 8 ? 8 : size;
    b.rate = rate;
    b.seconds = seconds;
    b.burst = burst;
    b.phase1_n = rate * seconds;
    b.lat_ns = calloc(b.phase1_n + 1, sizeof *b.lat_ns);
    b.sent_ns = calloc(b.phase1_n + 1, sizeof *b.sent_ns);
    uv_loop_init(&b.loop);
    if (pl_driver_new(&b.drv, &b.loop) != PL_OK) return 1;
    pl_waku_node_opts o;
    pl_waku_node_opts_init(&o);
    const char *peers[] = {relay};
    o.peers = peers;
    o.n_peers = 1;
    o.publish_queue_max = burst + 16;
    o.publish_queue_bytes = (burst + 16) * (size + 256);
    o.ud = &b;
    if (pl_waku_node_new(&b.pub, b.drv, &o) != PL_OK) return 1;
    o.on_message = on_message;
    if (pl_waku_node_new(&b.sub, b.drv, &o) != PL_OK) return 1;
    if (pl_waku_node_subscribe(b.sub, CT) != PL_OK) return 1;
    uv_timer_init(&b.loop, &b.tick);
    uv_timer_init(&b.loop, &b.guard);
    b.tick.data = b.guard.data = &b;
    uv_timer_start(&b.tick, on_tick, 1, 1);
    uv_timer_start(&b.guard, on_guard, (uint64_t)(seconds + 90) * 1000, 0);
    uv_run(&b.loop, UV_RUN_DEFAULT);
    uv_loop_close(&b.loop);

    uint64_t *l = malloc((b.phase1_n + 1) * sizeof *l);
    size_t n = 0;
    for (uint32_t i = 0; i < b.phase1_n; i++)
        if (b.lat_ns[i]) l[n++] = b.lat_ns[i] - 1;
    qsort(l, n, sizeof *l, cmp_u64);
    double p50 = n ? (double)l[n / 2] / 1e6 : -1,
           p99 = n ? (double)l[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1] / 1e6 : -1;
    double mx = n ? (double)l[n - 1] / 1e6 : -1;
    double secs = b.burst_t1 > b.burst_t0 ? (double)(b.burst_t1 - b.burst_t0) / 1e9 : 0;
    printf("{\"event\":\"bench-line\",\"impl\":\"pairlink\",\"size\":%zu,\"rate\":%u,\"sent\":%u,"
           "\"delivered\":%zu,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,\"burst\":%u,"
           "\"burst_delivered\":%u,\"burst_seconds\":%.3f,\"msgs_per_s\":%.0f,\"timed_out\":%s}\n",
           b.size, rate, b.phase1_n, n, p50, p99, mx, burst, b.burst_got, secs,
           secs > 0 ? b.burst_got / secs : 0, b.timed_out ? "true" : "false");
    free(l);
    free(b.lat_ns);
    free(b.sent_ns);
    return b.timed_out ? 3 : 0;
}

/* ---- peers ---- */

typedef struct peers {
    uv_loop_t loop;
    pl_driver *drv;
    uv_timer_t hold;
    pl_waku_node **n;
    unsigned count, up, closed;
    unsigned hold_s;
    bool ready;
} peers;

static void on_peer_event(void *ud, pl_waku_node *n, const pl_waku_event *ev) {
    (void)n;
    peers *p = ud;
    if (ev->kind == PL_WAKU_EV_PEER_UP) p->up++;
    if (!p->ready && p->up >= p->count) {
        p->ready = true;
        printf("{\"event\":\"ready\",\"peers\":%u}\n", p->count);
        fflush(stdout);
    }
}

static void peer_closed(void *ud) {
    peers *p = ud;
    if (++p->closed == p->count) {
        uv_close((uv_handle_t *)&p->hold, NULL);
        pl_driver_close(p->drv, NULL, NULL);
    }
}

static void on_hold(uv_timer_t *t) {
    peers *p = t->data;
    for (unsigned i = 0; i < p->count; i++)
        pl_waku_node_close(p->n[i], peer_closed, p);
}

static int run_peers(const char *addr, unsigned count, unsigned hold) {
    static peers p;
    p.count = count;
    p.hold_s = hold;
    p.n = calloc(count, sizeof *p.n);
    uv_loop_init(&p.loop);
    if (pl_driver_new(&p.drv, &p.loop) != PL_OK) return 1;
    uv_timer_init(&p.loop, &p.hold);
    p.hold.data = &p;
    pl_waku_node_opts o;
    pl_waku_node_opts_init(&o);
    const char *peers_[] = {addr};
    o.peers = peers_;
    o.n_peers = 1;
    o.on_event = on_peer_event;
    o.ud = &p;
    for (unsigned i = 0; i < count; i++)
        if (pl_waku_node_new(&p.n[i], p.drv, &o) != PL_OK) return 1;
    /* hold for S seconds after the start (ready comes first) */
    uv_timer_start(&p.hold, on_hold, (uint64_t)hold * 1000, 0);
    uv_run(&p.loop, UV_RUN_DEFAULT);
    uv_loop_close(&p.loop);
    free(p.n);
    return p.ready ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        printf("usage: bench_waku line RELAY_MULTIADDR [--size B] [--rate R] [--seconds S] "
               "[--burst N]\n"
               "       bench_waku peers MULTIADDR [--n N] [--hold S]\n"
               "(needs a relay node: scripts/bench-waku.sh runs it)\n");
        return 0;
    }
    if (pl_init() != PL_OK) return 1;
    signal(SIGPIPE, SIG_IGN);
    unsigned long size = 1024, rate = 200, seconds = 10, burst = 2000, n = 10, hold = 20;
    for (int i = 3; i + 1 < argc; i += 2) {
        unsigned long v = strtoul(argv[i + 1], NULL, 10);
        if (!strcmp(argv[i], "--size"))
            size = v;
        else if (!strcmp(argv[i], "--rate"))
            rate = v;
        else if (!strcmp(argv[i], "--seconds"))
            seconds = v;
        else if (!strcmp(argv[i], "--burst"))
            burst = v;
        else if (!strcmp(argv[i], "--n"))
            n = v;
        else if (!strcmp(argv[i], "--hold"))
            hold = v;
    }
    if (!strcmp(argv[1], "line"))
        return line(argv[2], size, (unsigned)rate, (unsigned)seconds, (unsigned)burst);
    if (!strcmp(argv[1], "peers")) return run_peers(argv[2], (unsigned)n, (unsigned)hold);
    return 2;
}
