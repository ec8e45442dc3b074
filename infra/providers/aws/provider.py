"""`--provider aws`: provision EC2 (provision.py), ship images and keys and start the node containers
with Ansible (infra/ansible/ through ansible.py), wait for health; `destroy` removes everything the
deployment tagged.

Settings come from the environment, so the CLI needs no AWS-only options:
HERACLIUS_AWS_SSH_CIDR (required: who may SSH in, e.g. 203.0.113.7/32), HERACLIUS_AWS_INSTANCE_TYPE
(t3.small), HERACLIUS_AWS_AMI (one AMI id for every region; default: the newest Debian 12 AMI),
HERACLIUS_AWS_SSH_USER (admin, Debian's), HERACLIUS_AWS_SSH_TIMEOUT (300 s for instances to accept
SSH), HERACLIUS_AWS_ENDPOINT_URL (tests: a moto server)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from pathlib import Path

from infra.errors import RemoteError, UsageError
from infra.model.deployment import CLIENT_IDS, Deployment, deployment_root, home_dir
from infra.model.keys import generate_client_key, generate_node_keys, make_private_dir
from infra.model.manifest import build_manifest, validate_manifest, write_manifest
from infra.model.planner import Plan
from infra.providers.aws import ansible, provision
from infra.providers.aws.sshkey import generate_ssh_key
from infra.providers.base import DeployOptions, Provider

PORTS = {"peer": 7000, "client": 7001, "admin": 7002}


def _quiet(_msg: str) -> None:
    pass


def write_deployment(plan: Plan, name: str, home, addresses: dict[str, dict], testbed: bool = False,
                     provider: str = "aws") -> Deployment:
    """Deployment directory with keys (0600) and a manifest whose nodes listen on `bind` and are
    reached at `host` (`addresses[node] = {"host": ..., "bind": ...}`), fixed ports 7000-7002."""
    root = deployment_root(name, home)
    if root.exists():
        raise UsageError(f"deployment {name!r} already exists in {home_dir(home)}",
                         fix=f"remove it with `heraclius-ops destroy --name {name}`, or pick another --name")
    for sub in ("keys", "data", "logs"):
        make_private_dir(root / sub)
    fields = {}
    for n in plan.nodes:
        ed, xs = generate_node_keys(root / "keys" / n.id)
        fields[n.id] = {"host": addresses[n.id]["host"], "ports": dict(PORTS), "ed25519_public": ed,
                        "x25519_public": xs}
    clients = [{"id": cid, "ed25519_public": generate_client_key(root / "keys" / "clients" / f"{cid}.key")}
               for cid in CLIENT_IDS.values()]
    manifest = build_manifest(plan, f"heraclius-{name}", fields, clients, testbed)
    for c in manifest["clusters"]:
        for n in c["nodes"]:
            if addresses[n["id"]].get("bind", n["host"]) != n["host"]:
                n["bind"] = addresses[n["id"]]["bind"]
    write_manifest(root / "manifest.json", validate_manifest(manifest))
    dep = Deployment(name, root)
    dep.state = {"provider": provider, "created": time.time(),
                 "nodes": {n.id: {"pid": None, "status": "created", "implementation": n.implementation}
                           for n in plan.nodes}}
    dep.save_state()
    return dep


def _settings() -> dict:
    cidr = os.environ.get("HERACLIUS_AWS_SSH_CIDR")
    if not cidr:
        raise UsageError("HERACLIUS_AWS_SSH_CIDR is not set",
                         fix="export HERACLIUS_AWS_SSH_CIDR=<your public IP>/32 (the only address allowed to SSH in)")
    return {"ssh_cidr": cidr, "instance_type": os.environ.get("HERACLIUS_AWS_INSTANCE_TYPE", "t3.small"),
            "ami": os.environ.get("HERACLIUS_AWS_AMI"), "user": os.environ.get("HERACLIUS_AWS_SSH_USER", "admin"),
            "endpoint_url": os.environ.get("HERACLIUS_AWS_ENDPOINT_URL"),
            "ssh_timeout": float(os.environ.get("HERACLIUS_AWS_SSH_TIMEOUT", "300"))}


def wait_ssh(addresses: list[str], timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    waiting = list(addresses)
    while waiting:
        for a in list(waiting):
            try:
                with socket.create_connection((a, 22), timeout=3):
                    waiting.remove(a)
            except OSError:
                pass
        if waiting and time.monotonic() > deadline:
            raise RemoteError(f"SSH not reachable on {', '.join(waiting)} after {timeout:.0f} s",
                              fix="check HERACLIUS_AWS_SSH_CIDR is your address; `heraclius-ops destroy` cleans up")
        if waiting:
            time.sleep(2.0)


def save_images(dep: Deployment, implementations: list[str], progress=_quiet) -> dict[str, dict]:
    """Build the node images with the local Docker engine and save each to images/<impl>.tar."""
    from infra.providers.docker import engine, images

    client = engine.connect()
    out = {}
    make_private_dir(dep.root / "images")
    for impl in implementations:
        tag = images.ensure_node_image(client, impl, progress)
        path = dep.root / "images" / f"{impl}.tar"
        with open(path, "wb") as f:
            for chunk in client.images.get(tag).save(named=True):
                f.write(chunk)
        out[impl] = {"image": tag, "image_archive": str(path)}
        progress(f"saved {tag} to {path.name}")
    return out


def deploy(plan: Plan, name: str, home=None, testbed: bool = False, health_timeout: float = 60.0,
           progress=_quiet, latency_ms: int = 0) -> Deployment:
    if latency_ms:
        raise UsageError("--latency-ms emulates latency; AWS regions have real latency", fix="drop --latency-ms")
    cfg = _settings()
    provision.session(cfg["endpoint_url"])  # fail on missing credentials before creating anything
    root = deployment_root(name, home)
    if root.exists():
        raise UsageError(f"deployment {name!r} already exists in {home_dir(home)}",
                         fix=f"remove it with `heraclius-ops destroy --name {name}`, or pick another --name")
    ssh_dir = make_private_dir(Path(f"{root}.ssh"))
    ssh_key = ssh_dir / "id_ed25519"
    regions = list(plan.regions)
    try:
        pub = generate_ssh_key(ssh_key, f"heraclius-{name}")
        res = provision.provision(name, [provision.NodeRequest(n.id, n.region) for n in plan.nodes],
                                  list(PORTS.values()), pub, cfg["ssh_cidr"], cfg["instance_type"],
                                  {r: cfg["ami"] for r in regions} if cfg["ami"] else None, cfg["endpoint_url"], progress)
        addrs = {node: {"host": a["public"], "bind": a["private"]}
                 for r in res["regions"].values() for node, a in r["addresses"].items()}
        dep = write_deployment(plan, name, home, addrs, testbed)
        shutil.move(str(ssh_dir), root / "ssh")
        ssh_key = root / "ssh" / "id_ed25519"
        dep.state["aws"] = res
        dep.save_state()
        wait_ssh([a["host"] for a in addrs.values()], cfg["ssh_timeout"])
        shipped = save_images(dep, sorted({n.implementation for n in plan.nodes}), progress)
        machines = {n.id: {"ansible_host": addrs[n.id]["host"], "ansible_user": cfg["user"],
                           "ansible_ssh_private_key_file": str(ssh_key),
                           "heraclius_bundle": str(ansible.node_bundle(dep.root, [n.id], dep.root / f"bundle-{n.id}.tgz")),
                           "heraclius_nodes_here": [{"id": n.id, "implementation": n.implementation,
                                                     "bind": addrs[n.id]["bind"], "admin_port": PORTS["admin"],
                                                     **shipped[n.implementation]}]}
                    for n in plan.nodes}
        work = dep.root / "ansible"
        inv = ansible.inventory(machines, {"deployment_dir": str(dep.root), "heraclius_runtime": "docker",
                                           "heraclius_health_retries": int(health_timeout)})
        ansible.require_ok(ansible.run_playbook("site.yml", inv, work), "the node playbook", work)
        for n in plan.nodes:
            dep.set_node_state(n.id, status="running")
        return dep.reload()
    except BaseException:
        provision.destroy(name, regions, cfg["endpoint_url"])
        shutil.rmtree(ssh_dir, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)
        raise


def destroy(root: Path, state: dict, progress=_quiet) -> list[str]:
    """Terminate and delete every AWS resource tagged with the deployment (by its name, in the
    regions state.json or the manifest name; every known region when neither is readable)."""
    regions = list((state.get("aws") or {}).get("regions", {}))
    if not regions:
        try:
            regions = list(json.loads((root / "manifest.json").read_text()).get("regions", []))
        except (OSError, ValueError, AttributeError):
            regions = list(provision.AWS_REGIONS)
    endpoint = os.environ.get("HERACLIUS_AWS_ENDPOINT_URL")
    for region, gone in provision.destroy(root.name, regions, endpoint).items():
        progress(f"{region}: removed " + ", ".join(f"{v} {k}" for k, v in gone.items() if v))
    return []


class AwsProvider(Provider):
    """Nodes on EC2 machines, started by Ansible; node faults are not implemented (remote machines)."""

    name = "aws"

    def deploy(self, plan: Plan, name: str, home, options: DeployOptions, progress=_quiet) -> Deployment:
        if options.network != "loopback" or options.node_modules:
            raise UsageError("--network and --node-module apply to the local provider only")
        return deploy(plan, name, home, options.testbed, options.health_timeout, progress, options.latency_ms)

    def destroy(self, root: Path, state: dict, progress=_quiet) -> list[str]:
        return destroy(root, state, progress)

    def node_states(self, dep: Deployment) -> dict[str, str]:
        return {n.id: "remote" for n in dep.nodes}

    def is_running(self, dep: Deployment, node_id: str) -> bool:
        return True
