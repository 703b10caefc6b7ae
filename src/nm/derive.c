/* SPDX-License-Identifier: Apache-2.0 */
/* kdf(P, salt) -> T and HS, the pairing topic, and the session rendezvous. */
#include "nm/nm_internal.h"

#include "core/internal.h"
#include "pairlink/codec.h"
#include "pairlink/hash.h"

#include <stdio.h>
#include <string.h>

_Static_assert(sizeof(PL_NM_TOPIC_SALT) - 1 == PL_ARGON2_SALT_BYTES, "TOPIC_SALT is 16 bytes");
_Static_assert(sizeof(PL_NM_HANDSHAKE_KEY_SALT) - 1 == PL_ARGON2_SALT_BYTES, "HS salt is 16 bytes");

/* "/pairlink/1/<kind>-<32 hex>/proto". */
static void topic_for(char content[PL_NM_CONTENT_TOPIC_SIZE], const char *kind,
                      const uint8_t id[16]) {
    char hex[PL_HEX_SIZE(16)];
    pl_err e = pl_hex_encode(hex, sizeof hex, id, 16);
    PL_REQUIRE(e == PL_OK);
    int n = snprintf(content, PL_NM_CONTENT_TOPIC_SIZE, "/pairlink/1/%s-%s/proto", kind, hex);
    PL_REQUIRE(n > 0 && n < PL_NM_CONTENT_TOPIC_SIZE);
}

pl_err pl_nm_derive(pl_nm_secrets *out, const uint8_t code[PL_NM_CODE_BYTES],
                    const pl_nm_kdf_params *params) {
    PL_REQUIRE(out && code);
    memset(out, 0, sizeof *out);
    uint64_t ops = params ? params->opslimit : PL_NM_KDF_OPSLIMIT;
    size_t mem = params ? params->memlimit : PL_NM_KDF_MEMLIMIT;
    pl_err e = pl_argon2id(out->topic_key, PL_NM_KEY_BYTES, code, PL_NM_CODE_BYTES,
                           (const uint8_t *)PL_NM_TOPIC_SALT, ops, mem);
    if (e == PL_OK)
        e = pl_argon2id(out->hs, PL_NM_KEY_BYTES, code, PL_NM_CODE_BYTES,
                        (const uint8_t *)PL_NM_HANDSHAKE_KEY_SALT, ops, mem);
    if (e != PL_OK) {
        pl_nm_secrets_wipe(out);
        return e;
    }
    topic_for(out->content_topic, "pair", out->topic_key);
    return PL_OK;
}

void pl_nm_secrets_wipe(pl_nm_secrets *s) {
    if (s) pl_wipe(s, sizeof *s);
}

void pl_nm_rendezvous_derive(pl_nm_rendezvous *out, const uint8_t nm_pub[PL_NM_KEY_BYTES],
                             const uint8_t app_pub[PL_NM_KEY_BYTES]) {
    PL_REQUIRE(out && nm_pub && app_pub);
    static const char salt[] = "pairlink-rv-1";
    uint8_t ikm[2 * PL_NM_KEY_BYTES];
    memcpy(ikm, nm_pub, PL_NM_KEY_BYTES);
    memcpy(ikm + PL_NM_KEY_BYTES, app_pub, PL_NM_KEY_BYTES);
    memset(out, 0, sizeof *out);
    pl_err e = pl_hkdf_sha256(out->rv, sizeof out->rv, (const uint8_t *)salt, sizeof salt - 1, ikm,
                              sizeof ikm, NULL, 0);
    PL_REQUIRE(e == PL_OK); /* 48 bytes is always a valid HKDF length */
    topic_for(out->content_topic, "rv", out->rv);
    memcpy(out->nametag, out->rv + 32, sizeof out->nametag);
}
