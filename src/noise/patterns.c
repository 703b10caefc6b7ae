/* SPDX-License-Identifier: Apache-2.0 */
/* The five Waku Noise handshake patterns (RFC 35) and their names. */
#include "noise/noise_internal.h"

#include <string.h>

#define I true  /* -> */
#define R false /* <- */

static const pl__noise_pattern_def patterns[] = {
    {PL_NOISE_K1K1, "Noise_K1K1_25519_ChaChaPoly_SHA256", "K1K1", false,
     2, {{I, 1, {PL__TOK_S}}, {R, 1, {PL__TOK_S}}},
     3, {{I, 1, {PL__TOK_E}}, {R, 3, {PL__TOK_E, PL__TOK_EE, PL__TOK_ES}}, {I, 1, {PL__TOK_SE}}}},
    {PL_NOISE_XK1, "Noise_XK1_25519_ChaChaPoly_SHA256", "XK1", false,
     1, {{R, 1, {PL__TOK_S}}},
     3, {{I, 1, {PL__TOK_E}}, {R, 3, {PL__TOK_E, PL__TOK_EE, PL__TOK_ES}},
         {I, 2, {PL__TOK_S, PL__TOK_SE}}}},
    {PL_NOISE_XX, "Noise_XX_25519_ChaChaPoly_SHA256", "XX", false,
     0, {{I, 0, {0}}},
     3, {{I, 1, {PL__TOK_E}}, {R, 4, {PL__TOK_E, PL__TOK_EE, PL__TOK_S, PL__TOK_ES}},
         {I, 2, {PL__TOK_S, PL__TOK_SE}}}},
    {PL_NOISE_XXPSK0, "Noise_XXpsk0_25519_ChaChaPoly_SHA256", "XXpsk0", true,
     0, {{I, 0, {0}}},
     3, {{I, 2, {PL__TOK_PSK, PL__TOK_E}}, {R, 4, {PL__TOK_E, PL__TOK_EE, PL__TOK_S, PL__TOK_ES}},
         {I, 2, {PL__TOK_S, PL__TOK_SE}}}},
    {PL_NOISE_WAKU_PAIRING, "Noise_WakuPairing_25519_ChaChaPoly_SHA256", "WakuPairing", false,
     1, {{R, 1, {PL__TOK_E}}},
     3, {{I, 2, {PL__TOK_E, PL__TOK_EE}}, {R, 2, {PL__TOK_S, PL__TOK_ES}},
         {I, 3, {PL__TOK_S, PL__TOK_SE, PL__TOK_SS}}}},
};

#undef I
#undef R

const pl__noise_pattern_def *pl__noise_pattern_lookup(pl_noise_pattern p) {
    for (size_t i = 0; i < PL_ARRAY_LEN(patterns); i++)
        if (patterns[i].id == p) return &patterns[i];
    return NULL;
}

const char *pl_noise_pattern_name(pl_noise_pattern p) {
    const pl__noise_pattern_def *d = pl__noise_pattern_lookup(p);
    return d ? d->name : NULL;
}

pl_err pl_noise_pattern_from_name(pl_noise_pattern *out, const char *name) {
    PL_REQUIRE(out && name);
    for (size_t i = 0; i < PL_ARRAY_LEN(patterns); i++) {
        if (!strcmp(name, patterns[i].name) || !strcmp(name, patterns[i].short_name)) {
            *out = patterns[i].id;
            return PL_OK;
        }
    }
    return PL_ERR_NOISE_PATTERN;
}
