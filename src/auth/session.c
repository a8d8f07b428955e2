/*-------------------------------------------------------------------------
 *
 * session.c
 *	  The facts a token depends on, as they stand now: is its user still
 *	  there and active, is its organization active, which role does the user
 *	  have now, is the token's session still open.
 *
 * A token carries the user's role and session generation ("gen") from the
 * moment it was issued. Wherever a context is read (saas.authenticate, a
 * policy calling saas.current_org_id(), on any backend) it is checked
 * against the user's current state, read with one index lookup and cached
 * per backend for SAAS_SESSION_TTL_S (4 seconds, within the documented 5 s
 * bound): that is the bound
 * within which a password change, demotion, deactivation, deletion, logout
 * or organization suspension ends tokens everywhere. The backend that makes
 * such a change forgets its cache at once (a statement trigger).
 *
 * Sessions end in two ways: a generation bump (logout-all, password change,
 * deactivation, demotion; saas._sessions) voids every token issued before,
 * and a single logout records the token's jti (saas._revoked_tokens) until
 * the token would have expired anyway. The cache keeps a user's revoked jtis
 * as 64-bit hashes; logout bumps the generation instead once a user has
 * SAAS_SESSION_MAX_REVOKED of them, so the list stays small.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "pg_saas.h"
#include "common/common.h"
#include "auth/auth.h"

PG_FUNCTION_INFO_V1(saas_session_state_changed);

#define STATE_SLOTS 64
#define STATE_TTL_US ((int64) SAAS_SESSION_TTL_S * USECS_PER_SEC)

typedef struct UserState
{
	bool		used;
	pg_uuid_t	org_id;
	pg_uuid_t	user_id;
	TimestampTz checked;
	SaasSessionStatus status;	/* OK, GONE, INACTIVE or ORG_SUSPENDED */
	char		role[16];
	int64		generation;
	int			nrevoked;		/* -1: more than we keep: every token ended */
	uint64		revoked[SAAS_SESSION_MAX_REVOKED];
} UserState;

static UserState states[STATE_SLOTS];
static bool state_reading = false;

static SaasPlan plan_state = {
	"SELECT u.status = 'active', o.status = 'active', u.role, coalesce(s.generation, 0),"
	" ARRAY(SELECT r.jti FROM saas._revoked_tokens r WHERE r.org_id = $1 AND r.user_id = $2"
	"        AND r.expires_at > now() LIMIT " CppAsString2(SAAS_SESSION_MAX_REVOKED) " + 1)"
	" FROM saas.users u JOIN saas.organizations o ON o.id = u.org_id"
	" LEFT JOIN saas._sessions s ON s.org_id = u.org_id AND s.user_id = u.id"
	" WHERE u.org_id = $1 AND u.id = $2",
	2, {UUIDOID, UUIDOID}
};

/* saas_jti_hash: how a token id is remembered in the revoked list. */
uint64
saas_jti_hash(const char *jti, size_t len)
{
	return hash_bytes_extended((const unsigned char *) jti, (int) len, 0x5aa5);
}

/* role_rank: super_admin > admin > user; anything else ranks lowest. */
static int
role_rank(const char *role)
{
	if (strcmp(role, SAAS_ROLE_SUPER_ADMIN) == 0)
		return 3;
	if (strcmp(role, SAAS_ROLE_ADMIN) == 0)
		return 2;
	if (strcmp(role, SAAS_ROLE_USER) == 0)
		return 1;
	return 0;
}

/*
 * Where Citus is loaded the facts live on the node of the organization's
 * shards. Read there as the owner from this backend, they would travel over
 * the owner's connection, which Citus refuses once the caller has written
 * those placements in the transaction (25001; a long transaction re-reads
 * the facts every SAAS_SESSION_TTL_S). So the read goes over the caller's
 * own connection instead: a query on the organization's shard of users,
 * routed as the caller, evaluates saas._context_facts(token) on that node,
 * which checks the token and reads its user's facts there as the owner.
 */
static SaasPlan plan_state_routed = {
	"SELECT (f).user_active, (f).org_active, (f).role, (f).generation, (f).revoked"
	" FROM (SELECT count(*) AS n, saas._context_facts($1) AS f"
	"         FROM saas.users WHERE org_id = $2) q",
	2, {TEXTOID, UUIDOID}
};

/* Inside saas._context_facts: the facts are read here, never routed again. */
static bool facts_function_active = false;

/*
 * saas_facts_routed: whether this backend reads a context's facts (a user's,
 * an API key's) through the caller's connection. Not inside
 * saas._context_facts, nor in a Citus node's own connection (a shard's task
 * on a worker node, whose reads are local).
 */
bool
saas_facts_routed(void)
{
	const char *app;

	if (facts_function_active || !saas_citus_loaded())
		return false;
	/* A database still at 0.1.0 (library upgraded first) has no such functions. */
	if (!saas_schema_at_least(SAAS_RELEASE_0_2))
		return false;
	app = GetConfigOption("application_name", true, false);
	return app == NULL || strncmp(app, "citus_internal gpid=", 20) != 0;
}

/*
 * state_from_row: the facts from a row (user active, organization active,
 * role, generation, revoked jtis); a missing user reads as GONE.
 */
static void
state_from_row(UserState *s, HeapTuple t, TupleDesc d)
{
	bool		isnull;
	Datum		active = SPI_getbinval(t, d, 1, &isnull);
	ArrayType  *arr;
	Datum	   *elems;
	bool	   *enulls;
	int			n,
				i;

	if (isnull)
		return;
	if (!DatumGetBool(active))
		s->status = SAAS_SESSION_INACTIVE;
	else if (!DatumGetBool(SPI_getbinval(t, d, 2, &isnull)))
		s->status = SAAS_SESSION_ORG_SUSPENDED;
	else
		s->status = SAAS_SESSION_OK;
	strlcpy(s->role, TextDatumGetCString(SPI_getbinval(t, d, 3, &isnull)), sizeof(s->role));
	s->generation = DatumGetInt64(SPI_getbinval(t, d, 4, &isnull));
	arr = DatumGetArrayTypeP(SPI_getbinval(t, d, 5, &isnull));
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &enulls, &n);
	if (n > SAAS_SESSION_MAX_REVOKED)
	{
		s->nrevoked = -1;
		return;
	}
	for (i = 0; i < n; i++)
	{
		text	   *j = DatumGetTextPP(elems[i]);

		s->revoked[i] = saas_jti_hash(VARDATA_ANY(j), VARSIZE_ANY_EXHDR(j));
	}
	s->nrevoked = n;
}

/* state_query_here: the facts query on this node, as the owner (SPI open). */
static bool
state_query_here(const pg_uuid_t *org_id, const pg_uuid_t *user_id)
{
	Datum		args[2] = {UUIDPGetDatum(org_id), UUIDPGetDatum(user_id)};

	return saas_owner_row(&plan_state, args);
}

/* state_read: one lookup of the user's facts (token: the one being checked). */
static void
state_read(UserState *s, const char *token)
{
	s->status = SAAS_SESSION_GONE;
	s->role[0] = '\0';
	s->generation = 0;
	s->nrevoked = 0;

	state_reading = true;
	PG_TRY();
	{
		saas_spi_connect();
		if (token != NULL && saas_facts_routed())
		{
			Datum		args[2] = {CStringGetTextDatum(token), UUIDPGetDatum(&s->org_id)};

			if (saas_caller_row(&plan_state_routed, args, NULL))
				state_from_row(s, SPI_tuptable->vals[0], SPI_tuptable->tupdesc);
		}
		else if (state_query_here(&s->org_id, &s->user_id))
			state_from_row(s, SPI_tuptable->vals[0], SPI_tuptable->tupdesc);
		SPI_finish();
	}
	PG_FINALLY();
	{
		state_reading = false;
	}
	PG_END_TRY();
}

PG_FUNCTION_INFO_V1(saas_context_facts);

/*
 * SQL: saas._context_facts(token text, OUT user_active, OUT org_active,
 * OUT role, OUT generation, OUT revoked) RETURNS record. The facts of the
 * token's own user as they stand on this node (see plan_state_routed); NULL
 * for a token that is not one of our users' tokens, signed and in time: a
 * holder learns nothing it would not learn by authenticating.
 */
Datum
saas_context_facts(PG_FUNCTION_ARGS)
{
	char	   *token = text_to_cstring(PG_GETARG_TEXT_PP(0));
	pg_uuid_t	org_id,
				user_id;
	bool		api_key;
	TupleDesc	desc;
	HeapTupleHeader result = NULL;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "saas._context_facts must return a record");
	if (!saas_context_token_subject(token, &org_id, &user_id, &api_key) || api_key)
		PG_RETURN_NULL();
	desc = BlessTupleDesc(desc);

	facts_function_active = true;
	state_reading = true;
	PG_TRY();
	{
		saas_spi_connect();
		if (state_query_here(&org_id, &user_id))
			result = SPI_returntuple(SPI_tuptable->vals[0], desc);
		SPI_finish();
	}
	PG_FINALLY();
	{
		facts_function_active = false;
		state_reading = false;
	}
	PG_END_TRY();
	if (result == NULL)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(PointerGetDatum(result));
}

/*
 * saas_session_check: whether a token of (org, user) issued with session
 * generation gen and jti hash jti is still good; on success *role is
 * lowered to the user's current role when that is less.
 */
SaasSessionStatus
saas_session_check(const pg_uuid_t *org_id, const pg_uuid_t *user_id, int64 gen,
				   uint64 jti, char *role /* 16 bytes, in/out */ , const char *token)
{
	UserState  *s = &states[user_id->data[15] % STATE_SLOTS];
	/* The statement's start: a long transaction re-reads the facts too. */
	TimestampTz now = GetCurrentStatementStartTimestamp();
	int			i;

	/* A policy evaluated while we read the facts: no context (fail closed). */
	if (state_reading)
		return SAAS_SESSION_GONE;
	/*
	 * Read again when the cache is not this user's or too old, and when the
	 * token is newer than the cache: a token carries the generation current
	 * when it was issued, so a larger one than cached means the facts moved
	 * on since they were read (a logout-all or password change, then a new
	 * login, seen by a backend that read them before, as a Citus worker's
	 * pooled connection does).
	 */
	if (!s->used || memcmp(&s->user_id, user_id, sizeof(pg_uuid_t)) != 0 ||
		memcmp(&s->org_id, org_id, sizeof(pg_uuid_t)) != 0 ||
		now - s->checked >= STATE_TTL_US || now < s->checked ||
		(s->status == SAAS_SESSION_OK && gen > s->generation))
	{
		s->used = false;
		s->org_id = *org_id;
		s->user_id = *user_id;
		state_read(s, token);
		s->checked = now;
		s->used = true;
	}
	if (s->status != SAAS_SESSION_OK)
		return s->status;
	if (gen != s->generation || s->nrevoked < 0)
		return SAAS_SESSION_ENDED;
	for (i = 0; i < s->nrevoked; i++)
		if (s->revoked[i] == jti)
			return SAAS_SESSION_ENDED;
	if (role_rank(s->role) < role_rank(role))
		strlcpy(role, s->role, 16);
	return SAAS_SESSION_OK;
}

/* saas_session_forget: drop every cached state (this backend changed facts). */
void
saas_session_forget(void)
{
	int			i;

	for (i = 0; i < STATE_SLOTS; i++)
		states[i].used = false;
}

/* saas_session_message: why a session check refused a token. */
const char *
saas_session_message(SaasSessionStatus st)
{
	switch (st)
	{
		case SAAS_SESSION_OK:
			return "ok";
		case SAAS_SESSION_GONE:
			return "the account no longer exists";
		case SAAS_SESSION_INACTIVE:
			return "the account is no longer active";
		case SAAS_SESSION_ORG_SUSPENDED:
			return "the organization is suspended";
		case SAAS_SESSION_ENDED:
			return "the session has ended (logout or password change); log in again";
		case SAAS_SESSION_KEY_INVALID:
			return "the API key is revoked, expired or not valid";
	}
	return "invalid session";
}

/*
 * Where Citus is loaded, the statement triggers above fire on the shards, in
 * the worker nodes' backends, not in the coordinator's backend that made the
 * change: that backend forgets its cache itself when a transaction that
 * wrote one of the tables the facts come from commits. Not at once: reading
 * the facts again in that transaction would read, as the owner, the shards
 * the caller has just written, which Citus refuses.
 */
static ExecutorEnd_hook_type prev_executor_end = NULL;
static bool facts_written = false;

static void
session_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT && facts_written)
		saas_session_forget();
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT)
		facts_written = false;
}
static const char *const fact_tables[] = {"users", "organizations", "_sessions", "_revoked_tokens"};

static void
session_executor_end(QueryDesc *queryDesc)
{
	if (!facts_written && queryDesc->plannedstmt != NULL &&
		(queryDesc->operation != CMD_SELECT || queryDesc->plannedstmt->hasModifyingCTE) &&
		saas_citus_loaded())
	{
		Oid			nsp = get_namespace_oid("saas", true);
		ListCell   *lc;

		foreach(lc, queryDesc->plannedstmt->rtable)
		{
			RangeTblEntry *rte = lfirst_node(RangeTblEntry, lc);
			const char *name;
			size_t		i;

			if (rte->rtekind != RTE_RELATION || !OidIsValid(nsp) || get_rel_namespace(rte->relid) != nsp ||
				(name = get_rel_name(rte->relid)) == NULL)
				continue;
			for (i = 0; i < lengthof(fact_tables); i++)
				if (strcmp(name, fact_tables[i]) == 0)
					facts_written = true;
		}
	}
	if (prev_executor_end)
		prev_executor_end(queryDesc);
	else
		standard_ExecutorEnd(queryDesc);
}

/* saas_session_init: from _PG_init. */
void
saas_session_init(void)
{
	prev_executor_end = ExecutorEnd_hook;
	ExecutorEnd_hook = session_executor_end;
	RegisterXactCallback(session_xact_callback, NULL);
}

/* Trigger: facts tokens depend on changed; this backend re-reads them. */
Datum
saas_session_state_changed(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "saas._session_state_changed must be called as a trigger");
	saas_session_forget();
	return PointerGetDatum(NULL);
}
