/* SPDX-License-Identifier: Apache-2.0 */
/* The relay's authentication policy, without I/O: which JWT a client
 * presented and whether it is valid for this relay. The runtime
 * (ws_server.c) reads the handshake and applies the answer; a client
 * without a valid JWT is anonymous, or refused when the relay requires
 * auth.
 *
 * A token is valid for this relay when its `aud` is one of the relay's
 * public URLs: the ones the operator configured (`--public-url`), or by
 * default the URLs of the listening address. Nothing the client sends
 * (its Host header) decides which audiences count, so a token minted for
 * another relay stays refused whatever Host it comes with. Comparison is
 * on normalised URLs: scheme and host in lowercase, the scheme's default
 * port dropped (ws :80, wss :443), one trailing "/" ignored, and the
 * query of the `aud` ignored (a client signs the URL it was given, query
 * included; a public URL has none). Private to the library; described in
 * docs/relay.md. */
#ifndef PAIRLINK_RELAY_AUTH_H
#define PAIRLINK_RELAY_AUTH_H

#include "pairlink/common.h"
#include "pairlink/crypto.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Clock skew tolerated on iat/exp, seconds. */
#define PL__RELAY_JWT_LEEWAY_S 60

/* Public URLs one relay answers to, at most. */
#define PL__RELAY_AUD_MAX 16

/* The audiences a relay accepts, normalised. Zero it to start empty. */
typedef struct pl__relay_audience {
    char url[PL__RELAY_AUD_MAX][PL_JWT_AUD_MAX];
    size_t n;
} pl__relay_audience;

/* Add a public URL: ws:// or wss://, a host, an optional port and path;
 * no user info, query or fragment. A URL already present is not added
 * twice. Errors: PL_ERR_BAD_URL, PL_ERR_TOO_LARGE (PL__RELAY_AUD_MAX URLs
 * already, or longer than PL_JWT_AUD_MAX - 1). */
pl_err pl__relay_audience_add(pl__relay_audience *a, const char *url);

/* The default audience of a relay listening on host:port (host as given
 * on the command line or numeric): scheme://host:port (wss with TLS), and
 * for a loopback or wildcard address also the 127.0.0.1 and localhost
 * forms, which is what local clients connect to. Errors: those of
 * pl__relay_audience_add. */
pl_err pl__relay_audience_default(pl__relay_audience *a, const char *host, int port, bool tls);

/* True for an IPv4 loopback address (127.0.0.0/8) or "localhost". */
bool pl__relay_host_is_loopback(const char *host);

/* True if the JWT audience aud names one of the URLs of a. */
bool pl__relay_audience_match(const pl__relay_audience *a, const char *aud);

/* The token of an `Authorization` header value ("Bearer <jwt>", scheme
 * case-insensitive), or NULL when it is none. Points into header. */
const char *pl__relay_auth_bearer(const char *header);

/* Verify jwt for this relay at wall-clock time now_s: signature, iss,
 * time (with PL__RELAY_JWT_LEEWAY_S) as pl_jwt_verify does, and the
 * audience against aud. Errors: those of pl_jwt_verify; PL_ERR_JWT_AUDIENCE
 * when aud matches none of the relay's URLs (always when aud is empty).
 * claims is defined only on PL_OK. */
pl_err pl__relay_auth_verify(pl_jwt_claims *claims, const char *jwt, size_t len,
                             const pl__relay_audience *aud, int64_t now_s);

#endif
