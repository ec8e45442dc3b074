"""The suite's own Noise initiator and codec, checked offline against the SPEC 13 handshake vectors
and the published Noise vectors (so a failing attack is never the attacker's own bug)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.adversarial import noise, wire

VECTORS = Path(__file__).resolve().parents[2] / "wire_spec" / "vectors"
VALID = sorted((VECTORS / "noise" / "handshake" / "valid").glob("*/vectors.json"))


@pytest.mark.parametrize("path", VALID, ids=[p.parent.name for p in VALID])
def test_initiator_matches_handshake_vectors(path):
    v = json.loads(path.read_text())["vectors"][0]
    ini = noise.Initiator("", static=bytes.fromhex(v["init_static"]), ephemeral=bytes.fromhex(v["init_ephemeral"]),
                          pro=bytes.fromhex(v["init_prologue"]))
    m = v["messages"]
    assert ini.write_message_1().hex() == m[0]["ciphertext"]
    assert ini.read_message_2(bytes.fromhex(m[1]["ciphertext"])).hex() == m[1]["payload"]
    m3, send, recv = ini.write_message_3(bytes.fromhex(m[2]["payload"]))
    assert m3.hex() == m[2]["ciphertext"]
    assert ini.handshake_hash.hex() == v["handshake_hash"]
    for i, msg in enumerate(m[3:]):  # transport: responder first, then alternating
        if i % 2 == 0:
            assert recv.decrypt(b"", bytes.fromhex(msg["ciphertext"])).hex() == msg["payload"]
        else:
            assert send.encrypt(b"", bytes.fromhex(msg["payload"])).hex() == msg["ciphertext"]


def test_hello_encoding_matches_vector():
    v = json.loads((VECTORS / "noise/handshake/valid/client_link/vectors.json").read_text())["vectors"][0]
    nid = bytes.fromhex(v["init_prologue"]).split(b"\x00", 1)[1].decode()
    assert wire.hello(nid).hex() == v["messages"][2]["payload"]


def test_small_order_keys_give_zero_dh():
    k = noise.X25519PrivateKey.generate()
    for name, pub in noise.SMALL_ORDER.items():
        with pytest.raises(noise.HandshakeError):
            noise.dh(k, pub)
        assert name
