"""Drive a client library through its SPEC 4.1 command line (`python -m impl_x.client ...`) with
the deployment's client key: kv get/put and the workload, parsed into data."""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from infra.errors import RemoteError, UsageError
from infra.model import implementations
from infra.model.deployment import CLIENT_IDS, Deployment
from infra.model.resources import PACKAGE_ROOT

REPO_ROOT = PACKAGE_ROOT


@dataclass
class ClientResult:
    client: str
    command: list[str]
    returncode: int
    doc: dict
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and "error" not in self.doc


def client_command(dep: Deployment, client: str, args: list[str]) -> list[str]:
    if client not in CLIENT_IDS:
        raise UsageError(f"unknown client {client!r}", fix="use --client a (impl_a's library), b (impl_b's) or c (impl_c's)")
    module = dep.state.get("client_modules", {}).get(client)
    key = dep.client_key(CLIENT_IDS[client])
    return [*implementations.get(client).command("client", module),
            "--manifest", str(dep.manifest_path), "--key", str(key), *args]


def run_client(dep: Deployment, client: str, args: list[str], timeout_s: float = 30.0) -> ClientResult:
    """Run one client command; its last stdout line must be a JSON object (SPEC 4.1)."""
    cmd = client_command(dep, client, args)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, cwd=REPO_ROOT)
    except subprocess.TimeoutExpired:
        raise RemoteError(f"client {client} did not finish within {timeout_s:.0f} s: {' '.join(args)}") from None
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    try:
        doc = json.loads(lines[-1])
        if not isinstance(doc, dict):
            raise ValueError("not an object")
    except (IndexError, ValueError):
        raise RemoteError(f"client {client} printed no JSON result (exit {proc.returncode})",
                          detail=(proc.stderr or proc.stdout)[-2000:]) from None
    return ClientResult(client, cmd, proc.returncode, doc, proc.stderr)


def kv_get(dep: Deployment, key: str, client: str = "a", timeout_ms: int = 10000, hex_: bool = False) -> ClientResult:
    """GET through a client library; with hex_ the key (and the printed value) are hex."""
    flags = ["--timeout-ms", str(timeout_ms)] + (["--hex"] if hex_ else [])
    return run_client(dep, client, [*flags, "get", key], timeout_ms / 1000 + 15)


def kv_put(dep: Deployment, key: str, value: str, client: str = "a", timeout_ms: int = 10000,
           hex_: bool = False) -> ClientResult:
    flags = ["--timeout-ms", str(timeout_ms)] + (["--hex"] if hex_ else [])
    return run_client(dep, client, [*flags, "put", key, value], timeout_ms / 1000 + 15)


def workload(dep: Deployment, client: str = "a", ops: int = 200, concurrency: int = 4, keys: int = 16,
             put_ratio: float = 0.5, seed: int = 1, duration_s: float | None = None, key_prefix: str | None = None,
             history: Path | None = None, timeout_s: float = 120.0, pattern: str | None = None) -> ClientResult:
    args = ["workload", "--ops", str(ops), "--concurrency", str(concurrency), "--keys", str(keys),
            "--put-ratio", str(put_ratio), "--seed", str(seed)]
    if pattern:
        args += ["--pattern", pattern]
    if duration_s is not None:
        args += ["--duration-s", str(duration_s)]
    if key_prefix:
        args += ["--key-prefix", key_prefix]
    if history is not None:
        args += ["--history", str(history)]
    return run_client(dep, client, args, timeout_s)


def final_reads(dep: Deployment, client: str, keys: list[str], history: Path, timeout_ms: int = 10000) -> int:
    """GET each key once (after a workload) and append the reads to `history` in the SPEC 4.1
    format, as process '<client>-final', so the history check can tell lost writes. Returns how many
    reads succeeded."""
    ok = 0
    with open(history, "a") as f:
        for i, key in enumerate(keys):
            hex_key = key.encode().hex()
            t0 = time.time() * 1000
            r = kv_get(dep, hex_key, client, timeout_ms, hex_=True)
            t1 = time.time() * 1000
            ok += r.ok
            f.write(json.dumps({"process": f"{CLIENT_IDS[client]}-final", "op": "get", "key": hex_key,
                                "value": r.doc.get("value") if r.ok else None, "invoke_ms": t0,
                                "complete_ms": t1, "result": "ok" if r.ok else "fail",
                                "request_id": i + 1}) + "\n")
    return ok
