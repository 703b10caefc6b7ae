/* SPDX-License-Identifier: Apache-2.0 */
/* The gossipsub router core's hot path: one relaying node with a mesh of 8
 * fake peers receives distinct 1 KiB WakuMessages from one of them and
 * forwards each to the other mesh peers (id = sha256, seen cache, Waku
 * validation, message cache, 7 framed SENDs). Reported as messages/s and as
 * a ratio to sha256 + WakuMessage validation alone (the floor every relay
 * pays per message). A heartbeat runs every 1000 messages. */
#include "gossipsub.pb-c.h"
#include "pairlink/hash.h"
#include "pairlink/waku.h"
#include "waku/gossip.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TOPIC "/waku/2/rs/16/64"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t make_rpc(uint8_t *out, long i, uint8_t *wm, size_t *wml) {
    uint8_t payload[1024];
    memset(payload, 'p', sizeof payload);
    memcpy(payload, &i, sizeof i);
    pl_waku_message m = {.payload = payload,
                         .payload_len = sizeof payload,
                         .has_payload = true,
                         .content_topic = "/app/1/x/proto",
                         .content_topic_len = 14};
    pl_waku_message_encode(wm, 2048, wml, &m);
    Gossip__Pb__Message msg = GOSSIP__PB__MESSAGE__INIT, *mp = &msg;
    msg.has_data = 1, msg.data.data = wm, msg.data.len = *wml;
    msg.has_topic = 1, msg.topic.data = (uint8_t *)TOPIC, msg.topic.len = strlen(TOPIC);
    Gossip__Pb__RPC rpc = GOSSIP__PB__RPC__INIT;
    rpc.n_publish = 1, rpc.publish = &mp;
    return gossip__pb__rpc__pack(&rpc, out);
}

int main(int argc, char **argv) {
    if (pl_init() != PL_OK) return 1;
    long n = argc > 1 ? atol(argv[1]) : 100000;
    pl__gossip_config c;
    pl__gossip_config_default(&c);
    c.validate = pl__waku_gossip_validate;
    int64_t now = 1000;
    pl__gossip *g;
    if (pl__gossip_new(&g, &c, now) != PL_OK) return 1;
    pl__gossip_join(g, TOPIC, now);
    for (uint64_t h = 1; h <= 8; h++) {
        char id[8] = {'p', (char)('0' + h)};
        pl__gossip_add_peer(g, h, h <= 3, (uint8_t *)id, 2, now);
        /* subscribe + graft */
        Gossip__Pb__RPC__SubOpts so = GOSSIP__PB__RPC__SUB_OPTS__INIT, *sop = &so;
        so.has_subscribe = so.subscribe = so.has_topicid = 1;
        so.topicid.data = (uint8_t *)TOPIC, so.topicid.len = strlen(TOPIC);
        Gossip__Pb__ControlGraft gr = GOSSIP__PB__CONTROL_GRAFT__INIT, *grp = &gr;
        gr.has_topicid = 1, gr.topicid = so.topicid;
        Gossip__Pb__ControlMessage cm = GOSSIP__PB__CONTROL_MESSAGE__INIT;
        cm.n_graft = 1, cm.graft = &grp;
        Gossip__Pb__RPC rpc = GOSSIP__PB__RPC__INIT;
        rpc.n_subscriptions = 1, rpc.subscriptions = &sop, rpc.control = &cm;
        uint8_t buf[256];
        size_t l = gossip__pb__rpc__pack(&rpc, buf);
        pl__gossip_recv_rpc(g, h, buf, l, now);
    }
    uint8_t *rpcs = malloc((size_t)n * 1200), *wms = malloc((size_t)n * 1200);
    size_t *lens = malloc((size_t)n * sizeof *lens), wml = 0;
    for (long i = 0; i < n; i++)
        lens[i] = make_rpc(rpcs + (size_t)i * 1200, i, wms + (size_t)i * 1200, &wml);

    pl__gossip_out o;
    size_t sends = 0;
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        if (pl__gossip_recv_rpc(g, 1, rpcs + (size_t)i * 1200, lens[i], now) != PL_OK) return 1;
        while (pl__gossip_pop(g, &o)) {
            if (o.kind == PL__GOSSIP_SEND) pl__gossip_sent(g, o.peer, o.len), sends++;
            pl__gossip_out_release(&o);
        }
        if (i % 1000 == 999) {
            now += 1000;
            pl__gossip_on_timer(g, now);
            while (pl__gossip_pop(g, &o))
                pl__gossip_out_release(&o);
        }
    }
    double t1 = now_s();
    /* the floor: id + validation of the same bytes */
    uint8_t id[32];
    double t2 = now_s();
    for (long i = 0; i < n; i++) {
        pl_sha256(id, wms + (size_t)i * 1200, wml);
        if (pl_waku_message_check(wms + (size_t)i * 1200, wml) != PL_OK) return 1;
    }
    double t3 = now_s();
    pl__gossip_stats st;
    pl__gossip_stats_get(g, &st);
    printf("gossip relay: %ld msgs of %zu B, %zu sends: %.0f msgs/s (%.2f us/msg); "
           "id+validation alone %.2f us/msg; ratio %.1f; mcache %zu msgs, seen %zu\n",
           n, wml, sends, n / (t1 - t0), (t1 - t0) / n * 1e6, (t3 - t2) / n * 1e6,
           (t1 - t0) / (t3 - t2), st.mcache_messages, st.seen);
    free(rpcs), free(wms), free(lens);
    pl__gossip_free(g);
    return 0;
}
