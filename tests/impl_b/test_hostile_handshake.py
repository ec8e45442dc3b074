"""SPEC 13 / 13.1 against a real impl_b node process: invalid handshake messages (zero-point
ephemeral keys, wrong sizes) close only their connection, are counted `handshake_failed`, and the
node keeps serving every other connection."""

import contextlib

import pytest

from impl_b import noise
from impl_b.session import LinkError, Session, client_hello_checker

from .hostile import ZERO_E, client_session, closed_by_peer, raw
from .netproc import Network

# RFC 7748 / libsodium small-order points (and a non-canonical encoding of one).
SMALL_ORDER = [
    bytes(32),
    b"\x01" + bytes(31),
    bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    bytes.fromhex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
    bytes.fromhex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    bytes.fromhex("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
]


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    net = Network(tmp_path_factory.mktemp("impl_b_hs"))
    try:
        net.start_fresh(["c0-n0"])
        yield net
    finally:
        net.close()


def _rejected(net, reason):
    return net.status("c0-n0")["rejected"].get(reason, 0)


@pytest.mark.parametrize("port_kind", ["peer", "client"])
def test_zero_ephemeral_key_closes_only_that_connection(node, port_kind):
    info = node.m.nodes["c0-n0"]
    port = info.peer_port if port_kind == "peer" else info.client_port
    before = _rejected(node, "handshake_failed")
    bystander, _sess = client_session(info.client_port, node.m.network_id)  # an established session
    for _ in range(3):
        s = raw(port, ZERO_E)
        assert closed_by_peer(s)
        s.close()
    assert node.procs["c0-n0"].poll() is None, "the node died"
    assert node.admin("c0-n0", "/health") == (200, b"ok\n")
    assert node.wait_until(lambda: _rejected(node, "handshake_failed") >= before + 3, timeout=10)
    # Other connections live on: a fresh client handshake works and the old session is still open.
    s2, _ = client_session(info.client_port, node.m.network_id)
    s2.close()
    bystander.settimeout(0.3)
    with contextlib.suppress(TimeoutError):  # still open: nothing to read, no EOF
        assert bystander.recv(1) != b""
    bystander.close()


@pytest.mark.parametrize("frame", [
    b"\x00\x1f" + b"\x07" * 31,                  # message 1 shorter than 32
    b"\x00\x21" + b"\x07" * 33,                  # message 1 longer than 32
    b"\x00\x30" + b"\x09" * 48,
])
def test_wrong_size_message_1_fails_the_handshake(node, frame):
    before = _rejected(node, "handshake_failed")
    s = raw(node.m.nodes["c0-n0"].client_port, frame)
    assert closed_by_peer(s)
    s.close()
    assert node.wait_until(lambda: _rejected(node, "handshake_failed") > before, timeout=10)
    assert node.procs["c0-n0"].poll() is None


@pytest.mark.parametrize("point", SMALL_ORDER)
def test_small_order_points_fail_in_the_session(point):
    """Session level (no I/O): a responder and an initiator both turn a small-order key into a
    LinkError(handshake_failed), never another exception."""
    resp = Session(False, b"\x05" * 32, "n", "node", client_hello_checker("n"), 1 << 20)
    with pytest.raises(LinkError) as e:
        resp.feed(b"\x00\x20" + point)
    assert e.value.reason == "handshake_failed"
    init = Session(True, b"\x06" * 32, "n", "", lambda h, rs: "", 1 << 20)
    msg2 = point + bytes(48 + 16 + 20)
    with pytest.raises(LinkError) as e:
        init.feed(len(msg2).to_bytes(2, "big") + msg2)
    assert e.value.reason == "handshake_failed"


def test_dh_rejects_all_zero_result():
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    with pytest.raises(noise.NoiseError):
        noise._dh(X25519PrivateKey.generate(), bytes(32))
