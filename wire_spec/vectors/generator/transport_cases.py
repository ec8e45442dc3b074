"""transport/stream vectors (SPEC 13): application messages <-> the decrypted Noise payload stream."""

from __future__ import annotations

import struct

from .codec import encode, field_varint
from .keys import Signer
from .samples import NET, build
from .writer import CaseWriter

MAX_PAYLOAD = 65519
MAX_MESSAGE = 16777216
MAX_CLIENT_MESSAGE = 262160  # max_client_message_bytes (SPEC 13.1, 18): client -> node on the client port


def _split(stream: bytes, cuts: list[int] | None = None) -> list[bytes]:
    """Chunks of at most MAX_PAYLOAD bytes: at the given cut offsets, else greedily."""
    if cuts is None:
        return [stream[i:i + MAX_PAYLOAD] for i in range(0, len(stream), MAX_PAYLOAD)]
    bounds = [0, *cuts, len(stream)]
    chunks = [stream[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    assert all(1 <= len(c) <= MAX_PAYLOAD for c in chunks)
    return chunks


def _frame(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _forward_of_size(total: int) -> dict:
    """A PeerMessage{forward} whose encoding is exactly `total` bytes (one request with a sized value)."""
    for pad in range(total, 0, -1):
        msg = {"forward": {"requests": [{"request_id": 1, "cluster_id": "c0",
                                         "op": {"kind": 2, "key": b"k", "value": b"v" * pad}}]}}
        size = len(encode("PeerMessage", msg))
        if size == total:
            return msg
        if size < total:
            raise AssertionError(f"cannot build a message of {total} bytes")
    raise AssertionError("unreachable")


def _client_message_of_size(total: int) -> dict:
    """A ClientMessage{submit_bundle} of exactly `total` bytes: a signed bundle of PUTs (values <= 65536)."""
    client = Signer("codec/client-0")

    def bundle(pad: int) -> dict:
        items = [{"request_id": 1_700_000_000_000_100 + i, "op": {"kind": 2, "key": b"k%d" % i,
                                                                  "value": bytes([i]) * (60000 if i < 4 else pad)}}
                 for i in range(5)]
        return {"client_key": client.public, "cluster_id": "c0", "items": items, "signature": bytes(64)}

    pad = 65536
    for _ in range(8):  # the size grows by one per pad byte, except where a varint length grows
        size = len(encode("ClientMessage", {"submit_bundle": bundle(pad)}))
        if size == total:
            b = bundle(pad)
            del b["signature"]
            b["signature"] = client.sign("client-bundle", NET, encode("RequestBundle", b))
            assert len(encode("ClientMessage", {"submit_bundle": b})) == total
            return {"submit_bundle": b}
        pad -= size - total
        assert 0 < pad <= 65536, f"cannot build a ClientMessage of {total} bytes"
    raise AssertionError("unreachable")


def generate(w: CaseWriter) -> None:
    s = {m: {n: v for n, _, v in cases} for m, cases in build().items()}
    peer = [{"heartbeat": s["Heartbeat"]["full"]}, {"prepare": s["Prepare"]["signed"]},
            {"commit": s["Commit"]["full"]}]

    def case(valid: bool, name: str, description: str, kind: str, messages: list[bytes], chunks: list[bytes],
             extra: dict | None = None) -> None:
        stream = b"".join(chunks)
        files = {f"chunk_{i:03d}.bin": c for i, c in enumerate(chunks, 1)}
        client_port = kind == "ClientMessage"
        meta = {"description": description, "message_type": kind,
                "max_message_bytes": MAX_CLIENT_MESSAGE if client_port else MAX_MESSAGE,
                "limit": "max_client_message_bytes" if client_port else "max_message_bytes",
                "chunks": len(chunks), "verdict": "accept" if valid else "reject", **(extra or {})}
        if valid:
            assert stream == b"".join(_frame(m) for m in messages)
            files.update({f"message_{i:03d}.bin": m for i, m in enumerate(messages, 1)})
            files["stream.bin"] = stream
            meta["messages"] = len(messages)
        w.case("transport", "stream", valid, name, meta, files)

    msgs = [encode("PeerMessage", m) for m in peer]
    stream = b"".join(_frame(m) for m in msgs)
    case(True, "one_message", "one heartbeat in one payload", "PeerMessage", msgs[:1], [_frame(msgs[0])])
    case(True, "packed", "three messages packed into one payload", "PeerMessage", msgs, [stream])
    case(True, "split_in_length_prefix", "payload boundary inside the second message's 4-byte length",
         "PeerMessage", msgs, _split(stream, [len(_frame(msgs[0])) + 2]))
    case(True, "one_byte_payloads", "every payload holds a single byte of the stream", "PeerMessage", msgs[:2],
         _split(b"".join(_frame(m) for m in msgs[:2]), list(range(1, len(_frame(msgs[0])) + len(_frame(msgs[1]))))))
    exact = encode("PeerMessage", _forward_of_size(MAX_PAYLOAD - 4))
    case(True, "exactly_one_full_payload", "a message whose frame is exactly 65519 bytes: one full payload",
         "PeerMessage", [exact], _split(_frame(exact)))
    over = encode("PeerMessage", _forward_of_size(MAX_PAYLOAD - 3))
    case(True, "one_byte_over", "a frame of 65520 bytes: a full payload and a 1-byte payload", "PeerMessage",
         [over], _split(_frame(over)))
    big = encode("PeerMessage", {"sync_response": {"cluster_id": "c0", "decisions": [
        {"header": s["DecisionHeader"]["height_7"], "batch": {"inputs": [
            {"client": dict(s["ClientRequest"]["put_signed"], op={"kind": 2, "key": b"k%d" % i,
                                                                  "value": bytes([i]) * 60000})}
            for i in range(3)]}}]}})
    mixed = [msgs[0], big, msgs[1]]
    case(True, "large_message_greedy", "a 180 kB SyncResponse between two small messages, split greedily into "
         "65519-byte payloads", "PeerMessage", mixed, _split(b"".join(_frame(m) for m in mixed)))
    client = [encode("ClientMessage", {"submit": s["ClientRequest"]["put_signed"]}),
              encode("ClientMessage", {"fetch": s["ClientRequest"]["get_signed"]})]
    case(True, "client_messages", "two ClientMessages (client to node)", "ClientMessage", client,
         [_frame(client[0]), _frame(client[1])])
    at_limit = encode("ClientMessage", _client_message_of_size(MAX_CLIENT_MESSAGE))
    assert len(encode("RequestBundle", _client_message_of_size(MAX_CLIENT_MESSAGE)["submit_bundle"])) > 262144
    case(True, "client_message_at_limit", "a canonical ClientMessage{submit_bundle} of exactly 262160 bytes "
         "(max_client_message_bytes), split greedily: the stream layer accepts it (its bundle, 262156 bytes, is "
         "over the 262144-byte bundle limit, which the node answers with ClientError TOO_LARGE, SPEC 14.6; that "
         "is not checked here)", "ClientMessage", [at_limit], _split(_frame(at_limit)))
    replies = [encode("ClientReply", {"answer": s["CompactDecision"]["single_leaf"]}),
               encode("ClientReply", {"error": s["ClientError"]["timeout"]})]
    case(True, "client_replies", "two ClientReplies (node to client) in one payload", "ClientReply", replies,
         [_frame(replies[0]) + _frame(replies[1])])

    def bad(name: str, description: str, chunks: list[bytes], reason: str, at: int, kind: str = "PeerMessage"):
        case(False, name, description, kind, [], chunks, {"reason": reason, "failing_message": at})

    bad("zero_length", "a valid message, then an application length of 0", [_frame(msgs[0]) + b"\x00\x00\x00\x00"],
        "malformed", 2)
    bad("over_max_message_bytes", "length prefix 16777217 (> max_message_bytes); the body is never sent",
        [struct.pack(">I", MAX_MESSAGE + 1) + b"\x0a"], "oversized", 1)
    bad("client_message_over_limit", "a client-port stream (ClientMessage) whose length prefix is 262161, one "
        "over max_client_message_bytes; the body is never sent", [struct.pack(">I", MAX_CLIENT_MESSAGE + 1) + b"\x1a"],
        "oversized", 1, "ClientMessage")
    bad("client_message_over_limit_after_valid", "a valid ClientMessage, then a length prefix of 262161 "
        "(over max_client_message_bytes)", [_frame(client[0]) + struct.pack(">I", MAX_CLIENT_MESSAGE + 1)],
        "oversized", 2, "ClientMessage")
    bad("length_ffffffff", "length prefix 0xffffffff", [b"\xff\xff\xff\xff"], "oversized", 1)
    bad("non_canonical_message", "PeerMessage{heartbeat{view = 2}} with the view varint written as 0x82 0x00",
        [_frame(b"\x22\x03\x10\x82\x00")], "non_canonical", 1)
    bad("truncated_message", "a 1-byte frame holding only a heartbeat tag (0x22), no length", [_frame(b"\x22")],
        "malformed", 1)
    bad("client_message_unknown_field", "a ClientMessage holding only an unknown field 3 (its oneof empty)",
        [_frame(field_varint(3, 1))], "non_canonical", 1, "ClientMessage")
