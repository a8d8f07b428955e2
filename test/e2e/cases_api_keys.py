"""API keys for machine clients, through HTTP (docs/api.md "API keys", docs/security.md "API keys"):
an admin creates keys with scopes and sees the secret once; a key is a Bearer credential limited
to its scopes (403 for the rest), per key rate limited, useless in another organization or once
changed; revoking it ends it at once; audit entries of its changes name it.
"""

import re
import time

from e2e_lib import *
from saas_test import case, check, Skip

KEY_RX = re.compile(r"^sk_[0-9a-f]{32}_[0-9a-f]{32}_[A-Za-z0-9_-]{43}$")


def _new_key(token, name, scopes, **extra):
    a = expect(call("POST", "/api-keys", token, dict({"name": name, "scopes": scopes}, **extra)), 201)
    check(KEY_RX.match(a.doc.get("key") or ""), "key format: %r" % a.doc.get("key"))
    check(a.doc["scopes"] == scopes and a.doc["status"] == "active" and a.doc["revoked_at"] is None,
          "created key: %r" % a)
    return a.doc


@case
def api_keys_admin_creates_them_and_sees_the_secret_once():
    d = expect(register("keyco"), 201).doc
    tok, org = d["token"], d["organization"]["id"]
    F["key_admin"], F["key_org"], F["key_admin_id"] = tok, org, d["user"]["id"]
    for name, scopes in (("read", ["users:read"]), ("write", ["users:read", "users:write"]),
                         ("audit", ["audit:read"]), ("ops", ["integrations:read"])):
        k = _new_key(tok, "e2e " + name, scopes)
        check(k["org_id"] == org and k["created_by"] == d["user"]["id"], "key owner: %r" % k)
        check(k["key"].startswith("sk_" + org.replace("-", "") + "_" + k["id"].replace("-", "") + "_"),
              "the key does not name its organization and id: %r" % k["key"])
        F["key_" + name], F["key_" + name + "_id"] = k["key"], k["id"]
    listed = expect(call("GET", "/api-keys?limit=2", tok), 200).doc
    check(len(listed["data"]) == 2 and listed["next_cursor"], "first page: %r" % listed)
    rest = expect(call("GET", "/api-keys?limit=10&cursor=" + listed["next_cursor"], tok), 200).doc
    ids = [k["id"] for k in listed["data"] + rest["data"]]
    check(len(ids) == 4 and len(set(ids)) == 4, "paging lost or repeated keys: %r" % ids)
    body = expect(call("GET", "/api-keys", tok), 200).data.decode()
    for name in ("read", "write", "audit", "ops"):
        check(F["key_" + name][-43:] not in body, "a secret is in the list")
    check("key\"" not in body and "hash" not in body, "the list shows keys or hashes: %s" % body[:300])
    one = expect(call("GET", "/api-keys/" + F["key_read_id"], tok), 200).doc
    check("key" not in one and one["name"] == "e2e read", "GET one: %r" % one)
    check(sql("SELECT count(*) FROM saas._api_key_secrets WHERE key_id = '%s' AND length(secret_hash) = 32"
              % F["key_read_id"]) == "1", "the hash is not stored")


@case
def api_keys_bad_input_is_400_and_creates_nothing():
    tok, org = need("key_admin", "key_org")
    before = sql("SELECT count(*) FROM saas.api_keys WHERE org_id = '%s'" % org)
    expect(call("POST", "/api-keys", tok, {"name": "x", "scopes": ["users:admin"]}), 400, "validation_failed", ["scopes"])
    expect(call("POST", "/api-keys", tok, {"name": "x", "scopes": []}), 400, "validation_failed", ["scopes"])
    expect(call("POST", "/api-keys", tok, {"name": "x", "scopes": ["users:read", "users:read"]}), 400, None, ["scopes"])
    expect(call("POST", "/api-keys", tok, {"name": "x", "scopes": "users:read"}), 400, None, ["scopes"])
    expect(call("POST", "/api-keys", tok, {"name": "", "scopes": ["users:read"]}), 400, None, ["name"])
    expect(call("POST", "/api-keys", tok, {"scopes": ["users:read"]}), 400, None, ["name"])
    expect(call("POST", "/api-keys", tok, {"name": "x", "scopes": ["users:read"], "expires_at": "2001-01-01T00:00:00Z"}),
           400, None, ["expires_at"])
    expect(call("POST", "/api-keys", tok, {"name": "x", "scopes": ["users:read"], "expires_at": "tomorrow-ish"}),
           400, None, ["expires_at"])
    expect(call("POST", "/api-keys", tok, {"name": "x", "scopes": ["users:read"], "key": "sk_mine"}), 400)
    expect(call("POST", "/api-keys", tok, "[1]"), 400)
    expect(call("POST", "/api-keys", tok, "name=x", content_type="text/plain"), 415)
    expect(call("GET", "/api-keys/not-a-uuid", tok), 404, "not_found")
    expect(call("PUT", "/api-keys/" + F["key_read_id"], tok, {"name": "y"}), 405)
    expect(call("GET", "/api-keys"), 401, "unauthorized")
    check(sql("SELECT count(*) FROM saas.api_keys WHERE org_id = '%s'" % org) == before, "a bad request created a key")


@case
def api_keys_are_managed_by_admins_of_their_organization_only():
    tok, org = need("key_admin", "key_org")
    expect(call("POST", "/users", tok, {"email": email("keyuser"), "first_name": "K", "last_name": "U",
                                        "role": "user", "password": PASSWORD}), 201)
    user_tok = expect(login(email("keyuser")), 200).doc["token"]
    expect(call("POST", "/api-keys", user_tok, {"name": "mine", "scopes": ["users:read"]}), 403, "forbidden")
    expect(call("GET", "/api-keys", user_tok), 403, "forbidden")
    other = expect(register("keyother"), 201).doc["token"]
    expect(call("GET", "/api-keys/" + F["key_read_id"], other), 404, "not_found")
    expect(call("DELETE", "/api-keys/" + F["key_read_id"], other), 404, "not_found")
    check(expect(call("GET", "/api-keys", other), 200).doc["data"] == [], "another org lists A's keys")
    F["key_other_admin"] = other


@case
def an_api_key_reads_users_with_users_read_and_nothing_else():
    key, org = need("key_read", "key_org")
    a = expect(call("GET", "/users", key), 200)
    check(all(u["org_id"] == org for u in a.doc["data"]) and a.doc["data"], "users seen: %r" % a)
    check(a.h("ratelimit-limit"), "no RateLimit headers for a key")
    uid = a.doc["data"][0]["id"]
    expect(call("GET", "/users/" + uid, key), 200)
    expect(call("GET", "/organizations/" + org, key), 200)
    for m, p, body in (("POST", "/users", {"email": email("k1"), "first_name": "K", "last_name": "K", "role": "user"}),
                       ("PUT", "/users/" + uid, {"first_name": "Changed"}),
                       ("DELETE", "/users/" + uid, None),
                       ("GET", "/audit-logs", None),
                       ("GET", "/integrations/status", None),
                       ("GET", "/jobs", None),
                       ("GET", "/api-keys", None),
                       ("POST", "/api-keys", {"name": "child", "scopes": ["users:read"]}),
                       ("DELETE", "/api-keys/" + F["key_write_id"], None),
                       ("PUT", "/organizations/" + org, {"name": "Taken over"}),
                       ("POST", "/auth/logout", None),
                       ("POST", "/jobs/retry", {})):
        expect(call(m, p, key, body), 403, "forbidden")
    check(sql("SELECT count(*) FROM saas.users WHERE org_id = '%s' AND first_name = 'Changed'" % org) == "0",
          "a users:read key changed a user")
    check(sql("SELECT count(*) FROM saas.api_keys WHERE org_id = '%s' AND revoked_at IS NOT NULL" % org) == "0",
          "a key revoked a key")


@case
def an_api_key_with_users_write_manages_plain_users_but_no_roles():
    key, key_id, org, admin_id = need("key_write", "key_write_id", "key_org", "key_admin_id")
    u = expect(call("POST", "/users", key, {"email": email("bot"), "first_name": "Bo", "last_name": "T",
                                           "role": "user"}), 201).doc
    expect(call("PUT", "/users/" + u["id"], key, {"last_name": "Tee"}), 200)
    expect(call("PUT", "/users/" + u["id"], key, {"role": "admin"}), 403, "forbidden")
    expect(call("POST", "/users", key, {"email": email("boss"), "first_name": "B", "last_name": "S",
                                       "role": "admin"}), 403, "forbidden")
    expect(call("PUT", "/users/" + u["id"], key, {"password": "a brand new passphrase"}), 403, "forbidden")
    expect(call("PUT", "/users/" + admin_id, key, {"first_name": "Owned"}), 403, "forbidden")
    expect(call("DELETE", "/users/" + admin_id, key), 403, "forbidden")
    expect(call("DELETE", "/users/" + u["id"], key), 204)
    check(sql("SELECT role FROM saas.users WHERE id = '%s'" % admin_id) == "admin", "the admin changed")
    F["key_bot_id"] = u["id"]


@case
def audit_entries_made_with_an_api_key_name_the_key():
    key, write_id, bot = need("key_audit", "key_write_id", "key_bot_id")
    a = expect(call("GET", "/audit-logs?limit=200", key), 200)
    mine = [e for e in a.doc["data"] if e.get("entity_id") == bot]
    check(len(mine) >= 3, "the bot's audit entries: %r" % mine)
    check(all(e["actor_id"] == write_id and e["actor_role"] == "api_key" for e in mine),
          "entries do not name the key: %r" % mine)
    check(any(e.get("entity") == "api_key" and e.get("action") == "create" for e in a.doc["data"]),
          "creating keys is not audited")
    expect(call("GET", "/users", key), 403, "forbidden")
    expect(call("GET", "/integrations/status", F["key_ops"]), 200)
    expect(call("GET", "/jobs", F["key_ops"]), 200)


@case
def forged_and_foreign_api_keys_are_401():
    key, org = need("key_read", "key_org")
    other_org = sql("SELECT org_id FROM saas.api_keys WHERE org_id <> '%s' LIMIT 1" % org)
    last = key[-1]
    changed = key[:-1] + ("A" if last != "A" else "B")
    parts = ["sk", key[3:35], key[36:68], key[69:]]
    for bad in (changed, key + "x", key[:-1], key.upper().replace("SK_", "sk_"), "sk_", "sk_" + "0" * 108,
                "sk_%s_%s_%s" % ("0" * 32, parts[2], parts[3]),
                "sk_%s_%s_%s" % (parts[1], "0" * 32, parts[3])):
        expect(call("GET", "/users", bad), 401, "unauthorized")
    if other_org:
        expect(call("GET", "/users", "sk_%s_%s_%s" % (other_org.replace("-", ""), parts[2], parts[3])),
               401, "unauthorized")
    # A's key never reaches B's rows
    b_user = sql("SELECT id FROM saas.users WHERE org_id <> '%s' LIMIT 1" % org)
    expect(call("GET", "/users/" + b_user, key), 404, "not_found")


@case
def an_api_key_is_rate_limited_per_key():
    read, write = need("key_read", "key_write")
    try:
        set_limits("api_key", 60, 3)
        statuses, last = [], None
        for _ in range(6):
            last = call("GET", "/users?limit=1", read)
            statuses.append(last.status)
        check(statuses[0] == 200 and statuses[-1] == 429, "statuses %r" % statuses)
        expect(last, 429)
        check(last.h("ratelimit-limit") == "3" and int(last.h("retry-after") or 0) >= 1, "headers %r" % last.headers)
        expect(call("GET", "/users?limit=1", write), 200)      # another key: its own budget
    finally:
        restore_limits()


@case
def a_revoked_api_key_stops_at_once():
    tok, key, key_id = need("key_admin", "key_write", "key_write_id")
    expect(call("GET", "/users?limit=1", key), 200)
    before = expect(call("GET", "/api-keys/" + key_id, tok), 200).doc
    check(before["last_used_at"] is not None, "last_used_at not recorded: %r" % before)
    expect(call("DELETE", "/api-keys/" + key_id, tok), 204)
    # every pooled backend refuses it from the next request on, and so does SQL
    for _ in range(8):
        expect(call("GET", "/users?limit=1", key), 401, "unauthorized")
    try:
        out = sql("SELECT saas.authenticate_api_key('%s') IS NOT NULL" % key)
    except RuntimeError as e:   # psql fails: the key is refused
        out = str(e)
    check("invalid API key" in out, "SQL still accepts the revoked key: %r" % out)
    after = expect(call("GET", "/api-keys/" + key_id, tok), 200).doc
    check(after["status"] == "revoked" and after["revoked_at"], "after revocation: %r" % after)
    expect(call("DELETE", "/api-keys/" + key_id, tok), 409, "conflict")
    expect(call("GET", "/users?limit=1", F["key_read"]), 200)      # the other keys still work


@case
def an_expired_api_key_is_401():
    tok = need("key_admin")
    k = _new_key(tok, "short", ["users:read"], expires_at=time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                      time.gmtime(time.time() + 2)))
    expect(call("GET", "/users?limit=1", k["key"]), 200)
    time.sleep(3.2)
    expect(call("GET", "/users?limit=1", k["key"]), 401, "unauthorized")
    check(expect(call("GET", "/api-keys/" + k["id"], tok), 200).doc["status"] == "expired", "status")


@case
def an_api_key_stops_when_its_creator_is_no_longer_an_admin():
    tok, org = need("key_admin", "key_org")
    second = expect(call("POST", "/users", tok, {"email": email("admin2"), "first_name": "Sec", "last_name": "Ond",
                                                 "role": "admin", "password": PASSWORD}), 201).doc
    tok2 = expect(login(email("admin2")), 200).doc["token"]
    k = _new_key(tok2, "by the second admin", ["users:read"])
    check(k["created_by"] == second["id"], "created_by: %r" % k)
    expect(call("GET", "/users?limit=1", k["key"]), 200)
    expect(call("PUT", "/users/" + second["id"], tok, {"role": "user"}), 200)
    for _ in range(4):
        expect(call("GET", "/users?limit=1", k["key"]), 401, "unauthorized")
    expect(call("PUT", "/users/" + second["id"], tok, {"role": "admin"}), 200)
    expect(call("GET", "/users?limit=1", k["key"]), 200)
