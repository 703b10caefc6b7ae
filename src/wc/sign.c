/* SPDX-License-Identifier: Apache-2.0 */
/* The Sign protocol's method table: see pl_wc_sign_method. The tags and
 * TTLs are the JS SDK's (sign-client constants), so that a C responder
 * registered with them answers exactly as a JS one would. */
#include "pairlink/wc_pairing.h"

#include "core/internal.h"

#include <string.h>

static const pl_wc_method sign_methods[] = {
    {"wc_sessionPropose", 1100, 300, true, 1101, 300},
    {"wc_sessionAuthenticate", 1116, 3600, true, 1117, 3600},
    {"wc_authRequest", 3000, 86400, true, 3001, 86400},
};

const pl_wc_method *pl_wc_sign_method(const char *name) {
    PL_REQUIRE(name);
    for (size_t i = 0; i < PL_ARRAY_LEN(sign_methods); i++)
        if (!strcmp(sign_methods[i].name, name)) return &sign_methods[i];
    return NULL;
}
