"""Pure-Python reference of the SPEC 7 Ed25519 verification rule ("libsodium-strict").

Slow but exact; used only to compute the verdicts of the crypto vectors.
"""

from __future__ import annotations

import hashlib

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = (-121665 * pow(121666, P - 2, P)) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)

BLOCKLIST = [bytes.fromhex(h) for h in (
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0100000000000000000000000000000000000000000000000000000000000000",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
)]


def _add(p1, p2):
    x1, y1, z1, t1 = p1
    x2, y2, z2, t2 = p2
    a = (y1 - x1) * (y2 - x2) % P
    b = (y1 + x1) * (y2 + x2) % P
    c = 2 * t1 * t2 * D % P
    d = 2 * z1 * z2 % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _mul(s: int, pt):
    q = (0, 1, 1, 0)
    while s:
        if s & 1:
            q = _add(q, pt)
        pt = _add(pt, pt)
        s >>= 1
    return q


def _encode(pt) -> bytes:
    x, y, z, _ = pt
    zi = pow(z, P - 2, P)
    x, y = x * zi % P, y * zi % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def decode_point(s: bytes):
    """RFC 8032 5.1.3 decoding; None when `s` is not a point (non-canonical y is refused)."""
    y = int.from_bytes(s, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    if y >= P:
        return None
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P) % P
    if x2 == 0:
        if sign:
            return None
        return (0, y, 1, 0)
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P:
        return None
    if (x & 1) != sign:
        x = P - x
    return (x, y, 1, x * y % P)


G = decode_point((4 * pow(5, P - 2, P) % P).to_bytes(32, "little"))


def _cleared(b: bytes) -> bytes:
    return b[:31] + bytes([b[31] & 0x7F])


def verify(public: bytes, message: bytes, signature: bytes) -> tuple[bool, str]:
    """(accepted, reason): reason names the first SPEC 7 check that fails, or 'ok'."""
    if len(public) != 32 or len(signature) != 64:
        return False, "length"
    r, s = signature[:32], int.from_bytes(signature[32:], "little")
    if s >= L:
        return False, "7.1 S >= L"
    if _cleared(r) in BLOCKLIST:
        return False, "7.2 small-order R"
    if int.from_bytes(_cleared(public), "little") >= P:
        return False, "7.3 non-canonical A"
    if _cleared(public) in BLOCKLIST:
        return False, "7.4 small-order A"
    a = decode_point(public)
    if a is None:
        return False, "7.5 A not on the curve"
    k = int.from_bytes(hashlib.sha512(r + public + message).digest(), "little") % L
    neg_a = ((P - a[0]) % P, a[1], a[2], (P - a[3]) % P)
    check = _add(_mul(s, G), _mul(k, neg_a))
    if _encode(check) != r:
        return False, "7.6 equation"
    return True, "ok"
