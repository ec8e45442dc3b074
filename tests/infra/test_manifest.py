"""Keys and manifests: file format and modes, schema validity, every SPEC 3 semantic rule."""

import copy
import json
import stat

import pytest

from infra.errors import UsageError
from infra.model.keys import ed25519_public, read_secret, x25519_public
from infra.model.manifest import (
    DEFAULT_TIMEOUTS,
    manifest_problems,
    parse_timeouts,
    schema_problems,
    validate_manifest,
)
from infra.model.planner import make_plan
from infra.providers.local import provider as local


@pytest.fixture
def created(home):
    return local.create(make_plan(3, coordinators=1, shards=2), "m", home, testbed=False)


@pytest.fixture
def manifest(created):
    return json.loads(created.manifest_path.read_text())


def test_layout_modes_and_keys_match_manifest(created, manifest):
    root = created.root
    assert stat.S_IMODE(root.joinpath("keys").stat().st_mode) == 0o700
    for c in manifest["clusters"]:
        for n in c["nodes"]:
            kdir = created.keys_dir(n["id"])
            assert stat.S_IMODE(kdir.stat().st_mode) == 0o700
            for name in ("ed25519.key", "x25519.key"):
                text = (kdir / name).read_text()
                assert len(text) == 65 and text.endswith("\n") and int(text[:64], 16) >= 0
                assert stat.S_IMODE((kdir / name).stat().st_mode) == 0o600
            assert ed25519_public(read_secret(kdir / "ed25519.key")) == n["ed25519_public"]
            assert x25519_public(read_secret(kdir / "x25519.key")) == n["x25519_public"]
            assert n["ed25519_public"] != n["x25519_public"]
    for cl in manifest["clients"]:
        assert ed25519_public(read_secret(created.client_key(cl["id"]))) == cl["ed25519_public"]
    state = json.loads(created.state_path.read_text())
    assert state["provider"] == "local"
    assert state["nodes"]["c0-n1"]["command"][2] == "impl_b.node"


def test_manifest_valid_and_regions_on_own_loopback(manifest):
    assert schema_problems(manifest) == [] and manifest_problems(manifest) == []
    assert manifest["shard_map"]["shards"] == ["s0", "s1"]
    regions = manifest["regions"]
    for c in manifest["clusters"]:
        for n in c["nodes"]:
            a, b, r, k = n["host"].split(".")
            assert (a, b) == ("127", "0") and int(r) == regions.index(n["region"]) + 1
    hosts = [n["host"] for c in manifest["clusters"] for n in c["nodes"]]
    assert len(set(hosts)) == len(hosts)


def mutate(m, fn):
    m = copy.deepcopy(m)
    fn(m)
    return manifest_problems(m)


def node(m, i=0, j=0):
    return m["clusters"][i]["nodes"][j]


@pytest.mark.parametrize("fn, expect", [
    (lambda m: node(m, 0, 1).update(id=node(m, 0, 0)["id"]), "rule 1: node id"),
    (lambda m: node(m, 0, 1).update(id="s0"), "rule 1: node id 's0' equals a cluster id"),
    (lambda m: m["clusters"][1].update(id="s1") or m["shard_map"].update(shards=["s1", "s1"]), "rule 1: cluster id"),
    (lambda m: m["clients"].append(dict(m["clients"][0], ed25519_public="ab" * 32)), "rule 1: client id"),
    (lambda m: m["clusters"][0]["nodes"].append(dict(node(m, 1, 0), id="x1")), "rule 2: cluster c0 has 5 nodes"),
    (lambda m: [c.update(role="shard") for c in m["clusters"]], "rule 3: there is no coordinator cluster"),
    (lambda m: m["shard_map"].update(shards=["s0"]), "rule 4"),
    (lambda m: node(m, 0, 1).update(ed25519_public=node(m, 0, 0)["ed25519_public"]), "rule 5"),
    (lambda m: node(m, 0, 1).update(x25519_public=m["clients"][0]["ed25519_public"]), "rule 5"),
    (lambda m: node(m, 0, 1).update(host=node(m, 0, 0)["host"], ports=dict(node(m, 0, 0)["ports"])), "rule 6"),
    (lambda m: node(m).update(ports={"peer": 1000, "client": 1000, "admin": 1001}), "rule 6: node c0-n0 uses one port"),
    (lambda m: node(m).update(faults=[{"action": "silent"}]), "rule 7"),
    (lambda m: m["timeouts_ms"].update(heartbeat_timeout=250), "rule 8: heartbeat_timeout"),
    (lambda m: m["timeouts_ms"].update(censorship=1000), "rule 8: censorship"),
])
def test_semantic_rules(manifest, fn, expect):
    problems = mutate(manifest, fn)
    assert any(expect in p for p in problems), problems


def test_schema_problems_and_validate(manifest):
    bad = copy.deepcopy(manifest)
    bad["network_id"] = "Bad_ID"
    assert any(p.startswith("network_id") for p in schema_problems(bad))
    with pytest.raises(UsageError, match="invalid manifest: network_id"):
        validate_manifest(bad)
    assert validate_manifest(manifest) is manifest


def test_key_file_checks(created, tmp_path):
    k = created.keys_dir("c0-n0") / "ed25519.key"
    k.chmod(0o644)
    with pytest.raises(UsageError) as e:
        read_secret(k)
    assert "chmod 600" in e.value.fix
    bad = tmp_path / "bad.key"
    bad.write_text("zz" * 32 + "\n")
    bad.chmod(0o600)
    with pytest.raises(UsageError, match="not hex"):
        read_secret(bad)


def test_create_refuses_existing(created, home):
    with pytest.raises(UsageError, match="already exists"):
        local.create(make_plan(3), "m", home)


def test_timeout_overrides_reach_the_manifest(home):
    plan = make_plan(2)
    plan.timeouts_ms = parse_timeouts(["heartbeat_timeout=4000", "view_change=6000"])
    m = json.loads(local.create(plan, "t", home).manifest_path.read_text())
    assert m["timeouts_ms"] == {**DEFAULT_TIMEOUTS, "heartbeat_timeout": 4000, "view_change": 6000}
    assert manifest_problems(m) == []


@pytest.mark.parametrize("pairs, message", [
    (["hearbeat_timeout=4000"], "unknown timeout 'hearbeat_timeout'"),
    (["view_change"], "is not NAME=MS"),
    (["view_change=0"], "is not NAME=MS"),
    (["view_change=-5"], "is not NAME=MS"),
    (["heartbeat_timeout=200"], "rule 8: heartbeat_timeout <= heartbeat_interval"),
    (["request_forward=5000"], "rule 8: censorship <= request_forward"),
])
def test_bad_timeout_overrides_are_named(pairs, message):
    with pytest.raises(UsageError) as e:
        parse_timeouts(pairs)
    assert message in e.value.message and e.value.fix


def test_node_ports_lie_outside_the_ephemeral_range(manifest):
    """A stopped node's port must not be handed out as the local port of an outgoing connection."""
    low, high = local._ephemeral_range()
    ports = [(n["host"], p) for c in manifest["clusters"] for n in c["nodes"] for p in n["ports"].values()]
    assert len(set(ports)) == len(ports)
    assert all(not low <= p <= high for _, p in ports), ports
