"""A SPEC 17.1 adapter over the vector generator's reference code (`wire_spec/vectors/generator`).

Not an implementation: the tester never counts it as one. It is the harness's own stand-in (the
self-tests run the harness on it) and a third opinion printed next to a disagreement. Run as
`python -m tests.differential.reference --serve`.
"""

from __future__ import annotations

import json
import os
import sys
import threading

from wire_spec.vectors.generator import codec, ed25519_ref, manifest_check, merkle, rsm, verify
from wire_spec.vectors.generator.keys import DOMAINS, signing_bytes
from wire_spec.vectors.generator.schema import ENUMS, MESSAGES

U64_MAX = 2**64 - 1


class BadRequest(Exception):
    pass


class NotRendering(Exception):
    pass


def _hex(req: dict, name: str) -> bytes:
    if name not in req:
        raise BadRequest(f"missing field {name!r}")
    v = req[name]
    try:
        if not isinstance(v, str) or v != v.lower() or len(v) % 2 or v.strip() != v or " " in v:
            raise ValueError
        return bytes.fromhex(v)
    except ValueError:
        raise BadRequest(f"bad hex in {name!r}") from None


def _field(req: dict, name: str, kind=None):
    if name not in req:
        raise BadRequest(f"missing field {name!r}")
    v = req[name]
    if kind is int and (not isinstance(v, int) or isinstance(v, bool)):
        raise BadRequest(f"{name!r} is not an integer")
    if kind is not None and kind is not int and not isinstance(v, kind):
        raise BadRequest(f"{name!r} has the wrong type")
    return v


def from_json(message: str, obj) -> dict:
    """The inverse of the JSON rendering; NotRendering for anything a rendering cannot be."""
    if message not in MESSAGES or not isinstance(obj, dict):
        raise NotRendering(message)
    fields = {f.name: f for f in MESSAGES[message]}
    out: dict = {}
    oneofs: set = set()
    for name, v in obj.items():
        f = fields.get(name)
        if f is None:
            raise NotRendering(f"unknown field {name}")
        if f.oneof:
            if f.oneof in oneofs:
                raise NotRendering("two oneof members")
            oneofs.add(f.oneof)
        if f.repeated:
            if not isinstance(v, list) or not v:
                raise NotRendering(f"{name}: not a non-empty list")
            out[name] = [_value(f.type, x, False) for x in v]
        else:
            out[name] = _value(f.type, v, True)
    return out


def _value(t: str, v, scalar_default_forbidden: bool):
    if t.startswith("msg:"):
        return from_json(t[4:], v)
    if t.startswith("enum:"):
        names = ENUMS[t[5:]]
        if not isinstance(v, str) or v not in names or (scalar_default_forbidden and v == names[0]):
            raise NotRendering(f"enum {v!r}")
        return names.index(v)
    if t == "bool":
        if v is not True:
            raise NotRendering("bool not true")
        return True
    if t in ("uint32", "uint64"):
        top = 2**32 - 1 if t == "uint32" else U64_MAX
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= top or (scalar_default_forbidden and v == 0):
            raise NotRendering(f"integer {v!r}")
        return v
    if t == "string":
        if not isinstance(v, str) or (scalar_default_forbidden and v == ""):
            raise NotRendering("string")
        try:
            v.encode("utf-8")
        except UnicodeEncodeError:
            raise NotRendering("string not UTF-8") from None
        return v
    if t == "bytes":
        if not isinstance(v, str) or v != v.lower():
            raise NotRendering("bytes not lowercase hex")
        try:
            b = bytes.fromhex(v)
        except ValueError:
            raise NotRendering("bytes not hex") from None
        if len(b) * 2 != len(v) or (scalar_default_forbidden and not b):
            raise NotRendering("bytes")
        return b
    raise NotRendering(t)


def _manifest(req: dict) -> dict:
    """SPEC 17.1: a manifest that does not validate is an error in every op but manifest_validate."""
    m = _field(req, "manifest", dict)
    if not manifest_check.validate(m)["valid"]:
        raise BadRequest("manifest does not validate")
    return m


def _decode_or_reject(message: str, data: bytes):
    try:
        return codec.decode(message, data), None
    except codec.CodecError as exc:
        return None, {"verdict": "reject", "reason": exc.reason}


def _header_lengths_ok(header: dict) -> bool:
    return all(len(header.get(k, b"")) == 32 for k in ("parent_hash", "inputs_hash", "outputs_root"))


def verify_compact(manifest: dict, cd: dict, source: str, destination: str, next_seq: int) -> None:
    """generator.verify.verify_compact with SPEC 17.1's reading of a destination that is neither
    `client:<hex>` nor a cluster: it expects `responses`, as a client does."""
    header, leaf = cd.get("header", {}), cd.get("leaf", {})
    if header.get("cluster_id", "") != source or source not in {c["id"] for c in manifest["clusters"]}:
        raise verify.Rejected("wrong_cluster", "header cluster")
    verify.verify_qc(manifest, header, cd.get("qc", {}))
    count, index = cd.get("leaf_count", 0), cd.get("leaf_index", 0)
    if count < 1 or index >= count or not merkle.verify_inclusion(
            index, count, merkle.leaf_hash(codec.encode("OutputLeaf", leaf)), cd.get("proof", []),
            header.get("outputs_root", b"")):
        raise verify.Rejected("bad_proof", "inclusion proof does not verify")
    if (leaf.get("source_cluster", "") != source or leaf.get("height", 0) != header.get("height", 0)
            or leaf.get("destination", "") != destination):
        raise verify.Rejected("wrong_destination", "leaf source, height or destination mismatch")
    roles = {c["id"]: c["role"] for c in manifest["clusters"]}
    role = "client" if destination.startswith("client:") else roles.get(destination, "client")
    kind = verify.KIND_FOR_ROLE[role]
    if [k for k in ("calls", "results", "responses") if k != kind and leaf.get(k)] or not leaf.get(kind):
        raise verify.Rejected("malformed", f"leaf must carry only {kind}, at least one")
    if not _header_lengths_ok(header):  # point 5 since DF-1 (SPEC 5 fixed lengths)
        raise verify.Rejected("malformed", "header hash field not 32 bytes")
    seq = leaf.get("seq", 0)
    if seq != next_seq:
        raise verify.Rejected("replay" if seq < next_seq else "out_of_order", f"seq {seq}, expected {next_seq}")


def answer(req) -> dict:
    if not isinstance(req, dict):
        raise BadRequest("request is not an object")
    op = req.get("op")
    if op == "decode":
        message = _field(req, "message", str)
        data = _hex(req, "hex")
        if message not in MESSAGES:
            raise BadRequest(f"unknown message {message!r}")
        try:
            value = codec.decode(message, data)
        except codec.CodecError as exc:
            return {"verdict": "reject", "reason": exc.reason}
        return {"verdict": "accept", "json": codec.to_json(message, value), "hex": codec.encode(message, value).hex()}
    if op == "encode":
        message = _field(req, "message", str)
        if message not in MESSAGES:
            raise BadRequest(f"unknown message {message!r}")
        try:
            value = from_json(message, _field(req, "json"))
            data = codec.encode(message, value)
            codec.decode(message, data)  # a required oneof left empty is no rendering either
        except (NotRendering, codec.CodecError):
            return {"verdict": "reject"}
        return {"hex": data.hex()}
    if op == "ed25519_verify":
        ok = ed25519_ref.verify(_hex(req, "public"), _hex(req, "message"), _hex(req, "signature"))[0]
        return {"verdict": "accept" if ok else "reject"}
    if op == "signing_bytes":
        from .corpus import DOMAIN_MESSAGES
        domain = _field(req, "domain", str)
        net = _field(req, "network_id", str)
        data = _hex(req, "hex")
        if domain not in DOMAINS:
            raise BadRequest(f"unknown domain {domain!r}")
        message = DOMAIN_MESSAGES[domain]
        try:
            value = codec.decode(message, data)
        except codec.CodecError:
            return {"verdict": "reject"}
        value.pop("signature", None)  # its signature field, if set, is not signed
        return {"hex": signing_bytes(domain, net, codec.encode(message, value)).hex()}
    if op == "merkle_root":
        leaves = _field(req, "leaves", list)  # MTH([]) = SHA-256("")
        return {"root": merkle.mth([_hex({"x": x}, "x") for x in leaves]).hex()}
    if op == "merkle_verify":
        root = _hex(req, "root")
        if "leaf" not in req and "leaf_hash" not in req:
            raise BadRequest("missing field 'leaf' or 'leaf_hash'")
        hashes = []
        if "leaf" in req:
            hashes.append(merkle.leaf_hash(_hex(req, "leaf")))
        if "leaf_hash" in req:
            hashes.append(_hex(req, "leaf_hash"))
        index, count = _field(req, "index", int), _field(req, "count", int)
        proof = [_hex({"x": x}, "x") for x in _field(req, "proof", list)]
        leaf = hashes[0]
        ok = len(set(hashes)) == 1 and (0 <= index < count and len(leaf) == 32 and len(root) == 32 and all(len(p) == 32 for p in proof)
              and merkle.verify_inclusion(index, count, leaf, proof, root))
        return {"verdict": "accept" if ok else "reject"}
    if op == "qc_verify":
        m = _manifest(req)
        cluster = _field(req, "cluster", str)
        header, bad = _decode_or_reject("DecisionHeader", _hex(req, "header"))
        if bad:
            return bad
        qc, bad = _decode_or_reject("QuorumCert", _hex(req, "qc"))
        if bad:
            return bad
        if header.get("cluster_id", "") != cluster:
            return {"verdict": "reject", "reason": "wrong_cluster"}
        try:
            verify.verify_qc(m, header, qc)
        except verify.Rejected as exc:
            return {"verdict": "reject", "reason": exc.reason}
        return {"verdict": "accept"}
    if op == "compact_verify":
        m = _manifest(req)
        cd, bad = _decode_or_reject("CompactDecision", _hex(req, "compact"))
        if bad:
            return bad
        try:
            verify_compact(m, cd, _field(req, "source", str), _field(req, "destination", str),
                           _field(req, "next_seq", int))
        except verify.Rejected as exc:
            return {"verdict": "reject", "reason": exc.reason}
        return {"verdict": "accept"}
    if op == "execute":
        m = _manifest(req)
        cluster = _field(req, "cluster", str)
        if cluster not in {c["id"] for c in m["clusters"]}:
            raise BadRequest(f"cluster {cluster!r} not in the manifest")
        state = rsm.ClusterState(m, cluster)
        out = []
        for b in _field(req, "batches", list):
            try:
                batch = codec.decode("Batch", _hex({"x": b}, "x"))
                if any("remote" in i and not _header_lengths_ok(i["remote"].get("header", {}))
                       for i in batch.get("inputs", [])):
                    raise rsm.InvalidBatch(-1, "invalid_proposal", "remote header hash field not 32 bytes (DF-1)")
                decision = state.execute(batch)
            except (codec.CodecError, rsm.InvalidBatch):
                out.append({"verdict": "reject"})
                break
            out.append(codec.encode("Decision", decision).hex())
        return {"decisions": out}
    if op == "shard_of":
        return {"shard": rsm.shard_of(_manifest(req), _hex(req, "key"))}
    if op == "manifest_validate":
        r = manifest_check.validate(_field(req, "manifest"))
        if r["valid"]:
            return {"verdict": "accept"}
        return {"verdict": "reject", "stage": r["stage"], "rule": r["rule"]}
    raise BadRequest(f"unknown op {op!r}")


def _faulty(req: dict, faults: dict) -> dict | None:
    """Self-test faults (HERACLIUS_DIFF_FAULT="op:kind,..."): crash, hang, lie or unfinished on an op."""
    kind = faults.get(req.get("op"))
    if kind == "crash":
        os._exit(3)
    if kind == "hang":
        threading.Event().wait()
    if kind == "unfinished":
        raise BadRequest(f"unknown op {req.get('op')!r}")
    if kind == "lie":
        out = answer(req)
        if "verdict" in out:
            out["verdict"] = {"accept": "reject", "reject": "accept"}[out["verdict"]]
        return out
    return None


def serve(stdin=sys.stdin, stdout=sys.stdout) -> int:
    faults = dict(x.split(":", 1) for x in os.environ.get("HERACLIUS_DIFF_FAULT", "").split(",") if x)
    for line in stdin:
        try:
            req = json.loads(line)
        except ValueError:
            out = {"id": None, "ok": False, "error": "bad JSON"}
        else:
            rid = req.get("id") if isinstance(req, dict) else None
            try:
                out = {"id": rid, "ok": True, **(_faulty(req, faults) or answer(req))}
            except BadRequest as exc:
                out = {"id": rid, "ok": False, "error": str(exc)}
            except Exception as exc:  # noqa: BLE001 - the adapter answers every line (SPEC 17.1)
                out = {"id": rid, "ok": False, "error": f"internal: {type(exc).__name__}: {exc}"}
        stdout.write(json.dumps(out) + "\n")
        stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(serve())
