"""Attacks on the identity features from outside (issue 11: sessions, SSO, invitations and
password reset, the dashboard routes), each a case that failed before its fix. The SQL here runs
as the relay's own login role (a member of saas_api, as an application would), never as the owner,
except to set the scene or to prove that what is looked for exists."""

import json
import os
import re
import subprocess
import time

from e2e_lib import *
from saas_test import case, check, Skip


def api_sql(query):
    """Statements as the relay's login role (a member of saas_api): what an application may run."""
    r = subprocess.run(["psql", DSN, "-X", "-At", "-v", "ON_ERROR_STOP=1", "-c", query],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError("psql failed: %s" % r.stderr.strip())
    return r.stdout.strip()


def _tokens_in(text, prefix):
    return re.findall(r"%s_[A-Za-z0-9_-]{80,}" % prefix, text or "")


@case
def identity_attack_fixtures():
    root = need("root")
    # A platform organization admin (not a super_admin), made by the super_admin.
    expect(call("POST", "/users", root, body={"email": email("ia-platadmin"), "first_name": "Plat",
                                              "last_name": "Admin", "role": "admin",
                                              "password": "platform admin password"}), 201)
    F["ia_plat_admin"] = expect(login(email("ia-platadmin"), "platform admin password"), 200).doc["token"]
    # A second super_admin, the victim (ROOT is left alone for the other cases).
    sql("SELECT saas.create_super_admin('%s', 'victim super admin password')" % email("ia-victim-root"))
    # A tenant with its admin and a plain user.
    r = expect(register("iaorg"), 201)
    F["ia_admin"], F["ia_org"] = r.doc["token"], r.doc["organization"]["id"]
    expect(call("POST", "/users", F["ia_admin"], body={"email": email("ia-user"), "first_name": "Ia",
                                                       "last_name": "User", "role": "user",
                                                       "password": "plain users password"}), 201)


@case
def identity_attack_admin_cannot_read_reset_or_invitation_tokens_from_jobs():
    """A pending password reset job carries the token; saas_api may read saas.jobs as an admin.
    Before the fix a platform admin read a super_admin's reset token there and took the account."""
    plat_admin, admin = need("ia_plat_admin", "ia_admin")
    expect(call("POST", "/auth/password-reset", body={"email": email("ia-victim-root")}), 202)
    expect(call("POST", "/auth/password-reset", body={"email": email("ia-user")}), 202)
    expect(call("POST", "/invitations", admin, body={"email": email("ia-invitee"), "role": "admin"}), 201)
    # The owner sees the tokens waiting (so the attack below has something to find).
    owner_view = sql("SELECT string_agg(payload::text, ' ') FROM saas.jobs WHERE kind IN "
                     "('message.password_reset', 'message.invitation') AND state NOT IN ('succeeded', 'dead')")
    waiting = _tokens_in(owner_view, "rst") + _tokens_in(owner_view, "inv")
    if not waiting:
        raise Skip("the worker delivered the messages already: nothing left to steal")
    for who, tok in (("platform admin", plat_admin), ("tenant admin", admin)):
        out = api_sql("BEGIN; SELECT saas.authenticate('%s') IS NOT NULL;"
                      " SELECT 'payloads: ' || coalesce(string_agg(payload::text, ' '), '')"
                      "   FROM saas.jobs WHERE kind IN ('message.password_reset', 'message.invitation');"
                      " SELECT 'all: ' || coalesce(string_agg(payload::text, ' '), '') FROM saas.jobs;"
                      " COMMIT;" % tok)
        stolen = _tokens_in(out, "rst") + _tokens_in(out, "inv")
        check(not stolen, "the %s read one-time tokens from saas.jobs: %r" % (who, stolen[:2]))
        check("payloads:" in out, "the query did not run: %r" % out)
    # What an admin could do with one: set a super_admin's password (refused over HTTP).
    victim = sql("SELECT id FROM saas.users WHERE email = '%s'" % email("ia-victim-root"))
    expect(call("PUT", "/users/" + victim, plat_admin, body={"password": "taken over password"}), 403, "forbidden")
    expect(login(email("ia-victim-root"), "victim super admin password"), 200)
    # GET /jobs never showed payloads; it still answers for the admin.
    a = expect(call("GET", "/jobs", admin), 200)
    check("rst_" not in a.data.decode() and "inv_" not in a.data.decode(), "GET /jobs shows a token: %r" % a)


@case
def identity_attack_request_secrets_stay_out_of_the_server_log():
    """With log_statement = 'all' (or log_min_duration_statement) the server logged every request
    body and header given to saas.http: refresh tokens, passwords, client secrets, reset and
    invitation tokens, bearer tokens. The log hook now cuts them out of the server's own lines."""
    if not PGLOG or not os.path.exists(PGLOG):
        raise Skip("no server log to read")
    r = expect(register("ialog"), 201)
    rt, at = r.doc["refresh_token"], r.doc["token"]
    marker = "ia-log-marker-" + RUN
    password = 'pw with "quote" tail-' + RUN
    secrets = {"refresh token": rt, "access token": at, "password": "tail-" + RUN,
               "client secret": "cs-" + RUN, "reset token": "rst_" + "Q" * 86, "invitation token": "inv_" + "W" * 86}
    body = json.dumps({"refresh_token": rt, "password": password, "current_password": "cur-" + RUN,
                       "client_secret": secrets["client secret"], "token": secrets["reset token"],
                       "nested": json.dumps({"password": "nested-" + RUN, "token": secrets["invitation token"]})})
    hdrs = json.dumps({"authorization": "Bearer " + at, "content-type": "application/json", "x-marker": marker})
    start = os.path.getsize(PGLOG)
    # Two statements sent apart (psql reads them from its input): SET then the logged call.
    script = ("SET log_statement = 'all';\nSELECT status FROM saas.http('POST', '/auth/refresh', '%s', '%s');\n"
              % (hdrs.replace("'", "''"), body.replace("'", "''")))
    r = subprocess.run(["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", PGHOST, "-p", str(PGPORT), "-U", "postgres",
                        "-d", DB], input=script, capture_output=True, text=True, timeout=60)
    check(r.returncode == 0 and "400" in r.stdout, "the call failed: %s %s" % (r.stdout, r.stderr))
    log = ""
    for _ in range(20):
        with open(PGLOG, errors="replace") as f:
            f.seek(start)
            log = f.read()
        if marker in log:
            break
        time.sleep(0.2)
    check(marker in log, "the statement was not logged at all")
    for what, secret in list(secrets.items()) + [("current password", "cur-" + RUN), ("nested", "nested-" + RUN)]:
        check(secret not in log, "the server log shows the %s" % what)
    check("[redacted]" in log, "no redaction in the logged statement")
