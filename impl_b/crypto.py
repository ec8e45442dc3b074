"""Cryptographic primitives of impl_b on pyca/cryptography (OpenSSL).

Ed25519 signing, the libsodium-strict verification rule of SPEC 7 (explicit pre-checks before
OpenSSL's verify), SHA-256, signing bytes (SPEC 6) and key-file loading (SPEC 2).
"""

import hashlib
import os
import stat

from cryptography import __version__ as _CRYPTO_VERSION
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.backends.openssl.backend import backend as _backend
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

L = 2**252 + 27742317777372353535851937790883648493
P = 2**255 - 19
_RAW = serialization.Encoding.Raw
_RAWPUB = serialization.PublicFormat.Raw

# SPEC 7 blocklist: the five encodings whose y is 0, 1, p-1, p or p+1 (orders 4, 1, 2, 4, 1) and
# the two order-8 points.
_ORDER_EIGHT = ("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
                "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a")
BLOCKLIST = frozenset([y.to_bytes(32, "little") for y in (0, 1, P - 1, P, P + 1)]
                      + [bytes.fromhex(h) for h in _ORDER_EIGHT])


def backend_name() -> str:
    return f"{_backend.openssl_version_text()} (pyca/cryptography {_CRYPTO_VERSION})"


def sha256(data: bytes) -> bytes:
    # hashlib runs the same OpenSSL SHA-256 as pyca's Hash, at a third of the per-call overhead.
    return hashlib.sha256(data).digest()


def _clear_top(b: bytes) -> bytes:
    return b[:31] + bytes([b[31] & 0x7F])


def _decodes_to_point(a: bytes) -> bool:
    """RFC 8032 5.1.3 point decoding check for a canonical encoding."""
    y = int.from_bytes(_clear_top(a), "little")
    sign = a[31] >> 7
    d = (-121665 * pow(121666, P - 2, P)) % P
    y2 = y * y % P
    u = (y2 - 1) % P
    v = (d * y2 + 1) % P
    x = u * pow(v, 3, P) * pow(u * pow(v, 7, P), (P - 5) // 8, P) % P
    vx2 = v * x * x % P
    if vx2 != u:
        if vx2 == (-u) % P:
            x = x * pow(2, (P - 1) // 4, P) % P
        else:
            return False
    return not (x == 0 and sign == 1)


_pub_cache: dict[bytes, Ed25519PublicKey | None] = {}


def _checked_public(a: bytes) -> Ed25519PublicKey | None:
    """Public key object if `a` passes SPEC 7 checks 3-5, else None (cached)."""
    if a in _pub_cache:
        return _pub_cache[a]
    pk = None
    a0 = _clear_top(a)
    if int.from_bytes(a0, "little") < P and a0 not in BLOCKLIST and _decodes_to_point(a):
        pk = Ed25519PublicKey.from_public_bytes(a)
    if len(_pub_cache) > 4096:
        _pub_cache.clear()
    _pub_cache[a] = pk
    return pk


def verify(public: bytes, message: bytes, signature: bytes) -> bool:
    """SPEC 7 libsodium-strict Ed25519 verification."""
    if len(public) != 32 or len(signature) != 64:
        return False
    if int.from_bytes(signature[32:], "little") >= L:
        return False
    if _clear_top(signature[:32]) in BLOCKLIST:
        return False
    pk = _checked_public(bytes(public))
    if pk is None:
        return False
    try:
        pk.verify(bytes(signature), bytes(message))
    except InvalidSignature:
        return False
    return True


class Signer:
    """An Ed25519 signing key; the seed never leaves this object."""

    def __init__(self, seed: bytes):
        self._key = Ed25519PrivateKey.from_private_bytes(seed)
        self.public = self._key.public_key().public_bytes(_RAW, _RAWPUB)

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)

    def __repr__(self):
        return f"Signer(public={self.public.hex()})"


def x25519_public(secret: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(secret).public_key().public_bytes(_RAW, _RAWPUB)


def signing_bytes(domain: str, network_id: str, body: bytes) -> bytes:
    nid = network_id.encode()
    return b"heraclius/v1/" + domain.encode() + b"\x00" + len(nid).to_bytes(2, "big") + nid + body


class KeyFileError(Exception):
    """A key file is missing, malformed or has unsafe permissions (local misuse, exit 3)."""


def read_key_file(path: str) -> bytes:
    """Read a SPEC 2 key file: 64 lowercase hex chars + newline, mode 0600 or 0400."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise KeyFileError(f"{path}: cannot stat ({e.strerror})") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(f"{path}: permissions too open (need 0600 or 0400)")
    with open(path, "rb") as fh:
        raw = fh.read(200)
    if len(raw) != 65 or raw[64:] != b"\n" or any(c not in b"0123456789abcdef" for c in raw[:64]):
        raise KeyFileError(f"{path}: not 64 lowercase hex characters and a newline")
    return bytes.fromhex(raw[:64].decode())


def write_key_file(path: str, secret: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(secret.hex().encode() + b"\n")
    os.chmod(path, 0o600)
