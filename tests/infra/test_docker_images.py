"""The Docker provider's image recipes without an engine: which recipe each implementation of the
registry gets, the static FROM-scratch recipe of impl_c (built with CGO_ENABLED=0 on the host), and
the content-addressed tags. The engine tests (building and running the images) are in tests/cloud."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from infra.errors import UsageError
from infra.model import implementations
from infra.providers.docker import images

needs_go = pytest.mark.skipif(shutil.which("go") is None or not (images.REPO_ROOT / "impl_c" / "go.mod").is_file(),
                              reason="needs Go 1.26 and the impl_c sources (./dev setup)")


def test_recipe_comes_from_the_registry():
    assert [images.recipe(n) for n in ("impl_a", "impl_b", "impl_c")] == ["debian", "debian", "static"]
    assert images.image_implementations() == list(implementations.IMPLEMENTATIONS)
    with pytest.raises(UsageError, match="no Docker image recipe for implementation 'impl_z'") as e:
        images.recipe("impl_z")
    assert "impl_c" in e.value.fix


def test_static_dockerfile_needs_no_base_image():
    text = (images.HERE / "Dockerfile.static").read_text()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    assert [ln for ln in lines if ln.upper().startswith("FROM")] == ["FROM scratch"]
    assert not any(ln.upper().startswith("RUN") for ln in lines)  # no shell in the image to run it
    assert 'ENTRYPOINT ["/usr/local/bin/heraclius-node"]' in lines


def test_static_elf_check(tmp_path):
    assert images.is_static_elf(Path(shutil.which("sh")).resolve()) is False  # dynamically linked
    (tmp_path / "x").write_bytes(b"#!/bin/sh\n")
    assert images.is_static_elf(tmp_path / "x") is False


def test_wheel_without_go_sources_says_so(monkeypatch, tmp_path):
    monkeypatch.setattr(images, "REPO_ROOT", tmp_path)
    with pytest.raises(UsageError, match="go.mod is missing") as e:
        images.image_tag("impl_c")
    assert "repository checkout" in e.value.fix


@needs_go
def test_static_tag_follows_the_go_sources(monkeypatch, tmp_path):
    mod = tmp_path / "impl_c"
    (mod / "bin").mkdir(parents=True)
    (mod / "go.mod").write_text("module example.org/x\n\ngo 1.22\n")
    (mod / "main.go").write_text("package main\n")
    monkeypatch.setattr(images, "REPO_ROOT", tmp_path)
    tag = images.image_tag("impl_c")
    assert tag.startswith("heraclius-impl-c:") and images.image_tag("impl_c") == tag
    (mod / "bin" / "heraclius-node").write_bytes(b"built earlier")  # programs in bin/ are not inputs
    assert images.image_tag("impl_c") == tag
    (mod / "main.go").write_text("package main\n\nfunc main() {}\n")
    assert images.image_tag("impl_c") != tag


@needs_go
@pytest.mark.timeout(900)
def test_static_build_context(tmp_path):
    """The impl_c context: three static linux programs (no PT_INTERP, so no libc needed) under
    rootfs/usr/local/bin, an empty tmp/, and Dockerfile.static; the node program runs on its own
    and answers a bad command line with the SPEC 4 usage exit code 2."""
    args = images.build_context("impl_c", tmp_path)
    assert args == {"IMPL": "impl_c"}
    assert (tmp_path / "Dockerfile").read_text() == (images.HERE / "Dockerfile.static").read_text()
    bins = sorted(p.name for p in (tmp_path / "rootfs/usr/local/bin").iterdir())
    assert bins == ["heraclius-client", "heraclius-conformance", "heraclius-node"]
    for b in bins:
        assert images.is_static_elf(tmp_path / "rootfs/usr/local/bin" / b), b
    assert (tmp_path / "rootfs/tmp").is_dir() and not any((tmp_path / "rootfs/tmp").iterdir())
    proc = subprocess.run([str(tmp_path / "rootfs/usr/local/bin/heraclius-node")], capture_output=True, timeout=30,
                          env={})
    assert proc.returncode == 2, proc.stderr[-300:]
