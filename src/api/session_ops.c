/*-------------------------------------------------------------------------
 *
 * session_ops.c
 *	  Sessions with refresh tokens: issuing the first refresh token of a
 *	  session with login's answer, rotating on POST /auth/refresh (reuse of a
 *	  rotated token revokes the whole family), ending families on logout,
 *	  and GET /auth/me.
 *
 * A session is a family of refresh tokens (saas._refresh_tokens, part 91);
 * each row also names the access token issued with it (jti, expiry), so
 * that logout finds the current token's family and reuse detection can end
 * the family's access tokens too. Each refresh token carries the user's
 * session generation at issue: whatever ends a user's access tokens
 * (logout-all, password change, demotion, deactivation move the generation
 * on) ends the refresh tokens with them. The table is the extension
 * owner's; every statement here runs elevated, naming its rows by
 * (org_id, ...) so that on Citus it is routed to one shard.
 *
 * Concurrency: the presented token's row is locked (FOR UPDATE) before its
 * state is read, so two refreshes with one token run one after the other:
 * the first rotates, the second finds it used, which is reuse.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "pg_saas.h"
#include "common/common.h"
#include "auth/auth.h"
#include "api/api.h"

PG_FUNCTION_INFO_V1(saas_sql_refresh);
PG_FUNCTION_INFO_V1(saas_sql_me);

static SaasPlan plan_rt_insert = {
	"INSERT INTO saas._refresh_tokens (org_id, id, user_id, family_id, parent_id, token_hash,"
	" generation, access_jti, access_expires_at, expires_at)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now() + make_interval(secs => $9),"
	" now() + make_interval(secs => $10))",
	10, {UUIDOID, UUIDOID, UUIDOID, UUIDOID, UUIDOID, BYTEAOID, INT8OID, TEXTOID, INT4OID, INT4OID}
};

static SaasPlan plan_rt_lock = {
	"SELECT user_id, family_id, token_hash, generation, used_at IS NOT NULL,"
	" revoked_at IS NOT NULL, expires_at <= now()"
	" FROM saas._refresh_tokens WHERE org_id = $1 AND id = $2 FOR UPDATE",
	2, {UUIDOID, UUIDOID}
};

static SaasPlan plan_rt_use = {
	"UPDATE saas._refresh_tokens SET used_at = now() WHERE org_id = $1 AND id = $2",
	2, {UUIDOID, UUIDOID}
};

static SaasPlan plan_rt_account = {
	"SELECT u.role, u.status = 'active' AND o.status = 'active', coalesce(s.generation, 0)"
	" FROM saas.users u JOIN saas.organizations o ON o.id = u.org_id"
	" LEFT JOIN saas._sessions s ON s.org_id = u.org_id AND s.user_id = u.id"
	" WHERE u.org_id = $1 AND u.id = $2",
	2, {UUIDOID, UUIDOID}
};

/* The family's access tokens still alive, before the family is revoked. */
static SaasPlan plan_rt_family_access = {
	"SELECT access_jti, extract(epoch FROM access_expires_at)::float8 FROM saas._refresh_tokens"
	" WHERE org_id = $1 AND user_id = $2 AND family_id = $3 AND access_expires_at > now()",
	3, {UUIDOID, UUIDOID, UUIDOID}
};

static SaasPlan plan_rt_revoke_family = {
	"UPDATE saas._refresh_tokens SET revoked_at = now(), revoked_reason = $4"
	" WHERE org_id = $1 AND user_id = $2 AND family_id = $3 AND revoked_at IS NULL",
	4, {UUIDOID, UUIDOID, UUIDOID, TEXTOID}
};

static SaasPlan plan_rt_revoke_current = {
	"UPDATE saas._refresh_tokens SET revoked_at = now(), revoked_reason = 'logout'"
	" WHERE org_id = $1 AND user_id = $2 AND revoked_at IS NULL AND family_id IN"
	" (SELECT f.family_id FROM saas._refresh_tokens f"
	"   WHERE f.org_id = $1 AND f.user_id = $2 AND f.access_jti = $3)",
	3, {UUIDOID, UUIDOID, TEXTOID}
};

static SaasPlan plan_rt_revoke_all = {
	"UPDATE saas._refresh_tokens SET revoked_at = now(), revoked_reason = 'logout_all'"
	" WHERE org_id = $1 AND user_id = $2 AND revoked_at IS NULL",
	2, {UUIDOID, UUIDOID}
};

static SaasPlan plan_rt_revoked_count = {
	"SELECT count(*) FROM saas._revoked_tokens WHERE org_id = $1 AND user_id = $2 AND expires_at > now()",
	2, {UUIDOID, UUIDOID}
};

static SaasPlan plan_rt_revoke_access = {
	"INSERT INTO saas._revoked_tokens (org_id, user_id, jti, expires_at)"
	" VALUES ($1, $2, $3, to_timestamp($4) + make_interval(secs => $5)) ON CONFLICT DO NOTHING",
	5, {UUIDOID, UUIDOID, TEXTOID, FLOAT8OID, INT4OID}
};

static SaasPlan plan_rt_bump = {
	"SELECT saas._session_bump($1, $2)",
	2, {UUIDOID, UUIDOID}
};

static SaasPlan plan_rt_audit = {
	"SELECT saas._audit_event($1, 'user', $2, 'refresh_reuse',"
	" jsonb_build_object('family_id', $3::text, 'sessions', 'family_revoked'))",
	3, {UUIDOID, UUIDOID, UUIDOID}
};

static SaasPlan plan_me_user = {
	"SELECT " USER_COLUMNS " FROM saas.users WHERE org_id = $1 AND id = $2",
	2, {UUIDOID, UUIDOID}
};

static SaasPlan plan_me_org = {
	"SELECT id, name, slug, subscription_tier FROM saas.organizations WHERE id = $1",
	1, {UUIDOID}
};

static const SaasField refresh_fields[] = {
	{"refresh_token", SF_STRING, true, 1, 256},
	{NULL}
};

/* rt_refuse: the one answer for every refresh token that is no good. */
static void
rt_refuse(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_SAAS_UNAUTHORIZED),
			 errmsg("invalid or expired refresh token; log in again")));
}

/*
 * rt_access_claims: the jti of an access token this extension just issued
 * (its payload is read without verification: we made it).
 */
static char *
rt_access_jti(const char *access_token)
{
	SaasJwtParts parts;
	Jsonb	   *claims;
	char	   *jti;

	if (saas_jwt_split(access_token, &parts) != SAAS_JWT_OK)
		elog(ERROR, "could not read an issued token");
	claims = saas_jsonb_from_text(parts.payload_json, parts.payload_len);
	jti = saas_get_str(claims, "jti");
	if (jti == NULL)
		elog(ERROR, "issued token has no jti");
	return jti;
}

/*
 * rt_store: a new refresh token of a family (family NULL: a new session,
 * the token's own id names it), stored as its hash; returns its text form.
 */
static char *
rt_store(const pg_uuid_t *org_id, const pg_uuid_t *user_id, int64 gen,
		 const pg_uuid_t *family, const pg_uuid_t *parent, const char *access_token)
{
	SaasRefreshToken t;
	unsigned char hash[32];
	bytea	   *h = palloc(VARHDRSZ + sizeof(hash));
	Datum		vals[10];
	char		nulls[10];
	SaasElevation elev;
	char	   *text;

	saas_refresh_new(org_id, &t);
	saas_refresh_hash(&t, hash);
	SET_VARSIZE(h, VARHDRSZ + sizeof(hash));
	memcpy(VARDATA(h), hash, sizeof(hash));
	memset(nulls, ' ', sizeof(nulls));
	vals[0] = saas_uuid_datum(org_id);
	vals[1] = saas_uuid_datum(&t.id);
	vals[2] = saas_uuid_datum(user_id);
	vals[3] = saas_uuid_datum(family ? family : &t.id);
	vals[4] = parent ? saas_uuid_datum(parent) : (Datum) 0;
	nulls[4] = parent ? ' ' : 'n';
	vals[5] = PointerGetDatum(h);
	vals[6] = Int64GetDatum(gen);
	vals[7] = CStringGetTextDatum(rt_access_jti(access_token));
	/* The access token's expiry, a little late rather than early. */
	vals[8] = Int32GetDatum(saas_jwt_ttl_s + 1);
	vals[9] = Int32GetDatum(saas_refresh_ttl_s);

	/* Its own SPI level: the caller's SPI_tuptable (login's user row) survives. */
	saas_spi_connect();
	saas_elevate(&elev);
	if (saas_exec(&plan_rt_insert, vals, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not store refresh token");
	saas_unelevate(&elev);
	SPI_finish();
	text = saas_refresh_encode(&t);
	explicit_bzero(&t, sizeof(t));
	return text;
}

/* rt_tokens_json: the token fields of an answer, after the access token's. */
static void
rt_tokens_json(StringInfo out, const char *refresh)
{
	appendStringInfoString(out, ",\"refresh_token\":");
	saas_json_string(out, refresh);
	appendStringInfo(out, ",\"refresh_expires_in\":%d", saas_refresh_ttl_s);
}

/*
 * saas_refresh_token_json: the refresh token of a new session, for every
 * answer like login's (register, login, and whatever else starts a
 * session): appends ,"refresh_token":..,"refresh_expires_in":.. for the
 * access token just issued to (org, user) with session generation gen.
 */
void
saas_refresh_token_json(StringInfo out, const pg_uuid_t *user_id, const pg_uuid_t *org_id,
						int64 gen, const char *access_token)
{
	/* A database still at 0.1.0 (library upgraded first) has no refresh tokens. */
	if (!saas_schema_at_least(SAAS_RELEASE_0_2))
		return;
	rt_tokens_json(out, rt_store(org_id, user_id, gen, NULL, NULL, access_token));
}

/*
 * rt_end_access: end the access tokens a family issued that are still
 * alive (kept as revoked like a logout's), or every session of the user
 * when that would make the user's revoked list longer than every backend
 * keeps (session.c).
 */
static void
rt_end_access(const pg_uuid_t *org_id, const pg_uuid_t *user_id, const pg_uuid_t *family)
{
	Datum		vals[5];
	bool		isnull;
	int64		have;
	uint64		n,
				i;
	SPITupleTable *tt;

	vals[0] = saas_uuid_datum(org_id);
	vals[1] = saas_uuid_datum(user_id);
	vals[2] = saas_uuid_datum(family);
	if (saas_exec(&plan_rt_family_access, vals, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read a session's tokens");
	n = SPI_processed;
	tt = SPI_tuptable;
	if (n == 0)
		return;
	if (saas_exec(&plan_rt_revoked_count, vals, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not count revoked tokens");
	have = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (have + (int64) n >= SAAS_SESSION_MAX_REVOKED)
	{
		saas_exec(&plan_rt_bump, vals, NULL, false, 1);
		return;
	}
	for (i = 0; i < n; i++)
	{
		vals[2] = SPI_getbinval(tt->vals[i], tt->tupdesc, 1, &isnull);
		vals[3] = SPI_getbinval(tt->vals[i], tt->tupdesc, 2, &isnull);
		vals[4] = Int32GetDatum(saas_jwt_leeway_s);
		saas_exec(&plan_rt_revoke_access, vals, NULL, false, 0);
	}
}

/*
 * saas_op_refresh: POST /auth/refresh {refresh_token}. On success writes
 * the new access and refresh tokens into out and returns true. A used
 * (rotated) token presented again revokes its family and the family's
 * access tokens, is audited, and returns false: the caller answers 401
 * WITHOUT raising, so that the revocation commits. Every other refusal
 * (unknown, forged, another tenant's, expired, revoked, ended session,
 * inactive account) raises 401 and changes nothing.
 */
bool
saas_op_refresh(Jsonb *body, StringInfo out)
{
	SaasErrors	e;
	SaasRefreshToken t;
	unsigned char hash[32];
	Datum		vals[3];
	bool		isnull;
	SaasElevation elev;
	HeapTuple	tup;
	TupleDesc	desc;
	pg_uuid_t	user_id,
				family;
	bytea	   *stored;
	int64		gen,
				gen_now;
	bool		used,
				revoked,
				expired,
				active;
	char	   *role;
	char	   *access;
	int			nest;

	saas_require_object(body);
	saas_errors_init(&e);
	saas_validate(body, refresh_fields, "", &e);
	saas_errors_raise(&e);
	if (!saas_refresh_decode(saas_get_str(body, "refresh_token"), &t))
		rt_refuse();
	saas_refresh_hash(&t, hash);
	explicit_bzero(t.secret, sizeof(t.secret));

	vals[0] = saas_uuid_datum(&t.org_id);
	vals[1] = saas_uuid_datum(&t.id);
	saas_spi_connect();
	saas_elevate(&elev);
	if (saas_exec(&plan_rt_lock, vals, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not look up refresh token");
	if (SPI_processed != 1)
		rt_refuse();
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	stored = DatumGetByteaPP(SPI_getbinval(tup, desc, 3, &isnull));
	/* Forged: the secret decides, in constant time; nothing is marked. */
	if (VARSIZE_ANY_EXHDR(stored) != sizeof(hash) ||
		!saas_timingsafe_eq(VARDATA_ANY(stored), hash, sizeof(hash)))
		rt_refuse();
	user_id = *DatumGetUUIDP(SPI_getbinval(tup, desc, 1, &isnull));
	family = *DatumGetUUIDP(SPI_getbinval(tup, desc, 2, &isnull));
	gen = DatumGetInt64(SPI_getbinval(tup, desc, 4, &isnull));
	used = DatumGetBool(SPI_getbinval(tup, desc, 5, &isnull));
	revoked = DatumGetBool(SPI_getbinval(tup, desc, 6, &isnull));
	expired = DatumGetBool(SPI_getbinval(tup, desc, 7, &isnull));

	if (used && !revoked)
	{
		/* Reuse: end the whole session, its access tokens too; audited. */
		vals[0] = saas_uuid_datum(&t.org_id);
		vals[1] = saas_uuid_datum(&user_id);
		vals[2] = saas_uuid_datum(&family);
		rt_end_access(&t.org_id, &user_id, &family);
		{
			Datum		rv[4] = {vals[0], vals[1], vals[2], CStringGetTextDatum("reuse")};

			saas_exec(&plan_rt_revoke_family, rv, NULL, false, 0);
		}
		nest = saas_context_push_trusted(&t.org_id, &user_id, SAAS_ROLE_USER);
		saas_exec(&plan_rt_audit, vals, NULL, false, 1);
		saas_context_pop(nest);
		saas_unelevate(&elev);
		SPI_finish();
		saas_session_forget();
		return false;
	}
	if (used || revoked || expired)
		rt_refuse();

	/* The account now: active, in an active organization, same session. */
	vals[1] = saas_uuid_datum(&user_id);
	if (saas_exec(&plan_rt_account, vals, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not look up user");
	if (SPI_processed != 1)
		rt_refuse();
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	role = SPI_getvalue(tup, desc, 1);
	active = DatumGetBool(SPI_getbinval(tup, desc, 2, &isnull));
	gen_now = DatumGetInt64(SPI_getbinval(tup, desc, 3, &isnull));
	if (!active || gen_now != gen)
		rt_refuse();

	vals[1] = saas_uuid_datum(&t.id);
	if (saas_exec(&plan_rt_use, vals, NULL, false, 0) != SPI_OK_UPDATE || SPI_processed != 1)
		rt_refuse();
	saas_unelevate(&elev);
	{
		SaasTokenClaims tc = {.user_id = &user_id, .org_id = &t.org_id, .role = role,
		.ttl_s = saas_jwt_ttl_s, .gen = gen_now};

		access = saas_token_issue(&tc);
	}
	appendStringInfoString(out, "{\"token\":");
	saas_json_string(out, access);
	appendStringInfo(out, ",\"token_type\":\"Bearer\",\"expires_in\":%d", saas_jwt_ttl_s);
	rt_tokens_json(out, rt_store(&t.org_id, &user_id, gen_now, &family, &t.id, access));
	appendStringInfoChar(out, '}');
	SPI_finish();
	return true;
}

/*
 * saas_refresh_end_sessions: logout's part: the refresh family of the access
 * token jti (logout), or every family of the user (jti NULL: logout-all).
 * Runs in the caller's SPI connection, elevated by the caller.
 */
void
saas_refresh_end_sessions(const pg_uuid_t *org_id, const pg_uuid_t *user_id, const char *jti)
{
	Datum		vals[3];

	if (!saas_schema_at_least(SAAS_RELEASE_0_2))
		return;					/* no refresh tokens before 0.2.0 */

	vals[0] = saas_uuid_datum(org_id);
	vals[1] = saas_uuid_datum(user_id);
	if (jti)
	{
		vals[2] = CStringGetTextDatum(jti);
		saas_exec(&plan_rt_revoke_current, vals, NULL, false, 0);
	}
	else
		saas_exec(&plan_rt_revoke_all, vals, NULL, false, 0);
}

/*
 * saas_op_me: GET /auth/me: the caller's user, its organization (id, name,
 * slug, subscription_tier) and the role the token acts with now.
 */
void
saas_op_me(StringInfo out)
{
	const SaasContext *ctx = saas_context_require();
	Datum		vals[2];

	vals[0] = saas_uuid_datum(&ctx->org_id);
	vals[1] = saas_uuid_datum(&ctx->user_id);
	saas_spi_connect();
	if (saas_exec(&plan_me_user, vals, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the user");
	if (SPI_processed != 1)
		saas_not_found("user");
	appendStringInfoString(out, "{\"user\":");
	saas_row_json(out, 0);
	if (saas_exec(&plan_me_org, vals, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the organization");
	if (SPI_processed != 1)
		saas_not_found("organization");
	appendStringInfoString(out, ",\"organization\":");
	saas_row_json(out, 0);
	appendStringInfoString(out, ",\"role\":");
	saas_json_string(out, ctx->role);
	appendStringInfoChar(out, '}');
	SPI_finish();
}

/* The answer saas.refresh gives for a reused token (not raised, see above). */
#define RT_REUSE_MESSAGE "refresh token reuse detected: the session has been ended; log in again"

const char *
saas_refresh_reuse_message(void)
{
	return RT_REUSE_MESSAGE;
}

/*
 * SQL: saas.refresh(refresh_token text) RETURNS jsonb. Errors are raised as
 * by the other SQL functions, except reuse, which returns the API's error
 * object so that the family's revocation commits with the caller.
 */
Datum
saas_sql_refresh(PG_FUNCTION_ARGS)
{
	StringInfoData out;
	StringInfoData body;
	int			nest;
	bool		ok;

	initStringInfo(&out);
	initStringInfo(&body);
	appendStringInfoString(&body, "{\"refresh_token\":");
	saas_json_string(&body, PG_ARGISNULL(0) ? "" : text_to_cstring(PG_GETARG_TEXT_PP(0)));
	appendStringInfoChar(&body, '}');
	nest = saas_env_push();
	ok = saas_op_refresh(saas_jsonb_from_text(body.data, body.len), &out);
	saas_env_pop(nest);
	if (!ok)
	{
		resetStringInfo(&out);
		appendStringInfoString(&out, "{\"error\":{\"code\":\"unauthorized\",\"message\":");
		saas_json_string(&out, RT_REUSE_MESSAGE);
		appendStringInfoString(&out, "}}");
	}
	PG_RETURN_DATUM(saas_sql_result(&out));
}

/* SQL: saas.me() RETURNS jsonb */
Datum
saas_sql_me(PG_FUNCTION_ARGS)
{
	SAAS_SQL_OP(saas_op_me(&out));
}
