/*-------------------------------------------------------------------------
 *
 * api_key_ops.c
 *	  API keys of the caller's organization: create (the secret shown once),
 *	  list, read, revoke; and their SQL functions (saas.create_api_key, ...).
 *
 * Admins (and super_admins, for their own organization) manage keys; a key
 * never does. These checks answer early; the database enforces them again
 * (extension/sql/92_api_keys.sql). Everything runs as the caller, under
 * row-level security.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/sha2.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "common/common.h"
#include "auth/auth.h"
#include "api/api.h"

PG_FUNCTION_INFO_V1(saas_sql_create_api_key);
PG_FUNCTION_INFO_V1(saas_sql_list_api_keys);
PG_FUNCTION_INFO_V1(saas_sql_get_api_key);
PG_FUNCTION_INFO_V1(saas_sql_revoke_api_key);

#define API_KEY_BASE_COLUMNS \
	"id, org_id, name, scopes, created_by, created_at, expires_at, last_used_at, revoked_at"
#define API_KEY_COLUMNS API_KEY_BASE_COLUMNS "," \
	" CASE WHEN revoked_at IS NOT NULL THEN 'revoked'" \
	" WHEN expires_at IS NOT NULL AND expires_at <= now() THEN 'expired' ELSE 'active' END AS status"

static const char *const admin_roles[] = {"admin", "super_admin", NULL};

/* A new key is active (its status as a constant: Citus takes no now() in RETURNING). */
static SaasPlan plan_insert = {
	"INSERT INTO saas.api_keys (org_id, id, name, scopes, created_by, expires_at)"
	" VALUES ($1, $2, $3, $4, $5, $6) RETURNING " API_KEY_BASE_COLUMNS ", 'active'::text AS status",
	6, {UUIDOID, UUIDOID, TEXTOID, TEXTARRAYOID, UUIDOID, TIMESTAMPTZOID}
};

static SaasPlan plan_secret = {
	"INSERT INTO saas._api_key_secrets (org_id, key_id, secret_hash) VALUES ($1, $2, $3)",
	3, {UUIDOID, UUIDOID, BYTEAOID}
};

static SaasPlan plan_list = {
	"SELECT " API_KEY_COLUMNS " FROM saas.api_keys"
	" WHERE org_id = $1 AND id > coalesce($2, '00000000-0000-0000-0000-000000000000'::uuid)"
	" ORDER BY org_id, id LIMIT $3",
	3, {UUIDOID, UUIDOID, INT4OID}
};

static SaasPlan plan_get = {
	"SELECT " API_KEY_COLUMNS " FROM saas.api_keys WHERE org_id = $1 AND id = $2",
	2, {UUIDOID, UUIDOID}
};

static SaasPlan plan_revoke = {
	"UPDATE saas.api_keys SET revoked_at = now() WHERE org_id = $1 AND id = $2 AND revoked_at IS NULL",
	2, {UUIDOID, UUIDOID}
};

static const SaasField create_fields[] = {
	{"name", SF_STRING, true, 1, 100},
	{"scopes", SF_STRING_ARRAY, true, 0, 4},
	{"expires_at", SF_STRING, false, 1, 64},
	{NULL}
};

/* ak_manager: the context of someone who may manage keys (an admin, never a key). */
static const SaasContext *
ak_manager(void)
{
	const SaasContext *ctx = saas_context_refuse_api_key("manage API keys");

	saas_require_role(ctx, admin_roles, "manage API keys");
	return ctx;
}

/* ak_timestamp: a date and time as text, false unless it reads as one. */
static bool
ak_timestamp(const char *s, TimestampTz *out)
{
	char		workbuf[MAXDATELEN + MAXDATEFIELDS];
	char	   *field[MAXDATEFIELDS];
	int			ftype[MAXDATEFIELDS];
	int			nf,
				dtype,
				tz;
	struct pg_tm tt;
	fsec_t		fsec;

	if (strlen(s) >= MAXDATELEN)
		return false;
	if (ParseDateTime(s, workbuf, sizeof(workbuf), field, ftype, MAXDATEFIELDS, &nf) != 0 ||
		DecodeDateTime(field, ftype, nf, &dtype, &tt, &fsec, &tz) != 0 ||
		dtype != DTK_DATE)
		return false;
	return tm2timestamp(&tt, fsec, &tz, out) == 0 && IS_VALID_TIMESTAMP(*out);
}

/*
 * ak_scopes: the requested scopes as a text[] Datum; each must be known and
 * given once (400 otherwise, with the field).
 */
static Datum
ak_scopes(Jsonb *body, SaasErrors *e)
{
	Jsonb	   *arr = saas_get_jsonb(body, "scopes");
	JsonbIterator *it;
	JsonbValue	el;
	JsonbIteratorToken r;
	Datum		elems[4];
	int			n = 0;
	uint32		seen = 0;

	if (arr == NULL)
		return (Datum) 0;
	it = JsonbIteratorInit(&arr->root);
	while ((r = JsonbIteratorNext(&it, &el, true)) != WJB_DONE)
	{
		char	   *name;
		uint32		bit;

		if (r != WJB_ELEM || el.type != jbvString || n >= 4)
			continue;
		name = pnstrdup(el.val.string.val, el.val.string.len);
		bit = saas_scope_bit(name);
		if (bit == 0)
		{
			saas_errors_add(e, "scopes", psprintf("unknown scope \"%s\"; known: users:read, users:write, audit:read, integrations:read",
												  name));
			return (Datum) 0;
		}
		if (seen & bit)
		{
			saas_errors_add(e, "scopes", psprintf("scope \"%s\" is given twice", name));
			return (Datum) 0;
		}
		seen |= bit;
		elems[n++] = CStringGetTextDatum(name);
	}
	if (n == 0)
	{
		saas_errors_add(e, "scopes", "must name at least one scope");
		return (Datum) 0;
	}
	return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/*
 * saas_op_create_api_key: POST /api-keys. The answer is the key's row plus
 * "key", the only time the secret is shown.
 */
static void
saas_op_create_api_key(Jsonb *body, StringInfo out)
{
	const SaasContext *ctx = ak_manager();
	SaasErrors	e;
	Datum		vals[6];
	char		nulls[7] = "      ";
	Datum		scopes;
	char	   *expires;
	TimestampTz exp_ts = 0;
	pg_uuid_t	key_id;
	unsigned char secret[SAAS_API_KEY_SECRET_BYTES];
	unsigned char hash[PG_SHA256_DIGEST_LENGTH];
	bytea	   *h;
	char	   *key;

	body = saas_require_object(body);
	saas_errors_init(&e);
	saas_validate(body, create_fields, "", &e);
	saas_errors_raise(&e);
	scopes = ak_scopes(body, &e);
	expires = saas_get_str(body, "expires_at");
	if (expires && !ak_timestamp(expires, &exp_ts))
		saas_errors_add(&e, "expires_at", "must be a date and time, like 2030-01-31T12:00:00Z");
	else if (expires && exp_ts <= GetCurrentTransactionStartTimestamp())
		saas_errors_add(&e, "expires_at", "must be in the future");
	saas_errors_raise(&e);

	saas_uuid_v7(&key_id);
	saas_random_bytes(secret, sizeof(secret));
	saas_api_key_hash(secret, hash);
	key = saas_api_key_format(&ctx->org_id, &key_id, secret);
	explicit_bzero(secret, sizeof(secret));

	vals[0] = saas_uuid_datum(&ctx->org_id);
	vals[1] = saas_uuid_datum(&key_id);
	vals[2] = CStringGetTextDatum(saas_get_str(body, "name"));
	vals[3] = scopes;
	vals[4] = saas_uuid_datum(&ctx->user_id);
	if (expires)
		vals[5] = TimestampTzGetDatum(exp_ts);
	else
		nulls[5] = 'n';

	saas_spi_connect();
	if (saas_exec(&plan_insert, vals, nulls, false, 0) != SPI_OK_INSERT_RETURNING || SPI_processed != 1)
		elog(ERROR, "could not create API key");
	saas_row_json(out, 0);
	/* the row's object, then the key: {"id":...,"status":"active","key":"sk_..."} */
	out->len--;
	appendStringInfoString(out, ",\"key\":");
	saas_json_string(out, key);
	appendStringInfoChar(out, '}');

	h = palloc(VARHDRSZ + sizeof(hash));
	SET_VARSIZE(h, VARHDRSZ + sizeof(hash));
	memcpy(VARDATA(h), hash, sizeof(hash));
	vals[2] = PointerGetDatum(h);
	if (saas_exec(&plan_secret, vals, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not store the API key's hash");
	SPI_finish();
}

/* saas_op_list_api_keys: GET /api-keys, paged by id; never a secret. */
static void
saas_op_list_api_keys(const SaasParams *p, StringInfo out)
{
	static const char *const allowed[] = {"limit", "cursor", NULL};
	const char *cursor = saas_param(p, "cursor");
	const SaasContext *ctx;
	int			limit;
	Datum		vals[3];
	char		nulls[4] = "   ";
	pg_uuid_t	after;

	saas_params_check(p, allowed);
	limit = saas_param_limit(p);
	if (cursor && !saas_cursor_uuid(cursor, &after))
		saas_raise_field_error("cursor", "is not a valid cursor");
	ctx = ak_manager();
	vals[0] = saas_uuid_datum(&ctx->org_id);
	if (cursor)
		vals[1] = saas_uuid_datum(&after);
	else
		nulls[1] = 'n';
	vals[2] = Int32GetDatum(limit + 1);
	saas_spi_connect();
	if (saas_exec(&plan_list, vals, nulls, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not list API keys");
	saas_page_json(out, limit, "id");
	SPI_finish();
}

/* saas_op_get_api_key: GET /api-keys/{id}. */
static void
saas_op_get_api_key(const pg_uuid_t *id, StringInfo out)
{
	const SaasContext *ctx = ak_manager();
	Datum		vals[2];

	vals[0] = saas_uuid_datum(&ctx->org_id);
	vals[1] = saas_uuid_datum(id);
	saas_spi_connect();
	if (saas_exec(&plan_get, vals, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read API key");
	if (SPI_processed == 0)
		saas_not_found("API key");
	saas_row_json(out, 0);
	SPI_finish();
}

/* saas_op_revoke_api_key: DELETE /api-keys/{id}; 409 when already revoked. */
static void
saas_op_revoke_api_key(const pg_uuid_t *id)
{
	const SaasContext *ctx = ak_manager();
	Datum		vals[2];

	vals[0] = saas_uuid_datum(&ctx->org_id);
	vals[1] = saas_uuid_datum(id);
	saas_spi_connect();
	if (saas_exec(&plan_revoke, vals, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not revoke API key");
	if (SPI_processed == 0)
	{
		if (saas_exec(&plan_get, vals, NULL, true, 1) != SPI_OK_SELECT || SPI_processed == 0)
			saas_not_found("API key");
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_CONFLICT),
				 errmsg("the API key is already revoked")));
	}
	SPI_finish();
	saas_api_key_forget();
}

/* The routes' entry points (routes_api_keys.c). */
void
saas_api_key_route_create(Jsonb *body, StringInfo out)
{
	saas_op_create_api_key(body, out);
}

void
saas_api_key_route_list(const SaasParams *p, StringInfo out)
{
	saas_op_list_api_keys(p, out);
}

void
saas_api_key_route_get(const pg_uuid_t *id, StringInfo out)
{
	saas_op_get_api_key(id, out);
}

void
saas_api_key_route_revoke(const pg_uuid_t *id)
{
	saas_op_revoke_api_key(id);
}

/* SQL: saas.create_api_key(body jsonb) RETURNS jsonb */
Datum
saas_sql_create_api_key(PG_FUNCTION_ARGS)
{
	SAAS_SQL_OP(saas_op_create_api_key(saas_sql_arg_jsonb(fcinfo, 0), &out));
}

/* SQL: saas.list_api_keys(params jsonb DEFAULT '{}') RETURNS jsonb */
Datum
saas_sql_list_api_keys(PG_FUNCTION_ARGS)
{
	SaasParams	p;

	saas_params_from_jsonb(saas_sql_arg_jsonb(fcinfo, 0), &p);
	SAAS_SQL_OP(saas_op_list_api_keys(&p, &out));
}

/* SQL: saas.get_api_key(id uuid) RETURNS jsonb */
Datum
saas_sql_get_api_key(PG_FUNCTION_ARGS)
{
	SAAS_SQL_OP(saas_op_get_api_key(saas_sql_arg_id(fcinfo, 0), &out));
}

/* SQL: saas.revoke_api_key(id uuid) RETURNS void */
Datum
saas_sql_revoke_api_key(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *id = saas_sql_arg_id(fcinfo, 0);
	int			nest = saas_env_push();

	saas_op_revoke_api_key(id);
	saas_env_pop(nest);
	PG_RETURN_VOID();
}
