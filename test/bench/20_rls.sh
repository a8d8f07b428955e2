#!/usr/bin/env bash
# Bench: what row-level security costs on a tenant's page of users.
#
# Data: BENCH_ORGS x BENCH_USERS_PER_ORG users (100 x 10,000 = 1M rows by default).
# Query: the first page of one organization, SELECT <user columns> FROM saas.users
#        ORDER BY org_id, id LIMIT 50.
#
#   RLS side   (role app, subject to RLS):  BEGIN; SELECT saas.authenticate(tok);
#              the query with no WHERE (the users_select policy supplies org_id = current_org_id());
#              COMMIT
#   plain side (role bench_bypass, BYPASSRLS): BEGIN; SELECT saas.authenticate(tok);
#              the query with WHERE org_id = '<org>'; COMMIT
#
# Both sides make the same authenticate call although the plain side does not need it: the
# RLS side cannot see a row without it, and an application pays it once per transaction
# whatever it reads, so leaving it on one side only would charge JWT verification to RLS.
# With it on both, the two transactions differ by the policy alone (its planning, its
# index condition, the current_org_id() calls).
#
#   rls_ratio = time_rls / time_plain = tps_plain / tps_rls   (target <= 1.10), the median of
#   the per-round ratios; rls_tps and rls_plain_tps are the mean TPS of each side.
#
# pgbench -M prepared (as applications and the relay run), -c/-j BENCH_CLIENTS, -T BENCH_SECONDS
# per round, BENCH_ROUNDS rounds; by default both sides run at the same time in each round, so
# that load from elsewhere on the machine hits both alike (lib/bench_lib.bash, bench_compare).
# Before timing, checks that both sides return the same 50 rows and that without a context the
# RLS side sees none; after, prints the plan.
set -euo pipefail
source "$(dirname "$0")/lib/bench_lib.bash"

foundation_ensure || bench_fail "could not load the foundation data set"
read -r TOK ORG USER_ID < <(foundation_token "$FOUNDATION_ORG") || bench_fail "could not mint a token"
[ -n "${USER_ID:-}" ] || bench_fail "no admin user for bench org $FOUNDATION_ORG"
echo "  tenant: bench org $FOUNDATION_ORG ($ORG), $BENCH_USERS_PER_ORG users"

# Same rows on both sides, and none without a verified context.
rls_ids=$(bq -d "$FOUNDATION_DB" -U "$BENCH_APP_ROLE" -v tok="$TOK" <<SQL
BEGIN;
SELECT saas.authenticate(:'tok') IS NOT NULL \g /dev/null
SELECT count(*) || ':' || md5(string_agg(id::text, ',' ORDER BY org_id, id))
  FROM (SELECT * FROM saas.users ORDER BY org_id, id LIMIT 50) p;
COMMIT;
SQL
) || bench_fail "the RLS query failed"
plain_ids=$(bq -d "$FOUNDATION_DB" -U "$BENCH_BYPASS_ROLE" -c "
	SELECT count(*) || ':' || md5(string_agg(id::text, ',' ORDER BY org_id, id))
	  FROM (SELECT * FROM saas.users WHERE org_id = '$ORG' ORDER BY org_id, id LIMIT 50) p") \
	|| bench_fail "the plain query failed"
no_ctx=$(bq -d "$FOUNDATION_DB" -U "$BENCH_APP_ROLE" -c "SELECT count(*) FROM (SELECT 1 FROM saas.users LIMIT 50) p")
[ "$rls_ids" = "$plain_ids" ] || bench_fail "RLS and plain pages differ: $rls_ids vs $plain_ids"
[ "${rls_ids%%:*}" = 50 ] || bench_fail "expected a page of 50 users, got ${rls_ids%%:*}"
[ "$no_ctx" = 0 ] || bench_fail "without a context the app role sees $no_ctx users (must be 0)"
echo "  checked: both sides return the same 50 users; without a context the app role sees 0"

bench_compare "rls:$BENCH_APP_ROLE:$BENCH_DIR/pgbench/rls_policy.sql" \
	"plain:$BENCH_BYPASS_ROLE:$BENCH_DIR/pgbench/rls_where.sql" \
	-D "tok=$TOK" -D "org=$ORG" || bench_fail "pgbench failed"

echo "  plan of the RLS query (role $BENCH_APP_ROLE, verified context):"
plan=$(bq -d "$FOUNDATION_DB" -U "$BENCH_APP_ROLE" -v tok="$TOK" <<SQL
BEGIN;
SELECT saas.authenticate(:'tok') IS NOT NULL \g /dev/null
EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, SUMMARY OFF)
SELECT $USER_COLUMNS FROM saas.users ORDER BY org_id, id LIMIT 50;
COMMIT;
SQL
) || bench_fail "EXPLAIN failed"
echo "$plan" | sed 's/^/    /'
if echo "$plan" | grep -q 'Index Scan using users_pkey' &&
	echo "$plan" | grep -q 'Index Cond: (org_id = saas.current_org_id())'; then
	echo "  the policy's org_id = saas.current_org_id() is an index condition on users_pkey"
else
	echo "  WARNING: the policy is not used as an index condition on users_pkey (see the plan above)"
fi

bench_figure rls_tps "$(fmt "$CMP_TPS_A" 1)"
bench_figure rls_plain_tps "$(fmt "$CMP_TPS_B" 1)"
bench_figure rls_ratio "$(fmt "$CMP_RATIO" 3)" "target<=1.10" "(per round: $CMP_RATIOS)"
