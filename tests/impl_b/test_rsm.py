"""SPEC 11 dedup window: the executor agrees with a literal reading of the spec on random id streams."""

from hypothesis import given, settings
from hypothesis import strategies as st

from impl_b import codec, devnet
from impl_b.manifest import validate
from impl_b.rsm import WINDOW, State, execute

_M = validate(devnet.build({"c0": "coordinator", "s0": "shard"}, ports=False)[0])
KEY = b"\x07" * 32


def _literal(batches):
    """SPEC 11 text, executed request by request."""
    max_id, ids, accepted = 0, set(), []
    for batch in batches:
        for rid in batch:
            floor = max_id - WINDOW if max_id > WINDOW else 0
            if rid <= floor or rid in ids:
                continue
            ids.add(rid)
            max_id = max(max_id, rid)
            floor = max_id - WINDOW if max_id > WINDOW else 0
            ids = {i for i in ids if i > floor}
            accepted.append(rid)
    return accepted, max_id, ids


ids_strategy = st.lists(st.lists(st.one_of(st.integers(1, 200), st.integers(60000, 70000),
                                           st.integers(130000, 140000)), max_size=8), max_size=8)


@settings(max_examples=150, deadline=None, database=None)
@given(ids_strategy)
def test_dedup_matches_the_spec_text(batches):
    st_ = State("c0", "coordinator")
    accepted = []
    for h, batch in enumerate(batches, start=1):
        uniq = list(dict.fromkeys(batch))  # a batch never holds one id twice
        reqs = [codec.Input(client=codec.ClientRequest(client_key=KEY, request_id=r, cluster_id="c0",
                                                       op=codec.Operation(kind=1, key=b"k"))) for r in uniq]
        ex = execute(st_, _M, codec.Batch(inputs=reqs), h, b"\x00" * 32)
        for leaf in ex.outputs:
            accepted += [c.request_id for c in leaf.calls]
        ex.apply()
    want, max_id, ids = _literal([list(dict.fromkeys(b)) for b in batches])
    assert accepted == want
    d = st_.dedup.get(KEY)
    assert (d.max_id, d.ids) == (max_id, ids) if d else not want
