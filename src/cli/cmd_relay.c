/* `pairlink relay`: run a WalletConnect relay server. */
#include "cli/cli.h"
#include "relay/auth.h"
#include "relay/ws_server.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char usage[] =
    "usage: pairlink relay [options]\n"
    "\n"
    "Run a WalletConnect relay (irn JSON-RPC over WebSocket) that the official JS SDK\n"
    "and pairlink clients can use. Prints \"listening on ws://HOST:PORT\" on stdout\n"
    "once it accepts connections; logs go to stderr. SIGINT/SIGTERM stop it cleanly.\n"
    "\n"
    "options:\n"
    "  --listen HOST:PORT    address to listen on (default 127.0.0.1:8787; port 0 picks\n"
    "                        a free port)\n"
    "  --db PATH             SQLite mailbox (WAL, synchronous=FULL): acknowledged messages\n"
    "                        survive a crash. Without --db the mailbox is in memory only.\n"
    "  --require-auth        refuse clients without a valid relay JWT (HTTP 401)\n"
    "  --public-url URL      a ws:// or wss:// URL clients reach this relay at; their JWT\n"
    "                        aud must name one (repeatable; default: ws://HOST:PORT of\n"
    "                        --listen, plus its 127.0.0.1 and localhost forms on loopback)\n"
    "  --ping-interval SEC   WebSocket ping period (default 20; the JS client drops a\n"
    "                        socket silent for 35 s); silent clients are reaped after\n"
    "                        2 * SEC + 10 s unless --idle-timeout says otherwise\n"
    "  --idle-timeout SEC    reap a client silent (no frame, no pong) for SEC seconds\n"
    "  --mailbox-limit N     stored messages per topic (default 1000)\n"
    "  --max-topics N        subscriptions per connection (default 20480)\n"
    "  --max-message BYTES   largest message accepted (default 524288)\n"
    "  --rate-limit N        requests per second per connection, burst 5 * N\n"
    "                        (default 100; 0 = unlimited)\n"
    "  --tls-cert PEM --tls-key PEM\n"
    "                        serve wss:// with this certificate and key\n"
    "  --fault close=CODE    (tests) close every connection with CODE once it is open\n"
    "  --fault ignore        (tests) read every frame and answer none\n"
    "  --verbose             log every frame (debug level)\n"
    "  --help                this text\n"
    "\n"
    "See docs/relay.md for methods, limits and error codes.\n";

static void log_line(void *ud, int level, const char *line) {
    (void)ud;
    static const char *const names[] = {"error", "warn", "info", "debug"};
    char ts[32];
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(stderr, "%s.%03ldZ relay %s: %s\n", ts, now.tv_nsec / 1000000,
            names[level < 0 ? 0 : level > 3 ? 3 : level], line);
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

/* "HOST:PORT" -> host (in buf) and port. */
static bool parse_listen(const char *arg, char *host, size_t hostsz, int *port) {
    const char *colon = strrchr(arg, ':');
    unsigned long p;
    if (!colon || colon == arg || (size_t)(colon - arg) >= hostsz) return false;
    if (!parse_ulong(colon + 1, 65535, &p)) return false;
    memcpy(host, arg, (size_t)(colon - arg));
    host[colon - arg] = '\0';
    *port = (int)p;
    return true;
}

int pl_cli_relay(int argc, char **argv) {
    static const char cmd[] = "relay";
    enum { O_LISTEN = 1, O_DB, O_AUTH, O_PING, O_IDLE, O_MAILBOX, O_MAXMSG, O_RATE, O_TOPICS, O_VERBOSE,
           O_HELP, O_CERT, O_KEY, O_FAULT, O_PUBLIC_URL };
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, O_LISTEN},
        {"db", required_argument, NULL, O_DB},
        {"require-auth", no_argument, NULL, O_AUTH},
        {"ping-interval", required_argument, NULL, O_PING},
        {"idle-timeout", required_argument, NULL, O_IDLE},
        {"mailbox-limit", required_argument, NULL, O_MAILBOX},
        {"max-message", required_argument, NULL, O_MAXMSG},
        {"rate-limit", required_argument, NULL, O_RATE},
        {"max-topics", required_argument, NULL, O_TOPICS},
        {"verbose", no_argument, NULL, O_VERBOSE},
        {"tls-cert", required_argument, NULL, O_CERT},
        {"tls-key", required_argument, NULL, O_KEY},
        {"fault", required_argument, NULL, O_FAULT},
        {"public-url", required_argument, NULL, O_PUBLIC_URL},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    char host[256] = "127.0.0.1";
    pl__ws_server_opts o;
    memset(&o, 0, sizeof o);
    o.port = 8787;
    o.handle_signals = true;
    o.log = log_line;
    o.log_level = PL__LOG_INFO;
    const char *public_urls[PL__RELAY_AUD_MAX];
    unsigned long v;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case O_LISTEN:
            if (!parse_listen(optarg, host, sizeof host, &o.port))
                return pl_cli_usage_error(cmd, "--listen wants HOST:PORT, got '%s'", optarg);
            break;
        case O_DB: o.db_path = optarg; break;
        case O_AUTH: o.require_auth = true; break;
        case O_PING:
            if (!parse_ulong(optarg, 3600, &v) || v == 0)
                return pl_cli_usage_error(cmd, "--ping-interval wants 1..3600 seconds");
            o.ping_interval_ms = (int)v * 1000;
            break;
        case O_IDLE:
            if (!parse_ulong(optarg, 86400, &v) || v == 0)
                return pl_cli_usage_error(cmd, "--idle-timeout wants 1..86400 seconds");
            o.idle_timeout_ms = (int)v * 1000;
            break;
        case O_TOPICS:
            if (!parse_ulong(optarg, 1000000, &v) || v == 0)
                return pl_cli_usage_error(cmd, "--max-topics wants 1..1000000");
            o.limits.max_topics_per_conn = v;
            break;
        case O_MAILBOX:
            if (!parse_ulong(optarg, 10000000, &v) || v == 0)
                return pl_cli_usage_error(cmd, "--mailbox-limit wants 1..10000000");
            o.limits.max_mailbox_per_topic = v;
            break;
        case O_MAXMSG:
            if (!parse_ulong(optarg, PL_RELAY_DEF_MAX_FRAME - 4096, &v) || v == 0)
                return pl_cli_usage_error(cmd, "--max-message wants 1..%u bytes",
                                          PL_RELAY_DEF_MAX_FRAME - 4096);
            o.limits.max_message_bytes = v;
            break;
        case O_RATE:
            if (!parse_ulong(optarg, 1000000, &v))
                return pl_cli_usage_error(cmd, "--rate-limit wants 0..1000000");
            if (v == 0) {
                o.limits.rate_unlimited = true;
            } else {
                o.limits.rate_per_s = (uint32_t)v;
                o.limits.rate_burst = (uint32_t)(v * 5);
            }
            break;
        case O_VERBOSE: o.log_level = PL__LOG_DEBUG; break;
        case O_CERT: o.tls_cert = optarg; break;
        case O_KEY: o.tls_key = optarg; break;
        case O_FAULT:
            if (!strcmp(optarg, "ignore")) {
                o.fault_ignore = true;
            } else if (!strncmp(optarg, "close=", 6) && parse_ulong(optarg + 6, 4999, &v) && v >= 1000) {
                o.fault_close_code = (int)v;
            } else {
                return pl_cli_usage_error(cmd, "--fault wants close=CODE (1000..4999) or ignore");
            }
            break;
        case O_PUBLIC_URL: {
            pl__relay_audience probe;
            memset(&probe, 0, sizeof probe);
            if (o.n_public_urls == PL__RELAY_AUD_MAX)
                return pl_cli_usage_error(cmd, "at most %d --public-url", PL__RELAY_AUD_MAX);
            if (pl__relay_audience_add(&probe, optarg) != PL_OK)
                return pl_cli_usage_error(cmd,
                                          "--public-url wants ws:// or wss://HOST[:PORT][/PATH] "
                                          "(no query), got '%s'",
                                          optarg);
            public_urls[o.n_public_urls++] = optarg;
            break;
        }
        case O_HELP: fputs(usage, stdout); return 0;
        default:
            return pl_cli_usage_error(cmd, "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return pl_cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!o.tls_cert != !o.tls_key) return pl_cli_usage_error(cmd, "--tls-cert and --tls-key go together");
    o.host = host;
    o.public_urls = public_urls;
    if (!o.db_path)
        log_line(NULL, PL__LOG_WARN, "no --db: the mailbox is kept in memory and lost on exit");

    pl__ws_server *srv;
    pl_err e = pl__ws_server_new(&srv, &o);
    if (e == PL_ERR_SYS && pl_last_detail())
        fprintf(stderr, "pairlink relay: cannot listen on %s:%d: %s\n", host, o.port,
                strerror((int)pl_last_detail()));
    else if (e == PL_ERR_INVALID_ARG)
        fprintf(stderr, "pairlink relay: '%s' is not an IPv4 address or a resolvable name\n", host);
    if (e != PL_OK) return pl_cli_fail(cmd, "cannot start the relay", e);
    printf("listening on %s://%s:%d\n", o.tls_cert ? "wss" : "ws", host, pl__ws_server_port(srv));
    fflush(stdout);
    e = pl__ws_server_run(srv);
    pl__ws_server_free(srv);
    if (e != PL_OK) return pl_cli_fail(cmd, "relay stopped with an error", e);
    return 0;
}
