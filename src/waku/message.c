/* SPDX-License-Identifier: Apache-2.0 */
/* 14/WAKU2-MESSAGE: codec (protobuf-c), validation, deterministic hash. */
#include "pairlink/waku.h"

#include "core/internal.h"
#include "waku/waku_internal.h"
#include "waku_message.pb-c.h"

#include <sodium.h>
#include <string.h>

pl_err pl_waku_message_decode(pl_waku_message *out, const uint8_t *buf, size_t len) {
    PL_REQUIRE(out && (buf || len == 0));
    memset(out, 0, sizeof *out);
    if (len > PL_WAKU_MESSAGE_MAX) return PL_ERR_TOO_LARGE;
    Waku__Pb__WakuMessage *pb = waku__pb__waku_message__unpack(NULL, len, buf);
    if (!pb) return PL_ERR_P2P_PROTOBUF;
    out->has_payload = pb->has_payload;
    out->payload = pb->has_payload ? pb->payload.data : NULL;
    out->payload_len = pb->has_payload ? pb->payload.len : 0;
    if (pb->has_content_topic) {
        out->content_topic = (const char *)pb->content_topic.data;
        out->content_topic_len = pb->content_topic.len;
    }
    out->version = pb->has_version ? pb->version : 0;
    out->timestamp = pb->has_timestamp ? pb->timestamp : 0;
    if (pb->has_meta && pb->meta.len) {
        out->meta = pb->meta.data;
        out->meta_len = pb->meta.len;
    }
    if (pb->has_rate_limit_proof && pb->rate_limit_proof.len) {
        out->rate_limit_proof = pb->rate_limit_proof.data;
        out->rate_limit_proof_len = pb->rate_limit_proof.len;
    }
    out->ephemeral = pb->has_ephemeral && pb->ephemeral;
    out->pl__owner = pb;
    return PL_OK;
}

void pl_waku_message_release(pl_waku_message *m) {
    if (!m) return;
    if (m->pl__owner) waku__pb__waku_message__free_unpacked(m->pl__owner, NULL);
    memset(m, 0, sizeof *m);
}

/* The protobuf-c view of m; borrows m's buffers (the casts drop const only
 * because protobuf-c's structs are not const-qualified; nothing writes). */
static void to_pb(Waku__Pb__WakuMessage *pb, const pl_waku_message *m) {
    waku__pb__waku_message__init(pb);
    pb->has_payload = 1;
    pb->payload.data = (uint8_t *)m->payload;
    pb->payload.len = m->payload_len;
    pb->has_content_topic = 1;
    pb->content_topic.data = (uint8_t *)m->content_topic;
    pb->content_topic.len = m->content_topic_len;
    pb->has_version = m->version != 0;
    pb->version = m->version;
    pb->has_timestamp = m->timestamp != 0;
    pb->timestamp = m->timestamp;
    pb->has_meta = m->meta_len != 0;
    pb->meta.data = (uint8_t *)m->meta;
    pb->meta.len = m->meta_len;
    pb->has_rate_limit_proof = m->rate_limit_proof_len != 0;
    pb->rate_limit_proof.data = (uint8_t *)m->rate_limit_proof;
    pb->rate_limit_proof.len = m->rate_limit_proof_len;
    pb->has_ephemeral = m->ephemeral;
    pb->ephemeral = m->ephemeral;
}

static void require_fields(const pl_waku_message *m) {
    PL_REQUIRE(m);
    PL_REQUIRE(m->payload || m->payload_len == 0);
    PL_REQUIRE(m->content_topic || m->content_topic_len == 0);
    PL_REQUIRE(m->meta || m->meta_len == 0);
    PL_REQUIRE(m->rate_limit_proof || m->rate_limit_proof_len == 0);
}

size_t pl_waku_message_encoded_size(const pl_waku_message *m) {
    require_fields(m);
    Waku__Pb__WakuMessage pb;
    to_pb(&pb, m);
    return waku__pb__waku_message__get_packed_size(&pb);
}

pl_err pl_waku_message_encode(uint8_t *out, size_t cap, size_t *out_len, const pl_waku_message *m) {
    PL_REQUIRE(out_len && (out || cap == 0));
    require_fields(m);
    *out_len = 0;
    if (m->meta_len > PL_WAKU_META_MAX) return PL_ERR_WAKU_MESSAGE;
    Waku__Pb__WakuMessage pb;
    to_pb(&pb, m);
    size_t n = waku__pb__waku_message__get_packed_size(&pb);
    if (n > PL_WAKU_MESSAGE_MAX) return PL_ERR_TOO_LARGE;
    if (n > cap) return PL_ERR_BUFFER_TOO_SMALL;
    size_t w = waku__pb__waku_message__pack(&pb, out);
    if (w != n) return PL_ERR_INTERNAL;
    *out_len = n;
    return PL_OK;
}

pl_err pl_waku_message_validate(const pl_waku_message *m, size_t wire_len) {
    require_fields(m);
    if (wire_len > PL_WAKU_MESSAGE_MAX) return PL_ERR_TOO_LARGE;
    if (!m->has_payload) return PL_ERR_WAKU_MESSAGE;
    if (m->meta_len > PL_WAKU_META_MAX) return PL_ERR_WAKU_MESSAGE;
    /* Relays carry any content topic: nwaku's relay validates none, js-waku's
     * only wants one. The 23/WAKU2-TOPICS form is for autosharding (RFC 37's
     * Noise session topics have seven parts). */
    return pl__waku_relay_topic_check(m->content_topic, m->content_topic_len);
}

pl_err pl_waku_message_check(const uint8_t *buf, size_t len) {
    pl_waku_message m;
    PL_TRY(pl_waku_message_decode(&m, buf, len));
    pl_err e = pl_waku_message_validate(&m, len);
    pl_waku_message_release(&m);
    return e;
}

void pl_waku_message_hash(uint8_t out[PL_WAKU_HASH_BYTES], const char *pubsub_topic,
                          const pl_waku_message *m) {
    PL_REQUIRE(out && pubsub_topic);
    require_fields(m);
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, (const uint8_t *)pubsub_topic, strlen(pubsub_topic));
    if (m->payload_len) crypto_hash_sha256_update(&st, m->payload, m->payload_len);
    if (m->content_topic_len)
        crypto_hash_sha256_update(&st, (const uint8_t *)m->content_topic, m->content_topic_len);
    if (m->meta_len) crypto_hash_sha256_update(&st, m->meta, m->meta_len);
    uint8_t ts[8];
    uint64_t t = (uint64_t)m->timestamp;
    for (int i = 7; i >= 0; i--, t >>= 8)
        ts[i] = (uint8_t)t;
    crypto_hash_sha256_update(&st, ts, sizeof ts);
    crypto_hash_sha256_final(&st, out);
}
