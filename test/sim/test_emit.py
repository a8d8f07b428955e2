"""saas-sim emit: generated signed events at a steady rate against a python
receiver that checks every signature independently."""

import base64
import os
import re
import subprocess
import time

import simtest
from simtest import check, eq, verify

TYPES = {
    "user-service": {"user.created", "user.updated", "user.deleted", "user.activated", "user.deactivated"},
    "payment-service": {"subscription.created", "subscription.updated", "subscription.canceled",
                        "payment.succeeded", "payment.failed", "invoice.created"},
    "communication-service": {"message.sent", "message.delivered", "message.bounced", "message.clicked",
                              "message.opened"},
}


def emit(ctx, *args, timeout=60):
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    t0 = time.monotonic()
    r = subprocess.run([ctx.binary, "emit"] + list(args), capture_output=True, timeout=timeout, env=env)
    r.elapsed = time.monotonic() - t0
    r.out = r.stdout.decode()
    r.err = r.stderr.decode()
    for m in simtest.SANITIZER_MARKERS:
        check(m not in r.err, "sanitizer report from emit:\n" + r.err[-3000:])
    return r


def events_of(items):
    out = []
    for it in items:
        j = it.json
        if isinstance(j, dict) and "events" in j:
            out += j["events"]
        elif isinstance(j, list):
            out += j
        else:
            out.append(j)
    return out


def test_emit_sends_signed_events_with_duplicates_and_shuffle(ctx):
    r = emit(ctx, "--service", "user-service", "--rate", "400", "--count", "60", "--webhook-url", ctx.recv.url,
             "--duplicates", "0.2", "--shuffle", "--seed", "3")
    eq(r.returncode, 0, "exit code (out %r err %r)" % (r.out, r.err))
    m = re.search(r"sent: (\d+) events \((\d+) distinct, (\d+) duplicates\) in (\d+) of (\d+) requests", r.out)
    check(m, "summary line in %r" % r.out)
    total, distinct, dups = int(m.group(1)), int(m.group(2)), int(m.group(3))
    eq((distinct, total), (60, 60 + dups), "counts")
    check(dups > 0, "some duplicates at 0.2")
    check(("answers: 202=%d" % total) in r.out, "answers by status in %r" % r.out)
    check(re.search(r"latency ms: min [\d.]+ p50 [\d.]+ p95 [\d.]+ p99 [\d.]+ max [\d.]+", r.out), "latency line")
    items = ctx.recv.received("user-service")
    eq(len(items), total, "every request arrived")
    secret = ctx.secrets["user-service"]
    bad = [it for it in items if not verify(secret, it.headers, it.body)]
    eq(len(bad), 0, "every signature verifies")
    evs = events_of(items)
    eq(len(set(e["event_id"] for e in evs)), 60, "distinct event ids")
    check(all(e["event_type"] in TYPES["user-service"] for e in evs), "user event types")
    check(all(e["organization_id"] == "org_001" for e in evs), "default org")
    for k in ("event_id", "event_type", "timestamp", "organization_id", "data"):
        check(all(k in e for e in evs), "events have " + k)
    seq = [e["metadata"]["sequence"] for e in evs]
    check(seq != sorted(seq), "shuffled order")
    for it in items:
        eq(it.headers["webhook-id"], it.json["event_id"], "single events keep their id as webhook-id")


def test_emit_batches_as_array_or_events_object(ctx):
    r = emit(ctx, "--service", "payment-service", "--rate", "0", "--count", "20", "--batch", "5",
             "--bulk-format", "object", "--webhook-url", ctx.recv.url, "--org", "org_002")
    eq(r.returncode, 0, "exit code (%r)" % r.err)
    items = ctx.recv.received("payment-service")
    eq(len(items), 4, "four requests of five")
    for it in items:
        check(isinstance(it.json, dict) and len(it.json["events"]) == 5, "{events:[5]} body")
        check(it.headers["webhook-id"].startswith("msg_"), "batch webhook-id")
        check(verify(ctx.secrets["payment-service"], it.headers, it.body), "batch signature")
    evs = events_of(items)
    check(all(e["event_type"] in TYPES["payment-service"] for e in evs), "payment event types")
    check(all(e["organization_id"] == "org_002" for e in evs), "--org")
    ctx.recv.clear()
    r = emit(ctx, "--service", "communication-service", "--rate", "0", "--count", "9", "--batch", "4",
             "--webhook-url", ctx.recv.url)
    eq(r.returncode, 0, "exit code")
    items = ctx.recv.received("communication-service")
    eq([len(it.json) for it in items if isinstance(it.json, list)], [4, 4, 1], "JSON arrays of up to 4")
    check(all(verify(ctx.secrets["communication-service"], it.headers, it.body) for it in items), "signed")


def test_emit_keeps_a_steady_rate(ctx):
    r = emit(ctx, "--service", "user-service", "--rate", "40", "--count", "20", "--webhook-url", ctx.recv.url)
    eq(r.returncode, 0, "exit code")
    items = ctx.recv.received("user-service")
    eq(len(items), 20, "all sent")
    span = items[-1].at - items[0].at
    check(0.4 <= span <= 1.5, "20 events at 40/s span about 0.475 s, got %.3f" % span)
    gaps = [b.at - a.at for a, b in zip(items, items[1:])]
    check(max(gaps) < 0.2, "no bursts and stalls: %r" % gaps)


def test_emit_exits_2_when_the_receiver_is_unreachable(ctx):
    port = simtest.free_port()
    r = emit(ctx, "--service", "user-service", "--rate", "5", "--count", "100",
             "--webhook-url", "http://127.0.0.1:%d/webhooks" % port, timeout=20)
    eq(r.returncode, 2, "exit code (out %r err %r)" % (r.out, r.err))
    check("unreachable" in r.err, "says why: %r" % r.err)
    check(r.elapsed < 5, "gives up at once (%.1fs)" % r.elapsed)


def test_emit_exits_1_when_the_receiver_refuses(ctx):
    ctx.recv.plan("user-service", [(401, {})] * 10)
    r = emit(ctx, "--service", "user-service", "--rate", "0", "--count", "5", "--webhook-url", ctx.recv.url)
    eq(r.returncode, 1, "exit code")
    check("answers: 401=5" in r.out, "401s reported: %r" % r.out)


def test_emit_secret_option_and_usage_errors(ctx):
    secret = "whsec_" + base64.b64encode(b"emit-override").decode()
    r = emit(ctx, "--service", "user", "--count", "3", "--rate", "0", "--secret", secret,
             "--webhook-url", ctx.recv.url)
    eq(r.returncode, 0, "exit code")
    items = ctx.recv.received("user-service")
    check(len(items) == 3 and all(verify(secret, it.headers, it.body) for it in items), "signed with --secret")
    check(not any(verify(ctx.secrets["user-service"], it.headers, it.body) for it in items), "not the default")
    eq(emit(ctx, "--help").returncode, 0, "--help")
    for bad in ([], ["--service", "nosuch"], ["--service", "user-service", "--batch", "0"],
                ["--service", "user-service", "--duplicates", "3"], ["--service", "user-service", "--secret", "x"]):
        eq(emit(ctx, *bad).returncode, 64, "usage error %r" % bad)

