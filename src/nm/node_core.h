/* SPDX-License-Identifier: Apache-2.0 */
/* The node-manager node as a core: no I/O, no clock. It owns the pairing
 * engine (nm_pairing.h), the session manager (nm_session.h) and a cache of
 * the stored counterparties, and makes every decision nm_node.h promises:
 *  - a counterparty learned by a pairing is stored (store hook) before the
 *    engine may answer, and forgotten again if that pairing fails (it was
 *    not stored before);
 *  - a completed pairing (re)starts the session with that peer afresh;
 *  - at start, sessions with every stored counterparty of the other role;
 *  - an established session updates the store at most once a minute per
 *    peer (1000 peers coming up must not mean 1000 fsyncs each time);
 *  - events carry the peer's short id and stored name.
 * It talks to the network through a transport (transport.h: topics are the
 * cores' content topics, messages their bytes) and to the store through
 * hooks; time (`now_ms`, unix ms) comes in with every call. The runtime
 * (src/runtime/nm_node.c) is glue: files, the driver, the transport.
 * Private to the library; one thread. */
#ifndef PAIRLINK_NM_NODE_CORE_H
#define PAIRLINK_NM_NODE_CORE_H

#include "pairlink/hash.h"
#include "pairlink/nm_node.h"
#include "pairlink/nm_store.h"
#include "pairlink/transport.h"

#include <stdbool.h>

typedef struct pl__nmn pl__nmn;

/* Where counterparties are persisted (nm_store.h semantics). */
typedef struct pl__nmn_store {
    void *ctx;
    pl_err (*put)(void *ctx, const pl_nm_counterparty *c);
    pl_err (*touch)(void *ctx, const uint8_t pub[PL_NM_KEY_BYTES], int64_t now_ms);
    pl_err (*remove)(void *ctx, const uint8_t pub[PL_NM_KEY_BYTES]);
} pl__nmn_store;

/* An event for the application (the runtime adds its node handle). */
typedef void (*pl__nmn_event_fn)(void *ud, pl_nm_node_event *ev);

typedef struct pl__nmn_config {
    pl_nm_role role;
    const uint8_t *priv; /* identity, PL_NM_KEY_BYTES each; priv copied, wiped on free */
    const uint8_t *pub;
    const char *name;                  /* <= PL_NM_NAME_MAX bytes */
    bool sessions;                     /* at start, sessions with every stored counterparty */
    int64_t code_ttl_ms;               /* 0: the protocol's */
    const pl_nm_kdf_params *kdf;       /* not copied: must outlive the core */
    pl_nm_sessions_config session_cfg; /* role and static_priv are filled in */
    const pl_nm_counterparty *peers;   /* the store's counterparties at start */
    size_t npeers;
    pl__nmn_store store;
    pl_transport *tp; /* not owned */
    pl__nmn_event_fn on_event;
    void *ud;
    bool pair_no_session; /* a completed pairing starts no session */
    bool verify;          /* PAIR_VERIFY before a learned peer is stored */
    pl_rng_fn rng;        /* pairing codes, nonces, IVs, jitter; NULL: pl_random */
    void *rng_ctx;
} pl__nmn_config;

/* Errors: PL_ERR_INVALID_ARG (role, code_ttl_ms), PL_ERR_TOO_LARGE (name),
 * PL_ERR_NOMEM, those of pl_nm_sessions_new. */
pl_err pl__nmn_new(pl__nmn **out, const pl__nmn_config *cfg, int64_t now_ms);
void pl__nmn_free(pl__nmn *n); /* NULL ok */
/* No event from now on (the runtime is closing). */
void pl__nmn_silence(pl__nmn *n);

/* The operations of nm_node.h, with the time. A pairing in one call (the
 * key derivation inline, ~0.4 s with the protocol's kdf): */
pl_err pl__nmn_pair(pl__nmn *n, const char *code, char code_out[PL_NM_CODE_TEXT_SIZE],
                    int64_t now_ms);
/* ... or in two, the derivation in between done by the caller anywhere
 * (a worker thread): begin checks the state, makes or parses the code P
 * (into p, secret: the caller wipes it) and reports the app's PAIR_CODE;
 * derived takes the secrets (or the derivation's error) and starts the
 * engine, reporting a failure as PAIR_FAILED. A cancel in between reports
 * PAIR_FAILED at once; derived then only ends the wait. */
pl_err pl__nmn_pair_begin(pl__nmn *n, const char *code, uint8_t p[PL_NM_CODE_BYTES],
                          char code_out[PL_NM_CODE_TEXT_SIZE], int64_t now_ms);
void pl__nmn_pair_derived(pl__nmn *n, const pl_nm_secrets *sec, pl_err err, int64_t now_ms);
/* Answer PAIR_VERIFY. PL_ERR_STATE when none is pending. */
pl_err pl__nmn_pair_verify(pl__nmn *n, bool match, int64_t now_ms);
/* Revoke: forget now (store, cache), then tell the peer (nm_node.h). */
pl_err pl__nmn_revoke(pl__nmn *n, const uint8_t peer[PL_NM_KEY_BYTES], int64_t now_ms);
/* The store as it is now (another process may have changed it): sessions
 * for counterparties added (a daemon), none for those removed;
 * PEER_ADDED / PEER_REMOVED events. */
void pl__nmn_sync(pl__nmn *n, const pl_nm_counterparty *all, size_t nall, int64_t now_ms);
void pl__nmn_pair_cancel(pl__nmn *n, int64_t now_ms);
pl_err pl__nmn_connect(pl__nmn *n, const uint8_t peer[PL_NM_KEY_BYTES], int64_t now_ms);
pl_err pl__nmn_request(pl__nmn *n, const uint8_t peer[PL_NM_KEY_BYTES], const uint8_t *body,
                       size_t len, int64_t now_ms, uint64_t *id);
pl_err pl__nmn_respond(pl__nmn *n, const uint8_t peer[PL_NM_KEY_BYTES], uint64_t id,
                       const uint8_t *body, size_t len, int64_t now_ms);
pl_err pl__nmn_remove_peer(pl__nmn *n, const uint8_t peer[PL_NM_KEY_BYTES], int64_t now_ms);

/* From the transport, and from the driver. */
void pl__nmn_on_message(pl__nmn *n, const char *topic, const uint8_t *data, size_t len,
                        const pl_delivery_info *info, int64_t now_ms);
void pl__nmn_on_state(pl__nmn *n, pl_transport_state state, pl_err err);
/* A publish the network refused: an event, never silence. */
void pl__nmn_on_publish_error(pl__nmn *n, const char *topic, pl_err err, int64_t code);
void pl__nmn_on_timer(pl__nmn *n, int64_t now_ms);
int64_t pl__nmn_next_deadline(const pl__nmn *n);
/* Move what the cores produced since (outputs to the transport, events). */
void pl__nmn_drain(pl__nmn *n, int64_t now_ms);

const pl_nm_sessions *pl__nmn_sessions(const pl__nmn *n);
size_t pl__nmn_restored(const pl__nmn *n);

#endif
