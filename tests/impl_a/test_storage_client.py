"""Storage durability rules (torn last record, corrupted earlier record, lock) and client failure paths."""

import asyncio
import json
import random
import sqlite3

import pytest

from impl_a.client import Client, NoValidAnswer
from impl_a.devnet import make_network, read_key
from impl_a.errors import LocalError
from impl_a.manifest import validate
from impl_a.storage import Storage

from .procnet import ProcNet


def _fill(path, n):
    s = Storage(path)
    s.write([(h, b"decision-%d" % h) for h in range(1, n + 1)], [("view", b"3")])
    s.close()


def _corrupt(path, height):
    db = sqlite3.connect(path / "node.sqlite")
    db.execute("UPDATE decisions SET data = ? WHERE height = ?", (b"garbage", height))
    db.commit()
    db.close()


def test_torn_last_record_is_dropped(tmp_path):
    _fill(tmp_path, 3)
    _corrupt(tmp_path, 3)
    s = Storage(tmp_path)
    assert s.height() == 2 and s.decision(2) == b"decision-2" and s.meta("view") == b"3"
    s.close()


def test_corrupted_earlier_record_is_fatal(tmp_path):
    _fill(tmp_path, 3)
    _corrupt(tmp_path, 2)
    with pytest.raises(LocalError) as exc:
        Storage(tmp_path)
    assert exc.value.exit_code == 4


def test_data_directory_lock(tmp_path):
    s = Storage(tmp_path)
    with pytest.raises(LocalError) as exc:
        Storage(tmp_path)
    assert exc.value.exit_code == 4
    s.close()
    Storage(tmp_path).close()


def test_client_raises_clear_error_when_cluster_is_down(tmp_path):
    doc = make_network(tmp_path, [("c0", "coordinator"), ("s0", "shard")])
    m = validate(doc)

    async def run():
        async with Client(m, read_key(tmp_path / "clients" / "client0.key"), timeout_ms=3000) as c:
            with pytest.raises(NoValidAnswer) as exc:
                await c.get(b"k")
            return exc.value

    err = asyncio.run(run())
    assert err.cluster == "c0" and len(err.failures) == 4 and "c0" in str(err)
    with pytest.raises(LocalError):
        Client(m, b"\x01" * 32)  # not an authorised client key


def test_client_rejects_false_answers_and_writes_history(tmp_path):
    net = ProcNet(tmp_path, [("c0", "coordinator"), ("s0", "shard")], testbed=True,
                  faults={"c0-n1": [{"action": "false_client_response"}]})
    try:
        net.start_all()
        assert net.op("put", "h", "truth")["found"] is False
        seed = next(s for s in range(100) if random.Random(s).randrange(4) == 1)  # start at c0-n1

        async def get_via_library():
            m = validate(net.doc)
            async with Client(m, read_key(tmp_path / "clients" / "client0.key"), timeout_ms=30000,
                              seed=seed) as c:
                return await c.get(b"h"), c.rejected_answers

        res, rejected = asyncio.run(get_via_library())
        assert res.value == b"truth" and res.node != "c0-n1" and rejected >= 1
        hist = tmp_path / "hist.jsonl"
        rc, out = net.client("workload", "--ops", "12", "--concurrency", "3", "--keys", "3", "--history", str(hist))
        assert rc == 0 and out[0]["ok"] == 12
        lines = [json.loads(x) for x in hist.read_text().splitlines()]
        assert len(lines) == 12 and {x["result"] for x in lines} == {"ok"}
        assert all(x["process"].startswith("client0-") and x["op"] in ("get", "put") for x in lines)
        puts = [x for x in lines if x["op"] == "put"]
        assert all(bytes.fromhex(x["value"]).startswith(b"v-0-") for x in puts)
        rc, out = net.client("workload", "--ops", "100", "--keys", "5", "--key-bytes", "8", "--preload",
                             "--concurrency", "2", "--history", str(tmp_path / "pre.jsonl"))
        assert rc == 0 and out[0]["ok"] == 5
        pre = [json.loads(x) for x in (tmp_path / "pre.jsonl").read_text().splitlines()]
        assert sorted(len(bytes.fromhex(x["key"])) for x in pre) == [8] * 5 and {x["op"] for x in pre} == {"put"}
        samples = tmp_path / "samples.jsonl"
        rc, out = net.client("workload", "--ops", "8", "--keys", "5", "--key-bytes", "8", "--pattern", "payments",
                             "--concurrency", "1", "--history", str(tmp_path / "pay.jsonl"), "--samples", str(samples))
        assert rc == 0 and out[0]["ok"] == 8
        pay = [json.loads(x) for x in (tmp_path / "pay.jsonl").read_text().splitlines()]
        assert [x["op"] for x in pay] == ["get", "get", "put", "put"] * 2
        assert all(x["value"] is not None for x in pay)  # preloaded keys are found
        assert sum(json.loads(x)["ok"] for x in samples.read_text().splitlines()) == 8
    finally:
        net.close()

