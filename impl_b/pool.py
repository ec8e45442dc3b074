"""The request pool of SPEC 12.5 (a mixin of Replica): client requests and request bundles (14.6)
waiting to be decided, their forwarding to the leader, the leader's choice of client inputs for a
batch (12.2) and the cleanup once the replicated state accepted them.

A pool entry is `[message, added_ms, last_forward_ms, local, oldest_since_ms]`, keyed
`(client_key, request_id)` for a ClientRequest and `("bundle", encoding)` for a RequestBundle. A
bundle is one entry and counts as its number of items towards `max_pending_requests` (`pool_items`).
`local` marks entries admitted from this member's client port: they count towards their client's
share (admission, 12.5). `oldest_since_ms` is when the entry became one of the `max_batch_inputs`
oldest entries: the censorship timer runs from then.
"""

from collections import OrderedDict, deque

from . import codec
from .actions import Send
from .codec import encode
from .rsm import WINDOW
from .schema import OP_GET

# A Forward is cut before it reaches this many bytes (max_message_bytes is at least this in practice).
FORWARD_BYTES = 4 << 20


# Room kept in a remote input besides its results (header, QC, proof, leaf fields).
RESULT_MARGIN = 256 << 10


def result_budget(limits: dict) -> int:
    """Bytes of results one decision may send to one other cluster: they come back as one remote
    input, which must fit in a batch of max_batch_bytes (SPEC 12.2)."""
    return max(limits["max_batch_bytes"] // 2, limits["max_batch_bytes"] - RESULT_MARGIN)


def worst_result(op, largest_value: int) -> int:
    """Upper bound of the ShardResult bytes one operation can produce (a GET: a whole value, at
    most the largest value any decided PUT wrote)."""
    return 96 + (largest_value if op is not None and op.kind == OP_GET else 0)


def is_bundle(msg) -> bool:
    return msg._name == "RequestBundle"


def pool_key(msg) -> tuple:
    if is_bundle(msg):
        return ("bundle", encode(msg))
    return (msg.client_key, msg.request_id)


def request_ids(msg) -> list:
    """The (client_key, request_id) of every request a pool message stands for."""
    if is_bundle(msg):
        return [(msg.client_key, it.request_id) for it in msg.items]
    return [(msg.client_key, msg.request_id)]


class RequestPoolMixin:
    """Client requests and bundles of one member (state lives on the Replica)."""

    def _init_pool(self) -> None:
        self.requests: OrderedDict = OrderedDict()  # pool_key -> [message, added, last_forward]
        self.pool_items = 0  # requests in the pool, each bundle item once
        self.forward_buf: list = []
        self.group_forwards = False  # True: requests wait in forward_buf for flush_forwards() (runtime)
        self.censored: set[bytes] = set()  # testbed fault `censor_client`: client keys never proposed
        self.local_items: dict[bytes, int] = {}  # client key -> its pooled items admitted from our port
        # The longest value a decided PUT wrote: every stored value came through this log, so no GET
        # can return more (bounds result sizes, _collect_client_inputs).
        self.largest_value = 0
        n_clients = max(1, len(self.m.clients))
        self.client_share = max(1, min(self.lim["max_batch_inputs"], self.lim["max_pending_requests"] // n_clients))

    # ------------------------------------------------------------------ intake

    def on_request(self, req, now: int) -> list:
        """A client request from the client port (the node layer validated it)."""
        self._add_request(req, now, None)
        if not self.group_forwards:
            self._flush_forward()
        return self._take()

    def on_bundle(self, bundle, now: int) -> list:
        """A request bundle from the client port (the node layer validated it)."""
        self._add_request(bundle, now, None)
        if not self.group_forwards:
            self._flush_forward()
        return self._take()

    def flush_forwards(self) -> list:
        """Send the client requests buffered since the last call to the leader in one Forward."""
        self._flush_forward()
        return self._take()

    def pool_full(self, items: int = 1) -> bool:
        """True when `items` more requests do not fit in the pool."""
        return self.pool_items + items > self.lim["max_pending_requests"]

    def admits(self, client_key: bytes, items: int = 1) -> bool:
        """SPEC 12.5 admission from the client port: the pool has room and the client stays within
        its share (checked before the signature; a bundle only if all its items fit)."""
        return not self.pool_full(items) and self.local_items.get(client_key, 0) + items <= self.client_share

    def pooled(self, msg) -> bool:
        return pool_key(msg) in self.requests

    def _add_request(self, msg, now: int, forwarded_by: str | None) -> None:
        bundle = is_bundle(msg)
        if forwarded_by is not None:
            check = self.checker.bundle_reason if bundle else self.checker.request_reason
            reason = check(msg, self.cid)
            if reason:
                self._reject(reason, forwarded_by, "forwarded bundle" if bundle else "forwarded request")
                return
        key = pool_key(msg)
        if key in self.requests or self._entry_done(msg):
            return
        n = len(msg.items) if bundle else 1
        if self.pool_full(n):
            self._reject("overloaded", forwarded_by or "client", "request pool full")
            return
        local = forwarded_by is None
        self.requests[key] = [msg, now, now, local, None]
        self.pool_items += n
        if local:
            self.local_items[msg.client_key] = self.local_items.get(msg.client_key, 0) + n
        if self.is_leader():
            self._want_batch(now)
        elif forwarded_by is None and self.view_active:
            self.forward_buf.append(msg)

    def _pool_drop(self, key) -> None:
        ent = self.requests.pop(key, None)
        if ent is not None:
            n = len(ent[0].items) if is_bundle(ent[0]) else 1
            self.pool_items -= n
            if ent[3]:
                ck = ent[0].client_key
                left = self.local_items.get(ck, 0) - n
                if left > 0:
                    self.local_items[ck] = left
                else:
                    self.local_items.pop(ck, None)

    def id_below_window(self, client_key: bytes, rid: int) -> bool:
        """True when the request id fell below the dedup window (it can never be answered)."""
        d = self.state.dedup.get(client_key)
        return d is not None and d.max_id > WINDOW and rid <= d.max_id - WINDOW

    def request_below_window(self, req) -> bool:
        return self.id_below_window(req.client_key, req.request_id)

    def _request_done(self, req) -> bool:
        d = self.state.dedup.get(req.client_key)
        return d is not None and d.seen(req.request_id)

    def _entry_done(self, msg) -> bool:
        """True when the state accepted every request of `msg` (or they fell below the floor)."""
        d = self.state.dedup.get(msg.client_key)
        if d is None:
            return False
        if is_bundle(msg):
            return all(d.seen(it.request_id) for it in msg.items)
        return d.seen(msg.request_id)

    def _flush_forward(self) -> None:
        if self.forward_buf and not self.is_leader():
            reqs, bundles, size = [], [], 0
            for msg in self.forward_buf:
                if size >= FORWARD_BYTES:
                    self._send_forward(reqs, bundles)
                    reqs, bundles, size = [], [], 0
                (bundles if is_bundle(msg) else reqs).append(msg)
                size += len(encode(msg)) + 8
            self._send_forward(reqs, bundles)
        self.forward_buf = []

    def _send_forward(self, reqs: list, bundles: list) -> None:
        self._emit(Send(self.leader, codec.PeerMessage(forward=codec.Forward(requests=reqs, bundles=bundles))))

    def _on_forward(self, sender, fwd, now, pm) -> None:
        for req in fwd.requests:
            self._add_request(req, now, sender)
        for b in fwd.bundles:
            self._add_request(b, now, sender)

    # ------------------------------------------------------------------ batching and cleanup

    def _collect_client_inputs(self, inputs: list, size: int, max_n: int, max_b: int) -> None:
        """Append client requests and bundles (SPEC 12.2), interleaving client keys (12.5): the
        oldest entries of each key in turn, keys in the order of their oldest entry. Skips decided
        entries and duplicates; a bundle sharing a request id with an earlier input waits."""
        by_key: dict[bytes, deque] = {}
        stale = []
        scanned = 0
        for key, ent in self.requests.items():
            if scanned >= 8 * max_n:  # enough candidates: one client's backlog is <= its shares
                break
            msg = ent[0]
            if self._entry_done(msg):
                stale.append(key)
                continue
            if msg.client_key in self.censored:
                continue
            scanned += 1
            by_key.setdefault(msg.client_key, deque()).append(msg)
        for key in stale:
            self._pool_drop(key)
        seen: set = set()
        # Worst-case result bytes per shard (GETs may return whole values): kept within one remote
        # input's room, or the shard's answer could never enter a batch of ours (README).
        budget, used = result_budget(self.lim), {}
        queues = list(by_key.values())
        while queues and len(inputs) < max_n:
            nxt = []
            for q in queues:
                if len(inputs) >= max_n:
                    break
                msg = q.popleft()
                ids = request_ids(msg)
                need = self._worst_results(msg)
                if any(used.get(sh, 0) and used[sh] + n > budget for sh, n in need.items()):
                    if q:
                        nxt.append(q)
                    continue  # waits for a later batch
                if not any(k in seen for k in ids):
                    for sh, n in need.items():
                        used[sh] = used.get(sh, 0) + n
                    inp = codec.Input(bundle=msg) if is_bundle(msg) else codec.Input(client=msg)
                    sz = len(encode(inp)) + 8
                    if size + sz > max_b:
                        return
                    seen.update(ids)
                    inputs.append(inp)
                    size += sz
                if q:
                    nxt.append(q)
            queues = nxt

    def _worst_results(self, msg) -> dict:
        ops = [it.op for it in msg.items] if is_bundle(msg) else [msg.op]
        need: dict = {}
        for op in ops:
            if op is not None and op.key:
                sh = self.m.shard_of(op.key)
                need[sh] = need.get(sh, 0) + worst_result(op, self.largest_value)
        return need

    def note_values(self, batch) -> None:
        """Track the longest PUT value of decided batches (called for every applied decision)."""
        for inp in batch.inputs:
            if inp.client is not None:
                ops = [inp.client.op]
            elif inp.bundle is not None:
                ops = [it.op for it in inp.bundle.items]
            else:
                continue
            for op in ops:
                if op is not None and op.kind != OP_GET and len(op.value) > self.largest_value:
                    self.largest_value = len(op.value)

    def _forget_decided(self, batch) -> None:
        """Drop the pool entries a decided batch included."""
        self.note_values(batch)
        for inp in batch.inputs:
            msg = inp.client if inp.client is not None else inp.bundle
            if msg is not None:
                self._pool_drop(pool_key(msg))

    def _scan_requests(self, now: int) -> bool:
        """Pool timers of SPEC 12.5: re-forward after request_forward; True if an entry waited
        longer than censorship. Entries the state already accepted leave the pool."""
        for key in [k for k, ent in self.requests.items() if self._entry_done(ent[0])]:
            self._pool_drop(key)
        fwd = []
        censored = False
        window = self.lim["max_batch_inputs"]  # the censorship timer runs for the oldest items only
        oldest = 0
        for ent in self.requests.values():
            if oldest < window:  # pool entries (a bundle is one), as in a batch
                oldest += 1
                if ent[4] is None:
                    ent[4] = now
                if now - ent[4] > self.t["censorship"]:
                    censored = True
            if not self.is_leader() and now - ent[2] > self.t["request_forward"]:
                ent[2] = now
                fwd.append(ent[0])
        if fwd and self.view_active:
            self.forward_buf.extend(fwd)
            self._flush_forward()
        return censored
