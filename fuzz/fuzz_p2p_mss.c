/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: multistream-select, both roles.
 *
 * Input: selector byte, then the peer's bytes. selector bit 0: 0 = listener
 * (serving /noise and /yamux/1.0.0), 1 = dialer (proposing /mplex/6.7.0
 * then /yamux/1.0.0); selector >> 1 (+1) is the size of the chunks fed.
 * Properties: used <= offered; nothing is consumed after the end (DONE or
 * FAILED); a DONE negotiation names a protocol of the lists; the output
 * stays bounded. */
#include "p2p/mss.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond) {
    if (!cond) abort();
}

static bool supports(void *ud, const char *p, size_t n) {
    (void)ud;
    return (n == 6 && !memcmp(p, "/noise", 6)) || (n == 12 && !memcmp(p, "/yamux/1.0.0", 12));
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    return pl_init() == PL_OK ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    static const char *const protos[] = {"/mplex/6.7.0", "/yamux/1.0.0"};
    bool dialer = data[0] & 1;
    size_t chunk = (size_t)(data[0] >> 1) + 1;
    pl__mss *m = NULL;
    if (dialer)
        check(pl__mss_new_dialer(&m, protos, 2, 0, 1000) == PL_OK);
    else
        check(pl__mss_new_listener(&m, supports, NULL, 0, 1000) == PL_OK);
    size_t off = 1;
    while (off < size) {
        size_t n = size - off < chunk ? size - off : chunk;
        size_t used = 0;
        pl_err e = pl__mss_recv(m, data + off, n, &used);
        check(used <= n);
        off += used;
        const uint8_t *o;
        size_t ol = pl__mss_output(m, &o);
        check(ol <= 16 * 1040 + 64);
        pl__mss_output_done(m, ol / 2);
        if (e != PL_OK) {
            check(pl__mss_state_of(m) == PL__MSS_FAILED && pl__mss_error(m) == e);
            break;
        }
        if (pl__mss_state_of(m) == PL__MSS_DONE) {
            const char *p = pl__mss_protocol(m);
            check(p &&
                  (!strcmp(p, "/yamux/1.0.0") || !strcmp(p, dialer ? "/mplex/6.7.0" : "/noise")));
            size_t again = 0;
            check(pl__mss_recv(m, data + off, size - off, &again) == PL_OK && again == 0);
            break;
        }
        check(used == n);
    }
    pl__mss_on_timer(m, 1000);
    check(pl__mss_state_of(m) != PL__MSS_PENDING);
    pl__mss_free(m);
    return 0;
}
