"""Coverage-guided fuzzing (atheris) of impl_a's decoders of remote input: the codec, the stream
framing, handshake message parsing and the admin request parser (targets in fuzz_targets.py).

A few seconds per target by default; HERACLIUS_FUZZ_SECONDS=600 gives each target ten minutes. A
crash (any exception other than the decoder's own rejection) fails the test, and the input that
caused it is kept as crash-* in the test's temporary directory (path in the failure message)."""

import importlib.util
import os
import subprocess
import sys

import pytest

from .procnet import ROOT

SECONDS = int(os.environ.get("HERACLIUS_FUZZ_SECONDS", "3"))

pytestmark = pytest.mark.skipif(importlib.util.find_spec("atheris") is None,
                                reason="atheris is not installed (pyproject test extra, CPython 3.11 x86_64)")


@pytest.mark.parametrize("target", ["codec", "stream", "handshake", "admin"])
def test_fuzz_target(target, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.run([sys.executable, "-m", "tests.impl_a.fuzz_targets", target, f"-max_total_time={SECONDS}",
                        "-rss_limit_mb=1024", "-timeout=10"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=SECONDS * 3 + 120)
    assert p.returncode == 0, f"{target} crashed (inputs in {tmp_path}):\n{p.stderr[-4000:]}"
    assert "Done " in p.stderr
