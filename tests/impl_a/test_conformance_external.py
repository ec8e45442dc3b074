"""The conformance runner passes every external vector and reports failures properly."""

import json

from impl_a import conformance


def test_external_vectors_all_pass(capsys):
    assert conformance.main(["wire_spec/vectors/external"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    passed = int(out[-1].split()[0])
    assert passed > 1000 and out[-1].endswith("0 failed")


def test_runner_reports_a_wrong_verdict(tmp_path, capsys):
    with open("wire_spec/vectors/external/ed25519/speccheck_cases.json") as fh:
        cases = json.load(fh)
    bad = tmp_path / "speccheck_cases.json"
    # Swapping cases 0 and 3 flips two verdicts.
    bad.write_text(json.dumps([cases[3], cases[1], cases[2], cases[0]]))
    assert conformance.main([str(bad)]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and out.strip().endswith("2 passed, 2 failed")


def test_no_cases_is_failure(tmp_path):
    assert conformance.main([str(tmp_path)]) == 1
