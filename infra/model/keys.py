"""Key generation and key files (SPEC 2): 64 hex chars + newline, mode 0600, directories 0700."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

from infra.errors import UsageError

_RAW = serialization.Encoding.Raw
_RAW_PUB = serialization.PublicFormat.Raw


def make_private_dir(path: Path) -> Path:
    """Create `path` (and parents) with mode 0700 on the leaf."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def _write_secret(path: Path, secret: bytes) -> None:
    # O_EXCL: never overwrite an existing key; the mode is set at creation so it is never readable.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, (secret.hex() + "\n").encode())
    finally:
        os.close(fd)
    os.chmod(path, 0o600)


def read_secret(path: Path) -> bytes:
    """Read a key file, checking format and mode like a node would."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        text = path.read_text()
    except OSError as e:
        raise UsageError(f"cannot read key file {path}: {e.strerror}") from None
    if mode & 0o077:
        raise UsageError(f"key file {path} has mode {mode:o}", fix=f"chmod 600 {path}")
    if len(text) != 65 or not text.endswith("\n"):
        raise UsageError(f"key file {path} is malformed (want 64 hex characters and a newline)")
    try:
        return bytes.fromhex(text[:64])
    except ValueError:
        raise UsageError(f"key file {path} is malformed (not hex)") from None


def ed25519_public(secret: bytes) -> str:
    return ed25519.Ed25519PrivateKey.from_private_bytes(secret).public_key().public_bytes(_RAW, _RAW_PUB).hex()


def x25519_public(secret: bytes) -> str:
    return x25519.X25519PrivateKey.from_private_bytes(secret).public_key().public_bytes(_RAW, _RAW_PUB).hex()


def generate_node_keys(keys_dir: Path) -> tuple[str, str]:
    """Write ed25519.key and x25519.key into `keys_dir`; return (ed25519_public, x25519_public) hex."""
    make_private_dir(keys_dir)
    ed = os.urandom(32)
    xs = os.urandom(32)
    _write_secret(keys_dir / "ed25519.key", ed)
    _write_secret(keys_dir / "x25519.key", xs)
    return ed25519_public(ed), x25519_public(xs)


def generate_client_key(path: Path) -> str:
    """Write a client Ed25519 key file; return its public key hex."""
    make_private_dir(path.parent)
    secret = os.urandom(32)
    _write_secret(path, secret)
    return ed25519_public(secret)
