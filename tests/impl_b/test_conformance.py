"""impl_b's conformance runner over the committed wire_spec vectors (own and external)."""

import json
import subprocess
import sys

from .netproc import ROOT


def test_conformance_runner_passes_every_committed_vector(tmp_path):
    # Run on the committed tree: the vector generator may be rewriting the working copy right now.
    archive = subprocess.run(["git", "archive", "HEAD", "wire_spec"], cwd=ROOT, capture_output=True, timeout=60,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tmp_path)], input=archive, check=True, timeout=60)
    r = subprocess.run([sys.executable, "-m", "impl_b.conformance", str(tmp_path / "wire_spec" / "vectors")],
                       cwd=ROOT, capture_output=True, text=True, timeout=240)
    last = r.stdout.strip().splitlines()[-1]
    assert r.returncode == 0, r.stdout[-3000:]
    passed = int(last.split()[0])
    assert last.endswith(" 0 failed") and passed > 2000


def test_conformance_runner_reports_failures(tmp_path):
    case = tmp_path / "crypto" / "ed25519_verify" / "valid" / "broken"
    case.mkdir(parents=True)
    (case / "meta.json").write_text('{"description": "a bad signature filed as valid"}')
    (case / "input.json").write_text(json.dumps({"public_key": "11" * 32, "message": "", "signature": "22" * 64}))
    r = subprocess.run([sys.executable, "-m", "impl_b.conformance", str(tmp_path)], cwd=ROOT, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 1
    assert r.stdout.startswith(f"FAIL {case}") and r.stdout.strip().endswith("0 passed, 1 failed")
