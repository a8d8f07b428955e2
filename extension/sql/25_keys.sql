-- Part 25: signing-key management (owner only; not granted to saas_api).

CREATE FUNCTION saas.rotate_signing_key() RETURNS text LANGUAGE plpgsql
	SECURITY DEFINER SET search_path = pg_catalog, saas, pg_temp
AS $$
DECLARE
	new_kid text := 'k' || pg_catalog.to_char(pg_catalog.clock_timestamp() AT TIME ZONE 'UTC', 'YYYYMMDDHH24MISSUS')
					|| '-' || pg_catalog.encode(saas._random_bytes(4), 'hex');
BEGIN
	INSERT INTO saas._signing_keys (kid, secret) VALUES (new_kid, saas._random_bytes(64));
	RETURN new_kid;
END
$$;
COMMENT ON FUNCTION saas.rotate_signing_key() IS
	'Adds a new signing key (the one that signs from now on) and returns its kid. Older keys keep verifying until retired.';

CREATE FUNCTION saas.retire_signing_key(kid text) RETURNS void LANGUAGE plpgsql
	SECURITY DEFINER SET search_path = pg_catalog, saas, pg_temp
AS $$
DECLARE
	-- Read first: Citus refuses a volatile function in an UPDATE of a distributed or reference table.
	now_ts timestamptz := pg_catalog.clock_timestamp();
BEGIN
	IF NOT EXISTS (SELECT 1 FROM saas._signing_keys k WHERE k.kid = retire_signing_key.kid AND k.retired_at IS NULL) THEN
		RAISE EXCEPTION 'no active signing key with kid "%"', kid USING ERRCODE = 'SA404';
	END IF;
	IF (SELECT pg_catalog.count(*) FROM saas._signing_keys k WHERE k.retired_at IS NULL) <= 1 THEN
		RAISE EXCEPTION 'cannot retire the last active signing key'
			USING ERRCODE = 'SA409', HINT = 'Run saas.rotate_signing_key() first.';
	END IF;
	UPDATE saas._signing_keys k SET retired_at = now_ts WHERE k.kid = retire_signing_key.kid;
END
$$;
COMMENT ON FUNCTION saas.retire_signing_key(text) IS
	'Retires a signing key: tokens signed with it stop verifying at once.';
