"""The fast paths added for performance give the same results as the plain ones: signing bodies,
semantic decode checks, lazy dedup pruning, write coalescing, the leader's wake timer, reply caches."""

from __future__ import annotations

import asyncio
import os

import pytest

from impl_a import heraclius_pb2 as pb
from impl_a.codec import decode, encode
from impl_a.crypto import SigningKey
from impl_a.errors import RemoteViolation
from impl_a.queues import QueueServer
from impl_a.rsm import WINDOW, Execution, State
from impl_a.storage import Storage, WriteBehind
from impl_a.transport import LinkClosed, accept, connect
from impl_a.verify import body_without, message_signature_ok, sign_message

from .simnet import SimNet

NET2 = (("c0", "coordinator"), ("s0", "shard"))


def _slow_body(msg, field):
    copy = type(msg)()
    copy.CopyFrom(msg)
    copy.ClearField(field)
    return encode(copy)


def _signed_messages():
    r = os.urandom
    req = pb.ClientRequest(client_key=r(32), request_id=2**40 + 7, cluster_id="c0",
                           op=pb.Operation(kind=pb.OP_KIND_PUT, key=b"k", value=r(300)), signature=r(64))
    header = pb.DecisionHeader(cluster_id="c0", height=3, parent_hash=r(32), inputs_hash=r(32), outputs_root=r(32))
    prop = pb.Proposal(cluster_id="c0", view=2, height=3, leader_id="c0-n2", header=header,
                       batch=pb.Batch(inputs=[pb.Input(client=req)] * 50), signature=r(64))
    prep = pb.Prepare(cluster_id="c0", view=2, height=3, digest=r(32), node_id="c0-n1", signature=r(64))
    vc = pb.ViewChange(cluster_id="c0", new_view=9, node_id="c0-n3", height=4, signature=r(64))
    return [(req, "signature"), (prop, "signature"), (prep, "signature"), (vc, "signature"),
            (pb.Prepare(cluster_id="c0", view=1, height=1, digest=r(32), node_id="x"), "signature"),
            (pb.Commit(cluster_id="c0", view=1, height=1, digest=r(32), node_id="x", decision_signature=r(64)),
             "decision_signature")]


def test_signing_body_matches_a_copy_without_the_field():
    for msg, field in _signed_messages():
        assert body_without(msg, field) == _slow_body(msg, field)


def test_signatures_still_verify_and_tampering_is_caught():
    key = SigningKey(bytes(range(32)))
    p = pb.Prepare(cluster_id="c0", view=1, height=5, digest=bytes(32), node_id="c0-n0")
    sign_message(key, "prepare", "net", p)
    assert message_signature_ok(key.public, "prepare", "net", p)
    p.height = 6
    assert not message_signature_ok(key.public, "prepare", "net", p)


def _proposal_with_op_kind(kind_byte: int) -> bytes:
    """A canonical Proposal whose one client request has operation kind `kind_byte` (raw)."""
    req = pb.ClientRequest(client_key=bytes(32), request_id=1, cluster_id="c0",
                           op=pb.Operation(kind=pb.OP_KIND_GET, key=b"k"), signature=bytes(64))
    msg = pb.PeerMessage(proposal=pb.Proposal(cluster_id="c0", view=0, height=1, leader_id="c0-n0",
                                              batch=pb.Batch(inputs=[pb.Input(client=req)])))
    data = encode(msg)
    op = encode(req.op)
    assert data.count(op) == 1 and op[0] == 0x08  # Operation starts with field 1 (kind), varint
    return data.replace(op, bytes([0x08, kind_byte]) + op[2:])


def test_nested_enum_and_oneof_checks_still_reject():
    assert decode(pb.PeerMessage, _proposal_with_op_kind(pb.OP_KIND_PUT)).proposal.batch.inputs[0].client.op.kind \
        == pb.OP_KIND_PUT
    with pytest.raises(RemoteViolation) as exc:
        decode(pb.PeerMessage, _proposal_with_op_kind(0x7F))
    assert exc.value.reason == "non_canonical"
    empty_input = encode(pb.PeerMessage(proposal=pb.Proposal(cluster_id="c0", batch=pb.Batch(inputs=[pb.Input()]))))
    with pytest.raises(RemoteViolation) as exc:
        decode(pb.PeerMessage, empty_input)
    assert exc.value.reason == "non_canonical"


def test_dedup_prunes_lazily_but_decides_the_same(tmp_path):
    net = SimNet(tmp_path, clusters=NET2)
    state = State(net.m, "c0")
    key = next(iter(net.m.clients))
    base = 10**12
    accepted = []
    for start in range(0, WINDOW + 9000, 3000):  # the floor moves past many accepted ids
        ex = Execution(state, 1)
        for rid in range(base + start, base + start + 3000, 7):
            ex._client(key, rid, pb.Operation(kind=pb.OP_KIND_GET, key=b"k"))
            accepted.append(rid)
        ex.apply()
    max_id = max(accepted)
    floor = max_id - WINDOW
    assert state.live_ids(key) == {i for i in accepted if i > floor}
    assert state.request_done(key, accepted[0]) and state.request_done(key, floor)
    assert state.request_done(key, accepted[-1]) and not state.request_done(key, accepted[-1] - 1)
    ex = Execution(state, 2)
    ex._client(key, accepted[5], pb.Operation(kind=pb.OP_KIND_GET, key=b"k"))
    assert not ex.out  # below the floor: skipped, exactly as before


def test_leader_does_not_arm_a_wake_while_its_proposal_is_in_flight(tmp_path):
    net = SimNet(tmp_path, clusters=NET2)
    leader = net.nodes["c0-n0"].replica
    for nid in ("c0-n1", "c0-n2", "c0-n3"):  # the followers hear nothing: the first proposal stays in flight
        net.crash(nid)
    reqs = [net.request(pb.OP_KIND_GET, b"k%d" % i) for i in range(3)]
    net.submit(reqs[0], "c0-n0")
    net.run(20)
    assert leader.view in leader.accepted  # proposed, not decided
    net.submit(reqs[1], "c0-n0")
    assert leader.batch_since is not None
    assert leader.wake_in() is None


async def _link_pair(max_message=1 << 20):
    static_a, static_b = os.urandom(32), os.urandom(32)
    hello = pb.Hello(protocol_version=1, network_id="net")
    accepted: asyncio.Future = asyncio.get_running_loop().create_future()

    async def on_conn(reader, writer):
        accepted.set_result(await accept(reader, writer, "net", static_b, hello, max_message))

    server = await asyncio.start_server(on_conn, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    from impl_a.crypto import x25519_public

    a = await connect("127.0.0.1", port, "net", static_a, hello, x25519_public(static_b), max_message, timeout=5)
    b = await asyncio.wait_for(accepted, 5)
    return server, a, b


def test_messages_queued_in_one_turn_leave_in_one_write_and_arrive_in_order():
    async def run():
        server, a, b = await _link_pair()
        writes = []
        real_write = a.writer.write
        a.writer.write = lambda data: (writes.append(len(data)), real_write(data))
        msgs = [os.urandom(n) for n in (1, 100, 70000, 3, 200000)]  # some span several Noise payloads
        for m in msgs:
            a.send_nowait(m)
        await a.drain()
        got = [await asyncio.wait_for(b.recv_bytes(), 5) for _ in msgs]
        assert got == msgs
        assert len(writes) == 1
        a.close()
        with pytest.raises(LinkClosed):
            a.send_nowait(b"late")
        b.close()
        server.close()
    asyncio.run(asyncio.wait_for(run(), 20))


def test_client_reply_bytes_are_built_once_and_flushed_before_serving(tmp_path):
    net = SimNet(tmp_path, clusters=NET2)
    r = net.request(pb.OP_KIND_PUT, b"a", b"1")
    net.submit(r, "c0-n0")
    net.run(400)
    node = net.nodes["c0-n1"]
    h = node.replica.client_index[(r.client_key, r.request_id)]
    dest = "client:" + r.client_key.hex()
    staged = WriteBehind(Storage(tmp_path / "extra"))
    node.replica.store, real = staged, node.replica.store
    try:
        server = QueueServer(node.replica)
        d = pb.Decision()
        d.ParseFromString(real.decision(h))
        staged.stage([(h, encode(d))], [])
        server.remember(d)
        first = server.client_reply(h, dest)
        assert staged.store.decision(h) == encode(d)  # durable before the answer was handed out
        assert server.client_reply(h, dest) is first
        reply = decode(pb.ClientReply, first)
        assert [x.request_id for x in reply.answer.leaf.responses] == [r.request_id]
        assert server.client_reply(h, "client:" + "00" * 32) is None
    finally:
        node.replica.store = real
        staged.close()


class _DribbleReader:
    """A stream reader that hands out a few bytes per read, splitting frames anywhere."""

    def __init__(self, data: bytes, step: int):
        self.data, self.step = data, step

    async def read(self, n: int) -> bytes:
        out, self.data = self.data[:min(n, self.step)], self.data[min(n, self.step):]
        return out


def test_frames_split_anywhere_are_reassembled_and_a_zero_frame_closes():
    from impl_a.noise import CipherState
    from impl_a.transport import Link, _frame, frame_message, split_stream

    key = os.urandom(32)
    msgs = [os.urandom(n) for n in (5, 1, 66000, 40)]
    tx = CipherState(key)
    stream = b"".join(_frame(tx.encrypt_with_ad(b"", c)) for c in split_stream(b"".join(map(frame_message, msgs))))

    async def read_all(data: bytes, step: int, count: int):
        link = Link(_DribbleReader(data, step), None, CipherState(os.urandom(32)), CipherState(key), b"",
                    pb.Hello(), 1 << 20)
        return [await link.recv_bytes() for _ in range(count)]

    for step in (1, 3, 70000):
        assert asyncio.run(read_all(stream, step, len(msgs))) == msgs
    with pytest.raises(LinkClosed) as exc:
        asyncio.run(read_all(b"\x00\x00", 1, 1))
    assert exc.value.reason == "malformed"
    with pytest.raises(LinkClosed) as exc:
        asyncio.run(read_all(stream[:-1], 7, len(msgs)))  # a truncated frame: malformed (errata AD-2)
    assert exc.value.reason == "malformed"
    with pytest.raises(LinkClosed) as exc:
        first = 2 + int.from_bytes(stream[:2], "big")
        asyncio.run(read_all(stream[:first], 5, len(msgs)))  # a close between frames: ordinary
    assert exc.value.reason is None


def test_requests_arriving_together_are_forwarded_in_one_message(tmp_path):
    net = SimNet(tmp_path, clusters=NET2)
    follower = net.nodes["c0-n1"].replica
    reqs = [net.request(pb.OP_KIND_GET, b"k%d" % i) for i in range(5)]
    follower.actions.clear()
    follower.on_client_requests(reqs + [reqs[2]])
    sends = [a for a in follower.actions if a[0] == "send"]
    assert len(sends) == 1 and sends[0][1] == follower.leader
    assert list(sends[0][2].forward.requests) == reqs
    follower.actions.clear()
    follower.on_client_requests(reqs[:2])  # already pooled: nothing new to forward
    assert not [a for a in follower.actions if a[0] == "send"]
