/*-------------------------------------------------------------------------
 *
 * audit_verify.c
 *	  saas.audit_verify(org_id): recompute an organization's hash chain and
 *	  report the first entry that was edited, deleted or moved, or a cut
 *	  tail.
 *
 * The entries are read in seq order, in batches, and each is hashed again
 * (saas_audit_hash) and linked to the one before; the end of the chain is
 * then compared with the organization's head in saas._audit_heads. Both
 * reads use one snapshot. Who may verify which chain is decided here too.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "pg_saas.h"
#include "common/common.h"
#include "auth/auth.h"
#include "audit/audit.h"

PG_FUNCTION_INFO_V1(saas_audit_verify);

/* Rows read per fetch while verifying a chain. */
#define AUDIT_VERIFY_BATCH 1000

/* Saved plans (SPI_keepplan), prepared on first use in each backend. */
static SPIPlanPtr audit_plan_read_head = NULL;
static SPIPlanPtr audit_plan_read_chain = NULL;

/* The outcome of verifying one chain. */
typedef struct AuditVerdict
{
	bool		ok;
	int64		checked;
	int64		first_bad_seq;
	char		problem[256];
} AuditVerdict;

/*
 * audit_verify_authorize: who may verify which chain. A superuser or the
 * extension owner, any; a super_admin, any; an admin, its own
 * organization's only (another organization is "not found", so that its
 * existence does not leak); a plain user, none. An API key needs the scope
 * audit:read, as for reading the log: the verdict tells how many entries
 * there are and where the chain breaks. Returns whether the caller is a
 * superuser or the owner (who need no context).
 */
static bool
audit_verify_authorize(const pg_uuid_t *org_id)
{
	const SaasContext *ctx;

	if (superuser() || has_privs_of_role(GetUserId(), saas_extension_owner()))
		return true;
	ctx = saas_context_require_scope(SAAS_SCOPE_AUDIT_READ, "verify the audit log");
	if (strcmp(ctx->role, SAAS_ROLE_SUPER_ADMIN) == 0)
		return false;
	if (strcmp(ctx->role, SAAS_ROLE_ADMIN) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_FORBIDDEN),
				 errmsg("only an admin can verify the audit log")));
	if (memcmp(ctx->org_id.data, org_id->data, UUID_LEN) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_NOT_FOUND),
				 errmsg("organization not found")));
	return false;
}

/* audit_prepare_verify: the two reads of a verification. */
static void
audit_prepare_verify(void)
{
	Oid			types[1] = {UUIDOID};

	if (audit_plan_read_head == NULL)
		audit_plan_read_head = audit_keep(
										  "SELECT last_seq, last_hash FROM saas._audit_heads "
										  "WHERE org_id OPERATOR(pg_catalog.=) $1",
										  1, types);
	if (audit_plan_read_chain == NULL)
		audit_plan_read_chain = audit_keep(
										   "SELECT seq, id, occurred_at, actor_id, actor_role, action, entity,"
										   " entity_id, changes, request_id, prev_hash, hash "
										   "FROM saas.audit_log WHERE org_id OPERATOR(pg_catalog.=) $1 "
										   "ORDER BY seq",
										   1, types);
}

/* audit_verdict_bad: record the first problem found. */
static void
audit_verdict_bad(AuditVerdict *v, int64 seq, const char *fmt,...) pg_attribute_printf(3, 4);

static void
audit_verdict_bad(AuditVerdict *v, int64 seq, const char *fmt,...)
{
	va_list		ap;

	v->ok = false;
	v->first_bad_seq = seq;
	va_start(ap, fmt);
	vsnprintf(v->problem, sizeof(v->problem), fmt, ap);
	va_end(ap);
}

/* audit_get_text: a text column of an SPI row, or NULL. */
static const char *
audit_get_text(HeapTuple tup, TupleDesc desc, int attno)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, attno, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

/* audit_get_uuid: a uuid column of an SPI row; false when NULL. */
static bool
audit_get_uuid(HeapTuple tup, TupleDesc desc, int attno, pg_uuid_t *out)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, attno, &isnull);

	if (isnull)
		return false;
	*out = *DatumGetUUIDP(d);
	return true;
}

/* audit_get_hash: a 32-byte hash column; false when NULL or the wrong size. */
static bool
audit_get_hash(HeapTuple tup, TupleDesc desc, int attno, unsigned char *out)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, attno, &isnull);
	bytea	   *b;

	if (isnull)
		return false;
	b = DatumGetByteaPP(d);
	if (VARSIZE_ANY_EXHDR(b) != SAAS_AUDIT_HASH_LEN)
		return false;
	memcpy(out, VARDATA_ANY(b), SAAS_AUDIT_HASH_LEN);
	return true;
}

/*
 * audit_verify_row: check one entry against the chain so far (expected seq
 * and the previous entry's hash). On success moves the chain forward.
 */
static bool
audit_verify_row(AuditVerdict *v, const pg_uuid_t *org_id, HeapTuple tup,
				 TupleDesc desc, int64 *expected, unsigned char *prev)
{
	SaasAuditEntry e;
	unsigned char stored_prev[SAAS_AUDIT_HASH_LEN];
	unsigned char stored_hash[SAAS_AUDIT_HASH_LEN];
	unsigned char hash[SAAS_AUDIT_HASH_LEN];
	bool		isnull;

	memset(&e, 0, sizeof(e));
	e.org_id = *org_id;
	e.seq = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
	if (e.seq > *expected)
	{
		if (e.seq == *expected + 1)
			audit_verdict_bad(v, *expected,
							  "entry " INT64_FORMAT " is missing: the chain jumps from " INT64_FORMAT " to " INT64_FORMAT " (entry deleted)",
							  *expected, *expected - 1, e.seq);
		else
			audit_verdict_bad(v, *expected,
							  "entries " INT64_FORMAT " to " INT64_FORMAT " are missing: the chain jumps from " INT64_FORMAT " to " INT64_FORMAT " (entries deleted)",
							  *expected, e.seq - 1, *expected - 1, e.seq);
		return false;
	}
	if (e.seq < *expected)
	{
		audit_verdict_bad(v, e.seq, "entry " INT64_FORMAT " is out of sequence", e.seq);
		return false;
	}
	if (!audit_get_hash(tup, desc, 11, stored_prev) ||
		memcmp(stored_prev, prev, SAAS_AUDIT_HASH_LEN) != 0)
	{
		audit_verdict_bad(v, e.seq,
						  "entry " INT64_FORMAT " does not link to the entry before it (entries deleted, inserted or reordered)",
						  e.seq);
		return false;
	}

	e.has_actor_id = audit_get_uuid(tup, desc, 4, &e.actor_id);
	if (!audit_get_uuid(tup, desc, 2, &e.id))
		memset(&e.id, 0, sizeof(e.id));
	e.occurred_at = DatumGetTimestampTz(SPI_getbinval(tup, desc, 3, &isnull));
	e.actor_role = audit_get_text(tup, desc, 5);
	e.action = audit_get_text(tup, desc, 6);
	e.entity = audit_get_text(tup, desc, 7);
	e.has_entity_id = audit_get_uuid(tup, desc, 8, &e.entity_id);
	e.changes = DatumGetJsonbP(SPI_getbinval(tup, desc, 9, &isnull));
	e.request_id = audit_get_text(tup, desc, 10);
	saas_audit_hash(stored_prev, &e, hash);
	if (!audit_get_hash(tup, desc, 12, stored_hash) ||
		memcmp(stored_hash, hash, SAAS_AUDIT_HASH_LEN) != 0)
	{
		audit_verdict_bad(v, e.seq,
						  "entry " INT64_FORMAT " does not match its hash (entry edited or forged)", e.seq);
		return false;
	}
	memcpy(prev, stored_hash, SAAS_AUDIT_HASH_LEN);
	(*expected)++;
	return true;
}

/*
 * audit_verify_chain: walk one organization's chain in seq order, then
 * compare its end with the head. Both reads use the same snapshot, so a
 * chain being appended to concurrently is seen consistently. Entries this
 * transaction has not written yet (they are written at commit) are not
 * part of the chain yet.
 */
static void
audit_verify_chain(const pg_uuid_t *org_id, AuditVerdict *v)
{
	SaasElevation elev;
	Datum		args[1];
	Portal		portal;
	bool		has_head = false;
	int64		head_seq = 0;
	unsigned char head_hash[SAAS_AUDIT_HASH_LEN];
	bool		head_hash_ok = false;
	unsigned char prev[SAAS_AUDIT_HASH_LEN] = {0};
	int64		expected = 1;
	bool		broken = false;

	memset(v, 0, sizeof(*v));
	v->ok = true;

	/*
	 * One snapshot for both reads, new enough to see what this transaction
	 * wrote (a big transaction writes entries early).
	 */
	CommandCounterIncrement();
	PushCopiedSnapshot(ActiveSnapshotSet() ? GetActiveSnapshot() : GetTransactionSnapshot());
	UpdateActiveSnapshotCommandId();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	saas_elevate(&elev);
	saas_citus_nested_reads();
	audit_prepare_verify();
	args[0] = UUIDPGetDatum(org_id);

	if (SPI_execute_plan(audit_plan_read_head, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the audit chain head");
	if (SPI_processed == 1)
	{
		bool		isnull;

		has_head = true;
		head_seq = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		head_hash_ok = audit_get_hash(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, head_hash);
	}

	portal = SPI_cursor_open(NULL, audit_plan_read_chain, args, NULL, true);
	while (!broken)
	{
		uint64		i;

		CHECK_FOR_INTERRUPTS();
		SPI_cursor_fetch(portal, true, AUDIT_VERIFY_BATCH);
		if (SPI_processed == 0)
			break;
		for (i = 0; i < SPI_processed && !broken; i++)
		{
			v->checked++;
			broken = !audit_verify_row(v, org_id, SPI_tuptable->vals[i],
									   SPI_tuptable->tupdesc, &expected, prev);
		}
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);

	if (!broken)
	{
		int64		last_seq = expected - 1;

		if (!has_head)
		{
			if (last_seq > 0)
				audit_verdict_bad(v, 1, "the chain has entries but no head (head deleted)");
		}
		else if (head_seq == last_seq + 1)
			audit_verdict_bad(v, head_seq,
							  "entry " INT64_FORMAT " is missing at the end of the chain (tail deleted)",
							  head_seq);
		else if (head_seq > last_seq)
			audit_verdict_bad(v, last_seq + 1,
							  "entries " INT64_FORMAT " to " INT64_FORMAT " are missing at the end of the chain (tail deleted)",
							  last_seq + 1, head_seq);
		else if (head_seq < last_seq)
			audit_verdict_bad(v, head_seq + 1,
							  "entry " INT64_FORMAT " is beyond the chain head (entry added outside the audit trigger)",
							  head_seq + 1);
		else if (!head_hash_ok || memcmp(head_hash, prev, SAAS_AUDIT_HASH_LEN) != 0)
			audit_verdict_bad(v, last_seq,
							  "entry " INT64_FORMAT " does not match the chain head (tail replaced)",
							  last_seq);
	}

	saas_unelevate(&elev);
	SPI_finish();
	PopActiveSnapshot();
}

/* audit_verdict_values: a verdict as the row (ok, checked, first_bad_seq, problem). */
static void
audit_verdict_values(const AuditVerdict *v, Datum *values, bool *nulls)
{
	values[0] = BoolGetDatum(v->ok);
	values[1] = Int64GetDatum(v->checked);
	values[2] = Int64GetDatum(v->first_bad_seq);
	values[3] = v->ok ? (Datum) 0 : CStringGetTextDatum(v->problem);
	nulls[0] = nulls[1] = false;
	nulls[2] = nulls[3] = v->ok;
}

/*
 * On Citus the chain lives on the node of the organization's shards; read
 * there as the owner from the coordinator, it would travel over the owner's
 * connection, which Citus refuses once the caller has written those
 * placements in the transaction (25001). So a caller that is not the owner
 * has it verified there over its own connection: saas._audit_verify_here
 * runs on that node, checks the forwarded context's right as this function
 * does, and reads the chain locally (as saas._context_facts does).
 */
static SaasPlan plan_verify_routed = {
	"SELECT (v).ok, (v).checked, (v).first_bad_seq, (v).problem"
	" FROM (SELECT count(*) AS n, saas._audit_verify_here($1) AS v"
	"         FROM saas.users WHERE org_id = $1) q",
	1, {UUIDOID}
};

/* audit_verify_routed: the verdict from the organization's node (Citus). */
static void
audit_verify_routed(const pg_uuid_t *org_id, AuditVerdict *v)
{
	Datum		args[1] = {UUIDPGetDatum(org_id)};
	bool		isnull;

	memset(v, 0, sizeof(*v));
	saas_spi_connect();
	if (!saas_caller_row(&plan_verify_routed, args, NULL))
		elog(ERROR, "could not verify the audit chain on the organization's node");
	v->ok = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	v->checked = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	v->first_bad_seq = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
	if (!v->ok)
		strlcpy(v->problem, SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4),
				sizeof(v->problem));
	SPI_finish();
}

PG_FUNCTION_INFO_V1(saas_audit_verify_here);

/*
 * SQL: saas._audit_verify_here(org_id uuid, OUT ok, OUT checked,
 * OUT first_bad_seq, OUT problem) RETURNS record: the verdict read on this
 * node, for a caller with the right to it (see plan_verify_routed).
 */
Datum
saas_audit_verify_here(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *org_id = PG_GETARG_UUID_P(0);
	TupleDesc	desc;
	AuditVerdict v;
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "saas._audit_verify_here must return a record");
	(void) audit_verify_authorize(org_id);
	audit_verify_chain(org_id, &v);
	audit_verdict_values(&v, values, nulls);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}

/*
 * SQL: saas.audit_verify(org_id uuid) RETURNS TABLE(ok, checked,
 * first_bad_seq, problem). Recomputes the organization's chain and reports
 * the first entry that was edited, deleted or moved, or a cut tail.
 * "checked" counts the entries read, the bad one included.
 */
Datum
saas_audit_verify(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *org_id = PG_GETARG_UUID_P(0);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	AuditVerdict v;
	bool		privileged;
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};

	privileged = audit_verify_authorize(org_id);
	InitMaterializedSRF(fcinfo, 0);
	/* The owner reads the chain from here: no second user on the placements. */
	if (!privileged && saas_facts_routed())
		audit_verify_routed(org_id, &v);
	else
		audit_verify_chain(org_id, &v);

	audit_verdict_values(&v, values, nulls);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}
