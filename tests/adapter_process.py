"""A SPEC 17.1 differential adapter (`<conformance command> --serve`) as a real process, for the tests
of each implementation's adapter: send one JSON line, read exactly one answer line."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class AdapterProcess:
    def __init__(self, command: list[str]):
        self.proc = subprocess.Popen([*command, "--serve"], cwd=ROOT, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.n = 0

    def raw(self, line: bytes) -> dict:
        """Send one line (a newline is added) and read exactly one answer line."""
        self.proc.stdin.write(line + b"\n")
        self.proc.stdin.flush()
        out = self.proc.stdout.readline()
        assert out.endswith(b"\n"), f"no answer to {line[:200]!r}"
        return json.loads(out)

    def ask(self, op: str, **fields) -> dict:
        self.n += 1
        got = self.raw(json.dumps({"id": self.n, "op": op, **fields}).encode())
        assert got["id"] == self.n, got
        return got

    __call__ = ask

    def ok(self, op: str, **fields) -> dict:
        got = self.ask(op, **fields)
        assert got["ok"] is True, (op, got)
        return got

    def close(self, timeout: float = 20) -> int:
        """End of input: the adapter must exit 0 having written nothing more."""
        self.proc.stdin.close()
        code = self.proc.wait(timeout=timeout)
        assert self.proc.stdout.read() == b""
        return code
