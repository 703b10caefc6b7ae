/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the gossipsub router core (src/waku/gossip.h) fed
 * hostile RPCs from a few peers.
 *
 * Input: a stream of frames as on a relay stream (uvarint length | RPC);
 * before each frame one byte picks the sending peer (low 2 bits) and
 * whether a heartbeat runs first (bit 2). Bytes that do not frame are fed
 * as one last RPC. The core has joined /waku/2/rs/16/64, peers 1 and 2 are
 * honest and subscribed, and a message of ours is in the cache, so GRAFT,
 * IHAVE, IWANT, IDONTWANT and publish paths are all reachable.
 * Checks, besides "no crash, no leak, no UB":
 *  - recv_rpc returns only its documented codes;
 *  - every SEND output is one frame holding one RPC that parses, and every
 *    message in it is unsigned (StrictNoSign) and on a non-empty topic;
 *  - every DELIVER is on the joined topic, of data that is a valid
 *    WakuMessage, whose id is sha256(data), never twice for one id;
 *  - DISCONNECT names PL_ERR_GOSSIP_SCORE or PL_ERR_P2P_BACKPRESSURE;
 *  - the core's state stays within its bounds (stats).
 *
 * With PL_FUZZ_WRITE_SEEDS=DIR the initializer writes seeds. */
#include "gossipsub.pb-c.h"
#include "pairlink/hash.h"
#include "pairlink/waku.h"
#include "waku/gossip.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TOPIC "/waku/2/rs/16/64"

static void check(int cond) {
    if (!cond) abort();
}

static uint64_t rs;
static void rng(void *ctx, uint8_t *buf, size_t len) {
    (void)ctx;
    for (size_t i = 0; i < len; i++) {
        rs ^= rs << 13, rs ^= rs >> 7, rs ^= rs << 17;
        buf[i] = (uint8_t)rs;
    }
}

static uint8_t delivered[64][32];
static size_t ndelivered;

static void drain(pl__gossip *g) {
    pl__gossip_out o;
    while (pl__gossip_pop(g, &o)) {
        if (o.kind == PL__GOSSIP_SEND) {
            size_t hl, bl;
            check(pl__gossip_unframe(o.data, o.len, 1u << 26, &hl, &bl) == PL_OK);
            check(hl + bl == o.len);
            Gossip__Pb__RPC *r = gossip__pb__rpc__unpack(NULL, bl, o.data + hl);
            check(r != NULL);
            for (size_t i = 0; i < r->n_publish; i++) {
                Gossip__Pb__Message *m = r->publish[i];
                check(!m->has_from && !m->has_seqno && !m->has_signature && !m->has_key);
                check(m->has_topic && m->topic.len > 0);
            }
            gossip__pb__rpc__free_unpacked(r, NULL);
            pl__gossip_sent(g, o.peer, o.len);
        } else if (o.kind == PL__GOSSIP_DELIVER) {
            check(strcmp(o.topic, TOPIC) == 0);
            check(pl_waku_message_check(o.data, o.len) == PL_OK);
            uint8_t id[32];
            pl_sha256(id, o.data, o.len);
            check(memcmp(id, o.id, 32) == 0);
            for (size_t i = 0; i < ndelivered; i++)
                check(memcmp(delivered[i], id, 32) != 0);
            if (ndelivered < 64) memcpy(delivered[ndelivered++], id, 32);
        } else if (o.kind == PL__GOSSIP_DISCONNECT) {
            check(o.reason == PL_ERR_GOSSIP_SCORE || o.reason == PL_ERR_P2P_BACKPRESSURE);
        }
        pl__gossip_out_release(&o);
    }
}

static ProtobufCBinaryData B(const void *p, size_t n) {
    ProtobufCBinaryData b = {n, (uint8_t *)p};
    return b;
}

static size_t frame(uint8_t *out, uint8_t sel, const Gossip__Pb__RPC *rpc) {
    size_t body = gossip__pb__rpc__get_packed_size(rpc);
    out[0] = sel;
    size_t hl = pl__gossip_frame_header(out + 1, body);
    gossip__pb__rpc__pack(rpc, out + 1 + hl);
    return 1 + hl + body;
}

static size_t our_message(uint8_t *buf, size_t cap, const char *text) {
    pl_waku_message m = {.payload = (const uint8_t *)text,
                         .payload_len = strlen(text),
                         .has_payload = true,
                         .content_topic = "/app/1/x/proto",
                         .content_topic_len = 14};
    size_t n = 0;
    pl_waku_message_encode(buf, cap, &n, &m);
    return n;
}

static void write_seeds(const char *dir) {
    static uint8_t out[8192];
    uint8_t msg[128], id[32];
    size_t ml = our_message(msg, sizeof msg, "from a peer");
    pl_sha256(id, msg, ml);
    size_t n = 0;
    Gossip__Pb__RPC__SubOpts so = GOSSIP__PB__RPC__SUB_OPTS__INIT, *sop = &so;
    so.has_subscribe = 1, so.subscribe = 1, so.has_topicid = 1, so.topicid = B(TOPIC, 16);
    Gossip__Pb__Message m = GOSSIP__PB__MESSAGE__INIT, *mp = &m;
    m.has_data = 1, m.data = B(msg, ml), m.has_topic = 1, m.topic = B(TOPIC, 16);
    Gossip__Pb__ControlGraft gr = GOSSIP__PB__CONTROL_GRAFT__INIT, *grp = &gr;
    gr.has_topicid = 1, gr.topicid = B(TOPIC, 16);
    Gossip__Pb__ControlPrune pr = GOSSIP__PB__CONTROL_PRUNE__INIT, *prp = &pr;
    pr.has_topicid = 1, pr.topicid = B(TOPIC, 16), pr.has_backoff = 1, pr.backoff = 60;
    ProtobufCBinaryData ids[1] = {B(id, 32)};
    Gossip__Pb__ControlIHave ih = GOSSIP__PB__CONTROL_IHAVE__INIT, *ihp = &ih;
    ih.has_topicid = 1, ih.topicid = B(TOPIC, 16), ih.n_messageids = 1, ih.messageids = ids;
    Gossip__Pb__ControlIWant iw = GOSSIP__PB__CONTROL_IWANT__INIT, *iwp = &iw;
    iw.n_messageids = 1, iw.messageids = ids;
    Gossip__Pb__ControlIDontWant dw = GOSSIP__PB__CONTROL_IDONT_WANT__INIT, *dwp = &dw;
    dw.n_messageids = 1, dw.messageids = ids;
    Gossip__Pb__ControlMessage cm = GOSSIP__PB__CONTROL_MESSAGE__INIT;
    Gossip__Pb__RPC rpc = GOSSIP__PB__RPC__INIT;

    rpc.n_subscriptions = 1, rpc.subscriptions = &sop;
    n = frame(out, 3, &rpc);
    cm.n_graft = 1, cm.graft = &grp;
    rpc.control = &cm;
    n += frame(out + n, 3, &rpc);
    char path[4096];
    snprintf(path, sizeof path, "%s/seed-subscribe-graft", dir);
    FILE *f = fopen(path, "wb");
    if (f) fwrite(out, 1, n, f), fclose(f);

    struct {
        const char *name;
        int what;
    } seeds[] = {{"seed-publish", 1}, {"seed-signed", 2},    {"seed-ihave", 3},
                 {"seed-iwant", 4},   {"seed-idontwant", 5}, {"seed-prune-graft", 6},
                 {"seed-all", 7}};
    for (size_t s = 0; s < sizeof seeds / sizeof *seeds; s++) {
        Gossip__Pb__ControlMessage c2 = GOSSIP__PB__CONTROL_MESSAGE__INIT;
        Gossip__Pb__RPC r2 = GOSSIP__PB__RPC__INIT;
        uint8_t seqno[8] = {1};
        Gossip__Pb__Message sm = m, *smp = &sm;
        int w = seeds[s].what;
        if (w == 1 || w == 7) r2.n_publish = 1, r2.publish = &mp;
        if (w == 2) {
            sm.has_seqno = 1, sm.seqno = B(seqno, 8), sm.has_from = 1, sm.from = B("x", 1);
            r2.n_publish = 1, r2.publish = &smp;
        }
        if (w == 3 || w == 7) c2.n_ihave = 1, c2.ihave = &ihp;
        if (w == 4 || w == 7) c2.n_iwant = 1, c2.iwant = &iwp;
        if (w == 5 || w == 7) c2.n_idontwant = 1, c2.idontwant = &dwp;
        if (w == 6 || w == 7) c2.n_prune = 1, c2.prune = &prp, c2.n_graft = 1, c2.graft = &grp;
        if (w >= 3) r2.control = &c2;
        size_t k = frame(out, (uint8_t)(w & 3), &r2);
        if (w == 6) k += frame(out + k, 4 | 1, &r2); /* graft again after a heartbeat */
        snprintf(path, sizeof path, "%s/%s", dir, seeds[s].name);
        f = fopen(path, "wb");
        if (f) fwrite(out, 1, k, f), fclose(f);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    if (pl_init() != PL_OK) abort();
    const char *dir = getenv("PL_FUZZ_WRITE_SEEDS");
    if (dir) write_seeds(dir);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    rs = 0x9e3779b97f4a7c15ull;
    ndelivered = 0;
    pl__gossip_config c;
    pl__gossip_config_default(&c);
    c.rng = rng;
    c.validate = pl__waku_gossip_validate;
    c.max_rpc_bytes = 1u << 20;
    c.queue_hard_bytes = 1u << 20, c.queue_soft_bytes = 1u << 18;
    int64_t now = 1000;
    pl__gossip *g;
    check(pl__gossip_new(&g, &c, now) == PL_OK);
    check(pl__gossip_join(g, TOPIC, now) == PL_OK);
    for (uint64_t h = 1; h <= 3; h++) {
        char pid[8] = {'p', (char)('0' + h)};
        check(pl__gossip_add_peer(g, h, h == 1, (const uint8_t *)pid, 2, now) == PL_OK);
    }
    uint8_t msg[64];
    size_t ml = our_message(msg, sizeof msg, "ours");
    check(pl__gossip_publish(g, TOPIC, msg, ml, now, NULL, NULL) == PL_OK);
    drain(g);

    size_t off = 0;
    while (off < size) {
        uint8_t sel = data[off++];
        uint64_t peer = (sel & 3) ? (sel & 3) : 3;
        if (sel & 4) {
            now += 1000;
            pl__gossip_on_timer(g, now);
            drain(g);
        }
        size_t hl = 0, bl = 0;
        pl_err fe = pl__gossip_unframe(data + off, size - off, c.max_rpc_bytes, &hl, &bl);
        const uint8_t *rpc = data + off;
        size_t len = size - off;
        if (fe == PL_OK) {
            rpc = data + off + hl;
            len = bl;
            off += hl + bl;
        } else {
            off = size;
        }
        pl_err e = pl__gossip_recv_rpc(g, peer, rpc, len, now);
        check(e == PL_OK || e == PL_ERR_TOO_LARGE || e == PL_ERR_P2P_PROTOBUF ||
              e == PL_ERR_GOSSIP_LIMIT || e == PL_ERR_GOSSIP_SCORE || e == PL_ERR_GOSSIP_SIGNED ||
              e == PL_ERR_GOSSIP_INVALID || e == PL_ERR_GOSSIP_BACKOFF ||
              e == PL_ERR_GOSSIP_PROTOCOL || e == PL_ERR_NOMEM);
        drain(g);
    }
    now += 1000;
    pl__gossip_on_timer(g, now);
    drain(g);
    pl__gossip_stats st;
    pl__gossip_stats_get(g, &st);
    check(st.peers == 3 && st.topics <= c.max_topics && st.seen <= c.seen_max);
    check(st.mcache_messages <= c.mcache_max_messages && st.mcache_bytes <= c.mcache_max_bytes);
    check(st.promises <= c.max_promises && st.outputs == 0);
    pl__gossip_free(g);
    return 0;
}
