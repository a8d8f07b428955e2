/*-------------------------------------------------------------------------
 *
 * breaker.h
 *	  Circuit breaker per service (closed -> open -> half_open -> closed).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAAS_BREAKER_H
#define SAAS_BREAKER_H

#include "access/htup.h"
#include "access/tupdesc.h"

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

/*
 * The breaker settings of saas.integrations, in the order cb_settings_read
 * reads them: a query selects CB_SETTINGS_COLUMNS as consecutive columns.
 */
#define CB_SETTINGS_COLUMNS \
	"breaker_failure_rate, breaker_min_volume, breaker_window_seconds," \
	" breaker_reset_seconds, breaker_half_open_probes, breaker_consecutive_failures," \
	" breaker_slow_call_ms"
#define CB_SETTINGS_NCOLUMNS 7

extern void cb_settings_read(HeapTuple t, TupleDesc d, int first, CbSettings *s);

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
