/* SPDX-License-Identifier: Apache-2.0 */
/* Node-manager pairing persistence, inside a pl_store (store.h): this
 * side's identity and its counterparties.
 *
 * Identity: an X25519 key pair; the private key lives in a key file
 * "<store path>.key" (keyfile.h: mode 0600, created atomically), never in
 * the database. Counterparties: one row each (public key, role, name,
 * fingerprint, first/last seen, confirmed), written in one SQLite
 * transaction, so a kill -9 at any moment leaves the row either whole or
 * absent, and the store opens.
 *
 * Same thread rules as store.h: one thread. */
#ifndef PAIRLINK_NM_STORE_H
#define PAIRLINK_NM_STORE_H

#include "pairlink/common.h"
#include "pairlink/nm_pairing.h"
#include "pairlink/store.h"

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PL_NM_PEER_ID_SIZE 17 /* 16 hex digits (first 8 bytes of the key) + NUL */

typedef struct pl_nm_counterparty {
    uint8_t pub[PL_NM_KEY_BYTES];
    pl_nm_role role;                       /* the counterparty's role */
    char name[PL_NM_NAME_MAX + 1];
    char fingerprint[PL_NM_FINGERPRINT_SIZE];
    int64_t first_seen_ms;                 /* when paired */
    int64_t last_seen_ms;                  /* last pairing or session establishment */
    bool confirmed;                        /* a Noise session was established with it */
} pl_nm_counterparty;

/* Create the counterparty table in `s` if needed. Errors: PL_ERR_STORE,
 * PL_ERR_STORE_CORRUPT. */
PL_EXPORT pl_err pl_nm_store_init(pl_store *s);

/* Load the identity for the store at store_path, creating it on first use.
 * Path ":memory:" gives a fresh random key every time (tests). priv is wiped
 * on failure. *created (may be NULL) says whether it was made now. Errors:
 * those of pl_keyfile_load_or_create, PL_ERR_TOO_LARGE (path too long). */
PL_EXPORT pl_err pl_nm_store_identity(const char *store_path, uint8_t priv[PL_NM_KEY_BYTES],
                                      uint8_t pub[PL_NM_KEY_BYTES], bool *created);

/* Insert or update a counterparty (keyed by pub; first_seen is kept when the
 * row exists). Errors: PL_ERR_STORE. */
PL_EXPORT pl_err pl_nm_store_put(pl_store *s, const pl_nm_counterparty *c);
/* Mark confirmed and set last_seen. PL_ERR_NOT_FOUND, PL_ERR_STORE. */
PL_EXPORT pl_err pl_nm_store_touch(pl_store *s, const uint8_t pub[PL_NM_KEY_BYTES], int64_t now_ms);
/* Delete. PL_ERR_NOT_FOUND, PL_ERR_STORE. */
PL_EXPORT pl_err pl_nm_store_remove(pl_store *s, const uint8_t pub[PL_NM_KEY_BYTES]);
/* Every counterparty, ordered by first_seen. *out: caller frees with
 * pl_free (NULL when none). Rows that do not decode (wrong key length, role)
 * are skipped. Errors: PL_ERR_STORE, PL_ERR_NOMEM. */
PL_EXPORT pl_err pl_nm_store_list(pl_store *s, pl_nm_counterparty **out, size_t *n);
/* Find by id: a hex prefix of the key (at least 4 digits, any case) or an
 * exact name. Errors: PL_ERR_NOT_FOUND, PL_ERR_EXISTS (ambiguous),
 * PL_ERR_STORE. */
PL_EXPORT pl_err pl_nm_store_find(pl_store *s, const char *id, pl_nm_counterparty *out);

/* Short id of a key: the first 16 hex digits. */
PL_EXPORT void pl_nm_peer_id(char out[PL_NM_PEER_ID_SIZE], const uint8_t pub[PL_NM_KEY_BYTES]);

#ifdef __cplusplus
}
#endif
#endif
