"""SPEC 14.5 client retries: jittered backoff rounds until the deadline, error finality with f + 1
agreeing members, and a bounded connection rate while every node is down."""

import random
import socket
import time

import pytest

from impl_b import devnet
from impl_b.client import Client, ClientFailure, Retries, round_backoff
from impl_b.crypto import Signer
from impl_b.manifest import validate


def test_round_backoff_doubles_to_one_second_with_jitter():
    rng = random.Random(1)
    for r, b in [(1, 0.05), (2, 0.1), (3, 0.2), (5, 0.8), (6, 1.0), (40, 1.0)]:
        for _ in range(50):
            assert b / 2 <= round_backoff(r, rng) <= b


def test_retries_rounds_and_finality():
    plan = Retries(["a", "b", "c", "d"], 0, 1, random.Random(0), {})
    assert [plan.pick(0.0) for _ in range(4)] == ["a", "b", "c", "d"]
    assert plan.pick(0.0) is None and 0.025 <= plan.wait(0.0) <= 0.05  # round 1 over: back off
    assert plan.pick(0.01) is None
    assert plan.pick(1.0) == "a"
    assert not plan.error("a", 7) and not plan.error("b", 8)  # OVERLOADED, TIMEOUT: never final
    assert not plan.error("a", 5)
    assert not plan.error("a", 5)  # the same member twice is still one member
    assert plan.error("c", 5)  # f + 1 = 2 distinct members agree


def test_a_failed_member_is_not_redialled_before_its_backoff():
    redial: dict = {}
    plan = Retries(["a", "b"], 0, 0, random.Random(0), redial)
    assert plan.pick(0.0) == "a"
    plan.connection_failed("a", 0.0)
    assert plan.pick(0.0) == "b"
    plan.connection_failed("b", 0.0)
    assert plan.pick(0.0) is None  # round over
    assert plan.pick(0.06) is None  # both members inside their 100 ms reconnect backoff
    assert plan.pick(0.2) in ("a", "b")


def test_every_node_down_fails_at_the_deadline_with_few_attempts(tmp_path, monkeypatch):
    doc, secrets = devnet.build({"c0": "coordinator", "s0": "shard"})
    m = validate(doc)  # nothing listens on these ports
    calls = []
    real = socket.create_connection

    def counting(*a, **kw):
        calls.append(time.monotonic())
        return real(*a, **kw)

    monkeypatch.setattr(socket, "create_connection", counting)
    c = Client(m, Signer(secrets["alice"]["ed25519"]), timeout_ms=3000, seed=3)
    t0 = time.monotonic()
    with pytest.raises(ClientFailure) as e:
        c.get(b"k")
    took = time.monotonic() - t0
    assert 2.9 <= took <= 4.5, took
    assert e.value.final_code == 0 and len(e.value.failures) == 4
    assert len(calls) <= 4 * 3 * 4, len(calls)  # a few attempts per member per second, not ~300/s
