/*-------------------------------------------------------------------------
 *
 * onetime_token.c
 *	  The single-use tokens of invitations and password resets, and the
 *	  message that delivers one.
 *
 * A token is a prefix ("inv_", "rst_") and base64url(org id | row id |
 * 32 random bytes from pg_strong_random). The ids route the lookup (on
 * Citus to the organization's shard, without a scan); only SHA-256 of the
 * random part is stored, and a presented token is compared with it in
 * constant time. The plaintext exists only in the answer-less delivery job,
 * which saas._jobs_scrub_secrets (93_invitations.sql) empties when the job
 * is finished.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"

#include "common/common.h"
#include "auth/auth.h"
#include "api/api.h"

#define OTT_RAW_LEN (16 + 16 + SAAS_OTT_SECRET_LEN)

static SaasPlan plan_enqueue_message = {
	"SELECT saas._enqueue($1, 'communication-service', $2, 'POST', '/messages',"
	" jsonb_build_object('organization_id',"
	"   (SELECT coalesce(o.external_ids ->> 'communication_service', o.id::text)"
	"      FROM saas.organizations o WHERE o.id = $1),"
	"  'recipient', $3, 'template', $4, 'subject', $5, 'body', $6), $7)",
	7, {UUIDOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID}
};

/* Messages not sent yet whose token is void now (accepted, revoked, used). */
static SaasPlan plan_drop_message = {
	"DELETE FROM saas.jobs WHERE org_id = $1 AND idempotency_key = $2"
	" AND state IN ('available', 'retryable', 'dead')",
	2, {UUIDOID, TEXTOID}
};

/*
 * saas_ott_make: a new token with prefix for (org_id, id); hash gets the
 * SHA-256 of its secret (SAAS_OTT_HASH_LEN bytes), the one thing stored.
 */
char *
saas_ott_make(const char *prefix, const pg_uuid_t *org_id, const pg_uuid_t *id,
			  unsigned char *hash)
{
	unsigned char raw[OTT_RAW_LEN];
	StringInfoData out;

	memcpy(raw, org_id->data, 16);
	memcpy(raw + 16, id->data, 16);
	saas_random_bytes(raw + 32, SAAS_OTT_SECRET_LEN);
	saas_sha256(raw + 32, SAAS_OTT_SECRET_LEN, hash);
	initStringInfo(&out);
	appendStringInfoString(&out, prefix);
	saas_b64url_encode(raw, OTT_RAW_LEN, &out);
	explicit_bzero(raw, sizeof(raw));
	return out.data;
}

/*
 * saas_ott_parse: split a presented token of the given prefix into its ids
 * and the SHA-256 of its secret; false for anything malformed.
 */
bool
saas_ott_parse(const char *prefix, const char *token, SaasOtt *t)
{
	size_t		plen = strlen(prefix);
	size_t		tlen;
	StringInfoData raw;
	bool		ok;

	if (token == NULL || strncmp(token, prefix, plen) != 0)
		return false;
	tlen = strlen(token + plen);
	if (tlen < 80 || tlen > 90)
		return false;
	initStringInfo(&raw);
	ok = saas_b64url_decode(token + plen, (int) tlen, &raw) && raw.len == OTT_RAW_LEN;
	if (ok)
	{
		memcpy(t->org_id.data, raw.data, 16);
		memcpy(t->id.data, raw.data + 16, 16);
		saas_sha256(raw.data + 32, SAAS_OTT_SECRET_LEN, t->hash);
	}
	explicit_bzero(raw.data, raw.len);
	return ok;
}

/*
 * saas_ott_matches: whether the token's secret hashes to the stored hash
 * (a bytea column value), compared in constant time.
 */
bool
saas_ott_matches(const SaasOtt *t, Datum stored)
{
	bytea	   *b = DatumGetByteaPP(stored);

	if (VARSIZE_ANY_EXHDR(b) != SAAS_OTT_HASH_LEN)
		return false;
	return saas_timingsafe_eq(VARDATA_ANY(b), t->hash, SAAS_OTT_HASH_LEN);
}

/* saas_ott_hash_datum: a hash as a bytea Datum. */
Datum
saas_ott_hash_datum(const unsigned char *hash)
{
	bytea	   *b = palloc(VARHDRSZ + SAAS_OTT_HASH_LEN);

	SET_VARSIZE(b, VARHDRSZ + SAAS_OTT_HASH_LEN);
	memcpy(VARDATA(b), hash, SAAS_OTT_HASH_LEN);
	return PointerGetDatum(b);
}

/*
 * saas_ott_send: enqueue the communication service call that delivers a
 * token (kind message.invitation or message.password_reset), once per key.
 * Runs as the extension owner (saas._enqueue is private). In an open SPI
 * connection.
 */
void
saas_ott_send(const pg_uuid_t *org_id, const char *kind, const char *recipient,
			  const char *template_name, const char *subject, const char *text,
			  const char *key)
{
	Datum		vals[7];
	SaasElevation elev;

	vals[0] = saas_uuid_datum(org_id);
	vals[1] = CStringGetTextDatum(kind);
	vals[2] = CStringGetTextDatum(recipient);
	vals[3] = CStringGetTextDatum(template_name);
	vals[4] = CStringGetTextDatum(subject);
	vals[5] = CStringGetTextDatum(text);
	vals[6] = CStringGetTextDatum(key);
	saas_elevate(&elev);
	if (saas_exec(&plan_enqueue_message, vals, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not enqueue the message");
	saas_unelevate(&elev);
}

/* saas_ott_drop_message: the delivery job of key goes unless it was sent. */
void
saas_ott_drop_message(const pg_uuid_t *org_id, const char *key)
{
	Datum		vals[2];
	SaasElevation elev;

	vals[0] = saas_uuid_datum(org_id);
	vals[1] = CStringGetTextDatum(key);
	saas_elevate(&elev);
	if (saas_exec(&plan_drop_message, vals, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not drop the message");
	saas_unelevate(&elev);
}

/*
 * saas_ott_claim: the token's row, locked, through plan (arguments: org id,
 * row id; columns 1 and 2: the stored hash and whether the row is still
 * usable), or the one refusal (saas_ott_refuse) when it is absent, the
 * secret does not match or the row is used up. The row stays in
 * SPI_tuptable. In an open SPI connection.
 */
HeapTuple
saas_ott_claim(SaasPlan *plan, const SaasOtt *t, const char *what)
{
	Datum		vals[2];
	HeapTuple	tup;
	bool		isnull;

	vals[0] = saas_uuid_datum(&t->org_id);
	vals[1] = saas_uuid_datum(&t->id);
	if (saas_exec(plan, vals, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the %s", what);
	if (SPI_processed == 0)
		saas_ott_refuse(what);
	tup = SPI_tuptable->vals[0];
	if (!saas_ott_matches(t, SPI_getbinval(tup, SPI_tuptable->tupdesc, 1, &isnull)) ||
		!DatumGetBool(SPI_getbinval(tup, SPI_tuptable->tupdesc, 2, &isnull)))
		saas_ott_refuse(what);
	return tup;
}

/*
 * saas_ott_refuse: the one answer for every token that cannot be used
 * (malformed, unknown, wrong secret, expired, used, revoked), so that no
 * answer tells which.
 */
void
saas_ott_refuse(const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_SAAS_VALIDATION),
			 errmsg("invalid or expired %s", what),
			 errdetail_internal("[{\"field\":\"token\",\"message\":\"is invalid or expired\"}]")));
}
