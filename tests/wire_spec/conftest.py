"""Shared fixtures: paths, and heraclius.proto compiled by protoc into a private descriptor pool."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WIRE_SPEC = ROOT / "wire_spec"
VECTORS = WIRE_SPEC / "vectors"


@pytest.fixture(scope="session")
def descriptor_set(tmp_path_factory) -> bytes:
    out = tmp_path_factory.mktemp("protoc")
    proc = subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{WIRE_SPEC}", f"--python_out={out}",
         f"--descriptor_set_out={out / 'heraclius.desc'}", str(WIRE_SPEC / "heraclius.proto")],
        capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert (out / "heraclius_pb2.py").stat().st_size > 0
    return (out / "heraclius.desc").read_bytes()


@pytest.fixture(scope="session")
def pool(descriptor_set):
    from google.protobuf import descriptor_pb2, descriptor_pool

    fds = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set)
    p = descriptor_pool.DescriptorPool()  # private pool: never clashes with an implementation's pb2
    for fd in fds.file:
        p.Add(fd)
    return p


def message_class(pool, name: str):
    from google.protobuf import message_factory

    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"heraclius.v1.{name}"))


def case_dirs(area_handler: str, validity: str | None = None) -> list[Path]:
    base = VECTORS / area_handler
    pattern = f"{validity}/*" if validity else "*/*"
    return sorted(p for p in base.glob(pattern) if p.is_dir())
