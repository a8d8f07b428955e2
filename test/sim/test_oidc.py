"""saas-sim: the identity-provider (a simulated OpenID Connect provider).

A client written here with the standard library drives the authorization code
flow with PKCE S256; id_token signatures are checked against the JWKS by an
independent RS256 verifier (RSASSA-PKCS1-v1_5 with SHA-256, RFC 8017 §8.2.2,
in Python integers) and, once per run, by the openssl command line tool."""

import base64
import hashlib
import hmac
import http.client
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse

import simtest
from simtest import check, eq, is_error_shape

IDP = "identity-provider"
CLIENT = "app-web"
SECRET = "s3cret-for-app-web"
REDIRECT = "http://127.0.0.1:9/sso/callback"
JOHN_SUB = "11111111-2222-3333-4444-555555555555"
ALICE_SUB = "00u123456789abcdef"


# ---- helpers -----------------------------------------------------------------

def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def pkce():
    verifier = b64url(os.urandom(32))
    return verifier, b64url(hashlib.sha256(verifier.encode()).digest())


def jwt_parts(token):
    h, p, s = token.split(".")
    return json.loads(b64url_decode(h)), json.loads(b64url_decode(p)), b64url_decode(s), (h + "." + p).encode()


SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


def rs256_verify(jwk, signing_input, sig):
    """RSASSA-PKCS1-v1_5 verification with SHA-256, written from RFC 8017."""
    n = int.from_bytes(b64url_decode(jwk["n"]), "big")
    e = int.from_bytes(b64url_decode(jwk["e"]), "big")
    k = (n.bit_length() + 7) // 8
    if len(sig) != k:
        return False
    s = int.from_bytes(sig, "big")
    if s >= n:
        return False
    em = pow(s, e, n).to_bytes(k, "big")
    t = SHA256_DIGEST_INFO + hashlib.sha256(signing_input).digest()
    expected = b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t
    return hmac.compare_digest(em, expected)


def der_len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def der(tag, body):
    return bytes([tag]) + der_len(len(body)) + body


def der_int(x):
    return der(0x02, x.to_bytes(x.bit_length() // 8 + 1, "big"))


def jwk_pem(jwk):
    """The SubjectPublicKeyInfo PEM of an RSA JWK, laid out as OpenSSL writes it."""
    n = int.from_bytes(b64url_decode(jwk["n"]), "big")
    e = int.from_bytes(b64url_decode(jwk["e"]), "big")
    alg = der(0x30, der(0x06, bytes.fromhex("2a864886f70d010101")) + b"\x05\x00")
    spki = der(0x30, alg + der(0x03, b"\x00" + der(0x30, der_int(n) + der_int(e))))
    b = base64.b64encode(spki).decode()
    lines = [b[i:i + 64] for i in range(0, len(b), 64)]
    return "-----BEGIN PUBLIC KEY-----\n" + "\n".join(lines) + "\n-----END PUBLIC KEY-----\n"


def openssl_verify(jwk, signing_input, sig):
    """The same check by the openssl tool, from a PEM built out of n and e."""
    d = tempfile.mkdtemp(prefix="oidc_verify.")
    try:
        for name, data in (("key.pem", jwk_pem(jwk).encode()), ("sig", sig), ("data", signing_input)):
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
        r = subprocess.run(["openssl", "dgst", "-sha256", "-verify", os.path.join(d, "key.pem"),
                            "-signature", os.path.join(d, "sig"), os.path.join(d, "data")],
                           capture_output=True, timeout=20)
        return r.returncode == 0 and b"Verified OK" in r.stdout
    finally:
        shutil.rmtree(d, ignore_errors=True)


def idp(ctx, method, path, body=None, headers=None, raw_body=None, timeout=10.0):
    return ctx.sim.api(IDP, method, path, body, headers, timeout, raw_body)


def register(ctx, client_id=CLIENT, secret=SECRET, redirects=(REDIRECT,)):
    r = ctx.sim.ctl("POST", "/_sim/oidc/clients",
                    {"client_id": client_id, "client_secret": secret, "redirect_uris": list(redirects)})
    check(r.status in (200, 201), "client registration: %r" % r)
    return r


def authorize(ctx, client_id=CLIENT, redirect_uri=REDIRECT, state="st-1", nonce="n-1",
              challenge=None, scope="openid email profile", extra=None, omit=()):
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
              "scope": scope, "state": state, "nonce": nonce, "code_challenge": challenge,
              "code_challenge_method": "S256"}
    params.update(extra or {})
    q = urllib.parse.urlencode([(k, v) for k, v in params.items() if v is not None and k not in omit])
    return idp(ctx, "GET", "/authorize?" + q)


def redirect_params(r):
    """The query of a 302's Location, as a dict, and the Location without its query."""
    eq(r.status, 302, "a redirect: %r" % r)
    loc = r.headers["location"]
    base, _, query = loc.partition("?")
    return base, dict(urllib.parse.parse_qsl(query, keep_blank_values=True))


def token(ctx, code, verifier, redirect_uri=REDIRECT, client_id=CLIENT, secret=SECRET, how="basic",
          extra=None):
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "code_verifier": verifier}
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if how == "basic":
        cred = urllib.parse.quote(client_id, safe="") + ":" + urllib.parse.quote(secret, safe="")
        headers["Authorization"] = "Basic " + base64.b64encode(cred.encode()).decode()
    elif how == "post":
        form["client_id"] = client_id
        form["client_secret"] = secret
    form.update(extra or {})
    body = urllib.parse.urlencode([(k, v) for k, v in form.items() if v is not None]).encode()
    return idp(ctx, "POST", "/token", headers=headers, raw_body=body)


def code_for(ctx, **kw):
    verifier, challenge = pkce()
    r = authorize(ctx, challenge=challenge, **kw)
    _, q = redirect_params(r)
    check("code" in q, "a code in %r" % r.headers.get("location"))
    return q["code"], verifier


def login(ctx, how="basic", **kw):
    code, verifier = code_for(ctx, **kw)
    r = token(ctx, code, verifier, how=how)
    eq(r.status, 200, "token: %r" % r)
    return r


def jwks(ctx):
    r = idp(ctx, "GET", "/jwks")
    eq(r.status, 200, "jwks")
    return {k["kid"]: k for k in r.json["keys"]}


def issuer(ctx):
    return "http://127.0.0.1:%d" % ctx.sim.port(IDP)


def oauth_error(r, status, error):
    return (r.status == status and isinstance(r.json, dict) and r.json.get("error") == error
            and isinstance(r.json.get("error_description"), str))


# ---- discovery and keys --------------------------------------------------------

def test_oidc_discovery_document_and_jwks(ctx):
    r = ctx.sim.ctl("GET", "/_sim/health")
    s = r.json["services"][IDP]
    eq((s["port"], s["listening"]), (ctx.sim.port(IDP), True), "health lists the provider")
    r = idp(ctx, "GET", "/.well-known/openid-configuration")
    eq(r.status, 200, "discovery")
    iss = issuer(ctx)
    d = r.json
    eq((d["issuer"], d["authorization_endpoint"], d["token_endpoint"], d["jwks_uri"], d["userinfo_endpoint"]),
       (iss, iss + "/authorize", iss + "/token", iss + "/jwks", iss + "/userinfo"), "endpoints")
    eq(d["response_types_supported"], ["code"], "response types")
    eq(d["grant_types_supported"], ["authorization_code"], "grant types")
    eq(d["id_token_signing_alg_values_supported"], ["RS256"], "algs")
    eq(d["code_challenge_methods_supported"], ["S256"], "pkce")
    eq(d["token_endpoint_auth_methods_supported"], ["client_secret_post", "client_secret_basic"], "auth methods")
    eq(d["scopes_supported"], ["openid", "email", "profile"], "scopes")
    eq(d["subject_types_supported"], ["public"], "subject types")
    r = idp(ctx, "GET", "/jwks")
    keys = r.json["keys"]
    eq(len(keys), 1, "one key at start")
    k = keys[0]
    eq(sorted(k), ["alg", "e", "kid", "kty", "n", "use"], "JWK members")
    eq((k["kty"], k["use"], k["alg"]), ("RSA", "sig", "RS256"), "RSA signing key")
    check("=" not in k["n"] + k["e"] and "+" not in k["n"] and "/" not in k["n"], "base64url without padding")
    eq(len(b64url_decode(k["n"])) * 8, 2048, "RSA 2048")
    eq(int.from_bytes(b64url_decode(k["e"]), "big"), 65537, "e")
    thumb = b64url(hashlib.sha256(('{"e":"%s","kty":"RSA","n":"%s"}' % (k["e"], k["n"])).encode()).digest())
    eq(k["kid"], thumb, "kid is the RFC 7638 thumbprint")
    eq(ctx.sim.ctl("GET", "/_sim/oidc").json["kids"], [k["kid"]], "control shows the kid")
    r = idp(ctx, "POST", "/jwks")
    eq((r.status, r.headers.get("allow")), (405, "GET"), "405 with Allow")
    check(oauth_error(idp(ctx, "GET", "/nope"), 404, "not_found"), "unknown path")


# ---- the flow --------------------------------------------------------------------

def test_oidc_code_flow_with_pkce_and_a_verified_id_token(ctx):
    register(ctx)
    verifier, challenge = pkce()
    r = authorize(ctx, challenge=challenge, state="xyz 1/2", nonce="nonce-abc")
    base, q = redirect_params(r)
    eq(base, REDIRECT, "back to the redirect_uri")
    eq(sorted(q), ["code", "state"], "code and state only")
    eq(q["state"], "xyz 1/2", "state echoed (and encoded)")
    eq(ctx.sim.ctl("GET", "/_sim/oidc").json["codes_issued"], 1, "one code issued")
    t0 = int(time.time())
    r = token(ctx, q["code"], verifier)
    eq(r.status, 200, "token: %r" % r)
    eq((r.headers.get("cache-control"), r.headers.get("pragma")), ("no-store", "no-cache"), "no-store")
    t = r.json
    eq(sorted(t), ["access_token", "expires_in", "id_token", "scope", "token_type"], "token members")
    eq((t["token_type"], t["expires_in"], t["scope"]), ("Bearer", 3600, "openid email profile"), "token fields")
    header, claims, sig, signing_input = jwt_parts(t["id_token"])
    keys = jwks(ctx)
    eq(header, {"alg": "RS256", "kid": list(keys)[0], "typ": "JWT"}, "header")
    check(rs256_verify(keys[header["kid"]], signing_input, sig), "the RS256 signature verifies with the JWKS")
    check(openssl_verify(keys[header["kid"]], signing_input, sig), "openssl agrees")
    bad = bytearray(signing_input)
    bad[-1] ^= 1
    check(not rs256_verify(keys[header["kid"]], bytes(bad), sig), "the verifier refuses a changed payload")
    check(not openssl_verify(keys[header["kid"]], bytes(bad), sig), "openssl too")
    eq((claims["iss"], claims["aud"], claims["sub"], claims["nonce"]),
       (issuer(ctx), CLIENT, JOHN_SUB, "nonce-abc"), "iss, aud, sub, nonce")
    eq((claims["email"], claims["email_verified"], claims["name"], claims["given_name"], claims["family_name"]),
       ("john.doe@techcorp.com", True, "John Doe", "John", "Doe"), "the default user, as in sso_responses.json")
    eq(claims["exp"] - claims["iat"], 300, "exp = iat + 300")
    check(abs(claims["iat"] - t0) <= 2, "iat is now")
    # userinfo with the access token
    r = idp(ctx, "GET", "/userinfo", headers={"Authorization": "Bearer " + t["access_token"]})
    eq(r.status, 200, "userinfo: %r" % r)
    eq(r.json, {"sub": JOHN_SUB, "email": "john.doe@techcorp.com", "email_verified": True, "name": "John Doe",
                "given_name": "John", "family_name": "Doe"}, "userinfo claims")


def test_oidc_client_secret_post_login_hint_and_scopes(ctx):
    register(ctx)
    r = login(ctx, how="post", scope="openid email", nonce=None,
              extra={"login_hint": "Alice.Johnson@startupxyz.com"})
    _, claims, _, _ = jwt_parts(r.json["id_token"])
    eq((claims["sub"], claims["email"]), (ALICE_SUB, "alice.johnson@startupxyz.com"), "login_hint picks Alice")
    check("nonce" not in claims, "no nonce asked, none given")
    eq(r.json["scope"], "openid email", "granted scope")
    u = idp(ctx, "POST", "/userinfo", headers={"Authorization": "Bearer " + r.json["access_token"]}).json
    eq(u, {"sub": ALICE_SUB, "email": "alice.johnson@startupxyz.com", "email_verified": True},
       "userinfo follows the scope")
    r = login(ctx, extra={"login_hint": "nobody@example.com"})
    eq(jwt_parts(r.json["id_token"])[1]["sub"], JOHN_SUB, "an unknown hint signs in the default user")
    # a configured user, made the default
    r = ctx.sim.ctl("POST", "/_sim/oidc/users", {"sub": "u-42", "email": "grace@techcorp.com",
                                                  "given_name": "Grace", "family_name": "Hopper",
                                                  "email_verified": False, "default": True})
    eq(r.status, 201, "user added: %r" % r)
    _, claims, _, _ = jwt_parts(login(ctx).json["id_token"])
    eq((claims["sub"], claims["email_verified"], claims["name"]), ("u-42", False, "Grace Hopper"), "new default")


def test_oidc_code_is_single_use(ctx):
    register(ctx)
    code, verifier = code_for(ctx)
    first = token(ctx, code, verifier)
    eq(first.status, 200, "first use")
    bearer = {"Authorization": "Bearer " + first.json["access_token"]}
    eq(idp(ctx, "GET", "/userinfo", headers=bearer).status, 200, "its access token works")
    r = token(ctx, code, verifier)
    check(oauth_error(r, 400, "invalid_grant"), "second use refused: %r" % r)
    eq(r.headers.get("cache-control"), "no-store", "errors are not cached either")
    r = idp(ctx, "GET", "/userinfo", headers=bearer)
    check(oauth_error(r, 401, "invalid_token"), "the replay revoked the first access token: %r" % r)
    r = token(ctx, "not-a-code", verifier)
    check(oauth_error(r, 400, "invalid_grant"), "unknown code: %r" % r)


def test_oidc_wrong_verifier_is_refused_and_spends_the_code(ctx):
    register(ctx)
    code, verifier = code_for(ctx)
    other, _ = pkce()
    r = token(ctx, code, other)
    check(oauth_error(r, 400, "invalid_grant"), "a wrong verifier: %r" % r)
    check("code_verifier" in r.json["error_description"], "says why: %r" % r.json)
    r = token(ctx, code, verifier)
    check(oauth_error(r, 400, "invalid_grant"), "the code is spent by the failed attempt: %r" % r)
    code, verifier = code_for(ctx)
    r = token(ctx, code, verifier[:42])
    check(oauth_error(r, 400, "invalid_grant"), "a verifier too short: %r" % r)
    code, _ = code_for(ctx)
    r = token(ctx, code, None)
    check(oauth_error(r, 400, "invalid_request"), "no verifier: %r" % r)


def test_oidc_redirect_uri_rules(ctx):
    register(ctx, redirects=(REDIRECT, "http://127.0.0.1:9/other?x=1"))
    _, challenge = pkce()
    for uri in ("http://127.0.0.1:9/evil", REDIRECT + "/", REDIRECT.upper(), None):
        r = authorize(ctx, challenge=challenge, redirect_uri=uri)
        check(oauth_error(r, 400, "invalid_request"), "not registered %r: %r" % (uri, r))
        check("location" not in r.headers, "never a redirect to %r" % uri)
    r = authorize(ctx, client_id="nobody", challenge=challenge)
    check(oauth_error(r, 400, "invalid_client") and "location" not in r.headers, "unknown client: %r" % r)
    r = authorize(ctx, client_id=None, challenge=challenge)
    check(oauth_error(r, 400, "invalid_request"), "no client: %r" % r)
    # a redirect_uri with a query gets the code appended
    verifier, challenge = pkce()
    r = authorize(ctx, challenge=challenge, redirect_uri="http://127.0.0.1:9/other?x=1")
    eq(r.headers["location"].startswith("http://127.0.0.1:9/other?x=1&code="), True, "appended: %r" % r.headers)
    # the token request must repeat the authorize request's redirect_uri
    code = redirect_params(r)[1]["code"]
    r = token(ctx, code, verifier, redirect_uri=REDIRECT)
    check(oauth_error(r, 400, "invalid_grant"), "another registered redirect_uri: %r" % r)
    code, verifier = code_for(ctx)
    r = token(ctx, code, verifier, redirect_uri=None)
    check(oauth_error(r, 400, "invalid_request"), "none: %r" % r)


def test_oidc_authorize_problems_redirect_with_an_error(ctx):
    register(ctx)
    _, challenge = pkce()
    cases = [
        ({"extra": {"response_type": "token"}}, "unsupported_response_type"),
        ({"omit": ("response_type",)}, "invalid_request"),
        ({"omit": ("code_challenge",)}, "invalid_request"),
        ({"omit": ("code_challenge_method",)}, "invalid_request"),
        ({"extra": {"code_challenge_method": "plain"}}, "invalid_request"),
        ({"extra": {"code_challenge": "short"}}, "invalid_request"),
        ({"extra": {"code_challenge": "!" * 43}}, "invalid_request"),
        ({"scope": "email profile"}, "invalid_request"),
        ({"omit": ("scope",)}, "invalid_request"),
        ({"extra": {"nonce": "n" * 600}}, "invalid_request"),
    ]
    for kw, error in cases:
        r = authorize(ctx, challenge=challenge, state="s-9", **kw)
        base, q = redirect_params(r)
        eq((base, q.get("error"), q.get("state"), "code" in q), (REDIRECT, error, "s-9", False),
           "%r gives %s" % (kw, error))
    # a parameter given twice
    q = urllib.parse.urlencode([("response_type", "code"), ("client_id", CLIENT), ("redirect_uri", REDIRECT),
                                ("scope", "openid"), ("code_challenge", challenge),
                                ("code_challenge_method", "S256"), ("state", "a"), ("state", "b")])
    r = idp(ctx, "GET", "/authorize?" + q)
    eq(redirect_params(r)[1].get("error"), "invalid_request", "a repeated parameter")
    q = urllib.parse.urlencode([("client_id", CLIENT), ("client_id", "x"), ("redirect_uri", REDIRECT)])
    r = idp(ctx, "GET", "/authorize?" + q)
    check(oauth_error(r, 400, "invalid_request") and "location" not in r.headers, "a repeated client_id: %r" % r)
    # state and nonce may be absent
    r = authorize(ctx, challenge=challenge, state=None, nonce=None)
    _, q = redirect_params(r)
    eq(sorted(q), ["code"], "no state, no state back")
    eq(ctx.sim.ctl("GET", "/_sim/oidc").json["codes_issued"], 1, "only the good request issued a code")


def test_oidc_token_endpoint_client_authentication_and_errors(ctx):
    register(ctx)
    register(ctx, client_id="app-two", secret="two-secret")
    code, verifier = code_for(ctx)
    r = token(ctx, code, verifier, secret="wrong")
    check(oauth_error(r, 401, "invalid_client"), "a wrong secret: %r" % r)
    check(r.headers.get("www-authenticate", "").startswith("Basic"), "WWW-Authenticate: %r" % r.headers)
    r = token(ctx, code, verifier, secret=SECRET[:-1])
    check(oauth_error(r, 401, "invalid_client"), "a prefix of the secret: %r" % r)
    r = token(ctx, code, verifier, how="post", secret="wrong")
    check(oauth_error(r, 401, "invalid_client"), "a wrong secret (post): %r" % r)
    r = token(ctx, code, verifier, how="none")
    check(oauth_error(r, 401, "invalid_client"), "no client authentication: %r" % r)
    r = token(ctx, code, verifier, how="none", extra={"client_id": CLIENT})
    check(oauth_error(r, 401, "invalid_client"), "a client_id alone: %r" % r)
    r = token(ctx, code, verifier, extra={"client_secret": SECRET})
    check(oauth_error(r, 400, "invalid_request"), "two methods at once: %r" % r)
    r = token(ctx, code, verifier, client_id="app-two", secret="two-secret")
    check(oauth_error(r, 400, "invalid_grant"), "another client's code: %r" % r)
    r = token(ctx, code, verifier, extra={"grant_type": "client_credentials"})
    check(oauth_error(r, 400, "unsupported_grant_type"), "grant type: %r" % r)
    r = token(ctx, code, verifier, extra={"grant_type": None})
    check(oauth_error(r, 400, "invalid_request"), "no grant type: %r" % r)
    for auth in ("Basic !!!", "Basic " + base64.b64encode(b"no-colon").decode(), "Bearer x", "Basic "):
        r = idp(ctx, "POST", "/token", headers={"Authorization": auth,
                                                "Content-Type": "application/x-www-form-urlencoded"},
                raw_body=b"grant_type=authorization_code")
        check(oauth_error(r, 401, "invalid_client"), "Authorization %r: %r" % (auth, r))
    r = idp(ctx, "POST", "/token", body={"grant_type": "authorization_code"})
    check(oauth_error(r, 400, "invalid_request"), "JSON is not a form: %r" % r)
    for raw in (b"code=%zz", b"code=%00", b"a=1&a=2", b"&".join(b"p%d=1" % i for i in range(40))):
        r = idp(ctx, "POST", "/token", headers={"Content-Type": "application/x-www-form-urlencoded"}, raw_body=raw)
        check(oauth_error(r, 400, "invalid_request"), "bad form %r: %r" % (raw[:20], r))
    r = idp(ctx, "GET", "/token")
    eq((r.status, r.headers.get("allow")), (405, "POST"), "GET /token")
    # after all that the code still works: nothing above was an authenticated attempt on it
    eq(token(ctx, code, verifier).status, 200, "the code survives failed client authentication")


def test_oidc_userinfo_needs_a_valid_access_token(ctx):
    register(ctx)
    r = idp(ctx, "GET", "/userinfo")
    eq(r.status, 401, "no token")
    check(r.headers.get("www-authenticate", "").startswith("Bearer"), "Bearer challenge")
    r = idp(ctx, "GET", "/userinfo", headers={"Authorization": "Bearer forged"})
    check(oauth_error(r, 401, "invalid_token"), "a forged token: %r" % r)
    check('error="invalid_token"' in r.headers.get("www-authenticate", ""), "error in the challenge")
    t = login(ctx).json
    r = idp(ctx, "GET", "/userinfo", headers={"Authorization": "Bearer " + t["id_token"]})
    check(oauth_error(r, 401, "invalid_token"), "an id_token is not an access token: %r" % r)


def test_oidc_key_rotation_is_visible_in_the_jwks(ctx):
    register(ctx)
    old = list(jwks(ctx))
    r = ctx.sim.ctl("POST", "/_sim/oidc/rotate")
    eq(r.status, 200, "rotate: %r" % r)
    new = r.json["kid"]
    check(new not in old, "a new kid")
    eq(r.json["kids"], [new] + old, "the old key stays")
    keys = jwks(ctx)
    eq(list(keys), [new] + old, "the JWKS has both, the current first")
    h, _, sig, si = jwt_parts(login(ctx).json["id_token"])
    eq(h["kid"], new, "new tokens name the new key")
    check(rs256_verify(keys[new], si, sig), "and verify with it")
    check(not rs256_verify(keys[old[0]], si, sig), "not with the old one")
    r = ctx.sim.ctl("POST", "/_sim/oidc/rotate", {"drop_old": True})
    newer = r.json["kid"]
    eq((r.json["kids"], list(jwks(ctx))), ([newer], [newer]), "drop_old leaves the current key only")
    r = ctx.sim.ctl("POST", "/_sim/oidc/rotate", {"drop_old": "yes"})
    check(is_error_shape(r, 400), "drop_old must be a boolean: %r" % r)
    r = ctx.sim.ctl("POST", "/_sim/oidc/rotate", {"nope": 1})
    check(is_error_shape(r, 400), "unknown field: %r" % r)
    ctx.sim.reset()
    eq(list(jwks(ctx)), [newer], "keys survive a reset")


def set_fault(ctx, name):
    r = ctx.sim.ctl("POST", "/_sim/oidc/faults", {"id_token": name})
    eq((r.status, r.json.get("id_token")), (200, name), "fault %s set: %r" % (name, r))


def test_oidc_each_id_token_fault_spoils_the_token_it_names(ctx):
    register(ctx)
    keys = jwks(ctx)
    kid = list(keys)[0]
    pem = jwk_pem(keys[kid]).encode()
    now = int(time.time())

    def issue(fault, nonce="n-1"):
        set_fault(ctx, fault)
        return jwt_parts(login(ctx, nonce=nonce).json["id_token"])

    def good_sig(h, sig, si):
        return h.get("kid") in keys and rs256_verify(keys[h["kid"]], si, sig)

    h, c, sig, si = issue("none")
    check(good_sig(h, sig, si) and c["aud"] == CLIENT and c["iss"] == issuer(ctx) and c["nonce"] == "n-1",
          "none: healthy")
    h, c, sig, si = issue("wrong_aud")
    check(good_sig(h, sig, si) and c["aud"] != CLIENT and c["iss"] == issuer(ctx), "wrong_aud: %r" % c)
    h, c, sig, si = issue("wrong_iss")
    check(good_sig(h, sig, si) and c["iss"] != issuer(ctx) and c["aud"] == CLIENT, "wrong_iss: %r" % c)
    h, c, sig, si = issue("expired")
    check(good_sig(h, sig, si) and c["exp"] < now - 300 and c["exp"] - c["iat"] == 300, "expired: %r" % c)
    h, c, sig, si = issue("future_iat")
    check(good_sig(h, sig, si) and c["iat"] > now + 300, "future_iat: %r" % c)
    h, c, sig, si = issue("bad_signature")
    check(h == {"alg": "RS256", "kid": kid, "typ": "JWT"} and len(sig) == 256 and not good_sig(h, sig, si),
          "bad_signature: a well-formed RS256 token that does not verify")
    check(not openssl_verify(keys[kid], si, sig), "openssl agrees it is bad")
    h, c, sig, si = issue("unknown_kid")
    check(h["alg"] == "RS256" and h["kid"] not in keys and len(sig) == 256, "unknown_kid: %r" % h)
    check(not any(rs256_verify(k, si, sig) for k in keys.values()), "no published key verifies it")
    h, c, sig, si = issue("alg_none")
    check(h["alg"] == "none" and sig == b"" and c["aud"] == CLIENT, "alg_none: %r" % h)
    h, c, sig, si = issue("alg_hs256")
    eq((h["alg"], h["kid"]), ("HS256", kid), "alg_hs256 header")
    eq(sig, hmac.new(pem, si, hashlib.sha256).digest(), "HMAC-SHA256 keyed with the public key's PEM")
    h, c, sig, si = issue("no_nonce")
    check(good_sig(h, sig, si) and "nonce" not in c, "no_nonce: %r" % c)
    h, c, sig, si = issue("wrong_nonce")
    check(good_sig(h, sig, si) and c.get("nonce") not in (None, "n-1"), "wrong_nonce: %r" % c)
    eq(ctx.sim.ctl("GET", "/_sim/oidc").json["faults"], {"id_token": "wrong_nonce"}, "control shows the fault")
    r = ctx.sim.ctl("POST", "/_sim/oidc/faults", {"id_token": "sideways"})
    check(is_error_shape(r, 400, "VALIDATION_ERROR"), "an unknown fault: %r" % r)
    set_fault(ctx, "none")
    h, c, sig, si = jwt_parts(login(ctx).json["id_token"])
    check(good_sig(h, sig, si) and c["nonce"] == "n-1", "healthy again")


def test_oidc_service_faults_down_latency_errors_and_reset(ctx):
    register(ctx)
    port = ctx.sim.port(IDP)
    ctx.sim.faults(IDP, {"mode": "down"})
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        check(False, "connections must be refused while down")
    except ConnectionRefusedError:
        pass
    eq(ctx.sim.ctl("GET", "/_sim/oidc").status, 200, "control answers while down")
    ctx.sim.faults("oidc", {"latency_ms": 300})
    t0 = time.monotonic()
    eq(idp(ctx, "GET", "/jwks").status, 200, "up again, slowly")
    check(time.monotonic() - t0 >= 0.29, "latency applies")
    ctx.sim.faults("idp", {"error_rate": 1, "status": 503})
    r = idp(ctx, "GET", "/.well-known/openid-configuration")
    check(is_error_shape(r, 503, "SERVICE_UNAVAILABLE"), "an injected error: %r" % r)
    eq(ctx.sim.stats(IDP)["faults_injected"], 1, "counted")
    # reset: the provider back to its flags and seed
    register(ctx, client_id="temp")
    ctx.sim.ctl("POST", "/_sim/oidc/users", {"sub": "x", "email": "x@y.io", "given_name": "X", "family_name": "Y",
                                             "default": True})
    set_fault(ctx, "alg_none")
    ctx.sim.reset()
    o = ctx.sim.ctl("GET", "/_sim/oidc").json
    eq((o["clients"], [u["email"] for u in o["users"]], o["faults"]["id_token"], o["codes_issued"]),
       ([], ["john.doe@techcorp.com", "alice.johnson@startupxyz.com"], "none", 0), "reset")
    eq(ctx.sim.ctl("GET", "/_sim/faults/identity-provider").json["faults"]["error_rate"], 0, "service faults off")
    check("client_secret" not in json.dumps(o) and SECRET not in json.dumps(o), "no secrets shown")


def test_oidc_flags_issuer_clients_and_lifetimes(ctx):
    sim = ctx.new_sim(args=["--oidc-issuer", "https://idp.example.test", "--oidc-code-ttl", "1",
                            "--oidc-id-token-ttl", "60", "--oidc-client", CLIENT + ":" + SECRET + ":" + REDIRECT,
                            "--oidc-client", CLIENT + ":" + SECRET + ":http://127.0.0.1:9/two"])

    class Ctx:
        pass
    c = Ctx()
    c.sim = sim
    try:
        d = idp(c, "GET", "/.well-known/openid-configuration").json
        eq((d["issuer"], d["token_endpoint"]), ("https://idp.example.test", "https://idp.example.test/token"),
           "--oidc-issuer")
        o = sim.ctl("GET", "/_sim/oidc").json
        eq(o["clients"], [{"client_id": CLIENT, "redirect_uris": [REDIRECT, "http://127.0.0.1:9/two"]}],
           "--oidc-client, repeated")
        _, claims, _, _ = jwt_parts(login(c).json["id_token"])
        eq((claims["iss"], claims["exp"] - claims["iat"]), ("https://idp.example.test", 60), "issuer and ttl")
        code, verifier = code_for(c)
        time.sleep(2.1)
        r = token(c, code, verifier)
        check(oauth_error(r, 400, "invalid_grant") and "expired" in r.json["error_description"],
              "an expired code: %r" % r)
        sim.ctl("POST", "/_sim/oidc/clients", {"client_id": "x", "client_secret": "y", "redirect_uris": [REDIRECT]})
        sim.ctl("POST", "/_sim/reset")
        eq(len(sim.ctl("GET", "/_sim/oidc").json["clients"]), 1, "reset keeps the flag clients only")
    finally:
        eq(sim.stop(), 0, "stops cleanly")


def test_oidc_control_validation(ctx):
    bad_clients = [
        {"client_id": "", "client_secret": "s", "redirect_uris": [REDIRECT]},
        {"client_id": "c", "client_secret": "s", "redirect_uris": []},
        {"client_id": "c", "client_secret": "s", "redirect_uris": ["ftp://x/cb"]},
        {"client_id": "c", "client_secret": "s", "redirect_uris": [REDIRECT + "#f"]},
        {"client_id": "c", "client_secret": "s", "redirect_uris": ["http://x/" + "a" * 1100]},
        {"client_id": "c", "client_secret": "s", "redirect_uris": [7]},
        {"client_id": "c\n", "client_secret": "s", "redirect_uris": [REDIRECT]},
        {"client_id": "c", "client_secret": "s", "redirect_uris": [REDIRECT], "extra": 1},
        {"client_id": "c", "redirect_uris": [REDIRECT]},
    ]
    for b in bad_clients:
        r = ctx.sim.ctl("POST", "/_sim/oidc/clients", b)
        check(is_error_shape(r, 400, "VALIDATION_ERROR"), "%r refused: %r" % (b, r))
    eq(ctx.sim.ctl("GET", "/_sim/oidc").json["clients"], [], "nothing registered")
    eq(register(ctx).status, 201, "created")
    eq(register(ctx, secret="new").status, 200, "replaced")
    bad_users = [
        {"sub": "a", "email": "not-an-email", "given_name": "A", "family_name": "B"},
        {"sub": "a", "email": "a@b.c", "given_name": "A"},
        {"sub": "a", "email": "a@b.c", "given_name": "A", "family_name": "B", "default": "yes"},
        {"sub": "a", "email": "a@b.c", "given_name": "A", "family_name": "B", "role": "admin"},
    ]
    for b in bad_users:
        r = ctx.sim.ctl("POST", "/_sim/oidc/users", b)
        check(is_error_shape(r, 400, "VALIDATION_ERROR"), "%r refused: %r" % (b, r))
    r = ctx.sim.ctl("POST", "/_sim/oidc/users", {"sub": "other", "email": "JOHN.DOE@techcorp.com",
                                                 "given_name": "J", "family_name": "D"})
    check(is_error_shape(r, 409), "an email taken by another sub: %r" % r)
    r = ctx.sim.ctl("POST", "/_sim/oidc/users", {"sub": JOHN_SUB, "email": "john.doe@techcorp.com",
                                                 "given_name": "Johnny", "family_name": "Doe"})
    eq((r.status, r.json["default"]), (200, True), "replaced in place, still the default")
    r = ctx.sim.ctl("POST", "/_sim/oidc/faults", {"id_token": "none", "x": 1})
    check(is_error_shape(r, 400), "unknown fault field")
    r = ctx.sim.ctl("POST", "/_sim/oidc/faults")
    check(is_error_shape(r, 400, "INVALID_JSON"), "no body: %r" % r)
    r = ctx.sim.ctl("GET", "/_sim/oidc/clients")
    eq((r.status, r.headers.get("allow")), (405, "POST"), "405")
    r = ctx.sim.ctl("POST", "/_sim/oidc")
    eq((r.status, r.headers.get("allow")), (405, "GET"), "405 on the summary")
    check(is_error_shape(ctx.sim.ctl("GET", "/_sim/oidc/nope"), 404), "404")


def test_oidc_hostile_input_changes_nothing(ctx):
    register(ctx)
    _, challenge = pkce()
    for path in ("/authorize?client_id=%00", "/authorize?" + "a=1&" * 500, "/authorize?client_id=" + "x" * 8000,
                 "/authorize?client_id=%FF%FE&redirect_uri=%FF", "/.well-known/../jwks", "/jwks%00"):
        try:
            r = idp(ctx, "GET", path)
            # (libmicrohttpd decodes %00 in a path to the end of the path: /jwks%00 is /jwks)
            check(r.status in (302, 400, 404, 414, 431) or (path == "/jwks%00" and r.status == 200),
                  "%r: %r" % (path[:40], r))
        except (http.client.HTTPException, ConnectionError):
            pass
    r = authorize(ctx, challenge=challenge, state="s" * 2000)
    check(oauth_error(r, 400, "invalid_request") or redirect_params(r)[1].get("error") == "invalid_request",
          "a huge state: %r" % r)
    long_uri = "http://127.0.0.1:9/" + "p" * 1000
    register(ctx, redirects=(REDIRECT, long_uri))
    r = authorize(ctx, challenge=challenge, redirect_uri=long_uri, state="\u00e9" * 1000)
    check(r.status in (302, 400) and len(r.headers.get("location", "")) < 4096, "long redirect: %r" % r)
    before = ctx.sim.ctl("GET", "/_sim/oidc").json
    for raw in (b"\xff\xfe" * 100, b"=" * 1000, b"&" * 1000, b"code=" + b"%41" * 3000):
        r = idp(ctx, "POST", "/token", headers={"Content-Type": "application/x-www-form-urlencoded",
                                                "Authorization": "Basic " + base64.b64encode(
                                                    (CLIENT + ":" + SECRET).encode()).decode()},
                raw_body=raw)
        check(r.status in (400, 401) and isinstance(r.json, dict) and "error" in r.json, "%r: %r" % (raw[:10], r))
    after = ctx.sim.ctl("GET", "/_sim/oidc").json
    eq((after["codes_issued"], after["tokens_issued"]), (before["codes_issued"], 0), "no code or token from junk")
    eq(login(ctx).status, 200, "still serving")


def test_oidc_concurrent_logins(ctx):
    register(ctx)
    errors = []

    def worker():
        try:
            for _ in range(5):
                t = login(ctx).json
                h, c, sig, si = jwt_parts(t["id_token"])
                if c["sub"] != JOHN_SUB:
                    errors.append("sub %r" % c["sub"])
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for th in threads:
        th.start()
    rot = [ctx.sim.ctl("POST", "/_sim/oidc/rotate").status for _ in range(3)]
    for th in threads:
        th.join(60)
    eq((errors, rot), ([], [200, 200, 200]), "40 logins during 3 rotations")
    o = ctx.sim.ctl("GET", "/_sim/oidc").json
    eq((o["codes_issued"], o["tokens_issued"], len(o["kids"])), (40, 40, 4), "counted")
