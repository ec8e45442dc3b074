"""impl_b's canonical codec for heraclius.proto (SPEC 5), without Google's protobuf runtime.

`encode(msg)` writes the one canonical encoding; `decode(name, data)` parses strictly and raises
DecodeError("malformed") for a length running past the end or a truncated varint, and
DecodeError("non_canonical") for everything else it refuses (SPEC 5 as amended: order, defaults,
non-minimal or over-long varints, unknown fields, wrong wire types, bad UTF-8, unknown enum values,
oneofs without exactly one member).
"""

from .schema import ENUMS, MESSAGES, ONEOFS

_SCALARS = {"u32", "u64", "bool", "string", "bytes"}
_VARINT_TYPES = {"u32", "u64", "bool"} | set(ENUMS)


class DecodeError(ValueError):
    """Remote input that is not a canonical encoding; `reason` is a SPEC 15 rejection reason."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


_set = object.__setattr__


class Message:
    """Base of the generated message classes: attribute per field, proto3 defaults.

    A message caches its canonical encoding in `_raw` (set by decode and encode). Assigning a field
    clears the cache of that message; after changing a nested message or a list in place, call
    `touch(msg)` on the outer message."""

    __slots__ = ("_raw",)
    _name = ""
    _fields: tuple = ()

    def __init__(self, **kw):
        for _num, fname, ftype, rep in self._fields:
            if fname in kw:
                _set(self, fname, kw.pop(fname))
            elif rep:
                _set(self, fname, [])
            else:
                _set(self, fname, _default(ftype))
        _set(self, "_raw", None)
        if kw:
            raise TypeError(f"{self._name}: unknown fields {sorted(kw)}")

    def __setattr__(self, name, value):
        _set(self, name, value)
        _set(self, "_raw", None)

    def __eq__(self, other):
        return type(self) is type(other) and all(
            getattr(self, f[1]) == getattr(other, f[1]) for f in self._fields)

    def __hash__(self):
        return hash(encode(self))

    def __repr__(self):
        parts = []
        for _n, fname, _t, _r in self._fields:
            v = getattr(self, fname)
            if v or v is False:
                parts.append(f"{fname}={v.hex() if isinstance(v, bytes) else v!r}")
        return f"{self._name}({', '.join(parts)})"

    def copy(self, **changes):
        vals = {f[1]: getattr(self, f[1]) for f in self._fields}
        for f in self._fields:
            if f[3]:
                vals[f[1]] = list(vals[f[1]])
        vals.update(changes)
        return type(self)(**vals)

    def which(self) -> str:
        """Name of the set member of a oneof message ('' if none)."""
        for _n, fname, _t, _r in self._fields:
            if getattr(self, fname) is not None:
                return fname
        return ""


def _default(ftype):
    if ftype in ("u32", "u64") or ftype in ENUMS:
        return 0
    if ftype == "bool":
        return False
    if ftype == "string":
        return ""
    if ftype == "bytes":
        return b""
    return None


CLASSES: dict[str, type] = {}
for _name, _flds in MESSAGES.items():
    CLASSES[_name] = type(_name, (Message,), {
        "__slots__": tuple(f[1] for f in _flds), "_name": _name, "_fields": tuple(_flds)})
# Compiled per-message field tables: number -> (name, type, repeated, wire type).
_BYNUM = {n: {f[0]: (f[1], f[2], f[3], 0 if f[2] in _VARINT_TYPES else 2) for f in flds}
          for n, flds in MESSAGES.items()}
globals().update(CLASSES)


def _varint(v: int, out: bytearray) -> None:
    while v > 0x7F:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)


def touch(msg) -> None:
    """Forget cached encodings of `msg` and everything inside it (after in-place changes)."""
    _set(msg, "_raw", None)
    for _n, fname, ftype, rep in msg._fields:
        if ftype in MESSAGES:
            val = getattr(msg, fname)
            for sub in (val if rep else [val]):
                if sub is not None:
                    touch(sub)


def _enc(msg: Message, out: bytearray) -> None:
    raw = msg._raw
    if raw is not None:
        out += raw
        return
    start = len(out)
    _enc_fields(msg, out)
    _set(msg, "_raw", bytes(out[start:]))


def _enc_fields(msg: Message, out: bytearray) -> None:
    name = msg._name
    if name in ONEOFS and sum(getattr(msg, f[1]) is not None for f in msg._fields) != 1:
        raise ValueError(f"{name}: oneof must have exactly one member")
    for num, fname, ftype, rep in msg._fields:
        val = getattr(msg, fname)
        if rep:
            for item in val:
                _enc_one(num, ftype, item, out, True)
        elif ftype in _SCALARS or ftype in ENUMS:
            if val:
                _enc_one(num, ftype, val, out, False)
        elif val is not None:
            _enc_one(num, ftype, val, out, True)


def _enc_one(num: int, ftype: str, val, out: bytearray, always: bool) -> None:
    if ftype in _VARINT_TYPES:
        if ftype == "u32" and not 0 <= val < 1 << 32 or not 0 <= int(val) < 1 << 64:
            raise ValueError(f"field {num}: integer out of range")
        out.append(num << 3)
        _varint(int(val), out)
        return
    if ftype == "string":
        data = val.encode("utf-8")
    elif ftype == "bytes":
        data = bytes(val)
    else:
        sub = bytearray()
        _enc(val, sub)
        data = sub
    _varint(num << 3 | 2, out)
    _varint(len(data), out)
    out += data


def encode(msg: Message) -> bytes:
    """Canonical encoding of `msg` (raises ValueError on local misuse, e.g. an empty oneof)."""
    if msg._raw is not None:
        return msg._raw
    out = bytearray()
    _enc(msg, out)
    return msg._raw


def _read_varint(data, pos: int, end: int) -> tuple[int, int]:
    result = 0
    shift = 0
    start = pos
    while True:
        if pos >= end:
            raise DecodeError("malformed", "truncated varint")
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            break
        shift += 7
        if pos - start >= 10:
            raise DecodeError("non_canonical", "varint longer than 10 bytes")
    if b == 0 and pos - start > 1:
        raise DecodeError("non_canonical", "non-minimal varint")
    if result >= 1 << 64:
        raise DecodeError("non_canonical", "varint above 2^64")
    return result, pos


def _dec(name: str, data, pos: int, end: int) -> Message:
    start = pos
    table = _BYNUM[name]
    cls = CLASSES[name]
    vals: dict = {}
    last = 0
    while pos < end:
        tag, pos = _read_varint(data, pos, end)
        num, wt = tag >> 3, tag & 7
        f = table.get(num)
        if f is None:
            if wt not in (0, 1, 2, 5):
                raise DecodeError("non_canonical", f"{name}: bad wire type {wt}")
            raise DecodeError("non_canonical", f"{name}: unknown field {num}")
        fname, ftype, rep, want_wt = f
        if num < last or (num == last and not rep):
            raise DecodeError("non_canonical", f"{name}: field {num} out of order or repeated")
        if wt != want_wt:
            raise DecodeError("non_canonical", f"{name}.{fname}: wire type {wt}")
        last = num
        if wt == 0:
            v, pos = _read_varint(data, pos, end)
            if v == 0:
                raise DecodeError("non_canonical", f"{name}.{fname}: default value written")
            if ftype == "u32" and v >= 1 << 32:
                raise DecodeError("non_canonical", f"{name}.{fname}: uint32 out of range")
            if ftype == "bool":
                if v != 1:
                    raise DecodeError("non_canonical", f"{name}.{fname}: bool not 0x01")
                v = True
            elif ftype in ENUMS and v not in ENUMS[ftype]:
                raise DecodeError("non_canonical", f"{name}.{fname}: unknown enum value {v}")
            vals[fname] = v
            continue
        length, pos = _read_varint(data, pos, end)
        if length > end - pos:
            raise DecodeError("malformed", f"{name}.{fname}: length runs past the message")
        sub_end = pos + length
        if ftype == "bytes" or ftype == "string":
            if length == 0 and not rep:
                raise DecodeError("non_canonical", f"{name}.{fname}: empty value written")
            raw = bytes(data[pos:sub_end])
            if ftype == "string":
                try:
                    v = raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise DecodeError("non_canonical", f"{name}.{fname}: invalid UTF-8") from None
            else:
                v = raw
        elif ftype in _VARINT_TYPES:
            raise DecodeError("non_canonical", f"{name}.{fname}: packed scalars")
        else:
            v = _dec(ftype, data, pos, sub_end)
        pos = sub_end
        if rep:
            vals.setdefault(fname, []).append(v)
        else:
            vals[fname] = v
    if pos != end:
        raise DecodeError("malformed", f"{name}: overrun")
    if name in ONEOFS and len(vals) != 1:
        raise DecodeError("non_canonical", f"{name}: oneof must have exactly one member")
    msg = cls(**vals)
    _set(msg, "_raw", bytes(data[start:end]))
    return msg


def decode(name: str, data: bytes) -> Message:
    """Strictly decode `data` as message `name`; raises DecodeError (remote violation)."""
    mv = memoryview(data)
    return _dec(name, mv, 0, len(mv))
