"""What HTTP clients (browsers, curl, SDKs) expect of the relay's answers, over real sockets
(docs/relay.md, "What clients get"): CORS with an allow-list and preflights answered by the relay,
gzip when asked, 304 for a matching If-None-Match, WWW-Authenticate on 401, Retry-After on 503,
HEAD in Allow.  The router's answers are made to order with the stub's /_stub/respond.
Imported by test_relay.py, whose harness and main relay these cases share.
"""

import gzip
import json
import subprocess

from harness import BIN, MAIN, psql
from saas_test import Relay, case, check, eq, error_body_ok

ORIGIN = "https://app.example.test"
RELAYS = {}


def main_relay():
    return MAIN["relay"]


def cors_relay():
    """A relay that allows two origins."""
    if "cors" not in RELAYS:
        RELAYS["cors"] = Relay("--cors-origins", ORIGIN + ", http://localhost:3000")
    return RELAYS["cors"]


def respond(relay, status, headers, body="{}", method="GET", req_headers=None):
    """The stub answers status, headers, body as asked (a JSON request body says what)."""
    h = {"Content-Type": "application/json"}
    h.update(req_headers or {})
    return relay.request(method, "/_stub/respond", h,
                         json.dumps({"status": status, "headers": headers, "body": body}))


def stub_calls():
    return int(psql("SELECT count(*) FROM saas.stub_calls"))


@case
def cors_preflight_from_an_allowed_origin_is_answered_by_the_relay():
    r = cors_relay()
    before = stub_calls()
    status, h, body = r.request("OPTIONS", "/users/1", {
        "Origin": ORIGIN, "Access-Control-Request-Method": "DELETE",
        "Access-Control-Request-Headers": "authorization, if-match"})
    eq(status, 204, "status")
    eq(body, b"", "body")
    eq(h.get("access-control-allow-origin"), ORIGIN, "Access-Control-Allow-Origin")
    check("DELETE" in h.get("access-control-allow-methods", ""), "methods: %r" % h)
    allow_headers = h.get("access-control-allow-headers", "").lower()
    check("authorization" in allow_headers and "if-match" in allow_headers, "headers: %r" % h)
    check(int(h.get("access-control-max-age", "0")) > 0, "no max-age")
    check("Origin" in h.get("vary", ""), "no Vary: Origin: %r" % h)
    check(h.get("x-request-id"), "no X-Request-Id")
    eq(stub_calls(), before, "calls of saas.http for a preflight")
    # the second origin of the list, and a plain OPTIONS still goes to the router
    status, h, _ = r.request("OPTIONS", "/users", {
        "Origin": "http://localhost:3000", "Access-Control-Request-Method": "GET"})
    eq((status, h.get("access-control-allow-origin")), (204, "http://localhost:3000"), "second origin")
    status, h, _ = r.request("OPTIONS", "/users")
    eq(h.get("x-stub"), "echo", "plain OPTIONS forwarded")


@case
def cors_preflight_from_another_origin_or_without_a_list_is_403():
    for relay, origin in ((cors_relay(), "https://evil.example.test"), (main_relay(), ORIGIN),
                          (cors_relay(), "null")):
        before = stub_calls()
        status, h, body = relay.request("OPTIONS", "/users", {
            "Origin": origin, "Access-Control-Request-Method": "GET"})
        eq(status, 403, "status for %s" % origin)
        check(error_body_ok(json.loads(body), "origin_not_allowed"), "error body %r" % body)
        check("access-control-allow-origin" not in h, "allowed anyway: %r" % h)
        eq(stub_calls(), before, "calls of saas.http")


@case
def cors_answers_let_an_allowed_origin_read_etag_request_id_and_ratelimit():
    r = cors_relay()
    status, h, _ = respond(r, 200, {"ETag": '"7"', "RateLimit-Remaining": "9"},
                           req_headers={"Origin": ORIGIN})
    eq(status, 200, "status")
    eq(h.get("access-control-allow-origin"), ORIGIN, "Access-Control-Allow-Origin")
    expose = [x.strip().lower() for x in h.get("access-control-expose-headers", "").split(",")]
    for name in ("etag", "x-request-id", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"):
        check(name in expose, "%s not exposed: %r" % (name, expose))
    # the relay's own errors too (415 here), and nothing for an origin not on the list
    status, h, _ = r.request("POST", "/users", {"Origin": ORIGIN, "Content-Type": "text/plain"}, "x")
    eq((status, h.get("access-control-allow-origin")), (415, ORIGIN), "415 with CORS")
    status, h, _ = r.request("GET", "/users", {"Origin": "https://evil.example.test"})
    check("access-control-allow-origin" not in h, "other origin allowed: %r" % h)
    check("Origin" in h.get("vary", ""), "no Vary: Origin")


@case
def cors_star_allows_every_origin_and_a_bad_list_is_refused_at_startup():
    r = Relay("--cors-origins", "*")
    RELAYS["star"] = r
    status, h, _ = r.request("GET", "/healthz", {"Origin": "http://localhost:5173"})
    eq(h.get("access-control-allow-origin"), "*", "Access-Control-Allow-Origin")
    for bad in ("app.example.test", "https://app.example.test/path", "ftp://x.test", "https://a.test:99999"):
        p = subprocess.run([BIN, "--cors-origins", bad], capture_output=True, timeout=10)
        eq(p.returncode, 2, "exit code for %r" % bad)
        check(b"--cors-origins" in p.stderr and bad.encode() in p.stderr, "message: %r" % p.stderr)


@case
def gzip_for_large_answers_when_the_client_asks():
    r = main_relay()
    status, h, body = r.request("GET", "/_stub/big/100000", {"Accept-Encoding": "gzip, deflate"})
    eq((status, h.get("content-encoding")), (200, "gzip"), "gzip answer")
    eq(gzip.decompress(body), b"x" * 100000, "decompressed body")
    eq(int(h["content-length"]), len(body), "Content-Length of the gzip body")
    check("Accept-Encoding" in h.get("vary", ""), "no Vary: Accept-Encoding")
    for ae in (None, "gzip;q=0", "identity", "br", "*;q=0"):
        status, h, body = r.request("GET", "/_stub/big/100000", {"Accept-Encoding": ae} if ae else {})
        check("content-encoding" not in h and len(body) == 100000, "compressed for %r" % ae)
    status, h, body = r.request("GET", "/_stub/big/100", {"Accept-Encoding": "gzip"})
    check("content-encoding" not in h and body == b"x" * 100, "small body compressed")
    status, h, body = r.request("GET", "/_stub/big/100000", {"Accept-Encoding": "*"})
    eq(h.get("content-encoding"), "gzip", "gzip for *")


@case
def openapi_document_is_gzipped_to_a_tenth():
    r = main_relay()
    _, _, plain = r.request("GET", "/openapi.json")
    status, h, body = r.request("GET", "/openapi.json", {"Accept-Encoding": "gzip"})
    eq((status, h.get("content-encoding")), (200, "gzip"), "gzip answer")
    eq(gzip.decompress(body), plain, "decompressed document")
    check(len(body) * 5 < len(plain), "%d bytes gzipped of %d" % (len(body), len(plain)))
    status, h, body = r.request("HEAD", "/openapi.json", {"Accept-Encoding": "gzip"})
    eq((status, body, h.get("content-encoding")), (200, b"", "gzip"), "HEAD")


@case
def if_none_match_on_get_is_answered_304_when_the_etag_matches():
    r = main_relay()
    for inm in ('"3"', 'W/"3"', '"1", "3"', "*"):
        status, h, body = respond(r, 200, {"ETag": '"3"'}, '{"id":1}', req_headers={"If-None-Match": inm})
        eq((status, body, h.get("etag")), (304, b"", '"3"'), "If-None-Match %s" % inm)
    for inm in ('"4"', 'W/"33"', "3", ""):
        status, _, body = respond(r, 200, {"ETag": '"3"'}, '{"id":1}', req_headers={"If-None-Match": inm})
        eq((status, body), (200, b'{"id":1}'), "If-None-Match %r" % inm)
    status, _, _ = respond(r, 200, {"ETag": '"3"'}, method="POST", req_headers={"If-None-Match": '"3"'})
    eq(status, 200, "POST with a matching If-None-Match")
    status, _, _ = respond(r, 404, {"ETag": '"3"'}, req_headers={"If-None-Match": '"3"'})
    eq(status, 404, "404 with a matching If-None-Match")


@case
def every_401_says_www_authenticate_bearer():
    r = main_relay()
    status, h, _ = respond(r, 401, {"Content-Type": "application/json"})
    eq((status, h.get("www-authenticate")), (401, 'Bearer realm="pg_saas"'), "added")
    status, h, _ = respond(r, 401, {"WWW-Authenticate": 'Bearer error="invalid_token"'})
    eq(h.get("www-authenticate"), 'Bearer error="invalid_token"', "the router's kept")
    status, h, _ = respond(r, 200, {})
    check("www-authenticate" not in h, "on a 200")


@case
def every_503_says_retry_after():
    r = main_relay()
    status, h, _ = respond(r, 503, {})
    eq((status, h.get("retry-after")), (503, "1"), "added")
    status, h, _ = respond(r, 503, {"Retry-After": "30"})
    eq(h.get("retry-after"), "30", "the router's kept")


@case
def allow_lists_head_wherever_it_lists_get():
    r = main_relay()
    status, h, _ = respond(r, 405, {"Allow": "GET, PUT, DELETE"})
    eq((status, h.get("allow")), (405, "GET, PUT, DELETE, HEAD"), "GET without HEAD")
    _, h, _ = respond(r, 405, {"Allow": "POST"})
    eq(h.get("allow"), "POST", "POST only")
    _, h, _ = respond(r, 405, {"Allow": "GET, HEAD"})
    eq(h.get("allow"), "GET, HEAD", "HEAD already there")
    _, h, _ = r.request("POST", "/metrics")
    eq(h.get("allow"), "GET, HEAD", "relay's own 405")


@case
def openapi_document_describes_405_everywhere_304_and_the_unknown_service_404():
    _, _, data = main_relay().request("GET", "/openapi.json")
    doc = json.loads(data)
    ops = [(p, m, op) for p, item in doc["paths"].items() for m, op in item.items()
           if isinstance(op, dict) and "responses" in op]
    lacking = [(m, p) for p, m, op in ops if "405" not in op["responses"] and p != "/webhooks/{service}"]
    check(not lacking, "no 405: %r" % lacking)
    check("404" in doc["paths"]["/webhooks/{service}"]["post"]["responses"], "unknown service")
    for path in ("/organizations/{id}", "/users/{id}"):
        get = doc["paths"][path]["get"]
        check("304" in get["responses"], "GET %s lacks 304" % path)
        check(any(p.get("$ref", "").endswith("/If-None-Match") for p in get["parameters"]),
              "GET %s lacks If-None-Match" % path)
    comp = doc["components"]
    check("WWW-Authenticate" in comp["responses"]["Unauthorized"]["headers"], "401 without WWW-Authenticate")
    check("Retry-After" in comp["responses"]["ServiceUnavailable"]["headers"], "503 without Retry-After")
    check("Allow" in comp["responses"]["MethodNotAllowed"]["headers"], "405 without Allow")


@case
def relays_of_the_http_cases_stop_cleanly():
    for r in RELAYS.values():
        eq(r.stop(), 0, "exit code")
