/* SPDX-License-Identifier: Apache-2.0 */
/* pairlink: common definitions shared by every public header.
 *
 * Conventions used throughout the public API:
 *  - Every fallible function returns pl_err; PL_OK (0) is success.
 *  - Out-parameters are defined on every path: pointers are set to NULL and
 *    lengths to 0 on entry, and stay so on failure.
 *  - Memory returned through `char **` / `uint8_t **` out-parameters is owned
 *    by the caller and released with pl_free() (or the type's own _free()).
 *  - Programmer misuse (NULL where a pointer is required, wrong fixed sizes)
 *    is a bug and goes to the misuse handler (abort by default). Bad bytes
 *    from a peer, a file or a user are never misuse: they return a named
 *    error code.
 *  - Unless a header says otherwise, functions are reentrant and may be
 *    called from any thread; objects are not internally locked.
 */
#ifndef PAIRLINK_COMMON_H
#define PAIRLINK_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(PL_BUILDING_LIBRARY)
#define PL_EXPORT __attribute__((visibility("default")))
#else
#define PL_EXPORT
#endif

#define PL_VERSION_MAJOR 0
#define PL_VERSION_MINOR 1
#define PL_VERSION_PATCH 0
#define PL_VERSION_STRING "0.1.0"

/* The one error enum. X-macro so that names and messages stay in one place.
 * Append new codes inside their group; never renumber released codes. */
#define PL_ERRORS(X)                                                                   \
    X(PL_OK, 0, "success")                                                            \
    /* generic / system */                                                            \
    X(PL_ERR_NOMEM, 1, "out of memory")                                               \
    X(PL_ERR_INVALID_ARG, 2, "invalid argument")                                      \
    X(PL_ERR_TOO_LARGE, 3, "input exceeds the size limit")                            \
    X(PL_ERR_BUFFER_TOO_SMALL, 4, "output buffer too small")                          \
    X(PL_ERR_SYS, 5, "system call failed (see errno detail)")                         \
    X(PL_ERR_IO, 6, "input/output error")                                             \
    X(PL_ERR_NOT_FOUND, 7, "not found")                                               \
    X(PL_ERR_EXISTS, 8, "already exists")                                             \
    X(PL_ERR_STATE, 9, "operation not valid in the current state")                    \
    X(PL_ERR_TIMEOUT, 10, "timed out")                                                \
    X(PL_ERR_CANCELLED, 11, "cancelled")                                              \
    X(PL_ERR_INTERNAL, 12, "internal error")                                          \
    X(PL_ERR_UNSUPPORTED, 13, "not supported")                                        \
    X(PL_ERR_CLOSED, 14, "closed")                                                    \
    /* encodings */                                                                   \
    X(PL_ERR_BAD_HEX, 100, "malformed hex")                                           \
    X(PL_ERR_BAD_BASE64, 101, "malformed base64")                                     \
    X(PL_ERR_BAD_BASE58, 102, "malformed base58btc")                                  \
    X(PL_ERR_BAD_VARINT, 103, "malformed or overlong unsigned varint")                \
    X(PL_ERR_BAD_LENGTH, 104, "wrong length")                                         \
    X(PL_ERR_TRUNCATED, 105, "input truncated")                                       \
    X(PL_ERR_BAD_UTF8, 106, "invalid UTF-8")                                          \
    /* crypto */                                                                      \
    X(PL_ERR_CRYPTO, 200, "cryptographic library failure")                            \
    X(PL_ERR_DECRYPT, 201, "decryption failed: wrong key or tampered data")           \
    X(PL_ERR_WEAK_KEY, 202, "key agreement produced a low-order (all-zero) result")   \
    X(PL_ERR_BAD_ENVELOPE, 203, "malformed envelope")                                 \
    X(PL_ERR_ENVELOPE_TYPE, 204, "unknown envelope type")                             \
    X(PL_ERR_BAD_SIGNATURE, 205, "signature verification failed")                     \
    /* identity / JWT */                                                              \
    X(PL_ERR_BAD_DID, 300, "malformed did:key")                                       \
    X(PL_ERR_JWT_MALFORMED, 301, "malformed JWT")                                     \
    X(PL_ERR_JWT_HEADER, 302, "unsupported JWT header")                               \
    X(PL_ERR_JWT_SIGNATURE, 303, "JWT signature invalid")                             \
    X(PL_ERR_JWT_AUDIENCE, 304, "JWT audience does not match")                        \
    X(PL_ERR_JWT_EXPIRED, 305, "JWT expired")                                         \
    X(PL_ERR_JWT_NOT_YET_VALID, 306, "JWT issued in the future")                      \
    /* pairing URI */                                                                 \
    X(PL_ERR_URI_SCHEME, 400, "URI does not start with wc:")                          \
    X(PL_ERR_URI_MALFORMED, 401, "malformed pairing URI")                             \
    X(PL_ERR_URI_VERSION, 402, "unsupported pairing URI version")                     \
    X(PL_ERR_URI_MISSING_FIELD, 403, "pairing URI lacks a required field")            \
    X(PL_ERR_URI_BAD_TOPIC, 404, "pairing URI topic is not 64 hex characters")        \
    X(PL_ERR_URI_BAD_KEY, 405, "pairing URI symKey is not 32 bytes of hex")           \
    X(PL_ERR_URI_TOPIC_MISMATCH, 406, "pairing URI topic is not sha256(symKey)")      \
    X(PL_ERR_URI_EXPIRED, 407, "pairing URI has expired")                             \
    /* JSON / JSON-RPC */                                                             \
    X(PL_ERR_JSON, 500, "malformed JSON")                                             \
    X(PL_ERR_RPC_INVALID, 501, "not a valid JSON-RPC 2.0 message")                    \
    X(PL_ERR_RPC_BAD_ID, 502, "JSON-RPC id is not a number or string")                \
    X(PL_ERR_RPC_EMPTY_BATCH, 503, "empty JSON-RPC batch")                            \
    /* Noise */                                                                       \
    X(PL_ERR_NOISE_PATTERN, 600, "unknown or unsupported Noise pattern")              \
    X(PL_ERR_NOISE_STATE, 601, "Noise handshake failed earlier or is out of turn")    \
    X(PL_ERR_NOISE_PAYLOAD, 602, "malformed Waku PayloadV2")                          \
    X(PL_ERR_NOISE_NAMETAG, 603, "unexpected Noise message nametag")                  \
    X(PL_ERR_NOISE_PROTOCOL_ID, 604, "PayloadV2 protocol id does not match")          \
    X(PL_ERR_NOISE_NONCE, 605, "Noise nonce exhausted")                               \
    X(PL_ERR_NOISE_PADDING, 606, "bad PKCS#7 padding")                                \
    X(PL_ERR_NOISE_REPLAY, 607, "Noise message replayed")                             \
    X(PL_ERR_NOISE_WINDOW, 608, "Noise message outside the nametag window")           \
    X(PL_ERR_NOISE_COMMITMENT, 609, "WakuPairing commitment does not match")          \
    X(PL_ERR_NOISE_MISSING_KEY, 610, "Noise pattern needs a key that was not given")  \
    /* Waku payload version 1 (26/WAKU-PAYLOAD) */                                    \
    X(PL_ERR_WAKU_PAYLOAD, 650, "malformed Waku payload version 1")                   \
    X(PL_ERR_WAKU_SIGNED, 651, "signed Waku payload (signatures are not supported)")  \
    /* pairing engines */                                                             \
    X(PL_ERR_PAIRING_EXISTS, 700, "pairing already exists")                           \
    X(PL_ERR_NO_MATCHING_KEY, 701, "no matching key: unknown or deleted pairing")     \
    X(PL_ERR_PAIRING_EXPIRED, 702, "pairing expired")                                 \
    X(PL_ERR_UNSUPPORTED_METHOD, 703, "method not registered")                        \
    X(PL_ERR_CODE_CHECKSUM, 704, "pairing code checksum mismatch: mistyped code")     \
    X(PL_ERR_CODE_EXPIRED, 705, "pairing code expired")                               \
    X(PL_ERR_CODE_FORMAT, 706, "pairing code has a wrong length or character")        \
    X(PL_ERR_HELLO_STALE, 707, "HELLO message is stale")                              \
    X(PL_ERR_HELLO_REPLAY, 708, "HELLO message replayed")                             \
    X(PL_ERR_UNKNOWN_PEER, 709, "unknown counterparty")                               \
    X(PL_ERR_HELLO_MALFORMED, 710, "malformed HELLO message")                         \
    X(PL_ERR_HELLO_ROLE, 711, "HELLO from an unexpected role")                        \
    X(PL_ERR_HELLO_ECHO, 712, "HELLO does not answer our HELLO")                      \
    X(PL_ERR_FINGERPRINT_REJECTED, 713, "the fingerprints differ: pairing refused by the user") \
    /* transport / relay */                                                           \
    X(PL_ERR_RELAY, 800, "relay returned an error")                                   \
    X(PL_ERR_RELAY_AUTH, 801, "relay rejected authentication")                        \
    X(PL_ERR_RATE_LIMITED, 802, "too many requests")                                  \
    X(PL_ERR_TLS, 803, "TLS failure")                                                 \
    X(PL_ERR_WEBSOCKET, 804, "WebSocket failure")                                     \
    X(PL_ERR_DISCONNECTED, 805, "not connected")                                      \
    X(PL_ERR_BAD_TTL, 806, "TTL outside the allowed range")                           \
    X(PL_ERR_MAILBOX_FULL, 807, "mailbox limit reached")                              \
    X(PL_ERR_BAD_URL, 808, "malformed relay URL (expected ws:// or wss://host[:port][/path])") \
    X(PL_ERR_RELAY_BUSY, 809, "relay over its memory or connection budget: try again later") \
    X(PL_ERR_CONFIG_KEY, 810, "unknown configuration key")                            \
    X(PL_ERR_CONFIG_VALUE, 811, "invalid configuration value")                        \
    X(PL_ERR_RELAY_NOT_ALLOWED, 812, "client key is not in the relay's allow-list")   \
    /* storage */                                                                     \
    X(PL_ERR_STORE, 900, "storage (SQLite) failure")                                  \
    X(PL_ERR_STORE_CORRUPT, 901, "storage file is corrupt or of another format")      \
    X(PL_ERR_KEY_FILE, 902, "key file has a wrong size or unsafe permissions")        \
    X(PL_ERR_STORE_LOCKED, 903, "store is in use by another process")                 \
    X(PL_ERR_CLUSTER, 904, "relay cluster (NATS JetStream) failure")                  \
    X(PL_ERR_NO_CLUSTER, 905, "built without libnats: relay --cluster is unavailable") \
    X(PL_ERR_CLUSTER_INSTANCE, 906, "relay cluster instance id already in use")       \
    /* libp2p (src/p2p/) */                                                           \
    X(PL_ERR_P2P_MULTIADDR, 1000, "malformed or unsupported multiaddr")               \
    X(PL_ERR_P2P_TRANSPORT, 1001, "multiaddr transport not supported here (ws, wss)")  \
    X(PL_ERR_P2P_KEY, 1002, "malformed or unsupported libp2p public key")             \
    X(PL_ERR_P2P_PEER_ID, 1003, "malformed peer id")                                  \
    X(PL_ERR_P2P_PEER_MISMATCH, 1004, "remote peer id is not the expected one")       \
    X(PL_ERR_P2P_MULTISTREAM, 1005, "multistream-select protocol violation")          \
    X(PL_ERR_P2P_NEGOTIATION, 1006, "no protocol in common (multistream-select na)")  \
    X(PL_ERR_P2P_NOISE, 1007, "libp2p Noise handshake failed")                        \
    X(PL_ERR_P2P_FRAME, 1008, "malformed or oversized frame")                         \
    X(PL_ERR_P2P_MUXER, 1009, "stream muxer protocol violation")                      \
    X(PL_ERR_P2P_WINDOW, 1010, "stream flow-control window exceeded")                 \
    X(PL_ERR_P2P_STREAM_LIMIT, 1011, "too many streams")                              \
    X(PL_ERR_P2P_STREAM_RESET, 1012, "stream reset")                                  \
    X(PL_ERR_P2P_GOAWAY, 1013, "connection is going away")                            \
    X(PL_ERR_P2P_CONN_LIMIT, 1014, "connection limit reached")                        \
    X(PL_ERR_P2P_PROTOBUF, 1015, "malformed protobuf message")                        \
    X(PL_ERR_P2P_BACKPRESSURE, 1016, "send buffer full")                              \
    /* Waku network (src/waku/) */                                                    \
    X(PL_ERR_WAKU_MESSAGE, 1100, "invalid WakuMessage")                               \
    X(PL_ERR_WAKU_TOPIC, 1101, "malformed content topic or pubsub topic")             \
    X(PL_ERR_WAKU_CLUSTER, 1102, "peer belongs to another Waku cluster")              \
    X(PL_ERR_GOSSIP_PROTOCOL, 1103, "gossipsub protocol violation")                   \
    X(PL_ERR_GOSSIP_SIGNED, 1104, "signed gossipsub message (StrictNoSign)")          \
    X(PL_ERR_GOSSIP_BACKOFF, 1105, "gossipsub GRAFT during the prune backoff")        \
    X(PL_ERR_GOSSIP_SCORE, 1106, "gossipsub peer score below the threshold")          \
    X(PL_ERR_GOSSIP_LIMIT, 1107, "gossipsub RPC exceeds a count limit")               \
    X(PL_ERR_GOSSIP_INVALID, 1108, "gossipsub message rejected by validation")        \
    X(PL_ERR_WAKU_METADATA, 1109, "missing or malformed Waku metadata answer")        \
    X(PL_ERR_WAKU_QUEUE_FULL, 1110, "Waku publish queue full")                       \
    X(PL_ERR_WAKU_NO_PEERS, 1111, "no peer subscribed to the pubsub topic in time")

typedef enum pl_err {
#define PL__ERR_ENUM(name, value, msg) name = value,
    PL_ERRORS(PL__ERR_ENUM)
#undef PL__ERR_ENUM
} pl_err;

/* Human-readable message for an error code; never NULL (unknown codes get
 * "unknown error"). The string is static. */
PL_EXPORT const char *pl_strerror(pl_err err);

/* Symbolic name of an error code ("PL_ERR_URI_EXPIRED"); never NULL. */
PL_EXPORT const char *pl_errname(pl_err err);

/* Initialise the library (libsodium, OpenSSL). Idempotent and thread-safe;
 * every other function may assume it was called. Returns PL_ERR_CRYPTO if a
 * crypto library cannot be initialised. */
PL_EXPORT pl_err pl_init(void);

/* The version of the library running, "MAJOR.MINOR.PATCH"; never NULL, a
 * static string, callable from any thread without pl_init(). It differs from
 * PL_VERSION_STRING (the headers the program was compiled with) when the
 * shared library was replaced by another release. */
PL_EXPORT const char *pl_version(void);

/* Release memory returned by pairlink through an out-parameter. NULL is a
 * no-op. Buffers that held secrets are wiped by the function that returned
 * them only where its header says so; pl_free itself does not wipe. */
PL_EXPORT void pl_free(void *p);

/* Release a secret buffer of known length: wipes it, then frees. NULL ok. */
PL_EXPORT void pl_free_secret(void *p, size_t len);

/* Misuse handler: called with a short description when the API is misused
 * (a programming error). The default prints to stderr and aborts. A handler
 * that returns makes the library abort anyway. */
typedef void (*pl_misuse_fn)(const char *what);
PL_EXPORT void pl_set_misuse_handler(pl_misuse_fn fn);

/* errno of the last PL_ERR_SYS / PL_ERR_IO, SQLite code of the last
 * PL_ERR_STORE, or OpenSSL error of the last PL_ERR_TLS/CRYPTO on this
 * thread; 0 if none was recorded. Lets callers see the underlying code. */
PL_EXPORT long pl_last_detail(void);

/* The text of pl_last_detail() for `err`, the error the failing call
 * returned on this thread: strerror() of the errno behind PL_ERR_SYS,
 * PL_ERR_IO and PL_ERR_KEY_FILE, SQLite's message for PL_ERR_STORE and
 * PL_ERR_STORE_CORRUPT, OpenSSL's reason for PL_ERR_TLS and PL_ERR_CRYPTO;
 * "" when no detail was recorded or err has none. Call it right after the
 * failure (a later failure replaces the detail). Writes at most cap bytes
 * (NUL included) into buf and returns buf; any thread. */
PL_EXPORT const char *pl_detail_text(pl_err err, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
