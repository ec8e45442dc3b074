"""The suite's own Noise initiator and codec, checked offline against the SPEC 13 handshake vectors
and the published Noise vectors, and its HTTP response reader against pipelined answers (so a
failing attack is never the attacker's own bug)."""

from __future__ import annotations

import json
import socket
import threading
import time
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


ANSWERS = (b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n"
           b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"height\": 1}"
           b"HTTP/1.1 404 Not Found\nContent-Length: 0\n\n")


@pytest.mark.parametrize("split", ["one_segment", "byte_by_byte", "inside_second_head"])
def test_http_reader_keeps_pipelined_answers(split):
    """Erratum impl-b B8: answers to pipelined requests that arrive in one segment (or split
    anywhere) are all returned in order; nothing past the first is thrown away."""
    from tests.adversarial.test_3_admin import Reader
    a, b = socket.socketpair()

    def serve():
        if split == "one_segment":
            b.sendall(ANSWERS)
        elif split == "byte_by_byte":
            for i in range(len(ANSWERS)):
                b.sendall(ANSWERS[i:i + 1])
                time.sleep(0.0005)
        else:
            cut = ANSWERS.index(b"Content-Type")
            b.sendall(ANSWERS[:cut])
            time.sleep(0.05)
            b.sendall(ANSWERS[cut:])
        b.close()

    t = threading.Thread(target=serve)
    t.start()
    try:
        rd = Reader(a)
        got = [rd.response(timeout=2) for _ in range(4)]
    finally:
        t.join()
        a.close()
    assert [g and g["status"] for g in got[:3]] == [200, 200, 404], got
    assert got[0]["body"] == b"ok\n" and json.loads(got[1]["body"]) == {"height": 1} and got[2]["body"] == b""
    assert got[3] is None  # closed after the last answer
