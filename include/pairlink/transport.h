/* The transport interface: what a pairing engine needs from a pub/sub
 * network. Implemented by the WalletConnect relay client (runtime) and, for
 * tests, by in-memory loopbacks; the Waku transport implements it too.
 *
 * The engine calls these functions synchronously from within its own calls;
 * an implementation must not call back into the engine from inside them
 * (queue the work on the event loop instead). Deliveries go the other way:
 * the runtime calls the engine's on_message function. */
#ifndef PAIRLINK_TRANSPORT_H
#define PAIRLINK_TRANSPORT_H

#include "pairlink/common.h"

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pl_publish_opts {
    uint32_t ttl; /* seconds the relay keeps the message for late subscribers */
    uint32_t tag; /* WalletConnect relay tag (routing/push hint) */
    bool prompt;  /* ask the relay to push-notify the wallet */
} pl_publish_opts;

typedef struct pl_transport {
    void *ctx;
    /* Queue `message` (NUL-terminated text, e.g. a base64 envelope) on `topic`.
     * Returns PL_OK once queued; delivery is at-least-once and asynchronous.
     * The implementation copies what it keeps. */
    pl_err (*publish)(void *ctx, const char *topic, const char *message,
                      const pl_publish_opts *opts);
    /* Subscribe to a topic (idempotent). Kept across reconnects. */
    pl_err (*subscribe)(void *ctx, const char *topic);
    /* Unsubscribe (idempotent). */
    pl_err (*unsubscribe)(void *ctx, const char *topic);
} pl_transport;

#ifdef __cplusplus
}
#endif
#endif
