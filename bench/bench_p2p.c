/* SPDX-License-Identifier: Apache-2.0 */
/* libp2p host benchmarks (issue 8, "Measured"); results and commands in
 * docs/performance.md, "libp2p". Every measurement runs a listening host
 * in a forked child process and the dialing host here, over 127.0.0.1.
 *
 *   bench_p2p connect [N] [yamux|mplex]   N sequential connection set-ups
 *       (TCP + multistream + Noise XX + muxer + identify answered), and
 *       the crypto bound of one set-up timed in the same run;
 *   bench_p2p throughput [MiB]            one yamux stream C -> C against a
 *       raw loopback TCP copy of the same bytes;
 *   bench_p2p idle [N] [yamux|mplex]      memory per idle connection (RSS
 *       of both processes before and after N connections).
 *
 * Output: one JSON object per line (the scripts read it), then a human
 * summary on stderr. */
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "pairlink/crypto.h"
#include "pairlink/p2p.h"

#define SINK_PROTOCOL "/pairlink/bench/sink/1.0.0"

static double now_s(void) { return (double)uv_hrtime() / 1e9; }

static void die(const char *what) {
    fprintf(stderr, "bench_p2p: %s\n", what);
    exit(1);
}

static pl_p2p_muxers muxer_of(const char *s) {
    return s && !strcmp(s, "mplex") ? PL_P2P_MUXERS_MPLEX : PL_P2P_MUXERS_YAMUX;
}

static long rss_kib(pid_t pid) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long kib = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) kib = strtol(line + 6, NULL, 10);
    fclose(f);
    return kib;
}

/* ---- the listening child ------------------------------------------------------------------ */

typedef struct sink_state {
    size_t bytes;
} sink_state;

/* Takes everything; closes its side after the writer's EOF. */
static void on_sink(void *ud, pl_p2p_host *h, const pl_p2p_stream_event *ev) {
    sink_state *s = ud;
    if (ev->kind == PL_P2P_STREAM_READABLE || ev->kind == PL_P2P_STREAM_EOF) {
        const uint8_t *d;
        size_t n = 0;
        if (pl_p2p_stream_peek(h, ev->stream, &d, &n) == PL_OK && n) {
            s->bytes += n;
            pl_p2p_stream_consume(h, ev->stream, n);
        }
        if (ev->kind == PL_P2P_STREAM_EOF) pl_p2p_stream_close(h, ev->stream);
    }
}

static void on_child_term(uv_signal_t *s, int sig) {
    (void)sig;
    uv_stop(s->loop);
}

/* Runs a listener until SIGTERM; writes its address to fd. Never returns. */
static void child_listener(int fd, pl_p2p_muxers mux) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    pl_p2p_key *key = NULL;
    if (pl_p2p_key_generate(&key, PL_P2P_KEY_ED25519) != PL_OK) _exit(1);
    pl_p2p_host_opts o = {.key = key,
                          .muxers = mux,
                          .max_connections = 100000,
                          .max_connections_per_ip = 100000,
                          .stream_recv_buffer = 4u << 20};
    pl_p2p_host *h = NULL;
    pl_driver *drv = NULL;
    if (pl_driver_new(&drv, &loop) != PL_OK || pl_p2p_host_new(&h, drv, &o) != PL_OK) _exit(1);
    sink_state sink = {0};
    pl_p2p_host_handle(h, SINK_PROTOCOL, on_sink, &sink);
    if (pl_p2p_host_listen(h, "/ip4/127.0.0.1/tcp/0") != PL_OK) _exit(1);
    const char *const *la;
    pl_p2p_host_listen_addrs(h, &la);
    pl_p2p_peer_id id;
    pl_p2p_host_peer_id(h, &id);
    char pt[PL_P2P_PEER_ID_TEXT_SIZE], addr[512];
    pl_p2p_peer_id_format(pt, &id);
    int n = snprintf(addr, sizeof addr, "%s/p2p/%s\n", la[0], pt);
    if (write(fd, addr, (size_t)n) != n) _exit(1);
    close(fd);
    uv_signal_t term;
    uv_signal_init(&loop, &term);
    uv_signal_start(&term, on_child_term, SIGTERM);
    uv_run(&loop, UV_RUN_DEFAULT);
    _exit(0);
}

static pid_t spawn_listener(pl_p2p_muxers mux, char *addr, size_t cap) {
    int p[2];
    if (pipe(p) != 0) die("pipe");
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        close(p[0]);
        child_listener(p[1], mux);
    }
    close(p[1]);
    ssize_t n = read(p[0], addr, cap - 1);
    close(p[0]);
    if (n <= 0) die("listener did not start");
    addr[n] = '\0';
    char *nl = strchr(addr, '\n');
    if (nl) *nl = '\0';
    return pid;
}

static void stop_child(pid_t pid) {
    kill(pid, SIGTERM);
    int st;
    waitpid(pid, &st, 0);
}

/* ---- the dialing side ---------------------------------------------------------------------- */

typedef struct dialer {
    uv_loop_t loop;
    pl_driver *drv;
    pl_p2p_host *h;
    const char *addr;
    size_t want, done, open, failed;
    pl_p2p_conn_id cur;
    double t0;
    double *lat;
    bool keep; /* idle: keep every connection */
} dialer;

static void dial_next(dialer *d) {
    if (d->done + d->failed >= d->want) {
        uv_stop(&d->loop);
        return;
    }
    d->t0 = now_s();
    if (pl_p2p_host_dial(d->h, d->addr, &d->cur) != PL_OK) die("dial");
}

static void on_dialer_event(void *ud, pl_p2p_host *h, const pl_p2p_event *ev) {
    dialer *d = ud;
    if (ev->conn != d->cur) return;
    if (ev->kind == PL_P2P_EV_IDENTIFIED) {
        if (ev->err != PL_OK) die("identify failed");
        d->lat[d->done++] = now_s() - d->t0;
        if (d->keep) {
            d->open++;
            dial_next(d);
        } else {
            pl_p2p_conn_close(h, ev->conn, PL_ERR_CLOSED);
        }
    } else if (ev->kind == PL_P2P_EV_DISCONNECTED) {
        if (!ev->established) {
            fprintf(stderr, "dial failed: %s\n", pl_errname(ev->err));
            d->failed++;
        }
        if (!d->keep) dial_next(d);
    }
}

static void dialer_init(dialer *d, const char *addr, pl_p2p_muxers mux, size_t n) {
    memset(d, 0, sizeof *d);
    uv_loop_init(&d->loop);
    pl_p2p_key *key = NULL;
    pl_p2p_key_generate(&key, PL_P2P_KEY_ED25519);
    pl_p2p_host_opts o = {.key = key,
                          .on_event = on_dialer_event,
                          .ud = d,
                          .muxers = mux,
                          .max_connections = 100000};
    if (pl_driver_new(&d->drv, &d->loop) != PL_OK || pl_p2p_host_new(&d->h, d->drv, &o) != PL_OK)
        die("host");
    pl_p2p_key_free(key);
    d->addr = addr;
    d->want = n;
    d->lat = calloc(n ? n : 1, sizeof *d->lat);
}

static void on_dialer_closed(void *ud) {
    dialer *d = ud;
    pl_driver_close(d->drv, NULL, NULL);
}

static void dialer_free(dialer *d) {
    pl_p2p_host_close(d->h, on_dialer_closed, d);
    uv_run(&d->loop, UV_RUN_DEFAULT);
    uv_loop_close(&d->loop);
    free(d->lat);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* One set-up's public-key operations, both sides: each generates an
 * ephemeral key and does ee, es/se and se/es (3 DH), and verifies the
 * other's identity signature (the signed payload is made once per host). */
static double crypto_bound_per_s(double *t_base, double *t_dh, double *t_verify) {
    uint8_t a[32], b[32], pa[32], out[32], seed[32], pub[32], sig[64];
    randombytes_buf(a, 32);
    randombytes_buf(b, 32);
    crypto_scalarmult_base(pa, a);
    randombytes_buf(seed, 32);
    pl_ed25519_public(pub, seed);
    static const char msg[] = "noise-libp2p-static-key:0123456789abcdef0123456789abcdef";
    pl_ed25519_sign(sig, seed, (const uint8_t *)msg, sizeof msg - 1);
    const int n = 2000;
    double t = now_s();
    for (int i = 0; i < n; i++) crypto_scalarmult_base(out, a), a[0] ^= out[0];
    *t_base = (now_s() - t) / n;
    t = now_s();
    for (int i = 0; i < n; i++) {
        if (crypto_scalarmult(out, b, pa) != 0) die("x25519");
        b[0] ^= out[0];
    }
    *t_dh = (now_s() - t) / n;
    t = now_s();
    for (int i = 0; i < n; i++)
        if (pl_ed25519_verify(sig, pub, (const uint8_t *)msg, sizeof msg - 1) != PL_OK) die("verify");
    *t_verify = (now_s() - t) / n;
    return 1.0 / (2 * *t_base + 6 * *t_dh + 2 * *t_verify);
}

static int bench_connect(size_t n, const char *mux_name) {
    pl_p2p_muxers mux = muxer_of(mux_name);
    char addr[512];
    pid_t child = spawn_listener(mux, addr, sizeof addr);
    dialer d;
    dialer_init(&d, addr, mux, n);
    /* Warm up: one connection not counted. */
    d.want = 1;
    dial_next(&d);
    uv_run(&d.loop, UV_RUN_DEFAULT);
    d.want = n + 1;
    double t = now_s();
    dial_next(&d);
    uv_run(&d.loop, UV_RUN_DEFAULT);
    double secs = now_s() - t;
    size_t done = d.done - 1;
    qsort(d.lat + 1, done, sizeof *d.lat, cmp_double);
    double sum = 0;
    for (size_t i = 1; i <= done; i++) sum += d.lat[i];
    double tb, td, tv;
    double bound = crypto_bound_per_s(&tb, &td, &tv);
    double per_s = (double)done / secs;
    json_t *o = json_pack("{s:s, s:s, s:s, s:i, s:i, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f}",
                          "event", "bench-connect", "impl", "pairlink", "muxer",
                          mux == PL_P2P_MUXERS_MPLEX ? "mplex" : "yamux", "count", (json_int_t)n,
                          "done", (json_int_t)done, "seconds", secs, "per_second", per_s, "mean_ms",
                          1e3 * sum / (double)done, "p50_ms", 1e3 * d.lat[1 + done / 2], "p99_ms",
                          1e3 * d.lat[1 + (done * 99) / 100 - (done >= 100 ? 1 : 0)],
                          "crypto_bound_per_second", bound, "x25519_base_us", tb * 1e6, "x25519_us",
                          td * 1e6, "ed25519_verify_us", tv * 1e6, "of_bound", per_s / bound);
    char *s = json_dumps(o, JSON_COMPACT);
    printf("%s\n", s);
    free(s);
    json_decref(o);
    fprintf(stderr, "connect: %.0f set-ups/s (mean %.2f ms), crypto bound %.0f/s -> %.0f%% of it\n",
            per_s, 1e3 * sum / (double)done, bound, 100 * per_s / bound);
    dialer_free(&d);
    stop_child(child);
    return d.failed ? 1 : 0;
}

/* ---- throughput ------------------------------------------------------------------------------- */

typedef struct thr {
    dialer d;
    pl_p2p_stream_id s;
    uint8_t *buf;
    size_t total, sent;
    double t0, t1;
    bool finished;
} thr;

static void thr_send(thr *t, pl_p2p_host *h) {
    while (t->sent < t->total) {
        size_t n = t->total - t->sent, k = 0;
        if (n > 256 * 1024) n = 256 * 1024;
        if (pl_p2p_stream_write(h, t->s, t->buf + (t->sent % (1u << 20)), n, &k) != PL_OK) die("write");
        if (!k) return;
        t->sent += k;
    }
    pl_p2p_stream_close(h, t->s);
}

static void on_thr_stream(void *ud, pl_p2p_host *h, const pl_p2p_stream_event *ev) {
    thr *t = ud;
    switch (ev->kind) {
    case PL_P2P_STREAM_OPENED:
        t->t0 = now_s();
        thr_send(t, h);
        break;
    case PL_P2P_STREAM_WRITABLE: thr_send(t, h); break;
    case PL_P2P_STREAM_CLOSED:
        if (ev->err != PL_OK) die("stream failed");
        t->t1 = now_s();
        t->finished = true;
        uv_stop(&t->d.loop);
        break;
    default: break;
    }
}

static void on_thr_event(void *ud, pl_p2p_host *h, const pl_p2p_event *ev) {
    thr *t = ud;
    if (ev->kind == PL_P2P_EV_IDENTIFIED) {
        const char *p[] = {SINK_PROTOCOL};
        if (pl_p2p_stream_open(h, ev->conn, p, 1, on_thr_stream, t, &t->s) != PL_OK) die("open");
    } else if (ev->kind == PL_P2P_EV_DISCONNECTED && !t->finished) {
        die("disconnected");
    }
}

/* The same bytes over a plain loopback TCP connection: the child reads to
 * EOF and closes; the clock stops when the parent sees that close. */
static double raw_tcp_mib_s(size_t total) {
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    if (bind(ls, (struct sockaddr *)&sa, sizeof sa) || listen(ls, 1) ||
        getsockname(ls, (struct sockaddr *)&sa, &sl))
        die("raw listen");
    pid_t pid = fork();
    if (pid == 0) {
        int c = accept(ls, NULL, NULL);
        static uint8_t rb[256 * 1024];
        while (read(c, rb, sizeof rb) > 0) {
        }
        close(c);
        _exit(0);
    }
    close(ls);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(s, (struct sockaddr *)&sa, sizeof sa)) die("raw connect");
    uint8_t *buf = calloc(1, 256 * 1024);
    double t = now_s();
    for (size_t sent = 0; sent < total;) {
        size_t n = total - sent < 256 * 1024 ? total - sent : 256 * 1024;
        ssize_t w = write(s, buf, n);
        if (w <= 0) die("raw write");
        sent += (size_t)w;
    }
    shutdown(s, SHUT_WR);
    uint8_t x;
    while (read(s, &x, 1) > 0) {
    }
    double secs = now_s() - t;
    close(s);
    free(buf);
    int st;
    waitpid(pid, &st, 0);
    return (double)total / (1 << 20) / secs;
}

/* What Noise's encryption alone allows: ChaCha20-Poly1305 over full
 * frames (65519 bytes), one direction, in this process. The sender
 * encrypts and the receiver decrypts in parallel on two processes, so this
 * is the ceiling of an encrypted stream. */
static double aead_mib_s(size_t total) {
    size_t frame = 65519;
    uint8_t *in = calloc(1, frame), *out = malloc(frame + 16), k[32], nonce[12] = {0};
    randombytes_buf(k, sizeof k);
    double t = now_s();
    size_t done = 0;
    for (uint64_t n = 0; done < total; n++, done += frame) {
        memcpy(nonce + 4, &n, 8);
        crypto_aead_chacha20poly1305_ietf_encrypt(out, NULL, in, frame, NULL, 0, NULL, nonce, k);
    }
    double secs = now_s() - t;
    free(in);
    free(out);
    return (double)done / (1 << 20) / secs;
}

static int bench_throughput(size_t mib) {
    char addr[512];
    pid_t child = spawn_listener(PL_P2P_MUXERS_YAMUX, addr, sizeof addr);
    thr t;
    memset(&t, 0, sizeof t);
    uv_loop_init(&t.d.loop);
    pl_p2p_key *key = NULL;
    pl_p2p_key_generate(&key, PL_P2P_KEY_ED25519);
    pl_p2p_host_opts o = {.key = key, .on_event = on_thr_event, .ud = &t, .muxers = PL_P2P_MUXERS_YAMUX,
                          .stream_send_buffer = 4u << 20, .conn_send_buffer = 4u << 20};
    if (pl_driver_new(&t.d.drv, &t.d.loop) != PL_OK || pl_p2p_host_new(&t.d.h, t.d.drv, &o) != PL_OK)
        die("host");
    pl_p2p_key_free(key);
    t.total = mib << 20;
    t.buf = malloc((1u << 20) + 256 * 1024);
    randombytes_buf(t.buf, (1u << 20) + 256 * 1024);
    pl_p2p_conn_id c;
    if (pl_p2p_host_dial(t.d.h, addr, &c) != PL_OK) die("dial");
    uv_run(&t.d.loop, UV_RUN_DEFAULT);
    double p2p = (double)mib / (t.t1 - t.t0);
    double raw = raw_tcp_mib_s(t.total);
    double aead = aead_mib_s(t.total);
    json_t *out = json_pack("{s:s, s:s, s:i, s:f, s:f, s:f, s:f, s:f}", "event", "bench-throughput",
                            "muxer", "yamux", "mib", (json_int_t)mib, "p2p_mib_s", p2p,
                            "raw_tcp_mib_s", raw, "ratio", p2p / raw, "aead_mib_s", aead,
                            "of_aead", p2p / aead);
    char *s = json_dumps(out, JSON_COMPACT);
    printf("%s\n", s);
    free(s);
    json_decref(out);
    fprintf(stderr,
            "throughput: yamux stream %.0f MiB/s, raw TCP %.0f MiB/s (%.0f%%), "
            "ChaCha20-Poly1305 alone %.0f MiB/s (%.0f%%)\n",
            p2p, raw, 100 * p2p / raw, aead, 100 * p2p / aead);
    free(t.buf);
    dialer_free(&t.d);
    stop_child(child);
    return 0;
}

/* ---- idle memory ------------------------------------------------------------------------------- */

static void on_settle(uv_timer_t *t) { uv_stop(t->loop); }

static void settle(uv_loop_t *loop, uint64_t ms) {
    uv_timer_t t;
    uv_timer_init(loop, &t);
    uv_timer_start(&t, on_settle, ms, 0);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

static int bench_idle(size_t n, const char *mux_name) {
    pl_p2p_muxers mux = muxer_of(mux_name);
    char addr[512];
    pid_t child = spawn_listener(mux, addr, sizeof addr);
    dialer d;
    dialer_init(&d, addr, mux, n);
    d.keep = true;
    settle(&d.loop, 500);
    long me0 = rss_kib(getpid()), ch0 = rss_kib(child);
    dial_next(&d);
    uv_run(&d.loop, UV_RUN_DEFAULT);
    settle(&d.loop, 2000);
    long me1 = rss_kib(getpid()), ch1 = rss_kib(child);
    double dk = (double)(me1 - me0) / (double)d.open, lk = (double)(ch1 - ch0) / (double)d.open;
    json_t *o = json_pack("{s:s, s:s, s:s, s:i, s:i, s:i, s:i, s:f, s:i, s:i, s:f}", "event",
                          "bench-idle", "impl", "pairlink", "muxer",
                          mux == PL_P2P_MUXERS_MPLEX ? "mplex" : "yamux", "conns", (json_int_t)n,
                          "open", (json_int_t)d.open, "dialer_rss_kib_before", (json_int_t)me0,
                          "dialer_rss_kib_after", (json_int_t)me1, "dialer_kib_per_conn", dk,
                          "listener_rss_kib_before", (json_int_t)ch0, "listener_rss_kib_after",
                          (json_int_t)ch1, "listener_kib_per_conn", lk);
    char *s = json_dumps(o, JSON_COMPACT);
    printf("%s\n", s);
    free(s);
    json_decref(o);
    fprintf(stderr, "idle: %zu connections, dialer %.1f KiB each, listener %.1f KiB each\n", d.open,
            dk, lk);
    dialer_free(&d);
    stop_child(child);
    return d.open == n ? 0 : 1;
}

int main(int argc, char **argv) {
    if (pl_init() != PL_OK) return 1;
    signal(SIGPIPE, SIG_IGN);
    const char *mode = argc > 1 ? argv[1] : "connect";
    if (!strcmp(mode, "connect")) return bench_connect(argc > 2 ? strtoul(argv[2], NULL, 10) : 500, argc > 3 ? argv[3] : NULL);
    if (!strcmp(mode, "throughput")) return bench_throughput(argc > 2 ? strtoul(argv[2], NULL, 10) : 1024);
    if (!strcmp(mode, "idle")) return bench_idle(argc > 2 ? strtoul(argv[2], NULL, 10) : 1000, argc > 3 ? argv[3] : NULL);
    fprintf(stderr, "usage: bench_p2p connect [N] [yamux|mplex] | throughput [MiB] | idle [N] [yamux|mplex]\n");
    return 2;
}
