"""RFC 6962 / RFC 9162 Merkle tree hash and inclusion proofs with SHA-256 (SPEC 8)."""

from __future__ import annotations

from impl_a.crypto import sha256


def leaf_hash(data: bytes) -> bytes:
    return sha256(b"\x00" + data)


def node_hash(left: bytes, right: bytes) -> bytes:
    return sha256(b"\x01" + left + right)


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _root_of_hashes(hashes: list[bytes]) -> bytes:
    n = len(hashes)
    if n == 1:
        return hashes[0]
    k = _split(n)
    return node_hash(_root_of_hashes(hashes[:k]), _root_of_hashes(hashes[k:]))


def root(leaves: list[bytes]) -> bytes:
    if not leaves:
        return sha256(b"")
    return _root_of_hashes([leaf_hash(x) for x in leaves])


def _path(index: int, hashes: list[bytes]) -> list[bytes]:
    n = len(hashes)
    if n <= 1:
        return []
    k = _split(n)
    if index < k:
        return _path(index, hashes[:k]) + [_root_of_hashes(hashes[k:])]
    return _path(index - k, hashes[k:]) + [_root_of_hashes(hashes[:k])]


def inclusion_proof(leaves: list[bytes], index: int) -> list[bytes]:
    return _path(index, [leaf_hash(x) for x in leaves])


def all_proofs(leaves: list[bytes]) -> tuple[bytes, list[list[bytes]]]:
    """Root and every leaf's proof (decisions have few leaves, so the simple recursion suffices)."""
    hashes = [leaf_hash(x) for x in leaves]
    r = _root_of_hashes(hashes) if hashes else sha256(b"")
    return r, [_path(i, hashes) for i in range(len(hashes))]


def verify_inclusion(leaf_index: int, tree_size: int, leaf_h: bytes, proof: list[bytes], root_h: bytes) -> bool:
    """RFC 9162 2.1.3.2, plus SPEC 8: every hash exactly 32 bytes and the exact path length."""
    if leaf_index < 0 or leaf_index >= tree_size:
        return False
    if len(leaf_h) != 32 or len(root_h) != 32 or any(len(p) != 32 for p in proof):
        return False
    fn, sn = leaf_index, tree_size - 1
    r = leaf_h
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root_h
