/* The test echo protocol /pairlink/test/echo/1.0.0, responder side, for the
 * host tests and the interop driver: every byte read is written back, and
 * our writing side closes after the reader's EOF once everything was
 * echoed. Flow control is respected (a short write waits for WRITABLE). */
#ifndef PL_TEST_P2P_ECHO_H
#define PL_TEST_P2P_ECHO_H

#include "pairlink/p2p.h"

#define PL_TEST_ECHO_PROTOCOL "/pairlink/test/echo/1.0.0"

typedef struct pl_test_echo {
    pl_p2p_stream_id eof[64]; /* streams whose peer closed */
    size_t neof;
    size_t echoed;       /* bytes, over all streams */
    size_t streams_done; /* streams that ended with CLOSED PL_OK */
} pl_test_echo;

/* A pl_p2p_stream_cb; ud is a pl_test_echo. */
void pl_test_echo_cb(void *ud, pl_p2p_host *h, const pl_p2p_stream_event *ev);

#endif
