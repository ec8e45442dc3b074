"""Reference canonical protobuf codec (SPEC 5) driven by the schema table.

Messages are plain dicts holding only the fields present on the wire: ints for
uint32/uint64/enums, bool, str, bytes, dicts for sub-messages, lists for repeated fields.
`decode` is strict: it rejects every encoding that `encode` would not produce.
"""

from __future__ import annotations

from .schema import ENUMS, MESSAGES, REQUIRED_ONEOFS, Field, field_by_number, wire_type

U64_MAX = 2**64 - 1


class CodecError(ValueError):
    """A byte string that is not the canonical encoding of a message (remote violation)."""

    def __init__(self, rule: str, detail: str):
        super().__init__(f"{rule}: {detail}")
        self.rule = rule
        self.detail = detail

    @property
    def reason(self) -> str:
        """SPEC 5: a truncated varint or a length past the end is `malformed`, the rest `non_canonical`."""
        return "malformed" if self.rule == "5.5" else "non_canonical"


# ------------------------------------------------------------------ low-level writers

def varint(value: int) -> bytes:
    if value < 0 or value > U64_MAX:
        raise ValueError(f"varint out of range: {value}")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def padded_varint(value: int, extra: int) -> bytes:
    """A non-minimal varint: `value` written with `extra` redundant continuation bytes."""
    v = bytearray(varint(value))
    v[-1] |= 0x80
    v += b"\x80" * (extra - 1) + b"\x00"
    return bytes(v)


def tag(number: int, wt: int) -> bytes:
    return varint((number << 3) | wt)


def field_varint(number: int, value: int) -> bytes:
    return tag(number, 0) + varint(value)


def field_bytes(number: int, payload: bytes) -> bytes:
    return tag(number, 2) + varint(len(payload)) + payload


# ------------------------------------------------------------------ encoder

def _is_default(f: Field, v) -> bool:
    if f.type.startswith("msg:"):
        return v is None
    return v in (0, False, "", b"") and not isinstance(v, dict)


def _encode_value(f: Field, v) -> bytes:
    t = f.type
    if t in ("uint32", "uint64") or t.startswith("enum:"):
        return field_varint(f.number, int(v))
    if t == "bool":
        return field_varint(f.number, 1)
    if t == "string":
        return field_bytes(f.number, v.encode("utf-8"))
    if t == "bytes":
        return field_bytes(f.number, bytes(v))
    return field_bytes(f.number, encode(t[4:], v))


def encode(message: str, value: dict) -> bytes:
    """Canonical encoding of `value` (a dict) as `message`."""
    known = {f.name for f in MESSAGES[message]}
    extra = set(value) - known
    if extra:
        raise KeyError(f"{message}: unknown fields {sorted(extra)}")
    out = bytearray()
    for f in MESSAGES[message]:
        if f.name not in value:
            continue
        v = value[f.name]
        if f.repeated:
            for item in v:
                out += _encode_value(f, item)
        elif f.oneof is not None or f.type.startswith("msg:"):
            if v is not None:
                out += _encode_value(f, v)
        elif not _is_default(f, v):
            out += _encode_value(f, v)
    return bytes(out)


# ------------------------------------------------------------------ strict decoder

def read_varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    value = 0
    shift = 0
    start = pos
    while True:
        if pos >= end:
            raise CodecError("5.5", "truncated varint")
        if pos - start >= 10:
            raise CodecError("5.4", "varint longer than 10 bytes")
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            break
    if pos - start > 1 and data[pos - 1] == 0:
        raise CodecError("5.4", "non-minimal varint")
    if value > U64_MAX:
        raise CodecError("5.4", "varint above 2^64-1")
    return value, pos


def _decode_scalar(f: Field, wt_data: bytes | int):
    t = f.type
    if t == "uint32":
        if wt_data >= 2**32:
            raise CodecError("5.4", f"{f.name}: uint32 value {wt_data} >= 2^32")
        return wt_data
    if t == "uint64":
        return wt_data
    if t == "bool":
        if wt_data != 1:
            raise CodecError("5.4", f"{f.name}: bool must be exactly 1 when present")
        return True
    if t.startswith("enum:"):
        if wt_data >= len(ENUMS[t[5:]]):
            raise CodecError("5.10", f"{f.name}: enum value {wt_data} not declared")
        return wt_data
    if t == "string":
        try:
            return wt_data.decode("utf-8", errors="strict")
        except UnicodeDecodeError as exc:
            raise CodecError("5.8", f"{f.name}: invalid UTF-8") from exc
    if t == "bytes":
        return bytes(wt_data)
    return _decode(t[4:], wt_data)


def _decode(message: str, data: bytes) -> dict:
    pos, end = 0, len(data)
    out: dict = {}
    last_number = 0
    oneof_seen: dict[str, str] = {}
    while pos < end:
        key, pos = read_varint(data, pos, end)
        number, wt = key >> 3, key & 7
        f = field_by_number(message, number)
        if f is None:
            raise CodecError("5.7", f"{message}: unknown field number {number}")
        if wt != wire_type(f):
            raise CodecError("5.3", f"{message}.{f.name}: wire type {wt}, expected {wire_type(f)}")
        if number < last_number or (number == last_number and not f.repeated):
            kind = "duplicated" if number == last_number else "out-of-order"
            raise CodecError("5.1", f"{message}.{f.name}: {kind} field")
        if f.repeated and f.name in out and number != last_number:
            raise CodecError("5.6", f"{message}.{f.name}: repeated elements not consecutive")
        last_number = number
        if wt == 0:
            raw, pos = read_varint(data, pos, end)
            if raw == 0:
                raise CodecError("5.2", f"{message}.{f.name}: default value written")
        else:
            length, pos = read_varint(data, pos, end)
            if length > end - pos:
                raise CodecError("5.5", f"{message}.{f.name}: length runs past the message")
            raw = data[pos:pos + length]
            pos += length
            if length == 0 and f.type in ("string", "bytes") and not f.repeated:
                raise CodecError("5.2", f"{message}.{f.name}: default value written")
        value = _decode_scalar(f, raw)
        if f.oneof is not None:
            if f.oneof in oneof_seen:
                raise CodecError("5.9", f"{message}.{f.oneof}: two members set")
            oneof_seen[f.oneof] = f.name
        if f.repeated:
            out.setdefault(f.name, []).append(value)
        else:
            out[f.name] = value
    if message in REQUIRED_ONEOFS and REQUIRED_ONEOFS[message] not in oneof_seen:
        raise CodecError("5.9", f"{message}.{REQUIRED_ONEOFS[message]}: empty oneof")
    return out


def decode(message: str, data: bytes) -> dict:
    """Strictly decode canonical bytes; raises CodecError on any non-canonical input."""
    value = _decode(message, bytes(data))
    if encode(message, value) != bytes(data):  # defensive: the checks above should be complete
        raise CodecError("5", f"{message}: re-encoding differs")
    return value


# ------------------------------------------------------------------ JSON rendering

def to_json(message: str, value: dict) -> dict:
    """The JSON rendering documented in formats/codec_messages.md."""
    out = {}
    for f in MESSAGES[message]:
        if f.name not in value:
            continue
        v = value[f.name]
        if f.repeated:
            out[f.name] = [_json_value(f, item) for item in v]
        elif f.type.startswith("msg:") or not _is_default(f, v):
            out[f.name] = _json_value(f, v)
    return out


def _json_value(f: Field, v):
    t = f.type
    if t.startswith("msg:"):
        return to_json(t[4:], v)
    if t.startswith("enum:"):
        return ENUMS[t[5:]][v]
    if t == "bytes":
        return bytes(v).hex()
    if t == "bool":
        return True
    return v


def raw_fields(data: bytes) -> list[tuple[int, int, bytes, bytes]]:
    """Lenient top-level split into (number, wire type, whole field bytes, payload)."""
    pos, out = 0, []
    while pos < len(data):
        start = pos
        key, pos = read_varint(data, pos, len(data))
        if key & 7 == 0:
            vstart = pos
            _, pos = read_varint(data, pos, len(data))
            out.append((key >> 3, 0, data[start:pos], data[vstart:pos]))
        else:
            length, pos = read_varint(data, pos, len(data))
            out.append((key >> 3, 2, data[start:pos + length], data[pos:pos + length]))
            pos += length
    return out
