"""saas-http's pages (/admin/, /docs; shim/static.c) from a folder this file builds: the files,
their types and headers, 304s, and every way out of the folder refused with the relay's 404.
Imported by test_relay.py; the relays started here are stopped and their sanitizer logs read by
its last cases."""

import gzip
import os
import shutil

from harness import WORK
from saas_test import Relay, case, check, error_body_ok

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; manifest-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
STATIC = {}


def site():
    """The folder (web/ as the relay sees it) and a relay serving it."""
    if "relay" in STATIC:
        return STATIC["relay"]
    root = os.path.join(WORK, "static-site")
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(os.path.join(root, "web", "admin", "sub"))
    os.makedirs(os.path.join(root, "web", "docs"))
    os.makedirs(os.path.join(root, "web", "admin", "dir.js"))
    files = {
        "web/admin/index.html": "<!doctype html><title>admin</title>",
        "web/admin/app.js": "export const x = 1;\n" + "// padding\n" * 400,
        "web/admin/app.css": "body{}",
        "web/admin/sub/deep.svg": "<svg xmlns='http://www.w3.org/2000/svg'/>",
        "web/admin/.hidden.js": "secret",
        "web/admin/notes.exe": "MZ",
        "web/admin/README": "no extension",
        "web/docs/index.html": "<!doctype html><title>docs</title>",
        "web/secret.txt": "outside the sections",
        "outside.js": "outside the folder",
    }
    for rel, text in files.items():
        with open(os.path.join(root, rel), "w") as f:
            f.write(text)
    with open(os.path.join(root, "web", "admin", "huge.js"), "wb") as f:
        f.truncate(5 * 1024 * 1024)
    os.symlink(os.path.join(root, "outside.js"), os.path.join(root, "web", "admin", "out.js"))
    os.symlink("/etc/passwd", os.path.join(root, "web", "admin", "passwd.txt"))
    os.symlink(os.path.join(root, "web", "admin", "app.js"), os.path.join(root, "web", "admin", "alias.js"))
    os.symlink(os.path.join(root, "web", "admin", "sub"), os.path.join(root, "web", "docs", "sublink"))
    os.symlink("/etc", os.path.join(root, "web", "docs", "etc"))
    STATIC["root"] = root
    STATIC["relay"] = Relay("--static-dir", os.path.join(root, "web"))
    return STATIC["relay"]


def refused(r, target, why):
    status, h, body = r.request("GET", target)
    check(status == 404, "%s (%s): %d %r" % (target, why, status, body[:120]))
    import json
    check(error_body_ok(json.loads(body), "not_found"), "%s: not the error body: %r" % (target, body[:200]))
    check(b"outside" not in body and b"root:" not in body and b"secret" not in body, "%s leaked %r" % (target, body))


@case
def static_pages_are_served_with_their_types_and_security_headers():
    r = site()
    for path, ctype, text in (("/admin/", "text/html; charset=utf-8", b"<title>admin"),
                              ("/admin/index.html", "text/html; charset=utf-8", b"<title>admin"),
                              ("/admin/app.css", "text/css; charset=utf-8", b"body{}"),
                              ("/admin/sub/deep.svg", "image/svg+xml", b"<svg"),
                              ("/admin/alias.js", "text/javascript; charset=utf-8", b"export const x"),
                              ("/admin/app.js?v=2", "text/javascript; charset=utf-8", b"export const x"),
                              ("/docs", "text/html; charset=utf-8", b"<title>docs"),
                              ("/docs/", "text/html; charset=utf-8", b"<title>docs"),
                              ("/docs/sublink/deep.svg", "image/svg+xml", b"<svg")):
        status, h, body = r.request("GET", path)
        check(status == 200, "%s: %d" % (path, status))
        check(h.get("content-type") == ctype, "%s: %r" % (path, h.get("content-type")))
        check(text in body, "%s: body %r" % (path, body[:60]))
        check(h.get("content-security-policy") == CSP, "%s: CSP %r" % (path, h.get("content-security-policy")))
        check(h.get("x-content-type-options") == "nosniff" and h.get("referrer-policy") == "no-referrer"
              and h.get("x-frame-options") == "DENY", "%s: headers %r" % (path, h))
        check(h.get("cache-control") == "no-cache" and h.get("etag", "").startswith('"'), "%s: caching %r" % (path, h))
        check(h.get("x-request-id"), "%s: no X-Request-Id" % path)
    status, h, body = r.request("GET", "/admin")
    check(status == 308 and h.get("location") == "/admin/" and body == b"", "/admin: %d %r" % (status, h))


@case
def static_pages_revalidate_with_304_and_answer_head_and_gzip():
    r = site()
    _, h, body = r.request("GET", "/admin/app.js")
    etag = h["etag"]
    status, h2, body2 = r.request("GET", "/admin/app.js", {"If-None-Match": etag})
    check(status == 304 and body2 == b"" and h2.get("etag") == etag, "revalidation: %d %r" % (status, h2))
    status, _, _ = r.request("GET", "/admin/app.js", {"If-None-Match": '"other"'})
    check(status == 200, "another ETag: %d" % status)
    status, h3, body3 = r.request("HEAD", "/admin/app.js")
    check(status == 200 and body3 == b"" and h3.get("etag") == etag, "HEAD: %d %r" % (status, body3[:40]))
    status, h4, body4 = r.request("GET", "/admin/app.js", {"Accept-Encoding": "gzip"})
    check(status == 200 and h4.get("content-encoding") == "gzip" and gzip.decompress(body4) == body,
          "gzip: %d %r" % (status, h4.get("content-encoding")))
    for m in ("POST", "PUT", "DELETE", "PATCH"):
        status, h5, body5 = r.request(m, "/admin/app.js", {"Content-Type": "application/json"}, "{}")
        check(status == 405 and h5.get("allow") == "GET, HEAD", "%s: %d %r" % (m, status, h5.get("allow")))


@case
def static_paths_that_leave_the_folder_or_are_not_plain_are_404():
    r = site()
    for target, why in (("/admin/../secret.txt", "dot-dot"),
                        ("/admin/%2e%2e/secret.txt", "encoded dot-dot"),
                        ("/admin/..%2fsecret.txt", "encoded slash"),
                        ("/admin/%2E%2E%2Fsecret.txt", "all encoded"),
                        ("/admin/sub/../app.js", "dot-dot inside"),
                        ("/docs/../admin/app.js", "across sections"),
                        ("/admin/..\\secret.txt", "backslash"),
                        ("/admin//app.js", "empty segment"),
                        ("/admin/./app.js", "dot segment"),
                        ("/admin/.hidden.js", "hidden file"),
                        ("/admin/app.js/", "trailing slash"),
                        ("/admin/notes.exe", "unknown extension"),
                        ("/admin/README", "no extension"),
                        ("/admin/out.js", "link out of the folder"),
                        ("/admin/passwd.txt", "link to /etc/passwd"),
                        ("/docs/etc/passwd.txt", "linked folder out"),
                        ("/docs/etc/hostname.txt", "linked folder out"),
                        ("/admin/dir.js", "a folder"),
                        ("/admin/huge.js", "over the size cap"),
                        ("/admin/missing.js", "absent"),
                        ("/admin/app.js%00.html", "NUL"),
                        ("/admin/%61pp.js", "encoded letter"),
                        ("/admin/" + "a" * 300 + ".js", "long name"),
                        ("/admin/ap p.js", "space")):
        if " " in target:
            status, _, _ = r.request("GET", target.replace(" ", "%20"))
            check(status == 404, "%s: %d" % (target, status))
            continue
        refused(r, target, why)
    check(r.alive(), "the relay died")


@case
def paths_that_only_begin_like_the_pages_still_reach_the_api():
    r = site()
    for path in ("/adminx", "/docsy", "/administrator/app.js"):
        status, h, _ = r.request("GET", path)
        check("content-security-policy" not in h, "%s answered as a page: %d" % (path, status))


@case
def without_its_folder_the_relay_answers_the_pages_404_and_says_why():
    r = Relay("--static-dir", os.path.join(WORK, "no-such-folder"))
    try:
        status, _, body = r.request("GET", "/admin/")
        check(status == 404, "/admin/ without a folder: %d" % status)
        check(any("static folder not found" in l for l in r.log().splitlines()), "no warning logged")
        status, _, _ = r.request("GET", "/healthz")
        check(status == 200, "the API stopped: %d" % status)
    finally:
        check(r.stop() == 0, "exit code")


@case
def help_names_the_static_dir_flag():
    import subprocess
    from harness import BIN
    out = subprocess.run([BIN, "--help"], capture_output=True, text=True, timeout=10).stdout
    check("--static-dir DIR" in out and "SAAS_HTTP_STATIC_DIR" in out, "help: %r" % out[-600:])


@case
def static_relay_stops_cleanly():
    check(site().stop() == 0, "exit code")
