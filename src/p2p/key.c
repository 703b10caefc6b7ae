/* SPDX-License-Identifier: Apache-2.0 */
/* libp2p identity keys: Ed25519 (libsodium) and secp256k1 (libsecp256k1),
 * their marshalled protobufs and signatures (libp2p/specs peer-ids). */
#include "p2p/key.h"

#include "libp2p.pb-c.h"
#include "pairlink/crypto.h"
#include "pairlink/hash.h"

#include <pthread.h>
#include <secp256k1.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* ---- secp256k1 context -------------------------------------------------- */

static secp256k1_context *secp_ctx;
static pthread_once_t secp_once = PTHREAD_ONCE_INIT;

static void secp_init(void) {
    secp256k1_context *c = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
    if (!c) return;
    /* Randomisation blinds signing against side channels. */
    uint8_t seed[32];
    pl_random(seed, sizeof seed);
    if (!secp256k1_context_randomize(c, seed)) {
        secp256k1_context_destroy(c);
        c = NULL;
    }
    pl_wipe(seed, sizeof seed);
    secp_ctx = c;
}

static const secp256k1_context *secp(void) {
    pthread_once(&secp_once, secp_init);
    if (!secp_ctx) pl__misuse("libsecp256k1 context creation failed", __FILE__, __LINE__);
    return secp_ctx;
}

/* ---- keys ---------------------------------------------------------------- */

static pl_err key_fill(pl_p2p_key *k, pl_p2p_key_type type, const uint8_t secret[32]) {
    k->type = type;
    memcpy(k->secret, secret, 32);
    if (type == PL_P2P_KEY_ED25519) {
        pl_ed25519_public(k->pub, k->secret);
        k->pub_len = PL__P2P_ED25519_PUB;
        return PL_OK;
    }
    secp256k1_pubkey p;
    if (!secp256k1_ec_seckey_verify(secp(), k->secret) ||
        !secp256k1_ec_pubkey_create(secp(), &p, k->secret))
        return PL_ERR_P2P_KEY;
    size_t n = PL__P2P_SECP_PUB;
    secp256k1_ec_pubkey_serialize(secp(), k->pub, &n, &p, SECP256K1_EC_COMPRESSED);
    k->pub_len = n;
    return PL_OK;
}

pl_err pl_p2p_key_from_secret(pl_p2p_key **out, pl_p2p_key_type type,
                              const uint8_t secret[PL_P2P_SECRET_BYTES]) {
    PL_REQUIRE(out && secret);
    *out = NULL;
    if (type != PL_P2P_KEY_ED25519 && type != PL_P2P_KEY_SECP256K1) return PL_ERR_INVALID_ARG;
    pl_p2p_key *k = calloc(1, sizeof *k);
    if (!k) return PL_ERR_NOMEM;
    pl_err e = key_fill(k, type, secret);
    if (e != PL_OK) {
        pl_p2p_key_free(k);
        return e;
    }
    *out = k;
    return PL_OK;
}

pl_err pl_p2p_key_generate(pl_p2p_key **out, pl_p2p_key_type type) {
    PL_REQUIRE(out);
    *out = NULL;
    uint8_t s[32];
    pl_err e;
    /* A random 256-bit value is a valid secp256k1 secret except with
     * probability ~2^-128; loop anyway rather than reason about it. */
    do {
        pl_random(s, sizeof s);
        e = pl_p2p_key_from_secret(out, type, s);
    } while (e == PL_ERR_P2P_KEY);
    pl_wipe(s, sizeof s);
    return e;
}

void pl_p2p_key_free(pl_p2p_key *k) {
    if (!k) return;
    sodium_memzero(k, sizeof *k);
    free(k);
}

pl_p2p_key_type pl_p2p_key_type_of(const pl_p2p_key *k) {
    PL_REQUIRE(k);
    return k->type;
}

pl_err pl_p2p_key_unmarshal(pl_p2p_key **out, const uint8_t *pb, size_t len) {
    PL_REQUIRE(out && (pb || len == 0));
    *out = NULL;
    if (len > 256) return PL_ERR_P2P_KEY;
    Libp2p__PrivateKey *m = libp2p__private_key__unpack(NULL, len, pb);
    if (!m) return PL_ERR_P2P_PROTOBUF;
    pl_err e = PL_ERR_P2P_KEY;
    pl_p2p_key_type type = (pl_p2p_key_type)m->type;
    if (m->type == LIBP2P__KEY_TYPE__Ed25519 && m->data.len == 64) {
        e = pl_p2p_key_from_secret(out, type, m->data.data);
        /* The stored public half must be the seed's: a file whose halves
         * disagree was not written by a libp2p implementation. */
        if (e == PL_OK && !pl_ct_equal((*out)->pub, m->data.data + 32, 32)) {
            pl_p2p_key_free(*out);
            *out = NULL;
            e = PL_ERR_P2P_KEY;
        }
    } else if (m->type == LIBP2P__KEY_TYPE__Secp256k1 && m->data.len == 32) {
        e = pl_p2p_key_from_secret(out, type, m->data.data);
    }
    if (m->data.data) sodium_memzero(m->data.data, m->data.len);
    libp2p__private_key__free_unpacked(m, NULL);
    return e;
}

pl_err pl_p2p_key_marshal(const pl_p2p_key *k, uint8_t **out, size_t *len) {
    PL_REQUIRE(k && out && len);
    *out = NULL;
    *len = 0;
    uint8_t data[64];
    Libp2p__PrivateKey m = LIBP2P__PRIVATE_KEY__INIT;
    m.type = (Libp2p__KeyType)k->type;
    m.data.data = data;
    memcpy(data, k->secret, 32);
    if (k->type == PL_P2P_KEY_ED25519) {
        memcpy(data + 32, k->pub, 32);
        m.data.len = 64;
    } else {
        m.data.len = 32;
    }
    size_t n = libp2p__private_key__get_packed_size(&m);
    uint8_t *buf = malloc(n);
    if (!buf) {
        pl_wipe(data, sizeof data);
        return PL_ERR_NOMEM;
    }
    libp2p__private_key__pack(&m, buf);
    pl_wipe(data, sizeof data);
    *out = buf;
    *len = n;
    return PL_OK;
}

void pl__p2p_key_public(const pl_p2p_key *k, pl__p2p_pubkey *pk) {
    PL_REQUIRE(k && pk);
    pk->type = k->type;
    memcpy(pk->data, k->pub, k->pub_len);
    pk->len = k->pub_len;
}

/* ---- public keys --------------------------------------------------------- */

size_t pl__p2p_pubkey_encode(const pl__p2p_pubkey *pk, uint8_t out[PL__P2P_PUBKEY_PROTO_MAX]) {
    PL_REQUIRE(pk && out && pk->len <= PL__P2P_PUB_MAX);
    Libp2p__PublicKey m = LIBP2P__PUBLIC_KEY__INIT;
    m.type = (Libp2p__KeyType)pk->type;
    m.data.data = (uint8_t *)pk->data;
    m.data.len = pk->len;
    PL_REQUIRE(libp2p__public_key__get_packed_size(&m) <= PL__P2P_PUBKEY_PROTO_MAX);
    return libp2p__public_key__pack(&m, out);
}

pl_err pl__p2p_pubkey_decode(pl__p2p_pubkey *pk, const uint8_t *proto, size_t len) {
    PL_REQUIRE(pk && (proto || len == 0));
    memset(pk, 0, sizeof *pk);
    /* Longer inputs are keys we do not support (RSA) or garbage; do not
     * let protobuf-c allocate for them. */
    if (len > 1024) return PL_ERR_P2P_KEY;
    Libp2p__PublicKey *m = libp2p__public_key__unpack(NULL, len, proto);
    if (!m) return PL_ERR_P2P_PROTOBUF;
    pl_err e = PL_ERR_P2P_KEY;
    if (m->type == LIBP2P__KEY_TYPE__Ed25519 && m->data.len == PL__P2P_ED25519_PUB) {
        e = PL_OK;
    } else if (m->type == LIBP2P__KEY_TYPE__Secp256k1 && m->data.len == PL__P2P_SECP_PUB &&
               (m->data.data[0] == 2 || m->data.data[0] == 3)) {
        secp256k1_pubkey p;
        if (secp256k1_ec_pubkey_parse(secp(), &p, m->data.data, m->data.len)) e = PL_OK;
    }
    if (e == PL_OK) {
        pk->type = (pl_p2p_key_type)m->type;
        memcpy(pk->data, m->data.data, m->data.len);
        pk->len = m->data.len;
        uint8_t canon[PL__P2P_PUBKEY_PROTO_MAX];
        size_t n = pl__p2p_pubkey_encode(pk, canon);
        if (n != len || memcmp(canon, proto, n) != 0) e = PL_ERR_P2P_KEY;
    }
    libp2p__public_key__free_unpacked(m, NULL);
    if (e != PL_OK) memset(pk, 0, sizeof *pk);
    return e;
}

/* ---- signatures ---------------------------------------------------------- */

void pl__p2p_sign(const pl_p2p_key *k, const uint8_t *msg, size_t len, uint8_t sig[PL__P2P_SIG_MAX],
                  size_t *sig_len) {
    PL_REQUIRE(k && (msg || len == 0) && sig && sig_len);
    if (k->type == PL_P2P_KEY_ED25519) {
        pl_ed25519_sign(sig, k->secret, msg, len);
        *sig_len = PL_ED25519_SIG_BYTES;
        return;
    }
    uint8_t h[PL_SHA256_BYTES];
    pl_sha256(h, msg, len);
    secp256k1_ecdsa_signature s;
    /* RFC 6979 nonces; libsecp256k1 always produces low-S. */
    if (!secp256k1_ecdsa_sign(secp(), &s, h, k->secret, NULL, NULL))
        pl__misuse("secp256k1_ecdsa_sign failed on a checked key", __FILE__, __LINE__);
    size_t n = PL__P2P_SIG_MAX;
    secp256k1_ecdsa_signature_serialize_der(secp(), sig, &n, &s);
    *sig_len = n;
}

pl_err pl__p2p_verify(const pl__p2p_pubkey *pk, const uint8_t *msg, size_t len, const uint8_t *sig,
                      size_t sig_len) {
    PL_REQUIRE(pk && (msg || len == 0) && (sig || sig_len == 0));
    if (pk->type == PL_P2P_KEY_ED25519) {
        if (pk->len != PL__P2P_ED25519_PUB || sig_len != PL_ED25519_SIG_BYTES)
            return PL_ERR_BAD_SIGNATURE;
        return pl_ed25519_verify(sig, pk->data, msg, len);
    }
    if (pk->type != PL_P2P_KEY_SECP256K1 || sig_len == 0 || sig_len > PL__P2P_SIG_IN_MAX)
        return PL_ERR_BAD_SIGNATURE;
    secp256k1_pubkey p;
    secp256k1_ecdsa_signature s;
    if (!secp256k1_ec_pubkey_parse(secp(), &p, pk->data, pk->len) ||
        !secp256k1_ecdsa_signature_parse_der(secp(), &s, sig, sig_len))
        return PL_ERR_BAD_SIGNATURE;
    /* libsecp256k1 verifies only low-S; (r, s) and (r, n - s) are the same
     * signature, and other libp2p implementations do not all normalise. */
    secp256k1_ecdsa_signature_normalize(secp(), &s, &s);
    uint8_t h[PL_SHA256_BYTES];
    pl_sha256(h, msg, len);
    return secp256k1_ecdsa_verify(secp(), &s, h, &p) ? PL_OK : PL_ERR_BAD_SIGNATURE;
}
