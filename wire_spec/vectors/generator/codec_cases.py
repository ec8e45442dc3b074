"""codec/<MessageName> vectors: canonical encodings and the non-canonical ones to reject."""

from __future__ import annotations

from . import samples
from .codec import (
    CodecError,
    decode,
    encode,
    field_bytes,
    field_varint,
    padded_varint,
    raw_fields,
    read_varint,
    tag,
    to_json,
    varint,
)
from .schema import ENUMS, MESSAGES, REQUIRED_ONEOFS, field_by_number
from .writer import CaseWriter


def _join(fields) -> bytes:
    return b"".join(f[2] for f in fields)


def _fields_of(message: str, raw):
    return [(r, field_by_number(message, r[0])) for r in raw]


def _mutations(message: str, data: bytes) -> list[tuple[str, str, str, bytes]]:
    """(case name, rule, description, bytes) invalid variants of the valid encoding `data`."""
    raw = raw_fields(data)
    fl = _fields_of(message, raw)
    out: list[tuple[str, str, str, bytes]] = []

    def replace(i, new: bytes) -> bytes:
        return _join(raw[:i]) + new + _join(raw[i + 1:])

    varints = [i for i, (r, _) in enumerate(fl) if r[1] == 0]
    lens = [i for i, (r, _) in enumerate(fl) if r[1] == 2]
    if varints:
        i = varints[0]
        num, _, _, payload = raw[i]
        value, _ = _read(payload)
        out.append(("nonminimal_varint", "5.4", f"field {num} value {value} written with a redundant 0x80..0x00 byte",
                    replace(i, tag(num, 0) + padded_varint(value, 1))))
        out.append(("default_written_varint", "5.2", f"field {num} written with the default value 0",
                    replace(i, tag(num, 0) + b"\x00")))
        out.append(("packed_scalar", "5.3, 6",
                    f"scalar field {num} written length-delimited (packed), wire type 2",
                    replace(i, field_bytes(num, payload))))
        out.append(("wire_type_fixed64", "5.3", f"field {num} with wire type 1 (fixed64)",
                    replace(i, tag(num, 1) + value.to_bytes(8, "little"))))
    if lens:
        i = lens[0]
        num, _, _, payload = raw[i]
        out.append(("nonminimal_length", "5.5", f"length of field {num} written with a redundant byte",
                    replace(i, tag(num, 2) + padded_varint(len(payload), 1) + payload)))
        out.append(("wire_type_varint_for_len", "5.3", f"length-delimited field {num} written as a varint",
                    replace(i, field_varint(num, 1))))
        if raw[-1][1] == 2:  # only the last field: a longer length must run past the end, nothing else
            num_j, _, _, payload_j = raw[-1]
            out.append(("length_past_end", "5.5", f"length of the last field {num_j} is one too large",
                        _join(raw[:-1]) + tag(num_j, 2) + varint(len(payload_j) + 1) + payload_j))
        out.append(("truncated", "5.5", "the encoding with its last byte cut off", data[:-1]))
    r0, f0 = fl[0]
    out.append(("nonminimal_tag", "5.4", f"tag of field {r0[0]} written with a redundant byte",
                replace(0, padded_varint((r0[0] << 3) | r0[1], 1) + r0[2][len(tag(r0[0], r0[1])):])))
    nonrep = [i for i, (_, f) in enumerate(fl) if not f.repeated]
    if nonrep:
        i = nonrep[0]
        out.append(("duplicated_field", "5.1", f"non-repeated field {raw[i][0]} written twice",
                    _join(raw[:i + 1]) + raw[i][2] + _join(raw[i + 1:])))
    distinct = [i for i in range(1, len(raw)) if raw[i][0] != raw[0][0]]
    if distinct:
        k = distinct[0]
        swapped = [raw[k]] + raw[:k] + raw[k + 1:]
        out.append(("out_of_order", "5.1", f"field {raw[k][0]} written before field {raw[0][0]}", _join(swapped)))
    top = max(f.number for f in MESSAGES[message])
    out.append(("unknown_field", "5.7", f"unknown field number {top + 1} (varint 1) appended",
                data + field_varint(top + 1, 1)))
    out.append(("unknown_field_1000", "5.7", "unknown length-delimited field 1000 appended",
                data + field_bytes(1000, b"x")))
    out.append(("field_number_zero", "5.7", "a trailing field number 0 (bytes 0x00 0x01)", data + b"\x00\x01"))
    out.append(("group_wire_type", "5.3", "a start-group tag (wire type 3) appended",
                data + tag(top + 1, 3) + tag(top + 1, 4)))
    strs = [i for i, (r, f) in enumerate(fl) if f.type == "string"]
    for i in strs[:1]:
        num = raw[i][0]
        for suffix, bad, what in [("", b"c0\xff", "byte 0xff"), ("_overlong", b"c\xc0\xaf", "overlong encoding"),
                                  ("_surrogate", b"c\xed\xa0\x80", "UTF-16 surrogate"),
                                  ("_truncated_seq", b"c\xe4\xb8", "cut multi-byte sequence")]:
            out.append(("bad_utf8" + suffix, "5.8", f"string field {num} is not valid UTF-8 ({what})",
                        replace(i, field_bytes(num, bad))))
        out.append(("default_written_string", "5.2", f"string field {num} written empty",
                    replace(i, field_bytes(num, b""))))
    byts = [i for i, (r, f) in enumerate(fl) if f.type == "bytes" and not f.repeated]
    for i in byts[:1]:
        out.append(("default_written_bytes", "5.2", f"bytes field {raw[i][0]} written empty",
                    replace(i, field_bytes(raw[i][0], b""))))
    for i, (r, f) in enumerate(fl):
        if f.type == "bool":
            out.append(("bool_two", "5.4", f"bool field {r[0]} = 2", replace(i, field_varint(r[0], 2))))
            out.append(("bool_nonminimal", "5.4", f"bool field {r[0]} = 0x81 0x00",
                        replace(i, tag(r[0], 0) + b"\x81\x00")))
        if f.type.startswith("enum:"):
            n = len(ENUMS[f.type[5:]])
            out.append(("enum_out_of_range", "5.10", f"enum field {r[0]} = {n} (not declared)",
                        replace(i, field_varint(r[0], n))))
            out.append(("enum_huge", "5.10", f"enum field {r[0]} = 2^32", replace(i, field_varint(r[0], 2**32))))
        if f.type == "uint32":
            out.append(("uint32_overflow", "5.4", f"uint32 field {r[0]} = 2^32", replace(i, field_varint(r[0], 2**32))))
        if f.type == "uint64" and "varint_11_bytes" not in [o[0] for o in out]:
            out.append(("varint_11_bytes", "5.4", f"field {r[0]} with an 11-byte varint",
                        replace(i, tag(r[0], 0) + b"\x81" + b"\x80" * 9 + b"\x01")))
            out.append(("varint_above_u64", "5.4", f"field {r[0]} = 2^64 (10-byte varint ending in 0x02)",
                        replace(i, tag(r[0], 0) + b"\x80" * 9 + b"\x02")))
    subs = [i for i, (r, f) in enumerate(fl) if f.type.startswith("msg:") and r[3]]
    if subs:
        i = subs[0]
        num, _, _, payload = raw[i]
        sub = fl[i][1].type[4:]
        top_sub = max(f.number for f in MESSAGES[sub])
        out.append(("nested_unknown_field", "5.7", f"sub-message {sub} in field {num} has an unknown field",
                    replace(i, field_bytes(num, payload + field_varint(top_sub + 1, 1)))))
        sub_raw = raw_fields(payload)
        if sub_raw and sub_raw[0][1] == 0:
            nested = tag(sub_raw[0][0], 0) + b"\x00" + b"".join(x[2] for x in sub_raw[1:])
            out.append(("nested_default_written", "5.2", f"sub-message {sub} in field {num} writes a default 0",
                        replace(i, field_bytes(num, nested))))
    reps = [i for i, (r, f) in enumerate(fl) if f.repeated]
    if reps:
        rep_num = raw[reps[0]][0]
        same = [i for i in reps if raw[i][0] == rep_num]
        others = [i for i in range(len(raw)) if raw[i][0] != rep_num]
        if len(same) >= 2 and others:
            k = others[-1]
            order = [x for x in range(len(raw)) if x != k]
            order.insert(order.index(same[0]) + 1, k)
            out.append(("interleaved_repeated", "5.6", f"field {raw[k][0]} written between two elements of "
                        f"repeated field {rep_num}", b"".join(raw[x][2] for x in order)))
    if message in REQUIRED_ONEOFS:
        out.append(("empty_oneof", "5.9", f"no member of oneof {REQUIRED_ONEOFS[message]} set", b""))
        members = [f for f in MESSAGES[message] if f.oneof]
        a, b = members[0], members[1]
        out.append(("two_oneof_members", "5.9", f"oneof members {a.name} and {b.name} both set",
                    field_bytes(a.number, b"") + field_bytes(b.number, b"")))
        out.append(("two_oneof_members_reversed", "5.1", f"oneof members {b.name} then {a.name} (out of order)",
                    field_bytes(b.number, b"") + field_bytes(a.number, b"")))
    return out


def _encode_patched(message: str, value: dict, path: list, raw: bytes) -> bytes:
    """Canonical encoding of `value` except that the field at `path` is written as `raw`."""
    head, rest = path[0], path[1:]
    name, index = head if isinstance(head, tuple) else (head, None)
    out = bytearray()
    for f in MESSAGES[message]:
        if f.name != name:
            out += encode(message, {f.name: value[f.name]}) if f.name in value else b""
            continue
        items = value[f.name] if f.repeated else [value[f.name]]
        for k, item in enumerate(items):
            if index is not None and k != index:
                out += encode(message, {f.name: [item]})
            elif rest:
                out += field_bytes(f.number, _encode_patched(f.type[4:], item, rest, raw))
            else:
                out += raw
    return bytes(out)


def _deep_paths(message: str, value: dict, prefix: list) -> list[tuple[list, object]]:
    """(path, field) of every scalar enum/bool field nested below the top level."""
    found = []
    for f in MESSAGES[message]:
        if f.name not in value:
            continue
        if f.type.startswith("msg:"):
            items = value[f.name] if f.repeated else [value[f.name]]
            for k, item in enumerate(items):
                step = (f.name, k) if f.repeated else f.name
                found += _deep_paths(f.type[4:], item, prefix + [step])
        elif prefix and (f.type == "bool" or f.type.startswith("enum:")):
            found.append((prefix + [f.name], f))
    return found


def _nested_mutations(message: str, values: list[dict]) -> list[tuple[str, str, str, bytes]]:
    out = []
    done = set()
    for path, f, value in [(p, f, v) for v in values for p, f in _deep_paths(message, v, [])]:
        where = ".".join(p if isinstance(p, str) else f"{p[0]}[{p[1]}]" for p in path)
        if f.type == "bool" and "bool" not in done:
            done.add("bool")
            out.append(("nested_bool_two", "5.4", f"nested bool {where} = 2",
                        _encode_patched(message, value, path, field_varint(f.number, 2))))
        if f.type.startswith("enum:") and "enum" not in done:
            done.add("enum")
            n = len(ENUMS[f.type[5:]])
            out.append(("nested_enum_out_of_range", "5.10", f"nested enum {where} = {n} (not declared)",
                        _encode_patched(message, value, path, field_varint(f.number, n))))
    return out


# Messages with few scalar fields of their own: every mutation of the sub-message in this field is
# also written nested inside them ("anywhere", SPEC 5 rule 7 and the re-encode rule).
WRAPPED = {"PeerMessage", "ClientMessage", "ClientReply", "Input", "CompactDecision", "Batch", "QuorumCert",
           "Forward"}


def _wrapped(message: str, data: bytes) -> list[tuple[str, str, str, bytes]]:
    if message not in WRAPPED:
        return []
    raw = raw_fields(data)
    i = next(k for k, r in enumerate(raw) if field_by_number(message, r[0]).type.startswith("msg:") and r[3])
    f = field_by_number(message, raw[i][0])
    out = []
    for name, rule, description, bad in _mutations(f.type[4:], raw[i][3]):
        nested = b"".join(r[2] for r in raw[:i]) + field_bytes(f.number, bad) + b"".join(r[2] for r in raw[i + 1:])
        out.append((f"in_{f.name}_{name}", rule, f"inside {f.name} ({f.type[4:]}): {description}", nested))
    return out


def _wrapped_bases(message: str, encodings: list[bytes]) -> list[bytes]:
    """The longest sample per first non-empty sub-message field, so each oneof member gets its own cases."""
    if message not in WRAPPED:
        return []
    best: dict[int, bytes] = {}
    for data in encodings:
        sub = [r for r in raw_fields(data) if field_by_number(message, r[0]).type.startswith("msg:") and r[3]]
        if sub and len(data) > len(best.get(sub[0][0], b"")):
            best[sub[0][0]] = data
    return [best[n] for n in sorted(best)]


def _read(payload: bytes) -> tuple[int, int]:
    return read_varint(payload, 0, len(payload))


def generate(w: CaseWriter) -> None:
    all_samples = samples.build()
    missing = set(MESSAGES) - set(all_samples)
    if missing:
        raise AssertionError(f"codec samples missing for {sorted(missing)}")
    for message in MESSAGES:
        for name, description, value in all_samples[message]:
            data = encode(message, value)
            if to_json(message, decode(message, data)) != to_json(message, value):
                raise AssertionError(f"{message}/{name}: round trip")
            w.case("codec", message, True, name,
                   {"description": description, "message": message, "verdict": "accept",
                    "expected": "decode encoded.bin, compare with decoded.json, re-encode, compare bytes"},
                   {"encoded.bin": data, "decoded.json": to_json(message, decode(message, data))})
        base = max((encode(message, v) for _, _, v in all_samples[message]), key=len)
        values = [v for _, _, v in all_samples[message]]
        seen: set[bytes] = set()
        mutations = _mutations(message, base) + _nested_mutations(message, values)
        for wrapped_base in _wrapped_bases(message, [encode(message, v) for v in values]):
            mutations += _wrapped(message, wrapped_base)
        for name, rule, description, bad in mutations:
            try:
                decode(message, bad)
            except CodecError as exc:
                reason = exc.reason
            else:
                raise AssertionError(f"{message}/{name}: mutation decodes")
            if bad in seen:
                continue
            seen.add(bad)
            w.case("codec", message, False, name,
                   {"description": description, "message": message, "verdict": "reject", "reason": reason,
                    "spec_rule": "SPEC 5 rule " + rule.split(".", 1)[1]},
                   {"encoded.bin": bad})
