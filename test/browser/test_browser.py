#!/usr/bin/env python3
"""The admin dashboard and the API page in headless Chromium, through chromedriver (WebDriver
over plain HTTP, Python's standard library only).

Run by test/suites/75_browser.sh, which creates pg_saas in the worker's database and exports:
  BROWSER_RELAY_BIN  the relay (AddressSanitizer build)
  BROWSER_SIM_BIN    saas-sim
  BROWSER_WORK       logs and the screenshots of failed cases
  BROWSER_DB         the database (the cluster's worker serves it)
  BROWSER_DSN        conninfo of the relay's login role
  PGHOST, PGPORT     the cluster (admin queries as postgres)

Each case prints "ok - name" or "not ok - name: why"; the last line is "passed=N failed=M".
"""

import base64
import hashlib
import hmac
import http.client
import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid

from saas_test import (ALL_RELAYS, CASES, Relay, case, check, free_port, psql, run_cases,
                       sanitizer_reports, wait_for)

WORK = os.environ["BROWSER_WORK"]
DB = os.environ["BROWSER_DB"]
RUN = uuid.uuid4().hex[:6]
ROOT_EMAIL, ROOT_PASSWORD = "root@platform.test", "platform root password"
PASSWORD = "correct horse battery staple"
SERVICES = ("user-service", "payment-service", "communication-service")

R = None            # the relay
SIM = {}            # ports of saas-sim
DRIVER = None       # the WebDriver client
CHILDREN = []       # processes to stop at the end
F = {}              # fixtures


def sql(query):
    return psql(query, DB)


def record_child(proc):
    CHILDREN.append(proc)
    with open(os.path.join(WORK, "children.pids"), "a") as f:
        f.write("%d\n" % proc.pid)


def http_json(method, url, body=None, timeout=30):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            return r.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, raw


def api(method, path, token=None, body=None, headers=None):
    h = dict(headers or {})
    if token:
        h["Authorization"] = "Bearer " + token
    status, rh, doc = R.json(method, path, h, body)
    return status, rh, doc


# ---------------------------------------------------------------------------------------------
# WebDriver, the W3C protocol over HTTP

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"


class WebDriverError(AssertionError):
    pass


class Driver:
    def __init__(self):
        self.port = free_port()
        self.log = open(os.path.join(WORK, "chromedriver.log"), "wb")
        self.proc = subprocess.Popen(["chromedriver", "--port=%d" % self.port], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        record_child(self.proc)
        self.base = "http://127.0.0.1:%d" % self.port
        wait_for(lambda: self._ready(), timeout=20, what="chromedriver")
        args = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,900", "--no-first-run", "--no-default-browser-check",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-default-apps", "--disable-extensions", "--metrics-recording-only",
                "--user-data-dir=" + os.path.join(WORK, "profile")]
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args},
            "goog:loggingPrefs": {"browser": "ALL"}}}}
        v = self.cmd("POST", "/session", caps, session=False)
        self.sid = v["sessionId"]

    def _ready(self):
        try:
            status, doc = http_json("GET", self.base + "/status", timeout=2)
            return status == 200 and doc["value"]["ready"]
        except OSError:
            return False

    def cmd(self, method, path, body=None, session=True):
        url = self.base + ("/session/" + self.sid if session else "") + path
        status, doc = http_json(method, url, body if body is not None or method != "POST" else {}, timeout=60)
        if status != 200:
            v = doc.get("value", {}) if isinstance(doc, dict) else {}
            raise WebDriverError("WebDriver %s %s: %s %s" % (method, path, v.get("error", status),
                                                             str(v.get("message", doc))[:300]))
        return doc["value"]

    def get(self, path):
        self.cmd("POST", "/url", {"url": "http://127.0.0.1:%d%s" % (R.port, path)})

    def js(self, script, *args):
        return self.cmd("POST", "/execute/sync", {"script": script, "args": list(args)})

    def find(self, css, timeout=10.0):
        """The first element matching css, waiting for it to appear (the views load with fetch)."""
        deadline = time.time() + timeout
        while True:
            try:
                v = self.cmd("POST", "/element", {"using": "css selector", "value": css})
                return v[ELEMENT]
            except WebDriverError:
                if time.time() > deadline:
                    raise WebDriverError("no element %r after %.0fs" % (css, timeout))
                time.sleep(0.1)

    def find_all(self, css):
        return [e[ELEMENT] for e in self.cmd("POST", "/elements", {"using": "css selector", "value": css})]

    def click(self, css_or_id, timeout=10.0):
        eid = self.find(css_or_id, timeout) if not css_or_id.startswith("@") else css_or_id[1:]
        self.cmd("POST", "/element/%s/click" % eid)

    def type(self, css, text):
        eid = self.find(css)
        self.cmd("POST", "/element/%s/clear" % eid)
        self.cmd("POST", "/element/%s/value" % eid, {"text": text})

    def choose(self, css, value):
        """Set a <select> and tell the page (change event), as a user's pick would."""
        self.js("const s = document.querySelector(arguments[0]); s.value = arguments[1];"
                "s.dispatchEvent(new Event('change', {bubbles: true}));", css, value)

    def text(self, css, timeout=10.0):
        return self.cmd("GET", "/element/%s/text" % self.find(css, timeout))

    def wait_text(self, css, want, timeout=15.0):
        """The text of css once it contains want (the views answer asynchronously)."""
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            try:
                last = self.js("const e = document.querySelector(arguments[0]); return e ? e.innerText : null;", css)
            except WebDriverError:
                last = None
            if last is not None and want in last:
                return last
            time.sleep(0.15)
        raise AssertionError("%r never showed %r; last %r" % (css, want, last))

    def size(self, width, height):
        self.cmd("POST", "/window/rect", {"width": width, "height": height})

    def screenshot(self, path):
        with open(path, "wb") as f:
            f.write(base64.b64decode(self.cmd("GET", "/screenshot")))

    def browser_log(self):
        try:
            return self.cmd("POST", "/se/log", {"type": "browser"})
        except WebDriverError:
            return []

    def quit(self):
        try:
            self.cmd("DELETE", "")
        except Exception:
            pass
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def screenshot_on_failure(fn):
    """A case whose failure leaves a screenshot (and the page's URL) in BROWSER_WORK."""
    def wrapped():
        try:
            fn()
        except Exception:
            if DRIVER is not None:
                try:
                    DRIVER.screenshot(os.path.join(WORK, fn.__name__ + ".png"))
                    with open(os.path.join(WORK, fn.__name__ + ".html"), "w") as f:
                        f.write(DRIVER.js("return document.documentElement.outerHTML;"))
                except Exception as e:  # the screenshot is a help, not the verdict
                    print("    # no screenshot: %s" % e)
            raise
    wrapped.__name__ = fn.__name__
    return wrapped


def bcase(fn):
    return case(screenshot_on_failure(fn))


def sign_in(email, password):
    DRIVER.get("/admin/")
    DRIVER.find("#login-form")
    DRIVER.type("#login-form input[name=email]", email)
    DRIVER.type("#login-form input[name=password]", password)
    DRIVER.click("#login-submit")
    DRIVER.find("#sign-out")


def goto(view):
    """Another view of the signed-in page (a hash change: no reload, the token stays)."""
    DRIVER.js("location.hash = arguments[0];", "#/" + view)
    DRIVER.wait_text("#nav-" + view, "")
    deadline = time.time() + 10
    while DRIVER.js("const a = document.querySelector('#nav-' + arguments[0]);"
                    "return a ? a.getAttribute('aria-current') : null;", view) != "page":
        if time.time() > deadline:
            raise AssertionError("view %s did not open" % view)
        time.sleep(0.1)


def sign_out():
    DRIVER.click("#sign-out")
    DRIVER.find("#login-form")


def outside_requests():
    """URLs the page fetched (navigation and resources) from anywhere but the relay."""
    origin = "http://127.0.0.1:%d/" % R.port
    names = DRIVER.js("return performance.getEntriesByType('navigation').concat("
                      "performance.getEntriesByType('resource')).map(e => e.name);")
    return [n for n in names if not n.startswith(origin)]


def page_problems():
    """The browser log's CSP violations and errors other than the API's expected 4xx answers."""
    out = []
    for e in DRIVER.browser_log():
        msg = e.get("message", "")
        if "Content Security Policy" in msg or "Refused to" in msg:
            out.append(msg)
        elif e.get("level") == "SEVERE" and "the server responded with a status of 4" not in msg:
            out.append(msg)
    return out


# ---------------------------------------------------------------------------------------------
# set-up

@case
def start_relay_sim_and_browser():
    global R, DRIVER
    Relay.configure(os.environ["BROWSER_RELAY_BIN"], WORK, os.environ["BROWSER_DSN"])
    R = Relay()
    record_child(R.proc)
    SIM.update(control=free_port(), user=free_port(), payment=free_port(), comm=free_port())
    log = open(os.path.join(WORK, "sim.log"), "wb")
    sim = subprocess.Popen([os.environ["BROWSER_SIM_BIN"], "--control-port", str(SIM["control"]),
                            "--user-port", str(SIM["user"]), "--payment-port", str(SIM["payment"]),
                            "--communication-port", str(SIM["comm"]), "--oidc-port", "0",
                            "--webhook-url", "http://127.0.0.1:%d/webhooks" % R.port, "--seed", "7"],
                           stdout=log, stderr=subprocess.STDOUT)
    record_child(sim)
    def sim_up():
        if sim.poll() is not None:
            return True
        try:
            return http_json("GET", "http://127.0.0.1:%d/_sim/health" % SIM["control"], timeout=2)[0] == 200
        except OSError:
            return False
    wait_for(sim_up, timeout=20, what="saas-sim")
    check(sim.poll() is None, "saas-sim exited")
    SIM["idp"] = http_json("GET", "http://127.0.0.1:%d/_sim/health" % SIM["control"])[1][
        "services"]["identity-provider"]["port"]
    sql("UPDATE saas.integrations SET base_url = 'http://127.0.0.1:%d/v1' WHERE service = 'user-service';"
        "UPDATE saas.integrations SET base_url = 'http://127.0.0.1:%d/v2' WHERE service = 'payment-service';"
        "UPDATE saas.integrations SET base_url = 'http://127.0.0.1:%d/v1' WHERE service = 'communication-service'"
        % (SIM["user"], SIM["payment"], SIM["comm"]))
    DRIVER = Driver()


# ---------------------------------------------------------------------------------------------
# the relay's pages, over plain HTTP

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; manifest-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


@case
def pages_carry_a_strict_csp_and_the_security_headers():
    for path, ctype in (("/admin/", "text/html"), ("/admin/app.js", "text/javascript"),
                        ("/admin/app.css", "text/css"), ("/docs", "text/html"), ("/docs/docs.js", "text/javascript")):
        status, h, body = R.request("GET", path)
        check(status == 200, "%s: %d" % (path, status))
        check(h.get("content-type", "").startswith(ctype), "%s: Content-Type %r" % (path, h.get("content-type")))
        check(h.get("content-security-policy") == CSP, "%s: CSP %r" % (path, h.get("content-security-policy")))
        for name, want in (("x-content-type-options", "nosniff"), ("referrer-policy", "no-referrer"),
                           ("x-frame-options", "DENY"), ("cache-control", "no-cache")):
            check(h.get(name) == want, "%s: %s %r" % (path, name, h.get(name)))
        check(h.get("etag"), "%s: no ETag" % path)
    status, h, _ = R.request("GET", "/admin")
    check(status == 308 and h.get("location") == "/admin/", "/admin: %d %r" % (status, h.get("location")))
    _, _, html = R.request("GET", "/admin/")
    check(b"<script type=\"module\" src=\"/admin/app.js\">" in html and b"<script>" not in html,
          "inline script in index.html")
    for path in ("/admin/", "/docs"):
        _, _, html = R.request("GET", path)
        check(b"http://" not in html.replace(b"http://www.w3.org", b"") and b"https://" not in html,
              "%s names another origin" % path)


# ---------------------------------------------------------------------------------------------
# sign-in and errors

@bcase
def wrong_password_shows_the_apis_error_body():
    DRIVER.size(1280, 900)
    DRIVER.get("/admin/")
    DRIVER.type("#login-form input[name=email]", ROOT_EMAIL)
    DRIVER.type("#login-form input[name=password]", "not the password")
    DRIVER.click("#login-submit")
    t = DRIVER.wait_text("#login-error .error", "invalid email or password")
    check("unauthorized" in t and "request id" in t, "error box %r" % t)
    check(not outside_requests(), "requests elsewhere: %r" % outside_requests())


@bcase
def super_admin_signs_in_and_provisions_a_tenant_from_the_page():
    sign_in(ROOT_EMAIL, ROOT_PASSWORD)
    DRIVER.find("#tenant-create")
    check("super_admin" in DRIVER.text("#who"), "who %r" % DRIVER.text("#who"))
    f = "#tenant-create "
    DRIVER.type(f + "input[name=name]", "Browser Co " + RUN)
    DRIVER.type(f + "input[name=slug]", "browser-co-" + RUN)
    DRIVER.choose(f + "select[name=subscription_tier]", "professional")
    DRIVER.type(f + "input[name=employee_limit]", "40")
    DRIVER.type(f + "input[name=admin_email]", "boss-%s@browser.test" % RUN)
    DRIVER.type(f + "input[name=admin_password]", PASSWORD)
    DRIVER.type(f + "input[name=admin_first_name]", "Bo")
    DRIVER.type(f + "input[name=admin_last_name]", "Ss")
    DRIVER.click("#tenant-submit")
    DRIVER.wait_text("#tenant-msg", "Created Browser Co " + RUN)
    row = sql("SELECT subscription_tier || ' ' || employee_limit || ' ' || status FROM saas.organizations"
              " WHERE slug = 'browser-co-%s'" % RUN)
    check(row == "professional 40 active", "organization %r" % row)
    admin = sql("SELECT u.role FROM saas.users u JOIN saas.organizations o ON o.id = u.org_id"
                " WHERE o.slug = 'browser-co-%s' AND u.email = 'boss-%s@browser.test'" % (RUN, RUN))
    check(admin == "admin", "first admin %r" % admin)
    DRIVER.wait_text("#tenant-list", "browser-co-" + RUN)


@bcase
def super_admin_suspends_and_reactivates_a_tenant_with_the_shown_errors():
    slug = "browser-co-" + RUN
    DRIVER.click("button.tenant-toggle[data-slug='%s']" % slug)
    DRIVER.wait_text("#tenant-msg", "status = suspended")
    check(sql("SELECT status FROM saas.organizations WHERE slug = '%s'" % slug) == "suspended", "not suspended")
    status, _, _ = api("POST", "/auth/login", body={"email": "boss-%s@browser.test" % RUN, "password": PASSWORD})
    check(status in (401, 403), "a suspended tenant's admin logs in: %d" % status)
    DRIVER.wait_text("#tenant-list tr[data-slug='%s']" % slug, "Reactivate")
    DRIVER.click("button.tenant-toggle[data-slug='%s']" % slug)
    DRIVER.wait_text("#tenant-msg", "status = active")
    # a duplicate slug: the API's 409 is shown as it came
    f = "#tenant-create "
    DRIVER.type(f + "input[name=name]", "Again")
    DRIVER.type(f + "input[name=slug]", slug)
    DRIVER.type(f + "input[name=admin_email]", "again-%s@browser.test" % RUN)
    DRIVER.type(f + "input[name=admin_password]", PASSWORD)
    DRIVER.type(f + "input[name=admin_first_name]", "A")
    DRIVER.type(f + "input[name=admin_last_name]", "G")
    DRIVER.click("#tenant-submit")
    t = DRIVER.wait_text("#tenant-msg .error", "conflict")
    check("request id" in t, "error %r" % t)
    sign_out()


# ---------------------------------------------------------------------------------------------
# an admin's views

@bcase
def admin_lists_searches_and_pages_users():
    email = "boss-%s@browser.test" % RUN
    status, _, doc = api("POST", "/auth/login", body={"email": email, "password": PASSWORD})
    check(status == 200, "login %d %r" % (status, doc))
    F["admin"], F["org"] = doc["token"], doc["user"]["org_id"]
    for i in range(12):
        s, _, d = api("POST", "/users", F["admin"], {"email": "member%02d-%s@browser.test" % (i, RUN),
                                                     "first_name": "Member%02d" % i, "last_name": "Zed", "role": "user"})
        check(s == 201, "user %d: %d %r" % (i, s, d))
    sign_in(email, PASSWORD)
    goto("users")
    DRIVER.find("#user-list table")
    DRIVER.choose("#user-filters select[name=limit]", "10")
    DRIVER.click("#user-filters button[type=submit]")
    DRIVER.wait_text("#user-list", "page 1")
    rows = DRIVER.js("return document.querySelectorAll('#user-list tbody tr').length;")
    check(rows == 10, "%d rows on page 1" % rows)
    DRIVER.click("#user-list .pager button:last-child")
    DRIVER.wait_text("#user-list", "page 2")
    rows2 = DRIVER.js("return [...document.querySelectorAll('#user-list tbody tr')].map(r => r.dataset.email);")
    check(len(rows2) == 3, "page 2 has %r" % rows2)
    DRIVER.type("#user-filters input[name=q]", "member07")
    DRIVER.click("#user-filters button[type=submit]")
    DRIVER.wait_text("#user-list", "page 1")
    found = DRIVER.js("return [...document.querySelectorAll('#user-list tbody tr')].map(r => r.dataset.email);")
    check(found == ["member07-%s@browser.test" % RUN], "search gave %r" % found)


@bcase
def admin_creates_edits_with_etag_deactivates_and_deletes_a_user():
    DRIVER.click("#user-new")
    f = "#user-create "
    DRIVER.type(f + "input[name=email]", "not an email")
    DRIVER.type(f + "input[name=first_name]", "New")
    DRIVER.type(f + "input[name=last_name]", "Comer")
    DRIVER.js("document.querySelector('#user-create input[name=email]').type = 'text';")  # let the API judge
    DRIVER.click(f + "button[type=submit]")
    t = DRIVER.wait_text("#user-create .error", "validation_failed")
    check("email" in t, "field not shown: %r" % t)
    DRIVER.type(f + "input[name=email]", "newcomer-%s@browser.test" % RUN)
    DRIVER.click(f + "button[type=submit]")
    DRIVER.wait_text("#user-editor", "Created newcomer-%s" % RUN)
    uid = sql("SELECT id FROM saas.users WHERE email = 'newcomer-%s@browser.test'" % RUN)
    check(uid, "not created")
    # edit: open, then someone else changes the row: the page's If-Match is stale (412, shown)
    DRIVER.type("#user-filters input[name=q]", "newcomer")
    DRIVER.click("#user-filters button[type=submit]")
    DRIVER.click("#user-list a.user-link")
    DRIVER.find("#user-edit")
    s, _, _ = api("PUT", "/users/" + uid, F["admin"], {"last_name": "Elsewhere"})
    check(s == 200, "concurrent change %d" % s)
    DRIVER.type("#user-edit input[name=first_name]", "Renamed")
    DRIVER.click("#user-save")
    t = DRIVER.wait_text("#user-edit .error", "precondition_failed")
    check("412" in t, "412 not shown: %r" % t)
    check(sql("SELECT first_name FROM saas.users WHERE id = '%s'" % uid) == "New", "stale save changed the row")
    # reopened: the fresh ETag saves
    DRIVER.click("#user-list a.user-link")
    DRIVER.wait_text("#user-edit input[name=first_name]", "")
    DRIVER.type("#user-edit input[name=first_name]", "Renamed")
    DRIVER.click("#user-save")
    DRIVER.wait_text("#user-edit", "Saved")
    check(sql("SELECT first_name || ' ' || last_name FROM saas.users WHERE id = '%s'" % uid) == "Renamed Elsewhere",
          "not saved")
    DRIVER.click("#user-deactivate")
    DRIVER.wait_text("#user-edit", "is inactive")
    check(sql("SELECT status FROM saas.users WHERE id = '%s'" % uid) == "inactive", "not deactivated")
    DRIVER.click("#user-delete")
    DRIVER.wait_text("#user-delete", "Really")
    DRIVER.click("#user-delete")
    DRIVER.wait_text("#user-editor", "Deleted")
    check(sql("SELECT count(*) FROM saas.users WHERE id = '%s'" % uid) == "0", "not deleted")


@bcase
def admin_edits_the_organization_and_reads_the_audit_log_with_its_verification():
    goto("org")
    DRIVER.find("#org-form")
    DRIVER.type("#org-form input[name=name]", "Browser Co Renamed " + RUN)
    DRIVER.click("#org-form button[type=submit]")
    DRIVER.wait_text("#org-form", "Saved")
    goto("audit")
    t = DRIVER.wait_text("#audit-verify", "Hash chain")
    check("intact" in t, "verification %r" % t)
    DRIVER.wait_text("#audit-list", "update")
    DRIVER.choose("#audit-filters select[name=entity]", "organization")
    DRIVER.click("#audit-filters button[type=submit]")
    DRIVER.wait_text("#audit-list", "page 1")
    ents = DRIVER.js("return [...document.querySelectorAll('#audit-list td[data-label=Entity]')].map(t => t.innerText.split(' ')[0]);")
    check(ents and set(ents) == {"organization"}, "entity filter gave %r" % ents)
    DRIVER.type("#audit-filters input[name=since]", "yesterday")
    DRIVER.click("#audit-filters button[type=submit]")
    DRIVER.wait_text("#audit-list .error", "since")
    # a tampered chain is shown as broken
    sql("SET session_replication_role = replica; UPDATE saas.audit_log SET changes = '{\"x\":1}'"
        " WHERE org_id = '%s' AND seq = 2" % F["org"])
    goto("users")
    DRIVER.find("#user-list")
    goto("audit")
    t = DRIVER.wait_text("#audit-verify", "Hash chain")
    check("BROKEN at entry 2" in t, "tampering not shown: %r" % t)


@bcase
def integrations_view_draws_the_chart_from_the_workers_calls():
    # the tenant's creation and its users made jobs for every service; wait for the worker's calls
    def calls():
        s, _, d = api("GET", "/integrations/calls?minutes=10", F["admin"])
        return s == 200 and sum(p["calls"] for p in d["services"]["userService"]) > 0 and d
    wait_for(calls, timeout=60, interval=0.5, what="the worker's calls to the user service")
    goto("integrations")
    DRIVER.find("#svc-userService svg.chart")
    n = DRIVER.js("return +document.querySelector('#svc-userService svg.chart').dataset.calls;")
    bars = DRIVER.js("return document.querySelectorAll('#svc-userService svg.chart rect.bar').length;")
    pts = DRIVER.js("return +document.querySelector('#svc-userService svg.chart').dataset.points;")
    check(n > 0 and bars > 0, "chart shows %r calls in %r bars" % (n, bars))
    check(pts == 60, "%r points for the hour" % pts)
    _, _, d = api("GET", "/integrations/calls", F["admin"])
    api_calls = sum(p["calls"] for p in d["services"]["userService"])
    check(n <= api_calls, "chart %d calls, API %d" % (n, api_calls))
    t = DRIVER.text("#svc-userService")
    check("Circuit" in t and "closed" in t and "Queued" in t, "status facts %r" % t)
    check(DRIVER.js("return !!document.querySelector('#svc-userService svg.chart polyline, #svc-userService svg.chart circle.lat-dot');"),
          "no latency drawn")


def dead_user_job():
    """A user whose push the user service refuses (400): a dead job at once."""
    st, _ = http_json("POST", "http://127.0.0.1:%d/_sim/faults/user-service" % SIM["control"],
                      {"error_rate": 1, "status": 400})
    check(st == 200, "sim faults %d" % st)
    mail = "doomed-%s@browser.test" % uuid.uuid4().hex[:6]
    s, _, d = api("POST", "/users", F["admin"], {"email": mail, "first_name": "Doomed", "last_name": "Job", "role": "user"})
    check(s == 201, "user %d %r" % (s, d))
    job = wait_for(lambda: sql("SELECT id FROM saas.jobs WHERE kind = 'user.push' AND state = 'dead'"
                               " AND payload::text LIKE '%%%s%%'" % mail),
                   timeout=60, interval=0.3, what="the dead job")
    http_json("DELETE", "http://127.0.0.1:%d/_sim/faults/all" % SIM["control"])
    return job


@bcase
def a_dead_job_is_retried_from_the_page_one_and_in_bulk():
    job = dead_user_job()
    goto("jobs")
    DRIVER.find("#job-list table")
    DRIVER.choose("#job-filters select[name=state]", "dead")
    DRIVER.click("#job-filters button[type=submit]")
    DRIVER.click("button.job-retry[data-id='%s']" % job, timeout=15)
    DRIVER.wait_text("#jobs-msg", "made due again")
    wait_for(lambda: sql("SELECT state FROM saas.jobs WHERE id = '%s'" % job) == "succeeded", timeout=60,
             interval=0.3, what="the retried job to succeed")
    # retrying it again is the API's 409, shown
    s, _, d = api("POST", "/jobs/%s/retry" % job, F["admin"], {})
    check(s == 409, "second retry %d" % s)
    # two more dead ones: the bulk retry takes both
    more = [dead_user_job(), dead_user_job()]
    goto("webhooks")
    DRIVER.find("#webhook-list")
    goto("jobs")
    DRIVER.find("#job-list table")
    DRIVER.click("#job-retry-bulk")
    DRIVER.wait_text("#jobs-msg", "2 job(s) made due again")
    wait_for(lambda: sql("SELECT count(*) FROM saas.jobs WHERE id IN ('%s') AND state = 'succeeded'"
                         % "','".join(more)) == "2", timeout=60, interval=0.3, what="the bulk-retried jobs")


@bcase
def webhooks_received_are_listed():
    ref = "browser-ref-" + RUN
    _, _, d = api("POST", "/auth/login", body={"email": ROOT_EMAIL, "password": ROOT_PASSWORD})
    s, _, d = api("PUT", "/organizations/" + F["org"], d["token"], {"external_ids": {"user_service": ref}})
    check(s == 200, "external id %d %r" % (s, d))
    secret = sql("SELECT webhook_secret FROM saas.integrations WHERE service = 'user-service'")
    key = base64.b64decode(secret.split("_", 1)[1])
    body = json.dumps({"event_id": "evt-browser-" + RUN, "event_type": "user.updated",
                       "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                       "organization_id": ref,
                       "data": {"user_id": "nobody-" + RUN, "email": "nobody@browser.test"}})
    mid, ts = "msg_" + RUN, str(int(time.time()))
    sig = base64.b64encode(hmac.new(key, ("%s.%s.%s" % (mid, ts, body)).encode(), hashlib.sha256).digest()).decode()
    s, _, d = R.json("POST", "/webhooks/user-service", {"webhook-id": mid, "webhook-timestamp": ts,
                                                       "webhook-signature": "v1," + sig}, body)
    check(s == 202 and d["accepted"] == 1, "webhook %d %r" % (s, d))
    goto("webhooks")
    DRIVER.wait_text("#webhook-list", "evt-browser-" + RUN)
    DRIVER.choose("#webhook-filters select[name=service]", "payment-service")
    DRIVER.click("#webhook-filters button[type=submit]")
    t = DRIVER.wait_text("#webhook-list", "page 1")
    check("evt-browser-" not in t, "the service filter kept %r" % t)


@bcase
def the_dashboard_fits_360_px_and_loads_nothing_from_elsewhere():
    DRIVER.size(360, 740)
    for view in ("users", "audit", "integrations", "jobs", "webhooks", "org"):
        goto(view)
        DRIVER.find("#view h1")
        time.sleep(0.3)
        w = DRIVER.js("return [document.documentElement.scrollWidth, window.innerWidth];")
        check(w[0] <= w[1] + 1, "%s: page %dpx wide in a %dpx window" % (view, w[0], w[1]))
        check(DRIVER.js("const r = document.querySelector('#nav-users').getBoundingClientRect(); return r.width > 0 && r.height > 0;"),
              "%s: navigation hidden" % view)
        check(not outside_requests(), "%s: requests elsewhere %r" % (view, outside_requests()))
    DRIVER.size(1280, 900)
    check(not page_problems(), "browser log: %r" % page_problems()[:3])


@bcase
def the_api_page_renders_openapi_json_at_both_widths():
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "openapi.json")) as f:
        spec = json.load(f)
    n_ops = sum(1 for item in spec["paths"].values() for m in item
                if m in ("get", "post", "put", "patch", "delete", "head", "options"))
    for width in (1280, 360):
        DRIVER.size(width, 900)
        DRIVER.get("/docs")
        DRIVER.wait_text("#doc h1", spec["info"]["title"])
        got = DRIVER.js("return document.querySelectorAll('#doc section.op').length;")
        check(got == n_ops, "%d operations rendered, the document has %d" % (got, n_ops))
        check(DRIVER.js("return !!document.getElementById('op-integrationCalls');"), "new route missing")
        check(DRIVER.js("return document.querySelectorAll('#doc section.schema').length;") == len(spec["components"]["schemas"]),
              "schemas missing")
        w = DRIVER.js("return [document.documentElement.scrollWidth, window.innerWidth];")
        check(w[0] <= w[1] + 1, "%dpx: page %dpx wide" % (width, w[0]))
        check(not outside_requests(), "requests elsewhere %r" % outside_requests())
    DRIVER.size(1280, 900)
    check(not page_problems(), "browser log: %r" % page_problems()[:3])


@bcase
def a_session_that_ends_returns_to_the_sign_in_page():
    sign_in("boss-%s@browser.test" % RUN, PASSWORD)
    goto("users")
    DRIVER.find("#user-list table")
    s, _, _ = api("POST", "/auth/logout-all", F["admin"])
    check(s == 204, "logout-all %d" % s)
    time.sleep(5.5)       # tokens follow the facts within 5 seconds on every backend
    DRIVER.js("location.hash = '#/jobs';")
    DRIVER.wait_text("#login-form", "Your session ended")     # the API's 401 ended the page's session
    sign_in("boss-%s@browser.test" % RUN, PASSWORD)
    DRIVER.js("location.reload();")  # the token lived in memory only: a reload forgets it
    DRIVER.find("#login-form")
    check(DRIVER.js("return localStorage.length + sessionStorage.length;") == 0, "something stored")
    check(DRIVER.js("return document.cookie;") == "", "a cookie was set")


# ---------------------------------------------------------------------------------------------
# single sign-on from the sign-in page: test/browser/browser_sso.py (its cases run here, last)

import browser_sso  # noqa: E402,F401


# ---------------------------------------------------------------------------------------------

def main():
    passed, failed, skipped, todo = run_cases(CASES)
    try:
        if DRIVER is not None:
            DRIVER.quit()
    finally:
        for p in reversed(CHILDREN):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
    for name, excerpt in sanitizer_reports(ALL_RELAYS):
        failed += 1
        print("not ok - sanitizer report in %s:\n%s" % (name, excerpt))
    print("passed=%d failed=%d" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
