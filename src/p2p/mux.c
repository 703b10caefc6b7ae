/* SPDX-License-Identifier: Apache-2.0 */
/* What yamux and mplex share: limits, the bounded output buffer, the
 * bounded event queue with its payload arena, the stream tables, failure.
 *
 * Memory bounds, all independent of how much the peer sends:
 *  - output: data writes stop at max_output; control frames may go
 *    PL__MUX_CTRL_SLACK beyond, then the connection fails;
 *  - events: at most PL__MUX_MAX_EVENTS queued; the DATA payload arena holds
 *    at most what flow control lets in (yamux: one window per stream) or
 *    max_stream_buffer per stream (mplex), times the stream limits;
 *  - streams: max_streams inbound plus max_streams outbound.
 * Buffers that grew large are given back once they drain.
 *
 * Events: DATA payloads are copied out of the caller's input (so the caller
 * may reuse its buffer at once); consecutive DATA of one stream merge into
 * one event. pl__mux_reset withdraws the stream's events still queued, so
 * that no event follows a reset, as mux.h promises. */
#include "p2p/mux_internal.h"

#include <stdlib.h>
#include <string.h>

/* Buffers above this are freed when they empty instead of kept. */
#define SHRINK_ABOVE (256u * 1024u)

/* ---- stream tables ---------------------------------------------------- */

static size_t map_home(const pl__mux_map *mp, uint64_t key) {
    uint64_t h = key * UINT64_C(0x9E3779B97F4A7C15);
    return (size_t)(h ^ (h >> 31)) & (mp->cap - 1);
}

static pl__mux_stream *map_get(const pl__mux_map *mp, uint64_t key) {
    if (!mp->cap) return NULL;
    for (size_t i = map_home(mp, key);; i = (i + 1) & (mp->cap - 1)) {
        if (!mp->vals[i]) return NULL;
        if (mp->keys[i] == key) return mp->vals[i];
    }
}

static void map_place(pl__mux_map *mp, uint64_t key, pl__mux_stream *v) {
    size_t i = map_home(mp, key);
    while (mp->vals[i])
        i = (i + 1) & (mp->cap - 1);
    mp->keys[i] = key;
    mp->vals[i] = v;
    mp->n++;
}

static pl_err map_put(pl__mux_map *mp, uint64_t key, pl__mux_stream *v) {
    if ((mp->n + 1) * 4 > mp->cap * 3) {
        size_t ncap = mp->cap ? mp->cap * 2 : 16;
        uint64_t *nk = calloc(ncap, sizeof *nk);
        pl__mux_stream **nv = calloc(ncap, sizeof *nv);
        if (!nk || !nv) {
            free(nk);
            free(nv);
            return PL_ERR_NOMEM;
        }
        pl__mux_map old = *mp;
        mp->keys = nk;
        mp->vals = nv;
        mp->cap = ncap;
        mp->n = 0;
        for (size_t i = 0; i < old.cap; i++)
            if (old.vals[i]) map_place(mp, old.keys[i], old.vals[i]);
        free(old.keys);
        free(old.vals);
    }
    map_place(mp, key, v);
    return PL_OK;
}

static void map_del(pl__mux_map *mp, uint64_t key) {
    if (!mp->cap) return;
    size_t mask = mp->cap - 1, i = map_home(mp, key);
    while (mp->vals[i] && mp->keys[i] != key)
        i = (i + 1) & mask;
    if (!mp->vals[i]) return;
    /* Backward shift: pull later entries of the probe run into the hole
     * unless their home lies cyclically in (hole, j]. */
    for (size_t j = (i + 1) & mask; mp->vals[j]; j = (j + 1) & mask) {
        size_t k = map_home(mp, mp->keys[j]);
        bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (stays) continue;
        mp->keys[i] = mp->keys[j];
        mp->vals[i] = mp->vals[j];
        i = j;
    }
    mp->vals[i] = NULL;
    mp->n--;
}

static void map_free(pl__mux_map *mp) {
    free(mp->keys);
    free(mp->vals);
    memset(mp, 0, sizeof *mp);
}

pl__mux_stream *pl__mux_find(const pl__mux *m, uint32_t handle) {
    return map_get(&m->by_handle, handle);
}

pl__mux_stream *pl__mux_find_key(const pl__mux *m, uint64_t key) {
    return m->kind == PL__MUX_YAMUX ? map_get(&m->by_handle, key) : map_get(&m->by_key, key);
}

pl_err pl__mux_stream_add(pl__mux *m, uint32_t handle, uint64_t key, bool inbound,
                          pl__mux_stream **out) {
    *out = NULL;
    pl__mux_stream *s = calloc(1, sizeof *s);
    if (!s) return PL_ERR_NOMEM;
    s->handle = handle;
    s->key = key;
    s->inbound = inbound;
    s->recv_window = PL_MUX_YAMUX_WINDOW;
    s->send_window = PL_MUX_YAMUX_WINDOW;
    if (map_put(&m->by_handle, handle, s) != PL_OK) {
        free(s);
        return PL_ERR_NOMEM;
    }
    if (m->kind == PL__MUX_MPLEX && map_put(&m->by_key, key, s) != PL_OK) {
        map_del(&m->by_handle, handle);
        free(s);
        return PL_ERR_NOMEM;
    }
    if (inbound)
        m->n_inbound++;
    else
        m->n_outbound++;
    *out = s;
    return PL_OK;
}

void pl__mux_recent_add(pl__mux *m, uint64_t key) {
    m->recent[m->recent_pos] = key;
    m->recent_pos = (m->recent_pos + 1) % PL__MUX_RECENT;
    if (m->recent_n < PL__MUX_RECENT) m->recent_n++;
}

bool pl__mux_recent_has(const pl__mux *m, uint64_t key) {
    for (size_t i = 0; i < m->recent_n; i++)
        if (m->recent[i] == key) return true;
    return false;
}

void pl__mux_stream_remove(pl__mux *m, pl__mux_stream *s) {
    map_del(&m->by_handle, s->handle);
    if (m->kind == PL__MUX_MPLEX) map_del(&m->by_key, s->key);
    if (s->inbound)
        m->n_inbound--;
    else
        m->n_outbound--;
    pl__mux_recent_add(m, s->key);
    free(s);
}

pl_err pl__mux_count_unknown(pl__mux *m) {
    if (++m->unknown_frames > PL__MUX_MAX_UNKNOWN) return PL_ERR_P2P_MUXER;
    return PL_OK;
}

/* ---- output ------------------------------------------------------------ */

static size_t out_pending(const pl__mux *m) {
    return m->out_len - m->out_head;
}

size_t pl__mux_out_room(const pl__mux *m) {
    size_t p = out_pending(m);
    return p >= m->lim.max_output ? 0 : m->lim.max_output - p;
}

uint8_t *pl__mux_out_grow(pl__mux *m, size_t n) {
    if (m->out_head && m->out_head >= m->out_len / 2) {
        memmove(m->out, m->out + m->out_head, m->out_len - m->out_head);
        m->out_len -= m->out_head;
        m->out_head = 0;
    }
    if (m->out_cap - m->out_len < n) {
        size_t ncap = m->out_cap ? m->out_cap : 4096;
        while (ncap - m->out_len < n)
            ncap *= 2;
        uint8_t *nb = realloc(m->out, ncap);
        if (!nb) return NULL;
        m->out = nb;
        m->out_cap = ncap;
    }
    uint8_t *p = m->out + m->out_len;
    m->out_len += n;
    return p;
}

pl_err pl__mux_out_ctrl(pl__mux *m, const uint8_t *frame, size_t n, bool force) {
    if (!force && out_pending(m) + n > m->lim.max_output + PL__MUX_CTRL_SLACK)
        return pl__mux_fail(m, PL_ERR_P2P_BACKPRESSURE);
    uint8_t *p = pl__mux_out_grow(m, n);
    if (!p) return force ? PL_ERR_NOMEM : pl__mux_fail(m, PL_ERR_NOMEM);
    memcpy(p, frame, n);
    return PL_OK;
}

/* ---- events ------------------------------------------------------------ */

/* The ring always keeps one free slot, so that FAILED can be queued when
 * nothing else can. */
static pl_err ev_push(pl__mux *m, const pl__mux_qev *q, bool reserved) {
    if (m->ev_n + 1 >= m->ev_cap) {
        if (m->ev_cap < PL__MUX_MAX_EVENTS) {
            size_t ncap = m->ev_cap * 2;
            pl__mux_qev *nq = malloc(ncap * sizeof *nq);
            if (nq) {
                for (size_t i = 0; i < m->ev_n; i++)
                    nq[i] = m->evq[(m->ev_head + i) % m->ev_cap];
                free(m->evq);
                m->evq = nq;
                m->ev_cap = ncap;
                m->ev_head = 0;
            } else if (!reserved) {
                return pl__mux_fail(m, PL_ERR_NOMEM);
            }
        } else if (!reserved) {
            return pl__mux_fail(m, PL_ERR_P2P_BACKPRESSURE);
        }
    }
    if (m->ev_n >= m->ev_cap) return PL_ERR_NOMEM; /* only a reserved push, twice */
    m->evq[(m->ev_head + m->ev_n) % m->ev_cap] = *q;
    m->ev_n++;
    return PL_OK;
}

static pl__mux_qev *ev_tail(pl__mux *m) {
    return m->ev_n ? &m->evq[(m->ev_head + m->ev_n - 1) % m->ev_cap] : NULL;
}

pl_err pl__mux_emit(pl__mux *m, pl__mux_event_kind kind, uint32_t handle, pl_err err) {
    pl__mux_qev q = {.kind = kind, .handle = handle, .err = err};
    return ev_push(m, &q, false);
}

pl_err pl__mux_emit_goaway(pl__mux *m, uint32_t code) {
    pl__mux_qev q = {.kind = PL__MUX_EV_GOAWAY, .err = PL_ERR_P2P_GOAWAY, .len = code};
    return ev_push(m, &q, false);
}

pl_err pl__mux_emit_ping(pl__mux *m, int64_t rtt_ms) {
    pl__mux_qev q = {.kind = PL__MUX_EV_PING, .rtt_ms = rtt_ms};
    return ev_push(m, &q, false);
}

pl_err pl__mux_emit_data(pl__mux *m, uint32_t handle, const uint8_t *data, size_t len) {
    if (!len) return PL_OK;
    pl__mux_qev *t = ev_tail(m);
    bool merge = t && t->kind == PL__MUX_EV_DATA && t->handle == handle && !t->dropped;
    if (m->arena_cap - m->arena_len < len) {
        size_t ncap = m->arena_cap ? m->arena_cap : 16384;
        while (ncap - m->arena_len < len) {
            if (ncap > SIZE_MAX / 2) return pl__mux_fail(m, PL_ERR_NOMEM);
            ncap *= 2;
        }
        uint8_t *na = realloc(m->arena, ncap);
        if (!na) return pl__mux_fail(m, PL_ERR_NOMEM);
        m->arena = na;
        m->arena_cap = ncap;
    }
    uint64_t off = m->arena_base + m->arena_len;
    memcpy(m->arena + m->arena_len, data, len);
    m->arena_len += len;
    if (merge) {
        t->len += len;
        return PL_OK;
    }
    pl__mux_qev q = {.kind = PL__MUX_EV_DATA, .handle = handle, .off = off, .len = len};
    pl_err e = ev_push(m, &q, false);
    if (e != PL_OK) m->arena_len -= len;
    return e;
}

/* Payloads of events already polled are released at the next poll or recv
 * (the only calls that touch the arena), so a polled DATA event stays
 * readable across the write/consumed/output calls the caller makes while
 * handling it. */
static void arena_release(pl__mux *m) {
    if (!m->ev_n) {
        m->arena_base += m->arena_len;
        m->arena_release = m->arena_base;
        m->arena_len = 0;
        if (m->arena_cap > SHRINK_ABOVE) {
            free(m->arena);
            m->arena = NULL;
            m->arena_cap = 0;
        }
        if (m->ev_cap > 1024) { /* a burst is over: give the ring back */
            pl__mux_qev *small = malloc(16 * sizeof *small);
            if (small) {
                free(m->evq);
                m->evq = small;
                m->ev_cap = 16;
                m->ev_head = 0;
            }
        }
        return;
    }
    size_t drop = (size_t)(m->arena_release - m->arena_base);
    if (drop && drop >= m->arena_len / 2) {
        memmove(m->arena, m->arena + drop, m->arena_len - drop);
        m->arena_len -= drop;
        m->arena_base += drop;
    }
}

pl_err pl__mux_fail(pl__mux *m, pl_err err) {
    if (m->failed != PL_OK) return m->failed;
    m->failed = err;
    if (m->kind == PL__MUX_YAMUX) pl__yamux_on_fail(m, err);
    pl__mux_qev q = {.kind = PL__MUX_EV_FAILED, .err = err};
    (void)ev_push(m, &q, true);
    return err;
}

static bool can_write(const pl__mux *m, const pl__mux_stream *s) {
    if (s->local_closed) return false;
    if (m->kind == PL__MUX_YAMUX && s->send_window == 0) return false;
    return pl__mux_out_room(m) > 64;
}

pl_err pl__mux_maybe_writable(pl__mux *m, pl__mux_stream *s) {
    if (!s->want_writable || !can_write(m, s)) return PL_OK;
    s->want_writable = false;
    return pl__mux_emit(m, PL__MUX_EV_WRITABLE, s->handle, PL_OK);
}

/* ---- the interface ----------------------------------------------------- */

pl_err pl__mux_new(pl__mux **out, pl__mux_kind kind, bool initiator, const pl__mux_limits *limits,
                   int64_t now_ms) {
    PL_REQUIRE(out);
    *out = NULL;
    PL_REQUIRE(kind == PL__MUX_YAMUX || kind == PL__MUX_MPLEX);
    pl__mux *m = calloc(1, sizeof *m);
    if (!m) return PL_ERR_NOMEM;
    m->kind = kind;
    m->initiator = initiator;
    if (limits) m->lim = *limits;
    if (!m->lim.max_streams) m->lim.max_streams = PL_MUX_DEF_MAX_STREAMS;
    if (!m->lim.max_stream_buffer) m->lim.max_stream_buffer = PL_MUX_DEF_MAX_STREAM_BUFFER;
    if (!m->lim.max_output) m->lim.max_output = PL_MUX_DEF_MAX_OUTPUT;
    if (!m->lim.ping_interval_ms) m->lim.ping_interval_ms = PL_MUX_DEF_PING_INTERVAL_MS;
    if (!m->lim.ping_timeout_ms) m->lim.ping_timeout_ms = PL_MUX_DEF_PING_TIMEOUT_MS;
    m->ev_cap = 16;
    m->evq = malloc(m->ev_cap * sizeof *m->evq);
    if (!m->evq) {
        free(m);
        return PL_ERR_NOMEM;
    }
    m->next_id = initiator ? 1 : 2;
    m->next_handle = 1;
    m->last_rx_ms = now_ms;
    *out = m;
    return PL_OK;
}

void pl__mux_free(pl__mux *m) {
    if (!m) return;
    for (size_t i = 0; i < m->by_handle.cap; i++)
        free(m->by_handle.vals[i]);
    map_free(&m->by_handle);
    map_free(&m->by_key);
    free(m->out);
    free(m->evq);
    free(m->arena);
    free(m);
}

pl__mux_kind pl__mux_kind_of(const pl__mux *m) {
    PL_REQUIRE(m);
    return m->kind;
}

pl_err pl__mux_recv(pl__mux *m, const uint8_t *data, size_t len, int64_t now_ms) {
    PL_REQUIRE(m && (data || !len));
    arena_release(m);
    if (m->failed != PL_OK) return m->failed;
    if (!len) return PL_OK;
    pl_err e = m->kind == PL__MUX_YAMUX ? pl__yamux_recv(m, data, len, now_ms)
                                        : pl__mplex_recv(m, data, len);
    return e == PL_OK ? PL_OK : pl__mux_fail(m, e);
}

pl_err pl__mux_open(pl__mux *m, uint32_t *handle) {
    PL_REQUIRE(m && handle);
    *handle = 0;
    if (m->failed != PL_OK) return PL_ERR_STATE;
    if (m->local_goaway || m->peer_goaway) return PL_ERR_P2P_GOAWAY;
    if (m->n_outbound >= m->lim.max_streams) return PL_ERR_P2P_STREAM_LIMIT;
    /* Opening is the caller's act, so a full output refuses it rather than
     * failing the connection. */
    if (out_pending(m) + 64 > m->lim.max_output + PL__MUX_CTRL_SLACK)
        return PL_ERR_P2P_BACKPRESSURE;
    return m->kind == PL__MUX_YAMUX ? pl__yamux_open(m, handle) : pl__mplex_open(m, handle);
}

pl_err pl__mux_write(pl__mux *m, uint32_t handle, const uint8_t *data, size_t len, size_t *taken) {
    PL_REQUIRE(m && taken && (data || !len));
    *taken = 0;
    if (m->failed != PL_OK) return PL_ERR_STATE;
    pl__mux_stream *s = pl__mux_find(m, handle);
    if (!s) return PL_ERR_NOT_FOUND;
    if (s->local_closed) return PL_ERR_CLOSED;
    if (!len) return PL_OK;
    pl_err e = m->kind == PL__MUX_YAMUX ? pl__yamux_write(m, s, data, len, taken)
                                        : pl__mplex_write(m, s, data, len, taken);
    if (e == PL_OK && *taken < len) s->want_writable = true;
    return e;
}

pl_err pl__mux_close_write(pl__mux *m, uint32_t handle) {
    PL_REQUIRE(m);
    pl__mux_stream *s = pl__mux_find(m, handle);
    if (!s) return PL_ERR_NOT_FOUND;
    if (s->local_closed || m->failed != PL_OK) return PL_OK;
    return m->kind == PL__MUX_YAMUX ? pl__yamux_close_write(m, s) : pl__mplex_close_write(m, s);
}

pl_err pl__mux_reset(pl__mux *m, uint32_t handle) {
    PL_REQUIRE(m);
    pl__mux_stream *s = pl__mux_find(m, handle);
    if (!s) return PL_ERR_NOT_FOUND;
    /* "No event follows": not even one queued before the reset. */
    for (size_t i = 0; i < m->ev_n; i++) {
        pl__mux_qev *q = &m->evq[(m->ev_head + i) % m->ev_cap];
        if (q->handle == handle) q->dropped = true;
    }
    if (m->failed != PL_OK) {
        pl__mux_stream_remove(m, s);
        return PL_OK;
    }
    return m->kind == PL__MUX_YAMUX ? pl__yamux_reset(m, s) : pl__mplex_reset(m, s);
}

void pl__mux_consumed(pl__mux *m, uint32_t handle, size_t n) {
    PL_REQUIRE(m);
    pl__mux_stream *s = pl__mux_find(m, handle);
    if (!s || m->failed != PL_OK) return;
    /* A caller that reports more than it was given must not open the
     * window beyond what the peer was promised. */
    if (n > s->unconsumed) n = s->unconsumed;
    s->unconsumed -= n;
    if (m->kind == PL__MUX_YAMUX) pl__yamux_consumed(m, s, n);
}

void pl__mux_ping(pl__mux *m, int64_t now_ms) {
    PL_REQUIRE(m);
    if (m->kind == PL__MUX_YAMUX && m->failed == PL_OK) pl__yamux_ping(m, now_ms);
}

void pl__mux_go_away(pl__mux *m) {
    PL_REQUIRE(m);
    if (m->failed != PL_OK) return;
    if (m->kind == PL__MUX_YAMUX) pl__yamux_go_away(m);
    m->local_goaway = true;
}

size_t pl__mux_output(pl__mux *m, const uint8_t **data) {
    PL_REQUIRE(m && data);
    size_t n = out_pending(m);
    *data = n ? m->out + m->out_head : NULL;
    return n;
}

void pl__mux_output_done(pl__mux *m, size_t n) {
    PL_REQUIRE(m && n <= out_pending(m));
    m->out_head += n;
    if (m->out_head == m->out_len) {
        m->out_head = m->out_len = 0;
        if (m->out_cap > SHRINK_ABOVE && m->out_cap > m->lim.max_output) {
            free(m->out);
            m->out = NULL;
            m->out_cap = 0;
        }
    }
    /* Writers stopped by the output cap resume once half of it drained, so
     * that each WRITABLE is worth a sizeable write. */
    if (m->out_blocked && m->failed == PL_OK && out_pending(m) <= m->lim.max_output / 2) {
        m->out_blocked = false;
        for (size_t i = 0; i < m->by_handle.cap; i++) {
            pl__mux_stream *s = m->by_handle.vals[i];
            if (s && pl__mux_maybe_writable(m, s) != PL_OK) return;
        }
    }
}

bool pl__mux_poll(pl__mux *m, pl__mux_event *ev) {
    PL_REQUIRE(m && ev);
    arena_release(m);
    memset(ev, 0, sizeof *ev);
    const pl__mux_qev *q;
    for (;;) {
        if (!m->ev_n) return false;
        q = &m->evq[m->ev_head];
        m->ev_head = (m->ev_head + 1) % m->ev_cap;
        m->ev_n--;
        if (q->kind == PL__MUX_EV_DATA) m->arena_release = q->off + q->len;
        if (!q->dropped) break;
    }
    ev->kind = q->kind;
    ev->handle = q->handle;
    ev->len = q->len;
    ev->err = q->err;
    ev->rtt_ms = q->rtt_ms;
    if (q->kind == PL__MUX_EV_DATA) ev->data = m->arena + (size_t)(q->off - m->arena_base);
    return true;
}

int64_t pl__mux_next_deadline(const pl__mux *m) {
    PL_REQUIRE(m);
    if (m->kind != PL__MUX_YAMUX || m->failed != PL_OK) return INT64_MAX;
    return pl__yamux_next_deadline(m);
}

void pl__mux_on_timer(pl__mux *m, int64_t now_ms) {
    PL_REQUIRE(m);
    if (m->kind == PL__MUX_YAMUX && m->failed == PL_OK) pl__yamux_on_timer(m, now_ms);
}

size_t pl__mux_stream_count(const pl__mux *m) {
    PL_REQUIRE(m);
    return m->by_handle.n;
}
