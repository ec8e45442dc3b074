"""Node images without a registry: a Debian base image made by `debootstrap` and `docker import`,
then one image per implementation built from Dockerfile.node with its pinned dependencies as
wheels (downloaded on the host with pip, so the build itself needs no network).

Implementation diversity reaches the OS: impl_a runs on Debian 12 (Python 3.11), impl_b on Debian 13
(Python 3.13). Base images are built once and kept by the engine; node images are tagged with a hash
of everything that goes in, so an unchanged tree is never rebuilt."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors

from infra.errors import UsageError

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
HERE = Path(__file__).resolve().parent
MIRROR = os.environ.get("HERACLIUS_DEBIAN_MIRROR", "http://deb.debian.org/debian")
# dependencies a node process needs (the rest of pyproject's list is for infra and the monitor)
NODE_DEPS = {"pynacl", "protobuf", "uvloop", "cryptography", "lmdb", "trio", "jsonschema"}
SPEC_FILES = ["heraclius.proto", "manifest.schema.json", "status.schema.json"]


@dataclass(frozen=True)
class Base:
    suite: str  # Debian suite given to debootstrap
    tag: str  # image name:tag in the local engine
    python: str  # its python3 version, for the wheels


BASES = {
    "impl_a": Base("bookworm", "heraclius-base:debian12", "3.11"),
    "impl_b": Base("trixie", "heraclius-base:debian13", "3.13"),
}


def has_image(client: docker.DockerClient, tag: str) -> bool:
    try:
        client.images.get(tag)
        return True
    except docker.errors.ImageNotFound:
        return False


def ensure_base(client: docker.DockerClient, base: Base, progress=lambda _m: None, timeout: float = 900) -> str:
    """Build the base image with debootstrap unless the engine already has it."""
    if has_image(client, base.tag):
        return base.tag
    if os.geteuid() != 0 or not shutil.which("debootstrap"):
        raise UsageError(f"base image {base.tag} is missing and cannot be built here",
                         fix="as root: apt-get install debootstrap, then deploy again (the first build "
                             "downloads about 40 MB of Debian packages)")
    progress(f"building base image {base.tag} with debootstrap {base.suite} (a few minutes, once)")
    with tempfile.TemporaryDirectory(prefix="hx-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        cmd = ["debootstrap", "--variant=minbase", "--include=python3,python3-venv", base.suite, str(rootfs), MIRROR]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-10:])
            raise UsageError(f"debootstrap {base.suite} failed", detail=tail,
                             fix=f"check that {MIRROR} is reachable (or set HERACLIUS_DEBIAN_MIRROR)")
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
            shutil.rmtree(rootfs / cache, ignore_errors=True)
        archive = Path(tmp) / "rootfs.tar"
        with tarfile.open(archive, "w") as tar:
            tar.add(rootfs, arcname=".")
        repo, tag = base.tag.split(":")
        client.api.import_image(src=str(archive), repository=repo, tag=tag)
    return base.tag


def node_requirements() -> list[str]:
    """Pinned node dependencies from pyproject.toml (environment markers dropped: the image is Linux)."""
    deps = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    out = []
    for d in deps:
        spec = d.split(";")[0].strip()
        if spec.split("==")[0].strip().lower() in NODE_DEPS:
            out.append(spec)
    return out


def download_wheels(dest: Path, python: str, reqs: list[str], timeout: float = 600) -> None:
    """Binary wheels for `python` on manylinux x86_64 into `dest` (pip's cache makes reruns fast)."""
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "--python-version", python,
           "--implementation", "cp", "--platform", "manylinux2014_x86_64", "--platform", "manylinux_2_28_x86_64",
           "--platform", "manylinux_2_17_x86_64", "--platform", "manylinux_2_34_x86_64", "-d", str(dest), *reqs]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PIP_CONSTRAINT": ""})
    if proc.returncode != 0:
        raise UsageError(f"pip could not download wheels for Python {python}",
                         detail=proc.stderr.strip()[-800:], fix="check that PyPI is reachable")
    (dest / "requirements.txt").write_text("\n".join(reqs) + "\n")


def _source_files(impl: str) -> list[tuple[Path, str]]:
    pkg = REPO_ROOT / impl
    files = [(p, f"src/{impl}/{p.relative_to(pkg)}") for p in sorted(pkg.rglob("*"))
             if p.is_file() and "__pycache__" not in p.parts]
    files += [(REPO_ROOT / "wire_spec" / f, f"src/wire_spec/{f}") for f in SPEC_FILES
              if (REPO_ROOT / "wire_spec" / f).exists()]
    return files


def image_tag(impl: str) -> str:
    """Content-addressed tag: base, requirements, Dockerfile and every source file."""
    h = hashlib.sha256()
    h.update(BASES[impl].tag.encode())
    h.update("\n".join(node_requirements()).encode())
    h.update((HERE / "Dockerfile.node").read_bytes())
    for path, arc in _source_files(impl):
        h.update(arc.encode() + b"\0" + path.read_bytes())
    return f"heraclius-{impl.replace('_', '-')}:{h.hexdigest()[:12]}"


def ensure_node_image(client: docker.DockerClient, impl: str, progress=lambda _m: None) -> str:
    """Build (or reuse) the image that runs `impl`'s node. Returns its tag."""
    if impl not in BASES:
        raise UsageError(f"no Docker image recipe for implementation {impl!r}", fix=f"use one of {', '.join(BASES)}")
    tag = image_tag(impl)
    if has_image(client, tag):
        return tag
    base = ensure_base(client, BASES[impl], progress)
    progress(f"building {tag}")
    with tempfile.TemporaryDirectory(prefix="hx-build-") as tmp:
        ctx = Path(tmp)
        download_wheels(ctx / "wheels", BASES[impl].python, node_requirements())
        for src, arc in _source_files(impl):
            (ctx / arc).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, ctx / arc)
        shutil.copy2(HERE / "Dockerfile.node", ctx / "Dockerfile")
        try:
            client.images.build(path=str(ctx), tag=tag, buildargs={"BASE": base, "IMPL": impl}, rm=True,
                                forcerm=True, network_mode="none", labels={"heraclius.impl": impl})
        except docker.errors.BuildError as e:
            lines = [str(x.get("stream") or x.get("error") or "").rstrip() for x in e.build_log]
            raise UsageError(f"building the {impl} image failed: {e.msg}",
                             detail="\n".join(x for x in lines if x)[-1500:]) from None
    return tag
