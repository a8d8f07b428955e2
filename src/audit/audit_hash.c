/*-------------------------------------------------------------------------
 *
 * audit_hash.c
 *	  The hash of an audit entry: SHA-256 over the previous entry's hash and
 *	  a canonical serialization of the entry's content.
 *
 * The writer of the chain (audit_chain.c) and its verifier (audit_verify.c)
 * both hash through saas_audit_hash, so that they agree byte for byte. The
 * serialization is length-prefixed field by field, so no two entries
 * serialize alike, and it starts with a domain-separation tag that names
 * the format's version.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/cryptohash.h"
#include "utils/jsonb.h"

#include "audit/audit.h"

/* Domain separation for the hash: a format change gets a new tag. */
static const char audit_hash_tag[] = "pg_saas.audit.v1";

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
