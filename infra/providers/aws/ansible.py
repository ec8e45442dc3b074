"""Running the playbooks of infra/ansible/ through ansible-runner: inventory building, the run
itself (own private data dir, timeout), and a per-host summary of the result."""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import ansible_runner

from infra.errors import RemoteError, UsageError
from infra.model.resources import PACKAGE_ROOT

ANSIBLE_DIR = Path(__file__).resolve().parent / "ansible"
REPO_ROOT = PACKAGE_ROOT
SSH_ARGS = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=10"


@dataclass
class PlaybookResult:
    """What ansible-runner reported: overall status and rc, per-host stats and failed tasks."""

    status: str
    rc: int
    stats: dict = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    ok_tasks: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "successful" and self.rc == 0


def inventory(machines: dict[str, dict], common: dict) -> dict:
    """`machines[name]`: host variables (ansible_host, ansible_user, ...) and `heraclius_nodes_here`,
    the nodes it runs: dicts with id, implementation, bind, admin_port (docker: image, image_archive).
    `common`: group variables (deployment_dir, heraclius_runtime, ...)."""
    hosts = {name: {"ansible_ssh_common_args": SSH_ARGS, **hv} for name, hv in machines.items()}
    return {"all": {"children": {"heraclius_hosts": {"hosts": hosts, "vars": common}}}}


def source_archive(dest: Path, implementations: list[str]) -> Path:
    """tar.gz of src/<impl>/ and src/wire_spec/*.json|proto for the `process` runtime."""
    from infra.model.resources import SPEC_FILES

    with tarfile.open(dest, "w:gz") as tar:
        for impl in implementations:
            tar.add(REPO_ROOT / impl, arcname=f"src/{impl}",
                    filter=lambda t: None if "__pycache__" in t.name else t)
        for f in SPEC_FILES:
            tar.add(REPO_ROOT / "wire_spec" / f, arcname=f"src/wire_spec/{f}")
    return dest


def node_bundle(dep_root: Path, node_ids: list[str], dest: Path) -> Path:
    """tar.gz (mode 0600) with <node>/{manifest.json, keys/*.key (0600), data/, logs/} for the nodes
    of one machine. Directories are 0700; the playbook unpacks it as is."""
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for node in node_ids:
            for sub in ("", "/keys", "/data", "/logs"):
                info = tarfile.TarInfo(f"{node}{sub}")
                info.type, info.mode = tarfile.DIRTYPE, 0o700
                tar.addfile(info)
            tar.add(dep_root / "manifest.json", arcname=f"{node}/manifest.json")
            for key in ("ed25519.key", "x25519.key"):
                data = (dep_root / "keys" / node / key).read_bytes()
                info = tarfile.TarInfo(f"{node}/keys/{key}")
                info.size, info.mode = len(data), 0o600
                tar.addfile(info, io.BytesIO(data))
    return dest


def run_playbook(playbook: str, inv: dict, work_dir: Path, timeout: int = 900, forks: int = 10) -> PlaybookResult:
    """Run `playbook` (a file in infra/ansible/) against `inv`. Artifacts go to `work_dir`."""
    # ansible-runner finds ansible-playbook on PATH: put this interpreter's bin dir (the venv) first
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    if not shutil.which("ansible-playbook", path=path):
        raise UsageError("ansible-playbook is not installed", fix="pip install ansible-core (see pyproject.toml)")
    work_dir.mkdir(parents=True, exist_ok=True)
    # a control-socket dir of our own (short: socket paths are limited to 108 bytes), so that the
    # ssh connection masters of this run can be told to exit afterwards
    cp_dir = Path(tempfile.mkdtemp(prefix="hxcp-", dir="/tmp"))
    try:
        r = ansible_runner.run(private_data_dir=str(work_dir), project_dir=str(ANSIBLE_DIR), playbook=playbook,
                               inventory=inv, quiet=True, timeout=timeout, forks=forks,
                               envvars={"PATH": path, "ANSIBLE_HOST_KEY_CHECKING": "False",
                                        "ANSIBLE_RETRY_FILES_ENABLED": "False", "ANSIBLE_NOCOLOR": "True",
                                        "ANSIBLE_PIPELINING": "True", "ANSIBLE_SSH_CONTROL_PATH_DIR": str(cp_dir)})
        # on timeout ansible-runner leaves the forked workers running
        _kill_leftovers(Path(r.config.artifact_dir))
    finally:
        for sock in cp_dir.iterdir():
            subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "heraclius-host"],
                           capture_output=True, timeout=10, check=False)
        shutil.rmtree(cp_dir, ignore_errors=True)
    result = PlaybookResult(r.status, r.rc if r.rc is not None else -1, r.stats or {})
    for ev in r.events:
        data = ev.get("event_data", {})
        host, task = data.get("host"), data.get("task")
        if ev.get("event") == "runner_on_ok" and host:
            result.ok_tasks.setdefault(host, []).append(task)
        elif ev.get("event") in ("runner_on_failed", "runner_on_unreachable") and not data.get("ignore_errors"):
            res = data.get("res", {})
            why = res.get("msg") or res.get("stderr") or ""
            result.failures.append(f"{host}: {task}: {str(why)[:300]}")
    return result


def _kill_leftovers(artifact_dir: Path) -> None:
    """ansible-runner stops only ansible-playbook's main process on timeout; its forked workers and
    their ssh clients live on. They carry this run's artifact dir in their environment, which is how
    they are found (and nothing else is touched)."""
    mark = f"AWX_ISOLATED_DATA_DIR={artifact_dir}".encode() + b"\0"
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if mark in (proc / "environ").read_bytes():
                os.kill(int(proc.name), signal.SIGKILL)
        except (OSError, ProcessLookupError):
            continue


def require_ok(result: PlaybookResult, what: str, work_dir: Path) -> PlaybookResult:
    if not result.ok:
        raise RemoteError(f"{what} failed (ansible status {result.status}, rc {result.rc})",
                          detail="\n".join(result.failures[:8]) or None,
                          fix=f"read {work_dir}/artifacts/*/stdout, fix the host, and run deploy again")
    return result
