"""Re-sign mutated inputs so that they get past the signature checks and reach deeper rules.

The vector keys are public test data (vectors/README.md): a node's Ed25519 seed is
`SHA-256("heraclius vector key " + "<network_id>/<node_id>/ed25519")`, a client's
`... "<network_id>/client/<client_id>/ed25519"`. After a structural edit of a batch, a compact
decision or a decision header, `fix_*` re-signs client requests and bundles with their client's key,
recomputes a compact decision's `outputs_root` from its leaf and audit path and re-signs its QC with
the same signers, so the edited input is valid up to the rule the edit breaks (or not at all).
"""

from __future__ import annotations

import contextlib
import random

from wire_spec.vectors.generator import codec
from wire_spec.vectors.generator.keys import ed25519_public, seed, sign, signing_bytes
from wire_spec.vectors.generator.merkle import leaf_hash, node_hash

from .mutate import INTERESTING_INTS, mutate_dict

_RINGS: dict[str, Keyring] = {}


class Keyring:
    def __init__(self, manifest: dict):
        self.network_id = str(manifest.get("network_id", ""))
        self.nodes: dict[str, bytes] = {}
        self.clients: dict[bytes, bytes] = {}
        self.members: dict[str, list[str]] = {}
        for c in manifest.get("clusters", []) or []:
            ids = []
            for n in c.get("nodes", []) or []:
                secret = seed(f"{self.network_id}/{n.get('id')}/ed25519")
                if ed25519_public(secret).hex() == n.get("ed25519_public"):
                    self.nodes[n["id"]] = secret
                ids.append(n.get("id"))
            self.members[c.get("id")] = ids
        for c in manifest.get("clients", []) or []:
            secret = seed(f"{self.network_id}/client/{c.get('id')}/ed25519")
            pub = ed25519_public(secret)
            if pub.hex() == c.get("ed25519_public"):
                self.clients[pub] = secret

    @classmethod
    def of(cls, manifest: dict) -> Keyring:
        key = repr(sorted((manifest.get("network_id", ""), str(manifest.get("clusters")), str(manifest.get("clients")))))
        if key not in _RINGS:
            _RINGS[key] = cls(manifest)
        return _RINGS[key]


def root_from_path(index: int, count: int, lh: bytes, proof: list[bytes]) -> bytes | None:
    """RFC 9162 2.1.3.2: the root an audit path leads to, or None when its length is wrong."""
    if not 0 <= index < count:
        return None
    fn, sn, r = index, count - 1, lh
    for p in proof:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not (fn & 1) and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def resign_request(r: dict, ring: Keyring) -> None:
    secret = ring.clients.get(r.get("client_key", b""))
    if secret is None:
        return
    body = codec.encode("ClientRequest", {k: v for k, v in r.items() if k != "signature"})
    r["signature"] = sign(secret, signing_bytes("client-request", ring.network_id, body))


def resign_bundle(b: dict, ring: Keyring) -> None:
    secret = ring.clients.get(b.get("client_key", b""))
    if secret is None:
        return
    body = codec.encode("RequestBundle", {k: v for k, v in b.items() if k != "signature"})
    b["signature"] = sign(secret, signing_bytes("client-bundle", ring.network_id, body))


def resign_qc(header: dict, qc: dict, ring: Keyring, nodes: list[str] | None = None) -> None:
    """Signatures of the same node ids (or `nodes`) over `header`; unknown keys keep theirs."""
    body = codec.encode("DecisionHeader", header)
    data = signing_bytes("decision", ring.network_id, body)
    old = {s.get("node_id", ""): s.get("signature", b"") for s in qc.get("signatures", [])}
    ids = nodes if nodes is not None else [s.get("node_id", "") for s in qc.get("signatures", [])]
    sigs = []
    for n in ids:
        secret = ring.nodes.get(n)
        sigs.append({"node_id": n, "signature": sign(secret, data) if secret else old.get(n, bytes(64))})
    if sigs:
        qc["signatures"] = sigs
    else:
        qc.pop("signatures", None)


def fix_compact(cd: dict, ring: Keyring) -> None:
    leaf = cd.get("leaf", {})
    proof = cd.get("proof", [])
    root = root_from_path(cd.get("leaf_index", 0), cd.get("leaf_count", 0),
                          leaf_hash(codec.encode("OutputLeaf", leaf)), proof)
    header = cd.setdefault("header", {})
    if root is not None:
        header["outputs_root"] = root
    resign_qc(header, cd.setdefault("qc", {}), ring)


def fix_batch(batch: dict, ring: Keyring) -> None:
    for inp in batch.get("inputs", []):
        if "client" in inp:
            resign_request(inp["client"], ring)
        elif "bundle" in inp:
            resign_bundle(inp["bundle"], ring)
        elif "remote" in inp:
            fix_compact(inp["remote"], ring)


# ------------------------------------------------------------------ semantic edits, then re-sign

def _op_edit(op: dict, rng: random.Random) -> str:
    c = rng.randrange(4)
    if c == 0:
        n = rng.choice([0, 1, 15, 16, 17, 32, 1024, 1025])
        op["key"] = bytes([0x6B]) * n
        return f"key of {n} bytes"
    if c == 1:
        n = rng.choice([0, 1, 31, 32, 33, 65536])
        op["value"] = bytes([0x76]) * n
        return f"value of {n} bytes"
    if c == 2:
        op["kind"] = rng.choice([0, 1, 2, 3])
        return f"kind {op['kind']}"
    op.pop("value", None)
    op["kind"] = 1
    return "a GET without value"


def _entry_edit(leaf: dict, rng: random.Random) -> str:
    """Edit a call (to a shard) or a result (to a coordinator) of a leaf: what the receiver executes
    without the sender's checks (a leaf needs only a quorum's signature)."""
    if leaf.get("calls"):
        call = rng.choice(leaf["calls"])
        if rng.random() < 0.7:
            return "call op: " + _op_edit(call.setdefault("op", {}), rng)
        call["request_id"] = rng.choice([0, 1, 2**64 - 1])
        call["client_key"] = rng.choice([b"", bytes(31), bytes(32), call.get("client_key", b"")])
        return f"call request_id {call['request_id']}, client_key of {len(call['client_key'])} bytes"
    if leaf.get("results"):
        res = rng.choice(leaf["results"])
        k = rng.randrange(5)
        if k == 0:
            res["kind"] = rng.choice([0, 1, 2, 3])
            return f"result kind {res['kind']}"
        if k == 1:
            res["found"] = not res.get("found", False)
            return f"result found {res['found']}"
        if k == 2:
            res["value"] = rng.choice([b"", b"v" * 33, b"v" * 70000])
            return f"result value of {len(res['value'])} bytes"
        if k == 3:
            res["shard_height"] = rng.choice([0, 1, 2**64 - 1])
            return f"result shard_height {res['shard_height']}"
        leaf["results"].append(dict(res))
        return "result duplicated"
    return mutate_dict("OutputLeaf", leaf, rng)


def edit_limits(fields: dict, rng: random.Random) -> str:
    """Set one manifest limit at or just below what the batches need (off-by-one boundaries)."""
    batches = []
    for h in fields.get("batches", []):
        with contextlib.suppress(codec.CodecError, ValueError):
            batches.append((len(h) // 2, codec.decode("Batch", bytes.fromhex(h))))
    if not batches or not isinstance(fields.get("manifest"), dict):
        return ""
    size, batch = rng.choice(batches)
    ops = []
    for inp in batch.get("inputs", []):
        if "client" in inp:
            ops.append(inp["client"].get("op", {}))
        for it in inp.get("bundle", {}).get("items", []):
            ops.append(it.get("op", {}))
        for call in inp.get("remote", {}).get("leaf", {}).get("calls", []):
            ops.append(call.get("op", {}))
    name = rng.choice(["max_batch_inputs", "max_batch_bytes", "max_key_bytes", "max_value_bytes",
                       "max_pending_requests"])
    need = {"max_batch_inputs": len(batch.get("inputs", [])), "max_batch_bytes": size,
            "max_key_bytes": max([len(o.get("key", b"")) for o in ops] or [1]),
            "max_value_bytes": max([len(o.get("value", b"")) for o in ops] or [0]),
            "max_pending_requests": len(ops) or 1}[name]
    value = max(need + rng.choice([0, 0, -1, 1]), {"max_batch_bytes": 1024, "max_value_bytes": 0}.get(name, 1))
    m = dict(fields["manifest"])
    m["limits"] = dict(m.get("limits", {}), **{name: value})
    fields["manifest"] = m
    return f"manifest limits.{name} = {value} (the batch needs {need})"


def edit_batch(batch: dict, rng: random.Random) -> str:
    """A semantic edit of a decoded Batch (before fix_batch)."""
    inputs = batch.get("inputs", [])
    c = rng.randrange(10)
    if inputs and c == 0:
        i = rng.randrange(len(inputs))
        inputs.insert(rng.randrange(len(inputs) + 1), dict(inputs[i]))
        return f"duplicate input {i}"
    if len(inputs) > 1 and c == 1:
        i, j = rng.sample(range(len(inputs)), 2)
        inputs[i], inputs[j] = inputs[j], inputs[i]
        return f"swap inputs {i} and {j}"
    clients = [x["client"] for x in inputs if "client" in x]
    bundles = [x["bundle"] for x in inputs if "bundle" in x]
    remotes = [x["remote"] for x in inputs if "remote" in x]
    if clients and c in (2, 3):
        r = rng.choice(clients)
        if c == 2:
            return "client op: " + _op_edit(r.setdefault("op", {}), rng)
        r["request_id"] = rng.choice([0, 1, 2, 65535, 65536, 65537, 131072, 2**63, 2**64 - 1,
                                      r.get("request_id", 0) + 1, max(0, r.get("request_id", 0) - 65536)])
        return f"client request_id -> {r['request_id']}"
    if bundles and c in (2, 3, 4):
        b = rng.choice(bundles)
        items = b.get("items", [])
        if items and c == 2:
            return "bundle item op: " + _op_edit(rng.choice(items).setdefault("op", {}), rng)
        if items and c == 3:
            it = rng.choice(items)
            it["request_id"] = rng.choice([0, 1, 2, 2**64 - 1, it.get("request_id", 0) + 1])
            return f"bundle item request_id -> {it['request_id']}"
        k = rng.choice([0, 1, 255, 256, 257])
        base = items[0] if items else {"request_id": 1, "op": {"kind": 1, "key": b"k"}}
        b["items"] = [dict(base, request_id=i + 1) for i in range(k)]
        return f"bundle of {k} items"
    if remotes and c in (5, 6, 7) and rng.random() < 0.4:
        leaf = rng.choice(remotes).setdefault("leaf", {})
        return "remote leaf entry: " + _entry_edit(leaf, rng)
    if remotes and c in (5, 6, 7):
        cd = rng.choice(remotes)
        leaf = cd.setdefault("leaf", {})
        if c == 5:
            leaf["seq"] = rng.choice([0, 1, 2, leaf.get("seq", 0) + 1, max(0, leaf.get("seq", 0) - 1), 2**64 - 1])
            return f"remote leaf seq -> {leaf['seq']}"
        if c == 6:
            return "remote leaf: " + mutate_dict("OutputLeaf", leaf, rng)
        return "remote header: " + mutate_dict("DecisionHeader", cd.setdefault("header", {}), rng)
    if c == 8 and inputs:
        del inputs[rng.randrange(len(inputs))]
        if not inputs:
            batch.pop("inputs", None)
        return "drop an input"
    return mutate_dict("Batch", batch, rng)


def semantic_execute(fields: dict, rng: random.Random) -> str | None:
    if rng.random() < 0.15:
        what = edit_limits(fields, rng)
        if what:
            return what
    batches = list(fields.get("batches", []))
    if not batches:
        return None
    i = rng.randrange(len(batches))
    try:
        batch = codec.decode("Batch", bytes.fromhex(batches[i]))
    except (codec.CodecError, ValueError):
        return None
    what = edit_batch(batch, rng)
    fix_batch(batch, Keyring.of(fields["manifest"]))
    try:
        batches[i] = codec.encode("Batch", batch).hex()
    except Exception:  # noqa: BLE001
        return None
    fields["batches"] = batches
    return f"batch {i + 1}: {what}, re-signed"


def semantic_compact(fields: dict, rng: random.Random) -> str | None:
    try:
        cd = codec.decode("CompactDecision", bytes.fromhex(fields["compact"]))
    except (codec.CodecError, ValueError):
        return None
    c = rng.randrange(5)
    if c == 4:
        what = "leaf entry: " + _entry_edit(cd.setdefault("leaf", {}), rng)
    elif c == 0:
        what = "leaf: " + mutate_dict("OutputLeaf", cd.setdefault("leaf", {}), rng)
    elif c == 1:
        leaf = cd.setdefault("leaf", {})
        leaf["seq"] = rng.choice([0, 1, leaf.get("seq", 0) + 1, max(0, leaf.get("seq", 0) - 1), 2**64 - 1])
        what = f"leaf seq -> {leaf['seq']}"
    elif c == 2:
        what = "header: " + mutate_dict("DecisionHeader", cd.setdefault("header", {}), rng)
    else:
        cd["leaf_index"] = rng.choice([0, 1, cd.get("leaf_index", 0) + 1, 2**64 - 1])
        what = f"leaf_index -> {cd['leaf_index']}"
    fix_compact(cd, Keyring.of(fields["manifest"]))
    try:
        fields["compact"] = codec.encode("CompactDecision", cd).hex()
    except Exception:  # noqa: BLE001
        return None
    return f"compact {what}, root and QC redone"


def semantic_qc(fields: dict, rng: random.Random) -> str | None:
    try:
        header = codec.decode("DecisionHeader", bytes.fromhex(fields["header"]))
        qc = codec.decode("QuorumCert", bytes.fromhex(fields["qc"]))
    except (codec.CodecError, ValueError):
        return None
    ring = Keyring.of(fields["manifest"])
    c = rng.randrange(3)
    nodes = None
    if c == 0:
        what = "header: " + mutate_dict("DecisionHeader", header, rng)
    elif c == 1:
        members = ring.members.get(header.get("cluster_id", ""), [])
        others = [n for n in ring.nodes if n not in members]
        k = rng.choice([0, 1, 2, 3, 4, 5, 6, 7, 8])
        pick = sorted(set(rng.sample(members, min(k, len(members)))))
        if others and rng.random() < 0.3:
            pick = sorted(pick + [rng.choice(others)])
        if pick and rng.random() < 0.2:
            pick.insert(rng.randrange(len(pick)), pick[0])
        nodes = pick
        what = f"signed by {pick}"
    else:
        header["height"] = rng.choice(INTERESTING_INTS[1:-2])
        what = f"header height -> {header['height']}"
    resign_qc(header, qc, ring, nodes)
    try:
        fields["header"] = codec.encode("DecisionHeader", header).hex()
        fields["qc"] = codec.encode("QuorumCert", qc).hex()
    except Exception:  # noqa: BLE001
        return None
    return f"{what}, QC re-signed"
