# Part of test/suites/80_citus.sh (sourced, after saas.distribute()): where every table went,
# isolation on the worker nodes, and router queries.

# Every table of the saas schema with an org_id column (but _user_refs and _user_emails, the
# platform-wide directories of external user ids and emails) is hash-distributed by it, colocated with saas.users; the platform-wide
# tables are reference tables.
t_eq "every tenant table (22, the job queue, the audit outbox and the identity tables too) is distributed by org_id, colocated with saas.users" 0 "22|0" \
	-c "SELECT count(*), count(*) FILTER (WHERE d.partmethod IS DISTINCT FROM 'h'
			OR column_to_column_name(d.logicalrelid, d.partkey) <> 'org_id'
			OR d.colocationid <> (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = 'saas.users'::regclass))
		  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'org_id'
		  LEFT JOIN pg_dist_partition d ON d.logicalrelid = c.oid
		 WHERE c.relnamespace = 'saas'::regnamespace AND c.relkind = 'r' AND c.oid NOT IN ('saas._user_refs'::regclass, 'saas._user_emails'::regclass)"
# Citus 12.1 copies a table's policies to its shards without AS RESTRICTIVE; part 97 makes them
# restrictive again on every node (a permissive copy would OR the API-key scope policies with the
# tenant policies: every tenant's rows to anyone).
t_eq "every restrictive policy stays restrictive on every shard placement, on both workers" 0 \
	"0 0 (of more than 100 shard policies each)" \
	-c "SELECT string_agg(result, ' ' ORDER BY nodeport) || ' (of more than 100 shard policies each)' FROM run_command_on_workers(\$q\$
		SELECT count(*) FILTER (WHERE sp.polpermissive) || CASE WHEN count(*) > 100 THEN '' ELSE ' too few' END
		  FROM pg_policy sp JOIN pg_class sc ON sc.oid = sp.polrelid
		  JOIN pg_class bc ON bc.relnamespace = sc.relnamespace AND sc.relname ~ ('^' || bc.relname || '_[0-9]+\$')
		  JOIN pg_policy bp ON bp.polrelid = bc.oid AND bp.polname = sp.polname AND NOT bp.polpermissive
		 WHERE sc.relnamespace = 'saas'::regnamespace\$q\$)"
t_eq "organizations, _user_refs, _user_emails, _signing_keys, integrations and rate_limits are reference tables" 0 \
	"_signing_keys,_user_emails,_user_refs,integrations,organizations,rate_limits" \
	-c "SELECT string_agg(c.relname, ',' ORDER BY c.relname) FROM pg_dist_partition d JOIN pg_class c ON c.oid = d.logicalrelid
		 WHERE d.partmethod = 'n' AND d.repmodel = 't' AND c.relnamespace = 'saas'::regnamespace"
t_eq "the rows written before distribute() are all still there" 0 "9|11|3|1|1|3" \
	-c "SELECT (SELECT count(*) FROM saas.organizations), (SELECT count(*) FROM saas.users),
			   (SELECT count(*) FROM saas._credentials), (SELECT count(*) FROM saas._signing_keys),
			   (SELECT count(*) FROM saas.users WHERE role = 'super_admin'), (SELECT count(*) FROM saas.integrations)"
t_eq "the users' shards are spread over both workers" 0 "2" \
	-c "SELECT count(DISTINCT nodeport) FROM pg_dist_shard_placement p JOIN pg_dist_shard s USING (shardid)
		 WHERE s.logicalrelid = 'saas.users'::regclass"

# ---- Isolation on the workers.
for n in 1 2; do
	t_eq "worker $n: the superuser sees tenant rows in its shards (the probe below is not empty)" "$n" "t" \
		-c "SET citus.override_table_visibility = off" \
		-c "SELECT sum((xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM saas.%I', c.relname), false, true, '')))[1]::text::int) > 0
			  FROM pg_dist_shard s JOIN pg_class c ON c.relname = 'users_' || s.shardid AND c.relnamespace = 'saas'::regnamespace
			 WHERE s.logicalrelid = 'saas.users'::regclass"
	t_eq "worker $n: every shard keeps RLS, FORCE and its policies" "$n" "t|0" \
		-c "SET citus.override_table_visibility = off" \
		-c "SELECT count(*) > 0, count(*) FILTER (WHERE NOT (c.relrowsecurity AND c.relforcerowsecurity)
					OR NOT EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid))
			  FROM pg_dist_shard s JOIN pg_class l ON l.oid = s.logicalrelid
			  JOIN pg_class c ON c.relname = l.relname || '_' || s.shardid AND c.relnamespace = l.relnamespace
			 WHERE l.relnamespace = 'saas'::regnamespace"
	got=$(psql -X -q -At -h "$CITUS_DIR" -p "${CITUS_PORTS[$n]}" -U app -d "$CITUS_DB" \
		-c "SET citus.override_table_visibility = off" \
		-c "SELECT count(*) FROM saas.users" -c "SELECT count(*) FROM saas.organizations" 2>&1)
	if [ "$got" == $'0\n0' ]; then ok "worker $n: app without a context sees no user and no organization"
	else not_ok "worker $n: app without a context sees no user and no organization" "$got"; fi
	# Every users shard on this worker, read directly by app: no row.
	shards=$(cpsql "$n" -c "SET citus.override_table_visibility = off" \
		-c "SELECT string_agg(format('(SELECT count(*) FROM saas.%I)', c.relname), ' + ')
			  FROM pg_dist_shard s JOIN pg_class c ON c.relname = 'users_' || s.shardid AND c.relnamespace = 'saas'::regnamespace
			 WHERE s.logicalrelid = 'saas.users'::regclass")
	got=$(psql -X -q -At -h "$CITUS_DIR" -p "${CITUS_PORTS[$n]}" -U app -d "$CITUS_DB" -c "SELECT $shards" 2>&1)
	if [ "$got" == "0" ]; then ok "worker $n: app reading its users shards directly sees no row"
	else not_ok "worker $n: app reading its users shards directly sees no row" "$got"; fi
	t_error "worker $n: app cannot read the credentials' shards at all" 42501 \
		-h "$CITUS_DIR" -p "${CITUS_PORTS[$n]}" -U app -d "$CITUS_DB" -c "SELECT count(*) FROM saas._credentials"
done

# A single-tenant query is a router query: one task, on one node.
t_tasks "a single-tenant users page is routed to one shard" 1 \
	"SELECT * FROM saas.users WHERE org_id = '00000000-0000-4000-8000-000000000003' ORDER BY id LIMIT 50"
t_tasks "a join of colocated tenant tables for one tenant is routed to one shard" 1 \
	"SELECT u.id, c.updated_at FROM saas.users u JOIN saas._credentials c ON c.org_id = u.org_id AND c.user_id = u.id
	  WHERE u.org_id = '00000000-0000-4000-8000-000000000003'"
t_tasks "a page of the audit log of one tenant is routed to one shard" 1 \
	"SELECT * FROM saas.audit_log WHERE org_id = '00000000-0000-4000-8000-000000000003' ORDER BY seq DESC LIMIT 50"
