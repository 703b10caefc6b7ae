/* SPDX-License-Identifier: Apache-2.0 */
/* Secret key files: one 32-byte secret (e.g. the Ed25519 seed behind the
 * relay client's did:key) stored raw in a file that only its owner may read.
 *
 * Rules a loaded file must meet, else PL_ERR_KEY_FILE: a regular file (a
 * symlink at `path` is refused), owned by the effective user, no permission
 * bits for group or others (0600 or stricter), exactly 32 bytes.
 *
 * Creation is atomic: the secret is written to a fresh temporary file in the
 * same directory (O_CREAT|O_EXCL, mode 0600), synced, then linked into place
 * without replacing anything; if another process created `path` in the
 * meantime, its key is loaded instead. A crash never leaves a short key file
 * at `path`.
 *
 * Blocking file I/O: call at start-up, not from a latency-sensitive loop
 * callback. Thread-safe (no shared state). */
#ifndef PAIRLINK_KEYFILE_H
#define PAIRLINK_KEYFILE_H

#include "pairlink/common.h"

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PL_KEYFILE_BYTES 32

/* Load the secret in `path`. key is wiped on failure. Errors:
 * PL_ERR_NOT_FOUND (no file), PL_ERR_KEY_FILE (wrong size, type, owner or
 * permissions), PL_ERR_IO / PL_ERR_SYS (read failure; pl_last_detail() holds
 * errno). */
PL_EXPORT pl_err pl_keyfile_load(const char *path, uint8_t key[PL_KEYFILE_BYTES]);

/* Load the secret in `path`, or create the file with 32 fresh random bytes
 * when it does not exist. *created (may be NULL) tells which happened. The
 * directory must exist. key is wiped on failure. Errors: those of
 * pl_keyfile_load, PL_ERR_IO / PL_ERR_SYS when the file cannot be created
 * (pl_last_detail() holds errno). */
PL_EXPORT pl_err pl_keyfile_load_or_create(const char *path, uint8_t key[PL_KEYFILE_BYTES],
                                           bool *created);

#ifdef __cplusplus
}
#endif
#endif
