"""Client-port session binding of SPEC 13.1, without I/O: a session is bound to the client key of
its first request that passed the checks up to the signature; at most 64 bound sessions per key."""

SESSIONS_PER_KEY = 64


class ClientBindings:
    def __init__(self, per_key: int = SESSIONS_PER_KEY):
        self.per_key = per_key
        self.bound: dict[int, bytes] = {}  # link id -> client key
        self.count: dict[bytes, int] = {}  # client key -> bound sessions

    def bind(self, link_id: int, key: bytes) -> str:
        """'same' (already bound to key), 'new' (bound now) or 'full' (the key has its 64)."""
        if link_id in self.bound:
            return "same"
        n = self.count.get(key, 0)
        if n >= self.per_key:
            return "full"
        self.bound[link_id] = key
        self.count[key] = n + 1
        return "new"

    def closed(self, link_id: int) -> None:
        key = self.bound.pop(link_id, None)
        if key is None:
            return
        n = self.count[key] - 1
        if n:
            self.count[key] = n
        else:
            del self.count[key]
