#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes tests/data/p2p_noise_xx.json: libp2p Noise XX handshakes computed by
an implementation written here from the specifications alone (Noise rev 34,
libp2p/specs noise), on Python's `cryptography` package, so that
tests/test_p2p_noise.c checks the C code against something it did not
produce. Fixed keys; the secp256k1 case uses a random ECDSA nonce and a
high-S signature on purpose, so only its reading side is checked.

Usage: scripts/gen-p2p-noise-vector.py > tests/data/p2p_noise_xx.json
"""
import hashlib
import hmac
import json
import struct

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.utils import (decode_dss_signature,
                                                             encode_dss_signature)
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

SECP_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
RAW = serialization.Encoding.Raw
RAWP = serialization.PublicFormat.Raw


def varint(n):
    out = b""
    while n >= 0x80:
        out += bytes([n & 0x7F | 0x80])
        n >>= 7
    return out + bytes([n])


def pb_bytes(field, data):
    return varint(field << 3 | 2) + varint(len(data)) + data


def pb_varint(field, v):
    return varint(field << 3) + varint(v)


def x25519_pub(priv):
    return X25519PrivateKey.from_private_bytes(priv).public_key().public_bytes(RAW, RAWP)


def dh(priv, pub):
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
    return X25519PrivateKey.from_private_bytes(priv).exchange(X25519PublicKey.from_public_bytes(pub))


def hkdf2(ck, ikm):
    t = hmac.new(ck, ikm, hashlib.sha256).digest()
    o1 = hmac.new(t, b"\x01", hashlib.sha256).digest()
    o2 = hmac.new(t, o1 + b"\x02", hashlib.sha256).digest()
    return o1, o2


class Sym:
    def __init__(self):
        name = b"Noise_XX_25519_ChaChaPoly_SHA256"
        self.h = name  # exactly 32 bytes: used as is
        self.ck = name
        self.k = None
        self.n = 0
        self.mix_hash(b"")  # empty prologue

    def mix_hash(self, d):
        self.h = hashlib.sha256(self.h + d).digest()

    def mix_key(self, ikm):
        self.ck, k = hkdf2(self.ck, ikm)
        self.k, self.n = k, 0

    def enc(self, pt):
        if self.k is None:
            ct = pt
        else:
            ct = ChaCha20Poly1305(self.k).encrypt(b"\0" * 4 + struct.pack("<Q", self.n), pt, self.h)
            self.n += 1
        self.mix_hash(ct)
        return ct

    def dec(self, ct):
        if self.k is None:
            pt = ct
        else:
            pt = ChaCha20Poly1305(self.k).decrypt(b"\0" * 4 + struct.pack("<Q", self.n), ct, self.h)
            self.n += 1
        self.mix_hash(ct)
        return pt

    def split(self):
        return hkdf2(self.ck, b"")


def frame(b):
    return struct.pack(">H", len(b)) + b


def ed_identity(seed):
    sk = Ed25519PrivateKey.from_private_bytes(seed)
    pub = sk.public_key().public_bytes(RAW, RAWP)
    return pb_varint(1, 1) + pb_bytes(2, pub), lambda m: sk.sign(m)


def secp_identity(secret):
    sk = ec.derive_private_key(int.from_bytes(secret, "big"), ec.SECP256K1())
    pub = sk.public_key().public_bytes(serialization.Encoding.X962,
                                       serialization.PublicFormat.CompressedPoint)

    def sign(m):
        r, s = decode_dss_signature(sk.sign(m, ec.ECDSA(hashes.SHA256())))
        if s <= SECP_N // 2:
            s = SECP_N - s  # high-S: what a non-normalising peer may send
        return encode_dss_signature(r, s)

    return pb_varint(1, 2) + pb_bytes(2, pub), sign


def payload(identity, static_pub):
    key, sign = identity
    sig = sign(b"noise-libp2p-static-key:" + static_pub)
    return pb_bytes(1, key) + pb_bytes(2, sig)


def full(i_id, r_id, i_s, i_e, r_s, r_e):
    i_spub, r_spub, i_epub, r_epub = map(x25519_pub, (i_s, r_s, i_e, r_e))
    si, sr = Sym(), Sym()
    si.mix_hash(i_epub)
    m1 = i_epub + si.enc(b"")
    sr.mix_hash(i_epub)
    sr.mix_hash(b"")
    sr.mix_hash(r_epub)
    sr.mix_key(dh(r_e, i_epub))
    c_s = sr.enc(r_spub)
    sr.mix_key(dh(r_s, i_epub))
    c_p = sr.enc(payload(r_id, r_spub))
    m2 = r_epub + c_s + c_p
    # the initiator reads message 2
    si.mix_hash(r_epub)
    si.mix_key(dh(i_e, r_epub))
    assert si.dec(c_s) == r_spub
    si.mix_key(dh(i_e, r_spub))
    si.dec(c_p)
    # -> s, se, payload
    c_s3 = si.enc(i_spub)
    si.mix_key(dh(i_s, r_epub))
    c_p3 = si.enc(payload(i_id, i_spub))
    m3 = c_s3 + c_p3
    assert sr.dec(c_s3) == i_spub
    sr.mix_key(dh(r_e, i_spub))
    sr.dec(c_p3)
    assert si.h == sr.h and si.ck == sr.ck
    k1, k2 = si.split()
    t1 = ChaCha20Poly1305(k1).encrypt(b"\0" * 12, b"hello from the initiator", b"")
    t2 = ChaCha20Poly1305(k2).encrypt(b"\0" * 12, b"hello from the responder", b"")
    return [frame(m).hex() for m in (m1, m2, m3)], frame(t1).hex(), frame(t2).hex(), si.h.hex()


def main():
    i_seed = bytes.fromhex("7e0830617c4a7de83925dfb2694556b12936c477a0e1feb2e148ec9da60fee7d")
    r_seed = bytes(range(32, 64))
    secp_secret = bytes(range(1, 33))
    i_s, i_e = bytes([0x11] * 32), bytes([0x12] * 32)
    r_s, r_e = bytes([0x21] * 32), bytes([0x22] * 32)
    ed = full(ed_identity(i_seed), ed_identity(r_seed), i_s, i_e, r_s, r_e)
    sp = full(ed_identity(i_seed), secp_identity(secp_secret), i_s, i_e, r_s, r_e)
    out = {
        "_about": __doc__.strip().splitlines()[0],
        "initiator_identity_seed": i_seed.hex(),
        "initiator_static": i_s.hex(), "initiator_ephemeral": i_e.hex(),
        "responder_static": r_s.hex(), "responder_ephemeral": r_e.hex(),
        "ed25519": {"responder_identity_seed": r_seed.hex(), "messages": ed[0],
                    "transport_i2r": ed[1], "transport_r2i": ed[2], "handshake_hash": ed[3]},
        "secp256k1_high_s": {"responder_secret": secp_secret.hex(), "messages": sp[0],
                             "transport_i2r": sp[1], "transport_r2i": sp[2]},
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
