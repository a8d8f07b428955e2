/*-------------------------------------------------------------------------
 *
 * http_client.c
 *	  Outbound HTTP with libcurl's multi interface: every call of a round
 *	  runs concurrently, each with its own timeout, and the worker keeps
 *	  answering interrupts while it waits. No transaction is open here.
 *
 * Callbacks never palloc or elog (a longjmp through libcurl would corrupt
 * it): the response buffer is allocated before the call and truncated at
 * resp_max (and flagged as truncated).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <curl/curl.h>

#include "miscadmin.h"

#include "http_client.h"

/*
 * One multi handle for the worker's life: it keeps the connection cache,
 * so consecutive rounds reuse connections to the same service.
 */
static CURLM *wk_multi = NULL;

void
wk_http_init(void)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		elog(ERROR, "could not initialize libcurl");
	wk_multi = curl_multi_init();
	if (wk_multi == NULL)
		elog(ERROR, "could not create a libcurl multi handle");
	curl_multi_setopt(wk_multi, CURLMOPT_MAXCONNECTS, 256L);
}

static size_t
wk_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	WkCall	   *c = userdata;
	size_t		n = size * nmemb;
	size_t		room = c->resp_max - c->resp_len;
	size_t		take = Min(n, room);

	if (take < n)
		c->truncated = true;

	memcpy(c->resp + c->resp_len, ptr, take);
	c->resp_len += take;
	c->resp[c->resp_len] = '\0';
	return n;					/* accept (and drop) the rest */
}

static size_t
wk_header(char *buf, size_t size, size_t nitems, void *userdata)
{
	WkCall	   *c = userdata;
	size_t		n = size * nitems;

	if (n > 12 && pg_strncasecmp(buf, "Retry-After:", 12) == 0)
	{
		char		tmp[32];
		size_t		len = Min(n - 12, sizeof(tmp) - 1);
		long		v;

		memcpy(tmp, buf + 12, len);
		tmp[len] = '\0';
		v = strtol(tmp, NULL, 10);
		if (v >= 0 && v < 86400)
			c->retry_after_s = (int) v;
	}
	return n;
}

/* wk_prepare: one easy handle for a call. */
static CURL *
wk_prepare(WkCall *c)
{
	CURL	   *e = curl_easy_init();
	struct curl_slist *h = NULL;
	char		line[300];

	if (e == NULL)
		return NULL;
	if (c->resp_max <= 0)
		c->resp_max = WK_RESP_MAX;
	c->resp = palloc(c->resp_max + 1);
	c->resp[0] = '\0';
	c->resp_len = 0;
	c->truncated = false;
	c->status = 0;
	c->error[0] = '\0';
	c->retry_after_s = -1;

	h = curl_slist_append(h, "Content-Type: application/json");
	h = curl_slist_append(h, "Accept: application/json");
	h = curl_slist_append(h, "User-Agent: pg_saas-worker");
	if (c->idempotency_key)
	{
		snprintf(line, sizeof(line), "Idempotency-Key: %s", c->idempotency_key);
		h = curl_slist_append(h, line);
	}
	h = curl_slist_append(h, "Expect:");
	c->headers = h;

	curl_easy_setopt(e, CURLOPT_URL, c->url);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, c->method);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	if (c->body)
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, c->body);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long) c->timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long) Min(c->timeout_ms, 2000));
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, wk_write);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, wk_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, c);
	curl_easy_setopt(e, CURLOPT_PRIVATE, c);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	c->easy = e;
	return e;
}

/*
 * wk_http_run: perform all calls concurrently; returns when every call has
 * an outcome (an HTTP status, or a transport error such as a timeout).
 */
void
wk_http_run(WkCall *calls, int n)
{
	CURLM	   *m = wk_multi;
	int			i,
				running = 0;

	if (m == NULL)
		wk_http_init();
	m = wk_multi;
	for (i = 0; i < n; i++)
	{
		CURL	   *e = wk_prepare(&calls[i]);

		if (e == NULL)
		{
			strlcpy(calls[i].error, "could not create a libcurl handle", sizeof(calls[i].error));
			continue;
		}
		curl_multi_add_handle(m, e);
	}

	do
	{
		CURLMsg    *msg;
		int			left;

		CHECK_FOR_INTERRUPTS();
		curl_multi_perform(m, &running);
		while ((msg = curl_multi_info_read(m, &left)) != NULL)
		{
			WkCall	   *c;
			double		total = 0;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &c);
			curl_easy_getinfo(msg->easy_handle, CURLINFO_TOTAL_TIME, &total);
			c->latency_ms = (int) (total * 1000);
			if (msg->data.result == CURLE_OK)
				curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &c->status);
			else
				snprintf(c->error, sizeof(c->error), "%s", curl_easy_strerror(msg->data.result));
		}
		if (running > 0)
			curl_multi_poll(m, NULL, 0, 100, NULL);
	} while (running > 0);

	for (i = 0; i < n; i++)
	{
		if (calls[i].easy)
		{
			curl_multi_remove_handle(m, calls[i].easy);
			curl_easy_cleanup(calls[i].easy);
			calls[i].easy = NULL;
		}
		if (calls[i].headers)
		{
			curl_slist_free_all(calls[i].headers);
			calls[i].headers = NULL;
		}
	}
}
