/* SPDX-License-Identifier: Apache-2.0 */
/* State shared by the two muxers behind src/p2p/mux.h. mux.c owns what is
 * common (limits, the output buffer, the event queue, the stream tables,
 * failure); yamux.c and mplex.c speak the wire protocols. Private to
 * src/p2p. */
#ifndef PL_P2P_MUX_INTERNAL_H
#define PL_P2P_MUX_INTERNAL_H

#include "p2p/mux.h"

/* Payload bytes per data frame we send: a frame with its header (yamux 12,
 * mplex at most 13 bytes) fits one Noise message (65535 bytes less the
 * 16-byte tag), though the layer above may split frames anywhere. */
#define PL__MUX_SEND_FRAME (64u * 1024u - 64u)
/* Control frames (ACKs, window updates, pings, resets) may go beyond
 * max_output by this much; past it the peer is making us answer faster
 * than our output drains, and the connection fails (PL_ERR_P2P_BACKPRESSURE). */
#define PL__MUX_CTRL_SLACK (256u * 1024u)
/* Events waiting for pl__mux_poll. DATA events of one stream that follow one
 * another merge into one, so only a peer that churns streams or a caller
 * that never polls gets near this; past it the connection fails. */
#define PL__MUX_MAX_EVENTS 65536u
/* Keys of the last removed streams: frames still in flight for them are
 * dropped quietly (not answered, not counted). */
#define PL__MUX_RECENT 128u
/* Frames for streams neither open nor recently removed, per connection;
 * past this the peer is probing or confused and the connection fails. */
#define PL__MUX_MAX_UNKNOWN 1024u

typedef struct pl__mux_stream {
    uint32_t handle;
    uint64_t key;     /* yamux: the stream id; mplex: id << 1 | opened by the peer */
    uint64_t wire_id; /* mplex: the stream id on the wire */
    bool inbound;     /* opened by the peer */
    bool local_closed, remote_closed;
    bool want_writable; /* a write came up short: WRITABLE is owed */
    size_t unconsumed;  /* DATA handed up, not yet pl__mux_consumed */
    /* yamux flow control */
    uint32_t recv_window; /* bytes the peer may still send */
    uint32_t owed;        /* consumed, not yet granted back */
    uint64_t send_window; /* bytes we may still send */
} pl__mux_stream;

/* Open addressing, linear probing, backward-shift deletion (no tombstones,
 * so churn does not degrade it). */
typedef struct pl__mux_map {
    uint64_t *keys;
    pl__mux_stream **vals;
    size_t cap, n;
} pl__mux_map;

typedef struct pl__mux_qev {
    pl__mux_event_kind kind;
    uint32_t handle;
    uint64_t off; /* DATA: logical offset of the payload in the arena */
    size_t len;
    pl_err err;
    int64_t rtt_ms;
    bool dropped; /* its stream was reset by us after it was queued */
} pl__mux_qev;

struct pl__mux {
    pl__mux_kind kind;
    bool initiator;
    pl__mux_limits lim; /* defaults resolved */
    pl_err failed;      /* PL_OK while the connection is usable */
    bool local_goaway, peer_goaway;

    /* bytes for the peer: out[out_head .. out_len) */
    uint8_t *out;
    size_t out_head, out_len, out_cap;
    bool out_blocked; /* a write stopped at max_output */

    /* events: a ring, and an arena of DATA payloads. Offsets are logical
     * (arena[0] is offset arena_base) so compaction is one memmove. */
    pl__mux_qev *evq;
    size_t ev_head, ev_n, ev_cap;
    uint8_t *arena;
    size_t arena_len, arena_cap;
    uint64_t arena_base, arena_release;

    pl__mux_map by_handle;
    pl__mux_map by_key; /* mplex only (yamux key == handle) */
    size_t n_inbound, n_outbound;
    uint64_t recent[PL__MUX_RECENT];
    size_t recent_n, recent_pos;
    uint32_t unknown_frames;

    /* receive state */
    uint8_t rx_hdr[12];
    size_t rx_hdr_len;
    int rx_phase;       /* mplex: 0 header varint, 1 length varint, 2 body */
    uint64_t rx_v;      /* mplex varint being read */
    unsigned rx_shift;  /* its bit position */
    uint64_t rx_header; /* mplex: id << 3 | flag */
    uint64_t rx_left;   /* body bytes still to come */
    uint64_t rx_key;    /* stream the body belongs to */
    bool rx_deliver;    /* else the body is skipped */
    bool rx_fin;        /* yamux: FIN rode on this DATA frame */

    /* yamux */
    uint32_t next_id;
    bool ping_out;
    uint32_t ping_val, ping_ctr;
    int64_t ping_sent_ms, last_rx_ms;

    /* mplex */
    uint64_t next_wire_id;
    uint32_t next_handle;
};

/* ---- mux.c: common machinery ---------------------------------------- */

/* Mark the connection failed (first error wins), queue the FAILED event and
 * let the protocol say goodbye; returns the error in force. */
pl_err pl__mux_fail(pl__mux *m, pl_err err);
pl_err pl__mux_emit(pl__mux *m, pl__mux_event_kind kind, uint32_t handle, pl_err err);
pl_err pl__mux_emit_goaway(pl__mux *m, uint32_t code);
pl_err pl__mux_emit_ping(pl__mux *m, int64_t rtt_ms);
pl_err pl__mux_emit_data(pl__mux *m, uint32_t handle, const uint8_t *data, size_t len);

/* Room for data frames under max_output. */
size_t pl__mux_out_room(const pl__mux *m);
/* n bytes at the end of the output (NULL: out of memory). */
uint8_t *pl__mux_out_grow(pl__mux *m, size_t n);
/* Append a control frame; fails the connection past max_output + slack.
 * force skips that check (the last GO_AWAY). */
pl_err pl__mux_out_ctrl(pl__mux *m, const uint8_t *frame, size_t n, bool force);

pl__mux_stream *pl__mux_find(const pl__mux *m, uint32_t handle);
pl__mux_stream *pl__mux_find_key(const pl__mux *m, uint64_t key);
pl_err pl__mux_stream_add(pl__mux *m, uint32_t handle, uint64_t key, bool inbound,
                          pl__mux_stream **out);
/* Forget a stream; its key goes to the recent list. */
void pl__mux_stream_remove(pl__mux *m, pl__mux_stream *s);
bool pl__mux_recent_has(const pl__mux *m, uint64_t key);
void pl__mux_recent_add(pl__mux *m, uint64_t key);
/* A frame for a stream we do not know and did not just remove: counts it;
 * PL_ERR_P2P_MUXER past PL__MUX_MAX_UNKNOWN. */
pl_err pl__mux_count_unknown(pl__mux *m);
/* Emit WRITABLE if it is owed and writing can make progress. */
pl_err pl__mux_maybe_writable(pl__mux *m, pl__mux_stream *s);

/* ---- yamux.c / mplex.c ------------------------------------------------ */

pl_err pl__yamux_recv(pl__mux *m, const uint8_t *data, size_t len, int64_t now_ms);
pl_err pl__yamux_open(pl__mux *m, uint32_t *handle);
pl_err pl__yamux_write(pl__mux *m, pl__mux_stream *s, const uint8_t *data, size_t len,
                       size_t *taken);
pl_err pl__yamux_close_write(pl__mux *m, pl__mux_stream *s);
pl_err pl__yamux_reset(pl__mux *m, pl__mux_stream *s);
void pl__yamux_consumed(pl__mux *m, pl__mux_stream *s, size_t n);
void pl__yamux_ping(pl__mux *m, int64_t now_ms);
void pl__yamux_go_away(pl__mux *m);
void pl__yamux_on_fail(pl__mux *m, pl_err err);
int64_t pl__yamux_next_deadline(const pl__mux *m);
void pl__yamux_on_timer(pl__mux *m, int64_t now_ms);

pl_err pl__mplex_recv(pl__mux *m, const uint8_t *data, size_t len);
pl_err pl__mplex_open(pl__mux *m, uint32_t *handle);
pl_err pl__mplex_write(pl__mux *m, pl__mux_stream *s, const uint8_t *data, size_t len,
                       size_t *taken);
pl_err pl__mplex_close_write(pl__mux *m, pl__mux_stream *s);
pl_err pl__mplex_reset(pl__mux *m, pl__mux_stream *s);

#endif
