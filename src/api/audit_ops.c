/*-------------------------------------------------------------------------
 *
 * audit_ops.c
 *	  GET /audit-logs and its SQL twin saas.list_audit_logs(params): an
 *	  admin's page of its organization's audit log, newest first.
 *
 * The read runs as the caller, so the log's row-level security applies
 * (own organization, admin or super_admin); the query also names the
 * context's organization, which keeps a superuser caller to one tenant.
 * Pages are keyed by seq, the entry's place in its organization's chain.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "pg_saas.h"
#include "common/common.h"
#include "auth/auth.h"
#include "audit/audit.h"
#include "api/api.h"

PG_FUNCTION_INFO_V1(saas_sql_list_audit_logs);

static const char *const audit_actions[] = {
	SAAS_AUDIT_CREATE, SAAS_AUDIT_UPDATE, SAAS_AUDIT_DELETE,
	"password_change", "logout", "logout_all", NULL
};

/*
 * The page query. Absent filters are NULL; the cursor bound is folded into
 * the index condition on (org_id, seq) so that deep pages stay cheap.
 */
static SaasPlan audit_plan_list = {
	"SELECT id, org_id, seq, occurred_at, actor_id, actor_role, action, entity,"
	" entity_id, changes, request_id "
	"FROM saas.audit_log "
	"WHERE org_id OPERATOR(pg_catalog.=) $1"
	" AND seq OPERATOR(pg_catalog.<) COALESCE($2, 9223372036854775807::bigint)"
	" AND ($3::text IS NULL OR entity OPERATOR(pg_catalog.=) $3)"
	" AND ($4::text IS NULL OR action OPERATOR(pg_catalog.=) $4)"
	" AND ($5::timestamptz IS NULL OR occurred_at OPERATOR(pg_catalog.>=) $5) "
	"ORDER BY seq DESC LIMIT $6",
	6, {UUIDOID, INT8OID, TEXTOID, TEXTOID, TIMESTAMPTZOID, INT4OID}, NULL
};

/* audit_one_of: whether s is one of the NULL-terminated choices. */
static bool
audit_one_of(const char *s, const char *const *choices)
{
	int			i;

	for (i = 0; choices[i]; i++)
		if (strcmp(s, choices[i]) == 0)
			return true;
	return false;
}

/* audit_choices: "must be one of: a, b, c" for a validation message. */
static const char *
audit_choices(const char *const *choices)
{
	StringInfoData s;
	int			i;

	initStringInfo(&s);
	appendStringInfoString(&s, "must be one of: ");
	for (i = 0; choices[i]; i++)
		appendStringInfo(&s, "%s%s", i > 0 ? ", " : "", choices[i]);
	return s.data;
}

/* audit_digits: n decimal digits at s as a number; false if any is not one. */
static bool
audit_digits(const char *s, int n, int *out)
{
	int			v = 0;
	int			i;

	for (i = 0; i < n; i++)
	{
		if (!isdigit((unsigned char) s[i]))
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

/*
 * audit_parse_rfc3339: an RFC 3339 date-time ("2024-05-01T09:30:00Z",
 * optional fraction, "Z" or a "+hh:mm" offset). Strict, and never raises:
 * a bad value is the caller's 400, not a date/time error.
 */
static bool
audit_parse_rfc3339(const char *s, TimestampTz *out)
{
	int			y,
				mo,
				d,
				h,
				mi,
				sec,
				oh = 0,
				om = 0,
				sign = 0;
	int			y2,
				mo2,
				d2;
	int64		frac = 0;
	int			fdigits = 0;
	int			jd;
	const char *p = s;

	if (strlen(s) < 20 ||
		!audit_digits(p, 4, &y) || p[4] != '-' ||
		!audit_digits(p + 5, 2, &mo) || p[7] != '-' ||
		!audit_digits(p + 8, 2, &d) ||
		(p[10] != 'T' && p[10] != 't') ||
		!audit_digits(p + 11, 2, &h) || p[13] != ':' ||
		!audit_digits(p + 14, 2, &mi) || p[16] != ':' ||
		!audit_digits(p + 17, 2, &sec))
		return false;
	p += 19;
	if (*p == '.')
	{
		for (p++; isdigit((unsigned char) *p); p++, fdigits++)
			if (fdigits < 6)
				frac = frac * 10 + (*p - '0');
		if (fdigits == 0 || fdigits > 9)
			return false;
		for (; fdigits < 6; fdigits++)
			frac *= 10;
	}
	if (*p == 'Z' || *p == 'z')
		p++;
	else if (*p == '+' || *p == '-')
	{
		sign = (*p == '-') ? -1 : 1;
		if (!audit_digits(p + 1, 2, &oh) || p[3] != ':' || !audit_digits(p + 4, 2, &om))
			return false;
		p += 6;
	}
	else
		return false;
	if (*p != '\0')
		return false;
	if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > 31 ||
		h > 23 || mi > 59 || sec > 59 || oh > 23 || om > 59)
		return false;
	/* Reject days the month does not have (2023-02-30). */
	jd = date2j(y, mo, d);
	j2date(jd, &y2, &mo2, &d2);
	if (y2 != y || mo2 != mo || d2 != d)
		return false;

	*out = ((int64) (jd - POSTGRES_EPOCH_JDATE) * SECS_PER_DAY +
			h * SECS_PER_HOUR + mi * SECS_PER_MINUTE + sec -
			sign * (oh * SECS_PER_HOUR + om * SECS_PER_MINUTE)) * USECS_PER_SEC + frac;
	return true;
}

/* audit_cursor_seq: the seq a cursor stands for; false for a bad cursor. */
static bool
audit_cursor_seq(const char *cursor, int64 *seq)
{
	char	   *key = saas_cursor_decode(cursor);
	char	   *end;
	long long	v;

	if (key == NULL || key[0] == '\0' || strlen(key) > 19 ||
		strspn(key, "0123456789") != strlen(key))
		return false;
	errno = 0;
	v = strtoll(key, &end, 10);
	if (errno != 0 || *end != '\0' || v < 1)
		return false;
	*seq = (int64) v;
	return true;
}

/*
 * saas_op_list_audit_logs: GET /audit-logs ?limit&cursor&entity&action&since.
 * Admins (and super_admins) of the context's organization only; answers
 * {"data":[entry,...],"next_cursor":...}, newest first. Entries carry no
 * hashes: verifying the chain is saas.audit_verify's job.
 */
void
saas_op_list_audit_logs(const SaasParams *p, StringInfo out)
{
	static const char *const allowed[] = {"limit", "cursor", "entity", "action", "since", NULL};
	static const char *const readers[] = {SAAS_ROLE_ADMIN, SAAS_ROLE_SUPER_ADMIN, NULL};
	const SaasContext *ctx = saas_context_require_scope(SAAS_SCOPE_AUDIT_READ, "read the audit log");
	const char *cursor = saas_param(p, "cursor");
	const char *entity = saas_param(p, "entity");
	const char *action = saas_param(p, "action");
	const char *since = saas_param(p, "since");
	int			limit;
	int64		before = 0;
	TimestampTz since_ts = 0;
	SaasErrors	errs;
	Datum		vals[6];
	char		nulls[6];

	saas_require_role_scoped(ctx, readers, "read the audit log");
	saas_params_check(p, allowed);
	limit = saas_param_limit(p);

	saas_errors_init(&errs);
	if (cursor && !audit_cursor_seq(cursor, &before))
		saas_errors_add(&errs, "cursor", "is not a valid cursor");
	if (entity && !audit_one_of(entity, saas_audit_entities))
		saas_errors_add(&errs, "entity", audit_choices(saas_audit_entities));
	if (action && !audit_one_of(action, audit_actions))
		saas_errors_add(&errs, "action", audit_choices(audit_actions));
	if (since && !audit_parse_rfc3339(since, &since_ts))
		saas_errors_add(&errs, "since", "must be an RFC 3339 date-time, e.g. 2024-05-01T00:00:00Z");
	saas_errors_raise(&errs);

	memset(nulls, ' ', sizeof(nulls));
	vals[0] = saas_uuid_datum(&ctx->org_id);
	vals[1] = Int64GetDatum(before);
	if (cursor == NULL)
		nulls[1] = 'n';
	vals[2] = saas_text_datum_or_null(entity, &nulls[2]);
	vals[3] = saas_text_datum_or_null(action, &nulls[3]);
	vals[4] = TimestampTzGetDatum(since_ts);
	if (since == NULL)
		nulls[4] = 'n';
	vals[5] = Int32GetDatum(limit + 1);

	saas_spi_connect();
	if (saas_exec(&audit_plan_list, vals, nulls, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the audit log");
	saas_page_json(out, limit, "seq");
	SPI_finish();
}

/*
 * SQL: saas.list_audit_logs(params jsonb DEFAULT '{}') RETURNS jsonb, the
 * same page as GET /audit-logs, under the same pinned search_path.
 */
Datum
saas_sql_list_audit_logs(PG_FUNCTION_ARGS)
{
	SaasParams	p;
	StringInfoData out;
	int			nest;

	saas_params_from_jsonb(PG_ARGISNULL(0) ? NULL : PG_GETARG_JSONB_P(0), &p);
	initStringInfo(&out);
	nest = saas_env_push();
	saas_op_list_audit_logs(&p, &out);
	saas_env_pop(nest);
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(out.data)));
}
