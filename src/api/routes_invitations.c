/*-------------------------------------------------------------------------
 *
 * routes_invitations.c
 *	  The routes of invitations and password reset (router.h):
 *	  GET/POST /invitations, DELETE /invitations/{id},
 *	  POST /auth/accept-invite, POST /auth/password-reset,
 *	  POST /auth/password-reset/confirm.
 *
 * Limits before any work: the client address (auth routes), then what the
 * body names: the email asking for a reset, the token's routing part (its
 * organization and row: a token is tried from many addresses in vain), the
 * organization sending invitations. Scopes and rates: saas.rate_limits.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "mb/pg_wchar.h"
#include "utils/jsonb.h"

#include "pg_saas.h"
#include "common/common.h"
#include "auth/auth.h"
#include "ratelimit/ratelimit.h"
#include "api/api.h"
#include "api/router.h"

/* The prefix and the ids of a token: 4 + 43 characters. */
#define TOKEN_ROUTING_CHARS 47

/* ri_addr_limit: the per-address limit of scope, when the relay gave one. */
static void
ri_addr_limit(SaasRequest *req, SaasResponse *r, const char *scope)
{
	char	   *addr = req_header(req, "x-client-addr");

	if (addr && addr[0])
		router_limit(r, scope, addr, NULL);
}

/* ri_token_limit: the per-token limit, keyed by the token's routing part. */
static void
ri_token_limit(SaasRequest *req, SaasResponse *r)
{
	char	   *token;

	if (!JB_ROOT_IS_OBJECT(req->json) || JB_ROOT_IS_SCALAR(req->json))
		return;
	token = saas_get_str(req->json, "token");
	if (token && strlen(token) >= TOKEN_ROUTING_CHARS && strlen(token) <= 200)
		router_limit(r, "token_id", pnstrdup(token, TOKEN_ROUTING_CHARS), NULL);
}

/* ri_auth: the three token routes under /auth. */
static bool
ri_auth(SaasRequest *req, SaasResponse *r)
{
	bool		accept = req->nsegs == 2 && strcmp(req->segs[1], "accept-invite") == 0;
	bool		reset = req->nsegs >= 2 && req->nsegs <= 3 &&
		strcmp(req->segs[1], "password-reset") == 0 &&
		(req->nsegs == 2 || strcmp(req->segs[2], "confirm") == 0);

	if (!accept && !reset)
		return false;
	if (strcmp(req->method, "POST") != 0)
		method_not_allowed(r, "POST");
	if (reset && req->nsegs == 2)
	{
		char	   *email;

		ri_addr_limit(req, r, "reset_ip");
		no_params(req);
		req_require_json(req);
		if (JB_ROOT_IS_OBJECT(req->json) && !JB_ROOT_IS_SCALAR(req->json) &&
			(email = saas_get_str(req->json, "email")) != NULL && pg_mbstrlen(email) <= 254)
			router_limit(r, "reset_email", saas_email_normalize(email), NULL);
		saas_op_request_password_reset(req->json, &r->body);
		r->status = 202;
		return true;
	}
	ri_addr_limit(req, r, "token_ip");
	no_params(req);
	req_require_json(req);
	ri_token_limit(req, r);
	if (accept)
		saas_op_accept_invitation(req->json, &r->body);
	else
	{
		saas_op_confirm_password_reset(req->json);
		r->status = 204;
	}
	return true;
}

/* ri_invitations: /invitations and /invitations/{id}. */
static bool
ri_invitations(SaasRequest *req, SaasResponse *r)
{
	const SaasContext *ctx;
	char		org[37];

	if (req->nsegs == 1)
	{
		bool		is_get = strcmp(req->method, "GET") == 0;

		if (!is_get && strcmp(req->method, "POST") != 0)
			method_not_allowed(r, "GET, POST");
		req_authenticate_limited(req, r);
		if (is_get)
		{
			saas_op_list_invitations(&req->params, &r->body);
			return true;
		}
		no_params(req);
		req_require_json(req);
		ctx = saas_context_require();
		saas_uuid_to_cstr(&ctx->org_id, org);
		router_limit(r, "invite_org", org, NULL);
		saas_op_create_invitation(req->json, &r->body);
		r->status = 201;
		return true;
	}
	if (req->nsegs == 2)
	{
		pg_uuid_t	id;

		if (strcmp(req->method, "DELETE") != 0)
			method_not_allowed(r, "DELETE");
		req_authenticate_limited(req, r);
		no_params(req);
		id = route_id(req, "invitation");
		saas_op_revoke_invitation(&id);
		r->status = 204;
		return true;
	}
	return false;
}

/* saas_routes_invitations: the route group (http_router.c, route_modules[]). */
bool
saas_routes_invitations(SaasRequest *req, SaasResponse *r)
{
	if (req->nsegs >= 1 && strcmp(req->segs[0], "auth") == 0)
		return ri_auth(req, r);
	if (req->nsegs >= 1 && strcmp(req->segs[0], "invitations") == 0)
		return ri_invitations(req, r);
	return false;
}
