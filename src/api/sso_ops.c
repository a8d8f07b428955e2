/*-------------------------------------------------------------------------
 *
 * sso_ops.c
 *	  An organization's SSO connection, managed by its admins (GET, PUT,
 *	  DELETE /sso/connection and the SQL API), and what password login asks
 *	  of it. The sign-in itself is sso_flow.c.
 *
 * The connection is written as the caller, so row-level security decides
 * (admins of the organization); the client secret goes to a private table
 * as the extension's owner, only after that write succeeded, and is never
 * read back by anything but the callback.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "common/common.h"
#include "auth/auth.h"
#include "auth/oidc.h"
#include "api/api.h"

PG_FUNCTION_INFO_V1(saas_sql_get_sso_connection);
PG_FUNCTION_INFO_V1(saas_sql_put_sso_connection);
PG_FUNCTION_INFO_V1(saas_sql_delete_sso_connection);
PG_FUNCTION_INFO_V1(saas_oidc_verify_sql);

#define SSO_CONN_COLUMNS \
	"id, org_id, issuer, client_id, redirect_uri, allowed_domains, default_role, " \
	"password_login_allowed, enabled, created_at, updated_at"

static SaasPlan plan_conn_get = {
	"SELECT " SSO_CONN_COLUMNS " FROM saas.sso_connections WHERE org_id = $1",
	1, {UUIDOID}
};

static SaasPlan plan_conn_lock = {
	"SELECT id FROM saas.sso_connections WHERE org_id = $1 FOR UPDATE",
	1, {UUIDOID}
};

static SaasPlan plan_conn_insert = {
	"INSERT INTO saas.sso_connections (org_id, id, issuer, client_id, redirect_uri, allowed_domains,"
	" default_role, password_login_allowed, enabled) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
	" RETURNING " SSO_CONN_COLUMNS,
	9, {UUIDOID, UUIDOID, TEXTOID, TEXTOID, TEXTOID, TEXTARRAYOID, TEXTOID, BOOLOID, BOOLOID}
};

static SaasPlan plan_conn_update = {
	"UPDATE saas.sso_connections SET issuer = $3, client_id = $4, redirect_uri = $5,"
	" allowed_domains = $6, default_role = $7, password_login_allowed = $8, enabled = $9,"
	" updated_at = pg_catalog.now() WHERE org_id = $1 AND id = $2 RETURNING " SSO_CONN_COLUMNS,
	9, {UUIDOID, UUIDOID, TEXTOID, TEXTOID, TEXTOID, TEXTARRAYOID, TEXTOID, BOOLOID, BOOLOID}
};

static SaasPlan plan_conn_delete = {
	"DELETE FROM saas.sso_connections WHERE org_id = $1 RETURNING id",
	1, {UUIDOID}
};

static SaasPlan plan_secret_put = {
	"INSERT INTO saas._sso_secrets (org_id, connection_id, client_secret) VALUES ($1, $2, $3)"
	" ON CONFLICT (org_id, connection_id) DO UPDATE SET client_secret = EXCLUDED.client_secret",
	3, {UUIDOID, UUIDOID, TEXTOID}
};

static SaasPlan plan_password_allowed = {
	"SELECT password_login_allowed FROM saas.sso_connections WHERE org_id = $1 AND enabled",
	1, {UUIDOID}
};

static const char *const sso_roles[] = {"user", "admin", NULL};
static const char *const sso_managers[] = {SAAS_ROLE_ADMIN, SAAS_ROLE_SUPER_ADMIN, NULL};

static const SaasField conn_fields[] = {
	{"issuer", SF_STRING, true, 1, 512},
	{"client_id", SF_STRING, true, 1, 255},
	{"client_secret", SF_STRING, false, 8, 512},
	{"redirect_uri", SF_STRING, true, 1, 1024},
	{"allowed_domains", SF_STRING_ARRAY, true, 0, 32},
	{"default_role", SF_ENUM, false, 0, 0, sso_roles},
	{NULL}
};

/* sso_url_ok: an absolute http(s) URL without spaces (and, for an issuer, query or fragment). */
static bool
sso_url_ok(const char *s, bool issuer)
{
	const char *rest;

	if (strncmp(s, "https://", 8) == 0)
		rest = s + 8;
	else if (strncmp(s, "http://", 7) == 0)
		rest = s + 7;
	else
		return false;
	if (*rest == '\0' || *rest == '/')
		return false;
	for (const char *p = rest; *p; p++)
	{
		if ((unsigned char) *p <= ' ' || *p == 0x7f || *p == '#')
			return false;
		if (issuer && *p == '?')
			return false;
	}
	return true;
}

/* sso_domain_ok: a lower-case DNS name with at least two labels. */
static bool
sso_domain_ok(const char *d)
{
	int			len = strlen(d);
	bool		dot = false;

	if (len < 3 || len > 253 || d[0] == '.' || d[0] == '-' || d[len - 1] == '.' || d[len - 1] == '-')
		return false;
	for (int i = 0; i < len; i++)
	{
		char		c = d[i];

		if (c == '.')
		{
			if (d[i + 1] == '.' || d[i + 1] == '-' || (i > 0 && d[i - 1] == '-'))
				return false;
			dot = true;
		}
		else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return false;
	}
	return dot;
}

/* sso_bool: an optional boolean member; dflt when absent, an error when not a boolean. */
static bool
sso_bool(Jsonb *body, const char *key, bool dflt, SaasErrors *e)
{
	JsonbValue *v = saas_jsonb_get(body, key);

	if (v == NULL)
		return dflt;
	if (v->type != jbvBool)
	{
		saas_errors_add(e, key, "must be true or false");
		return dflt;
	}
	return v->val.boolean;
}

/* sso_domains: allowed_domains as a text[] Datum, each checked (lower case). */
static Datum
sso_domains(Jsonb *body, SaasErrors *e)
{
	JsonbValue *v = saas_jsonb_get(body, "allowed_domains");
	JsonbContainer *arr;
	int			n;
	Datum	   *elems;

	if (v == NULL || v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
		return (Datum) 0;		/* reported by saas_validate */
	arr = v->val.binary.data;
	n = JsonContainerSize(arr);
	if (n == 0)
	{
		saas_errors_add(e, "allowed_domains", "must name at least one domain");
		return (Datum) 0;
	}
	elems = palloc(sizeof(Datum) * n);
	for (int i = 0; i < n; i++)
	{
		JsonbValue *el = getIthJsonbValueFromContainer(arr, i);
		char	   *d;

		if (el == NULL || el->type != jbvString)
			return (Datum) 0;	/* reported by saas_validate */
		d = pnstrdup(el->val.string.val, el->val.string.len);
		if (!sso_domain_ok(d))
		{
			saas_errors_add(e, "allowed_domains", "must be lower-case domain names such as example.com");
			return (Datum) 0;
		}
		elems[i] = CStringGetTextDatum(d);
	}
	return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/* GET /sso/connection: the organization's connection, without the secret. */
void
saas_op_get_sso_connection(StringInfo out)
{
	const SaasContext *ctx = saas_context_require();
	Datum		vals[1];

	saas_require_role(ctx, sso_managers, "read the SSO connection");
	vals[0] = saas_uuid_datum(&ctx->org_id);
	saas_spi_connect();
	if (saas_exec(&plan_conn_get, vals, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the SSO connection");
	if (SPI_processed == 0)
		saas_not_found("SSO connection");
	saas_row_json(out, 0);
	SPI_finish();
}

/*
 * PUT /sso/connection: create or replace the connection. Every field but the
 * secret is given each time; the secret is required on creation and kept
 * when absent afterwards.
 */
void
saas_op_put_sso_connection(Jsonb *body, StringInfo out, bool *created)
{
	const SaasContext *ctx = saas_context_require();
	SaasErrors	e;
	Jsonb	   *rest;
	char	   *issuer,
			   *client_id,
			   *secret,
			   *redirect,
			   *role;
	bool		pw_allowed,
				enabled;
	Datum		domains,
				vals[9];
	pg_uuid_t	id;
	SaasElevation wr;
	bool		welev;

	saas_require_role(ctx, sso_managers, "manage the SSO connection");
	saas_require_object(body);
	saas_errors_init(&e);
	pw_allowed = sso_bool(body, "password_login_allowed", true, &e);
	enabled = sso_bool(body, "enabled", true, &e);
	/* The booleans are checked above; the validator takes the rest. */
	rest = DatumGetJsonbP(DirectFunctionCall2(jsonb_delete, JsonbPGetDatum(body),
											  CStringGetTextDatum("password_login_allowed")));
	rest = DatumGetJsonbP(DirectFunctionCall2(jsonb_delete, JsonbPGetDatum(rest),
											  CStringGetTextDatum("enabled")));
	saas_validate(rest, conn_fields, "", &e);
	issuer = saas_get_str(body, "issuer");
	client_id = saas_get_str(body, "client_id");
	secret = saas_get_str(body, "client_secret");
	redirect = saas_get_str(body, "redirect_uri");
	role = saas_get_str(body, "default_role");
	if (issuer && !sso_url_ok(issuer, true))
		saas_errors_add(&e, "issuer", "must be an http(s) URL without query or fragment");
	else if (issuer && !saas_oidc_url_allowed(issuer))
		saas_errors_add(&e, "issuer",
						"is not among the identity providers this server may call (setting saas.sso_allowed_origins, set by the database's superuser)");
	if (redirect && !sso_url_ok(redirect, false))
		saas_errors_add(&e, "redirect_uri", "must be an http(s) URL without fragment");
	if (client_id)
		for (const char *p = client_id; *p; p++)
			if ((unsigned char) *p <= ' ' || (unsigned char) *p >= 0x7f)
			{
				saas_errors_add(&e, "client_id", "must be printable ASCII without spaces");
				break;
			}
	domains = sso_domains(body, &e);
	saas_errors_raise(&e);

	saas_spi_connect();
	/*
	 * On Citus the whole write goes over the owner's connections (Citus
	 * refuses a second user on the placements a transaction wrote): the
	 * role was checked above, and every statement names the context's
	 * organization.
	 */
	welev = saas_elevate_citus(&wr);
	vals[0] = saas_uuid_datum(&ctx->org_id);
	if (saas_exec(&plan_conn_lock, vals, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the SSO connection");
	*created = (SPI_processed == 0);
	if (*created)
	{
		if (secret == NULL)
			saas_raise_field_error("client_secret", "is required when the connection is created");
		saas_uuid_v7(&id);
	}
	else
	{
		bool		isnull;

		id = *DatumGetUUIDP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	}
	vals[1] = saas_uuid_datum(&id);
	vals[2] = CStringGetTextDatum(issuer);
	vals[3] = CStringGetTextDatum(client_id);
	vals[4] = CStringGetTextDatum(redirect);
	vals[5] = domains;
	vals[6] = CStringGetTextDatum(role ? role : "user");
	vals[7] = BoolGetDatum(pw_allowed);
	vals[8] = BoolGetDatum(enabled);
	if (saas_exec(*created ? &plan_conn_insert : &plan_conn_update, vals, NULL, false, 0) < 0 ||
		SPI_processed != 1)
		saas_not_found("SSO connection");
	saas_row_json(out, 0);
	if (secret != NULL)
	{
		SaasElevation elev;

		/* The connection row passed row-level security: this organization's admin. */
		vals[2] = CStringGetTextDatum(secret);
		if (!welev)
			saas_elevate(&elev);
		saas_exec(&plan_secret_put, vals, NULL, false, 0);
		if (!welev)
			saas_unelevate(&elev);
	}
	if (welev)
		saas_unelevate(&wr);
	SPI_finish();
}

/* DELETE /sso/connection: the connection, its secret and sign-ins under way. */
void
saas_op_delete_sso_connection(void)
{
	const SaasContext *ctx = saas_context_require();
	Datum		vals[1];
	SaasElevation wr;
	bool		welev;

	saas_require_role(ctx, sso_managers, "remove the SSO connection");
	vals[0] = saas_uuid_datum(&ctx->org_id);
	saas_spi_connect();
	welev = saas_elevate_citus(&wr);	/* as in saas_op_put_sso_connection */
	if (saas_exec(&plan_conn_delete, vals, NULL, false, 0) != SPI_OK_DELETE_RETURNING)
		elog(ERROR, "could not remove the SSO connection");
	if (SPI_processed == 0)
		saas_not_found("SSO connection");
	if (welev)
		saas_unelevate(&wr);
	SPI_finish();
}

/*
 * saas_sso_password_login_allowed: false when the organization has an
 * enabled SSO connection that turns password login off. SPI connected.
 */
bool
saas_sso_password_login_allowed(const pg_uuid_t *org_id)
{
	SaasElevation elev;
	Datum		vals[1];
	bool		allowed = true;

	if (!saas_schema_at_least(SAAS_RELEASE_0_2))
		return true;			/* no SSO connections before 0.2.0 */
	vals[0] = saas_uuid_datum(org_id);
	saas_elevate(&elev);
	if (saas_exec(&plan_password_allowed, vals, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the SSO connection");
	if (SPI_processed == 1)
	{
		bool		isnull;

		allowed = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	}
	saas_unelevate(&elev);
	return allowed;
}

/*
 * saas_raise_sso_only: the 403 of every password path (login, accepting an
 * invitation, confirming a reset) in an organization whose SSO connection
 * turns password login off.
 */
void
saas_raise_sso_only(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_SAAS_FORBIDDEN),
			 errmsg("this organization signs in with single sign-on only"),
			 errhint("Use GET /auth/sso/{organization-slug}/start.")));
}

/* The SQL API: pin the environment, run the operation, return its JSON. */
Datum
saas_sql_get_sso_connection(PG_FUNCTION_ARGS)
{
	SAAS_SQL_OP(saas_op_get_sso_connection(&out));
}

Datum
saas_sql_put_sso_connection(PG_FUNCTION_ARGS)
{
	bool		created;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_VALIDATION),
				 errmsg("the connection must not be null")));
	SAAS_SQL_OP(saas_op_put_sso_connection(PG_GETARG_JSONB_P(0), &out, &created));
}

Datum
saas_sql_delete_sso_connection(PG_FUNCTION_ARGS)
{
	int			nest = saas_env_push();

	saas_op_delete_sso_connection();
	saas_env_pop(nest);
	PG_RETURN_VOID();
}

/*
 * SQL: saas._oidc_verify(token, jwks, issuer, client_id, nonce): the
 * callback's id_token check alone (owner only; tests).
 */
Datum
saas_oidc_verify_sql(PG_FUNCTION_ARGS)
{
	SaasOidcExpect x;
	SaasOidcStatus st;
	Jsonb	   *claims;

	for (int i = 0; i < 5; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_SAAS_VALIDATION),
					 errmsg("every argument is required")));
	x.issuer = text_to_cstring(PG_GETARG_TEXT_PP(2));
	x.client_id = text_to_cstring(PG_GETARG_TEXT_PP(3));
	x.nonce = text_to_cstring(PG_GETARG_TEXT_PP(4));
	x.now = (int64) (GetCurrentTimestamp() / USECS_PER_SEC) +
		(POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY;
	x.leeway_s = saas_jwt_leeway_s;
	x.max_age_s = 600;
	st = saas_oidc_verify(text_to_cstring(PG_GETARG_TEXT_PP(0)), PG_GETARG_JSONB_P(1), &x, &claims);
	if (st != SAAS_OIDC_OK)
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_UNAUTHORIZED),
				 errmsg("%s", saas_oidc_message(st))));
	PG_RETURN_JSONB_P(claims);
}
