/* SPDX-License-Identifier: Apache-2.0 */
/* Key files of any size up to PL__KEYFILE_MAX, with the rules of
 * include/pairlink/keyfile.h (regular file, owner, 0600, atomic creation).
 * The 32-byte public functions and the libp2p key file use them. Private. */
#ifndef PL_PLATFORM_KEYFILE_INTERNAL_H
#define PL_PLATFORM_KEYFILE_INTERNAL_H

#include "core/internal.h"

#define PL__KEYFILE_MAX 256

/* Load a file of min..max bytes into out (max bytes of room); *len gets the
 * size. Errors: PL_ERR_NOT_FOUND, PL_ERR_KEY_FILE (size, type, owner,
 * permissions), PL_ERR_IO. out is wiped on failure. */
pl_err pl__keyfile_load_var(const char *path, uint8_t *out, size_t min, size_t max, size_t *len);

/* Create `path` with these bytes, mode 0600, never replacing a file:
 * PL_ERR_EXISTS when there is one. PL_ERR_IO / PL_ERR_SYS, PL_ERR_NOMEM,
 * PL_ERR_INVALID_ARG (empty path). */
pl_err pl__keyfile_create(const char *path, const uint8_t *data, size_t len);

#endif
