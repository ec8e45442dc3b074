"""Connecting to the Docker engine, with a clear error and fix when it is unreachable, and starting a
private `dockerd` by hand (tests, CI) when none runs.

HERACLIUS_DOCKER_ROOT=DIR selects a private engine of our own: socket DIR/docker.sock, data in
DIR/data, runtime state in DIR/run, no default bridge. It shares nothing with the system engine
(images, containers, networks), so CI can prove a build from nothing without touching anyone's cache.
DOCKER_HOST, when set, wins over it.

A hand-started engine gets `--iptables=false`: Docker otherwise may set the FORWARD policy to DROP
and isolates its bridges from each other, which would cut the routed traffic between region
networks (ours and the namespace testbed's). `allow_forwarding` covers engines started by others."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from pathlib import Path

import docker
import docker.errors

from infra.errors import UsageError
from infra.model.keys import make_private_dir

SOCKET = "/var/run/docker.sock"
ROOT_ENV = "HERACLIUS_DOCKER_ROOT"
START_FIX = ("start the engine as root: `dockerd --iptables=false >/var/log/dockerd.log 2>&1 &` (Debian: "
             "apt-get install docker.io), or point DOCKER_HOST at a running engine")


def private_root() -> Path | None:
    """The private engine's directory (HERACLIUS_DOCKER_ROOT), unless DOCKER_HOST overrides it."""
    root = os.environ.get(ROOT_ENV)
    if not root or os.environ.get("DOCKER_HOST"):
        return None
    return Path(root).resolve()


def docker_host() -> str:
    """The engine address every tool here uses (also what subprocesses need in DOCKER_HOST)."""
    if os.environ.get("DOCKER_HOST"):
        return os.environ["DOCKER_HOST"]
    root = private_root()
    return f"unix://{root / 'docker.sock'}" if root else f"unix://{SOCKET}"


def connect(timeout: float = 10.0) -> docker.DockerClient:
    """A client for the engine at `docker_host()`, or UsageError with the fix."""
    where = docker_host()
    try:
        if os.environ.get("DOCKER_HOST"):  # from_env also reads DOCKER_TLS_VERIFY / DOCKER_CERT_PATH
            client = docker.from_env(timeout=int(max(timeout, 1)))
        else:
            client = docker.DockerClient(base_url=where, timeout=int(max(timeout, 1)))
        client.ping()
    except docker.errors.DockerException as e:
        raise UsageError(f"Docker engine unreachable at {where}", detail=str(e).splitlines()[0][:300],
                         fix=START_FIX) from None
    return client


def reachable() -> bool:
    try:
        connect(timeout=3).close()
        return True
    except UsageError:
        return False


def start_dockerd(log_path: Path, timeout: float = 60.0) -> subprocess.Popen:
    """Start `dockerd` (root only) and wait until it answers. The caller stops it with `stop_dockerd`."""
    if os.geteuid() != 0:
        raise UsageError("starting the Docker engine needs root", fix=START_FIX)
    exe = shutil.which("dockerd")
    if not exe:
        raise UsageError("dockerd is not installed", fix="apt-get install docker.io (Debian), then try again")
    cmd = [exe, "--iptables=false", "--host", docker_host()]
    root = private_root()
    if root:
        # containerd's sockets live under the exec root: keep it short (unix socket paths < 108 bytes)
        make_private_dir(root)
        # own containerd namespaces too, in case it ends up on a system containerd shared with another engine
        cmd += ["--data-root", str(root / "data"), "--exec-root", str(root / "run"),
                "--pidfile", str(root / "docker.pid"), "--bridge", "none",
                "--containerd-namespace", "heraclius", "--containerd-plugins-namespace", "heraclius-plugins"]
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise UsageError(f"dockerd exited with code {proc.returncode}", fix=f"read {log_path}")
        if reachable():
            return proc
        time.sleep(0.5)
    stop_dockerd(proc)
    raise UsageError(f"dockerd did not answer within {timeout:.0f} s", fix=f"read {log_path}")


def stop_dockerd(proc: subprocess.Popen, timeout: float = 20.0) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def _iptables(*args: str) -> subprocess.CompletedProcess | None:
    if not shutil.which("iptables"):
        return None
    return subprocess.run(["iptables", "-w", "5", *args], capture_output=True, text=True, timeout=15)


def allow_forwarding(cidr: str) -> bool:
    """Let traffic between our region networks through FORWARD whatever Docker's policy and
    isolation chains say. Returns True if a rule was added (remove it with `remove_forwarding`)."""
    with contextlib.suppress(OSError):
        Path("/proc/sys/net/ipv4/ip_forward").write_text("1\n")
    rule = ["FORWARD", "-s", cidr, "-d", cidr, "-j", "ACCEPT"]
    check = _iptables("-C", *rule)
    if check is None:
        return False
    if check.returncode == 0:
        return False
    added = _iptables("-I", *rule)
    return bool(added and added.returncode == 0)


def remove_forwarding(cidr: str) -> None:
    _iptables("-D", "FORWARD", "-s", cidr, "-d", cidr, "-j", "ACCEPT")
