/* The relay's authentication policy, without I/O: which JWT a client
 * presented and whether it is valid for this relay. The runtime
 * (ws_server.c) reads the handshake and applies the answer; a client
 * without a valid JWT is anonymous, or refused when the relay requires
 * auth. Private to the library; described in docs/relay.md. */
#ifndef PAIRLINK_RELAY_AUTH_H
#define PAIRLINK_RELAY_AUTH_H

#include "pairlink/common.h"
#include "pairlink/crypto.h"

#include <stddef.h>
#include <stdint.h>

/* Clock skew tolerated on iat/exp, seconds. */
#define PL__RELAY_JWT_LEEWAY_S 60

/* The token of an `Authorization` header value ("Bearer <jwt>", scheme
 * case-insensitive), or NULL when it is none. Points into header. */
const char *pl__relay_auth_bearer(const char *header);

/* Verify jwt as the relay at Host `host` (the header's value, port
 * included) at wall-clock time now_s: the aud must be one of the URLs the
 * client may have used, ws:// or wss:// + host, with or without a
 * trailing "/". Errors: those of pl_jwt_verify; PL_ERR_JWT_AUDIENCE when no
 * form matches (or host is empty or too long). claims is defined only on
 * PL_OK. */
pl_err pl__relay_auth_verify(pl_jwt_claims *claims, const char *jwt, size_t len, const char *host,
                             int64_t now_s);

#endif
