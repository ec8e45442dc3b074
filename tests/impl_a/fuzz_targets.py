"""Coverage-guided fuzz targets (atheris/libFuzzer) for impl_a's decoders of remote input.

    python -m tests.impl_a.fuzz_targets TARGET [libFuzzer flags, e.g. -max_total_time=600]

TARGET: codec, stream, handshake, admin. A target raises nothing but the decoder's own rejection
(RemoteViolation, LinkClosed, NoiseError); any other exception is a bug and libFuzzer reports it
as a crash (with the input saved as crash-*)."""

from __future__ import annotations

import asyncio
import sys

import atheris

with atheris.instrument_imports(include=["impl_a"]):
    from impl_a import heraclius_pb2 as pb
    from impl_a import httpreq
    from impl_a.codec import MESSAGE_TYPES, decode, encode
    from impl_a.errors import RemoteViolation
    from impl_a.noise import HandshakeState, NoiseError
    from impl_a.transport import PROTOCOL, LinkClosed, StreamParser, check_handshake_size, prologue
    from impl_a.vector_admin import _drive

REJECTIONS = (RemoteViolation, LinkClosed, NoiseError)
NAMES = sorted(MESSAGE_TYPES)
STATIC = bytes(range(1, 33))
HELLO = encode(pb.Hello(protocol_version=1, network_id="fuzz", node_id="n0"))


def codec(data: bytes) -> None:
    if not data:
        return
    cls = MESSAGE_TYPES[NAMES[data[0] % len(NAMES)]]
    try:
        msg = decode(cls, data[1:])
    except RemoteViolation:
        return
    if encode(msg) != data[1:]:
        raise AssertionError("accepted a non-canonical encoding")


def stream(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    parser = StreamParser(fdp.ConsumeIntInRange(1, 262160))
    try:
        while fdp.remaining_bytes():
            chunk = fdp.ConsumeBytes(fdp.ConsumeIntInRange(1, 70000))
            for m in parser.feed(chunk):
                if not 1 <= len(m) <= parser.max_message:
                    raise AssertionError("message outside the length limit")
                decode(pb.ClientMessage, m)
        if parser.pending() > parser.max_message + 4:
            raise AssertionError("parser holds more than one partial message")
    except REJECTIONS:
        return


def handshake(data: bytes) -> None:
    """Both roles read what an attacker sends: the responder message 1 and 3, the initiator message 2."""
    fdp = atheris.FuzzedDataProvider(data)
    responder = fdp.ConsumeBool()
    msg1 = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 64))
    later = fdp.ConsumeBytes(fdp.remaining_bytes())
    try:
        if responder:
            hs = HandshakeState(PROTOCOL, False, prologue("fuzz"), STATIC)
            check_handshake_size(1, len(msg1))
            hs.read_message(msg1)
            hs.write_message(HELLO)
            check_handshake_size(3, len(later))
            decode(pb.Hello, hs.read_message(later))
            hs.split()
        else:
            hs = HandshakeState(PROTOCOL, True, prologue("fuzz"), STATIC)
            hs.write_message(b"")
            check_handshake_size(2, len(msg1 + later))
            decode(pb.Hello, hs.read_message(msg1 + later))
            hs.write_message(HELLO)
            hs.split()
    except REJECTIONS:
        return


def admin(data: bytes) -> None:
    head = httpreq.parse_head(data)
    if head is not None and head.error is None:
        httpreq.route_path(head.target)
    if len(data) < 2048:  # the whole connection handler, in memory (slower: only small inputs)
        how, out = asyncio.run(_drive(data, 5))
        if data and not out and how != "eof":
            raise AssertionError("request finished without an answer")


TARGETS = {"codec": codec, "stream": stream, "handshake": handshake, "admin": admin}

if __name__ == "__main__":
    name, *flags = sys.argv[1:]
    atheris.Setup(sys.argv[:1] + flags, TARGETS[name])  # libFuzzer sees only its own flags
    atheris.Fuzz()
