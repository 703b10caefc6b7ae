/* SPDX-License-Identifier: Apache-2.0 */
#include "support/p2p_echo.h"

#include <string.h>

static pl_test_echo_stream *slot(pl_test_echo *e, pl_p2p_stream_id id, bool make) {
    for (size_t i = 0; i < e->n; i++)
        if (e->s[i].id == id) return &e->s[i];
    if (!make || e->n == PL_TEST_ECHO_STREAMS) return NULL;
    pl_test_echo_stream *s = &e->s[e->n++];
    memset(s, 0, sizeof *s);
    s->id = id;
    return s;
}

static void pump(pl_test_echo *e, pl_p2p_host *h, pl_test_echo_stream *st) {
    for (;;) {
        const uint8_t *d;
        size_t n = 0, taken = 0;
        if (pl_p2p_stream_peek(h, st->id, &d, &n) != PL_OK) return;
        if (n == 0) break;
        if (pl_p2p_stream_write(h, st->id, d, n, &taken) != PL_OK || taken == 0) return;
        (void)pl_p2p_stream_consume(h, st->id, taken);
        e->echoed += taken;
        st->bytes += taken;
    }
    if (st->eof) (void)pl_p2p_stream_close(h, st->id);
}

void pl_test_echo_cb(void *ud, pl_p2p_host *h, const pl_p2p_stream_event *ev) {
    pl_test_echo *e = ud;
    pl_test_echo_stream *st = slot(e, ev->stream, ev->kind != PL_P2P_STREAM_CLOSED);
    if (!st) {
        /* More streams at once than this test helper follows. */
        if (ev->kind != PL_P2P_STREAM_CLOSED) (void)pl_p2p_stream_reset(h, ev->stream);
        return;
    }
    if (ev->kind == PL_P2P_STREAM_CLOSED) {
        if (ev->err == PL_OK) e->streams_done++;
        if (e->on_done) e->on_done(e->done_ud, ev, st->bytes);
        *st = e->s[--e->n];
        return;
    }
    if (ev->kind == PL_P2P_STREAM_EOF) st->eof = true;
    pump(e, h, st);
}
