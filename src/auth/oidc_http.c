/*-------------------------------------------------------------------------
 *
 * oidc_http.c
 *	  The identity provider over the network: one blocking libcurl call at a
 *	  time with tight timeouts (connect 2 s, whole call 5 s, answers up to
 *	  256 KiB, http and https only, no redirects followed), and the
 *	  provider's discovery document and JWKS cached per backend.
 *
 * Where these calls run and why (docs/security.md, "Single sign-on"): in
 * the backend serving the request, before the request has written anything
 * or taken any lock; a cancel interrupts a call (the progress callback
 * asks curl to stop, then CHECK_FOR_INTERRUPTS). Any failure to reach the
 * provider, or an answer that is not a usable document, is SA503 ("the
 * identity provider is unavailable"), never a hang.
 *
 * Caches (TopMemoryContext, a few entries): discovery documents for an
 * hour; a JWKS for an hour, refreshed at once when an id_token names a kid
 * it lacks (key rotation): once for each new kid, and for the same unknown
 * kid again only after a minute (a provider that keeps naming a key it does
 * not publish is not asked again on every sign-in).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <curl/curl.h>

#include "miscadmin.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "pg_saas.h"
#include "common/common.h"
#include "auth/oidc.h"

#define OIDC_CACHE_SIZE		8
#define OIDC_CACHE_TTL_S	3600
#define OIDC_REFRESH_SAME_KID_MS	60000

/* A cached document: discovery (by issuer) or JWKS (by its URI). */
typedef struct OidcCacheEntry
{
	char	   *key;			/* TopMemoryContext */
	char	   *text;			/* the document as fetched */
	TimestampTz fetched_at;
	char		refreshed_for[257]; /* JWKS: the unknown kid of the last refresh */
	TimestampTz refreshed_at;
} OidcCacheEntry;

static OidcCacheEntry discovery_cache[OIDC_CACHE_SIZE];
static OidcCacheEntry jwks_cache[OIDC_CACHE_SIZE];

/* The receiving buffer, filled by curl's write callback (which never throws). */
typedef struct OidcBuf
{
	char	   *data;
	size_t		len;
	bool		overflow;
} OidcBuf;

static size_t
oidc_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	OidcBuf    *b = userdata;
	size_t		n = size * nmemb;

	if (b->len + n > SAAS_OIDC_MAX_ANSWER)
	{
		b->overflow = true;
		return 0;				/* makes curl stop with an error */
	}
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	return n;
}

/* oidc_progress: stop the transfer when a cancel or shutdown is pending. */
static int
oidc_progress(void *clientp, curl_off_t dltotal, curl_off_t dlnow,
			  curl_off_t ultotal, curl_off_t ulnow)
{
	return InterruptPending ? 1 : 0;
}

/* oidc_unavailable: the one error for a provider that cannot be used now. */
static void
oidc_unavailable(const char *url, const char *why) pg_attribute_noreturn();

static void
oidc_unavailable(const char *url, const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_SAAS_UNAVAILABLE),
			 errmsg("the identity provider is unavailable"),
			 errdetail_log("%s: %s", url, why)));
}

/*
 * saas_oidc_fetch: GET url, or POST form (application/x-www-form-urlencoded)
 * when form is given. Any transport failure raises SA503; the caller judges
 * the status. Secrets travel only in form, never in the URL or the logs.
 */
void
saas_oidc_fetch(const char *url, const char *form, SaasOidcAnswer *a)
{
	CURL	   *c;
	CURLcode	rc;
	struct curl_slist *hdrs = NULL;
	OidcBuf		buf;
	char		errbuf[CURL_ERROR_SIZE];
	bool		ok;

	if (url == NULL || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0))
		oidc_unavailable(url ? url : "(none)", "not an http(s) URL");
	/* Checked at every call: a discovery document names URLs of its own. */
	if (!saas_oidc_url_allowed(url))
		oidc_unavailable(url, "its origin is not in saas.sso_allowed_origins");
	buf.data = palloc(SAAS_OIDC_MAX_ANSWER + 1);
	buf.len = 0;
	buf.overflow = false;
	errbuf[0] = '\0';

	c = curl_easy_init();
	if (c == NULL)
		oidc_unavailable(url, "curl_easy_init failed");
	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	ok = curl_easy_setopt(c, CURLOPT_URL, url) == CURLE_OK &&
		curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK &&
		curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK &&
		curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
		curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long) SAAS_OIDC_CONNECT_TIMEOUT_MS) == CURLE_OK &&
		curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long) SAAS_OIDC_TOTAL_TIMEOUT_MS) == CURLE_OK &&
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, oidc_write) == CURLE_OK &&
		curl_easy_setopt(c, CURLOPT_WRITEDATA, &buf) == CURLE_OK &&
		curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, oidc_progress) == CURLE_OK &&
		curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L) == CURLE_OK &&
		curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf) == CURLE_OK &&
		curl_easy_setopt(c, CURLOPT_USERAGENT, "pg_saas-sso") == CURLE_OK &&
		hdrs != NULL &&
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs) == CURLE_OK;
	if (ok && form != NULL)
		ok = curl_easy_setopt(c, CURLOPT_POSTFIELDS, form) == CURLE_OK;
	if (!ok)
	{
		curl_slist_free_all(hdrs);
		curl_easy_cleanup(c);
		oidc_unavailable(url, "could not set up the request");
	}
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a->status);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	CHECK_FOR_INTERRUPTS();
	if (rc != CURLE_OK)
		oidc_unavailable(url, buf.overflow ? "answer too large" :
						 errbuf[0] ? errbuf : curl_easy_strerror(rc));
	buf.data[buf.len] = '\0';
	a->body = buf.data;
	a->len = (int) buf.len;
}

/* oidc_cache_find: the entry of key, or NULL. */
static OidcCacheEntry *
oidc_cache_find(OidcCacheEntry *cache, const char *key)
{
	for (int i = 0; i < OIDC_CACHE_SIZE; i++)
		if (cache[i].key && strcmp(cache[i].key, key) == 0)
			return &cache[i];
	return NULL;
}

/* oidc_cache_get: a fresh cached text for key, or NULL. */
static const char *
oidc_cache_get(OidcCacheEntry *cache, const char *key)
{
	OidcCacheEntry *e = oidc_cache_find(cache, key);

	if (e == NULL ||
		TimestampDifferenceExceeds(e->fetched_at, GetCurrentTimestamp(), OIDC_CACHE_TTL_S * 1000))
		return NULL;
	return e->text;
}

/* oidc_cache_put: keep text for key, replacing the same key or the oldest entry. */
static void
oidc_cache_put(OidcCacheEntry *cache, const char *key, const char *text)
{
	int			slot = 0;

	for (int i = 0; i < OIDC_CACHE_SIZE; i++)
	{
		if (cache[i].key && strcmp(cache[i].key, key) == 0)
		{
			slot = i;
			break;
		}
		if (cache[i].key == NULL || cache[i].fetched_at < cache[slot].fetched_at)
			slot = i;
	}
	if (cache[slot].key)
		pfree(cache[slot].key);
	if (cache[slot].text)
		pfree(cache[slot].text);
	cache[slot].key = MemoryContextStrdup(TopMemoryContext, key);
	cache[slot].text = MemoryContextStrdup(TopMemoryContext, text);
	cache[slot].fetched_at = GetCurrentTimestamp();
	cache[slot].refreshed_for[0] = '\0';
	cache[slot].refreshed_at = 0;
}

/* oidc_get_json: GET a JSON object document (200 only), as text; else SA503. */
static char *
oidc_get_json(const char *url)
{
	SaasOidcAnswer a = {0};

	saas_oidc_fetch(url, NULL, &a);
	if (a.status != 200)
		oidc_unavailable(url, psprintf("answered %ld", a.status));
	if (!saas_json_valid_strict(a.body, a.len, true))
		oidc_unavailable(url, "not a JSON object");
	return a.body;
}

/* oidc_doc_str: a string member of a document, or NULL. */
static char *
oidc_doc_str(Jsonb *doc, const char *key)
{
	JsonbValue *v = saas_jsonb_get(doc, key);

	if (v == NULL || v->type != jbvString || v->val.string.len == 0)
		return NULL;
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/*
 * saas_oidc_discover: the provider's endpoints from its discovery document
 * (<issuer>/.well-known/openid-configuration), whose issuer must be exactly
 * the configured one (OpenID Connect Discovery 4.3).
 */
void
saas_oidc_discover(const char *issuer, SaasOidcProvider *p)
{
	const char *text = oidc_cache_get(discovery_cache, issuer);
	char	   *url;
	Jsonb	   *doc;
	size_t		il = strlen(issuer);
	bool		fetched = (text == NULL);

	url = psprintf("%.*s/.well-known/openid-configuration",
				   (int) (il > 0 && issuer[il - 1] == '/' ? il - 1 : il), issuer);
	if (fetched)
		text = oidc_get_json(url);
	doc = saas_jsonb_from_text(text, strlen(text));
	p->issuer = oidc_doc_str(doc, "issuer");
	p->authorization_endpoint = oidc_doc_str(doc, "authorization_endpoint");
	p->token_endpoint = oidc_doc_str(doc, "token_endpoint");
	p->jwks_uri = oidc_doc_str(doc, "jwks_uri");
	if (p->issuer == NULL || strcmp(p->issuer, issuer) != 0)
		oidc_unavailable(url, "the document names another issuer");
	if (p->authorization_endpoint == NULL || p->token_endpoint == NULL || p->jwks_uri == NULL)
		oidc_unavailable(url, "the document lacks an endpoint");
	/* Browsers are sent there: only to an allowed origin (http(s), no credentials). */
	if (!saas_oidc_url_allowed(p->authorization_endpoint))
		oidc_unavailable(url, "its authorization_endpoint is not in saas.sso_allowed_origins");
	if (fetched)
		oidc_cache_put(discovery_cache, issuer, text);
}

/*
 * saas_oidc_jwks: the provider's keys. unknown_kid (when not NULL) is a kid
 * an id_token named and the cached copy lacks: a new copy is fetched, unless
 * one was already fetched for that same kid in the last minute.
 */
Jsonb *
saas_oidc_jwks(const char *jwks_uri, const char *unknown_kid)
{
	const char *text = oidc_cache_get(jwks_cache, jwks_uri);
	OidcCacheEntry *e;
	Jsonb	   *doc;
	JsonbValue *keys;
	TimestampTz now = GetCurrentTimestamp();

	if (text != NULL && unknown_kid != NULL)
	{
		e = oidc_cache_find(jwks_cache, jwks_uri);
		if (strcmp(e->refreshed_for, unknown_kid) != 0 ||
			TimestampDifferenceExceeds(e->refreshed_at, now, OIDC_REFRESH_SAME_KID_MS))
			text = NULL;
	}
	if (text != NULL)
		return saas_jsonb_from_text(text, strlen(text));
	text = oidc_get_json(jwks_uri);
	doc = saas_jsonb_from_text(text, strlen(text));
	keys = saas_jsonb_get(doc, "keys");
	if (keys == NULL || keys->type != jbvBinary || !JsonContainerIsArray(keys->val.binary.data))
		oidc_unavailable(jwks_uri, "not a JWK set");
	oidc_cache_put(jwks_cache, jwks_uri, text);
	if (unknown_kid != NULL)
	{
		e = oidc_cache_find(jwks_cache, jwks_uri);
		strlcpy(e->refreshed_for, unknown_kid, sizeof(e->refreshed_for));
		e->refreshed_at = now;
	}
	return doc;
}

/* saas_oidc_forget: drop every cached document (tests, key compromise). */
void
saas_oidc_forget(void)
{
	for (int i = 0; i < OIDC_CACHE_SIZE; i++)
	{
		if (discovery_cache[i].key)
			pfree(discovery_cache[i].key);
		if (discovery_cache[i].text)
			pfree(discovery_cache[i].text);
		if (jwks_cache[i].key)
			pfree(jwks_cache[i].key);
		if (jwks_cache[i].text)
			pfree(jwks_cache[i].text);
	}
	memset(discovery_cache, 0, sizeof(discovery_cache));
	memset(jwks_cache, 0, sizeof(jwks_cache));
}
