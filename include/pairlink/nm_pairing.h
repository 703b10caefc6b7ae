/* SPDX-License-Identifier: Apache-2.0 */
/* Node-manager pairing: the pairing code P, the kdf, HELLO_APP /
 * HELLO_NODE_MANAGER, the pairing fingerprint, the rendezvous of the later
 * Noise K1K1 session, and the pairing engine (a state machine per side).
 *
 * The protocol is specified in docs/protocol/node-manager-pairing.md; the
 * constants below are protocol constants unless marked "local policy".
 *
 * Everything here is a protocol core: no I/O, no clock (times are unix
 * milliseconds passed in), no threads. The engine is driven by a runtime
 * that subscribes, publishes and arms one timer from the engine's outputs.
 * Unless noted, functions are reentrant; an engine object is owned by one
 * thread. pl_nm_derive is slow on purpose (two Argon2id runs, ~0.4 s) and
 * may be run on a worker thread. */
#ifndef PAIRLINK_NM_PAIRING_H
#define PAIRLINK_NM_PAIRING_H

#include "pairlink/common.h"
#include "pairlink/crypto.h"
#include "pairlink/hash.h"
#include "pairlink/waku_payload.h"

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- protocol constants ---- */
#define PL_NM_CODE_BYTES 8              /* P: 64 random bits, big-endian */
#define PL_NM_CODE_CHARS 15             /* 13 data + 2 check characters */
#define PL_NM_CODE_TEXT_SIZE 18         /* "XXXXX-XXXXX-XXXXX" + NUL */
#define PL_NM_CODE_TEXT_MAX 64          /* longest input pl_nm_code_parse reads */
#define PL_NM_CODE_TTL_MS (5 * 60 * 1000)
#define PL_NM_CLOCK_SKEW_MS (30 * 1000)

#define PL_NM_KDF_OPSLIMIT 3ull         /* Argon2id t */
#define PL_NM_KDF_MEMLIMIT (64u * 1024u * 1024u) /* Argon2id m, bytes (64 MiB) */
#define PL_NM_TOPIC_SALT "pairlink-topic-1"        /* 16 ASCII bytes */
#define PL_NM_HANDSHAKE_KEY_SALT "pairlink-hskey-1" /* 16 ASCII bytes */
#define PL_NM_KEY_BYTES 32              /* T, HS, identity keys */

#define PL_NM_CONTENT_TOPIC_SIZE 64     /* the longest pairlink content topic + NUL */

#define PL_NM_NONCE_BYTES 16
#define PL_NM_NAME_MAX 64               /* bytes of UTF-8 */
#define PL_NM_HELLO_MAGIC "PLH1"
#define PL_NM_HELLO_BODY_MIN 78         /* without a name */
#define PL_NM_HELLO_BODY_MAX (PL_NM_HELLO_BODY_MIN + PL_NM_NAME_MAX)
#define PL_NM_HELLO_WIRE_BYTES 284      /* every HELLO we seal: 256 + tag + iv */
#define PL_NM_HELLO_WIRE_MAX 1024       /* longest HELLO accepted (any encoder's padding) */
#define PL_NM_WAKU_VERSION_HELLO 1      /* WakuMessage version of a HELLO: 26/WAKU-PAYLOAD */

#define PL_NM_FINGERPRINT_SIZE 10       /* "XXXX-XXXX" + NUL */
#define PL_NM_RV_BYTES 48

/* ---- local policy (defaults; see the config) ---- */
#define PL_NM_RESEND_MS 2000            /* node manager: HELLO_APP repetition */
#define PL_NM_RELAY_TTL_S 300           /* ttl of a HELLO published on a WalletConnect relay */
#define PL_NM_REANSWER_MIN_MS 1000      /* app: at most one re-answer per second */
#define PL_NM_SEEN_MAX 32               /* HELLO nonces remembered per engine */
#define PL_NM_QUEUE_MAX 16              /* outputs held until polled */

typedef enum pl_nm_role {
    PL_NM_ROLE_APP = 1,          /* shows the code; waits for HELLO_APP */
    PL_NM_ROLE_NODE_MANAGER = 2, /* the code is typed in; sends HELLO_APP */
} pl_nm_role;

/* ---- the pairing code P ---- */

/* A fresh P from the OS random source. */
PL_EXPORT void pl_nm_code_generate(uint8_t code[PL_NM_CODE_BYTES]);

/* Text form: 15 Crockford base32 characters grouped "XXXXX-XXXXX-XXXXX"
 * (13 characters for the 65-bit value 0 || P, then 2 check characters). */
PL_EXPORT void pl_nm_code_format(char out[PL_NM_CODE_TEXT_SIZE], const uint8_t code[PL_NM_CODE_BYTES]);

/* Parse a typed code: any case; '-' and ' ' ignored; I/L read as 1 and O as
 * 0. `code` is zeroed on failure. Errors: PL_ERR_CODE_FORMAT (length other
 * than 15 characters after removing separators, a character outside the
 * alphabet, more than PL_NM_CODE_TEXT_MAX bytes of input, or a first
 * character above F once the checksum holds), PL_ERR_CODE_CHECKSUM (the
 * weighted sum is not 0 mod 37, or the check characters are not the
 * canonical ones): any single wrong character and any swap of two different
 * characters gives PL_ERR_CODE_CHECKSUM. */
PL_EXPORT pl_err pl_nm_code_parse(uint8_t code[PL_NM_CODE_BYTES], const char *text, size_t len);

/* ---- kdf, topics ---- */

/* Argon2id cost. Protocol runs use PL_NM_KDF_OPSLIMIT / PL_NM_KDF_MEMLIMIT
 * (pass NULL); lighter values exist for tests only and do not interoperate. */
typedef struct pl_nm_kdf_params {
    uint64_t opslimit;
    size_t memlimit;
} pl_nm_kdf_params;

/* What both sides derive from P. hs is secret; wipe with pl_nm_secrets_wipe. */
typedef struct pl_nm_secrets {
    uint8_t topic_key[PL_NM_KEY_BYTES]; /* T = kdf(P, TOPIC_SALT) */
    uint8_t hs[PL_NM_KEY_BYTES];        /* HS = kdf(P, HANDSHAKE_KEY_SALT) */
    char content_topic[PL_NM_CONTENT_TOPIC_SIZE]; /* "/pairlink/1/pair-<hex T[0..16]>/proto" */
} pl_nm_secrets;

/* kdf(x, salt) = Argon2id v1.3 (x = the 8 bytes of P, 16-byte salt, 32-byte
 * output, parallelism 1). Fills *out; on failure *out is zeroed. params NULL:
 * the protocol parameters. Errors: PL_ERR_INVALID_ARG (parameters out of
 * Argon2's range), PL_ERR_NOMEM. Any thread. */
PL_EXPORT pl_err pl_nm_derive(pl_nm_secrets *out, const uint8_t code[PL_NM_CODE_BYTES],
                              const pl_nm_kdf_params *params);
PL_EXPORT void pl_nm_secrets_wipe(pl_nm_secrets *s);

/* Short fingerprint both sides show when pairing completes: the first 40 bits
 * of sha256("pairlink-fp-1" | HS | app_pub | nm_pub) as 8 Crockford base32
 * characters "XXXX-XXXX". */
PL_EXPORT void pl_nm_fingerprint(char out[PL_NM_FINGERPRINT_SIZE], const uint8_t hs[PL_NM_KEY_BYTES],
                                 const uint8_t app_pub[PL_NM_KEY_BYTES],
                                 const uint8_t nm_pub[PL_NM_KEY_BYTES]);

/* Rendezvous of the Noise K1K1 session (node manager = initiator):
 * rv = HKDF-SHA256(salt "pairlink-rv-1", ikm nm_pub | app_pub, info "", 48). */
typedef struct pl_nm_rendezvous {
    uint8_t rv[PL_NM_RV_BYTES];
    char content_topic[PL_NM_CONTENT_TOPIC_SIZE]; /* "/pairlink/1/rv-<hex rv[0..16]>/proto" */
    uint8_t nametag[16];                          /* rv[32..48]: message 1's nametag */
} pl_nm_rendezvous;
PL_EXPORT void pl_nm_rendezvous_derive(pl_nm_rendezvous *out, const uint8_t nm_pub[PL_NM_KEY_BYTES],
                                       const uint8_t app_pub[PL_NM_KEY_BYTES]);

/* ---- HELLO messages ---- */

/* Body layout (big-endian integers):
 *   "PLH1" | role(1) | identity(32) | created_at_ms(8) | nonce(16) |
 *   echo(16) | name_len(1, <= 64) | name(name_len bytes of UTF-8) */
typedef struct pl_nm_hello {
    pl_nm_role role;
    uint8_t identity[PL_NM_KEY_BYTES]; /* the sender's X25519 (Noise static) public key */
    uint64_t created_at_ms;
    uint8_t nonce[PL_NM_NONCE_BYTES];
    uint8_t echo[PL_NM_NONCE_BYTES];   /* nonce of the HELLO answered; zeros if none */
    char name[PL_NM_NAME_MAX + 1];     /* NUL-terminated UTF-8, no control characters */
} pl_nm_hello;

/* Encode a body into out (PL_NM_HELLO_BODY_MAX bytes). Errors:
 * PL_ERR_TOO_LARGE (name over 64 bytes), PL_ERR_BAD_UTF8 (invalid UTF-8 or
 * a control character in the name), PL_ERR_INVALID_ARG (role not 1 or 2). */
PL_EXPORT pl_err pl_nm_hello_encode(uint8_t out[PL_NM_HELLO_BODY_MAX], size_t *out_len,
                                    const pl_nm_hello *h);
/* Decode a body. *h is zeroed on failure. Errors: PL_ERR_HELLO_MALFORMED
 * (length, magic, role, name_len), PL_ERR_BAD_UTF8 (name), PL_ERR_WEAK_KEY
 * (identity is a low-order X25519 point). */
PL_EXPORT pl_err pl_nm_hello_decode(pl_nm_hello *h, const uint8_t *body, size_t len);

/* Encode and seal as a Waku payload v1 with key HS: wire gets
 * PL_NM_HELLO_WIRE_BYTES bytes. opts: NULL for random IV and padding
 * (known-answer tests pass fixed ones). Errors: those of encode, PL_ERR_NOMEM,
 * PL_ERR_CRYPTO. */
PL_EXPORT pl_err pl_nm_hello_seal(uint8_t wire[PL_NM_HELLO_WIRE_BYTES], const uint8_t hs[PL_NM_KEY_BYTES],
                                  const pl_nm_hello *h, const pl_waku_v1_seal_opts *opts);
/* Open and decode. Errors: PL_ERR_TOO_LARGE (wire above
 * PL_NM_HELLO_WIRE_MAX, refused before decrypting), those of
 * pl_waku_v1_open (PL_ERR_DECRYPT for a wrong key), PL_ERR_HELLO_MALFORMED
 * (also for a Waku payload longer than PL_NM_HELLO_BODY_MAX), and those of
 * pl_nm_hello_decode. */
PL_EXPORT pl_err pl_nm_hello_open(pl_nm_hello *h, const uint8_t hs[PL_NM_KEY_BYTES],
                                  const uint8_t *wire, size_t len);

/* ---- the pairing engine ---- */

typedef struct pl_nm_pairing pl_nm_pairing;

typedef enum pl_nm_state {
    PL_NM_ST_WAITING = 1, /* app: waiting for HELLO_APP; nm: repeating HELLO_APP */
    PL_NM_ST_PERSISTING,  /* PEER_LEARNED emitted; waiting for confirm_persisted */
    PL_NM_ST_ANSWERING,   /* app only: completed; re-answers the node manager until the code expires */
    PL_NM_ST_DONE,        /* completed and finished: free it */
    PL_NM_ST_FAILED,      /* failed (see the FAILED event): free it */
} pl_nm_state;

/* Why a received message was not acted upon (the order in which the checks
 * run is in the specification, section "Receiving a HELLO"). */
typedef enum pl_nm_drop_reason {
    PL_NM_DROP_NONE = 0,
    PL_NM_DROP_MALFORMED,  /* too long, not a Waku v1 payload, bad HELLO layout/name/key */
    PL_NM_DROP_WRONG_KEY,  /* does not decrypt with HS (another code, or noise) */
    PL_NM_DROP_OWN,        /* carries our own identity key (our own HELLO echoed back) */
    PL_NM_DROP_WRONG_ROLE, /* role is not the peer's role */
    PL_NM_DROP_STALE,      /* created_at outside [now - 5 min - 30 s, now + 30 s] */
    PL_NM_DROP_REPLAY,     /* a nonce seen before, with other contents */
    PL_NM_DROP_DUPLICATE,  /* a retransmission of a HELLO already handled */
    PL_NM_DROP_WRONG_ECHO, /* echo is not our nonce (nm) or not zero (app) */
    PL_NM_DROP_CODE_USED,  /* another device after the code was used by a first one */
    PL_NM_DROP__COUNT
} pl_nm_drop_reason;

/* "wrong_key", "stale", ...; never NULL. */
PL_EXPORT const char *pl_nm_drop_reason_name(pl_nm_drop_reason r);

typedef enum pl_nm_output_kind {
    PL_NM_OUT_SUBSCRIBE = 1, /* subscribe to topic */
    PL_NM_OUT_PUBLISH,       /* publish payload on topic */
    PL_NM_OUT_UNSUBSCRIBE,   /* the engine is done with the topic */
    PL_NM_OUT_EVENT,
} pl_nm_output_kind;

typedef enum pl_nm_event_kind {
    /* The peer's HELLO was accepted. Persist the peer now, then call
     * pl_nm_pairing_confirm_persisted: the engine sends nothing the peer
     * could act on before that (step 7 before step 8). */
    PL_NM_EV_PEER_LEARNED = 1,
    PL_NM_EV_COMPLETED,  /* both sides know each other; peer.fingerprint is set */
    PL_NM_EV_FAILED,     /* err: PL_ERR_CODE_EXPIRED (app), PL_ERR_TIMEOUT (nm),
                            PL_ERR_CANCELLED, or the error passed to confirm_persisted.
                            If PEER_LEARNED came before, forget the peer. */
    PL_NM_EV_DROPPED,    /* reason, err; peer filled when the HELLO decoded */
    PL_NM_EV_REANSWERED, /* app: HELLO_NODE_MANAGER sent again for a retransmitted HELLO_APP */
} pl_nm_event_kind;

typedef struct pl_nm_peer {
    pl_nm_role role;
    uint8_t identity[PL_NM_KEY_BYTES];
    char name[PL_NM_NAME_MAX + 1];
    int64_t hello_created_at_ms;
    char fingerprint[PL_NM_FINGERPRINT_SIZE];
} pl_nm_peer;

/* One output. Nothing in it is secret. */
typedef struct pl_nm_output {
    pl_nm_output_kind kind;
    /* SUBSCRIBE, PUBLISH, UNSUBSCRIBE: the Waku content topic (a topic name
     * of transport.h; the transport maps it onto its network). */
    char content_topic[PL_NM_CONTENT_TOPIC_SIZE];
    /* PUBLISH: the WakuMessage payload (version 1) bytes. */
    uint8_t payload[PL_NM_HELLO_WIRE_BYTES];
    size_t payload_len;
    /* EVENT */
    pl_nm_event_kind event;
    pl_nm_peer peer;          /* PEER_LEARNED, COMPLETED, REANSWERED; DROPPED if has_peer */
    bool has_peer;
    pl_nm_drop_reason reason; /* DROPPED */
    pl_err err;               /* FAILED, DROPPED */
} pl_nm_output;

/* Random source for nonces, IVs and padding (hash.h): NULL means
 * pl_random. */
typedef pl_rng_fn pl_nm_rng_fn;

typedef struct pl_nm_pairing_config {
    pl_nm_role role;
    uint8_t identity_pub[PL_NM_KEY_BYTES]; /* this side's Noise static public key */
    const char *name;                      /* display name, UTF-8, <= 64 bytes; NULL = "" */
    const pl_nm_secrets *secrets;          /* from pl_nm_derive; copied */
    int64_t expires_at_ms;    /* 0: now + PL_NM_CODE_TTL_MS; else within (now, now + TTL] */
    int64_t resend_ms;        /* nm: 0 = PL_NM_RESEND_MS; 100..60000 (local policy) */
    pl_nm_rng_fn rng;
    void *rng_ctx;
} pl_nm_pairing_config;

/* Start one side of a pairing at now_ms. The first outputs are SUBSCRIBE
 * and, for the node manager, the first PUBLISH of HELLO_APP. *out is NULL on
 * failure. Errors: PL_ERR_INVALID_ARG (expires_at_ms or resend_ms out of
 * range), PL_ERR_TOO_LARGE / PL_ERR_BAD_UTF8 (name), PL_ERR_WEAK_KEY
 * (identity_pub of low order), PL_ERR_NOMEM. */
PL_EXPORT pl_err pl_nm_pairing_new(pl_nm_pairing **out, const pl_nm_pairing_config *cfg,
                                   int64_t now_ms);
/* Free and wipe HS. NULL ok. */
PL_EXPORT void pl_nm_pairing_free(pl_nm_pairing *p);

/* Take the oldest pending output into *out. Returns false (and zeroes *out)
 * when none is pending. Call until false after every other engine call.
 * Outputs are bounded (PL_NM_QUEUE_MAX): when the queue is nearly full,
 * DROPPED and REANSWERED events are discarded (counted in the stats), and a
 * new PUBLISH replaces a PUBLISH not yet taken. */
PL_EXPORT bool pl_nm_pairing_poll(pl_nm_pairing *p, pl_nm_output *out);

/* A WakuMessage payload received on the pairing topic. Returns PL_OK when
 * the message was accepted or was a harmless repeat (OWN, DUPLICATE);
 * otherwise the reason's error (also emitted as a DROPPED event):
 * PL_ERR_DECRYPT, PL_ERR_HELLO_ROLE, PL_ERR_HELLO_STALE, PL_ERR_HELLO_REPLAY,
 * PL_ERR_HELLO_ECHO, PL_ERR_PAIRING_EXISTS, a malformation error; and
 * PL_ERR_STATE (no event) once the engine is DONE or FAILED. A message
 * arriving at or after the expiry first expires the engine. */
PL_EXPORT pl_err pl_nm_pairing_on_message(pl_nm_pairing *p, const uint8_t *payload, size_t len,
                                          int64_t now_ms);
/* Something arrived on the pairing topic that the transport could not
 * decode (pl_delivery_info.err = err): dropped as MALFORMED with that error,
 * which is returned (PL_ERR_STATE once the engine is DONE or FAILED). */
PL_EXPORT pl_err pl_nm_pairing_on_bad_delivery(pl_nm_pairing *p, pl_err err, int64_t now_ms);

/* Answer a PEER_LEARNED: result PL_OK once the peer is durably stored; any
 * other value fails the pairing with that error (FAILED event). The app then
 * publishes HELLO_NODE_MANAGER and emits COMPLETED; the node manager emits
 * COMPLETED and unsubscribes. Errors: PL_ERR_STATE (no PEER_LEARNED pending),
 * PL_ERR_CODE_EXPIRED / PL_ERR_TIMEOUT (the code expired first: the engine
 * has FAILED; forget the peer). */
PL_EXPORT pl_err pl_nm_pairing_confirm_persisted(pl_nm_pairing *p, pl_err result, int64_t now_ms);

/* Run what is due at now_ms (repetition, expiry). Call at or after
 * pl_nm_pairing_next_deadline(); early calls are harmless. */
PL_EXPORT void pl_nm_pairing_on_timer(pl_nm_pairing *p, int64_t now_ms);
/* Unix ms of the next on_timer the engine needs; INT64_MAX when finished. */
PL_EXPORT int64_t pl_nm_pairing_next_deadline(const pl_nm_pairing *p);

/* Give up: FAILED(PL_ERR_CANCELLED) and UNSUBSCRIBE unless already finished. */
PL_EXPORT void pl_nm_pairing_cancel(pl_nm_pairing *p);

PL_EXPORT pl_nm_state pl_nm_pairing_state(const pl_nm_pairing *p);
PL_EXPORT pl_nm_role pl_nm_pairing_role(const pl_nm_pairing *p);
/* The pairing topic (a content topic). */
PL_EXPORT const char *pl_nm_pairing_topic(const pl_nm_pairing *p);

typedef struct pl_nm_pairing_stats {
    uint32_t published;                       /* PUBLISH outputs made */
    uint32_t received;                        /* on_message calls */
    uint32_t dropped[PL_NM_DROP__COUNT];      /* by reason */
    uint32_t events_lost;                     /* informative events discarded (queue full) */
} pl_nm_pairing_stats;
PL_EXPORT void pl_nm_pairing_stats_get(const pl_nm_pairing *p, pl_nm_pairing_stats *out);

#ifdef __cplusplus
}
#endif
#endif
