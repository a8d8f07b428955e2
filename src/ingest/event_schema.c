/*-------------------------------------------------------------------------
 *
 * event_schema.c
 *	  The data each webhook event type must carry, checked at ingest.
 *
 * An event is answered at ingest (202, listed in "accepted" or "rejected")
 * and applied later by the worker. An event whose data the appliers
 * (extension/sql/65_appliers.sql) cannot use must be refused at ingest,
 * where the sender learns it, not accepted and then failed in the worker,
 * where nobody does. So for every event type this table says which fields
 * of "data" are required and which type the fields the appliers read must
 * have when present (an "amount" that is a string would fail the applier's
 * cast). Fields not listed are free: services add fields over time.
 *
 * The table follows what the services send (the reference payloads in
 * webhook_events.json and saas-sim): the entity id of each event
 * (user_id, subscription_id, message_id) is always required; a payment
 * or an invoice names its subscription or itself (the applier then takes
 * the organization's latest subscription);
 * subscription.updated carries what changed in "changes" (and
 * "previous_values").
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/common.h"
#include "auth/auth.h"
#include "ingest/ingest.h"

typedef enum EsKind
{
	ES_STRING,					/* a non-empty string of at most 200 bytes */
	ES_NUMBER,
	ES_OBJECT
} EsKind;

typedef enum EsNeed
{
	ES_OPTIONAL,				/* typed when present */
	ES_REQUIRED,
	ES_ONE_OF					/* at least one of the ES_ONE_OF fields */
} EsNeed;

typedef struct EsField
{
	const char *name;
	EsKind		kind;
	EsNeed		need;
} EsField;

#define ES_MAX_FIELDS 8

typedef struct EsSchema
{
	const char *event_type;
	EsField		fields[ES_MAX_FIELDS];	/* ends at the first NULL name */
} EsSchema;

#define REQ_STR(n)	{n, ES_STRING, ES_REQUIRED}
#define ANY_STR(n)	{n, ES_STRING, ES_ONE_OF}
#define OPT_STR(n)	{n, ES_STRING, ES_OPTIONAL}
#define OPT_NUM(n)	{n, ES_NUMBER, ES_OPTIONAL}
#define OPT_OBJ(n)	{n, ES_OBJECT, ES_OPTIONAL}

static const EsSchema schemas[] = {
	{"user.created", {REQ_STR("user_id"), REQ_STR("email"), OPT_STR("first_name"), OPT_STR("last_name"),
	OPT_STR("status")}},
	{"user.updated", {REQ_STR("user_id"), OPT_OBJ("changes"), OPT_OBJ("previous_values")}},
	{"user.deleted", {REQ_STR("user_id")}},
	{"user.activated", {REQ_STR("user_id")}},
	{"user.deactivated", {REQ_STR("user_id")}},
	{"subscription.created", {REQ_STR("subscription_id"), REQ_STR("plan"), OPT_STR("customer_id"),
	OPT_STR("status"), OPT_NUM("amount"), OPT_STR("currency")}},
	{"subscription.updated", {REQ_STR("subscription_id"), OPT_OBJ("changes"), OPT_OBJ("previous_values"),
	OPT_STR("customer_id"), OPT_STR("plan"), OPT_STR("status"), OPT_NUM("amount"), OPT_STR("currency")}},
	{"subscription.canceled", {REQ_STR("subscription_id"), OPT_STR("customer_id"), OPT_STR("plan")}},
	{"payment.succeeded", {ANY_STR("subscription_id"), ANY_STR("payment_id"), OPT_NUM("amount")}},
	{"payment.failed", {ANY_STR("subscription_id"), ANY_STR("payment_id"), OPT_NUM("amount")}},
	{"invoice.created", {ANY_STR("subscription_id"), ANY_STR("invoice_id"), OPT_NUM("amount")}},
	{"message.sent", {REQ_STR("message_id"), OPT_STR("template"), OPT_STR("recipient")}},
	{"message.delivered", {REQ_STR("message_id"), OPT_STR("template"), OPT_STR("recipient")}},
	{"message.bounced", {REQ_STR("message_id"), OPT_STR("template"), OPT_STR("recipient")}},
	{"message.opened", {REQ_STR("message_id"), OPT_STR("template"), OPT_STR("recipient")}},
	{"message.clicked", {REQ_STR("message_id"), OPT_STR("template"), OPT_STR("recipient")}},
};

/* es_kind_ok: whether a present value has the field's type. */
static bool
es_kind_ok(const JsonbValue *v, EsKind kind)
{
	switch (kind)
	{
		case ES_STRING:
			return v->type == jbvString && v->val.string.len > 0 && v->val.string.len <= 200;
		case ES_NUMBER:
			return v->type == jbvNumeric;
		case ES_OBJECT:
			return v->type == jbvBinary && JsonContainerIsObject(v->val.binary.data);
	}
	return false;
}

static const char *const kind_names[] = {
	"a non-empty string of at most 200 characters", "a number", "an object"
};

/*
 * saas_event_data_error: NULL when "data" (an object) holds what events of
 * this type need, else why not. An event type without a schema (none of
 * the services' types) passes: the service's event_types decide those.
 */
const char *
saas_event_data_error(const char *event_type, JsonbContainer *data)
{
	for (int i = 0; i < (int) lengthof(schemas); i++)
	{
		const EsSchema *s = &schemas[i];
		const char *one_of = NULL;
		bool		one_of_found = false;

		if (strcmp(s->event_type, event_type) != 0)
			continue;
		for (int f = 0; f < ES_MAX_FIELDS && s->fields[f].name; f++)
		{
			const EsField *fd = &s->fields[f];
			JsonbValue *v = saas_jsonb_container_get(data, fd->name);

			if (fd->need == ES_ONE_OF)
				one_of = one_of ? psprintf("%s or data.%s", one_of, fd->name) : psprintf("data.%s", fd->name);
			if (v == NULL || v->type == jbvNull)
			{
				if (fd->need == ES_REQUIRED)
					return psprintf("data.%s is required for %s (%s)", fd->name, event_type,
									kind_names[fd->kind]);
				continue;
			}
			if (!es_kind_ok(v, fd->kind))
				return psprintf("data.%s of %s must be %s", fd->name, event_type, kind_names[fd->kind]);
			if (fd->need == ES_ONE_OF)
				one_of_found = true;
		}
		if (one_of != NULL && !one_of_found)
			return psprintf("%s is required for %s", one_of, event_type);
		return NULL;
	}
	return NULL;
}
