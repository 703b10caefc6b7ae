#include "support/p2p_echo.h"

#include <string.h>

static bool eof_seen(const pl_test_echo *e, pl_p2p_stream_id s) {
    for (size_t i = 0; i < e->neof; i++)
        if (e->eof[i] == s) return true;
    return false;
}

static void forget(pl_test_echo *e, pl_p2p_stream_id s) {
    for (size_t i = 0; i < e->neof; i++)
        if (e->eof[i] == s) e->eof[i] = e->eof[--e->neof];
}

static void pump(pl_test_echo *e, pl_p2p_host *h, pl_p2p_stream_id s) {
    for (;;) {
        const uint8_t *d;
        size_t n = 0, taken = 0;
        if (pl_p2p_stream_peek(h, s, &d, &n) != PL_OK) return;
        if (n == 0) break;
        if (pl_p2p_stream_write(h, s, d, n, &taken) != PL_OK || taken == 0) return;
        (void)pl_p2p_stream_consume(h, s, taken);
        e->echoed += taken;
    }
    if (eof_seen(e, s)) (void)pl_p2p_stream_close(h, s);
}

void pl_test_echo_cb(void *ud, pl_p2p_host *h, const pl_p2p_stream_event *ev) {
    pl_test_echo *e = ud;
    switch (ev->kind) {
    case PL_P2P_STREAM_EOF:
        if (!eof_seen(e, ev->stream) && e->neof < sizeof e->eof / sizeof e->eof[0])
            e->eof[e->neof++] = ev->stream;
        pump(e, h, ev->stream);
        break;
    case PL_P2P_STREAM_CLOSED:
        if (ev->err == PL_OK) e->streams_done++;
        forget(e, ev->stream);
        break;
    default:
        pump(e, h, ev->stream);
        break;
    }
}
