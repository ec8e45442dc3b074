"""Error types: local misuse (the operator can fix it) versus remote violations (a node misbehaved)."""

from __future__ import annotations


class OpsError(Exception):
    """Base class. `fix` tells the operator what to do about it, when we know."""

    def __init__(self, message: str, fix: str | None = None, detail: str | None = None):
        super().__init__(message)
        self.message = message
        self.fix = fix
        self.detail = detail

    def __str__(self) -> str:
        # The detail (e.g. a node's log tail) belongs in tracebacks and test reports too.
        return f"{self.message}\n{self.detail.rstrip()}" if self.detail else self.message

    def render(self) -> str:
        parts = [f"error: {self.message}"]
        if self.detail:
            parts.append(self.detail.rstrip())
        if self.fix:
            parts.append(f"fix: {self.fix}")
        return "\n".join(parts)


class UsageError(OpsError):
    """Local misuse: bad options, unknown deployment, ports in use, unavailable feature."""


class RemoteError(OpsError):
    """A node or client process violated the contract: not healthy, bad /status, forked log."""
