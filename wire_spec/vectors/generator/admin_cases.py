"""admin/request vectors (SPEC 15.1): raw admin-port requests and the node's first answer.

Each expected answer is written here by hand from the table and must agree with the reference parser
`admin_check.py` (a second reading of the same table); the generator stops when they differ.
"""

from __future__ import annotations

from .admin_check import answer
from .writer import CaseWriter

DECIDED_HEIGHT = 5
HOST = [(b"Host", b"127.0.0.1:7002")]


def request(line: bytes, headers: list[tuple[bytes, bytes]] | None = None, eol: bytes = b"\r\n",
            body: bytes = b"") -> bytes:
    hs = HOST if headers is None else headers
    return line + eol + b"".join(name + b": " + value + eol for name, value in hs) + eol + body


def get(target: bytes, method: bytes = b"GET", version: bytes = b"HTTP/1.1", **kw) -> bytes:
    return request(method + b" " + target + b" " + version, **kw)


def _cases() -> list[tuple[str, str, bytes, int, bool]]:
    """(name, description, request bytes, expected status, expected close)."""
    pad = [(b"X-Pad-%d" % i, b"p" * 5000) for i in range(3)]
    many = [(b"X-H%d" % i, b"v") for i in range(100)]
    return [
        # 200s
        ("health", "GET /health", get(b"/health"), 200, False),
        ("status", "GET /status", get(b"/status"), 200, False),
        ("metrics", "GET /metrics", get(b"/metrics"), 200, False),
        ("head_status", "HEAD /status: the status and headers of GET, no body", get(b"/status", b"HEAD"), 200, False),
        ("head_log_3", "HEAD /log/3 (decided): 200, no body", get(b"/log/3", b"HEAD"), 200, False),
        ("status_query_ignored", "GET /status?x=1: the query string is ignored", get(b"/status?x=1"), 200, False),
        ("health_empty_query", "GET /health? (empty query string)", get(b"/health?"), 200, False),
        ("log_3_query_ignored", "GET /log/3?x=1: the path is /log/3", get(b"/log/3?x=1"), 200, False),
        ("log_1", "GET /log/1: the first decided height", get(b"/log/1"), 200, False),
        ("log_3", "GET /log/3 (decided): 200 with the Decision", get(b"/log/3"), 200, False),
        ("log_5", "GET /log/5: the last decided height", get(b"/log/5"), 200, False),
        ("lf_only_line_endings", "GET /status with LF-only line endings (request line and headers)",
         get(b"/status", eol=b"\n", headers=HOST + [(b"Accept", b"*/*")]), 200, False),
        ("http10_closes", "GET /status HTTP/1.0: answered, then the node closes", get(b"/status", version=b"HTTP/1.0"),
         200, True),
        ("connection_close", "GET /status with 'Connection: close': answered, then the node closes",
         get(b"/status", headers=HOST + [(b"Connection", b"close")]), 200, True),
        ("no_host_header", "GET /status HTTP/1.1 without a Host header (SPEC 15.1 does not require one)",
         get(b"/status", headers=[]), 200, False),
        ("content_length_0", "GET /status with 'Content-Length: 0'", get(b"/status", headers=HOST + [
            (b"Content-Length", b"0")]), 200, False),
        ("header_lines_100", "GET /status with 100 header lines (the limit)", get(b"/status", headers=many), 200,
         False),
        ("header_line_10000_bytes", "GET /status with one 10000-byte header line (headers are limited in total, "
         "16384 bytes, not per line)", get(b"/status", headers=[(b"X-Pad", b"p" * 9993)]), 200, False),
        ("headers_total_15000_bytes", "GET /status with three 5000-byte header values (about 15 kB in all)",
         get(b"/status", headers=pad), 200, False),
        ("request_line_5005_bytes", "GET /health?q=<4982 bytes> HTTP/1.1: a 5005-byte request line, under 8192",
         get(b"/health?q=" + b"x" * 4982), 200, False),
        # 404s
        ("log_6", "GET /log/6: not decided (decided_height 5)", get(b"/log/6"), 404, False),
        ("log_0", "GET /log/0: never decided", get(b"/log/0"), 404, False),
        ("log_u64_max", "GET /log/18446744073709551615 (2^64 - 1, a valid height, not decided)",
         get(b"/log/18446744073709551615"), 404, False),
        ("log_without_slash", "GET /log: not a /log/<h> path, so 'any other path'", get(b"/log"), 404, False),
        ("nope", "GET /nope", get(b"/nope"), 404, False),
        ("status_trailing_slash", "GET /status/ is not /status", get(b"/status/"), 404, False),
        ("status_uppercase", "GET /STATUS: paths are case-sensitive", get(b"/STATUS"), 404, False),
        ("head_nope", "HEAD /nope", get(b"/nope", b"HEAD"), 404, False),
        # 400 on /log/<h>
        ("log_u64_max_plus_1", "GET /log/18446744073709551616 (2^64: over 2^64 - 1)",
         get(b"/log/18446744073709551616"), 400, False),
        ("log_21_digits", "GET /log/999999999999999999999 (21 digits)", get(b"/log/999999999999999999999"), 400,
         False),
        ("log_5000_digits", "GET /log/<5000 digits> (request line under 8192 bytes)", get(b"/log/" + b"7" * 5000),
         400, False),
        ("log_abc", "GET /log/abc", get(b"/log/abc"), 400, False),
        ("log_minus_1", "GET /log/-1", get(b"/log/-1"), 400, False),
        ("log_plus_1", "GET /log/+1", get(b"/log/+1"), 400, False),
        ("log_leading_zero", "GET /log/01: a leading zero", get(b"/log/01"), 400, False),
        ("log_00", "GET /log/00: a leading zero", get(b"/log/00"), 400, False),
        ("log_empty_height", "GET /log/ (empty height)", get(b"/log/"), 400, False),
        ("log_3_slash_x", "GET /log/3/x: a further '/'", get(b"/log/3/x"), 400, False),
        ("log_3_trailing_slash", "GET /log/3/: a further '/'", get(b"/log/3/"), 400, False),
        ("log_superscript_two_percent_encoded", "GET /log/%C2%B2 ('²' percent-encoded: not ASCII digits, "
         "whether or not the node decodes it)", get(b"/log/%C2%B2"), 400, False),
        ("log_superscript_two_utf8", "GET /log/² with '²' as raw UTF-8 bytes c2 b2: the request line is not "
         "ASCII, so the request-line row answers 400 and closes (erratum V-H1)",
         get("/log/\u00b2".encode()), 400, True),
        # 405
        ("post_status", "POST /status: 405 with Allow: GET, HEAD", get(b"/status", b"POST"), 405, False),
        ("put_status", "PUT /status", get(b"/status", b"PUT"), 405, False),
        ("method_lowercase_get", "get /status: methods are case-sensitive, so not GET", get(b"/status", b"get"),
         405, False),
        ("post_target_without_slash", "POST status: the method row comes before the target row",
         get(b"status", b"POST"), 405, False),
        # 400 target
        ("target_without_slash", "GET status HTTP/1.1: target not starting with '/'", get(b"status"), 400, False),
        ("target_absolute_form", "GET http://127.0.0.1:7002/status: target not starting with '/'",
         get(b"http://127.0.0.1:7002/status"), 400, False),
        # then close: request line, headers, body
        ("request_line_over_8192_bytes", "a request line of 9014 bytes (GET /<9000 bytes> HTTP/1.1): no complete "
         "request line within 8192 bytes", get(b"/" + b"a" * 9000), 414, True),
        ("request_line_two_parts", "GET /status (no version)", request(b"GET /status", HOST), 400, True),
        ("request_line_four_parts", "GET /status HTTP/1.1 extra", request(b"GET /status HTTP/1.1 extra"), 400, True),
        ("request_line_double_space", "GET  /status HTTP/1.1 (two spaces)", request(b"GET  /status HTTP/1.1"), 400,
         True),
        ("request_line_trailing_space", "'GET /status HTTP/1.1 ' (a trailing space)",
         request(b"GET /status HTTP/1.1 "), 400, True),
        ("request_line_tab", "GET<TAB>/status HTTP/1.1", request(b"GET\t/status HTTP/1.1"), 400, True),
        ("request_line_http_2_0", "GET /status HTTP/2.0", get(b"/status", version=b"HTTP/2.0"), 400, True),
        ("request_line_lowercase_version", "GET /status http/1.1", get(b"/status", version=b"http/1.1"), 400, True),
        ("headers_over_16384_bytes", "four 5000-byte header values: headers over 16384 bytes in all",
         get(b"/status", headers=pad + [(b"X-Pad-3", b"p" * 5000)]), 431, True),
        ("header_lines_101", "101 header lines", get(b"/status", headers=many + [(b"X-H100", b"v")]), 431, True),
        ("header_line_without_colon", "a header line without ':'",
         b"GET /status HTTP/1.1\r\nHost: 127.0.0.1:7002\r\nBad header line\r\n\r\n",
         400, True),
        ("content_length_5", "GET /status with 'Content-Length: 5' and a 5-byte body",
         get(b"/status", headers=HOST + [(b"Content-Length", b"5")], body=b"hello"), 400, True),
        ("transfer_encoding_chunked", "GET /status with 'Transfer-Encoding: chunked' (and an empty chunked body)",
         get(b"/status", headers=HOST + [(b"Transfer-Encoding", b"chunked")], body=b"0\r\n\r\n"), 400, True),
        ("transfer_encoding_lowercase_name", "GET /status with 'transfer-encoding: identity': header names are "
         "case-insensitive, any Transfer-Encoding is refused",
         get(b"/status", headers=HOST + [(b"transfer-encoding", b"identity")]), 400, True),
    ]


def generate(w: CaseWriter) -> None:
    for name, description, data, status, close in _cases():
        ref = answer(data, DECIDED_HEIGHT)
        assert (ref.status, ref.close) == (status, close), (name, ref)
        if not close:  # keep-alive cases hold exactly one request, so a follow-up request can be sent
            assert ref.consumed == len(data), name
        assert len(data.split(b"\n", 1)[0]) < 8192 or status == 414, name
        meta = {"description": description, "verdict": "accept" if 200 <= status < 300 else "reject",
                "decided_height": DECIDED_HEIGHT, "status": status, "close": close, "body": ref.body,
                "spec_row": ref.row}
        w.case("admin", "request", 200 <= status < 300, name, meta, {"request.bin": data})
