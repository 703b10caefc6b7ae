/* SPDX-License-Identifier: Apache-2.0 */
/* The gossipsub v1.1 router core (plus v1.2 IDONTWANT) that Waku relay runs
 * under protocol id /vac/waku/relay/2.0.0 (11/WAKU2-RELAY), without I/O and
 * without a clock.
 *
 * Contract with the runtime
 * -------------------------
 * Peers are opaque uint64_t handles chosen by the runtime (one per libp2p
 * connection that negotiated the relay protocol), given with the remote
 * peer id bytes (kept for prune backoff, which must survive a reconnect, and
 * for logs). Inputs, each with the current time in ms (any monotonic clock;
 * only differences matter):
 *   pl__gossip_add_peer / pl__gossip_remove_peer   connection up / gone
 *   pl__gossip_recv_rpc    the bytes of ONE RPC; the runtime splits the
 *                          stream into RPCs with pl__gossip_unframe
 *   pl__gossip_join / pl__gossip_leave / pl__gossip_publish
 *   pl__gossip_on_timer    whenever now >= pl__gossip_next_deadline()
 *                          (the heartbeat, every heartbeat_ms)
 *   pl__gossip_sent        bytes of SEND outputs the transport has written
 * Outputs, polled with pl__gossip_pop after every input, in order:
 *   SEND        peer, data/len: one RPC already framed (uvarint length
 *               prefix); write it to the peer's relay stream as it is
 *   DELIVER     topic, data/len, id, peer: an accepted message on a joined
 *               topic (from peer; 0 for our own with deliver_own)
 *   DISCONNECT  peer, reason: close the connection (score below the
 *               disconnect threshold: PL_ERR_GOSSIP_SCORE; peer does not
 *               read: PL_ERR_P2P_BACKPRESSURE); then call remove_peer
 *   GRAFTED / PRUNED  peer, topic: mesh changes, for logs
 *
 * Backpressure: the core counts, per peer, the bytes of SEND outputs not yet
 * confirmed by pl__gossip_sent. Above queue_soft_bytes it stops sending that
 * peer gossip (IHAVE, IWANT answers, IDONTWANT); when a SEND would take it
 * above queue_hard_bytes it emits DISCONNECT instead. So a peer that never
 * reads costs at most queue_hard_bytes, wherever the bytes wait.
 *
 * Behaviour: subscriptions announced to every peer on add and on
 * join/leave; a mesh per joined topic (D/Dlo/Dhi/Dout/Dscore), gossip of
 * IHAVE to Dlazy (or gossip_factor of the) non-mesh peers, fanout for
 * topics published without joining (TTL fanout_ttl_ms); GRAFT/PRUNE with
 * backoff both ways (a GRAFT during backoff is answered with PRUNE and a
 * behaviour penalty); flood publishing of our own messages to every
 * subscribed peer above publish_threshold; forwarding of accepted messages
 * to mesh peers except the source and peers that sent IDONTWANT; IDONTWANT
 * sent to mesh peers for messages above idontwant_threshold bytes (before
 * validation, as nim-libp2p does); a seen cache (seen_ttl_ms) and a message
 * cache (history_length heartbeats, the last history_gossip gossiped);
 * IWANT answered from it, at most gossip_retransmission times per peer and
 * message and max_iwant_answers per peer and heartbeat; IWANT promises
 * checked (a peer that announced a message by IHAVE and did not deliver it
 * within iwant_followup_ms gets a behaviour penalty). StrictNoSign: a
 * message with from, seqno, signature or key is refused
 * (PL_ERR_GOSSIP_SIGNED) and counted as invalid. Message id =
 * sha256(data), as nwaku and js-waku compute it.
 *
 * Scoring (a subset of v1.1, per peer rather than per topic, topic weight
 * 1): score = first_delivery_weight * min(first deliveries, cap)
 *           + invalid_weight * invalid^2 + behaviour_weight * behaviour^2,
 * each counter decayed every decay_interval_ms and zeroed below
 * decay_to_zero. Below gossip_threshold: no gossip to or from the peer;
 * below publish_threshold: no flood publish to it; below
 * graylist_threshold: its RPCs are ignored (PL_ERR_GOSSIP_SCORE); below
 * disconnect_threshold: DISCONNECT. Negative-score peers are pruned from
 * meshes at the heartbeat. Scores of disconnected peers with penalties are
 * kept retain_score_ms by peer id, so reconnecting does not clear them.
 *
 * Randomness (mesh and gossip peer selection) comes from config.rng, so a
 * test with a seeded rng is deterministic. Not thread-safe: one core is
 * driven from one thread. Private to the library (pl__ prefix). */
#ifndef PAIRLINK_WAKU_GOSSIP_H
#define PAIRLINK_WAKU_GOSSIP_H

#include "pairlink/common.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PL__GOSSIP_PROTOCOL "/vac/waku/relay/2.0.0"
#define PL__GOSSIP_ID_BYTES 32    /* sha256(data); other ids never match ours */
#define PL__GOSSIP_TOPIC_MAX 255  /* longer topics in an RPC are ignored */
#define PL__GOSSIP_PEER_ID_MAX 64 /* longer peer ids are truncated (logs, backoff) */

typedef enum pl__gossip_verdict {
    PL__GOSSIP_ACCEPT = 0, /* deliver and forward */
    PL__GOSSIP_REJECT = 1, /* invalid: drop, penalise the sender */
    PL__GOSSIP_IGNORE = 2, /* drop without penalty */
} pl__gossip_verdict;

/* Synchronous validation of a received or published message (topic is
 * NUL-terminated). The Waku layer sets pl__waku_gossip_validate. */
typedef pl__gossip_verdict (*pl__gossip_validate_fn)(void *ctx, const char *topic,
                                                     const uint8_t *data, size_t len);
/* Fill buf with len random bytes (need not be cryptographic). */
typedef void (*pl__gossip_rng_fn)(void *ctx, uint8_t *buf, size_t len);

typedef struct pl__gossip_config {
    /* mesh degrees */
    unsigned d, dlo, dhi, dout, dscore, dlazy;
    double gossip_factor;
    /* times, ms */
    int64_t heartbeat_ms, fanout_ttl_ms, seen_ttl_ms, prune_backoff_ms, unsubscribe_backoff_ms,
        iwant_followup_ms, decay_interval_ms, retain_score_ms;
    unsigned history_length, history_gossip, gossip_retransmission;
    /* bounds */
    size_t max_rpc_bytes;     /* one received RPC, prefix excluded */
    size_t max_message_bytes; /* data of one message */
    size_t max_peers, max_topics, max_subscriptions_per_peer;
    size_t max_subscriptions_per_rpc, max_messages_per_rpc;
    size_t max_control_per_rpc; /* ihave + iwant + graft + prune + idontwant entries */
    size_t max_ids_per_rpc;     /* message ids in all IHAVE/IWANT/IDONTWANT of one RPC */
    size_t max_ihave_messages;  /* IHAVE-bearing RPCs heeded per peer and heartbeat */
    size_t max_ihave_length;    /* ids asked for by IWANT per peer and heartbeat; also
                                   ids in one IHAVE we send */
    size_t max_iwant_answers;   /* messages sent per peer and heartbeat for IWANT */
    size_t max_idontwant;       /* IDONTWANT ids heeded per peer and heartbeat */
    size_t idontwant_threshold; /* send IDONTWANT for data larger than this */
    size_t seen_max, mcache_max_messages, mcache_max_bytes, max_promises;
    size_t queue_soft_bytes, queue_hard_bytes;
    /* scoring */
    double first_delivery_weight, first_delivery_decay, first_delivery_cap;
    double invalid_weight, invalid_decay;
    double behaviour_weight, behaviour_decay;
    double decay_to_zero;
    double gossip_threshold, publish_threshold, graylist_threshold, disconnect_threshold;
    bool deliver_own;                /* DELIVER our own published messages on joined topics */
    pl__gossip_validate_fn validate; /* NULL: accept everything */
    void *validate_ctx;
    pl__gossip_rng_fn rng; /* NULL: pl_random */
    void *rng_ctx;
} pl__gossip_config;

/* nwaku's parameters (waku_relay/protocol.nim): D 6, Dlo 4, Dhi 8, Dout 3,
 * Dscore 6, Dlazy 6, gossip factor 0.25, heartbeat 1 s, history 6/3,
 * fanout TTL 60 s, seen TTL 120 s, prune backoff 60 s, unsubscribe backoff
 * 5 s, decay every 12 s, thresholds -100/-1000/-10000 (disconnect at the
 * graylist threshold, as disconnectBadPeers does), invalid -100 decay 0.5,
 * behaviour -10 decay 0.986, first deliveries 1 cap 10 decay 0.5; 150 KiB
 * messages; bounds as in docs/waku.md. */
void pl__gossip_config_default(pl__gossip_config *c);

typedef enum pl__gossip_out_kind {
    PL__GOSSIP_SEND = 1,
    PL__GOSSIP_DELIVER = 2,
    PL__GOSSIP_DISCONNECT = 3,
    PL__GOSSIP_GRAFTED = 4,
    PL__GOSSIP_PRUNED = 5,
} pl__gossip_out_kind;

typedef struct pl__gossip_out {
    pl__gossip_out_kind kind;
    uint64_t peer;
    uint8_t *data; /* SEND: framed RPC; DELIVER: message data; owned by the output */
    size_t len;
    char topic[PL__GOSSIP_TOPIC_MAX + 1]; /* DELIVER, GRAFTED, PRUNED */
    uint8_t id[PL__GOSSIP_ID_BYTES];      /* DELIVER */
    pl_err reason;                        /* DISCONNECT, PRUNED */
} pl__gossip_out;

/* Release what an output owns (data); the struct is the caller's. */
void pl__gossip_out_release(pl__gossip_out *o);

typedef struct pl__gossip pl__gossip;

/* New core. config NULL: defaults. Errors: PL_ERR_INVALID_ARG (degrees not
 * dout < dlo <= d <= dhi, dout <= d/2, dscore <= d, history_gossip >
 * history_length, a zero time or bound), PL_ERR_NOMEM. */
pl_err pl__gossip_new(pl__gossip **out, const pl__gossip_config *config, int64_t now_ms);
void pl__gossip_free(pl__gossip *g); /* NULL ok; pending outputs are released */

/* A peer speaks the relay protocol. outbound: we dialled it (Dout counts
 * these). Our subscriptions are sent to it at once. Errors: PL_ERR_EXISTS
 * (handle known), PL_ERR_P2P_CONN_LIMIT (max_peers), PL_ERR_NOMEM. */
pl_err pl__gossip_add_peer(pl__gossip *g, uint64_t peer, bool outbound, const uint8_t *peer_id,
                           size_t peer_id_len, int64_t now_ms);

/* The peer is gone (or we closed it): it leaves every mesh and fanout; its
 * score is retained if negative. Unknown handle: no-op. */
void pl__gossip_remove_peer(pl__gossip *g, uint64_t peer, int64_t now_ms);

/* One RPC (no length prefix) from peer. Everything valid in it is acted
 * upon even when part of it is refused; the result names the first problem:
 * PL_ERR_NOT_FOUND (unknown peer), PL_ERR_TOO_LARGE (above max_rpc_bytes;
 * nothing read), PL_ERR_P2P_PROTOBUF (not an RPC; nothing read),
 * PL_ERR_GOSSIP_LIMIT (a count bound exceeded; nothing read, behaviour
 * penalty), PL_ERR_GOSSIP_SCORE (peer graylisted or being disconnected;
 * ignored), PL_ERR_GOSSIP_SIGNED, PL_ERR_GOSSIP_INVALID (a message refused
 * by validation or too large), PL_ERR_GOSSIP_BACKOFF (GRAFT during
 * backoff), PL_ERR_GOSSIP_PROTOCOL (a message without a usable topic),
 * PL_ERR_NOMEM. None of these affects other peers. SEND outputs still
 * queued for a peer that is removed are to be dropped by the runtime. */
pl_err pl__gossip_recv_rpc(pl__gossip *g, uint64_t peer, const uint8_t *rpc, size_t len,
                           int64_t now_ms);

/* Subscribe to / unsubscribe from a pubsub topic (NUL-terminated, at most
 * PL__GOSSIP_TOPIC_MAX bytes). join builds the mesh at once (from fanout
 * peers first). Errors: PL_ERR_INVALID_ARG (empty or too long topic),
 * PL_ERR_EXISTS / PL_ERR_NOT_FOUND (already joined / not joined),
 * PL_ERR_TOO_LARGE (max_topics topics tracked), PL_ERR_NOMEM. */
pl_err pl__gossip_join(pl__gossip *g, const char *topic, int64_t now_ms);
pl_err pl__gossip_leave(pl__gossip *g, const char *topic, int64_t now_ms);

/* Publish data on topic (joined or not: fanout). The message goes to every
 * subscribed peer whose score is at least publish_threshold (flood
 * publish); *sent_to (may be NULL) is how many. Errors: PL_ERR_INVALID_ARG
 * (topic), PL_ERR_TOO_LARGE (data above max_message_bytes),
 * PL_ERR_GOSSIP_INVALID (the validation hook refused it), PL_ERR_EXISTS
 * (same data already seen: same message id), PL_ERR_NOMEM. The message id
 * is written to id_out when not NULL. */
pl_err pl__gossip_publish(pl__gossip *g, const char *topic, const uint8_t *data, size_t len,
                          int64_t now_ms, size_t *sent_to, uint8_t id_out[PL__GOSSIP_ID_BYTES]);

/* Run the heartbeat(s) due at now_ms. */
void pl__gossip_on_timer(pl__gossip *g, int64_t now_ms);
/* When on_timer must run next. */
int64_t pl__gossip_next_deadline(const pl__gossip *g);

/* The transport wrote `bytes` of this peer's SEND outputs. */
void pl__gossip_sent(pl__gossip *g, uint64_t peer, size_t bytes);

/* Take the oldest output (ownership moves to *out). false when none. */
bool pl__gossip_pop(pl__gossip *g, pl__gossip_out *out);

/* Introspection, for logs and tests. */
double pl__gossip_score(const pl__gossip *g, uint64_t peer); /* 0 for unknown */
/* Mesh of a joined topic: copies up to cap handles, returns the size. */
size_t pl__gossip_mesh(const pl__gossip *g, const char *topic, uint64_t *peers, size_t cap);
/* Whether peer subscribed to topic. */
bool pl__gossip_peer_subscribed(const pl__gossip *g, uint64_t peer, const char *topic);
/* How many peers pl__gossip_publish on topic would send to now: subscribed,
 * score at least publish_threshold, not being disconnected. */
size_t pl__gossip_publish_peers(const pl__gossip *g, const char *topic);

typedef struct pl__gossip_stats {
    size_t peers, topics, seen, mcache_messages, mcache_bytes, promises, outputs;
    uint64_t delivered, forwarded, duplicates, rejected, ignored, ihave_sent, iwant_sent,
        iwant_answered, iwant_refused, idontwant_sent, idontwant_skips, grafts_refused,
        gossip_dropped;
} pl__gossip_stats;
void pl__gossip_stats_get(const pl__gossip *g, pl__gossip_stats *out);

/* Stream framing: each RPC is uvarint(length) | RPC. */
#define PL__GOSSIP_FRAME_HEADER_MAX 10
/* Write the length prefix for an RPC of body_len bytes; returns its size. */
size_t pl__gossip_frame_header(uint8_t out[PL__GOSSIP_FRAME_HEADER_MAX], size_t body_len);
/* Find the first RPC in a stream buffer. PL_OK: the RPC is at
 * buf + *hdr_len, *body_len bytes long (consume *hdr_len + *body_len).
 * PL_ERR_TRUNCATED: need more bytes. PL_ERR_TOO_LARGE: announced length
 * above max (close the stream). PL_ERR_BAD_VARINT. Outputs 0 on error. */
pl_err pl__gossip_unframe(const uint8_t *buf, size_t len, size_t max, size_t *hdr_len,
                          size_t *body_len);

/* The Waku relay validator: data must be a valid WakuMessage
 * (pl_waku_message_check) and topic a static-sharding pubsub topic. Accept
 * or reject; ctx unused. */
pl__gossip_verdict pl__waku_gossip_validate(void *ctx, const char *topic, const uint8_t *data,
                                            size_t len);

#endif
