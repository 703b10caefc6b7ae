/* SPDX-License-Identifier: Apache-2.0 */
/* `pairlink waku node|subscribe|publish`: a Waku relay node, and the two
 * one-shot clients built on it (include/pairlink/waku_node.h). Exact forms
 * and output: docs/waku.md, "Command line". */
#include "cli/cli.h"
#include "core/internal.h"
#include "pairlink/codec.h"
#include "pairlink/driver.h"
#include "pairlink/waku_node.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

typedef enum wmode { W_NODE = 1, W_SUBSCRIBE, W_PUBLISH } wmode;

#define MAX_TOPICS 64

typedef struct wopts {
    pl_cli_waku_opts
        w; /* --listen, --peer, --cluster, --shard, --autosharding, --key-file, --muxer */
    unsigned long count;   /* subscribe: exit after N messages (0: never) */
    unsigned long timeout; /* seconds; 0: none (subscribe), 10 (publish) */
    bool hex, ephemeral, verbose;
    unsigned long version;
    const char *meta_hex;
} wopts;

typedef struct wctx {
    const char *cmd;
    wmode mode;
    wopts o;
    pl_cli_out out;
    uv_loop_t loop;
    pl_driver *drv;
    pl_waku_node *node;
    pl_cli_signals sig;
    uv_timer_t timer;
    int status; /* -1 while running */
    bool stopping;
    unsigned long got;
    const char *topics[MAX_TOPICS];
    size_t ntopics;
    uint64_t pub_id;
    pl_waku_publish_result pub;
} wctx;

/* ---- help ---- */

static const char node_opts_help[] =
    "node options:\n"
    "  --listen MULTIADDR   listen there, e.g. /ip4/0.0.0.0/tcp/60000 (repeatable;\n"
    "                       port 0 picks a free port)\n"
    "  --peer MULTIADDR     a bootstrap peer, /ip4|ip6|dns4|dns6|dns/HOST/tcp/PORT[/p2p/ID]\n"
    "                       (repeatable); dialled at start, redialled with backoff\n"
    "  --cluster N          Waku cluster id (default 16: Status)\n"
    "  --shard N            static shard carrying every content topic (default 64);\n"
    "                       repeat it to relay more shards (the first one is used\n"
    "                       for content topics)\n"
    "  --autosharding N     map content topics over N shards (51/WAKU2-RELAY-SHARDING)\n"
    "                       instead of the static shard\n"
    "  --key-file F         identity key (libp2p protobuf; created 0600 if missing);\n"
    "                       default: a fresh key, a new peer id each run\n"
    "  --muxer M            yamux, mplex or both (default both: yamux preferred)\n"
    "  --verbose            log every connection event on stderr\n";

static const char node_usage[] =
    "usage: pairlink waku node [--listen MULTIADDR]... [--peer MULTIADDR]... [--cluster N]\n"
    "                          [--shard N]... [--key-file F] [options]\n"
    "\n"
    "Run a Waku relay node: it relays /waku/2/rs/<cluster>/<shard> (gossipsub under\n"
    "/vac/waku/relay/2.0.0), answers and checks /vac/waku/metadata/1.0.0 (peers of\n"
    "another cluster are disconnected), and keeps its bootstrap peers connected.\n"
    "Prints \"listening on /ip4/.../tcp/PORT/p2p/PEERID\" on stdout for each listen\n"
    "address once it accepts (default --listen /ip4/127.0.0.1/tcp/0; --json:\n"
    "{\"event\":\"listening\",\"address\"}); logs peers and mesh changes on stderr.\n"
    "SIGTERM stops it cleanly (exit 0), SIGINT too (exit 130).\n"
    "\n"
    "  --json          one JSON object per line (docs/cli.md)\n"
    "\n";

static const char subscribe_usage[] =
    "usage: pairlink waku subscribe CONTENT_TOPIC... --peer MULTIADDR [--count N] [--json]\n"
    "                               [--timeout S] [node options]\n"
    "\n"
    "Join the Waku network through --peer and print each message received on\n"
    "CONTENT_TOPIC as one line on stdout: the payload as text when it is UTF-8\n"
    "without control characters, else 0x and its hex. --json prints one object per\n"
    "message instead: {\"event\":\"message\", content_topic, pubsub_topic, payload_hex,\n"
    "payload (text or null), timestamp_ms (the message's timestamp, unix ms), version,\n"
    "meta_hex, ephemeral, hash, from}. Logs go to stderr.\n"
    "\n"
    "  --count N     exit 0 after N messages\n"
    "  --timeout S   give up after S seconds: exit 1 if --count messages did not\n"
    "                arrive, 0 without --count\n"
    "\n";

static const char publish_usage[] =
    "usage: pairlink waku publish CONTENT_TOPIC MESSAGE --peer MULTIADDR [--hex]\n"
    "                             [--timeout S] [--json] [node options]\n"
    "\n"
    "Join the Waku network through --peer, publish one WakuMessage (version 0,\n"
    "timestamp now) and exit 0 once it went to at least one peer subscribed to\n"
    "its pubsub topic (printing \"published HASH to N peers\" on stdout; --json:\n"
    "{\"event\":\"published\",\"hash\",\"peers\"}), or 1 when none appeared within\n"
    "the time-out.\n"
    "\n"
    "  --hex           MESSAGE is hex (the payload's bytes)\n"
    "  --json          one JSON object per line (docs/cli.md)\n"
    "  --timeout S     seconds to wait for a subscribed peer (default 10)\n"
    "  --ephemeral     mark the message ephemeral (store nodes keep no copy)\n"
    "  --meta-hex H    the meta field (<= 64 bytes)\n"
    "  --version N     the WakuMessage version field (default 0)\n"
    "\n";

/* ---- option parsing ---- */

static bool parse_ulong(const char *s, unsigned long max, unsigned long *out) {
    char *end;
    errno = 0;
    if (!s || !*s || *s == '-' || *s == '+') return false;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || v > max) return false;
    *out = v;
    return true;
}

enum {
    O_LISTEN = 1,
    O_PEER,
    O_CLUSTER,
    O_SHARD,
    O_AUTOSHARD,
    O_KEY,
    O_MUXER,
    O_COUNT,
    O_JSON,
    O_HEX,
    O_TIMEOUT,
    O_EPHEMERAL,
    O_META,
    O_VERSION,
    O_VERBOSE,
    O_HELP,
};

static void print_help(wmode m) {
    printf("%s%s",
           m == W_NODE        ? node_usage
           : m == W_SUBSCRIBE ? subscribe_usage
                              : publish_usage,
           node_opts_help);
    printf("\nSee docs/waku.md.\n");
}

/* Returns -1 to go on, else the exit status. */
static int parse(wctx *x, int argc, char **argv, int *first_pos) {
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, O_LISTEN},
        {"peer", required_argument, NULL, O_PEER},
        {"cluster", required_argument, NULL, O_CLUSTER},
        {"shard", required_argument, NULL, O_SHARD},
        {"autosharding", required_argument, NULL, O_AUTOSHARD},
        {"key-file", required_argument, NULL, O_KEY},
        {"muxer", required_argument, NULL, O_MUXER},
        {"count", required_argument, NULL, O_COUNT},
        {"json", no_argument, NULL, O_JSON},
        {"hex", no_argument, NULL, O_HEX},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"ephemeral", no_argument, NULL, O_EPHEMERAL},
        {"meta-hex", required_argument, NULL, O_META},
        {"version", required_argument, NULL, O_VERSION},
        {"verbose", no_argument, NULL, O_VERBOSE},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    wopts *o = &x->o;
    const char *cmd = x->cmd;
    pl_cli_waku_init(&o->w);
    o->timeout = x->mode == W_PUBLISH ? 10 : 0;
    int c;
    optind = 1;
    opterr = 0;
    /* GNU getopt moves the positionals to the end: argv[optind..]. */
    int li = -1;
    while ((c = getopt_long(argc, argv, "", longopts, &li)) != -1) {
        const char *oname = li >= 0 ? longopts[li].name : "?";
        li = -1;
        bool only_sub = c == O_COUNT;
        bool only_pub = c == O_HEX || c == O_EPHEMERAL || c == O_META || c == O_VERSION;
        if ((only_sub && x->mode != W_SUBSCRIBE) || (only_pub && x->mode != W_PUBLISH) ||
            (c == O_TIMEOUT && x->mode == W_NODE))
            return pl_cli_usage_error(cmd, "option '--%s' is not one of this command's", oname);
        switch (c) {
        case O_LISTEN:
        case O_PEER:
        case O_CLUSTER:
        case O_SHARD:
        case O_AUTOSHARD:
        case O_KEY:
        case O_MUXER: {
            int r = pl_cli_waku_option(&o->w, cmd, oname, optarg);
            if (r < 0) return -r;
            break;
        }
        case O_COUNT:
            if (!parse_ulong(optarg, 100000000, &o->count) || o->count == 0)
                return pl_cli_usage_error(cmd, "--count wants a positive number, got '%s'", optarg);
            break;
        case O_JSON:
            x->out.json = true;
            break;
        case O_HEX:
            o->hex = true;
            break;
        case O_TIMEOUT:
            if (!parse_ulong(optarg, 86400, &o->timeout) || o->timeout == 0)
                return pl_cli_usage_error(cmd, "--timeout wants 1..86400 seconds, got '%s'",
                                          optarg);
            break;
        case O_EPHEMERAL:
            o->ephemeral = true;
            break;
        case O_META:
            o->meta_hex = optarg;
            break;
        case O_VERSION:
            if (!parse_ulong(optarg, UINT32_MAX, &o->version))
                return pl_cli_usage_error(cmd, "--version wants a 32-bit number, got '%s'", optarg);
            break;
        case O_VERBOSE:
            o->verbose = true;
            break;
        case O_HELP:
            print_help(x->mode);
            return 0;
        default:
            return pl_cli_usage_error(cmd, "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    int bad = pl_cli_waku_check(&o->w, cmd);
    if (bad) return bad;
    *first_pos = optind;
    return -1;
}

static void stop(struct wctx *x, int status);

/* ---- output ---- */

static void log_line(void *ud, const char *line) {
    wctx *x = ud;
    /* Connection-level lines of the host are for --verbose; the node's own
     * (peers, mesh, publishing) always show. */
    if (!x->o.verbose &&
        (!strncmp(line, "connected ", 10) || !strncmp(line, "identified ", 11) ||
         !strncmp(line, "identify of", 11) || !strncmp(line, "disconnected ", 13) ||
         !strncmp(line, "listening on", 12)))
        return;
    char ts[32];
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(stderr, "%s.%03ldZ waku: %s\n", ts, now.tv_nsec / 1000000, line);
}

static char *hex_of(const uint8_t *b, size_t n) {
    char *h = malloc(2 * n + 1);
    if (!h) return NULL;
    if (pl_hex_encode(h, 2 * n + 1, b, n) != PL_OK) h[0] = '\0';
    return h;
}

static bool plain_text(const uint8_t *b, size_t n) {
    if (!pl__utf8_valid(b, n)) return false;
    for (size_t i = 0; i < n; i++)
        if (b[i] < 0x20 || b[i] == 0x7f) return false;
    return true;
}

static void on_message(void *ud, pl_waku_node *n, const pl_waku_delivery *d) {
    (void)n;
    wctx *x = ud;
    if (x->stopping) return;
    const pl_waku_message *m = d->msg;
    if (x->out.json) {
        json_t *o = json_object();
        char *ph = hex_of(m->payload, m->payload_len);
        char *mh = m->meta_len ? hex_of(m->meta, m->meta_len) : NULL;
        char *hh = hex_of(d->hash, PL_WAKU_HASH_BYTES);
        char from[PL_P2P_PEER_ID_TEXT_SIZE];
        if (pl_p2p_peer_id_format(from, d->from) != PL_OK) from[0] = '\0';
        json_object_set_new(o, "event", json_string("message"));
        json_object_set_new(o, "content_topic", json_string(d->content_topic));
        json_object_set_new(o, "pubsub_topic", json_string(d->pubsub_topic));
        json_object_set_new(o, "payload_hex", json_string(ph ? ph : ""));
        json_object_set_new(o, "payload",
                            plain_text(m->payload, m->payload_len)
                                ? json_stringn((const char *)m->payload, m->payload_len)
                                : json_null());
        /* WakuMessage timestamps are ns; the CLI's times are ms (the
         * hash covers the exact value) */
        json_object_set_new(o, "timestamp_ms", json_integer(m->timestamp / 1000000));
        json_object_set_new(o, "version", json_integer(m->version));
        json_object_set_new(o, "meta_hex", mh ? json_string(mh) : json_null());
        json_object_set_new(o, "ephemeral", json_boolean(m->ephemeral));
        json_object_set_new(o, "hash", json_string(hh ? hh : ""));
        json_object_set_new(o, "from", json_string(from));
        pl_cli_emit(&x->out, o);
        free(ph), free(mh), free(hh);
    } else if (plain_text(m->payload, m->payload_len)) {
        printf("%.*s\n", (int)m->payload_len, (const char *)m->payload);
    } else {
        char *ph = hex_of(m->payload, m->payload_len);
        printf("0x%s\n", ph ? ph : "");
        free(ph);
    }
    fflush(stdout);
    x->got++;
    if (x->o.count && x->got >= x->o.count) stop(x, 0);
}

/* ---- life cycle ---- */

static void on_node_closed(void *ud) {
    wctx *x = ud;
    x->node = NULL;
    pl_cli_signals_close(&x->sig);
    uv_close((uv_handle_t *)&x->timer, NULL);
    pl_driver_close(x->drv, NULL, NULL);
}

static void stop(wctx *x, int status) {
    if (x->stopping) return;
    x->stopping = true;
    x->status = status;
    uv_timer_stop(&x->timer);
    pl_waku_node_close(x->node, on_node_closed, x);
}

static void on_signal(void *data, int sig) {
    wctx *x = data;
    if (x->stopping) return;
    /* a node, and a subscriber without --count, serve until stopped */
    bool serving = x->mode == W_NODE || (x->mode == W_SUBSCRIBE && !x->o.count);
    pl_cli_signal_report(&x->out, sig);
    stop(x, pl_cli_signal_status(sig, serving));
}

/* The node's queue gives up on the message when --timeout ends too (its
 * publish TTL is the time-out), so both ends of the race say the same. */
static void no_peers(wctx *x) {
    pl_cli_error(&x->out, PL_ERR_WAKU_NO_PEERS, "no peer subscribed to %s within %lu s",
                 x->pub.pubsub_topic, x->o.timeout);
    stop(x, 1);
}

static void on_timeout(uv_timer_t *t) {
    wctx *x = t->data;
    if (x->mode == W_PUBLISH) {
        no_peers(x);
    } else {
        if (x->o.count)
            pl_cli_error(&x->out, PL_ERR_TIMEOUT, "%lu of %lu messages within %lu s", x->got,
                         x->o.count, x->o.timeout);
        stop(x, x->o.count ? 1 : 0);
    }
}

static void published(wctx *x, size_t sent_to) {
    char h[2 * PL_WAKU_HASH_BYTES + 1];
    pl_hex_encode(h, sizeof h, x->pub.hash, PL_WAKU_HASH_BYTES);
    if (x->out.json)
        pl_cli_emit(&x->out, json_pack("{s:s,s:s,s:I}", "event", "published", "hash", h, "peers",
                                       (json_int_t)sent_to));
    else
        printf("published %s to %zu peers\n", h, sent_to);
    fflush(stdout);
    stop(x, 0);
}

static void on_event(void *ud, pl_waku_node *n, const pl_waku_event *ev) {
    (void)n;
    wctx *x = ud;
    if (x->mode != W_PUBLISH || ev->publish_id != x->pub_id || !x->pub_id) return;
    if (ev->kind == PL_WAKU_EV_PUBLISHED) {
        published(x, ev->sent_to);
    } else if (ev->kind == PL_WAKU_EV_PUBLISH_FAILED && !x->stopping) {
        if (ev->err == PL_ERR_WAKU_NO_PEERS) {
            no_peers(x);
            return;
        }
        pl_cli_error(&x->out, ev->err, "not published: %s", pl_strerror(ev->err));
        stop(x, 1);
    }
}

static int run(wctx *x, const uint8_t *payload, size_t plen, const uint8_t *meta, size_t mlen) {
    wopts *o = &x->o;
    pl_p2p_key *key = NULL;
    if (o->w.key_file) {
        bool created = false;
        pl_err e = pl_p2p_key_load_or_create(o->w.key_file, PL_P2P_KEY_ED25519, &key, &created);
        if (e != PL_OK)
            return pl_cli_key_file_error(&x->out, o->w.key_file, e, "cannot load or create the key");
    }
    if (!o->w.nlisten && x->mode == W_NODE) o->w.listen[o->w.nlisten++] = "/ip4/127.0.0.1/tcp/0";
    pl_waku_node_opts no;
    pl_cli_waku_node_opts(&o->w, &no);
    no.key = key;
    if (x->mode == W_PUBLISH) no.publish_ttl_ms = (int64_t)o->timeout * 1000;
    no.on_message = x->mode == W_SUBSCRIBE ? on_message : NULL;
    no.on_event = on_event;
    no.ud = x;
    no.on_log = log_line;
    no.log_ud = x;

    if (uv_loop_init(&x->loop) != 0) {
        pl_p2p_key_free(key);
        return pl_cli_error(&x->out, PL_ERR_SYS, "cannot set up the event loop");
    }
    pl_err e = pl_driver_new(&x->drv, &x->loop);
    if (e == PL_OK) e = pl_waku_node_new(&x->node, x->drv, &no);
    pl_p2p_key_free(key);
    if (e != PL_OK) {
        pl_driver_free(x->drv); /* nothing of it is on the loop yet */
        uv_loop_close(&x->loop);
        return pl_cli_error(&x->out, e, "starting the node: %s", pl_strerror(e));
    }
    x->status = -1;
    uv_timer_init(&x->loop, &x->timer);
    x->timer.data = x;
    pl_cli_signals_start(&x->sig, &x->loop, on_signal, x);

    for (size_t i = 0; i < o->w.nlisten && e == PL_OK; i++) {
        e = pl_waku_node_listen(x->node, o->w.listen[i]);
        if (e != PL_OK)
            pl_cli_error(&x->out, e, "cannot listen on %s: %s", o->w.listen[i],
                         e == PL_ERR_SYS ? uv_strerror((int)pl_last_detail()) : pl_strerror(e));
    }
    char addr[1200];
    size_t nl = e == PL_OK ? pl_waku_node_listen_addr(x->node, 0, NULL, 0) : 0;
    for (size_t i = 0; i < nl; i++) {
        pl_waku_node_listen_addr(x->node, i, addr, sizeof addr);
        if (x->mode == W_NODE && x->out.json) {
            pl_cli_emit(&x->out, json_pack("{s:s,s:s}", "event", "listening", "address", addr));
        } else if (x->mode == W_NODE) {
            printf("listening on %s\n", addr);
            fflush(stdout);
        } else {
            fprintf(stderr, "listening on %s\n", addr);
        }
    }
    for (size_t i = 0; i < x->ntopics && e == PL_OK; i++) {
        e = pl_waku_node_subscribe(x->node, x->topics[i]);
        if (e != PL_OK) {
            pl_cli_error(&x->out, e, "content topic %s: %s", x->topics[i], pl_strerror(e));
        } else {
            char pt[PL_WAKU_PUBSUB_TOPIC_SIZE];
            pl_waku_node_pubsub_topic(x->node, x->topics[i], pt);
            fprintf(stderr, "subscribed to %s on %s\n", x->topics[i], pt);
        }
    }
    if (e == PL_OK && x->mode == W_PUBLISH) {
        pl_waku_publish_opts po = {.version = (uint32_t)o->version,
                                   .meta = meta,
                                   .meta_len = mlen,
                                   .ephemeral = o->ephemeral};
        e = pl_waku_node_publish(x->node, x->topics[0], payload, plen, &po, &x->pub);
        if (e != PL_OK) {
            pl_cli_error(&x->out, e, "publish: %s", pl_strerror(e));
        } else {
            x->pub_id = x->pub.id;
            if (!x->pub.queued) published(x, x->pub.sent_to);
        }
    }
    if (e != PL_OK) {
        stop(x, 1);
    } else if (o->timeout && !x->stopping) {
        uv_timer_start(&x->timer, on_timeout, (uint64_t)o->timeout * 1000, 0);
    }
    uv_run(&x->loop, UV_RUN_DEFAULT);
    uv_loop_close(&x->loop);
    return x->status < 0 ? 0 : x->status;
}

static int waku_main(wmode mode, const char *cmd, int argc, char **argv) {
    wctx *x = calloc(1, sizeof *x);
    if (!x) return pl_cli_fail(cmd, "start", PL_ERR_NOMEM);
    x->cmd = cmd;
    x->out.cmd = cmd;
    x->mode = mode;
    int first = 0;
    int r = parse(x, argc, argv, &first);
    if (r >= 0) {
        free(x);
        return r;
    }
    int npos = argc - first;
    char **pos = argv + first;
    uint8_t *payload = NULL, meta[PL_WAKU_META_MAX];
    size_t plen = 0, mlen = 0;
    switch (mode) {
    case W_NODE:
        if (npos) r = pl_cli_usage_error(cmd, "unexpected argument '%s'", pos[0]);
        break;
    case W_SUBSCRIBE:
        if (npos < 1)
            r = pl_cli_usage_error(cmd, "a CONTENT_TOPIC is needed");
        else if (npos > MAX_TOPICS)
            r = pl_cli_usage_error(cmd, "at most %d content topics", MAX_TOPICS);
        else if (!x->o.w.npeers && !x->o.w.nlisten)
            r = pl_cli_usage_error(cmd, "--peer is needed");
        for (int i = 0; r < 0 && i < npos; i++)
            x->topics[x->ntopics++] = pos[i];
        break;
    case W_PUBLISH:
        if (npos != 2) {
            r = pl_cli_usage_error(cmd, "CONTENT_TOPIC and MESSAGE are needed");
            break;
        }
        if (!x->o.w.npeers && !x->o.w.nlisten) {
            r = pl_cli_usage_error(cmd, "--peer is needed");
            break;
        }
        x->topics[x->ntopics++] = pos[0];
        if (x->o.hex) {
            size_t hl = strlen(pos[1]);
            payload = malloc(hl / 2 + 1);
            if (!payload || hl % 2 ||
                pl_hex_decode(payload, hl / 2 + 1, &plen, pos[1], hl) != PL_OK) {
                r = pl_cli_usage_error(cmd, "MESSAGE is not hex (--hex)");
                break;
            }
        } else {
            plen = strlen(pos[1]);
            payload = malloc(plen + 1);
            if (!payload) {
                r = pl_cli_fail(cmd, "start", PL_ERR_NOMEM);
                break;
            }
            memcpy(payload, pos[1], plen);
        }
        if (!plen) {
            r = pl_cli_usage_error(cmd, "MESSAGE is empty (js-waku and nwaku drop empty payloads)");
            break;
        }
        if (x->o.meta_hex) {
            size_t hl = strlen(x->o.meta_hex);
            if (hl % 2 || hl / 2 > PL_WAKU_META_MAX ||
                pl_hex_decode(meta, sizeof meta, &mlen, x->o.meta_hex, hl) != PL_OK) {
                r = pl_cli_usage_error(cmd, "--meta-hex wants up to %d bytes of hex",
                                       PL_WAKU_META_MAX);
                break;
            }
        }
        break;
    }
    if (r < 0) r = run(x, payload, plen, mlen ? meta : NULL, mlen);
    free(payload);
    free(x);
    return r;
}

static int waku_node(int argc, char **argv) {
    return waku_main(W_NODE, "waku node", argc, argv);
}
static int waku_subscribe(int argc, char **argv) {
    return waku_main(W_SUBSCRIBE, "waku subscribe", argc, argv);
}
static int waku_publish(int argc, char **argv) {
    return waku_main(W_PUBLISH, "waku publish", argc, argv);
}

int pl_cli_waku(int argc, char **argv) {
    static const pl_cli_cmd cmds[] = {
        {"node", waku_node, "run a Waku relay node"},
        {"publish", waku_publish, "publish one message on a content topic"},
        {"subscribe", waku_subscribe, "print the messages of content topics"},
    };
    return pl_cli_dispatch("pairlink waku", cmds, sizeof cmds / sizeof cmds[0], argc, argv);
}
