"""manifest/validate (SPEC 3) and shard/map vectors, and the example manifest."""

from __future__ import annotations

import copy
import hashlib

from .manifest_check import semantic_problem
from .network import Network
from .writer import CaseWriter


def base_network() -> Network:
    return Network("vectors-manifest", [("c0", "coordinator", 4), ("s0", "shard", 4), ("s1", "shard", 4)],
                   ["alice", "bob"])


def example_manifest() -> dict:
    """wire_spec/examples/manifest.example.json: one coordinator and one shard cluster."""
    net = Network("example-net", [("c0", "coordinator", 4), ("s0", "shard", 4)], ["client-0"])
    m = net.manifest
    m["timeouts_ms"] = {"heartbeat_interval": 250, "heartbeat_timeout": 2000, "request_forward": 1000,
                        "censorship": 4000, "view_change": 3000, "queue_long_poll": 1000, "sync_retry": 500,
                        "client_timeout": 5000, "batch_wait": 2}
    m["limits"] = {"max_batch_inputs": 1024, "max_batch_bytes": 4194304, "max_message_bytes": 16777216,
                   "max_key_bytes": 1024, "max_value_bytes": 65536, "max_pending_requests": 100000}
    return m


def _node(m: dict, cluster: int, index: int) -> dict:
    return m["clusters"][cluster]["nodes"][index]


def generate(w: CaseWriter) -> None:
    net = base_network()
    base = net.manifest

    def variant(fn) -> dict:
        m = copy.deepcopy(base)
        fn(m)
        return m

    def case(valid: bool, name: str, description: str, m: dict, stage: str | None = None,
             rule: int | None = None) -> None:
        if stage != "schema":  # schema verdicts are checked by tests/wire_spec (needs jsonschema)
            got = semantic_problem(m)
            if (got[0] if got else None) != rule:
                raise AssertionError(f"manifest case {name}: semantic check says {got}")
        expected = {"valid": valid, "stage": stage, "rule": rule}
        w.case("manifest", "validate", valid, name, {"description": description, "verdict": "accept" if valid
                                                     else "reject", "expected": expected}, {"manifest.json": m})

    case(True, "three_clusters", "1 coordinator, 2 shards of 4 nodes, no optional fields", base)
    case(True, "example", "wire_spec/examples/manifest.example.json", example_manifest())
    case(True, "seven_node_cluster", "a shard cluster of 7 nodes (f = 2)", Network(
        "vectors-manifest-7", [("c0", "coordinator", 4), ("s0", "shard", 7)], ["alice"]).manifest)
    case(True, "shard_order_permuted", "shard_map lists both shards in reverse manifest order (order = index)",
         variant(lambda m: m["shard_map"].__setitem__("shards", ["s1", "s0"])))
    case(True, "same_port_other_host", "two nodes share port numbers on different hosts",
         variant(lambda m: _node(m, 0, 1).update(host="10.0.0.2", ports=_node(m, 0, 0)["ports"])))
    case(True, "testbed_with_faults", "testbed true and a node with a drop fault", variant(lambda m: (
        m.update(testbed=True), _node(m, 0, 0).update(faults=[{"action": "drop", "messages": ["prepare"]}]))))
    case(True, "no_clients", "an empty client list", variant(lambda m: m.update(clients=[])))
    case(True, "timeouts_just_valid", "heartbeat_timeout = interval + 1, censorship = request_forward + 1",
         variant(lambda m: m.update(timeouts_ms={"heartbeat_interval": 100, "heartbeat_timeout": 101,
                                                  "request_forward": 50, "censorship": 51})))
    case(True, "bind_and_dns_host", "a DNS host name and an explicit bind address",
         variant(lambda m: _node(m, 0, 0).update(host="node0.example.org", bind="0.0.0.0")))
    case(True, "client_id_equals_node_id", "client alice renamed s0-n1, a node id (ids are unique per kind, "
         "SPEC 3 rule 1, DF-2)", variant(lambda m: m["clients"][0].update(id="s0-n1")))
    case(True, "client_id_equals_cluster_id", "client bob renamed c0, a cluster id (ids are unique per kind, "
         "SPEC 3 rule 1, DF-2)", variant(lambda m: m["clients"][1].update(id="c0")))

    def sem(name, description, rule, fn):
        case(False, name, description, variant(fn), "semantic", rule)

    sem("duplicate_cluster_id", "two clusters with id s0 (the shard map lists s0 twice)", 1, lambda m: (
        m["clusters"][2].update(id="s0"), m["shard_map"].update(shards=["s0", "s0"])))
    sem("duplicate_node_id", "a node id used in two clusters", 1, lambda m: _node(m, 1, 0).update(id="c0-n0"))
    sem("duplicate_client_id", "two clients named alice", 1, lambda m: m["clients"][1].update(id="alice"))
    sem("node_id_equals_cluster_id", "a node named s1 (a cluster id)", 1, lambda m: _node(m, 0, 3).update(id="s1"))
    sem("five_nodes", "a cluster of 5 nodes", 2, lambda m: m["clusters"][1]["nodes"].append(_extra_node(m, 5)))
    sem("six_nodes", "a cluster of 6 nodes", 2, lambda m: m["clusters"][1]["nodes"].extend(
        [_extra_node(m, 5), _extra_node(m, 6)]))
    sem("no_coordinator", "every cluster is a shard", 3, lambda m: (
        m["clusters"][0].update(role="shard"), m["shard_map"].update(shards=["c0", "s0", "s1"])))
    sem("no_shard", "every cluster is a coordinator", 3, lambda m: (
        m["clusters"][1].update(role="coordinator"), m["clusters"][2].update(role="coordinator")))
    sem("shard_map_missing", "shard_map omits s1", 4, lambda m: m["shard_map"].update(shards=["s0"]))
    sem("shard_map_duplicate", "shard_map lists s0 twice", 4, lambda m: m["shard_map"].update(shards=["s0", "s1", "s0"]))
    sem("shard_map_coordinator", "shard_map lists the coordinator", 4,
        lambda m: m["shard_map"].update(shards=["s0", "s1", "c0"]))
    sem("shard_map_unknown", "shard_map lists an unknown cluster", 4,
        lambda m: m["shard_map"].update(shards=["s0", "s1", "s9"]))
    sem("duplicate_ed25519_nodes", "two nodes with the same ed25519_public", 5,
        lambda m: _node(m, 1, 1).update(ed25519_public=_node(m, 0, 2)["ed25519_public"]))
    sem("duplicate_x25519_nodes", "two nodes with the same x25519_public", 5,
        lambda m: _node(m, 2, 1).update(x25519_public=_node(m, 0, 2)["x25519_public"]))
    sem("client_key_equals_node_key", "a client key equal to a node's ed25519_public", 5,
        lambda m: m["clients"][0].update(ed25519_public=_node(m, 0, 0)["ed25519_public"]))
    sem("ed25519_equals_own_x25519", "a node whose two public keys are equal", 5,
        lambda m: _node(m, 0, 0).update(x25519_public=_node(m, 0, 0)["ed25519_public"]))
    sem("duplicate_client_keys", "two clients with the same key", 5,
        lambda m: m["clients"][1].update(ed25519_public=m["clients"][0]["ed25519_public"]))
    sem("shared_port_same_host", "two nodes on the same host: one's client port is the other's peer port", 6,
        lambda m: _node(m, 0, 1)["ports"].update(client=_node(m, 0, 0)["ports"]["peer"]))
    sem("port_used_twice_by_node", "a node whose admin port equals its peer port", 6,
        lambda m: _node(m, 1, 2)["ports"].update(admin=_node(m, 1, 2)["ports"]["peer"]))
    sem("faults_without_testbed", "testbed false and a node with faults", 7, lambda m: _node(m, 0, 0).update(
        faults=[{"action": "silent"}]))
    sem("faults_testbed_absent", "testbed absent (default false) and a node with faults", 7, lambda m: (
        m.pop("testbed"), _node(m, 1, 0).update(faults=[{"action": "drop"}])))
    sem("heartbeat_timeout_equal", "heartbeat_timeout = heartbeat_interval", 8,
        lambda m: m.update(timeouts_ms={"heartbeat_interval": 500, "heartbeat_timeout": 500}))
    sem("heartbeat_interval_above_default_timeout", "heartbeat_interval 3000 with the default timeout 2000", 8,
        lambda m: m.update(timeouts_ms={"heartbeat_interval": 3000}))
    sem("censorship_below_forward", "censorship 900 < request_forward default 1000", 8,
        lambda m: m.update(timeouts_ms={"censorship": 900}))

    def sch(name, description, fn):
        case(False, name, description, variant(fn), "schema", None)

    sch("missing_version", "no version", lambda m: m.pop("version"))
    sch("version_2", "version 2", lambda m: m.update(version=2))
    sch("network_id_uppercase", "network_id with an upper-case letter", lambda m: m.update(network_id="Net"))
    sch("network_id_too_long", "network_id of 65 characters", lambda m: m.update(network_id="n" * 65))
    sch("unknown_property", "an unknown top-level property", lambda m: m.update(extra=1))
    sch("one_cluster", "a single cluster", lambda m: m.update(clusters=m["clusters"][:1]))
    sch("three_nodes", "a cluster of 3 nodes", lambda m: m["clusters"][1]["nodes"].pop())
    sch("bad_role", "role 'leader'", lambda m: m["clusters"][0].update(role="leader"))
    sch("cluster_id_digit", "cluster id starting with a digit", lambda m: m["clusters"][2].update(id="1s"))
    sch("node_id_uppercase", "node id with an upper-case letter", lambda m: _node(m, 0, 0).update(id="C0-n0"))
    sch("port_zero", "port 0", lambda m: _node(m, 0, 0)["ports"].update(peer=0))
    sch("port_too_large", "port 65536", lambda m: _node(m, 0, 0)["ports"].update(admin=65536))
    sch("missing_port", "ports without admin", lambda m: _node(m, 0, 0)["ports"].pop("admin"))
    sch("key_uppercase_hex", "ed25519_public in upper-case hex",
        lambda m: _node(m, 0, 0).update(ed25519_public=_node(m, 0, 0)["ed25519_public"].upper()))
    sch("key_short", "x25519_public of 31 bytes", lambda m: _node(m, 0, 0).update(
        x25519_public=_node(m, 0, 0)["x25519_public"][:62]))
    sch("node_missing_x25519", "a node without x25519_public", lambda m: _node(m, 0, 0).pop("x25519_public"))
    sch("bad_shard_function", "shard_map function 'crc32'", lambda m: m["shard_map"].update(function="crc32"))
    sch("unknown_timeout", "an unknown timeouts_ms key", lambda m: m.update(timeouts_ms={"heartbeat": 1}))
    sch("timeout_zero", "view_change 0 ms", lambda m: m.update(timeouts_ms={"view_change": 0}))
    sch("limit_zero_batch", "max_batch_inputs 0", lambda m: m.update(limits={"max_batch_inputs": 0}))
    sch("bad_fault_action", "a fault action 'explode'", lambda m: (
        m.update(testbed=True), _node(m, 0, 0).update(faults=[{"action": "explode"}])))
    sch("fault_probability_above_1", "fault probability 1.5", lambda m: (
        m.update(testbed=True), _node(m, 0, 0).update(faults=[{"action": "drop", "probability": 1.5}])))
    sch("client_id_space", "client id with a space", lambda m: m["clients"][0].update(id="al ice"))
    sch("testbed_string", "testbed given as the string 'true'", lambda m: m.update(testbed="true"))
    sch("missing_clients", "no clients field", lambda m: m.pop("clients"))


def _extra_node(m: dict, i: int) -> dict:
    n = copy.deepcopy(m["clusters"][1]["nodes"][0])
    h = hashlib.sha256(b"extra node %d" % i).hexdigest()
    n.update(id=f"s0-n{i}", ed25519_public=h, x25519_public=hashlib.sha256(h.encode()).hexdigest(),
             ports={"peer": 9000 + 10 * i, "client": 9001 + 10 * i, "admin": 9002 + 10 * i})
    return n


def generate_shard_map(w: CaseWriter) -> None:
    keys = [b"k%d" % i for i in range(16)] + [b"", b"\x00", b"\xff" * 8, "cl\u00e9".encode(), b"x" * 1024,
                                               bytes(range(32))]
    for name, shards in [("one_shard", ["s0"]), ("two_shards", ["s0", "s1"]), ("two_shards_reversed", ["s1", "s0"]),
                         ("three_shards", ["s0", "s1", "s2"]), ("five_shards", ["a", "b", "c", "d", "e"])]:
        expected = []
        for k in keys:
            u = int.from_bytes(hashlib.sha256(k).digest()[:8], "big")
            expected.append({"key": k.hex(), "u64": u, "index": u % len(shards), "shard": shards[u % len(shards)]})
        w.case("shard", "map", True, name, {"description": f"shard_of for {len(keys)} keys over {shards}",
                                            "verdict": "equal"},
               {"input.json": {"shards": shards, "keys": [k.hex() for k in keys]},
                "expected.json": {"results": expected}})
