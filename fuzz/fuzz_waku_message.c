/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: WakuMessage decoding and validation, content topics,
 * pubsub topics and autosharding (include/pairlink/waku.h).
 *
 * Input: any bytes, read as an encoded WakuMessage and as a topic string.
 * Checks, besides "no crash, no leak, no UB":
 *  - decode: named errors only, *out zeroed on failure; what decodes
 *    re-encodes (when meta fits) to bytes that decode to the same fields,
 *    and re-encoding those is a fixed point; check() = decode + validate;
 *  - content topic parse: named errors, parts non-empty without '/'; what
 *    parses formats back to exactly the input;
 *  - pubsub topic parse: what parses formats back to exactly the input;
 *  - autosharding: a shard below the shard count, or a named error.
 *
 * With PL_FUZZ_WRITE_SEEDS=DIR the initializer writes seeds. */
#include "pairlink/waku.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond) {
    if (!cond) abort();
}

static int same(const void *a, size_t al, const void *b, size_t bl) {
    return al == bl && (al == 0 || memcmp(a, b, al) == 0);
}

static void message(const uint8_t *data, size_t size) {
    pl_waku_message m;
    memset(&m, 0xa5, sizeof m);
    pl_err e = pl_waku_message_decode(&m, data, size);
    pl_err c = pl_waku_message_check(data, size);
    if (e != PL_OK) {
        check(e == PL_ERR_TOO_LARGE || e == PL_ERR_P2P_PROTOBUF || e == PL_ERR_NOMEM);
        check(m.pl__owner == NULL && m.payload_len == 0 && m.content_topic == NULL);
        check(c == e);
        return;
    }
    pl_err v = pl_waku_message_validate(&m, size);
    check(v == PL_OK || v == PL_ERR_WAKU_MESSAGE || v == PL_ERR_WAKU_TOPIC || v == PL_ERR_BAD_UTF8);
    check(c == v);
    uint8_t hash[PL_WAKU_HASH_BYTES];
    pl_waku_message_hash(hash, "/waku/2/rs/16/64", &m);
    if (m.meta_len <= PL_WAKU_META_MAX) {
        size_t cap = pl_waku_message_encoded_size(&m);
        uint8_t *buf = malloc(cap ? cap : 1), *buf2 = malloc(cap ? cap : 1);
        check(buf && buf2);
        size_t n = 0, n2 = 0;
        pl_err ee = pl_waku_message_encode(buf, cap, &n, &m);
        if (ee == PL_OK) {
            check(n == cap);
            pl_waku_message d;
            check(pl_waku_message_decode(&d, buf, n) == PL_OK);
            check(d.has_payload && same(d.payload, d.payload_len, m.payload, m.payload_len));
            check(same(d.content_topic, d.content_topic_len, m.content_topic, m.content_topic_len));
            check(d.version == m.version && d.timestamp == m.timestamp &&
                  d.ephemeral == m.ephemeral);
            check(same(d.meta, d.meta_len, m.meta, m.meta_len));
            check(same(d.rate_limit_proof, d.rate_limit_proof_len, m.rate_limit_proof,
                       m.rate_limit_proof_len));
            check(pl_waku_message_encode(buf2, cap, &n2, &d) == PL_OK && same(buf, n, buf2, n2));
            pl_waku_message_release(&d);
        } else {
            check(ee == PL_ERR_TOO_LARGE && n == 0);
        }
        free(buf), free(buf2);
    }
    pl_waku_message_release(&m);
    check(m.pl__owner == NULL);
}

static void topics(const uint8_t *data, size_t size) {
    const char *s = (const char *)data;
    pl_waku_content_topic t;
    pl_err e = pl_waku_content_topic_parse(&t, s, size);
    if (e == PL_OK) {
        char *out = malloc(size + 1);
        check(out != NULL);
        size_t n = 0;
        check(pl_waku_content_topic_format(out, size + 1, &n, &t) == PL_OK);
        /* The generation is re-printed in canonical decimal, so the
         * round trip is exact unless the input had leading zeros. */
        size_t glen = 0;
        if (t.generation >= 0)
            while (data[1 + glen] != '/')
                glen++;
        if (t.generation < 0 || glen == 1 || data[1] != '0')
            check(n == size && memcmp(out, data, size) == 0);
        else
            check(n < size);
        free(out);
        uint16_t shard = 0xffff;
        pl_err a = pl_waku_autoshard(&shard, s, size, 8);
        check((a == PL_OK && shard < 8) || (a == PL_ERR_UNSUPPORTED && t.generation > 0));
    } else {
        check(e == PL_ERR_WAKU_TOPIC || e == PL_ERR_BAD_UTF8);
        check(t.app == NULL && t.app_len == 0);
    }
    uint16_t c = 1, sh = 1;
    e = pl_waku_pubsub_topic_parse(&c, &sh, s, size);
    if (e == PL_OK) {
        char out[PL_WAKU_PUBSUB_TOPIC_SIZE];
        pl_waku_pubsub_topic_format(out, c, sh);
        check(strlen(out) == size && memcmp(out, data, size) == 0);
    } else {
        check(e == PL_ERR_WAKU_TOPIC && c == 0 && sh == 0);
    }
}

static void write_seed(const char *dir, const char *name, const void *b, size_t n) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(b, 1, n, f);
    fclose(f);
}

static void write_seeds(const char *dir) {
    uint8_t meta[8] = {1, 2, 3, 4, 5, 6, 7, 8}, buf[512];
    pl_waku_message m = {.payload = (const uint8_t *)"hi",
                         .payload_len = 2,
                         .has_payload = true,
                         .content_topic = "/app/1/x/proto",
                         .content_topic_len = 14};
    size_t n;
    if (pl_waku_message_encode(buf, sizeof buf, &n, &m) == PL_OK)
        write_seed(dir, "seed-min", buf, n);
    m.version = 1, m.timestamp = 1700000000000000000LL, m.meta = meta, m.meta_len = 8;
    m.rate_limit_proof = meta, m.rate_limit_proof_len = 4, m.ephemeral = true;
    m.content_topic = "/0/pairlink/1/hello/proto", m.content_topic_len = 25;
    if (pl_waku_message_encode(buf, sizeof buf, &n, &m) == PL_OK)
        write_seed(dir, "seed-all", buf, n);
    write_seed(dir, "seed-content-topic", "/toychat/2/huilong/proto", 24);
    write_seed(dir, "seed-pubsub-topic", "/waku/2/rs/16/64", 16);
    write_seed(dir, "seed-no-payload", "\x12\x03/a/", 5);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    if (pl_init() != PL_OK) abort();
    const char *dir = getenv("PL_FUZZ_WRITE_SEEDS");
    if (dir) write_seeds(dir);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    message(data, size);
    topics(data, size);
    return 0;
}
