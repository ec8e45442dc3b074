"""LMDB storage: durable records, torn last record dropped, corruption before the last is fatal."""

import pytest

from impl_b import codec
from impl_b.storage import StorageError, Store, _hkey


def _decision(h: int):
    hdr = codec.DecisionHeader(cluster_id="c0", height=h, parent_hash=b"\x00" * 32, inputs_hash=b"\x01" * 32,
                               outputs_root=b"\x02" * 32)
    return codec.Decision(header=hdr, batch=codec.Batch())


def _corrupt(store: Store, h: int) -> None:
    with store.env.begin(write=True) as txn:
        raw = bytearray(txn.get(_hkey(h), db=store.log))
        raw[-1] ^= 0xFF
        txn.put(_hkey(h), bytes(raw), db=store.log)


def test_round_trip_view_inflight_and_lock(tmp_path):
    s = Store(str(tmp_path / "d"))
    for h in (1, 2, 3):
        s.persist({"decision": _decision(h)})
    s.persist({"view": (2, True)})
    s.persist({"inflight": {"height": 4, "votes": {2: b"\x05" * 32}, "accepted": None, "prepared": None,
                            "commit": (b"\x05" * 32, b"\x06" * 64, 2)}})
    with pytest.raises(StorageError):
        Store(str(tmp_path / "d"))  # locked by the open store
    s.close()
    s = Store(str(tmp_path / "d"))
    view, active, decs, inflight, nv = s.load()
    assert (view, active, [d.header.height for d in decs], nv) == (2, True, [1, 2, 3], None)
    assert inflight["votes"] == {2: b"\x05" * 32} and inflight["commit"][2] == 2
    s.close()


def test_torn_last_record_is_dropped_earlier_corruption_is_fatal(tmp_path):
    s = Store(str(tmp_path / "d"))
    for h in (1, 2, 3):
        s.persist({"decision": _decision(h)})
    _corrupt(s, 3)
    assert [d.header.height for d in s.load()[2]] == [1, 2]
    assert s.decision(3) is None  # the torn record is gone; the node catches up from peers
    s.persist({"decision": _decision(3)})
    _corrupt(s, 2)
    with pytest.raises(StorageError):
        s.load()
    s.close()
