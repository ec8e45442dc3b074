"""Differential test (SPEC 17.1): the same inputs through every implementation's `--serve` adapter.

The short CI run: every vector seed, then a fixed-seed budget of mutated inputs (MUTATIONS, capped
at MUTATION_SECONDS). It asserts zero disagreements and zero adapter failures; ops an adapter does
not implement yet ("unknown op") are not comparable and reported as a warning. The long run is
`python -m tests.differential --seconds 600 --seed N` (docs/testing.md). The last tests check the
harness itself on the vector generator's reference adapter, with injected faults.
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from pathlib import Path

import pytest

from . import corpus, mutate
from .adapters import Adapter, registry_adapters
from .runner import Case, Differential, mutant_cases, seed_cases

MUTATIONS = int(os.environ.get("HERACLIUS_DIFF_MUTATIONS", "3000"))
MUTATION_SECONDS = float(os.environ.get("HERACLIUS_DIFF_SECONDS", "30"))
SEED = 20261204
REFERENCE = [sys.executable, "-m", "tests.differential.reference"]


def _explain(d: Differential) -> str:
    return "\n\n".join([d.format(f) for f in d.findings.values()] + [d.report()])


def _warn_unfinished(d: Differential, what: str) -> None:
    nc = {op: st.not_comparable for op, st in d.stats.items() if st.not_comparable}
    if nc:
        warnings.warn(f"differential {what}: not comparable (adapter answered 'unknown op'): {nc}", stacklevel=2)


@pytest.fixture(scope="module")
def differential(tmp_path_factory):
    adapters, missing = registry_adapters()
    if len(adapters) < 2:
        why = "; ".join(f"{n}: {m}" for n, m in missing.items()) or "registry lists fewer than two"
        pytest.skip(f"differential testing needs two runnable implementations, have "
                    f"{[a.name for a in adapters]} ({why})")
    d = Differential(adapters, tmp_path_factory.mktemp("differential-findings"))
    yield d
    d.close()


def test_vector_seeds_agree(differential):
    d = differential
    cases = seed_cases()
    assert len(cases) > 2000 and {c.op for c in cases} == set(corpus.OPS)
    d.run(cases)
    _warn_unfinished(d, "vector seeds")
    print("\n" + d.report())
    assert not d.findings, _explain(d)


def test_mutated_inputs_agree(differential):
    d = differential
    cases = mutant_cases(MUTATIONS, SEED)
    before = set(d.findings)
    started = time.monotonic()
    ran = d.run(cases, deadline=started + MUTATION_SECONDS)
    _warn_unfinished(d, "mutated inputs")
    print(f"\n{ran} of {len(cases)} mutated inputs in {time.monotonic() - started:.1f} s\n" + d.report())
    new = {k: f for k, f in d.findings.items() if k not in before}
    assert not new, _explain(d)
    assert ran >= min(len(cases), 500), f"only {ran} mutated inputs within {MUTATION_SECONDS} s"


def test_adapters_exit_0_at_end_of_input():
    adapters, _ = registry_adapters()
    if len(adapters) < 2:
        pytest.skip("needs two runnable implementations")
    for a in adapters:
        assert a.ask({"op": "merkle_root", "leaves": ["00"]}) is not None, a.failures
        assert a.close() == 0, f"{a.name} did not exit 0 at end of input"


# ------------------------------------------------------------------ the harness itself

class _Faulty(Adapter):
    """The reference adapter with HERACLIUS_DIFF_FAULT set (see reference._faulty)."""

    def __init__(self, name, faults, timeout=3.0, fail_limit=3):
        super().__init__(name, REFERENCE, timeout, fail_limit)
        self.faults = faults

    def start(self):
        old = os.environ.get("HERACLIUS_DIFF_FAULT")
        os.environ["HERACLIUS_DIFF_FAULT"] = self.faults
        try:
            super().start()
        finally:
            if old is None:
                os.environ.pop("HERACLIUS_DIFF_FAULT")
            else:
                os.environ["HERACLIUS_DIFF_FAULT"] = old


def _sample(ops, per_op=3):
    out = []
    for op in ops:
        out += [c for c in seed_cases([op])][:per_op]
    return out


CHEAP = ["decode", "encode", "merkle_root", "merkle_verify", "shard_of", "signing_bytes"]


def test_harness_agreement_and_lies(tmp_path):
    d = Differential([Adapter("ref1", REFERENCE), _Faulty("ref2", "merkle_verify:lie,encode:unfinished")],
                     tmp_path, log=lambda s: None)
    try:
        d.run(_sample(CHEAP) + mutant_cases(60, 1, CHEAP))
    finally:
        d.close()
    kinds = {f.signature[1] for f in d.findings.values()}
    assert kinds == {"merkle_verify"}, _explain(d)
    f = next(iter(d.findings.values()))
    body = json.loads(Path(f.reproducer).read_text())
    assert body["answers"]["ref1"]["verdict"] != body["answers"]["ref2"]["verdict"]
    assert body["reference"]["ok"] is True and "replay" in body
    assert d.stats["encode"].not_comparable.get("ref2", 0) > 0 and d.stats["encode"].disagreements == 0


def test_harness_restarts_dead_and_hung_adapters(tmp_path):
    bad = _Faulty("bad", "decode:crash,merkle_root:hang", timeout=2.5, fail_limit=2)
    d = Differential([Adapter("good", REFERENCE), bad], tmp_path, log=lambda s: None)
    try:
        # shard_of first: an adapter that never answers a line is "absent", not restarted per op
        cases = _sample(["shard_of", "decode", "merkle_root", "shard_of"], per_op=5)
        d.run(cases)
    finally:
        d.close()
    kinds = {(f.kind, f.case.op) for f in d.findings.values()}
    assert kinds == {("died", "decode"), ("hung", "merkle_root")}
    assert bad.given_up == {"decode", "merkle_root"} and bad.restarts == 4 and not bad.absent
    assert d.stats["shard_of"].compared == 10   # the second five answered by a fresh process after the failures
    for f in d.findings.values():
        assert json.loads(Path(f.reproducer).read_text())["request"]["op"] == f.case.op


def test_harness_reports_an_absent_adapter(tmp_path):
    gone = Adapter("gone", [sys.executable, "-c", "import sys; print('no --serve here'); sys.exit(1)"], timeout=5)
    d = Differential([Adapter("good", REFERENCE), gone], tmp_path, log=lambda s: None)
    try:
        d.run(_sample(["shard_of", "decode", "merkle_root"], per_op=4))
    finally:
        d.close()
    assert gone.absent and gone.restarts == 3
    assert "NO ADAPTER" in d.report()


def test_mutators_are_deterministic_and_change_inputs():
    a = mutant_cases(200, 7)
    b = mutant_cases(200, 7)
    assert [(c.fields, c.mutation) for c in a] == [(c.fields, c.mutation) for c in b]
    assert [c.fields for c in a] != [c.fields for c in mutant_cases(200, 8)]
    by_key = {(s.source, s.op): s.fields for s in corpus.seeds()}
    changed = sum(1 for c in a if by_key.get((c.source, c.op)) != c.fields)
    assert changed > 150
    assert {c.op for c in a} == set(corpus.OPS) - {"protocol"}


def test_wire_parser_round_trips_every_parsable_seed():
    n = 0
    for s in corpus.seeds():
        if s.op == "decode":
            data = bytes.fromhex(s.fields["hex"])
            fields = mutate.parse(data)
            if fields is not None:
                assert b"".join(f.bytes() for f in fields) == data
                n += 1
    assert n > 1000


def test_case_request_shape():
    c = Case("merkle_root", {"leaves": ["00"]}, "x")
    assert c.request() == {"op": "merkle_root", "leaves": ["00"]} and c.exact
