"""Seed inputs of the differential tester (SPEC 17.1): one adapter request per vector case.

Every case of `wire_spec/vectors/` that maps onto a `--serve` operation becomes a `Seed`: the request
fields, the vector it came from, and what its fields hold (which hex field is which protobuf message)
so that `mutate.py` can mutate it structurally. Seeds are unmutated vector inputs: their answers are
compared whole, `reason` and `rule` included. The order is deterministic (sorted paths).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from wire_spec.vectors.generator import codec
from wire_spec.vectors.generator.keys import signing_bytes as ref_signing_bytes

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "wire_spec" / "vectors"
EXTERNAL = VECTORS / "external"
EXAMPLE_MANIFEST = ROOT / "wire_spec" / "examples" / "manifest.example.json"

OPS = ("decode", "encode", "ed25519_verify", "signing_bytes", "merkle_root", "merkle_verify", "qc_verify",
       "compact_verify", "execute", "shard_of", "manifest_validate", "protocol")  # protocol: raw request lines

# signing domain -> the message its `hex` holds (SPEC 6)
DOMAIN_MESSAGES = {"client-request": "ClientRequest", "client-bundle": "RequestBundle", "decision": "DecisionHeader",
                   "proposal": "Proposal", "prepare": "Prepare", "view-change": "ViewChange",
                   "view-data": "ViewData", "new-view": "NewView"}


@dataclass
class Seed:
    op: str
    fields: dict                      # the request without id/op
    source: str                       # vector path (relative to wire_spec/vectors) and detail
    # hex fields holding a protobuf message: field name -> message name; "batches" holds Batch list
    messages: dict = field(default_factory=dict)

    def request(self) -> dict:
        return dict(self.fields) if self.op == "protocol" else {"op": self.op, **self.fields}


def _hex(path: Path) -> str:
    return path.read_bytes().hex()


def _json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def _cases(area: str, handler: str) -> list[Path]:
    base = VECTORS / area / handler
    return sorted(p for kind in ("valid", "invalid") for p in (base / kind).glob("*") if p.is_dir())


def _rel(p: Path) -> str:
    return str(p.relative_to(VECTORS))


def codec_seeds() -> list[Seed]:
    out = []
    for mdir in sorted((VECTORS / "codec").iterdir()):
        message = mdir.name
        for case in _cases("codec", message):
            out.append(Seed("decode", {"message": message, "hex": _hex(case / "encoded.bin")}, _rel(case),
                            {"hex": message}))
            if (case / "decoded.json").exists():
                out.append(Seed("encode", {"message": message, "json": _json(case / "decoded.json")}, _rel(case),
                                {"json": message}))
    return out


def signing_seeds() -> list[Seed]:
    out = []
    for domain, message in DOMAIN_MESSAGES.items():
        for case in _cases("signing", domain):
            inp = _json(case / "input.json")
            net = inp["network_id"]
            body = (case / "body.bin").read_bytes()
            out.append(Seed("signing_bytes", {"domain": domain, "network_id": net, "hex": body.hex()},
                            _rel(case) + " body.bin", {"hex": message}))
            if (case / "message.bin").exists():  # with its signature field set, which is not signed
                out.append(Seed("signing_bytes", {"domain": domain, "network_id": net,
                                                  "hex": _hex(case / "message.bin")},
                                _rel(case) + " message.bin", {"hex": message}))
            out.append(Seed("decode", {"message": message, "hex": body.hex()}, _rel(case) + " body.bin",
                            {"hex": message}))
            if (case / "message.bin").exists():
                out.append(Seed("decode", {"message": message, "hex": _hex(case / "message.bin")},
                                _rel(case) + " message.bin", {"hex": message}))
            sb = ref_signing_bytes(domain, net, body)
            out.append(Seed("ed25519_verify", {"public": inp["public_key"], "message": sb.hex(),
                                               "signature": _hex(case / "signature.bin")}, _rel(case)))
    return out


def ed25519_seeds() -> list[Seed]:
    out = []
    for case in _cases("crypto", "ed25519_verify"):
        inp = _json(case / "input.json")
        out.append(Seed("ed25519_verify", {"public": inp["public_key"], "message": inp["message"],
                                           "signature": inp["signature"]}, _rel(case)))
    for i, c in enumerate(_json(EXTERNAL / "ed25519" / "speccheck_cases.json")):
        out.append(Seed("ed25519_verify", {"public": c["pub_key"], "message": c["message"],
                                           "signature": c["signature"]}, f"external/ed25519/speccheck_cases.json #{i}"))
    for v in _json(EXTERNAL / "ed25519" / "rfc8032_ed25519.json")["vectors"]:
        out.append(Seed("ed25519_verify", {"public": v["public_key"], "message": v["message"],
                                           "signature": v["signature"]},
                        f"external/ed25519/rfc8032_ed25519.json {v['name']}"))
    for g in _json(EXTERNAL / "wycheproof" / "ed25519_test.json")["testGroups"]:
        for t in g["tests"]:
            out.append(Seed("ed25519_verify", {"public": g["publicKey"]["pk"], "message": t["msg"],
                                               "signature": t["sig"]},
                            f"external/wycheproof/ed25519_test.json tcId {t['tcId']}"))
    return out


def _b64hex(s: str) -> str:
    return base64.b64decode(s or "").hex()


def merkle_seeds() -> list[Seed]:
    out = []
    for case in _cases("merkle", "root"):
        out.append(Seed("merkle_root", {"leaves": _json(case / "input.json")["leaves"]}, _rel(case)))
    for case in _cases("merkle", "proof"):
        inp = _json(case / "input.json")
        common = {"index": inp["leaf_index"], "count": inp["leaf_count"], "proof": inp["proof"], "root": inp["root"]}
        out.append(Seed("merkle_verify", {"leaf_hash": inp["leaf_hash"], **common}, _rel(case)))
        if "leaf" in inp:  # the leaf data instead of its hash, and both (SPEC 17.1)
            out.append(Seed("merkle_verify", {"leaf": inp["leaf"], **common}, _rel(case) + " (leaf)"))
            out.append(Seed("merkle_verify", {"leaf": inp["leaf"], "leaf_hash": inp["leaf_hash"], **common},
                            _rel(case) + " (leaf and leaf_hash)"))
    rfc = _json(EXTERNAL / "merkle" / "rfc6962_tree_hashes.json")
    leaves = rfc["leaf_inputs_hex"]
    for n in range(0, len(leaves) + 1):
        out.append(Seed("merkle_root", {"leaves": leaves[:n]}, f"external/merkle/rfc6962_tree_hashes.json n={n}"))
    for p in sorted((EXTERNAL / "merkle" / "transparency-dev" / "inclusion").rglob("*.json")):
        c = _json(p)
        if not isinstance(c.get("leafIdx"), int) or not isinstance(c.get("treeSize"), int):
            continue
        out.append(Seed("merkle_verify", {"leaf_hash": _b64hex(c.get("leafHash")), "index": c["leafIdx"],
                                          "count": c["treeSize"], "proof": [_b64hex(x) for x in c.get("proof") or []],
                                          "root": _b64hex(c.get("root"))}, _rel(p)))
    return out


def qc_seeds() -> list[Seed]:
    out = []
    for case in _cases("qc", "verify"):
        header = (case / "header.bin").read_bytes()
        try:
            cluster = codec.decode("DecisionHeader", header).get("cluster_id", "")
        except codec.CodecError:
            cluster = ""
        out.append(Seed("qc_verify", {"manifest": _json(case / "manifest.json"), "cluster": cluster,
                                      "header": header.hex(), "qc": _hex(case / "qc.bin")}, _rel(case),
                        {"header": "DecisionHeader", "qc": "QuorumCert"}))
    return out


def compact_seeds() -> list[Seed]:
    out = []
    for case in _cases("compact", "verify"):
        ctx = _json(case / "context.json")
        out.append(Seed("compact_verify", {"manifest": _json(case / "manifest.json"), "source": ctx["source"],
                                           "destination": ctx["destination"], "next_seq": ctx["next_seq"],
                                           "compact": _hex(case / "compact.bin")}, _rel(case),
                        {"compact": "CompactDecision"}))
    return out


def execution_seeds() -> list[Seed]:
    out = []
    for role in ("coordinator", "shard"):
        for case in _cases("execution", role):
            meta = _json(case / "meta.json")
            batches = [_hex(p) for p in sorted(case.glob("batch_*.bin"))]
            out.append(Seed("execute", {"manifest": _json(case / "manifest.json"), "cluster": meta["cluster"],
                                        "batches": batches}, _rel(case), {"batches": "Batch"}))
    return out


@lru_cache(maxsize=1)
def manifests() -> list[tuple[str, dict]]:
    """Every distinct manifest of the vectors (first occurrence), plus the example manifest."""
    seen, out = set(), []
    paths = sorted(VECTORS.rglob("manifest.json"))
    for p in [EXAMPLE_MANIFEST, *paths]:
        m = _json(p)
        key = json.dumps(m, sort_keys=True)
        if key not in seen:
            seen.add(key)
            out.append((str(p.relative_to(ROOT)), m))
    return out


def manifest_seeds() -> list[Seed]:
    out = []
    for case in _cases("manifest", "validate"):
        out.append(Seed("manifest_validate", {"manifest": _json(case / "manifest.json")}, _rel(case)))
    for where, m in manifests():
        if "manifest/validate" not in where:
            out.append(Seed("manifest_validate", {"manifest": m}, where))
    return out


def shard_seeds() -> list[Seed]:
    keys: list[str] = []
    for case in _cases("shard", "map"):
        for k in _json(case / "input.json")["keys"]:
            if k not in keys:
                keys.append(k)
    out = []
    valid = [(w, m) for w, m in manifests() if "/invalid/" not in w and m.get("shard_map", {}).get("shards")]
    picked = valid[:3]
    if picked:  # the same network with its shard list reversed (the shard index follows the list order)
        w, m = picked[0]
        rev = json.loads(json.dumps(m))
        rev["shard_map"]["shards"] = list(reversed(rev["shard_map"]["shards"]))
        picked.append((w + " (shards reversed)", rev))
    for where, m in picked:
        for k in keys:
            out.append(Seed("shard_of", {"manifest": m, "key": k}, f"shard/map keys, manifest {where}"))
    return out


# SPEC 17.1 line-level strictness: raw request lines (bytes, no newline) every adapter must answer alike
RAW_LINES = [
    b"", b"   ", b"nan", b"[1, 2]", b'"op"', b"null", b"{", b'{"id": 7}', b'{"op": "merkle_root", "leaves": []}',
    b'{"id": 1, "op": "merkle_root", "leaves": [], "x": NaN}', b'{"id": Infinity, "op": "merkle_root", "leaves": []}',
    b'{"id": 1e400, "op": "merkle_root", "leaves": []}', b'{"id": [1, {"a": null}], "op": "merkle_root", "leaves": []}',
    b'{"id": "x\\u00e9", "op": "merkle_root", "leaves": ["00"]}', b'{"id": 1.5, "op": "bogus"}',
    b'{"id": 18446744073709551616, "op": "merkle_root", "leaves": []}', b'{"id": -0, "op": "merkle_root", "leaves": []}',
    b'{"id": 2, "op": "merkle_root", "leaves": ["00"], "leaves": []}', b'{"id": 3, "id": 4, "op": "merkle_root", "leaves": []}',
    b'{"id": 5, "op": "merkle_root", "leaves": ["00"]}\r', b'\xef\xbb\xbf{"id": 6, "op": "merkle_root", "leaves": []}',
    b'{"id": 8, "op": "merkle_root", "leaves": ["\xff"]}', b'{"id": 9, "op": "merkle_root", "leaves": ["0\\u0030"]}',
    b'{"id": 10, "op": "merkle_verify", "leaf_hash": "' + b"00" * 32 + b'", "index": 0.0, "count": 1, "proof": [], "root": "'
    + b"00" * 32 + b'"}',
    b'{"id": 11, "op": "merkle_verify", "leaf_hash": "' + b"00" * 32 + b'", "index": 0, "count": 1e0, "proof": [], "root": "'
    + b"00" * 32 + b'"}',
    b'{"id": 12, "op": "shard_of", "manifest": [], "key": ""}', b'{"id": 13, "op": "decode", "message": "Batch", "hex": ""}',
    b'{"id": 14, "op": "decode", "message": "batch", "hex": ""}', b'{"id": 15, "op": "DECODE", "message": "Batch", "hex": ""}',
    b'{"id": 16, "op": null}', b'{"id": 17}', b'\t{"id": 18, "op": "merkle_root", "leaves": []}\t',
    b'{"id": 19, "op": "merkle_root", "leaves": [], "id": null}', b'{"id": 20, "op": "encode", "message": "Batch", "json": []}',
    b'{"id": 21, "op": "encode", "message": "Batch", "json": {}}', b'{"id": 22, "op": "ed25519_verify", "public": "", '
    b'"message": "", "signature": ""}', b'{"id": 23, "op": "execute", "manifest": {}, "cluster": "c0", "batches": []}',
    b'{"id": 24, "op": "manifest_validate", "manifest": null}', b'{"id": 25, "op": "manifest_validate", "manifest": 1}',
    # where JSON libraries of other languages differ (case-insensitive names, floats for big integers,
    # lone surrogates, trailing data, unknown request fields)
    b'{"ID": 26, "op": "merkle_root", "leaves": []}', b'{"id": 27, "OP": "merkle_root", "leaves": []}',
    b'{"id": 28, "op": "merkle_root", "Leaves": ["00"]}', b'{"id": 29, "op": "merkle_verify", "leaf_hash": "'
    + b"00" * 32 + b'", "index": 18446744073709551615, "count": 18446744073709551615, "proof": [], "root": "'
    + b"00" * 32 + b'"}',
    b'{"id": 30, "op": "merkle_root", "leaves": ["\\u0030\\u0030"]}',
    b'{"id": 31, "op": "merkle_root", "leaves": ["00"]} x', b'{"id": 32, "op": "merkle_root", "leaves": ["00"]}{"id": 33}',
    b'{"id": 34, "op": "merkle_root", "leaves": "00"}', b'{"id": 35, "op": "merkle_root", "leaves": [null]}',
    b'{"id": 36, "op": "merkle_root", "leaves": [], "extra": 1}',
    b'{"id": 9007199254740993, "op": "merkle_root", "leaves": []}', b'{"id": 1e2, "op": "merkle_root", "leaves": []}',
    b'{"id": "\\ud800", "op": "merkle_root", "leaves": []}', b'{"id": 37, "op": "merkle_root", "leaves": ["00"], "leaf": 1}',
    b'{"id": 38, "op": "shard_of", "manifest": {"shard_map": {"shards": ["s0"]}}, "key": "00"}',
    b'{"id": 39, "op": "execute", "manifest": {}, "cluster": "c0", "batches": "00"}',
]


def raw_seeds() -> list[Seed]:
    # kept as str (surrogateescape) so that requests stay JSON-printable; adapters.py writes the bytes back
    return [Seed("protocol", {"__raw__": line.decode("utf-8", "surrogateescape")}, f"raw line {i}: {line[:60]!r}")
            for i, line in enumerate(RAW_LINES)]


@lru_cache(maxsize=1)
def seeds() -> tuple[Seed, ...]:
    """All seeds, grouped by op in OPS order."""
    everything = (codec_seeds() + signing_seeds() + ed25519_seeds() + merkle_seeds() + qc_seeds()
                  + compact_seeds() + execution_seeds() + shard_seeds() + manifest_seeds() + raw_seeds())
    return tuple(s for op in OPS for s in everything if s.op == op)


def by_op() -> dict[str, list[Seed]]:
    out: dict[str, list[Seed]] = {op: [] for op in OPS}
    for s in seeds():
        out[s.op].append(s)
    return out
