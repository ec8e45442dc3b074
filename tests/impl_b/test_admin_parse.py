"""SPEC 15.1 admin request table, one case per row, on impl_b's pure parser."""

import pytest

from impl_b.adminparse import parse


def _v(req: bytes):
    v = parse(req)
    assert v is not None, req
    return v


@pytest.mark.parametrize("req,status,close", [
    (b"GET /health HTTP/1.1\r\n\r\n", 200, False),
    (b"GET /status HTTP/1.1\n\n", 200, False),
    (b"HEAD /metrics HTTP/1.1\r\n\r\n", 200, False),
    (b"GET /health HTTP/1.0\r\n\r\n", 200, True),
    (b"GET /health HTTP/1.1\r\nConnection: close\r\n\r\n", 200, True),
    (b"GET /status?x=1&y HTTP/1.1\r\n\r\n", 200, False),
    (b"GET  /health HTTP/1.1\r\n\r\n", 400, True),
    (b"GET /health HTTP/2.0\r\n\r\n", 400, True),
    (b"GET /health\r\n\r\n", 400, True),
    (b"GET /h\xc3\xa9 HTTP/1.1\r\n\r\n", 400, True),
    (b"GET /health HTTP/1.1\r\nNoColon\r\n\r\n", 400, True),
    (b"GET /health HTTP/1.1\r\nContent-Length: 5\r\n\r\n", 400, True),
    (b"GET /health HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 200, False),
    (b"GET /health HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 400, True),
    (b"POST /health HTTP/1.1\r\n\r\n", 405, False),
    (b"GET health HTTP/1.1\r\n\r\n", 400, False),
    (b"GET /nope HTTP/1.1\r\n\r\n", 404, False),
    (b"GET /log/ HTTP/1.1\r\n\r\n", 400, False),
    (b"GET /log/01 HTTP/1.1\r\n\r\n", 400, False),
    (b"GET /log/+1 HTTP/1.1\r\n\r\n", 400, False),
    (b"GET /log/-1 HTTP/1.1\r\n\r\n", 400, False),
    (b"GET /log/1/2 HTTP/1.1\r\n\r\n", 400, False),
    ("GET /log/\u00b2 HTTP/1.1\r\n\r\n".encode(), 400, True),  # non-ASCII request line
    (b"GET /log/%C2%B2 HTTP/1.1\r\n\r\n", 400, False),
    (b"GET /log/18446744073709551616 HTTP/1.1\r\n\r\n", 400, False),
    (b"GET /log/" + b"9" * 5000 + b" HTTP/1.1\r\n\r\n", 400, False),
])
def test_table_rows(req, status, close):
    v = _v(req)
    assert (v.status, v.close) == (status, close)
    assert v.consumed == len(req) or status in (414, 431) or close


@pytest.mark.parametrize("h,want", [(b"0", 0), (b"1", 1), (b"18446744073709551615", 2**64 - 1)])
def test_log_heights(h, want):
    v = _v(b"GET /log/" + h + b" HTTP/1.1\r\n\r\n")
    assert (v.status, v.route, v.height) == (200, "log", want)


def test_sizes_and_incomplete_requests():
    assert parse(b"GET /health HTTP/1.1\r\n") is None  # headers not ended yet
    assert parse(b"GET /hea") is None
    assert _v(b"G" * 8192).status == 414
    assert _v(b"GET /" + b"a" * 8200 + b" HTTP/1.1\r\n\r\n").status == 414
    many = b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 101 + b"\r\n"
    assert _v(many).status == 431
    big = b"GET / HTTP/1.1\r\n" + b"X: " + b"y" * 16400 + b"\r\n\r\n"
    assert _v(big).status == 431
    assert _v(b"GET / HTTP/1.1\r\nX: " + b"y" * 16400).status == 431  # over the limit before it ends
    assert parse(b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 100 + b"\r\n").status == 404


def test_405_keeps_the_connection_and_pipelined_requests_parse_one_at_a_time():
    two = b"GET /health HTTP/1.1\r\n\r\nGET /status HTTP/1.1\r\n\r\n"
    v = _v(two)
    assert v.route == "health" and two[v.consumed:] == b"GET /status HTTP/1.1\r\n\r\n"
