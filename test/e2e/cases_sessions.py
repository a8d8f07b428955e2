"""Sessions with refresh tokens over HTTP and SQL (docs/api.md, "Sessions"): login answers a
refresh token; POST /auth/refresh rotates it; a rotated one presented again revokes the whole
family and its access tokens; two refreshes with one token at once: one wins; forged, other
tenants' and ended sessions' tokens are refused and change nothing; GET /auth/me."""
import threading

from e2e_lib import *
from saas_test import case, check, Skip


def refresh(rt):
    return call("POST", "/auth/refresh", body={"refresh_token": rt})


def rt_parts(rt):
    raw = b64url_dec(rt[3:])
    return raw[:16], raw[16:32], raw[32:]


def rt_make(org, tid, secret):
    return "rt_" + b64url(org + tid + secret)


@case
def sessions_login_and_register_answer_a_refresh_token():
    r = expect(register("sess1"), 201)
    check(r.doc["refresh_token"].startswith("rt_") and len(r.doc["refresh_token"]) == 89, "shape %r" % r.doc)
    check(isinstance(r.doc["refresh_expires_in"], int) and r.doc["refresh_expires_in"] > r.doc["expires_in"],
          "refresh_expires_in %r" % r.doc)
    l = expect(login(email("sess1")), 200)
    check(l.doc["refresh_token"] != r.doc["refresh_token"], "a second session got the same refresh token")
    org = rt_parts(l.doc["refresh_token"])[0]
    check(str(uuid.UUID(bytes=org)) == claims_of(l.doc["token"])["org_id"], "the token does not name its organization")
    F["sess1"] = l.doc
    F["sess1_other"] = r.doc


@case
def sessions_me_answers_user_organization_and_role():
    l = need("sess1")
    a = expect(call("GET", "/auth/me", l["token"]), 200)
    check(a.doc["user"]["email"] == email("sess1") and a.doc["role"] == "admin", "me %r" % a.doc)
    check(set(a.doc["organization"]) == {"id", "name", "slug", "subscription_tier"}, "org %r" % a.doc)
    check(a.doc["organization"]["id"] == claims_of(l["token"])["org_id"], "another organization %r" % a.doc)
    expect(call("GET", "/auth/me"), 401, "unauthorized")
    expect(call("GET", "/auth/me", l["refresh_token"]), 401, "unauthorized")
    expect(call("DELETE", "/auth/me", l["token"]), 405)


@case
def sessions_refresh_rotates_and_reuse_revokes_the_family():
    l = need("sess1")
    rt1, at1 = l["refresh_token"], l["token"]
    a2 = expect(refresh(rt1), 200)
    check(a2.doc["token_type"] == "Bearer" and a2.doc["refresh_token"] != rt1, "rotation %r" % a2.doc)
    at2, rt2 = a2.doc["token"], a2.doc["refresh_token"]
    check(claims_of(at2)["sub"] == claims_of(at1)["sub"], "another user")
    expect(call("GET", "/auth/me", at2), 200)
    a3 = expect(refresh(rt2), 200)
    at3, rt3 = a3.doc["token"], a3.doc["refresh_token"]
    # the attacker replays rt1 (or the real client comes back with it): the whole family ends
    r = expect(refresh(rt1), 401, "unauthorized")
    check("reuse" in r.doc["error"]["message"], "message %r" % r.doc)
    expect(refresh(rt3), 401, "unauthorized")
    for t in (at1, at2, at3):
        expect(call("GET", "/auth/me", t), 401, "unauthorized")
    fam = sql("SELECT family_id FROM saas._refresh_tokens WHERE access_jti = '%s'" % claims_of(at1)["jti"])
    check(sql("SELECT count(*) FILTER (WHERE revoked_reason = 'reuse') || '/' || count(*) FROM saas._refresh_tokens"
              " WHERE family_id = '%s'" % fam) == "3/3", "family not revoked")
    check(sql("SELECT count(*) FROM saas.audit_log WHERE action = 'refresh_reuse' AND entity_id = '%s'"
              % claims_of(at1)["sub"]) == "1", "reuse not audited")
    # the other session of the same user is untouched
    o = need("sess1_other")
    expect(call("GET", "/auth/me", o["token"]), 200)
    expect(refresh(o["refresh_token"]), 200)


@case
def sessions_two_refreshes_with_one_token_at_once_one_wins():
    l = expect(login(email("sess1")), 200).doc
    rt = l["refresh_token"]
    answers = []
    go = threading.Barrier(2)

    def one():
        go.wait()
        answers.append(refresh(rt))
    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(a.status for a in answers)
    check(statuses == [200, 401], "statuses %r" % answers)
    check(sql("SELECT count(*) FROM saas._refresh_tokens WHERE parent_id = (SELECT id FROM saas._refresh_tokens"
              " WHERE access_jti = '%s')" % claims_of(l["token"])["jti"]) == "1", "more than one successor")


@case
def sessions_forged_and_other_tenants_tokens_are_refused_and_change_nothing():
    l = expect(login(email("sess1")), 200).doc
    other = expect(register("sess2"), 201).doc
    org, tid, secret = rt_parts(l["refresh_token"])
    org_b = uuid.UUID(claims_of(other["token"])["org_id"]).bytes
    for bad in (rt_make(org, tid, bytes(32)),                   # guessed secret
                rt_make(org, tid, secret[:-1] + bytes([secret[-1] ^ 1])),
                rt_make(org_b, tid, secret),                    # another tenant's organization
                rt_make(org, rt_parts(other["refresh_token"])[1], secret),
                "rt_" + "A" * 86, "rt_", l["refresh_token"] + "A", l["refresh_token"][:-1]):
        expect(refresh(bad), 401, "unauthorized")
    expect(refresh(l["token"]), 400, "validation_failed", {"refresh_token"})
    expect(call("POST", "/auth/refresh", body={}), 400, "validation_failed", {"refresh_token"})
    expect(call("POST", "/auth/refresh", body={"refresh_token": 1}), 400)
    expect(call("POST", "/auth/refresh", body="not json"), 400)
    expect(call("POST", "/auth/refresh", body="{}", content_type="text/plain"), 415)
    expect(call("GET", "/auth/refresh"), 405)
    # nothing was marked: both real tokens still rotate
    expect(refresh(l["refresh_token"]), 200)
    expect(refresh(other["refresh_token"]), 200)


@case
def sessions_logout_and_logout_all_end_refresh_tokens():
    a = expect(login(email("sess1")), 200).doc
    b = expect(login(email("sess1")), 200).doc
    expect(call("POST", "/auth/logout", a["token"]), 204)
    expect(refresh(a["refresh_token"]), 401)
    b2 = expect(refresh(b["refresh_token"]), 200).doc
    c = expect(login(email("sess1")), 200).doc
    expect(call("POST", "/auth/logout-all", b2["token"]), 204)
    expect(refresh(b2["refresh_token"]), 401)
    expect(refresh(c["refresh_token"]), 401)


@case
def sessions_password_change_ends_refresh_tokens():
    d = expect(login(email("sess1")), 200).doc
    uid = claims_of(d["token"])["sub"]
    expect(call("PUT", "/users/" + uid, d["token"], body={"password": PASSWORD + " two",
                                                           "current_password": PASSWORD}), 200)
    expect(refresh(d["refresh_token"]), 401)
    expect(call("PUT", "/users/" + uid, expect(login(email("sess1"), PASSWORD + " two"), 200).doc["token"],
                body={"password": PASSWORD, "current_password": PASSWORD + " two"}), 200)


@case
def sessions_sql_api_rotates_and_detects_reuse():
    l = expect(login(email("sess1")), 200).doc
    out = sql("SELECT saas.refresh('%s') ->> 'refresh_token'" % l["refresh_token"])
    check(out.startswith("rt_") and out != l["refresh_token"], "saas.refresh %r" % out)
    check(sql("SELECT saas.refresh('%s') -> 'error' ->> 'code'" % l["refresh_token"]) == "unauthorized",
          "reuse over SQL not answered")
    expect(refresh(out), 401, "unauthorized")
    check(sql("SELECT count(*) FROM saas._refresh_tokens WHERE revoked_reason = 'reuse' AND family_id ="
              " (SELECT family_id FROM saas._refresh_tokens WHERE access_jti = '%s')"
              % claims_of(l["token"])["jti"]) == "2", "reuse over SQL did not revoke the family")
