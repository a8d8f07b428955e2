/*-------------------------------------------------------------------------
 *
 * dashboard_ops.c
 *	  What the admin dashboard reads beside the core routes:
 *	  GET /integrations/calls, GET /webhook-events and
 *	  GET /audit-logs/verify (routes_dashboard.c).
 *
 * The checks here only give earlier, nicer errors (400 with the field);
 * the guard is in the database: saas.integration_calls_json() and
 * saas.list_webhook_events() check the role themselves, the events are
 * read as the caller through the table's row-level security, and
 * saas.audit_verify() decides whose chain a caller may verify.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <errno.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/uuid.h"

#include "common/common.h"
#include "auth/auth.h"
#include "api/api.h"

static const char *const dash_admin_roles[] = {"admin", "super_admin", NULL};
static const char *const dash_event_states[] = {"pending", "applied", "rejected", NULL};

static SaasPlan plan_calls = {
	"SELECT saas.integration_calls_json($1)::text", 1, {INT4OID}
};

static SaasPlan plan_events = {
	"SELECT saas.list_webhook_events($1, $2, $3, $4)::text", 4,
	{TEXTOID, TEXTOID, TEXTOID, INT4OID}
};

static SaasPlan plan_verify = {
	"SELECT ok, checked, first_bad_seq, problem FROM saas.audit_verify($1)", 1, {UUIDOID}
};

/*
 * dash_one_text: run a plan that answers one text column, append it to out.
 */
static void
dash_one_text(SaasPlan *plan, Datum *vals, const char *nulls, StringInfo out, const char *what)
{
	saas_spi_connect();
	if (saas_exec(plan, vals, nulls, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not read %s", what);
	appendStringInfoString(out, SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	SPI_finish();
}

/*
 * saas_op_integration_calls: GET /integrations/calls?minutes (1-60, default
 * 60): each service's calls, errors and latency by minute.
 */
void
saas_op_integration_calls(const SaasParams *p, StringInfo out)
{
	static const char *const allowed[] = {"minutes", NULL};
	const SaasContext *ctx = saas_context_require();
	const char *s = saas_param(p, "minutes");
	long		minutes = 60;
	Datum		val;

	saas_params_check(p, allowed);
	if (s != NULL)
	{
		char	   *end;

		errno = 0;
		minutes = strtol(s, &end, 10);
		if (*s == '\0' || *end != '\0' || errno != 0 || minutes < 1 || minutes > 60)
			saas_raise_field_error("minutes", "must be an integer from 1 to 60");
	}
	saas_require_role(ctx, dash_admin_roles, "read integration calls");
	val = Int32GetDatum((int32) minutes);
	dash_one_text(&plan_calls, &val, NULL, out, "integration calls");
}

/*
 * saas_op_list_webhook_events: GET /webhook-events ?service&state&limit&cursor:
 * the organization's received events, newest first.
 */
void
saas_op_list_webhook_events(const SaasParams *p, StringInfo out)
{
	static const char *const allowed[] = {"limit", "cursor", "service", "state", NULL};
	const SaasContext *ctx = saas_context_require();
	const char *service = saas_param(p, "service");
	const char *state = saas_param(p, "state");
	const char *cursor = saas_param(p, "cursor");
	char	   *after = NULL;
	Datum		vals[4];
	char		nulls[5] = "    ";
	int			limit;
	int			i;

	saas_params_check(p, allowed);
	limit = saas_param_limit(p);
	if (service != NULL && saas_service_index(service) < 0)
		saas_raise_field_error("service",
							   "must be one of: user-service, payment-service, communication-service");
	if (state != NULL)
	{
		for (i = 0; dash_event_states[i] != NULL; i++)
			if (strcmp(state, dash_event_states[i]) == 0)
				break;
		if (dash_event_states[i] == NULL)
			saas_raise_field_error("state", "must be one of: pending, applied, rejected");
	}
	if (cursor != NULL && (after = saas_cursor_decode(cursor)) == NULL)
		saas_raise_field_error("cursor", "is not a valid cursor");
	saas_require_role(ctx, dash_admin_roles, "list webhook events");
	vals[0] = saas_text_datum_or_null(service, &nulls[0]);
	vals[1] = saas_text_datum_or_null(state, &nulls[1]);
	vals[2] = saas_text_datum_or_null(after, &nulls[2]);
	vals[3] = Int32GetDatum(limit);
	dash_one_text(&plan_events, vals, nulls, out, "webhook events");
}

/*
 * saas_op_audit_verify: GET /audit-logs/verify ?org_id: the result of
 * recomputing an organization's audit hash chain.  The caller's own
 * organization by default; saas.audit_verify refuses another one to an
 * admin.  An org_id that is not a UUID names no organization: 404.
 */
void
saas_op_audit_verify(const SaasParams *p, StringInfo out)
{
	static const char *const allowed[] = {"org_id", NULL};
	const SaasContext *ctx = saas_context_require();
	const char *org = saas_param(p, "org_id");
	pg_uuid_t	id = ctx->org_id;
	Datum		val;
	HeapTuple	tup;
	TupleDesc	desc;
	bool		first = true;
	char	   *v;

	saas_params_check(p, allowed);
	saas_require_role(ctx, dash_admin_roles, "verify the audit log");
	if (org != NULL && !saas_uuid_from_cstr(org, &id))
		saas_not_found("organization");
	val = saas_uuid_datum(&id);
	saas_spi_connect();
	if (saas_exec(&plan_verify, &val, NULL, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not verify the audit log");
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	appendStringInfoChar(out, '{');
	saas_json_key(out, &first, "org_id");
	saas_json_uuid(out, &id);
	saas_json_key(out, &first, "ok");
	v = SPI_getvalue(tup, desc, 1);
	appendStringInfoString(out, v != NULL && strcmp(v, "t") == 0 ? "true" : "false");
	saas_json_key(out, &first, "checked");
	saas_json_column(out, tup, desc, 2);
	saas_json_key(out, &first, "first_bad_seq");
	saas_json_column(out, tup, desc, 3);
	saas_json_key(out, &first, "problem");
	saas_json_column(out, tup, desc, 4);
	appendStringInfoChar(out, '}');
	SPI_finish();
}
