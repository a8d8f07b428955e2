/*-------------------------------------------------------------------------
 *
 * routes_sessions.c
 *	  The session routes: POST /auth/refresh and GET /auth/me.
 *
 * /auth/refresh takes no bearer token (the refresh token is the
 * credential); it is limited in its own scope, auth_refresh, per client
 * address and per token. A reused refresh token is answered 401 without an
 * error being raised, so that the family's revocation commits.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/builtins.h"

#include "pg_saas.h"
#include "common/common.h"
#include "auth/auth.h"
#include "api/api.h"
#include "api/router.h"

/* route_refresh: POST /auth/refresh {refresh_token}. */
static void
route_refresh(SaasRequest *req, SaasResponse *r)
{
	char	   *addr = req_header(req, "x-client-addr");
	char	   *tok;
	SaasRefreshToken t;

	if (strcmp(req->method, "POST") != 0)
		method_not_allowed(r, "POST");
	if (addr && addr[0])
		router_limit(r, "auth_refresh", psprintf("addr:%s", addr), NULL);
	no_params(req);
	req_require_json(req);
	if (JB_ROOT_IS_OBJECT(req->json) && !JB_ROOT_IS_SCALAR(req->json) &&
		(tok = saas_get_str(req->json, "refresh_token")) != NULL &&
		strlen(tok) <= 256 && saas_refresh_decode(tok, &t))
	{
		char		org[37],
					id[37];

		saas_uuid_to_cstr(&t.org_id, org);
		saas_uuid_to_cstr(&t.id, id);
		explicit_bzero(t.secret, sizeof(t.secret));
		router_limit(r, "auth_refresh", psprintf("token:%s:%s", org, id), NULL);
	}
	if (!saas_op_refresh(req->json, &r->body))
		saas_http_simple_error(r, 401, saas_refresh_reuse_message(), NULL, req->request_id);
}

/* route_me: GET /auth/me with any valid access token. */
static void
route_me(SaasRequest *req, SaasResponse *r)
{
	if (strcmp(req->method, "GET") != 0)
		method_not_allowed(r, "GET");
	req_authenticate_limited(req, r);
	no_params(req);
	saas_op_me(&r->body);
}

/* saas_routes_sessions: the route module (http_router.c's route_modules[]). */
bool
saas_routes_sessions(SaasRequest *req, SaasResponse *r)
{
	if (req->nsegs != 2 || strcmp(req->segs[0], "auth") != 0)
		return false;
	if (strcmp(req->segs[1], "refresh") == 0)
		route_refresh(req, r);
	else if (strcmp(req->segs[1], "me") == 0)
		route_me(req, r);
	else
		return false;
	return true;
}
