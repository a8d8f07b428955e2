/*-------------------------------------------------------------------------
 *
 * audit.c
 *	  The audit trigger on tenant tables, the append-only guard of the log,
 *	  and the verification of each organization's hash chain.
 *
 * saas._audit() runs AFTER INSERT OR UPDATE OR DELETE FOR EACH ROW. It is
 * generic: the organization is the row's org_id column (or its id, for a
 * table that is a tenant root), the entity id is its id column, and the
 * entity name is the trigger's first argument (else the table name without
 * a trailing "s"). It captures the entry (actor, role, changes, request id,
 * time) at once, and keeps it in this transaction's memory.
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
 * entries writes them early (outside subtransactions), and then holds its
 * chain locks until commit.
 *
 * Entries are inserted as the extension owner: callers (saas_api) may only
 * read the log, and only their own organization's, as an admin.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/cryptohash.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "pg_saas.h"
#include "audit.h"
#include "json_out.h"

PG_FUNCTION_INFO_V1(saas_audit_trigger);
PG_FUNCTION_INFO_V1(saas_audit_guard);
PG_FUNCTION_INFO_V1(saas_audit_verify);

/* Entities the install script attaches the trigger for. */
const char *const saas_audit_entities[] = {"organization", "user", NULL};

/* Domain separation for the hash: a format change gets a new tag. */
static const char audit_hash_tag[] = "pg_saas.audit.v1";

/* Rows read per fetch while verifying a chain. */
#define AUDIT_VERIFY_BATCH 1000

/*
 * True only while audit_write_out writes, so that the guard triggers of the
 * audit tables can tell this file's own writes from anyone else's.
 * Backend-local: no SQL can set it.
 */
static bool audit_appending = false;

/* Saved plans (SPI_keepplan), prepared on first use in each backend. */
static SPIPlanPtr audit_plan_new_head = NULL;
static SPIPlanPtr audit_plan_append = NULL;
static SPIPlanPtr audit_plan_read_head = NULL;
static SPIPlanPtr audit_plan_read_chain = NULL;

/* Advisory lock namespace of the chain locks (field4 of the lock tag; SQL's are 1 and 2). */
#define AUDIT_LOCK_SPACE	0x5341

/* Entries kept in memory before a transaction writes them early. */
#define AUDIT_PENDING_MAX	10000

/*
 * An entry not written yet, and the subtransaction that made it: when that
 * subtransaction aborts, the entry goes with it. The list and its entries
 * live in audit_pending_cxt, a child of TopTransactionContext that is
 * dropped after each write-out, so that memory is given back as entries
 * are written.
 */
typedef struct AuditPending
{
	SubTransactionId subid;
	SaasAuditEntry e;
} AuditPending;

static List *audit_pending = NIL;
static MemoryContext audit_pending_cxt = NULL;
static bool audit_callbacks_registered = false;

static void audit_xact_callback(XactEvent event, void *arg);
static void audit_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
								   SubTransactionId parentSubid, void *arg);

/* The outcome of verifying one chain. */
typedef struct AuditVerdict
{
	bool		ok;
	int64		checked;
	int64		first_bad_seq;
	char		problem[256];
} AuditVerdict;

/* ---------------------------------------------------------------------
 * Hashing
 * ---------------------------------------------------------------------
 */

/* audit_hash_update: feed bytes to the hash, or fail with its reason. */
static void
audit_hash_update(pg_cryptohash_ctx *ctx, const void *data, size_t len)
{
	if (len > 0 && pg_cryptohash_update(ctx, (const uint8 *) data, len) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not compute SHA-256: %s", pg_cryptohash_error(ctx))));
}

/*
 * audit_hash_field: one field of the canonical serialization: a presence
 * byte (0 for NULL), a 4-byte big-endian length, then the bytes. Lengths
 * make the encoding unambiguous: no two entries serialize alike.
 */
static void
audit_hash_field(pg_cryptohash_ctx *ctx, const void *data, size_t len, bool present)
{
	uint8		hdr[5];
	uint32		l = present ? (uint32) len : 0;

	hdr[0] = present ? 1 : 0;
	hdr[1] = (l >> 24) & 0xFF;
	hdr[2] = (l >> 16) & 0xFF;
	hdr[3] = (l >> 8) & 0xFF;
	hdr[4] = l & 0xFF;
	audit_hash_update(ctx, hdr, sizeof(hdr));
	if (present)
		audit_hash_update(ctx, data, len);
}

/* audit_hash_int64: a 64-bit integer field, big-endian. */
static void
audit_hash_int64(pg_cryptohash_ctx *ctx, int64 v)
{
	uint8		b[8];
	uint64		u = (uint64) v;
	int			i;

	for (i = 7; i >= 0; i--)
	{
		b[i] = u & 0xFF;
		u >>= 8;
	}
	audit_hash_field(ctx, b, sizeof(b), true);
}

/* audit_hash_cstr: a text field (NULL allowed). */
static void
audit_hash_cstr(pg_cryptohash_ctx *ctx, const char *s)
{
	audit_hash_field(ctx, s, s ? strlen(s) : 0, s != NULL);
}

/*
 * saas_audit_hash: SHA-256 over the tag, prev_hash and the entry's fields
 * in column order. changes is hashed in jsonb's text form, which is
 * canonical (keys sorted, no duplicates) for a given jsonb value.
 */
void
saas_audit_hash(const unsigned char *prev_hash, const SaasAuditEntry *e,
				unsigned char *out)
{
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);
	char	   *changes;

	if (ctx == NULL || pg_cryptohash_init(ctx) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not compute SHA-256: %s", pg_cryptohash_error(ctx))));
	audit_hash_update(ctx, audit_hash_tag, sizeof(audit_hash_tag) - 1);
	audit_hash_field(ctx, prev_hash, SAAS_AUDIT_HASH_LEN, true);
	audit_hash_field(ctx, e->org_id.data, UUID_LEN, true);
	audit_hash_int64(ctx, e->seq);
	audit_hash_field(ctx, e->id.data, UUID_LEN, true);
	audit_hash_int64(ctx, (int64) e->occurred_at);
	audit_hash_field(ctx, e->actor_id.data, UUID_LEN, e->has_actor_id);
	audit_hash_cstr(ctx, e->actor_role);
	audit_hash_cstr(ctx, e->action);
	audit_hash_cstr(ctx, e->entity);
	audit_hash_field(ctx, e->entity_id.data, UUID_LEN, e->has_entity_id);
	changes = JsonbToCString(NULL, &e->changes->root, VARSIZE(e->changes));
	audit_hash_cstr(ctx, changes);
	audit_hash_cstr(ctx, e->request_id);
	if (pg_cryptohash_final(ctx, out, SAAS_AUDIT_HASH_LEN) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not compute SHA-256: %s", pg_cryptohash_error(ctx))));
	pg_cryptohash_free(ctx);
	pfree(changes);
}

/* ---------------------------------------------------------------------
 * Serializing rows
 * ---------------------------------------------------------------------
 */

/*
 * audit_column_hidden: columns never written to the log, whatever the
 * table: anything that looks like a secret or a password hash.
 */
static bool
audit_column_hidden(const char *name)
{
	static const char *const hidden[] = {"password", "secret", "token", "_hash", NULL};
	char		lower[NAMEDATALEN];
	int			i;

	for (i = 0; name[i] && i < NAMEDATALEN - 1; i++)
		lower[i] = pg_ascii_tolower((unsigned char) name[i]);
	lower[i] = '\0';
	for (i = 0; hidden[i]; i++)
		if (strstr(lower, hidden[i]) != NULL)
			return true;
	return false;
}

/*
 * audit_column_noise: bookkeeping columns that every update (or every
 * login) changes; they are left out of update diffs, and an update that
 * changes nothing else is not logged.
 */
static bool
audit_column_noise(const char *name)
{
	return strcmp(name, "updated_at") == 0 ||
		strcmp(name, "version") == 0 ||
		strcmp(name, "last_login") == 0;
}

/*
 * audit_json_value: one column as a JSON value. Numbers that JSON cannot
 * carry (NaN, Infinity) become strings; everything else is written as the
 * API writes it (timestamps in RFC 3339 UTC, arrays, jsonb as is).
 */
static void
audit_json_value(StringInfo out, HeapTuple tup, TupleDesc desc, int attno)
{
	Oid			typ = SPI_gettypeid(desc, attno);

	if (typ == NUMERICOID || typ == FLOAT4OID || typ == FLOAT8OID)
	{
		char	   *s = SPI_getvalue(tup, desc, attno);

		if (s == NULL)
			appendStringInfoString(out, "null");
		else if (isdigit((unsigned char) s[0]) ||
				 (s[0] == '-' && isdigit((unsigned char) s[1])))
			appendStringInfoString(out, s);
		else
			escape_json(out, s);
		return;
	}
	saas_json_column(out, tup, desc, attno);
}

/*
 * audit_values_equal: whether a column holds the same value in both
 * versions of a row, comparing detoasted bytes (a value may be stored
 * compressed in one version and not in the other).
 */
static bool
audit_values_equal(HeapTuple a, HeapTuple b, TupleDesc desc, int attno)
{
	Form_pg_attribute att = TupleDescAttr(desc, attno - 1);
	bool		na,
				nb;
	Datum		da = SPI_getbinval(a, desc, attno, &na);
	Datum		db = SPI_getbinval(b, desc, attno, &nb);

	if (na || nb)
		return na == nb;
	if (att->attlen == -1)
	{
		struct varlena *va = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(da));
		struct varlena *vb = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(db));

		return VARSIZE_ANY_EXHDR(va) == VARSIZE_ANY_EXHDR(vb) &&
			memcmp(VARDATA_ANY(va), VARDATA_ANY(vb), VARSIZE_ANY_EXHDR(va)) == 0;
	}
	return datumIsEqual(da, db, att->attbyval, att->attlen);
}

/* audit_row_json: {"column":value,...} of a whole row, hidden columns left out. */
static void
audit_row_json(StringInfo out, HeapTuple tup, TupleDesc desc)
{
	bool		first = true;
	int			i;

	appendStringInfoChar(out, '{');
	for (i = 1; i <= desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i - 1);

		if (att->attisdropped || audit_column_hidden(NameStr(att->attname)))
			continue;
		saas_json_key(out, &first, NameStr(att->attname));
		audit_json_value(out, tup, desc, i);
	}
	appendStringInfoChar(out, '}');
}

/*
 * audit_diff_json: {"column":{"old":...,"new":...},...} of the columns an
 * update changed, hidden and noise columns left out. Returns the number of
 * columns written.
 */
static int
audit_diff_json(StringInfo out, HeapTuple oldtup, HeapTuple newtup, TupleDesc desc)
{
	bool		first = true;
	int			n = 0;
	int			i;

	appendStringInfoChar(out, '{');
	for (i = 1; i <= desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i - 1);
		const char *name = NameStr(att->attname);

		if (att->attisdropped || audit_column_hidden(name) || audit_column_noise(name))
			continue;
		if (audit_values_equal(oldtup, newtup, desc, i))
			continue;
		saas_json_key(out, &first, name);
		appendStringInfoString(out, "{\"old\":");
		audit_json_value(out, oldtup, desc, i);
		appendStringInfoString(out, ",\"new\":");
		audit_json_value(out, newtup, desc, i);
		appendStringInfoChar(out, '}');
		n++;
	}
	appendStringInfoChar(out, '}');
	return n;
}

/*
 * audit_uuid_column: the uuid in column "name" of tup. Returns false when
 * the table has no such uuid column; a NULL value is an error when
 * required, else also false.
 */
static bool
audit_uuid_column(Relation rel, HeapTuple tup, const char *name, bool required,
				  pg_uuid_t *out)
{
	TupleDesc	desc = RelationGetDescr(rel);
	int			attno = SPI_fnumber(desc, name);
	bool		isnull;
	Datum		d;

	if (attno <= 0 || SPI_gettypeid(desc, attno) != UUIDOID)
	{
		if (required)
			ereport(ERROR,
					(errcode(ERRCODE_TRIGGERED_ACTION_EXCEPTION),
					 errmsg("audited table \"%s\" has no uuid column \"%s\"",
							RelationGetRelationName(rel), name),
					 errhint("Name the organization column in the trigger's second argument.")));
		return false;
	}
	d = SPI_getbinval(tup, desc, attno, &isnull);
	if (isnull)
	{
		if (required)
			ereport(ERROR,
					(errcode(ERRCODE_NOT_NULL_VIOLATION),
					 errmsg("audited row of \"%s\" has no \"%s\"",
							RelationGetRelationName(rel), name)));
		return false;
	}
	*out = *DatumGetUUIDP(d);
	return true;
}

/* ---------------------------------------------------------------------
 * Appending to a chain
 * ---------------------------------------------------------------------
 */

/* audit_keep: prepare a statement once per backend and keep its plan. */
static SPIPlanPtr
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
audit_chain_end(const pg_uuid_t *org_id, int64 *last_seq, unsigned char *last_hash)
{
	int64		head_seq;

	if (!audit_read_end("_audit_heads", "audit_heads_pkey", org_id, NULL,
						"last_seq", "last_hash", last_seq, last_hash))
	{
		Datum		args[2];

		*last_seq = 0;
		memset(last_hash, 0, SAAS_AUDIT_HASH_LEN);
		args[0] = UUIDPGetDatum(org_id);
		args[1] = audit_bytea(last_hash, SAAS_AUDIT_HASH_LEN);
		if (audit_exec_latest(audit_plan_new_head, args, NULL, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not create the audit chain head");
	}
	head_seq = *last_seq;
	(void) audit_read_end("audit_log", "audit_log_pkey", org_id, &head_seq,
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
audit_move_head(const pg_uuid_t *org_id, int64 seq, const unsigned char *hash)
{
	Oid			nsp = get_namespace_oid("saas", false);
	Oid			relid = get_relname_relid("_audit_heads", nsp);
	Oid			indexid = get_relname_relid("audit_heads_pkey", nsp);
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
		elog(ERROR, "audit table saas._audit_heads or its index is missing");
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
audit_insert_entry(const SaasAuditEntry *e, const unsigned char *prev,
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
	if (SPI_execute_plan(audit_plan_append, args, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not append to the audit log");
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

	audit_lock_chain(org_id);
	audit_chain_end(org_id, &seq, prev);
	foreach(lc, audit_pending)
	{
		SaasAuditEntry *e = &((AuditPending *) lfirst(lc))->e;

		if (memcmp(e->org_id.data, org_id->data, UUID_LEN) != 0)
			continue;
		e->seq = ++seq;
		saas_audit_hash(prev, e, hash);
		audit_insert_entry(e, prev, hash);
		memcpy(prev, hash, SAAS_AUDIT_HASH_LEN);
	}
	audit_move_head(org_id, seq, prev);
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

/* audit_forget_pending: drop the pending entries and their memory. */
static void
audit_forget_pending(bool free_memory)
{
	if (free_memory && audit_pending_cxt != NULL)
		MemoryContextDelete(audit_pending_cxt);
	audit_pending_cxt = NULL;
	audit_pending = NIL;
}

/*
 * audit_write_out: write every pending entry, as the extension owner. Runs
 * before commit, and earlier when too many entries are pending.
 */
static void
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

/*
 * audit_xact_callback: write the pending entries just before commit (or
 * prepare); forget them when the transaction ends either way.
 */
static void
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
static void
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

/* audit_copy_cstr: s copied into the current context (NULL stays NULL). */
static const char *
audit_copy_cstr(const char *s)
{
	return s ? pstrdup(s) : NULL;
}

/*
 * audit_keep_entry: keep a captured entry until the transaction writes it,
 * copied into the pending context. Its id and time are given now: the
 * time is when the change happened.
 */
static void
audit_keep_entry(const SaasAuditEntry *e)
{
	MemoryContext old;
	AuditPending *p;

	if (!audit_callbacks_registered)
	{
		RegisterXactCallback(audit_xact_callback, NULL);
		RegisterSubXactCallback(audit_subxact_callback, NULL);
		audit_callbacks_registered = true;
	}
	if (audit_pending_cxt == NULL)
		audit_pending_cxt = AllocSetContextCreate(TopTransactionContext,
												  "pg_saas audit entries",
												  ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(audit_pending_cxt);
	p = palloc(sizeof(AuditPending));
	p->subid = GetCurrentSubTransactionId();
	p->e = *e;
	saas_uuid_v7(&p->e.id);
	p->e.occurred_at = GetCurrentTimestamp();
	p->e.actor_role = audit_copy_cstr(e->actor_role);
	p->e.action = audit_copy_cstr(e->action);
	p->e.entity = audit_copy_cstr(e->entity);
	p->e.request_id = audit_copy_cstr(e->request_id);
	p->e.changes = (Jsonb *) pg_detoast_datum_copy((struct varlena *) e->changes);
	audit_pending = lappend(audit_pending, p);
	MemoryContextSwitchTo(old);

	/*
	 * Early, only outside subtransactions: rows written inside one would
	 * vanish with it if it aborted, including entries of the outer levels.
	 */
	if (list_length(audit_pending) >= AUDIT_PENDING_MAX && !IsSubTransaction())
		audit_write_out();
}

/* audit_request_id: the current request id, clipped; NULL when unset. */
static const char *
audit_request_id(void)
{
	const char *rid = GetConfigOption("saas.request_id", true, false);
	int			len;

	if (rid == NULL || rid[0] == '\0')
		return NULL;
	len = strlen(rid);
	if (len > SAAS_AUDIT_REQUEST_ID_MAX)
		len = pg_mbcliplen(rid, len, SAAS_AUDIT_REQUEST_ID_MAX);
	return pnstrdup(rid, len);
}

/* audit_entity_name: the trigger's first argument, else the table's singular. */
static const char *
audit_entity_name(TriggerData *td)
{
	char	   *name;
	int			len;

	if (td->tg_trigger->tgnargs > 0)
		return td->tg_trigger->tgargs[0];
	name = pstrdup(RelationGetRelationName(td->tg_relation));
	len = strlen(name);
	if (len > 1 && name[len - 1] == 's')
		name[len - 1] = '\0';
	return name;
}

/*
 * Trigger saas._audit([entity [, org column]]): AFTER INSERT OR UPDATE OR
 * DELETE FOR EACH ROW on a tenant table. Records who changed what. An
 * update that changed only bookkeeping columns (updated_at, version,
 * last_login) is not recorded.
 */
Datum
saas_audit_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	HeapTuple	oldtup = NULL;
	HeapTuple	newtup = NULL;
	HeapTuple	row;
	const char *org_col;
	const SaasContext *ctx;
	SaasAuditEntry e;
	StringInfoData changes;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("saas._audit() must be called as a trigger")));
	if (!TRIGGER_FIRED_AFTER(td->tg_event) || !TRIGGER_FIRED_FOR_ROW(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("saas._audit() must be an AFTER ... FOR EACH ROW trigger")));

	memset(&e, 0, sizeof(e));
	desc = RelationGetDescr(td->tg_relation);
	initStringInfo(&changes);
	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
	{
		newtup = td->tg_trigtuple;
		e.action = SAAS_AUDIT_CREATE;
		audit_row_json(&changes, newtup, desc);
	}
	else if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
	{
		oldtup = td->tg_trigtuple;
		newtup = td->tg_newtuple;
		e.action = SAAS_AUDIT_UPDATE;
		if (audit_diff_json(&changes, oldtup, newtup, desc) == 0)
			return PointerGetDatum(NULL);
	}
	else if (TRIGGER_FIRED_BY_DELETE(td->tg_event))
	{
		oldtup = td->tg_trigtuple;
		e.action = SAAS_AUDIT_DELETE;
		audit_row_json(&changes, oldtup, desc);
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("saas._audit() fires on INSERT, UPDATE or DELETE only")));
	row = newtup ? newtup : oldtup;

	e.entity = audit_entity_name(td);
	if (td->tg_trigger->tgnargs > 1)
		org_col = td->tg_trigger->tgargs[1];
	else
		org_col = SPI_fnumber(desc, "org_id") > 0 ? "org_id" : "id";
	(void) audit_uuid_column(td->tg_relation, row, org_col, true, &e.org_id);
	e.has_entity_id = audit_uuid_column(td->tg_relation, row, "id", false, &e.entity_id);

	ctx = saas_context_get();
	if (ctx != NULL)
	{
		e.has_actor_id = true;
		e.actor_id = ctx->user_id;
		e.actor_role = pstrdup(ctx->role);
	}
	e.request_id = audit_request_id();
	e.changes = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(changes.data)));

	audit_keep_entry(&e);
	return PointerGetDatum(NULL);
}

/*
 * Trigger saas._audit_guard(['append']): the append-only rule of the audit
 * tables, whatever the privileges (the table owner's included). A superuser
 * passes. Otherwise UPDATE, DELETE and TRUNCATE are refused; INSERT (and
 * UPDATE, on the chain heads) pass only for a trigger whose argument is
 * 'append', and only while saas._audit() is appending, so that no role
 * can write an entry or move a head by hand.
 */
Datum
saas_audit_guard(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	bool		writer;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("saas._audit_guard() must be called as a trigger")));
	writer = td->tg_trigger->tgnargs > 0 &&
		strcmp(td->tg_trigger->tgargs[0], "append") == 0 &&
		(TRIGGER_FIRED_BY_INSERT(td->tg_event) || TRIGGER_FIRED_BY_UPDATE(td->tg_event));
	if (!superuser() && !(writer && audit_appending))
	{
		if (writer)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("%s is written only by the audit trigger",
							RelationGetRelationName(td->tg_relation)),
					 errhint("Audit entries are recorded by changing the audited tables.")));
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("%s is append-only", RelationGetRelationName(td->tg_relation)),
				 errdetail("Audit entries and chain heads cannot be deleted, truncated or edited."),
				 errhint("Only a superuser can, and saas.audit_verify() detects it.")));
	}
	if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
		return PointerGetDatum(td->tg_newtuple);
	if (TRIGGER_FIRED_FOR_ROW(td->tg_event))
		return PointerGetDatum(td->tg_trigtuple);
	return PointerGetDatum(NULL);
}

/* ---------------------------------------------------------------------
 * Verifying a chain
 * ---------------------------------------------------------------------
 */

/*
 * audit_verify_authorize: who may verify which chain. A superuser or the
 * extension owner, any; a super_admin, any; an admin, its own
 * organization's only (another organization is "not found", so that its
 * existence does not leak); a plain user, none.
 */
static void
audit_verify_authorize(const pg_uuid_t *org_id)
{
	const SaasContext *ctx;

	if (superuser() || has_privs_of_role(GetUserId(), saas_extension_owner()))
		return;
	ctx = saas_context_require();
	if (strcmp(ctx->role, SAAS_ROLE_SUPER_ADMIN) == 0)
		return;
	if (strcmp(ctx->role, SAAS_ROLE_ADMIN) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_FORBIDDEN),
				 errmsg("only an admin can verify the audit log")));
	if (memcmp(ctx->org_id.data, org_id->data, UUID_LEN) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_NOT_FOUND),
				 errmsg("organization not found")));
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
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};

	audit_verify_authorize(org_id);
	InitMaterializedSRF(fcinfo, 0);
	audit_verify_chain(org_id, &v);

	values[0] = BoolGetDatum(v.ok);
	values[1] = Int64GetDatum(v.checked);
	values[2] = Int64GetDatum(v.first_bad_seq);
	values[3] = v.ok ? (Datum) 0 : CStringGetTextDatum(v.problem);
	nulls[2] = nulls[3] = v.ok;
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}
