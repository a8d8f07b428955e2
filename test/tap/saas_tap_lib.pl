# Helpers shared by the process-level tests (test/tap/[0-9]*.pl): a
# PostgreSQL cluster with pg_saas preloaded and its worker serving the
# database "postgres", the simulated services (saas-sim) on free ports,
# optionally the relay (saas-http) in front of the cluster, Standard Webhooks
# signing, and polling helpers. Loaded with `require` by each test; it is not
# a test itself (test/suites/40_tap.sh runs only files named NNN_*.pl). A test
# loads it after PostgreSQL::Test::Cluster (so that module's INIT block runs):
#   use PostgreSQL::Test::Cluster; use PostgreSQL::Test::Utils; use Test::More;
#   BEGIN { require "$FindBin::RealBin/saas_tap_lib.pl"; }
#
# Environment (set by test/suites/40_tap.sh):
#   SAAS_SIM        path of the saas-sim binary
#   SAAS_HTTP       path of the saas-http binary (only tests that need a relay)
#   SAAS_SEED_DATA  platform_data.json for the sim (optional)

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run ();
use HTTP::Tiny;
use JSON::PP ();
use Time::HiRes ();
use Digest::SHA ();
use MIME::Base64 ();

our $JSON = JSON::PP->new->canonical(1)->allow_nonref(1);
our @SAAS_CHILDREN;		# [name, IPC::Run harness] of every program started here

# Default webhook secrets, as seeded by the extension and the sim (docs/sim.md).
our %SAAS_SECRET = (
	'user-service' => 'whsec_dXNlcl93ZWJob29rX3NlY3JldF8xMjM=',
	'payment-service' => 'whsec_cGF5bWVudF93ZWJob29rX3NlY3JldF80NTY=',
	'communication-service' => 'whsec_ZW1haWxfd2ViaG9va19zZWNyZXRfNzg5',
);

# saas_node(NAME, EXTRA_CONF): an initialized, started cluster with pg_saas
# preloaded, the worker serving "postgres", and the extension created there.
sub saas_node
{
	my ($name, $extra) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf', join("\n",
		"shared_preload_libraries = 'pg_saas'",
		"saas.database = 'postgres'",
		"log_statement = none",
		"log_min_messages = warning",
		"max_connections = 40",
		"jit = off",
		$extra // '', ''));
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION pg_saas');
	return $node;
}

# q1(NODE, SQL): one value; dies on error.
sub q1
{
	my ($node, $sql) = @_;
	return scalar $node->safe_psql('postgres', $sql);
}

# qtry(NODE, SQL): the output, or undef when the query failed (server down...).
sub qtry
{
	my ($node, $sql) = @_;
	my ($rc, $out, $err) = $node->psql('postgres', $sql, on_error_stop => 1);
	return $rc == 0 ? $out : undef;
}

# wait_for(NODE, SQL, EXPECTED, TIMEOUT_S): poll until SQL prints EXPECTED.
# Returns 1 on success; on timeout, notes the last value and returns 0.
sub wait_for
{
	my ($node, $sql, $expected, $timeout) = @_;
	my $deadline = Time::HiRes::time() + ($timeout // 60);
	my $last;
	while (Time::HiRes::time() < $deadline)
	{
		$last = qtry($node, $sql);
		return 1 if defined $last && $last eq $expected;
		Time::HiRes::sleep(0.2);
	}
	diag("timed out after ${timeout}s waiting for [$sql] = [$expected]; last [" . ($last // 'error') . "]");
	return 0;
}

# wait_until(CODE, TIMEOUT_S, WHAT): poll a Perl condition.
sub wait_until
{
	my ($code, $timeout, $what) = @_;
	my $deadline = Time::HiRes::time() + ($timeout // 60);
	while (Time::HiRes::time() < $deadline)
	{
		return 1 if $code->();
		Time::HiRes::sleep(0.2);
	}
	diag("timed out after ${timeout}s waiting for $what");
	return 0;
}

sub free_port { return PostgreSQL::Test::Cluster::get_free_port(); }

# http(METHOD, URL, BODY_REF_OR_STRING, HEADERS): {status, body, json, headers}.
sub http
{
	my ($method, $url, $body, $headers) = @_;
	my $ua = HTTP::Tiny->new(timeout => 15, keep_alive => 0);
	my %opt = (headers => { %{ $headers // {} } });
	if (defined $body)
	{
		$opt{content} = ref $body ? $JSON->encode($body) : $body;
		$opt{headers}{'content-type'} //= 'application/json';
	}
	my $r = $ua->request($method, $url, \%opt);
	my $json;
	eval { $json = $JSON->decode($r->{content}) if length($r->{content} // ''); };
	return { status => $r->{status}, body => $r->{content}, json => $json, headers => $r->{headers} };
}

sub start_child
{
	my ($name, $cmd, $log) = @_;
	my $h = IPC::Run::start($cmd, '<', \undef, '>>', $log, '2>>', $log);
	push @SAAS_CHILDREN, [ $name, $h ];
	return $h;
}

sub stop_child
{
	my ($h) = @_;
	return unless $h;
	eval { $h->signal('TERM'); };
	eval { $h->finish; };
	@SAAS_CHILDREN = grep { $_->[1] != $h } @SAAS_CHILDREN;
}

END
{
	for my $c (@SAAS_CHILDREN)
	{
		eval { $c->[1]->signal('TERM'); };
		eval { $c->[1]->finish; };
	}
}

# start_sim(webhook_url => URL|'none', faults => [...]): the simulated services on free ports.
# Returns {control, user, payment, comm} ports, {url} of the control API and the harness.
sub start_sim
{
	my (%o) = @_;
	my $sim = $ENV{SAAS_SIM} or BAIL_OUT('SAAS_SIM is not set');
	my %p = (control => free_port(), user => free_port(), payment => free_port(), comm => free_port());
	my $log = "$PostgreSQL::Test::Utils::tmp_check/sim_$p{control}.log";
	my @cmd = ($sim, '--control-port', $p{control}, '--user-port', $p{user},
		'--payment-port', $p{payment}, '--communication-port', $p{comm}, '--oidc-port', 0,
		'--webhook-url', $o{webhook_url} // 'none', '--seed', $o{seed} // 7,
		'--webhook-retry-base-ms', 200);
	push @cmd, '--seed-data', $ENV{SAAS_SEED_DATA} if $ENV{SAAS_SEED_DATA} && -r $ENV{SAAS_SEED_DATA};
	push @cmd, '--faults', $_ for @{ $o{faults} // [] };
	my $h = start_child('saas-sim', \@cmd, $log);
	my $sim_h = { %p, url => "http://127.0.0.1:$p{control}", harness => $h, log => $log };
	wait_until(sub { (http('GET', "$sim_h->{url}/_sim/health")->{status} // 0) == 200 }, 20, 'saas-sim to answer')
	  or BAIL_OUT("saas-sim did not start: " . PostgreSQL::Test::Utils::slurp_file($log));
	return $sim_h;
}

sub sim_stats
{
	my ($sim, $service) = @_;
	my $r = http('GET', "$sim->{url}/_sim/stats/$service");
	return $r->{json} // {};
}

sub sim_faults
{
	my ($sim, $service, $profile) = @_;
	my $r = http('POST', "$sim->{url}/_sim/faults/$service", $profile);
	die "could not set faults of $service: $r->{status} $r->{body}" unless $r->{status} == 200;
	return $r->{json};
}

sub sim_heal
{
	my ($sim, $service) = @_;
	my $r = http('DELETE', "$sim->{url}/_sim/faults/" . ($service // 'all'));
	die "could not clear faults: $r->{status} $r->{body}" unless $r->{status} == 200;
}

# point_integrations(NODE, SIM, SET): base URLs at the sim, plus settings for every service.
sub point_integrations
{
	my ($node, $sim, $set) = @_;
	my $extra = $set ? ", $set" : '';
	$node->safe_psql('postgres', qq{
		UPDATE saas.integrations SET base_url = 'http://127.0.0.1:$sim->{user}/v1'$extra WHERE service = 'user-service';
		UPDATE saas.integrations SET base_url = 'http://127.0.0.1:$sim->{payment}/v2'$extra WHERE service = 'payment-service';
		UPDATE saas.integrations SET base_url = 'http://127.0.0.1:$sim->{comm}/v1'$extra WHERE service = 'communication-service';
	});
}

# start_relay(NODE): saas-http in front of NODE, as a login role with saas_api.
sub start_relay
{
	my ($node) = @_;
	my $bin = $ENV{SAAS_HTTP} or BAIL_OUT('SAAS_HTTP is not set');
	$node->safe_psql('postgres', q{
		DO $$ BEGIN
			IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tap_relay') THEN
				CREATE ROLE tap_relay LOGIN IN ROLE saas_api;
			END IF;
		END $$;});
	my $port = free_port();
	my $log = "$PostgreSQL::Test::Utils::tmp_check/relay_$port.log";
	my $dsn = 'host=' . $node->host . ' port=' . $node->port . ' dbname=postgres user=tap_relay';
	my $h = start_child('saas-http', [ $bin, '--listen', "127.0.0.1:$port", '--dsn', $dsn, '--pool', 4 ], $log);
	my $relay = { port => $port, url => "http://127.0.0.1:$port", harness => $h, log => $log };
	wait_until(sub { (http('GET', "$relay->{url}/healthz")->{status} // 0) =~ /^(200|503)$/ }, 20, 'saas-http to answer')
	  or BAIL_OUT("saas-http did not start: " . PostgreSQL::Test::Utils::slurp_file($log));
	return $relay;
}

# sign(SERVICE, ID, TS, BODY): the webhook-signature header value.
sub sign
{
	my ($service, $id, $ts, $body) = @_;
	my $key = MIME::Base64::decode_base64(substr($SAAS_SECRET{$service}, 6));
	return 'v1,' . MIME::Base64::encode_base64(Digest::SHA::hmac_sha256("$id.$ts.$body", $key), '');
}

# signed_headers(SERVICE, ID, BODY)
sub signed_headers
{
	my ($service, $id, $body) = @_;
	my $ts = time();
	return { 'content-type' => 'application/json', 'webhook-id' => $id,
			 'webhook-timestamp' => $ts, 'webhook-signature' => sign($service, $id, $ts, $body) };
}

# worker_pid(NODE): pid of the pg_saas worker, or '' when none.
sub worker_pid
{
	my ($node) = @_;
	return qtry($node, q{SELECT coalesce(max(pid), 0) FROM pg_stat_activity WHERE backend_type = 'pg_saas worker'}) // '';
}

# new_org(NODE, SLUG, EXTERNAL_IDS_JSON): an organization made without any job
# (the services are disabled while it is registered); returns its id.
sub new_org
{
	my ($node, $slug, $ext) = @_;
	$ext //= '{}';
	return q1($node, qq{
		UPDATE saas.integrations SET enabled = false;
		SELECT (saas.register(jsonb_build_object('organization', jsonb_build_object('name', '$slug', 'slug', '$slug'),
			'email', 'admin\@$slug.test', 'password', 'correct horse battery staple',
			'first_name', 'Tap', 'last_name', 'Admin')) -> 'organization' ->> 'id');
		UPDATE saas.organizations SET external_ids = '$ext' WHERE slug = '$slug';
		UPDATE saas.integrations SET enabled = true;});
}

# enqueue_users(NODE, ORG, N, PREFIX, ORG_REF): N user creations at the user service, one key each.
sub enqueue_users
{
	my ($node, $org, $n, $prefix, $ref) = @_;
	$ref //= "ref_$prefix";
	$node->safe_psql('postgres', qq{
		SELECT count(saas._enqueue('$org', 'user-service', 'tap.user', 'POST', '/users',
			jsonb_build_object('organization_id', '$ref', 'email', '$prefix' || n || '\@tap.test',
							   'first_name', 'Tap', 'last_name', 'User ' || n),
			'$prefix-' || n))
		  FROM generate_series(1, $n) n;});
}

# messages_at_20_per_s(NODE, ORG, ORG_REF, KIND, N): N welcome messages of an
# organization, one transaction each, 50 ms apart (keys KIND-1 .. KIND-N).
sub messages_at_20_per_s
{
	my ($node, $org, $ref, $kind, $count) = @_;
	$node->safe_psql('postgres', qq{
		DO \$\$ BEGIN
			FOR n IN 1..$count LOOP
				PERFORM saas._enqueue('$org', 'communication-service', '$kind', 'POST', '/messages',
					jsonb_build_object('organization_id', '$ref', 'recipient', '$kind' || n || '\@tap.test', 'template', 'welcome'),
					'$kind-' || n);
				COMMIT;
				PERFORM pg_sleep(0.05);
			END LOOP;
		END \$\$;});
}

# latency_ms(NODE, KIND, FRACTION): that percentile of a kind's enqueue-to-done time, in ms.
sub latency_ms
{
	my ($node, $kind, $fraction) = @_;
	return q1($node, qq{SELECT round(percentile_cont($fraction) WITHIN GROUP
		(ORDER BY extract(epoch FROM finished_at - created_at)) * 1000) FROM saas.jobs WHERE kind = '$kind'});
}

# job_states(NODE, KIND): "state=count ..." of the jobs of a kind, sorted.
sub job_states
{
	my ($node, $kind) = @_;
	return qtry($node, qq{SELECT coalesce(string_agg(state || '=' || n, ' ' ORDER BY state), '')
		FROM (SELECT state, count(*) n FROM saas.jobs WHERE kind = '$kind' GROUP BY state) s}) // 'error';
}

# log_has(NODE, REGEX): whether the server log matches.
sub log_has
{
	my ($node, $re) = @_;
	my $log = PostgreSQL::Test::Utils::slurp_file($node->logfile);
	return $log =~ $re;
}

1;
