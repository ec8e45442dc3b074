"""Canonical protobuf codec (SPEC 5) over the generated upb module.

decode() parses leniently with upb, then enforces canonical form: unknown fields, re-encoding
byte comparison, declared enum values, and non-empty oneofs in the four message types that need one.
"""

from __future__ import annotations

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message

from impl_a import heraclius_pb2 as pb
from impl_a.errors import RemoteViolation

_ONEOF_REQUIRED = {"Input": "kind", "PeerMessage": "body", "ClientMessage": "body", "ClientReply": "body"}


def encode(msg: Message) -> bytes:
    """Canonical encoding: upb writes fields in number order and omits proto3 defaults."""
    return msg.SerializeToString(deterministic=True)


_PLANS: dict[str, list[tuple[str, bool, bool, frozenset[int] | None]]] = {}


def _plan(desc) -> list[tuple[str, bool, bool, frozenset[int] | None]]:
    """The fields of desc that can hold something _check_semantics refuses: enum fields and
    sub-messages that (transitively) have enums or required oneofs. Strings, bytes, integers and
    message types without either (headers, QCs) are never visited."""
    plan = _PLANS.get(desc.full_name)
    if plan is None:
        _PLANS[desc.full_name] = []  # recursion guard (the schema has no recursive types)
        plan = []
        for f in desc.fields:
            repeated = f.is_repeated
            if f.type == FieldDescriptor.TYPE_ENUM:
                plan.append((f.name, repeated, True, frozenset(f.enum_type.values_by_number)))
            elif f.type == FieldDescriptor.TYPE_MESSAGE and (_plan(f.message_type)
                                                            or f.message_type.name in _ONEOF_REQUIRED):
                plan.append((f.name, repeated, False, None))
        _PLANS[desc.full_name] = plan
    return plan


def _check_semantics(msg: Message) -> None:
    desc = msg.DESCRIPTOR
    oneof = _ONEOF_REQUIRED.get(desc.name)
    if oneof is not None and msg.WhichOneof(oneof) is None:
        raise RemoteViolation("non_canonical", f"empty oneof in {desc.name}")
    for name, repeated, is_enum, values in _plan(desc):
        if is_enum:
            for value in getattr(msg, name) if repeated else (getattr(msg, name),):
                if value and value not in values:  # 0 is the omitted default
                    raise RemoteViolation("non_canonical", f"undeclared enum value {value} in {name}")
        elif repeated:
            for item in getattr(msg, name):
                _check_semantics(item)
        elif msg.HasField(name):
            _check_semantics(getattr(msg, name))


def _varint(data: bytes, pos: int, end: int) -> tuple[int | None, int]:
    """(value, next position); value None when the bytes end inside the varint."""
    value = shift = 0
    while pos < end:
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7
    return None, pos


def _truncated(desc, data: bytes, pos: int, end: int, depth: int = 0) -> bool:
    """True when a length runs past the end of its message or a varint is cut off (SPEC 5:
    `malformed`), looking into nested messages; everything else the parser refuses is non_canonical."""
    while pos < end and depth < 100:
        tag, pos = _varint(data, pos, end)
        if tag is None:
            return True
        wt, field = tag & 7, desc.fields_by_number.get(tag >> 3)
        if wt == 0:
            value, pos = _varint(data, pos, end)
            if value is None:
                return True
        elif wt in (1, 5):
            pos += 8 if wt == 1 else 4
            if pos > end:
                return True
        elif wt == 2:
            n, pos = _varint(data, pos, end)
            if n is None or pos + n > end:
                return True
            if (field is not None and field.type == FieldDescriptor.TYPE_MESSAGE
                    and _truncated(field.message_type, data, pos, pos + n, depth + 1)):
                return True
            pos += n
        else:
            return False
    return False


def decode(cls: type[Message], data: bytes) -> Message:
    """Decode data as cls, accepting only its unique canonical encoding (RemoteViolation otherwise)."""
    msg = cls()
    try:
        msg.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        data = bytes(data)
        reason = "malformed" if _truncated(cls.DESCRIPTOR, data, 0, len(data)) else "non_canonical"
        raise RemoteViolation(reason, f"{cls.DESCRIPTOR.name}: {exc}") from None
    # Unknown fields survive a re-encode, so strip them first: any present makes the bytes differ.
    msg.DiscardUnknownFields()
    if encode(msg) != bytes(data):
        raise RemoteViolation("non_canonical", f"{cls.DESCRIPTOR.name} is not canonically encoded")
    _check_semantics(msg)
    return msg


def sha256_of(msg: Message) -> bytes:
    from impl_a.crypto import sha256

    return sha256(encode(msg))


MESSAGE_TYPES = {name: getattr(pb, name) for name in pb.DESCRIPTOR.message_types_by_name}
