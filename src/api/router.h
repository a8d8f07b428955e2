/*-------------------------------------------------------------------------
 *
 * router.h
 *	  What a route of saas.http needs: the parsed request and the checks
 *	  every route makes (method, parameters, body, authentication, limits).
 *
 * Routes live in files by concern: http_router.c has the core resources
 * and the dispatch; a feature adds a file routes_<feature>.c with a
 * function of type SaasRouteFn and one line in http_router.c's
 * route_modules[]. A route function answers false when the path is not
 * its own, so the next one is tried; the last answer is 404.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAAS_ROUTER_H
#define SAAS_ROUTER_H

#include "api/api.h"

#define MAX_SEGMENTS 6
#define MAX_PATH_LEN 2048

/* A parsed request. */
typedef struct SaasRequest
{
	char		method[8];		/* upper case */
	char	   *segs[MAX_SEGMENTS]; /* decoded path segments */
	int			nsegs;
	SaasParams	params;			/* decoded query parameters */
	Jsonb	   *headers;		/* lower- or mixed-case names; see req_header */
	const char *body;
	int			body_len;
	Jsonb	   *json;			/* set by req_require_json */
	char		request_id[129];
} SaasRequest;

/* A group of routes: true when it answered the request (r is filled). */
typedef bool (*SaasRouteFn) (SaasRequest *req, SaasResponse *r);

/* http_request.c: parsing and the checks routes make */
extern char *req_header(SaasRequest *req, const char *name);
extern bool req_sane_id(const char *s);
extern bool req_parse_target(SaasRequest *req, const char *target, SaasResponse *r);
extern int64 req_if_match(SaasRequest *req);
extern void req_require_json_type(SaasRequest *req);
extern void req_require_json(SaasRequest *req);
extern void req_authenticate(SaasRequest *req);
extern void req_authenticate_limited(SaasRequest *req, SaasResponse *r);
extern void method_not_allowed(SaasResponse *r, const char *allow) pg_attribute_noreturn();
extern void no_params(SaasRequest *req);
extern void set_etag(SaasResponse *r, int64 version);
extern pg_uuid_t route_id(SaasRequest *req, const char *entity);

/* route modules (http_router.c's route_modules[]) */
extern bool saas_routes_dashboard(SaasRequest *req, SaasResponse *r);

/* router_limits.c: rate limits by scope, with the RateLimit-* headers */
extern void router_limit(SaasResponse *r, const char *scope, const char *key, const char *tier);
extern const char *router_org_tier(const pg_uuid_t *org);
extern void router_limit_refused(SaasRequest *req, SaasResponse *r);

/* The route groups (one line each; http_router.c lists them). */
extern bool saas_routes_invitations(SaasRequest *req, SaasResponse *r);
/* routes_sessions.c: POST /auth/refresh, GET /auth/me */
extern bool saas_routes_sessions(SaasRequest *req, SaasResponse *r);
/* routes_<feature>.c: the route groups of route_modules[] */
extern bool saas_routes_sso(SaasRequest *req, SaasResponse *r);
/* routes_api_keys.c */
extern bool routes_api_keys(SaasRequest *req, SaasResponse *r);
extern bool saas_api_key_route_allowed(SaasRequest *req);

#endif							/* SAAS_ROUTER_H */
