"""Vector handlers for SPEC 13: noise/handshake, noise/rekey and transport/stream case folders."""

from __future__ import annotations

import json
import pathlib

from impl_a import heraclius_pb2 as pb
from impl_a.codec import decode
from impl_a.errors import RemoteViolation
from impl_a.manifest import Manifest
from impl_a.noise import CipherState, HandshakeState, NoiseError
from impl_a.transport import (
    REKEY_EVERY,
    LinkClosed,
    StreamParser,
    check_client_hello,
    check_handshake_size,
    check_peer_identity,
    frame_message,
    hello_ok,
    split_stream,
)

FAILURES = (NoiseError, LinkClosed, RemoteViolation)


def _j(case: pathlib.Path, name: str):
    return json.loads((case / name).read_text())


def _hx(s: str | None) -> bytes:
    return bytes.fromhex(s) if s else b""


def _check_responder(m: Manifest, port: str, responder: str, hello: pb.Hello, rs: bytes) -> None:
    """What the initiator checks about message 2."""
    hello_ok(hello, m.network_id)
    node = m.nodes.get(responder)
    if node is None or rs != node.x25519_public:
        raise LinkClosed("handshake_failed", "responder is not the node dialled")
    if port == "peer":
        check_peer_identity(m, hello, rs)
        if hello.node_id != responder:
            raise LinkClosed("handshake_failed", "responder names another node")


def _check_initiator(m: Manifest, port: str, hello: pb.Hello, rs: bytes) -> None:
    """What the responder checks about message 3."""
    hello_ok(hello, m.network_id)
    if port == "peer":
        check_peer_identity(m, hello, rs)
    else:
        check_client_hello(hello, rs)


def handshake_case(case: pathlib.Path, meta: dict, valid: bool) -> str | None:
    m = Manifest(_j(case, "manifest.json"))
    v = _j(case, "vectors.json")["vectors"][0]
    msgs = v["messages"]
    port = meta["port"]

    def side(initiator: bool) -> HandshakeState:
        p = "init_" if initiator else "resp_"
        return HandshakeState(v["protocol_name"], initiator, _hx(v.get(p + "prologue")), _hx(v.get(p + "static")),
                              e=_hx(v.get(p + "ephemeral")))

    if not valid:
        return _invalid_handshake(m, meta, msgs, side(meta["runner_role"] == "initiator"))
    i, r = side(True), side(False)
    payloads = []
    for n in range(3):
        a, b = (i, r) if n % 2 == 0 else (r, i)
        ct = a.write_message(_hx(msgs[n]["payload"]))
        if ct != _hx(msgs[n]["ciphertext"]):
            return f"handshake message {n + 1} differs"
        payloads.append(b.read_message(ct))
    if v.get("handshake_hash") and i.handshake_hash.hex() != v["handshake_hash"]:
        return "handshake hash differs"
    try:
        _check_responder(m, port, meta["responder_node"], decode(pb.Hello, payloads[1]), i.rs)
        _check_initiator(m, port, decode(pb.Hello, payloads[2]), r.rs)
    except FAILURES as exc:
        return f"hello rejected: {exc}"
    (i_send, i_recv), (r_send, r_recv) = i.split(), r.split()
    kinds = {"peer": (pb.PeerMessage, pb.PeerMessage), "client": (pb.ClientReply, pb.ClientMessage)}[port]
    parsers = (StreamParser(m.limits["max_message_bytes"]), StreamParser(m.limits["max_message_bytes"]))
    for n, msg in enumerate(msgs[3:]):
        from_responder = n % 2 == 0
        send, recv = (r_send, i_recv) if from_responder else (i_send, r_recv)
        payload = _hx(msg["payload"])
        if send.encrypt_with_ad(b"", payload) != _hx(msg["ciphertext"]):
            return f"transport message {n + 4} differs"
        recv.decrypt_with_ad(b"", _hx(msg["ciphertext"]))
        try:
            for frame in parsers[0 if from_responder else 1].feed(payload):
                decode(kinds[0 if from_responder else 1], frame)
        except FAILURES as exc:
            return f"transport message {n + 4}: {exc}"
    return None


def _invalid_handshake(m: Manifest, meta: dict, msgs: list, hs: HandshakeState) -> str | None:
    """Play runner_role against the other side's messages as they are (crafted ones included): the
    node's exact-size rule (check_handshake_size) and the DH checks of noise.py apply."""
    role, want, port = meta["runner_role"], meta["fails_at_message"], meta["port"]
    n = 0
    try:
        for n in range(1, 4):
            mine = (n % 2 == 1) == (role == "initiator")
            if mine:
                known = n <= len(msgs)
                ct = hs.write_message(_hx(msgs[n - 1]["payload"]) if known else b"")
                if known and ct != _hx(msgs[n - 1]["ciphertext"]):
                    return f"own handshake message {n} differs"
                if not known:
                    return f"wrote message {n}, which must not be sent"
                continue
            data = _hx(msgs[n - 1]["ciphertext"])
            check_handshake_size(n, len(data))
            payload = hs.read_message(data)
            if n == 1 and payload:
                raise LinkClosed("handshake_failed", "payload in message 1")
            if n == 2:
                _check_responder(m, port, meta["responder_node"], decode(pb.Hello, payload), hs.rs)
            elif n == 3:
                _check_initiator(m, port, decode(pb.Hello, payload), hs.rs)
    except FAILURES:
        return None if n == want else f"aborted at message {n}, expected {want}"
    return "handshake accepted"


def rekey_case(case: pathlib.Path, meta: dict, valid: bool) -> str | None:
    inp, exp = _j(case, "input.json"), _j(case, "expected.json")
    if "nonce" in inp:
        cs = CipherState(_hx(inp["key"]))
        cs.rekey()
        once = cs.k
        cs.rekey()
        if once.hex() != exp["rekeyed_key"] or cs.k.hex() != exp["twice_rekeyed_key"]:
            return "rekeyed key differs"
        enc = CipherState(once)
        enc.n = inp["nonce"]
        ct = enc.encrypt_with_ad(_hx(inp["ad"]), _hx(inp["plaintext"]))
        return None if ct.hex() == exp["ciphertext"] else "ciphertext differs"
    send, recv = CipherState(_hx(inp["key"]), REKEY_EVERY), CipherState(_hx(inp["key"]), REKEY_EVERY)
    send.n = recv.n = inp["first_nonce"]
    ad = _hx(inp["ad"])
    for idx, p in enumerate(inp["plaintexts"]):
        if send.k.hex() != exp["keys"][idx]:
            return f"key of message {idx} differs"
        ct = send.encrypt_with_ad(ad, _hx(p))
        if ct.hex() != exp["ciphertexts"][idx]:
            return f"ciphertext {idx} differs"
        if recv.decrypt_with_ad(ad, ct) != _hx(p):
            return f"decryption {idx} differs"
    if send.k.hex() != exp["final_key"] or send.n != exp["final_nonce"]:
        return "final key or nonce differs"
    return None


def stream_case(case: pathlib.Path, meta: dict, valid: bool) -> str | None:
    cls = getattr(pb, meta["message_type"])
    chunks = [(case / f"chunk_{i:03d}.bin").read_bytes() for i in range(1, meta["chunks"] + 1)]
    parser = StreamParser(meta["max_message_bytes"])
    got: list[bytes] = []
    if not valid:
        accepted = 0
        try:
            for c in chunks:
                for frame in parser.feed(c):
                    decode(cls, frame)
                    accepted += 1
            parser.check()
        except FAILURES:
            want = meta["failing_message"]
            return None if accepted + 1 == want else f"rejected frame {accepted + 1}, expected {want}"
        return "stream accepted"
    msgs = [(case / f"message_{i:03d}.bin").read_bytes() for i in range(1, meta["messages"] + 1)]
    stream = (case / "stream.bin").read_bytes()
    if b"".join(frame_message(x) for x in msgs) != stream:
        return "framing differs"
    if any(not 1 <= len(c) <= 65519 for c in chunks):
        return "chunk size out of range"
    try:
        for c in chunks:
            got.extend(parser.feed(c))
        for x in got:
            decode(cls, x)
    except FAILURES as exc:
        return f"rejected: {exc}"
    if got != msgs:
        return "messages differ"
    mine = split_stream(stream)
    if b"".join(mine) != stream or any(not 1 <= len(c) <= 65519 for c in mine):
        return "own split is wrong"
    return None


def transport_case(case: pathlib.Path, meta: dict, valid: bool) -> str | None:
    inp = _j(case, "input.json")
    cs = CipherState(_hx(inp["key"]), REKEY_EVERY)
    cs.n = inp["first_nonce"]
    ad = _hx(inp["ad"])
    out = []
    for idx, ct in enumerate(inp["ciphertexts"], start=1):
        try:
            out.append(cs.decrypt_with_ad(ad, _hx(ct)))
        except NoiseError:
            if valid:
                return f"message {idx} failed to decrypt"
            want = meta["failing_message"]
            return None if idx == want else f"message {idx} failed, expected {want}"
    if not valid:
        return "every message decrypted"
    return None if [p.hex() for p in out] == _j(case, "expected.json")["plaintexts"] else "plaintexts differ"
