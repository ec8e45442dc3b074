"""CPU accounting for the benchmark from /proc (psutil is not a dependency): per-process CPU seconds,
whole-machine busy time and load average, so a run can say how much CPU nodes, clients and
everything else on the host used during each step."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def parse_stat_cpu(stat_line: str) -> float:
    """CPU seconds (user + system, the process's own threads) from one /proc/<pid>/stat line.
    The command name (field 2) may hold spaces and parentheses, so split after the last ')'."""
    fields = stat_line.rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15
    return (int(fields[11]) + int(fields[12])) / TICKS


def process_cpu(pid: int | None) -> float | None:
    """CPU seconds used so far by `pid`, None if it does not exist (or is not readable)."""
    if not pid:
        return None
    try:
        return parse_stat_cpu(Path(f"/proc/{pid}/stat").read_text())
    except (OSError, IndexError, ValueError):
        return None


def parse_machine_stat(text: str) -> tuple[float, float]:
    """(busy, total) CPU seconds over all cores from the text of /proc/stat."""
    for line in text.splitlines():
        if line.startswith("cpu "):
            values = [int(v) for v in line.split()[1:]]
            idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
            total = sum(values[:8])  # guest time is already counted in user
            return (total - idle) / TICKS, total / TICKS
    raise ValueError("no aggregate cpu line in /proc/stat")


def machine_cpu() -> tuple[float, float]:
    return parse_machine_stat(Path("/proc/stat").read_text())


def loadavg() -> float:
    """One-minute load average."""
    return float(Path("/proc/loadavg").read_text().split()[0])


@dataclass
class CpuSnapshot:
    """CPU counters of a set of processes and of the machine at one instant."""

    per_pid: dict[int, float]
    busy: float
    total: float

    @classmethod
    def take(cls, pids: list[int]) -> CpuSnapshot:
        per_pid = {}
        for pid in pids:
            cpu = process_cpu(pid)
            if cpu is not None:
                per_pid[pid] = cpu
        busy, total = machine_cpu()
        return cls(per_pid, busy, total)

    def used_since(self, earlier: CpuSnapshot) -> dict[int, float]:
        """CPU seconds per pid between two snapshots (pids present in both)."""
        return {pid: self.per_pid[pid] - earlier.per_pid[pid] for pid in self.per_pid if pid in earlier.per_pid}


def machine_info() -> dict:
    """CPU count, model and current load, recorded with every run."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu_model": model, "loadavg_1m": loadavg()}
