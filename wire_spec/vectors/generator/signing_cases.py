"""signing/<domain> vectors (SPEC 6) and crypto/ed25519_verify vectors (SPEC 7)."""

from __future__ import annotations

import json
from pathlib import Path

from . import ed25519_ref
from .codec import encode
from .keys import Signer, sign, signing_bytes
from .samples import build
from .writer import CaseWriter

EXTERNAL = Path(__file__).resolve().parents[1] / "external"

# domain -> (message type, signature field, sample case name in samples.build())
DOMAIN_MESSAGES = {
    "client-request": ("ClientRequest", "signature", "put_signed"),
    "client-bundle": ("RequestBundle", "signature", "three_signed"),
    "decision": ("DecisionHeader", None, "height_7"),
    "proposal": ("Proposal", "signature", "signed"),
    "prepare": ("Prepare", "signature", "signed"),
    "view-change": ("ViewChange", "signature", "signed"),
    "view-data": ("ViewData", "signature", "prepared"),
    "new-view": ("NewView", "signature", "signed"),
}
NETWORKS = [("typical", "vectors-net"), ("short_network_id", "x"), ("long_network_id", "n" * 32 + "-" * 31 + "9")]


def generate(w: CaseWriter) -> None:
    samples = {m: {name: v for name, _, v in cases} for m, cases in build().items()}
    other = Signer("signing/other-signer")
    for domain, (message, sig_field, sample) in DOMAIN_MESSAGES.items():
        signer = Signer(f"signing/{domain}")
        value = dict(samples[message][sample])
        if sig_field:
            value.pop(sig_field, None)
        body = encode(message, value)
        for case, net in NETWORKS:
            sb = signing_bytes(domain, net, body)
            sig = sign(signer.secret, sb)
            assert ed25519_ref.verify(signer.public, sb, sig)[0]
            full = encode(message, dict(value, **{sig_field: sig})) if sig_field else body
            w.case("signing", domain, True, case, {
                "description": f"{message} signed in domain {domain!r}, network id {net!r}",
                "domain": domain, "message_type": message, "signature_field": sig_field,
                "verdict": "signature verifies"},
                {"input.json": {"network_id": net, "signer_seed": signer.secret.hex(),
                                "public_key": signer.public.hex()},
                 "message.bin": full, "body.bin": body, "signing_bytes.bin": sb, "signature.bin": sig})
        # Signatures that must not verify for this domain / network / body.
        net = "vectors-net"
        wrong = [
            ("other_domain", "signature made for the same body in another domain",
             sign(signer.secret, signing_bytes("prepare" if domain != "prepare" else "proposal", net, body))),
            ("other_network", "signature made for network 'vectors-net2'",
             sign(signer.secret, signing_bytes(domain, "vectors-net2", body))),
            ("other_signer", "signature by another key over the right signing bytes",
             sign(other.secret, signing_bytes(domain, net, body))),
            ("no_separator", "signature over the signing bytes without the 0x00 separator",
             sign(signer.secret, b"heraclius/v1/" + domain.encode() + len(net).to_bytes(2, "big")
                  + net.encode() + body)),
        ]
        if sig_field:
            with_sig = encode(message, dict(value, **{sig_field: bytes(64)}))
            wrong.append(("body_with_signature_field", "signature over the body with a (zero) signature field "
                          "present instead of absent", sign(signer.secret, signing_bytes(domain, net, with_sig))))
        for case, description, sig in wrong:
            assert not ed25519_ref.verify(signer.public, signing_bytes(domain, net, body), sig)[0]
            w.case("signing", domain, False, case, {
                "description": description, "domain": domain, "message_type": message,
                "signature_field": sig_field, "verdict": "signature does not verify"},
                {"input.json": {"network_id": net, "public_key": signer.public.hex()},
                 "body.bin": body, "signature.bin": sig})


def _verify_case(w: CaseWriter, name: str, description: str, public: bytes, message: bytes, sig: bytes,
                 expect: bool | None = None) -> None:
    accepted, reason = ed25519_ref.verify(public, message, sig)
    if expect is not None and accepted != expect:
        raise AssertionError(f"ed25519 case {name}: reference says {reason}")
    w.case("crypto", "ed25519_verify", accepted, name,
           {"description": description, "verdict": "accept" if accepted else "reject", "spec_check": reason},
           {"input.json": {"public_key": public.hex(), "message": message.hex(), "signature": sig.hex()}})


def generate_crypto(w: CaseWriter) -> None:
    cases = json.loads((EXTERNAL / "ed25519" / "speccheck_cases.json").read_text())
    for i, c in enumerate(cases):
        _verify_case(w, f"speccheck_{i:02d}", f"ed25519-speccheck case {i} (SPEC 7: only case 3 accepted)",
                     bytes.fromhex(c["pub_key"]), bytes.fromhex(c["message"]), bytes.fromhex(c["signature"]),
                     expect=(i == 3))
    good = Signer("crypto/ed25519-good")
    msg = b"heraclius ed25519 vector"
    sig = sign(good.secret, msg)
    _verify_case(w, "good", "a valid RFC 8032 signature", good.public, msg, sig, True)
    _verify_case(w, "good_empty_message", "valid signature of the empty message", good.public, b"",
                 sign(good.secret, b""), True)
    _verify_case(w, "wrong_message", "valid signature, one message byte changed", good.public, msg[:-1] + b"X",
                 sig, False)
    _verify_case(w, "flipped_signature_bit", "bit 0 of R flipped", good.public, msg,
                 bytes([sig[0] ^ 1]) + sig[1:], False)
    r, s = sig[:32], int.from_bytes(sig[32:], "little")
    for name, bad_s in [("s_plus_l", s + ed25519_ref.L), ("s_equals_l", ed25519_ref.L), ("s_max", 2**256 - 1)]:
        _verify_case(w, name, f"S >= L ({name}) (SPEC 7 check 1)", good.public, msg, r + bad_s.to_bytes(32, "little"),
                     False)
    _verify_case(w, "r_bit255_set", "valid signature with bit 255 of R flipped (R no longer matches)",
                 good.public, msg, r[:31] + bytes([r[31] ^ 0x80]) + sig[32:], False)
    for k, enc in enumerate(ed25519_ref.BLOCKLIST):
        _verify_case(w, f"small_order_a_{k}", f"blocklist entry {k} as public key A (SPEC 7 check 4)",
                     enc, msg, sig, False)
        _verify_case(w, f"small_order_r_{k}", f"blocklist entry {k} as R, S = 0 (SPEC 7 check 2)",
                     good.public, msg, enc + bytes(32), False)
        high = enc[:31] + bytes([enc[31] | 0x80])
        _verify_case(w, f"small_order_r_{k}_bit255", f"blocklist entry {k} with bit 255 set as R (check 2)",
                     good.public, msg, high + sig[32:], False)
    for k, y in enumerate([ed25519_ref.P + 2, ed25519_ref.P + 3, 2**255 - 1]):
        _verify_case(w, f"noncanonical_a_{k}", f"public key A with y = {y - ed25519_ref.P} + p (>= p, check 3)",
                     y.to_bytes(32, "little"), msg, sig, False)
    y = 2
    while ed25519_ref.decode_point(y.to_bytes(32, "little")) is not None:
        y += 1
    _verify_case(w, "a_not_on_curve", f"public key A with y = {y}, which has no x (SPEC 7 check 5)",
                 y.to_bytes(32, "little"), msg, sig, False)


SIGNING_DOC = """# Format: signing/{domain}

Generated by `wire_spec/vectors/generator` (signing_cases.py); do not edit by hand.

SPEC 6 signing bytes and RFC 8032 signatures for domain `{domain}` (message `{message}`{sigdesc}).

## Files

| file | in | content |
|---|---|---|
| `meta.json` | all | `description`, `domain`, `message_type`, `signature_field` (null for `decision`), `verdict` |
| `input.json` | all | `network_id` (string), `public_key` (hex); valid cases also `signer_seed` (hex, the 32-byte Ed25519 secret seed) |
| `message.bin` | valid | the signed message as sent on the wire{msgdesc} |
| `body.bin` | all | the signed body: `message.bin` decoded, {bodydesc}, re-encoded canonically |
| `signing_bytes.bin` | valid | `"heraclius/v1/" || domain || 0x00 || u16be(len(network_id)) || network_id || body` |
| `signature.bin` | all | 64-byte signature |

## Runner

- **valid**: (1) decode `message.bin` as `{message}`, {bodydesc}, encode: must equal `body.bin`;
  (2) compute the signing bytes from `domain`, `network_id` and `body.bin`: must equal
  `signing_bytes.bin`; (3) sign them with the key from `signer_seed`: must equal `signature.bin`
  (and its public key must equal `public_key`){sigcheck}; (4) verify `signature.bin` under
  `public_key` with the SPEC 7 rule: must accept. Pass = all hold.
- **invalid**: compute the signing bytes of `body.bin` for `domain` and `network_id` and verify
  `signature.bin` under `public_key`: must reject. Pass = rejected.
"""


def write_docs(formats_dir: Path) -> None:
    for old in formats_dir.glob("signing_*.md"):
        old.unlink()
    for domain, (message, sig_field, _) in DOMAIN_MESSAGES.items():
        if sig_field:
            kw = {"sigdesc": f", signature in field `{sig_field}`", "msgdesc": f", with `{sig_field}` set",
                  "bodydesc": f"with field `{sig_field}` removed (absent)",
                  "sigcheck": f"; the `{sig_field}` field of `message.bin` must equal `signature.bin`"}
        else:
            kw = {"sigdesc": "; the body is the whole canonical header", "msgdesc": " (the DecisionHeader)",
                  "bodydesc": "unchanged", "sigcheck": ""}
        text = SIGNING_DOC.format(domain=domain, message=message, **kw)
        (formats_dir / f"signing_{domain}.md").write_text(text, encoding="utf-8")
