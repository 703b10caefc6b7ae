/* SPDX-License-Identifier: Apache-2.0 */
/* A Waku v2 relay node on a driver (driver.h): a libp2p host (p2p.h) speaking
 * /vac/waku/relay/2.0.0 (gossipsub, docs/waku.md) and
 * /vac/waku/metadata/1.0.0, with content-topic subscriptions, publishing
 * and bootstrap peers. It interoperates with nwaku, js-waku and go-waku
 * relay nodes over TCP (Noise, yamux or mplex).
 *
 * What it does by itself:
 * - dials the bootstrap peers (opts.peers) at start and again, with a
 *   growing delay (reconnect_min_ms doubling up to reconnect_max_ms), after
 *   a failed dial or a lost connection;
 * - asks every connected peer for its metadata and disconnects one of
 *   another cluster, or one that does not answer (as nwaku does); answers
 *   metadata requests;
 * - relays (joins the gossipsub mesh of) the pubsub topics of opts.shards
 *   and of the subscribed content topics: messages are validated
 *   (WakuMessage rules, StrictNoSign) before they are forwarded, bad peers
 *   are scored down, pruned and disconnected;
 * - delivers messages on subscribed content topics to on_message, once
 *   per message (js-waku's /relay-ping/1/ping/null keep-alives never);
 * - keeps messages published while no peer is subscribed to their pubsub
 *   topic (bounded by publish_queue_max / publish_queue_bytes) and sends
 *   them as soon as one is, or gives them up after publish_ttl_ms.
 *
 * Content topics map to pubsub topics by static sharding (every content
 * topic on /waku/2/rs/<cluster>/<shard>; default /waku/2/rs/16/64) or by
 * autosharding (sharding.num_shards > 0), see waku.h.
 *
 * Threads: everything runs on the driver's thread (its loop), callbacks
 * too; the functions here must be called from it. Callbacks run from the
 * driver, never from inside a call of this header, and may call any
 * function here, pl_waku_node_close included. Pointers handed to callbacks
 * are valid during the callback only. Time is the driver's (it shares the
 * driver's one timer with the host and whatever else runs there).
 *
 * Signals: a peer that resets its connection makes libuv's next write on
 * it raise SIGPIPE, which kills a process that has not set SIGPIPE to
 * SIG_IGN (the pairlink CLI does). The node handles the write error; the
 * process must ignore the signal.
 *
 * As a transport: bytes and a content topic go in (pl_waku_node_publish),
 * deliveries come out (on_message), pl_waku_node_pending() counts what has
 * not left yet, pl_waku_node_close() flushes before it closes. */
#ifndef PAIRLINK_WAKU_NODE_H
#define PAIRLINK_WAKU_NODE_H

#include "pairlink/common.h"
#include "pairlink/driver.h"
#include "pairlink/p2p.h"
#include "pairlink/waku.h"

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pl_waku_node pl_waku_node;

/* A message received on a subscribed content topic. */
typedef struct pl_waku_delivery {
    const pl_waku_message *msg; /* decoded; msg->content_topic is not NUL-terminated */
    const char *content_topic;  /* the same, NUL-terminated */
    const char *pubsub_topic;   /* "/waku/2/rs/16/64" */
    const uint8_t *hash;        /* PL_WAKU_HASH_BYTES: 14/WAKU2-MESSAGE deterministic hash */
    const pl_p2p_peer_id *from; /* the peer that relayed it to us */
} pl_waku_delivery;

typedef void (*pl_waku_message_cb)(void *ud, pl_waku_node *n, const pl_waku_delivery *d);

typedef enum pl_waku_event_kind {
    /* A peer became a relay peer (metadata agreed, relay stream open):
     * peer, conn, inbound, addr. */
    PL_WAKU_EV_PEER_UP = 1,
    /* A relay peer is gone: peer, conn, err (why: PL_ERR_CLOSED for an
     * orderly end, PL_ERR_GOSSIP_SCORE for a peer we disconnected for its
     * behaviour, ...). */
    PL_WAKU_EV_PEER_DOWN,
    /* A connection was dropped before it became a relay peer: peer, conn,
     * err: PL_ERR_WAKU_CLUSTER (another cluster), PL_ERR_WAKU_METADATA (no
     * or no usable metadata answer), PL_ERR_EXISTS (a second connection
     * to the same peer), a dial or handshake error (a bootstrap dial that
     * failed: peer may be unknown, addr says which). */
    PL_WAKU_EV_PEER_REFUSED,
    /* The gossipsub mesh of pubsub_topic gained (grafted true) or lost a
     * peer: peer, pubsub_topic, mesh_size. */
    PL_WAKU_EV_MESH,
    /* A queued message went out: publish_id, sent_to (>= 1). */
    PL_WAKU_EV_PUBLISHED,
    /* A queued message was given up: publish_id, err: PL_ERR_WAKU_NO_PEERS
     * (no subscribed peer within publish_ttl_ms), PL_ERR_CLOSED (the node
     * closed before one came), PL_ERR_EXISTS (the same message arrived
     * from the network meanwhile). */
    PL_WAKU_EV_PUBLISH_FAILED,
} pl_waku_event_kind;

typedef struct pl_waku_event {
    pl_waku_event_kind kind;
    const pl_p2p_peer_id *peer; /* len 0 when not known */
    pl_p2p_conn_id conn;
    bool inbound;
    const char *addr;         /* remote multiaddr text, "" if unknown */
    const char *pubsub_topic; /* MESH, PUBLISHED, PUBLISH_FAILED; else "" */
    /* PUBLISH_FAILED: the content topic of the message given up (NUL-terminated;
     * "" otherwise). */
    const char *content_topic;
    bool grafted;             /* MESH */
    size_t mesh_size;         /* MESH: after the change */
    uint64_t publish_id;      /* PUBLISHED, PUBLISH_FAILED */
    size_t sent_to;           /* PUBLISHED */
    pl_err err;
} pl_waku_event;

typedef void (*pl_waku_event_cb)(void *ud, pl_waku_node *n, const pl_waku_event *ev);

#define PL_WAKU_NODE_MAX_PEERS_OPT 64 /* bootstrap peers */
#define PL_WAKU_NODE_MAX_SHARDS_OPT 64

typedef struct pl_waku_node_opts {
    /* Identity: key (borrowed; the node keeps a copy). NULL: a fresh
     * Ed25519 key (a new peer id each run; see pl_p2p_key_load_or_create
     * to keep one in a file). */
    const pl_p2p_key *key;
    const char *const *peers;  /* bootstrap multiaddrs (tcp, /p2p/ id recommended) */
    size_t n_peers;            /* <= PL_WAKU_NODE_MAX_PEERS_OPT */
    pl_waku_sharding sharding; /* default cluster 16, static shard 64 */
    const uint16_t *shards;    /* shards relayed from the start; none: sharding.shard */
    size_t n_shards;           /* (static sharding) or only subscribed ones (autosharding) */
    pl_p2p_muxers muxers;      /* default: yamux then mplex offered, either accepted */
    /* limits; 0 = default */
    uint32_t max_connections;    /* 0: 64 */
    size_t publish_queue_max;    /* 0: 256 messages */
    size_t publish_queue_bytes;  /* 0: 8 MiB */
    int64_t publish_ttl_ms;      /* 0: 30 s */
    int64_t metadata_timeout_ms; /* 0: 5 s */
    int64_t reconnect_min_ms;    /* 0: 1 s */
    int64_t reconnect_max_ms;    /* 0: 30 s */
    int64_t flush_timeout_ms;    /* pl_waku_node_close: 0: 2 s */
    size_t max_content_topics;   /* subscribed at once; 0: 1024 */
    /* Queue a publish on a relayed pubsub topic until its gossipsub mesh
     * has a peer, not merely until a peer is subscribed: what answers it
     * comes back through the mesh, and a node that sends before its peers
     * grafted it misses the answer (js-waku waits for mesh peers too). */
    bool publish_needs_mesh;
    /* callbacks (each may be NULL) */
    pl_waku_message_cb on_message;
    pl_waku_event_cb on_event;
    void *ud;
    pl_p2p_log_cb on_log; /* one line per connection / peer / mesh change */
    void *log_ud;
} pl_waku_node_opts;

/* Defaults: everything 0 / NULL, sharding cluster 16 static shard 64. */
PL_EXPORT void pl_waku_node_opts_init(pl_waku_node_opts *o);

/* Create the node on a loop driver (pl_driver_new; the driver must outlive
 * the node: close the node first) and start dialing the bootstrap peers
 * (from the driver). It listens nowhere until pl_waku_node_listen. Errors:
 * PL_ERR_INVALID_ARG (a virtual driver, too many peers or shards, a shard
 * outside autosharding's range, negative times), PL_ERR_P2P_MULTIADDR /
 * PL_ERR_P2P_PEER_ID / PL_ERR_P2P_TRANSPORT (a bootstrap address),
 * PL_ERR_NOMEM. Nothing is left on the driver on error, except after
 * PL_ERR_NOMEM a host that finishes closing from the driver. */
PL_EXPORT pl_err pl_waku_node_new(pl_waku_node **out, pl_driver *driver,
                                  const pl_waku_node_opts *opts);

/* Listen on /ip4|ip6/<addr>/tcp/<port> (port 0: any; at most 8). Errors:
 * those of pl_p2p_host_listen (PL_ERR_P2P_MULTIADDR, PL_ERR_P2P_TRANSPORT,
 * PL_ERR_SYS with the libuv code in pl_last_detail(), PL_ERR_TOO_LARGE),
 * PL_ERR_STATE (closing). The node stays usable after an error. */
PL_EXPORT pl_err pl_waku_node_listen(pl_waku_node *n, const char *multiaddr);

/* Flush, then close: no more publishes are taken; queued messages get
 * until flush_timeout_ms to find a subscribed peer (then PUBLISH_FAILED
 * with PL_ERR_CLOSED); relay bytes already published are handed to the
 * connections, which end gracefully (GO_AWAY, last bytes flushed); then
 * on_closed(ud) runs from the driver (may be NULL) and the node is freed.
 * No callback follows on_closed. Calling it twice is a misuse. */
PL_EXPORT void pl_waku_node_close(pl_waku_node *n, void (*on_closed)(void *ud), void *ud);

/* The driver the node runs on. */
PL_EXPORT pl_driver *pl_waku_node_driver(const pl_waku_node *n);

/* Our peer id. */
PL_EXPORT void pl_waku_node_peer_id(const pl_waku_node *n, pl_p2p_peer_id *id);

/* The i-th listen address with its real port and /p2p/<our id>, e.g.
 * "/ip4/127.0.0.1/tcp/60000/p2p/12D3KooW...". Returns how many there are;
 * out (cap bytes, may be NULL when cap is 0) gets the i-th when i is
 * below that (truncated texts are cut and NUL-terminated: 1100 bytes are
 * always enough). */
PL_EXPORT size_t pl_waku_node_listen_addr(const pl_waku_node *n, size_t i, char *out, size_t cap);

/* Receive messages on a content topic (its pubsub topic is relayed from
 * now on). Errors: PL_ERR_WAKU_TOPIC / PL_ERR_BAD_UTF8 (malformed content
 * topic), PL_ERR_UNSUPPORTED (autosharding generation other than 0),
 * PL_ERR_TOO_LARGE (above 512 bytes, or max_content_topics), PL_ERR_EXISTS
 * (already subscribed), PL_ERR_STATE (closing), PL_ERR_NOMEM. */
PL_EXPORT pl_err pl_waku_node_subscribe(pl_waku_node *n, const char *content_topic);
/* Errors: PL_ERR_NOT_FOUND (not subscribed), PL_ERR_STATE (closing). */
PL_EXPORT pl_err pl_waku_node_unsubscribe(pl_waku_node *n, const char *content_topic);

typedef struct pl_waku_publish_opts {
    uint32_t version;    /* WakuMessage version: 0 plain, 1, 2 (Noise) */
    int64_t timestamp;   /* ns since the epoch; 0: now */
    const uint8_t *meta; /* <= PL_WAKU_META_MAX bytes; NULL: none */
    size_t meta_len;
    bool ephemeral;
} pl_waku_publish_opts;

typedef struct pl_waku_publish_result {
    uint64_t id;    /* names the message in PUBLISHED / PUBLISH_FAILED events */
    bool queued;    /* no subscribed peer yet: one of those events follows */
    size_t sent_to; /* peers it went to now (flood publish); 0 when queued */
    uint8_t hash[PL_WAKU_HASH_BYTES];
    char pubsub_topic[PL_WAKU_PUBSUB_TOPIC_SIZE];
} pl_waku_publish_result;

/* Publish payload (1 byte .. about 150 KiB; copied) on content_topic.
 * opts may be NULL (version 0, timestamp now, no meta, not ephemeral);
 * result may be NULL. Success means sent to result->sent_to >= 1 peers,
 * or queued. Errors (nothing sent or queued; *result zeroed):
 * PL_ERR_WAKU_TOPIC / PL_ERR_BAD_UTF8 / PL_ERR_UNSUPPORTED (content topic),
 * PL_ERR_WAKU_MESSAGE (empty payload: js-waku and nwaku drop those; meta
 * above 64 bytes), PL_ERR_TOO_LARGE (the WakuMessage above 150 KiB),
 * PL_ERR_EXISTS (the same message bytes were published or seen within
 * the seen cache's 2 minutes), PL_ERR_WAKU_QUEUE_FULL, PL_ERR_STATE
 * (closing), PL_ERR_NOMEM. */
PL_EXPORT pl_err pl_waku_node_publish(pl_waku_node *n, const char *content_topic,
                                      const uint8_t *payload, size_t len,
                                      const pl_waku_publish_opts *opts,
                                      pl_waku_publish_result *result);

/* The node's message and event callbacks (initially those of its
 * options): read them, or replace them, e.g. to put a transport in front
 * that calls the previous ones after itself (waku_transport.h). From the
 * driver's thread; the next message or event goes to the new ones. */
PL_EXPORT void pl_waku_node_get_callbacks(const pl_waku_node *n, pl_waku_message_cb *on_message,
                                          pl_waku_event_cb *on_event, void **ud);
PL_EXPORT void pl_waku_node_set_callbacks(pl_waku_node *n, pl_waku_message_cb on_message,
                                          pl_waku_event_cb on_event, void *ud);

/* What has not left yet: messages published and queued (waiting for a
 * subscribed peer), plus RPCs (ours or relayed) produced but not yet taken
 * by a connection. 0 once everything went out. */
PL_EXPORT size_t pl_waku_node_pending(const pl_waku_node *n);
/* Relay peers now. */
PL_EXPORT size_t pl_waku_node_peer_count(const pl_waku_node *n);
/* Mesh size of a pubsub topic (0 if not relayed). */
PL_EXPORT size_t pl_waku_node_mesh_size(const pl_waku_node *n, const char *pubsub_topic);
/* The pubsub topic content_topic maps to here. Errors as subscribe's. */
PL_EXPORT pl_err pl_waku_node_pubsub_topic(const pl_waku_node *n, const char *content_topic,
                                           char out[PL_WAKU_PUBSUB_TOPIC_SIZE]);

typedef struct pl_waku_node_stats {
    size_t peers, connections, queued;
    uint64_t delivered;  /* to on_message */
    uint64_t filtered;   /* relayed but not on a subscribed content topic */
    uint64_t keepalives; /* js-waku /relay-ping/1/ping/null dropped */
    uint64_t published, expired, refused;
    uint64_t forwarded, duplicates, rejected; /* gossipsub */
} pl_waku_node_stats;
PL_EXPORT void pl_waku_node_stats_get(const pl_waku_node *n, pl_waku_node_stats *s);

#ifdef __cplusplus
}
#endif
#endif
