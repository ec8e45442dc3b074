"""impl_b's canonical codec for heraclius.proto (SPEC 5), without Google's protobuf runtime.

`encode(msg)` writes the one canonical encoding; `decode(name, data)` parses strictly and raises
DecodeError("malformed") for a length running past the end or a truncated varint, and
DecodeError("non_canonical") for everything else it refuses (SPEC 5 as amended: order, defaults,
non-minimal or over-long varints, unknown fields, wrong wire types, bad UTF-8, unknown enum values,
oneofs without exactly one member).

The schema table is compiled at import into one encoder, one decoder and one constructor per
message (Python source generated below), so the per-field work is straight-line code.
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


def encode(msg: Message) -> bytes:
    """Canonical encoding of `msg` (raises ValueError on local misuse, e.g. an empty oneof)."""
    raw = msg._raw
    if raw is not None:
        return raw
    out = bytearray()
    _ENCODERS[msg._name](msg, out)
    raw = bytes(out)
    _set(msg, "_raw", raw)
    return raw


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


def _bad_tag(name: str, tag: int, last: int):
    """The DecodeError for a tag that is not the expected next field of message `name`."""
    num, wt = tag >> 3, tag & 7
    f = _BYNUM[name].get(num)
    if f is None:
        if wt not in (0, 1, 2, 5):
            return DecodeError("non_canonical", f"{name}: bad wire type {wt}")
        return DecodeError("non_canonical", f"{name}: unknown field {num}")
    fname, _ftype, rep, want_wt = f
    if num < last or (num == last and not rep):
        return DecodeError("non_canonical", f"{name}: field {num} out of order or repeated")
    return DecodeError("non_canonical", f"{name}.{fname}: wire type {wt}")


def _nc(detail: str) -> DecodeError:
    return DecodeError("non_canonical", detail)


def _past(detail: str) -> DecodeError:
    return DecodeError("malformed", f"{detail}: length runs past the message")


# ---------------------------------------------------------------- generated code

def _gen_init(name: str, fields) -> str:
    params = ", ".join(f"{f[1]}=None" if f[3] else f"{f[1]}={_default(f[2])!r}" for f in fields)
    lines = [f"def __init__(self, *, {params}):" if params else "def __init__(self):"]
    for _num, fname, _ftype, rep in fields:
        val = f"[] if {fname} is None else {fname}" if rep else fname
        lines.append(f"    _set(self, {fname!r}, {val})")
    lines.append("    _set(self, '_raw', None)")
    return "\n".join(lines)


def _gen_encoder(name: str, fields) -> str:
    lines = [f"def _e_{name}(m, out):"]
    if name in ONEOFS:
        present = " + ".join(f"(m.{f[1]} is not None)" for f in fields)
        lines += [f"    if {present} != 1:",
                  f"        raise ValueError({name + ': oneof must have exactly one member'!r})"]
    for num, fname, ftype, rep in fields:
        tag_len = bytes([num << 3 | 2])
        lines.append(f"    v = m.{fname}")
        if ftype in MESSAGES:
            body = [f"out += {tag_len!r}", "r = it._raw", "if r is None:", "    r = encode(it)",
                    "_varint(len(r), out)", "out += r"]
        elif ftype == "string":
            body = [f"out += {tag_len!r}", "d = it.encode('utf-8')", "_varint(len(d), out)", "out += d"]
        elif ftype == "bytes":
            body = [f"out += {tag_len!r}", "d = bytes(it)", "_varint(len(d), out)", "out += d"]
        else:
            rng = f"if {'not 0 <= it < 4294967296 or ' if ftype == 'u32' else ''}not 0 <= int(it) < 18446744073709551616:"
            body = [rng, f"    raise ValueError('field {num}: integer out of range')",
                    f"out += {bytes([num << 3])!r}", "_varint(int(it), out)"]
        if rep:
            lines.append("    for it in v:")
            lines += ["        " + b for b in body]
        else:
            cond = "v is not None" if ftype in MESSAGES else "v"
            lines += [f"    if {cond}:", "        it = v"] + ["        " + b for b in body]
    if not fields:
        lines.append("    pass")
    return "\n".join(lines)


def _gen_value(name: str, num: int, fname: str, ftype: str, rep: bool) -> list[str]:
    """Decoder lines reading the value of one field at `pos` into local `v`."""
    where = f"{name}.{fname}"
    if ftype in _VARINT_TYPES:
        out = ["if pos < end and data[pos] < 128:", "    v = data[pos]", "    pos += 1", "else:",
               "    v, pos = _read_varint(data, pos, end)",
               f"if v == 0: raise _nc({where + ': default value written'!r})"]
        if ftype == "u32":
            out.append(f"if v >= 4294967296: raise _nc({where + ': uint32 out of range'!r})")
        if ftype == "bool":
            out += [f"if v != 1: raise _nc({where + ': bool not 0x01'!r})", "v = True"]
        elif ftype in ENUMS:
            out.append(f"if v not in {sorted(ENUMS[ftype])!r}: raise _nc('{where}: unknown enum value %d' % v)")
        return out
    out = ["if pos < end and data[pos] < 128:", "    n = data[pos]", "    pos += 1", "else:",
           "    n, pos = _read_varint(data, pos, end)",
           f"if n > end - pos: raise _past({where!r})", "sub = pos + n"]
    if ftype in MESSAGES:
        out.append(f"v = _d_{ftype}(data, pos, sub)")
    else:
        if not rep:
            out.append(f"if n == 0: raise _nc({where + ': empty value written'!r})")
        out.append("v = bytes(data[pos:sub])")
        if ftype == "string":
            out += ["try:", "    v = v.decode('utf-8')", "except UnicodeDecodeError:",
                    f"    raise _nc({where + ': invalid UTF-8'!r}) from None"]
    out.append("pos = sub")
    return out


def _gen_decoder(name: str, fields) -> str:
    lines = [f"def _d_{name}(data, pos, end):", "    start = pos", "    last = 0"]
    for _num, fname, ftype, rep in fields:
        lines.append(f"    f_{fname} = []" if rep else f"    f_{fname} = {_default(ftype)!r}")
    lines += ["    while pos < end:", "        tag = data[pos]", "        if tag < 128:", "            pos += 1",
              "        else:", "            tag, pos = _read_varint(data, pos, end)"]
    kw = "if"
    for num, fname, ftype, rep in fields:
        wt = 0 if ftype in _VARINT_TYPES else 2
        order = f"last > {num}" if rep else f"last >= {num}"
        lines += [f"        {kw} tag == {num << 3 | wt}:",
                  f"            if {order}: raise _bad_tag({name!r}, tag, last)",
                  f"            last = {num}"]
        lines += ["            " + x for x in _gen_value(name, num, fname, ftype, rep)]
        lines.append(f"            f_{fname}.append(v)" if rep else f"            f_{fname} = v")
        kw = "elif"
    lines += ["        else:" if fields else "        if True:", f"            raise _bad_tag({name!r}, tag, last)"]
    lines.append(f"    if pos != end: raise DecodeError('malformed', {name + ': overrun'!r})")
    if name in ONEOFS:
        present = " + ".join(f"(f_{f[1]} is not None)" for f in fields)
        lines.append(f"    if {present} != 1: raise _nc({name + ': oneof must have exactly one member'!r})")
    lines.append(f"    m = _new(C_{name})")
    for _num, fname, _ftype, _rep in fields:
        lines.append(f"    _set(m, {fname!r}, f_{fname})")
    lines += ["    _set(m, '_raw', bytes(data[start:end]))", "    return m"]
    return "\n".join(lines)


CLASSES: dict[str, type] = {}
_ENCODERS: dict = {}
_DECODERS: dict = {}
# Per-message field tables: number -> (name, type, repeated, wire type), for error details.
_BYNUM = {n: {f[0]: (f[1], f[2], f[3], 0 if f[2] in _VARINT_TYPES else 2) for f in flds}
          for n, flds in MESSAGES.items()}
_NS = {"_set": _set, "_new": object.__new__, "_varint": _varint, "_read_varint": _read_varint,
       "_bad_tag": _bad_tag, "_nc": _nc, "_past": _past, "DecodeError": DecodeError, "encode": encode}
for _name, _flds in MESSAGES.items():
    exec(_gen_init(_name, _flds), _NS)  # noqa: S102 - source generated from the schema table above
    _cls = type(_name, (Message,), {"__slots__": tuple(f[1] for f in _flds), "_name": _name,
                                    "_fields": tuple(_flds), "__init__": _NS.pop("__init__")})
    CLASSES[_name] = _NS[f"C_{_name}"] = _cls
    exec(_gen_encoder(_name, _flds), _NS)  # noqa: S102
    _ENCODERS[_name] = _NS[f"_e_{_name}"]
for _name, _flds in MESSAGES.items():
    exec(_gen_decoder(_name, _flds), _NS)  # noqa: S102
    _DECODERS[_name] = _NS[f"_d_{_name}"]
globals().update(CLASSES)


def decode(name: str, data: bytes) -> Message:
    """Strictly decode `data` as message `name`; raises DecodeError (remote violation)."""
    mv = memoryview(data)
    return _DECODERS[name](mv, 0, len(mv))
