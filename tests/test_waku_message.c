/* SPDX-License-Identifier: Apache-2.0 */
/* 14/WAKU2-MESSAGE codec, validation and hash; 23/51 topics and sharding;
 * 66/WAKU2-METADATA codec and policy. Vectors: waku-message.json. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pairlink/codec.h"
#include "pairlink/hash.h"
#include "pairlink/waku.h"
#include "support/support.h"
#include "waku/metadata.h"

static json_t *vec;

static void hex_eq(const uint8_t *b, size_t n, const char *hex) {
    char buf[4096];
    assert_true(n * 2 + 1 <= sizeof buf);
    assert_int_equal(pl_hex_encode(buf, sizeof buf, b, n), PL_OK);
    assert_string_equal(buf, hex);
}

static void test_vector_encoded(void **state) {
    (void)state;
    const char *ct = pl_test_str(vec, "libp2p.waku_message.content_topic");
    const char *pl = pl_test_str(vec, "libp2p.waku_message.payload_utf8");
    pl_waku_message m = {.payload = (const uint8_t *)pl,
                         .payload_len = strlen(pl),
                         .has_payload = true,
                         .content_topic = ct,
                         .content_topic_len = strlen(ct)};
    uint8_t out[256];
    size_t n = 0;
    assert_int_equal(pl_waku_message_encode(out, sizeof out, &n, &m), PL_OK);
    assert_int_equal(n, pl_waku_message_encoded_size(&m));
    hex_eq(out, n, pl_test_str(vec, "libp2p.waku_message.encoded"));
    uint8_t id[32];
    pl_sha256(id, out, n);
    hex_eq(id, 32, pl_test_str(vec, "libp2p.waku_message.gossipsub_message_id_sha256_of_data"));

    /* Decode the vector bytes back. */
    size_t vl = 0;
    uint8_t *v = pl_test_unhex(pl_test_str(vec, "libp2p.waku_message.encoded"), &vl);
    pl_waku_message d;
    assert_int_equal(pl_waku_message_decode(&d, v, vl), PL_OK);
    assert_true(d.has_payload);
    assert_int_equal(d.payload_len, 2);
    assert_memory_equal(d.payload, "hi", 2);
    assert_int_equal(d.content_topic_len, strlen(ct));
    assert_memory_equal(d.content_topic, ct, strlen(ct));
    assert_int_equal(d.version, 0);
    assert_int_equal(d.timestamp, 0);
    assert_false(d.ephemeral);
    assert_int_equal(pl_waku_message_validate(&d, vl), PL_OK);
    pl_waku_message_release(&d);
    assert_null(d.pl__owner);
    assert_int_equal(pl_waku_message_check(v, vl), PL_OK);
    /* An empty buffer cap is too small. */
    assert_int_equal(pl_waku_message_encode(out, n - 1, &vl, &m), PL_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(vl, 0);
    free(v);
}

static void test_round_trip_all_fields(void **state) {
    (void)state;
    uint8_t payload[1000], meta[64], proof[300];
    uint64_t rs = 7;
    pl_test_rand_bytes(&rs, payload, sizeof payload);
    pl_test_rand_bytes(&rs, meta, sizeof meta);
    pl_test_rand_bytes(&rs, proof, sizeof proof);
    const char *ct = "/0/pairlink/1/hello/proto";
    pl_waku_message m = {.payload = payload,
                         .payload_len = sizeof payload,
                         .has_payload = true,
                         .content_topic = ct,
                         .content_topic_len = strlen(ct),
                         .version = 1,
                         .timestamp = -1234567890123456789LL,
                         .meta = meta,
                         .meta_len = sizeof meta,
                         .rate_limit_proof = proof,
                         .rate_limit_proof_len = sizeof proof,
                         .ephemeral = true};
    uint8_t *buf = malloc(2000);
    size_t n = 0;
    assert_int_equal(pl_waku_message_encode(buf, 2000, &n, &m), PL_OK);
    pl_waku_message d;
    assert_int_equal(pl_waku_message_decode(&d, buf, n), PL_OK);
    assert_int_equal(d.payload_len, sizeof payload);
    assert_memory_equal(d.payload, payload, sizeof payload);
    assert_int_equal(d.version, 1);
    assert_true(d.timestamp == -1234567890123456789LL);
    assert_int_equal(d.meta_len, 64);
    assert_memory_equal(d.meta, meta, 64);
    assert_int_equal(d.rate_limit_proof_len, sizeof proof);
    assert_true(d.ephemeral);
    /* Re-encoding what was decoded gives the same bytes. */
    uint8_t *buf2 = malloc(2000);
    size_t n2 = 0;
    assert_int_equal(pl_waku_message_encode(buf2, 2000, &n2, &d), PL_OK);
    assert_int_equal(n, n2);
    assert_memory_equal(buf, buf2, n);
    assert_int_equal(pl_waku_message_validate(&d, n), PL_OK);
    pl_waku_message_release(&d);
    free(buf), free(buf2);
}

static void test_validation(void **state) {
    (void)state;
    uint8_t meta[65] = {0};
    const char *ct = "/app/1/x/proto";
    pl_waku_message m = {.payload = NULL,
                         .payload_len = 0,
                         .has_payload = true,
                         .content_topic = ct,
                         .content_topic_len = strlen(ct)};
    uint8_t buf[512];
    size_t n;
    /* Empty payload: the field is still written, and the message is valid. */
    assert_int_equal(pl_waku_message_encode(buf, sizeof buf, &n, &m), PL_OK);
    assert_int_equal(buf[0], 0x0a);
    assert_int_equal(buf[1], 0x00);
    assert_int_equal(pl_waku_message_check(buf, n), PL_OK);
    /* meta of 65 bytes: the encoder refuses; hand-made bytes are refused
     * by validation. */
    m.meta = meta, m.meta_len = 65;
    assert_int_equal(pl_waku_message_encode(buf, sizeof buf, &n, &m), PL_ERR_WAKU_MESSAGE);
    static const uint8_t long_meta[] = {0x0a, 0x00, 0x12, 0x03, '/', 'a', '/', 0x5a, 65};
    uint8_t raw[200];
    memcpy(raw, long_meta, sizeof long_meta);
    memset(raw + sizeof long_meta, 1, 65);
    assert_int_equal(pl_waku_message_check(raw, sizeof long_meta + 65), PL_ERR_WAKU_MESSAGE);
    /* No payload field. */
    static const uint8_t no_payload[] = {0x12, 0x0e, '/', 'a', 'p', 'p', '/', '1',
                                         '/',  'x',  '/', 'p', 'r', 'o', 't', 'o'};
    assert_int_equal(pl_waku_message_check(no_payload, sizeof no_payload), PL_ERR_WAKU_MESSAGE);
    /* Content topics: a relay carries any (nwaku's relay checks none), but
     * one must be there. */
    static const uint8_t any_topic[] = {0x0a, 0x01, 'x', 0x12, 0x05, 'h', 'e', 'l', 'l', 'o'};
    assert_int_equal(pl_waku_message_check(any_topic, sizeof any_topic), PL_OK);
    static const uint8_t empty_topic[] = {0x0a, 0x01, 'x', 0x12, 0x00};
    assert_int_equal(pl_waku_message_check(empty_topic, sizeof empty_topic), PL_ERR_WAKU_TOPIC);
    static const uint8_t utf8_topic[] = {0x0a, 0x01, 'x', 0x12, 0x02, '/', 0xff};
    assert_int_equal(pl_waku_message_check(utf8_topic, sizeof utf8_topic), PL_ERR_BAD_UTF8);
    static const uint8_t nul_topic[] = {0x0a, 0x00, 0x12, 0x09, '/', 'a', '/',
                                        '1',  '/',  'x',  '/',  'p', 0};
    assert_int_equal(pl_waku_message_check(nul_topic, sizeof nul_topic), PL_ERR_WAKU_TOPIC);
    static const uint8_t no_topic[] = {0x0a, 0x01, 'x'};
    assert_int_equal(pl_waku_message_check(no_topic, sizeof no_topic), PL_ERR_WAKU_TOPIC);
    /* Not a protobuf: truncated length, wrong wire type. */
    static const uint8_t trunc[] = {0x0a, 0x05, 'a'};
    assert_int_equal(pl_waku_message_check(trunc, sizeof trunc), PL_ERR_P2P_PROTOBUF);
    static const uint8_t wrong_type[] = {0x08, 0x01};
    assert_int_equal(pl_waku_message_check(wrong_type, sizeof wrong_type), PL_ERR_P2P_PROTOBUF);
    /* The size cap, on either side of it. */
    size_t big = PL_WAKU_MESSAGE_MAX + 1;
    uint8_t *huge = calloc(1, big);
    assert_int_equal(pl_waku_message_check(huge, big), PL_ERR_TOO_LARGE);
    uint8_t *zeros = calloc(1, PL_WAKU_MESSAGE_MAX);
    pl_waku_message hm = {.payload = zeros,
                          .payload_len = PL_WAKU_MESSAGE_MAX - 30,
                          .has_payload = true,
                          .content_topic = ct,
                          .content_topic_len = strlen(ct)};
    size_t hn = 0;
    assert_int_equal(pl_waku_message_encode(huge, big, &hn, &hm), PL_OK);
    assert_true(hn <= PL_WAKU_MESSAGE_MAX);
    assert_int_equal(pl_waku_message_check(huge, hn), PL_OK);
    hm.payload_len = PL_WAKU_MESSAGE_MAX;
    uint8_t *p2 = calloc(1, PL_WAKU_MESSAGE_MAX);
    hm.payload = p2;
    assert_int_equal(pl_waku_message_encode(huge, big, &hn, &hm), PL_ERR_TOO_LARGE);
    free(huge), free(p2), free(zeros);
}

static void test_message_hash_vector(void **state) {
    (void)state;
    json_t *h = json_array_get(json_object_get(vec, "message_hash"), 0);
    assert_non_null(h);
    size_t pl, ml;
    uint8_t *payload = pl_test_unhex(json_string_value(json_object_get(h, "payload")), &pl);
    uint8_t *meta = pl_test_unhex(json_string_value(json_object_get(h, "meta")), &ml);
    const char *ct = json_string_value(json_object_get(h, "content_topic"));
    const char *ts = json_string_value(json_object_get(h, "timestamp"));
    pl_waku_message m = {.payload = payload,
                         .payload_len = pl,
                         .has_payload = true,
                         .content_topic = ct,
                         .content_topic_len = strlen(ct),
                         .timestamp = (int64_t)strtoull(ts, NULL, 16),
                         .meta = meta,
                         .meta_len = ml};
    uint8_t out[32];
    pl_waku_message_hash(out, json_string_value(json_object_get(h, "pubsub_topic")), &m);
    hex_eq(out, 32, json_string_value(json_object_get(h, "hash")));
    /* Every input counts: another timestamp gives another hash. */
    m.timestamp++;
    uint8_t out2[32];
    pl_waku_message_hash(out2, json_string_value(json_object_get(h, "pubsub_topic")), &m);
    assert_memory_not_equal(out, out2, 32);
    free(payload), free(meta);
}

static void test_content_topics(void **state) {
    (void)state;
    pl_waku_content_topic t;
    const char *s = "/toychat/2/huilong/proto";
    assert_int_equal(pl_waku_content_topic_parse(&t, s, strlen(s)), PL_OK);
    assert_int_equal(t.generation, -1);
    assert_int_equal(t.app_len, 7);
    assert_memory_equal(t.app, "toychat", 7);
    assert_memory_equal(t.version, "2", 1);
    assert_memory_equal(t.name, "huilong", 7);
    assert_memory_equal(t.encoding, "proto", 5);
    char out[128];
    size_t n;
    assert_int_equal(pl_waku_content_topic_format(out, sizeof out, &n, &t), PL_OK);
    assert_string_equal(out, s);
    assert_int_equal(pl_waku_content_topic_format(out, n, &n, &t), PL_ERR_BUFFER_TOO_SMALL);

    const char *g = "/0/toychat/2/huilong/proto";
    assert_int_equal(pl_waku_content_topic_parse(&t, g, strlen(g)), PL_OK);
    assert_int_equal(t.generation, 0);
    assert_int_equal(pl_waku_content_topic_format(out, sizeof out, &n, &t), PL_OK);
    assert_string_equal(out, g);

    static const char *bad[] = {"",
                                "toychat/2/huilong/proto",
                                "/toychat/2/huilong",
                                "/a/b/c/d/e/f",
                                "//2/huilong/proto",
                                "/a/2/huilong/",
                                "/x/a/2/h/p",
                                "/1234567890/a/2/h/p",
                                "/a/b/c/d/"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        memset(&t, 0x55, sizeof t);
        assert_int_equal(pl_waku_content_topic_parse(&t, bad[i], strlen(bad[i])),
                         PL_ERR_WAKU_TOPIC);
        assert_null(t.app);
    }
    assert_int_equal(pl_waku_content_topic_parse(&t, "/a/\xff/c/d", 8), PL_ERR_BAD_UTF8);
    pl_waku_content_topic slash = {.generation = -1,
                                   .app = "a/b",
                                   .app_len = 3,
                                   .version = "1",
                                   .version_len = 1,
                                   .name = "n",
                                   .name_len = 1,
                                   .encoding = "e",
                                   .encoding_len = 1};
    assert_int_equal(pl_waku_content_topic_format(out, sizeof out, &n, &slash), PL_ERR_WAKU_TOPIC);
}

static void test_pubsub_topics(void **state) {
    (void)state;
    char t[PL_WAKU_PUBSUB_TOPIC_SIZE];
    pl_waku_pubsub_topic_format(t, 16, 64);
    assert_string_equal(t, "/waku/2/rs/16/64");
    pl_waku_pubsub_topic_format(t, 65535, 65535);
    assert_string_equal(t, "/waku/2/rs/65535/65535");
    uint16_t c, s;
    assert_int_equal(pl_waku_pubsub_topic_parse(&c, &s, t, strlen(t)), PL_OK);
    assert_int_equal(c, 65535);
    assert_int_equal(s, 65535);
    assert_int_equal(pl_waku_pubsub_topic_parse(&c, &s, "/waku/2/rs/0/0", 14), PL_OK);
    static const char *bad[] = {"/waku/2/rs/16",
                                "/waku/2/rs/16/",
                                "/waku/2/rs//1",
                                "/waku/2/rs/65536/1",
                                "/waku/2/rs/016/1",
                                "/waku/2/rs/1/2/3",
                                "/waku/2/default-waku/proto",
                                "/waku/2/rs/1/x",
                                "/waku/2/rs/-1/2"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        c = s = 9;
        assert_int_equal(pl_waku_pubsub_topic_parse(&c, &s, bad[i], strlen(bad[i])),
                         PL_ERR_WAKU_TOPIC);
        assert_int_equal(c, 0);
        assert_int_equal(s, 0);
    }
}

static void test_autosharding(void **state) {
    (void)state;
    json_t *a = json_array_get(json_object_get(vec, "autosharding"), 0);
    char ct[128];
    snprintf(ct, sizeof ct, "/%s/%s/some-name/proto", json_string_value(json_object_get(a, "app")),
             json_string_value(json_object_get(a, "version")));
    uint16_t shard = 99;
    uint32_t ns = (uint32_t)json_integer_value(json_object_get(a, "num_shards"));
    assert_int_equal(pl_waku_autoshard(&shard, ct, strlen(ct), ns), PL_OK);
    assert_int_equal(shard, json_integer_value(json_object_get(a, "shard")));

    /* Independent computation over many topics and shard counts: the
     * name and encoding never matter, app and version do. */
    for (int i = 0; i < 50; i++) {
        char t1[64], t2[64], hashin[64];
        snprintf(t1, sizeof t1, "/app%d/%d/n1/proto", i, i % 3);
        snprintf(t2, sizeof t2, "/0/app%d/%d/other/rlp", i, i % 3);
        int hl = snprintf(hashin, sizeof hashin, "app%d%d", i, i % 3);
        uint8_t h[32];
        pl_sha256(h, (const uint8_t *)hashin, (size_t)hl);
        uint64_t v = 0;
        for (int k = 24; k < 32; k++)
            v = (v << 8) | h[k];
        uint16_t s1, s2;
        assert_int_equal(pl_waku_autoshard(&s1, t1, strlen(t1), 8), PL_OK);
        assert_int_equal(pl_waku_autoshard(&s2, t2, strlen(t2), 8), PL_OK);
        assert_int_equal(s1, v % 8);
        assert_int_equal(s1, s2);
    }
    assert_int_equal(pl_waku_autoshard(&shard, "/1/a/b/c/d", 10, 8), PL_ERR_UNSUPPORTED);
    assert_int_equal(pl_waku_autoshard(&shard, "/a/b/c/d", 8, 0), PL_ERR_INVALID_ARG);
    assert_int_equal(pl_waku_autoshard(&shard, "a/b/c/d", 7, 8), PL_ERR_WAKU_TOPIC);

    pl_waku_sharding sh;
    pl_waku_sharding_default(&sh);
    char pt[PL_WAKU_PUBSUB_TOPIC_SIZE];
    assert_int_equal(pl_waku_pubsub_topic_for(pt, &sh, ct, strlen(ct)), PL_OK);
    assert_string_equal(pt, "/waku/2/rs/16/64");
    assert_int_equal(pl_waku_pubsub_topic_for(pt, &sh, "nope", 4), PL_ERR_WAKU_TOPIC);
    assert_string_equal(pt, "");
    /* RFC 37's session topics: carried on the static shard, and sharded by
     * app and version */
    static const char rfc37[] = "/pairlink/1/wakunoise/1/sessions/00ff/proto";
    assert_int_equal(pl_waku_pubsub_topic_for(pt, &sh, rfc37, strlen(rfc37)), PL_OK);
    assert_string_equal(pt, "/waku/2/rs/16/64");
    uint16_t s37 = 99, s4 = 98;
    assert_int_equal(pl_waku_autoshard(&s37, rfc37, strlen(rfc37), 8), PL_OK);
    assert_int_equal(pl_waku_autoshard(&s4, "/pairlink/1/pair-00/proto", 25, 8), PL_OK);
    assert_int_equal(s37, s4);
    /* every pairlink topic on one shard: 6 of 8 (node-manager-pairing.md 4.4) */
    assert_int_equal(s4, 6);
    static const char *still_bad[] = {"/a/b/c/d/e//g", "/a/b/c/d/e/f/", "a/b/c/d/e/f/g"};
    for (size_t i = 0; i < sizeof still_bad / sizeof *still_bad; i++)
        assert_int_equal(pl_waku_autoshard(&s37, still_bad[i], strlen(still_bad[i]), 8),
                         PL_ERR_WAKU_TOPIC);
    sh.cluster = 1, sh.num_shards = 8;
    assert_int_equal(pl_waku_pubsub_topic_for(pt, &sh, ct, strlen(ct)), PL_OK);
    assert_string_equal(pt, "/waku/2/rs/1/0");
}

static void test_metadata(void **state) {
    (void)state;
    pl__waku_metadata m = {
        .has_cluster = true, .cluster = 16, .n_shards = 3, .shards = {32, 64, 300}};
    uint8_t buf[PL__WAKU_METADATA_MAX_BYTES];
    size_t n;
    assert_int_equal(pl__waku_metadata_encode(buf, sizeof buf, &n, &m), PL_OK);
    /* 08 10, 10 20 10 40 10 ac02, 1a 04 20 40 ac02: nwaku's layout. */
    hex_eq(buf, n, "08101020104010ac021a042040ac02");
    pl__waku_metadata d;
    assert_int_equal(pl__waku_metadata_decode(&d, buf, n), PL_OK);
    assert_true(d.has_cluster);
    assert_int_equal(d.cluster, 16);
    assert_int_equal(d.n_shards, 3);
    assert_int_equal(d.shards[2], 300);
    /* Only field 2, unpacked; only field 2, packed; only field 3 unpacked. */
    static const uint8_t f2u[] = {0x08, 0x01, 0x10, 0x05, 0x10, 0x07};
    static const uint8_t f2p[] = {0x08, 0x01, 0x12, 0x02, 0x05, 0x07};
    static const uint8_t f3u[] = {0x08, 0x01, 0x18, 0x05, 0x18, 0x07};
    const uint8_t *forms[] = {f2u, f2p, f3u};
    size_t lens[] = {sizeof f2u, sizeof f2p, sizeof f3u};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(pl__waku_metadata_decode(&d, forms[i], lens[i]), PL_OK);
        assert_int_equal(d.cluster, 1);
        assert_int_equal(d.n_shards, 2);
        assert_int_equal(d.shards[0], 5);
        assert_int_equal(d.shards[1], 7);
    }
    /* Field 3 wins over field 2 when both are there. */
    static const uint8_t both[] = {0x10, 0x09, 0x1a, 0x01, 0x04};
    assert_int_equal(pl__waku_metadata_decode(&d, both, sizeof both), PL_OK);
    assert_false(d.has_cluster);
    assert_int_equal(d.n_shards, 1);
    assert_int_equal(d.shards[0], 4);
    /* Policy. */
    assert_int_equal(pl__waku_metadata_check(16, NULL), PL_ERR_WAKU_METADATA);
    assert_int_equal(pl__waku_metadata_check(16, &d), PL_ERR_WAKU_METADATA);
    m.cluster = 1;
    assert_int_equal(pl__waku_metadata_check(16, &m), PL_ERR_WAKU_CLUSTER);
    m.cluster = 16;
    assert_int_equal(pl__waku_metadata_check(16, &m), PL_OK);
    m.cluster = 0, m.n_shards = 0;
    assert_int_equal(pl__waku_metadata_encode(buf, sizeof buf, &n, &m), PL_OK);
    assert_int_equal(pl__waku_metadata_decode(&d, buf, n), PL_OK);
    assert_true(d.has_cluster);
    assert_int_equal(pl__waku_metadata_check(0, &d), PL_OK);
    /* Malformed and oversized. */
    static const uint8_t junk[] = {0x0a, 0x05, 0x01};
    assert_int_equal(pl__waku_metadata_decode(&d, junk, sizeof junk), PL_ERR_WAKU_METADATA);
    assert_int_equal(pl__waku_metadata_decode(&d, buf, PL__WAKU_METADATA_MAX_BYTES + 1),
                     PL_ERR_TOO_LARGE);
    /* Too many shards to fit nwaku's 1024-byte read. */
    m.n_shards = 600;
    for (size_t i = 0; i < 600; i++)
        m.shards[i] = (uint32_t)i;
    assert_int_equal(pl__waku_metadata_encode(buf, sizeof buf, &n, &m), PL_ERR_TOO_LARGE);
    assert_int_equal(n, 0);
}

int main(void) {
    if (pl_init() != PL_OK) return 1;
    vec = pl_test_vectors("waku-message.json");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vector_encoded), cmocka_unit_test(test_round_trip_all_fields),
        cmocka_unit_test(test_validation),     cmocka_unit_test(test_message_hash_vector),
        cmocka_unit_test(test_content_topics), cmocka_unit_test(test_pubsub_topics),
        cmocka_unit_test(test_autosharding),   cmocka_unit_test(test_metadata),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    json_decref(vec);
    return r;
}
