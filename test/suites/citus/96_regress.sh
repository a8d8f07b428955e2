# Part of test/suites/80_citus.sh (sourced): the pg_regress suites (sql/*.sql against
# expected/*.out, as suite 10_regress runs them) against the Citus coordinator, in a database
# of their own (regress_citus) made as docs/scale-out.md says: Citus on every node, the workers
# added, CREATE EXTENSION pg_saas, saas.distribute(). The answers must be the single node's:
# the same expected files, except where Citus answers differently by design (docs/scale-out.md,
# "Not yet"): such a file has its Citus answers in test/suites/citus/expected/NAME.out, compared
# with its answers here after regress_filter.sed (a shard's name, a run's ids), so that the
# difference is checked, not tolerated. Each suite file counts as one test.

REGRESS_CITUS_DB=regress_citus

# The suites' own SQL mixes reads across shards and writes of reference tables in one
# transaction, which Citus allows only one connection per node at a time: the setting
# docs/scale-out.md advises for such application SQL (the API sets it for its own work).
if ! citus_saas_db "$REGRESS_CITUS_DB" "ALTER DATABASE $REGRESS_CITUS_DB SET citus.multi_shard_modify_mode = 'sequential';"; then
	not_ok "the regress suites on the coordinator: cannot make $REGRESS_CITUS_DB (Citus, pg_saas, distribute)"
else
	rdir="$CITUS_WORK/regress"
	mkdir -p "$rdir"
	chown postgres "$rdir" 2>/dev/null || true
	rtests=$(cd "$PROJECT_ROOT/sql" && ls *.sql | sed 's/\.sql$//' | sort | tr '\n' ' ')
	# CITUS_REGRESS=auth,users runs 00_setup and those files only (while working on them).
	if [ -n "${CITUS_REGRESS:-}" ]; then
		rtests="00_setup $(echo "$CITUS_REGRESS" | tr ',' ' ')"
	fi
	(cd "$rdir" && "$(dirname "$(pg_config --pgxs)")/../test/regress/pg_regress" --use-existing \
		--host="$CITUS_DIR" --port="${CITUS_PORTS[0]}" --user=postgres \
		--inputdir="$PROJECT_ROOT" --outputdir="$rdir" --dbname="$REGRESS_CITUS_DB" \
		$rtests >"$rdir/pg_regress.out" 2>&1)
	# A suite file whose answers differ on Citus for a reason docs/scale-out.md lists is named
	# in regress_known.txt ("file: why"): it runs, and prints "# TODO" instead of failing.
	cexp="$PROJECT_ROOT/test/suites/citus/expected"
	for t in $rtests; do
		line=$(grep -E "^(ok|not ok|test) .* $t( |$)|[ ]$t +\.\.\." "$rdir/pg_regress.out" | head -1)
		known=$(sed -nE "s/^$t: (.*)/\1/p" "$PROJECT_ROOT/test/suites/citus/regress_known.txt")
		if [ -f "$cexp/$t.out" ]; then
			# Citus's own expected answers: pg_regress compared with the single node's; this
			# compares the filtered answers with Citus's (and a file that now answers as the
			# single node does has no business keeping a Citus expected file).
			sed -E -f "$PROJECT_ROOT/test/suites/citus/regress_filter.sed" "$rdir/results/$t.out" \
				>"$rdir/results/$t.citus.out" 2>/dev/null
			if echo "$line" | grep -qE '\.\.\. ok|^ok'; then
				not_ok "regress on Citus: $t (answers as a single node: remove test/suites/citus/expected/$t.out)"
			elif diff -U3 "$cexp/$t.out" "$rdir/results/$t.citus.out" >"$rdir/$t.citus.diff" 2>&1; then
				ok "regress on Citus: $t (Citus's expected answers)${known:+ # on regress_known.txt too: take it off}"
			else
				not_ok "regress on Citus: $t (Citus's expected answers)" "$(head -40 "$rdir/$t.citus.diff")"
			fi
			continue
		fi
		if echo "$line" | grep -qE '\.\.\. ok|^ok'; then
			ok "regress on Citus: $t${known:+ # known difference gone? take it off regress_known.txt}"
		elif [ -n "$known" ]; then
			echo "not ok - regress on Citus: $t # TODO known: $known"
		else
			not_ok "regress on Citus: $t" "$( (grep -A0 "^diff .*/$t.out" -A60 "$rdir/regression.diffs" 2>/dev/null || echo "$line") | head -40)"
		fi
	done
fi
