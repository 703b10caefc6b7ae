/* SPDX-License-Identifier: Apache-2.0 */
/* 23/WAKU2-TOPICS content topics, 51/WAKU2-RELAY-SHARDING pubsub topics and
 * autosharding. The parsing rules are nwaku's (waku_core/topics). */
#include "pairlink/waku.h"

#include "core/internal.h"
#include "pairlink/hash.h"
#include "waku/waku_internal.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

pl_err pl_waku_content_topic_parse(pl_waku_content_topic *out, const char *s, size_t len) {
    PL_REQUIRE(out && (s || len == 0));
    memset(out, 0, sizeof *out);
    out->generation = -1;
    if (len == 0 || s[0] != '/' || memchr(s, '\0', len)) goto bad;
    if (!pl__utf8_valid((const unsigned char *)s, len)) {
        memset(out, 0, sizeof *out);
        return PL_ERR_BAD_UTF8;
    }
    const char *part[5];
    size_t plen[5], n = 0, start = 1;
    for (size_t i = 1; i <= len; i++) {
        if (i == len || s[i] == '/') {
            if (n == 5) goto bad;
            part[n] = s + start;
            plen[n] = i - start;
            if (plen[n] == 0) goto bad;
            n++;
            start = i + 1;
        }
    }
    size_t k = 0;
    if (n == 5) {
        /* The generation: decimal, as Nim's parseInt takes it (optional
         * sign aside); bounded so that it fits. */
        int64_t g = 0;
        if (plen[0] > 9) goto bad;
        for (size_t i = 0; i < plen[0]; i++) {
            if (part[0][i] < '0' || part[0][i] > '9') goto bad;
            g = g * 10 + (part[0][i] - '0');
        }
        out->generation = (int32_t)g;
        k = 1;
    } else if (n != 4) {
        goto bad;
    }
    out->app = part[k], out->app_len = plen[k];
    out->version = part[k + 1], out->version_len = plen[k + 1];
    out->name = part[k + 2], out->name_len = plen[k + 2];
    out->encoding = part[k + 3], out->encoding_len = plen[k + 3];
    return PL_OK;
bad:
    memset(out, 0, sizeof *out);
    return PL_ERR_WAKU_TOPIC;
}

static bool part_ok(const char *p, size_t n) {
    return p && n > 0 && !memchr(p, '/', n) && !memchr(p, '\0', n);
}

pl_err pl_waku_content_topic_format(char *out, size_t cap, size_t *out_len,
                                    const pl_waku_content_topic *t) {
    PL_REQUIRE(out_len && t && (out || cap == 0));
    *out_len = 0;
    if (cap) out[0] = '\0';
    if (!part_ok(t->app, t->app_len) || !part_ok(t->version, t->version_len) ||
        !part_ok(t->name, t->name_len) || !part_ok(t->encoding, t->encoding_len))
        return PL_ERR_WAKU_TOPIC;
    char gen[16] = "";
    if (t->generation >= 0) snprintf(gen, sizeof gen, "/%d", (int)t->generation);
    size_t need = strlen(gen) + 4 + t->app_len + t->version_len + t->name_len + t->encoding_len;
    if (need + 1 > cap) return PL_ERR_BUFFER_TOO_SMALL;
    int w = snprintf(out, cap, "%s/%.*s/%.*s/%.*s/%.*s", gen, (int)t->app_len, t->app,
                     (int)t->version_len, t->version, (int)t->name_len, t->name,
                     (int)t->encoding_len, t->encoding);
    if (w < 0 || (size_t)w != need) return PL_ERR_INTERNAL;
    *out_len = need;
    return PL_OK;
}

void pl_waku_pubsub_topic_format(char out[PL_WAKU_PUBSUB_TOPIC_SIZE], uint16_t cluster,
                                 uint16_t shard) {
    PL_REQUIRE(out);
    snprintf(out, PL_WAKU_PUBSUB_TOPIC_SIZE, "/waku/2/rs/%u/%u", (unsigned)cluster,
             (unsigned)shard);
}

/* Plain decimal of at most 5 digits fitting 16 bits, no leading zero
 * (so that the topic string is canonical: "/waku/2/rs/016/1" is another
 * gossipsub topic than "/waku/2/rs/16/1"). */
static bool parse_u16(uint16_t *v, const char *s, size_t n) {
    if (n == 0 || n > 5 || (n > 1 && s[0] == '0')) return false;
    uint32_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        x = x * 10 + (uint32_t)(s[i] - '0');
    }
    if (x > 65535) return false;
    *v = (uint16_t)x;
    return true;
}

pl_err pl_waku_pubsub_topic_parse(uint16_t *cluster, uint16_t *shard, const char *s, size_t len) {
    PL_REQUIRE(cluster && shard && (s || len == 0));
    *cluster = *shard = 0;
    static const char prefix[] = "/waku/2/rs/";
    size_t pl = sizeof prefix - 1;
    if (len <= pl || memcmp(s, prefix, pl) != 0) return PL_ERR_WAKU_TOPIC;
    const char *rest = s + pl;
    size_t rn = len - pl;
    const char *slash = memchr(rest, '/', rn);
    if (!slash) return PL_ERR_WAKU_TOPIC;
    uint16_t c, sh;
    if (!parse_u16(&c, rest, (size_t)(slash - rest)) ||
        !parse_u16(&sh, slash + 1, rn - (size_t)(slash - rest) - 1))
        return PL_ERR_WAKU_TOPIC;
    *cluster = c;
    *shard = sh;
    return PL_OK;
}

pl_err pl__waku_relay_topic_check(const char *ct, size_t len) {
    if (!ct || len == 0 || memchr(ct, '\0', len)) return PL_ERR_WAKU_TOPIC;
    if (!pl__utf8_valid((const unsigned char *)ct, len)) return PL_ERR_BAD_UTF8;
    return PL_OK;
}

/* App and version of a topic of more than five parts, each non-empty:
 * RFC 37's `/{app}/{version}/wakunoise/1/sessions/{id}/proto`. */
static bool long_topic(pl_waku_content_topic *t, const char *s, size_t len) {
    if (len == 0 || s[0] != '/' || s[len - 1] == '/') return false;
    size_t parts = 0, start = 1;
    for (size_t i = 1; i <= len; i++) {
        if (i < len && s[i] != '/') continue;
        if (i == start) return false; /* an empty part */
        if (parts == 0) t->app = s + start, t->app_len = i - start;
        if (parts == 1) t->version = s + start, t->version_len = i - start;
        parts++;
        start = i + 1;
    }
    t->generation = -1;
    return parts > 5;
}

pl_err pl_waku_autoshard(uint16_t *shard, const char *content_topic, size_t len,
                         uint32_t num_shards) {
    PL_REQUIRE(shard && (content_topic || len == 0));
    *shard = 0;
    if (num_shards == 0 || num_shards > 65536) return PL_ERR_INVALID_ARG;
    pl_waku_content_topic t;
    pl_err e = pl_waku_content_topic_parse(&t, content_topic, len);
    if (e == PL_ERR_WAKU_TOPIC && long_topic(&t, content_topic, len)) e = PL_OK;
    if (e != PL_OK) return e;
    if (t.generation > 0) return PL_ERR_UNSUPPORTED;
    crypto_hash_sha256_state st;
    uint8_t h[32];
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, (const uint8_t *)t.app, t.app_len);
    crypto_hash_sha256_update(&st, (const uint8_t *)t.version, t.version_len);
    crypto_hash_sha256_final(&st, h);
    uint64_t v = 0;
    for (int i = 24; i < 32; i++)
        v = (v << 8) | h[i];
    *shard = (uint16_t)(v % num_shards);
    return PL_OK;
}

void pl_waku_sharding_default(pl_waku_sharding *out) {
    PL_REQUIRE(out);
    out->cluster = PL_WAKU_DEFAULT_CLUSTER;
    out->shard = PL_WAKU_DEFAULT_SHARD;
    out->num_shards = 0;
}

pl_err pl_waku_pubsub_topic_for(char out[PL_WAKU_PUBSUB_TOPIC_SIZE], const pl_waku_sharding *s,
                                const char *content_topic, size_t len) {
    PL_REQUIRE(out && s && (content_topic || len == 0));
    out[0] = '\0';
    uint16_t shard = s->shard;
    if (s->num_shards) {
        PL_TRY(pl_waku_autoshard(&shard, content_topic, len, s->num_shards));
    } else {
        /* Static sharding needs no parts: any topic a relay carries, with
         * the leading '/' every content topic form has. */
        PL_TRY(pl__waku_relay_topic_check(content_topic, len));
        if (content_topic[0] != '/') return PL_ERR_WAKU_TOPIC;
    }
    pl_waku_pubsub_topic_format(out, s->cluster, shard);
    return PL_OK;
}
