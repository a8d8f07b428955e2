/*-------------------------------------------------------------------------
 *
 * user_ops.c
 *	  Users of the caller's organization: list, create, read, update, delete.
 *
 * Rules (API.md): admins manage their organization's users; a user reads
 * them and updates its own names and password (with its current password);
 * an admin cannot delete itself. Another tenant's user is a 404. These
 * checks answer early; the database enforces every rule again, and alone
 * the last-admin rule (users_rules in extension/sql/22_rules.sql).
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

static const char *const admin_roles[] = {"admin", "super_admin", NULL};

static SaasPlan plan_list = {
	"SELECT " USER_COLUMNS " FROM saas.users"
	" WHERE org_id = $1 AND id > coalesce($2, '00000000-0000-0000-0000-000000000000'::uuid)"
	" AND ($3::text IS NULL OR status = $3) AND ($4::text IS NULL OR role = $4)"
	" AND ($5::text IS NULL OR email LIKE $5 OR lower(first_name) LIKE $5 OR lower(last_name) LIKE $5)"
	" ORDER BY org_id, id LIMIT $6",
	6, {UUIDOID, UUIDOID, TEXTOID, TEXTOID, TEXTOID, INT4OID}
};

static SaasPlan plan_get = {
	"SELECT " USER_COLUMNS " FROM saas.users WHERE org_id = $1 AND id = $2",
	2, {UUIDOID, UUIDOID}
};

static SaasPlan plan_lock = {
	"SELECT " USER_COLUMNS " FROM saas.users WHERE org_id = $1 AND id = $2 FOR UPDATE",
	2, {UUIDOID, UUIDOID}
};

static SaasPlan plan_insert = {
	"INSERT INTO saas.users (org_id, email, first_name, last_name, role, status, external_user_ids, id)"
	" VALUES ($1, lower($2), $3, $4, $5, coalesce($6, 'active'), coalesce($7, '{}'::jsonb), $8)"
	" RETURNING " USER_COLUMNS,
	8, {UUIDOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, JSONBOID, UUIDOID}
};

/* The directories of emails and external ids, on Citus (23_directory.sql). */
static SaasPlan plan_dir_set = {
	"SELECT saas._dir_set($1, $2, $3, $4)",
	4, {UUIDOID, UUIDOID, TEXTOID, JSONBOID}
};

static SaasPlan plan_dir_drop = {
	"SELECT saas._dir_drop($1, $2)",
	2, {UUIDOID, UUIDOID}
};

static SaasPlan plan_update = {
	"UPDATE saas.users SET first_name = coalesce($3, first_name), last_name = coalesce($4, last_name),"
	" email = coalesce(lower($5), email), role = coalesce($6, role), status = coalesce($7, status),"
	" external_user_ids = coalesce($8, external_user_ids)"
	" WHERE org_id = $1 AND id = $2 RETURNING " USER_COLUMNS,
	8, {UUIDOID, UUIDOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, JSONBOID}
};

static SaasPlan plan_delete = {
	"DELETE FROM saas.users WHERE org_id = $1 AND id = $2",
	2, {UUIDOID, UUIDOID}
};

/* A user's existing password is replaced by the credentials_upsert trigger. */
static SaasPlan plan_credential_set = {
	"INSERT INTO saas._credentials (org_id, user_id, password_hash) VALUES ($1, $2, $3)",
	3, {UUIDOID, UUIDOID, TEXTOID}
};

static SaasPlan plan_credential_get = {
	"SELECT password_hash FROM saas._credentials WHERE org_id = $1 AND user_id = $2",
	2, {UUIDOID, UUIDOID}
};

static const SaasField create_fields[] = {
	{"email", SF_EMAIL, true},
	{"first_name", SF_STRING, true, 1, 100},
	{"last_name", SF_STRING, true, 1, 100},
	{"role", SF_ENUM, true, 0, 0, saas_roles_assignable},
	{"status", SF_ENUM, false, 0, 0, saas_user_statuses},
	{"password", SF_PASSWORD, false},
	{"external_user_ids", SF_STRING_MAP, false, 0, 16},
	{NULL}
};

static const SaasField update_fields[] = {
	{"email", SF_EMAIL, false},
	{"first_name", SF_STRING, false, 1, 100},
	{"last_name", SF_STRING, false, 1, 100},
	{"role", SF_ENUM, false, 0, 0, saas_roles_assignable},
	{"status", SF_ENUM, false, 0, 0, saas_user_statuses},
	{"password", SF_PASSWORD, false},
	{"current_password", SF_PASSWORD, false},
	{"external_user_ids", SF_STRING_MAP, false, 0, 16},
	{NULL}
};

/*
 * saas_user_set_password: check the password policy, hash with argon2id and
 * store it under the extension's trusted context for the caller (the only
 * context saas._credentials_rules lets write a hash; the caller's own rights
 * are checked there too). As the caller on a single node; on Citus the
 * callers run their whole write section elevated (saas_elevate_citus): the
 * trusted context is honoured on a worker node only over the owner's
 * connections, and Citus refuses a second user on the placements written.
 */
void
saas_user_set_password(const pg_uuid_t *org_id, const pg_uuid_t *user_id,
					   const char *password, const char *email)
{
	const SaasContext *ctx = saas_context_refuse_api_key("set passwords");
	const char *why = saas_password_policy_error(password, email);
	char	   *phc;
	Datum		vals[3];
	int			nest;

	if (why)
		saas_raise_field_error("password", why);
	phc = saas_password_hash(password);
	vals[0] = saas_uuid_datum(org_id);
	vals[1] = saas_uuid_datum(user_id);
	vals[2] = CStringGetTextDatum(phc);
	nest = saas_context_push_trusted(org_id, &ctx->user_id, ctx->role);
	if (saas_exec(&plan_credential_set, vals, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not store credential");
	saas_context_pop(nest);
}

/*
 * saas_user_dir_set: on Citus, write the directory entries of a user (email,
 * external ids; NULL: unchanged) before the users statement that sets them,
 * as the caller: the shard's trigger checks them (23_directory.sql). Nothing
 * happens on a single node, where the trigger writes them.
 */
void
saas_user_dir_set(const pg_uuid_t *org_id, const pg_uuid_t *user_id,
				  const char *email, Jsonb *ext)
{
	Datum		vals[4];
	char		nulls[5] = "    ";

	vals[0] = saas_uuid_datum(org_id);
	vals[1] = saas_uuid_datum(user_id);
	vals[2] = saas_text_datum_or_null(email, &nulls[2]);
	if (ext)
		vals[3] = JsonbPGetDatum(ext);
	else
		nulls[3] = 'n';
	if (saas_exec(&plan_dir_set, vals, nulls, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not write the user directories");
}

/*
 * user_current_hash: the user's password hash, or NULL, read as the
 * extension owner (callers cannot read hashes). Read before the caller
 * changes anything in the transaction: Citus refuses another user on
 * shards the caller has written.
 */
static char *
user_current_hash(const pg_uuid_t *org_id, const pg_uuid_t *user_id)
{
	Datum		vals[2];
	SaasElevation elev;
	char	   *phc = NULL;

	vals[0] = saas_uuid_datum(org_id);
	vals[1] = saas_uuid_datum(user_id);
	saas_elevate(&elev);
	if (saas_exec(&plan_credential_get, vals, NULL, true, 1) == SPI_OK_SELECT && SPI_processed == 1)
		phc = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	saas_unelevate(&elev);
	return phc;
}

/* user_check_current_password: 403 unless password matches phc (the current hash). */
static void
user_check_current_password(const char *phc, const char *password)
{
	if (password == NULL)
		saas_raise_field_error("current_password", "is required to change your own password");
	if (!(phc ? saas_password_verify(password, phc) : (saas_password_burn(password), false)))
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_FORBIDDEN),
				 errmsg("current password is not correct")));
}

/* user_like_pattern: ?q as a LIKE pattern, lower-cased, wildcards escaped. */
static char *
user_like_pattern(const char *q)
{
	StringInfoData s;
	const char *p;

	if (q == NULL)
		return NULL;
	if (strlen(q) > 100)
		saas_raise_field_error("q", "must be at most 100 characters");
	initStringInfo(&s);
	appendStringInfoChar(&s, '%');
	for (p = q; *p; p++)
	{
		if (*p == '%' || *p == '_' || *p == '\\')
			appendStringInfoChar(&s, '\\');
		appendStringInfoChar(&s, (*p >= 'A' && *p <= 'Z') ? *p + 32 : *p);
	}
	appendStringInfoChar(&s, '%');
	return s.data;
}

/*
 * saas_op_list_users: GET /users of the caller's organization, filtered and
 * paged by id.
 */
void
saas_op_list_users(const SaasParams *p, StringInfo out)
{
	static const char *const allowed[] = {"limit", "cursor", "status", "role", "q", NULL};
	static const char *const roles[] = {"super_admin", "admin", "user", NULL};
	const SaasContext *ctx = saas_context_require_scope(SAAS_SCOPE_USERS_READ | SAAS_SCOPE_USERS_WRITE, "list users");
	int			limit;
	const char *cursor = saas_param(p, "cursor");
	const char *status = saas_param(p, "status");
	const char *role = saas_param(p, "role");
	Datum		vals[6];
	char		nulls[7] = "      ";
	pg_uuid_t	after;
	SaasErrors	e;

	saas_params_check(p, allowed);
	limit = saas_param_limit(p);
	saas_errors_init(&e);
	if (status && strcmp(status, "active") != 0 && strcmp(status, "inactive") != 0 &&
		strcmp(status, "suspended") != 0)
		saas_errors_add(&e, "status", "must be one of: active, inactive, suspended");
	if (role && strcmp(role, "admin") != 0 && strcmp(role, "user") != 0 &&
		strcmp(role, "super_admin") != 0)
		saas_errors_add(&e, "role", "must be one of: super_admin, admin, user");
	if (cursor && !saas_cursor_uuid(cursor, &after))
		saas_errors_add(&e, "cursor", "is not a valid cursor");
	saas_errors_raise(&e);
	saas_require_role_scoped(ctx, roles, "list users");

	vals[0] = saas_uuid_datum(&ctx->org_id);
	if (cursor)
		vals[1] = saas_uuid_datum(&after);
	else
		nulls[1] = 'n';
	vals[2] = saas_text_datum_or_null(status, &nulls[2]);
	vals[3] = saas_text_datum_or_null(role, &nulls[3]);
	vals[4] = saas_text_datum_or_null(user_like_pattern(saas_param(p, "q")), &nulls[4]);
	vals[5] = Int32GetDatum(limit + 1);

	saas_spi_connect();
	if (saas_exec(&plan_list, vals, nulls, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not list users");
	saas_page_json(out, limit, "id");
	SPI_finish();
}

/* saas_op_get_user: GET /users/{id}; returns the version for the ETag. */
int64
saas_op_get_user(const pg_uuid_t *id, StringInfo out)
{
	const SaasContext *ctx = saas_context_require_scope(SAAS_SCOPE_USERS_READ | SAAS_SCOPE_USERS_WRITE, "read users");
	Datum		vals[2];
	int64		version;

	vals[0] = saas_uuid_datum(&ctx->org_id);
	vals[1] = saas_uuid_datum(id);
	saas_spi_connect();
	if (saas_exec(&plan_get, vals, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read user");
	if (SPI_processed == 0)
		saas_not_found("user");
	version = saas_row_json(out, 0);
	SPI_finish();
	return version;
}

/* saas_op_create_user: POST /users (admins); returns the new user's version. */
int64
saas_op_create_user(Jsonb *body, StringInfo out)
{
	const SaasContext *ctx = saas_context_require_scope(SAAS_SCOPE_USERS_WRITE, "create users");
	SaasErrors	e;
	Datum		vals[8];
	char		nulls[9] = "        ";
	char	   *password;
	char	   *email;
	Jsonb	   *ext;
	int64		version;
	pg_uuid_t	new_id;
	SaasElevation elev;
	bool		elevated;

	saas_require_object(body);
	saas_require_role_scoped(ctx, admin_roles, "create users");
	saas_errors_init(&e);
	saas_validate(body, create_fields, "", &e);
	saas_errors_raise(&e);

	email = saas_get_str(body, "email");
	password = saas_get_str(body, "password");
	if (password)
	{
		const char *why = saas_password_policy_error(password, email);

		if (why)
			saas_raise_field_error("password", why);
	}
	ext = saas_get_jsonb(body, "external_user_ids");

	vals[0] = saas_uuid_datum(&ctx->org_id);
	vals[1] = CStringGetTextDatum(email);
	vals[2] = CStringGetTextDatum(saas_get_str(body, "first_name"));
	vals[3] = CStringGetTextDatum(saas_get_str(body, "last_name"));
	vals[4] = CStringGetTextDatum(saas_get_str(body, "role"));
	vals[5] = saas_text_datum_or_null(saas_get_str(body, "status"), &nulls[5]);
	if (ext)
		vals[6] = JsonbPGetDatum(ext);
	else
		nulls[6] = 'n';

	saas_uuid_v7(&new_id);
	vals[7] = saas_uuid_datum(&new_id);

	saas_spi_connect();
	/* With a password, on Citus: the whole write as the owner (saas_user_set_password). */
	elevated = password && saas_elevate_citus(&elev);
	saas_user_dir_set(&ctx->org_id, &new_id, email, ext);
	if (saas_exec(&plan_insert, vals, nulls, false, 0) != SPI_OK_INSERT_RETURNING ||
		SPI_processed != 1)
		elog(ERROR, "could not create user");
	version = saas_row_json(out, 0);
	if (password)
		saas_user_set_password(&ctx->org_id, &new_id, password, email);
	if (elevated)
		saas_unelevate(&elev);
	SPI_finish();
	return version;
}

/*
 * saas_op_update_user: PUT /users/{id}, a partial update; 412 when if_version
 * (If-Match, -1: none) is not the current version. Returns the new version.
 */
int64
saas_op_update_user(const pg_uuid_t *id, Jsonb *body, int64 if_version, StringInfo out)
{
	const SaasContext *ctx = saas_context_require_scope(SAAS_SCOPE_USERS_WRITE, "change users");
	bool		is_admin = strcmp(ctx->role, "admin") == 0 || strcmp(ctx->role, "super_admin") == 0;
	bool		is_self = memcmp(&ctx->user_id, id, sizeof(pg_uuid_t)) == 0;
	SaasErrors	e;
	Datum		vals[8];
	char		nulls[9] = "        ";
	char	   *cur_role,
			   *email;
	const char *new_role,
			   *new_status;
	char	   *password;
	char	   *cur_hash = NULL;
	int64		version;
	Jsonb	   *ext;
	bool		isnull;
	SaasElevation elev;
	bool		elevated;

	saas_require_object(body);
	saas_errors_init(&e);
	saas_validate(body, update_fields, "", &e);
	if (e.n == 0 && !saas_has(body, "email") && !saas_has(body, "first_name") &&
		!saas_has(body, "last_name") && !saas_has(body, "role") && !saas_has(body, "status") &&
		!saas_has(body, "password") && !saas_has(body, "external_user_ids"))
		saas_errors_add(&e, "body", "has no field to update");
	saas_errors_raise(&e);

	vals[0] = saas_uuid_datum(&ctx->org_id);
	vals[1] = saas_uuid_datum(id);
	saas_spi_connect();

	/* Visible at all? Then the role rules; then lock it and compare versions. */
	if (saas_exec(&plan_get, vals, NULL, true, 1) != SPI_OK_SELECT || SPI_processed == 0)
		saas_not_found("user");
	if (!is_admin)
	{
		if (!is_self)
			ereport(ERROR,
					(errcode(ERRCODE_SAAS_FORBIDDEN),
					 errmsg("a user may update only its own profile")));
		if (saas_has(body, "email") || saas_has(body, "role") || saas_has(body, "status") ||
			saas_has(body, "external_user_ids"))
			ereport(ERROR,
					(errcode(ERRCODE_SAAS_FORBIDDEN),
					 errmsg("only an admin may change email, role, status or external ids")));
	}
	password = saas_get_str(body, "password");
	if (password && is_self)
		cur_hash = user_current_hash(&ctx->org_id, id);

	/*
	 * With a password, on Citus: from the row lock on, as the owner
	 * (saas_user_set_password). The row was found visible to the caller
	 * above, and every statement names (ctx->org_id, id).
	 */
	elevated = password && saas_elevate_citus(&elev);
	if (saas_exec(&plan_lock, vals, NULL, false, 1) != SPI_OK_SELECT || SPI_processed == 0)
		saas_not_found("user");
	version = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
										  SPI_fnumber(SPI_tuptable->tupdesc, "version"), &isnull));
	if (if_version >= 0 && if_version != version)
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_PRECONDITION),
				 errmsg("user was modified since version " INT64_FORMAT, if_version),
				 errdetail("The current version is " INT64_FORMAT ".", version)));
	cur_role = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
							SPI_fnumber(SPI_tuptable->tupdesc, "role"));
	email = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
						 SPI_fnumber(SPI_tuptable->tupdesc, "email"));

	new_role = saas_get_str(body, "role");
	new_status = saas_get_str(body, "status");
	if (strcmp(cur_role, "super_admin") == 0 && new_role)
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_FORBIDDEN),
				 errmsg("the role of a super_admin cannot be changed through the API")));
	/* The last active admin: the users_rules trigger (22_rules.sql), under its locks. */

	if (password && is_self)
		user_check_current_password(cur_hash, saas_get_str(body, "current_password"));
	else if (saas_has(body, "current_password") && !password)
		saas_raise_field_error("current_password", "is only accepted together with password");

	vals[2] = saas_text_datum_or_null(saas_get_str(body, "first_name"), &nulls[2]);
	vals[3] = saas_text_datum_or_null(saas_get_str(body, "last_name"), &nulls[3]);
	vals[4] = saas_text_datum_or_null(saas_get_str(body, "email"), &nulls[4]);
	vals[5] = saas_text_datum_or_null(new_role, &nulls[5]);
	vals[6] = saas_text_datum_or_null(new_status, &nulls[6]);
	ext = saas_get_jsonb(body, "external_user_ids");
	if (ext)
		vals[7] = JsonbPGetDatum(ext);
	else
		nulls[7] = 'n';
	if (saas_has(body, "email") || ext)
		saas_user_dir_set(&ctx->org_id, id, saas_get_str(body, "email"), ext);
	if (saas_exec(&plan_update, vals, nulls, false, 0) != SPI_OK_UPDATE_RETURNING ||
		SPI_processed != 1)
		saas_not_found("user");
	version = saas_row_json(out, 0);
	if (password)
	{
		char	   *new_email = saas_get_str(body, "email");

		saas_user_set_password(&ctx->org_id, id, password, new_email ? new_email : email);
	}
	if (elevated)
		saas_unelevate(&elev);
	SPI_finish();
	return version;
}

/* saas_op_delete_user: DELETE /users/{id} (admins). */
void
saas_op_delete_user(const pg_uuid_t *id)
{
	const SaasContext *ctx = saas_context_require_scope(SAAS_SCOPE_USERS_WRITE, "delete users");
	Datum		vals[2];
	char	   *cur_role;

	vals[0] = saas_uuid_datum(&ctx->org_id);
	vals[1] = saas_uuid_datum(id);
	saas_spi_connect();
	if (saas_exec(&plan_get, vals, NULL, true, 1) != SPI_OK_SELECT || SPI_processed == 0)
		saas_not_found("user");
	saas_require_role_scoped(ctx, admin_roles, "delete users");
	if (memcmp(&ctx->user_id, id, sizeof(pg_uuid_t)) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_FORBIDDEN),
				 errmsg("an admin cannot delete itself")));
	cur_role = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
							SPI_fnumber(SPI_tuptable->tupdesc, "role"));
	if (strcmp(cur_role, "super_admin") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_FORBIDDEN),
				 errmsg("a super_admin cannot be deleted through the API")));
	/* The last active admin: the users_rules trigger (22_rules.sql), under its locks. */
	if (saas_exec(&plan_dir_drop, vals, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not write the user directories");
	if (saas_exec(&plan_delete, vals, NULL, false, 0) != SPI_OK_DELETE || SPI_processed != 1)
		saas_not_found("user");
	SPI_finish();
}
