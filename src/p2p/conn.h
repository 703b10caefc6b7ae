/* SPDX-License-Identifier: Apache-2.0 */
/* One libp2p connection over TCP, from the first byte to the last, as a
 * core without I/O: raw bytes and time in; raw bytes, events and a deadline
 * out. docs/p2p.md ("The connection core") states the contract; in short:
 *
 *   TCP bytes -> multistream-select (/noise) -> Noise XX (frames)
 *     -> multistream-select (/yamux/1.0.0 or /mplex/6.7.0, dialer offers in
 *        the configured order, listener accepts any it was given)
 *     -> muxer (src/p2p/mux.h) -> per stream: multistream-select
 *        (outbound: a list of protocol ids; inbound: checked against the
 *        registry of the layer above plus identify and ping)
 *     -> stream events: OPENED (with its protocol), READABLE, EOF,
 *        WRITABLE, CLOSED (with why).
 *
 * identify (/ipfs/id/1.0.0) is requested once the muxer is up and
 * answered whenever asked; ping (/ipfs/ping/1.0.0) is answered. Neither
 * shows up as a stream event; the remote's identify comes as IDENTIFIED.
 *
 * Buffers, all bounded: per stream a receive buffer (stream_recv_buffer)
 * read through peek/consume, whose consumption is what grows the peer's
 * yamux window (pl__mux_consumed), and a send buffer (stream_send_buffer);
 * per connection the raw output (max_output): above it the core stops
 * taking muxer output, and the muxer stops taking stream data, so a peer
 * that does not read makes writes return less, never queues grow.
 *
 * Handles: streams are named by their muxer handle (never reused within a
 * connection). A handle stays valid until its CLOSED event was polled, or
 * until the caller reset it. Events are polled; events of a stream that
 * is gone by then are dropped.
 *
 * Closing: an error (a peer's protocol violation, a time-out) or
 * pl__conn_close ends the connection: CLOSED streams, then the
 * connection's CLOSED event with the reason; the caller then sends what
 * pl__conn_output still holds (a yamux GO_AWAY) and closes the socket.
 *
 * One object per connection, one thread. Private to the library. */
#ifndef PL_P2P_CONN_H
#define PL_P2P_CONN_H

#include "core/internal.h"
#include "p2p/identify.h"
#include "p2p/multiaddr.h"
#include "p2p/mux.h"
#include "p2p/noise_xx.h"
#include "pairlink/p2p.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Defaults (0 in a config field means the default). */
#define PL__CONN_DEF_HANDSHAKE_MS 10000   /* TCP connected -> muxer agreed */
#define PL__CONN_DEF_NEGOTIATION_MS 10000 /* each stream's multistream-select */
#define PL__CONN_DEF_IDENTIFY_MS 15000    /* identify request -> answer */
#define PL__CONN_DEF_STREAM_RECV (1u << 20)
#define PL__CONN_DEF_STREAM_SEND (1u << 20)
#define PL__CONN_DEF_MAX_OUTPUT (1u << 20)
#define PL__CONN_MUX_OUTPUT (256u * 1024u) /* the muxer's own output cap */

/* The protocols the layer above serves on inbound streams. */
typedef struct pl__conn_registry {
    bool (*supports)(void *ud, const char *proto, size_t len);
    /* All of them, for identify: *protos valid until the next call. */
    size_t (*list)(void *ud, const char *const **protos);
    void *ud;
} pl__conn_registry;

typedef struct pl__conn_config {
    bool initiator;                    /* we dialed */
    const pl__nxx_identity *identity;  /* required; outlives the connection */
    const pl_p2p_key *key;             /* required: for identify's publicKey */
    pl_p2p_peer_id expected_peer;      /* dialer: the /p2p/ id; len 0 for any */
    pl__mux_kind muxers[2];            /* in order of preference; 0 ends the list */
    const pl__conn_registry *registry; /* may be NULL: only identify and ping */
    const pl__ma *listen_addrs;        /* ours, for identify; outlive the connection */
    size_t nlisten_addrs;
    pl__ma observed;           /* the peer's address as we see it (len 0: none) */
    const char *agent_version; /* NULL: "pairlink/" PL_VERSION_STRING */
    const uint8_t *ephemeral;  /* tests: the Noise ephemeral key; NULL random */
    int64_t handshake_timeout_ms;
    int64_t negotiation_timeout_ms;
    int64_t identify_timeout_ms;
    size_t stream_recv_buffer;
    size_t stream_send_buffer;
    size_t max_output;
    pl__mux_limits mux; /* max_output is set by the core */
} pl__conn_config;

typedef enum pl__conn_event_kind {
    PL__CONN_EV_SECURED = 1,     /* Noise done: the remote peer id is known */
    PL__CONN_EV_READY,           /* the muxer is agreed: streams may be opened */
    PL__CONN_EV_IDENTIFIED,      /* the remote's identify arrived (err PL_OK) or not (err) */
    PL__CONN_EV_STREAM_OPENED,   /* stream, inbound, protocol: negotiated */
    PL__CONN_EV_STREAM_READABLE, /* stream: new bytes to peek */
    PL__CONN_EV_STREAM_EOF,      /* stream: the peer will send nothing more */
    PL__CONN_EV_STREAM_WRITABLE, /* stream: send space came back after a short write */
    PL__CONN_EV_STREAM_CLOSED,   /* stream gone: err PL_OK (both sides closed, all read),
                                    PL_ERR_P2P_STREAM_RESET, PL_ERR_P2P_NEGOTIATION,
                                    PL_ERR_TIMEOUT, PL_ERR_P2P_BACKPRESSURE,
                                    PL_ERR_CLOSED (the connection ended) */
    PL__CONN_EV_CLOSED,          /* the connection is over: err (PL_ERR_CLOSED: by us or an
                                    orderly end) */
} pl__conn_event_kind;

typedef struct pl__conn_event {
    pl__conn_event_kind kind;
    uint32_t stream;
    bool inbound;
    const char *protocol; /* STREAM_OPENED; valid while the stream lives */
    pl_err err;
} pl__conn_event;

typedef struct pl__conn pl__conn;

/* The first bytes to send (the dialer's multistream hello) are ready at
 * once. Errors: PL_ERR_INVALID_ARG (no muxer), PL_ERR_NOMEM. */
pl_err pl__conn_new(pl__conn **out, const pl__conn_config *cfg, int64_t now_ms);
void pl__conn_free(pl__conn *c);

/* Bytes from the socket, any split. Returns PL_OK or the error that ended
 * the connection (also reported by the CLOSED event). */
pl_err pl__conn_recv(pl__conn *c, const uint8_t *data, size_t len, int64_t now_ms);
/* The socket reached its end (the peer closed). */
void pl__conn_recv_eof(pl__conn *c, int64_t now_ms);

/* Bytes to send; *data valid until the next call on c. */
size_t pl__conn_output(pl__conn *c, const uint8_t **data);
void pl__conn_output_done(pl__conn *c, size_t n, int64_t now_ms);

bool pl__conn_poll(pl__conn *c, pl__conn_event *ev);

int64_t pl__conn_next_deadline(const pl__conn *c);
void pl__conn_on_timer(pl__conn *c, int64_t now_ms);

/* End the connection: streams are closed (CLOSED events, PL_ERR_CLOSED),
 * the muxer says GO_AWAY, and the CLOSED event carries `reason`.
 * Idempotent. */
void pl__conn_close(pl__conn *c, pl_err reason, int64_t now_ms);
/* True once CLOSED was reported: nothing will be read or written but what
 * pl__conn_output still holds. */
bool pl__conn_is_closed(const pl__conn *c);
/* The error that ended it (PL_OK while open). */
pl_err pl__conn_error(const pl__conn *c);

/* After SECURED: the remote peer. After IDENTIFIED with PL_OK: its
 * identify (valid while c lives), else NULL. */
const pl_p2p_peer_id *pl__conn_remote_peer(const pl__conn *c);
const pl_p2p_identify *pl__conn_identify(const pl__conn *c);
pl__mux_kind pl__conn_muxer(const pl__conn *c); /* 0 before READY */

/* ---- streams ---- */

/* Open a stream proposing protos[0..n) in order (each 1..1023 bytes,
 * copied). OPENED follows on success, CLOSED (PL_ERR_P2P_NEGOTIATION,
 * PL_ERR_TIMEOUT) otherwise. Bytes written before OPENED wait in the
 * send buffer. Errors: PL_ERR_STATE (not READY or closed),
 * PL_ERR_INVALID_ARG (a bad or empty list), PL_ERR_P2P_STREAM_LIMIT,
 * PL_ERR_P2P_GOAWAY, PL_ERR_NOMEM. */
pl_err pl__conn_stream_open(pl__conn *c, const char *const *protos, size_t n, int64_t now_ms,
                            uint32_t *stream);

/* Take up to len bytes into the send buffer; *taken says how many (0 when
 * full: WRITABLE follows). PL_ERR_NOT_FOUND (no such stream),
 * PL_ERR_CLOSED (we closed our side), PL_ERR_NOMEM. */
pl_err pl__conn_stream_write(pl__conn *c, uint32_t stream, const uint8_t *data, size_t len,
                             size_t *taken);
/* Ask for WRITABLE once half the send buffer is free (a caller that
 * refused to write a part of a message). */
void pl__conn_stream_want_writable(pl__conn *c, uint32_t stream);
/* Free room in the send buffer right now (0 for an unknown stream). */
size_t pl__conn_stream_send_space(const pl__conn *c, uint32_t stream);

/* Unread bytes: *data valid until the next call that is not a peek. */
size_t pl__conn_stream_peek(const pl__conn *c, uint32_t stream, const uint8_t **data);
/* The reader took n of them (n <= what peek showed). */
void pl__conn_stream_consume(pl__conn *c, uint32_t stream, size_t n, int64_t now_ms);

/* Close our writing side once the send buffer is out (FIN). Idempotent.
 * PL_ERR_NOT_FOUND. */
pl_err pl__conn_stream_close(pl__conn *c, uint32_t stream, int64_t now_ms);
/* Abort the stream; it is gone at once, no event follows. PL_ERR_NOT_FOUND. */
pl_err pl__conn_stream_reset(pl__conn *c, uint32_t stream, int64_t now_ms);

const char *pl__conn_stream_protocol(const pl__conn *c, uint32_t stream);
size_t pl__conn_stream_count(const pl__conn *c); /* including identify / ping */

#endif
