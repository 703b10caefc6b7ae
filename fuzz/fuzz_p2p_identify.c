/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: a received identify message, with and without the
 * length prefix, and the ping echo check.
 *
 * Input: selector byte, then the data. selector % 3: 0 = an Identify body
 * (decoded with a peer to match), 1 = a length-prefixed stream of them,
 * 2 = ping answers. Properties: decoded strings are UTF-8 and within the
 * bounds; protocol ids are negotiable; addresses parse back. */
#include "p2p/identify.h"
#include "p2p/mss.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static pl_p2p_peer_id peer;

static void check(int cond) {
    if (!cond) abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    if (pl_init() != PL_OK) abort();
    uint8_t s[32];
    memset(s, 3, sizeof s);
    pl_p2p_key *k = NULL;
    check(pl_p2p_key_from_secret(&k, PL_P2P_KEY_ED25519, s) == PL_OK);
    pl_p2p_key_peer_id(k, &peer);
    pl_p2p_key_free(k);
    return 0;
}

static void decode(const uint8_t *m, size_t n) {
    pl__identify_info *info = (pl__identify_info *)1;
    pl_err e = pl__identify_decode(&info, m, n, &peer);
    if (e != PL_OK) {
        check(info == NULL);
        return;
    }
    const pl_p2p_identify *i = &info->info;
    check(strlen(i->agent_version) <= PL__ID_MAX_STRING);
    check(i->nprotocols <= PL__ID_MAX_PROTOCOLS && i->nlisten_addrs <= PL__ID_MAX_ADDRS);
    for (size_t k = 0; k < i->nprotocols; k++)
        check(pl__mss_protocol_ok(i->protocols[k]));
    for (size_t k = 0; k < i->nlisten_addrs; k++) {
        pl__ma ma;
        check(pl__ma_parse(&ma, i->listen_addrs[k], strlen(i->listen_addrs[k])) == PL_OK);
    }
    pl__identify_free(info);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > PL__ID_MAX_MESSAGE + 64) return 0;
    const uint8_t *in = data + 1;
    size_t n = size - 1;
    switch (data[0] % 3) {
    case 0:
        decode(in, n);
        break;
    case 1:
        while (n > 0) {
            const uint8_t *m;
            size_t ml, used;
            if (pl__lp_parse(in, n, PL__ID_MAX_MESSAGE, &m, &ml, &used) != PL_OK) break;
            check(used > 0 && used <= n && ml < used);
            decode(m, ml);
            in += used;
            n -= used;
        }
        break;
    default: {
        pl__ping p;
        uint8_t r[PL__PING_SIZE];
        memset(r, 0x5a, sizeof r);
        pl__ping_start(&p, r);
        while (n > 0) {
            size_t used = 0;
            bool done = false;
            pl_err e = pl__ping_recv(&p, in, n, &used, &done);
            check(used <= n);
            if (e != PL_OK || done || used == 0) break;
            in += used;
            n -= used;
        }
        break;
    }
    }
    return 0;
}
