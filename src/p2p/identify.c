/* SPDX-License-Identifier: Apache-2.0 */
/* identify and ping codecs: see identify.h. */
#include "p2p/identify.h"

#include "libp2p.pb-c.h"
#include "p2p/key.h"
#include "p2p/mss.h"
#include "pairlink/codec.h"
#include "pairlink/hash.h"

#include <stdlib.h>
#include <string.h>

pl_err pl__lp_parse(const uint8_t *buf, size_t len, size_t max, const uint8_t **msg,
                    size_t *msg_len, size_t *used) {
    PL_REQUIRE((buf || len == 0) && msg && msg_len && used);
    *msg = NULL;
    *msg_len = 0;
    *used = 0;
    uint64_t n = 0;
    size_t vl = 0;
    pl_err e = pl_uvarint_decode(&n, &vl, buf, len);
    if (e != PL_OK) return e;
    if (n > max) return PL_ERR_TOO_LARGE;
    if (len - vl < n) return PL_ERR_TRUNCATED;
    *msg = buf + vl;
    *msg_len = (size_t)n;
    *used = vl + (size_t)n;
    return PL_OK;
}

/* ---- identify ------------------------------------------------------------------ */

pl_err pl__identify_encode(const pl__identify_local *l, uint8_t **out, size_t *len) {
    PL_REQUIRE(l && out && len && l->agent_version);
    *out = NULL;
    *len = 0;
    Libp2p__Identify m = LIBP2P__IDENTIFY__INIT;
    m.protocolversion = (char *)PL__ID_PROTOCOL_VERSION;
    m.agentversion = (char *)l->agent_version;
    m.has_publickey = 1;
    m.publickey.data = (uint8_t *)l->public_key;
    m.publickey.len = l->public_key_len;
    ProtobufCBinaryData *addrs = NULL;
    if (l->nlisten_addrs) {
        addrs = calloc(l->nlisten_addrs, sizeof *addrs);
        if (!addrs) return PL_ERR_NOMEM;
        for (size_t i = 0; i < l->nlisten_addrs; i++) {
            addrs[i].data = (uint8_t *)l->listen_addrs[i].b;
            addrs[i].len = l->listen_addrs[i].len;
        }
    }
    m.n_listenaddrs = l->nlisten_addrs;
    m.listenaddrs = addrs;
    m.n_protocols = l->nprotocols;
    m.protocols = (char **)l->protocols;
    if (l->observed_addr) {
        m.has_observedaddr = 1;
        m.observedaddr.data = (uint8_t *)l->observed_addr->b;
        m.observedaddr.len = l->observed_addr->len;
    }
    size_t n = libp2p__identify__get_packed_size(&m);
    uint8_t v[PL_UVARINT_MAX_BYTES];
    size_t vl = pl_uvarint_encode(v, n);
    uint8_t *buf = malloc(vl + n);
    if (!buf) {
        free(addrs);
        return PL_ERR_NOMEM;
    }
    memcpy(buf, v, vl);
    libp2p__identify__pack(&m, buf + vl);
    free(addrs);
    *out = buf;
    *len = vl + n;
    return PL_OK;
}

/* Everything in one block: the struct, the pointer arrays, then strings. */
typedef struct id_block {
    pl__identify_info head;
    char *next;      /* string arena cursor */
    char *arena_end; /* for the size check */
} id_block;

static const char *put_str(id_block *b, const char *s, size_t n) {
    PL_REQUIRE(b->next + n + 1 <= b->arena_end);
    char *d = b->next;
    memcpy(d, s, n);
    d[n] = '\0';
    b->next += n + 1;
    return d;
}

static bool str_ok(const char *s, size_t max) {
    size_t n = strlen(s);
    return n <= max && pl__utf8_valid((const unsigned char *)s, n);
}

pl_err pl__identify_decode(pl__identify_info **out, const uint8_t *msg, size_t len,
                           const pl_p2p_peer_id *peer) {
    PL_REQUIRE(out && (msg || len == 0));
    *out = NULL;
    if (len > PL__ID_MAX_MESSAGE) return PL_ERR_TOO_LARGE;
    Libp2p__Identify *m = libp2p__identify__unpack(NULL, len, msg);
    if (!m) return PL_ERR_P2P_PROTOBUF;
    pl_err e = PL_OK;
    if (m->n_protocols > PL__ID_MAX_PROTOCOLS || m->n_listenaddrs > PL__ID_MAX_ADDRS)
        e = PL_ERR_TOO_LARGE;
    const char *pv = m->protocolversion ? m->protocolversion : "";
    const char *av = m->agentversion ? m->agentversion : "";
    if (e == PL_OK && (strlen(pv) > PL__ID_MAX_STRING || strlen(av) > PL__ID_MAX_STRING))
        e = PL_ERR_TOO_LARGE;
    if (e == PL_OK && (!str_ok(pv, PL__ID_MAX_STRING) || !str_ok(av, PL__ID_MAX_STRING)))
        e = PL_ERR_P2P_PROTOBUF;
    if (e == PL_OK && m->has_publickey && peer && peer->len) {
        pl__p2p_pubkey pk;
        pl_p2p_peer_id from_key;
        if (pl__p2p_pubkey_decode(&pk, m->publickey.data, m->publickey.len) != PL_OK) {
            e = PL_ERR_P2P_PEER_MISMATCH;
        } else {
            pl__p2p_peer_id_from_proto(&from_key, m->publickey.data, m->publickey.len);
            if (!pl_p2p_peer_id_equal(&from_key, peer)) e = PL_ERR_P2P_PEER_MISMATCH;
        }
    }
    if (e != PL_OK) {
        libp2p__identify__free_unpacked(m, NULL);
        return e;
    }

    /* Size the block: text forms of addresses are at most
     * PL__MA_TEXT_MAX + 1 each; formatting into a scratch buffer first
     * keeps the allocation exact. */
    char scratch[PL__MA_TEXT_MAX + 1];
    size_t strings = strlen(pv) + 1 + strlen(av) + 1;
    size_t np = 0, na = 0;
    for (size_t i = 0; i < m->n_protocols; i++)
        if (pl__mss_protocol_ok(m->protocols[i])) strings += strlen(m->protocols[i]) + 1, np++;
    for (size_t i = 0; i < m->n_listenaddrs; i++)
        if (pl__ma_format(scratch, sizeof scratch, m->listenaddrs[i].data, m->listenaddrs[i].len) ==
            PL_OK)
            strings += strlen(scratch) + 1, na++;
    bool has_obs =
        m->has_observedaddr &&
        pl__ma_format(scratch, sizeof scratch, m->observedaddr.data, m->observedaddr.len) == PL_OK;
    strings += has_obs ? strlen(scratch) + 1 : 1;

    size_t ptrs = (np + na) * sizeof(char *);
    id_block *b = malloc(sizeof *b + ptrs + strings);
    if (!b) {
        libp2p__identify__free_unpacked(m, NULL);
        return PL_ERR_NOMEM;
    }
    const char **parr = (const char **)(b + 1);
    const char **aarr = parr + np;
    b->next = (char *)(aarr + na);
    b->arena_end = b->next + strings;
    pl_p2p_identify *info = &b->head.info;
    info->protocol_version = put_str(b, pv, strlen(pv));
    info->agent_version = put_str(b, av, strlen(av));
    size_t k = 0;
    for (size_t i = 0; i < m->n_protocols; i++)
        if (pl__mss_protocol_ok(m->protocols[i]))
            parr[k++] = put_str(b, m->protocols[i], strlen(m->protocols[i]));
    info->protocols = np ? parr : NULL;
    info->nprotocols = np;
    k = 0;
    for (size_t i = 0; i < m->n_listenaddrs; i++)
        if (pl__ma_format(scratch, sizeof scratch, m->listenaddrs[i].data, m->listenaddrs[i].len) ==
            PL_OK)
            aarr[k++] = put_str(b, scratch, strlen(scratch));
    info->listen_addrs = na ? aarr : NULL;
    info->nlisten_addrs = na;
    if (has_obs) pl__ma_format(scratch, sizeof scratch, m->observedaddr.data, m->observedaddr.len);
    info->observed_addr = has_obs ? put_str(b, scratch, strlen(scratch)) : put_str(b, "", 0);
    libp2p__identify__free_unpacked(m, NULL);
    *out = &b->head;
    return PL_OK;
}

void pl__identify_free(pl__identify_info *i) {
    /* head is the first member of the block. */
    free(i);
}

/* ---- ping ------------------------------------------------------------------------ */

void pl__ping_start(pl__ping *p, const uint8_t random[PL__PING_SIZE]) {
    PL_REQUIRE(p && random);
    memcpy(p->sent, random, PL__PING_SIZE);
    p->got_len = 0;
}

pl_err pl__ping_recv(pl__ping *p, const uint8_t *data, size_t len, size_t *used, bool *done) {
    PL_REQUIRE(p && (data || len == 0) && used && done);
    size_t take = PL__PING_SIZE - p->got_len;
    if (take > len) take = len;
    memcpy(p->got + p->got_len, data, take);
    p->got_len += take;
    *used = take;
    *done = p->got_len == PL__PING_SIZE;
    if (*done && memcmp(p->got, p->sent, PL__PING_SIZE) != 0) {
        *done = false;
        return PL_ERR_P2P_FRAME;
    }
    return PL_OK;
}
