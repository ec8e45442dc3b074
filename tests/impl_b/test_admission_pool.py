"""SPEC 12.5 pool rules on a bare Replica: client share, censorship timer on the oldest items only,
client keys interleaved in a batch, and result bytes per shard within one remote input's room."""

from impl_b import codec, devnet
from impl_b.checks import sign_message
from impl_b.consensus import Replica
from impl_b.crypto import Signer
from impl_b.manifest import validate
from impl_b.pool import result_budget
from impl_b.schema import OP_GET, OP_PUT

DOC, SECRETS = devnet.build({"c0": "coordinator", "s0": "shard"}, clients=("alice", "bob"), ports=False)
M = validate(DOC)
ALICE = Signer(SECRETS["alice"]["ed25519"])
BOB = Signer(SECRETS["bob"]["ed25519"])


def _req(signer, rid, kind=OP_PUT, key=b"k", value=b"v"):
    r = codec.ClientRequest(client_key=signer.public, cluster_id="c0", request_id=rid,
                            op=codec.Operation(kind=kind, key=key, value=value if kind == OP_PUT else b""))
    sign_message(signer, M.network_id, r)
    return r


def _leader():
    r = Replica(M, "c0-n0", Signer(SECRETS["c0-n0"]["ed25519"]))
    assert r.is_leader()
    return r


def test_share_counts_items_admitted_from_the_client_port():
    r = _leader()
    share = r.client_share
    assert share == min(M.limits["max_batch_inputs"], M.limits["max_pending_requests"] // 2)
    r.local_items[ALICE.public] = share - 1
    assert r.admits(ALICE.public) and not r.admits(ALICE.public, 2) and r.admits(BOB.public, 2)


def test_batches_interleave_client_keys():
    r = _leader()
    for i in range(1, 11):
        r._add_request(_req(ALICE, i, key=b"a%d" % i), 0, None)
    for i in range(1, 4):
        r._add_request(_req(BOB, i, key=b"b%d" % i), 0, None)
    batch = r._collect_batch()
    keys = [inp.client.client_key for inp in batch.inputs]
    assert keys[:6] == [ALICE.public, BOB.public] * 3 and len(keys) == 13


def test_censorship_timer_only_for_the_oldest_max_batch_inputs_items():
    r = _leader()
    r.lim = dict(r.lim, max_batch_inputs=2)
    for i in range(1, 6):
        r._add_request(_req(ALICE, i, key=b"c%d" % i), 0, None)
    r._scan_requests(0)
    ents = list(r.requests.values())
    assert [e[4] for e in ents] == [0, 0, None, None, None]


def test_get_results_per_shard_stay_within_one_remote_input():
    r = _leader()
    for i in range(1, 301):
        r._add_request(_req(ALICE, i, kind=OP_GET, key=b"g%d" % i), 0, None)
    assert len(r._collect_batch().inputs) == 300  # no big value decided yet: GET results are small
    r.largest_value = M.limits["max_value_bytes"]
    n = len(r._collect_batch().inputs)
    assert n == result_budget(M.limits) // (96 + M.limits["max_value_bytes"])
