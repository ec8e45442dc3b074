"""The installed package works on its own: a wheel built from the repository, installed into a fresh
venv, runs `heraclius-ops` from an unrelated directory (no repository on the path, no pyproject.toml,
no ./deployments) through --version, deploy, status, kv, list and destroy.

The venv gets the pinned dependencies from the test's own environment (a .pth file naming its
site-packages, appended after the venv's own, so the wheel's `infra` wins over any editable install);
nodes and clients are the stand-ins of tests/infra, copied into a directory of their own."""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STAND_INS = "heraclius_stand_ins"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # this environment's setuptools when it is new enough for pyproject.toml (offline, fast), else an
    # isolated build that fetches the declared build backend
    try:
        local_backend = int(importlib.metadata.version("setuptools").split(".")[0]) >= 77
    except importlib.metadata.PackageNotFoundError:
        local_backend = False
    flags = ["--no-build-isolation"] if local_backend else []
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", *flags, "-q", "-w",
                        str(out), str(ROOT)], capture_output=True, text=True, timeout=600, cwd=out)
    assert r.returncode == 0, r.stderr[-2000:]
    shutil.rmtree(ROOT / "build", ignore_errors=True)  # setuptools' scratch dir (ignored by git anyway)
    (whl,) = out.glob("heraclius-*.whl")
    return whl


def test_wheel_carries_its_data(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for need in ("wire_spec/manifest.schema.json", "wire_spec/status.schema.json", "wire_spec/heraclius.proto",
                 "infra/providers/aws/ansible/site.yml", "infra/providers/aws/ansible/roles/heraclius_node/tasks/main.yml",
                 "infra/providers/docker/Dockerfile.node", "infra/cli/__init__.py", "impl_a/node.py",
                 "impl_b/node.py"):
        assert need in names, need
    assert not any(n.startswith(("tests/", "wire_spec/vectors/")) for n in names)
    assert not any(n.endswith(("scenario.py", "twins.py")) for n in names)


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("venv")
    env_dir = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True, timeout=120)
    py = env_dir / "bin" / "python"
    r = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q",
                        "--disable-pip-version-check", str(wheel)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    here = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "zz_heraclius_test_deps.pth").write_text("\n".join(sorted(here)) + "\n")
    return env_dir


def _env(tmp: Path) -> dict:
    stand_ins = tmp / "stand_ins" / STAND_INS
    stand_ins.mkdir(parents=True, exist_ok=True)
    (stand_ins / "__init__.py").write_text("")
    for f in ("fake_node.py", "fake_client.py"):
        shutil.copy(ROOT / "tests" / "infra" / f, stand_ins / f)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HERACLIUS_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(PYTHONPATH=str(tmp / "stand_ins"), XDG_DATA_HOME=str(tmp / "xdg"), HOME=str(tmp / "home"))
    return env


def test_installed_cli_from_an_unrelated_directory(venv, tmp_path):
    env = _env(tmp_path)
    work = tmp_path / "elsewhere"
    work.mkdir()
    ops = str(venv / "bin" / "heraclius-ops")

    def run(*args, check=True):
        r = subprocess.run([ops, *args], capture_output=True, text=True, cwd=work, env=env, timeout=180)
        if check:
            assert r.returncode == 0, (args, r.stdout[-2000:], r.stderr[-2000:])
        return r

    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import infra, wire_spec; print(infra.__file__)"],
                           capture_output=True, text=True, cwd=work, env=env, check=True).stdout
    assert str(venv) in where and str(ROOT) not in where
    assert run("--version").stdout.strip() == "heraclius-ops 0.1.0"
    stand = [f"{x}={STAND_INS}.fake_node" for x in ("impl_a", "impl_b")]
    clients = [f"{x}={STAND_INS}.fake_client" for x in ("a", "b")]
    try:
        run("deploy", "--name", "whl", "--node-module", stand[0], "--node-module", stand[1],
            "--client-module", clients[0], "--client-module", clients[1])
        home = tmp_path / "xdg" / "heraclius" / "deployments"
        assert (home / "whl" / "manifest.json").is_file()  # the default home: the user data dir
        assert not (work / "deployments").exists()
        doc = json.loads(run("status", "--name", "whl", "-o", "json").stdout)
        assert doc["verdict"] == "healthy" and len(doc["clusters"]) == 2
        assert run("status", "--name", "whl", "-o", "value").stdout.strip() == "healthy"
        run("kv", "put", "k1", "hello", "--name", "whl")
        assert run("kv", "get", "k1", "--name", "whl", "-o", "value").stdout == "hello\n"
        missing = run("kv", "get", "nope", "--name", "whl", check=False)
        assert missing.returncode == 1 and "not found" in missing.stderr
        listed = json.loads(run("list", "-o", "json").stdout)["deployments"]
        assert [(d["name"], d["provider"], d["health"]) for d in listed] == [("whl", "local", "healthy")]
        # the docker provider's image recipe needs no pyproject.toml: the installed metadata pins the deps
        reqs = subprocess.run([str(venv / "bin" / "python"), "-c",
                               "from infra.providers.docker.images import node_requirements; print(node_requirements())"],
                              capture_output=True, text=True, cwd=work, env=env, timeout=60)
        assert reqs.returncode == 0 and "pynacl==" in reqs.stdout and "textual" not in reqs.stdout, reqs.stderr
    finally:
        out = run("destroy", "--name", "whl", check=False)
    assert out.returncode == 0 and "destroyed deployment whl" in out.stdout, out.stderr
    assert not (tmp_path / "xdg" / "heraclius" / "deployments" / "whl").exists()
