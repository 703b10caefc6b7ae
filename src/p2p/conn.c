/* SPDX-License-Identifier: Apache-2.0 */
/* The libp2p connection core: see conn.h and docs/p2p.md. */
#include "p2p/conn.h"

#include "p2p/key.h"
#include "p2p/mss.h"
#include "pairlink/codec.h"
#include "pairlink/hash.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum phase {
    PH_MSS_SEC = 1, /* multistream-select for /noise */
    PH_NOISE,       /* the Noise handshake */
    PH_MSS_MUX,     /* multistream-select for the muxer, encrypted */
    PH_MUX,         /* streams */
    PH_CLOSED,
} phase;

typedef enum skind {
    SK_APP = 1, /* the layer above's */
    SK_ID_REQ,  /* our identify request */
    SK_ID_RESP, /* answering the peer's identify */
    SK_PING,    /* answering the peer's pings */
} skind;

typedef struct stream {
    struct stream *next;
    uint32_t h;
    skind kind;
    bool inbound, negotiated, visible;
    pl__mss *mss;    /* while negotiating (and until its output is out) */
    char *proposals; /* outbound: the copied protocol ids */
    const char *plist[PL__MSS_MAX_PROPOSALS];
    char *protocol; /* negotiated */
    uint8_t *rbuf;  /* unread bytes: rbuf[roff, rlen) */
    size_t roff, rlen, rcap;
    size_t unreported; /* received but not yet given back to the muxer */
    size_t rmax;       /* receive cap */
    uint8_t *sbuf;     /* bytes the muxer has not taken: sbuf[soff, slen) */
    size_t soff, slen, scap;
    bool remote_eof, eof_event, close_wanted, fin_sent, want_writable;
    bool ev_readable, ev_writable; /* queued and not yet polled */
} stream;

struct pl__conn {
    pl__conn_config cfg;
    phase ph;
    pl_err err;
    int64_t hs_deadline;
    pl__mss *mss; /* the connection-level negotiation in progress */
    const char *mux_names[2];
    size_t nmux;
    pl__nxx *nxx;
    pl__nxx_framer framer;
    pl_p2p_peer_id remote;
    pl__mux *mux;
    pl__mux_kind mux_kind;
    uint8_t *plain;
    size_t plain_cap;
    uint8_t *out; /* raw bytes to send: out[out_off, out_len) */
    size_t out_off, out_len, out_cap;
    stream *streams;
    size_t nstreams;
    pl__conn_event *ev;
    size_t ev_head, ev_len, ev_cap;
    uint32_t id_stream;
    bool id_pending;
    int64_t id_deadline;
    pl__identify_info *remote_id;
    char agent[128];
    int64_t now; /* the time of the current call */
};

static const char *const builtin[] = {PL__ID_PROTOCOL, PL__PING_PROTOCOL};

static const char *mux_name(pl__mux_kind k) {
    return k == PL__MUX_YAMUX ? PL_MUX_YAMUX_PROTOCOL : PL_MUX_MPLEX_PROTOCOL;
}

/* ---- events --------------------------------------------------------------------- */

static void push(pl__conn *c, pl__conn_event_kind kind, uint32_t h, pl_err err) {
    if (c->ev_head + c->ev_len == c->ev_cap) {
        if (c->ev_head > 0) {
            memmove(c->ev, c->ev + c->ev_head, c->ev_len * sizeof *c->ev);
            c->ev_head = 0;
        } else {
            size_t cap = c->ev_cap ? c->ev_cap * 2 : 16;
            pl__conn_event *e = realloc(c->ev, cap * sizeof *e);
            /* Events are bounded by a few per stream; failing to grow so
             * small an array means the process is out of memory anyway. */
            if (!e) pl__misuse("out of memory for connection events", __FILE__, __LINE__);
            c->ev = e;
            c->ev_cap = cap;
        }
    }
    pl__conn_event *e = &c->ev[c->ev_head + c->ev_len++];
    memset(e, 0, sizeof *e);
    e->kind = kind;
    e->stream = h;
    e->err = err;
}

static stream *find(const pl__conn *c, uint32_t h) {
    for (stream *s = c->streams; s; s = s->next)
        if (s->h == h) return s;
    return NULL;
}

/* ---- raw output and encryption ------------------------------------------------- */

static pl_err out_reserve(pl__conn *c, size_t n) {
    if (c->out_off > 0 && (c->out_off == c->out_len || c->out_len + n > c->out_cap)) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
    }
    if (c->out_len + n <= c->out_cap) return PL_OK;
    size_t cap = c->out_cap ? c->out_cap : 1024;
    while (cap < c->out_len + n)
        cap *= 2;
    uint8_t *p = realloc(c->out, cap);
    if (!p) return PL_ERR_NOMEM;
    c->out = p;
    c->out_cap = cap;
    return PL_OK;
}

static pl_err out_raw(pl__conn *c, const uint8_t *data, size_t n) {
    PL_TRY(out_reserve(c, n));
    memcpy(c->out + c->out_len, data, n);
    c->out_len += n;
    return PL_OK;
}

static size_t out_pending(const pl__conn *c) {
    return c->out_len - c->out_off;
}

static pl_err send_plain(pl__conn *c, const uint8_t *data, size_t n) {
    while (n > 0) {
        size_t chunk = n > PL__NXX_MAX_PLAIN ? PL__NXX_MAX_PLAIN : n;
        PL_TRY(out_reserve(c, chunk + 2 + PL__NXX_TAG));
        PL_TRY(pl__nxx_encrypt(c->nxx, data, chunk, c->out + c->out_len));
        c->out_len += chunk + 2 + PL__NXX_TAG;
        data += chunk;
        n -= chunk;
    }
    return PL_OK;
}

static void fail(pl__conn *c, pl_err err);

/* Move negotiation and muxer output through Noise while under the cap. */
static void flush_plain(pl__conn *c) {
    if (!c->nxx || pl__nxx_action_of(c->nxx) != PL__NXX_DONE) return;
    pl_err e = PL_OK;
    if (c->mss) {
        const uint8_t *d;
        size_t n = pl__mss_output(c->mss, &d);
        if (n) e = send_plain(c, d, n);
        if (e == PL_OK) pl__mss_output_done(c->mss, n);
    }
    while (e == PL_OK && c->mux && out_pending(c) < c->cfg.max_output) {
        const uint8_t *d;
        size_t n = pl__mux_output(c->mux, &d);
        if (n == 0) break;
        size_t room = c->cfg.max_output - out_pending(c);
        if (n > room) n = room;
        e = send_plain(c, d, n);
        if (e == PL_OK) pl__mux_output_done(c->mux, n);
    }
    if (e != PL_OK && c->ph != PH_CLOSED) fail(c, e);
}

/* ---- streams ---------------------------------------------------------------------- */

static void stream_free(pl__conn *c, stream *s) {
    stream **pp = &c->streams;
    while (*pp && *pp != s)
        pp = &(*pp)->next;
    if (*pp) *pp = s->next;
    c->nstreams--;
    pl__mss_free(s->mss);
    free(s->proposals);
    free(s->protocol);
    free(s->rbuf);
    free(s->sbuf);
    free(s);
}

static stream *stream_new(pl__conn *c, uint32_t h, skind kind, bool inbound) {
    stream *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->h = h;
    s->kind = kind;
    s->inbound = inbound;
    s->rmax =
        kind == SK_ID_REQ ? PL__ID_MAX_MESSAGE + PL_UVARINT_MAX_BYTES : c->cfg.stream_recv_buffer;
    s->next = c->streams;
    c->streams = s;
    c->nstreams++;
    return s;
}

static void identified(pl__conn *c, pl_err err) {
    if (!c->id_pending) return;
    c->id_pending = false;
    push(c, PL__CONN_EV_IDENTIFIED, 0, err);
}

/* The stream is gone (reset by the peer, failed, or finished): tell whom
 * it concerns and forget it. */
static void stream_gone(pl__conn *c, stream *s, pl_err err) {
    if (s->kind == SK_ID_REQ) identified(c, err == PL_OK ? PL_ERR_TRUNCATED : err);
    if (s->visible) push(c, PL__CONN_EV_STREAM_CLOSED, s->h, err);
    stream_free(c, s);
}

static void stream_abort(pl__conn *c, stream *s, pl_err err) {
    pl__mux_reset(c->mux, s->h);
    stream_gone(c, s, err);
}

static size_t s_unread(const stream *s) {
    return s->rlen - s->roff;
}
static size_t s_unsent(const stream *s) {
    return s->slen - s->soff;
}

/* Give bytes back to the muxer as far as the receive cap allows: with a
 * window W the peer may still send W - unreported more, so the buffer can
 * reach unread + W - unreported; keep that under the cap. */
static void credit(pl__conn *c, stream *s) {
    if (!s->unreported || !c->mux) return;
    int64_t w = c->mux_kind == PL__MUX_YAMUX ? PL_MUX_YAMUX_WINDOW : 0;
    int64_t room = (int64_t)s->rmax - w - (int64_t)s_unread(s) + (int64_t)s->unreported;
    if (room <= 0) return;
    size_t r = (size_t)room < s->unreported ? (size_t)room : s->unreported;
    s->unreported -= r;
    pl__mux_consumed(c->mux, s->h, r);
}

static pl_err sbuf_append(stream *s, const uint8_t *d, size_t n) {
    if (!n) return PL_OK;
    if (s->soff > 0 && (s->soff == s->slen || s->slen + n > s->scap)) {
        memmove(s->sbuf, s->sbuf + s->soff, s->slen - s->soff);
        s->slen -= s->soff;
        s->soff = 0;
    }
    if (s->slen + n > s->scap) {
        size_t cap = s->scap ? s->scap : 256;
        while (cap < s->slen + n)
            cap *= 2;
        uint8_t *p = realloc(s->sbuf, cap);
        if (!p) return PL_ERR_NOMEM;
        s->sbuf = p;
        s->scap = cap;
    }
    memcpy(s->sbuf + s->slen, d, n);
    s->slen += n;
    return PL_OK;
}

/* Hand queued bytes to the muxer: negotiation first, then data, then FIN. */
static void stream_flush(pl__conn *c, stream *s) {
    if (s->mss) {
        const uint8_t *d;
        size_t n = pl__mss_output(s->mss, &d), taken = 0;
        if (n && pl__mux_write(c->mux, s->h, d, n, &taken) == PL_OK)
            pl__mss_output_done(s->mss, taken);
        if (pl__mss_output(s->mss, &d) > 0) return;
        if (s->negotiated) {
            pl__mss_free(s->mss);
            s->mss = NULL;
        }
    }
    if (!s->negotiated) return;
    while (s_unsent(s) > 0) {
        size_t taken = 0;
        if (pl__mux_write(c->mux, s->h, s->sbuf + s->soff, s_unsent(s), &taken) != PL_OK ||
            taken == 0)
            break;
        s->soff += taken;
    }
    if (s_unsent(s) == 0) {
        s->soff = s->slen = 0;
        /* An idle stream keeps no send buffer around. */
        if (s->scap > 4096) {
            free(s->sbuf);
            s->sbuf = NULL;
            s->scap = 0;
        }
        if (s->close_wanted && !s->fin_sent) {
            pl__mux_close_write(c->mux, s->h);
            s->fin_sent = true;
        }
    }
    if (s->want_writable && s->kind == SK_APP && !s->close_wanted &&
        s_unsent(s) <= c->cfg.stream_send_buffer / 2 && !s->ev_writable) {
        s->want_writable = false;
        s->ev_writable = true;
        push(c, PL__CONN_EV_STREAM_WRITABLE, s->h, PL_OK);
    }
}

/* Both sides closed and everything read: the stream is done. */
static bool maybe_finish(pl__conn *c, stream *s) {
    if (!(s->fin_sent && s->remote_eof && s_unread(s) == 0)) return false;
    if (s->kind == SK_APP && !s->eof_event) return false;
    stream_gone(c, s, PL_OK);
    return true;
}

static pl_err send_identify(pl__conn *c, stream *s) {
    size_t nreg = 0;
    const char *const *reg = NULL;
    if (c->cfg.registry && c->cfg.registry->list)
        nreg = c->cfg.registry->list(c->cfg.registry->ud, &reg);
    const char **all = malloc((nreg + PL_ARRAY_LEN(builtin)) * sizeof *all);
    if (!all) return PL_ERR_NOMEM;
    size_t n = 0;
    for (size_t i = 0; i < PL_ARRAY_LEN(builtin); i++)
        all[n++] = builtin[i];
    for (size_t i = 0; i < nreg; i++)
        all[n++] = reg[i];
    uint8_t kp[PL__P2P_PUBKEY_PROTO_MAX];
    pl__p2p_pubkey pk;
    pl__p2p_key_public(c->cfg.key, &pk);
    pl__identify_local l = {
        .public_key = kp,
        .public_key_len = pl__p2p_pubkey_encode(&pk, kp),
        .listen_addrs = c->cfg.listen_addrs,
        .nlisten_addrs = c->cfg.nlisten_addrs,
        .protocols = all,
        .nprotocols = n,
        .observed_addr = c->cfg.observed.len ? &c->cfg.observed : NULL,
        .agent_version = c->agent,
    };
    uint8_t *msg = NULL;
    size_t len = 0;
    pl_err e = pl__identify_encode(&l, &msg, &len);
    free(all);
    if (e == PL_OK) e = sbuf_append(s, msg, len);
    free(msg);
    s->close_wanted = true;
    return e;
}

static void try_identify(pl__conn *c, stream *s) {
    const uint8_t *msg;
    size_t len, used;
    pl_err e = pl__lp_parse(s->rbuf + s->roff, s_unread(s), PL__ID_MAX_MESSAGE, &msg, &len, &used);
    if (e == PL_ERR_TRUNCATED) return;
    if (e == PL_OK) {
        pl__identify_free(c->remote_id);
        c->remote_id = NULL;
        e = pl__identify_decode(&c->remote_id, msg, len, &c->remote);
    }
    identified(c, e);
    /* One message is all identify says; drop the rest. */
    s->roff = s->rlen;
    credit(c, s);
}

static void stream_deliver(pl__conn *c, stream *s, const uint8_t *d, size_t n) {
    if (n == 0) return;
    if (s->kind == SK_PING) {
        /* Echo as it comes; a peer that sends faster than it reads its
         * echoes fills the send buffer and loses the stream. */
        if (s_unsent(s) + n > c->cfg.stream_send_buffer || sbuf_append(s, d, n) != PL_OK) {
            stream_abort(c, s, PL_ERR_P2P_BACKPRESSURE);
            return;
        }
        s->unreported += n;
        credit(c, s);
        stream_flush(c, s);
        return;
    }
    if (s->kind == SK_ID_RESP) { /* the requester has nothing to say */
        s->unreported += n;
        credit(c, s);
        return;
    }
    if (s_unread(s) + n > s->rmax) {
        /* Only a peer that ignores flow control (or mplex, which has
         * none) gets here. */
        stream_abort(c, s, s->kind == SK_ID_REQ ? PL_ERR_TOO_LARGE : PL_ERR_P2P_BACKPRESSURE);
        return;
    }
    if (s->roff > 0 && (s->roff == s->rlen || s->rlen + n > s->rcap)) {
        memmove(s->rbuf, s->rbuf + s->roff, s->rlen - s->roff);
        s->rlen -= s->roff;
        s->roff = 0;
    }
    if (s->rlen + n > s->rcap) {
        size_t cap = s->rcap ? s->rcap : 1024;
        while (cap < s->rlen + n)
            cap *= 2;
        if (cap > s->rmax) cap = s->rmax;
        uint8_t *p = realloc(s->rbuf, cap);
        if (!p) {
            stream_abort(c, s, PL_ERR_NOMEM);
            return;
        }
        s->rbuf = p;
        s->rcap = cap;
    }
    memcpy(s->rbuf + s->rlen, d, n);
    s->rlen += n;
    s->unreported += n;
    credit(c, s);
    if (s->kind == SK_ID_REQ) {
        try_identify(c, s);
    } else if (!s->ev_readable) {
        s->ev_readable = true;
        push(c, PL__CONN_EV_STREAM_READABLE, s->h, PL_OK);
    }
}

static bool supports_inbound(void *ud, const char *p, size_t n) {
    const pl__conn *c = ud;
    for (size_t i = 0; i < PL_ARRAY_LEN(builtin); i++)
        if (strlen(builtin[i]) == n && !memcmp(builtin[i], p, n)) return true;
    const pl__conn_registry *r = c->cfg.registry;
    return r && r->supports && r->supports(r->ud, p, n);
}

static void negotiated(pl__conn *c, stream *s) {
    s->negotiated = true;
    const char *p = pl__mss_protocol(s->mss);
    s->protocol = strdup(p);
    if (!s->protocol) {
        stream_abort(c, s, PL_ERR_NOMEM);
        return;
    }
    free(s->proposals);
    s->proposals = NULL;
    if (s->inbound) {
        if (!strcmp(p, PL__ID_PROTOCOL))
            s->kind = SK_ID_RESP;
        else if (!strcmp(p, PL__PING_PROTOCOL))
            s->kind = SK_PING;
        else
            s->kind = SK_APP;
    }
    switch (s->kind) {
    case SK_APP:
        s->visible = true;
        push(c, PL__CONN_EV_STREAM_OPENED, s->h, PL_OK);
        c->ev[c->ev_head + c->ev_len - 1].inbound = s->inbound;
        break;
    case SK_ID_RESP:
        if (send_identify(c, s) != PL_OK) {
            stream_abort(c, s, PL_ERR_NOMEM);
            return;
        }
        break;
    case SK_ID_REQ:
        s->close_wanted = true;
        break;
    case SK_PING:
        break;
    }
    stream_flush(c, s);
}

static void stream_data(pl__conn *c, stream *s, const uint8_t *d, size_t n) {
    if (!s->negotiated) {
        size_t used = 0;
        pl_err e = pl__mss_recv(s->mss, d, n, &used);
        /* Negotiation bytes are consumed at once. */
        if (used) pl__mux_consumed(c->mux, s->h, used);
        if (e != PL_OK) {
            stream_abort(c, s, e);
            return;
        }
        stream_flush(c, s);
        if (pl__mss_state_of(s->mss) != PL__MSS_DONE) return;
        uint32_t h = s->h;
        negotiated(c, s);
        if (!(s = find(c, h))) return;
        d += used;
        n -= used;
    }
    stream_deliver(c, s, d, n);
}

static void stream_eof(pl__conn *c, stream *s) {
    s->remote_eof = true;
    if (!s->negotiated) {
        stream_abort(c, s, PL_ERR_P2P_NEGOTIATION);
        return;
    }
    switch (s->kind) {
    case SK_PING:
    case SK_ID_RESP:
        s->close_wanted = true;
        stream_flush(c, s);
        break;
    case SK_ID_REQ:
        if (c->id_pending) identified(c, PL_ERR_TRUNCATED);
        s->roff = s->rlen;
        break;
    case SK_APP:
        if (!s->eof_event) {
            s->eof_event = true;
            push(c, PL__CONN_EV_STREAM_EOF, s->h, PL_OK);
        }
        break;
    }
    maybe_finish(c, s);
}

/* ---- the muxer ------------------------------------------------------------------------ */

static void open_identify(pl__conn *c, int64_t now) {
    static const char *const p[] = {PL__ID_PROTOCOL};
    uint32_t h = 0;
    c->id_pending = true;
    c->id_deadline = now + c->cfg.identify_timeout_ms;
    pl_err e = pl__conn_stream_open(c, p, 1, now, &h);
    if (e != PL_OK) {
        identified(c, e);
        return;
    }
    stream *s = find(c, h);
    s->kind = SK_ID_REQ;
    s->visible = false;
    s->rmax = PL__ID_MAX_MESSAGE + PL_UVARINT_MAX_BYTES;
    c->id_stream = h;
}

static void drain_mux(pl__conn *c) {
    pl__mux_event ev;
    while (c->mux && c->ph == PH_MUX && pl__mux_poll(c->mux, &ev)) {
        stream *s = ev.kind == PL__MUX_EV_FAILED ? NULL : find(c, ev.handle);
        switch (ev.kind) {
        case PL__MUX_EV_STREAM_OPENED: {
            stream *ns = stream_new(c, ev.handle, SK_APP, true);
            if (ns && pl__mss_new_listener(&ns->mss, supports_inbound, c, c->now,
                                           c->cfg.negotiation_timeout_ms) == PL_OK) {
                stream_flush(c, ns);
            } else {
                if (ns) stream_free(c, ns);
                pl__mux_reset(c->mux, ev.handle);
            }
            break;
        }
        case PL__MUX_EV_DATA:
            if (s) stream_data(c, s, ev.data, ev.len);
            break;
        case PL__MUX_EV_EOF:
            if (s) stream_eof(c, s);
            break;
        case PL__MUX_EV_RESET:
            if (s) stream_gone(c, s, ev.err == PL_OK ? PL_ERR_P2P_STREAM_RESET : ev.err);
            break;
        case PL__MUX_EV_WRITABLE:
            if (s) stream_flush(c, s);
            break;
        case PL__MUX_EV_PING:
        case PL__MUX_EV_GOAWAY:
            break;
        case PL__MUX_EV_FAILED:
            fail(c, ev.err);
            break;
        }
    }
}

static void pump(pl__conn *c) {
    /* Muxer output frees muxer space, which can make streams writable,
     * whose data is muxer output again: go round while output moves. */
    for (;;) {
        drain_mux(c);
        size_t before = out_pending(c);
        flush_plain(c);
        if (c->ph == PH_CLOSED || out_pending(c) == before) break;
    }
}

/* ---- connection phases ------------------------------------------------------------- */

static void fail(pl__conn *c, pl_err err) {
    if (c->ph == PH_CLOSED) return;
    identified(c, err);
    while (c->streams) {
        stream *s = c->streams;
        if (s->visible) push(c, PL__CONN_EV_STREAM_CLOSED, s->h, PL_ERR_CLOSED);
        stream_free(c, s);
    }
    pl__mss_free(c->mss);
    c->mss = NULL;
    c->ph = PH_CLOSED;
    c->err = err;
    push(c, PL__CONN_EV_CLOSED, 0, err);
}

static bool supports_sec(void *ud, const char *p, size_t n) {
    (void)ud;
    return n == strlen(PL__NXX_PROTOCOL) && !memcmp(p, PL__NXX_PROTOCOL, n);
}

static bool supports_mux(void *ud, const char *p, size_t n) {
    const pl__conn *c = ud;
    for (size_t i = 0; i < c->nmux; i++)
        if (strlen(c->mux_names[i]) == n && !memcmp(c->mux_names[i], p, n)) return true;
    return false;
}

static pl_err start_mss_mux(pl__conn *c, int64_t now) {
    pl_err e = c->cfg.initiator
                   ? pl__mss_new_dialer(&c->mss, c->mux_names, c->nmux, now, INT64_MAX / 4)
                   : pl__mss_new_listener(&c->mss, supports_mux, c, now, INT64_MAX / 4);
    if (e != PL_OK) return e;
    c->ph = PH_MSS_MUX;
    flush_plain(c);
    return PL_OK;
}

static pl_err on_noise_message(pl__conn *c, const uint8_t *m, size_t n, int64_t now) {
    PL_TRY(pl__nxx_read(c->nxx, m, n));
    if (pl__nxx_action_of(c->nxx) == PL__NXX_WRITE) {
        uint8_t buf[1024];
        size_t len = 0;
        PL_TRY(pl__nxx_write(c->nxx, buf, sizeof buf, &len));
        PL_TRY(out_raw(c, buf, len));
    }
    if (pl__nxx_action_of(c->nxx) == PL__NXX_DONE) {
        c->remote = *pl__nxx_remote_peer(c->nxx);
        push(c, PL__CONN_EV_SECURED, 0, PL_OK);
        PL_TRY(start_mss_mux(c, now));
    }
    return PL_OK;
}

static pl_err start_noise(pl__conn *c) {
    PL_TRY(pl__nxx_new(&c->nxx, c->cfg.initiator, c->cfg.identity,
                       c->cfg.expected_peer.len ? &c->cfg.expected_peer : NULL, c->cfg.ephemeral));
    c->ph = PH_NOISE;
    if (c->cfg.initiator) {
        uint8_t buf[64];
        size_t len = 0;
        PL_TRY(pl__nxx_write(c->nxx, buf, sizeof buf, &len));
        PL_TRY(out_raw(c, buf, len));
    }
    return PL_OK;
}

static pl_err on_plain(pl__conn *c, const uint8_t *p, size_t n, int64_t now) {
    if (c->ph == PH_MSS_MUX) {
        size_t used = 0;
        PL_TRY(pl__mss_recv(c->mss, p, n, &used));
        flush_plain(c);
        if (pl__mss_state_of(c->mss) != PL__MSS_DONE) return PL_OK;
        const char *chosen = pl__mss_protocol(c->mss);
        c->mux_kind = !strcmp(chosen, PL_MUX_YAMUX_PROTOCOL) ? PL__MUX_YAMUX : PL__MUX_MPLEX;
        pl__mss_free(c->mss);
        c->mss = NULL;
        pl__mux_limits lim = c->cfg.mux;
        lim.max_output = PL__CONN_MUX_OUTPUT;
        /* mplex has no flow control: our receive buffers are its only
         * bound, and credit() keeps them under stream_recv_buffer. */
        if (!lim.max_stream_buffer) lim.max_stream_buffer = c->cfg.stream_recv_buffer;
        PL_TRY(pl__mux_new(&c->mux, c->mux_kind, c->cfg.initiator, &lim, now));
        c->ph = PH_MUX;
        push(c, PL__CONN_EV_READY, 0, PL_OK);
        open_identify(c, now);
        p += used;
        n -= used;
    }
    if (n && c->ph == PH_MUX) {
        pl_err e = pl__mux_recv(c->mux, p, n, now);
        drain_mux(c);
        if (e != PL_OK) return e;
    }
    return PL_OK;
}

static pl_err recv_step(pl__conn *c, const uint8_t *data, size_t len, size_t *used, int64_t now) {
    *used = 0;
    if (c->ph == PH_MSS_SEC) {
        PL_TRY(pl__mss_recv(c->mss, data, len, used));
        const uint8_t *d;
        size_t n = pl__mss_output(c->mss, &d);
        PL_TRY(out_raw(c, d, n));
        pl__mss_output_done(c->mss, n);
        if (pl__mss_state_of(c->mss) == PL__MSS_DONE) {
            pl__mss_free(c->mss);
            c->mss = NULL;
            PL_TRY(start_noise(c));
        }
        return PL_OK;
    }
    const uint8_t *frame = NULL;
    size_t flen = 0;
    PL_TRY(pl__nxx_framer_feed(&c->framer, data, len, used, &frame, &flen));
    if (!frame) return PL_OK;
    if (c->ph == PH_NOISE) return on_noise_message(c, frame, flen, now);
    if (c->plain_cap < flen) {
        uint8_t *p = realloc(c->plain, flen);
        if (!p) return PL_ERR_NOMEM;
        c->plain = p;
        c->plain_cap = flen;
    }
    size_t pn = 0;
    PL_TRY(pl__nxx_decrypt(c->nxx, frame, flen, c->plain, &pn));
    return on_plain(c, c->plain, pn, now);
}

/* ---- public ------------------------------------------------------------------------------ */

pl_err pl__conn_new(pl__conn **out, const pl__conn_config *cfg, int64_t now_ms) {
    PL_REQUIRE(out && cfg && cfg->identity && cfg->key);
    *out = NULL;
    pl__conn *c = calloc(1, sizeof *c);
    if (!c) return PL_ERR_NOMEM;
    c->cfg = *cfg;
    pl__conn_config *k = &c->cfg;
    if (!k->handshake_timeout_ms) k->handshake_timeout_ms = PL__CONN_DEF_HANDSHAKE_MS;
    if (!k->negotiation_timeout_ms) k->negotiation_timeout_ms = PL__CONN_DEF_NEGOTIATION_MS;
    if (!k->identify_timeout_ms) k->identify_timeout_ms = PL__CONN_DEF_IDENTIFY_MS;
    if (!k->stream_recv_buffer) k->stream_recv_buffer = PL__CONN_DEF_STREAM_RECV;
    if (!k->stream_send_buffer) k->stream_send_buffer = PL__CONN_DEF_STREAM_SEND;
    if (!k->max_output) k->max_output = PL__CONN_DEF_MAX_OUTPUT;
    snprintf(c->agent, sizeof c->agent, "%s",
             k->agent_version ? k->agent_version : "pairlink/" PL_VERSION_STRING);
    for (size_t i = 0; i < 2 && k->muxers[i]; i++)
        c->mux_names[c->nmux++] = mux_name(k->muxers[i]);
    if (c->nmux == 0) {
        free(c);
        return PL_ERR_INVALID_ARG;
    }
    c->hs_deadline = now_ms + k->handshake_timeout_ms;
    c->ph = PH_MSS_SEC;
    static const char *const sec[] = {PL__NXX_PROTOCOL};
    pl_err e = k->initiator ? pl__mss_new_dialer(&c->mss, sec, 1, now_ms, INT64_MAX / 4)
                            : pl__mss_new_listener(&c->mss, supports_sec, c, now_ms, INT64_MAX / 4);
    if (e == PL_OK) {
        const uint8_t *d;
        size_t n = pl__mss_output(c->mss, &d);
        e = out_raw(c, d, n);
        if (e == PL_OK) pl__mss_output_done(c->mss, n);
    }
    if (e != PL_OK) {
        pl__conn_free(c);
        return e;
    }
    *out = c;
    return PL_OK;
}

void pl__conn_free(pl__conn *c) {
    if (!c) return;
    while (c->streams)
        stream_free(c, c->streams);
    pl__mss_free(c->mss);
    pl__nxx_free(c->nxx);
    pl__nxx_framer_free(&c->framer);
    pl__mux_free(c->mux);
    pl__identify_free(c->remote_id);
    free(c->plain);
    free(c->out);
    free(c->ev);
    free(c);
}

pl_err pl__conn_recv(pl__conn *c, const uint8_t *data, size_t len, int64_t now_ms) {
    PL_REQUIRE(c && (data || len == 0));
    c->now = now_ms;
    size_t off = 0;
    while (off < len && c->ph != PH_CLOSED) {
        size_t used = 0;
        pl_err e = recv_step(c, data + off, len - off, &used, now_ms);
        if (e != PL_OK) {
            fail(c, e);
            break;
        }
        off += used;
    }
    pump(c);
    return c->ph == PH_CLOSED ? c->err : PL_OK;
}

void pl__conn_recv_eof(pl__conn *c, int64_t now_ms) {
    PL_REQUIRE(c);
    c->now = now_ms;
    fail(c, PL_ERR_CLOSED);
}

size_t pl__conn_output(pl__conn *c, const uint8_t **data) {
    PL_REQUIRE(c && data);
    *data = c->out + c->out_off;
    return out_pending(c);
}

void pl__conn_output_done(pl__conn *c, size_t n, int64_t now_ms) {
    PL_REQUIRE(c && n <= out_pending(c));
    c->now = now_ms;
    c->out_off += n;
    if (c->out_off == c->out_len) {
        c->out_off = c->out_len = 0;
        /* An idle connection keeps no big output buffer. */
        if (c->out_cap > 64 * 1024) {
            free(c->out);
            c->out = NULL;
            c->out_cap = 0;
        }
    }
    if (c->ph == PH_MUX) pump(c);
}

bool pl__conn_poll(pl__conn *c, pl__conn_event *ev) {
    PL_REQUIRE(c && ev);
    while (c->ev_len > 0) {
        *ev = c->ev[c->ev_head++];
        c->ev_len--;
        if (c->ev_len == 0) c->ev_head = 0;
        stream *s = NULL;
        switch (ev->kind) {
        case PL__CONN_EV_STREAM_OPENED:
        case PL__CONN_EV_STREAM_READABLE:
        case PL__CONN_EV_STREAM_EOF:
        case PL__CONN_EV_STREAM_WRITABLE:
            s = find(c, ev->stream);
            if (!s) continue; /* gone since: its CLOSED follows or was reset */
            if (ev->kind == PL__CONN_EV_STREAM_READABLE) s->ev_readable = false;
            if (ev->kind == PL__CONN_EV_STREAM_WRITABLE) s->ev_writable = false;
            if (ev->kind == PL__CONN_EV_STREAM_OPENED) ev->protocol = s->protocol;
            return true;
        default:
            return true;
        }
    }
    memset(ev, 0, sizeof *ev);
    return false;
}

int64_t pl__conn_next_deadline(const pl__conn *c) {
    PL_REQUIRE(c);
    if (c->ph == PH_CLOSED) return INT64_MAX;
    if (c->ph != PH_MUX) return c->hs_deadline;
    int64_t d = pl__mux_next_deadline(c->mux);
    if (c->id_pending && c->id_deadline < d) d = c->id_deadline;
    for (const stream *s = c->streams; s; s = s->next)
        if (s->mss && !s->negotiated && pl__mss_deadline(s->mss) < d) d = pl__mss_deadline(s->mss);
    return d;
}

void pl__conn_on_timer(pl__conn *c, int64_t now_ms) {
    PL_REQUIRE(c);
    c->now = now_ms;
    if (c->ph == PH_CLOSED) return;
    if (c->ph != PH_MUX) {
        if (now_ms >= c->hs_deadline) fail(c, PL_ERR_TIMEOUT);
        return;
    }
    pl__mux_on_timer(c->mux, now_ms);
    if (c->id_pending && now_ms >= c->id_deadline) {
        identified(c, PL_ERR_TIMEOUT);
        stream *s = find(c, c->id_stream);
        if (s) stream_abort(c, s, PL_ERR_TIMEOUT);
    }
    for (stream *s = c->streams, *next; s; s = next) {
        next = s->next;
        if (!s->mss || s->negotiated) continue;
        pl__mss_on_timer(s->mss, now_ms);
        if (pl__mss_state_of(s->mss) == PL__MSS_FAILED) {
            /* A stream freed here may be `next`'s predecessor only. */
            stream_abort(c, s, PL_ERR_TIMEOUT);
        }
    }
    pump(c);
}

void pl__conn_close(pl__conn *c, pl_err reason, int64_t now_ms) {
    PL_REQUIRE(c);
    c->now = now_ms;
    if (c->ph == PH_CLOSED) return;
    if (c->ph == PH_MUX) {
        pl__mux_go_away(c->mux);
        flush_plain(c);
    }
    fail(c, reason);
}

bool pl__conn_is_closed(const pl__conn *c) {
    PL_REQUIRE(c);
    return c->ph == PH_CLOSED;
}

pl_err pl__conn_error(const pl__conn *c) {
    PL_REQUIRE(c);
    return c->ph == PH_CLOSED ? c->err : PL_OK;
}

const pl_p2p_peer_id *pl__conn_remote_peer(const pl__conn *c) {
    PL_REQUIRE(c);
    return &c->remote;
}

const pl_p2p_identify *pl__conn_identify(const pl__conn *c) {
    PL_REQUIRE(c);
    return c->remote_id ? &c->remote_id->info : NULL;
}

pl__mux_kind pl__conn_muxer(const pl__conn *c) {
    PL_REQUIRE(c);
    return c->mux ? c->mux_kind : 0;
}

/* ---- stream API ---------------------------------------------------------------------------- */

pl_err pl__conn_stream_open(pl__conn *c, const char *const *protos, size_t n, int64_t now_ms,
                            uint32_t *out) {
    PL_REQUIRE(c && (protos || n == 0) && out);
    *out = 0;
    c->now = now_ms;
    if (c->ph != PH_MUX) return PL_ERR_STATE;
    if (n == 0 || n > PL__MSS_MAX_PROPOSALS) return PL_ERR_INVALID_ARG;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (!pl__mss_protocol_ok(protos[i])) return PL_ERR_INVALID_ARG;
        total += strlen(protos[i]) + 1;
    }
    uint32_t h = 0;
    PL_TRY(pl__mux_open(c->mux, &h));
    stream *s = stream_new(c, h, SK_APP, false);
    if (s) s->visible = true; /* the caller holds the handle from now on */
    char *block = s ? malloc(total) : NULL;
    if (!block) {
        if (s) stream_free(c, s);
        pl__mux_reset(c->mux, h);
        return PL_ERR_NOMEM;
    }
    s->proposals = block;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(protos[i]) + 1;
        memcpy(block, protos[i], l);
        s->plist[i] = block;
        block += l;
    }
    pl_err e = pl__mss_new_dialer(&s->mss, s->plist, n, now_ms, c->cfg.negotiation_timeout_ms);
    if (e != PL_OK) {
        stream_free(c, s);
        pl__mux_reset(c->mux, h);
        return e;
    }
    stream_flush(c, s);
    pump(c);
    *out = h;
    return PL_OK;
}

static stream *app_stream(const pl__conn *c, uint32_t h) {
    stream *s = c->ph == PH_MUX ? find(c, h) : NULL;
    return s && s->kind == SK_APP ? s : NULL;
}

pl_err pl__conn_stream_write(pl__conn *c, uint32_t h, const uint8_t *data, size_t len,
                             size_t *taken) {
    PL_REQUIRE(c && (data || len == 0) && taken);
    *taken = 0;
    stream *s = app_stream(c, h);
    if (!s) return PL_ERR_NOT_FOUND;
    if (s->close_wanted) return PL_ERR_CLOSED;
    size_t done = 0;
    /* Straight to the muxer when nothing waits before these bytes. */
    if (s->negotiated && !s->mss && s_unsent(s) == 0 && len > 0) {
        if (pl__mux_write(c->mux, h, data, len, &done) != PL_OK) done = 0;
    }
    size_t room =
        c->cfg.stream_send_buffer > s_unsent(s) ? c->cfg.stream_send_buffer - s_unsent(s) : 0;
    size_t more = len - done < room ? len - done : room;
    if (more && sbuf_append(s, data + done, more) != PL_OK) more = 0;
    done += more;
    *taken = done;
    if (done < len) s->want_writable = true;
    if (s->negotiated) stream_flush(c, s);
    pump(c);
    return PL_OK;
}

void pl__conn_stream_want_writable(pl__conn *c, uint32_t h) {
    PL_REQUIRE(c);
    stream *s = app_stream(c, h);
    if (s && !s->close_wanted) s->want_writable = true;
}

size_t pl__conn_stream_send_space(const pl__conn *c, uint32_t h) {
    PL_REQUIRE(c);
    stream *s = app_stream(c, h);
    if (!s || s->close_wanted) return 0;
    return c->cfg.stream_send_buffer > s_unsent(s) ? c->cfg.stream_send_buffer - s_unsent(s) : 0;
}

size_t pl__conn_stream_peek(const pl__conn *c, uint32_t h, const uint8_t **data) {
    PL_REQUIRE(c && data);
    stream *s = app_stream(c, h);
    *data = s && s->rbuf ? s->rbuf + s->roff : NULL;
    return s ? s_unread(s) : 0;
}

void pl__conn_stream_consume(pl__conn *c, uint32_t h, size_t n, int64_t now_ms) {
    PL_REQUIRE(c);
    c->now = now_ms;
    stream *s = app_stream(c, h);
    if (!s) return;
    PL_REQUIRE(n <= s_unread(s));
    s->roff += n;
    if (s->roff == s->rlen) {
        s->roff = s->rlen = 0;
        if (s->rcap > 64 * 1024) {
            free(s->rbuf);
            s->rbuf = NULL;
            s->rcap = 0;
        }
    }
    credit(c, s);
    if (!maybe_finish(c, s))
        pump(c);
    else
        pump(c);
}

pl_err pl__conn_stream_close(pl__conn *c, uint32_t h, int64_t now_ms) {
    PL_REQUIRE(c);
    c->now = now_ms;
    stream *s = app_stream(c, h);
    if (!s) return PL_ERR_NOT_FOUND;
    s->close_wanted = true;
    s->want_writable = false;
    stream_flush(c, s);
    maybe_finish(c, s);
    pump(c);
    return PL_OK;
}

pl_err pl__conn_stream_reset(pl__conn *c, uint32_t h, int64_t now_ms) {
    PL_REQUIRE(c);
    c->now = now_ms;
    stream *s = app_stream(c, h);
    if (!s) return PL_ERR_NOT_FOUND;
    pl__mux_reset(c->mux, h);
    stream_free(c, s);
    pump(c);
    return PL_OK;
}

const char *pl__conn_stream_protocol(const pl__conn *c, uint32_t h) {
    PL_REQUIRE(c);
    stream *s = app_stream(c, h);
    return s ? s->protocol : NULL;
}

size_t pl__conn_stream_count(const pl__conn *c) {
    PL_REQUIRE(c);
    return c->nstreams;
}
