"""SPEC 14.5 backoff of every implementation's client command with every coordinator node down
(issue 12 attack 8: client libraries retried without backoff). No node runs: a deployment's keys
and manifest only, with stub listeners on the coordinators' client ports that accept and close
each connection, counting the attempts."""

from __future__ import annotations

import socket
import subprocess
import threading
import time

import pytest

from infra import ops
from infra.model import implementations
from infra.model.deployment import CLIENT_IDS
from infra.providers.local import provider as local
from tests.adversarial.conftest import IMPLS, record
from tests.testbed import scenario as sc

DEADLINE_MS = 4000


@pytest.fixture(scope="module")
def idle_dep(tmp_path_factory):
    home = tmp_path_factory.mktemp("adv-retry")
    plan = sc.make_plan([sc.ClusterSpec("c0", "coordinator", "a" * 4), sc.ClusterSpec("s0", "shard", "a" * 4)])
    dep = local.create(plan, "adv-retry", home, testbed=False)
    yield dep
    ops.destroy("adv-retry", home)


class Stub:
    """Listens on a coordinator's client port; accepts and closes at once; counts accepts."""

    def __init__(self, host: str, port: int):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(512)
        self.sock.settimeout(0.2)
        self.accepts: list[float] = []
        self.stop = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop.is_set():
            try:
                c, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepts.append(time.monotonic())
            c.close()

    def close(self):
        self.stop.set()
        self.t.join()
        self.sock.close()


def client_put(dep, impl_name: str) -> tuple[float, subprocess.CompletedProcess]:
    impl = implementations.get(impl_name)
    cmd = [*impl.command("client"), "--manifest", str(dep.manifest_path),
           "--key", str(dep.client_key(CLIENT_IDS.get(impl.letter, "client-a"))),
           "--timeout-ms", str(DEADLINE_MS), "put", "adv-retry-key", "v"]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=DEADLINE_MS / 1000 + 60, cwd=local.REPO_ROOT)
    return time.monotonic() - t0, proc


@pytest.mark.parametrize("impl_name", [name for _, name in IMPLS])
@pytest.mark.parametrize("mode", ["accept_and_close", "refused"])
def test_client_backs_off_when_every_coordinator_is_down(idle_dep, impl_name, mode):
    """`<client command> put` with every coordinator node down: the operation fails at its
    deadline (--timeout-ms 4000), not at once, with an error naming the cluster; against stubs
    that accept and close, each member sees at most a few connection attempts per second
    (rounds with jittered backoff 50 ms doubling to 1 s, no redial within the transport's
    reconnect backoff of 100 ms doubling to 2 s)."""
    missing = implementations.get(impl_name).missing()
    if missing:
        pytest.skip(f"{impl_name}: {missing}")
    dep = idle_dep
    stubs = []
    if mode == "accept_and_close":
        stubs = [Stub(n.host, n.ports["client"])
                 for n in dep.cluster_nodes("c0")]
    try:
        elapsed, proc = client_put(dep, impl_name)
    finally:
        for s in stubs:
            s.close()
    per_member = [len(s.accepts) for s in stubs]
    rate = [round(c / elapsed, 1) for c in per_member]
    record(impl_name, f"client retry, coordinators down ({mode})", elapsed_s=round(elapsed, 2),
           attempts_per_member=per_member, attempts_per_s=rate, exit=proc.returncode,
           stdout=proc.stdout.strip()[-300:])
    assert proc.returncode == 1, f"exit {proc.returncode}: {proc.stdout[-300:]} {proc.stderr[-300:]}"
    assert "error" in proc.stdout and "c0" in proc.stdout, proc.stdout[-300:]
    assert elapsed >= 0.8 * DEADLINE_MS / 1000, f"failed after {elapsed:.2f} s, before its {DEADLINE_MS} ms deadline"
    assert elapsed <= DEADLINE_MS / 1000 + 15, f"took {elapsed:.1f} s for a {DEADLINE_MS} ms deadline"
    if stubs:
        assert min(per_member) >= 1, f"some member never tried: {per_member}"
        assert max(per_member) <= 6 * DEADLINE_MS / 1000 + 4, \
            f"connection attempts per member in {elapsed:.1f} s: {per_member} (no backoff)"
