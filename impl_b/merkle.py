"""RFC 6962 / RFC 9162 Merkle tree hashing, audit paths and their verification (SPEC 8)."""

from .crypto import sha256

EMPTY_ROOT = sha256(b"")


def leaf_hash(data: bytes) -> bytes:
    return sha256(b"\x00" + data)


def node_hash(left: bytes, right: bytes) -> bytes:
    return sha256(b"\x01" + left + right)


def _split(n: int) -> int:
    k = 1
    while k << 1 < n:
        k <<= 1
    return k


def _root_of_hashes(hs: list[bytes]) -> bytes:
    if len(hs) == 1:
        return hs[0]
    k = _split(len(hs))
    return node_hash(_root_of_hashes(hs[:k]), _root_of_hashes(hs[k:]))


def root(leaves: list[bytes]) -> bytes:
    """MTH over the leaf data."""
    if not leaves:
        return EMPTY_ROOT
    return _root_of_hashes([leaf_hash(d) for d in leaves])


def _path(index: int, hs: list[bytes]) -> list[bytes]:
    if len(hs) <= 1:
        return []
    k = _split(len(hs))
    if index < k:
        return _path(index, hs[:k]) + [_root_of_hashes(hs[k:])]
    return _path(index - k, hs[k:]) + [_root_of_hashes(hs[:k])]


def proofs(leaves: list[bytes]) -> tuple[bytes, list[list[bytes]]]:
    """The root and the audit path of every leaf."""
    hs = [leaf_hash(d) for d in leaves]
    if not hs:
        return EMPTY_ROOT, []
    return _root_of_hashes(hs), [_path(i, hs) for i in range(len(hs))]


def verify_inclusion(leaf_hash_: bytes, index: int, size: int, proof: list[bytes], root_: bytes) -> bool:
    """RFC 9162 2.1.3.2 with SPEC 8's extra rules (32-byte hashes, exact path length)."""
    if index >= size or len(root_) != 32 or len(leaf_hash_) != 32:
        return False
    if any(len(p) != 32 for p in proof):
        return False
    fn, sn = index, size - 1
    r = leaf_hash_
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
    return sn == 0 and r == root_
