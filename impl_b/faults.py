"""Testbed fault profile (SPEC 16): rules a node applies to its own outgoing behaviour.

Only built when the manifest says `testbed: true` (the manifest check refuses faults otherwise)."""

import random

from . import codec
from .codec import encode

SIGNED = {"proposal": "signature", "prepare": "signature", "view_change": "signature", "view_data": "signature",
          "new_view": "signature", "commit": "decision_signature"}


class Rule:
    def __init__(self, doc: dict):
        self.doc = doc
        self.action = doc["action"]
        self.messages = set(doc.get("messages", []))
        self.targets = set(doc.get("targets", []))
        self.probability = float(doc.get("probability", 1))
        self.delay_ms = int(doc.get("delay_ms", 0))
        self.rng = random.Random(int(doc.get("seed", 0)))

    def matches(self, kind: str, target: str) -> bool:
        if self.messages and kind not in self.messages:
            return False
        if self.targets and target not in self.targets:
            return False
        return self.probability >= 1 or self.rng.random() < self.probability


class FaultPlan:
    """The active rules of this node."""

    def __init__(self, rules: list[dict]):
        self.rules = [Rule(r) for r in rules]

    def active(self, action: str) -> bool:
        return any(r.action == action for r in self.rules)

    def outgoing(self, to: str, pm, equivocal=None) -> list[tuple[int, bytes]]:
        """(delay_ms, bytes) to send for one outgoing peer message (empty list = dropped)."""
        kind = pm.which()
        delay = 0
        copies = 1
        mutate = False
        for r in self.rules:
            if r.action in ("tamper_compact", "withhold_queue", "wrong_result", "false_client_response",
                            "censor_client", "skip_queue_seq"):
                continue
            if r.action == "silent":
                return []
            if not r.matches(kind, to):
                continue
            if r.action == "drop":
                return []
            if r.action == "delay":
                delay = max(delay, r.delay_ms)
            elif r.action == "duplicate":
                copies = 2
            elif r.action == "mutate":
                mutate = True
            elif r.action == "bad_signature" and kind in SIGNED:
                body = getattr(pm, kind).copy()
                setattr(body, SIGNED[kind], r.rng.randbytes(64))
                pm = codec.PeerMessage(**{kind: body})
            elif r.action == "equivocate" and kind == "proposal" and equivocal is not None:
                alt = equivocal(pm.proposal)
                if alt is not None:
                    return [(delay, encode(pm)), (delay, encode(codec.PeerMessage(proposal=alt)))]
        data = encode(pm)
        if mutate:
            b = bytearray(data)
            b[len(b) // 2] ^= 0x01
            data = bytes(b)
        return [(delay, data)] * copies

    def censored_keys(self, manifest) -> set[bytes]:
        """censor_client: the Ed25519 keys of the listed manifest client ids (unknown ids match nobody)."""
        ids = {c for r in self.rules if r.action == "censor_client" for c in r.doc.get("clients", [])}
        return {key for key, cid in manifest.clients.items() if cid in ids}

    def tamper(self, cd):
        """tamper_compact: one byte of the leaf's value changed."""
        if not self.active("tamper_compact"):
            return cd
        cd = codec.decode("CompactDecision", encode(cd))
        leaf = cd.leaf
        for entry in leaf.calls or leaf.results or leaf.responses:
            if getattr(entry, "value", b""):
                entry.value = entry.value[:-1] + bytes([entry.value[-1] ^ 1])
                codec.touch(cd)
                return cd
        entries = leaf.calls or leaf.results or leaf.responses
        if entries and getattr(entries[0], "client_key", b""):
            ck = entries[0].client_key  # no value to alter: change another byte of the leaf
            entries[0].client_key = bytes([ck[0] ^ 1]) + ck[1:]
        else:
            leaf.height ^= 1
        codec.touch(cd)
        return cd

    def describe(self) -> list[dict]:
        return [r.doc for r in self.rules]
