"""Runner for our own vector case folders (wire_spec/vectors/<area>/<handler>/{valid,invalid}/<case>/).

One handler per format document in wire_spec/vectors/formats/; each returns None (pass) or why it failed.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Callable, Iterator

from google.protobuf.descriptor import FieldDescriptor

from impl_a import crypto, merkle
from impl_a import heraclius_pb2 as pb
from impl_a.codec import decode, encode
from impl_a.errors import LocalError, RemoteViolation
from impl_a.manifest import Manifest, semantic_problem
from impl_a.rsm import ZERO32, Execution, State, build_header, check_batch_limits
from impl_a.vector_admin import admin_request_case
from impl_a.vector_noise import handshake_case, rekey_case, stream_case, transport_case
from impl_a.verify import body_without, check_compact, check_qc, header_hash

Handler = Callable[[pathlib.Path, dict, bool], str | None]
SIGNED = {"client-request": ("ClientRequest", "signature"), "client-bundle": ("RequestBundle", "signature"),
          "decision": ("DecisionHeader", None),
          "proposal": ("Proposal", "signature"), "prepare": ("Prepare", "signature"),
          "view-change": ("ViewChange", "signature"), "view-data": ("ViewData", "signature"),
          "new-view": ("NewView", "signature")}


def _json(case: pathlib.Path, name: str):
    return json.loads((case / name).read_text())


def _bin(case: pathlib.Path, name: str) -> bytes:
    return (case / name).read_bytes()


def render(msg) -> dict:
    """The JSON rendering of formats/codec_*.md."""
    out = {}
    for field, value in msg.ListFields():
        items = list(value) if field.is_repeated else [value]
        rendered = [_render_value(field, v) for v in items]
        out[field.name] = rendered if field.is_repeated else rendered[0]
    return out


def _render_value(field, v):
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return render(v)
    if field.type == FieldDescriptor.TYPE_BYTES:
        return v.hex()
    if field.type == FieldDescriptor.TYPE_ENUM:
        return field.enum_type.values_by_number[v].name
    return v


def codec_case(msg_name: str) -> Handler:
    cls = getattr(pb, msg_name)

    def run(case: pathlib.Path, meta: dict, valid: bool) -> str | None:
        data = _bin(case, "encoded.bin")
        try:
            msg = decode(cls, data)
        except RemoteViolation as exc:
            if valid:
                return f"rejected ({exc})"
            want = meta.get("reason")
            return None if want in (None, exc.reason) else f"reason {exc.reason}, expected {want}"
        if not valid:
            return "non-canonical input accepted"
        if render(msg) != _json(case, "decoded.json"):
            return "JSON rendering differs"
        return None if encode(msg) == data else "re-encoding differs"
    return run


def signing_case(domain: str) -> Handler:
    msg_name, sig_field = SIGNED[domain]

    def run(case: pathlib.Path, meta: dict, valid: bool) -> str | None:
        inp = _json(case, "input.json")
        body, sig = _bin(case, "body.bin"), _bin(case, "signature.bin")
        pub = bytes.fromhex(inp["public_key"])
        sb = crypto.signing_bytes(domain, inp["network_id"], body)
        ok = crypto.ed25519_verify(pub, sb, sig)
        if not valid:
            return None if not ok else "signature accepted"
        msg = decode(getattr(pb, msg_name), _bin(case, "message.bin"))
        got_body = body_without(msg, sig_field) if sig_field else encode(msg)
        if got_body != body:
            return "body differs"
        if sb != _bin(case, "signing_bytes.bin"):
            return "signing bytes differ"
        key = crypto.SigningKey(bytes.fromhex(inp["signer_seed"]))
        if key.public != pub or key.sign(sb) != sig:
            return "signature differs"
        if sig_field and getattr(msg, sig_field) != sig:
            return "signature field differs"
        return None if ok else "signature rejected"
    return run


def ed25519_case(case: pathlib.Path, meta: dict, valid: bool) -> str | None:
    inp = _json(case, "input.json")
    ok = crypto.ed25519_verify(*(bytes.fromhex(inp[k]) for k in ("public_key", "message", "signature")))
    return None if ok == (meta["verdict"] == "accept") else f"verify returned {ok}"


def merkle_root_case(case: pathlib.Path, meta: dict, valid: bool) -> str | None:
    leaves = [bytes.fromhex(x) for x in _json(case, "input.json")["leaves"]]
    return None if merkle.root(leaves).hex() == _json(case, "expected.json")["root"] else "root differs"


def merkle_proof_case(case: pathlib.Path, meta: dict, valid: bool) -> str | None:
    inp = _json(case, "input.json")
    lh = bytes.fromhex(inp["leaf_hash"])
    ok = merkle.verify_inclusion(inp["leaf_index"], inp["leaf_count"], lh,
                                 [bytes.fromhex(p) for p in inp["proof"]], bytes.fromhex(inp["root"]))
    if ok and "leaf" in inp:
        ok = merkle.leaf_hash(bytes.fromhex(inp["leaf"])) == lh
    return None if ok == (meta["verdict"] == "accept") else f"verify returned {ok}"


def _reason_check(meta: dict, exc: RemoteViolation | None) -> str | None:
    if meta["verdict"] == "accept":
        return None if exc is None else f"rejected: {exc}"
    if exc is None:
        return "accepted"
    want = meta.get("reason")
    return None if want in (None, exc.reason) else f"reason {exc.reason}, expected {want}"


def qc_case(case: pathlib.Path, meta: dict, valid: bool) -> str | None:
    m = Manifest(_json(case, "manifest.json"))
    try:
        check_qc(m, decode(pb.DecisionHeader, _bin(case, "header.bin")), decode(pb.QuorumCert, _bin(case, "qc.bin")))
    except RemoteViolation as exc:
        return _reason_check(meta, exc)
    return _reason_check(meta, None)


def compact_case(case: pathlib.Path, meta: dict, valid: bool) -> str | None:
    m = Manifest(_json(case, "manifest.json"))
    ctx = _json(case, "context.json")
    try:
        check_compact(m, decode(pb.CompactDecision, _bin(case, "compact.bin")), ctx["source"], ctx["destination"],
                      ctx["next_seq"])
    except RemoteViolation as exc:
        return _reason_check(meta, exc)
    return _reason_check(meta, None)


def shard_map_case(case: pathlib.Path, meta: dict, valid: bool) -> str | None:
    inp = _json(case, "input.json")
    doc = {"network_id": "x", "clusters": [], "shard_map": {"shards": inp["shards"]}, "clients": []}
    m = Manifest(doc)
    for key_hex, want in zip(inp["keys"], _json(case, "expected.json")["results"], strict=True):
        got = m.shard_of(bytes.fromhex(key_hex))
        if got != want["shard"]:
            return f"key {key_hex}: {got}, expected {want['shard']}"
    return None


def manifest_case(case: pathlib.Path, meta: dict, valid: bool) -> str | None:
    import jsonschema

    from impl_a.manifest import SCHEMA

    doc = _json(case, "manifest.json")
    exp = meta["expected"]
    try:
        jsonschema.validate(doc, json.loads(SCHEMA.read_text()), cls=jsonschema.Draft202012Validator)
    except jsonschema.ValidationError:
        return None if exp["stage"] == "schema" else "rejected by the schema"
    problem = semantic_problem(doc)
    if problem is None:
        return None if exp["valid"] else "accepted"
    if exp["valid"] or exp["stage"] != "semantic":
        return f"rejected by rule {problem[0]}: {problem[1]}"
    return None if problem[0] == exp["rule"] else f"broke rule {problem[0]} ({problem[1]}), expected {exp['rule']}"


def _final_state(state: State, height: int, head: bytes, want: dict) -> str | None:
    got = {"height": height, "head_hash": head.hex(),
           "next_in": {k: v for k, v in state.next_in.items() if v != 1},
           "next_out": {k: v for k, v in state.next_out.items() if v != 1}}
    for k in got:
        if k in want and want[k] != got[k]:
            return f"final {k}: {got[k]}, expected {want[k]}"
    if "pending" in want and sorted([k.hex(), i] for k, i in state.pending) != want["pending"]:
        return "final pending differs"
    if "dedup" in want:
        dd = {k.hex(): {"max_id": mx, "ids": sorted(state.live_ids(k))} for k, (mx, _) in state.dedup.items()}
        if dd != want["dedup"]:
            return "final dedup differs"
    if "kv" in want:
        kv = {k.hex(): v.hex() for k, v in state.kv.items()}
        if kv != want["kv"]:
            return "final kv differs"
    return None


def execution_case(case: pathlib.Path, meta: dict, valid: bool) -> str | None:
    m = Manifest(_json(case, "manifest.json"))
    state = State(m, meta["cluster"])
    head = ZERO32
    for step in range(1, meta["steps"] + 1):
        batch = decode(pb.Batch, _bin(case, f"batch_{step:03d}.bin"))
        ex = Execution(state, step)
        last_invalid = not valid and step == meta.get("invalid_step")
        try:
            check_batch_limits(m, batch)
            outputs = ex.run(batch, check=True)
        except RemoteViolation as exc:
            return None if last_invalid else f"step {step} rejected: {exc}"
        if last_invalid:
            return f"invalid step {step} accepted"
        header = build_header(meta["cluster"], step, head, batch, outputs)
        d = pb.Decision(header=header, batch=batch, outputs=outputs)
        if encode(d) != _bin(case, f"decision_{step:03d}.bin"):
            return f"decision {step} differs"
        ex.apply()
        head = header_hash(header)
    if valid and (case / "final_state.json").exists():
        return _final_state(state, meta["steps"], head, _json(case, "final_state.json"))
    return None


def handler_for(key: str) -> Handler | None:
    area, _, name = key.partition("/")
    if area == "codec" and hasattr(pb, name):
        return codec_case(name)
    if area == "signing" and name in SIGNED:
        return signing_case(name)
    return {"crypto/ed25519_verify": ed25519_case, "merkle/root": merkle_root_case,
            "merkle/proof": merkle_proof_case, "qc/verify": qc_case, "compact/verify": compact_case,
            "shard/map": shard_map_case, "manifest/validate": manifest_case,
            "execution/coordinator": execution_case, "execution/shard": execution_case,
            "noise/handshake": handshake_case, "noise/rekey": rekey_case, "transport/stream": stream_case,
            "noise/transport": transport_case, "admin/request": admin_request_case}.get(key)


def run_case(case: pathlib.Path) -> Iterator[tuple[str, str | None]]:
    try:
        meta = json.loads((case / "meta.json").read_text())
    except (OSError, ValueError) as exc:
        yield str(case), f"bad meta.json: {exc}"
        return
    parts = case.parts
    try:
        i = max(k for k, p in enumerate(parts) if p in ("valid", "invalid"))
    except ValueError:
        yield str(case), "case folder is not under valid/ or invalid/"
        return
    key = f"{parts[i - 2]}/{parts[i - 1]}"
    handler = handler_for(key)
    if handler is None:
        yield str(case), f"no handler for {key}"
        return
    try:
        yield str(case), handler(case, meta, parts[i] == "valid")
    except (RemoteViolation, LocalError, KeyError, ValueError, OSError) as exc:
        yield str(case), f"exception {type(exc).__name__}: {exc}"
