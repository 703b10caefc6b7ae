/* SPDX-License-Identifier: Apache-2.0 */
/* libp2p Noise (libp2p/specs noise): Noise_XX_25519_ChaChaPoly_SHA256 with
 * an empty prologue, every message in a frame u16 BE length | bytes (at
 * most 65535), and a signed NoiseHandshakePayload in messages 2 and 3 that
 * binds the Noise static key to the libp2p identity key:
 *
 *   -> e                                   (payload empty)
 *   <- e, ee, s, es, payload{key, sig}
 *   -> s, se, payload{key, sig}
 *   sig = Sign(identity key, "noise-libp2p-static-key:" || static pub)
 *
 * Plain Noise: none of Waku Noise's padding or nametags; the symmetric
 * state is the one of src/noise/symmetric.h. No stream_muxers extension is
 * sent, so js-libp2p negotiates the muxer by multistream-select; received
 * extensions are ignored.
 *
 * A core: no I/O, no clock. Randomness: fresh ephemeral keys (injectable
 * for tests). One object per connection, one thread. Private. */
#ifndef PL_P2P_NOISE_XX_H
#define PL_P2P_NOISE_XX_H

#include "core/internal.h"
#include "p2p/key.h"
#include "pairlink/p2p.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PL__NXX_PROTOCOL "/noise"
#define PL__NXX_NAME "Noise_XX_25519_ChaChaPoly_SHA256"
#define PL__NXX_SIG_PREFIX "noise-libp2p-static-key:"
#define PL__NXX_MAX_FRAME 65535u
#define PL__NXX_TAG 16u
#define PL__NXX_MAX_PLAIN (PL__NXX_MAX_FRAME - PL__NXX_TAG) /* per transport frame */
/* A NoiseHandshakePayload from a peer: a key, a DER signature and some
 * extensions fit in far less; anything larger is refused before parsing. */
#define PL__NXX_MAX_PAYLOAD 8192u

/* The local side of every handshake of a host: the Noise static key pair
 * and the signed payload, computed once (the signature covers only the
 * static key, so it does not change per connection). */
typedef struct pl__nxx_identity {
    uint8_t static_priv[32];
    uint8_t static_pub[32];
    uint8_t *payload; /* encoded NoiseHandshakePayload */
    size_t payload_len;
    pl_p2p_peer_id peer; /* our own peer id */
} pl__nxx_identity;

/* static_priv NULL: a random one. Errors: PL_ERR_NOMEM. */
pl_err pl__nxx_identity_init(pl__nxx_identity *id, const pl_p2p_key *key,
                             const uint8_t *static_priv);
void pl__nxx_identity_clear(pl__nxx_identity *id);

/* Build a payload signing `static_pub` (tests craft bad ones with it).
 * *out: caller frees. */
pl_err pl__nxx_payload_build(const pl_p2p_key *key, const uint8_t static_pub[32], uint8_t **out,
                             size_t *len);

/* Check a received payload against the static key the handshake carried:
 * decodes the key, verifies the signature, derives the peer id. Errors:
 * PL_ERR_P2P_PROTOBUF (not a NoiseHandshakePayload), PL_ERR_P2P_NOISE (no
 * key or no signature: an unsigned payload), PL_ERR_P2P_KEY (a key we
 * cannot use), PL_ERR_BAD_SIGNATURE, PL_ERR_TOO_LARGE. */
pl_err pl__nxx_payload_verify(const uint8_t *payload, size_t len, const uint8_t static_pub[32],
                              pl__p2p_pubkey *key, pl_p2p_peer_id *peer);

typedef enum pl__nxx_action {
    PL__NXX_WRITE = 1, /* call pl__nxx_write */
    PL__NXX_READ,      /* feed the next message to pl__nxx_read */
    PL__NXX_DONE,      /* transport keys ready */
    PL__NXX_FAILED,
} pl__nxx_action;

typedef struct pl__nxx pl__nxx;

/* expected: the peer id we dialed (a /p2p/ address), or NULL. ephemeral:
 * NULL for a random key (tests inject one). The identity must outlive the
 * object. Errors: PL_ERR_NOMEM. */
pl_err pl__nxx_new(pl__nxx **out, bool initiator, const pl__nxx_identity *identity,
                   const pl_p2p_peer_id *expected, const uint8_t *ephemeral);
void pl__nxx_free(pl__nxx *n);
pl__nxx_action pl__nxx_action_of(const pl__nxx *n);

/* The next handshake message, framed (2-byte length included), into
 * out[0..cap); cap >= 2 + 32 + 48 + payload + 16 is always enough.
 * Errors: PL_ERR_NOISE_STATE (not our turn), PL_ERR_BUFFER_TOO_SMALL (state
 * unchanged). */
pl_err pl__nxx_write(pl__nxx *n, uint8_t *out, size_t cap, size_t *len);

/* One handshake message (a frame's body, without the length). Any error
 * fails the handshake for good: PL_ERR_NOISE_STATE (not our turn),
 * PL_ERR_P2P_FRAME (too short for its keys), PL_ERR_DECRYPT,
 * PL_ERR_WEAK_KEY, the errors of pl__nxx_payload_verify,
 * PL_ERR_P2P_PEER_MISMATCH (a valid peer, not the one dialed). */
pl_err pl__nxx_read(pl__nxx *n, const uint8_t *msg, size_t len);

/* After the remote's payload was read: its key and peer id. */
const pl_p2p_peer_id *pl__nxx_remote_peer(const pl__nxx *n);
const pl__p2p_pubkey *pl__nxx_remote_key(const pl__nxx *n);

/* DONE: one transport frame. encrypt writes the 2-byte length and the
 * ciphertext (len + 16 bytes) to out; len <= PL__NXX_MAX_PLAIN. decrypt
 * takes a frame body (ciphertext and tag) and writes len - 16 bytes to
 * out, which may be ct itself. Errors: PL_ERR_NOISE_STATE,
 * PL_ERR_P2P_FRAME (decrypt: shorter than a tag), PL_ERR_DECRYPT,
 * PL_ERR_NOISE_NONCE (2^64 - 1 messages one way: the connection must
 * end). */
pl_err pl__nxx_encrypt(pl__nxx *n, const uint8_t *plain, size_t len, uint8_t *out);
pl_err pl__nxx_decrypt(pl__nxx *n, const uint8_t *ct, size_t len, uint8_t *out, size_t *out_len);

/* Tests: set the transport nonces (to reach the end of the nonce space). */
void pl__nxx_test_set_nonces(pl__nxx *n, uint64_t send, uint64_t recv);

/* Frame reassembly: u16 BE length | body, any split. Holds at most one
 * partial frame (grown to its size, <= 65535 bytes). */
typedef struct pl__nxx_framer {
    uint8_t hdr[2];
    size_t hdr_len;
    size_t need; /* body length of the frame in progress (0: reading the header) */
    uint8_t *buf;
    size_t cap, len;
} pl__nxx_framer;

/* Take bytes until one frame is complete: *used gets what was consumed,
 * *frame / *frame_len the complete body (pointing into `data` when the
 * whole frame was there, else into the framer; valid until the next call),
 * or NULL / 0 when more bytes are needed. Errors: PL_ERR_P2P_FRAME (a
 * zero-length frame), PL_ERR_NOMEM. */
pl_err pl__nxx_framer_feed(pl__nxx_framer *f, const uint8_t *data, size_t len, size_t *used,
                           const uint8_t **frame, size_t *frame_len);
void pl__nxx_framer_free(pl__nxx_framer *f);

#endif
