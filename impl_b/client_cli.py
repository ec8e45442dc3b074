"""Client command line of SPEC 4.1: get, put and workload (with --history)."""

import argparse
import json
import os
import sys

from . import crypto
from .client import Client, ClientFailure
from .manifest import ManifestError, load
from .workload import Workload


def _text(b: bytes | None, hexmode: bool):
    if b is None:
        return None
    return b.hex() if hexmode else b.decode("utf-8", errors="replace")


def _arg_bytes(s: str, hexmode: bool) -> bytes:
    return bytes.fromhex(s) if hexmode else s.encode("utf-8")


def _single(c: Client, args) -> int:
    key = _arg_bytes(args.op_key, args.hex)
    try:
        ans = c.get(key) if args.command == "get" else c.put(key, _arg_bytes(args.value, args.hex))
    except ClientFailure as e:
        print(json.dumps({"op": args.command, "error": str(e)}))
        return 1
    print(json.dumps({"op": ans.op, "key": _text(ans.key, args.hex), "found": ans.found,
                      "value": _text(ans.value, args.hex), "cluster": ans.cluster, "height": ans.height,
                      "node": ans.node, "shard": ans.shard, "shard_height": ans.shard_height}))
    return 0


# workload options of SPEC 4.1: (flag, type, default)
_WORKLOAD_OPTIONS = (("--ops", int, None), ("--concurrency", int, 8), ("--keys", int, 16), ("--put-ratio", float, 0.5),
                     ("--seed", int, 0), ("--duration-s", float, None), ("--key-prefix", str, "k"),
                     ("--key-bytes", int, None), ("--pattern", str, "uniform"), ("--history", str, None),
                     ("--samples", str, None))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m impl_b.client")
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--cluster")
    ap.add_argument("--timeout-ms", type=int, default=10000)
    ap.add_argument("--hex", action="store_true")
    commands = ap.add_subparsers(dest="command", required=True)
    for name, positionals in (("get", ("op_key",)), ("put", ("op_key", "value"))):
        cmd = commands.add_parser(name)
        for pos in positionals:
            cmd.add_argument(pos, metavar=pos.replace("op_", "").upper())
    wl = commands.add_parser("workload")
    for flag, typ, default in _WORKLOAD_OPTIONS:
        wl.add_argument(flag, type=typ, default=default)
    wl.add_argument("--preload", action="store_true")
    args = ap.parse_args(argv)
    try:
        m = load(args.manifest)
        signer = crypto.Signer(crypto.read_key_file(args.key))
    except (ManifestError, crypto.KeyFileError) as e:
        print(json.dumps({"op": args.command, "error": str(e)}))
        return 2
    if args.cluster and args.cluster not in m.coordinators:
        print(json.dumps({"op": args.command, "error": f"{args.cluster} is not a coordinator cluster"}))
        return 2
    name = os.path.splitext(os.path.basename(args.key))[0]
    if args.command == "workload":
        if args.ops is None and not args.preload:
            print(json.dumps({"op": "workload", "error": "--ops is required (unless --preload)"}))
            return 2
        if args.pattern not in ("uniform", "payments") or (args.key_bytes is not None and not 1 <= args.key_bytes <= 32):
            print(json.dumps({"op": "workload", "error": "bad --pattern or --key-bytes"}))
            return 2
        summary = Workload(m, signer, args, name).run()
        print(json.dumps(summary))
        return 0 if summary["failed"] == 0 and summary["ops"] > 0 else 1
    c = Client(m, signer, cluster=args.cluster, timeout_ms=args.timeout_ms)
    try:
        return _single(c, args)
    finally:
        c.close()


if __name__ == "__main__":
    sys.exit(main())
