#!/usr/bin/env bash
# Bench: does POST /auth/password-reset take as long for an unknown email as for a known one?
#
# Through saas.http (as the relay calls it, role app), alternately for an email with an active
# account and for one without, each request its own transaction (a procedure that COMMITs),
# BENCH_RESET_N requests of each (default 400): the median time of each kind, and
#
#   reset_timing_ratio = median(unknown) / median(known)   (target >= 0.9: the same work)
#
# docs/security.md ("Password reset timing") has the figures before and after the decoy
# (src/api/password_reset_ops.c). The reset rate limits (reset_email, reset_ip) are raised
# out of reach in this database first: a 429 measures nothing. No timed assertion: a ratio
# that misses its target is reported; the bench fails only when it cannot measure.
set -euo pipefail
source "$(dirname "$0")/lib/bench_lib.bash"

N=${BENCH_RESET_N:-400}
DB=${BENCH_DB:-saas_bench}
KNOWN="reset-bench-known@bench.test"

bq -d "$DB" >/dev/null <<SQL || bench_fail "setup failed"
UPDATE saas.rate_limits SET requests_per_minute = 60000000, burst = 1000000
 WHERE scope IN ('reset_email', 'reset_ip');
DO \$\$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM saas.users WHERE org_id = saas.platform_org_id()) THEN
		PERFORM saas.create_super_admin('reset-bench-operator@bench.test', 'Bench-operator-pw-1');
	END IF;
END
\$\$;
SQL

reg=$(bq -d "$DB" -U "${BENCH_APP_ROLE:-app}" -c "
	SELECT status FROM saas.http('POST', '/auth/register',
		'{\"content-type\":\"application/json\",\"x-client-addr\":\"127.0.0.1\"}'::jsonb,
		'{\"organization\":{\"name\":\"Reset bench\"},\"email\":\"$KNOWN\",\"password\":\"Reset-bench-pw-1\",\"first_name\":\"Reset\",\"last_name\":\"Bench\"}')")
[ "$reg" = 201 ] || [ "$reg" = 409 ] || bench_fail "could not register the known account ($reg)"

out=$(bq -d "$DB" <<SQL
CREATE TEMP TABLE reset_t (kind text, ms float8);
GRANT ALL ON reset_t TO ${BENCH_APP_ROLE:-app};
CREATE PROCEDURE pg_temp.reset_bench(n int, known text)
LANGUAGE plpgsql AS \$\$
DECLARE
	t0 timestamptz;
	st int;
	k text;
	hdr jsonb := '{"content-type":"application/json","x-client-addr":"127.0.0.1"}';
BEGIN
	FOR i IN 1 .. 2 * n LOOP
		k := CASE WHEN i % 2 = 0 THEN 'known' ELSE 'unknown' END;
		t0 := clock_timestamp();
		SELECT status INTO st FROM saas.http('POST', '/auth/password-reset', hdr,
			pg_catalog.jsonb_build_object('email', CASE WHEN k = 'known' THEN known
				ELSE 'nobody-' || i || '@bench.test' END)::text);
		INSERT INTO reset_t VALUES (k, extract(epoch FROM clock_timestamp() - t0) * 1000);
		IF st <> 202 THEN
			RAISE EXCEPTION 'answer %', st;
		END IF;
		COMMIT;
	END LOOP;
END
\$\$;
SET ROLE ${BENCH_APP_ROLE:-app};
CALL pg_temp.reset_bench($N, '$KNOWN');
RESET ROLE;
SELECT string_agg(kind || ' ' || round(m::numeric, 4), ' ' ORDER BY kind)
  FROM (SELECT kind, percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS m FROM reset_t GROUP BY kind) s;
SQL
) || bench_fail "the requests failed: $out"
read -r _ known_ms _ unknown_ms <<<"$out"
echo "  $N requests of each kind, alternating; medians in ms: known $known_ms, unknown $unknown_ms"
bench_figure reset_known_ms "$known_ms"
bench_figure reset_unknown_ms "$unknown_ms"
bench_figure reset_timing_ratio "$(fmt "$(awk -v a="$unknown_ms" -v b="$known_ms" 'BEGIN { print a / b }')" 2)" "target>=0.9"
