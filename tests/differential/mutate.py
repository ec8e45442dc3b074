"""Seeded, deterministic mutators of adapter requests (SPEC 17.1 inputs).

`mutate(seed, rng, pool)` returns a new request (fields only) and a one-line description of what was
done. Byte fields holding a protobuf message are mutated at three levels, picked at random:
raw bytes (bit flips, insert/delete, truncation, splices), the protobuf wire format (parsed here
generically, recursing into sub-messages by the schema table: field deletion, duplication, reordering,
unknown fields, wire-type changes, non-minimal and off-by-one length/tag varints, varint values) and
decoded values (strictly decoded by the reference codec, one field edited with its type, re-encoded:
signatures, keys, proofs, ids, heights, repeated-field reordering...). JSON inputs (manifests,
renderings for `encode`) get JSON-level edits, lists (batches, leaves, proofs) list edits, integers
boundary values. Everything depends only on the `random.Random` given, so a seed reproduces a run.
"""

from __future__ import annotations

import copy
import json
import random

from wire_spec.vectors.generator import codec
from wire_spec.vectors.generator.schema import ENUMS, MESSAGES, field_by_number

from .corpus import DOMAIN_MESSAGES, Seed

INTERESTING_INTS = [0, 1, 2, 7, 127, 128, 255, 256, 65535, 65536, 2**31 - 1, 2**32 - 1, 2**32, 2**53 + 1,
                    2**63 - 1, 2**63, 2**64 - 1, 2**64, -1]
INTERESTING_BYTES = [0x00, 0x01, 0x7F, 0x80, 0xFF, 0x08, 0x0A, 0x12, 0x1A]
ED_L = 2**252 + 27742317777372353535851937790883648493
P = 2**255 - 19
SMALL_ORDER = [bytes.fromhex(h) for h in (
    "0100000000000000000000000000000000000000000000000000000000000000",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000080",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
)]
STRINGS = ["", "c0", "c1", "s0", "s1", "x", "c0-n0", "client:", "client:00", "é", "\u0000", "C0", "c0 ", "9" * 70]
TRICKY_UTF8 = [b"\xc0\x80", b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xf4\x90\x80\x80", b"\xef\xbf\xbe",
               b"\xef\xbb\xbfc0", b"c0\x00", b"\xe0\x80\xaf", b"\xf0\x9f\x98\x80", b"\xc3", b"\x80", b"\xff",
               b"\xf8\x88\x80\x80\x80", b"\xe2\x80\xae", b"\xc2\xa0", b"c\xcc\x81"]
HOT_NAMES = {"signature", "signatures", "proof", "client_key", "outputs_root", "parent_hash", "inputs_hash",
             "leaf_index", "leaf_count", "seq", "height", "node_id", "request_id", "cluster_id", "destination"}


# ------------------------------------------------------------------ raw bytes

def mutate_bytes(data: bytes, rng: random.Random, pool: list[bytes] = ()) -> tuple[bytes, str]:
    b = bytearray(data)
    choice = rng.randrange(8) if b else rng.choice([1, 7])
    if choice == 0:
        i = rng.randrange(len(b))
        bit = rng.randrange(8)
        b[i] ^= 1 << bit
        return bytes(b), f"flip bit {bit} of byte {i}"
    if choice == 1:
        i = rng.randrange(len(b) + 1)
        v = rng.choice(INTERESTING_BYTES + [rng.randrange(256)])
        b[i:i] = bytes([v])
        return bytes(b), f"insert byte {v:02x} at {i}"
    if choice == 2:
        i = rng.randrange(len(b))
        n = rng.choice([1, 1, 1, 2, 4, 8])
        del b[i:i + n]
        return bytes(b), f"delete {n} byte(s) at {i}"
    if choice == 3:
        n = rng.randrange(len(b))
        return bytes(b[:n]), f"truncate to {n} bytes"
    if choice == 4:
        i = rng.randrange(len(b))
        v = rng.choice(INTERESTING_BYTES)
        b[i] = v
        return bytes(b), f"set byte {i} to {v:02x}"
    if choice == 5:
        i = rng.randrange(len(b))
        j = rng.randrange(i, min(len(b), i + 16) + 1)
        b[j:j] = b[i:j]
        return bytes(b), f"duplicate bytes {i}..{j}"
    if choice == 6 and pool:
        other = rng.choice(pool)
        i, j = rng.randrange(len(b) + 1), rng.randrange(len(other) + 1)
        return bytes(b[:i]) + other[j:], f"splice: first {i} bytes + another encoding from {j}"
    extra = bytes(rng.randrange(256) for _ in range(rng.choice([1, 2, 5, 16])))
    return bytes(b) + extra, f"append {extra.hex()}"


# ------------------------------------------------------------------ protobuf wire level

def varint(v: int) -> bytes:
    out = bytearray()
    while True:
        bits = v & 0x7F
        v >>= 7
        if v:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def padded(v: int, extra: int) -> bytes:
    b = bytearray(varint(v))
    b[-1] |= 0x80
    b += b"\x80" * (extra - 1) + b"\x00"
    return bytes(b)


def read_varint(b: bytes, pos: int) -> tuple[int, int]:
    v = shift = 0
    for i in range(10):
        if pos + i >= len(b):
            raise ValueError("truncated varint")
        byte = b[pos + i]
        v |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return v, pos + i + 1
    raise ValueError("varint longer than 10 bytes")


class WireField:
    """One field as found on the wire: tag bytes, and either a varint/fixed value or length + payload."""

    def __init__(self, number: int, wt: int, tag: bytes, head: bytes, payload: bytes):
        self.number, self.wt, self.tag, self.head, self.payload = number, wt, tag, head, payload

    def bytes(self) -> bytes:
        return self.tag + self.head + self.payload


def parse(data: bytes) -> list[WireField] | None:
    """Lenient generic split of a message into fields; None when it does not parse."""
    pos, out = 0, []
    try:
        while pos < len(data):
            start = pos
            key, pos = read_varint(data, pos)
            number, wt = key >> 3, key & 7
            tag = data[start:pos]
            if wt == 0:
                vstart = pos
                _, pos = read_varint(data, pos)
                out.append(WireField(number, wt, tag, data[vstart:pos], b""))
            elif wt == 2:
                lstart = pos
                n, pos = read_varint(data, pos)
                if pos + n > len(data):
                    return None
                out.append(WireField(number, wt, tag, data[lstart:pos], data[pos:pos + n]))
                pos += n
            elif wt in (1, 5):
                size = 8 if wt == 1 else 4
                if pos + size > len(data):
                    return None
                out.append(WireField(number, wt, tag, data[pos:pos + size], b""))
                pos += size
            else:
                return None
    except ValueError:
        return None
    return out


def _join(fields: list[WireField]) -> bytes:
    return b"".join(f.bytes() for f in fields)


def mutate_wire(data: bytes, message: str | None, rng: random.Random, pool: list[bytes], depth: int = 0
                ) -> tuple[bytes, str] | None:
    fields = parse(data)
    if fields is None:
        return None
    sub = []
    if message in MESSAGES:
        for i, f in enumerate(fields):
            sf = field_by_number(message, f.number)
            if f.wt == 2 and sf is not None and sf.type.startswith("msg:"):
                sub.append((i, sf.type[4:], sf.name))
    if sub and depth < 6 and rng.random() < 0.45:
        i, inner, name = rng.choice(sub)
        got = mutate_wire(fields[i].payload, inner, rng, [], depth + 1)
        if got is not None:
            payload, what = got
            f = fields[i]
            fields[i] = WireField(f.number, f.wt, f.tag, varint(len(payload)), payload)
            return _join(fields), f"in {name}: {what}"
    n = len(fields)
    choice = rng.randrange(12)
    if n == 0:
        choice = 4
    if choice == 0:
        i = rng.randrange(n)
        del fields[i]
        return _join(fields), f"delete field #{fields and i} (wire)"
    if choice == 1:
        i = rng.randrange(n)
        fields.insert(i + 1, fields[i])
        return _join(fields), f"duplicate field {fields[i].number} (wire)"
    if choice == 2 and n > 1:
        i, j = rng.sample(range(n), 2)
        fields[i], fields[j] = fields[j], fields[i]
        return _join(fields), f"swap fields {fields[j].number} and {fields[i].number} (wire)"
    if choice == 3 and n > 1:
        rng.shuffle(fields)
        return _join(fields), "shuffle fields (wire)"
    if choice == 4:
        number = rng.choice([1, 2, 3, 4, 5, 6, 7, 9, 15, 16, 100, 1000, 2**29 - 1, 0])
        wt = rng.choice([0, 2, 1, 5, 3, 4])
        if wt == 0:
            body = varint(rng.choice(INTERESTING_INTS[1:-1]))
        elif wt == 2:
            p = bytes(rng.randrange(256) for _ in range(rng.randrange(4)))
            body = varint(len(p)) + p
        elif wt in (1, 5):
            body = bytes(8 if wt == 1 else 4)
        else:
            body = b""
        extra = varint((number << 3) | wt) + body
        i = rng.randrange(n + 1)
        return _join(fields[:i]) + extra + _join(fields[i:]), f"insert field {number} wire type {wt} at {i}"
    i = rng.randrange(n)
    f = fields[i]
    if choice == 5:
        fields[i] = WireField(f.number, f.wt, padded(f.number << 3 | f.wt, rng.choice([1, 2, 5])), f.head, f.payload)
        return _join(fields), f"non-minimal tag of field {f.number}"
    if choice == 6 and f.wt == 2:
        ln = len(f.payload)
        head = rng.choice([padded(ln, 1), padded(ln, 3), varint(ln + 1), varint(max(0, ln - 1)), varint(2**32 + ln),
                           b"\xff" * 10])
        fields[i] = WireField(f.number, f.wt, f.tag, head, f.payload)
        return _join(fields), f"length varint of field {f.number} -> {head.hex()}"
    if choice == 7 and f.wt == 0:
        v = rng.choice(INTERESTING_INTS[:-1] + [2**64 - 2])
        head = rng.choice([varint(v), varint(v), padded(v, 1), b"\xff" * 9 + b"\x01", b"\xff" * 10 + b"\x01",
                           b"\x80" * 10])
        fields[i] = WireField(f.number, f.wt, f.tag, head, f.payload)
        return _join(fields), f"varint of field {f.number} -> {head.hex()}"
    if choice == 8:
        new_wt = rng.choice([w for w in (0, 1, 2, 5) if w != f.wt])
        tag = varint(f.number << 3 | new_wt)
        if new_wt == 0:
            body, p = varint(len(f.payload) or 1), b""
        elif new_wt == 2:
            p = f.head if f.wt != 2 else f.payload
            body = varint(len(p))
        else:
            body, p = bytes(8 if new_wt == 1 else 4), b""
        fields[i] = WireField(f.number, new_wt, tag, body, p)
        return _join(fields), f"wire type of field {f.number}: {f.wt} -> {new_wt}"
    sf = field_by_number(message, f.number) if message in MESSAGES else None
    if choice == 9 and f.wt == 2 and sf is not None and sf.type == "string" and rng.random() < 0.5:
        payload = rng.choice(TRICKY_UTF8)
        fields[i] = WireField(f.number, f.wt, f.tag, varint(len(payload)), payload)
        return _join(fields), f"string {sf.name} -> bytes {payload.hex()}"
    if choice == 9 and f.wt == 2:
        payload, what = mutate_bytes(f.payload, rng)
        fields[i] = WireField(f.number, f.wt, f.tag, varint(len(payload)), payload)
        return _join(fields), f"payload of field {f.number}: {what}"
    if choice == 10 and pool:
        other = parse(rng.choice(pool))
        if other:
            g = rng.choice(other)
            fields.insert(rng.randrange(n + 1), g)
            return _join(fields), f"splice field {g.number} from another encoding"
    if choice == 11:
        fields[i] = WireField(f.number, f.wt, varint((f.number + rng.choice([1, -1, 8])) % 2**29 << 3 | f.wt),
                              f.head, f.payload)
        return _join(fields), f"renumber field {f.number}"
    del fields[i]
    return _join(fields), f"delete field {f.number} (wire)"


# ------------------------------------------------------------------ decoded values

def _positions(message: str, value: dict, path: str, out: list) -> None:
    for f in MESSAGES[message]:
        here = f"{path}.{f.name}" if path else f.name
        weight = 3 if f.name in HOT_NAMES else 1
        out.append((weight, value, f, here))
        v = value.get(f.name)
        if f.type.startswith("msg:") and v is not None:
            for j, item in enumerate(v if f.repeated else [v]):
                _positions(f.type[4:], item, f"{here}[{j}]" if f.repeated else here, out)


def _new_scalar(f, old, rng: random.Random, samples: dict):
    t = f.type
    if t == "bytes":
        b = bytearray(old or b"")
        c = rng.randrange(7)
        if c == 0 and b:
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
            return bytes(b), f"flip a bit of byte {i}"
        if c == 1 and b:
            n = rng.randrange(len(b))
            return bytes(b[:n]), f"truncate to {n} bytes"
        if c == 2:
            return bytes(b) + b"\x00", "append a zero byte"
        if c == 3:
            n = rng.choice([0, 1, 31, 32, 33, 63, 64, 65])
            return bytes(n), f"{n} zero bytes"
        if c == 4:
            v = rng.choice(SMALL_ORDER)
            return v, "a small-order point"
        if c == 5 and samples.get("bytes"):
            return rng.choice(samples["bytes"]), "a bytes value from elsewhere in the message"
        return bytes(rng.randrange(256) for _ in range(len(b) or 32)), "random bytes"
    if t in ("uint32", "uint64"):
        top = 2**32 - 1 if t == "uint32" else 2**64 - 1
        cands = [v for v in INTERESTING_INTS if 0 <= v <= top] + [(old or 0) + 1, max(0, (old or 0) - 1)]
        v = rng.choice(cands)
        return min(v, top), f"-> {min(v, top)}"
    if t == "bool":
        return (not old), f"-> {not old}"
    if t == "string":
        if rng.random() < 0.5 and samples.get("string"):
            v = rng.choice(samples["string"])
        else:
            v = rng.choice(STRINGS + [(old or "") + "x", (old or "")[:-1]])
        return v, f"-> {v!r}"
    if t.startswith("enum:"):
        v = rng.randrange(len(ENUMS[t[5:]]) + 2)
        return v, f"-> enum value {v}"
    raise AssertionError(t)


def _collect(message: str, value: dict, out: dict) -> None:
    for f in MESSAGES[message]:
        v = value.get(f.name)
        if v is None:
            continue
        for item in (v if f.repeated else [v]):
            if f.type.startswith("msg:"):
                _collect(f.type[4:], item, out)
            elif f.type in ("bytes", "string"):
                out.setdefault(f.type, []).append(item)


def mutate_value(data: bytes, message: str, rng: random.Random) -> tuple[bytes, str] | None:
    try:
        value = codec.decode(message, data)
    except codec.CodecError:
        return None
    what = mutate_dict(message, value, rng)
    try:
        out = codec.encode(message, value)
    except Exception:  # noqa: BLE001 - a value the reference encoder cannot write: fall back
        return None
    return out, f"{what} (re-encoded)"


def mutate_dict(message: str, value: dict, rng: random.Random) -> str:
    """Edit one field of a decoded message in place (typed by the schema); returns what was done."""
    positions: list = []
    _positions(message, value, "", positions)
    samples: dict = {}
    _collect(message, value, samples)
    weight, container, f, path = rng.choices(positions, weights=[p[0] for p in positions])[0]
    cur = container.get(f.name)
    if f.repeated:
        items = list(cur or [])
        c = rng.randrange(6)
        if items and c == 0:
            i = rng.randrange(len(items))
            del items[i]
            what = f"drop element {i}"
        elif items and c == 1:
            i = rng.randrange(len(items))
            items.insert(i, copy.deepcopy(items[i]))
            what = f"duplicate element {i}"
        elif len(items) > 1 and c == 2:
            i, j = rng.sample(range(len(items)), 2)
            items[i], items[j] = items[j], items[i]
            what = f"swap elements {i} and {j}"
        elif len(items) > 1 and c == 3:
            items.reverse()
            what = "reverse"
        elif items and not f.type.startswith("msg:"):
            i = rng.randrange(len(items))
            items[i], what = _new_scalar(f, items[i], rng, samples)
            what = f"element {i} {what}"
        elif items:
            items = []
            what = "empty"
        else:
            items = [{}] if f.type.startswith("msg:") else [_new_scalar(f, None, rng, samples)[0]]
            what = "add one element"
        if items:
            container[f.name] = items
        else:
            container.pop(f.name, None)
    elif f.type.startswith("msg:"):
        if cur is None:
            container[f.name] = {}
            what = "add empty sub-message"
        elif rng.random() < 0.5:
            del container[f.name]
            what = "delete"
        else:
            container[f.name] = {}
            what = "empty it"
    else:
        if cur is not None and rng.random() < 0.2:
            del container[f.name]
            what = "delete"
        else:
            container[f.name], what = _new_scalar(f, cur, rng, samples)
    return f"{path}: {what}"


def mutate_message(data: bytes, message: str | None, rng: random.Random, pool: list[bytes]) -> tuple[bytes, str]:
    r = rng.random()
    if message and r < 0.4:
        got = mutate_value(data, message, rng)
        if got:
            return got
    if r < 0.8:
        got = mutate_wire(data, message, rng, pool)
        if got:
            return got
    return mutate_bytes(data, rng, pool)


# ------------------------------------------------------------------ JSON

def _json_paths(v, path: tuple, out: list) -> None:
    out.append(path)
    if isinstance(v, dict):
        for k in v:
            _json_paths(v[k], path + (k,), out)
    elif isinstance(v, list):
        for i, x in enumerate(v):
            _json_paths(x, path + (i,), out)


def _get(v, path):
    for p in path:
        v = v[p]
    return v


def mutate_json(doc, rng: random.Random) -> tuple[object, str]:
    doc = copy.deepcopy(doc)
    paths: list = []
    _json_paths(doc, (), paths)
    path = rng.choice(paths[1:] or paths)
    where = "/".join(map(str, path)) or "(root)"
    if not path:
        return rng.choice([[], None, "x", 0]), "replace the whole document"
    parent, key = _get(doc, path[:-1]), path[-1]
    cur = parent[key]
    c = rng.randrange(8)
    if c == 0 and isinstance(parent, dict):
        del parent[key]
        return doc, f"delete {where}"
    if c == 0 and isinstance(parent, list):
        del parent[key]
        return doc, f"delete element {where}"
    if c == 1 and isinstance(parent, list):
        parent.insert(key, copy.deepcopy(cur))
        return doc, f"duplicate element {where}"
    if c == 2 and isinstance(parent, list) and len(parent) > 1:
        j = rng.randrange(len(parent))
        parent[key], parent[j] = parent[j], parent[key]
        return doc, f"swap elements {where} and {j}"
    if c == 3 and isinstance(parent, dict):
        name = rng.choice(["unknown", "x", key + "_", key.upper()])
        parent[name] = copy.deepcopy(cur)
        return doc, f"add key {name!r} next to {where}"
    if c == 4 and isinstance(cur, str):
        s = rng.choice([cur + "0", cur[:-1], cur.upper(), "", cur + " ", cur[::-1], cur + "é", cur + "zz"])
        parent[key] = s
        return doc, f"string {where} -> {s[:40]!r}"
    if c == 5 and isinstance(cur, int) and not isinstance(cur, bool):
        v = rng.choice(INTERESTING_INTS + [cur + 1, cur - 1, -cur])
        parent[key] = v
        return doc, f"integer {where} -> {v}"
    if c == 6:
        # a value of the same kind from elsewhere in the document
        same = [p for p in paths if p and p != path and type(_get(doc, p)) is type(cur)]
        if same:
            src = rng.choice(same)
            parent[key] = copy.deepcopy(_get(doc, src))
            return doc, f"{where} <- value of {'/'.join(map(str, src))}"
    v = rng.choice([None, True, False, 0, -1, 1.5, 1.0, 2**64, 2**64 - 1, 2**32, "", "00", "AB", [], {}, "zz",
                    "OP_KIND_UNSPECIFIED", "OP_KIND_PUT", "CLIENT_ERROR_UNSPECIFIED", [{}], "1"])
    parent[key] = v
    return doc, f"{where} -> {json.dumps(v)}"


# ------------------------------------------------------------------ per op

def _hexmut(fields: dict, name: str, message: str | None, rng, pool) -> str:
    data, what = mutate_message(bytes.fromhex(fields[name]), message, rng, pool.get(message or "", []))
    fields[name] = data.hex()
    return f"{name}: {what}"


def _int(fields: dict, name: str, rng) -> str:
    v = fields[name]
    nv = rng.choice([v + 1, v - 1, 0, -1, 2**32, 2**64 - 1, 2**64, v * 2, v + 2**32])
    fields[name] = nv
    return f"{name}: {v} -> {nv}"


def _list(fields: dict, name: str, rng, item_mut) -> str:
    items = list(fields[name])
    c = rng.randrange(6)
    if c == 0 and items:
        i = rng.randrange(len(items))
        del items[i]
        what = f"drop element {i}"
    elif c == 1 and items:
        i = rng.randrange(len(items))
        items.insert(rng.randrange(len(items) + 1), items[i])
        what = f"duplicate element {i}"
    elif c == 2 and len(items) > 1:
        i, j = rng.sample(range(len(items)), 2)
        items[i], items[j] = items[j], items[i]
        what = f"swap elements {i} and {j}"
    elif c == 3 and len(items) > 1:
        n = rng.randrange(len(items))
        items = items[:n]
        what = f"keep the first {n}"
    elif items:
        i = rng.randrange(len(items))
        items[i], sub = item_mut(items[i])
        what = f"element {i}: {sub}"
    else:
        items = ["00"]
        what = "add a leaf 00"
    fields[name] = items
    return f"{name}: {what}"


def _ed25519(fields: dict, rng, pool) -> str:
    name = rng.choice(["public", "signature", "signature", "message"])
    b = bytearray(bytes.fromhex(fields[name]))
    r = rng.random()
    if name == "signature" and len(b) == 64 and r < 0.25:
        s = int.from_bytes(b[32:], "little")
        delta = rng.choice([ED_L, 2 * ED_L, -ED_L, 2**253])
        ns = (s + delta) % 2**256
        b[32:] = ns.to_bytes(32, "little")
        fields[name] = b.hex()
        return f"signature: S {'+' if delta > 0 else '-'} {delta} (mod 2^256)"
    if name == "signature" and len(b) == 64 and r < 0.4:
        b[:32] = rng.choice(SMALL_ORDER)
        fields[name] = b.hex()
        return "signature: R -> a small-order point"
    if name == "public" and len(b) == 32 and r < 0.3:
        if rng.random() < 0.5:
            nb = rng.choice(SMALL_ORDER)
            fields[name] = nb.hex()
            return "public: a small-order point"
        y = int.from_bytes(b, "little") & (2**255 - 1)
        if y < 19:
            nb = ((y + P) | (int.from_bytes(b, "little") & 2**255)).to_bytes(32, "little")
            fields[name] = nb.hex()
            return "public: y + p (non-canonical)"
        b[31] ^= 0x80
        fields[name] = b.hex()
        return "public: flip the sign bit"
    nb, what = mutate_bytes(bytes(b), rng)
    fields[name] = nb.hex()
    return f"{name}: {what}"


def _nodes(m: dict) -> list[dict]:
    return [n for c in m.get("clusters", []) if isinstance(c, dict) for n in c.get("nodes", []) or []
            if isinstance(n, dict)]


def manifest_semantic(m: dict, rng: random.Random) -> str:
    """Schema-preserving edits aimed at SPEC 3 semantic rules 1 to 8 (in place)."""
    nodes = _nodes(m)
    clusters = [c for c in m.get("clusters", []) if isinstance(c, dict)]
    if not nodes or not clusters:
        return "nothing to edit"
    a, b = rng.choice(nodes), rng.choice(nodes)
    k = rng.randrange(12)
    if k == 0:
        b["host"] = a.get("host")
        b.setdefault("ports", {})["peer"] = a.get("ports", {}).get(rng.choice(["peer", "client", "admin"]))
        return f"node {b.get('id')} gets {a.get('id')}'s host and one of its ports"
    if k == 1:
        p = a.setdefault("ports", {})
        p[rng.choice(["client", "admin"])] = p.get("peer")
        return f"node {a.get('id')} uses its peer port twice"
    if k == 2:
        a["id"] = rng.choice(clusters).get("id")
        return f"a node id equals the cluster id {a['id']!r}"
    if k == 3 and m.get("clients"):
        m["clients"][0]["id"] = a.get("id")
        return f"client id equals node id {a.get('id')!r}"
    if k == 4:
        a["x25519_public"] = b.get("ed25519_public")
        return f"x25519 key of {a.get('id')} = ed25519 key of {b.get('id')}"
    if k == 5 and m.get("clients"):
        m["clients"][-1]["ed25519_public"] = a.get(rng.choice(["ed25519_public", "x25519_public"]))
        return "a client key equals a node key"
    if k == 6:
        a["faults"] = rng.choice([{}, {"drop": 0.5}, {"actions": []}])
        m["testbed"] = rng.choice([False, True, None])
        if m["testbed"] is None:
            del m["testbed"]
        return f"faults on {a.get('id')}, testbed {m.get('testbed')}"
    if k == 7:
        t = m.setdefault("timeouts_ms", {})
        pair = rng.choice([("heartbeat_interval", "heartbeat_timeout"), ("request_forward", "censorship")])
        v = rng.choice([1, 250, 1000, 2000, 3000, 4000, 5000])
        t[rng.choice(pair)] = v
        return f"timeouts_ms {pair}: one set to {v}"
    if k == 8:
        b["host"] = rng.choice([a.get("host"), "localhost", "127.0.0.1", "::1", "127.000.000.001", "LOCALHOST",
                                "example.com", "127.0.0.2"])
        b["bind"] = rng.choice([a.get("host"), "0.0.0.0", "127.0.0.1"])
        return f"node {b.get('id')} host {b['host']!r}, bind {b['bind']!r}"
    if k == 9:
        c = rng.choice(clusters)
        extra = copy.deepcopy(c["nodes"][0]) if c.get("nodes") else {}
        i = rng.randrange(10**6)
        extra["id"] = f"zz-n{i}"
        extra["ed25519_public"] = f"{i:064x}"
        extra["x25519_public"] = f"{i + 1:064x}"
        extra["ports"] = {"peer": 20000 + i % 9000 * 3, "client": 20001 + i % 9000 * 3, "admin": 20002 + i % 9000 * 3}
        c.setdefault("nodes", []).append(extra)
        return f"add a fresh node to {c.get('id')} ({len(c['nodes'])} nodes)"
    if k == 10:
        c = rng.choice(clusters)
        c["id"] = rng.choice([x.get("id") for x in clusters] + ["zz", "s9", "c9"])
        return f"cluster id -> {c['id']!r}"
    sm = m.setdefault("shard_map", {})
    sm["shards"] = rng.choice([[], [x.get("id") for x in clusters],
                               [x.get("id") for x in clusters if x.get("role") == "shard"][::-1]])
    return f"shard_map.shards -> {sm['shards']}"


def _manifest(fields: dict, rng) -> str:
    m = fields["manifest"]
    r = rng.random()
    if isinstance(m, dict) and r < 0.35:
        m = copy.deepcopy(m)
        what = manifest_semantic(m, rng)
        fields["manifest"] = m
        return f"manifest: {what}"
    clusters = m.get("clusters") if isinstance(m, dict) else None
    if isinstance(clusters, list) and clusters and r < 0.5:
        m = copy.deepcopy(m)
        c = rng.choice(m["clusters"])
        nodes = c.get("nodes") if isinstance(c, dict) else None
        k = rng.randrange(7)
        if k == 0 and isinstance(nodes, list) and nodes:
            nodes.append(copy.deepcopy(nodes[0]))
            what = f"duplicate a node of {c.get('id')}"
        elif k == 1 and isinstance(nodes, list) and len(nodes) > 1:
            nodes.pop()
            what = f"drop the last node of {c.get('id')}"
        elif k == 2 and isinstance(nodes, list) and len(nodes) > 1:
            nodes[0]["ed25519_public"], nodes[1]["ed25519_public"] = nodes[1].get("ed25519_public"), \
                nodes[0].get("ed25519_public")
            what = f"swap the keys of two nodes of {c.get('id')}"
        elif k == 3 and isinstance(m.get("shard_map"), dict) and isinstance(m["shard_map"].get("shards"), list):
            sh = m["shard_map"]["shards"]
            what = rng.choice(["reverse", "drop", "dup", "other"])
            if what == "reverse":
                sh.reverse()
            elif what == "drop" and sh:
                sh.pop()
            elif what == "dup" and sh:
                sh.append(sh[0])
            else:
                sh.append("c0")
            what = f"shard_map.shards: {what}"
        elif k == 4:
            lim = m.setdefault("limits", {})
            name = rng.choice(["max_batch_inputs", "max_batch_bytes", "max_key_bytes", "max_value_bytes",
                               "max_message_bytes", "max_pending_requests"])
            if isinstance(lim, dict):
                lim[name] = rng.choice([0, 1, 2, 3, 8, 100, 2**31, 2**63, -1])
                what = f"limits.{name} -> {lim[name]}"
            else:
                what = "limits is not an object"
        elif k == 5:
            c["role"] = {"shard": "coordinator", "coordinator": "shard"}.get(c.get("role"), "shard")
            what = f"role of {c.get('id')} -> {c['role']}"
        else:
            m["network_id"] = rng.choice(["", "x", "vectors-net2", str(m.get("network_id", "")) + "é"])
            what = f"network_id -> {m['network_id']!r}"
        fields["manifest"] = m
        return f"manifest: {what}"
    fields["manifest"], what = mutate_json(m, rng)
    return f"manifest: {what}"


def mutate_once(op: str, fields: dict, messages: dict, rng: random.Random, pool: dict) -> str:
    if op == "decode":
        if rng.random() < 0.03:
            fields["message"] = rng.choice(sorted(MESSAGES))
            return f"message -> {fields['message']}"
        return _hexmut(fields, "hex", fields["message"], rng, pool)
    if op == "encode":
        if rng.random() < 0.05:
            fields["message"] = rng.choice(sorted(MESSAGES))
            return f"message -> {fields['message']}"
        fields["json"], what = mutate_json(fields["json"], rng)
        return f"json: {what}"
    if op == "ed25519_verify":
        return _ed25519(fields, rng, pool)
    if op == "signing_bytes":
        r = rng.random()
        if r < 0.1:
            fields["domain"] = rng.choice(sorted(DOMAIN_MESSAGES) + ["Decision", "decision ", "", "client"])
            return f"domain -> {fields['domain']!r}"
        if r < 0.2:
            fields["network_id"] = rng.choice(["", "é", "x" * 300, fields["network_id"] + "\u0000"])
            return f"network_id -> {fields['network_id'][:20]!r}"
        return _hexmut(fields, "hex", DOMAIN_MESSAGES.get(fields["domain"]), rng, pool)
    if op == "merkle_root":
        return _list(fields, "leaves", rng, lambda h: _hexitem(h, rng))
    if op == "merkle_verify":
        r = rng.random()
        if r < 0.3:
            return _int(fields, rng.choice(["index", "count"]), rng)
        if r < 0.6:
            return _list(fields, "proof", rng, lambda h: _hexitem(h, rng))
        if r < 0.68:
            if "leaf" in fields and "leaf_hash" in fields:
                del fields[rng.choice(["leaf", "leaf_hash"])]
                return "drop one of leaf/leaf_hash"
            if "leaf" in fields:
                fields["leaf_hash"] = mutate_bytes(bytes(32), rng)[0].hex()
                return "add a leaf_hash that does not match"
        name = rng.choice([k for k in ("leaf", "leaf_hash", "root") if k in fields])
        nb, what = mutate_bytes(bytes.fromhex(fields[name]), rng)
        fields[name] = nb.hex()
        return f"{name}: {what}"
    if op in ("qc_verify", "compact_verify", "execute") and rng.random() < 0.45:
        from . import resign
        what = {"qc_verify": resign.semantic_qc, "compact_verify": resign.semantic_compact,
                "execute": resign.semantic_execute}[op](fields, rng)
        if what:
            return what
    if op == "qc_verify":
        r = rng.random()
        if r < 0.08:
            return _manifest(fields, rng)
        if r < 0.14:
            fields["cluster"] = rng.choice(["c0", "c1", "s0", "s1", "", "x"])
            return f"cluster -> {fields['cluster']!r}"
        name = "qc" if r < 0.75 else "header"
        return _hexmut(fields, name, messages[name], rng, pool)
    if op == "compact_verify":
        r = rng.random()
        if r < 0.08:
            return _manifest(fields, rng)
        if r < 0.16:
            return _int(fields, "next_seq", rng)
        if r < 0.24:
            name = rng.choice(["source", "destination"])
            fields[name] = rng.choice(["c0", "c1", "s0", "s1", "", "client:", "client:" + "00" * 32,
                                       fields[name] + "0", fields[name].upper()])
            return f"{name} -> {fields[name]!r}"
        return _hexmut(fields, "compact", "CompactDecision", rng, pool)
    if op == "execute":
        r = rng.random()
        if r < 0.08:
            return _manifest(fields, rng)
        if r < 0.12:
            fields["cluster"] = rng.choice(["c0", "c1", "s0", "s1", "", "x"])
            return f"cluster -> {fields['cluster']!r}"
        if r < 0.35:
            return _list(fields, "batches", rng,
                         lambda h: _msgitem(h, "Batch", rng, pool))
        batches = list(fields["batches"])
        if not batches:
            fields["batches"] = [""]
            return "batches: one empty batch"
        i = rng.randrange(len(batches))
        data, what = mutate_message(bytes.fromhex(batches[i]), "Batch", rng, pool.get("Batch", []))
        batches[i] = data.hex()
        fields["batches"] = batches
        return f"batch {i + 1}: {what}"
    if op == "shard_of":
        if rng.random() < 0.3:
            return _manifest(fields, rng)
        nb, what = mutate_bytes(bytes.fromhex(fields["key"]), rng)
        fields["key"] = nb.hex()
        return f"key: {what}"
    if op == "manifest_validate":
        return _manifest(fields, rng)
    raise ValueError(op)


def _hexitem(h: str, rng) -> tuple[str, str]:
    nb, what = mutate_bytes(bytes.fromhex(h), rng)
    return nb.hex(), what


def _msgitem(h: str, message: str, rng, pool) -> tuple[str, str]:
    nb, what = mutate_message(bytes.fromhex(h), message, rng, pool.get(message, []))
    return nb.hex(), what


def mutate_request(fields: dict, rng: random.Random) -> str:
    """SPEC 17.1 request strictness: uppercase/odd hex, integers as floats/bools/strings, a missing field."""
    name = rng.choice(sorted(fields))
    v = fields[name]
    c = rng.randrange(4)
    if c == 0 and isinstance(v, str) and v and all(ch in "0123456789abcdef" for ch in v):
        fields[name] = rng.choice([v.upper(), v[:-1], v + "0", " " + v, "0x" + v])
        return f"request: {name} -> {fields[name][:12]!r}..."
    if c == 1 and isinstance(v, int) and not isinstance(v, bool):
        fields[name] = rng.choice([float(v), True, str(v), None])
        return f"request: {name} -> {fields[name]!r}"
    if c == 2:
        del fields[name]
        return f"request: drop {name}"
    fields[name] = rng.choice([None, [], {}, 0, ""])
    return f"request: {name} -> {json.dumps(fields[name])}"


def mutate(seed: Seed, rng: random.Random, pool: dict) -> tuple[dict, str]:
    """A mutated copy of the seed's request fields (1 to 3 stacked mutations) and what was done."""
    fields = copy.deepcopy(seed.fields)
    if rng.random() < 0.04:
        return fields, mutate_request(fields, rng)
    steps = []
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        before = copy.deepcopy(fields)
        try:
            steps.append(mutate_once(seed.op, fields, seed.messages, rng, pool))
        except (TypeError, KeyError, ValueError, AttributeError, IndexError):
            fields = before  # a stacked edit left a shape this mutator does not handle: skip it
    return fields, "; ".join(steps) or "none"


def message_pool(seeds) -> dict[str, list[bytes]]:
    """Encodings per message name (from decode seeds and message fields), for splicing."""
    pool: dict[str, list[bytes]] = {}
    for s in seeds:
        for name, message in s.messages.items():
            v = s.fields.get(name)
            if s.op == "decode":
                message = s.fields["message"]
            if isinstance(v, str):
                pool.setdefault(message, []).append(bytes.fromhex(v))
            elif isinstance(v, list):
                pool.setdefault(message, []).extend(bytes.fromhex(x) for x in v if isinstance(x, str))
    return pool
