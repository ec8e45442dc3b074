"""Region network emulation with Linux network namespaces (root only, `--network netns`).

Each region r gets a namespace `hx<tag>-r<r>` joined to the root namespace by a veth pair; its nodes
listen on 10.<X>.<r>.<k> (the region side of the veth), the root side is 10.<X>.<r>.254 and routes
between regions (net.ipv4.ip_forward=1). A partition is a pair of `ip rule ... blackhole` policy
rules per region pair in the root namespace, so packets between the two sides are silently dropped
while the operator (in the root namespace) still reaches every node. Latency: this kernel has no
netem qdisc, so packets between regions with a delay are routed through a TUN device served by
`infra.testbed.delayd` (policy rules `iif <region veth> from <region> to <other region> lookup <table>`)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from infra.errors import UsageError
from infra.model.resources import PACKAGE_ROOT
from infra.nodes import process

RULE_PREF = 1200
DELAY_PREF = 1100


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
    if check and proc.returncode != 0:
        raise UsageError(f"`ip {' '.join(args)}` failed: {proc.stderr.strip()}")
    return proc


def available() -> tuple[bool, str]:
    if os.geteuid() != 0:
        return False, "network namespaces need root (run as root or use --network loopback)"
    if not shutil.which("ip"):
        return False, "the `ip` command (iproute2) is not installed (apt-get install iproute2)"
    return True, "ok"


def _used_second_octets() -> set[int]:
    text = _ip("-o", "addr").stdout + _ip("route").stdout
    used = set()
    for word in text.split():
        parts = word.split("/")[0].split(".")
        if len(parts) == 4 and parts[0] == "10" and parts[1].isdigit():
            used.add(int(parts[1]))
    return used


def plan_layout(root: Path, regions: list[str]) -> dict:
    """Pick a free 10.X.0.0/16 and names for a deployment at `root`."""
    ok, why = available()
    if not ok:
        raise UsageError(f"--network netns is unavailable: {why}")
    tag = hashlib.sha256(str(root).encode()).hexdigest()[:4]
    used = _used_second_octets()
    # start at a tag-dependent offset so that deployments created at the same moment rarely race
    # for the same range (the check above and the `ip addr add` in setup are not atomic)
    start = int(tag, 16) % 55
    free = [200 + (start + i) % 55 for i in range(55) if 200 + (start + i) % 55 not in used]
    if not free:
        raise UsageError("no free 10.X.0.0/16 range for the region networks (200..254 all in use)")
    existing = set(_ip("netns", "list").stdout.split())
    regs = {}
    for i, name in enumerate(regions, 1):
        ns = f"hx{tag}-r{i}"
        if ns in existing:
            raise UsageError(f"network namespace {ns} already exists",
                             fix=f"remove the old deployment, or `ip netns del {ns}` if it is a leftover")
        regs[name] = {"index": i, "ns": ns, "veth": f"hx{tag}r{i}"}
    return {"prefix": f"10.{free[0]}", "tag": tag, "regions": regs, "partitions": [],
            "tun": f"hx{tag}t", "table": 1000 + int(tag, 16) % 30000, "delays": {}, "delayd_pid": None}


def host(layout: dict, region: str, k: int) -> str:
    return f"{layout['prefix']}.{layout['regions'][region]['index']}.{k + 1}"


def setup(layout: dict, hosts: dict[str, list[str]]) -> None:
    """Create namespaces, veths, addresses and routes. `hosts[region]` = addresses of its nodes."""
    Path("/proc/sys/net/ipv4/ip_forward").write_text("1\n")
    p = layout["prefix"]
    try:
        for region, r in layout["regions"].items():
            ns, veth, i = r["ns"], r["veth"], r["index"]
            _ip("netns", "add", ns)
            _ip("link", "add", f"{veth}a", "type", "veth", "peer", "name", f"{veth}b", "netns", ns)
            _ip("addr", "add", f"{p}.{i}.254/24", "dev", f"{veth}a")
            _ip("link", "set", f"{veth}a", "up")
            _ip("-n", ns, "link", "set", "lo", "up")
            for addr in hosts.get(region, []):
                _ip("-n", ns, "addr", "add", f"{addr}/24", "dev", f"{veth}b")
            _ip("-n", ns, "link", "set", f"{veth}b", "up")
            _ip("-n", ns, "route", "add", "default", "via", f"{p}.{i}.254")
    except BaseException:
        teardown(layout)
        raise


def teardown(layout: dict) -> None:
    """Remove partitions, delays and namespaces (their veths go with them). Idempotent."""
    heal(layout)
    for pair in list(layout.get("delays", {})):
        for rule in _delay_rules(layout, *pair.split("|")):
            _ip("rule", "del", *rule, check=False)
    layout["delays"] = {}
    stop_delayd(layout)
    if layout.get("tun"):
        _ip("route", "flush", "table", str(layout["table"]), check=False)
        _ip("tuntap", "del", "dev", layout["tun"], "mode", "tun", check=False)
    for r in layout["regions"].values():
        _ip("netns", "del", r["ns"], check=False)
        _ip("link", "del", f"{r['veth']}a", check=False)


def wrap(layout: dict, region: str, command: list[str]) -> list[str]:
    return ["ip", "netns", "exec", layout["regions"][region]["ns"], *command]


def _rules(layout: dict, a: str, b: str) -> list[list[str]]:
    p = layout["prefix"]
    ia, ib = layout["regions"][a]["index"], layout["regions"][b]["index"]
    return [["from", f"{p}.{ia}.0/24", "to", f"{p}.{ib}.0/24", "blackhole", "pref", str(RULE_PREF)],
            ["from", f"{p}.{ib}.0/24", "to", f"{p}.{ia}.0/24", "blackhole", "pref", str(RULE_PREF)]]


def partition(layout: dict, side: list[str]) -> list[list[str]]:
    """Cut the regions in `side` off from all other regions. Returns the region pairs now cut."""
    unknown = [r for r in side if r not in layout["regions"]]
    if unknown:
        raise UsageError(f"unknown region(s) {', '.join(unknown)}", fix=f"use: {', '.join(layout['regions'])}")
    others = [r for r in layout["regions"] if r not in side]
    if not others:
        raise UsageError("a partition needs regions on both sides")
    added = []
    for a in side:
        for b in others:
            pair = sorted([a, b])
            if pair in layout["partitions"]:
                continue
            for rule in _rules(layout, a, b):
                _ip("rule", "add", *rule)
            layout["partitions"].append(pair)
            added.append(pair)
    return added


def heal(layout: dict) -> list[list[str]]:
    healed = list(layout.get("partitions", []))
    for a, b in healed:
        for rule in _rules(layout, a, b):
            _ip("rule", "del", *rule, check=False)
    layout["partitions"] = []
    return healed


# --- latency through infra.testbed.delayd --------------------------------------------------------------

def _delay_rules(layout: dict, a: str, b: str) -> list[list[str]]:
    p, t = layout["prefix"], str(layout["table"])
    ra, rb = layout["regions"][a], layout["regions"][b]
    return [["iif", f"{ra['veth']}a", "from", f"{p}.{ra['index']}.0/24", "to", f"{p}.{rb['index']}.0/24",
             "lookup", t, "pref", str(DELAY_PREF)],
            ["iif", f"{rb['veth']}a", "from", f"{p}.{rb['index']}.0/24", "to", f"{p}.{ra['index']}.0/24",
             "lookup", t, "pref", str(DELAY_PREF)]]


def _delayd_marker(layout: dict) -> str:
    return f"--tun {layout['tun']} "


def start_delayd(layout: dict, config: Path, log: Path) -> None:
    """Create the TUN device, start the forwarder on it and route the delay table into it."""
    if layout.get("delayd_pid") and process.is_alive(layout["delayd_pid"], _delayd_marker(layout)):
        return
    _ip("tuntap", "add", "dev", layout["tun"], "mode", "tun", check=False)
    Path(f"/proc/sys/net/ipv4/conf/{layout['tun']}/rp_filter").write_text("0\n")
    _write_delay_config(layout, config)
    pid = process.spawn([sys.executable, "-m", "infra.testbed.delayd", "--tun", layout["tun"], "--config", str(config)],
                        log, cwd=PACKAGE_ROOT)
    layout["delayd_pid"] = pid
    _ip("link", "set", layout["tun"], "up")
    _ip("route", "replace", "default", "dev", layout["tun"], "table", str(layout["table"]))


def stop_delayd(layout: dict) -> None:
    if layout.get("delayd_pid"):
        process.stop(layout["delayd_pid"], _delayd_marker(layout), grace=2.0)
        layout["delayd_pid"] = None


def _write_delay_config(layout: dict, config: Path) -> None:
    idx = {name: r["index"] for name, r in layout["regions"].items()}
    delays = {}
    for key, ms in layout["delays"].items():
        a, b = key.split("|")
        delays[f"{idx[a]}-{idx[b]}"] = ms
    tmp = config.with_suffix(".tmp")
    tmp.write_text(json.dumps({"prefix": layout["prefix"], "delays": delays}))
    tmp.replace(config)


def set_delay(layout: dict, a: str, b: str, ms: int, config: Path, log: Path) -> None:
    """One-way delay of `ms` between regions a and b (both directions); 0 removes it."""
    for r in (a, b):
        if r not in layout["regions"]:
            raise UsageError(f"unknown region {r}", fix=f"use: {', '.join(layout['regions'])}")
    if a == b:
        raise UsageError("a delay needs two different regions (traffic inside a region is never delayed)")
    if not 0 <= ms <= 10000:
        raise UsageError(f"delay {ms} ms out of range", fix="use 0 to 10000")
    a, b = sorted([a, b])
    key = f"{a}|{b}"
    if ms and not layout.get("delayd_pid"):
        start_delayd(layout, config, log)
    had = key in layout["delays"]
    if ms:
        layout["delays"][key] = ms
    else:
        layout["delays"].pop(key, None)
    _write_delay_config(layout, config)
    if ms and not had:
        for rule in _delay_rules(layout, a, b):
            _ip("rule", "add", *rule)
    elif not ms and had:
        for rule in _delay_rules(layout, a, b):
            _ip("rule", "del", *rule, check=False)
