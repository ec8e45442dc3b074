"""Noise protocol framework (revision 34) for impl_b on pyca/cryptography primitives.

Supports the 25519 DH, ChaChaPoly cipher, BLAKE2b and SHA256 hashes and the XX, IK and KK patterns
(XX is what SPEC 13 uses; IK and KK are for the published test vectors), plus REKEY.
"""

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

MAX_MESSAGE = 65535
TAG = 16
MAX_NONCE = 2**64 - 1

# Handshake patterns: "pre-messages / messages", tokens separated by spaces, messages by "|".
_PATTERN_TEXT = {
    "XX": (" / ", "e | e ee s es | s se"),
    "IK": (" / s", "e es s ss | e ee se"),
    "KK": ("s / s", "e es ss | e ee se"),
}


def _pattern(name: str) -> tuple[list[str], list[str], list[list[str]]]:
    pre, msgs = _PATTERN_TEXT[name]
    pre_i, pre_r = (side.split() for side in pre.split("/"))
    return pre_i, pre_r, [m.split() for m in msgs.split("|")]


class NoiseError(Exception):
    """Handshake or transport failure caused by the remote side (decryption, length, key)."""


# name -> (hash algorithm factory, HASHLEN)
_HASHES = {"BLAKE2b": (lambda: hashes.BLAKE2b(64), 64), "SHA256": (hashes.SHA256, 32)}


class _Hash:
    """HASH, HMAC-HASH and HKDF of the Noise spec (section 4.3) on pyca/cryptography."""

    def __init__(self, name: str):
        if name not in _HASHES:
            raise ValueError(f"unsupported hash {name}")
        self.algo, self.hashlen = _HASHES[name]

    def hash(self, data: bytes) -> bytes:
        ctx = hashes.Hash(self.algo())
        ctx.update(data)
        return ctx.finalize()

    def hmac(self, key: bytes, data: bytes) -> bytes:
        mac = hmac.HMAC(key, self.algo())
        mac.update(data)
        return mac.finalize()

    def hkdf(self, chaining_key: bytes, ikm: bytes, outputs: int) -> list[bytes]:
        temp = self.hmac(chaining_key, ikm)
        result: list[bytes] = []
        prev = b""
        for i in range(1, outputs + 1):
            prev = self.hmac(temp, prev + bytes([i]))
            result.append(prev)
        return result


def _nonce(n: int) -> bytes:
    return b"\x00" * 4 + n.to_bytes(8, "little")


class CipherState:
    """Noise CipherState with SPEC 13's automatic rekey every 65536 messages."""

    def __init__(self, key: bytes | None = None, auto_rekey: bool = False):
        self.k = key
        self.n = 0
        self.auto_rekey = auto_rekey
        self._aead = ChaCha20Poly1305(key) if key else None

    def has_key(self) -> bool:
        return self.k is not None

    def rekey(self) -> None:
        self.k = ChaCha20Poly1305(self.k).encrypt(_nonce(MAX_NONCE), b"\x00" * 32, b"")[:32]
        self._aead = ChaCha20Poly1305(self.k)

    def _advance(self) -> None:
        self.n += 1
        if self.auto_rekey and self.n % 65536 == 0:
            self.rekey()

    def encrypt(self, ad: bytes, plaintext: bytes) -> bytes:
        if self.k is None:
            return plaintext
        if self.n >= MAX_NONCE:  # the last usable nonce is 2^64 - 2
            raise NoiseError("nonce exhausted")
        ct = self._aead.encrypt(_nonce(self.n), plaintext, ad)
        self._advance()
        return ct

    def decrypt(self, ad: bytes, ciphertext: bytes) -> bytes:
        if self.k is None:
            return ciphertext
        if self.n >= MAX_NONCE:  # the last usable nonce is 2^64 - 2
            raise NoiseError("nonce exhausted")
        try:
            pt = self._aead.decrypt(_nonce(self.n), ciphertext, ad)
        except InvalidTag:
            raise NoiseError("decryption failed") from None
        self._advance()
        return pt


_ZERO32 = bytes(32)


def _dh(priv: X25519PrivateKey, pub: bytes) -> bytes:
    """X25519 with SPEC 13's check: a small-order remote key (all-zero result) fails the handshake.

    OpenSSL refuses an all-zero result with ValueError; the explicit comparison keeps the rule
    whatever the backend does."""
    try:
        out = priv.exchange(X25519PublicKey.from_public_bytes(pub))
    except (ValueError, TypeError):
        raise NoiseError("invalid DH result (small-order or malformed public key)") from None
    if out == _ZERO32:
        raise NoiseError("all-zero DH result")
    return out


def _pub(priv: X25519PrivateKey) -> bytes:
    return priv.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


class HandshakeState:
    """One side of a Noise handshake; `write_message` / `read_message` in pattern order."""

    def __init__(self, protocol_name: str, initiator: bool, prologue: bytes, s: bytes | None = None,
                 e: bytes | None = None, rs: bytes | None = None, auto_rekey: bool = False):
        parts = protocol_name.split("_")
        if len(parts) != 5 or parts[0] != "Noise" or parts[2] != "25519" or parts[3] != "ChaChaPoly":
            raise ValueError(f"unsupported protocol {protocol_name}")
        pre_i, pre_r, self.messages = _pattern(parts[1])
        self.hash = _Hash(parts[4])
        name = protocol_name.encode()
        self.h = name.ljust(self.hash.hashlen, b"\x00") if len(name) <= self.hash.hashlen else self.hash.hash(name)
        self.ck = self.h
        self.cs = CipherState()
        self.initiator = initiator
        self.auto_rekey = auto_rekey
        self.s = X25519PrivateKey.from_private_bytes(s) if s else None
        self._fixed_e = e
        self.e: X25519PrivateKey | None = None
        self.rs = rs
        self.re: bytes | None = None
        self.turn = 0
        self._mix_hash(prologue)
        for token in pre_i:
            assert token == "s"
            self._mix_hash(_pub(self.s) if initiator else rs)
        for token in pre_r:
            assert token == "s"
            self._mix_hash(rs if initiator else _pub(self.s))

    def _mix_hash(self, data: bytes) -> None:
        self.h = self.hash.hash(self.h + data)

    def _mix_key(self, ikm: bytes) -> None:
        self.ck, k = self.hash.hkdf(self.ck, ikm, 2)
        self.cs = CipherState(k[:32])

    def _crypt_hash(self, data: bytes, sealing: bool) -> bytes:
        """EncryptAndHash (sealing) or DecryptAndHash: the ciphertext is always what gets hashed."""
        out = self.cs.encrypt(self.h, data) if sealing else self.cs.decrypt(self.h, data)
        self._mix_hash(out if sealing else data)
        return out

    def _dh_token(self, token: str) -> bytes:
        local_is_first = self.initiator
        a, b = token[0], token[1]
        mine, theirs = (a, b) if local_is_first else (b, a)
        priv = self.e if mine == "e" else self.s
        pub = self.re if theirs == "e" else self.rs
        return _dh(priv, pub)

    @property
    def finished(self) -> bool:
        return self.turn >= len(self.messages)

    def _my_turn(self) -> bool:
        return (self.turn % 2 == 0) == self.initiator

    def write_message(self, payload: bytes = b"") -> bytes:
        if self.finished or not self._my_turn():
            raise ValueError("not our turn to write")
        out = bytearray()
        for token in self.messages[self.turn]:
            if token == "e":
                self.e = (X25519PrivateKey.from_private_bytes(self._fixed_e) if self._fixed_e
                          else X25519PrivateKey.generate())
                epub = _pub(self.e)
                out += epub
                self._mix_hash(epub)
            elif token == "s":
                out += self._crypt_hash(_pub(self.s), True)
            else:
                self._mix_key(self._dh_token(token))
        out += self._crypt_hash(payload, True)
        self.turn += 1
        if len(out) > MAX_MESSAGE:
            raise ValueError("handshake message too long")
        return bytes(out)

    def read_message(self, message: bytes) -> bytes:
        if self.finished or self._my_turn():
            raise NoiseError("unexpected handshake message")
        data = bytes(message)
        cursor = 0

        def take(width: int) -> bytes:
            nonlocal cursor
            if cursor + width > len(data):
                raise NoiseError("short handshake message")
            cursor += width
            return data[cursor - width:cursor]

        for token in self.messages[self.turn]:
            if token in ("ee", "es", "se", "ss"):
                self._mix_key(self._dh_token(token))
            elif token == "e":
                self.re = take(32)
                self._mix_hash(self.re)
            else:
                self.rs = self._crypt_hash(take(32 + (TAG if self.cs.has_key() else 0)), False)
        rest = data[cursor:]
        if self.cs.has_key() and len(rest) < TAG:
            raise NoiseError("short handshake message")
        self.turn += 1
        return self._crypt_hash(rest, False)

    def split(self) -> tuple[CipherState, CipherState]:
        """(initiator->responder, responder->initiator) cipher states."""
        k1, k2 = self.hash.hkdf(self.ck, b"", 2)
        return CipherState(k1[:32], self.auto_rekey), CipherState(k2[:32], self.auto_rekey)

    @property
    def remote_static(self) -> bytes | None:
        return self.rs
