"""impl_b node process (SPEC 4 node adapter contract).

python -m impl_b.node --manifest FILE --node-id ID --keys DIR --data DIR [--log FILE] [--log-level L]
Exit codes: 0 clean stop, 1 internal error, 2 bad arguments/manifest, 3 key problem, 4 data dir,
5 storage failure while running (fail-stop, SPEC 12.8).
"""

import argparse
import os
import signal
import socket
import sys
import threading

from . import crypto, memtrim
from .admin import AdminServer
from .faults import FaultPlan
from .ioloop import IOLoop, family_of
from .logs import NodeLog
from .manifest import ManifestError, load
from .runtime import Runtime
from .storage import StorageError, StorageFailure, Store


def _listen(host: str, port: int) -> socket.socket:
    s = socket.socket(family_of(host), socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port))
    s.listen(128)
    return s


# SPEC 4 options: (flag, required, extra argparse settings)
_OPTIONS = (
    ("--manifest", True, {}), ("--node-id", True, {}), ("--keys", True, {}), ("--data", True, {}),
    ("--log", False, {}), ("--log-level", False, {"default": "info", "choices": ("debug", "info", "warning", "error")}),
)


def _parse(argv) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m impl_b.node", description="run one impl_b node")
    for flag, required, extra in _OPTIONS:
        parser.add_argument(flag, required=required, **extra)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = _parse(argv)
    memtrim.tune()  # freed client buffers go back to the system (memtrim)
    try:
        m = load(args.manifest)
    except ManifestError as e:
        print(f"invalid manifest: {e}", file=sys.stderr)
        return 2
    if args.node_id not in m.nodes:
        print(f"unknown node id {args.node_id!r}", file=sys.stderr)
        return 2
    info = m.nodes[args.node_id]
    try:
        ed = crypto.read_key_file(os.path.join(args.keys, "ed25519.key"))
        xs = crypto.read_key_file(os.path.join(args.keys, "x25519.key"))
    except crypto.KeyFileError as e:
        print(f"key file problem: {e}", file=sys.stderr)
        return 3
    signer = crypto.Signer(ed)
    if signer.public != info.ed25519 or crypto.x25519_public(xs) != info.x25519:
        print("key file problem: public key differs from the manifest", file=sys.stderr)
        return 3
    log = NodeLog(args.node_id, args.log, args.log_level)
    try:
        store = Store(args.data)
    except StorageError as e:
        log.log("error", "data_unusable", str(e))
        print(str(e), file=sys.stderr)
        return 4
    faults = FaultPlan(info.faults) if m.testbed and info.faults else None
    rt = Runtime(m, args.node_id, signer, store, log, faults)
    store.on_failure = rt.storage_failed  # SPEC 12.8: any later engine error exits 5 at once
    try:
        rt.restore()
    except StorageError as e:
        log.log("error", "data_unusable", str(e))
        print(str(e), file=sys.stderr)
        return 4
    try:
        peer_s = _listen(info.bind, info.peer_port)
        client_s = _listen(info.bind, info.client_port)
        admin_s = _listen(info.admin_bind, info.admin_port)
    except OSError as e:
        log.log("error", "bind_failed", str(e))
        print(f"cannot listen: {e}", file=sys.stderr)
        return 1
    # Default: the I/O thread also runs the consensus work (IOLoop on_round). IMPL_B_THREADED=1
    # keeps the older split into an I/O thread and a consensus thread (for comparison).
    threaded = os.environ.get("IMPL_B_THREADED") == "1"
    dial = [n for n in m.clusters[info.cluster].members if n != args.node_id]
    for c in m.other_role_clusters(info.cluster):
        dial += m.clusters[c].members
    io = IOLoop(m, args.node_id, xs, dial,
                on_peer=lambda lid, node, pm: rt.post("peer", lid, node, pm),
                on_client=lambda lid, cm: rt.post("client", lid, cm),
                on_reject=rt.log.reject,  # thread-safe: counted at once, before /status can look
                on_link=lambda node, up: rt.post("link", node, up),
                peer_sock=peer_s, client_sock=client_s, on_round=None if threaded else rt.step,
                on_closed=lambda lid: rt.post("closed", lid), backlog=lambda: len(rt.events))
    rt.io = io
    admin = AdminServer(rt, admin_s)
    stop = threading.Event()

    def on_signal(_sig, _frm):
        rt.stopping = True
        io.stop()
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if threaded:
        io.start()
    admin.start()
    log.log("info", "ready", f"node {args.node_id} ready at height {rt.replica.height}",
            height=rt.replica.height, view=rt.replica.view)
    code = 0
    prof = None
    if os.environ.get("IMPL_B_PROFILE"):  # developer aid: cProfile the consensus thread
        import cProfile
        prof = cProfile.Profile()
        prof.enable()
    try:
        if threaded:
            rt.run()
        else:
            io.run()
    except StorageFailure as e:  # normally exits in the store's hook already
        log.log("error", "storage_failed", str(e))
        code = 5
    except Exception as e:  # an internal bug: log and exit 1
        log.log("error", "internal_error", repr(e))
        code = 1
    if prof is not None:
        prof.disable()
        prof.dump_stats(os.environ["IMPL_B_PROFILE"] + f".{args.node_id}")
    io.stop()
    if threaded:
        io.join(timeout=2)
    admin.stop()
    with rt.lock:
        store.close()
    if code == 0:
        log.log("info", "stopped", "clean stop")
    else:
        log.log("error", "stopped", f"stopped after a failure (exit {code})")
    return code


if __name__ == "__main__":
    sys.exit(main())
