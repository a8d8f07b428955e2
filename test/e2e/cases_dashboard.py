"""The dashboard's routes (docs/dashboard.md): GET /integrations/calls, GET /webhook-events,
GET /audit-logs/verify; roles, tenants, parameters and paging. Loaded by test_e2e.py."""

from e2e_lib import *  # noqa: F401,F403
from e2e_lib import F, PASSWORD, call, email, expect, login, need, register, sql
from saas_test import case, check


@case
def dashboard_fixtures_two_orgs_and_a_plain_user():
    a = expect(register("dash-a"), 201).doc
    b = expect(register("dash-b"), 201).doc
    F["dash_a"], F["dash_org_a"] = a["token"], a["organization"]["id"]
    F["dash_b"], F["dash_org_b"] = b["token"], b["organization"]["id"]
    expect(call("POST", "/users", F["dash_a"], {"email": email("dash-u"), "first_name": "U", "last_name": "Ser",
                                                "role": "user", "password": PASSWORD}), 201)
    F["dash_user"] = expect(login(email("dash-u")), 200).doc["token"]


@case
def integration_calls_has_a_point_per_minute_and_service_for_admins():
    tok = need("dash_a")
    d = expect(call("GET", "/integrations/calls", tok), 200).doc
    check(d["minutes"] == 60, "minutes %r" % d.get("minutes"))
    for svc in ("userService", "paymentService", "communicationService"):
        pts = d["services"][svc]
        check(len(pts) == 60, "%s has %d points" % (svc, len(pts)))
        check(all(p["calls"] >= p["errors"] >= 0 for p in pts), "%s: errors above calls" % svc)
        check([p["minute"] for p in pts] == sorted(p["minute"] for p in pts), "%s not oldest first" % svc)
    d = expect(call("GET", "/integrations/calls?minutes=5", tok), 200).doc
    check(all(len(v) == 5 for v in d["services"].values()), "minutes=5: %r" % d)


@case
def integration_calls_refuses_bad_minutes_users_and_strangers():
    tok = need("dash_a")
    for q in ("0", "61", "-1", "abc", "", "1e1", "5%20", "99999999999999999999"):
        expect(call("GET", "/integrations/calls?minutes=" + q, tok), 400, "validation_failed", {"minutes"})
    expect(call("GET", "/integrations/calls?minutes=5%00", tok), 400, "bad_request")
    expect(call("GET", "/integrations/calls?limit=5", tok), 400)
    expect(call("GET", "/integrations/calls", need("dash_user")), 403, "forbidden")
    expect(call("GET", "/integrations/calls"), 401, "unauthorized")
    expect(call("GET", "/integrations/calls", "not.a.token"), 401, "unauthorized")
    expect(call("POST", "/integrations/calls", tok, {}), 405, "method_not_allowed")


def _insert_events(org, n, prefix):
    sql("INSERT INTO saas.webhook_events (org_id, service, event_id, event_type, occurred_at, entity_ref,"
        " payload, received_at, applied_at, apply_result)"
        " SELECT '%s', 'user-service', '%s-' || i, 'user.updated', now(), 'ext-' || i, '{}',"
        " '2026-01-01T00:00:00.123456Z', CASE WHEN i %% 2 = 0 THEN now() END,"
        " CASE WHEN i %% 2 = 0 THEN CASE WHEN i %% 4 = 0 THEN 'applied' ELSE 'stale: newer state' END END"
        " FROM generate_series(1, %d) i" % (org, prefix, n))


@case
def webhook_events_pages_newest_first_without_gaps_or_repeats():
    tok, org = need("dash_a", "dash_org_a")
    _insert_events(org, 7, "dash-evt")        # one delivery: every event has the same received_at
    seen, cursor, pages = [], None, 0
    while True:
        a = expect(call("GET", "/webhook-events?limit=3" + ("&cursor=" + cursor if cursor else ""), tok), 200)
        seen += [e["event_id"] for e in a.doc["data"]]
        pages += 1
        cursor = a.doc["next_cursor"]
        if cursor is None or pages > 5:
            break
    mine = [e for e in seen if e.startswith("dash-evt-")]
    check(len(mine) == 7 and len(set(mine)) == 7, "pages gave %r" % seen)
    check(pages == 3, "%d pages for 7 events by 3" % pages)
    d = expect(call("GET", "/webhook-events?state=pending", tok), 200).doc
    check(d["data"] and all(e["applied_at"] is None for e in d["data"]), "pending: %r" % d)
    d = expect(call("GET", "/webhook-events?state=applied", tok), 200).doc
    check([e["apply_result"] for e in d["data"]] == ["applied"], "applied: %r" % d)
    d = expect(call("GET", "/webhook-events?state=rejected&service=user-service", tok), 200).doc
    check(len(d["data"]) == 2 and all(e["apply_result"].startswith("stale") for e in d["data"]), "rejected: %r" % d)
    d = expect(call("GET", "/webhook-events?service=payment-service", tok), 200).doc
    check(d["data"] == [], "payment-service: %r" % d)


@case
def webhook_events_are_the_callers_organizations_only():
    tok_b, org_a = need("dash_b", "dash_org_a")
    d = expect(call("GET", "/webhook-events?limit=200", tok_b), 200).doc
    check(not any(e["event_id"].startswith("dash-evt-") for e in d["data"]), "org b sees org a's events: %r" % d)
    # a cursor names a position, not a tenant: org a's key gives org b nothing of org a
    a = expect(call("GET", "/webhook-events?limit=1", need("dash_a")), 200).doc
    d = expect(call("GET", "/webhook-events?cursor=" + a["next_cursor"], tok_b), 200).doc
    check(not any(e["event_id"].startswith("dash-evt-") for e in d["data"]), "cursor leaks: %r" % d)
    # and as saas_api in SQL, the function obeys the same policy
    try:
        out = sql("SET ROLE saas_api; SELECT saas.list_webhook_events(NULL, NULL, NULL, 10)")
    except RuntimeError as e:
        out = str(e)
    check("authentication required" in out, "without a context, as saas_api: %r" % out)
    # a forged context is no context
    try:
        out = sql("SET ROLE saas_api; SELECT set_config('saas.context', 'x.y.z', false);"
                  " SELECT saas.list_webhook_events(NULL, NULL, NULL, 10)")
    except RuntimeError as e:
        out = str(e)
    check("authentication required" in out, "with a forged context: %r" % out)


@case
def webhook_events_refuses_bad_filters_cursors_and_roles():
    tok = need("dash_a")
    expect(call("GET", "/webhook-events?state=done", tok), 400, "validation_failed", {"state"})
    expect(call("GET", "/webhook-events?service=evil", tok), 400, "validation_failed", {"service"})
    expect(call("GET", "/webhook-events?limit=0", tok), 400, "validation_failed", {"limit"})
    for c in ("!!", "AAAA", "MTIz", "MSBwYXltZW50LXNlcnZpY2UgenoK", "x" * 300):
        expect(call("GET", "/webhook-events?cursor=" + c, tok), 400, "validation_failed", {"cursor"})
    expect(call("GET", "/webhook-events?org_id=" + need("dash_org_b"), tok), 400)
    expect(call("GET", "/webhook-events", need("dash_user")), 403, "forbidden")
    expect(call("GET", "/webhook-events"), 401, "unauthorized")
    expect(call("DELETE", "/webhook-events", tok), 405, "method_not_allowed")


@case
def audit_verify_reports_the_chain_of_the_callers_organization():
    tok, org = need("dash_a", "dash_org_a")
    d = expect(call("GET", "/audit-logs/verify", tok), 200).doc
    check(d["org_id"] == org and d["ok"] is True and d["checked"] >= 2 and d["problem"] is None, "%r" % d)
    expect(call("GET", "/audit-logs/verify?org_id=" + need("dash_org_b"), tok), 404, "not_found")
    expect(call("GET", "/audit-logs/verify?org_id=nope", tok), 404, "not_found")
    expect(call("GET", "/audit-logs/verify", need("dash_user")), 403, "forbidden")
    expect(call("GET", "/audit-logs/verify"), 401, "unauthorized")
    expect(call("GET", "/audit-logs/verify?x=1", tok), 400)


@case
def audit_verify_finds_a_tampered_entry():
    tok, org = need("dash_b", "dash_org_b")
    sql("SET session_replication_role = replica; UPDATE saas.audit_log SET changes = '{\"tampered\":true}'"
        " WHERE org_id = '%s' AND seq = 1" % org)
    d = expect(call("GET", "/audit-logs/verify", tok), 200).doc
    check(d["ok"] is False and d["first_bad_seq"] == 1 and d["problem"], "tampering not found: %r" % d)
