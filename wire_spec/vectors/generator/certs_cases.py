"""qc/verify (SPEC 9) and compact/verify (SPEC 10) vectors."""

from __future__ import annotations

import copy
import hashlib

from .codec import encode
from .merkle import inclusion_proof, mth
from .network import Network, build_header, client_destination, compact
from .verify import Rejected, verify_compact, verify_qc
from .writer import CaseWriter


def _net() -> Network:
    return Network("vectors-certs", [("c0", "coordinator", 4), ("c1", "coordinator", 4), ("s0", "shard", 4),
                                     ("s1", "shard", 7)], ["alice", "bob"])


def _verdict(fn, *args) -> tuple[bool, str | None]:
    try:
        fn(*args)
    except Rejected as exc:
        return False, exc.reason
    return True, None


def _header(cluster: str, height: int) -> dict:
    return {"cluster_id": cluster, "height": height, "parent_hash": hashlib.sha256(b"p%d" % height).digest(),
            "inputs_hash": hashlib.sha256(b"i%d" % height).digest(), "outputs_root": mth([b"x"])}


def generate_qc(w: CaseWriter) -> None:
    net = _net()
    h7 = _header("c0", 7)

    def case(name: str, description: str, header: dict, qc: dict, expect: str | None, manifest=None) -> None:
        ok, reason = _verdict(verify_qc, manifest or net.manifest, header, qc)
        if reason != expect:
            raise AssertionError(f"qc case {name}: got {reason}, expected {expect}")
        meta = {"description": description, "verdict": "accept" if ok else "reject"}
        if reason:
            meta["reason"] = reason
        w.case("qc", "verify", ok, name, meta, {"manifest.json": manifest or net.manifest,
                                                "header.bin": encode("DecisionHeader", header),
                                                "qc.bin": encode("QuorumCert", qc)})

    m = net.members
    case("quorum", "exactly q = 3 signatures of a 4-node cluster (first three members)", h7, net.qc(h7), None)
    case("all_members", "n = 4 signatures", h7, net.qc(h7, m["c0"]), None)
    case("last_three", "members 1, 2, 3", h7, net.qc(h7, m["c0"][1:]), None)
    h2 = _header("s1", 2)
    case("seven_node_quorum", "q = 5 of a 7-node cluster", h2, net.qc(h2, m["s1"][2:]), None)
    case("seven_node_all", "all 7 of a 7-node cluster", h2, net.qc(h2, m["s1"]), None)
    case("too_few", "2 signatures, q = 3", h7, net.qc(h7, m["c0"][:2]), "bad_qc")
    case("seven_node_too_few", "4 signatures of a 7-node cluster, q = 5", h2, net.qc(h2, m["s1"][:4]), "bad_qc")
    case("empty", "no signatures", h7, {}, "bad_qc")
    good = net.qc(h7, m["c0"])["signatures"]
    case("duplicate_signer", "c0-n0 twice plus c0-n1 (3 entries, 2 distinct signers)", h7,
         {"signatures": [good[0], good[0], good[1]]}, "bad_qc")
    case("unsorted", "three valid signatures, not sorted by node id", h7,
         {"signatures": [good[1], good[0], good[2]]}, "bad_qc")
    foreign = net.qc(h7, ["s0-n0"])["signatures"][0]  # s0-n0 signing c0's header
    case("non_member", "three valid c0 signatures plus one by s0-n0 (a node of another cluster)", h7,
         {"signatures": good[:3] + [foreign]}, "bad_qc")
    case("unknown_node", "three valid signatures plus one by 'c0-n9', unknown", h7,
         {"signatures": good[:3] + [{"node_id": "c0-n9", "signature": good[3]["signature"]}]}, "bad_qc")
    bad = dict(good[3], signature=bytes([good[3]["signature"][0] ^ 1]) + good[3]["signature"][1:])
    case("bad_signature_among_enough", "four signatures, the last one invalid: three good ones remain", h7,
         {"signatures": good[:3] + [bad]}, "bad_qc")
    case("short_signature", "a 63-byte signature", h7,
         {"signatures": good[:2] + [dict(good[2], signature=good[2]["signature"][:63])]}, "bad_qc")
    case("wrong_cluster", "header of cluster 'c9', not in the manifest", _header("c9", 7),
         net.qc(h7), "wrong_cluster")
    h8 = _header("c0", 8)
    case("wrong_height", "signatures over the header at height 8 given for height 7", h7, net.qc(h8), "bad_qc")
    case("other_cluster_header", "valid QC of c1 given for c0's identical header", h7,
         {"signatures": net.qc(dict(h7, cluster_id="c1"))["signatures"]}, "bad_qc")
    case("wrong_network", "signatures made with network id 'vectors-other'", h7,
         net.qc(h7, network_id="vectors-other"), "bad_qc")
    prop_sigs = [{"node_id": n, "signature": net.signers[n].sign("proposal", net.network_id,
                                                                  encode("DecisionHeader", h7))} for n in m["c0"][:3]]
    case("wrong_domain", "signatures over the header in domain 'proposal'", h7, {"signatures": prop_sigs}, "bad_qc")


def _decision(net: Network, cluster: str, height: int, outputs: list[dict]) -> dict:
    batch: dict = {}
    header = build_header(cluster, height, hashlib.sha256(b"parent %d" % height).digest(), batch, outputs)
    header["inputs_hash"] = hashlib.sha256(b"batch %s %d" % (cluster.encode(), height)).digest()
    return {"header": header, "batch": batch, "outputs": outputs, "qc": net.qc(header)}


def generate_compact(w: CaseWriter) -> None:
    net = _net()
    alice = net.clients["alice"].public
    call = {"client_key": alice, "request_id": 11, "op": {"kind": 2, "key": b"k", "value": b"v"}}
    result = {"client_key": alice, "request_id": 11, "kind": 2, "shard_height": 4}
    response = {"request_id": 11, "kind": 2, "shard_id": "s0", "shard_height": 4}
    alice_dest = client_destination(alice)
    d_c0 = _decision(net, "c0", 3, sorted([
        {"source_cluster": "c0", "height": 3, "destination": "s0", "seq": 2, "calls": [call]},
        {"source_cluster": "c0", "height": 3, "destination": "s1", "seq": 1, "calls": [call, dict(call, request_id=12)]},
        {"source_cluster": "c0", "height": 3, "destination": alice_dest, "seq": 5, "responses": [response]},
    ], key=lambda o: o["destination"].encode()))
    d_s0 = _decision(net, "s0", 4, [{"source_cluster": "s0", "height": 4, "destination": "c0", "seq": 1,
                                     "results": [result]}])
    d_bad = _decision(net, "c0", 5, [
        {"source_cluster": "c0", "height": 5, "destination": "s0", "seq": 3, "results": [result]},
        {"source_cluster": "c1", "height": 5, "destination": "s1", "seq": 2, "calls": [call]},
        {"source_cluster": "c0", "height": 4, "destination": "s1", "seq": 2, "calls": [call]},
    ])
    d_bad["outputs"].sort(key=lambda o: (o["destination"].encode(), o["source_cluster"]))
    # the two s1 leaves share a destination: this decision is only a source of broken leaves
    d_bad["header"] = build_header("c0", 5, bytes(32), {}, d_bad["outputs"])
    d_bad["qc"] = net.qc(d_bad["header"])
    d_mixed = _decision(net, "c0", 6, [{"source_cluster": "c0", "height": 6, "destination": "s0", "seq": 3,
                                        "calls": [call], "results": [result]}])
    d_empty = _decision(net, "c0", 7, [{"source_cluster": "c0", "height": 7, "destination": "s0", "seq": 3}])

    def case(name: str, description: str, cd: dict, source: str, dest: str, next_seq: int, expect: str | None):
        ok, reason = _verdict(verify_compact, net.manifest, cd, source, dest, next_seq)
        if reason != expect:
            raise AssertionError(f"compact case {name}: got {reason}, expected {expect}")
        meta = {"description": description, "verdict": "accept" if ok else "reject"}
        if reason:
            meta["reason"] = reason
        w.case("compact", "verify", ok, name, meta, {
            "manifest.json": net.manifest, "compact.bin": encode("CompactDecision", cd),
            "context.json": {"source": source, "destination": dest, "next_seq": next_seq}})

    to_s0 = compact(d_c0, "s0")
    case("to_shard", "c0 leaf with calls for s0, seq 2 expected", to_s0, "c0", "s0", 2, None)
    case("to_shard_three_leaves", "c0 leaf for s1 (index 2 of 3)", compact(d_c0, "s1"), "c0", "s1", 1, None)
    case("to_client", "c0 leaf with a response for a client", compact(d_c0, alice_dest), "c0", alice_dest, 5, None)
    case("to_coordinator", "s0 leaf with results for c0 (single leaf, empty proof)", compact(d_s0, "c0"),
         "s0", "c0", 1, None)
    full_qc = copy.deepcopy(to_s0)
    full_qc["qc"] = net.qc(d_c0["header"], net.members["c0"])
    case("four_signatures", "QC with all four members", full_qc, "c0", "s0", 2, None)

    def mutated(fn) -> dict:
        cd = copy.deepcopy(to_s0)
        fn(cd)
        return cd

    case("bad_proof", "bit 0 of the first proof entry flipped",
         mutated(lambda c: c["proof"].__setitem__(0, bytes([c["proof"][0][0] ^ 1]) + c["proof"][0][1:])),
         "c0", "s0", 2, "bad_proof")
    case("proof_too_short", "last proof entry removed", mutated(lambda c: c["proof"].pop()), "c0", "s0", 2,
         "bad_proof")
    case("tampered_leaf_payload", "value of the call in the leaf changed",
         mutated(lambda c: c["leaf"]["calls"][0]["op"].__setitem__("value", b"w")), "c0", "s0", 2, "bad_proof")
    case("tampered_leaf_seq", "leaf seq changed from 2 to 3 (receiver expects 3)",
         mutated(lambda c: c["leaf"].__setitem__("seq", 3)), "c0", "s0", 3, "bad_proof")
    case("leaf_moved", "leaf for s1 relabelled as s0", mutated(lambda c: c.__setitem__("leaf", dict(
        compact(d_c0, "s1")["leaf"], destination="s0"))), "c0", "s0", 1, "bad_proof")
    case("wrong_leaf_index", "leaf_index changed from 1 to 0",
         mutated(lambda c: c.__setitem__("leaf_index", 0)), "c0", "s0", 2, "bad_proof")
    case("leaf_index_equals_count", "leaf_index = leaf_count",
         mutated(lambda c: c.__setitem__("leaf_index", 3)), "c0", "s0", 2, "bad_proof")
    case("leaf_count_zero", "leaf_count absent (0)", mutated(lambda c: c.pop("leaf_count")), "c0", "s0", 2,
         "bad_proof")
    case("tampered_header", "header height changed: the QC no longer matches",
         mutated(lambda c: c["header"].__setitem__("height", 4)), "c0", "s0", 2, "bad_qc")
    case("tampered_header_root", "header outputs_root changed: the QC no longer matches",
         mutated(lambda c: c["header"].__setitem__("outputs_root", bytes(32))), "c0", "s0", 2, "bad_qc")
    case("qc_too_few", "QC with two signatures", mutated(lambda c: c["qc"]["signatures"].pop()), "c0", "s0", 2,
         "bad_qc")
    case("qc_wrong_network", "QC signed for network 'vectors-other'",
         mutated(lambda c: c.__setitem__("qc", net.qc(c["header"], network_id="vectors-other"))), "c0", "s0", 2,
         "bad_qc")
    case("wrong_destination", "valid leaf for s1 received by s0", compact(d_c0, "s1"), "c0", "s0", 1,
         "wrong_destination")
    case("client_leaf_to_shard", "valid client leaf received by s0", compact(d_c0, alice_dest), "c0", "s0", 5,
         "wrong_destination")
    case("wrong_source", "c0 decision where the receiver expects source c1", to_s0, "c1", "s0", 2, "wrong_cluster")
    case("unknown_source", "header and expected source 'c9', not in the manifest",
         mutated(lambda c: c["header"].__setitem__("cluster_id", "c9")), "c9", "s0", 2, "wrong_cluster")
    case("leaf_source_mismatch", "leaf says source_cluster c1 inside a c0 decision",
         _pick(d_bad, "s1", "c1"), "c0", "s1", 2, "wrong_destination")
    case("leaf_height_mismatch", "leaf height 4 inside the decision at height 5", _pick(d_bad, "s1", "c0"),
         "c0", "s1", 2, "wrong_destination")
    case("wrong_entry_kind", "leaf for shard s0 carries results instead of calls", _pick(d_bad, "s0", "c0"),
         "c0", "s0", 3, "malformed")
    case("mixed_entry_kinds", "leaf for shard s0 carries calls and results", compact(d_mixed, "s0"), "c0", "s0", 3,
         "malformed")
    case("no_entries", "leaf for shard s0 with no entries", compact(d_empty, "s0"), "c0", "s0", 3, "malformed")
    # DF-1 (SPEC 10 point 5): a header hash field of the wrong length, QC re-signed over the changed header
    # by the same members; the leaf and proof are untouched, so points 1 to 4 pass and only the length fails.
    def resigned(cd: dict, field: str, value: bytes | None) -> dict:
        cd = copy.deepcopy(cd)
        if value is None:
            cd["header"].pop(field)
        else:
            cd["header"][field] = value
        cd["qc"] = net.qc(cd["header"], [s["node_id"] for s in cd["qc"]["signatures"]])
        return cd

    case("header_inputs_hash_33_bytes", "header inputs_hash is 33 zero bytes; QC re-signed over that header",
         resigned(compact(d_c0, alice_dest), "inputs_hash", bytes(33)), "c0", alice_dest, 5, "malformed")
    case("header_inputs_hash_absent", "header inputs_hash absent (0 bytes); QC re-signed over that header",
         resigned(to_s0, "inputs_hash", None), "c0", "s0", 2, "malformed")
    case("header_parent_hash_31_bytes", "header parent_hash cut to its first 31 bytes; QC re-signed over that "
         "header", resigned(compact(d_s0, "c0"), "parent_hash", d_s0["header"]["parent_hash"][:31]), "s0", "c0", 1,
         "malformed")
    case("seq_gap", "leaf seq 2 while seq 1 is expected", to_s0, "c0", "s0", 1, "out_of_order")
    case("replay", "leaf seq 2 while seq 3 is expected", to_s0, "c0", "s0", 3, "replay")


def _pick(decision: dict, destination: str, source: str) -> dict:
    """Compact decision of the leaf with this destination and source (for deliberately broken decisions)."""
    leaves = [encode("OutputLeaf", o) for o in decision["outputs"]]
    index = next(i for i, o in enumerate(decision["outputs"])
                 if o["destination"] == destination and o["source_cluster"] == source)
    return {"header": decision["header"], "leaf": decision["outputs"][index], "leaf_index": index,
            "leaf_count": len(leaves), "proof": inclusion_proof(index, leaves), "qc": decision["qc"]}
