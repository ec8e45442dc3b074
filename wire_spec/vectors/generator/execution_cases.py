"""execution/coordinator and execution/shard vectors (SPEC 11): batches -> decisions, or a verdict."""

from __future__ import annotations

import copy

from .codec import encode, to_json
from .keys import Signer
from .network import Network, build_header, compact
from .rsm import ClusterState, InvalidBatch
from .writer import CaseWriter


def exec_network() -> Network:
    net = Network("vectors-exec", [("c0", "coordinator", 4), ("c1", "coordinator", 4), ("s0", "shard", 4),
                                   ("s1", "shard", 4)], ["alice", "bob"])
    net.manifest["limits"] = {"max_batch_inputs": 8, "max_key_bytes": 16, "max_value_bytes": 32}
    return net


class Sim:
    """Runs every cluster of a network; keeps each cluster's batches and signed decisions."""

    def __init__(self, net: Network):
        self.net = net
        self.states = {c: ClusterState(net.manifest, c) for c in net.members}
        self.batches: dict[str, list[dict]] = {c: [] for c in net.members}
        self.decisions: dict[str, list[dict]] = {c: [] for c in net.members}

    def decide(self, cluster: str, inputs: list[dict]) -> dict:
        batch = {"inputs": inputs}
        decision = self.states[cluster].execute(batch)
        decision["qc"] = self.net.qc(decision["header"])
        self.batches[cluster].append(batch)
        self.decisions[cluster].append(decision)
        return decision

    def remote(self, source: str, height: int, dest: str) -> dict:
        """A fresh copy: callers may tamper with it without changing the decision it comes from."""
        return {"remote": copy.deepcopy(compact(self.decisions[source][height - 1], dest))}

    def req(self, client: str, cluster: str, rid: int, kind: int, key: bytes, value: bytes = b"") -> dict:
        op = {"kind": kind, "key": key}
        if value:
            op["value"] = value
        return {"client": self.net.sign_request(client, {"request_id": rid, "cluster_id": cluster, "op": op})}

    def bundle(self, client: str, cluster: str, items: list[tuple]) -> dict:
        """items: (request_id, kind, key[, value])."""
        out = []
        for rid, kind, key, *value in items:
            op = {"kind": kind, "key": key}
            if value and value[0]:
                op["value"] = value[0]
            out.append({"request_id": rid, "op": op})
        return {"bundle": self.net.sign_bundle(client, {"cluster_id": cluster, "items": out})}


GET, PUT = 1, 2


def _keys(net: Network) -> dict[str, list[bytes]]:
    by_shard: dict[str, list[bytes]] = {s: [] for s in net.shards}
    for i in range(64):
        k = b"k%d" % i
        by_shard[net.shard_of(k)].append(k)
    return by_shard


def _write(w: CaseWriter, role: str, valid: bool, name: str, description: str, net: Network, cluster: str,
           batches: list[dict], bad_batch: dict | None = None, reason: str | None = None) -> None:
    state = ClusterState(net.manifest, cluster)
    files: dict = {"manifest.json": net.manifest}
    for i, batch in enumerate(batches, 1):
        decision = state.execute(batch)
        files[f"batch_{i:03d}.bin"] = encode("Batch", batch)
        files[f"decision_{i:03d}.bin"] = encode("Decision", decision)
        files[f"decision_{i:03d}.json"] = to_json("Decision", decision)
    meta = {"description": description, "cluster": cluster, "role": role, "steps": len(batches) + (bad_batch is not None)}
    if bad_batch is None:
        meta.update(verdict="every decision equals the expected one", invalid_step=None)
        files["final_state.json"] = state.summary()
    else:
        try:
            state.execute(bad_batch)
        except InvalidBatch as exc:
            if exc.reason != reason:
                raise AssertionError(f"{name}: got {exc.reason}, expected {reason}") from exc
            meta.update(verdict=f"batch {len(batches) + 1} is invalid", invalid_step=len(batches) + 1,
                        invalid_input=None if exc.index < 0 else exc.index, reason="invalid_proposal",
                        input_reason=reason)
        else:
            raise AssertionError(f"{name}: invalid batch accepted")
        files[f"batch_{len(batches) + 1:03d}.bin"] = encode("Batch", bad_batch)
    w.case("execution", role, valid, name, meta, files)


def _basic(net: Network) -> Sim:
    """Two coordinators, two shards: PUT then GET, dedup, remote inputs in any source order."""
    sim = Sim(net)
    keys = _keys(net)
    ka, kb = keys["s0"][0], keys["s1"][0]
    r = sim.req
    sim.decide("c0", [r("alice", "c0", 1, PUT, ka, b"v1"), r("alice", "c0", 2, PUT, kb, b"v2"),
                      r("bob", "c0", 1, GET, ka)])
    sim.decide("s0", [sim.remote("c0", 1, "s0")])
    sim.decide("s1", [sim.remote("c0", 1, "s1")])
    sim.decide("c0", [sim.remote("s0", 1, "c0"), sim.remote("s1", 1, "c0"), r("alice", "c0", 3, GET, kb),
                      r("alice", "c0", 1, PUT, ka, b"v1"), r("bob", "c0", 2, PUT, ka, b"v3")])
    sim.decide("s0", [sim.remote("c0", 2, "s0")])
    sim.decide("s1", [sim.remote("c0", 2, "s1")])
    sim.decide("c0", [sim.remote("s1", 2, "c0"), sim.remote("s0", 2, "c0")])
    sim.decide("c0", [r("alice", "c0", 3, GET, kb), r("bob", "c0", 1, GET, ka)])  # both skipped: no outputs
    # c1 runs in parallel on the same shards; s0 takes both coordinators' calls in one batch.
    sim.decide("c1", [r("bob", "c1", 100, GET, ka), r("bob", "c1", 101, PUT, keys["s0"][1], b""),
                      r("alice", "c1", 7, GET, keys["s0"][2])])
    sim.decide("c1", [r("bob", "c1", 102, GET, keys["s0"][1]), r("bob", "c1", 103, PUT, kb, b"from-c1")])
    sim.decide("c0", [r("alice", "c0", 4, GET, ka), r("alice", "c0", 5, GET, kb)])
    # s0 and s1 each take calls of both coordinators in one batch; s1 runs c1's PUT before c0's GET.
    sim.decide("s0", [sim.remote("c0", 5, "s0"), sim.remote("c1", 1, "s0"), sim.remote("c1", 2, "s0")])
    sim.decide("s1", [sim.remote("c1", 2, "s1"), sim.remote("c0", 5, "s1")])
    sim.decide("c1", [sim.remote("s0", 3, "c1"), sim.remote("s1", 3, "c1")])
    sim.decide("c0", [sim.remote("s0", 3, "c0"), sim.remote("s1", 3, "c0")])
    return sim


def _dedup(net: Network) -> Sim:
    """The dedup window W = 65536 of SPEC 11: stale ids, ids at the floor, ids dropped from the set."""
    sim = Sim(net)
    ka = _keys(net)["s0"][0]
    r = sim.req
    sim.decide("c0", [r("alice", "c0", 100000, PUT, ka, b"a"), r("alice", "c0", 30000, PUT, ka, b"stale"),
                      r("alice", "c0", 34465, GET, ka)])
    sim.decide("c0", [r("alice", "c0", 34464, PUT, ka, b"at-floor"), r("alice", "c0", 100000, PUT, ka, b"again"),
                      r("alice", "c0", 200000, PUT, ka, b"b"), r("alice", "c0", 34465, GET, ka)])
    sim.decide("c0", [r("alice", "c0", 134464, GET, ka), r("alice", "c0", 134465, GET, ka),
                      r("alice", "c0", 150000, GET, ka), r("alice", "c0", 100000, GET, ka),
                      r("bob", "c0", 30000, GET, ka)])
    sim.decide("c0", [r("alice", "c0", 2**64 - 1, PUT, ka, b"max"), r("alice", "c0", 2**64 - 65536, GET, ka),
                      r("alice", "c0", 2**64 - 65537, GET, ka)])
    sim.decide("s0", [sim.remote("c0", 1, "s0"), sim.remote("c0", 2, "s0"), sim.remote("c0", 3, "s0"),
                      sim.remote("c0", 4, "s0")])
    sim.decide("c0", [sim.remote("s0", 1, "c0")])
    return sim


def _limits(net: Network) -> Sim:
    """Inputs exactly at the manifest limits: 8 inputs, 16-byte keys, 32-byte values, 1-byte keys."""
    sim = Sim(net)
    r = sim.req
    k16 = [b"K" * 15 + bytes([65 + i]) for i in range(3)]
    inputs = [r("alice", "c0", i + 1, PUT, k, bytes([48 + i]) * 32) for i, k in enumerate(k16)]
    inputs += [r("bob", "c0", 1, GET, k16[0]), r("bob", "c0", 2, PUT, b"x", b"y"), r("bob", "c0", 3, GET, b"x"),
               r("bob", "c0", 4, GET, b"\x00"), r("alice", "c0", 2**64 - 1, GET, k16[2])]
    sim.decide("c0", inputs)
    for shard in net.shards:
        sim.decide(shard, [sim.remote("c0", 1, shard)])
    sim.decide("c0", [sim.remote(shard, 1, "c0") for shard in net.shards])
    return sim


def _bundles(net: Network) -> Sim:
    """Request bundles (SPEC 14.6): each item runs as a client request; accepted ids are skipped."""
    sim = Sim(net)
    keys = _keys(net)
    ka, kb = keys["s0"][0], keys["s1"][0]
    b, r = sim.bundle, sim.req
    sim.decide("c0", [b("alice", "c0", [(1, PUT, ka, b"v1"), (2, PUT, kb, b"v2"), (3, GET, ka)]),
                      r("bob", "c0", 1, GET, kb)])
    sim.decide("s0", [sim.remote("c0", 1, "s0")])
    sim.decide("s1", [sim.remote("c0", 1, "s1")])
    # One leaf for alice holds all three responses; bob's bundle has ids 2 and 3 only (1 was a request).
    sim.decide("c0", [sim.remote("s1", 1, "c0"), sim.remote("s0", 1, "c0"),
                      b("bob", "c0", [(2, GET, ka), (3, PUT, kb, b"b3")])])
    # Alice retries 2 and 3 inside a new bundle with 4: only 4 is executed.
    sim.decide("c0", [b("alice", "c0", [(2, PUT, kb, b"v2"), (3, GET, ka), (4, GET, kb)])])
    # A bundle of only accepted ids yields no output; a single item bundle next to it does.
    sim.decide("c0", [b("alice", "c0", [(1, PUT, ka, b"v1"), (4, GET, kb)]), b("bob", "c0", [(9, GET, ka)])])
    sim.decide("s0", [sim.remote("c0", 2, "s0"), sim.remote("c0", 4, "s0")])
    sim.decide("s1", [sim.remote("c0", 2, "s1"), sim.remote("c0", 3, "s1")])
    sim.decide("c0", [sim.remote("s0", 2, "c0"), sim.remote("s1", 2, "c0")])
    return sim


def _unknown_results(net: Network, sim: Sim) -> list[dict]:
    """c0 batches where a shard leaf holds results for requests c0 is not waiting for."""
    alice = net.clients["alice"].public
    first = sim.batches["c0"][0]
    res = {"client_key": alice, "request_id": 1, "kind": PUT, "shard_height": 9}
    outputs = [{"source_cluster": "s0", "height": 9, "destination": "c0", "seq": 1, "results": [
        res, dict(res, request_id=77, kind=GET, found=True, value=b"x"), res,
        dict(res, client_key=net.clients["bob"].public, request_id=1, kind=GET, found=True, value=b"v")]}]
    header = build_header("s0", 9, b"\x11" * 32, {"inputs": []}, outputs)
    decision = {"header": header, "outputs": outputs, "qc": net.qc(header)}
    outputs2 = [{"source_cluster": "s0", "height": 10, "destination": "c0", "seq": 2, "results": [
        dict(res, request_id=78)]}]
    header2 = build_header("s0", 10, b"\x22" * 32, {"inputs": []}, outputs2)
    decision2 = {"header": header2, "outputs": outputs2, "qc": net.qc(header2)}
    return [first, {"inputs": [{"remote": compact(decision, "c0")}]}, {"inputs": [{"remote": compact(decision2, "c0")}]}]


def generate(w: CaseWriter) -> None:
    net = exec_network()
    sim = _basic(net)
    for cluster in net.members:
        role = net.roles[cluster]
        _write(w, role, True, f"basic_{cluster}", f"two coordinators and two shards: the batches of {cluster} "
               "(PUT then GET, duplicate ids skipped, a batch with no outputs, several sources per batch)",
               net, cluster, sim.batches[cluster])
    dsim = _dedup(net)
    _write(w, "coordinator", True, "dedup_window_c0", "request ids around the W = 65536 window: stale, at the "
           "floor, already accepted, dropped from the id set, 2^64-1", net, "c0", dsim.batches["c0"])
    _write(w, "shard", True, "dedup_window_s0", "four compact decisions of c0 in one batch (seq 1..4)", net, "s0",
           dsim.batches["s0"])
    lsim = _limits(net)
    for cluster in ("c0", *net.shards):
        _write(w, net.roles[cluster], True, f"limits_{cluster}", "a full batch (max_batch_inputs = 8) with keys of "
               "max_key_bytes = 16 and values of max_value_bytes = 32, 1-byte keys, a GET of a key PUT earlier in "
               "the same batch", net, cluster, lsim.batches[cluster])
    _write(w, "coordinator", True, "unknown_results_c0", "results for requests that are not pending are skipped "
           "(unknown id, a result repeated in one leaf, a result for another client), and a decision whose only "
           "input yields no output", net, "c0", _unknown_results(net, sim))
    bsim = _bundles(net)
    for cluster in net.members:
        if bsim.batches[cluster]:
            _write(w, net.roles[cluster], True, f"bundles_{cluster}", "request bundles (SPEC 14.6): a bundle "
                   "and a request in one batch, responses of one bundle in one leaf, retried ids inside a new "
                   "bundle skipped, a bundle of only accepted ids", net, cluster, bsim.batches[cluster])
    _invalid(w, net, sim)
    _invalid_bundles(w, net, sim)


def _invalid(w: CaseWriter, net: Network, sim: Sim) -> None:
    keys = _keys(net)
    ka = keys["s0"][0]
    r = sim.req
    c0_prefix = sim.batches["c0"][:1]
    good = r("alice", "c0", 50, PUT, ka, b"ok")

    def coord(name, description, inputs, reason, prefix=c0_prefix):
        _write(w, "coordinator", False, name, description, net, "c0", prefix, {"inputs": inputs}, reason)

    bad_sig = copy.deepcopy(good)
    bad_sig["client"]["signature"] = bytes([bad_sig["client"]["signature"][0] ^ 1]) + bad_sig["client"]["signature"][1:]
    coord("empty_batch", "a batch with no inputs (SPEC 12.3: the batch is non-empty)", [], "invalid_proposal")
    coord("too_many_inputs", "9 valid requests (limits.max_batch_inputs = 8)",
          [r("alice", "c0", 100 + i, GET, ka) for i in range(9)], "invalid_proposal")
    coord("bad_client_signature", "a request whose signature has one bit flipped (after a valid one)",
          [r("bob", "c0", 50, GET, ka), bad_sig], "bad_signature")
    carol = Signer("vectors-exec/client/carol")
    unauth = {"request_id": 1, "cluster_id": "c0", "op": {"kind": GET, "key": ka}, "client_key": carol.public}
    unauth["signature"] = carol.sign("client-request", net.network_id, encode("ClientRequest", unauth))
    coord("unauthorised_client", "a correctly signed request from a key not in manifest.clients",
          [good, {"client": unauth}], "unauthorised_client")
    coord("wrong_cluster", "a request signed for coordinator c1 inside c0's batch",
          [r("alice", "c0", 51, GET, ka), r("alice", "c1", 52, GET, ka)], "wrong_cluster")
    coord("duplicate_request_id", "the same signed request twice in one batch", [good, good], "duplicate")
    coord("duplicate_request_id_other_op", "two requests of alice with request_id 50 in one batch",
          [good, r("alice", "c0", 50, GET, ka)], "duplicate")
    coord("request_id_zero", "request_id 0", [r("alice", "c0", 0, GET, ka)], "malformed")
    coord("op_unspecified", "op.kind OP_KIND_UNSPECIFIED", [r("alice", "c0", 53, 0, ka)], "malformed")
    coord("get_with_value", "a GET carrying a value", [r("alice", "c0", 54, GET, ka, b"x")], "malformed")
    coord("empty_key", "an empty key", [r("alice", "c0", 55, GET, b"")], "malformed")
    coord("key_too_long", "a 17-byte key (limits.max_key_bytes = 16)", [r("alice", "c0", 56, GET, b"k" * 17)],
          "malformed")
    coord("value_too_long", "a 33-byte value (limits.max_value_bytes = 32)",
          [r("alice", "c0", 57, PUT, ka, b"v" * 33)], "malformed")
    coord("remote_seq_gap", "s0's second leaf for c0 (seq 2) while c0 expects seq 1",
          [sim.remote("s0", 2, "c0")], "out_of_order")
    coord("remote_seq_gap_in_batch", "s0 seq 1 then seq 1 again in one batch (next_in advances inside the batch)",
          [sim.remote("s0", 1, "c0"), sim.remote("s0", 1, "c0")], "replay")
    coord("remote_replay", "s0 seq 1 again after c0 decided it", [sim.remote("s0", 1, "c0")], "replay",
          sim.batches["c0"][:2])
    bad_qc = sim.remote("s0", 1, "c0")
    bad_qc["remote"]["qc"] = {"signatures": bad_qc["remote"]["qc"]["signatures"][:2]}
    coord("remote_bad_qc", "a compact decision from s0 whose QC has two signatures", [bad_qc], "bad_qc")
    coord("remote_from_coordinator", "a compact decision of coordinator c0 given to coordinator c0",
          [sim.remote("c0", 1, "s0")], "wrong_cluster")
    coord("remote_wrong_destination", "s0's leaf for c1 inside c0's batch", [sim.remote("s0", 3, "c1")],
          "wrong_destination")

    s0_prefix = sim.batches["s0"][:1]

    def shard(name, description, inputs, reason, prefix=s0_prefix):
        _write(w, "shard", False, name, description, net, "s0", prefix, {"inputs": inputs}, reason)

    shard("client_input", "a client request in a shard's batch", [r("alice", "s0", 60, GET, ka)], "malformed")
    shard("remote_seq_gap", "c0's third leaf for s0 (seq 3) while s0 expects seq 2", [sim.remote("c0", 5, "s0")],
          "out_of_order")
    shard("remote_replay", "c0 seq 1 again", [sim.remote("c0", 1, "s0")], "replay")
    shard("remote_same_seq_twice", "c0 seq 2 twice in one batch", [sim.remote("c0", 2, "s0"),
                                                                  sim.remote("c0", 2, "s0")], "replay")
    shard("remote_wrong_destination", "c0's leaf for s1 inside s0's batch", [sim.remote("c0", 2, "s1")],
          "wrong_destination")
    shard("remote_from_shard", "a compact decision of shard s1 given to shard s0", [sim.remote("s1", 1, "c0")],
          "wrong_cluster")
    tampered = sim.remote("c0", 2, "s0")
    tampered["remote"]["leaf"]["calls"][0]["op"]["value"] = b"forged"
    shard("remote_tampered_leaf", "c0 seq 2 with the PUT value changed", [tampered], "bad_proof")
    short = sim.remote("c0", 2, "s0")
    short["remote"]["header"]["parent_hash"] = short["remote"]["header"]["parent_hash"][:31]
    short["remote"]["qc"] = net.qc(short["remote"]["header"],
                                   [s["node_id"] for s in short["remote"]["qc"]["signatures"]])
    shard("remote_header_parent_hash_short", "c0 seq 2 whose header parent_hash is cut to 31 bytes, QC re-signed "
          "by the same c0 members over that header (SPEC 10 point 5, DF-1)", [short], "malformed")


def _invalid_bundles(w: CaseWriter, net: Network, sim: Sim) -> None:
    keys = _keys(net)
    ka = keys["s0"][0]
    b, r = sim.bundle, sim.req
    prefix = sim.batches["c0"][:1]

    def coord(name, description, inputs, reason):
        _write(w, "coordinator", False, name, description, net, "c0", prefix, {"inputs": inputs}, reason)

    good = b("alice", "c0", [(60, GET, ka), (61, PUT, ka, b"x")])
    bad_sig = copy.deepcopy(good)
    sig = bad_sig["bundle"]["signature"]
    bad_sig["bundle"]["signature"] = sig[:-1] + bytes([sig[-1] ^ 0x01])
    coord("bundle_bad_signature", "a bundle whose signature has one bit flipped", [bad_sig], "bad_signature")
    req_domain = copy.deepcopy(good)
    body = encode("RequestBundle", {k: v for k, v in good["bundle"].items() if k != "signature"})
    req_domain["bundle"]["signature"] = net.clients["alice"].sign("client-request", net.network_id, body)
    coord("bundle_signed_as_request", "a bundle signed in domain client-request instead of client-bundle",
          [req_domain], "bad_signature")
    coord("bundle_wrong_cluster", "a bundle signed for coordinator c1", [b("alice", "c1", [(62, GET, ka)])],
          "wrong_cluster")
    carol = Signer("vectors-exec/client/carol")
    unauth = {"client_key": carol.public, "cluster_id": "c0", "items": [{"request_id": 1, "op": {"kind": GET, "key": ka}}]}
    unauth["signature"] = carol.sign("client-bundle", net.network_id, encode("RequestBundle", unauth))
    coord("bundle_unauthorised_client", "a correctly signed bundle of a key not in manifest.clients",
          [{"bundle": unauth}], "unauthorised_client")
    coord("bundle_no_items", "a signed bundle without items", [b("alice", "c0", [])], "malformed")
    coord("bundle_257_items", "a signed bundle of 257 GETs (at most 256)",
          [b("alice", "c0", [(1000 + i, GET, ka) for i in range(257)])], "oversized")
    coord("bundle_ids_decreasing", "bundle item ids 64 then 63",
          [b("alice", "c0", [(64, GET, ka), (63, GET, ka)])], "malformed")
    coord("bundle_ids_repeated", "bundle item id 65 twice", [b("alice", "c0", [(65, GET, ka), (65, GET, ka)])],
          "malformed")
    coord("bundle_id_zero", "a bundle item with request_id 0", [b("alice", "c0", [(0, GET, ka), (66, GET, ka)])],
          "malformed")
    coord("bundle_get_with_value", "the second item is a GET carrying a value",
          [b("alice", "c0", [(67, GET, ka), (68, GET, ka, b"v")])], "malformed")
    coord("bundle_key_too_long", "an item with a 17-byte key (limits.max_key_bytes = 16)",
          [b("alice", "c0", [(69, GET, b"k" * 17)])], "malformed")
    coord("bundle_item_and_request_same_id", "alice's request 70 and a bundle item 70 in one batch",
          [r("alice", "c0", 70, GET, ka), b("alice", "c0", [(70, GET, ka), (71, GET, ka)])], "duplicate")
    coord("bundles_sharing_an_id", "two bundles of alice both holding id 73",
          [b("alice", "c0", [(72, GET, ka), (73, GET, ka)]), b("alice", "c0", [(73, GET, ka), (74, GET, ka)])],
          "duplicate")
    _write(w, "shard", False, "bundle_input", "a request bundle in a shard's batch", net, "s0",
           sim.batches["s0"][:1], {"inputs": [b("alice", "s0", [(75, GET, ka)])]}, "malformed")
