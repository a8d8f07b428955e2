/*-------------------------------------------------------------------------
 *
 * password_reset_ops.c
 *	  Password reset: POST /auth/password-reset asks for a token by email
 *	  (always the same 202), POST /auth/password-reset/confirm sets the
 *	  password with it.
 *
 * A request answers the same whatever the email: for each active account
 * with it (the login candidates: the oldest LOGIN_CANDIDATES accounts in the
 * email directory), a token valid 30 minutes goes out through the worker and
 * the communication service, and the account's earlier tokens are void.
 * When no account gets a token (unknown email, inactive account), the same
 * work is done for a decoy (the platform organization's first account) in a
 * subtransaction that is then rolled back: the same statements on the same
 * tables, nothing kept. So the time an answer takes does not tell whether
 * the email has an account (docs/security.md, test/bench/40_reset_timing.sh).
 * Confirming sets the password as the user itself under the extension's
 * trusted context: the policy, the credentials rules, the audit entry and
 * the end of every session of the user follow as for a password change.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/resowner.h"

#include "common/common.h"
#include "auth/auth.h"
#include "api/api.h"

#define RESET_TTL "30 minutes"
#define RESET_CANDIDATES 3

static SaasPlan plan_lookup = {
	"SELECT d.org_id, d.user_id FROM saas._user_emails d WHERE d.email = lower($1)"
	" ORDER BY d.created_at, d.org_id, d.user_id LIMIT " CppAsString2(RESET_CANDIDATES),
	1, {TEXTOID}
};

/* The account by its key, if it still has this email and may log in. */
static SaasPlan plan_account = {
	"SELECT 1 FROM saas.users u JOIN saas.organizations o ON o.id = u.org_id"
	" WHERE u.org_id = $1 AND u.id = $2 AND u.email = lower($3)"
	" AND u.status = 'active' AND o.status = 'active'",
	3, {UUIDOID, UUIDOID, TEXTOID}
};

/*
 * The decoy: the platform organization's first account, else (no operator
 * yet) the directory's first; both read by an index.
 */
static SaasPlan plan_decoy = {
	"(SELECT d.org_id, d.user_id, d.email FROM saas._user_emails d"
	"  WHERE d.org_id = saas.platform_org_id() ORDER BY d.org_id, d.user_id LIMIT 1)"
	" UNION ALL (SELECT d.org_id, d.user_id, d.email FROM saas._user_emails d"
	"  ORDER BY d.email, d.org_id LIMIT 1) LIMIT 1",
	0, {InvalidOid}
};

/* A new token voids the user's earlier ones. */
static SaasPlan plan_void_earlier = {
	"DELETE FROM saas._password_resets WHERE org_id = $1 AND user_id = $2 RETURNING id",
	2, {UUIDOID, UUIDOID}
};

static SaasPlan plan_insert = {
	"INSERT INTO saas._password_resets (org_id, id, user_id, token_hash, expires_at)"
	" VALUES ($1, $2, $3, $4, now() + interval '" RESET_TTL "')",
	4, {UUIDOID, UUIDOID, UUIDOID, BYTEAOID}
};

/* The token's row and its user, locked: one use at a time. */
static SaasPlan plan_claim = {
	"SELECT r.token_hash, r.used_at IS NULL AND r.expires_at > now(), r.user_id, u.email, u.role"
	" FROM saas._password_resets r JOIN saas.users u ON u.org_id = r.org_id AND u.id = r.user_id"
	" WHERE r.org_id = $1 AND r.id = $2 FOR UPDATE OF r",
	2, {UUIDOID, UUIDOID}
};

static SaasPlan plan_use = {
	"UPDATE saas._password_resets SET used_at = now() WHERE org_id = $1 AND user_id = $2 AND used_at IS NULL",
	2, {UUIDOID, UUIDOID}
};

static const SaasField request_fields[] = {
	{"email", SF_EMAIL, true},
	{NULL}
};

static const SaasField confirm_fields[] = {
	{"token", SF_STRING, true, 1, 200},
	{"password", SF_PASSWORD, true},
	{NULL}
};

/* reset_key: the idempotency key of a reset's delivery job. */
static char *
reset_key(const pg_uuid_t *id)
{
	char		buf[37];

	saas_uuid_to_cstr(id, buf);
	return psprintf("password-reset:%s", buf);
}

/*
 * reset_issue: a new token for one account, sent to its email; its earlier
 * tokens (and their messages, if not sent) are void. As the owner.
 */
static void
reset_issue(const pg_uuid_t *org_id, const pg_uuid_t *user_id, const char *email)
{
	Datum		vals[4];
	pg_uuid_t	id;
	unsigned char hash[SAAS_OTT_HASH_LEN];
	char	   *token;
	uint64		i,
				n;
	pg_uuid_t  *old;

	vals[0] = saas_uuid_datum(org_id);
	vals[1] = saas_uuid_datum(user_id);
	if (saas_exec(&plan_void_earlier, vals, NULL, false, 0) != SPI_OK_DELETE_RETURNING)
		elog(ERROR, "could not void earlier tokens");
	n = SPI_processed;
	old = palloc(sizeof(pg_uuid_t) * (n + 1));
	for (i = 0; i < n; i++)
	{
		bool		isnull;

		old[i] = *DatumGetUUIDP(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
	}
	for (i = 0; i < n; i++)
		saas_ott_drop_message(org_id, reset_key(&old[i]));

	saas_uuid_v7(&id);
	token = saas_ott_make("rst_", org_id, &id, hash);
	vals[0] = saas_uuid_datum(org_id);
	vals[1] = saas_uuid_datum(&id);
	vals[2] = saas_uuid_datum(user_id);
	vals[3] = saas_ott_hash_datum(hash);
	if (saas_exec(&plan_insert, vals, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not store the reset token");
	saas_ott_send(org_id, "message.password_reset", email, "password_reset",
				  "Reset your password",
				  psprintf("Someone asked to reset the password of your account. If it was you,"
						   " set a new password with this token (valid for " RESET_TTL ", once): %s."
						   " If not, ignore this message.", token),
				  reset_key(&id));
	explicit_bzero(token, strlen(token));
	saas_audit_user_event(org_id, user_id, "password_reset_requested");
}

/*
 * reset_account_issue: a token for the account if it may log in (the email
 * still its own, user and organization active). Whether one was issued.
 */
static bool
reset_account_issue(const pg_uuid_t *org_id, const pg_uuid_t *user_id, const char *email)
{
	Datum		vals[3];

	vals[0] = saas_uuid_datum(org_id);
	vals[1] = saas_uuid_datum(user_id);
	vals[2] = CStringGetTextDatum(email);
	if (saas_exec(&plan_account, vals, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not look up the account");
	if (SPI_processed != 1)
		return false;
	reset_issue(org_id, user_id, email);
	return true;
}

/*
 * reset_decoy: the work of one issue for the decoy account, undone. An
 * error in it (say, the decoy's row locked and a lock timeout) is dropped
 * with the subtransaction: the answer stays the same.
 */
/* The decoy's account, for reset_decoy through saas_subxact_run. */
typedef struct DecoyCall
{
	const pg_uuid_t *org_id;
	const pg_uuid_t *user_id;
	const char *email;
} DecoyCall;

static void
reset_decoy_issue(void *arg)
{
	DecoyCall  *d = arg;

	(void) reset_account_issue(d->org_id, d->user_id, d->email);
}

static void
reset_decoy(const pg_uuid_t *org_id, const pg_uuid_t *user_id, const char *email)
{
	DecoyCall	d = {org_id, user_id, email};
	ErrorData  *edata = saas_subxact_run(reset_decoy_issue, &d, false);

	if (edata == NULL)
		return;
	/* A cancel or shutdown still stops the request. */
	if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
		ReThrowError(edata);
	FreeErrorData(edata);
}

/*
 * saas_op_request_password_reset: POST /auth/password-reset. The answer is
 * the same for every well-formed email, and so is the work (above).
 */
void
saas_op_request_password_reset(Jsonb *body, StringInfo out)
{
	SaasErrors	e;
	char	   *email;
	Datum		vals[3];
	SaasElevation elev;
	uint64		i,
				n;
	pg_uuid_t	orgs[RESET_CANDIDATES],
				users[RESET_CANDIDATES],
				decoy_org,
				decoy_user;
	char	   *decoy_email = NULL;
	bool		issued = false;

	saas_require_object(body);
	saas_errors_init(&e);
	saas_validate(body, request_fields, "", &e);
	saas_errors_raise(&e);
	email = saas_get_str(body, "email");

	saas_spi_connect();
	saas_elevate(&elev);
	/* Read on every request, used or not: the same statements either way. */
	if (saas_exec(&plan_decoy, NULL, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not look up the decoy");
	if (SPI_processed == 1)
	{
		bool		isnull;

		decoy_org = *DatumGetUUIDP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		decoy_user = *DatumGetUUIDP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
		decoy_email = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);
	}
	vals[0] = CStringGetTextDatum(email);
	if (saas_exec(&plan_lookup, vals, NULL, true, RESET_CANDIDATES) != SPI_OK_SELECT)
		elog(ERROR, "could not look up the email");
	n = SPI_processed;
	for (i = 0; i < n; i++)
	{
		bool		isnull;

		orgs[i] = *DatumGetUUIDP(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		users[i] = *DatumGetUUIDP(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
	}
	for (i = 0; i < n; i++)
		issued |= reset_account_issue(&orgs[i], &users[i], email);
	if (!issued && decoy_email != NULL)
		reset_decoy(&decoy_org, &decoy_user, decoy_email);
	saas_unelevate(&elev);
	SPI_finish();
	appendStringInfoString(out, "{\"message\":\"if an account uses this email, a message to reset"
						   " its password is on its way\"}");
}

/*
 * saas_op_confirm_password_reset: POST /auth/password-reset/confirm. Every
 * token that cannot be used gets the same 400; a password the policy
 * refuses is a 400 that leaves the token usable.
 */
void
saas_op_confirm_password_reset(Jsonb *body)
{
	SaasErrors	e;
	SaasOtt		t;
	Datum		vals[2];
	SaasElevation elev,
				write_elev;
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull,
				elevated;
	pg_uuid_t	user_id;
	char	   *email,
			   *role,
			   *password;
	int			nest;

	saas_require_object(body);
	saas_errors_init(&e);
	saas_validate(body, confirm_fields, "", &e);
	saas_errors_raise(&e);
	if (!saas_ott_parse("rst_", saas_get_str(body, "token"), &t))
		saas_ott_refuse("token");
	password = saas_get_str(body, "password");

	saas_spi_connect();
	saas_elevate(&elev);
	tup = saas_ott_claim(&plan_claim, &t, "token");
	desc = SPI_tuptable->tupdesc;
	vals[0] = saas_uuid_datum(&t.org_id);	/* the organization, for what follows */
	user_id = *DatumGetUUIDP(SPI_getbinval(tup, desc, 3, &isnull));
	/* No password to set where login refuses passwords (as login's 403). */
	if (!saas_sso_password_login_allowed(&t.org_id))
		saas_raise_sso_only();
	email = SPI_getvalue(tup, desc, 4);
	role = SPI_getvalue(tup, desc, 5);
	vals[1] = saas_uuid_datum(&user_id);
	if (saas_exec(&plan_use, vals, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not use the reset token");
	saas_unelevate(&elev);

	/* As the user itself (trusted): the rules, audit and session end follow. */
	elevated = saas_elevate_citus(&write_elev);
	nest = saas_context_push_trusted(&t.org_id, &user_id, role);
	saas_user_set_password(&t.org_id, &user_id, password, email);
	saas_elevate(&elev);
	saas_audit_user_event(&t.org_id, &user_id, "password_reset");
	saas_unelevate(&elev);
	saas_context_pop(nest);
	if (elevated)
		saas_unelevate(&write_elev);
	saas_ott_drop_message(&t.org_id, reset_key(&t.id));
	SPI_finish();
	saas_session_forget();
}
