"""Conformance runner (SPEC 17): python -m impl_a.conformance PATH... (or --serve, SPEC 17.1)

Runs the external vectors in their published formats (Noise JSON, Wycheproof, RFC 8032, speccheck,
RFC 6962 tree hashes, transparency-dev inclusion proofs) and our own case folders
(<area>/<handler>/{valid,invalid}/<case>/ with meta.json) through impl_a.vector_cases.
"""

from __future__ import annotations

import base64
import json
import pathlib
import sys
from collections.abc import Callable, Iterator

from impl_a import crypto, merkle
from impl_a.noise import HandshakeState, NoiseError

Result = tuple[str, str | None]  # (case name, failure reason or None)

# SPEC 7: only speccheck case 3 is accepted.
SPECCHECK_ACCEPT = {3}


def _hx(s: str | None) -> bytes:
    return bytes.fromhex(s) if s else b""


def run_noise(path: pathlib.Path) -> Iterator[Result]:
    for idx, v in enumerate(json.loads(path.read_text())["vectors"]):
        name = f"{path}#{idx}:{v['protocol_name']}"
        try:
            yield name, _noise_vector(v)
        except (NoiseError, ValueError, KeyError) as exc:
            yield name, f"exception {exc}"


def _noise_vector(v: dict) -> str | None:
    def k(field: str) -> bytes | None:
        return bytes.fromhex(v[field]) if v.get(field) else None

    i = HandshakeState(v["protocol_name"], True, _hx(v.get("init_prologue")), k("init_static"),
                       k("init_remote_static"), k("init_ephemeral"))
    r = HandshakeState(v["protocol_name"], False, _hx(v.get("resp_prologue")), k("resp_static"),
                       k("resp_remote_static"), k("resp_ephemeral"))
    ciphers = None
    for n, m in enumerate(v["messages"]):
        payload, want = _hx(m["payload"]), _hx(m["ciphertext"])
        if ciphers is None:
            a, b = (i, r) if n % 2 == 0 else (r, i)
            ct = a.write_message(payload)
            pt = b.read_message(ct)
            if i.complete:
                (i_send, i_recv), (r_send, r_recv) = i.split(), r.split()
                ciphers = ((i_send, r_recv), (r_send, i_recv))
        else:
            send, recv = ciphers[n % 2]
            ct = send.encrypt_with_ad(b"", payload)
            pt = recv.decrypt_with_ad(b"", ct)
        if ct != want:
            return f"message {n}: ciphertext mismatch"
        if pt != payload:
            return f"message {n}: payload mismatch"
    if v.get("handshake_hash") and i.handshake_hash.hex() != v["handshake_hash"]:
        return "handshake hash mismatch"
    return None


def run_wycheproof(path: pathlib.Path) -> Iterator[Result]:
    doc = json.loads(path.read_text())
    algo = doc.get("algorithm", "")
    for g in doc["testGroups"]:
        for t in g["tests"]:
            name = f"{path}#tc{t['tcId']}"
            if algo == "EDDSA":
                got = crypto.ed25519_verify(_hx(g["publicKey"]["pk"]), _hx(t["msg"]), _hx(t["sig"]))
                yield name, None if got == (t["result"] == "valid") else f"verify returned {got}"
            elif algo == "XDH":
                yield name, _x25519_case(t)
            elif algo == "CHACHA20-POLY1305":
                yield name, _aead_case(t)
            else:
                yield name, f"unsupported algorithm {algo}"


def _x25519_case(t: dict) -> str | None:
    try:
        shared = crypto.x25519(_hx(t["private"]), _hx(t["public"]))
    except Exception:  # libsodium refuses an all-zero result
        shared = None
    if t["result"] == "valid":
        return None if shared == _hx(t["shared"]) else "shared secret mismatch"
    if t["result"] == "acceptable":
        return None if shared in (None, _hx(t["shared"])) else "shared secret mismatch"
    return None if shared is None or shared != _hx(t["shared"]) else "invalid case accepted"


def _aead_case(t: dict) -> str | None:
    key, iv, aad, msg = _hx(t["key"]), _hx(t["iv"]), _hx(t["aad"]), _hx(t["msg"])
    ct_tag = _hx(t["ct"]) + _hx(t["tag"])
    valid = t["result"] == "valid"
    try:
        enc = crypto.aead_encrypt(key, iv, aad, msg)
    except Exception:
        enc = None
    try:
        dec = crypto.aead_decrypt(key, iv, aad, ct_tag)
    except Exception:
        dec = None
    if valid:
        return None if enc == ct_tag and dec == msg else "valid case failed"
    return None if dec is None else "invalid ciphertext accepted"


def run_rfc8032(path: pathlib.Path) -> Iterator[Result]:
    for v in json.loads(path.read_text())["vectors"]:
        name = f"{path}#{v['name']}"
        key = crypto.SigningKey(_hx(v["secret_key_seed"]))
        msg, sig = _hx(v["message"]), _hx(v["signature"])
        if key.public != _hx(v["public_key"]):
            yield name, "public key mismatch"
        elif key.sign(msg) != sig:
            yield name, "signature mismatch"
        elif not crypto.ed25519_verify(key.public, msg, sig):
            yield name, "verify failed"
        else:
            yield name, None


def run_speccheck(path: pathlib.Path) -> Iterator[Result]:
    for idx, c in enumerate(json.loads(path.read_text())):
        got = crypto.ed25519_verify(_hx(c["pub_key"]), _hx(c["message"]), _hx(c["signature"]))
        want = idx in SPECCHECK_ACCEPT
        yield f"{path}#{idx}", None if got == want else f"verify returned {got}, SPEC 7 says {want}"


def run_tree_hashes(path: pathlib.Path) -> Iterator[Result]:
    doc = json.loads(path.read_text())
    for i, hv in enumerate(doc["hasher_vectors"]):
        if hv["op"] == "empty_root":
            got = merkle.root([])
        elif hv["op"] == "hash_leaf":
            got = merkle.leaf_hash(_hx(hv["input_hex"]))
        else:
            got = merkle.node_hash(_hx(hv["left_hex"]), _hx(hv["right_hex"]))
        yield f"{path}#hasher{i}", None if got.hex() == hv["want"] else "hash mismatch"
    leaves = [_hx(x) for x in doc["leaf_inputs_hex"]]
    for n, want in enumerate(doc["root_hashes_by_tree_size"]["roots"]):
        yield f"{path}#root{n}", None if merkle.root(leaves[:n]).hex() == want else "root mismatch"
    for level, hashes in enumerate(doc["node_hashes_by_level"]["levels"]):
        for i, want in enumerate(hashes):
            got = merkle.root(leaves[i << level:(i + 1) << level])
            yield f"{path}#node{level}.{i}", None if got.hex() == want else "subtree mismatch"
    for n in range(1, len(leaves) + 1):  # our proofs must verify against our roots
        r = merkle.root(leaves[:n])
        for i in range(n):
            ok = merkle.verify_inclusion(i, n, merkle.leaf_hash(leaves[i]),
                                         merkle.inclusion_proof(leaves[:n], i), r)
            yield f"{path}#proof{n}.{i}", None if ok else "own proof does not verify"


def run_inclusion(path: pathlib.Path) -> Iterator[Result]:
    d = json.loads(path.read_text())

    def b64(x: str | None) -> bytes:
        return base64.b64decode(x) if x else b""

    proof = [b64(p) for p in (d.get("proof") or [])]
    ok = merkle.verify_inclusion(d["leafIdx"], d["treeSize"], b64(d.get("leafHash")), proof, b64(d.get("root")))
    yield str(path), None if ok != d["wantErr"] else f"verify returned {ok}, wantErr={d['wantErr']}"


def _handler_for(path: pathlib.Path) -> Callable[[pathlib.Path], Iterator[Result]] | None:
    name, parts = path.name, path.parts
    if path.suffix != ".json":
        return None
    if name.startswith("noise_") or (len(parts) > 1 and parts[-2] == "noise"):
        return run_noise
    if "schemas" in parts:
        return None
    if name.endswith("_test.json") and "wycheproof" in parts:
        return run_wycheproof
    if name == "rfc8032_ed25519.json":
        return run_rfc8032
    if name == "speccheck_cases.json":
        return run_speccheck
    if name == "rfc6962_tree_hashes.json":
        return run_tree_hashes
    if "inclusion" in parts and "transparency-dev" in parts:
        return run_inclusion
    return None


def collect(paths: list[str]) -> Iterator[Result]:
    from impl_a import vector_cases

    for p in paths:
        root = pathlib.Path(p)
        if not root.exists():
            yield str(root), "path does not exist"
            continue
        if root.is_dir() and (root / "meta.json").exists():
            yield from vector_cases.run_case(root)
            continue
        files = [root] if root.is_file() else sorted(root.rglob("*"))
        for f in files:
            if f.is_dir() and (f / "meta.json").exists() and "external" not in f.parts:
                yield from vector_cases.run_case(f)
            elif f.is_file():
                h = _handler_for(f)
                if h is not None:
                    try:
                        yield from h(f)
                    except Exception as exc:  # a broken file is one failing case, not a crash
                        yield str(f), f"exception {type(exc).__name__}: {exc}"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args == ["--serve"]:  # SPEC 17.1 differential adapter
        from impl_a import jsonl_adapter

        return jsonl_adapter.serve()
    if not args:
        print("usage: python -m impl_a.conformance PATH...", file=sys.stderr)
        return 2
    results = list(collect(args))
    failures = [(name, why) for name, why in results if why is not None]
    for name, why in failures:
        print(f"FAIL {name}: {why}")
    print(f"{len(results) - len(failures)} passed, {len(failures)} failed")
    return 0 if results and not failures else 1


if __name__ == "__main__":
    sys.exit(main())
