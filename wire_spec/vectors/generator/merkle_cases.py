"""merkle/root and merkle/proof vectors (SPEC 8)."""

from __future__ import annotations

import hashlib

from .merkle import inclusion_proof, leaf_hash, mth, verify_inclusion
from .writer import CaseWriter


def _leaves(n: int) -> list[bytes]:
    return [hashlib.sha256(b"leaf %d" % i).digest()[: 1 + i % 40] for i in range(n)]


def generate(w: CaseWriter) -> None:
    for n in [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 16, 17]:
        leaves = _leaves(n)
        w.case("merkle", "root", True, f"size_{n:02d}", {"description": f"MTH of {n} leaves", "verdict": "equal"},
               {"input.json": {"leaves": [x.hex() for x in leaves]}, "expected.json": {"root": mth(leaves).hex()}})
    w.case("merkle", "root", True, "empty_leaf", {"description": "one empty leaf: SHA-256(0x00)", "verdict": "equal"},
           {"input.json": {"leaves": [""]}, "expected.json": {"root": mth([b""]).hex()}})

    def proof_case(valid: bool, name: str, description: str, leaf: bytes | None, lh: bytes, index: int,
                   count: int, proof: list[bytes], root: bytes) -> None:
        if verify_inclusion(index, count, lh, proof, root) != valid:
            raise AssertionError(f"merkle proof case {name}")
        inp = {"leaf_hash": lh.hex(), "leaf_index": index, "leaf_count": count, "proof": [p.hex() for p in proof],
               "root": root.hex()}
        if leaf is not None:
            inp["leaf"] = leaf.hex()
        w.case("merkle", "proof", valid, name,
               {"description": description, "verdict": "accept" if valid else "reject"}, {"input.json": inp})

    for n in [1, 2, 3, 4, 5, 7, 8, 9]:
        leaves = _leaves(n)
        root = mth(leaves)
        for i in range(n):
            proof_case(True, f"size_{n}_index_{i}", f"leaf {i} of {n}", leaves[i], leaf_hash(leaves[i]), i, n,
                       inclusion_proof(i, leaves), root)
    leaves = _leaves(7)
    root = mth(leaves)
    i = 4
    lh, pf = leaf_hash(leaves[i]), inclusion_proof(i, leaves)
    flip = bytes([pf[0][0] ^ 1]) + pf[0][1:]
    bad = [
        ("wrong_index", "proof of leaf 4 of 7 given index 5", lh, 5, 7, pf, root),
        ("wrong_index_sibling", "proof of leaf 4 of 7 given index 6", lh, 6, 7, pf, root),
        ("wrong_count", "proof of leaf 4 of 7 given count 6", lh, 4, 6, pf, root),
        ("wrong_count_larger", "proof of leaf 4 of 7 given count 9 (path too short for 9)", lh, 4, 9, pf, root),
        ("index_equals_count", "leaf_index = leaf_count", lh, 7, 7, pf, root),
        ("count_zero", "leaf_count = 0", lh, 0, 0, [], root),
        ("short_path", "last path entry removed", lh, 4, 7, pf[:-1], root),
        ("long_path", "an extra path entry appended", lh, 4, 7, pf + [pf[0]], root),
        ("long_path_single", "one-leaf tree with a non-empty path", leaf_hash(leaves[0]), 0, 1, [pf[0]],
         mth(leaves[:1])),
        ("path_entry_31_bytes", "a path entry of 31 bytes", lh, 4, 7, [pf[0][:31]] + pf[1:], root),
        ("path_entry_33_bytes", "a path entry of 33 bytes", lh, 4, 7, [pf[0] + b"\x00"] + pf[1:], root),
        ("root_31_bytes", "root of 31 bytes", lh, 4, 7, pf, root[:31]),
        ("leaf_hash_33_bytes", "leaf hash of 33 bytes", lh + b"\x00", 4, 7, pf, root),
        ("flipped_path_bit", "bit 0 of the first path entry flipped", lh, 4, 7, [flip] + pf[1:], root),
        ("flipped_root_bit", "bit 0 of the root flipped", lh, 4, 7, pf, bytes([root[0] ^ 1]) + root[1:]),
        ("flipped_leaf_bit", "bit 0 of the leaf hash flipped", bytes([lh[0] ^ 1]) + lh[1:], 4, 7, pf, root),
        ("leaf_data_as_hash", "leaf hash computed without the 0x00 prefix", hashlib.sha256(leaves[i]).digest(),
         4, 7, pf, root),
        ("swapped_path", "path entries in reverse order", lh, 4, 7, pf[::-1], root),
    ]
    for name, description, h, idx, cnt, proof, rt in bad:
        proof_case(False, name, description, None, h, idx, cnt, proof, rt)
