/*-------------------------------------------------------------------------
 *
 * pgwait.h
 *	  libpq calls that give up at a deadline.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAAS_HTTP_PGWAIT_H
#define SAAS_HTTP_PGWAIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

typedef enum SaasPgWait
{
	SAAS_PGW_OK,				/* done */
	SAAS_PGW_TIMEOUT,			/* deadline passed; the connection is mid-query */
	SAAS_PGW_BROKEN				/* the connection is unusable */
} SaasPgWait;

extern PGconn *saas_pgw_connect(const char *dsn, int64_t deadline_us,
								char *err, size_t errlen);
extern SaasPgWait saas_pgw_flush(PGconn *conn, int64_t deadline_us);
extern SaasPgWait saas_pgw_result(PGconn *conn, int64_t deadline_us, PGresult **res);
extern bool saas_pgw_idle_ok(PGconn *conn);

#endif							/* SAAS_HTTP_PGWAIT_H */
