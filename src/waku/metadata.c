/* SPDX-License-Identifier: Apache-2.0 */
/* 66/WAKU2-METADATA codec and policy. */
#include "waku/metadata.h"

#include "core/internal.h"
#include "waku_metadata.pb-c.h"

#include <stdlib.h>
#include <string.h>

pl_err pl__waku_metadata_encode(uint8_t *out, size_t cap, size_t *out_len,
                                const pl__waku_metadata *m) {
    PL_REQUIRE(out_len && m && (out || cap == 0) && m->n_shards <= PL__WAKU_METADATA_MAX_SHARDS);
    *out_len = 0;
    Waku__Pb__WakuMetadata pb;
    waku__pb__waku_metadata__init(&pb);
    pb.has_cluster_id = m->has_cluster;
    pb.cluster_id = m->cluster;
    pb.n_shards_deprecated = pb.n_shards = m->n_shards;
    pb.shards_deprecated = pb.shards = (uint32_t *)m->shards;
    size_t n = waku__pb__waku_metadata__get_packed_size(&pb);
    if (n > PL__WAKU_METADATA_MAX_BYTES) return PL_ERR_TOO_LARGE;
    if (n > cap) return PL_ERR_BUFFER_TOO_SMALL;
    if (waku__pb__waku_metadata__pack(&pb, out) != n) return PL_ERR_INTERNAL;
    *out_len = n;
    return PL_OK;
}

pl_err pl__waku_metadata_decode(pl__waku_metadata *out, const uint8_t *buf, size_t len) {
    PL_REQUIRE(out && (buf || len == 0));
    memset(out, 0, sizeof *out);
    if (len > PL__WAKU_METADATA_MAX_BYTES) return PL_ERR_TOO_LARGE;
    Waku__Pb__WakuMetadata *pb = waku__pb__waku_metadata__unpack(NULL, len, buf);
    if (!pb) return PL_ERR_WAKU_METADATA;
    const uint32_t *src = pb->n_shards ? pb->shards : pb->shards_deprecated;
    size_t n = pb->n_shards ? pb->n_shards : pb->n_shards_deprecated;
    /* Bounded by the byte cap; checked anyway so the copy cannot overrun. */
    if (n > PL__WAKU_METADATA_MAX_SHARDS) {
        waku__pb__waku_metadata__free_unpacked(pb, NULL);
        return PL_ERR_WAKU_METADATA;
    }
    out->has_cluster = pb->has_cluster_id;
    out->cluster = pb->cluster_id;
    out->n_shards = n;
    if (n) memcpy(out->shards, src, n * sizeof *src);
    waku__pb__waku_metadata__free_unpacked(pb, NULL);
    return PL_OK;
}

pl_err pl__waku_metadata_check(uint32_t our_cluster, const pl__waku_metadata *answer) {
    if (!answer || !answer->has_cluster) return PL_ERR_WAKU_METADATA;
    if (answer->cluster != our_cluster) return PL_ERR_WAKU_CLUSTER;
    return PL_OK;
}
