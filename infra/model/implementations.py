"""The node implementations the toolkit knows, and the commands that run them (SPEC 4).

A manifest's `implementation` value is the key: it names a node command, a client command and a
conformance command. Tools start implementations only by these command lines; they never import
one. Python implementations run as `python -m <package>.<part>`; compiled ones as programs their
build script writes (impl_c: `impl_c/build.sh` -> `impl_c/bin/heraclius-{node,client,conformance}`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from infra.errors import UsageError
from infra.model.resources import PACKAGE_ROOT

REPO_ROOT = PACKAGE_ROOT  # where compiled implementations keep their programs (repository checkouts)


@dataclass(frozen=True)
class Implementation:
    name: str                 # the manifest's `implementation` value, e.g. "impl_a"
    letter: str               # its one-letter name in --mix patterns and --client
    language: str
    stack: str                # one line for plans and docs
    python_package: str = ""  # set for Python implementations
    binary_dir: str = ""      # set for compiled ones: where their build writes the programs
    build_script: str = ""    # relative to the repository; run by `./dev` and by ensure_built()

    def command(self, part: str, module: str | None = None) -> list[str]:
        """The command line prefix of `part` ('node', 'client' or 'conformance'); `module` replaces
        a Python implementation's module (stand-ins in tests)."""
        if module:
            return [sys.executable, "-m", module]
        if self.python_package:
            return [sys.executable, "-m", f"{self.python_package}.{part}"]
        return [str(REPO_ROOT / self.binary_dir / f"heraclius-{part}")]

    def missing(self) -> str | None:
        """Why this implementation cannot run here (None when it can)."""
        if self.python_package:
            return None
        for part in ("node", "client", "conformance"):
            path = Path(self.command(part)[0])
            if not os.access(path, os.X_OK):
                return f"{path.relative_to(REPO_ROOT)} is not built"
        return None


IMPLEMENTATIONS: dict[str, Implementation] = {
    i.name: i for i in (
        Implementation("impl_a", "a", "Python", "PyNaCl/libsodium, protobuf (upb), SQLite, asyncio",
                       python_package="impl_a"),
        Implementation("impl_b", "b", "Python", "cryptography/OpenSSL, own codec, LMDB, threads",
                       python_package="impl_b"),
        Implementation("impl_c", "c", "Go", "Go crypto/ed25519 + x/crypto, own codec, bbolt, goroutines",
                       binary_dir="impl_c/bin", build_script="impl_c/build.sh"),
    )
}
BY_LETTER: dict[str, Implementation] = {i.letter: i for i in IMPLEMENTATIONS.values()}


def get(name: str) -> Implementation:
    impl = IMPLEMENTATIONS.get(name) or BY_LETTER.get(name)
    if impl is None:
        known = ", ".join(f"{i.letter} ({i.name})" for i in IMPLEMENTATIONS.values())
        raise UsageError(f"unknown implementation {name!r}", fix=f"use one of {known}")
    return impl


def ensure_built(impl: Implementation) -> None:
    """Build a compiled implementation if its programs are missing (Go modules come from the proxy)."""
    if impl.missing() is None or not impl.build_script:
        return
    script = REPO_ROOT / impl.build_script
    if not script.exists():
        raise UsageError(f"{impl.name} has no build script {impl.build_script}")
    if shutil.which("go") is None:
        raise UsageError(f"{impl.name} needs Go to build", fix="install Go 1.26 (https://go.dev/dl) and retry")
    proc = subprocess.run([str(script)], cwd=REPO_ROOT, capture_output=True, text=True)
    if proc.returncode != 0 or impl.missing():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise UsageError(f"building {impl.name} failed: " + " | ".join(tail), fix=f"run {impl.build_script} and read its output")


def runnable() -> list[Implementation]:
    """The implementations whose commands exist here, in letter order."""
    return [i for i in IMPLEMENTATIONS.values() if i.missing() is None]
