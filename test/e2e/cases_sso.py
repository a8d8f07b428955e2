"""Single sign-on with OpenID Connect, end to end over HTTP (docs/api.md, "Single sign-on").

The case file starts its own saas-sim (the AddressSanitizer build) on free ports and plays the
browser: GET /auth/sso/{slug}/start, the provider's /authorize, the callback, carrying the sign-in
cookie the start route sets (a browser's cookie jar of one cookie, JAR). Every id_token
attack the simulator can make is refused, and so are a wrong state, a replayed nonce, a reused
code; a provider that is down or hangs gives a 503 within the timeouts. The simulator is stopped
by the last case (and at exit).
"""

import atexit
import os
import signal
import subprocess
import time
import urllib.parse

from e2e_lib import *
from saas_test import case, check, Skip

_lib_call = call
JAR = {}        # the "browser's" cookie: the last saas_sso the start route set


def call(method, path, token=None, body=None, headers=None, **kw):
    """e2e_lib's call, as a browser would make it: the start route's Set-Cookie is kept, and sent back
    with the callback (unless the case passes its own Cookie header)."""
    hdrs = dict(headers or {})
    if path.startswith("/auth/sso/callback") and JAR.get("__Host-saas_sso") and "Cookie" not in hdrs:
        hdrs["Cookie"] = "theme=dark; __Host-saas_sso=%s" % JAR["__Host-saas_sso"]
    a = _lib_call(method, path, token, body, hdrs, **kw)
    sc = a.h("set-cookie") or ""
    if sc.startswith("__Host-saas_sso="):
        JAR["__Host-saas_sso"] = sc.split(";", 1)[0][len("__Host-saas_sso="):] or None
    return a


ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SIM_BIN = os.path.join(ROOT, "sim", "saas-sim-asan")
SIM = {}        # proc, control, idp (ports), log
SSO_DOMAIN = "sso-%s.test" % RUN
SSO_SECRET = "client-secret-%s-xyzzy" % RUN


def sim_call(method, path, body=None, port=None, timeout=10):
    """A request to the simulator (control port unless port is given): (status, headers, doc)."""
    c = http.client.HTTPConnection("127.0.0.1", port or SIM["control"], timeout=timeout)
    hdrs = {}
    if body is not None:
        body = json.dumps(body)
        hdrs["Content-Type"] = "application/json"
    c.request(method, path, body, hdrs)
    r = c.getresponse()
    data = r.read()
    c.close()
    try:
        doc = json.loads(data) if data else None
    except ValueError:
        doc = None
    return r.status, {k.lower(): v for k, v in r.getheaders()}, doc


def sim_stop():
    p = SIM.get("proc")
    if p is not None and p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    SIM["proc"] = None


atexit.register(sim_stop)


def idp_fault(kind):
    st, _, doc = sim_call("POST", "/_sim/oidc/faults", {"id_token": kind})
    check(st == 200, "the simulator refused the fault %s: %d %r" % (kind, st, doc))


def idp_mode(mode):
    st, _, doc = sim_call("POST", "/_sim/faults/identity-provider", {"mode": mode})
    check(st == 200, "the simulator refused mode %s: %d %r" % (mode, st, doc))


def start(slug, **params):
    q = ("?" + urllib.parse.urlencode(params)) if params else ""
    return call("GET", "/auth/sso/%s/start%s" % (slug, q))


def authorize(location, **override):
    """The browser at the provider: the authorize URL (some parameters replaced); the callback target."""
    u = urllib.parse.urlparse(location)
    check(u.port == SIM["idp"], "the redirect is not to the provider: %s" % location)
    q = dict(urllib.parse.parse_qsl(u.query))
    q.update(override)
    st, h, doc = sim_call("GET", u.path + "?" + urllib.parse.urlencode(q), port=SIM["idp"])
    check(st == 302 and h.get("location"), "the provider did not redirect back: %d %r" % (st, doc))
    back = urllib.parse.urlparse(h["location"])
    check(back.path == "/auth/sso/callback", "the provider redirected to %s" % h["location"])
    return back.path + "?" + back.query


def flow(slug, **hint):
    """start, authorize, callback: the callback's answer."""
    a = expect(start(slug, **hint), 302)
    return call("GET", authorize(a.h("location")))


def params_of(target):
    return dict(urllib.parse.parse_qsl(urllib.parse.urlparse(target).query))


def refused_without_session(a, status, code, what):
    expect(a, status, code)
    check("token" not in (a.doc or {}), "%s: a token came with the refusal" % what)


@case
def sso_simulated_provider_starts():
    if not os.path.exists(SIM_BIN):
        r = subprocess.run(["make", "--no-print-directory", "-C", ROOT, "sim/saas-sim-asan"],
                           capture_output=True, text=True)
        check(r.returncode == 0, "cannot build sim/saas-sim-asan: %s" % r.stderr[-500:])
    SIM["log"] = open(os.path.join(WORK, "sso-sim.log"), "w")
    ports = [free_port() for _ in range(5)]
    SIM["proc"] = subprocess.Popen([SIM_BIN, "--control-port", str(ports[0]), "--user-port", str(ports[1]),
                                    "--payment-port", str(ports[2]), "--communication-port", str(ports[3]),
                                    "--oidc-port", str(ports[4]), "--quiet"],
                                   cwd=ROOT, stdout=SIM["log"], stderr=subprocess.STDOUT)
    SIM["control"] = ports[0]
    deadline = time.time() + 15
    while True:
        check(SIM["proc"].poll() is None, "saas-sim exited: %s" % open(SIM["log"].name).read()[-500:])
        try:
            if sim_call("GET", "/_sim/health", timeout=2)[0] == 200:
                break
        except OSError:
            pass
        check(time.time() < deadline, "saas-sim did not start: %s" % open(SIM["log"].name).read()[-500:])
        time.sleep(0.2)
    st, _, doc = sim_call("GET", "/_sim/health")
    check(st == 200, "health %d" % st)
    SIM["idp"] = doc["services"]["identity-provider"]["port"]
    SIM["issuer"] = "http://127.0.0.1:%d" % SIM["idp"]
    SIM["redirect"] = "http://127.0.0.1:%d/auth/sso/callback" % R.port
    st, _, doc = sim_call("POST", "/_sim/oidc/clients", {"client_id": "pg-saas-" + RUN, "client_secret": SSO_SECRET,
                                                          "redirect_uris": [SIM["redirect"]]})
    check(st in (200, 201), "client not registered: %d %r" % (st, doc))
    for name, default in (("ann", True), ("ben", False), ("cid", False)):
        st, _, doc = sim_call("POST", "/_sim/oidc/users", {
            "sub": "%s-%s" % (name, RUN), "email": "%s@%s" % (name, SSO_DOMAIN), "given_name": name.title(),
            "family_name": "Provider", "email_verified": True, "default": default})
        check(st in (200, 201), "user %s not added: %d %r" % (name, st, doc))


def connection(**over):
    body = {"issuer": SIM["issuer"], "client_id": "pg-saas-" + RUN, "client_secret": SSO_SECRET,
            "redirect_uri": SIM["redirect"], "allowed_domains": [SSO_DOMAIN]}
    body.update(over)
    return {k: v for k, v in body.items() if v is not None}


@case
def sso_connection_is_managed_by_admins_and_its_secret_never_read_back():
    need("root")
    a = expect(register("ssoadmin", slug="sso-" + RUN), 201)
    F["sso_admin"], F["sso_org"] = a.doc["token"], a.doc["organization"]["id"]
    F["sso_slug"] = "sso-" + RUN
    admin = F["sso_admin"]
    expect(call("GET", "/sso/connection", admin), 404, "not_found")
    expect(call("GET", "/sso/connection"), 401, "unauthorized")
    expect(call("PUT", "/sso/connection", admin, connection(client_secret=None)), 400, "validation_failed",
           {"client_secret"})
    expect(call("PUT", "/sso/connection", admin, connection(issuer="ftp://x", allowed_domains=[])), 400,
           "validation_failed", {"issuer", "allowed_domains"})
    expect(call("PUT", "/sso/connection", admin, connection(allowed_domains=["Not A Domain"], default_role="super_admin",
                                                            password_login_allowed="no", extra=1)), 400,
           "validation_failed", {"allowed_domains", "default_role", "password_login_allowed", "extra"})
    expect(call("PUT", "/sso/connection", admin, "[]"), 400)
    check(sql("SELECT count(*) FROM saas.sso_connections WHERE org_id = '%s'" % F["sso_org"]) == "0",
          "a refused PUT wrote a connection")
    a = expect(call("PUT", "/sso/connection", admin, connection()), 201)
    check(a.doc["issuer"] == SIM["issuer"] and a.doc["allowed_domains"] == [SSO_DOMAIN]
          and a.doc["default_role"] == "user" and a.doc["password_login_allowed"] is True, "answer %r" % a.doc)
    check(SSO_SECRET not in a.data.decode(), "the secret came back")
    # Replaced without the secret: the secret stays (the flows below use it).
    a = expect(call("PUT", "/sso/connection", admin, connection(client_secret=None)), 200)
    a = expect(call("GET", "/sso/connection", admin), 200)
    check("client_secret" not in a.doc and SSO_SECRET not in a.data.decode(), "GET shows the secret: %r" % a.doc)
    check(SSO_SECRET not in sql("SELECT coalesce(string_agg(changes::text, ''), '') FROM saas.audit_log"
                                " WHERE org_id = '%s'" % F["sso_org"]), "the secret is in the audit log")
    # saas_api cannot read the secrets, whatever it does in SQL.
    out = sql("DO $$ BEGIN SET LOCAL ROLE saas_api; PERFORM * FROM saas._sso_secrets;"
              " RAISE EXCEPTION 'read'; EXCEPTION WHEN insufficient_privilege THEN NULL; END $$; SELECT 'refused'")
    check(out.splitlines()[-1:] == ["refused"], "saas_api read saas._sso_secrets: %r" % out)
    # A user of the organization, and another organization's admin, do not reach it.
    u = expect(call("POST", "/users", admin, {"email": email("ssouser"), "first_name": "U", "last_name": "Ser",
                                              "role": "user", "password": PASSWORD}), 201)
    tok = expect(login(email("ssouser")), 200).doc["token"]
    expect(call("GET", "/sso/connection", tok), 403, "forbidden")
    expect(call("PUT", "/sso/connection", tok, connection()), 403, "forbidden")
    expect(call("DELETE", "/sso/connection", tok), 403, "forbidden")
    other = expect(register("ssoother"), 201).doc["token"]
    expect(call("GET", "/sso/connection", other), 404, "not_found")
    expect(call("DELETE", "/sso/connection", other), 404, "not_found")
    check(sql("SELECT count(*) FROM saas.sso_connections WHERE org_id = '%s'" % F["sso_org"]) == "1",
          "another organization's admin removed the connection")
    expect(call("POST", "/sso/connection", admin, connection()), 405, "method_not_allowed")
    F["sso_user_id"] = u.doc["id"]


@case
def sso_full_redirect_flow_provisions_the_user_and_issues_a_session():
    slug = need("sso_slug")
    a = expect(start(slug), 302)
    loc = a.h("location")
    check(a.doc["authorization_url"] == loc, "body and Location differ")
    q = params_of(loc)
    check(q.get("response_type") == "code" and q.get("client_id") == "pg-saas-" + RUN
          and q.get("redirect_uri") == SIM["redirect"] and q.get("code_challenge_method") == "S256"
          and len(q.get("code_challenge", "")) == 43 and q.get("nonce") and "openid" in q.get("scope", "").split(),
          "authorize parameters %r" % q)
    check(q["state"].startswith(F["sso_org"] + "."), "the state does not carry the organization: %r" % q["state"])
    cookie = a.h("set-cookie")
    check(cookie and re.fullmatch(r"__Host-saas_sso=[A-Za-z0-9_-]{43}; Max-Age=600; Path=/; HttpOnly; Secure; SameSite=Lax",
                                  cookie), "the start route's cookie: %r" % cookie)
    check(sql("SELECT count(*) FROM saas._sso_requests WHERE state_hash = sha256('%s.%s'::bytea)"
              % (q["state"], JAR["__Host-saas_sso"])) == "1",
          "the state is not stored as the SHA-256 of the state and the browser's cookie")
    target = authorize(loc)
    a = expect(call("GET", target), 200)
    check(a.h("set-cookie") and a.h("set-cookie").startswith("__Host-saas_sso=; Max-Age=0;"),
          "the callback does not clear the cookie: %r" % a.h("set-cookie"))
    check(a.doc["token_type"] == "Bearer" and a.doc["user"]["email"] == "ann@" + SSO_DOMAIN
          and a.doc["user"]["role"] == "user" and a.doc["user"]["org_id"] == F["sso_org"]
          and a.doc["user"]["first_name"] == "Ann" and a.doc["user"]["last_login"], "session %r" % a.doc)
    F["sso_ann"], F["sso_ann_id"] = a.doc["token"], a.doc["user"]["id"]
    me = expect(call("GET", "/users/%s" % F["sso_ann_id"], F["sso_ann"]), 200)
    check(me.doc["email"] == "ann@" + SSO_DOMAIN, "the token does not act as the user")
    # The same callback again: the state is used up.
    expect(call("GET", target), 400, "validation_failed", {"state"})
    # A second sign-in finds the same user (linked by subject), not a new one.
    a = expect(flow(slug), 200)
    check(a.doc["user"]["id"] == F["sso_ann_id"], "a second sign-in made another user")
    check(sql("SELECT count(*) FROM saas.users WHERE org_id = '%s' AND email = 'ann@%s'" % (F["sso_org"], SSO_DOMAIN)) == "1",
          "duplicate user")
    # login_hint picks another user of the provider: provisioned with the connection's role.
    expect(call("PUT", "/sso/connection", F["sso_admin"], connection(client_secret=None, default_role="admin")), 200)
    a = expect(flow(slug, login_hint="ben@" + SSO_DOMAIN), 200)
    check(a.doc["user"]["email"] == "ben@" + SSO_DOMAIN and a.doc["user"]["role"] == "admin", "ben %r" % a.doc["user"])
    expect(call("PUT", "/sso/connection", F["sso_admin"], connection(client_secret=None)), 200)


@case
def sso_every_spoiled_id_token_is_refused():
    slug = need("sso_slug")
    before = sql("SELECT count(*) FROM saas.users WHERE org_id = '%s'" % F["sso_org"])
    try:
        for fault, why in (("bad_signature", "signature"), ("unknown_kid", "key"), ("alg_none", "RS256"),
                           ("alg_hs256", "RS256"), ("wrong_iss", "issuer"), ("wrong_aud", "client"),
                           ("expired", "expired"), ("future_iat", "issue time"), ("no_nonce", "nonce"),
                           ("wrong_nonce", "nonce")):
            idp_fault(fault)
            a = flow(slug, login_hint="cid@" + SSO_DOMAIN)
            refused_without_session(a, 401, "unauthorized", fault)
            check(why in a.doc["error"]["message"], "%s: the message does not say why: %r" % (fault, a.doc))
    finally:
        idp_fault("none")
    check(sql("SELECT count(*) FROM saas.users WHERE org_id = '%s'" % F["sso_org"]) == before,
          "a refused sign-in created a user")
    expect(flow(slug, login_hint="cid@" + SSO_DOMAIN), 200)


@case
def sso_wrong_state_replayed_nonce_and_reused_code_are_refused():
    slug = need("sso_slug")
    target = authorize(expect(start(slug), 302).h("location"))
    p = params_of(target)
    code, state = p["code"], p["state"]
    cb = "/auth/sso/callback?"
    # states that are not this sign-in's
    flipped = state[:-1] + ("A" if state[-1] != "A" else "B")
    for bad in (flipped, state.split(".")[0] + ".", str(uuid.uuid4()) + state[36:], "x" * 80, ""):
        refused_without_session(call("GET", cb + urllib.parse.urlencode({"code": code, "state": bad})), 400,
                                "validation_failed", "state %r" % bad)
    refused_without_session(call("GET", cb + urllib.parse.urlencode({"code": code})), 400, "validation_failed",
                            "no state")
    refused_without_session(call("GET", cb + urllib.parse.urlencode({"state": state})), 400, "validation_failed",
                            "no code")
    refused_without_session(call("GET", cb + urllib.parse.urlencode({"state": state, "error": "access_denied"})),
                            401, "unauthorized", "provider error")
    # the genuine callback still works once
    expect(call("GET", target), 200)
    # the code again, with a fresh sign-in's state: the provider refuses it (single use, PKCE)
    t2 = params_of(authorize(expect(start(slug), 302).h("location")))
    refused_without_session(call("GET", cb + urllib.parse.urlencode({"code": code, "state": t2["state"]})), 401,
                            "unauthorized", "reused code")
    # a replayed nonce: a new sign-in whose authorize request carries an earlier sign-in's nonce
    first = params_of(expect(start(slug), 302).h("location"))
    second = expect(start(slug), 302).h("location")
    target = authorize(second, nonce=first["nonce"])
    a = call("GET", target)
    refused_without_session(a, 401, "unauthorized", "replayed nonce")
    check("nonce" in a.doc["error"]["message"], "replayed nonce: %r" % a.doc)
    # a code issued for another PKCE challenge (an injected code) is refused by the provider
    target = authorize(expect(start(slug), 302).h("location"), code_challenge=b64url(hashlib.sha256(b"x").digest()))
    refused_without_session(call("GET", target), 401, "unauthorized", "other challenge")


@case
def sso_callback_only_in_the_browser_that_started_it():
    """Login CSRF: a callback link (code and state) is worth nothing without the start's cookie."""
    slug = need("sso_slug")
    # The attacker starts a sign-in in its own browser and gets as far as the provider's answer.
    target = authorize(expect(start(slug), 302).h("location"))
    attacker_cookie = JAR["__Host-saas_sso"]
    # The victim's browser: no cookie, or a cookie of a sign-in of its own.
    a = call("GET", target, headers={"Cookie": "theme=dark"})
    refused_without_session(a, 400, "validation_failed", "no cookie")
    check("browser that started it" in a.doc["error"]["message"], "no cookie: %r" % a.doc)
    expect(start(slug), 302)
    victim_cookie = JAR["__Host-saas_sso"]
    check(victim_cookie != attacker_cookie, "two sign-ins got one cookie")
    for bad in (victim_cookie, attacker_cookie[:-1] + ("A" if attacker_cookie[-1] != "A" else "B"),
                attacker_cookie + "x", "%s; __Host-saas_sso=%s" % (victim_cookie, attacker_cookie)):
        refused_without_session(call("GET", target, headers={"Cookie": "__Host-saas_sso=" + bad}), 400,
                                "validation_failed", "cookie %r" % bad)
    # Refusals used nothing up: the browser that started it still signs in, once.
    expect(call("GET", target, headers={"Cookie": "__Host-saas_sso=" + attacker_cookie}), 200)
    expect(call("GET", target, headers={"Cookie": "__Host-saas_sso=" + attacker_cookie}), 400, "validation_failed")


@case
def sso_only_providers_the_operator_allows_are_called():
    """saas.sso_allowed_origins: the issuer an admin names, and every URL the server calls."""
    admin, slug = need("sso_admin", "sso_slug")
    for issuer in ("http://169.254.169.254", "http://127.0.0.1:%d@evil.example" % SIM["idp"],
                   "https://127.0.0.1:%d" % SIM["idp"], "http://localhost:%d" % SIM["idp"]):
        a = expect(call("PUT", "/sso/connection", admin, connection(issuer=issuer, client_secret=None)), 400,
                   "validation_failed", {"issuer"})
        check("saas.sso_allowed_origins" in json.dumps(a.doc), "the refusal does not name the setting: %r" % a.doc)
    check(sql("SELECT issuer FROM saas.sso_connections WHERE org_id = '%s'" % F["sso_org"]) == SIM["issuer"],
          "a refused issuer was stored")
    # The setting taken away later: the server calls nothing, the sign-in is a 503 at once.
    out = sql("SET saas.sso_allowed_origins = 'https://idp.example'; SELECT status || ' ' ||"
              " (body::jsonb->'error'->>'code') FROM saas.http('GET', '/auth/sso/%s/start', '{}', NULL)" % slug)
    check(out.splitlines()[-1] == "503 service_unavailable", "start with the origin no longer allowed: %r" % out)
    # The setting's form is checked when it is set.
    for bad in ("ftp://x.example", "https://x.example/path", "https://u@x.example", "x.example"):
        out = sql("DO $$ BEGIN SET saas.sso_allowed_origins = '%s'; RAISE EXCEPTION 'accepted'; EXCEPTION"
                  " WHEN invalid_parameter_value THEN NULL; END $$; SELECT 'refused'" % bad)
        check(out.splitlines()[-1:] == ["refused"], "the setting accepted %r: %r" % (bad, out))
    # Still works with the setting as the suite sets it.
    expect(flow(slug), 200)


@case
def sso_key_rotation_is_followed():
    slug = need("sso_slug")
    st, _, doc = sim_call("POST", "/_sim/oidc/rotate", {})
    check(st == 200, "rotate %d %r" % (st, doc))
    expect(flow(slug), 200)
    st, _, doc = sim_call("POST", "/_sim/oidc/rotate", {"drop_old": True})
    check(st == 200 and len(doc["kids"]) == 1, "rotate drop_old %d %r" % (st, doc))
    expect(flow(slug), 200)


@case
def sso_provider_down_or_hanging_is_a_clear_503():
    slug = need("sso_slug")
    target = authorize(expect(start(slug), 302).h("location"))
    try:
        idp_mode("down")
        t0 = time.time()
        a = call("GET", target)
        refused_without_session(a, 503, "service_unavailable", "provider down")
        check(time.time() - t0 < 8, "the 503 took %.1fs" % (time.time() - t0))
        idp_mode("hang")
        t0 = time.time()
        a = call("GET", target)
        refused_without_session(a, 503, "service_unavailable", "provider hanging")
        check(time.time() - t0 < 10, "the 503 took %.1fs" % (time.time() - t0))
    finally:
        idp_mode("ok")
    # The provider back: a new sign-in works.
    expect(flow(slug), 200)
    # An organization whose provider cannot be reached at all: the start is a 503 too, at once.
    t = expect(register("ssodown", slug="ssodown-" + RUN), 201).doc["token"]
    dead = free_port()
    expect(call("PUT", "/sso/connection", t, connection(issuer="http://127.0.0.1:%d" % dead)), 201)
    t0 = time.time()
    refused_without_session(start("ssodown-" + RUN), 503, "service_unavailable", "unreachable issuer")
    check(time.time() - t0 < 8, "the 503 took %.1fs" % (time.time() - t0))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


@case
def sso_domains_employee_limit_and_inactive_users_are_enforced():
    slug = need("sso_slug")
    org, admin = F["sso_org"], F["sso_admin"]
    # a provider user outside the allowed domains
    st, _, doc = sim_call("POST", "/_sim/oidc/users", {"sub": "eve-" + RUN, "email": "eve@elsewhere-%s.test" % RUN,
                                                       "given_name": "Eve", "family_name": "X",
                                                       "email_verified": True})
    check(st in (200, 201), "eve %d %r" % (st, doc))
    refused_without_session(flow(slug, login_hint="eve@elsewhere-%s.test" % RUN), 403, "forbidden", "domain")
    # an unverified email
    st, _, doc = sim_call("POST", "/_sim/oidc/users", {"sub": "uv-" + RUN, "email": "uv@" + SSO_DOMAIN,
                                                       "given_name": "Un", "family_name": "Verified",
                                                       "email_verified": False})
    check(st in (200, 201), "uv %d %r" % (st, doc))
    refused_without_session(flow(slug, login_hint="uv@" + SSO_DOMAIN), 401, "unauthorized", "unverified email")
    # employee_limit: no room, no new user
    st, _, doc = sim_call("POST", "/_sim/oidc/users", {"sub": "dan-" + RUN, "email": "dan@" + SSO_DOMAIN,
                                                       "given_name": "Dan", "family_name": "Full",
                                                       "email_verified": True})
    active = int(sql("SELECT count(*) FROM saas.users WHERE org_id = '%s' AND status = 'active'" % org))
    expect(call("PUT", "/organizations/%s" % org, F["root"], {"employee_limit": active}), 200)
    refused_without_session(flow(slug, login_hint="dan@" + SSO_DOMAIN), 409, "conflict", "employee_limit")
    check(sql("SELECT count(*) FROM saas.users WHERE org_id = '%s' AND email = 'dan@%s'" % (org, SSO_DOMAIN)) == "0",
          "created beyond employee_limit")
    expect(call("PUT", "/organizations/%s" % org, F["root"], {"employee_limit": active + 10}), 200)
    expect(flow(slug, login_hint="dan@" + SSO_DOMAIN), 200)
    # a deactivated user cannot sign in with SSO either
    expect(call("PUT", "/users/%s" % need("sso_ann_id"), admin, {"status": "inactive"}), 200)
    refused_without_session(flow(slug), 403, "forbidden", "inactive user")
    expect(call("PUT", "/users/%s" % F["sso_ann_id"], admin, {"status": "active"}), 200)
    # a disabled connection signs nobody in
    expect(call("PUT", "/sso/connection", admin, connection(client_secret=None, enabled=False)), 200)
    expect(start(slug), 404, "not_found")
    expect(call("PUT", "/sso/connection", admin, connection(client_secret=None)), 200)


@case
def sso_password_login_refused_when_the_organization_turns_it_off():
    admin = need("sso_admin")
    expect(login(email("ssouser")), 200)
    expect(call("PUT", "/sso/connection", admin, connection(client_secret=None, password_login_allowed=False)), 200)
    a = expect(login(email("ssouser")), 403, "forbidden")
    check("single sign-on" in a.doc["error"]["message"], "message %r" % a.doc)
    expect(login(email("ssoadmin")), 403, "forbidden")
    # a wrong password is still the same 401 as ever (nothing learned without the password)
    expect(login(email("ssouser"), "wrong password entirely"), 401, "unauthorized")
    # SSO still signs in
    expect(flow(F["sso_slug"]), 200)
    expect(call("PUT", "/sso/connection", admin, connection(client_secret=None, password_login_allowed=True)), 200)
    expect(login(email("ssouser")), 200)


@case
def sso_start_route_errors():
    expect(start("no-such-org-" + RUN), 404, "not_found")
    expect(call("POST", "/auth/sso/%s/start" % need("sso_slug")), 405, "method_not_allowed")
    expect(call("GET", "/auth/sso/%s/start?bogus=1" % F["sso_slug"]), 400)
    expect(call("POST", "/auth/sso/callback"), 405, "method_not_allowed")
    # removing the connection ends it: sign-ins under way are gone with it
    target = authorize(expect(start(F["sso_slug"]), 302).h("location"))
    expect(call("DELETE", "/sso/connection", F["sso_admin"]), 204)
    expect(call("GET", "/sso/connection", F["sso_admin"]), 404, "not_found")
    check(sql("SELECT count(*) FROM saas._sso_secrets WHERE org_id = '%s'" % F["sso_org"]) == "0", "secret kept")
    refused_without_session(call("GET", target), 400, "validation_failed", "connection removed")
    expect(start(F["sso_slug"]), 404, "not_found")
    sim_stop()


# ---------------------------------------------------------------------------------------------
# the verifier alone, in SQL (saas._oidc_verify, owner only), with keys made here by openssl

def _openssl(*args, data=None):
    r = subprocess.run(["openssl"] + list(args), input=data, capture_output=True)
    check(r.returncode == 0, "openssl %s: %s" % (" ".join(args), r.stderr[-300:]))
    return r.stdout


def _rsa_key(bits, path):
    _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:%d" % bits, "-out", path)
    n = bytes.fromhex(_openssl("rsa", "-in", path, "-noout", "-modulus").decode().strip().split("=", 1)[1])
    pem = _openssl("rsa", "-in", path, "-pubout")
    return {"path": path, "n": b64url(n), "e": b64url(b"\x01\x00\x01"), "pem": pem}


def _rs256(key, header, claims):
    h = b64url(json.dumps(header, separators=(",", ":")).encode())
    c = b64url(json.dumps(claims, separators=(",", ":")).encode())
    sig = _openssl("dgst", "-sha256", "-sign", key["path"], data=(h + "." + c).encode())
    return h + "." + c + "." + b64url(sig)


def _verify(token, jwks, iss="https://idp.example", aud="client-1", nonce="n-1"):
    q = "SELECT saas._oidc_verify(%s, %s::jsonb, %s, %s, %s)->>'sub'" % tuple(
        "'" + str(x).replace("'", "''") + "'" for x in (token, json.dumps(jwks), iss, aud, nonce))
    try:
        return sql(q), None
    except RuntimeError as e:
        return None, str(e)


@case
def sso_id_token_verifier_in_sql_refuses_every_forgery():
    d = os.path.join(WORK, "sso-keys")
    os.makedirs(d, exist_ok=True)
    k1, k2, small = _rsa_key(2048, d + "/k1.pem"), _rsa_key(2048, d + "/k2.pem"), _rsa_key(1024, d + "/s.pem")
    jwk = lambda k, kid, **x: dict({"kty": "RSA", "kid": kid, "n": k["n"], "e": k["e"]}, **x)
    jwks = {"keys": [jwk(k1, "one", use="sig", alg="RS256"), jwk(small, "small")]}
    now = int(time.time())
    good = {"iss": "https://idp.example", "aud": "client-1", "sub": "user-1", "nonce": "n-1",
            "iat": now, "exp": now + 300, "email": "u@example.com"}
    hdr = {"alg": "RS256", "kid": "one", "typ": "JWT"}
    sub, err = _verify(_rs256(k1, hdr, good), jwks)
    check(sub == "user-1", "a good token was refused: %s" % err)
    sub, err = _verify(_rs256(k1, hdr, dict(good, aud=["client-1"])), jwks)
    check(sub == "user-1", "aud as a one-element list was refused: %s" % err)

    def refused(token, why, **kw):
        sub, err = _verify(token, kw.pop("keys", jwks), **kw)
        check(sub is None and err and why in err, "expected a refusal saying %r, got %r / %r" % (why, sub, err))

    h_, c_, s_ = _rs256(k1, hdr, good).split(".")
    refused(_rs256(k2, hdr, good), "signature")                            # another key, same kid
    refused(h_ + "." + b64url(json.dumps(dict(good, sub="admin")).encode()) + "." + s_, "signature")
    refused(h_ + "." + c_ + "." + s_[:-4] + ("AAAA" if s_[-4:] != "AAAA" else "BBBB"), "signature")
    refused(_rs256(k1, dict(hdr, kid="nope"), good), "does not publish")
    refused(_rs256(k1, {"alg": "RS256"}, good), "does not publish")       # no kid
    refused(_rs256(small, dict(hdr, kid="small"), good), "signature")     # under 2048 bits
    refused(_rs256(k1, dict(hdr, alg="RS512"), good), "RS256")
    none = b64url(json.dumps({"alg": "none", "kid": "one"}).encode()) + "." + c_ + "."
    refused(none, "RS256")
    # HS256 keyed with the provider's public key (algorithm confusion)
    hh = b64url(json.dumps({"alg": "HS256", "kid": "one"}).encode())
    for secret in (k1["pem"], k1["n"].encode()):
        mac = hmac.new(secret, (hh + "." + c_).encode(), hashlib.sha256).digest()
        refused(hh + "." + c_ + "." + b64url(mac), "RS256")
    refused(_rs256(k1, hdr, good), "issuer", iss="https://other.example")
    refused(_rs256(k1, hdr, dict(good, iss="https://idp.example/")), "issuer")
    refused(_rs256(k1, hdr, good), "client", aud="client-2")
    refused(_rs256(k1, hdr, dict(good, aud=["client-1", "client-2"])), "client")   # several, no azp
    sub, err = _verify(_rs256(k1, hdr, dict(good, aud=["client-1", "client-2"], azp="client-1")), jwks)
    check(sub == "user-1", "aud list with azp refused: %s" % err)
    refused(_rs256(k1, hdr, dict(good, exp=now - 120)), "expired")
    refused(_rs256(k1, hdr, dict(good, iat=now + 600, exp=now + 900)), "issue time")
    refused(_rs256(k1, hdr, dict(good, iat=now - 3600, exp=now + 300)), "issue time")
    refused(_rs256(k1, hdr, {k: v for k, v in good.items() if k != "exp"}), "lacks")
    refused(_rs256(k1, hdr, {k: v for k, v in good.items() if k != "nonce"}), "nonce")
    refused(_rs256(k1, hdr, good), "nonce", nonce="n-2")
    refused(_rs256(k1, hdr, dict(good, nonce="n-1 ")), "nonce")
    refused(_rs256(k1, hdr, dict(good, sub="")), "lacks")
    # a JWK that is not for RS256 signatures
    refused(_rs256(k1, hdr, good), "usable", keys={"keys": [jwk(k1, "one", use="enc")]})
    refused(_rs256(k1, hdr, good), "usable", keys={"keys": [jwk(k1, "one", alg="RS384")]})
    refused(_rs256(k1, hdr, good), "usable", keys={"keys": [dict(jwk(k1, "one"), kty="EC")]})
    refused(_rs256(k1, hdr, good), "does not publish", keys={"keys": "x"})
    for junk in ("", "a.b", "a.b.c.d", "..", "x" * 20000, "\u00e9.\u00e9.\u00e9", h_ + ".!!!." + s_):
        refused(junk, "")
    # the function is the owner's: saas_api cannot call it
    out = sql("DO $$ BEGIN SET LOCAL ROLE saas_api; PERFORM saas._oidc_verify('', '{}', '', '', '');"
              " RAISE EXCEPTION 'called'; EXCEPTION WHEN insufficient_privilege THEN NULL; END $$; SELECT 'refused'")
    check(out.splitlines()[-1:] == ["refused"], "saas_api may call saas._oidc_verify: %r" % out)
