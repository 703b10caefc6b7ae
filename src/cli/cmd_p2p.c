/* SPDX-License-Identifier: Apache-2.0 */
/* `pairlink p2p id | listen | ping`: the libp2p host from the command line. */
#include "cli/cli.h"
#include "pairlink/codec.h"
#include "pairlink/hash.h"
#include "pairlink/p2p.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <uv.h>

/* ---- shared helpers ------------------------------------------------------------ */

/* Default key file: p2p.key in the data directory (src/cli/paths.c),
 * beside the `wc` commands' default store. */
static const char *default_key_file(char *buf, size_t cap) {
    return pl_cli_default_file(buf, cap, "p2p.key", true);
}

static bool parse_ulong(const char *s, unsigned long max, unsigned long *out) {
    char *end;
    errno = 0;
    if (!s || !*s || *s == '-') return false;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || v > max) return false;
    *out = v;
    return true;
}

static void log_line(void *ud, const char *line) {
    (void)ud;
    char ts[32];
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(stderr, "%s.%03ldZ p2p: %s\n", ts, now.tv_nsec / 1000000, line);
}

static const char *type_name(pl_p2p_key_type t) {
    return t == PL_P2P_KEY_SECP256K1 ? "secp256k1" : "ed25519";
}

static bool parse_type(const char *s, pl_p2p_key_type *t) {
    if (!strcmp(s, "ed25519"))
        *t = PL_P2P_KEY_ED25519;
    else if (!strcmp(s, "secp256k1"))
        *t = PL_P2P_KEY_SECP256K1;
    else
        return false;
    return true;
}

static bool parse_muxer(const char *s, pl_p2p_muxers *m) {
    if (!strcmp(s, "yamux"))
        *m = PL_P2P_MUXERS_YAMUX;
    else if (!strcmp(s, "mplex"))
        *m = PL_P2P_MUXERS_MPLEX;
    else if (!strcmp(s, "both"))
        *m = PL_P2P_MUXERS_DEFAULT;
    else
        return false;
    return true;
}

static int load_key(const pl_cli_out *o, const char *path, pl_p2p_key_type type, pl_p2p_key **key,
                    bool *created) {
    pl_err e = pl_p2p_key_load_or_create(path, type, key, created);
    if (e == PL_OK) return 0;
    return pl_cli_key_file_error(o, path, e, "cannot load or create the key");
}

static void peer_text(const pl_p2p_peer_id *id, char out[PL_P2P_PEER_ID_TEXT_SIZE]) {
    if (pl_p2p_peer_id_format(out, id) != PL_OK) snprintf(out, PL_P2P_PEER_ID_TEXT_SIZE, "?");
}

/* ---- id ----------------------------------------------------------------------------------- */

static const char id_usage[] =
    "usage: pairlink p2p id [--key-file F] [--json] [--key-type ed25519|secp256k1]\n"
    "                       [--import-nodekey HEX]\n"
    "\n"
    "Print the libp2p peer id of the key in the key file, creating the file (mode 0600)\n"
    "with a new key on first use.\n"
    "\n"
    "options:\n"
    "  --key-file F          the key file (default $XDG_DATA_HOME/pairlink/p2p.key, or\n"
    "                        ~/.local/share/pairlink/p2p.key): libp2p's marshalled\n"
    "                        PrivateKey protobuf (docs/p2p.md)\n"
    "  --key-type T          type of a key created now: ed25519 (default) or secp256k1\n"
    "  --import-nodekey HEX  create the key file from a 32-byte secp256k1 secret in hex\n"
    "                        (nwaku's node key); refused if the file exists\n"
    "  --json                {\"event\":\"peer_id\", \"peer_id\", \"key_type\", \"key_file\",\n"
    "                        \"created\"}\n"
    "  --help                this text\n";

static int cmd_id(int argc, char **argv) {
    static const char cmd[] = "p2p id";
    enum { O_KEY = 1, O_JSON, O_TYPE, O_IMPORT, O_HELP };
    static const struct option longopts[] = {
        {"key-file", required_argument, NULL, O_KEY},
        {"json", no_argument, NULL, O_JSON},
        {"key-type", required_argument, NULL, O_TYPE},
        {"import-nodekey", required_argument, NULL, O_IMPORT},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *key_file = NULL, *import = NULL;
    pl_cli_out out = {.cmd = cmd};
    pl_p2p_key_type type = PL_P2P_KEY_ED25519;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case O_KEY:
            key_file = optarg;
            break;
        case O_JSON:
            out.json = true;
            break;
        case O_TYPE:
            if (!parse_type(optarg, &type))
                return pl_cli_usage_error(cmd, "--key-type wants ed25519 or secp256k1");
            break;
        case O_IMPORT:
            import = optarg;
            break;
        case O_HELP:
            fputs(id_usage, stdout);
            return 0;
        default:
            return pl_cli_usage_error(cmd, "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return pl_cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    char buf[4096];
    if (!key_file) key_file = default_key_file(buf, sizeof buf);

    pl_p2p_key *key = NULL;
    bool created = false;
    if (import) {
        uint8_t secret[PL_P2P_SECRET_BYTES];
        const char *hex = strncmp(import, "0x", 2) ? import : import + 2;
        pl_err e = pl_hex_decode_exact(secret, sizeof secret, hex, strlen(hex));
        if (e != PL_OK) return pl_cli_usage_error(cmd, "--import-nodekey wants 64 hex digits");
        e = pl_p2p_key_from_secret(&key, PL_P2P_KEY_SECP256K1, secret);
        pl_wipe(secret, sizeof secret);
        if (e == PL_OK) e = pl_p2p_key_save(key_file, key);
        if (e != PL_OK) {
            pl_p2p_key_free(key);
            return pl_cli_key_file_error(&out, key_file, e, "cannot import the key");
        }
        created = true;
    } else {
        int rc = load_key(&out, key_file, type, &key, &created);
        if (rc) return rc;
    }
    pl_p2p_peer_id id;
    pl_p2p_key_peer_id(key, &id);
    char text[PL_P2P_PEER_ID_TEXT_SIZE];
    peer_text(&id, text);
    if (out.json) {
        pl_cli_emit(&out, json_pack("{s:s, s:s, s:s, s:s, s:b}", "event", "peer_id", "peer_id",
                                    text, "key_type", type_name(pl_p2p_key_type_of(key)),
                                    "key_file", key_file, "created", created));
    } else {
        printf("%s\n", text);
    }
    pl_p2p_key_free(key);
    return 0;
}

/* ---- listen ------------------------------------------------------------------------------- */

static const char listen_usage[] =
    "usage: pairlink p2p listen [--listen MULTIADDR] [--key-file F] [--muxer yamux|mplex|both]\n"
    "                           [--json]\n"
    "\n"
    "Run a libp2p host that answers identify and ping. Prints\n"
    "\"listening on /ip4/HOST/tcp/PORT/p2p/PEERID\" on stdout once it accepts (--json:\n"
    "{\"event\":\"listening\",\"address\"}); connections are logged on stderr. SIGTERM\n"
    "stops it cleanly (exit 0), SIGINT too (exit 130).\n"
    "\n"
    "options:\n"
    "  --listen MULTIADDR    where to listen (default /ip4/127.0.0.1/tcp/0: a free port);\n"
    "                        may be given up to 8 times\n"
    "  --key-file F          identity key (see 'pairlink p2p id --help'); created if absent\n"
    "  --muxer M             accept yamux, mplex, or both (default both)\n"
    "  --max-connections N   connections at once (default 256)\n"
    "  --json                one JSON object per line (docs/cli.md)\n"
    "  --help                this text\n";

typedef struct runner {
    uv_loop_t loop;
    pl_driver *drv;
    pl_cli_signals sig;
    pl_cli_out out;
    pl_p2p_host *host;
    bool stopping;
    bool serving; /* listen: a signal is its normal stop */
    int status;
} runner;

/* A loop, a driver on it, and a host on the driver. */
static pl_err runner_start(runner *r, pl_p2p_host_opts *o) {
    uv_loop_init(&r->loop);
    pl_err e = pl_driver_new(&r->drv, &r->loop);
    if (e == PL_OK) e = pl_p2p_host_new(&r->host, r->drv, o);
    if (e != PL_OK) {
        pl_driver_free(r->drv);
        r->drv = NULL;
        uv_loop_close(&r->loop);
    }
    return e;
}

static void on_host_closed(void *ud) {
    runner *r = ud;
    pl_cli_signals_close(&r->sig);
    pl_driver_close(r->drv, NULL, NULL);
}

static void on_signal(void *data, int signum) {
    runner *r = data;
    if (r->stopping) return;
    r->stopping = true;
    pl_cli_signal_report(&r->out, signum);
    r->status = pl_cli_signal_status(signum, r->serving);
    pl_p2p_host_close(r->host, on_host_closed, r);
}

static int cmd_listen(int argc, char **argv) {
    static const char cmd[] = "p2p listen";
    enum { O_LISTEN = 1, O_KEY, O_MUXER, O_MAXCONN, O_JSON, O_HELP };
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, O_LISTEN},
        {"key-file", required_argument, NULL, O_KEY},
        {"muxer", required_argument, NULL, O_MUXER},
        {"max-connections", required_argument, NULL, O_MAXCONN},
        {"json", no_argument, NULL, O_JSON},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    runner r = {.out = {.cmd = cmd}, .serving = true};
    const char *addrs[8];
    size_t naddrs = 0;
    const char *key_file = NULL;
    pl_p2p_host_opts o = {0};
    unsigned long v;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case O_LISTEN:
            if (naddrs == 8) return pl_cli_usage_error(cmd, "at most 8 --listen");
            addrs[naddrs++] = optarg;
            break;
        case O_KEY:
            key_file = optarg;
            break;
        case O_MUXER:
            if (!parse_muxer(optarg, &o.muxers))
                return pl_cli_usage_error(cmd, "--muxer wants yamux, mplex or both");
            break;
        case O_MAXCONN:
            if (!parse_ulong(optarg, 100000, &v) || v == 0)
                return pl_cli_usage_error(cmd, "--max-connections wants 1..100000");
            o.max_connections = (uint32_t)v;
            break;
        case O_JSON:
            r.out.json = true;
            break;
        case O_HELP:
            fputs(listen_usage, stdout);
            return 0;
        default:
            return pl_cli_usage_error(cmd, "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return pl_cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (naddrs == 0) addrs[naddrs++] = "/ip4/127.0.0.1/tcp/0";
    char buf[4096];
    if (!key_file) key_file = default_key_file(buf, sizeof buf);
    pl_p2p_key *key = NULL;
    bool created = false;
    int rc = load_key(&r.out, key_file, PL_P2P_KEY_ED25519, &key, &created);
    if (rc) return rc;

    o.key = key;
    o.on_log = log_line;
    pl_err e = runner_start(&r, &o);
    pl_p2p_key_free(key);
    if (e != PL_OK) return pl_cli_error(&r.out, e, "cannot start the host: %s", pl_strerror(e));
    const char *bad = NULL;
    long sys = 0;
    for (size_t i = 0; i < naddrs && e == PL_OK; i++) {
        e = pl_p2p_host_listen(r.host, addrs[i]);
        if (e != PL_OK) bad = addrs[i], sys = e == PL_ERR_SYS ? pl_last_detail() : 0;
    }
    if (e != PL_OK) {
        pl_p2p_host_close(r.host, on_host_closed, &r);
        uv_run(&r.loop, UV_RUN_DEFAULT);
        uv_loop_close(&r.loop);
        return pl_cli_error(&r.out, e, "cannot listen on %s: %s", bad,
                            sys ? uv_strerror((int)sys) : pl_strerror(e));
    }
    /* Signals first: a script that stops us as soon as it reads the
     * line below must not find them still at their defaults. */
    pl_cli_signals_start(&r.sig, &r.loop, on_signal, &r);
    pl_p2p_peer_id id;
    pl_p2p_host_peer_id(r.host, &id);
    char pt[PL_P2P_PEER_ID_TEXT_SIZE];
    peer_text(&id, pt);
    const char *const *la;
    size_t n = pl_p2p_host_listen_addrs(r.host, &la);
    for (size_t i = 0; i < n; i++) {
        char full[1024];
        snprintf(full, sizeof full, "%s/p2p/%s", la[i], pt);
        if (r.out.json)
            pl_cli_emit(&r.out, json_pack("{s:s,s:s}", "event", "listening", "address", full));
        else
            printf("listening on %s\n", full);
    }
    fflush(stdout);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    int lc = uv_loop_close(&r.loop);
    if (lc != 0) fprintf(stderr, "pairlink %s: handles left open at exit\n", cmd);
    return r.status;
}

/* ---- ping --------------------------------------------------------------------------------- */

static const char ping_usage[] =
    "usage: pairlink p2p ping MULTIADDR [--count N] [--interval MS] [--json]\n"
    "                         [--key-file F] [--muxer yamux|mplex|both] [--timeout S]\n"
    "\n"
    "Dial a libp2p peer (/ip4|ip6|dns|dns4|dns6/HOST/tcp/PORT[/p2p/PEERID]), show what it\n"
    "says in identify (agent and protocols), and ping it (/ipfs/ping/1.0.0) N times,\n"
    "one line per round trip. Exit status 0 when every ping was answered, else 1.\n"
    "\n"
    "options:\n"
    "  --count N             pings to send (default 3)\n"
    "  --interval MS         between pings (default 1000)\n"
    "  --json                one JSON object per line instead (docs/cli.md): connected,\n"
    "                        identified, pong (or ping_failed) per round, summary\n"
    "  --key-file F          identity to dial with (default: a fresh Ed25519 key)\n"
    "  --muxer M             offer yamux, mplex, or both in that order (default both)\n"
    "  --timeout S           give up on the connection after S seconds (default 10)\n"
    "  --help                this text\n";

typedef struct pinger {
    runner r;
    const char *addr;
    pl_p2p_conn_id conn;
    unsigned long count, interval_ms;
    unsigned long sent, received;
    double min, max, sum;
    bool identified, failed, done;
    char last_log[256]; /* the host's last "dial ...: why" line */
    uv_timer_t timer;
    char peer[PL_P2P_PEER_ID_TEXT_SIZE];
} pinger;

static void pinger_stop(pinger *p) {
    if (p->done) return;
    p->done = true;
    uv_timer_stop(&p->timer);
    uv_close((uv_handle_t *)&p->timer, NULL);
    if (!p->r.stopping) {
        p->r.stopping = true;
        pl_p2p_host_close(p->r.host, on_host_closed, &p->r);
    }
}

static void send_ping(pinger *p);

static void on_tick(uv_timer_t *t) {
    pinger *p = t->data;
    send_ping(p);
}

static void after_ping(pinger *p) {
    if (p->sent >= p->count)
        pinger_stop(p);
    else
        uv_timer_start(&p->timer, on_tick, p->interval_ms, 0);
}

static void on_ping_done(void *ud, pl_p2p_host *h, pl_p2p_conn_id c, pl_err err, double rtt) {
    (void)h, (void)c;
    pinger *p = ud;
    unsigned long seq = p->sent;
    if (err == PL_OK) {
        p->received++;
        if (p->received == 1 || rtt < p->min) p->min = rtt;
        if (rtt > p->max) p->max = rtt;
        p->sum += rtt;
        if (p->r.out.json)
            pl_cli_emit(&p->r.out, json_pack("{s:s, s:I, s:f}", "event", "pong", "seq",
                                             (json_int_t)seq, "rtt_ms", rtt));
        else
            printf("32 bytes from %s: seq=%lu time=%.3f ms\n", p->peer, seq, rtt);
    } else {
        if (p->r.out.json)
            pl_cli_emit(&p->r.out, json_pack("{s:s, s:I, s:s, s:s}", "event", "ping_failed", "seq",
                                             (json_int_t)seq, "code", pl_errname(err), "message",
                                             pl_strerror(err)));
        else
            printf("no answer from %s: seq=%lu: %s (%s)\n", p->peer, seq, pl_strerror(err),
                   pl_errname(err));
    }
    fflush(stdout);
    if (!p->done) after_ping(p);
}

static void send_ping(pinger *p) {
    if (p->done) return;
    p->sent++;
    pl_err e = pl_p2p_ping(p->r.host, p->conn, on_ping_done, p);
    if (e != PL_OK) on_ping_done(p, p->r.host, p->conn, e, 0);
}

static void on_ping_event(void *ud, pl_p2p_host *h, const pl_p2p_event *ev) {
    (void)h;
    pinger *p = ud;
    if (ev->conn != p->conn) return;
    switch (ev->kind) {
    case PL_P2P_EV_CONNECTED:
        peer_text(ev->peer, p->peer);
        if (p->r.out.json) {
            pl_cli_emit(&p->r.out, json_pack("{s:s, s:s, s:s}", "event", "connected", "peer_id",
                                             p->peer, "muxer", ev->muxer));
        } else {
            printf("connected to %s via %s\n", p->peer, ev->muxer);
        }
        break;
    case PL_P2P_EV_IDENTIFIED: {
        p->identified = true;
        const pl_p2p_identify *id = ev->identify;
        if (p->r.out.json) {
            if (id) {
                json_t *pr = json_array();
                for (size_t i = 0; i < id->nprotocols; i++)
                    json_array_append_new(pr, json_string(id->protocols[i]));
                json_t *o = json_object();
                json_object_set_new(o, "event", json_string("identified"));
                json_object_set_new(o, "agent_version", json_string(id->agent_version));
                json_object_set_new(o, "protocol_version", json_string(id->protocol_version));
                json_object_set_new(o, "protocols", pr);
                pl_cli_emit(&p->r.out, o);
            } else {
                pl_cli_emit(&p->r.out,
                            json_pack("{s:s, s:s, s:s}", "event", "identify_failed", "code",
                                      pl_errname(ev->err), "message", pl_strerror(ev->err)));
            }
        } else if (id) {
            printf("agent: %s\nprotocols:", id->agent_version);
            for (size_t i = 0; i < id->nprotocols; i++)
                printf(" %s", id->protocols[i]);
            printf("\n");
        } else {
            printf("identify: %s (%s)\n", pl_strerror(ev->err), pl_errname(ev->err));
        }
        fflush(stdout);
        send_ping(p);
        break;
    }
    case PL_P2P_EV_DISCONNECTED:
        if (!p->done) {
            p->failed = true;
            bool io = ev->err == PL_ERR_SYS || ev->err == PL_ERR_IO;
            if (io && !strncmp(p->last_log, "dial ", 5))
                pl_cli_error(&p->r.out, ev->err, "cannot %s", p->last_log);
            else
                pl_cli_error(&p->r.out, ev->err, "%s: %s", p->addr, pl_strerror(ev->err));
            pinger_stop(p);
        }
        break;
    }
}

/* The host's log lines are not shown by ping; the last one names the
 * cause of a failed dial ("dial ADDR: connection refused"). */
static void ping_log(void *ud, const char *line) {
    pinger *p = ud;
    if (!strncmp(line, "dial ", 5)) snprintf(p->last_log, sizeof p->last_log, "%s", line);
}

static void on_ping_signal(void *data, int signum) {
    pinger *p = data;
    if (p->done) return;
    pl_cli_signal_report(&p->r.out, signum);
    p->r.status = pl_cli_signal_status(signum, false);
    pinger_stop(p);
}

static int cmd_ping(int argc, char **argv) {
    static const char cmd[] = "p2p ping";
    enum { O_COUNT = 1, O_INTERVAL, O_JSON, O_KEY, O_MUXER, O_TIMEOUT, O_HELP };
    static const struct option longopts[] = {
        {"count", required_argument, NULL, O_COUNT},
        {"interval", required_argument, NULL, O_INTERVAL},
        {"json", no_argument, NULL, O_JSON},
        {"key-file", required_argument, NULL, O_KEY},
        {"muxer", required_argument, NULL, O_MUXER},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    pinger p = {.count = 3, .interval_ms = 1000, .r = {.out = {.cmd = cmd}}};
    pl_p2p_host_opts o = {0};
    const char *key_file = NULL;
    unsigned long v;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case O_COUNT:
            if (!parse_ulong(optarg, 1000000, &p.count) || p.count == 0)
                return pl_cli_usage_error(cmd, "--count wants 1..1000000");
            break;
        case O_INTERVAL:
            if (!parse_ulong(optarg, 3600000, &p.interval_ms))
                return pl_cli_usage_error(cmd, "--interval wants 0..3600000 ms");
            break;
        case O_JSON:
            p.r.out.json = true;
            break;
        case O_KEY:
            key_file = optarg;
            break;
        case O_MUXER:
            if (!parse_muxer(optarg, &o.muxers))
                return pl_cli_usage_error(cmd, "--muxer wants yamux, mplex or both");
            break;
        case O_TIMEOUT:
            if (!parse_ulong(optarg, 3600, &v) || v == 0)
                return pl_cli_usage_error(cmd, "--timeout wants 1..3600 seconds");
            o.dial_timeout_ms = o.handshake_timeout_ms = (int64_t)v * 1000;
            break;
        case O_HELP:
            fputs(ping_usage, stdout);
            return 0;
        default:
            return pl_cli_usage_error(cmd, "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc - 1) return pl_cli_usage_error(cmd, "wants one MULTIADDR");
    p.addr = argv[optind];
    pl_p2p_key *key = NULL;
    pl_err e;
    if (key_file) {
        bool created;
        int rc = load_key(&p.r.out, key_file, PL_P2P_KEY_ED25519, &key, &created);
        if (rc) return rc;
    } else if ((e = pl_p2p_key_generate(&key, PL_P2P_KEY_ED25519)) != PL_OK) {
        return pl_cli_error(&p.r.out, e, "cannot make a key: %s", pl_strerror(e));
    }
    o.key = key;
    o.on_event = on_ping_event;
    o.ud = &p;
    o.on_log = ping_log;
    o.log_ud = &p;
    e = runner_start(&p.r, &o);
    pl_p2p_key_free(key);
    if (e != PL_OK) return pl_cli_error(&p.r.out, e, "cannot start the host: %s", pl_strerror(e));
    uv_timer_init(&p.r.loop, &p.timer);
    p.timer.data = &p;
    pl_cli_signals_start(&p.r.sig, &p.r.loop, on_ping_signal, &p);
    e = pl_p2p_host_dial(p.r.host, p.addr, &p.conn);
    if (e != PL_OK) {
        char detail[256] = "";
        if (e == PL_ERR_SYS)
            snprintf(detail, sizeof detail, "%s", uv_strerror((int)pl_last_detail()));
        pl_cli_error(&p.r.out, e, "cannot dial %s: %s", p.addr, *detail ? detail : pl_strerror(e));
        p.failed = true;
        pinger_stop(&p);
    } else if (!p.r.out.json) {
        printf("PING %s\n", p.addr);
        fflush(stdout);
    }
    uv_run(&p.r.loop, UV_RUN_DEFAULT);
    uv_loop_close(&p.r.loop);
    bool ok = !p.failed && p.sent > 0 && p.received == p.sent;
    if (p.r.out.json && p.sent > 0) {
        json_t *sum = json_pack("{s:s, s:s, s:I, s:I}", "event", "summary", "address", p.addr,
                                "sent", (json_int_t)p.sent, "received", (json_int_t)p.received);
        if (p.received) {
            json_object_set_new(sum, "rtt_min_ms", json_real(p.min));
            json_object_set_new(sum, "rtt_avg_ms", json_real(p.sum / (double)p.received));
            json_object_set_new(sum, "rtt_max_ms", json_real(p.max));
        }
        pl_cli_emit(&p.r.out, sum);
    } else if (p.sent > 0) {
        printf("--- %s ping statistics ---\n", p.addr);
        printf("%lu pings transmitted, %lu received, %.0f%% loss\n", p.sent, p.received,
               100.0 * (double)(p.sent - p.received) / (double)p.sent);
        if (p.received)
            printf("rtt min/avg/max = %.3f/%.3f/%.3f ms\n", p.min, p.sum / (double)p.received,
                   p.max);
    }
    if (p.r.status) return p.r.status; /* stopped by a signal */
    return ok ? 0 : 1;
}

/* ---- dispatch -------------------------------------------------------------------------------- */

static const pl_cli_cmd p2p_cmds[] = {
    {"id", cmd_id, "print (and create on first use) the libp2p peer id"},
    {"listen", cmd_listen, "run a libp2p host that answers identify and ping"},
    {"ping", cmd_ping, "dial a libp2p peer, show its identify, ping it"},
};

int pl_cli_p2p(int argc, char **argv) {
    return pl_cli_dispatch("pairlink p2p", p2p_cmds, sizeof p2p_cmds / sizeof p2p_cmds[0], argc,
                           argv);
}
