"""codec vectors: checked against protoc's descriptor and Google protobuf, independently of the generator."""

from __future__ import annotations

import json

import pytest

from tests.wire_spec.conftest import VECTORS, message_class
from wire_spec.vectors.generator import codec
from wire_spec.vectors.generator.schema import ENUMS, MESSAGES

VALID = sorted(VECTORS.glob("codec/*/valid/*"))
INVALID = sorted(VECTORS.glob("codec/*/invalid/*"))


def _repeated(fd) -> bool:
    rep = getattr(fd, "is_repeated", None)  # protobuf 7 dropped FieldDescriptor.label
    return rep if rep is not None else fd.label == fd.LABEL_REPEATED


def _render(msg) -> dict:
    """The documented JSON rendering, computed from a Google protobuf message."""
    out = {}
    for fd, value in msg.ListFields():
        def one(v, fd=fd):
            if fd.type == fd.TYPE_MESSAGE:
                return _render(v)
            if fd.type == fd.TYPE_ENUM:
                return fd.enum_type.values_by_number[v].name
            if fd.type == fd.TYPE_BYTES:
                return v.hex()
            return v
        out[fd.name] = [one(v) for v in value] if _repeated(fd) else one(value)
    return out


def test_schema_table_matches_protoc(pool):
    names = {m.name for m in pool.FindFileByName("heraclius.proto").message_types_by_name.values()}
    assert names == set(MESSAGES)
    for name, fields in MESSAGES.items():
        desc = pool.FindMessageTypeByName(f"heraclius.v1.{name}")
        got = []
        for fd in desc.fields:
            if fd.type == fd.TYPE_MESSAGE:
                typ = "msg:" + fd.message_type.name
            elif fd.type == fd.TYPE_ENUM:
                typ = "enum:" + fd.enum_type.name
            else:
                typ = {fd.TYPE_UINT32: "uint32", fd.TYPE_UINT64: "uint64", fd.TYPE_BOOL: "bool",
                       fd.TYPE_STRING: "string", fd.TYPE_BYTES: "bytes"}[fd.type]
            oneof = fd.containing_oneof.name if fd.containing_oneof else None
            got.append((fd.number, fd.name, typ, _repeated(fd), oneof))
        assert got == [tuple(f) for f in fields], name
    for enum, values in ENUMS.items():
        ed = pool.FindEnumTypeByName(f"heraclius.v1.{enum}")
        assert [v.name for v in ed.values] == values
        assert [v.number for v in ed.values] == list(range(len(values)))


def test_every_message_has_valid_and_invalid_cases():
    for name in MESSAGES:
        assert list(VECTORS.glob(f"codec/{name}/valid/*")), name
        assert list(VECTORS.glob(f"codec/{name}/invalid/*")), name


@pytest.mark.parametrize("case", VALID, ids=lambda p: "/".join(p.parts[-3:]))
def test_valid_case_with_protobuf(case, pool):
    meta = json.loads((case / "meta.json").read_text())
    data = (case / "encoded.bin").read_bytes()
    expected = json.loads((case / "decoded.json").read_text())
    msg = message_class(pool, meta["message"])()
    msg.ParseFromString(data)
    assert msg.SerializeToString(deterministic=True) == data
    assert _render(msg) == expected
    assert codec.to_json(meta["message"], codec.decode(meta["message"], data)) == expected


@pytest.mark.parametrize("case", INVALID, ids=lambda p: "/".join(p.parts[-3:]))
def test_invalid_case_rejected(case, pool):
    meta = json.loads((case / "meta.json").read_text())
    data = (case / "encoded.bin").read_bytes()
    assert meta["verdict"] == "reject"
    with pytest.raises(codec.CodecError) as failure:
        codec.decode(meta["message"], data)
    assert failure.value.reason == meta["reason"]
    assert (meta["reason"] == "malformed") == ("truncated varint" in failure.value.detail
                                               or "runs past" in failure.value.detail)
    # Lenient protobuf either fails too or yields a message whose canonical bytes differ.
    msg = message_class(pool, meta["message"])()
    try:
        msg.ParseFromString(data)
    except Exception:  # noqa: BLE001 - any decode failure is a rejection
        return
    canonical = msg.SerializeToString(deterministic=True)
    # protobuf keeps unknown fields and odd enum/bool/uint32 values and accepts empty oneofs;
    # for the other rules its own canonical re-encoding must differ from the input.
    if meta["spec_rule"].split()[-1] not in ("3", "4", "7", "9", "10"):
        assert canonical != data


def test_protoc_compiles_the_schema(descriptor_set, pool):
    assert descriptor_set
    file = pool.FindFileByName("heraclius.proto")
    assert file.package == "heraclius.v1"
    assert len(file.message_types_by_name) == len(MESSAGES)
