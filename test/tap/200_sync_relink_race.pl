# An organization is relinked to another reference at the user service while
# a pull sync of its old reference is reading pages. The round must not
# import the old reference's users under the new link, nor move the sync's
# cursor that the relink reset: it finds the organization relinked when it
# applies (its row locked against a relink until it commits) and drops that
# organization's pages; the next round imports the new reference's users.
use strict;
use warnings;
use FindBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
BEGIN { require "$FindBin::RealBin/saas_tap_lib.pl"; }

my $node = saas_node('relink');
my $sim = start_sim();
point_integrations($node, $sim, 'timeout_ms = 10000');
$node->safe_psql('postgres', q{UPDATE saas.integrations SET sync_interval_seconds = 1 WHERE service = 'user-service'});
my $users_url = "http://127.0.0.1:$sim->{user}/v1/users";

sub remote_user
{
	my ($ref, $name) = @_;
	my $r = http('POST', $users_url, { organization_id => $ref, email => "$name\@relink.test",
		first_name => 'Remote', last_name => $name });
	is($r->{status}, 201, "$name created at the user service under $ref");
}

remote_user('race_old', "old$_") for 1 .. 3;
remote_user('race_new', "new$_") for 1 .. 2;
my $org = new_org($node, 'relink', '{"user_service":"race_old"}');
my $count = sub { q1($node, qq{SELECT count(*) FROM saas.users WHERE org_id = '$org' AND email LIKE '$_[0]%'}) };
ok(wait_for($node, qq{SELECT count(*) FROM saas.users WHERE org_id = '$org' AND email LIKE 'old%'}, '3', 30),
	'the first sync imported the three users of race_old');

# Two more at the old reference, then a slow page read of it, and the relink during the read.
Time::HiRes::sleep(1.1);
remote_user('race_old', "old$_") for 4 .. 5;
sim_faults($sim, 'user-service', { latency_ms => 3000 });
my $before = sim_stats($sim, 'user-service')->{requests} // 0;
ok(wait_until(sub { (sim_stats($sim, 'user-service')->{requests} // 0) > $before }, 20, 'a page read'),
	'a page of race_old is being read (the service answers after 3 s)');
$node->safe_psql('postgres', qq{UPDATE saas.organizations SET external_ids = '{"user_service":"race_new"}' WHERE id = '$org'});
sim_heal($sim, 'user-service');

ok(wait_for($node, qq{SELECT count(*) FROM saas.users WHERE org_id = '$org' AND email LIKE 'new%'}, '2', 40),
	'after the relink, the users of race_new are imported');
ok(wait_until(sub { log_has($node, qr/sync of an organization dropped: it was relinked or deleted/) }, 20, 'the drop'),
	'the round that read race_old dropped its pages');
Time::HiRes::sleep(2.5);
is($count->('old'), '3', 'the users created at race_old during the read were not imported under race_new');
is(q1($node, qq{SELECT count(*) FROM saas.users WHERE org_id = '$org' AND external_user_ids ? 'user_service'}), '5',
	'the organization has the users it synced, each linked once');
ok(!log_has($node, qr/PANIC|terminated by signal/), 'no crash');
$node->stop;
done_testing();
