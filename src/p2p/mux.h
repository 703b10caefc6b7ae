/* SPDX-License-Identifier: Apache-2.0 */
/* Stream multiplexers of a libp2p connection: yamux 1.0.0 and mplex 6.7.0
 * behind one interface, so that the connection core (conn.c) does not care
 * which one the peers negotiated.
 *
 * A muxer is a protocol core: no I/O, no clock. It sits on top of the
 * secure channel (Noise): plaintext bytes from the peer go in with
 * pl__mux_recv(); frames to send come out of pl__mux_output(); stream
 * events come out of pl__mux_poll(). Time is a parameter (yamux keep-alive
 * pings and their time-outs).
 *
 * Stream handles: a muxer names each stream by a uint32_t handle that is
 * unique within the connection for the connection's life (yamux: the wire
 * stream id; mplex: its own numbering, because mplex ids are only unique
 * per initiator). Handles of closed streams are not reused by the muxer.
 * Handle 0 is never used. Once both sides closed a stream, or it was reset,
 * its handle is unknown (PL_ERR_NOT_FOUND; pl__mux_consumed ignores it).
 *
 * Receive side flow control: DATA events hand bytes up at once; the layer
 * above buffers them and calls pl__mux_consumed() as its reader takes them.
 * yamux turns that into WINDOW_UPDATE frames, so a peer never has more than
 * the window (256 KiB) in flight per stream; a peer that sends beyond the
 * window is a protocol violation (PL_ERR_P2P_WINDOW). mplex has no flow
 * control: the muxer resets a stream whose unconsumed bytes pass
 * limits.max_stream_buffer, as js-libp2p does, and reports RESET for it.
 *
 * Send side: pl__mux_write() takes as many bytes as the stream's send window
 * and the output cap allow and returns how many it took; the caller keeps
 * the rest and retries after a WRITABLE event for that stream.
 *
 * One object is used from one thread. Private to the library. */
#ifndef PL_P2P_MUX_H
#define PL_P2P_MUX_H

#include "core/internal.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PL_MUX_YAMUX_PROTOCOL "/yamux/1.0.0"
#define PL_MUX_MPLEX_PROTOCOL "/mplex/6.7.0"

#define PL_MUX_YAMUX_WINDOW (256u * 1024u)     /* initial and steady receive window */
#define PL_MUX_MAX_FRAME (1u << 20)            /* largest data frame accepted (mplex; js: 1 MiB) */
#define PL_MUX_DEF_MAX_STREAMS 256             /* open streams per connection */
#define PL_MUX_DEF_MAX_STREAM_BUFFER (4u << 20) /* mplex: unconsumed bytes per stream */
#define PL_MUX_DEF_MAX_OUTPUT (4u << 20)       /* bytes waiting in pl__mux_output */
#define PL_MUX_DEF_PING_INTERVAL_MS 30000      /* yamux keep-alive (js: 30 s) */
#define PL_MUX_DEF_PING_TIMEOUT_MS 15000       /* no ACK by then: PL_ERR_TIMEOUT */

typedef enum pl__mux_kind {
    PL__MUX_YAMUX = 1,
    PL__MUX_MPLEX = 2,
} pl__mux_kind;

/* Zero in a field means the default above. max_streams applies to each
 * direction separately (inbound refused, outbound PL_ERR_P2P_STREAM_LIMIT),
 * so a peer cannot starve us of streams. ping_timeout_ms < 0: no time-out. */
typedef struct pl__mux_limits {
    uint32_t max_streams;       /* inbound beyond this are refused (yamux RST, mplex reset) */
    size_t max_stream_buffer;   /* mplex only, see above */
    size_t max_output;          /* cap of the output buffer; writes stop at it */
    int64_t ping_interval_ms;   /* yamux: silence before we ping; <0 disables pings */
    int64_t ping_timeout_ms;
} pl__mux_limits;

typedef enum pl__mux_event_kind {
    PL__MUX_EV_STREAM_OPENED = 1, /* the peer opened a stream: handle */
    PL__MUX_EV_DATA,              /* handle, data, len (valid until the next call) */
    PL__MUX_EV_EOF,               /* the peer closed its writing side (FIN / close) */
    PL__MUX_EV_RESET,             /* the stream is gone (peer RST, or mplex buffer cap): err */
    PL__MUX_EV_WRITABLE,          /* send window or output space came back for handle */
    PL__MUX_EV_PING,              /* yamux: our ping answered; rtt_ms */
    PL__MUX_EV_GOAWAY,            /* the peer will open no more streams: err
                                   * PL_ERR_P2P_GOAWAY, len = yamux code (0 normal,
                                   * 1 protocol error, 2 internal error) */
    PL__MUX_EV_FAILED,            /* connection-level error: err; the connection must close */
} pl__mux_event_kind;

typedef struct pl__mux_event {
    pl__mux_event_kind kind;
    uint32_t handle;
    const uint8_t *data;
    size_t len;
    pl_err err;
    int64_t rtt_ms;
} pl__mux_event;

typedef struct pl__mux pl__mux;

/* initiator: the side that dialed the connection (yamux odd ids, mplex
 * "initiator" flags are per stream, not per connection). */
pl_err pl__mux_new(pl__mux **out, pl__mux_kind kind, bool initiator,
                   const pl__mux_limits *limits, int64_t now_ms);
void pl__mux_free(pl__mux *m);
pl__mux_kind pl__mux_kind_of(const pl__mux *m);

/* Plaintext bytes from the peer, any split. Returns PL_OK, or the
 * connection-level error that also comes as a FAILED event
 * (PL_ERR_P2P_MUXER, PL_ERR_P2P_WINDOW, PL_ERR_P2P_FRAME, PL_ERR_NOMEM);
 * after an error the muxer accepts nothing more. */
pl_err pl__mux_recv(pl__mux *m, const uint8_t *data, size_t len, int64_t now_ms);

/* Open an outbound stream: yamux sends a WINDOW_UPDATE with SYN at once (as
 * js-libp2p does; inbound, a SYN is accepted on DATA or WINDOW_UPDATE);
 * mplex sends NEW_STREAM at once. Errors: PL_ERR_P2P_STREAM_LIMIT,
 * PL_ERR_P2P_GOAWAY (we or the peer are going away), PL_ERR_STATE (failed),
 * PL_ERR_P2P_BACKPRESSURE (output far beyond max_output: drain it first). */
pl_err pl__mux_open(pl__mux *m, uint32_t *handle);

/* Queue up to len bytes on a stream; *taken gets how many were accepted
 * (0 when the window or output is full: wait for WRITABLE). Errors:
 * PL_ERR_NOT_FOUND (unknown or reset handle), PL_ERR_CLOSED (we closed
 * our writing side), PL_ERR_STATE (the connection failed). */
pl_err pl__mux_write(pl__mux *m, uint32_t handle, const uint8_t *data, size_t len,
                     size_t *taken);

/* Close our writing side (yamux FIN, mplex CLOSE). The stream is gone once
 * both sides closed. Idempotent. PL_ERR_NOT_FOUND. */
pl_err pl__mux_close_write(pl__mux *m, uint32_t handle);

/* Abort a stream (yamux RST, mplex RESET); no event follows for it.
 * PL_ERR_NOT_FOUND. */
pl_err pl__mux_reset(pl__mux *m, uint32_t handle);

/* The reader above took n bytes of this stream's DATA: yamux grows the
 * peer's window (WINDOW_UPDATE once at least half a window is owed). n is
 * clamped to the bytes handed up and not yet reported. */
void pl__mux_consumed(pl__mux *m, uint32_t handle, size_t n);

/* Send a ping (yamux; no-op for mplex). The answer comes as a PING event. */
void pl__mux_ping(pl__mux *m, int64_t now_ms);

/* Refuse new streams from now on and tell the peer (yamux GO_AWAY normal;
 * mplex: nothing on the wire). Existing streams keep working. */
void pl__mux_go_away(pl__mux *m);

/* Bytes to send to the peer (through the secure channel). *data stays
 * valid until the next call on the muxer; pl__mux_output_done(m, n) says
 * that n of them were taken. */
size_t pl__mux_output(pl__mux *m, const uint8_t **data);
void pl__mux_output_done(pl__mux *m, size_t n);

/* Take the oldest event (false when none). Call after every other call.
 * A DATA event's bytes live inside the muxer until the next pl__mux_poll
 * or pl__mux_recv (longer than "the next call": write, consumed and output
 * calls leave them in place). */
bool pl__mux_poll(pl__mux *m, pl__mux_event *ev);

/* Keep-alive pings and their time-outs. */
int64_t pl__mux_next_deadline(const pl__mux *m);
void pl__mux_on_timer(pl__mux *m, int64_t now_ms);

/* Open streams (for limits and tests). */
size_t pl__mux_stream_count(const pl__mux *m);

#endif
