"""Node images without a registry. Python implementations: a Debian base image made by `mmdebstrap`
(or `debootstrap`) and `docker import`, then one image per implementation built from Dockerfile.node
with its pinned dependencies installed on the host by pip for the image's Python (the build itself
runs nothing). Compiled implementations (impl_c, Go): static programs built on the host with
`CGO_ENABLED=0 go build` (Go module cache and proxy as configured there) and copied into an image
`FROM scratch` (Dockerfile.static): no base image, no registry pull, nothing but the programs.

Implementation diversity reaches the OS: impl_a runs on Debian 12 (Python 3.11), impl_b on Debian 13
(Python 3.13), impl_c on no distribution at all. The recipe is picked from the implementation
registry (infra.model.implementations): a Python package gets its Debian base, a Go program the
static image. Base images are built once and kept by the engine; node images are tagged with a hash
of everything that goes in, so an unchanged tree is never rebuilt."""

from __future__ import annotations

import hashlib
import importlib.metadata
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
from infra.model import implementations
from infra.model.resources import PACKAGE_ROOT, SPEC_DIR, SPEC_FILES

REPO_ROOT = PACKAGE_ROOT
HERE = Path(__file__).resolve().parent
MIRROR = os.environ.get("HERACLIUS_DEBIAN_MIRROR", "http://deb.debian.org/debian")
# dependencies a node process needs (the rest of pyproject's list is for infra and the monitor)
NODE_DEPS = {"pynacl", "protobuf", "uvloop", "cryptography", "lmdb", "trio", "jsonschema"}


@dataclass(frozen=True)
class Base:
    suite: str  # Debian suite given to debootstrap
    tag: str  # image name:tag in the local engine
    python: str  # its python3 version, for the wheels


BASES = {
    "impl_a": Base("bookworm", "heraclius-base:debian12", "3.11"),
    "impl_b": Base("trixie", "heraclius-base:debian13", "3.13"),
}
STATIC_BIN = "/usr/local/bin"  # where a static image keeps its programs (the entrypoint is heraclius-node)
PROGRAMS = ("node", "client", "conformance")


def recipe(impl: str) -> str:
    """'debian' (Python package on its Debian base, Dockerfile.node) or 'static' (Go programs built
    with CGO_ENABLED=0 into an image FROM scratch, Dockerfile.static), from the registry."""
    try:
        i = implementations.get(impl)
    except UsageError:
        i = None
    if i is not None and i.python_package and impl in BASES:
        return "debian"
    if i is not None and i.language == "Go" and i.binary_dir:
        return "static"
    known = ", ".join(sorted(n for n in implementations.IMPLEMENTATIONS if n in BASES or
                             implementations.IMPLEMENTATIONS[n].language == "Go"))
    raise UsageError(f"no Docker image recipe for implementation {impl!r}", fix=f"use one of {known}")


def image_implementations() -> list[str]:
    """Every implementation of the registry that has an image recipe."""
    out = []
    for name in implementations.IMPLEMENTATIONS:
        try:
            recipe(name)
            out.append(name)
        except UsageError:
            pass
    return out


def has_image(client: docker.DockerClient, tag: str) -> bool:
    try:
        client.images.get(tag)
        return True
    except docker.errors.ImageNotFound:
        return False


# docs, man pages and translations are dead weight in a node image; force-unsafe-io skips dpkg's
# fsyncs, which dominate a bootstrap on a busy disk (the rootfs is thrown away on failure anyway)
SLIM = ["path-exclude=/usr/share/man/*", "path-exclude=/usr/share/doc/*", "path-include=/usr/share/doc/*/copyright",
        "path-exclude=/usr/share/locale/*", "path-exclude=/usr/share/info/*", "force-unsafe-io"]


def bootstrap_tool() -> str | None:
    """mmdebstrap (about twice as fast: parallel apt downloads, tar output) or debootstrap, if installed."""
    for tool in ("mmdebstrap", "debootstrap"):
        if shutil.which(tool):
            return tool
    return None


def _rootfs_tar(base: Base, tmp: Path, timeout: float) -> Path:
    """A root filesystem tarball of `base.suite` with python3, made by the available bootstrap tool."""
    archive = tmp / "rootfs.tar"
    if bootstrap_tool() == "mmdebstrap":
        cmd = ["mmdebstrap", "--quiet", "--mode=root", "--variant=essential", "--include=python3",
               *[f"--dpkgopt={o}" for o in SLIM], base.suite, str(archive), MIRROR]
        _run_bootstrap(cmd, base, timeout)
        return archive
    rootfs = tmp / "rootfs"
    _run_bootstrap(["debootstrap", "--variant=minbase", "--include=python3", base.suite, str(rootfs), MIRROR],
                   base, timeout)
    for cache in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man"):
        shutil.rmtree(rootfs / cache, ignore_errors=True)
    with tarfile.open(archive, "w") as tar:
        tar.add(rootfs, arcname=".")
    return archive


def _run_bootstrap(cmd: list[str], base: Base, timeout: float) -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise UsageError(f"{cmd[0]} {base.suite} did not finish within {timeout:.0f} s",
                         fix=f"check that {MIRROR} is reachable and fast (or set HERACLIUS_DEBIAN_MIRROR)") from None
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-10:])
        raise UsageError(f"{cmd[0]} {base.suite} failed", detail=tail,
                         fix=f"check that {MIRROR} is reachable (or set HERACLIUS_DEBIAN_MIRROR)")


def ensure_base(client: docker.DockerClient, base: Base, progress=lambda _m: None, timeout: float = 900) -> str:
    """Build the base image (Debian `base.suite` with python3) unless the engine already has it."""
    if has_image(client, base.tag):
        return base.tag
    tool = bootstrap_tool()
    if os.geteuid() != 0 or not tool:
        raise UsageError(f"base image {base.tag} is missing and cannot be built here",
                         fix="as root: apt-get install mmdebstrap (or debootstrap), then deploy again (the "
                             "first build downloads about 30 MB of Debian packages per release)")
    progress(f"building base image {base.tag} with {tool} {base.suite} (about a minute, once)")
    with tempfile.TemporaryDirectory(prefix="hx-rootfs-") as tmp:
        archive = _rootfs_tar(base, Path(tmp), timeout)
        repo, tag = base.tag.split(":")
        client.api.import_image(src=str(archive), repository=repo, tag=tag)
    return base.tag


def _declared_requirements() -> list[str]:
    """The installed distribution's pinned requirements (its metadata, so an installed wheel needs no
    pyproject.toml); a checkout whose package metadata is missing falls back to pyproject.toml."""
    try:
        reqs = importlib.metadata.requires("heraclius") or []
    except importlib.metadata.PackageNotFoundError:
        reqs = []
    reqs = [r for r in reqs if "extra ==" not in r]
    if reqs:
        return reqs
    pyproject = REPO_ROOT / "pyproject.toml"
    if not pyproject.is_file():
        raise UsageError("cannot tell the node dependencies: heraclius is not installed and there is no pyproject.toml",
                         fix="install heraclius (pip install heraclius-*.whl) or run from the repository")
    return tomllib.loads(pyproject.read_text())["project"]["dependencies"]


def node_requirements() -> list[str]:
    """Pinned node dependencies (environment markers dropped: the image is Linux)."""
    deps = _declared_requirements()
    out = []
    for d in deps:
        spec = d.split(";")[0].strip()
        if spec.split("==")[0].strip().lower() in NODE_DEPS:
            out.append(spec)
    return out


def install_site(dest: Path, python: str, reqs: list[str], timeout: float = 600) -> None:
    """Install `reqs` as binary wheels for CPython `python` on manylinux x86_64 into `dest`, run on the
    host: the image needs no pip or venv, and pip's cache on the host serves repeated builds."""
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-compile", "--disable-pip-version-check",
           "--only-binary=:all:", "--python-version", python, "--implementation", "cp",
           "--platform", "manylinux2014_x86_64", "--platform", "manylinux_2_28_x86_64",
           "--platform", "manylinux_2_17_x86_64", "--platform", "manylinux_2_34_x86_64",
           "--target", str(dest), *reqs]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "PIP_CONSTRAINT": ""})
    except subprocess.TimeoutExpired:
        raise UsageError(f"pip did not install the Python {python} wheels within {timeout:.0f} s",
                         fix="check that PyPI is reachable") from None
    if proc.returncode != 0:
        raise UsageError(f"pip could not install wheels for Python {python}",
                         detail=proc.stderr.strip()[-800:], fix="check that PyPI is reachable")


def _source_files(impl: str) -> list[tuple[Path, str]]:
    pkg = REPO_ROOT / impl
    files = [(p, f"src/{impl}/{p.relative_to(pkg)}") for p in sorted(pkg.rglob("*"))
             if p.is_file() and "__pycache__" not in p.parts]
    files += [(SPEC_DIR / f, f"src/wire_spec/{f}") for f in SPEC_FILES if (SPEC_DIR / f).exists()]
    return files


def go_module_dir(impl: str) -> Path:
    """The Go module of a compiled implementation (its directory in the repository checkout)."""
    mod = REPO_ROOT / impl
    if not (mod / "go.mod").is_file():
        raise UsageError(f"the {impl} image is built from its Go sources, and {mod}/go.mod is missing",
                         fix="deploy from a repository checkout (an installed wheel carries no Go sources)")
    return mod


def _go_inputs(impl: str) -> list[Path]:
    """What a static build reads: every file of the Go module except programs built earlier (bin/)."""
    mod = go_module_dir(impl)
    return [p for p in sorted(mod.rglob("*")) if p.is_file() and p.relative_to(mod).parts[0] not in ("bin", ".git")]


def go_version() -> str:
    go = shutil.which("go")
    if go is None:
        raise UsageError("the impl_c image is built with Go, which is not installed",
                         fix="install Go 1.26 (https://go.dev/dl) and retry")
    return subprocess.run([go, "version"], capture_output=True, text=True, timeout=60).stdout.strip()


def goarch() -> str:
    import platform
    return {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine().lower(), "amd64")


def build_static(impl: str, dest: Path, timeout: float = 900) -> list[Path]:
    """`CGO_ENABLED=0 go build` of ./cmd/heraclius-{node,client,conformance} into `dest` (static
    linux programs, no libc). Returns their paths."""
    mod = go_module_dir(impl)
    go_version()
    dest.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "CGO_ENABLED": "0", "GOOS": "linux", "GOARCH": goarch()}
    out = []
    for part in PROGRAMS:
        target = dest / f"heraclius-{part}"
        cmd = ["go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", str(target),
               f"./cmd/heraclius-{part}"]
        try:
            proc = subprocess.run(cmd, cwd=mod, capture_output=True, text=True, timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            raise UsageError(f"go build of {impl} heraclius-{part} did not finish within {timeout:.0f} s",
                             fix="check that the Go module proxy is reachable (GOPROXY)") from None
        if proc.returncode != 0:
            raise UsageError(f"go build of {impl} heraclius-{part} failed", detail=proc.stderr.strip()[-1500:],
                             fix=f"build it by hand: cd {mod} && CGO_ENABLED=0 {' '.join(cmd)}")
        out.append(target)
    return out


def is_static_elf(path: Path) -> bool:
    """True for an ELF executable without a program interpreter (PT_INTERP): it needs no libc."""
    import struct
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2:  # 64-bit only
        return False
    end = "<" if data[5] == 1 else ">"
    phoff, = struct.unpack_from(end + "Q", data, 0x20)
    phentsize, phnum = struct.unpack_from(end + "HH", data, 0x36)
    return all(struct.unpack_from(end + "I", data, phoff + i * phentsize)[0] != 3 for i in range(phnum))


def image_tag(impl: str) -> str:
    """Content-addressed tag: base (or Go version), requirements, Dockerfile and every source file."""
    h = hashlib.sha256()
    if recipe(impl) == "static":
        h.update(go_version().encode() + goarch().encode())
        h.update((HERE / "Dockerfile.static").read_bytes())
        mod = go_module_dir(impl)
        for path in _go_inputs(impl):
            h.update(str(path.relative_to(mod)).encode() + b"\0" + path.read_bytes())
    else:
        h.update(BASES[impl].tag.encode())
        h.update("\n".join(node_requirements()).encode())
        h.update((HERE / "Dockerfile.node").read_bytes())
        for path, arc in _source_files(impl):
            h.update(arc.encode() + b"\0" + path.read_bytes())
    return f"heraclius-{impl.replace('_', '-')}:{h.hexdigest()[:12]}"


def build_context(impl: str, ctx: Path) -> dict[str, str]:
    """Fill the build context directory `ctx` for `impl`'s image; returns the build args."""
    if recipe(impl) == "static":
        root = ctx / "rootfs"
        build_static(impl, root / STATIC_BIN.lstrip("/"))
        (root / "tmp").mkdir(parents=True)
        shutil.copy2(HERE / "Dockerfile.static", ctx / "Dockerfile")
        return {"IMPL": impl}
    install_site(ctx / "site", BASES[impl].python, node_requirements())
    for src, arc in _source_files(impl):
        (ctx / arc).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, ctx / arc)
    shutil.copy2(HERE / "Dockerfile.node", ctx / "Dockerfile")
    return {"BASE": BASES[impl].tag, "IMPL": impl}


def ensure_node_image(client: docker.DockerClient, impl: str, progress=lambda _m: None) -> str:
    """Build (or reuse) the image that runs `impl`'s node. Returns its tag."""
    kind = recipe(impl)
    tag = image_tag(impl)
    if has_image(client, tag):
        return tag
    if kind == "debian":
        ensure_base(client, BASES[impl], progress)
    progress(f"building {tag}" + (" (static Go programs, FROM scratch)" if kind == "static" else ""))
    with tempfile.TemporaryDirectory(prefix="hx-build-") as tmp:
        ctx = Path(tmp)
        buildargs = build_context(impl, ctx)
        try:
            client.images.build(path=str(ctx), tag=tag, buildargs=buildargs, rm=True,
                                forcerm=True, network_mode="none", labels={"heraclius.impl": impl})
        except docker.errors.BuildError as e:
            lines = [str(x.get("stream") or x.get("error") or "").rstrip() for x in e.build_log]
            raise UsageError(f"building the {impl} image failed: {e.msg}",
                             detail="\n".join(x for x in lines if x)[-1500:]) from None
    return tag
