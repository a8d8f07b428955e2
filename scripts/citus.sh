#!/usr/bin/env bash
# Builds Citus 12.1.12 offline from the vendored source and installs it with the pg_config
# first in PATH (the test suite's Citus cluster needs it; users install Citus from its own
# packages).
#
#   bash scripts/citus.sh        build once (cached in .cache/citus-12.1.12/), install if missing
#
# The build is cached: a second run skips configure/make, and runs `make install` only when
# citus.so or citus.control is missing from the PostgreSQL that pg_config names.
#
# Exit status: 0 Citus is installed; 2 the source tarball is absent (the caller skips, and
# says so); 1 anything else (a bad checksum, a failed build: the caller counts a failure).
#
# Environment: CITUS_TARBALL (default ../shared/vendor/citus-v12.1.12.tar.gz next to the
# project), CITUS_CACHE (default .cache/ in the project).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CITUS_VERSION=12.1.12
CITUS_SHA256=c76c4f86c7d8fb462dd559140a7db4cd41c0b7f23fd5a475e9ba3e30913d7dc1
TARBALL=${CITUS_TARBALL:-$ROOT/../shared/vendor/citus-v$CITUS_VERSION.tar.gz}
CACHE=${CITUS_CACHE:-$ROOT/.cache}
SRC=$CACHE/citus-$CITUS_VERSION
# The stamp names the source and the PostgreSQL it was built against: another either rebuilds.
STAMP="$CITUS_SHA256 $(pg_config --version) $(pg_config --includedir-server)"

PKGLIB=$(pg_config --pkglibdir)
SHAREDIR=$(pg_config --sharedir)

if [ ! -f "$TARBALL" ]; then
	echo "citus: source tarball not found at $TARBALL"
	exit 2
fi

if [ "$(cat "$SRC/.pg_saas-built" 2>/dev/null)" != "$STAMP" ]; then
	sum=$(sha256sum "$TARBALL" | cut -d' ' -f1)
	if [ "$sum" != "$CITUS_SHA256" ]; then
		echo "citus: $TARBALL has sha256 $sum, expected $CITUS_SHA256: not building it"
		exit 1
	fi
	echo "citus: building Citus $CITUS_VERSION in $SRC (about 90 s on two cores)"
	rm -rf "$SRC"
	mkdir -p "$SRC"
	tar -xzf "$TARBALL" -C "$SRC" || { echo "citus: cannot unpack $TARBALL"; exit 1; }
	start=$(date +%s)
	# --without-libcurl: no anonymous statistics sent home (the machines are offline anyway).
	(cd "$SRC" && ./configure --without-libcurl >"$SRC/configure.log" 2>&1) ||
		{ tail -30 "$SRC/configure.log"; echo "citus: configure failed (log: $SRC/configure.log)"; exit 1; }
	echo "citus: configured; compiling"
	# A line of progress every 40 compiled files (about 350 in all), so that a slow build is
	# visibly alive without flooding the test output.
	(cd "$SRC" && make -j2 2>&1 | tee "$SRC/make.log" | grep --line-buffered -E '^gcc .* -c ' |
		awk '++n % 40 == 0 { printf "citus:   %d files compiled (%s)\n", n, $NF; fflush() }')
	if [ "${PIPESTATUS[0]}" -ne 0 ] || ! grep -q . "$SRC/make.log" || ! [ -f "$SRC/src/backend/distributed/citus.so" ]; then
		grep -E 'error|Error' "$SRC/make.log" | head -20
		echo "citus: make failed (log: $SRC/make.log)"
		exit 1
	fi
	echo "$STAMP" >"$SRC/.pg_saas-built"
	echo "citus: built in $(($(date +%s) - start)) s"
	rm -f "$PKGLIB/citus.so"
fi

if [ ! -f "$PKGLIB/citus.so" ] || [ ! -f "$SHAREDIR/extension/citus.control" ]; then
	(cd "$SRC" && make install >"$SRC/install.log" 2>&1) ||
		{ tail -20 "$SRC/install.log"; echo "citus: make install failed (log: $SRC/install.log)"; exit 1; }
	echo "citus: installed into $PKGLIB"
else
	echo "citus: Citus $CITUS_VERSION already built and installed ($PKGLIB/citus.so)"
fi
