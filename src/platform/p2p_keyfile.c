/* SPDX-License-Identifier: Apache-2.0 */
/* libp2p identity key files: the marshalled PrivateKey protobuf in a 0600
 * file (see include/pairlink/p2p.h and docs/p2p.md). */
#include "pairlink/p2p.h"

#include "core/internal.h"
#include "pairlink/hash.h"
#include "platform/keyfile_internal.h"

#include <stdlib.h>

pl_err pl_p2p_key_save(const char *path, const pl_p2p_key *k) {
    PL_REQUIRE(path && k);
    uint8_t *pb = NULL;
    size_t len = 0;
    PL_TRY(pl_p2p_key_marshal(k, &pb, &len));
    pl_err e = pl__keyfile_create(path, pb, len);
    pl_free_secret(pb, len);
    return e;
}

static pl_err load(const char *path, pl_p2p_key **out) {
    uint8_t buf[PL__KEYFILE_MAX];
    size_t len = 0;
    pl_err e = pl__keyfile_load_var(path, buf, 1, sizeof buf, &len);
    if (e == PL_OK) e = pl_p2p_key_unmarshal(out, buf, len);
    pl_wipe(buf, sizeof buf);
    return e;
}

pl_err pl_p2p_key_load_or_create(const char *path, pl_p2p_key_type type, pl_p2p_key **out,
                                 bool *created) {
    PL_REQUIRE(path && out);
    *out = NULL;
    if (created) *created = false;
    pl_err e = load(path, out);
    if (e != PL_ERR_NOT_FOUND) return e;
    if (!path[0]) return PL_ERR_INVALID_ARG;
    pl_p2p_key *k = NULL;
    PL_TRY(pl_p2p_key_generate(&k, type));
    e = pl_p2p_key_save(path, k);
    if (e == PL_ERR_EXISTS) {
        /* Another process created it first: its key wins. */
        pl_p2p_key_free(k);
        return load(path, out);
    }
    if (e != PL_OK) {
        pl_p2p_key_free(k);
        return e;
    }
    *out = k;
    if (created) *created = true;
    return PL_OK;
}
