"""Coverage-guided fuzzing of impl_b's decoders (tests/impl_b/fuzz_b.py) with atheris.

Each target runs in its own process for HERACLIUS_FUZZ_SECONDS seconds (default 3: a CI smoke
run; e.g. HERACLIUS_FUZZ_SECONDS=600 for a long manual run), seeded with the conformance vectors.
A crash fails the test and leaves libFuzzer's crash-* input in the test's temporary directory."""

import glob
import os
import shutil
import subprocess
import sys

import pytest

from .netproc import ROOT

pytest.importorskip("atheris", reason="atheris not installed (pinned in the test extra for CPython 3.11 x86_64)")

SECONDS = int(os.environ.get("HERACLIUS_FUZZ_SECONDS", "3"))
SEEDS = {
    "codec": [],  # built below: message index byte + encoded.bin
    "stream": "wire_spec/vectors/transport/stream/*/*/stream.bin",
    "handshake": None,
    "admin": "wire_spec/vectors/admin/request/*/*/request.bin",
}


def _corpus(target: str, where) -> str:
    d = os.path.join(where, f"corpus-{target}")
    os.makedirs(d, exist_ok=True)
    if target == "codec":
        from impl_b.schema import MESSAGES
        names = sorted(MESSAGES)
        for i, path in enumerate(sorted(glob.glob(os.path.join(ROOT, "wire_spec/vectors/codec/*/*/*/encoded.bin")))):
            name = path.split(os.sep)[-4]
            if name in names:
                with open(path, "rb") as fh, open(os.path.join(d, f"seed{i}"), "wb") as out:
                    out.write(bytes([names.index(name)]) + fh.read())
    elif SEEDS[target]:
        for i, path in enumerate(sorted(glob.glob(os.path.join(ROOT, SEEDS[target])))[:300]):
            shutil.copy(path, os.path.join(d, f"seed{i}"))
    return d


@pytest.mark.parametrize("target", ["codec", "stream", "handshake", "admin"])
def test_fuzz_target(target, tmp_path):
    corpus = _corpus(target, str(tmp_path))
    r = subprocess.run(
        [sys.executable, "-m", "tests.impl_b.fuzz_b", target, f"-max_total_time={SECONDS}", "-rss_limit_mb=1024",
         "-timeout=10", "-print_final_stats=1", corpus],
        cwd=str(tmp_path), capture_output=True, text=True, timeout=SECONDS + 120,
        env={**os.environ, "PYTHONPATH": ROOT})
    crashes = glob.glob(str(tmp_path / "crash-*")) + glob.glob(str(tmp_path / "timeout-*"))
    assert r.returncode == 0 and not crashes, f"{target}: exit {r.returncode}, {crashes}\n{r.stderr[-3000:]}"
