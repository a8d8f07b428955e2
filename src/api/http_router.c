/*-------------------------------------------------------------------------
 *
 * http_router.c
 *	  saas.http(method, path, headers, body): the REST API's single entry
 *	  point. The relay only forwards; routing, authentication, validation
 *	  and the error format all live here, so SQL callers get the same API.
 *
 * Each request runs in a subtransaction: an error rolls back exactly what
 * the request did and becomes an HTTP answer (http_errors.c). The request's
 * settings (tenant context, request id, search_path) are pushed in a GUC
 * nest level and popped at the end, so a call leaves nothing behind.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

#include "pg_saas.h"
#include "common/common.h"
#include "auth/auth.h"
#include "ratelimit/ratelimit.h"
#include "api/api.h"
#include "api/router.h"

PG_FUNCTION_INFO_V1(saas_http);

/* The per-service webhook limit, counted once the signature is verified. */
typedef struct WebhookLimitArg
{
	SaasResponse *r;
	const char *service;
} WebhookLimitArg;

static WebhookLimitArg webhook_limit_arg;

/*
 * router_webhook_limit: the per-service webhook limit, called by the ingest
 * once the signature is verified (forged deliveries spend no budget).
 */
static void
router_webhook_limit(void *arg)
{
	WebhookLimitArg *a = arg;

	router_limit(a->r, "webhook", a->service, NULL);
}

/*
 * A collection with items (/organizations, /users): list and create on the
 * collection, read, partial update (If-Match) and delete on an item.
 * create and the item operations return the row version for the ETag
 * (-1: none).
 */
typedef struct SaasResource
{
	const char *entity;
	void		(*list) (const SaasParams *p, StringInfo out);
	int64		(*create) (Jsonb *body, StringInfo out);
	int64		(*get) (const pg_uuid_t *id, StringInfo out);
	int64		(*update) (const pg_uuid_t *id, Jsonb *body, int64 if_version, StringInfo out);
	void		(*delete) (const pg_uuid_t *id);
} SaasResource;

/*
 * create_org_no_etag: creating an organization answers with the organization
 * and its admin, so there is no single version for an ETag.
 */
static int64
create_org_no_etag(Jsonb *body, StringInfo out)
{
	saas_op_create_org(body, out);	/* {organization, admin_user}: no single version */
	return -1;
}

static const SaasResource org_resource = {
	"organization", saas_op_list_orgs, create_org_no_etag, saas_op_get_org,
	saas_op_update_org, saas_op_delete_org
};

static const SaasResource user_resource = {
	"user", saas_op_list_users, saas_op_create_user, saas_op_get_user,
	saas_op_update_user, saas_op_delete_user
};

/*
 * route_resource: the routes of a collection and its items, by method and
 * number of segments (405 for a method the path does not take).
 */
static void
route_resource(SaasRequest *req, SaasResponse *r, const SaasResource *res)
{
	const char *m = req->method;
	bool		is_get = strcmp(m, "GET") == 0;
	bool		is_post = strcmp(m, "POST") == 0;
	bool		is_put = strcmp(m, "PUT") == 0;
	bool		is_delete = strcmp(m, "DELETE") == 0;
	int64		version = -1;

	if (req->nsegs == 1)
	{
		if (!is_get && !is_post)
			method_not_allowed(r, "GET, POST");
		req_authenticate_limited(req, r);
		if (is_get)
		{
			res->list(&req->params, &r->body);
			return;
		}
		no_params(req);
		req_require_json(req);
		version = res->create(req->json, &r->body);
		r->status = 201;
	}
	else
	{
		pg_uuid_t	id;

		if (!is_get && !is_put && !is_delete)
			method_not_allowed(r, "GET, PUT, DELETE");
		req_authenticate_limited(req, r);
		no_params(req);
		id = route_id(req, res->entity);
		if (is_get)
			version = res->get(&id, &r->body);
		else if (is_put)
		{
			int64		ifv = req_if_match(req);

			req_require_json(req);
			version = res->update(&id, req->json, ifv, &r->body);
		}
		else
		{
			saas_op_delete_if_match(res->entity, res->delete, &id, req_if_match(req));
			r->status = 204;
		}
	}
	if (version >= 0)
		set_etag(r, version);
}

/*
 * The route groups of other files (router.h), tried in order after the core
 * routes below. One line per routes_<feature>.c.
 */
static const SaasRouteFn route_modules[] = {
	saas_routes_invitations,
	saas_routes_sessions,
	saas_routes_sso,
	saas_routes_dashboard,
	routes_api_keys,
	NULL
};

/*
 * router_dispatch: match the route, check method, authenticate, run the
 * operation. Errors propagate to the caller's catch block.
 */
static void
router_dispatch(SaasRequest *req, SaasResponse *r)
{
	const char *m = req->method;
	const char *s0 = req->nsegs > 0 ? req->segs[0] : "";
	bool		is_get = strcmp(m, "GET") == 0;
	bool		is_post = strcmp(m, "POST") == 0;

	r->status = 200;
	if (strcmp(s0, "healthz") == 0 && req->nsegs == 1)
	{
		if (!is_get)
			method_not_allowed(r, "GET");
		saas_op_health(&r->body, &r->status);
		return;
	}
	if (strcmp(s0, "auth") == 0 && req->nsegs == 2 &&
		(strcmp(req->segs[1], "register") == 0 || strcmp(req->segs[1], "login") == 0))
	{
		char	   *addr = req_header(req, "x-client-addr");

		if (!is_post)
			method_not_allowed(r, "POST");
		/*
		 * Per client address first (cheap; SQL callers have none), then per
		 * email once the body is read.
		 */
		if (addr && addr[0])
			router_limit(r, "auth_ip", addr, NULL);
		no_params(req);
		req_require_json(req);
		if (JB_ROOT_IS_OBJECT(req->json) && !JB_ROOT_IS_SCALAR(req->json))
		{
			char	   *email = saas_get_str(req->json, "email");

			/* The limiter normalizes the key as the login lookup does. */
			if (email && pg_mbstrlen(email) <= 254)
				router_limit(r, "auth_email", email, NULL);
		}
		if (strcmp(req->segs[1], "register") == 0)
		{
			saas_op_register(req->json, &r->body);
			r->status = 201;
		}
		else
			saas_op_login(req->json, &r->body);
		return;
	}
	if (strcmp(s0, "auth") == 0 && req->nsegs == 2 &&
		(strcmp(req->segs[1], "logout") == 0 || strcmp(req->segs[1], "logout-all") == 0))
	{
		if (!is_post)
			method_not_allowed(r, "POST");
		req_authenticate_limited(req, r);
		no_params(req);
		if (strcmp(req->segs[1], "logout") == 0)
			saas_op_logout();
		else
			saas_op_logout_all();
		r->status = 204;
		return;
	}
	if (strcmp(s0, "organizations") == 0 && req->nsegs <= 2)
	{
		route_resource(req, r, &org_resource);
		return;
	}
	if (strcmp(s0, "users") == 0 && req->nsegs <= 2)
	{
		route_resource(req, r, &user_resource);
		return;
	}
	if (strcmp(s0, "webhooks") == 0 && req->nsegs == 2)
	{
		const char *svc = req->segs[1];

		if (saas_service_index(svc) < 0)
			ereport(ERROR,
					(errcode(ERRCODE_SAAS_NOT_FOUND),
					 errmsg("no such resource")));
		if (!is_post)
			method_not_allowed(r, "POST");
		no_params(req);
		req_require_json_type(req);
		webhook_limit_arg.r = r;
		webhook_limit_arg.service = svc;
		saas_op_ingest_webhook(svc, req->headers, req->body ? req->body : "", req->body_len, &r->body,
							   router_webhook_limit, &webhook_limit_arg);
		r->status = 202;
		return;
	}
	if (strcmp(s0, "integrations") == 0 && req->nsegs == 2 && strcmp(req->segs[1], "status") == 0)
	{
		if (!is_get)
			method_not_allowed(r, "GET");
		req_authenticate_limited(req, r);
		no_params(req);
		saas_op_integration_status(&r->body);
		return;
	}
	if (strcmp(s0, "jobs") == 0 && req->nsegs == 1)
	{
		if (!is_get)
			method_not_allowed(r, "GET");
		req_authenticate_limited(req, r);
		saas_op_list_jobs(&req->params, &r->body);
		return;
	}
	if (strcmp(s0, "jobs") == 0 && req->nsegs == 2 && strcmp(req->segs[1], "retry") == 0)
	{
		if (!is_post)
			method_not_allowed(r, "POST");
		req_authenticate_limited(req, r);
		no_params(req);
		req_require_json(req);
		saas_op_retry_jobs(req->json, &r->body);
		return;
	}
	if (strcmp(s0, "jobs") == 0 && req->nsegs == 3 && strcmp(req->segs[2], "retry") == 0)
	{
		pg_uuid_t	id;

		if (!is_post)
			method_not_allowed(r, "POST");
		req_authenticate_limited(req, r);
		no_params(req);
		id = route_id(req, "job");
		saas_op_retry_job(&id, &r->body);
		return;
	}
	if (strcmp(s0, "audit-logs") == 0 && req->nsegs == 1)
	{
		if (!is_get)
			method_not_allowed(r, "GET");
		req_authenticate_limited(req, r);
		saas_op_list_audit_logs(&req->params, &r->body);
		return;
	}
	/* The route groups need 0.2.0's objects (a newer library may serve an older database). */
	if (!saas_schema_at_least(SAAS_RELEASE_0_2))
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_NOT_FOUND),
				 errmsg("no such resource in pg_saas %s here; ALTER EXTENSION pg_saas UPDATE adds the routes of %s",
						saas_schema_version_text(), SAAS_RELEASE_0_2)));
	for (int i = 0; route_modules[i] != NULL; i++)
		if (route_modules[i] (req, r))
			return;
	ereport(ERROR,
			(errcode(ERRCODE_SAAS_NOT_FOUND),
			 errmsg("no such resource")));
}

/* A request for router_dispatch through saas_subxact_run. */
typedef struct RouterCall
{
	SaasRequest *req;
	SaasResponse *r;
} RouterCall;

static void
router_dispatch_call(void *arg)
{
	RouterCall *c = arg;

	router_dispatch(c->req, c->r);
}

/* router_run: dispatch in a subtransaction; errors become answers. */
static void
router_run(SaasRequest *req, SaasResponse *r)
{
	RouterCall	call = {req, r};
	ErrorData  *edata = saas_subxact_run(router_dispatch_call, &call, true);

	if (edata == NULL)
	{
		r->has_body = (r->status != 204);
		return;
	}
	/* A cancel or shutdown must still stop the session. */
	if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED && QueryCancelPending)
		ReThrowError(edata);
	saas_http_error_response(r, edata, req->request_id);
	FreeErrorData(edata);
}

/* guc_save: set a setting until the enclosing nest level ends. */
static void
guc_save(const char *name, const char *value)
{
	(void) set_config_option(name, value, PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
}

/*
 * SQL: saas.http(method text, path text, headers jsonb, body text)
 * RETURNS TABLE(status int, headers jsonb, body text)
 */
Datum
saas_http(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	SaasRequest req;
	SaasResponse r;
	char	   *target;
	char	   *rid;
	char	   *addr;
	int			nest;
	StringInfoData hdrs;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};

	InitMaterializedSRF(fcinfo, 0);

	memset(&req, 0, sizeof(req));
	memset(&r, 0, sizeof(r));
	initStringInfo(&r.headers);
	initStringInfo(&r.body);

	if (!PG_ARGISNULL(2))
		req.headers = PG_GETARG_JSONB_P(2);
	rid = req_header(&req, "x-request-id");
	if (req_sane_id(rid))
		strlcpy(req.request_id, rid, sizeof(req.request_id));
	else
	{
		pg_uuid_t	u;

		saas_uuid_v7(&u);
		saas_uuid_to_cstr(&u, req.request_id);
	}

	nest = saas_env_push();
	guc_save("saas.request_id", req.request_id);
	saas_citus_propagate("saas.request_id");	/* for the audit entries written on Citus nodes */
	addr = req_header(&req, "x-client-addr");
	guc_save("saas.client_addr", (addr && strlen(addr) < 64 && req_sane_id(addr)) ? addr : "");
	saas_context_clear();

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		saas_http_simple_error(&r, 400, "method and path are required", NULL, req.request_id);
	else
	{
		char	   *method = text_to_cstring(PG_GETARG_TEXT_PP(0));
		int			i;

		target = text_to_cstring(PG_GETARG_TEXT_PP(1));
		for (i = 0; method[i] && i < (int) sizeof(req.method) - 1; i++)
			req.method[i] = pg_ascii_toupper((unsigned char) method[i]);
		if (!PG_ARGISNULL(3))
		{
			text	   *b = PG_GETARG_TEXT_PP(3);

			req.body = VARDATA_ANY(b);
			req.body_len = VARSIZE_ANY_EXHDR(b);
		}
		if (strlen(method) >= sizeof(req.method))
			saas_http_simple_error(&r, 405, "method not allowed", NULL, req.request_id);
		else if (req.body_len > saas_max_body_bytes)
			saas_http_simple_error(&r, 413,
								   psprintf("request body exceeds %d bytes", saas_max_body_bytes),
								   NULL, req.request_id);
		else if (!req_parse_target(&req, target, &r))
		{
			if (r.status == 0)
				saas_http_simple_error(&r, 404, "no such resource", NULL, req.request_id);
		}
		else
			router_run(&req, &r);
	}
	/* An answer refused before its route counted a budget: the address's. */
	router_limit_refused(&req, &r);
	saas_env_pop(nest);

	/* Response headers: the router's, plus the ones every answer carries. */
	initStringInfo(&hdrs);
	appendStringInfoChar(&hdrs, '{');
	if (r.has_body)
		appendStringInfoString(&hdrs, "\"Content-Type\":\"application/json; charset=utf-8\",");
	appendStringInfoString(&hdrs, "\"Cache-Control\":\"no-store\",\"X-Request-Id\":");
	escape_json(&hdrs, req.request_id);
	if (r.headers.len > 0)
	{
		appendStringInfoChar(&hdrs, ',');
		appendBinaryStringInfo(&hdrs, r.headers.data, r.headers.len);
	}
	appendStringInfoChar(&hdrs, '}');

	values[0] = Int32GetDatum(r.status);
	values[1] = DirectFunctionCall1(jsonb_in, CStringGetDatum(hdrs.data));
	if (r.has_body)
		values[2] = PointerGetDatum(cstring_to_text_with_len(r.body.data, r.body.len));
	else
		nulls[2] = true;
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}
