/*-------------------------------------------------------------------------
 *
 * http_client.h
 *	  The worker's outbound calls: one libcurl multi handle for the worker's
 *	  life, calls started at any time and handed back one by one as each
 *	  completes (so a slow service never holds up the others), never inside
 *	  a transaction; what became of a call (one classifier for jobs and
 *	  sync); and the one place that builds their URLs.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAAS_HTTP_CLIENT_H
#define SAAS_HTTP_CLIENT_H

#define WK_RESP_MAX 65536

/*
 * What became of a call. It decides both the retry policy (worker_jobs.c)
 * and what the service's breaker hears (cb_record_call): only
 * WK_SERVICE_FAILED counts against a service.
 */
typedef enum WkOutcome
{
	WK_OK,						/* 2xx */
	WK_REFUSED,					/* any other answer but 408 and 429 (3xx, 4xx):
								 * the request is wrong, the service is fine */
	WK_THROTTLED,				/* 429 */
	WK_SERVICE_FAILED,			/* connection error, timeout, 408, 5xx */
	WK_UNSENDABLE,				/* the request could not be made: bad URL,
								 * method or header, or libcurl calls it
								 * malformed; nothing reached the service */
	WK_LOCAL_ERROR				/* our side failed (out of memory): worth
								 * another try, not the service's fault */
} WkOutcome;

typedef struct WkCall
{
	/* request */
	int			svc;
	char	   *url;			/* NULL: no URL could be built (see error) */
	const char *method;
	char	   *body;			/* JSON or NULL */
	char	   *idempotency_key;
	int			timeout_ms;
	int			resp_max;		/* 0: WK_RESP_MAX */
	/* result */
	WkOutcome	outcome;
	long		status;			/* 0 when no HTTP answer */
	char		error[256];		/* transport error, empty if none */
	int			retry_after_s;	/* -1 when absent */
	int			latency_ms;
	char	   *resp;			/* the answer, NUL-terminated (grown as it
								 * arrives, up to resp_max + 1 bytes) */
	int			resp_len;
	bool		truncated;		/* the answer was longer than resp_max */
	/* private */
	void	   *easy;
	void	   *headers;		/* a node of the call's own, or the shared list */
	int			resp_cap;		/* bytes resp can hold, without its NUL */
	bool		finished;		/* outcome is set */
	bool		queued;			/* handed back by wk_http_next_done */
} WkCall;

/* Calls in flight at once, over all services (per service: max_in_flight). */
#define WK_MAX_IN_FLIGHT 256

extern void wk_http_init(void);
extern void wk_http_start(WkCall *c, bool queue_when_done);
extern int	wk_http_drive(long timeout_ms, bool stop_on_latch);
extern WkCall *wk_http_next_done(void);
extern bool wk_http_has_done(void);
extern int	wk_http_in_flight(int svc);
extern int	wk_http_in_flight_total(void);
extern char *wk_build_url(const char *base_url, const char *const *segs, int nsegs,
						  const char *const *query, int nquery, char *err, size_t errlen);
extern const char *wk_outcome_name(WkOutcome o);

#endif
