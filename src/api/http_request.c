/*-------------------------------------------------------------------------
 *
 * http_request.c
 *	  The request side of saas.http: the target parsed into segments and
 *	  parameters, headers, the JSON body, If-Match, and the checks every
 *	  route makes before its operation runs (router.h).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "mb/pg_wchar.h"
#include "utils/guc.h"
#include "utils/jsonb.h"

#include "pg_saas.h"
#include "common/common.h"
#include "auth/auth.h"
#include "api/router.h"

/* req_header: a request header by case-insensitive name, or NULL. */
char *
req_header(SaasRequest *req, const char *name)
{
	return saas_header_get(req->headers, name);
}

/* req_sane_id: a client's request id is kept only if short and plain. */
bool
req_sane_id(const char *s)
{
	int			n = 0;

	if (s == NULL)
		return false;
	for (; s[n]; n++)
		if (!(isalnum((unsigned char) s[n]) || s[n] == '-' || s[n] == '_' ||
			  s[n] == '.' || s[n] == ':'))
			return false;
	return n >= 1 && n <= 128;
}

/* url_decode: percent-decoding (and '+' as space in queries); NULL if invalid. */
static char *
url_decode(const char *s, int len, bool plus_space)
{
	char	   *out = palloc(len + 1);
	int			i,
				o = 0;

	for (i = 0; i < len; i++)
	{
		if (s[i] == '%')
		{
			int			h,
						l;

			if (i + 2 >= len)
				return NULL;
			h = saas_hex_value(s[i + 1]);
			l = saas_hex_value(s[i + 2]);
			if (h < 0 || l < 0 || (h == 0 && l == 0))
				return NULL;
			out[o++] = (char) (h * 16 + l);
			i += 2;
		}
		else if (s[i] == '+' && plus_space)
			out[o++] = ' ';
		else
			out[o++] = s[i];
	}
	out[o] = '\0';
	if (!pg_verifymbstr(out, o, true))
		return NULL;
	return out;
}

/*
 * req_parse_target: split "/a/b?x=1&y=2" into segments and parameters.
 * False for a target no route can match (the caller answers 404 or 400).
 */
bool
req_parse_target(SaasRequest *req, const char *target, SaasResponse *r)
{
	const char *q = strchr(target, '?');
	int			plen = q ? q - target : (int) strlen(target);
	const char *p = target;

	if (plen == 0 || target[0] != '/' || plen > MAX_PATH_LEN)
		return false;
	/* segments */
	while (p < target + plen)
	{
		const char *start;
		const char *end;

		while (p < target + plen && *p == '/')
			p++;
		if (p >= target + plen)
			break;
		start = p;
		while (p < target + plen && *p != '/')
			p++;
		end = p;
		if (req->nsegs >= MAX_SEGMENTS)
			return false;
		req->segs[req->nsegs] = url_decode(start, end - start, false);
		if (req->segs[req->nsegs] == NULL)
			return false;
		req->nsegs++;
	}
	/* query parameters */
	if (q)
	{
		const char *s = q + 1;

		while (*s)
		{
			const char *amp = strchr(s, '&');
			int			len = amp ? amp - s : (int) strlen(s);
			const char *eq = memchr(s, '=', len);
			char	   *k,
					   *v;

			if (len > 0)
			{
				if (req->params.n >= SAAS_MAX_PARAMS)
				{
					saas_http_simple_error(r, 400, "too many query parameters", NULL, req->request_id);
					return false;
				}
				k = url_decode(s, eq ? eq - s : len, true);
				v = eq ? url_decode(eq + 1, len - (eq - s) - 1, true) : pstrdup("");
				if (k == NULL || v == NULL || k[0] == '\0')
				{
					saas_http_simple_error(r, 400, "query string is not valid", NULL, req->request_id);
					return false;
				}
				req->params.keys[req->params.n] = k;
				req->params.values[req->params.n] = v;
				req->params.n++;
			}
			if (!amp)
				break;
			s = amp + 1;
		}
	}
	return true;
}

/* req_if_match: the version in If-Match ("3", W/"3", 3), -1 if absent or "*". */
int64
req_if_match(SaasRequest *req)
{
	char	   *h = req_header(req, "if-match");
	char	   *s,
			   *end;
	int64		v;

	if (h == NULL)
		return -1;
	s = h;
	while (*s == ' ')
		s++;
	if (strcmp(s, "*") == 0)
		return -1;
	if (strncmp(s, "W/", 2) == 0)
		s += 2;
	if (*s == '"')
		s++;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (end == s || errno != 0 || v < 0 || (*end != '\0' && strcmp(end, "\"") != 0))
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_VALIDATION),
				 errmsg("If-Match must be an ETag this API issued, like \"3\"")));
	return v;
}

/* req_require_json_type: 415 unless Content-Type is application/json (parameters allowed). */
void
req_require_json_type(SaasRequest *req)
{
	char	   *ct = req_header(req, "content-type");

	if (ct == NULL || pg_strncasecmp(ct, "application/json", 16) != 0 ||
		(ct[16] != '\0' && ct[16] != ';' && ct[16] != ' '))
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_UNSUPPORTED_MEDIA),
				 errmsg("request body must be JSON (Content-Type: application/json)")));
}

/* req_require_json: the request body as JSON; 400/415 as appropriate. */
void
req_require_json(SaasRequest *req)
{
	if (req->body == NULL || req->body_len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_VALIDATION),
				 errmsg("request body is required")));
	req_require_json_type(req);
	if (!saas_json_valid_strict(req->body, req->body_len, false))
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_VALIDATION),
				 errmsg("request body is not valid JSON"),
				 errdetail("The body must be UTF-8 JSON, at most 64 levels deep, without duplicate keys.")));
	req->json = saas_jsonb_from_text(req->body, req->body_len);
}

/*
 * req_authenticate: Authorization: Bearer <token> becomes the context; a
 * bearer starting "sk_" is an API key (api_keys.c).
 */
void
req_authenticate(SaasRequest *req)
{
	char	   *h = req_header(req, "authorization");

	if (h == NULL || pg_strncasecmp(h, "Bearer ", 7) != 0 || h[7] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_UNAUTHORIZED),
				 errmsg("authentication required: send Authorization: Bearer <token>")));
	/* API keys exist from 0.2.0 on; before, "sk_..." is just a token that fails. */
	if (saas_api_key_looks(h + 7) && saas_schema_at_least(SAAS_RELEASE_0_2))
		saas_api_key_adopt(h + 7, GUC_ACTION_SAVE);
	else
		(void) saas_context_adopt(h + 7, GUC_ACTION_SAVE, false);
}

/*
 * req_authenticate_limited: authenticate, then the per-user limit of the
 * org's tier (an API key's: per key, and only on the routes keys may use).
 */
void
req_authenticate_limited(SaasRequest *req, SaasResponse *r)
{
	const SaasContext *ctx;
	char		uid[37];

	req_authenticate(req);
	ctx = saas_context_require();
	saas_uuid_to_cstr(&ctx->user_id, uid);
	if (ctx->api_key)
	{
		/* A key: its own limit, and only the routes keys may use. */
		router_limit(r, "api_key", uid, router_org_tier(&ctx->org_id));
		if (!saas_api_key_route_allowed(req))
			ereport(ERROR,
					(errcode(ERRCODE_SAAS_FORBIDDEN),
					 errmsg("an API key cannot use this route")));
		return;
	}
	router_limit(r, "user", uid, router_org_tier(&ctx->org_id));
}

/* method_not_allowed: 405 with the Allow header naming what the route takes. */
void
method_not_allowed(SaasResponse *r, const char *allow)
{
	saas_response_header(r, "Allow", allow);
	ereport(ERROR,
			(errcode(ERRCODE_SAAS_METHOD_NOT_ALLOWED),
			 errmsg("method not allowed; allowed: %s", allow)));
}

/*
 * no_params: a route without query parameters refuses any (400 on the first).
 */
void
no_params(SaasRequest *req)
{
	if (req->params.n > 0)
		saas_raise_field_error(req->params.keys[0], "is not a known parameter");
}

/* set_etag: the row version as a strong ETag, for If-Match on updates. */
void
set_etag(SaasResponse *r, int64 version)
{
	saas_response_header(r, "ETag", psprintf("\"" INT64_FORMAT "\"", version));
}

/* route_id: the :id segment; anything but a UUID cannot name a row (404). */
pg_uuid_t
route_id(SaasRequest *req, const char *entity)
{
	pg_uuid_t	id;

	if (!saas_uuid_from_cstr(req->segs[1], &id))
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_NOT_FOUND),
				 errmsg("%s not found", entity)));
	return id;
}
