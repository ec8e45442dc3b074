"""Regenerates every generated area of wire_spec/vectors/ (never external/, formats/ or generator/)."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as a script: python wire_spec/vectors/generator/generate.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
    __package__ = "wire_spec.vectors.generator"  # noqa: A001

from importlib import import_module  # noqa: E402

VECTORS_DIR = Path(__file__).resolve().parents[1]

# (area, module, function); an area folder is deleted and rewritten as a whole.
AREAS = [
    ("codec", "codec_cases", "generate"),
    ("signing", "signing_cases", "generate"),
    ("crypto", "signing_cases", "generate_crypto"),
    ("merkle", "merkle_cases", "generate"),
    ("qc", "certs_cases", "generate_qc"),
    ("compact", "certs_cases", "generate_compact"),
    ("shard", "manifest_cases", "generate_shard_map"),
    ("manifest", "manifest_cases", "generate"),
    ("execution", "execution_cases", "generate"),
    ("noise", "noise_cases", "generate_handshake"),
    ("noise", "noise_cases", "generate_rekey"),
    ("noise", "noise_cases", "generate_transport"),
    ("transport", "transport_cases", "generate"),
    ("admin", "admin_cases", "generate"),
]
# Modules that also write generated format documents into formats/.
DOC_MODULES = ["codec_doc", "signing_cases"]
GENERATED_DOC_PREFIXES = ("codec_", "signing_")


def generate(out: Path) -> int:
    """Writes everything into a scratch folder first, so a failing run leaves `out` untouched."""
    writer_mod = import_module(f"{__package__}.writer")
    with tempfile.TemporaryDirectory(prefix="heraclius-vectors-") as scratch:
        tmp = Path(scratch)
        w = writer_mod.CaseWriter(tmp)
        for _, module, function in AREAS:
            getattr(import_module(f"{__package__}.{module}"), function)(w)
        (tmp / "formats").mkdir()
        for module in DOC_MODULES:
            import_module(f"{__package__}.{module}").write_docs(tmp / "formats")
        for area in sorted({a for a, _, _ in AREAS}):
            if (out / area).exists():
                shutil.rmtree(out / area)
            shutil.copytree(tmp / area, out / area)
        (out / "formats").mkdir(exist_ok=True)
        for stale in sorted((out / "formats").glob("*.md")):
            if stale.name.startswith(GENERATED_DOC_PREFIXES):
                stale.unlink()
        for doc in sorted((tmp / "formats").iterdir()):
            shutil.copyfile(doc, out / "formats" / doc.name)
    return w.count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=VECTORS_DIR, help="output root (default: wire_spec/vectors)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    count = generate(args.out)
    print(f"wrote {count} cases under {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
