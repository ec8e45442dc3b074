"""Member signatures over a header are verified once per node: different quorums of the same
header's signatures reuse the verdicts, while a signature not seen before (valid or not) is
always verified."""

from impl_b import checks, codec, devnet
from impl_b.checks import Checker, decision_bytes
from impl_b.crypto import Signer
from impl_b.manifest import validate

DOC, SECRETS = devnet.build({"c0": "coordinator", "s0": "shard"}, ports=False)
M = validate(DOC)
NODES = ["c0-n0", "c0-n1", "c0-n2", "c0-n3"]


def _header(h: int):
    return codec.DecisionHeader(cluster_id="c0", height=h, parent_hash=b"\x01" * 32, inputs_hash=bytes([h]) * 32,
                                outputs_root=b"\x02" * 32)


def _sig(node: str, header) -> bytes:
    return Signer(SECRETS[node]["ed25519"]).sign(decision_bytes(M.network_id, header))


def _qc(pairs):
    return codec.QuorumCert(signatures=[codec.NodeSignature(node_id=n, signature=s) for n, s in pairs])


def test_overlapping_quorums_of_one_header_verify_each_signature_once(monkeypatch):
    calls = []
    real = checks.verify
    monkeypatch.setattr(checks, "verify", lambda pk, msg, sig: calls.append(sig) or real(pk, msg, sig))
    chk = Checker(M)
    h = _header(1)
    sig = {n: _sig(n, h) for n in NODES}
    assert chk.qc_reason(h, _qc([(n, sig[n]) for n in NODES[:3]])) is None
    assert len(calls) == 3
    assert chk.qc_reason(h, _qc([(n, sig[n]) for n in NODES[1:]])) is None
    assert calls[3:] == [sig["c0-n3"]]  # only the signature not verified before
    # A forged signature of a member whose real one is cached is still verified, and rejected.
    forged = bytes(64)
    assert chk.qc_reason(h, _qc([("c0-n0", forged), ("c0-n1", sig["c0-n1"]), ("c0-n2", sig["c0-n2"])])) == "bad_qc"
    assert calls[4:] == [forged]
    # A valid signature over another header is no signature over this one.
    other = _header(2)
    wrong = _qc([("c0-n0", _sig("c0-n0", other)), ("c0-n1", sig["c0-n1"]), ("c0-n2", sig["c0-n2"])])
    assert chk.qc_reason(h, wrong) == "bad_qc"
    assert len(calls) == 6
    # The same signatures for the other header are not taken from the first header's cache.
    assert chk.qc_reason(other, _qc([("c0-n1", sig["c0-n1"]), ("c0-n2", sig["c0-n2"]),
                                     ("c0-n3", sig["c0-n3"])])) == "bad_qc"
    assert len(calls) == 7


def test_member_signature_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(Checker, "MEMBER_SIGS_KEPT", 5)
    chk = Checker(M)
    for height in range(1, 5):
        h = _header(height)
        assert chk.qc_reason(h, _qc([(n, _sig(n, h)) for n in NODES[:3]])) is None
    assert len(chk._member_sig_ok) == 5
