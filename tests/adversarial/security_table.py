"""Turn the adversarial suite's JSON-lines report into the docs/security.md table.

    HERACLIUS_SECURITY_REPORT=/tmp/sec.jsonl .venv/bin/python -m pytest tests/adversarial
    .venv/bin/python -m tests.adversarial.security_table /tmp/sec.jsonl > /tmp/table.md

One row per test function: the attack, what SPEC requires, and per implementation the outcome
(pass / FAIL: first assertion line) and the measured numbers of its records."""

from __future__ import annotations

import json
import sys
from collections import defaultdict

ROWS = [
    ("test_zero_and_small_order_ephemeral", "msg 1 with the zero / small-order ephemeral, both ports",
     "handshake fails, `handshake_failed`, node up (13)"),
    ("test_wrong_size_message_1", "msg 1 of 0, 1, 31, 33, 48, 65535 bytes", "handshake fails, `handshake_failed` (13; AD-2)"),
    ("test_small_order_static_in_message_3", "small-order static key in msg 3", "`se` zero: fails, `handshake_failed` (13)"),
    ("test_bad_message_3", "msg 3 short / fixed part only / garbage / trailing / flipped", "fails, `handshake_failed` (13)"),
    ("test_wrong_hellos", "bad Hellos (node id on client port, other network, version 2, unknown node)",
     "closed, `handshake_failed` / `unknown_node` (13)"),
    ("test_garbage_after_handshake", "garbage ciphertext after a good handshake", "closed, `decrypt_failed` (13)"),
    ("test_bad_application_lengths", "application length over the port limit / 2^32-1", "closed at the length, `oversized` (13.1)"),
    ("test_bad_frames_and_messages_after_handshake", "zero-length frame, length 0, undecodable, non-canonical",
     "closed; `malformed` x3, `non_canonical` (13; AD-2)"),
    ("test_unfinished_handshakes_closed_at_deadline", "silent connection; handshake stopped after msg 2",
     "closed at 1 s / 5 s, `handshake_failed`, never `slow_peer` (13.1; AD-3, AD-5)"),
    ("test_handshake_slots_oldest_closed", "70 idle connections on one port + a real client / peer handshake",
     "real ones succeed; oldest idle closed first, `connection_limit`; rest closed at 1 s (13.1; AD-3)"),
    ("test_replayed_transport_bytes", "replayed bytes of a recorded session", "`handshake_failed` / `decrypt_failed`, nothing executed (13)"),
    ("test_memory_back_after_handshake_storm", "300 failed handshakes in a row", "RSS bounded and back (13.1)"),
    ("test_huge_announced_messages", "20 sessions announce 16 MiB, send up to 15 MiB", "closed at the length, `oversized`; RSS bounded (13.1)"),
    ("test_partial_messages_under_the_cap", "40 sessions x 200 KB of a 262,000-byte message",
     "RSS bounded; closed after 10 s unbound, `slow_peer` (13.1)"),
    ("test_2000_idle_tcp_connections", "2,000 idle TCP connections", "serves; threads/fds bounded; `connection_limit` (13.1)"),
    ("test_unbound_session_limit", "70 unbound sessions", "oldest closed beyond 64, `connection_limit` (13.1)"),
    ("test_sessions_per_client_key", "65 sessions bound to one key", "65th `OVERLOADED` + closed, `connection_limit` (13.1)"),
    ("test_client_check_table", "SPEC 14.3 check table (oversized key, ...)", "codes in order, connection kept (14.3)"),
    ("test_replayed_signed_request", "replayed signed PUT", "answered from the first decision, not re-executed (11, 14.3)"),
    ("test_never_reading_bound_session_closed", "one bound session, > 1 MiB of answers queued, never reads",
     "closed within 10 s, `slow_peer` (13.1; AD-6)"),
    ("test_never_reading_clients", "24 never-reading sessions re-fetching a 60 KB answer",
     "backpressure, `slow_peer` close, RSS bounded and back (13.1; AD-4)"),
    ("test_admin_request_rows", "admin: 42 hand-written SPEC 15.1 rows", "exact status, Content-Length, close, `bad_http_request` (15.1)"),
    ("test_admin_request_vectors", "admin: every `vectors/admin/request` case over a socket", "as the vector says (15.1)"),
    ("test_admin_keep_alive", "admin: two requests on one connection", "both answered (15.1)"),
    ("test_admin_survives_the_table", "admin: whole table, then liveness", "up, /status, decides (15.1)"),
    ("test_slow_admin_client_cut_at_deadline", "admin: a header line every 4 s; idle keep-alive",
     "cut at 5 s, `slow_peer` (15.1)"),
    ("test_admin_connection_limit", "admin: 65th connection", "`503`, `connection_limit` (15.1)"),
    ("test_300_slow_admin_connections", "admin: 300 slow connections", "threads/fds bounded (15.1, 13.1)"),
    ("test_signed_put_flood_on_one_follower", "signed PUT flood on one follower + well-behaved client",
     "no failure, no view change, /status answers (12.5, 13.1)"),
    ("test_client_backs_off_when_every_coordinator_is_down", "client with every coordinator down",
     "fails at its deadline, few attempts/s per member (14.5)"),
    ("test_full_disk_is_fail_stop", "full disk (tmpfs) on a shard follower",
     "exit 5 within 1 s, `storage_failed`; 3 of 4 serve; catch-up to identical log (12.8)"),
    ("test_large_get_results_do_not_wedge_the_coordinator", "100 GETs of a 60 KB value",
     "all answered, coordinator keeps deciding (AD-1)"),
]

KEYS = [  # (record key, label, formatter)
    ("rss_before_mib", "RSS MiB", None), ("threads_before", "threads", None), ("fds_before", "fds", None),
    ("rejected_delta", "counted", None), ("closed_s_max", "closed within s", None),
    ("closed_after_s", "closed after s", None), ("closed_after_s_max", "closed after s", None),
    ("status_s", "/status s", None), ("status_during_s", "/status during s", None),
    ("good_client", "good client", None), ("status_max_s", "/status max s", None), ("flood", "flood", None),
    ("elapsed_s", "failed after s", None), ("attempts_per_s", "attempts/s per member", None),
    ("exit_code", "exit", None), ("exit_after_full_s", "exit after full s", None),
    ("compared_heights", "identical heights", None), ("answered", "answered", None),
    ("views_after", "views after", None), ("slow_peer", "slow_peer", None), ("status_65th", "65th", None),
    ("reply_65th", "65th reply", None), ("codes", "codes", None), ("closed_at_once", "closed at once", None),
    ("wrong", "wrong codes", None), ("client_during_hold", "new client while held:", None),
    ("real_handshakes", "while held:", None), ("evicted", "oldest closed", None),
    ("idle_closed_max_s", "idle closed by s", None), ("slow_peer_after_s", "slow_peer after s", None),
    ("counted_as", "counted", None), ("wrong_reasons", "wrong", None),
]


def fmt(rec: dict) -> str:
    parts = []
    for key, label, _ in KEYS:
        if key not in rec or rec[key] in (None, {}, []):
            continue
        v = rec[key]
        if key == "rss_before_mib" and rec.get("rss_peak_mib", v) - v < 2 and rec.get("rss_after_mib") is None:
            continue
        if key in ("threads_before", "fds_before") and rec.get(key.replace("before", "peak")) == v:
            continue
        if key in ("status_s", "closed_s_max") and isinstance(v, (int, float)) and v < 0.1:
            continue
        if key == "rss_before_mib":
            after = rec.get("rss_after_mib")
            v = f"{v}→{rec.get('rss_peak_mib')}" + (f"→{after}" if after is not None else "")
        elif key == "threads_before":
            v = f"{v}→{rec.get('threads_peak')}"
        elif key == "fds_before":
            v = f"{v}→{rec.get('fds_peak')}"
        elif key == "rejected_delta":
            v = ", ".join(f"{r} +{n}" for r, n in v.items() if n)
            if not v:
                continue
        elif key == "good_client":
            v = f"ok {v.get('ok')}/{v.get('ops')}, p99 {v.get('latency_ms', {}).get('p99')} ms"
        elif key == "flood":
            v = f"{v.get('sent')} sent, {v.get('overloaded')} OVERLOADED"
        elif key == "codes":
            bad = rec.get("wrong") or {}
            v = "all as specified" if not bad else None
            if v is None:
                continue
        elif key == "wrong":
            v = "; ".join(f"{k}: {a} (want {b})" for k, (a, b) in v.items())
        elif key == "counted_as":
            v = "; ".join(f"{k} " + (", ".join(f"{r} +{n}" for r, n in d.items()) or "nothing") for k, d in v.items())
        elif key == "wrong_reasons":
            v = "; ".join(f"{k}: {x}" for k, x in v.items())
        elif key == "views_after":
            v = f"{rec.get('views_before')} → {v}"
        elif isinstance(v, dict):
            v = ", ".join(f"{k} {x}" for k, x in v.items())
        parts.append(f"{label} {v}")
    if rec.get("params") and rec.get("attack") != "__outcome__":
        tag = rec["params"].split("-", 1)[1] if "-" in rec["params"] else ""
        if tag:
            return f"[{tag}] " + "; ".join(parts)
    return "; ".join(parts)


def main(path: str) -> None:
    with open(path) as f:
        recs = [json.loads(ln) for ln in f if ln.strip()]
    impls = sorted({r["impl"] for r in recs if r.get("impl")})
    outcomes: dict[tuple[str, str], list[dict]] = defaultdict(list)
    measures: dict[tuple[str, str], list[str]] = defaultdict(list)
    for r in recs:
        if not r.get("impl") or not r.get("test"):
            continue
        if r["attack"] == "__outcome__":
            outcomes[(r["test"], r["impl"])].append(r)
        else:
            m = fmt(r)
            if m:
                measures[(r["test"], r["impl"])].append(m)
    shown = [i for i in impls if any(o["outcome"] != "skipped" for (t, im), os_ in outcomes.items() if im == i for o in os_)]
    print("| attack | expected (SPEC) | " + " | ".join(shown) + " |")
    print("|---|---|" + "---|" * len(shown))
    for test, attack, expected in ROWS:
        cells = []
        for impl in shown:
            os_ = outcomes.get((test, impl), [])
            if not os_:
                cells.append("not run")
                continue
            failed = [o for o in os_ if o["outcome"] == "failed"]
            passed = sum(o["outcome"] == "passed" for o in os_)
            verdict = f"**pass** ({passed}/{len(os_)})" if not failed else f"**FAIL** {len(failed)}/{len(os_)}: " + \
                "; ".join(sorted({f"{o['params'].split('-', 1)[-1]}: {o['message'][:160]}" for o in failed})[:3])
            ms = measures.get((test, impl), [])
            ms = [m for m in dict.fromkeys(ms) if m.split("] ", 1)[-1]]
            cell = verdict + ("<br>" + "<br>".join(ms[:2]) if ms else "")
            cells.append(cell.replace("|", "\\|"))
        print(f"| {attack} | {expected} | " + " | ".join(cells) + " |")
    skipped = sorted({f"{im}: {o['message']}" for (t, im), os_ in outcomes.items() for o in os_
                      if o["outcome"] == "skipped" and im not in shown})
    if skipped:
        print()
        print("Not run here: " + "; ".join(skipped[:3]))


if __name__ == "__main__":
    main(sys.argv[1])
