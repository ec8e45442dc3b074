"""Process supervision for locally started nodes: spawn detached, check liveness, signal, stop."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path


def spawn(command: list[str], log_path: Path, cwd: Path | None = None) -> int:
    """Start `command` in its own session (so it outlives the CLI and ^C in the terminal does not
    reach it), stdout/stderr appended to `log_path`. Returns the pid."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                cwd=cwd, start_new_session=True, close_fds=True)
    return proc.pid


_exit_codes: dict[int, int] = {}


def _reap(pid: int) -> None:
    # Only reaps our own children (tests run nodes as children); others raise ChildProcessError.
    with contextlib.suppress(ChildProcessError):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            _exit_codes[pid] = os.waitstatus_to_exitcode(status)


def exit_code(pid: int | None) -> int | None:
    """Exit code (negative: killed by that signal) of a child of this process that has ended and was
    reaped here; None if unknown (still running, or not our child)."""
    if pid:
        _reap(pid)
    return _exit_codes.get(pid) if pid else None


def proc_state(pid: int | None) -> str | None:
    """Kernel state letter (R, S, T, Z, ...) of `pid`, or None if it does not exist."""
    if not pid:
        return None
    _reap(pid)
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def is_alive(pid: int | None, marker: str | None = None) -> bool:
    """True if `pid` runs and is not a zombie; with `marker`, its command line must contain it,
    so that a recycled pid is never mistaken for (and never signalled as) one of our nodes."""
    state = proc_state(pid)
    if state is None or state in ("Z", "X"):
        return False
    if marker is not None:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return False
        return marker in cmdline
    return True


def is_paused(pid: int | None) -> bool:
    return proc_state(pid) in ("T", "t")


def send(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def wait_exit(pid: int, timeout: float, marker: str | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_alive(pid, marker):
            return True
        time.sleep(0.05)
    return not is_alive(pid, marker)


def stop(pid: int | None, marker: str | None = None, grace: float = 5.0) -> str:
    """SIGTERM, then SIGKILL after `grace` seconds. Returns 'not-running', 'stopped' or 'killed'."""
    if not is_alive(pid, marker):
        return "not-running"
    assert pid is not None
    send(pid, signal.SIGCONT)  # a paused process cannot handle SIGTERM
    send(pid, signal.SIGTERM)
    if wait_exit(pid, grace, marker):
        return "stopped"
    send(pid, signal.SIGKILL)
    wait_exit(pid, 2.0, marker)
    return "killed"


def tail(path: Path, lines: int = 20) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read().decode(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(data.splitlines()[-lines:])
