"""The Python side of the test suites: one library for test/sim, test/relay and test/e2e.

Checks and cases (check, eq, case, Skip, run_cases), sanitizer marks, free ports and waits, the
Standard Webhooks signature, and the relay: a saas-http process on a free port (Relay), the API's
error body, and helpers for raw HTTP over sockets.  The suite scripts (test/suites/50_sim.sh,
60_relay.sh, 70_e2e.sh) put this folder on PYTHONPATH.  Python standard library only.
"""

import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import time
import traceback

# generated request ids and the extension's ids are UUIDv7
UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")

# what AddressSanitizer, LeakSanitizer and UBSan print; any of it in a log fails a suite
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "SUMMARY: AddressSanitizer", "UndefinedBehaviorSanitizer")


# ---- checks and cases ---------------------------------------------------------------------------

class TestFailure(AssertionError):
    """A check that did not hold (an AssertionError that survives python -O)."""


class Skip(Exception):
    """Raised by a case that cannot run here; run_cases reports it as skipped."""


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


def eq(actual, expected, what):
    if actual != expected:
        raise TestFailure("%s: expected %r, got %r" % (what, expected, actual))


CASES = []


def case(fn):
    """Register fn as a case of the suite, run in the order of registration."""
    CASES.append(fn)
    return fn


def run_cases(cases, known_bugs=None, strict=False):
    """Run each case and print "ok - name (Ns)" or "not ok - name: why".  A case named in
    known_bugs that fails prints TAP's "# TODO" and is not a failure unless strict; Skip prints
    "# SKIP".  Returns (passed, failed, skipped, todo)."""
    known_bugs = known_bugs or {}
    passed = failed = skipped = todo = 0
    for fn in cases:
        t0 = time.time()
        try:
            fn()
            passed += 1
            print("ok - %s (%.1fs)%s" % (fn.__name__, time.time() - t0,
                                         " # known bug fixed? take it off KNOWN_BUGS" if fn.__name__ in known_bugs
                                         else ""), flush=True)
        except Skip as e:
            skipped += 1
            print("ok - %s # SKIP %s" % (fn.__name__, e), flush=True)
        except AssertionError as e:
            if fn.__name__ in known_bugs and not strict:
                todo += 1
                print("not ok - %s: %s # TODO known bug: %s" % (fn.__name__, e, known_bugs[fn.__name__]), flush=True)
            else:
                failed += 1
                print("not ok - %s: %s" % (fn.__name__, e), flush=True)
        except Exception:
            failed += 1
            print("not ok - %s: %s" % (fn.__name__, traceback.format_exc().strip().replace("\n", "\n    ")),
                  flush=True)
    return passed, failed, skipped, todo


# ---- ports, waits, PostgreSQL -------------------------------------------------------------------

_handed_out = set()


def free_port():
    """A port nobody listens on now (bind port 0, read it, release it), and never one this
    process handed out before, so two servers cannot be given the same port."""
    while True:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def wait_for(cond, timeout=5.0, interval=0.05, what="condition"):
    """cond()'s first true value within timeout seconds, else a TestFailure."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        last = cond()
        if last:
            return last
        time.sleep(interval)
    raise TestFailure("timed out after %.1fs waiting for %s" % (timeout, what))


def as_pg(args, **kw):
    """Run a PostgreSQL program as the postgres OS user (servers refuse root)."""
    if os.geteuid() == 0:
        args = ["runuser", "-u", "postgres", "--"] + args
    return subprocess.run(args, capture_output=True, text=True, **kw)


def psql(query, db, host=None, port=None, timeout=60):
    """One statement as the superuser postgres; the output, unaligned."""
    r = subprocess.run(["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", host or os.environ["PGHOST"],
                        "-p", str(port or os.environ["PGPORT"]), "-U", "postgres", "-d", db, "-c", query],
                       capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError("psql failed: %s\n%s" % (r.stderr.strip(), query[:300]))
    return r.stdout.strip()


# ---- Standard Webhooks, written independently of the C code --------------------------------------

def webhook_signature(secret, msg_id, timestamp, body):
    """The v1 signature (base64 of HMAC-SHA256) of id.timestamp.body with a whsec_ secret."""
    key = base64.b64decode(secret[len("whsec_"):])
    signed = msg_id.encode() + b"." + str(timestamp).encode() + b"." + body
    return base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


# ---- the relay ----------------------------------------------------------------------------------

ALL_RELAYS = []


class Relay:
    """One saas-http process on a free port, with its stderr in a file.  The binary, the folder
    for logs and the default DSN are the suite's: set them once with Relay.configure."""

    bin = None
    work = None
    default_dsn = None

    @classmethod
    def configure(cls, bin, work, dsn):
        cls.bin, cls.work, cls.default_dsn = bin, work, dsn

    def __init__(self, *args, dsn="", env=None, listen="127.0.0.1:0"):
        dsn = self.default_dsn if dsn == "" else dsn
        self.name = "relay-%d" % (len(ALL_RELAYS) + 1)
        self.err_path = os.path.join(self.work, self.name + ".err")
        e = dict(os.environ)
        e["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=0"
        e["UBSAN_OPTIONS"] = "print_stacktrace=1"
        e.update(env or {})
        cmd = [self.bin]
        if listen is not None:
            cmd += ["--listen", listen]
        if dsn is not None:
            cmd += ["--dsn", dsn]
        cmd += list(args)
        self.err = open(self.err_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.err, env=e)
        ALL_RELAYS.append(self)
        with open(os.path.join(self.work, "relay.pids"), "a") as f:   # for the suite's cleanup
            f.write("%d\n" % self.proc.pid)
        self.port = None
        deadline = time.time() + 15
        while time.time() < deadline and self.proc.poll() is None:
            m = re.search(r"msg=listening addr=\S+:(\d+)", self.log())
            if m:
                self.port = int(m.group(1))
                break
            time.sleep(0.05)
        if self.port is None:
            raise RuntimeError("relay did not start: " + self.log()[-2000:])

    def log(self):
        with open(self.err_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def log_lines(self, match, at_least=1, timeout=3.0):
        """The log lines for which match(line) holds, waiting up to timeout for at_least of them:
        the access line is written when a request completes, just after its answer is sent."""
        deadline = time.time() + timeout
        while True:
            lines = [l for l in self.log().splitlines() if match(l)]
            if len(lines) >= at_least or time.time() > deadline:
                return lines
            time.sleep(0.05)

    def alive(self):
        return self.proc.poll() is None

    def request(self, method, path, headers=None, body=None, timeout=15):
        """One request on a new connection: (status, {lower-case header: value}, body bytes)."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            if isinstance(body, str):
                body = body.encode()
            c.putrequest(method, path, skip_accept_encoding=True)
            hdrs = list((headers or {}).items()) if isinstance(headers, dict) else list(headers or [])
            for k, v in hdrs:
                c.putheader(k, v)
            if body is not None and not any(k.lower() == "content-length" for k, _ in hdrs):
                c.putheader("Content-Length", str(len(body)))
            c.endheaders(body)
            r = c.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            c.close()

    def json(self, method, path, headers=None, body=None, timeout=15):
        h = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
        if body is not None:
            if not any(k.lower() == "content-type" for k, _ in h):
                h.append(("Content-Type", "application/json"))
            if not isinstance(body, (str, bytes)):
                body = json.dumps(body)
        status, rh, data = self.request(method, path, h, body, timeout)
        try:
            doc = json.loads(data) if data else None
        except ValueError:
            doc = None
        return status, rh, doc

    def raw(self, data, read_timeout=3.0, half_close=False):
        """Send bytes on a fresh socket; return what came back until the first complete
        response, the server's close, or read_timeout."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        s.settimeout(read_timeout)
        out = b""
        try:
            try:
                s.sendall(data)
                if half_close:
                    s.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            while not response_complete(out):
                try:
                    chunk = s.recv(65536)
                except (socket.timeout, OSError):
                    break
                if not chunk:
                    break
                out += chunk
        finally:
            s.close()
        return out

    def metrics(self):
        status, _, data = self.request("GET", "/metrics")
        check(status == 200, "/metrics answered %d" % status)
        values = {}
        for line in data.decode().splitlines():
            if line and not line.startswith("#"):
                key, _, val = line.rpartition(" ")
                values[key] = float(val)
        return values

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.err.close()
        return self.proc.returncode


def sanitizer_reports(relays):
    """(relay name, excerpt) of the first sanitizer mark in each relay's log that has one."""
    out = []
    for r in relays:
        log = r.log()
        for mark in SANITIZER_MARKS:
            if mark in log:
                out.append((r.name, "%s\n%s" % (mark, log[max(0, log.find(mark) - 200):log.find(mark) + 1500])))
                break
    return out


def error_body_ok(doc, code=None, rid=None):
    """The API's error shape: {"error":{"code","message","details":[],"request_id"}}."""
    if not isinstance(doc, dict) or set(doc) != {"error"}:
        return False
    e = doc["error"]
    if not isinstance(e, dict) or not {"code", "message", "details", "request_id"} <= set(e):
        return False
    if not isinstance(e["details"], list) or not isinstance(e["message"], str) or not e["message"]:
        return False
    if code is not None and e["code"] != code:
        return False
    if rid is not None and e["request_id"] != rid:
        return False
    return True


def response_complete(data):
    """Does data hold a whole response with a Content-Length (all the relay sends)?"""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    return m is not None and len(body) >= int(m.group(1))


def parse_response(data):
    """Status and headers of the first HTTP response in data (None when there is none)."""
    m = re.match(rb"HTTP/1\.[01] (\d{3})", data)
    if not m:
        return None, {}
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")[1:]
    return int(m.group(1)), {h.split(":", 1)[0].strip().lower(): h.split(":", 1)[1].strip()
                             for h in head if ":" in h}


def read_answer(sock, timeout):
    """Read from sock until one whole answer is in, the server closes, or timeout passes.
    Returns (data, closed, seconds)."""
    t0 = time.time()
    data = b""
    closed = False
    while not response_complete(data):
        left = timeout - (time.time() - t0)
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        except OSError:
            closed = True
            break
        if not chunk:
            closed = True
            break
        data += chunk
    return data, closed, time.time() - t0


def answer_doc(data):
    """The JSON body of a raw answer, or None."""
    try:
        return json.loads(data.split(b"\r\n\r\n", 1)[1])
    except (IndexError, ValueError):
        return None
