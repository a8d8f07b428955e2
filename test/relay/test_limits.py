"""saas-http's limits and deadlines over real sockets (docs/relay.md, "Limits and deadlines").

Every request gets an answer: 400 or 501 for a Transfer-Encoding the relay cannot read, 414 for a
long target, 431 for too many query parameters or header fields; a slow client is cut off at the
header or body deadline with a 408 while others are served; connections over the total or the
per-client limit are answered 503 at once.  Only 127.0.0.1, ports picked at run time; every wait
is bounded.  Imported by test_relay.py, whose harness and main relay these cases share.
"""

import socket
import threading
import time

from harness import MAIN
from saas_test import Relay, answer_doc, case, check, error_body_ok, parse_response, read_answer

RELAYS = {}     # the relays started here, by role, stopped by the last case


def main_relay():
    return MAIN["relay"]


def deadline_relay():
    """A relay with 2-second deadlines and room for many connections from 127.0.0.1."""
    if "deadline" not in RELAYS:
        RELAYS["deadline"] = Relay("--header-timeout", "2", "--body-timeout", "2", "--idle-timeout", "10",
                                   "--max-connections", "120", "--max-connections-per-client", "100")
    return RELAYS["deadline"]


def per_client_relay():
    """A relay that serves at most 4 connections per address, with a 2-second header deadline."""
    if "per_client" not in RELAYS:
        RELAYS["per_client"] = Relay("--max-connections-per-client", "4", "--max-connections", "50",
                                     "--header-timeout", "2", "--idle-timeout", "10")
    return RELAYS["per_client"]


def ask(relay, data, timeout=5.0):
    """Send raw bytes on a new connection: (status, headers, error body, seconds to the answer)."""
    s = socket.create_connection(("127.0.0.1", relay.port), timeout=5)
    try:
        try:
            s.sendall(data)
        except OSError:
            pass                # the relay may answer and close before reading it all
        got, _, took = read_answer(s, timeout)
    finally:
        s.close()
    status, headers = parse_response(got)
    return status, headers, answer_doc(got), took


def expect_error(relay, data, status, code, what):
    """The relay answers data with status and the API's error body, promptly."""
    got, h, doc, took = ask(relay, data)
    check(got == status, "%s: status %r, expected %d" % (what, got, status))
    check(error_body_ok(doc, code), "%s: body %r" % (what, doc))
    check(doc["error"]["request_id"] == h.get("x-request-id"), "%s: request ids differ" % what)
    check(took < 2, "%s: answered after %.1fs" % (what, took))
    return h


def get(target, headers=b""):
    return b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n" + headers + b"Connection: close\r\n\r\n"


def post_te(codings, version=b"HTTP/1.1", body=b"2\r\n{}\r\n0\r\n\r\n"):
    te = b"".join(b"Transfer-Encoding: " + c + b"\r\n" for c in codings)
    return (b"POST /users " + version + b"\r\nHost: x\r\nContent-Type: application/json\r\n" + te
            + b"Connection: close\r\n\r\n" + body)


@case
def transfer_encodings_the_relay_cannot_read_are_answered_400_or_501():
    r = main_relay()
    # RFC 9112 6.3/7: chunked not last, or twice, or in HTTP/1.0 -> the length is unknown: 400;
    # 6.1: chunked last but another coding before it -> not implemented: 501
    for codings, version, status in (([b"gzip"], b"HTTP/1.1", 400), ([b"identity"], b"HTTP/1.1", 400),
                                     ([b"chunked, gzip"], b"HTTP/1.1", 400),
                                     ([b"chunked, chunked"], b"HTTP/1.1", 400),
                                     ([b"chunked", b"chunked"], b"HTTP/1.1", 400), ([b""], b"HTTP/1.1", 400),
                                     ([b"chunked"], b"HTTP/1.0", 400),
                                     ([b"gzip, chunked"], b"HTTP/1.1", 501),
                                     ([b"gzip", b"chunked"], b"HTTP/1.1", 501),
                                     ([b"deflate;q=1 , CHUNKED"], b"HTTP/1.1", 501),
                                     ([b"chunked "], b"HTTP/1.1", 501)):
        h = expect_error(r, post_te(codings, version), status, "bad_request" if status == 400 else "not_implemented",
                         "%r %s" % (codings, version.decode()))
        check(h.get("connection", "").lower() == "close", "%r: the connection stays open" % codings)
    expect_error(r, get(b"/users", b"Transfer-Encoding: gzip\r\n"), 400, "bad_request", "GET with gzip")
    check(r.alive(), "relay died")


@case
def chunked_is_read_whatever_its_case():
    for coding in (b"Chunked", b"CHUNKED", b"chunked"):
        status, _, doc, _ = ask(main_relay(), post_te([coding], body=b"3\r\n{\"a\r\n4\r\n\":1}\r\n0\r\n\r\n"))
        check(status == 200 and doc and doc.get("body") == '{"a":1}', "%r: %r %r" % (coding, status, doc))


def query(n, width=1):
    return "&".join("p%d=%s" % (i, "v" * width) for i in range(n)).encode()


@case
def a_thousand_query_parameters_are_431():
    r = main_relay()
    target = b"/users?" + query(256)
    status, _, doc, _ = ask(r, get(target))
    check(status == 200 and doc and doc["path"] == target.decode(), "256 parameters: %r" % status)
    for what, target in (("257 parameters", b"/users?" + query(257)),
                         ("1,000 parameters", b"/users?" + query(1000)),
                         ("1,200 empty ones", b"/users?" + b"&" * 1200)):
        check(len(target) <= 8192, "%s: the target is too long for this case" % what)
        expect_error(r, get(target), 431, "request_header_fields_too_large", what)
    check(r.alive(), "relay died")


@case
def a_thousand_query_parameters_in_a_too_long_target_are_414():
    target = b"/users?" + query(1500, 4)
    check(len(target) > 8192, "the target is not too long")
    expect_error(main_relay(), get(target), 414, "uri_too_long", "1,500 parameters in %d bytes" % len(target))


@case
def too_long_targets_are_414():
    r = main_relay()
    status, _, doc, _ = ask(r, get(b"/" + b"a" * 8191))
    check(status == 200 and len(doc["path"]) == 8192, "8,192 bytes: %r" % status)
    for n in (8193, 30000):
        expect_error(r, get(b"/" + b"a" * (n - 1)), 414, "uri_too_long", "%d bytes" % n)
    # far beyond the per-connection memory: libmicrohttpd's own 414, still an answer
    status, _, _, _ = ask(r, get(b"/" + b"a" * 100000))
    check(status == 414, "100,000 bytes: %r" % status)
    check(r.alive(), "relay died")


def fields(n, width=1):
    return b"".join(b"X-H%d: %s\r\n" % (i, b"v" * width) for i in range(n))


@case
def too_many_header_fields_are_431():
    r = main_relay()
    # Host and Connection count: 98 more make 100
    status, _, doc, _ = ask(r, get(b"/healthz", fields(98)))
    check(status == 200 and doc["headers"].get("x-h97") == "v", "100 fields: %r" % status)
    for n in (99, 400):
        expect_error(r, get(b"/healthz", fields(n)), 431, "request_header_fields_too_large", "%d fields" % (n + 2))
    status, _, _, _ = ask(r, get(b"/healthz", fields(3000)))
    check(status == 431, "3,000 fields: %r" % status)      # libmicrohttpd's own 431
    check(r.alive(), "relay died")


@case
def too_large_header_fields_are_431():
    r = main_relay()
    status, _, _, _ = ask(r, get(b"/healthz", fields(10, 1400)))
    check(status == 200, "14 KB of fields: %r" % status)
    expect_error(r, get(b"/healthz", b"X-Big: " + b"b" * 20000 + b"\r\n"), 431,
                 "request_header_fields_too_large", "a 20 KB field")
    expect_error(r, get(b"/healthz", fields(12, 1400)), 431, "request_header_fields_too_large",
                 "17 KB of fields")
    check(r.alive(), "relay died")


@case
def thousands_of_cookies_are_forwarded_not_dropped():
    # libmicrohttpd 0.9.75 would split them into records until its memory ran out, then answer
    # nothing (checks.c); the relay forwards the header as sent
    for cookie in (b"a;" * 4000, b"; ".join(b"c%d=v" % i for i in range(1500))):
        status, _, doc, _ = ask(main_relay(), get(b"/healthz", b"Cookie: " + cookie + b"\r\n"))
        check(status == 200, "%d bytes of cookies: %r" % (len(cookie), status))
        check(doc["headers"].get("cookie") == cookie.decode(), "cookie forwarded as %r"
              % (doc["headers"].get("cookie") or "")[:60])


class SlowClient(threading.Thread):
    """Sends first, then drip(i) after every gap of silence, until the relay answers or closes
    (or limit seconds pass); records what came back and when."""

    def __init__(self, relay, first, drip, gap=0.4, limit=8.0):
        super().__init__(daemon=True)
        self.port, self.first, self.drip, self.gap, self.limit = relay.port, first, drip, gap, limit
        self.data, self.answered_at, self.closed, self.error = b"", None, False, None

    def run(self):
        t0 = time.time()
        try:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        except OSError as e:
            self.error = e
            return
        try:
            s.sendall(self.first)
            i = 0
            while time.time() - t0 < self.limit:
                s.settimeout(self.gap)
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    try:
                        s.sendall(self.drip(i))
                    except OSError:
                        pass    # the relay shut its side: the answer or the end is next
                    i += 1
                    continue
                if not chunk:
                    self.closed = True
                    break
                if self.answered_at is None:
                    self.answered_at = time.time() - t0
                self.data += chunk
        except OSError as e:
            self.error = e
        finally:
            s.close()


def check_cut(clients, low, high, what, rid=None):
    """Every client got a 408 with the error body between low and high seconds, then the end."""
    for c in clients:
        c.join(15)
    for n, c in enumerate(clients):
        status, h = parse_response(c.data)
        check(status == 408, "%s %d: %r %r" % (what, n, c.data[:80], c.error))
        check(error_body_ok(answer_doc(c.data), "request_timeout", rid), "%s %d: body %r" % (what, n, c.data[-200:]))
        check(h.get("connection", "").lower() == "close", "%s %d: no Connection: close" % (what, n))
        check(c.closed, "%s %d: the connection stayed open after the 408" % (what, n))
        check(low <= c.answered_at <= high, "%s %d: cut after %.2fs, expected %.1f..%.1f"
              % (what, n, c.answered_at, low, high))


@case
def slow_header_clients_are_cut_at_the_deadline_while_others_are_served():
    r = deadline_relay()
    attack = [SlowClient(r, b"GET /healthz HTTP/1.1\r\nHost: x\r\n", lambda i: b"X-Slow-%d: y\r\n" % i)
              for _ in range(40)]
    for c in attack:
        c.start()
    served, slowest, t0 = [], 0.0, time.time()
    while time.time() - t0 < 2.6:
        t1 = time.time()
        served.append(r.request("GET", "/healthz", timeout=5)[0])
        slowest = max(slowest, time.time() - t1)
        time.sleep(0.1)
    check(served == [200] * len(served), "others during the attack: %r" % served)
    check(slowest < 1.0, "an answer during the attack took %.2fs" % slowest)
    check_cut(attack, 1.9, 3.5, "slow header client")
    cut = r.log_lines(lambda l: "end=header_deadline" in l and "path=/healthz" in l, 40)
    check(len(cut) >= 40, "%d cut requests logged" % len(cut))
    m = r.metrics()
    check(m['saas_http_request_deadlines_total{phase="headers"}'] >= 40, "deadlines not counted")


@case
def slow_request_line_is_cut_at_the_header_deadline():
    # the request line never ends: libmicrohttpd has nothing to report, the watchdog sees the bytes
    r = deadline_relay()
    clients = [SlowClient(r, b"G", lambda i: b"ET /"[i:i + 1] or b"a", gap=0.3) for _ in range(3)]
    for c in clients:
        c.start()
    check_cut(clients, 1.9, 3.5, "slow request line")
    check(r.log_lines(lambda l: "status=408" in l and "end=header_deadline" in l and "path=" not in l),
          "cut without a request line not logged")


@case
def slow_body_is_cut_at_the_body_deadline():
    r = deadline_relay()
    head = (b"POST /users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n"
            b"X-Request-Id: slow-body-1\r\n\r\n{")
    c = SlowClient(r, head, lambda i: b" ", gap=0.3)
    c.start()
    check_cut([c], 1.9, 3.5, "slow body", rid="slow-body-1")
    check(r.log_lines(lambda l: "rid=slow-body-1" in l and "status=408" in l and "end=body_deadline" in l),
          "body deadline not logged with the request id")


@case
def idle_keep_alive_connections_outlive_the_header_deadline():
    # the deadline counts from a request's first byte; an idle connection is the idle timeout's
    r = deadline_relay()
    s = socket.create_connection(("127.0.0.1", r.port), timeout=5)
    try:
        for pause in (0, 3.0, 0.5):
            time.sleep(pause)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            data, closed, _ = read_answer(s, 5)
            check(parse_response(data)[0] == 200, "after %.1fs idle: %r closed=%r" % (pause, data[:60], closed))
    finally:
        s.close()


def hold(relay, n):
    """n idle connections, accepted by the relay."""
    socks = [socket.create_connection(("127.0.0.1", relay.port), timeout=5) for _ in range(n)]
    time.sleep(0.3)
    return socks


def refused_answers(relay, n):
    """n requests at once, each on a new connection: [(status, headers, doc, seconds)]."""
    out = [None] * n

    def one(i):
        try:
            out[i] = ask(relay, get(b"/healthz", b"X-Request-Id: over-%d\r\n" % i), timeout=5)
        except OSError as e:
            out[i] = (None, {}, None, repr(e))
    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    return out


def check_refused(answers, what):
    for status, h, doc, took in answers:
        check(status == 503, "%s: %r after %r" % (what, status, took))
        check(error_body_ok(doc, "too_many_connections"), "%s: body %r" % (what, doc))
        check(doc["error"]["request_id"] == h.get("x-request-id"), "%s: request ids differ" % what)
        check(h.get("retry-after") == "1" and h.get("connection", "").lower() == "close",
              "%s: headers %r" % (what, h))
        check(took < 2, "%s: answered after %.1fs" % (what, took))


@case
def connections_over_the_per_client_limit_are_503_and_closed():
    r = per_client_relay()
    held = hold(r, 4)
    try:
        check_refused(refused_answers(r, 40), "over the per-client limit")
    finally:
        for s in held:
            s.close()
    time.sleep(0.3)
    check(r.request("GET", "/healthz")[0] == 200, "not served once the held connections closed")
    m = r.metrics()
    check(m['saas_http_connections_refused_total{limit="per_client"}'] >= 40, "refusals not counted")
    check("saas_http_connections_open" in m, "open connections not reported")
    check(len(r.log_lines(lambda l: "end=per_client_limit" in l, 40)) >= 40, "refusals not logged")


@case
def connections_over_the_total_limit_are_503_and_closed():
    r = Relay("--max-connections", "3", "--max-connections-per-client", "10")
    RELAYS["total"] = r
    held = hold(r, 3)
    try:
        answers = refused_answers(r, 5)
        check_refused(answers, "over the total limit")
        check(all("server has as many" in a[2]["error"]["message"] for a in answers), "message %r" % answers[0][2])
    finally:
        for s in held:
            s.close()
    time.sleep(0.3)
    check(r.request("GET", "/healthz")[0] == 200, "not served once the held connections closed")
    check(r.metrics()['saas_http_connections_refused_total{limit="max_connections"}'] >= 5, "not counted")


@case
def an_address_held_by_slow_clients_is_served_again_after_the_deadline():
    # one address fills its share with slow headers: it is refused (503, at once) until the
    # deadline frees its connections, so an attack lasts the deadline, not as long as it likes
    r = per_client_relay()
    t0 = time.time()
    attack = [SlowClient(r, b"GET /healthz HTTP/1.1\r\nHost: x\r\n", lambda i: b"X-S%d: y\r\n" % i)
              for _ in range(4)]
    for c in attack:
        c.start()
    time.sleep(0.5)
    check_refused(refused_answers(r, 2), "while the address is full")
    status = None
    while time.time() - t0 < 4.5 and status != 200:
        status = ask(r, get(b"/healthz"))[0]
        time.sleep(0.1)
    check(status == 200, "not served again after the deadline: %r" % status)
    check(time.time() - t0 < 3.6, "served again only after %.1fs" % (time.time() - t0))
    check_cut(attack, 1.9, 3.5, "slow header client")


@case
def limit_relays_stop_cleanly():
    for name, r in sorted(RELAYS.items()):
        check(r.alive(), "%s relay died" % name)
        check(r.stop() == 0, "%s relay: exit code" % name)
