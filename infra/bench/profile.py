"""Where the nodes' time goes under load: sample running nodes with py-spy (an optional tool, not a
dependency: `pip install py-spy`) and summarise the samples by function (self and inclusive share).

    python -m infra.bench.profile --name default --seconds 20 c0-n0 c0-n1   # while a bench runs
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
from pathlib import Path

from infra.errors import OpsError, UsageError
from infra.model.deployment import Deployment, load_deployment

_LOCATION = re.compile(r" \(([^)]*)\)$")
# frames that only say "the event loop / a thread is running", never where the work is
_PLUMBING = ("<module>", "_run_code", "_run_module_as_main", "run (__init__", "run_forever", "_run_once", "Runner.run", "run (asyncio", "Thread._bootstrap",
             "Thread.run", "_run (events", "main (", "run (runners")


def short_frame(frame: str) -> str:
    """`func (path/to/file.py:12)` -> `func (file.py)`."""
    m = _LOCATION.search(frame)
    if not m:
        return frame
    return f"{frame[:m.start()]} ({m.group(1).rsplit('/', 1)[-1].split(':')[0]})"


def summarise_raw(text: str, top: int = 15) -> dict:
    """py-spy `--format raw` (collapsed stacks: `f1;f2;... count`) -> shares of samples by function."""
    self_c: collections.Counter = collections.Counter()
    incl: collections.Counter = collections.Counter()
    total = 0
    for line in text.splitlines():
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [short_frame(f) for f in stack.split(";")]
        self_c[frames[-1]] += n
        for f in set(frames):
            incl[f] += n
    share = (lambda c: round(100 * c / total, 1)) if total else (lambda c: 0.0)
    return {"samples": total,
            "self": [(f, share(c)) for f, c in self_c.most_common(top)],
            "inclusive": [(f, share(c)) for f, c in incl.most_common(top * 3)
                          if not any(p in f for p in _PLUMBING)][:top]}


def record(dep: Deployment, node_ids: list[str], seconds: float, out_dir: Path, rate: int = 50) -> dict[str, dict]:
    """Sample each node for `seconds` (all at once) and summarise; raw stacks kept in out_dir."""
    spy = shutil.which("py-spy") or (str(Path(sys.executable).parent / "py-spy")
                                     if (Path(sys.executable).parent / "py-spy").exists() else None)
    if not spy:
        raise UsageError("py-spy is not installed", fix="pip install py-spy (into the venv)")
    out_dir.mkdir(parents=True, exist_ok=True)
    procs = {}
    for node_id in node_ids:
        node = dep.node(node_id)
        if not node.pid:
            raise UsageError(f"node {node_id} is not running")
        raw = out_dir / f"{node_id}.raw.txt"
        procs[node_id] = (raw, subprocess.Popen(
            [spy, "record", "-p", str(node.pid), "-d", str(int(seconds)), "-r", str(rate), "-f", "raw",
             "--nonblocking", "-o", str(raw)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
    result = {}
    for node_id, (raw, proc) in procs.items():
        try:
            _, err = proc.communicate(timeout=seconds + 30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise OpsError(f"py-spy on {node_id} did not finish") from None
        if proc.returncode != 0 or not raw.exists():
            raise OpsError(f"py-spy on {node_id} failed (exit {proc.returncode})", detail=err.decode()[-500:])
        result[node_id] = {"implementation": dep.node(node_id).implementation, **summarise_raw(raw.read_text())}
    return result


def render(summaries: dict[str, dict]) -> str:
    lines = []
    for node_id, s in summaries.items():
        lines.append(f"== {node_id} ({s['implementation']}), {s['samples']} samples")
        lines += ["  self:"] + [f"    {pct:5.1f}%  {f}" for f, pct in s["self"]]
        lines += ["  inclusive:"] + [f"    {pct:5.1f}%  {f}" for f, pct in s["inclusive"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m infra.bench.profile", description=__doc__.splitlines()[0])
    ap.add_argument("--name", default="default")
    ap.add_argument("--home", default=None)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--out", type=Path, default=Path("bench-results/profile"))
    ap.add_argument("nodes", nargs="+")
    args = ap.parse_args(argv)
    try:
        print(render(record(load_deployment(args.name, args.home), args.nodes, args.seconds, args.out)))
    except OpsError as e:
        print(e.render(), file=sys.stderr)
        sys.exit(2 if isinstance(e, UsageError) else 1)


if __name__ == "__main__":
    main()
