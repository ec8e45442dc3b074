"""`python -m tui [DEPLOYMENT_DIR] [--interval S]`: the monitor, read-only (no fault keys: those come
with `heraclius-ops monitor`, which hands infra's fault functions to the monitor)."""

from __future__ import annotations

import argparse
from pathlib import Path

from infra.model.deployment import home_dir
from tui.app import run


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tui", description="Heraclius monitor")
    default = home_dir() / "default"
    parser.add_argument("deployment_dir", nargs="?", type=Path, default=default,
                        help=f"deployment directory holding manifest.json (default {default})")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between polls (default 1)")
    args = parser.parse_args()
    if args.interval <= 0:
        parser.error("--interval must be positive")
    run(args.deployment_dir, poll_interval=args.interval)


if __name__ == "__main__":
    main()
