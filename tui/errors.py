"""Monitor errors, split into local misuse and remote (node) violations."""


class MonitorError(Exception):
    """Base class of every error the monitor raises."""


class LocalError(MonitorError):
    """Local misuse: a missing or invalid deployment directory or manifest, a bad argument."""


class RemoteError(MonitorError):
    """A node violated the contract: unreachable, bad HTTP answer, or a /status or /metrics
    document that does not follow wire_spec/SPEC.md section 15."""
