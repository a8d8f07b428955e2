#!/usr/bin/env bash
# Lints docs/openapi.json with Redocly's recommended rules, every warning an error
# (test/openapi/redocly.yaml). The linter, at the version test/openapi/package-lock.json pins, is
# installed from the npm registry into .cache/openapi-lint on first use (and again when the lock
# changes). Exit 0: clean; 1: findings (printed); 2: the linter could not be installed or run.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SRC="$ROOT/test/openapi"
DEST="$ROOT/.cache/openapi-lint"
DOC=${1:-$ROOT/docs/openapi.json}

if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
	echo "openapi-lint: node and npm are needed (the machine's Node.js)" >&2
	exit 2
fi
stamp=$(sha256sum "$SRC/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$DEST/.stamp" 2>/dev/null)" != "$stamp" ] || [ ! -x "$DEST/node_modules/.bin/redocly" ]; then
	echo "openapi-lint: installing the linter (@redocly/cli, pinned) into $DEST" >&2
	rm -rf "$DEST" && mkdir -p "$DEST"
	cp "$SRC/package.json" "$SRC/package-lock.json" "$DEST/"
	if ! (cd "$DEST" && timeout 300 npm ci --no-audit --no-fund --silent >"$DEST/npm.log" 2>&1); then
		echo "openapi-lint: npm ci failed; the end of $DEST/npm.log:" >&2
		tail -5 "$DEST/npm.log" >&2
		exit 2
	fi
	echo "$stamp" >"$DEST/.stamp"
fi
# No telemetry, no update check: the lint runs offline once installed.
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true
out=$("$DEST/node_modules/.bin/redocly" lint --config "$SRC/redocly.yaml" --format stylish "$DOC" 2>&1)
rc=$?
echo "$out" | grep -vE '[║╔╚═]' | sed '/^\s*$/d'
exit $((rc == 0 ? 0 : 1))
