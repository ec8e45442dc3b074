"""Error types: local misuse (our own bug or bad configuration) versus remote violations (bad peer input)."""

from __future__ import annotations

REASONS = (
    "malformed", "non_canonical", "oversized", "bad_signature", "unknown_node", "wrong_network",
    "wrong_cluster", "not_leader", "stale", "bad_qc", "bad_proof", "wrong_destination", "out_of_order",
    "replay", "invalid_proposal", "unauthorised_client", "duplicate", "handshake_failed",
    "decrypt_failed", "overloaded", "connection_limit", "slow_peer", "bad_http_request",
)


class LocalError(Exception):
    """Misuse by the local caller or operator (bad arguments, bad manifest, bad key file)."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


class RemoteViolation(Exception):
    """Input received from someone else broke the protocol; `reason` is a SPEC 15 rejection name."""

    def __init__(self, reason: str, detail: str = ""):
        if reason not in REASONS:
            raise ValueError(f"unknown rejection reason {reason!r}")
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
