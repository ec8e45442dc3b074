"""Runs last for each implementation (it may leave the coordinator unable to decide): GETs whose
results add up to more than max_batch_bytes in one shard decision (errata AD-1)."""

from __future__ import annotations

import time

from tests.adversarial import wire
from tests.adversarial.conftest import record


def test_large_get_results_do_not_wedge_the_coordinator(net):
    """One client pipelines 100 GETs of a 60 KB value on one session (reading every reply): the
    shard's results for the coordinator (~6 MB in one leaf if one shard decision executes them)
    must still reach the client; every GET is answered within 40 s and the coordinator keeps
    deciding. Observed (AD-1): the compact decision is larger than the coordinator's
    max_batch_bytes, so no leader can propose it and the coordinator changes view forever."""
    node = net.target()
    c = net.client("a")
    key = f"adv-wedge-{time.time_ns()}".encode()
    net.request(node, wire.PUT, key, b"w" * 60_000, client=c, deadline=60)
    views0 = {m: (net.status(m) or {}).get("view") for m in net.members("c0")}
    s = net.client_session(node)
    want = set()
    try:
        for _ in range(100):
            rid, req = c.request(wire.GET, key)
            want.add(rid)
            s.send_app(wire.submit(req))
        got, errors = set(), []
        end = time.monotonic() + 40
        while want - got and time.monotonic() < end:
            try:
                rep = wire.parse_reply(s.recv_app(timeout=max(0.5, end - time.monotonic())))
            except (OSError, ConnectionError):
                break
            if "answer" in rep:
                got |= {r["request_id"] for r in rep["answer"]["responses"]} & want
            else:
                errors.append(rep.get("error"))
    finally:
        s.close()
    views1 = {m: (net.status(m) or {}).get("view") for m in net.members("c0")}
    record(net.impl, "100 GETs of a 60 KB value (AD-1)", answered=len(got), errors=len(errors),
           views_before=views0, views_after=views1)
    assert got == want, f"{len(want - got)} of 100 GETs unanswered after 40 s (errors {errors[:5]}); views {views0} -> {views1}"
    net.put(node, f"adv-after-wedge-{time.time_ns()}".encode(), b"v", deadline=30)
