# shellcheck shell=bash disable=SC2034
# Helpers of the benchmark scripts (sourced; see run_bench.sh for the environment they get).
#
#   bench_figure NAME VALUE [TARGET] [TEXT]  prints "BENCH NAME=VALUE [TARGET] [TEXT]"
#                                            (TARGET like "target<=10")
#   bench_fail MESSAGE                       prints the reason and exits 1
#   bq [psql options] ...                    psql: no notices, unaligned, tuples only, stop on error
#   bench_pgbench USER SCRIPT LABEL SECONDS [pgbench options]   one pgbench run; sets PGB_TPS
#   bench_compare SPEC_A SPEC_B [pgbench options]   A and B side by side; sets CMP_TPS_A,
#                                            CMP_TPS_B, CMP_RATIO (median of the per-round
#                                            tps_B / tps_A) and CMP_RATIOS
#   foundation_ensure                        the foundation data set in $FOUNDATION_DB, loaded once
#   foundation_token K                       "token org_id user_id" for the admin of bench org K
#
# Sourcing it sets an EXIT trap that stops the pgbench runs still going (bench_stop_all); a
# script that sets its own EXIT trap calls bench_stop_all from it.

: "${BENCH_SECONDS:=10}" "${BENCH_ROUNDS:=3}" "${BENCH_CLIENTS:=2}"
: "${BENCH_WARMUP_SECONDS:=3}"
: "${BENCH_ORGS:=100}" "${BENCH_USERS_PER_ORG:=10000}"
: "${BENCH_APP_ROLE:=app}" "${BENCH_BYPASS_ROLE:=bench_bypass}"
: "${BENCH_WORK:=/tmp}"
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FOUNDATION_DB=${FOUNDATION_DB:-bench_foundation}
# The org whose users the RLS and HTTP benches page through (any would do; all have the same size).
FOUNDATION_ORG=$(( (BENCH_ORGS + 1) / 2 ))

bench_figure() {
	local name=$1 value=$2
	shift 2
	echo "BENCH $name=$value${*:+ $*}"
}

bench_fail() {
	echo "bench error: $*" >&2
	exit 1
}

# bench_citus_ready: Citus built and installed (scripts/citus.sh, progress indented); false, with a
# SKIPPED line, when its source tarball is missing (nothing to measure); a failed build fails.
bench_citus_ready() {
	local rc
	set +e
	bash "$PROJECT_ROOT/scripts/citus.sh" | sed 's/^/  /'
	rc=${PIPESTATUS[0]}
	set -e
	if [ "$rc" -eq 2 ]; then
		echo "  SKIPPED: the Citus source tarball is missing (scripts/citus.sh); nothing measured"
		return 1
	fi
	[ "$rc" -eq 0 ] || bench_fail "cannot build or install Citus"
}

bq() {
	PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning" psql -X -q -A -t -v ON_ERROR_STOP=1 "$@"
}

# fmt NUMBER DECIMALS: a float with a fixed number of decimals.
fmt() {
	awk -v x="$1" -v d="$2" 'BEGIN { printf "%.*f", d, x }'
}

# The pgbench processes running now, stopped by bench_stop_all on exit.
BENCH_PIDS=()
bench_stop_all() {
	local pid
	for pid in "${BENCH_PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${BENCH_PIDS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	BENCH_PIDS=()
}
trap bench_stop_all EXIT

# bench_pgbench_start LABEL OPTIONS USER SCRIPT SECONDS [pgbench options]: one pgbench run in
# the background, in $PGB_CONN (a conninfo: another server) or else $FOUNDATION_DB (or
# $PGBENCH_DB), prepared statements (as applications and
# the relay run), BENCH_CLIENTS clients and threads; OPTIONS is that run's PGOPTIONS. Its
# output goes to $BENCH_WORK/pgbench-LABEL.log; its pid is appended to BENCH_PIDS.
bench_pgbench_start() {
	local label=$1 options=$2 user=$3 script=$4 secs=$5
	shift 5
	PGOPTIONS="$options" pgbench -n -M prepared -c "$BENCH_CLIENTS" -j "$BENCH_CLIENTS" -T "$secs" \
		-U "$user" -f "$script" "$@" "${PGB_CONN:-${PGBENCH_DB:-$FOUNDATION_DB}}" >"$BENCH_WORK/pgbench-$label.log" 2>&1 &
	BENCH_PIDS+=($!)
}

# bench_pgbench_result LABEL PID: waits for that run (so: not in a $(...) subshell); sets
# PGB_TPS to its TPS, or explains and fails when pgbench reports an error, an aborted client
# or a failed transaction.
bench_pgbench_result() {
	local label=$1 pid=$2 rc=0 tps log="$BENCH_WORK/pgbench-$1.log"
	PGB_TPS=
	wait "$pid" || rc=$?
	tps=$(sed -nE 's/^tps = ([0-9.]+) \(without initial connection time\)$/\1/p' "$log")
	if [ "$rc" -ne 0 ] || [ -z "$tps" ] || grep -qE 'aborted|^number of failed transactions: [1-9]' "$log"; then
		echo "pgbench $label failed (exit $rc):" >&2
		grep -vE '^(transaction type|scaling factor|query mode|number of clients|number of threads|duration|initial connection|maximum number of tries)' \
			"$log" | head -20 >&2
		return 1
	fi
	PGB_TPS=$tps
}

# bench_pgbench USER SCRIPT LABEL SECONDS [pgbench options]: one run on its own; sets PGB_TPS.
bench_pgbench() {
	local user=$1 script=$2 label=$3 secs=$4
	shift 4
	bench_pgbench_start "$label" "${PGOPTIONS:-}" "$user" "$script" "$secs" "$@"
	bench_pgbench_result "$label" "${BENCH_PIDS[-1]}"
}

# bench_compare "LABEL_A:USER_A:SCRIPT_A[:PGOPTIONS_A[:CONNINFO_A]]" "LABEL_B:USER_B:SCRIPT_B[...]"
#               [pgbench options for both]
# CONNINFO (no colons: "host=/sock port=N dbname=D") runs that side on another server.
# A and B side by side: a warm-up, then BENCH_ROUNDS rounds. Sets CMP_TPS_A and CMP_TPS_B to
# the mean TPS of each side, CMP_RATIO to the median over rounds of tps_B / tps_A (a burst of
# load from elsewhere spoils one round, not the figure) and CMP_RATIOS to the per-round ratios.
#
# BENCH_COMPARE=concurrent (the default): in each round A and B run at the same time, each
# with BENCH_CLIENTS clients, for BENCH_SECONDS. Whatever else loads the machine meanwhile
# loads both alike, and as both are CPU-bound closed loops sharing the cores evenly, the TPS
# ratio is the inverse ratio of their costs per transaction. The TPS of each side is then
# what it gets while sharing the machine with the other: compare them with each other only.
# BENCH_COMPARE=alternate: A then B (then B then A, ...), each alone; fine on a quiet machine,
# at the mercy of load that changes between runs on a busy one.
bench_compare() {
	local a=$1 b=$2
	shift 2
	local la ua sa oa ca lb ub sb ob cb
	IFS=: read -r la ua sa oa ca <<<"$a"
	IFS=: read -r lb ub sb ob cb <<<"$b"
	local mode=${BENCH_COMPARE:-concurrent} sum_a=0 sum_b=0 r tps_a tps_b pid_a pid_b order
	CMP_RATIOS=""
	echo "  $mode comparison: $la vs $lb, warm-up ${BENCH_WARMUP_SECONDS}s, $BENCH_ROUNDS rounds of ${BENCH_SECONDS}s"
	for ((r = 0; r <= BENCH_ROUNDS; r++)); do
		local secs=$BENCH_SECONDS tag=$r
		if ((r == 0)); then secs=$BENCH_WARMUP_SECONDS tag=warmup; fi
		if [ "$mode" = concurrent ]; then
			order="A+B"
			PGB_CONN=${ca:-} bench_pgbench_start "$la-$tag" "${oa:-}" "$ua" "$sa" "$secs" "$@"
			pid_a=${BENCH_PIDS[-1]}
			PGB_CONN=${cb:-} bench_pgbench_start "$lb-$tag" "${ob:-}" "$ub" "$sb" "$secs" "$@"
			pid_b=${BENCH_PIDS[-1]}
			bench_pgbench_result "$la-$tag" "$pid_a" || { bench_stop_all; return 1; }
			tps_a=$PGB_TPS
			bench_pgbench_result "$lb-$tag" "$pid_b" || { bench_stop_all; return 1; }
			tps_b=$PGB_TPS
		else
			if ((r % 2)); then order="A, B"; else order="B, A"; fi
			for side in ${order//,/}; do
				if [ "$side" = A ]; then
					PGB_CONN=${ca:-} bench_pgbench_start "$la-$tag" "${oa:-}" "$ua" "$sa" "$secs" "$@"
					bench_pgbench_result "$la-$tag" "${BENCH_PIDS[-1]}" || return 1
					tps_a=$PGB_TPS
				else
					PGB_CONN=${cb:-} bench_pgbench_start "$lb-$tag" "${ob:-}" "$ub" "$sb" "$secs" "$@"
					bench_pgbench_result "$lb-$tag" "${BENCH_PIDS[-1]}" || return 1
					tps_b=$PGB_TPS
				fi
			done
		fi
		BENCH_PIDS=()
		((r == 0)) && continue
		sum_a=$(awk -v s="$sum_a" -v t="$tps_a" 'BEGIN { print s + t }')
		sum_b=$(awk -v s="$sum_b" -v t="$tps_b" 'BEGIN { print s + t }')
		CMP_RATIOS="$CMP_RATIOS $(awk -v a="$tps_a" -v b="$tps_b" 'BEGIN { printf "%.3f", b / a }')"
		echo "  round $r/$BENCH_ROUNDS ($order): $la tps=$(fmt "$tps_a" 1)  $lb tps=$(fmt "$tps_b" 1)"
	done
	CMP_RATIOS=${CMP_RATIOS# }
	CMP_TPS_A=$(awk -v s="$sum_a" -v n="$BENCH_ROUNDS" 'BEGIN { print s / n }')
	CMP_TPS_B=$(awk -v s="$sum_b" -v n="$BENCH_ROUNDS" 'BEGIN { print s / n }')
	CMP_RATIO=$(echo "$CMP_RATIOS" | tr ' ' '\n' | sort -g |
		awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
}

# foundation_ensure: database $FOUNDATION_DB with pg_saas, pgcrypto, the bench schema and
# BENCH_ORGS organizations of BENCH_USERS_PER_ORG users each. Loaded by whichever foundation
# bench runs first and reused by the others.
foundation_ensure() {
	local have
	have=$(bq -d "$FOUNDATION_DB" -c "SELECT orgs || 'x' || users_per_org FROM bench.meta" 2>/dev/null)
	if [ "$have" = "${BENCH_ORGS}x${BENCH_USERS_PER_ORG}" ]; then
		echo "  foundation data: $BENCH_ORGS orgs x $BENCH_USERS_PER_ORG users already loaded in $FOUNDATION_DB"
		return 0
	fi
	local total=$((BENCH_ORGS * BENCH_USERS_PER_ORG))
	echo "  foundation data: loading $BENCH_ORGS orgs x $BENCH_USERS_PER_ORG users = $total rows into $FOUNDATION_DB"
	bq -d postgres -c "DROP DATABASE IF EXISTS $FOUNDATION_DB" -c "CREATE DATABASE $FOUNDATION_DB" || return 1
	bq -d "$FOUNDATION_DB" -c "CREATE EXTENSION pg_saas" -c "CREATE EXTENSION pgcrypto" \
		-f "$BENCH_DIR/sql/foundation.sql" >/dev/null || return 1
	# The organizations, with room for every user.
	bq -d "$FOUNDATION_DB" -c "
		INSERT INTO saas.organizations (name, slug, subscription_tier, employee_limit)
		SELECT 'Bench Org ' || k, 'bench-org-' || lpad(k::text, 3, '0'), 'enterprise', 1000000
		  FROM generate_series(1, $BENCH_ORGS) k" || return 1
	# Users in chunks of 10 organizations, for progress. session_replication_role = replica
	# skips the row triggers (users_guard counts an org's active users on every insert);
	# the data is valid by construction (CHECK constraints still apply). Within a chunk, users
	# of the 10 orgs are interleaved as they would be when created over time, so one org's
	# page is spread over several heap pages, as in production.
	local first last start=$SECONDS
	for ((first = 1; first <= BENCH_ORGS; first += 10)); do
		last=$((first + 9 < BENCH_ORGS ? first + 9 : BENCH_ORGS))
		bq -d "$FOUNDATION_DB" -c "SET session_replication_role = replica" -c "
			INSERT INTO saas.users (org_id, id, email, first_name, last_name, role, status)
			SELECT o.id, saas.uuid_generate_v7(), 'user' || g || '@' || o.slug || '.example.com',
				   'First' || g, 'Last' || g, CASE WHEN g = 1 THEN 'admin' ELSE 'user' END, 'active'
			  FROM generate_series(1, $BENCH_USERS_PER_ORG) g
			 CROSS JOIN (SELECT id, slug FROM saas.organizations
						  WHERE slug BETWEEN 'bench-org-$(printf %03d "$first")' AND 'bench-org-$(printf %03d "$last")'
						  ORDER BY slug) o" || return 1
		echo "    users: $((last * BENCH_USERS_PER_ORG)) / $total  ($((SECONDS - start))s)"
	done
	bq -d "$FOUNDATION_DB" -c "VACUUM ANALYZE saas.organizations, saas.users" \
		-c "INSERT INTO bench.meta (orgs, users_per_org) VALUES ($BENCH_ORGS, $BENCH_USERS_PER_ORG)" || return 1
	echo "  foundation data: loaded in $((SECONDS - start))s; saas.users is" \
		"$(bq -d "$FOUNDATION_DB" -c "SELECT pg_size_pretty(pg_total_relation_size('saas.users'))") with indexes"
}

# foundation_token K: "token org_id user_id" for the admin of bench org K (a fresh jti each time).
foundation_token() {
	bq -F ' ' -d "$FOUNDATION_DB" -c "SELECT token, org_id, user_id FROM bench.org_token($1)"
}

# The columns of a user, as the API selects them (src/ops_common.h USER_COLUMNS).
USER_COLUMNS="id, org_id, email, first_name, last_name, role, status, external_user_ids, created_at, updated_at, last_login, version"
