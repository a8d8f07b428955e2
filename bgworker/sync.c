/*-------------------------------------------------------------------------
 *
 * sync.c
 *	  Pull sync: per linked organization, read the user service's users
 *	  changed since the last sync (every page), then upsert them.
 *
 * The pages are read with no transaction open, each as an ordinary call in
 * flight of the worker's one event loop (wk_http_start, like the jobs'
 * calls): wk_sync_round never waits for the network, it takes a page that
 * completed and starts the next read, so while the user service is slow or
 * hangs the main loop keeps claiming, calling and recording the other
 * services' jobs. The pages are applied in one transaction when the round's
 * organizations are all read, under a trusted context of the organization
 * and marked as coming from the service (not pushed back). lastSync moves
 * only when every page was read and applied; a failed read leaves it where
 * it was. A round begun before pg_saas was dropped and created again is
 * dropped unapplied.
 *
 * URLs are built by wk_build_url (the organization's reference is an escaped
 * query value). Every read asks the breaker first (cb_acquire, as the jobs
 * do: while half-open, a read is one of its probes, and none is made while
 * it is open or paused by a 429), and is told to it by cb_record_call, the
 * jobs' rule: only the service's own failures count against it. A page is
 * read when the call's outcome is WK_OK, the jobs' classifier (any 2xx). A read the
 * service refuses as wrong (a 4xx, for instance for a malformed reference)
 * fails that organization's sync alone, and the organization waits
 * sync_interval_seconds before its next try (it is parked in this process's
 * memory): the least recently synced come first, so without that a few such
 * organizations would take every round's places and starve the others.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "pgstat.h"
#include "common/jsonapi.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "pg_saas.h"
#include "common/common.h"
#include "auth/auth.h"
#include "breaker.h"
#include "http_client.h"
#include "worker_jobs.h"
#include "worker_shmem.h"

#define SYNC_ORGS_PER_ROUND	10
#define SYNC_MAX_PAGES		200
#define SYNC_CHECK_EVERY_S	5
#define SYNC_PAGE_MAX		(16 * 1024 * 1024)
#define SYNC_PARKED_MAX		1024

/*
 * The parse of a page's data.pagination.has_more (sync_has_more): the
 * user service answers {"status", "data": {"users": [...], "pagination":
 * {"total", "page", "per_page", "has_more"}}}.
 */
static const char *const sm_path[] = {"data", "pagination", "has_more"};

typedef struct SyncMoreState
{
	int			depth;			/* objects and arrays open */
	int			matched;		/* how many of sm_path the open objects are */
	bool		at_key;			/* the next value is has_more's */
	bool		more;
} SyncMoreState;

static void
sm_nest(void *state)
{
	SyncMoreState *s = state;

	s->depth++;
	s->at_key = false;
}

static void
sm_unnest(void *state)
{
	SyncMoreState *s = state;

	s->depth--;
	if (s->matched > s->depth)
		s->matched = s->depth;
}

static void
sm_field(void *state, char *fname, bool isnull)
{
	SyncMoreState *s = state;
	int			level = s->depth - 1;	/* 0: a key of the top object */

	/* A key at a level the path has reached replaces the one before it. */
	if (s->matched > level)
		s->matched = level;
	s->at_key = false;
	if (s->matched == level && level < (int) lengthof(sm_path) &&
		strcmp(fname, sm_path[level]) == 0)
	{
		if (level == (int) lengthof(sm_path) - 1)
			s->at_key = true;
		else
			s->matched = level + 1;
	}
}

static void
sm_scalar(void *state, char *token, JsonTokenType type)
{
	SyncMoreState *s = state;

	if (s->at_key)
		s->more = (type == JSON_TOKEN_TRUE);
	s->at_key = false;
}

/*
 * sync_has_more: whether a page (valid JSON, checked before) says more
 * follow: its data.pagination.has_more is true, wherever the keys stand
 * and however they are spaced (a "has_more" anywhere else, say inside a
 * user's name, means nothing). Never throws: a page it cannot read has no
 * more.
 */
static bool
sync_has_more(const char *page, int len)
{
	SyncMoreState st = {0};
	JsonSemAction sem = {0};
	JsonLexContext *lex;

	sem.semstate = &st;
	sem.object_start = sm_nest;
	sem.array_start = sm_nest;
	sem.object_end = sm_unnest;
	sem.array_end = sm_unnest;
	sem.object_field_start = sm_field;
	sem.scalar = sm_scalar;
	lex = makeJsonLexContextCstringLen(pnstrdup(page, len), len, GetDatabaseEncoding(), true);
	return pg_parse_json(lex, &sem) == JSON_SUCCESS && st.more;
}

static SaasPlan plan_due = {
	"SELECT o.id, coalesce(o.external_ids ->> 'user_service', o.id::text),"
	" to_char(s.cursor_time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), i.base_url, i.timeout_ms,"
	" i.sync_interval_seconds, " CB_SETTINGS_COLUMNS
	" FROM saas.organizations o CROSS JOIN saas.integrations i"
	" LEFT JOIN saas.sync_state s ON s.org_id = o.id AND s.service = i.service"
	" WHERE i.service = 'user-service' AND i.enabled"
	" AND o.status = 'active' AND o.id <> ALL ($2)"
	" AND (s.last_sync IS NULL OR s.last_sync < now() - make_interval(secs => i.sync_interval_seconds))"
	" ORDER BY s.last_sync NULLS FIRST LIMIT $1",
	2, {INT4OID, UUIDARRAYOID}
};

static SaasPlan plan_apply_page = {
	"SELECT saas._sync_users($1, $2)", 2, {UUIDOID, JSONBOID}
};

static SaasPlan plan_done = {
	"SELECT saas._sync_done($1, 'user-service', $2)", 2, {UUIDOID, TIMESTAMPTZOID}
};

/*
 * Whether the organization is still linked to the reference its pages were
 * read from, its row locked until the round commits: a relink (which resets
 * the sync, 70_jobs.sql) either waits for the round or is seen by it, and
 * another reference's users are never imported under the new link.
 */
static SaasPlan plan_still_linked = {
	"SELECT coalesce(o.external_ids ->> 'user_service', o.id::text) = $2"
	" FROM saas.organizations o WHERE o.id = $1 FOR SHARE",
	2, {UUIDOID, TEXTOID}
};

typedef struct SyncOrg
{
	pg_uuid_t	org;
	char	   *ref;
	char	   *since;			/* RFC 3339 or NULL */
	char	   *base_url;
	int			timeout_ms;
	int			interval_s;
	CbSettings	cb;
	List	   *pages;			/* response bodies (char *) */
	int			page;			/* the page being read (from 1) */
	WkCall		call;			/* its read, while in_flight */
	bool		in_flight;
	bool		finished;		/* read completely, or failed */
	bool		complete;
	bool		refused;		/* the service refused the request as wrong */
} SyncOrg;

/* An organization whose sync was refused, and until when it waits. */
typedef struct SyncParked
{
	pg_uuid_t	org;
	int64		until;
} SyncParked;

static SyncParked parked[SYNC_PARKED_MAX];
static int	nparked = 0;

static int64 last_check = 0;

/*
 * sync_parked_orgs: the organizations still parked, as a uuid[] for the
 * query of due organizations; parkings that ended are dropped.
 */
static Datum
sync_parked_orgs(int64 now)
{
	Datum	   *ids = palloc(sizeof(Datum) * Max(nparked, 1));
	int			i,
				k = 0;

	for (i = 0; i < nparked; i++)
		if (parked[i].until > now)
			parked[k++] = parked[i];
	nparked = k;
	for (i = 0; i < nparked; i++)
		ids[i] = UUIDPGetDatum(&parked[i].org);
	return PointerGetDatum(construct_array(ids, nparked, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR));
}

/* sync_park: no sync of org before until; when full, the soonest to end makes room. */
static void
sync_park(const pg_uuid_t *org, int64 until)
{
	int			i,
				slot = -1;

	for (i = 0; i < nparked && slot < 0; i++)
		if (memcmp(&parked[i].org, org, sizeof(pg_uuid_t)) == 0)
			slot = i;
	if (slot < 0 && nparked < SYNC_PARKED_MAX)
		slot = nparked++;
	if (slot < 0)
	{
		slot = 0;
		for (i = 1; i < nparked; i++)
			if (parked[i].until < parked[slot].until)
				slot = i;
	}
	parked[slot].org = *org;
	parked[slot].until = until;
}

/*
 * The round in progress: its organizations, read one after the other, each
 * page an ordinary call in flight of the worker's one event loop (the main
 * loop drives it with the jobs' calls and comes back here when it
 * completes), so a slow or hanging user service never holds up the claiming
 * or recording of other calls. Everything of a round lives in sync_cxt,
 * reset when the round has been applied.
 */
static MemoryContext sync_cxt = NULL;
static SyncOrg *round_orgs = NULL;
static int	round_n = 0;
static int	round_cur = 0;			/* the organization being read */
static int64 round_started = 0;
static Oid	round_extension = InvalidOid;	/* pg_saas when the round began */
static CbTransition round_trs[SYNC_ORGS_PER_ROUND * 2 + 2];
static int	round_ntr = 0;

/* sync_note: a breaker transition to write when the round is applied. */
static void
sync_note(const CbTransition *tr)
{
	if (round_ntr < (int) lengthof(round_trs))
		round_trs[round_ntr++] = *tr;
}

/*
 * sync_start_page: acquire the breaker and start the read of o's next page;
 * false (o is finished, incomplete) when the breaker lets no call through.
 */
static bool
sync_start_page(SyncOrg *o)
{
	static const char *const segs[] = {"users"};
	int			svc = saas_service_index("user-service");
	CbTransition tr;
	bool		moved;
	char		pagebuf[16];
	const char *query[8];
	MemoryContext old;

	if (cb_acquire(svc, &o->cb, GetCurrentTimestamp(), 1, &tr, &moved) == 0)
	{
		if (moved)
			sync_note(&tr);
		return false;
	}
	if (moved)
		sync_note(&tr);
	snprintf(pagebuf, sizeof(pagebuf), "%d", o->page);
	query[0] = "organization_id";
	query[1] = o->ref;
	query[2] = "per_page";
	query[3] = "100";
	query[4] = "page";
	query[5] = pagebuf;
	query[6] = "updated_since";
	query[7] = o->since;		/* NULL: left out */
	old = MemoryContextSwitchTo(sync_cxt);	/* the URL and the answer */
	memset(&o->call, 0, sizeof(o->call));
	o->call.svc = svc;
	o->call.method = "GET";
	o->call.timeout_ms = o->timeout_ms;
	o->call.resp_max = SYNC_PAGE_MAX;
	o->call.url = wk_build_url(o->base_url, segs, lengthof(segs), query, lengthof(query) / 2,
							   o->call.error, sizeof(o->call.error));
	wk_http_start(&o->call, false);
	MemoryContextSwitchTo(old);
	o->in_flight = true;
	return true;
}

/*
 * sync_page_done: the read of o's page completed: tell the breaker, keep
 * the page, and say whether o is finished (complete or failed).
 */
static bool
sync_page_done(SyncOrg *o)
{
	WkCall	   *c = &o->call;
	CbTransition tr;
	bool		moved;
	MemoryContext old;
	char	   *org = DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(&o->org)));

	o->in_flight = false;
	cb_record_call(&o->cb, c, GetCurrentTimestamp(), &tr, &moved);
	if (moved)
		sync_note(&tr);
	if (c->outcome != WK_OK)
	{
		char		why[300];

		if (c->status != 0)
			snprintf(why, sizeof(why), "HTTP %ld", c->status);
		else
			snprintf(why, sizeof(why), "%s", c->error);
		o->refused = (c->outcome == WK_REFUSED || c->outcome == WK_UNSENDABLE);
		elog(LOG, "pg_saas worker: sync of organization %s failed on page %d (%s: %s)%s",
			 org, o->page, wk_outcome_name(c->outcome), why,
			 o->refused ? "; next try after sync_interval_seconds" : "");
		return true;
	}
	if (c->truncated || !saas_json_valid_strict(c->resp, c->resp_len, true))
	{
		elog(LOG, "pg_saas worker: sync of organization %s: page %d is %s; lastSync stays",
			 org, o->page, c->truncated ? "larger than 16 MB" : "not a JSON object");
		return true;
	}
	/* The page and the list both in sync_cxt: the loop's round context is reset between pages. */
	old = MemoryContextSwitchTo(sync_cxt);
	o->pages = lappend(o->pages, c->resp);
	MemoryContextSwitchTo(old);
	if (!sync_has_more(c->resp, c->resp_len) || o->page >= SYNC_MAX_PAGES)
	{
		o->complete = true;
		return true;
	}
	o->page++;
	return false;
}

/*
 * sync_begin_round: read the organizations that are due into sync_cxt;
 * how many (0: no round).
 */
static int
sync_begin_round(int64 now)
{
	int			n = 0,
				i;
	Datum		args_due[2];
	char		err[256];

	if (sync_cxt == NULL)
		sync_cxt = AllocSetContextCreate(TopMemoryContext, "pg_saas pull sync",
										 ALLOCSET_DEFAULT_SIZES);
	round_orgs = MemoryContextAllocZero(sync_cxt, sizeof(SyncOrg) * SYNC_ORGS_PER_ROUND);
	if (wk_xact_begin("pg_saas worker: pull sync"))
	{
		args_due[0] = Int32GetDatum(SYNC_ORGS_PER_ROUND);
		args_due[1] = sync_parked_orgs(now);
		if (saas_exec(&plan_due, args_due, NULL, true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read the organizations due for a sync");

		for (i = 0; i < (int) SPI_processed; i++)
		{
			HeapTuple	t = SPI_tuptable->vals[i];
			TupleDesc	d = SPI_tuptable->tupdesc;
			bool		isnull;
			SyncOrg    *o = &round_orgs[n++];
			char	   *since;

			o->org = *DatumGetUUIDP(SPI_getbinval(t, d, 1, &isnull));
			o->ref = MemoryContextStrdup(sync_cxt, SPI_getvalue(t, d, 2));
			since = SPI_getvalue(t, d, 3);
			if (since)
				o->since = MemoryContextStrdup(sync_cxt, since);
			o->base_url = MemoryContextStrdup(sync_cxt, SPI_getvalue(t, d, 4));
			o->timeout_ms = DatumGetInt32(SPI_getbinval(t, d, 5, &isnull));
			o->interval_s = DatumGetInt32(SPI_getbinval(t, d, 6, &isnull));
			cb_settings_read(t, d, 7, &o->cb);
			o->page = 1;
		}
		round_extension = get_extension_oid("pg_saas", true);
	}
	wk_xact_commit();

	/* A base_url that makes no URL is the setting's fault (the jobs warn about it). */
	if (n > 0 && wk_build_url(round_orgs[0].base_url, NULL, 0, NULL, 0, err, sizeof(err)) == NULL)
		n = 0;
	if (n == 0)
		MemoryContextReset(sync_cxt);
	round_n = n;
	round_cur = 0;
	round_ntr = 0;
	round_started = now;
	return n;
}

/*
 * sync_apply_round: in one transaction, the breaker's transitions and the
 * users of every organization read completely (unless pg_saas went away
 * meanwhile). Returns how many organizations completed a sync.
 */
static int
sync_apply_round(void)
{
	int			n = round_n,
				ntr = round_ntr,
				i,
				done = 0;

	if (!wk_xact_begin("pg_saas worker: applying pull sync"))
		n = ntr = 0;
	else if (get_extension_oid("pg_saas", true) != round_extension)
		n = ntr = 0;			/* dropped and created again meanwhile */
	for (i = 0; i < ntr; i++)
		wk_note_transition(&round_trs[i]);
	for (i = 0; i < n; i++)
	{
		SyncOrg    *o = &round_orgs[i];
		ListCell   *lc;
		Datum		newest = (Datum) 0;
		bool		have_newest = false;
		bool		isnull;
		int			nest;
		Datum		args[2];
		char		nulls[3] = "  ";

		if (!o->complete)
			continue;
		args[0] = UUIDPGetDatum(&o->org);
		args[1] = CStringGetTextDatum(o->ref);
		if (saas_exec(&plan_still_linked, args, NULL, false, 1) != SPI_OK_SELECT ||
			SPI_processed != 1 ||
			!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
		{
			elog(LOG, "pg_saas worker: sync of an organization dropped: it was relinked or deleted while its pages were read");
			continue;
		}
		nest = saas_context_push_service(&o->org, "user-service");
		wk_set_in_sync(true);
		foreach(lc, o->pages)
		{
			args[0] = UUIDPGetDatum(&o->org);
			args[1] = DirectFunctionCall1(jsonb_in, CStringGetDatum((char *) lfirst(lc)));
			if (saas_exec(&plan_apply_page, args, NULL, false, 1) == SPI_OK_SELECT && SPI_processed == 1)
			{
				Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

				if (!isnull && (!have_newest ||
								DatumGetTimestampTz(d) > DatumGetTimestampTz(newest)))
				{
					newest = d;
					have_newest = true;
				}
			}
		}
		wk_set_in_sync(false);
		args[0] = UUIDPGetDatum(&o->org);
		args[1] = newest;
		if (!have_newest)
			nulls[1] = 'n';
		(void) saas_exec(&plan_done, args, nulls, false, 1);
		saas_context_pop(nest);
		done++;
	}
	wk_xact_commit();
	return done;
}

/*
 * wk_sync_round: one step of the pull sync, never waiting for the network.
 * Every SYNC_CHECK_EVERY_S it starts a round with the organizations that are
 * due; then, each time the main loop comes by, it takes the page that
 * completed (if any) and starts the next read, until every organization is
 * read (completely, or up to its first failure); then it applies them.
 * Returns how many organizations completed a sync (0 while reading).
 */
int
wk_sync_round(void)
{
	int64		now = GetCurrentTimestamp();
	int			done;

	if (round_n == 0)
	{
		if (now - last_check < (int64) SYNC_CHECK_EVERY_S * USECS_PER_SEC)
			return 0;
		last_check = now;
		if (sync_begin_round(now) == 0)
			return 0;
	}

	while (round_cur < round_n)
	{
		SyncOrg    *o = &round_orgs[round_cur];

		if (o->in_flight)
		{
			if (!o->call.finished)
				return 0;		/* the main loop comes back when it completes */
			o->finished = sync_page_done(o);
		}
		if (!o->finished)
		{
			if (round_ntr < (int) lengthof(round_trs) - 2 && sync_start_page(o))
			{
				if (!o->call.finished)
					return 0;
				continue;		/* it could not start: take its outcome now */
			}
			o->finished = true; /* the breaker lets no call through */
		}
		if (o->refused)
			sync_park(&o->org, round_started + (int64) o->interval_s * USECS_PER_SEC);
		round_cur++;
	}

	done = sync_apply_round();
	MemoryContextReset(sync_cxt);
	round_n = 0;
	round_orgs = NULL;
	return done;
}
