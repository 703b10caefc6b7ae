/* `pairlink relay`: run a WalletConnect relay server. */
#include "cli/cli.h"
#include "relay/auth.h"
#include "relay/ws_server.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
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
    "  --cluster URLS        share the mailbox with other relay instances through a NATS\n"
    "                        JetStream cluster: nats://HOST:PORT[,nats://HOST:PORT...]\n"
    "                        (any node; the others are found). Exclusive with --db\n"
    "  --cluster-replicas N  replicas of each stream (default 3, or 1 with one URL)\n"
    "  --instance-id ID      this instance's name in the cluster (default HOST-PID)\n"
    "  --require-auth        refuse clients without a valid relay JWT (HTTP 401)\n"
    "  --public-url URL      a ws:// or wss:// URL clients reach this relay at; their JWT\n"
    "                        aud must name one (repeatable; default: ws://HOST:PORT of\n"
    "                        --listen, plus its 127.0.0.1 and localhost forms on loopback)\n"
    "  --ping-interval SEC   WebSocket ping period (default 20; the JS client drops a\n"
    "                        socket silent for 35 s); silent clients are reaped after\n"
    "                        2 * SEC + 10 s unless --idle-timeout says otherwise\n"
    "  --idle-timeout SEC    reap a client silent (no frame, no pong) for SEC seconds\n"
    "  --mailbox-limit N     stored messages per topic (default 1000); a full topic drops\n"
    "                        its oldest messages every subscriber acknowledged first\n"
    "  --max-topics N        subscriptions per connection (default 20480)\n"
    "  --max-message BYTES   largest message accepted (default 524288)\n"
    "  --rate-limit N        requests per second per connection, burst 5 * N\n"
    "                        (default 100; 0 = unlimited); a batch counts by its size\n"
    "  --allowance DID=N     the client authenticated as DID (a node manager, say) gets\n"
    "                        N requests per second, burst 5 * N (repeatable)\n"
    "\n"
    "memory and quotas (BYTES may end in K, M or G: KiB, MiB, GiB):\n"
    "  --max-memory BYTES    the relay's memory budget, its RSS (default 1G); beyond\n"
    "                        it new work is refused (3001) and the client with the\n"
    "                        largest unread queue is closed (1008)\n"
    "  --max-stored BYTES    stored messages with their overhead, all topics (default\n"
    "                        256M or half of --max-memory, the smaller)\n"
    "  --max-messages N      stored messages, all topics (default 1000000)\n"
    "  --max-topics-total N  topics the relay holds (default 1000000)\n"
    "  --quota-messages N    stored messages per publisher: its address, and its did:key\n"
    "                        when authenticated (default 100000, at most a quarter of\n"
    "                        --max-messages)\n"
    "  --quota-bytes BYTES   their bytes with overhead (default 64M, at most a quarter of\n"
    "                        --max-stored)\n"
    "  --quota-topics N      topics a publisher brought in (default 65536)\n"
    "  --max-conns N         sockets, handshakes included (default 10000)\n"
    "  --max-conns-per-addr N  sockets from one address (default 256)\n"
    "  --max-inflight-bytes BYTES  unacknowledged pushes per connection (default 1M)\n"
    "  --max-queue BYTES     unsent bytes per connection before it is closed (default 4M)\n"
    "  --fetch-page BYTES    one irn_fetchMessages answer, about (default 256K)\n"
    "  --handshake-timeout SEC  time a socket has to complete its upgrade (default 10)\n"
    "  --socket-sndbuf BYTES SO_SNDBUF of each client socket (default: the kernel's\n"
    "                        autotuning, which may hold MiBs for a client that does not read)\n"
    "\n"
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

/* A byte count, with an optional K, M or G (powers of 1024); 1..max. */
static bool parse_bytes(const char *s, unsigned long long max, size_t *out) {
    char *end;
    errno = 0;
    if (!s || !*s || *s == '-') return false;
    unsigned long long v = strtoull(s, &end, 10), mul = 1;
    if (*end == 'K' || *end == 'k') mul = 1ull << 10;
    else if (*end == 'M' || *end == 'm') mul = 1ull << 20;
    else if (*end == 'G' || *end == 'g') mul = 1ull << 30;
    if (mul != 1) end++;
    if (errno || *end || v == 0 || v > max / mul) return false;
    *out = (size_t)(v * mul);
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
           O_HELP, O_CERT, O_KEY, O_FAULT, O_PUBLIC_URL, O_MEMORY, O_STORED, O_MESSAGES,
           O_TOPICS_TOTAL, O_QUOTA_MESSAGES, O_QUOTA_BYTES, O_QUOTA_TOPICS, O_CONNS,
           O_CONNS_PER_ADDR, O_INFLIGHT_BYTES, O_QUEUE, O_FETCH_PAGE, O_HANDSHAKE, O_SNDBUF, O_ALLOW,
           O_CLUSTER, O_REPLICAS, O_INSTANCE };
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, O_LISTEN},
        {"db", required_argument, NULL, O_DB},
        {"cluster", required_argument, NULL, O_CLUSTER},
        {"cluster-replicas", required_argument, NULL, O_REPLICAS},
        {"instance-id", required_argument, NULL, O_INSTANCE},
        {"require-auth", no_argument, NULL, O_AUTH},
        {"ping-interval", required_argument, NULL, O_PING},
        {"idle-timeout", required_argument, NULL, O_IDLE},
        {"mailbox-limit", required_argument, NULL, O_MAILBOX},
        {"max-message", required_argument, NULL, O_MAXMSG},
        {"rate-limit", required_argument, NULL, O_RATE},
        {"allowance", required_argument, NULL, O_ALLOW},
        {"max-topics", required_argument, NULL, O_TOPICS},
        {"verbose", no_argument, NULL, O_VERBOSE},
        {"tls-cert", required_argument, NULL, O_CERT},
        {"tls-key", required_argument, NULL, O_KEY},
        {"fault", required_argument, NULL, O_FAULT},
        {"public-url", required_argument, NULL, O_PUBLIC_URL},
        {"max-memory", required_argument, NULL, O_MEMORY},
        {"max-stored", required_argument, NULL, O_STORED},
        {"max-messages", required_argument, NULL, O_MESSAGES},
        {"max-topics-total", required_argument, NULL, O_TOPICS_TOTAL},
        {"quota-messages", required_argument, NULL, O_QUOTA_MESSAGES},
        {"quota-bytes", required_argument, NULL, O_QUOTA_BYTES},
        {"quota-topics", required_argument, NULL, O_QUOTA_TOPICS},
        {"max-conns", required_argument, NULL, O_CONNS},
        {"max-conns-per-addr", required_argument, NULL, O_CONNS_PER_ADDR},
        {"max-inflight-bytes", required_argument, NULL, O_INFLIGHT_BYTES},
        {"max-queue", required_argument, NULL, O_QUEUE},
        {"fetch-page", required_argument, NULL, O_FETCH_PAGE},
        {"handshake-timeout", required_argument, NULL, O_HANDSHAKE},
        {"socket-sndbuf", required_argument, NULL, O_SNDBUF},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    char host[256] = "127.0.0.1";
    enum { MAX_ALLOWANCES = 64 };
    static pl__relay_allowance allow[MAX_ALLOWANCES];
    size_t nallow = 0;
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
        case O_CLUSTER: o.cluster.urls = optarg; break;
        case O_REPLICAS:
            if (!parse_ulong(optarg, 5, &v) || v == 0)
                return pl_cli_usage_error(cmd, "--cluster-replicas wants 1..5");
            o.cluster.replicas = (int)v;
            break;
        case O_INSTANCE:
            if (!*optarg || strlen(optarg) > 63 || strpbrk(optarg, " .*>\t"))
                return pl_cli_usage_error(
                    cmd, "--instance-id wants 1..63 characters, no space, '.', '*' or '>'");
            o.cluster.instance_id = optarg;
            break;
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
        case O_ALLOW: {
            const char *eq = strrchr(optarg, '=');
            if (!eq || strncmp(optarg, "did:key:", 8) != 0 ||
                (size_t)(eq - optarg) >= sizeof allow[0].did || !parse_ulong(eq + 1, 1000000, &v) ||
                v == 0)
                return pl_cli_usage_error(cmd, "--allowance wants did:key:...=N (1..1000000)");
            if (nallow == MAX_ALLOWANCES)
                return pl_cli_usage_error(cmd, "at most %d --allowance options", MAX_ALLOWANCES);
            memcpy(allow[nallow].did, optarg, (size_t)(eq - optarg));
            allow[nallow].did[eq - optarg] = '\0';
            allow[nallow].rate_per_s = (uint32_t)v;
            allow[nallow].burst = (uint32_t)(v * 5);
            nallow++;
            break;
        }
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
#define BYTES_OPT(code, name, field)                                                               \
    case code:                                                                                     \
        if (!parse_bytes(optarg, 1ull << 40, &(field)))                                            \
            return pl_cli_usage_error(cmd, "--" name " wants a byte count (K, M, G allowed)");     \
        break
#define COUNT_OPT(code, name, field)                                                               \
    case code:                                                                                     \
        if (!parse_ulong(optarg, 100000000, &v) || v == 0)                                         \
            return pl_cli_usage_error(cmd, "--" name " wants 1..100000000");                      \
        (field) = v;                                                                               \
        break
        BYTES_OPT(O_MEMORY, "max-memory", o.max_memory);
        BYTES_OPT(O_STORED, "max-stored", o.limits.max_total_bytes);
        BYTES_OPT(O_QUOTA_BYTES, "quota-bytes", o.limits.quota_bytes);
        BYTES_OPT(O_INFLIGHT_BYTES, "max-inflight-bytes", o.limits.max_inflight_bytes_per_conn);
        BYTES_OPT(O_QUEUE, "max-queue", o.limits.max_queue_bytes_per_conn);
        BYTES_OPT(O_FETCH_PAGE, "fetch-page", o.limits.fetch_page_bytes);
        COUNT_OPT(O_MESSAGES, "max-messages", o.limits.max_messages);
        COUNT_OPT(O_TOPICS_TOTAL, "max-topics-total", o.limits.max_topics);
        COUNT_OPT(O_QUOTA_MESSAGES, "quota-messages", o.limits.quota_messages);
        COUNT_OPT(O_QUOTA_TOPICS, "quota-topics", o.limits.quota_topics);
        COUNT_OPT(O_CONNS, "max-conns", o.limits.max_conns);
        COUNT_OPT(O_CONNS_PER_ADDR, "max-conns-per-addr", o.limits.max_conns_per_addr);
#undef BYTES_OPT
#undef COUNT_OPT
        case O_SNDBUF: {
            size_t b;
            if (!parse_bytes(optarg, 1ull << 30, &b))
                return pl_cli_usage_error(cmd, "--socket-sndbuf wants a byte count (K, M allowed)");
            o.socket_sndbuf = (int)b;
            break;
        }
        case O_HANDSHAKE:
            if (!parse_ulong(optarg, 3600, &v) || v == 0)
                return pl_cli_usage_error(cmd, "--handshake-timeout wants 1..3600 seconds");
            o.handshake_timeout_s = (int)v;
            break;
        case O_HELP: fputs(usage, stdout); return 0;
        default:
            return pl_cli_usage_error(cmd, "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return pl_cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!o.tls_cert != !o.tls_key) return pl_cli_usage_error(cmd, "--tls-cert and --tls-key go together");
    o.host = host;
    o.public_urls = public_urls;
    o.limits.allowances = allow;
    o.limits.nallowances = nallow;
    if (o.db_path && o.cluster.urls)
        return pl_cli_usage_error(cmd,
                                  "--db and --cluster exclude each other: the cluster is the store");
    if ((o.cluster.replicas || o.cluster.instance_id) && !o.cluster.urls)
        return pl_cli_usage_error(cmd, "--cluster-replicas and --instance-id need --cluster");
    if (o.cluster.urls && !pl__relay_backend_nats_available())
        return pl_cli_fail(cmd, "--cluster needs a pairlink built with libnats (libnats-dev)",
                           PL_ERR_NO_CLUSTER);
    if (!o.db_path && !o.cluster.urls)
        log_line(NULL, PL__LOG_WARN, "no --db: the mailbox is kept in memory and lost on exit");

    /* Message texts and answer pages go to mmap and back to the system when
     * freed, so that the resident size follows what the relay accounts for
     * rather than the allocator's high-water mark (glibc would raise its
     * threshold to 32 MiB as large blocks come and go). */
    mallopt(M_MMAP_THRESHOLD, 64 << 10);
    mallopt(M_TRIM_THRESHOLD, 1 << 20);
    pl__ws_server *srv;
    pl_err e = pl__ws_server_new(&srv, &o);
    if (e == PL_ERR_SYS && pl_last_detail())
        fprintf(stderr, "pairlink relay: cannot listen on %s:%d: %s\n", host, o.port,
                strerror((int)pl_last_detail()));
    else if (e == PL_ERR_INVALID_ARG && o.cluster.urls)
        fprintf(stderr, "pairlink relay: --cluster wants nats://HOST:PORT[,nats://HOST:PORT...]\n");
    else if (e == PL_ERR_INVALID_ARG)
        fprintf(stderr,
                "pairlink relay: '%s' is not an IPv4 address or a resolvable name, or a limit is "
                "inconsistent (see the log)\n",
                host);
    if (e != PL_OK) return pl_cli_fail(cmd, "cannot start the relay", e);
    printf("listening on %s://%s:%d\n", o.tls_cert ? "wss" : "ws", host, pl__ws_server_port(srv));
    fflush(stdout);
    e = pl__ws_server_run(srv);
    pl__ws_server_free(srv);
    if (e != PL_OK) return pl_cli_fail(cmd, "relay stopped with an error", e);
    return 0;
}
