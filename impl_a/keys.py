"""Key files (SPEC 2): 64 hex characters + newline, mode 0600 or 0400, checked against the manifest."""

from __future__ import annotations

import os
import pathlib
import stat

from impl_a.errors import LocalError


def read_secret(path: str | os.PathLike) -> bytes:
    """Read a 32-byte secret; LocalError(exit_code=3) on any problem. Never echoes the content."""
    p = pathlib.Path(path)
    try:
        st = p.stat()
        raw = p.read_bytes()
    except OSError as exc:
        raise LocalError(f"key file {p}: {exc.strerror}", 3) from None
    mode = stat.S_IMODE(st.st_mode)
    if mode not in (0o600, 0o400):
        raise LocalError(f"key file {p} has mode {mode:o}; it must be 600 or 400", 3)
    if len(raw) != 65 or raw[64:] != b"\n":
        raise LocalError(f"key file {p} is malformed (expected 64 hex characters and a newline)", 3)
    text = raw[:64].decode("ascii", errors="replace")
    if any(c not in "0123456789abcdef" for c in text):
        raise LocalError(f"key file {p} is malformed (not lowercase hex)", 3)
    return bytes.fromhex(text)
