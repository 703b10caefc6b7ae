/* SPDX-License-Identifier: Apache-2.0 */
/* The transport interface: what a protocol core needs from a pub/sub network,
 * in both directions.
 *
 * A transport moves messages (bytes with a length) on topics (names). It is
 * a table of operations (pl_transport_ops) behind one handle, so that the
 * cores and the runtimes above it (the WalletConnect engine, the
 * node-manager pairing and sessions) never know which network carries their
 * bytes. Implementations:
 *  - the WalletConnect relay client (relay_client.h): maps a topic name to
 *    its relay topic (a name of 64 lowercase hex characters passes through
 *    unchanged; any other name becomes hex(sha256(name))) and back on
 *    delivery, and carries the bytes as standard base64 in irn_publish;
 *  - the in-memory loopback (loopback.h): several endpoints on one hub with
 *    a virtual clock, for tests;
 *  - the Waku v2 relay transport (waku_transport.h): content topics map to
 *    pubsub topics, bytes travel as the payload of a WakuMessage.
 *
 * Topics are names: 1..PL_TRANSPORT_TOPIC_MAX bytes of printable ASCII
 * (0x21..0x7e). The node-manager cores use Waku content topics
 * ("/pairlink/1/pair-<hex>/proto"); the WalletConnect engine uses its 64-hex
 * pairing topics. Encodings that belong to one network (base64, topic
 * hashing, WakuMessage framing) live in that network's transport only.
 *
 * Directions:
 *  - down: pl_transport_publish / _subscribe / _unsubscribe;
 *  - up: the handler's on_message (topic name, bytes, length and a
 *    pl_delivery_info), on_state (connection state changes) and
 *    on_publish_error (a publish the network refused). The handler
 *    is given when the transport is created or attached with
 *    pl_transport_set_handler().
 *
 * Threads and reentrancy: a transport belongs to the driver (driver.h) it
 * was created on; every function is called on that driver's thread and the
 * handler runs there too. Handler callbacks are never called from inside a
 * function of this header, only from the driver (the loop, or
 * pl_driver_run / pl_driver_advance of a virtual driver), so a core may call
 * publish from anywhere, including from a callback, without being re-entered.
 * A callback may call any function of this header, pl_transport_close()
 * included.
 *
 * Implementing a transport: embed a pl_transport in the implementation's
 * object, fill a static pl_transport_ops, call pl_transport_init(), and
 * report with pl_transport_deliver() and pl_transport_report_state(). The
 * generic functions below check the arguments (topic names, NULL pointers)
 * and own the handler, the "closing" state and flush-then-close, so an
 * implementation does not repeat them. */
#ifndef PAIRLINK_TRANSPORT_H
#define PAIRLINK_TRANSPORT_H

#include "pairlink/common.h"

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PL_TRANSPORT_TOPIC_MAX 255 /* longest topic name, bytes (Waku's content topic bound) */

typedef struct pl_transport pl_transport;
typedef struct pl_driver pl_driver; /* driver.h */

typedef enum pl_transport_state {
    PL_TRANSPORT_CONNECTING = 1,   /* the first connection is under way; publishes wait */
    PL_TRANSPORT_CONNECTED = 2,    /* publishes go out */
    PL_TRANSPORT_RECONNECTING = 3, /* lost or failed (err says why); trying again; publishes wait */
    PL_TRANSPORT_CLOSED =
        4, /* given up for good (err says why, e.g. PL_ERR_RELAY_AUTH), or closed */
} pl_transport_state;

/* "connecting", "connected", "reconnecting", "closed"; never NULL. */
PL_EXPORT const char *pl_transport_state_name(pl_transport_state s);

/* Transport-specific extensions of the publish options and of the delivery
 * info start with this header; `kind` names the transport family that reads
 * them. A transport ignores an extension of another kind, so a core can pass
 * WalletConnect relay options (tag, prompt) without them leaking into the
 * Waku path. The structs themselves are declared by each transport's header
 * (relay_client.h: pl_wc_relay_publish_ext, pl_wc_relay_delivery_ext;
 * waku_transport.h: pl_waku_publish_ext, pl_waku_delivery_ext). */
typedef struct pl_transport_ext {
    uint32_t kind;
} pl_transport_ext;

#define PL_TRANSPORT_EXT_WC_RELAY 1u /* relay_client.h */
#define PL_TRANSPORT_EXT_WAKU 2u     /* waku_transport.h */
/* 3.. for later transports. */

typedef struct pl_publish_opts {
    /* Seconds a store-and-forward network keeps the message for late or
     * offline subscribers (the WalletConnect relay's ttl); 0: the
     * transport's default. A transport without storage ignores it. */
    uint32_t ttl_s;
    /* Waku: the message must not be stored by store nodes. Ignored by
     * transports without such a notion. */
    bool ephemeral;
    /* Transport-specific options, or NULL; not owned, read during the call. */
    const pl_transport_ext *ext;
} pl_publish_opts;

typedef struct pl_delivery_info {
    /* The network's publish time in unix ms where it has one (the relay's
     * publishedAt, a WakuMessage timestamp); 0 otherwise. Informative only:
     * it comes from the network, not from a clock we trust. */
    int64_t published_at_ms;
    /* PL_OK for a message. Anything else: a message arrived on the topic
     * but the transport could not turn it into bytes (e.g. PL_ERR_BAD_BASE64
     * on the relay); data is then NULL and len 0. Cores count it as a
     * malformed message from the network. */
    pl_err err;
    /* Transport-specific details, or NULL; valid during the callback only. */
    const pl_transport_ext *ext;
} pl_delivery_info;

/* A message on a subscribed topic. topic, data and info are valid during the
 * call only. The same message may be delivered more than once where the
 * network is at-least-once and the transport cannot tell (cores must be
 * idempotent); transports remove the duplicates they can recognise. */
typedef void (*pl_transport_message_fn)(void *ud, pl_transport *t, const char *topic,
                                        const uint8_t *data, size_t len,
                                        const pl_delivery_info *info);

/* The state changed, or another attempt failed while reconnecting (then
 * state is RECONNECTING again, with that attempt's reason). err is PL_OK for
 * CONNECTED. The initial CONNECTING and a close by the user are not
 * reported. */
typedef void (*pl_transport_state_fn)(void *ud, pl_transport *t, pl_transport_state state,
                                      pl_err err);

/* The network will not carry a publish that pl_transport_publish accepted:
 * err PL_ERR_RELAY when it refused it (code: its error code, e.g. the
 * relay's -32000 for a full mailbox or a quota), PL_ERR_TIMEOUT when the
 * message's TTL ran out before the network took it (code 0). topic is the
 * name it was published to. A refusal is never silent: cores report it to
 * their users. Not called for what pl_transport_close drops. */
typedef void (*pl_transport_publish_error_fn)(void *ud, pl_transport *t, const char *topic,
                                              pl_err err, int64_t code);

typedef struct pl_transport_handler {
    pl_transport_message_fn on_message; /* required to receive anything */
    pl_transport_state_fn on_state;     /* optional */
    void *ud;
    pl_transport_publish_error_fn on_publish_error; /* optional */
} pl_transport_handler;

typedef void (*pl_transport_closed_fn)(void *ud);

/* ---- using a transport ---- */

/* Set (or replace) the handler; h is copied; NULL removes it (deliveries are
 * then dropped). */
PL_EXPORT void pl_transport_set_handler(pl_transport *t, const pl_transport_handler *h);

/* Queue `len` bytes (data may be NULL when len is 0) on `topic`. The bytes
 * are copied. Delivery is asynchronous; the message counts in
 * pl_transport_pending() until the network has taken it. opts may be NULL
 * (defaults). Errors: PL_ERR_INVALID_ARG (topic name), PL_ERR_TOO_LARGE (the
 * message exceeds the transport's bound, or its queue is full),
 * PL_ERR_STATE (closing, or CLOSED), PL_ERR_NOMEM. */
PL_EXPORT pl_err pl_transport_publish(pl_transport *t, const char *topic, const uint8_t *data,
                                      size_t len, const pl_publish_opts *opts);

/* Add a topic to the subscription set (idempotent). The set is kept across
 * reconnects. Errors: PL_ERR_INVALID_ARG, PL_ERR_TOO_LARGE (the transport's
 * topic limit), PL_ERR_STATE (closing), PL_ERR_NOMEM. */
PL_EXPORT pl_err pl_transport_subscribe(pl_transport *t, const char *topic);

/* Remove a topic (idempotent); nothing more is delivered for it. Errors:
 * PL_ERR_INVALID_ARG, PL_ERR_STATE (closing), PL_ERR_NOMEM. */
PL_EXPORT pl_err pl_transport_unsubscribe(pl_transport *t, const char *topic);

/* Current state; *err (may be NULL) gets the reason of the last failure
 * (PL_OK while CONNECTED). */
PL_EXPORT pl_transport_state pl_transport_get_state(const pl_transport *t, pl_err *err);

/* Publishes accepted and not yet taken by the network (acknowledged by the
 * relay, handed to a peer). A process that wants its last message to get
 * out closes with a flush (below) rather than polling this. */
PL_EXPORT size_t pl_transport_pending(const pl_transport *t);

/* ---- holding outgoing traffic (group commit) ----
 * A runtime that gathers the store writes of a loop turn into one
 * transaction must not let a message that depends on one of them leave
 * before that transaction commits (a reply sent, then lost from the store by
 * a crash, would be answered again or forgotten). While a transport is held
 * it takes publishes, subscriptions and unsubscriptions as usual (checked,
 * queued, their errors returned at once) but puts nothing on the network;
 * when the last hold is released, what waits goes out in order. Holds nest.
 * pl_transport_can_hold() says whether the implementation supports it;
 * pl_transport_hold() on one that does not is misuse. A transport closed
 * while held sends nothing more: the close's flush gives up at its
 * deadline. */
PL_EXPORT bool pl_transport_can_hold(const pl_transport *t);
PL_EXPORT void pl_transport_hold(pl_transport *t);
PL_EXPORT void pl_transport_release(pl_transport *t);
PL_EXPORT bool pl_transport_held(const pl_transport *t);

/* The implementation's name ("wc-relay", "loopback", "waku"); never NULL. */
PL_EXPORT const char *pl_transport_name(const pl_transport *t);

/* The driver the transport runs on. */
PL_EXPORT pl_driver *pl_transport_driver(const pl_transport *t);

/* Flush, then close. From this call on publish/subscribe/unsubscribe fail
 * with PL_ERR_STATE and the handler is no longer called. The transport keeps
 * working on what is pending until pl_transport_pending() is 0, the
 * transport is CLOSED by the network, or flush_ms have passed (0: close at
 * once; what is still pending is dropped). Then it closes its connections
 * and releases everything; on_closed (may be NULL) runs from the driver
 * afterwards, never inside this call, and `t` is freed. Calling it twice is
 * misuse. */
PL_EXPORT void pl_transport_close(pl_transport *t, int64_t flush_ms,
                                  pl_transport_closed_fn on_closed, void *ud);

/* True if `topic` is a valid topic name (see above). */
PL_EXPORT bool pl_transport_topic_valid(const char *topic);

/* ---- implementing a transport ---- */

typedef struct pl_transport_ops {
    const char *name;
    /* Arguments are checked by the generic function first (topic valid,
     * data non-NULL unless len is 0, not closing); opts is never NULL. */
    pl_err (*publish)(pl_transport *t, const char *topic, const uint8_t *data, size_t len,
                      const pl_publish_opts *opts);
    pl_err (*subscribe)(pl_transport *t, const char *topic);
    pl_err (*unsubscribe)(pl_transport *t, const char *topic);
    pl_transport_state (*state)(const pl_transport *t, pl_err *err);
    size_t (*pending)(const pl_transport *t);
    /* Close now: drop what is pending, close connections, release
     * everything, then call done(t) from the driver (never inside this
     * call). After done, the implementation's memory must not be touched by
     * anyone: done frees it. */
    void (*close)(pl_transport *t, void (*done)(pl_transport *t));
    /* Free the implementation's object (the pl_transport is inside it):
     * called by the generic code after done. */
    void (*free)(pl_transport *t);
    /* Optional: the last hold was released (see pl_transport_hold): send
     * what waits. An implementation that has it checks pl_transport_held()
     * before it puts anything on the network. */
    void (*release)(pl_transport *t);
} pl_transport_ops;

/* The handle. Implementations embed it; users only hold pointers to it. */
struct pl_transport {
    const pl_transport_ops *ops;
    pl_driver *driver;
    /* Private to the generic code (src/transport/transport.c). */
    pl_transport_handler handler_;
    bool closing_;
    pl_transport_closed_fn on_closed_;
    void *closed_ud_;
    struct pl__transport_close *close_;
    unsigned holds_;
};

/* Initialise the embedded handle (handler h may be NULL). */
PL_EXPORT void pl_transport_init(pl_transport *t, const pl_transport_ops *ops, pl_driver *driver,
                                 const pl_transport_handler *h);

/* For implementations: hand a message to the handler (dropped while
 * closing or without a handler). Call from the driver only, never from
 * inside an operation of the table. info may be NULL (all zero). */
PL_EXPORT void pl_transport_deliver(pl_transport *t, const char *topic, const uint8_t *data,
                                    size_t len, const pl_delivery_info *info);

/* For implementations: report a state change (not while closing). Same
 * calling rule as pl_transport_deliver. */
PL_EXPORT void pl_transport_report_state(pl_transport *t, pl_transport_state state, pl_err err);

/* For implementations: report a publish the network will not carry (not
 * while closing). Same calling rule as pl_transport_deliver. */
PL_EXPORT void pl_transport_report_publish_error(pl_transport *t, const char *topic, pl_err err,
                                                 int64_t code);

/* For implementations: true once pl_transport_close() was called. */
PL_EXPORT bool pl_transport_is_closing(const pl_transport *t);

#ifdef __cplusplus
}
#endif
#endif
