#!/usr/bin/env bash
# Installs the Debian packages pg_saas needs to build, run and test, when any are missing.
# As root it calls apt-get; otherwise it prints the command to run.
set -euo pipefail

PACKAGES=(
	build-essential pkg-config
	postgresql-15 postgresql-server-dev-15 postgresql-contrib libpq-dev
	postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl libipc-run-perl
	libcurl4-openssl-dev libmicrohttpd-dev libargon2-dev libssl-dev libjansson-dev
	clang libclang-rt-dev
	curl jq wrk python3 openssl
	# the dashboard's browser tests (test/suites/75_browser.sh): headless Chromium and its WebDriver
	chromium chromium-driver
	# Citus, built from the vendored source by scripts/citus.sh for the suite 80_citus
	liblz4-dev libzstd-dev libkrb5-dev libselinux1-dev libpam0g-dev autoconf flex bison
)

missing=()
for p in "${PACKAGES[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "deps: all ${#PACKAGES[@]} packages present"
	exit 0
fi

echo "deps: missing: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: run as root:  apt-get update && apt-get install -y ${missing[*]}" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "deps: installed ${#missing[@]} packages"
