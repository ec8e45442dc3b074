"""heraclius-ops: thin click commands over the infra library (tables and progress with rich).

Each command calls library functions that return data (infra.ops, infra.status, infra.testbed,
infra.nodes.client) and only renders it; errors map to exit codes in `main`:
0 ok, 1 a node or client misbehaved or an operation failed, 2 local misuse (with a `fix:` line);
`status` also exits 3 (degraded or at-risk) and 4 (stalled)."""

from __future__ import annotations

import importlib.metadata
import sys

import click

from infra.bench.cli import bench_cmd
from infra.cli.common import err
from infra.cli.deploy import deploy, destroy, list_cmd, plan
from infra.cli.fault import fault
from infra.cli.inspect import check_history_cmd, check_logs_cmd, logs, status
from infra.cli.kv import kv, workload_cmd
from infra.cli.monitor import monitor
from infra.errors import OpsError, RemoteError, UsageError


def version() -> str:
    try:
        return importlib.metadata.version("heraclius")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version(), "-V", "--version", prog_name="heraclius-ops", message="%(prog)s %(version)s")
def cli():
    """Deploy, inspect and break Heraclius test networks."""


for _cmd in (deploy, plan, status, list_cmd, kv, workload_cmd, check_history_cmd, check_logs_cmd, fault, logs,
             destroy, monitor, bench_cmd):
    cli.add_command(_cmd)


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="heraclius-ops", standalone_mode=False)
    except click.exceptions.Abort:
        err.print("aborted")
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except UsageError as e:
        err.print(e.render(), markup=False)
        sys.exit(2)
    except RemoteError as e:
        err.print(e.render(), markup=False)
        sys.exit(1)
    except OpsError as e:
        err.print(e.render(), markup=False)
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
