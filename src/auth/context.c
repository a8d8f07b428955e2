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
 * change, and its time claims are re-checked against the transaction's start.
 * Every read also checks the token against its user's current facts
 * (session.c): still active, organization active, session not ended, and
 * the role lowered to what the user has now.
 *
 * The extension's own work (registration, the worker) runs under short
 * "trusted" tokens minted here, pushed with a GUC nest level and popped
 * after, so errors unwind them like a function's SET clause; they act only
 * where they cannot have been replayed (ctx_trusted_here).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "common/jsonapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/numeric.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "pg_saas.h"
#include "common/common.h"
#include "auth/auth.h"

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
	SaasJwtTimes times;
	SaasContext ctx;			/* as the token says */
	SaasContext eff;			/* as the facts stand now (role lowered) */
	int64		gen;			/* session generation the token was issued in */
	char		jti[65];
	uint64		jti_hash;
	Jsonb	   *claims;			/* TopMemoryContext copy, or NULL */
} CtxCacheEntry;

static CtxCacheEntry ctx_cache[CTX_CACHE_SIZE];
static int	ctx_cache_next = 0;

/* saas_context_init: from _PG_init; the signing keys' cache invalidation, API keys' commit callback. */
void
saas_context_init(void)
{
	saas_keys_init();
	saas_api_keys_init();
}

/*
 * ctx_now: the statement's start in Unix seconds: stable within a statement
 * (as the STABLE context functions must be), yet a token expires inside a
 * long transaction too.
 */
static int64
ctx_now(void)
{
	return (int64) timestamptz_to_time_t(GetCurrentStatementStartTimestamp());
}

/*
 * The claims of a context token, read in one pass of the JSON parser (no
 * jsonb is built on this path: it runs once per token per backend, and for
 * every request of the relay). Repeated claims make the token invalid.
 */
typedef struct CtxClaims
{
	int			depth;
	int			in_array;		/* inside the aud array */
	const char *field;
	bool		bad;
	uint32		seen;			/* bit per claim below */
	char		sub[40];
	char		org[40];
	char		role[16];
	char		jti[65];
	char		actor[40];
	int64		gen;
	bool		iss_ok;
	bool		aud_ok;
	bool		trusted;
	bool		api_key;
	int64		exp,
				nbf,
				iat;
	/* when the claims are wanted as jsonb: built in the same pass */
	bool		build;
	JsonbParseState *ps;
	JsonbValue *result;
	bool		in_array_at[66];	/* container kind per depth */
} CtxClaims;

/* cl_push_scalar: the current scalar into the jsonb being built. */
static void
cl_push_scalar(CtxClaims *c, char *token, JsonTokenType type)
{
	JsonbValue	v;

	switch (type)
	{
		case JSON_TOKEN_STRING:
			v.type = jbvString;
			v.val.string.val = token;
			v.val.string.len = strlen(token);
			break;
		case JSON_TOKEN_NUMBER:
			v.type = jbvNumeric;
			v.val.numeric = DatumGetNumeric(DirectFunctionCall3(numeric_in, CStringGetDatum(token),
																ObjectIdGetDatum(InvalidOid),
																Int32GetDatum(-1)));
			break;
		case JSON_TOKEN_TRUE:
		case JSON_TOKEN_FALSE:
			v.type = jbvBool;
			v.val.boolean = (type == JSON_TOKEN_TRUE);
			break;
		default:
			v.type = jbvNull;
			break;
	}
	c->result = pushJsonbValue(&c->ps, c->in_array_at[c->depth] ? WJB_ELEM : WJB_VALUE, &v);
}

enum
{
	CL_ISS = 1, CL_AUD = 2, CL_SUB = 4, CL_ORG = 8, CL_ROLE = 16,
	CL_EXP = 32, CL_NBF = 64, CL_IAT = 128, CL_TRUSTED = 256,
	CL_JTI = 512, CL_GEN = 1024, CL_ACTOR = 2048, CL_API_KEY = 4096
};

/* cl_bit: the bit of a registered claim name in CtxClaims.seen (0: other). */
static uint32
cl_bit(const char *f)
{
	if (f == NULL)
		return 0;
	if (strcmp(f, "iss") == 0)
		return CL_ISS;
	if (strcmp(f, "aud") == 0)
		return CL_AUD;
	if (strcmp(f, "sub") == 0)
		return CL_SUB;
	if (strcmp(f, "org_id") == 0)
		return CL_ORG;
	if (strcmp(f, "role") == 0)
		return CL_ROLE;
	if (strcmp(f, "exp") == 0)
		return CL_EXP;
	if (strcmp(f, "nbf") == 0)
		return CL_NBF;
	if (strcmp(f, "iat") == 0)
		return CL_IAT;
	if (strcmp(f, "trusted") == 0)
		return CL_TRUSTED;
	if (strcmp(f, "jti") == 0)
		return CL_JTI;
	if (strcmp(f, "gen") == 0)
		return CL_GEN;
	if (strcmp(f, "actor") == 0)
		return CL_ACTOR;
	if (strcmp(f, "api_key") == 0)
		return CL_API_KEY;
	return 0;
}

/*
 * cl_open: an object or array begins. Nesting deeper than 64 marks the
 * claims bad and stops building the copy.
 */
static void
cl_open(CtxClaims *c, bool is_array)
{
	if (c->depth >= 64)
	{
		c->bad = true;
		c->build = false;
	}
	c->depth++;
	if (c->build)
	{
		c->in_array_at[c->depth] = is_array;
		c->result = pushJsonbValue(&c->ps, is_array ? WJB_BEGIN_ARRAY : WJB_BEGIN_OBJECT, NULL);
	}
}

/* cl_close: an object or array ends. */
static void
cl_close(CtxClaims *c, bool is_array)
{
	if (c->build)
		c->result = pushJsonbValue(&c->ps, is_array ? WJB_END_ARRAY : WJB_END_OBJECT, NULL);
	c->depth--;
}

static void
cl_object_start(void *state)
{
	cl_open((CtxClaims *) state, false);
}

static void
cl_object_end(void *state)
{
	cl_close((CtxClaims *) state, false);
}

static void
cl_array_start(void *state)
{
	CtxClaims  *c = state;

	if (c->depth == 1 && cl_bit(c->field) == CL_AUD)
		c->in_array++;
	cl_open(c, true);
}

static void
cl_array_end(void *state)
{
	CtxClaims  *c = state;

	cl_close(c, true);
	if (c->depth == 1 && c->in_array)
		c->in_array--;
}

/*
 * cl_field: a key. Top-level keys are checked for repeats (a claim given
 * twice makes the claims bad) and remembered for the value that follows.
 */
static void
cl_field(void *state, char *fname, bool isnull)
{
	CtxClaims  *c = state;
	uint32		bit;

	if (c->build)
	{
		JsonbValue	k;

		k.type = jbvString;
		k.val.string.val = fname;
		k.val.string.len = strlen(fname);
		c->result = pushJsonbValue(&c->ps, WJB_KEY, &k);
	}
	if (c->depth != 1)
		return;
	bit = cl_bit(fname);
	if (bit & c->seen)
		c->bad = true;
	c->seen |= bit;
	c->field = fname;
}

/*
 * cl_int: a JSON integer (the session generation).
 */
static bool
cl_int(const char *token, int64 *out)
{
	char	   *end;
	long long	v;

	errno = 0;
	v = strtoll(token, &end, 10);
	if (end == token || *end != '\0' || errno != 0)
		return false;
	*out = (int64) v;
	return true;
}

/*
 * cl_scalar: a value. Top-level values of registered claims are checked and
 * kept (sub, org, role, jti, actor, exp, nbf, iat, ...); aud may also be an
 * array of strings, one of which must be the configured audience.
 */
static void
cl_scalar(void *state, char *token, JsonTokenType type)
{
	CtxClaims  *c = state;
	uint32		bit;
	bool		str = (type == JSON_TOKEN_STRING);

	if (c->build && c->depth > 0)
		cl_push_scalar(c, token, type);
	if (c->depth == 2 && c->in_array)
	{
		if (str && strcmp(token, saas_jwt_audience) == 0)
			c->aud_ok = true;
		return;
	}
	if (c->depth != 1)
		return;
	bit = cl_bit(c->field);
	switch (bit)
	{
		case CL_ISS:
			c->iss_ok = str && strcmp(token, saas_jwt_issuer) == 0;
			break;
		case CL_AUD:
			c->aud_ok = str && strcmp(token, saas_jwt_audience) == 0;
			break;
		case CL_SUB:
		case CL_ORG:
		case CL_ROLE:
		case CL_JTI:
		case CL_ACTOR:
			{
				char	   *dst = bit == CL_SUB ? c->sub : bit == CL_ORG ? c->org :
					bit == CL_ROLE ? c->role : bit == CL_JTI ? c->jti : c->actor;
				size_t		n = bit == CL_ROLE ? sizeof(c->role) : bit == CL_JTI ? sizeof(c->jti) :
					bit == CL_ACTOR ? sizeof(c->actor) : sizeof(c->sub);

				if (!str || strlen(token) >= n)
					c->bad = true;
				else
					strlcpy(dst, token, n);
			}
			break;
		case CL_EXP:
		case CL_NBF:
		case CL_IAT:
			/* NumericDate may be fractional (RFC 7519): exp rounds down, nbf and iat up. */
			if (type != JSON_TOKEN_NUMBER ||
				!saas_jwt_numeric_date(token, bit != CL_EXP,
									   bit == CL_EXP ? &c->exp : bit == CL_NBF ? &c->nbf : &c->iat))
				c->bad = true;
			break;
		case CL_GEN:
			if (type != JSON_TOKEN_NUMBER || !cl_int(token, &c->gen) || c->gen < 0)
				c->bad = true;
			break;
		case CL_TRUSTED:
			c->trusted = (type == JSON_TOKEN_TRUE);
			break;
		case CL_API_KEY:
			c->api_key = (type == JSON_TOKEN_TRUE);
			break;
		default:
			break;
	}
}

/*
 * saas_context_verify: full verification of a context token. On success
 * fills *ctx (and *claims_out, as jsonb, when asked); otherwise says why.
 */
static SaasJwtStatus
saas_context_verify(const char *token, SaasContext *ctx, SaasJwtTimes *times,
					int64 *gen, char *jti, Jsonb **claims_out)
{
	SaasJwtParts parts;
	SaasJwtStatus st;
	const SaasKey *key;
	CtxClaims	c = {0};
	JsonSemAction sem = {0};
	JsonLexContext *lex;
	int64		now = ctx_now();
	int			leeway = saas_jwt_leeway_s;

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

	/* Signed by one of our keys: now read the claims. */
	if (!pg_verifymbstr(parts.payload_json, parts.payload_len, true))
		return SAAS_JWT_MALFORMED;
	c.build = (claims_out != NULL);
	sem.semstate = &c;
	sem.object_start = cl_object_start;
	sem.object_end = cl_object_end;
	sem.array_start = cl_array_start;
	sem.array_end = cl_array_end;
	sem.object_field_start = cl_field;
	sem.scalar = cl_scalar;
	lex = makeJsonLexContextCstringLen(parts.payload_json, parts.payload_len,
									   GetDatabaseEncoding(), true);
	if (pg_parse_json(lex, &sem) != JSON_SUCCESS)
		return SAAS_JWT_MALFORMED;
	if (c.bad)
		return SAAS_JWT_BAD_CLAIMS;
	times->has_exp = (c.seen & CL_EXP) != 0;
	times->has_nbf = (c.seen & CL_NBF) != 0;
	times->has_iat = (c.seen & CL_IAT) != 0;
	times->exp = c.exp;
	times->nbf = c.nbf;
	times->iat = c.iat;
	st = saas_jwt_check_time_values(times, now, leeway, true);
	if (st != SAAS_JWT_OK)
		return st;
	if (!c.iss_ok)
		return SAAS_JWT_WRONG_ISSUER;
	if (!c.aud_ok)
		return SAAS_JWT_WRONG_AUDIENCE;
	if (!saas_uuid_from_cstr(c.sub, &ctx->user_id) ||
		!saas_uuid_from_cstr(c.org, &ctx->org_id))
		return SAAS_JWT_BAD_CLAIMS;
	if (strcmp(c.role, SAAS_ROLE_SUPER_ADMIN) != 0 && strcmp(c.role, SAAS_ROLE_ADMIN) != 0 &&
		strcmp(c.role, SAAS_ROLE_USER) != 0)
		return SAAS_JWT_BAD_CLAIMS;
	strlcpy(ctx->role, c.role, sizeof(ctx->role));
	ctx->trusted = c.trusted;
	/* An API key's context: admin of the org, capped by the key's scopes. */
	if (c.api_key && (c.trusted || strcmp(c.role, SAAS_ROLE_ADMIN) != 0))
		return SAAS_JWT_BAD_CLAIMS;
	ctx->api_key = c.api_key;
	/* Only the extension's own tokens name a non-user actor (the worker's services). */
	if (c.trusted)
		strlcpy(ctx->actor, c.actor, sizeof(ctx->actor));
	ctx->valid = true;
	*gen = c.gen;
	strlcpy(jti, c.jti, 65);
	if (claims_out)
		*claims_out = (c.build && c.result) ? JsonbValueToJsonb(c.result) :
			saas_jsonb_from_text(parts.payload_json, parts.payload_len);
	return SAAS_JWT_OK;
}

/*
 * saas_context_token_subject: the organization and user (an API key's
 * context: the key, *api_key set) of a token signed by one of our keys and
 * within its time claims, not a trusted one; false otherwise. For the
 * routed fact reads (saas._context_facts, saas._api_key_facts), which tell
 * a token's holder the facts of its own user or key only.
 */
bool
saas_context_token_subject(const char *token, pg_uuid_t *org_id, pg_uuid_t *user_id,
						   bool *api_key)
{
	SaasContext ctx;
	SaasJwtTimes times;
	int64		gen;
	char		jti[65];

	if (saas_context_verify(token, &ctx, &times, &gen, jti, NULL) != SAAS_JWT_OK ||
		ctx.trusted)
		return false;
	*api_key = ctx.api_key;
	*org_id = ctx.org_id;
	*user_id = ctx.user_id;
	return true;
}

/* ctx_cache_store: remember a verified token (round robin). */
static CtxCacheEntry *
ctx_cache_store(const char *token, const SaasContext *ctx, const SaasJwtTimes *times,
				int64 gen, const char *jti, Jsonb *claims)
{
	CtxCacheEntry *e = &ctx_cache[ctx_cache_next];

	ctx_cache_next = (ctx_cache_next + 1) % CTX_CACHE_SIZE;
	if (e->token)
		pfree(e->token);
	if (e->claims)
		pfree(e->claims);
	e->token = MemoryContextStrdup(TopMemoryContext, token);
	e->keys_gen = saas_keys_generation;
	e->times = *times;
	e->ctx = *ctx;
	e->eff = *ctx;
	e->gen = gen;
	strlcpy(e->jti, jti, sizeof(e->jti));
	e->jti_hash = saas_jti_hash(jti, strlen(jti));
	e->claims = NULL;
	if (claims)
	{
		e->claims = MemoryContextAlloc(TopMemoryContext, VARSIZE(claims));
		memcpy(e->claims, claims, VARSIZE(claims));
	}
	return e;
}

/*
 * ctx_fresh: the entry's context as its user's facts stand now (cached for
 * SAAS_SESSION_TTL_S), in e->eff; or why it no longer holds. The extension's
 * own tokens are minted for one operation and are not checked.
 */
static SaasSessionStatus
ctx_fresh(CtxCacheEntry *e)
{
	SaasSessionStatus st;

	e->eff = e->ctx;
	if (e->ctx.trusted)
		return SAAS_SESSION_OK;
	if (e->ctx.api_key)
		return saas_api_key_check(&e->ctx.org_id, &e->ctx.user_id, &e->eff.scopes, e->token);
	st = saas_session_check(&e->ctx.org_id, &e->ctx.user_id, e->gen, e->jti_hash, e->eff.role,
							 e->token);
	return st;
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
 * ctx_trusted_here: whether a trusted token may act here. On Citus it
 * travels as the text of a SET LOCAL that other sessions of the role can
 * read, so only (1) in the backend that minted it while its push lasts
 * (saas._trusted: set by C code or a superuser only, restored by the pop and
 * any abort, inherited by parallel workers), or (2) in a session whose login
 * role is a superuser or no member of saas_api: the extension's own
 * connections (the worker's; Citus's while the owner acts, saas_elevate).
 */
static bool
ctx_trusted_here(const char *token)
{
	const char *minted = GetConfigOption("saas._trusted", true, false);
	Oid			session = GetSessionUserId();
	Oid			api;

	if (minted != NULL && strcmp(minted, token) == 0)
		return true;
	if (superuser_arg(session))
		return true;
	/* membership, not privileges: a NOINHERIT member can still SET ROLE saas_api */
	api = get_role_oid("saas_api", true);
	return OidIsValid(api) && !is_member_of_role(session, api);
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
	SaasJwtTimes times;
	CtxCacheEntry *e;
	int64		gen;
	char		jti[65];

	if (token == NULL || token[0] == '\0')
		return NULL;

	e = ctx_cache_lookup(token);
	if (e != NULL)
	{
		if (saas_jwt_check_time_values(&e->times, ctx_now(), saas_jwt_leeway_s, true) != SAAS_JWT_OK)
			return NULL;
	}
	else
	{
		if (saas_context_verify(token, &ctx, &times, &gen, jti, NULL) != SAAS_JWT_OK)
			return NULL;
		e = ctx_cache_store(token, &ctx, &times, gen, jti, NULL);
	}
	if (e->ctx.trusted && !ctx_trusted_here(token))
		return NULL;
	if (ctx_fresh(e) != SAAS_SESSION_OK)
		return NULL;
	return &e->eff;
}

/*
 * saas_context_token: the jti and expiry of the token in force (for
 * logout), or false when the context is not a user's token.
 */
bool
saas_context_token(char *jti /* 65 bytes */ , int64 *exp)
{
	const char *token = GetConfigOption("saas.context", true, false);
	CtxCacheEntry *e;

	if (saas_context_get() == NULL || token == NULL)
		return false;
	e = ctx_cache_lookup(token);
	if (e == NULL || e->ctx.trusted || e->ctx.api_key)
		return false;
	strlcpy(jti, e->jti, 65);
	*exp = e->times.has_exp ? e->times.exp : ctx_now() + saas_jwt_ttl_s;
	return true;
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

/*
 * ctx_set: put a token in saas.context with the given GUC action (and tell
 * the Citus nodes of the transaction, where Citus is loaded).
 */
static void
ctx_set(const char *token, GucAction action)
{
	(void) set_config_option("saas.context", token, PGC_USERSET, PGC_S_SESSION,
							 action, true, 0, false);
	saas_citus_propagate("saas.context");
}

/*
 * ctx_push_minted: a new GUC nest level with token, just minted here, as
 * the context and as this backend's trusted token (see ctx_trusted_here).
 */
static int
ctx_push_minted(const char *token)
{
	int			nest = NewGUCNestLevel();

	(void) set_config_option("saas._trusted", token, PGC_SUSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	ctx_set(token, GUC_ACTION_SAVE);
	return nest;
}

/*
 * saas_context_push_trusted: act as (org, user, role) for the extension's
 * own work until saas_context_pop(nestlevel). The token lives five minutes.
 */
int
saas_context_push_trusted(const pg_uuid_t *org_id, const pg_uuid_t *user_id,
						  const char *role)
{
	SaasTokenClaims tc = {.user_id = user_id, .org_id = org_id, .role = role,
	.ttl_s = 300, .trusted = true};

	return ctx_push_minted(saas_token_issue(&tc));
}

/*
 * saas_context_pop: restore the context that was in force before the push
 * (and the trusted token of an outer push, if any).
 */
void
saas_context_pop(int nestlevel)
{
	AtEOXact_GUC(true, nestlevel);
	saas_citus_propagate("saas.context");
}

/*
 * saas_context_push_service: act for an external service (the worker's
 * webhook appliers and sync) in org; the audit names the actor, for example
 * "service:user-service". The context's role is admin: the service acts
 * within the organization's rules, never above them.
 */
int
saas_context_push_service(const pg_uuid_t *org_id, const char *service)
{
	static const pg_uuid_t nil_user = {{0}};
	char		actor[40];
	SaasTokenClaims tc = {.user_id = &nil_user, .org_id = org_id, .role = SAAS_ROLE_ADMIN,
	.ttl_s = 300, .trusted = true, .actor = actor};

	snprintf(actor, sizeof(actor), "service:%s", service);
	return ctx_push_minted(saas_token_issue(&tc));
}

/*
 * saas_context_adopt: verify token and make it the context, with the given
 * GUC action (LOCAL for the transaction, SAVE inside a nest level). Errors
 * with 401 and the reason when it does not verify.
 */
Jsonb *
saas_context_adopt(const char *token, int action, bool want_claims)
{
	SaasContext ctx;
	SaasJwtTimes times;
	Jsonb	   *claims;
	SaasJwtStatus st;
	SaasSessionStatus ss;
	int64		gen;
	char		jti[65];
	CtxCacheEntry *e = ctx_cache_lookup(token);

	/* A token verified before under the same keys: only its times and facts can have changed. */
	if (e != NULL && (e->claims != NULL || !want_claims) && !e->ctx.trusted && !e->ctx.api_key)
	{
		st = saas_jwt_check_time_values(&e->times, ctx_now(), saas_jwt_leeway_s, true);
		if (st != SAAS_JWT_OK)
			ereport(ERROR,
					(errcode(ERRCODE_SAAS_UNAUTHORIZED),
					 errmsg("invalid token: %s", saas_jwt_error_message(st))));
		if ((ss = ctx_fresh(e)) != SAAS_SESSION_OK)
			ereport(ERROR,
					(errcode(ERRCODE_SAAS_UNAUTHORIZED),
					 errmsg("invalid token: %s", saas_session_message(ss))));
		ctx_set(token, (GucAction) action);
		if (!want_claims)
			return NULL;
		claims = palloc(VARSIZE(e->claims));
		memcpy(claims, e->claims, VARSIZE(e->claims));
		return claims;
	}

	claims = NULL;
	st = saas_context_verify(token, &ctx, &times, &gen, jti, want_claims ? &claims : NULL);
	if (st != SAAS_JWT_OK)
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_UNAUTHORIZED),
				 errmsg("invalid token: %s", saas_jwt_error_message(st))));
	if (ctx.trusted)
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_UNAUTHORIZED),
				 errmsg("invalid token: internal tokens cannot be presented")));
	if (ctx.api_key)
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_UNAUTHORIZED),
				 errmsg("invalid token: an API key's context cannot be presented; send the API key")));
	e = ctx_cache_store(token, &ctx, &times, gen, jti, claims);
	if ((ss = ctx_fresh(e)) != SAAS_SESSION_OK)
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_UNAUTHORIZED),
				 errmsg("invalid token: %s", saas_session_message(ss))));
	ctx_set(token, (GucAction) action);
	return claims;
}

/*
 * saas_context_set_minted: make a context token this extension has just
 * minted and checked (an API key's, api_keys.c) the context, with the given
 * GUC action.
 */
void
saas_context_set_minted(const char *token, int action)
{
	ctx_set(token, (GucAction) action);
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
										 GUC_ACTION_LOCAL, true));
}

/*
 * ctx_uuid_result: a uuid of the context as a function's result (a copy),
 * or SQL NULL without a verified context.
 */
static Datum
ctx_uuid_result(FunctionCallInfo fcinfo, bool want_org)
{
	const SaasContext *ctx = saas_context_get();
	pg_uuid_t  *u;

	if (ctx == NULL)
		PG_RETURN_NULL();
	u = palloc(sizeof(pg_uuid_t));
	*u = want_org ? ctx->org_id : ctx->user_id;
	PG_RETURN_UUID_P(u);
}

/* SQL: saas.current_org_id() RETURNS uuid, NULL without a verified context. */
Datum
saas_current_org_id(PG_FUNCTION_ARGS)
{
	return ctx_uuid_result(fcinfo, true);
}

/* SQL: saas.current_user_id() RETURNS uuid */
Datum
saas_current_user_id(PG_FUNCTION_ARGS)
{
	return ctx_uuid_result(fcinfo, false);
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
