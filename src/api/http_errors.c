/*-------------------------------------------------------------------------
 *
 * http_errors.c
 *	  The one place where errors become HTTP answers.
 *
 * SQLSTATE class SA carries the status in its last three characters; the
 * standard classes map by meaning (unique violation 409, check violation
 * 400, ...). Anything unexpected is a 500 with a generic body, and the real
 * error is logged with the request id so an operator can find it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/elog.h"
#include "utils/json.h"

#include "pg_saas.h"
#include "common/common.h"
#include "api/api.h"

/*
 * saas_response_header: add one "Name":"value" pair to the answer's header object.
 */
void
saas_response_header(SaasResponse *r, const char *name, const char *value)
{
	if (r->headers.len > 0)
		appendStringInfoChar(&r->headers, ',');
	escape_json(&r->headers, name);
	appendStringInfoChar(&r->headers, ':');
	escape_json(&r->headers, value);
}

/* Field names for the constraints a client can run into. */
static const struct
{
	const char *constraint;
	const char *field;
	const char *message;
}			constraint_fields[] = {
	{"organizations_slug_key", "slug", "is already taken"},
	{"users_org_email_key", "email", "is already used in this organization"},
	{"organizations_slug_check", "slug", "is not a valid slug"},
	{"users_email_check", "email", "must be a valid email address"},
	{"organizations_name_check", "name", "must be 1-200 characters"},
	{NULL}
};

/*
 * http_code_name: the machine-readable error code of the body for an HTTP status.
 */
static const char *
http_code_name(int status)
{
	switch (status)
	{
		case 400:
			return "bad_request";
		case 401:
			return "unauthorized";
		case 403:
			return "forbidden";
		case 404:
			return "not_found";
		case 405:
			return "method_not_allowed";
		case 409:
			return "conflict";
		case 412:
			return "precondition_failed";
		case 413:
			return "payload_too_large";
		case 415:
			return "unsupported_media_type";
		case 429:
			return "rate_limited";
		case 503:
			return "service_unavailable";
		default:
			return "internal_error";
	}
}

/*
 * saas_http_status_for_error: the HTTP status an error maps to. SQLSTATE
 * class SA carries it in its last three characters; a few standard
 * SQLSTATEs map by meaning (conflicts 409, data exceptions 400, lack of
 * resources 503); anything else is a 500.
 */
int
saas_http_status_for_error(ErrorData *edata)
{
	int			code = edata->sqlerrcode;
	char	   *state = unpack_sql_state(code);

	if (state[0] == 'S' && state[1] == 'A')
		return atoi(state + 2);
	switch (code)
	{
		case ERRCODE_UNIQUE_VIOLATION:
		case ERRCODE_EXCLUSION_VIOLATION:
		case ERRCODE_T_R_SERIALIZATION_FAILURE:
		case ERRCODE_T_R_DEADLOCK_DETECTED:
		case ERRCODE_FOREIGN_KEY_VIOLATION:
			return 409;
		case ERRCODE_CHECK_VIOLATION:
		case ERRCODE_NOT_NULL_VIOLATION:
		case ERRCODE_INVALID_PARAMETER_VALUE:
		case ERRCODE_INVALID_TEXT_REPRESENTATION:
		case ERRCODE_FEATURE_NOT_SUPPORTED:
		case ERRCODE_STATEMENT_TOO_COMPLEX:
			return 400;
		case ERRCODE_INSUFFICIENT_PRIVILEGE:
			return 403;
		case ERRCODE_QUERY_CANCELED:
		case ERRCODE_LOCK_NOT_AVAILABLE:
		case ERRCODE_ADMIN_SHUTDOWN:
		case ERRCODE_CANNOT_CONNECT_NOW:
			return 503;
	}
	if (ERRCODE_TO_CATEGORY(code) == ERRCODE_DATA_EXCEPTION)
		return 400;
	if (ERRCODE_TO_CATEGORY(code) == ERRCODE_INSUFFICIENT_RESOURCES ||
		ERRCODE_TO_CATEGORY(code) == ERRCODE_CONNECTION_EXCEPTION)
		return 503;
	return 500;
}

/* http_error_body: the API's error document. */
static void
http_error_body(StringInfo out, const char *code, const char *message,
				const char *details_json, const char *request_id)
{
	appendStringInfoString(out, "{\"error\":{\"code\":");
	escape_json(out, code);
	appendStringInfoString(out, ",\"message\":");
	escape_json(out, message);
	appendStringInfoString(out, ",\"details\":");
	appendStringInfoString(out, details_json ? details_json : "[]");
	appendStringInfoString(out, ",\"request_id\":");
	escape_json(out, request_id);
	appendStringInfoString(out, "}}");
}

/*
 * saas_http_simple_error: replace the answer by an error body (see
 * http_error_body); a 400 with field details has the code
 * "validation_failed".
 */
void
saas_http_simple_error(SaasResponse *r, int status, const char *message,
					   const char *details_json, const char *request_id)
{
	const char *code = http_code_name(status);

	if (status == 400 && details_json && strcmp(details_json, "[]") != 0)
		code = "validation_failed";
	r->status = status;
	resetStringInfo(&r->body);
	http_error_body(&r->body, code, message, details_json, request_id);
	r->has_body = true;
}

/*
 * http_citus_constraint: the name of the constraint an error is about, as
 * the table has it. Citus reports a violation on a shard with the shard's
 * name for it ("users_org_email_key_102008") in the message only: the name
 * is taken from the message and the shard suffix dropped, so that it maps
 * like on a single node, and no shard name reaches a client.
 */
static const char *
http_citus_constraint(ErrorData *edata)
{
	const char *name = edata->constraint_name;
	char	   *copy;
	char	   *end;

	if (name == NULL && ERRCODE_TO_CATEGORY(edata->sqlerrcode) == ERRCODE_INTEGRITY_CONSTRAINT_VIOLATION &&
		edata->message != NULL && (name = strstr(edata->message, "constraint \"")) != NULL)
	{
		copy = pstrdup(name + strlen("constraint \""));
		if ((end = strchr(copy, '"')) != NULL)
			*end = '\0';
		name = copy;
	}
	if (name == NULL)
		return NULL;
	copy = pstrdup(name);
	end = copy + strlen(copy);
	while (end > copy && end[-1] >= '0' && end[-1] <= '9')
		end--;
	if (end > copy && end < copy + strlen(copy) && end[-1] == '_')
		end[-1] = '\0';
	return copy;
}

/*
 * http_citus_unshard: TEXT with the shard suffix of every quoted name
 * dropped ("_user_emails_102013" becomes "_user_emails"): errors raised on a
 * shard name the shard (a row-level security violation, a relation), and a
 * shard name is never passed on.
 */
static const char *
http_citus_unshard(const char *text)
{
	StringInfoData out;
	const char *p = text;

	if (text == NULL || strchr(text, '"') == NULL)
		return text;
	initStringInfo(&out);
	while (*p)
	{
		const char *open = strchr(p, '"');
		const char *close;
		const char *end;

		if (open == NULL || (close = strchr(open + 1, '"')) == NULL)
		{
			appendStringInfoString(&out, p);
			break;
		}
		end = close;
		while (end > open + 1 && end[-1] >= '0' && end[-1] <= '9')
			end--;
		if (close - end >= 4 && end > open + 2 && end[-1] == '_')
			end--;				/* a shard suffix: _ and at least 4 digits */
		else
			end = close;
		appendBinaryStringInfo(&out, p, end - p);
		appendStringInfoChar(&out, '"');
		p = close + 1;
	}
	return out.data;
}

/*
 * saas_http_error_response: the answer for a caught error. Details come
 * from a JSON array in the error's DETAIL (validation), or from the name of
 * the violated constraint.
 */
void
saas_http_error_response(SaasResponse *r, ErrorData *edata, const char *request_id)
{
	int			status = saas_http_status_for_error(edata);
	const char *details = NULL;
	const char *message = edata->message ? edata->message : "error";
	const char *constraint = edata->constraint_name;
	bool		citus = saas_citus_loaded();
	StringInfoData d;
	int			i;

	/*
	 * Where Citus is loaded: a statement Citus cannot run (feature not
	 * supported) is the server's failure, not the client's; and the text of
	 * a constraint violation on a shard names the shard, so it is never
	 * passed on (docs/scale-out.md).
	 */
	if (citus)
	{
		if (edata->sqlerrcode == ERRCODE_FEATURE_NOT_SUPPORTED)
			status = 500;
		/* The client's transaction, not the server, is in the way: say what to do. */
		if (saas_citus_two_users_error(edata))
		{
			saas_http_simple_error(r, 409, SAAS_CITUS_TWO_USERS_MESSAGE, NULL, request_id);
			return;
		}
		constraint = http_citus_constraint(edata);
		message = http_citus_unshard(message);
	}

	if (status == 500)
	{
		ereport(LOG,
				(errmsg("saas.http request %s failed: %s (SQLSTATE %s)", request_id,
						message, unpack_sql_state(edata->sqlerrcode))));
		saas_http_simple_error(r, 500, "internal error; the request id is logged", NULL, request_id);
		return;
	}
	if (edata->detail && edata->detail[0] == '[')
		details = edata->detail;
	else if (constraint)
	{
		for (i = 0; constraint_fields[i].constraint; i++)
			if (strcmp(constraint_fields[i].constraint, constraint) == 0)
			{
				initStringInfo(&d);
				appendStringInfoString(&d, "[{\"field\":");
				escape_json(&d, constraint_fields[i].field);
				appendStringInfoString(&d, ",\"message\":");
				escape_json(&d, constraint_fields[i].message);
				appendStringInfoString(&d, "}]");
				details = d.data;
				if (status == 409)
					message = "a resource with this value already exists";
				else
					message = "request validation failed";
				break;
			}
		if (citus && details == NULL)
			message = status == 409 ? "a resource with this value already exists" : "request validation failed";
	}
	else if (edata->detail)
		message = psprintf("%s (%s)", message, citus ? http_citus_unshard(edata->detail) : edata->detail);
	saas_http_simple_error(r, status, message, details, request_id);
	if (status == 409 && edata->sqlerrcode == ERRCODE_T_R_SERIALIZATION_FAILURE)
		saas_response_header(r, "Retry-After", "1");
}
