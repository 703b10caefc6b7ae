/* SPDX-License-Identifier: Apache-2.0 */
/* Waku v2 messages, topics and sharding: 14/WAKU2-MESSAGE, 23/WAKU2-TOPICS,
 * 51/WAKU2-RELAY-SHARDING.
 *
 * A WakuMessage is what travels as the `data` of a gossipsub message on a
 * Waku relay pubsub topic (`/waku/2/rs/<cluster>/<shard>`); applications
 * address content topics (`/{app}/{version}/{name}/{encoding}`), which map
 * to a shard either statically (the deployment names the shard) or by
 * autosharding (a hash of app and version modulo the cluster's shard count).
 *
 * pairlink's defaults are cluster 16, shard 64: Status's fleet carries that
 * shard without RLN or signature protection (docs/waku.md says why and what
 * another deployment changes).
 *
 * Everything here is reentrant, does no I/O and reads no clock. */
#ifndef PAIRLINK_WAKU_H
#define PAIRLINK_WAKU_H

#include "pairlink/common.h"

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 14/WAKU2-MESSAGE caps a whole encoded message at 150 KiB (nwaku's
 * DefaultMaxWakuMessageSize). */
#define PL_WAKU_MESSAGE_MAX (150u * 1024u)
#define PL_WAKU_META_MAX 64 /* bytes of `meta` (nwaku MaxMetaAttrLength) */
#define PL_WAKU_HASH_BYTES 32

#define PL_WAKU_DEFAULT_CLUSTER 16u
#define PL_WAKU_DEFAULT_SHARD 64u
/* "/waku/2/rs/65535/65535" and its NUL fit. */
#define PL_WAKU_PUBSUB_TOPIC_SIZE 24

/* A WakuMessage. Every pointer is borrowed: from the decoder's buffer after
 * pl_waku_message_decode (valid until pl_waku_message_release), or from the
 * caller when it fills one to encode. A NULL pointer with length 0 is an
 * absent field. `has_payload` distinguishes an absent payload field (which
 * nwaku refuses) from an empty one; the encoder always writes field 1. */
typedef struct pl_waku_message {
    const uint8_t *payload;
    size_t payload_len;
    bool has_payload;
    const char *content_topic; /* not NUL-terminated in general */
    size_t content_topic_len;
    uint32_t version;    /* 0 plain, 1 26/WAKU-PAYLOAD, 2 Noise PayloadV2 */
    int64_t timestamp;   /* sender's clock, ns since the epoch; 0 = unset */
    const uint8_t *meta; /* at most PL_WAKU_META_MAX bytes */
    size_t meta_len;
    const uint8_t *rate_limit_proof; /* RLN (17/WAKU2-RLN-RELAY); carried, never checked */
    size_t rate_limit_proof_len;
    bool ephemeral;  /* store nodes must not keep it */
    void *pl__owner; /* decoder state; NULL in a message the caller filled */
} pl_waku_message;

/* Decode a WakuMessage. On success *out borrows from an internal copy and
 * must be released with pl_waku_message_release(); on failure *out is
 * zeroed and needs no release. Unknown fields are skipped (protobuf rules).
 * Decoding does not validate: call pl_waku_message_validate.
 * Errors: PL_ERR_TOO_LARGE (len > PL_WAKU_MESSAGE_MAX),
 * PL_ERR_P2P_PROTOBUF (not a protobuf of this shape), PL_ERR_NOMEM. */
PL_EXPORT pl_err pl_waku_message_decode(pl_waku_message *out, const uint8_t *buf, size_t len);

/* Release what pl_waku_message_decode kept; zeroes *m. NULL ok, and a
 * caller-filled message (pl__owner NULL) is only zeroed. */
PL_EXPORT void pl_waku_message_release(pl_waku_message *m);

/* Exact encoded size of m (fields written as a proto3 encoder writes them:
 * payload and content_topic always, the others only when not zero/empty). */
PL_EXPORT size_t pl_waku_message_encoded_size(const pl_waku_message *m);

/* Encode m into out (capacity cap); *out_len is the size, 0 on failure.
 * Errors: PL_ERR_BUFFER_TOO_SMALL, PL_ERR_TOO_LARGE (above
 * PL_WAKU_MESSAGE_MAX), PL_ERR_WAKU_MESSAGE (meta longer than
 * PL_WAKU_META_MAX). Encoding is deterministic. out must not overlap the
 * buffers m points to. */
PL_EXPORT pl_err pl_waku_message_encode(uint8_t *out, size_t cap, size_t *out_len,
                                        const pl_waku_message *m);

/* The relay's acceptance rules for a message of `wire_len` encoded bytes:
 * wire_len <= PL_WAKU_MESSAGE_MAX (PL_ERR_TOO_LARGE), meta <=
 * PL_WAKU_META_MAX and the payload field present (PL_ERR_WAKU_MESSAGE), a
 * content topic present and non-empty, UTF-8 without NUL
 * (PL_ERR_WAKU_TOPIC, PL_ERR_BAD_UTF8). Its form is not checked: nwaku's
 * relay checks none, and RFC 37's Noise session topics
 * (`/{app}/{version}/wakunoise/1/sessions/{id}/proto`) are not of the
 * 23/WAKU2-TOPICS form. */
PL_EXPORT pl_err pl_waku_message_validate(const pl_waku_message *m, size_t wire_len);

/* Decode + validate in one call, for bytes off the wire: what a relay
 * validator runs. Same errors as decode and validate. Nothing is kept. */
PL_EXPORT pl_err pl_waku_message_check(const uint8_t *buf, size_t len);

/* 14/WAKU2-MESSAGE deterministic message hash: sha256(pubsub_topic |
 * payload | content_topic | meta | timestamp as 8 bytes big-endian). */
PL_EXPORT void pl_waku_message_hash(uint8_t out[PL_WAKU_HASH_BYTES], const char *pubsub_topic,
                                    const pl_waku_message *m);

/* ---- content topics (23/WAKU2-TOPICS, 51 generation prefix) ---- */

/* `/{app}/{version}/{name}/{encoding}`, or with autosharding's optional
 * generation prefix `/{generation}/{app}/{version}/{name}/{encoding}`
 * (generation a decimal number; only 0 is defined). The parts borrow from
 * the parsed string; none is empty and none contains '/'. */
typedef struct pl_waku_content_topic {
    int32_t generation; /* -1 when the prefix is absent */
    const char *app;
    size_t app_len;
    const char *version;
    size_t version_len;
    const char *name;
    size_t name_len;
    const char *encoding;
    size_t encoding_len;
} pl_waku_content_topic;

/* Parse s (len bytes, no NUL needed). Errors: PL_ERR_WAKU_TOPIC (no leading
 * '/', not 4 or 5 parts, an empty part, a non-numeric or too large
 * generation, a NUL byte), PL_ERR_BAD_UTF8. *out zeroed on failure. */
PL_EXPORT pl_err pl_waku_content_topic_parse(pl_waku_content_topic *out, const char *s, size_t len);

/* Format t into out (capacity cap, NUL-terminated); *out_len = strlen.
 * Errors: PL_ERR_BUFFER_TOO_SMALL; PL_ERR_WAKU_TOPIC if a part is empty or
 * contains '/'. */
PL_EXPORT pl_err pl_waku_content_topic_format(char *out, size_t cap, size_t *out_len,
                                              const pl_waku_content_topic *t);

/* ---- pubsub topics and sharding (51/WAKU2-RELAY-SHARDING) ---- */

/* "/waku/2/rs/<cluster>/<shard>", decimal, no leading zeros. */
PL_EXPORT void pl_waku_pubsub_topic_format(char out[PL_WAKU_PUBSUB_TOPIC_SIZE], uint16_t cluster,
                                           uint16_t shard);

/* Parse a static-sharding pubsub topic. Both numbers must fit 16 bits (as
 * nwaku reads them) and be plain decimal. Errors: PL_ERR_WAKU_TOPIC.
 * Outputs are 0 on failure. */
PL_EXPORT pl_err pl_waku_pubsub_topic_parse(uint16_t *cluster, uint16_t *shard, const char *s,
                                            size_t len);

/* Autosharding: shard = uint64 big-endian of sha256(app | version)[24..32]
 * mod num_shards (generation 0, the only one defined). A topic of more
 * than five non-empty parts (RFC 37's session topics) is sharded by its
 * first two, as `/{app}/{version}/...` (nwaku and js-waku refuse such
 * topics under autosharding). Errors:
 * PL_ERR_WAKU_TOPIC / PL_ERR_BAD_UTF8 (content topic), PL_ERR_UNSUPPORTED
 * (generation other than 0), PL_ERR_INVALID_ARG (num_shards 0 or above
 * 65536). *shard is 0 on failure. */
PL_EXPORT pl_err pl_waku_autoshard(uint16_t *shard, const char *content_topic, size_t len,
                                   uint32_t num_shards);

/* Where a deployment puts content topics. num_shards 0 means static
 * sharding: every content topic goes to `shard`. Otherwise autosharding
 * over shards 0..num_shards-1 of `cluster`. */
typedef struct pl_waku_sharding {
    uint16_t cluster;
    uint16_t shard;      /* static sharding only */
    uint32_t num_shards; /* 0: static; else autosharding */
} pl_waku_sharding;

/* cluster 16, shard 64, static. */
PL_EXPORT void pl_waku_sharding_default(pl_waku_sharding *out);

/* The pubsub topic carrying content_topic under s. The content topic is
 * checked in both modes: autosharding as pl_waku_autoshard; static
 * sharding takes any topic a relay carries (pl_waku_message_validate)
 * that starts with '/'. Errors: PL_ERR_WAKU_TOPIC, PL_ERR_BAD_UTF8, those
 * of pl_waku_autoshard. out is "" on failure. */
PL_EXPORT pl_err pl_waku_pubsub_topic_for(char out[PL_WAKU_PUBSUB_TOPIC_SIZE],
                                          const pl_waku_sharding *s, const char *content_topic,
                                          size_t len);

#ifdef __cplusplus
}
#endif
#endif
