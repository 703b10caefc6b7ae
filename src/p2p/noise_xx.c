/* SPDX-License-Identifier: Apache-2.0 */
/* libp2p Noise XX: see noise_xx.h. */
#include "p2p/noise_xx.h"

#include "libp2p.pb-c.h"
#include "noise/symmetric.h"
#include "pairlink/hash.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define PREFIX_LEN (sizeof PL__NXX_SIG_PREFIX - 1)

/* ---- the signed payload ---------------------------------------------------- */

static void sig_input(uint8_t out[PREFIX_LEN + 32], const uint8_t static_pub[32]) {
    memcpy(out, PL__NXX_SIG_PREFIX, PREFIX_LEN);
    memcpy(out + PREFIX_LEN, static_pub, 32);
}

pl_err pl__nxx_payload_build(const pl_p2p_key *key, const uint8_t static_pub[32], uint8_t **out,
                             size_t *len) {
    PL_REQUIRE(key && static_pub && out && len);
    *out = NULL;
    *len = 0;
    pl__p2p_pubkey pk;
    pl__p2p_key_public(key, &pk);
    uint8_t kproto[PL__P2P_PUBKEY_PROTO_MAX];
    size_t kl = pl__p2p_pubkey_encode(&pk, kproto);
    uint8_t msg[PREFIX_LEN + 32];
    sig_input(msg, static_pub);
    uint8_t sig[PL__P2P_SIG_MAX];
    size_t sl = 0;
    pl__p2p_sign(key, msg, sizeof msg, sig, &sl);

    Libp2p__NoiseHandshakePayload p = LIBP2P__NOISE_HANDSHAKE_PAYLOAD__INIT;
    p.has_identity_key = 1;
    p.identity_key.data = kproto;
    p.identity_key.len = kl;
    p.has_identity_sig = 1;
    p.identity_sig.data = sig;
    p.identity_sig.len = sl;
    size_t n = libp2p__noise_handshake_payload__get_packed_size(&p);
    uint8_t *buf = malloc(n);
    if (!buf) return PL_ERR_NOMEM;
    libp2p__noise_handshake_payload__pack(&p, buf);
    *out = buf;
    *len = n;
    return PL_OK;
}

pl_err pl__nxx_payload_verify(const uint8_t *payload, size_t len, const uint8_t static_pub[32],
                              pl__p2p_pubkey *key, pl_p2p_peer_id *peer) {
    PL_REQUIRE((payload || len == 0) && static_pub && key && peer);
    memset(key, 0, sizeof *key);
    memset(peer, 0, sizeof *peer);
    if (len > PL__NXX_MAX_PAYLOAD) return PL_ERR_TOO_LARGE;
    Libp2p__NoiseHandshakePayload *p = libp2p__noise_handshake_payload__unpack(NULL, len, payload);
    if (!p) return PL_ERR_P2P_PROTOBUF;
    pl_err e = PL_OK;
    if (!p->has_identity_key || !p->has_identity_sig || p->identity_key.len == 0 ||
        p->identity_sig.len == 0)
        e = PL_ERR_P2P_NOISE;
    if (e == PL_OK) e = pl__p2p_pubkey_decode(key, p->identity_key.data, p->identity_key.len);
    if (e == PL_OK) {
        uint8_t msg[PREFIX_LEN + 32];
        sig_input(msg, static_pub);
        e = pl__p2p_verify(key, msg, sizeof msg, p->identity_sig.data, p->identity_sig.len);
    }
    if (e == PL_OK) pl__p2p_peer_id_from_proto(peer, p->identity_key.data, p->identity_key.len);
    libp2p__noise_handshake_payload__free_unpacked(p, NULL);
    if (e != PL_OK) {
        memset(key, 0, sizeof *key);
        memset(peer, 0, sizeof *peer);
    }
    return e;
}

pl_err pl__nxx_identity_init(pl__nxx_identity *id, const pl_p2p_key *key,
                             const uint8_t *static_priv) {
    PL_REQUIRE(id && key);
    memset(id, 0, sizeof *id);
    if (static_priv)
        memcpy(id->static_priv, static_priv, 32);
    else
        pl_random(id->static_priv, 32);
    pl__noise_pub(id->static_pub, id->static_priv);
    pl_p2p_key_peer_id(key, &id->peer);
    pl_err e = pl__nxx_payload_build(key, id->static_pub, &id->payload, &id->payload_len);
    if (e != PL_OK) pl__nxx_identity_clear(id);
    return e;
}

void pl__nxx_identity_clear(pl__nxx_identity *id) {
    if (!id) return;
    free(id->payload);
    sodium_memzero(id, sizeof *id);
}

/* ---- the handshake ----------------------------------------------------------- */

struct pl__nxx {
    bool initiator;
    const pl__nxx_identity *id;
    pl_p2p_peer_id expected;
    pl__noise_ss ss;
    uint8_t e_priv[32], e_pub[32];
    uint8_t re[32], rs[32];
    uint8_t step; /* messages done: 0..3 */
    bool failed;
    pl__p2p_pubkey remote_key;
    pl_p2p_peer_id remote_peer;
    /* transport */
    pl__noise_cs send, recv;
};

pl_err pl__nxx_new(pl__nxx **out, bool initiator, const pl__nxx_identity *identity,
                   const pl_p2p_peer_id *expected, const uint8_t *ephemeral) {
    PL_REQUIRE(out && identity);
    *out = NULL;
    pl__nxx *n = calloc(1, sizeof *n);
    if (!n) return PL_ERR_NOMEM;
    n->initiator = initiator;
    n->id = identity;
    if (expected) n->expected = *expected;
    if (ephemeral)
        memcpy(n->e_priv, ephemeral, 32);
    else
        pl_random(n->e_priv, 32);
    pl__noise_pub(n->e_pub, n->e_priv);
    pl__noise_ss_init(&n->ss, PL__NXX_NAME);
    pl__noise_mix_hash(&n->ss, NULL, 0); /* the empty prologue */
    *out = n;
    return PL_OK;
}

void pl__nxx_free(pl__nxx *n) {
    if (!n) return;
    sodium_memzero(n, sizeof *n);
    free(n);
}

pl__nxx_action pl__nxx_action_of(const pl__nxx *n) {
    PL_REQUIRE(n);
    if (n->failed) return PL__NXX_FAILED;
    if (n->step >= 3) return PL__NXX_DONE;
    /* Messages 0 and 2 are the initiator's. */
    return (n->step % 2 == 0) == n->initiator ? PL__NXX_WRITE : PL__NXX_READ;
}

/* Every failure wipes the secrets and is final. */
static pl_err fail(pl__nxx *n, pl_err e) {
    bool initiator = n->initiator;
    const pl__nxx_identity *id = n->id;
    sodium_memzero(n, sizeof *n);
    n->initiator = initiator;
    n->id = id;
    n->failed = true;
    return e;
}

static pl_err mix_dh(pl__nxx *n, const uint8_t *priv, const uint8_t *pub) {
    uint8_t dh[32];
    pl_err e = pl__noise_dh(dh, priv, pub);
    if (e == PL_OK) pl__noise_mix_key(&n->ss, dh, sizeof dh);
    sodium_memzero(dh, sizeof dh);
    return e;
}

static void split(pl__nxx *n) {
    uint8_t k1[32], k2[32];
    pl__noise_split(&n->ss, k1, k2);
    memcpy(n->send.k, n->initiator ? k1 : k2, 32);
    memcpy(n->recv.k, n->initiator ? k2 : k1, 32);
    n->send.has_key = n->recv.has_key = true;
    sodium_memzero(k1, sizeof k1);
    sodium_memzero(k2, sizeof k2);
    /* The handshake secrets are not needed any more. */
    sodium_memzero(&n->ss, sizeof n->ss);
    sodium_memzero(n->e_priv, sizeof n->e_priv);
}

pl_err pl__nxx_write(pl__nxx *n, uint8_t *out, size_t cap, size_t *len) {
    PL_REQUIRE(n && out && len);
    *len = 0;
    if (pl__nxx_action_of(n) != PL__NXX_WRITE) return PL_ERR_NOISE_STATE;
    const size_t pl_len = n->step == 0 ? 0 : n->id->payload_len;
    size_t need = 2 +
                  (n->step == 0   ? 32
                   : n->step == 1 ? 32 + 48
                                  : 48) +
                  pl_len + (n->step == 0 ? 0 : PL__NXX_TAG);
    if (need > cap) return PL_ERR_BUFFER_TOO_SMALL;
    if (need - 2 > PL__NXX_MAX_FRAME) return fail(n, PL_ERR_TOO_LARGE);
    uint8_t *p = out + 2;
    size_t w = 0;
    pl_err e = PL_OK;
    if (n->step == 0) {
        /* -> e, with an empty payload (EncryptAndHash without a key). */
        memcpy(p, n->e_pub, 32);
        pl__noise_mix_hash(&n->ss, n->e_pub, 32);
        e = pl__noise_encrypt_and_hash(&n->ss, p + 32, &w, NULL, 0, NULL, 0);
        w += 32;
    } else if (n->step == 1) {
        /* <- e, ee, s, es, payload */
        memcpy(p, n->e_pub, 32);
        pl__noise_mix_hash(&n->ss, n->e_pub, 32);
        e = mix_dh(n, n->e_priv, n->re);
        size_t sl = 0, pl = 0;
        if (e == PL_OK)
            e = pl__noise_encrypt_and_hash(&n->ss, p + 32, &sl, n->id->static_pub, 32, NULL, 0);
        if (e == PL_OK) e = mix_dh(n, n->id->static_priv, n->re);
        if (e == PL_OK)
            e = pl__noise_encrypt_and_hash(&n->ss, p + 32 + sl, &pl, n->id->payload,
                                           n->id->payload_len, NULL, 0);
        w = 32 + sl + pl;
    } else {
        /* -> s, se, payload */
        size_t sl = 0, pl = 0;
        e = pl__noise_encrypt_and_hash(&n->ss, p, &sl, n->id->static_pub, 32, NULL, 0);
        if (e == PL_OK) e = mix_dh(n, n->id->static_priv, n->re);
        if (e == PL_OK)
            e = pl__noise_encrypt_and_hash(&n->ss, p + sl, &pl, n->id->payload, n->id->payload_len,
                                           NULL, 0);
        w = sl + pl;
    }
    if (e != PL_OK) {
        sodium_memzero(out, need);
        return fail(n, e);
    }
    PL_REQUIRE(w == need - 2);
    out[0] = (uint8_t)(w >> 8);
    out[1] = (uint8_t)w;
    *len = need;
    if (++n->step == 3) split(n);
    return PL_OK;
}

/* The remote's s and payload: decrypt, verify, check the dialed id. */
static pl_err read_s_and_payload(pl__nxx *n, const uint8_t *p, size_t len) {
    if (len < 48 + PL__NXX_TAG) return PL_ERR_P2P_FRAME;
    size_t got = 0;
    uint8_t rs[32];
    PL_TRY(pl__noise_decrypt_and_hash(&n->ss, rs, &got, p, 48, NULL, 0));
    memcpy(n->rs, rs, 32);
    /* The initiator reading message 2 mixes es, the responder reading
     * message 3 mixes se: both are DH(our e, their s). */
    PL_TRY(mix_dh(n, n->e_priv, n->rs));
    size_t plen = len - 48;
    if (plen - PL__NXX_TAG > PL__NXX_MAX_PAYLOAD) return PL_ERR_TOO_LARGE;
    uint8_t *payload = malloc(plen);
    if (!payload) return PL_ERR_NOMEM;
    pl_err e = pl__noise_decrypt_and_hash(&n->ss, payload, &got, p + 48, plen, NULL, 0);
    if (e == PL_OK)
        e = pl__nxx_payload_verify(payload, got, n->rs, &n->remote_key, &n->remote_peer);
    free(payload);
    if (e == PL_OK && n->expected.len && !pl_p2p_peer_id_equal(&n->expected, &n->remote_peer))
        e = PL_ERR_P2P_PEER_MISMATCH;
    return e;
}

pl_err pl__nxx_read(pl__nxx *n, const uint8_t *msg, size_t len) {
    PL_REQUIRE(n && (msg || len == 0));
    if (pl__nxx_action_of(n) != PL__NXX_READ)
        return n->failed ? PL_ERR_NOISE_STATE : fail(n, PL_ERR_NOISE_STATE);
    pl_err e = PL_OK;
    if (n->step == 0) {
        /* -> e (and a payload we ignore: js sends none). */
        if (len < 32 || len > PL__NXX_MAX_FRAME) return fail(n, PL_ERR_P2P_FRAME);
        memcpy(n->re, msg, 32);
        pl__noise_mix_hash(&n->ss, n->re, 32);
        pl__noise_mix_hash(&n->ss, msg + 32, len - 32);
    } else if (n->step == 1) {
        /* <- e, ee, s, es, payload */
        if (len < 32 + 48 + PL__NXX_TAG) return fail(n, PL_ERR_P2P_FRAME);
        memcpy(n->re, msg, 32);
        pl__noise_mix_hash(&n->ss, n->re, 32);
        e = mix_dh(n, n->e_priv, n->re);
        if (e == PL_OK) e = read_s_and_payload(n, msg + 32, len - 32);
    } else {
        /* -> s, se, payload */
        e = read_s_and_payload(n, msg, len);
    }
    if (e != PL_OK) {
        /* A peer mismatch keeps the peer's id readable for the log. */
        pl_p2p_peer_id who = n->remote_peer;
        fail(n, e);
        if (e == PL_ERR_P2P_PEER_MISMATCH) n->remote_peer = who;
        return e;
    }
    if (++n->step == 3) split(n);
    return PL_OK;
}

const pl_p2p_peer_id *pl__nxx_remote_peer(const pl__nxx *n) {
    PL_REQUIRE(n);
    return &n->remote_peer;
}

const pl__p2p_pubkey *pl__nxx_remote_key(const pl__nxx *n) {
    PL_REQUIRE(n);
    return &n->remote_key;
}

/* ---- transport ------------------------------------------------------------------ */

pl_err pl__nxx_encrypt(pl__nxx *n, const uint8_t *plain, size_t len, uint8_t *out) {
    PL_REQUIRE(n && (plain || len == 0) && out && len <= PL__NXX_MAX_PLAIN);
    if (pl__nxx_action_of(n) != PL__NXX_DONE) return PL_ERR_NOISE_STATE;
    if (n->send.n >= PL__NOISE_NONCE_MAX) return PL_ERR_NOISE_NONCE;
    size_t ct = len + PL__NXX_TAG;
    out[0] = (uint8_t)(ct >> 8);
    out[1] = (uint8_t)ct;
    pl__noise_aead_encrypt(out + 2, n->send.k, n->send.n, NULL, 0, plain, len);
    n->send.n++;
    return PL_OK;
}

pl_err pl__nxx_decrypt(pl__nxx *n, const uint8_t *ct, size_t len, uint8_t *out, size_t *out_len) {
    PL_REQUIRE(n && (ct || len == 0) && out && out_len);
    *out_len = 0;
    if (pl__nxx_action_of(n) != PL__NXX_DONE) return PL_ERR_NOISE_STATE;
    if (len < PL__NXX_TAG || len > PL__NXX_MAX_FRAME) return PL_ERR_P2P_FRAME;
    if (n->recv.n >= PL__NOISE_NONCE_MAX) return PL_ERR_NOISE_NONCE;
    PL_TRY(pl__noise_aead_decrypt(out, n->recv.k, n->recv.n, NULL, 0, ct, len));
    n->recv.n++;
    *out_len = len - PL__NXX_TAG;
    return PL_OK;
}

void pl__nxx_test_set_nonces(pl__nxx *n, uint64_t send, uint64_t recv) {
    PL_REQUIRE(n);
    n->send.n = send;
    n->recv.n = recv;
}

/* ---- framing ---------------------------------------------------------------------- */

pl_err pl__nxx_framer_feed(pl__nxx_framer *f, const uint8_t *data, size_t len, size_t *used,
                           const uint8_t **frame, size_t *frame_len) {
    PL_REQUIRE(f && (data || len == 0) && used && frame && frame_len);
    *used = 0;
    *frame = NULL;
    *frame_len = 0;
    size_t i = 0;
    if (f->need == 0) {
        while (f->hdr_len < 2 && i < len)
            f->hdr[f->hdr_len++] = data[i++];
        if (f->hdr_len < 2) {
            *used = i;
            return PL_OK;
        }
        f->need = (size_t)f->hdr[0] << 8 | f->hdr[1];
        f->hdr_len = 0;
        f->len = 0;
        if (f->need == 0) {
            *used = i;
            return PL_ERR_P2P_FRAME;
        }
        /* The whole body is here: hand it out without copying. */
        if (len - i >= f->need) {
            *frame = data + i;
            *frame_len = f->need;
            *used = i + f->need;
            f->need = 0;
            return PL_OK;
        }
        if (f->cap < f->need) {
            uint8_t *b = realloc(f->buf, f->need);
            if (!b) {
                *used = i;
                return PL_ERR_NOMEM;
            }
            f->buf = b;
            f->cap = f->need;
        }
    }
    size_t take = f->need - f->len;
    if (take > len - i) take = len - i;
    memcpy(f->buf + f->len, data + i, take);
    f->len += take;
    i += take;
    *used = i;
    if (f->len == f->need) {
        *frame = f->buf;
        *frame_len = f->need;
        f->need = 0;
        f->len = 0;
    }
    return PL_OK;
}

void pl__nxx_framer_free(pl__nxx_framer *f) {
    if (!f) return;
    free(f->buf);
    memset(f, 0, sizeof *f);
}
