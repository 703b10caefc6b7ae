/* SPDX-License-Identifier: Apache-2.0 */
/* yamux 1.0.0 (hashicorp/yamux spec.md, as libp2p uses it).
 *
 * Frame: 12-byte big-endian header ver(0) | type u8 | flags u16 | stream id
 * u32 | length u32, then `length` bytes for DATA only. Types 0 DATA, 1
 * WINDOW_UPDATE (length = window delta), 2 PING (length = opaque value), 3
 * GO_AWAY (length = code: 0 normal, 1 protocol error, 2 internal error).
 * Flags 1 SYN, 2 ACK, 4 FIN, 8 RST; other flag bits are ignored.
 *
 * What this implementation decided:
 *  - Ids: the dialer (initiator) opens odd ids from 1, the listener even ids
 *    from 2; the handle of a stream is its id. Stream 0 is the session: a
 *    DATA/WINDOW_UPDATE on id 0 is a protocol error; PING and GO_AWAY are
 *    accepted whatever id they carry.
 *  - Opening: WINDOW_UPDATE|SYN with delta 0 (js-libp2p does the same). An
 *    inbound SYN (on DATA or WINDOW_UPDATE) is accepted at once with
 *    WINDOW_UPDATE|ACK delta 0 and a STREAM_OPENED event, or refused with
 *    WINDOW_UPDATE|RST when max_streams inbound streams are open or either
 *    side sent GO_AWAY (no event; its id goes to the recent list).
 *  - Receive window: 256 KiB per stream, never more. DATA longer than what
 *    is left of it is PL_ERR_P2P_WINDOW (the connection fails). Consumed
 *    bytes are granted back in one WINDOW_UPDATE once at least half a window
 *    is owed; nothing is granted after the peer's FIN.
 *  - Send window: starts at 256 KiB plus whatever delta the peer's SYN/ACK
 *    carries, grows with its WINDOW_UPDATEs (a total beyond 2^32-1 is a
 *    protocol error). Writes take what fits in the window and under
 *    max_output, in frames of at most PL__MUX_SEND_FRAME payload bytes.
 *  - Closing: FIN and RST go out on WINDOW_UPDATE with delta 0. A stream is
 *    forgotten once both sides sent FIN, or on RST either way. DATA with a
 *    payload after the peer's FIN is a protocol error.
 *  - Unknown ids: a frame without SYN for an id that is not open and not
 *    among the last PL__MUX_RECENT removed ids is answered with RST (unless
 *    it carries RST itself: never answer a reset with a reset), remembered,
 *    and counted; past PL__MUX_MAX_UNKNOWN of them the connection fails
 *    with PL_ERR_P2P_MUXER. Frames for recently removed ids (a stream we
 *    reset, refused or closed, still in flight) are dropped quietly. A DATA
 *    payload for an unknown id is skipped, but may not exceed one window.
 *  - Protocol errors (PL_ERR_P2P_MUXER): version != 0, type > 3, SYN on an
 *    open id or on a recently removed one (reuse), SYN with our parity or
 *    id 0. On any connection failure except a ping time-out we send
 *    GO_AWAY (1 for protocol errors, 2 otherwise) before FAILED.
 *  - Pings: a SYN ping is answered with an ACK ping echoing the value. We
 *    ping after ping_interval_ms without receiving anything and fail with
 *    PL_ERR_TIMEOUT if the ACK is not back within ping_timeout_ms; one ping
 *    is outstanding at a time (pl__mux_ping while one is out does nothing).
 *  - GO_AWAY: pl__mux_go_away sends code 0 once; a received GO_AWAY gives
 *    one GOAWAY event (len = code). After either, no new streams either way;
 *    existing ones go on. */
#include "p2p/mux_internal.h"

#include <string.h>

enum { T_DATA = 0, T_WINDOW = 1, T_PING = 2, T_GOAWAY = 3 };
enum { F_SYN = 1, F_ACK = 2, F_FIN = 4, F_RST = 8 };
enum { HDR = 12 };
enum { GOAWAY_NORMAL = 0, GOAWAY_PROTOCOL = 1, GOAWAY_INTERNAL = 2 };

static void put_be16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_hdr(uint8_t *p, uint8_t type, uint16_t flags, uint32_t id, uint32_t len) {
    p[0] = 0;
    p[1] = type;
    put_be16(p + 2, flags);
    put_be32(p + 4, id);
    put_be32(p + 8, len);
}

static pl_err ctrl(pl__mux *m, uint8_t type, uint16_t flags, uint32_t id, uint32_t len) {
    uint8_t f[HDR];
    put_hdr(f, type, flags, id, len);
    return pl__mux_out_ctrl(m, f, HDR, false);
}

static bool peer_parity(const pl__mux *m, uint32_t id) {
    return (id & 1u) == (m->initiator ? 0u : 1u);
}

static void skip_body(pl__mux *m, uint32_t len) {
    m->rx_left = len;
    m->rx_deliver = false;
    m->rx_fin = false;
}

static pl_err remote_fin(pl__mux *m, pl__mux_stream *s) {
    if (s->remote_closed) return PL_OK;
    s->remote_closed = true;
    uint32_t h = s->handle;
    if (s->local_closed) pl__mux_stream_remove(m, s);
    return pl__mux_emit(m, PL__MUX_EV_EOF, h, PL_OK);
}

/* A SYN for a new inbound stream: accept or refuse. *s stays NULL when
 * refused. */
static pl_err on_syn(pl__mux *m, uint8_t type, uint32_t id, uint32_t len, pl__mux_stream **s) {
    *s = NULL;
    if (id == 0 || !peer_parity(m, id) || pl__mux_recent_has(m, id)) return PL_ERR_P2P_MUXER;
    if (m->local_goaway || m->peer_goaway || m->n_inbound >= m->lim.max_streams) {
        if (type == T_DATA && len > PL_MUX_YAMUX_WINDOW) return PL_ERR_P2P_WINDOW;
        pl__mux_recent_add(m, id);
        return ctrl(m, T_WINDOW, F_RST, id, 0);
    }
    PL_TRY(pl__mux_stream_add(m, id, id, true, s));
    PL_TRY(ctrl(m, T_WINDOW, F_ACK, id, 0));
    return pl__mux_emit(m, PL__MUX_EV_STREAM_OPENED, id, PL_OK);
}

static pl_err on_unknown(pl__mux *m, uint8_t type, uint16_t flags, uint32_t id, uint32_t len) {
    if (type == T_DATA && len > PL_MUX_YAMUX_WINDOW) return PL_ERR_P2P_WINDOW;
    if (pl__mux_recent_has(m, id)) return PL_OK;
    PL_TRY(pl__mux_count_unknown(m));
    pl__mux_recent_add(m, id);
    if (flags & F_RST) return PL_OK;
    return ctrl(m, T_WINDOW, F_RST, id, 0);
}

/* One complete header in m->rx_hdr. Sets up the body (DATA) if any. */
static pl_err on_frame(pl__mux *m, int64_t now_ms) {
    const uint8_t *h = m->rx_hdr;
    uint8_t type = h[1];
    uint16_t flags = (uint16_t)(h[2] << 8 | h[3]);
    uint32_t id = get_be32(h + 4), len = get_be32(h + 8);
    if (h[0] != 0 || type > T_GOAWAY) return PL_ERR_P2P_MUXER;

    if (type == T_PING) {
        if (flags & F_SYN) return ctrl(m, T_PING, F_ACK, 0, len);
        if ((flags & F_ACK) && m->ping_out && len == m->ping_val) {
            m->ping_out = false;
            int64_t rtt = now_ms - m->ping_sent_ms;
            return pl__mux_emit_ping(m, rtt < 0 ? 0 : rtt);
        }
        return PL_OK;
    }
    if (type == T_GOAWAY) {
        if (m->peer_goaway) return PL_OK;
        m->peer_goaway = true;
        return pl__mux_emit_goaway(m, len);
    }

    if (id == 0) return PL_ERR_P2P_MUXER;
    pl__mux_stream *s = pl__mux_find(m, id);
    if (flags & F_SYN) {
        if (s) return PL_ERR_P2P_MUXER;
        if (flags & F_RST) { /* opened and aborted at once: nothing to do */
            if (type == T_DATA && len > PL_MUX_YAMUX_WINDOW) return PL_ERR_P2P_WINDOW;
            if (type == T_DATA) skip_body(m, len);
            return PL_OK;
        }
        PL_TRY(on_syn(m, type, id, len, &s));
        if (!s) {
            if (type == T_DATA) skip_body(m, len);
            return PL_OK;
        }
    } else if (!s) {
        PL_TRY(on_unknown(m, type, flags, id, len));
        if (type == T_DATA) skip_body(m, len);
        return PL_OK;
    }

    if (flags & F_RST) {
        if (type == T_DATA && len > s->recv_window) return PL_ERR_P2P_WINDOW;
        pl__mux_stream_remove(m, s);
        if (type == T_DATA) skip_body(m, len);
        return pl__mux_emit(m, PL__MUX_EV_RESET, id, PL_ERR_P2P_STREAM_RESET);
    }
    if (type == T_WINDOW) {
        if (len) {
            if (s->send_window + len > UINT32_MAX) return PL_ERR_P2P_MUXER;
            s->send_window += len;
            PL_TRY(pl__mux_maybe_writable(m, s));
        }
        return (flags & F_FIN) ? remote_fin(m, s) : PL_OK;
    }
    /* DATA */
    if (len > s->recv_window) return PL_ERR_P2P_WINDOW;
    if (len && s->remote_closed) return PL_ERR_P2P_MUXER;
    s->recv_window -= len;
    if (!len) return (flags & F_FIN) ? remote_fin(m, s) : PL_OK;
    m->rx_left = len;
    m->rx_key = id;
    m->rx_deliver = true;
    m->rx_fin = (flags & F_FIN) != 0;
    return PL_OK;
}

pl_err pl__yamux_recv(pl__mux *m, const uint8_t *data, size_t len, int64_t now_ms) {
    m->last_rx_ms = now_ms;
    while (len) {
        if (m->rx_left == 0) {
            size_t take = HDR - m->rx_hdr_len;
            if (take > len) take = len;
            memcpy(m->rx_hdr + m->rx_hdr_len, data, take);
            m->rx_hdr_len += take;
            data += take;
            len -= take;
            if (m->rx_hdr_len < HDR) break;
            m->rx_hdr_len = 0;
            PL_TRY(on_frame(m, now_ms));
            continue;
        }
        size_t take = m->rx_left < len ? (size_t)m->rx_left : len;
        if (m->rx_deliver) {
            /* Looked up per piece: the caller may reset the stream while the
             * rest of the frame is still on its way. */
            pl__mux_stream *s = pl__mux_find(m, (uint32_t)m->rx_key);
            if (s) {
                s->unconsumed += take;
                PL_TRY(pl__mux_emit_data(m, s->handle, data, take));
            }
        }
        data += take;
        len -= take;
        m->rx_left -= take;
        if (m->rx_left == 0 && m->rx_deliver && m->rx_fin) {
            pl__mux_stream *s = pl__mux_find(m, (uint32_t)m->rx_key);
            if (s) PL_TRY(remote_fin(m, s));
        }
    }
    return PL_OK;
}

pl_err pl__yamux_open(pl__mux *m, uint32_t *handle) {
    /* Ids are never reused; the last odd/even ones below 2^32 end the supply. */
    if (m->next_id == 0 || m->next_id > UINT32_MAX - 1) return PL_ERR_P2P_STREAM_LIMIT;
    uint32_t id = m->next_id;
    pl__mux_stream *s;
    pl_err e = pl__mux_stream_add(m, id, id, false, &s);
    if (e != PL_OK) return e;
    m->next_id = id + 2;
    e = ctrl(m, T_WINDOW, F_SYN, id, 0);
    if (e != PL_OK) return e;
    *handle = id;
    return PL_OK;
}

pl_err pl__yamux_write(pl__mux *m, pl__mux_stream *s, const uint8_t *data, size_t len,
                       size_t *taken) {
    size_t done = 0;
    while (done < len) {
        size_t room = pl__mux_out_room(m);
        if (room <= HDR) {
            m->out_blocked = true;
            break;
        }
        size_t n = len - done;
        if (n > PL__MUX_SEND_FRAME) n = PL__MUX_SEND_FRAME;
        if (n > room - HDR) n = room - HDR;
        if (n > s->send_window) n = (size_t)s->send_window;
        if (!n) break;
        uint8_t *p = pl__mux_out_grow(m, HDR + n);
        if (!p) {
            *taken = done;
            return pl__mux_fail(m, PL_ERR_NOMEM);
        }
        put_hdr(p, T_DATA, 0, s->handle, (uint32_t)n);
        memcpy(p + HDR, data + done, n);
        s->send_window -= n;
        done += n;
    }
    *taken = done;
    return PL_OK;
}

pl_err pl__yamux_close_write(pl__mux *m, pl__mux_stream *s) {
    s->local_closed = true;
    pl_err e = ctrl(m, T_WINDOW, F_FIN, s->handle, 0);
    if (s->remote_closed) pl__mux_stream_remove(m, s);
    return e;
}

pl_err pl__yamux_reset(pl__mux *m, pl__mux_stream *s) {
    uint32_t id = s->handle;
    pl__mux_stream_remove(m, s);
    return ctrl(m, T_WINDOW, F_RST, id, 0);
}

void pl__yamux_consumed(pl__mux *m, pl__mux_stream *s, size_t n) {
    /* After the peer's FIN it sends nothing more: no window to give. */
    if (s->remote_closed || !n) return;
    s->owed += (uint32_t)n; /* n <= what was received, itself <= one window */
    if (s->owed < PL_MUX_YAMUX_WINDOW / 2) return;
    uint32_t delta = s->owed;
    if (ctrl(m, T_WINDOW, 0, s->handle, delta) != PL_OK) return;
    s->owed = 0;
    s->recv_window += delta;
}

void pl__yamux_ping(pl__mux *m, int64_t now_ms) {
    if (m->ping_out) return;
    uint32_t v = ++m->ping_ctr;
    if (ctrl(m, T_PING, F_SYN, 0, v) != PL_OK) return;
    m->ping_out = true;
    m->ping_val = v;
    m->ping_sent_ms = now_ms;
}

void pl__yamux_go_away(pl__mux *m) {
    if (m->local_goaway) return;
    (void)ctrl(m, T_GOAWAY, 0, 0, GOAWAY_NORMAL);
}

void pl__yamux_on_fail(pl__mux *m, pl_err err) {
    if (err == PL_ERR_TIMEOUT) return; /* the peer is not listening anyway */
    bool proto = err == PL_ERR_P2P_MUXER || err == PL_ERR_P2P_WINDOW || err == PL_ERR_P2P_FRAME;
    uint8_t f[HDR];
    put_hdr(f, T_GOAWAY, 0, 0, proto ? GOAWAY_PROTOCOL : GOAWAY_INTERNAL);
    (void)pl__mux_out_ctrl(m, f, HDR, true);
    m->local_goaway = true;
}

static int64_t add_sat(int64_t a, int64_t b) {
    return a > INT64_MAX - b ? INT64_MAX : a + b;
}

int64_t pl__yamux_next_deadline(const pl__mux *m) {
    if (m->ping_out)
        return m->lim.ping_timeout_ms < 0 ? INT64_MAX
                                          : add_sat(m->ping_sent_ms, m->lim.ping_timeout_ms);
    if (m->lim.ping_interval_ms < 0) return INT64_MAX;
    return add_sat(m->last_rx_ms, m->lim.ping_interval_ms);
}

void pl__yamux_on_timer(pl__mux *m, int64_t now_ms) {
    if (now_ms < pl__yamux_next_deadline(m)) return;
    if (m->ping_out) {
        (void)pl__mux_fail(m, PL_ERR_TIMEOUT);
        return;
    }
    pl__yamux_ping(m, now_ms);
}
