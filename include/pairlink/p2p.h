/* libp2p: identity keys, peer ids, and a host that speaks the libp2p stack
 * js-libp2p and nwaku accept (TCP, multistream-select 1.0, Noise XX, yamux
 * 1.0.0 / mplex 6.7.0, identify, ping). docs/p2p.md describes the layers,
 * limits and choices.
 *
 * Keys and peer ids (this first part) are plain functions: reentrant, no
 * I/O except the key-file functions, which do blocking file I/O.
 *
 * The host (second part) runs on a libuv loop. */
#ifndef PAIRLINK_P2P_H
#define PAIRLINK_P2P_H

#include "pairlink/common.h"

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- identity keys ------------------------------------------------------ */

typedef enum pl_p2p_key_type {
    PL_P2P_KEY_ED25519 = 1,   /* js-libp2p's default and ours */
    PL_P2P_KEY_SECP256K1 = 2, /* nwaku node keys */
} pl_p2p_key_type;

/* A private identity key. Opaque; the secret is wiped by pl_p2p_key_free. */
typedef struct pl_p2p_key pl_p2p_key;

#define PL_P2P_SECRET_BYTES 32

/* A fresh random key. Errors: PL_ERR_INVALID_ARG (unknown type),
 * PL_ERR_NOMEM. */
PL_EXPORT pl_err pl_p2p_key_generate(pl_p2p_key **out, pl_p2p_key_type type);

/* A key from its 32-byte secret: the Ed25519 seed, or the secp256k1 secret
 * scalar (what nwaku's --nodekey takes as hex). Errors: PL_ERR_P2P_KEY (a
 * secp256k1 secret of zero or not below the group order),
 * PL_ERR_INVALID_ARG, PL_ERR_NOMEM. */
PL_EXPORT pl_err pl_p2p_key_from_secret(pl_p2p_key **out, pl_p2p_key_type type,
                                        const uint8_t secret[PL_P2P_SECRET_BYTES]);

/* libp2p's marshalled PrivateKey protobuf {Type = 1, Data = 2}: Ed25519
 * Data is seed || public key (64 bytes; the public half must match the
 * seed), secp256k1 Data the 32-byte secret. This is the key file format.
 * unmarshal errors: PL_ERR_P2P_PROTOBUF, PL_ERR_P2P_KEY (other key types,
 * wrong sizes), PL_ERR_NOMEM. marshal: *out (caller frees with
 * pl_free_secret(*out, *len)); PL_ERR_NOMEM. */
PL_EXPORT pl_err pl_p2p_key_unmarshal(pl_p2p_key **out, const uint8_t *pb, size_t len);
PL_EXPORT pl_err pl_p2p_key_marshal(const pl_p2p_key *k, uint8_t **out, size_t *len);

/* The key in the file at `path` (format above, rules of keyfile.h: a
 * regular file owned by the user, mode 0600 or stricter, 1..256 bytes), or
 * a new key of `type` written there atomically when the file does not
 * exist; *created (may be NULL) says which. Errors: PL_ERR_KEY_FILE (unsafe
 * file or a wrong size), those of pl_p2p_key_unmarshal, PL_ERR_IO /
 * PL_ERR_SYS (pl_last_detail() holds errno). Blocking file I/O. */
PL_EXPORT pl_err pl_p2p_key_load_or_create(const char *path, pl_p2p_key_type type, pl_p2p_key **out,
                                           bool *created);
/* Write k to a new file at `path` (0600); PL_ERR_EXISTS if there is one. */
PL_EXPORT pl_err pl_p2p_key_save(const char *path, const pl_p2p_key *k);

PL_EXPORT void pl_p2p_key_free(pl_p2p_key *k);
PL_EXPORT pl_p2p_key_type pl_p2p_key_type_of(const pl_p2p_key *k);

/* ---- peer ids ----------------------------------------------------------- */

/* A peer id in binary: a multihash of the marshalled public key (identity
 * multihash for keys of up to 42 bytes, i.e. Ed25519 and secp256k1; sha256
 * otherwise). */
#define PL_P2P_PEER_ID_MAX 48
#define PL_P2P_PEER_ID_TEXT_SIZE 72 /* base58btc text and NUL */

typedef struct pl_p2p_peer_id {
    uint8_t len; /* 0: no peer id */
    uint8_t bytes[PL_P2P_PEER_ID_MAX];
} pl_p2p_peer_id;

PL_EXPORT void pl_p2p_key_peer_id(const pl_p2p_key *k, pl_p2p_peer_id *id);

/* Parse the text of a peer id: base58btc ("12D3KooW...", "16Uiu2...",
 * "Qm...") or a CIDv1 in base32 ("bafz...", multicodec libp2p-key). *id is
 * zeroed on failure. Errors: PL_ERR_P2P_PEER_ID. */
PL_EXPORT pl_err pl_p2p_peer_id_parse(pl_p2p_peer_id *id, const char *text, size_t len);

/* base58btc text. PL_ERR_P2P_PEER_ID for an empty or malformed id. */
PL_EXPORT pl_err pl_p2p_peer_id_format(char out[PL_P2P_PEER_ID_TEXT_SIZE],
                                       const pl_p2p_peer_id *id);

PL_EXPORT bool pl_p2p_peer_id_equal(const pl_p2p_peer_id *a, const pl_p2p_peer_id *b);

/* ---- identify ------------------------------------------------------------- */

/* What a peer said about itself in identify (/ipfs/id/1.0.0). Strings are
 * UTF-8 and NUL-terminated; empty when the peer left them out. Protocol ids
 * that could never be negotiated and addresses we cannot read are left
 * out. Owned by the library: see where it is handed out for how long it
 * stays valid. */
typedef struct pl_p2p_identify {
    const char *protocol_version; /* "ipfs/0.1.0" */
    const char *agent_version;    /* e.g. "js-libp2p/1.9.4 UserAgent=v20.20.0" */
    const char *const *protocols; /* e.g. "/vac/waku/relay/2.0.0" */
    size_t nprotocols;
    const char *const *listen_addrs; /* multiaddr text */
    size_t nlisten_addrs;
    const char *observed_addr; /* how the peer sees us; "" when absent */
} pl_p2p_identify;

#ifdef __cplusplus
}
#endif
#endif
