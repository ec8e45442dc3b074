"""Table of the heraclius.proto schema (messages, fields, enums) driving the reference codec.

Kept by hand in step with wire_spec/heraclius.proto; tests/wire_spec compares it with the
descriptor that protoc produces from the .proto file.
"""

from __future__ import annotations

from typing import NamedTuple


class Field(NamedTuple):
    number: int
    name: str
    type: str  # uint32 | uint64 | bool | string | bytes | enum:<Name> | msg:<Name>
    repeated: bool = False
    oneof: str | None = None


ENUMS: dict[str, list[str]] = {
    "OpKind": ["OP_KIND_UNSPECIFIED", "OP_KIND_GET", "OP_KIND_PUT"],
    "ClientErrorCode": [
        "CLIENT_ERROR_UNSPECIFIED", "CLIENT_ERROR_MALFORMED", "CLIENT_ERROR_BAD_SIGNATURE",
        "CLIENT_ERROR_UNAUTHORISED", "CLIENT_ERROR_WRONG_CLUSTER", "CLIENT_ERROR_TOO_LARGE",
        "CLIENT_ERROR_STALE", "CLIENT_ERROR_OVERLOADED", "CLIENT_ERROR_TIMEOUT",
    ],
}

F = Field
R = True

MESSAGES: dict[str, list[Field]] = {
    "Operation": [F(1, "kind", "enum:OpKind"), F(2, "key", "bytes"), F(3, "value", "bytes")],
    "ClientRequest": [
        F(1, "client_key", "bytes"), F(2, "request_id", "uint64"), F(3, "cluster_id", "string"),
        F(4, "op", "msg:Operation"), F(5, "signature", "bytes"),
    ],
    "BundleItem": [F(1, "request_id", "uint64"), F(2, "op", "msg:Operation")],
    "RequestBundle": [
        F(1, "client_key", "bytes"), F(2, "cluster_id", "string"), F(3, "items", "msg:BundleItem", R),
        F(4, "signature", "bytes"),
    ],
    "DecisionHeader": [
        F(1, "cluster_id", "string"), F(2, "height", "uint64"), F(3, "parent_hash", "bytes"),
        F(4, "inputs_hash", "bytes"), F(5, "outputs_root", "bytes"),
    ],
    "NodeSignature": [F(1, "node_id", "string"), F(2, "signature", "bytes")],
    "QuorumCert": [F(1, "signatures", "msg:NodeSignature", R)],
    "ShardCall": [F(1, "client_key", "bytes"), F(2, "request_id", "uint64"), F(3, "op", "msg:Operation")],
    "ShardResult": [
        F(1, "client_key", "bytes"), F(2, "request_id", "uint64"), F(3, "kind", "enum:OpKind"),
        F(4, "found", "bool"), F(5, "value", "bytes"), F(6, "shard_height", "uint64"),
    ],
    "ClientResponse": [
        F(1, "request_id", "uint64"), F(2, "kind", "enum:OpKind"), F(3, "found", "bool"),
        F(4, "value", "bytes"), F(5, "shard_id", "string"), F(6, "shard_height", "uint64"),
    ],
    "OutputLeaf": [
        F(1, "source_cluster", "string"), F(2, "height", "uint64"), F(3, "destination", "string"),
        F(4, "seq", "uint64"), F(5, "calls", "msg:ShardCall", R), F(6, "results", "msg:ShardResult", R),
        F(7, "responses", "msg:ClientResponse", R),
    ],
    "CompactDecision": [
        F(1, "header", "msg:DecisionHeader"), F(2, "leaf", "msg:OutputLeaf"), F(3, "leaf_index", "uint64"),
        F(4, "leaf_count", "uint64"), F(5, "proof", "bytes", R), F(6, "qc", "msg:QuorumCert"),
    ],
    "Input": [
        F(1, "client", "msg:ClientRequest", oneof="kind"), F(2, "remote", "msg:CompactDecision", oneof="kind"),
        F(3, "bundle", "msg:RequestBundle", oneof="kind"),
    ],
    "Batch": [F(1, "inputs", "msg:Input", R)],
    "Decision": [
        F(1, "header", "msg:DecisionHeader"), F(2, "batch", "msg:Batch"), F(3, "outputs", "msg:OutputLeaf", R),
        F(4, "qc", "msg:QuorumCert"),
    ],
    "Proposal": [
        F(1, "cluster_id", "string"), F(2, "view", "uint64"), F(3, "height", "uint64"),
        F(4, "leader_id", "string"), F(5, "header", "msg:DecisionHeader"), F(6, "batch", "msg:Batch"),
        F(7, "signature", "bytes"),
    ],
    "Prepare": [
        F(1, "cluster_id", "string"), F(2, "view", "uint64"), F(3, "height", "uint64"), F(4, "digest", "bytes"),
        F(5, "node_id", "string"), F(6, "signature", "bytes"),
    ],
    "Commit": [
        F(1, "cluster_id", "string"), F(2, "view", "uint64"), F(3, "height", "uint64"), F(4, "digest", "bytes"),
        F(5, "node_id", "string"), F(6, "decision_signature", "bytes"),
    ],
    "Heartbeat": [
        F(1, "cluster_id", "string"), F(2, "view", "uint64"), F(3, "height", "uint64"), F(4, "leader_id", "string"),
    ],
    "ViewChange": [
        F(1, "cluster_id", "string"), F(2, "new_view", "uint64"), F(3, "node_id", "string"),
        F(4, "height", "uint64"), F(5, "signature", "bytes"),
    ],
    "PreparedCert": [F(1, "proposal", "msg:Proposal"), F(2, "prepares", "msg:Prepare", R)],
    "ViewData": [
        F(1, "cluster_id", "string"), F(2, "view", "uint64"), F(3, "node_id", "string"),
        F(4, "last_height", "uint64"), F(5, "last_hash", "bytes"), F(6, "prepared", "msg:PreparedCert"),
        F(7, "signature", "bytes"),
    ],
    "NewView": [
        F(1, "cluster_id", "string"), F(2, "view", "uint64"), F(3, "leader_id", "string"),
        F(4, "view_data", "msg:ViewData", R), F(5, "signature", "bytes"),
    ],
    "Forward": [F(1, "requests", "msg:ClientRequest", R), F(2, "bundles", "msg:RequestBundle", R)],
    "SyncRequest": [F(1, "cluster_id", "string"), F(2, "from_height", "uint64"), F(3, "max_count", "uint32")],
    "SyncResponse": [F(1, "cluster_id", "string"), F(2, "decisions", "msg:Decision", R)],
    "QueuePull": [
        F(1, "source_cluster", "string"), F(2, "destination", "string"), F(3, "from_seq", "uint64"),
        F(4, "max_count", "uint32"),
    ],
    "QueueBatch": [
        F(1, "source_cluster", "string"), F(2, "destination", "string"),
        F(3, "decisions", "msg:CompactDecision", R),
    ],
    "Hello": [F(1, "protocol_version", "uint32"), F(2, "network_id", "string"), F(3, "node_id", "string")],
    "PeerMessage": [
        F(n, name, "msg:" + typ, oneof="body")
        for n, name, typ in [
            (1, "proposal", "Proposal"), (2, "prepare", "Prepare"), (3, "commit", "Commit"),
            (4, "heartbeat", "Heartbeat"), (5, "view_change", "ViewChange"), (6, "view_data", "ViewData"),
            (7, "new_view", "NewView"), (8, "forward", "Forward"), (9, "sync_request", "SyncRequest"),
            (10, "sync_response", "SyncResponse"), (11, "queue_pull", "QueuePull"),
            (12, "queue_batch", "QueueBatch"),
        ]
    ],
    "ClientError": [
        F(1, "code", "enum:ClientErrorCode"), F(2, "request_id", "uint64"), F(3, "message", "string"),
    ],
    "ClientMessage": [
        F(1, "submit", "msg:ClientRequest", oneof="body"), F(2, "fetch", "msg:ClientRequest", oneof="body"),
        F(3, "submit_bundle", "msg:RequestBundle", oneof="body"),
    ],
    "ClientReply": [
        F(1, "answer", "msg:CompactDecision", oneof="body"), F(2, "error", "msg:ClientError", oneof="body"),
    ],
}

# Messages whose oneof must have exactly one member set (SPEC 5 rule 9).
REQUIRED_ONEOFS: dict[str, str] = {"Input": "kind", "PeerMessage": "body", "ClientMessage": "body",
                                   "ClientReply": "body"}


def field_by_number(message: str, number: int) -> Field | None:
    for f in MESSAGES[message]:
        if f.number == number:
            return f
    return None


def wire_type(f: Field) -> int:
    return 0 if f.type in ("uint32", "uint64", "bool") or f.type.startswith("enum:") else 2
