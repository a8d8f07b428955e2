/*-------------------------------------------------------------------------
 *
 * audit.c
 *	  The audit trigger on tenant tables: what a changed row becomes as an
 *	  entry, the entries a transaction keeps until it commits, and the
 *	  append-only guard of the log.
 *
 * saas._audit() runs AFTER INSERT OR UPDATE OR DELETE FOR EACH ROW. It is
 * generic: the organization is the row's org_id column (or its id, for a
 * table that is a tenant root), the entity id is its id column, and the
 * entity name is the trigger's first argument (else the table name without
 * a trailing "s"). It captures the entry (actor, role, changes, request id,
 * time) at once, and keeps it in this transaction's memory.
 *
 * The pending entries are written onto their organizations' chains when
 * the transaction commits (audit_chain.c); an entry's hash is computed in
 * audit_hash.c, and saas.audit_verify() lives in audit_verify.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "pg_saas.h"
#include "common/common.h"
#include "auth/auth.h"
#include "audit/audit.h"

PG_FUNCTION_INFO_V1(saas_audit_trigger);
PG_FUNCTION_INFO_V1(saas_audit_guard);
PG_FUNCTION_INFO_V1(saas_audit_event);

/* Entities the install script attaches the trigger for. */
const char *const saas_audit_entities[] = {"organization", "user", NULL};

/* Entries kept in memory before a transaction writes them early. */
#define AUDIT_PENDING_MAX	10000

/*
 * The entries not written yet (AuditPending, in audit.h). The list and its
 * entries live in audit_pending_cxt, a child of TopTransactionContext that
 * is dropped after each write-out, so that memory is given back as entries
 * are written.
 */
List	   *audit_pending = NIL;
static MemoryContext audit_pending_cxt = NULL;
static bool audit_callbacks_registered = false;

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
 * Pending entries
 * ---------------------------------------------------------------------
 */

/* audit_forget_pending: drop the pending entries and their memory. */
void
audit_forget_pending(bool free_memory)
{
	if (free_memory && audit_pending_cxt != NULL)
		MemoryContextDelete(audit_pending_cxt);
	audit_pending_cxt = NULL;
	audit_pending = NIL;
}

/*
 * audit_set_actor: who acts, from the verified context: the user and its
 * role, or for the worker the service it acts for ("service:user-service",
 * no user id).
 */
static void
audit_set_actor(SaasAuditEntry *e)
{
	const SaasContext *ctx = saas_context_get();

	if (ctx == NULL)
		return;
	if (ctx->trusted && ctx->actor[0] != '\0')
	{
		e->actor_role = pstrdup(ctx->actor);
		return;
	}
	/* An API key acts: the key's id, and "api_key" for the role. */
	if (ctx->api_key)
	{
		e->has_actor_id = true;
		e->actor_id = ctx->user_id;
		e->actor_role = pstrdup("api_key");
		return;
	}
	e->has_actor_id = true;
	e->actor_id = ctx->user_id;
	e->actor_role = pstrdup(ctx->role);
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

/* ---------------------------------------------------------------------
 * Triggers
 * ---------------------------------------------------------------------
 */

static void audit_event_forward(const SaasAuditEntry *e);

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

/*
 * audit_shard_of: on Citus, the name of the table a shard placement belongs
 * to ("audit_log" for "audit_log_102322": the name without its "_<shard id>"
 * suffix, when a table of that name is in the same schema), else NULL. Never
 * on a single node, where a table whose name ends in digits is itself.
 */
static char *
audit_shard_of(Relation rel)
{
	const char *name = RelationGetRelationName(rel);
	const char *us;
	char	   *logical;
	Oid			relid;

	if (!saas_citus_loaded())
		return NULL;
	us = strrchr(name, '_');
	if (us == NULL || us == name || us[1] == '\0' ||
		strspn(us + 1, "0123456789") != strlen(us + 1))
		return NULL;
	logical = pnstrdup(name, us - name);
	relid = get_relname_relid(logical, RelationGetNamespace(rel));
	if (OidIsValid(relid) && relid != RelationGetRelid(rel))
		return logical;
	pfree(logical);
	return NULL;
}

/* audit_table_name: the table's name, a shard placement's table's on Citus. */
static const char *
audit_table_name(Relation rel)
{
	char	   *logical = audit_shard_of(rel);

	return logical ? logical : RelationGetRelationName(rel);
}

/* audit_entity_name: the trigger's first argument, else the table's singular. */
static const char *
audit_entity_name(TriggerData *td)
{
	char	   *name;
	int			len;

	if (td->tg_trigger->tgnargs > 0)
		return td->tg_trigger->tgargs[0];
	name = pstrdup(audit_table_name(td->tg_relation));
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

	audit_set_actor(&e);
	e.request_id = audit_request_id();
	e.changes = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(changes.data)));
	e.row_change = true;

	/*
	 * On Citus, a row change of a table Citus does not manage (a plain table
	 * on this node: no shard placement) fires here only, so where another node
	 * holds the organization's chain it travels there as an event, as
	 * saas._audit_event's do; a placement's change (of a reference table's
	 * copy) is recorded by the copy on that node (audit_chain.c).
	 */
	if (saas_citus_loaded() && audit_shard_of(td->tg_relation) == NULL &&
		audit_chain_elsewhere(&e.org_id))
	{
		SaasElevation elev;

		/* The outbox is the owner's, like the log; the changes are the row's. */
		saas_elevate(&elev);
		audit_event_forward(&e);
		saas_unelevate(&elev);
		return PointerGetDatum(NULL);
	}
	audit_keep_entry(&e);
	return PointerGetDatum(NULL);
}

/*
 * audit_event_forward: on Citus, send an event to the node of its
 * organization's chain, as a row of saas._audit_outbox that the trigger
 * there records (the actor and request id are read there, from the context
 * that travels with the transaction).
 */
static void
audit_event_forward(const SaasAuditEntry *e)
{
	Oid			types[5] = {UUIDOID, TEXTOID, UUIDOID, TEXTOID, JSONBOID};
	Datum		args[5];
	char		nulls[5] = "     ";

	args[0] = UUIDPGetDatum(&e->org_id);
	args[1] = CStringGetTextDatum(e->entity);
	args[2] = UUIDPGetDatum(&e->entity_id);
	if (!e->has_entity_id)
		nulls[2] = 'n';
	args[3] = CStringGetTextDatum(e->action);
	args[4] = JsonbPGetDatum(e->changes);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("INSERT INTO saas._audit_outbox (org_id, entity, entity_id, action, changes)"
							  " VALUES ($1, $2, $3, $4, $5)", 5, types, args, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not forward an audit event to its organization's node");
	SPI_finish();
}

/*
 * SQL: saas._audit_event(org uuid, entity text, entity_id uuid, action text,
 * changes jsonb): an entry for something that is not a row change of an
 * audited table (a password change, a logout). The caller passes no secret.
 */
Datum
saas_audit_event(PG_FUNCTION_ARGS)
{
	SaasAuditEntry e;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("organization, entity and action are required")));
	memset(&e, 0, sizeof(e));
	e.org_id = *PG_GETARG_UUID_P(0);
	e.entity = text_to_cstring(PG_GETARG_TEXT_PP(1));
	e.has_entity_id = !PG_ARGISNULL(2);
	if (e.has_entity_id)
		e.entity_id = *PG_GETARG_UUID_P(2);
	e.action = text_to_cstring(PG_GETARG_TEXT_PP(3));
	e.changes = PG_ARGISNULL(4) ?
		DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}"))) :
		PG_GETARG_JSONB_P(4);
	if (audit_chain_elsewhere(&e.org_id))
	{
		audit_event_forward(&e);
		PG_RETURN_VOID();
	}
	audit_set_actor(&e);
	e.request_id = audit_request_id();
	audit_keep_entry(&e);
	PG_RETURN_VOID();
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
							audit_table_name(td->tg_relation)),
					 errhint("Audit entries are recorded by changing the audited tables.")));
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("%s is append-only", audit_table_name(td->tg_relation)),
				 errdetail("Audit entries and chain heads cannot be deleted, truncated or edited."),
				 errhint("Only a superuser can, and saas.audit_verify() detects it.")));
	}
	if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
		return PointerGetDatum(td->tg_newtuple);
	if (TRIGGER_FIRED_FOR_ROW(td->tg_event))
		return PointerGetDatum(td->tg_trigtuple);
	return PointerGetDatum(NULL);
}
