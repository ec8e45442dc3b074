"""SPEC 12.8 fail-stop storage (issue 12 attack 2: a node kept running on a full disk and corrupted
its store). Root only: one shard follower's data directory moves onto a small tmpfs, which is
filled while the cluster works. The node must exit 5 within seconds and log `storage_failed`, the
other three keep serving, and after space is freed it restarts and catches up to a byte-identical
log. The tmpfs is always unmounted (and the data moved back) in teardown."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from infra.nodes import process
from infra.providers.local import provider as local
from tests.adversarial.conftest import record
from tests.testbed import scenario as sc

SIZE_MB = 48


def sh(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=60)


def fill(path: Path) -> int:
    """Write zeros into `path` until the file system is full; returns the bytes written."""
    total = 0
    with open(path, "wb", buffering=0) as f:
        for chunk in (1 << 20, 1 << 16, 1 << 12, 512):
            buf = bytes(chunk)
            while True:
                try:
                    total += f.write(buf)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    break
    return total


@pytest.fixture
def disk_node(net, tmp_path):
    """A shard follower whose data dir is a symlink into a fresh tmpfs mount (its data copied in)."""
    if os.geteuid() != 0:
        pytest.skip("the full-disk test mounts a tmpfs: it needs root (CI runs as root)")
    dep = net.dep
    node = net.target("s0")
    mnt = dep.root / f"disk-{node}"
    mnt.mkdir()
    r = sh("mount", "-t", "tmpfs", "-o", f"size={SIZE_MB}m,mode=0700", "tmpfs", str(mnt))
    if r.returncode != 0:
        mnt.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    data = dep.data_dir(node)
    moved = False
    proc = None
    try:
        local.stop_node(dep, node)
        shutil.copytree(data, mnt / "data", symlinks=True)
        os.chmod(mnt / "data", 0o700)
        shutil.rmtree(data)
        data.symlink_to(mnt / "data")
        moved = True
        proc = start_tracked(dep, node)
        yield node, mnt, proc
    finally:
        if proc is not None and proc.poll() is None and proc.pid not in process._exit_codes:
            proc.kill()  # a node that never exited (the test has failed): do not leave it behind
            proc.wait(10)
        if local.node_pid_alive(dep, node):
            local.stop_node(dep, node)
        if moved:
            keep = tmp_path / "data-back"
            shutil.copytree(mnt / "data", keep, symlinks=True)
            data.unlink()
        r = sh("umount", str(mnt))
        if r.returncode != 0:
            sh("umount", "-l", str(mnt))
        mnt.rmdir()
        if moved:
            shutil.move(str(keep), str(data))
            os.chmod(data, 0o700)
            sc.start(dep, [node], 90)


def start_tracked(dep, node: str) -> subprocess.Popen:
    """local.start_node, keeping the Popen so that the exit code cannot be lost (a discarded Popen
    is reaped by the next subprocess call)."""
    n = dep.node(node)
    local.check_ports_free(dep, node)
    with open(dep.log_path(node), "ab") as log:
        proc = subprocess.Popen(n.command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=local.REPO_ROOT,
                                start_new_session=True, close_fds=True)
    dep.set_node_state(node, pid=proc.pid, status="running", started=time.time())
    local.wait_healthy(dep, [node], 90)
    return proc


def exit_code(proc: subprocess.Popen) -> int | None:
    """The exit code, or None while the process runs. infra's liveness check may have reaped it
    first (it keeps the code; Popen.poll then reads ECHILD as 0, so infra's record wins)."""
    if proc.pid in process._exit_codes:
        return process._exit_codes[proc.pid]
    code = proc.poll()
    return process._exit_codes.get(proc.pid, code)


def storage_failed_lines(log: Path) -> list[dict]:
    out = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict) and doc.get("event") == "storage_failed":
            out.append(doc)
    return out


def test_full_disk_is_fail_stop(net, disk_node):
    """Fill the tmpfs while PUTs of 30 KB values flow: the node exits with code 5 within a few
    seconds of the disk filling up and logs `storage_failed` at level error; the cluster keeps
    serving with 3 of 4; after the filler is removed the node restarts with the same data and its
    log is byte-identical to the others' (`/log/<h>`)."""
    dep = net.dep
    node, mnt, proc = disk_node
    others = [m for m in net.members("s0") if m != node]
    h0 = sc.heights(dep, "s0")
    stop = threading.Event()
    puts = {"ok": 0, "failed": 0}

    def load():
        c = net.client("b")
        i = 0
        while not stop.is_set():
            i += 1
            try:
                net.request(net.members("c0")[0], 2, f"adv-disk-{i % 50}".encode(), os.urandom(15_000).hex().encode(),
                            client=c, deadline=15)
                puts["ok"] += 1
            except AssertionError:
                puts["failed"] += 1

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    reported = []
    try:
        sc.wait_for(lambda: puts["ok"] >= 3, 60, "the first PUTs")
        filled = fill(mnt / "filler")
        t_full = time.monotonic()
        code = None
        while time.monotonic() - t_full < 60:
            # the process's own exit status, not /proc: a process whose main thread has ended
            # shows state Z while its other threads still run
            code = exit_code(proc)
            if code is not None:
                break
            st = net.status(node, timeout=1.0)
            if st:
                reported.append(st["height"])
            time.sleep(0.2)
        exit_after = time.monotonic() - t_full
        alive = code is None
        lines = storage_failed_lines(dep.log_path(node))
        # the other three keep serving
        hs = sc.heights(dep, "s0")
        sc.wait_for(lambda: all((sc.heights(dep, "s0")[m] or 0) > (hs[m] or 0) for m in others), 60,
                    "the other shard members to keep deciding")
    finally:
        stop.set()
        loader.join(timeout=30)
    record(net.impl, "full disk (tmpfs) on a shard follower", filled_mb=round(filled / 2**20, 1),
           exit_code=code, exit_after_full_s=round(exit_after, 1), storage_failed_logged=len(lines),
           last_reported_height=max(reported, default=None), puts=dict(puts))
    assert not alive, f"{node} still running {exit_after:.0f} s after its disk filled up"
    assert code == 5, f"{node} exited with {code}, not 5 (storage failure)"
    assert exit_after <= 20, f"{node} exited {exit_after:.1f} s after the disk filled"
    assert lines and lines[0].get("level") == "error", f"no `storage_failed` error line in {node}'s log: {lines}"
    # free the space; the node restarts with the same data and catches up to an identical log
    (mnt / "filler").unlink()
    sc.start(dep, [node], 90)
    net.put(net.members("c0")[0], b"adv-after-disk", b"v", deadline=60)
    compared = sc.assert_logs_identical(dep, "s0", min_height=max(h0.values()) + 1, timeout=90)
    record(net.impl, "full disk: restart and catch-up", compared_heights=compared)
    for st in (net.status(m) for m in net.members("s0")):
        assert st and not st.get("rejected", {}).get("storage_failed"), st
