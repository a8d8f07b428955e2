"""The settings of the relay tests (test_relay.py, test_limits.py), from the environment that
test/suites/60_relay.sh exports, and the relay they share.  Cases, checks, the Relay class and
the raw-HTTP helpers are the suites' common library, test/suites/lib/saas_test.py.
"""

import os

from saas_test import Relay
from saas_test import psql as _psql

BIN = os.environ["RELAY_BIN"]
WORK = os.environ["RELAY_WORK"]
DSN = os.environ["RELAY_DSN"]
STUB_SQL = os.environ["RELAY_STUB_SQL"]
API_MD = os.environ.get("RELAY_API_MD", "")
PG_BINDIR = os.environ["RELAY_PG_BINDIR"]
PGHOST = os.environ["PGHOST"]
PGPORT = os.environ["PGPORT"]

Relay.configure(BIN, WORK, DSN)

MAIN = {}       # "relay": the relay most cases share, started by test_relay.main()


def psql(sql, host=PGHOST, port=PGPORT, db="relay_test"):
    """One statement in relay_test (or db) as postgres."""
    return _psql(sql, db, host, port, timeout=30)
