#!/usr/bin/env python3
"""saas-http over real HTTP, against the stand-in router of test/relay/stub.sql.

Run by test/suites/60_relay.sh, which creates the relay_test database and exports:
  RELAY_BIN       the relay to test (the AddressSanitizer build)
  RELAY_WORK      a folder for logs and the second cluster
  RELAY_DSN       conninfo of relay_test as the relay's login role
  RELAY_STUB_SQL  the stub, loaded again into the second cluster
  RELAY_API_MD    the API contract (checked against /openapi.json when present)
  RELAY_PG_BINDIR PostgreSQL's programs
  PGHOST, PGPORT  the main cluster (admin queries as postgres)

Each case prints "ok - name" or "not ok - name: why"; the last line is "passed=N failed=M".
The settings are harness.py; the relay process and the raw-socket helpers are the suites'
library, test/suites/lib/saas_test.py (on PYTHONPATH); the cases of the limits and deadlines are
test_limits.py, imported below.  Python standard library only.
"""

import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid

import harness  # noqa: E402
from harness import BIN, DSN, PG_BINDIR, PGHOST, PGPORT, STUB_SQL, WORK, API_MD, psql  # noqa: E402
from saas_test import (ALL_RELAYS, CASES, UUID7, Relay, as_pg, case, check, error_body_ok,  # noqa: E402
                       free_port, parse_response, run_cases, sanitizer_reports)

# The paths of API.md's HTTP API table, as (method, OpenAPI path).  Also parsed from API.md
# itself when it is reachable, so that a path added there and not here is caught.
API_PATHS = [
    ("post", "/auth/register"), ("post", "/auth/login"),
    ("get", "/organizations"), ("post", "/organizations"),
    ("get", "/organizations/{id}"), ("put", "/organizations/{id}"), ("delete", "/organizations/{id}"),
    ("get", "/users"), ("post", "/users"),
    ("get", "/users/{id}"), ("put", "/users/{id}"), ("delete", "/users/{id}"),
    ("get", "/audit-logs"),
    ("post", "/webhooks/user-service"), ("post", "/webhooks/payment-service"),
    ("post", "/webhooks/communication-service"),
    ("get", "/integrations/status"), ("get", "/jobs"), ("post", "/jobs/{id}/retry"),
    ("get", "/healthz"),
]



# ---------------------------------------------------------------------------------------------
# the cases: the main relay R serves most of them

R = None


@case
def help_lists_flags_and_environment():
    r = subprocess.run([BIN, "--help"], capture_output=True, text=True, timeout=10)
    check(r.returncode == 0, "--help exited %d" % r.returncode)
    for word in ("--listen", "--dsn", "--pool", "--max-body", "--timeout-ms", "SAAS_HTTP_LISTEN",
                 "SAAS_HTTP_DSN", "SAAS_HTTP_POOL", "SAAS_HTTP_MAX_BODY", "127.0.0.1:8080",
                 "--header-timeout", "--body-timeout", "--max-connections-per-client",
                 "SAAS_HTTP_HEADER_TIMEOUT", "SAAS_HTTP_BODY_TIMEOUT",
                 "SAAS_HTTP_MAX_CONNECTIONS_PER_CLIENT"):
        check(word in r.stdout, "--help does not mention " + word)


@case
def invalid_option_values_are_refused_at_startup():
    for args in (["--pool", "abc"], ["--pool", "0"], ["--max-body", "-5"], ["--listen", "nocolon"],
                 ["--no-such-flag"], ["--header-timeout", "0"], ["--body-timeout", "1s"],
                 ["--max-connections-per-client", "0"]):
        r = subprocess.run([BIN] + args, capture_output=True, text=True, timeout=10)
        check(r.returncode == 2, "%s exited %d, expected 2" % (args, r.returncode))


@case
def forwards_method_path_query_headers_and_body():
    body = '{"email": "a@example.com", "n": [1, 2]}'
    status, h, doc = R.json("POST", "/users?limit=50&cursor=abc%2Fdef&q=%C3%A9",
                            {"X-Custom-Thing": "Some Value", "Authorization": "Bearer t.k.n"}, body)
    check(status == 200 and doc is not None, "status %d" % status)
    check(doc["method"] == "POST", "method %r" % doc["method"])
    check(doc["path"] == "/users?limit=50&cursor=abc%2Fdef&q=%C3%A9", "path %r" % doc["path"])
    check(doc["body"] == body, "body %r" % doc["body"])
    hs = doc["headers"]
    check(all(k == k.lower() for k in hs), "header names not lower-cased: %r" % list(hs))
    check(hs.get("x-custom-thing") == "Some Value", "x-custom-thing %r" % hs.get("x-custom-thing"))
    check(hs.get("authorization") == "Bearer t.k.n", "authorization not forwarded")
    check(hs.get("content-type") == "application/json", "content-type not forwarded")


@case
def forwards_every_api_method():
    for method in ("GET", "PUT", "PATCH", "DELETE", "OPTIONS"):
        body = "{}" if method in ("PUT", "PATCH") else None
        status, _, doc = R.json(method, "/users/0190a5b4-7c3e-7000-8000-000000000001", body=body)
        check(status == 200 and doc["method"] == method, "%s forwarded as %r" % (method, doc and doc["method"]))


@case
def head_is_answered_like_get_without_a_body():
    status, h, data = R.request("HEAD", "/healthz")
    check(status == 200, "HEAD status %d" % status)
    check(data == b"", "HEAD answered with a body")
    check(int(h.get("content-length", "0")) > 0, "HEAD lacks the GET answer's Content-Length")
    last = psql("SELECT method FROM saas.stub_calls WHERE path = '/healthz' ORDER BY id DESC LIMIT 1")
    check(last == "GET", "the database saw %r for HEAD" % last)


@case
def client_address_comes_from_the_socket_not_from_headers():
    status, _, doc = R.json("GET", "/healthz", {"X-Client-Addr": "6.6.6.6", "X-Forwarded-For": "7.7.7.7"})
    check(status == 200, "status %d" % status)
    check(doc["headers"]["x-client-addr"] == "127.0.0.1", "x-client-addr %r" % doc["headers"]["x-client-addr"])


@case
def sane_client_request_id_is_kept_and_echoed():
    for rid in ("abc-123_x.y:z", "A" * 128, "7"):
        status, h, doc = R.json("GET", "/healthz", {"X-Request-Id": rid})
        check(status == 200, "status %d" % status)
        check(doc["headers"]["x-request-id"] == rid, "forwarded id %r" % doc["headers"]["x-request-id"])
        check(h.get("x-request-id") == rid, "response X-Request-Id %r" % h.get("x-request-id"))


@case
def insane_request_ids_are_replaced_by_generated_ones():
    for rid in ("", "has space", "A" * 129, "<script>", "a/b", "semi;colon",
                "\u00e9t\u00e9".encode().decode("latin-1")):
        status, h, doc = R.json("GET", "/healthz", {"X-Request-Id": rid})
        check(status == 200, "status %d for %r" % (status, rid))
        got = h.get("x-request-id", "")
        check(UUID7.match(got), "id %r replaced by %r, not a UUIDv7" % (rid, got))
        check(doc["headers"]["x-request-id"] == got, "forwarded id differs from the answered one")


@case
def generated_request_ids_are_unique():
    ids = set()
    for _ in range(60):
        status, h, _ = R.request("GET", "/healthz")
        check(status == 200 and UUID7.match(h.get("x-request-id", "")), "bad id %r" % h.get("x-request-id"))
        ids.add(h["x-request-id"])
    check(len(ids) == 60, "only %d distinct ids in 60 requests" % len(ids))
    stamps = [int(i.replace("-", "")[:12], 16) for i in ids]
    check(all(abs(t / 1000 - time.time()) < 60 for t in stamps), "UUIDv7 time is not now: %r" % stamps[:3])


@case
def repeated_headers_are_joined_with_commas():
    status, _, doc = R.json("GET", "/healthz", [("X-Multi", "one"), ("X-Multi", "two")])
    check(status == 200, "status %d" % status)
    check(doc["headers"].get("x-multi") == "one, two", "x-multi %r" % doc["headers"].get("x-multi"))


@case
def invalid_utf8_in_a_header_is_forwarded_as_replacement_characters():
    data = R.raw(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Bin: a\xff\xfeb\r\nConnection: close\r\n\r\n")
    status, _ = parse_response(data)
    check(status == 200, "status %r" % status)
    doc = json.loads(data.split(b"\r\n\r\n", 1)[1])
    check(doc["headers"]["x-bin"] == "a\ufffd\ufffdb", "x-bin %r" % doc["headers"]["x-bin"])


@case
def status_headers_and_body_of_saas_http_are_written_back():
    answer = {"status": 201,
              "headers": {"X-Custom": "v1", "ETag": '"7"', "RateLimit-Limit": "100",
                          "RateLimit-Remaining": "99", "RateLimit-Reset": "60",
                          "Content-Type": "application/problem+json", "X-Request-Id": "from-router"},
              "body": '{"made": true}'}
    status, h, data = R.request("POST", "/_stub/respond", {"Content-Type": "application/json"}, json.dumps(answer))
    check(status == 201, "status %d" % status)
    for k, v in answer["headers"].items():
        check(h.get(k.lower()) == v, "header %s: %r, expected %r" % (k, h.get(k.lower()), v))
    check(data == b'{"made": true}', "body %r" % data)


@case
def dangerous_headers_from_saas_http_are_dropped():
    answer = {"status": 200,
              "headers": {"X-Evil": "a\r\nSet-Cookie: stolen=1", "Bad Name": "v", "X-Good": "ok",
                          "Content-Length": "9999", "Connection": "close", "Transfer-Encoding": "chunked"},
              "body": "hello"}
    status, h, data = R.request("POST", "/_stub/respond", {"Content-Type": "application/json"}, json.dumps(answer))
    check(status == 200, "status %d" % status)
    check(h.get("x-good") == "ok", "x-good missing")
    check("set-cookie" not in h and "x-evil" not in h and "bad name" not in h, "unsafe header sent: %r" % h)
    check(h.get("content-length") == "5" and data == b"hello", "framing taken from the router: %r" % h)
    check("chunked" not in h.get("transfer-encoding", ""), "transfer-encoding taken from the router")
    check(R.log_lines(lambda l: "response header from saas.http dropped" in l), "dropped headers were not logged")


@case
def no_content_answers_have_no_body():
    status, h, data = R.request("GET", "/_stub/status/204")
    check(status == 204 and data == b"", "status %d body %r" % (status, data))
    check(UUID7.match(h.get("x-request-id", "")), "204 without X-Request-Id")


@case
def error_raised_by_saas_http_is_a_logged_500_with_the_error_body():
    status, h, doc = R.json("GET", "/_stub/raise/XX000", {"X-Request-Id": "trace-500"})
    check(status == 500, "status %d" % status)
    check(error_body_ok(doc, "internal_error", "trace-500"), "body %r" % doc)
    check(h.get("content-type", "").startswith("application/json"), "content-type %r" % h.get("content-type"))
    lines = R.log_lines(lambda l: "rid=trace-500" in l, 2)
    check(any("sqlstate=XX000" in l and "level=error" in l for l in lines), "no error line with the rid: %r" % lines)


@case
def serialization_failure_is_503_with_retry_after():
    status, h, doc = R.json("GET", "/_stub/raise/40001")
    check(status == 503 and error_body_ok(doc, "transaction_conflict"), "status %d body %r" % (status, doc))
    check(h.get("retry-after") == "1", "retry-after %r" % h.get("retry-after"))


@case
def answers_breaking_the_contract_are_500_not_crashes():
    for path, body in (("/_stub/norows", None), ("/_stub/nullstatus", None),
                       ("/_stub/respond", {"status": 200, "headers": ["x"], "body": "b"}),
                       ("/_stub/respond", {"status": 200, "headers": {"X": {"nested": 1}}, "body": "b"}),
                       ("/_stub/respond", {"status": 99, "headers": {}, "body": "b"}),
                       ("/_stub/respond", {"status": 600, "headers": {}, "body": "b"})):
        status, _, doc = R.json("POST" if body else "GET", path, body=body)
        check(status == 500 and error_body_ok(doc, "internal_error"), "%s %r: %d %r" % (path, body, status, doc))
    check(R.alive(), "relay died")


@case
def declared_oversize_body_is_413_before_it_is_sent():
    # only the headers go out: the answer must come without the relay waiting for the body
    t0 = time.time()
    data = R.raw(b"POST /users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 50000000\r\n\r\n", read_timeout=5)
    status, h = parse_response(data)
    check(status == 413, "status %r" % status)
    check(time.time() - t0 < 3, "413 took %.1fs" % (time.time() - t0))
    check(error_body_ok(json.loads(data.split(b"\r\n\r\n", 1)[1]), "payload_too_large"), "413 body")
    check(h.get("connection", "").lower() == "close", "413 keeps the connection open")


@case
def body_limit_is_exact():
    limit = 65536
    filler = "x" * (limit - len('{"a":""}'))
    status, _, doc = R.json("POST", "/users", body='{"a":"%s"}' % filler)
    check(status == 200 and len(doc["body"]) == limit, "at the limit: %d" % status)
    status, _, doc = R.json("POST", "/users", body='{"a":"%sy"}' % filler)
    check(status == 413 and error_body_ok(doc, "payload_too_large"), "one byte over: %d" % status)


@case
def chunked_oversize_body_is_413():
    chunk = b"400\r\n" + b"a" * 1024 + b"\r\n"
    data = R.raw(b"POST /users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n" + chunk * 70 + b"0\r\n\r\n", read_timeout=5)
    status, _ = parse_response(data)
    check(status == 413, "status %r" % status)


@case
def chunked_body_within_the_limit_is_forwarded():
    data = R.raw(b"POST /users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                 b"5\r\n{\"a\":\r\n3\r\n12}\r\n0\r\n\r\n", read_timeout=5)
    status, _ = parse_response(data)
    check(status == 200, "status %r" % status)
    check(json.loads(data.split(b"\r\n\r\n", 1)[1])["body"] == '{"a":12}', "body not reassembled")


@case
def bodies_must_be_json():
    for ctype in ("text/plain", "application/x-www-form-urlencoded", None, "application/jsonx",
                  "application/merge-patch+json"):
        h = {"Content-Type": ctype} if ctype else {}
        status, _, data = R.request("POST", "/users", h, '{"a":1}')
        check(status == 415 and error_body_ok(json.loads(data), "unsupported_media_type"),
              "%r: %d" % (ctype, status))
    for ctype in ("application/json", "application/json; charset=utf-8", "Application/JSON"):
        status, _, _ = R.request("POST", "/users", {"Content-Type": ctype}, '{"a":1}')
        check(status == 200, "%r refused: %d" % (ctype, status))
    status, _, _ = R.request("DELETE", "/users/1")
    check(status == 200, "a bodiless request needs no Content-Type: %d" % status)


@case
def body_that_is_not_utf8_text_is_400():
    for body in (b'{"a":"\xff"}', b'{"a":"\xc0\xaf"}', b'{"a":"\x00"}', b'{"a":"\xed\xa0\x80"}'):
        status, _, data = R.request("POST", "/users", {"Content-Type": "application/json"}, body)
        check(status == 400 and error_body_ok(json.loads(data), "bad_request"), "%r: %d" % (body, status))


@case
def conflicting_body_lengths_are_400():
    data = R.raw(b"POST /users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}", read_timeout=3)
    status, _ = parse_response(data)
    check(status == 400, "two Content-Lengths: %r" % status)


@case
def unknown_methods_are_405_with_allow():
    for method in ("BREW", "TRACE", "CONNECT", "get"):
        data = R.raw(("%s /users HTTP/1.1\r\nHost: x\r\n\r\n" % method).encode())
        status, h = parse_response(data)
        check(status == 405, "%s: %r" % (method, status))
        check("GET" in h.get("allow", "") and "POST" in h.get("allow", ""), "%s: allow %r" % (method, h.get("allow")))


@case
def targets_that_are_not_origin_paths_are_400():
    for target in (b"http://example.com/users", b"*", b"/us\xc3\xa9rs"):
        data = R.raw(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _ = parse_response(data)
        check(status == 400, "%r: %r" % (target, status))


@case
def keep_alive_serves_several_requests_on_one_connection():
    s = socket.create_connection(("127.0.0.1", R.port), timeout=5)
    f = s.makefile("rb")
    try:
        for i in range(3):
            s.sendall(b"GET /healthz?n=%d HTTP/1.1\r\nHost: x\r\n\r\n" % i)
            line = f.readline()
            check(line.startswith(b"HTTP/1.1 200"), "request %d on the connection: %r" % (i, line))
            length = None
            while True:
                h = f.readline()
                if h in (b"\r\n", b""):
                    break
                name, _, value = h.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
                check(not (name.lower() == "connection" and "close" in value.lower()), "server closes")
            doc = json.loads(f.read(length))
            check(doc["path"] == "/healthz?n=%d" % i, "answer %d is for %r" % (i, doc["path"]))
    finally:
        f.close()
        s.close()


@case
def http10_without_keep_alive_is_closed_after_the_answer():
    data = R.raw(b"GET /healthz HTTP/1.0\r\n\r\n", read_timeout=5)
    status, _ = parse_response(data)
    check(status == 200, "status %r" % status)   # raw() returning at all means the server closed


@case
def openapi_document_is_valid_json_and_describes_every_api_path():
    status, h, data = R.request("GET", "/openapi.json")
    check(status == 200, "status %d" % status)
    check(h.get("content-type", "").startswith("application/json"), "content-type %r" % h.get("content-type"))
    doc = json.loads(data)
    check(str(doc.get("openapi", "")).startswith("3.1"), "openapi %r" % doc.get("openapi"))
    wanted = list(API_PATHS)
    if API_MD and os.path.exists(API_MD):
        wanted += api_md_paths(API_MD)
    missing = [(m, p) for m, p in wanted if m not in doc["paths"].get(p, {})]
    check(not missing, "not described: %r" % missing)
    comp = doc["components"]
    check("Error" in comp["schemas"], "no Error schema")
    for name in ("X-Request-Id", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "ETag", "Retry-After"):
        check(name in comp["headers"], "header %s not described" % name)
    for path in ("/organizations/{id}", "/users/{id}"):
        params = [p.get("$ref", "") for p in doc["paths"][path]["put"].get("parameters", [])]
        check(any(p.endswith("/If-Match") for p in params), "PUT %s lacks If-Match" % path)


def api_md_paths(path):
    """(method, OpenAPI path) for every row of API.md's HTTP API table."""
    out = []
    in_table = False
    for line in open(path, encoding="utf-8"):
        if line.startswith("| method and path"):
            in_table = True
            continue
        if in_table and not line.startswith("|"):
            break
        if not in_table or line.startswith("| ---"):
            continue
        cell = line.split("|")[1]
        method = None
        for m in re.finditer(r"(?:\b(GET|POST|PUT|PATCH|DELETE) )?(/[A-Za-z0-9_\-/:]+)", cell):
            method = (m.group(1) or method or "").lower()
            out.append((method, re.sub(r":([a-z_]+)", r"{\1}", m.group(2))))
    check(len(out) >= 15, "could not read API.md's table (%d rows)" % len(out))
    return out


@case
def metrics_count_requests_by_route_template_and_status():
    before = R.metrics()
    ids = [str(uuid.uuid4()) for _ in range(3)]
    for i in ids:
        R.request("GET", "/users/" + i)
    R.request("GET", "/organizations/%s?x=1" % uuid.uuid4())
    R.request("GET", "/no/such/thing/" + ids[0])
    R.request("GET", "/_stub/status/404")
    # requests are counted when they complete, just after their answer is sent
    deadline = time.time() + 3
    while True:
        after = R.metrics()
        key = 'saas_http_requests_total{route="other",method="GET",status="404"}'
        if after.get(key, 0) - before.get(key, 0) >= 1 \
                or time.time() > deadline:
            break
        time.sleep(0.05)

    def delta(key):
        return after.get(key, 0) - before.get(key, 0)
    check(delta('saas_http_requests_total{route="/users/:id",method="GET",status="200"}') == 3, "users/:id")
    check(delta('saas_http_requests_total{route="/organizations/:id",method="GET",status="200"}') == 1, "orgs/:id")
    check(delta('saas_http_requests_total{route="other",method="GET",status="404"}') == 1, "other 404")
    check(delta('saas_http_request_duration_seconds_count') >= 6, "histogram count")
    check(after['saas_http_request_duration_seconds_bucket{le="+Inf"}'] ==
          after['saas_http_request_duration_seconds_count'], "+Inf bucket differs from count")
    for key in ("saas_http_pool_size", "saas_http_pool_in_use", "saas_http_pool_connected",
                "saas_http_pool_waits_total", 'saas_http_db_errors_total{kind="sql"}'):
        check(key in after, "%s missing" % key)
    check(after["saas_http_pool_size"] == 4, "pool size %r" % after["saas_http_pool_size"])
    _, _, text = R.request("GET", "/metrics")
    check(not any(i.encode() in text for i in ids), "raw ids leaked into metric labels")


@case
def local_endpoints_accept_only_get_and_head():
    for path in ("/metrics", "/openapi.json"):
        status, h, data = R.request("POST", path, {"Content-Type": "application/json"}, "{}")
        check(status == 405 and error_body_ok(json.loads(data), "method_not_allowed"), "%s: %d" % (path, status))
        check(h.get("allow") == "GET, HEAD", "allow %r" % h.get("allow"))


@case
def access_log_has_one_structured_line_per_request():
    R.request("GET", '/users?q="quoted"&x=1', {"X-Request-Id": "log-check-1"})
    R.log_lines(lambda l: "rid=log-check-1" in l and "msg=request" in l)
    time.sleep(0.2)
    lines = [l for l in R.log().splitlines() if "rid=log-check-1" in l and "msg=request" in l]
    check(len(lines) == 1, "%d access lines for one request" % len(lines))
    line = lines[0]
    for field in ("ts=", "ip=127.0.0.1", "method=GET", "status=200", "ms=", "bytes=", "route=/users"):
        check(field in line, "access line lacks %s: %s" % (field, line))
    check('path="/users?q=\\"quoted\\"&x=1"' in line, "path not quoted and escaped: %s" % line)


@case
def slow_call_is_503_within_the_timeout_and_the_relay_goes_on():
    t0 = time.time()
    status, h, doc = R.json("GET", "/_stub/sleep/6", {"X-Request-Id": "slow-1"})
    took = time.time() - t0
    check(status == 503 and error_body_ok(doc, "database_timeout", "slow-1"), "status %d body %r" % (status, doc))
    check(1.3 < took < 2.6, "answered after %.2fs with --timeout-ms 1500" % took)
    status, _, _ = R.request("GET", "/healthz")
    check(status == 200, "next request: %d" % status)


@case
def timed_out_calls_are_cancelled_in_the_database():
    # pool of one: the second request waits for the first, so its own deadline passes while its
    # query runs, and the relay (not statement_timeout) must cancel it
    r2 = Relay("--pool", "1", "--timeout-ms", "1000")
    try:
        results = {}

        def go(name):
            results[name] = r2.json("GET", "/_stub/sleep/0.7", {"X-Request-Id": name})
        threads = [threading.Thread(target=go, args=(n,)) for n in ("first", "second")]
        threads[0].start()
        time.sleep(0.1)
        threads[1].start()
        for t in threads:
            t.join(10)
        check(results["first"][0] == 200, "first: %d" % results["first"][0])
        check(results["second"][0] == 503 and error_body_ok(results["second"][2], "database_timeout"),
              "second: %d %r" % (results["second"][0], results["second"][2]))
        deadline = time.time() + 5
        left = None
        while time.time() < deadline:
            left = psql("SELECT count(*) FROM pg_stat_activity WHERE usename = 'relay_test_login' "
                        "AND state = 'active' AND query LIKE '%saas.http%'")
            if left == "0":
                break
            time.sleep(0.1)
        check(left == "0", "%s cancelled call(s) still running" % left)
        status, _, _ = r2.request("GET", "/healthz")
        check(status == 200, "after the cancel: %d" % status)
        check(r2.metrics()['saas_http_db_errors_total{kind="timeout"}'] >= 1, "timeout not counted")
    finally:
        check(r2.stop() == 0, "relay exit code")


@case
def exhausted_pool_is_503_server_busy_not_a_hang():
    r3 = Relay("--pool", "1", "--timeout-ms", "1000")
    try:
        results = []
        lock = threading.Lock()

        def go():
            t0 = time.time()
            res = r3.json("GET", "/_stub/sleep/0.3")
            with lock:
                results.append((res[0], res[2], time.time() - t0))
        threads = [threading.Thread(target=go) for _ in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(15)
        codes = [(s, d["error"]["code"] if s != 200 else None) for s, d, _ in results]
        check(len(results) == 10, "only %d answers" % len(results))
        check(all(s == 200 or (s == 503 and error_body_ok(d)) for s, d, _ in results), "answers %r" % codes)
        check((503, "server_busy") in codes, "no server_busy among %r" % codes)
        check(max(t for _, _, t in results) < 2.5, "an answer took %.2fs" % max(t for _, _, t in results))
        m = r3.metrics()
        check(m["saas_http_pool_waits_total"] >= 1 and m["saas_http_pool_wait_timeouts_total"] >= 1,
              "pool waits not counted")
    finally:
        check(r3.stop() == 0, "relay exit code")


@case
def connection_lost_mid_call_is_503_then_recovers():
    status, _, doc = R.json("GET", "/_stub/terminate", {"X-Request-Id": "lost-1"})
    check(status == 503 and error_body_ok(doc, "database_unavailable", "lost-1"), "status %d %r" % (status, doc))
    for _ in range(5):
        status, _, _ = R.request("GET", "/healthz")
        check(status == 200, "after the loss: %d" % status)


@case
def idle_connections_killed_by_the_server_are_replaced_without_errors():
    for _ in range(4):
        R.request("GET", "/healthz")
    killed = psql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                  "WHERE usename = 'relay_test_login'")
    check(int(killed) >= 1, "nothing to terminate")
    time.sleep(0.3)
    codes = [R.request("GET", "/healthz")[0] for _ in range(8)]
    check(codes == [200] * 8, "answers after the kill: %r" % codes)


class SecondCluster:
    """A throwaway cluster that this suite may stop and start (never the runner's)."""

    def __init__(self):
        self.dir = os.path.join(WORK, "pg2")
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        os.makedirs(self.dir, exist_ok=True)
        if os.geteuid() == 0:
            subprocess.run(["chown", "-R", "postgres:postgres", self.dir], check=True)
        r = as_pg([PG_BINDIR + "/initdb", "-D", self.data, "-U", "postgres", "--auth=trust",
                   "--no-sync", "-E", "UTF8", "--locale=C.UTF-8"], timeout=120)
        if r.returncode != 0:
            raise RuntimeError("initdb: " + r.stderr)
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write("listen_addresses = ''\nport = %d\nunix_socket_directories = '%s'\nfsync = off\n"
                    % (self.port, self.dir))
        self.start()
        for sql in ("CREATE ROLE relay_test_api NOLOGIN",
                    "CREATE ROLE relay_test_login LOGIN IN ROLE relay_test_api",
                    "CREATE DATABASE relay_test"):
            psql(sql, host=self.dir, port=self.port, db="postgres")
        r = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", self.dir, "-p", str(self.port),
                            "-U", "postgres", "-d", "relay_test", "-f", STUB_SQL], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("stub: " + r.stderr)
        self.dsn = "host=%s port=%d dbname=relay_test user=relay_test_login" % (self.dir, self.port)

    def start(self):
        r = as_pg([PG_BINDIR + "/pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "log"),
                   "-w", "-t", "60", "start"], timeout=90)
        if r.returncode != 0:
            raise RuntimeError("pg_ctl start: " + r.stderr + r.stdout)

    def stop(self, mode="fast"):
        as_pg([PG_BINDIR + "/pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", "60", "stop"], timeout=90)


PG2 = None


@case
def database_down_is_503_with_the_error_body_and_recovers_after_restart():
    global PG2
    PG2 = SecondCluster()
    r4 = Relay("--pool", "2", "--timeout-ms", "2000", dsn=PG2.dsn)
    try:
        check(r4.request("GET", "/healthz")[0] == 200, "before the stop")
        PG2.stop()
        for i in range(4):
            t0 = time.time()
            status, h, doc = r4.json("GET", "/healthz", {"X-Request-Id": "down-%d" % i})
            check(status == 503 and error_body_ok(doc, "database_unavailable", "down-%d" % i),
                  "while down: %d %r" % (status, doc))
            check(h.get("retry-after") == "1", "no Retry-After while down")
            check(time.time() - t0 < 2.5, "a 503 took %.2fs" % (time.time() - t0))
        check(r4.alive(), "relay died while the database was down")
        PG2.start()
        deadline = time.time() + 15
        status = None
        while time.time() < deadline:
            status = r4.request("GET", "/healthz")[0]
            if status == 200:
                break
            time.sleep(0.2)
        check(status == 200, "not recovered after restart: %r" % status)
        codes = [r4.request("GET", "/healthz")[0] for _ in range(5)]
        check(codes == [200] * 5, "after recovery: %r" % codes)
        check("database unavailable; reconnecting" in r4.log() and "database reachable again" in r4.log(),
              "state changes not logged")
        m = r4.metrics()
        check(m['saas_http_db_errors_total{kind="connect"}'] >= 1, "connect failures not counted")
    finally:
        check(r4.stop() == 0, "relay exit code")


@case
def relay_started_while_the_database_is_down_serves_once_it_is_up():
    check(PG2 is not None, "second cluster missing")
    PG2.stop()
    r5 = Relay("--pool", "2", "--timeout-ms", "1000", dsn=PG2.dsn)
    try:
        status, _, doc = r5.json("GET", "/healthz")
        check(status == 503 and error_body_ok(doc, "database_unavailable"), "while down: %d" % status)
        PG2.start()
        deadline = time.time() + 15
        while time.time() < deadline and r5.request("GET", "/healthz")[0] != 200:
            time.sleep(0.2)
        check(r5.request("GET", "/healthz")[0] == 200, "not serving after the database came up")
    finally:
        check(r5.stop() == 0, "relay exit code")
        PG2.stop()


@case
def environment_variables_configure_the_relay():
    r6 = Relay(dsn=None, listen=None, env={"SAAS_HTTP_LISTEN": "127.0.0.1:0", "SAAS_HTTP_DSN": DSN,
                                           "SAAS_HTTP_POOL": "3", "SAAS_HTTP_MAX_BODY": "100",
                                           "SAAS_HTTP_HEADER_TIMEOUT": "3", "SAAS_HTTP_BODY_TIMEOUT": "4",
                                           "SAAS_HTTP_MAX_CONNECTIONS_PER_CLIENT": "7"})
    try:
        check(re.search(r"msg=listening .*per_client=7 header_timeout=3 body_timeout=4", r6.log()),
              "env limits not used: %s" % [l for l in r6.log().splitlines() if "listening" in l])
        check(r6.request("GET", "/healthz")[0] == 200, "env DSN not used")
        check(r6.metrics()["saas_http_pool_size"] == 3, "env pool size not used")
        status, _, _ = r6.request("POST", "/users", {"Content-Type": "application/json"}, "[" + "1," * 60 + "1]")
        check(status == 413, "env max body not used: %d" % status)
    finally:
        check(r6.stop() == 0, "relay exit code")


def barrage_inputs():
    """A few thousand malformed or hostile requests."""
    rnd = random.Random(60)
    methods = [b"FOO", b"G\xc3\x89T", b"get", b"PROPFIND", b"M" * 300, b"GET\x01", b"", b"TRACE"]
    out = []
    for i in range(2400):
        kind = i % 12
        if kind == 0:       # odd methods
            out.append((rnd.choice(methods) + b" /users HTTP/1.1\r\nHost: x\r\n\r\n", False))
        elif kind == 1:     # huge header value, many headers
            out.append((b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * rnd.choice([9000, 40000, 200000])
                        + b"\r\n" + b"".join(b"X-H%d: v\r\n" % n for n in range(rnd.randint(0, 2000)))
                        + b"\r\n", False))
        elif kind == 2:     # invalid UTF-8 in the path, headers, body
            out.append((b"POST /us\xff\xfe?q=\xc0\xaf HTTP/1.1\r\nHost: x\r\nX-U: \xff\xfe\xfd\r\n"
                        b"Content-Type: application/json\r\nContent-Length: 6\r\n\r\n{\"\xff\":1", False))
        elif kind == 3:     # valid path, invalid UTF-8 body: reaches the relay's check
            body = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 200)))
            out.append((b"POST /users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        b"Content-Length: %d\r\n\r\n" % len(body) + body, False))
        elif kind == 4:     # truncated bodies: the client goes away
            out.append((b"POST /users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        b"Content-Length: 1000\r\n\r\n{\"a\":", True))
        elif kind == 5:     # bad lengths and chunking
            out.append((rnd.choice([
                b"POST /users HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
                b"POST /users HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
                b"POST /users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",
                b"POST /users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n2\r\n{}\r\n0\r\n\r\n"]), False))
        elif kind == 6:     # random bytes
            out.append((bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 400))), True))
        elif kind == 7:     # long or odd targets
            out.append((rnd.choice([b"GET /" + b"a" * 20000, b"GET http://evil/", b"GET *", b"GET ../../etc/passwd",
                                    b"GET /users/%00", b"GET /users?" + b"&x" * 3000])
                        + b" HTTP/1.1\r\nHost: x\r\n\r\n", False))
        elif kind == 8:     # headers without colon, folded, control characters
            out.append((b"GET /healthz HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n folded\r\nX-C: \x01\x02\x7f\r\n\r\n", False))
        elif kind == 9:     # request line only, then silence
            out.append((b"GET /healthz HTTP/1.1\r\n", True))
        elif kind == 10:    # a sane request among the insane, with a hostile request id
            out.append((b"GET /users?limit=" + str(i).encode() + b" HTTP/1.1\r\nHost: x\r\nX-Request-Id: ../\"\r\n"
                        b"Connection: close\r\n\r\n", False))
        else:               # JSON claimed, but the body has NUL bytes
            out.append((b"PUT /users/1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        b"Content-Length: 5\r\n\r\n{\x00\x00}\n", False))
    return out


@case
def malformed_request_barrage_gets_no_5xx_but_503_and_the_relay_survives():
    inputs = barrage_inputs()
    bad = []
    answered = [0]
    lock = threading.Lock()

    def worker(items):
        for data, half in items:
            try:
                got = R.raw(data, read_timeout=1.0, half_close=half)
            except OSError:
                continue
            status, _ = parse_response(got)
            with lock:
                if status is not None:
                    answered[0] += 1
                if status is not None and status >= 500 and status != 503:
                    bad.append((status, data[:80]))
    threads = [threading.Thread(target=worker, args=(inputs[n::8],)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    check(not bad, "%d 5xx answers, e.g. %r" % (len(bad), bad[:3]))
    check(answered[0] > len(inputs) // 2, "only %d of %d requests answered at all" % (answered[0], len(inputs)))
    check(R.alive(), "relay died")
    status, _, _ = R.request("GET", "/healthz")
    check(status == 200, "after the barrage: %d" % status)


@case
def sigterm_lets_in_flight_requests_finish_then_exits_0():
    r7 = Relay("--timeout-ms", "4000")
    result = {}

    def slow():
        result["answer"] = r7.json("GET", "/_stub/sleep/1.2", {"X-Request-Id": "inflight-1"})
    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.4)
    r7.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    refused = False
    try:
        socket.create_connection(("127.0.0.1", r7.port), timeout=2).close()
    except OSError:
        refused = True
    t.join(10)
    rc = r7.stop(timeout=15)
    check("answer" in result and result["answer"][0] == 200, "in-flight request: %r" % (result.get("answer"),))
    check(result["answer"][1].get("connection") == "close", "answer while draining keeps the connection")
    check(refused, "new connections still accepted while draining")
    check(rc == 0, "exit code %r" % rc)
    log = r7.log()
    check("SIGTERM" in log and "msg=stopped" in log, "shutdown not logged")


@case
def sigint_stops_cleanly_too():
    r8 = Relay()
    check(r8.request("GET", "/healthz")[0] == 200, "not serving")
    t0 = time.time()
    rc = r8.stop(sig=signal.SIGINT)
    check(rc == 0, "exit code %r" % rc)
    check(time.time() - t0 < 5, "took %.1fs to stop while idle" % (time.time() - t0))


# limits and deadlines: test_limits.py, imported here so that its cases run before the main
# relay stops and the sanitizer reports are read
import test_limits  # noqa: E402,F401
# what clients expect of answers (CORS, gzip, 304, WWW-Authenticate, Retry-After, Allow)
import test_http  # noqa: E402,F401
# the pages /admin/ and /docs from a folder (shim/static.c)
import test_static  # noqa: E402,F401


@case
def main_relay_stops_cleanly():
    rc = R.stop()
    check(rc == 0, "exit code %r" % rc)


@case
def no_sanitizer_report_from_any_relay():
    for r in ALL_RELAYS:
        if r.alive():
            r.stop()
    reports = sanitizer_reports(ALL_RELAYS)
    check(not reports, "%s: %s" % reports[0] if reports else "")


def main():
    global R
    os.makedirs(WORK, exist_ok=True)
    try:
        R = Relay("--pool", "4", "--timeout-ms", "1500", "--max-body", "65536")
        harness.MAIN["relay"] = R
    except Exception as e:
        print("not ok - main relay starts: %s" % e)
        print("passed=0 failed=1")
        return 1
    passed, failed, _, _ = run_cases(CASES)
    for r in ALL_RELAYS:
        if r.alive():
            r.stop()
    if PG2 is not None:
        PG2.stop()
    print("passed=%d failed=%d" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
