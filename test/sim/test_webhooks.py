"""saas-sim: events and their Standard Webhooks deliveries: shapes, signatures
(checked by simtest.verify, an implementation independent of the C code),
retries, duplicates, out-of-order delivery, pause."""

import base64
import re
import time

import simtest
from simtest import check, eq, verify

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
USER = "user-service"
PAY = "payment-service"
COMM = "communication-service"


def new_user(ctx, email, **extra):
    body = {"organization_id": "org_001", "email": email, "first_name": "W", "last_name": "H"}
    body.update(extra)
    r = ctx.sim.api(USER, "POST", "/v1/users", body)
    eq(r.status, 201, "create user: %r" % r)
    return r.json["data"]


def wait_stats(ctx, service, cond, timeout=5):
    """The service's stats once cond holds (counters follow the receiver's answer by a moment)."""
    return simtest.wait_for(lambda: (lambda s: s if cond(s) else None)(ctx.sim.stats(service)),
                            timeout=timeout, what="stats of " + service)


def events(items):
    return [it.json for it in items]


def test_user_events_have_the_fixture_shape_and_are_signed(ctx):
    u = new_user(ctx, "ev@techcorp.com", title="Engineer")
    ctx.sim.api(USER, "PUT", "/v1/users/" + u["user_id"], {"title": "Lead", "status": "suspended"})
    ctx.sim.api(USER, "PUT", "/v1/users/" + u["user_id"], {"status": "active"})
    ctx.sim.api(USER, "DELETE", "/v1/users/" + u["user_id"])
    items = ctx.recv.wait(6, USER)
    got = events(items)
    eq([e["event_type"] for e in got],
       ["user.created", "user.updated", "user.deactivated", "user.updated", "user.activated", "user.deleted"],
       "event types in order")
    for it in items:
        e = it.json
        eq(it.path, "/webhooks/user-service", "delivery path")
        for k in ("event_id", "event_type", "timestamp", "organization_id", "data"):
            check(k in e, "event field %s missing: %r" % (k, e))
        check(RFC3339.match(e["timestamp"]), "timestamp %r" % e["timestamp"])
        eq(e["organization_id"], "org_001", "organization_id")
        eq(e["data"]["user_id"], u["user_id"], "data.user_id")
        eq(it.headers["webhook-id"], e["event_id"], "webhook-id is the event id")
        check(verify(ctx.secrets[USER], it.headers, it.body), "signature of %s" % e["event_type"])
        eq(it.headers.get("content-type"), "application/json", "content type")
    eq(got[0]["data"]["email"], "ev@techcorp.com", "created data")
    eq(got[1]["data"]["changes"], {"title": "Lead", "status": "suspended"}, "changes")
    eq(got[1]["data"]["previous_values"], {"title": "Engineer", "status": "active"}, "previous_values")
    eq(got[5]["data"]["email"], "ev@techcorp.com", "deleted data")
    stamps = [e["timestamp"] for e in got]
    eq(stamps, sorted(stamps), "timestamps increase")
    eq(len(set(stamps)), len(stamps), "timestamps are distinct")
    eq(len(set(e["event_id"] for e in got)), 6, "distinct event ids")
    s = wait_stats(ctx, USER, lambda s: s["webhooks_sent"] == 6)
    eq((s["events_emitted"], s["webhooks_sent"], s["webhooks_failed"]), (6, 6, 0), "webhook stats")


def test_tampered_or_wrongly_keyed_deliveries_fail_verification(ctx):
    new_user(ctx, "tamper@techcorp.com")
    it = ctx.recv.wait(1, USER)[0]
    check(verify(ctx.secrets[USER], it.headers, it.body), "genuine delivery verifies")
    tampered = it.body.replace(b"tamper@", b"tamperX")
    check(tampered != it.body, "the body was changed")
    check(not verify(ctx.secrets[USER], it.headers, tampered), "tampered body must fail")
    check(not verify(ctx.secrets[PAY], it.headers, it.body), "another service's secret must fail")
    h = dict(it.headers, **{"webhook-timestamp": str(int(it.headers["webhook-timestamp"]) + 1)})
    check(not verify(ctx.secrets[USER], h, it.body), "changed timestamp must fail")
    h = dict(it.headers, **{"webhook-id": it.headers["webhook-id"] + "x"})
    check(not verify(ctx.secrets[USER], h, it.body), "changed id must fail")
    check(abs(int(it.headers["webhook-timestamp"]) - time.time()) < 60, "timestamp is now, in seconds")
    # the documented default secret is whsec_ + base64(secret_key)
    eq(ctx.secrets[USER], "whsec_" + base64.b64encode(b"user_webhook_secret_123").decode(), "default secret")


def test_payment_and_communication_events(ctx):
    r = ctx.sim.api(PAY, "POST", "/v2/subscriptions", {"customer_id": "cust_67890", "plan": "starter"})
    sub = r.json["data"]["subscription_id"]
    ctx.sim.api(PAY, "POST", "/v2/subscriptions", {"customer_id": "cust_67890", "plan": "starter",
                                                   "payment_method": "card_declined"})
    ctx.sim.api(PAY, "PUT", "/v2/subscriptions/" + sub, {"plan": "enterprise"})
    ctx.sim.api(PAY, "DELETE", "/v2/subscriptions/" + sub)
    pay = events(ctx.recv.wait(8, PAY))
    eq([e["event_type"] for e in pay],
       ["subscription.created", "invoice.created", "payment.succeeded",
        "subscription.created", "invoice.created", "payment.failed",
        "subscription.updated", "subscription.canceled"], "payment event types")
    eq(pay[0]["data"]["subscription_id"], sub, "subscription id")
    eq((pay[0]["data"]["plan"], pay[0]["data"]["amount"], pay[0]["data"]["currency"]),
       ("starter", 49.99, "USD"), "subscription.created data")
    eq(pay[5]["data"]["failure_code"], "card_declined", "payment.failed data")
    eq(pay[6]["data"]["changes"], {"plan": "enterprise", "amount": 999.99}, "subscription.updated changes")
    check(all(e["organization_id"] == "org_001" for e in pay), "organization of the customer")
    for it in ctx.recv.received(PAY):
        check(verify(ctx.secrets[PAY], it.headers, it.body), "payment signature")
    ctx.sim.api(COMM, "POST", "/v1/messages", {"organization_id": "org_002", "recipient": "w@startup.io",
                                               "simulate": ["opened", "clicked"]})
    ctx.sim.api(COMM, "POST", "/v1/messages", {"organization_id": "org_002",
                                               "recipient": "invalid.email@nonexistent.com"})
    comm = events(ctx.recv.wait(6, COMM))
    eq([e["event_type"] for e in comm],
       ["message.sent", "message.delivered", "message.opened", "message.clicked",
        "message.sent", "message.bounced"], "communication event types")
    eq(comm[5]["data"]["bounce_type"], "permanent", "bounce data")
    for it in ctx.recv.received(COMM):
        check(verify(ctx.secrets[COMM], it.headers, it.body), "communication signature")


def test_delivery_retried_until_2xx(ctx):
    ctx.recv.plan(USER, [(500, {}), (500, {}), (200, {})])
    new_user(ctx, "retry@techcorp.com")
    items = ctx.recv.wait(3, USER, timeout=10)
    eq(len(items), 3, "three attempts")
    eq(len(set(it.headers["webhook-id"] for it in items)), 1, "one webhook-id across attempts")
    eq(len(set(it.body for it in items)), 1, "same body across attempts")
    for it in items:
        check(verify(ctx.secrets[USER], it.headers, it.body), "each attempt is signed")
    gaps = [items[i + 1].at - items[i].at for i in range(2)]
    check(gaps[0] >= 0.08 and gaps[1] >= 0.16, "exponential backoff from 100 ms: %r" % gaps)
    check(gaps[1] > gaps[0] * 1.4, "the second wait is longer: %r" % gaps)
    s = wait_stats(ctx, USER, lambda s: s["webhooks_sent"] == 1)
    eq((s["webhooks_sent"], s["webhooks_failed"], s["webhooks_retried"], s["webhook_attempts"],
        s["webhooks_pending"]), (1, 2, 2, 3, 0), "stats after retries")
    time.sleep(0.4)
    eq(len(ctx.recv.received(USER)), 3, "nothing more after the 2xx")


def test_delivery_given_up_after_max_attempts(ctx):
    ctx.sim.webhooks({"max_attempts": 3, "retry_base_ms": 50})
    ctx.recv.plan(USER, [(500, {})] * 10)
    new_user(ctx, "dead@techcorp.com")
    s = wait_stats(ctx, USER, lambda s: s["webhooks_dead"] == 1)
    eq((s["webhooks_sent"], s["webhooks_failed"], s["webhook_attempts"], s["webhooks_pending"]),
       (0, 3, 3, 0), "stats after giving up")
    time.sleep(0.3)
    eq(len(ctx.recv.received(USER)), 3, "exactly max_attempts deliveries")
    recent = ctx.sim.ctl("GET", "/_sim/webhooks?service=user-service").json["recent"]
    eq([r["status"] for r in recent], [500, 500, 500], "attempt log")


def test_unreachable_receiver_counts_failures_then_delivers(ctx):
    dead = simtest.free_port()
    ctx.sim.webhooks({"url": "http://127.0.0.1:%d/webhooks" % dead, "retry_base_ms": 50})
    new_user(ctx, "later@techcorp.com")
    wait_stats(ctx, USER, lambda s: s["webhooks_failed"] >= 2)
    ctx.sim.webhooks({"url": ctx.recv.url})
    it = ctx.recv.wait(1, USER, timeout=10)[0]
    eq(it.json["data"]["email"], "later@techcorp.com", "delivered after the receiver came up")
    recent = ctx.sim.ctl("GET", "/_sim/webhooks").json["recent"]
    check(recent[0]["status"] == 0 and recent[0]["error"], "a transport error is logged: %r" % recent[0])


def test_receiver_retry_after_is_honoured(ctx):
    ctx.sim.webhooks({"retry_base_ms": 20})
    ctx.recv.plan(USER, [(503, {"Retry-After": "1"}), (200, {})])
    new_user(ctx, "ra@techcorp.com")
    items = ctx.recv.wait(2, USER, timeout=6)
    gap = items[1].at - items[0].at
    check(gap >= 0.9, "waited for Retry-After: 1 (gap %.2fs)" % gap)


def test_duplicate_rate_sends_every_delivery_twice(ctx):
    ctx.sim.webhooks({"duplicate_rate": 1.0})
    new_user(ctx, "dup1@techcorp.com")
    new_user(ctx, "dup2@techcorp.com")
    items = ctx.recv.wait(4, USER)
    time.sleep(0.3)
    items = ctx.recv.received(USER)
    eq(len(items), 4, "two events, each twice")
    ids = [it.json["event_id"] for it in items]
    eq(len(set(ids)), 2, "two distinct events")
    for eid in set(ids):
        same = [it for it in items if it.json["event_id"] == eid]
        eq(len(same), 2, "copies of " + eid)
        eq(same[0].headers["webhook-id"], same[1].headers["webhook-id"], "same webhook-id")
        eq(same[0].body, same[1].body, "same body")
        check(all(verify(ctx.secrets[USER], it.headers, it.body) for it in same), "both signed")
    s = wait_stats(ctx, USER, lambda s: s["webhooks_sent"] == 4)
    eq((s["webhooks_duplicated"], s["webhooks_sent"], s["events_emitted"]), (2, 4, 2), "stats")


def test_duplicate_rate_from_the_command_line(ctx):
    sim = ctx.new_sim(webhook_url=ctx.recv.url, args=["--duplicate-rate", "1"])
    try:
        sim.api(USER, "POST", "/v1/users", {"organization_id": "org_001", "email": "cli@techcorp.com",
                                            "first_name": "C", "last_name": "L"})
        items = ctx.recv.wait(2, USER)
        eq(items[0].json["event_id"], items[1].json["event_id"], "the same event twice")
        eq(sim.stats(USER)["webhooks_duplicated"], 1, "counted")
    finally:
        eq(sim.stop(), 0, "exit code")


def test_shuffle_delivers_out_of_order(ctx):
    ctx.sim.webhooks({"shuffle": True, "shuffle_window_ms": 500})
    emails = ["order%02d@techcorp.com" % i for i in range(12)]
    for e in emails:
        new_user(ctx, e)
    items = ctx.recv.wait(12, USER, timeout=10)
    got = [it.json["data"]["email"] for it in items]
    eq(sorted(got), emails, "every event arrives once")
    check(got != emails, "out of order: %r" % got)
    stamps = [it.json["timestamp"] for it in items]
    check(stamps != sorted(stamps), "timestamps show the disorder")


def test_shuffle_from_the_command_line(ctx):
    sim = ctx.new_sim(webhook_url=ctx.recv.url, args=["--shuffle", "--shuffle-window-ms", "500"])
    try:
        emails = ["cli%02d@techcorp.com" % i for i in range(10)]
        for e in emails:
            sim.api(USER, "POST", "/v1/users", {"organization_id": "org_001", "email": e,
                                                "first_name": "S", "last_name": "H"})
        items = ctx.recv.wait(10, USER, timeout=10)
        got = [it.json["data"]["email"] for it in items]
        eq(sorted(got), emails, "all arrive")
        check(got != emails, "out of order: %r" % got)
    finally:
        eq(sim.stop(), 0, "exit code")


def test_pause_holds_deliveries_until_resumed(ctx):
    ctx.sim.webhooks({"paused": True})
    new_user(ctx, "p1@techcorp.com")
    new_user(ctx, "p2@techcorp.com")
    time.sleep(0.5)
    eq(len(ctx.recv.received(USER)), 0, "nothing while paused")
    eq(ctx.sim.ctl("GET", "/_sim/webhooks").json["pending"][USER], 2, "two pending")
    ctx.sim.webhooks({"paused": False})
    items = ctx.recv.wait(2, USER)
    eq([it.json["data"]["email"] for it in items], ["p1@techcorp.com", "p2@techcorp.com"], "in order")


def test_webhook_settings_are_validated(ctx):
    for bad in ({"duplicate_rate": 2}, {"url": "ftp://x"}, {"paused": "yes"}, {"max_attempts": 0},
                {"nonsense": 1}):
        r = ctx.sim.ctl("POST", "/_sim/webhooks", bad)
        check(simtest.is_error_shape(r, 400, "VALIDATION_ERROR"), "%r -> %r" % (bad, r))
    r = ctx.sim.ctl("GET", "/_sim/webhooks")
    eq(r.json["settings"]["duplicate_rate"], 0, "unchanged by refused settings")


def test_injected_event_is_delivered_signed(ctx):
    r = ctx.sim.ctl("POST", "/_sim/events/payment-service",
                    {"event_type": "payment.failed", "organization_id": "org_001",
                     "data": {"payment_id": "pay_x", "amount": 12.5}})
    eq(r.status, 202, "inject: %r" % r)
    eid = r.json["event_id"]
    it = ctx.recv.wait(1, PAY)[0]
    eq((it.json["event_id"], it.json["event_type"], it.json["data"]),
       (eid, "payment.failed", {"payment_id": "pay_x", "amount": 12.5}), "delivered as given")
    check(verify(ctx.secrets[PAY], it.headers, it.body), "signed")
    r = ctx.sim.ctl("POST", "/_sim/events/payment-service",
                    {"event_type": "user.created", "organization_id": "org_001", "data": {}})
    check(simtest.is_error_shape(r, 400, "VALIDATION_ERROR"), "event type of another service: %r" % r)


def test_secret_override_signs_with_the_given_key(ctx):
    secret = "whsec_" + base64.b64encode(b"an-override-key-for-tests").decode()
    sim = ctx.new_sim(webhook_url=ctx.recv.url, args=["--secret", "user-service=" + secret])
    try:
        sim.api(USER, "POST", "/v1/users", {"organization_id": "org_001", "email": "sec@techcorp.com",
                                            "first_name": "S", "last_name": "O"})
        it = ctx.recv.wait(1, USER)[0]
        check(verify(secret, it.headers, it.body), "verifies with the override")
        check(not verify(ctx.secrets[USER], it.headers, it.body), "not with the default")
    finally:
        eq(sim.stop(), 0, "exit code")
