/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the connection core (src/p2p/conn.c) under a hostile
 * peer, before and after the handshake.
 *
 * Input: selector byte, then the data. selector & 1: 0 = the data is raw
 * TCP bytes to a fresh listening core (multistream, Noise frames);
 * 1 = a peer built here from the layer primitives completes multistream,
 * Noise XX and the muxer negotiation honestly (selector & 2: mplex, else
 * yamux), then sends the data as muxer plaintext, encrypted, in pieces
 * whose sizes come from selector >> 2. The application side reads every
 * stream, echoes what it reads, opens a stream and closes streams on EOF;
 * the clock jumps past every deadline at the end.
 * Properties: no crash or leak; the output stays under its cap plus one
 * frame; every CLOSED carries an error code; a closed core stays closed. */
#include "p2p/conn.h"
#include "p2p/mss.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static pl_p2p_key *kc, *kp;
static pl__nxx_identity idc, idp;
static pl__ma listen_ma;
static const uint8_t eph_c[32] = {7}, eph_p[32] = {9};

static void check(int cond) {
    if (!cond) abort();
}

static bool reg_supports(void *ud, const char *p, size_t n) {
    (void)ud;
    return n == 6 && !memcmp(p, "/echo1", 6);
}

static size_t reg_list(void *ud, const char *const **protos) {
    (void)ud;
    static const char *const l[] = {"/echo1"};
    *protos = l;
    return 1;
}

static const pl__conn_registry registry = {reg_supports, reg_list, NULL};

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    if (pl_init() != PL_OK) abort();
    uint8_t s1[32], s2[32];
    memset(s1, 1, 32);
    memset(s2, 2, 32);
    check(pl_p2p_key_from_secret(&kc, PL_P2P_KEY_ED25519, s1) == PL_OK);
    check(pl_p2p_key_from_secret(&kp, PL_P2P_KEY_ED25519, s2) == PL_OK);
    check(pl__nxx_identity_init(&idc, kc, s1) == PL_OK);
    check(pl__nxx_identity_init(&idp, kp, s2) == PL_OK);
    check(pl__ma_parse(&listen_ma, "/ip4/127.0.0.1/tcp/1", 20) == PL_OK);
    return 0;
}

/* The application: read, echo, close on EOF. */
static void app(pl__conn *c, int64_t now) {
    pl__conn_event ev;
    while (pl__conn_poll(c, &ev)) {
        if (ev.kind == PL__CONN_EV_STREAM_CLOSED) check(ev.stream != 0);
        if (ev.kind == PL__CONN_EV_CLOSED) check(ev.err != PL_OK);
        if (ev.kind == PL__CONN_EV_READY) {
            static const char *const p[] = {"/echo1", "/other"};
            uint32_t h;
            (void)pl__conn_stream_open(c, p, 2, now, &h);
        }
        if (ev.kind == PL__CONN_EV_STREAM_READABLE || ev.kind == PL__CONN_EV_STREAM_OPENED) {
            const uint8_t *d;
            size_t n = pl__conn_stream_peek(c, ev.stream, &d);
            size_t taken = 0;
            if (n && pl__conn_stream_write(c, ev.stream, d, n, &taken) == PL_OK)
                pl__conn_stream_consume(c, ev.stream, taken, now);
        }
        if (ev.kind == PL__CONN_EV_STREAM_EOF) (void)pl__conn_stream_close(c, ev.stream, now);
    }
}

static void drain_output(pl__conn *c, int64_t now) {
    const uint8_t *d;
    size_t n = pl__conn_output(c, &d);
    check(n <= PL__CONN_DEF_MAX_OUTPUT + 2 * PL__NXX_MAX_FRAME + PL__CONN_MUX_OUTPUT);
    pl__conn_output_done(c, n, now);
}

static pl__conn *make_core(void) {
    pl__conn_config cfg = {
        .initiator = false,
        .identity = &idc,
        .key = kc,
        .muxers = {PL__MUX_YAMUX, PL__MUX_MPLEX},
        .registry = &registry,
        .listen_addrs = &listen_ma,
        .nlisten_addrs = 1,
        .ephemeral = eph_c,
    };
    pl__conn *c = NULL;
    check(pl__conn_new(&c, &cfg, 0) == PL_OK);
    return c;
}

/* An honest peer up to the muxer: returns its Noise state (for sending). */
static pl__nxx *handshake(pl__conn *c, const char *muxer) {
    static const char *const sec[] = {"/noise"};
    const char *mux[1] = {muxer};
    pl__mss *m = NULL;
    check(pl__mss_new_dialer(&m, sec, 1, 0, 1000) == PL_OK);
    const uint8_t *d;
    size_t n = pl__mss_output(m, &d), used = 0;
    check(pl__conn_recv(c, d, n, 0) == PL_OK);
    pl__mss_output_done(m, n);
    n = pl__conn_output(c, &d);
    check(pl__mss_recv(m, d, n, &used) == PL_OK && pl__mss_state_of(m) == PL__MSS_DONE);
    pl__conn_output_done(c, n, 0);
    pl__mss_free(m);

    pl__nxx *x = NULL;
    check(pl__nxx_new(&x, true, &idp, &idc.peer, eph_p) == PL_OK);
    uint8_t buf[2048];
    size_t len = 0;
    check(pl__nxx_write(x, buf, sizeof buf, &len) == PL_OK);
    check(pl__conn_recv(c, buf, len, 0) == PL_OK);
    n = pl__conn_output(c, &d);
    check(n > 2 && pl__nxx_read(x, d + 2, n - 2) == PL_OK);
    pl__conn_output_done(c, n, 0);
    check(pl__nxx_write(x, buf, sizeof buf, &len) == PL_OK);
    check(pl__conn_recv(c, buf, len, 0) == PL_OK);
    /* The core's muxer negotiation (its header) is now in its output. */
    pl__conn_output_done(c, pl__conn_output(c, &d), 0);

    check(pl__mss_new_dialer(&m, mux, 1, 0, 1000) == PL_OK);
    n = pl__mss_output(m, &d);
    uint8_t frame[256];
    check(pl__nxx_encrypt(x, d, n, frame) == PL_OK);
    check(pl__conn_recv(c, frame, n + 18, 0) == PL_OK);
    pl__mss_free(m);
    app(c, 0);
    drain_output(c, 0);
    return x;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > (1u << 20)) return 0;
    uint8_t sel = data[0];
    const uint8_t *in = data + 1;
    size_t n = size - 1;
    pl__conn *c = make_core();
    if (!(sel & 1)) {
        size_t step = (size_t)(sel >> 1) + 1, off = 0;
        while (off < n && !pl__conn_is_closed(c)) {
            size_t k = n - off < step ? n - off : step;
            (void)pl__conn_recv(c, in + off, k, 0);
            app(c, 0);
            drain_output(c, 0);
            off += k;
        }
    } else {
        pl__nxx *x = handshake(c, sel & 2 ? PL_MUX_MPLEX_PROTOCOL : PL_MUX_YAMUX_PROTOCOL);
        size_t step = ((size_t)(sel >> 2) + 1) * 97, off = 0;
        uint8_t *frame = malloc(PL__NXX_MAX_FRAME + 2);
        int64_t now = 0;
        while (frame && off < n && !pl__conn_is_closed(c)) {
            size_t k = n - off < step ? n - off : step;
            if (k > PL__NXX_MAX_PLAIN) k = PL__NXX_MAX_PLAIN;
            check(pl__nxx_encrypt(x, in + off, k, frame) == PL_OK);
            (void)pl__conn_recv(c, frame, k + 18, now);
            app(c, now);
            drain_output(c, now);
            off += k;
            now += 100;
        }
        free(frame);
        pl__nxx_free(x);
    }
    /* Every deadline passes. */
    pl__conn_on_timer(c, INT64_MAX / 2);
    app(c, INT64_MAX / 2);
    if (pl__conn_is_closed(c)) {
        pl_err e = pl__conn_error(c);
        check(e != PL_OK);
        check(pl__conn_recv(c, in, n, 0) == e);
    }
    pl__conn_free(c);
    return 0;
}
