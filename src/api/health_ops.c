/*-------------------------------------------------------------------------
 *
 * health_ops.c
 *	  GET /healthz: is the database answering, is the extension installed,
 *	  is the background worker running.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"

#include "common/common.h"
#include "api/api.h"

/*
 * The worker's presence comes from shared memory (its pid, cleared when it
 * exits): pg_stat_activity hides other users' backend types from a
 * non-superuser such as the relay's role.
 */
void
saas_op_health(StringInfo out, int *status)
{
	int64		workers = saas_worker_running() ? 1 : 0;

	*status = 200;
	appendStringInfo(out, "{\"status\":\"%s\",\"database\":\"ok\",\"worker\":\"%s\"}",
					 workers > 0 ? "ok" : "degraded",
					 workers > 0 ? "running" : "not_running");
}
