/*-------------------------------------------------------------------------
 *
 * api_keys.c
 *	  API keys for machine clients: the key's format, its check, and the
 *	  tenant context it sets.
 *
 * A key reads "sk_" <org id> "_" <key id> "_" <secret>: the ids as 32 hex
 * digits each (the organization routes the lookup to one shard group on
 * Citus), the secret as 43 base64url characters (256 random bits). Only the
 * secret's SHA-256 is stored (saas._api_key_secrets); a fast hash suffices
 * for a random 256-bit secret, and it is compared in constant time.
 *
 * A key that checks out becomes the transaction's context the way a token
 * does: a context token minted here, marked "api_key", whose subject is the
 * key's id and whose role is admin. Wherever that context is read (policies,
 * on any node), the key's state is read again once per transaction: revoked,
 * expired, its creator no longer an active admin, or its organization
 * suspended, and the context is void from the next transaction on, in every
 * session. The scopes come from that read, never from the token.
 *
 * The key records its use (last_used_at) as the caller, under its own
 * context, at most once per SAAS_API_KEY_TOUCH_S seconds, skipping a row
 * another transaction holds: a busy key neither writes on every request
 * nor waits for another request's lock. It does so when the transaction
 * commits (a callback before commit), after everything the request did:
 * on Citus, a placement the caller has written may not be read by another
 * user later in the transaction, and the key's own checks on the worker
 * nodes read as the extension owner.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "storage/proc.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/uuid.h"

#include "pg_saas.h"
#include "common/common.h"
#include "auth/auth.h"

PG_FUNCTION_INFO_V1(saas_sql_authenticate_api_key);
PG_FUNCTION_INFO_V1(saas_context_api_key);
PG_FUNCTION_INFO_V1(saas_scope_allows);
PG_FUNCTION_INFO_V1(saas_api_key_state_changed);

static const struct
{
	const char *name;
	uint32		bit;
}			scope_names[] =
{
	{"users:read", SAAS_SCOPE_USERS_READ},
	{"users:write", SAAS_SCOPE_USERS_WRITE},
	{"audit:read", SAAS_SCOPE_AUDIT_READ},
	{"integrations:read", SAAS_SCOPE_INTEGRATIONS_READ},
};

/* saas_scope_bit: the bit of a scope name, 0 for an unknown one. */
uint32
saas_scope_bit(const char *name)
{
	size_t		i;

	for (i = 0; i < lengthof(scope_names); i++)
		if (strcmp(name, scope_names[i].name) == 0)
			return scope_names[i].bit;
	return 0;
}

/* saas_scope_name: the name of the lowest scope bit set, or "?" */
const char *
saas_scope_name(uint32 bits)
{
	size_t		i;

	for (i = 0; i < lengthof(scope_names); i++)
		if (bits & scope_names[i].bit)
			return scope_names[i].name;
	return "?";
}

/* saas_api_key_looks: whether a bearer credential is meant as an API key. */
bool
saas_api_key_looks(const char *s)
{
	return s != NULL && strncmp(s, SAAS_API_KEY_PREFIX, strlen(SAAS_API_KEY_PREFIX)) == 0;
}

/* ak_hex_uuid: 32 lower-case hex digits as a uuid. */
static bool
ak_hex_uuid(const char *s, pg_uuid_t *out)
{
	int			i;

	for (i = 0; i < UUID_LEN; i++)
	{
		int			h = saas_hex_value(s[2 * i]);
		int			l = saas_hex_value(s[2 * i + 1]);

		if (h < 0 || l < 0 || isupper((unsigned char) s[2 * i]) || isupper((unsigned char) s[2 * i + 1]))
			return false;
		out->data[i] = (unsigned char) (h * 16 + l);
	}
	return true;
}

/* ak_put_hex: a uuid as 32 lower-case hex digits. */
static void
ak_put_hex(StringInfo out, const pg_uuid_t *u)
{
	int			i;

	for (i = 0; i < UUID_LEN; i++)
		appendStringInfo(out, "%02x", u->data[i]);
}

/* saas_api_key_format: the key as shown to its creator, once. */
char *
saas_api_key_format(const pg_uuid_t *org_id, const pg_uuid_t *key_id,
					const unsigned char *secret)
{
	StringInfoData s;

	initStringInfo(&s);
	appendStringInfoString(&s, SAAS_API_KEY_PREFIX);
	ak_put_hex(&s, org_id);
	appendStringInfoChar(&s, '_');
	ak_put_hex(&s, key_id);
	appendStringInfoChar(&s, '_');
	saas_b64url_encode(secret, SAAS_API_KEY_SECRET_BYTES, &s);
	Assert(s.len == SAAS_API_KEY_LEN);
	return s.data;
}

/*
 * ak_parse: split a key into its organization, id and secret; false for
 * anything but the exact format (length, prefix, separators, encodings).
 */
static bool
ak_parse(const char *key, pg_uuid_t *org_id, pg_uuid_t *key_id, unsigned char *secret)
{
	StringInfoData dec;
	bool		ok;

	if (strlen(key) != SAAS_API_KEY_LEN || !saas_api_key_looks(key) ||
		key[3 + 32] != '_' || key[3 + 32 + 1 + 32] != '_' ||
		!ak_hex_uuid(key + 3, org_id) || !ak_hex_uuid(key + 3 + 32 + 1, key_id))
		return false;
	initStringInfo(&dec);
	ok = saas_b64url_decode(key + 3 + 32 + 1 + 32 + 1, 43, &dec) &&
		dec.len == SAAS_API_KEY_SECRET_BYTES;
	if (ok)
		memcpy(secret, dec.data, SAAS_API_KEY_SECRET_BYTES);
	pfree(dec.data);
	return ok;
}

/* saas_api_key_hash: SHA-256 of a secret (what is stored). */
void
saas_api_key_hash(const unsigned char *secret, unsigned char *out)
{
	saas_sha256(secret, SAAS_API_KEY_SECRET_BYTES, out);
}

/*
 * The key states read in this transaction, per backend. A slot is good only
 * in the (local) transaction that read it, and for statements that start
 * within SAAS_SESSION_TTL_S of the read: a transaction kept open does not
 * keep a revoked or expired key alive (under READ COMMITTED the next
 * statement after that sees the revocation; a REPEATABLE READ snapshot
 * cannot, docs/security.md "Known limits").
 */
#define KEY_SLOTS 16

typedef struct KeyState
{
	bool		used;
	LocalTransactionId lxid;
	TimestampTz read_at;		/* start of the statement that read it */
	pg_uuid_t	org_id;
	pg_uuid_t	key_id;
	bool		found;
	bool		valid;			/* not revoked or expired; creator and org active */
	uint32		scopes;
	bool		recent;			/* last_used_at within SAAS_API_KEY_TOUCH_S */
	bool		has_hash;
	unsigned char hash[SAAS_SHA256_LEN];
} KeyState;

static KeyState key_states[KEY_SLOTS];
static bool key_reading = false;

static SaasPlan plan_key = {
	"SELECT k.scopes,"
	" k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())"
	"  AND u.status = 'active' AND u.role IN ('admin', 'super_admin') AND o.status = 'active',"
	" s.secret_hash,"
	" k.last_used_at IS NOT NULL AND k.last_used_at > now() - make_interval(secs => "
	CppAsString2(SAAS_API_KEY_TOUCH_S) ")"
	" FROM saas.api_keys k"
	" JOIN saas.users u ON u.org_id = k.org_id AND u.id = k.created_by"
	" JOIN saas.organizations o ON o.id = k.org_id"
	" LEFT JOIN saas._api_key_secrets s ON s.org_id = k.org_id AND s.key_id = k.id"
	" WHERE k.org_id = $1 AND k.id = $2",
	2, {UUIDOID, UUIDOID}
};

/* Recording the use, as the key itself; skipped while another transaction holds the row. */
static SaasPlan plan_touch = {
	"UPDATE saas.api_keys SET last_used_at = now() WHERE org_id = $1 AND id = $2"
	" AND id IN (SELECT id FROM saas.api_keys WHERE org_id = $1 AND id = $2"
	"  AND (last_used_at IS NULL OR last_used_at <= now() - make_interval(secs => "
	CppAsString2(SAAS_API_KEY_TOUCH_S) ")) FOR UPDATE SKIP LOCKED)",
	2, {UUIDOID, UUIDOID}
};

/* The use to record when this transaction commits (see the top). */
static struct
{
	bool		pending;
	pg_uuid_t	org_id;
	pg_uuid_t	key_id;
	char	   *token;			/* TopMemoryContext: the key's minted context */
}			ak_touch;

/* ak_touch_clear: nothing to record any more. */
static void
ak_touch_clear(void)
{
	ak_touch.pending = false;
	if (ak_touch.token)
		pfree(ak_touch.token);
	ak_touch.token = NULL;
}

/*
 * ak_touch_now: record the key's use, as the caller under the key's own
 * context (the only change of a key a key may make), with search_path
 * pinned.
 */
static void
ak_touch_now(void)
{
	Datum		args[2];
	int			nest;

	args[0] = UUIDPGetDatum(&ak_touch.org_id);
	args[1] = UUIDPGetDatum(&ak_touch.key_id);
	/* Before commit there is no snapshot: setting the context on Citus runs SQL too. */
	PushActiveSnapshot(GetTransactionSnapshot());
	nest = saas_env_push();
	saas_context_set_minted(ak_touch.token, GUC_ACTION_SAVE);
	saas_spi_connect();
	if (saas_exec(&plan_touch, args, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not record the API key's use");
	SPI_finish();
	saas_env_pop(nest);
	saas_citus_propagate("saas.context");
	PopActiveSnapshot();
}

/* ak_xact_callback: record a pending use before commit; forget it otherwise. */
static void
ak_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_PRE_COMMIT && ak_touch.pending)
	{
		ak_touch.pending = false;
		ak_touch_now();
	}
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PREPARE || event == XACT_EVENT_PARALLEL_COMMIT ||
		event == XACT_EVENT_PARALLEL_ABORT)
		ak_touch_clear();
}

/* saas_api_keys_init: from _PG_init. */
void
saas_api_keys_init(void)
{
	RegisterXactCallback(ak_xact_callback, NULL);
}

/*
 * The key's facts over the caller's connection where Citus is loaded (see
 * saas_facts_routed): saas._api_key_facts runs on the node of the
 * organization's shards and reads them there as the owner.
 */
static SaasPlan plan_key_routed = {
	"SELECT (f).scopes, (f).valid, (f).secret_hash, (f).recent"
	" FROM (SELECT count(*) AS n, saas._api_key_facts($1, $2, $3, $4) AS f"
	"         FROM saas.users WHERE org_id = $2) q",
	4, {TEXTOID, UUIDOID, UUIDOID, BYTEAOID}
};

/* ak_from_row: a key's state from a row (scopes, valid, secret hash, recent). */
static void
ak_from_row(KeyState *s, HeapTuple t, TupleDesc d)
{
	bool		isnull;
	Datum		scopes = SPI_getbinval(t, d, 1, &isnull);
	ArrayType  *arr;
	Datum	   *elems;
	bool	   *enulls;
	Datum		h;
	int			n,
				i;

	if (isnull)
		return;
	s->found = true;
	arr = DatumGetArrayTypeP(scopes);
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &enulls, &n);
	for (i = 0; i < n; i++)
		if (!enulls[i])
			s->scopes |= saas_scope_bit(TextDatumGetCString(elems[i]));
	s->valid = DatumGetBool(SPI_getbinval(t, d, 2, &isnull)) && !isnull;
	h = SPI_getbinval(t, d, 3, &isnull);
	if (!isnull && VARSIZE_ANY_EXHDR(DatumGetByteaPP(h)) == SAAS_SHA256_LEN)
	{
		memcpy(s->hash, VARDATA_ANY(DatumGetByteaPP(h)), SAAS_SHA256_LEN);
		s->has_hash = true;
	}
	s->recent = DatumGetBool(SPI_getbinval(t, d, 4, &isnull)) && !isnull;
}

/* ak_query_here: the key's row on this node, as the owner (SPI open). */
static bool
ak_query_here(const pg_uuid_t *org_id, const pg_uuid_t *key_id)
{
	Datum		args[2] = {UUIDPGetDatum(org_id), UUIDPGetDatum(key_id)};

	return saas_owner_row(&plan_key, args);
}

/*
 * ak_read: one lookup of a key's state. Routed on Citus with proof of the
 * caller's right to it: the key's context token (token), or the SHA-256 of
 * the secret presented (presented; the stored hash comes back only when it
 * is that one).
 */
static void
ak_read(KeyState *s, const char *token, const unsigned char *presented)
{
	s->found = s->valid = s->recent = s->has_hash = false;
	s->scopes = 0;

	key_reading = true;
	PG_TRY();
	{
		saas_spi_connect();
		if ((token != NULL || presented != NULL) && saas_facts_routed())
		{
			Datum		args[4];
			char		nulls[4] = {' ', ' ', ' ', ' '};
			bytea	   *h = palloc(VARHDRSZ + SAAS_SHA256_LEN);

			args[0] = token ? CStringGetTextDatum(token) : (Datum) 0;
			nulls[0] = token ? ' ' : 'n';
			args[1] = UUIDPGetDatum(&s->org_id);
			args[2] = UUIDPGetDatum(&s->key_id);
			SET_VARSIZE(h, VARHDRSZ + SAAS_SHA256_LEN);
			if (presented)
				memcpy(VARDATA(h), presented, SAAS_SHA256_LEN);
			args[3] = PointerGetDatum(h);
			nulls[3] = presented ? ' ' : 'n';
			if (saas_caller_row(&plan_key_routed, args, nulls))
				ak_from_row(s, SPI_tuptable->vals[0], SPI_tuptable->tupdesc);
		}
		else if (ak_query_here(&s->org_id, &s->key_id))
			ak_from_row(s, SPI_tuptable->vals[0], SPI_tuptable->tupdesc);
		SPI_finish();
	}
	PG_FINALLY();
	{
		key_reading = false;
	}
	PG_END_TRY();
}

PG_FUNCTION_INFO_V1(saas_api_key_facts);

/*
 * SQL: saas._api_key_facts(token text, org_id uuid, key_id uuid,
 * presented_hash bytea, OUT scopes, OUT valid, OUT secret_hash, OUT recent)
 * RETURNS record. A key's state on this node for the routed read above;
 * NULL unless the caller proves its right to it: a key context token of
 * that key (secret_hash then NULL), or the hash of its secret, compared in
 * constant time with the stored one (secret_hash then that hash).
 */
Datum
saas_api_key_facts(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *org_id,
			   *key_id;
	TupleDesc	desc;
	HeapTupleHeader volatile result = NULL;
	volatile bool proven = false;
	bytea	   *volatile presented = NULL;

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_NULL();
	org_id = PG_GETARG_UUID_P(1);
	key_id = PG_GETARG_UUID_P(2);
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "saas._api_key_facts must return a record");
	if (!PG_ARGISNULL(3))
	{
		presented = PG_GETARG_BYTEA_PP(3);
		proven = VARSIZE_ANY_EXHDR(presented) == SAAS_SHA256_LEN;
	}
	else if (!PG_ARGISNULL(0))
	{
		pg_uuid_t	tok_org,
					tok_key;
		bool		api_key;

		proven = saas_context_token_subject(text_to_cstring(PG_GETARG_TEXT_PP(0)),
											&tok_org, &tok_key, &api_key) && api_key &&
			memcmp(&tok_org, org_id, sizeof(pg_uuid_t)) == 0 &&
			memcmp(&tok_key, key_id, sizeof(pg_uuid_t)) == 0;
	}
	if (!proven)
		PG_RETURN_NULL();
	desc = BlessTupleDesc(desc);

	key_reading = true;
	PG_TRY();
	{
		saas_spi_connect();
		if (ak_query_here(org_id, key_id))
		{
			Datum		values[4];
			bool		nulls[4];
			TupleDesc	d = SPI_tuptable->tupdesc;
			HeapTuple	t = SPI_tuptable->vals[0];
			int			i;

			for (i = 0; i < 4; i++)
				values[i] = SPI_getbinval(t, d, i + 1, &nulls[i]);
			/* A presented secret that is not the key's: nothing at all. */
			if (presented == NULL)
				nulls[2] = true;
			else if (nulls[2] ||
					 VARSIZE_ANY_EXHDR(DatumGetByteaPP(values[2])) != SAAS_SHA256_LEN ||
					 !saas_timingsafe_eq((const unsigned char *) VARDATA_ANY(DatumGetByteaPP(values[2])),
										 (const unsigned char *) VARDATA_ANY(presented), SAAS_SHA256_LEN))
				proven = false;
			if (proven)
				result = SPI_returntuple(heap_form_tuple(desc, values, nulls), desc);
		}
		SPI_finish();
	}
	PG_FINALLY();
	{
		key_reading = false;
	}
	PG_END_TRY();
	if (result == NULL)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(PointerGetDatum(result));
}

/*
 * ak_state: the key's state in this transaction, read once, and again for a
 * statement that starts SAAS_SESSION_TTL_S or more after that read.
 */
static KeyState *
ak_state(const pg_uuid_t *org_id, const pg_uuid_t *key_id, const char *token,
		 const unsigned char *presented)
{
	KeyState   *s = &key_states[key_id->data[15] % KEY_SLOTS];
	TimestampTz stmt = GetCurrentStatementStartTimestamp();

	if (!s->used || s->lxid != MyProc->lxid ||
		stmt - s->read_at >= (int64) SAAS_SESSION_TTL_S * USECS_PER_SEC ||
		memcmp(&s->key_id, key_id, sizeof(pg_uuid_t)) != 0 ||
		memcmp(&s->org_id, org_id, sizeof(pg_uuid_t)) != 0)
	{
		s->used = false;
		s->org_id = *org_id;
		s->key_id = *key_id;
		ak_read(s, token, presented);
		s->lxid = MyProc->lxid;
		s->read_at = stmt;
		s->used = true;
	}
	return s;
}

/*
 * saas_api_key_check: whether the key of a context still holds (read once
 * per transaction); its scopes as they stand now.
 */
SaasSessionStatus
saas_api_key_check(const pg_uuid_t *org_id, const pg_uuid_t *key_id, uint32 *scopes,
				   const char *token)
{
	KeyState   *s;

	*scopes = 0;
	/* A policy evaluated while we read the key: no context (fail closed). */
	if (key_reading)
		return SAAS_SESSION_KEY_INVALID;
	s = ak_state(org_id, key_id, token, NULL);
	if (!s->found || !s->valid)
		return SAAS_SESSION_KEY_INVALID;
	*scopes = s->scopes;
	return SAAS_SESSION_OK;
}

/* saas_api_key_forget: drop the cached key states (a key changed here). */
void
saas_api_key_forget(void)
{
	int			i;

	for (i = 0; i < KEY_SLOTS; i++)
		key_states[i].used = false;
}

/* ak_refuse: 401 for a key that does not authenticate, whatever the reason. */
static void
ak_refuse(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_SAAS_UNAUTHORIZED),
			 errmsg("invalid API key: %s", saas_session_message(SAAS_SESSION_KEY_INVALID))));
}

/*
 * saas_api_key_adopt: check a key and make it the context, with the given
 * GUC action (LOCAL for the transaction, SAVE inside a nest level); 401 when
 * it does not check out. Records the key's use.
 */
void
saas_api_key_adopt(const char *key, int action)
{
	pg_uuid_t	org_id,
				key_id;
	unsigned char secret[SAAS_API_KEY_SECRET_BYTES];
	unsigned char hash[SAAS_SHA256_LEN];
	static const unsigned char nohash[SAAS_SHA256_LEN] = {0};
	SaasTokenClaims tc = {0};
	KeyState   *s;
	bool		match;
	char	   *token;

	if (key == NULL || !ak_parse(key, &org_id, &key_id, secret))
		ak_refuse();
	saas_api_key_hash(secret, hash);
	explicit_bzero(secret, sizeof(secret));
	/* Always read afresh: a key presented is checked against the table now. */
	saas_api_key_forget();
	s = ak_state(&org_id, &key_id, NULL, hash);
	/* The comparison runs whether or not the key exists. */
	match = saas_timingsafe_eq(hash, s->has_hash ? s->hash : nohash, sizeof(hash));
	if (!match || !s->has_hash || !s->found || !s->valid)
		ak_refuse();

	tc.user_id = &key_id;
	tc.org_id = &org_id;
	tc.role = SAAS_ROLE_ADMIN;
	tc.ttl_s = saas_jwt_ttl_s;
	tc.api_key = true;
	token = saas_token_issue(&tc);
	saas_context_set_minted(token, action);

	/* The use, recorded as the key at commit (never in a read-only transaction). */
	if (!s->recent && !XactReadOnly && !IsParallelWorker())
	{
		ak_touch_clear();
		ak_touch.org_id = org_id;
		ak_touch.key_id = key_id;
		ak_touch.token = MemoryContextStrdup(TopMemoryContext, token);
		ak_touch.pending = true;
	}
}

/*
 * saas_context_require_scope: the context (401 without one), or 403 when an
 * API key acts that has no scope of mask.
 */
const SaasContext *
saas_context_require_scope(uint32 mask, const char *what)
{
	const SaasContext *ctx = saas_context_require();

	if (ctx->api_key && (ctx->scopes & mask) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_FORBIDDEN),
				 errmsg("this API key lacks the scope %s needed to %s", saas_scope_name(mask), what)));
	return ctx;
}

/* saas_context_refuse_api_key: the context (401 without one), or 403 when an API key acts. */
const SaasContext *
saas_context_refuse_api_key(const char *what)
{
	const SaasContext *ctx = saas_context_require();

	if (ctx->api_key)
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_FORBIDDEN),
				 errmsg("an API key cannot %s", what)));
	return ctx;
}

/*
 * SQL: saas.authenticate_api_key(key text) RETURNS jsonb. Checks the key and
 * makes it this transaction's context; returns {api_key_id, org_id, scopes}.
 */
Datum
saas_sql_authenticate_api_key(PG_FUNCTION_ARGS)
{
	const SaasContext *ctx;
	StringInfoData out;
	bool		first = true;
	size_t		i;

	saas_api_key_adopt(PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0)),
					   GUC_ACTION_LOCAL);
	ctx = saas_context_require();
	initStringInfo(&out);
	appendStringInfoString(&out, "{\"api_key_id\":");
	saas_json_uuid(&out, &ctx->user_id);
	appendStringInfoString(&out, ",\"org_id\":");
	saas_json_uuid(&out, &ctx->org_id);
	appendStringInfoString(&out, ",\"scopes\":[");
	for (i = 0; i < lengthof(scope_names); i++)
		if (ctx->scopes & scope_names[i].bit)
		{
			if (!first)
				appendStringInfoChar(&out, ',');
			saas_json_string(&out, scope_names[i].name);
			first = false;
		}
	appendStringInfoString(&out, "]}");
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(out.data)));
}

/* SQL: saas._context_api_key() RETURNS uuid: the acting key, or NULL. */
Datum
saas_context_api_key(PG_FUNCTION_ARGS)
{
	const SaasContext *ctx = saas_context_get();
	pg_uuid_t  *u;

	if (ctx == NULL || !ctx->api_key)
		PG_RETURN_NULL();
	u = palloc(sizeof(pg_uuid_t));
	*u = ctx->user_id;
	PG_RETURN_UUID_P(u);
}

/*
 * SQL: saas._scope_allows(scope text) RETURNS boolean: false only when an
 * API key acts without the scope (an unknown scope name: no key has it).
 */
Datum
saas_scope_allows(PG_FUNCTION_ARGS)
{
	const SaasContext *ctx = saas_context_get();

	if (ctx == NULL || !ctx->api_key)
		PG_RETURN_BOOL(true);
	PG_RETURN_BOOL((ctx->scopes & saas_scope_bit(text_to_cstring(PG_GETARG_TEXT_PP(0)))) != 0);
}

/* Trigger: API keys changed; this backend re-reads their states. */
Datum
saas_api_key_state_changed(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "saas._api_key_state_changed must be called as a trigger");
	saas_api_key_forget();
	return PointerGetDatum(NULL);
}
