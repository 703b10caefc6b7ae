/* SPDX-License-Identifier: Apache-2.0 */
/* The Waku relay node's policy, without I/O and without a clock: which
 * connections become relay peers, the metadata exchange and the cluster
 * check, content topics and their pubsub topics, the publish queue, the
 * bootstrap peers and their reconnection, and the gossipsub router core
 * (gossip.h) it owns. src/runtime/waku_node.c drives it on a libp2p host;
 * include/pairlink/waku_node.h is the public face.
 *
 * Contract with the runtime
 * -------------------------
 * Connections are named by the host's connection ids (any non-zero
 * uint64_t); they are also the gossip core's peer handles. Inputs, each
 * with the current time in ms (the host's clock):
 *   pl__wnode_dialing       a DIAL output was acted upon: the new
 *                           connection id, or 0 when the dial failed at once
 *   pl__wnode_conn_up       CONNECTED (secure, multiplexed): peer id,
 *                           direction
 *   pl__wnode_conn_down     DISCONNECTED, for every connection id the core
 *                           may know (dials that never connected included)
 *   pl__wnode_metadata_answer   our metadata request's answer, or none
 *   pl__wnode_metadata_request  a peer's metadata request (inbound stream)
 *   pl__wnode_relay_opened / _relay_failed   our relay stream to the peer
 *   pl__wnode_relay_rpc     one RPC read from any relay stream of the peer,
 *                           only while pl__wnode_relay_ready() (until then
 *                           leave the bytes in the stream: backpressure)
 *   pl__wnode_sent          bytes of SEND outputs the stream has taken
 *   pl__wnode_drop          the runtime wants a connection gone (framing
 *                           error on a relay stream, ...)
 *   pl__wnode_subscribe / _unsubscribe / _publish   the application
 *   pl__wnode_on_timer      when now >= pl__wnode_next_deadline()
 * Outputs, polled with pl__wnode_pop after every input, in order:
 *   DIAL           boot (index), addr: dial it, then call pl__wnode_dialing
 *   OPEN_METADATA  conn: open /vac/waku/metadata/1.0.0, write the request
 *                  (pl__wnode_metadata_ours), read one answer
 *   OPEN_RELAY     conn: open the long-lived /vac/waku/relay/2.0.0 stream
 *   SEND           conn, data/len: one framed RPC for that relay stream
 *   DISCONNECT     conn, err: close the connection with that reason (the
 *                  core has already stopped using it)
 *   MESSAGE        msg (decoded, owned), pubsub_topic, hash, conn, peer:
 *                  a message on a subscribed content topic
 *   PUBLISHED      publish_id, sent_to: a queued message went out
 *   PUBLISH_FAILED publish_id, err, msg: a queued message was given up
 *                  (PL_ERR_WAKU_NO_PEERS after the TTL, PL_ERR_CLOSED,
 *                  PL_ERR_EXISTS: the same bytes were seen meanwhile)
 *   PEER_UP / PEER_DOWN  conn, peer, inbound (DOWN: err): relay with the
 *                  peer started / ended (DOWN only after UP)
 *   REFUSED        conn, peer, err: a connection dropped before it became
 *                  a relay peer (another cluster, no metadata, duplicate)
 *   GRAFTED / PRUNED  conn, pubsub_topic: mesh changes
 *
 * Policy, as nwaku and js-libp2p behave:
 * - Every connection, inbound or outbound, is asked for its metadata; a
 *   peer that does not answer within metadata_timeout_ms, answers
 *   malformed or without a cluster, or names another cluster is
 *   disconnected (REFUSED). A peer whose own request names another
 *   cluster is disconnected at once. Only then is the relay stream opened.
 * - Two connections to one peer: when their directions differ, the one
 *   dialled by the larger peer id goes (both ends decide alike); two
 *   outbound ones: the newer goes; two inbound ones are left to the dialer.
 * - Bootstrap peers are dialled at start and redialled after a failure or a
 *   disconnection, after reconnect_min_ms doubling up to reconnect_max_ms;
 *   the delay returns to the minimum once the peer became a relay peer.
 *   A bootstrap peer connected inbound (same peer id) is not dialled.
 * - Publishing with no relay peer subscribed to the message's pubsub topic
 *   (with publish_needs_mesh, on a relayed topic: while its mesh is empty)
 *   queues the message (bounded by count and bytes) until one is, for at
 *   most publish_ttl_ms.
 * - Deliveries are the messages on subscribed content topics, on the
 *   pubsub topic that content topic maps to; js-waku's keep-alives
 *   (content topic /relay-ping/1/ping/null) are dropped.
 *
 * Not thread-safe; private to the library. */
#ifndef PAIRLINK_WAKU_NODE_CORE_H
#define PAIRLINK_WAKU_NODE_CORE_H

#include "pairlink/common.h"
#include "pairlink/p2p.h"
#include "pairlink/waku.h"
#include "waku/gossip.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PL__WNODE_MAX_BOOTSTRAP 64
#define PL__WNODE_MAX_SHARDS 64         /* relayed shards given at start */
#define PL__WNODE_CONTENT_TOPIC_MAX 512 /* bytes of a content topic we accept */
#define PL__WNODE_KEEPALIVE_TOPIC "/relay-ping/1/ping/null"

#define PL__WNODE_DEF_METADATA_TIMEOUT_MS 5000
#define PL__WNODE_DEF_RECONNECT_MIN_MS 1000
#define PL__WNODE_DEF_RECONNECT_MAX_MS 30000
#define PL__WNODE_DEF_PUBLISH_TTL_MS 30000
#define PL__WNODE_DEF_QUEUE_MAX 256
#define PL__WNODE_DEF_QUEUE_BYTES (8u << 20)
#define PL__WNODE_DEF_MAX_CONTENT_TOPICS 1024
#define PL__WNODE_DEF_MAX_CONNS 1024

typedef struct pl__wnode_config {
    pl_p2p_peer_id self;          /* our peer id (duplicate connections) */
    pl_waku_sharding sharding;    /* where content topics go */
    const uint16_t *shards;       /* shards relayed from the start (cluster of sharding); */
    size_t n_shards;              /* none: the static shard, or nothing under autosharding */
    const char *const *bootstrap; /* multiaddrs, copied; /p2p/ recommended */
    size_t n_bootstrap;
    int64_t metadata_timeout_ms, reconnect_min_ms, reconnect_max_ms, publish_ttl_ms;
    size_t queue_max, queue_bytes, max_content_topics, max_conns;
    /* Queue publishes on a relayed topic until its mesh has a peer, not
     * only until a peer is subscribed: answers come back through the mesh,
     * so a request sent before it formed would have its answer lost. */
    bool publish_needs_mesh;
    const pl__gossip_config *gossip; /* NULL: pl__gossip_config_default + the Waku validator */
} pl__wnode_config;

typedef enum pl__wnode_out_kind {
    PL__WNODE_DIAL = 1,
    PL__WNODE_OPEN_METADATA,
    PL__WNODE_OPEN_RELAY,
    PL__WNODE_SEND,
    PL__WNODE_DISCONNECT,
    PL__WNODE_MESSAGE,
    PL__WNODE_PUBLISHED,
    PL__WNODE_PUBLISH_FAILED,
    PL__WNODE_PEER_UP,
    PL__WNODE_PEER_DOWN,
    PL__WNODE_REFUSED,
    PL__WNODE_GRAFTED,
    PL__WNODE_PRUNED,
} pl__wnode_out_kind;

typedef struct pl__wnode_out {
    pl__wnode_out_kind kind;
    uint64_t conn;
    pl_p2p_peer_id peer; /* len 0 when not known */
    bool inbound;
    size_t boot;      /* DIAL */
    const char *addr; /* DIAL: valid while the core lives */
    uint8_t *data;    /* SEND: owned */
    size_t len;
    pl_waku_message msg; /* MESSAGE, PUBLISH_FAILED: decoded, owned (pl__wnode_out_release) */
    char pubsub_topic[PL__GOSSIP_TOPIC_MAX + 1];
    uint8_t hash[PL_WAKU_HASH_BYTES]; /* MESSAGE */
    uint64_t publish_id;              /* PUBLISHED, PUBLISH_FAILED */
    size_t sent_to;                   /* PUBLISHED */
    pl_err err;
} pl__wnode_out;

void pl__wnode_out_release(pl__wnode_out *o);

typedef struct pl__wnode pl__wnode;

/* Fill c with the defaults (cluster 16, static shard 64, no bootstrap). */
void pl__wnode_config_default(pl__wnode_config *c);

/* Errors: PL_ERR_INVALID_ARG (a shard above 65535 in autosharding's
 * range, more than PL__WNODE_MAX_SHARDS shards or PL__WNODE_MAX_BOOTSTRAP
 * peers, negative times, reconnect_min above max, a gossip config
 * pl__gossip_new refuses), PL_ERR_P2P_MULTIADDR / PL_ERR_P2P_PEER_ID /
 * PL_ERR_P2P_TRANSPORT (a bootstrap address), PL_ERR_NOMEM. Bootstrap
 * dials are due at once (next_deadline == now). */
pl_err pl__wnode_new(pl__wnode **out, const pl__wnode_config *c, int64_t now_ms);
void pl__wnode_free(pl__wnode *n); /* NULL ok; pending outputs released */

/* ---- connections ---- */
void pl__wnode_dialing(pl__wnode *n, size_t boot, uint64_t conn, int64_t now_ms);
void pl__wnode_conn_up(pl__wnode *n, uint64_t conn, const pl_p2p_peer_id *peer, bool inbound,
                       int64_t now_ms);
void pl__wnode_conn_down(pl__wnode *n, uint64_t conn, pl_err err, int64_t now_ms);
void pl__wnode_drop(pl__wnode *n, uint64_t conn, pl_err reason, int64_t now_ms);

/* Our metadata message (the request and the answer are alike). */
pl_err pl__wnode_metadata_ours(const pl__wnode *n, uint8_t *out, size_t cap, size_t *len);
/* msg NULL: no answer came (stream refused or ended, time-out). Returns
 * the policy's verdict (PL_OK: the relay stream is to be opened). */
pl_err pl__wnode_metadata_answer(pl__wnode *n, uint64_t conn, const uint8_t *msg, size_t len,
                                 int64_t now_ms);
/* A peer's request. Returns PL_ERR_WAKU_CLUSTER when it named another
 * cluster (the peer is being disconnected), PL_ERR_WAKU_METADATA when it
 * was malformed (ignored: our own request decides), else PL_OK. */
pl_err pl__wnode_metadata_request(pl__wnode *n, uint64_t conn, const uint8_t *msg, size_t len,
                                  int64_t now_ms);

void pl__wnode_relay_opened(pl__wnode *n, uint64_t conn, int64_t now_ms);
void pl__wnode_relay_failed(pl__wnode *n, uint64_t conn, pl_err err, int64_t now_ms);
/* Whether relay RPCs from conn are taken now. */
bool pl__wnode_relay_ready(const pl__wnode *n, uint64_t conn);
/* One RPC (no length prefix). The result is the gossip core's (see
 * pl__gossip_recv_rpc); PL_ERR_P2P_PROTOBUF and PL_ERR_TOO_LARGE also
 * disconnect the peer, since it does not speak the protocol.
 * PL_ERR_STATE: not relay_ready. */
pl_err pl__wnode_relay_rpc(pl__wnode *n, uint64_t conn, const uint8_t *rpc, size_t len,
                           int64_t now_ms);
void pl__wnode_sent(pl__wnode *n, uint64_t conn, size_t bytes);

/* ---- the application ---- */

/* Errors: PL_ERR_WAKU_TOPIC / PL_ERR_BAD_UTF8 / PL_ERR_UNSUPPORTED (the
 * content topic or its shard), PL_ERR_TOO_LARGE (longer than
 * PL__WNODE_CONTENT_TOPIC_MAX, or max_content_topics reached),
 * PL_ERR_EXISTS / PL_ERR_NOT_FOUND, PL_ERR_NOMEM. */
pl_err pl__wnode_subscribe(pl__wnode *n, const char *content_topic, size_t len, int64_t now_ms);
pl_err pl__wnode_unsubscribe(pl__wnode *n, const char *content_topic, size_t len, int64_t now_ms);

typedef struct pl__wnode_pub {
    uint64_t id; /* names the message in PUBLISHED / PUBLISH_FAILED */
    bool queued; /* no subscribed peer yet: an output follows */
    size_t sent_to;
    uint8_t hash[PL_WAKU_HASH_BYTES];
    char pubsub_topic[PL_WAKU_PUBSUB_TOPIC_SIZE];
} pl__wnode_pub;

/* Publish m (the caller fills every field; content_topic need not be
 * NUL-terminated). Sent at once to every subscribed relay peer, or queued.
 * Errors (nothing sent or queued): PL_ERR_WAKU_TOPIC / PL_ERR_BAD_UTF8 /
 * PL_ERR_UNSUPPORTED (content topic), PL_ERR_WAKU_MESSAGE (empty payload,
 * meta above 64 bytes), PL_ERR_TOO_LARGE (above 150 KiB encoded),
 * PL_ERR_EXISTS (the same message bytes were seen or queued),
 * PL_ERR_WAKU_QUEUE_FULL, PL_ERR_STATE (closing), PL_ERR_NOMEM. *r is
 * zeroed on error. */
pl_err pl__wnode_publish(pl__wnode *n, const pl_waku_message *m, int64_t now_ms, pl__wnode_pub *r);

/* No more dials; queued messages stay until pl__wnode_fail_queued. */
void pl__wnode_close(pl__wnode *n);
/* Give up every queued message (PUBLISH_FAILED with err). */
void pl__wnode_fail_queued(pl__wnode *n, pl_err err);

/* ---- time and outputs ---- */
int64_t pl__wnode_next_deadline(const pl__wnode *n);
void pl__wnode_on_timer(pl__wnode *n, int64_t now_ms);
bool pl__wnode_pop(pl__wnode *n, pl__wnode_out *out);

/* ---- introspection ---- */
size_t pl__wnode_relay_peers(const pl__wnode *n); /* connections in relay */
size_t pl__wnode_queued(const pl__wnode *n);      /* messages waiting for a subscriber */
/* Mesh size of a pubsub topic (0 when not joined). */
size_t pl__wnode_mesh_size(const pl__wnode *n, const char *pubsub_topic);
/* The pubsub topic a content topic maps to under the node's sharding. */
pl_err pl__wnode_pubsub_topic_for(const pl__wnode *n, char out[PL_WAKU_PUBSUB_TOPIC_SIZE],
                                  const char *content_topic, size_t len);
const pl__gossip *pl__wnode_gossip(const pl__wnode *n);

typedef struct pl__wnode_stats {
    uint64_t delivered, filtered, keepalives, published, queued, expired, refused;
} pl__wnode_stats;
void pl__wnode_stats_get(const pl__wnode *n, pl__wnode_stats *s);

#endif
