"""saas-sim: the services' REST APIs, seeding, idempotency, control endpoints
and bad input.  Each function is one test case; ctx is run.Context."""

import re
import socket
import threading
import time

import simtest
from simtest import check, eq, is_error_shape, request

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
USER = "user-service"
PAY = "payment-service"
COMM = "communication-service"


def new_user(ctx, email, org="org_001", **extra):
    body = {"organization_id": org, "email": email, "first_name": "Test", "last_name": "User"}
    body.update(extra)
    r = ctx.sim.api(USER, "POST", "/v1/users", body)
    eq(r.status, 201, "POST /v1/users status (%r)" % r)
    return r.json["data"]


def test_health_lists_services_and_seeded_organizations(ctx):
    r = ctx.sim.ctl("GET", "/_sim/health")
    eq(r.status, 200, "health status")
    eq(r.json["status"], "ok", "health")
    eq(r.json["organizations"], ["org_001", "org_002"], "organizations from platform_data.json")
    for name, base in ((USER, "/v1"), (PAY, "/v2"), (COMM, "/v1")):
        s = r.json["services"][name]
        eq(s["listening"], True, name + " listening")
        eq(s["base"], base, name + " base")
        eq(s["port"], ctx.sim.port(name), name + " port")


def test_seeded_users_are_listed_per_organization(ctx):
    r = ctx.sim.api(USER, "GET", "/v1/users?organization_id=org_001")
    eq(r.status, 200, "status")
    eq(r.json["status"], "success", "envelope")
    users = r.json["data"]["users"]
    eq(sorted(u["user_id"] for u in users), ["ext_user_12345", "ext_user_54321"], "org_001 users")
    sarah = [u for u in users if u["user_id"] == "ext_user_12345"][0]
    eq((sarah["email"], sarah["first_name"], sarah["last_name"], sarah["status"]),
       ("admin@techcorp.com", "Sarah", "Johnson", "active"), "seeded fields")
    eq(r.json["data"]["pagination"]["total"], 2, "total")
    r = ctx.sim.api(USER, "GET", "/v1/users?organization_id=org_002")
    eq(r.json["data"]["users"], [], "org_002 has no user with a user_service id")
    eq(r.json["data"]["pagination"]["total"], 0, "org_002 total")


def test_get_user_has_the_fixture_shape_and_404_for_unknown(ctx):
    r = ctx.sim.api(USER, "GET", "/v1/users/ext_user_54321")
    eq(r.status, 200, "status")
    d = r.json["data"]
    for k in ("user_id", "email", "first_name", "last_name", "department", "title", "status",
              "manager_id", "hire_date", "last_updated"):
        check(k in d, "field %s missing from %r" % (k, d))
    check(RFC3339.match(d["last_updated"]), "last_updated is RFC 3339: %r" % d["last_updated"])
    r = ctx.sim.api(USER, "GET", "/v1/users/ext_user_99999")
    check(is_error_shape(r, 404, "USER_NOT_FOUND"), "unknown user: %r" % r)
    check("ext_user_99999" in r.json["message"], "message names the id")


def test_pagination_pages_cover_all_users_once(ctx):
    for i in range(5):
        new_user(ctx, "page%d@techcorp.com" % i)
    seen = []
    flags = []
    for page in (1, 2, 3):
        r = ctx.sim.api(USER, "GET", "/v1/users?organization_id=org_001&per_page=3&page=%d" % page)
        eq(r.status, 200, "page %d" % page)
        p = r.json["data"]["pagination"]
        eq((p["total"], p["page"], p["per_page"]), (7, page, 3), "pagination of page %d" % page)
        flags.append(p["has_more"])
        seen += [u["user_id"] for u in r.json["data"]["users"]]
    eq(flags, [True, True, False], "has_more")
    eq(len(seen), 7, "users over three pages")
    eq(len(set(seen)), 7, "no user on two pages")
    r = ctx.sim.api(USER, "GET", "/v1/users?organization_id=org_001&per_page=3&page=4")
    eq(r.json["data"]["users"], [], "past the last page")
    for bad in ("page=0", "per_page=0", "per_page=101", "page=x"):
        r = ctx.sim.api(USER, "GET", "/v1/users?" + bad)
        check(is_error_shape(r, 400, "INVALID_PARAMETER"), "%s: %r" % (bad, r))


def test_updated_since_returns_only_later_changes(ctx):
    time.sleep(0.01)
    mark = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 1)) + "Z"
    u = new_user(ctx, "since@techcorp.com")
    r = ctx.sim.api(USER, "GET", "/v1/users?organization_id=org_001&updated_since=" + mark)
    eq([x["user_id"] for x in r.json["data"]["users"]], [u["user_id"]], "only the new user")
    r = ctx.sim.api(USER, "GET", "/v1/users?updated_since=yesterday")
    check(is_error_shape(r, 400, "INVALID_PARAMETER"), "bad timestamp: %r" % r)


def test_create_user_validates_and_refuses_duplicate_email(ctx):
    u = new_user(ctx, "alice@techcorp.com", department="Product", hire_date="2024-02-15")
    check(u["user_id"].startswith("ext_user_"), "generated id %r" % u["user_id"])
    eq((u["status"], u["department"], u["hire_date"]), ("active", "Product", "2024-02-15"), "fields")
    r = ctx.sim.api(USER, "GET", "/v1/users/" + u["user_id"])
    eq(r.json["data"]["email"], "alice@techcorp.com", "readable after create")
    cases = [
        ({"organization_id": "org_001", "first_name": "A", "last_name": "B"}, "VALIDATION_ERROR"),
        ({"organization_id": "org_001", "email": "nope", "first_name": "A", "last_name": "B"}, "VALIDATION_ERROR"),
        ({"email": "x@y.com", "first_name": "A", "last_name": "B"}, "VALIDATION_ERROR"),
        ({"organization_id": "org_001", "email": "x@y.com", "first_name": "A", "last_name": "B",
          "shoe_size": 44}, "VALIDATION_ERROR"),
        ({"organization_id": "org_001", "email": "x@y.com", "first_name": "A", "last_name": "B",
          "status": "sleeping"}, "VALIDATION_ERROR"),
        ({"organization_id": "org_001", "email": "x@y.com", "first_name": 7, "last_name": "B"}, "VALIDATION_ERROR"),
    ]
    for body, code in cases:
        r = ctx.sim.api(USER, "POST", "/v1/users", body)
        check(is_error_shape(r, 400, code), "%r -> %r" % (body, r))
    r = ctx.sim.api(USER, "POST", "/v1/users", {"organization_id": "org_001", "email": "ALICE@techcorp.com",
                                                "first_name": "A", "last_name": "B"})
    check(is_error_shape(r, 409, "USER_ALREADY_EXISTS"), "duplicate email (case-insensitive): %r" % r)
    # the same email in another organization is another user
    new_user(ctx, "alice@techcorp.com", org="org_002")
    eq(ctx.sim.stats(USER)["effects"], 2, "effects: two creates, no failed ones")


def test_put_user_changes_fields_and_a_noop_put_is_no_effect(ctx):
    u = new_user(ctx, "bob@techcorp.com", title="Engineer")
    r = ctx.sim.api(USER, "PUT", "/v1/users/" + u["user_id"], {"title": "Senior Engineer"})
    eq(r.status, 200, "PUT status")
    eq(r.json["data"]["title"], "Senior Engineer", "title changed")
    check(r.json["data"]["last_updated"] >= u["last_updated"], "last_updated moved")
    before = ctx.sim.stats(USER)["effects"]
    r = ctx.sim.api(USER, "PUT", "/v1/users/" + u["user_id"], {"title": "Senior Engineer"})
    eq(r.status, 200, "no-op PUT status")
    eq(ctx.sim.stats(USER)["effects"], before, "a PUT that changes nothing is not an effect")
    r = ctx.sim.api(USER, "PUT", "/v1/users/" + u["user_id"], {"organization_id": "org_002"})
    check(is_error_shape(r, 400, "VALIDATION_ERROR"), "organization cannot change: %r" % r)
    r = ctx.sim.api(USER, "PUT", "/v1/users/ext_user_nobody", {"title": "x"})
    check(is_error_shape(r, 404, "USER_NOT_FOUND"), "PUT unknown: %r" % r)
    other = new_user(ctx, "carol@techcorp.com")
    r = ctx.sim.api(USER, "PUT", "/v1/users/" + other["user_id"], {"email": "bob@techcorp.com"})
    check(is_error_shape(r, 409, "USER_ALREADY_EXISTS"), "email taken: %r" % r)


def test_delete_user_removes_it(ctx):
    u = new_user(ctx, "dave@techcorp.com")
    r = ctx.sim.api(USER, "DELETE", "/v1/users/" + u["user_id"])
    eq(r.status, 200, "DELETE status")
    eq(r.json["data"], {"user_id": u["user_id"], "deleted": True}, "DELETE body")
    r = ctx.sim.api(USER, "GET", "/v1/users/" + u["user_id"])
    check(is_error_shape(r, 404, "USER_NOT_FOUND"), "gone: %r" % r)
    r = ctx.sim.api(USER, "DELETE", "/v1/users/" + u["user_id"])
    check(is_error_shape(r, 404, "USER_NOT_FOUND"), "second delete: %r" % r)
    # the email is free again
    new_user(ctx, "dave@techcorp.com")
    eq(ctx.sim.stats(USER)["effects"], 3, "create, delete, create")


def test_payment_customers_and_subscriptions(ctx):
    r = ctx.sim.api(PAY, "POST", "/v2/customers", {"organization_id": "org_002", "email": "billing@startup.io",
                                                   "name": "StartupInc"})
    eq(r.status, 201, "POST /v2/customers: %r" % r)
    cust = r.json["data"]["customer_id"]
    check(cust.startswith("cust_"), "customer id %r" % cust)
    r = ctx.sim.api(PAY, "POST", "/v2/subscriptions", {"customer_id": cust, "plan": "professional"})
    eq(r.status, 201, "POST /v2/subscriptions: %r" % r)
    sub = r.json["data"]
    eq((sub["plan"], sub["status"], sub["amount"], sub["currency"], sub["organization_id"]),
       ("professional", "active", 299.99, "USD", "org_002"), "subscription")
    r = ctx.sim.api(PAY, "GET", "/v2/subscriptions/" + sub["subscription_id"])
    eq(r.status, 200, "GET subscription")
    for k in ("subscription_id", "customer_id", "plan", "status", "current_period_start",
              "current_period_end", "amount", "currency", "payment_method"):
        check(k in r.json["data"], "subscription field %s" % k)
    r = ctx.sim.api(PAY, "POST", "/v2/subscriptions", {"customer_id": "cust_nobody", "plan": "professional"})
    check(is_error_shape(r, 404, "CUSTOMER_NOT_FOUND"), "unknown customer: %r" % r)
    r = ctx.sim.api(PAY, "POST", "/v2/subscriptions", {"customer_id": cust, "plan": "platinum"})
    check(is_error_shape(r, 400, "VALIDATION_ERROR"), "unknown plan needs an amount: %r" % r)
    r = ctx.sim.api(PAY, "GET", "/v2/subscriptions/sub_nobody")
    check(is_error_shape(r, 404, "SUBSCRIPTION_NOT_FOUND"), "unknown subscription: %r" % r)
    # the seeded enterprise subscription of org_001
    r = ctx.sim.api(PAY, "GET", "/v2/subscriptions/sub_enterprise_org_001")
    eq((r.status, r.json["data"]["customer_id"], r.json["data"]["amount"]), (200, "cust_67890", 999.99),
       "seeded subscription")
    eq(ctx.sim.stats(PAY)["effects"], 2, "customer + subscription")


def test_customer_usage(ctx):
    r = ctx.sim.api(PAY, "GET", "/v2/customers/cust_67890/usage")
    eq(r.status, 200, "usage status")
    d = r.json["data"]
    eq(d["customer_id"], "cust_67890", "customer")
    check(re.match(r"^\d{4}-\d{2}$", d["billing_period"]), "billing_period %r" % d["billing_period"])
    for k in ("api_calls", "storage_gb", "compute_hours"):
        check(isinstance(d["usage_metrics"][k], (int, float)), "usage metric %s" % k)
    check(abs(d["total_amount"] - (999.99 + d["overage_charges"])) < 0.005,
          "total = enterprise subscription + overage: %r" % d)
    r2 = ctx.sim.api(PAY, "GET", "/v2/customers/cust_67890/usage")
    eq(r2.json["data"]["usage_metrics"], d["usage_metrics"], "usage is stable")
    r = ctx.sim.api(PAY, "GET", "/v2/customers/cust_nobody/usage")
    check(is_error_shape(r, 404, "CUSTOMER_NOT_FOUND"), "unknown customer: %r" % r)
    r = ctx.sim.api(PAY, "GET", "/v2/customers/cust_67890/invoices")
    check(is_error_shape(r, 404, "NOT_FOUND"), "unknown sub-resource: %r" % r)


def test_subscription_update_and_cancel(ctx):
    r = ctx.sim.api(PAY, "PUT", "/v2/subscriptions/sub_enterprise_org_001", {"plan": "professional"})
    eq(r.status, 200, "PUT: %r" % r)
    eq((r.json["data"]["plan"], r.json["data"]["amount"]), ("professional", 299.99), "plan change")
    r = ctx.sim.api(PAY, "DELETE", "/v2/subscriptions/sub_enterprise_org_001")
    eq((r.status, r.json["data"]["status"]), (200, "canceled"), "cancel")
    check(RFC3339.match(r.json["data"]["canceled_at"] or ""), "canceled_at")
    r = ctx.sim.api(PAY, "DELETE", "/v2/subscriptions/sub_enterprise_org_001")
    eq((r.status, r.json["data"]["status"]), (200, "canceled"), "second cancel")
    eq(ctx.sim.stats(PAY)["effects"], 2, "update + one cancel")
    r = ctx.sim.api(PAY, "PUT", "/v2/subscriptions/sub_enterprise_org_001", {"plan": "starter"})
    check(is_error_shape(r, 409, "SUBSCRIPTION_CANCELED"), "no change after cancel: %r" % r)


def test_communication_message_accepted_with_202(ctx):
    r = ctx.sim.api(COMM, "POST", "/v1/messages", {"organization_id": "org_002", "recipient": "a@startup.io",
                                                   "template": "employee_welcome"})
    eq(r.status, 202, "POST /v1/messages: %r" % r)
    mid = r.json["data"]["message_id"]
    check(mid.startswith("msg_"), "message id %r" % mid)
    r = ctx.sim.api(COMM, "GET", "/v1/messages/" + mid)
    eq((r.status, r.json["data"]["status"], r.json["data"]["template"]), (200, "delivered", "employee_welcome"),
       "message state")
    r = ctx.sim.api(COMM, "POST", "/v1/messages", {"organization_id": "org_002", "recipient": "nobody"})
    check(is_error_shape(r, 400, "VALIDATION_ERROR"), "bad recipient: %r" % r)
    r = ctx.sim.api(COMM, "GET", "/v1/messages")
    check(is_error_shape(r, 405, "METHOD_NOT_ALLOWED") and r.headers.get("allow") == "POST", "GET list: %r" % r)


def test_idempotent_replay_returns_first_answer_with_one_effect(ctx):
    body = {"organization_id": "org_001", "email": "idem@techcorp.com", "first_name": "I", "last_name": "D"}
    h = {"Idempotency-Key": "create-idem-1"}
    r1 = ctx.sim.api(USER, "POST", "/v1/users", body, headers=h)
    r2 = ctx.sim.api(USER, "POST", "/v1/users", body, headers=h)
    eq(r1.status, 201, "first")
    eq(r2.status, 201, "replay status")
    eq(r2.raw, r1.raw, "replay body is byte-identical")
    eq(r2.headers.get("idempotent-replayed"), "true", "replay header")
    check("idempotent-replayed" not in r1.headers, "first answer is not marked as a replay")
    s = ctx.sim.stats(USER)
    eq((s["effects"], s["idempotent_replays"]), (1, 1), "one effect, one replay")
    r = ctx.sim.api(USER, "GET", "/v1/users?organization_id=org_001")
    eq(r.json["data"]["pagination"]["total"], 3, "one user created")
    # without a key the same body is a new request: here, a conflict
    r3 = ctx.sim.api(USER, "POST", "/v1/users", body)
    eq(r3.status, 409, "without the key")
    # the first answer of an error is kept too
    r4 = ctx.sim.api(USER, "POST", "/v1/users", body, headers={"Idempotency-Key": "k-conflict"})
    r5 = ctx.sim.api(USER, "POST", "/v1/users", body, headers={"Idempotency-Key": "k-conflict"})
    eq((r4.status, r5.status, r5.raw == r4.raw), (409, 409, True), "stored 409")


def test_idempotency_key_reused_for_another_request_is_422(ctx):
    h = {"Idempotency-Key": "reuse-1"}
    new = {"organization_id": "org_001", "email": "r1@techcorp.com", "first_name": "R", "last_name": "1"}
    eq(ctx.sim.api(USER, "POST", "/v1/users", new, headers=h).status, 201, "first")
    other = dict(new, email="r2@techcorp.com")
    r = ctx.sim.api(USER, "POST", "/v1/users", other, headers=h)
    check(is_error_shape(r, 422, "IDEMPOTENCY_KEY_REUSED"), "other body, same key: %r" % r)
    eq(ctx.sim.stats(USER)["effects"], 1, "no second effect")
    r = ctx.sim.api(USER, "POST", "/v1/users", new, headers={"Idempotency-Key": "x" * 300})
    check(is_error_shape(r, 400, "INVALID_IDEMPOTENCY_KEY"), "overlong key: %r" % r)


def test_idempotency_on_put_delete_and_other_services(ctx):
    u = new_user(ctx, "multi@techcorp.com")
    path = "/v1/users/" + u["user_id"]
    for _ in range(2):
        eq(ctx.sim.api(USER, "PUT", path, {"status": "inactive"}, headers={"Idempotency-Key": "p1"}).status,
           200, "PUT")
    d1 = ctx.sim.api(USER, "DELETE", path, headers={"Idempotency-Key": "d1"})
    d2 = ctx.sim.api(USER, "DELETE", path, headers={"Idempotency-Key": "d1"})
    eq((d1.status, d2.status, d2.raw == d1.raw), (200, 200, True), "DELETE replayed as 200, not 404")
    eq(ctx.sim.stats(USER)["effects"], 3, "create, put, delete once each")
    m = {"organization_id": "org_002", "recipient": "m@startup.io"}
    a = ctx.sim.api(COMM, "POST", "/v1/messages", m, headers={"Idempotency-Key": "m1"})
    b = ctx.sim.api(COMM, "POST", "/v1/messages", m, headers={"Idempotency-Key": "m1"})
    eq((a.status, b.status), (202, 202), "message statuses")
    eq(b.json["data"]["message_id"], a.json["data"]["message_id"], "same message id")
    eq(ctx.sim.stats(COMM)["effects"], 1, "one message")
    c = {"organization_id": "org_001", "email": "c@techcorp.com"}
    a = ctx.sim.api(PAY, "POST", "/v2/customers", c, headers={"Idempotency-Key": "c1"})
    b = ctx.sim.api(PAY, "POST", "/v2/customers", c, headers={"Idempotency-Key": "c1"})
    eq(b.json["data"]["customer_id"], a.json["data"]["customer_id"], "same customer")
    s = ctx.sim.stats(PAY)
    eq((s["effects"], s["idempotent_replays"]), (1, 1), "payment stats")


def test_concurrent_requests_with_one_key_take_effect_once(ctx):
    body = {"organization_id": "org_001", "email": "race@techcorp.com", "first_name": "R", "last_name": "C"}
    results = []
    lock = threading.Lock()

    def worker():
        r = ctx.sim.api(USER, "POST", "/v1/users", body, headers={"Idempotency-Key": "race-key"})
        with lock:
            results.append(r)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    eq(sorted(set(r.status for r in results)), [201], "every caller sees the 201")
    eq(len(set(r.raw for r in results)), 1, "every caller sees the same body")
    s = ctx.sim.stats(USER)
    eq((s["effects"], s["idempotent_replays"]), (1, 15), "one effect, fifteen replays")


def test_malformed_requests_get_4xx_error_shape_and_sim_survives(ctx):
    p = ctx.sim.port(USER)
    cases = [
        ("POST", "/v1/users", b"{not json", 400, "INVALID_JSON"),
        ("POST", "/v1/users", b"", 400, "INVALID_JSON"),
        ("POST", "/v1/users", b"[1,2,3]", 400, "INVALID_JSON"),
        ("POST", "/v1/users", b'{"a":1,"a":2}', 400, "INVALID_JSON"),
        ("POST", "/v1/users", b'{"email":"\xff\xfe"}', 400, "INVALID_JSON"),
        ("POST", "/v1/users", b"[" * 100000, 400, "INVALID_JSON"),
        ("POST", "/v1/users", b'{"x":1} trailing', 400, "INVALID_JSON"),
        ("POST", "/v1/users", b'{"x":"\\ud800"}', 400, "INVALID_JSON"),
        ("POST", "/v1/users", b'{"x":1e999}', 400, "INVALID_JSON"),
        ("GET", "/v1/nothing", None, 404, "NOT_FOUND"),
        ("GET", "/v2/subscriptions/x", None, 404, "NOT_FOUND"),
        ("PATCH", "/v1/users", None, 405, "METHOD_NOT_ALLOWED"),
        ("POST", "/v1/users/ext_user_12345", b"{}", 405, "METHOD_NOT_ALLOWED"),
    ]
    for method, path, raw, status, code in cases:
        r = request(p, method, path, raw_body=raw)
        check(is_error_shape(r, status, code), "%s %s %r -> %r" % (method, path, (raw or b"")[:40], r))
    r = request(p, "PATCH", "/v1/users")
    eq(r.headers.get("allow"), "GET, POST", "Allow header")
    # an announced 2 MiB body is refused before any of it is read
    s = socket.create_connection(("127.0.0.1", p), timeout=5)
    s.sendall(b"POST /v1/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n" % (2 * 1024 * 1024))
    data = b""
    while b"}" not in data:
        d = s.recv(4096)
        if not d:
            break
        data += d
    s.close()
    check(data.startswith(b"HTTP/1.1 413") and b"PAYLOAD_TOO_LARGE" in data, "2 MiB body: %r" % data[:300])
    r = ctx.sim.ctl("GET", "/_sim/nothing")
    check(is_error_shape(r, 404, "NOT_FOUND"), "control unknown path: %r" % r)
    r = ctx.sim.ctl("DELETE", "/_sim/health")
    check(is_error_shape(r, 405, "METHOD_NOT_ALLOWED"), "control bad method: %r" % r)
    r = ctx.sim.ctl("POST", "/_sim/faults/user-service", None)
    check(is_error_shape(r, 400, "INVALID_JSON"), "control empty body: %r" % r)
    # raw garbage and a half request on the socket
    for junk in (b"\x00\x01\x02garbage\r\n\r\n", b"GET /v1/users HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab"):
        s = socket.create_connection(("127.0.0.1", p), timeout=2)
        s.sendall(junk)
        s.shutdown(socket.SHUT_WR)
        try:
            s.recv(4096)
        except OSError:
            pass
        s.close()
    eq(ctx.sim.stats(USER)["effects"], 0, "no bad request had an effect")
    check(ctx.sim.alive(), "sim still running")
    r = ctx.sim.api(USER, "GET", "/v1/users/ext_user_12345")
    eq(r.status, 200, "still serving after bad input")


def test_chunked_oversized_body_is_413(ctx):
    s = socket.create_connection(("127.0.0.1", ctx.sim.port(USER)), timeout=5)
    s.sendall(b"POST /v1/users HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
    chunk = b"a" * 65536
    try:
        for _ in range(24):   # 1.5 MiB, over the 1 MiB cap
            s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        s.sendall(b"0\r\n\r\n")
    except OSError:
        pass   # the sim may answer and close early
    data = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
    except OSError:
        pass
    s.close()
    check(data.startswith(b"HTTP/1.1 413"), "chunked oversized body: %r" % data[:200])
    check(b"PAYLOAD_TOO_LARGE" in data, "error shape")
    eq(ctx.sim.api(USER, "GET", "/v1/users/ext_user_12345").status, 200, "alive")


def test_reset_restores_seed_state_and_zeroes_stats(ctx):
    new_user(ctx, "temp@techcorp.com")
    ctx.sim.api(USER, "DELETE", "/v1/users/ext_user_12345")
    ctx.sim.faults(USER, {"latency_ms": 5})
    eq(ctx.sim.stats(USER)["effects"], 2, "two effects before reset")
    r = ctx.sim.ctl("POST", "/_sim/reset")
    eq((r.status, r.json), (200, {"status": "reset"}), "reset answer")
    r = ctx.sim.api(USER, "GET", "/v1/users?organization_id=org_001")
    eq(sorted(u["user_id"] for u in r.json["data"]["users"]), ["ext_user_12345", "ext_user_54321"],
       "seeded users back")
    s = ctx.sim.stats(USER)
    eq((s["effects"], s["requests"]), (0, 1), "stats zeroed (one request since)")
    eq(ctx.sim.ctl("GET", "/_sim/faults/user-service").json["faults"]["latency_ms"], 0, "faults cleared")
    eq(ctx.sim.ctl("GET", "/_sim/reset").status, 405, "reset is POST only")


def test_state_dumps_of_the_control_port(ctx):
    u = new_user(ctx, "dump@techcorp.com")
    r = ctx.sim.ctl("GET", "/_sim/users?organization_id=org_001")
    eq(r.status, 200, "users dump")
    eq(sorted(x["user_id"] for x in r.json["users"]),
       sorted(["ext_user_12345", "ext_user_54321", u["user_id"]]), "dump = state")
    r = ctx.sim.ctl("GET", "/_sim/users")
    eq(len(r.json["users"]), 3, "all organizations")
    r = ctx.sim.ctl("GET", "/_sim/subscriptions?organization_id=org_001")
    eq([s["subscription_id"] for s in r.json["subscriptions"]], ["sub_enterprise_org_001"], "subscriptions")
    r = ctx.sim.ctl("GET", "/_sim/customers")
    eq([c["customer_id"] for c in r.json["customers"]], ["cust_67890"], "customers")
    ctx.sim.api(COMM, "POST", "/v1/messages", {"organization_id": "org_002", "recipient": "d@startup.io"})
    r = ctx.sim.ctl("GET", "/_sim/messages?organization_id=org_002")
    eq(len(r.json["messages"]), 1, "messages")


def test_stats_count_requests_and_responses(ctx):
    for _ in range(3):
        ctx.sim.api(USER, "GET", "/v1/users/ext_user_12345")
    ctx.sim.api(USER, "GET", "/v1/users/missing")
    s = ctx.sim.stats(USER)
    for k in ("requests", "faults_injected", "idempotent_replays", "effects", "webhooks_sent", "webhooks_failed"):
        check(k in s, "stats field %s" % k)
    eq((s["requests"], s["responses_2xx"], s["responses_4xx"], s["effects"]), (4, 3, 1, 0), "counts")
    r = ctx.sim.ctl("GET", "/_sim/stats/nope-service")
    check(is_error_shape(r, 404, "UNKNOWN_SERVICE"), "unknown service: %r" % r)
    r = ctx.sim.ctl("GET", "/_sim/stats")
    eq(sorted(r.json), sorted(simtest.SERVICES), "all stats")


def test_one_log_line_per_request(ctx):
    marker = "/v1/users/log-marker-%d" % time.monotonic_ns()
    for _ in range(3):
        ctx.sim.api(USER, "GET", marker)
    time.sleep(0.1)
    lines = [ln for ln in ctx.sim.stderr().splitlines() if marker in ln]
    eq(len(lines), 3, "log lines for 3 requests")
    check(all(" GET " in ln and " 404 " in ln and "user-service" in ln for ln in lines),
          "log line has service, method, path, status: %r" % lines[:1])


def test_runs_without_seed_data(ctx):
    sim = ctx.new_sim(seed_data="/nonexistent/platform_data.json")
    try:
        r = sim.ctl("GET", "/_sim/health")
        eq((r.status, r.json["organizations"]), (200, []), "no organizations")
        r = sim.api(USER, "GET", "/v1/users")
        eq(r.json["data"]["pagination"]["total"], 0, "no users")
        r = sim.api(USER, "POST", "/v1/users", {"organization_id": "org_new", "email": "n@new.io",
                                               "first_name": "N", "last_name": "W"})
        eq(r.status, 201, "still works")
    finally:
        eq(sim.stop(), 0, "exit code")


def test_help_and_bad_options(ctx):
    import subprocess
    r = subprocess.run([ctx.binary, "--help"], capture_output=True, timeout=10)
    eq(r.returncode, 0, "--help exit code")
    out = r.stdout.decode()
    for flag in ("--control-port", "--user-port", "--payment-port", "--communication-port", "--oidc-port",
                 "--oidc-client", "--webhook-url",
                 "--secret", "--seed", "--faults", "--duplicate-rate", "--shuffle", "emit"):
        check(flag in out, "--help mentions %s" % flag)
    for bad in (["--user-port", "99999"], ["--faults", "nosuch=error_rate=1"], ["--faults", "user=error_rate=2"],
                ["--secret", "user-service=nothex"], ["--bogus"], ["--seed", "-1"],
                ["--oidc-client", "no-redirect"], ["--oidc-client", "c:s:ftp://x/cb"],
                ["--oidc-client", "c:s:http://a/cb#frag"], ["--oidc-issuer", "http://x/"],
                ["--oidc-port", "70000"], ["--oidc-code-ttl", "0"]):
        r = subprocess.run([ctx.binary] + bad, capture_output=True, timeout=10)
        eq(r.returncode, 64, "exit code of %r (stderr %r)" % (bad, r.stderr[-200:]))


def test_sigint_also_stops_cleanly(ctx):
    import signal
    sim = ctx.new_sim()
    eq(sim.api(USER, "GET", "/v1/users/ext_user_12345").status, 200, "serving")
    eq(sim.stop(signal.SIGINT), 0, "exit code after SIGINT")
    check("stopped" in sim.stderr(), "stop is logged")



def test_a_port_in_use_is_an_error_not_shared(ctx):
    import subprocess
    taken = ctx.sim.port(USER)
    r = subprocess.run([ctx.binary, "--control-port", str(simtest.free_port()), "--user-port", str(taken),
                        "--payment-port", str(simtest.free_port()),
                        "--communication-port", str(simtest.free_port()),
                        "--oidc-port", str(simtest.free_port()), "--webhook-url", "none"],
                       capture_output=True, timeout=20)
    eq(r.returncode, 1, "exit code when the user port is taken (stderr %r)" % r.stderr[-300:])
    check(b"cannot listen" in r.stderr, "says why: %r" % r.stderr[-300:])
    for m in simtest.SANITIZER_MARKERS:
        check(m.encode() not in r.stderr, "sanitizer report: %r" % r.stderr[-2000:])
    r = ctx.sim.api(USER, "GET", "/v1/users/ext_user_12345")
    eq(r.status, 200, "the first sim still owns its port")


def test_odd_bytes_in_paths_give_valid_json_and_one_log_line(ctx):
    r = ctx.sim.api(USER, "GET", "/v1/users/%FF%FEx")
    check(is_error_shape(r, 404, "USER_NOT_FOUND"), "invalid UTF-8 in the id still gives valid JSON: %r" % r)
    check("\ufffd" in r.json["message"], "replacement character in the message: %r" % r.json["message"])
    r = ctx.sim.api(USER, "GET", "/v1/users/line%0Abreak-marker")
    check(is_error_shape(r, 404, "USER_NOT_FOUND"), "newline in the id: %r" % r)
    time.sleep(0.1)
    lines = [ln for ln in ctx.sim.stderr().splitlines() if "break-marker" in ln]
    eq(len(lines), 1, "one log line for a path with a newline")
    check("user-service" in lines[0], "the line is whole: %r" % lines[0])
