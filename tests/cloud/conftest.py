"""Fixtures for the cloud providers: a moto EC2 server, a Docker engine, SSH hosts in namespaces."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(host: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def stop_process(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory):
    """A moto_server on a free port for the whole session; killed at the end."""
    exe = VENV_BIN / "moto_server"
    if not exe.exists():
        pytest.skip("moto_server is not installed (pip install 'moto[server]')")
    port = free_port()
    with open(tmp_path_factory.mktemp("moto") / "moto.log", "wb") as log:
        proc = subprocess.Popen([str(exe), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        if not wait_port("127.0.0.1", port, 30):
            pytest.fail("moto_server did not start listening within 30 s")
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(proc)


@pytest.fixture
def aws_env(monkeypatch, tmp_path):
    """Fake credentials only for moto; no shared config files are read."""
    for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return os.environ


def pytest_configure(config):
    config.addinivalue_line("markers", "docker_e2e: needs a Docker engine and the node images; builds the "
                                       "Debian base images when selected with -m docker_e2e or "
                                       "HERACLIUS_BUILD_IMAGES=1 (about 2-4 minutes, once)")
    config.addinivalue_line("markers", "ansible_local: runs the Ansible playbooks over SSH into namespaces (root)")


def docker_e2e_selected(config) -> bool:
    return "docker_e2e" in (config.option.markexpr or "") or os.environ.get("HERACLIUS_BUILD_IMAGES") == "1"


def docker_skip(reason: str) -> None:
    """Skip, unless HERACLIUS_REQUIRE_DOCKER=1 (CI as root): then a missing engine is a failure."""
    if os.environ.get("HERACLIUS_REQUIRE_DOCKER") == "1":
        pytest.fail(f"HERACLIUS_REQUIRE_DOCKER=1 but: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def docker_client(tmp_path_factory):
    """The Docker engine at engine.docker_host(): the running one, else a dockerd started here (root)
    and stopped at the end. HERACLIUS_DOCKER_ROOT=DIR gives a private engine with its own images."""
    from infra.errors import UsageError
    from infra.providers.docker import engine

    started = None
    if not engine.reachable():
        if os.geteuid() != 0:
            docker_skip(f"no Docker engine at {engine.docker_host()} and not root, so cannot start one "
                        "(as root the tests start dockerd themselves)")
        if not shutil.which("dockerd"):
            docker_skip("no Docker engine: install it with `apt-get install docker.io` (Debian)")
        try:
            started = engine.start_dockerd(tmp_path_factory.mktemp("dockerd") / "dockerd.log")
        except UsageError as e:
            docker_skip(f"could not start dockerd: {e.message}")
    client = engine.connect()
    try:
        yield client
    finally:
        client.close()
        if started is not None:
            engine.stop_dockerd(started)


@pytest.fixture(scope="session")
def node_images(docker_client, request):
    """Every node image (impl_a and impl_b on their Debian bases, impl_c static FROM scratch). Base images come from the engine's cache; building them (mmdebstrap or
    debootstrap, minutes) only happens when docker_e2e is selected or HERACLIUS_BUILD_IMAGES=1."""
    from infra.providers.docker import images

    missing = [b.tag for b in images.BASES.values() if not images.has_image(docker_client, b.tag)]
    if missing and not docker_e2e_selected(request.config):
        docker_skip(f"base image(s) {', '.join(missing)} not built yet; run `pytest -m docker_e2e tests/cloud` "
                    "once as root with mmdebstrap or debootstrap installed to build them (2-4 minutes)")
    if missing and (os.geteuid() != 0 or not images.bootstrap_tool()):
        docker_skip("building base images needs root and mmdebstrap or debootstrap "
                    "(apt-get install --no-install-recommends mmdebstrap)")
    started = time.monotonic()
    tags = {impl: images.ensure_node_image(docker_client, impl) for impl in images.image_implementations()}
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if missing and reporter and capture:
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"\nbuilt base images {', '.join(missing)} and the node images in "
                                f"{time.monotonic() - started:.0f} s")
    return tags
