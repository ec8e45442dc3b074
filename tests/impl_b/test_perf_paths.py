"""The fast paths of impl_b give the same results as the plain ones: grouped durable writes, the
binary in-flight record, signature bodies cut from the cached encoding, the offset-based frame
parsers and the generated codec."""

import contextlib
import json
import os

from impl_b import codec, devnet
from impl_b.actions import Persist, Reject, Send
from impl_b.checks import SIG_FIELD, body_bytes, message_sig_ok, sign_message
from impl_b.codec import DecodeError, decode, encode
from impl_b.crypto import Signer
from impl_b.logs import NodeLog
from impl_b.manifest import validate
from impl_b.runtime import Runtime
from impl_b.schema import MESSAGES
from impl_b.session import Session, StreamParser, client_hello_checker, frame_stream
from impl_b.storage import Store, _inflight_from, _seal
from tests.impl_b.iostub import LinkControlStub

DOC, SECRETS = devnet.build({"c0": "coordinator", "s0": "shard"}, ports=False)
M = validate(DOC)
LEADER = Signer(SECRETS["c0-n0"]["ed25519"])
CLIENT = Signer(SECRETS["alice"]["ed25519"])


def _request(rid: int, key: bytes = b"k"):
    req = codec.ClientRequest(client_key=CLIENT.public, request_id=rid, cluster_id="c0",
                              op=codec.Operation(kind=1, key=key))
    sign_message(CLIENT, M.network_id, req)
    return req


def _header(h: int):
    return codec.DecisionHeader(cluster_id="c0", height=h, parent_hash=b"\x00" * 32, inputs_hash=bytes([h]) * 32,
                                outputs_root=b"\x02" * 32)


def _proposal(h: int):
    p = codec.Proposal(cluster_id="c0", view=1, height=h, leader_id="c0-n1", header=_header(h),
                       batch=codec.Batch(inputs=[codec.Input(client=_request(i + 1)) for i in range(3)]))
    sign_message(LEADER, M.network_id, p)
    return p


def _inflight(h: int) -> dict:
    p = _proposal(h)
    prep = codec.Prepare(cluster_id="c0", view=1, height=h, digest=b"\x07" * 32, node_id="c0-n0")
    sign_message(LEADER, M.network_id, prep)
    return {"height": h, "votes": {1: b"\x07" * 32}, "accepted": p,
            "prepared": codec.PreparedCert(proposal=p, prepares=[prep]), "commit": (b"\x07" * 32, b"\x08" * 64, 1)}


class CountingStore:
    """Records each transaction (list of records) the runtime asks for."""

    def __init__(self):
        self.transactions = []

    def persist_all(self, records):
        self.transactions.append([next(iter(r)) for r in records])


class FakeIO(LinkControlStub):
    def __init__(self):
        self.sent = []

    def send_node(self, node, data):
        self.sent.append(node)


def test_runtime_groups_persists_until_the_next_send(tmp_path):
    rt = Runtime(M, "c0-n0", LEADER, CountingStore(), NodeLog("c0-n0", os.devnull, "error"))
    rt.io = FakeIO()
    hb = codec.PeerMessage(heartbeat=codec.Heartbeat(cluster_id="c0", view=0, height=1, leader_id="c0-n0"))
    rt._execute([Persist({"decision": 1}), Reject("stale", "c0-n1", "x"), Persist({"inflight": 2}),
                 Send("c0-n1", hb), Persist({"view": (1, False)}), Send("c0-n2", hb)])
    # The first two records share one transaction (nothing was sent between them); the third
    # is written before the second Send and after the first.
    assert rt.store.transactions == [["decision", "inflight"], ["view"]]
    assert rt.io.sent == ["c0-n1", "c0-n2"]
    assert rt.log.rejected == {"stale": 1}


def test_grouped_decision_and_next_inflight_survive_reopen(tmp_path):
    s = Store(str(tmp_path / "d"))
    hdr = _header(1)
    s.persist_all([{"decision": codec.Decision(header=hdr, batch=codec.Batch())}, {"inflight": _inflight(2)}])
    s.close()
    s = Store(str(tmp_path / "d"))
    _view, _active, decs, inflight, _nv = s.load()
    assert [encode(d.header) for d in decs] == [encode(hdr)]
    want = _inflight(2)
    assert inflight["height"] == 2 and inflight["votes"] == {1: b"\x07" * 32}
    assert encode(inflight["accepted"]) == encode(want["accepted"])
    assert encode(inflight["prepared"]) == encode(want["prepared"])
    assert inflight["commit"] == (b"\x07" * 32, b"\x08" * 64, 1)
    s.close()


def test_inflight_records_of_the_json_layout_still_load():
    want = _inflight(5)
    old = json.dumps({"height": 5, "votes": {"1": "07" * 32}, "accepted": encode(want["accepted"]).hex(),
                      "prepared": encode(want["prepared"]).hex(),
                      "commit": ["07" * 32, "08" * 64, 1]}).encode()
    got = _inflight_from(old)
    assert encode(got["accepted"]) == encode(want["accepted"]) and got["commit"][2] == 1
    assert _seal(old)[16:] == old


def _body_by_clearing(msg) -> bytes:
    f = SIG_FIELD[msg._name]
    copy = decode(msg._name, encode(msg))
    setattr(copy, f, b"")
    return encode(copy)


def test_signature_body_is_the_encoding_without_the_signature_field():
    for name, field in SIG_FIELD.items():
        assert MESSAGES[name][-1][1] == field  # the highest field number, so the tail of the encoding
    p = _proposal(3)
    vc = codec.ViewChange(cluster_id="c0", new_view=2, node_id="c0-n0", height=4)
    sign_message(LEADER, M.network_id, vc)
    for msg in [p, vc, _request(9), p.batch.inputs[0].client]:
        assert body_bytes(msg) == _body_by_clearing(msg)
    raw = encode(p)
    assert message_sig_ok(LEADER.public, M.network_id, p) and p._raw is raw  # cache kept
    p.signature = p.signature[:-1] + bytes([p.signature[-1] ^ 1])
    assert not message_sig_ok(LEADER.public, M.network_id, p)
    long_sig = codec.Prepare(cluster_id="c0", view=1, height=2, digest=b"d" * 32, node_id="c0-n0",
                             signature=b"s" * 300)  # a two-byte length varint
    assert body_bytes(long_sig) == _body_by_clearing(long_sig)


def test_stream_parser_any_split_and_bad_length():
    msgs = [os.urandom(n) for n in (1, 5, 300, 70000, 2)]
    stream = frame_stream(msgs)
    for step in (1, 3, 4096, len(stream)):
        sp = StreamParser(1 << 20)
        got = []
        for i in range(0, len(stream), step):
            got += sp.feed(stream[i:i + step])
        assert got == msgs and not sp.buf
    sp = StreamParser(1 << 20)
    try:
        sp.feed(frame_stream([b"ok"]) + b"\x00\x00\x00\x00")
        raise AssertionError("a zero length must fail")
    except Exception as e:  # LinkError
        assert e.reason == "malformed" and e.partial == [b"ok"]


def test_sessions_deliver_every_message_whatever_the_chunking():
    secret_i, secret_r = os.urandom(32), os.urandom(32)
    for step in (1, 7, 65537, 1 << 22):
        ini = Session(True, secret_i, "net", "", lambda h, rs: "r", 1 << 20)
        res = Session(False, secret_r, "net", "", client_hello_checker("net"), 1 << 20)

        def pump(src, dst, step=step):
            data = bytes(src.out)
            src.out.clear()
            got = []
            for i in range(0, len(data), step):
                got += dst.feed(memoryview(data)[i:i + step])
            return got

        pump(ini, res)
        pump(res, ini)
        pump(ini, res)
        assert ini.ready and res.ready
        msgs = [os.urandom(n) for n in (10, 100000, 3, 65519, 1)]
        ini.send(msgs)
        assert pump(ini, res) == msgs
        assert not res.inbuf


def test_codec_rejections_keep_their_reasons():
    req = encode(_request(3))
    assert encode(decode("ClientRequest", req)) == req
    cases = {
        "malformed": [req[:-1], req[:1] + b"\xff"],  # length past the end, truncated varint
        "non_canonical": [req[:2] + req[34:36] + req[2:34] + req[36:],  # fields out of order
                          b"\x10\x00",  # default value written
                          b"\x10\x80\x01"[:1] + b"\x81\x00",  # non-minimal varint
                          req + b"\x38\x01",  # unknown field 7
                          b"\x1a\x02\xff\xfe",  # invalid UTF-8
                          b"\x08\x01"],  # wrong wire type for bytes
    }
    for reason, datas in cases.items():
        for data in datas:
            try:
                decode("ClientRequest", data)
                raise AssertionError(f"accepted {data.hex()}")
            except DecodeError as e:
                assert e.reason == reason, (data.hex(), e)
    try:
        decode("PeerMessage", b"")
        raise AssertionError("empty oneof accepted")
    except DecodeError as e:
        assert e.reason == "non_canonical"


def _client_reply(rids, kind=1):
    """A ClientReply whose compact decision (signed by a quorum of c0) answers `rids` of alice."""
    from impl_b import merkle
    from impl_b.checks import audit_paths, build_compact, client_destination, decision_bytes

    dest = client_destination(CLIENT.public)
    leaf = codec.OutputLeaf(source_cluster="c0", height=7, destination=dest, seq=3,
                            responses=[codec.ClientResponse(request_id=r, kind=kind, found=True, value=b"v%d" % r,
                                                            shard_id="s0", shard_height=2) for r in rids])
    other = codec.OutputLeaf(source_cluster="c0", height=7, destination="s0", seq=4,
                             calls=[codec.ShardCall(client_key=CLIENT.public, request_id=99,
                                                    op=codec.Operation(kind=1, key=b"k"))])
    outputs = sorted([leaf, other], key=lambda o: o.destination.encode())
    hdr = codec.DecisionHeader(cluster_id="c0", height=7, parent_hash=b"\x01" * 32, inputs_hash=b"\x02" * 32,
                               outputs_root=merkle.root([encode(o) for o in outputs]))
    sigs = [codec.NodeSignature(node_id=n, signature=Signer(SECRETS[n]["ed25519"]).sign(
        decision_bytes(M.network_id, hdr))) for n in ("c0-n0", "c0-n1", "c0-n2")]
    dec = codec.Decision(header=hdr, batch=codec.Batch(), outputs=outputs, qc=codec.QuorumCert(signatures=sigs))
    cd = build_compact(dec, dest, paths=audit_paths(dec))
    return encode(codec.ClientReply(answer=cd))


def test_client_reply_cache_shares_decoding_and_keeps_verdicts():
    from impl_b.client import _OTHER, Client, _ReplyCache

    cache = _ReplyCache(size=4)
    raw = _client_reply([11, 12, 13])
    first, second = cache.decode(raw), cache.decode(bytes(raw))
    assert first is second  # byte-identical replies are decoded once
    c = Client(M, CLIENT, cluster="c0")
    for rid, want in ((12, b"v12"), (13, b"v13")):
        req = codec.ClientRequest(client_key=CLIENT.public, request_id=rid, cluster_id="c0",
                                  op=codec.Operation(kind=1, key=b"k"))
        ans = c._validate_reply(first, req)
        assert ans is not None and ans.value == want
        assert c.validate(first.answer, req).value == want  # same verdict as the uncached check
    missing = codec.ClientRequest(client_key=CLIENT.public, request_id=14, cluster_id="c0",
                                  op=codec.Operation(kind=1, key=b"k"))
    assert c._validate_reply(first, missing) is _OTHER  # valid, but not ours: ignored (SPEC 14.4)
    wrong_kind = codec.ClientRequest(client_key=CLIENT.public, request_id=11, cluster_id="c0",
                                     op=codec.Operation(kind=2, key=b"k", value=b"x"))
    assert c._validate_reply(first, wrong_kind) is None
    tampered = bytearray(raw)
    tampered[tampered.index(b"v11") + 2] ^= 1  # a response value changed: the proof no longer holds
    bad = cache.decode(bytes(tampered))
    req11 = codec.ClientRequest(client_key=CLIENT.public, request_id=11, cluster_id="c0",
                                op=codec.Operation(kind=1, key=b"k"))
    assert c._validate_reply(bad, req11) is None and c.validate(bad.answer, req11) is None
    for i in range(6):  # bounded
        cache.decode(_client_reply([100 + i]))
    assert len(cache._d) == 4


def _replica(node: str):
    from impl_b.checks import Checker
    from impl_b.consensus import Replica

    return Replica(M, node, Signer(SECRETS[node]["ed25519"]), Checker(M), now=0)


def test_follower_groups_forwards_when_asked():
    r = _replica("c0-n1")  # leader of view 0 is c0-n0
    assert r.on_request(_request(1), 0) and r.on_request(_request(2), 0)  # default: one Forward each
    r.group_forwards = True
    assert r.on_request(_request(3), 1) == [] and r.on_request(_request(4), 1) == []
    acts = r.flush_forwards()
    assert [(a.to, [q.request_id for q in a.msg.forward.requests]) for a in acts] == [("c0-n0", [3, 4])]
    assert r.flush_forwards() == []


def test_leader_with_a_proposal_in_flight_has_no_proposal_due():
    r = _replica("c0-n0")
    acts = r.on_request(_request(1), 0)
    assert r.proposal_due() == 2 and not [a for a in acts if isinstance(a, Send)]  # batch_wait = 2 ms
    acts = r.on_tick(2)
    assert [a.to for a in acts if isinstance(a, Send) and a.msg.proposal is not None] == ["c0-n1", "c0-n2", "c0-n3"]
    r.on_request(_request(2), 3)
    assert r.accepted is not None and r.batch_due is not None
    assert r.proposal_due() is None  # the runtime must not wake every millisecond for it


def test_remote_input_is_due_at_once_but_proposed_on_tick():
    r = _replica("s0-n0")
    cd = codec.CompactDecision(header=_header(1), leaf=codec.OutputLeaf(source_cluster="c0", height=1,
                                                                          destination="s0", seq=1))
    assert r.on_remote(cd, 5) == [] and r.proposal_due() == 5


def test_io_loop_closes_only_links_stuck_in_their_handshake(monkeypatch):
    import socket
    import time

    from impl_b import ioloop
    from impl_b.session import node_key_checker

    monkeypatch.setattr(ioloop, "HANDSHAKE_DEADLINE", 0.4)
    rejects = []
    socks = []
    for _ in range(2):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        socks.append(s)
    loop = ioloop.IOLoop(M, "c0-n0", SECRETS["c0-n0"]["x25519"], [], on_peer=lambda *a: None,
                         on_client=lambda *a: None, on_reject=lambda *a: rejects.append(a[0]),
                         on_link=lambda *a: None, peer_sock=socks[0], client_sock=socks[1])
    loop.start()
    silent = good = None
    try:
        port = socks[1].getsockname()[1]
        silent = socket.create_connection(("127.0.0.1", port), timeout=5)
        good = socket.create_connection(("127.0.0.1", port), timeout=5)
        sess = Session(True, os.urandom(32), M.network_id, "", node_key_checker(M, "c0-n0"), 1 << 20)
        while not sess.ready:
            good.sendall(bytes(sess.out))
            sess.out.clear()
            sess.feed(good.recv(65536))
        good.sendall(bytes(sess.out))
        sess.out.clear()
        assert silent.recv(10) == b""  # closed by the server after the deadline
        assert "handshake_failed" in rejects
        time.sleep(0.6)  # well past the deadline: the established link stays
        sess.send([encode(codec.ClientMessage(submit=_request(1)))])
        good.sendall(bytes(sess.out))
        good.settimeout(0.3)
        with contextlib.suppress(TimeoutError):  # no answer is expected; a close would be b""
            assert good.recv(10) != b""
        assert rejects.count("handshake_failed") == 1 and len(loop.handshaking) == 0
    finally:
        loop.stop()
        loop.join(timeout=5)
        for s in (silent, good, *socks):
            if s is not None:
                s.close()
