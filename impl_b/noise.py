"""Noise protocol framework (revision 34) for impl_b on pyca/cryptography primitives.

Supports the 25519 DH, ChaChaPoly cipher, BLAKE2b and SHA256 hashes and the XX, IK and KK patterns
(XX is what SPEC 13 uses; IK and KK are for the published test vectors), plus REKEY.
"""

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

MAX_MESSAGE = 65535
TAG = 16
MAX_NONCE = 2**64 - 1

PATTERNS = {
    "XX": ([], [], [["e"], ["e", "ee", "s", "es"], ["s", "se"]]),
    "IK": ([], ["s"], [["e", "es", "s", "ss"], ["e", "ee", "se"]]),
    "KK": (["s"], ["s"], [["e", "es", "ss"], ["e", "ee", "se"]]),
}


class NoiseError(Exception):
    """Handshake or transport failure caused by the remote side (decryption, length, key)."""


class _Hash:
    def __init__(self, name: str):
        if name == "BLAKE2b":
            self.algo, self.hashlen, self.blocklen = (lambda: hashes.BLAKE2b(64)), 64, 128
        elif name == "SHA256":
            self.algo, self.hashlen, self.blocklen = hashes.SHA256, 32, 64
        else:
            raise ValueError(f"unsupported hash {name}")

    def hash(self, data: bytes) -> bytes:
        h = hashes.Hash(self.algo())
        h.update(data)
        return h.finalize()

    def hmac(self, key: bytes, data: bytes) -> bytes:
        if len(key) > self.blocklen:
            key = self.hash(key)
        key = key.ljust(self.blocklen, b"\x00")
        inner = self.hash(bytes(b ^ 0x36 for b in key) + data)
        return self.hash(bytes(b ^ 0x5C for b in key) + inner)

    def hkdf(self, ck: bytes, ikm: bytes, n: int) -> list[bytes]:
        tk = self.hmac(ck, ikm)
        o1 = self.hmac(tk, b"\x01")
        o2 = self.hmac(tk, o1 + b"\x02")
        if n == 2:
            return [o1, o2]
        return [o1, o2, self.hmac(tk, o2 + b"\x03")]


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
        if self.n >= MAX_NONCE - 1:
            raise NoiseError("nonce exhausted")
        ct = self._aead.encrypt(_nonce(self.n), plaintext, ad)
        self._advance()
        return ct

    def decrypt(self, ad: bytes, ciphertext: bytes) -> bytes:
        if self.k is None:
            return ciphertext
        if self.n >= MAX_NONCE - 1:
            raise NoiseError("nonce exhausted")
        try:
            pt = self._aead.decrypt(_nonce(self.n), ciphertext, ad)
        except InvalidTag:
            raise NoiseError("decryption failed") from None
        self._advance()
        return pt


def _dh(priv: X25519PrivateKey, pub: bytes) -> bytes:
    try:
        return priv.exchange(X25519PublicKey.from_public_bytes(pub))
    except ValueError:
        raise NoiseError("invalid DH public key") from None


def _pub(priv: X25519PrivateKey) -> bytes:
    return priv.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


class HandshakeState:
    """One side of a Noise handshake; `write_message` / `read_message` in pattern order."""

    def __init__(self, protocol_name: str, initiator: bool, prologue: bytes, s: bytes | None = None,
                 e: bytes | None = None, rs: bytes | None = None, auto_rekey: bool = False):
        parts = protocol_name.split("_")
        if len(parts) != 5 or parts[0] != "Noise" or parts[2] != "25519" or parts[3] != "ChaChaPoly":
            raise ValueError(f"unsupported protocol {protocol_name}")
        pre_i, pre_r, self.messages = PATTERNS[parts[1]]
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

    def _enc_hash(self, pt: bytes) -> bytes:
        ct = self.cs.encrypt(self.h, pt)
        self._mix_hash(ct)
        return ct

    def _dec_hash(self, ct: bytes) -> bytes:
        pt = self.cs.decrypt(self.h, ct)
        self._mix_hash(ct)
        return pt

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
                out += self._enc_hash(_pub(self.s))
            else:
                self._mix_key(self._dh_token(token))
        out += self._enc_hash(payload)
        self.turn += 1
        if len(out) > MAX_MESSAGE:
            raise ValueError("handshake message too long")
        return bytes(out)

    def read_message(self, message: bytes) -> bytes:
        if self.finished or self._my_turn():
            raise NoiseError("unexpected handshake message")
        pos = 0
        for token in self.messages[self.turn]:
            if token == "e":
                if len(message) < pos + 32:
                    raise NoiseError("short handshake message")
                self.re = bytes(message[pos:pos + 32])
                pos += 32
                self._mix_hash(self.re)
            elif token == "s":
                ln = 32 + (TAG if self.cs.has_key() else 0)
                if len(message) < pos + ln:
                    raise NoiseError("short handshake message")
                self.rs = self._dec_hash(bytes(message[pos:pos + ln]))
                pos += ln
            else:
                self._mix_key(self._dh_token(token))
        if self.cs.has_key() and len(message) - pos < TAG:
            raise NoiseError("short handshake message")
        payload = self._dec_hash(bytes(message[pos:]))
        self.turn += 1
        return payload

    def split(self) -> tuple[CipherState, CipherState]:
        """(initiator->responder, responder->initiator) cipher states."""
        k1, k2 = self.hash.hkdf(self.ck, b"", 2)
        return CipherState(k1[:32], self.auto_rekey), CipherState(k2[:32], self.auto_rekey)

    @property
    def remote_static(self) -> bytes | None:
        return self.rs
