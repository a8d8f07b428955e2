"""The harness of the relay tests (test_relay.py, test_limits.py): settings from the
environment that test/suites/60_relay.sh exports, cases and checks, a relay process on a free
port of 127.0.0.1, and HTTP helpers over raw sockets.  Python standard library only.
"""

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import time

BIN = os.environ["RELAY_BIN"]
WORK = os.environ["RELAY_WORK"]
DSN = os.environ["RELAY_DSN"]
STUB_SQL = os.environ["RELAY_STUB_SQL"]
API_MD = os.environ.get("RELAY_API_MD", "")
PG_BINDIR = os.environ["RELAY_PG_BINDIR"]
PGHOST = os.environ["PGHOST"]
PGPORT = os.environ["PGPORT"]

# generated request ids are UUIDv7, like the extension's ids
UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "SUMMARY: AddressSanitizer", "SUMMARY: UndefinedBehaviorSanitizer")

CASES = []


def case(fn):
    CASES.append(fn)
    return fn


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def as_pg(args, **kw):
    """Run a PostgreSQL program as the postgres OS user (servers refuse root)."""
    if os.geteuid() == 0:
        args = ["runuser", "-u", "postgres", "--"] + args
    return subprocess.run(args, capture_output=True, text=True, **kw)


def psql(sql, host=PGHOST, port=PGPORT, db="relay_test"):
    r = subprocess.run(["psql", "-X", "-At", "-h", host, "-p", str(port), "-U", "postgres",
                        "-d", db, "-c", sql], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise RuntimeError("psql failed: " + r.stderr.strip())
    return r.stdout.strip()


ALL_RELAYS = []
MAIN = {}       # "relay": the relay most cases share, started by test_relay.main()


class Relay:
    """One saas-http process on a free port, with its stderr in a file."""

    def __init__(self, *args, dsn=DSN, env=None, listen="127.0.0.1:0"):
        self.name = "relay-%d" % (len(ALL_RELAYS) + 1)
        self.err_path = os.path.join(WORK, self.name + ".err")
        e = dict(os.environ)
        e["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=0"
        e["UBSAN_OPTIONS"] = "print_stacktrace=1"
        e.update(env or {})
        cmd = [BIN]
        if listen is not None:
            cmd += ["--listen", listen]
        if dsn is not None:
            cmd += ["--dsn", dsn]
        cmd += list(args)
        self.err = open(self.err_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.err, env=e)
        ALL_RELAYS.append(self)
        with open(os.path.join(WORK, "relay.pids"), "a") as f:   # for the suite's cleanup
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


def error_body_ok(doc, code=None, rid=None):
    """The API's error shape: {"error":{"code","message","details":[],"request_id"}}."""
    if not isinstance(doc, dict) or set(doc) != {"error"}:
        return False
    e = doc["error"]
    if not isinstance(e, dict) or not {"code", "message", "details", "request_id"} <= set(e):
        return False
    if not isinstance(e["details"], list) or not e["message"]:
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
    return int(m.group(1)), {h.split(":", 1)[0].lower(): h.split(":", 1)[1].strip() for h in head if ":" in h}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


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
