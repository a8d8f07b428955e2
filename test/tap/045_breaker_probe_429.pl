# A service recovers from an outage but paces the first calls with 429 +
# Retry-After: the circuit half-opens and its probes are answered 429. A 429
# counts neither as a failure nor as a success, but the probe is over: the
# breaker must let the next probes through, so that once the service accepts
# calls the circuit closes and the backlog drains (it must not stay
# half-open with no probe allowed).
use strict;
use warnings;
use FindBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
BEGIN { require "$FindBin::RealBin/saas_tap_lib.pl"; }

my $n = 10;
my $node = saas_node('probe429');
my $sim = start_sim();
point_integrations($node, $sim, 'timeout_ms = 1000, base_backoff_ms = 200, max_backoff_seconds = 1, max_retries = 30');
$node->safe_psql('postgres', q{UPDATE saas.integrations SET breaker_min_volume = 3, breaker_failure_rate = 0.5,
	breaker_reset_seconds = 2, breaker_half_open_probes = 2, max_in_flight = 4 WHERE service = 'communication-service'});
my $org = new_org($node, 'probe429');
ok(wait_for($node, q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_saas worker'}, '1', 20), 'the worker runs');

sim_faults($sim, 'communication-service', { mode => 'down' });
$node->safe_psql('postgres', qq{
	SELECT count(saas._enqueue('$org', 'communication-service', 'tap.msg', 'POST', '/messages',
		jsonb_build_object('organization_id', 'org_probe', 'recipient', 'r' || n || '\@probe.test', 'template', 'welcome'),
		'probe-' || n)) FROM generate_series(1, $n) n;});
ok(wait_for($node, q{SELECT circuit FROM saas.integration_status WHERE service = 'communication-service'}, 'open', 20),
	'the circuit opens while the service is down');

# Back, but answering 429 with Retry-After: 1.
sim_faults($sim, 'communication-service', { error_rate => 1, status => 429, retry_after => 1 });
ok(wait_until(sub { (sim_stats($sim, 'communication-service')->{requests} // 0) >= 1 }, 15, 'a probe'),
	'after the reset timeout a probe reaches the service and gets 429');
is(q1($node, q{SELECT circuit FROM saas.integration_status WHERE service = 'communication-service'}), 'half_open',
	'the circuit is half-open');
ok(wait_for($node, q{SELECT count(*) FROM saas.jobs WHERE kind = 'tap.msg' AND last_status = 429}, '2', 10),
	'the two probes were answered 429');
ok(wait_until(sub { (sim_stats($sim, 'communication-service')->{requests} // 0) >= 3 }, 10, 'more probes'),
	'after Retry-After, probes are let through again');

sim_heal($sim, 'communication-service');
ok(wait_for($node, q{SELECT count(*) FROM saas.jobs WHERE kind = 'tap.msg' AND state = 'succeeded'}, $n, 30),
	'once the service accepts calls, the backlog drains');
is(q1($node, q{SELECT circuit FROM saas.integration_status WHERE service = 'communication-service'}), 'closed',
	'and the circuit is closed');
is(sim_stats($sim, 'communication-service')->{effects}, $n, "the service applied $n messages");
$node->stop;
done_testing();
