/* SPDX-License-Identifier: Apache-2.0 */
/* A node-manager pairing node: one identity (app or node manager) with its
 * store, a transport (transport.h; a WalletConnect relay client unless one
 * is given), the pairing engine (nm_pairing.h) for pairing with a code, and
 * the session manager (nm_session.h) for Noise sessions with every stored
 * counterparty, run by a driver (driver.h).
 *
 * At start it opens the store (nm_store.h), loads or creates the identity
 * key (a 0600 file beside the store), connects to the relay, and at once
 * starts sessions with every stored counterparty (seed step 11). A pairing
 * started with pl_nm_node_pair() persists the new counterparty before
 * answering and then starts a session with it (step 10).
 *
 * Threads: everything runs on the driver's thread; callbacks too. Callbacks
 * may call any function of this header, pl_nm_node_close() included. They
 * run from the driver, except the PAIR_CODE event, which pl_nm_node_pair()
 * delivers before it returns. */
#ifndef PAIRLINK_NM_NODE_H
#define PAIRLINK_NM_NODE_H

#include "pairlink/common.h"
#include "pairlink/driver.h"
#include "pairlink/nm_pairing.h"
#include "pairlink/nm_session.h"
#include "pairlink/transport.h"
#include "pairlink/waku_transport.h"

#include <stdbool.h>
#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pl_nm_node pl_nm_node;

typedef enum pl_nm_node_event_kind {
    PL_NM_NODE_TRANSPORT = 1,    /* transport state: transport_state, err */
    PL_NM_NODE_PAIR_CODE,        /* app: the code to show: code (text) */
    PL_NM_NODE_PAIR_DROPPED,     /* a HELLO was not acted upon: reason, err */
    PL_NM_NODE_PAIR_STORED,      /* the counterparty is durably stored: peer */
    PL_NM_NODE_PAIRED,           /* pairing complete: peer, fingerprint */
    PL_NM_NODE_PAIR_FAILED,      /* err: PL_ERR_CODE_EXPIRED (app), PL_ERR_TIMEOUT (nm),
                                    PL_ERR_CANCELLED, a store error */
    PL_NM_NODE_SESSION,          /* a session event of nm_session.h: sev, peer, ... */
    PL_NM_NODE_PUBLISH_FAILED,   /* the network refused a message we sent: err, relay_code,
                                    topic (transport.h, on_publish_error) */
    PL_NM_NODE_PAIR_VERIFY,      /* opts.verify: the peer is known but not stored yet: peer,
                                    name (sent by the peer), fingerprint. Show the fingerprint,
                                    ask the user, answer with pl_nm_node_pair_verify() */
    PL_NM_NODE_PEER_ADDED,       /* a counterparty appeared in the store, stored by another
                                    process (a `pair` beside a daemon): peer, name */
    PL_NM_NODE_PEER_REMOVED,     /* a counterparty is forgotten: peer, name; by_peer: it told us
                                    (it removed us); revoked: by pl_nm_node_revoke (err: PL_OK
                                    when the peer answered, PL_ERR_TIMEOUT when it did not);
                                    neither: removed from the store by another process */
} pl_nm_node_event_kind;

typedef struct pl_nm_node_event {
    pl_nm_node_event_kind kind;
    pl_transport_state transport_state;          /* TRANSPORT */
    pl_err err;                                  /* TRANSPORT, PAIR_DROPPED, PAIR_FAILED, SESSION,
                                                    PUBLISH_FAILED */
    int64_t relay_code;                          /* PUBLISH_FAILED: the relay's error code */
    const char *topic;                           /* PUBLISH_FAILED: the topic name */
    char code[PL_NM_CODE_TEXT_SIZE];             /* PAIR_CODE */
    pl_nm_drop_reason reason;                    /* PAIR_DROPPED */
    uint8_t peer[PL_NM_KEY_BYTES];               /* PAIR_STORED, PAIRED, SESSION */
    char peer_id[17];                            /* first 16 hex digits of peer */
    char name[PL_NM_NAME_MAX + 1];               /* PAIR_STORED, PAIRED, SESSION (stored name) */
    char fingerprint[PL_NM_FINGERPRINT_SIZE];    /* PAIRED, PAIR_VERIFY */
    bool by_peer;                                /* PEER_REMOVED */
    bool revoked;                                /* PEER_REMOVED: by pl_nm_node_revoke */
    /* SESSION: the output of nm_session.h (kind EVENT); its body pointer is
     * valid during the callback only. */
    const pl_nm_session_output *session;
} pl_nm_node_event;

typedef void (*pl_nm_node_event_cb)(void *ud, pl_nm_node *n, const pl_nm_node_event *ev);

typedef struct pl_nm_node_opts {
    pl_nm_role role;        /* required */
    const char *relay_url;  /* e.g. ws://127.0.0.1:8787; required unless transport or waku is set */
    /* Optional: use this transport instead of a relay client of the node's
     * own. Not owned (it must outlive the node); the node sets its handler. */
    pl_transport *transport;
    /* Optional (without `transport`): run over a Waku relay network instead
     * of a WalletConnect relay: the node makes a Waku transport of its own
     * (waku_transport.h) with these options (copied; the handler is the
     * node's) and closes it with itself; relay_url and project_id are not
     * used. The libp2p identity is waku->node.key, else the file
     * waku->key_file, else "<store_path>.p2p.key" (0600, created on first
     * use; a fresh key for a ":memory:" store). The node's publish queue
     * and content-topic limits, where left 0, are raised to what
     * PL_NM_SESSION_MAX_PEERS counterparties need. Needs a loop driver. */
    const pl_waku_transport_opts *waku;
    /* Optional: run on this driver (a virtual one in tests); NULL: a driver
     * of the node's own on `loop`. */
    pl_driver *driver;
    const char *store_path; /* required: SQLite file; the identity key is "<store_path>.key" */
    const char *name;       /* display name sent in HELLOs (<= 64 bytes UTF-8); NULL: "" */
    const char *project_id; /* optional relay projectId */
    bool sessions;          /* at start, start sessions with every stored counterparty
                               (false: only with one paired by this node) */
    int64_t code_ttl_ms;    /* 0: PL_NM_CODE_TTL_MS (5 min); shorter values for tests only */
    const pl_nm_kdf_params *kdf; /* NULL: the protocol parameters (tests only otherwise); copied */
    /* A completed pairing starts no session (`pair --no-session`): the
     * counterparty is stored, nothing more is sent to it. */
    bool pair_no_session;
    /* Fingerprint confirmation (magic-wormhole's verifier): a pairing stops
     * at PAIR_VERIFY, before the peer is stored, until the application
     * answers with pl_nm_node_pair_verify(). An app answers the node
     * manager before storing, so that both can show the fingerprint
     * (docs/protocol/node-manager-pairing.md, section 7). */
    bool verify;
    /* How often (ms) the node looks whether another process changed the
     * store (SQLite's data_version): counterparties added there get a
     * session (with `sessions`), removed ones lose theirs (PEER_ADDED,
     * PEER_REMOVED). 0: every 1000 ms; < 0: never. Loop drivers only; on a
     * virtual driver call pl_nm_node_check_store(). */
    int64_t store_poll_ms;
    pl_nm_sessions_config session_cfg; /* tuning: role and static_priv are filled in by the node */
    pl_nm_node_event_cb on_event;      /* required */
    void *ud;
} pl_nm_node_opts;

/* Create and start, on opts->driver or else on a driver of its own on
 * `loop` (then required). Errors: PL_ERR_INVALID_ARG (role, code_ttl_ms
 * outside 0..PL_NM_CODE_TTL_MS), PL_ERR_TOO_LARGE (name above 64 bytes),
 * those of pl_nm_store_open / pl_nm_store_identity (PL_ERR_KEY_FILE: unsafe
 * key file), pl_relay_client_new or pl_waku_transport_new,
 * pl_nm_sessions_new. Blocking file I/O at start. */
PL_EXPORT pl_err pl_nm_node_new(pl_nm_node **out, uv_loop_t *loop, const pl_nm_node_opts *opts);

/* Start a pairing. App: code NULL -> a fresh code (reported at once as a
 * PAIR_CODE event and in code_out if not NULL). Node manager: code is the
 * typed text. The key derivation (Argon2id, ~0.4 s) runs on libuv's thread
 * pool (uv_queue_work) on a loop driver, so the loop keeps turning; the
 * pairing listens once it is done. On a virtual driver it runs inline.
 * Errors: PL_ERR_STATE (a pairing is already running), PL_ERR_INVALID_ARG
 * (a code given to an app or missing for a node manager),
 * PL_ERR_CODE_FORMAT / PL_ERR_CODE_CHECKSUM (typed code); on a virtual
 * driver also those of pl_nm_derive and pl_nm_pairing_new, which on a loop
 * driver come as PAIR_FAILED. Outcome: PAIRED or PAIR_FAILED. */
PL_EXPORT pl_err pl_nm_node_pair(pl_nm_node *n, const char *code,
                                 char code_out[PL_NM_CODE_TEXT_SIZE]);
/* Cancel a running pairing (PAIR_FAILED, PL_ERR_CANCELLED). No-op if none. */
PL_EXPORT void pl_nm_node_pair_cancel(pl_nm_node *n);
/* Answer PAIR_VERIFY: `match` true stores the peer and lets the pairing
 * complete; false ends it (PAIR_FAILED, PL_ERR_FINGERPRINT_REJECTED) with
 * nothing stored. Errors: PL_ERR_STATE (no PAIR_VERIFY pending). */
PL_EXPORT pl_err pl_nm_node_pair_verify(pl_nm_node *n, bool match);

/* Start (or keep) a session with one stored counterparty: for a node
 * created with sessions = false (e.g. a one-shot `pairlink send`).
 * Errors: PL_ERR_NOT_FOUND (not stored), PL_ERR_HELLO_ROLE (stored with our
 * own role), errors of pl_nm_sessions_add_peer other than PL_ERR_EXISTS. */
PL_EXPORT pl_err pl_nm_node_connect(pl_nm_node *n, const uint8_t peer[PL_NM_KEY_BYTES]);

/* Send a request to a counterparty (a key, or by its id prefix through
 * pl_nm_store_find). See pl_nm_sessions_request for queuing and time-outs;
 * the answer comes as a SESSION event RESPONSE / REQUEST_FAILED with *id.
 * Errors: those of pl_nm_sessions_request (PL_ERR_NOT_FOUND: the peer is
 * not in the session manager, e.g. not stored or sessions off). */
PL_EXPORT pl_err pl_nm_node_request(pl_nm_node *n, const uint8_t peer[PL_NM_KEY_BYTES],
                                    const uint8_t *body, size_t len, uint64_t *id);
/* Answer a REQUEST event. Errors: those of pl_nm_sessions_respond. */
PL_EXPORT pl_err pl_nm_node_respond(pl_nm_node *n, const uint8_t peer[PL_NM_KEY_BYTES],
                                    uint64_t id, const uint8_t *body, size_t len);

/* Forget a counterparty: removed from the store and its session closed.
 * Errors: PL_ERR_NOT_FOUND, store errors. */
PL_EXPORT pl_err pl_nm_node_remove_peer(pl_nm_node *n, const uint8_t peer[PL_NM_KEY_BYTES]);
/* Revoke a counterparty: removed from the store at once (no session is
 * accepted from it any more), then told over a session (a REVOKE frame:
 * its node forgets us and reports PEER_REMOVED with by_peer). The outcome
 * is PEER_REMOVED with `revoked`: err PL_OK once the peer answered,
 * PL_ERR_TIMEOUT when it did not within the request time-out. Errors:
 * PL_ERR_NOT_FOUND (not stored), PL_ERR_TOO_LARGE (16 revocations under
 * way), store errors, those of pl_nm_sessions_revoke. */
PL_EXPORT pl_err pl_nm_node_revoke(pl_nm_node *n, const uint8_t peer[PL_NM_KEY_BYTES]);
/* Look now whether another process changed the store (see
 * opts.store_poll_ms). Errors: store errors. */
PL_EXPORT pl_err pl_nm_node_check_store(pl_nm_node *n);

/* Our identity public key, and the session manager (read-only queries:
 * pl_nm_sessions_peer_state, _count, _stats_get). */
PL_EXPORT void pl_nm_node_identity(const pl_nm_node *n, uint8_t pub[PL_NM_KEY_BYTES]);
PL_EXPORT const pl_nm_sessions *pl_nm_node_sessions(const pl_nm_node *n);
/* The transport underneath, and the driver. */
PL_EXPORT pl_transport *pl_nm_node_transport(pl_nm_node *n);
PL_EXPORT pl_driver *pl_nm_node_driver(pl_nm_node *n);
/* Counterparties restored from the store at start-up (0 without sessions). */
PL_EXPORT size_t pl_nm_node_restored(const pl_nm_node *n);
/* Close; pending requests vanish without events, and no event is delivered
 * after this call. With a transport of its own, the node first waits up to
 * flush_ms until the network took every message (pl_transport_close): a
 * process that answered and exits passes a few seconds so that its last
 * message is not lost; 0 closes at once. Then the transport, the store and
 * the node's own driver close; on_closed (may be NULL) runs from the driver
 * once everything is closed, and the node is freed. A borrowed transport is
 * left open. Calling it twice is misuse. */
PL_EXPORT void pl_nm_node_close(pl_nm_node *n, int64_t flush_ms, void (*on_closed)(void *ud));

/* The event's name in lowercase words with underscores ("transport",
 * "pair_code", "pair_dropped", "pair_stored", "paired", "pair_failed",
 * "session", "publish_failed", "pair_verify", "peer_added",
 * "peer_removed"), the same for every binding and log
 * (docs/cli.md); "unknown" outside the enum. Static strings, any thread. */
PL_EXPORT const char *pl_nm_node_event_name(pl_nm_node_event_kind k);

#ifdef __cplusplus
}
#endif
#endif
