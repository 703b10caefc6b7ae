/* SPDX-License-Identifier: Apache-2.0 */
/* Node-manager sessions: Noise K1K1 sessions between a node manager and the
 * apps it paired with (and the reverse), with retries, re-establishment
 * after a restart, and request/response messages.
 *
 * Protocol: docs/protocol/node-manager-pairing.md, section 13 (session
 * layer): the node manager is the K1K1 initiator, the app the responder;
 * both meet on the rendezvous topic of pl_nm_rendezvous_derive(); after the
 * split both use the RFC 37 session content topic
 * (pl_noise_session_content_topic(s, "pairlink", "1")). An app without a
 * session "knocks" on the rendezvous topic so that a node manager that is
 * already running starts a handshake at once.
 *
 * This is a protocol core: no I/O, no clock (times are unix ms passed in),
 * no threads. It manages every counterparty of one identity. Its outputs,
 * taken with pl_nm_sessions_poll() after every other call, are SUBSCRIBE /
 * UNSUBSCRIBE / PUBLISH on Waku content topics (topic names of
 * transport.h; messages are PayloadV2 bytes, to publish with ttl_s) and
 * events. How a network carries them (base64 and hashed topics on a
 * WalletConnect relay, WakuMessages on Waku) is the transport's business.
 * One object is used from one thread. */
#ifndef PAIRLINK_NM_SESSION_H
#define PAIRLINK_NM_SESSION_H

#include "pairlink/common.h"
#include "pairlink/crypto.h"
#include "pairlink/nm_pairing.h"

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- protocol constants ---- */
#define PL_NM_SESSION_PROLOGUE "pairlink-session-1" /* K1K1 prologue (ASCII, no NUL) */
#define PL_NM_SESSION_HS_MAGIC "PLS1"               /* handshake payload magic */
#define PL_NM_SESSION_KNOCK_MAGIC "PLK1"            /* knock transport magic */
#define PL_NM_SESSION_BODY_MAX (64u * 1024u)        /* bytes of a request/response body */
#define PL_NM_SESSION_FRAME_HEADER 9                /* type(1) | id(8) */
#define PL_NM_WAKU_VERSION_SESSION 2                /* WakuMessage version of session messages: PayloadV2 */
/* "/pairlink/1/wakunoise/1/sessions/<64 hex>/proto" + NUL, with room. */
#define PL_NM_SESSION_TOPIC_SIZE 128

/* ---- local policy (defaults of the config) ---- */
#define PL_NM_SESSION_HS_TIMEOUT_MS 10000   /* one handshake attempt */
#define PL_NM_SESSION_BACKOFF_MIN_MS 1000   /* first retry / knock delay */
#define PL_NM_SESSION_BACKOFF_MAX_MS 60000  /* retry / knock delay cap */
#define PL_NM_SESSION_REQUEST_TIMEOUT_MS 30000
#define PL_NM_SESSION_KNOCK_MIN_MS 1000     /* nm: at most one knock-started handshake per second */
#define PL_NM_SESSION_RELAY_TTL_S 300       /* ttl of every message published on a relay */
#define PL_NM_SESSION_MAX_PEERS 10000
#define PL_NM_SESSION_MAX_REQUESTS 64       /* outstanding requests per peer */
#define PL_NM_SESSION_RESPONDERS 4          /* app: handshakes answered in parallel per peer */
#define PL_NM_SESSION_QUEUE_MAX 65536       /* outputs held until polled */
/* node manager: handshake attempts under way at once (message 1 sent, the
 * session not up yet); more wait their turn. At a relay's default
 * allowance (100 requests/s, burst 500; an attempt costs its initiator
 * about 1.9 of them) this many start at once and finish well within the
 * handshake time-out even at the sustained rate, instead of all of them
 * growing stale together (docs/performance.md). */
#define PL_NM_SESSION_MAX_HANDSHAKES 256

typedef struct pl_nm_sessions pl_nm_sessions;

typedef struct pl_nm_sessions_config {
    pl_nm_role role;                /* ours: NODE_MANAGER initiates, APP responds and knocks */
    const uint8_t *static_priv;     /* our X25519 identity (PL_NM_KEY_BYTES); copied, wiped on free */
    int64_t handshake_timeout_ms;   /* 0: PL_NM_SESSION_HS_TIMEOUT_MS; 100..600000 */
    int64_t backoff_min_ms;         /* 0: PL_NM_SESSION_BACKOFF_MIN_MS; 10..600000 */
    int64_t backoff_max_ms;         /* 0: PL_NM_SESSION_BACKOFF_MAX_MS; >= backoff_min_ms */
    int64_t request_timeout_ms;     /* 0: PL_NM_SESSION_REQUEST_TIMEOUT_MS; 100..3600000 */
    uint32_t max_handshakes;        /* 0: PL_NM_SESSION_MAX_HANDSHAKES */
    pl_nm_rng_fn rng;               /* backoff jitter; NULL: pl_random */
    void *rng_ctx;
} pl_nm_sessions_config;

typedef enum pl_nm_session_output_kind {
    PL_NM_SOUT_SUBSCRIBE = 1,
    PL_NM_SOUT_UNSUBSCRIBE,
    PL_NM_SOUT_PUBLISH,
    PL_NM_SOUT_EVENT,
} pl_nm_session_output_kind;

typedef enum pl_nm_session_event {
    PL_NM_SEV_CONNECTING = 1, /* nm: handshake message 1 sent (attempt counts from 1) */
    PL_NM_SEV_KNOCKED,        /* app: knock sent (attempt); nm: knock received */
    PL_NM_SEV_ESTABLISHED,    /* a session is usable; replaced = a previous one was dropped */
    PL_NM_SEV_RETRY,          /* an attempt failed (err: PL_ERR_TIMEOUT ...); next at retry_at_ms */
    PL_NM_SEV_REJECTED,       /* a handshake from/to a key other than the stored one:
                                 err PL_ERR_UNKNOWN_PEER */
    PL_NM_SEV_REQUEST,        /* the peer asks: id, body; answer with pl_nm_sessions_respond */
    PL_NM_SEV_RESPONSE,       /* answer to our request id: body */
    PL_NM_SEV_REQUEST_FAILED, /* our request id: err PL_ERR_TIMEOUT or PL_ERR_CANCELLED */
    PL_NM_SEV_DROPPED,        /* a message not acted upon: err says why (informative) */
    PL_NM_SEV_REVOKED,        /* the peer forgot us (a REVOKE frame, id): answer it with
                                 pl_nm_sessions_respond, then forget the peer */
} pl_nm_session_event;

/* One output. PUBLISH owns `message`; REQUEST/RESPONSE own `body` (a
 * decrypted payload: treat as secret). Release both with
 * pl_nm_session_output_clear() before reusing the struct. */
typedef struct pl_nm_session_output {
    pl_nm_session_output_kind kind;
    char topic[PL_NM_SESSION_TOPIC_SIZE]; /* SUBSCRIBE, UNSUBSCRIBE, PUBLISH: content topic */
    uint8_t *message;                     /* PUBLISH: the PayloadV2 bytes */
    size_t message_len;
    uint32_t ttl_s;                      /* PUBLISH: store-and-forward lifetime (relay) */
    /* PUBLISH: true for what is worthless once its moment passed and is
     * repaired by the protocol when lost (handshake messages, knocks,
     * READY): Waku store nodes need not keep it. Requests and responses
     * (application data) are not ephemeral. */
    bool ephemeral;
    pl_nm_session_event event;           /* EVENT */
    uint8_t peer[PL_NM_KEY_BYTES];       /* EVENT: the counterparty's identity */
    uint64_t id;                         /* REQUEST, RESPONSE, REQUEST_FAILED, REVOKED */
    uint8_t *body;
    size_t body_len;
    pl_err err;                          /* RETRY, REJECTED, REQUEST_FAILED, DROPPED */
    uint32_t attempt;                    /* CONNECTING, KNOCKED, RETRY */
    int64_t retry_at_ms;                 /* RETRY */
    bool replaced;                       /* ESTABLISHED */
    uint8_t session_id[32];              /* ESTABLISHED: RFC 37 session id (equal on both sides) */
} pl_nm_session_output;

PL_EXPORT void pl_nm_session_output_clear(pl_nm_session_output *o);

typedef enum pl_nm_peer_state {
    PL_NM_PEER_IDLE = 1,     /* waiting: backoff (nm), knocking (app) */
    PL_NM_PEER_HANDSHAKING,  /* a handshake is under way (and no session yet) */
    PL_NM_PEER_ESTABLISHED,  /* a session is usable */
} pl_nm_peer_state;

/* Create a manager. *out NULL on failure. Errors: PL_ERR_INVALID_ARG (role,
 * or a config value out of range), PL_ERR_NOMEM. */
PL_EXPORT pl_err pl_nm_sessions_new(pl_nm_sessions **out, const pl_nm_sessions_config *cfg,
                                    int64_t now_ms);
/* Wipe every key and free. NULL ok. Pending requests vanish without events. */
PL_EXPORT void pl_nm_sessions_free(pl_nm_sessions *m);

/* Add a counterparty (its identity public key; its role is the other one)
 * and start at once: subscribe to the rendezvous topic; the node manager
 * sends handshake message 1, the app knocks. Errors: PL_ERR_EXISTS,
 * PL_ERR_TOO_LARGE (PL_NM_SESSION_MAX_PEERS), PL_ERR_WEAK_KEY (a low-order
 * key or our own), PL_ERR_NOMEM. */
PL_EXPORT pl_err pl_nm_sessions_add_peer(pl_nm_sessions *m, const uint8_t pub[PL_NM_KEY_BYTES],
                                         int64_t now_ms);
/* Forget a counterparty: unsubscribe its topics, fail its requests
 * (REQUEST_FAILED, PL_ERR_CANCELLED), wipe its session. PL_ERR_NOT_FOUND. */
PL_EXPORT pl_err pl_nm_sessions_remove_peer(pl_nm_sessions *m, const uint8_t pub[PL_NM_KEY_BYTES],
                                            int64_t now_ms);

/* A message (PayloadV2 bytes) delivered on `topic` (a content topic).
 * Returns PL_OK when it was used or harmlessly ignored (our own message, a
 * nametag for another step, a stale message: counted, DROPPED event for the
 * non-trivial ones); PL_ERR_NOT_FOUND when no counterparty uses the topic;
 * else the error of the malformed message (PL_ERR_TOO_LARGE above
 * PL_NOISE_MAX_WIRE; also a DROPPED event). Never fails the manager. */
PL_EXPORT pl_err pl_nm_sessions_on_message(pl_nm_sessions *m, const char *topic,
                                           const uint8_t *data, size_t len, int64_t now_ms);
/* Something arrived on `topic` that the transport could not decode
 * (pl_delivery_info.err = err): a DROPPED event with err, which is returned;
 * PL_ERR_NOT_FOUND when no counterparty uses the topic. */
PL_EXPORT pl_err pl_nm_sessions_on_bad_delivery(pl_nm_sessions *m, const char *topic, pl_err err,
                                                int64_t now_ms);

/* Run what is due at now_ms (retries, knocks, time-outs). Early calls are
 * harmless. */
PL_EXPORT void pl_nm_sessions_on_timer(pl_nm_sessions *m, int64_t now_ms);
/* Unix ms of the next on_timer needed; INT64_MAX when nothing is scheduled. */
PL_EXPORT int64_t pl_nm_sessions_next_deadline(const pl_nm_sessions *m);

/* Send a request of body_len bytes (<= PL_NM_SESSION_BODY_MAX) to a peer.
 * Sent at once when a session is established, else queued until one is;
 * either way it fails (REQUEST_FAILED, PL_ERR_TIMEOUT) request_timeout_ms
 * after this call without an answer. A time-out on an established session
 * also starts a new handshake (nm) or knock (app): the peer may have
 * restarted. *id (may be NULL) gets the request id. Errors: PL_ERR_NOT_FOUND
 * (no such peer), PL_ERR_TOO_LARGE (body, or PL_NM_SESSION_MAX_REQUESTS
 * outstanding), PL_ERR_NOMEM, errors of the Noise encryption. */
PL_EXPORT pl_err pl_nm_sessions_request(pl_nm_sessions *m, const uint8_t pub[PL_NM_KEY_BYTES],
                                        const uint8_t *body, size_t body_len, int64_t now_ms,
                                        uint64_t *id);
/* Tell the peer that we forgot it (a REVOKE frame; the peer's node forgets
 * us too and answers): queued and timed out like a request, its answer
 * comes as RESPONSE (or REQUEST_FAILED) with *id. The caller removes the
 * peer afterwards. Errors: as pl_nm_sessions_request. */
PL_EXPORT pl_err pl_nm_sessions_revoke(pl_nm_sessions *m, const uint8_t pub[PL_NM_KEY_BYTES],
                                       int64_t now_ms, uint64_t *id);
/* Answer the peer's request `id`. Errors: PL_ERR_NOT_FOUND (peer),
 * PL_ERR_DISCONNECTED (no established session), PL_ERR_TOO_LARGE,
 * PL_ERR_NOMEM, Noise errors. */
PL_EXPORT pl_err pl_nm_sessions_respond(pl_nm_sessions *m, const uint8_t pub[PL_NM_KEY_BYTES],
                                        uint64_t id, const uint8_t *body, size_t body_len,
                                        int64_t now_ms);

/* Take the oldest pending output (false and *out zeroed when none). The
 * caller clears each output with pl_nm_session_output_clear(). */
PL_EXPORT bool pl_nm_sessions_poll(pl_nm_sessions *m, pl_nm_session_output *out);

/* PL_ERR_NOT_FOUND or PL_OK with *state set. */
PL_EXPORT pl_err pl_nm_sessions_peer_state(const pl_nm_sessions *m,
                                           const uint8_t pub[PL_NM_KEY_BYTES],
                                           pl_nm_peer_state *state);
/* Counterparties, and how many of them have an established session. */
PL_EXPORT size_t pl_nm_sessions_count(const pl_nm_sessions *m, size_t *established);

typedef struct pl_nm_sessions_stats {
    uint64_t handshakes_started; /* nm: message 1 sent; app: message 2 sent */
    uint64_t handshakes_deferred; /* nm: starts put off: PL_NM_SESSION_MAX_HANDSHAKES under way */
    uint64_t established;
    uint64_t rejected;
    uint64_t knocks_sent;
    uint64_t knocks_received;
    uint64_t dropped;            /* messages ignored or refused, all reasons */
    uint64_t outputs_lost;       /* outputs discarded because the queue was full */
} pl_nm_sessions_stats;
PL_EXPORT void pl_nm_sessions_stats_get(const pl_nm_sessions *m, pl_nm_sessions_stats *out);

/* The session event's name ("connecting", "knock", "established", "retry",
 * "rejected", "request", "response", "request_failed", "dropped"), as the
 * CLI prints it (docs/cli.md); "unknown" outside the enum. Static strings,
 * any thread. */
PL_EXPORT const char *pl_nm_session_event_name(pl_nm_session_event e);

#ifdef __cplusplus
}
#endif
#endif
