/* SPDX-License-Identifier: Apache-2.0 */
/* The test echo protocol /pairlink/test/echo/1.0.0, responder side, for the
 * host tests and the interop driver: every byte read is written back, and
 * our writing side closes after the reader's EOF once everything was
 * echoed. Flow control is respected (a short write waits for WRITABLE). */
#ifndef PL_TEST_P2P_ECHO_H
#define PL_TEST_P2P_ECHO_H

#include "pairlink/p2p.h"

#define PL_TEST_ECHO_PROTOCOL "/pairlink/test/echo/1.0.0"
#define PL_TEST_ECHO_STREAMS 64

typedef struct pl_test_echo_stream {
    pl_p2p_stream_id id;
    size_t bytes;
    bool eof;
} pl_test_echo_stream;

typedef struct pl_test_echo {
    pl_test_echo_stream s[PL_TEST_ECHO_STREAMS];
    size_t n;
    size_t echoed;       /* bytes, over all streams */
    size_t streams_done; /* streams that ended with CLOSED PL_OK */
    /* Optional: told when a stream ends (err PL_OK: cleanly). */
    void (*on_done)(void *ud, const pl_p2p_stream_event *ev, size_t bytes);
    void *done_ud;
} pl_test_echo;

/* A pl_p2p_stream_cb; ud is a pl_test_echo. */
void pl_test_echo_cb(void *ud, pl_p2p_host *h, const pl_p2p_stream_event *ev);

#endif
