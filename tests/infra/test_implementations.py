"""The implementation registry: SPEC 4 command lines per implementation, and what is missing to run one."""

import sys

import pytest

from infra.errors import UsageError
from infra.model import implementations


def test_python_implementations_run_as_modules():
    a = implementations.get("impl_a")
    assert a.command("node") == [sys.executable, "-m", "impl_a.node"]
    assert implementations.get("b").command("client") == [sys.executable, "-m", "impl_b.client"]
    assert a.command("node", "tests.infra.fake_node") == [sys.executable, "-m", "tests.infra.fake_node"]
    assert a.missing() is None


def test_compiled_implementation_runs_its_programs(tmp_path, monkeypatch):
    c = implementations.get("c")
    assert c.command("conformance") == [str(implementations.REPO_ROOT / "impl_c/bin/heraclius-conformance")]
    fake = implementations.Implementation("impl_z", "z", "Go", "test", binary_dir="bin")
    monkeypatch.setattr(implementations, "REPO_ROOT", tmp_path)
    assert fake.missing() == "bin/heraclius-node is not built"
    (tmp_path / "bin").mkdir()
    for part in ("node", "client", "conformance"):
        p = tmp_path / "bin" / f"heraclius-{part}"
        p.write_text("#!/bin/sh\n")
        p.chmod(0o755)
    assert fake.missing() is None


def test_unknown_implementation_names_the_known_ones():
    with pytest.raises(UsageError) as e:
        implementations.get("impl_x")
    assert "a (impl_a)" in e.value.fix and "c (impl_c)" in e.value.fix
