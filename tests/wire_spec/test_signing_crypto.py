"""signing and crypto vectors, checked with libsodium (PyNaCl), whose verify is SPEC 7's rule."""

from __future__ import annotations

import json
import struct

import pytest
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from tests.wire_spec.conftest import VECTORS
from wire_spec.vectors.generator import codec, ed25519_ref


def _sodium_verify(public: bytes, message: bytes, sig: bytes) -> bool:
    try:
        VerifyKey(public).verify(message, sig)
        return True
    except (BadSignatureError, ValueError, Exception):  # noqa: BLE001 - any refusal is a reject
        return False


def _ids(p):
    return "/".join(p.parts[-3:])


SIGNING_VALID = sorted(VECTORS.glob("signing/*/valid/*"))
SIGNING_INVALID = sorted(VECTORS.glob("signing/*/invalid/*"))
VERIFY = sorted(VECTORS.glob("crypto/ed25519_verify/*/*"))


def test_every_domain_present():
    domains = {p.name for p in (VECTORS / "signing").iterdir()}
    assert domains == {"client-request", "client-bundle", "decision", "proposal", "prepare", "view-change", "view-data", "new-view"}


@pytest.mark.parametrize("case", SIGNING_VALID, ids=_ids)
def test_signing_valid(case):
    meta = json.loads((case / "meta.json").read_text())
    inp = json.loads((case / "input.json").read_text())
    body = (case / "body.bin").read_bytes()
    message = codec.decode(meta["message_type"], (case / "message.bin").read_bytes())
    sig = (case / "signature.bin").read_bytes()
    if meta["signature_field"]:
        assert message.pop(meta["signature_field"]) == sig
    assert codec.encode(meta["message_type"], message) == body
    net = inp["network_id"].encode()
    expected_sb = b"heraclius/v1/" + case.parts[-3].encode() + b"\x00" + struct.pack(">H", len(net)) + net + body
    assert (case / "signing_bytes.bin").read_bytes() == expected_sb
    key = SigningKey(bytes.fromhex(inp["signer_seed"]))
    assert bytes(key.verify_key) == bytes.fromhex(inp["public_key"])
    assert key.sign(expected_sb).signature == sig
    assert _sodium_verify(bytes.fromhex(inp["public_key"]), expected_sb, sig)


@pytest.mark.parametrize("case", SIGNING_INVALID, ids=_ids)
def test_signing_invalid(case):
    inp = json.loads((case / "input.json").read_text())
    body = (case / "body.bin").read_bytes()
    net = inp["network_id"].encode()
    sb = b"heraclius/v1/" + case.parts[-3].encode() + b"\x00" + struct.pack(">H", len(net)) + net + body
    assert not _sodium_verify(bytes.fromhex(inp["public_key"]), sb, (case / "signature.bin").read_bytes())


@pytest.mark.parametrize("case", VERIFY, ids=_ids)
def test_ed25519_verdict_matches_libsodium(case):
    meta = json.loads((case / "meta.json").read_text())
    inp = {k: bytes.fromhex(v) for k, v in json.loads((case / "input.json").read_text()).items()}
    expected = meta["verdict"] == "accept"
    assert (case.parts[-2] == "valid") == expected
    assert _sodium_verify(inp["public_key"], inp["message"], inp["signature"]) == expected


def test_speccheck_verdicts_are_spec7():
    for i in range(12):
        folder = "valid" if i == 3 else "invalid"
        assert (VECTORS / "crypto/ed25519_verify" / folder / f"speccheck_{i:02d}" / "meta.json").is_file()


def test_reference_verifier_matches_wycheproof():
    data = json.loads((VECTORS / "external/wycheproof/ed25519_test.json").read_text())
    checked = 0
    for group in data["testGroups"]:
        public = bytes.fromhex(group["publicKey"]["pk"])
        for t in group["tests"]:
            ok, _ = ed25519_ref.verify(public, bytes.fromhex(t["msg"]), bytes.fromhex(t["sig"]))
            assert ok == (t["result"] == "valid"), t["tcId"]
            checked += 1
    assert checked > 100
