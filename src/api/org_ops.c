/*-------------------------------------------------------------------------
 *
 * org_ops.c
 *	  Organizations: list, create (with its first admin), read, update,
 *	  delete.
 *
 * Members read their organization; its admins change its name and slug;
 * the platform's super_admin manages every organization, including the
 * commercial fields (tier, employee limit, features, status, external ids).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "common/common.h"
#include "auth/auth.h"
#include "api/api.h"


static const char *const super_roles[] = {"super_admin", NULL};

static SaasPlan plan_list_all = {
	"SELECT " ORG_COLUMNS " FROM saas.organizations"
	" WHERE id > coalesce($1, '00000000-0000-0000-0000-000000000000'::uuid)"
	" ORDER BY id LIMIT $2",
	2, {UUIDOID, INT4OID}
};

static SaasPlan plan_get = {
	"SELECT " ORG_COLUMNS " FROM saas.organizations WHERE id = $1",
	1, {UUIDOID}
};

static SaasPlan plan_lock = {
	"SELECT " ORG_COLUMNS " FROM saas.organizations WHERE id = $1 FOR NO KEY UPDATE",
	1, {UUIDOID}
};

static SaasPlan plan_insert = {
	"INSERT INTO saas.organizations (id, name, slug, subscription_tier, employee_limit, features_enabled)"
	" VALUES ($1, $2, $3, coalesce($4, 'free'), coalesce($5, 10), coalesce($6, '{}'::text[]))"
	" RETURNING " ORG_COLUMNS,
	6, {UUIDOID, TEXTOID, TEXTOID, TEXTOID, INT4OID, TEXTARRAYOID}
};

static SaasPlan plan_update = {
	"UPDATE saas.organizations SET name = coalesce($2, name), slug = coalesce($3, slug),"
	" subscription_tier = coalesce($4, subscription_tier), employee_limit = coalesce($5, employee_limit),"
	" features_enabled = coalesce($6, features_enabled), external_ids = coalesce($7, external_ids),"
	" status = coalesce($8, status)"
	" WHERE id = $1 RETURNING " ORG_COLUMNS,
	8, {UUIDOID, TEXTOID, TEXTOID, TEXTOID, INT4OID, TEXTARRAYOID, JSONBOID, TEXTOID}
};

static SaasPlan plan_delete = {
	"DELETE FROM saas.organizations WHERE id = $1",
	1, {UUIDOID}
};

static SaasPlan plan_insert_admin = {
	"INSERT INTO saas.users (org_id, id, email, first_name, last_name, role)"
	" VALUES ($1, $2, lower($3), $4, $5, 'admin') RETURNING " USER_COLUMNS,
	5, {UUIDOID, UUIDOID, TEXTOID, TEXTOID, TEXTOID}
};

static const SaasField admin_user_fields[] = {
	{"email", SF_EMAIL, true},
	{"password", SF_PASSWORD, true},
	{"first_name", SF_STRING, true, 1, 100},
	{"last_name", SF_STRING, true, 1, 100},
	{NULL}
};

static const SaasField create_fields[] = {
	{"name", SF_STRING, true, 1, 200},
	{"slug", SF_SLUG, false},
	{"subscription_tier", SF_ENUM, false, 0, 0, saas_tiers},
	{"employee_limit", SF_INT, false, 1, 1000000},
	{"features_enabled", SF_STRING_ARRAY, false, 0, 32},
	{"admin_user", SF_OBJECT, true},
	{NULL}
};

static const SaasField update_fields[] = {
	{"name", SF_STRING, false, 1, 200},
	{"slug", SF_SLUG, false},
	{"subscription_tier", SF_ENUM, false, 0, 0, saas_tiers},
	{"employee_limit", SF_INT, false, 1, 1000000},
	{"features_enabled", SF_STRING_ARRAY, false, 0, 32},
	{"external_ids", SF_STRING_MAP, false, 0, 16},
	{"status", SF_ENUM, false, 0, 0, saas_org_statuses},
	{NULL}
};

/*
 * saas_slug_from_name: a slug derived from a name: lower-case ASCII letters
 * and digits, other runs become one hyphen. "org" when nothing is left.
 */

/*
 * saas_slug_from_name: a URL slug from an organization name: lowercase ASCII
 * letters and digits, runs of anything else as one hyphen (from at most 48
 * characters); "org" when nothing is left, "-org" appended to a reserved one.
 */
char *
saas_slug_from_name(const char *name)
{
	StringInfoData s;
	const char *p;
	bool		hyphen = false;

	initStringInfo(&s);
	for (p = name; *p && s.len < 48; p++)
	{
		char		c = *p;

		if (c >= 'A' && c <= 'Z')
			c += 32;
		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
		{
			if (hyphen && s.len > 0)
				appendStringInfoChar(&s, '-');
			hyphen = false;
			appendStringInfoChar(&s, c);
		}
		else
			hyphen = true;
	}
	if (s.len == 0)
		appendStringInfoString(&s, "org");
	if (saas_slug_reserved(s.data))
		appendStringInfoString(&s, "-org");
	return s.data;
}

/* saas_slug_reserved: slugs no tenant may take ("platform" is the operators'). */
bool
saas_slug_reserved(const char *slug)
{
	return strcmp(slug, "platform") == 0;
}

/* org_text_array: a jsonb array of strings as a text[] Datum. */
static Datum
org_text_array(Jsonb *arr)
{
	JsonbIterator *it = JsonbIteratorInit(&arr->root);
	JsonbValue	v;
	JsonbIteratorToken r;
	Datum	   *elems = palloc(sizeof(Datum) * 64);
	int			n = 0;

	while ((r = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		if (r == WJB_ELEM && v.type == jbvString && n < 64)
			elems[n++] = PointerGetDatum(cstring_to_text_with_len(v.val.string.val,
																  v.val.string.len));
	return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/*
 * saas_op_list_orgs: GET /organizations: all of them for a super admin, else
 * one's own.
 */
void
saas_op_list_orgs(const SaasParams *p, StringInfo out)
{
	static const char *const allowed[] = {"limit", "cursor", NULL};
	const SaasContext *ctx = saas_context_require();
	const char *cursor = saas_param(p, "cursor");
	int			limit;
	Datum		vals[2];
	char		nulls[3] = "  ";
	pg_uuid_t	after;

	saas_params_check(p, allowed);
	limit = saas_param_limit(p);
	if (cursor && !saas_cursor_uuid(cursor, &after))
		saas_raise_field_error("cursor", "is not a valid cursor");
	saas_spi_connect();
	if (strcmp(ctx->role, "super_admin") == 0)
	{
		if (cursor)
			vals[0] = saas_uuid_datum(&after);
		else
			nulls[0] = 'n';
		vals[1] = Int32GetDatum(limit + 1);
		if (saas_exec(&plan_list_all, vals, nulls, true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not list organizations");
		saas_page_json(out, limit, "id");
	}
	else
	{
		/* Members see exactly their own organization. */
		vals[0] = saas_uuid_datum(&ctx->org_id);
		if (saas_exec(&plan_get, vals, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not read organization");
		if (cursor)
			SPI_processed = 0;	/* the one page has been served */
		saas_page_json(out, limit, "id");
	}
	SPI_finish();
}

/*
 * saas_op_get_org: GET /organizations/{id}; returns the version for the
 * ETag.
 */
int64
saas_op_get_org(const pg_uuid_t *id, StringInfo out)
{
	const SaasContext *ctx = saas_context_require();
	Datum		vals[1];
	int64		version;

	if (strcmp(ctx->role, "super_admin") != 0 &&
		memcmp(&ctx->org_id, id, sizeof(pg_uuid_t)) != 0)
		saas_not_found("organization");
	vals[0] = saas_uuid_datum(id);
	saas_spi_connect();
	if (saas_exec(&plan_get, vals, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read organization");
	if (SPI_processed == 0)
		saas_not_found("organization");
	version = saas_row_json(out, 0);
	SPI_finish();
	return version;
}

/*
 * saas_op_create_org: POST /organizations (super admins): the organization
 * and its admin.
 */
void
saas_op_create_org(Jsonb *body, StringInfo out)
{
	const SaasContext *ctx = saas_context_refuse_api_key("create organizations");
	SaasErrors	e;
	Jsonb	   *admin;
	Datum		vals[6];
	char		nulls[7] = "      ";
	pg_uuid_t	org_id,
				admin_id;
	char	   *slug,
			   *password,
			   *email;
	Jsonb	   *features;
	int32		limit;
	int			nest;
	const char *why;
	SaasElevation elev;
	bool		elevated;

	saas_require_object(body);
	saas_require_role(ctx, super_roles, "create organizations");
	saas_errors_init(&e);
	saas_validate(body, create_fields, "", &e);
	admin = saas_get_jsonb(body, "admin_user");
	if (admin)
		saas_validate(admin, admin_user_fields, "admin_user.", &e);
	saas_errors_raise(&e);
	email = saas_get_str(admin, "email");
	password = saas_get_str(admin, "password");
	if ((why = saas_password_policy_error(password, email)) != NULL)
		saas_raise_field_error("admin_user.password", why);

	saas_uuid_v7(&org_id);
	saas_uuid_v7(&admin_id);
	slug = saas_get_str(body, "slug");
	if (slug == NULL)
		slug = saas_slug_from_name(saas_get_str(body, "name"));
	else if (saas_slug_reserved(slug))
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_CONFLICT),
				 errmsg("organization slug \"%s\" is already taken", slug),
				 errdetail_internal("[{\"field\":\"slug\",\"message\":\"is already taken\"}]")));
	features = saas_get_jsonb(body, "features_enabled");

	vals[0] = saas_uuid_datum(&org_id);
	vals[1] = CStringGetTextDatum(saas_get_str(body, "name"));
	vals[2] = CStringGetTextDatum(slug);
	vals[3] = saas_text_datum_or_null(saas_get_str(body, "subscription_tier"), &nulls[3]);
	if (saas_get_int(body, "employee_limit", &limit))
		vals[4] = Int32GetDatum(limit);
	else
		nulls[4] = 'n';
	if (features)
		vals[5] = org_text_array(features);
	else
		nulls[5] = 'n';

	saas_spi_connect();
	/*
	 * On Citus the whole write goes over the owner's connections: the
	 * admin's needs the trusted context, honoured on the worker nodes only
	 * there, and Citus refuses a second user on the placements written. The
	 * super_admin was checked above; each statement names the new ids.
	 */
	elevated = saas_elevate_citus(&elev);
	appendStringInfoString(out, "{\"organization\":");
	if (saas_exec(&plan_insert, vals, nulls, false, 0) != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "could not create organization");
	saas_row_json(out, 0);

	/* The admin is created in the new organization, still by this super_admin. */
	nest = saas_context_push_trusted(&org_id, &ctx->user_id, "super_admin");
	vals[1] = saas_uuid_datum(&admin_id);
	vals[2] = CStringGetTextDatum(email);
	vals[3] = CStringGetTextDatum(saas_get_str(admin, "first_name"));
	vals[4] = CStringGetTextDatum(saas_get_str(admin, "last_name"));
	saas_user_dir_set(&org_id, &admin_id, email, NULL);
	if (saas_exec(&plan_insert_admin, vals, NULL, false, 0) != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "could not create the organization's admin");
	appendStringInfoString(out, ",\"admin_user\":");
	saas_row_json(out, 0);
	appendStringInfoChar(out, '}');
	saas_user_set_password(&org_id, &admin_id, password, email);
	saas_context_pop(nest);
	if (elevated)
		saas_unelevate(&elev);
	SPI_finish();
}

/*
 * saas_op_update_org: PUT /organizations/{id}, a partial update; 412 when if_version
 * (If-Match, -1: none) is not the current version. Returns the new version.
 */
int64
saas_op_update_org(const pg_uuid_t *id, Jsonb *body, int64 if_version, StringInfo out)
{
	const SaasContext *ctx = saas_context_refuse_api_key("change organizations");
	bool		is_super = strcmp(ctx->role, "super_admin") == 0;
	SaasErrors	e;
	Datum		vals[8];
	char		nulls[9] = "        ";
	int64		version;
	bool		isnull;
	int32		limit;
	Jsonb	   *features,
			   *ext;

	saas_require_object(body);
	saas_errors_init(&e);
	saas_validate(body, update_fields, "", &e);
	if (e.n == 0 && !saas_has(body, "name") && !saas_has(body, "slug") &&
		!saas_has(body, "subscription_tier") && !saas_has(body, "employee_limit") &&
		!saas_has(body, "features_enabled") && !saas_has(body, "external_ids") &&
		!saas_has(body, "status"))
		saas_errors_add(&e, "body", "has no field to update");
	saas_errors_raise(&e);

	if (!is_super && memcmp(&ctx->org_id, id, sizeof(pg_uuid_t)) != 0)
		saas_not_found("organization");
	if (!is_super)
	{
		if (strcmp(ctx->role, "admin") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_SAAS_FORBIDDEN),
					 errmsg("role \"%s\" may not update the organization", ctx->role)));
		if (saas_has(body, "subscription_tier") || saas_has(body, "employee_limit") ||
			saas_has(body, "features_enabled") || saas_has(body, "external_ids") ||
			saas_has(body, "status"))
			ereport(ERROR,
					(errcode(ERRCODE_SAAS_FORBIDDEN),
					 errmsg("only a super_admin may change subscription_tier, employee_limit, features_enabled, external_ids or status")));
	}

	vals[0] = saas_uuid_datum(id);
	saas_spi_connect();
	if (saas_exec(&plan_lock, vals, NULL, false, 1) != SPI_OK_SELECT || SPI_processed == 0)
		saas_not_found("organization");
	version = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
										  SPI_fnumber(SPI_tuptable->tupdesc, "version"), &isnull));
	if (if_version >= 0 && if_version != version)
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_PRECONDITION),
				 errmsg("organization was modified since version " INT64_FORMAT, if_version),
				 errdetail("The current version is " INT64_FORMAT ".", version)));

	vals[1] = saas_text_datum_or_null(saas_get_str(body, "name"), &nulls[1]);
	vals[2] = saas_text_datum_or_null(saas_get_str(body, "slug"), &nulls[2]);
	vals[3] = saas_text_datum_or_null(saas_get_str(body, "subscription_tier"), &nulls[3]);
	if (saas_get_int(body, "employee_limit", &limit))
		vals[4] = Int32GetDatum(limit);
	else
		nulls[4] = 'n';
	features = saas_get_jsonb(body, "features_enabled");
	if (features)
		vals[5] = org_text_array(features);
	else
		nulls[5] = 'n';
	ext = saas_get_jsonb(body, "external_ids");
	if (ext)
		vals[6] = JsonbPGetDatum(ext);
	else
		nulls[6] = 'n';
	vals[7] = saas_text_datum_or_null(saas_get_str(body, "status"), &nulls[7]);
	if (saas_exec(&plan_update, vals, nulls, false, 0) != SPI_OK_UPDATE_RETURNING ||
		SPI_processed != 1)
		saas_not_found("organization");
	version = saas_row_json(out, 0);
	SPI_finish();
	return version;
}

/* saas_op_delete_org: DELETE /organizations/{id}. */
void
saas_op_delete_org(const pg_uuid_t *id)
{
	const SaasContext *ctx = saas_context_refuse_api_key("delete organizations");
	Datum		vals[1];

	if (strcmp(ctx->role, "super_admin") != 0)
	{
		if (memcmp(&ctx->org_id, id, sizeof(pg_uuid_t)) != 0)
			saas_not_found("organization");
		saas_require_role(ctx, super_roles, "delete organizations");
	}
	if (memcmp(&ctx->org_id, id, sizeof(pg_uuid_t)) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_CONFLICT),
				 errmsg("a super_admin cannot delete its own organization")));
	vals[0] = saas_uuid_datum(id);
	saas_spi_connect();
	if (saas_exec(&plan_delete, vals, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not delete organization");
	if (SPI_processed == 0)
		saas_not_found("organization");
	SPI_finish();
}
