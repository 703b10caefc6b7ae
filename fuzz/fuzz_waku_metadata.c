/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the /vac/waku/metadata/1.0.0 codec and policy
 * (src/waku/metadata.h).
 *
 * Input: any bytes, one metadata request/response. Checks, besides "no
 * crash, no leak, no UB": named errors only and *out zeroed on failure;
 * what decodes re-encodes (nwaku's layout, when it fits 1024 bytes) to
 * bytes that decode to the same cluster and shards; the policy keeps the
 * peer exactly when the answer names our cluster.
 *
 * With PL_FUZZ_WRITE_SEEDS=DIR the initializer writes seeds. */
#include "waku/metadata.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond) {
    if (!cond) abort();
}

static pl__waku_metadata m, d;

static void write_seed(const char *dir, const char *name, const void *b, size_t n) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(b, 1, n, f);
    fclose(f);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    const char *dir = getenv("PL_FUZZ_WRITE_SEEDS");
    if (!dir) return 0;
    uint8_t buf[PL__WAKU_METADATA_MAX_BYTES];
    size_t n;
    pl__waku_metadata s = {.has_cluster = true, .cluster = 16, .n_shards = 2, .shards = {32, 64}};
    if (pl__waku_metadata_encode(buf, sizeof buf, &n, &s) == PL_OK)
        write_seed(dir, "seed-status", buf, n);
    s.cluster = 1, s.n_shards = 8;
    for (uint32_t i = 0; i < 8; i++)
        s.shards[i] = i;
    if (pl__waku_metadata_encode(buf, sizeof buf, &n, &s) == PL_OK)
        write_seed(dir, "seed-twn", buf, n);
    write_seed(dir, "seed-field2-only", "\x08\x00\x10\x05\x10\x07", 6);
    write_seed(dir, "seed-empty", "", 0);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    memset(&m, 0xa5, sizeof m);
    pl_err e = pl__waku_metadata_decode(&m, data, size);
    if (e != PL_OK) {
        check(e == PL_ERR_TOO_LARGE || e == PL_ERR_WAKU_METADATA || e == PL_ERR_NOMEM);
        check(!m.has_cluster && m.n_shards == 0 && m.cluster == 0);
        return 0;
    }
    check(m.n_shards <= PL__WAKU_METADATA_MAX_SHARDS);
    pl_err p = pl__waku_metadata_check(16, &m);
    check(p == (!m.has_cluster    ? PL_ERR_WAKU_METADATA
                : m.cluster == 16 ? PL_OK
                                  : PL_ERR_WAKU_CLUSTER));
    uint8_t buf[PL__WAKU_METADATA_MAX_BYTES];
    size_t n = 1;
    e = pl__waku_metadata_encode(buf, sizeof buf, &n, &m);
    if (e != PL_OK) {
        check(e == PL_ERR_TOO_LARGE && n == 0);
        return 0;
    }
    check(pl__waku_metadata_decode(&d, buf, n) == PL_OK);
    check(d.has_cluster == m.has_cluster && d.cluster == m.cluster && d.n_shards == m.n_shards);
    check(m.n_shards == 0 || memcmp(d.shards, m.shards, m.n_shards * sizeof *m.shards) == 0);
    return 0;
}
