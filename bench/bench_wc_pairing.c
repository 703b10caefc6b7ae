/* SPDX-License-Identifier: Apache-2.0 */
/* Pairing round trip C<->C over one `pairlink relay` (issue 3, section 6).
 *
 * Two pl_wc_client instances (A and B) on one libuv loop, each with its own
 * WebSocket to the relay and an in-memory store. One round trip:
 *
 *   A: pl_wc_create()      -> URI, topic
 *   B: pl_wc_pair(URI)
 *   A: pl_wc_ping(topic)   ... until A's PL_WC_EV_PONG for that ping id
 *
 * timed on CLOCK_MONOTONIC from just before create to the PONG callback.
 * The three calls are synchronous and only queue frames (the client API
 * has no "subscribed" acknowledgement to wait for), so they go out in the
 * same loop turn; the relay keeps the ping in the topic's mailbox if it
 * comes before B's subscribe. Then, untimed, A deletes the pairing and the
 * bench waits for B's DELETED event, so that every iteration starts with no
 * pairings and both sockets open; interop/bench-wc-pairing.mjs does the
 * same with two JS Core instances.
 *
 * Also reported: `cold`, from the creation of both clients (connects
 * included) to the first PONG.
 *
 *   bench_wc_pairing --relay ws://127.0.0.1:PORT [-n 50] [--warmup 3]
 *
 * Prints median / p95 / min / max and one machine-readable line
 *   RESULT c n=<N> median_ms=.. p95_ms=.. min_ms=.. max_ms=.. calls_median_ms=.. cold_ms=..
 * Without --relay it prints that it was skipped and exits 0 (`make bench`
 * runs it through scripts/bench-wc.sh, which starts the relay).
 * Bounded: each step has a 15 s limit, after which it exits with status 1.
 * BENCH_DEBUG=1 prints every engine event on stderr. */
#include "pairlink/wc_client.h"

#include <getopt.h>
#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#define STEP_LIMIT_MS 15000

typedef struct bench bench;

typedef struct side {
    bench *b;
    const char *name;
    pl_wc_client *client;
    bool connected;
} side;

typedef enum { ST_CONNECTING, ST_ROUND, ST_CLEANUP, ST_STEADY, ST_DONE } state;

struct bench {
    uv_loop_t loop;
    uv_timer_t step;    /* starts the next phase outside engine callbacks */
    uv_timer_t limit;   /* per-step watchdog */
    side a, b;
    state st;
    int iter, warmup, n;
    double *samples;    /* ms, one per measured iteration */
    double *calls;      /* ms spent inside create + pair + ping, same iterations */
    double t_start, t_new, cold_ms;
    char topic[PL_TOPIC_HEX_SIZE];
    pl_rpc_id ping_id;
    /* --steady N: then N pings in a row on one pairing, each timed */
    int steady_n, steady_i;
    double *steady;
    int status;
    int closing;
};

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void finish(bench *b, int status);

static void arm_limit(bench *b);

static void on_limit(uv_timer_t *t) {
    bench *b = t->data;
    fprintf(stderr, "bench_wc_pairing: step timed out (state %d, iteration %d, topic %s)\n", (int)b->st,
            b->iter, b->topic);
    finish(b, 1);
}

static void arm_limit(bench *b) { uv_timer_start(&b->limit, on_limit, STEP_LIMIT_MS, 0); }

static void schedule(bench *b, uv_timer_cb cb) { uv_timer_start(&b->step, cb, 0, 0); }

static void start_round(uv_timer_t *t);

static void start_cleanup(uv_timer_t *t) {
    bench *b = t->data;
    b->st = ST_CLEANUP;
    arm_limit(b);
    pl_err e = pl_wc_delete(pl_wc_client_engine(b->a.client), b->topic, pl_wc_client_now(b->a.client));
    if (e != PL_OK) {
        fprintf(stderr, "bench_wc_pairing: delete: %s\n", pl_errname(e));
        finish(b, 1);
    }
}

#define STEADY_WARMUP 10

/* One ping on the last round's pairing (kept: no cleanup in this phase). */
static void steady_ping(uv_timer_t *t) {
    bench *b = t->data;
    if (b->steady_i >= STEADY_WARMUP + b->steady_n) {
        finish(b, 0);
        return;
    }
    arm_limit(b);
    b->t_start = now_ms();
    pl_err e = pl_wc_ping(pl_wc_client_engine(b->a.client), b->topic, pl_wc_client_now(b->a.client),
                          &b->ping_id);
    if (e != PL_OK) {
        fprintf(stderr, "bench_wc_pairing: steady ping %d: %s\n", b->steady_i, pl_errname(e));
        finish(b, 1);
    }
}

static void start_round(uv_timer_t *t) {
    bench *b = t->data;
    if (b->iter >= b->warmup + b->n) {
        if (b->steady_n == 0) {
            finish(b, 0);
            return;
        }
        /* steady pings: one pairing, made here untimed, then ping after ping */
        b->st = ST_STEADY;
        arm_limit(b);
        pl_wc_engine *ea = pl_wc_client_engine(b->a.client);
        char *uri = NULL;
        pl_err e = pl_wc_create(ea, NULL, 0, pl_wc_client_now(b->a.client), &uri, b->topic);
        if (e == PL_OK)
            e = pl_wc_pair(pl_wc_client_engine(b->b.client), uri, strlen(uri),
                           pl_wc_client_now(b->b.client), NULL);
        if (uri) pl_free_secret(uri, strlen(uri));
        if (e != PL_OK) {
            fprintf(stderr, "bench_wc_pairing: steady pairing: %s\n", pl_errname(e));
            finish(b, 1);
            return;
        }
        schedule(b, steady_ping);
        return;
    }
    b->st = ST_ROUND;
    arm_limit(b);
    pl_wc_engine *ea = pl_wc_client_engine(b->a.client);
    pl_wc_engine *eb = pl_wc_client_engine(b->b.client);
    char *uri = NULL;
    char btopic[PL_TOPIC_HEX_SIZE];
    if (b->iter > 0) b->t_start = now_ms(); /* iteration 0 is timed from client creation */
    pl_err e = pl_wc_create(ea, NULL, 0, pl_wc_client_now(b->a.client), &uri, b->topic);
    if (e == PL_OK) e = pl_wc_pair(eb, uri, strlen(uri), pl_wc_client_now(b->a.client), btopic);
    if (uri) pl_free_secret(uri, strlen(uri));
    if (e == PL_OK) e = pl_wc_ping(ea, b->topic, pl_wc_client_now(b->a.client), &b->ping_id);
    if (b->iter >= b->warmup) b->calls[b->iter - b->warmup] = now_ms() - b->t_start;
    if (e != PL_OK) {
        fprintf(stderr, "bench_wc_pairing: round %d: %s\n", b->iter, pl_errname(e));
        finish(b, 1);
    }
}

/* Engine callbacks must not call back into the engine: the next phase is
 * started from a zero timer. */
static void on_event(void *ud, pl_wc_client *c, const pl_wc_event *ev) {
    (void)c;
    side *s = ud;
    bench *b = s->b;
    if (getenv("BENCH_DEBUG"))
        fprintf(stderr, "%.3f %s st=%d iter=%d ev=%d topic=%.8s by_peer=%d err=%s\n", now_ms(), s->name,
                (int)b->st, b->iter, (int)ev->kind, ev->topic, ev->by_peer, pl_errname(ev->err));
    if (b->st == ST_STEADY && s == &b->a && ev->kind == PL_WC_EV_PONG &&
        !strcmp(ev->topic, b->topic) && pl_rpc_id_equal(&ev->id, &b->ping_id)) {
        double ms = now_ms() - b->t_start;
        if (b->steady_i >= STEADY_WARMUP) b->steady[b->steady_i - STEADY_WARMUP] = ms;
        b->steady_i++;
        schedule(b, steady_ping);
    } else if (b->st == ST_ROUND && s == &b->a && ev->kind == PL_WC_EV_PONG &&
        !strcmp(ev->topic, b->topic) && pl_rpc_id_equal(&ev->id, &b->ping_id)) {
        double ms = now_ms() - b->t_start;
        if (b->iter == 0) b->cold_ms = ms;
        if (b->iter >= b->warmup) b->samples[b->iter - b->warmup] = ms;
        b->iter++;
        /* Not at once: request ids are unix_ms * 1000 + a random 0..999, and
         * the engine drops a request whose (topic, id) it has already seen,
         * so a delete sent in the same millisecond as the ping is lost one
         * time in a thousand (reported; see docs/performance.md). In a later
         * millisecond the ids cannot collide. Untimed. */
        uv_timer_start(&b->step, start_cleanup, 2, 0);
    } else if (b->st == ST_CLEANUP && s == &b->b && ev->kind == PL_WC_EV_DELETED &&
               !strcmp(ev->topic, b->topic)) {
        schedule(b, start_round);
    } else if (ev->kind == PL_WC_EV_REQUEST_TIMEOUT || ev->kind == PL_WC_EV_BAD_MESSAGE ||
               ev->kind == PL_WC_EV_EXPIRED) {
        fprintf(stderr, "bench_wc_pairing: %s: unexpected event %d (%s)\n", s->name, (int)ev->kind,
                pl_errname(ev->err));
        finish(b, 1);
    }
}

static void on_relay_state(void *ud, pl_wc_client *c, pl_transport_state st, pl_err err) {
    (void)c;
    side *s = ud;
    bench *b = s->b;
    if (st == PL_TRANSPORT_CONNECTED) {
        s->connected = true;
        if (b->st == ST_CONNECTING && b->a.connected && b->b.connected) schedule(b, start_round);
        return;
    }
    /* A benchmark with a reconnect in it measures something else. */
    fprintf(stderr, "bench_wc_pairing: %s: relay %s: %s\n", s->name,
            st == PL_TRANSPORT_CLOSED ? "failed" : "disconnected", pl_errname(err));
    if (b->st != ST_DONE) finish(b, 1);
}

static void on_client_closed(void *ud) {
    side *s = ud;
    s->client = NULL;
    s->b->closing--;
}

static void finish(bench *b, int status) {
    if (b->st == ST_DONE) return;
    b->st = ST_DONE;
    b->status = status;
    uv_timer_stop(&b->step);
    uv_timer_stop(&b->limit);
    uv_close((uv_handle_t *)&b->step, NULL);
    uv_close((uv_handle_t *)&b->limit, NULL);
    side *sides[] = {&b->a, &b->b};
    for (int i = 0; i < 2; i++)
        if (sides[i]->client) {
            b->closing++;
            pl_wc_client_close(sides[i]->client, 0, on_client_closed);
        }
}

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* Nearest-rank percentile of sorted xs (the JS side computes it the same way). */
static double pct(const double *xs, int n, double p) {
    int k = (int)((p / 100.0) * n + 0.999999999) - 1;
    if (k < 0) k = 0;
    if (k > n - 1) k = n - 1;
    return xs[k];
}

static pl_err start_side(bench *b, side *s, const char *name, const char *url) {
    s->b = b;
    s->name = name;
    pl_wc_client_opts o = {
        .relay_url = url,
        .store_path = ":memory:",
        .on_event = on_event,
        .on_transport_state = on_relay_state,
        .ud = s,
    };
    return pl_wc_client_new(&s->client, &b->loop, &o);
}

static void usage(void) {
    fprintf(stderr, "usage: bench_wc_pairing --relay ws://127.0.0.1:PORT [-n ITER] [--warmup W]"
                    " [--steady N]\n");
}

static void quiet_lws(void) {
    /* The clients print nothing; libwebsockets' own notices are the
     * application's to silence (relay_client.h). */
    lws_set_log_level(LLL_ERR, NULL);
}

int main(int argc, char **argv) {
    const char *url = NULL;
    bench b;
    memset(&b, 0, sizeof b);
    b.n = 50;
    b.warmup = 3;
    static const struct option longopts[] = {
        {"relay", required_argument, NULL, 'r'},
        {"warmup", required_argument, NULL, 'w'},
        {"steady", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "n:", longopts, NULL)) != -1) {
        switch (c) {
        case 'r': url = optarg; break;
        case 'n': b.n = atoi(optarg); break;
        case 'w': b.warmup = atoi(optarg); break;
        case 's': b.steady_n = atoi(optarg); break;
        case 'h': usage(); return 0;
        default: usage(); return 2;
        }
    }
    if (!url) {
        printf("bench_wc_pairing: skipped (needs --relay ws://...; scripts/bench-wc.sh starts a relay)\n");
        return 0;
    }
    /* Iteration 0 is the cold one (connects included); it is never measured. */
    if (b.n < 1 || b.n > 100000 || b.warmup < 1 || b.warmup > 1000 || b.steady_n < 0 ||
        b.steady_n > 1000000) {
        usage();
        return 2;
    }
    if (pl_init() != PL_OK) return 1;
    quiet_lws();
    b.samples = calloc((size_t)b.n, sizeof *b.samples);
    b.calls = calloc((size_t)b.n, sizeof *b.calls);
    b.steady = calloc((size_t)b.steady_n + 1, sizeof *b.steady);
    if (!b.samples || !b.calls || !b.steady || uv_loop_init(&b.loop) != 0) return 1;
    uv_timer_init(&b.loop, &b.step);
    uv_timer_init(&b.loop, &b.limit);
    b.step.data = b.limit.data = &b;
    b.st = ST_CONNECTING;
    b.t_start = now_ms();
    arm_limit(&b);
    pl_err e = start_side(&b, &b.a, "A", url);
    if (e == PL_OK) e = start_side(&b, &b.b, "B", url);
    if (e != PL_OK) {
        fprintf(stderr, "bench_wc_pairing: client: %s\n", pl_errname(e));
        finish(&b, 1);
    }
    uv_run(&b.loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&b.loop) != 0) fprintf(stderr, "bench_wc_pairing: loop not empty at exit\n");

    if (b.status == 0) {
        qsort(b.samples, (size_t)b.n, sizeof *b.samples, cmp_double);
        double med = pct(b.samples, b.n, 50), p95 = pct(b.samples, b.n, 95);
        printf("c total    median %.3f ms  p95 %.3f ms  min %.3f ms  max %.3f ms\n", med, p95,
               b.samples[0], b.samples[b.n - 1]);
        qsort(b.calls, (size_t)b.n, sizeof *b.calls, cmp_double);
        double cmed = pct(b.calls, b.n, 50);
        printf("c calls    median %.3f ms  (inside create + pair + ping; the rest is the relay, the\n"
               "           loop and the answer's processing)\n", cmed);
        printf("RESULT c n=%d median_ms=%.3f p95_ms=%.3f min_ms=%.3f max_ms=%.3f calls_median_ms=%.3f"
               " cold_ms=%.3f\n",
               b.n, med, p95, b.samples[0], b.samples[b.n - 1], cmed, b.cold_ms);
        if (b.steady_n > 0) {
            int n = b.steady_n;
            qsort(b.steady, (size_t)n, sizeof *b.steady, cmp_double);
            printf("c steady   ping round trip on one pairing: median %.3f ms  p95 %.3f ms  min %.3f"
                   " ms\n",
                   pct(b.steady, n, 50), pct(b.steady, n, 95), b.steady[0]);
            printf("RESULT steady n=%d median_ms=%.3f p95_ms=%.3f min_ms=%.3f max_ms=%.3f\n", n,
                   pct(b.steady, n, 50), pct(b.steady, n, 95), b.steady[0], b.steady[n - 1]);
        }
    }
    free(b.steady);
    free(b.samples);
    free(b.calls);
    return b.status;
}
