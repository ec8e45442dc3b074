"""Runners for the external vector files of wire_spec/vectors/external/ in their upstream formats.

Each vector inside a file counts as one case. `run_external_file(path)` -> (passed, failed, [why]).
"""

import base64
import json
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from . import crypto, merkle
from .noise import HandshakeState

# Only case 3 is accepted (SPEC 7).
SPECCHECK_ACCEPT = {3}


def _noise(path: str, doc: dict) -> list:
    out = []
    for i, v in enumerate(doc["vectors"]):
        def g(k, v=v):
            return bytes.fromhex(v[k]) if v.get(k) else None
        name = v["protocol_name"]
        try:
            ini = HandshakeState(name, True, g("init_prologue") or b"", g("init_static"), g("init_ephemeral"),
                                 g("init_remote_static"))
            res = HandshakeState(name, False, g("resp_prologue") or b"", g("resp_static"), g("resp_ephemeral"),
                                 g("resp_remote_static"))
            ok = True
            cs = None
            for k, msg in enumerate(v["messages"]):
                pt = bytes.fromhex(msg["payload"])
                if not ini.finished:
                    w, r = (ini, res) if k % 2 == 0 else (res, ini)
                    ct = w.write_message(pt)
                    got = r.read_message(ct)
                else:
                    if cs is None:
                        cs = (ini.split(), res.split())
                    if k % 2 == 0:
                        ct = cs[0][0].encrypt(b"", pt)
                        got = cs[1][0].decrypt(b"", ct)
                    else:
                        ct = cs[1][1].encrypt(b"", pt)
                        got = cs[0][1].decrypt(b"", ct)
                ok = ok and ct.hex() == msg["ciphertext"] and got == pt
            if v.get("handshake_hash"):
                ok = ok and ini.h.hex() == v["handshake_hash"] == res.h.hex()
            out.append((ok, f"{path}#{i} {name}"))
        except Exception as e:
            out.append((False, f"{path}#{i} {name}: {type(e).__name__}: {e}"))
    return out


def _wy_ed25519(path: str, doc: dict) -> list:
    out = []
    for g in doc["testGroups"]:
        pk = bytes.fromhex(g["publicKey"]["pk"])
        for t in g["tests"]:
            ok = crypto.verify(pk, bytes.fromhex(t["msg"]), bytes.fromhex(t["sig"]))
            out.append((ok == (t["result"] == "valid"), f"{path}#tcId{t['tcId']}"))
    return out


def _wy_x25519(path: str, doc: dict) -> list:
    out = []
    for g in doc["testGroups"]:
        for t in g["tests"]:
            try:
                shared = X25519PrivateKey.from_private_bytes(bytes.fromhex(t["private"])).exchange(
                    X25519PublicKey.from_public_bytes(bytes.fromhex(t["public"])))
            except ValueError:
                shared = None
            want = bytes.fromhex(t["shared"])
            if t["result"] == "valid":
                ok = shared == want
            elif t["result"] == "acceptable":
                ok = shared is None or shared == want  # all-zero outputs: refusing is acceptable
            else:
                ok = shared != want
            out.append((ok, f"{path}#tcId{t['tcId']}"))
    return out


def _wy_chacha(path: str, doc: dict) -> list:
    out = []
    for g in doc["testGroups"]:
        for t in g["tests"]:
            key, iv, aad = bytes.fromhex(t["key"]), bytes.fromhex(t["iv"]), bytes.fromhex(t["aad"])
            msg, ct, tag = bytes.fromhex(t["msg"]), bytes.fromhex(t["ct"]), bytes.fromhex(t["tag"])
            try:
                aead = ChaCha20Poly1305(key)
                enc = aead.encrypt(iv, msg, aad)
                dec = aead.decrypt(iv, ct + tag, aad)
                worked = enc == ct + tag and dec == msg
            except (InvalidTag, ValueError):
                worked = False
            out.append((worked == (t["result"] == "valid"), f"{path}#tcId{t['tcId']}"))
    return out


def _rfc8032(path: str, doc: dict) -> list:
    out = []
    for v in doc["vectors"]:
        s = crypto.Signer(bytes.fromhex(v["secret_key_seed"]))
        msg = bytes.fromhex(v["message"])
        sig = s.sign(msg)
        ok = (s.public.hex() == v["public_key"] and sig.hex() == v["signature"]
              and crypto.verify(s.public, msg, sig))
        out.append((ok, f"{path}#{v['name']}"))
    return out


def _speccheck(path: str, doc: list) -> list:
    out = []
    for i, c in enumerate(doc):
        ok = crypto.verify(bytes.fromhex(c["pub_key"]), bytes.fromhex(c["message"]), bytes.fromhex(c["signature"]))
        out.append((ok == (i in SPECCHECK_ACCEPT), f"{path}#case{i}"))
    return out


def _rfc6962(path: str, doc: dict) -> list:
    out = []
    for v in doc["hasher_vectors"]:
        if v["op"] == "empty_root":
            got = merkle.root([])
        elif v["op"] == "hash_leaf":
            got = merkle.leaf_hash(bytes.fromhex(v["input_hex"]))
        else:
            got = merkle.node_hash(bytes.fromhex(v["left_hex"]), bytes.fromhex(v["right_hex"]))
        out.append((got.hex() == v["want"], f"{path}#{v['desc']}"))
    leaves = [bytes.fromhex(x) for x in doc["leaf_inputs_hex"]]
    for n, want in enumerate(doc["root_hashes_by_tree_size"]["roots"]):
        out.append((merkle.root(leaves[:n]).hex() == want, f"{path}#root{n}"))
    for level, hashes in enumerate(doc["node_hashes_by_level"]["levels"]):
        for i, want in enumerate(hashes):
            got = merkle.root(leaves[i << level:(i + 1) << level])
            out.append((got.hex() == want, f"{path}#level{level}[{i}]"))
    return out


def _b64(s) -> bytes:
    return base64.b64decode(s) if s else b""


def _inclusion(path: str, v: dict) -> list:
    try:
        ok = merkle.verify_inclusion(_b64(v["leafHash"]), v["leafIdx"], v["treeSize"],
                                     [_b64(p) for p in (v.get("proof") or [])], _b64(v["root"]))
    except (ValueError, TypeError):
        ok = False
    return [(ok == (not v["wantErr"]), path)]


EXTERNAL_FILES = {
    "noise_xx_ik_kk_25519_chachapoly.json": _noise,
    "ed25519_test.json": _wy_ed25519,
    "x25519_test.json": _wy_x25519,
    "chacha20_poly1305_test.json": _wy_chacha,
    "rfc8032_ed25519.json": _rfc8032,
    "speccheck_cases.json": _speccheck,
    "rfc6962_tree_hashes.json": _rfc6962,
}


def run_external_file(path: str) -> tuple[int, int, list[str]]:
    with open(path, encoding="utf-8") as fh:
        doc = json.load(fh)
    fn = EXTERNAL_FILES.get(os.path.basename(path))
    results = fn(path, doc) if fn is not None else _inclusion(path, doc)
    fails = [why for ok, why in results if not ok]
    return len(results) - len(fails), len(fails), fails
