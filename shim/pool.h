/*-------------------------------------------------------------------------
 *
 * pool.h
 *	  A fixed pool of libpq connections, each with saas.http() prepared,
 *	  and the one call the relay makes on them.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAAS_HTTP_POOL_H
#define SAAS_HTTP_POOL_H

#include <stdint.h>

#include <libpq-fe.h>

typedef struct SaasPool SaasPool;

/* How a call ended; only OK and SQL_ERROR come with a result. */
typedef enum SaasCallStatus
{
	SAAS_CALL_OK,				/* saas.http returned rows */
	SAAS_CALL_SQL_ERROR,		/* saas.http raised; the result says what */
	SAAS_CALL_BUSY,				/* no pooled connection ready before the deadline */
	SAAS_CALL_UNAVAILABLE,		/* cannot connect (or backing off after failing) */
	SAAS_CALL_LOST,				/* the connection died during the call */
	SAAS_CALL_TIMEOUT			/* the call outlived the deadline; cancelled */
} SaasCallStatus;

/* The columns of saas_pool_call's rows: one answer row, one row per header. */
#define SAAS_COL_ANSWER		0	/* true on the answer row */
#define SAAS_COL_STATUS		1	/* answer row: saas.http's status */
#define SAAS_COL_BODY		2	/* answer row: its body */
#define SAAS_COL_HEADERS_OK	3	/* answer row: headers null or a flat object */
#define SAAS_COL_NAME		4	/* header row: the name */
#define SAAS_COL_VALUE		5	/* header row: the value, as text */
#define SAAS_NCOLS			6

/* A snapshot for /metrics. */
typedef struct SaasPoolStats
{
	int			size;
	int			in_use;
	int			connected;
	uint64_t	waits;			/* acquisitions that found no free connection */
	uint64_t	wait_timeouts;	/* requests with no connection ready in time */
	uint64_t	connects;		/* connections opened */
	uint64_t	connect_failures;
	uint64_t	lost;			/* connections found dead, idle or mid-call */
	uint64_t	timeouts;		/* calls cancelled at the deadline, here or
								 * by statement_timeout */
	uint64_t	sql_errors;		/* errors raised out of saas.http */
} SaasPoolStats;

extern SaasPool *saas_pool_create(const char *dsn, int size, int statement_timeout_ms);
extern int	saas_pool_warm(SaasPool *pool, int64_t deadline_us);
extern SaasCallStatus saas_pool_call(SaasPool *pool, const char *const params[4],
									 int64_t deadline_us, PGresult **res);
extern SaasCallStatus saas_pool_query(SaasPool *pool, const char *sql, int64_t deadline_us,
									  PGresult **res);
extern void saas_pool_stats(SaasPool *pool, SaasPoolStats *stats);
extern void saas_pool_destroy(SaasPool *pool);

#endif							/* SAAS_HTTP_POOL_H */
