"""RFC 6962 / RFC 9162 Merkle tree hashing, audit paths and their verification (SPEC 8)."""

from .crypto import sha256

EMPTY_ROOT = sha256(b"")
_LEAF, _NODE = b"\x00", b"\x01"  # RFC 6962 domain separation prefixes


def leaf_hash(data: bytes) -> bytes:
    return sha256(_LEAF + data)


def node_hash(left: bytes, right: bytes) -> bytes:
    return sha256(b"".join((_NODE, left, right)))


def _split(n: int) -> int:
    """Largest power of two strictly below n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def _root_of_hashes(hs: list[bytes]) -> bytes:
    level = list(hs)
    # Bottom-up pairing gives the RFC 6962 tree: an odd last node is promoted unchanged.
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


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


def _climb(index: int, size: int, start: bytes, path: list[bytes]) -> bytes | None:
    """Root of a `size`-leaf tree given leaf `index`'s hash and its path (bottom-up), by the
    RFC 6962 2.1.1 subtree split; None when the path length does not fit the tree."""
    if size == 1:
        return start if not path else None
    if not path:
        return None
    half = _split(size)
    *lower, top = path
    if index < half:
        sub = _climb(index, half, start, lower)
        return None if sub is None else node_hash(sub, top)
    sub = _climb(index - half, size - half, start, lower)
    return None if sub is None else node_hash(top, sub)


def verify_inclusion(leaf_hash_: bytes, index: int, size: int, proof: list[bytes], root_: bytes) -> bool:
    """Inclusion check of SPEC 8: 32-byte hashes only, index < size, exact path length."""
    hashes_ok = len(root_) == 32 and len(leaf_hash_) == 32 and all(len(p) == 32 for p in proof)
    if not hashes_ok or not 0 <= index < size or len(proof) > 64:
        return False
    return _climb(index, size, leaf_hash_, list(proof)) == root_
