"""SPEC 17.1 differential adapter of impl_b (`python -m impl_b.conformance --serve`), driven as a real
process with requests built from the committed vectors and with garbage lines."""

import glob
import json
import os
import subprocess
import sys

import pytest

from impl_b import devnet
from impl_b.codec import decode
from tests.adapter_process import AdapterProcess

from .netproc import ROOT

VEC = os.path.join(ROOT, "wire_spec", "vectors")


@pytest.fixture(scope="module")
def ad():
    a = AdapterProcess([sys.executable, "-m", "impl_b.conformance"])
    yield a
    assert a.close() == 0


def cases(area: str, handler: str = "*"):
    return sorted(os.path.dirname(p) for p in glob.glob(os.path.join(VEC, area, handler, "*", "*", "meta.json")))


def rd(case: str, name: str) -> bytes:
    with open(os.path.join(case, name), "rb") as fh:
        return fh.read()


def js(case: str, name: str):
    with open(os.path.join(case, name), encoding="utf-8") as fh:
        return json.load(fh)


def valid(case: str) -> bool:
    return os.path.basename(os.path.dirname(case)) == "valid"


def test_codec_cases_decode_and_reencode(ad):
    cs = cases("codec")
    assert len(cs) > 1000
    for case in cs:
        msg, data = os.path.basename(os.path.dirname(os.path.dirname(case))), rd(case, "encoded.bin")
        got = ad.ok("decode", message=msg, hex=data.hex())
        if valid(case):
            want = js(case, "decoded.json")
            assert (got["verdict"], got["json"], got["hex"]) == ("accept", want, data.hex()), case
            assert ad.ok("encode", message=msg, json=want) == {"id": ad.n, "ok": True, "hex": data.hex()}, case
        else:
            assert got == {"id": ad.n, "ok": True, "verdict": "reject", "reason": js(case, "meta.json")["reason"]}, case


def test_encode_rejects_json_that_is_not_a_rendering(ad):
    bad = [{"kind": "OP_KIND_GET", "key": ""}, {"kind": "OP_KIND_UNSPECIFIED"}, {"kind": 1}, {"key": "AB"},
           {"key": "a"}, {"nope": 1}, [], {"kind": "OP_KIND_PUT", "key": "aa", "value": 5}]
    for j in bad:
        assert ad.ok("encode", message="Operation", json=j)["verdict"] == "reject", j
    for msg, j in [("Input", {}), ("Input", {"client": {}, "bundle": {}}), ("Heartbeat", {"height": 0}),
                   ("Heartbeat", {"height": True}), ("Heartbeat", {"height": 1.0}), ("Heartbeat", {"height": 2**64}),
                   ("SyncRequest", {"max_count": 2**32}), ("ShardResult", {"found": False}), ("Batch", {"inputs": []})]:
        assert ad.ok("encode", message=msg, json=j)["verdict"] == "reject", (msg, j)
    assert ad.ok("encode", message="Heartbeat", json={"height": 2**64 - 1})["hex"] == "18" + "ff" * 9 + "01"
    assert ad.ok("encode", message="Input", json={"client": {}})["hex"] == "0a00"


def test_ed25519_cases(ad):
    cs = cases("crypto", "ed25519_verify")
    assert cs
    for case in cs:
        inp = js(case, "input.json")
        got = ad.ok("ed25519_verify", public=inp["public_key"], message=inp["message"], signature=inp["signature"])
        assert got["verdict"] == ("accept" if valid(case) else "reject"), case


def test_signing_cases(ad):
    cs = cases("signing")
    assert cs
    for case in cs:
        domain, nid = os.path.basename(os.path.dirname(os.path.dirname(case))), js(case, "input.json")["network_id"]
        body, sig = rd(case, "body.bin"), rd(case, "signature.bin")
        sb = ad.ok("signing_bytes", domain=domain, network_id=nid, hex=body.hex())["hex"]
        if valid(case):
            assert sb == rd(case, "signing_bytes.bin").hex(), case
            # the message as sent (signature set) covers the same bytes: the signature field is dropped
            assert ad.ok("signing_bytes", domain=domain, network_id=nid, hex=rd(case, "message.bin").hex())["hex"] == sb
        got = ad.ok("ed25519_verify", public=js(case, "input.json")["public_key"], message=sb, signature=sig.hex())
        assert got["verdict"] == ("accept" if valid(case) else "reject"), case
    assert ad.ok("signing_bytes", domain="prepare", network_id="n", hex="ff")["verdict"] == "reject"
    assert ad.ok("signing_bytes", domain="decision", network_id="n", hex="")["hex"] == (
        b"heraclius/v1/decision\x00\x00\x01n".hex())


def test_merkle_cases(ad):
    for case in cases("merkle", "root"):
        leaves = js(case, "input.json")["leaves"]  # the 0-leaf case included: MTH([]) = SHA-256("")
        assert ad.ok("merkle_root", leaves=leaves)["root"] == js(case, "expected.json")["root"], case
    proofs = cases("merkle", "proof")
    assert proofs
    for case in proofs:
        inp = js(case, "input.json")
        common = dict(index=inp["leaf_index"], count=inp["leaf_count"], proof=inp["proof"], root=inp["root"])
        want = "accept" if valid(case) else "reject"
        assert ad.ok("merkle_verify", leaf_hash=inp["leaf_hash"], **common)["verdict"] == want, case
        if "leaf" in inp:
            assert ad.ok("merkle_verify", leaf=inp["leaf"], **common)["verdict"] == want, case
            assert ad.ok("merkle_verify", leaf=inp["leaf"] + "00", **common)["verdict"] == "reject", case


def test_qc_cases(ad):
    cs = cases("qc")
    assert cs
    for case in cs:
        header = rd(case, "header.bin")
        got = ad.ok("qc_verify", manifest=js(case, "manifest.json"), cluster=decode("DecisionHeader", header).cluster_id,
                    header=header.hex(), qc=rd(case, "qc.bin").hex())
        want = {"verdict": "accept"} if valid(case) else {"verdict": "reject", "reason": js(case, "meta.json")["reason"]}
        assert {k: got[k] for k in want} == want and len(got) == len(want) + 2, (case, got)


def test_compact_cases(ad):
    cs = cases("compact")
    assert cs
    for case in cs:
        ctx = js(case, "context.json")
        got = ad.ok("compact_verify", manifest=js(case, "manifest.json"), source=ctx["source"],
                    destination=ctx["destination"], next_seq=ctx["next_seq"], compact=rd(case, "compact.bin").hex())
        want = {"verdict": "accept"} if valid(case) else {"verdict": "reject", "reason": js(case, "meta.json")["reason"]}
        assert {k: got[k] for k in want} == want and len(got) == len(want) + 2, (case, got)


def test_execution_cases(ad):
    cs = cases("execution")
    assert len(cs) > 20
    for case in cs:
        meta = js(case, "meta.json")
        batches = [rd(case, f"batch_{i:03d}.bin").hex() for i in range(1, meta["steps"] + 1)]
        got = ad.ok("execute", manifest=js(case, "manifest.json"), cluster=meta["cluster"], batches=batches)["decisions"]
        bad = meta.get("invalid_step")
        good = meta["steps"] if bad is None else bad - 1
        want = [rd(case, f"decision_{i:03d}.bin").hex() for i in range(1, good + 1)]
        assert got == (want if bad is None else want + [{"verdict": "reject"}]), case
    # the list ends at the first rejected batch; a batch that does not decode is rejected too
    case = os.path.join(VEC, "execution", "coordinator", "valid", "basic_c0")
    b1 = rd(case, "batch_001.bin").hex()
    got = ad.ok("execute", manifest=js(case, "manifest.json"), cluster="c0", batches=[b1, "ff", b1])["decisions"]
    assert got == [rd(case, "decision_001.bin").hex(), {"verdict": "reject"}]


def test_shard_of_cases(ad):
    cs = cases("shard")
    assert cs
    for case in cs:
        inp = js(case, "input.json")
        doc, _ = devnet.build({"coord": "coordinator", **{s: "shard" for s in inp["shards"]}}, ports=False)
        doc["shard_map"]["shards"] = inp["shards"]
        for key, want in zip(inp["keys"], js(case, "expected.json")["results"], strict=True):
            assert ad.ok("shard_of", manifest=doc, key=key)["shard"] == want["shard"], (case, key)


def test_manifest_cases(ad):
    cs = cases("manifest")
    assert cs
    for case in cs:
        exp = js(case, "meta.json")["expected"]
        got = ad.ok("manifest_validate", manifest=js(case, "manifest.json"))
        want = {"verdict": "accept"} if exp["valid"] else {"verdict": "reject", "stage": exp["stage"], "rule": exp["rule"]}
        assert got == {"id": ad.n, "ok": True, **want}, (case, got)


GARBAGE = [
    b"", b"   ", b"garbage", b"{", b"}", b"[1, 2]", b"42", b"null", b'"str"', b"\xff\xfe\x00", b'{"id": NaN}',
    b'{"id": 1e400, "op": "decode"}', b"[" * 100000 + b"]" * 100000, b'{"a":' * 50000 + b"1" + b"}" * 50000,
    b'{"id": ' + b"9" * 10000 + b"}", b'{"id": 1}', b'{"id": 1, "op": 7}', b'{"id": 1, "op": "nope"}',
    b'{"id": [1, {"x": null}], "op": "decode", "message": "NoSuch", "hex": ""}',
    b'{"id": 1, "op": "decode", "message": "Operation"}', b'{"id": 1, "op": "decode", "message": "Operation", "hex": "0g"}',
    b'{"id": 1, "op": "decode", "message": "Operation", "hex": "ABCD"}',
    b'{"id": 1, "op": "decode", "message": "Operation", "hex": "a"}',
    b'{"id": 1, "op": "decode", "message": "Operation", "hex": "0a 01"}',
    b'{"id": 1, "op": "decode", "message": ["Operation"], "hex": ""}',
    b'{"id": 1, "op": "encode", "message": "Operation"}',
    b'{"id": 1, "op": "ed25519_verify", "public": 5, "message": "", "signature": ""}',
    b'{"id": 1, "op": "signing_bytes", "domain": "nope", "network_id": "n", "hex": ""}',
    b'{"id": 1, "op": "signing_bytes", "domain": "prepare", "network_id": 3, "hex": ""}',
    b'{"id": 1, "op": "merkle_root", "leaves": "00"}', b'{"id": 1, "op": "merkle_root", "leaves": ["0A"]}',
    b'{"id": 1, "op": "merkle_root", "leaves": [], "x": 1' + b"0" * 400 + b'}', b'{"id": -1e999}',
    b'{"id": 1, "op": "merkle_root", "leaves": [0]}',
    b'{"id": 1, "op": "merkle_verify", "leaf": "", "index": true, "count": 1, "proof": [], "root": ""}',
    b'{"id": 1, "op": "merkle_verify", "leaf": "", "index": 0, "count": 1.5, "proof": [], "root": ""}',
    b'{"id": 1, "op": "qc_verify", "manifest": {}, "cluster": "c0", "header": "", "qc": ""}',
    b'{"id": 1, "op": "qc_verify", "manifest": [], "cluster": "c0", "header": "", "qc": ""}',
    b'{"id": 1, "op": "compact_verify", "manifest": {"version": 1}, "source": "c0"}',
    b'{"id": 1, "op": "execute", "manifest": {}, "cluster": "c0", "batches": []}',
    b'{"id": 1, "op": "shard_of", "manifest": null, "key": ""}',
    b'{"id": 1, "op": "manifest_validate"}',
]


def test_garbage_lines_are_answered_and_the_adapter_lives(ad):
    for line in GARBAGE:
        ans = ad.raw(line)
        assert ans["ok"] is False and isinstance(ans["error"], str), (line[:100], ans)
    # huge values inside well-formed requests are results, not crashes
    assert ad.ok("merkle_verify", leaf="", index=2**70, count=2**80, proof=["00" * 32] * 64, root="00" * 32)[
        "verdict"] == "reject"
    assert ad.ok("manifest_validate", manifest="not an object")["verdict"] == "reject"
    assert ad.ok("manifest_validate", manifest=[[[[]]]] * 1000) == {"id": ad.n, "ok": True, "verdict": "reject",
                                                                     "stage": "schema", "rule": None}
    assert ad.ok("decode", message="Batch", hex="0a" * 300000)["verdict"] == "reject"
    assert ad.ok("decode", message="Operation", hex="")["json"] == {}
    # ... and it still answers ordinary requests afterwards
    assert ad.ok("merkle_root", leaves=[])["root"] == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert ad.ok("merkle_root", leaves=[""])["root"] == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    assert ad.proc.poll() is None


def test_answers_in_order_and_exit_zero_at_eof():
    lines = [json.dumps({"id": i, "op": "merkle_root", "leaves": [f"{i:02x}"]}) for i in range(50)] + ["junk"]
    r = subprocess.run([sys.executable, "-m", "impl_b.conformance", "--serve"], cwd=ROOT, capture_output=True,
                       input=("\n".join(lines)).encode(), timeout=30)  # the last line has no newline
    assert r.returncode == 0, r.stderr[-2000:]
    out = [json.loads(x) for x in r.stdout.splitlines()]
    assert [a["id"] for a in out] == list(range(50)) + [None]
    assert all(a["ok"] for a in out[:50]) and out[50]["ok"] is False


def test_over_long_lines_are_skipped_with_one_answer(monkeypatch):
    import io

    from impl_b import difftool
    monkeypatch.setattr(difftool, "MAX_LINE", 64)
    req = json.dumps({"id": 7, "op": "merkle_root", "leaves": ["00"]}).encode()
    out = io.StringIO()
    rc = difftool.serve(io.BytesIO(b"x" * 5000 + b"\n" + req + b"\n" + b"y" * 65), out)
    answers = [json.loads(x) for x in out.getvalue().splitlines()]
    assert rc == 0 and [(a["id"], a["ok"]) for a in answers] == [(None, False), (7, True), (None, False)]


DUPLICATED = [
    b'{"id": 1, "op": "merkle_root", "leaves": [], "leaves": ["00"]}',
    b'{"id": 1, "id": 2, "op": "merkle_root", "leaves": []}',
    b'{"id": 1, "op": "decode", "op": "merkle_root", "leaves": []}',
    b'{"id": {"a": 1, "a": 1}, "op": "merkle_root", "leaves": []}',
    b'{"id": {"a": 1, "\\u0061": 2}, "op": "merkle_root", "leaves": []}',  # equal once unescaped
    b'{"id": 1, "op": "manifest_validate", "manifest": {"x": [{"k": 1, "k": 2}]}}',
    b'{"id": 1, "op": "encode", "message": "Heartbeat", "json": {"height": 1, "height": 1}}',
    b'{"id": 1, "op": "merkle_root", "leaves": [], "unknown": {"deep": [[{"z": 0, "z": 0}]]}}',
]


def test_duplicated_keys_at_any_depth_are_bad_json(ad):
    # SPEC 17.1 (errata DF-3): one error, id null, even where the last value would have been fine
    for line in DUPLICATED:
        ans = ad.raw(line)
        assert ans["id"] is None and ans["ok"] is False and set(ans) == {"id", "ok", "error"}, (line, ans)
    # equal values under distinct keys, and the same key in sibling objects, are not duplicates
    ans = ad.raw(b'{"id": [{"a": 1}, {"a": 1}], "op": "merkle_root", "leaves": [], "A": 1, "a": 1}')
    assert ans["ok"] is True and ans["id"] == [{"a": 1}, {"a": 1}], ans
    assert ad.proc.poll() is None


def test_names_are_case_sensitive_and_unknown_fields_ignored(ad):
    for line in [b'{"id": 1, "OP": "merkle_root", "leaves": []}', b'{"id": 1, "op": "Merkle_Root", "leaves": []}',
                 b'{"id": 1, "op": "merkle_root", "Leaves": []}',
                 b'{"id": 1, "op": "decode", "Message": "Operation", "hex": ""}',
                 b'{"id": 1, "op": "decode", "message": "operation", "hex": ""}']:
        ans = ad.raw(line)
        assert ans["id"] == 1 and ans["ok"] is False, (line, ans)
    empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert ad.ok("merkle_root", leaves=[], Leaves=["zz"], extra={"x": [1, None]}, ID=9)["root"] == empty
    assert ad.ok("decode", message="Operation", hex="", json="ignored", leaves=5)["json"] == {}


def test_id_is_echoed_as_the_same_json_value(ad):
    empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    ids = [0, -7, 2**63, 12345678901234567890, 1.5, -0.25, 1e300, "", "é\u0000\"\\", True, False, None, [],
           {}, [1, "a", None, [2]], {"b": {"c": [1.5, {}]}, "a": None}]
    for rid in ids:
        for ok_line in (True, False):
            req = {"id": rid, "op": "merkle_root", "leaves": [] if ok_line else ["0A"]}
            ans = ad.raw(json.dumps(req).encode())
            assert ans["ok"] is ok_line and ans["id"] == rid and type(ans["id"]) is type(rid), (rid, ans)
            if ok_line:
                assert ans["root"] == empty
    # the number as written: an integer stays an integer however large, exponent forms keep their value
    ans = ad.raw(b'{"id": 1E2, "op": "merkle_root", "leaves": []}')
    assert ans["id"] == 100.0 and ans["ok"] is True
    ans = ad.raw(b'{"id": 340282366920938463463374607431768211456, "op": "nope"}')
    assert ans["id"] == 2**128 and ans["ok"] is False
