"""Shared fixtures for the fault scenarios: one mixed network per module, always destroyed."""

from __future__ import annotations

import pytest

from infra import local
from infra import scenario as sc

C, S = "coordinator", "shard"
# impl_a leads c0 in view 0, impl_b leads s0; every cluster holds both implementations
MIXED = [sc.ClusterSpec("c0", C, "abab"), sc.ClusterSpec("s0", S, "baab")]


@pytest.fixture(scope="module")
def net(request, tmp_path_factory):
    home = tmp_path_factory.mktemp("faults")
    name = request.module.__name__.rsplit(".", 1)[-1].replace("_", "-")[:30]
    request.addfinalizer(lambda: local.destroy(name, home))
    return sc.deploy(name, home, MIXED)


def follower(dep, cluster: str, leader: str, skip: tuple[str, ...] = ()) -> str:
    """The last member that is neither the leader nor in `skip`."""
    return [n.id for n in dep.cluster_nodes(cluster) if n.id != leader and n.id not in skip][-1]
