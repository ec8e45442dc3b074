"""The node's I/O thread: one `selectors` loop for the peer and client ports and outbound links.

Other threads talk to it through thread-safe `send_node` / `send_conn` / `close_conn` calls that
queue a command and wake the loop. Received messages are decoded here (so a non-canonical message
closes its link at once) and handed to callbacks that must be quick (they enqueue work).

With `on_round`, the loop also drives the consensus work itself: after each select round it calls
on_round() (which handles the queued events and timers and returns the ms until it is due again)
and sends what it queued. One thread then handles a message from socket to reply without a wake-up
byte, an Event or a GIL hand-off per message, which was most of a decision's fixed CPU cost.
"""

import collections
import contextlib
import errno
import itertools
import selectors
import socket
import threading
import time

from . import codec, limits, memtrim
from .codec import encode
from .limits import HANDSHAKE_DEADLINE, MESSAGE1_DEADLINE
from .session import LinkError, Session, client_hello_checker, peer_hello_checker


def family_of(host: str) -> int:
    """AF_INET6 for an IPv6 literal, else AF_INET (names resolve to IPv4)."""
    return socket.AF_INET6 if ":" in host else socket.AF_INET


class Link:
    """One TCP connection with its Noise session."""

    _ids = itertools.count(1)

    def __init__(self, sock, session: Session, kind: str, outbound_to: str | None = None):
        self.id = next(self._ids)
        self.sock = sock
        self.session = session
        self.kind = kind  # "peer" or "client"
        self.outbound_to = outbound_to
        self.connecting = outbound_to is not None
        self.started = time.monotonic()
        self.pending: list[bytes] = []
        self.pending_bytes = 0  # client port: bytes in pending
        self.closed = False
        self.closing = False  # close once what is queued is sent (e.g. after a final ClientError)
        self.linger_until = 0.0  # lingering close (SPEC 13.1, AD-7): sent, shut down, reading off until then
        self.linger_left = 0  # bytes still read and discarded before the close
        self.mask = 0  # selector events registered now (0: not registered)
        self.bound = False  # client port: bound to a client key (SPEC 13.1)
        self.last_rx = self.started
        self.last_tx = self.started  # last time queued output went out (or there was none)
        self.rbytes = 0  # client port: buffered partial input counted in IOLoop.client_rbytes
        self.qbytes = 0  # client port: queued output counted in IOLoop.client_qbytes

    @property
    def node(self) -> str | None:
        return self.session.remote_node


class IOLoop(threading.Thread):
    """Selector loop. Callbacks: on_peer(link_id, node_id, PeerMessage), on_client(link_id,
    ClientMessage), on_reject(reason, peer, detail), on_link(node_id, up), on_closed(link_id) for a
    client-port link; backlog() is the number of events the consensus step has not handled yet.

    It enforces the connection limits of SPEC 13.1 (handshake slots, client sessions, unbound
    sessions, read and queued bytes) and reads connections fairly: at most CLIENT_READ_CHUNK bytes
    of one client connection per round, and no client reads while the consensus backlog is long."""

    def __init__(self, manifest, me, x25519_secret: bytes, dial: list[str], on_peer, on_client, on_reject,
                 on_link, peer_sock, client_sock, on_round=None, on_closed=None, backlog=None):
        super().__init__(name="impl_b-io", daemon=True)
        self.on_round = on_round
        self._ident = None  # thread running the loop: its own sends need no wake-up byte
        self.m = manifest
        self.me = me
        self._secret = x25519_secret
        self.dial_nodes = dial
        self.on_peer, self.on_client, self.on_reject, self.on_link = on_peer, on_client, on_reject, on_link
        self.on_closed = on_closed or (lambda link_id: None)
        self.backlog = backlog or (lambda: 0)
        self.client_ready: set[int] = set()  # established client-port sessions
        self.unbound: collections.OrderedDict = collections.OrderedDict()  # link id -> Link, oldest first
        self.paused: set = set()  # client links not read for now (backpressure)
        self.client_rbytes = 0
        self.client_qbytes = 0
        self._last_idle_scan = 0.0
        self.sel = selectors.DefaultSelector()
        self.links: dict[int, Link] = {}
        self.handshaking: dict[int, Link] = {}  # links whose handshake deadline _expire watches
        # Inbound handshakes per port, oldest first: 64 slots each, the oldest goes for a new one (AD-3).
        self.hs_slots: dict[str, collections.OrderedDict] = {
            "peer": collections.OrderedDict(), "client": collections.OrderedDict()}
        self.lingering: dict[int, Link] = {}  # links in their lingering close
        self.releases = memtrim.Releases()  # buffers of closed client links: trim the heap after them
        self.out_links: dict[str, Link] = {}
        self.backoff: dict[str, float] = {n: 0.1 for n in dial}
        self.next_dial: dict[str, float] = {n: 0.0 for n in dial}
        self.cmds: collections.deque = collections.deque()
        self._wake_pending = False
        self._wr, self._ww = socket.socketpair()
        self._wr.setblocking(False)
        self._ww.setblocking(False)
        self.sel.register(self._wr, selectors.EVENT_READ, ("wake", None))
        for s, kind in ((peer_sock, "peer"), (client_sock, "client")):
            s.setblocking(False)
            self.sel.register(s, selectors.EVENT_READ, ("listen", kind))
        self.stopping = False
        self.maxmsg = manifest.limits["max_message_bytes"]
        # One receive buffer for every link: recv(n) allocates (and with a large n maps) n bytes per call.
        self._rbuf = bytearray(262144)
        self._rview = memoryview(self._rbuf)

    # ------------------------------------------------------------ thread-safe API

    def _wake(self) -> None:
        # One pending wake-up byte is enough; skipping the rest avoids a GIL hand-off per send. The
        # loop's own thread (on_round) needs none: the round ends by running the queued commands.
        if self._wake_pending or self._ident == threading.get_ident():
            return
        self._wake_pending = True
        with contextlib.suppress(OSError):
            self._ww.send(b"x")

    def send_node(self, node: str, data: bytes) -> None:
        self.cmds.append(("node", node, data))
        self._wake()

    def send_conn(self, link_id: int, data: bytes) -> None:
        self.cmds.append(("conn", link_id, data))
        self._wake()

    def close_conn(self, link_id: int, flush: bool = False) -> None:
        """Close a connection; with flush, once what was queued for it before is sent."""
        self.cmds.append(("flush_close" if flush else "close", link_id, None))
        self._wake()

    def mark_bound(self, link_id: int) -> None:
        """The runtime bound this client session to a key (SPEC 13.1): no longer 'unbound'."""
        self.cmds.append(("bound", link_id, None))
        self._wake()

    def connected(self, node: str) -> bool:
        lk = self.out_links.get(node)
        return lk is not None and lk.session.ready

    def stop(self) -> None:
        self.stopping = True
        self._wake()

    def limits_status(self) -> dict:
        """SPEC 13.1 accounting for /status (impl_b_debug); read without a lock (plain ints)."""
        return {"client_sessions": len(self.client_ready), "unbound_sessions": len(self.unbound),
                "handshaking": len(self.handshaking), "lingering": len(self.lingering),
                "heap_trims": self.releases.trims, "client_read_bytes": self.client_rbytes,
                "client_queued_bytes": self.client_qbytes, "paused_links": len(self.paused)}

    # ------------------------------------------------------------ loop

    def run(self) -> None:
        self._ident = threading.get_ident() if self.on_round is not None else None
        timeout = 0.05
        while not self.stopping:
            now = time.monotonic()
            self._dial_due(now)
            for key, mask in self.sel.select(timeout=timeout):
                tag, arg = key.data
                if tag == "wake":
                    try:
                        while self._wr.recv(4096):
                            pass
                    except OSError:
                        pass
                elif tag == "listen":
                    self._accept(key.fileobj, arg)
                else:
                    self._io(arg, mask)
            # Clear the flag before taking commands: a command queued from now on writes a new wake-up
            # byte, and one queued earlier is taken below (clearing it when the byte is read could
            # strand the flag set with no byte pending, leaving every later send to the 50 ms timeout).
            self._wake_pending = False
            self._run_cmds()
            if self.on_round is not None:
                timeout = min(self.on_round(), 50) / 1000
                self._run_cmds()
            self._expire(now)
            if self.paused:
                self._resume()
        for lk in list(self.links.values()):
            self._close(lk, None)

    def _run_cmds(self) -> None:
        touched = set()
        while self.cmds:
            kind, target, data = self.cmds.popleft()
            lk = self.out_links.get(target) if kind == "node" else self.links.get(target)
            if lk is None or lk.closed or (lk.linger_until and kind != "close"):
                continue  # a lingering link takes nothing more: its sending side is shut down
            if kind == "close":
                self._close(lk, None)
                continue
            if kind == "flush_close":
                lk.closing = True
                touched.add(lk)
                continue
            if kind == "bound":
                lk.bound = True
                self.unbound.pop(lk.id, None)
                continue
            if not lk.session.ready:
                continue
            if lk.kind == "peer" and len(lk.session.out) > limits.PEER_QUEUE:
                continue  # a stalled peer link: drop, the protocol's retransmissions cover it (13.1)
            lk.pending.append(data)
            touched.add(lk)
            if lk.kind == "client":
                lk.pending_bytes += len(data)
                if lk.qbytes > limits.QUEUE_PAUSE and lk.qbytes + lk.pending_bytes > limits.QUEUE_CLOSE:
                    # Not reading and over 4 MiB with this: closed before encrypting megabytes for it.
                    self._close(lk, LinkError("slow_peer", f"client does not read: {lk.qbytes} bytes queued"
                                                           f" and {lk.pending_bytes} more"))
        for lk in touched:
            if lk.closed:
                continue
            try:
                if lk.pending:
                    lk.session.send(lk.pending)
            except LinkError as e:
                self._close(lk, e)
                continue
            except Exception as e:  # noqa: BLE001 - one link's failure closes that link only
                self._close(lk, LinkError("malformed", f"internal error while sending: {type(e).__name__}: {e}"))
                continue
            lk.pending = []
            lk.pending_bytes = 0
            self._flush(lk)
        if self.client_qbytes > limits.QUEUE_NODE:
            self._shed_queued()

    def _shed_queued(self) -> None:
        """Over 16 MiB queued to clients: close the connections with the most queued (slow_peer)."""
        while self.client_qbytes > limits.QUEUE_NODE:
            worst = max((self.links[i] for i in self.client_ready if i in self.links),
                        key=lambda lk: lk.qbytes, default=None)
            if worst is None or worst.qbytes == 0:
                return
            self._close(worst, LinkError("slow_peer", f"{worst.qbytes} bytes queued, node over its reply budget"))

    def _expire(self, now: float) -> None:
        # Only links still in their handshake: scanning every link on every loop turn cost O(clients).
        for lk in list(self.handshaking.values()):
            if lk.session.ready:
                continue
            age = now - lk.started
            if age > HANDSHAKE_DEADLINE:
                self._close(lk, LinkError("handshake_failed", "handshake deadline"))
            elif age > MESSAGE1_DEADLINE and lk.outbound_to is None and lk.session.hs.turn == 0:
                self._close(lk, LinkError("handshake_failed", "no handshake message 1 within 1 s"))
        for lk in list(self.lingering.values()):
            if now >= lk.linger_until:
                self._close(lk, None)
        if self.releases.due(now):
            self.releases.trim(now)
        if (self.unbound or self.paused) and now - self._last_idle_scan >= 0.5:
            self._last_idle_scan = now
            for lk in list(self.unbound.values()):
                if now - lk.last_rx > limits.UNBOUND_IDLE:
                    self._close(lk, LinkError("slow_peer", "unbound client session: no message for 10 s"))
            for lk in list(self.paused):
                # SPEC 13.1 (AD-6): over 1 MiB queued and nothing taken for 10 s closes it too.
                if not lk.closed and lk.qbytes > limits.QUEUE_PAUSE and now - lk.last_tx > limits.STALL_CLOSE:
                    self._close(lk, LinkError("slow_peer", f"client read nothing of {lk.qbytes} queued bytes"))

    def _dial_due(self, now: float) -> None:
        for node in self.dial_nodes:
            if node in self.out_links or now < self.next_dial[node]:
                continue
            info = self.m.nodes[node]
            self.next_dial[node] = now + self.backoff[node]
            self.backoff[node] = min(self.backoff[node] * 2, 2.0)
            s = socket.socket(family_of(info.host), socket.SOCK_STREAM)
            s.setblocking(False)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with contextlib.suppress(OSError):
                s.bind((self.m.nodes[self.me].bind, 0))  # source address = our region (SPEC 13)
            err = s.connect_ex((info.host, info.peer_port))
            if err not in (0, errno.EINPROGRESS):
                s.close()
                continue
            sess = Session(True, self._secret, self.m.network_id, self.me,
                           peer_hello_checker(self.m, self.m.network_id, node), self.maxmsg)
            lk = Link(s, sess, "peer", outbound_to=node)
            self.links[lk.id] = lk
            self.handshaking[lk.id] = lk
            self.out_links[node] = lk
            self.sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE, ("link", lk))
            lk.mask = selectors.EVENT_READ | selectors.EVENT_WRITE

    def _accept(self, lsock, kind: str) -> None:
        for _ in range(64):
            try:
                s, _addr = lsock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            if kind == "client" and len(self.client_ready) >= limits.CLIENT_SESSIONS:
                with contextlib.suppress(OSError):
                    s.close()
                self.on_reject("connection_limit", kind, "1024 client sessions established")
                continue
            s.setblocking(False)
            slots = self.hs_slots[kind]
            if len(slots) >= limits.HANDSHAKE_SLOTS and _gone(s):
                # Closed by its client while it waited in the accept queue: it does not take the
                # oldest handshake's slot (a burst of abandoned connections would close live ones).
                with contextlib.suppress(OSError):
                    s.close()
                self.on_reject("connection_limit", kind, f"64 handshakes on the {kind} port, new one already closed")
                continue
            while len(slots) >= limits.HANDSHAKE_SLOTS:  # the oldest handshake on this port makes room
                oldest = next(iter(slots.values()))
                self._close(oldest, LinkError("connection_limit", f"64 handshakes on the {kind} port: oldest closed"))
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if kind == "peer":
                chk, cap = peer_hello_checker(self.m, self.m.network_id, None), self.maxmsg
            else:
                chk, cap = client_hello_checker(self.m.network_id), limits.MAX_CLIENT_MESSAGE
            sess = Session(False, self._secret, self.m.network_id, self.me, chk, cap)
            lk = Link(s, sess, kind)
            self.links[lk.id] = lk
            self.handshaking[lk.id] = lk
            slots[lk.id] = lk
            self.sel.register(s, selectors.EVENT_READ, ("link", lk))
            lk.mask = selectors.EVENT_READ

    def _io(self, lk: Link, mask: int) -> None:
        """Socket events of one link. Whatever its bytes make any layer raise closes that link alone
        and is counted (SPEC 13.1); it never leaves this method."""
        try:
            self._io_link(lk, mask)
        except Exception as e:  # noqa: BLE001
            self._close(lk, LinkError("malformed", f"internal error on this connection: {type(e).__name__}: {e}"))

    def _io_link(self, lk: Link, mask: int) -> None:
        if lk.closed:
            return
        if mask & selectors.EVENT_WRITE:
            if lk.connecting:
                err = lk.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    self._close(lk, None)
                    return
                lk.connecting = False
            self._flush(lk)
        if mask & selectors.EVENT_READ and not lk.closed:
            client = lk.kind == "client"
            try:
                got = lk.sock.recv_into(self._rbuf, limits.CLIENT_READ_CHUNK if client else 0)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._close(lk, None)
                return
            if not got:
                if lk.session.inbuf and not lk.linger_until:  # a truncated frame (SPEC 13, AD-2)
                    reason = "malformed" if lk.session.ready else "handshake_failed"
                    self._close(lk, LinkError(reason, f"connection closed inside a frame ({len(lk.session.inbuf)} bytes)"))
                else:
                    self._close(lk, None)
                return
            if lk.linger_until:
                lk.linger_left -= got
                if lk.linger_left <= 0:
                    self._close(lk, None)
                return
            was_ready = lk.session.ready
            try:
                msgs = lk.session.feed(self._rview[:got])
            except LinkError as e:
                self._close(lk, e)
                return
            if client and msgs:  # SPEC 13.1: idle = no complete application message
                lk.last_rx = time.monotonic()
            if lk.session.ready and not was_ready:
                self._on_ready(lk)
                if lk.closed:
                    return
            self._flush(lk)
            for raw in msgs:
                if not self._deliver(lk, raw):
                    return

    def _on_ready(self, lk: Link) -> None:
        self.handshaking.pop(lk.id, None)
        self.hs_slots[lk.kind].pop(lk.id, None)
        if lk.kind == "client":
            lk.last_rx = time.monotonic()  # the unbound idle clock starts at the handshake
            self.client_ready.add(lk.id)
            self.unbound[lk.id] = lk
            if len(self.unbound) > limits.UNBOUND_SESSIONS:
                oldest = next(iter(self.unbound.values()))
                self._close(oldest, LinkError("connection_limit", "more than 64 unbound client sessions"))
        elif lk.outbound_to is not None:
            self.backoff[lk.outbound_to] = 0.1
            self.on_link(lk.outbound_to, True)
        elif lk.kind == "peer":
            # A newer inbound connection from the same node replaces an older one.
            for other in list(self.links.values()):
                if (other is not lk and other.kind == "peer" and other.outbound_to is None
                        and other.node == lk.node):
                    self._close(other, None)

    def _deliver(self, lk: Link, raw: bytes) -> bool:
        name = "PeerMessage" if lk.kind == "peer" else "ClientMessage"
        try:
            msg = codec.decode(name, raw)
        except codec.DecodeError as e:
            self._close(lk, LinkError(e.reason, str(e)))
            return False
        try:
            if lk.kind == "peer":
                self.on_peer(lk.id, lk.node, msg)
            else:
                self.on_client(lk.id, msg)
        except Exception as e:  # a handler bug must not kill the I/O thread
            self.on_reject("malformed", lk.node or "client", f"handler error {type(e).__name__}: {e}")
        return True

    def _flush(self, lk: Link) -> None:
        out = lk.session.out
        sent = False
        while out and not lk.connecting:
            try:
                n = lk.sock.send(out)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self._close(lk, None)
                return
            del out[:n]
            sent = True
        if sent or not out:
            lk.last_tx = time.monotonic()
        if lk.closing and not out:
            self._linger(lk)
            return
        if lk.kind == "client":
            self._account(lk)
            if lk.qbytes > limits.QUEUE_CLOSE:
                self._close(lk, LinkError("slow_peer", f"client does not read: {lk.qbytes} bytes queued"))
                return
        self._set_mask(lk)

    def _linger(self, lk: Link) -> None:
        """Lingering close (SPEC 13.1 / 15.1, AD-7): the answer is out; shut down the sending side and
        read off what the client still sends for up to 1 s or 64 KiB, so that closing with unread
        bytes does not make the kernel reset the connection over the answer."""
        if lk.linger_until:
            return
        with contextlib.suppress(OSError):
            lk.sock.shutdown(socket.SHUT_WR)
        lk.linger_until = time.monotonic() + limits.LINGER_SECONDS
        lk.linger_left = limits.LINGER_BYTES
        self.lingering[lk.id] = lk
        self.paused.discard(lk)
        self.client_ready.discard(lk.id)  # no longer a session: its slot is free
        self.unbound.pop(lk.id, None)
        self._release(lk)
        lk.session.inbuf = bytearray()
        lk.session.stream.buf = bytearray()
        want = selectors.EVENT_READ
        with contextlib.suppress(KeyError, ValueError):
            if lk.mask == 0:
                self.sel.register(lk.sock, want, ("link", lk))
            elif lk.mask != want:
                self.sel.modify(lk.sock, want, ("link", lk))
        lk.mask = want

    def _release(self, lk: Link) -> None:
        """Drop a client link's queued output and its share of the node's byte totals; the freed
        buffers count towards the next heap trim (memtrim)."""
        sess = lk.session
        self.releases.released(len(sess.out) + len(sess.inbuf) + len(sess.stream.buf))
        self.client_rbytes -= lk.rbytes
        self.client_qbytes -= lk.qbytes
        lk.rbytes = lk.qbytes = 0
        sess.out = bytearray()  # a new object: clear() would keep a large allocation of the old one

    def _account(self, lk: Link) -> None:
        """Keep the node's client read/queued byte totals (SPEC 13.1) in step with this link."""
        sess = lk.session
        rb = len(sess.inbuf) + len(sess.stream.buf)
        qb = len(sess.out)
        self.client_rbytes += rb - lk.rbytes
        self.client_qbytes += qb - lk.qbytes
        lk.rbytes, lk.qbytes = rb, qb

    def _reads(self, lk: Link) -> bool:
        """Whether to read this link now: client links wait while they are closing, while their
        replies are not read (over 1 MiB queued), while the node holds 32 MiB of partial client
        input, or while the consensus step is behind (TCP backpressure)."""
        if lk.kind != "client":
            return True
        return not (lk.closing or lk.qbytes > limits.QUEUE_PAUSE or self.client_rbytes > limits.CLIENT_READ_BYTES
                    or self.backlog() > limits.EVENT_BACKLOG)

    def _set_mask(self, lk: Link) -> None:
        reading = self._reads(lk)
        want = (selectors.EVENT_READ if reading else 0) | (
            selectors.EVENT_WRITE if (lk.session.out or lk.connecting) else 0)
        if reading:
            self.paused.discard(lk)
        else:
            self.paused.add(lk)
        if want == lk.mask:
            return
        with contextlib.suppress(KeyError, ValueError):
            if want == 0:
                self.sel.unregister(lk.sock)
            elif lk.mask == 0:
                self.sel.register(lk.sock, want, ("link", lk))
            else:
                self.sel.modify(lk.sock, want, ("link", lk))
        lk.mask = want

    def _resume(self) -> None:
        for lk in list(self.paused):
            if lk.closed:
                self.paused.discard(lk)
            else:
                self._set_mask(lk)

    def _close(self, lk: Link, err: LinkError | None) -> None:
        if lk.closed:
            return
        lk.closed = True
        if err is not None:
            self.on_reject(err.reason, lk.node or lk.outbound_to or lk.kind, str(err))
        if lk.mask:
            with contextlib.suppress(KeyError, ValueError):
                self.sel.unregister(lk.sock)
        lk.sock.close()
        self.links.pop(lk.id, None)
        self.handshaking.pop(lk.id, None)
        self.hs_slots.get(lk.kind, {}).pop(lk.id, None)
        self.lingering.pop(lk.id, None)
        if lk.kind == "client":
            self.client_ready.discard(lk.id)
            self.unbound.pop(lk.id, None)
            self.paused.discard(lk)
            self._release(lk)
            lk.pending = []
            lk.pending_bytes = 0
            if lk.session.ready:
                self.on_closed(lk.id)
        if lk.outbound_to is not None and self.out_links.get(lk.outbound_to) is lk:
            del self.out_links[lk.outbound_to]
            if lk.session.ready:
                self.on_link(lk.outbound_to, False)


def _gone(s) -> bool:
    """A just-accepted socket whose client already closed it (EOF or reset pending). Without this a
    burst of connections abandoned in the accept queue would close live handshakes as the oldest."""
    try:
        return s.recv(1, socket.MSG_PEEK) == b""
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return True


def encode_msg(msg) -> bytes:
    return encode(msg)
