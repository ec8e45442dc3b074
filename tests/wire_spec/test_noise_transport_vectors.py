"""noise and transport vectors, replayed with noiseprotocol (a second Noise implementation)."""

from __future__ import annotations

import json
import struct

import pytest
from noise.backends.default.ciphers import ChaCha20Cipher
from noise.connection import Keypair, NoiseConnection

from tests.wire_spec.conftest import VECTORS, message_class
from wire_spec.vectors.generator import codec

PROTOCOL = b"Noise_XX_25519_ChaChaPoly_BLAKE2b"
pytestmark = pytest.mark.filterwarnings("ignore:One of ephemeral keypairs is already set")


def _conn(v: dict, initiator: bool) -> NoiseConnection:
    side = "init" if initiator else "resp"
    c = NoiseConnection.from_name(PROTOCOL)
    c.set_as_initiator() if initiator else c.set_as_responder()
    c.set_prologue(bytes.fromhex(v[f"{side}_prologue"]))
    c.set_keypair_from_private_bytes(Keypair.STATIC, bytes.fromhex(v[f"{side}_static"]))
    c.set_keypair_from_private_bytes(Keypair.EPHEMERAL, bytes.fromhex(v[f"{side}_ephemeral"]))
    c.start_handshake()
    proto = c.noise_protocol
    finish = proto.handshake_done

    def keep_remote_static():  # noiseprotocol drops the handshake state (and rs) when it completes
        proto.remote_static = proto.handshake_state.rs.public_bytes
        finish()

    proto.handshake_done = keep_remote_static
    return c


def _remote_static(c: NoiseConnection) -> bytes:
    proto = c.noise_protocol
    return getattr(proto, "remote_static", None) or proto.handshake_state.rs.public_bytes


def _frames(data: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        out.append(data[pos + 4:pos + 4 + n])
        pos += 4 + n
    assert pos == len(data)
    return out


def _x25519_of(manifest: dict, node: str) -> bytes:
    return next(bytes.fromhex(n["x25519_public"]) for c in manifest["clusters"] for n in c["nodes"] if n["id"] == node)


def _hello_ok(manifest: dict, hello_bytes: bytes, remote_static: bytes, port: str, expected_node) -> bool:
    try:
        hello = codec.decode("Hello", hello_bytes)
    except codec.CodecError:
        return False
    if hello.get("protocol_version") != 1 or hello.get("network_id") != manifest["network_id"]:
        return False
    node = hello.get("node_id", "")
    if port == "client" and expected_node is None:  # the node checking a client
        return node == ""
    if not node or (expected_node is not None and node != expected_node):
        return False
    ids = {n["id"] for c in manifest["clusters"] for n in c["nodes"]}
    return node in ids and _x25519_of(manifest, node) == remote_static


HANDSHAKES = sorted(VECTORS.glob("noise/handshake/*/*"))


@pytest.mark.parametrize("case", HANDSHAKES, ids=lambda p: "/".join(p.parts[-2:]))
def test_handshake(case, pool):
    meta = json.loads((case / "meta.json").read_text())
    manifest = json.loads((case / "manifest.json").read_text())
    (v,) = json.loads((case / "vectors.json").read_text())["vectors"]
    msgs = v["messages"]
    if meta["verdict"] == "accept":
        init, resp = _conn(v, True), _conn(v, False)
        for i, m in enumerate(msgs[:3]):
            w, r = (init, resp) if i % 2 == 0 else (resp, init)
            assert w.write_message(bytes.fromhex(m["payload"])).hex() == m["ciphertext"]
            assert r.read_message(bytes.fromhex(m["ciphertext"])).hex() == m["payload"]
        assert init.handshake_finished and resp.handshake_finished
        assert init.get_handshake_hash().hex() == v["handshake_hash"] == resp.get_handshake_hash().hex()
        init_pub, resp_pub = (init.noise_protocol.keypairs["s"].public_bytes,
                              resp.noise_protocol.keypairs["s"].public_bytes)
        assert _hello_ok(manifest, bytes.fromhex(msgs[1]["payload"]), resp_pub, meta["port"], meta["responder_node"])
        assert _hello_ok(manifest, bytes.fromhex(msgs[2]["payload"]), init_pub, meta["port"], meta["initiator_node"])
        types = ("PeerMessage", "PeerMessage") if meta["port"] == "peer" else ("ClientReply", "ClientMessage")
        for i, m in enumerate(msgs[3:]):
            w, r = (resp, init) if i % 2 == 0 else (init, resp)
            assert w.encrypt(bytes.fromhex(m["payload"])).hex() == m["ciphertext"]
            plain = r.decrypt(bytes.fromhex(m["ciphertext"]))
            for f in _frames(plain):
                assert message_class(pool, types[i % 2]).FromString(f).SerializeToString(deterministic=True) == f
        return
    assert _play_runner(meta, manifest, v) == meta["fails_at_message"]


# SPEC 13: message 1 is exactly 32 bytes; messages 2 and 3 at least their fixed part (e, s, tags).
MIN_SIZE = {1: 32, 2: 32 + 48 + 16, 3: 48 + 16}


def _play_runner(meta: dict, manifest: dict, v: dict, lenient_dh=None) -> int | None:
    """Plays `runner_role` against the case's messages; the 1-based message at which it aborts, or None.

    `lenient_dh` replaces the X25519 of noiseprotocol (pyca, which raises on an all-zero result) by one that
    returns the zero result, i.e. a runner without the SPEC 13 check.
    """
    msgs = v["messages"]
    role_init = meta["runner_role"] == "initiator"
    me = _conn(v, role_init)
    if lenient_dh is not None:
        me.noise_protocol.dh_fn.dh = lambda priv, pub: lenient_dh(priv.private_bytes_raw(), pub.public_bytes_raw())
    my_turns = {0, 2} if role_init else {1}
    for i, m in enumerate(msgs):
        if i in my_turns:
            assert me.write_message(bytes.fromhex(m["payload"])).hex() == m["ciphertext"]
            continue
        data = bytes.fromhex(m["ciphertext"])
        if len(data) < MIN_SIZE[i + 1] or (i == 0 and len(data) != 32):
            return i + 1
        try:
            payload = me.read_message(data)
        except Exception:  # noqa: BLE001 - decryption failure or an all-zero DH result aborts the handshake
            return i + 1
        if i == 0:  # message 1 carries no Hello
            continue
        remote = _remote_static(me)
        expected = meta["responder_node"] if role_init else meta["initiator_node"]
        if not _hello_ok(manifest, payload, remote, meta["port"], expected):
            return i + 1
    if len(msgs) < 3 and len(msgs) in my_turns:  # the runner's own next message: it must not be written
        try:
            me.write_message(b"")
        except Exception:  # noqa: BLE001 - the DH of the runner's own message gives 32 zero bytes
            return len(msgs) + 1
    return None


SMALL_ORDER = [p for p in HANDSHAKES if "remote_key" in json.loads((p / "meta.json").read_text())]


def test_hostile_cases_are_present():
    names = [p.name for p in sorted(VECTORS.glob("noise/handshake/invalid/*"))]
    for pattern in ("small_order", "zero", "length"):
        assert sum(pattern in n for n in names) >= 4, pattern
    roles = {json.loads((p / "meta.json").read_text())["runner_role"] for p in SMALL_ORDER}
    assert roles == {"initiator", "responder"}


@pytest.mark.parametrize("case", SMALL_ORDER, ids=lambda p: p.name)
def test_small_order_dh_is_zero_and_the_only_fault(case):
    """pyca refuses the runner's DH with the remote key (all-zero result); without that check the case passes."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

    from wire_spec.vectors.generator.noise_hostile import x25519

    meta = json.loads((case / "meta.json").read_text())
    manifest = json.loads((case / "manifest.json").read_text())
    (v,) = json.loads((case / "vectors.json").read_text())["vectors"]
    side = "init" if meta["runner_role"] == "initiator" else "resp"
    remote = bytes.fromhex(meta["remote_key"])
    mine = bytes.fromhex(v[f"{side}_ephemeral"])  # every zero DH of these cases involves the runner's ephemeral
    with pytest.raises(ValueError):
        X25519PrivateKey.from_private_bytes(mine).exchange(X25519PublicKey.from_public_bytes(remote))
    assert x25519(mine, remote) == bytes(32)
    other = "resp" if side == "init" else "init"
    kind = "ephemeral" if "ephemeral" in case.name else "static"
    assert v[f"{other}_{kind}"] is None and v[f"{other}_{kind}_public"] == meta["remote_key"]
    if kind == "ephemeral":
        assert bytes.fromhex(v["messages"][0 if side == "resp" else 1]["ciphertext"])[:32] == remote
    assert _play_runner(meta, manifest, v) == meta["fails_at_message"]
    assert _play_runner(meta, manifest, v, lenient_dh=x25519) is None  # one rule broken: the zero check


def test_reference_x25519_matches_pyca():
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from wire_spec.vectors.generator.noise_hostile import x25519

    for i in range(8):
        a = X25519PrivateKey.from_private_bytes(bytes([i + 1]) * 32)
        b = X25519PrivateKey.from_private_bytes(bytes([0x40 + i]) * 32)
        pub = b.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        assert x25519(bytes([i + 1]) * 32, pub) == a.exchange(b.public_key())
    assert x25519(bytes(32), (9).to_bytes(32, "little")).hex() == \
        "2fe57da347cd62431528daac5fbb290730fff684afc4cfc2ed90995f58cb3b74"  # X25519(0, 9), clamped scalar 2^254


@pytest.mark.parametrize("case", [p for p in HANDSHAKES if "_length_" in p.name], ids=lambda p: p.name)
def test_length_cases(case):
    meta = json.loads((case / "meta.json").read_text())
    (v,) = json.loads((case / "vectors.json").read_text())["vectors"]
    bad = bytes.fromhex(v["messages"][meta["fails_at_message"] - 1]["ciphertext"])
    assert len(bad) == meta["message_length"]
    if meta["fails_at_message"] == 1:
        assert len(bad) != 32
    else:
        assert len(bad) != meta["expected_length"]


@pytest.mark.parametrize("case", sorted(VECTORS.glob("noise/rekey/*/*")), ids=lambda p: p.name)
def test_rekey(case):
    inp = json.loads((case / "input.json").read_text())
    exp = json.loads((case / "expected.json").read_text())
    cipher = ChaCha20Cipher()

    def enc(k: bytes, n: int, pt: bytes) -> bytes:
        cipher.initialize(k)
        return cipher.encrypt(k, n, bytes.fromhex(inp["ad"]), pt)

    def rekey(k: bytes) -> bytes:
        cipher.initialize(k)
        return cipher.rekey(k)

    key = bytes.fromhex(inp["key"])
    if "nonce" in inp:
        k1 = rekey(key)
        assert k1.hex() == exp["rekeyed_key"] and rekey(k1).hex() == exp["twice_rekeyed_key"]
        assert enc(k1, inp["nonce"], bytes.fromhex(inp["plaintext"])).hex() == exp["ciphertext"]
        return
    k, n = key, inp["first_nonce"]
    for i, pt in enumerate(inp["plaintexts"]):
        assert k.hex() == exp["keys"][i]
        assert enc(k, n, bytes.fromhex(pt)).hex() == exp["ciphertexts"][i]
        if (n + 1) % 65536 == 0:
            k = rekey(k)
        n += 1
    assert (k.hex(), n) == (exp["final_key"], exp["final_nonce"])
    assert len(set(exp["keys"])) == (2 if any((inp["first_nonce"] + i + 1) % 65536 == 0
                                               for i in range(len(inp["plaintexts"]) - 1)) else 1)


@pytest.mark.parametrize("case", sorted(VECTORS.glob("transport/stream/*/*")), ids=lambda p: "/".join(p.parts[-2:]))
def test_stream(case, pool):
    meta = json.loads((case / "meta.json").read_text())
    chunks = [(case / f"chunk_{i:03d}.bin").read_bytes() for i in range(1, meta["chunks"] + 1)]
    assert all(1 <= len(c) <= 65519 for c in chunks)
    stream = b"".join(chunks)
    cls = message_class(pool, meta["message_type"])
    pos, got, error_at = 0, [], None
    while pos < len(stream):
        (n,) = struct.unpack(">I", stream[pos:pos + 4])
        body = stream[pos + 4:pos + 4 + n]
        if not 1 <= n <= meta["max_message_bytes"] or len(body) < n:
            error_at = len(got) + 1
            break
        try:
            codec.decode(meta["message_type"], body)
        except codec.CodecError:
            error_at = len(got) + 1
            break
        assert cls.FromString(body).SerializeToString(deterministic=True) == body
        got.append(body)
        pos += 4 + n
    if meta["verdict"] == "accept":
        assert error_at is None
        messages = [(case / f"message_{i:03d}.bin").read_bytes() for i in range(1, meta["messages"] + 1)]
        assert got == messages
        assert stream == (case / "stream.bin").read_bytes() == b"".join(struct.pack(">I", len(m)) + m for m in messages)
    else:
        assert error_at == meta["failing_message"]


@pytest.mark.parametrize("case", sorted(VECTORS.glob("noise/transport/*/*")), ids=lambda p: "/".join(p.parts[-2:]))
def test_receiving_cipherstate(case):
    meta = json.loads((case / "meta.json").read_text())
    inp = json.loads((case / "input.json").read_text())
    cipher = ChaCha20Cipher()
    k, n, plain, failed_at = bytes.fromhex(inp["key"]), inp["first_nonce"], [], None
    for i, ct in enumerate(inp["ciphertexts"], 1):
        cipher.initialize(k)
        if n >= 2**64 - 1:  # reserved nonce: the link is closed instead
            failed_at = i
            break
        try:
            plain.append(cipher.decrypt(k, n, bytes.fromhex(inp["ad"]), bytes.fromhex(ct)).hex())
        except Exception:  # noqa: BLE001 - InvalidTag: the connection closes, the nonce does not advance
            failed_at = i
            break
        if (n + 1) % 65536 == 0:
            cipher.initialize(k)
            k = cipher.rekey(k)
        n += 1
    if meta["verdict"] == "accept":
        assert failed_at is None
        assert plain == json.loads((case / "expected.json").read_text())["plaintexts"]
    else:
        assert failed_at == meta["failing_message"]
