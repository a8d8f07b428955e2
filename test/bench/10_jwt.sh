#!/usr/bin/env bash
# Bench: the cost of the tenant context, per call, inside one backend (no client round trips).
#
#   jwt_verify_cached_us     saas.authenticate(token) with the same token on every call
#   jwt_verify_uncached_us   saas.authenticate(token) with a different token on every call
#                            (the full verification: split, base64url, JSON, HMAC-SHA256, claims)
#   jwt_cache_speedup        uncached / cached: how much the per-backend context cache saves
#                            a caller that presents the same token again
#   current_org_id_us        saas.current_org_id() with a verified context (what every RLS
#                            policy evaluation calls)
#
# Each figure is (t_loop_with_call - t_baseline_loop) / calls, with the baseline a loop over the
# same rows that only takes length(token) (or a constant uuid). Each loop runs BENCH_JWT_ROUNDS
# times, and the fastest run of each is taken: on a shared machine noise only ever adds time,
# so the minimum is the closest to the cost itself (every round is printed). The tokens are
# minted in SQL with pgcrypto (see sql/foundation.sql).
set -euo pipefail
source "$(dirname "$0")/lib/bench_lib.bash"

CALLS=${BENCH_JWT_CALLS:-20000}
ROUNDS=${BENCH_JWT_ROUNDS:-5}

foundation_ensure || bench_fail "could not load the foundation data set"

echo "  minting $CALLS distinct tokens (HS256 with pgcrypto's hmac)"
bq -d "$FOUNDATION_DB" -c "
	DROP TABLE IF EXISTS bench.tokens;
	CREATE TABLE bench.tokens AS
	SELECT g AS n, bench.mint(o.org_id, o.user_id, 'admin', gen_random_uuid()::text, a.kid, a.secret) AS tok
	  FROM bench.org_token($FOUNDATION_ORG) o, bench.active_key() a, generate_series(1, $CALLS) g;
	CREATE UNIQUE INDEX ON bench.tokens (n);
	ANALYZE bench.tokens;
	GRANT SELECT ON bench.tokens TO saas_api;" || bench_fail "could not mint tokens"

# The minted tokens must be ones pg_saas accepts, for the right tenant.
check=$(bq -d "$FOUNDATION_DB" -U "$BENCH_APP_ROLE" -c "
	BEGIN;
	SELECT (saas.authenticate(tok)->>'org_id')::uuid = saas.current_org_id() AND saas.current_role() = 'admin'
	  FROM bench.tokens WHERE n = $CALLS;
	COMMIT;") || bench_fail "saas.authenticate rejects the minted tokens"
[ "$check" = t ] || bench_fail "the minted token did not set the expected context (got '$check')"
len=$(bq -d "$FOUNDATION_DB" -c "SELECT length(tok) FROM bench.tokens WHERE n = 1")
echo "  token length $len characters; $ROUNDS rounds of $CALLS calls (current_org_id: $((CALLS * 10)) calls)"

bq -d "$FOUNDATION_DB" -U "$BENCH_APP_ROLE" -c "
	CREATE TEMP TABLE r AS SELECT * FROM bench.context_costs($CALLS, $ROUNDS);
	SELECT figure, rnd, round(base_us / 1000, 1), round(test_us / 1000, 1), round(per_call_us, 3) FROM r ORDER BY figure, rnd;
	SELECT '#', figure, round((min(test_us) - min(base_us)) / CASE figure WHEN 'current_org' THEN $CALLS * 10 ELSE $CALLS END, 3)
	  FROM r GROUP BY figure ORDER BY figure;" >"$BENCH_WORK/jwt.txt" || bench_fail "the measurement failed"

echo "  figure          round  baseline_ms  with_call_ms  per_call_us"
grep -v '^#' "$BENCH_WORK/jwt.txt" | awk -F'|' '{ printf "  %-15s %5s  %11s  %12s  %11s\n", $1, $2, $3, $4, $5 }'
figure() { grep "^#|$1|" "$BENCH_WORK/jwt.txt" | cut -d'|' -f3; }

cached=$(figure auth_cached)
uncached=$(figure auth_uncached)
speedup=$(awk -v c="$cached" -v u="$uncached" 'BEGIN { printf "%.2f", (c > 0 ? u / c : 0) }')
if awk -v s="$speedup" 'BEGIN { exit !(s < 2) }'; then
	echo "  note: a repeated token costs about as much as a new one (uncached/cached = $speedup):"
	echo "        saas.authenticate verifies in full on every call, whatever the context cache holds"
fi

bench_figure jwt_verify_cached_us "$(fmt "$cached" 2)" "target<=1"
bench_figure jwt_verify_uncached_us "$(fmt "$uncached" 2)" "target<=10"
bench_figure jwt_cache_speedup "$speedup"
bench_figure current_org_id_us "$(fmt "$(figure current_org)" 3)"
