"""Micro-benchmarks of impl_b's hot paths: `python -m impl_b.bench` (codec, signatures, QC checks)."""

import time

from . import codec, crypto, merkle
from .checks import Checker, build_compact, sign_message
from .codec import decode, encode
from .devnet import build
from .manifest import validate
from .rsm import State, execute


def _rate(fn, seconds: float = 0.5) -> float:
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(50):
            fn()
        n += 50
    return n / (time.perf_counter() - t0)


def _fresh_encode(msg) -> bytes:
    codec.touch(msg)  # measure a real encoding, not the cached bytes
    return encode(msg)


def samples():
    doc, sec = build({"c0": "coordinator", "s0": "shard"}, ports=False)
    m = validate(doc)
    client = crypto.Signer(sec["alice"]["ed25519"])
    reqs = []
    for i in range(16):
        r = codec.ClientRequest(client_key=client.public, request_id=1000 + i, cluster_id="c0",
                                op=codec.Operation(kind=2, key=f"key-{i}".encode(), value=b"v" * 100))
        sign_message(client, m.network_id, r)
        reqs.append(r)
    batch = codec.Batch(inputs=[codec.Input(client=r) for r in reqs])
    ex = execute(State("c0", "coordinator"), m, batch, 1, b"\x00" * 32)
    signers = [crypto.Signer(sec[f"c0-n{i}"]["ed25519"]) for i in range(3)]
    sb = crypto.signing_bytes("decision", m.network_id, encode(ex.header))
    qc = codec.QuorumCert(signatures=sorted((codec.NodeSignature(node_id=f"c0-n{i}", signature=s.sign(sb))
                                             for i, s in enumerate(signers)), key=lambda x: x.node_id))
    dec = codec.Decision(header=ex.header, batch=batch, outputs=ex.outputs, qc=qc)
    prep = codec.Prepare(cluster_id="c0", view=3, height=77, digest=b"\x01" * 32, node_id="c0-n1", signature=b"\x02" * 64)
    return m, reqs[0], prep, dec, build_compact(dec, "s0")


def main() -> None:
    m, req, prep, dec, cd = samples()
    out = {}
    for name, msg in (("ClientRequest", req), ("Prepare", prep), ("CompactDecision", cd),
                      ("Decision(16 PUTs)", dec)):
        data = encode(msg)
        typ = msg._name
        out[name] = (len(data), _rate(lambda msg=msg: _fresh_encode(msg)), _rate(lambda d=data, t=typ: decode(t, d)))
    print(f"{'message':22} {'bytes':>6} {'encode/s':>10} {'decode/s':>10} {'enc+dec us':>10}")
    for name, (size, e, d) in out.items():
        print(f"{name:22} {size:6d} {e:10.0f} {d:10.0f} {1e6 / e + 1e6 / d:10.1f}")
    pub = req.client_key
    sb = crypto.signing_bytes("client-request", m.network_id, encode(req.copy(signature=b"")))
    print(f"ed25519 strict verify/s {_rate(lambda: crypto.verify(pub, sb, req.signature)):.0f}")
    chk = Checker(m)
    print(f"QC verify (3 sigs, uncached)/s {_rate(lambda: chk._qc_check(m.clusters['c0'], encode(dec.header), dec.qc)):.0f}")
    print(f"merkle proofs (2 leaves)/s {_rate(lambda: merkle.proofs([b'a' * 200, b'b' * 200])):.0f}")


if __name__ == "__main__":
    main()
