/*-------------------------------------------------------------------------
 *
 * context.c
 *	  The tenant context that row-level security reads: who acts, for which
 *	  organization, in which application role.
 *
 * The context travels in the setting saas.context as a signed token, and is
 * verified where it is read. Anyone may set the setting, so a forged value
 * is simply not valid: every tenant table then shows zero rows (fail
 * closed). Because it is a setting, it reaches parallel workers and Citus
 * workers like any other GUC.
 *
 * Verification results are cached per backend, keyed by the exact token
 * text, so the STABLE functions called from policies cost a string compare
 * after the first call. A cached entry is dropped when the signing keys
 * change, and its exp/nbf are re-checked against the transaction's start.
 *
 * The extension's own work (registration, the worker) runs under short
 * "trusted" tokens minted here, pushed with a GUC nest level and popped
 * after, so errors unwind them like a function's SET clause.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "pg_saas.h"
#include "jwt.h"

PG_FUNCTION_INFO_V1(saas_authenticate);
PG_FUNCTION_INFO_V1(saas_current_org_id);
PG_FUNCTION_INFO_V1(saas_current_user_id);
PG_FUNCTION_INFO_V1(saas_current_role);
PG_FUNCTION_INFO_V1(saas_context_trusted);

#define CTX_CACHE_SIZE 4

typedef struct CtxCacheEntry
{
	char	   *token;			/* TopMemoryContext copy, or NULL */
	uint64		keys_gen;
	int64		nbf;
	SaasContext ctx;
	Jsonb	   *claims;			/* TopMemoryContext copy, or NULL */
} CtxCacheEntry;

static CtxCacheEntry ctx_cache[CTX_CACHE_SIZE];
static int	ctx_cache_next = 0;

void
saas_context_init(void)
{
	saas_keys_init();
}

/* ctx_now: the transaction's start in Unix seconds (STABLE semantics). */
static int64
ctx_now(void)
{
	return (int64) timestamptz_to_time_t(GetCurrentTransactionStartTimestamp());
}

/* ctx_claim_uuid: a claim that must be a UUID string. */
static bool
ctx_claim_uuid(Jsonb *claims, const char *key, pg_uuid_t *out)
{
	JsonbValue *v = saas_jsonb_get(claims, key);
	char		buf[37];

	if (v == NULL || v->type != jbvString || v->val.string.len != 36)
		return false;
	memcpy(buf, v->val.string.val, 36);
	buf[36] = '\0';
	return saas_uuid_from_cstr(buf, out);
}

/* ctx_claim_equals: a string claim equal to want (aud may be an array). */
static bool
ctx_claim_matches(Jsonb *claims, const char *key, const char *want)
{
	JsonbValue *v = saas_jsonb_get(claims, key);
	int			wl = strlen(want);

	if (v == NULL)
		return false;
	if (v->type == jbvString)
		return v->val.string.len == wl && memcmp(v->val.string.val, want, wl) == 0;
	if (v->type == jbvBinary && strcmp(key, "aud") == 0)
	{
		JsonbIterator *it = JsonbIteratorInit(v->val.binary.data);
		JsonbValue	e;
		JsonbIteratorToken r;
		bool		found = false;

		while ((r = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
			if (r == WJB_ELEM && e.type == jbvString &&
				e.val.string.len == wl && memcmp(e.val.string.val, want, wl) == 0)
				found = true;
		return found;
	}
	return false;
}

/*
 * saas_context_verify: full verification of a context token. On success
 * fills *ctx (and *claims_out when asked); otherwise says why.
 */
static SaasJwtStatus
saas_context_verify(const char *token, SaasContext *ctx, int64 *nbf_out,
					Jsonb **claims_out)
{
	SaasJwtParts parts;
	SaasJwtStatus st;
	const SaasKey *key;
	Jsonb	   *claims;
	JsonbValue *v;
	int64		exp = 0,
				nbf = 0;

	memset(ctx, 0, sizeof(*ctx));
	st = saas_jwt_split(token, &parts);
	if (st != SAAS_JWT_OK)
		return st;
	key = saas_keys_find(parts.kid);
	if (key == NULL)
		return SAAS_JWT_UNKNOWN_KEY;
	st = saas_jwt_check_sig(&parts, key->secret, key->secret_len);
	if (st != SAAS_JWT_OK)
		return st;

	claims = saas_jsonb_from_text(parts.payload_json, parts.payload_len);
	st = saas_jwt_check_times(claims, ctx_now(), saas_jwt_leeway_s, true);
	if (st != SAAS_JWT_OK)
		return st;
	if (!ctx_claim_matches(claims, "iss", saas_jwt_issuer))
		return SAAS_JWT_WRONG_ISSUER;
	if (!ctx_claim_matches(claims, "aud", saas_jwt_audience))
		return SAAS_JWT_WRONG_AUDIENCE;
	if (!ctx_claim_uuid(claims, "sub", &ctx->user_id) ||
		!ctx_claim_uuid(claims, "org_id", &ctx->org_id))
		return SAAS_JWT_BAD_CLAIMS;
	v = saas_jsonb_get(claims, "role");
	if (v == NULL || v->type != jbvString ||
		!((v->val.string.len == 11 && memcmp(v->val.string.val, SAAS_ROLE_SUPER_ADMIN, 11) == 0) ||
		  (v->val.string.len == 5 && memcmp(v->val.string.val, SAAS_ROLE_ADMIN, 5) == 0) ||
		  (v->val.string.len == 4 && memcmp(v->val.string.val, SAAS_ROLE_USER, 4) == 0)))
		return SAAS_JWT_BAD_CLAIMS;
	memcpy(ctx->role, v->val.string.val, v->val.string.len);
	ctx->role[v->val.string.len] = '\0';

	v = saas_jsonb_get(claims, "trusted");
	ctx->trusted = (v != NULL && v->type == jbvBool && v->val.boolean);
	/* both were range-checked by saas_jwt_check_times */
	v = saas_jsonb_get(claims, "exp");
	(void) saas_numeric_to_int64(v->val.numeric, &exp);
	v = saas_jsonb_get(claims, "nbf");
	if (v != NULL)
		(void) saas_numeric_to_int64(v->val.numeric, &nbf);
	ctx->exp = exp;
	ctx->valid = true;
	*nbf_out = nbf;
	if (claims_out)
		*claims_out = claims;
	return SAAS_JWT_OK;
}

/* ctx_cache_store: remember a verified token (round robin). */
static const SaasContext *
ctx_cache_store(const char *token, const SaasContext *ctx, int64 nbf, Jsonb *claims)
{
	CtxCacheEntry *e = &ctx_cache[ctx_cache_next];

	ctx_cache_next = (ctx_cache_next + 1) % CTX_CACHE_SIZE;
	if (e->token)
		pfree(e->token);
	if (e->claims)
		pfree(e->claims);
	e->token = MemoryContextStrdup(TopMemoryContext, token);
	e->keys_gen = saas_keys_generation;
	e->nbf = nbf;
	e->ctx = *ctx;
	e->claims = NULL;
	if (claims)
	{
		e->claims = MemoryContextAlloc(TopMemoryContext, VARSIZE(claims));
		memcpy(e->claims, claims, VARSIZE(claims));
	}
	return &e->ctx;
}

/*
 * ctx_cache_lookup: the cached entry for exactly this token, verified under
 * the current keys, or NULL. Time claims are checked by the caller.
 */
static CtxCacheEntry *
ctx_cache_lookup(const char *token)
{
	int			i;

	for (i = 0; i < CTX_CACHE_SIZE; i++)
	{
		CtxCacheEntry *e = &ctx_cache[i];

		if (e->token && e->keys_gen == saas_keys_generation && strcmp(e->token, token) == 0)
			return e;
	}
	return NULL;
}

/*
 * saas_context_get: the verified context of this transaction, or NULL when
 * there is none or it does not verify (fail closed, never an error).
 */
const SaasContext *
saas_context_get(void)
{
	const char *token = GetConfigOption("saas.context", true, false);
	SaasContext ctx;
	int64		nbf;
	int64		now;

	if (token == NULL || token[0] == '\0')
		return NULL;

	now = ctx_now();
	{
		CtxCacheEntry *e = ctx_cache_lookup(token);

		if (e != NULL)
		{
			if (now > e->ctx.exp + saas_jwt_leeway_s ||
				now + saas_jwt_leeway_s < e->nbf)
				return NULL;
			return &e->ctx;
		}
	}
	if (saas_context_verify(token, &ctx, &nbf, NULL) != SAAS_JWT_OK)
		return NULL;
	return ctx_cache_store(token, &ctx, nbf, NULL);
}

/* saas_context_require: the context, or 401 for the API's handlers. */
const SaasContext *
saas_context_require(void)
{
	static SaasContext copy;	/* stable while the cache rotates under an operation */
	const SaasContext *ctx = saas_context_get();

	if (ctx == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_UNAUTHORIZED),
				 errmsg("authentication required"),
				 errhint("Call saas.authenticate(token) in this transaction, or send a Bearer token.")));
	copy = *ctx;
	return &copy;
}

/* ctx_set: put a token in saas.context with the given GUC action. */
static void
ctx_set(const char *token, GucAction action)
{
	(void) set_config_option("saas.context", token, PGC_USERSET, PGC_S_SESSION,
							 action, true, 0, false);
}

/*
 * saas_context_push_trusted: act as (org, user, role) for the extension's
 * own work until saas_context_pop(nestlevel). The token lives five minutes.
 */
int
saas_context_push_trusted(const pg_uuid_t *org_id, const pg_uuid_t *user_id,
						  const char *role)
{
	char	   *token = saas_token_issue(user_id, org_id, role, 300, true);
	int			nest = NewGUCNestLevel();

	ctx_set(token, GUC_ACTION_SAVE);
	return nest;
}

/* saas_context_pop: restore the context that was in force before the push. */
void
saas_context_pop(int nestlevel)
{
	AtEOXact_GUC(true, nestlevel);
}

/*
 * saas_context_adopt: verify token and make it the context, with the given
 * GUC action (LOCAL for the transaction, SAVE inside a nest level). Errors
 * with 401 and the reason when it does not verify.
 */
Jsonb *
saas_context_adopt(const char *token, int action)
{
	SaasContext ctx;
	int64		nbf;
	Jsonb	   *claims;
	SaasJwtStatus st;
	CtxCacheEntry *e = ctx_cache_lookup(token);

	/* A token verified before under the same keys: only its times can have changed. */
	if (e != NULL && e->claims != NULL && !e->ctx.trusted)
	{
		int64		now = ctx_now();

		if (now > e->ctx.exp + saas_jwt_leeway_s)
			ereport(ERROR,
					(errcode(ERRCODE_SAAS_UNAUTHORIZED),
					 errmsg("invalid token: %s", saas_jwt_error_message(SAAS_JWT_EXPIRED))));
		if (now + saas_jwt_leeway_s < e->nbf)
			ereport(ERROR,
					(errcode(ERRCODE_SAAS_UNAUTHORIZED),
					 errmsg("invalid token: %s", saas_jwt_error_message(SAAS_JWT_NOT_YET_VALID))));
		ctx_set(token, (GucAction) action);
		claims = palloc(VARSIZE(e->claims));
		memcpy(claims, e->claims, VARSIZE(e->claims));
		return claims;
	}

	st = saas_context_verify(token, &ctx, &nbf, &claims);
	if (st != SAAS_JWT_OK)
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_UNAUTHORIZED),
				 errmsg("invalid token: %s", saas_jwt_error_message(st))));
	if (ctx.trusted)
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_UNAUTHORIZED),
				 errmsg("invalid token: internal tokens cannot be presented")));
	ctx_set(token, (GucAction) action);
	ctx_cache_store(token, &ctx, nbf, claims);
	return claims;
}

/* saas_context_clear: no context until the enclosing nest level ends. */
void
saas_context_clear(void)
{
	ctx_set("", GUC_ACTION_SAVE);
}

/*
 * SQL: saas.authenticate(token text) RETURNS jsonb. Verifies the token and
 * makes it this transaction's context; returns its claims.
 */
Datum
saas_authenticate(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_UNAUTHORIZED),
				 errmsg("invalid token: token is missing")));
	PG_RETURN_JSONB_P(saas_context_adopt(text_to_cstring(PG_GETARG_TEXT_PP(0)),
										 GUC_ACTION_LOCAL));
}

/* SQL: saas.current_org_id() RETURNS uuid, NULL without a verified context. */
Datum
saas_current_org_id(PG_FUNCTION_ARGS)
{
	const SaasContext *ctx = saas_context_get();
	pg_uuid_t  *u;

	if (ctx == NULL)
		PG_RETURN_NULL();
	u = palloc(sizeof(pg_uuid_t));
	*u = ctx->org_id;
	PG_RETURN_UUID_P(u);
}

/* SQL: saas.current_user_id() RETURNS uuid */
Datum
saas_current_user_id(PG_FUNCTION_ARGS)
{
	const SaasContext *ctx = saas_context_get();
	pg_uuid_t  *u;

	if (ctx == NULL)
		PG_RETURN_NULL();
	u = palloc(sizeof(pg_uuid_t));
	*u = ctx->user_id;
	PG_RETURN_UUID_P(u);
}

/* SQL: saas.current_role() RETURNS text */
Datum
saas_current_role(PG_FUNCTION_ARGS)
{
	const SaasContext *ctx = saas_context_get();

	if (ctx == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(ctx->role));
}

/* SQL: saas._context_trusted() RETURNS boolean: the extension's own work. */
Datum
saas_context_trusted(PG_FUNCTION_ARGS)
{
	const SaasContext *ctx = saas_context_get();

	PG_RETURN_BOOL(ctx != NULL && ctx->trusted);
}
