/*-------------------------------------------------------------------------
 *
 * invitation_ops.c
 *	  Invitations: an admin invites an email into its organization with a
 *	  role (POST /invitations), lists (GET) and revokes (DELETE) them; the
 *	  invited person sets a password with the token the communication
 *	  service delivered (POST /auth/accept-invite) and is logged in.
 *
 * saas._invitations is private (93_invitations.sql): these operations read
 * and write it as the extension owner, each statement naming the context's
 * organization. The user is created as the inviting admin under the
 * extension's trusted context, so the users rules (employee_limit, roles)
 * and the audit hold as for POST /users; an invitation whose admin is no
 * longer an active admin cannot be accepted.
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

#define INVITE_TTL "7 days"
#define INVITATION_COLUMNS \
	"id, org_id, email, role, first_name, last_name, invited_by," \
	" CASE WHEN status = 'pending' AND expires_at <= now() THEN 'expired' ELSE status END AS status," \
	" expires_at, user_id, created_at, updated_at"

/* A new row: pending, not expired (Citus allows no now() in RETURNING). */
#define INVITATION_NEW_COLUMNS \
	"id, org_id, email, role, first_name, last_name, invited_by, status, expires_at, user_id," \
	" created_at, updated_at"

static const char *const admin_roles[] = {"admin", "super_admin", NULL};
static const char *const invitation_statuses[] = {"pending", "accepted", "revoked", "expired", NULL};

static SaasPlan plan_user_exists = {
	"SELECT 1 FROM saas.users WHERE org_id = $1 AND email = lower($2)",
	2, {UUIDOID, TEXTOID}
};

static SaasPlan plan_expire_old = {
	"UPDATE saas._invitations SET status = 'expired', updated_at = now()"
	" WHERE org_id = $1 AND email = lower($2) AND status = 'pending' AND expires_at <= now()",
	2, {UUIDOID, TEXTOID}
};

static SaasPlan plan_insert = {
	"INSERT INTO saas._invitations (org_id, id, email, role, first_name, last_name, token_hash,"
	" invited_by, expires_at) VALUES ($1, $2, lower($3), $4, $5, $6, $7, $8, now() + interval '" INVITE_TTL "')"
	" ON CONFLICT (org_id, email) WHERE status = 'pending' DO NOTHING RETURNING " INVITATION_NEW_COLUMNS,
	8, {UUIDOID, UUIDOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, BYTEAOID, UUIDOID}
};

static SaasPlan plan_org_name = {
	"SELECT name FROM saas.organizations WHERE id = $1",
	1, {UUIDOID}
};

static SaasPlan plan_list = {
	"SELECT " INVITATION_COLUMNS " FROM saas._invitations"
	" WHERE org_id = $1 AND id > coalesce($2, '00000000-0000-0000-0000-000000000000'::uuid)"
	" AND ($3::text IS NULL OR (CASE WHEN status = 'pending' AND expires_at <= now()"
	"      THEN 'expired' ELSE status END) = $3)"
	" ORDER BY org_id, id LIMIT $4",
	4, {UUIDOID, UUIDOID, TEXTOID, INT4OID}
};

static SaasPlan plan_revoke = {
	"UPDATE saas._invitations SET status = 'revoked', updated_at = now()"
	" WHERE org_id = $1 AND id = $2 AND status = 'pending' RETURNING id",
	2, {UUIDOID, UUIDOID}
};

static SaasPlan plan_status = {
	"SELECT status FROM saas._invitations WHERE org_id = $1 AND id = $2",
	2, {UUIDOID, UUIDOID}
};

/* The invitation a token names, locked: one acceptance at a time. */
static SaasPlan plan_claim = {
	"SELECT token_hash, status = 'pending' AND expires_at > now(), email, role, first_name,"
	" last_name, invited_by FROM saas._invitations WHERE org_id = $1 AND id = $2 FOR UPDATE",
	2, {UUIDOID, UUIDOID}
};

/* The inviting admin now: still active, still an admin. */
static SaasPlan plan_inviter = {
	"SELECT u.role FROM saas.users u JOIN saas.organizations o ON o.id = u.org_id"
	" WHERE u.org_id = $1 AND u.id = $2 AND u.status = 'active' AND o.status = 'active'"
	" AND u.role IN ('admin', 'super_admin')",
	2, {UUIDOID, UUIDOID}
};

static SaasPlan plan_user_insert = {
	"INSERT INTO saas.users (org_id, id, email, first_name, last_name, role)"
	" VALUES ($1, $2, lower($3), $4, $5, $6) RETURNING " USER_COLUMNS,
	6, {UUIDOID, UUIDOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID}
};

static SaasPlan plan_accepted = {
	"UPDATE saas._invitations SET status = 'accepted', user_id = $3, updated_at = now()"
	" WHERE org_id = $1 AND id = $2",
	3, {UUIDOID, UUIDOID, UUIDOID}
};

static const SaasField create_fields[] = {
	{"email", SF_EMAIL, true},
	{"role", SF_ENUM, true, 0, 0, saas_roles_assignable},
	{"first_name", SF_STRING, false, 1, 100},
	{"last_name", SF_STRING, false, 1, 100},
	{NULL}
};

static const SaasField accept_fields[] = {
	{"token", SF_STRING, true, 1, 200},
	{"password", SF_PASSWORD, true},
	{"first_name", SF_STRING, false, 1, 100},
	{"last_name", SF_STRING, false, 1, 100},
	{NULL}
};

/* inv_key: the idempotency key of an invitation's delivery job. */
static char *
inv_key(const pg_uuid_t *id)
{
	char		buf[37];

	saas_uuid_to_cstr(id, buf);
	return psprintf("invitation:%s", buf);
}

/*
 * invite_into_platform: whether org_id is the platform organization (the
 * operators', fixed id saas.platform_org_id()). Its members are operators;
 * nobody joins it by an emailed token.
 */
static bool
invite_into_platform(const pg_uuid_t *org_id)
{
	static const unsigned char platform[UUID_LEN] = {0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 1};

	return memcmp(org_id->data, platform, UUID_LEN) == 0;
}

/*
 * saas_op_create_invitation: POST /invitations (admins). The token is in
 * the delivered message only, never in the answer.
 */
void
saas_op_create_invitation(Jsonb *body, StringInfo out)
{
	const SaasContext *ctx = saas_context_require();
	SaasErrors	e;
	char	   *email;
	char	   *token;
	char	   *org_name = NULL;
	unsigned char hash[SAAS_OTT_HASH_LEN];
	pg_uuid_t	id;
	Datum		vals[8];
	char		nulls[9] = "        ";
	SaasElevation elev;

	saas_require_object(body);
	saas_require_role(ctx, admin_roles, "invite users");
	if (invite_into_platform(&ctx->org_id))
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_FORBIDDEN),
				 errmsg("the platform organization takes no invitations"),
				 errhint("Create the platform's users with POST /users.")));
	saas_errors_init(&e);
	saas_validate(body, create_fields, "", &e);
	saas_errors_raise(&e);
	email = saas_get_str(body, "email");

	saas_spi_connect();
	vals[0] = saas_uuid_datum(&ctx->org_id);
	vals[1] = CStringGetTextDatum(email);
	if (saas_exec(&plan_user_exists, vals, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not look up user");
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_CONFLICT),
				 errmsg("a user with this email already belongs to the organization"),
				 errdetail_internal("[{\"field\":\"email\",\"message\":\"is already a user of this organization\"}]")));

	saas_uuid_v7(&id);
	token = saas_ott_make("inv_", &ctx->org_id, &id, hash);
	saas_elevate(&elev);
	if (saas_exec(&plan_expire_old, vals, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not expire invitations");
	vals[1] = saas_uuid_datum(&id);
	vals[2] = CStringGetTextDatum(email);
	vals[3] = CStringGetTextDatum(saas_get_str(body, "role"));
	vals[4] = saas_text_datum_or_null(saas_get_str(body, "first_name"), &nulls[4]);
	vals[5] = saas_text_datum_or_null(saas_get_str(body, "last_name"), &nulls[5]);
	vals[6] = saas_ott_hash_datum(hash);
	vals[7] = saas_uuid_datum(&ctx->user_id);
	if (saas_exec(&plan_insert, vals, nulls, false, 0) != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "could not create invitation");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_CONFLICT),
				 errmsg("this email has a pending invitation; revoke it to invite again"),
				 errdetail_internal("[{\"field\":\"email\",\"message\":\"has a pending invitation\"}]")));
	email = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
						 SPI_fnumber(SPI_tuptable->tupdesc, "email"));
	saas_row_json(out, 0);
	if (saas_exec(&plan_org_name, vals, NULL, true, 1) == SPI_OK_SELECT && SPI_processed == 1)
		org_name = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	saas_unelevate(&elev);

	saas_ott_send(&ctx->org_id, "message.invitation", email, "user_invitation",
				  psprintf("You are invited to join %s", org_name ? org_name : "an organization"),
				  psprintf("You have been invited to join %s. To accept, choose a password"
						   " with this invitation token (valid for " INVITE_TTL ", once): %s",
						   org_name ? org_name : "an organization", token),
				  inv_key(&id));
	explicit_bzero(token, strlen(token));
	SPI_finish();
}

/* saas_op_list_invitations: GET /invitations (admins), paged by id. */
void
saas_op_list_invitations(const SaasParams *p, StringInfo out)
{
	static const char *const allowed[] = {"limit", "cursor", "status", NULL};
	const SaasContext *ctx = saas_context_require();
	const char *cursor = saas_param(p, "cursor");
	const char *status = saas_param(p, "status");
	int			limit;
	pg_uuid_t	after;
	Datum		vals[4];
	char		nulls[5] = "    ";
	SaasErrors	e;
	SaasElevation elev;
	int			i;
	bool		known = (status == NULL);

	saas_params_check(p, allowed);
	limit = saas_param_limit(p);
	saas_errors_init(&e);
	for (i = 0; status && invitation_statuses[i]; i++)
		known = known || strcmp(status, invitation_statuses[i]) == 0;
	if (!known)
		saas_errors_add(&e, "status", "must be one of: pending, accepted, revoked, expired");
	if (cursor && !saas_cursor_uuid(cursor, &after))
		saas_errors_add(&e, "cursor", "is not a valid cursor");
	saas_errors_raise(&e);
	saas_require_role(ctx, admin_roles, "list invitations");

	vals[0] = saas_uuid_datum(&ctx->org_id);
	if (cursor)
		vals[1] = saas_uuid_datum(&after);
	else
		nulls[1] = 'n';
	vals[2] = saas_text_datum_or_null(status, &nulls[2]);
	vals[3] = Int32GetDatum(limit + 1);
	saas_spi_connect();
	saas_elevate(&elev);
	if (saas_exec(&plan_list, vals, nulls, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not list invitations");
	saas_unelevate(&elev);
	saas_page_json(out, limit, "id");
	SPI_finish();
}

/*
 * saas_op_revoke_invitation: DELETE /invitations/{id} (admins): a pending
 * invitation can no longer be accepted, and its message goes if not sent.
 * 404 for another organization's; 409 when it is not pending.
 */
void
saas_op_revoke_invitation(const pg_uuid_t *id)
{
	const SaasContext *ctx = saas_context_require();
	Datum		vals[2];
	SaasElevation elev;

	saas_require_role(ctx, admin_roles, "revoke invitations");
	vals[0] = saas_uuid_datum(&ctx->org_id);
	vals[1] = saas_uuid_datum(id);
	saas_spi_connect();
	saas_elevate(&elev);
	if (saas_exec(&plan_revoke, vals, NULL, false, 0) != SPI_OK_UPDATE_RETURNING)
		elog(ERROR, "could not revoke invitation");
	if (SPI_processed == 0)
	{
		if (saas_exec(&plan_status, vals, NULL, true, 1) != SPI_OK_SELECT || SPI_processed == 0)
			saas_not_found("invitation");
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_CONFLICT),
				 errmsg("only a pending invitation can be revoked; this one is %s",
						SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1))));
	}
	saas_unelevate(&elev);
	saas_ott_drop_message(&ctx->org_id, inv_key(id));
	SPI_finish();
}

/*
 * saas_op_accept_invitation: POST /auth/accept-invite. Creates the invited
 * user with the password given and answers like login. Every token that
 * cannot be used gets the same 400; an email that became a user of the
 * organization meanwhile is a 409.
 */
void
saas_op_accept_invitation(Jsonb *body, StringInfo out)
{
	SaasErrors	e;
	SaasOtt		t;
	Datum		vals[6];
	char		nulls[7] = "      ";
	SaasElevation elev,
				write_elev;
	bool		isnull,
				elevated;
	HeapTuple	tup;
	TupleDesc	desc;
	char	   *email,
			   *role,
			   *first,
			   *last,
			   *inviter_role,
			   *password;
	pg_uuid_t	inviter,
				user_id;
	StringInfoData user_json;
	int			nest;

	saas_require_object(body);
	saas_errors_init(&e);
	saas_validate(body, accept_fields, "", &e);
	saas_errors_raise(&e);
	if (!saas_ott_parse("inv_", saas_get_str(body, "token"), &t) ||
		invite_into_platform(&t.org_id))
		saas_ott_refuse("invitation");
	password = saas_get_str(body, "password");

	saas_spi_connect();
	saas_elevate(&elev);
	tup = saas_ott_claim(&plan_claim, &t, "invitation");
	desc = SPI_tuptable->tupdesc;
	vals[0] = saas_uuid_datum(&t.org_id);	/* the organization, for what follows */

	/*
	 * An organization that signs in with SSO only takes no password: the
	 * invited person signs in through its provider (the user is created
	 * there at first sign-in); the invitation stays pending, usable again
	 * if password login is turned back on.
	 */
	if (!saas_sso_password_login_allowed(&t.org_id))
		saas_raise_sso_only();
	email = SPI_getvalue(tup, desc, 3);
	role = SPI_getvalue(tup, desc, 4);
	first = saas_get_str(body, "first_name");
	if (first == NULL)
		first = SPI_getvalue(tup, desc, 5);
	last = saas_get_str(body, "last_name");
	if (last == NULL)
		last = SPI_getvalue(tup, desc, 6);
	inviter = *DatumGetUUIDP(SPI_getbinval(tup, desc, 7, &isnull));
	saas_errors_init(&e);
	if (first == NULL)
		saas_errors_add(&e, "first_name", "is required (the invitation has none)");
	if (last == NULL)
		saas_errors_add(&e, "last_name", "is required (the invitation has none)");
	saas_errors_raise(&e);
	{
		const char *why = saas_password_policy_error(password, email);

		if (why)
			saas_raise_field_error("password", why);
	}

	/* The invitation holds only while its admin is an active admin. */
	vals[1] = saas_uuid_datum(&inviter);
	if (saas_exec(&plan_inviter, vals, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the inviting admin");
	if (SPI_processed == 0)
		saas_ott_refuse("invitation");
	inviter_role = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

	vals[1] = CStringGetTextDatum(email);
	if (saas_exec(&plan_user_exists, vals, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not look up user");
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_CONFLICT),
				 errmsg("this email is already a user of the organization; log in instead")));
	saas_unelevate(&elev);

	/*
	 * The user is created by the inviting admin, under the trusted context
	 * (on Citus over the owner's connections, as registration does).
	 */
	saas_uuid_v7(&user_id);
	elevated = saas_elevate_citus(&write_elev);
	nest = saas_context_push_trusted(&t.org_id, &inviter, inviter_role);
	vals[0] = saas_uuid_datum(&t.org_id);
	vals[1] = saas_uuid_datum(&user_id);
	vals[2] = CStringGetTextDatum(email);
	vals[3] = CStringGetTextDatum(first);
	vals[4] = CStringGetTextDatum(last);
	vals[5] = CStringGetTextDatum(role);
	saas_user_dir_set(&t.org_id, &user_id, email, NULL);
	if (saas_exec(&plan_user_insert, vals, nulls, false, 0) != SPI_OK_INSERT_RETURNING ||
		SPI_processed != 1)
		elog(ERROR, "could not create user");
	initStringInfo(&user_json);
	saas_row_json(&user_json, 0);
	saas_user_set_password(&t.org_id, &user_id, password, email);
	saas_context_pop(nest);
	if (elevated)
		saas_unelevate(&write_elev);

	/* Used up, as the admin's context: the audit names who invited. */
	nest = saas_context_push_trusted(&t.org_id, &inviter, inviter_role);
	saas_elevate(&elev);
	vals[1] = saas_uuid_datum(&t.id);
	vals[2] = saas_uuid_datum(&user_id);
	if (saas_exec(&plan_accepted, vals, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not record the acceptance");
	saas_unelevate(&elev);
	saas_context_pop(nest);
	saas_ott_drop_message(&t.org_id, inv_key(&t.id));

	appendStringInfoChar(out, '{');
	auth_token_json(out, &user_id, &t.org_id, role, 0);
	appendStringInfoString(out, ",\"user\":");
	appendBinaryStringInfo(out, user_json.data, user_json.len);
	appendStringInfoChar(out, '}');
	SPI_finish();
}
