/* SPDX-License-Identifier: Apache-2.0 */
/* Keys and envelopes: X25519, WalletConnect session keys and topics,
 * type 0/1/2 envelopes, Ed25519 did:key identities and the relay-auth JWT,
 * Argon2id, AES-256-GCM.
 *
 * Secrets: functions that derive or hold secret material wipe their
 * temporaries before returning. Tag checks happen before any decrypted byte
 * is returned. Comparisons of secrets are constant-time. */
#ifndef PAIRLINK_CRYPTO_H
#define PAIRLINK_CRYPTO_H

#include "pairlink/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PL_X25519_BYTES 32
#define PL_SYMKEY_BYTES 32
#define PL_TOPIC_HEX_SIZE 65 /* 64 hex + NUL */
#define PL_ED25519_PUB_BYTES 32
#define PL_ED25519_SEED_BYTES 32
#define PL_ED25519_SIG_BYTES 64
#define PL_IV_BYTES 12
#define PL_TAG_BYTES 16

/* ---- X25519 ---- */
/* Fresh key pair from the OS random source. */
PL_EXPORT void pl_x25519_keypair(uint8_t pub[PL_X25519_BYTES], uint8_t priv[PL_X25519_BYTES]);
/* Public key of a private scalar (clamped as X25519 does). */
PL_EXPORT void pl_x25519_public(uint8_t pub[PL_X25519_BYTES], const uint8_t priv[PL_X25519_BYTES]);
/* Diffie-Hellman. PL_ERR_WEAK_KEY if the peer key is of low order (the result
 * is all zeros); `out` is zeroed then. */
PL_EXPORT pl_err pl_x25519(uint8_t out[PL_X25519_BYTES], const uint8_t priv[PL_X25519_BYTES],
                           const uint8_t peer_pub[PL_X25519_BYTES]);

/* ---- WalletConnect keys and topics ---- */
/* symKey = HKDF-SHA256(ikm = X25519(priv, peer_pub), no salt, no info, 32). */
PL_EXPORT pl_err pl_wc_session_key(uint8_t sym_key[PL_SYMKEY_BYTES],
                                   const uint8_t self_priv[PL_X25519_BYTES],
                                   const uint8_t peer_pub[PL_X25519_BYTES]);
/* topic = lowercase hex of sha256(raw key bytes). */
PL_EXPORT void pl_wc_topic(char topic[PL_TOPIC_HEX_SIZE], const uint8_t sym_key[PL_SYMKEY_BYTES]);

/* ---- envelopes ----
 * type 0: 0x00 | iv[12] | ct | tag[16]       (ChaCha20-Poly1305, no AAD)
 * type 1: 0x01 | sender_pub[32] | iv | ct | tag
 * type 2: 0x02 | plaintext                   (unencrypted; link mode only)
 * On the wire: standard base64 with padding. */
#define PL_ENVELOPE_MAX_MESSAGE (1u << 20) /* 1 MiB plaintext bound */

typedef struct pl_envelope_params {
    int type;                  /* 0, 1 or 2 */
    const uint8_t *sender_pub; /* type 1: the sender's X25519 public key (32 bytes) */
    const uint8_t *iv;         /* NULL: random (normal use); 12 bytes for known-answer tests */
} pl_envelope_params;

/* Seal `msg` into a base64 envelope. key is the symKey (types 0 and 1; for
 * type 1 it is the session key derived from sender priv and receiver pub;
 * ignored for type 2, may be NULL). *out_b64 is NUL-terminated and owned by
 * the caller (pl_free). Errors: PL_ERR_ENVELOPE_TYPE, PL_ERR_TOO_LARGE,
 * PL_ERR_NOMEM. */
PL_EXPORT pl_err pl_envelope_seal(char **out_b64, const uint8_t *key, const uint8_t *msg,
                                  size_t msg_len, const pl_envelope_params *params);

/* The same without the base64: *out (pl_free; wipe it first for type 2,
 * which holds the plaintext) gets the envelope bytes, which is what a
 * transport carries (the WalletConnect relay transport base64-encodes them
 * itself). */
PL_EXPORT pl_err pl_envelope_seal_raw(uint8_t **out, size_t *out_len, const uint8_t *key,
                                      const uint8_t *msg, size_t msg_len,
                                      const pl_envelope_params *params);

typedef struct pl_envelope_info {
    int type;
    uint8_t sender_pub[PL_X25519_BYTES]; /* type 1 only */
} pl_envelope_info;

/* Decode the outer layer without decrypting: the type and, for type 1, the
 * sender key (so the receiver can derive the key). Errors: PL_ERR_BAD_BASE64,
 * PL_ERR_BAD_ENVELOPE (too short, or a type 1 sender key that is not the
 * canonical X25519 encoding u < 2^255-19: X25519 would ignore the difference,
 * making the envelope malleable), PL_ERR_ENVELOPE_TYPE, PL_ERR_TOO_LARGE. */
PL_EXPORT pl_err pl_envelope_peek(pl_envelope_info *info, const char *b64, size_t b64_len);

/* Open an envelope. key: symKey for type 0/1, or NULL to accept only a
 * type 2 envelope. With a key, type 2 is refused (PL_ERR_ENVELOPE_TYPE): it
 * carries no authentication, so accepting it would let anyone replace an
 * encrypted message by a plaintext one; without a key, types 0/1 are refused
 * the same way. For type 1 opened with an explicit key, info->sender_pub is
 * not authenticated by the tag (use pl_envelope_open_type1 to bind it).
 * *out_msg (caller frees with pl_free) gets the plaintext plus a trailing NUL
 * not counted in *out_len; it is set only after the tag verified.
 * Errors: those of peek, PL_ERR_DECRYPT on a wrong key or any tampered byte,
 * PL_ERR_NOMEM. info may be NULL; it is filled on success, zeroed otherwise. */
PL_EXPORT pl_err pl_envelope_open(uint8_t **out_msg, size_t *out_len, pl_envelope_info *info,
                                  const uint8_t *key, const char *b64, size_t b64_len);

/* pl_envelope_peek and pl_envelope_open on envelope bytes (no base64):
 * the same checks and errors, except PL_ERR_BAD_BASE64. */
PL_EXPORT pl_err pl_envelope_peek_raw(pl_envelope_info *info, const uint8_t *env, size_t env_len);
PL_EXPORT pl_err pl_envelope_open_raw(uint8_t **out_msg, size_t *out_len, pl_envelope_info *info,
                                      const uint8_t *key, const uint8_t *env, size_t env_len);

/* Open a type 1 envelope with the receiver's private key: derives the
 * session key from the sender key carried inside, then opens. Errors: those
 * of pl_envelope_open, PL_ERR_ENVELOPE_TYPE for any other type,
 * PL_ERR_WEAK_KEY if the carried sender key is of low order. */
PL_EXPORT pl_err pl_envelope_open_type1(uint8_t **out_msg, size_t *out_len,
                                        pl_envelope_info *info,
                                        const uint8_t receiver_priv[PL_X25519_BYTES],
                                        const char *b64, size_t b64_len);

/* ---- Ed25519 identities, did:key, relay-auth JWT ---- */
#define PL_DID_KEY_SIZE 64 /* "did:key:z6Mk..." is 56 chars; NUL and headroom */

PL_EXPORT void pl_ed25519_keypair(uint8_t pub[PL_ED25519_PUB_BYTES],
                                  uint8_t seed[PL_ED25519_SEED_BYTES]);
PL_EXPORT void pl_ed25519_public(uint8_t pub[PL_ED25519_PUB_BYTES],
                                 const uint8_t seed[PL_ED25519_SEED_BYTES]);
PL_EXPORT void pl_ed25519_sign(uint8_t sig[PL_ED25519_SIG_BYTES],
                               const uint8_t seed[PL_ED25519_SEED_BYTES], const uint8_t *msg,
                               size_t len);
/* PL_OK or PL_ERR_BAD_SIGNATURE. */
PL_EXPORT pl_err pl_ed25519_verify(const uint8_t sig[PL_ED25519_SIG_BYTES],
                                   const uint8_t pub[PL_ED25519_PUB_BYTES], const uint8_t *msg,
                                   size_t len);

/* did:key:z + base58btc(0xed 0x01 | pub). */
PL_EXPORT pl_err pl_did_key_encode(char out[PL_DID_KEY_SIZE], const uint8_t pub[PL_ED25519_PUB_BYTES]);
/* PL_ERR_BAD_DID for a wrong prefix, multicodec or length. */
PL_EXPORT pl_err pl_did_key_decode(uint8_t pub[PL_ED25519_PUB_BYTES], const char *did, size_t len);

#define PL_JWT_MAX_LEN 4096       /* longer tokens are rejected, not parsed */
#define PL_JWT_AUD_MAX 1024
#define PL_JWT_DEFAULT_TTL 86400

/* Relay-auth JWT: header {"alg":"EdDSA","typ":"JWT"}, payload
 * {"iss","sub","aud","iat","exp"} in that order, exp = iat + ttl; parts
 * base64url unpadded; Ed25519 over "header.payload". sub is the hex string
 * the client chooses (32 random bytes in JS). *out_jwt: caller frees.
 * Errors: PL_ERR_TOO_LARGE (sub of 256+ bytes, aud of PL_JWT_AUD_MAX+ bytes,
 * or a token that would exceed PL_JWT_MAX_LEN), PL_ERR_BAD_UTF8 (sub or aud
 * not UTF-8), PL_ERR_INVALID_ARG (iat < 0, ttl <= 0, or exp above 2^53-1,
 * the largest integer JS reads exactly), PL_ERR_NOMEM. */
PL_EXPORT pl_err pl_jwt_sign(char **out_jwt, const uint8_t seed[PL_ED25519_SEED_BYTES],
                             const char *sub, const char *aud, int64_t iat, int64_t ttl);

typedef struct pl_jwt_claims {
    char iss[PL_DID_KEY_SIZE];
    char sub[256];
    char aud[PL_JWT_AUD_MAX];
    int64_t iat;
    int64_t exp;
    uint8_t pub[PL_ED25519_PUB_BYTES]; /* from iss */
} pl_jwt_claims;

/* Verify a relay-auth JWT: structure, header (alg "EdDSA" and typ "JWT",
 * as the JS verifier demands; no "crit"), payload members of the right JSON
 * types (iat/exp integers in 0..2^53-1, no duplicate keys), iss as did:key,
 * the signature, then `aud` (when expected_aud is not NULL: exact string
 * match) and time: PL_ERR_JWT_EXPIRED if now > exp + leeway,
 * PL_ERR_JWT_NOT_YET_VALID if iat > now + leeway (leeway >= 0, else misuse).
 * claims may be NULL; it is filled on success and zeroed otherwise.
 * A token longer than PL_JWT_MAX_LEN is refused before any parsing.
 * Errors: PL_ERR_JWT_MALFORMED, PL_ERR_JWT_HEADER, PL_ERR_BAD_DID,
 * PL_ERR_JWT_SIGNATURE, PL_ERR_JWT_AUDIENCE, PL_ERR_JWT_EXPIRED,
 * PL_ERR_JWT_NOT_YET_VALID, PL_ERR_TOO_LARGE. */
PL_EXPORT pl_err pl_jwt_verify(pl_jwt_claims *claims, const char *jwt, size_t len,
                               const char *expected_aud, int64_t now, int64_t leeway);

/* ---- Argon2id ---- */
/* libsodium crypto_pwhash (Argon2id v1.3, parallelism 1). salt is 16 bytes.
 * out_len >= 16, opslimit >= 1, memlimit in bytes (>= 8 KiB; used in whole
 * KiB). Errors: PL_ERR_INVALID_ARG for out-of-range parameters,
 * PL_ERR_TOO_LARGE for a password above libsodium's limit, PL_ERR_NOMEM if
 * the memory cannot be had. out is wiped on failure. */
#define PL_ARGON2_SALT_BYTES 16
PL_EXPORT pl_err pl_argon2id(uint8_t *out, size_t out_len, const uint8_t *pwd, size_t pwd_len,
                             const uint8_t salt[PL_ARGON2_SALT_BYTES], uint64_t opslimit,
                             size_t memlimit);

/* ---- AES-256-GCM (OpenSSL) ---- */
/* out receives ct | tag[16] (in_len + 16 bytes). aad may be NULL/0.
 * Errors: PL_ERR_TOO_LARGE (lengths above INT_MAX: OpenSSL's int API),
 * PL_ERR_NOMEM, PL_ERR_CRYPTO (pl_last_detail() has the OpenSSL error). */
PL_EXPORT pl_err pl_aes256gcm_encrypt(uint8_t *out, const uint8_t key[32],
                                      const uint8_t iv[PL_IV_BYTES], const uint8_t *aad,
                                      size_t aad_len, const uint8_t *in, size_t in_len);
/* in is ct | tag; out receives in_len - 16 bytes and may equal in. GCM
 * decrypts before it authenticates, so on PL_ERR_DECRYPT (bad tag) out is
 * wiped. Other errors: PL_ERR_TRUNCATED if in_len < 16, PL_ERR_TOO_LARGE,
 * PL_ERR_NOMEM, PL_ERR_CRYPTO. */
PL_EXPORT pl_err pl_aes256gcm_decrypt(uint8_t *out, const uint8_t key[32],
                                      const uint8_t iv[PL_IV_BYTES], const uint8_t *aad,
                                      size_t aad_len, const uint8_t *in, size_t in_len);

#ifdef __cplusplus
}
#endif
#endif
