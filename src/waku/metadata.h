/* SPDX-License-Identifier: Apache-2.0 */
/* 66/WAKU2-METADATA, protocol id /vac/waku/metadata/1.0.0: both roles' codec
 * and the connection policy, without I/O.
 *
 * The exchange (as nwaku does it): the dialer of a new connection opens a
 * metadata stream, writes one uvarint-length-prefixed request {cluster_id,
 * shards}, reads one length-prefixed response of the same shape (at most
 * PL__WAKU_METADATA_MAX_BYTES) and closes the stream; the responder reads
 * the request and writes its own response. js-waku 0.0.27's responder
 * writes its response before reading the request, so a requester must not
 * wait for its write to be read first.
 *
 * Policy: a peer that does not answer, answers without a cluster id, or
 * names another cluster is disconnected (nwaku peer_manager onPeerMetadata);
 * the shards are informative (nwaku stores them for dial decisions; it does
 * not disconnect on disjoint shards, and neither do we).
 *
 * Private to the library; reentrant. */
#ifndef PAIRLINK_WAKU_METADATA_H
#define PAIRLINK_WAKU_METADATA_H

#include "pairlink/common.h"

#include <stdbool.h>

#define PL__WAKU_METADATA_PROTOCOL "/vac/waku/metadata/1.0.0"
/* nwaku reads at most 1024 bytes (RpcResponseMaxBytes) for either message. */
#define PL__WAKU_METADATA_MAX_BYTES 1024
/* Each shard takes at least 1 byte in field 2 or 3, so no valid message of
 * 1024 bytes names more. */
#define PL__WAKU_METADATA_MAX_SHARDS 1024

typedef struct pl__waku_metadata {
    bool has_cluster;
    uint32_t cluster;
    size_t n_shards;
    uint32_t shards[PL__WAKU_METADATA_MAX_SHARDS];
} pl__waku_metadata;

/* Encode m as nwaku does: field 1, the shards unpacked in field 2
 * (deprecated) and packed in field 3. Errors: PL_ERR_BUFFER_TOO_SMALL,
 * PL_ERR_TOO_LARGE (more than PL__WAKU_METADATA_MAX_BYTES). *out_len 0 on
 * failure. */
pl_err pl__waku_metadata_encode(uint8_t *out, size_t cap, size_t *out_len,
                                const pl__waku_metadata *m);

/* Decode a request or response (one message, without the length prefix).
 * Shards from field 3 when it has any (packed or not), else from field 2
 * (packed or not), as nwaku reads them. Errors: PL_ERR_TOO_LARGE (above
 * PL__WAKU_METADATA_MAX_BYTES), PL_ERR_WAKU_METADATA (not a protobuf of
 * this shape), PL_ERR_NOMEM. *out zeroed on failure. */
pl_err pl__waku_metadata_decode(pl__waku_metadata *out, const uint8_t *buf, size_t len);

/* The policy. answer: the peer's decoded answer, or NULL when it gave none
 * (stream refused, closed early, malformed). PL_OK: keep the peer;
 * PL_ERR_WAKU_METADATA (no answer or no cluster id) or PL_ERR_WAKU_CLUSTER
 * (another cluster): disconnect it with that reason. */
pl_err pl__waku_metadata_check(uint32_t our_cluster, const pl__waku_metadata *answer);

#endif
