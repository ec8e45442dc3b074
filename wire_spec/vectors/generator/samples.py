"""Sample values of every message of heraclius.proto, used by the codec vectors."""

from __future__ import annotations

import hashlib

from .codec import encode
from .keys import Signer, sign, signing_bytes

NET = "vectors-net"
U64_MAX = 2**64 - 1
U32_MAX = 2**32 - 1


def _h(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


def _signed(msg: str, value: dict, domain: str, signer: Signer, field: str = "signature") -> dict:
    value = dict(value)
    value[field] = signer.sign(domain, NET, encode(msg, value))
    return value


def build() -> dict[str, list[tuple[str, str, dict]]]:
    """message name -> [(case name, description, value)]."""
    client = Signer("codec/client-0")
    nodes = [Signer(f"codec/c0-n{i}") for i in range(4)]
    s: dict[str, list[tuple[str, str, dict]]] = {}

    get_op = {"kind": 1, "key": b"k1"}
    put_op = {"kind": 2, "key": b"key-\x00\xff", "value": b"value-1"}
    s["Operation"] = [
        ("get", "GET of key 'k1' (value absent)", get_op),
        ("put", "PUT with binary key and a value", put_op),
        ("put_empty_value", "PUT of an empty value: value field omitted", {"kind": 2, "key": b"k"}),
        ("empty", "all fields default: encodes as zero bytes", {}),
    ]
    req = _signed("ClientRequest", {"client_key": client.public, "request_id": 1_700_000_000_000_001,
                                    "cluster_id": "c0", "op": put_op}, "client-request", client)
    req_get = _signed("ClientRequest", {"client_key": client.public, "request_id": 1, "cluster_id": "c0",
                                        "op": get_op}, "client-request", client)
    s["ClientRequest"] = [
        ("put_signed", "signed PUT request", req),
        ("get_signed", "signed GET request with request_id 1", req_get),
        ("max_request_id", "request_id = 2^64-1 (10-byte varint)", dict(req_get, request_id=U64_MAX)),
        ("empty_op", "present but empty op: written as tag + length 0", {"request_id": 5, "op": {}}),
        ("empty", "all fields default", {}),
    ]
    items = [{"request_id": 1_700_000_000_000_010, "op": get_op},
             {"request_id": 1_700_000_000_000_011, "op": put_op},
             {"request_id": 1_700_000_000_000_013, "op": {"kind": 1, "key": b"k2"}}]
    s["BundleItem"] = [("get", "GET item", items[0]), ("put", "PUT item", items[1]),
                       ("empty", "all default", {})]
    bundle = _signed("RequestBundle", {"client_key": client.public, "cluster_id": "c0", "items": items},
                     "client-bundle", client)
    s["RequestBundle"] = [
        ("three_signed", "signed bundle of three requests", bundle),
        ("one_item", "signed bundle of one request",
         _signed("RequestBundle", {"client_key": client.public, "cluster_id": "c0", "items": items[:1]},
                 "client-bundle", client)),
        ("empty_item", "one present but empty item: written as tag + length 0", {"items": [{}]}),
        ("empty", "all fields default", {}),
    ]
    header = {"cluster_id": "c0", "height": 7, "parent_hash": _h("parent"), "inputs_hash": _h("inputs"),
              "outputs_root": _h("root")}
    header1 = {"cluster_id": "s0", "height": 1, "parent_hash": bytes(32), "inputs_hash": _h("in1"),
               "outputs_root": _h("")}
    s["DecisionHeader"] = [
        ("height_7", "header at height 7", header),
        ("height_1_zero_parent", "height 1 with 32 zero bytes of parent_hash (bytes are not default)", header1),
        ("utf8_cluster", "non-ASCII UTF-8 cluster id (the codec accepts any valid UTF-8)",
         dict(header, cluster_id="cl\u00e9-\u4e2d")),
        ("empty", "all fields default", {}),
    ]
    hdr_bytes = encode("DecisionHeader", header)
    sigs = [{"node_id": f"c0-n{i}", "signature": sign(nodes[i].secret, signing_bytes("decision", NET, hdr_bytes))}
            for i in range(3)]
    s["NodeSignature"] = [("signed", "decision signature of c0-n0", sigs[0]), ("empty", "all default", {})]
    qc = {"signatures": sigs}
    s["QuorumCert"] = [("three", "three signatures sorted by node id", qc),
                       ("empty", "no signatures: zero bytes", {}),
                       ("empty_element", "one empty NodeSignature element", {"signatures": [{}]})]
    call = {"client_key": client.public, "request_id": 42, "op": put_op}
    s["ShardCall"] = [("put", "PUT call", call), ("get", "GET call", dict(call, op=get_op)),
                      ("empty", "all default", {})]
    res_get = {"client_key": client.public, "request_id": 43, "kind": 1, "found": True, "value": b"v",
               "shard_height": 12}
    res_put = {"client_key": client.public, "request_id": 42, "kind": 2, "shard_height": U64_MAX}
    s["ShardResult"] = [("get_found", "GET that found a value", res_get),
                        ("put_new_key", "PUT of an absent key (found false, omitted)", res_put),
                        ("empty", "all default", {})]
    resp = {"request_id": 43, "kind": 1, "found": True, "value": b"v", "shard_id": "s0", "shard_height": 12}
    s["ClientResponse"] = [("get_found", "GET answer", resp),
                           ("get_not_found", "GET of a missing key",
                            {"request_id": 9, "kind": 1, "shard_id": "s1", "shard_height": 3}),
                           ("empty", "all default", {})]
    leaf_calls = {"source_cluster": "c0", "height": 7, "destination": "s0", "seq": 3, "calls": [call, call]}
    leaf_results = {"source_cluster": "s0", "height": 12, "destination": "c0", "seq": 1,
                    "results": [res_get, res_put]}
    leaf_resp = {"source_cluster": "c0", "height": 9, "destination": "client:" + client.public.hex(),
                 "seq": 2, "responses": [resp]}
    s["OutputLeaf"] = [("calls", "leaf to a shard", leaf_calls), ("results", "leaf to a coordinator", leaf_results),
                       ("responses", "leaf to a client", leaf_resp), ("empty", "all default", {})]
    compact = {"header": header, "leaf": leaf_calls, "leaf_index": 1, "leaf_count": 3,
               "proof": [_h("p0"), _h("p1")], "qc": qc}
    s["CompactDecision"] = [
        ("full", "leaf 1 of 3 with a two-entry proof", compact),
        ("single_leaf", "leaf 0 of 1: leaf_index omitted, empty proof",
         {"header": header1, "leaf": leaf_resp, "leaf_count": 1, "qc": qc}),
        ("empty_proof_entry", "a repeated bytes element that is empty is still written",
         dict(compact, proof=[b"", _h("p1")])),
        ("empty", "all default", {}),
    ]
    s["Input"] = [("client", "client request input", {"client": req}),
                  ("remote", "remote compact decision input", {"remote": compact}),
                  ("bundle", "request bundle input", {"bundle": bundle}),
                  ("empty_client", "oneof member set to an empty message", {"client": {}})]
    batch = {"inputs": [{"client": req}, {"remote": compact}, {"client": req_get}]}
    s["Batch"] = [("mixed", "three inputs", batch),
                  ("with_bundle", "a bundle between two client requests",
                   {"inputs": [{"client": req}, {"bundle": bundle}, {"client": req_get}]}),
                  ("empty", "no inputs", {})]
    outputs = [leaf_calls, leaf_resp]
    s["Decision"] = [("full", "decision with QC", {"header": header, "batch": batch, "outputs": outputs, "qc": qc}),
                     ("no_qc", "as served by GET /log/<h>", {"header": header, "batch": batch, "outputs": outputs}),
                     ("empty", "all default", {})]
    proposal = _signed("Proposal", {"cluster_id": "c0", "view": 4, "height": 7, "leader_id": "c0-n0",
                                    "header": header, "batch": batch}, "proposal", nodes[0])
    s["Proposal"] = [("signed", "leader-signed proposal", proposal),
                     ("view_0", "view 0 (omitted)", dict(proposal, view=0)), ("empty", "all default", {})]
    digest = hashlib.sha256(hdr_bytes).digest()
    prepares = [_signed("Prepare", {"cluster_id": "c0", "view": 4, "height": 7, "digest": digest,
                                    "node_id": f"c0-n{i}"}, "prepare", nodes[i]) for i in range(3)]
    s["Prepare"] = [("signed", "signed prepare", prepares[1]), ("empty", "all default", {})]
    commit = {"cluster_id": "c0", "view": 4, "height": 7, "digest": digest, "node_id": "c0-n2",
              "decision_signature": sigs[2]["signature"]}
    s["Commit"] = [("full", "commit with decision signature", commit), ("empty", "all default", {})]
    s["Heartbeat"] = [("full", "heartbeat", {"cluster_id": "c0", "view": 4, "height": 6, "leader_id": "c0-n0"}),
                      ("height_0", "height 0 omitted", {"cluster_id": "c0", "leader_id": "c0-n0"}),
                      ("empty", "all default", {})]
    vc = _signed("ViewChange", {"cluster_id": "c0", "new_view": 5, "node_id": "c0-n3", "height": 6},
                 "view-change", nodes[3])
    s["ViewChange"] = [("signed", "signed view change", vc), ("empty", "all default", {})]
    pc = {"proposal": proposal, "prepares": prepares}
    s["PreparedCert"] = [("full", "proposal and three prepares", pc), ("empty", "all default", {})]
    vds = [_signed("ViewData", {"cluster_id": "c0", "view": 5, "node_id": f"c0-n{i}", "last_height": 6,
                                "last_hash": _h("h6"), **({"prepared": pc} if i == 1 else {})},
                   "view-data", nodes[i]) for i in range(1, 4)]
    s["ViewData"] = [("prepared", "view data with a prepared certificate", vds[0]),
                     ("unprepared", "view data without prepared", vds[1]), ("empty", "all default", {})]
    nv = _signed("NewView", {"cluster_id": "c0", "view": 5, "leader_id": "c0-n1", "view_data": vds}, "new-view",
                 nodes[1])
    s["NewView"] = [("signed", "new view with three view data", nv), ("empty", "all default", {})]
    s["Forward"] = [("two", "two requests", {"requests": [req, req_get]}),
                    ("requests_and_bundle", "a request and a bundle", {"requests": [req], "bundles": [bundle]}),
                    ("bundle_only", "one bundle, no requests", {"bundles": [bundle]}),
                    ("empty", "no requests", {})]
    s["SyncRequest"] = [("full", "sync request", {"cluster_id": "c0", "from_height": 7, "max_count": 256}),
                        ("u32_max", "max_count = 2^32-1", {"cluster_id": "c0", "from_height": 1,
                                                            "max_count": U32_MAX}),
                        ("empty", "all default", {})]
    dec = {"header": header, "batch": batch, "outputs": outputs, "qc": qc}
    s["SyncResponse"] = [("one", "one decision", {"cluster_id": "c0", "decisions": [dec]}),
                         ("empty", "all default", {})]
    s["QueuePull"] = [("full", "queue pull", {"source_cluster": "c0", "destination": "s0", "from_seq": 3,
                                              "max_count": 256}), ("empty", "all default", {})]
    s["QueueBatch"] = [("one", "one compact decision", {"source_cluster": "c0", "destination": "s0",
                                                        "decisions": [compact]}),
                       ("no_decisions", "empty reply", {"source_cluster": "c0", "destination": "s0"}),
                       ("empty", "all default", {})]
    s["Hello"] = [("node", "node hello", {"protocol_version": 1, "network_id": NET, "node_id": "c0-n0"}),
                  ("client", "client hello: node_id empty", {"protocol_version": 1, "network_id": NET}),
                  ("empty", "all default", {})]
    members = {"proposal": proposal, "prepare": prepares[0], "commit": commit,
               "heartbeat": s["Heartbeat"][0][2], "view_change": vc, "view_data": vds[0], "new_view": nv,
               "forward": {"requests": [req]}, "sync_request": s["SyncRequest"][0][2],
               "sync_response": s["SyncResponse"][0][2], "queue_pull": s["QueuePull"][0][2],
               "queue_batch": s["QueueBatch"][0][2]}
    s["PeerMessage"] = [(name, f"body = {name}", {name: v}) for name, v in members.items()]
    s["PeerMessage"].append(("empty_heartbeat", "oneof member that is an empty message", {"heartbeat": {}}))
    err = {"code": 8, "request_id": 17, "message": "timeout after 5000 ms"}
    s["ClientError"] = [("timeout", "timeout error", err), ("empty", "all default", {})]
    s["ClientMessage"] = [("submit", "submit", {"submit": req}), ("fetch", "fetch", {"fetch": req_get}),
                          ("submit_bundle", "submit a bundle", {"submit_bundle": bundle})]
    s["ClientReply"] = [("answer", "answer", {"answer": compact}), ("error", "error", {"error": err}),
                        ("empty_error", "error member present but empty", {"error": {}})]
    return s
