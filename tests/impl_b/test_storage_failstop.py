"""SPEC 12.8 fail-stop storage: map full and a real full disk (tmpfs) stop the node with exit 5,
one `storage_failed` error line, nothing undurable reported, and a clean catch-up after restart."""

import contextlib
import json
import os
import subprocess
import threading
import time

import pytest

from impl_b import codec
from impl_b.client import Client, ClientFailure, RequestIds
from impl_b.crypto import Signer, read_key_file
from impl_b.storage import StorageFailure, Store

from .netproc import Network


def _decision(h: int, pad: int = 0):
    hdr = codec.DecisionHeader(cluster_id="c0", height=h, parent_hash=b"\x00" * 32, inputs_hash=b"\x01" * 32,
                               outputs_root=b"\x02" * 32)
    batch = codec.Batch(inputs=[codec.Input(client=codec.ClientRequest(
        client_key=b"\x03" * 32, cluster_id="c0", request_id=1,
        op=codec.Operation(kind=2, key=b"k", value=os.urandom(pad)), signature=b"\x04" * 64))]) if pad else codec.Batch()
    return codec.Decision(header=hdr, batch=batch)


def test_map_full_is_one_failure_not_a_loop(tmp_path):
    calls = []
    s = Store(str(tmp_path / "d"), map_size=256 * 1024, on_failure=lambda op, text: calls.append((op, text)))
    h = 0
    with pytest.raises(StorageFailure) as e:
        for h in range(1, 10_000):  # noqa: B007
            s.persist({"decision": _decision(h, pad=4000)})
    assert len(calls) == 1 and calls[0][0] == "write" and "MapFull" in calls[0][1]
    assert e.value.op == "write"
    assert s.height == h - 1  # the failed height is not reported as durable
    s.close()
    s = Store(str(tmp_path / "d"), map_size=1 << 24)
    assert [d.header.height for d in s.load()[2]] == list(range(1, h))
    s.close()


def test_unreadable_own_record_is_fatal(tmp_path):
    calls = []
    s = Store(str(tmp_path / "d"), on_failure=lambda op, text: calls.append(op))
    s.persist({"decision": _decision(1)})
    from impl_b.storage import _hkey
    with s.env.begin(write=True) as txn:
        raw = bytearray(txn.get(_hkey(1), db=s.log))
        raw[-1] ^= 0xFF
        txn.put(_hkey(1), bytes(raw), db=s.log)
    with pytest.raises(StorageFailure):
        s.decision(1)
    assert calls == ["read"]
    s.close()


def _fill(path: str) -> str:
    """Fill the file system of `path` with one filler file; returns its name."""
    filler = os.path.join(path, "filler")
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (65536, 512):
            with contextlib.suppress(OSError):
                while os.write(fd, b"\xff" * size):
                    pass
    finally:
        os.close(fd)
    return filler


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_full_disk_is_fail_stop_then_restart_catches_up(tmp_path):
    net = Network(tmp_path / "net")
    victim = "c0-n3"
    mnt = os.path.join(net.root, "data", victim)
    os.makedirs(mnt)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mnt], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount tmpfs: {r.stderr.strip()}")
    seen: list[int] = []
    stop = threading.Event()
    try:
        net.start_all()
        code, out = net.cli("put", "before", "full")
        assert code == 0, out
        filler = _fill(mnt)
        os.truncate(filler, max(0, os.path.getsize(filler) - (1 << 20)))  # room for some decisions

        def poll():
            while not stop.is_set():
                with contextlib.suppress(OSError, ValueError):
                    seen.append(net.status(victim)["height"])
                time.sleep(0.05)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        proc = net.procs[victim]
        deadline = time.monotonic() + 90

        def writer(w):
            c = Client(net.m, Signer(read_key_file(net.key)), timeout_ms=10000, ids=RequestIds())
            i = 0
            while proc.poll() is None and time.monotonic() < deadline:
                with contextlib.suppress(ClientFailure, OSError):
                    c.put(f"fill-{w}-{i % 16}".encode(), os.urandom(20000))
                i += 1
            c.close()

        writers = [threading.Thread(target=writer, args=(w,)) for w in range(3)]
        for t in writers:
            t.start()
        for t in writers:
            t.join()
        stop.set()
        poller.join()
        assert proc.wait(timeout=5) == 5, "a full disk must exit 5"
        del net.procs[victim]
        with open(os.path.join(net.root, f"{victim}.log")) as fh:
            recs = [json.loads(x) for x in fh if x.strip()]
        failed = [x for x in recs if x["event"] == "storage_failed"]
        assert len(failed) == 1 and failed[0]["level"] == "error"
        assert not any(x.get("reason") == "malformed" for x in recs)
        assert not any(x["msg"] == "clean stop" for x in recs)
        # What /status reported never ran ahead of what is durable.
        os.remove(filler)
        s = Store(mnt)
        durable = len(s.load()[2])
        s.close()
        assert seen and max(seen) <= durable
        # The others kept deciding; after the restart the victim's log is byte-identical to theirs.
        code, out = net.cli("put", "after", "freed")
        assert code == 0, out
        net.start(victim)
        net.wait_healthy([victim])
        top = net.status("c0-n0")["height"]
        assert net.wait_until(lambda: net.status(victim)["height"] >= top, timeout=60)
        for h in range(1, top + 1):
            assert net.admin(victim, f"/log/{h}") == net.admin("c0-n0", f"/log/{h}"), h
    finally:
        stop.set()
        net.close()
        subprocess.run(["umount", "-l", mnt], capture_output=True)
