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

#include "ops.h"
#include "ops_common.h"

static SaasPlan plan_worker = {
	"SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE backend_type = 'pg_saas worker'",
	0, {0}
};

void
saas_op_health(StringInfo out, int *status)
{
	bool		isnull;
	int64		workers = 0;

	saas_spi_connect();
	if (saas_exec(&plan_worker, NULL, NULL, true, 1) == SPI_OK_SELECT && SPI_processed == 1)
		workers = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	*status = 200;
	appendStringInfo(out, "{\"status\":\"%s\",\"database\":\"ok\",\"worker\":\"%s\"}",
					 workers > 0 ? "ok" : "degraded",
					 workers > 0 ? "running" : "not_running");
}
