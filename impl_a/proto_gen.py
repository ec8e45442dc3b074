"""Regenerate impl_a/heraclius_pb2.py from wire_spec/heraclius.proto with grpcio-tools.

Run: .venv/bin/python -m impl_a.proto_gen  (or call generate(out_dir) from a test).
"""

from __future__ import annotations

import pathlib
import shutil
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROTO = ROOT / "wire_spec" / "heraclius.proto"
TARGET = pathlib.Path(__file__).resolve().parent / "heraclius_pb2.py"


def generate(out_dir: pathlib.Path) -> pathlib.Path:
    """Run protoc into out_dir and return the path of the generated module."""
    from grpc_tools import protoc

    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(PROTO, pathlib.Path(tmp) / "heraclius.proto")
        rc = protoc.main(["protoc", f"-I{tmp}", f"--python_out={out_dir}", "heraclius.proto"])
    if rc != 0:
        raise RuntimeError(f"protoc failed with exit code {rc}")
    return pathlib.Path(out_dir) / "heraclius_pb2.py"


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = generate(pathlib.Path(tmp))
        shutil.copy(out, TARGET)
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
