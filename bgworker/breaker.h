/*-------------------------------------------------------------------------
 *
 * breaker.h
 *	  Circuit breaker per service (closed -> open -> half_open -> closed).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAAS_BREAKER_H
#define SAAS_BREAKER_H

#include "http_client.h"

typedef struct CbSettings
{
	double		failure_rate;	/* open at or above this share of failures */
	int			min_volume;		/* ... once the window has this many calls */
	int			window_s;
	int			reset_s;		/* open -> half_open after this long */
	int			probes;			/* calls let through while half_open */
	int			consecutive;	/* ... or after this many failures in a row */
	int			slow_call_ms;	/* a success slower than this is a failure (0:
								 * off) */
} CbSettings;

typedef struct CbTransition
{
	int			service;
	int			from;
	int			to;
	char		reason[160];
} CbTransition;

extern int	cb_acquire(int svc, const CbSettings *s, int64 now_us, int want,
					   CbTransition *tr, bool *transitioned);
extern void cb_record(int svc, const CbSettings *s, bool success, int latency_ms,
					  const char *error, int64 now_us, CbTransition *tr, bool *transitioned);
extern void cb_record_call(const CbSettings *s, const WkCall *c, int64 now_us,
						   CbTransition *tr, bool *transitioned);
extern int	cb_state(int svc);
extern void cb_throttled(int svc, int64 until_us);
extern void cb_release(int svc);
extern void cb_unused(int svc, int n);

#endif
