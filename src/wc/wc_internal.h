/* SPDX-License-Identifier: Apache-2.0 */
/* The WalletConnect layer's randomness seam: the engine passes its random
 * source (pl_wc_config.rng) to what it creates; the public functions
 * (pl_uri_new, pl_rpc_id_new) use pl_random. Private to the library. */
#ifndef PAIRLINK_WC_INTERNAL_H
#define PAIRLINK_WC_INTERNAL_H

#include "pairlink/hash.h"
#include "pairlink/jsonrpc.h"
#include "pairlink/uri.h"

/* pl_uri_new with the symKey drawn from rng (NULL: pl_random). */
pl_err pl__uri_new(pl_uri *out, const char *const *methods, size_t n_methods, int64_t now,
                   int64_t ttl, pl_rng_fn rng, void *rng_ctx);
/* pl_rpc_id_new with the random part drawn from rng (NULL: pl_random). */
pl_rpc_id pl__rpc_id_new(int64_t now_ms, pl_rng_fn rng, void *rng_ctx);

#endif
