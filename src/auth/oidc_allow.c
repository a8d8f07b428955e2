/*-------------------------------------------------------------------------
 *
 * oidc_allow.c
 *	  Which identity providers the database server may call: the setting
 *	  saas.sso_allowed_origins, a comma-separated list of origins
 *	  "scheme://host[:port]" (port "*" for any), set by a superuser.
 *
 * An organization's admin chooses its SSO connection's issuer, and the
 * server then fetches that issuer's discovery document, the token and JWKS
 * endpoints the document names, and sends browsers to its authorization
 * endpoint. Without a list, that is a request forgery aimed from inside
 * the network (metadata services, localhost). So nothing is called unless
 * its origin is listed: an empty list (the default) allows no SSO at all.
 *
 * URLs are parsed by libcurl's URL parser, the same that makes the call,
 * so "http://127.0.0.1:80@evil.example/" is judged by the host curl would
 * reach; URLs with credentials are refused outright.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <curl/curl.h>

#include "utils/guc.h"

#include "pg_saas.h"
#include "auth/oidc.h"

char	   *saas_sso_allowed_origins = NULL;

/* An origin: lower-case scheme and host, port (0: any). */
typedef struct OidcOrigin
{
	char		scheme[8];
	char		host[256];
	int			port;
} OidcOrigin;

/*
 * oidc_parse_url: scheme, host and port of an absolute http(s) URL, as curl
 * reads it. False for anything else, and for a URL with user or password.
 */
static bool
oidc_parse_url(const char *url, OidcOrigin *o)
{
	CURLU	   *u = curl_url();
	char	   *scheme = NULL,
			   *host = NULL,
			   *port = NULL,
			   *user = NULL,
			   *password = NULL;
	bool		ok = false;

	if (u == NULL)
		return false;
	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
		curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
		curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
		curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK &&
		curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_NO_USER &&
		curl_url_get(u, CURLUPART_PASSWORD, &password, 0) == CURLUE_NO_PASSWORD &&
		(strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0) &&
		strlen(host) < sizeof(o->host) && host[0] != '\0')
	{
		strlcpy(o->scheme, scheme, sizeof(o->scheme));
		strlcpy(o->host, host, sizeof(o->host));
		for (char *h = o->host; *h; h++)
			*h = pg_ascii_tolower((unsigned char) *h);
		o->port = atoi(port);
		ok = o->port > 0 && o->port < 65536;
	}
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(user);
	curl_free(password);
	curl_url_cleanup(u);
	return ok;
}

/*
 * oidc_parse_entry: one entry of the setting, "scheme://host[:port|:*]"
 * with nothing after the authority (a trailing "/" is allowed).
 */
static bool
oidc_parse_entry(const char *entry, OidcOrigin *o)
{
	char	   *copy = pstrdup(entry);
	char	   *p = strstr(copy, "://");
	char	   *star;
	bool		any = false;
	bool		ok;
	size_t		len = strlen(copy);

	if (len > 0 && copy[len - 1] == '/')
		copy[--len] = '\0';
	if (p == NULL || strchr(p + 3, '/') != NULL || strchr(p + 3, '@') != NULL ||
		strchr(p + 3, '?') != NULL || strchr(p + 3, '#') != NULL)
		return false;
	star = strrchr(p + 3, ':');
	if (star != NULL && strcmp(star, ":*") == 0)
	{
		*star = '\0';
		any = true;
	}
	ok = oidc_parse_url(copy, o);
	if (ok && any)
		o->port = 0;
	pfree(copy);
	return ok;
}

/*
 * saas_oidc_origins_check_hook: the setting is a list of valid origins, so
 * that a typo is refused when it is set rather than blocking sign-ins later.
 */
bool
saas_oidc_origins_check_hook(char **newval, void **extra, GucSource source)
{
	char	   *list;
	char	   *tok;
	char	   *save = NULL;

	if (*newval == NULL || (*newval)[0] == '\0')
		return true;
	list = pstrdup(*newval);
	for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
	{
		OidcOrigin	o;

		while (*tok == ' ')
			tok++;
		for (char *e = tok + strlen(tok); e > tok && e[-1] == ' '; e--)
			e[-1] = '\0';
		if (*tok == '\0')
			continue;
		if (!oidc_parse_entry(tok, &o))
		{
			GUC_check_errdetail("\"%s\" is not an origin like https://idp.example.com or http://127.0.0.1:*.", tok);
			pfree(list);
			return false;
		}
	}
	pfree(list);
	return true;
}

/*
 * saas_oidc_url_allowed: may the server call (or send a browser to) url?
 * True when it is an http(s) URL without credentials whose origin the
 * setting lists.
 */
bool
saas_oidc_url_allowed(const char *url)
{
	OidcOrigin	target;
	char	   *list;
	char	   *tok;
	char	   *save = NULL;
	bool		allowed = false;

	if (url == NULL || saas_sso_allowed_origins == NULL || saas_sso_allowed_origins[0] == '\0' ||
		!oidc_parse_url(url, &target))
		return false;
	list = pstrdup(saas_sso_allowed_origins);
	for (tok = strtok_r(list, ",", &save); tok && !allowed; tok = strtok_r(NULL, ",", &save))
	{
		OidcOrigin	o;

		while (*tok == ' ')
			tok++;
		for (char *e = tok + strlen(tok); e > tok && e[-1] == ' '; e--)
			e[-1] = '\0';
		if (*tok == '\0' || !oidc_parse_entry(tok, &o))
			continue;
		allowed = strcmp(o.scheme, target.scheme) == 0 &&
			strcmp(o.host, target.host) == 0 &&
			(o.port == 0 || o.port == target.port);
	}
	pfree(list);
	return allowed;
}
