"""The conformance runner passes every vector (ours and external) and reports failures properly."""

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


def test_all_vectors_pass(capsys):
    assert conformance.main(["wire_spec/vectors"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert int(last.split()[0]) > 2000 and last.endswith(" 0 failed")


def test_runner_detects_a_corrupted_case(tmp_path, capsys):
    import shutil

    src = next(p for p in sorted((conformance.pathlib.Path("wire_spec/vectors/codec/Proposal/valid")).iterdir()))
    dst = tmp_path / "codec" / "Proposal" / "valid" / src.name
    shutil.copytree(src, dst)
    (dst / "encoded.bin").write_bytes((dst / "encoded.bin").read_bytes() + b"\x78\x01")  # unknown field
    assert conformance.main([str(tmp_path)]) == 1
    assert "FAIL" in capsys.readouterr().out
