"""The deployment's SSH key pair (Ed25519, OpenSSH format): private file 0600, never printed."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519


def generate_ssh_key(path: Path, comment: str = "heraclius") -> str:
    """Write a new private key to `path` (mode 0600, refusing to overwrite) and `path`.pub;
    return the public key line."""
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode() + f" {comment}"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, private)
    finally:
        os.close(fd)
    Path(f"{path}.pub").write_text(public + "\n")
    return public
