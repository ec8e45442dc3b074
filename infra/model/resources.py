"""Where the files the tools need live, in the repository and in an installed wheel alike.

The wheel installs `infra`, `tui`, the implementations' packages and a data-only `wire_spec` directory
(the schemas and the proto, mapped from the repository's `wire_spec/` at build time: that directory stays
the single source) side by side in site-packages, exactly as they sit in the repository. So every path
is relative to the directory holding the `infra` package, whichever of the two it is."""

from __future__ import annotations

from pathlib import Path

from infra.errors import UsageError

PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the repository, or site-packages
SPEC_DIR = PACKAGE_ROOT / "wire_spec"
SPEC_FILES = ("heraclius.proto", "manifest.schema.json", "status.schema.json")


def spec_file(name: str) -> Path:
    """A file of wire_spec/ (schema or proto); UsageError with a fix when the install lacks it."""
    path = SPEC_DIR / name
    if not path.is_file():
        raise UsageError(f"{path} is missing: this installation of heraclius has no wire_spec data",
                         fix="reinstall heraclius from a wheel built by `pip wheel .` in the repository "
                             "(it carries wire_spec/*.json and *.proto), or run from the repository")
    return path


def source_dir(package: str) -> Path:
    """The directory of a top-level package shipped beside infra (e.g. an implementation's)."""
    return PACKAGE_ROOT / package
