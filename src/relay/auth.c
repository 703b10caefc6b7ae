/* The relay's authentication policy: see auth.h. */
#include "relay/auth.h"

#include "core/internal.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

const char *pl__relay_auth_bearer(const char *header) {
    if (!header || strlen(header) <= 7 || strncasecmp(header, "Bearer ", 7) != 0) return NULL;
    return header + 7;
}

pl_err pl__relay_auth_verify(pl_jwt_claims *claims, const char *jwt, size_t len, const char *host,
                             int64_t now_s) {
    PL_REQUIRE(claims && jwt && host);
    static const char *const forms[] = {"ws://%s", "ws://%s/", "wss://%s", "wss://%s/"};
    char aud[300];
    if (!*host || strlen(host) > sizeof aud - 8) return PL_ERR_JWT_AUDIENCE;
    for (size_t i = 0; i < PL_ARRAY_LEN(forms); i++) {
        snprintf(aud, sizeof aud, forms[i], host);
        pl_err e = pl_jwt_verify(claims, jwt, len, aud, now_s, PL__RELAY_JWT_LEEWAY_S);
        if (e != PL_ERR_JWT_AUDIENCE) return e;
    }
    return PL_ERR_JWT_AUDIENCE;
}
