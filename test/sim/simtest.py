"""Helpers for the saas-sim tests: free ports, the sim process, a webhook
receiver, an HTTP client and an independent Standard Webhooks verifier.

Everything here is python3 standard library only.
"""

import base64
import hmac
import http.client
import http.server
import json
import os
import signal
import subprocess
import threading
import time

from saas_test import SANITIZER_MARKS as SANITIZER_MARKERS  # noqa: F401 (the tests use simtest's name)
from saas_test import TestFailure, check, eq, free_port, wait_for, webhook_signature  # noqa: F401

SERVICES = ("user-service", "payment-service", "communication-service", "identity-provider")


# ---- references --------------------------------------------------------------

def reference_dir():
    """The shared reference data, or the copy kept with the tests."""
    root = os.environ.get("PROJECT_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
    for d in (os.path.join(root, "..", "shared", "reference-data"),
              os.path.join(os.environ.get("TEST_SRC", "/nonexistent"), "reference-data"),
              os.path.join(os.path.dirname(__file__), "fixtures")):
        if os.path.exists(os.path.join(d, "platform_data.json")) and \
           os.path.exists(os.path.join(d, "integration_config.json")):
            return os.path.abspath(d)
    raise RuntimeError("no reference data found")


def default_secrets():
    """whsec_ + base64(secret_key) per service, computed from integration_config.json."""
    with open(os.path.join(reference_dir(), "integration_config.json")) as f:
        cfg = json.load(f)
    out = {}
    for key, prov in cfg["providers"].items():
        name = key.replace("_", "-")
        out[name] = "whsec_" + base64.b64encode(prov["secret_key"].encode()).decode()
    return out


# ---- Standard Webhooks verification, written independently of the C code ----

def expected_signature(secret, msg_id, timestamp, body):
    return webhook_signature(secret, msg_id, timestamp, body)


def verify(secret, headers, body, tolerance=300):
    """True when one v1 entry of webhook-signature matches and the timestamp is fresh."""
    msg_id = headers.get("webhook-id")
    ts = headers.get("webhook-timestamp")
    sig = headers.get("webhook-signature")
    if not msg_id or not ts or not sig:
        return False
    try:
        ts_i = int(ts)
    except ValueError:
        return False
    if abs(time.time() - ts_i) > tolerance:
        return False
    want = expected_signature(secret, msg_id, ts_i, body)
    for part in sig.split(" "):
        version, _, value = part.partition(",")
        if version == "v1" and hmac.compare_digest(value, want):
            return True
    return False


# ---- HTTP client -------------------------------------------------------------

class Reply:
    def __init__(self, status, headers, raw):
        self.status = status
        self.headers = headers
        self.raw = raw
        try:
            self.json = json.loads(raw) if raw else None
        except ValueError:
            self.json = None

    def __repr__(self):
        return "<Reply %d %r>" % (self.status, self.raw[:300])


def request(port, method, path, body=None, headers=None, timeout=10.0, raw_body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        hdrs = dict(headers or {})
        data = raw_body
        if body is not None:
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=data, headers=hdrs)
        r = conn.getresponse()
        raw = r.read()
        return Reply(r.status, {k.lower(): v for k, v in r.getheaders()}, raw)
    finally:
        conn.close()


def is_error_shape(reply, status=None, code=None):
    j = reply.json
    if not isinstance(j, dict) or j.get("status") != "error":
        return False
    if not isinstance(j.get("error_code"), str) or not isinstance(j.get("message"), str):
        return False
    if status is not None and reply.status != status:
        return False
    if code is not None and j["error_code"] != code:
        return False
    return True


# ---- the sim process ---------------------------------------------------------

class Sim:
    """One saas-sim process on free ports; its stderr goes to a file."""

    all_instances = []

    def __init__(self, binary, workdir, webhook_url=None, args=(), seed=1234,
                 seed_data="default"):
        self.binary = binary
        self.control = free_port()
        self.ports = {s: free_port() for s in SERVICES}
        self.log_path = os.path.join(workdir, "sim-%d-%d.log" % (os.getpid(), len(Sim.all_instances)))
        cmd = [binary,
               "--control-port", str(self.control),
               "--user-port", str(self.ports["user-service"]),
               "--payment-port", str(self.ports["payment-service"]),
               "--communication-port", str(self.ports["communication-service"]),
               "--oidc-port", str(self.ports["identity-provider"])]
        if seed is not None:
            cmd += ["--seed", str(seed)]
        if seed_data == "default":
            cmd += ["--seed-data", os.path.join(reference_dir(), "platform_data.json")]
        elif seed_data is not None:
            cmd += ["--seed-data", seed_data]
        cmd += ["--webhook-url", webhook_url or "none"]
        cmd += list(args)
        self.cmd = cmd
        self.log = open(self.log_path, "wb")
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=self.log, env=env, cwd=workdir)
        self.exit_code = None
        Sim.all_instances.append(self)
        try:
            wait_for(self._up, timeout=10, what="saas-sim to answer /_sim/health")
        except TestFailure:
            self.stop()
            raise TestFailure("saas-sim did not start: %s" % self.stderr()[-2000:])

    def _up(self):
        if self.proc.poll() is not None:
            raise TestFailure("saas-sim exited with %s: %s" % (self.proc.returncode, self.stderr()[-2000:]))
        try:
            return request(self.control, "GET", "/_sim/health", timeout=1).status == 200
        except OSError:
            return False

    def port(self, service):
        return self.ports[service]

    def api(self, service, method, path, body=None, headers=None, timeout=10.0, raw_body=None):
        return request(self.ports[service], method, path, body, headers, timeout, raw_body)

    def ctl(self, method, path, body=None, timeout=10.0):
        r = request(self.control, method, path, body, timeout=timeout)
        return r

    def stats(self, service):
        return self.ctl("GET", "/_sim/stats/" + service).json

    def faults(self, service, profile):
        r = self.ctl("POST", "/_sim/faults/" + service, profile)
        check(r.status == 200, "setting faults failed: %r" % r)
        return r.json

    def webhooks(self, settings):
        r = self.ctl("POST", "/_sim/webhooks", settings)
        check(r.status == 200, "webhook settings failed: %r" % r)
        return r.json

    def pending(self):
        return sum(self.ctl("GET", "/_sim/webhooks").json["pending"].values())

    def reset(self):
        # let in-flight deliveries land first, so they do not leak into the next test
        try:
            wait_for(lambda: self.pending() == 0, timeout=3, what="idle delivery queues")
        except TestFailure:
            pass
        r = self.ctl("POST", "/_sim/reset")
        check(r.status == 200, "reset failed: %r" % r)

    def stderr(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def sanitizer_report(self):
        text = self.stderr()
        for m in SANITIZER_MARKERS:
            i = text.find(m)
            if i >= 0:
                return text[max(0, i - 200):i + 3000]
        return None

    def alive(self):
        return self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.exit_code is not None:
            return self.exit_code
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.exit_code = -9
                self.log.close()
                return self.exit_code
        self.exit_code = self.proc.returncode
        self.log.close()
        return self.exit_code


# ---- webhook receiver --------------------------------------------------------

class Received:
    def __init__(self, path, headers, body):
        self.at = time.monotonic()
        self.path = path
        self.headers = headers
        self.body = body
        try:
            self.json = json.loads(body)
        except ValueError:
            self.json = None

    @property
    def service(self):
        return self.path.rstrip("/").rsplit("/", 1)[-1]


class Receiver:
    """A threaded HTTP server that records every POST and answers from a script."""

    def __init__(self, default_status=202):
        self.lock = threading.Lock()
        self.items = []
        self.script = {}      # service -> list of (status, headers)
        self.default_status = default_status
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True   # headers and body go out in two writes

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                item = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with receiver.lock:
                    receiver.items.append(item)
                    steps = receiver.script.get(item.service)
                    status, extra = (steps.pop(0) if steps else (receiver.default_status, {}))
                out = b'{"received":true}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                for k, v in extra.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return "http://127.0.0.1:%d/webhooks" % self.port

    def clear(self):
        with self.lock:
            self.items = []
            self.script = {}

    def plan(self, service, steps):
        """Answer the next deliveries for service with these (status, headers) steps."""
        with self.lock:
            self.script[service] = list(steps)

    def received(self, service=None, event_type=None):
        with self.lock:
            items = list(self.items)
        out = []
        for it in items:
            if service and it.service != service:
                continue
            if event_type and not (isinstance(it.json, dict) and it.json.get("event_type") == event_type):
                continue
            out.append(it)
        return out

    def wait(self, n, service=None, event_type=None, timeout=5.0):
        return wait_for(lambda: len(self.received(service, event_type)) >= n and
                        self.received(service, event_type),
                        timeout=timeout,
                        what="%d deliveries of %s/%s (have %d)" % (
                            n, service, event_type, len(self.received(service, event_type))))

    def close(self):
        self.server.shutdown()
        self.server.server_close()
