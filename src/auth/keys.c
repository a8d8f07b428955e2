/*-------------------------------------------------------------------------
 *
 * keys.c
 *	  JWT signing keys: read from the owner-only table saas._signing_keys,
 *	  cached in backend memory, and issued tokens.
 *
 * The cache is dropped when the table changes: a statement trigger on the
 * table sends a relcache invalidation for it (row changes alone send none),
 * which reaches every backend at commit. saas_keys_generation lets the
 * context cache know that verified tokens must be checked again.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "nodes/makefuncs.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "pg_saas.h"
#include "common/common.h"
#include "auth/auth.h"

PG_FUNCTION_INFO_V1(saas_signing_keys_changed);
PG_FUNCTION_INFO_V1(saas_random_bytes_sql);

#define KEYS_MAX 32

uint64		saas_keys_generation = 1;

static SaasKey *keys_cache = NULL;	/* newest first; retired keys left out */
static int	keys_count = 0;
static bool keys_valid = false;
static Oid	keys_relid = InvalidOid;

/* keys_invalidate: relcache callback; InvalidOid means "everything". */
static void
keys_invalidate(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == keys_relid)
	{
		keys_valid = false;
		saas_keys_generation++;
	}
}

/* saas_keys_init: register the invalidation callback (once, at load). */
void
saas_keys_init(void)
{
	CacheRegisterRelcacheCallback(keys_invalidate, (Datum) 0);
}

/* keys_load: read the non-retired keys, newest first, as the extension owner. */
static void
keys_load(void)
{
	SaasElevation elev;
	int			ret;
	uint64		i;
	MemoryContext oldcxt;
	Oid			nsp;

	nsp = get_namespace_oid("saas", true);
	keys_relid = OidIsValid(nsp) ? get_relname_relid("_signing_keys", nsp) : InvalidOid;
	if (!OidIsValid(keys_relid))
	{
		keys_count = 0;
		keys_valid = true;
		return;
	}

	if (keys_cache == NULL)
		keys_cache = MemoryContextAllocZero(TopMemoryContext, sizeof(SaasKey) * KEYS_MAX);

	saas_elevate(&elev);
	saas_citus_nested_reads();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ret = SPI_execute("SELECT kid, secret FROM saas._signing_keys "
					  "WHERE retired_at IS NULL ORDER BY created_at DESC, kid DESC",
					  true, KEYS_MAX);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read signing keys: %s", SPI_result_code_string(ret));

	oldcxt = MemoryContextSwitchTo(TopMemoryContext);
	keys_count = 0;
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		char	   *kid = SPI_getvalue(tup, desc, 1);
		Datum		d = SPI_getbinval(tup, desc, 2, &isnull);
		bytea	   *sec;
		SaasKey    *k = &keys_cache[keys_count];

		if (kid == NULL || isnull)
			continue;
		sec = DatumGetByteaPP(d);
		if (strlen(kid) >= sizeof(k->kid) ||
			VARSIZE_ANY_EXHDR(sec) > (int) sizeof(k->secret))
			continue;
		strlcpy(k->kid, kid, sizeof(k->kid));
		k->secret_len = VARSIZE_ANY_EXHDR(sec);
		memcpy(k->secret, VARDATA_ANY(sec), k->secret_len);
		keys_count++;
	}
	MemoryContextSwitchTo(oldcxt);
	SPI_finish();
	saas_unelevate(&elev);
	keys_valid = true;
}

/* keys_ensure: (re)load the signing keys if the table changed since. */
static void
keys_ensure(void)
{
	if (!keys_valid)
		keys_load();
}

/*
 * saas_keys_find: the non-retired key with this kid, or NULL. kid comes
 * from an untrusted token: it is only ever compared, never interpolated.
 */
const SaasKey *
saas_keys_find(const char *kid)
{
	int			i;

	if (kid == NULL || kid[0] == '\0')
		return NULL;
	keys_ensure();
	for (i = 0; i < keys_count; i++)
		if (strcmp(keys_cache[i].kid, kid) == 0)
			return &keys_cache[i];
	return NULL;
}

/* saas_keys_signer: the newest non-retired key, or an error. */
const SaasKey *
saas_keys_signer(void)
{
	keys_ensure();
	if (keys_count == 0)
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_UNAVAILABLE),
				 errmsg("no active JWT signing key"),
				 errhint("Run SELECT saas.rotate_signing_key(); as the extension owner.")));
	return &keys_cache[0];
}

/*
 * saas_token_issue: a signed token for a user. "trusted" marks the short
 * tokens this extension mints for its own work (see context.c).
 */
char *
saas_token_issue(const SaasTokenClaims *tc)
{
	const SaasKey *key = saas_keys_signer();
	int64		now = (int64) time(NULL);
	char		sub[37],
				org[37],
				jti[37];
	pg_uuid_t	j;
	StringInfoData claims;

	saas_uuid_to_cstr(tc->user_id, sub);
	saas_uuid_to_cstr(tc->org_id, org);
	saas_uuid_v7(&j);
	saas_uuid_to_cstr(&j, jti);

	initStringInfo(&claims);
	appendStringInfoString(&claims, "{\"iss\":");
	escape_json(&claims, saas_jwt_issuer);
	appendStringInfoString(&claims, ",\"aud\":");
	escape_json(&claims, saas_jwt_audience);
	appendStringInfo(&claims,
					 ",\"sub\":\"%s\",\"org_id\":\"%s\",\"role\":\"%s\","
					 "\"iat\":" INT64_FORMAT ",\"nbf\":" INT64_FORMAT ",\"exp\":" INT64_FORMAT
					 ",\"jti\":\"%s\"",
					 sub, org, tc->role, now, now, now + tc->ttl_s, jti);
	if (tc->gen != 0)
		appendStringInfo(&claims, ",\"gen\":" INT64_FORMAT, tc->gen);
	if (tc->trusted)
		appendStringInfoString(&claims, ",\"trusted\":true");
	if (tc->api_key && !tc->trusted)
		appendStringInfoString(&claims, ",\"api_key\":true");
	if (tc->trusted && tc->actor)
	{
		appendStringInfoString(&claims, ",\"actor\":");
		escape_json(&claims, tc->actor);
	}
	appendStringInfoChar(&claims, '}');
	return saas_jwt_encode(key->kid, claims.data, claims.len,
						   key->secret, key->secret_len);
}

/*
 * Trigger: a cached configuration table changed (signing keys, rate limits,
 * integrations); tell every backend of this node to reload it. The caches
 * follow the table by its OID. On Citus the trigger fires on the table's
 * placement on each node ("rate_limits_102012", a reference table's copy),
 * whose OID no cache knows: the table of the same name without the shard
 * suffix, in the same schema, is invalidated too.
 */
Datum
saas_signing_keys_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Relation	rel;
	const char *name;
	const char *us;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "saas._signing_keys_changed must be called as a trigger");
	rel = trigdata->tg_relation;
	CacheInvalidateRelcacheByRelid(RelationGetRelid(rel));

	name = RelationGetRelationName(rel);
	us = strrchr(name, '_');
	if (us != NULL && us > name && us[1] != '\0' &&
		strspn(us + 1, "0123456789") == strlen(us + 1))
	{
		char	   *logical = pnstrdup(name, us - name);
		Oid			relid = get_relname_relid(logical, RelationGetNamespace(rel));

		if (OidIsValid(relid) && relid != RelationGetRelid(rel))
			CacheInvalidateRelcacheByRelid(relid);
		pfree(logical);
	}
	return PointerGetDatum(NULL);
}

/* SQL: saas._random_bytes(n int) RETURNS bytea, from pg_strong_random. */
Datum
saas_random_bytes_sql(PG_FUNCTION_ARGS)
{
	int32		n = PG_GETARG_INT32(0);
	bytea	   *b;

	if (n < 1 || n > 1024)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("byte count must be between 1 and 1024")));
	b = palloc(VARHDRSZ + n);
	SET_VARSIZE(b, VARHDRSZ + n);
	saas_random_bytes(VARDATA(b), n);
	PG_RETURN_BYTEA_P(b);
}
