/*-------------------------------------------------------------------------
 *
 * http_client.h
 *	  The worker's outbound calls: libcurl's multi interface, many calls at
 *	  once, never inside a transaction.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAAS_HTTP_CLIENT_H
#define SAAS_HTTP_CLIENT_H

#define WK_RESP_MAX 65536

typedef struct WkCall
{
	/* request */
	int			svc;
	char	   *url;
	const char *method;
	char	   *body;			/* JSON or NULL */
	char	   *idempotency_key;
	int			timeout_ms;
	int			resp_max;		/* 0: WK_RESP_MAX */
	/* result */
	long		status;			/* 0 when no HTTP answer */
	char		error[256];		/* transport error, empty if none */
	int			retry_after_s;	/* -1 when absent */
	int			latency_ms;
	char	   *resp;			/* resp_max + 1 bytes, NUL-terminated */
	int			resp_len;
	bool		truncated;		/* the answer was longer than resp_max */
	/* private */
	void	   *easy;
	void	   *headers;
} WkCall;

extern void wk_http_init(void);
extern void wk_http_run(WkCall *calls, int n);

#endif
