"""Testbed fault profile (SPEC 16): rules a node applies to itself when the manifest is a testbed."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from impl_a import heraclius_pb2 as pb


@dataclass
class Rule:
    action: str
    messages: set[str]
    targets: set[str]
    probability: float
    delay_ms: int
    rng: random.Random = field(repr=False)

    def hits(self, kind: str | None, target: str | None) -> bool:
        if self.messages and kind not in self.messages:
            return False
        if self.targets and target is not None and target not in self.targets:
            return False
        return self.probability >= 1 or self.rng.random() < self.probability


class Faults:
    def __init__(self, rules: list[dict]):
        self.raw = rules
        self.rules = [Rule(r["action"], set(r.get("messages", [])), set(r.get("targets", [])),
                           float(r.get("probability", 1)), int(r.get("delay_ms", 0)),
                           random.Random(int(r.get("seed", 0)))) for r in rules]

    def of(self, action: str) -> list[Rule]:
        return [r for r in self.rules if r.action == action]

    def outgoing(self, target: str, msg: pb.PeerMessage, data: bytes) -> list[tuple[float, bytes]]:
        """What to actually send for one outgoing message: [(delay_s, bytes)], possibly empty."""
        kind = msg.WhichOneof("body")
        if self.of("silent"):
            return []
        for r in self.of("drop"):
            if r.hits(kind, target):
                return []
        delay = 0.0
        for r in self.of("delay"):
            if r.hits(kind, target):
                delay += r.delay_ms / 1000
        for r in self.of("mutate"):
            if r.hits(kind, target) and data:
                i = r.rng.randrange(len(data))
                data = data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:]
        copies = 2 if any(r.hits(kind, target) for r in self.of("duplicate")) else 1
        return [(delay, data)] * copies

    def consensus_hooks(self) -> dict:
        """Hooks the pure consensus core understands: bad_signature and equivocate."""
        hooks: dict = {}
        bad = self.of("bad_signature")
        if bad:
            rng = bad[0].rng
            kinds = set().union(*(r.messages for r in bad)) if all(r.messages for r in bad) else set()

            def corrupt(kind: str, sig: bytes) -> bytes:
                if kinds and kind not in kinds:
                    return sig
                return bytes(rng.getrandbits(8) for _ in range(64))

            hooks["bad_signature"] = corrupt
        eq = self.of("equivocate")
        if eq:
            hooks["equivocate"] = eq[0].targets or set()
        if self.of("wrong_result"):
            hooks["wrong_result"] = True
        censor = self.of("censor_client")
        if censor:
            hooks["censor_client"] = {cid for r in self.raw if r["action"] == "censor_client"
                                      for cid in r.get("clients", [])}
        if self.of("skip_queue_seq"):
            hooks["skip_queue_seq"] = True
        return hooks

    @staticmethod
    def tamper(cd: pb.CompactDecision) -> pb.CompactDecision:
        """For tamper_compact / false_client_response (SPEC 16): flip the last byte of the first
        non-empty value in the leaf, else of the first entry's client_key."""
        out = pb.CompactDecision()
        out.CopyFrom(cd)
        leaf = out.leaf
        holders = [(c.op, "value") for c in leaf.calls] + [(r, "value") for r in leaf.results]
        holders += [(r, "value") for r in leaf.responses]
        for obj, name in holders:
            v = getattr(obj, name)
            if v:
                setattr(obj, name, v[:-1] + bytes([v[-1] ^ 0x01]))
                return out
        first = (list(leaf.calls) + list(leaf.results))[:1]
        if first and first[0].client_key:
            k = first[0].client_key
            first[0].client_key = k[:-1] + bytes([k[-1] ^ 0x01])
        elif leaf.responses:
            leaf.responses[0].found = not leaf.responses[0].found  # no value and no key in a response
        return out

    def withhold(self) -> bool:
        return bool(self.of("withhold_queue"))
