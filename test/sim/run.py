#!/usr/bin/env python3
"""Runs the saas-sim tests: every test_* function of the test modules, in the
order they are written, each counted as one pass or one failure.  Ends with
the line "passed=N failed=M".

usage: run.py PATH/TO/saas-sim-asan [name-filter]
"""

import inspect
import os
import shutil
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import simtest  # noqa: E402
import test_api  # noqa: E402
import test_webhooks  # noqa: E402
import test_faults  # noqa: E402
import test_emit  # noqa: E402
import test_oidc  # noqa: E402

MODULES = (test_api, test_webhooks, test_faults, test_emit, test_oidc)


class Context:
    """What the tests share: the binary, a work folder, one sim and one receiver."""

    def __init__(self, binary, workdir):
        self.binary = binary
        self.workdir = workdir
        self.recv = simtest.Receiver()
        self.secrets = simtest.default_secrets()
        self.sim = simtest.Sim(binary, workdir, webhook_url=self.recv.url,
                               args=["--webhook-retry-base-ms", "100"])

    def fresh(self):
        """The shared sim back to its start-up state, and an empty receiver."""
        if not self.sim.alive():
            raise simtest.TestFailure("the shared saas-sim died: %s" % self.sim.stderr()[-2000:])
        self.sim.reset()
        self.recv.clear()

    def new_sim(self, **kw):
        return simtest.Sim(self.binary, self.workdir, **kw)


_reported = set()


def new_report(ctx):
    """Fail the current test if a sim (the shared one, or one the test stopped)
    printed a sanitizer report since the last test."""
    for s in simtest.Sim.all_instances:
        if s is not ctx.sim and s.exit_code is None:
            continue
        rep = s.sanitizer_report()
        if rep and s.log_path not in _reported:
            _reported.add(s.log_path)
            raise simtest.TestFailure("sanitizer report in %s:\n%s" % (s.log_path, rep))


def collect(name_filter):
    tests = []
    for mod in MODULES:
        fns = [f for n, f in inspect.getmembers(mod, inspect.isfunction)
               if n.startswith("test_") and f.__module__ == mod.__name__]
        fns.sort(key=lambda f: f.__code__.co_firstlineno)
        tests += [f for f in fns if not name_filter or name_filter in f.__name__]
    return tests


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        print("passed=0 failed=1")
        return 1
    binary = os.path.abspath(sys.argv[1])
    name_filter = sys.argv[2] if len(sys.argv) > 2 else None
    passed = failed = 0
    if not os.access(binary, os.X_OK):
        print("not ok - %s is not built (make sim/saas-sim-asan)" % binary)
        print("passed=0 failed=1")
        return 1
    workdir = tempfile.mkdtemp(prefix="saas_sim_test.")
    try:
        ctx = Context(binary, workdir)
    except Exception as e:  # noqa: BLE001
        print("not ok - the shared saas-sim could not start: %s" % e)
        print("passed=0 failed=1")
        return 1

    tests = collect(name_filter)
    started = time.monotonic()
    for i, fn in enumerate(tests, 1):
        t0 = time.monotonic()
        try:
            ctx.fresh()
            fn(ctx)
            new_report(ctx)
            passed += 1
            print("ok %d - %s (%.2fs)" % (i, fn.__name__, time.monotonic() - t0), flush=True)
        except Exception as e:  # noqa: BLE001
            failed += 1
            print("not ok %d - %s (%.2fs): %s" % (i, fn.__name__, time.monotonic() - t0, e), flush=True)
            if not isinstance(e, simtest.TestFailure):
                traceback.print_exc(file=sys.stdout)

    # the shared sim must stop cleanly; every sim's stderr must be free of sanitizer reports
    n = len(tests) + 1
    rc = ctx.sim.stop()
    ctx.recv.close()
    if rc == 0:
        passed += 1
        print("ok %d - shared_sim_stops_cleanly_on_sigterm" % n)
    else:
        failed += 1
        print("not ok %d - shared_sim_stops_cleanly_on_sigterm: exit code %s\n%s"
              % (n, rc, ctx.sim.stderr()[-2000:]))
    for s in simtest.Sim.all_instances:
        s.stop()
    reports = [(s, s.sanitizer_report()) for s in simtest.Sim.all_instances]
    reports = [(s, r) for s, r in reports if r]
    n += 1
    if not reports:
        passed += 1
        print("ok %d - no_sanitizer_reports_in_%d_sim_processes" % (n, len(simtest.Sim.all_instances)))
    else:
        failed += 1
        print("not ok %d - sanitizer reports in %d sim processes; first (%s):\n%s"
              % (n, len(reports), reports[0][0].log_path, reports[0][1]))
    if failed == 0 and not os.environ.get("KEEP_SIM_LOGS"):
        shutil.rmtree(workdir, ignore_errors=True)
        print("# %d tests in %.1fs" % (passed + failed, time.monotonic() - started))
    else:
        print("# %d tests in %.1fs; sim logs kept in %s" % (passed + failed, time.monotonic() - started, workdir))
    print("passed=%d failed=%d" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
