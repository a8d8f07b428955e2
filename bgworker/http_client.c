/*-------------------------------------------------------------------------
 *
 * http_client.c
 *	  Outbound HTTP with libcurl's multi interface, as an event loop: calls
 *	  are started whenever the worker has them (wk_http_start), transfers
 *	  progress whenever the worker drives the loop (wk_http_drive), and each
 *	  call is handed back as soon as it completes (wk_http_next_done), so a
 *	  slow or hanging service holds up only its own calls. Each call has its
 *	  own timeout; the worker keeps answering interrupts and notices its
 *	  latch while it waits. No transaction is open here.
 *
 * Callbacks never elog (a longjmp through libcurl would corrupt it): the
 * response buffer is allocated before the call, small, and grown by the
 * write callback with MCXT_ALLOC_NO_OOM in the same memory context up to
 * resp_max, past which (or out of memory) the answer is truncated (and
 * flagged as truncated). A WkCall must stay allocated until it is finished
 * (and, when queued, handed back).
 *
 * This file also builds every outbound URL (wk_build_url) and says what
 * became of each call (WkOutcome), so that the jobs and the pull sync share
 * one rule for what is retried and what counts against a service's breaker:
 * a request that could not be made, or that the service refused as wrong,
 * is that request's problem alone and never the service's.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <curl/curl.h>

#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "postmaster/postmaster.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/pmsignal.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "http_client.h"
#include "worker_api.h"

/*
 * One multi handle for the worker's life: it keeps the connection cache,
 * so consecutive rounds reuse connections to the same service.
 */
static CURLM *wk_multi = NULL;

/*
 * What a call costs us besides the transfer itself, kept small because the
 * worker makes thousands of calls a second on a core it shares with
 * PostgreSQL: easy handles are reused (a pool of reset handles: creating
 * one allocates and clears its buffers), the headers every call sends are
 * one list built once (a call with an Idempotency-Key puts one node of its
 * own, in its memory, in front of it), and the answer's buffer starts small
 * and grows as the answer arrives, up to resp_max.
 */
#define WK_POOL_MAX WK_MAX_IN_FLIGHT
#define WK_RESP_FIRST 1024
/*
 * WK_SETOPT: set an option on an easy handle unless an earlier one failed;
 * rc keeps the first failure, and the caller refuses the call on it (a
 * CURLOPT_PROTOCOLS_STR that failed silently would drop the http/https
 * restriction).
 */
#define WK_SETOPT(rc, e, opt, val) \
	do { \
		if ((rc) == CURLE_OK) \
			(rc) = curl_easy_setopt((e), (opt), (val)); \
	} while (0)

static CURL *wk_pool[WK_POOL_MAX];
static int	wk_npool = 0;
static struct curl_slist *wk_base_headers = NULL;

void
wk_http_init(void)
{
	struct curl_slist *h = NULL;

	/* Idempotent: a second call (after a failure here) keeps what exists. */
	if (wk_multi == NULL)
	{
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			elog(ERROR, "could not initialize libcurl");
		wk_multi = curl_multi_init();
		if (wk_multi == NULL)
			elog(ERROR, "could not create a libcurl multi handle");
		if (curl_multi_setopt(wk_multi, CURLMOPT_MAXCONNECTS, 256L) != CURLM_OK)
			elog(ERROR, "could not configure the libcurl multi handle");
	}
	if (wk_base_headers != NULL)
		return;

	h = curl_slist_append(h, "Content-Type: application/json");
	if (h)
		h = curl_slist_append(h, "Accept: application/json");
	if (h)
		h = curl_slist_append(h, "User-Agent: pg_saas-worker");
	if (h)
		h = curl_slist_append(h, "Expect:");
	if (h == NULL)
		elog(ERROR, "could not build the request headers");
	wk_base_headers = h;
}

/* wk_easy_get: a handle from the pool, or a new one; NULL when out of memory. */
static CURL *
wk_easy_get(void)
{
	if (wk_npool > 0)
		return wk_pool[--wk_npool];
	return curl_easy_init();
}

/* wk_easy_put: a handle no transfer uses any more goes back to the pool, reset. */
static void
wk_easy_put(CURL *e)
{
	if (wk_npool < WK_POOL_MAX)
	{
		curl_easy_reset(e);
		wk_pool[wk_npool++] = e;
	}
	else
		curl_easy_cleanup(e);
}

static size_t
wk_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	WkCall	   *c = userdata;
	size_t		n = size * nmemb;
	size_t		room = c->resp_cap - c->resp_len;
	size_t		take;

	/*
	 * Grow the buffer (never past resp_max), in the memory context it was
	 * allocated in; without raising an error here: out of memory, the
	 * answer is truncated.
	 */
	if (n > room && c->resp_cap < c->resp_max)
	{
		size_t		want = (size_t) c->resp_len + n;
		size_t		cap = (size_t) c->resp_cap * 2;
		char	   *grown;

		cap = Max(cap, want);
		cap = Min(cap, (size_t) c->resp_max);
		grown = MemoryContextAllocExtended(GetMemoryChunkContext(c->resp), cap + 1,
										   MCXT_ALLOC_NO_OOM);
		if (grown != NULL)
		{
			memcpy(grown, c->resp, c->resp_len + 1);
			pfree(c->resp);
			c->resp = grown;
			c->resp_cap = (int) cap;
			room = c->resp_cap - c->resp_len;
		}
	}
	take = Min(n, room);
	if (take < n)
		c->truncated = true;

	memcpy(c->resp + c->resp_len, ptr, take);
	c->resp_len += take;
	c->resp[c->resp_len] = '\0';
	return n;					/* accept (and drop) the rest */
}

/* wk_method_ok: a method is 1-16 capital letters (it ends up in the request line). */
static bool
wk_method_ok(const char *m)
{
	int			i;

	for (i = 0; m[i]; i++)
		if (i >= 16 || m[i] < 'A' || m[i] > 'Z')
			return false;
	return i > 0;
}

/* wk_key_ok: an Idempotency-Key is 1-255 visible ASCII characters (a header value). */
static bool
wk_key_ok(const char *k)
{
	int			i;

	for (i = 0; k[i]; i++)
		if (i >= 255 || (unsigned char) k[i] <= 0x20 || (unsigned char) k[i] >= 0x7f)
			return false;
	return i > 0;
}

/* wk_fail: a call that never starts, with its outcome and why. */
static CURL *
wk_fail(WkCall *c, CURL *e, WkOutcome outcome, const char *why, CURLcode rc)
{
	c->outcome = outcome;
	if (rc != CURLE_OK)
		snprintf(c->error, sizeof(c->error), "%s (%s)", why, curl_easy_strerror(rc));
	else
		strlcpy(c->error, why, sizeof(c->error));
	if (e)
		wk_easy_put(e);
	c->headers = NULL;
	return NULL;
}

/*
 * wk_prepare: one easy handle for a call, or NULL when the call cannot
 * start (c->outcome and c->error say why). Every setopt is checked: a
 * request that libcurl refuses to set up is not made at all.
 */
static CURL *
wk_prepare(WkCall *c)
{
	CURL	   *e;
	struct curl_slist *h = wk_base_headers;
	CURLcode	rc = CURLE_OK;

	if (c->resp_max <= 0)
		c->resp_max = WK_RESP_MAX;
	c->resp_cap = Min(c->resp_max, WK_RESP_FIRST);
	c->resp = palloc(c->resp_cap + 1);
	c->resp[0] = '\0';
	c->resp_len = 0;
	c->truncated = false;
	c->status = 0;
	c->retry_after_s = -1;
	c->headers = NULL;
	c->outcome = WK_SERVICE_FAILED;

	/* The caller could not build a URL: it said why in c->error. */
	if (c->url == NULL)
	{
		c->outcome = WK_UNSENDABLE;
		if (c->error[0] == '\0')
			strlcpy(c->error, "no URL", sizeof(c->error));
		return NULL;
	}
	c->error[0] = '\0';
	if (c->method == NULL || !wk_method_ok(c->method))
		return wk_fail(c, NULL, WK_UNSENDABLE, "the method is not an HTTP method", CURLE_OK);
	if (c->idempotency_key && !wk_key_ok(c->idempotency_key))
		return wk_fail(c, NULL, WK_UNSENDABLE,
					   "the Idempotency-Key is not 1-255 visible ASCII characters", CURLE_OK);

	if (wk_base_headers == NULL)
		wk_http_init();
	h = wk_base_headers;
	e = wk_easy_get();
	if (e == NULL)
		return wk_fail(c, NULL, WK_LOCAL_ERROR, "could not create a libcurl handle", CURLE_OK);

	/* The call's own header in front of the shared ones, in the call's memory. */
	if (c->idempotency_key)
	{
		struct curl_slist *node = palloc(sizeof(struct curl_slist));

		node->data = psprintf("Idempotency-Key: %s", c->idempotency_key);
		node->next = wk_base_headers;
		h = node;
	}
	c->headers = h;

	WK_SETOPT(rc, e, CURLOPT_URL, c->url);
	WK_SETOPT(rc, e, CURLOPT_PROTOCOLS_STR, "http,https");
	WK_SETOPT(rc, e, CURLOPT_CUSTOMREQUEST, c->method);
	WK_SETOPT(rc, e, CURLOPT_HTTPHEADER, h);
	if (c->body)
		WK_SETOPT(rc, e, CURLOPT_POSTFIELDS, c->body);
	WK_SETOPT(rc, e, CURLOPT_TIMEOUT_MS, (long) c->timeout_ms);
	WK_SETOPT(rc, e, CURLOPT_CONNECTTIMEOUT_MS, (long) Min(c->timeout_ms, 2000));
	WK_SETOPT(rc, e, CURLOPT_NOSIGNAL, 1L);
	WK_SETOPT(rc, e, CURLOPT_WRITEFUNCTION, wk_write);
	WK_SETOPT(rc, e, CURLOPT_WRITEDATA, c);
	WK_SETOPT(rc, e, CURLOPT_PRIVATE, c);
	WK_SETOPT(rc, e, CURLOPT_FOLLOWLOCATION, 0L);
	if (rc != CURLE_OK)
		return wk_fail(c, e, rc == CURLE_OUT_OF_MEMORY ? WK_LOCAL_ERROR : WK_UNSENDABLE,
					   "could not set up the request", rc);
	c->easy = e;
	return e;
}

/*
 * wk_transfer_outcome: a transfer that ended without an HTTP answer. The
 * codes below mean libcurl would not make this request (its URL or options
 * are wrong), which no retry and no other service state changes; running
 * out of memory is ours. Everything else (refused, reset, timed out, name
 * not resolved, bad answer) is the service's.
 */
static WkOutcome
wk_transfer_outcome(CURLcode rc)
{
	switch (rc)
	{
		case CURLE_URL_MALFORMAT:
		case CURLE_UNSUPPORTED_PROTOCOL:
		case CURLE_BAD_FUNCTION_ARGUMENT:
		case CURLE_UNKNOWN_OPTION:
		case CURLE_NOT_BUILT_IN:
			return WK_UNSENDABLE;
		case CURLE_OUT_OF_MEMORY:
		case CURLE_FAILED_INIT:
			return WK_LOCAL_ERROR;
		default:
			return WK_SERVICE_FAILED;
	}
}

/*
 * wk_status_outcome: an HTTP answer. 408 and 5xx are the service's trouble
 * and 429 its pacing; any other non-2xx answer (3xx, which is not followed,
 * and 4xx such as 400, 404, 405, 409, 410, 413, 414, 422) says the request
 * itself is wrong: the service is working, and the same request will fail
 * again.
 */
static WkOutcome
wk_status_outcome(long status)
{
	if (status >= 200 && status < 300)
		return WK_OK;
	if (status == 429)
		return WK_THROTTLED;
	if (status == 408 || status >= 500 || status < 100)
		return WK_SERVICE_FAILED;
	return WK_REFUSED;
}

const char *
wk_outcome_name(WkOutcome o)
{
	switch (o)
	{
		case WK_OK:
			return "ok";
		case WK_REFUSED:
			return "refused";
		case WK_THROTTLED:
			return "throttled";
		case WK_SERVICE_FAILED:
			return "service failed";
		case WK_UNSENDABLE:
			return "request cannot be made";
		case WK_LOCAL_ERROR:
			return "local error";
	}
	return "?";
}

/* Calls in flight, per service and in all; finished calls not yet handed back. */
static int	wk_inflight[SAAS_NSERVICES];
static int	wk_inflight_all = 0;
#define WK_DONE_RING (WK_MAX_IN_FLIGHT * 4)
static WkCall *wk_done[WK_DONE_RING];
static int	wk_done_head = 0,
			wk_done_count = 0;

/* wk_call_finished: the call has its outcome; free its handles, queue it. */
static void
wk_call_finished(WkCall *c)
{
	if (c->easy)
	{
		curl_multi_remove_handle(wk_multi, c->easy);
		wk_easy_put(c->easy);
		c->easy = NULL;
		if (c->svc >= 0 && c->svc < SAAS_NSERVICES)
			wk_inflight[c->svc]--;
		wk_inflight_all--;
	}
	c->headers = NULL;			/* the call's node goes with its memory */
	c->finished = true;
	if (c->queued)
	{
		if (wk_done_count >= WK_DONE_RING)
			elog(PANIC, "pg_saas worker: more finished calls than it can hold");
		wk_done[(wk_done_head + wk_done_count) % WK_DONE_RING] = c;
		wk_done_count++;
	}
}

/*
 * wk_http_start: start one call. queue_when_done: hand it back through
 * wk_http_next_done when it completes (the jobs); otherwise the caller
 * watches c->finished (the sync's page reads). A call that cannot start is finished
 * at once with its outcome set.
 */
void
wk_http_start(WkCall *c, bool queue_when_done)
{
	CURL	   *e;
	CURLMcode	mrc;

	if (wk_multi == NULL)
		wk_http_init();
	c->finished = false;
	c->queued = queue_when_done;
	c->easy = NULL;
	e = wk_prepare(c);
	if (e == NULL)
	{
		wk_call_finished(c);	/* outcome and error are set */
		return;
	}
	mrc = curl_multi_add_handle(wk_multi, e);
	if (mrc != CURLM_OK)
	{
		c->easy = NULL;
		(void) wk_fail(c, e, WK_LOCAL_ERROR, curl_multi_strerror(mrc), CURLE_OK);
		wk_call_finished(c);
		return;
	}
	if (c->svc >= 0 && c->svc < SAAS_NSERVICES)
		wk_inflight[c->svc]++;
	wk_inflight_all++;
}

/* wk_http_harvest: outcomes of the transfers that ended; how many. */
static int
wk_http_harvest(void)
{
	CURLMsg    *msg;
	int			left,
				n = 0;

	while ((msg = curl_multi_info_read(wk_multi, &left)) != NULL)
	{
		WkCall	   *c;
		double		total = 0;

		if (msg->msg != CURLMSG_DONE)
			continue;
		if (curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &c) != CURLE_OK || c == NULL)
			elog(ERROR, "pg_saas worker: a finished transfer has no call");
		if (curl_easy_getinfo(msg->easy_handle, CURLINFO_TOTAL_TIME, &total) != CURLE_OK)
			total = 0;
		c->latency_ms = (int) (total * 1000);
		if (msg->data.result == CURLE_OK)
		{
			curl_off_t	retry_after = 0;

			if (curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &c->status) != CURLE_OK)
				c->status = 0;

			/*
			 * Retry-After as libcurl reads it: delta-seconds or an HTTP
			 * date; 0 when absent. A day or more is not believed.
			 */
			if (curl_easy_getinfo(msg->easy_handle, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK &&
				retry_after > 0 && retry_after < 86400)
				c->retry_after_s = (int) retry_after;
			c->outcome = wk_status_outcome(c->status);
			if (c->status == 0)
				strlcpy(c->error, "no answer", sizeof(c->error));
		}
		else
		{
			c->outcome = wk_transfer_outcome(msg->data.result);
			snprintf(c->error, sizeof(c->error), "%s", curl_easy_strerror(msg->data.result));
		}
		wk_call_finished(c);
		n++;
	}
	return n;
}

/*
 * wk_http_drive: let the transfers progress for up to timeout_ms. Returns
 * early, with how many calls finished, as soon as one did, when nothing is
 * in flight, or (stop_on_latch) when the worker's latch is set (new work
 * arrived). Sleeps
 * in slices of at most 20 ms so interrupts and the latch are seen promptly.
 */
int
wk_http_drive(long timeout_ms, bool stop_on_latch)
{
	int64		deadline = GetCurrentTimestamp() + (int64) Max(timeout_ms, 0) * 1000;
	int			running = 0;
	int			n = 0;

	if (wk_multi == NULL)
		wk_http_init();
	for (;;)
	{
		int64		left;

		CHECK_FOR_INTERRUPTS();
		if (!PostmasterIsAlive())
			proc_exit(1);
		curl_multi_perform(wk_multi, &running);
		n += wk_http_harvest();
		if (n > 0 || running == 0 || (stop_on_latch && MyLatch->is_set))
			return n;
		left = (deadline - GetCurrentTimestamp()) / 1000;
		if (left <= 0)
			return n;
		curl_multi_poll(wk_multi, NULL, 0, (int) Min(left, 20), NULL);
	}
}

/* wk_http_next_done: a finished call to record, or NULL. */
WkCall *
wk_http_next_done(void)
{
	WkCall	   *c;

	if (wk_done_count == 0)
		return NULL;
	c = wk_done[wk_done_head];
	wk_done_head = (wk_done_head + 1) % WK_DONE_RING;
	wk_done_count--;
	return c;
}

/* wk_http_has_done: whether finished calls wait to be handed back. */
bool
wk_http_has_done(void)
{
	return wk_done_count > 0;
}

int
wk_http_in_flight(int svc)
{
	return (svc >= 0 && svc < SAAS_NSERVICES) ? wk_inflight[svc] : 0;
}

int
wk_http_in_flight_total(void)
{
	return wk_inflight_all;
}

/* wk_append_escaped: s percent-encoded (all but A-Z a-z 0-9 - . _ ~). */
static void
wk_append_escaped(StringInfo buf, const char *s)
{
	char	   *esc = curl_easy_escape(NULL, s, (int) strlen(s));

	if (esc == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	appendStringInfoString(buf, esc);
	curl_free(esc);
}

/* wk_url_has: whether the URL has this part (a query, a fragment). */
static bool
wk_url_has(CURLU *u, CURLUPart what)
{
	char	   *part = NULL;
	CURLUcode	rc = curl_url_get(u, what, &part, 0);

	if (part)
		curl_free(part);
	return rc == CURLUE_OK;
}

/*
 * wk_build_url: the URL of a call, and the only place one is made.
 *
 * base_url is the service's setting: an http(s) URL without a query or a
 * fragment; its path is kept. Each of segs is then appended as exactly one
 * path segment, and query holds nquery name/value pairs (query[2i],
 * query[2i + 1]; a NULL value leaves its pair out). Every segment, name and
 * value is percent-encoded with curl_easy_escape, which leaves only
 * A-Z a-z 0-9 - . _ ~ as they are: a '/', '?', '#', '%' or space in an
 * external id stays inside its own segment or value, so an id can neither
 * climb to another resource ("../../v2/customers/x") nor add a parameter
 * ("x?cascade=all"). A segment that is empty, "." or ".." cannot be sent as
 * one (it would name the collection or its parent, and servers decode
 * "%2E%2E" to ".."), so it is refused. The parts are assembled and checked
 * by libcurl's URL API.
 *
 * Returns the URL (palloc'd), or NULL with err set when no request can be
 * made with these pieces. err never quotes base_url (it may hold a
 * password).
 */
char *
wk_build_url(const char *base_url, const char *const *segs, int nsegs,
			 const char *const *query, int nquery, char *err, size_t errlen)
{
	CURLU	   *u = curl_url();
	CURLUcode	rc;
	char	   *part = NULL;
	StringInfoData buf;
	char	   *url = NULL;
	int			i;

	if (u == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	err[0] = '\0';
	initStringInfo(&buf);

	rc = curl_url_set(u, CURLUPART_URL, base_url ? base_url : "", 0);
	if (rc != CURLUE_OK)
	{
		snprintf(err, errlen, "the base_url is not a URL (%s)", curl_url_strerror(rc));
		goto done;
	}
	rc = curl_url_get(u, CURLUPART_SCHEME, &part, 0);
	if (rc != CURLUE_OK || (pg_strcasecmp(part, "http") != 0 && pg_strcasecmp(part, "https") != 0))
	{
		snprintf(err, errlen, "the base_url is not an http or https URL");
		goto done;
	}
	curl_free(part);
	part = NULL;
	if (wk_url_has(u, CURLUPART_QUERY) || wk_url_has(u, CURLUPART_FRAGMENT))
	{
		snprintf(err, errlen, "the base_url has a query or a fragment");
		goto done;
	}

	/* The path: the base's, without trailing slashes, then one escaped segment each. */
	rc = curl_url_get(u, CURLUPART_PATH, &part, 0);
	if (rc != CURLUE_OK)
	{
		snprintf(err, errlen, "the base_url has no path (%s)", curl_url_strerror(rc));
		goto done;
	}
	appendStringInfoString(&buf, part);
	curl_free(part);
	part = NULL;
	while (buf.len > 0 && buf.data[buf.len - 1] == '/')
		buf.data[--buf.len] = '\0';
	for (i = 0; i < nsegs; i++)
	{
		if (segs[i] == NULL || segs[i][0] == '\0' ||
			strcmp(segs[i], ".") == 0 || strcmp(segs[i], "..") == 0)
		{
			snprintf(err, errlen, "path segment %d is empty, \".\" or \"..\"", i + 1);
			goto done;
		}
		appendStringInfoChar(&buf, '/');
		wk_append_escaped(&buf, segs[i]);
	}
	if (buf.len == 0)
		appendStringInfoChar(&buf, '/');
	rc = curl_url_set(u, CURLUPART_PATH, buf.data, 0);
	if (rc != CURLUE_OK)
	{
		snprintf(err, errlen, "the path is refused by libcurl (%s)", curl_url_strerror(rc));
		goto done;
	}

	resetStringInfo(&buf);
	for (i = 0; i < nquery; i++)
	{
		if (query[2 * i + 1] == NULL)
			continue;
		if (buf.len > 0)
			appendStringInfoChar(&buf, '&');
		wk_append_escaped(&buf, query[2 * i]);
		appendStringInfoChar(&buf, '=');
		wk_append_escaped(&buf, query[2 * i + 1]);
	}
	if (buf.len > 0)
	{
		rc = curl_url_set(u, CURLUPART_QUERY, buf.data, 0);
		if (rc != CURLUE_OK)
		{
			snprintf(err, errlen, "the query is refused by libcurl (%s)", curl_url_strerror(rc));
			goto done;
		}
	}

	rc = curl_url_get(u, CURLUPART_URL, &part, 0);
	if (rc != CURLUE_OK)
	{
		snprintf(err, errlen, "libcurl cannot assemble the URL (%s)", curl_url_strerror(rc));
		goto done;
	}
	url = pstrdup(part);

done:
	if (part)
		curl_free(part);
	curl_url_cleanup(u);
	pfree(buf.data);
	return url;
}
