"""Invitations and password reset over HTTP: the rules that need no delivery (validation, roles,
other tenants, revocation, enumeration, rate limits, hostile tokens). The delivery through the worker
and saas-sim, with tokens taken from the simulated communication service, is test/tap/210_invitations.pl;
here a token is read from the queued job as the database owner, as an attacker could not."""

from e2e_lib import *
from saas_test import case, check, Skip


@case
def invitations_admin_invites_lists_and_validation():
    r = expect(register("invadmin"), 201)
    F["inv_admin"], F["inv_org"] = r.doc["token"], r.doc["organization"]["id"]
    tok = F["inv_admin"]
    expect(call("POST", "/invitations", tok, body={"email": "not an email", "role": "user"}), 400,
           "validation_failed", {"email"})
    expect(call("POST", "/invitations", tok, body={"email": email("inv-a"), "role": "super_admin"}), 400,
           "validation_failed", {"role"})
    expect(call("POST", "/invitations", tok, body={"email": email("inv-a"), "role": "user", "extra": 1}), 400,
           "validation_failed")
    expect(call("POST", "/invitations", tok, body=[1]), 400)
    expect(call("POST", "/invitations", tok, body={"email": email("invadmin"), "role": "user"}), 409,
           "conflict", {"email"})
    a = expect(call("POST", "/invitations", tok, body={"email": email("inv-a").upper(), "role": "user",
                                                       "first_name": "Ann", "last_name": "Vite"}), 201)
    check(a.doc["status"] == "pending" and a.doc["email"] == email("inv-a"), "invitation: %r" % a)
    check("token" not in a.data.decode() and "inv_" not in a.data.decode(), "the answer shows a token: %r" % a)
    F["inv_a"] = a.doc["id"]
    expect(call("POST", "/invitations", tok, body={"email": email("inv-a"), "role": "admin"}), 409, "conflict")
    expect(call("POST", "/invitations", tok, body={"email": email("inv-b"), "role": "admin"}), 201)
    lst = expect(call("GET", "/invitations?limit=1", tok), 200)
    check(len(lst.doc["data"]) == 1 and lst.doc["next_cursor"], "page 1: %r" % lst)
    lst2 = expect(call("GET", "/invitations?limit=1&cursor=" + lst.doc["next_cursor"], tok), 200)
    check(len(lst2.doc["data"]) == 1 and lst2.doc["data"][0]["id"] != lst.doc["data"][0]["id"], "page 2: %r" % lst2)
    expect(call("GET", "/invitations?status=bogus", tok), 400, "validation_failed", {"status"})
    expect(call("GET", "/invitations?status=pending", tok), 200)
    expect(call("PUT", "/invitations", tok, body={}), 405)
    expect(call("GET", "/invitations"), 401)


@case
def invitations_are_an_admins_and_stay_in_their_organization():
    tok, inv = need("inv_admin", "inv_a")
    # A plain user of the same organization.
    expect(call("POST", "/users", tok, body={"email": email("inv-plain"), "first_name": "P", "last_name": "U",
                                             "role": "user", "password": "plain users password"}), 201)
    plain = expect(login(email("inv-plain"), "plain users password"), 200).doc["token"]
    expect(call("POST", "/invitations", plain, body={"email": email("inv-c"), "role": "user"}), 403, "forbidden")
    expect(call("GET", "/invitations", plain), 403, "forbidden")
    expect(call("DELETE", "/invitations/" + inv, plain), 403, "forbidden")
    # Another tenant's admin sees none of them and cannot revoke them.
    other = expect(register("invother"), 201).doc["token"]
    check(expect(call("GET", "/invitations", other), 200).doc["data"] == [], "another tenant sees invitations")
    expect(call("DELETE", "/invitations/" + inv, other), 404, "not_found")
    expect(call("DELETE", "/invitations/not-a-uuid", tok), 404, "not_found")
    # As saas_api in SQL, the private table is out of reach.
    for q in ("SELECT count(*) FROM saas._invitations", "SELECT count(*) FROM saas._password_resets",
              "DELETE FROM saas._invitations"):
        try:
            out = sql("SET ROLE saas_api; " + q)
        except RuntimeError as e:
            check("permission denied" in str(e), "unexpected error: %s" % e)
        else:
            raise AssertionError("saas_api ran %r: %r" % (q, out))


@case
def accepting_an_invitation_creates_the_user_once():
    tok, inv = need("inv_admin", "inv_a")
    itok = queued_token("message.invitation", "inv", email("inv-a"))
    expect(call("POST", "/auth/accept-invite", body={"token": itok, "password": "short"}), 400,
           "validation_failed", {"password"})
    # Tampered: another secret, another organization, garbage, the wrong kind of token.
    forged = itok[:-4] + ("AAAA" if not itok.endswith("AAAA") else "BBBB")
    for bad in (forged, "inv_" + "A" * 86, "inv_!!", "rst_" + itok[4:], "", "x" * 199):
        expect(call("POST", "/auth/accept-invite", body={"token": bad, "password": "a fine long password"}), 400,
               "validation_failed", {"token"})
    expect(call("POST", "/auth/accept-invite", body={"token": 5, "password": "a fine long password"}), 400)
    expect(call("POST", "/auth/accept-invite", body={"token": "x" * 201, "password": "a fine long password"}), 400)
    ok = expect(call("POST", "/auth/accept-invite", body={"token": itok, "password": "anns fine password"}), 200)
    check(ok.doc["token"] and ok.doc["token_type"] == "Bearer" and ok.doc["user"]["email"] == email("inv-a"),
          "accept answer: %r" % ok)
    check(ok.doc["user"]["role"] == "user" and ok.doc["user"]["first_name"] == "Ann", "user: %r" % ok)
    expect(call("GET", "/users/" + ok.doc["user"]["id"], ok.doc["token"]), 200)
    expect(call("POST", "/auth/accept-invite", body={"token": itok, "password": "anns fine password"}), 400,
           "validation_failed", {"token"})
    lst = expect(call("GET", "/invitations?status=accepted", tok), 200)
    check([i["id"] for i in lst.doc["data"]] == [inv], "accepted list: %r" % lst)
    check(lst.doc["data"][0]["user_id"] == ok.doc["user"]["id"], "user_id not recorded: %r" % lst)
    expect(call("DELETE", "/invitations/" + inv, tok), 409, "conflict")


@case
def an_invitation_for_an_email_that_became_a_user_is_a_conflict():
    tok = need("inv_admin")
    addr = email("inv-race")
    expect(call("POST", "/invitations", tok, body={"email": addr, "role": "user", "first_name": "R",
                                                   "last_name": "Ace"}), 201)
    itok = queued_token("message.invitation", "inv", addr)
    expect(call("POST", "/users", tok, body={"email": addr, "first_name": "R", "last_name": "Ace", "role": "user"}), 201)
    expect(call("POST", "/auth/accept-invite", body={"token": itok, "password": "a fine long password"}), 409,
           "conflict")


@case
def a_revoked_invitation_cannot_be_accepted():
    tok = need("inv_admin")
    addr = email("inv-rev")
    a = expect(call("POST", "/invitations", tok, body={"email": addr, "role": "admin", "first_name": "R",
                                                       "last_name": "Ev"}), 201)
    itok = queued_token("message.invitation", "inv", addr)
    expect(call("DELETE", "/invitations/" + a.doc["id"], tok), 204)
    check(sql("SELECT count(*) FROM saas.jobs WHERE idempotency_key = 'invitation:%s'" % a.doc["id"]).strip() == "0",
          "the undelivered message of a revoked invitation is still queued")
    expect(call("POST", "/auth/accept-invite", body={"token": itok, "password": "a fine long password"}), 400,
           "validation_failed", {"token"})
    expect(call("DELETE", "/invitations/" + a.doc["id"], tok), 409, "conflict")
    # Invited again after revocation: allowed, with a new token.
    expect(call("POST", "/invitations", tok, body={"email": addr, "role": "user"}), 201)


@case
def password_reset_answers_the_same_for_every_email():
    need("inv_admin")
    known = expect(call("POST", "/auth/password-reset", body={"email": email("invadmin")}), 202)
    unknown = expect(call("POST", "/auth/password-reset", body={"email": email("nobody-at-all")}), 202)
    check(known.data == unknown.data, "answers differ: %r vs %r" % (known, unknown))
    expect(call("POST", "/auth/password-reset", body={"email": "nope"}), 400, "validation_failed", {"email"})
    expect(call("POST", "/auth/password-reset", body={}), 400, "validation_failed", {"email"})
    expect(call("GET", "/auth/password-reset"), 405)
    expect(call("POST", "/auth/password-reset", body="{", content_type="application/json"), 400)
    check(sql("SELECT count(*) FROM saas.jobs WHERE kind = 'message.password_reset' AND payload -> 'body' ->> "
              "'recipient' = '%s'" % email("nobody-at-all")).strip() == "0", "a message went to an unknown email")


@case
def password_reset_confirm_sets_the_password_once_and_ends_sessions():
    tok = need("inv_admin")
    itok = queued_token("message.password_reset", "rst", email("invadmin"))
    # A newer request voids the older token.
    expect(call("POST", "/auth/password-reset", body={"email": email("invadmin")}), 202)
    rtok = queued_token("message.password_reset", "rst", email("invadmin"))
    check(rtok != itok, "the same token twice")
    expect(call("POST", "/auth/password-reset/confirm", body={"token": itok, "password": "a new admin password"}),
           400, "validation_failed", {"token"})
    expect(call("POST", "/auth/password-reset/confirm", body={"token": rtok, "password": email("invadmin")}), 400,
           "validation_failed", {"password"})
    expect(call("POST", "/auth/password-reset/confirm", body={"token": "inv_" + rtok[4:],
                                                               "password": "a new admin password"}), 400)
    expect(call("POST", "/auth/password-reset/confirm", body={"token": rtok, "password": "a new admin password"}), 204)
    expect(call("GET", "/invitations", tok), 401)
    expect(call("POST", "/auth/password-reset/confirm", body={"token": rtok, "password": "another admin password"}),
           400, "validation_failed", {"token"})
    expect(login(email("invadmin")), 401)
    F["inv_admin"] = expect(login(email("invadmin"), "a new admin password"), 200).doc["token"]


@case
def password_reset_and_tokens_are_rate_limited():
    try:
        set_limits("reset_email", 1, 2)
        addr = email("inv-limited")
        for _ in range(2):
            expect(call("POST", "/auth/password-reset", body={"email": addr}), 202)
        a = expect(call("POST", "/auth/password-reset", body={"email": addr.upper()}), 429, "rate_limited")
        check(a.h("retry-after"), "no Retry-After")
        set_limits("token_id", 1, 2)
        bad = "rst_" + "B" * 86
        for _ in range(2):
            expect(call("POST", "/auth/password-reset/confirm", body={"token": bad, "password": "whatever it is"}), 400)
        expect(call("POST", "/auth/password-reset/confirm", body={"token": bad, "password": "whatever it is"}), 429)
        set_limits("token_ip", 1, 1)
        expect(call("POST", "/auth/accept-invite", body={"token": "inv_" + "C" * 86, "password": "whatever it is"}), 400)
        expect(call("POST", "/auth/accept-invite", body={"token": "inv_" + "D" * 86, "password": "whatever it is"}), 429)
    finally:
        restore_limits()


@case
def invitations_and_resets_through_sql_as_saas_api():
    tok = need("inv_admin")
    if sql("SELECT count(*) FROM pg_extension WHERE extname = 'citus'").strip() != "0":
        # SET ROLE saas_api makes the coordinator open worker connections as saas_api (NOLOGIN).
        raise Skip("SQL as SET ROLE saas_api cannot reach the Citus workers; the routes run the same code")
    out = sql("SET ROLE saas_api; BEGIN; SELECT saas.authenticate('%s');"
              " SELECT saas.create_invitation('{\"email\":\"%s\",\"role\":\"user\",\"first_name\":\"S\","
              "\"last_name\":\"Q\"}')->>'status'; SELECT jsonb_array_length(saas.list_invitations('{}')->'data') > 0;"
              " COMMIT;" % (tok, email("inv-sql")))
    check("pending" in (out or ""), "create_invitation as saas_api: %r" % out)
    itok = queued_token("message.invitation", "inv", email("inv-sql"))
    out = sql("SET ROLE saas_api; SELECT saas.accept_invitation('{\"token\":\"%s\",\"password\":\"sql users password\"}')"
              "->'user'->>'email';" % itok)
    check(email("inv-sql") in (out or ""), "accept_invitation as saas_api: %r" % out)
    out = sql("SET ROLE saas_api; SELECT saas.request_password_reset('{\"email\":\"%s\"}')->>'message';"
              % email("inv-sql"))
    check("on its way" in (out or ""), "request_password_reset: %r" % out)
    rtok = queued_token("message.password_reset", "rst", email("inv-sql"))
    sql("SET ROLE saas_api; SELECT saas.confirm_password_reset('{\"token\":\"%s\",\"password\":\"sql users new password\"}');"
        % rtok)
    expect(login(email("inv-sql"), "sql users new password"), 200)
