/*-------------------------------------------------------------------------
 *
 * negotiate.c
 *	  What HTTP clients expect of every answer beyond its status and body.
 *
 * Browsers, SDK generators and HTTP libraries rely on a few conventions
 * that the router need not know about, so the relay keeps them in one place
 * for every answer, its own and saas.http's alike:
 *	- CORS: an allow-list of origins (--cors-origins); a preflight OPTIONS
 *	  is answered here, and allowed origins may read ETag, X-Request-Id and
 *	  the RateLimit-* headers;
 *	- gzip for bodies of SAAS_GZIP_MIN bytes or more when Accept-Encoding
 *	  allows it (zlib);
 *	- If-None-Match on GET: 304 when the answer's ETag matches;
 *	- WWW-Authenticate: Bearer on a 401, Retry-After on a 503, and HEAD in
 *	  an Allow that lists GET (the relay serves HEAD wherever GET works).
 *
 *-------------------------------------------------------------------------
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <zlib.h>

#include "negotiate.h"

/* Methods and request headers a cross-origin page may use (docs/relay.md). */
#define CORS_ALLOW_METHODS	"GET, HEAD, POST, PUT, PATCH, DELETE"
#define CORS_ALLOW_HEADERS	"Authorization, Content-Type, If-Match, If-None-Match, X-Request-Id"
#define CORS_EXPOSE_HEADERS	"ETag, Location, Retry-After, X-Request-Id, " \
	"RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset"
#define CORS_MAX_AGE		"600"

/*
 * cors_origin_valid
 *		An origin as browsers send it: http or https, a host of letters,
 *		digits, dots and dashes (or a bracketed IPv6 address), an optional
 *		port, and nothing after.
 */
static bool
cors_origin_valid(const char *o)
{
	const char *p;

	if (strncasecmp(o, "https://", 8) == 0)
		p = o + 8;
	else if (strncasecmp(o, "http://", 7) == 0)
		p = o + 7;
	else
		return false;
	if (*p == '[')
	{
		for (p++; isxdigit((unsigned char) *p) || *p == ':' || *p == '.'; p++)
			;
		if (*p++ != ']')
			return false;
	}
	else
	{
		const char *host = p;

		while (isalnum((unsigned char) *p) || *p == '.' || *p == '-')
			p++;
		if (p == host)
			return false;
	}
	if (*p == ':')
	{
		const char *port = ++p;

		while (isdigit((unsigned char) *p))
			p++;
		if (p == port || p - port > 5 || atoi(port) > 65535)
			return false;
	}
	return *p == '\0';
}

/*
 * saas_cors_parse
 *		Fill cfg's allow-list from a comma-separated list of origins, or "*"
 *		for any.  An empty list allows none.  False, with the offending
 *		entry in *bad (static until the next call), for anything else.
 */
bool
saas_cors_parse(const char *list, SaasHttpConfig *cfg, const char **bad)
{
	static char badbuf[256];
	char	   *copy = strdup(list);
	char	   *save = NULL;
	char	   *tok;

	cfg->cors_origins = calloc(strlen(list) / 2 + 2, sizeof(char *));
	cfg->n_cors_origins = 0;
	cfg->cors_any = false;
	if (copy == NULL || cfg->cors_origins == NULL)
	{
		free(copy);
		*bad = "out of memory";
		return false;
	}
	for (tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save))
	{
		char	   *end;

		while (*tok == ' ' || *tok == '\t')
			tok++;
		end = tok + strlen(tok);
		while (end > tok && (end[-1] == ' ' || end[-1] == '\t'))
			*--end = '\0';
		if (*tok == '\0')
			continue;
		if (strcmp(tok, "*") == 0)
			cfg->cors_any = true;
		else if (cors_origin_valid(tok))
			cfg->cors_origins[cfg->n_cors_origins++] = strdup(tok);
		else
		{
			snprintf(badbuf, sizeof(badbuf), "%s", tok);
			*bad = badbuf;
			free(copy);
			return false;
		}
	}
	free(copy);
	return true;
}

/*
 * saas_cors_allowed
 *		Whether the request's Origin is on the allow-list (false without one).
 */
bool
saas_cors_allowed(const SaasHttpConfig *cfg, struct MHD_Connection *conn)
{
	const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");

	if (origin == NULL || !cors_origin_valid(origin))
		return false;
	if (cfg->cors_any)
		return true;
	for (int i = 0; i < cfg->n_cors_origins; i++)
		if (strcasecmp(cfg->cors_origins[i], origin) == 0)
			return true;
	return false;
}

/*
 * saas_cors_is_preflight
 *		A browser's CORS preflight: OPTIONS with Origin and
 *		Access-Control-Request-Method.  Other OPTIONS go to the router.
 */
bool
saas_cors_is_preflight(struct MHD_Connection *conn, const char *method)
{
	return strcmp(method, "OPTIONS") == 0 &&
		MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin") != NULL &&
		MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
									"Access-Control-Request-Method") != NULL;
}

/*
 * saas_cors_preflight
 *		The 204 to a preflight from an allowed origin (the caller checked);
 *		Access-Control-Allow-Origin is added with every answer's, in
 *		saas_negotiate_finish.
 */
struct MHD_Response *
saas_cors_preflight(const char *request_id)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(0, (void *) "",
																MHD_RESPMEM_PERSISTENT);

	if (resp == NULL)
		return NULL;
	MHD_add_response_header(resp, "Access-Control-Allow-Methods", CORS_ALLOW_METHODS);
	MHD_add_response_header(resp, "Access-Control-Allow-Headers", CORS_ALLOW_HEADERS);
	MHD_add_response_header(resp, "Access-Control-Max-Age", CORS_MAX_AGE);
	MHD_add_response_header(resp, "X-Request-Id", request_id);
	return resp;
}

/*
 * accepts_gzip
 *		Whether Accept-Encoding allows gzip: "gzip" (or "x-gzip") with a q
 *		above 0, or "*" above 0 when gzip is not named (RFC 9110 12.5.3).
 */
static bool
accepts_gzip(const char *ae)
{
	double		gz = -1,
				star = -1;
	const char *p = ae;

	while (p != NULL && *p != '\0')
	{
		const char *end = strchr(p, ',');
		size_t		n = end ? (size_t) (end - p) : strlen(p);
		char		item[64];
		char	   *q;
		char	   *name = item;
		double		qv = 1.0;

		if (n >= sizeof(item))
			n = sizeof(item) - 1;
		memcpy(item, p, n);
		item[n] = '\0';
		p = end ? end + 1 : NULL;
		if ((q = strchr(item, ';')) != NULL)
		{
			char	   *qs = strstr(q, "q=");

			*q = '\0';
			if (qs != NULL)
				qv = strtod(qs + 2, NULL);
		}
		while (*name == ' ' || *name == '\t')
			name++;
		for (q = name + strlen(name); q > name && (q[-1] == ' ' || q[-1] == '\t');)
			*--q = '\0';
		if (strcasecmp(name, "gzip") == 0 || strcasecmp(name, "x-gzip") == 0)
			gz = qv;
		else if (strcmp(name, "*") == 0)
			star = qv;
	}
	return gz >= 0 ? gz > 0 : star > 0;
}

/*
 * gzip_compress
 *		body as a gzip member in a malloc'd buffer; NULL on failure.
 */
static char *
gzip_compress(const char *body, size_t len, size_t *out_len)
{
	z_stream	zs;
	char	   *out;
	uLong		cap;

	memset(&zs, 0, sizeof(zs));
	/* 15 + 16: the zlib window with a gzip wrapper instead of zlib's */
	if (deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return NULL;
	cap = deflateBound(&zs, (uLong) len) + 32;
	out = malloc(cap);
	if (out == NULL)
	{
		deflateEnd(&zs);
		return NULL;
	}
	zs.next_in = (Bytef *) body;
	zs.avail_in = (uInt) len;
	zs.next_out = (Bytef *) out;
	zs.avail_out = (uInt) cap;
	if (deflate(&zs, Z_FINISH) != Z_STREAM_END)
	{
		deflateEnd(&zs);
		free(out);
		return NULL;
	}
	*out_len = zs.total_out;
	deflateEnd(&zs);
	return out;
}

/*
 * saas_body_response
 *		A response carrying body (copied), gzipped when the client accepts it
 *		and the body is large enough to gain; *sent_len is what goes on the
 *		wire.  Large bodies say Vary: Accept-Encoding either way, so that a
 *		cache keeps the two apart.
 */
struct MHD_Response *
saas_body_response(struct MHD_Connection *conn, const char *body, size_t len,
				   size_t *sent_len)
{
	struct MHD_Response *resp = NULL;
	const char *ae = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
												 MHD_HTTP_HEADER_ACCEPT_ENCODING);

	*sent_len = len;
	if (len >= SAAS_GZIP_MIN && ae != NULL && accepts_gzip(ae))
	{
		size_t		zlen = 0;
		char	   *z = gzip_compress(body, len, &zlen);

		if (z != NULL && zlen < len)
		{
			resp = MHD_create_response_from_buffer(zlen, z, MHD_RESPMEM_MUST_FREE);
			if (resp != NULL)
			{
				MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
				*sent_len = zlen;
				z = NULL;		/* the response owns it */
			}
		}
		free(z);
	}
	if (resp == NULL)
		resp = MHD_create_response_from_buffer(len, (void *) body, MHD_RESPMEM_MUST_COPY);
	if (resp != NULL && len >= SAAS_GZIP_MIN)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY, "Accept-Encoding");
	return resp;
}

/*
 * saas_etag_matches
 *		If-None-Match against an answer's ETag, by weak comparison (RFC 9110
 *		13.1.2): "*" or any listed tag whose opaque part equals the ETag's.
 */
bool
saas_etag_matches(const char *inm, const char *etag)
{
	const char *want;
	size_t		want_len;
	const char *p = inm;

	if (strncmp(etag, "W/", 2) == 0)
		etag += 2;
	if (etag[0] != '"' || strchr(etag + 1, '"') == NULL)
		return false;
	want = etag + 1;
	want_len = (size_t) (strchr(want, '"') - want);
	while (*p != '\0')
	{
		const char *close;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '*')
			return true;
		if (strncmp(p, "W/", 2) == 0)
			p += 2;
		if (*p != '"' || (close = strchr(p + 1, '"')) == NULL)
			return false;		/* not a list of entity tags: no match */
		if ((size_t) (close - p - 1) == want_len && strncmp(p + 1, want, want_len) == 0)
			return true;
		p = close + 1;
	}
	return false;
}

/*
 * allow_with_head
 *		Allow lists GET but not HEAD: the relay answers HEAD wherever it
 *		answers GET (as GET without the body), so say so.
 */
static void
allow_with_head(struct MHD_Response *resp)
{
	const char *allow = MHD_get_response_header(resp, MHD_HTTP_HEADER_ALLOW);
	bool		get = false,
				head = false;
	const char *p;
	char	   *fixed;

	if (allow == NULL)
		return;
	for (p = allow; *p != '\0';)
	{
		size_t		n;

		while (*p == ' ' || *p == ',')
			p++;
		n = strcspn(p, ", ");
		if (n == 3 && strncmp(p, "GET", 3) == 0)
			get = true;
		if (n == 4 && strncmp(p, "HEAD", 4) == 0)
			head = true;
		p += n;
	}
	if (!get || head || (fixed = malloc(strlen(allow) + 7)) == NULL)
		return;
	strcpy(fixed, allow);
	strcat(fixed, ", HEAD");
	MHD_del_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, fixed);
	free(fixed);
}

/*
 * saas_negotiate_finish
 *		The headers every answer gets from its status and the request:
 *		CORS for an allowed origin, and those that statuses imply when
 *		whoever made the answer left them out.
 */
void
saas_negotiate_finish(const SaasHttpConfig *cfg, struct MHD_Connection *conn,
					  struct MHD_Response *resp, int status)
{
	if (saas_cors_allowed(cfg, conn))
	{
		MHD_add_response_header(resp, "Access-Control-Allow-Origin", cfg->cors_any ? "*" :
								MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin"));
		MHD_add_response_header(resp, "Access-Control-Expose-Headers", CORS_EXPOSE_HEADERS);
	}
	/* the answer depends on Origin whenever an allow-list names origins */
	if (cfg->n_cors_origins > 0 && !cfg->cors_any)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY, "Origin");
	if (status == 401 && MHD_get_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE) == NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
								"Bearer realm=\"pg_saas\"");
	if (status == 503 && MHD_get_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER) == NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
	allow_with_head(resp);
}
