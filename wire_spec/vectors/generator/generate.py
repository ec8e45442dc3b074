"""Regenerates every generated area of wire_spec/vectors/ (never external/, formats/ or generator/)."""

from __future__ import annotations

import argparse
import shutil
import sys
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
    ("transport", "transport_cases", "generate"),
]
# Modules that also write generated format documents into formats/.
DOC_MODULES = ["codec_doc", "signing_cases"]


def generate(out: Path) -> int:
    writer_mod = import_module(f"{__package__}.writer")
    w = writer_mod.CaseWriter(out)
    for area in {a for a, _, _ in AREAS}:
        if (out / area).exists():
            shutil.rmtree(out / area)
    for _, module, function in AREAS:
        getattr(import_module(f"{__package__}.{module}"), function)(w)
    (out / "formats").mkdir(exist_ok=True)
    for module in DOC_MODULES:
        import_module(f"{__package__}.{module}").write_docs(out / "formats")
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
