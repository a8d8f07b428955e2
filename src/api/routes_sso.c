/*-------------------------------------------------------------------------
 *
 * routes_sso.c
 *	  The single sign-on routes (docs/api.md, "Single sign-on"):
 *
 *	  GET  /auth/sso/{org-slug}/start[?login_hint]  302 to the provider
 *	       (?format=json: 200 {authorization_url, expires_in}, same cookie)
 *	  GET  /auth/sso/callback?code&state            the session, as login's
 *	  GET, PUT, DELETE /sso/connection              the organization's
 *	                                                connection (admin)
 *
 * The sign-in routes are anonymous and limited per client address like
 * /auth/login; the connection routes per user.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "api/api.h"
#include "api/router.h"

static const char *const start_params[] = {"login_hint", "format", NULL};

/* sso_limit_addr: the per-address budget of the /auth routes (SQL callers have none). */
static void
sso_limit_addr(SaasRequest *req, SaasResponse *r)
{
	char	   *addr = req_header(req, "x-client-addr");

	if (addr && addr[0])
		router_limit(r, "auth_ip", addr, NULL);
}

/*
 * sso_cookie: the value of the sign-in cookie in the request's Cookie
 * header ("a=1; __Host-saas_sso=...; b=2"), or NULL. Only base64url values count.
 */
static char *
sso_cookie(SaasRequest *req)
{
	char	   *h = req_header(req, "cookie");
	char	   *save = NULL;
	const size_t nlen = strlen(SAAS_SSO_COOKIE);

	if (h == NULL)
		return NULL;
	for (char *c = strtok_r(h, ";", &save); c; c = strtok_r(NULL, ";", &save))
	{
		while (*c == ' ')
			c++;
		if (strncmp(c, SAAS_SSO_COOKIE, nlen) == 0 && c[nlen] == '=')
		{
			char	   *v = c + nlen + 1;

			if (strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == strlen(v))
				return v;
			return NULL;
		}
	}
	return NULL;
}

/*
 * The sign-in cookie: HttpOnly (no script reads it), Secure (browsers keep
 * it over https, and on loopback addresses), SameSite=Lax (sent on the
 * provider's top-level redirect back), for the 10 minutes a state lives.
 */
#define SSO_COOKIE_ATTRS "; Path=/; HttpOnly; Secure; SameSite=Lax"

bool
saas_routes_sso(SaasRequest *req, SaasResponse *r)
{
	bool		is_get = strcmp(req->method, "GET") == 0;

	if (req->nsegs >= 3 && strcmp(req->segs[0], "auth") == 0 && strcmp(req->segs[1], "sso") == 0)
	{
		if (req->nsegs == 4 && strcmp(req->segs[3], "start") == 0)
		{
			char	   *location = NULL;
			char	   *binding = NULL;
			const char *format;
			bool		as_json = false;

			if (!is_get)
				method_not_allowed(r, "GET");
			sso_limit_addr(req, r);
			saas_params_check(&req->params, start_params);
			format = saas_param(&req->params, "format");
			if (format != NULL)
			{
				if (strcmp(format, "json") != 0)
					saas_raise_field_error("format", "must be json (or absent for the redirect)");
				as_json = true;
			}
			saas_op_sso_start(req->segs[2], saas_param(&req->params, "login_hint"),
							  &r->body, &location, &binding);
			/*
			 * ?format=json: a page's fetch gets 200 and the same body and
			 * cookie, so that it can show an error rather than navigate to
			 * it (the dashboard); otherwise the browser is redirected.
			 */
			if (!as_json)
				saas_response_header(r, "Location", location);
			saas_response_header(r, "Set-Cookie",
								 psprintf(SAAS_SSO_COOKIE "=%s; Max-Age=600" SSO_COOKIE_ATTRS, binding));
			r->status = as_json ? 200 : 302;
			return true;
		}
		if (req->nsegs == 3 && strcmp(req->segs[2], "callback") == 0)
		{
			if (!is_get)
				method_not_allowed(r, "GET");
			sso_limit_addr(req, r);
			saas_op_sso_callback(&req->params, sso_cookie(req), &r->body);
			/* Used up: the browser forgets it. */
			saas_response_header(r, "Set-Cookie", SAAS_SSO_COOKIE "=; Max-Age=0" SSO_COOKIE_ATTRS);
			return true;
		}
		return false;
	}
	if (req->nsegs == 2 && strcmp(req->segs[0], "sso") == 0 &&
		strcmp(req->segs[1], "connection") == 0)
	{
		const char *m = req->method;

		if (!is_get && strcmp(m, "PUT") != 0 && strcmp(m, "DELETE") != 0)
			method_not_allowed(r, "GET, PUT, DELETE");
		req_authenticate_limited(req, r);
		no_params(req);
		if (is_get)
			saas_op_get_sso_connection(&r->body);
		else if (strcmp(m, "PUT") == 0)
		{
			bool		created;

			req_require_json(req);
			saas_op_put_sso_connection(req->json, &r->body, &created);
			r->status = created ? 201 : 200;
		}
		else
		{
			saas_op_delete_sso_connection();
			r->status = 204;
		}
		return true;
	}
	return false;
}
