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
 * the context, and every restore of it when a nest level ends, is forwarded
 * as such a statement before the next statement of the transaction runs (in
 * a DO block, see saas_citus_sync), and so is the request id, which the
 * audit entries written there carry.
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
#include "executor/executor.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "nodes/parsenodes.h"
#include "utils/builtins.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/guc_tables.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "tcop/utility.h"

#include "common/common.h"


static GucBoolCheckHook citus_log_remote_commands_check = NULL;
static bool citus_gucs_guarded = false;

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
 * Forwarding the tenant context and the request id (docs/scale-out.md,
 * "The tenant context reaches the workers").
 *
 * The extension's C code changes these settings with set_config_option,
 * which Citus does not see; saas_citus_propagate only notes that they
 * changed. Before the next statement of the transaction runs (an executor
 * start or run, a utility statement: every way a statement reaches the
 * worker nodes goes through one of them), saas_citus_sync tells the nodes
 * the values in force then, both in one command (one round trip to each
 * node already in the transaction; appended for free to the BEGIN of the
 * nodes that join later). So:
 *
 *	- a request changes the settings several times (its request id, a cleared
 *	  context, the verified one) and the nodes are told once, when its first
 *	  query starts;
 *	- the restore when a request or a trusted step ends is sent only if the
 *	  transaction runs another statement: saas.http called by an autocommit
 *	  SELECT ends its transaction right after, with nothing to restore (a
 *	  SET LOCAL ends with the workers' transaction);
 *	- a subtransaction that ends after a forward makes the next statement
 *	  forward again: Citus forgets the SET LOCALs of a subtransaction when it
 *	  ends (for the nodes that join later), while the nodes in the
 *	  transaction keep them on a RELEASE and drop them on a ROLLBACK TO.
 *	  This is also what restores the context after saas.http: the request's
 *	  context is set inside the request's subtransaction, whose release
 *	  restores it here (a GUC_ACTION_SAVE) and not on the nodes.
 */
static const char *const fwd_names[] = {"saas.context", "saas.request_id"};

static bool fwd_dirty = false;	/* a forwarded setting may differ on the nodes */
static bool fwd_known = false;	/* fwd_sent is what every node has or gets */
static char *fwd_sent[lengthof(fwd_names)];	/* the values last forwarded */
static int	fwd_level = 0;		/* transaction nest level of that forward */
static bool fwd_busy = false;	/* forwarding now: its own statements pass */

static ExecutorStart_hook_type prev_executor_start = NULL;
static ExecutorRun_hook_type prev_executor_run = NULL;
static ProcessUtility_hook_type prev_process_utility = NULL;

/*
 * saas_citus_propagate: the setting NAME (saas.context or saas.request_id)
 * was changed or restored here; the Citus nodes of this transaction are told
 * before its next statement runs. Outside a transaction, or without Citus,
 * nothing to do.
 */
void
saas_citus_propagate(const char *name)
{
	(void) name;
	if (saas_citus_loaded() && IsTransactionState())
		fwd_dirty = true;
}

/* fwd_current: the local value of forwarded setting i ("" when unset). */
static const char *
fwd_current(int i)
{
	const char *v = GetConfigOption(fwd_names[i], true, false);

	return v ? v : "";
}

/*
 * fwd_send: run the forwarding command SQL with citus.propagate_set_commands
 * 'local', inside a GUC nest level of its own; the statements it runs here
 * pass the hooks below untouched.
 */
static void
fwd_send(const char *sql)
{
	bool		snap = !ActiveSnapshotSet();
	int			nest;

	if (snap)
		PushActiveSnapshot(GetTransactionSnapshot());
	nest = NewGUCNestLevel();
	(void) set_config_option("citus.propagate_set_commands", "local",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
	fwd_busy = true;
	PG_TRY();
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (SPI_execute(sql, false, 0) < 0)
			elog(ERROR, "could not forward the tenant context to the Citus nodes");
		SPI_finish();
	}
	PG_FINALLY();
	{
		fwd_busy = false;
	}
	PG_END_TRY();
	AtEOXact_GUC(true, nest);
	if (snap)
		PopActiveSnapshot();
}

/*
 * saas_citus_sync: tell the Citus nodes of this transaction the values the
 * forwarded settings have now, if they may differ from the last forward.
 *
 * One command for both, so that Citus sends one: it forwards the text of a
 * SET LOCAL statement as it was given, and the statement run here is the
 * first of a two-statement string (the context's SET LOCAL, then the
 * request id's set_config, which Citus does not forward by itself). It runs
 * in a DO block: Citus forwards a SET LOCAL only inside what it takes for a
 * transaction block or a function, and saas.http called by one autocommit
 * SELECT is neither at its top level. The local values are left as they
 * are (the same values, set inside a GUC nest level of its own).
 */
void
saas_citus_sync(void)
{
	StringInfoData sql;
	const char *cur[lengthof(fwd_names)];
	bool		same = fwd_known;
	int			i;

	if (!fwd_dirty || fwd_busy || !IsTransactionState() || IsInParallelMode())
		return;
	for (i = 0; i < (int) lengthof(fwd_names); i++)
	{
		cur[i] = fwd_current(i);
		same = same && strcmp(cur[i], fwd_sent[i]) == 0;
		/* the dollar quotes around the text below */
		if (strstr(cur[i], "$saas_") != NULL)
			elog(ERROR, "%s cannot be forwarded to the Citus nodes", fwd_names[i]);
	}
	if (same)
	{
		fwd_dirty = false;
		return;
	}

	/*
	 * The token stays between plain quotes in every text that holds it, so
	 * that log_redact.c finds it after "saas.context" = ' wherever the text
	 * is logged (Citus's remote commands, an error's statement).
	 */
	initStringInfo(&sql);
	appendStringInfo(&sql, "DO $saas_set$BEGIN EXECUTE $saas_q$SET LOCAL %s = %s; "
					 "SELECT pg_catalog.set_config(%s, %s, true)$saas_q$; END$saas_set$",
					 quote_identifier(fwd_names[0]), quote_literal_cstr(cur[0]),
					 quote_literal_cstr(fwd_names[1]), quote_literal_cstr(cur[1]));

	fwd_send(sql.data);
	pfree(sql.data);

	for (i = 0; i < (int) lengthof(fwd_names); i++)
	{
		char	   *v = MemoryContextStrdup(TopMemoryContext, fwd_current(i));

		if (fwd_sent[i] != NULL)
			pfree(fwd_sent[i]);
		fwd_sent[i] = v;
	}
	fwd_known = true;
	fwd_dirty = false;
	fwd_level = GetCurrentTransactionNestLevel();
}

/* fwd_forget: a new transaction: nothing forwarded in it yet. */
static void
fwd_forget(void)
{
	fwd_dirty = false;
	fwd_known = false;
	fwd_level = 0;
}

static void
fwd_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PREPARE || event == XACT_EVENT_PARALLEL_COMMIT ||
		event == XACT_EVENT_PARALLEL_ABORT)
		fwd_forget();
}

/*
 * fwd_subxact_callback: a subtransaction that forwarded ends. On a RELEASE
 * the nodes in the transaction keep what it sent while Citus forgets it for
 * the nodes that join later; on a ROLLBACK TO both drop it (and the local
 * values go back too). Either way the next statement forwards again.
 */
static void
fwd_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					 SubTransactionId parentSubid, void *arg)
{
	int			level;

	if (event != SUBXACT_EVENT_COMMIT_SUB && event != SUBXACT_EVENT_ABORT_SUB)
		return;
	level = GetCurrentTransactionNestLevel();
	if (fwd_level >= level)
	{
		fwd_known = false;
		fwd_dirty = true;
		fwd_level = level - 1;
	}
}

static void
fwd_executor_start(QueryDesc *queryDesc, int eflags)
{
	if (fwd_dirty)
		saas_citus_sync();
	if (prev_executor_start)
		prev_executor_start(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
}

/* A cursor opened before a request and read after it reaches the nodes here. */
static void
fwd_executor_run(QueryDesc *queryDesc, ScanDirection direction, uint64 count,
				 bool execute_once)
{
	if (fwd_dirty)
		saas_citus_sync();
	if (prev_executor_run)
		prev_executor_run(queryDesc, direction, count, execute_once);
	else
		standard_ExecutorRun(queryDesc, direction, count, execute_once);
}

/*
 * fwd_sets_request_id: whether a utility statement is the application's own
 * SET LOCAL saas.request_id (or SET, RESET inside a transaction block, a
 * function included), which names the request of its audit entries. Citus
 * forwards no such setting by default, and on a Citus cluster the entries
 * are written on the worker nodes: the new value is forwarded as the API's
 * own is, for the rest of the transaction. A session's value set outside a
 * transaction block is not: it outlives the transactions Citus forwards
 * settings to (docs/scale-out.md).
 */
static bool
fwd_sets_request_id(Node *node)
{
	VariableSetStmt *set;

	if (fwd_busy || node == NULL || !IsA(node, VariableSetStmt))
		return false;
	set = (VariableSetStmt *) node;
	return set->name != NULL && set->kind != VAR_SET_MULTI &&
		pg_strcasecmp(set->name, "saas.request_id") == 0 &&
		(set->is_local || IsTransactionBlock()) && saas_citus_loaded();
}

/*
 * Every utility statement but the transaction's own control (BEGIN, COMMIT,
 * SAVEPOINT ...) forwards what changed first; the application's own change
 * of the request id is forwarded before the next statement.
 */
static void
fwd_process_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
					ProcessUtilityContext context, ParamListInfo params,
					QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	bool		request_id = fwd_sets_request_id(pstmt->utilityStmt);

	if (fwd_dirty && !IsA(pstmt->utilityStmt, TransactionStmt))
		saas_citus_sync();
	if (prev_process_utility)
		prev_process_utility(pstmt, queryString, readOnlyTree, context, params,
							 queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
								queryEnv, dest, qc);
	if (request_id)
		saas_citus_propagate("saas.request_id");
}

/* saas_citus_init: from _PG_init. */
void
saas_citus_init(void)
{
	int			i;

	for (i = 0; i < (int) lengthof(fwd_names); i++)
		fwd_sent[i] = MemoryContextStrdup(TopMemoryContext, "");
	prev_executor_start = ExecutorStart_hook;
	ExecutorStart_hook = fwd_executor_start;
	prev_executor_run = ExecutorRun_hook;
	ExecutorRun_hook = fwd_executor_run;
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = fwd_process_utility;
	RegisterXactCallback(fwd_xact_callback, NULL);
	RegisterSubXactCallback(fwd_subxact_callback, NULL);
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
 * (25001). The extension acts as its owner where a password is set or
 * changed:
 * after the application's own writes to the same organization in the same
 * transaction, Citus refuses them (docs/scale-out.md, "Not yet" 2).
 */
bool
saas_citus_two_users_error(const ErrorData *edata)
{
	return edata->sqlerrcode == ERRCODE_ACTIVE_SQL_TRANSACTION && edata->message != NULL &&
		strstr(edata->message, "modified in this transaction by a different user") != NULL;
}
