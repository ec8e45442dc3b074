"""`python -m tui [DEPLOYMENT_DIR] [--interval S]`: run the monitor (same as `heraclius-ops monitor`)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from tui.app import run


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tui", description="Heraclius monitor")
    default = Path(os.environ.get("HERACLIUS_HOME", "deployments")) / "default"
    parser.add_argument("deployment_dir", nargs="?", type=Path, default=default,
                        help=f"deployment directory holding manifest.json (default {default})")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between polls (default 1)")
    args = parser.parse_args()
    if args.interval <= 0:
        parser.error("--interval must be positive")
    run(args.deployment_dir, poll_interval=args.interval)


if __name__ == "__main__":
    main()
