/* WalletConnect v2 pairing URI:
 *   wc:<topic>@2?expiryTimestamp=..&methods=..&relay-data=..&relay-protocol=irn&symKey=..
 * Parsing accepts the "wc:" and "wc://" prefixes, `methods` joined with ','
 * or in the bracketed grouped form "[a],[b,c]", and form-encoded values
 * ('+' is a space, %XX escapes). Formatting sorts the query keys and
 * form-encodes the values exactly as @walletconnect/utils formatUri does.
 * Pure code: no clock; the caller passes `now`. */
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
 * now >= 0: an expiryTimestamp at or before `now` is PL_ERR_URI_EXPIRED;
 * now < 0: no expiry check.
 * Errors: PL_ERR_TOO_LARGE, PL_ERR_URI_SCHEME, PL_ERR_URI_MALFORMED,
 * PL_ERR_URI_VERSION, PL_ERR_URI_MISSING_FIELD (symKey or relay-protocol),
 * PL_ERR_URI_BAD_TOPIC, PL_ERR_URI_BAD_KEY, PL_ERR_URI_TOPIC_MISMATCH,
 * PL_ERR_URI_EXPIRED, PL_ERR_NOMEM. On failure *out is cleared (all owned
 * fields NULL). */
PL_EXPORT pl_err pl_uri_parse(pl_uri *out, const char *s, size_t len, int64_t now);

/* Format *u. *out is NUL-terminated, caller frees with pl_free. Methods are
 * joined with ',' (encoded %2C), as JS does. Errors: PL_ERR_NOMEM,
 * PL_ERR_INVALID_ARG for a topic/relay_protocol that is empty. */
PL_EXPORT pl_err pl_uri_format(char **out, const pl_uri *u);

/* Fill a fresh proposer URI: random symKey, topic = sha256(symKey),
 * relay-protocol irn, expiry = now + ttl (ttl 0: 300 s), the given methods
 * copied. Errors: PL_ERR_NOMEM, PL_ERR_TOO_LARGE (too many methods). */
PL_EXPORT pl_err pl_uri_new(pl_uri *out, const char *const *methods, size_t n_methods,
                            int64_t now, int64_t ttl);

/* Free owned fields and wipe the key. The struct may be reused. NULL ok. */
PL_EXPORT void pl_uri_clear(pl_uri *u);

#ifdef __cplusplus
}
#endif
#endif
