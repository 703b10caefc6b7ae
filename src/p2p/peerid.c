/* SPDX-License-Identifier: Apache-2.0 */
/* Peer ids (libp2p/specs peer-ids): multihash of the marshalled public key;
 * text as base58btc, or a CIDv1 (libp2p-key) in base32 on input. */
#include "p2p/key.h"

#include "pairlink/codec.h"
#include "pairlink/hash.h"

#include <string.h>

#define MH_IDENTITY 0x00
#define MH_SHA256 0x12
#define CID_V1 0x01
#define MC_LIBP2P_KEY 0x72

void pl__p2p_peer_id_from_proto(pl_p2p_peer_id *id, const uint8_t *proto, size_t len) {
    PL_REQUIRE(id && proto && len > 0);
    memset(id, 0, sizeof *id);
    if (len <= PL__P2P_IDENTITY_MAX_KEY) {
        id->bytes[0] = MH_IDENTITY;
        id->bytes[1] = (uint8_t)len;
        memcpy(id->bytes + 2, proto, len);
        id->len = (uint8_t)(len + 2);
    } else {
        id->bytes[0] = MH_SHA256;
        id->bytes[1] = PL_SHA256_BYTES;
        pl_sha256(id->bytes + 2, proto, len);
        id->len = 2 + PL_SHA256_BYTES;
    }
}

void pl_p2p_key_peer_id(const pl_p2p_key *k, pl_p2p_peer_id *id) {
    PL_REQUIRE(k && id);
    pl__p2p_pubkey pk;
    pl__p2p_key_public(k, &pk);
    uint8_t proto[PL__P2P_PUBKEY_PROTO_MAX];
    size_t n = pl__p2p_pubkey_encode(&pk, proto);
    pl__p2p_peer_id_from_proto(id, proto, n);
}

pl_err pl__p2p_peer_id_check(const uint8_t *b, size_t len) {
    PL_REQUIRE(b || len == 0);
    /* Both codes and lengths are one-byte varints for every valid id. */
    if (len < 2 || len > PL_P2P_PEER_ID_MAX) return PL_ERR_P2P_PEER_ID;
    if (b[1] != len - 2) return PL_ERR_P2P_PEER_ID;
    if (b[0] == MH_IDENTITY)
        return b[1] >= 1 && b[1] <= PL__P2P_IDENTITY_MAX_KEY ? PL_OK : PL_ERR_P2P_PEER_ID;
    if (b[0] == MH_SHA256) return b[1] == PL_SHA256_BYTES ? PL_OK : PL_ERR_P2P_PEER_ID;
    return PL_ERR_P2P_PEER_ID;
}

/* RFC 4648 base32, lowercase, no padding (multibase 'b'). */
static pl_err base32_decode(uint8_t *out, size_t cap, size_t *out_len, const char *in, size_t len) {
    *out_len = 0;
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        unsigned v;
        if (c >= 'a' && c <= 'z')
            v = (unsigned)(c - 'a');
        else if (c >= '2' && c <= '7')
            v = (unsigned)(c - '2') + 26;
        else
            return PL_ERR_P2P_PEER_ID;
        acc = (acc << 5) | v;
        bits += 5;
        if (bits >= 8) {
            bits -= 8;
            if (n == cap) return PL_ERR_P2P_PEER_ID;
            out[n++] = (uint8_t)(acc >> bits);
        }
        acc &= (1u << bits) - 1;
    }
    /* Leftover bits must be padding zeros, fewer than a whole character. */
    if (bits >= 5 || acc != 0) return PL_ERR_P2P_PEER_ID;
    *out_len = n;
    return PL_OK;
}

static pl_err parse_cid(pl_p2p_peer_id *id, const char *text, size_t len) {
    uint8_t buf[PL_P2P_PEER_ID_MAX + 8];
    size_t n = 0;
    PL_TRY(base32_decode(buf, sizeof buf, &n, text + 1, len - 1));
    uint64_t v = 0, codec = 0;
    size_t u1 = 0, u2 = 0;
    if (pl_uvarint_decode(&v, &u1, buf, n) != PL_OK || v != CID_V1) return PL_ERR_P2P_PEER_ID;
    if (pl_uvarint_decode(&codec, &u2, buf + u1, n - u1) != PL_OK || codec != MC_LIBP2P_KEY)
        return PL_ERR_P2P_PEER_ID;
    size_t off = u1 + u2;
    PL_TRY(pl__p2p_peer_id_check(buf + off, n - off));
    memcpy(id->bytes, buf + off, n - off);
    id->len = (uint8_t)(n - off);
    return PL_OK;
}

pl_err pl_p2p_peer_id_parse(pl_p2p_peer_id *id, const char *text, size_t len) {
    PL_REQUIRE(id && (text || len == 0));
    memset(id, 0, sizeof *id);
    if (len == 0 || len >= PL_P2P_PEER_ID_TEXT_SIZE + 16) return PL_ERR_P2P_PEER_ID;
    pl_err e;
    if (text[0] == 'b') {
        /* A CIDv1: multibase prefix 'b' cannot start base58btc text of a
         * valid multihash ('1', 'Q', '1..'), so the two never collide. */
        e = parse_cid(id, text, len);
    } else {
        uint8_t buf[PL_P2P_PEER_ID_MAX];
        size_t n = 0;
        e = pl_base58btc_decode(buf, sizeof buf, &n, text, len) == PL_OK
                ? pl__p2p_peer_id_check(buf, n)
                : PL_ERR_P2P_PEER_ID;
        if (e == PL_OK) {
            memcpy(id->bytes, buf, n);
            id->len = (uint8_t)n;
        }
    }
    if (e != PL_OK) memset(id, 0, sizeof *id);
    return e;
}

pl_err pl_p2p_peer_id_format(char out[PL_P2P_PEER_ID_TEXT_SIZE], const pl_p2p_peer_id *id) {
    PL_REQUIRE(out && id);
    out[0] = '\0';
    if (id->len > PL_P2P_PEER_ID_MAX) return PL_ERR_P2P_PEER_ID;
    PL_TRY(pl__p2p_peer_id_check(id->bytes, id->len));
    return pl_base58btc_encode(out, PL_P2P_PEER_ID_TEXT_SIZE, id->bytes, id->len) == PL_OK
               ? PL_OK
               : PL_ERR_P2P_PEER_ID;
}

bool pl_p2p_peer_id_equal(const pl_p2p_peer_id *a, const pl_p2p_peer_id *b) {
    PL_REQUIRE(a && b);
    return a->len == b->len && a->len <= PL_P2P_PEER_ID_MAX &&
           memcmp(a->bytes, b->bytes, a->len) == 0;
}
