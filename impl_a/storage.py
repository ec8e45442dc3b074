"""Durable node storage in SQLite (WAL, synchronous=FULL): the decision log and consensus metadata.

Every row carries a SHA-256 checksum. A bad checksum on the last decision (torn write) drops that
record; a bad checksum anywhere before it is fatal (exit code 4), as SPEC 12.9 requires.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pathlib
import sqlite3

from impl_a.crypto import sha256
from impl_a.errors import LocalError


class Storage:
    """One node's data directory. Holds an exclusive flock on it while open."""

    def __init__(self, data_dir: str | os.PathLike):
        self.dir = pathlib.Path(data_dir)
        try:
            self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._lock_fd = os.open(self.dir / "LOCK", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise LocalError(f"data directory unusable: {exc}", 4) from None
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._lock_fd)
            raise LocalError(f"data directory {self.dir} is locked by another process", 4) from None
        try:
            self.db = sqlite3.connect(self.dir / "node.sqlite", isolation_level=None, check_same_thread=False)
            # Only this process ever opens the database (it holds the directory's flock), so SQLite's
            # per-transaction file locks are pure cost; exclusive mode also keeps the WAL index in
            # memory instead of a shared-memory file.
            self.db.execute("PRAGMA locking_mode=EXCLUSIVE")
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("CREATE TABLE IF NOT EXISTS decisions (height INTEGER PRIMARY KEY, data BLOB NOT NULL,"
                            " sum BLOB NOT NULL)")
            self.db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, data BLOB NOT NULL,"
                            " sum BLOB NOT NULL)")
            self._check()
        except sqlite3.DatabaseError as exc:
            self.close()
            raise LocalError(f"data directory unusable: {exc}", 4) from None

    @staticmethod
    def _sum(tag: bytes, data: bytes) -> bytes:
        return sha256(tag + b"\x00" + data)[:16]

    def _check(self) -> None:
        rows = self.db.execute("SELECT height, data, sum FROM decisions ORDER BY height").fetchall()
        for i, (h, data, s) in enumerate(rows):
            if h != i + 1:
                raise LocalError(f"decision log has a gap at height {i + 1}", 4)
            if self._sum(str(h).encode(), data) != s:
                if i == len(rows) - 1:
                    self.db.execute("DELETE FROM decisions WHERE height = ?", (h,))
                else:
                    raise LocalError(f"corrupted decision record at height {h}", 4)
        for key, data, s in self.db.execute("SELECT key, data, sum FROM meta").fetchall():
            if self._sum(key.encode(), data) != s:
                self.db.execute("DELETE FROM meta WHERE key = ?", (key,))

    def write(self, decisions: list[tuple[int, bytes]], meta: list[tuple[str, bytes | None]]) -> None:
        """Atomically and durably store decisions and meta updates (None deletes a key)."""
        cur = self.db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            for h, data in decisions:
                cur.execute("INSERT OR REPLACE INTO decisions VALUES (?, ?, ?)",
                            (h, data, self._sum(str(h).encode(), data)))
            for key, data in meta:
                if data is None:
                    cur.execute("DELETE FROM meta WHERE key = ?", (key,))
                else:
                    cur.execute("INSERT OR REPLACE INTO meta VALUES (?, ?, ?)",
                                (key, data, self._sum(key.encode(), data)))
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise

    def height(self) -> int:
        row = self.db.execute("SELECT MAX(height) FROM decisions").fetchone()
        return row[0] or 0

    def decision(self, height: int) -> bytes | None:
        row = self.db.execute("SELECT data FROM decisions WHERE height = ?", (height,)).fetchone()
        return row[0] if row else None

    def decisions(self, start: int, count: int) -> list[bytes]:
        rows = self.db.execute("SELECT data FROM decisions WHERE height >= ? ORDER BY height LIMIT ?",
                               (start, count)).fetchall()
        return [r[0] for r in rows]

    def meta(self, key: str) -> bytes | None:
        row = self.db.execute("SELECT data FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.db.close()
        with contextlib.suppress(OSError):
            os.close(self._lock_fd)


class StorageFailed(Exception):
    """A durable write or read failed (SPEC 12.8): the node must stop, never carry on."""


def _raise(op: str, exc: BaseException) -> None:
    raise StorageFailed(f"{op}: {exc}") from exc


class WriteBehind:
    """Storage whose writes are staged until flush(). The driver flushes before anything leaves
    the node; every read flushes first, so nothing served can be ahead of the disk. Staging lets a
    decision share one fsync with the next vote (SPEC 12.8 only orders durability before sends).

    Every engine error goes to on_failure(op, exc) (SPEC 12.8 fail-stop: the node's driver logs
    storage_failed and exits 5 there); the default raises StorageFailed. Nothing staged is dropped
    silently: after a failure every later call fails too."""

    def __init__(self, store: Storage, on_failure=_raise):
        self.store = store
        self.on_failure = on_failure
        self.failed: str | None = None
        self._decisions: list[tuple[int, bytes]] = []
        self._meta: dict[str, bytes | None] = {}

    def _do(self, op: str, fn, *args):
        if self.failed is not None:
            self.on_failure(op, StorageFailed(f"storage already failed ({self.failed})"))
            raise StorageFailed(self.failed)
        try:
            return fn(*args)
        except (sqlite3.Error, OSError, MemoryError) as exc:
            self.failed = f"{op}: {exc}"
            self.on_failure(op, exc)
            raise StorageFailed(self.failed) from exc

    def stage(self, decisions: list[tuple[int, bytes]], meta: list[tuple[str, bytes | None]]) -> None:
        self._decisions.extend(decisions)
        self._meta.update(meta)

    def flush(self) -> None:
        if self._decisions or self._meta:
            decisions, meta = self._decisions, list(self._meta.items())
            self._decisions, self._meta = [], {}
            self._do("write", self.store.write, decisions, meta)

    def write(self, decisions: list[tuple[int, bytes]], meta: list[tuple[str, bytes | None]]) -> None:
        self.stage(decisions, meta)
        self.flush()

    def height(self) -> int:
        self.flush()
        return self._do("read", self.store.height)

    def decision(self, height: int) -> bytes | None:
        self.flush()
        return self._do("read", self.store.decision, height)

    def decisions(self, start: int, count: int) -> list[bytes]:
        self.flush()
        return self._do("read", self.store.decisions, start, count)

    def meta(self, key: str) -> bytes | None:
        self.flush()
        return self._do("read", self.store.meta, key)

    def close(self) -> None:
        if self.failed is None:
            with contextlib.suppress(Exception):
                self.flush()
        self.store.close()
