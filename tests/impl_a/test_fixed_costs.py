"""Fixed costs per decision (issue 8, round 2): QC signatures verified once per header, a node's own
decision signature not re-verified, link backlog accounting. Verdicts must stay exactly SPEC 9's."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

from impl_a import consensus, verify
from impl_a import heraclius_pb2 as pb
from impl_a.errors import RemoteViolation
from impl_a.verify import QcCache, check_qc, decision_signing_bytes

from .simnet import SimNet
from .test_perf_paths import _link_pair

NET2 = (("c0", "coordinator"), ("s0", "shard"))


@pytest.fixture
def counted_verify(monkeypatch):
    calls = []
    real = verify.ed25519_verify

    def counting(public, msg, sig):
        calls.append(public)
        return real(public, msg, sig)

    monkeypatch.setattr(verify, "ed25519_verify", counting)
    return calls


def _qc(net: SimNet, header: pb.DecisionHeader, members: list[str], bad: str | None = None) -> pb.QuorumCert:
    msg = decision_signing_bytes(net.m.network_id, header)
    sigs = []
    for nid in members:
        sig = net.nodes[nid].replica.key.sign(msg) if nid != bad else os.urandom(64)
        sigs.append(pb.NodeSignature(node_id=nid, signature=sig))
    return pb.QuorumCert(signatures=sigs)


def test_each_member_signature_over_a_header_is_verified_once(tmp_path, counted_verify):
    net = SimNet(tmp_path, clusters=NET2)
    header = pb.DecisionHeader(cluster_id="s0", height=7, parent_hash=bytes(32), inputs_hash=b"\x01" * 32,
                               outputs_root=b"\x02" * 32)
    cache = QcCache()
    cache.check(net.m, header, _qc(net, header, ["s0-n0", "s0-n1", "s0-n2"]))
    assert len(counted_verify) == 3
    other = _qc(net, header, ["s0-n0", "s0-n1", "s0-n3"])  # another member's QC for the same header
    cache.check(net.m, header, other)
    assert len(counted_verify) == 4  # only s0-n3's signature was new
    cache.check(net.m, header, other)
    assert len(counted_verify) == 4
    # A known-good signature does not excuse a bad one, a wrong order, too few signatures or a stranger.
    with pytest.raises(RemoteViolation) as exc:
        cache.check(net.m, header, _qc(net, header, ["s0-n0", "s0-n1", "s0-n2"], bad="s0-n2"))
    assert exc.value.reason == "bad_qc" and "s0-n2" in exc.value.detail
    for members in (["s0-n1", "s0-n0", "s0-n2"], ["s0-n0", "s0-n1"], ["c0-n0", "s0-n0", "s0-n1"]):
        with pytest.raises(RemoteViolation) as exc:
            cache.check(net.m, header, _qc(net, header, members))
        assert exc.value.reason == "bad_qc"
    # Signatures valid over one header say nothing about another.
    header2 = pb.DecisionHeader(cluster_id="s0", height=8, parent_hash=bytes(32), inputs_hash=b"\x01" * 32,
                                outputs_root=b"\x02" * 32)
    wrong = _qc(net, header, ["s0-n0", "s0-n1", "s0-n2"])
    with pytest.raises(RemoteViolation):
        cache.check(net.m, header2, wrong)
    with pytest.raises(RemoteViolation):
        check_qc(net.m, header2, wrong)


def test_a_node_does_not_verify_its_own_decision_signature(tmp_path, monkeypatch):
    net = SimNet(tmp_path, clusters=NET2)
    own_checks = []
    real = consensus.ed25519_verify

    def watching(public, msg, sig):
        me = sys._getframe(1).f_locals["self"]
        if public == me.key.public:
            own_checks.append(me.me)
        return real(public, msg, sig)

    monkeypatch.setattr(consensus, "ed25519_verify", watching)
    reqs = [net.request(pb.OP_KIND_PUT, b"k%d" % i, b"v") for i in range(3)]
    for r in reqs:
        net.submit(r, "c0-n1")
    net.run(1500)
    assert all(net.answer(r, "c0-n2") is not None for r in reqs)
    assert own_checks == []
    for nid in ("c0-n0", "c0-n3", "s0-n1"):  # every QC in the logs is still a valid one
        r = net.nodes[nid].replica
        assert r.height >= 1
        for h in range(1, r.height + 1):
            d = pb.Decision()
            d.ParseFromString(r.store.decision(h))
            check_qc(net.m, d.header, d.qc)


def test_link_backlog_counts_unsent_bytes():
    async def run():
        server, a, b = await _link_pair()
        assert a.backlog() == 0
        a.send_nowait(b"x" * 1000)
        a.send_nowait(b"y" * 10)
        assert a.backlog() == 1018  # two messages and their length prefixes, not yet written
        await asyncio.sleep(0)  # the write happens at the end of this loop turn
        await a.drain()
        assert a.backlog() == 0
        assert await asyncio.wait_for(b.recv_bytes(), 5) == b"x" * 1000
        a.close()
        b.close()
        server.close()
    asyncio.run(asyncio.wait_for(run(), 20))
