"""Unit tests: canonical codec, strict Ed25519, Merkle proofs, Noise sessions, key files."""

import os

import pytest

from impl_b import codec, crypto, merkle
from impl_b.codec import DecodeError, decode, encode
from impl_b.noise import CipherState
from impl_b.session import LinkError, Session, StreamParser, client_hello_checker

REQ = codec.ClientRequest(client_key=b"\x01" * 32, request_id=300, cluster_id="c0",
                          op=codec.Operation(kind=2, key=b"k", value=b"v"), signature=b"\x02" * 64)


def test_round_trip_and_known_bytes():
    data = encode(REQ)
    assert data[:2] == b"\x0a\x20" and decode("ClientRequest", data) == REQ
    empty_sub = codec.PeerMessage(heartbeat=codec.Heartbeat())
    assert encode(empty_sub) == b"\x22\x00"
    assert decode("PeerMessage", b"\x22\x00").heartbeat == codec.Heartbeat()


@pytest.mark.parametrize("bad, reason", [
    (b"\x10\x00", "non_canonical"),                 # default value written
    (b"\x10\x81\x00", "non_canonical"),             # non-minimal varint
    (b"\x1a\x01a\x10\x01", "non_canonical"),        # out of order
    (b"\x10\x01\x10\x02", "non_canonical"),         # field twice
    (b"\x48\x01", "non_canonical"),                 # unknown field 9
    (b"\x11" + b"\x00" * 8, "non_canonical"),       # wrong wire type
    (b"\x1a\x05ab", "malformed"),                   # length past the end
    (b"\x1a\x02\xff\xfe", "non_canonical"),         # invalid UTF-8
    (b"\x10" + b"\xff" * 10 + b"\x01", "non_canonical"),  # varint too long
    (b"\x10\x80", "malformed"),                     # truncated varint
])
def test_non_canonical_and_malformed_rejected(bad, reason):
    with pytest.raises(DecodeError) as e:
        decode("ClientRequest", bad)
    assert e.value.reason == reason


def test_oneof_and_enum_rules():
    with pytest.raises(DecodeError):
        decode("Input", b"")
    with pytest.raises(DecodeError):
        decode("Input", encode(codec.Input(client=REQ)) + encode(codec.Input(remote=codec.CompactDecision())))
    with pytest.raises(DecodeError):
        decode("Operation", b"\x08\x07")
    with pytest.raises(ValueError):
        encode(codec.Input())


def test_strict_ed25519_rejects_what_openssl_accepts():
    s = crypto.Signer(b"\x07" * 32)
    sig = s.sign(b"msg")
    assert crypto.verify(s.public, b"msg", sig)
    assert not crypto.verify(s.public, b"msg!", sig)
    high_s = sig[:32] + (int.from_bytes(sig[32:], "little") + crypto.L).to_bytes(32, "little")
    assert not crypto.verify(s.public, b"msg", high_s)
    small = bytes.fromhex("0100000000000000000000000000000000000000000000000000000000000000")
    assert not crypto.verify(small, b"", small + b"\x00" * 32)  # the identity as A and R


def test_merkle_proofs_every_size():
    for n in range(1, 20):
        leaves = [bytes([i]) * i for i in range(n)]
        root, paths = merkle.proofs(leaves)
        assert root == merkle.root(leaves)
        for i in range(n):
            lh = merkle.leaf_hash(leaves[i])
            assert merkle.verify_inclusion(lh, i, n, paths[i], root)
            assert not merkle.verify_inclusion(merkle.leaf_hash(b"other"), i, n, paths[i], root)
            assert not merkle.verify_inclusion(lh, i, n, paths[i] + [root], root)
            if paths[i]:
                assert not merkle.verify_inclusion(lh, i, n, paths[i][:-1], root)


def _pair():
    net = "test-net"
    resp = Session(False, os.urandom(32), net, "n1", client_hello_checker(net), 1 << 20)
    init = Session(True, os.urandom(32), net, "", lambda hello, rs: hello.node_id, 1 << 20)
    while not (init.ready and resp.ready):
        resp.feed(bytes(init.out))
        init.out.clear()
        init.feed(bytes(resp.out))
        resp.out.clear()
    return init, resp


def test_session_large_messages_split_and_tamper_detected():
    init, resp = _pair()
    big = os.urandom(200_000)
    init.send([big, b"x"])
    wire = bytes(init.out)
    init.out.clear()
    assert resp.feed(wire) == [big, b"x"]
    init.send([b"hello"])
    bad = bytearray(init.out)
    bad[-1] ^= 1
    with pytest.raises(LinkError) as e:
        resp.feed(bytes(bad))
    assert e.value.reason == "decrypt_failed"


def test_stream_rejects_oversized_prefix_without_body():
    p = StreamParser(100)
    with pytest.raises(LinkError) as e:
        p.feed((101).to_bytes(4, "big"))
    assert e.value.reason == "oversized"


def test_rekey_after_65536_messages_both_sides():
    tx, rx = CipherState(b"\x05" * 32, auto_rekey=True), CipherState(b"\x05" * 32, auto_rekey=True)
    tx.n = rx.n = 65534
    k0 = tx.k
    for i in range(3):
        assert rx.decrypt(b"", tx.encrypt(b"", bytes([i]))) == bytes([i])
    assert tx.k != k0 and tx.k == rx.k and tx.n == 65537


def test_key_file_rules(tmp_path):
    p = tmp_path / "k.key"
    crypto.write_key_file(str(p), b"\x09" * 32)
    assert crypto.read_key_file(str(p)) == b"\x09" * 32
    os.chmod(p, 0o644)
    with pytest.raises(crypto.KeyFileError):
        crypto.read_key_file(str(p))
    os.chmod(p, 0o600)
    p.write_text("AB" * 32 + "\n")
    with pytest.raises(crypto.KeyFileError):
        crypto.read_key_file(str(p))
    assert "09" * 32 not in repr(crypto.Signer(b"\x09" * 32))
