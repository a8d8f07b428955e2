#!/usr/bin/env bash
# Bench: saas-http, the relay (issue 5). Three figures, measured side by side in one run:
#
#   relay_vs_pgbench_ratio   GET /users?limit=50 through the relay under wrk (-t2, RELAY_CONNS
#                            connections, closed loop) against pgbench running the same
#                            saas.http() call, prepared, at the same concurrency:
#                            relay rps / pgbench tps, the median of BENCH_ROUNDS alternating
#                            rounds (target >= 0.6). relay_rps and relay_pgbench_tps are the means.
#   relay_p99_ms_half_peak   p99 latency of the relay at half the peak rps measured above, from an
#                            open-loop client that sends at a fixed rate and counts latency from
#                            each request's scheduled send time, so a stall is not hidden by
#                            requests that were never sent (no coordinated omission; wrk2's method,
#                            wrk2 is not in Debian). Target <= 20 ms.
#   rate_limit_check_ns      the shared-memory GCRA limiter's cost per check,
#                            SELECT saas._rate_limit_bench(1000000) (target <= 1000 ns).
#
# Data: in $BENCH_DB, an organization "relay-bench" (enterprise tier) with RELAY_BENCH_USERS users
# (default 1000), loaded once; requests are its admin's. The per-user rate limit would throttle
# any benchmark, so saas.rate_limits is raised for the run (60000000/min: builds of the limiter
# before its fix divided by zero above that) and put back at exit. The relay is the optimized build
# shim/saas-http (built if missing), with a pool of RELAY_CONNS connections, over the unix
# socket, like pgbench.
#
# Environment: see run_bench.sh. Also RELAY_CONNS (default 2 x BENCH_CLIENTS), RELAY_BENCH_USERS,
# RELAY_BENCH_COMPARE (alternate, the default, or concurrent; see below).
set -euo pipefail
source "$(dirname "$0")/lib/bench_lib.bash"

: "${PROJECT_ROOT:?}" "${BENCH_DB:?}" "${BENCH_WORK:?}" "${PGHOST:?}" "${PGPORT:?}"
RELAY_CONNS=${RELAY_CONNS:-$((BENCH_CLIENTS * 2))}
RELAY_BENCH_USERS=${RELAY_BENCH_USERS:-1000}
RELAY_BIN="$PROJECT_ROOT/shim/saas-http"
URLPATH='/users?limit=50'
DB=$BENCH_DB
RELAY_PID=""
LIMITS_SAVED=""

command -v wrk >/dev/null || bench_fail "wrk is not installed (make deps)"
if [ ! -x "$RELAY_BIN" ]; then
	make --no-print-directory -C "$PROJECT_ROOT" shim/saas-http >"$BENCH_WORK/relay-build.log" 2>&1 ||
		bench_fail "cannot build shim/saas-http: $(tail -5 "$BENCH_WORK/relay-build.log")"
fi

cleanup() {
	if [ -n "$RELAY_PID" ] && kill -0 "$RELAY_PID" 2>/dev/null; then
		kill -TERM "$RELAY_PID" 2>/dev/null
		wait "$RELAY_PID" 2>/dev/null || true
	fi
	if [ -n "$LIMITS_SAVED" ]; then
		bq -d "$DB" -c "UPDATE saas.rate_limits r SET requests_per_minute = s.rpm, burst = s.burst
			FROM (SELECT x->>'tier' AS tier, x->>'scope' AS scope, (x->>'rpm')::int AS rpm, (x->>'burst')::int AS burst
			        FROM jsonb_array_elements('$LIMITS_SAVED'::jsonb) x) s
			WHERE r.tier = s.tier AND r.scope = s.scope" >/dev/null 2>&1 || echo "  could not restore saas.rate_limits"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- data: one organization with its users, loaded once per database -------------------------
have=$(bq -d "$DB" -c "SELECT count(*) FROM saas.users u JOIN saas.organizations o ON o.id = u.org_id
	WHERE o.slug = 'relay-bench'")
if [ "$have" -lt "$RELAY_BENCH_USERS" ]; then
	echo "  data: organization relay-bench with $RELAY_BENCH_USERS users in $DB"
	bq -d "$DB" -c "DELETE FROM saas.organizations WHERE slug = 'relay-bench'" >/dev/null
	bq -d "$DB" -c "SELECT saas.register('{\"organization\":{\"name\":\"Relay Bench\",\"slug\":\"relay-bench\"},
		\"email\":\"admin@relay-bench.test\",\"password\":\"relay bench password\",
		\"first_name\":\"Relay\",\"last_name\":\"Admin\"}')" >/dev/null || bench_fail "cannot register the bench org"
	bq -d "$DB" -c "UPDATE saas.organizations SET subscription_tier = 'enterprise', employee_limit = 1000000
		WHERE slug = 'relay-bench'" >/dev/null
	bq -d "$DB" -c "SET session_replication_role = replica" -c "
		INSERT INTO saas.users (org_id, id, email, first_name, last_name, role, status)
		SELECT o.id, saas.uuid_generate_v7(), 'user' || g || '@relay-bench.test', 'First' || g, 'Last' || g, 'user', 'active'
		  FROM generate_series(2, $RELAY_BENCH_USERS) g, saas.organizations o WHERE o.slug = 'relay-bench'" >/dev/null ||
		bench_fail "cannot load users"
	bq -d "$DB" -c "VACUUM ANALYZE saas.users" >/dev/null
fi
TOK=$(bq -d "$DB" -c "SELECT saas.login('{\"email\":\"admin@relay-bench.test\",\"password\":\"relay bench password\"}')->>'token'") ||
	bench_fail "cannot log in as the bench org's admin"
[ -n "$TOK" ] || bench_fail "no token"

# ---- limits: raised for the run, restored at exit ---------------------------------------------
LIMITS_SAVED=$(bq -d "$DB" -c "SELECT jsonb_agg(jsonb_build_object('tier', tier, 'scope', scope,
	'rpm', requests_per_minute, 'burst', burst)) FROM saas.rate_limits")
bq -d "$DB" -c "UPDATE saas.rate_limits SET requests_per_minute = 60000000, burst = 1000000" >/dev/null

# ---- the relay --------------------------------------------------------------------------------
"$RELAY_BIN" --listen 127.0.0.1:0 --pool "$RELAY_CONNS" \
	--dsn "host=$PGHOST port=$PGPORT dbname=$DB user=$BENCH_APP_ROLE" >/dev/null 2>"$BENCH_WORK/relay.log" &
RELAY_PID=$!
PORT=""
for _ in $(seq 1 100); do
	PORT=$(sed -nE 's/.*msg=listening addr=[^ ]*:([0-9]+).*/\1/p' "$BENCH_WORK/relay.log" | head -1)
	[ -n "$PORT" ] && break
	kill -0 "$RELAY_PID" 2>/dev/null || break
	sleep 0.1
done
[ -n "$PORT" ] || bench_fail "the relay did not start: $(tail -5 "$BENCH_WORK/relay.log")"
URL="http://127.0.0.1:$PORT$URLPATH"
# what the relay forwards for wrk's requests (wrk sends Host and the -H header only)
HDR="{\"host\":\"127.0.0.1:$PORT\",\"authorization\":\"Bearer $TOK\",\"x-client-addr\":\"127.0.0.1\",\"x-request-id\":\"bench-0001\"}"
echo "  relay: shim/saas-http on port $PORT, pool $RELAY_CONNS; load: $RELAY_CONNS connections (wrk -t2), pgbench -c $RELAY_CONNS -j 2"

# Both sides answer 200 with the same 50 users.
via_relay=$(python3 - "$URL" "$TOK" <<'PY'
import json, sys, urllib.request, hashlib
req = urllib.request.Request(sys.argv[1], headers={"Authorization": "Bearer " + sys.argv[2]})
with urllib.request.urlopen(req, timeout=10) as r:
    d = json.load(r)
    print("%d:%d:%s" % (r.status, len(d["data"]), hashlib.md5(",".join(u["id"] for u in d["data"]).encode()).hexdigest()))
PY
) || bench_fail "GET $URLPATH through the relay failed"
via_sql=$(bq -d "$DB" -U "$BENCH_APP_ROLE" -v hdr="$HDR" -v path="$URLPATH" <<'SQL'
SELECT status || ':' || (SELECT count(*) || ':' || md5(string_agg(u->>'id', ',' ORDER BY ord))
						   FROM jsonb_array_elements(body::jsonb->'data') WITH ORDINALITY AS e(u, ord))
  FROM saas.http('GET', :'path', :'hdr'::jsonb, NULL);
SQL
) || bench_fail "saas.http failed"
[ "$via_relay" = "$via_sql" ] || bench_fail "relay answered $via_relay, saas.http $via_sql (status:rows:md5)"
case "$via_relay" in 200:50:*) ;; *) bench_fail "expected 200 with 50 users, got $via_relay" ;; esac
echo "  checked: relay and saas.http answer 200 with the same 50 users"

# ---- side by side: wrk through the relay, pgbench on saas.http --------------------------------
run_wrk() {	# SECONDS LABEL: echoes requests/s; fails on any non-2xx answer or socket error
	local log="$BENCH_WORK/wrk-$2.log"
	wrk -t2 -c "$RELAY_CONNS" -d "${1}s" --latency -H "Authorization: Bearer $TOK" "$URL" >"$log" 2>&1 ||
		{ cat "$log" >&2; return 1; }
	if grep -qE 'Non-2xx or 3xx responses|Socket errors' "$log"; then
		echo "wrk $2: errors:" >&2
		grep -E 'Non-2xx|Socket errors' "$log" >&2
		return 1
	fi
	sed -nE 's/^Requests\/sec:[[:space:]]+([0-9.]+).*/\1/p' "$log"
}

run_pgbench() {	# SECONDS LABEL: echoes tps
	local log="$BENCH_WORK/pgbench-relay-$2.log" tps
	pgbench -n -M prepared -c "$RELAY_CONNS" -j 2 -T "$1" -U "$BENCH_APP_ROLE" \
		-f "$BENCH_DIR/pgbench/http_api.sql" -D "method=GET" -D "path=$URLPATH" -D "hdr=$HDR" "$DB" >"$log" 2>&1 || {
		grep -vE '^(transaction type|scaling factor|query mode|number of)' "$log" | head -20 >&2
		return 1
	}
	tps=$(sed -nE 's/^tps = ([0-9.]+) \(without initial connection time\)$/\1/p' "$log")
	if [ -z "$tps" ] || grep -qE 'aborted|^number of failed transactions: [1-9]' "$log"; then
		grep -vE '^(transaction type|scaling factor|query mode)' "$log" | head -20 >&2
		return 1
	fi
	echo "$tps"
}

# Each side alone, one after the other, the order swapped every round (RELAY_BENCH_COMPARE=alternate,
# the default here): the question is what the relay costs over calling saas.http() directly.
# RELAY_BENCH_COMPARE=concurrent runs wrk and pgbench at the same time instead, as run_bench.sh's
# BENCH_COMPARE does for the SQL benches; here that measures something else, the share of the
# CPU each side wins, and the relay side, with more runnable threads (wrk's, the relay's and its
# backends), wins more than its due. In concurrent mode the peak for the latency run is then
# measured by wrk alone.
MODE=${RELAY_BENCH_COMPARE:-alternate}
echo "  $MODE comparison: relay (wrk) vs pgbench, warm-up ${BENCH_WARMUP_SECONDS}s, $BENCH_ROUNDS rounds of ${BENCH_SECONDS}s"
sum_r=0
sum_p=0
ratios=""
for ((r = 0; r <= BENCH_ROUNDS; r++)); do
	secs=$BENCH_SECONDS tag=$r
	if ((r == 0)); then secs=$BENCH_WARMUP_SECONDS tag=warmup; fi
	if [ "$MODE" = concurrent ]; then
		order="relay+pgbench"
		run_wrk "$secs" "$tag" >"$BENCH_WORK/wrk-$tag.rps" &
		wpid=$!
		run_pgbench "$secs" "$tag" >"$BENCH_WORK/pgbench-$tag.tps" &
		ppid=$!
		wait "$wpid" || bench_fail "wrk failed"
		wait "$ppid" || bench_fail "pgbench failed"
		rps=$(cat "$BENCH_WORK/wrk-$tag.rps")
		tps=$(cat "$BENCH_WORK/pgbench-$tag.tps")
	else
		if ((r % 2)); then order="relay, pgbench"; else order="pgbench, relay"; fi
		for side in ${order//,/}; do
			if [ "$side" = relay ]; then
				rps=$(run_wrk "$secs" "$tag") || bench_fail "wrk failed"
			else
				tps=$(run_pgbench "$secs" "$tag") || bench_fail "pgbench failed"
			fi
		done
	fi
	((r == 0)) && continue
	sum_r=$(awk -v s="$sum_r" -v t="$rps" 'BEGIN { print s + t }')
	sum_p=$(awk -v s="$sum_p" -v t="$tps" 'BEGIN { print s + t }')
	ratios="$ratios $(awk -v a="$rps" -v b="$tps" 'BEGIN { printf "%.3f", a / b }')"
	echo "  round $r/$BENCH_ROUNDS ($order): relay rps=$(fmt "$rps" 1)  pgbench tps=$(fmt "$tps" 1)" \
		" (wrk p50 $(sed -nE 's/^ +50% +([0-9.]+[a-z]+)$/\1/p' "$BENCH_WORK/wrk-$r.log"), p99 $(sed -nE 's/^ +99% +([0-9.]+[a-z]+)$/\1/p' "$BENCH_WORK/wrk-$r.log"))"
done
ratios=${ratios# }
RPS=$(awk -v s="$sum_r" -v n="$BENCH_ROUNDS" 'BEGIN { print s / n }')
TPS=$(awk -v s="$sum_p" -v n="$BENCH_ROUNDS" 'BEGIN { print s / n }')
RATIO=$(echo "$ratios" | tr ' ' '\n' | sort -g |
	awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
if [ "$MODE" = concurrent ]; then
	PEAK=$(run_wrk "$BENCH_SECONDS" peak) || bench_fail "wrk failed"
	PEAK_NOTE=", wrk alone"
	echo "  peak: relay alone under wrk: $(fmt "$PEAK" 1) rps" \
		"(p50 $(sed -nE 's/^ +50% +([0-9.]+[a-z]+)$/\1/p' "$BENCH_WORK/wrk-peak.log"), p99 $(sed -nE 's/^ +99% +([0-9.]+[a-z]+)$/\1/p' "$BENCH_WORK/wrk-peak.log"))"
else
	PEAK=$RPS
	PEAK_NOTE=", mean of the rounds"
fi

# ---- p99 at half the peak: an open-loop client at a fixed rate --------------------------------
PACER="$BENCH_WORK/relay_pacer"
cat >"$PACER.c" <<'C'
/* relay_pacer HOST PORT PATH TOKEN RATE SECONDS CONNS: GETs PATH at a fixed total RATE over CONNS
 * keep-alive connections for SECONDS. Request k of a connection is due at t0 + k * CONNS / RATE
 * (connections staggered); its latency runs from that due time to the end of its answer, so a
 * request delayed behind a slow one counts its wait (no coordinated omission). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *host, *path, *token;
static int port, conns;
static double rate, seconds;
static long long t0;

typedef struct { int id; long long *lat; long n, cap, errors; } Worker;

static long long now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int dial(void) {
	struct sockaddr_in a = {0};
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	a.sin_family = AF_INET;
	a.sin_port = htons(port);
	inet_pton(AF_INET, host, &a.sin_addr);
	if (fd < 0 || connect(fd, (struct sockaddr *) &a, sizeof a) != 0) { if (fd >= 0) close(fd); return -1; }
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return fd;
}

/* one request and its whole answer; the HTTP status, or -1 */
static int roundtrip(int fd, const char *req, size_t reqlen) {
	static __thread char buf[1 << 20];
	size_t have = 0, need = 0;
	char *end = NULL;
	if (write(fd, req, reqlen) != (ssize_t) reqlen) return -1;
	for (;;) {
		ssize_t r = read(fd, buf + have, sizeof buf - have - 1);
		if (r <= 0) return -1;
		have += r;
		buf[have] = 0;
		if (!end && (end = strstr(buf, "\r\n\r\n"))) {
			char *cl = strcasestr(buf, "\r\ncontent-length:");
			if (!cl || cl > end) return -1;
			need = (end + 4 - buf) + strtoul(cl + 17, NULL, 10);
		}
		if (end && have >= need) break;
		if (have >= sizeof buf - 1) return -1;
	}
	return atoi(buf + 9);
}

static void *run(void *arg) {
	Worker *w = arg;
	char req[16384];
	int len = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s:%d\r\nAuthorization: Bearer %s\r\n\r\n",
					   path, host, port, token);
	long long interval = (long long) (1e9 * conns / rate);
	long long due = t0 + (long long) w->id * interval / conns, stop = t0 + (long long) (seconds * 1e9);
	int fd = dial();
	for (; due < stop; due += interval) {
		long long t = now_ns();
		if (due > t) {
			struct timespec ts = {due / 1000000000LL, due % 1000000000LL};
			while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) ;
		}
		int fresh = fd < 0;
		if (fd < 0) fd = dial();
		int st = fd < 0 ? -1 : roundtrip(fd, req, len);
		if (st == -1 && !fresh) {	/* the server closed a kept-alive connection: once more */
			close(fd);
			fd = dial();
			st = fd < 0 ? -1 : roundtrip(fd, req, len);
		}
		if (st != 200) {
			w->errors++;
			if (fd >= 0) close(fd);
			fd = -1;
		}
		if (w->n < w->cap) w->lat[w->n++] = now_ns() - due;
	}
	if (fd >= 0) close(fd);
	return NULL;
}

static int cmp(const void *a, const void *b) {
	long long x = *(const long long *) a, y = *(const long long *) b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
	if (argc != 8) { fprintf(stderr, "usage: relay_pacer HOST PORT PATH TOKEN RATE SECONDS CONNS\n"); return 2; }
	host = argv[1]; port = atoi(argv[2]); path = argv[3]; token = argv[4];
	rate = atof(argv[5]); seconds = atof(argv[6]); conns = atoi(argv[7]);
	if (rate <= 0 || seconds <= 0 || conns <= 0) return 2;
	pthread_t th[conns];
	Worker w[conns];
	t0 = now_ns() + 50000000LL;
	for (int i = 0; i < conns; i++) {
		w[i] = (Worker) {i, NULL, 0, (long) (rate * seconds / conns) + 16, 0};
		w[i].lat = malloc(sizeof(long long) * w[i].cap);
		pthread_create(&th[i], NULL, run, &w[i]);
	}
	long total = 0, errors = 0;
	for (int i = 0; i < conns; i++) { pthread_join(th[i], NULL); total += w[i].n; errors += w[i].errors; }
	long long *all = malloc(sizeof(long long) * (total + 1)), mx = 0;
	long k = 0;
	for (int i = 0; i < conns; i++)
		for (long j = 0; j < w[i].n; j++) all[k++] = w[i].lat[j];
	qsort(all, total, sizeof(long long), cmp);
	if (total) mx = all[total - 1];
#define PCT(p) (total ? all[(long) ((p) * (total - 1))] / 1e6 : 0)
	printf("requests=%ld errors=%ld rate=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f\n",
		   total, errors, total / seconds, PCT(0.50), PCT(0.90), PCT(0.99), PCT(0.999), mx / 1e6);
	return errors ? 1 : 0;
}
C
cc -O2 -Wall -Werror -pthread -o "$PACER" "$PACER.c" 2>"$BENCH_WORK/pacer-build.log" ||
	bench_fail "cannot build the pacing client: $(head -5 "$BENCH_WORK/pacer-build.log")"
HALF=$(awk -v r="$PEAK" 'BEGIN { printf "%.0f", r / 2 }')
echo "  open loop at half the peak ($(fmt "$PEAK" 1) rps$PEAK_NOTE): $HALF requests/s over $RELAY_CONNS connections," \
	"$BENCH_ROUNDS rounds of ${BENCH_SECONDS}s, each next to pgbench -R at the same rate"
warm=$("$PACER" 127.0.0.1 "$PORT" "$URLPATH" "$TOK" "$(awk -v h="$HALF" 'BEGIN { print h / 3 }')" 1 "$RELAY_CONNS" 2>&1) ||
	bench_fail "the pacing client's warm-up failed: $warm"

# pctl P FILES...: the P-th percentile (0..1) of pgbench -l logs' latencies, in ms
pctl() {
	local p=$1
	shift
	cat "$@" | awk '{ print $3 / 1000 }' | sort -g |
		awk -v p="$p" '{ v[NR] = $1 } END { if (NR) printf "%.3f", v[int(p * (NR - 1)) + 1]; else print "nan" }'
}
median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

p99s="" p50s="" rates="" pgb_p99s=""
for ((r = 1; r <= BENCH_ROUNDS; r++)); do
	paced=$("$PACER" 127.0.0.1 "$PORT" "$URLPATH" "$TOK" "$HALF" "$BENCH_SECONDS" "$RELAY_CONNS" 2>&1) ||
		bench_fail "the pacing client saw errors: $paced"
	# The same rate without the relay: pgbench -R schedules transactions the same way (latency
	# from the scheduled start), so its p99 shows how much of the tail is the machine's.
	rm -f "$BENCH_WORK"/pgb_paced*
	(cd "$BENCH_WORK" && pgbench -n -M prepared -c "$RELAY_CONNS" -j 2 -T "$BENCH_SECONDS" -R "$HALF" -l \
		--log-prefix=pgb_paced -U "$BENCH_APP_ROLE" -f "$BENCH_DIR/pgbench/http_api.sql" \
		-D "method=GET" -D "path=$URLPATH" -D "hdr=$HDR" "$DB" >"$BENCH_WORK/pgbench-paced.log" 2>&1) ||
		bench_fail "pgbench -R failed: $(tail -5 "$BENCH_WORK/pgbench-paced.log")"
	pgb_p99=$(pctl 0.99 "$BENCH_WORK"/pgb_paced*)
	echo "  round $r/$BENCH_ROUNDS: relay $paced"
	echo "               pgbench -R $HALF (no relay): p50_ms=$(pctl 0.50 "$BENCH_WORK"/pgb_paced*) p99_ms=$pgb_p99"
	p99s="$p99s $(echo "$paced" | sed -nE 's/.* p99_ms=([0-9.]+).*/\1/p')"
	p50s="$p50s $(echo "$paced" | sed -nE 's/.* p50_ms=([0-9.]+).*/\1/p')"
	rates="$rates $(echo "$paced" | sed -nE 's/.* rate=([0-9.]+).*/\1/p')"
	pgb_p99s="$pgb_p99s $pgb_p99"
done
P99=$(echo "$p99s" | median)
P50=$(echo "$p50s" | median)
ACHIEVED=$(echo "$rates" | median)
PGB_P99=$(echo "$pgb_p99s" | median)

# ---- the rate limiter alone ---------------------------------------------------------------------
NS=""
for i in 1 2 3; do
	t=$(bq -d "$DB" -c "SELECT saas._rate_limit_bench(1000000)") || bench_fail "saas._rate_limit_bench failed"
	echo "  rate limiter: run $i: $(fmt "$t" 1) ns per check"
	NS="$NS $t"
done
NS_MED=$(echo "$NS" | tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')

grep -q 'level=error' "$BENCH_WORK/relay.log" && { echo "  relay log errors:"; grep 'level=error' "$BENCH_WORK/relay.log" | head -5; }

bench_figure relay_rps "$(fmt "$RPS" 1)"
bench_figure relay_pgbench_tps "$(fmt "$TPS" 1)"
bench_figure relay_vs_pgbench_ratio "$(fmt "$RATIO" 3)" "target>=0.6" "(per round: $ratios; $RELAY_CONNS connections)"
bench_figure relay_p99_ms_half_peak "$(fmt "$P99" 2)" "target<=20" "(median of rounds:${p99s}; at $(fmt "$ACHIEVED" 0) rps open loop; p50 $(fmt "$P50" 2) ms)"
bench_figure relay_p99_ms_half_peak_pgbench "$(fmt "$PGB_P99" 2)" "(pgbench -R at the same rate, no relay: the machine's share of the tail; rounds:${pgb_p99s})"
bench_figure rate_limit_check_ns "$(fmt "$NS_MED" 1)" "target<=1000" "(median of 3 x 1000000 checks)"
