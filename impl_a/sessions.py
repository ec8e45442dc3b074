"""SPEC 13.1 client-port session bookkeeping, free of I/O: which sessions exist, which are bound to
a client key, which to close when a limit is reached. The client port acts on its answers."""

from __future__ import annotations

from collections import OrderedDict

HANDSHAKES = 64  # connections in the handshake phase, per port (peer, client); the oldest makes room
SESSIONS = 1024  # established client-port sessions
UNBOUND = 64  # client-port sessions not yet bound to a client key
UNBOUND_IDLE_S = 10.0
PER_KEY = 64  # sessions bound to one client key
MAX_CLIENT_MESSAGE = 262160  # max_client_message_bytes
READ_BUFFER = 32 << 20  # bytes read from client connections and not yet handled, per node
QUEUED_PAUSE = 1 << 20  # stop reading a connection whose queued replies pass this
QUEUED_CLOSE = 4 << 20  # close it past this
QUEUED_NODE = 16 << 20  # queued to all client connections
STALLED_S = 10.0  # over QUEUED_PAUSE queued and nothing taken for this long: closed (errata AD-6)
MESSAGES_PER_TURN = 16  # messages handled from one connection before the others get a turn


class Session:
    """One established client-port connection."""

    __slots__ = ("conn", "key", "last", "closing", "taken", "taken_at")

    def __init__(self, conn, now: float):
        self.conn = conn
        self.key: bytes | None = None
        self.last = now
        self.closing: str | None = None
        self.taken = 0  # bytes the client had taken when last seen taking some (errata AD-6)
        self.taken_at = now

    def stalled(self, queued: int, taken: int, now: float) -> bool:
        """True when over QUEUED_PAUSE bytes are queued and the client took none for STALLED_S."""
        if taken != self.taken or queued <= QUEUED_PAUSE:
            self.taken, self.taken_at = taken, now
            return False
        return now - self.taken_at >= STALLED_S


class SessionTable:
    def __init__(self) -> None:
        self.all: set[Session] = set()
        self.unbound: OrderedDict[Session, None] = OrderedDict()
        self.per_key: dict[bytes, int] = {}
        self.read_bytes = 0

    def full(self) -> bool:
        return len(self.all) >= SESSIONS

    def open(self, conn, now: float) -> tuple[Session, Session | None]:
        """Register a new session; returns it and the oldest unbound session to close, if the
        unbound limit is now exceeded."""
        s = Session(conn, now)
        self.all.add(s)
        self.unbound[s] = None
        evict = None
        if len(self.unbound) > UNBOUND:
            evict = next(iter(self.unbound))
            self.unbound.pop(evict)
            evict.closing = "connection_limit"
        return s, evict

    def bind(self, s: Session, key: bytes) -> bool:
        """Bind s to key (its first request that passed the signature check); False if key already
        has PER_KEY bound sessions (s must be answered OVERLOADED and closed)."""
        if s.key is not None:
            return s.key == key
        if self.per_key.get(key, 0) >= PER_KEY:
            return False
        s.key = key
        self.per_key[key] = self.per_key.get(key, 0) + 1
        self.unbound.pop(s, None)
        return True

    def close(self, s: Session) -> None:
        if s not in self.all:
            return
        self.all.discard(s)
        self.unbound.pop(s, None)
        if s.key is not None:
            left = self.per_key.get(s.key, 0) - 1
            if left > 0:
                self.per_key[s.key] = left
            else:
                self.per_key.pop(s.key, None)

    def idle_unbound(self, now: float) -> list[Session]:
        """Unbound sessions with no message for UNBOUND_IDLE_S (to close, slow_peer)."""
        out = []
        for s in self.unbound:
            if now - s.last >= UNBOUND_IDLE_S:
                out.append(s)
        return out

    @staticmethod
    def over_queued(queued: list[tuple[int, Session]]) -> list[Session]:
        """Given (queued bytes, session) pairs: the sessions to close, largest first, until the total
        is within QUEUED_NODE (each one over QUEUED_CLOSE is closed in any case)."""
        total = sum(q for q, _ in queued)
        out = []
        for q, s in sorted(queued, key=lambda p: -p[0]):
            if q > QUEUED_CLOSE or total > QUEUED_NODE:
                out.append(s)
                total -= q
            else:
                break
        return out
