#!/usr/bin/env bash
# Benchmark: how many requests per second saas-sim answers (the optimized build, not ASan).
# Starts its own sim on free ports with request logging and webhooks off, runs
# wrk -t2 -c32 -d5s against a read and a write endpoint, prints "sim capacity: N req/s" lines,
# and stops everything it started.
set -uo pipefail

PROJECT_ROOT=${PROJECT_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN="$PROJECT_ROOT/sim/saas-sim"
DURATION=${SIM_BENCH_DURATION:-5s}

if [ ! -x "$BIN" ]; then
	echo "sim capacity: $BIN is not built (make sim/saas-sim)"
	exit 1
fi
if ! command -v wrk >/dev/null; then
	echo "sim capacity: wrk is not installed"
	exit 1
fi

WORK=$(mktemp -d /tmp/sim_bench.XXXXXX)
SIM_PID=
cleanup() {
	if [ -n "$SIM_PID" ] && kill -0 "$SIM_PID" 2>/dev/null; then
		kill -TERM "$SIM_PID"
		wait "$SIM_PID" 2>/dev/null
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# four distinct free ports: bound together, then released
read -r CTL USR PAY COM < <(python3 - <<'PY'
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
for s in socks:
    s.close()
PY
)

SEED_DATA=
for d in "$PROJECT_ROOT/../shared/reference-data" "$PROJECT_ROOT/test/sim/fixtures"; do
	if [ -f "$d/platform_data.json" ]; then SEED_DATA="$d/platform_data.json"; break; fi
done

"$BIN" --control-port "$CTL" --user-port "$USR" --payment-port "$PAY" --communication-port "$COM" --oidc-port 0 \
	--seed 1 ${SEED_DATA:+--seed-data "$SEED_DATA"} --webhook-url none --quiet 2>"$WORK/sim.log" &
SIM_PID=$!

for _ in $(seq 1 100); do
	curl -sf "http://127.0.0.1:$CTL/_sim/health" >/dev/null && break
	sleep 0.05
done
if ! curl -sf "http://127.0.0.1:$CTL/_sim/health" >/dev/null; then
	echo "sim capacity: the sim did not start"; cat "$WORK/sim.log"; exit 1
fi

cat >"$WORK/post_message.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"organization_id":"org_002","recipient":"bench@startup.io","template":"bench"}'
LUA

rc=0
# run_wrk LABEL URL [LUA]: one wrk run, one "sim capacity" line
run_wrk() {
	local label=$1 url=$2 lua=${3:-}
	local out
	out=$(wrk -t2 -c32 -d"$DURATION" --latency ${lua:+-s "$lua"} "$url" 2>&1)
	local rps non2xx p99
	rps=$(echo "$out" | awk '/^Requests\/sec:/ {printf "%d", $2}')
	non2xx=$(echo "$out" | awk '/Non-2xx or 3xx responses:/ {print $5}')
	p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
	if [ -z "$rps" ]; then
		echo "sim capacity: $label: wrk failed"; echo "$out"; rc=1; return
	fi
	echo "sim capacity: ${rps} req/s ($label, wrk -t2 -c32 -d$DURATION, p99 ${p99:-?}${non2xx:+, $non2xx non-2xx})"
	[ -z "$non2xx" ] || rc=1
}

run_wrk "GET /v1/users/{id}" "http://127.0.0.1:$USR/v1/users/ext_user_12345"
run_wrk "POST /v1/messages" "http://127.0.0.1:$COM/v1/messages" "$WORK/post_message.lua"
run_wrk "GET /_sim/health, control port" "http://127.0.0.1:$CTL/_sim/health"

if ! kill -0 "$SIM_PID" 2>/dev/null; then
	echo "sim capacity: the sim died during the benchmark"; tail -20 "$WORK/sim.log"; rc=1
fi
exit $rc
