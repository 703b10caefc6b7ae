/* SPDX-License-Identifier: Apache-2.0 */
/* Persistence in one SQLite file (WAL mode, synchronous=FULL): pairings,
 * pending requests, and small named values. Every write is one transaction,
 * so a kill -9 at any point leaves either the old or the new row, never half.
 * The file holds symKeys: it is created with mode 0600 and refused if it is
 * readable by group or others (PL_ERR_KEY_FILE).
 * A pl_store is used from one thread (the loop's). */
#ifndef PAIRLINK_STORE_H
#define PAIRLINK_STORE_H

#include "pairlink/common.h"
#include "pairlink/wc_pairing.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pl_store pl_store;

/* Open or create the store at `path` (":memory:" for a throwaway store).
 * Errors: PL_ERR_STORE (SQLite extended result code in pl_last_detail),
 * PL_ERR_STORE_CORRUPT (not a database, or a newer schema), PL_ERR_KEY_FILE
 * (unsafe permissions), PL_ERR_NOMEM. */
PL_EXPORT pl_err pl_store_open(pl_store **out, const char *path);
PL_EXPORT void pl_store_close(pl_store *s);

/* The hooks that make a WalletConnect engine persist into this store. */
PL_EXPORT pl_wc_store pl_store_wc_hooks(pl_store *s);

/* Restore every stored pairing and pending request into `e` (expired ones
 * are deleted). *n_pairings (may be NULL) gets the number restored. */
PL_EXPORT pl_err pl_store_wc_load(pl_store *s, pl_wc_engine *e, int64_t now_ms, size_t *n_pairings);

/* Small named values (client keys, settings). get: PL_ERR_NOT_FOUND if
 * absent; *out (caller frees with pl_free_secret(*out, *len)) otherwise. */
PL_EXPORT pl_err pl_store_put(pl_store *s, const char *key, const uint8_t *val, size_t len);
PL_EXPORT pl_err pl_store_get(pl_store *s, const char *key, uint8_t **out, size_t *len);

/* Load the len-byte secret stored under key, or make one from the OS random
 * source and store it first (a client's relay identity seed: the same
 * did:key across restarts). Errors: PL_ERR_STORE_CORRUPT if a value of
 * another length is stored there, store errors. out is wiped on error. */
PL_EXPORT pl_err pl_store_secret(pl_store *s, const char *key, uint8_t *out, size_t len);

#ifdef __cplusplus
}
#endif
#endif
