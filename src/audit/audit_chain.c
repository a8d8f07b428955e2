/*-------------------------------------------------------------------------
 *
 * audit_chain.c
 *	  Writing the pending audit entries onto each organization's hash chain
 *	  at commit: the chain lock, the chain end, the inserts, the move of the
 *	  head, and the transaction callbacks that drive them.
 *
 * The entries are written when the transaction commits, as part of it
 * (XACT_EVENT_PRE_COMMIT): a rolled-back transaction or savepoint leaves
 * none. Writing then is what keeps the chain cheap and deadlock-free:
 * writers of one organization's chain must be serialized so that seq has
 * no gaps and every entry links to the one before, but a lock held from a
 * transaction's first change until its commit would close a cycle with any
 * row lock another transaction of that organization holds. Taken at commit,
 * the chain lock is the last lock a transaction waits for, and it is held
 * for the few statements that append the entries and move the head.
 *
 * Locking rule: the chain lock of an organization is an advisory lock in a
 * namespace of its own (AUDIT_LOCK_SPACE), transaction-scoped; a
 * transaction takes the locks of its organizations in uuid order. Under
 * that lock the chain end is read, and the head moved, directly on the
 * heap with SnapshotSelf: that sees what the previous lock holder
 * committed at any isolation level, and takes no SIREAD locks (through
 * MVCC reads, every SERIALIZABLE writer of an organization would conflict
 * with the one before it). A transaction with more than AUDIT_PENDING_MAX
 * (audit.c) entries writes them early (outside subtransactions), and then
 * holds its chain locks until commit.
 *
 * Entries are inserted as the extension owner: callers (saas_api) may only
 * read the log, and only their own organization's, as an admin.
 *
 * On Citus (docs/scale-out.md) the log and the heads are distributed by
 * org_id, colocated with the tenant tables, and the row triggers run on the
 * shards and on every copy of a reference table. An organization's chain is
 * written on the node that holds its shards of saas.audit_log and
 * saas._audit_heads, into those shard tables themselves (the same heap
 * reads and moves, under a chain lock that is then that node's): a row
 * change recorded on a node that does not hold them (the other copies of a
 * reference table) is left to the node that does, so it is recorded once.
 * An entry that is not a row change (saas._audit_event) made on such a node
 * travels there as an insert into saas._audit_outbox, routed by org_id,
 * whose trigger records it on that node (audit_chain_elsewhere tells).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "commands/extension.h"
#include "pg_saas.h"
#include "common/common.h"
#include "auth/auth.h"
#include "audit/audit.h"

/*
 * True only while audit_write_out writes, so that the guard triggers of the
 * audit tables (saas_audit_guard) can tell its own writes from anyone
 * else's. Backend-local: no SQL can set it.
 */
bool		audit_appending = false;

/* Saved plans (SPI_keepplan), prepared on first use in each backend. */
static SPIPlanPtr audit_plan_new_head = NULL;
static SPIPlanPtr audit_plan_append = NULL;

/* Advisory lock namespace of the chain locks (field4 of the lock tag; SQL's are 1 and 2). */
#define AUDIT_LOCK_SPACE	0x5341

/*
 * Where an organization's chain is written: the tables (with their primary
 * key indexes) and the plans that insert into them. On a single node, the
 * tables of the extension and the kept plans; on Citus, the organization's
 * shards on this node, and plans made for them.
 */
typedef struct AuditTargets
{
	const char *log;
	const char *log_pkey;
	const char *heads;
	const char *heads_pkey;
	SPIPlanPtr	new_head;
	SPIPlanPtr	append;
} AuditTargets;

/* ---------------------------------------------------------------------
 * Appending to a chain
 * ---------------------------------------------------------------------
 */


/* audit_keep: prepare a statement once per backend and keep its plan. */
SPIPlanPtr
audit_keep(const char *sql, int nargs, Oid *argtypes)
{
	SPIPlanPtr	plan = SPI_prepare(sql, nargs, argtypes);

	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for audit statement: %s",
			 SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed for audit statement");
	return plan;
}

/* audit_prepare_append: the statements that write entries. */
static void
audit_prepare_append(void)
{
	if (audit_plan_new_head == NULL)
	{
		Oid			types[2] = {UUIDOID, BYTEAOID};

		audit_plan_new_head = audit_keep(
										 "INSERT INTO saas._audit_heads (org_id, last_seq, last_hash) "
										 "VALUES ($1, 0, $2) ON CONFLICT (org_id) DO NOTHING",
										 2, types);
	}
	if (audit_plan_append == NULL)
	{
		Oid			types[13] = {UUIDOID, INT8OID, UUIDOID, TIMESTAMPTZOID,
			UUIDOID, TEXTOID, TEXTOID, TEXTOID, UUIDOID, JSONBOID, TEXTOID,
		BYTEAOID, BYTEAOID};

		audit_plan_append = audit_keep(
									   "INSERT INTO saas.audit_log (org_id, seq, id, occurred_at, actor_id,"
									   " actor_role, action, entity, entity_id, changes, request_id,"
									   " prev_hash, hash) "
									   "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
									   13, types);
	}
}

/* audit_bytea: a bytea Datum holding len bytes. */
static Datum
audit_bytea(const unsigned char *data, int len)
{
	bytea	   *b = palloc(VARHDRSZ + len);

	SET_VARSIZE(b, VARHDRSZ + len);
	memcpy(VARDATA(b), data, len);
	return PointerGetDatum(b);
}

/* audit_text_or_null: value and null flag of an optional text parameter. */
static Datum
audit_text_or_null(const char *s, char *null)
{
	*null = s ? ' ' : 'n';
	return s ? CStringGetTextDatum(s) : (Datum) 0;
}

/*
 * audit_exec_latest: run a kept plan with the latest snapshot (and no
 * cross-check), so that a REPEATABLE READ transaction sees a head that a
 * transaction committed after its snapshot was taken.
 */
static int
audit_exec_latest(SPIPlanPtr plan, Datum *args, const char *nulls, long count)
{
	return SPI_execute_snapshot(plan, args, nulls, GetLatestSnapshot(),
								InvalidSnapshot, false, true, count);
}

/* audit_lock_chain: the organization's chain lock, until the transaction ends. */
static void
audit_lock_chain(const pg_uuid_t *org_id)
{
	LOCKTAG		tag;
	const unsigned char *b = org_id->data;
	uint32		k1 = ((uint32) b[0] << 24 | (uint32) b[1] << 16 | (uint32) b[2] << 8 | b[3]) ^
		((uint32) b[8] << 24 | (uint32) b[9] << 16 | (uint32) b[10] << 8 | b[11]);
	uint32		k2 = ((uint32) b[4] << 24 | (uint32) b[5] << 16 | (uint32) b[6] << 8 | b[7]) ^
		((uint32) b[12] << 24 | (uint32) b[13] << 16 | (uint32) b[14] << 8 | b[15]);

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, k1, k2, AUDIT_LOCK_SPACE);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
}

/* audit_hash_datum: a 32-byte hash column value, or a corrupted-chain error. */
static void
audit_hash_datum(Datum d, bool isnull, unsigned char *out)
{
	bytea	   *h = isnull ? NULL : DatumGetByteaPP(d);

	if (h == NULL || VARSIZE_ANY_EXHDR(h) != SAAS_AUDIT_HASH_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the audit chain of this organization is corrupted"),
				 errhint("Run saas.audit_verify() for the organization.")));
	memcpy(out, VARDATA_ANY(h), SAAS_AUDIT_HASH_LEN);
}

/*
 * audit_read_end: the newest committed (or own) row of org in rel, by a
 * backward scan of index, whose first column is org_id; "after" bounds the
 * second column from below when given. Reads with SnapshotSelf, directly:
 * the chain lock makes that exact, it sees what the previous lock holder
 * committed whatever the isolation level, and it takes no SIREAD locks
 * (SERIALIZABLE transactions would otherwise all conflict on the heads).
 */
static bool
audit_read_end(const char *relname, const char *indexname, const pg_uuid_t *org_id,
			   const int64 *after, const char *seqcol, const char *hashcol,
			   int64 *seq, unsigned char *hash)
{
	Oid			nsp = get_namespace_oid("saas", false);
	Oid			relid = get_relname_relid(relname, nsp);
	Oid			indexid = get_relname_relid(indexname, nsp);
	Relation	rel;
	Relation	index;
	IndexScanDesc scan;
	TupleTableSlot *slot;
	ScanKeyData keys[2];
	bool		found;
	bool		isnull;

	if (!OidIsValid(relid) || !OidIsValid(indexid))
		elog(ERROR, "audit table saas.%s or its index is missing", relname);
	rel = table_open(relid, AccessShareLock);
	index = index_open(indexid, AccessShareLock);
	ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_UUID_EQ, UUIDPGetDatum(org_id));
	if (after)
		ScanKeyInit(&keys[1], 2, BTGreaterStrategyNumber, F_INT8GT, Int64GetDatum(*after));
	slot = table_slot_create(rel, NULL);
	scan = index_beginscan(rel, index, SnapshotSelf, after ? 2 : 1, 0);
	index_rescan(scan, keys, after ? 2 : 1, NULL, 0);
	found = index_getnext_slot(scan, BackwardScanDirection, slot);
	if (found)
	{
		TupleDesc	desc = RelationGetDescr(rel);
		Datum		d;

		d = slot_getattr(slot, SPI_fnumber(desc, seqcol), &isnull);
		*seq = isnull ? 0 : DatumGetInt64(d);
		d = slot_getattr(slot, SPI_fnumber(desc, hashcol), &isnull);
		audit_hash_datum(d, isnull, hash);
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(index, AccessShareLock);
	table_close(rel, AccessShareLock);
	return found;
}

/*
 * audit_chain_end: seq and hash of the end of the organization's chain:
 * its head, or the newest entry beyond the head if there is one (written by
 * hand, or early by this transaction). Creates the head (seq 0, zero hash)
 * on first use. Caller holds the chain lock.
 */
static void
audit_chain_end(const AuditTargets *t, const pg_uuid_t *org_id, int64 *last_seq,
				unsigned char *last_hash)
{
	int64		head_seq;

	if (!audit_read_end(t->heads, t->heads_pkey, org_id, NULL,
						"last_seq", "last_hash", last_seq, last_hash))
	{
		Datum		args[2];

		*last_seq = 0;
		memset(last_hash, 0, SAAS_AUDIT_HASH_LEN);
		args[0] = UUIDPGetDatum(org_id);
		args[1] = audit_bytea(last_hash, SAAS_AUDIT_HASH_LEN);
		if (audit_exec_latest(t->new_head, args, NULL, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not create the audit chain head");
	}
	head_seq = *last_seq;
	(void) audit_read_end(t->log, t->log_pkey, org_id, &head_seq,
						  "seq", "hash", last_seq, last_hash);
}

/*
 * audit_move_head: point the organization's head at (seq, hash). Done
 * directly on the heap, like the read of the chain end and for the same
 * reason: an UPDATE statement would read the head with an MVCC snapshot,
 * and in SERIALIZABLE transactions every writer of an organization would
 * then conflict with the one before it. The head's key never changes, so
 * the pkey needs a new entry only when the update is not HOT. Caller holds
 * the chain lock.
 */
static void
audit_move_head(const AuditTargets *t, const pg_uuid_t *org_id, int64 seq,
				const unsigned char *hash)
{
	Oid			nsp = get_namespace_oid("saas", false);
	Oid			relid = get_relname_relid(t->heads, nsp);
	Oid			indexid = get_relname_relid(t->heads_pkey, nsp);
	Relation	rel;
	Relation	index;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	oldtup;
	HeapTuple	newtup;
	TupleDesc	desc;
	Datum	   *values;
	bool	   *nulls;
	bool	   *replace;
	int			seqcol,
				hashcol;

	if (!OidIsValid(relid) || !OidIsValid(indexid))
		elog(ERROR, "audit table saas.%s or its index is missing", t->heads);
	/* A head created by this very write-out must be visible to the update. */
	CommandCounterIncrement();
	rel = table_open(relid, RowExclusiveLock);
	index = index_open(indexid, RowExclusiveLock);
	desc = RelationGetDescr(rel);
	ScanKeyInit(&key, SPI_fnumber(desc, "org_id"), BTEqualStrategyNumber, F_UUID_EQ,
				UUIDPGetDatum(org_id));
	scan = systable_beginscan(rel, indexid, true, SnapshotSelf, 1, &key);
	oldtup = systable_getnext(scan);
	if (!HeapTupleIsValid(oldtup))
		elog(ERROR, "audit chain head vanished");
	oldtup = heap_copytuple(oldtup);
	systable_endscan(scan);

	values = palloc0(sizeof(Datum) * desc->natts);
	nulls = palloc0(sizeof(bool) * desc->natts);
	replace = palloc0(sizeof(bool) * desc->natts);
	seqcol = SPI_fnumber(desc, "last_seq");
	hashcol = SPI_fnumber(desc, "last_hash");
	values[seqcol - 1] = Int64GetDatum(seq);
	replace[seqcol - 1] = true;
	values[hashcol - 1] = audit_bytea(hash, SAAS_AUDIT_HASH_LEN);
	replace[hashcol - 1] = true;
	newtup = heap_modify_tuple(oldtup, desc, values, nulls, replace);
	simple_heap_update(rel, &oldtup->t_self, newtup);
	if (!HeapTupleIsHeapOnly(newtup))
	{
		Datum		ivalues[1];
		bool		inulls[1] = {false};

		ivalues[0] = UUIDPGetDatum(org_id);
		(void) index_insert(index, ivalues, inulls, &newtup->t_self, rel,
							UNIQUE_CHECK_YES, false, BuildIndexInfo(index));
	}
	index_close(index, RowExclusiveLock);
	table_close(rel, RowExclusiveLock);
}

/* audit_insert_entry: insert one entry with its place in the chain. */
static void
audit_insert_entry(const AuditTargets *t, const SaasAuditEntry *e, const unsigned char *prev,
				   const unsigned char *hash)
{
	Datum		args[13];
	char		nulls[13];

	memset(nulls, ' ', sizeof(nulls));
	args[0] = UUIDPGetDatum(&e->org_id);
	args[1] = Int64GetDatum(e->seq);
	args[2] = UUIDPGetDatum(&e->id);
	args[3] = TimestampTzGetDatum(e->occurred_at);
	args[4] = UUIDPGetDatum(&e->actor_id);
	if (!e->has_actor_id)
		nulls[4] = 'n';
	args[5] = audit_text_or_null(e->actor_role, &nulls[5]);
	args[6] = CStringGetTextDatum(e->action);
	args[7] = CStringGetTextDatum(e->entity);
	args[8] = UUIDPGetDatum(&e->entity_id);
	if (!e->has_entity_id)
		nulls[8] = 'n';
	args[9] = JsonbPGetDatum(e->changes);
	args[10] = audit_text_or_null(e->request_id, &nulls[10]);
	args[11] = audit_bytea(prev, SAAS_AUDIT_HASH_LEN);
	args[12] = audit_bytea(hash, SAAS_AUDIT_HASH_LEN);
	if (SPI_execute_plan(t->append, args, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not append to the audit log");
}

/*
 * audit_write_org: append the pending entries of one organization, in the
 * order the changes happened, and move its head onto the last of them.
 */
/*
 * audit_citus_targets: on Citus, with saas.audit_log distributed, the
 * organization's shards of the log and the heads, when this node holds
 * them. Returns false when Citus does not distribute the log (single-node
 * targets stay), sets *here to whether the shards are on this node.
 */
static bool
audit_citus_targets(const pg_uuid_t *org_id, AuditTargets *t, bool *here, bool prepare)
{
	static const char *sql =
		"SELECT pg_catalog.get_shard_id_for_distribution_column('saas.audit_log'::regclass, $1),"
		" pg_catalog.get_shard_id_for_distribution_column('saas._audit_heads'::regclass, $1)"
		" FROM pg_catalog.pg_dist_partition WHERE logicalrelid = 'saas.audit_log'::regclass";
	Oid			types[1] = {UUIDOID};
	Datum		args[1];
	bool		isnull;
	int64		log_shard,
				heads_shard;
	Oid			nsp = get_namespace_oid("saas", false);
	char		values[2][32];

	*here = true;
	if (!saas_citus_loaded() || !OidIsValid(get_extension_oid("citus", true)))
		return false;
	args[0] = UUIDPGetDatum(org_id);
	if (SPI_execute_with_args(sql, 1, types, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not find the audit shards of an organization");
	if (SPI_processed == 0)
		return false;
	log_shard = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	heads_shard = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	snprintf(values[0], sizeof(values[0]), INT64_FORMAT, log_shard);
	snprintf(values[1], sizeof(values[1]), INT64_FORMAT, heads_shard);
	t->log = psprintf("audit_log_%s", values[0]);
	t->log_pkey = psprintf("audit_log_pkey_%s", values[0]);
	t->heads = psprintf("_audit_heads_%s", values[1]);
	t->heads_pkey = psprintf("audit_heads_pkey_%s", values[1]);
	*here = OidIsValid(get_relname_relid(t->log, nsp)) && OidIsValid(get_relname_relid(t->heads, nsp));
	if (*here && prepare)
	{
		Oid			head_types[2] = {UUIDOID, BYTEAOID};
		Oid			append_types[13] = {UUIDOID, INT8OID, UUIDOID, TIMESTAMPTZOID,
			UUIDOID, TEXTOID, TEXTOID, TEXTOID, UUIDOID, JSONBOID, TEXTOID,
		BYTEAOID, BYTEAOID};

		t->new_head = SPI_prepare(psprintf("INSERT INTO saas.%s (org_id, last_seq, last_hash) "
										   "VALUES ($1, 0, $2) ON CONFLICT (org_id) DO NOTHING", t->heads),
								  2, head_types);
		t->append = SPI_prepare(psprintf("INSERT INTO saas.%s (org_id, seq, id, occurred_at, actor_id,"
										 " actor_role, action, entity, entity_id, changes, request_id,"
										 " prev_hash, hash) "
										 "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
										 t->log),
								13, append_types);
		if (t->new_head == NULL || t->append == NULL)
			elog(ERROR, "could not prepare the audit statements of a shard");
	}
	return true;
}

/*
 * audit_chain_elsewhere: on Citus, whether the organization's chain is
 * written on another node, because this one does not hold its shards. False
 * on a single node, without an SPI call.
 */
bool
audit_chain_elsewhere(const pg_uuid_t *org_id)
{
	AuditTargets t;
	bool		here;
	bool		distributed;

	if (!saas_citus_loaded())
		return false;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	distributed = audit_citus_targets(org_id, &t, &here, false);
	SPI_finish();
	return distributed && !here;
}

/*
 * audit_write_org: append the pending entries of one organization, in the
 * order the changes happened, and move its head onto the last of them.
 */
static void
audit_write_org(const pg_uuid_t *org_id)
{
	ListCell   *lc;
	int64		seq;
	unsigned char prev[SAAS_AUDIT_HASH_LEN];
	unsigned char hash[SAAS_AUDIT_HASH_LEN];
	AuditTargets t = {"audit_log", "audit_log_pkey", "_audit_heads", "audit_heads_pkey",
	audit_plan_new_head, audit_plan_append};
	bool		here;

	if (audit_citus_targets(org_id, &t, &here, true) && !here)
	{
		/* Recorded by the node that holds the shards (see the header). */
		foreach(lc, audit_pending)
		{
			SaasAuditEntry *e = &((AuditPending *) lfirst(lc))->e;

			if (memcmp(e->org_id.data, org_id->data, UUID_LEN) == 0 && !e->row_change)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("audit entries of \"%s\" are not recorded on a Citus node that does not hold the organization's shards yet",
								e->action)));
		}
		return;
	}
	audit_lock_chain(org_id);
	audit_chain_end(&t, org_id, &seq, prev);
	foreach(lc, audit_pending)
	{
		SaasAuditEntry *e = &((AuditPending *) lfirst(lc))->e;

		if (memcmp(e->org_id.data, org_id->data, UUID_LEN) != 0)
			continue;
		e->seq = ++seq;
		saas_audit_hash(prev, e, hash);
		audit_insert_entry(&t, e, prev, hash);
		memcpy(prev, hash, SAAS_AUDIT_HASH_LEN);
	}
	audit_move_head(&t, org_id, seq, prev);
}

/* audit_uuid_cmp: list_sort order of pg_uuid_t pointers. */
static int
audit_uuid_cmp(const ListCell *a, const ListCell *b)
{
	return memcmp(((pg_uuid_t *) lfirst(a))->data, ((pg_uuid_t *) lfirst(b))->data, UUID_LEN);
}

/*
 * audit_write_orgs: the organizations of the pending entries, each once, in
 * uuid order (the order chain locks are taken in), and their entries
 * written.
 */
static void
audit_write_orgs(void)
{
	List	   *orgs = NIL;
	ListCell   *lc;

	foreach(lc, audit_pending)
	{
		pg_uuid_t  *org = &((AuditPending *) lfirst(lc))->e.org_id;
		ListCell   *lc2;
		bool		seen = false;

		foreach(lc2, orgs)
			if (memcmp(((pg_uuid_t *) lfirst(lc2))->data, org->data, UUID_LEN) == 0)
			{
				seen = true;
				break;
			}
		if (!seen)
			orgs = lappend(orgs, org);
	}
	list_sort(orgs, audit_uuid_cmp);
	foreach(lc, orgs)
		audit_write_org((pg_uuid_t *) lfirst(lc));
}

/*
 * audit_write_out: write every pending entry, as the extension owner. Runs
 * before commit, and earlier when too many entries are pending.
 */
void
audit_write_out(void)
{
	SaasElevation elev;
	Oid			nsp;

	if (audit_pending == NIL)
		return;
	/* The extension may have been dropped in this very transaction. */
	nsp = get_namespace_oid("saas", true);
	if (!OidIsValid(nsp) || !OidIsValid(get_relname_relid("audit_log", nsp)))
	{
		audit_forget_pending(true);
		return;
	}

	PushActiveSnapshot(GetTransactionSnapshot());
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	saas_elevate(&elev);
	audit_prepare_append();
	audit_appending = true;
	PG_TRY();
	{
		audit_write_orgs();
	}
	PG_FINALLY();
	{
		audit_appending = false;
	}
	PG_END_TRY();
	saas_unelevate(&elev);
	SPI_finish();
	PopActiveSnapshot();
	audit_forget_pending(true);
}

/* ---------------------------------------------------------------------
 * Transaction callbacks
 * ---------------------------------------------------------------------
 */

/*
 * audit_xact_callback: write the pending entries just before commit (or
 * prepare); forget them when the transaction ends either way.
 */
void
audit_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			audit_write_out();
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			/* TopTransactionContext, and the pending context with it, is going away */
			audit_forget_pending(false);
			break;
		default:
			break;
	}
}

/*
 * audit_subxact_callback: entries of an aborted subtransaction are
 * dropped; those of a committed one now belong to its parent.
 */
void
audit_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	ListCell   *lc;

	if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		foreach(lc, audit_pending)
		{
			AuditPending *p = (AuditPending *) lfirst(lc);

			if (p->subid == mySubid)
				p->subid = parentSubid;
		}
	}
	else if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		foreach(lc, audit_pending)
		{
			AuditPending *p = (AuditPending *) lfirst(lc);

			if (p->subid == mySubid)
				audit_pending = foreach_delete_current(audit_pending, lc);
		}
	}
}
