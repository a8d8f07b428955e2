#!/usr/bin/env bash
# Bench: what the API layer costs over the SQL it runs, for GET /users?limit=50.
#
#   API side   (role app): SELECT status, headers, body FROM saas.http('GET', '/users?limit=50',
#              <headers as the relay sends them, with Authorization: Bearer tok>, NULL)
#              = route, verify the JWT, set the context, run the list query under RLS, and
#              write the page as JSON; one statement per request, as the relay runs it.
#   plain side (role bench_bypass): the same rows and columns by an explicit WHERE, one statement.
#
#   http_ratio = tps_http / tps_plain   (target >= 0.6), the median of the per-round ratios;
#   http_tps and http_plain_tps are the mean TPS of each side.
#
# The per-user rate limit of the bench org's tier is raised out of reach first (the limiter
# still runs on every request). Same pgbench settings as 20_rls (-M prepared, BENCH_CLIENTS,
# BENCH_SECONDS, BENCH_ROUNDS).
# Also prints, for diagnosis: the plan of the query saas.http runs (auto_explain), and the
# throughput of the API side with plan_cache_mode = force_generic_plan, which shows how much
# of a request goes into planning its saved SPI plan again on every call.
set -euo pipefail
source "$(dirname "$0")/lib/bench_lib.bash"

foundation_ensure || bench_fail "could not load the foundation data set"
read -r TOK ORG USER_ID < <(foundation_token "$FOUNDATION_ORG") || bench_fail "could not mint a token"
[ -n "${USER_ID:-}" ] || bench_fail "no admin user for bench org $FOUNDATION_ORG"
METHOD=GET
URLPATH='/users?limit=50'
HDR="{\"host\":\"127.0.0.1:8080\",\"user-agent\":\"pg_saas-bench\",\"accept\":\"*/*\",\"authorization\":\"Bearer $TOK\",\"x-client-addr\":\"127.0.0.1\",\"x-request-id\":\"bench-0001\"}"
echo "  tenant: bench org $FOUNDATION_ORG ($ORG); request: $METHOD $URLPATH as its admin"

# saas.http limits each user's requests (saas.rate_limits, per tier: enterprise 12,000/min).
# One user at full speed would be refused within a second, and a 429 measures nothing: the
# bench raises its tier's per-user limit out of reach, so the limiter still counts every
# request (its cost is in the figure) but never refuses one. (60,000,000/min, not the
# table's maximum of 100,000,000: above 60,000,000 the emission interval rounds to 0 us and
# every request of the tier fails with a floating-point exception, src/ratelimit.c.)
rl=$(bq -d "$FOUNDATION_DB" -c "
	DO \$\$
	BEGIN
		IF pg_catalog.to_regclass('saas.rate_limits') IS NOT NULL THEN
			UPDATE saas.rate_limits SET requests_per_minute = 60000000, burst = 1000000
			 WHERE scope = 'user' AND tier IN ('enterprise', '*');
			RAISE WARNING 'bench: per-user rate limit of the enterprise tier raised to 60,000,000/min for this run';
		END IF;
	END
	\$\$" 2>&1) || bench_fail "could not raise the rate limit: $rl"
echo "$rl" | sed -n 's/^WARNING:  bench: /  /p'

# The API answers 200 with the same 50 users the plain query reads.
api=$(bq -d "$FOUNDATION_DB" -U "$BENCH_APP_ROLE" -v hdr="$HDR" -v path="$URLPATH" <<'SQL'
SELECT CASE WHEN status = 200
			THEN status || ':' || (SELECT count(*) || ':' || md5(string_agg(u->>'id', ',' ORDER BY ord))
									 FROM jsonb_array_elements(body::jsonb->'data') WITH ORDINALITY AS e(u, ord))
			ELSE status || ' ' || left(body, 300) END
  FROM saas.http('GET', :'path', :'hdr'::jsonb, NULL);
SQL
) || bench_fail "saas.http failed"
plain=$(bq -d "$FOUNDATION_DB" -U "$BENCH_BYPASS_ROLE" -c "
	SELECT '200:' || count(*) || ':' || md5(string_agg(id::text, ',' ORDER BY org_id, id))
	  FROM (SELECT id, org_id FROM saas.users WHERE org_id = '$ORG' ORDER BY org_id, id LIMIT 50) p") \
	|| bench_fail "the plain query failed"
[ "$api" = "$plain" ] || bench_fail "saas.http answered '$api', expected '$plain' (status:rows:md5 of ids)"
bytes=$(bq -d "$FOUNDATION_DB" -U "$BENCH_APP_ROLE" -v hdr="$HDR" -v path="$URLPATH" <<'SQL'
SELECT octet_length(body) FROM saas.http('GET', :'path', :'hdr'::jsonb, NULL);
SQL
)
echo "  checked: 200 with the same 50 users as the plain query (body $bytes bytes)"

bench_compare "plain:$BENCH_BYPASS_ROLE:$BENCH_DIR/pgbench/http_plain.sql" \
	"http:$BENCH_APP_ROLE:$BENCH_DIR/pgbench/http_api.sql" \
	-D "method=$METHOD" -D "path=$URLPATH" -D "hdr=$HDR" -D "org=$ORG" || bench_fail "pgbench failed"
TPS_PLAIN=$CMP_TPS_A
TPS_HTTP=$CMP_TPS_B
HTTP_RATIO=$CMP_RATIO
HTTP_RATIOS=$CMP_RATIOS

# Diagnosis 1: the plan of the list query inside saas.http (after 6 calls, when the plan cache
# has decided between a custom and a generic plan).
echo "  plan of the query saas.http runs for this request (auto_explain, 7th call in the session):"
psql -X -q -At -d "$FOUNDATION_DB" -v hdr="$HDR" -v path="$URLPATH" -v app="$BENCH_APP_ROLE" \
	>"$BENCH_WORK/http_plan.txt" 2>&1 <<'SQL' || bench_fail "auto_explain run failed"
LOAD 'auto_explain';
SET auto_explain.log_min_duration = -1;
SET auto_explain.log_nested_statements = on;
SET auto_explain.log_analyze = on;
SET auto_explain.log_buffers = on;
SET auto_explain.log_timing = off;
SET auto_explain.log_level = notice;
SET ROLE :app;
SELECT count(*) FROM generate_series(1, 6), LATERAL saas.http('GET', :'path', :'hdr'::jsonb, NULL) h \g /dev/null
RESET ROLE;
SET auto_explain.log_min_duration = 0;
SET ROLE :app;
SELECT status FROM saas.http('GET', :'path', :'hdr'::jsonb, NULL) \g /dev/null
SQL
awk '/duration:/ { show = 0 } /Query Text:.*FROM saas.users/ { show = 1 } show' "$BENCH_WORK/http_plan.txt" |
	sed 's/^/    /' | head -20

# Diagnosis 2: the API side against itself with generic plans forced for the whole session.
DIAG_SECONDS=$(( (BENCH_SECONDS + 1) / 2 ))
echo "  diagnosis: API side, plan_cache_mode auto vs force_generic_plan"
BENCH_ROUNDS=2 BENCH_SECONDS=$DIAG_SECONDS BENCH_WARMUP_SECONDS=1 \
	bench_compare "auto:$BENCH_APP_ROLE:$BENCH_DIR/pgbench/http_api.sql" \
	"generic:$BENCH_APP_ROLE:$BENCH_DIR/pgbench/http_api.sql:-c plan_cache_mode=force_generic_plan" \
	-D "method=$METHOD" -D "path=$URLPATH" -D "hdr=$HDR" || bench_fail "pgbench failed"
GENERIC_SPEEDUP=$CMP_RATIO

bench_figure http_tps "$(fmt "$TPS_HTTP" 1)"
bench_figure http_plain_tps "$(fmt "$TPS_PLAIN" 1)"
bench_figure http_ratio "$(fmt "$HTTP_RATIO" 3)" "target>=0.6" "(per round: $HTTP_RATIOS)"
bench_figure http_generic_plan_speedup "$(fmt "$GENERIC_SPEEDUP" 3)"
