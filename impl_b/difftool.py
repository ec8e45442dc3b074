"""Differential adapter of SPEC 17.1: `python -m impl_b.conformance --serve`.

Reads one JSON request per line on stdin and writes exactly one JSON answer per line on stdout, in
order, flushed after each; exits 0 at end of input. Every operation runs impl_b's own code (codec,
crypto, Merkle, Checker, rsm, manifest) with the semantics of the vector formats
(wire_spec/vectors/formats). Anything a request gets wrong (bad JSON, unknown op, a missing or
wrongly typed field, bad hex, an invalid manifest) is answered `{"ok": false, "error": ...}`; no input
stops the loop. A key repeated in one JSON object, at any depth, makes the line bad JSON (errata DF-3).
"""

import json
import math
import re
import sys

from . import codec, crypto, merkle
from .checks import DOMAIN, Checker, body_bytes
from .codec import CLASSES, DecodeError, decode, encode
from .conformance import ENUM_NAMES, render
from .manifest import ManifestError, validate
from .rsm import InvalidBatch, State, execute
from .schema import ENUMS, MESSAGES

MAX_LINE = 64 * 1024 * 1024  # longer request lines are answered with an error and skipped
_HEX = re.compile(r"(?:[0-9a-f]{2})*")
_DOMAIN_TYPES = {**{d: t for t, d in DOMAIN.items()}, "decision": "DecisionHeader"}
_ENUM_VALUES = {e: {name: i for i, name in enumerate(names)} for e, names in ENUM_NAMES.items()}
_U_MAX = {"u32": 1 << 32, "u64": 1 << 64}


class RequestError(Exception):
    """The request cannot be run (answered with ok: false)."""


class _NotRendering(Exception):
    """The JSON given to `encode` is not a valid rendering of the message."""


# ---------------------------------------------------------------------------- request fields

def _field(req: dict, name: str, kind):
    if name not in req:
        raise RequestError(f"missing field {name!r}")
    v = req[name]
    if not (type(v) is int if kind is int else isinstance(v, kind)):  # bool is not an int here
        raise RequestError(f"field {name!r}: wrong type")
    return v


def _hex(v, what: str) -> bytes:
    if not isinstance(v, str) or not _HEX.fullmatch(v):
        raise RequestError(f"{what}: not lowercase hex")
    return bytes.fromhex(v)


def _hex_field(req: dict, name: str) -> bytes:
    return _hex(_field(req, name, str), f"field {name!r}")


def _hex_list(req: dict, name: str) -> list[bytes]:
    return [_hex(x, f"field {name!r}") for x in _field(req, name, list)]


class _Manifests:
    """Validated manifests (and their Checker) by content: a tester sends the same one many times."""

    KEPT = 32

    def __init__(self):
        self._cache: dict[str, tuple] = {}

    def get(self, doc) -> tuple:
        key = json.dumps(doc, sort_keys=True)
        hit = self._cache.get(key)
        if hit is None:
            try:
                m = validate(doc)
                hit = (m, Checker(m), None)
            except ManifestError as e:
                hit = (None, None, e)
            if len(self._cache) >= self.KEPT:
                del self._cache[next(iter(self._cache))]
            self._cache[key] = hit
        return hit

    def valid(self, req: dict):
        m, checker, err = self.get(_field(req, "manifest", dict))
        if err is not None:
            raise RequestError(f"invalid manifest: {err}")
        return m, checker


_MANIFESTS = _Manifests()


def _verdict(ok: bool) -> dict:
    return {"verdict": "accept" if ok else "reject"}


def _present(req: dict, name: str):
    """Field `name` of any JSON type (RequestError when absent)."""
    if name not in req:
        raise RequestError(f"missing field {name!r}")
    return req[name]


def _message_name(req: dict) -> str:
    name = _field(req, "message", str)
    if name not in MESSAGES:
        raise RequestError(f"unknown message {name!r}")
    return name


# ---------------------------------------------------------------------------- JSON rendering -> message

def _parse(name: str, obj):
    if not isinstance(obj, dict):
        raise _NotRendering(f"{name}: not an object")
    fields = {f[1]: f for f in MESSAGES[name]}
    kw = {}
    for k, v in obj.items():
        f = fields.get(k)
        if f is None:
            raise _NotRendering(f"{name}: unknown field {k!r}")
        _num, fname, ftype, rep = f
        if rep:
            if not isinstance(v, list):
                raise _NotRendering(f"{name}.{fname}: not an array")
            kw[fname] = [_parse_value(ftype, x) for x in v]
        else:
            kw[fname] = _parse_value(ftype, v)
    return CLASSES[name](**kw)


def _parse_value(ftype: str, v):
    if ftype in _U_MAX:
        if type(v) is not int or not 0 <= v < _U_MAX[ftype]:
            raise _NotRendering(f"{ftype} expected")
        return v
    if ftype == "bool":
        if v is not True:
            raise _NotRendering("bool expected (only true is rendered)")
        return True
    if ftype == "string":
        if not isinstance(v, str):
            raise _NotRendering("string expected")
        return v
    if ftype == "bytes":
        if not isinstance(v, str) or not _HEX.fullmatch(v):
            raise _NotRendering("lowercase hex expected")
        return bytes.fromhex(v)
    if ftype in ENUMS:
        if not isinstance(v, str) or v not in _ENUM_VALUES[ftype]:
            raise _NotRendering(f"{ftype} value name expected")
        return _ENUM_VALUES[ftype][v]
    return _parse(ftype, v)


def from_rendering(name: str, obj) -> bytes:
    """Canonical encoding of the message whose JSON rendering is `obj`; raises _NotRendering when
    `obj` is not exactly what decoding that encoding renders (defaults written, empty arrays, a
    oneof without exactly one member, ...)."""
    msg = _parse(name, obj)
    try:
        data = encode(msg)
        same = render(decode(name, data)) == obj
    except (ValueError, DecodeError) as e:  # oneof misuse, bad UTF-8 (surrogates), ...
        raise _NotRendering(str(e)) from None
    if same:
        return data
    raise _NotRendering("not the rendering of its own encoding")


def _encoding_of(name: str, obj) -> bytes | None:
    """from_rendering, with None for JSON that is not a rendering of `name`."""
    try:
        return from_rendering(name, obj)
    except _NotRendering:
        return None


def _decoded(name: str, data: bytes):
    """(message, None) for canonical bytes of `name`, else (None, the SPEC 3 rejection reason)."""
    try:
        return decode(name, data), None
    except DecodeError as e:
        return None, e.reason


# ---------------------------------------------------------------------------- operations

def op_decode(req: dict) -> dict:
    msg, reason = _decoded(_message_name(req), _hex_field(req, "hex"))
    if msg is None:
        return {"verdict": "reject", "reason": reason}
    return {"verdict": "accept", "json": render(msg), "hex": encode(msg).hex()}


def op_encode(req: dict) -> dict:
    name = _message_name(req)
    data = _encoding_of(name, _present(req, "json"))
    return _verdict(False) if data is None else {"hex": data.hex()}


def op_ed25519_verify(req: dict) -> dict:
    pub, msg, sig = (_hex_field(req, k) for k in ("public", "message", "signature"))
    return _verdict(crypto.verify(pub, msg, sig))


def op_signing_bytes(req: dict) -> dict:
    domain = _field(req, "domain", str)
    mtype = _DOMAIN_TYPES.get(domain)
    if mtype is None:
        raise RequestError(f"unknown domain {domain!r}")
    network_id = _field(req, "network_id", str)
    if len(network_id.encode("utf-8")) > 0xFFFF:
        raise RequestError("network_id longer than 65535 bytes")
    data = _hex_field(req, "hex")
    try:
        msg = decode(mtype, data)
    except DecodeError:
        return {"verdict": "reject"}
    body = data if domain == "decision" else body_bytes(msg)
    return {"hex": crypto.signing_bytes(domain, network_id, body).hex()}


def op_merkle_root(req: dict) -> dict:
    # `leaves` may be empty: MTH([]) = SHA-256("") (SPEC 17.1, errata impl-b D2 as adopted)
    return {"root": merkle.root(_hex_list(req, "leaves")).hex()}


def op_merkle_verify(req: dict) -> dict:
    # `leaf` is the leaf data (as in merkle_root and the vectors' `leaf`); `leaf_hash` may be given
    # instead (errata impl-b D1), and when both are given they must agree.
    if "leaf" not in req and "leaf_hash" not in req:
        raise RequestError("missing field 'leaf'")
    lh = merkle.leaf_hash(_hex_field(req, "leaf")) if "leaf" in req else None
    if "leaf_hash" in req:
        given = _hex_field(req, "leaf_hash")
        if lh is not None and lh != given:
            return _verdict(False)
        lh = given
    index, count = _field(req, "index", int), _field(req, "count", int)
    proof = _hex_list(req, "proof")
    root = _hex_field(req, "root")
    return _verdict(merkle.verify_inclusion(lh, index, count, proof, root))


def _reason(reason) -> dict:
    return {"verdict": "accept"} if reason is None else {"verdict": "reject", "reason": reason}


def op_qc_verify(req: dict) -> dict:
    _m, checker = _MANIFESTS.valid(req)
    cluster = _field(req, "cluster", str)
    hb, qb = _hex_field(req, "header"), _hex_field(req, "qc")
    try:
        header, qc = decode("DecisionHeader", hb), decode("QuorumCert", qb)
    except DecodeError as e:
        return _reason(e.reason)
    if header.cluster_id != cluster:  # a QC of another cluster than the one asked for: SPEC 9 rule 1
        return _reason("wrong_cluster")
    return _reason(checker.qc_reason(header, qc))


def op_compact_verify(req: dict) -> dict:
    m, checker = _MANIFESTS.valid(req)
    source, dest = _field(req, "source", str), _field(req, "destination", str)
    next_seq = _field(req, "next_seq", int)
    data = _hex_field(req, "compact")
    try:
        cd = decode("CompactDecision", data)
    except DecodeError as e:
        return _reason(e.reason)
    # The entry kind D expects (SPEC 10 point 5): by its role, `responses` for a client destination.
    kind = "client" if dest.startswith("client:") or dest not in m.clusters else m.clusters[dest].role
    return _reason(checker.compact_reason(cd, source, dest, kind, next_seq))


def op_execute(req: dict) -> dict:
    m, checker = _MANIFESTS.valid(req)
    cid = _field(req, "cluster", str)
    if cid not in m.clusters:
        raise RequestError(f"cluster {cid!r} is not in the manifest")
    raw_batches = _hex_list(req, "batches")
    st = State(cid, m.clusters[cid].role)
    parent = b"\x00" * 32
    out: list = []
    for height, raw in enumerate(raw_batches, start=1):
        try:
            batch = decode("Batch", raw)
            ex = execute(st, m, batch, height, parent, checker)
        except (DecodeError, InvalidBatch):
            out.append({"verdict": "reject"})
            break
        dec = codec.Decision(header=ex.header, batch=batch, outputs=ex.outputs)
        out.append(encode(dec).hex())
        ex.apply()
        parent = crypto.sha256(encode(ex.header))
    return {"decisions": out}


def op_shard_of(req: dict) -> dict:
    m, _checker = _MANIFESTS.valid(req)
    return {"shard": m.shard_of(_hex_field(req, "key"))}


def op_manifest_validate(req: dict) -> dict:
    _m, _checker, err = _MANIFESTS.get(_present(req, "manifest"))
    if err is None:
        return {"verdict": "accept"}
    stage = "semantic" if err.stage == "semantic" else "schema"
    return {"verdict": "reject", "stage": stage, "rule": err.rule if stage == "semantic" else None}


OPS = {
    "decode": op_decode, "encode": op_encode, "ed25519_verify": op_ed25519_verify,
    "signing_bytes": op_signing_bytes, "merkle_root": op_merkle_root, "merkle_verify": op_merkle_verify,
    "qc_verify": op_qc_verify, "compact_verify": op_compact_verify, "execute": op_execute,
    "shard_of": op_shard_of, "manifest_validate": op_manifest_validate,
}


# ---------------------------------------------------------------------------- loop

def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    v = float(text)
    if not math.isfinite(v):  # 1e400: an id that could not be echoed as JSON
        raise ValueError(f"number {text[:40]} out of range")
    return v


def _double_int(text: str) -> int:
    v = int(text)
    float(v)  # OverflowError beyond the range of a double: bad JSON (SPEC 17.1)
    return v


class _DuplicateKey(ValueError):
    pass


def _unique_object(pairs: list) -> dict:
    """A JSON object whose keys (after unescaping) are all distinct: a duplicated key at any depth
    makes the whole line bad JSON (SPEC 17.1, errata DF-3)."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set = set()
        dup = next(k for k, _v in pairs if k in seen or seen.add(k))
        raise _DuplicateKey(f"duplicated key {dup[:100]!r}")
    return obj


def answer(line: bytes) -> str:
    """The answer line (without newline) for one request line; never raises."""
    rid = None
    try:
        try:
            req = json.loads(line.decode("utf-8"), parse_constant=_no_constant, parse_float=_finite_float,
                             parse_int=_double_int, object_pairs_hook=_unique_object)
        except (ValueError, OverflowError, RecursionError) as e:
            return json.dumps({"id": None, "ok": False, "error": f"bad JSON: {e}"[:500]})
        if not isinstance(req, dict):
            return json.dumps({"id": None, "ok": False, "error": "request is not a JSON object"})
        rid = req.get("id")
        op = req.get("op")
        fn = OPS.get(op) if isinstance(op, str) else None
        if fn is None:
            raise RequestError("missing op" if op is None else f"unknown op {op!r}"[:200])
        result = fn(req)
        return json.dumps({"id": rid, "ok": True, **result})
    except Exception as e:  # anything a request provokes is answered, never fatal
        err = str(e) if isinstance(e, RequestError) else f"{type(e).__name__}: {e}"
        try:
            return json.dumps({"id": rid, "ok": False, "error": err[:500]})
        except Exception:  # an id that cannot be echoed (too deep to serialise)
            return json.dumps({"id": None, "ok": False, "error": err[:500]})


def _lines(stream):
    """Request lines of `stream`; an over-long line is yielded as None after it is skipped."""
    while True:
        line = stream.readline(MAX_LINE + 1)
        if not line:
            return
        if len(line) > MAX_LINE and not line.endswith(b"\n"):
            while True:
                rest = stream.readline(1 << 20)
                if not rest or rest.endswith(b"\n"):
                    break
            yield None
        else:
            yield line


def serve(stdin=None, stdout=None) -> int:
    stdin = stdin or sys.stdin.buffer
    stdout = stdout or sys.stdout
    for line in _lines(stdin):
        if line is None:
            out = json.dumps({"id": None, "ok": False, "error": f"request line longer than {MAX_LINE} bytes"})
        else:
            out = answer(line)
        stdout.write(out + "\n")
        stdout.flush()
    return 0
