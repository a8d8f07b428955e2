# Backup and restore (docs/operations.md): a database filled through the API (the relay,
# the worker calling saas-sim) is dumped with pg_dump, plain and custom format, and restored
# into fresh clusters whose worker serves the restored database, as the operations guide
# says (PGOPTIONS='-c session_replication_role=replica'). Each restore brings back every row
# of the extension's tables (the changed seeded configuration merged, not colliding), adds
# no audit entry and no job, verifies every audit chain, and its worker sends nothing again;
# the API works on it: old passwords log in, a token of the old database still verifies (the
# signing keys are restored), a logged-out one stays refused, new changes are audited on the
# same chains and pushed once. A restore run without the setting is refused at CREATE
# EXTENSION and loads nothing of the extension.
use strict;
use warnings;
use FindBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
BEGIN { require "$FindBin::RealBin/saas_tap_lib.pl"; }

my $src = saas_node('dumpsrc');
my $relay = start_relay($src);
my $sim = start_sim();
point_integrations($src, $sim, 'timeout_ms = 3000, base_backoff_ms = 200, max_backoff_seconds = 2');

# 1. Data through the API: two organizations, users made, changed, deleted, a password
# changed, a token logged out; the worker pushes each change to the services.
sub api
{
	my ($relay, $method, $path, $tok, $body, $want, $what) = @_;
	my $r = http($method, "$relay->{url}$path", $body, $tok ? { authorization => "Bearer $tok" } : {});
	die "$what: $method $path answered $r->{status}: $r->{body}" unless $r->{status} == $want;
	return $r->{json} // {};
}
my $alpha = api($relay, 'POST', '/auth/register', undef, { organization => { name => 'Dump Alpha', slug => 'dump-alpha' },
	email => 'ada@alpha.test', password => 'correct horse battery', first_name => 'Ada', last_name => 'Alpha' }, 201, 'register');
my $beta = api($relay, 'POST', '/auth/register', undef, { organization => { name => 'Dump Beta', slug => 'dump-beta' },
	email => 'bo@beta.test', password => 'correct horse battery', first_name => 'Bo', last_name => 'Beta' }, 201, 'register');
my $cy = api($relay, 'POST', '/users', $alpha->{token}, { email => 'cy@alpha.test', first_name => 'Cy', last_name => 'Alpha',
	role => 'user', password => 'cy password one' }, 201, 'create user');
api($relay, 'PUT', "/users/$cy->{id}", $alpha->{token}, { last_name => 'Alphason' }, 200, 'update user');
my $dee = api($relay, 'POST', '/users', $alpha->{token}, { email => 'dee@alpha.test', first_name => 'Dee', last_name => 'Gone',
	role => 'user' }, 201, 'create user');
api($relay, 'DELETE', "/users/$dee->{id}", $alpha->{token}, undef, 204, 'delete user');
my $cy_tok = api($relay, 'POST', '/auth/login', undef, { email => 'cy@alpha.test', password => 'cy password one' }, 200, 'login')->{token};
api($relay, 'PUT', "/users/$cy->{id}", $cy_tok, { password => 'cy password two', current_password => 'cy password one' }, 200, 'password');
my $gone_tok = api($relay, 'POST', '/auth/login', undef, { email => 'bo@beta.test', password => 'correct horse battery' }, 200, 'login')->{token};
api($relay, 'POST', '/auth/logout', $gone_tok, undef, 204, 'logout');
# An operator's changes of seeded configuration, which a restore must keep.
$src->safe_psql('postgres', q{
	UPDATE saas.rate_limits SET burst = 61 WHERE tier = 'free' AND scope = 'user';
	INSERT INTO saas.rate_limits VALUES ('starter', 'auth_ip', 99, 9);});

ok(wait_for($src, q{SELECT count(*) FILTER (WHERE state NOT IN ('succeeded', 'dead')) || ' ' || (count(*) > 0)::text FROM saas.jobs}, '0 true', 60),
	'the worker has run every job of the source database');
my $requests = sim_requests($sim);
note("services' writes after the source's jobs: $requests");

# The comparable content of every table pg_dump dumps (pg_extension_config_dump): the
# signing keys by kid (a restore adds the key its CREATE EXTENSION makes).
sub content
{
	my ($node) = @_;
	return q1($node, q{
		SELECT string_agg(t || ': ' || n, E'\n' ORDER BY t) FROM (
			SELECT c.oid::regclass::text AS t,
				   (xpath('//x/text()', query_to_xml(format(
						'SELECT count(*) || '' '' || coalesce(md5(string_agg(r::text, '','' ORDER BY r::text)), '''') AS x FROM %s r',
						c.oid::regclass), false, false, '')))[1]::text AS n
			  FROM pg_extension e, unnest(e.extconfig) AS c(oid)
			 WHERE e.extname = 'pg_saas' AND c.oid <> 'saas._signing_keys'::regclass) s});
}
my $content = content($src);
like($content, qr/^saas\.users: 3 [0-9a-f]{32}$/m, 'the comparison sees the rows (saas.users: 3 of them)');
my $kids = q1($src, q{SELECT string_agg(kid, ',' ORDER BY kid) FROM saas._signing_keys});
my $audit = q1($src, q{SELECT count(*) || ' ' || md5(string_agg(hash::text, ',' ORDER BY org_id, seq)) FROM saas.audit_log});
note("source content:\n$content");

# 2. The dumps. The source is stopped afterwards: only a restored worker can call the services.
my $dir = PostgreSQL::Test::Utils::tempdir();
command_ok([ 'pg_dump', '-d', $src->connstr('postgres'), '-f', "$dir/saas.sql" ], 'pg_dump, plain format');
command_ok([ 'pg_dump', '-Fc', '-d', $src->connstr('postgres'), '-f', "$dir/saas.dump" ], 'pg_dump, custom format');
stop_child($relay->{harness});
$src->stop;

# A cluster like saas_node's, its worker serving "postgres", without the extension yet.
sub empty_node
{
	my ($name) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf', join("\n",
		"shared_preload_libraries = 'pg_saas'", "saas.database = 'postgres'",
		"log_statement = none", "log_min_messages = warning", "max_connections = 40", "jit = off", ''));
	$node->start;
	return $node;
}

# 3. Without session_replication_role = replica, a restore is refused before any row loads.
my $refuse = empty_node('refused');
my ($rc, $out, $err);
$rc = IPC::Run::run([ 'psql', '-X', '-d', $refuse->connstr('postgres'), '-f', "$dir/saas.sql" ], '>', \$out, '2>', \$err);
like($err, qr/pg_saas cannot be restored with its triggers firing/, 'a plain restore without the setting: CREATE EXTENSION refuses');
is(q1($refuse, q{SELECT count(*) FROM pg_extension WHERE extname = 'pg_saas'}), '0', '...and nothing of the extension is there');
$refuse->safe_psql('postgres', 'CREATE DATABASE custom_try');
$rc = IPC::Run::run([ 'pg_restore', '-d', $refuse->connstr('custom_try'), "$dir/saas.dump" ], '>', \$out, '2>', \$err);
like($err, qr/pg_saas cannot be restored with its triggers firing/, 'pg_restore without the setting: refused the same way');
# A data-only restore into a database that has the extension: refused at the first tenant row.
$refuse->safe_psql('postgres', 'CREATE DATABASE data_only_try');
$refuse->safe_psql('data_only_try', 'SET client_min_messages = error; CREATE EXTENSION pg_saas');
$rc = IPC::Run::run([ 'pg_restore', '--data-only', '-d', $refuse->connstr('data_only_try'), "$dir/saas.dump" ], '>', \$out, '2>', \$err);
like($err, qr/pg_saas cannot be restored with its triggers firing/, 'a data-only restore without the setting: refused too');
is($refuse->safe_psql('data_only_try', q{SELECT (SELECT count(*) FROM saas.organizations) || ' ' || (SELECT count(*) FROM saas.users)
	|| ' ' || (SELECT count(*) FROM saas.audit_log WHERE actor_id IS NULL AND action = 'create') || ' ' || (SELECT count(*) FROM saas.jobs)}),
	'0 0 0 0', '...no organization, user, audit entry or job came in');
is($refuse->safe_psql('data_only_try', q{SELECT count(*) FROM saas.audit_log}), '0', '...nor any row of the dumped audit log');
$refuse->stop;

# 4. The restores, as docs/operations.md says.
my %restore = (
	plain => [ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', "$dir/saas.sql" ],
	custom => [ 'pg_restore', '--exit-on-error', "$dir/saas.dump" ]);
for my $format (qw(plain custom))
{
	my $node = empty_node("restored_$format");
	{
		local $ENV{PGOPTIONS} = '-c session_replication_role=replica';
		my @cmd = @{ $restore{$format} };
		splice(@cmd, 1, 0, '-d', $node->connstr('postgres'));
		command_ok(\@cmd, "$format: the restore succeeds");
	}
	is(content($node), $content, "$format: every row of the extension's tables is back, seeded configuration merged");
	is(q1($node, q{SELECT string_agg(tier || ':' || scope || ':' || burst, ',' ORDER BY 1) FROM saas.rate_limits
		WHERE (tier, scope) IN (('free', 'user'), ('starter', 'auth_ip'))}), 'free:user:61,starter:auth_ip:9',
		"$format: the operator's rate limits, not the seeded ones");
	is(q1($node, q{SELECT count(*) FROM saas._signing_keys WHERE kid = ANY (string_to_array('} . $kids . q{', ','))}),
		scalar(split /,/, $kids), "$format: the signing keys are restored");
	is(q1($node, q{SELECT count(*) || ' ' || md5(string_agg(hash::text, ',' ORDER BY org_id, seq)) FROM saas.audit_log}),
		$audit, "$format: no audit entry added");
	is(q1($node, q{SELECT count(*) FILTER (WHERE v.ok) || '/' || count(*) FROM saas._audit_heads h, LATERAL saas.audit_verify(h.org_id) v}),
		'2/2', "$format: both audit chains verify");
	ok(wait_for($node, q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_saas worker' AND datname = 'postgres'}, '1', 20),
		"$format: the worker serves the restored database");
	sleep 4;
	is(sim_requests($sim), $requests, "$format: the worker sent nothing again");
	is(q1($node, q{SELECT count(*) FILTER (WHERE state <> 'succeeded') || '/' || count(*) FROM saas.jobs}),
		'0/' . q1($node, q{SELECT count(*) FROM saas.jobs}), "$format: no job queued again");

	# The API on the restored database.
	my $r = start_relay($node);
	is(http('POST', "$r->{url}/auth/login", { email => 'cy@alpha.test', password => 'cy password two' })->{status}, 200,
		"$format: a password of the old database logs in");
	is(http('POST', "$r->{url}/auth/login", { email => 'cy@alpha.test', password => 'cy password one' })->{status}, 401,
		"$format: the password it replaced does not");
	is(http('GET', "$r->{url}/users", undef, { authorization => "Bearer $alpha->{token}" })->{status}, 200,
		"$format: a token of the old database verifies (its signing key was restored)");
	is(http('GET', "$r->{url}/users", undef, { authorization => "Bearer $gone_tok" })->{status}, 401,
		"$format: a token logged out in the old database stays refused");
	my $jobs = q1($node, q{SELECT count(*) FROM saas.jobs});
	my $before = q1($node, qq{SELECT last_seq FROM saas._audit_heads WHERE org_id = '$alpha->{organization}{id}'});
	my $new = http('POST', "$r->{url}/users", { email => "new.$format\@alpha.test", first_name => 'New', last_name => 'Comer',
		role => 'user' }, { authorization => "Bearer $alpha->{token}" });
	is($new->{status}, 201, "$format: a new user is created");
	is(q1($node, qq{SELECT string_agg(action || ' ' || entity, ',' ORDER BY seq) FILTER (WHERE action = 'create')
		|| ' ' || (SELECT bool_and(ok) FROM saas.audit_verify('$alpha->{organization}{id}'))
		FROM saas.audit_log WHERE org_id = '$alpha->{organization}{id}' AND seq > $before}), 'create user true',
		"$format: ...audited on the restored chain, once, which still verifies");
	ok(wait_for($node, qq{SELECT count(*) > $jobs AND count(*) FILTER (WHERE state <> 'succeeded') = 0 FROM saas.jobs}, 't', 30),
		"$format: ...and pushed by the restored worker");
	# Now that the worker has surely worked on the restored database: the services received
	# the new jobs' calls and nothing else.
	sleep 2;
	is(sim_requests($sim) - $requests, q1($node, q{SELECT count(*) FROM saas.jobs}) - $jobs,
		"$format: the services received one write per new job, none for a restored one");
	$requests = sim_requests($sim);
	stop_child($r->{harness});
	$node->stop;
}

# The writes the services received so far: a call that took effect, or one sent again with an
# idempotency key already seen (a replay or a conflict). The pull sync's reads are not writes.
sub sim_requests
{
	my ($sim) = @_;
	my $n = 0;
	for my $svc (qw(user-service payment-service communication-service))
	{
		my $st = sim_stats($sim, $svc);
		$n += ($st->{effects} // 0) + ($st->{idempotent_replays} // 0) + ($st->{idempotency_conflicts} // 0);
	}
	return $n;
}

done_testing();
