/* SPDX-License-Identifier: Apache-2.0 */
/* The hostile-client suite of `pairlink relay` (issue 11): clients that
 * attack the relay over real sockets on 127.0.0.1, each against a relay
 * started for it, while a well-behaved client (the probe, a thread of its
 * own) keeps publishing to a second client through the same relay.
 *
 * Every attack asserts what the issue asks of the relay:
 *  - the probe's round trip (irn_publish sent -> its `true` answer and the
 *    push at the other client both in) stays under RTT_P99_MS at the 99th
 *    percentile while the attack runs, and no probe round trip fails;
 *  - the relay's peak resident size (VmHWM) stays under its --max-memory;
 *  - and what that attack is about (the holes of the issue, each one a
 *    regression test, then slowloris, never-reading subscribers,
 *    reconnect storms, oversized fetches).
 *
 * Attackers come from other loopback addresses (127.0.0.2 and up) so that
 * the per-address limits bite them and not the probe. Sizes are scaled
 * down with the budgets (the constants below): a small budget rather than
 * a large attack. Each attack is bounded in time; the whole suite takes
 * about a minute.
 *
 * Prints one `HOSTILE name ...` line per attack (docs/performance.md uses
 * them; scripts/bench-hostile.sh runs the suite for the measurements) and
 * `HOSTILE OK` at the end. Exit status 0 when every check held.
 *
 *   hostile [PAIRLINK_BINARY] [ATTACK...]   (default: PL_CLI, every attack)
 *   HOSTILE_ACTIVE_MS=N: attacks run at least N ms (default 1500).
 *   HOSTILE_BUDGET_MB=N: the relays' --max-memory (default 48). */
#include "pairlink/crypto.h"
#include "pairlink/driver.h"
#include "pairlink/relay_client.h"
#include "ws.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libwebsockets.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

/* ---- budgets and attack sizes ------------------------------------------------------ */

/* --max-memory of every relay here, MiB (HOSTILE_BUDGET_MB overrides it: a
 * relay built with sanitizers needs far more) */
static int g_budget_mb = 48;
static char g_budget_arg[16] = "48M";
#define BUDGET g_budget_arg
#define BUDGET_KB (g_budget_mb * 1024)
#define RTT_P99_MS 50.0       /* the probe's round trip, 99th percentile */
#define PROBE_EVERY_MS 5      /* one probe round trip per this, at most */
#define PROBE_TIMEOUT_MS 2000 /* a round trip longer than this failed */

#define BIG_SIZE (256 << 10)     /* hole 1: message size ... */
#define BIG_COUNT 20             /* ... and count: 5 MiB on one topic */
#define BIG_QUEUE "2M"           /* ... through send queues of 2 MiB */
#define FETCHERS 8               /* oversized fetches: connections that fetch ... */
#define FETCHES_EACH 10          /* ... this often each, never reading */
#define TINY_QUOTA_BYTES "1M"    /* hole 3: a publisher's quota, for 1-byte messages */
#define FLOOD_TOPICS 20000       /* hole 4: topics colliding in FNV-1a's low 16 bits */
#define FLOOD_MAX_MS 3000        /* ... published within this (quadratic: ~10 s) */
#define RESTART_MAX_MS 3000      /* ... and a restart on that database within this */
#define UNREAD_ADDRS 40          /* hole 5: never-reading subscribers, one per address */
#define UNREAD_PER_ADDR_LIMIT 16 /* ... the per-address limit, tried with 20 from one */
#define UNREAD_MSG (32 << 10)    /* ... fed messages of this size */
#define UNREAD_MSGS 80
#define PING_LIMIT 50    /* hole 9: mailbox limit of the busy pairing ... */
#define PING_ROUNDS 300  /* ... and its ping-pong rounds */
#define SLOW_SOCKETS 48  /* slowloris sockets from one address ... */
#define SLOW_LIMIT 32    /* ... of which the relay admits these */
#define SLOW_TIMEOUT_S 2 /* ... and closes after --handshake-timeout */
#define STORM_MS 3000    /* reconnect storm duration */
#define STORM_ADDRS 8
#define BOMB_FRAMES 20 /* frames of 1 MiB of "{}," */

/* ---- failing ----------------------------------------------------------------------- */

static const char *g_attack = "setup";
static char g_dir[256];

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "hostile: %s: FAILED: ", g_attack);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    exit(1); /* the relays started here die with us (PR_SET_PDEATHSIG) */
}

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) die(__VA_ARGS__);                                                             \
    } while (0)

/* ---- the relay process -------------------------------------------------------------- */

typedef struct relay {
    pid_t pid;
    int port;
    char log[300];
} relay;

static const char *g_cli;

static void relay_start(relay *r, const char *const *args) {
    static int nth;
    snprintf(r->log, sizeof r->log, "%s/relay-%d.log", g_dir, nth++);
    char *argv[48] = {(char *)g_cli, "relay",        "--listen",
                      "127.0.0.1:0", "--max-memory", g_budget_arg};
    size_t n = 6;
    for (size_t i = 0; args && args[i] && n < 47; i++)
        argv[n++] = (char *)args[i];
    argv[n] = NULL;
    int out[2];
    CHECK(pipe(out) == 0, "pipe");
    pid_t parent = getpid();
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        close(out[0]);
        dup2(out[1], 1);
        int fd = open(r->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) dup2(fd, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    close(out[1]);
    r->pid = pid;
    r->port = 0;
    char buf[512];
    size_t len = 0;
    int64_t end = hs_now_ms() + 10000;
    while (hs_now_ms() < end && len < sizeof buf - 1) {
        struct pollfd p = {out[0], POLLIN, 0};
        if (poll(&p, 1, 100) <= 0) continue;
        ssize_t k = read(out[0], buf + len, sizeof buf - 1 - len);
        if (k <= 0) break;
        len += (size_t)k;
        buf[len] = '\0';
        char *l = strstr(buf, "listening on ws://127.0.0.1:");
        if (l && strchr(l, '\n')) {
            r->port = atoi(l + strlen("listening on ws://127.0.0.1:"));
            break;
        }
    }
    close(out[0]);
    CHECK(r->port > 0, "the relay did not start (log: %s)", r->log);
}

/* VmHWM (peak) or VmRSS of the relay, KiB. */
static long relay_rss_kb(const relay *r, bool peak) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)r->pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long v = -1;
    const char *key = peak ? "VmHWM:" : "VmRSS:";
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, strlen(key))) v = atol(line + strlen(key));
    fclose(f);
    return v;
}

static bool relay_alive(const relay *r) {
    return r->pid > 0 && waitpid(r->pid, NULL, WNOHANG) == 0;
}

/* SIGTERM; the relay must stop cleanly (status 0) within 10 s. */
static void relay_stop(relay *r) {
    CHECK(relay_alive(r), "the relay died (log: %s)", r->log);
    kill(r->pid, SIGTERM);
    int st = 0;
    for (int i = 0; i < 1000; i++) {
        pid_t w = waitpid(r->pid, &st, WNOHANG);
        if (w == r->pid) {
            r->pid = 0;
            CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the relay exited with status %d", st);
            return;
        }
        usleep(10000);
    }
    kill(r->pid, SIGKILL);
    die("the relay did not stop within 10 s of SIGTERM");
}

/* ---- the probe ---------------------------------------------------------------------- */

#define MAX_SAMPLES 16384

typedef struct probe {
    pthread_t th;
    int port;
    const char *path, *path_b; /* the probe's connect paths (JWTs), NULL: "/" */
    atomic_bool stop;
    atomic_bool ready;
    pthread_mutex_t mu;
    double samples[MAX_SAMPLES];
    size_t n;
    int failures;
    char why[160];
} probe;

static void probe_fail(probe *p, const char *why) {
    pthread_mutex_lock(&p->mu);
    p->failures++;
    snprintf(p->why, sizeof p->why, "%s", why);
    pthread_mutex_unlock(&p->mu);
}

/* Two clients on 127.0.0.1, both subscribed to one topic and answering
 * their pushes, publish to each other in turn (each stays at half the probe
 * rate, within the relay's default request rate). One round trip every
 * PROBE_EVERY_MS: the publish sent -> its `true` and the push at the other
 * both in. */
static void *probe_main(void *arg) {
    probe *p = arg;
    hs_net *n = hs_net_new();
    char topic[65];
    for (int i = 0; i < 64; i++)
        topic[i] = "0123456789abcdef"[(unsigned)rand() % 16];
    topic[64] = '\0';
    hs_conn_opts oa = {.port = p->port, .path = p->path, .answer_pushes = true},
                 ob = {.port = p->port, .path = p->path_b, .answer_pushes = true};
    hs_conn *side[2] = {hs_connect(n, &oa), hs_connect(n, &ob)};
    if (!hs_wait_open(n, side[0], 3000) || !hs_wait_open(n, side[1], 3000)) {
        probe_fail(p, "the probe could not connect");
        atomic_store(&p->ready, true);
        hs_net_free(n);
        return NULL;
    }
    char params[256];
    snprintf(params, sizeof params, "{\"topic\":\"%s\"}", topic);
    for (int k = 0; k < 2; k++) {
        hs_request(side[k], 1, "irn_subscribe", params);
        json_t *ans = hs_wait_answer(n, side[k], 1, 3000);
        if (!ans || hs_error_code(ans)) probe_fail(p, "the probe could not subscribe");
        json_decref(ans);
    }
    atomic_store(&p->ready, true);
    int64_t id = 100;
    while (!atomic_load(&p->stop)) {
        hs_conn *from = side[id % 2], *to = side[1 - id % 2];
        int64_t t0 = hs_now_ms();
        size_t pushes = hs_pushes(to);
        snprintf(params, sizeof params,
                 "{\"topic\":\"%s\",\"message\":\"probe-%lld\",\"ttl\":10,\"tag\":1}", topic,
                 (long long)id);
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t t0us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
        hs_request(from, id, "irn_publish", params);
        json_t *r = NULL;
        bool pushed = false;
        while (hs_now_ms() - t0 < PROBE_TIMEOUT_MS && !(r && pushed) && !hs_is_done(from) &&
               !hs_is_done(to)) {
            hs_net_service(n, 1);
            if (!r) r = hs_take_answer(from, id);
            pushed = hs_pushes(to) > pushes;
        }
        clock_gettime(CLOCK_MONOTONIC, &ts);
        double ms = (double)((int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000 - t0us) / 1000.0;
        if (!r || !pushed || hs_error_code(r)) {
            char why[160];
            snprintf(why, sizeof why, "round trip %lld: %s", (long long)id,
                     !r                 ? "no answer"
                     : hs_error_code(r) ? "an error answer"
                                        : "no push");
            probe_fail(p, why);
        } else {
            pthread_mutex_lock(&p->mu);
            if (p->n < MAX_SAMPLES) p->samples[p->n++] = ms;
            pthread_mutex_unlock(&p->mu);
        }
        json_decref(r);
        id++;
        if (hs_is_done(from) || hs_is_done(to)) {
            probe_fail(p, "the relay closed a probe connection");
            break;
        }
        while (hs_now_ms() - t0 < PROBE_EVERY_MS)
            hs_net_service(n, 1);
    }
    hs_net_free(n);
    return NULL;
}

static void probe_start(probe *p, int port, const char *path, const char *path_b) {
    memset(p, 0, sizeof *p);
    p->port = port;
    p->path = path;
    p->path_b = path_b;
    pthread_mutex_init(&p->mu, NULL);
    CHECK(pthread_create(&p->th, NULL, probe_main, p) == 0, "pthread_create");
    int64_t end = hs_now_ms() + 5000;
    while (!atomic_load(&p->ready) && hs_now_ms() < end)
        usleep(1000);
    CHECK(atomic_load(&p->ready) && !p->failures, "probe: %s", p->why);
}

/* Forget the samples so far (the attack starts now). */
static void probe_reset(probe *p) {
    pthread_mutex_lock(&p->mu);
    p->n = 0;
    p->failures = 0;
    pthread_mutex_unlock(&p->mu);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct probe_stats {
    size_t n;
    int failures;
    double p50, p99, max;
} probe_stats;

static probe_stats probe_finish(probe *p) {
    atomic_store(&p->stop, true);
    pthread_join(p->th, NULL);
    probe_stats st = {.n = p->n, .failures = p->failures};
    qsort(p->samples, p->n, sizeof p->samples[0], cmp_double);
    if (p->n) {
        st.p50 = p->samples[p->n / 2];
        size_t k = (p->n * 99 + 99) / 100;
        st.p99 = p->samples[k ? k - 1 : 0];
        st.max = p->samples[p->n - 1];
    }
    pthread_mutex_destroy(&p->mu);
    return st;
}

/* ---- one attack ------------------------------------------------------------------------ */

typedef struct attack_run {
    relay r;
    probe p;
    int64_t started;
} attack_run;

/* The probe's connect paths for the next attack (a relay that requires
 * auth: two identities, or b would not get a's messages); NULL: "/". */
static const char *g_probe_path, *g_probe_path_b;

/* A relay with args, the probe connected and warm. */
static void attack_begin(attack_run *a, const char *name, const char *const *args) {
    g_attack = name;
    relay_start(&a->r, args);
    probe_start(&a->p, a->r.port, g_probe_path, g_probe_path_b);
    int64_t warm = hs_now_ms() + 200;
    while (hs_now_ms() < warm)
        usleep(5000);
    probe_reset(&a->p);
    a->started = hs_now_ms();
}

/* The probe's round trip was over its bound in this attack. A machine
 * shared with other work can miss a bound once: main runs such an attack a
 * second time and fails only if it misses again. Every other check fails
 * at once. */
static bool g_slow;
static char g_slow_why[160];

/* Keep the probe running at least min_ms since the attack began (so that
 * its percentiles mean something), then check and report. */
static void attack_end(attack_run *a, int min_ms, bool stop_relay) {
    while (hs_now_ms() - a->started < min_ms)
        usleep(5000);
    probe_stats st = probe_finish(&a->p);
    long peak = relay_rss_kb(&a->r, true);
    printf("HOSTILE %-20s rtt_p50_ms=%.2f rtt_p99_ms=%.2f rtt_max_ms=%.2f probes=%zu failed=%d "
           "rss_peak_kb=%ld budget_kb=%d time_ms=%lld\n",
           g_attack, st.p50, st.p99, st.max, st.n, st.failures, peak, BUDGET_KB,
           (long long)(hs_now_ms() - a->started));
    fflush(stdout);
    CHECK(!st.failures, "the probe failed %d round trips (%s)", st.failures, a->p.why);
    CHECK(st.n >= 100, "only %zu probe round trips", st.n);
    CHECK(peak > 0 && peak < BUDGET_KB, "the relay's peak RSS is %ld KiB (budget %d KiB)", peak,
          BUDGET_KB);
    if (st.p99 >= RTT_P99_MS) {
        g_slow = true;
        snprintf(g_slow_why, sizeof g_slow_why,
                 "the probe's p99 round trip is %.1f ms (bound %.0f ms)", st.p99, RTT_P99_MS);
    }
    if (stop_relay) relay_stop(&a->r);
}

/* Whether the attack has run less than ms: attacks keep at it for a while
 * so that the probe's percentiles are taken while they run. */
static int g_active_ms = 1500; /* HOSTILE_ACTIVE_MS overrides it (bench: longer) */
#define ACTIVE_MS g_active_ms
static bool running(const attack_run *a, int ms) {
    return hs_now_ms() - a->started < ms;
}

/* ---- helpers for attackers ---------------------------------------------------------------- */

static void random_topic(char out[65]) {
    for (int i = 0; i < 64; i++)
        out[i] = "0123456789abcdef"[(unsigned)rand() % 16];
    out[64] = '\0';
}

static hs_conn *attacker_opts(hs_net *n, const hs_conn_opts *o) {
    hs_conn *c = hs_connect(n, o);
    CHECK(hs_wait_open(n, c, 3000), "an attacker from %s could not connect", o->iface);
    return c;
}

static hs_conn *attacker(hs_net *n, int port, const char *iface, bool answer) {
    hs_conn_opts o = {.port = port, .iface = iface, .answer_pushes = answer};
    hs_conn *c = hs_connect(n, &o);
    CHECK(hs_wait_open(n, c, 3000), "an attacker from %s could not connect", iface);
    return c;
}

/* A request and its answer (which must come within 10 s). */
static json_t *call(hs_net *n, hs_conn *c, int64_t id, const char *method, const char *params) {
    hs_request(c, id, method, params);
    json_t *a = hs_wait_answer(n, c, id, 10000);
    CHECK(a, "no answer to %s (connection %s, close code %d)", method,
          hs_is_done(c) ? "closed" : "open", hs_close_code(c));
    return a;
}

/* A message of len characters of base64's alphabet, tagged with i. */
static char *big_message(size_t len, int i) {
    char *m = malloc(len + 1);
    CHECK(m, "malloc");
    for (size_t k = 0; k < len; k++)
        m[k] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"[(k * 7 + (size_t)i) % 52];
    m[len] = '\0';
    char tag[16];
    snprintf(tag, sizeof tag, "m%08d", i);
    memcpy(m, tag, len < 9 ? len : 9);
    return m;
}

/* A database path in the work directory, with no file left from a run
 * before. */
static void fresh_db(char *out, size_t cap, const char *name) {
    snprintf(out, cap, "%s/%s", g_dir, name);
    static const char *const sides[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        char p[400];
        snprintf(p, sizeof p, "%s%s", out, sides[i]);
        unlink(p);
    }
}

static void publish_big(hs_net *n, hs_conn *c, int64_t id, const char *topic, size_t size, int i) {
    char *m = big_message(size, i);
    char *params = NULL;
    CHECK(asprintf(&params, "{\"topic\":\"%s\",\"message\":\"%s\",\"ttl\":600}", topic, m) > 0,
          "asprintf");
    json_t *a = call(n, c, id, "irn_publish", params);
    CHECK(!hs_error_code(a), "publish %d refused (%lld)", i, (long long)hs_error_code(a));
    json_decref(a);
    free(params);
    free(m);
}

/* Service n for ms milliseconds. */
static void pump(hs_net *n, int ms) {
    int64_t end = hs_now_ms() + ms;
    while (hs_now_ms() < end)
        hs_net_service(n, 5);
}

/* Lines of the relay's log that contain what. */
static int log_count(const relay *r, const char *what) {
    FILE *f = fopen(r->log, "r");
    if (!f) return 0;
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof line, f))
        if (strstr(line, what)) n++;
    fclose(f);
    return n;
}

/* The relay's accounting now (SIGUSR1 makes it log a stats line). */
typedef struct stats {
    long long memory, budget, stored, queued, messages;
} stats;

static stats relay_stats(const relay *r) {
    int before = log_count(r, "relay info: stats: ");
    kill(r->pid, SIGUSR1);
    int64_t end = hs_now_ms() + 2000;
    while (log_count(r, "relay info: stats: ") == before && hs_now_ms() < end)
        usleep(5000);
    FILE *f = fopen(r->log, "r");
    CHECK(f, "the relay's log");
    char line[1024], last[1024] = "";
    while (fgets(line, sizeof line, f))
        if (strstr(line, "relay info: stats: ")) snprintf(last, sizeof last, "%s", line);
    fclose(f);
    stats st = {0};
    const char *p = strstr(last, "stats: memory ");
    const char *m = strstr(last, " topics, ");
    CHECK(p && m &&
              sscanf(p, "stats: memory %lld of %lld bytes (stored %lld, queued %lld)", &st.memory,
                     &st.budget, &st.stored, &st.queued) == 4 &&
              sscanf(m, " topics, %lld messages", &st.messages) == 1,
          "no stats from the relay");
    return st;
}

/* ---- the attacks ------------------------------------------------------------------------- */

/* Nothing but the probe: the reference round trip. */
static void attack_idle(void) {
    attack_run a;
    const char *args[] = {NULL};
    attack_begin(&a, "idle", args);
    attack_end(&a, ACTIVE_MS + 500, true);
}

/* Hole 1: a topic holding more than a connection's send queue stays
 * readable, by subscription (pushed in pages as the client acknowledges)
 * and by irn_fetchMessages (pages capped in bytes, hasMore progresses). */
static void attack_big_topic(void) {
    char db[300];
    fresh_db(db, sizeof db, "big.db");
    const char *args[] = {"--db", db, "--max-queue", BIG_QUEUE, "--quota-bytes", "8M", NULL};
    attack_run a;
    attack_begin(&a, "big-topic", args);
    hs_net *n = hs_net_new();
    char t[65];
    random_topic(t);
    hs_conn *pub = attacker(n, a.r.port, "127.0.0.2", false);
    for (int i = 0; i < BIG_COUNT; i++)
        publish_big(n, pub, 10 + i, t, BIG_SIZE, i);
    char params[256];
    snprintf(params, sizeof params, "{\"topic\":\"%s\"}", t);
    /* Subscribed: every message, in pages, none closed for a full queue. */
    hs_conn *sub = attacker(n, a.r.port, "127.0.0.3", true);
    json_decref(call(n, sub, 1, "irn_subscribe", params));
    int64_t end = hs_now_ms() + 20000;
    while (hs_pushes(sub) < BIG_COUNT && !hs_is_done(sub) && hs_now_ms() < end)
        hs_net_service(n, 5);
    CHECK(hs_pushes(sub) == BIG_COUNT && !hs_is_done(sub),
          "the subscriber got %zu of %d messages (close code %d)", hs_pushes(sub), BIG_COUNT,
          hs_close_code(sub));
    /* Fetched: pages of at most 256 KiB (+ one message), hasMore moves on. */
    hs_conn *f = attacker(n, a.r.port, "127.0.0.4", false);
    int total = 0, pages = 0;
    bool more = true;
    while (more && pages < 100) {
        json_t *ans = call(n, f, 100 + pages, "irn_fetchMessages", params);
        json_t *res = json_object_get(ans, "result");
        CHECK(res, "fetch refused (%lld)", (long long)hs_error_code(ans));
        total += (int)json_array_size(json_object_get(res, "messages"));
        more = json_is_true(json_object_get(res, "hasMore"));
        json_decref(ans);
        pages++;
    }
    CHECK(total == BIG_COUNT && pages >= 4, "fetch gave %d messages in %d pages", total, pages);
    CHECK(hs_max_frame(f) <= (256u << 10) + BIG_SIZE + 4096, "a fetch answer of %zu bytes",
          hs_max_frame(f));
    printf("HOSTILE big-topic detail: %d messages of %d KiB pushed to the subscriber; fetched in "
           "%d pages, largest %zu bytes\n",
           BIG_COUNT, BIG_SIZE >> 10, pages, hs_max_frame(f));
    for (int64_t id = 1000; running(&a, ACTIVE_MS); id++)
        json_decref(call(n, f, id, "irn_fetchMessages", params));
    hs_net_free(n);
    attack_end(&a, 0, true);
}

/* Hole 2 and oversized fetches: many fetches of a big topic from
 * connections that never read their answers. Each answer is one page,
 * sized before it is built; a connection whose answers pile up is not read
 * from until it reads them (so it gets no more work done), and gets every
 * answer once it does. */
static void attack_fetch_storm(void) {
    const char *args[] = {"--max-queue", BIG_QUEUE, "--quota-bytes", "8M", NULL};
    attack_run a;
    attack_begin(&a, "fetch-storm", args);
    hs_net *n = hs_net_new();
    char t[65];
    random_topic(t);
    hs_conn *pub = attacker(n, a.r.port, "127.0.0.2", false);
    for (int i = 0; i < BIG_COUNT; i++)
        publish_big(n, pub, 10 + i, t, BIG_SIZE / 2, i);
    probe_reset(&a.p);
    a.started = hs_now_ms();
    char params[256];
    snprintf(params, sizeof params, "{\"topic\":\"%s\"}", t);
    hs_conn *fs[FETCHERS];
    for (int i = 0; i < FETCHERS; i++) {
        fs[i] = attacker(n, a.r.port, "127.0.0.5", false);
        hs_pause(fs[i]);
        for (int k = 0; k < FETCHES_EACH; k++)
            hs_request(fs[i], 10 + k, "irn_fetchMessages", params);
    }
    pump(n, ACTIVE_MS);
    /* One of them reads at last: every answer comes, each one page. */
    hs_resume(fs[0]);
    int answered = 0;
    for (int k = 0; k < FETCHES_EACH; k++) {
        json_t *ans = hs_wait_answer(n, fs[0], 10 + k, 5000);
        answered += ans && json_object_get(ans, "result");
        json_decref(ans);
    }
    printf("HOSTILE fetch-storm detail: %d fetchers x %d fetches of a %d MiB topic, not reading; "
           "the one that read got %d answers, largest %zu bytes\n",
           FETCHERS, FETCHES_EACH, BIG_COUNT * BIG_SIZE / 2 >> 20, answered, hs_max_frame(fs[0]));
    CHECK(answered == FETCHES_EACH, "a fetcher that read got %d of %d answers", answered,
          FETCHES_EACH);
    CHECK(hs_max_frame(fs[0]) <= (256u << 10) + BIG_SIZE / 2 + 4096, "a fetch answer of %zu bytes",
          hs_max_frame(fs[0]));
    hs_net_free(n);
    attack_end(&a, 0, true);
}

/* Hole 3: storage counts every message with its overhead and bounds
 * their number per publisher and in total: one-byte messages are refused
 * long before memory runs out. */
static int tiny_batches(hs_net *n, hs_conn *c, int64_t *id, const char **why) {
    int accepted = 0;
    *why = "";
    static char params[500 * 120 + 64];
    for (int b = 0; b < 100; b++) {
        size_t len = (size_t)sprintf(params, "{\"messages\":[");
        for (int i = 0; i < 500; i++) {
            char t[65];
            random_topic(t);
            len +=
                (size_t)sprintf(params + len, "%s{\"topic\":\"%s\",\"message\":\"x\",\"ttl\":600}",
                                i ? "," : "", t);
        }
        sprintf(params + len, "]}");
        json_t *ans = call(n, c, (*id)++, "irn_batchPublish", params);
        int64_t code = hs_error_code(ans);
        if (code) {
            static char msg[160];
            snprintf(msg, sizeof msg, "%lld %s", (long long)code,
                     json_string_value(json_object_get(json_object_get(ans, "error"), "message")));
            *why = msg;
            json_decref(ans);
            return accepted;
        }
        accepted += 500;
        json_decref(ans);
    }
    return accepted;
}

static void attack_tiny_flood(void) {
    const char *args[] = {
        "--quota-bytes", TINY_QUOTA_BYTES, "--max-stored", "8M", "--rate-limit", "0", NULL};
    attack_run a;
    attack_begin(&a, "tiny-flood", args);
    hs_net *n = hs_net_new();
    int64_t id = 1;
    const char *why;
    hs_conn *x = attacker(n, a.r.port, "127.0.0.2", false);
    int from_x = tiny_batches(n, x, &id, &why);
    CHECK(strstr(why, "-32000") && strstr(why, "quota reached: stored bytes"),
          "one address stored %d one-byte messages, then: %s", from_x, why);
    /* Each counts with its overhead: a few hundred bytes, not one. */
    CHECK(from_x >= 500 && (size_t)from_x * 200 <= (size_t)1 << 20,
          "%d one-byte messages in a quota of 1 MiB", from_x);
    /* Another address has a quota of its own. */
    hs_conn *y = attacker(n, a.r.port, "127.0.0.3", false);
    int from_y = tiny_batches(n, y, &id, &why);
    CHECK(from_y == from_x, "the second address stored %d (the first %d), then: %s", from_y, from_x,
          why);
    stats st = relay_stats(&a.r);
    CHECK(st.messages >= from_x + from_y, "the relay holds %lld messages", st.messages);
    printf("HOSTILE tiny-flood detail: one-byte messages: an address's quota of %s reached at %d, "
           "another address's at %d; each costs %lld bytes of accounted memory\n",
           TINY_QUOTA_BYTES, from_x, from_y, st.stored / st.messages);
    while (running(&a, ACTIVE_MS))
        tiny_batches(n, y, &id, &why); /* refused, each parsed */
    hs_net_free(n);
    attack_end(&a, 0, true);
}

/* FNV-1a 64 over s, the hash the topic table had. */
static uint64_t fnv1a(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return h;
}

/* FLOOD topics whose FNV-1a hashes agree in their low 16 bits: one chain
 * of the old table. The last four hex digits are found by meeting in the
 * middle on 16-bit states (multiplying by the odd prime is invertible). */
static char (*colliding_topics(int count))[65] {
    char(*ts)[65] = calloc((size_t)count, sizeof *ts);
    CHECK(ts, "calloc");
    static const char hex[] = "0123456789abcdef";
    const uint16_t p = (uint16_t)0x100000001b3ull;
    uint16_t pinv = 1;
    for (int i = 0; i < 15; i++)
        pinv = (uint16_t)(pinv * pinv * p); /* p^(2^16-1) = p^-1 */
    static int16_t back[65536]; /* state after 2 chars -> index of the last 2 chars, or -1 */
    memset(back, -1, sizeof back);
    for (int k = 0; k < 256; k++) {
        uint16_t y = 0;
        y = (uint16_t)((uint16_t)(y * pinv) ^ (unsigned char)hex[k & 15]);
        y = (uint16_t)((uint16_t)(y * pinv) ^ (unsigned char)hex[k >> 4]);
        back[y] = (int16_t)k;
    }
    int made = 0;
    while (made < count) {
        char *t = ts[made];
        for (int i = 0; i < 60; i++)
            t[i] = hex[(unsigned)rand() % 16];
        uint16_t s0 = (uint16_t)fnv1a(t, 60);
        for (int k = 0; k < 256; k++) {
            uint16_t x = (uint16_t)((s0 ^ (unsigned char)hex[k >> 4]) * p);
            x = (uint16_t)((x ^ (unsigned char)hex[k & 15]) * p);
            if (back[x] < 0) continue;
            int j = back[x];
            t[60] = hex[k >> 4], t[61] = hex[k & 15], t[62] = hex[j >> 4], t[63] = hex[j & 15];
            t[64] = '\0';
            CHECK((uint16_t)fnv1a(t, 64) == 0, "collision construction");
            made++;
            break;
        }
    }
    return ts;
}

/* Publish one message on each of the topics, 500 a request; ms taken. */
static int64_t flood(int port, char (*ts)[65], int count) {
    hs_net *n = hs_net_new();
    hs_conn *c = attacker(n, port, "127.0.0.2", false);
    static char params[500 * 120 + 64];
    int64_t t0 = hs_now_ms();
    for (int b = 0; b < count / 500; b++) {
        size_t len = (size_t)sprintf(params, "{\"messages\":[");
        for (int i = 0; i < 500; i++)
            len +=
                (size_t)sprintf(params + len, "%s{\"topic\":\"%s\",\"message\":\"f\",\"ttl\":600}",
                                i ? "," : "", ts[b * 500 + i]);
        sprintf(params + len, "]}");
        json_t *ans = call(n, c, 10 + b, "irn_batchPublish", params);
        CHECK(!hs_error_code(ans), "batch %d refused (%lld)", b, (long long)hs_error_code(ans));
        json_decref(ans);
    }
    int64_t took = hs_now_ms() - t0;
    hs_net_free(n);
    return took;
}

/* Hole 4: topics chosen to collide in the old unkeyed hash cost nothing
 * special now (SipHash under a key of the process), and a restart on a
 * database holding them stays linear. */
static void attack_hash_flood(void) {
    char(*ts)[65] = colliding_topics(FLOOD_TOPICS);
    /* one publisher, all of the storage */
    const char *args[] = {"--rate-limit", "0", "--max-stored", "20M", "--quota-bytes", "20M", NULL};
    attack_run a;
    attack_begin(&a, "hash-flood", args);
    int64_t took = flood(a.r.port, ts, FLOOD_TOPICS);
    /* ... then look them up, 500 a request, for the rest of the attack */
    hs_net *n = hs_net_new();
    hs_conn *c = attacker(n, a.r.port, "127.0.0.3", false);
    static char params[500 * 70 + 64];
    for (int64_t id = 1; running(&a, ACTIVE_MS); id++) {
        size_t len = (size_t)sprintf(params, "{\"topics\":[");
        for (int i = 0; i < 500; i++)
            len += (size_t)sprintf(params + len, "%s\"%s\"", i ? "," : "",
                                   ts[(size_t)rand() % FLOOD_TOPICS]);
        sprintf(params + len, "]}");
        json_t *ans = call(n, c, id, "irn_batchFetchMessages", params);
        CHECK(!hs_error_code(ans), "a fetch of colliding topics refused (%lld)",
              (long long)hs_error_code(ans));
        json_decref(ans);
    }
    hs_net_free(n);
    attack_end(&a, 0, true);
    /* The same topics in a database, and a restart on it. */
    char db[300];
    fresh_db(db, sizeof db, "flood.db");
    const char *args_db[] = {"--db", db, "--rate-limit", "0", "--quota-bytes", "20M", NULL};
    relay r;
    relay_start(&r, args_db);
    flood(r.port, ts, FLOOD_TOPICS);
    relay_stop(&r);
    int64_t t0 = hs_now_ms();
    const char *args2[] = {"--db", db, NULL};
    relay_start(&r, args2);
    int64_t restart = hs_now_ms() - t0;
    char want[64];
    snprintf(want, sizeof want, " %d messages on %d topics restored", FLOOD_TOPICS, FLOOD_TOPICS);
    CHECK(log_count(&r, want) == 1, "the restart did not restore the %d topics", FLOOD_TOPICS);
    relay_stop(&r);
    printf("HOSTILE hash-flood detail: %d topics colliding in FNV-1a's low 16 bits published in "
           "%lld ms; a restart on them in %lld ms\n",
           FLOOD_TOPICS, (long long)took, (long long)restart);
    CHECK(took < FLOOD_MAX_MS, "publishing %d colliding topics took %lld ms", FLOOD_TOPICS,
          (long long)took);
    CHECK(restart < RESTART_MAX_MS, "a restart on them took %lld ms", (long long)restart);
    free(ts);
}

/* Hole 5: subscribers that never read. Per address the connections are
 * capped; in flight per connection the pushes are capped; all together the
 * memory budget holds, and the biggest unread queues are closed. */
static void attack_never_reading(void) {
    char per[16];
    snprintf(per, sizeof per, "%d", UNREAD_PER_ADDR_LIMIT);
    /* small kernel buffers: what a subscriber does not read stays in the
     * relay's own queues, which its budget bounds */
    const char *args[] = {"--max-conns-per-addr",
                          per,
                          "--rate-limit",
                          "0",
                          "--socket-sndbuf",
                          "64K",
                          "--quota-bytes",
                          "16M",
                          "--max-stored",
                          "16M",
                          NULL};
    attack_run a;
    attack_begin(&a, "never-reading", args);
    hs_net *n = hs_net_new();
    /* One address: the limit. */
    hs_conn *same[UNREAD_PER_ADDR_LIMIT + 4];
    for (int i = 0; i < UNREAD_PER_ADDR_LIMIT + 4; i++) {
        hs_conn_opts o = {.port = a.r.port, .iface = "127.0.0.2"};
        same[i] = hs_connect(n, &o);
    }
    int opened = 0;
    int64_t end = hs_now_ms() + 3000;
    for (;;) {
        int settled = 0;
        opened = 0;
        for (int i = 0; i < UNREAD_PER_ADDR_LIMIT + 4; i++) {
            settled += hs_is_open(same[i]) || hs_is_done(same[i]);
            opened += hs_is_open(same[i]);
        }
        if (settled == UNREAD_PER_ADDR_LIMIT + 4 || hs_now_ms() > end) break;
        hs_net_service(n, 5);
    }
    CHECK(opened == UNREAD_PER_ADDR_LIMIT, "%d connections from one address opened (limit %d)",
          opened, UNREAD_PER_ADDR_LIMIT);
    for (int i = 0; i < UNREAD_PER_ADDR_LIMIT + 4; i++)
        hs_close(same[i]);
    /* Many addresses, one subscriber each, none reading. */
    char t[65], params[256];
    random_topic(t);
    snprintf(params, sizeof params, "{\"topic\":\"%s\"}", t);
    hs_conn *subs[UNREAD_ADDRS];
    for (int i = 0; i < UNREAD_ADDRS; i++) {
        char iface[32];
        snprintf(iface, sizeof iface, "127.0.1.%d", i + 1);
        /* what it does not read stays at the relay, not in our kernel */
        hs_conn_opts o = {.port = a.r.port, .iface = iface, .small_rcvbuf = true};
        subs[i] = attacker_opts(n, &o);
        json_decref(call(n, subs[i], 1, "irn_subscribe", params));
        hs_pause(subs[i]);
    }
    probe_reset(&a.p);
    a.started = hs_now_ms();
    hs_conn *pub = attacker(n, a.r.port, "127.0.0.3", false);
    char *m = big_message(UNREAD_MSG, 0);
    int accepted = 0, busy = 0;
    for (int i = 0; i < UNREAD_MSGS; i++) {
        m[1] = (char)('A' + i % 26), m[2] = (char)('A' + i / 26 % 26);
        char *p = NULL;
        CHECK(asprintf(&p, "{\"topic\":\"%s\",\"message\":\"%s\",\"ttl\":600}", t, m) > 0,
              "asprintf");
        json_t *ans = call(n, pub, 100 + i, "irn_publish", p);
        int64_t code = hs_error_code(ans);
        CHECK(code == 0 || code == -32000 || code == 3001, "publish answered %lld",
              (long long)code);
        accepted += code == 0;
        busy += code != 0;
        json_decref(ans);
        free(p);
        pump(n, 25);
    }
    free(m);
    pump(n, (int)(ACTIVE_MS - (hs_now_ms() - a.started)));
    stats st = relay_stats(&a.r);
    int closed = log_count(&a.r, "closing 1008");
    printf("HOSTILE never-reading stats: accounted %lld of %lld bytes, %lld of them queued\n",
           st.memory, st.budget, st.queued);
    printf("HOSTILE never-reading detail: %d from one address opened (limit %d); %d subscribers "
           "on %d addresses never read; %d of %d publishes of %d KiB taken, %d refused (3001: "
           "the relay's memory); %d closed for their queue\n",
           opened, UNREAD_PER_ADDR_LIMIT, UNREAD_ADDRS, UNREAD_ADDRS, accepted, UNREAD_MSGS,
           UNREAD_MSG >> 10, busy, closed);
    CHECK(accepted > 0, "no publish was taken");
    hs_net_free(n);
    attack_end(&a, 0, true);
}

/* A connect path carrying a relay JWT for aud. */
static void jwt_path(char *out, size_t cap, const char *aud, uint8_t fill) {
    uint8_t seed[PL_ED25519_SEED_BYTES];
    memset(seed, fill, sizeof seed);
    char *jwt = NULL;
    CHECK(pl_jwt_sign(&jwt, seed, "hostile", aud, pl_wall_clock_ms() / 1000, 3600) == PL_OK, "jwt");
    snprintf(out, cap, "/?auth=%s", jwt);
    free(jwt);
}

/* Hole 6: the JWT audience is the relay's public URL, not the Host header
 * the client sends: a token for another relay stays refused whatever Host
 * comes with it. */
static void attack_audience(void) {
    static char probe_path[2048], probe_path_b[2048];
    jwt_path(probe_path, sizeof probe_path, "ws://relay-a.test", 1);
    jwt_path(probe_path_b, sizeof probe_path_b, "ws://relay-a.test", 5);
    g_probe_path = probe_path;
    g_probe_path_b = probe_path_b;
    const char *args[] = {"--require-auth", "--public-url", "ws://relay-a.test", NULL};
    attack_run a;
    attack_begin(&a, "audience", args);
    g_probe_path = g_probe_path_b = NULL;
    hs_net *n = hs_net_new();
    char path[2048], self[64];
    jwt_path(path, sizeof path, "ws://relay-b.test", 2);
    hs_conn_opts o = {.port = a.r.port, .iface = "127.0.0.2", .path = path, .host = "relay-b.test"};
    hs_conn *c = hs_connect(n, &o);
    CHECK(!hs_wait_open(n, c, 3000) && hs_http_status(c) == 401,
          "a token for another relay, sent with its Host, was not refused (HTTP %d)",
          hs_http_status(c));
    snprintf(self, sizeof self, "ws://127.0.0.1:%d", a.r.port);
    jwt_path(path, sizeof path, self, 3);
    o.host = NULL;
    c = hs_connect(n, &o);
    CHECK(!hs_wait_open(n, c, 3000) && hs_http_status(c) == 401,
          "a token for the listening address was taken although --public-url names another");
    jwt_path(path, sizeof path, "ws://relay-a.test/", 4);
    o.host = "anything.test";
    c = hs_connect(n, &o);
    CHECK(hs_wait_open(n, c, 3000), "a token for the public URL was refused (HTTP %d)",
          hs_http_status(c));
    printf("HOSTILE audience detail: aud of another relay with its Host -> 401; aud of the "
           "listening address -> 401; aud of --public-url with any Host -> open\n");
    jwt_path(path, sizeof path, "ws://relay-b.test", 2);
    o.host = "relay-b.test";
    while (running(&a, ACTIVE_MS)) {
        c = hs_connect(n, &o);
        CHECK(!hs_wait_open(n, c, 3000) && hs_http_status(c) == 401, "a foreign token was taken");
    }
    hs_net_free(n);
    attack_end(&a, 0, true);
}

static unsigned mode_of(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (unsigned)(st.st_mode & 0777) : 0;
}

/* Hole 7: the mailbox and its WAL are owner-only whatever the umask. */
static void attack_db_mode(void) {
    char db[300], side[320];
    fresh_db(db, sizeof db, "mode.db");
    mode_t old = umask(022);
    const char *args[] = {"--db", db, NULL};
    attack_run a;
    attack_begin(&a, "db-mode", args);
    umask(old);
    hs_net *n = hs_net_new();
    hs_conn *c = attacker(n, a.r.port, "127.0.0.2", false);
    char t[65], params[256];
    random_topic(t);
    snprintf(params, sizeof params, "{\"topic\":\"%s\",\"message\":\"m\",\"ttl\":60}", t);
    json_decref(call(n, c, 1, "irn_publish", params));
    CHECK(mode_of(db) == 0600, "the database is mode %o", mode_of(db));
    snprintf(side, sizeof side, "%s-wal", db);
    CHECK(mode_of(side) == 0600, "the WAL is mode %o", mode_of(side));
    snprintf(side, sizeof side, "%s-shm", db);
    CHECK(mode_of(side) == 0600, "the SHM file is mode %o", mode_of(side));
    printf("HOSTILE db-mode detail: database, -wal, -shm 0600 under umask 022\n");
    hs_net_free(n);
    attack_end(&a, ACTIVE_MS, true);
}

/* ---- hole 8: a hostile relay against our relay client ---------------------------------- */

typedef struct fake_relay {
    pthread_t th;
    struct lws_context *ctx;
    int port;
    atomic_bool stop;
    atomic_long pushed;
    char topic[65];
} fake_relay;

static fake_relay *g_fake;

static int fake_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                   size_t len) {
    (void)user, (void)in, (void)len;
    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
        lws_rx_flow_control(wsi, 0); /* never read what the client sends */
        lws_callback_on_writable(wsi);
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE: {
        unsigned char buf[LWS_PRE + 512];
        for (int i = 0; i < 64 && !lws_send_pipe_choked(wsi); i++) {
            long k = atomic_fetch_add(&g_fake->pushed, 1);
            int n = snprintf((char *)buf + LWS_PRE, 512,
                             "{\"id\":%ld,\"jsonrpc\":\"2.0\",\"method\":\"irn_subscription\","
                             "\"params\":{\"id\":\"s\",\"data\":{\"topic\":\"%s\",\"message\":"
                             "\"aGk=\",\"publishedAt\":1,\"tag\":0}}}",
                             1000 + k, g_fake->topic);
            if (lws_write(wsi, buf + LWS_PRE, (size_t)n, LWS_WRITE_TEXT) < n) return -1;
        }
        lws_callback_on_writable(wsi);
        return 0;
    }
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

static const struct lws_protocols fake_protocols[] = {
    {"fake", fake_cb, 0, 4096, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void *fake_main(void *arg) {
    fake_relay *f = arg;
    while (!atomic_load(&f->stop))
        lws_service(f->ctx, 10);
    return NULL;
}

static void rc_state(void *ud, pl_transport *t, pl_transport_state s, pl_err err) {
    (void)t;
    int *dropped = ud;
    if (s == PL_TRANSPORT_RECONNECTING && err == PL_ERR_TIMEOUT) (*dropped)++;
}

static void rc_message(void *ud, pl_transport *t, const char *topic, const uint8_t *data,
                       size_t len, const pl_delivery_info *info) {
    (void)ud, (void)t, (void)topic, (void)data, (void)len, (void)info;
}

static long self_rss_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long v = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) v = atol(line + 6);
    fclose(f);
    return v;
}

static void rc_closed(void *ud) {
    *(bool *)ud = true;
}

static void attack_client_queue(void) {
    g_attack = "client-queue";
    fake_relay f;
    memset(&f, 0, sizeof f);
    g_fake = &f;
    random_topic(f.topic);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = 0;
    info.iface = "127.0.0.1";
    info.protocols = fake_protocols;
    info.gid = info.uid = -1;
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
    f.ctx = lws_create_context(&info);
    CHECK(f.ctx, "the fake relay could not start");
    f.port = lws_get_vhost_listen_port(lws_get_vhost_by_name(f.ctx, "default"));
    CHECK(pthread_create(&f.th, NULL, fake_main, &f) == 0, "pthread_create");
    long rss0 = self_rss_kb();
    uv_loop_t loop;
    uv_loop_init(&loop);
    pl_driver *d;
    CHECK(pl_driver_new(&d, &loop) == PL_OK, "driver");
    int dropped = 0;
    char url[64];
    snprintf(url, sizeof url, "ws://127.0.0.1:%d", f.port);
    uint8_t seed[PL_ED25519_SEED_BYTES] = {9};
    pl_relay_client_opts o;
    memset(&o, 0, sizeof o);
    o.url = url;
    o.seed = seed;
    o.handler = (pl_transport_handler){rc_message, rc_state, &dropped, NULL};
    o.max_unsent_bytes = 256 << 10;
    o.reconnect_min_ms = 5000; /* one connection is enough to see it */
    o.reconnect_max_ms = 5000;
    pl_transport *t;
    CHECK(pl_relay_client_new(&t, d, &o) == PL_OK, "relay client");
    CHECK(pl_transport_subscribe(t, f.topic) == PL_OK, "subscribe");
    int64_t t0 = hs_now_ms();
    long peak = rss0;
    while (!dropped && hs_now_ms() - t0 < 15000) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(1000);
        long r = self_rss_kb();
        if (r > peak) peak = r;
    }
    int64_t took = hs_now_ms() - t0;
    bool closed = false;
    pl_transport_close(t, 0, rc_closed, &closed);
    while (!closed)
        uv_run(&loop, UV_RUN_ONCE);
    bool dclosed = false;
    pl_driver_close(d, rc_closed, &dclosed);
    while (!dclosed)
        uv_run(&loop, UV_RUN_ONCE);
    uv_run(&loop, UV_RUN_NOWAIT);
    uv_loop_close(&loop);
    atomic_store(&f.stop, true);
    lws_cancel_service(f.ctx);
    pthread_join(f.th, NULL);
    lws_context_destroy(f.ctx);
    printf("HOSTILE %-20s dropped_after_ms=%lld pushes=%ld client_rss_growth_kb=%ld\n", g_attack,
           (long long)took, atomic_load(&f.pushed), peak - rss0);
    CHECK(dropped, "the client kept a relay that never reads for %lld ms", (long long)took);
    CHECK(peak - rss0 < 64 * 1024, "the client grew by %ld KiB", peak - rss0);
}

/* ---- hole 9: a busy pairing ---------------------------------------------------------------- */

/* Wait for the push of text at c (other pushes are dropped). */
static bool wait_push(hs_net *n, hs_conn *c, const char *text, int timeout_ms) {
    int64_t end = hs_now_ms() + timeout_ms;
    while (hs_now_ms() < end && !hs_is_done(c)) {
        json_t *p;
        while ((p = hs_take_push(c))) {
            const char *m = json_string_value(
                json_object_get(json_object_get(json_object_get(p, "params"), "data"), "message"));
            bool hit = m && !strcmp(m, text);
            json_decref(p);
            if (hit) return true;
        }
        hs_net_service(n, 2);
    }
    return false;
}

/* Steady pinging on one pairing through a small mailbox keeps flowing:
 * what both peers acknowledged makes room. A listener that never
 * acknowledges fills the topic, and the publisher gets an error answer. */
static void attack_busy_pairing(void) {
    char limit[16];
    snprintf(limit, sizeof limit, "%d", PING_LIMIT);
    const char *args[] = {"--mailbox-limit", limit, "--rate-limit", "0", NULL};
    attack_run a;
    attack_begin(&a, "busy-pairing", args);
    hs_net *n = hs_net_new();
    char t[65], params[256];
    random_topic(t);
    snprintf(params, sizeof params, "{\"topic\":\"%s\"}", t);
    hs_conn_opts oa = {
        .port = a.r.port, .iface = "127.0.0.2", .answer_pushes = true, .keep_pushes = true};
    hs_conn_opts ob = {
        .port = a.r.port, .iface = "127.0.0.3", .answer_pushes = true, .keep_pushes = true};
    hs_conn *pa = hs_connect(n, &oa), *pb = hs_connect(n, &ob);
    CHECK(hs_wait_open(n, pa, 3000) && hs_wait_open(n, pb, 3000), "connect");
    json_decref(call(n, pa, 1, "irn_subscribe", params));
    json_decref(call(n, pb, 1, "irn_subscribe", params));
    int64_t id = 10;
    int rounds = 0;
    for (int i = 0; i < PING_ROUNDS || running(&a, ACTIVE_MS); i++, rounds++) {
        char text[32];
        snprintf(text, sizeof text, "ping%d", i);
        snprintf(params, sizeof params, "{\"topic\":\"%s\",\"message\":\"%s\",\"ttl\":30}", t,
                 text);
        json_t *ans = call(n, pa, id++, "irn_publish", params);
        CHECK(!hs_error_code(ans), "ping %d refused (%lld)", i, (long long)hs_error_code(ans));
        json_decref(ans);
        CHECK(wait_push(n, pb, text, 5000), "ping %d did not arrive", i);
        snprintf(text, sizeof text, "pong%d", i);
        snprintf(params, sizeof params, "{\"topic\":\"%s\",\"message\":\"%s\",\"ttl\":30}", t,
                 text);
        ans = call(n, pb, id++, "irn_publish", params);
        CHECK(!hs_error_code(ans), "pong %d refused (%lld)", i, (long long)hs_error_code(ans));
        json_decref(ans);
        CHECK(wait_push(n, pa, text, 5000), "pong %d did not arrive", i);
    }
    /* A listener that never acknowledges: refused, with an answer. */
    hs_conn_opts oc = {.port = a.r.port, .iface = "127.0.0.4"};
    hs_conn *pc = hs_connect(n, &oc);
    CHECK(hs_wait_open(n, pc, 3000), "connect");
    snprintf(params, sizeof params, "{\"topic\":\"%s\"}", t);
    json_decref(call(n, pc, 1, "irn_subscribe", params));
    int64_t refused = 0;
    int extra = 0;
    for (; extra < 2 * PING_LIMIT && !refused; extra++) {
        snprintf(params, sizeof params, "{\"topic\":\"%s\",\"message\":\"more%d\",\"ttl\":30}", t,
                 extra);
        json_t *ans = call(n, pa, id++, "irn_publish", params);
        refused = hs_error_code(ans);
        json_decref(ans);
        pump(n, 2);
    }
    CHECK(refused == -32000, "a topic full of unacknowledged messages answered %lld",
          (long long)refused);
    printf("HOSTILE busy-pairing detail: %d ping-pong rounds through a mailbox of %d; with a "
           "listener that never acknowledges, publish %d was refused with -32000\n",
           rounds, PING_LIMIT, extra);
    hs_net_free(n);
    attack_end(&a, 0, true);
}

/* ---- slowloris, storms, bombs ------------------------------------------------------------- */

static int raw_connect(int port, const char *iface) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0, "socket");
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    inet_pton(AF_INET, iface, &sa.sin_addr);
    CHECK(bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0, "bind %s", iface);
    sa.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Whether the relay closed fd (EOF or reset). */
static bool raw_closed(int fd) {
    char buf[256];
    ssize_t r = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    return r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

/* Sockets that send their upgrade request a byte at a time: beyond the
 * per-address limit they are closed at accept, the others when the
 * handshake timeout passes; a new client connects meanwhile. */
static void attack_slowloris(void) {
    char per[16], hs[16];
    snprintf(per, sizeof per, "%d", SLOW_LIMIT);
    snprintf(hs, sizeof hs, "%d", SLOW_TIMEOUT_S);
    const char *args[] = {"--max-conns-per-addr", per, "--handshake-timeout", hs, NULL};
    attack_run a;
    attack_begin(&a, "slowloris", args);
    int fds[SLOW_SOCKETS];
    bool closed[SLOW_SOCKETS] = {false};
    for (int i = 0; i < SLOW_SOCKETS; i++)
        fds[i] = raw_connect(a.r.port, "127.0.0.2");
    usleep(100000);
    static const char req[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nX-Slow: ";
    for (int i = 0; i < SLOW_SOCKETS; i++)
        if (fds[i] >= 0) (void)!send(fds[i], req, sizeof req - 1, MSG_NOSIGNAL);
    usleep(300000);
    int early = 0;
    for (int i = 0; i < SLOW_SOCKETS; i++)
        if (fds[i] < 0 || raw_closed(fds[i])) closed[i] = true, early++;
    /* a well-behaved client connects while they hold their sockets */
    hs_net *n = hs_net_new();
    int64_t t0 = hs_now_ms();
    hs_conn_opts o = {.port = a.r.port};
    hs_conn *c = hs_connect(n, &o);
    CHECK(hs_wait_open(n, c, 1000), "a new client could not connect during the attack");
    int64_t connect_ms = hs_now_ms() - t0;
    int64_t end = hs_now_ms() + (SLOW_TIMEOUT_S + 3) * 1000;
    int open = SLOW_SOCKETS - early;
    while (open > 0 && hs_now_ms() < end) {
        for (int i = 0; i < SLOW_SOCKETS; i++) {
            if (closed[i]) continue;
            if (raw_closed(fds[i])) {
                closed[i] = true;
                open--;
                continue;
            }
            (void)!send(fds[i], "a", 1, MSG_NOSIGNAL);
        }
        hs_net_service(n, 100);
    }
    int64_t all_ms = hs_now_ms() - t0;
    for (int i = 0; i < SLOW_SOCKETS; i++)
        if (fds[i] >= 0) close(fds[i]);
    printf("HOSTILE slowloris detail: %d sockets, %d closed at accept, the rest closed by the "
           "handshake timeout (%d s) within %lld ms; a new client connected in %lld ms\n",
           SLOW_SOCKETS, early, SLOW_TIMEOUT_S, (long long)all_ms, (long long)connect_ms);
    CHECK(early == SLOW_SOCKETS - SLOW_LIMIT, "%d sockets closed at accept (limit %d of %d)", early,
          SLOW_LIMIT, SLOW_SOCKETS);
    CHECK(open == 0, "%d slow sockets still open after %d s", open, SLOW_TIMEOUT_S + 3);
    hs_net_free(n);
    attack_end(&a, 0, true);
}

/* Connections that open, subscribe, fetch and go, as fast as they can,
 * from several addresses, with bare TCP connects among them. */
static void attack_reconnect_storm(void) {
    const char *args[] = {NULL};
    attack_run a;
    attack_begin(&a, "reconnect-storm", args);
    hs_net *n = hs_net_new();
    int cycles = 0, raw = 0;
    int storm_ms = STORM_MS > ACTIVE_MS ? STORM_MS : ACTIVE_MS;
    int64_t end = hs_now_ms() + storm_ms;
    while (hs_now_ms() < end) {
        hs_conn *cs[16];
        for (int i = 0; i < 16; i++) {
            char iface[32];
            snprintf(iface, sizeof iface, "127.0.2.%d", 1 + (cycles + i) % STORM_ADDRS);
            hs_conn_opts o = {.port = a.r.port, .iface = iface};
            cs[i] = hs_connect(n, &o);
        }
        int64_t deadline = hs_now_ms() + 2000;
        for (int i = 0; i < 16; i++) {
            while (!hs_is_open(cs[i]) && !hs_is_done(cs[i]) && hs_now_ms() < deadline)
                hs_net_service(n, 1);
            if (!hs_is_open(cs[i])) continue;
            /* churn, not storage (tiny-flood fills storage): each one
             * subscribes to three topics and fetches one */
            char t[3][65], params[512];
            for (int k = 0; k < 3; k++)
                random_topic(t[k]);
            snprintf(params, sizeof params, "{\"topics\":[\"%s\",\"%s\",\"%s\"]}", t[0], t[1],
                     t[2]);
            hs_request(cs[i], 1, "irn_batchSubscribe", params);
            snprintf(params, sizeof params, "{\"topic\":\"%s\"}", t[0]);
            hs_request(cs[i], 2, "irn_fetchMessages", params);
        }
        hs_net_service(n, 1);
        for (int i = 0; i < 16; i++)
            hs_close(cs[i]);
        for (int i = 0; i < 8; i++) {
            int fd = raw_connect(a.r.port, "127.0.2.200");
            if (fd >= 0) close(fd), raw++;
        }
        hs_net_service(n, 1);
        cycles += 16;
    }
    hs_net_free(n);
    /* The relay is still there for newcomers. */
    n = hs_net_new();
    pump(n, 200);
    hs_conn *c = attacker(n, a.r.port, "127.0.0.9", false);
    char t[65], params[256];
    random_topic(t);
    snprintf(params, sizeof params, "{\"topic\":\"%s\"}", t);
    json_t *ans = call(n, c, 1, "irn_subscribe", params);
    CHECK(!hs_error_code(ans), "subscribe after the storm refused");
    json_decref(ans);
    printf("HOSTILE reconnect-storm detail: %d WebSocket connections and %d bare TCP connects in "
           "%d ms from %d addresses\n",
           cycles, raw, storm_ms, STORM_ADDRS + 1);
    hs_net_free(n);
    attack_end(&a, 0, true);
}

/* Frames within the size limit that would cost jansson ~90 MB each to
 * parse: refused by their count of values, before parsing. */
static void attack_json_bomb(void) {
    const char *args[] = {NULL};
    attack_run a;
    attack_begin(&a, "json-bomb", args);
    hs_net *n = hs_net_new();
    hs_conn *c = attacker(n, a.r.port, "127.0.0.2", false);
    size_t cap = (1u << 20) - 64;
    char *bomb = malloc(cap + 1);
    CHECK(bomb, "malloc");
    size_t len = 0;
    bomb[len++] = '[';
    while (len + 4 < cap) {
        memcpy(bomb + len, "{},", 3);
        len += 3;
    }
    bomb[len - 1] = ']';
    int refused = 0, sent = 0;
    for (; sent < BOMB_FRAMES || running(&a, ACTIVE_MS); sent++) {
        hs_send(c, bomb, len);
        json_t *ans = hs_wait_answer(n, c, -1, 5000);
        CHECK(ans && hs_error_code(ans) == -32600, "a bomb was not refused with -32600");
        refused++;
        json_decref(ans);
    }
    int64_t end = hs_now_ms() + 10000;
    while (refused < sent && hs_now_ms() < end && !hs_is_done(c)) {
        hs_net_service(n, 5);
        json_t *ans;
        while ((ans = hs_take_answer(c, -1))) {
            CHECK(hs_error_code(ans) == -32600, "a bomb answered %lld",
                  (long long)hs_error_code(ans));
            refused++;
            json_decref(ans);
        }
    }
    free(bomb);
    printf("HOSTILE json-bomb detail: %d frames of 1 MiB of \"{},\" refused with -32600\n",
           refused);
    CHECK(refused == sent, "%d of %d bombs answered", refused, sent);
    hs_net_free(n);
    attack_end(&a, 0, true);
}

/* ---- main ------------------------------------------------------------------------------------ */

static const struct {
    const char *name;
    void (*fn)(void);
} attacks[] = {
    {"idle", attack_idle},
    {"big-topic", attack_big_topic},
    {"fetch-storm", attack_fetch_storm},
    {"tiny-flood", attack_tiny_flood},
    {"hash-flood", attack_hash_flood},
    {"never-reading", attack_never_reading},
    {"audience", attack_audience},
    {"db-mode", attack_db_mode},
    {"client-queue", attack_client_queue},
    {"busy-pairing", attack_busy_pairing},
    {"slowloris", attack_slowloris},
    {"reconnect-storm", attack_reconnect_storm},
    {"json-bomb", attack_json_bomb},
};

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    lws_set_log_level(0, NULL);
    srand((unsigned)getpid() ^ (unsigned)time(NULL));
    CHECK(pl_init() == PL_OK, "pl_init");
    if (getenv("HOSTILE_BUDGET_MB") && atoi(getenv("HOSTILE_BUDGET_MB")) >= 48) {
        g_budget_mb = atoi(getenv("HOSTILE_BUDGET_MB"));
        snprintf(g_budget_arg, sizeof g_budget_arg, "%dM", g_budget_mb);
    }
    if (getenv("HOSTILE_ACTIVE_MS") && atoi(getenv("HOSTILE_ACTIVE_MS")) >= 500)
        g_active_ms = atoi(getenv("HOSTILE_ACTIVE_MS"));
    int first = 1;
    g_cli = getenv("PL_CLI");
    if (argc > 1 && strchr(argv[1], '/')) g_cli = argv[first++];
    CHECK(g_cli && access(g_cli, X_OK) == 0, "no pairlink binary (set PL_CLI or pass its path)");
    snprintf(g_dir, sizeof g_dir, "/tmp/pl-hostile-XXXXXX");
    CHECK(mkdtemp(g_dir), "mkdtemp");
    int64_t t0 = hs_now_ms();
    int ran = 0;
    for (size_t i = 0; i < sizeof attacks / sizeof attacks[0]; i++) {
        bool want = argc <= first;
        for (int k = first; k < argc; k++)
            want |= !strcmp(argv[k], attacks[i].name);
        if (!want) continue;
        g_slow = false;
        attacks[i].fn();
        if (g_slow) {
            printf("HOSTILE %s: %s; once more\n", attacks[i].name, g_slow_why);
            g_slow = false;
            attacks[i].fn();
            CHECK(!g_slow, "%s, twice", g_slow_why);
        }
        ran++;
    }
    CHECK(ran, "no such attack");
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    (void)!system(cmd);
    printf("HOSTILE OK %d attacks in %lld ms\n", ran, (long long)(hs_now_ms() - t0));
    return 0;
}
