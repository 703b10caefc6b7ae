/* Relay client: pure helpers (URL, LRU, backoff), the key file, and the
 * client end to end on 127.0.0.1 against `pairlink relay` (the real server)
 * and interop/fake-relay.mjs (a fixture that misbehaves on request). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "pairlink/crypto.h"
#include "pairlink/keyfile.h"
#include "pairlink/relay_client.h"
#include "runtime/relay_client_internal.h"
#include "support/support.h"

#include <errno.h>
#include <fcntl.h>
#include <libwebsockets.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

/* ------------------------------------------------------------------------ */
/* Child processes: the relays                                              */
/* ------------------------------------------------------------------------ */

typedef struct relay_proc {
    pid_t pid;
    int out_fd; /* its stdout (kept open so that it never gets SIGPIPE) */
    int in_fd;  /* its stdin (fixture commands) */
    int port;
    char url[128];
} relay_proc;

static bool verbose(void) { return getenv("PL_TEST_VERBOSE") != NULL; }

/* Children still running; the teardown kills them when a test failed
 * half-way, so that no relay outlives the test program. */
static pid_t live_children[8];

static void child_track(pid_t pid, bool add) {
    for (size_t i = 0; i < 8; i++) {
        if (add ? live_children[i] == 0 : live_children[i] == pid) {
            live_children[i] = add ? pid : 0;
            return;
        }
    }
}

static int kill_children(void **state) {
    (void)state;
    for (size_t i = 0; i < 8; i++) {
        if (live_children[i] > 0) {
            kill(live_children[i], SIGKILL);
            waitpid(live_children[i], NULL, 0);
            live_children[i] = 0;
        }
    }
    return 0;
}

/* Start argv[0] with stdin/stdout piped; wait (max 10 s) for the line
 * "listening on ws[s]://127.0.0.1:PORT". */
static void relay_start(relay_proc *rp, char *const argv[]) {
    int out[2], in[2];
    /* CLOEXEC: a later child must not inherit these ends, or a relay would
     * never see EOF on its stdin. */
    assert_int_equal(pipe2(out, O_CLOEXEC), 0);
    assert_int_equal(pipe2(in, O_CLOEXEC), 0);
    pid_t parent = getpid();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* Die with the test program, even if it crashes. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        dup2(out[1], 1);
        dup2(in[0], 0);
        if (!verbose()) {
            int devnull = open("/dev/null", O_WRONLY);
            if (devnull >= 0) dup2(devnull, 2);
        }
        close(out[0]);
        close(out[1]);
        close(in[0]);
        close(in[1]);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(out[1]);
    close(in[0]);
    child_track(pid, true);
    memset(rp, 0, sizeof *rp);
    rp->pid = pid;
    rp->out_fd = out[0];
    rp->in_fd = in[1];
    char buf[512];
    size_t len = 0;
    for (int waited = 0; waited < 10000;) {
        struct pollfd pfd = {rp->out_fd, POLLIN, 0};
        int n = poll(&pfd, 1, 100);
        if (n <= 0) {
            waited += 100;
            continue;
        }
        ssize_t r = read(rp->out_fd, buf + len, sizeof buf - 1 - len);
        if (r <= 0) break;
        len += (size_t)r;
        buf[len] = '\0';
        char *l = strstr(buf, "listening on ");
        if (l && strchr(l, '\n')) {
            char *url = l + strlen("listening on ");
            *strchr(url, '\n') = '\0';
            snprintf(rp->url, sizeof rp->url, "%s", url);
            char *colon = strrchr(rp->url, ':');
            rp->port = atoi(colon + 1);
            return;
        }
    }
    fail_msg("relay %s did not start", argv[0]);
}

static void relay_stop(relay_proc *rp, int sig) {
    if (rp->pid <= 0) return;
    kill(rp->pid, sig);
    int st;
    waitpid(rp->pid, &st, 0);
    child_track(rp->pid, false);
    close(rp->out_fd);
    close(rp->in_fd);
    rp->pid = 0;
}

/* Wait (max timeout_ms) for a line containing `what` on the relay's stdout. */
static bool relay_expect(relay_proc *rp, const char *what, int timeout_ms) {
    char buf[2048];
    size_t len = 0;
    for (int waited = 0; waited < timeout_ms;) {
        struct pollfd pfd = {rp->out_fd, POLLIN, 0};
        if (poll(&pfd, 1, 50) <= 0) {
            waited += 50;
            continue;
        }
        ssize_t r = read(rp->out_fd, buf + len, sizeof buf - 1 - len);
        if (r <= 0) return false;
        len += (size_t)r;
        buf[len] = '\0';
        if (strstr(buf, what)) return true;
        if (len > sizeof buf / 2) { /* keep the tail */
            memmove(buf, buf + len - 256, 256);
            len = 256;
        }
    }
    return false;
}

static void relay_cmd(relay_proc *rp, const char *cmd) {
    ssize_t n = write(rp->in_fd, cmd, strlen(cmd));
    assert_int_equal((size_t)n, strlen(cmd));
}

static const char *cli_path(void) {
    static char path[1024];
    snprintf(path, sizeof path, "%s/pairlink", PL_BINARY_DIR);
    return path;
}

static const char *fixture_path(void) {
    static char path[1024];
    snprintf(path, sizeof path, "%s/interop/fake-relay.mjs", PL_SOURCE_DIR);
    return path;
}

/* `pairlink relay` on a free port (or `port`), with extra arguments. */
static void start_pairlink_relay(relay_proc *rp, int port, const char *extra1, const char *extra2) {
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    char *argv[] = {(char *)cli_path(), "relay", "--listen", listen, (char *)extra1,
                    (char *)extra2, NULL};
    if (!extra1) argv[4] = NULL;
    relay_start(rp, argv);
}

static void start_fixture(relay_proc *rp, const char *a1, const char *a2, const char *a3,
                          const char *a4) {
    char *argv[] = {"node", (char *)fixture_path(), (char *)a1, (char *)a2, (char *)a3,
                    (char *)a4, NULL};
    relay_start(rp, argv);
}

/* ------------------------------------------------------------------------ */
/* Peers: a client plus what its callbacks saw                               */
/* ------------------------------------------------------------------------ */

#define MAX_MSGS 16

typedef struct peer {
    const char *name;
    pl_relay_client *c;
    int connected, disconnected, failed;
    pl_err last_err;
    char topics[MAX_MSGS][65];
    char msgs[MAX_MSGS][256];
    uint32_t tags[MAX_MSGS];
    int nmsgs;
    int pub_ok, pub_cancelled, pub_failed;
    uint64_t last_ok_seq;
    bool closed;
} peer;

static void on_message(void *ud, const char *topic, const char *message, size_t len,
                       int64_t published_at_ms, uint32_t tag) {
    peer *p = ud;
    assert_int_equal(strlen(message), len);
    assert_true(published_at_ms >= 0);
    if (p->nmsgs < MAX_MSGS) {
        snprintf(p->topics[p->nmsgs], sizeof p->topics[0], "%s", topic);
        snprintf(p->msgs[p->nmsgs], sizeof p->msgs[0], "%s", message);
        p->tags[p->nmsgs] = tag;
    }
    p->nmsgs++;
}

static void on_state(void *ud, pl_relay_state s, pl_err err) {
    peer *p = ud;
    if (verbose()) fprintf(stderr, "[%s] state %d %s\n", p->name, (int)s, pl_errname(err));
    if (s == PL_RELAY_CONNECTED) p->connected++;
    if (s == PL_RELAY_DISCONNECTED) p->disconnected++;
    if (s == PL_RELAY_FAILED) p->failed++;
    if (s != PL_RELAY_CONNECTED) p->last_err = err;
}

static void on_result(void *ud, pl_relay_op op, uint64_t seq, const char *topic, pl_err err,
                      int64_t code) {
    peer *p = ud;
    assert_non_null(topic);
    if (verbose()) fprintf(stderr, "[%s] result op %d seq %llu %s %lld\n", p->name, (int)op,
                           (unsigned long long)seq, pl_errname(err), (long long)code);
    if (op != PL_RELAY_OP_PUBLISH) return;
    if (err == PL_OK) {
        p->pub_ok++;
        p->last_ok_seq = seq;
    } else if (err == PL_ERR_CANCELLED) {
        p->pub_cancelled++;
    } else {
        p->pub_failed++;
    }
}

static void on_closed(void *ud) {
    peer *p = ud;
    assert_false(p->closed);
    p->closed = true;
}

static const uint8_t SEED_A[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                   17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
static const uint8_t SEED_B[32] = {32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17,
                                   16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1};

static pl_relay_client_opts base_opts(peer *p, const char *url, const uint8_t *seed) {
    pl_relay_client_opts o;
    memset(&o, 0, sizeof o);
    o.url = url;
    o.seed = seed;
    o.on_message = on_message;
    o.on_state = on_state;
    o.on_result = on_result;
    o.user_data = p;
    /* Fast timings so that every test runs in seconds. */
    o.reconnect_min_ms = 100;
    o.reconnect_max_ms = 400;
    o.connect_timeout_ms = 3000;
    return o;
}

static void peer_open(peer *p, const char *name, uv_loop_t *loop, const pl_relay_client_opts *o) {
    memset(p, 0, sizeof *p);
    p->name = name;
    pl_relay_client_opts oo = *o;
    oo.user_data = p;
    assert_int_equal(pl_relay_client_new(&p->c, loop, &oo), PL_OK);
}

/* ------------------------------------------------------------------------ */
/* Running the loop until a condition holds                                 */
/* ------------------------------------------------------------------------ */

typedef bool (*cond_fn)(void *arg);

static void tick_cb(uv_timer_t *t) { (void)t; }

static bool never(void *arg) {
    (void)arg;
    return false;
}

/* Run the loop until cond(arg) or timeout_ms; returns whether cond held. */
static bool run_until(uv_loop_t *loop, cond_fn cond, void *arg, uint64_t timeout_ms) {
    uv_timer_t tick;
    uv_timer_init(loop, &tick);
    uv_timer_start(&tick, tick_cb, 10, 10);
    /* PL_TEST_TIME_SCALE=10 for valgrind or slow sanitizer runs. */
    const char *scale = getenv("PL_TEST_TIME_SCALE");
    if (scale && atoi(scale) > 1 && cond != never) timeout_ms *= (uint64_t)atoi(scale);
    uint64_t end = uv_now(loop) + timeout_ms;
    bool ok = cond(arg);
    while (!ok && uv_now(loop) < end) {
        uv_run(loop, UV_RUN_ONCE);
        ok = cond(arg);
    }
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return ok;
}

static void run_for(uv_loop_t *loop, uint64_t ms) { run_until(loop, never, NULL, ms); }

static bool is_connected(void *arg) { return pl_relay_client_connected(((peer *)arg)->c); }

typedef struct two {
    peer *a, *b;
} two;

static bool both_connected(void *arg) {
    two *t = arg;
    return pl_relay_client_connected(t->a->c) && pl_relay_client_connected(t->b->c);
}

static bool both_disconnected(void *arg) {
    two *t = arg;
    return !pl_relay_client_connected(t->a->c) && !pl_relay_client_connected(t->b->c) &&
           t->a->disconnected > 0 && t->b->disconnected > 0;
}

static bool has_failed(void *arg) { return ((peer *)arg)->failed > 0; }
static bool has_disconnected(void *arg) { return ((peer *)arg)->disconnected > 0; }
static bool has_closed(void *arg) { return ((peer *)arg)->closed; }
static bool has_msg(void *arg) { return ((peer *)arg)->nmsgs > 0; }
static bool has_two_msgs(void *arg) { return ((peer *)arg)->nmsgs >= 2; }
static bool none_pending(void *arg) { return pl_relay_client_pending(((peer *)arg)->c) == 0; }
static bool has_pub_ok(void *arg) { return ((peer *)arg)->pub_ok > 0; }

static bool both_msg(void *arg) {
    two *t = arg;
    return t->a->nmsgs > 0 && t->b->nmsgs > 0;
}

static void peer_close(uv_loop_t *loop, peer *p) {
    pl_relay_client_close(p->c, on_closed);
    assert_true(run_until(loop, has_closed, p, 5000));
    p->c = NULL;
}

/* Every handle gone: uv_loop_close succeeds (the foreign-loop shutdown). */
static void loop_finish(uv_loop_t *loop) {
    uv_run(loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(loop), 0);
}

/* A port on which nothing listens: bound but not listening, so connects are
 * refused, and no other process can take it while the socket lives. */
typedef struct dead_port {
    int fd;
    char url[64];
} dead_port;

static void dead_port_open(dead_port *d) {
    d->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(d->fd >= 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(d->fd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t sl = sizeof sa;
    assert_int_equal(getsockname(d->fd, (struct sockaddr *)&sa, &sl), 0);
    snprintf(d->url, sizeof d->url, "ws://127.0.0.1:%d", ntohs(sa.sin_port));
}

static void dead_port_close(dead_port *d) { close(d->fd); }

static void topic_of(char out[65], char c) {
    memset(out, c, 64);
    out[64] = '\0';
}

/* ------------------------------------------------------------------------ */
/* Pure helpers                                                             */
/* ------------------------------------------------------------------------ */

static void test_url_parse(void **state) {
    (void)state;
    pl__relay_url u;
    assert_int_equal(pl__relay_url_parse(&u, "ws://127.0.0.1:8787"), PL_OK);
    assert_false(u.tls);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 8787);
    assert_string_equal(u.path, "/");
    assert_string_equal(u.host_header, "127.0.0.1:8787");
    assert_false(u.has_query);

    assert_int_equal(pl__relay_url_parse(&u, "WSS://relay.walletconnect.org"), PL_OK);
    assert_true(u.tls);
    assert_int_equal(u.port, 443);
    assert_string_equal(u.host_header, "relay.walletconnect.org");

    assert_int_equal(pl__relay_url_parse(&u, "wss://[::1]:9000/v1?x=1"), PL_OK);
    assert_string_equal(u.host, "::1");
    assert_string_equal(u.host_header, "[::1]:9000");
    assert_string_equal(u.path, "/v1?x=1");
    assert_true(u.has_query);

    assert_int_equal(pl__relay_url_parse(&u, "ws://h?y=2"), PL_OK);
    assert_string_equal(u.path, "/?y=2");

    static const char *bad[] = {
        "",      "http://x",        "ws://",          "ws://:80",       "ws://h:",
        "ws://h:0", "ws://h:65536",  "ws://h:8a",      "ws://u@h",       "ws://h/#f",
        "ws://h /", "ws://[::1",     "ws://[]",        "ws://h$x",       "wsx://h",
        "ftp://h",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(pl__relay_url_parse(&u, bad[i]), PL_ERR_BAD_URL);
    }
    char longu[PL_RELAY_URL_MAX + 16];
    memcpy(longu, "ws://h/", 7);
    memset(longu + 7, 'a', sizeof longu - 8);
    longu[sizeof longu - 1] = '\0';
    assert_int_equal(pl__relay_url_parse(&u, longu), PL_ERR_BAD_URL);
    assert_int_equal(pl__relay_url_parse(&u, NULL), PL_ERR_BAD_URL);
}

static void test_dedup_lru(void **state) {
    (void)state;
    pl__dedup *d;
    assert_int_equal(pl__dedup_new(&d, 3), PL_OK);
    uint8_t k[5][32];
    for (int i = 0; i < 5; i++) pl__relay_dedup_key(k[i], "t", (const char *)&"abcde"[i], 1);
    assert_false(pl__dedup_check(d, k[0]));
    assert_false(pl__dedup_check(d, k[1]));
    assert_false(pl__dedup_check(d, k[2]));
    assert_true(pl__dedup_check(d, k[0])); /* 0 becomes most recent */
    assert_false(pl__dedup_check(d, k[3])); /* evicts 1, the least recent */
    assert_int_equal(pl__dedup_size(d), 3);
    assert_true(pl__dedup_check(d, k[0]));
    assert_true(pl__dedup_check(d, k[2]));
    assert_true(pl__dedup_check(d, k[3]));
    assert_false(pl__dedup_check(d, k[1])); /* was evicted; evicts 0 now */
    assert_false(pl__dedup_check(d, k[0]));
    pl__dedup_free(d);

    /* The key separates topic from message. */
    uint8_t a[32], b[32];
    pl__relay_dedup_key(a, "ab", "c", 1);
    pl__relay_dedup_key(b, "a", "bc", 2);
    assert_memory_not_equal(a, b, 32);

    /* Randomized: a large LRU against a brute-force model. */
    uint64_t seed = pl_test_seed();
    assert_int_equal(pl__dedup_new(&d, 64), PL_OK);
    uint32_t model[64];
    size_t mlen = 0;
    for (int i = 0; i < 20000; i++) {
        uint32_t v = (uint32_t)(pl_test_rand(&seed) % 200);
        uint8_t key[32] = {0};
        memcpy(key, &v, sizeof v);
        bool in_model = false;
        size_t at = 0;
        for (size_t j = 0; j < mlen; j++) {
            if (model[j] == v) {
                in_model = true;
                at = j;
            }
        }
        assert_int_equal(pl__dedup_check(d, key), in_model);
        if (in_model) {
            memmove(&model[at], &model[at + 1], (mlen - at - 1) * sizeof model[0]);
            mlen--;
        } else if (mlen == 64) {
            memmove(&model[0], &model[1], 63 * sizeof model[0]); /* drop least recent */
            mlen--;
        }
        model[mlen++] = v; /* most recent at the end */
    }
    pl__dedup_free(d);
}

static void test_backoff(void **state) {
    (void)state;
    for (unsigned a = 0; a < 40; a++) {
        uint32_t lo = UINT32_MAX, hi = 0;
        for (uint32_t r = 0; r < 2000; r += 7) {
            uint32_t v = pl__relay_backoff_ms(a, 1000, 30000, r * 2654435761u);
            if (v < lo) lo = v;
            if (v > hi) hi = v;
        }
        uint64_t b = 1000ull << (a < 20 ? a : 20);
        if (b > 30000) b = 30000;
        assert_true(lo >= b / 2);
        assert_true(hi <= b);
        assert_true(hi > lo); /* jittered */
    }
}

/* ------------------------------------------------------------------------ */
/* Key files                                                                */
/* ------------------------------------------------------------------------ */

static void test_keyfile(void **state) {
    (void)state;
    char dir[] = "/tmp/pl-keyfile-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/client.key", dir);

    uint8_t k1[32], k2[32];
    assert_int_equal(pl_keyfile_load(path, k1), PL_ERR_NOT_FOUND);
    bool created = false;
    assert_int_equal(pl_keyfile_load_or_create(path, k1, &created), PL_OK);
    assert_true(created);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 32);
    assert_int_equal(pl_keyfile_load_or_create(path, k2, &created), PL_OK);
    assert_false(created);
    assert_memory_equal(k1, k2, 32);

    /* Looser permissions are refused, not repaired. */
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(pl_keyfile_load(path, k2), PL_ERR_KEY_FILE);
    assert_int_equal(pl_keyfile_load_or_create(path, k2, NULL), PL_ERR_KEY_FILE);
    assert_int_equal(chmod(path, 0600), 0);

    /* Wrong size. */
    char bad[256];
    snprintf(bad, sizeof bad, "%s/short.key", dir);
    int fd = open(bad, O_CREAT | O_WRONLY | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, k1, 31), 31);
    close(fd);
    assert_int_equal(pl_keyfile_load_or_create(bad, k2, NULL), PL_ERR_KEY_FILE);
    uint8_t zero[32] = {0};
    assert_memory_equal(k2, zero, 32); /* wiped on failure */

    /* A symlink at the key path is refused. */
    char link_path[256];
    snprintf(link_path, sizeof link_path, "%s/link.key", dir);
    assert_int_equal(symlink(path, link_path), 0);
    assert_int_equal(pl_keyfile_load(link_path, k2), PL_ERR_KEY_FILE);

    /* No directory: an I/O error, nothing created. */
    char nodir[256];
    snprintf(nodir, sizeof nodir, "%s/missing/x.key", dir);
    assert_int_equal(pl_keyfile_load_or_create(nodir, k2, NULL), PL_ERR_IO);

    unlink(link_path);
    unlink(bad);
    unlink(path);
    assert_int_equal(rmdir(dir), 0); /* no temporary file left behind */
}

/* ------------------------------------------------------------------------ */
/* The client                                                               */
/* ------------------------------------------------------------------------ */

static void test_bad_url_and_unreachable(void **state) {
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    peer p;
    memset(&p, 0, sizeof p);
    p.name = "p";
    static const char *bad[] = {"http://127.0.0.1:1", "ws://", "ws://127.0.0.1:0",
                                "ws://u:pw@127.0.0.1", "127.0.0.1:8787"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pl_relay_client_opts o = base_opts(&p, bad[i], SEED_A);
        pl_relay_client *c = (pl_relay_client *)&p; /* must be reset */
        assert_int_equal(pl_relay_client_new(&c, &loop, &o), PL_ERR_BAD_URL);
        assert_null(c);
    }
    pl_relay_client_opts o = base_opts(&p, "ws://127.0.0.1:1", SEED_A);
    o.project_id = "bad id";
    pl_relay_client *c;
    assert_int_equal(pl_relay_client_new(&c, &loop, &o), PL_ERR_INVALID_ARG);
    o.project_id = NULL;
    o.ca_file = "/nonexistent/ca.pem";
    assert_int_equal(pl_relay_client_new(&c, &loop, &o), PL_ERR_TLS);

    /* Nothing listens: a named error, then retries. */
    dead_port dp;
    dead_port_open(&dp);
    o = base_opts(&p, dp.url, SEED_A);
    peer_open(&p, "p", &loop, &o);
    assert_true(run_until(&loop, has_disconnected, &p, 5000));
    assert_int_equal(p.last_err, PL_ERR_WEBSOCKET);
    assert_int_equal(p.failed, 0);
    pl_relay_client_stats st;
    run_for(&loop, 600);
    pl_relay_client_get_stats(p.c, &st);
    assert_true(st.connect_attempts >= 2);
    assert_int_equal(st.connects, 0);
    peer_close(&loop, &p);
    loop_finish(&loop);
    dead_port_close(&dp);
}

static void test_did_matches_vector(void **state) {
    (void)state;
    json_t *v = pl_test_vectors("walletconnect.json");
    uint8_t seed[32];
    pl_test_hex(v, "relay_auth_jwt.ed25519_seed", seed, sizeof seed);
    uv_loop_t loop;
    uv_loop_init(&loop);
    dead_port dp;
    dead_port_open(&dp);
    peer p;
    pl_relay_client_opts o = base_opts(&p, dp.url, seed);
    peer_open(&p, "p", &loop, &o);
    assert_string_equal(pl_relay_client_did(p.c), pl_test_str(v, "relay_auth_jwt.iss"));
    peer_close(&loop, &p);
    loop_finish(&loop);
    dead_port_close(&dp);
    json_decref(v);
}

static void test_queue_bound_and_cancel(void **state) {
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    dead_port dp;
    dead_port_open(&dp);
    peer p;
    pl_relay_client_opts o = base_opts(&p, dp.url, SEED_A);
    o.max_queue = 3;
    peer_open(&p, "p", &loop, &o);
    char topic[65];
    topic_of(topic, 'a');
    pl_publish_opts po = {300, 1000, false};
    uint64_t seq = 0;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(pl_relay_client_publish(p.c, topic, "queued", &po, &seq), PL_OK);
        assert_int_equal(seq, (uint64_t)i + 1);
    }
    assert_int_equal(pl_relay_client_publish(p.c, topic, "one too many", &po, &seq),
                     PL_ERR_TOO_LARGE);
    assert_int_equal(pl_relay_client_pending(p.c), 3);
    assert_int_equal(pl_relay_client_publish(p.c, "short", "x", &po, NULL), PL_ERR_INVALID_ARG);
    assert_int_equal(pl_relay_client_subscribe(p.c, "zz"), PL_ERR_INVALID_ARG);
    char upper[65];
    topic_of(upper, 'A');
    assert_int_equal(pl_relay_client_subscribe(p.c, upper), PL_ERR_INVALID_ARG);
    assert_int_equal(pl_relay_client_publish(p.c, topic, "\xff\xfe", &po, NULL),
                     PL_ERR_INVALID_ARG); /* not UTF-8 */
    char *big = malloc(PL_RELAY_MESSAGE_MAX + 2);
    memset(big, 'x', PL_RELAY_MESSAGE_MAX + 1);
    big[PL_RELAY_MESSAGE_MAX + 1] = '\0';
    assert_int_equal(pl_relay_client_publish(p.c, topic, big, &po, NULL), PL_ERR_TOO_LARGE);
    free(big);
    run_for(&loop, 200);
    /* Closing reports every unacknowledged publish as cancelled. */
    pl_relay_client_close(p.c, on_closed);
    assert_int_equal(pl_relay_client_publish(p.c, topic, "x", &po, NULL), PL_ERR_STATE);
    assert_true(run_until(&loop, has_closed, &p, 5000));
    assert_int_equal(p.pub_cancelled, 3);
    loop_finish(&loop);
    dead_port_close(&dp);
}

/* Two clients on one loop exchange messages through one relay. */
static void exchange(uv_loop_t *loop, peer *a, peer *b) {
    char ta[65], tb[65];
    topic_of(ta, 'a');
    topic_of(tb, 'b');
    assert_int_equal(pl_relay_client_subscribe(a->c, ta), PL_OK);
    assert_int_equal(pl_relay_client_subscribe(a->c, ta), PL_OK); /* idempotent */
    assert_int_equal(pl_relay_client_subscribe(b->c, tb), PL_OK);
    two t = {a, b};
    assert_true(run_until(loop, both_connected, &t, 5000));
    pl_transport tra = pl_relay_client_transport(a->c);
    pl_transport trb = pl_relay_client_transport(b->c);
    pl_publish_opts po = {300, 1108, false};
    assert_int_equal(trb.publish(trb.ctx, ta, "hello from b", &po), PL_OK);
    assert_int_equal(tra.publish(tra.ctx, tb, "hello from a", &po), PL_OK);
    assert_true(run_until(loop, both_msg, &t, 5000));
    /* Both acknowledgements in, so that later steps start from an empty queue. */
    assert_true(run_until(loop, none_pending, a, 5000));
    assert_true(run_until(loop, none_pending, b, 5000));
    assert_int_equal(a->nmsgs, 1);
    assert_int_equal(b->nmsgs, 1);
    assert_string_equal(a->msgs[0], "hello from b");
    assert_string_equal(a->topics[0], ta);
    assert_int_equal(a->tags[0], 1108);
    assert_string_equal(b->msgs[0], "hello from a");
    assert_string_equal(b->topics[0], tb);
}

static void test_two_clients_pairlink_relay(void **state) {
    (void)state;
    relay_proc rp;
    start_pairlink_relay(&rp, 0, NULL, NULL);
    uv_loop_t loop;
    uv_loop_init(&loop);
    peer a, b;
    pl_relay_client_opts oa = base_opts(&a, rp.url, SEED_A);
    oa.project_id = "test-project_1";
    pl_relay_client_opts ob = base_opts(&b, rp.url, SEED_B);
    peer_open(&a, "a", &loop, &oa);
    peer_open(&b, "b", &loop, &ob);
    exchange(&loop, &a, &b);
    /* Unsubscribed topics are no longer delivered. */
    char ta[65];
    topic_of(ta, 'a');
    assert_int_equal(pl_relay_client_unsubscribe(a.c, ta), PL_OK);
    assert_int_equal(pl_relay_client_unsubscribe(a.c, ta), PL_OK);
    run_for(&loop, 200);
    pl_publish_opts po = {300, 1, false};
    assert_int_equal(pl_relay_client_publish(b.c, ta, "after unsubscribe", &po, NULL), PL_OK);
    assert_true(run_until(&loop, none_pending, &b, 5000));
    run_for(&loop, 300);
    assert_int_equal(a.nmsgs, 1);
    assert_int_equal(b.pub_ok, 2);
    peer_close(&loop, &a);
    peer_close(&loop, &b);
    loop_finish(&loop);
    relay_stop(&rp, SIGTERM);
}

/* Publish while the relay is down; restart it (same port, same --db): the
 * queued message is sent after the reconnect and delivered. */
static void test_publish_while_relay_down(void **state) {
    (void)state;
    char dir[] = "/tmp/pl-relaydb-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char db[256];
    snprintf(db, sizeof db, "%s/relay.db", dir);
    relay_proc rp;
    start_pairlink_relay(&rp, 0, "--db", db);
    int port = rp.port;
    uv_loop_t loop;
    uv_loop_init(&loop);
    peer a, b;
    pl_relay_client_opts oa = base_opts(&a, rp.url, SEED_A);
    pl_relay_client_opts ob = base_opts(&b, rp.url, SEED_B);
    peer_open(&a, "a", &loop, &oa);
    peer_open(&b, "b", &loop, &ob);
    exchange(&loop, &a, &b);

    relay_stop(&rp, SIGKILL);
    two t = {&a, &b};
    assert_true(run_until(&loop, both_disconnected, &t, 5000));
    char ta[65];
    topic_of(ta, 'a');
    pl_publish_opts po = {300, 7, false};
    uint64_t seq;
    assert_int_equal(pl_relay_client_publish(b.c, ta, "sent while down", &po, &seq), PL_OK);
    assert_int_equal(pl_relay_client_pending(b.c), 1);
    run_for(&loop, 300); /* a few failed reconnects */
    assert_int_equal(a.nmsgs, 1);

    start_pairlink_relay(&rp, port, "--db", db);
    assert_true(run_until(&loop, both_connected, &t, 5000));
    assert_true(run_until(&loop, has_two_msgs, &a, 5000));
    assert_string_equal(a.msgs[1], "sent while down");
    assert_int_equal(a.tags[1], 7);
    /* b's acknowledgement may trail a's delivery by a moment. */
    assert_true(run_until(&loop, none_pending, &b, 5000));
    run_for(&loop, 200);
    assert_int_equal(a.nmsgs, 2); /* the mailbox re-delivery was de-duplicated */
    assert_int_equal(b.last_ok_seq, seq);
    assert_true(a.connected >= 2 && b.connected >= 2);
    peer_close(&loop, &a);
    peer_close(&loop, &b);
    loop_finish(&loop);
    relay_stop(&rp, SIGTERM);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_auth_rejected_pairlink_relay(void **state) {
    (void)state;
    relay_proc rp;
    start_pairlink_relay(&rp, 0, "--require-auth", NULL);
    uv_loop_t loop;
    uv_loop_init(&loop);
    /* A client with a valid JWT (aud = the URL it uses) is let in. */
    peer good, bad;
    pl_relay_client_opts og = base_opts(&good, rp.url, SEED_A);
    peer_open(&good, "good", &loop, &og);
    assert_true(run_until(&loop, is_connected, &good, 5000));

    pl_relay_client_opts ob = base_opts(&bad, rp.url, SEED_B);
    ob.jwt = "eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCJ9.e30.c2lnbmF0dXJl";
    peer_open(&bad, "bad", &loop, &ob);
    assert_true(run_until(&loop, has_failed, &bad, 5000));
    assert_int_equal(bad.last_err, PL_ERR_RELAY_AUTH);
    run_for(&loop, 1000); /* backoff would have retried several times */
    pl_relay_client_stats st;
    pl_relay_client_get_stats(bad.c, &st);
    assert_int_equal(st.connect_attempts, 1);
    assert_int_equal(bad.disconnected, 0);
    assert_int_equal(bad.connected, 0);
    char t[65];
    topic_of(t, 'c');
    assert_int_equal(pl_relay_client_publish(bad.c, t, "x", NULL, NULL), PL_ERR_STATE);
    peer_close(&loop, &bad);
    peer_close(&loop, &good);
    loop_finish(&loop);
    relay_stop(&rp, SIGTERM);
}

static void auth_rejected_fixture(const char *mode) {
    relay_proc rp;
    start_fixture(&rp, "--reject", mode, NULL, NULL);
    uv_loop_t loop;
    uv_loop_init(&loop);
    peer p;
    pl_relay_client_opts o = base_opts(&p, rp.url, SEED_A);
    peer_open(&p, "p", &loop, &o);
    assert_true(run_until(&loop, has_failed, &p, 5000));
    assert_int_equal(p.last_err, PL_ERR_RELAY_AUTH);
    run_for(&loop, 800);
    pl_relay_client_stats st;
    pl_relay_client_get_stats(p.c, &st);
    assert_int_equal(st.connect_attempts, 1);
    assert_int_equal(p.failed, 1);
    peer_close(&loop, &p);
    loop_finish(&loop);
    relay_stop(&rp, SIGTERM);
}

static void test_auth_rejected_http_401(void **state) {
    (void)state;
    auth_rejected_fixture("401");
}

static void test_auth_rejected_close_3000(void **state) {
    (void)state;
    auth_rejected_fixture("3000");
}

/* At-least-once: the fixture pushes every message three times. */
static void test_duplicate_push_delivered_once(void **state) {
    (void)state;
    relay_proc rp;
    start_fixture(&rp, "--dup", "3", NULL, NULL);
    uv_loop_t loop;
    uv_loop_init(&loop);
    peer a, b;
    pl_relay_client_opts oa = base_opts(&a, rp.url, SEED_A);
    pl_relay_client_opts ob = base_opts(&b, rp.url, SEED_B);
    peer_open(&a, "a", &loop, &oa);
    peer_open(&b, "b", &loop, &ob);
    exchange(&loop, &a, &b);
    run_for(&loop, 300);
    pl_relay_client_stats st;
    pl_relay_client_get_stats(a.c, &st);
    assert_int_equal(st.delivered, 1);
    assert_int_equal(st.duplicates, 2);
    assert_int_equal(a.nmsgs, 1);
    assert_int_equal(b.nmsgs, 1);
    peer_close(&loop, &a);
    peer_close(&loop, &b);
    loop_finish(&loop);
    relay_stop(&rp, SIGTERM);
}

/* A silent relay (socket no longer read: no pong) is detected by the ping
 * time-out; the client reconnects and works again. */
static void test_dead_connection_detected(void **state) {
    (void)state;
    relay_proc rp;
    start_fixture(&rp, NULL, NULL, NULL, NULL);
    uv_loop_t loop;
    uv_loop_init(&loop);
    peer a, b;
    pl_relay_client_opts oa = base_opts(&a, rp.url, SEED_A);
    oa.ping_interval_ms = 200;
    oa.ping_timeout_ms = 300;
    pl_relay_client_opts ob = base_opts(&b, rp.url, SEED_B);
    peer_open(&a, "a", &loop, &oa);
    peer_open(&b, "b", &loop, &ob);
    two t = {&a, &b};
    assert_true(run_until(&loop, both_connected, &t, 5000));
    run_for(&loop, 600); /* pings answered: still the first connection */
    assert_int_equal(a.disconnected, 0);

    relay_cmd(&rp, "freeze\n");
    assert_true(run_until(&loop, has_disconnected, &a, 3000));
    assert_int_equal(a.last_err, PL_ERR_TIMEOUT);
    /* b (default 20 s ping) is frozen too; only a has noticed. */
    assert_true(run_until(&loop, is_connected, &a, 3000));
    char ta[65];
    topic_of(ta, 'a');
    assert_int_equal(pl_relay_client_subscribe(a.c, ta), PL_OK);
    relay_cmd(&rp, "drop\n"); /* b's frozen socket goes; a's new one too */
    assert_true(run_until(&loop, both_connected, &t, 5000));
    pl_publish_opts po = {300, 0, false};
    assert_int_equal(pl_relay_client_publish(b.c, ta, "after freeze", &po, NULL), PL_OK);
    assert_true(run_until(&loop, has_msg, &a, 5000));
    assert_string_equal(a.msgs[0], "after freeze");
    peer_close(&loop, &a);
    peer_close(&loop, &b);
    loop_finish(&loop);
    relay_stop(&rp, SIGTERM);
}

/* An unanswered publish is re-sent after the request time-out; a publish
 * refused with 3001 is re-sent after a pause. Both end acknowledged. */
static void test_request_retry(void **state) {
    (void)state;
    relay_proc rp;
    start_fixture(&rp, "--ignore-publishes", "1", "--rate-limit-publishes", "1");
    uv_loop_t loop;
    uv_loop_init(&loop);
    peer a;
    pl_relay_client_opts oa = base_opts(&a, rp.url, SEED_A);
    oa.request_timeout_ms = 300;
    peer_open(&a, "a", &loop, &oa);
    assert_true(run_until(&loop, is_connected, &a, 5000));
    char t[65];
    topic_of(t, 'd');
    assert_int_equal(pl_relay_client_publish(a.c, t, "retry me", NULL, NULL), PL_OK);
    assert_true(run_until(&loop, has_pub_ok, &a, 5000));
    pl_relay_client_stats st;
    pl_relay_client_get_stats(a.c, &st);
    assert_int_equal(st.resent, 2);
    assert_int_equal(a.pub_failed, 0);
    assert_int_equal(a.disconnected, 0);
    assert_int_equal(pl_relay_client_pending(a.c), 0);
    peer_close(&loop, &a);
    loop_finish(&loop);
    relay_stop(&rp, SIGTERM);
}

/* wss:// with verification: a self-signed relay certificate is refused with
 * PL_ERR_TLS, and accepted with its certificate given as ca_file. */
static void test_tls(void **state) {
    (void)state;
    char dir[] = "/tmp/pl-tls-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cmd[1024], cert[256], key[256];
    snprintf(cert, sizeof cert, "%s/cert.pem", dir);
    snprintf(key, sizeof key, "%s/key.pem", dir);
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
             "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout '%s' -out '%s' "
             ">/dev/null 2>&1",
             key, cert);
    assert_int_equal(system(cmd), 0);
    relay_proc rp;
    start_fixture(&rp, "--tls-cert", cert, "--tls-key", key);
    assert_non_null(strstr(rp.url, "wss://"));

    uv_loop_t loop;
    uv_loop_init(&loop);
    peer untrusting, a, b;
    pl_relay_client_opts ou = base_opts(&untrusting, rp.url, SEED_A);
    peer_open(&untrusting, "untrusting", &loop, &ou);
    assert_true(run_until(&loop, has_disconnected, &untrusting, 5000));
    assert_int_equal(untrusting.last_err, PL_ERR_TLS);
    assert_int_equal(untrusting.connected, 0);
    peer_close(&loop, &untrusting);

    pl_relay_client_opts oa = base_opts(&a, rp.url, SEED_A);
    oa.ca_file = cert;
    pl_relay_client_opts ob = base_opts(&b, rp.url, SEED_B);
    ob.ca_file = cert;
    peer_open(&a, "a", &loop, &oa);
    peer_open(&b, "b", &loop, &ob);
    exchange(&loop, &a, &b);
    peer_close(&loop, &a);
    peer_close(&loop, &b);
    loop_finish(&loop);
    relay_stop(&rp, SIGTERM);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* A host name is resolved off the loop (libuv's thread pool); "localhost"
 * may give ::1 first, where the fixture does not listen: the next attempt
 * takes the next address. */
static void test_hostname_url(void **state) {
    (void)state;
    relay_proc rp;
    start_fixture(&rp, NULL, NULL, NULL, NULL);
    char url[64];
    snprintf(url, sizeof url, "ws://localhost:%d", rp.port);
    uv_loop_t loop;
    uv_loop_init(&loop);
    peer p;
    pl_relay_client_opts o = base_opts(&p, url, SEED_A);
    peer_open(&p, "p", &loop, &o);
    assert_true(run_until(&loop, is_connected, &p, 5000));
    peer_close(&loop, &p);
    loop_finish(&loop);
    relay_stop(&rp, SIGTERM);
}

/* Closing from inside a callback is allowed. */
static void close_in_state(void *ud, pl_relay_state s, pl_err err) {
    peer *p = ud;
    on_state(ud, s, err);
    if (s == PL_RELAY_CONNECTED) pl_relay_client_close(p->c, on_closed);
}

static void test_close_from_callback(void **state) {
    (void)state;
    relay_proc rp;
    start_fixture(&rp, NULL, NULL, NULL, NULL);
    uv_loop_t loop;
    uv_loop_init(&loop);
    peer p;
    pl_relay_client_opts o = base_opts(&p, rp.url, SEED_A);
    o.on_state = close_in_state;
    peer_open(&p, "p", &loop, &o);
    assert_true(run_until(&loop, has_closed, &p, 5000));
    assert_int_equal(p.connected, 1);
    /* A graceful close: the relay got a close frame with 1000. */
    assert_true(relay_expect(&rp, "closed 1000", 2000));
    loop_finish(&loop);
    relay_stop(&rp, SIGTERM);
}

static int quiet_lws(void **state) {
    (void)state;
    lws_set_log_level(verbose() ? (LLL_ERR | LLL_WARN | LLL_NOTICE) : 0, NULL);
    signal(SIGPIPE, SIG_IGN);
    return pl_init() == PL_OK ? 0 : -1;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_url_parse, kill_children),
        cmocka_unit_test_teardown(test_dedup_lru, kill_children),
        cmocka_unit_test_teardown(test_backoff, kill_children),
        cmocka_unit_test_teardown(test_keyfile, kill_children),
        cmocka_unit_test_teardown(test_bad_url_and_unreachable, kill_children),
        cmocka_unit_test_teardown(test_did_matches_vector, kill_children),
        cmocka_unit_test_teardown(test_queue_bound_and_cancel, kill_children),
        cmocka_unit_test_teardown(test_two_clients_pairlink_relay, kill_children),
        cmocka_unit_test_teardown(test_publish_while_relay_down, kill_children),
        cmocka_unit_test_teardown(test_auth_rejected_pairlink_relay, kill_children),
        cmocka_unit_test_teardown(test_auth_rejected_http_401, kill_children),
        cmocka_unit_test_teardown(test_auth_rejected_close_3000, kill_children),
        cmocka_unit_test_teardown(test_duplicate_push_delivered_once, kill_children),
        cmocka_unit_test_teardown(test_dead_connection_detected, kill_children),
        cmocka_unit_test_teardown(test_request_retry, kill_children),
        cmocka_unit_test_teardown(test_tls, kill_children),
        cmocka_unit_test_teardown(test_hostname_url, kill_children),
        cmocka_unit_test_teardown(test_close_from_callback, kill_children),
    };
    /* PL_TEST_FILTER=test_tls runs one test (cmocka's pattern syntax). */
    if (getenv("PL_TEST_FILTER")) cmocka_set_test_filter(getenv("PL_TEST_FILTER"));
    return cmocka_run_group_tests(tests, quiet_lws, NULL);
}
