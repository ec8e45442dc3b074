"""noise/handshake and noise/rekey vectors (SPEC 13), built with dissononce and pyca cryptography.

REKEY is computed here directly: dissononce 0.34.3 `Cipher.rekey` returns the 48-byte ciphertext
instead of its first 32 bytes (Noise revision 34 section 4.2), so it must not be used for this.
"""

from __future__ import annotations

import struct

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from dissononce.cipher.chachapoly import ChaChaPolyCipher
from dissononce.dh.x25519.private import PrivateKey
from dissononce.dh.x25519.x25519 import X25519DH
from dissononce.extras.dh.dangerous.dh_nogen import NoGenDH
from dissononce.hash.blake2b import Blake2bHash
from dissononce.processing.handshakepatterns.interactive.XX import XXHandshakePattern
from dissononce.processing.impl.cipherstate import CipherState
from dissononce.processing.impl.handshakestate import HandshakeState
from dissononce.processing.impl.symmetricstate import SymmetricState

from . import noise_hostile
from .codec import encode
from .keys import seed
from .network import Network
from .writer import CaseWriter

PROTOCOL = "Noise_XX_25519_ChaChaPoly_BLAKE2b"


def prologue(network_id: str) -> bytes:
    return b"heraclius/v1\x00" + network_id.encode("utf-8")


def frame(message: str, value: dict) -> bytes:
    data = encode(message, value)
    return struct.pack(">I", len(data)) + data


def nonce_bytes(n: int) -> bytes:
    return b"\x00\x00\x00\x00" + struct.pack("<Q", n)


def encrypt(key: bytes, n: int, ad: bytes, plaintext: bytes) -> bytes:
    return ChaCha20Poly1305(key).encrypt(nonce_bytes(n), plaintext, ad)


def rekey(key: bytes) -> bytes:
    return encrypt(key, 2**64 - 1, b"", bytes(32))[:32]


def _handshake_state(initiator: bool, pro: bytes, static: bytes, ephemeral: bytes) -> HandshakeState:
    dh = NoGenDH(X25519DH(), PrivateKey(ephemeral))  # fixed ephemeral key, as in Noise test vectors
    hs = HandshakeState(SymmetricState(CipherState(ChaChaPolyCipher()), Blake2bHash()), dh)
    hs.initialize(XXHandshakePattern(), initiator, pro, s=X25519DH().generate_keypair(PrivateKey(static)))
    return hs


def run_handshake(init_pro: bytes, resp_pro: bytes, keys: dict, payloads: list[bytes],
                  transport: list[bytes]) -> dict:
    """A Noise test vector (wiki JSON format). `transport` alternates responder -> initiator first."""
    init = _handshake_state(True, init_pro, keys["init_static"], keys["init_ephemeral"])
    resp = _handshake_state(False, resp_pro, keys["resp_static"], keys["resp_ephemeral"])
    messages = []
    sender, receiver = init, resp
    split = None
    for payload in payloads:
        buf = bytearray()
        out = sender.write_message(payload, buf)
        plain = bytearray()
        back = receiver.read_message(bytes(buf), plain)
        assert bytes(plain) == payload
        messages.append({"payload": payload.hex(), "ciphertext": bytes(buf).hex()})
        split = (out, back) if out is not None else split
        sender, receiver = receiver, sender
    (i_send, i_recv), (r_recv, r_send) = split  # write side returns (c1, c2) for both roles
    hh = init.symmetricstate.get_handshake_hash()
    assert hh == resp.symmetricstate.get_handshake_hash()
    for k, payload in enumerate(transport):
        if k % 2 == 0:
            ct = r_send.encrypt_with_ad(b"", payload)
            assert i_recv.decrypt_with_ad(b"", ct) == payload
        else:
            ct = i_send.encrypt_with_ad(b"", payload)
            assert r_recv.decrypt_with_ad(b"", ct) == payload
        messages.append({"payload": payload.hex(), "ciphertext": ct.hex()})
    return {"protocol_name": PROTOCOL, "init_prologue": init_pro.hex(), "init_static": keys["init_static"].hex(),
            "init_ephemeral": keys["init_ephemeral"].hex(), "resp_prologue": resp_pro.hex(),
            "resp_static": keys["resp_static"].hex(), "resp_ephemeral": keys["resp_ephemeral"].hex(),
            "handshake_hash": hh.hex(), "messages": messages}


def _hello(net: Network, node_id: str, version: int = 1, network_id: str | None = None) -> bytes:
    value = {"protocol_version": version, "network_id": network_id or net.network_id}
    if node_id:
        value["node_id"] = node_id
    return encode("Hello", value)


def generate_handshake(w: CaseWriter) -> None:
    net = Network("vectors-noise", [("c0", "coordinator", 4), ("s0", "shard", 4)], ["alice"])
    pro = prologue(net.network_id)

    def xkey(node: str) -> bytes:
        return seed(f"{net.network_id}/{node}/x25519")

    def keys(init_static: bytes, resp_static: bytes, case: str) -> dict:
        return {"init_static": init_static, "resp_static": resp_static,
                "init_ephemeral": seed(f"noise/{case}/init_ephemeral"),
                "resp_ephemeral": seed(f"noise/{case}/resp_ephemeral")}

    hb = {"cluster_id": "c0", "view": 2, "height": 41, "leader_id": "c0-n1"}
    vc = {"cluster_id": "c0", "new_view": 3, "node_id": "c0-n0", "height": 41, "signature": bytes(range(64))}
    peer_transport = [frame("PeerMessage", {"heartbeat": hb}),
                      frame("PeerMessage", {"view_change": vc}),
                      frame("PeerMessage", {"heartbeat": dict(hb, height=42)})
                      + frame("PeerMessage", {"sync_request": {"cluster_id": "c0", "from_height": 40, "max_count": 256}}),
                      frame("PeerMessage", {"queue_pull": {"source_cluster": "s0", "destination": "c0", "from_seq": 1,
                                                           "max_count": 256}})]

    def case(valid: bool, name: str, description: str, vector: dict, extra: dict, manifest: dict | None = None) -> None:
        meta = {"description": description, "verdict": "accept" if valid else "reject", **extra}
        w.case("noise", "handshake", valid, name, meta, {"manifest.json": manifest or net.manifest, "vectors.json":
                                                         {"vectors": [vector]}})

    k = keys(xkey("c0-n0"), xkey("c0-n1"), "peer")
    v = run_handshake(pro, pro, k, [b"", _hello(net, "c0-n1"), _hello(net, "c0-n0")], peer_transport)
    case(True, "peer_link", "c0-n0 dials c0-n1 on the peer port; then PeerMessage frames both ways", v,
         {"port": "peer", "initiator_node": "c0-n0", "responder_node": "c0-n1", "transport": "PeerMessage"})
    k = keys(xkey("s0-n3"), xkey("c0-n2"), "cross")
    v = run_handshake(pro, pro, k, [b"", _hello(net, "c0-n2"), _hello(net, "s0-n3")],
                      [frame("PeerMessage", {"queue_batch": {"source_cluster": "c0", "destination": "s0"}}),
                       frame("PeerMessage", {"queue_pull": {"source_cluster": "c0", "destination": "s0",
                                                            "from_seq": 7, "max_count": 16}})])
    case(True, "cross_cluster_link", "s0-n3 dials c0-n2 (pulling c0's queue for s0)", v,
         {"port": "peer", "initiator_node": "s0-n3", "responder_node": "c0-n2", "transport": "PeerMessage"})
    req = net.sign_request("alice", {"request_id": 5, "cluster_id": "c0", "op": {"kind": 1, "key": b"k1"}})
    client_static = seed("noise/client/fresh-static")
    k = keys(client_static, xkey("c0-n3"), "client")
    err = {"code": 8, "request_id": 5, "message": "timeout"}
    v = run_handshake(pro, pro, k, [b"", _hello(net, "c0-n3"), _hello(net, "")],
                      [frame("ClientReply", {"error": err}), frame("ClientMessage", {"submit": req})])
    case(True, "client_link", "a client (fresh static key, empty node_id) dials c0-n3 on the client port; "
         "transport: the node's ClientReply, then the client's ClientMessage", v,
         {"port": "client", "initiator_node": None, "responder_node": "c0-n3",
          "transport": "responder sends ClientReply, initiator sends ClientMessage"})

    def bad(name: str, description: str, runner_role: str, fails_at: int, reason: str, init_static: bytes,
            resp_static: bytes, hellos: tuple[bytes, bytes], port: str = "peer", init_node: str | None = "c0-n0",
            resp_node: str = "c0-n1", resp_pro: bytes = pro) -> None:
        kk = keys(init_static, resp_static, name)
        vec = run_handshake(pro, resp_pro, kk, [b"", hellos[0], hellos[1]], []) if resp_pro == pro else \
            _partial(pro, resp_pro, kk, hellos)
        case(False, name, description, vec, {"port": port, "initiator_node": init_node, "responder_node": resp_node,
                                             "runner_role": runner_role, "fails_at_message": fails_at,
                                             "reason": reason})

    n0, n1 = xkey("c0-n0"), xkey("c0-n1")
    bad("wrong_network_in_hello", "the initiator's Hello names network 'vectors-other'", "responder", 3,
        "handshake_failed", n0, n1, (_hello(net, "c0-n1"), _hello(net, "c0-n0", network_id="vectors-other")))
    bad("protocol_version_2", "the initiator's Hello has protocol_version 2", "responder", 3, "handshake_failed",
        n0, n1, (_hello(net, "c0-n1"), _hello(net, "c0-n0", version=2)))
    bad("unknown_node_id", "the initiator's Hello names node 'c0-n9', not in the manifest", "responder", 3,
        "unknown_node", n0, n1, (_hello(net, "c0-n1"), _hello(net, "c0-n9")))
    bad("empty_node_id_on_peer_port", "the initiator's Hello has an empty node_id on the peer port", "responder", 3,
        "handshake_failed", n0, n1, (_hello(net, "c0-n1"), _hello(net, "")))
    bad("initiator_key_mismatch", "the initiator claims c0-n2 but uses c0-n0's static key", "responder", 3,
        "handshake_failed", n0, n1, (_hello(net, "c0-n1"), _hello(net, "c0-n2")))
    bad("responder_key_mismatch", "c0-n0 dials c0-n1 but the responder answers with c0-n2's static key and "
        "Hello", "initiator", 2, "handshake_failed", n0, xkey("c0-n2"), (_hello(net, "c0-n2"), _hello(net, "c0-n0")))
    bad("responder_wrong_network", "the responder's Hello names network 'vectors-other'", "initiator", 2,
        "handshake_failed", n0, n1, (_hello(net, "c0-n1", network_id="vectors-other"), _hello(net, "c0-n0")))
    bad("client_port_wrong_node_key", "a client dials c0-n3's client port; the responder uses c0-n2's key",
        "initiator", 2, "handshake_failed", client_static, xkey("c0-n2"), (_hello(net, "c0-n2"), _hello(net, "")),
        port="client", init_node=None, resp_node="c0-n3")
    bad("client_hello_with_node_id", "a client on c0-n3's client port sends a Hello naming node c0-n0 "
        "(SPEC 13: a node closes a client-port connection whose Hello has a non-empty node_id)", "responder", 3,
        "handshake_failed", client_static, xkey("c0-n3"), (_hello(net, "c0-n3"), _hello(net, "c0-n0")),
        port="client", init_node=None, resp_node="c0-n3")
    bad("wrong_prologue", "the responder used the prologue of network 'vectors-other': message 2 does not "
        "decrypt", "initiator", 2, "handshake_failed", n0, n1, (_hello(net, "c0-n1"), _hello(net, "c0-n0")),
        resp_pro=prologue("vectors-other"))
    noise_hostile.generate(case, net, pro, lambda node_id: _hello(net, node_id), run_handshake)


def _partial(init_pro: bytes, resp_pro: bytes, keys: dict, hellos: tuple[bytes, bytes]) -> dict:
    """Messages 1 and 2 only, when the two sides disagree on the prologue (message 2 fails to decrypt)."""
    init = _handshake_state(True, init_pro, keys["init_static"], keys["init_ephemeral"])
    resp = _handshake_state(False, resp_pro, keys["resp_static"], keys["resp_ephemeral"])
    b1 = bytearray()
    init.write_message(b"", b1)
    resp.read_message(bytes(b1), bytearray())
    b2 = bytearray()
    resp.write_message(hellos[0], b2)
    return {"protocol_name": PROTOCOL, "init_prologue": init_pro.hex(), "init_static": keys["init_static"].hex(),
            "init_ephemeral": keys["init_ephemeral"].hex(), "resp_prologue": resp_pro.hex(),
            "resp_static": keys["resp_static"].hex(), "resp_ephemeral": keys["resp_ephemeral"].hex(),
            "messages": [{"payload": "", "ciphertext": bytes(b1).hex()},
                         {"payload": hellos[0].hex(), "ciphertext": bytes(b2).hex()}]}


def generate_rekey(w: CaseWriter) -> None:
    for name, key in [("seeded_key", seed("noise/rekey/key")), ("zero_key", bytes(32)), ("ff_key", b"\xff" * 32)]:
        k1 = rekey(key)
        pt = b"heraclius rekey vector"
        w.case("noise", "rekey", True, name, {"description": f"REKEY of a {name.replace('_', ' ')}, and an "
                                               "encryption with the new key at nonce 65536", "verdict": "equal"},
               {"input.json": {"key": key.hex(), "nonce": 65536, "ad": "", "plaintext": pt.hex()},
                "expected.json": {"rekeyed_key": k1.hex(), "twice_rekeyed_key": rekey(k1).hex(),
                                  "ciphertext": encrypt(k1, 65536, b"", pt).hex()}})
    key = seed("noise/rekey/sequence")
    for name, first, count in [("sequence_across_65535", 65533, 5), ("sequence_across_131071", 131070, 3),
                               ("sequence_from_zero", 0, 3)]:
        k, cts, keys_used = key, [], []
        pts = [b"message %d" % i for i in range(count)]
        for i, pt in enumerate(pts):
            n = first + i
            cts.append(encrypt(k, n, b"", pt).hex())
            keys_used.append(k.hex())
            if (n + 1) % 65536 == 0:
                k = rekey(k)
        w.case("noise", "rekey", True, name, {
            "description": f"a CipherState with the given key at nonce {first} encrypts {count} messages, "
                           "rekeying after the message whose nonce n has (n + 1) mod 65536 = 0",
            "verdict": "equal"},
            {"input.json": {"key": key.hex(), "first_nonce": first, "ad": "", "plaintexts": [p.hex() for p in pts]},
             "expected.json": {"ciphertexts": cts, "keys": keys_used, "final_key": k.hex(),
                               "final_nonce": first + count}})


def generate_transport(w: CaseWriter) -> None:
    """Receiving CipherStates: decryption with the SPEC 13 rekey rule, and the failures that close a link."""
    key = seed("noise/transport/key")

    def schedule(first: int, count: int, rekeying: bool = True) -> list[tuple[int, bytes]]:
        k, out = key, []
        for i in range(count):
            n = first + i
            out.append((n, k))
            if rekeying and (n + 1) % 65536 == 0:
                k = rekey(k)
        return out

    def case(valid: bool, name: str, description: str, first: int, cts: list[bytes], pts: list[bytes],
             failing: int | None = None) -> None:
        meta = {"description": description, "verdict": "accept" if valid else "reject"}
        if failing is not None:
            meta["failing_message"] = failing
        files = {"input.json": {"key": key.hex(), "first_nonce": first, "ad": "",
                                "ciphertexts": [c.hex() for c in cts]}}
        if valid:
            files["expected.json"] = {"plaintexts": [p.hex() for p in pts]}
        w.case("noise", "transport", valid, name, meta, files)

    pts = [b"frame %d" % i for i in range(4)]
    sched = schedule(65534, 4)
    cts = [encrypt(k, n, b"", p) for (n, k), p in zip(sched, pts, strict=True)]
    case(True, "across_rekey", "nonces 65534..65537: the receiver rekeys after decrypting nonce 65535", 65534, cts, pts)
    first = schedule(0, 3)
    cts0 = [encrypt(k, n, b"", p) for (n, k), p in zip(first, pts, strict=False)]
    case(True, "from_zero", "the first three transport messages of a direction", 0, cts0, pts[:3])
    stale = [encrypt(k, n, b"", p) for (n, k), p in zip(schedule(65534, 4, rekeying=False), pts, strict=True)]
    case(False, "sender_did_not_rekey", "the sender kept the old key after nonce 65535", 65534, stale, [], 3)
    tampered = list(cts)
    tampered[1] = tampered[1][:-1] + bytes([tampered[1][-1] ^ 1])
    case(False, "tampered_tag", "the second ciphertext has one tag bit flipped", 65534, tampered, [], 2)
    case(False, "skipped_message", "the second message is missing (nonce gap)", 65534, [cts[0], cts[2]], [], 2)
    case(False, "replayed_message", "the first message is delivered twice", 65534, [cts[0], cts[0]], [], 2)
    case(False, "reordered", "the first two messages swapped", 65534, [cts[1], cts[0]], [], 1)
    last = 2**64 - 3
    ends = [encrypt(key, last + i, b"", p) for i, p in enumerate(pts[:3])]
    case(True, "last_usable_nonce", "nonces 2^64-3 and 2^64-2, the last usable one", last, ends[:2], pts[:2])
    case(False, "nonce_exhaustion", "a third message would use nonce 2^64-1 (reserved; SPEC 13 closes the link "
         "before)", last, ends, [], 3)
