"""Actions emitted by the consensus state machine, executed in order by the I/O layer."""

from dataclasses import dataclass


@dataclass
class Persist:
    """Make `record` durable before executing any later action."""

    record: dict


@dataclass
class Send:
    to: str
    msg: object


@dataclass
class Decided:
    """A decision was applied: answer clients, serve its compact decisions."""

    decision: object
    execution: object


@dataclass
class Reject:
    reason: str
    peer: str
    detail: str


@dataclass
class Evidence:
    node: str
    kind: str
    detail: str
    messages: list
