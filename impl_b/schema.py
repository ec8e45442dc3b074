"""Schema table of heraclius.proto (wire_spec) for impl_b's own canonical codec.

Each message is a list of (field number, name, type, repeated). A type is one of the scalar names
`u32`, `u64`, `bool`, `string`, `bytes`, an enum name from ENUMS, or a message name from MESSAGES.
ONEOFS lists the messages whose fields form one mandatory `oneof`.
"""

ENUMS = {
    "OpKind": {0, 1, 2},
    "ClientErrorCode": set(range(9)),
}

OP_GET = 1
OP_PUT = 2

MESSAGES: dict[str, list[tuple[int, str, str, bool]]] = {
    "Operation": [(1, "kind", "OpKind", False), (2, "key", "bytes", False), (3, "value", "bytes", False)],
    "ClientRequest": [
        (1, "client_key", "bytes", False), (2, "request_id", "u64", False),
        (3, "cluster_id", "string", False), (4, "op", "Operation", False), (5, "signature", "bytes", False),
    ],
    "BundleItem": [(1, "request_id", "u64", False), (2, "op", "Operation", False)],
    "RequestBundle": [
        (1, "client_key", "bytes", False), (2, "cluster_id", "string", False), (3, "items", "BundleItem", True),
        (4, "signature", "bytes", False),
    ],
    "DecisionHeader": [
        (1, "cluster_id", "string", False), (2, "height", "u64", False), (3, "parent_hash", "bytes", False),
        (4, "inputs_hash", "bytes", False), (5, "outputs_root", "bytes", False),
    ],
    "NodeSignature": [(1, "node_id", "string", False), (2, "signature", "bytes", False)],
    "QuorumCert": [(1, "signatures", "NodeSignature", True)],
    "ShardCall": [(1, "client_key", "bytes", False), (2, "request_id", "u64", False), (3, "op", "Operation", False)],
    "ShardResult": [
        (1, "client_key", "bytes", False), (2, "request_id", "u64", False), (3, "kind", "OpKind", False),
        (4, "found", "bool", False), (5, "value", "bytes", False), (6, "shard_height", "u64", False),
    ],
    "ClientResponse": [
        (1, "request_id", "u64", False), (2, "kind", "OpKind", False), (3, "found", "bool", False),
        (4, "value", "bytes", False), (5, "shard_id", "string", False), (6, "shard_height", "u64", False),
    ],
    "OutputLeaf": [
        (1, "source_cluster", "string", False), (2, "height", "u64", False), (3, "destination", "string", False),
        (4, "seq", "u64", False), (5, "calls", "ShardCall", True), (6, "results", "ShardResult", True),
        (7, "responses", "ClientResponse", True),
    ],
    "CompactDecision": [
        (1, "header", "DecisionHeader", False), (2, "leaf", "OutputLeaf", False), (3, "leaf_index", "u64", False),
        (4, "leaf_count", "u64", False), (5, "proof", "bytes", True), (6, "qc", "QuorumCert", False),
    ],
    "Input": [
        (1, "client", "ClientRequest", False), (2, "remote", "CompactDecision", False),
        (3, "bundle", "RequestBundle", False),
    ],
    "Batch": [(1, "inputs", "Input", True)],
    "Decision": [
        (1, "header", "DecisionHeader", False), (2, "batch", "Batch", False),
        (3, "outputs", "OutputLeaf", True), (4, "qc", "QuorumCert", False),
    ],
    "Proposal": [
        (1, "cluster_id", "string", False), (2, "view", "u64", False), (3, "height", "u64", False),
        (4, "leader_id", "string", False), (5, "header", "DecisionHeader", False), (6, "batch", "Batch", False),
        (7, "signature", "bytes", False),
    ],
    "Prepare": [
        (1, "cluster_id", "string", False), (2, "view", "u64", False), (3, "height", "u64", False),
        (4, "digest", "bytes", False), (5, "node_id", "string", False), (6, "signature", "bytes", False),
    ],
    "Commit": [
        (1, "cluster_id", "string", False), (2, "view", "u64", False), (3, "height", "u64", False),
        (4, "digest", "bytes", False), (5, "node_id", "string", False), (6, "decision_signature", "bytes", False),
    ],
    "Heartbeat": [
        (1, "cluster_id", "string", False), (2, "view", "u64", False), (3, "height", "u64", False),
        (4, "leader_id", "string", False),
    ],
    "ViewChange": [
        (1, "cluster_id", "string", False), (2, "new_view", "u64", False), (3, "node_id", "string", False),
        (4, "height", "u64", False), (5, "signature", "bytes", False),
    ],
    "PreparedCert": [(1, "proposal", "Proposal", False), (2, "prepares", "Prepare", True)],
    "ViewData": [
        (1, "cluster_id", "string", False), (2, "view", "u64", False), (3, "node_id", "string", False),
        (4, "last_height", "u64", False), (5, "last_hash", "bytes", False), (6, "prepared", "PreparedCert", False),
        (7, "signature", "bytes", False),
    ],
    "NewView": [
        (1, "cluster_id", "string", False), (2, "view", "u64", False), (3, "leader_id", "string", False),
        (4, "view_data", "ViewData", True), (5, "signature", "bytes", False),
    ],
    "Forward": [(1, "requests", "ClientRequest", True), (2, "bundles", "RequestBundle", True)],
    "SyncRequest": [(1, "cluster_id", "string", False), (2, "from_height", "u64", False), (3, "max_count", "u32", False)],
    "SyncResponse": [(1, "cluster_id", "string", False), (2, "decisions", "Decision", True)],
    "QueuePull": [
        (1, "source_cluster", "string", False), (2, "destination", "string", False), (3, "from_seq", "u64", False),
        (4, "max_count", "u32", False),
    ],
    "QueueBatch": [
        (1, "source_cluster", "string", False), (2, "destination", "string", False),
        (3, "decisions", "CompactDecision", True),
    ],
    "Hello": [(1, "protocol_version", "u32", False), (2, "network_id", "string", False), (3, "node_id", "string", False)],
    "PeerMessage": [
        (1, "proposal", "Proposal", False), (2, "prepare", "Prepare", False), (3, "commit", "Commit", False),
        (4, "heartbeat", "Heartbeat", False), (5, "view_change", "ViewChange", False), (6, "view_data", "ViewData", False),
        (7, "new_view", "NewView", False), (8, "forward", "Forward", False), (9, "sync_request", "SyncRequest", False),
        (10, "sync_response", "SyncResponse", False), (11, "queue_pull", "QueuePull", False),
        (12, "queue_batch", "QueueBatch", False),
    ],
    "ClientError": [(1, "code", "ClientErrorCode", False), (2, "request_id", "u64", False), (3, "message", "string", False)],
    "ClientMessage": [
        (1, "submit", "ClientRequest", False), (2, "fetch", "ClientRequest", False),
        (3, "submit_bundle", "RequestBundle", False),
    ],
    "ClientReply": [(1, "answer", "CompactDecision", False), (2, "error", "ClientError", False)],
}

ONEOFS = {"Input", "PeerMessage", "ClientMessage", "ClientReply"}
