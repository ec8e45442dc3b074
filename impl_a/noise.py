"""Noise Protocol Framework (revision 34) over libsodium: 25519, ChaChaPoly, BLAKE2b or SHA256.

Supports the XX, IK and KK handshake patterns (hand-built HMAC/HKDF), CipherState with REKEY,
and a fixed-ephemeral hook so the published test vectors can be replayed.
"""

from __future__ import annotations

import struct

import nacl.bindings as nb
from nacl.exceptions import CryptoError

from impl_a import crypto

MAX_NONCE = 2**64 - 1
DHLEN = 32

PATTERNS = {
    # pattern: (pre-messages initiator, pre-messages responder, message token lists)
    "XX": ([], [], [["e"], ["e", "ee", "s", "es"], ["s", "se"]]),
    "IK": ([], ["s"], [["e", "es", "s", "ss"], ["e", "ee", "se"]]),
    "KK": (["s"], ["s"], [["e", "es", "ss"], ["e", "ee", "se"]]),
}


class NoiseError(Exception):
    """Handshake or transport failure (bad MAC, bad key, exhausted nonce, wrong state)."""


class _Hash:
    def __init__(self, name: str):
        if name == "BLAKE2b":
            self.hashlen, self.blocklen = 64, 128
            self.fn = crypto.blake2b
        elif name == "SHA256":
            self.hashlen, self.blocklen = 32, 64
            self.fn = crypto.sha256
        else:
            raise ValueError(f"unsupported hash {name}")

    def hmac(self, key: bytes, data: bytes) -> bytes:
        if len(key) > self.blocklen:
            key = self.fn(key)
        key = key.ljust(self.blocklen, b"\x00")
        ipad = bytes(b ^ 0x36 for b in key)
        opad = bytes(b ^ 0x5C for b in key)
        return self.fn(opad + self.fn(ipad + data))

    def hkdf(self, ck: bytes, ikm: bytes, n: int) -> list[bytes]:
        temp = self.hmac(ck, ikm)
        out, prev = [], b""
        for i in range(1, n + 1):
            prev = self.hmac(temp, prev + bytes([i]))
            out.append(prev)
        return out


def _nonce(n: int) -> bytes:
    return b"\x00\x00\x00\x00" + struct.pack("<Q", n)


class CipherState:
    """ChaChaPoly cipher state. rekey_every: rekey after nonce n with (n+1) % rekey_every == 0."""

    def __init__(self, key: bytes | None = None, rekey_every: int | None = None):
        self.k = key
        self.n = 0
        self.rekey_every = rekey_every

    def has_key(self) -> bool:
        return self.k is not None

    def _after(self) -> None:
        used = self.n
        self.n += 1
        if self.rekey_every and (used + 1) % self.rekey_every == 0:
            self.rekey()

    def encrypt_with_ad(self, ad: bytes, plaintext: bytes) -> bytes:
        if self.k is None:
            return plaintext
        if self.n >= MAX_NONCE:
            raise NoiseError("nonce exhausted")
        ct = crypto.aead_encrypt(self.k, _nonce(self.n), ad, plaintext)
        self._after()
        return ct

    def decrypt_with_ad(self, ad: bytes, ciphertext: bytes) -> bytes:
        if self.k is None:
            return ciphertext
        if self.n >= MAX_NONCE:
            raise NoiseError("nonce exhausted")
        try:
            pt = crypto.aead_decrypt(self.k, _nonce(self.n), ad, ciphertext)
        except (CryptoError, ValueError):
            raise NoiseError("decryption failed") from None
        self._after()
        return pt

    def rekey(self) -> None:
        self.k = crypto.aead_encrypt(self.k, _nonce(MAX_NONCE), b"", bytes(32))[:32]


class SymmetricState:
    def __init__(self, protocol_name: bytes, hash_name: str):
        self.hash = _Hash(hash_name)
        if len(protocol_name) <= self.hash.hashlen:
            self.h = protocol_name.ljust(self.hash.hashlen, b"\x00")
        else:
            self.h = self.hash.fn(protocol_name)
        self.ck = self.h
        self.cipher = CipherState()

    def mix_key(self, ikm: bytes) -> None:
        self.ck, temp_k = self.hash.hkdf(self.ck, ikm, 2)
        self.cipher = CipherState(temp_k[:32])

    def mix_hash(self, data: bytes) -> None:
        self.h = self.hash.fn(self.h + data)

    def encrypt_and_hash(self, plaintext: bytes) -> bytes:
        ct = self.cipher.encrypt_with_ad(self.h, plaintext)
        self.mix_hash(ct)
        return ct

    def decrypt_and_hash(self, ciphertext: bytes) -> bytes:
        pt = self.cipher.decrypt_with_ad(self.h, ciphertext)
        self.mix_hash(ciphertext)
        return pt

    def split(self, rekey_every: int | None) -> tuple[CipherState, CipherState]:
        k1, k2 = self.hash.hkdf(self.ck, b"", 2)
        return CipherState(k1[:32], rekey_every), CipherState(k2[:32], rekey_every)


class HandshakeState:
    """One side of a Noise handshake. s/e are private keys; rs/re are the remote public keys."""

    def __init__(self, protocol_name: str, initiator: bool, prologue: bytes = b"", s: bytes | None = None,
                 rs: bytes | None = None, e: bytes | None = None, rekey_every: int | None = None):
        parts = protocol_name.split("_")
        if len(parts) != 5 or parts[0] != "Noise" or parts[2] != "25519" or parts[3] != "ChaChaPoly":
            raise ValueError(f"unsupported protocol {protocol_name}")
        if parts[1] not in PATTERNS:
            raise ValueError(f"unsupported pattern {parts[1]}")
        pre_i, pre_r, self.messages = PATTERNS[parts[1]]
        self.ss = SymmetricState(protocol_name.encode(), parts[4])
        self.initiator = initiator
        self.s = s
        self.s_pub = crypto.x25519_public(s) if s is not None else None
        self.fixed_e = e
        self.e = self.e_pub = None
        self.rs = rs
        self.re: bytes | None = None
        self.rekey_every = rekey_every
        self.index = 0
        self.ss.mix_hash(prologue)
        for token in pre_i:
            assert token == "s"
            self.ss.mix_hash(self.s_pub if initiator else self._need(rs, "remote static"))
        for token in pre_r:
            assert token == "s"
            self.ss.mix_hash(self._need(rs, "remote static") if initiator else self.s_pub)

    @staticmethod
    def _need(value: bytes | None, what: str) -> bytes:
        if value is None:
            raise ValueError(f"{what} key required by the pattern")
        return value

    @property
    def complete(self) -> bool:
        return self.index >= len(self.messages)

    def my_turn(self) -> bool:
        return (self.index % 2 == 0) == self.initiator

    def _dh(self, local: bytes, remote: bytes) -> bytes:
        try:
            out = crypto.x25519(local, remote)
        except (CryptoError, RuntimeError, ValueError):
            raise NoiseError("invalid DH public key") from None
        if out == bytes(DHLEN):  # SPEC 13: a small-order remote key gives all zeros (libsodium refuses it too)
            raise NoiseError("all-zero DH result")
        return out

    def _token_dh(self, token: str) -> bytes:
        # Token names are (initiator key, responder key); map them to local/remote keys.
        a, b = token[0], token[1]
        mine, theirs = (a, b) if self.initiator else (b, a)
        local = self.e if mine == "e" else self.s
        remote = self.re if theirs == "e" else self.rs
        return self._dh(local, remote)

    def write_message(self, payload: bytes) -> bytes:
        if self.complete or not self.my_turn():
            raise NoiseError("not our turn to write")
        out = b""
        for token in self.messages[self.index]:
            if token == "e":
                self.e = self.fixed_e if self.fixed_e is not None else nb.randombytes(32)
                self.e_pub = crypto.x25519_public(self.e)
                out += self.e_pub
                self.ss.mix_hash(self.e_pub)
            elif token == "s":
                out += self.ss.encrypt_and_hash(self.s_pub)
            else:
                self.ss.mix_key(self._token_dh(token))
        out += self.ss.encrypt_and_hash(payload)
        self.index += 1
        return out

    def read_message(self, message: bytes) -> bytes:
        if self.complete or self.my_turn():
            raise NoiseError("not our turn to read")
        pos = 0
        for token in self.messages[self.index]:
            if token == "e":
                if len(message) - pos < DHLEN:
                    raise NoiseError("short handshake message")
                self.re = message[pos:pos + DHLEN]
                pos += DHLEN
                self.ss.mix_hash(self.re)
            elif token == "s":
                n = DHLEN + (16 if self.ss.cipher.has_key() else 0)
                if len(message) - pos < n:
                    raise NoiseError("short handshake message")
                self.rs = self.ss.decrypt_and_hash(message[pos:pos + n])
                pos += n
            else:
                self.ss.mix_key(self._token_dh(token))
        payload = self.ss.decrypt_and_hash(message[pos:])
        self.index += 1
        return payload

    def split(self) -> tuple[CipherState, CipherState]:
        """(send, receive) cipher states for this side."""
        if not self.complete:
            raise NoiseError("handshake incomplete")
        c1, c2 = self.ss.split(self.rekey_every)
        return (c1, c2) if self.initiator else (c2, c1)

    @property
    def handshake_hash(self) -> bytes:
        return self.ss.h
