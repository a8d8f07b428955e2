/*-------------------------------------------------------------------------
 *
 * schema_version.c
 *	  Which version of pg_saas's database objects this database has: the
 *	  library may be newer than the objects.
 *
 * Between `make install` of a new release and `ALTER EXTENSION pg_saas
 * UPDATE` in each database (docs/operations.md, "Upgrade"), the new
 * pg_saas.so serves databases whose tables and functions are still the
 * previous release's. The code that uses objects a release added asks here
 * first and does without them (no refresh token in a login answer, no API
 * key, a 404 with a hint for the new routes), so the application keeps
 * working until the database is upgraded. Read once per transaction.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/pg_extension.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"

#include "pg_saas.h"
#include "common/common.h"

static LocalTransactionId cached_lxid = InvalidLocalTransactionId;
static int	cached_version = 0;

/* version_number: "0.2.0" as 200 (major * 10000 + minor * 100 + patch); 0 if not of that form. */
static int
version_number(const char *v)
{
	int			major,
				minor,
				patch;
	char		rest;

	if (sscanf(v, "%d.%d.%d%c", &major, &minor, &patch, &rest) != 3 ||
		major < 0 || minor < 0 || minor > 99 || patch < 0 || patch > 99)
		return 0;
	return major * 10000 + minor * 100 + patch;
}

/* installed_version: the extversion of pg_saas in this database (0: not installed). */
static int
installed_version(void)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	int			v = 0;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum("pg_saas"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, Anum_pg_extension_extversion, RelationGetDescr(rel), &isnull);

		if (!isnull)
			v = version_number(TextDatumGetCString(d));
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return v;
}

/*
 * saas_schema_at_least: does this database's pg_saas have the objects of
 * release version (like "0.2.0")? False outside a transaction.
 */
bool
saas_schema_at_least(const char *version)
{
	if (!IsTransactionState())
		return false;
	if (MyProc->lxid != cached_lxid)
	{
		cached_version = installed_version();
		cached_lxid = MyProc->lxid;
	}
	return cached_version >= version_number(version);
}

/* saas_schema_version_text: the installed version, for messages ("0.1.0"). */
char *
saas_schema_version_text(void)
{
	int			v = installed_version();

	return psprintf("%d.%d.%d", v / 10000, (v / 100) % 100, v % 100);
}
