"""Schemas, the example manifest, manifest/validate vectors and shard/map vectors."""

from __future__ import annotations

import hashlib
import json

import jsonschema
import pytest

from tests.wire_spec.conftest import VECTORS, WIRE_SPEC
from wire_spec.vectors.generator.manifest_check import validate

MANIFEST_SCHEMA = json.loads((WIRE_SPEC / "manifest.schema.json").read_text())
STATUS_SCHEMA = json.loads((WIRE_SPEC / "status.schema.json").read_text())
EXAMPLE = json.loads((WIRE_SPEC / "examples" / "manifest.example.json").read_text())


@pytest.mark.parametrize("schema", [MANIFEST_SCHEMA, STATUS_SCHEMA], ids=["manifest", "status"])
def test_schema_is_valid_draft_2020_12(schema):
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_status_schema_validates_its_examples():
    assert STATUS_SCHEMA["examples"]
    for example in STATUS_SCHEMA["examples"]:
        jsonschema.Draft202012Validator(STATUS_SCHEMA).validate(example)
    broken = dict(STATUS_SCHEMA["examples"][0], height=-1)
    assert list(jsonschema.Draft202012Validator(STATUS_SCHEMA).iter_errors(broken))


def test_example_manifest():
    jsonschema.Draft202012Validator(MANIFEST_SCHEMA).validate(EXAMPLE)
    assert validate(EXAMPLE)["valid"]
    roles = sorted(c["role"] for c in EXAMPLE["clusters"])
    assert roles == ["coordinator", "shard"]
    assert all(len(c["nodes"]) == 4 for c in EXAMPLE["clusters"])
    assert json.loads((VECTORS / "manifest/validate/valid/example/manifest.json").read_text()) == EXAMPLE


@pytest.mark.parametrize("case", sorted(VECTORS.glob("manifest/validate/*/*")), ids=lambda p: "/".join(p.parts[-2:]))
def test_manifest_vector(case):
    meta = json.loads((case / "meta.json").read_text())
    got = validate(json.loads((case / "manifest.json").read_text()))
    exp = meta["expected"]
    assert (got["valid"], got["stage"], got["rule"]) == (exp["valid"], exp["stage"], exp["rule"]), got["message"]
    assert exp["valid"] == (case.parent.name == "valid")


def test_every_semantic_rule_has_an_invalid_case():
    rules = {json.loads((c / "meta.json").read_text())["expected"]["rule"]
             for c in VECTORS.glob("manifest/validate/invalid/*")}
    assert set(range(1, 9)) <= rules


@pytest.mark.parametrize("case", sorted(VECTORS.glob("shard/map/*/*")), ids=lambda p: p.name)
def test_shard_map(case):
    inp = json.loads((case / "input.json").read_text())
    results = json.loads((case / "expected.json").read_text())["results"]
    assert [r["key"] for r in results] == inp["keys"]
    for r in results:
        digest = hashlib.sha256(bytes.fromhex(r["key"])).digest()
        u = int.from_bytes(digest[:8], "big")
        assert (r["u64"], r["index"], r["shard"]) == (u, u % len(inp["shards"]), inp["shards"][u % len(inp["shards"])])


def test_every_other_manifest_in_the_vectors_is_valid():
    """Manifests that serve as context (qc, compact, execution, noise) must themselves be valid."""
    paths = [p for p in sorted(VECTORS.rglob("manifest.json"))
             if "external" not in p.parts and p.parts[-5:-3] != ("manifest", "validate")]
    assert len(paths) > 50
    for p in paths:
        assert validate(json.loads(p.read_text()))["valid"], p
