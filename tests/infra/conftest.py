"""Fixtures: a private deployments home, and deployments of stand-in nodes that are always destroyed."""

from __future__ import annotations

import pytest

from infra import ops

FAKE = {"impl_a": "tests.infra.fake_node", "impl_b": "tests.infra.fake_node"}


@pytest.fixture
def home(tmp_path, monkeypatch):
    h = tmp_path / "deployments"
    monkeypatch.setenv("HERACLIUS_HOME", str(h))
    return h


@pytest.fixture
def fake_deployment(home, request):
    """A 1 coordinator + 1 shard testbed deployment of stand-in nodes in 3 regions."""
    request.addfinalizer(lambda: ops.destroy("fake", home))
    return ops.deploy("fake", home, testbed=True, node_modules=FAKE, health_timeout=60)
