/* SPDX-License-Identifier: Apache-2.0 */
/* libp2p identity keys (Ed25519, secp256k1): the marshalled PublicKey /
 * PrivateKey protobufs, signatures, and peer ids derived from keys. The
 * public half of this layer is in include/pairlink/p2p.h; these are the
 * parts the other p2p layers (Noise, identify) use. No I/O, no clock.
 * Private to the library. */
#ifndef PL_P2P_KEY_H
#define PL_P2P_KEY_H

#include "core/internal.h"
#include "pairlink/p2p.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PL__P2P_ED25519_PUB 32
#define PL__P2P_SECP_PUB 33 /* compressed point */
#define PL__P2P_PUB_MAX 33
/* Marshalled PublicKey: 08 TT 12 LL data. */
#define PL__P2P_PUBKEY_PROTO_MAX (4 + PL__P2P_PUB_MAX)
/* DER ECDSA signatures are at most 72 bytes; Ed25519 ones 64. */
#define PL__P2P_SIG_MAX 72
/* Largest signature accepted from a peer before parsing (a DER signature
 * with long-form lengths or padding is still refused by the parser). */
#define PL__P2P_SIG_IN_MAX 128
/* Peer ids: the identity multihash holds keys up to 42 marshalled bytes. */
#define PL__P2P_IDENTITY_MAX_KEY 42

struct pl_p2p_key {
    pl_p2p_key_type type;
    uint8_t secret[32]; /* Ed25519 seed or secp256k1 secret scalar */
    uint8_t pub[PL__P2P_PUB_MAX];
    size_t pub_len;
};

/* A verified-shape public key of a peer. */
typedef struct pl__p2p_pubkey {
    pl_p2p_key_type type;
    uint8_t data[PL__P2P_PUB_MAX];
    size_t len;
} pl__p2p_pubkey;

/* Decode a marshalled PublicKey. Only the canonical encoding (field 1 then
 * field 2, nothing else: the bytes pl__p2p_pubkey_encode writes) is taken,
 * because the peer id is the hash of these very bytes and two encodings of
 * one key would be two identities. Ed25519 keys must be 32 bytes, secp256k1
 * keys 33 bytes and a point on the curve. Errors: PL_ERR_P2P_PROTOBUF
 * (not a PublicKey), PL_ERR_P2P_KEY (unsupported type, wrong size, not a
 * point, or a non-canonical encoding). */
pl_err pl__p2p_pubkey_decode(pl__p2p_pubkey *pk, const uint8_t *proto, size_t len);

/* Marshal; returns the length (<= PL__P2P_PUBKEY_PROTO_MAX). */
size_t pl__p2p_pubkey_encode(const pl__p2p_pubkey *pk, uint8_t out[PL__P2P_PUBKEY_PROTO_MAX]);

/* The public key of a private key. */
void pl__p2p_key_public(const pl_p2p_key *k, pl__p2p_pubkey *pk);

/* Sign msg: Ed25519 (64 bytes), or secp256k1 ECDSA over SHA-256(msg), DER,
 * low-S. */
void pl__p2p_sign(const pl_p2p_key *k, const uint8_t *msg, size_t len, uint8_t sig[PL__P2P_SIG_MAX],
                  size_t *sig_len);

/* Verify a signature of msg. secp256k1 signatures are DER; a high-S value
 * is normalised before verifying (other implementations may send either).
 * PL_OK or PL_ERR_BAD_SIGNATURE. */
pl_err pl__p2p_verify(const pl__p2p_pubkey *pk, const uint8_t *msg, size_t len, const uint8_t *sig,
                      size_t sig_len);

/* Peer id of a marshalled public key: the identity multihash when the
 * bytes are at most 42, else the sha256 multihash. */
void pl__p2p_peer_id_from_proto(pl_p2p_peer_id *id, const uint8_t *proto, size_t len);

/* Validate a binary peer id (a multihash: identity of <= 42 bytes, or
 * sha256). PL_ERR_P2P_PEER_ID otherwise. */
pl_err pl__p2p_peer_id_check(const uint8_t *b, size_t len);

#endif
