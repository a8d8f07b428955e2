/*-------------------------------------------------------------------------
 *
 * integration_ops.c
 *	  GET /integrations/status, GET /jobs, POST /jobs/:id/retry and
 *	  POST /jobs/retry.
 *
 * Jobs are read as the caller (admins of the organization, by row-level
 * security and an explicit org filter); status and retry are SECURITY
 * DEFINER SQL functions that check the role themselves.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"

#include "common/common.h"
#include "auth/auth.h"
#include "api/api.h"

static const char *const admin_roles[] = {"admin", "super_admin", NULL};

static SaasPlan plan_status = {
	"SELECT saas.integration_status_json()::text", 0, {0}
};

static SaasPlan plan_jobs = {
	"SELECT id, service, kind, state, attempt, max_attempts, run_at, last_status, last_error,"
	" created_at, updated_at, finished_at FROM saas.jobs"
	" WHERE org_id = $1 AND ($2::text IS NULL OR state = $2)"
	" AND id > coalesce($3, '00000000-0000-0000-0000-000000000000'::uuid)"
	" ORDER BY org_id, id LIMIT $4",
	4, {UUIDOID, TEXTOID, UUIDOID, INT4OID}
};

static SaasPlan plan_retry = {
	"SELECT saas.retry_job($1)::text", 1, {UUIDOID}
};

static SaasPlan plan_retry_bulk = {
	"SELECT saas.retry_jobs($1, $2, $3::timestamptz)::text", 3, {TEXTOID, TEXTOID, TEXTOID}
};

static const char *const retry_states[] = {"dead", "retryable", NULL};

static const SaasField retry_fields[] = {
	{"service", SF_ENUM, false, 0, 0, saas_service_names},
	{"state", SF_ENUM, false, 0, 0, retry_states},
	{"since", SF_STRING, false, 1, 64},
	{NULL}
};

/*
 * saas_op_integration_status: GET /integrations/status, each service's state
 * for admins.
 */
void
saas_op_integration_status(StringInfo out)
{
	const SaasContext *ctx = saas_context_require_scope(SAAS_SCOPE_INTEGRATIONS_READ, "read the integration status");

	saas_require_role_scoped(ctx, admin_roles, "read integration status");
	saas_spi_connect();
	if (saas_exec(&plan_status, NULL, NULL, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not read integration status");
	appendStringInfoString(out, SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	SPI_finish();
}

/*
 * saas_op_list_jobs: GET /jobs, the organization's jobs by id, filtered by
 * state (admins).
 */
void
saas_op_list_jobs(const SaasParams *p, StringInfo out)
{
	static const char *const allowed[] = {"limit", "cursor", "state", NULL};
	const SaasContext *ctx = saas_context_require_scope(SAAS_SCOPE_INTEGRATIONS_READ, "list jobs");
	const char *state = saas_param(p, "state");
	const char *cursor = saas_param(p, "cursor");
	int			limit;
	Datum		vals[4];
	char		nulls[5] = "    ";
	pg_uuid_t	after;

	saas_params_check(p, allowed);
	limit = saas_param_limit(p);
	if (state && strcmp(state, "available") != 0 && strcmp(state, "running") != 0 &&
		strcmp(state, "retryable") != 0 && strcmp(state, "succeeded") != 0 &&
		strcmp(state, "dead") != 0)
		saas_raise_field_error("state", "must be one of: available, running, retryable, succeeded, dead");
	if (cursor && !saas_cursor_uuid(cursor, &after))
		saas_raise_field_error("cursor", "is not a valid cursor");
	saas_require_role_scoped(ctx, admin_roles, "list jobs");
	vals[0] = saas_uuid_datum(&ctx->org_id);
	vals[1] = saas_text_datum_or_null(state, &nulls[1]);
	if (cursor)
		vals[2] = saas_uuid_datum(&after);
	else
		nulls[2] = 'n';
	vals[3] = Int32GetDatum(limit + 1);
	saas_spi_connect();
	if (saas_exec(&plan_jobs, vals, nulls, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not list jobs");
	saas_page_json(out, limit, "id");
	SPI_finish();
}

/* saas_op_retry_job: POST /jobs/{id}/retry (admins), through saas.retry_job. */
void
saas_op_retry_job(const pg_uuid_t *id, StringInfo out)
{
	const SaasContext *ctx = saas_context_refuse_api_key("retry jobs");
	Datum		val = saas_uuid_datum(id);

	saas_require_role(ctx, admin_roles, "retry jobs");
	saas_spi_connect();
	if (saas_exec(&plan_retry, &val, NULL, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not retry job");
	appendStringInfoString(out, SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	SPI_finish();
}

/*
 * saas_op_retry_jobs: POST /jobs/retry {service?, state? (dead), since?}:
 * after an incident, every matching job of the caller's organization is
 * made due again at once (saas.retry_jobs checks the role and the scope).
 * A "since" that is not a date-time is the database's 400.
 */
void
saas_op_retry_jobs(Jsonb *body, StringInfo out)
{
	const SaasContext *ctx = saas_context_refuse_api_key("retry jobs");
	SaasErrors	e;
	Datum		vals[3];
	char		nulls[4] = "   ";
	char	   *state;

	saas_require_role(ctx, admin_roles, "retry jobs");
	saas_require_object(body);
	saas_errors_init(&e);
	saas_validate(body, retry_fields, "", &e);
	saas_errors_raise(&e);
	state = saas_get_str(body, "state");
	vals[0] = saas_text_datum_or_null(saas_get_str(body, "service"), &nulls[0]);
	vals[1] = CStringGetTextDatum(state ? state : "dead");
	vals[2] = saas_text_datum_or_null(saas_get_str(body, "since"), &nulls[2]);
	saas_spi_connect();
	if (saas_exec(&plan_retry_bulk, vals, nulls, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not retry jobs");
	appendStringInfoString(out, SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	SPI_finish();
}
