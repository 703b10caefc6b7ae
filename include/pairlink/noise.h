/* SPDX-License-Identifier: Apache-2.0 */
/* Waku Noise (Waku RFC 35, 37, 43): handshakes, PayloadV2 and sessions,
 * byte-compatible with js-noise (@waku/noise 0.0.3-a19e968).
 *
 * Suite 25519 / ChaChaPoly / SHA256. Patterns K1K1, XK1, XX, XXpsk0 and
 * WakuPairing. Everything here is a protocol core: no I/O, no clock; the
 * only outside input is the OS random source for ephemeral keys that were
 * not injected. The wire format and every derivation are specified in
 * docs/protocol/waku-noise.md.
 *
 * Typical handshake loop (both parties):
 *
 *     pl_noise_hs *hs;
 *     pl_noise_hs_new(&hs, PL_NOISE_XX, PL_NOISE_INITIATOR, &keys, prologue, plen, NULL);
 *     for (;;) switch (pl_noise_hs_action(hs)) {
 *         case PL_NOISE_ACTION_WRITE: pl_noise_hs_write(hs, NULL, payload, n, &wire, &wlen); send; break;
 *         case PL_NOISE_ACTION_READ:  receive; pl_noise_hs_read(hs, wire, wlen, NULL, &pl, &plen); break;
 *         case PL_NOISE_ACTION_SPLIT: pl_noise_hs_split(hs, &session); goto done;
 *         default: fail;
 *     }
 *
 * Failure rule: once a message addressed to the current step (its nametag
 * matches) fails in any way, the handshake is failed for good: every later
 * call returns PL_ERR_NOISE_STATE and nothing is output. The one exception
 * is a message that is not addressed to this step (wrong nametag or shorter
 * than a nametag): on a pub/sub topic one also receives one's own and other
 * people's messages, so such a message is rejected and the state is left
 * exactly as it was.
 *
 * Objects are not locked; use one object from one thread at a time. */
#ifndef PAIRLINK_NOISE_H
#define PAIRLINK_NOISE_H

#include "pairlink/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PL_NOISE_KEY_BYTES 32     /* X25519 keys, cipher keys, psk */
#define PL_NOISE_HASH_BYTES 32    /* h, ck, session id */
#define PL_NOISE_NAMETAG_BYTES 16 /* message nametag */
#define PL_NOISE_TAG_BYTES 16     /* Poly1305 tag */
#define PL_NOISE_PAD_BLOCK 248    /* PKCS#7 block of every padded plaintext */
#define PL_NOISE_WINDOW 50        /* nametags accepted ahead of / behind the next expected one */
#define PL_NOISE_AUTHCODE_SIZE 9  /* 8 digits + NUL */
/* A serialized handshake key: flag 0 | key[32] or flag 1 | enc(key)[32] | tag[16]. */
#define PL_NOISE_MAX_HS_KEYS 7    /* 255-byte handshake section / 33 bytes */
/* Bounds: a WakuMessage carries at most 150 KiB, so no PayloadV2 may be
 * larger; plaintexts are bounded so that their padded encryption fits. */
#define PL_NOISE_MAX_WIRE (150u * 1024u)
#define PL_NOISE_MAX_MESSAGE (128u * 1024u)
#define PL_NOISE_MAX_PROLOGUE 4096u
/* Serialized session state (version 1), see pl_noise_session_serialize. */
#define PL_NOISE_SESSION_STATE_BYTES 224

/* Patterns; the values are the PayloadV2 protocol-id bytes. */
typedef enum pl_noise_pattern {
    PL_NOISE_K1K1 = 10,        /* <- s, -> s pre-shared; -> e; <- e, ee, es; -> se */
    PL_NOISE_XK1 = 11,         /* <- s pre-shared; -> e; <- e, ee, es; -> s, se */
    PL_NOISE_XX = 12,          /* -> e; <- e, ee, s, es; -> s, se */
    PL_NOISE_XXPSK0 = 13,      /* -> psk, e; <- e, ee, s, es; -> s, se */
    PL_NOISE_WAKU_PAIRING = 14 /* <- e pre-shared (QR); -> e, ee; <- s, es; -> s, se, ss */
} pl_noise_pattern;

/* PayloadV2 protocol ids that are not handshakes. */
#define PL_NOISE_PROTOCOL_TRANSPORT 0
#define PL_NOISE_PROTOCOL_CHACHAPOLY 30

typedef enum pl_noise_role { PL_NOISE_INITIATOR = 1, PL_NOISE_RESPONDER = 2 } pl_noise_role;

/* Full protocol name ("Noise_XX_25519_ChaChaPoly_SHA256"); NULL for a value
 * that is not a pattern. Static string. */
PL_EXPORT const char *pl_noise_pattern_name(pl_noise_pattern p);
/* Inverse of pl_noise_pattern_name; also accepts the short names "K1K1",
 * "XK1", "XX", "XXpsk0", "WakuPairing". PL_ERR_NOISE_PATTERN if unknown. */
PL_EXPORT pl_err pl_noise_pattern_from_name(pl_noise_pattern *out, const char *name);

/* ---- PayloadV2 ----
 * nametag[16] | protocol_id(1) | hs_len(1) | hs keys (hs_len bytes) |
 * transport_len (8, little-endian) | transport.
 * Parsing is strict: the protocol id must be 0, 10..14 or 30; ids 0 and 30
 * carry no keys; each key is flag 0 (33 bytes) or flag 1 (49 bytes) and the
 * keys fill hs_len exactly; transport_len must equal the bytes that remain. */
typedef struct pl_noise_hs_key {
    uint8_t flag;     /* 0: clear, 1: encrypted */
    uint8_t data[48]; /* 32 bytes (flag 0) or 32 + tag 16 (flag 1) */
} pl_noise_hs_key;

typedef struct pl_noise_payload {
    uint8_t nametag[PL_NOISE_NAMETAG_BYTES];
    uint8_t protocol_id;
    size_t nkeys;
    pl_noise_hs_key keys[PL_NOISE_MAX_HS_KEYS];
    const uint8_t *transport; /* borrowed: points into the parsed input */
    size_t transport_len;
} pl_noise_payload;

/* Parse a serialized PayloadV2. On success `out->transport` points into
 * `wire`, which must outlive its use. Errors: PL_ERR_TOO_LARGE (len above
 * PL_NOISE_MAX_WIRE), PL_ERR_NOISE_PROTOCOL_ID (unknown id),
 * PL_ERR_NOISE_PAYLOAD (any other malformation); `out` is zeroed then. */
PL_EXPORT pl_err pl_noise_payload_parse(pl_noise_payload *out, const uint8_t *wire, size_t len);
/* Serialize. *wire is malloc'd, owned by the caller (pl_free). Errors:
 * PL_ERR_NOISE_PAYLOAD (more keys than fit in 255 bytes, a flag other than
 * 0/1, keys with protocol id 0/30), PL_ERR_NOISE_PROTOCOL_ID,
 * PL_ERR_TOO_LARGE, PL_ERR_NOMEM. */
PL_EXPORT pl_err pl_noise_payload_serialize(uint8_t **wire, size_t *len,
                                            const pl_noise_payload *p);

/* ---- handshake ---- */
typedef struct pl_noise_hs pl_noise_hs;

/* Keys for a handshake. Pointers are read during pl_noise_hs_new only
 * (copied). Which are needed:
 *   K1K1:        static_priv, remote_static_pub (both roles)
 *   XK1:         static_priv (both); initiator also remote_static_pub
 *   XX, XXpsk0:  static_priv (both); psk is the last argument of _new
 *   WakuPairing: static_priv (both); initiator: remote_ephemeral_pub (eB
 *                from the QR); responder: ephemeral_priv is the key whose
 *                public half goes into the QR (random when NULL).
 * ephemeral_priv NULL means a fresh random key (normal use); a given key is
 * for known-answer transcripts only: reusing one breaks Noise's security.
 * static_pub, when given, must be the public half of static_priv: it saves
 * the X25519 multiplication that derives it, which a caller running many
 * handshakes with one key (a node manager) does once instead of per
 * handshake. A wrong one is not detected here; the handshake then fails at
 * the peer (PL_ERR_DECRYPT) because the two transcripts differ. */
typedef struct pl_noise_keys {
    const uint8_t *static_priv;          /* 32 bytes or NULL */
    const uint8_t *ephemeral_priv;       /* 32 bytes or NULL (random) */
    const uint8_t *remote_static_pub;    /* 32 bytes or NULL */
    const uint8_t *remote_ephemeral_pub; /* 32 bytes or NULL */
    const uint8_t *static_pub;           /* 32 bytes or NULL (derived from static_priv) */
} pl_noise_keys;

typedef enum pl_noise_action {
    PL_NOISE_ACTION_WRITE = 1, /* call pl_noise_hs_write */
    PL_NOISE_ACTION_READ,      /* call pl_noise_hs_read */
    PL_NOISE_ACTION_SPLIT,     /* all messages done: call pl_noise_hs_split */
    PL_NOISE_ACTION_DONE,      /* split already happened */
    PL_NOISE_ACTION_FAILED     /* failed for good */
} pl_noise_action;

/* Start a handshake: h = protocol name (hashed), MixHash(prologue), then the
 * pattern's pre-messages. prologue may be NULL when prologue_len is 0 (for
 * WakuPairing it is the QR string's bytes). psk: 32 bytes for XXpsk0, else
 * must be NULL. *out is owned by the caller (pl_noise_hs_free).
 * Errors: PL_ERR_NOISE_PATTERN, PL_ERR_NOISE_MISSING_KEY (a key the pattern
 * needs is NULL, or a psk for XXpsk0), PL_ERR_INVALID_ARG (a psk for a
 * pattern without one), PL_ERR_TOO_LARGE (prologue above
 * PL_NOISE_MAX_PROLOGUE), PL_ERR_NOMEM. *out is NULL on error. */
PL_EXPORT pl_err pl_noise_hs_new(pl_noise_hs **out, pl_noise_pattern pattern, pl_noise_role role,
                                 const pl_noise_keys *keys, const uint8_t *prologue,
                                 size_t prologue_len, const uint8_t *psk);
/* Wipes all secrets and frees. NULL is a no-op. */
PL_EXPORT void pl_noise_hs_free(pl_noise_hs *hs);

PL_EXPORT pl_noise_action pl_noise_hs_action(const pl_noise_hs *hs);
PL_EXPORT pl_noise_pattern pl_noise_hs_pattern(const pl_noise_hs *hs);
PL_EXPORT pl_noise_role pl_noise_hs_role(const pl_noise_hs *hs);

/* The nametag the next handshake message (either direction) carries when
 * the caller passes NULL: 16 zero bytes for the first message (which
 * normally gets an out-of-band tag, e.g. beside the WakuPairing QR), then
 * the first 16 bytes of HKDF(salt = h, ikm = "", info = ""). */
PL_EXPORT void pl_noise_hs_next_nametag(const pl_noise_hs *hs,
                                        uint8_t nametag[PL_NOISE_NAMETAG_BYTES]);

/* Write the next handshake message, carrying `payload` (PKCS#7 padded, then
 * encrypted once a key exists). nametag: NULL for the default
 * (pl_noise_hs_next_nametag), or the 16 bytes to use (the out-of-band tag of
 * message 1). *wire (malloc'd, caller frees with pl_free) is a whole
 * PayloadV2. Errors: PL_ERR_NOISE_STATE (failed, finished or not our turn;
 * state unchanged), PL_ERR_TOO_LARGE (payload above PL_NOISE_MAX_MESSAGE;
 * state unchanged), PL_ERR_WEAK_KEY (a DH gave all zeros), PL_ERR_NOMEM,
 * PL_ERR_NOISE_NONCE; the last three fail the handshake. */
PL_EXPORT pl_err pl_noise_hs_write(pl_noise_hs *hs, const uint8_t *nametag, const uint8_t *payload,
                                   size_t payload_len, uint8_t **wire, size_t *wire_len);

/* Read the next handshake message. nametag: the expected tag, or NULL for
 * the default (see above). *payload (malloc'd, never NULL on success; may
 * hold secrets: release with pl_free_secret(*payload, *payload_len)).
 * Errors that leave the state untouched: PL_ERR_NOISE_STATE,
 * PL_ERR_NOISE_NAMETAG (not addressed to this step), PL_ERR_NOISE_PAYLOAD
 * when shorter than a nametag. Errors that fail the handshake:
 * PL_ERR_TOO_LARGE, PL_ERR_NOISE_PAYLOAD, PL_ERR_NOISE_PROTOCOL_ID,
 * PL_ERR_DECRYPT, PL_ERR_NOISE_PADDING, PL_ERR_WEAK_KEY, PL_ERR_NOMEM. */
PL_EXPORT pl_err pl_noise_hs_read(pl_noise_hs *hs, const uint8_t *wire, size_t wire_len,
                                  const uint8_t *nametag, uint8_t **payload, size_t *payload_len);

/* Current handshake hash h (after the last message processed). */
PL_EXPORT void pl_noise_hs_handshake_hash(const pl_noise_hs *hs, uint8_t h[PL_NOISE_HASH_BYTES]);
/* The remote static key once known (pre-message or received):
 * PL_ERR_STATE before that. */
PL_EXPORT pl_err pl_noise_hs_remote_static(const pl_noise_hs *hs, uint8_t pub[PL_NOISE_KEY_BYTES]);
/* Our ephemeral public key once chosen (for the WakuPairing responder from
 * pl_noise_hs_new on: the key to put in the QR); PL_ERR_STATE before. */
PL_EXPORT pl_err pl_noise_hs_local_ephemeral(const pl_noise_hs *hs, uint8_t pub[PL_NOISE_KEY_BYTES]);
/* 8-digit authorization code from the current h, meant to be shown after
 * message 1: the first 8 bytes of HKDF(salt = h, ikm = "", info = ""), read
 * BIG-endian (as js-noise; nwaku reads little-endian), mod 10^8, zero
 * padded. Both users compare it. */
PL_EXPORT void pl_noise_hs_authcode(const pl_noise_hs *hs, char code[PL_NOISE_AUTHCODE_SIZE]);

/* ---- session ---- */
typedef struct pl_noise_session pl_noise_session;

/* Split a finished handshake (action SPLIT) into a session; the handshake
 * moves to DONE and drops its chaining key. *out: caller frees with
 * pl_noise_session_free. Errors: PL_ERR_NOISE_STATE (not at SPLIT),
 * PL_ERR_NOMEM. */
PL_EXPORT pl_err pl_noise_hs_split(pl_noise_hs *hs, pl_noise_session **out);

/* Wipes and frees. NULL is a no-op. */
PL_EXPORT void pl_noise_session_free(pl_noise_session *s);

/* Encrypt a transport message into a PayloadV2 (protocol id 0): the next
 * outbound nametag, nonce n, AD = nametag, PKCS#7 padding. *wire: caller
 * frees with pl_free. Errors: PL_ERR_TOO_LARGE (above PL_NOISE_MAX_MESSAGE),
 * PL_ERR_NOISE_NONCE (2^64-1 messages sent; js-noise stops at 2^32-1),
 * PL_ERR_NOMEM. The state changes only on success. */
PL_EXPORT pl_err pl_noise_session_encrypt(pl_noise_session *s, const uint8_t *msg, size_t len,
                                          uint8_t **wire, size_t *wire_len);
/* Decrypt a transport PayloadV2. Its nametag selects the nonce among the
 * PL_NOISE_WINDOW nametags from the next expected one on, or the
 * PL_NOISE_WINDOW before it that have not arrived yet; each is accepted
 * once, so lost and reordered messages are fine. *msg: never NULL on
 * success; release with pl_free_secret(*msg, *msg_len). Errors (state
 * unchanged on every error): PL_ERR_TOO_LARGE, PL_ERR_NOISE_PAYLOAD,
 * PL_ERR_NOISE_PROTOCOL_ID (not a transport message), PL_ERR_NOISE_REPLAY
 * (that nametag was already accepted), PL_ERR_NOISE_WINDOW (nametag unknown:
 * outside the window, or not ours), PL_ERR_DECRYPT, PL_ERR_NOISE_PADDING,
 * PL_ERR_NOMEM. */
PL_EXPORT pl_err pl_noise_session_decrypt(pl_noise_session *s, const uint8_t *wire, size_t len,
                                          uint8_t **msg, size_t *msg_len);

/* Session state as PL_NOISE_SESSION_STATE_BYTES bytes (format version 1 in
 * docs/protocol/waku-noise.md). It holds the keys: store it as a secret and
 * release with pl_free_secret(*out, *out_len). Errors: PL_ERR_NOMEM. */
PL_EXPORT pl_err pl_noise_session_serialize(const pl_noise_session *s, uint8_t **out,
                                            size_t *out_len);
/* Restore a session that continues exactly where the serialized one stopped
 * (use each serialized state once: restoring an old copy re-uses nonces).
 * Errors: PL_ERR_BAD_LENGTH, PL_ERR_STORE_CORRUPT (magic, fields out of
 * range), PL_ERR_UNSUPPORTED (a later format version), PL_ERR_NOMEM. */
PL_EXPORT pl_err pl_noise_session_restore(pl_noise_session **out, const uint8_t *in, size_t len);

PL_EXPORT pl_noise_pattern pl_noise_session_pattern(const pl_noise_session *s);
PL_EXPORT pl_noise_role pl_noise_session_role(const pl_noise_session *s);
PL_EXPORT void pl_noise_session_handshake_hash(const pl_noise_session *s,
                                               uint8_t h[PL_NOISE_HASH_BYTES]);
PL_EXPORT void pl_noise_session_remote_static(const pl_noise_session *s,
                                              uint8_t pub[PL_NOISE_KEY_BYTES]);
/* RFC 37 session-id = HKDF(h): bytes 64..96 of HKDF-SHA256(salt = h,
 * ikm = "", info = "", 96) (bytes 0..64 are the nametag secrets). Equal on
 * both sides. */
PL_EXPORT void pl_noise_session_id(const pl_noise_session *s, uint8_t id[PL_NOISE_HASH_BYTES]);
/* Messages sent so far (the next outbound nonce) and the next inbound nonce
 * expected in order. */
PL_EXPORT uint64_t pl_noise_session_sent(const pl_noise_session *s);
PL_EXPORT uint64_t pl_noise_session_next_inbound(const pl_noise_session *s);

/* RFC 37 session content topic "/{app}/{version}/wakunoise/1/sessions/{ct-id}/proto"
 * with ct-id = lowercase hex of sha256(sha256(session-id)). app and version:
 * 1..255 bytes, no '/' and no control characters (PL_ERR_INVALID_ARG).
 * *out: NUL-terminated, caller frees with pl_free. */
PL_EXPORT pl_err pl_noise_session_content_topic(char **out, const pl_noise_session *s,
                                                const char *app, const char *version);

/* ---- WakuPairing (RFC 43) ---- */
#define PL_NOISE_QR_FIELD_MAX 255

/* QR contents. The QR string is
 * b64url(app):b64url(version):b64url(shard):b64url(eB):b64url(commitment),
 * base64url WITH '=' padding; the whole string is the handshake prologue. */
typedef struct pl_noise_qr {
    char app[PL_NOISE_QR_FIELD_MAX + 1];
    char version[PL_NOISE_QR_FIELD_MAX + 1];
    char shard[PL_NOISE_QR_FIELD_MAX + 1];
    uint8_t ephemeral_pub[PL_NOISE_KEY_BYTES];   /* responder's eB */
    uint8_t committed_static[PL_NOISE_HASH_BYTES]; /* sha256(sB || r) */
} pl_noise_qr;

/* *out: NUL-terminated, caller frees with pl_free. Errors:
 * PL_ERR_INVALID_ARG (a text field empty, above 255 bytes, or with '/' or a
 * control character: they become content-topic segments), PL_ERR_NOMEM. */
PL_EXPORT pl_err pl_noise_qr_encode(char **out, const pl_noise_qr *qr);
/* Errors: PL_ERR_TOO_LARGE (len above 2048), PL_ERR_BAD_BASE64 (a field
 * that is not padded base64url), PL_ERR_URI_MALFORMED (not 5 fields, a key
 * of the wrong size, a text field as for encode). */
PL_EXPORT pl_err pl_noise_qr_parse(pl_noise_qr *qr, const char *s, size_t len);
/* "/{app}/{version}/wakunoise/1/sessions_shard-{shard}/proto" (RFC 43 and
 * js-noise 0.0.3). *out: caller frees with pl_free. Errors: PL_ERR_NOMEM. */
PL_EXPORT pl_err pl_noise_qr_content_topic(char **out, const pl_noise_qr *qr);

/* Commitment to a static key: sha256(static_pub || r). */
PL_EXPORT void pl_noise_commit(uint8_t out[PL_NOISE_HASH_BYTES],
                               const uint8_t static_pub[PL_NOISE_KEY_BYTES], const uint8_t *r,
                               size_t r_len);
/* Constant-time check of a revealed commitment. PL_OK or
 * PL_ERR_NOISE_COMMITMENT; r_len up to PL_NOISE_MAX_MESSAGE. */
PL_EXPORT pl_err pl_noise_commit_check(const uint8_t commitment[PL_NOISE_HASH_BYTES],
                                       const uint8_t static_pub[PL_NOISE_KEY_BYTES],
                                       const uint8_t *r, size_t r_len);

#ifdef __cplusplus
}
#endif
#endif
