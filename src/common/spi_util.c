/*-------------------------------------------------------------------------
 *
 * spi_util.c
 *	  Saved SPI plans, and the environment operations run in.
 *
 * Operations run as the caller, whose search_path could put its own
 * operators ahead of pg_catalog's. saas_env_push pins search_path for the
 * operation (like SET on a SECURITY DEFINER function), so every saved plan
 * is also planned under the same path and never re-planned for it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/guc.h"

#include "pg_saas.h"
#include "common/common.h"

/* saas_spi_connect: SPI_connect or an error. */
void
saas_spi_connect(void)
{
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
}

/*
 * saas_exec: run a kept plan (prepared on first use). Returns the SPI
 * result code; errors propagate.
 */
int
saas_exec(SaasPlan *p, Datum *values, const char *nulls, bool read_only, long count)
{
	if (p->plan == NULL)
	{
		/*
		 * Generic plans: the API's statements are short index lookups whose
		 * best plan does not depend on the values, and "$n IS NULL OR ..."
		 * filters would otherwise make the planner re-plan on every call. The
		 * worker's queue statements depend on the data: planned per use.
		 */
		SPIPlanPtr	plan = SPI_prepare_cursor(p->sql, p->nargs, p->types,
											  p->custom_plan ? CURSOR_OPT_CUSTOM_PLAN :
											  CURSOR_OPT_GENERIC_PLAN);

		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed for \"%s\": %s", p->sql,
				 SPI_result_code_string(SPI_result));
		SPI_keepplan(plan);
		p->plan = plan;
	}
	return SPI_execute_plan(p->plan, values, nulls, read_only, count);
}

/* saas_env_push: pin search_path until saas_env_pop(level). */
int
saas_env_push(void)
{
	static const char *pinned = "pg_catalog, saas, pg_temp";
	int			nest = NewGUCNestLevel();
	const char *cur = GetConfigOption("search_path", false, false);

	/* Already pinned (nested calls, the relay's sessions): nothing to do. */
	if (cur == NULL || strcmp(cur, pinned) != 0)
		(void) set_config_option("search_path", pinned,
								 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
								 true, 0, false);
	return nest;
}

/*
 * saas_env_pop: undo the settings saas_env_push pinned (the operation ended
 * without error; on error the (sub)transaction unwinds them).
 */
void
saas_env_pop(int nestlevel)
{
	AtEOXact_GUC(true, nestlevel);
}
