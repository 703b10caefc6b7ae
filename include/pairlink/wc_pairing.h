/* SPDX-License-Identifier: Apache-2.0 */
/* WalletConnect v2 Pairing API engine (no I/O, no clock).
 *
 * One engine holds many pairings. Each pairing is a symKey S and its topic
 * sha256(S); messages on the topic are type 0 envelopes of JSON-RPC 2.0.
 * Protocols (Sign, Auth, your own) register their methods; requests are
 * routed by method and responses by the id of the request they answer. A
 * request for a method nobody registered is answered with error 10001
 * "Unsupported wc_ method. <method>".
 *
 * Lifecycle (the seed's policy, configurable):
 *  - create(): the proposer's pairing is INACTIVE and expires inactive_ttl
 *    (5 min) after creation;
 *  - pair(uri): the responder's pairing is ACTIVE at once (active_ttl, 30 days);
 *  - the proposer activates when a response to one of its requests arrives;
 *  - every delivered request or response from the peer renews an active
 *    pairing to now + active_ttl;
 *  - expiry deletes the pairing, unsubscribes, and emits PL_WC_EV_EXPIRED.
 * Built-in methods: wc_pairingPing, wc_pairingDelete, wc_pairingExtend.
 *
 * Driving it: the runtime passes every message delivered on a topic to
 * pl_wc_engine_on_message(), calls pl_wc_engine_on_timer() at (or after)
 * pl_wc_engine_next_deadline(), and restores persisted state at start-up.
 * The engine calls the transport (transport.h: publish, subscribe,
 * unsubscribe of envelope bytes on its 64-hex topics, with the WalletConnect
 * relay's tag and prompt as pl_wc_relay_publish_ext), the store and the
 * application callbacks synchronously from inside these calls. None
 * of those callbacks may call back into the engine except the request and
 * response handlers, which may call pl_wc_respond*, pl_wc_request,
 * pl_wc_delete and pl_wc_ping. All times: `now_ms` is unix milliseconds;
 * expiries are unix seconds, as in the JS SDK. Not thread-safe: one thread
 * (the loop) owns an engine. */
#ifndef PAIRLINK_WC_PAIRING_H
#define PAIRLINK_WC_PAIRING_H

#include "pairlink/common.h"
#include "pairlink/crypto.h"
#include "pairlink/hash.h"
#include "pairlink/jsonrpc.h"
#include "pairlink/transport.h"

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PL_WC_INACTIVE_TTL 300           /* seconds */
#define PL_WC_ACTIVE_TTL (30 * 86400)    /* seconds */
#define PL_WC_MAX_PAIRINGS 4096
#define PL_WC_MAX_PENDING 4096           /* outstanding requests per engine */
#define PL_WC_MAX_METHODS 128
#define PL_WC_METHOD_MAX 64              /* longest method name */

/* The SDK's error codes used by the engine. */
#define PL_WC_CODE_UNSUPPORTED_METHOD 10001
#define PL_WC_CODE_USER_DISCONNECTED 6000

typedef struct pl_wc_engine pl_wc_engine;

typedef struct pl_wc_pairing {
    char topic[PL_TOPIC_HEX_SIZE];
    uint8_t sym_key[PL_SYMKEY_BYTES]; /* secret */
    char relay_protocol[64];
    int64_t expiry;  /* unix seconds */
    bool active;
    bool proposer;   /* this side created it */
    char methods[512]; /* comma-joined methods announced in the URI */
} pl_wc_pairing;

/* A request this side sent and still awaits an answer for. */
typedef struct pl_wc_pending {
    char topic[PL_TOPIC_HEX_SIZE];
    pl_rpc_id id;
    char method[PL_WC_METHOD_MAX + 1];
    int64_t deadline_ms;
    /* The sealed envelope (bytes) and how it was published. Filled when the
     * engine saves a request (valid during save_pending only) so that a
     * restart can publish it again: the relay may never have received it.
     * NULL in the engine's own list and in pl_wc_pairings() copies. */
    const uint8_t *message;
    size_t message_len;
    uint32_t tag, ttl;
    bool prompt;
} pl_wc_pending;

/* Persistence hooks: called synchronously on every change so that a crash
 * at any point loses nothing the peer was told. Return PL_OK or an error;
 * an error makes the engine call fail with it (state is not changed). */
typedef struct pl_wc_store {
    void *ctx;
    pl_err (*save_pairing)(void *ctx, const pl_wc_pairing *p);
    pl_err (*remove_pairing)(void *ctx, const char *topic);
    pl_err (*save_pending)(void *ctx, const pl_wc_pending *r);
    pl_err (*remove_pending)(void *ctx, const char *topic, const pl_rpc_id *id);
    /* A request from the peer was handled: remember its id until until_ms
     * (when the relay can no longer hand it out again), so that a restarted
     * process does not handle a redelivered request twice. May be NULL. */
    pl_err (*save_seen)(void *ctx, const char *topic, const pl_rpc_id *id, int64_t until_ms);
} pl_wc_store;

typedef enum pl_wc_event_kind {
    PL_WC_EV_CREATED = 1,   /* create() or pair() made a pairing */
    PL_WC_EV_ACTIVATED,     /* the proposer got its proof that the peer paired */
    PL_WC_EV_RENEWED,       /* expiry moved forward (delivery or wc_pairingExtend) */
    /* ACTIVATED and RENEWED caused by a request from the peer come after
     * the request was handled: the answer (the pong of a wc_pairingPing)
     * is already queued on the transport, so an application may close with
     * a flush from this event without losing it. Caused by a response,
     * they come before the response's own event (PONG) or handler. */
    PL_WC_EV_EXPIRED,       /* expiry reached: pairing deleted, unsubscribed */
    PL_WC_EV_DELETED,       /* deleted locally or by the peer (wc_pairingDelete) */
    PL_WC_EV_PING,          /* the peer pinged us (we answered) */
    PL_WC_EV_PONG,          /* our ping was answered */
    PL_WC_EV_REQUEST_TIMEOUT, /* a request got no answer before its deadline */
    PL_WC_EV_UNSUPPORTED,   /* we answered 10001 to an unregistered method */
    PL_WC_EV_BAD_MESSAGE,   /* undecryptable/unparseable message dropped */
    PL_WC_EV_PUBLISH_FAILED, /* the relay refused (or never took) a message we sent */
} pl_wc_event_kind;

/* The event's name in lowercase words with underscores ("created",
 * "activated", "renewed", "expired", "deleted", "ping", "pong",
 * "request_timeout", "unsupported_method", "bad_message",
 * "publish_failed"), the same for every binding and log; "unknown" for a
 * value outside the enum. Static strings, any thread. */
PL_EXPORT const char *pl_wc_event_name(pl_wc_event_kind k);

typedef struct pl_wc_event {
    pl_wc_event_kind kind;
    const char *topic;
    int64_t expiry;         /* CREATED/ACTIVATED/RENEWED */
    bool by_peer;           /* DELETED: the peer sent wc_pairingDelete */
    const char *method;     /* REQUEST_TIMEOUT, UNSUPPORTED, PONG */
    pl_rpc_id id;           /* REQUEST_TIMEOUT, UNSUPPORTED, PONG */
    pl_err err;             /* BAD_MESSAGE: why it was dropped; PUBLISH_FAILED: PL_ERR_RELAY
                               (refused), PL_ERR_TIMEOUT (its TTL ran out first) */
    int64_t relay_code;     /* PUBLISH_FAILED: the relay's error code (0 if none) */
} pl_wc_event;

typedef struct pl_wc_config {
    int64_t inactive_ttl;   /* seconds; 0: PL_WC_INACTIVE_TTL */
    int64_t active_ttl;     /* seconds; 0: PL_WC_ACTIVE_TTL */
    void (*on_event)(void *ud, pl_wc_engine *e, const pl_wc_event *ev);
    void *ud;
    /* Randomness: symKeys, request ids, envelope IVs. NULL: pl_random (the
     * OS generator). A test may pass a seeded one to replay a run. */
    pl_rng_fn rng;
    void *rng_ctx;
} pl_wc_config;

/* Create an engine publishing through `transport` (required; not owned: it
 * must outlive the engine). The engine does not take the transport's
 * handler: the runtime passes deliveries in. store may be NULL (no
 * persistence); it is copied. Errors: PL_ERR_NOMEM. */
PL_EXPORT pl_err pl_wc_engine_new(pl_wc_engine **out, const pl_wc_config *cfg,
                                  pl_transport *transport, const pl_wc_store *store);
/* Free the engine and wipe its keys. NULL ok. Pending requests are dropped
 * without callbacks. */
PL_EXPORT void pl_wc_engine_free(pl_wc_engine *e);

/* ---- protocols ---- */
typedef struct pl_wc_method {
    const char *name;   /* copied */
    uint32_t req_tag, req_ttl;
    bool req_prompt;
    uint32_t res_tag, res_ttl;
} pl_wc_method;

/* A request for a registered method arrived. Answer it (now or later) with
 * pl_wc_respond / pl_wc_respond_error using req->id. */
typedef void (*pl_wc_request_fn)(void *ud, pl_wc_engine *e, const char *topic,
                                 const pl_rpc_msg *req);
/* The answer to a request we sent: res is a RESULT or ERROR message, or NULL
 * with err = PL_ERR_TIMEOUT (deadline passed) or PL_ERR_NO_MATCHING_KEY
 * (pairing deleted/expired first). */
typedef void (*pl_wc_response_fn)(void *ud, pl_wc_engine *e, const char *topic,
                                  const char *method, const pl_rpc_id *id,
                                  const pl_rpc_msg *res, pl_err err);

/* Register a method with its tags/TTLs and handlers (either may be NULL).
 * Errors: PL_ERR_EXISTS (name registered), PL_ERR_TOO_LARGE (too many or name
 * too long), PL_ERR_INVALID_ARG (empty name or a built-in wc_pairing* name). */
PL_EXPORT pl_err pl_wc_register(pl_wc_engine *e, const pl_wc_method *m, pl_wc_request_fn on_request,
                                pl_wc_response_fn on_response, void *ud);
/* Look up a registered method's settings (NULL if unknown). */
PL_EXPORT const pl_wc_method *pl_wc_method_find(const pl_wc_engine *e, const char *name);
/* The Sign protocol's settings for a method, as the JS SDK registers them
 * (wc_sessionPropose: tags 1100/1101, TTL 300 s; wc_sessionAuthenticate:
 * 1116/1117, 3600 s; wc_authRequest: 3000/3001, 86400 s; requests prompt),
 * ready for pl_wc_register. NULL for any other name. Static data: any
 * thread. */
PL_EXPORT const pl_wc_method *pl_wc_sign_method(const char *name);

/* ---- pairings ---- */
/* Proposer: new inactive pairing; subscribes to its topic. *out_uri (caller
 * frees with pl_free_secret or pl_free: it contains the symKey) and topic
 * (may be NULL) are set. Errors: PL_ERR_TOO_LARGE (pairing limit), store errors. */
PL_EXPORT pl_err pl_wc_create(pl_wc_engine *e, const char *const *methods, size_t n_methods,
                              int64_t now_ms, char **out_uri, char topic[PL_TOPIC_HEX_SIZE]);
/* Responder: parse and check the URI, make an active pairing, subscribe.
 * Errors: the URI parser's (PL_ERR_URI_EXPIRED, PL_ERR_URI_TOPIC_MISMATCH,
 * ...), PL_ERR_PAIRING_EXISTS, PL_ERR_TOO_LARGE, store errors. */
PL_EXPORT pl_err pl_wc_pair(pl_wc_engine *e, const char *uri, size_t uri_len, int64_t now_ms,
                            char topic[PL_TOPIC_HEX_SIZE]);

/* Send a request on a pairing topic. params_json may be NULL ("{}").
 * The method must be registered (or a built-in). *id_out (may be NULL) gets
 * the request id. Errors: PL_ERR_NO_MATCHING_KEY, PL_ERR_UNSUPPORTED_METHOD,
 * PL_ERR_TOO_LARGE (too many pending), PL_ERR_JSON, transport/store errors. */
PL_EXPORT pl_err pl_wc_request(pl_wc_engine *e, const char *topic, const char *method,
                               const char *params_json, int64_t now_ms, pl_rpc_id *id_out);
/* Answer a request. Errors: PL_ERR_NO_MATCHING_KEY, PL_ERR_JSON. The method
 * name selects the response tag/ttl (NULL: tag 0, ttl 86400). */
PL_EXPORT pl_err pl_wc_respond(pl_wc_engine *e, const char *topic, const char *method,
                               const pl_rpc_id *id, const char *result_json);
PL_EXPORT pl_err pl_wc_respond_error(pl_wc_engine *e, const char *topic, const char *method,
                                     const pl_rpc_id *id, int64_t code, const char *message);

/* wc_pairingPing; the answer arrives as PL_WC_EV_PONG. */
PL_EXPORT pl_err pl_wc_ping(pl_wc_engine *e, const char *topic, int64_t now_ms, pl_rpc_id *id_out);
/* Tell the peer (wc_pairingDelete, code 6000 "User disconnected."), then
 * delete locally and unsubscribe. Errors: PL_ERR_NO_MATCHING_KEY. */
PL_EXPORT pl_err pl_wc_delete(pl_wc_engine *e, const char *topic, int64_t now_ms);
/* Ask the peer to extend (wc_pairingExtend {expiry}) and extend locally. */
PL_EXPORT pl_err pl_wc_extend(pl_wc_engine *e, const char *topic, int64_t expiry, int64_t now_ms);

/* ---- driving ---- */
/* A message (envelope bytes) delivered on `topic`; info is the transport's
 * (may be NULL). Errors: PL_ERR_NO_MATCHING_KEY when the topic is not a
 * pairing of this engine (the runtime may route it elsewhere); other
 * failures (an undecodable arrival: info->err, bad envelope, bad JSON) are
 * reported as PL_WC_EV_BAD_MESSAGE and return the reason. */
PL_EXPORT pl_err pl_wc_engine_on_message(pl_wc_engine *e, const char *topic, const uint8_t *data,
                                         size_t len, const pl_delivery_info *info,
                                         int64_t now_ms);
/* The transport could not publish a message of this engine on topic
 * (transport.h, on_publish_error): reported as PL_WC_EV_PUBLISH_FAILED, so
 * that a refusal (a full mailbox, a quota) is an event and never silence.
 * A request whose message it was still ends with its time-out. */
PL_EXPORT void pl_wc_engine_on_publish_error(pl_wc_engine *e, const char *topic, pl_err err,
                                             int64_t relay_code);
/* Expire pairings and time out requests due at now_ms. */
PL_EXPORT void pl_wc_engine_on_timer(pl_wc_engine *e, int64_t now_ms);
/* Earliest time (unix ms) the engine wants on_timer; INT64_MAX if none. */
PL_EXPORT int64_t pl_wc_engine_next_deadline(const pl_wc_engine *e);

/* Restore persisted state at start-up (before any message). restore_pairing
 * resubscribes to the topic; an already expired pairing is dropped (removed
 * from the store) and PL_ERR_PAIRING_EXPIRED returned. */
PL_EXPORT pl_err pl_wc_restore_pairing(pl_wc_engine *e, const pl_wc_pairing *p, int64_t now_ms);
/* Restore a pending request; when r->message is set it is published again
 * (a message the relay already has is de-duplicated there by its hash, and
 * the peer ignores a request id it handled). */
PL_EXPORT pl_err pl_wc_restore_pending(pl_wc_engine *e, const pl_wc_pending *r);
/* Restore the id of a request already handled (see save_seen). */
PL_EXPORT void pl_wc_restore_seen(pl_wc_engine *e, const char *topic, const pl_rpc_id *id);

/* Enumerate pairings: copies up to `cap` into out (keys included: wipe them),
 * returns the total count. */
PL_EXPORT size_t pl_wc_pairings(const pl_wc_engine *e, pl_wc_pairing *out, size_t cap);
/* Copy one pairing. Errors: PL_ERR_NO_MATCHING_KEY. */
PL_EXPORT pl_err pl_wc_pairing_get(const pl_wc_engine *e, const char *topic, pl_wc_pairing *out);

#ifdef __cplusplus
}
#endif
#endif
