"""Fixtures: a temp deployment of fake nodes (two 4-node clusters) that is always shut down."""

import pytest

from tests.tui.fake_nodes import FakeDeployment


@pytest.fixture
def fake_deployment(tmp_path):
    dep = FakeDeployment(tmp_path / "default")
    try:
        yield dep
    finally:
        dep.close()


@pytest.fixture
def fake_production(tmp_path):
    dep = FakeDeployment(tmp_path / "prod", testbed=False)
    try:
        yield dep
    finally:
        dep.close()
