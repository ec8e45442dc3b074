"""SPEC 17.1 differential adapter: `python -m impl_a.conformance --serve`.

One JSON request per input line, exactly one JSON answer per output line, in order, flushed. Every
operation runs impl_a's own code (codec, crypto, merkle, verify, rsm, manifest); this module only
parses requests, maps outcomes to answers and never lets one line stop the loop.
It follows the adopted SPEC 17.1 text (errata impl-a A5-A12 and impl-b D1-D9).
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import sys
from collections import OrderedDict
from collections.abc import Callable

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from impl_a import crypto, merkle
from impl_a import heraclius_pb2 as pb
from impl_a.codec import MESSAGE_TYPES, decode, encode
from impl_a.errors import RemoteViolation
from impl_a.manifest import Manifest, semantic_problem
from impl_a.rsm import ZERO32, Execution, State, build_header, check_batch_limits
from impl_a.vector_cases import SIGNED, render
from impl_a.verify import body_without, check_compact, check_qc, header_hash

MAX_LINE = 64 * 1024 * 1024  # longer lines get one error (id null) and are skipped (SPEC 17.1)
_HEX = re.compile(r"[0-9a-f]*")  # and an even length
_UINT_MAX = {FieldDescriptor.TYPE_UINT32: 2**32, FieldDescriptor.TYPE_UINT64: 2**64}


class RequestError(Exception):
    """The request cannot be run (SPEC 17.1 `ok: false`)."""


class NotRendering(Exception):
    """The JSON given to `encode` is not a rendering of formats/codec_*.md."""


# -- JSON input ---------------------------------------------------------------------------------

def _no_duplicates(pairs: list) -> dict:
    out = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")
        out[k] = v
    return out


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} out of range")
    return value


def _finite_int(text: str) -> int:
    value = int(text)
    try:
        float(value)  # SPEC 17.1: a number that overflows a double is bad JSON, integers too
    except OverflowError:
        raise ValueError(f"number {text[:40]}... out of range") from None
    return value


def _bad_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def parse_line(raw: bytes):
    return json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_float=_finite,
                      parse_int=_finite_int, parse_constant=_bad_constant)


def _field(req: dict, name: str, kind: type | tuple[type, ...]):
    if name not in req:
        raise RequestError(f"missing field {name!r}")
    v = req[name]
    if not isinstance(v, kind) or isinstance(v, bool) is not (kind is bool):
        raise RequestError(f"field {name!r} has the wrong type")
    return v


def _int(req: dict, name: str) -> int:
    return _field(req, name, int)


def _unhex(text: object, what: str) -> bytes:
    if not isinstance(text, str) or len(text) % 2 or not _HEX.fullmatch(text):
        raise RequestError(f"{what}: not lowercase hex")
    return bytes.fromhex(text)


def _hex(req: dict, name: str) -> bytes:
    return _unhex(_field(req, name, str), name)


def _hex_list(req: dict, name: str) -> list[bytes]:
    return [_unhex(x, f"{name}[{i}]") for i, x in enumerate(_field(req, name, list))]


_VALIDATOR = None


def manifest_problem(doc: object) -> tuple[str, int | None] | None:
    """None for a valid manifest, else ("schema", None) or ("semantic", SPEC 3 rule number)."""
    global _VALIDATOR
    if _VALIDATOR is None:  # built once: the schema does not change while the adapter runs
        import jsonschema

        from impl_a.manifest import SCHEMA

        _VALIDATOR = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))
    if not _VALIDATOR.is_valid(doc):
        return "schema", None
    problem = semantic_problem(doc)
    return None if problem is None else ("semantic", problem[0])


_MANIFESTS: OrderedDict[str, Manifest | str] = OrderedDict()


def _manifest(req: dict) -> Manifest:
    """The request's manifest; it must pass SPEC 3 validation (a node would exit 2 otherwise)."""
    doc = _field(req, "manifest", dict)
    key = json.dumps(doc, sort_keys=True)
    got = _MANIFESTS.get(key)
    if got is None:
        problem = manifest_problem(doc)
        got = Manifest(doc) if problem is None else f"invalid manifest ({problem[0]} rule {problem[1]})"
        _MANIFESTS[key] = got
        if len(_MANIFESTS) > 64:
            _MANIFESTS.popitem(last=False)
    else:
        _MANIFESTS.move_to_end(key)
    if isinstance(got, str):
        raise RequestError(got)
    return got


def _message_class(req: dict) -> type[Message]:
    name = _field(req, "message", str)
    cls = MESSAGE_TYPES.get(name)
    if cls is None:
        raise RequestError(f"unknown message {name!r}")
    return cls


def _reject(exc: RemoteViolation) -> dict:
    return {"verdict": "reject", "reason": exc.reason}


ACCEPT = {"verdict": "accept"}


def _judged(check) -> dict:
    """check()'s answer, or the reject answer for the RemoteViolation it raised."""
    try:
        return check()
    except RemoteViolation as exc:
        return _reject(exc)
REJECT = {"verdict": "reject"}


# -- the JSON rendering, read back (encode) -----------------------------------------------------

def _fill(msg: Message, obj: object) -> None:
    if type(obj) is not dict:
        raise NotRendering(f"{msg.DESCRIPTOR.name}: not an object")
    fields = msg.DESCRIPTOR.fields_by_name
    for name, value in obj.items():
        f = fields.get(name)
        if f is None:
            raise NotRendering(f"{msg.DESCRIPTOR.name} has no field {name!r}")
        if f.is_repeated:
            if type(value) is not list or not value:
                raise NotRendering(f"{name}: not a non-empty array")
            target = getattr(msg, name)
            for item in value:
                if f.type == FieldDescriptor.TYPE_MESSAGE:
                    _fill(target.add(), item)
                else:
                    target.append(_scalar(f, item))
        elif f.type == FieldDescriptor.TYPE_MESSAGE:
            sub = getattr(msg, name)
            sub.SetInParent()
            _fill(sub, value)
        else:
            setattr(msg, name, _scalar(f, value))


def _scalar(f, value):
    t = f.type
    if t in _UINT_MAX:
        if type(value) is not int or not 0 <= value < _UINT_MAX[t]:
            raise NotRendering(f"{f.name}: not an integer in range")
        return value
    if t == FieldDescriptor.TYPE_BOOL:
        if type(value) is not bool:
            raise NotRendering(f"{f.name}: not a boolean")
        return value
    if t == FieldDescriptor.TYPE_STRING:
        if type(value) is not str:
            raise NotRendering(f"{f.name}: not a string")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise NotRendering(f"{f.name}: not UTF-8") from None
        return value
    if t == FieldDescriptor.TYPE_BYTES:
        if type(value) is not str or len(value) % 2 or not _HEX.fullmatch(value):
            raise NotRendering(f"{f.name}: not lowercase hex")
        return bytes.fromhex(value)
    if t == FieldDescriptor.TYPE_ENUM:
        ev = f.enum_type.values_by_name.get(value) if type(value) is str else None
        if ev is None:
            raise NotRendering(f"{f.name}: not a value name of {f.enum_type.name}")
        return ev.number
    raise NotRendering(f"{f.name}: unsupported field type")  # the schema has no other types


def from_rendering(cls: type[Message], obj: object) -> bytes:
    """The canonical encoding of the message whose rendering is obj. obj must be exactly what
    render() gives for that encoding (no default values, one oneof member, ...): the bytes are
    decoded strictly and rendered again, and anything that does not come back equal is refused."""
    msg = cls()
    _fill(msg, obj)
    data = encode(msg)
    back = _judged(lambda: {"verdict": "accept", "json": render(decode(cls, data))})
    if back["verdict"] != "accept":
        raise NotRendering(f"its encoding does not decode: {back['reason']}")
    if back["json"] != obj:
        raise NotRendering("not the rendering of its own encoding (a default value, two oneof members, ...)")
    return data


# -- operations -------------------------------------------------------------------------------

def op_decode(req: dict) -> dict:
    cls, data = _message_class(req), _hex(req, "hex")

    def rendered() -> dict:
        msg = decode(cls, data)
        return {"verdict": "accept", "json": render(msg), "hex": encode(msg).hex()}
    return _judged(rendered)


def op_encode(req: dict) -> dict:
    cls, obj = _message_class(req), req.get("json", _MISSING)
    if obj is _MISSING:
        raise RequestError("missing field 'json'")
    with contextlib.suppress(NotRendering, ValueError, TypeError):  # upb refusing a value is a refusal too
        return {"hex": from_rendering(cls, obj).hex()}
    return dict(REJECT)


_MISSING = object()


def op_ed25519_verify(req: dict) -> dict:
    ok = crypto.ed25519_verify(_hex(req, "public"), _hex(req, "message"), _hex(req, "signature"))
    return dict(ACCEPT if ok else REJECT)


def op_signing_bytes(req: dict) -> dict:
    domain = _field(req, "domain", str)
    if domain not in SIGNED:
        raise RequestError(f"unknown signing domain {domain!r}")
    network_id = _field(req, "network_id", str)
    data = _hex(req, "hex")
    try:
        nid_len = len(network_id.encode("utf-8"))
    except UnicodeEncodeError:
        raise RequestError("network_id is not UTF-8") from None
    if nid_len > 0xFFFF:
        raise RequestError("network_id longer than 65535 bytes")
    msg_name, sig_field = SIGNED[domain]
    try:
        msg = decode(getattr(pb, msg_name), data)
    except RemoteViolation:
        return dict(REJECT)
    body = body_without(msg, sig_field) if sig_field else encode(msg)
    return {"hex": crypto.signing_bytes(domain, network_id, body).hex()}


def op_merkle_root(req: dict) -> dict:
    leaves = _hex_list(req, "leaves")  # may be empty: MTH([]) = SHA-256("")
    return {"root": merkle.root(leaves).hex()}


def op_merkle_verify(req: dict) -> dict:
    """`leaf` (leaf data) or `leaf_hash`; given both, they must agree (else reject)."""
    if "leaf" not in req and "leaf_hash" not in req:
        raise RequestError("missing field 'leaf' (or 'leaf_hash')")
    from_leaf = merkle.leaf_hash(_hex(req, "leaf")) if "leaf" in req else None
    given = _hex(req, "leaf_hash") if "leaf_hash" in req else None
    index, count = _int(req, "index"), _int(req, "count")
    proof, root = _hex_list(req, "proof"), _hex(req, "root")
    if from_leaf is not None and given is not None and from_leaf != given:
        return dict(REJECT)
    lh = from_leaf if from_leaf is not None else given
    ok = merkle.verify_inclusion(index, count, lh, proof, root)
    return dict(ACCEPT if ok else REJECT)


def op_qc_verify(req: dict) -> dict:
    m = _manifest(req)
    cluster = _field(req, "cluster", str)
    header_bytes, qc_bytes = _hex(req, "header"), _hex(req, "qc")

    def verified() -> dict:
        header = decode(pb.DecisionHeader, header_bytes)
        qc = decode(pb.QuorumCert, qc_bytes)
        if header.cluster_id != cluster:  # as SPEC 10 point 1; SPEC 9 rule 1 gives the same reason
            raise RemoteViolation("wrong_cluster", f"header of {header.cluster_id!r}, expected {cluster!r}")
        check_qc(m, header, qc)
        return dict(ACCEPT)
    return _judged(verified)


def op_compact_verify(req: dict) -> dict:
    m = _manifest(req)
    source, destination = _field(req, "source", str), _field(req, "destination", str)
    next_seq, data = _int(req, "next_seq"), _hex(req, "compact")
    return _judged(lambda: check_compact(m, decode(pb.CompactDecision, data), source, destination, next_seq)
                   or dict(ACCEPT))


def op_execute(req: dict) -> dict:
    m = _manifest(req)
    cluster = _field(req, "cluster", str)
    if cluster not in m.clusters:
        raise RequestError(f"cluster {cluster!r} is not in the manifest")
    batches = _hex_list(req, "batches")
    state, head, decisions = State(m, cluster), ZERO32, []
    for height, data in enumerate(batches, start=1):
        try:
            batch = decode(pb.Batch, data)
            check_batch_limits(m, batch)
            ex = Execution(state, height)
            outputs = ex.run(batch, check=True)
        except RemoteViolation:
            decisions.append(dict(REJECT))
            break
        header = build_header(cluster, height, head, batch, outputs)
        decisions.append(encode(pb.Decision(header=header, batch=batch, outputs=outputs)).hex())
        ex.apply()
        head = header_hash(header)
    return {"decisions": decisions}


def op_shard_of(req: dict) -> dict:
    m = _manifest(req)
    return {"shard": m.shard_of(_hex(req, "key"))}


def op_manifest_validate(req: dict) -> dict:
    if "manifest" not in req:
        raise RequestError("missing field 'manifest'")
    problem = manifest_problem(req["manifest"])
    if problem is None:
        return dict(ACCEPT)
    return {"verdict": "reject", "stage": problem[0], "rule": problem[1]}


OPS: dict[str, Callable[[dict], dict]] = {
    "decode": op_decode, "encode": op_encode, "ed25519_verify": op_ed25519_verify,
    "signing_bytes": op_signing_bytes, "merkle_root": op_merkle_root, "merkle_verify": op_merkle_verify,
    "qc_verify": op_qc_verify, "compact_verify": op_compact_verify, "execute": op_execute,
    "shard_of": op_shard_of, "manifest_validate": op_manifest_validate,
}


# -- the loop -----------------------------------------------------------------------------------

def _error(req_id, text: str) -> dict:
    return {"id": req_id, "ok": False, "error": text[:500]}


def answer(raw: bytes) -> dict:
    """The answer to one input line (without its newline). Never raises."""
    try:
        req = parse_line(raw)
    except Exception as exc:  # bad UTF-8, bad JSON, too deep, huge numbers
        return _error(None, f"bad JSON: {type(exc).__name__}: {exc}")
    if type(req) is not dict:
        return _error(None, "the request is not a JSON object")
    req_id = req.get("id")
    op = req.get("op")
    handler = OPS.get(op) if type(op) is str else None
    if handler is None:
        return _error(req_id, f"unknown op {str(op)[:80]!r}")
    try:
        result = handler(req)
    except RequestError as exc:
        return _error(req_id, str(exc))
    except Exception as exc:  # anything else is still one answer, never a stop
        return _error(req_id, f"{type(exc).__name__}: {exc}")
    return {"id": req_id, "ok": True, **result}


def _dump(obj: dict) -> str:
    try:
        return json.dumps(obj, separators=(",", ":"))
    except Exception as exc:  # e.g. an id nested too deeply to write back
        return json.dumps(_error(None, f"cannot write the answer: {type(exc).__name__}"))


def serve(stdin=None, stdout=None) -> int:
    inp = stdin if stdin is not None else sys.stdin.buffer
    out = stdout if stdout is not None else sys.stdout
    while True:
        raw = inp.readline(MAX_LINE + 1)
        if not raw:
            return 0
        if len(raw) > MAX_LINE and not raw.endswith(b"\n"):
            while raw and not raw.endswith(b"\n"):  # skip the rest of the over-long line
                raw = inp.readline(MAX_LINE)
            reply = _error(None, f"line longer than {MAX_LINE} bytes")
        else:
            reply = answer(raw.rstrip(b"\n"))
        try:
            out.write(_dump(reply) + "\n")
            out.flush()
        except (BrokenPipeError, ValueError):  # nobody reads the answers any more
            return 0
