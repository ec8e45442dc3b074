"""Conformance runner (SPEC 17): `python -m impl_b.conformance PATH...`.

Runs our own vectors (`<area>/<handler>/{valid,invalid}/<case>/`) and the external files in their
published formats (Noise, Wycheproof, RFC 8032, speccheck, RFC 6962 hashes, transparency-dev
inclusion proofs). Prints `FAIL <path>: <why>` per failing case and `N passed, M failed`.
"""

import json
import os
import sys

from . import codec, crypto, merkle
from .checks import DOMAIN, SIG_FIELD, Checker
from .codec import DecodeError, decode, encode
from .conformance_admin import AdminCaseFailure, h_admin_request
from .conformance_ext import EXTERNAL_FILES, run_external_file
from .conformance_link import LINK_HANDLERS, LinkCaseFailure
from .manifest import ManifestError, validate
from .rsm import InvalidBatch, State, execute
from .schema import ENUMS, MESSAGES

ENUM_NAMES = {"OpKind": ["OP_KIND_UNSPECIFIED", "OP_KIND_GET", "OP_KIND_PUT"],
              "ClientErrorCode": ["CLIENT_ERROR_UNSPECIFIED", "CLIENT_ERROR_MALFORMED", "CLIENT_ERROR_BAD_SIGNATURE",
                                  "CLIENT_ERROR_UNAUTHORISED", "CLIENT_ERROR_WRONG_CLUSTER", "CLIENT_ERROR_TOO_LARGE",
                                  "CLIENT_ERROR_STALE", "CLIENT_ERROR_OVERLOADED", "CLIENT_ERROR_TIMEOUT"]}
DOMAIN_TYPE = {v: k for k, v in DOMAIN.items()}


class CaseFailure(Exception):
    """A vector case did not pass."""


def render(msg) -> dict:
    """The JSON rendering of formats/codec_*.md."""
    out = {}
    for _num, name, ftype, rep in MESSAGES[msg._name]:
        v = getattr(msg, name)
        if rep:
            if v:
                out[name] = [_render_value(ftype, x) for x in v]
        elif ftype in ("u32", "u64", "bool", "string", "bytes") or ftype in ENUMS:
            if v:
                out[name] = _render_value(ftype, v)
        elif v is not None:
            out[name] = render(v)
    return out


def _render_value(ftype, v):
    if ftype == "bytes":
        return v.hex()
    if ftype in ENUMS:
        return ENUM_NAMES[ftype][v]
    if ftype in MESSAGES:
        return render(v)
    return v


def _read(case: str, name: str) -> bytes:
    with open(os.path.join(case, name), "rb") as fh:
        return fh.read()


def _json(case: str, name: str):
    with open(os.path.join(case, name), encoding="utf-8") as fh:
        return json.load(fh)


def _expect(cond: bool, why: str) -> None:
    if not cond:
        raise CaseFailure(why)


# ---------------------------------------------------------------------------- handlers

def h_codec(case: str, handler: str, meta: dict) -> None:
    data = _read(case, "encoded.bin")
    try:
        msg = decode(handler, data)
    except DecodeError as e:
        _expect(meta["verdict"] == "reject", f"rejected a valid encoding: {e}")
        return
    _expect(meta["verdict"] == "accept", "accepted a non-canonical or malformed encoding")
    _expect(encode(msg) == data, "re-encoding differs")
    _expect(render(msg) == _json(case, "decoded.json"), "JSON rendering differs")


def h_signing(case: str, domain: str, meta: dict) -> None:
    inp = _json(case, "input.json")
    pub = bytes.fromhex(inp["public_key"])
    body = _read(case, "body.bin")
    sig = _read(case, "signature.bin")
    sb = crypto.signing_bytes(domain, inp["network_id"], body)
    if meta["verdict"] != "accept":
        _expect(not crypto.verify(pub, sb, sig), "accepted an invalid signature")
        return
    mtype = "DecisionHeader" if domain == "decision" else DOMAIN_TYPE[domain]
    msg = decode(mtype, _read(case, "message.bin"))
    if domain != "decision":
        _expect(getattr(msg, SIG_FIELD[mtype]) == sig, "signature field differs from signature.bin")
        msg = msg.copy(**{SIG_FIELD[mtype]: b""})
    _expect(encode(msg) == body, "body differs")
    _expect(sb == _read(case, "signing_bytes.bin"), "signing bytes differ")
    signer = crypto.Signer(bytes.fromhex(inp["signer_seed"]))
    _expect(signer.public == pub, "public key differs")
    _expect(signer.sign(sb) == sig, "signature differs")
    _expect(crypto.verify(pub, sb, sig), "rejected a valid signature")


def h_ed25519(case: str, _h: str, meta: dict) -> None:
    inp = _json(case, "input.json")
    ok = crypto.verify(bytes.fromhex(inp["public_key"]), bytes.fromhex(inp["message"]),
                       bytes.fromhex(inp["signature"]))
    _expect(ok == (meta["verdict"] == "accept"), f"verdict {'accept' if ok else 'reject'}")


def h_merkle_root(case: str, _h: str, meta: dict) -> None:
    leaves = [bytes.fromhex(x) for x in _json(case, "input.json")["leaves"]]
    _expect(merkle.root(leaves).hex() == _json(case, "expected.json")["root"], "root differs")


def h_merkle_proof(case: str, _h: str, meta: dict) -> None:
    inp = _json(case, "input.json")
    lh = bytes.fromhex(inp["leaf_hash"])
    ok = merkle.verify_inclusion(lh, inp["leaf_index"], inp["leaf_count"], [bytes.fromhex(p) for p in inp["proof"]],
                                 bytes.fromhex(inp["root"]))
    if "leaf" in inp:
        ok = ok and merkle.leaf_hash(bytes.fromhex(inp["leaf"])) == lh
    _expect(ok == (meta["verdict"] == "accept"), f"verdict {'accept' if ok else 'reject'}")


def _manifest(case: str):
    return validate(_json(case, "manifest.json"))


def h_qc(case: str, _h: str, meta: dict) -> None:
    m = _manifest(case)
    reason = Checker(m).qc_reason(decode("DecisionHeader", _read(case, "header.bin")),
                                  decode("QuorumCert", _read(case, "qc.bin")))
    _check_reason(reason, meta)


def _check_reason(reason, meta) -> None:
    if meta["verdict"] == "accept":
        _expect(reason is None, f"rejected ({reason})")
    else:
        _expect(reason == meta["reason"], f"reason {reason}, expected {meta['reason']}")


def h_compact(case: str, _h: str, meta: dict) -> None:
    m = _manifest(case)
    ctx = _json(case, "context.json")
    dest = ctx["destination"]
    kind = "client" if dest.startswith("client:") else m.clusters[dest].role if dest in m.clusters else "client"
    try:
        cd = decode("CompactDecision", _read(case, "compact.bin"))
        reason = Checker(m).compact_reason(cd, ctx["source"], dest, kind, ctx["next_seq"])
    except DecodeError as e:
        reason = e.reason
    _check_reason(reason, meta)


def h_shard_map(case: str, _h: str, meta: dict) -> None:
    inp = _json(case, "input.json")
    import hashlib
    for key_hex, want in zip(inp["keys"], _json(case, "expected.json")["results"], strict=True):
        d = hashlib.sha256(bytes.fromhex(key_hex)).digest()
        u = int.from_bytes(d[:8], "big")
        idx = u % len(inp["shards"])
        _expect((u, idx, inp["shards"][idx]) == (want["u64"], want["index"], want["shard"]), f"key {key_hex}")


def h_manifest(case: str, _h: str, meta: dict) -> None:
    exp = meta["expected"]
    try:
        validate(_json(case, "manifest.json"))
        got = {"valid": True, "stage": None, "rule": None}
    except ManifestError as e:
        got = {"valid": False, "stage": e.stage, "rule": e.rule}
    _expect(got == exp, f"got {got}, expected {exp}")


def h_execution(case: str, handler: str, meta: dict) -> None:
    m = _manifest(case)
    cid = meta["cluster"]
    st = State(cid, m.clusters[cid].role)
    checker = Checker(m)
    parent = b"\x00" * 32
    for step in range(1, meta["steps"] + 1):
        batch = decode("Batch", _read(case, f"batch_{step:03d}.bin"))
        try:
            ex = execute(st, m, batch, step, parent, checker)
        except InvalidBatch as e:
            _expect(meta.get("invalid_step") == step, f"step {step} rejected: {e}")
            return
        _expect(meta.get("invalid_step") != step, f"step {step} accepted but it is invalid")
        dec = codec.Decision(header=ex.header, batch=batch, outputs=ex.outputs)
        _expect(encode(dec) == _read(case, f"decision_{step:03d}.bin"), f"decision {step} differs")
        ex.apply()
        parent = crypto.sha256(encode(ex.header))
    if os.path.exists(os.path.join(case, "final_state.json")):
        _compare_state(st, _json(case, "final_state.json"), parent, meta["steps"])


def _compare_state(st: State, want: dict, head: bytes, height: int) -> None:
    _expect(want["height"] == height and want["head_hash"] == head.hex(), "final height/head differ")
    _expect({k: v for k, v in st.next_in.items() if v != 1} == want["next_in"], "next_in differs")
    _expect({k: v for k, v in st.next_out.items() if v != 1} == want["next_out"], "next_out differs")
    if "kv" in want:
        _expect({k.hex(): v.hex() for k, v in st.kv.items()} == want["kv"], "kv differs")
    if "pending" in want:
        _expect(sorted([k.hex(), r] for k, r in st.pending) == want["pending"], "pending differs")
    if "dedup" in want:
        got = {k.hex(): {"max_id": d.max_id, "ids": sorted(d.ids)} for k, d in st.dedup.items()}
        _expect(got == want["dedup"], "dedup differs")


HANDLERS = {
    ("crypto", "ed25519_verify"): h_ed25519, ("merkle", "root"): h_merkle_root, ("merkle", "proof"): h_merkle_proof,
    ("qc", "verify"): h_qc, ("compact", "verify"): h_compact, ("shard", "map"): h_shard_map,
    ("manifest", "validate"): h_manifest, ("execution", "coordinator"): h_execution,
    ("execution", "shard"): h_execution,
}


def run_case(case: str) -> None:
    parts = os.path.normpath(os.path.abspath(case)).split(os.sep)
    if len(parts) < 4 or parts[-2] not in ("valid", "invalid"):
        raise CaseFailure("not a <area>/<handler>/{valid,invalid}/<case> folder")
    area, handler = parts[-4], parts[-3]
    meta = _json(case, "meta.json")
    # The folder is authoritative for the expected verdict (meta wording differs per handler).
    meta["verdict"] = "accept" if parts[-2] == "valid" else "reject"
    if area == "codec":
        h_codec(case, handler, meta)
    elif area == "signing":
        h_signing(case, handler, meta)
    elif (area, handler) in LINK_HANDLERS:
        try:
            LINK_HANDLERS[(area, handler)](case, meta)
        except LinkCaseFailure as e:
            raise CaseFailure(str(e)) from None
    elif (area, handler) == ("admin", "request"):
        try:
            h_admin_request(case, meta)
        except AdminCaseFailure as e:
            raise CaseFailure(str(e)) from None
    elif (area, handler) in HANDLERS:
        HANDLERS[(area, handler)](case, handler, meta)
    else:
        raise CaseFailure(f"no runner for handler {area}/{handler}")


# ---------------------------------------------------------------------------- driver

def collect(path: str) -> list[tuple[str, str]]:
    """(kind, path) items under `path`: ('case', folder) or ('external', file)."""
    items = []
    if os.path.isfile(path):
        if os.path.basename(path) in EXTERNAL_FILES or "/transparency-dev/inclusion/" in path.replace(os.sep, "/"):
            items.append(("external", path))
        return items
    if os.path.exists(os.path.join(path, "meta.json")):
        return [("case", path)]
    for root, dirs, files in os.walk(path):
        dirs.sort()
        if "meta.json" in files:
            items.append(("case", root))
            dirs[:] = []
            continue
        for f in sorted(files):
            p = os.path.join(root, f)
            if f in EXTERNAL_FILES or ("/transparency-dev/inclusion/" in p.replace(os.sep, "/") and f.endswith(".json")):
                items.append(("external", p))
    return items


def _serve(_args) -> int:
    """SPEC 17.1 differential adapter: JSON requests on stdin, answers on stdout."""
    from .difftool import serve

    return serve()


def _usage(_args) -> int:
    print("usage: python -m impl_b.conformance PATH...", file=sys.stderr)
    return 2


# Whole argument lists with a mode of their own; any other list is paths of vectors to run.
_MODES = {("--serve",): _serve, (): _usage}


def main(argv=None) -> int:
    args = tuple(sys.argv[1:] if argv is None else argv)
    return _MODES.get(args, _run_paths)(list(args))


def _run_paths(paths: list) -> int:
    passed = failed = 0
    for p in paths:
        for kind, item in collect(p):
            if kind == "case":
                try:
                    run_case(item)
                    passed += 1
                except CaseFailure as e:
                    failed += 1
                    print(f"FAIL {item}: {e}")
                except Exception as e:  # a crash on a vector is a failure of that vector
                    failed += 1
                    print(f"FAIL {item}: {type(e).__name__}: {e}")
            else:
                p_, f_, fails = run_external_file(item)
                passed += p_
                failed += f_
                for why in fails:
                    print(f"FAIL {why}")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
