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

#include "access/xact.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

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
		 * worker's queue statements depend on the data: planned per use. So
		 * is every statement where Citus is loaded: Citus plans a statement on
		 * distributed tables only with its parameters bound ("could not
		 * create distributed plan" for a generic one).
		 */
		bool		custom = p->custom_plan || saas_citus_loaded();
		SPIPlanPtr	plan = SPI_prepare_cursor(p->sql, p->nargs, p->types,
											  custom ? CURSOR_OPT_CUSTOM_PLAN :
											  CURSOR_OPT_GENERIC_PLAN);

		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed for \"%s\": %s", p->sql,
				 SPI_result_code_string(SPI_result));
		SPI_keepplan(plan);
		p->plan = plan;
	}
	return SPI_execute_plan(p->plan, values, nulls, read_only, count);
}

/*
 * saas_env_push: pin search_path until saas_env_pop(level). Where Citus is
 * loaded, also run the operation's distributed statements over one
 * connection per node: an operation reads across shards (a global email
 * lookup) and then writes a reference table, which Citus refuses after a
 * parallel read in the same transaction.
 */
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
	if (saas_citus_loaded())
		(void) set_config_option("citus.multi_shard_modify_mode", "sequential",
								 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
								 true, 0, false);
	return nest;
}

/*
 * saas_env_pop: end the operation's environment. Where Citus is loaded, the
 * Citus nodes are told the tenant context and request id now in force when
 * they end with it (citus_env.c).
 */
void
saas_env_pop(int nestlevel)
{
	static const char *const forwarded[] = {"saas.context", "saas.request_id"};
	char	   *before[lengthof(forwarded)] = {NULL};
	bool		citus = saas_citus_loaded();
	int			i;

	for (i = 0; citus && i < (int) lengthof(forwarded); i++)
	{
		const char *v = GetConfigOption(forwarded[i], true, false);

		before[i] = pstrdup(v ? v : "");
	}
	AtEOXact_GUC(true, nestlevel);
	for (i = 0; citus && i < (int) lengthof(forwarded); i++)
	{
		const char *v = GetConfigOption(forwarded[i], true, false);

		if (strcmp(v ? v : "", before[i]) != 0)
			saas_citus_propagate(forwarded[i]);
		pfree(before[i]);
	}
}

/*
 * saas_subxact_run: fn(arg) in an internal subtransaction, released when fn
 * returns (rolled back instead when keep is false) and rolled back when it
 * raises. NULL on success; otherwise the error, copied into the caller's
 * memory context with the error state flushed, for the caller to decide
 * (answer it, log it, or rethrow a cancel, which must still stop the
 * session).
 */
ErrorData *
saas_subxact_run(void (*fn) (void *arg), void *arg, bool keep)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	ErrorData  *volatile edata = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		fn(arg);
		if (keep)
			ReleaseCurrentSubTransaction();
		else
			RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_END_TRY();
	return edata;
}
