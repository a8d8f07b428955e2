# No head-of-line blocking (issue 9, part 2): a slow or hanging service
# holds up only its own calls. The worker keeps calls in flight across its
# rounds, records each as it completes and claims for services that have
# room, so while the payment service answers correctly but after 3 s (with a
# backlog larger than its max_in_flight), or hangs until the call's timeout,
# the communication service's jobs, arriving at about 20 a second, are done
# in well under a second each (p99 < 1 s), and the payment backlog keeps
# draining at the pace of its own slots.
# Bounded: about 5 s of arrivals per phase.
use strict;
use warnings;
use FindBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes ();
BEGIN { require "$FindBin::RealBin/saas_tap_lib.pl"; }

my $node = saas_node('slow');
my $sim = start_sim();
point_integrations($node, $sim, 'timeout_ms = 5000, base_backoff_ms = 200, max_backoff_seconds = 2');
$node->safe_psql('postgres', q{UPDATE saas.integrations SET max_in_flight = 8 WHERE service = 'payment-service'});
my $org = new_org($node, 'slow');
$node->safe_psql('postgres', qq{INSERT INTO saas.sync_state (org_id, service, last_sync) VALUES ('$org', 'user-service', now())});
ok(wait_for($node, q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_saas worker'}, '1', 20), 'the worker runs');

# enqueue_payments(KIND, N): N customer creations, one key each.
sub enqueue_payments
{
	my ($kind, $count) = @_;
	$node->safe_psql('postgres', qq{
		SELECT count(saas._enqueue('$org', 'payment-service', '$kind', 'POST', '/customers',
			jsonb_build_object('organization_id', 'org_slow', 'email', '$kind' || n || '\@tap.test'), '$kind-' || n))
		  FROM generate_series(1, $count) n;});
}

# 1. Slow: every payment call takes 3 s.
sim_faults($sim, 'payment-service', { latency_ms => 3000 });
enqueue_payments('tap.pay', 40);
ok(wait_until(sub { (sim_stats($sim, 'payment-service')->{requests} // 0) >= 8 }, 10, 'payment calls in flight'),
	'the payment service is busy with its 8 slots');
messages_at_20_per_s($node, $org, 'org_slow', 'tap.msg', 100);
ok(wait_for($node, q{SELECT count(*) FROM saas.jobs WHERE kind = 'tap.msg' AND state = 'succeeded'}, '100', 20),
	'every message succeeds');
my $p99 = latency_ms($node, 'tap.msg', 0.99);
ok($p99 < 1000, "communication p99 while payment is slow: $p99 ms (< 1000)");
my $pay_done = q1($node, q{SELECT count(*) FROM saas.jobs WHERE kind = 'tap.pay' AND state = 'succeeded'});
ok($pay_done >= 8, "the payment backlog drains meanwhile ($pay_done done)");
ok(q1($node, q{SELECT max(c) FROM (SELECT count(*) c FROM saas.jobs WHERE kind = 'tap.pay' AND state = 'running') s}) <= 8,
	'never more payment calls in flight than its max_in_flight');

# 2. Hanging: payment calls never answer (each ends at timeout_ms).
sim_faults($sim, 'payment-service', { mode => 'hang' });
$node->safe_psql('postgres', q{UPDATE saas.integrations SET timeout_ms = 3000 WHERE service = 'payment-service'});
enqueue_payments('tap.pay2', 20);
messages_at_20_per_s($node, $org, 'org_slow', 'tap.msg2', 100);
ok(wait_for($node, q{SELECT count(*) FROM saas.jobs WHERE kind = 'tap.msg2' AND state = 'succeeded'}, '100', 20),
	'every message succeeds while the payment service hangs');
$p99 = latency_ms($node, 'tap.msg2', 0.99);
ok($p99 < 1000, "communication p99 while payment hangs: $p99 ms (< 1000)");
is(q1($node, q{SELECT count(*) FROM saas.jobs WHERE kind IN ('tap.pay', 'tap.pay2') AND state = 'dead'}), '0',
	'no payment job is dead');
sim_heal($sim, 'payment-service');
ok(wait_for($node, q{SELECT count(*) FROM saas.jobs WHERE kind IN ('tap.pay', 'tap.pay2') AND state = 'succeeded'}, '60', 60),
	'once the payment service is well, its backlog drains');
ok(!log_has($node, qr/terminated by signal|PANIC/), 'no backend crashed');
$node->stop;
done_testing();
