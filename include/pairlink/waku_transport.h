/* SPDX-License-Identifier: Apache-2.0 */
/* The Waku relay transport: the pl_transport (transport.h) of a Waku v2
 * relay node (waku_node.h), so that the cores that speak through the
 * transport interface (the node-manager pairing and sessions) run on a
 * Waku network unchanged.
 *
 * Mapping:
 *  - topics are Waku content topics (`/{app}/{version}/{name}/{encoding}`,
 *    or RFC 37's `/{app}/{version}/wakunoise/1/sessions/{id}/proto`); the
 *    node maps each to its pubsub topic (static shard or autosharding,
 *    waku.h). A topic name the node cannot map (no leading '/'; not of
 *    those forms under autosharding) is refused with PL_ERR_WAKU_TOPIC;
 *  - publish: (an own node queues it until the mesh of its pubsub topic
 *    has a peer, publish_needs_mesh of waku_node.h, so that the answer to
 *    a request sent at start-up is not lost) the bytes become the
 *    `payload` of a WakuMessage on that
 *    content topic, with `ephemeral` from pl_publish_opts, `timestamp` =
 *    now (ns) and `version` / `meta` from a pl_waku_publish_ext (below) when
 *    opts->ext is one (version 0, no meta otherwise). `ttl_s` is ignored:
 *    relay stores nothing. An empty message is refused
 *    (PL_ERR_WAKU_MESSAGE: js-waku and nwaku drop empty payloads);
 *  - deliveries: the payload of each WakuMessage on a subscribed content
 *    topic, once per message (the node's seen cache removes the repeats of
 *    the mesh); published_at_ms = its timestamp / 10^6 (0 when unset) and
 *    a pl_waku_delivery_ext with the rest of the WakuMessage;
 *  - subscribe / unsubscribe: the node's content-topic subscriptions
 *    (idempotent here, unlike pl_waku_node_subscribe). The transport
 *    delivers every content topic the node is subscribed to (a wrapped
 *    node's own subscriptions too);
 *  - state: CONNECTING until the node has its first relay peer, then
 *    CONNECTED; RECONNECTING (err: why the last one went, or why the last
 *    dial or peer was refused) while it has none; the node redials its
 *    bootstrap peers by itself. CLOSED is never reported: a relay node
 *    does not give up;
 *  - pending: pl_waku_node_pending() (messages waiting for a subscribed
 *    peer, RPCs not yet taken by a connection);
 *  - close: flush (transport.h), then close the node if it is the
 *    transport's own (pl_waku_node_close: queued messages get the node's
 *    flush_timeout_ms more, connections end gracefully), or hand a given
 *    node its callbacks back and leave it running.
 *
 * Relay delivers to whoever is in the mesh when a message passes: a
 * subscriber that joins later never sees it. Protocols on top must repeat
 * what matters (the node-manager pairing does: HELLO repetition, knocks and
 * handshake retries, docs/protocol/node-manager-pairing.md section 4.4).
 *
 * Threads: as for every transport (transport.h): the driver's thread, a
 * loop driver (a Waku node needs sockets). */
#ifndef PAIRLINK_WAKU_TRANSPORT_H
#define PAIRLINK_WAKU_TRANSPORT_H

#include "pairlink/common.h"
#include "pairlink/driver.h"
#include "pairlink/transport.h"
#include "pairlink/waku.h"
#include "pairlink/waku_node.h"

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Publish options only the Waku transport reads (pl_publish_opts.ext);
 * other transports ignore them. */
typedef struct pl_waku_publish_ext {
    pl_transport_ext ext; /* .kind = PL_TRANSPORT_EXT_WAKU */
    uint32_t version;     /* WakuMessage version: 0 plain, 1 26/WAKU-PAYLOAD, 2 Noise PayloadV2 */
    const uint8_t *meta;  /* <= PL_WAKU_META_MAX bytes, or NULL; read during the call */
    size_t meta_len;
} pl_waku_publish_ext;

/* What a delivered WakuMessage carried besides its payload
 * (pl_delivery_info.ext); valid during the callback only. */
typedef struct pl_waku_delivery_ext {
    pl_transport_ext ext; /* .kind = PL_TRANSPORT_EXT_WAKU */
    uint32_t version;
    int64_t timestamp_ns; /* the sender's clock; 0 = unset */
    bool ephemeral;
    const uint8_t *meta; /* NULL when absent */
    size_t meta_len;
    const char *pubsub_topic;   /* "/waku/2/rs/16/64" */
    const uint8_t *hash;        /* PL_WAKU_HASH_BYTES: the 14/WAKU2-MESSAGE message hash */
    const pl_p2p_peer_id *from; /* the relay peer it came from */
} pl_waku_delivery_ext;

typedef struct pl_waku_transport_opts {
    /* The node to make: everything but its callbacks, which the transport
     * takes (on_message / on_event / ud, if set, are still called after
     * the transport's own handling; on_log as given). */
    pl_waku_node_opts node;
    /* Identity when node.key is NULL: the libp2p key in this file (loaded,
     * or created 0600 on first use: a stable peer id). NULL: a fresh key,
     * a new peer id every run. */
    const char *key_file;
    /* Listen addresses (/ip4|ip6/ADDR/tcp/PORT, at most 8); none: the node
     * only dials its bootstrap peers. */
    const char *const *listen;
    size_t n_listen;
    pl_transport_handler handler; /* may be set later (pl_transport_set_handler) */
} pl_waku_transport_opts;

/* Defaults: pl_waku_node_opts_init for the node, nothing else. */
PL_EXPORT void pl_waku_transport_opts_init(pl_waku_transport_opts *o);

/* A transport with a Waku node of its own on loop driver d: the node is
 * made and listens at once, dials its bootstrap peers from the driver, and
 * is closed with the transport. Options are copied. Errors (nothing is left
 * running, but after a listen error the node finishes closing from the
 * driver: run its loop before closing the driver): those of
 * pl_waku_node_new and pl_waku_node_listen, of pl_p2p_key_load_or_create
 * (key_file: PL_ERR_KEY_FILE for a file readable by others, ...),
 * PL_ERR_INVALID_ARG (more than 8 listen addresses), PL_ERR_NOMEM. */
PL_EXPORT pl_err pl_waku_transport_new(pl_transport **out, pl_driver *d,
                                       const pl_waku_transport_opts *opts);

/* A transport over a node the caller made and keeps (`node` must outlive
 * the transport). The transport takes the node's callbacks
 * (pl_waku_node_set_callbacks) and calls the previous ones after its own;
 * closing the transport gives them back. One transport per node at a time.
 * h may be NULL. Errors: PL_ERR_NOMEM. */
PL_EXPORT pl_err pl_waku_transport_wrap(pl_transport **out, pl_waku_node *node,
                                        const pl_transport_handler *h);

/* True if t is a Waku transport. */
PL_EXPORT bool pl_waku_transport_is(const pl_transport *t);

/* The node underneath (t must be a Waku transport); e.g. for its listen
 * addresses, peer id and statistics. Valid until the transport is closed. */
PL_EXPORT pl_waku_node *pl_waku_transport_node(pl_transport *t);

#ifdef __cplusplus
}
#endif
#endif
