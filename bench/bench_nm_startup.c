/* SPDX-License-Identifier: Apache-2.0 */
/* Node-manager start-up with many persisted counterparties (issue 5,
 * "Measured"): the time from a node manager's start to Noise sessions with
 * every one of N stored apps, over one local relay. Driven by
 * scripts/bench-nm-startup.sh, which runs the parts below as separate
 * processes on 127.0.0.1:
 *
 *   bench_nm_startup seed DIR N
 *       DIR/nm.db (+ .key): a node manager storing N apps; DIR/app-<i>.db
 *       (+ .key): app i storing the node manager. Keys are fresh X25519
 *       identities, so every session is a real K1K1 handshake.
 *   bench_nm_startup relay [--rate-limit R] [--topics-per-conn K]
 *       the relay server of `pairlink relay` (same code: pl__ws_server,
 *       in-memory mailbox), with its per-connection subscription limit
 *       settable (the CLI has no option for it; default 1000). Prints
 *       "listening on ws://127.0.0.1:PORT".
 *   bench_nm_startup apps DIR N URL [SECONDS]
 *       the N apps as pl_nm_node objects on one loop, each with its own
 *       relay connection; prints "connected N T" once all are connected and
 *       "established K T" as sessions come up (T: seconds since start).
 *   bench_nm_startup nm DIR URL [--node] [--max-topics K] [--timeout S]
 *       the node manager; exits when it has a session with every stored app
 *       (status 0) or after S seconds (status 1), printing one "result" line
 *       of key=value pairs (times in ms since main() was entered).
 *       --node: the stock runtime, pl_nm_node (nm_node.h). Its relay client
 *       keeps the default limit of 1000 subscribed topics, and a node
 *       manager needs two per app (rendezvous + session), so it cannot
 *       serve more than ~499 apps.
 *       default: the same runtime rebuilt here from the public cores (store,
 *       pl_nm_sessions, the relay client transport and a driver; the glue
 *       mirrors src/runtime/nm_node.c) with the relay client's topic limit set by
 *       --max-topics (default 4096), and timers around the parts that may
 *       dominate: the session core (crypto) and the store writes.
 *
 * Without arguments it prints where to start and exits 0 (`make bench` runs
 * every bench_* program bare). Not part of `make test`. */
#include "pairlink/codec.h"
#include "pairlink/driver.h"
#include "pairlink/hash.h"
#include "pairlink/nm_node.h"
#include "pairlink/nm_session.h"
#include "pairlink/nm_store.h"
#include "pairlink/relay_client.h"
#include "pairlink/store.h"
#include "relay/ws_server.h"

#include <libwebsockets.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <uv.h>

#define MAX_PEERS 4096
#define SEED_KEY "nm_relay_seed" /* where pl_nm_node keeps its relay identity */

static double t_start;

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double since_ms(void) { return (mono_s() - t_start) * 1e3; }

static double cpu_ms(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

/* ---- a set of 32-byte keys (which peers have a session) ---- */

static uint8_t set_keys[2 * MAX_PEERS][32];
static bool set_used[2 * MAX_PEERS];

/* Inserts; returns true when the key was not in the set. */
static bool set_add(const uint8_t k[32]) {
    size_t h = ((size_t)k[0] << 8 | k[1]) ^ ((size_t)k[2] << 16 | (size_t)k[3] << 4);
    for (size_t i = 0; i < 2 * MAX_PEERS; i++) {
        size_t j = (h + i) & (2 * MAX_PEERS - 1);
        if (!set_used[j]) {
            set_used[j] = true;
            memcpy(set_keys[j], k, 32);
            return true;
        }
        if (!memcmp(set_keys[j], k, 32)) return false;
    }
    return false;
}

/* ---- seed ---- */

static int seed_main(const char *dir, size_t count) {
    char path[4096];
    snprintf(path, sizeof path, "%s/nm.db", dir);
    uint8_t nm_priv[32], nm_pub[32];
    pl_err e = pl_nm_store_identity(path, nm_priv, nm_pub, NULL);
    pl_store *nms = NULL;
    if (e == PL_OK) e = pl_store_open(&nms, path);
    if (e == PL_OK) e = pl_nm_store_init(nms);
    int64_t now = pl_wall_clock_ms();
    for (size_t i = 0; e == PL_OK && i < count; i++) {
        snprintf(path, sizeof path, "%s/app-%zu.db", dir, i);
        uint8_t priv[32], pub[32];
        pl_store *s = NULL;
        e = pl_nm_store_identity(path, priv, pub, NULL);
        if (e == PL_OK) e = pl_store_open(&s, path);
        if (e == PL_OK) e = pl_nm_store_init(s);
        pl_nm_counterparty c = {.role = PL_NM_ROLE_NODE_MANAGER, .first_seen_ms = now,
                                .last_seen_ms = now};
        memcpy(c.pub, nm_pub, 32);
        snprintf(c.name, sizeof c.name, "bench nm");
        if (e == PL_OK) e = pl_nm_store_put(s, &c);
        pl_store_close(s);
        pl_nm_counterparty a = {.role = PL_NM_ROLE_APP, .first_seen_ms = now, .last_seen_ms = now};
        memcpy(a.pub, pub, 32);
        snprintf(a.name, sizeof a.name, "bench app %zu", i);
        if (e == PL_OK) e = pl_nm_store_put(nms, &a);
    }
    pl_store_close(nms);
    if (e != PL_OK) {
        fprintf(stderr, "bench_nm_startup seed: %s\n", pl_errname(e));
        return 1;
    }
    char hex[65];
    pl_hex_encode(hex, sizeof hex, nm_pub, 32);
    printf("%s\n", hex);
    return 0;
}

/* ---- relay ---- */

static void relay_log(void *ud, int level, const char *line) {
    (void)ud;
    if (level <= PL__LOG_WARN) fprintf(stderr, "relay: %s\n", line);
}

static int relay_main(int argc, char **argv) {
    pl__ws_server_opts o;
    memset(&o, 0, sizeof o);
    o.host = "127.0.0.1";
    o.handle_signals = true;
    o.log = relay_log;
    o.log_level = PL__LOG_WARN;
    for (int i = 0; i + 1 < argc; i += 2) {
        long v = strtol(argv[i + 1], NULL, 10);
        if (!strcmp(argv[i], "--rate-limit") && v >= 0) {
            if (v == 0) o.limits.rate_unlimited = true;
            o.limits.rate_per_s = (uint32_t)v;
            o.limits.rate_burst = (uint32_t)v * 5;
        } else if (!strcmp(argv[i], "--topics-per-conn") && v > 0) {
            o.limits.max_topics_per_conn = (size_t)v;
        } else {
            fprintf(stderr, "bench_nm_startup relay: bad option %s\n", argv[i]);
            return 2;
        }
    }
    pl__ws_server *srv = NULL;
    pl_err e = pl__ws_server_new(&srv, &o);
    if (e != PL_OK) {
        fprintf(stderr, "bench_nm_startup relay: %s\n", pl_errname(e));
        return 1;
    }
    printf("listening on ws://127.0.0.1:%d\n", pl__ws_server_port(srv));
    fflush(stdout);
    e = pl__ws_server_run(srv);
    pl__ws_server_free(srv);
    return e == PL_OK ? 0 : 1;
}

/* ---- apps ---- */

static pl_nm_node *apps[MAX_PEERS];
static bool app_conn[MAX_PEERS], app_up[MAX_PEERS];
static size_t n_apps, n_conn, n_up, n_sessions;
static int apps_closing;
static uv_timer_t stop_timer;
static uv_signal_t sig_term;

static void app_event(void *ud, pl_nm_node *n, const pl_nm_node_event *ev) {
    size_t i = (size_t)(uintptr_t)ud;
    if (ev->kind == PL_NM_NODE_TRANSPORT && ev->transport_state == PL_TRANSPORT_CONNECTED &&
        !app_conn[i]) {
        app_conn[i] = true;
        if (++n_conn == n_apps) printf("connected %zu %.3f\n", n_conn, since_ms() / 1e3);
        return;
    }
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

static void apps_closed(void *ud) {
    (void)ud;
    if (--apps_closing == 0) {
        uv_close((uv_handle_t *)&stop_timer, NULL);
        uv_close((uv_handle_t *)&sig_term, NULL);
    }
}

static void apps_stop(void) {
    if (apps_closing) return;
    printf("stopping: %zu apps with a session, %zu sessions in all, cpu %.0f ms\n", n_up,
           n_sessions, cpu_ms());
    apps_closing = (int)n_apps;
    for (size_t i = 0; i < n_apps; i++) pl_nm_node_close(apps[i], 0, apps_closed);
}

static void on_apps_timer(uv_timer_t *t) {
    (void)t;
    apps_stop();
}

static void on_apps_signal(uv_signal_t *s, int sig) {
    (void)s, (void)sig;
    apps_stop();
}

static int apps_main(const char *dir, size_t count, const char *url, long seconds) {
    uv_loop_t *loop = uv_default_loop();
    for (size_t i = 0; i < count; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/app-%zu.db", dir, i);
        pl_nm_node_opts o = {.role = PL_NM_ROLE_APP, .relay_url = url, .store_path = path,
                             .sessions = true, .on_event = app_event, .ud = (void *)(uintptr_t)i};
        pl_err e = pl_nm_node_new(&apps[i], loop, &o);
        if (e != PL_OK) {
            fprintf(stderr, "bench_nm_startup apps: app %zu: %s\n", i, pl_errname(e));
            return 1;
        }
        n_apps++;
    }
    printf("created %zu %.3f\n", n_apps, since_ms() / 1e3);
    uv_timer_init(loop, &stop_timer);
    uv_timer_start(&stop_timer, on_apps_timer, (uint64_t)seconds * 1000, 0);
    uv_signal_init(loop, &sig_term);
    uv_signal_start(&sig_term, on_apps_signal, SIGTERM);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    return 0;
}

/* ---- node manager ---- */

typedef struct nm_run {
    uv_loop_t *loop;
    size_t want, up, sessions, retries, rejected, msgs;
    size_t sub_refused, unsub_refused, pub_refused, touches;
    double t_store, t_added, t_conn, t_half, t_90, t_all;
    double core_ms, store_ms, core_max_ms;
    bool done, timed_out;
    /* stock runtime */
    pl_nm_node *node;
    /* rebuilt runtime */
    pl_store *store;
    pl_nm_sessions *sess;
    pl_driver *d;
    pl_driver_task task;
    pl_transport *relay;
    pl_nm_counterparty *peers;
    size_t npeers;
    uv_timer_t deadline;
    int closing;
} nm_run;

static void nm_result(nm_run *r, const char *mode) {
    printf("result mode=%s n=%zu established=%zu t_store_ms=%.1f t_added_ms=%.1f "
           "t_connected_ms=%.1f t50_ms=%.1f t90_ms=%.1f t_all_ms=%.1f cpu_ms=%.0f "
           "core_ms=%.1f core_max_ms=%.2f store_ms=%.1f touches=%zu relay_msgs=%zu "
           "sessions=%zu retries=%zu rejected=%zu sub_refused=%zu pub_refused=%zu",
           mode, r->want, r->up, r->t_store, r->t_added, r->t_conn, r->t_half, r->t_90, r->t_all,
           cpu_ms(), r->core_ms, r->core_max_ms, r->store_ms, r->touches, r->msgs, r->sessions,
           r->retries, r->rejected, r->sub_refused, r->pub_refused);
    if (r->sess) {
        pl_nm_sessions_stats st;
        pl_nm_sessions_stats_get(r->sess, &st);
        pl_relay_client_stats rs = {0};
        if (r->relay) pl_relay_client_get_stats(r->relay, &rs);
        printf(" hs_started=%llu dropped=%llu knocks_received=%llu lost=%llu relay_resent=%llu "
               "relay_dups=%llu",
               (unsigned long long)st.handshakes_started, (unsigned long long)st.dropped,
               (unsigned long long)st.knocks_received, (unsigned long long)st.outputs_lost,
               (unsigned long long)rs.resent, (unsigned long long)rs.duplicates);
    }
    printf("\n");
    fflush(stdout);
}

static void count_established(nm_run *r, const uint8_t peer[32]) {
    r->sessions++;
    if (!set_add(peer)) return;
    r->up++;
    double t = since_ms();
    if (r->up * 2 >= r->want && r->t_half == 0) r->t_half = t;
    if (r->up * 10 >= r->want * 9 && r->t_90 == 0) r->t_90 = t;
    if (r->up == r->want) {
        r->t_all = t;
        r->done = true;
    }
}

static void nm_stop(nm_run *r);

/* stock runtime */
static void node_event(void *ud, pl_nm_node *n, const pl_nm_node_event *ev) {
    (void)n;
    nm_run *r = ud;
    if (ev->kind == PL_NM_NODE_TRANSPORT && ev->transport_state == PL_TRANSPORT_CONNECTED && !r->t_conn)
        r->t_conn = since_ms();
    if (ev->kind != PL_NM_NODE_SESSION) return;
    switch (ev->session->event) {
    case PL_NM_SEV_ESTABLISHED: count_established(r, ev->peer); break;
    case PL_NM_SEV_RETRY: r->retries++; break;
    case PL_NM_SEV_REJECTED: r->rejected++; break;
    default: break;
    }
    if (r->done) nm_stop(r);
}

/* rebuilt runtime: the drain of nm_node.c, counted and timed */
static void drain(nm_run *r) {
    pl_nm_session_output o;
    while (r->sess && pl_nm_sessions_poll(r->sess, &o)) {
        switch (o.kind) {
        case PL_NM_SOUT_SUBSCRIBE:
            if (pl_transport_subscribe(r->relay, o.topic) != PL_OK) r->sub_refused++;
            break;
        case PL_NM_SOUT_UNSUBSCRIBE:
            if (pl_transport_unsubscribe(r->relay, o.topic) != PL_OK) r->unsub_refused++;
            break;
        case PL_NM_SOUT_PUBLISH: {
            pl_publish_opts po = {.ttl_s = o.ttl_s};
            if (pl_transport_publish(r->relay, o.topic, o.message, o.message_len, &po) != PL_OK)
                r->pub_refused++;
            break;
        }
        case PL_NM_SOUT_EVENT:
            if (o.event == PL_NM_SEV_ESTABLISHED) {
                /* nm_node.c: one durable write per peer per minute at most */
                pl_nm_counterparty *c = NULL;
                for (size_t i = 0; i < r->npeers && !c; i++)
                    if (!memcmp(r->peers[i].pub, o.peer, 32)) c = &r->peers[i];
                int64_t now = pl_driver_now(r->d);
                if (c && (!c->confirmed || now - c->last_seen_ms > 60000)) {
                    double t0 = mono_s();
                    if (pl_nm_store_touch(r->store, o.peer, now) == PL_OK) {
                        c->confirmed = true;
                        c->last_seen_ms = now;
                    }
                    r->store_ms += (mono_s() - t0) * 1e3;
                    r->touches++;
                }
                count_established(r, o.peer);
            } else if (o.event == PL_NM_SEV_RETRY) {
                r->retries++;
            } else if (o.event == PL_NM_SEV_REJECTED) {
                r->rejected++;
            }
            break;
        }
        pl_nm_session_output_clear(&o);
    }
    if (r->done) nm_stop(r);
}

static int64_t nm_deadline(pl_driver_task *t) {
    nm_run *r = t->data;
    return pl_nm_sessions_next_deadline(r->sess);
}

static void nm_timer(pl_driver_task *t, int64_t now) {
    nm_run *r = t->data;
    double t0 = mono_s();
    pl_nm_sessions_on_timer(r->sess, now);
    r->core_ms += (mono_s() - t0) * 1e3;
    drain(r);
}

static void nm_before_wait(pl_driver_task *t, int64_t now) {
    (void)now;
    nm_run *r = t->data;
    if (!r->closing) drain(r);
}

static void on_nm_message(void *ud, pl_transport *t, const char *topic, const uint8_t *data,
                          size_t len, const pl_delivery_info *info) {
    (void)t;
    nm_run *r = ud;
    if (r->closing || info->err) return;
    r->msgs++;
    double t0 = mono_s();
    (void)pl_nm_sessions_on_message(r->sess, topic, data, len, pl_driver_now(r->d));
    double dt = (mono_s() - t0) * 1e3;
    r->core_ms += dt;
    if (dt > r->core_max_ms) r->core_max_ms = dt;
    drain(r);
}

static void on_nm_state(void *ud, pl_transport *t, pl_transport_state state, pl_err err) {
    (void)t, (void)err;
    nm_run *r = ud;
    if (state == PL_TRANSPORT_CONNECTED && !r->t_conn) r->t_conn = since_ms();
}

static void nm_handle_closed(uv_handle_t *h) {
    nm_run *r = h->data;
    r->closing--;
}

static void nm_part_closed(void *ud) {
    nm_run *r = ud;
    r->closing--;
}

static void nm_relay_closed(void *ud) {
    nm_run *r = ud;
    pl_driver_close(r->d, nm_part_closed, r);
}

static void nm_stop(nm_run *r) {
    if (r->closing) return;
    nm_result(r, r->node ? "node" : "rebuilt");
    uv_close((uv_handle_t *)&r->deadline, nm_handle_closed);
    r->closing = 2;
    if (r->node) {
        pl_nm_node_close(r->node, 0, nm_part_closed);
        return;
    }
    pl_driver_stop(&r->task);
    pl_transport_close(r->relay, 0, nm_relay_closed, r);
}

static void on_nm_deadline(uv_timer_t *t) {
    nm_run *r = t->data;
    r->timed_out = true;
    nm_stop(r);
}


static pl_err rebuilt_start(nm_run *r, const char *path, const char *url, uint32_t max_topics) {
    uint8_t priv[32], pub[32], seed[PL_ED25519_SEED_BYTES];
    pl_err e = pl_store_open(&r->store, path);
    if (e == PL_OK) e = pl_nm_store_init(r->store);
    if (e == PL_OK) e = pl_nm_store_identity(path, priv, pub, NULL);
    if (e == PL_OK) e = pl_store_secret(r->store, SEED_KEY, seed, PL_ED25519_SEED_BYTES);
    if (e == PL_OK) e = pl_nm_store_list(r->store, &r->peers, &r->npeers);
    r->t_store = since_ms();
    if (e == PL_OK) {
        pl_nm_sessions_config sc = {.role = PL_NM_ROLE_NODE_MANAGER, .static_priv = priv};
        e = pl_nm_sessions_new(&r->sess, &sc, pl_wall_clock_ms());
    }
    if (e == PL_OK) e = pl_driver_new(&r->d, r->loop);
    if (e == PL_OK) {
        pl_relay_client_opts ro = {.url = url, .seed = seed,
                                   .handler = {on_nm_message, on_nm_state, r},
                                   .max_topics = max_topics};
        e = pl_relay_client_new(&r->relay, r->d, &ro);
    }
    pl_wipe(seed, sizeof seed);
    pl_wipe(priv, sizeof priv);
    if (e != PL_OK) return e;
    int64_t now = pl_driver_now(r->d);
    double t0 = mono_s();
    for (size_t i = 0; i < r->npeers; i++) {
        if (r->peers[i].role != PL_NM_ROLE_APP) continue;
        if (pl_nm_sessions_add_peer(r->sess, r->peers[i].pub, now) == PL_OK) r->want++;
    }
    r->core_ms += (mono_s() - t0) * 1e3;
    r->t_added = since_ms();
    r->task.data = r;
    r->task.next_deadline = nm_deadline;
    r->task.on_timer = nm_timer;
    r->task.before_wait = nm_before_wait;
    pl_driver_start(r->d, &r->task);
    return PL_OK;
}

static int nm_main(int argc, char **argv) {
    const char *dir = argv[0], *url = argv[1];
    bool stock = false;
    long max_topics = 4096, timeout_s = 120;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--node")) stock = true;
        else if (!strcmp(argv[i], "--max-topics") && i + 1 < argc) max_topics = strtol(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--timeout") && i + 1 < argc) timeout_s = strtol(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "bench_nm_startup nm: bad option %s\n", argv[i]);
            return 2;
        }
    }
    if (max_topics < 1 || max_topics > 1000000 || timeout_s < 1) return 2;
    char path[4096];
    snprintf(path, sizeof path, "%s/nm.db", dir);
    static nm_run r;
    r.loop = uv_default_loop();
    pl_err e;
    if (stock) {
        pl_nm_node_opts o = {.role = PL_NM_ROLE_NODE_MANAGER, .relay_url = url,
                             .store_path = path, .sessions = true, .on_event = node_event,
                             .ud = &r};
        e = pl_nm_node_new(&r.node, r.loop, &o);
        if (e == PL_OK) r.want = pl_nm_node_restored(r.node);
        r.t_added = since_ms();
    } else {
        e = rebuilt_start(&r, path, url, (uint32_t)max_topics);
    }
    if (e != PL_OK) {
        fprintf(stderr, "bench_nm_startup nm: %s\n", pl_errname(e));
        return 1;
    }
    uv_timer_init(r.loop, &r.deadline);
    r.deadline.data = &r;
    uv_timer_start(&r.deadline, on_nm_deadline, (uint64_t)timeout_s * 1000, 0);
    uv_run(r.loop, UV_RUN_DEFAULT);
    uv_loop_close(r.loop);
    pl_nm_sessions_free(r.sess);
    pl_store_close(r.store);
    pl_free(r.peers);
    return r.done && !r.timed_out ? 0 : 1;
}

/* The did:key the stock node manager of DIR authenticates with (the seed
 * pl_nm_node keeps in its store), for `pairlink relay --allowance`. */
static int did_main(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/nm.db", dir);
    pl_store *st = NULL;
    uint8_t seed[PL_ED25519_SEED_BYTES], pub[PL_ED25519_PUB_BYTES];
    char did[PL_DID_KEY_SIZE];
    pl_err e = pl_store_open(&st, path);
    if (e == PL_OK) e = pl_store_secret(st, "nm_relay_seed", seed, sizeof seed);
    pl_store_close(st);
    if (e != PL_OK) {
        fprintf(stderr, "bench_nm_startup did: %s\n", pl_errname(e));
        return 1;
    }
    pl_ed25519_public(pub, seed);
    pl_wipe(seed, sizeof seed);
    if (pl_did_key_encode(did, pub) != PL_OK) return 1;
    printf("%s\n", did);
    return 0;
}

int main(int argc, char **argv) {
    t_start = mono_s();
    if (pl_init() != PL_OK) return 1;
    setvbuf(stdout, NULL, _IOLBF, 0);
    lws_set_log_level(LLL_ERR, NULL);
    if (argc == 1) {
        printf("bench_nm_startup: a driver; run scripts/bench-nm-startup.sh (see "
               "docs/performance.md, \"Node-manager pairing\")\n");
        return 0;
    }
    if (argc == 4 && !strcmp(argv[1], "seed")) {
        size_t n = strtoul(argv[3], NULL, 10);
        if (n < 1 || n > MAX_PEERS) return 2;
        return seed_main(argv[2], n);
    }
    if (argc >= 2 && !strcmp(argv[1], "relay")) return relay_main(argc - 2, argv + 2);
    if ((argc == 5 || argc == 6) && !strcmp(argv[1], "apps")) {
        size_t n = strtoul(argv[3], NULL, 10);
        if (n < 1 || n > MAX_PEERS) return 2;
        return apps_main(argv[2], n, argv[4], argc == 6 ? strtol(argv[5], NULL, 10) : 3600);
    }
    if (argc >= 4 && !strcmp(argv[1], "nm")) return nm_main(argc - 2, argv + 2);
    if (argc == 3 && !strcmp(argv[1], "did")) return did_main(argv[2]);
    fprintf(stderr, "usage: bench_nm_startup seed DIR N | relay [--rate-limit R] "
                    "[--topics-per-conn K] | apps DIR N URL [SECONDS] | nm DIR URL [--node] "
                    "[--max-topics K] [--timeout S] | did DIR\n");
    return 2;
}
