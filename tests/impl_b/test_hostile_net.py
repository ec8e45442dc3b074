"""Hostile input against a real 2 x 4-node impl_b network: the cluster keeps deciding through
zero-key handshakes on every port, one client flooding a follower (SPEC 12.5 / 13.1 fairness),
and the client library treats a TOO_LARGE as final once f + 1 members agree (14.5)."""

import os
import threading
import time

import pytest

from impl_b import codec
from impl_b.checks import sign_message
from impl_b.client import Client, ClientFailure, RequestIds
from impl_b.codec import encode
from impl_b.crypto import Signer, read_key_file
from impl_b.schema import OP_PUT

from .hostile import ZERO_E, client_session, closed_by_peer, raw, read_replies, send_app
from .netproc import Network


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    n = Network(tmp_path_factory.mktemp("impl_b_hnet"), clients=("alice", "bob"))
    try:
        n.start_all()
        yield n
    finally:
        n.close()


def _client(net, name, timeout_ms=20000):
    signer = Signer(read_key_file(os.path.join(net.root, "keys", f"{name}.key")))
    return Client(net.m, signer, timeout_ms=timeout_ms, ids=RequestIds())


def test_zero_keys_on_every_port_then_the_cluster_still_decides(net):
    for nid, info in net.m.nodes.items():
        for port in (info.peer_port, info.client_port):
            s = raw(port, ZERO_E)
            assert closed_by_peer(s), (nid, port)
            s.close()
    assert all(p.poll() is None for p in net.procs.values())
    c = _client(net, "bob")
    try:
        assert c.put(b"after-zero", b"1").height >= 1
    finally:
        c.close()
    for nid in net.m.nodes:
        assert net.status(nid)["rejected"].get("handshake_failed", 0) >= 2


def test_one_client_flooding_a_follower_does_not_stop_the_others(net):
    alice = Signer(read_key_file(os.path.join(net.root, "keys", "alice.key")))
    follower = "c0-n1"
    info = net.m.nodes[follower]
    base = int(time.time() * 1_000_000)
    msgs = []
    for i in range(3000):
        r = codec.ClientRequest(client_key=alice.public, cluster_id="c0", request_id=base + i,
                                op=codec.Operation(kind=OP_PUT, key=b"flood%d" % (i % 64), value=b"x" * 200))
        sign_message(alice, net.m.network_id, r)
        msgs.append(encode(codec.ClientMessage(submit=r)))
    s, sess = client_session(info.client_port, net.m.network_id)
    done = threading.Event()

    def flood():
        for i in range(0, len(msgs), 100):
            send_app(s, sess, msgs[i:i + 100])
        done.set()

    t = threading.Thread(target=flood, daemon=True)
    t.start()
    bob = _client(net, "bob")
    slow = []
    try:
        for i in range(8):
            t0 = time.monotonic()
            assert bob.put(b"bob%d" % i, b"v").height >= 1
            slow.append(time.monotonic() - t0)
            t1 = time.monotonic()
            assert net.status(follower)["node_id"] == follower  # /status answers while busy
            assert time.monotonic() - t1 < 5
    finally:
        bob.close()
    t.join(timeout=60)
    assert max(slow) < 15, slow
    replies = read_replies(s, sess, 1, timeout=20)
    assert replies  # the flooder is answered too (decisions or OVERLOADED)
    s.close()
    h = net.status("c0-n0")["height"]
    assert net.wait_until(lambda: net.status(follower)["height"] >= h, timeout=30)


def test_too_large_is_final_once_f_plus_1_members_agree(net):
    c = _client(net, "bob", timeout_ms=30000)
    t0 = time.monotonic()
    try:
        with pytest.raises(ClientFailure) as e:
            c.put(b"k" * (net.m.limits["max_key_bytes"] + 1), b"v")
    finally:
        c.close()
    assert e.value.final_code == 5
    assert len(e.value.failures) == 2  # f + 1 = 2 members answered TOO_LARGE
    assert time.monotonic() - t0 < 10
