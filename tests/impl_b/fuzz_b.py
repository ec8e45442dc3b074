"""Coverage-guided fuzz targets (atheris / libFuzzer) for impl_b's decoders of remote bytes.

    .venv/bin/python -m tests.impl_b.fuzz_b TARGET [libFuzzer flags] [CORPUS_DIR...]

Targets: codec (every message's strict decoder), stream (u32be application framing over random
chunking), handshake (Noise XX messages 1-3 as responder and initiator, Hello checks), admin (the
SPEC 15.1 request parser and answer builder). A target's only allowed failure is its decoder's own
rejection (DecodeError, LinkError); anything else is a crash that libFuzzer saves as crash-*.
"""

import os
import sys

import atheris

with atheris.instrument_imports(include=["impl_b"]):
    from impl_b import admin, adminparse, codec, conformance_admin
    from impl_b.codec import DecodeError
    from impl_b.limits import MAX_CLIENT_MESSAGE
    from impl_b.schema import MESSAGES
    from impl_b.session import LinkError, Session, StreamParser, client_hello_checker

NAMES = sorted(MESSAGES)
NET = "fuzz-net"
RESP_STATIC = bytes(range(1, 33))
INIT_STATIC = bytes(range(33, 65))
RESP_E = bytes(range(65, 97))
INIT_E = bytes(range(97, 129))


def codec_target(data: bytes) -> None:
    if not data:
        return
    name = NAMES[data[0] % len(NAMES)]
    try:
        msg = codec.decode(name, data[1:])
    except DecodeError as e:
        if e.reason not in ("malformed", "non_canonical"):
            raise AssertionError(f"reason {e.reason}") from None
        return
    if codec.encode(msg) != data[1:]:
        raise AssertionError(f"{name}: accepted bytes that are not the canonical encoding")


def stream_target(data: bytes) -> None:
    """The same bytes fed whole and in chunks cut by the input itself must give the same messages
    (or the same rejection)."""
    if len(data) < 2:
        return
    cap = (16, 4096, MAX_CLIENT_MESSAGE)[data[0] % 3]
    step = data[1] % 37 + 1
    body = data[2:]

    def run(chunks):
        p = StreamParser(cap)
        out = []
        try:
            for c in chunks:
                out += p.feed(c)
        except LinkError as e:
            out += e.partial
            return out, e.reason
        if len(p.buf) > cap + 4:
            raise AssertionError("holds more than one partial message")
        return out, None

    whole = run([body])
    cut = run([body[i:i + step] for i in range(0, len(body), step)])
    if whole != cut:
        raise AssertionError("chunking changed the result")


def _responder() -> Session:
    return Session(False, RESP_STATIC, NET, "c0-n0", client_hello_checker(NET), MAX_CLIENT_MESSAGE, ephemeral=RESP_E)


def _initiator() -> Session:
    return Session(True, INIT_STATIC, NET, "", lambda hello, rs: "c0-n0", MAX_CLIENT_MESSAGE, ephemeral=INIT_E)


# A valid transcript to splice fuzz bytes into: the fuzzer then reaches messages 2 and 3.
_I, _R = _initiator(), _responder()
_M1 = bytes(_I.out)
_R.feed(_M1)
_M2 = bytes(_R.out)
_I.feed(_M2)
_M3 = bytes(_I.out)


def handshake_target(data: bytes) -> None:
    if not data:
        return
    mode, body = data[0] % 4, data[1:]
    try:
        if mode == 0:  # anything as the responder's input, from message 1 on
            _responder().feed(body)
        elif mode == 1:  # a valid message 1, then anything (message 3 and transport frames)
            r = _responder()
            r.feed(_M1)
            r.feed(body)
        elif mode == 2:  # the initiator reading anything as message 2
            _initiator().feed(body)
        else:  # a mutated copy of a valid message 2 or 3
            base = bytearray(_M2 if len(body) % 2 else _M3)
            for i in range(0, len(body) - 1, 2):
                base[body[i] % len(base)] ^= body[i + 1]
            s = _initiator() if len(body) % 2 else _responder()
            if not len(body) % 2:
                s.feed(_M1)
            s.feed(bytes(base))
    except LinkError:
        return


_RT = conformance_admin._StubRuntime(5)


def admin_target(data: bytes) -> None:
    v = adminparse.parse(data)
    if v is None:
        if b"\n" in data[:8192] and len(data) > 8192 + 16384 + 2:
            raise AssertionError("waits for more bytes past every size limit")
        return
    if not 0 < v.consumed <= len(data):
        raise AssertionError(f"consumed {v.consumed} of {len(data)}")
    resp = admin.answer(_RT, v)
    if not resp.startswith(b"HTTP/1.1 ") or b"\r\nContent-Length: " not in resp:
        raise AssertionError("answer without a status line or Content-Length")


TARGETS = {"codec": codec_target, "stream": stream_target, "handshake": handshake_target, "admin": admin_target}


def main() -> None:
    target = TARGETS[sys.argv[1]]
    atheris.Setup([sys.argv[0]] + sys.argv[2:], target)
    atheris.Fuzz()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
