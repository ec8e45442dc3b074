"""Just enough of SPEC 5/6/14 for the adversarial suite, written from heraclius.proto: a canonical
protobuf writer for Hello / ClientRequest / ClientMessage, a lenient reader for ClientReply, and
client request signing (domain `client-request`). Imports no implementation."""

from __future__ import annotations

import struct
import threading
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

GET, PUT = 1, 2
ERROR_CODES = {1: "MALFORMED", 2: "BAD_SIGNATURE", 3: "UNAUTHORISED", 4: "WRONG_CLUSTER", 5: "TOO_LARGE",
               6: "STALE", 7: "OVERLOADED", 8: "TIMEOUT"}


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def f_varint(num: int, v: int) -> bytes:
    return varint(num << 3) + varint(v) if v else b""


def f_bytes(num: int, v: bytes, keep_empty: bool = False) -> bytes:
    if not v and not keep_empty:
        return b""
    return varint(num << 3 | 2) + varint(len(v)) + v


def hello(network_id: str, node_id: str = "", version: int = 1) -> bytes:
    return f_varint(1, version) + f_bytes(2, network_id.encode()) + f_bytes(3, node_id.encode())


def operation(kind: int, key: bytes, value: bytes = b"") -> bytes:
    return f_varint(1, kind) + f_bytes(2, key) + f_bytes(3, value)


def client_request(client_key: bytes, request_id: int, cluster_id: str, op: bytes, signature: bytes = b"") -> bytes:
    return (f_bytes(1, client_key) + f_varint(2, request_id) + f_bytes(3, cluster_id.encode())
            + f_bytes(4, op, keep_empty=True) + f_bytes(5, signature))


def signing_bytes(domain: str, network_id: str, body: bytes) -> bytes:
    nid = network_id.encode()
    return b"heraclius/v1/" + domain.encode() + b"\x00" + struct.pack(">H", len(nid)) + nid + body


def submit(req: bytes) -> bytes:
    return f_bytes(1, req, keep_empty=True)


def fetch(req: bytes) -> bytes:
    return f_bytes(2, req, keep_empty=True)


_last_id = 0
_id_lock = threading.Lock()


def fresh_id() -> int:
    """Request ids as the reference client picks them (SPEC 14.2: microseconds since the epoch),
    strictly increasing in this process, so that our ids stay within the dedup window of the
    clients' own libraries sharing the key (ids far ahead would make theirs STALE)."""
    global _last_id
    with _id_lock:
        _last_id = max(time.time_ns() // 1000, _last_id + 1)
        return _last_id


class Client:
    """A client key (SPEC 2 key file) that signs requests for one network and coordinator cluster."""

    def __init__(self, key_file: Path, network_id: str, cluster_id: str):
        seed = bytes.fromhex(Path(key_file).read_text().strip())
        self.sk = Ed25519PrivateKey.from_private_bytes(seed)
        self.pub = self.sk.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.network_id = network_id
        self.cluster_id = cluster_id

    def request(self, kind: int, key: bytes, value: bytes = b"", request_id: int | None = None,
                sign: bool = True) -> tuple[int, bytes]:
        """(request_id, encoded signed ClientRequest)."""
        if request_id is None:
            request_id = fresh_id()
        body = client_request(self.pub, request_id, self.cluster_id, operation(kind, key, value))
        sig = self.sk.sign(signing_bytes("client-request", self.network_id, body)) if sign else bytes(64)
        return request_id, client_request(self.pub, request_id, self.cluster_id, operation(kind, key, value), sig)


# --- lenient reader ---------------------------------------------------------------------------

def read_varint(b: bytes, i: int) -> tuple[int, int]:
    shift = v = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        if not c & 0x80:
            return v, i
        shift += 7


def fields(b: bytes) -> list[tuple[int, int | bytes]]:
    """[(field number, int or bytes)] of one message."""
    out = []
    i = 0
    while i < len(b):
        tag, i = read_varint(b, i)
        num, wt = tag >> 3, tag & 7
        if wt == 0:
            v, i = read_varint(b, i)
        elif wt == 2:
            n, i = read_varint(b, i)
            v = b[i:i + n]
            i += n
        else:
            raise ValueError(f"wire type {wt}")
        out.append((num, v))
    return out


def first(b: bytes, num: int, default=None):
    for n, v in fields(b):
        if n == num:
            return v
    return default


def all_of(b: bytes, num: int) -> list:
    return [v for n, v in fields(b) if n == num]


def parse_reply(b: bytes) -> dict:
    """ClientReply -> {"error": code name, "request_id": id} or {"answer": {...}} with the compact
    decision's header height/cluster and its leaf's responses (not validated: tests only look)."""
    (num, body), = fields(b)
    if num == 2:
        code = first(body, 1, 0)
        return {"error": ERROR_CODES.get(code, str(code)), "request_id": first(body, 2, 0),
                "message": first(body, 3, b"").decode(errors="replace")}
    header = first(body, 1, b"")
    leaf = first(body, 2, b"")
    responses = []
    for r in all_of(leaf, 7):
        responses.append({"request_id": first(r, 1, 0), "kind": first(r, 2, 0), "found": bool(first(r, 3, 0)),
                          "value": first(r, 4, b""), "shard_id": first(r, 5, b"").decode(),
                          "shard_height": first(r, 6, 0)})
    return {"answer": {"cluster": first(header, 1, b"").decode(), "height": first(header, 2, 0),
                       "responses": responses, "qc_signatures": len(all_of(first(body, 6, b""), 1))}}
