/* SPDX-License-Identifier: Apache-2.0 */
/* `pairlink relay`: run a WalletConnect relay server. The settings (one
 * table of keys for the command line and the --config file) are
 * relay/relay_config.h; SIGHUP reloads them while the relay runs. */
#include "cli/cli.h"
#include "pairlink/log.h"
#include "relay/relay_config.h"
#include "relay/ws_server.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static const char usage[] =
    "usage: pairlink relay [options]\n"
    "\n"
    "Run a WalletConnect relay (irn JSON-RPC over WebSocket) that the official JS SDK\n"
    "and pairlink clients can use. Prints \"listening on ws://HOST:PORT\" on stdout\n"
    "for each listener once it accepts connections; logs go to stderr. SIGINT/SIGTERM\n"
    "stop it cleanly; SIGHUP reloads --config and --allow-file.\n"
    "\n"
    "options (each is also a key of the --config file: `KEY VALUE` per line):\n"
    "  --config FILE         read settings from FILE (keys = these options without\n"
    "                        the --); options given here override it\n"
    "  --listen HOST:PORT    address to listen on (default 127.0.0.1:8787; port 0 picks\n"
    "                        a free port); [IPV6]:PORT for IPv6; repeatable\n"
    "  --db PATH             SQLite mailbox (WAL, synchronous=FULL): acknowledged messages\n"
    "                        survive a crash. Without --db the mailbox is in memory only.\n"
    "  --cluster URLS        share the mailbox with other relay instances through a NATS\n"
    "                        JetStream cluster: nats://HOST:PORT[,nats://HOST:PORT...]\n"
    "                        (any node; the others are found). Exclusive with --db.\n"
    "                        tls://HOST:PORT: TLS; USER:PASS@HOST:PORT: NATS user\n"
    "  --cluster-replicas N  replicas of each stream (default 3, or 1 with one URL)\n"
    "  --instance-id ID      this instance's name in the cluster (default HOST-PID)\n"
    "  --cluster-ca PEM      TLS to NATS, its servers checked against these CAs\n"
    "                        (default with tls://: the system's)\n"
    "  --cluster-cert PEM --cluster-key PEM\n"
    "                        a client certificate for NATS servers that ask for one\n"
    "  --require-auth        refuse clients without a valid relay JWT (HTTP 401)\n"
    "  --allow DID           with --require-auth: admit only these client keys\n"
    "                        (did:key:z...; repeatable); others get HTTP 401\n"
    "  --allow-file FILE     the same, one did:key per line (reloaded on SIGHUP)\n"
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
    "  --log-level LEVEL     error, warn, info (default) or debug (every frame,\n"
    "                        message bodies left out)\n"
    "  --log-format FORMAT   text (default) or json (one object per line)\n"
    "  --verbose             the same as --log-level debug\n"
    "  --health MODE         GET /health: on (default), loopback or off\n"
    "  --metrics MODE        GET /metrics (Prometheus text): on (default), loopback\n"
    "                        (loopback clients only) or off\n"
    "  --help                this text\n"
    "\n"
    "An option given an empty value on the command line counts as not given.\n"
    "See docs/relay.md for methods, limits, error codes, the config file and metrics.\n";

/* The running relay's settings and where they came from: the log sink and
 * the reload read them (one relay per process, on the loop thread). */
typedef struct flag {
    size_t key;
    const char *value; /* NULL for a flag */
} flag;

static struct {
    pl__relay_config cfg;
    flag *flags; /* the command line's settings, re-applied over the file at a reload */
    size_t nflags;
    const char *config_path;
    pl__ws_server *srv;
} g;

static int64_t now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void emit(pl_log_level level, const char *source, const char *msg, const pl_log_field *f,
                 size_t nf) {
    if (level > g.cfg.log_level) return;
    char line[8192];
    pl_log_format_line(line, sizeof line, g.cfg.log_format, now_ms(), level, source, msg, f, nf);
    fprintf(stderr, "%s\n", line);
}

/* The server's lines (PL__LOG_* levels are pl_log_level - 1). */
static void server_log(void *ud, int level, const char *msg, const pl_log_field *f, size_t nf) {
    (void)ud;
    emit((pl_log_level)(level + 1), "relay", msg, f, nf);
}

/* libwebsockets' own lines, through pl_set_log (include/pairlink/log.h). */
static void lib_log(void *ud, pl_log_level level, const char *source, const char *line) {
    (void)ud;
    emit(level, source, line, NULL, 0);
}

__attribute__((format(printf, 2, 3))) static void say(pl_log_level level, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    emit(level, "relay", msg, NULL, 0);
}

/* lws is chatty below warnings: its info and debug lines stay out. */
static void apply_lib_log(void) {
    pl_set_log(lib_log, NULL, g.cfg.log_level < PL_LOG_WARN ? g.cfg.log_level : PL_LOG_WARN);
}

/* Defaults, then the file, then the command line; checked. why gets a
 * sentence naming the file and line, or the option. */
static pl_err build(pl__relay_config *c, char *why, size_t whysz, bool *is_usage) {
    pl__relay_config_init(c);
    *is_usage = false;
    pl_err e;
    if (g.config_path && (e = pl__relay_config_load(c, g.config_path, why, whysz)) != PL_OK)
        return e;
    pl__relay_config_layer(c);
    for (size_t i = 0; i < g.nflags; i++) {
        char msg[400];
        if ((e = pl__relay_config_set(c, g.flags[i].key, g.flags[i].value, msg, sizeof msg)) !=
            PL_OK) {
            snprintf(why, whysz, "--%s %s", pl__relay_config_key_name(g.flags[i].key), msg);
            *is_usage = true;
            return e;
        }
    }
    return pl__relay_config_finish(c, why, whysz);
}

/* Whether a --cluster list names a NATS user and password (USER:PASS@). */
static bool has_password(const char *urls) {
    for (const char *p = urls; p && *p;) {
        const char *e = strchr(p, ','), *s = strstr(p, "://");
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (s && s < p + len) {
            const char *at = memchr(s + 3, '@', (size_t)(p + len - s - 3));
            if (at && memchr(s + 3, ':', (size_t)(at - s - 3))) return true;
        }
        p = e ? e + 1 : NULL;
    }
    return false;
}

/* A NATS password is a secret: on the command line every user sees it (ps),
 * so the relay says where it belongs; in a --config file others may read,
 * the relay refuses to start, as for a key file. 0, or the exit status. */
static int check_cluster_secret(const char *cmd) {
    if (!has_password(g.cfg.cluster)) return 0;
    bool from_flag = false;
    for (size_t i = 0; i < g.nflags; i++)
        from_flag = from_flag || !strcmp(pl__relay_config_key_name(g.flags[i].key), "cluster");
    if (from_flag) {
        say(PL_LOG_WARN, "the NATS password in --cluster is visible to every user of this machine "
                         "(ps): put the cluster line in a --config file of mode 0600");
        return 0;
    }
    struct stat st;
    if (g.config_path && stat(g.config_path, &st) == 0 && (st.st_mode & 077)) {
        fprintf(stderr,
                "pairlink %s: %s holds a NATS password but others may read it (mode %04o): run "
                "'chmod 600 %s' (%s)\n",
                cmd, g.config_path, (unsigned)(st.st_mode & 07777), g.config_path,
                pl_errname(PL_ERR_KEY_FILE));
        return 1;
    }
    return 0;
}

static void to_opts(const pl__relay_config *c, pl__ws_server_opts *o, const char **urls) {
    memset(o, 0, sizeof *o);
    o->listen = c->listen;
    o->nlisten = c->nlisten;
    o->host = c->listen[0].host;
    o->port = c->listen[0].port;
    o->db_path = c->db[0] ? c->db : NULL;
    o->cluster.urls = c->cluster[0] ? c->cluster : NULL;
    o->cluster.replicas = c->cluster_replicas;
    o->cluster.instance_id = c->instance_id[0] ? c->instance_id : NULL;
    o->cluster.ca = c->cluster_ca[0] ? c->cluster_ca : NULL;
    o->cluster.cert = c->cluster_cert[0] ? c->cluster_cert : NULL;
    o->cluster.key = c->cluster_key[0] ? c->cluster_key : NULL;
    o->require_auth = c->require_auth;
    pl__relay_config_limits(c, &o->limits);
    o->max_memory = c->max_memory;
    o->ping_interval_ms = c->ping_interval_ms;
    o->idle_timeout_ms = c->idle_timeout_ms;
    o->handshake_timeout_s = c->handshake_timeout_s;
    o->socket_sndbuf = c->socket_sndbuf;
    o->handle_signals = true;
    o->logkv = server_log;
    o->log_level = (int)c->log_level - 1;
    for (size_t i = 0; i < c->npublic_url; i++)
        urls[i] = c->public_url[i];
    o->public_urls = urls;
    o->n_public_urls = c->npublic_url;
    o->tls_cert = c->tls_cert[0] ? c->tls_cert : NULL;
    o->tls_key = c->tls_key[0] ? c->tls_key : NULL;
    o->fault_close_code = c->fault_close_code;
    o->fault_ignore = c->fault_ignore;
    o->allow = (const char(*)[PL_DID_KEY_SIZE])c->allow;
    o->nallow = c->nallow;
    o->health = (int)c->health;
    o->metrics = (int)c->metrics;
}

/* SIGHUP: read everything again; apply what may change live, report what
 * needs a restart, keep the running settings when anything is wrong. */
static void on_reload(void *ud) {
    (void)ud;
    const char *what = g.config_path ? g.config_path : g.cfg.allow_file;
    if (!g.config_path && !g.cfg.allow_file[0]) {
        say(PL_LOG_INFO, "SIGHUP: nothing to reload (no --config, no --allow-file)");
        return;
    }
    pl__relay_config n;
    char why[600];
    bool is_usage;
    pl_err e = build(&n, why, sizeof why, &is_usage);
    if (e != PL_OK) {
        const pl_log_field f[] = {{"file", what, 0}, {"code", pl_errname(e), 0}};
        char msg[800];
        snprintf(msg, sizeof msg, "reload failed, the running settings stay: %s (%s)", why,
                 pl_errname(e));
        emit(PL_LOG_WARN, "relay", msg, f, 2);
        pl__ws_server_count_reload(g.srv, false);
        pl__relay_config_free(&n);
        return;
    }
    char live[512], restart[512];
    pl__relay_config_diff(&g.cfg, &n, live, sizeof live, restart, sizeof restart);
    pl__relay_config_keep_restart(&n, &g.cfg);
    pl__ws_server_opts o;
    const char *urls[PL__RELAY_AUD_MAX];
    to_opts(&n, &o, urls);
    if (live[0] && (e = pl__ws_server_apply(g.srv, &o)) != PL_OK) {
        say(PL_LOG_WARN, "reload failed, the running settings stay: %s (%s)", pl_strerror(e),
            pl_errname(e));
        pl__ws_server_count_reload(g.srv, false);
        pl__relay_config_free(&n);
        return;
    }
    pl__relay_config_move(&g.cfg, &n);
    apply_lib_log();
    pl__ws_server_count_reload(g.srv, true);
    const pl_log_field f[] = {
        {"file", what, 0}, {"changed", live, 0}, {"needs_restart", restart, 0}};
    char msg[3072];
    snprintf(msg, sizeof msg, "reloaded %s: %s%s%s%s", what,
             live[0] ? "changed: " : "nothing changed", live,
             restart[0] ? "; needs a restart (not applied): " : "", restart);
    emit(PL_LOG_INFO, "relay", msg, f, 3);
}

int pl_cli_relay(int argc, char **argv) {
    static const char cmd[] = "relay";
    enum { O_HELP = 1, O_CONFIG = 2, O_KEY = 16 };
    size_t nkeys = pl__relay_config_nkeys();
    struct option *longopts = calloc(nkeys + 3, sizeof *longopts);
    flag *flags = calloc((size_t)argc + 1, sizeof *flags);
    if (!longopts || !flags) {
        free(longopts);
        free(flags);
        return pl_cli_fail(cmd, "cannot start", PL_ERR_NOMEM);
    }
    for (size_t i = 0; i < nkeys; i++)
        longopts[i] =
            (struct option){pl__relay_config_key_name(i),
                            pl__relay_config_key_has_arg(i) ? required_argument : no_argument, NULL,
                            O_KEY + (int)i};
    longopts[nkeys] = (struct option){"config", required_argument, NULL, O_CONFIG};
    longopts[nkeys + 1] = (struct option){"help", no_argument, NULL, O_HELP};
    memset(&g, 0, sizeof g);
    g.flags = flags;
    int c, rc = 0;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c == O_HELP) {
            fputs(usage, stdout);
            goto out;
        } else if (c == O_CONFIG) {
            g.config_path = *optarg ? optarg : NULL;
        } else if (c >= O_KEY && (size_t)(c - O_KEY) < nkeys) {
            /* An empty value is not given: a unit or a script may pass a
             * variable that is empty (--listen "${LISTEN}"). */
            if (!optarg || *optarg) g.flags[g.nflags++] = (flag){(size_t)(c - O_KEY), optarg};
        } else {
            rc = pl_cli_usage_error(cmd, "unknown or incomplete option '%s'", argv[optind - 1]);
            goto out;
        }
    }
    if (optind < argc) {
        rc = pl_cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
        goto out;
    }
    char why[600];
    bool usage_err;
    pl_err e = build(&g.cfg, why, sizeof why, &usage_err);
    if (e != PL_OK) {
        rc = usage_err ? pl_cli_usage_error(cmd, "%s", why)
                       : (fprintf(stderr, "pairlink relay: %s (%s)\n", why, pl_errname(e)), 1);
        goto out;
    }
    apply_lib_log();
    pl__ws_server_opts o;
    const char *urls[PL__RELAY_AUD_MAX];
    to_opts(&g.cfg, &o, urls);
    o.on_reload = on_reload;
    if (o.cluster.urls && !pl__relay_backend_nats_available()) {
        rc = pl_cli_fail(cmd, "--cluster needs a pairlink built with libnats (libnats-dev)",
                         PL_ERR_NO_CLUSTER);
        goto out;
    }
    if (!o.db_path && !o.cluster.urls)
        say(PL_LOG_WARN, "no --db: the mailbox is kept in memory and lost on exit");
    if ((rc = check_cluster_secret(cmd)) != 0) goto out;

    /* Message texts and answer pages go to mmap and back to the system when
     * freed, so that the resident size follows what the relay accounts for
     * rather than the allocator's high-water mark (glibc would raise its
     * threshold to 32 MiB as large blocks come and go). */
    mallopt(M_MMAP_THRESHOLD, 64 << 10);
    mallopt(M_TRIM_THRESHOLD, 1 << 20);
    e = pl__ws_server_new(&g.srv, &o);
    if (e == PL_ERR_SYS && pl_last_detail()) {
        for (size_t i = 0; i < g.cfg.nlisten; i++)
            fprintf(stderr, "pairlink relay: cannot listen on %s%s%s:%d: %s\n",
                    g.cfg.listen[i].ipv6 ? "[" : "", g.cfg.listen[i].host,
                    g.cfg.listen[i].ipv6 ? "]" : "", g.cfg.listen[i].port,
                    strerror((int)pl_last_detail()));
    } else if (e == PL_ERR_INVALID_ARG) {
        fprintf(stderr,
                "pairlink relay: a listen address is not an IPv4 address, a resolvable name or "
                "an [IPv6] address, or a limit is inconsistent (see the log)\n");
    }
    if (e != PL_OK) {
        rc = pl_cli_fail(cmd, "cannot start the relay", e);
        goto out;
    }
    for (size_t i = 0; i < pl__ws_server_listeners(g.srv); i++) {
        const pl__relay_listen *l = &g.cfg.listen[i];
        printf("listening on %s://%s%s%s:%d\n", o.tls_cert ? "wss" : "ws", l->ipv6 ? "[" : "",
               l->host, l->ipv6 ? "]" : "", pl__ws_server_listener_port(g.srv, i));
    }
    fflush(stdout);
    e = pl__ws_server_run(g.srv);
    pl__ws_server_free(g.srv);
    g.srv = NULL;
    if (e != PL_OK) rc = pl_cli_fail(cmd, "relay stopped with an error", e);
out:
    pl_set_log(NULL, NULL, PL_LOG_OFF);
    pl__relay_config_free(&g.cfg);
    free(longopts);
    free(flags);
    memset(&g, 0, sizeof g);
    return rc;
}
