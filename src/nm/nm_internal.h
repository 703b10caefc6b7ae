/* SPDX-License-Identifier: Apache-2.0 */
/* Private helpers of the node-manager pairing core. Not installed. */
#ifndef PAIRLINK_NM_INTERNAL_H
#define PAIRLINK_NM_INTERNAL_H

#include "pairlink/nm_pairing.h"

#include <stdbool.h>

/* Crockford base32 digits, value order. */
extern const char pl__nm_crockford[33];

/* UTF-8 that decodes (no overlongs, surrogates or values above U+10FFFF)
 * and holds no C0/C1 control character or DEL: names are shown on
 * terminals, where control characters could rewrite what the user sees. */
bool pl__nm_name_valid(const uint8_t *s, size_t n);

/* PL_OK, or PL_ERR_WEAK_KEY for a low-order X25519 public key (one that
 * would make every Diffie-Hellman with it all zeros). */
pl_err pl__nm_identity_check(const uint8_t pub[PL_NM_KEY_BYTES]);

#endif
