/* SPDX-License-Identifier: Apache-2.0 */
/* The C side of the Waku interop tests (tests/interop/waku_*.sh): a
 * pl_waku_node with the command line and JSON-lines output of
 * interop/js-waku/waku-node.mjs and interop/libp2p3/gossip-node.mjs
 * (interop/README.md), so that the scripts drive and read the three alike:
 *
 *   waku_driver [--port N] [--muxer yamux|mplex|both] [--cluster N] [--shard N]
 *       [--peer MULTIADDR]... [--subscribe CONTENT_TOPIC]...
 *       [--publish CONTENT_TOPIC (--message TEXT | --payload-hex HEX) [--count N]
 *        [--interval-ms M] [--min-mesh N] [--start-after FILE]] [--expect N] [--linger S]
 *       [--lifetime S] [--verbose]
 *
 * --start-after (not in the JS scripts) holds publishing until FILE exists,
 * so that a script can start every publisher of a network at once.
 * Lines: listening, connection / disconnect (relay peer up / down),
 * refused, mesh, message, published, publish-error, exit; the fields of
 * the JS scripts. Exit 0 done, 1 failure, 2 usage, 3 time-out; SIGTERM and
 * SIGINT end it with 0 (reason "signal"). */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "pairlink/codec.h"
#include "pairlink/waku_node.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_TIMEOUT = 3 };

#define MAXP 32
#define MAXMESH 64

typedef struct drv {
    uv_loop_t loop;
    pl_driver *drv;
    uv_timer_t tick, life;
    uv_signal_t sigint, sigterm;
    pl_waku_node *n;
    char topic[PL_WAKU_PUBSUB_TOPIC_SIZE];
    const char *publish_ct;
    uint8_t *payload;
    size_t payload_len;
    unsigned long count, interval_ms, min_mesh, expect, linger, lifetime;
    unsigned long published, received;
    uint64_t next_pub_ms;
    bool stopping, failed;
    int exit_code;
    const char *reason;
    pl_p2p_peer_id mesh[MAXMESH];
    size_t nmesh;
    bool done_at_set;
    uint64_t done_at;
    const char *start_after; /* publishing waits until this file exists */
} drv;

static void emit(json_t *o) {
    char *s = json_dumps(o, JSON_COMPACT);
    if (s) printf("%s\n", s);
    fflush(stdout);
    free(s);
    json_decref(o);
}

static json_t *peer_json(const pl_p2p_peer_id *id) {
    char t[PL_P2P_PEER_ID_TEXT_SIZE];
    if (!id || !id->len || pl_p2p_peer_id_format(t, id) != PL_OK) return json_null();
    return json_string(t);
}

static json_t *hex_json(const uint8_t *b, size_t n) {
    char *h = malloc(2 * n + 1);
    if (!h) return json_null();
    pl_hex_encode(h, 2 * n + 1, b, n);
    json_t *j = json_string(h);
    free(h);
    return j;
}

/* M of the contract. */
static json_t *message_json(const char *event, const pl_waku_message *m, const char *pubsub,
                            const uint8_t *hash) {
    json_t *o = json_object();
    char ts[32];
    snprintf(ts, sizeof ts, "%lld", (long long)m->timestamp);
    json_object_set_new(o, "event", json_string(event));
    json_object_set_new(o, "content_topic", json_stringn(m->content_topic, m->content_topic_len));
    json_object_set_new(o, "pubsub_topic", json_string(pubsub));
    json_object_set_new(o, "payload_hex", hex_json(m->payload, m->payload_len));
    json_object_set_new(o, "timestamp", json_string(ts));
    json_object_set_new(o, "version", json_integer(m->version));
    json_object_set_new(o, "meta_hex", m->meta_len ? hex_json(m->meta, m->meta_len) : json_null());
    json_object_set_new(o, "ephemeral", json_boolean(m->ephemeral));
    json_object_set_new(o, "hash", hex_json(hash, PL_WAKU_HASH_BYTES));
    return o;
}

static void on_closed(void *ud) {
    drv *d = ud;
    d->n = NULL;
    uv_close((uv_handle_t *)&d->tick, NULL);
    uv_close((uv_handle_t *)&d->life, NULL);
    uv_close((uv_handle_t *)&d->sigint, NULL);
    uv_close((uv_handle_t *)&d->sigterm, NULL);
    pl_driver_close(d->drv, NULL, NULL);
    json_t *o = json_object();
    json_object_set_new(o, "event", json_string("exit"));
    json_object_set_new(o, "reason", json_string(d->reason));
    json_object_set_new(o, "published", json_integer((json_int_t)d->published));
    json_object_set_new(o, "received", json_integer((json_int_t)d->received));
    emit(o);
}

static void stop(drv *d, int code, const char *reason) {
    if (d->stopping) return;
    pl_waku_node_stats st;
    pl_waku_node_stats_get(d->n, &st);
    json_t *so = json_object();
    json_object_set_new(so, "event", json_string("stats"));
    json_object_set_new(so, "peers", json_integer((json_int_t)st.peers));
    json_object_set_new(so, "delivered", json_integer((json_int_t)st.delivered));
    json_object_set_new(so, "filtered", json_integer((json_int_t)st.filtered));
    json_object_set_new(so, "forwarded", json_integer((json_int_t)st.forwarded));
    json_object_set_new(so, "duplicates", json_integer((json_int_t)st.duplicates));
    json_object_set_new(so, "rejected", json_integer((json_int_t)st.rejected));
    emit(so);
    d->stopping = true;
    d->exit_code = code;
    d->reason = reason;
    uv_timer_stop(&d->tick);
    uv_timer_stop(&d->life);
    pl_waku_node_close(d->n, on_closed, d);
}

static bool goals(const drv *d) {
    return d->publish_ct || d->expect > 0;
}

static bool done(const drv *d) {
    return (!d->publish_ct || d->published == d->count) && d->received >= d->expect;
}

static void on_message(void *ud, pl_waku_node *n, const pl_waku_delivery *dl) {
    (void)n;
    drv *d = ud;
    d->received++;
    json_t *o = message_json("message", dl->msg, dl->pubsub_topic, dl->hash);
    json_object_set_new(o, "from", peer_json(dl->from));
    emit(o);
}

static int peer_cmp(const void *a, const void *b) {
    char ta[PL_P2P_PEER_ID_TEXT_SIZE], tb[PL_P2P_PEER_ID_TEXT_SIZE];
    pl_p2p_peer_id_format(ta, a);
    pl_p2p_peer_id_format(tb, b);
    return strcmp(ta, tb);
}

static void on_event(void *ud, pl_waku_node *n, const pl_waku_event *ev) {
    (void)n;
    drv *d = ud;
    json_t *o = json_object();
    switch (ev->kind) {
    case PL_WAKU_EV_PEER_UP:
    case PL_WAKU_EV_PEER_DOWN:
        json_object_set_new(
            o, "event", json_string(ev->kind == PL_WAKU_EV_PEER_UP ? "connection" : "disconnect"));
        json_object_set_new(o, "peer", peer_json(ev->peer));
        json_object_set_new(o, "direction", json_string(ev->inbound ? "inbound" : "outbound"));
        if (ev->kind == PL_WAKU_EV_PEER_DOWN)
            json_object_set_new(o, "error", json_string(pl_errname(ev->err)));
        break;
    case PL_WAKU_EV_PEER_REFUSED:
        json_object_set_new(o, "event", json_string("refused"));
        json_object_set_new(o, "peer", peer_json(ev->peer));
        json_object_set_new(o, "addr", json_string(ev->addr));
        json_object_set_new(o, "error", json_string(pl_errname(ev->err)));
        break;
    case PL_WAKU_EV_MESH: {
        if (strcmp(ev->pubsub_topic, d->topic) != 0) {
            json_decref(o);
            return;
        }
        size_t i = 0;
        while (i < d->nmesh && !pl_p2p_peer_id_equal(&d->mesh[i], ev->peer))
            i++;
        if (ev->grafted && i == d->nmesh && d->nmesh < MAXMESH)
            d->mesh[d->nmesh++] = *ev->peer;
        else if (!ev->grafted && i < d->nmesh)
            d->mesh[i] = d->mesh[--d->nmesh];
        qsort(d->mesh, d->nmesh, sizeof d->mesh[0], peer_cmp);
        json_object_set_new(o, "event", json_string("mesh"));
        json_object_set_new(o, "pubsub_topic", json_string(ev->pubsub_topic));
        json_t *a = json_array();
        for (size_t k = 0; k < d->nmesh; k++)
            json_array_append_new(a, peer_json(&d->mesh[k]));
        json_object_set_new(o, "peers", a);
        break;
    }
    default:
        json_decref(o);
        return;
    }
    emit(o);
}

static int64_t wall_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void publish_one(drv *d) {
    unsigned long i = d->published + 1;
    uint8_t *body = malloc(d->payload_len + 24);
    size_t len = d->payload_len;
    memcpy(body, d->payload, d->payload_len);
    if (d->count > 1) len += (size_t)snprintf((char *)body + len, 24, " %lu", i);
    /* milliseconds, as the JS scripts stamp (Date.now() * 1e6) */
    pl_waku_publish_opts po = {.timestamp = wall_ns() / 1000000 * 1000000};
    pl_waku_publish_result r;
    pl_err e = pl_waku_node_publish(d->n, d->publish_ct, body, len, &po, &r);
    if (e == PL_OK && r.queued) e = PL_ERR_WAKU_NO_PEERS; /* min-mesh 0 with nobody there */
    if (e != PL_OK) {
        json_t *o = json_object();
        json_object_set_new(o, "event", json_string("publish-error"));
        json_object_set_new(o, "content_topic", json_string(d->publish_ct));
        json_object_set_new(o, "error", json_string(pl_errname(e)));
        emit(o);
        free(body);
        d->failed = true;
        stop(d, EXIT_FAIL, "publish-error");
        return;
    }
    d->published++;
    pl_waku_message m = {.payload = body,
                         .payload_len = len,
                         .has_payload = true,
                         .content_topic = d->publish_ct,
                         .content_topic_len = strlen(d->publish_ct),
                         .timestamp = po.timestamp};
    json_t *o = message_json("published", &m, r.pubsub_topic, r.hash);
    json_object_set_new(o, "recipients", json_integer((json_int_t)r.sent_to));
    emit(o);
    free(body);
}

static void on_tick(uv_timer_t *t) {
    drv *d = t->data;
    if (d->stopping) return;
    uint64_t now = uv_now(&d->loop);
    if (d->start_after && access(d->start_after, F_OK) == 0) d->start_after = NULL;
    if (d->publish_ct && !d->start_after && d->published < d->count &&
        pl_waku_node_mesh_size(d->n, d->topic) >= d->min_mesh && now >= d->next_pub_ms) {
        publish_one(d);
        if (d->stopping) return;
        d->next_pub_ms = now + d->interval_ms;
    }
    if (goals(d) && done(d)) {
        if (!d->done_at_set) {
            d->done_at_set = true;
            d->done_at = now + d->linger * 1000;
        }
        if (now >= d->done_at) stop(d, EXIT_OK, "done");
    }
}

static void on_life(uv_timer_t *t) {
    drv *d = t->data;
    if (goals(d))
        stop(d, EXIT_TIMEOUT, "timeout");
    else
        stop(d, EXIT_OK, "lifetime");
}

static void on_signal(uv_signal_t *s, int sig) {
    (void)sig;
    stop(s->data, EXIT_OK, "signal");
}

static bool num(const char *s, unsigned long max, unsigned long *out) {
    char *end;
    errno = 0;
    if (!s || !*s || *s == '-') return false;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || v > max) return false;
    *out = v;
    return true;
}

static int usage(void) {
    fprintf(stderr, "usage: waku_driver [--port N] [--muxer yamux|mplex|both] [--cluster N] "
                    "[--shard N] [--peer MULTIADDR]... [--subscribe CT]... [--publish CT "
                    "(--message T | --payload-hex H) [--count N] [--interval-ms M] [--min-mesh "
                    "N]] [--expect N] [--linger S] [--lifetime S] [--verbose]\n");
    return EXIT_USAGE;
}

static bool verbose;
static void on_log(void *ud, const char *line) {
    (void)ud;
    if (verbose) fprintf(stderr, "waku_driver: %s\n", line);
}

int main(int argc, char **argv) {
    static drv d;
    unsigned long port = 0, cluster = 16, shard = 64;
    const char *peers[MAXP], *subs[MAXP];
    size_t npeers = 0, nsubs = 0;
    const char *message = NULL, *payload_hex = NULL;
    pl_p2p_muxers muxers = PL_P2P_MUXERS_DEFAULT;
    d.count = 1, d.interval_ms = 200, d.min_mesh = 1, d.linger = 1, d.lifetime = 60;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;
        if (!strcmp(a, "--verbose")) {
            verbose = true;
            continue;
        }
        if (!v) return usage();
        if (!strcmp(a, "--port"))
            ok = num(v, 65535, &port);
        else if (!strcmp(a, "--cluster"))
            ok = num(v, 65535, &cluster);
        else if (!strcmp(a, "--shard"))
            ok = num(v, 1023, &shard);
        else if (!strcmp(a, "--count"))
            ok = num(v, 100000, &d.count);
        else if (!strcmp(a, "--interval-ms"))
            ok = num(v, 600000, &d.interval_ms);
        else if (!strcmp(a, "--min-mesh"))
            ok = num(v, 100, &d.min_mesh);
        else if (!strcmp(a, "--expect"))
            ok = num(v, 10000000, &d.expect);
        else if (!strcmp(a, "--linger"))
            ok = num(v, 3600, &d.linger);
        else if (!strcmp(a, "--lifetime"))
            ok = num(v, 86400, &d.lifetime);
        else if (!strcmp(a, "--peer") && npeers < MAXP)
            peers[npeers++] = v;
        else if (!strcmp(a, "--subscribe") && nsubs < MAXP)
            subs[nsubs++] = v;
        else if (!strcmp(a, "--publish"))
            d.publish_ct = v;
        else if (!strcmp(a, "--message"))
            message = v;
        else if (!strcmp(a, "--start-after"))
            d.start_after = v;
        else if (!strcmp(a, "--payload-hex"))
            payload_hex = v;
        else if (!strcmp(a, "--muxer")) {
            if (!strcmp(v, "yamux"))
                muxers = PL_P2P_MUXERS_YAMUX;
            else if (!strcmp(v, "mplex"))
                muxers = PL_P2P_MUXERS_MPLEX;
            else if (!strcmp(v, "both"))
                muxers = PL_P2P_MUXERS_DEFAULT;
            else
                ok = false;
        } else
            ok = false;
        if (!ok) return usage();
        i++;
    }
    if (d.publish_ct && (!message == !payload_hex)) return usage();
    if (d.publish_ct && message) {
        d.payload_len = strlen(message);
        d.payload = malloc(d.payload_len + 1);
        memcpy(d.payload, message, d.payload_len);
    } else if (d.publish_ct) {
        size_t hl = strlen(payload_hex);
        d.payload = malloc(hl / 2 + 1);
        if (hl % 2 ||
            pl_hex_decode(d.payload, hl / 2 + 1, &d.payload_len, payload_hex, hl) != PL_OK)
            return usage();
    }
    if (pl_init() != PL_OK) return EXIT_FAIL;
    signal(SIGPIPE, SIG_IGN); /* a peer's reset is a write error, not a death */
    uv_loop_init(&d.loop);
    char listen[64];
    snprintf(listen, sizeof listen, "/ip4/127.0.0.1/tcp/%lu", port);
    pl_waku_node_opts o;
    pl_waku_node_opts_init(&o);
    o.peers = peers;
    o.n_peers = npeers;
    o.sharding.cluster = (uint16_t)cluster;
    o.sharding.shard = (uint16_t)shard;
    o.muxers = muxers;
    o.on_message = on_message;
    o.on_event = on_event;
    o.ud = &d;
    o.on_log = on_log;
    pl_waku_sharding_default(&o.sharding);
    o.sharding.cluster = (uint16_t)cluster;
    o.sharding.shard = (uint16_t)shard;
    pl_err e = pl_driver_new(&d.drv, &d.loop);
    if (e == PL_OK) e = pl_waku_node_new(&d.n, d.drv, &o);
    if (e == PL_OK) e = pl_waku_node_listen(d.n, listen);
    if (e != PL_OK) {
        fprintf(stderr, "waku_driver: %s\n", pl_strerror(e));
        return EXIT_FAIL;
    }
    pl_waku_pubsub_topic_format(d.topic, (uint16_t)cluster, (uint16_t)shard);
    for (size_t i = 0; i < nsubs; i++) {
        e = pl_waku_node_subscribe(d.n, subs[i]);
        if (e != PL_OK) {
            fprintf(stderr, "waku_driver: subscribe %s: %s\n", subs[i], pl_strerror(e));
            return EXIT_USAGE;
        }
    }
    char addr[1200];
    pl_waku_node_listen_addr(d.n, 0, addr, sizeof addr);
    pl_p2p_peer_id self;
    pl_waku_node_peer_id(d.n, &self);
    json_t *lo = json_object();
    json_object_set_new(lo, "event", json_string("listening"));
    json_object_set_new(lo, "addr", json_string(addr));
    json_object_set_new(lo, "peer", peer_json(&self));
    json_object_set_new(lo, "pubsub_topic", json_string(d.topic));
    json_object_set_new(lo, "impl", json_string("pairlink/" PL_VERSION_STRING));
    emit(lo);

    uv_timer_init(&d.loop, &d.tick);
    uv_timer_init(&d.loop, &d.life);
    uv_signal_init(&d.loop, &d.sigint);
    uv_signal_init(&d.loop, &d.sigterm);
    d.tick.data = d.life.data = d.sigint.data = d.sigterm.data = &d;
    uv_timer_start(&d.tick, on_tick, 10, 10);
    uv_timer_start(&d.life, on_life, d.lifetime * 1000, 0);
    uv_signal_start(&d.sigint, on_signal, SIGINT);
    uv_signal_start(&d.sigterm, on_signal, SIGTERM);
    uv_run(&d.loop, UV_RUN_DEFAULT);
    uv_loop_close(&d.loop);
    free(d.payload);
    return d.exit_code;
}
