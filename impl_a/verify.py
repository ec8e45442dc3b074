"""Protocol-level checks shared by nodes and clients: signed messages (SPEC 6), quorum certificates
(SPEC 9), compact decisions (SPEC 10) and client requests (SPEC 11 input validity)."""

from __future__ import annotations

from collections import OrderedDict

from google.protobuf.message import Message

from impl_a import heraclius_pb2 as pb
from impl_a.codec import encode
from impl_a.crypto import SigningKey, ed25519_verify, sha256, signing_bytes
from impl_a.errors import RemoteViolation
from impl_a.manifest import Manifest
from impl_a.merkle import leaf_hash, verify_inclusion

GET, PUT = pb.OP_KIND_GET, pb.OP_KIND_PUT
MAX_BUNDLE_ITEMS = 256
MAX_BUNDLE_BYTES = 262144


def client_destination(client_key: bytes) -> str:
    return "client:" + client_key.hex()


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_LAST_FIELD: dict[tuple[str, str], bytes | None] = {}


def _trailer_tag(msg: Message, field: str) -> bytes | None:
    """The tag of `field` when it is the message's highest-numbered field, else None."""
    key = (msg.DESCRIPTOR.full_name, field)
    if key not in _LAST_FIELD:
        fd = msg.DESCRIPTOR.fields_by_name[field]
        last = max(f.number for f in msg.DESCRIPTOR.fields)
        _LAST_FIELD[key] = _varint(fd.number << 3 | 2) if fd.number == last else None
    return _LAST_FIELD[key]


def body_without(msg: Message, field: str) -> bytes:
    """Canonical encoding of msg with `field` absent. Fields are written in number order, so when the
    signature is the last field the body is the encoding minus its trailing tag, length and value:
    one encode instead of a copy of the whole message (proposals carry whole batches)."""
    tag = _trailer_tag(msg, field)
    if tag is not None:
        data = encode(msg)
        value = getattr(msg, field)
        if not value:
            return data
        suffix = tag + _varint(len(value)) + value
        if data.endswith(suffix):
            return data[:-len(suffix)]
    copy = type(msg)()
    copy.CopyFrom(msg)
    copy.ClearField(field)
    return encode(copy)


def sign_message(key: SigningKey, domain: str, network_id: str, msg: Message, field: str = "signature") -> None:
    setattr(msg, field, key.sign(signing_bytes(domain, network_id, body_without(msg, field))))


def message_signature_ok(public: bytes, domain: str, network_id: str, msg: Message,
                         field: str = "signature") -> bool:
    return ed25519_verify(public, signing_bytes(domain, network_id, body_without(msg, field)), getattr(msg, field))


def header_hash(header: pb.DecisionHeader) -> bytes:
    return sha256(encode(header))


def decision_signing_bytes(network_id: str, header: pb.DecisionHeader) -> bytes:
    return signing_bytes("decision", network_id, encode(header))


class QcCache:
    """Remembers QCs already verified, so each is checked once, and the member signatures found valid
    over each header: members of one cluster build different QCs for the same header (each from the
    first q commits it got), and a QC whose signatures were all seen valid needs no Ed25519 work.
    Every check still applies all of SPEC 9; only a repeated signature verification is skipped."""

    def __init__(self, size: int = 4096):
        self.size = size
        self._ok: OrderedDict[bytes, None] = OrderedDict()
        self._sigs: OrderedDict[bytes, set[tuple[str, bytes]]] = OrderedDict()

    def check(self, manifest: Manifest, header: pb.DecisionHeader, qc: pb.QuorumCert) -> None:
        header_bytes = encode(header)
        key = sha256(header_bytes + b"|" + encode(qc))
        if key in self._ok:
            self._ok.move_to_end(key)
            return
        digest = sha256(header_bytes)
        good = self._sigs.get(digest)
        if good is None:
            good = self._sigs[digest] = set()
            if len(self._sigs) > self.size:
                self._sigs.popitem(last=False)
        check_qc(manifest, header, qc, good)
        self._ok[key] = None
        if len(self._ok) > self.size:
            self._ok.popitem(last=False)


def check_qc(manifest: Manifest, header: pb.DecisionHeader, qc: pb.QuorumCert,
             known_good: set[tuple[str, bytes]] | None = None) -> None:
    """SPEC 9; raises RemoteViolation(wrong_cluster | bad_qc). known_good holds (node id, signature)
    pairs already verified over this header; pairs verified here are added to it."""
    cluster = manifest.clusters.get(header.cluster_id)
    if cluster is None:
        raise RemoteViolation("wrong_cluster", f"unknown cluster {header.cluster_id!r}")
    sigs = list(qc.signatures)
    ids = [s.node_id.encode() for s in sigs]
    if any(a >= b for a, b in zip(ids, ids[1:], strict=False)):
        raise RemoteViolation("bad_qc", "signatures not strictly sorted by node id")
    members = {n.id: n for n in cluster.nodes}
    if not cluster.q <= len(sigs) <= cluster.n:
        raise RemoteViolation("bad_qc", f"{len(sigs)} signatures, need {cluster.q}..{cluster.n}")
    msg = None
    for s in sigs:
        node = members.get(s.node_id)
        if node is None:
            raise RemoteViolation("bad_qc", f"{s.node_id!r} is not a member of {cluster.id}")
        pair = (s.node_id, s.signature)
        if known_good is not None and pair in known_good:
            continue
        if msg is None:
            msg = decision_signing_bytes(manifest.network_id, header)
        if not ed25519_verify(node.ed25519_public, msg, s.signature):
            raise RemoteViolation("bad_qc", f"bad signature of {s.node_id}")
        if known_good is not None:
            known_good.add(pair)


def expected_entry_kind(manifest: Manifest, destination: str) -> str:
    """SPEC 10 point 5: a shard expects calls, the coordinator results; any other destination
    (`client:<hex>`, or not a cluster of the manifest, SPEC 17.1) expects responses, as a client."""
    cluster = manifest.clusters.get(destination)
    if cluster is None:
        return "responses"
    return "calls" if cluster.role == "shard" else "results"


def check_compact(manifest: Manifest, cd: pb.CompactDecision, source: str, destination: str,
                  next_seq: int | None = None, qc_cache: QcCache | None = None) -> None:
    """SPEC 10 points 1-6 (6 only when next_seq is given; 5 includes the 32-byte header hash
    fields); raises RemoteViolation."""
    h = cd.header
    if h.cluster_id != source or source not in manifest.clusters:
        raise RemoteViolation("wrong_cluster", f"header cluster {h.cluster_id!r}, expected {source!r}")
    (qc_cache.check if qc_cache else lambda m, a, b: check_qc(m, a, b))(manifest, h, cd.qc)
    if cd.leaf_count < 1 or cd.leaf_index >= cd.leaf_count:
        raise RemoteViolation("bad_proof", "leaf index out of range")
    if not verify_inclusion(cd.leaf_index, cd.leaf_count, leaf_hash(encode(cd.leaf)), list(cd.proof),
                            h.outputs_root):
        raise RemoteViolation("bad_proof", "inclusion proof does not verify")
    leaf = cd.leaf
    if leaf.source_cluster != source or leaf.height != h.height or leaf.destination != destination:
        raise RemoteViolation("wrong_destination", f"leaf for {leaf.destination!r} from {leaf.source_cluster!r}")
    kind = expected_entry_kind(manifest, destination)
    counts = {"calls": len(leaf.calls), "results": len(leaf.results), "responses": len(leaf.responses)}
    if not kind or counts[kind] == 0 or sum(counts.values()) != counts[kind]:
        raise RemoteViolation("malformed", "leaf entries do not match the destination")
    for name in ("parent_hash", "inputs_hash", "outputs_root"):  # SPEC 5 fixed lengths (DF-1)
        if len(getattr(h, name)) != 32:
            raise RemoteViolation("malformed", f"header {name} is {len(getattr(h, name))} bytes, not 32")
    if next_seq is not None and leaf.seq != next_seq:
        raise RemoteViolation("replay" if leaf.seq < next_seq else "out_of_order",
                              f"seq {leaf.seq}, expected {next_seq}")


def check_operation(manifest: Manifest, op: pb.Operation) -> None:
    lim = manifest.limits
    if op.kind not in (GET, PUT):
        raise RemoteViolation("malformed", "operation kind")
    if not 1 <= len(op.key) <= lim["max_key_bytes"]:
        raise RemoteViolation("malformed", "key length")
    if op.kind == GET and op.value:
        raise RemoteViolation("malformed", "GET with a value")
    if len(op.value) > lim["max_value_bytes"]:
        raise RemoteViolation("oversized", "value too large")


def _check_client_header(manifest: Manifest, msg, cluster_id: str, what: str) -> None:
    """Cluster, key length, authorised key: shared by requests and bundles. A signature that is not
    64 bytes fails the signature check, last (SPEC 14.3, 14.6: BAD_SIGNATURE)."""
    if msg.cluster_id != cluster_id:
        raise RemoteViolation("wrong_cluster", f"{what} for {msg.cluster_id!r}")
    if len(msg.client_key) != 32:
        raise RemoteViolation("malformed", "client key length")
    if msg.client_key not in manifest.clients:
        raise RemoteViolation("unauthorised_client", msg.client_key.hex())


def check_client_request(manifest: Manifest, req: pb.ClientRequest, cluster_id: str) -> None:
    """SPEC 11 client input validity (canonical form is checked by the decoder)."""
    _check_client_header(manifest, req, cluster_id, "request")
    if req.request_id < 1:
        raise RemoteViolation("malformed", "request id 0")
    if not req.HasField("op"):
        raise RemoteViolation("malformed", "no operation")
    check_operation(manifest, req.op)
    if not request_signature_ok(manifest, req):
        raise RemoteViolation("bad_signature", "client request signature")


def check_bundle(manifest: Manifest, b: pb.RequestBundle, cluster_id: str, signature: bool = True) -> None:
    """SPEC 11 bundle input validity / SPEC 14.6 checks of a RequestBundle as a whole (canonical
    form is checked by the decoder); the signature is checked last, once the cheap checks passed
    (the client port checks admission in between: signature=False, then bundle_signature_ok)."""
    _check_client_header(manifest, b, cluster_id, "bundle")
    if not b.items:
        raise RemoteViolation("malformed", "bundle without items")
    if len(b.items) > MAX_BUNDLE_ITEMS:
        raise RemoteViolation("oversized", f"bundle of {len(b.items)} items")
    if b.ByteSize() > min(MAX_BUNDLE_BYTES, manifest.limits["max_batch_bytes"]):
        raise RemoteViolation("oversized", "bundle encoding too large")
    last = 0
    for item in b.items:
        if item.request_id <= last:
            raise RemoteViolation("malformed", "bundle ids not strictly increasing from 1")
        last = item.request_id
        if not item.HasField("op"):
            raise RemoteViolation("malformed", "bundle item without an operation")
        try:
            check_operation(manifest, item.op)
        except RemoteViolation as exc:  # SPEC 14.6: an invalid item operation is malformed
            raise RemoteViolation("malformed", "bundle item: " + exc.detail) from None
    if signature and not bundle_signature_ok(manifest, b):
        raise RemoteViolation("bad_signature", "client bundle signature")


def bundle_signature_ok(manifest: Manifest, b: pb.RequestBundle) -> bool:
    return len(b.signature) == 64 and message_signature_ok(b.client_key, "client-bundle", manifest.network_id, b)


def check_plain_request(manifest: Manifest, req: pb.ClientRequest, cluster_id: str) -> None:
    """SPEC 14.3 node-side checks of a plain ClientRequest, in the table's order, up to (not
    including) admission and the signature: wrong_cluster, unauthorised_client, malformed, oversized."""
    if req.cluster_id != cluster_id:
        raise RemoteViolation("wrong_cluster", f"request for {req.cluster_id!r}")
    if req.client_key not in manifest.clients:
        raise RemoteViolation("unauthorised_client", req.client_key.hex())
    op = req.op
    if req.request_id < 1 or not req.HasField("op") or op.kind not in (GET, PUT) or not op.key:
        raise RemoteViolation("malformed", "request id, operation kind or empty key")
    if op.kind == GET and op.value:
        raise RemoteViolation("malformed", "GET with a value")
    lim = manifest.limits
    if len(op.key) > lim["max_key_bytes"] or len(op.value) > lim["max_value_bytes"]:
        raise RemoteViolation("oversized", "key or value over its limit")


def request_signature_ok(manifest: Manifest, req: pb.ClientRequest) -> bool:
    return len(req.signature) == 64 and message_signature_ok(req.client_key, "client-request",
                                                            manifest.network_id, req)
