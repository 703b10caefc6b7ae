/* SPDX-License-Identifier: Apache-2.0 */
/* Argon2id (v1.3) through libsodium's crypto_pwhash. */
#include "pairlink/crypto.h"

#include "core/internal.h"

#include <errno.h>
#include <sodium.h>

_Static_assert(crypto_pwhash_argon2id_SALTBYTES == PL_ARGON2_SALT_BYTES, "salt size");

pl_err pl_argon2id(uint8_t *out, size_t out_len, const uint8_t *pwd, size_t pwd_len,
                   const uint8_t salt[PL_ARGON2_SALT_BYTES], uint64_t opslimit, size_t memlimit) {
    PL_REQUIRE(out && (pwd || pwd_len == 0) && salt);
    if (out_len < crypto_pwhash_argon2id_BYTES_MIN || out_len > crypto_pwhash_argon2id_BYTES_MAX ||
        opslimit < crypto_pwhash_argon2id_OPSLIMIT_MIN ||
        opslimit > crypto_pwhash_argon2id_OPSLIMIT_MAX ||
        memlimit < crypto_pwhash_argon2id_MEMLIMIT_MIN ||
        memlimit > crypto_pwhash_argon2id_MEMLIMIT_MAX)
        return PL_ERR_INVALID_ARG;
    if (pwd_len > crypto_pwhash_argon2id_PASSWD_MAX) return PL_ERR_TOO_LARGE;

    /* libsodium wants a non-NULL password pointer even for length 0. */
    static const uint8_t empty[1];
    errno = 0;
    if (crypto_pwhash(out, out_len, (const char *)(pwd ? pwd : empty), pwd_len, salt,
                      (unsigned long long)opslimit, memlimit,
                      crypto_pwhash_ALG_ARGON2ID13) != 0) {
        int err = errno;
        sodium_memzero(out, out_len);
        /* The parameters were checked above, so a failure is an allocation. */
        return pl__fail(err == ENOMEM || err == 0 ? PL_ERR_NOMEM : PL_ERR_CRYPTO, err);
    }
    return PL_OK;
}
