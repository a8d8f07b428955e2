"""The end-to-end suites' client: configuration from the environment, one keep-alive HTTP client
per thread through the relay, the answer checks, and the fixtures the case files share.

Imported by test_e2e.py and by the feature case files test/e2e/cases_*.py, which test_e2e.py loads
(each "from e2e_lib import *" and declares cases with saas_test.case). The environment is
test_e2e.py's (see its docstring).
"""

import base64
import hashlib
import hmac
import http.client
import json
import os
import random
import re
import socket
import sys
import threading
import time
import uuid

from saas_test import (ALL_RELAYS, CASES, UUID7, Relay, Skip, case, check, error_body_ok, parse_response,
                       psql, run_cases, sanitizer_reports, webhook_signature)

BIN = os.environ["E2E_RELAY_BIN"]
WORK = os.environ["E2E_WORK"]
DSN = os.environ["E2E_DSN"]
DB = os.environ.get("E2E_DB", "e2e_test")
PGLOG = os.environ.get("E2E_PGLOG", "")
PGHOST = os.environ["PGHOST"]
PGPORT = os.environ["PGPORT"]
Relay.configure(BIN, WORK, DSN)

PASSWORD = "correct horse battery staple"
ROOT_EMAIL, ROOT_PASSWORD = "root@platform.test", "platform root password"
# Limits the suite runs under (its client is one address, and it calls far faster than a
# person); the rate-limit cases lower them and put these back.
SUITE_LIMIT = (6000000, 1000000)


# ---------------------------------------------------------------------------------------------
# harness

# Cases that fail because of a known bug of the extension, reported and not fixed yet. They run
# and print "not ok ... # TODO known bug: ...", which does not count as a failure (TAP's TODO),
# unless E2E_STRICT=1. When one passes, it says so: take it off this list.
KNOWN_BUGS = {}
# A run against another installation (suite 80_citus: the Citus coordinator) names its own known
# bugs in a file, a line "case_name: why" each (# starts a comment).
if os.environ.get("E2E_KNOWN_BUGS_FILE"):
    with open(os.environ["E2E_KNOWN_BUGS_FILE"]) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                name, _, why = line.partition(":")
                KNOWN_BUGS[name.strip()] = why.strip()
STRICT = os.environ.get("E2E_STRICT") == "1"


def sql(query):
    """One statement as the database owner (postgres); the output, unaligned."""
    return psql(query, DB, PGHOST, PGPORT)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_dec(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def claims_of(token):
    return json.loads(b64url_dec(token.split(".")[1]))


def sign_jwt(header, claims, secret):
    h = b64url(json.dumps(header, separators=(",", ":")).encode())
    c = b64url(json.dumps(claims, separators=(",", ":")).encode())
    sig = hmac.new(secret, (h + "." + c).encode(), hashlib.sha256).digest()
    return h + "." + c + "." + b64url(sig)


class Answer:
    def __init__(self, status, headers, data):
        self.status = status
        self.headers = headers
        self.data = data
        try:
            self.doc = json.loads(data) if data else None
        except ValueError:
            self.doc = None

    def h(self, name):
        return self.headers.get(name.lower())

    def code(self):
        if isinstance(self.doc, dict) and isinstance(self.doc.get("error"), dict):
            return self.doc["error"].get("code")
        return None

    def fields(self):
        if isinstance(self.doc, dict) and isinstance(self.doc.get("error"), dict):
            return {d.get("field") for d in self.doc["error"].get("details") or [] if isinstance(d, dict)}
        return set()

    def __repr__(self):
        return "%d %s" % (self.status, self.data[:300].decode("utf-8", "replace"))


_local = threading.local()
RECORDED = []           # (method, path, Answer) of the functional cases, checked against the OpenAPI
RECORDING = [True]


def call(method, path, token=None, body=None, headers=None, content_type="application/json", timeout=30):
    """One API request through the relay, on a keep-alive connection of this thread."""
    hdrs = dict(headers or {})
    if token is not None:
        hdrs["Authorization"] = "Bearer " + token
    if body is not None:
        if not isinstance(body, (str, bytes)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        if content_type is not None and not any(k.lower() == "content-type" for k in hdrs):
            hdrs["Content-Type"] = content_type
    for attempt in (1, 2):
        c = getattr(_local, "conn", None)
        if c is None or getattr(_local, "port", None) != R.port:
            c = http.client.HTTPConnection("127.0.0.1", R.port, timeout=timeout)
            _local.conn, _local.port = c, R.port
        try:
            c.putrequest(method, path, skip_accept_encoding=True)
            for k, v in hdrs.items():
                c.putheader(k, v)
            if body is not None:
                c.putheader("Content-Length", str(len(body)))
            c.endheaders(body)
            r = c.getresponse()
            data = r.read()
            a = Answer(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
            if RECORDING[0]:
                RECORDED.append((method, path, a))
            if r.will_close:
                c.close()
                _local.conn = None
            return a
        except (http.client.HTTPException, OSError):
            c.close()
            _local.conn = None
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def expect(a, status, code=None, fields=None):
    """a has the status; an error also has the API's error body with code and the fields."""
    check(a.status == status, "expected %d%s, got %r" % (status, " " + code if code else "", a))
    if status >= 400:
        check(error_body_ok(a.doc), "not the API's error body: %r" % a)
        check(a.doc["error"]["request_id"] == a.h("x-request-id"),
              "request_id %r differs from X-Request-Id %r" % (a.doc["error"]["request_id"], a.h("x-request-id")))
        if code:
            check(a.code() == code, "code %r, expected %r: %r" % (a.code(), code, a))
        if fields:
            missing = set(fields) - a.fields()
            check(not missing, "details lack %s: %r" % (sorted(missing), a))
    check(a.h("x-request-id"), "no X-Request-Id")
    return a


def raw(data, read_timeout=3.0):
    """Bytes on a fresh socket; the first response (status, headers, body) or (None, {}, b"")."""
    out = R.raw(data, read_timeout)
    status, hdrs = parse_response(out)
    if status is None:
        return None, {}, b""
    return status, hdrs, out.partition(b"\r\n\r\n")[2]


def set_limits(scope, per_minute, burst, tier=None):
    where = "scope = '%s'" % scope + (" AND tier = '%s'" % tier if tier else "")
    sql("UPDATE saas.rate_limits SET requests_per_minute = %d, burst = %d WHERE %s" % (per_minute, burst, where))


def restore_limits():
    sql("UPDATE saas.rate_limits SET requests_per_minute = %d, burst = %d" % SUITE_LIMIT)


# ---------------------------------------------------------------------------------------------
# fixtures, filled in by the first cases

class _RelayRef:
    """The relay main() started; a stand-in until then, so that case files can import R."""
    target = None

    def __getattr__(self, name):
        if self.target is None:
            raise AssertionError("the relay is not started")
        return getattr(self.target, name)


R = _RelayRef()
F = {}      # name -> value: tokens, ids
RUN = uuid.uuid4().hex[:8]      # keeps emails and slugs of this run apart


def email(name):
    return "%s-%s@e2e.test" % (name, RUN)


def register(name, slug=None, email_addr=None):
    org = {"name": "E2E %s %s" % (name, RUN)}
    if slug:
        org["slug"] = slug
    return call("POST", "/auth/register", body={"organization": org, "email": email_addr or email(name),
                                                  "password": PASSWORD, "first_name": name.title(),
                                                  "last_name": "Tester"})


def login(email_addr, password=PASSWORD, **extra):
    return call("POST", "/auth/login", body=dict({"email": email_addr, "password": password}, **extra))


def queued_token(kind, prefix, recipient):
    """The prefix_ token in the newest undelivered message of kind to recipient (owner's SQL)."""
    out = sql("SELECT payload -> 'body' ->> 'body' FROM saas.jobs WHERE kind = '%s' AND payload -> 'body' ->> "
              "'recipient' = '%s' ORDER BY created_at DESC LIMIT 1" % (kind, recipient))
    m = re.search(r"(%s_[A-Za-z0-9_-]+)" % prefix, out or "")
    check(m, "no %s token queued for %s: %r" % (prefix, recipient, out))
    return m.group(1)


def need(*names):
    for n in names:
        if n not in F:
            raise AssertionError("fixture %s missing (an earlier case failed)" % n)
    return [F[n] for n in names] if len(names) > 1 else F[names[0]]
