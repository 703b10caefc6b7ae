/* SPDX-License-Identifier: Apache-2.0 */
/* Load generator for `pairlink relay` and, built with -DPL_BENCH_MQTT and
 * -lmosquitto, for an MQTT broker (issue 3, section 6). One program for both
 * so that the two brokers see the same load shape and are measured by the
 * same clock, counters and percentile code.
 *
 * Load mode: P publisher/subscriber pairs, one topic per pair, each client
 * on its own TCP connection. A publisher keeps at most W messages
 * unacknowledged by the broker (irn_publish answered `true` / MQTT QoS 1
 * PUBACK) and at most W not yet delivered to its subscriber. Subscribers acknowledge every delivery (the irn_subscription
 * answer / QoS 1 PUBACK, which libmosquitto sends itself). Messages are B
 * bytes (default 1024): the irn `message` string / the MQTT payload; the
 * first 32 characters carry the send time (CLOCK_MONOTONIC ns), the pair and
 * a sequence number, so latency is publish-call to delivery-callback in this
 * one process. With --rate 0 (default) every acknowledgement releases the
 * next message (closed loop: the throughput ceiling); with --rate R the
 * publishers together send R messages/s (latency below saturation).
 * After a warm-up, messages delivered during --duration seconds are counted
 * and their latencies kept; the broker's CPU time (utime+stime of --pid from
 * /proc) and this process's CPU time are read at both ends of that window.
 * Then publishing stops and the run drains: every acknowledged message must
 * have been delivered (lost= counts the ones that were not).
 *
 * Idle mode (--idle N): N connections (with --subscribe each subscribes to
 * its own topic), then the broker's VmRSS is read before, with all N open
 * (after a settle time), and after they are closed.
 *
 * Event loops: irn runs libwebsockets on a libuv loop with a uv timer for
 * the ticks; MQTT uses poll() over the libmosquitto sockets with
 * mosquitto_loop_read/_write/_misc and a poll timeout for the ticks. Both are
 * single-threaded and tick every millisecond with --rate (every 10 ms
 * otherwise), so both send the same bursts. (lws's own poll loop was not
 * used: it rounds a sub-millisecond wait down to a zero poll timeout and
 * spins between 1 ms ticks.)
 *
 *   bench_relay_load --url ws://127.0.0.1:PORT  [--pid PID] [options]
 *   bench_relay_load --url mqtt://127.0.0.1:PORT [--pid PID] [options]  (MQTT build)
 *
 * Prints one `RESULT ...` line of key=value pairs (see print_result /
 * print_idle). Bounded: every phase has a time limit; a run never takes more
 * than warm-up + duration + 60 s. scripts/bench-wc.sh drives it. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <libwebsockets.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>
#ifndef PL_BENCH_MQTT
#include "relay/frame.h"
#endif
#ifdef PL_BENCH_MQTT
#include <mosquitto.h>
#endif

#define MAX_CONNS 30000
#define MAX_CONNECTING 256   /* connection attempts in flight at once */
#define HDR_CHARS 32         /* 16 hex send time, 8 hex pair, 8 hex seq */
#define MAX_SIZE (256 * 1024)
#define PHASE_LIMIT_NS (30ull * 1000000000ull)
#define DRAIN_LIMIT_NS (15ull * 1000000000ull)

typedef enum { PROTO_IRN, PROTO_MQTT } proto;
typedef enum { PH_CONNECT, PH_SETUP, PH_RUN, PH_DRAIN, PH_HOLD, PH_CLOSE, PH_DONE } phase;

typedef struct outf {
    struct outf *next;
    size_t len;
    unsigned char buf[]; /* LWS_PRE headroom, then len bytes */
} outf;

typedef struct conn {
    int idx;
    int pair;          /* load mode; -1 in idle mode */
    bool is_pub;
    bool started, open, ready, failed;
    int inflight;      /* publisher: unacknowledged */
    uint64_t seq, acked, delivered;
    char topic[65];
    /* irn */
    struct lws *wsi;
    outf *qh, *qt;
    char *rx;
    size_t rxlen, rxcap;
#ifdef PL_BENCH_MQTT
    struct mosquitto *m;
#endif
} conn;

static struct {
    /* options */
    proto pr;
    char host[64];
    int port;
    int sub_port; /* --sub-url: subscribers on another relay instance (same host) */
    int pid;
    int pairs, window, size, ttl;
    double rate, warmup_s, duration_s, hold_s;
    int idle;
    bool subscribe, verbose;
    /* state */
    struct lws_context *ctx;
    uv_loop_t loop;
    uv_timer_t timer;
    conn *c;
    int nconn, next_start, connecting, n_open, n_ready, n_failed;
    phase ph;
    uint64_t ph_start, t_run0, t_m0, t_m1, next_misc;
    bool in_window, window_done;
    uint64_t rr, sent_total, acked_total, delivered_total, dup_or_unknown;
    uint64_t win_delivered, errors, behind;
    char first_error[200];
    uint32_t *lat_us;
    size_t nlat, caplat;
    /* proc samples */
    double bcpu0, bcpu1, gcpu0, gcpu1;
    long rss_start, rss_m0, rss_m1, rss_open, rss_closed;
    uint64_t next_id;
    char filler[MAX_SIZE];
    int status;
} g;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

__attribute__((format(printf, 1, 2))) static void note_error(const char *fmt, ...) {
    g.errors++;
    if (g.first_error[0]) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g.first_error, sizeof g.first_error, fmt, ap);
    va_end(ap);
}

/* ---- /proc readings ---------------------------------------------------------- */

static double proc_cpu_s(int pid) {
    if (pid <= 0) return -1;
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    /* Fields after the ")" that closes comm: state is field 3, utime 14, stime 15. */
    char *p = strrchr(buf, ')');
    if (!p) return -1;
    unsigned long ut = 0, st = 0;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2) return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static long proc_rss_kb(int pid) {
    if (pid <= 0) return -1;
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) kb = atol(line + 6);
    fclose(f);
    return kb;
}

static double self_cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec / 1e6;
}

/* ---- messages ---------------------------------------------------------------- */

/* The B-byte payload: header (send time, pair, seq) then base64-alphabet
 * filler, so that it is a plausible envelope string for the relay. */
static void make_payload(char *out, const conn *c, uint64_t t) {
    char hdr[HDR_CHARS + 1];
    snprintf(hdr, sizeof hdr, "%016" PRIx64 "%08x%08x", t, (unsigned)c->pair, (unsigned)c->seq);
    memcpy(out, hdr, HDR_CHARS);
    memcpy(out + HDR_CHARS, g.filler, (size_t)g.size - HDR_CHARS);
}

static bool parse_header(const char *msg, size_t len, uint64_t *t, unsigned *pair) {
    if (len < HDR_CHARS) return false;
    char tmp[17];
    memcpy(tmp, msg, 16);
    tmp[16] = 0;
    char *end;
    *t = strtoull(tmp, &end, 16);
    if (*end) return false;
    memcpy(tmp, msg + 16, 8);
    tmp[8] = 0;
    *pair = (unsigned)strtoul(tmp, &end, 16);
    return !*end;
}

static void refill(conn *pub);

static void record_delivery(conn *c, const char *msg, size_t len) {
    uint64_t now = now_ns(), t;
    unsigned pair;
    if (!parse_header(msg, len, &t, &pair) || (int)pair != c->pair || t > now) {
        g.dup_or_unknown++;
        return;
    }
    c->delivered++;
    g.delivered_total++;
    refill(c - 1);
    if (!g.in_window) return;
    g.win_delivered++;
    if (g.nlat == g.caplat) {
        size_t nc = g.caplat ? g.caplat * 2 : 65536;
        if (nc > 50000000) return;
        uint32_t *nl = realloc(g.lat_us, nc * sizeof *nl);
        if (!nl) return;
        g.lat_us = nl;
        g.caplat = nc;
    }
    uint64_t us = (now - t) / 1000;
    g.lat_us[g.nlat++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

/* ---- irn (WebSocket, libwebsockets) --------------------------------------------- */

static void irn_queue(conn *c, const char *text, size_t len) {
    outf *f = malloc(sizeof *f + LWS_PRE + len);
    if (!f) {
        note_error("out of memory");
        return;
    }
    f->next = NULL;
    f->len = len;
    memcpy(f->buf + LWS_PRE, text, len);
    if (c->qt) c->qt->next = f;
    else c->qh = f;
    c->qt = f;
    if (c->wsi && c->open) lws_callback_on_writable(c->wsi); /* else once established */
}

static void irn_publish(conn *c) {
    static char frame[MAX_SIZE + 512];
    uint64_t t = now_ns();
    int n = snprintf(frame, sizeof frame,
                     "{\"id\":%" PRIu64 ",\"jsonrpc\":\"2.0\",\"method\":\"irn_publish\",\"params\":"
                     "{\"topic\":\"%s\",\"message\":\"",
                     ++g.next_id, c->topic);
    make_payload(frame + n, c, t);
    n += g.size;
    n += snprintf(frame + n, sizeof frame - (size_t)n, "\",\"ttl\":%d,\"tag\":1}}", g.ttl);
    irn_queue(c, frame, (size_t)n);
}

static void irn_subscribe(conn *c) {
    char frame[256];
    int n = snprintf(frame, sizeof frame,
                     "{\"id\":%" PRIu64 ",\"jsonrpc\":\"2.0\",\"method\":\"irn_subscribe\",\"params\":{\"topic\":\"%s\"}}",
                     ++g.next_id, c->topic);
    irn_queue(c, frame, (size_t)n);
}

static void on_ack(conn *c);

static void irn_frame(conn *c, const char *buf, size_t len) {
#ifndef PL_BENCH_MQTT
    /* Pushes (most frames) through the library's fast reader (simdjson,
     * what the relay uses): with jansson the generator, not the relay, was
     * the bottleneck of a closed-loop run (issue 12). */
    static pl__rs_parser *fast;
    if (!fast && !(fast = pl__rs_parser_new(1 << 20))) {
        note_error("out of memory");
        return;
    }
    pl__rs_frame f;
    pl__rs_parse_frame(fast, buf, len, &f);
    if (f.kind == PL__RS_FRAME_PUSH) {
        char ack[96];
        int n = snprintf(ack, sizeof ack, "{\"id\":%" PRId64 ",\"jsonrpc\":\"2.0\",\"result\":true}", f.id);
        irn_queue(c, ack, (size_t)n);
        record_delivery(c, f.message, f.message_len);
        return;
    }
    if (f.kind == PL__RS_FRAME_RESPONSE) { /* a plain answer (errors are objects: jansson) */
        if (c->is_pub) {
            on_ack(c);
        } else if (!c->ready) {
            c->ready = true;
            g.n_ready++;
        }
        return;
    }
#endif
    json_error_t jerr;
    json_t *o = json_loadb(buf, len, 0, &jerr);
    if (!o) {
        note_error("unparseable frame from the relay");
        return;
    }
    const char *method = json_string_value(json_object_get(o, "method"));
    if (method && !strcmp(method, "irn_subscription")) {
        json_t *id = json_object_get(o, "id");
        char ack[96];
        int n = snprintf(ack, sizeof ack, "{\"id\":%" JSON_INTEGER_FORMAT ",\"jsonrpc\":\"2.0\",\"result\":true}",
                         json_integer_value(id));
        irn_queue(c, ack, (size_t)n);
        json_t *msg = json_object_get(json_object_get(json_object_get(o, "params"), "data"), "message");
        if (json_is_string(msg)) record_delivery(c, json_string_value(msg), json_string_length(msg));
    } else if (json_object_get(o, "error")) {
        json_t *e = json_object_get(o, "error");
        note_error("relay error %" JSON_INTEGER_FORMAT ": %s", json_integer_value(json_object_get(e, "code")),
                   json_string_value(json_object_get(e, "message")) ? json_string_value(json_object_get(e, "message")) : "?");
        if (c->is_pub && c->inflight > 0) c->inflight--; /* refused: it will never be acknowledged */
    } else if (json_object_get(o, "result")) {
        if (c->is_pub) on_ack(c);
        else if (!c->ready) {
            c->ready = true;
            g.n_ready++;
        }
    }
    json_decref(o);
}

static int irn_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len) {
    conn *c = user;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        c->open = true;
        g.n_open++;
        g.connecting--;
        if (c->is_pub || (g.idle && !g.subscribe)) {
            c->ready = true;
            g.n_ready++;
        }
        if (c->qh) lws_callback_on_writable(wsi);
        return 0;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        note_error("connect: %s", in ? (const char *)in : "error");
        c->failed = true;
        c->wsi = NULL;
        g.n_failed++;
        g.connecting--;
        return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE: {
        if (c->rxlen + len + 1 > c->rxcap) {
            size_t nc = (c->rxlen + len + 1) * 2;
            char *nb = realloc(c->rx, nc);
            if (!nb) return -1;
            c->rx = nb;
            c->rxcap = nc;
        }
        memcpy(c->rx + c->rxlen, in, len);
        c->rxlen += len;
        if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) {
            irn_frame(c, c->rx, c->rxlen);
            c->rxlen = 0;
        }
        return 0;
    }
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        /* Write while the socket takes it: lws says whether the pipe is choked. */
        while (c->qh) {
            outf *f = c->qh;
            if (lws_write(wsi, f->buf + LWS_PRE, f->len, LWS_WRITE_TEXT) < (int)f->len) return -1;
            c->qh = f->next;
            if (!c->qh) c->qt = NULL;
            free(f);
            if (c->qh && lws_send_pipe_choked(wsi)) {
                lws_callback_on_writable(wsi);
                break;
            }
        }
        return 0;
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (c->open && g.ph < PH_CLOSE) note_error("connection %d closed by the relay", c->idx);
        if (c->open) g.n_open--;
        c->open = false;
        c->wsi = NULL;
        return 0;
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

static const struct lws_protocols irn_protocols[] = {
    {"load", irn_cb, 0, 8192, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void irn_start(conn *c) {
    char hostport[96];
    int port = !c->is_pub && g.sub_port ? g.sub_port : g.port;
    snprintf(hostport, sizeof hostport, "%s:%d", g.host, port);
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof ci);
    ci.context = g.ctx;
    ci.address = g.host;
    ci.port = port;
    ci.path = "/?ua=pairlink-bench";
    ci.host = hostport;
    ci.origin = hostport;
    ci.local_protocol_name = "load";
    ci.userdata = c;
    ci.pwsi = &c->wsi;
    g.connecting++; /* before: lws may report a failure from inside the call */
    if (!lws_client_connect_via_info(&ci) && !c->failed) {
        note_error("lws_client_connect_via_info failed");
        c->failed = true;
        g.n_failed++;
        g.connecting--;
    }
}

/* ---- MQTT (libmosquitto) -------------------------------------------------------- */

#ifdef PL_BENCH_MQTT
static void mq_on_connect(struct mosquitto *m, void *ud, int rc) {
    conn *c = ud;
    g.connecting--;
    if (rc != 0) {
        note_error("CONNACK %d", rc);
        c->failed = true;
        g.n_failed++;
        return;
    }
    c->open = true;
    g.n_open++;
    if (c->is_pub || (g.idle && !g.subscribe)) {
        c->ready = true;
        g.n_ready++;
    } else if (mosquitto_subscribe(m, NULL, c->topic, 1) != MOSQ_ERR_SUCCESS) {
        note_error("subscribe failed");
    }
}

static void mq_on_subscribe(struct mosquitto *m, void *ud, int mid, int qos_count, const int *granted) {
    (void)m, (void)mid;
    conn *c = ud;
    if (qos_count < 1 || granted[0] != 1) note_error("subscription not granted at QoS 1");
    if (!c->ready) {
        c->ready = true;
        g.n_ready++;
    }
}

static void mq_on_publish(struct mosquitto *m, void *ud, int mid) {
    (void)m, (void)mid;
    on_ack(ud);
}

static void mq_on_message(struct mosquitto *m, void *ud, const struct mosquitto_message *msg) {
    (void)m;
    record_delivery(ud, msg->payload, (size_t)msg->payloadlen);
}

static void mq_publish(conn *c) {
    static char payload[MAX_SIZE];
    make_payload(payload, c, now_ns());
    int rc = mosquitto_publish(c->m, NULL, c->topic, g.size, payload, 1, false);
    if (rc != MOSQ_ERR_SUCCESS) note_error("mosquitto_publish: %s", mosquitto_strerror(rc));
}

static void mq_start(conn *c) {
    char id[32];
    snprintf(id, sizeof id, "b%d-%d", getpid(), c->idx);
    c->m = mosquitto_new(id, true, c);
    if (!c->m) {
        note_error("mosquitto_new failed");
        c->failed = true;
        g.n_failed++;
        return;
    }
    /* Nagle off, as libwebsockets does on the irn side. */
    mosquitto_int_option(c->m, MOSQ_OPT_TCP_NODELAY, 1);
    mosquitto_max_inflight_messages_set(c->m, 0); /* the bench's own window governs */
    mosquitto_connect_callback_set(c->m, mq_on_connect);
    mosquitto_subscribe_callback_set(c->m, mq_on_subscribe);
    mosquitto_publish_callback_set(c->m, mq_on_publish);
    mosquitto_message_callback_set(c->m, mq_on_message);
    int rc = mosquitto_connect(c->m, g.host, g.port, 60);
    if (rc != MOSQ_ERR_SUCCESS) {
        note_error("connect: %s", mosquitto_strerror(rc));
        c->failed = true;
        g.n_failed++;
        return;
    }
    g.connecting++;
}
#endif

/* ---- the run -------------------------------------------------------------------- */

static void publish(conn *c) {
    c->inflight++;
    c->seq++;
    g.sent_total++;
#ifdef PL_BENCH_MQTT
    if (g.pr == PROTO_MQTT) {
        mq_publish(c);
        return;
    }
#endif
    irn_publish(c);
}

/* A publisher may send while fewer than W of its messages are unacknowledged
 * by the broker AND fewer than W are undelivered to its subscriber: the
 * window is end to end, so a broker that acknowledges faster than it
 * delivers cannot pile up an unbounded backlog (mosquitto would drop QoS 1
 * messages beyond max_queued_messages; the relay keeps up to 100000). */
static bool can_send(const conn *pub) {
    const conn *sub = pub + 1;
    return pub->inflight < g.window && pub->seq - sub->delivered < (uint64_t)g.window;
}

static void refill(conn *pub) {
    if (g.ph != PH_RUN || g.rate > 0) return;
    while (can_send(pub)) publish(pub);
}

static void on_ack(conn *c) {
    if (c->inflight > 0) c->inflight--;
    c->acked++;
    g.acked_total++;
    refill(c);
}

static void start_conn(conn *c) {
    c->started = true;
#ifdef PL_BENCH_MQTT
    if (g.pr == PROTO_MQTT) {
        mq_start(c);
        return;
    }
#endif
    irn_start(c);
    if (!c->is_pub && !(g.idle && !g.subscribe)) irn_subscribe(c); /* sent once open */
}

static void set_phase(phase p) {
    static const char *names[] = {"connect", "setup", "run", "drain", "hold", "close", "done"};
    uint64_t now = now_ns();
    if (g.verbose)
        fprintf(stderr, "bench_relay_load: +%.3f s %s -> %s (ready %d, failed %d)\n",
                g.ph_start ? (double)(now - g.ph_start) / 1e9 : 0.0, names[g.ph], names[p], g.n_ready,
                g.n_failed);
    g.ph = p;
    g.ph_start = now;
}

static void close_all(void) {
    for (int i = 0; i < g.nconn; i++) {
        conn *c = &g.c[i];
#ifdef PL_BENCH_MQTT
        if (c->m) {
            mosquitto_disconnect(c->m);
            mosquitto_destroy(c->m);
            c->m = NULL;
        }
#endif
        /* Drop at once: lws_context_destroy() would wait out each close handshake. */
        if (c->wsi && c->open) lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
    }
    if (g.ctx) {
        /* lws on a foreign loop: destroy, let the loop close its handles,
         * destroy again. The process ends soon after, so the loop itself is
         * not closed. */
        lws_context_destroy(g.ctx);
        for (int i = 0; i < 100 && uv_run(&g.loop, UV_RUN_NOWAIT); i++) {}
        lws_context_destroy(g.ctx);
        g.ctx = NULL;
    }
}

static void rate_send(uint64_t now) {
    double due = g.rate * (double)(now - g.t_run0) / 1e9;
    int pubs = g.pairs, tried = 0;
    while ((double)g.sent_total < due && tried < pubs) {
        conn *c = &g.c[2 * (int)(g.rr++ % (uint64_t)pubs)];
        if (can_send(c)) {
            publish(c);
            tried = 0;
        } else {
            tried++;
        }
    }
    if ((double)g.sent_total + 1 < due) g.behind++;
}

static uint64_t drain_missing(void) {
    uint64_t missing = 0;
    for (int p = 0; p < g.pairs; p++) {
        conn *pub = &g.c[2 * p], *sub = &g.c[2 * p + 1];
        if (pub->acked > sub->delivered) missing += pub->acked - sub->delivered;
    }
    return missing;
}

static bool all_inflight_done(void) {
    for (int p = 0; p < g.pairs; p++)
        if (g.c[2 * p].inflight > 0) return false;
    return true;
}

/* Called about every millisecond (rate mode) or ten (otherwise). */
static void tick(void) {
    uint64_t now = now_ns();
    /* Start connections, a bounded number at a time. */
    while (g.ph == PH_CONNECT && g.next_start < g.nconn && g.connecting < MAX_CONNECTING)
        start_conn(&g.c[g.next_start++]);
#ifdef PL_BENCH_MQTT
    if (g.pr == PROTO_MQTT && now >= g.next_misc) {
        for (int i = 0; i < g.nconn; i++)
            if (g.c[i].m && g.c[i].open) mosquitto_loop_misc(g.c[i].m);
        g.next_misc = now + 1000000000ull;
    }
#endif
    switch (g.ph) {
    case PH_CONNECT:
    case PH_SETUP:
        if (g.n_ready + g.n_failed >= g.nconn && g.next_start >= g.nconn) {
            if (g.n_failed && !g.idle) {
                fprintf(stderr, "bench_relay_load: %d connections failed: %s\n", g.n_failed, g.first_error);
                g.status = 1;
                set_phase(PH_CLOSE);
                break;
            }
            if (g.idle) {
                set_phase(PH_HOLD);
                break;
            }
            set_phase(PH_RUN);
            g.t_run0 = now;
            g.t_m0 = now + (uint64_t)(g.warmup_s * 1e9);
            g.t_m1 = g.t_m0 + (uint64_t)(g.duration_s * 1e9);
            g.rss_start = proc_rss_kb(g.pid);
            for (int p = 0; p < g.pairs; p++) refill(&g.c[2 * p]);
        } else if (now - g.ph_start > PHASE_LIMIT_NS * 4) {
            fprintf(stderr, "bench_relay_load: set-up timed out: %d ready, %d failed of %d (%s)\n",
                    g.n_ready, g.n_failed, g.nconn, g.first_error);
            g.status = 1;
            set_phase(PH_CLOSE);
        }
        break;
    case PH_RUN:
        if (!g.in_window && !g.window_done && now >= g.t_m0) {
            g.in_window = true;
            g.bcpu0 = proc_cpu_s(g.pid);
            g.gcpu0 = self_cpu_s();
            g.rss_m0 = proc_rss_kb(g.pid);
        }
        if (g.in_window && now >= g.t_m1) {
            g.in_window = false;
            g.window_done = true;
            g.bcpu1 = proc_cpu_s(g.pid);
            g.gcpu1 = self_cpu_s();
            g.rss_m1 = proc_rss_kb(g.pid);
            g.t_m1 = now; /* the window's true end */
            set_phase(PH_DRAIN);
            break;
        }
        if (g.rate > 0) rate_send(now);
        break;
    case PH_DRAIN:
        if ((all_inflight_done() && drain_missing() == 0) || now - g.ph_start > DRAIN_LIMIT_NS)
            set_phase(PH_CLOSE);
        break;
    case PH_HOLD: {
        uint64_t settle = (uint64_t)(g.hold_s * 1e9);
        if (g.rss_open == 0 && now - g.ph_start > settle / 2) g.rss_open = proc_rss_kb(g.pid);
        if (now - g.ph_start > settle) {
            /* A second reading at the end: keep the larger (allocations settle late). */
            long r = proc_rss_kb(g.pid);
            if (r > g.rss_open) g.rss_open = r;
            set_phase(PH_CLOSE);
        }
        break;
    }
    case PH_CLOSE:
    case PH_DONE: break;
    }
}

static void uv_tick(uv_timer_t *t) {
    tick();
    if (g.ph == PH_CLOSE) uv_stop(t->loop);
}

static void run_irn(void) {
    if (uv_loop_init(&g.loop) != 0) {
        g.status = 1;
        return;
    }
    void *loops[] = {&g.loop};
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = irn_protocols;
    info.gid = -1;
    info.uid = -1;
    info.options = LWS_SERVER_OPTION_LIBUV;
    info.foreign_loops = loops;
    info.fd_limit_per_thread = (unsigned)g.nconn + 64;
    lws_set_log_level(LLL_ERR, NULL);
    g.ctx = lws_create_context(&info);
    if (!g.ctx) {
        fprintf(stderr, "bench_relay_load: lws_create_context failed (is the lws libuv plugin installed?)\n");
        g.status = 1;
        return;
    }
    uv_timer_init(&g.loop, &g.timer);
    uint64_t every = g.rate > 0 ? 1 : 10;
    uv_timer_start(&g.timer, uv_tick, every, every);
    uv_run(&g.loop, UV_RUN_DEFAULT);
    uv_timer_stop(&g.timer);
}

#ifdef PL_BENCH_MQTT
static void run_mqtt(void) {
    mosquitto_lib_init();
    struct pollfd *pf = calloc((size_t)g.nconn, sizeof *pf);
    int *who = calloc((size_t)g.nconn, sizeof *who);
    if (!pf || !who) {
        g.status = 1;
        return;
    }
    uint64_t next_tick = 0;
    while (g.ph != PH_CLOSE) {
        uint64_t now = now_ns();
        if (now >= next_tick) {
            tick();
            next_tick = now + (g.rate > 0 ? 1000000ull : 10000000ull);
        }
        int n = 0;
        for (int i = 0; i < g.nconn; i++) {
            conn *c = &g.c[i];
            if (!c->m || c->failed) continue;
            int fd = mosquitto_socket(c->m);
            if (fd < 0) continue;
            pf[n].fd = fd;
            pf[n].events = POLLIN | (mosquitto_want_write(c->m) ? POLLOUT : 0);
            pf[n].revents = 0;
            who[n++] = i;
        }
        int r = poll(pf, (nfds_t)n, g.rate > 0 ? 1 : 10);
        if (r < 0 && errno != EINTR) break;
        for (int k = 0; r > 0 && k < n; k++) {
            if (!pf[k].revents) continue;
            conn *c = &g.c[who[k]];
            int rc = MOSQ_ERR_SUCCESS;
            if (pf[k].revents & (POLLIN | POLLHUP | POLLERR)) rc = mosquitto_loop_read(c->m, 1);
            if (rc == MOSQ_ERR_SUCCESS && (pf[k].revents & POLLOUT)) rc = mosquitto_loop_write(c->m, 1);
            if (rc != MOSQ_ERR_SUCCESS) {
                if (g.ph < PH_CLOSE) note_error("connection %d: %s", c->idx, mosquitto_strerror(rc));
                if (c->open) g.n_open--;
                c->open = false;
                if (!c->ready) {
                    c->failed = true;
                    g.n_failed++;
                }
                mosquitto_destroy(c->m);
                c->m = NULL;
            }
        }
    }
    free(pf);
    free(who);
}
#endif

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of the sorted latencies. */
static uint32_t pct(double p) {
    if (!g.nlat) return 0;
    size_t k = (size_t)((p / 100.0) * (double)g.nlat + 0.999999999);
    if (k < 1) k = 1;
    if (k > g.nlat) k = g.nlat;
    return g.lat_us[k - 1];
}

static void print_result(void) {
    double secs = (double)(g.t_m1 - g.t_m0) / 1e9;
    qsort(g.lat_us, g.nlat, sizeof *g.lat_us, cmp_u32);
    double thr = secs > 0 ? (double)g.win_delivered / secs : 0;
    double bcpu = g.bcpu1 - g.bcpu0, gcpu = g.gcpu1 - g.gcpu0;
    printf("RESULT proto=%s mode=load pairs=%d window=%d size=%d rate=%.0f secs=%.2f delivered=%" PRIu64
           " throughput=%.0f p50_us=%u p90_us=%u p99_us=%u p999_us=%u max_us=%u broker_cpu_s=%.2f"
           " broker_cpu_pct=%.0f broker_us_per_msg=%.1f gen_cpu_pct=%.0f rss_start_kb=%ld rss_end_kb=%ld"
           " sent=%" PRIu64 " acked=%" PRIu64 " lost=%" PRIu64 " unknown=%" PRIu64 " errors=%" PRIu64
           " behind=%" PRIu64 "\n",
           g.pr == PROTO_IRN ? "irn" : "mqtt", g.pairs, g.window, g.size, g.rate, secs, g.win_delivered, thr,
           pct(50), pct(90), pct(99), pct(99.9), g.nlat ? g.lat_us[g.nlat - 1] : 0, g.pid > 0 ? bcpu : -1,
           g.pid > 0 && secs > 0 ? 100 * bcpu / secs : -1,
           g.pid > 0 && g.win_delivered ? 1e6 * bcpu / (double)g.win_delivered : -1,
           secs > 0 ? 100 * gcpu / secs : -1, g.rss_start, g.rss_m1, g.sent_total, g.acked_total,
           drain_missing(), g.dup_or_unknown, g.errors, g.behind);
    if (g.errors) fprintf(stderr, "bench_relay_load: first error: %s\n", g.first_error);
}

static void print_idle(void) {
    long per = -1;
    int ok = g.n_ready;
    if (g.rss_start > 0 && g.rss_open > 0 && ok > 0) per = (g.rss_open - g.rss_start) * 1024 / ok;
    printf("RESULT proto=%s mode=idle conns=%d ready=%d failed=%d subscribe=%d rss_before_kb=%ld"
           " rss_open_kb=%ld rss_after_close_kb=%ld bytes_per_conn=%ld errors=%" PRIu64 "\n",
           g.pr == PROTO_IRN ? "irn" : "mqtt", g.nconn, ok, g.n_failed, g.subscribe ? 1 : 0, g.rss_start,
           g.rss_open, g.rss_closed, per, g.errors);
    if (g.errors) fprintf(stderr, "bench_relay_load: first error: %s\n", g.first_error);
}

static void usage(void) {
    fprintf(stderr,
            "usage: bench_relay_load --url ws://127.0.0.1:PORT | mqtt://127.0.0.1:PORT [--pid PID]\n"
            "         [--pairs 100] [--window 8] [--size 1024] [--rate 0] [--warmup 1] [--duration 5]\n"
            "         [--ttl 30] [--sub-url ws://127.0.0.1:PORT (subscribers there: relay --cluster)]\n"
            "         | --idle N [--subscribe] [--hold 4]   [--verbose: phases on stderr]\n");
}

static bool parse_url(const char *url) {
    const char *rest;
    if (!strncmp(url, "ws://", 5)) {
        g.pr = PROTO_IRN;
        rest = url + 5;
    } else if (!strncmp(url, "mqtt://", 7)) {
        g.pr = PROTO_MQTT;
        rest = url + 7;
    } else {
        return false;
    }
    const char *colon = strchr(rest, ':');
    if (!colon || (size_t)(colon - rest) >= sizeof g.host) return false;
    memcpy(g.host, rest, (size_t)(colon - rest));
    g.host[colon - rest] = 0;
    g.port = atoi(colon + 1);
    return g.port > 0 && g.port < 65536;
}

int main(int argc, char **argv) {
    const char *url = NULL;
    g.pairs = 100;
    g.window = 8;
    g.size = 1024;
    g.ttl = 30;
    g.warmup_s = 1;
    g.duration_s = 5;
    g.hold_s = 4;
    static const struct option longopts[] = {
        {"url", required_argument, NULL, 'u'},      {"pid", required_argument, NULL, 'p'},
        {"sub-url", required_argument, NULL, 'U'},
        {"pairs", required_argument, NULL, 'P'},    {"window", required_argument, NULL, 'W'},
        {"size", required_argument, NULL, 'S'},     {"rate", required_argument, NULL, 'R'},
        {"warmup", required_argument, NULL, 'w'},   {"duration", required_argument, NULL, 'd'},
        {"ttl", required_argument, NULL, 't'},      {"idle", required_argument, NULL, 'i'},
        {"subscribe", no_argument, NULL, 's'},      {"hold", required_argument, NULL, 'h'},
        {"verbose", no_argument, NULL, 'v'},        {"help", no_argument, NULL, 'H'},
        {NULL, 0, NULL, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (o) {
        case 'u': url = optarg; break;
        case 'U': {
            const char *colon = strrchr(optarg, ':');
            g.sub_port = strncmp(optarg, "ws://", 5) || !colon ? -1 : atoi(colon + 1);
            break;
        }
        case 'p': g.pid = atoi(optarg); break;
        case 'P': g.pairs = atoi(optarg); break;
        case 'W': g.window = atoi(optarg); break;
        case 'S': g.size = atoi(optarg); break;
        case 'R': g.rate = atof(optarg); break;
        case 'w': g.warmup_s = atof(optarg); break;
        case 'd': g.duration_s = atof(optarg); break;
        case 't': g.ttl = atoi(optarg); break;
        case 'i': g.idle = atoi(optarg); break;
        case 's': g.subscribe = true; break;
        case 'h': g.hold_s = atof(optarg); break;
        case 'v': g.verbose = true; break;
        case 'H': usage(); return 0;
        default: usage(); return 2;
        }
    }
    if (!url) {
        printf("bench_relay_load: skipped (needs --url; scripts/bench-wc.sh starts the brokers)\n");
        return 0;
    }
    if (!parse_url(url) || g.sub_port < 0 || g.sub_port > 65535 || g.pairs < 1 || g.window < 1 || g.window > 1000 || g.size < HDR_CHARS ||
        g.size > MAX_SIZE || g.rate < 0 || g.warmup_s < 0 || g.warmup_s > 60 || g.duration_s <= 0 ||
        g.duration_s > 120 || g.idle < 0 || g.idle > MAX_CONNS || g.pairs * 2 > MAX_CONNS ||
        g.hold_s < 0 || g.hold_s > 120) {
        usage();
        return 2;
    }
#ifndef PL_BENCH_MQTT
    if (g.pr == PROTO_MQTT) {
        printf("bench_relay_load: skipped mqtt (built without libmosquitto; scripts/bench-wc.sh builds that variant)\n");
        return 0;
    }
#endif
    /* base64-alphabet filler */
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < MAX_SIZE; i++) g.filler[i] = b64[(i * 7 + 3) % 64];

    g.nconn = g.idle ? g.idle : 2 * g.pairs;
    g.c = calloc((size_t)g.nconn, sizeof *g.c);
    if (!g.c) return 1;
    uint32_t salt = (uint32_t)getpid() ^ (uint32_t)now_ns();
    for (int i = 0; i < g.nconn; i++) {
        conn *c = &g.c[i];
        c->idx = i;
        c->pair = g.idle ? -1 : i / 2;
        c->is_pub = !g.idle && i % 2 == 0;
        /* 64 lowercase hex: a valid relay topic, distinct per pair and per run. */
        snprintf(c->topic, sizeof c->topic, "%08x%056x", salt, (unsigned)(g.idle ? i : i / 2));
    }
    g.rss_start = proc_rss_kb(g.pid);
    set_phase(PH_CONNECT);
    if (g.pr == PROTO_IRN) run_irn();
#ifdef PL_BENCH_MQTT
    else run_mqtt();
#endif
    close_all();
    if (g.verbose) fprintf(stderr, "bench_relay_load: +%.3f s closed\n", (double)(now_ns() - g.ph_start) / 1e9);
    if (g.idle) {
        /* Give the broker a moment to tear the connections down. */
        sleep(2);
        g.rss_closed = proc_rss_kb(g.pid);
        print_idle();
    } else if (g.status == 0) {
        print_result();
    }
    for (int i = 0; i < g.nconn; i++) {
        while (g.c[i].qh) {
            outf *f = g.c[i].qh;
            g.c[i].qh = f->next;
            free(f);
        }
        free(g.c[i].rx);
    }
    free(g.c);
    free(g.lat_us);
#ifdef PL_BENCH_MQTT
    if (g.pr == PROTO_MQTT) mosquitto_lib_cleanup();
#endif
    return g.status;
}
