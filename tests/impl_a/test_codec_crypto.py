"""Codec canonical checks, crypto rules, Merkle, Noise and the generated-module freshness check."""

import pathlib
import tempfile

import pytest

from impl_a import crypto, merkle, noise, proto_gen
from impl_a import heraclius_pb2 as pb
from impl_a.codec import decode, encode
from impl_a.errors import RemoteViolation


def test_generated_module_is_up_to_date():
    with tempfile.TemporaryDirectory() as tmp:
        fresh = proto_gen.generate(pathlib.Path(tmp)).read_bytes()
    assert fresh == proto_gen.TARGET.read_bytes()


def _req():
    return pb.ClientRequest(client_key=b"k" * 32, request_id=7, cluster_id="c0",
                            op=pb.Operation(kind=pb.OP_KIND_PUT, key=b"a", value=b"v"), signature=b"s" * 64)


def test_roundtrip_canonical():
    data = encode(_req())
    assert decode(pb.ClientRequest, data) == _req()


@pytest.mark.parametrize("data,reason", [
    (b"\x10\x87\x00", "non_canonical"),            # non-minimal varint
    (b"\x10\x07\x10\x07", "non_canonical"),        # duplicated field
    (b"\x1a\x02c0\x10\x07", "non_canonical"),      # out of order
    (b"\x10\x00", "non_canonical"),                # default value written
    (b"\x78\x01", "non_canonical"),                # unknown field 15
    (b"\x1a\x02\xff\xfe", "non_canonical"),        # invalid UTF-8
    (b"\x1a\x05c0", "malformed"),                  # length past the end
    (b"\x22\x02\x08\x07", "non_canonical"),        # undeclared enum value in op.kind
])
def test_rejects_non_canonical(data, reason):
    with pytest.raises(RemoteViolation) as exc:
        decode(pb.ClientRequest, data)
    assert exc.value.reason == reason


def test_bool_must_be_one_and_oneof_required():
    with pytest.raises(RemoteViolation):
        decode(pb.ShardResult, b"\x20\x02")
    assert decode(pb.ShardResult, b"\x20\x01").found
    with pytest.raises(RemoteViolation):
        decode(pb.PeerMessage, b"")
    assert decode(pb.PeerMessage, b"\x22\x00").HasField("heartbeat")  # empty member is written


def test_uint32_overflow_rejected():
    with pytest.raises(RemoteViolation):
        decode(pb.Hello, b"\x08\x80\x80\x80\x80\x10")


def test_signing_and_strict_verify():
    key = crypto.SigningKey(bytes(range(32)))
    msg = crypto.signing_bytes("prepare", "net", b"body")
    assert msg == b"heraclius/v1/prepare\x00\x00\x03netbody"
    sig = key.sign(msg)
    assert crypto.ed25519_verify(key.public, msg, sig)
    assert not crypto.ed25519_verify(key.public, msg + b"x", sig)
    high_s = sig[:32] + (int.from_bytes(sig[32:], "little") + crypto.L).to_bytes(32, "little")
    assert not crypto.ed25519_verify(key.public, msg, high_s)
    assert "secret" not in repr(key) and bytes(range(32)).hex() not in repr(key)


def test_merkle_proofs_all_sizes():
    for n in range(1, 12):
        leaves = [bytes([i]) * (i + 1) for i in range(n)]
        r, proofs = merkle.all_proofs(leaves)
        assert r == merkle.root(leaves)
        for i in range(n):
            assert merkle.verify_inclusion(i, n, merkle.leaf_hash(leaves[i]), proofs[i], r)
            if n > 1:
                assert not merkle.verify_inclusion(i ^ 1 if (i ^ 1) < n else i - 1, n,
                                                   merkle.leaf_hash(leaves[i]), proofs[i], r)
            if proofs[i]:
                assert not merkle.verify_inclusion(i, n, merkle.leaf_hash(leaves[i]), proofs[i][:-1], r)


def test_noise_xx_roundtrip_and_rekey():
    s_i, s_r = bytes([1] * 32), bytes([2] * 32)
    name = "Noise_XX_25519_ChaChaPoly_BLAKE2b"
    i = noise.HandshakeState(name, True, b"p", s_i, rekey_every=4)
    r = noise.HandshakeState(name, False, b"p", s_r, rekey_every=4)
    r.read_message(i.write_message(b""))
    assert i.read_message(r.write_message(b"hello-r")) == b"hello-r"
    assert r.read_message(i.write_message(b"hello-i")) == b"hello-i"
    assert i.rs == crypto.x25519_public(s_r) and r.rs == crypto.x25519_public(s_i)
    (i_send, _), (_, r_recv) = i.split(), r.split()
    keys = set()
    for n in range(10):
        assert r_recv.decrypt_with_ad(b"", i_send.encrypt_with_ad(b"", bytes([n]))) == bytes([n])
        keys.add(i_send.k)
    assert len(keys) == 3  # rekeyed after nonces 3 and 7
    with pytest.raises(noise.NoiseError):
        r_recv.decrypt_with_ad(b"", b"\x00" * 20)
    assert r_recv.n == 10  # a failed decryption does not advance the nonce
