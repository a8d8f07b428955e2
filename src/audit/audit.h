/*-------------------------------------------------------------------------
 *
 * audit.h
 *	  The audit log: what one entry holds, how its hash is computed, the
 *	  names the log uses for entities and actions, and what the audit files
 *	  (audit.c, audit_hash.c, audit_chain.c, audit_verify.c) share.
 *
 * Each organization's entries form a hash chain: entry n stores the hash of
 * entry n-1 (prev_hash) and its own hash, SHA-256 over prev_hash and a
 * canonical serialization of its content. The first entry of a chain links
 * to 32 zero bytes. saas._audit_heads remembers the last seq and hash of
 * every chain, so that a deleted tail is found too.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAAS_AUDIT_H
#define SAAS_AUDIT_H

#include "access/xact.h"
#include "datatype/timestamp.h"
#include "executor/spi.h"
#include "nodes/pg_list.h"
#include "utils/jsonb.h"
#include "utils/uuid.h"

#define SAAS_AUDIT_HASH_LEN		32	/* SHA-256 */

/* Longest request id kept in an entry (bytes; longer ones are clipped). */
#define SAAS_AUDIT_REQUEST_ID_MAX	200

/* Actions, as stored in audit_log.action. */
#define SAAS_AUDIT_CREATE		"create"
#define SAAS_AUDIT_UPDATE		"update"
#define SAAS_AUDIT_DELETE		"delete"

/*
 * The content of one entry: every column of saas.audit_log except the two
 * hashes. Strings are NUL-terminated; NULL means SQL NULL.
 */
typedef struct SaasAuditEntry
{
	pg_uuid_t	org_id;
	int64		seq;
	pg_uuid_t	id;
	TimestampTz occurred_at;
	bool		has_actor_id;
	pg_uuid_t	actor_id;
	const char *actor_role;
	const char *action;
	const char *entity;
	bool		has_entity_id;
	pg_uuid_t	entity_id;
	Jsonb	   *changes;
	const char *request_id;
	bool		row_change;		/* made by the row trigger (not hashed: see audit_chain.c on Citus) */
} SaasAuditEntry;

/*
 * An entry not written yet, and the subtransaction that made it: when that
 * subtransaction aborts, the entry goes with it.
 */
typedef struct AuditPending
{
	SubTransactionId subid;
	SaasAuditEntry e;
} AuditPending;

/* audit_hash.c */
extern void saas_audit_hash(const unsigned char *prev_hash,
							const SaasAuditEntry *entry,
							unsigned char *out);

/* audit.c */
/* Entities that the audit trigger is attached for (GET /audit-logs?entity=). */
extern const char *const saas_audit_entities[];
/* This transaction's pending entries (AuditPending *), in the order made. */
extern List *audit_pending;
extern void audit_forget_pending(bool free_memory);

/* audit_chain.c */
/* True only while audit_write_out writes (the guard lets those writes pass). */
extern bool audit_appending;
extern SPIPlanPtr audit_keep(const char *sql, int nargs, Oid *argtypes);
extern void audit_write_out(void);
extern bool audit_chain_elsewhere(const pg_uuid_t *org_id);
extern void audit_xact_callback(XactEvent event, void *arg);
extern void audit_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
								   SubTransactionId parentSubid, void *arg);

#endif							/* SAAS_AUDIT_H */
