"""Long-lived `--serve` adapters (SPEC 17.1), one per implementation, driven as black boxes.

`Adapter.ask_many` writes a chunk of requests (pipelined: the adapter answers in order, one line
each) and reads the answers, waiting at most `timeout` seconds for each next line. An adapter that
exits, closes its output, prints a line that is not a JSON object, answers with the wrong `id` or
stays silent past the timeout has failed on the first request it did not answer: that is recorded
as a `Failure` of the implementation (with the input), the process is killed and started again, and
the rest of the chunk is sent to the new process. A reader thread drains stdout into a queue, so no
write can deadlock and waiting is a blocking `Queue.get` with a timeout (no sleeps).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from infra.model import implementations

ROOT = Path(__file__).resolve().parents[2]
_EOF = object()
RAW = object()


@dataclass
class Failure:
    implementation: str
    kind: str          # "died", "hung", "bad output", "wrong id"
    request: dict
    detail: str


class Adapter:
    def __init__(self, name: str, argv: list[str], timeout: float = 10.0, fail_limit: int = 3):
        self.name = name
        self.argv = list(argv)
        self.timeout = timeout
        self.failures: list[Failure] = []
        self.restarts = 0
        self.proc: subprocess.Popen | None = None
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the adapter
        self._lines: queue.Queue = queue.Queue()
        self._next_id = 0
        # after fail_limit failures on one op the op is no longer sent (answers None): one hanging op
        # must not cost a timeout for every input of the run
        self.fail_limit = fail_limit
        self.op_failures: dict[str, int] = {}
        self.given_up: set[str] = set()
        self.answered = 0          # lines answered over all processes
        self.absent = False        # died fail_limit times without ever answering: no adapter at all

    # ------------------------------------------------------------ process

    def start(self) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONHASHSEED="0")
        self._stderr.seek(0)
        self._stderr.truncate()
        self.proc = subprocess.Popen(self.argv + ["--serve"], cwd=ROOT, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._stderr, env=env)
        self._lines = queue.Queue()
        self._writes = queue.Queue()
        threading.Thread(target=self._read, args=(self.proc.stdout, self._lines), daemon=True).start()
        threading.Thread(target=self._write, args=(self.proc.stdin, self._writes), daemon=True).start()

    @staticmethod
    def _write(stream, writes: queue.Queue) -> None:
        # a separate writer: a hung adapter that stops reading cannot block the tester (kill unblocks it)
        while (data := writes.get()) is not _EOF:
            try:
                stream.write(data)
                stream.flush()
            except (OSError, ValueError):
                return
        with contextlib.suppress(OSError):
            stream.close()

    @staticmethod
    def _read(stream, lines: queue.Queue) -> None:
        try:
            for raw in iter(stream.readline, b""):
                lines.put(raw)
        except (OSError, ValueError):
            pass
        lines.put(_EOF)

    def stderr_tail(self, limit: int = 2000) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace")[-limit:]

    def kill(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(OSError):
            self.proc.kill()
        self.proc.wait()
        self._writes.put(_EOF)
        with contextlib.suppress(OSError):
            self.proc.stdout.close()
        self.proc = None

    def close(self) -> None:
        """End of input: the adapter must exit 0 (SPEC 17.1); returns its exit code (None if killed)."""
        if self.proc is None:
            return
        self._writes.put(_EOF)
        try:
            code = self.proc.wait(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            code = None
        self.kill()
        self._stderr.close()
        return code

    # ------------------------------------------------------------ requests

    def _fail(self, kind: str, request: dict, detail: str) -> None:
        tail = self.stderr_tail()
        self.failures.append(Failure(self.name, kind, request, detail + (f"\nstderr: {tail}" if tail else "")))
        op = str(request.get("op"))
        self.op_failures[op] = self.op_failures.get(op, 0) + 1
        if self.op_failures[op] >= self.fail_limit:
            self.given_up.add(op)
        self.kill()
        self.restarts += 1
        if self.answered == 0 and self.restarts >= self.fail_limit:
            self.absent = True

    def ask(self, request: dict) -> dict | None:
        return self.ask_many([request])[0]

    def ask_many(self, requests: list[dict]) -> list[dict | None]:
        """Answers in order; None for a request the adapter failed on (recorded in `failures`) or
        whose op it has given up on."""
        answers: list[dict | None] = [None] * len(requests)
        pending = list(range(len(requests)))
        while pending and not self.absent:
            pending = [i for i in pending if requests[i].get("op") not in self.given_up]
            if not pending:
                break
            if self.proc is None:
                self.start()
            ids = []
            lines = []
            for i in pending:
                self._next_id += 1
                r = requests[i]
                if "__raw__" in r:  # a raw line (SPEC 17.1 JSON-lines strictness); its answer keeps its id
                    ids.append(RAW)
                    lines.append(r["__raw__"].encode("utf-8", "surrogateescape") + b"\n")
                    continue
                ids.append(self._next_id)
                lines.append(json.dumps({"id": self._next_id, **r}, separators=(",", ":")).encode() + b"\n")
            self._writes.put(b"".join(lines))
            got = 0
            for want, i in zip(ids, pending, strict=True):
                if not self._answer(want, requests[i], answers, i):
                    break
                got += 1
            else:
                return answers
            pending = pending[got + 1:]  # the rest go to a fresh process
        return answers

    def _answer(self, want: int, r: dict, answers: list, i: int) -> bool:
        try:
            raw = self._lines.get(timeout=self.timeout)
        except queue.Empty:
            self._fail("hung", r, f"no answer within {self.timeout} s")
            return False
        if raw is _EOF:
            try:
                code = self.proc.wait(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                code = None
            self._fail("died", r, f"output closed (exit code {code})")
            return False
        try:
            ans = json.loads(raw)
        except ValueError:
            self._fail("bad output", r, f"not JSON: {raw[:300]!r}")
            return False
        if not isinstance(ans, dict):
            self._fail("bad output", r, f"not a JSON object: {raw[:300]!r}")
            return False
        if want is RAW:
            answers[i] = ans
            self.answered += 1
            return True
        if ans.get("id") != want:
            self._fail("wrong id", r, f"answer id {ans.get('id')!r}, expected {want}")
            return False
        ans.pop("id")
        answers[i] = ans
        self.answered += 1
        return True


def registry_adapters(timeout: float = 10.0) -> tuple[list[Adapter], dict[str, str]]:
    """An adapter per runnable implementation of the registry, and why the others cannot run."""
    missing = {i.name: i.missing() for i in implementations.IMPLEMENTATIONS.values() if i.missing()}
    return [Adapter(i.name, i.command("conformance"), timeout) for i in implementations.runnable()], missing
