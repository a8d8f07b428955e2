# Pull sync of an organization whose users at the user service carry long
# fields (the service allows 256 characters per field), so that one page of
# GET /users is larger than 64 kB. The sync must read every page whole and
# apply them (or fail that sync cleanly); the worker must not die over it.
use strict;
use warnings;
use FindBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
BEGIN { require "$FindBin::RealBin/saas_tap_lib.pl"; }

my $n = 120;
my $node = saas_node('bigsync');
my $sim = start_sim();
point_integrations($node, $sim, 'timeout_ms = 3000, base_backoff_ms = 200, max_backoff_seconds = 1');
ok(wait_for($node, q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_saas worker'}, '1', 20), 'the worker runs');
my $pid = worker_pid($node);

# Users of organization org_big at the user service, each about 0.8 kB (long
# department and title, which pg_saas does not keep; names within its limits).
my $long = 'x' x 240;
my $made = 0;
for my $i (1 .. $n)
{
	my $r = http('POST', "http://127.0.0.1:$sim->{user}/v1/users", {
		organization_id => 'org_big', email => "big$i\@big.test", first_name => "First$i",
		last_name => "Last$i", department => "Dept$long", title => "Title$long" });
	$made++ if $r->{status} == 201;
}
is($made, $n, "$n users made at the user service");
my $page = http('GET', "http://127.0.0.1:$sim->{user}/v1/users?organization_id=org_big&per_page=100&page=1");
ok(length($page->{body}) > 65536, 'one page of 100 of them is larger than 64 kB (' . length($page->{body}) . ' bytes)');

# Link an organization to org_big (with room for that many users: the free
# tier's employee limit applies to synced users too): the worker syncs it
# within a few seconds.
my $org = new_org($node, 'bigsync', '{}');
q1($node, qq{UPDATE saas.organizations SET employee_limit = 1000,
	external_ids = '{"user_service":"org_big"}' WHERE id = '$org'});
ok(wait_for($node, qq{SELECT count(*) FROM saas.sync_state WHERE org_id = '$org' AND last_sync IS NOT NULL}, '1', 30),
	'the sync completes (lastSync is set)');
is(q1($node, qq{SELECT count(*) FROM saas.users WHERE org_id = '$org' AND external_user_ids ? 'user_service'}), $n,
	"all $n users are synced");
is(worker_pid($node), $pid, 'the worker did not exit over it');
my $log = PostgreSQL::Test::Utils::slurp_file($node->logfile);
my @exits = ($log =~ /^.*background worker "pg_saas worker" \(PID \d+\) exited with exit code \d+.*$/mg);
is(scalar(@exits), 0, 'no worker exit in the log') or diag(join("\n", @exits, ($log =~ /^.*ERROR:.*$/mg)[0 .. 2]));
$node->stop;
done_testing();
