"""saas-sim: injected faults as a client sees them, the control API that sets
them, and their determinism under --seed."""

import http.client
import socket
import threading
import time

import simtest
from simtest import check, eq, is_error_shape

USER = "user-service"
PAY = "payment-service"


def timed(fn):
    t0 = time.monotonic()
    r = fn()
    return r, time.monotonic() - t0


def refused(port):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=1)
    except ConnectionRefusedError:
        return True
    s.close()
    return False


def test_error_rate_answers_the_status_with_the_error_shape(ctx):
    prof = ctx.sim.faults(USER, {"error_rate": 1.0, "status": 503})
    eq(prof["faults"]["error_rate"], 1, "profile echoed")
    for _ in range(4):
        r = ctx.sim.api(USER, "GET", "/v1/users/ext_user_12345")
        check(is_error_shape(r, 503, "SERVICE_UNAVAILABLE"), "injected 503: %r" % r)
    r = ctx.sim.api(USER, "POST", "/v1/users", {"organization_id": "org_001", "email": "f@techcorp.com",
                                               "first_name": "F", "last_name": "A"})
    eq(r.status, 503, "POST under faults")
    s = ctx.sim.stats(USER)
    eq((s["requests"], s["faults_injected"], s["effects"], s["responses_5xx"]), (5, 5, 0, 5),
       "an injected error has no effect")
    eq(ctx.sim.api(PAY, "GET", "/v2/subscriptions/sub_enterprise_org_001").status, 200, "payment unaffected")
    ctx.sim.faults(USER, {"error_rate": 1.0, "status": 500})
    r = ctx.sim.api(USER, "GET", "/v1/users/ext_user_12345")
    check(is_error_shape(r, 500, "INTERNAL_ERROR"), "injected 500: %r" % r)


def test_error_rate_half_fails_some_requests(ctx):
    ctx.sim.faults(USER, {"error_rate": 0.5, "status": 502})
    codes = [ctx.sim.api(USER, "GET", "/v1/users/ext_user_12345").status for _ in range(60)]
    n = codes.count(502)
    eq(set(codes), {200, 502}, "only 200 and 502")
    check(12 <= n <= 48, "about half fail: %d of 60" % n)
    eq(ctx.sim.stats(USER)["faults_injected"], n, "faults counted")


def test_429_with_retry_after_header(ctx):
    ctx.sim.faults(USER, {"error_rate": 1, "status": 429, "retry_after": 7})
    r = ctx.sim.api(USER, "GET", "/v1/users")
    check(is_error_shape(r, 429, "RATE_LIMITED"), "429: %r" % r)
    eq(r.headers.get("retry-after"), "7", "Retry-After header")
    ctx.sim.faults(USER, {"error_rate": 1, "status": 429})
    r = ctx.sim.api(USER, "GET", "/v1/users")
    check("retry-after" not in r.headers, "no Retry-After without retry_after")


def test_latency_and_jitter_delay_answers(ctx):
    _, base = timed(lambda: ctx.sim.api(USER, "GET", "/v1/users/ext_user_12345"))
    ctx.sim.faults(USER, {"latency_ms": 300})
    r, t = timed(lambda: ctx.sim.api(USER, "GET", "/v1/users/ext_user_12345"))
    eq(r.status, 200, "a slow answer is still an answer")
    check(t >= 0.29, "latency 300 ms took %.3fs" % t)
    check(base < 0.2, "without faults it is fast (%.3fs)" % base)
    ctx.sim.faults(USER, {"latency_ms": 50, "jitter_ms": 250})
    times = [timed(lambda: ctx.sim.api(USER, "GET", "/v1/users/ext_user_12345"))[1] for _ in range(10)]
    check(min(times) >= 0.049, "never under latency_ms: %r" % times)
    check(max(times) < 0.6, "within latency + jitter (+ slack): %r" % times)
    check(max(times) - min(times) > 0.04, "jitter varies the delay: %r" % times)
    eq(ctx.sim.stats(USER)["faults_injected"], 0, "latency alone is not counted as a fault")


def test_hang_gives_no_answer_until_the_client_gives_up(ctx):
    ctx.sim.faults(USER, {"mode": "hang"})
    result = {}

    def hanging():
        t0 = time.monotonic()
        try:
            ctx.sim.api(USER, "GET", "/v1/users/ext_user_12345", timeout=1.5)
            result["outcome"] = "answered"
        except (socket.timeout, TimeoutError):
            result["outcome"] = "timeout"
        except OSError as e:
            result["outcome"] = "error %r" % e
        result["t"] = time.monotonic() - t0

    th = threading.Thread(target=hanging)
    th.start()
    time.sleep(0.3)
    r, t = timed(lambda: ctx.sim.ctl("GET", "/_sim/health"))
    eq(r.status, 200, "control answers during a hang")
    check(t < 0.5, "control is not blocked (%.3fs)" % t)
    eq(ctx.sim.api(PAY, "GET", "/v2/customers/cust_67890").status, 200, "another service answers")
    th.join(5)
    eq(result.get("outcome"), "timeout", "client timed out")
    check(result["t"] >= 1.4, "waited the client's full timeout (%.2fs)" % result["t"])
    simtest.wait_for(lambda: "client gave up" in ctx.sim.stderr(), timeout=3,
                     what="the sim to notice the client left")
    eq(ctx.sim.stats(USER)["faults_injected"], 1, "the hang is counted")
    ctx.sim.faults(USER, {"mode": "ok"})
    eq(ctx.sim.api(USER, "GET", "/v1/users/ext_user_12345").status, 200, "answers again")


def test_hang_ends_with_504_after_hang_max_ms(ctx):
    ctx.sim.faults(USER, {"mode": "hang", "hang_max_ms": 300})
    r, t = timed(lambda: ctx.sim.api(USER, "GET", "/v1/users", timeout=5))
    check(is_error_shape(r, 504, "GATEWAY_TIMEOUT"), "504 after the hang: %r" % r)
    check(0.28 <= t < 2, "after about 300 ms (%.2fs)" % t)


def test_down_refuses_connections_and_comes_back(ctx):
    port = ctx.sim.port(USER)
    keep = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
    keep.request("GET", "/v1/users/ext_user_12345")
    eq(keep.getresponse().read() != b"", True, "keep-alive connection works")
    prof = ctx.sim.faults(USER, {"mode": "down"})
    eq(prof["listening"], False, "the answer says the port is closed")
    check(refused(port), "new connections are refused")
    try:
        keep.request("GET", "/v1/users/ext_user_12345")
        keep.getresponse().read()
        check(False, "an open keep-alive connection must be closed too")
    except (OSError, http.client.HTTPException):
        pass
    keep.close()
    r = ctx.sim.ctl("GET", "/_sim/health")
    eq((r.status, r.json["services"][USER]["listening"], r.json["services"][USER]["mode"]),
       (200, False, "down"), "control answers and reports down")
    eq(ctx.sim.stats(USER)["listening"], False, "stats say not listening")
    eq(ctx.sim.api(PAY, "GET", "/v2/customers/cust_67890").status, 200, "payment still up")
    ctx.sim.faults(USER, {"mode": "ok"})
    check(not refused(port), "the same port listens again")
    eq(ctx.sim.api(USER, "GET", "/v1/users/ext_user_12345").status, 200, "serving again")


def test_flap_alternates_up_and_down(ctx):
    port = ctx.sim.port(USER)
    ctx.sim.faults(USER, {"mode": "flap", "flap_period_ms": 300})
    seen = []
    deadline = time.monotonic() + 2.2
    while time.monotonic() < deadline:
        try:
            r = ctx.sim.api(USER, "GET", "/v1/users/ext_user_12345", timeout=1)
            seen.append("up" if r.status == 200 else "status %d" % r.status)
        except ConnectionRefusedError:
            seen.append("down")
        except OSError:
            seen.append("down")   # closed under us at a flip
        time.sleep(0.04)
    eq(set(seen), {"up", "down"}, "both phases observed")
    flips = sum(1 for a, b in zip(seen, seen[1:]) if a != b)
    check(flips >= 4, "at least 4 flips in 2.2 s with a 300 ms period (%d): %r" % (flips, seen))
    ctx.sim.faults(USER, {"mode": "ok"})
    check(not refused(port), "steady after flap ends")


def test_lost_response_applies_the_effect_and_a_keyed_retry_replays_it(ctx):
    ctx.sim.faults(USER, {"lost_response_rate": 1.0, "status": 503})
    body = {"organization_id": "org_001", "email": "lost@techcorp.com", "first_name": "L", "last_name": "R"}
    h = {"Idempotency-Key": "lost-1"}
    r = ctx.sim.api(USER, "POST", "/v1/users", body, headers=h)
    check(is_error_shape(r, 503), "the client sees an error: %r" % r)
    s = ctx.sim.stats(USER)
    eq((s["effects"], s["faults_injected"]), (1, 1), "but the effect happened")
    dump = ctx.sim.ctl("GET", "/_sim/users?organization_id=org_001").json["users"]
    created = [u for u in dump if u["email"] == "lost@techcorp.com"]
    eq(len(created), 1, "the user exists")
    ctx.sim.faults(USER, {})
    r = ctx.sim.api(USER, "POST", "/v1/users", body, headers=h)
    eq((r.status, r.json["data"]["user_id"]), (201, created[0]["user_id"]), "the retry gets the first answer")
    eq(ctx.sim.stats(USER)["effects"], 1, "still one effect")


def test_lost_response_dropped_or_hung_gives_no_answer_after_the_effect(ctx):
    body = {"organization_id": "org_001", "email": "dropped@techcorp.com", "first_name": "D", "last_name": "R"}
    h = {"Idempotency-Key": "lost-drop-1"}
    ctx.sim.faults(USER, {"lost_response_rate": 1.0, "lost_response": "drop"})
    eq(ctx.sim.ctl("GET", "/_sim/faults/user-service").json["faults"]["lost_response"], "drop", "GET shows it")
    try:
        r = ctx.sim.api(USER, "POST", "/v1/users", body, headers=h, timeout=3)
        outcome = "answered %d" % r.status
    except (http.client.HTTPException, ConnectionError) as e:
        outcome = "dropped"
    eq(outcome, "dropped", "the connection is closed with no answer")
    eq(ctx.sim.stats(USER)["effects"], 1, "but the effect happened")
    # hung: no answer until the client gives up, after the effect
    ctx.sim.faults(USER, {"lost_response_rate": 1.0, "lost_response": "hang"})
    body2 = dict(body, email="hung@techcorp.com")
    t0 = time.monotonic()
    try:
        ctx.sim.api(USER, "POST", "/v1/users", body2, headers={"Idempotency-Key": "lost-hang-1"}, timeout=1)
        outcome = "answered"
    except (socket.timeout, TimeoutError):
        outcome = "timeout"
    eq(outcome, "timeout", "the client sees no answer")
    check(time.monotonic() - t0 >= 0.9, "it waited its whole timeout")
    eq(ctx.sim.stats(USER)["effects"], 2, "the effect happened before the hang")
    simtest.wait_for(lambda: "lost-response (client gave up)" in ctx.sim.stderr(), timeout=3,
                     what="the sim to notice the client left")
    ctx.sim.faults(USER, {"mode": "ok"})
    for key, email, b in (("lost-drop-1", "dropped@techcorp.com", body), ("lost-hang-1", "hung@techcorp.com", body2)):
        r = ctx.sim.api(USER, "POST", "/v1/users", b, headers={"Idempotency-Key": key})
        eq((r.status, r.json["data"]["email"]), (201, email), "a keyed retry gets the first answer (%s)" % key)
    s = ctx.sim.stats(USER)
    eq((s["effects"], s["faults_injected"], s["idempotent_replays"]), (2, 2, 2), "two effects, two faults, two replays")
    r = ctx.sim.ctl("POST", "/_sim/faults/user-service", {"lost_response": "sometimes"})
    check(is_error_shape(r, 400, "VALIDATION_ERROR"), "an unknown way is refused: %r" % r)


def test_fault_profiles_are_validated_and_readable(ctx):
    for bad in ({"error_rate": 2}, {"mode": "sideways"}, {"status": 200}, {"latency_ms": -1},
                {"latency_ms": 1.5}, {"surprise": True}, {"flap_period_ms": 10}):
        r = ctx.sim.ctl("POST", "/_sim/faults/user-service", bad)
        check(is_error_shape(r, 400, "VALIDATION_ERROR"), "%r -> %r" % (bad, r))
    r = ctx.sim.ctl("POST", "/_sim/faults/nosuch-service", {})
    check(is_error_shape(r, 404, "UNKNOWN_SERVICE"), "unknown service: %r" % r)
    ctx.sim.faults(USER, {"error_rate": 0.25, "status": 429, "latency_ms": 10, "jitter_ms": 5, "retry_after": 3})
    f = ctx.sim.ctl("GET", "/_sim/faults/user-service").json["faults"]
    eq((f["error_rate"], f["status"], f["latency_ms"], f["jitter_ms"], f["retry_after"], f["mode"]),
       (0.25, 429, 10, 5, 3, "ok"), "GET shows the profile")
    ctx.sim.faults(USER, {"latency_ms": 20})
    f = ctx.sim.ctl("GET", "/_sim/faults/user-service").json["faults"]
    eq((f["error_rate"], f["latency_ms"]), (0, 20), "a POST replaces the whole profile")
    ctx.sim.faults("all", {"error_rate": 1, "status": 503})
    r = ctx.sim.ctl("GET", "/_sim/faults").json
    check(all(r[s]["faults"]["error_rate"] == 1 for s in simtest.SERVICES), "all services: %r" % r)
    eq(ctx.sim.ctl("DELETE", "/_sim/faults/all").status, 200, "DELETE")
    r = ctx.sim.ctl("GET", "/_sim/faults").json
    check(all(r[s]["faults"]["error_rate"] == 0 for s in simtest.SERVICES), "cleared: %r" % r)


def test_faults_given_at_start(ctx):
    sim = ctx.new_sim(args=["--faults", "payment-service=error_rate=1,status=502",
                            "--faults", "user-service=latency_ms=200",
                            "--faults", "communication-service=mode=down"])
    try:
        r = sim.api(PAY, "GET", "/v2/subscriptions/sub_enterprise_org_001")
        check(is_error_shape(r, 502), "payment 502: %r" % r)
        r, t = timed(lambda: sim.api(USER, "GET", "/v1/users/ext_user_12345"))
        check(r.status == 200 and t >= 0.19, "user-service slow (%.3fs)" % t)
        check(refused(sim.port("communication-service")), "communication-service down from the start")
        sim.ctl("POST", "/_sim/faults/communication-service", {})
        check(not refused(sim.port("communication-service")), "opened on request")
        eq(sim.ctl("POST", "/_sim/reset").status, 200, "reset")
        check(refused(sim.port("communication-service")), "reset restores the start-up faults")
        eq(sim.api(PAY, "GET", "/v2/subscriptions/sub_enterprise_org_001").status, 502, "still 502")
    finally:
        eq(sim.stop(), 0, "exit code")


def fault_sequence(sim, n=40):
    return [sim.api(USER, "GET", "/v1/users/ext_user_12345").status for _ in range(n)]


def test_same_seed_gives_the_same_fault_decisions(ctx):
    args = ["--faults", "user-service=error_rate=0.5,status=503"]
    a = ctx.new_sim(seed=99, args=args)
    b = ctx.new_sim(seed=99, args=args)
    c = ctx.new_sim(seed=100, args=args)
    try:
        sa, sb, sc = fault_sequence(a), fault_sequence(b), fault_sequence(c)
        eq(set(sa), {200, 503}, "a mix of outcomes")
        eq(sb, sa, "same seed, same decisions")
        check(sc != sa, "another seed decides otherwise")
        a.ctl("POST", "/_sim/reset")
        eq(fault_sequence(a), sa, "after a reset the sequence repeats")
        body = {"organization_id": "org_001", "email": "seed@techcorp.com", "first_name": "S", "last_name": "D"}
        for s in (a, b):
            s.ctl("POST", "/_sim/faults/user-service", {})
        ida = a.api(USER, "POST", "/v1/users", body).json["data"]["user_id"]
        idb = b.api(USER, "POST", "/v1/users", body).json["data"]["user_id"]
        eq(ida, idb, "same seed, same generated ids")
    finally:
        for s in (a, b, c):
            eq(s.stop(), 0, "exit code")


def test_sigterm_during_a_hang_and_a_long_latency_stops_promptly(ctx):
    sim = ctx.new_sim()
    sim.faults(USER, {"mode": "hang"})
    sim.faults(PAY, {"latency_ms": 60000})
    outcomes = []

    def call(service):
        try:
            sim.api(service, "GET", "/v1/users" if service == USER else "/v2/customers/cust_67890", timeout=20)
            outcomes.append("answered")
        except OSError:
            outcomes.append("closed")

    threads = [threading.Thread(target=call, args=(s,)) for s in (USER, PAY)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    t0 = time.monotonic()
    rc = sim.stop()
    took = time.monotonic() - t0
    for t in threads:
        t.join(5)
    eq(rc, 0, "exit code")
    check(took < 3, "stopped in %.2fs despite a hang and a 60 s latency" % took)
    eq(sorted(outcomes), ["closed", "closed"], "both connections were closed, not answered")
