/* SPDX-License-Identifier: Apache-2.0 */
/* multistream-select 1.0: see mss.h. */
#include "p2p/mss.h"

#include "pairlink/codec.h"

#include <stdlib.h>
#include <string.h>

#define HEADER_LEN (sizeof PL__MSS_HEADER - 1)
/* One framed message: varint (2 bytes for 1024) + text + newline. */
#define FRAME_MAX (PL__MSS_MAX_LINE + PL_UVARINT_MAX_BYTES)

struct pl__mss {
    bool dialer;
    pl__mss_state state;
    pl_err err;
    int64_t deadline;
    bool got_header;
    /* dialer */
    const char *const *protos;
    size_t nprotos, next;
    /* listener */
    pl__mss_supports_fn supports;
    void *ud;
    unsigned rounds;
    char chosen[PL__MSS_MAX_LINE];
    /* a partial message from the peer */
    uint8_t in[FRAME_MAX];
    size_t in_len;
    /* output; at most one header and PL__MSS_MAX_ROUNDS answers */
    uint8_t *out;
    size_t out_len, out_cap;
};

bool pl__mss_protocol_ok(const char *proto) {
    if (!proto) return false;
    size_t n = strnlen(proto, PL__MSS_MAX_PROTOCOL + 1);
    if (n == 0 || n > PL__MSS_MAX_PROTOCOL) return false;
    if (memchr(proto, '\n', n)) return false;
    return pl__utf8_valid((const unsigned char *)proto, n);
}

static pl_err emit(pl__mss *m, const char *text, size_t n) {
    uint8_t v[PL_UVARINT_MAX_BYTES];
    size_t vl = pl_uvarint_encode(v, n + 1);
    size_t need = m->out_len + vl + n + 1;
    if (need > m->out_cap) {
        size_t cap = m->out_cap ? m->out_cap * 2 : 256;
        while (cap < need)
            cap *= 2;
        uint8_t *p = realloc(m->out, cap);
        if (!p) return PL_ERR_NOMEM;
        m->out = p;
        m->out_cap = cap;
    }
    memcpy(m->out + m->out_len, v, vl);
    memcpy(m->out + m->out_len + vl, text, n);
    m->out[m->out_len + vl + n] = '\n';
    m->out_len = need;
    return PL_OK;
}

static pl__mss *alloc_mss(bool dialer, int64_t now_ms, int64_t timeout_ms) {
    pl__mss *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->dialer = dialer;
    m->deadline = timeout_ms > INT64_MAX - now_ms ? INT64_MAX : now_ms + timeout_ms;
    return m;
}

pl_err pl__mss_new_dialer(pl__mss **out, const char *const *protos, size_t n, int64_t now_ms,
                          int64_t timeout_ms) {
    PL_REQUIRE(out && (protos || n == 0) && timeout_ms >= 0);
    *out = NULL;
    if (n == 0 || n > PL__MSS_MAX_PROPOSALS) return PL_ERR_INVALID_ARG;
    for (size_t i = 0; i < n; i++)
        if (!pl__mss_protocol_ok(protos[i])) return PL_ERR_INVALID_ARG;
    pl__mss *m = alloc_mss(true, now_ms, timeout_ms);
    if (!m) return PL_ERR_NOMEM;
    m->protos = protos;
    m->nprotos = n;
    if (emit(m, PL__MSS_HEADER, HEADER_LEN) != PL_OK ||
        emit(m, protos[0], strlen(protos[0])) != PL_OK) {
        pl__mss_free(m);
        return PL_ERR_NOMEM;
    }
    *out = m;
    return PL_OK;
}

pl_err pl__mss_new_listener(pl__mss **out, pl__mss_supports_fn supports, void *ud, int64_t now_ms,
                            int64_t timeout_ms) {
    PL_REQUIRE(out && supports && timeout_ms >= 0);
    *out = NULL;
    pl__mss *m = alloc_mss(false, now_ms, timeout_ms);
    if (!m) return PL_ERR_NOMEM;
    m->supports = supports;
    m->ud = ud;
    /* The header goes out at once rather than after the dialer's: one
     * round trip less, and every implementation accepts either order. */
    if (emit(m, PL__MSS_HEADER, HEADER_LEN) != PL_OK) {
        pl__mss_free(m);
        return PL_ERR_NOMEM;
    }
    *out = m;
    return PL_OK;
}

void pl__mss_free(pl__mss *m) {
    if (!m) return;
    free(m->out);
    free(m);
}

static pl_err fail(pl__mss *m, pl_err e) {
    m->state = PL__MSS_FAILED;
    m->err = e;
    return e;
}

static bool is(const uint8_t *line, size_t n, const char *s) {
    return n == strlen(s) && memcmp(line, s, n) == 0;
}

/* One complete line (without its newline). */
static pl_err on_line(pl__mss *m, const uint8_t *line, size_t n) {
    if (memchr(line, '\n', n) || memchr(line, '\0', n)) return fail(m, PL_ERR_P2P_MULTISTREAM);
    if (!m->got_header) {
        if (!is(line, n, PL__MSS_HEADER)) return fail(m, PL_ERR_P2P_MULTISTREAM);
        m->got_header = true;
        return PL_OK;
    }
    if (m->dialer) {
        const char *want = m->protos[m->next];
        if (is(line, n, want)) {
            memcpy(m->chosen, want, n + 1);
            m->state = PL__MSS_DONE;
            return PL_OK;
        }
        if (!is(line, n, "na")) return fail(m, PL_ERR_P2P_MULTISTREAM);
        if (++m->next == m->nprotos) return fail(m, PL_ERR_P2P_NEGOTIATION);
        pl_err e = emit(m, m->protos[m->next], strlen(m->protos[m->next]));
        return e == PL_OK ? PL_OK : fail(m, e);
    }
    /* Listener. A repeated header is harmless (js answers it too). */
    if (is(line, n, PL__MSS_HEADER)) return PL_OK;
    if (++m->rounds > PL__MSS_MAX_ROUNDS) return fail(m, PL_ERR_P2P_NEGOTIATION);
    pl_err e;
    if (n > 0 && !is(line, n, "ls") && pl__utf8_valid(line, n) &&
        m->supports(m->ud, (const char *)line, n)) {
        memcpy(m->chosen, line, n);
        m->chosen[n] = '\0';
        e = emit(m, m->chosen, n);
        if (e == PL_OK) m->state = PL__MSS_DONE;
    } else {
        /* "ls" is answered "na" too: listing what we serve helps nobody. */
        e = emit(m, "na", 2);
    }
    return e == PL_OK ? PL_OK : fail(m, e);
}

pl_err pl__mss_recv(pl__mss *m, const uint8_t *data, size_t len, size_t *used) {
    PL_REQUIRE(m && (data || len == 0) && used);
    *used = 0;
    if (m->state == PL__MSS_FAILED) return m->err;
    size_t i = 0;
    /* The loop also runs with no input left, so that a bad length is
     * reported as soon as its last byte arrived. */
    while (m->state == PL__MSS_PENDING) {
        /* Accumulate only what the current message needs, so that the
         * bytes after the last one stay with the caller. */
        uint64_t l = 0;
        size_t vl = 0;
        pl_err e = pl_uvarint_decode(&l, &vl, m->in, m->in_len);
        if (e == PL_ERR_TRUNCATED) {
            if (i == len) break;
            m->in[m->in_len++] = data[i++];
            if (m->in_len > PL_UVARINT_MAX_BYTES) return fail(m, PL_ERR_P2P_MULTISTREAM);
            continue;
        }
        if (e != PL_OK || l == 0 || l > PL__MSS_MAX_LINE) {
            *used = i;
            return fail(m, PL_ERR_P2P_MULTISTREAM);
        }
        size_t total = vl + (size_t)l;
        if (i == len && m->in_len < total) break;
        size_t take = total - m->in_len;
        if (take > len - i) take = len - i;
        memcpy(m->in + m->in_len, data + i, take);
        m->in_len += take;
        i += take;
        if (m->in_len < total) break;
        if (m->in[total - 1] != '\n') {
            *used = i;
            return fail(m, PL_ERR_P2P_MULTISTREAM);
        }
        m->in_len = 0;
        e = on_line(m, m->in + vl, (size_t)l - 1);
        if (e != PL_OK) {
            *used = i;
            return e;
        }
    }
    *used = i;
    return PL_OK;
}

pl__mss_state pl__mss_state_of(const pl__mss *m) {
    PL_REQUIRE(m);
    return m->state;
}

pl_err pl__mss_error(const pl__mss *m) {
    PL_REQUIRE(m);
    return m->state == PL__MSS_FAILED ? m->err : PL_OK;
}

const char *pl__mss_protocol(const pl__mss *m) {
    PL_REQUIRE(m);
    return m->state == PL__MSS_DONE ? m->chosen : NULL;
}

size_t pl__mss_chosen(const pl__mss *m) {
    PL_REQUIRE(m);
    return m->next;
}

size_t pl__mss_output(pl__mss *m, const uint8_t **data) {
    PL_REQUIRE(m && data);
    *data = m->out;
    return m->out_len;
}

void pl__mss_output_done(pl__mss *m, size_t n) {
    PL_REQUIRE(m && n <= m->out_len);
    memmove(m->out, m->out + n, m->out_len - n);
    m->out_len -= n;
}

int64_t pl__mss_deadline(const pl__mss *m) {
    PL_REQUIRE(m);
    return m->state == PL__MSS_PENDING ? m->deadline : INT64_MAX;
}

void pl__mss_on_timer(pl__mss *m, int64_t now_ms) {
    PL_REQUIRE(m);
    if (m->state == PL__MSS_PENDING && now_ms >= m->deadline) fail(m, PL_ERR_TIMEOUT);
}
