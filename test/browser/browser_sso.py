"""Single sign-on from the dashboard's sign-in page, in the browser (docs/dashboard.md, "Signing in
with SSO"). Loaded by test_browser.py, which runs these cases last: the relay, saas-sim (with its
identity provider on a free port, --oidc-port 0) and the WebDriver client are test_browser's,
reached as B (the __main__ module).

An organization gets an OIDC connection to the simulated provider whose redirect_uri is the
dashboard (/admin/); the provider's client is registered with that address. The page's own
button then runs the whole flow: /auth/sso/{slug}/start?format=json (fetch: 200 with the provider's
address and the sign-in cookie), a navigation to the provider's /authorize (302
back to /admin/?code&state), the page's fetch of /auth/sso/callback.
"""

import http.client
import urllib.parse

import __main__ as B
from saas_test import case, check

SSO = {}            # slug, org, admin token, domain, client, ...
PENDING = "saas.sso.pending"


def sim_control(method, path, body=None):
    return B.http_json(method, "http://127.0.0.1:%d%s" % (B.SIM["control"], path), body)


def idp_fault(kind):
    st, doc = sim_control("POST", "/_sim/oidc/faults", {"id_token": kind})
    check(st == 200, "the simulator refused the fault %s: %d %r" % (kind, st, doc))


def idp_mode(mode):
    st, doc = sim_control("POST", "/_sim/faults/identity-provider", {"mode": mode})
    check(st == 200, "the simulator refused mode %s: %d %r" % (mode, st, doc))


def connection(**over):
    body = {"issuer": SSO["issuer"], "client_id": SSO["client"], "redirect_uri": SSO["redirect"],
            "allowed_domains": [SSO["domain"]], "default_role": "admin"}
    body.update(over)
    return body


def provider_answer(hint=None):
    """The sign-in played outside the browser up to the provider's redirect: the dashboard
    address it sends the browser to (/admin/?code=...&state=...)."""
    path = "/auth/sso/%s/start" % SSO["slug"]
    if hint:
        path += "?" + urllib.parse.urlencode({"login_hint": hint})
    st, h, doc = B.api("GET", path)
    check(st == 302 and h.get("location"), "start %d %r" % (st, doc))
    cookie = {k.lower(): v for k, v in h.items()}.get("set-cookie", "")
    check(cookie.startswith("__Host-saas_sso="), "start set no sign-in cookie: %r" % cookie)
    u = urllib.parse.urlparse(h["location"])
    check(u.port == B.SIM["idp"], "start redirects elsewhere: %s" % h["location"])
    c = http.client.HTTPConnection("127.0.0.1", u.port, timeout=10)
    c.request("GET", u.path + "?" + u.query)
    r = c.getresponse()
    r.read()
    back = r.getheader("Location")
    c.close()
    check(r.status == 302 and back and back.startswith(SSO["redirect"] + "?"),
          "the provider answered %d %r" % (r.status, back))
    target = back[len("http://127.0.0.1:%d" % B.R.port):]
    # The browser that started this sign-in holds this cookie (the start route's Set-Cookie).
    COOKIES[target] = cookie.split(";", 1)[0][len("__Host-saas_sso="):]
    return target


COOKIES = {}    # provider answer (dashboard address) -> the sign-in cookie of the start that made it


def fresh_sign_in_page():
    """The sign-in page, signed out (a load forgets the in-memory token), nothing pending."""
    B.DRIVER.get("/admin/")
    B.DRIVER.find("#sso-form")
    B.DRIVER.js("sessionStorage.clear();")


def mark_started(target=None):
    """What the page's button leaves before it navigates away (for answers made outside the browser):
    the tab's mark and, for the provider answer target, the start route's cookie in the browser."""
    B.DRIVER.js("sessionStorage.setItem(arguments[0], JSON.stringify({at: Date.now()}));", PENDING)
    if target is not None:
        B.DRIVER.cmd("POST", "/cookie", {"cookie": {"name": "__Host-saas_sso", "value": COOKIES[target], "path": "/",
                                                    "httpOnly": True, "secure": True, "sameSite": "Lax"}})


def sso_click(slug, hint=""):
    B.DRIVER.type("#sso-form input[name=slug]", slug)
    B.DRIVER.type("#sso-form input[name=login_hint]", hint)
    B.DRIVER.click("#sso-submit")


def address_bar_clean():
    href = B.DRIVER.js("return location.href;")
    check("code=" not in href and "state=" not in href and "error=" not in href and "?" not in href,
          "the address bar still has the provider's answer: %s" % href)
    back = B.DRIVER.js("return history.length;")
    return href, back


def users_of_org():
    return B.sql("SELECT count(*) FROM saas.users WHERE org_id = '%s'" % SSO["org"])


@case
def sso_organization_with_the_dashboard_as_redirect_uri():
    SSO["slug"] = "sso-ui-" + B.RUN
    SSO["domain"] = "sso-ui-%s.test" % B.RUN
    SSO["client"] = "dashboard-" + B.RUN
    SSO["secret"] = "dashboard-secret-%s-xyzzy" % B.RUN
    SSO["issuer"] = "http://127.0.0.1:%d" % B.SIM["idp"]
    SSO["redirect"] = "http://127.0.0.1:%d/admin/" % B.R.port
    SSO["admin_email"] = "owner@%s" % SSO["domain"]
    st, _, doc = B.api("POST", "/auth/register", body={
        "organization": {"name": "SSO UI " + B.RUN, "slug": SSO["slug"]}, "email": SSO["admin_email"],
        "password": B.PASSWORD, "first_name": "Owner", "last_name": "Admin"})
    check(st == 201, "register %d %r" % (st, doc))
    SSO["admin"], SSO["org"] = doc["token"], doc["organization"]["id"]
    st, doc = sim_control("POST", "/_sim/oidc/clients", {"client_id": SSO["client"], "client_secret": SSO["secret"],
                                                         "redirect_uris": [SSO["redirect"]]})
    check(st in (200, 201), "client %d %r" % (st, doc))
    for sub, mail, default in (("ivy-" + B.RUN, "ivy@" + SSO["domain"], True),
                               ("mallory-" + B.RUN, "mallory@elsewhere-%s.test" % B.RUN, False)):
        st, doc = sim_control("POST", "/_sim/oidc/users", {"sub": sub, "email": mail, "given_name": sub.split("-")[0].title(),
                                                           "family_name": "Provider", "email_verified": True,
                                                           "default": default})
        check(st in (200, 201), "provider user %s: %d %r" % (mail, st, doc))
    c = dict(connection(), client_secret=SSO["secret"])
    st, _, doc = B.api("PUT", "/sso/connection", SSO["admin"], c)
    check(st == 201 and doc["redirect_uri"] == SSO["redirect"], "connection %d %r" % (st, doc))


@B.bcase
def sso_button_signs_in_as_the_providers_user_with_a_clean_address_bar():
    before = users_of_org()
    # the sign-in page with both forms fits 360 px
    B.DRIVER.size(360, 740)
    fresh_sign_in_page()
    w = B.DRIVER.js("return [document.documentElement.scrollWidth, window.innerWidth];")
    check(w[0] <= w[1] + 1, "sign-in page %dpx wide in a %dpx window" % (w[0], w[1]))
    B.DRIVER.size(1280, 900)
    sso_click(SSO["slug"])
    B.DRIVER.find("#sign-out", timeout=20)
    who = B.DRIVER.text("#who")
    check("ivy@" + SSO["domain"] in who and "admin" in who, "signed in as %r" % who)
    href, _ = address_bar_clean()
    check(href.endswith("/admin/#/users"), "landed on %s" % href)
    check(B.DRIVER.js("return sessionStorage.length + localStorage.length;") == 0, "something left in storage")
    check(B.DRIVER.js("return document.cookie;") == "", "a cookie was set")
    # just in time: the provider's user is new in the organization, with the connection's role, linked
    row = B.sql("SELECT u.role || ' ' || u.first_name || ' ' || (SELECT count(*) FROM saas._sso_identities i"
                " WHERE i.org_id = u.org_id AND i.user_id = u.id) FROM saas.users u"
                " WHERE u.org_id = '%s' AND u.email = 'ivy@%s'" % (SSO["org"], SSO["domain"]))
    check(row == "admin Ivy 1", "the provisioned user %r" % row)
    check(int(users_of_org()) == int(before) + 1, "users %s -> %s" % (before, users_of_org()))
    # the token works: the users view lists the organization's users
    B.DRIVER.wait_text("#user-list", "ivy@" + SSO["domain"])
    # the whole way ran under the page's CSP and fetched nothing from elsewhere (the provider was
    # a navigation of the tab, not a request of the page)
    check(not B.outside_requests(), "requests elsewhere: %r" % B.outside_requests())
    check(not B.page_problems(), "browser log: %r" % B.page_problems()[:3])
    # a reload forgets the session (memory only) and does not replay the used-up answer
    B.DRIVER.js("location.reload();")
    B.DRIVER.find("#sso-form")
    check(not B.DRIVER.js("return !!document.querySelector('#sso-error .error');"), "an error after reload")


@B.bcase
def sso_spoiled_id_token_shows_the_apis_error_and_signs_nobody_in():
    before = users_of_org()
    fresh_sign_in_page()
    try:
        idp_fault("bad_signature")
        sso_click(SSO["slug"], "mallory@elsewhere-%s.test" % B.RUN)
        t = B.DRIVER.wait_text("#sso-error .error", "signature", timeout=20)
    finally:
        idp_fault("none")
    check("401" in t and "unauthorized" in t and "request id" in t, "error box %r" % t)
    check(not B.DRIVER.js("return !!document.getElementById('sign-out');"), "signed in anyway")
    address_bar_clean()
    check(users_of_org() == before, "a refused sign-in created a user")


@B.bcase
def sso_refusals_are_shown_from_the_apis_error_body():
    # a provider account whose domain the connection does not allow: 403
    fresh_sign_in_page()
    sso_click(SSO["slug"], "mallory@elsewhere-%s.test" % B.RUN)
    t = B.DRIVER.wait_text("#sso-error .error", "domain", timeout=20)
    check("403" in t and "forbidden" in t, "domain refusal %r" % t)
    address_bar_clean()
    # the provider's own error (the user declined): 401
    target = provider_answer()
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(target).query))
    fresh_sign_in_page()
    mark_started()
    B.DRIVER.get("/admin/?" + urllib.parse.urlencode({"error": "access_denied", "state": q["state"]}))
    t = B.DRIVER.wait_text("#sso-error .error", "access_denied")
    check("401" in t, "provider error %r" % t)
    address_bar_clean()
    # an expired sign-in state: 400 naming the field
    target = provider_answer()
    state = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(target).query))["state"]
    B.sql("UPDATE saas._sso_requests SET expires_at = now() - interval '1 second'"
          " WHERE state_hash = sha256(convert_to('%s.%s', 'UTF8'))" % (state, COOKIES[target]))
    fresh_sign_in_page()
    mark_started(target)
    B.DRIVER.get(target)
    t = B.DRIVER.wait_text("#sso-error .error", "validation_failed")
    check("400" in t and "state" in t, "expired state %r" % t)
    address_bar_clean()
    # the provider down when the page hands over the code: 503
    target = provider_answer()
    fresh_sign_in_page()
    mark_started(target)
    try:
        idp_mode("down")
        B.DRIVER.get(target)
        t = B.DRIVER.wait_text("#sso-error .error", "service_unavailable", timeout=20)
    finally:
        idp_mode("ok")
    check("503" in t, "provider down %r" % t)
    address_bar_clean()
    check(not B.DRIVER.js("return !!document.getElementById('sign-out');"), "signed in anyway")
    # a malformed slug is refused by the page before it navigates (nothing left pending)
    fresh_sign_in_page()
    sso_click("Not A Slug!")
    t = B.DRIVER.wait_text("#sso-error .error", "slug")
    check(B.DRIVER.js("return location.pathname;") == "/admin/", "navigated with a bad slug")
    check(B.DRIVER.js("return sessionStorage.length;") == 0, "a bad slug left a mark")


@B.bcase
def sso_start_errors_are_shown_in_the_page():
    """The button asks GET /auth/sso/{slug}/start?format=json with fetch before it leaves: when the
    sign-in cannot start, the API's error shows in the page (before, the tab navigated to the
    start route and showed its raw JSON), nothing is left pending and the tab stays."""
    fresh_sign_in_page()
    sso_click("no-such-org-" + B.RUN)
    t = B.DRIVER.wait_text("#sso-error .error", "not_found", timeout=20)
    check("404" in t, "unknown slug %r" % t)
    check(B.DRIVER.js("return location.pathname + location.search;") == "/admin/", "the tab navigated")
    check(B.DRIVER.js("return sessionStorage.length;") == 0, "a failed start left a mark")
    # a suspended organization: 403, in the page (the provider's discovery document is cached by
    # now, so "provider down" cannot be made at the start here; cases_sso_loose_ends.py has 503)
    fresh_sign_in_page()
    B.sql("UPDATE saas.organizations SET status = 'suspended' WHERE id = '%s'" % SSO["org"])
    try:
        sso_click(SSO["slug"])
        t = B.DRIVER.wait_text("#sso-error .error", "forbidden", timeout=20)
    finally:
        B.sql("UPDATE saas.organizations SET status = 'active' WHERE id = '%s'" % SSO["org"])
    check("403" in t, "suspended organization %r" % t)
    check(B.DRIVER.js("return location.pathname + location.search;") == "/admin/", "the tab navigated")
    check(B.DRIVER.js("return sessionStorage.length;") == 0, "a failed start left a mark")
    check(not B.DRIVER.js("return !!document.getElementById('sign-out');"), "signed in anyway")
    check(not B.outside_requests(), "requests elsewhere: %r" % B.outside_requests())


@B.bcase
def sso_answer_not_started_from_this_tab_is_not_used():
    """Login CSRF: a link carrying someone else's code and state signs nobody in, and the page does
    not even use up the state (it never calls the API)."""
    target = provider_answer()
    fresh_sign_in_page()
    B.DRIVER.get(target)
    t = B.DRIVER.wait_text("#sso-error .error", "not asked for from this page")
    check(not B.DRIVER.js("return !!document.getElementById('sign-out');"), "signed in by a stranger's link")
    address_bar_clean()
    # a mark older than the state's 10 minutes is no better
    target2 = provider_answer()
    fresh_sign_in_page()
    B.DRIVER.js("sessionStorage.setItem(arguments[0], JSON.stringify({at: Date.now() - 11 * 60 * 1000}));", PENDING)
    B.DRIVER.get(target2)
    B.DRIVER.wait_text("#sso-error .error", "not asked for from this page")
    # the callbacks were never made: both answers still sign in over plain HTTP
    for tgt in (target, target2):
        q = urllib.parse.urlparse(tgt).query
        st, _, doc = B.api("GET", "/auth/sso/callback?" + q, headers={"Cookie": "__Host-saas_sso=" + COOKIES[tgt]})
        check(st == 200 and doc["user"]["email"] == "ivy@" + SSO["domain"], "callback %d %r" % (st, doc))


@B.bcase
def password_form_beside_sso_and_an_sso_only_organization_refuses_it():
    # an organization that allows passwords: the password form signs its admin in
    fresh_sign_in_page()
    B.DRIVER.type("#login-form input[name=email]", SSO["admin_email"])
    B.DRIVER.type("#login-form input[name=password]", B.PASSWORD)
    B.DRIVER.click("#login-submit")
    B.DRIVER.find("#sign-out")
    check(SSO["admin_email"] in B.DRIVER.text("#who"), "who %r" % B.DRIVER.text("#who"))
    B.sign_out()
    st, _, doc = B.api("PUT", "/sso/connection", SSO["admin"], connection(password_login_allowed=False))
    check(st == 200 and doc["password_login_allowed"] is False, "connection %d %r" % (st, doc))
    try:
        B.DRIVER.type("#login-form input[name=email]", SSO["admin_email"])
        B.DRIVER.type("#login-form input[name=password]", B.PASSWORD)
        B.DRIVER.click("#login-submit")
        t = B.DRIVER.wait_text("#login-error .error", "single sign-on")
        check("403" in t and "forbidden" in t, "error box %r" % t)
        check(not B.DRIVER.js("return !!document.getElementById('sign-out');"), "signed in with a password")
        # SSO still signs the organization in, from the same page
        sso_click(SSO["slug"])
        B.DRIVER.find("#sign-out", timeout=20)
        check("ivy@" + SSO["domain"] in B.DRIVER.text("#who"), "who %r" % B.DRIVER.text("#who"))
        B.sign_out()
    finally:
        st, _, doc = B.api("PUT", "/sso/connection", SSO["admin"], connection())
        check(st == 200, "connection back %d %r" % (st, doc))


@B.bcase
def sso_user_who_is_not_an_admin_is_told_and_signed_out():
    st, _, doc = B.api("PUT", "/sso/connection", SSO["admin"], connection(default_role="user"))
    check(st == 200, "connection %d %r" % (st, doc))
    mail = "ursula-%s@%s" % (B.RUN, SSO["domain"])
    st, doc = sim_control("POST", "/_sim/oidc/users", {"sub": "ursula-" + B.RUN, "email": mail, "given_name": "Ursula",
                                                       "family_name": "User", "email_verified": True})
    check(st in (200, 201), "provider user %d %r" % (st, doc))
    fresh_sign_in_page()
    sso_click(SSO["slug"], mail)
    t = B.DRIVER.wait_text("#sso-error .error", "for admins", timeout=20)
    check("this account is a user" in t, "error %r" % t)
    check(not B.DRIVER.js("return !!document.getElementById('sign-out');"), "a user got in")
    check(B.sql("SELECT role FROM saas.users WHERE org_id = '%s' AND email = '%s'" % (SSO["org"], mail)) == "user",
          "not provisioned as a user")
