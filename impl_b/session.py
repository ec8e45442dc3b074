"""SPEC 13 link layer without sockets: Noise XX handshake with Hello payloads, u16be framing,
the u32be application stream split into 65519-byte Noise payloads, and automatic rekey.

A Session is fed raw bytes from the socket and yields application messages; bytes to write
accumulate in `out`. Used by the node's selector loop and by the blocking client.
"""

from . import codec
from .codec import encode
from .noise import MAX_MESSAGE, TAG, HandshakeState, NoiseError

PROTOCOL = "Noise_XX_25519_ChaChaPoly_BLAKE2b"
MAX_PLAIN = MAX_MESSAGE - TAG


class LinkError(Exception):
    """The remote side broke the link protocol; `reason` is a SPEC 15 rejection reason."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.partial: list[bytes] = []
        self.at_message = 0  # handshake: the message (1-3) being read or written when it failed


def prologue(network_id: str) -> bytes:
    return b"heraclius/v1\x00" + network_id.encode()


# SPEC 13 exact XX sizes, by the turn before reading: message 1 is the bare ephemeral key; messages 2
# and 3 carry at least their fixed part (e, encrypted s with its tag, the Hello's tag).
_XX_SIZES = {
    0: (lambda n: n == 32, "must be 32"),
    1: (lambda n: n >= 32 + 48 + 16, "fixed part is 96"),
    2: (lambda n: n >= 48 + 16, "fixed part is 64"),
}


class StreamParser:
    """Reassembles `u32be(len) || message` frames from decrypted payloads (one link direction)."""

    def __init__(self, max_message: int):
        self.max_message = max_message
        self.buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        buf = self.buf
        buf += data
        msgs = []
        pos, end = 0, len(buf)
        while end - pos >= 4:
            n = int.from_bytes(buf[pos:pos + 4], "big")
            if n == 0 or n > self.max_message:
                err = LinkError("malformed" if n == 0 else "oversized", f"application message of {n} bytes")
                err.partial = msgs  # the complete messages before the bad frame
                del buf[:pos]
                raise err
            if end - pos - 4 < n:
                break
            msgs.append(bytes(buf[pos + 4:pos + 4 + n]))
            pos += 4 + n
        del buf[:pos]  # once per call: deleting each message from the front would copy the rest each time
        return msgs


def frame_stream(messages: list[bytes]) -> bytes:
    return b"".join(len(m).to_bytes(4, "big") + m for m in messages)


class Session:
    """One end of a Noise link.

    `check_hello(hello, remote_static)` validates the peer's Hello and returns its node id (or '')
    or raises LinkError."""

    def __init__(self, initiator: bool, static_secret: bytes, network_id: str, my_node_id: str,
                 check_hello, max_message: int, ephemeral: bytes | None = None):
        self.hs = HandshakeState(PROTOCOL, initiator, prologue(network_id), s=static_secret, e=ephemeral,
                                 auto_rekey=True)
        self.initiator = initiator
        self.hello = encode(codec.Hello(protocol_version=1, network_id=network_id, node_id=my_node_id))
        self.check_hello = check_hello
        self.max_message = max_message
        self.out = bytearray()
        self.inbuf = bytearray()
        self.stream = StreamParser(max_message)
        self._stage = 0
        self.tx = self.rx = None
        self.remote_node: str | None = None
        self.ready = False
        if initiator:
            self._frame(self.hs.write_message(b""))

    def _frame(self, msg: bytes) -> None:
        self.out += len(msg).to_bytes(2, "big") + msg

    def feed(self, data: bytes) -> list[bytes]:
        """Consume socket bytes; returns the complete application messages now available."""
        buf = self.inbuf
        buf += data
        msgs: list[bytes] = []
        pos, end = 0, len(buf)
        while end - pos >= 2:
            ln = buf[pos] << 8 | buf[pos + 1]
            if ln == 0:
                if not self.ready:  # a handshake message of the wrong size (SPEC 13)
                    err = LinkError("handshake_failed", "zero-length handshake message")
                    err.at_message = self.hs.turn + 1
                    raise err
                raise LinkError("malformed", "zero-length frame")
            if end - pos - 2 < ln:
                break
            frame = bytes(buf[pos + 2:pos + 2 + ln])
            pos += 2 + ln
            if not self.ready:
                self._handshake(frame)
                continue
            try:
                plain = self.rx.decrypt(b"", frame)
            except NoiseError as e:
                raise LinkError("decrypt_failed", str(e)) from None
            msgs += self.stream.feed(plain)
        del buf[:pos]
        return msgs

    def _handshake(self, frame: bytes) -> None:
        """One handshake message in; every failure (sizes, DH, decryption, Hello) is a LinkError."""
        try:
            self._handshake_step(frame)
        except LinkError as e:
            e.at_message = e.at_message or self._stage
            raise
        except Exception as e:  # noqa: BLE001 - whatever the remote bytes trigger stays on this link
            err = LinkError("handshake_failed", str(e) if isinstance(e, NoiseError) else f"{type(e).__name__}: {e}")
            err.at_message = self._stage
            raise err from None

    def _handshake_step(self, frame: bytes) -> None:
        turn = self.hs.turn
        self._stage = turn + 1  # reading message turn + 1; writing the next one below
        size_ok, want = _XX_SIZES[turn]
        if not size_ok(len(frame)):
            raise LinkError("handshake_failed", f"handshake message {turn + 1} of {len(frame)} bytes ({want})")
        payload = self.hs.read_message(frame)
        turn = self.hs.turn
        if (self.initiator and turn == 2) or (not self.initiator and turn == 3):
            try:
                hello = codec.decode("Hello", payload)
            except codec.DecodeError as e:
                raise LinkError("handshake_failed", f"bad Hello: {e}") from None
            if hello.protocol_version != 1:
                raise LinkError("handshake_failed", "protocol version")
            self.remote_node = self.check_hello(hello, self.hs.remote_static)
        self._stage = turn + 1
        if not self.initiator and turn == 1:
            self._frame(self.hs.write_message(self.hello))
        elif self.initiator and turn == 2:
            self._frame(self.hs.write_message(self.hello))
            self._finish()
        elif not self.initiator and turn == 3:
            self._finish()

    def _finish(self) -> None:
        i2r, r2i = self.hs.split()
        self.tx, self.rx = (i2r, r2i) if self.initiator else (r2i, i2r)
        self.ready = True

    def send(self, messages: list[bytes]) -> None:
        """Queue application messages (encoded) for sending; only once ready."""
        stream = frame_stream(messages)
        for i in range(0, len(stream), MAX_PLAIN):
            try:
                self._frame(self.tx.encrypt(b"", bytes(stream[i:i + MAX_PLAIN])))
            except NoiseError as e:
                raise LinkError("decrypt_failed", str(e)) from None


def peer_hello_checker(manifest, network_id: str, expect_node: str | None):
    """Hello check for the peer port: the static key must be the named node's x25519 key."""

    def check(hello, remote_static: bytes) -> str:
        if hello.network_id != network_id:
            raise LinkError("wrong_network", "network id differs")
        node = manifest.nodes.get(hello.node_id)
        if node is None:
            raise LinkError("unknown_node", f"unknown node id {hello.node_id!r}")
        if node.x25519 != remote_static:
            raise LinkError("handshake_failed", f"static key is not {hello.node_id}'s")
        if expect_node is not None and hello.node_id != expect_node:
            raise LinkError("handshake_failed", f"dialled {expect_node}, reached {hello.node_id}")
        return hello.node_id

    return check


def node_key_checker(manifest, node: str):
    """Hello check a client applies: the responder's static key is the dialled node's (SPEC 13)."""

    def check(hello, remote_static: bytes) -> str:
        if hello.network_id != manifest.network_id:
            raise LinkError("wrong_network", "network id differs")
        if remote_static != manifest.nodes[node].x25519:
            raise LinkError("handshake_failed", f"static key is not {node}'s")
        return node

    return check


def client_hello_checker(network_id: str):
    """Hello check on the node's client port: any key, empty node id."""

    def check(hello, remote_static: bytes) -> str:
        if hello.network_id != network_id:
            raise LinkError("wrong_network", "network id differs")
        if hello.node_id:
            raise LinkError("handshake_failed", "client Hello with a node id")
        return ""

    return check
