"""`heraclius-ops workload` waits for its client as long as --duration-s says (plus the client's
operation deadline and a margin), not a hard-coded 120 s (issue 12)."""

from __future__ import annotations

import json

import pytest

from infra import ops
from infra.cli import main
from infra.nodes import client as infra_client
from tests.infra.conftest import FAKE


def test_timeout_follows_the_duration():
    assert infra_client.workload_timeout(None) == infra_client.WORKLOAD_TIMEOUT_S
    assert infra_client.workload_timeout(10) == infra_client.WORKLOAD_TIMEOUT_S
    for d in (120, 300, 3600):
        t = infra_client.workload_timeout(d)
        assert t >= d + infra_client.CLIENT_OP_DEADLINE_S + 30, (d, t)


def test_workload_passes_the_timeout_to_the_client(monkeypatch):
    seen = {}

    def fake_run(dep, client, args, timeout_s=30.0):
        seen["timeout"] = timeout_s
        seen["args"] = args
        return infra_client.ClientResult(client, [], 0, {"ok": 1}, "")
    monkeypatch.setattr(infra_client, "run_client", fake_run)
    infra_client.workload(None, duration_s=600)
    assert seen["timeout"] >= 600 + infra_client.CLIENT_OP_DEADLINE_S and "--duration-s" in seen["args"]
    infra_client.workload(None, duration_s=600, timeout_s=5)
    assert seen["timeout"] == 5


def test_cli_workload_longer_than_the_old_timeout(home, capsys, request, monkeypatch):
    """With the fixed 120 s scaled down to 2 s, a client that works for its 4 s duration is
    waited for (the old code killed it), through the CLI."""
    monkeypatch.setattr(infra_client, "WORKLOAD_TIMEOUT_S", 2.0)
    monkeypatch.setattr(infra_client, "CLIENT_OP_DEADLINE_S", 0.5)
    monkeypatch.setattr(infra_client, "WORKLOAD_MARGIN_S", 3.0)
    request.addfinalizer(lambda: ops.destroy("default", home))
    ops.deploy("default", home, testbed=True, node_modules=FAKE, health_timeout=60,
               client_modules={"a": "tests.infra.slow_fake_client", "b": "tests.infra.slow_fake_client"})
    with pytest.raises(SystemExit) as e:
        main(["workload", "--ops", "5", "--duration-s", "4"])
        raise SystemExit(0)
    out = capsys.readouterr().out
    assert e.value.code == 0, out
    assert json.loads(out.splitlines()[0])["elapsed_s"] >= 4
