"""Long differential run: `python -m tests.differential --seconds 600 --seed N [--op decode]`.

Runs every vector seed, then mutated inputs in rounds of 500 until the time is up; prints each new
disagreement or adapter failure as it is found and writes a reproducer per pattern into --out.
`--replay FILE` sends a reproducer's request to every adapter again and prints the answers.
Exit code 0 when nothing was found, 1 otherwise, 2 when fewer than two implementations can run.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

from . import corpus
from .adapters import Adapter, registry_adapters
from .runner import Differential, _ref, mutant_cases, seed_cases

REFERENCE = [sys.executable, "-m", "tests.differential.reference"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.differential", description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=60.0, help="time for mutated inputs (default 60)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--op", action="append", choices=corpus.OPS, help="only this op (repeatable)")
    p.add_argument("--impl", action="append", help="only these implementations (registry names or letters)")
    p.add_argument("--reference", action="store_true",
                   help="also run the vector generator's reference adapter as if it were an implementation")
    p.add_argument("--adapter", action="append", default=[], metavar="NAME=COMMAND",
                   help="also run COMMAND --serve as implementation NAME (e.g. a build elsewhere)")
    p.add_argument("--no-seeds", action="store_true", help="skip the unmutated vector inputs")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds an adapter may take per answer")
    p.add_argument("--out", type=Path, default=Path("differential-findings"), help="reproducer directory")
    p.add_argument("--no-minimise", action="store_true")
    p.add_argument("--replay", type=Path, help="send a reproducer's request to every adapter and print the answers")
    args = p.parse_args(argv)

    adapters, missing = registry_adapters(args.timeout)
    if args.impl:
        from infra.model import implementations
        wanted = {implementations.get(n).name for n in args.impl}
        adapters = [a for a in adapters if a.name in wanted]
    for spec in args.adapter:
        name, _, command = spec.partition("=")
        adapters.append(Adapter(name, shlex.split(command), args.timeout))
    if args.reference:
        adapters.append(Adapter("reference", REFERENCE, args.timeout))
    for name, why in missing.items():
        print(f"not run: {name}: {why}")
    if args.replay:
        body = json.loads(args.replay.read_text())
        req = body.get("request", body)
        d = Differential(adapters, None, minimise=False)
        ans = d.ask([req])[0]
        print("input:", json.dumps(req, sort_keys=True))
        for n, a in sorted(ans.items()):
            print(f"{n}:", json.dumps(a, sort_keys=True))
        print("reference:", json.dumps(_ref(req), sort_keys=True))
        d.close()
        return 0
    if len(adapters) < 2:
        print(f"need two runnable implementations, have {[a.name for a in adapters]}")
        return 2
    d = Differential(adapters, args.out, minimise=not args.no_minimise)
    started = time.monotonic()
    if not args.no_seeds:
        n = d.run(seed_cases(args.op))
        print(f"{n} vector seeds in {time.monotonic() - started:.1f} s")
    deadline = time.monotonic() + args.seconds
    rounds = 0
    while time.monotonic() < deadline:
        d.run(mutant_cases(500, args.seed, args.op, salt=f"round{rounds}"), deadline)
        rounds += 1
    print(d.report())
    codes = d.close()
    print(f"{time.monotonic() - started:.1f} s; adapter exit codes at end of input: {codes}")
    return 1 if d.findings else 0


if __name__ == "__main__":
    sys.exit(main())
