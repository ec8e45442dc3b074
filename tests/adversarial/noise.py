"""A minimal Noise_XX_25519_ChaChaPoly_BLAKE2b initiator written from SPEC 13 (Noise revision 34),
for attacking nodes: it can also send crafted handshake messages (zero / small-order ephemeral and
static keys, wrong sizes, garbage ciphertext). Test code only: it imports no implementation.

Built on pyca `cryptography` (X25519, ChaCha20-Poly1305) and `hashlib.blake2b` (HMAC-BLAKE2b HKDF).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import socket
import struct

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

PROTOCOL_NAME = b"Noise_XX_25519_ChaChaPoly_BLAKE2b"
HASHLEN = 64
MAX_NOISE = 65535
MAX_PLAINTEXT = 65519
TAG = 16

# RFC 7748 6.1 / libsodium blocklist: X25519 public keys of small order (DH result all zero),
# with their non-canonical encodings (bit 255 set, or >= p).
SMALL_ORDER = {
    "zero": bytes(32),
    "one": (1).to_bytes(32, "little"),
    "order8_a": bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    "order8_b": bytes.fromhex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
    "p_minus_1": bytes.fromhex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    "p": bytes.fromhex("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    "p_plus_1": bytes.fromhex("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    "zero_high_bit": bytes(31) + b"\x80",
    "order8_a_high_bit": bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b880"),
}


class HandshakeError(Exception):
    pass


def prologue(network_id: str) -> bytes:
    return b"heraclius/v1\x00" + network_id.encode()


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.blake2b).digest()


def hkdf(ck: bytes, ikm: bytes, n: int) -> list[bytes]:
    temp = _hmac(ck, ikm)
    out1 = _hmac(temp, b"\x01")
    out2 = _hmac(temp, out1 + b"\x02")
    if n == 2:
        return [out1, out2]
    return [out1, out2, _hmac(temp, out2 + b"\x03")]


def _nonce(n: int) -> bytes:
    return b"\x00\x00\x00\x00" + struct.pack("<Q", n)


class CipherState:
    def __init__(self, k: bytes | None = None):
        self.k = k
        self.n = 0

    def encrypt(self, ad: bytes, pt: bytes) -> bytes:
        if self.k is None:
            return pt
        ct = ChaCha20Poly1305(self.k).encrypt(_nonce(self.n), pt, ad)
        self.n += 1
        self._maybe_rekey()
        return ct

    def decrypt(self, ad: bytes, ct: bytes) -> bytes:
        if self.k is None:
            return ct
        pt = ChaCha20Poly1305(self.k).decrypt(_nonce(self.n), ct, ad)  # raises InvalidTag
        self.n += 1
        self._maybe_rekey()
        return pt

    def _maybe_rekey(self) -> None:
        # SPEC 13: REKEY after the message with nonce n where (n + 1) mod 65536 == 0 (self.n is n + 1)
        if self.n % 65536 == 0:
            self.k = ChaCha20Poly1305(self.k).encrypt(_nonce(2**64 - 1), bytes(32), b"")[:32]


class SymmetricState:
    def __init__(self, pro: bytes):
        self.h = PROTOCOL_NAME.ljust(HASHLEN, b"\x00")
        self.ck = self.h
        self.cs = CipherState()
        self.mix_hash(pro)

    def mix_hash(self, data: bytes) -> None:
        self.h = hashlib.blake2b(self.h + data).digest()

    def mix_key(self, ikm: bytes) -> None:
        self.ck, temp = hkdf(self.ck, ikm, 2)
        self.cs = CipherState(temp[:32])

    def encrypt_and_hash(self, pt: bytes) -> bytes:
        ct = self.cs.encrypt(self.h, pt)
        self.mix_hash(ct)
        return ct

    def decrypt_and_hash(self, ct: bytes) -> bytes:
        pt = self.cs.decrypt(self.h, ct)
        self.mix_hash(ct)
        return pt

    def split(self) -> tuple[CipherState, CipherState]:
        t1, t2 = hkdf(self.ck, b"", 2)
        return CipherState(t1[:32]), CipherState(t2[:32])


def _priv(raw: bytes | None) -> X25519PrivateKey:
    return X25519PrivateKey.from_private_bytes(raw) if raw is not None else X25519PrivateKey.generate()


def pub_bytes(k: X25519PrivateKey) -> bytes:
    return k.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def priv_bytes(k: X25519PrivateKey) -> bytes:
    return k.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


def dh(k: X25519PrivateKey, remote_pub: bytes) -> bytes:
    """X25519; an all-zero result (small-order remote key) is an error, as SPEC 13 requires."""
    try:
        out = k.exchange(X25519PublicKey.from_public_bytes(remote_pub))
    except ValueError as e:  # cryptography refuses the all-zero result itself
        raise HandshakeError(f"X25519 result is zero: {e}") from None
    if out == bytes(32):
        raise HandshakeError("X25519 result is zero")
    return out


class Initiator:
    """The XX initiator's state machine, usable offline (vectors) or over a socket (Session).

    Overrides for attacks: `e_pub_override` replaces the ephemeral public key sent in message 1,
    `s_pub_override` the static key sent in message 3 (the DH then uses our real key, so the
    message is what a peer holding that bogus key could not have produced; the responder must
    reject it on its own DH check)."""

    def __init__(self, network_id: str, static: bytes | None = None, ephemeral: bytes | None = None,
                 pro: bytes | None = None):
        self.ss = SymmetricState(pro if pro is not None else prologue(network_id))
        self.s = _priv(static)
        self.e = _priv(ephemeral)
        self.re: bytes | None = None
        self.rs: bytes | None = None
        self.remote_payload: bytes | None = None

    def write_message_1(self, e_pub_override: bytes | None = None, payload: bytes = b"") -> bytes:
        e_pub = pub_bytes(self.e) if e_pub_override is None else e_pub_override
        self.ss.mix_hash(e_pub)
        return e_pub + self.ss.encrypt_and_hash(payload)

    def read_message_2(self, msg: bytes) -> bytes:
        if len(msg) < 32 + 48 + TAG:
            raise HandshakeError(f"message 2 of {len(msg)} bytes is shorter than its fixed part")
        self.re = msg[:32]
        self.ss.mix_hash(self.re)
        self.ss.mix_key(dh(self.e, self.re))
        self.rs = self.ss.decrypt_and_hash(msg[32:80])
        self.ss.mix_key(dh(self.e, self.rs))
        self.remote_payload = self.ss.decrypt_and_hash(msg[80:])
        return self.remote_payload

    def write_message_3(self, payload: bytes, s_pub_override: bytes | None = None) -> tuple[bytes, CipherState, CipherState]:
        s_pub = pub_bytes(self.s) if s_pub_override is None else s_pub_override
        ct_s = self.ss.encrypt_and_hash(s_pub)
        self.ss.mix_key(dh(self.s, self.re))
        ct_p = self.ss.encrypt_and_hash(payload)
        send, recv = self.ss.split()
        return ct_s + ct_p, send, recv

    @property
    def handshake_hash(self) -> bytes:
        return self.ss.h


# --- framing over sockets --------------------------------------------------------------------

def frame(msg: bytes) -> bytes:
    return struct.pack(">H", len(msg)) + msg


def recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"peer closed after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def recv_frame(sock: socket.socket) -> bytes:
    (n,) = struct.unpack(">H", recv_exact(sock, 2))
    return recv_exact(sock, n)


def connect(addr: tuple[str, int], timeout: float = 5.0, rcvbuf: int | None = None,
            sndbuf: int | None = None) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    if sndbuf is not None:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    s.settimeout(timeout)
    s.connect(addr)
    return s


def closed_by_peer(sock: socket.socket, timeout: float) -> bool:
    """True when the peer closes (EOF or reset) within `timeout` s; data it sends first is read and
    discarded (e.g. nothing, or an error)."""
    sock.settimeout(timeout)
    try:
        while True:
            if not sock.recv(65536):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False
    except OSError:
        return True


class Session:
    """An established Noise session over TCP (after a complete handshake).

    Application stream: `u32be(len) || message`, split into Noise payloads of <= 65519 bytes."""

    def __init__(self, sock: socket.socket, send: CipherState, recv: CipherState, sent_raw: list[bytes],
                 remote_static: bytes, remote_hello: bytes):
        self.sock = sock
        self.send_cs = send
        self.recv_cs = recv
        self.sent_raw = sent_raw  # every byte string written to the socket, in order (for replays)
        self.remote_static = remote_static
        self.remote_hello = remote_hello
        self._plain = bytearray()
        self.pending = b""

    def send_raw(self, data: bytes) -> None:
        if self.pending:  # a deferred message 3 goes out with the first bytes after it
            data, self.pending = self.pending + data, b""
        self.sent_raw.append(data)
        self.sock.sendall(data)

    def send_payload(self, payload: bytes) -> None:
        self.send_raw(frame(self.send_cs.encrypt(b"", payload)))

    def send_app(self, data: bytes) -> None:
        """One application message (length prefix added), split into Noise payloads."""
        self.send_stream(struct.pack(">I", len(data)) + data)

    def send_stream(self, stream: bytes) -> None:
        for i in range(0, len(stream), MAX_PLAINTEXT):
            self.send_payload(stream[i:i + MAX_PLAINTEXT])

    def recv_app(self, timeout: float = 10.0) -> bytes:
        self.sock.settimeout(timeout)
        while True:
            if len(self._plain) >= 4:
                (n,) = struct.unpack(">I", self._plain[:4])
                if len(self._plain) >= 4 + n:
                    msg = bytes(self._plain[4:4 + n])
                    del self._plain[:4 + n]
                    return msg
            ct = recv_frame(self.sock)
            self._plain += self.recv_cs.decrypt(b"", ct)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def handshake(addr: tuple[str, int], network_id: str, hello: bytes, expect_static: bytes | None = None,
              static: bytes | None = None, timeout: float = 5.0, rcvbuf: int | None = None,
              defer_m3: bool = False, sndbuf: int | None = None) -> Session:
    """A complete, correct XX handshake as initiator; `hello` is our encoded Hello payload. With
    `defer_m3`, message 3 is sent together with the first transport bytes (one write), so the node
    reads both before anything else can happen on the link."""
    sock = connect(addr, timeout, rcvbuf, sndbuf)
    try:
        ini = Initiator(network_id, static=static)
        sent = []
        m1 = frame(ini.write_message_1())
        sent.append(m1)
        sock.sendall(m1)
        payload = ini.read_message_2(recv_frame(sock))
        if expect_static is not None and ini.rs != expect_static:
            raise HandshakeError("responder static key is not the manifest's")
        m3, send, recv = ini.write_message_3(hello)
        m3 = frame(m3)
        sess = Session(sock, send, recv, sent, ini.rs, payload)
        if defer_m3:
            sess.pending = m3
        else:
            sent.append(m3)
            sock.sendall(m3)
        return sess
    except BaseException:
        sock.close()
        raise


def random_bytes(n: int) -> bytes:
    return os.urandom(n)
