/*-------------------------------------------------------------------------
 *
 * routes_api_keys.c
 *	  The routes of API keys (/api-keys, /api-keys/{id}), and which routes a
 *	  request authenticated by an API key may reach at all.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/guc.h"

#include "pg_saas.h"
#include "common/common.h"
#include "auth/auth.h"
#include "api/api.h"
#include "api/router.h"

/*
 * saas_api_key_route_allowed: whether an API key may use this route. Keys
 * reach the resources their scopes are about (the scopes themselves are
 * checked by the operations and the database); every other route, including
 * those added later, answers 403 to a key until it says otherwise here.
 */
bool
saas_api_key_route_allowed(SaasRequest *req)
{
	const char *s0 = req->nsegs > 0 ? req->segs[0] : "";
	bool		is_get = strcmp(req->method, "GET") == 0;

	if (strcmp(s0, "users") == 0 && req->nsegs <= 2)
		return true;
	if (is_get && strcmp(s0, "organizations") == 0 && req->nsegs <= 2)
		return true;
	if (is_get && strcmp(s0, "audit-logs") == 0 && req->nsegs == 1)
		return true;
	if (is_get && strcmp(s0, "integrations") == 0 && req->nsegs == 2 &&
		strcmp(req->segs[1], "status") == 0)
		return true;
	if (is_get && strcmp(s0, "jobs") == 0 && req->nsegs == 1)
		return true;
	return false;
}

/*
 * routes_api_keys: POST and GET /api-keys, GET and DELETE /api-keys/{id}
 * (admins of the organization).
 */
bool
routes_api_keys(SaasRequest *req, SaasResponse *r)
{
	const char *m = req->method;
	bool		is_get = strcmp(m, "GET") == 0;

	if (req->nsegs < 1 || req->nsegs > 2 || strcmp(req->segs[0], "api-keys") != 0)
		return false;
	if (req->nsegs == 1)
	{
		if (!is_get && strcmp(m, "POST") != 0)
			method_not_allowed(r, "GET, POST");
		req_authenticate_limited(req, r);
		if (is_get)
		{
			saas_api_key_route_list(&req->params, &r->body);
			return true;
		}
		no_params(req);
		req_require_json(req);
		saas_api_key_route_create(req->json, &r->body);
		r->status = 201;
		return true;
	}
	else
	{
		pg_uuid_t	id;

		if (!is_get && strcmp(m, "DELETE") != 0)
			method_not_allowed(r, "GET, DELETE");
		req_authenticate_limited(req, r);
		no_params(req);
		id = route_id(req, "API key");
		if (is_get)
			saas_api_key_route_get(&id, &r->body);
		else
		{
			saas_api_key_route_revoke(&id);
			r->status = 204;
		}
		return true;
	}
}
