"""Conformance handlers for the link layer: noise/handshake, noise/rekey and transport/stream.

They drive impl_b's own Session, CipherState and StreamParser (the code the node runs)."""

import json
import os

from .codec import DecodeError, decode
from .manifest import validate
from .noise import CipherState, NoiseError
from .session import (
    LinkError,
    Session,
    StreamParser,
    client_hello_checker,
    frame_stream,
    node_key_checker,
    peer_hello_checker,
)


class LinkCaseFailure(Exception):
    """A link-layer vector case did not pass."""


def _json(case, name):
    with open(os.path.join(case, name), encoding="utf-8") as fh:
        return json.load(fh)


def _read(case, name) -> bytes:
    with open(os.path.join(case, name), "rb") as fh:
        return fh.read()


def _expect(cond: bool, why: str) -> None:
    if not cond:
        raise LinkCaseFailure(why)


def _frames(data: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(data):
        n = int.from_bytes(data[pos:pos + 2], "big")
        out.append(data[pos + 2:pos + 2 + n])
        pos += 2 + n
    return out


def _sessions(case: str, meta: dict, v: dict):
    m = validate(_json(case, "manifest.json"))
    port = meta["port"]
    init_node, resp_node = meta.get("initiator_node"), meta["responder_node"]
    if port == "peer":
        ichk = peer_hello_checker(m, m.network_id, resp_node)
        rchk = peer_hello_checker(m, m.network_id, None)
    else:
        ichk = node_key_checker(m, resp_node)
        rchk = client_hello_checker(m.network_id)
    mx = m.limits["max_message_bytes"]

    def make(role: str) -> Session:
        if role == "initiator":
            return Session(True, bytes.fromhex(v["init_static"]), m.network_id, init_node or "", ichk, mx,
                           ephemeral=bytes.fromhex(v["init_ephemeral"]))
        return Session(False, bytes.fromhex(v["resp_static"]), m.network_id, resp_node, rchk, mx,
                       ephemeral=bytes.fromhex(v["resp_ephemeral"]))

    return make, port


def h_noise_handshake(case: str, meta: dict) -> None:
    v = _json(case, "vectors.json")["vectors"][0]
    make, port = _sessions(case, meta, v)
    msgs = v["messages"]
    if meta["verdict"] == "reject":
        role = meta["runner_role"]
        sess = make(role)
        fail_at = meta["fails_at_message"]
        for k, msg in enumerate(msgs, start=1):
            from_initiator = k % 2 == 1
            if from_initiator == (role == "initiator"):
                continue  # our own message: the session writes it itself
            try:
                sess.feed(len(bytes.fromhex(msg["ciphertext"])).to_bytes(2, "big") + bytes.fromhex(msg["ciphertext"]))
            except LinkError as e:
                at = e.at_message or k  # a failed DH while writing our reply is that message's
                _expect(at == fail_at, f"aborted at message {at}, expected {fail_at}")
                return
            _expect(k < fail_at, f"did not abort at message {fail_at}")
        raise LinkCaseFailure("handshake never aborted")
    ini, res = make("initiator"), make("responder")
    for k, msg in enumerate(msgs[:3], start=1):
        w, r = (ini, res) if k % 2 == 1 else (res, ini)
        frames = _frames(bytes(w.out))
        w.out.clear()
        _expect(len(frames) == 1 and frames[0].hex() == msg["ciphertext"], f"handshake message {k} differs")
        r.feed(len(frames[0]).to_bytes(2, "big") + frames[0])
    _expect(ini.ready and res.ready, "handshake not complete")
    _expect(ini.hs.h.hex() == v["handshake_hash"] == res.hs.h.hex(), "handshake hash differs")
    for k, msg in enumerate(msgs[3:], start=4):
        w, r = (res, ini) if k % 2 == 0 else (ini, res)
        payload = bytes.fromhex(msg["payload"])
        ct = w.tx.encrypt(b"", payload)
        _expect(ct.hex() == msg["ciphertext"], f"transport message {k} differs")
        mtype = "PeerMessage" if port == "peer" else ("ClientReply" if w is res else "ClientMessage")
        for raw in r.feed(len(ct).to_bytes(2, "big") + ct):
            decode(mtype, raw)


def h_noise_rekey(case: str, meta: dict) -> None:
    inp, exp = _json(case, "input.json"), _json(case, "expected.json")
    if "plaintexts" not in inp:
        cs = CipherState(bytes.fromhex(inp["key"]))
        cs.rekey()
        k1 = cs.k
        cs2 = CipherState(k1)
        cs2.rekey()
        enc = CipherState(k1)
        enc.n = inp["nonce"]
        ct = enc.encrypt(bytes.fromhex(inp["ad"]), bytes.fromhex(inp["plaintext"]))
        _expect((k1.hex(), cs2.k.hex(), ct.hex()) == (exp["rekeyed_key"], exp["twice_rekeyed_key"], exp["ciphertext"]),
                "rekey values differ")
        return
    ad = bytes.fromhex(inp["ad"])
    tx = CipherState(bytes.fromhex(inp["key"]), auto_rekey=True)
    rx = CipherState(bytes.fromhex(inp["key"]), auto_rekey=True)
    tx.n = rx.n = inp["first_nonce"]
    keys, cts = [], []
    for p in inp["plaintexts"]:
        keys.append(tx.k.hex())
        ct = tx.encrypt(ad, bytes.fromhex(p))
        cts.append(ct.hex())
        _expect(rx.decrypt(ad, ct) == bytes.fromhex(p), "receiver could not decrypt")
    _expect(cts == exp["ciphertexts"], "ciphertexts differ")
    _expect(keys == exp["keys"], "keys differ")
    _expect(tx.k.hex() == exp["final_key"] and tx.n == exp["final_nonce"], "final key or nonce differs")


def h_transport_stream(case: str, meta: dict) -> None:
    chunks = [_read(case, f"chunk_{i:03d}.bin") for i in range(1, meta["chunks"] + 1)]
    parser = StreamParser(meta["max_message_bytes"])
    got: list[bytes] = []
    if meta["verdict"] == "reject":
        try:
            for c in chunks:
                for raw in parser.feed(c):
                    decode(meta["message_type"], raw)
                    got.append(raw)
        except (LinkError, DecodeError) as e:
            for raw in getattr(e, "partial", []):
                decode(meta["message_type"], raw)
                got.append(raw)
            _expect(len(got) + 1 == meta["failing_message"], f"rejected frame {len(got) + 1}")
            return
        raise LinkCaseFailure("stream accepted")
    msgs = [_read(case, f"message_{i:03d}.bin") for i in range(1, meta["messages"] + 1)]
    _expect(frame_stream(msgs) == _read(case, "stream.bin"), "framing differs")
    _expect(all(1 <= len(c) <= 65519 for c in chunks), "chunk size")
    for c in chunks:
        got += parser.feed(c)
    _expect(got == msgs, "reassembled messages differ")
    for raw in got:
        decode(meta["message_type"], raw)


def h_noise_transport(case: str, meta: dict) -> None:
    inp = _json(case, "input.json")
    rx = CipherState(bytes.fromhex(inp["key"]), auto_rekey=True)
    rx.n = inp["first_nonce"]
    ad = bytes.fromhex(inp["ad"])
    got = []
    for i, ct in enumerate(inp["ciphertexts"], start=1):
        try:
            got.append(rx.decrypt(ad, bytes.fromhex(ct)).hex())
        except NoiseError:
            _expect(meta["verdict"] == "reject" and i == meta["failing_message"], f"message {i} failed to decrypt")
            return
    _expect(meta["verdict"] == "accept", "every message decrypted")
    _expect(got == _json(case, "expected.json")["plaintexts"], "plaintexts differ")


LINK_HANDLERS = {("noise", "transport"): h_noise_transport, ("noise", "handshake"): h_noise_handshake, ("noise", "rekey"): h_noise_rekey,
                 ("transport", "stream"): h_transport_stream}
