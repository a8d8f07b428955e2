# PostgreSQL is stopped in immediate mode (no shutdown checkpoint, crash
# recovery at the next start) while a client posts signed webhook batches
# through the relay as fast as it is answered. The client behaves like a
# real sender: a delivery that is not answered 202 is sent again, same
# events, until it is. After the restart every event that was acknowledged
# is stored, and exactly once, including those whose first answer was lost
# in the crash (their re-delivery is acknowledged as a duplicate).
use strict;
use warnings;
use FindBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use POSIX ();
use Time::HiRes ();
BEGIN { require "$FindBin::RealBin/saas_tap_lib.pl"; }
our $JSON;

my $batches = 300;
my $per_batch = 5;
my $node = saas_node('ingest', 'fsync = on');
my $relay = start_relay($node);
my $org = new_org($node, 'ingest', '{"user_service":"org_ingest"}');
my $acks = "$PostgreSQL::Test::Utils::tmp_check/acks.txt";
unlink $acks;

# The sender: one line per answered delivery: "batch status accepted duplicates tries".
my $child = fork();
die "fork: $!" unless defined $child;
if ($child == 0)
{
	# No END block of this process may run (they would stop the relay and the node).
	eval { sender(); };
	print STDERR "sender: $@" if $@;
	POSIX::_exit($@ ? 1 : 0);
}

sub sender
{
	open(my $fh, '>>', $acks) or die "$acks: $!";
	$fh->autoflush(1);
	my $deadline = Time::HiRes::time() + 120;
	for my $b (1 .. $batches)
	{
		my @ev = map {
			{ event_id => sprintf('evt_%04d_%d', $b, $_), event_type => 'user.activated',
			  timestamp => '2024-02-15T10:00:00Z', organization_id => 'org_ingest',
			  data => { user_id => "ext_$b" } } } 1 .. $per_batch;
		my $body = $JSON->encode({ events => \@ev });
		my $tries = 0;
		while (Time::HiRes::time() < $deadline)
		{
			$tries++;
			my $r = http('POST', "$relay->{url}/webhooks/user-service", $body,
				signed_headers('user-service', "msg_$b", $body));
			if ($r->{status} == 202 && $r->{json})
			{
				print $fh "$b 202 $r->{json}{accepted} $r->{json}{duplicates} $tries\n";
				last;
			}
			Time::HiRes::sleep(0.1);
		}
		Time::HiRes::sleep(0.01);
	}
}

sub acked { open(my $fh, '<', $acks) or return (); my @l = <$fh>; chomp @l; return @l; }

ok(wait_until(sub { scalar(acked()) >= 60 }, 30, '60 acknowledged deliveries'), 'deliveries are being acknowledged');
my $before = scalar(acked());
$node->stop('immediate');
note("stopped in immediate mode after $before acknowledged deliveries");
Time::HiRes::sleep(1.5);
# fail_ok: a failed restart is this test's failure, not a die that skips the rest.
my $restarted = $node->start(fail_ok => 1);
ok($restarted && (qtry($node, q{SELECT NOT pg_is_in_recovery()}) // '') eq 't',
	'PostgreSQL starts again (crash recovery) and is out of recovery');

waitpid($child, 0);
is($?, 0, 'the sender finished');
my @lines = acked();
is(scalar(@lines), $batches, "every delivery was acknowledged in the end ($batches)");
my $retried = grep { (split ' ')[4] > 1 } @lines;
ok($retried >= 1, "some deliveries had to be sent again during the outage ($retried)");
my ($acc, $dup) = (0, 0);
for (@lines) { my @f = split ' '; $acc += $f[2]; $dup += $f[3]; }
note("acknowledged: accepted $acc, duplicates $dup");
is($acc + $dup, $batches * $per_batch, 'each acknowledged event is counted once as accepted or duplicate');

my $total = $batches * $per_batch;
is(q1($node, qq{SELECT count(*) FROM saas.webhook_events WHERE org_id = '$org'}), $total,
	"every acknowledged event is stored ($total)");
is(q1($node, qq{SELECT count(DISTINCT event_id) FROM saas.webhook_events WHERE org_id = '$org'}), $total,
	'...exactly once each');
# The deliveries acknowledged before the stop were committed before their answer.
my @early = map { (split ' ')[0] } grep { (split ' ')[2] > 0 } @lines[0 .. $before - 1];
my $early_list = join(',', map { "'evt_" . sprintf('%04d', $_) . "_1'" } @early);
is(q1($node, "SELECT count(*) FROM saas.webhook_events WHERE event_id IN ($early_list)"), scalar(@early),
	'the events acknowledged as accepted before the crash survived it');
ok($acc <= $total && $acc >= $total - $dup, 'accepted counts add up');
ok(wait_for($node, qq{SELECT count(*) FROM saas.webhook_events WHERE org_id = '$org' AND applied_at IS NULL}, '0', 60),
	'the worker applies all of them after the restart');
is(q1($node, qq{SELECT count(*) FROM saas.webhook_events WHERE org_id = '$org' AND apply_result LIKE 'failed%'}), '0',
	'none failed to apply');
$node->stop;
done_testing();
