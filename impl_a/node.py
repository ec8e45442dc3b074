"""Node adapter (SPEC 4): python -m impl_a.node --manifest F --node-id ID --keys DIR --data DIR [--log F]."""

from __future__ import annotations

import argparse
import asyncio
import pathlib
import signal
import sys

from impl_a.crypto import SigningKey, x25519_public
from impl_a.errors import LocalError
from impl_a.keys import read_secret
from impl_a.logs import LEVELS, Log
from impl_a.manifest import load


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m impl_a.node")
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--node-id", required=True)
    ap.add_argument("--keys", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--log")
    ap.add_argument("--log-level", default="info", choices=sorted(LEVELS))
    return ap.parse_args(argv)  # exits 2 on bad arguments


async def serve(args: argparse.Namespace, log: Log) -> int:
    from impl_a.runtime import NodeRuntime

    manifest = load(args.manifest)
    node = manifest.nodes.get(args.node_id)
    if node is None:
        raise LocalError(f"node id {args.node_id!r} is not in the manifest", 2)
    keys = pathlib.Path(args.keys)
    ed = read_secret(keys / "ed25519.key")
    xs = read_secret(keys / "x25519.key")
    if SigningKey(ed).public != node.ed25519_public:
        raise LocalError("ed25519.key does not match the manifest's ed25519_public", 3)
    if x25519_public(xs) != node.x25519_public:
        raise LocalError("x25519.key does not match the manifest's x25519_public", 3)
    rt = NodeRuntime(manifest, args.node_id, ed, xs, args.data, log)
    stop = rt.stop_event
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await rt.start()
    except OSError as exc:
        await rt.stop()
        raise LocalError(f"cannot listen: {exc}", 1) from None
    await stop.wait()
    await rt.stop()
    return 5 if rt.fatal else 0  # SPEC 4: storage failure while running


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    log = Log(args.node_id, args.log, args.log_level)
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover
        runner = asyncio.run
    try:
        return runner(serve(args, log))
    except LocalError as exc:
        log.emit("error", "startup_failed", str(exc))
        print(f"impl_a.node: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # noqa: BLE001 - last resort: report and exit 1
        log.emit("error", "internal_error", f"{type(exc).__name__}: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
