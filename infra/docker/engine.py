"""Connecting to the Docker engine, with a clear error and fix when it is unreachable, and starting a
private `dockerd` by hand (tests, CI) when none runs.

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

SOCKET = "/var/run/docker.sock"
START_FIX = ("start the engine as root: `dockerd --iptables=false >/var/log/dockerd.log 2>&1 &` (Debian: "
             "apt-get install docker.io), or point DOCKER_HOST at a running engine")


def connect(timeout: float = 10.0) -> docker.DockerClient:
    """A client for the engine at DOCKER_HOST (default the local socket), or UsageError with the fix."""
    where = os.environ.get("DOCKER_HOST", f"unix://{SOCKET}")
    try:
        client = docker.from_env(timeout=int(max(timeout, 1)))
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
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([exe, "--iptables=false", "--host", f"unix://{SOCKET}"], stdout=log, stderr=log,
                                stdin=subprocess.DEVNULL, start_new_session=True)
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
