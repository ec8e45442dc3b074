"""SPEC 17.1 differential adapter: the real `python -m impl_a.conformance --serve` process, driven with
requests built from every vector case of wire_spec/vectors/ and with garbage lines."""

from __future__ import annotations

import hashlib
import json
import pathlib
import sys

import pytest

from impl_a import heraclius_pb2 as pb
from tests.adapter_process import AdapterProcess

V = pathlib.Path(__file__).resolve().parents[2] / "wire_spec" / "vectors"
pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def ad(request):
    """One impl_a adapter process for the module; it must exit 0 when its stdin closes."""
    proc = AdapterProcess([sys.executable, "-m", "impl_a.conformance"])
    request.addfinalizer(lambda: _exits_cleanly(proc))
    return proc


def _exits_cleanly(proc) -> None:
    assert proc.close() == 0


def cases(area: str, handler: str = "*"):
    found = sorted(V.glob(f"{area}/{handler}/*/*/meta.json"))
    assert found, f"no vectors under {area}/{handler}"
    for meta in found:
        yield meta.parent, json.loads(meta.read_text())


def js(case: pathlib.Path, name: str):
    return json.loads((case / name).read_text())


def hx(case: pathlib.Path, name: str) -> str:
    return (case / name).read_bytes().hex()


def test_codec_decode_and_encode_every_case(ad):
    n = 0
    for case, meta in cases("codec"):
        msg = meta["message"]
        got = ad.ok("decode", message=msg, hex=hx(case, "encoded.bin"))
        if meta["verdict"] == "accept":
            want = js(case, "decoded.json")
            assert got == {**got, "verdict": "accept", "json": want, "hex": hx(case, "encoded.bin")}, case
            assert ad.ok("encode", message=msg, json=want)["hex"] == hx(case, "encoded.bin"), case
        else:
            assert (got["verdict"], got["reason"]) == ("reject", meta["reason"]), case
        n += 1
    assert n > 300


def test_encode_refuses_what_is_not_a_rendering(ad):
    good = {"kind": "OP_KIND_PUT", "key": "6b", "value": "76"}
    assert ad.ok("encode", message="Operation", json=good)["hex"] == "080212016b1a0176"
    for bad in ({**good, "kind": "OP_KIND_UNSPECIFIED"}, {**good, "value": ""}, {**good, "key": "6B"},
                {**good, "key": "6"}, {**good, "extra": 1}, {**good, "kind": 2}, [good], "x", None):
        assert ad.ok("encode", message="Operation", json=bad) == {"id": ad.n, "ok": True, "verdict": "reject"}, bad
    hb = {"cluster_id": "c0", "height": 1}
    for bad in ({**hb, "height": 0}, {**hb, "height": True}, {**hb, "height": 1.0}, {**hb, "height": 2**64},
                {**hb, "height": -1}, {**hb, "cluster_id": "\ud800"}):
        assert ad.ok("encode", message="Heartbeat", json=bad)["verdict"] == "reject", bad
    assert ad.ok("encode", message="Heartbeat", json={**hb, "height": 2**64 - 1})["hex"]
    # a oneof: exactly one member; an empty sub-message is written
    assert ad.ok("encode", message="Input", json={})["verdict"] == "reject"
    assert ad.ok("encode", message="Input", json={"client": {}, "bundle": {}})["verdict"] == "reject"
    assert ad.ok("encode", message="Input", json={"client": {}})["hex"] == "0a00"


def test_signing_bytes_and_signatures(ad):
    for case, meta in cases("signing"):
        inp = js(case, "input.json")
        dom, nid = meta["domain"], inp["network_id"]
        if case.parent.name == "valid":
            sb = hx(case, "signing_bytes.bin")
            assert ad.ok("signing_bytes", domain=dom, network_id=nid, hex=hx(case, "message.bin"))["hex"] == sb
            assert ad.ok("signing_bytes", domain=dom, network_id=nid, hex=hx(case, "body.bin"))["hex"] == sb
            got = ad.ok("ed25519_verify", public=inp["public_key"], message=sb, signature=hx(case, "signature.bin"))
            assert got["verdict"] == "accept", case
        else:
            got = ad.ok("signing_bytes", domain=dom, network_id=nid, hex=hx(case, "body.bin"))
            if "hex" in got:
                got = ad.ok("ed25519_verify", public=inp["public_key"], message=got["hex"],
                            signature=hx(case, "signature.bin"))
            assert got["verdict"] == "reject", case
    assert ad.ok("signing_bytes", domain="proposal", network_id="n", hex="ff")["verdict"] == "reject"
    assert ad.ask("signing_bytes", domain="nope", network_id="n", hex="")["ok"] is False


def test_ed25519_verify(ad):
    for case, meta in cases("crypto", "ed25519_verify"):
        inp = js(case, "input.json")
        got = ad.ok("ed25519_verify", public=inp["public_key"], message=inp["message"], signature=inp["signature"])
        assert got["verdict"] == meta["verdict"], case
    assert ad.ok("ed25519_verify", public="00", message="", signature="00")["verdict"] == "reject"


def test_merkle_root_and_verify(ad):
    for case, _ in cases("merkle", "root"):
        got = ad.ok("merkle_root", leaves=js(case, "input.json")["leaves"])
        assert got["root"] == js(case, "expected.json")["root"], case
    checked = {"accept": 0, "reject": 0}
    for case, meta in cases("merkle", "proof"):  # every case, valid and invalid
        inp = js(case, "input.json")
        base = {"index": inp["leaf_index"], "count": inp["leaf_count"], "proof": inp["proof"], "root": inp["root"]}
        ways = [{"leaf_hash": inp["leaf_hash"]}]  # the invalid cases give only the leaf hash
        if "leaf" in inp:
            assert hashlib.sha256(b"\0" + bytes.fromhex(inp["leaf"])).hexdigest() == inp["leaf_hash"], case
            ways += [{"leaf": inp["leaf"]}, {"leaf": inp["leaf"], "leaf_hash": inp["leaf_hash"]}]
        for way in ways:
            assert ad.ok("merkle_verify", **base, **way) == {"id": ad.n, "ok": True, "verdict": meta["verdict"]}, \
                (case, way)
        checked[meta["verdict"]] += 1
        if "leaf" in inp:  # leaf and leaf_hash that disagree: reject
            other = ("00" if inp["leaf_hash"][:2] != "00" else "01") + inp["leaf_hash"][2:]
            assert ad.ok("merkle_verify", **base, leaf=inp["leaf"], leaf_hash=other)["verdict"] == "reject", case
        if meta["verdict"] != "accept":
            continue
        req = {**base, "leaf": inp["leaf"]}
        bad_root = ("00" if inp["root"][:2] != "00" else "01") + inp["root"][2:]
        for mutated in ({"index": inp["leaf_count"]}, {"root": bad_root}, {"proof": inp["proof"] + [inp["root"]]},
                        {"leaf": inp["leaf"] + "00"}, {"index": -1}, {"root": inp["root"][:-2]}):
            assert ad.ok("merkle_verify", **{**req, **mutated})["verdict"] == "reject", (case, mutated)
    assert checked["accept"] > 10 and checked["reject"] > 10, checked
    # neither leaf nor leaf_hash, or one that is not lowercase hex: an error, not a verdict
    assert ad.ask("merkle_verify", **base)["ok"] is False
    for bad in ({"leaf_hash": inp["leaf_hash"].upper()}, {"leaf_hash": None}, {"leaf": "0"},
                {"leaf": inp["leaf"], "leaf_hash": 5}):
        assert ad.ask("merkle_verify", **base, **bad)["ok"] is False, bad
    assert ad.ok("merkle_root", leaves=[])["root"] == hashlib.sha256(b"").hexdigest()


def test_qc_verify(ad):
    for case, meta in cases("qc", "verify"):
        cluster = pb.DecisionHeader.FromString((case / "header.bin").read_bytes()).cluster_id
        got = ad.ok("qc_verify", manifest=js(case, "manifest.json"), cluster=cluster, header=hx(case, "header.bin"),
                    qc=hx(case, "qc.bin"))
        assert got["verdict"] == meta["verdict"] and got.get("reason") == meta.get("reason"), case
        if meta["verdict"] == "accept":
            got = ad.ok("qc_verify", manifest=js(case, "manifest.json"), cluster="s0" if cluster != "s0" else "c0",
                        header=hx(case, "header.bin"), qc=hx(case, "qc.bin"))
            assert (got["verdict"], got["reason"]) == ("reject", "wrong_cluster")
            got = ad.ok("qc_verify", manifest=js(case, "manifest.json"), cluster=cluster,
                        header=hx(case, "header.bin") + "00", qc=hx(case, "qc.bin"))
            assert got["verdict"] == "reject"


def test_compact_verify(ad):
    for case, meta in cases("compact", "verify"):
        ctx = js(case, "context.json")
        got = ad.ok("compact_verify", manifest=js(case, "manifest.json"), source=ctx["source"],
                    destination=ctx["destination"], next_seq=ctx["next_seq"], compact=hx(case, "compact.bin"))
        assert got["verdict"] == meta["verdict"] and got.get("reason") == meta.get("reason"), case


def _compact_to(m: dict, destination: str, entries: str) -> str:
    """A valid CompactDecision from cluster "coord" whose only leaf goes to `destination` and holds one
    entry of kind `entries` (QC signed by three of the four members of manifest_with_shards(real_keys))."""
    from impl_a.codec import encode
    from impl_a.crypto import SigningKey, sha256, signing_bytes

    leaf = pb.OutputLeaf(source_cluster="coord", height=1, destination=destination, seq=1)
    if entries == "responses":
        leaf.responses.add(request_id=1, kind=pb.OP_KIND_GET, shard_id="s0", shard_height=1)
    else:
        leaf.calls.add(client_key=b"k" * 32, request_id=1, op=pb.Operation(kind=pb.OP_KIND_GET, key=b"k"))
    header = pb.DecisionHeader(cluster_id="coord", height=1, parent_hash=bytes(32), inputs_hash=sha256(b"b"),
                               outputs_root=sha256(b"\0" + encode(leaf)))
    msg = signing_bytes("decision", m["network_id"], encode(header))
    qc = pb.QuorumCert(signatures=[pb.NodeSignature(node_id=nid, signature=SigningKey(_seed(nid + "/ed")).sign(msg))
                                   for nid in ("coord-n0", "coord-n1", "coord-n2")])
    return encode(pb.CompactDecision(header=header, leaf=leaf, leaf_index=0, leaf_count=1, qc=qc)).hex()


def test_compact_verify_other_destination_expects_responses(ad):
    """SPEC 17.1: a destination that is neither client:<hex> nor a cluster expects responses."""
    m = manifest_with_shards(["s0"], real_keys=True)
    assert ad.ok("manifest_validate", manifest=m)["verdict"] == "accept"
    for dest, entries, want in [("client:" + "ab" * 32, "responses", ("accept", None)),
                                ("elsewhere", "responses", ("accept", None)), ("client:zz", "responses", ("accept", None)),
                                ("elsewhere", "calls", ("reject", "malformed")), ("s0", "calls", ("accept", None)),
                                ("s0", "responses", ("reject", "malformed"))]:
        got = ad.ok("compact_verify", manifest=m, source="coord", destination=dest, next_seq=1,
                    compact=_compact_to(m, dest, entries))
        assert (got["verdict"], got.get("reason")) == want, (dest, entries, got)


def test_execute(ad):
    n = 0
    for case, meta in cases("execution"):
        steps = meta["steps"]
        got = ad.ok("execute", manifest=js(case, "manifest.json"), cluster=meta["cluster"],
                    batches=[hx(case, f"batch_{i:03d}.bin") for i in range(1, steps + 1)])
        decided = steps if meta["invalid_step"] is None else steps - 1
        want = [hx(case, f"decision_{i:03d}.bin") for i in range(1, decided + 1)]
        if meta["invalid_step"] is not None:
            want.append({"verdict": "reject"})
        assert got["decisions"] == want, case
        n += 1
    assert n > 40
    assert ad.ok("execute", manifest=js(case, "manifest.json"), cluster=meta["cluster"], batches=[])["decisions"] == []
    assert ad.ask("execute", manifest=js(case, "manifest.json"), cluster="nowhere", batches=[])["ok"] is False


def _seed(name: str) -> bytes:
    return hashlib.sha256(name.encode()).digest()


def manifest_with_shards(shards: list[str], real_keys: bool = False) -> dict:
    from impl_a.crypto import SigningKey

    def key(name: str) -> str:
        if real_keys and name.endswith("/ed"):
            return SigningKey(_seed(name)).public.hex()
        return _seed(name).hex()

    clusters, port = [], 7000
    for cid, role in [("coord", "coordinator")] + [(s, "shard") for s in shards]:
        nodes = []
        for i in range(4):
            nid = f"{cid}-n{i}"
            nodes.append({"id": nid, "implementation": "impl_a", "region": "r", "host": "127.0.0.1",
                          "ports": {"peer": port, "client": port + 1, "admin": port + 2},
                          "ed25519_public": key(nid + "/ed"), "x25519_public": key(nid + "/x")})
            port += 3
        clusters.append({"id": cid, "role": role, "nodes": nodes})
    return {"version": 1, "network_id": "shard-test", "regions": ["r"], "clusters": clusters,
            "shard_map": {"function": "sha256-u64-mod", "shards": shards},
            "clients": [{"id": "cl", "ed25519_public": key("client")}]}


def test_shard_of_and_manifest_validate(ad):
    for case, _ in cases("shard", "map"):
        inp = js(case, "input.json")
        m = manifest_with_shards(inp["shards"])
        assert ad.ok("manifest_validate", manifest=m) == {"id": ad.n, "ok": True, "verdict": "accept"}
        for key, want in zip(inp["keys"], js(case, "expected.json")["results"], strict=True):
            assert ad.ok("shard_of", manifest=m, key=key)["shard"] == want["shard"], (case, key)
    for case, meta in cases("manifest", "validate"):
        got = ad.ok("manifest_validate", manifest=js(case, "manifest.json"))
        exp = meta["expected"]
        if exp["valid"]:
            assert got == {"id": ad.n, "ok": True, "verdict": "accept"}, case
        else:
            assert got == {"id": ad.n, "ok": True, "verdict": "reject", "stage": exp["stage"], "rule": exp["rule"]}, \
                case
            assert (exp["stage"] == "schema") is (exp["rule"] is None), case
    # ops that need a manifest refuse to run on an invalid one
    bad = js(case, "manifest.json") if not exp["valid"] else {"version": 2}
    assert ad.ask("shard_of", manifest=bad, key="00")["ok"] is False


GARBAGE = [
    b"", b" ", b"{", b"}", b"null", b"42", b'"op"', b"[]", b"\xff\xfe\x00", b'{"id": 1, "op": "decode"',
    b'{"id": NaN, "op": "x"}', b'{"id": 1e999, "op": "x"}', b'{"id": 1, "id": 2, "op": "shard_of"}',
    b"[" * 100000, b'{"a":' * 50000, b'{"id": ' + b"9" * 5000 + b"}",
    b'{"op": "decode"}', b'{"op": 7}', b'{"op": null, "id": []}', b'{"op": "decode", "message": "Nope", "hex": ""}',
    b'{"op": "decode", "message": "Batch", "hex": "abc"}', b'{"op": "decode", "message": "Batch", "hex": "AB"}',
    b'{"op": "decode", "message": "Batch", "hex": 5}', b'{"op": "decode", "message": ["Batch"], "hex": ""}',
    b'{"op": "encode", "message": "Batch"}', b'{"op": "ed25519_verify", "public": "00"}',
    b'{"op": "signing_bytes", "domain": "decision", "network_id": 1, "hex": ""}',
    b'{"op": "merkle_root", "leaves": "00"}', b'{"op": "merkle_root", "leaves": [1]}',
    b'{"op": "merkle_verify", "leaf": "", "index": 0.5, "count": 1, "proof": [], "root": ""}',
    b'{"op": "merkle_verify", "leaf": "", "index": 0, "count": ' + b"9" * 300 + b', "proof": [], "root": ""}',
    b'{"op": "qc_verify", "manifest": [], "cluster": "c0", "header": "", "qc": ""}',
    b'{"op": "compact_verify", "manifest": {}, "source": 1}', b'{"op": "execute", "manifest": {"x": 1}}',
    b'{"op": "shard_of", "manifest": {"version": 1}, "key": ""}', b'{"op": "manifest_validate"}',
    b'{"op": "manifest_validate", "manifest": ' + b"[" * 3000 + b"]" * 3000 + b"}",
    b'{"id": {"deep": [[[[[[1]]]]]]}, "op": "unknown"}', b"\x00" * 1000, b'{"id": "\\ud800", "op": "?"}',
]


def test_garbage_lines_each_get_one_answer(ad):
    for line in GARBAGE:
        got = ad.raw(line)
        assert set(got) >= {"id", "ok"}, line[:60]
        if got["ok"] is False:
            assert isinstance(got["error"], str)
    got = ad.raw(b'{"id": 1, "id": 2, "op": "merkle_root", "leaves": []}')  # duplicate keys: bad JSON
    assert (got["id"], got["ok"]) == (None, False)
    assert ad.raw(b'{"op": "merkle_root", "leaves": ["00"]}')["ok"] is True  # no id: null
    # numbers that overflow a double are bad JSON, integers included; large integers that fit are not
    for big in (b"1" + b"0" * 309, b"-" + b"9" * 400, b"1e309", b"-1e400"):
        got = ad.raw(b'{"id": ' + big + b', "op": "merkle_root", "leaves": []}')
        assert (got["id"], got["ok"]) == (None, False), big
    got = ad.raw(b'{"id": 1' + b"0" * 307 + b', "op": "merkle_root", "leaves": []}')
    assert (got["id"], got["ok"]) == (10**307, True)
    huge = json.dumps({"id": "big", "op": "decode", "message": "Batch", "hex": "0a" * (8 << 20)}).encode()
    got = ad.raw(huge)
    assert got["id"] == "big" and got["verdict"] == "reject"
    # decoding random bytes as every message is always an answer, never an error
    rnd = hashlib.sha256(b"seed").digest() * 8
    for name in pb.DESCRIPTOR.message_types_by_name:
        for n in (1, 3, 17, 64, 255):
            assert ad.ok("decode", message=name, hex=rnd[:n].hex())["verdict"] in ("accept", "reject")
    assert ad.proc.poll() is None
    assert ad.ok("shard_of", manifest=manifest_with_shards(["s0"]), key="")["shard"] == "s0"


def test_line_over_64_mib_gets_one_error_with_id_null(ad):
    from impl_a.jsonl_adapter import MAX_LINE

    assert MAX_LINE == 64 * 1024 * 1024
    head = b'{"id": "long", "op": "merkle_root", "leaves": [], "pad": "'
    line = head + b"z" * (MAX_LINE + 1 - len(head) - 2) + b'"}'
    assert len(line) == MAX_LINE + 1
    got = ad.raw(line)
    assert (got["id"], got["ok"]) == (None, False) and "longer" in got["error"]
    assert ad.ok("merkle_root", leaves=[])["root"] == hashlib.sha256(b"").hexdigest()  # the next line runs
    got = ad.raw(line[:-3] + b'"}')  # exactly 64 MiB: run as usual
    assert got == {"id": "long", "ok": True, "root": hashlib.sha256(b"").hexdigest()}


def test_over_long_lines_are_skipped_in_process(monkeypatch):
    import io

    from impl_a import jsonl_adapter

    monkeypatch.setattr(jsonl_adapter, "MAX_LINE", 64)
    good = b'{"id": 7, "op": "merkle_root", "leaves": ["00"]}'
    out = io.StringIO()
    data = good + b"\n" + b'{"id": 8, "op": "x", "pad": "' + b"z" * 500 + b'"}\n' + good  # no final newline
    assert jsonl_adapter.serve(io.BytesIO(data), out) == 0
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert [(x["id"], x["ok"]) for x in lines] == [(7, True), (None, False), (7, True)]
