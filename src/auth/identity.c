/*-------------------------------------------------------------------------
 *
 * identity.c
 *	  Acting as the extension's owner for the few steps that touch private
 *	  tables (credentials, signing keys, the audit log).
 *
 * Callers of the API run as themselves (members of saas_api), so row-level
 * security applies to everything they do. Only narrow, explicit steps switch
 * identity, the same way a SECURITY DEFINER function would; an error inside
 * is safe because (sub)transaction abort restores the previous identity.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/pg_extension.h"
#include "miscadmin.h"
#include "fmgr.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"

#include "pg_saas.h"
#include "common/common.h"
#include "auth/auth.h"

/*
 * saas_extension_owner: the role that owns the pg_saas extension in this
 * database. Looked up each time: it is cheap and survives DROP/CREATE.
 */
Oid
saas_extension_owner(void)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	Oid			owner = InvalidOid;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber,
				F_NAMEEQ, CStringGetDatum("pg_saas"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
		owner = ((Form_pg_extension) GETSTRUCT(tup))->extowner;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);

	if (!OidIsValid(owner))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"pg_saas\" is not installed in this database")));
	return owner;
}

/*
 * saas_elevate: switch to the extension owner until saas_unelevate, with
 * search_path pinned: the caller's path must never resolve an operator or
 * function of a query that runs as the owner (a caller's "=" in a schema
 * ahead of pg_catalog would run with the owner's rights), nor of a plan
 * prepared there and kept.
 */
void
saas_elevate(SaasElevation *e)
{
	Oid			owner = saas_extension_owner();

	GetUserIdAndSecContext(&e->save_userid, &e->save_sec_context);
	SetUserIdAndSecContext(owner,
						   e->save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	e->guc_nest = saas_env_push();
}

/* saas_unelevate: back to the identity and settings saved by saas_elevate. */
void
saas_unelevate(const SaasElevation *e)
{
	saas_env_pop(e->guc_nest);
	SetUserIdAndSecContext(e->save_userid, e->save_sec_context);
}

/*
 * saas_elevate_citus: saas_elevate where Citus is loaded (returns true; then
 * call saas_unelevate), nothing on a single node (false). For a request's
 * write section that needs the trusted context on the worker nodes: only the
 * extension's own connections honour it there (context.c), and Citus opens
 * them as the current user. On a single node the section runs as the caller,
 * under row-level security, as it always has.
 */
bool
saas_elevate_citus(SaasElevation *e)
{
	if (!saas_citus_loaded())
		return false;
	saas_elevate(e);
	return true;
}

/*
 * saas_owner_row: run a kept read-only plan as the extension owner, in an
 * SPI connection the caller opened; true when it returned exactly one row
 * (in SPI_tuptable). For the checks of a context's facts, which must not
 * depend on the caller's policies; on a Citus node they read local shards
 * from inside a shard's query (saas_citus_nested_reads).
 */
bool
saas_owner_row(struct SaasPlan *plan, Datum *args)
{
	SaasElevation elev;
	int			ret;

	saas_elevate(&elev);
	saas_citus_nested_reads();
	ret = saas_exec(plan, args, NULL, true, 1);
	saas_unelevate(&elev);
	return ret == SPI_OK_SELECT && SPI_processed == 1;
}

/*
 * saas_caller_row: the same as the caller, with the operation's pinned
 * environment: the routed reads of a context's facts (saas_facts_routed).
 */
bool
saas_caller_row(struct SaasPlan *plan, Datum *args, const char *nulls)
{
	int			nest = saas_env_push();
	int			ret;

	saas_citus_nested_reads();
	ret = saas_exec(plan, args, nulls, true, 1);
	saas_env_pop(nest);
	return ret == SPI_OK_SELECT && SPI_processed == 1;
}

/*
 * saas_invoker_privileged: whether whoever runs the statement, outside any
 * SECURITY DEFINER function or elevated step, is a superuser or the
 * extension's owner. Only they may change rows without a tenant context.
 */
bool
saas_invoker_privileged(void)
{
	Oid			outer = GetOuterUserId();

	return superuser_arg(outer) || outer == saas_extension_owner();
}

PG_FUNCTION_INFO_V1(saas_invoker_privileged_sql);

/* SQL: saas._invoker_privileged() RETURNS boolean (for the rule triggers). */
Datum
saas_invoker_privileged_sql(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(saas_invoker_privileged());
}
