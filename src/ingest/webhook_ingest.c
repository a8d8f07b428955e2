/*-------------------------------------------------------------------------
 *
 * webhook_ingest.c
 *	  POST /webhooks/{service} and saas.ingest_webhook(): Standard Webhooks
 *	  v1 verification, then every new event stored once, in one statement.
 *
 * Verification: the signed content is "{webhook-id}.{webhook-timestamp}.
 * {raw body}", HMAC-SHA256 keyed with the base64-decoded part of the
 * service's whsec_ secret; webhook-signature lists "v1,<base64>" entries,
 * any one of which may match (constant-time compare); the timestamp must be
 * within five minutes. A bad signature stores nothing (401).
 *
 * The body is one event, an array of events, or {"events":[...]}. Each
 * event is checked on its own, its data against its type's schema
 * (event_schema.c): a bad one is listed in "rejected" with its index, the
 * rest are accepted. Events are idempotent by (org, service,
 * event_id); repeats count as duplicates. The worker applies them, and is
 * woken when this transaction commits.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/base64.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "pg_saas.h"
#include "common/common.h"
#include "auth/auth.h"
#include "ingest/ingest.h"

PG_FUNCTION_INFO_V1(saas_sql_ingest_webhook);

#define WH_MAX_EVENTS		5000

static SaasPlan plan_integration = {
	"SELECT ref_key, webhook_secret, event_types, enabled FROM saas.integrations WHERE service = $1",
	1, {TEXTOID}
};

/*
 * An organization is found by its reference at the service, or, when it has
 * none there, by its own id (the reference the outbound calls send for it).
 * The rows are locked (FOR KEY SHARE, as the foreign key check would) so
 * that an organization deleted at the same time is either still there when
 * the events are stored (its delete waits, then takes them along) or seen
 * as gone (the lock waits for the delete's commit, then skips the row): its
 * events are rejected like any unknown organization's, never a foreign-key
 * error.
 */
static SaasPlan plan_org_refs = {
	"SELECT CASE WHEN external_ids ? $1 THEN external_ids ->> $1 ELSE id::text END, id"
	" FROM saas.organizations"
	" WHERE external_ids ->> $1 = ANY ($2) OR (id = ANY ($3) AND NOT external_ids ? $1)"
	" FOR KEY SHARE",
	3, {TEXTOID, TEXTARRAYOID, UUIDARRAYOID}
};

static SaasPlan plan_insert = {
	"WITH ins AS ("
	" INSERT INTO saas.webhook_events (org_id, service, event_id, event_type, occurred_at, entity_ref, payload)"
	" SELECT r.org_id, $1, r.event_id, r.event_type, r.occurred_at, r.entity_ref, r.payload"
	" FROM jsonb_to_recordset($2) AS r(org_id uuid, event_id text, event_type text,"
	" occurred_at timestamptz, entity_ref text, payload jsonb)"
	" ON CONFLICT DO NOTHING RETURNING 1)"
	" SELECT count(*) FROM ins",
	2, {TEXTOID, JSONBOID}
	/*
	 * The rows stored are counted from what the insert returns: where Citus
	 * runs it (through the coordinator), the count the insert reports is of
	 * the rows selected, duplicates included.
	 */
};

/*
 * wh_rfc3339_ok: YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM) with field
 * ranges checked, so the later cast to timestamptz cannot fail.
 */
static bool
wh_rfc3339_ok(const char *s, int len)
{
	int			i = 19;

	if (len < 20 || len > 40)
		return false;
	for (int k = 0; k < 19; k++)
	{
		char		c = s[k];

		if (k == 4 || k == 7)
		{
			if (c != '-')
				return false;
		}
		else if (k == 10)
		{
			if (c != 'T' && c != 't')
				return false;
		}
		else if (k == 13 || k == 16)
		{
			if (c != ':')
				return false;
		}
		else if (c < '0' || c > '9')
			return false;
	}
	{
		int			year = atoi(pnstrdup(s, 4)),
					mon = atoi(pnstrdup(s + 5, 2)),
					day = atoi(pnstrdup(s + 8, 2));

		if (year < 1970 || mon < 1 || mon > 12 || day < 1 ||
			day > day_tab[isleap(year)][mon - 1] ||
			atoi(pnstrdup(s + 11, 2)) > 23 || atoi(pnstrdup(s + 14, 2)) > 59 ||
			atoi(pnstrdup(s + 17, 2)) > 60)
			return false;
	}
	if (s[i] == '.')
	{
		i++;
		if (i >= len || s[i] < '0' || s[i] > '9')
			return false;
		while (i < len && s[i] >= '0' && s[i] <= '9')
			i++;
	}
	if (i == len - 1 && (s[i] == 'Z' || s[i] == 'z'))
		return true;
	/* An offset PostgreSQL can represent (real ones stay within ±14:00). */
	if (i == len - 6 && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':' &&
		isdigit((unsigned char) s[i + 1]) && isdigit((unsigned char) s[i + 2]) &&
		isdigit((unsigned char) s[i + 4]) && isdigit((unsigned char) s[i + 5]) &&
		(s[i + 1] - '0') * 10 + (s[i + 2] - '0') <= 15 &&
		(s[i + 4] - '0') * 10 + (s[i + 5] - '0') <= 59)
		return true;
	return false;
}

/*
 * wh_in_future: an event dated ahead of the clock by more than the
 * signature tolerance would make every later real update look stale (an
 * entity frozen until that date): it is refused. The format is checked.
 */
static bool
wh_in_future(const char *ts)
{
	TimestampTz t = DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in, CStringGetDatum(ts),
															ObjectIdGetDatum(InvalidOid),
															Int32GetDatum(-1)));

	return t > GetCurrentTimestamp() + (int64) SAAS_WEBHOOK_TOLERANCE_S * USECS_PER_SEC;
}

/* One event of the batch, after its own checks. */
typedef struct WhEvent
{
	JsonbValue *obj;
	char	   *event_id;
	char	   *event_type;
	char	   *timestamp;
	char	   *org_ref;
	char	   *entity_ref;
	const char *error;
} WhEvent;

/* wh_str: a non-empty string field of at most maxlen bytes, or NULL. */
static char *
wh_str(JsonbValue *obj, const char *key, int maxlen)
{
	JsonbValue *v = saas_jsonb_container_get(obj->val.binary.data, key);

	if (v == NULL || v->type != jbvString || v->val.string.len == 0 || v->val.string.len > maxlen)
		return NULL;
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/* wh_check_event: the event's own problems (not its organization). */
static void
wh_check_event(WhEvent *e, Datum event_types)
{
	static const char *const known[] = {"event_id", "event_type", "timestamp", "organization_id",
	"data", "metadata", NULL};
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken r;
	JsonbValue *data,
			   *meta;
	int			depth = 0;

	if (e->obj->type != jbvBinary || !JsonContainerIsObject(e->obj->val.binary.data))
	{
		e->error = "event must be a JSON object";
		return;
	}
	e->event_id = wh_str(e->obj, "event_id", 200);
	it = JsonbIteratorInit(e->obj->val.binary.data);
	while ((r = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (r == WJB_BEGIN_OBJECT)
			depth++;
		else if (r == WJB_END_OBJECT)
			depth--;
		else if (r == WJB_KEY && depth == 1)
		{
			int			i;
			bool		found = false;

			for (i = 0; known[i]; i++)
				if ((int) strlen(known[i]) == v.val.string.len &&
					memcmp(known[i], v.val.string.val, v.val.string.len) == 0)
					found = true;
			if (!found)
			{
				e->error = "event has an unknown field";
				return;
			}
		}
	}
	e->event_type = wh_str(e->obj, "event_type", 64);
	e->timestamp = wh_str(e->obj, "timestamp", 40);
	e->org_ref = wh_str(e->obj, "organization_id", 200);
	data = saas_jsonb_container_get(e->obj->val.binary.data, "data");
	meta = saas_jsonb_container_get(e->obj->val.binary.data, "metadata");
	if (e->event_id == NULL)
		e->error = "event_id must be a non-empty string of at most 200 characters";
	else if (e->event_type == NULL)
		e->error = "event_type is required";
	else if (e->timestamp == NULL || !wh_rfc3339_ok(e->timestamp, strlen(e->timestamp)))
		e->error = "timestamp must be an RFC 3339 date-time";
	else if (wh_in_future(e->timestamp))
		e->error = "timestamp is in the future (more than the signature tolerance ahead of the clock)";
	else if (e->org_ref == NULL)
		e->error = "organization_id is required";
	else if (data == NULL || data->type != jbvBinary || !JsonContainerIsObject(data->val.binary.data))
		e->error = "data must be an object";
	else if (meta != NULL && (meta->type != jbvBinary || !JsonContainerIsObject(meta->val.binary.data)))
		e->error = "metadata must be an object";
	if (e->error == NULL)
	{
		ArrayType  *types = DatumGetArrayTypeP(event_types);
		Datum	   *elems;
		bool	   *nulls;
		int			n,
					i;
		bool		found = false;

		deconstruct_array(types, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
		for (i = 0; i < n; i++)
			if (!nulls[i] && strcmp(TextDatumGetCString(elems[i]), e->event_type) == 0)
				found = true;
		if (!found)
			e->error = "event_type is not one this service sends";
	}
	/* What the event's type needs in data (event_schema.c). */
	if (e->error == NULL)
		e->error = saas_event_data_error(e->event_type, data->val.binary.data);
	if (e->error == NULL)
	{
		/* The entity an event is about: ordering by timestamp is per entity. */
		static const char *const refs[] = {"user_id", "subscription_id", "message_id", "invoice_id",
		"payment_id", "customer_id", NULL};
		int			i;

		for (i = 0; refs[i] && e->entity_ref == NULL; i++)
			e->entity_ref = wh_str(data, refs[i], 200);
	}
}

/*
 * saas_op_ingest_webhook: verify, split, check, map and store; the answer
 * is {received, accepted, duplicates, rejected:[{index, event_id, error}]}.
 */
void
saas_op_ingest_webhook(const char *service, Jsonb *headers, const char *body,
					   int body_len, StringInfo out,
					   void (*on_verified) (void *arg), void *on_verified_arg)
{
	SaasElevation elev;
	Datum		arg;
	char	   *ref_key,
			   *secret;
	Datum		event_types;
	bool		isnull,
				enabled;
	Jsonb	   *doc;
	JsonbValue *list = NULL;
	WhEvent    *events;
	int			n = 0,
				i,
				valid = 0;
	uint64		inserted = 0;
	StringInfoData rows;
	int			nrejected = 0;

	saas_spi_connect();
	saas_elevate(&elev);

	/* The service and its secret. */
	arg = CStringGetTextDatum(service);
	if (saas_exec(&plan_integration, &arg, NULL, true, 1) != SPI_OK_SELECT || SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_NOT_FOUND),
				 errmsg("unknown service \"%s\"", service)));
	ref_key = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	secret = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	event_types = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull);
	event_types = PointerGetDatum(PG_DETOAST_DATUM_COPY(event_types));
	enabled = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &isnull));
	if (!enabled)
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_UNAVAILABLE),
				 errmsg("service \"%s\" is disabled", service)));

	saas_webhook_verify(secret,
						saas_header_get(headers, "webhook-id"),
						saas_header_get(headers, "webhook-timestamp"),
						saas_header_get(headers, "webhook-signature"),
						body, body_len, (int64) time(NULL));
	/* Only a delivery that proved who sent it may spend the service's budget. */
	if (on_verified)
		on_verified(on_verified_arg);

	/* The body: one event, an array, or {"events": [...]}. */
	if (body_len == 0 || !saas_json_valid_strict(body, body_len, false))
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_VALIDATION),
				 errmsg("webhook body is not valid JSON")));
	doc = saas_jsonb_from_text(body, body_len);
	if (JB_ROOT_IS_OBJECT(doc) && !JB_ROOT_IS_SCALAR(doc) && saas_jsonb_get(doc, "events"))
	{
		list = saas_jsonb_get(doc, "events");
		if (list->type != jbvBinary || !JsonContainerIsArray(list->val.binary.data))
			ereport(ERROR,
					(errcode(ERRCODE_SAAS_VALIDATION),
					 errmsg("\"events\" must be an array")));
	}
	events = palloc0(sizeof(WhEvent) * (WH_MAX_EVENTS + 1));
	if (list != NULL || (JB_ROOT_IS_ARRAY(doc) && !JB_ROOT_IS_SCALAR(doc)))
	{
		JsonbIterator *it = JsonbIteratorInit(list ? list->val.binary.data : &doc->root);
		JsonbValue	v;
		JsonbIteratorToken r;

		while ((r = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		{
			if (r != WJB_ELEM)
				continue;
			if (n >= WH_MAX_EVENTS)
				ereport(ERROR,
						(errcode(ERRCODE_SAAS_TOO_LARGE),
						 errmsg("at most %d events per delivery", WH_MAX_EVENTS)));
			events[n].obj = palloc(sizeof(JsonbValue));
			*events[n].obj = v;
			n++;
		}
	}
	else if (JB_ROOT_IS_OBJECT(doc) && !JB_ROOT_IS_SCALAR(doc))
	{
		events[0].obj = palloc(sizeof(JsonbValue));
		events[0].obj->type = jbvBinary;
		events[0].obj->val.binary.data = &doc->root;
		events[0].obj->val.binary.len = VARSIZE(doc) - VARHDRSZ;
		n = 1;
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_VALIDATION),
				 errmsg("webhook body must be an event, an array of events or {\"events\":[...]}")));

	for (i = 0; i < n; i++)
		wh_check_event(&events[i], event_types);

	/* Organizations by their reference at this service, in one query. */
	{
		Datum	   *refs = palloc(sizeof(Datum) * Max(n, 1));
		Datum	   *ids = palloc(sizeof(Datum) * Max(n, 1));
		int			nrefs = 0,
					nids = 0;
		Datum		args[3];
		uint64		k;

		for (i = 0; i < n; i++)
			if (events[i].error == NULL)
			{
				pg_uuid_t  *u = palloc(sizeof(pg_uuid_t));

				refs[nrefs++] = CStringGetTextDatum(events[i].org_ref);
				if (saas_uuid_from_cstr(events[i].org_ref, u))
					ids[nids++] = UUIDPGetDatum(u);
			}
		args[0] = CStringGetTextDatum(ref_key);
		args[1] = PointerGetDatum(construct_array(refs, nrefs, TEXTOID, -1, false, TYPALIGN_INT));
		args[2] = PointerGetDatum(construct_array(ids, nids, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR));
		if (nrefs > 0 &&
			saas_exec(&plan_org_refs, args, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not map organizations");
		initStringInfo(&rows);
		appendStringInfoChar(&rows, '[');
		for (i = 0; i < n; i++)
		{
			char	   *org = NULL;

			if (events[i].error != NULL)
				continue;
			for (k = 0; nrefs > 0 && k < SPI_processed && org == NULL; k++)
			{
				char	   *ref = SPI_getvalue(SPI_tuptable->vals[k], SPI_tuptable->tupdesc, 1);

				if (ref && strcmp(ref, events[i].org_ref) == 0)
					org = SPI_getvalue(SPI_tuptable->vals[k], SPI_tuptable->tupdesc, 2);
			}
			if (org == NULL)
			{
				events[i].error = "organization_id is not linked to any organization";
				continue;
			}
			if (valid > 0)
				appendStringInfoChar(&rows, ',');
			appendStringInfoString(&rows, "{\"org_id\":");
			escape_json(&rows, org);
			appendStringInfoString(&rows, ",\"event_id\":");
			escape_json(&rows, events[i].event_id);
			appendStringInfoString(&rows, ",\"event_type\":");
			escape_json(&rows, events[i].event_type);
			appendStringInfoString(&rows, ",\"occurred_at\":");
			escape_json(&rows, events[i].timestamp);
			appendStringInfoString(&rows, ",\"entity_ref\":");
			saas_json_string(&rows, events[i].entity_ref);
			appendStringInfoString(&rows, ",\"payload\":");
			(void) JsonbToCString(&rows, events[i].obj->val.binary.data, events[i].obj->val.binary.len);
			appendStringInfoChar(&rows, '}');
			valid++;
		}
		appendStringInfoChar(&rows, ']');
	}

	if (valid > 0)
	{
		Datum		args[2];
		bool		isnull;

		args[0] = CStringGetTextDatum(service);
		args[1] = DirectFunctionCall1(jsonb_in, CStringGetDatum(rows.data));
		if (saas_exec(&plan_insert, args, NULL, false, 0) != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "could not store webhook events");
		inserted = (uint64) DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		if (inserted > 0)
			saas_worker_wake_at_commit();
	}
	saas_unelevate(&elev);

	/*
	 * The answer, written before SPI_finish: the events and their strings
	 * live in SPI's memory, which SPI_finish releases.
	 */
	appendStringInfo(out, "{\"received\":%d,\"accepted\":" UINT64_FORMAT ",\"duplicates\":" UINT64_FORMAT
					 ",\"rejected\":[",
					 n, inserted, (uint64) valid - inserted);
	for (i = 0; i < n; i++)
	{
		if (events[i].error == NULL)
			continue;
		if (nrejected++ > 0)
			appendStringInfoChar(out, ',');
		appendStringInfo(out, "{\"index\":%d,\"event_id\":", i);
		saas_json_string(out, events[i].event_id);
		appendStringInfoString(out, ",\"error\":");
		escape_json(out, events[i].error);
		appendStringInfoChar(out, '}');
	}
	appendStringInfoString(out, "]}");
	SPI_finish();
}

/* SQL: saas.ingest_webhook(service text, headers jsonb, body text) RETURNS jsonb */
Datum
saas_sql_ingest_webhook(PG_FUNCTION_ARGS)
{
	StringInfoData out;
	text	   *body;
	int			nest;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_VALIDATION),
				 errmsg("service and body are required")));
	body = PG_GETARG_TEXT_PP(2);
	if ((int) VARSIZE_ANY_EXHDR(body) > saas_max_body_bytes)
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_TOO_LARGE),
				 errmsg("webhook body exceeds %d bytes", saas_max_body_bytes)));
	initStringInfo(&out);
	nest = saas_env_push();
	saas_op_ingest_webhook(text_to_cstring(PG_GETARG_TEXT_PP(0)),
						   PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1),
						   VARDATA_ANY(body), VARSIZE_ANY_EXHDR(body), &out, NULL, NULL);
	saas_env_pop(nest);
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(out.data)));
}
