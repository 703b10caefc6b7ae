/* SPDX-License-Identifier: Apache-2.0 */
/* Node-manager start-up with many persisted counterparties over Waku
 * (issue 10, "Measured"): the time from a node manager's start to Noise
 * sessions with every one of N stored apps, when everything travels as
 * WakuMessages through a Waku relay node. The Waku counterpart of
 * bench_nm_startup.c (which measures the same over a WalletConnect relay);
 * driven by scripts/bench-nm-waku.sh, which runs, as separate processes on
 * 127.0.0.1:
 *
 *   bench_nm_startup seed DIR N       the stores (shared with the relay bench)
 *   pairlink waku node                the relay node in the middle
 *   bench_nm_waku apps DIR N PEER [SECONDS]
 *       the N apps: N pl_nm_node objects (the stock app runtime) on one loop
 *       and one driver. They share ONE Waku node (one peer id, dialling
 *       PEER): each app's transport is an endpoint of a fan-out written here
 *       over a Waku transport (pl_waku_transport_new), which delivers each
 *       content topic to the apps subscribed to it. N Waku nodes would put N
 *       peers on the relay node, most outside its mesh, and measure
 *       gossipsub's lazy repair instead. Prints "connected T" once the node
 *       has its relay peer and "established K T" as sessions come up.
 *   bench_nm_waku nm DIR PEER [--timeout S]
 *       the node manager: the stock pl_nm_node with its own Waku transport
 *       (pl_nm_node_opts.waku, its peer id from DIR/nm.db.p2p.key); exits
 *       when it has a session with every stored app (status 0) or after S
 *       seconds (status 1), printing one "result" line of key=value pairs
 *       (times in ms since main() was entered).
 *
 * Without arguments it prints where to start and exits 0 (`make bench` runs
 * every bench_* program bare). Not part of `make test`. */
#include "pairlink/driver.h"
#include "pairlink/nm_node.h"
#include "pairlink/nm_session.h"
#include "pairlink/transport.h"
#include "pairlink/waku_node.h"
#include "pairlink/waku_transport.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <uv.h>

#define MAX_PEERS 4096

static double t_start;

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double since_ms(void) {
    return (mono_s() - t_start) * 1e3;
}

static double cpu_ms(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

static long rss_kib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* ---- the fan-out: many transports over one Waku transport ---- */

typedef struct fan fan;

typedef struct ep {
    pl_transport t; /* first */
    fan *f;
    pl_driver_call done_call;
    void (*done)(pl_transport *t);
} ep;

typedef struct sub {
    struct sub *next;
    ep *e;
    char topic[PL_TRANSPORT_TOPIC_MAX + 1];
} sub;

#define FAN_BUCKETS 16384

struct fan {
    pl_transport *shared;
    pl_transport_state state;
    sub *b[FAN_BUCKETS];
    ep **eps;
    size_t neps;
};

static size_t bucket(const char *topic) {
    uint64_t h = 1469598103934665603u; /* FNV-1a: the topics are ours, not hostile */
    for (const char *p = topic; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211u;
    return (size_t)(h % FAN_BUCKETS);
}

static size_t subscribers(fan *f, const char *topic) {
    size_t k = 0;
    for (sub *s = f->b[bucket(topic)]; s; s = s->next)
        k += !strcmp(s->topic, topic);
    return k;
}

static pl_err ep_publish(pl_transport *t, const char *topic, const uint8_t *data, size_t len,
                         const pl_publish_opts *opts) {
    return pl_transport_publish(((ep *)t)->f->shared, topic, data, len, opts);
}

static pl_err ep_subscribe(pl_transport *t, const char *topic) {
    ep *e = (ep *)t;
    fan *f = e->f;
    size_t b = bucket(topic);
    for (sub *s = f->b[b]; s; s = s->next)
        if (s->e == e && !strcmp(s->topic, topic)) return PL_OK;
    sub *s = calloc(1, sizeof *s);
    if (!s) return PL_ERR_NOMEM;
    s->e = e;
    snprintf(s->topic, sizeof s->topic, "%s", topic);
    bool first = subscribers(f, topic) == 0;
    s->next = f->b[b];
    f->b[b] = s;
    return first ? pl_transport_subscribe(f->shared, topic) : PL_OK;
}

static void remove_subs(ep *e, const char *topic) {
    fan *f = e->f;
    for (size_t b = topic ? bucket(topic) : 0; b < (topic ? bucket(topic) + 1 : FAN_BUCKETS); b++)
        for (sub **pp = &f->b[b]; *pp;) {
            sub *s = *pp;
            if (s->e == e && (!topic || !strcmp(s->topic, topic))) {
                *pp = s->next;
                if (subscribers(f, s->topic) == 0 && !pl_transport_is_closing(f->shared))
                    (void)pl_transport_unsubscribe(f->shared, s->topic);
                free(s);
            } else {
                pp = &s->next;
            }
        }
}

static pl_err ep_unsubscribe(pl_transport *t, const char *topic) {
    remove_subs((ep *)t, topic);
    return PL_OK;
}

static pl_transport_state ep_state(const pl_transport *t, pl_err *err) {
    *err = PL_OK;
    return ((const ep *)t)->f->state;
}

static size_t ep_pending(const pl_transport *t) {
    (void)t;
    return 0; /* the shared node's queue is the fan's, flushed when it closes */
}

static void ep_done(pl_driver_call *c) {
    ep *e = c->data;
    e->done(&e->t);
}

static void ep_close(pl_transport *t, void (*done)(pl_transport *t)) {
    ep *e = (ep *)t;
    remove_subs(e, NULL);
    fan *f = e->f;
    for (size_t i = 0; i < f->neps; i++)
        if (f->eps[i] == e) f->eps[i] = f->eps[--f->neps];
    e->done = done;
    e->done_call.fn = ep_done;
    e->done_call.data = e;
    pl_driver_defer(t->driver, &e->done_call);
}

static void ep_free(pl_transport *t) {
    free(t);
}

static const pl_transport_ops ep_ops = {.name = "fan-out",
                                        .publish = ep_publish,
                                        .subscribe = ep_subscribe,
                                        .unsubscribe = ep_unsubscribe,
                                        .state = ep_state,
                                        .pending = ep_pending,
                                        .close = ep_close,
                                        .free = ep_free};

static void fan_message(void *ud, pl_transport *t, const char *topic, const uint8_t *data,
                        size_t len, const pl_delivery_info *info) {
    (void)t;
    fan *f = ud;
    /* Deliveries may close endpoints and unsubscribe: collect first. */
    ep *to[8];
    size_t n = 0;
    for (sub *s = f->b[bucket(topic)]; s && n < 8; s = s->next)
        if (!strcmp(s->topic, topic)) to[n++] = s->e;
    for (size_t i = 0; i < n; i++)
        pl_transport_deliver(&to[i]->t, topic, data, len, info);
}

static size_t n_connected_reports;

static void fan_state(void *ud, pl_transport *t, pl_transport_state st, pl_err err) {
    (void)t;
    fan *f = ud;
    f->state = st;
    if (st == PL_TRANSPORT_CONNECTED && n_connected_reports++ == 0)
        printf("connected %.3f\n", since_ms() / 1e3);
    for (size_t i = 0; i < f->neps; i++)
        pl_transport_report_state(&f->eps[i]->t, st, err);
}

static pl_err fan_endpoint(fan *f, pl_driver *d, pl_transport **out) {
    ep *e = calloc(1, sizeof *e);
    if (!e) return PL_ERR_NOMEM;
    e->f = f;
    pl_transport_init(&e->t, &ep_ops, d, NULL);
    f->eps[f->neps++] = e;
    *out = &e->t;
    return PL_OK;
}

/* ---- apps ---- */

static fan the_fan;
static pl_driver *apps_drv;
static pl_transport *app_tp[MAX_PEERS];
static pl_nm_node *apps[MAX_PEERS];
static bool app_up[MAX_PEERS];
static size_t n_apps, n_up, n_sessions;
static int apps_closing;
static uv_timer_t stop_timer;
static uv_signal_t sig_term;
static bool apps_stopping;

static void app_event(void *ud, pl_nm_node *n, const pl_nm_node_event *ev) {
    size_t i = (size_t)(uintptr_t)ud;
    if (ev->kind != PL_NM_NODE_SESSION) return;
    const pl_nm_session_output *s = ev->session;
    if (s->event == PL_NM_SEV_ESTABLISHED) {
        n_sessions++;
        if (!app_up[i]) {
            app_up[i] = true;
            n_up++;
            if (n_up == n_apps || n_up % 100 == 0)
                printf("established %zu %.3f\n", n_up, since_ms() / 1e3);
        }
    } else if (s->event == PL_NM_SEV_REQUEST) {
        pl_nm_node_respond(n, ev->peer, s->id, (const uint8_t *)"ok", 2);
    }
}

static void shared_closed(void *ud) {
    (void)ud;
    pl_driver_close(apps_drv, NULL, NULL);
    uv_close((uv_handle_t *)&stop_timer, NULL);
    uv_close((uv_handle_t *)&sig_term, NULL);
}

static void app_closed(void *ud) {
    (void)ud;
    if (--apps_closing > 0) return;
    for (size_t i = 0; i < n_apps; i++)
        pl_transport_close(app_tp[i], 0, NULL, NULL);
    pl_transport_close(the_fan.shared, 0, shared_closed, NULL);
}

static void apps_stop(void) {
    if (apps_stopping) return;
    apps_stopping = true;
    pl_waku_node_stats st;
    pl_waku_node_stats_get(pl_waku_transport_node(the_fan.shared), &st);
    printf("stopping: %zu apps with a session, %zu sessions in all, cpu %.0f ms, max rss %ld "
           "KiB; waku delivered %llu published %llu\n",
           n_up, n_sessions, cpu_ms(), rss_kib(), (unsigned long long)st.delivered,
           (unsigned long long)st.published);
    apps_closing = (int)n_apps;
    for (size_t i = 0; i < n_apps; i++)
        pl_nm_node_close(apps[i], 0, app_closed);
}

static void on_apps_timer(uv_timer_t *t) {
    (void)t;
    apps_stop();
}

static void on_apps_signal(uv_signal_t *s, int sig) {
    (void)s, (void)sig;
    apps_stop();
}

static int apps_main(const char *dir, size_t count, const char *peer, long seconds) {
    uv_loop_t *loop = uv_default_loop();
    pl_err e = pl_driver_new(&apps_drv, loop);
    the_fan.eps = calloc(count, sizeof *the_fan.eps);
    if (e != PL_OK || !the_fan.eps) return 1;
    the_fan.state = PL_TRANSPORT_CONNECTING;
    pl_waku_transport_opts wo;
    pl_waku_transport_opts_init(&wo);
    const char *peers[1] = {peer};
    wo.node.peers = peers;
    wo.node.n_peers = 1;
    wo.node.max_content_topics = 2 * count + 16;
    wo.node.publish_queue_max = count + 1024;
    wo.handler =
        (pl_transport_handler){.on_message = fan_message, .on_state = fan_state, .ud = &the_fan};
    e = pl_waku_transport_new(&the_fan.shared, apps_drv, &wo);
    for (size_t i = 0; e == PL_OK && i < count; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/app-%zu.db", dir, i);
        e = fan_endpoint(&the_fan, apps_drv, &app_tp[i]);
        pl_nm_node_opts o = {.role = PL_NM_ROLE_APP,
                             .transport = app_tp[i],
                             .driver = apps_drv,
                             .store_path = path,
                             .sessions = true,
                             .on_event = app_event,
                             .ud = (void *)(uintptr_t)i};
        if (e == PL_OK) e = pl_nm_node_new(&apps[i], NULL, &o);
        if (e == PL_OK) n_apps++;
    }
    if (e != PL_OK) {
        fprintf(stderr, "bench_nm_waku apps: %s\n", pl_errname(e));
        return 1;
    }
    printf("created %zu %.3f\n", n_apps, since_ms() / 1e3);
    uv_timer_init(loop, &stop_timer);
    uv_timer_start(&stop_timer, on_apps_timer, (uint64_t)seconds * 1000, 0);
    uv_signal_init(loop, &sig_term);
    uv_signal_start(&sig_term, on_apps_signal, SIGTERM);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    free(the_fan.eps);
    return 0;
}

/* ---- node manager ---- */

typedef struct nm_run {
    uv_loop_t *loop;
    pl_nm_node *node;
    size_t want, up, sessions, retries, rejected, knocks;
    double t_added, t_conn, t_mesh, t_half, t_90, t_all;
    /* the node's callbacks (the transport's), called after ours */
    pl_waku_message_cb next_msg;
    pl_waku_event_cb next_ev;
    void *next_ud;
    bool done, timed_out, closed;
    uv_timer_t deadline;
    uint8_t seen[MAX_PEERS][32];
} nm_run;

static void nm_result(nm_run *r) {
    pl_nm_sessions_stats st;
    pl_nm_sessions_stats_get(pl_nm_node_sessions(r->node), &st);
    pl_waku_node_stats ws;
    pl_waku_node_stats_get(pl_waku_transport_node(pl_nm_node_transport(r->node)), &ws);
    printf("result mode=waku n=%zu established=%zu t_added_ms=%.1f t_connected_ms=%.1f "
           "t_mesh_ms=%.1f t50_ms=%.1f t90_ms=%.1f t_all_ms=%.1f cpu_ms=%.0f max_rss_kib=%ld "
           "sessions=%zu "
           "retries=%zu rejected=%zu knocks=%zu hs_started=%llu dropped=%llu lost=%llu "
           "waku_delivered=%llu waku_published=%llu waku_expired=%llu\n",
           r->want, r->up, r->t_added, r->t_conn, r->t_mesh, r->t_half, r->t_90, r->t_all, cpu_ms(),
           rss_kib(), r->sessions, r->retries, r->rejected, r->knocks,
           (unsigned long long)st.handshakes_started, (unsigned long long)st.dropped,
           (unsigned long long)st.outputs_lost, (unsigned long long)ws.delivered,
           (unsigned long long)ws.published, (unsigned long long)ws.expired);
    fflush(stdout);
}

static void nm_closed(void *ud) {
    ((nm_run *)ud)->closed = true;
}

static void nm_stop(nm_run *r) {
    if (r->closed || !r->node || uv_is_closing((uv_handle_t *)&r->deadline)) return;
    nm_result(r);
    uv_close((uv_handle_t *)&r->deadline, NULL);
    pl_nm_node_close(r->node, 0, nm_closed);
}

static void count_established(nm_run *r, const uint8_t peer[32]) {
    r->sessions++;
    for (size_t i = 0; i < r->up; i++)
        if (!memcmp(r->seen[i], peer, 32)) return;
    if (r->up >= MAX_PEERS) return;
    memcpy(r->seen[r->up++], peer, 32);
    double t = since_ms();
    if (r->up * 2 >= r->want && r->t_half == 0) r->t_half = t;
    if (r->up * 10 >= r->want * 9 && r->t_90 == 0) r->t_90 = t;
    if (r->up == r->want) {
        r->t_all = t;
        r->done = true;
    }
}

static void node_event(void *ud, pl_nm_node *n, const pl_nm_node_event *ev) {
    (void)n;
    nm_run *r = ud;
    if (ev->kind == PL_NM_NODE_TRANSPORT && ev->transport_state == PL_TRANSPORT_CONNECTED &&
        !r->t_conn)
        r->t_conn = since_ms();
    if (ev->kind != PL_NM_NODE_SESSION) return;
    switch (ev->session->event) {
    case PL_NM_SEV_ESTABLISHED:
        count_established(r, ev->peer);
        break;
    case PL_NM_SEV_RETRY:
        r->retries++;
        break;
    case PL_NM_SEV_REJECTED:
        r->rejected++;
        break;
    case PL_NM_SEV_KNOCKED:
        r->knocks++;
        break;
    default:
        break;
    }
    if (r->done) nm_stop(r);
}

/* When the node's mesh first has a peer: its queued messages 1 go out. */
static void watch_msg(void *ud, pl_waku_node *n, const pl_waku_delivery *d) {
    nm_run *r = ud;
    r->next_msg(r->next_ud, n, d);
}

static void watch_event(void *ud, pl_waku_node *n, const pl_waku_event *ev) {
    nm_run *r = ud;
    if (ev->kind == PL_WAKU_EV_MESH && ev->grafted && !r->t_mesh) r->t_mesh = since_ms();
    r->next_ev(r->next_ud, n, ev);
}

static void on_nm_deadline(uv_timer_t *t) {
    nm_run *r = t->data;
    r->timed_out = true;
    nm_stop(r);
}

static int nm_main(int argc, char **argv) {
    const char *dir = argv[0], *peer = argv[1];
    long timeout_s = 120;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--timeout") && i + 1 < argc)
            timeout_s = strtol(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "bench_nm_waku nm: bad option %s\n", argv[i]);
            return 2;
        }
    }
    if (timeout_s < 1) return 2;
    char path[4096];
    snprintf(path, sizeof path, "%s/nm.db", dir);
    static nm_run r;
    r.loop = uv_default_loop();
    pl_waku_transport_opts wo;
    pl_waku_transport_opts_init(&wo);
    const char *peers[1] = {peer};
    wo.node.peers = peers;
    wo.node.n_peers = 1;
    pl_nm_node_opts o = {.role = PL_NM_ROLE_NODE_MANAGER,
                         .waku = &wo,
                         .store_path = path,
                         .sessions = true,
                         .on_event = node_event,
                         .ud = &r};
    pl_err e = pl_nm_node_new(&r.node, r.loop, &o);
    if (e != PL_OK) {
        fprintf(stderr, "bench_nm_waku nm: %s\n", pl_errname(e));
        return 1;
    }
    r.want = pl_nm_node_restored(r.node);
    r.t_added = since_ms();
    pl_waku_node *wn = pl_waku_transport_node(pl_nm_node_transport(r.node));
    pl_waku_node_get_callbacks(wn, &r.next_msg, &r.next_ev, &r.next_ud);
    pl_waku_node_set_callbacks(wn, watch_msg, watch_event, &r);
    uv_timer_init(r.loop, &r.deadline);
    r.deadline.data = &r;
    uv_timer_start(&r.deadline, on_nm_deadline, (uint64_t)timeout_s * 1000, 0);
    uv_run(r.loop, UV_RUN_DEFAULT);
    uv_loop_close(r.loop);
    return r.done && !r.timed_out ? 0 : 1;
}

int main(int argc, char **argv) {
    t_start = mono_s();
    if (pl_init() != PL_OK) return 1;
    signal(SIGPIPE, SIG_IGN); /* waku_node.h: a reset peer must not kill us */
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 1) {
        printf("bench_nm_waku: a driver; run scripts/bench-nm-waku.sh (see docs/performance.md, "
               "\"Start-up over Waku\")\n");
        return 0;
    }
    if ((argc == 5 || argc == 6) && !strcmp(argv[1], "apps")) {
        size_t n = strtoul(argv[3], NULL, 10);
        if (n < 1 || n > MAX_PEERS) return 2;
        return apps_main(argv[2], n, argv[4], argc == 6 ? strtol(argv[5], NULL, 10) : 3600);
    }
    if (argc >= 4 && !strcmp(argv[1], "nm")) return nm_main(argc - 2, argv + 2);
    fprintf(stderr, "usage: bench_nm_waku apps DIR N PEER [SECONDS] | nm DIR PEER [--timeout S]\n"
                    "(stores: bench_nm_startup seed DIR N)\n");
    return 2;
}
