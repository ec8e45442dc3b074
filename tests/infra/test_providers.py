"""The provider interface: one selection point, every provider implements it, the operations go
through it (a stand-in provider records the calls)."""

from __future__ import annotations

import pytest

from infra import providers
from infra.errors import UsageError
from infra.providers.base import Provider
from infra.testbed import faults


@pytest.mark.parametrize("name", providers.PROVIDERS)
def test_every_provider_implements_the_interface(name):
    p = providers.get(name)
    assert isinstance(p, Provider) and p.name == name
    for method in ("deploy", "destroy", "node_states", "start", "stop", "kill", "pause", "resume", "region_layout"):
        assert callable(getattr(p, method))


def test_unknown_provider_is_a_usage_error():
    with pytest.raises(UsageError, match="unknown provider 'vmware'"):
        providers.get("vmware")


def test_aws_node_faults_say_they_are_not_implemented(fake_deployment):
    aws = providers.get("aws")
    with pytest.raises(UsageError, match="not implemented for the aws provider") as e:
        aws.kill(fake_deployment, "c0-n0")
    assert "AWS tools" in e.value.fix
    assert aws.node_states(fake_deployment) == {n.id: "remote" for n in fake_deployment.nodes}


class Recorder(Provider):
    name = "recorder"

    def __init__(self):
        self.calls = []

    def deploy(self, *a, **k):
        raise AssertionError

    def destroy(self, root, state, progress=None):
        return []

    def node_states(self, dep):
        return {n.id: "running" for n in dep.nodes}

    def stop(self, dep, node_id):
        self.calls.append(("stop", node_id))
        return {}

    def start(self, dep, node_id, timeout=30.0):
        self.calls.append(("start", node_id))
        return {"node": node_id}

    def kill(self, dep, node_id):
        self.calls.append(("kill", node_id))
        return {"node": node_id, "action": "crash"}


def test_faults_call_the_deployments_provider(fake_deployment, monkeypatch):
    rec = Recorder()
    monkeypatch.setattr(providers, "for_deployment", lambda dep: rec)
    faults.crash(fake_deployment, "c0-n1")
    assert faults.restart(fake_deployment, "c0-n2")["action"] == "restart"
    assert rec.calls == [("kill", "c0-n1"), ("stop", "c0-n2"), ("start", "c0-n2")]
    with pytest.raises(UsageError, match="not implemented for the recorder provider"):
        faults.pause(fake_deployment, "c0-n1")
    ok, why = faults.partition_support(fake_deployment)
    assert not ok and "not implemented for the recorder provider" in why
