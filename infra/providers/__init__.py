"""Providers: local processes, Docker containers, AWS machines, behind one interface (`base.Provider`).

This module is the one place that maps a provider name to its implementation; docker and aws are
imported only when used (they pull in the Docker SDK, boto3 and Ansible)."""

from __future__ import annotations

from infra.errors import UsageError
from infra.model.deployment import Deployment
from infra.providers.base import DeployOptions, Provider

PROVIDERS = ("local", "docker", "aws")

__all__ = ["PROVIDERS", "DeployOptions", "Provider", "for_deployment", "get"]


def get(name: str) -> Provider:
    if name == "local":
        from infra.providers.local.provider import LocalProvider
        return LocalProvider()
    if name == "docker":
        from infra.providers.docker.provider import DockerProvider
        return DockerProvider()
    if name == "aws":
        from infra.providers.aws.provider import AwsProvider
        return AwsProvider()
    raise UsageError(f"unknown provider {name!r}", fix=f"use one of {', '.join(PROVIDERS)}")


def for_deployment(dep: Deployment) -> Provider:
    return get(dep.provider)
