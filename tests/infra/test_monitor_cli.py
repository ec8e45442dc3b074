"""`heraclius-ops monitor`: the CLI entry to the Textual monitor (the app itself is tested in tests/tui)."""

import subprocess
import sys


def test_monitor_on_unknown_deployment_says_how_to_fix(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "infra.cli", "monitor", "--home", str(tmp_path), "--name", "nope"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "unknown deployment 'nope'" in proc.stderr
    assert "heraclius-ops deploy" in proc.stderr


def test_monitor_help_lists_its_options():
    proc = subprocess.run([sys.executable, "-m", "infra.cli", "monitor", "--help"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert "--interval" in proc.stdout and "--name" in proc.stdout
