/* SPDX-License-Identifier: Apache-2.0 */
/* multistream-select 1.0 (libp2p/specs connections), both roles, as a core:
 * bytes and time in, bytes and a result out.
 *
 * Every message is uvarint(len) | text | '\n' (len counts the newline),
 * at most PL__MSS_MAX_LINE bytes. The dialer sends the header
 * "/multistream/1.0.0" and its first proposal in one go, and the next
 * proposal after each "na". The listener sends the header at once, then
 * answers each proposal with an echo (accepted) or "na", up to
 * PL__MSS_MAX_ROUNDS proposals.
 *
 * Trailing data: pl__mss_recv stops right after the message that completes
 * the negotiation and reports how many bytes it used; the rest belongs to
 * the negotiated protocol (js pipelines the header, the proposal and the
 * first data of an optimistic stream into one write).
 *
 * Time: a negotiation has one deadline, given at init; pl__mss_on_timer
 * fails it with PL_ERR_TIMEOUT once passed.
 *
 * One object per negotiation, one thread. Private to the library. */
#ifndef PL_P2P_MSS_H
#define PL_P2P_MSS_H

#include "core/internal.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PL__MSS_HEADER "/multistream/1.0.0"
#define PL__MSS_MAX_LINE 1024 /* bytes of one message, newline included */
#define PL__MSS_MAX_PROTOCOL (PL__MSS_MAX_LINE - 1)
#define PL__MSS_MAX_PROPOSALS 16 /* a dialer's list */
#define PL__MSS_MAX_ROUNDS 16    /* proposals a listener answers before giving up */

typedef enum pl__mss_state {
    PL__MSS_PENDING = 0,
    PL__MSS_DONE,
    PL__MSS_FAILED,
} pl__mss_state;

/* Listener: is this protocol id (len bytes, no newline, not
 * NUL-terminated) served? */
typedef bool (*pl__mss_supports_fn)(void *ud, const char *proto, size_t len);

typedef struct pl__mss pl__mss;

/* A protocol id we may send: 1..PL__MSS_MAX_PROTOCOL bytes of UTF-8
 * without newline or NUL. */
bool pl__mss_protocol_ok(const char *proto);

/* Dialer: propose protos[0..n) in order (each pl__mss_protocol_ok; the
 * strings must outlive the object). Listener: answer with `supports`.
 * The first output (header, and the dialer's first proposal) is ready at
 * once. Errors: PL_ERR_INVALID_ARG (no or bad proposals), PL_ERR_NOMEM. */
pl_err pl__mss_new_dialer(pl__mss **out, const char *const *protos, size_t n, int64_t now_ms,
                          int64_t timeout_ms);
pl_err pl__mss_new_listener(pl__mss **out, pl__mss_supports_fn supports, void *ud, int64_t now_ms,
                            int64_t timeout_ms);
void pl__mss_free(pl__mss *m);

/* Feed bytes from the peer. *used gets how many were consumed; it is less
 * than len only when the negotiation finished and the rest is the next
 * layer's. Returns PL_OK (pending or done), or the failure, after which
 * the state is FAILED for good: PL_ERR_P2P_MULTISTREAM (bad framing, a
 * line above the cap, a wrong header, an unexpected answer),
 * PL_ERR_P2P_NEGOTIATION (the listener refused every proposal, or a dialer
 * made too many), PL_ERR_NOMEM. */
pl_err pl__mss_recv(pl__mss *m, const uint8_t *data, size_t len, size_t *used);

pl__mss_state pl__mss_state_of(const pl__mss *m);
pl_err pl__mss_error(const pl__mss *m);

/* DONE: the protocol agreed on (NUL-terminated; valid while m lives), and
 * for a dialer its index in the proposals. */
const char *pl__mss_protocol(const pl__mss *m);
size_t pl__mss_chosen(const pl__mss *m);

/* Bytes to send; *data valid until the next call. */
size_t pl__mss_output(pl__mss *m, const uint8_t **data);
void pl__mss_output_done(pl__mss *m, size_t n);

int64_t pl__mss_deadline(const pl__mss *m);
void pl__mss_on_timer(pl__mss *m, int64_t now_ms);

#endif
