"""Userspace delay forwarder for `--network netns` deployments (the kernel has no netem).

Policy rules send packets that travel between two delayed regions into a TUN device; this process
reads each IPv4 packet, holds it for the one-way delay of its (source region, destination region)
pair and writes it back into the TUN device, from where the kernel routes it on (the rules match
only packets arriving from a region's veth, so a packet passes here once).

    python -m infra.testbed.delayd --tun NAME --config FILE

FILE is JSON {"prefix": "10.X", "delays": {"<r>-<s>": ms}} with region indexes; it is re-read when it
changes. Packets are released in order per pair when the delay is constant."""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import heapq
import json
import os
import select
import signal
import struct
import sys
import time
from pathlib import Path

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000


def open_tun(name: str) -> int:
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    os.set_blocking(fd, False)
    return fd


class Delays:
    def __init__(self, path: Path):
        self.path = path
        self.mtime = -1
        self.prefix = b""
        self.table: dict[tuple[int, int], float] = {}
        self.reload()

    def reload(self) -> None:
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return
        if mtime == self.mtime:
            return
        self.mtime = mtime
        cfg = json.loads(self.path.read_text())
        self.prefix = bytes(int(x) for x in cfg["prefix"].split("."))
        table = {}
        for pair, ms in cfg["delays"].items():
            a, b = (int(x) for x in pair.split("-"))
            table[(a, b)] = table[(b, a)] = ms / 1000.0
        self.table = table

    def delay(self, packet: bytes) -> float:
        if len(packet) < 20 or packet[0] >> 4 != 4:
            return 0.0
        src, dst = packet[12:16], packet[16:20]
        if src[:2] != self.prefix or dst[:2] != self.prefix:
            return 0.0
        return self.table.get((src[2], dst[2]), 0.0)


def run(tun: str, config: Path) -> int:
    fd = open_tun(tun)
    delays = Delays(config)
    heap: list[tuple[float, int, bytes]] = []
    seq = 0
    stop = False

    def on_term(*_):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    last_check = 0.0
    while not stop:
        now = time.monotonic()
        if now - last_check > 0.2:
            delays.reload()
            last_check = now
        while heap and heap[0][0] <= now:
            _, _, pkt = heapq.heappop(heap)
            with contextlib.suppress(OSError):  # e.g. no route any more: a real network drops too
                os.write(fd, pkt)
        wait = min(0.2, max(0.0, heap[0][0] - now)) if heap else 0.2
        try:
            ready, _, _ = select.select([fd], [], [], wait)
        except InterruptedError:
            continue
        if not ready:
            continue
        for _ in range(256):
            try:
                pkt = os.read(fd, 65536)
            except BlockingIOError:
                break
            seq += 1
            heapq.heappush(heap, (time.monotonic() + delays.delay(pkt), seq, pkt))
    os.close(fd)
    return 0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tun", required=True)
    p.add_argument("--config", required=True, type=Path)
    a = p.parse_args()
    sys.exit(run(a.tun, a.config))


if __name__ == "__main__":
    main()
