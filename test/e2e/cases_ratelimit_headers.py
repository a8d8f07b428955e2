"""RateLimit-* on every answer of a limited route (docs/api.md "Rate limits", docs/security.md "Rate
limiting"): an answer refused before its route counted a budget (401 without, with a bad or a forged
token, or with a forged webhook signature; the router's 413 and 415; 405; a bad target) counts
against the client address's sign-in budget (auth_ip, shared with /auth/login) and carries its
headers; a flood of them ends in 429 with Retry-After, also for logins from that address, while
authenticated calls (the user's own budget) and other addresses go on. /healthz is not limited.
"""

import http.client
import json
import time

from e2e_lib import *
from saas_test import case, check, Skip

RL = ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset")


def _rl(a, what):
    """The three RateLimit values of an answer (ints); each must be there."""
    for h in RL:
        check(a.h(h) is not None and a.h(h).isdigit(), "%s: %s is %r in %r" % (what, h, a.h(h), a.headers))
    return tuple(int(a.h(h)) for h in RL)


def _call_from(source_ip, method, path, token=None, body=None):
    """One request from another loopback address (the relay keys x-client-addr on the socket)."""
    hdrs = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        hdrs["Authorization"] = "Bearer " + token
    data = json.dumps(body).encode() if body is not None else None
    c = http.client.HTTPConnection("127.0.0.1", R.port, timeout=30, source_address=(source_ip, 0))
    try:
        c.request(method, path, body=data, headers=hdrs)
        r = c.getresponse()
        return Answer(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    finally:
        c.close()


def _forged_token():
    """A well-formed HS256 token for an existing user, signed with a key the server never had."""
    admin = need("rlh_admin_claims")
    return sign_jwt({"alg": "HS256", "typ": "JWT"}, dict(admin, exp=int(time.time()) + 600),
                    b"not the server's key, 32 bytes long")


@case
def ratelimit_headers_fixture():
    d = expect(register("rlh"), 201).doc
    F["rlh_token"] = d["token"]
    F["rlh_admin_claims"] = claims_of(d["token"])


@case
def ratelimit_headers_on_every_refused_answer_of_a_limited_route():
    tok = need("rlh_token")
    big = json.dumps({"email": "x@e2e.test", "pad": "x" * (70 * 1024)})     # over saas.max_body_bytes
    refused = [
        ("no token", "GET", "/users", None, None, {}, 401),
        ("bad token", "GET", "/organizations", "garbage", None, {}, 401),
        ("forged token", "GET", "/auth/me", _forged_token(), None, {}, 401),
        ("forged token, route module", "GET", "/api-keys", _forged_token(), None, {}, 401),
        ("no token, logout", "POST", "/auth/logout", None, None, {}, 401),
        ("router's 413", "POST", "/users", tok, big, {}, 413),
        ("router's 415 (webhook without a body)", "POST", "/webhooks/user-service", None, None,
         {"Content-Type": "text/plain"}, 415),
        ("forged webhook signature", "POST", "/webhooks/user-service", None, "{}",
         {"webhook-id": "msg_rlh", "webhook-timestamp": str(int(time.time())), "webhook-signature": "v1,AAAA"},
         401),
        ("405 before authentication", "DELETE", "/jobs", None, None, {}, 405),
    ]
    try:
        # T = 0.5 s: the dozen counts below stay within what the suite's limits forgive afterwards
        set_limits("auth_ip", 120, 100)
        seen = []
        for what, method, path, token, body, headers, status in refused:
            a = call(method, path, token, body, headers, content_type=headers.get("Content-Type", "application/json"))
            expect(a, status)
            lim, rem, reset = _rl(a, what)
            check(lim == 100, "%s: RateLimit-Limit %d, the auth_ip burst is 100" % (what, lim))
            check(rem < lim and reset >= 1, "%s: the request is not counted: %r" % (what, a.headers))
            seen.append(rem)
            if status == 405:
                check((a.h("allow") or "").startswith("GET"), "405 lost its Allow: %r" % a.headers)
            if status == 401 and not path.startswith("/webhooks"):
                check((a.h("www-authenticate") or "").startswith("Bearer"), "401 lost WWW-Authenticate")
        # one budget: the answers spend from each other (refill: 2 per second)
        check(seen[-1] < seen[0], "remaining %r" % seen)
        # /healthz is not a limited route; an authenticated call counts the user's budget
        a = expect(call("GET", "/healthz"), 200)
        check(a.h("ratelimit-limit") is None, "/healthz carries RateLimit headers: %r" % a.headers)
        a = expect(call("GET", "/users?limit=1", tok), 200)
        check(_rl(a, "authenticated")[0] != 100, "an authenticated call counted the address: %r" % a.headers)
    finally:
        restore_limits()


@case
def bearer_401_flood_ends_in_429_other_addresses_and_valid_tokens_unaffected():
    tok = need("rlh_token")
    forged = _forged_token()
    flood, other = "127.0.0.3", "127.0.0.4"     # fresh addresses: the case above spent 127.0.0.1's
    try:
        set_limits("auth_ip", 60, 4)      # refused answers do not move the bucket: 4 s to forgive
        try:
            last = _call_from(flood, "GET", "/users", forged)
        except OSError as e:
            raise Skip("cannot send from %s: %s" % (flood, e))
        got = [last.status]
        for i in range(7):
            last = _call_from(flood, "GET", "/users", forged if i % 2 else "guess-%d" % i)
            got.append(last.status)
        check(got[0] == 401 and got[-1] == 429 and set(got) <= {401, 429}, "statuses %r" % got)
        expect(last, 429, "rate_limited")
        lim, rem, _ = _rl(last, "429")
        check(lim == 4 and rem == 0, "429 headers %r" % last.headers)
        check(int(last.h("retry-after") or 0) >= 1, "no Retry-After: %r" % last.headers)
        # token guessing spent the address's sign-in budget: logins from it wait too
        a = _call_from(flood, "POST", "/auth/login",
                       body={"email": email("rlh-after-flood"), "password": "guess guess guess"})
        expect(a, 429)
        # a valid token still works from the flooded address (its budget is the user's)
        expect(_call_from(flood, "GET", "/users?limit=1", tok), 200)
        # another address is not affected
        a = _call_from(other, "GET", "/users", "guess-other")
        expect(a, 401)
        check(_rl(a, "other address")[1] == 3, "another address's budget: %r" % a.headers)
        a = _call_from(other, "POST", "/auth/login",
                       body={"email": email("rlh-other"), "password": "guess guess guess"})
        expect(a, 401)
    finally:
        restore_limits()
