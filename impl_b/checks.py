"""Signatures on messages (SPEC 6), quorum certificates (SPEC 9), compact decisions (SPEC 10)
and client-request validity (SPEC 11), as pure checks returning a SPEC 15 reason or None."""

from . import codec, merkle
from .codec import encode
from .crypto import sha256, signing_bytes, verify
from .manifest import Manifest
from .schema import OP_GET, OP_PUT

SIG_FIELD = {"ClientRequest": "signature", "RequestBundle": "signature", "Proposal": "signature", "Prepare": "signature",
             "ViewChange": "signature", "ViewData": "signature", "NewView": "signature"}
DOMAIN = {"ClientRequest": "client-request", "RequestBundle": "client-bundle", "Proposal": "proposal", "Prepare": "prepare",
          "ViewChange": "view-change", "ViewData": "view-data", "NewView": "new-view"}
MAX_BUNDLE_ITEMS = 256  # SPEC 14.6 / 18
MAX_BUNDLE_BYTES = 262144
EXPECTED_ENTRIES = {"shard": "calls", "coordinator": "results", "client": "responses"}


def body_bytes(msg) -> bytes:
    """Canonical encoding of `msg` with its signature field absent.

    The signature is the highest-numbered field of every signed message, so it is the tail of the
    canonical encoding (tag, length, bytes): cutting it off reuses the cached encoding instead of
    re-encoding the message (and dropping its cache) twice per check."""
    sig = getattr(msg, SIG_FIELD[msg._name])
    raw = encode(msg)
    if not sig:
        return raw
    n = len(sig)
    return raw[:len(raw) - 1 - (n.bit_length() + 6) // 7 - n]


def sign_message(signer, network_id: str, msg) -> None:
    setattr(msg, SIG_FIELD[msg._name], signer.sign(signing_bytes(DOMAIN[msg._name], network_id, body_bytes(msg))))


def message_sig_ok(public: bytes, network_id: str, msg) -> bool:
    sig = getattr(msg, SIG_FIELD[msg._name])
    return verify(public, signing_bytes(DOMAIN[msg._name], network_id, body_bytes(msg)), sig)


def decision_bytes(network_id: str, header) -> bytes:
    return signing_bytes("decision", network_id, encode(header))


def header_hash(header) -> bytes:
    return sha256(encode(header))


class Checker:
    """Manifest-bound checks with a cache of QCs already verified (each verified once)."""

    MEMBER_SIGS_KEPT = 65536

    def __init__(self, manifest: Manifest):
        self.m = manifest
        self._qc_ok: dict[bytes, bool] = {}
        # Valid member signatures by (header hash, node, signature): the QCs of one header that
        # reach a node (from different source members, then inside the leader's proposal) are
        # different quorums of the same signatures, so each signature is verified once.
        self._member_sig_ok: dict[tuple, None] = {}
        self._req_ok: set[bytes] = set()

    def qc_reason(self, header, qc) -> str | None:
        """None when `qc` is a valid QC for `header` (SPEC 9), else the rejection reason."""
        if header is None or qc is None:
            return "bad_qc"
        cluster = self.m.clusters.get(header.cluster_id)
        if cluster is None:
            return "wrong_cluster"
        hb = encode(header)
        key = sha256(hb + encode(qc))
        cached = self._qc_ok.get(key)
        if cached is not None:
            return None if cached else "bad_qc"
        ok = self._qc_check(cluster, hb, qc)
        if len(self._qc_ok) > 100000:
            self._qc_ok.clear()
        self._qc_ok[key] = ok
        return None if ok else "bad_qc"

    def _qc_check(self, cluster, header_bytes: bytes, qc) -> bool:
        sigs = qc.signatures
        if not cluster.q <= len(sigs) <= cluster.n:
            return False
        prev = b""
        for s in sigs:
            nid = s.node_id.encode()
            if nid <= prev:
                return False
            prev = nid
            if s.node_id not in cluster.members:
                return False
        msg = signing_bytes("decision", self.m.network_id, header_bytes)
        hh = sha256(header_bytes)
        known = self._member_sig_ok
        for s in sigs:
            key = (hh, s.node_id, s.signature)
            if key in known:
                continue
            if not verify(self.m.nodes[s.node_id].ed25519, msg, s.signature):
                return False
            known[key] = None
            if len(known) > self.MEMBER_SIGS_KEPT:
                del known[next(iter(known))]
        return True

    def compact_reason(self, cd, source: str, dest: str, dest_kind: str, next_seq: int | None) -> str | None:
        """SPEC 10 checks 1-6 for a compact decision from `source` to `dest`.

        `dest_kind` is 'shard', 'coordinator' or 'client'; `next_seq` None skips check 6."""
        h = cd.header
        if h is None or cd.leaf is None:
            return "malformed"
        if h.cluster_id != source or source not in self.m.clusters:
            return "wrong_cluster"
        if len(h.parent_hash) != 32 or len(h.inputs_hash) != 32 or len(h.outputs_root) != 32:
            return "malformed"
        r = self.qc_reason(h, cd.qc)
        if r:
            return r
        if cd.leaf_count < 1 or cd.leaf_index >= cd.leaf_count:
            return "bad_proof"
        if not merkle.verify_inclusion(merkle.leaf_hash(encode(cd.leaf)), cd.leaf_index, cd.leaf_count,
                                       cd.proof, h.outputs_root):
            return "bad_proof"
        leaf = cd.leaf
        if leaf.source_cluster != source or leaf.height != h.height or leaf.destination != dest:
            return "wrong_destination"
        want = EXPECTED_ENTRIES[dest_kind]
        for kind in ("calls", "results", "responses"):
            if (kind == want) != bool(getattr(leaf, kind)):
                return "malformed"
        if next_seq is not None:
            if leaf.seq < next_seq:
                return "replay"
            if leaf.seq > next_seq:
                return "out_of_order"
        return None

    def request_reason(self, req, cluster_id: str) -> str | None:
        """SPEC 11 client input validity (besides canonical form), or the rejection reason."""
        return self.request_precheck(req, cluster_id) or self.signature_reason(req)

    def request_precheck(self, req, cluster_id: str) -> str | None:
        """The checks of SPEC 14.3 before admission and the signature, in the table's order:
        cluster, authorised key, shape, limits (a key or value over its limit is `oversized`)."""
        if req.cluster_id != cluster_id:
            return "wrong_cluster"
        if req.client_key not in self.m.clients:
            return "unauthorised_client"
        if req.request_id < 1:
            return "malformed"
        return self.op_reason(req.op)

    def op_reason(self, op) -> str | None:
        """Shape, then limits, of one operation of a request or bundle item (SPEC 11, 14.3)."""
        if op is None or op.kind not in (OP_GET, OP_PUT) or not op.key:
            return "malformed"
        if op.kind == OP_GET and op.value:
            return "malformed"
        lim = self.m.limits
        if len(op.key) > lim["max_key_bytes"] or len(op.value) > lim["max_value_bytes"]:
            return "oversized"
        return None

    def bundle_reason(self, b, cluster_id: str) -> str | None:
        """SPEC 11 / 14.6 validity of a RequestBundle as a whole, or the rejection reason."""
        return self.bundle_precheck(b, cluster_id) or self.signature_reason(b)

    def bundle_precheck(self, b, cluster_id: str) -> str | None:
        """A bundle's checks before admission and the signature (SPEC 14.6, order of 14.3)."""
        if b.cluster_id != cluster_id:
            return "wrong_cluster"
        if b.client_key not in self.m.clients:
            return "unauthorised_client"
        if not 1 <= len(b.items) <= MAX_BUNDLE_ITEMS:
            return "malformed" if not b.items else "oversized"
        if len(encode(b)) > min(MAX_BUNDLE_BYTES, self.m.limits["max_batch_bytes"]):
            return "oversized"
        prev = 0
        for it in b.items:
            if it.request_id <= prev:
                return "malformed"
            prev = it.request_id
            if self.op_reason(it.op):
                return "malformed"  # SPEC 14.6: any invalid item operation, a too long value included
        return None

    def signature_reason(self, msg) -> str | None:
        # Each request or bundle is checked on arrival and again inside proposals (and forwarded
        # copies arrive too): verify the signature of the exact signed bytes once.
        if len(msg.signature) != 64:
            return "bad_signature"
        key = sha256(encode(msg))
        if key not in self._req_ok:
            if not message_sig_ok(msg.client_key, self.m.network_id, msg):
                return "bad_signature"
            if len(self._req_ok) > 200000:
                self._req_ok.clear()
            self._req_ok.add(key)
        return None


def client_destination(client_key: bytes) -> str:
    return "client:" + client_key.hex()


def build_compact(decision, dest: str, qc=None, paths: list | None = None):
    """Compact decision of `decision` for destination `dest` (None if it has no such leaf).

    `paths`: the decision's audit paths if the caller has them (see `audit_paths`)."""
    for i, o in enumerate(decision.outputs):
        if o.destination == dest:
            if paths is None:
                paths = audit_paths(decision)
            return codec.CompactDecision(header=decision.header, leaf=o, leaf_index=i,
                                         leaf_count=len(decision.outputs), proof=paths[i],
                                         qc=qc if qc is not None else decision.qc)
    return None


def audit_paths(decision) -> list:
    return merkle.proofs([encode(o) for o in decision.outputs])[1]
