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


def imported_names(path: Path) -> set[str]:
    """Full dotted names of the modules `path` imports (absolute imports only)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def test_tools_layers_run_one_way():
    """infra.model (and infra.errors) is the one model of deployments and verdicts; the monitor (tui)
    uses only it and receives the operations it may perform; only infra.cli, the composition root,
    may import tui. So there is no import cycle between infra and tui."""
    bad = []
    for path in sorted((ROOT / "tui").rglob("*.py")):
        for name in imported_names(path):
            if name.split(".")[0] == "infra" and not name.startswith(("infra.model", "infra.errors")):
                bad.append(f"{path.relative_to(ROOT)} imports {name}")
    for path in sorted((ROOT / "infra").rglob("*.py")):
        if path.relative_to(ROOT).parts[:2] == ("infra", "cli"):
            continue
        bad += [f"{path.relative_to(ROOT)} imports {n}" for n in imported_names(path) if n.split(".")[0] == "tui"]
    for path in sorted((ROOT / "infra" / "model").rglob("*.py")):
        bad += [f"{path.relative_to(ROOT)} imports {n}" for n in imported_names(path)
                if n.startswith("infra.") and not n.startswith(("infra.model", "infra.errors"))]
    assert bad == []


def test_no_test_code_in_the_shipped_package():
    shipped = [p for pkg in ("infra", "tui") for p in (ROOT / pkg).rglob("*.py")]
    assert [str(p.relative_to(ROOT)) for p in shipped if any(n.split(".")[0] == "tests" for n in imported_names(p))] == []
    assert not (ROOT / "infra" / "scenario.py").exists() and not (ROOT / "infra" / "twins.py").exists()


def test_providers_are_chosen_in_one_place():
    """Operations call the Provider interface; only infra/providers/__init__.py maps names to providers."""
    hits = []
    for path in sorted((ROOT / "infra").rglob("*.py")):
        if path == ROOT / "infra" / "providers" / "__init__.py":
            continue
        text = path.read_text()
        for needle in ('provider == "', 'provider != "', "provider == '"):
            if needle in text:
                hits.append(f"{path.relative_to(ROOT)}: {needle}")
    assert hits == []
