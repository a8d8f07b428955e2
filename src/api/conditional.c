/*-------------------------------------------------------------------------
 *
 * conditional.c
 *	  DELETE with If-Match: the row goes only if it is still the version the
 *	  client saw; else 412 and nothing changes.
 *
 * The row is locked and its version read first, so no update can slip in
 * between the comparison and the delete.  The delete runs before the
 * comparison: its own errors (404, 403, 409) come first, as RFC 9110
 * 13.2.1 orders them; a stale version then raises the 412, and the
 * router's subtransaction around the operation undoes the delete.
 * A row the caller cannot see has no version to compare: the delete
 * answers 404 for it as without If-Match.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"

#include "pg_saas.h"
#include "common/common.h"
#include "auth/auth.h"
#include "api/api.h"

/* Users are read within the caller's organization, as their operations do. */
static SaasPlan plan_user_version = {
	"SELECT version FROM saas.users WHERE org_id = $1 AND id = $2 FOR UPDATE",
	2, {UUIDOID, UUIDOID}
};

static SaasPlan plan_org_version = {
	"SELECT version FROM saas.organizations WHERE id = $1 FOR UPDATE",
	1, {UUIDOID}
};

/* lock_version: the row's version, locked; -1 when the caller cannot see it. */
static int64
lock_version(bool is_user, const pg_uuid_t *id)
{
	Datum		vals[2];
	int64		version = -1;
	bool		isnull;

	saas_spi_connect();
	if (is_user)
	{
		vals[0] = saas_uuid_datum(&saas_context_require()->org_id);
		vals[1] = saas_uuid_datum(id);
	}
	else
		vals[0] = saas_uuid_datum(id);
	if (saas_exec(is_user ? &plan_user_version : &plan_org_version, vals, NULL, false, 1) ==
		SPI_OK_SELECT && SPI_processed == 1)
	{
		Datum		v = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			version = DatumGetInt64(v);
	}
	SPI_finish();
	return version;
}

/*
 * saas_op_delete_if_match: run del(id) (a user's or an organization's
 * delete, by entity) only if the row's version is if_version; -1: no
 * condition. Called by the router, which runs every operation in a
 * subtransaction of its own: the 412 raised after the delete rolls the
 * delete back with it.
 */
void
saas_op_delete_if_match(const char *entity, void (*del) (const pg_uuid_t *id),
						const pg_uuid_t *id, int64 if_version)
{
	int64		current;

	if (if_version < 0)
	{
		del(id);
		return;
	}
	current = lock_version(strcmp(entity, "user") == 0, id);
	del(id);
	if (current >= 0 && current != if_version)
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_PRECONDITION),
				 errmsg("%s was modified since version " INT64_FORMAT, entity, if_version),
				 errdetail("The current version is " INT64_FORMAT ".", current)));
}
