"""The provider interface: where and how a deployment's nodes run.

Every operation (deploy, destroy, faults, status) goes through one `Provider`, chosen in one place
(`infra.providers.get` / `for_deployment`). A provider writes the usual deployment directory
(manifest, keys, data, logs, state.json) and then only has to answer for its nodes' processes:

    deploy(plan, name, home, options, progress) -> Deployment     keys, manifest, start, wait healthy
    destroy(root, state, progress) -> list[str]                    stop everything it ever started,
                                                                   from state.json alone (no manifest
                                                                   needed); returns what still runs
    node_states(dep) -> {node: running|paused|down|remote}         without asking the node itself
    start / stop / kill / pause / resume (dep, node) -> dict       node faults; UsageError with a fix
                                                                   when the node is not in a state
                                                                   the action applies to
    region_layout(dep) -> dict | None                              the region network that partitions
                                                                   and delays act on (infra.testbed.netns)

A provider that cannot do something raises UsageError saying so (the base class does that).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from infra.errors import UsageError
from infra.model.deployment import Deployment
from infra.model.planner import Plan

Progress = Callable[[str], None]
NODE_STATES = ("running", "paused", "down", "remote")


def quiet(_msg: str) -> None:
    pass


@dataclass
class DeployOptions:
    testbed: bool = False
    health_timeout: float = 30.0
    network: str = "loopback"  # local only: loopback or netns
    latency_ms: int = 0
    node_modules: dict[str, str] = field(default_factory=dict)  # local only: stand-in node modules
    client_modules: dict[str, str] = field(default_factory=dict)


class Provider(ABC):
    name: str = "?"

    @abstractmethod
    def deploy(self, plan: Plan, name: str, home, options: DeployOptions, progress: Progress = quiet) -> Deployment:
        """Create the deployment directory, start every node and wait until all are healthy; on
        failure leave nothing behind."""

    @abstractmethod
    def destroy(self, root: Path, state: dict, progress: Progress = quiet) -> list[str]:
        """Stop every node of the deployment at `root` and release its resources, knowing only its
        state.json (possibly empty); return descriptions of whatever still runs afterwards."""

    @abstractmethod
    def node_states(self, dep: Deployment) -> dict[str, str]:
        """Each node's process as the provider sees it: running, paused, down or remote (unknown)."""

    def region_layout(self, dep: Deployment) -> dict | None:
        """The region network layout partitions and delays act on, None when there is none."""
        return None

    # node faults (SPEC-free: signals, engine calls); each returns a small dict of what was done
    def start(self, dep: Deployment, node_id: str, timeout: float = 30.0) -> dict:
        raise self.unsupported("start")

    def stop(self, dep: Deployment, node_id: str) -> dict:
        raise self.unsupported("stop")

    def kill(self, dep: Deployment, node_id: str) -> dict:
        raise self.unsupported("crash")

    def pause(self, dep: Deployment, node_id: str) -> dict:
        raise self.unsupported("pause")

    def resume(self, dep: Deployment, node_id: str) -> dict:
        raise self.unsupported("resume")

    def is_running(self, dep: Deployment, node_id: str) -> bool:
        return self.node_states(dep).get(node_id) in ("running", "paused")

    def unsupported(self, what: str) -> UsageError:
        return UsageError(f"`fault {what}` is not implemented for the {self.name} provider",
                          fix="on aws, stop or reboot the node's instance with the AWS tools")
