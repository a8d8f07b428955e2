/*-------------------------------------------------------------------------
 *
 * auth_ops.c
 *	  Registration (a new organization with the caller as its admin) and
 *	  login (email and password for a token).
 *
 * Both run before any context exists. Registration acts under a trusted
 * context for the organization it creates; login reads users and
 * credentials across organizations as the extension owner, and costs one
 * argon2id verification whether or not the email exists.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "common/common.h"
#include "auth/auth.h"
#include "api/api.h"


/* Registrations of one email are serialized, so "already registered" is exact. */
static SaasPlan plan_email_lock = {
	"SELECT pg_advisory_xact_lock(hashtextextended('saas.register:' || lower($1), 0))",
	1, {TEXTOID}
};

static SaasPlan plan_email_exists = {
	"SELECT 1 FROM saas._user_emails WHERE email = lower($1) LIMIT 1",
	1, {TEXTOID}
};

static SaasPlan plan_org_insert = {
	"INSERT INTO saas.organizations (id, name, slug) VALUES ($1, $2, $3)"
	" ON CONFLICT (slug) DO NOTHING RETURNING " ORG_COLUMNS,
	3, {UUIDOID, TEXTOID, TEXTOID}
};

static SaasPlan plan_user_insert = {
	"INSERT INTO saas.users (org_id, id, email, first_name, last_name, role)"
	" VALUES ($1, $2, lower($3), $4, $5, 'admin') RETURNING " USER_COLUMNS,
	5, {UUIDOID, UUIDOID, TEXTOID, TEXTOID, TEXTOID}
};

/*
 * Login candidates: the accounts with this email, oldest claims first (a copy
 * made later by another tenant's admin cannot push the real owner out), at
 * most LOGIN_CANDIDATES of them, from the email directory (23_directory.sql):
 * one lookup, not one per shard. Each account is then read by its key (on
 * Citus a query routed to its organization's shard), and only if it still has
 * this email.
 */
#define LOGIN_CANDIDATES 3
static SaasPlan plan_login_lookup = {
	"SELECT d.org_id, d.user_id FROM saas._user_emails d JOIN saas.organizations o ON o.id = d.org_id"
	" WHERE d.email = lower($1) AND ($2::text IS NULL OR o.slug = $2)"
	" ORDER BY d.created_at, d.org_id, d.user_id LIMIT " CppAsString2(LOGIN_CANDIDATES),
	2, {TEXTOID, TEXTOID}
};

static SaasPlan plan_login_account = {
	"SELECT u.role, u.status, o.status AS org_status, c.password_hash, coalesce(s.generation, 0)"
	" FROM saas.users u JOIN saas.organizations o ON o.id = u.org_id"
	" LEFT JOIN saas._credentials c ON c.org_id = u.org_id AND c.user_id = u.id"
	" LEFT JOIN saas._sessions s ON s.org_id = u.org_id AND s.user_id = u.id"
	" WHERE u.org_id = $1 AND u.id = $2 AND u.email = lower($3)",
	3, {UUIDOID, UUIDOID, TEXTOID}
};

static SaasPlan plan_revoke = {
	"INSERT INTO saas._revoked_tokens (org_id, user_id, jti, expires_at)"
	" VALUES ($1, $2, $3, to_timestamp($4) + make_interval(secs => $5)) ON CONFLICT DO NOTHING",
	5, {UUIDOID, UUIDOID, TEXTOID, FLOAT8OID, INT4OID}
};

static SaasPlan plan_revoked_count = {
	"SELECT count(*) FROM saas._revoked_tokens WHERE org_id = $1 AND user_id = $2 AND expires_at > now()",
	2, {UUIDOID, UUIDOID}
};

static SaasPlan plan_session_bump = {
	"SELECT saas._session_bump($1, $2)",
	2, {UUIDOID, UUIDOID}
};

static SaasPlan plan_audit_event = {
	"SELECT saas._audit_event($1, 'user', $2, $3)",
	3, {UUIDOID, UUIDOID, TEXTOID}
};

static SaasPlan plan_touch_login = {
	"UPDATE saas.users SET last_login = now() WHERE org_id = $1 AND id = $2"
	" RETURNING " USER_COLUMNS,
	2, {UUIDOID, UUIDOID}
};

static const SaasField org_fields[] = {
	{"name", SF_STRING, true, 1, 200},
	{"slug", SF_SLUG, false},
	{NULL}
};

static const SaasField register_fields[] = {
	{"organization", SF_OBJECT, true},
	{"email", SF_EMAIL, true},
	{"password", SF_PASSWORD, true},
	{"first_name", SF_STRING, true, 1, 100},
	{"last_name", SF_STRING, true, 1, 100},
	{NULL}
};

static const SaasField login_fields[] = {
	{"email", SF_STRING, true, 1, 254},
	{"password", SF_STRING, true, 1, 256},
	{"organization", SF_STRING, false, 1, 63},
	{NULL}
};

/*
 * auth_token_json: the token fields of register and login answers (and of
 * the other answers that log a user in: accepting an invitation): the
 * access token and the refresh token of the new session.
 */
void
auth_token_json(StringInfo out, const pg_uuid_t *user_id, const pg_uuid_t *org_id,
				const char *role, int64 gen)
{
	SaasTokenClaims tc = {.user_id = user_id, .org_id = org_id, .role = role,
	.ttl_s = saas_jwt_ttl_s, .gen = gen};
	char	   *token = saas_token_issue(&tc);

	appendStringInfoString(out, "\"token\":");
	saas_json_string(out, token);
	appendStringInfo(out, ",\"token_type\":\"Bearer\",\"expires_in\":%d", saas_jwt_ttl_s);
	saas_refresh_token_json(out, user_id, org_id, gen, token);
}

/*
 * saas_op_register: POST /auth/register: a new organization and its first
 * admin, and a token.
 */
void
saas_op_register(Jsonb *body, StringInfo out)
{
	SaasErrors	e;
	Jsonb	   *org;
	char	   *email,
			   *password,
			   *slug,
			   *name;
	bool		slug_given;
	const char *why;
	Datum		vals[5];
	pg_uuid_t	org_id,
				user_id;
	int			nest,
				attempt;
	StringInfoData org_json;
	SaasElevation write_elev;
	bool		elevated;

	saas_require_object(body);
	saas_errors_init(&e);
	saas_validate(body, register_fields, "", &e);
	org = saas_get_jsonb(body, "organization");
	if (org)
		saas_validate(org, org_fields, "organization.", &e);
	saas_errors_raise(&e);

	email = saas_get_str(body, "email");
	password = saas_get_str(body, "password");
	if ((why = saas_password_policy_error(password, email)) != NULL)
		saas_raise_field_error("password", why);
	name = saas_get_str(org, "name");
	slug = saas_get_str(org, "slug");
	slug_given = (slug != NULL);
	if (!slug_given)
		slug = saas_slug_from_name(name);
	if (saas_slug_reserved(slug))
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_CONFLICT),
				 errmsg("organization slug \"%s\" is already taken", slug),
				 errdetail_internal("[{\"field\":\"organization.slug\",\"message\":\"is already taken\"}]")));

	saas_spi_connect();
	{
		SaasElevation elev;

		vals[0] = CStringGetTextDatum(email);
		saas_exec(&plan_email_lock, vals, NULL, false, 1);
		saas_elevate(&elev);
		/* Not read-only: a fresh snapshot sees a registration committed while we waited. */
		if (saas_exec(&plan_email_exists, vals, NULL, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not look up email");
		saas_unelevate(&elev);
		if (SPI_processed > 0)
			ereport(ERROR,
					(errcode(ERRCODE_SAAS_CONFLICT),
					 errmsg("this email is already registered"),
					 errdetail_internal("[{\"field\":\"email\",\"message\":\"is already registered; log in instead\"}]")));
	}

	saas_uuid_v7(&org_id);
	saas_uuid_v7(&user_id);
	/*
	 * On Citus every write of the registration goes over the owner's
	 * connections: the trusted context is honoured on the worker nodes only
	 * there, and Citus refuses a second user on the placements written. Each
	 * statement names the new ids (no row-level security for the owner).
	 */
	elevated = saas_elevate_citus(&write_elev);
	nest = saas_context_push_trusted(&org_id, &user_id, "admin");

	initStringInfo(&org_json);
	for (attempt = 0;; attempt++)
	{
		vals[0] = saas_uuid_datum(&org_id);
		vals[1] = CStringGetTextDatum(name);
		vals[2] = CStringGetTextDatum(slug);
		if (saas_exec(&plan_org_insert, vals, NULL, false, 0) != SPI_OK_INSERT_RETURNING)
			elog(ERROR, "could not create organization");
		if (SPI_processed == 1)
		{
			saas_row_json(&org_json, 0);
			break;
		}
		if (slug_given || attempt >= 5)
			ereport(ERROR,
					(errcode(ERRCODE_SAAS_CONFLICT),
					 errmsg("organization slug \"%s\" is already taken", slug),
					 errdetail_internal("[{\"field\":\"organization.slug\",\"message\":\"is already taken\"}]")));
		/* A derived slug collided: add a short random suffix and try again. */
		{
			unsigned char rnd[3];

			saas_random_bytes(rnd, sizeof(rnd));
			slug = psprintf("%.56s-%02x%02x%02x", saas_slug_from_name(name), rnd[0], rnd[1], rnd[2]);
		}
	}

	vals[0] = saas_uuid_datum(&org_id);
	vals[1] = saas_uuid_datum(&user_id);
	vals[2] = CStringGetTextDatum(email);
	vals[3] = CStringGetTextDatum(saas_get_str(body, "first_name"));
	vals[4] = CStringGetTextDatum(saas_get_str(body, "last_name"));
	saas_user_dir_set(&org_id, &user_id, email, NULL);
	if (saas_exec(&plan_user_insert, vals, NULL, false, 0) != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "could not create user");

	appendStringInfoChar(out, '{');
	auth_token_json(out, &user_id, &org_id, "admin", 0);
	appendStringInfoString(out, ",\"user\":");
	saas_row_json(out, 0);
	appendStringInfoString(out, ",\"organization\":");
	appendBinaryStringInfo(out, org_json.data, org_json.len);
	appendStringInfoChar(out, '}');

	saas_user_set_password(&org_id, &user_id, password, email);
	saas_context_pop(nest);
	if (elevated)
		saas_unelevate(&write_elev);
	SPI_finish();
}

/* auth_refuse: the one answer for unknown email and wrong password alike. */
static void
auth_refuse(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_SAAS_UNAUTHORIZED),
			 errmsg("invalid email or password")));
}

/*
 * Login. The email may exist in several organizations (another tenant's
 * admin can create a user with any email): the password decides. Every
 * login verifies exactly LOGIN_CANDIDATES times (real candidates, then
 * dummies), so neither the answer nor its cost tells how many accounts
 * share the email; exactly one matching account logs in.
 */
void
saas_op_login(Jsonb *body, StringInfo out)
{
	SaasErrors	e;
	char	   *email,
			   *password,
			   *orgslug;
	Datum		vals[3];
	char		nulls[3] = "  ";
	SaasElevation elev;
	uint64		n,
				i;
	int			matches = 0,
				chosen = -1;
	bool		isnull;
	pg_uuid_t	org_ids[LOGIN_CANDIDATES],
				user_ids[LOGIN_CANDIDATES],
				org_id,
				user_id;
	char	   *phcs[LOGIN_CANDIDATES] = {0},
			   *roles[LOGIN_CANDIDATES] = {0},
			   *statuses[LOGIN_CANDIDATES] = {0},
			   *org_statuses[LOGIN_CANDIDATES] = {0};
	int64		gens[LOGIN_CANDIDATES] = {0};
	char	   *role;
	int64		gen;

	saas_require_object(body);
	saas_errors_init(&e);
	saas_validate(body, login_fields, "", &e);
	saas_errors_raise(&e);
	email = saas_get_str(body, "email");
	password = saas_get_str(body, "password");
	orgslug = saas_get_str(body, "organization");

	vals[0] = CStringGetTextDatum(email);
	vals[1] = saas_text_datum_or_null(orgslug, &nulls[1]);
	saas_spi_connect();
	saas_elevate(&elev);
	if (saas_exec(&plan_login_lookup, vals, nulls, true, LOGIN_CANDIDATES) != SPI_OK_SELECT)
		elog(ERROR, "could not look up user");
	n = SPI_processed;
	for (i = 0; i < n; i++)
	{
		org_ids[i] = *DatumGetUUIDP(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		user_ids[i] = *DatumGetUUIDP(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
	}
	for (i = 0; i < n; i++)
	{
		HeapTuple	tup;
		TupleDesc	desc;

		vals[0] = saas_uuid_datum(&org_ids[i]);
		vals[1] = saas_uuid_datum(&user_ids[i]);
		vals[2] = CStringGetTextDatum(email);
		if (saas_exec(&plan_login_account, vals, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not look up user");
		if (SPI_processed == 0)
			continue;
		tup = SPI_tuptable->vals[0];
		desc = SPI_tuptable->tupdesc;
		roles[i] = SPI_getvalue(tup, desc, 1);
		statuses[i] = SPI_getvalue(tup, desc, 2);
		org_statuses[i] = SPI_getvalue(tup, desc, 3);
		phcs[i] = SPI_getvalue(tup, desc, 4);
		gens[i] = DatumGetInt64(SPI_getbinval(tup, desc, 5, &isnull));
	}
	saas_unelevate(&elev);
	for (i = 0; i < LOGIN_CANDIDATES; i++)
	{
		char	   *phc = i < n ? phcs[i] : NULL;

		if (phc == NULL)
			saas_password_burn(password);
		else if (saas_password_verify(password, phc))
		{
			matches++;
			chosen = (int) i;
		}
	}
	if (matches == 0)
		auth_refuse();
	/* Only someone who knows the password of both learns that the email is shared. */
	if (matches > 1)
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_VALIDATION),
				 errmsg("this email and password belong to several organizations"),
				 errdetail_internal("[{\"field\":\"organization\",\"message\":\"is required: give the organization's slug\"}]")));
	org_id = org_ids[chosen];
	user_id = user_ids[chosen];
	role = roles[chosen];
	gen = gens[chosen];
	if (strcmp(statuses[chosen], "active") != 0 || strcmp(org_statuses[chosen], "active") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_FORBIDDEN),
				 errmsg("this account is not active")));

	if (!saas_sso_password_login_allowed(&org_id))
		saas_raise_sso_only();

	saas_login_answer(&org_id, &user_id, role, gen, out);
	SPI_finish();
}

/*
 * saas_login_answer: the answer of a sign-in that succeeded (password login,
 * SSO callback): last_login set, a token, the user. SPI must be connected.
 */
void
saas_login_answer(const pg_uuid_t *org_id, const pg_uuid_t *user_id, const char *role,
				  int64 gen, StringInfo out)
{
	Datum		vals[2];
	SaasElevation elev;
	int			nest;
	bool		elevated;

	/* On Citus over the owner's connections (see saas_op_register); by its key. */
	elevated = saas_elevate_citus(&elev);
	nest = saas_context_push_trusted(org_id, user_id, role);
	vals[0] = saas_uuid_datum(org_id);
	vals[1] = saas_uuid_datum(user_id);
	if (saas_exec(&plan_touch_login, vals, NULL, false, 0) != SPI_OK_UPDATE_RETURNING ||
		SPI_processed != 1)
		auth_refuse();
	appendStringInfoChar(out, '{');
	auth_token_json(out, user_id, org_id, role, gen);
	appendStringInfoString(out, ",\"user\":");
	saas_row_json(out, 0);
	appendStringInfoChar(out, '}');
	saas_context_pop(nest);
	if (elevated)
		saas_unelevate(&elev);
}

/*
 * saas_audit_user_event: record an event of a user that is no row change
 * (logout, a password reset), without any secret. SPI must be connected.
 */
void
saas_audit_user_event(const pg_uuid_t *org_id, const pg_uuid_t *user_id, const char *action)
{
	Datum		vals[3];

	vals[0] = saas_uuid_datum(org_id);
	vals[1] = saas_uuid_datum(user_id);
	vals[2] = CStringGetTextDatum(action);
	if (saas_exec(&plan_audit_event, vals, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not audit");
}

/*
 * logout_token: the jti and expiry of the context's token, which a logout
 * ends; 400 for a context that is no user's token (a trusted one, or a
 * token without a jti).
 */
static void
logout_token(const SaasContext *ctx, char *jti /* 65 bytes */ , int64 *exp)
{
	if (ctx->trusted || !saas_context_token(jti, exp) || jti[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_VALIDATION),
				 errmsg("this token cannot be logged out; use /auth/logout-all")));
}

/*
 * logout_local: end the context's token (everything: every session of its
 * user) here, as the owner; audited. On Citus this runs on the node of the
 * organization's shards (logout_routed).
 */
static void
logout_local(const SaasContext *ctx, bool everything)
{
	char		jti[65] = "";
	int64		exp = 0;
	Datum		vals[5];
	SaasElevation elev;
	bool		isnull;

	if (!everything)
		logout_token(ctx, jti, &exp);
	vals[0] = saas_uuid_datum(&ctx->org_id);
	vals[1] = saas_uuid_datum(&ctx->user_id);
	vals[2] = CStringGetTextDatum(jti);
	vals[3] = Float8GetDatum((double) exp);
	vals[4] = Int32GetDatum(saas_jwt_leeway_s);
	saas_spi_connect();
	saas_elevate(&elev);
	saas_citus_nested_reads();
	saas_audit_user_event(&ctx->org_id, &ctx->user_id, everything ? "logout_all" : "logout");
	if (everything)
		saas_exec(&plan_session_bump, vals, NULL, false, 1);
	else
	{
		if (saas_exec(&plan_revoked_count, vals, NULL, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not count revoked tokens");
		if (DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) >=
			SAAS_SESSION_MAX_REVOKED - 1)
			saas_exec(&plan_session_bump, vals, NULL, false, 1);
		else
			saas_exec(&plan_revoke, vals, NULL, false, 0);
	}
	saas_refresh_end_sessions(&ctx->org_id, &ctx->user_id, everything ? NULL : jti);
	saas_unelevate(&elev);
	SPI_finish();
	saas_session_forget();
}

/*
 * On Citus the session rows live on the node of the organization's shards.
 * Written there as the owner from the coordinator they would travel over the
 * owner's connection, which Citus refuses once the caller has written those
 * placements in the transaction (25001). So the logout runs there over the
 * caller's own connection: saas._logout_here, evaluated on that node by a
 * query routed to the organization's shard, ends the forwarded context's
 * token (as saas._context_facts reads facts, src/auth/session.c).
 */
static SaasPlan plan_logout_routed = {
	"SELECT count(*), saas._logout_here($1, $2) FROM saas.users WHERE org_id = $1",
	2, {UUIDOID, BOOLOID}
};

/* logout: end the context's token or every session, where its rows live. */
static void
logout(bool everything)
{
	const SaasContext *ctx = saas_context_refuse_api_key("log out; revoke the key instead");

	if (everything && ctx->trusted)
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_VALIDATION),
				 errmsg("only a user's token can log out")));
	if (saas_facts_routed())
	{
		Datum		args[2] = {saas_uuid_datum(&ctx->org_id), BoolGetDatum(everything)};
		char		jti[65];
		int64		exp;

		/* Refused here, before anything travels, as on a single node. */
		if (!everything)
			logout_token(ctx, jti, &exp);
		saas_spi_connect();
		if (!saas_caller_row(&plan_logout_routed, args, NULL))
			elog(ERROR, "could not log out on the organization's node");
		SPI_finish();
		saas_session_forget();
	}
	else
		logout_local(ctx, everything);
}

/*
 * POST /auth/logout: ends the token in use. It is remembered (by jti) until
 * it would have expired; a user with many such tokens has all its sessions
 * ended instead, which keeps the list every backend reads short.
 */
void
saas_op_logout(void)
{
	logout(false);
}

/* POST /auth/logout-all: ends every session of the caller. */
void
saas_op_logout_all(void)
{
	logout(true);
}

PG_FUNCTION_INFO_V1(saas_logout_here);

/*
 * SQL: saas._logout_here(org_id uuid, everything boolean) RETURNS boolean.
 * The logout of the context in force, on this node (see plan_logout_routed):
 * no more than saas.logout()/saas.logout_all() let the caller do.
 */
Datum
saas_logout_here(PG_FUNCTION_ARGS)
{
	const SaasContext *ctx = saas_context_refuse_api_key("log out; revoke the key instead");

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || ctx->trusted ||
		memcmp(PG_GETARG_UUID_P(0)->data, ctx->org_id.data, UUID_LEN) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_NOT_FOUND),
				 errmsg("organization not found")));
	logout_local(ctx, PG_GETARG_BOOL(1));
	PG_RETURN_BOOL(true);
}
