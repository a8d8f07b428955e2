# A flapping service (the sim alternates up and down every 0.8 s, and answers after 150 ms) that also
# loses some answers after applying the change (lost_response_rate: the
# case Idempotency-Key exists for). With max_retries raised, the queue
# eventually drains: every job succeeds, none is dead, and each key took
# effect exactly once at the service.
use strict;
use warnings;
use FindBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
BEGIN { require "$FindBin::RealBin/saas_tap_lib.pl"; }

my $n = 80;
my $node = saas_node('flap');
my $sim = start_sim();
point_integrations($node, $sim, 'timeout_ms = 1000, base_backoff_ms = 200, max_backoff_seconds = 1, max_retries = 40');
$node->safe_psql('postgres', q{UPDATE saas.integrations SET breaker_min_volume = 10, breaker_reset_seconds = 1,
	breaker_half_open_probes = 2, max_in_flight = 8 WHERE service = 'user-service'});
my $org = new_org($node, 'flap');
ok(wait_for($node, q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_saas worker'}, '1', 20), 'the worker runs');

sim_faults($sim, 'user-service', { mode => 'flap', flap_period_ms => 800, latency_ms => 150,
	lost_response_rate => 0.15, status => 503 });
enqueue_users($node, $org, $n, 'flap', 'org_flap');
ok(wait_for($node, q{SELECT count(*) FROM saas.jobs WHERE kind = 'tap.user' AND state IN ('succeeded', 'dead')}, $n, 120),
	'every job finishes');
is(job_states($node, 'tap.user'), "succeeded=$n", 'all succeeded, none dead');
my $retried = q1($node, q{SELECT count(*) FROM saas.jobs WHERE kind = 'tap.user' AND attempt > 1});
ok($retried > 0, "the flapping made jobs retry ($retried)");
note('attempts: ' . q1($node, q{SELECT string_agg(a || 'x' || n, ' ' ORDER BY a) FROM
	(SELECT attempt a, count(*) n FROM saas.jobs WHERE kind = 'tap.user' GROUP BY attempt) s}));
note('breaker transitions: ' . q1($node, q{SELECT count(*) FROM saas._breaker_events WHERE service = 'user-service'}));
my $st = sim_stats($sim, 'user-service');
note("sim: requests $st->{requests}, faults $st->{faults_injected}, replays $st->{idempotent_replays}, effects $st->{effects}");
is($st->{effects}, $n, "the user service applied exactly $n changes: one per Idempotency-Key");
my $users = http('GET', "$sim->{url}/_sim/users?organization_id=org_flap")->{json};
is(scalar @{ $users->{users} // [] }, $n, "it holds $n users, no duplicate");
is(q1($node, q{SELECT count(*) FROM saas.jobs WHERE kind = 'tap.user' AND (finished_at IS NULL OR lease_until IS NOT NULL)}), '0',
	'every job is finished and holds no lease');
ok(!log_has($node, qr/terminated by signal|PANIC/), 'no backend crashed');
$node->stop;
done_testing();
