# The pull sync inside the event loop (issue 9, part 2): a sync's page reads
# are ordinary calls in flight of the worker's one loop, so while the user
# service hangs during a sync (each read ends only at its timeout, 4 s here)
# the worker keeps claiming and calling other services' jobs: welcome
# messages arriving at about 20 a second are done in well under a second
# each (p99 < 1 s; before, each hanging page held every claim for up to
# timeout_ms). The breaker is set never to open, so the hang lasts the whole
# phase; once the service answers, the syncs complete.
# Bounded: about 5 s of arrivals, then the syncs (a few seconds).
use strict;
use warnings;
use FindBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
BEGIN { require "$FindBin::RealBin/saas_tap_lib.pl"; }

my $node = saas_node('synchang');
my $sim = start_sim();
point_integrations($node, $sim, 'timeout_ms = 4000, base_backoff_ms = 200, max_backoff_seconds = 2');
$node->safe_psql('postgres', q{UPDATE saas.integrations SET sync_interval_seconds = 1,
	breaker_consecutive_failures = 1000, breaker_min_volume = 1000 WHERE service = 'user-service'});
my @orgs = map { new_org($node, "synchang$_", qq({"user_service": "org_synchang$_"})) } 1 .. 3;
my $org = $orgs[0];

sim_faults($sim, 'user-service', { mode => 'hang' });
ok(wait_for($node, q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_saas worker'}, '1', 20), 'the worker runs');
ok(wait_until(sub { (sim_stats($sim, 'user-service')->{requests} // 0) >= 1 }, 20, 'a sync read'),
	'a pull sync reads from the hanging user service');
my $before = sim_stats($sim, 'user-service')->{requests};

# 100 welcome messages, one transaction each, 50 ms apart.
messages_at_20_per_s($node, $org, 'org_synchang1', 'tap.msg', 100);
ok(wait_for($node, q{SELECT count(*) FROM saas.jobs WHERE kind = 'tap.msg' AND state = 'succeeded'}, '100', 20),
	'every message succeeds while the user service hangs');
my $p99 = latency_ms($node, 'tap.msg', 0.99);
my $max = q1($node, q{SELECT round(max(extract(epoch FROM finished_at - created_at)) * 1000) FROM saas.jobs WHERE kind = 'tap.msg'});
ok($p99 < 1000, "communication p99 while a sync waits on the hanging user service: $p99 ms (< 1000; max $max ms)");
my $during = sim_stats($sim, 'user-service')->{requests} - $before;
ok($during >= 1, "sync reads kept hanging meanwhile ($during more)");
is(q1($node, q{SELECT count(*) FROM saas.sync_state WHERE service = 'user-service' AND last_sync IS NOT NULL}), '0',
	'no sync completed while the service hangs');

sim_heal($sim, 'user-service');
ok(wait_for($node, q{SELECT count(*) FROM saas.sync_state WHERE service = 'user-service' AND last_sync IS NOT NULL}, '3', 30),
	'once the user service answers, the syncs of the three organizations complete');
ok(!log_has($node, qr/terminated by signal|PANIC/), 'no backend crashed');
$node->stop;
done_testing();
