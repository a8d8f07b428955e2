/*-------------------------------------------------------------------------
 *
 * health_ops.c
 *	  GET /healthz: is the database answering, is the extension installed,
 *	  is the background worker running.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/json.h"

#include "common/common.h"
#include "api/api.h"

/*
 * The worker's presence comes from shared memory (its pid, cleared when it
 * exits): pg_stat_activity hides other users' backend types from a
 * non-superuser such as the relay's role.  The worker serves one database
 * (saas.database); in any other, jobs wait for ever, so "running" would
 * mislead: there the worker is "not_serving_this_database", named.
 */
void
saas_op_health(StringInfo out, int *status)
{
	char	   *db = get_database_name(MyDatabaseId);
	bool		served = db != NULL && saas_database != NULL && strcmp(db, saas_database) == 0;
	bool		running = saas_worker_running();

	*status = 200;
	appendStringInfo(out, "{\"status\":\"%s\",\"database\":\"ok\",\"worker\":\"%s\"",
					 served && running ? "ok" : "degraded",
					 !served ? "not_serving_this_database" : running ? "running" : "not_running");
	if (!served)
	{
		appendStringInfoString(out, ",\"worker_database\":");
		escape_json(out, saas_database != NULL ? saas_database : "");
	}
	appendStringInfoChar(out, '}');
}
