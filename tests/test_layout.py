"""Import rules of the repository (DESIGN.md "Layout"): implementations never import each other or the
tools, each keeps to its own crypto library, and the tools (infra, tui) import no implementation: they
start nodes by command line and talk to them over the spec's endpoints."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# package -> top-level modules it must not import
FORBIDDEN = {
    "impl_a": {"impl_b", "impl_c", "infra", "tui", "tests", "cryptography", "lmdb"},
    "impl_b": {"impl_a", "impl_c", "infra", "tui", "tests", "nacl", "google", "sqlite3"},
    "infra": {"impl_a", "impl_b", "impl_c"},
    "tui": {"impl_a", "impl_b", "impl_c"},
    "wire_spec": {"impl_a", "impl_b", "impl_c", "infra", "tui"},
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
                "import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
            found.add(str(node.args[0].value).split(".")[0])
    return found


def violations(package: str) -> list[str]:
    out = []
    for path in sorted((ROOT / package).rglob("*.py")):
        bad = imported_modules(path) & FORBIDDEN[package]
        if bad:
            out.append(f"{path.relative_to(ROOT)} imports {', '.join(sorted(bad))}")
    return out


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_import_rules(package):
    assert violations(package) == []


def test_go_implementation_refers_to_no_other_implementation():
    hits = []
    for path in sorted((ROOT / "impl_c").rglob("*.go")) if (ROOT / "impl_c").exists() else []:
        text = path.read_text(errors="replace")
        if any(needle in text for needle in ("impl_a/", "impl_b/", "impl_a.", "impl_b.")):
            hits.append(str(path.relative_to(ROOT)))
    assert hits == []


def test_the_rule_catches_a_violation(tmp_path):
    bad = tmp_path / "x.py"
    bad.write_text("import os\nfrom impl_b.codec import decode\nimportlib.import_module('impl_c.x')\n")
    assert imported_modules(bad) >= {"impl_b", "impl_c", "os"}
