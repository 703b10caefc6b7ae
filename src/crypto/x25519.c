/* SPDX-License-Identifier: Apache-2.0 */
/* X25519 and the WalletConnect session key / topic derivations. */
#include "pairlink/crypto.h"

#include "core/internal.h"
#include "pairlink/hash.h"

#include <sodium.h>

void pl_x25519_keypair(uint8_t pub[PL_X25519_BYTES], uint8_t priv[PL_X25519_BYTES]) {
    PL_REQUIRE(pub && priv);
    randombytes_buf(priv, PL_X25519_BYTES);
    pl_x25519_public(pub, priv);
}

void pl_x25519_public(uint8_t pub[PL_X25519_BYTES], const uint8_t priv[PL_X25519_BYTES]) {
    PL_REQUIRE(pub && priv);
    /* A clamped scalar is a non-zero multiple of 8 below the group order
     * times 8, so the base-point product is never the identity. */
    if (crypto_scalarmult_base(pub, priv) != 0)
        pl__misuse("crypto_scalarmult_base failed", __FILE__, __LINE__);
}

pl_err pl_x25519(uint8_t out[PL_X25519_BYTES], const uint8_t priv[PL_X25519_BYTES],
                 const uint8_t peer_pub[PL_X25519_BYTES]) {
    PL_REQUIRE(out && priv && peer_pub);
    /* libsodium fails exactly when the result is all zeros (low-order peer
     * point): a peer could otherwise force a known shared secret. */
    if (crypto_scalarmult(out, priv, peer_pub) != 0) {
        sodium_memzero(out, PL_X25519_BYTES);
        return PL_ERR_WEAK_KEY;
    }
    return PL_OK;
}

pl_err pl_wc_session_key(uint8_t sym_key[PL_SYMKEY_BYTES], const uint8_t self_priv[PL_X25519_BYTES],
                         const uint8_t peer_pub[PL_X25519_BYTES]) {
    PL_REQUIRE(sym_key && self_priv && peer_pub);
    uint8_t shared[PL_X25519_BYTES];
    pl_err e = pl_x25519(shared, self_priv, peer_pub);
    if (e == PL_OK)
        e = pl_hkdf_sha256(sym_key, PL_SYMKEY_BYTES, NULL, 0, shared, sizeof shared, NULL, 0);
    sodium_memzero(shared, sizeof shared);
    if (e != PL_OK) sodium_memzero(sym_key, PL_SYMKEY_BYTES);
    return e;
}

void pl_wc_topic(char topic[PL_TOPIC_HEX_SIZE], const uint8_t sym_key[PL_SYMKEY_BYTES]) {
    PL_REQUIRE(topic && sym_key);
    /* The raw key bytes are hashed, not their hex text (a known trap). */
    uint8_t h[PL_SHA256_BYTES];
    pl_sha256(h, sym_key, PL_SYMKEY_BYTES);
    sodium_bin2hex(topic, PL_TOPIC_HEX_SIZE, h, sizeof h);
}
