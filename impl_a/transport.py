"""Noise_XX links over asyncio TCP (SPEC 13): framing, Hello exchange, message stream, rekeying."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections import deque

from impl_a import heraclius_pb2 as pb
from impl_a.codec import decode, encode
from impl_a.errors import RemoteViolation
from impl_a.noise import CipherState, HandshakeState, NoiseError

PROTOCOL = "Noise_XX_25519_ChaChaPoly_BLAKE2b"
MAX_FRAME = 65535
MAX_PLAINTEXT = 65519
REKEY_EVERY = 65536
HANDSHAKE_DEADLINE = 5.0
# Listen backlog of the peer and client ports: a burst of connects is accepted (and the surplus closed
# at once, connection_limit) without waiting for SYN retransmissions; the node accepts a whole backlog
# in one go, so it also bounds the fds a burst takes for a moment (64 handshake slots + this).
LISTEN_BACKLOG = 1024
FIRST_MESSAGE_DEADLINE = 1.0  # SPEC 13.1 (errata AD-3): message 1 within 1 s of accept
LINGER_S, LINGER_BYTES = 1.0, 65536  # lingering close after a "then close" answer (errata AD-7)
RECV_CHUNK = 1 << 18


# SPEC 13: message 1 is exactly 32 bytes; messages 2 and 3 are at least their fixed part
# (message 2: e, encrypted s, payload tag; message 3: encrypted s, payload tag).
HANDSHAKE_MIN = {1: 32, 2: 32 + 48 + 16, 3: 48 + 16}


def check_handshake_size(index: int, size: int) -> None:
    if size < HANDSHAKE_MIN[index] or (index == 1 and size != 32):
        raise LinkClosed("handshake_failed", f"handshake message {index} of {size} bytes")


def prologue(network_id: str) -> bytes:
    return b"heraclius/v1\x00" + network_id.encode()


class LinkClosed(Exception):
    """The link failed; `reason` is a SPEC 15 rejection name or None for an ordinary close."""

    def __init__(self, reason: str | None, detail: str = ""):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    """One handshake frame: a zero length or a truncated frame is handshake_failed (errata AD-2)."""
    try:
        head = await reader.readexactly(2)
        (n,) = struct.unpack(">H", head)
        if n == 0:
            raise LinkClosed("handshake_failed", "zero-length frame")
        return await reader.readexactly(n)
    except asyncio.IncompleteReadError as exc:
        if exc.partial or exc.expected != 2:
            raise LinkClosed("handshake_failed", "truncated frame") from None
        raise LinkClosed(None, "connection closed") from None
    except (ConnectionError, OSError) as exc:
        raise LinkClosed(None, str(exc)) from None


def _frame(data: bytes) -> bytes:
    if not 1 <= len(data) <= MAX_FRAME:
        raise ValueError("frame size")
    return struct.pack(">H", len(data)) + data


class StreamParser:
    """Reassembles u32be(len) || message frames from decrypted payloads (SPEC 13)."""

    def __init__(self, max_message: int):
        self.max_message = max_message
        self._buf = bytearray()
        self._error: LinkClosed | None = None

    def pending(self) -> int:
        return len(self._buf)

    def check(self) -> None:
        """Raise the error found after the frames returned by the previous feed(), if any."""
        if self._error is not None:
            raise self._error

    def feed(self, payload: bytes) -> list[bytes]:
        """Append one payload; return the complete messages. Raises LinkClosed on a bad length,
        as soon as the 4-byte prefix is known (an over-long body is never awaited)."""
        self.check()
        self._buf += payload
        out = []
        while len(self._buf) >= 4:
            (n,) = struct.unpack(">I", self._buf[:4])
            if n == 0 or n > self.max_message:
                err = LinkClosed("oversized" if n else "malformed", f"application length {n}")
                self._buf.clear()  # nothing after a bad length is ever read
                if not out:
                    raise err
                self._error = err  # hand out the good frames first; fail on the next call
                break
            if len(self._buf) < 4 + n:
                break
            out.append(bytes(self._buf[4:4 + n]))
            del self._buf[:4 + n]
        return out


def split_stream(stream: bytes) -> list[bytes]:
    """Cut an application stream into Noise payloads of at most 65519 bytes."""
    return [stream[i:i + MAX_PLAINTEXT] for i in range(0, len(stream), MAX_PLAINTEXT)]


def frame_message(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


class Link:
    """An established Noise transport: whole application messages in and out."""

    def __init__(self, reader, writer, send: CipherState, recv: CipherState, remote_static: bytes,
                 hello: pb.Hello, max_message: int, chunk: int = RECV_CHUNK):
        self.reader, self.writer = reader, writer
        self.send_cs, self.recv_cs = send, recv
        self.remote_static = remote_static
        self.hello = hello
        self.max_message = max_message
        self._parser = StreamParser(max_message)
        self._ready: deque[bytes] = deque()
        self._ready_bytes = 0
        self.chunk = chunk
        # SPEC 13.1 hooks (client port): meter(delta) tracks the bytes this link holds that were read
        # but not handled yet; gate() is awaited before every socket read (backpressure).
        self.meter = None
        self.gate = None
        self._held = 0
        self._rbuf = bytearray()
        self._rpos = 0
        self._out: list[bytes] = []
        self._out_bytes = 0
        self._flush_armed = False
        self.closed = False
        self._lingering = False
        self._linger_task = None
        self.written = 0  # bytes handed to the transport

    def send_nowait(self, data: bytes) -> None:
        """Queue one application message. Everything queued during one event-loop turn leaves in
        one write, packed into as few Noise payloads as fit (SPEC 13 lets a payload hold several)."""
        if self.closed:
            raise LinkClosed(None, "link closed")
        self._out.append(frame_message(data))
        self._out_bytes += len(data) + 4
        if not self._flush_armed:
            self._flush_armed = True
            asyncio.get_running_loop().call_soon(self._flush_out)

    def _flush_out(self) -> None:
        self._flush_armed = False
        if not self._out or self.closed:
            return
        stream = b"".join(self._out)
        self._out.clear()
        self._out_bytes = 0
        frames = []
        try:
            for chunk in split_stream(stream):
                frames.append(_frame(self.send_cs.encrypt_with_ad(b"", chunk)))
        except NoiseError:  # nonce exhausted: the link cannot carry more
            self.close()
            return
        data = b"".join(frames)
        self.written += len(data)
        self.writer.write(data)

    def taken(self) -> int:
        """Bytes of this link the kernel has accepted so far (what the peer's reading made room for)."""
        try:
            buffered = self.writer.transport.get_write_buffer_size()
        except (AttributeError, RuntimeError):
            buffered = 0
        return self.written - buffered

    def backlog(self) -> int:
        """Bytes accepted by send_nowait and not yet handed to the kernel."""
        try:
            buffered = self.writer.transport.get_write_buffer_size()
        except (AttributeError, RuntimeError):
            buffered = 0
        return self._out_bytes + buffered

    async def drain(self) -> None:
        try:
            await self.writer.drain()
        except (ConnectionError, OSError) as exc:
            raise LinkClosed(None, str(exc)) from None

    async def send_bytes(self, data: bytes) -> None:
        self.send_nowait(data)
        await self.drain()

    async def send(self, msg) -> None:
        await self.send_bytes(encode(msg))

    def _next_frame(self) -> bytes | None:
        """The next complete Noise frame in the receive buffer, or None if more bytes are needed."""
        buf, pos = self._rbuf, self._rpos
        if len(buf) - pos < 2:
            return None
        n = buf[pos] << 8 | buf[pos + 1]
        if n == 0:
            raise LinkClosed("malformed", "zero-length frame")
        if len(buf) - pos < 2 + n:
            return None
        self._rpos = pos + 2 + n
        return bytes(buf[pos + 2:pos + 2 + n])

    def held(self) -> int:
        """Bytes read from the socket and not yet handed out: frames, a partial message, ready ones."""
        return len(self._rbuf) - self._rpos + self._parser.pending() + self._ready_bytes

    def _account(self) -> None:
        if self.meter is not None:
            now = self.held()
            if now != self._held:
                self.meter(now - self._held)
                self._held = now

    async def recv_bytes(self) -> bytes:
        try:
            data = await self._recv_bytes()
        finally:
            self._account()
        return data

    async def _recv_bytes(self) -> bytes:
        # Reads whatever the socket has (up to self.chunk) and cuts every complete frame out of it,
        # instead of two awaited readexactly() calls per frame. Nothing is allocated for an
        # announced length before its bytes arrive (SPEC 13 incremental reading).
        while not self._ready:
            self._parser.check()
            frame = self._next_frame()
            if frame is None:
                if self._rpos:
                    del self._rbuf[:self._rpos]
                    self._rpos = 0
                self._account()
                if self.gate is not None:
                    await self.gate(self)
                try:
                    chunk = await self.reader.read(self.chunk)
                except (ConnectionError, OSError) as exc:
                    raise LinkClosed(None, str(exc)) from None
                if not chunk:
                    if len(self._rbuf) > self._rpos:  # errata AD-2: a truncated frame is malformed
                        raise LinkClosed("malformed", "truncated frame")
                    raise LinkClosed(None, "connection closed")
                self._rbuf += chunk
                continue
            try:
                payload = self.recv_cs.decrypt_with_ad(b"", frame)
            except NoiseError as exc:
                raise LinkClosed("decrypt_failed", str(exc)) from None
            for m in self._parser.feed(payload):
                self._ready.append(m)
                self._ready_bytes += len(m)
        m = self._ready.popleft()
        self._ready_bytes -= len(m)
        return m

    async def recv(self, cls):
        data = await self.recv_bytes()
        try:
            return decode(cls, data)
        except RemoteViolation as exc:
            raise LinkClosed(exc.reason, exc.detail) from None

    def close(self) -> None:
        """Close after what was queued (e.g. a last ClientError) is handed to the transport."""
        if self._lingering:
            return  # linger() closes it
        if not self.closed and self._out:
            self._flush_out()
        self._shut()
        with contextlib.suppress(Exception):  # already closed by the peer
            self.writer.close()

    def linger_close(self) -> None:
        """Close after a "then close" answer (errata AD-7): send what is queued, shut the sending
        side, and read off what the client still sends (at most LINGER_BYTES or LINGER_S), so that a
        TCP reset does not destroy the answer."""
        if self.closed:
            return
        if self._out:
            self._flush_out()
        self._shut()
        self._lingering = True
        self._linger_task = asyncio.get_running_loop().create_task(linger(self.reader, self.writer))

    def abort(self) -> None:
        """Close at once, dropping unsent bytes (a peer that does not read, SPEC 13.1 slow_peer)."""
        self._out.clear()
        self._shut()
        with contextlib.suppress(Exception):
            self.writer.transport.abort()

    def _shut(self) -> None:
        self.closed = True
        if self.meter is not None and self._held:
            self.meter(-self._held)
            self._held = 0
        self.meter = None


async def linger(reader, writer, seconds: float = LINGER_S) -> None:
    """Shut our sending side, read and discard for up to `seconds` or LINGER_BYTES, then close."""
    with contextlib.suppress(Exception):
        if writer.can_write_eof():
            writer.write_eof()
        loop = asyncio.get_running_loop()
        end, got = loop.time() + seconds, 0
        while seconds > 0 and got < LINGER_BYTES and loop.time() < end:
            chunk = await asyncio.wait_for(reader.read(LINGER_BYTES), end - loop.time())
            if not chunk:
                break
            got += len(chunk)
    with contextlib.suppress(Exception):
        writer.close()


def check_peer_identity(manifest, hello: pb.Hello, remote_static: bytes) -> None:
    """Peer port, either side: the Hello names a manifest node whose x25519 key the peer proved."""
    node = manifest.nodes.get(hello.node_id) if hello.node_id else None
    if node is None:
        raise LinkClosed("unknown_node", f"node id {hello.node_id!r}")
    if node.x25519_public != remote_static:
        raise LinkClosed("handshake_failed", f"static key of {hello.node_id} does not match the manifest")


def check_client_hello(hello: pb.Hello, remote_static: bytes) -> None:
    if hello.node_id:
        raise LinkClosed("handshake_failed", "client hello carries a node id")


def hello_ok(hello: pb.Hello, network_id: str) -> None:
    if hello.protocol_version != 1:
        raise LinkClosed("handshake_failed", f"protocol version {hello.protocol_version}")
    if hello.network_id != network_id:
        raise LinkClosed("wrong_network", f"network {hello.network_id!r}")


async def connect(host: str, port: int, network_id: str, static: bytes, my_hello: pb.Hello,
                  expected_static: bytes, max_message: int, expected_node: str | None = None,
                  timeout: float = HANDSHAKE_DEADLINE, local_host: str | None = None) -> Link:
    """Dial and run the initiator side; the responder must present expected_static (and node id)."""
    async def run() -> Link:
        local = (local_host, 0) if local_host else None
        reader, writer = await asyncio.open_connection(host, port, local_addr=local)
        try:
            hs = HandshakeState(PROTOCOL, True, prologue(network_id), static, rekey_every=REKEY_EVERY)
            writer.write(_frame(hs.write_message(b"")))
            second = await _read_frame(reader)
            check_handshake_size(2, len(second))
            payload = hs.read_message(second)
            try:
                hello = decode(pb.Hello, payload)
            except RemoteViolation as exc:
                raise LinkClosed("handshake_failed", exc.detail) from None
            hello_ok(hello, network_id)
            if hs.rs != expected_static or (expected_node is not None and hello.node_id != expected_node):
                raise LinkClosed("handshake_failed", "responder is not the node dialled")
            writer.write(_frame(hs.write_message(encode(my_hello))))
            await writer.drain()
            send, recv = hs.split()
            return Link(reader, writer, send, recv, hs.rs, hello, max_message)
        except BaseException:
            writer.close()
            raise

    try:
        return await asyncio.wait_for(run(), timeout)
    except NoiseError as exc:
        raise LinkClosed("handshake_failed", str(exc)) from None
    except (TimeoutError, ConnectionError, OSError) as exc:
        raise LinkClosed(None, f"connect failed: {exc!r}") from None


def _cut_short(reader: asyncio.StreamReader, late: list) -> None:
    late.append(True)
    reader.feed_eof()


async def accept(reader, writer, network_id: str, static: bytes, my_hello: pb.Hello, max_message: int,
                 check_peer=None, timeout: float = HANDSHAKE_DEADLINE, chunk: int = RECV_CHUNK) -> Link:
    """Responder side. check_peer(hello, remote_static) raises LinkClosed to refuse the initiator.
    The deadline runs from the call (made right after the accept)."""
    async def run() -> Link:
        hs = HandshakeState(PROTOCOL, False, prologue(network_id), static, rekey_every=REKEY_EVERY)
        # message 1 within 1 s: a timer, not another wait_for task (a flood accepts thousands)
        late = []
        timer = asyncio.get_running_loop().call_later(FIRST_MESSAGE_DEADLINE, _cut_short, reader, late)
        try:
            first = await _read_frame(reader)
        except LinkClosed:
            if late:
                raise LinkClosed("handshake_failed", "no message 1 within 1 s") from None
            raise
        finally:
            timer.cancel()
        check_handshake_size(1, len(first))
        hs.read_message(first)
        writer.write(_frame(hs.write_message(encode(my_hello))))
        await writer.drain()
        third = await _read_frame(reader)
        check_handshake_size(3, len(third))
        payload = hs.read_message(third)
        try:
            hello = decode(pb.Hello, payload)
        except RemoteViolation as exc:
            raise LinkClosed("handshake_failed", exc.detail) from None
        hello_ok(hello, network_id)
        if check_peer is not None:
            check_peer(hello, hs.rs)
        send, recv = hs.split()
        return Link(reader, writer, send, recv, hs.rs, hello, max_message, chunk)

    try:
        return await asyncio.wait_for(run(), timeout)
    except NoiseError as exc:
        raise LinkClosed("handshake_failed", str(exc)) from None
    except TimeoutError:
        raise LinkClosed("handshake_failed", "handshake deadline") from None
