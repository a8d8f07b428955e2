"""Issue 11's loose ends (identity), over HTTP and as SQL of saas_api:

- an organization whose SSO connection turns password login off takes no password by an
  invitation or a password reset either (403, as login), and the token stays usable if password
  login comes back;
- nobody invites into the platform organization (403), and an invitation row there made any
  other way cannot be accepted;
- GET /auth/sso/{slug}/start?format=json: 200 {authorization_url, expires_in} with the sign-in
  cookie and no redirect, for the dashboard's fetch; its errors as JSON (404, 403, 503, 400).

This file sorts after cases_sso.py: the happy path restarts that file's simulated provider (its
last case stopped it) and uses its browser-like client.
"""

import hashlib
import os
import uuid

from e2e_lib import *
from saas_test import case, check, Skip

import cases_sso as S

PLATFORM = "00000000-0000-0000-0000-000000000001"


def _sso_connection(org, password_login_allowed):
    """An enabled connection written as the owner (PUT /sso/connection needs a live provider), to an
    issuer outside saas.sso_allowed_origins: the start route cannot call it (503)."""
    sql("INSERT INTO saas.sso_connections (org_id, id, issuer, client_id, redirect_uri, allowed_domains,"
        " password_login_allowed) VALUES ('%s', '%s', 'https://idp.loose-ends.invalid', 'client-1',"
        " 'https://app.loose-ends.invalid/cb', ARRAY['loose-ends.invalid'], %s)"
        " ON CONFLICT (org_id) DO UPDATE SET password_login_allowed = EXCLUDED.password_login_allowed"
        % (org, uuid.uuid4(), "true" if password_login_allowed else "false"))


def _open_token_limits():
    """cases_invitations.py's rate limit case leaves this address's token_ip bucket a minute ahead
    (its limit was 1/min when it was used); a burst tolerance over a minute lets these cases through
    while every request is still counted."""
    for scope in ("token_ip", "token_id", "reset_ip", "reset_email", "auth_ip"):
        set_limits(scope, 60, 100000)


def _is_citus():
    return sql("SELECT count(*) FROM pg_extension WHERE extname = 'citus'").strip() != "0"


def _sql_error(query):
    try:
        out = sql("SET ROLE saas_api; " + query)
    except RuntimeError as e:
        return str(e)
    raise AssertionError("saas_api ran %r: %r" % (query, out))


@case
def sso_only_organization_takes_no_password_by_invitation_or_reset():
    _open_token_limits()
    r = expect(register("le-sso"), 201)
    admin, org = r.doc["token"], r.doc["organization"]["id"]
    F["le_org"], F["le_slug"], F["le_admin"] = org, r.doc["organization"]["slug"], admin
    invitee, sql_invitee = email("le-invitee"), email("le-sql-invitee")
    for addr in (invitee, sql_invitee):
        expect(call("POST", "/invitations", admin, body={"email": addr, "role": "user", "first_name": "In",
                                                         "last_name": "Vitee"}), 201)
    itok = queued_token("message.invitation", "inv", invitee)
    sql_itok = queued_token("message.invitation", "inv", sql_invitee)
    expect(call("POST", "/auth/password-reset", body={"email": email("le-sso")}), 202)
    rtok = queued_token("message.password_reset", "rst", email("le-sso"))

    _sso_connection(org, False)
    a = expect(call("POST", "/auth/accept-invite", body={"token": itok, "password": "invitees fine password"}),
               403, "forbidden")
    check("single sign-on" in a.doc["error"]["message"], "accept refusal: %r" % a.doc)
    check("token" not in a.doc, "a token came with the refusal: %r" % a.doc)
    a = expect(call("POST", "/auth/password-reset/confirm", body={"token": rtok, "password": "a new sso password"}),
               403, "forbidden")
    check("single sign-on" in a.doc["error"]["message"], "confirm refusal: %r" % a.doc)
    # Nothing changed: no user, the invitation pending, the token unused, the password the old one.
    check(sql("SELECT count(*) FROM saas.users WHERE org_id = '%s' AND email = '%s'" % (org, invitee)) == "0",
          "the invitee became a user")
    check(sql("SELECT string_agg(status, ',') FROM saas._invitations WHERE org_id = '%s' AND email = '%s'"
              % (org, invitee)) == "pending", "the invitation changed")
    check(sql("SELECT count(*) FROM saas._password_resets WHERE org_id = '%s' AND used_at IS NOT NULL" % org) == "0",
          "the reset token was used up")
    expect(login(email("le-sso")), 403, "forbidden")

    # The same through the SQL API, as saas_api.
    if not _is_citus():  # SET ROLE saas_api cannot reach the Citus workers (cases_invitations.py)
        err = _sql_error("SELECT saas.accept_invitation('{\"token\":\"%s\",\"password\":\"sql invitees password\"}')"
                         % sql_itok)
        check("single sign-on" in err, "accept_invitation as saas_api: %s" % err)
        err = _sql_error("SELECT saas.confirm_password_reset('{\"token\":\"%s\",\"password\":\"a new sso password\"}')"
                         % rtok)
        check("single sign-on" in err, "confirm_password_reset as saas_api: %s" % err)
        check(sql("SELECT count(*) FROM saas.users WHERE org_id = '%s' AND email = '%s'" % (org, sql_invitee)) == "0",
              "the SQL invitee became a user")

    # Password login back on: the same tokens work.
    _sso_connection(org, True)
    ok = expect(call("POST", "/auth/accept-invite", body={"token": itok, "password": "invitees fine password"}), 200)
    check(ok.doc["user"]["email"] == invitee and ok.doc["token"], "accept answer: %r" % ok.doc)
    expect(call("POST", "/auth/password-reset/confirm", body={"token": rtok, "password": "a new sso password"}), 204)
    expect(login(email("le-sso"), "a new sso password"), 200)
    F["le_admin"] = expect(login(email("le-sso"), "a new sso password"), 200).doc["token"]
    restore_limits()


@case
def password_reset_for_an_unknown_email_leaves_nothing_behind():
    """The unknown email's request does a token's work for a decoy account and rolls it back
    (docs/security.md, "Password reset timing"): no token, message or audit entry is left, on
    Citus too (the decoy's rows are on a worker)."""
    _open_token_limits()
    try:
        q = ("SELECT (SELECT count(*) FROM saas._password_resets) || ' ' ||"
             " (SELECT count(*) FROM saas.jobs WHERE kind = 'message.password_reset') || ' ' ||"
             " (SELECT count(*) FROM saas.audit_log WHERE action = 'password_reset_requested')")
        before = sql(q)
        for i in range(3):
            expect(call("POST", "/auth/password-reset", body={"email": email("le-nobody-%d" % i)}), 202)
        check(sql(q) == before, "an unknown email left something: %s -> %s" % (before, sql(q)))
        # a known one still issues its token (the same request, the work kept; its used token is
        # replaced, so the number of tokens stays)
        expect(call("POST", "/auth/password-reset", body={"email": email("le-sso")}), 202)
        b, j, a = (int(x) for x in before.split())
        check(sql(q) == "%d %d %d" % (b, j + 1, a + 1), "a known email: %s -> %s" % (before, sql(q)))
        check(sql("SELECT count(*) FROM saas._password_resets WHERE used_at IS NULL AND org_id = '%s'"
                  % need("le_org")) == "1", "no new token for the known email")
    finally:
        restore_limits()


@case
def nobody_invites_into_the_platform_organization():
    root = need("root")
    addr = email("le-platform-invitee")
    a = expect(call("POST", "/invitations", root, body={"email": addr, "role": "admin"}), 403, "forbidden")
    check("platform" in a.doc["error"]["message"], "refusal: %r" % a.doc)
    # A platform admin (not a super_admin) is refused too.
    expect(call("POST", "/users", root, body={"email": email("le-platadmin"), "first_name": "Plat", "last_name": "Admin",
                                              "role": "admin", "password": "platform admin password"}), 201)
    pa = expect(login(email("le-platadmin"), "platform admin password"), 200).doc["token"]
    expect(call("POST", "/invitations", pa, body={"email": addr, "role": "user"}), 403, "forbidden")
    check(sql("SELECT count(*) FROM saas._invitations WHERE org_id = saas.platform_org_id()") == "0",
          "an invitation into the platform organization was stored")
    check(sql("SELECT count(*) FROM saas.jobs WHERE kind = 'message.invitation' AND payload -> 'body' ->> "
              "'recipient' = '%s'" % addr) == "0", "a message went out")
    if not _is_citus():
        err = _sql_error("BEGIN; SELECT saas.authenticate('%s'); SELECT saas.create_invitation("
                         "'{\"email\":\"%s\",\"role\":\"user\"}'); COMMIT;" % (root, addr))
        check("platform" in err, "create_invitation as saas_api: %s" % err)
    # A row there made any other way (a restore, a hand-written insert) cannot be accepted.
    _open_token_limits()
    secret, iid = os.urandom(32), uuid.uuid4()
    token = "inv_" + b64url(uuid.UUID(PLATFORM).bytes + iid.bytes + secret)
    operator = sql("SELECT id FROM saas.users WHERE org_id = saas.platform_org_id() AND role = 'super_admin'"
                   " ORDER BY id LIMIT 1")
    sql("INSERT INTO saas._invitations (org_id, id, email, role, first_name, last_name, token_hash, invited_by,"
        " expires_at) VALUES ('%s', '%s', '%s', 'admin', 'Pla', 'Tform', '\\x%s', '%s', now() + interval '1 day')"
        % (PLATFORM, iid, addr, hashlib.sha256(secret).hexdigest(), operator))
    try:
        expect(call("POST", "/auth/accept-invite", body={"token": token, "password": "platform invitee password"}),
               400, "validation_failed", {"token"})
        check(sql("SELECT count(*) FROM saas.users WHERE email = '%s'" % addr) == "0", "a platform user was made")
    finally:
        sql("DELETE FROM saas._invitations WHERE org_id = saas.platform_org_id() AND id = '%s'" % iid)
        restore_limits()


@case
def sso_start_as_json_answers_its_errors_as_json():
    org, slug, admin = need("le_org", "le_slug", "le_admin")
    root = need("root")
    a = expect(call("GET", "/auth/sso/no-such-org-%s/start?format=json" % RUN), 404, "not_found")
    check(not a.h("location") and not a.h("set-cookie"), "404 with a redirect or cookie: %r" % a)
    expect(call("GET", "/auth/sso/%s/start?format=html" % slug), 400, "validation_failed", {"format"})
    # The organization's provider is outside saas.sso_allowed_origins: it cannot be called.
    a = expect(call("GET", "/auth/sso/%s/start?format=json" % slug), 503, "service_unavailable")
    check(not a.h("location") and not a.h("set-cookie"), "503 with a redirect or cookie: %r" % a)
    expect(call("PUT", "/organizations/" + org, root, body={"status": "suspended"}), 200)
    try:
        expect(call("GET", "/auth/sso/%s/start?format=json" % slug), 403, "forbidden")
        expect(call("GET", "/auth/sso/%s/start" % slug), 403, "forbidden")
    finally:
        expect(call("PUT", "/organizations/" + org, root, body={"status": "active"}), 200)


@case
def sso_start_as_json_gives_the_providers_address_and_the_cookie():
    S.sso_simulated_provider_starts()
    try:
        r = expect(register("le-json"), 201)
        admin, slug = r.doc["token"], r.doc["organization"]["slug"]
        expect(S.call("PUT", "/sso/connection", admin, S.connection()), 201)
        S.JAR.clear()
        a = expect(S.call("GET", "/auth/sso/%s/start?format=json&login_hint=%s" % (slug, "ann%40" + S.SSO_DOMAIN)), 200)
        check(not a.h("location"), "a redirect with the JSON form: %r" % a.h("location"))
        cookie = a.h("set-cookie") or ""
        check(cookie.startswith("__Host-saas_sso=") and "HttpOnly" in cookie and "Max-Age=600" in cookie,
              "no sign-in cookie: %r" % cookie)
        url = a.doc["authorization_url"]
        check(url.startswith(S.SIM["issuer"] + "/") and a.doc["expires_in"] == 600, "answer %r" % a.doc)
        q = S.params_of(url)
        check(q.get("login_hint") == "ann@" + S.SSO_DOMAIN and q.get("code_challenge_method") == "S256",
              "authorization URL %s" % url)
        # The browser then goes there itself: the sign-in finishes with the cookie this answer set.
        done = expect(S.call("GET", S.authorize(url)), 200)
        check(done.doc["token"] and done.doc["user"]["email"] == "ann@" + S.SSO_DOMAIN, "callback %r" % done.doc)
        # Without the cookie of the start, the JSON form's sign-in is refused like the redirect's.
        a = expect(S.call("GET", "/auth/sso/%s/start?format=json" % slug), 200)
        target = S.authorize(a.doc["authorization_url"])
        expect(S.call("GET", target, headers={"Cookie": "__Host-saas_sso=" + "A" * 43}), 400, "validation_failed")
    finally:
        S.sim_stop()
