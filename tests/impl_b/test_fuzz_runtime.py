"""Hypothesis fuzzing of the node runtime's own handlers (sync, queues, client port) on real storage."""

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from impl_b import codec, devnet
from impl_b.checks import sign_message
from impl_b.codec import DecodeError, decode, encode
from impl_b.crypto import Signer
from impl_b.logs import NodeLog
from impl_b.manifest import validate
from impl_b.runtime import Runtime
from impl_b.storage import Store
from tests.impl_b.iostub import LinkControlStub


class FakeIO(LinkControlStub):
    dial_nodes: list = []

    def __init__(self):
        self.sent = []

    def send_node(self, node, data):
        self.sent.append((node, data))

    def send_conn(self, link, data):
        self.sent.append((link, data))

    def connected(self, node):
        return True


DOC, SECRETS = devnet.build({"c0": "coordinator", "s0": "shard"}, ports=False)
M = validate(DOC)
CLIENT = Signer(SECRETS["alice"]["ed25519"])


def _runtime(tmp_path):
    log_path = str(tmp_path / "node.log")
    rt = Runtime(M, "c0-n1", Signer(SECRETS["c0-n1"]["ed25519"]), Store(str(tmp_path / "data")),
                 NodeLog("c0-n1", log_path, "debug"))
    rt.io = FakeIO()
    rt.restore()
    return rt, log_path


def _seeds():
    req = codec.ClientRequest(client_key=CLIENT.public, request_id=5, cluster_id="c0",
                              op=codec.Operation(kind=2, key=b"k", value=b"v"))
    sign_message(CLIENT, M.network_id, req)
    peer = [codec.PeerMessage(sync_request=codec.SyncRequest(cluster_id="c0", from_height=1, max_count=5)),
            codec.PeerMessage(queue_pull=codec.QueuePull(source_cluster="c0", destination="s0", from_seq=1,
                                                         max_count=3)),
            codec.PeerMessage(queue_batch=codec.QueueBatch(source_cluster="s0", destination="c0")),
            codec.PeerMessage(forward=codec.Forward(requests=[req]))]
    return [encode(p) for p in peer], encode(codec.ClientMessage(submit=req))


PEER_SEEDS, CLIENT_SEED = _seeds()


def test_runtime_handlers_survive_mutations(tmp_path):
    rt, log_path = _runtime(tmp_path)

    @settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 255), st.booleans(),
           st.sampled_from(["c0-n0", "c0-n2", "s0-n1"]))
    def feed(i, pos, byte, client, sender):
        data = bytearray(CLIENT_SEED if client else PEER_SEEDS[i % len(PEER_SEEDS)])
        data[pos % len(data)] = byte
        try:
            msg = decode("ClientMessage" if client else "PeerMessage", bytes(data))
        except DecodeError:
            return
        with rt.lock:
            if client:
                rt._handle(("client", 7, msg))
            else:
                rt._handle(("peer", 9, sender, msg))
            rt._tick(rt.now())

    try:
        feed()
        with open(log_path) as fh:
            events = [json.loads(line)["event"] for line in fh]
        assert "handler_error" not in events
        assert rt.replica.height == 0 and len(rt.io.sent) > 0
    finally:
        rt.store.close()
