/* SPDX-License-Identifier: Apache-2.0 */
/* The C side of the libp2p interop tests (tests/interop/p2p_*.sh), with
 * the command line and JSON-lines output of interop/<project>/peer.mjs so
 * that the scripts read both alike (interop/README.md):
 *
 *   p2p_driver listen [--muxer yamux|mplex|both] [--lifetime S] [--once]
 *                     [--pings N] [--key-type ed25519|secp256k1]
 *   p2p_driver dial MULTIADDR [--muxer M] [--pings N] [--echo-bytes N]
 *                     [--timeout S] [--key-type T]
 *
 * listen serves identify, ping and /pairlink/test/echo/1.0.0 and prints
 * "listening", "connection", "identify" (what the remote said of itself),
 * "ping" (it pings every remote --pings times once identified: the other
 * direction of ping), "echo", "disconnect" lines. dial identifies, pings,
 * sends --echo-bytes through the echo protocol, checks what comes back and
 * prints one "result" line. Exit: 0 success, 1 failure, 2 usage, 3 time-out. */
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "pairlink/hash.h"
#include "pairlink/p2p.h"
#include "support/p2p_echo.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_TIMEOUT = 3 };

typedef struct drv {
    uv_loop_t loop;
    pl_driver *driver;
    uv_timer_t deadline;
    uv_signal_t sigint, sigterm;
    pl_p2p_host *h;
    bool listen, once, stopping;
    int exit_code;
    unsigned long pings;
    pl_test_echo echo;
    bool identified_once;
    /* dial */
    const char *addr;
    pl_p2p_conn_id conn;
    json_t *result, *ping_ms;
    unsigned long pings_done;
    size_t echo_total, echo_sent, echo_got;
    uint8_t *payload;
    bool echo_mismatch;
    pl_p2p_stream_id echo_stream;
    const char *stage;
} drv;

static const char *mux_short(const char *m) {
    if (!m) return "";
    return !strcmp(m, "/yamux/1.0.0") ? "yamux" : !strcmp(m, "/mplex/6.7.0") ? "mplex" : m;
}

static void emit(json_t *o) {
    char *s = json_dumps(o, JSON_COMPACT);
    printf("%s\n", s);
    fflush(stdout);
    free(s);
    json_decref(o);
}

static json_t *peer_json(const pl_p2p_peer_id *id) {
    char t[PL_P2P_PEER_ID_TEXT_SIZE];
    if (!id || !id->len || pl_p2p_peer_id_format(t, id) != PL_OK) return json_null();
    return json_string(t);
}

static json_t *strings(const char *const *v, size_t n) {
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(a, json_string(v[i]));
    return a;
}

static void add_identify(json_t *o, const pl_p2p_identify *id) {
    json_object_set_new(o, "agentVersion", json_string(id->agent_version));
    json_object_set_new(o, "protocolVersion", json_string(id->protocol_version));
    json_object_set_new(o, "protocols", strings(id->protocols, id->nprotocols));
    json_object_set_new(o, "listenAddrs", strings(id->listen_addrs, id->nlisten_addrs));
    json_object_set_new(o, "observedAddr",
                        id->observed_addr[0] ? json_string(id->observed_addr) : json_null());
}

static void on_log(void *ud, const char *line) {
    (void)ud;
    fprintf(stderr, "[c] %s\n", line);
}

static void on_signal_closed(uv_handle_t *h) { (void)h; }

static void on_host_closed(void *ud) {
    drv *d = ud;
    pl_driver_close(d->driver, NULL, NULL);
    uv_close((uv_handle_t *)&d->deadline, on_signal_closed);
    uv_close((uv_handle_t *)&d->sigint, on_signal_closed);
    uv_close((uv_handle_t *)&d->sigterm, on_signal_closed);
}

static void stop(drv *d, int code) {
    if (d->stopping) return;
    d->stopping = true;
    d->exit_code = code;
    pl_p2p_host_close(d->h, on_host_closed, d);
}

static void fail_result(drv *d, const char *what) {
    char msg[256];
    snprintf(msg, sizeof msg, "%s: %s", d->stage, what);
    json_object_set_new(d->result, "error", json_string(msg));
}

/* The echo payload of interop/p2p-common.mjs: block i is
 * sha256("pairlink-echo" | u32be(i)), cut to the size. */
static uint8_t *echo_payload(size_t n) {
    uint8_t *p = malloc(n ? n : 1);
    for (size_t off = 0, i = 0; off < n; off += 32, i++) {
        uint8_t in[13 + 4], h[32];
        memcpy(in, "pairlink-echo", 13);
        in[13] = (uint8_t)(i >> 24), in[14] = (uint8_t)(i >> 16), in[15] = (uint8_t)(i >> 8),
        in[16] = (uint8_t)i;
        pl_sha256(h, in, sizeof in);
        memcpy(p + off, h, n - off < 32 ? n - off : 32);
    }
    return p;
}

/* ---- dial ---- */

static void dial_finish(drv *d, bool ok) {
    json_object_set_new(d->result, "ok", json_boolean(ok));
    emit(json_incref(d->result));
    stop(d, ok ? EXIT_OK : EXIT_FAIL);
}

static void echo_send(drv *d, pl_p2p_host *h, pl_p2p_stream_id s) {
    while (d->echo_sent < d->echo_total) {
        size_t n = d->echo_total - d->echo_sent, t = 0;
        if (n > 65536) n = 65536;
        if (pl_p2p_stream_write(h, s, d->payload + d->echo_sent, n, &t) != PL_OK || t == 0) return;
        d->echo_sent += t;
    }
    (void)pl_p2p_stream_close(h, s);
}

static void on_echo_stream(void *ud, pl_p2p_host *h, const pl_p2p_stream_event *ev) {
    drv *d = ud;
    switch (ev->kind) {
    case PL_P2P_STREAM_OPENED:
    case PL_P2P_STREAM_WRITABLE: echo_send(d, h, ev->stream); break;
    case PL_P2P_STREAM_READABLE: {
        const uint8_t *p;
        size_t n = 0;
        if (pl_p2p_stream_peek(h, ev->stream, &p, &n) != PL_OK) return;
        if (d->echo_got + n > d->echo_total || memcmp(p, d->payload + d->echo_got, n) != 0)
            d->echo_mismatch = true;
        d->echo_got += n;
        (void)pl_p2p_stream_consume(h, ev->stream, n);
        break;
    }
    case PL_P2P_STREAM_EOF: break;
    case PL_P2P_STREAM_CLOSED: {
        bool ok = ev->err == PL_OK && !d->echo_mismatch && d->echo_got == d->echo_total;
        json_object_set_new(d->result, "echo_bytes", json_integer((json_int_t)d->echo_got));
        json_object_set_new(d->result, "echo_ok", json_boolean(ok));
        if (!ok) fail_result(d, ev->err != PL_OK ? pl_errname(ev->err) : "echo mismatch");
        dial_finish(d, ok);
        break;
    }
    }
}

static void start_echo(drv *d) {
    d->stage = "echo";
    if (d->echo_total == 0) {
        json_object_set_new(d->result, "echo_ok", json_true());
        dial_finish(d, true);
        return;
    }
    d->payload = echo_payload(d->echo_total);
    const char *p[] = {PL_TEST_ECHO_PROTOCOL};
    pl_err e = pl_p2p_stream_open(d->h, d->conn, p, 1, on_echo_stream, d, &d->echo_stream);
    if (e != PL_OK) {
        fail_result(d, pl_errname(e));
        dial_finish(d, false);
    }
}

static void next_ping(drv *d);

static void on_dial_ping(void *ud, pl_p2p_host *h, pl_p2p_conn_id c, pl_err err, double rtt) {
    (void)h, (void)c;
    drv *d = ud;
    if (d->stopping) return;
    if (err != PL_OK) {
        fail_result(d, pl_errname(err));
        dial_finish(d, false);
        return;
    }
    json_array_append_new(d->ping_ms, json_real(rtt));
    d->pings_done++;
    next_ping(d);
}

static void next_ping(drv *d) {
    if (d->pings_done == d->pings) {
        start_echo(d);
        return;
    }
    static char stage[32];
    snprintf(stage, sizeof stage, "ping %lu", d->pings_done + 1);
    d->stage = stage;
    pl_err e = pl_p2p_ping(d->h, d->conn, on_dial_ping, d);
    if (e != PL_OK) on_dial_ping(d, d->h, d->conn, e, 0);
}

static void on_dial_event(void *ud, pl_p2p_host *h, const pl_p2p_event *ev) {
    (void)h;
    drv *d = ud;
    if (ev->conn != d->conn || d->stopping) return;
    switch (ev->kind) {
    case PL_P2P_EV_CONNECTED:
        d->stage = "identify";
        json_object_set_new(d->result, "peer", peer_json(ev->peer));
        json_object_set_new(d->result, "muxer", json_string(mux_short(ev->muxer)));
        break;
    case PL_P2P_EV_IDENTIFIED:
        if (ev->err != PL_OK) {
            fail_result(d, pl_errname(ev->err));
            dial_finish(d, false);
            return;
        }
        add_identify(d->result, ev->identify);
        next_ping(d);
        break;
    case PL_P2P_EV_DISCONNECTED:
        fail_result(d, pl_errname(ev->err));
        dial_finish(d, false);
        break;
    }
}

/* ---- listen ---- */

static void on_listen_ping(void *ud, pl_p2p_host *h, pl_p2p_conn_id c, pl_err err, double rtt) {
    drv *d = ud;
    pl_p2p_conn_info info;
    if (pl_p2p_conn_info_get(h, c, &info) != PL_OK) memset(&info, 0, sizeof info);
    json_t *o = json_pack("{s:s, s:o}", "event", "ping", "peer", peer_json(&info.peer));
    if (err == PL_OK) json_object_set_new(o, "rtt_ms", json_real(rtt));
    else json_object_set_new(o, "error", json_string(pl_errname(err)));
    emit(o);
    (void)d;
}

static void on_listen_event(void *ud, pl_p2p_host *h, const pl_p2p_event *ev) {
    drv *d = ud;
    switch (ev->kind) {
    case PL_P2P_EV_CONNECTED:
        emit(json_pack("{s:s, s:o, s:s, s:s}", "event", "connection", "peer", peer_json(ev->peer),
                       "muxer", mux_short(ev->muxer), "direction", ev->inbound ? "inbound" : "outbound"));
        break;
    case PL_P2P_EV_IDENTIFIED: {
        json_t *o = json_pack("{s:s, s:o}", "event", "identify", "peer", peer_json(ev->peer));
        if (ev->identify) add_identify(o, ev->identify);
        else json_object_set_new(o, "error", json_string(pl_errname(ev->err)));
        emit(o);
        if (ev->identify) d->identified_once = true;
        for (unsigned long i = 0; i < d->pings; i++) (void)pl_p2p_ping(h, ev->conn, on_listen_ping, d);
        break;
    }
    case PL_P2P_EV_DISCONNECTED:
        emit(json_pack("{s:s, s:o, s:s, s:b}", "event", "disconnect", "peer", peer_json(ev->peer),
                       "error", pl_errname(ev->err), "established", ev->established));
        if (d->once && !d->stopping) stop(d, d->identified_once ? EXIT_OK : EXIT_FAIL);
        break;
    }
}

static void on_echo_done(void *ud, const pl_p2p_stream_event *ev, size_t bytes) {
    (void)ud;
    json_t *o = json_pack("{s:s, s:o}", "event", "echo", "peer", peer_json(ev->peer));
    if (ev->err == PL_OK) {
        json_object_set_new(o, "bytes", json_integer((json_int_t)bytes));
    } else {
        json_object_set_new(o, "bytes", json_null());
        json_object_set_new(o, "error", json_string(pl_errname(ev->err)));
    }
    emit(o);
}

/* ---- main ---- */

static void on_deadline(uv_timer_t *t) {
    drv *d = t->data;
    if (!d->listen) {
        json_t *r = d->result;
        char msg[128];
        snprintf(msg, sizeof msg, "timeout during %s", d->stage);
        json_object_set_new(r, "error", json_string(msg));
        json_object_set_new(r, "ok", json_false());
        emit(json_incref(r));
    } else {
        emit(json_pack("{s:s, s:s}", "event", "exit", "reason", "lifetime"));
    }
    stop(d, d->listen && !d->once ? EXIT_OK : EXIT_TIMEOUT);
}

static void on_sig(uv_signal_t *s, int signum) {
    (void)signum;
    stop(s->data, EXIT_OK);
}

static int usage(void) {
    fprintf(stderr, "usage: p2p_driver listen [--muxer M] [--lifetime S] [--once] [--pings N]\n"
                    "       p2p_driver dial MULTIADDR [--muxer M] [--pings N] [--echo-bytes N] [--timeout S]\n");
    return EXIT_USAGE;
}

int main(int argc, char **argv) {
    if (pl_init() != PL_OK) return EXIT_FAIL;
    if (argc < 2) return usage();
    drv d = {0};
    d.listen = !strcmp(argv[1], "listen");
    if (!d.listen && strcmp(argv[1], "dial")) return usage();
    int i = 2;
    if (!d.listen) {
        if (argc < 3) return usage();
        d.addr = argv[2];
        i = 3;
    }
    pl_p2p_host_opts o = {.on_log = on_log};
    pl_p2p_key_type kt = PL_P2P_KEY_ED25519;
    unsigned long lifetime = 60, timeout = 30;
    d.pings = d.listen ? 0 : 3;
    d.echo_total = 1u << 20;
    for (; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--once")) {
            d.once = true;
            continue;
        }
        if (!v) return usage();
        i++;
        if (!strcmp(a, "--muxer")) {
            o.muxers = !strcmp(v, "yamux")   ? PL_P2P_MUXERS_YAMUX
                       : !strcmp(v, "mplex") ? PL_P2P_MUXERS_MPLEX
                                             : PL_P2P_MUXERS_DEFAULT;
        } else if (!strcmp(a, "--lifetime")) {
            lifetime = strtoul(v, NULL, 10);
        } else if (!strcmp(a, "--timeout")) {
            timeout = strtoul(v, NULL, 10);
        } else if (!strcmp(a, "--pings")) {
            d.pings = strtoul(v, NULL, 10);
        } else if (!strcmp(a, "--echo-bytes")) {
            d.echo_total = strtoul(v, NULL, 10);
        } else if (!strcmp(a, "--key-type")) {
            kt = !strcmp(v, "secp256k1") ? PL_P2P_KEY_SECP256K1 : PL_P2P_KEY_ED25519;
        } else {
            return usage();
        }
    }
    pl_p2p_key *key = NULL;
    if (pl_p2p_key_generate(&key, kt) != PL_OK) return EXIT_FAIL;
    uv_loop_init(&d.loop);
    o.key = key;
    o.ud = &d;
    o.on_event = d.listen ? on_listen_event : on_dial_event;
    if (pl_driver_new(&d.driver, &d.loop) != PL_OK) return EXIT_FAIL;
    if (pl_p2p_host_new(&d.h, d.driver, &o) != PL_OK) return EXIT_FAIL;
    pl_p2p_key_free(key);
    d.echo.on_done = on_echo_done;
    if (pl_p2p_host_handle(d.h, PL_TEST_ECHO_PROTOCOL, pl_test_echo_cb, &d.echo) != PL_OK)
        return EXIT_FAIL;
    uv_timer_init(&d.loop, &d.deadline);
    uv_signal_init(&d.loop, &d.sigint);
    uv_signal_init(&d.loop, &d.sigterm);
    d.deadline.data = d.sigint.data = d.sigterm.data = &d;
    uv_signal_start(&d.sigint, on_sig, SIGINT);
    uv_signal_start(&d.sigterm, on_sig, SIGTERM);
    uv_timer_start(&d.deadline, on_deadline, (d.listen ? lifetime : timeout) * 1000, 0);

    if (d.listen) {
        pl_err e = pl_p2p_host_listen(d.h, "/ip4/127.0.0.1/tcp/0");
        if (e != PL_OK) {
            fprintf(stderr, "listen: %s\n", pl_errname(e));
            stop(&d, EXIT_FAIL);
        } else {
            const char *const *la;
            pl_p2p_host_listen_addrs(d.h, &la);
            pl_p2p_peer_id id;
            pl_p2p_host_peer_id(d.h, &id);
            char pt[PL_P2P_PEER_ID_TEXT_SIZE], addr[512];
            pl_p2p_peer_id_format(pt, &id);
            snprintf(addr, sizeof addr, "%s/p2p/%s", la[0], pt);
            emit(json_pack("{s:s, s:s, s:s}", "event", "listening", "addr", addr, "peer", pt));
        }
    } else {
        d.stage = "dial";
        d.ping_ms = json_array();
        d.result = json_pack("{s:s, s:b, s:n, s:n, s:n, s:n, s:[], s:[], s:n, s:O, s:i, s:b, s:n}",
                             "event", "result", "ok", 0, "peer", "muxer", "agentVersion",
                             "protocolVersion", "protocols", "listenAddrs", "observedAddr",
                             "ping_ms", d.ping_ms, "echo_bytes", (json_int_t)0, "echo_ok", 0,
                             "error");
        pl_err e = pl_p2p_host_dial(d.h, d.addr, &d.conn);
        if (e != PL_OK) {
            fail_result(&d, pl_errname(e));
            dial_finish(&d, false);
        }
    }
    uv_run(&d.loop, UV_RUN_DEFAULT);
    int lc = uv_loop_close(&d.loop);
    json_decref(d.result);
    json_decref(d.ping_ms);
    free(d.payload);
    if (lc != 0) {
        fprintf(stderr, "p2p_driver: handles left open\n");
        return EXIT_FAIL;
    }
    return d.exit_code;
}
