# Fairness across tenants (issue 9, part 4): one organization has a backlog
# of 20,000 messages at the communication service (which answers after
# 20 ms, 32 calls in flight: a drain of at most ~1,600 a second, so the
# backlog lasts about 12 s or more); another organization's messages, arriving at
# about 20 a second meanwhile, are called within a small bound (p99 < 1 s,
# generous for a loaded machine; first-in first-out would make them wait
# for the whole backlog), while the backlog is still there, and the backlog
# drains too. Bounded: about 15-30 s.
use strict;
use warnings;
use FindBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
BEGIN { require "$FindBin::RealBin/saas_tap_lib.pl"; }

my $bulk = 20000;
my $node = saas_node('fair');
my $sim = start_sim();
point_integrations($node, $sim, 'timeout_ms = 5000, base_backoff_ms = 200, max_backoff_seconds = 2');
$node->safe_psql('postgres', q{UPDATE saas.integrations SET max_in_flight = 32 WHERE service = 'communication-service'});
my $big = new_org($node, 'fairbig');
my $small = new_org($node, 'fairsmall');
ok(wait_for($node, q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_saas worker'}, '1', 20), 'the worker runs');
sim_faults($sim, 'communication-service', { latency_ms => 20 });

$node->safe_psql('postgres', qq{
	SELECT count(saas._enqueue('$big', 'communication-service', 'tap.bulk', 'POST', '/messages',
		jsonb_build_object('organization_id', 'org_big', 'recipient', 'b' || n || '\@tap.test', 'template', 'welcome'),
		'tap.bulk-' || n))
	  FROM generate_series(1, $bulk) n;});
ok(wait_until(sub { (sim_stats($sim, 'communication-service')->{requests} // 0) >= 100 }, 20, 'the backlog to drain'),
	'the backlog is being drained');

# 100 messages of the other organization, one transaction each, 50 ms apart.
messages_at_20_per_s($node, $small, 'org_small', 'tap.small', 100);
ok(wait_for($node, q{SELECT count(*) FROM saas.jobs WHERE kind = 'tap.small' AND state = 'succeeded'}, '100', 20),
	"the other organization's messages succeed");
my $p99 = latency_ms($node, 'tap.small', 0.99);
my $p50 = latency_ms($node, 'tap.small', 0.5);
ok($p99 < 1000, "the other organization's p99 with a $bulk-job backlog ahead: $p99 ms (< 1000; p50 $p50 ms)");
my $left = q1($node, q{SELECT count(*) FROM saas.jobs WHERE kind = 'tap.bulk'
	AND (finished_at IS NULL OR finished_at > (SELECT max(finished_at) FROM saas.jobs WHERE kind = 'tap.small'))});
ok($left >= 1000, "the backlog was still there when the other organization's last message was done ($left left)");
ok(wait_for($node, q{SELECT count(*) FROM saas.jobs WHERE kind = 'tap.bulk' AND state = 'succeeded'}, $bulk, 60),
	'the backlog drains');
is(sim_stats($sim, 'communication-service')->{effects}, $bulk + 100, 'one message per job at the service');
ok(!log_has($node, qr/terminated by signal|PANIC/), 'no backend crashed');
$node->stop;
done_testing();
