"""Shared fixtures for the fault scenarios: one mixed network per module, always destroyed."""

from __future__ import annotations

import shutil

import pytest

from infra import ops
from infra.providers.local import provider as local
from tests.testbed import scenario as sc

C, S = "coordinator", "shard"
# impl_a leads c0 in view 0, impl_b leads s0; every cluster holds both implementations
MIXED = [sc.ClusterSpec("c0", C, "abab"), sc.ClusterSpec("s0", S, "baab")]
# a module may set NETWORK = [...ClusterSpec...] to get another network from the `net` fixture
# (test_impl_c.py: impl_c leads c0, impl_c takes s0 over in view 1)


def keep_logs_if_failed(request, tmp_path_factory, name: str, home) -> None:
    """Finalizer helper: when a test of this module failed, copy the nodes' logs (the only record of
    what the nodes saw) next to pytest's temporary directories before the deployment is removed."""
    if request.session.testsfailed > request.config.stash.get(_FAILED_BEFORE, 0):
        logs = local.deployment_root(name, home) / "logs"
        if logs.is_dir():
            dest = tmp_path_factory.getbasetemp() / f"failed-logs-{name}"
            shutil.copytree(logs, dest, dirs_exist_ok=True)
            print(f"\nnode logs of the failed module kept in {dest}")


_FAILED_BEFORE = pytest.StashKey[int]()


@pytest.fixture(scope="module")
def net(request, tmp_path_factory):
    home = tmp_path_factory.mktemp("faults")
    name = request.module.__name__.rsplit(".", 1)[-1].replace("_", "-")[:30]
    request.config.stash[_FAILED_BEFORE] = request.session.testsfailed

    def finish():
        keep_logs_if_failed(request, tmp_path_factory, name, home)
        ops.destroy(name, home)
    request.addfinalizer(finish)
    return sc.deploy(name, home, getattr(request.module, "NETWORK", MIXED))


def follower(dep, cluster: str, leader: str, skip: tuple[str, ...] = ()) -> str:
    """The last member that is neither the leader nor in `skip`."""
    return [n.id for n in dep.cluster_nodes(cluster) if n.id != leader and n.id not in skip][-1]
