"""Durable node storage on LMDB: the decision log, the view and the in-flight votes (SPEC 12.8/12.9).

Every write is one LMDB transaction committed with fsync (the environment is opened with
sync=True), so it is durable before the caller sends anything that depends on it. Each log record
carries a SHA-256 checksum: a bad last record (torn write) is dropped, a bad earlier record is fatal.
"""

import fcntl
import json
import os

import lmdb

from . import codec
from .codec import encode
from .crypto import sha256


class StorageError(Exception):
    """The data directory is unusable: locked by another process or corrupted (exit 4)."""


class StorageFailure(Exception):
    """A durable write, fsync or read failed while running (SPEC 12.8: fail-stop, exit 5)."""

    def __init__(self, op: str, text: str):
        super().__init__(f"{op}: {text}")
        self.op, self.text = op, text


def _hkey(height: int) -> bytes:
    return height.to_bytes(8, "big")


def _seal(data: bytes) -> bytes:
    return sha256(data)[:16] + data


def _unseal(rec: bytes) -> bytes | None:
    data = rec[16:]
    return data if len(rec) >= 16 and sha256(data)[:16] == rec[:16] else None


class Store:
    """One node's data directory."""

    def __init__(self, path: str, map_size: int = 1 << 32, on_failure=None):
        # on_failure(op, text) is called before StorageFailure is raised; the node's hook logs
        # `storage_failed` and exits 5 there and then (SPEC 12.8), whichever thread hit it.
        self.on_failure = on_failure
        try:
            os.makedirs(path, mode=0o700, exist_ok=True)
            self._lockfd = os.open(os.path.join(path, "LOCK"), os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as e:
            raise StorageError(f"data directory {path} unusable: {e.strerror}") from None
        try:
            fcntl.flock(self._lockfd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._lockfd)
            raise StorageError(f"data directory {path} is locked by another process") from None
        try:
            self.env = lmdb.open(os.path.join(path, "lmdb"), map_size=map_size, max_dbs=4, sync=True,
                                 metasync=True, writemap=False)
        except lmdb.Error as e:
            raise StorageError(f"cannot open LMDB in {path}: {e}") from None
        self.log = self.env.open_db(b"log")
        self.meta = self.env.open_db(b"meta")
        self.height = 0
        self.asked = 0

    def close(self) -> None:
        self.env.close()
        os.close(self._lockfd)

    # ------------------------------------------------------------ writes

    def persist(self, rec: dict) -> None:
        """Write one consensus Persist record durably."""
        self.persist_all([rec])

    def _fail(self, op: str, e: BaseException):
        text = f"{type(e).__name__}: {e}"
        if self.on_failure is not None:
            self.on_failure(op, text)
        raise StorageFailure(op, text) from None

    def persist_all(self, records: list) -> None:
        """Write Persist records durably in one transaction (one fsync), applied in list order.

        Any engine error (no space, map full, I/O) is fail-stop: the in-memory height is only
        advanced once the commit returned, and nothing here retries."""
        staged = {"height": self.height, "asked": self.asked}
        try:
            with self.env.begin(write=True) as txn:
                for rec in records:
                    self._write(txn, rec, staged)
        except (lmdb.Error, OSError) as e:
            self._fail("write", e)
        self.height, self.asked = staged["height"], staged["asked"]

    def _write(self, txn, rec: dict, staged: dict) -> None:
        if "decision" in rec:
            d = rec["decision"]
            txn.put(_hkey(d.header.height), _seal(encode(d)), db=self.log)
            staged["height"] = d.header.height
            txn.delete(b"inflight", db=self.meta)
        if "inflight" in rec:
            txn.put(b"inflight", _seal(_inflight_bytes(rec["inflight"])), db=self.meta)
        if "view" in rec:
            v, active = rec["view"]
            txn.put(b"view", _seal(json.dumps([v, active]).encode()), db=self.meta)
            if rec.get("new_view") is not None:
                txn.put(b"new_view", _seal(encode(rec["new_view"])), db=self.meta)
        if "asked" in rec:  # the highest view this node asked for (re-sent after a restart, SPEC 12.9)
            txn.put(b"asked", _seal(str(rec["asked"]).encode()), db=self.meta)
            staged["asked"] = rec["asked"]

    # ------------------------------------------------------------ reads

    def load(self) -> tuple[int, bool, list, dict, object]:
        """(view, view_active, decisions 1..h, inflight, last NewView) from disk; drops a torn last record."""
        try:
            return self._load()
        except (lmdb.Error, ValueError, KeyError) as e:
            raise StorageError(f"unreadable node state: {type(e).__name__}: {e}") from None

    def _load(self) -> tuple[int, bool, list, dict, object]:
        decisions = []
        torn = None
        with self.env.begin() as txn:
            cur = txn.cursor(db=self.log)
            expect = 1
            for k, v in cur:
                h = int.from_bytes(k, "big")
                if torn is not None:
                    raise StorageError(f"corrupted log record at height {torn}")
                data = _unseal(bytes(v))
                if h != expect or data is None:
                    torn = h
                    continue
                try:
                    decisions.append(codec.decode("Decision", data))
                except codec.DecodeError:
                    torn = h
                    continue
                expect += 1
            view, active = 0, True
            raw = txn.get(b"view", db=self.meta)
            if raw is not None:
                data = _unseal(bytes(raw))
                if data is not None:
                    view, active = json.loads(data)
            new_view = None
            raw = txn.get(b"new_view", db=self.meta)
            data = _unseal(bytes(raw)) if raw is not None else None
            if data is not None:
                new_view = codec.decode("NewView", data)
            raw = txn.get(b"asked", db=self.meta)
            data = _unseal(bytes(raw)) if raw is not None else None
            self.asked = int(data) if data is not None else 0
            inflight = {}
            raw = txn.get(b"inflight", db=self.meta)
            if raw is not None:
                data = _unseal(bytes(raw))
                if data is not None:
                    inflight = _inflight_from(data)
        if torn is not None:
            with self.env.begin(write=True) as txn:
                txn.delete(_hkey(torn), db=self.log)
        self.height = len(decisions)
        return view, active, decisions, inflight, new_view

    def decision(self, height: int):
        data = self.decision_bytes(height)
        if data is None:
            return None
        try:
            return codec.decode("Decision", data)
        except codec.DecodeError as e:
            self._fail("read", e)

    def decision_bytes(self, height: int) -> bytes | None:
        """The durable record of `height`, or None when there is none; a record that is there but
        unreadable or fails its checksum is a failed read of our own data (fatal, SPEC 12.8)."""
        try:
            with self.env.begin() as txn:
                raw = txn.get(_hkey(height), db=self.log)
                raw = bytes(raw) if raw is not None else None
        except (lmdb.Error, OSError) as e:
            self._fail("read", e)
        if raw is None:
            return None
        data = _unseal(raw)
        if data is None:
            self._fail("read", ValueError(f"checksum mismatch in the record of height {height}"))
        return data


def _inflight_bytes(inf: dict) -> bytes:
    """The in-flight record: a small JSON head, then the accepted proposal and the prepared
    certificate as raw canonical bytes (hex inside JSON cost a copy and an escape scan per write)."""
    c = inf.get("commit")
    acc = encode(inf["accepted"]) if inf.get("accepted") is not None else b""
    prep = encode(inf["prepared"]) if inf.get("prepared") is not None else b""
    head = json.dumps({
        "height": inf["height"],
        "votes": {str(v): d.hex() for v, d in inf.get("votes", {}).items()},
        "commit": [c[0].hex(), c[1].hex(), c[2]] if c else None,
        "accepted_len": len(acc), "prepared_len": len(prep),
    }).encode()
    return _INFLIGHT_V2 + len(head).to_bytes(4, "big") + head + acc + prep


_INFLIGHT_V2 = b"B2"


def _inflight_from(data: bytes) -> dict:
    if not data.startswith(_INFLIGHT_V2):
        return _inflight_from_json(data)
    n = int.from_bytes(data[2:6], "big")
    doc = json.loads(data[6:6 + n])
    pos = 6 + n
    acc = data[pos:pos + doc["accepted_len"]]
    prep = data[pos + doc["accepted_len"]:pos + doc["accepted_len"] + doc["prepared_len"]]
    if pos + doc["accepted_len"] + doc["prepared_len"] != len(data):
        raise ValueError("in-flight record length mismatch")
    c = doc.get("commit")
    return {
        "height": doc["height"],
        "votes": {int(v): bytes.fromhex(d) for v, d in doc["votes"].items()},
        "accepted": codec.decode("Proposal", acc) if acc else None,
        "prepared": codec.decode("PreparedCert", prep) if prep else None,
        "commit": (bytes.fromhex(c[0]), bytes.fromhex(c[1]), c[2]) if c else None,
    }


def _inflight_from_json(data: bytes) -> dict:
    """The in-flight record as written before the binary layout (data directories of older runs)."""
    doc = json.loads(data)
    c = doc.get("commit")
    return {
        "height": doc["height"],
        "votes": {int(v): bytes.fromhex(d) for v, d in doc["votes"].items()},
        "accepted": codec.decode("Proposal", bytes.fromhex(doc["accepted"])) if doc.get("accepted") else None,
        "prepared": codec.decode("PreparedCert", bytes.fromhex(doc["prepared"])) if doc.get("prepared") else None,
        "commit": (bytes.fromhex(c[0]), bytes.fromhex(c[1]), c[2]) if c else None,
    }
