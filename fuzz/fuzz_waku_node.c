/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the Waku node's policy core (src/waku/node.h) driven by
 * a script of connection events, metadata answers and requests, relay
 * RPCs, time, and application calls, as a hostile network and a careless
 * application could produce them.
 *
 * Input: records. One byte b: op = b & 15, connection = 1 + (b >> 4 & 3);
 * then per op: 0 up (1 byte: bit 0 inbound, bits 1-2 peer index), 1 down,
 * 2 metadata answer (1 length byte, 255 = none, then bytes), 3 metadata
 * request (length byte, bytes), 4 relay opened, 5 relay failed, 6 relay RPC
 * (2-byte length, bytes), 7 time (1 byte x 50 ms, then the timer if due),
 * 8 publish (topic byte, length byte, payload), 9 subscribe / 10
 * unsubscribe (topic byte), 11 dial result (1 byte: 0 failed, else this
 * connection), 12 sent (2 bytes), 13 drop, 14 our own metadata as the
 * answer, 15 a well-formed RPC (topic byte, length byte, payload): a
 * subscription and a message carrying a WakuMessage. Peer 0 is the
 * bootstrap peer.
 * Checks, besides "no crash, no leak, no UB":
 *  - outputs name connections that are up (DIAL / PUBLISHED /
 *    PUBLISH_FAILED excepted); SEND only to relay peers, one frame holding
 *    one RPC that parses, with unsigned messages;
 *  - MESSAGE only for subscribed content topics, on the pubsub topic they
 *    map to, never the keep-alive topic, with a valid message and its hash;
 *  - PEER_DOWN only after PEER_UP; pl__wnode_relay_peers equals the peers
 *    up; REFUSED and DISCONNECT carry an error;
 *  - every call returns a documented code; the queue stays within its
 *    bound; after on_timer(now) the next deadline is later than now.
 *
 * With PL_FUZZ_WRITE_SEEDS=DIR the initializer writes seeds. */
#include "gossipsub.pb-c.h"
#include "pairlink/hash.h"
#include "pairlink/waku.h"
#include "waku/gossip.h"
#include "waku/metadata.h"
#include "waku/node.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TOPIC "/waku/2/rs/16/64"
#define NCONN 5 /* handles 1..4 */
#define QMAX 4

static void check(int cond) {
    if (!cond) abort();
}

static const char *const topics[] = {"/app/1/chat/proto", "/app/1/other/proto",
                                     PL__WNODE_KEEPALIVE_TOPIC, "not/a/topic"};

static uint64_t rs;
static void rng(void *ctx, uint8_t *buf, size_t len) {
    (void)ctx;
    for (size_t i = 0; i < len; i++) {
        rs ^= rs << 13, rs ^= rs >> 7, rs ^= rs << 17;
        buf[i] = (uint8_t)rs;
    }
}

typedef struct harness {
    pl__wnode *w;
    int64_t now;
    bool up[NCONN], relay[NCONN], closing[NCONN], was_relay[NCONN];
    bool subscribed[4];
    pl_p2p_peer_id peers[4], self;
} harness;

static void fake_id(pl_p2p_peer_id *id, int i) {
    memset(id, 0, sizeof *id);
    id->len = 38;
    id->bytes[1] = 0x24;
    id->bytes[37] = (uint8_t)(i + 1);
}

static size_t relay_count(const harness *h) {
    size_t k = 0;
    for (int i = 1; i < NCONN; i++)
        k += h->relay[i];
    return k;
}

static void conn_gone(harness *h, uint64_t c, pl_err err);

static void drain(harness *h) {
    pl__wnode_out o;
    while (pl__wnode_pop(h->w, &o)) {
        /* what a connection's end reports may follow conn_down */
        bool after = o.kind == PL__WNODE_PEER_DOWN || o.kind == PL__WNODE_REFUSED ||
                     o.kind == PL__WNODE_PRUNED;
        bool named = o.kind != PL__WNODE_DIAL && o.kind != PL__WNODE_PUBLISHED &&
                     o.kind != PL__WNODE_PUBLISH_FAILED && o.kind != PL__WNODE_MESSAGE;
        if (named) check(o.conn >= 1 && o.conn < NCONN && (h->up[o.conn] || after));
        switch (o.kind) {
        case PL__WNODE_DIAL:
            check(o.boot == 0 && o.addr != NULL);
            break;
        case PL__WNODE_SEND: {
            check(h->relay[o.conn]);
            size_t hl, bl;
            check(pl__gossip_unframe(o.data, o.len, 1u << 26, &hl, &bl) == PL_OK);
            check(hl + bl == o.len);
            Gossip__Pb__RPC *r = gossip__pb__rpc__unpack(NULL, bl, o.data + hl);
            check(r != NULL);
            for (size_t i = 0; i < r->n_publish; i++)
                check(!r->publish[i]->has_from && !r->publish[i]->has_signature);
            gossip__pb__rpc__free_unpacked(r, NULL);
            pl__wnode_sent(h->w, o.conn, o.len);
            break;
        }
        case PL__WNODE_MESSAGE: {
            size_t k = 0;
            while (k < 4 && !(strlen(topics[k]) == o.msg.content_topic_len &&
                              !memcmp(topics[k], o.msg.content_topic, o.msg.content_topic_len)))
                k++;
            check(k < 4 && h->subscribed[k] && k != 2);
            check(strcmp(o.pubsub_topic, TOPIC) == 0);
            uint8_t hh[PL_WAKU_HASH_BYTES];
            pl_waku_message_hash(hh, o.pubsub_topic, &o.msg);
            check(memcmp(hh, o.hash, sizeof hh) == 0);
            check(pl_waku_message_validate(&o.msg, 0) == PL_OK);
            break;
        }
        case PL__WNODE_PEER_UP:
            check(!h->relay[o.conn] && !h->was_relay[o.conn]);
            h->relay[o.conn] = h->was_relay[o.conn] = true;
            break;
        case PL__WNODE_PEER_DOWN:
            check(h->was_relay[o.conn]);
            h->was_relay[o.conn] = false;
            break;
        case PL__WNODE_DISCONNECT:
            check(o.err != PL_OK);
            h->relay[o.conn] = false;
            h->closing[o.conn] = true;
            break;
        case PL__WNODE_REFUSED:
            check(o.err != PL_OK);
            break;
        default:
            break;
        }
        pl__wnode_out_release(&o);
    }
    /* the runtime closes what the core asked it to */
    for (int i = 1; i < NCONN; i++)
        if (h->closing[i] && h->up[i]) conn_gone(h, (uint64_t)i, PL_ERR_CLOSED);
    check(pl__wnode_relay_peers(h->w) == relay_count(h));
    check(pl__wnode_queued(h->w) <= QMAX);
}

static void conn_gone(harness *h, uint64_t c, pl_err err) {
    h->up[c] = false;
    h->relay[c] = false;
    h->closing[c] = false;
    pl__wnode_conn_down(h->w, c, err, h->now);
}

static size_t waku_bytes(uint8_t *out, size_t cap, const char *ct, const uint8_t *p, size_t n) {
    pl_waku_message m = {.payload = p,
                         .payload_len = n,
                         .has_payload = true,
                         .content_topic = ct,
                         .content_topic_len = strlen(ct)};
    size_t len = 0;
    if (pl_waku_message_encode(out, cap, &len, &m) != PL_OK) return 0;
    return len;
}

static size_t good_rpc(uint8_t *out, size_t cap, const char *ct, const uint8_t *p, size_t n) {
    uint8_t msg[512];
    size_t ml = waku_bytes(msg, sizeof msg, ct, p, n);
    Gossip__Pb__RPC__SubOpts so = GOSSIP__PB__RPC__SUB_OPTS__INIT, *sop = &so;
    so.has_subscribe = so.subscribe = 1;
    so.has_topicid = 1;
    so.topicid.data = (uint8_t *)TOPIC;
    so.topicid.len = strlen(TOPIC);
    Gossip__Pb__Message m = GOSSIP__PB__MESSAGE__INIT, *mp = &m;
    m.has_data = 1;
    m.data.data = msg;
    m.data.len = ml;
    m.has_topic = 1;
    m.topic = so.topicid;
    Gossip__Pb__RPC rpc = GOSSIP__PB__RPC__INIT;
    rpc.n_subscriptions = 1, rpc.subscriptions = &sop;
    if (ml) rpc.n_publish = 1, rpc.publish = &mp;
    size_t need = gossip__pb__rpc__get_packed_size(&rpc);
    if (need > cap) return 0;
    return gossip__pb__rpc__pack(&rpc, out);
}

static bool pub_err_ok(pl_err e) {
    return e == PL_OK || e == PL_ERR_WAKU_TOPIC || e == PL_ERR_BAD_UTF8 ||
           e == PL_ERR_UNSUPPORTED || e == PL_ERR_WAKU_MESSAGE || e == PL_ERR_TOO_LARGE ||
           e == PL_ERR_EXISTS || e == PL_ERR_WAKU_QUEUE_FULL || e == PL_ERR_STATE;
}

static void run(const uint8_t *d, size_t size) {
    static harness h;
    memset(&h, 0, sizeof h);
    rs = 0x9e3779b97f4a7c15ull;
    h.now = 1000000;
    for (int i = 0; i < 4; i++)
        fake_id(&h.peers[i], i + 1);
    fake_id(&h.self, 0);
    char boot[256], pid[PL_P2P_PEER_ID_TEXT_SIZE];
    check(pl_p2p_peer_id_format(pid, &h.peers[0]) == PL_OK);
    snprintf(boot, sizeof boot, "/ip4/127.0.0.1/tcp/60000/p2p/%s", pid);
    const char *boots[] = {boot};
    pl__gossip_config gc;
    pl__gossip_config_default(&gc);
    gc.validate = pl__waku_gossip_validate;
    gc.rng = rng;
    pl__wnode_config c;
    pl__wnode_config_default(&c);
    c.self = h.self;
    c.bootstrap = boots;
    c.n_bootstrap = 1;
    c.queue_max = QMAX;
    c.publish_ttl_ms = 5000;
    c.gossip = &gc;
    check(pl__wnode_new(&h.w, &c, h.now) == PL_OK);
    drain(&h);

    size_t i = 0;
    while (i < size) {
        uint8_t b = d[i++];
        int op = b & 15;
        uint64_t cn = 1 + ((b >> 4) & 3);
        size_t len;
        switch (op) {
        case 0: {
            if (i >= size) goto done;
            uint8_t f = d[i++];
            if (!h.up[cn]) {
                h.up[cn] = true;
                pl__wnode_conn_up(h.w, cn, &h.peers[(f >> 1) & 3], f & 1, h.now);
            }
            break;
        }
        case 1:
            if (h.up[cn]) conn_gone(&h, cn, PL_ERR_CLOSED);
            break;
        case 2:
        case 3: {
            if (i >= size) goto done;
            len = d[i++];
            const uint8_t *m = len == 255 ? NULL : d + i;
            if (len == 255) len = 0;
            if (len > size - i) len = size - i;
            i += len;
            if (!h.up[cn]) break;
            pl_err e = op == 2 ? pl__wnode_metadata_answer(h.w, cn, m, len, h.now)
                               : pl__wnode_metadata_request(h.w, cn, m ? m : d, len, h.now);
            check(e == PL_OK || e == PL_ERR_STATE || e == PL_ERR_WAKU_METADATA ||
                  e == PL_ERR_WAKU_CLUSTER);
            break;
        }
        case 4:
            if (h.up[cn]) pl__wnode_relay_opened(h.w, cn, h.now);
            break;
        case 5:
            if (h.up[cn]) pl__wnode_relay_failed(h.w, cn, PL_ERR_P2P_STREAM_RESET, h.now);
            break;
        case 6: {
            if (size - i < 2) goto done;
            len = (size_t)d[i] << 8 | d[i + 1];
            i += 2;
            if (len > size - i) len = size - i;
            if (h.up[cn]) {
                bool ready = pl__wnode_relay_ready(h.w, cn);
                pl_err e = pl__wnode_relay_rpc(h.w, cn, d + i, len, h.now);
                check(ready ? e != PL_ERR_STATE : e == PL_ERR_STATE);
            }
            i += len;
            break;
        }
        case 7:
            if (i >= size) goto done;
            h.now += (int64_t)d[i++] * 50;
            if (pl__wnode_next_deadline(h.w) <= h.now) {
                pl__wnode_on_timer(h.w, h.now);
                check(pl__wnode_next_deadline(h.w) > h.now);
            }
            break;
        case 8: {
            if (size - i < 2) goto done;
            const char *t = topics[d[i] & 3];
            len = d[i + 1];
            i += 2;
            if (len > size - i) len = size - i;
            pl_waku_message m = {.payload = d + i,
                                 .payload_len = len,
                                 .has_payload = true,
                                 .content_topic = t,
                                 .content_topic_len = strlen(t),
                                 .timestamp = h.now * 1000000};
            i += len;
            pl__wnode_pub r;
            pl_err e = pl__wnode_publish(h.w, &m, h.now, &r);
            check(pub_err_ok(e));
            if (e != PL_OK) check(r.id == 0 && !r.queued);
            break;
        }
        case 9:
        case 10: {
            if (i >= size) goto done;
            int k = d[i++] & 3;
            const char *t = topics[k];
            pl_err e = op == 9 ? pl__wnode_subscribe(h.w, t, strlen(t), h.now)
                               : pl__wnode_unsubscribe(h.w, t, strlen(t), h.now);
            if (e == PL_OK) h.subscribed[k] = op == 9;
            check(e == PL_OK || e == PL_ERR_EXISTS || e == PL_ERR_NOT_FOUND ||
                  e == PL_ERR_WAKU_TOPIC);
            break;
        }
        case 11:
            if (i >= size) goto done;
            /* acting on a DIAL: only while one is outstanding is it heard */
            pl__wnode_dialing(h.w, 0, d[i++] ? cn : 0, h.now);
            break;
        case 12:
            if (size - i < 2) goto done;
            pl__wnode_sent(h.w, cn, (size_t)d[i] << 8 | d[i + 1]);
            i += 2;
            break;
        case 13:
            if (h.up[cn]) pl__wnode_drop(h.w, cn, PL_ERR_GOSSIP_PROTOCOL, h.now);
            break;
        case 14:
            if (h.up[cn]) {
                uint8_t m[PL__WAKU_METADATA_MAX_BYTES];
                size_t ml = 0;
                check(pl__wnode_metadata_ours(h.w, m, sizeof m, &ml) == PL_OK);
                (void)pl__wnode_metadata_answer(h.w, cn, m, ml, h.now);
            }
            break;
        case 15: {
            if (size - i < 2) goto done;
            const char *t = topics[d[i] & 3];
            len = d[i + 1];
            i += 2;
            if (len > size - i) len = size - i;
            uint8_t rpc[1024];
            size_t rl = good_rpc(rpc, sizeof rpc, t, d + i, len);
            i += len;
            if (h.up[cn] && pl__wnode_relay_ready(h.w, cn))
                (void)pl__wnode_relay_rpc(h.w, cn, rpc, rl, h.now);
            break;
        }
        }
        drain(&h);
    }
done:
    pl__wnode_close(h.w);
    pl__wnode_fail_queued(h.w, PL_ERR_CLOSED);
    drain(&h);
    check(pl__wnode_queued(h.w) == 0);
    pl__wnode_free(h.w);
}

static void write_seed(const char *dir, const char *name, const uint8_t *b, size_t n) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f) fwrite(b, 1, n, f), fclose(f);
}

static void write_seeds(const char *dir) {
    /* a relay peer: up, our metadata, relay open, its subscription and a
     * message on a subscribed topic, a publish, time */
    static const uint8_t relay[] = {
        0x09, 0x00,                                /* subscribe topic 0 */
        0x10, 0x00,                                /* conn 2 up, outbound, peer 0 */
        0x1e,                                      /* our metadata as its answer */
        0x14,                                      /* relay opened */
        0x1f, 0x00, 0x05, 'h', 'e', 'l', 'l', 'o', /* RPC: sub + message */
        0x1f, 0x02, 0x04, 'p', 'i', 'n', 'g',      /* keep-alive */
        0x1f, 0x01, 0x03, 'o', 't', 'h',           /* not subscribed */
        0x08, 0x00, 0x03, 'o', 'u', 't',           /* publish */
        0x07, 0x20,                                /* 1.6 s */
        0x11,                                      /* down */
    };
    write_seed(dir, "seed-relay", relay, sizeof relay);
    /* a queue: publish with nobody, then a peer, then expiry of others */
    static const uint8_t queue[] = {
        0x08, 0x00, 0x01, 'a',  0x08, 0x00, 0x01, 'b',  0x08, 0x00, 0x01, 'b', /* duplicate */
        0x08, 0x03, 0x01, 'x',                                                 /* bad topic */
        0x20, 0x02, 0x2e, 0x24, 0x2f, 0x00, 0x01, 'z',                         /* conn 3 */
        0x08, 0x00, 0x01, 'c',  0x21, 0x08, 0x00, 0x01, 'd',  0x07, 0xff,      /* expiry */
    };
    write_seed(dir, "seed-queue", queue, sizeof queue);
    /* metadata: another cluster, junk, none, a request of another cluster */
    uint8_t meta[128];
    size_t n = 0;
    pl__waku_metadata *md = calloc(1, sizeof *md);
    md->has_cluster = true;
    md->cluster = 1;
    md->n_shards = 1;
    md->shards[0] = 64;
    uint8_t enc[64];
    size_t el = 0;
    pl__waku_metadata_encode(enc, sizeof enc, &el, md);
    free(md);
    meta[n++] = 0x00, meta[n++] = 0x00; /* conn 1 up */
    meta[n++] = 0x02, meta[n++] = (uint8_t)el;
    memcpy(meta + n, enc, el), n += el;
    meta[n++] = 0x10, meta[n++] = 0x03; /* conn 2 up inbound, peer 1 */
    meta[n++] = 0x12, meta[n++] = 0x02, meta[n++] = 0xff, meta[n++] = 0xff;
    meta[n++] = 0x20, meta[n++] = 0x05; /* conn 3 up, peer 2 */
    meta[n++] = 0x22, meta[n++] = 0xff; /* no answer */
    meta[n++] = 0x30, meta[n++] = 0x07; /* conn 4 */
    meta[n++] = 0x33, meta[n++] = (uint8_t)el;
    memcpy(meta + n, enc, el), n += el;
    meta[n++] = 0x07, meta[n++] = 0xc8; /* 10 s: time-outs */
    write_seed(dir, "seed-metadata", meta, n);
    /* bootstrap dials: fail, wait, connect, duplicates both ways */
    static const uint8_t boot[] = {
        0x07, 0x01, 0x0b, 0x00, 0x07, 0x28, 0x0b, 0x01, 0x00, 0x00, /* conn 1 = the dial */
        0x0e, 0x04, 0x10, 0x01,                                     /* conn 2: same peer, inbound */
        0x20, 0x00, /* conn 3: same peer, outbound */
        0x01, 0x07, 0x40, 0x07, 0xff,
    };
    write_seed(dir, "seed-bootstrap", boot, sizeof boot);
    /* junk RPCs on a relay peer */
    static const uint8_t junk[] = {0x30, 0x04, 0x3e, 0x34, 0x36, 0x00, 0x03, 0x0f,
                                   0x01, 0x02, 0x30, 0x04, 0x3e, 0x34, 0x36, 0x00,
                                   0x02, 0x12, 0x00, 0x3d, 0x3c, 0xff, 0xff};
    write_seed(dir, "seed-junk", junk, sizeof junk);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    if (pl_init() != PL_OK) abort();
    const char *dir = getenv("PL_FUZZ_WRITE_SEEDS");
    if (dir) write_seeds(dir);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    run(data, size);
    return 0;
}
