"""Primitives over libsodium (PyNaCl): Ed25519 (SPEC 7 strict rule), X25519, ChaCha20-Poly1305,
SHA-256/512, BLAKE2b, and the SPEC 6 signing bytes."""

from __future__ import annotations

import struct

import nacl.bindings as nb
from nacl.exceptions import BadSignatureError, CryptoError

L = 2**252 + 27742317777372353535851937790883648493
P = 2**255 - 19
_BLOCKLIST = {bytes.fromhex(h) for h in (
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0100000000000000000000000000000000000000000000000000000000000000",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
)}

BACKEND = "libsodium (PyNaCl)"
try:  # libsodium version string is not exposed by every PyNaCl build
    import nacl

    BACKEND = f"libsodium via PyNaCl {nacl.__version__}"
except Exception:  # pragma: no cover
    pass


def sha256(data: bytes) -> bytes:
    return nb.crypto_hash_sha256(bytes(data))


def sha512(data: bytes) -> bytes:
    return nb.crypto_hash_sha512(bytes(data))


def blake2b(data: bytes) -> bytes:
    return nb.crypto_generichash_blake2b_salt_personal(bytes(data), digest_size=64)


class SigningKey:
    """An Ed25519 key pair from a 32-byte seed. The secret is never exposed by repr()."""

    __slots__ = ("public", "_sk")

    def __init__(self, seed: bytes):
        if len(seed) != 32:
            raise ValueError("Ed25519 seed must be 32 bytes")
        self.public, self._sk = nb.crypto_sign_seed_keypair(bytes(seed))

    def sign(self, message: bytes) -> bytes:
        return nb.crypto_sign(bytes(message), self._sk)[:64]

    def __repr__(self) -> str:
        return f"SigningKey(public={self.public.hex()})"


def _clear255(b: bytes) -> bytes:
    return b[:31] + bytes([b[31] & 0x7F])


def ed25519_verify(public: bytes, message: bytes, signature: bytes) -> bool:
    """SPEC 7 "libsodium-strict" verification; the pre-checks duplicate libsodium's for clarity."""
    if len(public) != 32 or len(signature) != 64:
        return False
    r, s = signature[:32], signature[32:]
    if int.from_bytes(s, "little") >= L:
        return False
    if _clear255(r) in _BLOCKLIST or _clear255(public) in _BLOCKLIST:
        return False
    if int.from_bytes(_clear255(public), "little") >= P:
        return False
    try:
        nb.crypto_sign_open(bytes(signature) + bytes(message), bytes(public))
    except (BadSignatureError, CryptoError, ValueError):
        return False
    return True


def x25519_public(secret: bytes) -> bytes:
    return nb.crypto_scalarmult_base(bytes(secret))


def x25519(secret: bytes, public: bytes) -> bytes:
    """Raises CryptoError for an all-zero shared secret (small-order public key)."""
    return nb.crypto_scalarmult(bytes(secret), bytes(public))


def aead_encrypt(key: bytes, nonce12: bytes, ad: bytes, plaintext: bytes) -> bytes:
    return nb.crypto_aead_chacha20poly1305_ietf_encrypt(bytes(plaintext), bytes(ad), nonce12, key)


def aead_decrypt(key: bytes, nonce12: bytes, ad: bytes, ciphertext: bytes) -> bytes:
    """Raises CryptoError on authentication failure."""
    return nb.crypto_aead_chacha20poly1305_ietf_decrypt(bytes(ciphertext), bytes(ad), nonce12, key)


def signing_bytes(domain: str, network_id: str, body: bytes) -> bytes:
    nid = network_id.encode()
    return b"heraclius/v1/" + domain.encode() + b"\x00" + struct.pack(">H", len(nid)) + nid + body
