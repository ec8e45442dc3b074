"""Crafted noise/handshake/invalid cases (SPEC 13 "Invalid keys and sizes"): small-order keys, wrong sizes.

A crafted message holds a public key nobody has the private key of (a point of small order), so no real
Noise state can write it. `Transcript` is a minimal Noise XX state whose DH results are computed here:
X25519 of whichever side's private key is known (the runner's) with the other's public key, by the pure
RFC 7748 ladder, which returns 32 zero bytes for a small-order point where pyca `cryptography` raises.
The crafted side thus uses exactly the value a runner without the SPEC 13 check would compute, so the
zero check is the only rule such a case breaks. The transcript code is checked against dissononce on a
real handshake every run (`_check_transcript`).
"""

from __future__ import annotations

import copy
import hashlib
import hmac

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from .keys import seed, x25519_public

PROTOCOL = "Noise_XX_25519_ChaChaPoly_BLAKE2b"
P25519 = 2**255 - 19

# (name, 32-byte encoding): RFC 7748 section 6.1 / libsodium's blocklist, and non-canonical encodings.
SMALL_ORDER = [
    ("zero", bytes(32)),
    ("small_order_one", (1).to_bytes(32, "little")),
    ("small_order_e0eb", bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800")),
    ("small_order_5f9c", bytes.fromhex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157")),
    ("small_order_p_minus_1", (P25519 - 1).to_bytes(32, "little")),
    ("small_order_p_noncanonical_zero", P25519.to_bytes(32, "little")),
    ("small_order_p_plus_1_noncanonical_one", (P25519 + 1).to_bytes(32, "little")),
    ("small_order_e0eb_high_bit", bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b880")),
]
SMALL_ORDER_NOTE = {
    "zero": "u = 0 (order 4)",
    "small_order_one": "u = 1 (order 1)",
    "small_order_e0eb": "a point of order 8 (RFC 7748 / libsodium blocklist)",
    "small_order_5f9c": "the other point of order 8 (libsodium blocklist)",
    "small_order_p_minus_1": "u = p - 1 (order 2)",
    "small_order_p_noncanonical_zero": "u = p, a non-canonical encoding of 0",
    "small_order_p_plus_1_noncanonical_one": "u = p + 1, a non-canonical encoding of 1",
    "small_order_e0eb_high_bit": "the order-8 point e0eb... with bit 255 set (masked by X25519)",
}


def x25519(k: bytes, u: bytes) -> bytes:
    """RFC 7748 section 5 X25519, never refusing a result (32 zero bytes for a small-order u)."""
    kb = bytearray(k)
    kb[0] &= 248
    kb[31] &= 127
    kb[31] |= 64
    scalar = int.from_bytes(kb, "little")
    x1 = int.from_bytes(u, "little") & ((1 << 255) - 1)
    x2, z2, x3, z3, swap = 1, 0, x1, 1, 0
    for t in reversed(range(255)):
        bit = (scalar >> t) & 1
        swap ^= bit
        if swap:
            x2, x3, z2, z3 = x3, x2, z3, z2
        swap = bit
        a, b = (x2 + z2) % P25519, (x2 - z2) % P25519
        aa, bb = a * a % P25519, b * b % P25519
        e = (aa - bb) % P25519
        c, d = (x3 + z3) % P25519, (x3 - z3) % P25519
        da, cb = d * a % P25519, c * b % P25519
        x3, z3 = (da + cb) ** 2 % P25519, x1 * (da - cb) ** 2 % P25519
        x2, z2 = aa * bb % P25519, e * (aa + 121665 * e) % P25519
    if swap:
        x2, z2 = x3, z3
    return (x2 * pow(z2, P25519 - 2, P25519) % P25519).to_bytes(32, "little")


def pyca_refuses(private: bytes, public: bytes) -> bool:
    """True when pyca `cryptography` refuses X25519(private, public) (it raises on an all-zero result)."""
    try:
        X25519PrivateKey.from_private_bytes(private).exchange(X25519PublicKey.from_public_bytes(public))
    except ValueError:
        return True
    return False


class Key:
    """A key of the transcript: a private key (then the public is derived) or a bare public key."""

    def __init__(self, private: bytes | None = None, public: bytes | None = None):
        self.private = private
        self.public = x25519_public(private) if private is not None else public
        assert self.public is not None and len(self.public) == 32


def dh(a: Key, b: Key) -> bytes:
    out = x25519(a.private, b.public) if a.private is not None else x25519(b.private, a.public)
    if out != bytes(32):  # a regular result: pyca agrees with the ladder
        priv, pub = (a.private, b.public) if a.private is not None else (b.private, a.public)
        assert X25519PrivateKey.from_private_bytes(priv).exchange(X25519PublicKey.from_public_bytes(pub)) == out
    return out


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.blake2b).digest()


class Transcript:
    """The symmetric state both sides of an XX handshake share (Noise revision 34, sections 5.2, 7)."""

    def __init__(self, prologue: bytes):
        self.h = PROTOCOL.encode().ljust(64, b"\x00")
        self.ck = self.h
        self.k: bytes | None = None
        self.n = 0
        self.mix_hash(prologue)

    def mix_hash(self, data: bytes) -> None:
        self.h = hashlib.blake2b(self.h + data).digest()

    def mix_key(self, ikm: bytes) -> None:
        temp = _hmac(self.ck, ikm)
        self.ck = _hmac(temp, b"\x01")
        self.k = _hmac(temp, self.ck + b"\x02")[:32]
        self.n = 0

    def encrypt_and_hash(self, plaintext: bytes) -> bytes:
        if self.k is None:
            out = plaintext
        else:
            out = ChaCha20Poly1305(self.k).encrypt(b"\x00" * 4 + self.n.to_bytes(8, "little"), plaintext, self.h)
            self.n += 1
        self.mix_hash(out)
        return out


def xx_messages(prologue: bytes, ie: Key, re: Key, is_: Key, rs: Key, payloads: list[bytes]) -> tuple[list, list]:
    """The XX messages for up to three payloads, and the DH results (ee, es, se) in order."""
    t = Transcript(prologue)
    msgs, dhs = [], []
    t.mix_hash(ie.public)
    msgs.append(ie.public + t.encrypt_and_hash(payloads[0]))
    if len(payloads) > 1:
        out = re.public
        t.mix_hash(re.public)
        dhs.append(("ee", dh(ie, re)))
        t.mix_key(dhs[-1][1])
        out += t.encrypt_and_hash(rs.public)
        dhs.append(("es", dh(ie, rs)))
        t.mix_key(dhs[-1][1])
        msgs.append(out + t.encrypt_and_hash(payloads[1]))
    if len(payloads) > 2:
        out = t.encrypt_and_hash(is_.public)
        dhs.append(("se", dh(is_, re)))
        t.mix_key(dhs[-1][1])
        msgs.append(out + t.encrypt_and_hash(payloads[2]))
    return msgs, dhs


def _check_transcript(run_handshake, pro: bytes, keys: dict, hellos: tuple[bytes, bytes]) -> None:
    """This module's XX transcript equals dissononce's on a real handshake."""
    v = run_handshake(pro, pro, keys, [b"", hellos[0], hellos[1]], [])
    mine, _ = xx_messages(pro, Key(keys["init_ephemeral"]), Key(keys["resp_ephemeral"]), Key(keys["init_static"]),
                          Key(keys["resp_static"]), [b"", hellos[0], hellos[1]])
    assert [m.hex() for m in mine] == [m["ciphertext"] for m in v["messages"]], "transcript differs from dissononce"


def _vector(pro: bytes, keys: dict[str, Key], payloads: list[bytes], msgs: list[bytes]) -> dict:
    v = {"protocol_name": PROTOCOL, "init_prologue": pro.hex(), "resp_prologue": pro.hex(),
         "messages": [{"payload": p.hex(), "ciphertext": m.hex()} for p, m in zip(payloads, msgs, strict=False)]}
    for name, key in keys.items():
        v[name] = key.private.hex() if key.private is not None else None
        if key.private is None:
            v[name + "_public"] = key.public.hex()
    return v


def generate(case, net, pro: bytes, hello, run_handshake) -> None:
    """`case(valid, name, description, vector, meta, manifest)` writes one case; `hello(node_id)` a Hello."""
    xkey = lambda node: seed(f"{net.network_id}/{node}/x25519")  # noqa: E731
    eph = lambda name, side: seed(f"noise/{name}/{side}_ephemeral")  # noqa: E731
    client_static = seed("noise/client/fresh-static")
    _check_transcript(run_handshake, pro, {"init_static": xkey("c0-n0"), "resp_static": xkey("c0-n1"),
                                           "init_ephemeral": eph("check", "init"),
                                           "resp_ephemeral": eph("check", "resp")},
                      (hello("c0-n1"), hello("c0-n0")))

    def manifest_with(node: str | None, public: bytes | None) -> dict:
        m = copy.deepcopy(net.manifest)
        if node is not None:
            for c in m["clusters"]:
                for n in c["nodes"]:
                    if n["id"] == node:
                        n["x25519_public"] = public.hex()
        return m

    def write(name: str, description: str, role: str, fails_at: int, port: str, init_node, resp_node: str,
              keys: dict[str, Key], payloads: list[bytes], msgs: list[bytes], manifest: dict, extra: dict) -> None:
        meta = {"port": port, "initiator_node": init_node, "responder_node": resp_node, "runner_role": role,
                "fails_at_message": fails_at, "reason": "handshake_failed", "crafted": True, **extra}
        case(False, name, description, _vector(pro, keys, payloads, msgs), meta, manifest)

    def check_zero(runner_private: bytes, point: bytes, dhs: list, expect: list[str]) -> None:
        assert x25519(runner_private, point) == bytes(32) and pyca_refuses(runner_private, point)
        assert [n for n, out in dhs if out == bytes(32)] == expect, dhs

    # --- small-order ephemeral keys, both runner roles (peer port, c0-n0 dials c0-n1)
    for point_name, point in SMALL_ORDER:
        note = SMALL_ORDER_NOTE[point_name]
        name = f"initiator_remote_ephemeral_{point_name}"
        keys = {"init_static": Key(xkey("c0-n0")), "init_ephemeral": Key(eph(name, "init")),
                "resp_static": Key(xkey("c0-n1")), "resp_ephemeral": Key(public=point)}
        payloads = [b"", hello("c0-n1")]
        msgs, dhs = xx_messages(pro, keys["init_ephemeral"], keys["resp_ephemeral"], keys["init_static"],
                                keys["resp_static"], payloads)
        check_zero(keys["init_ephemeral"].private, point, dhs, ["ee"])
        write(name, f"message 2 carries the responder ephemeral {point.hex()} ({note}): the initiator's ee "
              "result is 32 zero bytes (the rest of message 2 is built with that zero result, so it decrypts "
              "for a runner without the check)", "initiator", 2, "peer", "c0-n0", "c0-n1", keys, payloads, msgs,
              net.manifest, {"remote_key": point.hex(), "zero_dh": ["ee"]})
        name = f"responder_remote_ephemeral_{point_name}"
        keys = {"init_static": Key(xkey("c0-n0")), "init_ephemeral": Key(public=point),
                "resp_static": Key(xkey("c0-n1")), "resp_ephemeral": Key(eph(name, "resp"))}
        msgs, _ = xx_messages(pro, keys["init_ephemeral"], keys["resp_ephemeral"], keys["init_static"],
                              keys["resp_static"], [b""])
        assert msgs == [point]
        check_zero(keys["resp_ephemeral"].private, point, [("ee", dh(keys["resp_ephemeral"], keys["init_ephemeral"])),
                                                            ("es", dh(keys["resp_static"], keys["init_ephemeral"]))],
                   ["ee", "es"])
        assert x25519(keys["resp_static"].private, point) == bytes(32)
        write(name, f"message 1 is the initiator ephemeral {point.hex()} ({note}): the responder's ee (and es) "
              "result is 32 zero bytes, so it must abort before sending message 2", "responder", 2, "peer",
              "c0-n0", "c0-n1", keys, [b""], msgs, net.manifest, {"remote_key": point.hex(), "zero_dh": ["ee", "es"]})

    # --- small-order static keys: the manifest names the point as the remote node's key where the port
    # checks it, so that the key check passes and only the zero DH result fails.
    statics = [("initiator", "zero", "peer"), ("initiator", "small_order_e0eb", "peer"),
               ("initiator", "small_order_5f9c", "client"), ("initiator", "small_order_p_plus_1_noncanonical_one",
                                                             "client"),
               ("responder", "zero", "client"), ("responder", "small_order_e0eb", "client"),
               ("responder", "small_order_5f9c", "peer"), ("responder", "small_order_p_plus_1_noncanonical_one",
                                                           "peer")]
    points = dict(SMALL_ORDER)
    for role, point_name, port in statics:
        point = points[point_name]
        note = SMALL_ORDER_NOTE[point_name]
        name = f"{role}_remote_static_{point_name}_{port}_port"
        init_node, resp_node = ("c0-n0", "c0-n1") if port == "peer" else (None, "c0-n3")
        init_hello = hello("c0-n0" if port == "peer" else "")
        if role == "initiator":
            keys = {"init_static": Key(xkey("c0-n0") if port == "peer" else client_static),
                    "init_ephemeral": Key(eph(name, "init")), "resp_static": Key(public=point),
                    "resp_ephemeral": Key(eph(name, "resp"))}
            payloads = [b"", hello(resp_node)]
            msgs, dhs = xx_messages(pro, keys["init_ephemeral"], keys["resp_ephemeral"], keys["init_static"],
                                    keys["resp_static"], payloads)
            check_zero(keys["init_ephemeral"].private, point, dhs, ["es"])
            manifest = manifest_with(resp_node, point)
            why = (f"the responder's static key (encrypted in message 2) is {point.hex()} ({note}); manifest.json "
                   f"lists it as {resp_node}'s x25519_public, so the key check passes, but the initiator's es "
                   "result is 32 zero bytes")
            extra = {"remote_key": point.hex(), "zero_dh": ["es"]}
            fails_at = 2
        else:
            keys = {"init_static": Key(public=point), "init_ephemeral": Key(eph(name, "init")),
                    "resp_static": Key(xkey(resp_node)), "resp_ephemeral": Key(eph(name, "resp"))}
            payloads = [b"", hello(resp_node), init_hello]
            msgs, dhs = xx_messages(pro, keys["init_ephemeral"], keys["resp_ephemeral"], keys["init_static"],
                                    keys["resp_static"], payloads)
            check_zero(keys["resp_ephemeral"].private, point, dhs, ["se"])
            if port == "peer":
                manifest = manifest_with(init_node, point)
                why = (f"the initiator's static key (encrypted in message 3) is {point.hex()} ({note}); manifest.json "
                       "lists it as c0-n0's x25519_public, so the key check passes, but the responder's se result "
                       "is 32 zero bytes")
            else:
                manifest = net.manifest
                why = (f"a client's static key (encrypted in message 3) is {point.hex()} ({note}); any client key "
                       "is accepted on the client port, but the responder's se result is 32 zero bytes")
            extra = {"remote_key": point.hex(), "zero_dh": ["se"]}
            fails_at = 3
        write(name, why, role, fails_at, port, init_node, resp_node, keys, payloads, msgs, manifest, extra)

    # --- wrong sizes (from a real handshake, c0-n0 dials c0-n1)
    def real(name: str) -> tuple[dict[str, Key], list[bytes], list[bytes]]:
        keys = {"init_static": Key(xkey("c0-n0")), "init_ephemeral": Key(eph(name, "init")),
                "resp_static": Key(xkey("c0-n1")), "resp_ephemeral": Key(eph(name, "resp"))}
        payloads = [b"", hello("c0-n1"), hello("c0-n0")]
        msgs, dhs = xx_messages(pro, keys["init_ephemeral"], keys["resp_ephemeral"], keys["init_static"],
                                keys["resp_static"], payloads)
        assert all(out != bytes(32) for _, out in dhs)
        return keys, payloads, msgs

    m2_fixed, m3_fixed = 32 + 48 + 16, 48 + 16
    for size, why in [(0, "an empty message 1 (on the wire a zero-length frame, which SPEC 13 framing also closes)"),
                      (31, "message 1 of 31 bytes: one byte short of the ephemeral key"),
                      (33, "message 1 of 33 bytes: the ephemeral key and a 1-byte plaintext payload (a Noise "
                           "library alone accepts it; SPEC 13 requires exactly 32 bytes)"),
                      (64, "message 1 of 64 bytes: the ephemeral key and 32 bytes more")]:
        name = f"msg1_length_{size}"
        keys, payloads, msgs = real(name)
        m1 = (msgs[0] + bytes(range(1, 33)))[:size]
        write(name, why, "responder", 1, "peer", "c0-n0", "c0-n1", keys, [m1[32:]], [m1], net.manifest,
              {"message_length": size})
    for size, why in [(0, "an empty message 2"), (32, "message 2 of 32 bytes: the ephemeral key only"),
                      (79, "message 2 of 79 bytes: cut inside the encrypted static key"),
                      (m2_fixed - 1, f"message 2 of {m2_fixed - 1} bytes: one byte short of its fixed part "
                                     f"(32 + 48 + 16 = {m2_fixed})"),
                      (-1, "message 2 with its last byte cut off (the payload tag does not verify)"),
                      (+1, "message 2 with one extra byte appended (the payload tag does not verify)")]:
        keys, payloads, msgs = real(f"msg2_length_{size}")
        m2 = msgs[1][:size] if size >= 0 else msgs[1][:-1]
        if size == 1:
            m2 = msgs[1] + b"\x00"
        label = {-1: "cut_by_1", 1: "plus_1"}.get(size, str(size))
        write(f"msg2_length_{label}", why, "initiator", 2, "peer", "c0-n0", "c0-n1", keys, payloads[:2],
              [msgs[0], m2], net.manifest, {"message_length": len(m2), "expected_length": len(msgs[1])})
    for size, why in [(0, "an empty message 3"), (47, "message 3 of 47 bytes: cut inside the encrypted static key"),
                      (m3_fixed - 1, f"message 3 of {m3_fixed - 1} bytes: one byte short of its fixed part "
                                     f"(48 + 16 = {m3_fixed})"),
                      (-1, "message 3 with its last byte cut off (the payload tag does not verify)")]:
        keys, payloads, msgs = real(f"msg3_length_{size}")
        m3 = msgs[2][:size] if size >= 0 else msgs[2][:-1]
        label = {-1: "cut_by_1"}.get(size, str(size))
        write(f"msg3_length_{label}", why, "responder", 3, "peer", "c0-n0", "c0-n1", keys, payloads,
              [msgs[0], msgs[1], m3], net.manifest, {"message_length": len(m3), "expected_length": len(msgs[2])})
