"""Feed cases to every adapter, compare the answers (SPEC 17.1), minimise and report disagreements.

Agreement: the answers are equal as JSON values after dropping `id`; for mutated inputs `reason`
and `rule` are dropped first (the spec fixes them only for single-rule vector inputs), so verdicts
and every accepted output are always compared. An `ok: false` answer is compared as just
`{"ok": false}` (the error text is free). An `ok: false` whose error says the op is unknown or not
implemented is "not comparable" (an unfinished adapter): that implementation is left out of that
comparison and counted. An adapter that dies, hangs or prints garbage is a failure of its
implementation (see adapters.py), reported with the input.
"""

from __future__ import annotations

import json
import random
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from . import corpus, mutate, reference
from .adapters import Adapter, Failure

UNFINISHED = re.compile(r"unknown op|not implemented|unsupported op|unimplemented", re.I)

# share of the mutation budget per op (decode gets the most: every message type, cheapest to run)
WEIGHTS = {"protocol": 0, "decode": 30, "encode": 10, "ed25519_verify": 8, "signing_bytes": 6, "merkle_root": 4,
           "merkle_verify": 6, "qc_verify": 8, "compact_verify": 9, "execute": 9, "shard_of": 3,
           "manifest_validate": 7}


@dataclass
class Case:
    op: str
    fields: dict
    source: str
    mutation: str | None = None   # None: an unmutated vector input (reason/rule compared too)

    @property
    def exact(self) -> bool:
        return self.mutation is None

    def request(self) -> dict:
        return dict(self.fields) if self.op == "protocol" else {"op": self.op, **self.fields}


@dataclass
class Finding:
    kind: str                     # "disagreement" or a Failure kind ("died", "hung", ...)
    case: Case
    answers: dict
    signature: tuple
    minimised: dict | None = None
    count: int = 1
    reproducer: str | None = None
    detail: str = ""


@dataclass
class OpStats:
    seeds: int = 0
    mutated: int = 0
    compared: int = 0
    disagreements: int = 0
    not_comparable: dict = field(default_factory=dict)   # implementation -> count


REAL_OPS = set(corpus.OPS) - {"protocol"}


def is_unfinished(ans: dict | None, case: Case) -> bool:
    """An unfinished adapter: `ok: false`, "unknown op", for one of the SPEC 17.1 ops."""
    return (bool(ans) and case.op in REAL_OPS and ans.get("ok") is False
            and bool(UNFINISHED.search(str(ans.get("error", "")))))


def _strip(v):
    if isinstance(v, dict):
        return {k: _strip(x) for k, x in v.items() if k not in ("reason", "rule")}
    if isinstance(v, list):
        return [_strip(x) for x in v]
    return v


def normal(ans: dict, exact: bool) -> dict:
    if ans.get("ok") is not True:
        return {"ok": False, "id": ans["id"]} if "id" in ans else {"ok": False}
    a = dict(ans)  # only raw lines keep their id (echoed); the adapters strip ours
    return a if exact else _strip(a)


def summary(a: dict) -> str:
    if a.get("ok") is not True:
        return "error"
    if "verdict" in a:
        return str(a["verdict"]) + (f"/{a['reason']}" if "reason" in a else "") + (f"/rule {a['rule']}" if "rule" in a
                                                                                     else "")
    if "decisions" in a and isinstance(a["decisions"], list):
        d = a["decisions"]
        return f"{len(d)} decisions" + (", last rejected" if d and isinstance(d[-1], dict) else "")
    return "output"


def _ref(req: dict) -> dict:
    if "__raw__" in req:
        import io
        out = io.StringIO()
        reference.serve(io.StringIO(req["__raw__"].encode("utf-8", "surrogateescape").decode("utf-8", "replace")
                                    + "\n"), out)
        return json.loads(out.getvalue() or "null")
    try:
        return {"ok": True, **reference.answer(req)}
    except reference.BadRequest as exc:
        return {"ok": False, "error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - the reference is only an opinion
        return {"ok": False, "error": f"reference failed: {type(exc).__name__}: {exc}"}


class Differential:
    def __init__(self, adapters: list[Adapter], out_dir: Path | None = None, minimise: bool = True,
                 chunk: int = 32, log=print):
        self.adapters = adapters
        self.out_dir = out_dir
        self.minimise_on = minimise
        self.chunk = chunk
        self.log = log
        self.stats: dict[str, OpStats] = {op: OpStats() for op in corpus.OPS}
        self.findings: dict[tuple, Finding] = {}
        self.minimise_budget = 600   # requests per minimisation
        self._pool = ThreadPoolExecutor(max(1, len(adapters)))

    # ------------------------------------------------------------ asking

    def ask(self, requests: list[dict]) -> list[dict]:
        """{implementation: answer or None} per request; failures are recorded by the adapters."""
        futures = {a.name: self._pool.submit(a.ask_many, requests) for a in self.adapters}
        results = {name: f.result() for name, f in futures.items()}
        return [{name: results[name][i] for name in results} for i in range(len(requests))]

    def compare(self, case: Case, answers: dict) -> tuple | None:
        """The disagreement signature, or None when the comparable answers agree."""
        usable = {n: a for n, a in answers.items() if a is not None and not is_unfinished(a, case)}
        if len(usable) < 2:
            return None
        normed = {n: normal(a, case.exact) for n, a in usable.items()}
        groups: list[str] = []
        for n in sorted(normed):
            key = json.dumps(normed[n], sort_keys=True)
            if key not in groups:
                groups.append(key)
        if len(groups) < 2:
            return None
        tag = case.fields.get("message") or case.fields.get("domain") or ""
        by_impl = tuple((n, summary(normed[n]), groups.index(json.dumps(normed[n], sort_keys=True)))
                        for n in sorted(normed))
        return ("disagreement", case.op, tag, case.exact, by_impl)

    # ------------------------------------------------------------ running

    def run(self, cases: list[Case], deadline: float | None = None) -> int:
        """Run the cases in chunks; returns how many ran (stops at the deadline, a time.monotonic())."""
        done = 0
        for start in range(0, len(cases), self.chunk):
            if deadline is not None and time.monotonic() > deadline:
                break
            part = cases[start:start + self.chunk]
            before = {a.name: len(a.failures) for a in self.adapters}
            answers = self.ask([c.request() for c in part])
            for a in self.adapters:
                for fail in a.failures[before[a.name]:]:
                    self._failure(a, fail, part)
            for c, ans in zip(part, answers, strict=True):
                st = self.stats[c.op]
                if c.exact:
                    st.seeds += 1
                else:
                    st.mutated += 1
                for n, x in ans.items():
                    if is_unfinished(x, c):
                        st.not_comparable[n] = st.not_comparable.get(n, 0) + 1
                sig = self.compare(c, ans)
                if sig is None:
                    if sum(1 for x in ans.values() if x is not None and not is_unfinished(x, c)) >= 2:
                        st.compared += 1
                    continue
                st.compared += 1
                st.disagreements += 1
                self._disagreement(sig, c, ans)
            done += len(part)
        return done

    def _failure(self, adapter: Adapter, fail: Failure, part: list[Case]) -> None:
        case = next((c for c in part if c.request() == fail.request), None)
        case = case or Case(fail.request.get("op", "?"), {k: v for k, v in fail.request.items() if k != "op"}, "?")
        sig = ("failure", fail.implementation, fail.kind, case.op)
        if sig in self.findings:
            self.findings[sig].count += 1
            return
        f = Finding(fail.kind, case, {fail.implementation: None}, sig, detail=fail.detail)
        self.findings[sig] = f
        self._write(f)
        self.log(self.format(f))

    def _disagreement(self, sig: tuple, case: Case, answers: dict) -> None:
        if sig in self.findings:
            self.findings[sig].count += 1
            return
        f = Finding("disagreement", case, answers, sig)
        if self.minimise_on:
            f.minimised = self.minimise(case, sig)
        self.findings[sig] = f
        self._write(f)
        self.log(self.format(f))

    # ------------------------------------------------------------ minimising

    def _candidates(self, fields: dict) -> list[dict]:
        out = []

        def hex_cuts(h: str) -> list[str]:
            b = bytes.fromhex(h)
            cuts = []
            parsed = mutate.parse(b)
            if parsed and len(parsed) > 1:
                for i in range(len(parsed)):
                    cuts.append(b"".join(f.bytes() for j, f in enumerate(parsed) if j != i))
            size = len(b) // 2
            while size >= 1:
                for start in range(0, len(b), size):
                    cuts.append(b[:start] + b[start + size:])
                    if len(cuts) > 64:
                        break
                size //= 2
            return [c.hex() for c in cuts]

        for name, v in fields.items():
            if isinstance(v, str) and name in ("hex", "compact", "qc", "header", "message", "key", "public",
                                              "signature") and len(v) > 2:
                try:
                    for c in hex_cuts(v):
                        out.append({**fields, name: c})
                except ValueError:
                    pass
            if isinstance(v, list) and len(v) > 1:
                for i in range(len(v)):
                    out.append({**fields, name: v[:i] + v[i + 1:]})
            if name == "batches" and isinstance(v, list):
                for i, h in enumerate(v):
                    if isinstance(h, str) and len(h) > 2:
                        try:
                            for c in hex_cuts(h)[:24]:
                                out.append({**fields, name: v[:i] + [c] + v[i + 1:]})
                        except ValueError:
                            pass
        return out

    def minimise(self, case: Case, sig: tuple) -> dict | None:
        """A smaller request with the same disagreement signature (greedy, bounded), or None."""
        best = dict(case.fields)
        spent = 0
        improved = True
        while improved and spent < self.minimise_budget:
            improved = False
            cands = self._candidates(best)
            for start in range(0, len(cands), self.chunk):
                part = cands[start:start + self.chunk]
                spent += len(part)
                trial = [Case(case.op, f, case.source, case.mutation) for f in part]
                before = {a.name: len(a.failures) for a in self.adapters}
                answers = self.ask([t.request() for t in trial])
                for a in self.adapters:  # a minimisation candidate that kills an adapter is a finding too
                    for fail in a.failures[before[a.name]:]:
                        self._failure(a, fail, trial)
                for t, ans in zip(trial, answers, strict=True):
                    if self.compare(t, ans) == sig:
                        best = t.fields
                        improved = True
                        break
                if improved or spent >= self.minimise_budget:
                    break
        return None if best == case.fields else {"op": case.op, **best}

    # ------------------------------------------------------------ reporting

    def _write(self, f: Finding) -> None:
        if self.out_dir is None:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        n = len(list(self.out_dir.glob("*.json"))) + 1
        path = self.out_dir / f"{n:03d}-{f.kind.replace(' ', '_')}-{f.case.op}.json"
        req = f.minimised or f.case.request()
        body = {"kind": f.kind, "op": f.case.op, "request": req, "original_request": f.case.request(),
                "source": f.case.source, "mutation": f.case.mutation, "answers": f.answers,
                "reference": _ref(req), "detail": f.detail,
                "replay": f"python -m tests.differential --replay {path}"}
        if f.minimised:
            body["minimised_answers"] = self.ask([f.minimised])[0]
        path.write_text(json.dumps(body, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        f.reproducer = str(path)

    @staticmethod
    def _short(v, limit: int = 1500) -> str:
        s = json.dumps(v, sort_keys=True)
        return s if len(s) <= limit else s[:limit] + f"... ({len(s)} chars)"

    def format(self, f: Finding) -> str:
        c = f.case
        lines = [f"{f.kind.upper()} in {c.op}: {'vector input' if c.exact else 'mutated input'} from {c.source}"]
        if c.mutation:
            lines.append(f"  mutation: {c.mutation}")
        lines.append(f"  input: {self._short(c.request())}")
        for n, a in sorted(f.answers.items()):
            lines.append(f"  {n}: {self._short(a) if a is not None else 'no answer'}")
        if f.detail:
            lines.append(f"  detail: {f.detail[:1500]}")
        if f.kind == "disagreement":
            lines.append(f"  reference (vector generator): {self._short(_ref(c.request()))}")
        if f.minimised:
            lines.append(f"  minimised input: {self._short(f.minimised)}")
        if f.reproducer:
            lines.append(f"  reproducer: {f.reproducer}")
        return "\n".join(lines)

    def report(self) -> str:
        lines = [f"{a.name}: NO ADAPTER: `{' '.join(a.argv)} --serve` died {a.restarts} times without answering "
                 f"a line; nothing more sent to it" for a in self.adapters if a.absent]
        lines += [f"{a.name}: gave up sending {op} after {a.fail_limit} failures" for a in self.adapters
                  for op in sorted(a.given_up) if not a.absent]
        lines += ["op                  seeds  mutated  compared  disagree  not comparable (unfinished op)"]
        for op, st in self.stats.items():
            nc = ", ".join(f"{n} {k}" for n, k in sorted(st.not_comparable.items())) or "-"
            lines.append(f"{op:<18} {st.seeds:>6} {st.mutated:>8} {st.compared:>9} {st.disagreements:>9}  {nc}")
        for f in self.findings.values():
            more = f" ({f.count} inputs in all with this pattern)" if f.count > 1 else ""
            lines.append(f"- {f.kind} {f.signature[1:]}{more}" + (f" -> {f.reproducer}" if f.reproducer else ""))
        return "\n".join(lines)

    def close(self) -> dict:
        codes = {a.name: a.close() for a in self.adapters}
        self._pool.shutdown()
        return codes


# ------------------------------------------------------------------ cases

def seed_cases(ops=None) -> list[Case]:
    return [Case(s.op, s.fields, s.source) for s in corpus.seeds() if ops is None or s.op in ops]


def mutant_cases(budget: int, seed: int, ops=None, salt: str = "") -> list[Case]:
    """`budget` mutated inputs, split over the ops by WEIGHTS; deterministic in (seed, salt)."""
    by_op = corpus.by_op()
    pool = mutate.message_pool(corpus.seeds())
    chosen = [op for op in corpus.OPS if (ops is None or op in ops) and by_op[op] and WEIGHTS[op]]
    total = sum(WEIGHTS[op] for op in chosen) or 1
    out = []
    for op in chosen:
        n = max(1, round(budget * WEIGHTS[op] / total))
        for k in range(n):
            rng = random.Random(f"{seed}:{salt}:{op}:{k}")
            s = by_op[op][rng.randrange(len(by_op[op]))]
            fields, what = mutate.mutate(s, rng, pool)
            out.append(Case(op, fields, s.source, what))
    return out
