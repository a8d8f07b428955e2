#!/usr/bin/env python3
"""make run over real processes and sockets, as a developer meets it (docs/testing.md).

Run by test/suites/65_run.sh. Every run uses the folder $RUN_WORK/dir (its cluster is made once)
and ports picked now; the output is read through a pipe, as with "make run | tee log". Each case
prints "ok - name" or "not ok - name: why"; the last line is "passed=N failed=M".
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from saas_test import CASES, case, check, eq, free_port, run_cases, wait_for

ROOT = os.environ["PROJECT_ROOT"]
RUN_DIR = os.path.join(os.environ["RUN_WORK"], "dir")
BANNER_END = "Ctrl-C stops everything."


def sim_base():
    """A port with the four after it free too: the simulator's control and services (+4: the OIDC provider)."""
    while True:
        base = free_port()
        if base > 65000:
            continue
        socks = []
        try:
            for p in range(base, base + 5):
                s = socket.socket()
                s.bind(("127.0.0.1", p))
                socks.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()


def port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


class Run:
    """One make run (or scripts/run.sh) in its own process group, stdout through a pipe."""

    count = 0

    def __init__(self, make=False, env=None):
        self.pg, self.http, self.sim = free_port(), free_port(), sim_base()
        e = dict(os.environ)
        for k in ("PGHOST", "PGPORT", "PGDATABASE"):
            e.pop(k, None)
        e.update({"SAAS_RUN_DIR": RUN_DIR, "SAAS_PGPORT": str(self.pg),
                  "SAAS_HTTP_PORT": str(self.http), "SAAS_SIM_PORT": str(self.sim)})
        e.update(env or {})
        cmd = ["make", "--no-print-directory", "-C", ROOT, "run"] if make else ["bash", os.path.join(ROOT, "scripts/run.sh")]
        Run.count += 1
        self.err_path = os.path.join(os.environ["RUN_WORK"], "run-%d.err" % Run.count)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=open(self.err_path, "wb"),
                                     env=e, start_new_session=True)
        self.out = ""

    def read_until(self, marker, timeout=240):
        """Output up to a line holding marker; "" if the program ended first."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                return ""
            self.out += line.decode("utf-8", "replace")
            if marker in self.out:
                return self.out
        return ""

    def err(self):
        with open(self.err_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def interrupt_piped(self, timeout=90):
        """Ctrl-C as a terminal sends it (the whole group) after the reader of the pipe left."""
        self.proc.stdout.close()
        os.killpg(self.proc.pid, signal.SIGINT)
        return self.proc.wait(timeout)

    def finish(self, timeout=90):
        """The exit code of a run that ends by itself."""
        rc = self.proc.wait(timeout)
        self.out += self.proc.stdout.read().decode("utf-8", "replace")
        return rc

    def all_stopped(self):
        return not any(port_open(p) for p in (self.pg, self.http, self.sim, self.sim + 1)) and \
            not os.path.exists(os.path.join(RUN_DIR, "data", "postmaster.pid"))

    def psql(self, sql=None, file=None):
        args = ["psql", "-X", "-v", "ON_ERROR_STOP=1", "-h", RUN_DIR, "-p", str(self.pg), "-U", "postgres", "saas"]
        args += ["-Atc", sql] if sql else ["-f", file]
        return subprocess.run(args, capture_output=True, text=True, timeout=60)


def block(text, start, end):
    """The lines of the banner between a line starting with start and one with end, unindented."""
    m = re.search("^" + re.escape(start) + ".*?\n(.*?)^" + re.escape(end), text, re.S | re.M)
    check(m, "no block %r in the output" % start)
    return "\n".join(l[2:] for l in m.group(1).splitlines()) + "\n"


STATE = {}


@case
def make_run_builds_quietly_and_the_integrations_follow_the_simulator_ports():
    r = Run(make=True)
    STATE["run"] = r
    out = r.read_until(BANNER_END)
    check(out, "no banner; output %r; stderr %s" % (r.out[-1500:], r.err()[-1500:]))
    check("pg_saas is running" in out, "banner")
    check(not re.search(r"^(gcc|cc|clang|/usr/bin/install) ", out, re.M), "compiler commands printed:\n" + out[:800])
    check(re.search(r"^run: building .*build\.log", out, re.M), "no build progress line")
    urls = dict(l.split("|") for l in r.psql("SELECT service, base_url FROM saas.integrations").stdout.split())
    for i, svc in enumerate(("user-service", "payment-service", "communication-service")):
        check(urls[svc].startswith("http://127.0.0.1:%d/" % (r.sim + 1 + i)), "%s: %s" % (svc, urls[svc]))
    with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % r.http, timeout=10) as resp:
        eq(resp.status, 200, "/healthz over the relay")
    with urllib.request.urlopen("http://127.0.0.1:%d/.well-known/openid-configuration" % (r.sim + 4),
                                timeout=10) as resp:
        eq(json.load(resp)["issuer"], "http://127.0.0.1:%d" % (r.sim + 4), "the OIDC provider on SAAS_SIM_PORT+4")


@case
def the_walk_through_and_the_http_tour_work_as_printed():
    r = STATE["run"]
    sql = block(r.out, "A walk through", "Over HTTP")
    path = os.path.join(os.environ["RUN_WORK"], "walk.sql")
    with open(path, "w") as f:
        f.write(sql)
    p = r.psql(file=path)
    eq(p.returncode, 0, "psql of the walk through: %s" % p.stderr)
    check('"status":' not in p.stdout or " 200 |" in p.stdout, "saas.http answer: %s" % p.stdout[-500:])
    check(re.search(r"^\s+200 \|", p.stdout, re.M), "GET /users from SQL not 200: %s" % p.stdout[-800:])
    shell = block(r.out, "Over HTTP", BANNER_END)
    p = subprocess.run(["bash", "-e", "-c", shell], capture_output=True, text=True, timeout=60)
    eq(p.returncode, 0, "the HTTP tour: %s" % p.stderr)
    check(re.search(r'"email":"hank\.\d+@globex\.test"', p.stdout), "GET /users with $TOKEN: %s" % p.stdout[-800:])
    check('"database":"ok"' in p.stdout, "healthz: %s" % p.stdout[-300:])


@case
def the_readme_tour_works_as_printed_in_the_database_make_run_made():
    r = STATE["run"]
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    tour = readme[readme.index("## A tour"):]
    sql = re.search(r"```sql\n(.*?)```", tour, re.S).group(1)
    shell = re.search(r"```sh\n(.*?)```", tour, re.S).group(1).replace("localhost:8080", "localhost:%d" % r.http)
    path = os.path.join(os.environ["RUN_WORK"], "tour.sql")
    with open(path, "w") as f:
        f.write(sql)
    p = r.psql(file=path)
    eq(p.returncode, 0, "psql of the README tour: %s" % p.stderr)
    check(re.search(r"^\s+200 \|", p.stdout, re.M), "GET /users from SQL not 200: %s" % p.stdout[-800:])
    p = subprocess.run(["bash", "-e", "-c", shell], capture_output=True, text=True, timeout=60)
    check('"email":"bob@acme.test"' in p.stdout, "GET /users with $TOKEN: %s %s" % (p.stdout[-500:], p.stderr))
    check('"openapi"' in p.stdout, "openapi.json: %s" % p.stdout[-300:])


def healthz(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port, timeout=10) as resp:
        return json.loads(resp.read())


@case
def a_database_the_worker_does_not_serve_says_so_everywhere():
    r = STATE["run"]
    doc = wait_for(lambda: (lambda d: d if d.get("worker") == "running" else None)(healthz(r.http)),
                   timeout=60, what="the worker of make run's database to run")
    eq(doc["status"], "ok", "healthz of the served database")
    eq(r.psql("SELECT DISTINCT worker FROM saas.integration_status").stdout.strip(), "serves this database",
       "status view of the served database")
    p = subprocess.run(["psql", "-X", "-v", "ON_ERROR_STOP=1", "-h", RUN_DIR, "-p", str(r.pg), "-U", "postgres",
                        "-d", "postgres", "-c", "DROP DATABASE IF EXISTS unserved", "-c", "CREATE DATABASE unserved"],
                       capture_output=True, text=True, timeout=60)
    eq(p.returncode, 0, "create database: %s" % p.stderr)
    base = ["psql", "-X", "-v", "ON_ERROR_STOP=1", "-h", RUN_DIR, "-p", str(r.pg), "-U", "postgres", "-d", "unserved"]
    p = subprocess.run(base + ["-c", "CREATE EXTENSION pg_saas"], capture_output=True, text=True, timeout=60)
    eq(p.returncode, 0, "create extension: %s" % p.stderr)
    check('WARNING:  the pg_saas worker serves database "saas", not "unserved"' in p.stderr, "notice: %r" % p.stderr)
    p = subprocess.run(base + ["-Atc", "SELECT body FROM saas.http('GET', '/healthz', '{}')"],
                       capture_output=True, text=True, timeout=60)
    doc = json.loads(p.stdout)
    eq((doc["status"], doc["worker"], doc.get("worker_database")), ("degraded", "not_serving_this_database", "saas"),
       "healthz of the unserved database")
    p = subprocess.run(base + ["-Atc", "SELECT DISTINCT worker FROM saas.integration_status"],
                       capture_output=True, text=True, timeout=60)
    eq(p.stdout.strip(), "NOT SERVED: the worker serves database saas", "status view of the unserved database")


@case
def a_second_make_run_in_the_same_folder_is_refused_while_one_runs():
    r2 = Run()
    rc = r2.finish()
    eq(rc, 1, "exit code")
    check("already running" in r2.err(), "message: %s" % r2.err())


@case
def ctrl_c_with_the_output_piped_stops_everything():
    r = STATE.pop("run")
    r.interrupt_piped()
    check(r.all_stopped(), "something still runs on %d/%d/%d" % (r.pg, r.http, r.sim))


@case
def a_taken_port_is_named_before_anything_starts():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    port = free_port()
    s.bind(("127.0.0.1", port))
    s.listen()
    try:
        r = Run(env={"SAAS_HTTP_PORT": str(port)})
        rc = r.finish()
    finally:
        s.close()
    eq(rc, 1, "exit code")
    err = r.err()
    check("port %d" % port in err and "SAAS_HTTP_PORT" in err, "message: %s" % err)
    check("pg_saas is running" not in r.out, "said it runs")
    check(not port_open(r.pg), "PostgreSQL started anyway")


@case
def a_program_that_fails_to_start_stops_everything_with_its_reason():
    r = Run(env={"SAAS_HTTP_CORS_ORIGINS": "not-an-origin"})
    rc = r.finish()
    eq(rc, 1, "exit code")
    err = r.err()
    check("saas-http did not start" in err and "not-an-origin" in err, "message: %s" % err)
    check("pg_saas is running" not in r.out, "said it runs")
    check(r.all_stopped(), "left something running")


@case
def the_leftovers_of_a_killed_run_are_stopped_and_said():
    r = Run()
    check(r.read_until(BANNER_END), "first run: %s" % r.err()[-800:])
    os.kill(r.proc.pid, signal.SIGKILL)     # the script only: its servers stay
    r.proc.wait(10)
    check(port_open(r.http) and port_open(r.pg), "servers went with the script")
    r2 = Run()
    out = r2.read_until(BANNER_END)
    check(out, "second run: %s" % r2.err()[-800:])
    check("saas-http (pid" in out and "left running by an earlier make run" in out, "no word: %s" % out[:600])
    check("PostgreSQL of an earlier make run" in out, "cluster not mentioned: %s" % out[:600])
    check(not port_open(r.http), "the old relay still listens")
    r2.interrupt_piped()
    check(r2.all_stopped(), "second run left something")



def versions():
    """(previous release, this tree's version): Makefile PREV_VERSION, the control file's default."""
    mk = open(os.path.join(ROOT, "Makefile"), encoding="utf-8").read()
    ctl = open(os.path.join(ROOT, "extension", "pg_saas.control"), encoding="utf-8").read()
    return (re.search(r"^PREV_VERSION = (\S+)$", mk, re.M).group(1),
            re.search(r"^default_version = '([^']+)'$", ctl, re.M).group(1))


@case
def a_database_of_the_previous_release_is_upgraded_by_make_run():
    prev, this = versions()
    r = Run()
    check(r.read_until(BANNER_END), "first run: %s" % r.err()[-800:])
    p = r.psql("SET client_min_messages = error; DROP EXTENSION pg_saas CASCADE; "
               "CREATE EXTENSION pg_saas VERSION '%s'; "
               "SELECT saas.create_super_admin('keeper@platform.test', 'keeper password long');" % prev)
    eq(p.returncode, 0, "the database made with %s: %s" % (prev, p.stderr))
    r.interrupt_piped()
    check(r.all_stopped(), "first run left something")
    r2 = Run()
    out = r2.read_until(BANNER_END)
    check(out, "second run: %s" % r2.err()[-800:])
    check('run: upgraded pg_saas in database "saas" from %s to %s' % (prev, this) in out, "no word: %s" % out[:800])
    check("WARNING" not in out, "a warning: %s" % out[:800])
    eq(r2.psql("SELECT extversion FROM pg_extension WHERE extname = 'pg_saas'").stdout.strip(), this, "version")
    eq(r2.psql("SELECT count(*) FROM saas.users WHERE email = 'keeper@platform.test'").stdout.strip(), "1",
       "the data of the old version")
    with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % r2.http, timeout=10) as resp:
        eq(resp.status, 200, "/healthz after the upgrade")
    # A version this tree has no upgrade from (a newer branch's): refused, with the way out.
    p = r2.psql("UPDATE pg_extension SET extversion = '99.0.0' WHERE extname = 'pg_saas'")
    eq(p.returncode, 0, "pretend a newer version: %s" % p.stderr)
    r2.interrupt_piped()
    r3 = Run()
    rc = r3.finish()
    eq(rc, 1, "exit code of a run on a database it cannot upgrade")
    check('has pg_saas 99.0.0, and this tree (pg_saas %s) has no upgrade from it' % this in r3.err()
          and "SAAS_RUN_RESET=1" in r3.err(), "message: %s" % r3.err())
    check(r3.all_stopped(), "left something running")
    # Leave the database as this tree made it, for whatever runs next in this folder.
    r4 = Run(env={"SAAS_RUN_RESET": "1"})
    check(r4.read_until(BANNER_END), "a reset run: %s" % r4.err()[-800:])
    check('run: created pg_saas %s in database "saas"' % this in r4.out, "no word: %s" % r4.out[:800])
    r4.interrupt_piped()
    check(r4.all_stopped(), "the reset run left something")


def main():
    os.makedirs(RUN_DIR, exist_ok=True)
    passed, failed, _, _ = run_cases(CASES)
    print("passed=%d failed=%d" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
