# Invitations and password reset, delivered for real: an admin invites an
# email through the relay, the worker sends the token through the simulated
# communication service, the token is taken from what the service received
# (GET /_sim/messages) and accepted; then the same for a password reset. The
# token never stays readable in the database once delivered, never shows in
# GET /jobs, the audit log or the server log, and works once.
use strict;
use warnings;
use FindBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
BEGIN { require "$FindBin::RealBin/saas_tap_lib.pl"; }
our $JSON;

my $node = saas_node('invitations');
my $relay = start_relay($node);
my $sim = start_sim(webhook_url => "$relay->{url}/webhooks");
point_integrations($node, $sim, 'timeout_ms = 3000, base_backoff_ms = 200, max_backoff_seconds = 2');
my $u = $relay->{url};

my $reg = http('POST', "$u/auth/register", {
	organization => { name => 'Invite Co', slug => 'invite-co' },
	email => 'boss@invite.test', password => 'correct horse battery staple',
	first_name => 'Bea', last_name => 'Boss' });
is($reg->{status}, 201, 'an admin registers');
my $org = $reg->{json}{organization}{id};
my $admin = { authorization => "Bearer $reg->{json}{token}" };

# sim_message(TEMPLATE, RECIPIENT): the newest message of that template to RECIPIENT.
sub sim_message
{
	my ($template, $to) = @_;
	my $msgs = http('GET', "$sim->{url}/_sim/messages?organization_id=$org")->{json};
	my $list = ref $msgs eq 'HASH' ? ($msgs->{data} // $msgs->{messages} // []) : ($msgs // []);
	my @m = grep { ($_->{template} // '') eq $template && ($_->{recipient} // '') eq $to } @$list;
	return $m[-1];
}

# secret_visible(TOKEN): where in the database, logs and API the token shows.
sub secret_visible
{
	my ($token) = @_;
	my @where;
	push @where, 'jobs' if q1($node, qq{SELECT count(*) FROM saas.jobs WHERE payload::text LIKE '%$token%'}) ne '0';
	push @where, 'audit_log' if q1($node, qq{SELECT count(*) FROM saas.audit_log WHERE changes::text LIKE '%$token%'}) ne '0';
	push @where, 'notifications'
	  if q1($node, qq{SELECT count(*) FROM saas.notifications WHERE details::text LIKE '%$token%'}) ne '0';
	push @where, 'webhook_events'
	  if q1($node, qq{SELECT count(*) FROM saas.webhook_events WHERE payload::text LIKE '%$token%'}) ne '0';
	push @where, 'GET /jobs' if http('GET', "$u/jobs?limit=100", undef, $admin)->{body} =~ /\Q$token\E/;
	push @where, 'GET /audit-logs' if http('GET', "$u/audit-logs?limit=100", undef, $admin)->{body} =~ /\Q$token\E/;
	push @where, 'server log' if log_has($node, qr/\Q$token\E/);
	return join(', ', @where);
}

# --- invitation -----------------------------------------------------------------------------
my $inv = http('POST', "$u/invitations", { email => 'New.Hire@invite.test', role => 'user', first_name => 'Nia' }, $admin);
is($inv->{status}, 201, 'POST /invitations answers 201');
is($inv->{json}{email}, 'new.hire@invite.test', 'the email is stored lower-cased');
unlike($inv->{body}, qr/inv_/, 'the answer does not carry the token');
ok(wait_for($node, q{SELECT state FROM saas.jobs WHERE kind = 'message.invitation'}, 'succeeded', 30),
	'the worker delivers the invitation through the communication service');
my $msg = sim_message('user_invitation', 'new.hire@invite.test');
ok($msg, 'the communication service received a user_invitation message for the email');
my ($itok) = (($msg // {})->{body} // '') =~ /(inv_[A-Za-z0-9_-]+)/;
ok($itok, 'the message carries the token');
is(secret_visible($itok), '', 'once delivered, the invitation token is nowhere in the database, the API or the log');
like(q1($node, q{SELECT payload -> 'body' ->> 'body' FROM saas.jobs WHERE kind = 'message.invitation'}),
	qr/removed after delivery/, 'the job keeps a note instead of the text');

my $acc = http('POST', "$u/auth/accept-invite", { token => $itok, password => 'nia has a long password', last_name => 'Ng' });
is($acc->{status}, 200, 'POST /auth/accept-invite answers 200');
ok($acc->{json}{token}, 'with a token, like login');
is($acc->{json}{user}{role}, 'user', 'the user has the invited role');
is(http('GET', "$u/users", undef, { authorization => "Bearer $acc->{json}{token}" })->{status}, 200,
	'the token works');
is(http('POST', "$u/auth/accept-invite", { token => $itok, password => 'nia has a long password' })->{status}, 400,
	'a second use of the invitation is refused');
is(http('POST', "$u/auth/login", { email => 'new.hire@invite.test', password => 'nia has a long password' })->{status},
	200, 'the new user logs in with the password chosen');

# --- password reset -------------------------------------------------------------------------
my $r1 = http('POST', "$u/auth/password-reset", { email => 'new.hire@invite.test' });
my $r2 = http('POST', "$u/auth/password-reset", { email => 'nobody@invite.test' });
is($r1->{status}, 202, 'POST /auth/password-reset answers 202 for a known email');
is($r2->{status}, 202, 'and 202 for an unknown one');
is($r1->{body}, $r2->{body}, 'with the same body');
ok(wait_for($node, q{SELECT string_agg(state, ',') FROM saas.jobs WHERE kind = 'message.password_reset'}, 'succeeded', 30),
	'one reset message is delivered (none for the unknown email)');
my $rmsg = sim_message('password_reset', 'new.hire@invite.test');
my ($rtok) = (($rmsg // {})->{body} // '') =~ /(rst_[A-Za-z0-9_-]+)/;
ok($rtok, 'the reset message carries the token');
is(secret_visible($rtok), '', 'once delivered, the reset token is nowhere in the database, the API or the log');

is(http('POST', "$u/auth/password-reset/confirm", { token => $rtok, password => 'short' })->{status}, 400,
	'a password the policy refuses is a 400');
my $c = http('POST', "$u/auth/password-reset/confirm", { token => $rtok, password => 'nia chose another password' });
is($c->{status}, 204, 'POST /auth/password-reset/confirm answers 204 (the refused password did not use the token up)');
is(http('GET', "$u/users", undef, { authorization => "Bearer $acc->{json}{token}" })->{status}, 401,
	'the sessions the user had are over');
is(http('POST', "$u/auth/password-reset/confirm", { token => $rtok, password => 'and yet another password' })->{status},
	400, 'a second use of the reset token is refused');
is(http('POST', "$u/auth/login", { email => 'new.hire@invite.test', password => 'nia has a long password' })->{status},
	401, 'the old password no longer logs in');
is(http('POST', "$u/auth/login", { email => 'new.hire@invite.test', password => 'nia chose another password' })->{status},
	200, 'the new one does');
like(q1($node, q{SELECT string_agg(action, ',' ORDER BY seq) FROM saas.audit_log WHERE entity = 'user'
	AND action LIKE 'password%'}), qr/password_reset_requested,password_change,password_reset/,
	'the request, the change and the reset are audited');

# --- a revoked invitation's token is void ---------------------------------------------------
my $inv2 = http('POST', "$u/invitations", { email => 'later@invite.test', role => 'admin', first_name => 'La',
	last_name => 'Ter' }, $admin);
ok(wait_for($node, q{SELECT count(*) FROM saas.jobs WHERE kind = 'message.invitation' AND state = 'succeeded'}, '2', 30),
	'a second invitation is delivered');
my ($itok2) = ((sim_message('user_invitation', 'later@invite.test') // {})->{body} // '') =~ /(inv_[A-Za-z0-9_-]+)/;
is(http('DELETE', "$u/invitations/$inv2->{json}{id}", undef, $admin)->{status}, 204, 'the admin revokes it');
is(http('POST', "$u/auth/accept-invite", { token => $itok2, password => 'a perfectly fine password' })->{status}, 400,
	'its token is refused');
is(q1($node, q{SELECT count(*) FROM saas.users WHERE email = 'later@invite.test'}), '0', 'and no user was made');

done_testing();
