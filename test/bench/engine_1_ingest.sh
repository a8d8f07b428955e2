#!/usr/bin/env bash
# Bench: bulk webhook ingest through saas.ingest_webhook, against a plain INSERT of the same rows.
#
#   ingest side: saas.ingest_webhook('communication-service', headers, body), one call per batch
#                of ENGINE_INGEST_BATCH (1,000) message.sent events sent as a JSON array, signed
#                (Standard Webhooks v1) at bench time: verify the signature, parse and check every
#                event, map the organization, store each new event once.
#   plain side:  the same rows (the columns saas.webhook_events stores, the whole event as the
#                payload) as one INSERT ... VALUES (1,000 rows) ... ON CONFLICT DO NOTHING per batch
#                into a table made LIKE saas.webhook_events (same columns, defaults, primary key
#                and pending index, and the same foreign key to saas.organizations).
#   Both from psql, one statement per batch, one session per side and round;
#   ENGINE_INGEST_ROUNDS (4) rounds of ENGINE_INGEST_BATCHES (5) batches per side, the order
#   alternating (A B, B A, ...), after one warm-up batch per side. Every event id is new.
#
#   engine_ingest_ratio = ingest events/s / plain events/s   (target >= 0.7), the median of the
#   per-round ratios; engine_ingest_events_per_s and engine_ingest_plain_events_per_s are totals.
#
# The worker is held off while the sides run (a SHARE lock on saas.jobs from a session of the
# bench: its round takes its tables with conditional locks and skips), so that applying the
# events does not compete with either side; afterwards it is let go and the time it takes to
# apply every ingested event is reported too (engine_apply_events_per_s).
# Checked: every call accepted all its events and rejected none; both tables hold every row.
set -euo pipefail
source "$(dirname "$0")/engine/lib.bash"

ROUNDS=${ENGINE_INGEST_ROUNDS:-4}
BATCHES=${ENGINE_INGEST_BATCHES:-5}
SIZE=${ENGINE_INGEST_BATCH:-1000}

engine_setup
RUN=$(date +%s)
PLAIN=engine_bench.webhook_events_plain
drop_plain() {
	bq -c "DROP SCHEMA IF EXISTS engine_bench CASCADE" >/dev/null 2>&1
}
ENGINE_CLEANUPS+=(drop_plain)
bq -c "DROP SCHEMA IF EXISTS engine_bench CASCADE" -c "CREATE SCHEMA engine_bench" -c "
	CREATE TABLE $PLAIN (LIKE saas.webhook_events INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES,
		FOREIGN KEY (org_id) REFERENCES saas.organizations (id) ON DELETE CASCADE)" >/dev/null ||
	bench_fail "cannot create the plain table"

SECRET=$(bq -c "SELECT webhook_secret FROM saas.integrations WHERE service = 'communication-service'")
DIR="$BENCH_WORK/engine-ingest"
rm -rf "$DIR"
mkdir -p "$DIR"
python3 "$ENGINE_DIR/make_batches.py" "$DIR" "$RUN" "$ROUNDS" "$BATCHES" "$SIZE" "$ENGINE_ORG" \
	"$ENGINE_ORG_REF" "$SECRET" "$PLAIN" || bench_fail "cannot make the batches"
echo "  $ROUNDS rounds x $BATCHES batches x $SIZE events per side, signed now;" \
	"a batch is $(($(head -1 "$DIR/ingest-1.sql" | wc -c) / 1024)) kB of SQL (ingest), $(($(head -1 "$DIR/plain-1.sql" | wc -c) / 1024)) kB (plain)"

# run_side SIDE ROUND: one psql session runs the round's file; echoes its wall time in seconds.
run_side() {
	local file="$DIR/$1-$2.sql" out="$DIR/$1-$2.out" a b
	a=$(now_s)
	bq -f "$file" >"$out" || { cat "$out" >&2; return 1; }
	b=$(now_s)
	if [ "$1" = ingest ]; then
		local bad
		bad=$(grep -vc "^$SIZE|0\$" "$out" || true)
		[ "$bad" = 0 ] || { echo "ingest answers not $SIZE accepted / 0 rejected:" >&2; sort "$out" | uniq -c >&2; return 1; }
	fi
	awk -v a="$a" -v b="$b" 'BEGIN { print b - a }'
}

engine_pause_worker
echo "  worker held off (SHARE lock on saas.jobs) while the sides run"
run_side ingest 0 >/dev/null || bench_fail "ingest warm-up failed"
run_side plain 0 >/dev/null || bench_fail "plain warm-up failed"
sum_i=0 sum_p=0 ratios=""
for ((r = 1; r <= ROUNDS; r++)); do
	if ((r % 2)); then order="plain ingest"; else order="ingest plain"; fi
	for side in $order; do
		t=$(run_side "$side" "$r") || bench_fail "$side round $r failed"
		if [ "$side" = ingest ]; then ti=$t; else tp=$t; fi
	done
	n=$((BATCHES * SIZE))
	sum_i=$(awk -v s="$sum_i" -v t="$ti" 'BEGIN { print s + t }')
	sum_p=$(awk -v s="$sum_p" -v t="$tp" 'BEGIN { print s + t }')
	ratios="$ratios $(awk -v a="$ti" -v b="$tp" 'BEGIN { printf "%.3f", b / a }')"
	echo "  round $r/$ROUNDS ($order): ingest $(awk -v n="$n" -v t="$ti" 'BEGIN { printf "%.0f", n / t }') events/s," \
		"plain $(awk -v n="$n" -v t="$tp" 'BEGIN { printf "%.0f", n / t }') events/s"
done
total=$((ROUNDS * BATCHES * SIZE))
expect=$((total + SIZE))
read -r got_i got_p < <(bq -F ' ' -c "
	SELECT (SELECT count(*) FROM saas.webhook_events WHERE org_id = '$ENGINE_ORG' AND event_id LIKE 'evt\\_eb\\_${RUN}\\_%'),
		   (SELECT count(*) FROM $PLAIN WHERE org_id = '$ENGINE_ORG')")
[ "$got_i" = "$expect" ] && [ "$got_p" = "$expect" ] ||
	bench_fail "saas.webhook_events holds $got_i and the plain table $got_p rows, not $expect"
echo "  checked: every call accepted $SIZE and rejected 0; both tables hold the $expect rows"
ingest_eps=$(awk -v n="$total" -v t="$sum_i" 'BEGIN { print n / t }')
plain_eps=$(awk -v n="$total" -v t="$sum_p" 'BEGIN { print n / t }')
ratio=$(echo "$ratios" | tr ' ' '\n' | grep . | sort -g |
	awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
echo "  per-round ratios:$ratios"

# The worker applies what was ingested.
bq -c "VACUUM (ANALYZE) saas.webhook_events" >/dev/null
a=$(now_s)
engine_resume_worker
deadline=$((SECONDS + ${ENGINE_APPLY_TIMEOUT:-300}))
while :; do
	left=$(bq -c "SELECT count(*) FROM saas.webhook_events WHERE org_id = '$ENGINE_ORG' AND applied_at IS NULL")
	[ "$left" = 0 ] && break
	[ "$SECONDS" -ge "$deadline" ] && bench_fail "$left events not applied after ${ENGINE_APPLY_TIMEOUT:-300} s"
	sleep 0.2
done
b=$(bq -c "SELECT extract(epoch FROM max(applied_at)) FROM saas.webhook_events WHERE org_id = '$ENGINE_ORG'")
bad=$(bq -c "SELECT count(*) FROM saas.webhook_events WHERE org_id = '$ENGINE_ORG' AND apply_result IS DISTINCT FROM 'applied'")
notes=$(bq -c "SELECT count(*) FROM saas.notifications WHERE org_id = '$ENGINE_ORG'")
[ "$bad" = 0 ] && [ "$notes" = "$expect" ] ||
	bench_fail "after applying: $bad events not 'applied', $notes notifications (expected $expect)"
apply_eps=$(awk -v n="$expect" -v a="$a" -v b="$b" 'BEGIN { print n / (b - a) }')
echo "  the worker applied the $expect events in $(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.1f", b - a }') s" \
	"(checked: each 'applied', one notification each)"

bench_figure engine_ingest_events_per_s "$(fmt "$ingest_eps" 0)" "" "saas.ingest_webhook, batches of $SIZE"
bench_figure engine_ingest_plain_events_per_s "$(fmt "$plain_eps" 0)" "" "INSERT ... ON CONFLICT DO NOTHING, same rows"
bench_figure engine_ingest_ratio "$ratio" "target>=0.7" "median of per-round ratios"
bench_figure engine_apply_events_per_s "$(fmt "$apply_eps" 0)" "" "the worker applying message.sent events"
