"""Deterministic key material and the signing bytes of SPEC 6.

Every secret is SHA-256("heraclius vector key " + name); these keys are public test data.
"""

from __future__ import annotations

import hashlib
import struct

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

SIGNING_PREFIX = b"heraclius/v1/"
DOMAINS = ["client-request", "client-bundle", "decision", "proposal", "prepare", "view-change", "view-data", "new-view"]


def seed(name: str) -> bytes:
    return hashlib.sha256(b"heraclius vector key " + name.encode("utf-8")).digest()


def ed25519_public(secret: bytes) -> bytes:
    return Ed25519PrivateKey.from_private_bytes(secret).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def x25519_public(secret: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(secret).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def sign(secret: bytes, data: bytes) -> bytes:
    return Ed25519PrivateKey.from_private_bytes(secret).sign(data)


def signing_bytes(domain: str, network_id: str, body: bytes) -> bytes:
    if domain not in DOMAINS:
        raise ValueError(f"unknown signing domain {domain!r}")
    net = network_id.encode("utf-8")
    return SIGNING_PREFIX + domain.encode("ascii") + b"\x00" + struct.pack(">H", len(net)) + net + body


class Signer:
    """An Ed25519 identity named `name` (a node or a client)."""

    def __init__(self, name: str):
        self.name = name
        self.secret = seed(name + "/ed25519")
        self.public = ed25519_public(self.secret)

    def sign(self, domain: str, network_id: str, body: bytes) -> bytes:
        return sign(self.secret, signing_bytes(domain, network_id, body))
