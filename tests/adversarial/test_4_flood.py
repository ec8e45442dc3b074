"""SPEC 12.5 admission and 13.1 fairness: one authorised client floods one coordinator follower
with signed PUTs (issue 12 attack 4: view changes of correct leaders, a 26 s /status stall, p99
4.5 s and failures for a well-behaved client) while the implementation's own client library runs
a workload with another client key on other keys."""

from __future__ import annotations

import threading
import time

from infra.model.deployment import CLIENT_IDS
from infra.nodes.client import run_client
from tests.adversarial import wire
from tests.adversarial.conftest import MIB, Sampler, assert_survived, record

FLOOD_S = 15
SESSIONS = 4


def views(n, cluster):
    return {m: ((st or {}).get("view"), (st or {}).get("counters", {}).get("view_changes")) for m in n.members(cluster)
            for st in [n.status(m, 5.0)]}


def test_signed_put_flood_on_one_follower(net, tmp_path):
    """Assert: the well-behaved client has zero failures, no view change (view and view_changes
    unchanged on every member of both clusters), /status of the flooded node answered every
    0.5 s poll (within 5 s), the node is alive and counted `overloaded`. Recorded, not asserted:
    the well-behaved client's p99 and the /status latencies."""
    node = net.target()
    pid = net.pid(node)
    good_letter = net.letter if net.letter in CLIENT_IDS else "a"
    flood_which = next(k for k in CLIENT_IDS if k != good_letter)
    flooder = net.client(flood_which)
    # pre-sign the flood so that signing does not pace it (and costs no CPU during the run)
    reqs = [flooder.request(wire.PUT, b"adv-flood-%d" % (i % 8), b"f" * 64)[1] for i in range(40_000)]
    v_c0, v_s0 = views(net, "c0"), views(net, "s0")
    before = net.rejected(node)
    stop = threading.Event()
    counts = {"sent": 0, "answers": 0, "errors": 0, "overloaded": 0}
    lock = threading.Lock()

    def reader(s):
        while not stop.is_set():
            try:
                rep = wire.parse_reply(s.recv_app(timeout=1.0))
            except TimeoutError:
                continue
            except (OSError, ConnectionError, ValueError):
                return
            with lock:
                if "answer" in rep:
                    counts["answers"] += 1
                else:
                    counts["errors"] += 1
                    counts["overloaded"] += rep.get("error") == "OVERLOADED"

    def writer(s, part):
        s.sock.settimeout(5.0)
        end = time.monotonic() + FLOOD_S
        i = 0
        try:
            while not stop.is_set() and time.monotonic() < end:
                batch = b"".join(len(r).to_bytes(4, "big") + r for r in (wire.submit(x) for x in part[i:i + 50]))
                if not batch:
                    i = 0  # start over: the node answers repeats from its index or pool
                    continue
                s.send_stream(batch)
                i += 50
                with lock:
                    counts["sent"] += 50
        except OSError:
            pass

    polls = []

    def poller():
        while not stop.is_set():
            t0 = time.monotonic()
            st = net.status(node, timeout=5.0)
            polls.append((time.monotonic() - t0, st is not None))
            stop.wait(0.5)

    sess = [net.client_session(node) for _ in range(SESSIONS)]
    parts = [reqs[i::SESSIONS] for i in range(SESSIONS)]
    threads = [threading.Thread(target=reader, args=(s,), daemon=True) for s in sess]
    threads += [threading.Thread(target=writer, args=(s, p), daemon=True) for s, p in zip(sess, parts, strict=True)]
    threads.append(threading.Thread(target=poller, daemon=True))
    with Sampler(pid) as smp:
        for t in threads:
            t.start()
        time.sleep(1.0)  # the flood is on before the good client starts
        good = run_client(net.dep, good_letter, ["--timeout-ms", "10000", "--cluster", "c0", "workload", "--ops", "100000",
                                                 "--concurrency", "2", "--keys", "4", "--key-prefix", "adv-good-",
                                                 "--duration-s", str(FLOOD_S - 3)], timeout_s=FLOOD_S + 60)
        stop.set()
        for t in threads:
            t.join(timeout=10)
    for s in sess:
        s.close()
    v_c0_after, v_s0_after = views(net, "c0"), views(net, "s0")
    res = assert_survived(net, node, pid, before, {})
    lat = sorted(p[0] for p in polls)
    record(net.impl, "signed PUT flood on one follower", good_client=good.doc, flood=dict(counts),
           status_polls=len(polls), status_unanswered=sum(1 for p in polls if not p[1]),
           status_p50_s=round(lat[len(lat) // 2], 3) if lat else None, status_max_s=round(lat[-1], 3) if lat else None,
           views_c0=[v_c0, v_c0_after], views_s0=[v_s0, v_s0_after], **res, **smp.numbers())
    assert good.ok and good.doc.get("failed") == 0 and good.doc.get("ok", 0) > 0, f"well-behaved client: {good.doc} {good.stderr[-300:]}"
    assert v_c0 == v_c0_after and v_s0 == v_s0_after, f"view changed during the flood: c0 {v_c0} -> {v_c0_after}, s0 {v_s0} -> {v_s0_after}"
    assert polls and all(ok for _, ok in polls), f"/status unanswered in {sum(1 for p in polls if not p[1])} of {len(polls)} polls"
    assert counts["sent"] > 2000, f"the flood did not get going: {counts}"
    assert smp.peak <= smp.baseline + 256 * MIB, smp.numbers()
    assert_survived(net, node, pid, before, {"overloaded": 1}, decide=False)
