/*-------------------------------------------------------------------------
 *
 * citus_env.c
 *	  What pg_saas does differently where Citus is loaded (docs/scale-out.md).
 *
 * Citus runs the statements on distributed tables on the worker nodes, over
 * its own connections: a setting changed here with set_config_option (the
 * tenant context, saas.context) never reaches them, and the row-level
 * security of the shards would see no context. Citus forwards a setting
 * when it is changed by a SET LOCAL statement while
 * citus.propagate_set_commands is 'local': to the nodes already in the
 * transaction at once, to the others when they join it. So every change of
 * the context, and every restore of it when a nest level ends, is repeated
 * here as such a statement (in a DO block, see saas_citus_propagate), and
 * so is the request id, which the audit entries written there carry.
 *
 * On a worker node, the context is then verified inside the shard's query
 * (its policies call saas.current_org_id()): the signing keys (a reference
 * table) and the user's facts (tables colocated by org_id) are read from
 * there, which Citus refuses as a nested distributed query unless allowed.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/guc_tables.h"

#include "common/common.h"


static GucBoolCheckHook citus_log_remote_commands_check = NULL;
static bool citus_gucs_guarded = false;
static ProcessUtility_hook_type prev_process_utility = NULL;

/* True while saas_citus_propagate runs its own SET LOCAL (not forwarded again). */
static bool citus_forwarding = false;

/*
 * check_log_remote_commands: citus.log_remote_commands echoes every command
 * Citus sends to the client as a NOTICE, the forwarded tenant contexts
 * included, the trusted ones the extension mints for its own work among them
 * (registration, login, the worker). Citus lets every user turn it on; where
 * pg_saas is loaded only a superuser may.
 */
static bool
check_log_remote_commands(bool *newval, void **extra, GucSource source)
{
	if (*newval && source >= PGC_S_DATABASE && !superuser())
	{
		GUC_check_errcode(ERRCODE_INSUFFICIENT_PRIVILEGE);
		GUC_check_errmsg("only a superuser may turn citus.log_remote_commands on where pg_saas is loaded");
		GUC_check_errdetail("The commands Citus sends carry the tenant context's tokens.");
		return false;
	}
	return citus_log_remote_commands_check == NULL ||
		citus_log_remote_commands_check(newval, extra, source);
}

/*
 * saas_citus_guard_gucs: put the check above on Citus's setting, once Citus
 * has defined it (it is loaded before pg_saas: docs/scale-out.md; from
 * _PG_init citus_loaded is false, and a miss is tried again later). With
 * Citus loaded the settings are searched once, found or not.
 */
void
saas_citus_guard_gucs(bool citus_loaded)
{
	struct config_generic **vars;
	int			n,
				i;

	if (citus_gucs_guarded)
		return;
	vars = get_guc_variables();
	n = GetNumConfigOptions();
	for (i = 0; i < n; i++)
	{
		struct config_bool *b;

		if (vars[i]->vartype != PGC_BOOL || strcmp(vars[i]->name, "citus.log_remote_commands") != 0)
			continue;
		b = (struct config_bool *) vars[i];
		if (b->check_hook != check_log_remote_commands)
		{
			citus_log_remote_commands_check = b->check_hook;
			b->check_hook = check_log_remote_commands;
		}
		citus_gucs_guarded = true;
		return;
	}
	citus_gucs_guarded = citus_loaded;
}

/*
 * saas_citus_loaded: Citus is loaded in this server (its settings exist; a
 * hash lookup, cheap enough for every operation).
 */
bool
saas_citus_loaded(void)
{
	if (GetConfigOption("citus.multi_shard_modify_mode", true, false) == NULL)
		return false;
	saas_citus_guard_gucs(true);
	return true;
}

/*
 * saas_citus_propagate: tell the Citus nodes of this transaction the value
 * the setting NAME has now (a SET LOCAL that Citus forwards). The local value
 * is left as it is: the statement runs inside a GUC nest level of its own,
 * popped at once. Outside a transaction, or without Citus, nothing to do.
 */
void
saas_citus_propagate(const char *name)
{
	const char *value;
	StringInfoData sql;
	int			nest;

	if (!saas_citus_loaded() || !IsTransactionState())
		return;
	value = GetConfigOption(name, true, false);
	if (value == NULL)
		value = "";
	/*
	 * In a DO block: Citus forwards a SET LOCAL only inside what it sees as a
	 * transaction block or a function; saas.http called by a single
	 * autocommit SELECT is neither at its top level.
	 */
	if (strstr(value, "$saas_set$") != NULL)
		elog(ERROR, "%s cannot be forwarded to the Citus nodes", name);
	initStringInfo(&sql);
	appendStringInfo(&sql, "DO $saas_set$BEGIN SET LOCAL %s = %s; END$saas_set$",
					 quote_identifier(name), quote_literal_cstr(value));

	nest = NewGUCNestLevel();
	(void) set_config_option("citus.propagate_set_commands", "local",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	citus_forwarding = true;
	PG_TRY();
	{
		if (SPI_execute(sql.data, false, 0) < 0)
			elog(ERROR, "could not forward %s to the Citus nodes", name);
	}
	PG_FINALLY();
	{
		citus_forwarding = false;
	}
	PG_END_TRY();
	SPI_finish();
	AtEOXact_GUC(true, nest);
	pfree(sql.data);
}

/*
 * citus_env_utility: the application's own SQL sets the request id of its
 * audit entries with SET LOCAL saas.request_id (or SET, RESET inside a
 * transaction block, a function included). Citus forwards no such setting by
 * default, and on a Citus cluster the entries are written on the worker
 * nodes: the new value is forwarded as the API's own is
 * (saas_citus_propagate), for the rest of the transaction. A session's value
 * set outside a transaction block is not: it outlives the transactions Citus
 * forwards settings to (docs/scale-out.md).
 */
static void
citus_env_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
				  ProcessUtilityContext context, ParamListInfo params,
				  QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *node = pstmt->utilityStmt;
	bool		forward = false;

	if (!citus_forwarding && node != NULL && IsA(node, VariableSetStmt))
	{
		VariableSetStmt *set = (VariableSetStmt *) node;

		forward = set->name != NULL && set->kind != VAR_SET_MULTI &&
			pg_strcasecmp(set->name, "saas.request_id") == 0 &&
			(set->is_local || IsTransactionBlock()) && saas_citus_loaded();
	}
	if (prev_process_utility)
		prev_process_utility(pstmt, queryString, readOnlyTree, context, params,
							 queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
								queryEnv, dest, qc);
	if (forward)
		saas_citus_propagate("saas.request_id");
}

/* saas_citus_env_init: from _PG_init. */
void
saas_citus_env_init(void)
{
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = citus_env_utility;
}

/*
 * saas_citus_nested_reads: allow the verification reads of the tenant context
 * to run inside a shard's query on a worker node, until the caller's GUC nest
 * level ends (they run under saas_elevate, whose saas_unelevate pops it).
 * Those reads are of a reference table, whose copy is local, and of the
 * token's own organization: the shard of its user's facts.
 */
void
saas_citus_nested_reads(void)
{
	if (saas_citus_loaded())
		(void) set_config_option("citus.allow_nested_distributed_execution", "on",
								 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
								 true, 0, false);
}

/*
 * saas_citus_two_users_error: whether an error is Citus's refusal of a
 * second user on placements the first one modified in the transaction
 * (25001). The extension acts as its owner in a few operations (logout,
 * logout-all, a password set or changed):
 * after the application's own writes to the same organization in the same
 * transaction, Citus refuses them (docs/scale-out.md, "Not yet" 2).
 */
bool
saas_citus_two_users_error(const ErrorData *edata)
{
	return edata->sqlerrcode == ERRCODE_ACTIVE_SQL_TRANSACTION && edata->message != NULL &&
		strstr(edata->message, "modified in this transaction by a different user") != NULL;
}
