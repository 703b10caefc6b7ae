/* SPDX-License-Identifier: Apache-2.0 */
/* mplex 6.7.0 (libp2p/specs mplex/README.md).
 *
 * Frame: uvarint(id << 3 | flag) | uvarint(length) | length bytes. Flags 0
 * NewStream (body: a name), 1 MessageReceiver, 2 MessageInitiator, 3
 * CloseReceiver, 4 CloseInitiator, 5 ResetReceiver, 6 ResetInitiator. The
 * Receiver/Initiator half says which end of the stream wrote the frame, so a
 * stream is (id, who opened it): ids are numbered per initiator.
 *
 * What this implementation decided:
 *  - Ids: ours count 0, 1, 2, ... as js-libp2p's do; the NewStream name is
 *    the id in decimal (js does the same). Handles are our own numbering,
 *    1, 2, 3, ... for streams of both directions, never reused.
 *  - Limits: a frame body above PL_MUX_MAX_FRAME (1 MiB, js's limit), or a
 *    NewStream name above 1 KiB, or a varint longer than 64 bits is
 *    PL_ERR_P2P_FRAME; flag 7 is PL_ERR_P2P_MUXER, and so is a NewStream
 *    for an id that is open or was removed lately (reuse), or a message
 *    after the peer closed the stream. Bodies are passed up as they arrive,
 *    so a frame is never buffered whole; only varints are carried across
 *    pl__mux_recv calls.
 *  - Inbound streams beyond max_streams, or after pl__mux_go_away, are
 *    refused with ResetReceiver (no event).
 *  - Unknown streams: messages and closes for a stream that is not open are
 *    ignored, as js-libp2p does; those for a stream removed among the last
 *    PL__MUX_RECENT are not even counted (they were in flight when we
 *    reset it); others are counted and past PL__MUX_MAX_UNKNOWN the
 *    connection fails with PL_ERR_P2P_MUXER. A reset for an unknown stream
 *    is ignored.
 *  - Backpressure: mplex has no flow control. Each stream counts the bytes
 *    handed up in DATA events minus those reported by pl__mux_consumed;
 *    when a message would take that past max_stream_buffer, the stream is
 *    reset (our Reset frame goes out, its rest is dropped) and a RESET event
 *    with PL_ERR_P2P_BACKPRESSURE tells the layer above.
 *  - Closing is a half-close both ways; a stream is forgotten once both
 *    sides closed, or on a reset either way. pl__mux_go_away puts nothing on
 *    the wire. */
#include "p2p/mux_internal.h"

#include <stdio.h>
#include <string.h>

enum {
    NEW_STREAM = 0,
    MSG_RECEIVER = 1,
    MSG_INITIATOR = 2,
    CLOSE_RECEIVER = 3,
    CLOSE_INITIATOR = 4,
    RESET_RECEIVER = 5,
    RESET_INITIATOR = 6,
};
enum { PH_HEADER = 0, PH_LENGTH = 1, PH_BODY = 2 };

#define MAX_NAME 1024u
#define MAX_ID (UINT64_MAX >> 3)

static uint64_t key_of(uint64_t id, bool opened_by_peer) {
    return id << 1 | (opened_by_peer ? 1 : 0);
}

static size_t put_uvarint(uint8_t *p, uint64_t v) {
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

static size_t uvarint_len(uint64_t v) {
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* The flag we write on stream s: a Receiver flag on streams the peer opened. */
static unsigned our_flag(const pl__mux_stream *s, unsigned initiator_flag) {
    return s->inbound ? initiator_flag - 1 : initiator_flag;
}

static pl_err ctrl(pl__mux *m, uint64_t id, unsigned flag, const uint8_t *body, size_t len) {
    uint8_t f[20 + 32];
    size_t n = put_uvarint(f, id << 3 | flag);
    n += put_uvarint(f + n, len);
    if (len) memcpy(f + n, body, len);
    return pl__mux_out_ctrl(m, f, n + len, false);
}

static void skip_body(pl__mux *m, uint64_t len) {
    m->rx_left = len;
    m->rx_deliver = false;
}

static pl_err remote_close(pl__mux *m, pl__mux_stream *s) {
    if (s->remote_closed) return PL_OK;
    s->remote_closed = true;
    uint32_t h = s->handle;
    if (s->local_closed) pl__mux_stream_remove(m, s);
    return pl__mux_emit(m, PL__MUX_EV_EOF, h, PL_OK);
}

static pl_err on_new_stream(pl__mux *m, uint64_t id, uint64_t len) {
    if (len > MAX_NAME) return PL_ERR_P2P_FRAME;
    uint64_t key = key_of(id, true);
    if (pl__mux_find_key(m, key) || pl__mux_recent_has(m, key)) return PL_ERR_P2P_MUXER;
    skip_body(m, len); /* the name means nothing to us */
    if (m->local_goaway || m->n_inbound >= m->lim.max_streams || m->next_handle == 0) {
        pl__mux_recent_add(m, key);
        return ctrl(m, id, RESET_RECEIVER, NULL, 0);
    }
    pl__mux_stream *s;
    PL_TRY(pl__mux_stream_add(m, m->next_handle, key, true, &s));
    s->wire_id = id;
    m->next_handle++;
    return pl__mux_emit(m, PL__MUX_EV_STREAM_OPENED, s->handle, PL_OK);
}

static pl_err on_unknown(pl__mux *m, uint64_t key) {
    if (pl__mux_recent_has(m, key)) return PL_OK;
    PL_TRY(pl__mux_count_unknown(m));
    pl__mux_recent_add(m, key);
    return PL_OK;
}

/* Header and length read: act on the frame, set up its body. */
static pl_err on_frame(pl__mux *m, uint64_t len) {
    unsigned flag = (unsigned)(m->rx_header & 7);
    uint64_t id = m->rx_header >> 3;
    skip_body(m, len);
    if (flag == NEW_STREAM) return on_new_stream(m, id, len);
    if (flag > RESET_INITIATOR) return PL_ERR_P2P_MUXER;
    /* Initiator flags come from the end that opened the stream: the peer. */
    bool peer_opened = flag == MSG_INITIATOR || flag == CLOSE_INITIATOR || flag == RESET_INITIATOR;
    uint64_t key = key_of(id, peer_opened);
    pl__mux_stream *s = pl__mux_find_key(m, key);
    switch (flag) {
    case MSG_RECEIVER:
    case MSG_INITIATOR:
        if (!s) return on_unknown(m, key);
        if (s->remote_closed) return len ? PL_ERR_P2P_MUXER : PL_OK;
        m->rx_key = key;
        m->rx_deliver = true;
        return PL_OK;
    case CLOSE_RECEIVER:
    case CLOSE_INITIATOR:
        if (!s) return on_unknown(m, key);
        return remote_close(m, s);
    default: /* reset */
        if (!s) return PL_OK;
        uint32_t h = s->handle;
        pl__mux_stream_remove(m, s);
        return pl__mux_emit(m, PL__MUX_EV_RESET, h, PL_ERR_P2P_STREAM_RESET);
    }
}

/* Body bytes of a message for a stream that was open when its header came. */
static pl_err deliver(pl__mux *m, const uint8_t *data, size_t n) {
    pl__mux_stream *s = pl__mux_find_key(m, m->rx_key);
    if (!s) return PL_OK;
    if (n > m->lim.max_stream_buffer - s->unconsumed) {
        /* The reader is not keeping up and mplex cannot tell the writer to
         * slow down: give up on this stream rather than buffer without end. */
        uint32_t h = s->handle;
        uint64_t id = s->wire_id;
        unsigned flag = our_flag(s, RESET_INITIATOR);
        pl__mux_stream_remove(m, s);
        m->rx_deliver = false;
        PL_TRY(ctrl(m, id, flag, NULL, 0));
        return pl__mux_emit(m, PL__MUX_EV_RESET, h, PL_ERR_P2P_BACKPRESSURE);
    }
    s->unconsumed += n;
    return pl__mux_emit_data(m, s->handle, data, n);
}

/* One varint byte. 1: complete in *out; 0: more to come; -1: too long. */
static int varint_byte(pl__mux *m, uint8_t b, uint64_t *out) {
    if (m->rx_shift > 63 || (m->rx_shift == 63 && (b & 0x7f) > 1)) return -1;
    m->rx_v |= (uint64_t)(b & 0x7f) << m->rx_shift;
    if (b & 0x80) {
        m->rx_shift += 7;
        return 0;
    }
    *out = m->rx_v;
    m->rx_v = 0;
    m->rx_shift = 0;
    return 1;
}

pl_err pl__mplex_recv(pl__mux *m, const uint8_t *data, size_t len) {
    while (len) {
        if (m->rx_phase == PH_BODY) {
            size_t take = m->rx_left < len ? (size_t)m->rx_left : len;
            if (m->rx_deliver) PL_TRY(deliver(m, data, take));
            data += take;
            len -= take;
            m->rx_left -= take;
            if (!m->rx_left) m->rx_phase = PH_HEADER;
            continue;
        }
        uint64_t v;
        int r = varint_byte(m, *data++, &v);
        len--;
        if (r < 0) return PL_ERR_P2P_FRAME;
        /* Refuse an oversized length as soon as it shows. */
        if (m->rx_phase == PH_LENGTH && (r ? v : m->rx_v) > PL_MUX_MAX_FRAME)
            return PL_ERR_P2P_FRAME;
        if (!r) continue;
        if (m->rx_phase == PH_HEADER) {
            m->rx_header = v;
            m->rx_phase = PH_LENGTH;
            continue;
        }
        PL_TRY(on_frame(m, v));
        m->rx_phase = m->rx_left ? PH_BODY : PH_HEADER;
    }
    return PL_OK;
}

pl_err pl__mplex_open(pl__mux *m, uint32_t *handle) {
    if (m->next_handle == 0 || m->next_wire_id > MAX_ID) return PL_ERR_P2P_STREAM_LIMIT;
    uint64_t id = m->next_wire_id;
    pl__mux_stream *s;
    pl_err e = pl__mux_stream_add(m, m->next_handle, key_of(id, false), false, &s);
    if (e != PL_OK) return e;
    s->wire_id = id;
    m->next_handle++;
    m->next_wire_id++;
    char name[24];
    int n = snprintf(name, sizeof name, "%llu", (unsigned long long)id);
    e = ctrl(m, id, NEW_STREAM, (const uint8_t *)name, (size_t)n);
    if (e != PL_OK) return e;
    *handle = s->handle;
    return PL_OK;
}

pl_err pl__mplex_write(pl__mux *m, pl__mux_stream *s, const uint8_t *data, size_t len,
                       size_t *taken) {
    uint64_t head = s->wire_id << 3 | our_flag(s, MSG_INITIATOR);
    size_t hlen = uvarint_len(head);
    size_t done = 0;
    while (done < len) {
        size_t room = pl__mux_out_room(m);
        size_t over = hlen + uvarint_len(PL__MUX_SEND_FRAME);
        if (room <= over) {
            m->out_blocked = true;
            break;
        }
        size_t n = len - done;
        if (n > PL__MUX_SEND_FRAME) n = PL__MUX_SEND_FRAME;
        if (n > room - over) n = room - over;
        size_t flen = hlen + uvarint_len(n) + n;
        uint8_t *p = pl__mux_out_grow(m, flen);
        if (!p) {
            *taken = done;
            return pl__mux_fail(m, PL_ERR_NOMEM);
        }
        size_t k = put_uvarint(p, head);
        k += put_uvarint(p + k, n);
        memcpy(p + k, data + done, n);
        done += n;
    }
    *taken = done;
    return PL_OK;
}

pl_err pl__mplex_close_write(pl__mux *m, pl__mux_stream *s) {
    s->local_closed = true;
    pl_err e = ctrl(m, s->wire_id, our_flag(s, CLOSE_INITIATOR), NULL, 0);
    if (s->remote_closed) pl__mux_stream_remove(m, s);
    return e;
}

pl_err pl__mplex_reset(pl__mux *m, pl__mux_stream *s) {
    uint64_t id = s->wire_id;
    unsigned flag = our_flag(s, RESET_INITIATOR);
    pl__mux_stream_remove(m, s);
    return ctrl(m, id, flag, NULL, 0);
}
