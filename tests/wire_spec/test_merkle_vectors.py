"""merkle vectors: recomputed with an independent RFC 9162 verifier written here."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from tests.wire_spec.conftest import VECTORS
from wire_spec.vectors.generator import merkle


def _mth(leaves: list[bytes]) -> bytes:
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + _mth(leaves[:k]) + _mth(leaves[k:])).digest()


def _verify(index: int, count: int, lh: bytes, proof: list[bytes], root: bytes) -> bool:
    """Recursive form: rebuild the root from the path, consuming entries from the top down."""
    if index >= count or len(lh) != 32 or len(root) != 32 or any(len(p) != 32 for p in proof):
        return False

    def walk(i: int, n: int, path: list[bytes]) -> bytes | None:
        if n == 1:
            return lh if not path else None
        if not path:
            return None
        k = 1 << ((n - 1).bit_length() - 1)
        sibling = path[-1]
        if i < k:
            sub = walk(i, k, path[:-1])
            return None if sub is None else hashlib.sha256(b"\x01" + sub + sibling).digest()
        sub = walk(i - k, n - k, path[:-1])
        return None if sub is None else hashlib.sha256(b"\x01" + sibling + sub).digest()

    return walk(index, count, proof) == root


@pytest.mark.parametrize("case", sorted(VECTORS.glob("merkle/root/*/*")), ids=lambda p: p.name)
def test_root(case):
    leaves = [bytes.fromhex(x) for x in json.loads((case / "input.json").read_text())["leaves"]]
    assert _mth(leaves).hex() == json.loads((case / "expected.json").read_text())["root"]


@pytest.mark.parametrize("case", sorted(VECTORS.glob("merkle/proof/*/*")), ids=lambda p: "/".join(p.parts[-2:]))
def test_proof(case):
    meta = json.loads((case / "meta.json").read_text())
    inp = json.loads((case / "input.json").read_text())
    lh = bytes.fromhex(inp["leaf_hash"])
    ok = _verify(inp["leaf_index"], inp["leaf_count"], lh, [bytes.fromhex(p) for p in inp["proof"]],
                 bytes.fromhex(inp["root"]))
    assert ok == (meta["verdict"] == "accept") == (case.parent.name == "valid")
    if "leaf" in inp:
        assert hashlib.sha256(b"\x00" + bytes.fromhex(inp["leaf"])).digest() == lh


def test_generator_verifier_matches_transparency_dev():
    files = sorted((VECTORS / "external/merkle/transparency-dev/inclusion").rglob("*.json"))
    assert len(files) > 90

    def b(x):
        return base64.b64decode(x) if x else b""
    for f in files:
        d = json.loads(f.read_text())
        got = merkle.verify_inclusion(d["leafIdx"], d["treeSize"], b(d["leafHash"]),
                                      [b(p) for p in d["proof"] or []], b(d["root"]))
        assert got == (not d["wantErr"]), f.name
