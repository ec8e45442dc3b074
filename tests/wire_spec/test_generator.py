"""The generator reproduces the committed vectors byte for byte, and the tree is complete."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.wire_spec.conftest import ROOT, VECTORS
from wire_spec.vectors.generator.generate import AREAS


def _tree(root, area: str) -> dict[str, bytes]:
    base = root / area
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(base.rglob("*")) if p.is_file()}


def test_regenerates_byte_identical(tmp_path):
    # the script form; test_module_form_starts covers `python -m wire_spec.vectors.generator`
    proc = subprocess.run([sys.executable, "wire_spec/vectors/generator/generate.py", "--out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stderr
    for area, *_ in AREAS:
        fresh, committed = _tree(tmp_path, area), _tree(VECTORS, area)
        assert fresh, area
        assert sorted(fresh) == sorted(committed), area
        changed = [name for name in fresh if fresh[name] != committed[name]]
        assert not changed, changed[:5]
    for doc in sorted((tmp_path / "formats").glob("*.md")):
        assert doc.read_bytes() == (VECTORS / "formats" / doc.name).read_bytes(), doc.name


def test_every_case_has_meta_and_every_handler_a_format_doc():
    handlers = 0
    for area, *_ in AREAS:
        for handler in sorted(p for p in (VECTORS / area).iterdir() if p.is_dir()):
            handlers += 1
            assert (VECTORS / "formats" / f"{area}_{handler.name}.md").is_file(), handler
            cases = [c for v in ("valid", "invalid") for c in sorted((handler / v).glob("*")) if c.is_dir()]
            assert cases, handler
            assert set(p.name for p in handler.iterdir()) <= {"valid", "invalid"}, handler
            for case in cases:
                meta = json.loads((case / "meta.json").read_text(encoding="utf-8"))
                assert meta["description"] and meta["verdict"], case
    assert handlers >= len(AREAS)


def test_module_form_starts():
    proc = subprocess.run([sys.executable, "-m", "wire_spec.vectors.generator", "--help"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "--out" in proc.stdout
