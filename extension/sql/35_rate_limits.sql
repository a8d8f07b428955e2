-- Part 35: rate limits per subscription tier and scope. The counters live in
-- shared memory (GCRA); this table says how fast each kind of caller may go.
-- Scopes: user (authenticated calls, per user, by the organization's tier),
-- auth_ip and auth_email (/auth/*, per client address and per email),
-- webhook (per sending service). Tier '*' is the fallback for any tier.

CREATE TABLE saas.rate_limits (
	tier				text	NOT NULL,
	scope				text	NOT NULL,
	requests_per_minute	integer	NOT NULL,
	burst				integer	NOT NULL,
	CONSTRAINT rate_limits_pkey PRIMARY KEY (tier, scope),
	-- Every scope the router counts, and only those: a row for a misspelt scope would limit
	-- nothing. A feature that counts a new scope adds it here and seeds its row in its part.
	CONSTRAINT rate_limits_scope_check CHECK (scope IN ('user', 'auth_ip', 'auth_email', 'webhook',
		'auth_refresh', 'reset_email', 'reset_ip', 'token_ip', 'token_id', 'invite_org', 'api_key')),
	CONSTRAINT rate_limits_rate_check CHECK (requests_per_minute BETWEEN 1 AND 100000000),
	CONSTRAINT rate_limits_burst_check CHECK (burst BETWEEN 1 AND 1000000)
);
COMMENT ON TABLE saas.rate_limits IS
	'Requests per minute and burst per subscription tier and scope (tier * = any); read by saas.http, cached per backend.';
ALTER TABLE saas.rate_limits ENABLE ROW LEVEL SECURITY;
ALTER TABLE saas.rate_limits FORCE ROW LEVEL SECURITY;
CREATE POLICY rate_limits_owner ON saas.rate_limits USING (true);

INSERT INTO saas.rate_limits (tier, scope, requests_per_minute, burst) VALUES
	('free', 'user', 600, 60),
	('starter', 'user', 1200, 120),
	('professional', 'user', 3000, 300),
	('enterprise', 'user', 12000, 1000),
	('*', 'auth_ip', 60, 20),
	('*', 'auth_email', 10, 10),
	('*', 'webhook', 120000, 10000);
SELECT pg_catalog.pg_extension_config_dump('saas.rate_limits', '');

CREATE TRIGGER rate_limits_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON saas.rate_limits
	FOR EACH STATEMENT EXECUTE FUNCTION saas._signing_keys_changed();

CREATE FUNCTION saas.rate_limit_check(scope text, key text, requests_per_minute integer, burst integer,
									  OUT allowed boolean, OUT "limit" integer, OUT remaining integer,
									  OUT reset_s integer, OUT retry_after_s integer)
	AS 'MODULE_PATHNAME', 'saas_rate_limit_check' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION saas.rate_limit_check(text, text, integer, integer) IS
	'Counts one request against scope:key in the shared GCRA limiter (owner only: it spends that key''s budget).';
CREATE FUNCTION saas._rate_limit_bench(n integer) RETURNS double precision
	AS 'MODULE_PATHNAME', 'saas_rate_limit_bench' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION saas._rate_limit_bench(integer) IS 'Nanoseconds per rate-limit check over n checks (benchmark, private).';
