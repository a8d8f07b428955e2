/*-------------------------------------------------------------------------
 *
 * routes_dashboard.c
 *	  The routes the admin dashboard adds (docs/dashboard.md):
 *	  GET /integrations/calls, GET /webhook-events, GET /audit-logs/verify.
 *
 * The core router answers /integrations/status, /webhooks/{service} and
 * /audit-logs itself; these paths are the ones it leaves to the modules.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "api/router.h"

/*
 * saas_routes_dashboard: true when the request is one of the dashboard's
 * routes (answered in r), false to let the next module try.
 */
bool
saas_routes_dashboard(SaasRequest *req, SaasResponse *r)
{
	const char *s0 = req->nsegs > 0 ? req->segs[0] : "";
	bool		is_get = strcmp(req->method, "GET") == 0;

	if (strcmp(s0, "integrations") == 0 && req->nsegs == 2 && strcmp(req->segs[1], "calls") == 0)
	{
		if (!is_get)
			method_not_allowed(r, "GET");
		req_authenticate_limited(req, r);
		saas_op_integration_calls(&req->params, &r->body);
		return true;
	}
	if (strcmp(s0, "webhook-events") == 0 && req->nsegs == 1)
	{
		if (!is_get)
			method_not_allowed(r, "GET");
		req_authenticate_limited(req, r);
		saas_op_list_webhook_events(&req->params, &r->body);
		return true;
	}
	if (strcmp(s0, "audit-logs") == 0 && req->nsegs == 2 && strcmp(req->segs[1], "verify") == 0)
	{
		if (!is_get)
			method_not_allowed(r, "GET");
		req_authenticate_limited(req, r);
		saas_op_audit_verify(&req->params, &r->body);
		return true;
	}
	return false;
}
