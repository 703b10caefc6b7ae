/* SPDX-License-Identifier: Apache-2.0 */
/* WalletConnect v2 pairing URI:
 *   wc:<topic>@2?expiryTimestamp=..&methods=..&relay-data=..&relay-protocol=irn&symKey=..
 * Parsing accepts the "wc:" and "wc://" prefixes, `methods` joined with ','
 * or in the bracketed grouped form "[a],[b,c]", and form-encoded values
 * ('+' is a space, %XX escapes). Formatting sorts the query keys and
 * form-encodes the values exactly as @walletconnect/utils formatUri does
 * (URLSearchParams: [A-Za-z0-9*-._] kept, space as '+', the rest %XX).
 * Pure code: no clock; the caller passes `now`. Reentrant; a pl_uri is not
 * locked. Strings in a pl_uri are UTF-8. */
#ifndef PAIRLINK_URI_H
#define PAIRLINK_URI_H

#include "pairlink/common.h"
#include "pairlink/crypto.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PL_URI_MAX_LEN 4096      /* longer input: PL_ERR_TOO_LARGE */
#define PL_URI_MAX_METHODS 64

typedef struct pl_uri {
    char topic[PL_TOPIC_HEX_SIZE];      /* lowercase hex */
    int version;                        /* 2 */
    uint8_t sym_key[PL_SYMKEY_BYTES];   /* secret: wipe with pl_uri_clear */
    char relay_protocol[64];            /* "irn" */
    char *relay_data;                   /* NULL when absent; owned */
    int64_t expiry;                     /* unix seconds; 0 when absent */
    size_t n_methods;
    char *methods[PL_URI_MAX_METHODS];  /* flattened method names; owned */
} pl_uri;

/* Parse `s` (len bytes, need not be NUL-terminated) into *out.
 * *out need not be initialised and is overwritten without being freed:
 * pl_uri_clear a previously filled struct first.
 * now >= 0: an expiryTimestamp at or before `now` is PL_ERR_URI_EXPIRED;
 * now < 0: no expiry check. An empty expiryTimestamp or relay-data counts as
 * absent (as in JS); an empty `methods` gives no methods. The topic may be in
 * either case and is stored lowercase. Unknown keys are ignored.
 * Stricter than JS: a bad %-escape, a decoded NUL, invalid UTF-8, raw
 * control bytes or spaces, a non-decimal version/expiry, a method list with
 * an empty name, and a repeated known key (JS keeps the last, others the
 * first: two readers must not disagree on the key) are PL_ERR_URI_MALFORMED;
 * more than PL_URI_MAX_METHODS methods is PL_ERR_TOO_LARGE.
 * Errors: PL_ERR_TOO_LARGE, PL_ERR_URI_SCHEME, PL_ERR_URI_MALFORMED,
 * PL_ERR_URI_VERSION, PL_ERR_URI_MISSING_FIELD (symKey or relay-protocol),
 * PL_ERR_URI_BAD_TOPIC, PL_ERR_URI_BAD_KEY, PL_ERR_URI_TOPIC_MISMATCH,
 * PL_ERR_URI_EXPIRED, PL_ERR_NOMEM. On failure *out is cleared (all owned
 * fields NULL, key wiped). The topic check is constant-time. */
PL_EXPORT pl_err pl_uri_parse(pl_uri *out, const char *s, size_t len, int64_t now);

/* Like pl_uri_parse, but a URI that is well formed and fails only a semantic
 * check (topic != sha256(symKey), or expired) is still parsed into *out and
 * returns PL_OK, with the failed check in *check (PL_ERR_URI_TOPIC_MISMATCH
 * or PL_ERR_URI_EXPIRED; PL_OK when it would pair). For tools that show
 * what a URI says ("pairlink uri parse"); never pair with such a URI. */
PL_EXPORT pl_err pl_uri_inspect(pl_uri *out, const char *s, size_t len, int64_t now, pl_err *check);

/* Format *u. *out is NUL-terminated and holds the symKey: the caller frees it
 * with pl_free_secret(s, strlen(s)) (or pl_free). Methods are joined with ','
 * (encoded %2C), as JS does; expiry 0, a NULL/empty relay_data and zero
 * methods are omitted. Errors: PL_ERR_NOMEM; PL_ERR_INVALID_ARG for a topic
 * that is not 64 hex characters, an empty or unterminated relay_protocol,
 * version <= 0, expiry < 0, a method that is empty or contains ',' '[' ']',
 * or text that is not UTF-8; PL_ERR_TOO_LARGE if the result would exceed
 * PL_URI_MAX_LEN (it could not be parsed back). */
PL_EXPORT pl_err pl_uri_format(char **out, const pl_uri *u);

/* Fill a fresh proposer URI: random symKey, topic = sha256(symKey),
 * relay-protocol irn, expiry = now + ttl (ttl 0: 300 s), the given methods
 * copied. *out need not be initialised. now < 0, ttl < 0 or an overflowing
 * sum is misuse. Errors: PL_ERR_NOMEM, PL_ERR_TOO_LARGE (too many methods or
 * a method longer than PL_URI_MAX_LEN), PL_ERR_INVALID_ARG (a method name
 * that pl_uri_format would refuse); *out is cleared on failure. */
PL_EXPORT pl_err pl_uri_new(pl_uri *out, const char *const *methods, size_t n_methods,
                            int64_t now, int64_t ttl);

/* Free owned fields and wipe the key. The struct may be reused. NULL ok. */
PL_EXPORT void pl_uri_clear(pl_uri *u);

#ifdef __cplusplus
}
#endif
#endif
