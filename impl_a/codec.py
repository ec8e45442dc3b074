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


def _check_semantics(msg: Message) -> None:
    desc = msg.DESCRIPTOR
    oneof = _ONEOF_REQUIRED.get(desc.name)
    if oneof is not None and msg.WhichOneof(oneof) is None:
        raise RemoteViolation("non_canonical", f"empty oneof in {desc.name}")
    for field, value in msg.ListFields():
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            for item in value if field.is_repeated else (value,):
                _check_semantics(item)
        elif field.type == FieldDescriptor.TYPE_ENUM and field.enum_type.values_by_number.get(value) is None:
            raise RemoteViolation("non_canonical", f"undeclared enum value {value} in {field.name}")


def decode(cls: type[Message], data: bytes) -> Message:
    """Decode data as cls, accepting only its unique canonical encoding (RemoteViolation otherwise)."""
    msg = cls()
    try:
        msg.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise RemoteViolation("malformed", f"{cls.DESCRIPTOR.name}: {exc}") from None
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
