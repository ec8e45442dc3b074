"""Hypothesis fuzzing: decoders and consensus handlers never crash or wedge on bad input."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from impl_b import codec
from impl_b.codec import DecodeError, decode, encode
from impl_b.schema import MESSAGES

from .sim import Sim

NAMES = sorted(MESSAGES)


@settings(max_examples=600, deadline=None, database=None)
@given(st.sampled_from(NAMES), st.binary(max_size=300))
def test_decoder_accepts_only_canonical_bytes(name, data):
    try:
        msg = decode(name, data)
    except DecodeError as e:
        assert e.reason in ("malformed", "non_canonical")
        return
    assert encode(msg) == data  # anything accepted is exactly the canonical encoding


_SIM = Sim(seed=11)
_p = _SIM.put(b"fuzz", b"seed")
assert _SIM.run_until(lambda: _p in _SIM.answers, 5000)
_SAMPLES: list[bytes] = []
_orig = _SIM._send


def _capture(frm, to, pm):
    if len(_SAMPLES) < 200:
        _SAMPLES.append(encode(pm) if not isinstance(pm, bytes) else pm)
    _orig(frm, to, pm)


_SIM._send = _capture
_q = _SIM.put(b"fuzz2", b"more")
assert _SIM.run_until(lambda: _q in _SIM.answers, 5000)


@settings(max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 255), st.sampled_from(["c0-n1", "c0-n2"]))
def test_mutated_peer_messages_never_crash_a_replica(i, pos, byte, sender):
    data = bytearray(_SAMPLES[i % len(_SAMPLES)])
    data[pos % len(data)] = byte
    try:
        pm = decode("PeerMessage", bytes(data))
    except DecodeError:
        return
    r = _SIM.replicas["c0-n3"]
    h = r.height
    r.on_peer(sender, pm, _SIM.now)  # must not raise
    assert r.height >= h


@settings(max_examples=200, deadline=None, database=None)
@given(st.sampled_from(sorted(n for n in NAMES if n not in ("PeerMessage",))), st.binary(max_size=200))
def test_random_wrapped_messages_never_crash_a_replica(kind, data):
    fields = {f[1]: f[2] for f in MESSAGES["PeerMessage"]}
    member = next((k for k, v in fields.items() if v == kind), None)
    if member is None:
        return
    try:
        body = decode(kind, data)
    except DecodeError:
        return
    pm = codec.PeerMessage(**{member: body})
    _SIM.replicas["c0-n2"].on_peer("c0-n1", pm, _SIM.now)


def test_cluster_still_works_after_fuzzing():
    r = _SIM.put(b"after-fuzz", b"ok", to="c0-n2")
    assert _SIM.run_until(lambda: r in _SIM.answers, 20000)
    assert _SIM.logs_agree("c0")


@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(st.binary(min_size=0, max_size=120), max_size=6))
def test_link_session_survives_garbage(chunks):
    from impl_b.session import LinkError, Session, client_hello_checker

    for initiator in (False, True):
        sess = Session(initiator, b"\x01" * 32, "fuzz-net", "" if initiator else "n0",
                       client_hello_checker("fuzz-net"), 1 << 16)
        try:
            for c in chunks:
                sess.feed(c)
        except LinkError as e:
            assert e.reason in ("malformed", "oversized", "handshake_failed", "decrypt_failed", "wrong_network",
                                "unknown_node")
