/*-------------------------------------------------------------------------
 *
 * validate.c
 *	  Validation of request bodies against a field list: unknown fields are
 *	  rejected, types and lengths checked, and every problem reported with
 *	  its field in one 400 answer.
 *
 * Errors travel as SQLSTATE SA400 with the field list as a JSON array in the
 * DETAIL, so SQL callers read the same details as HTTP clients.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "pg_saas.h"
#include "common/common.h"
#include "auth/auth.h"
#include "api/api.h"

const char *const saas_roles_assignable[] = {"admin", "user", NULL};
const char *const saas_user_statuses[] = {"active", "inactive", "suspended", NULL};
const char *const saas_tiers[] = {"free", "starter", "professional", "enterprise", NULL};
const char *const saas_org_statuses[] = {"active", "suspended", NULL};

/* saas_errors_init: an empty list of field errors. */
void
saas_errors_init(SaasErrors *e)
{
	initStringInfo(&e->json);
	appendStringInfoChar(&e->json, '[');
	e->n = 0;
}

/*
 * saas_errors_add: record one field error; saas_errors_raise reports them all.
 */
void
saas_errors_add(SaasErrors *e, const char *field, const char *message)
{
	if (e->n > 0)
		appendStringInfoChar(&e->json, ',');
	appendStringInfoString(&e->json, "{\"field\":");
	escape_json(&e->json, field);
	appendStringInfoString(&e->json, ",\"message\":");
	escape_json(&e->json, message);
	appendStringInfoChar(&e->json, '}');
	e->n++;
}

/* saas_errors_raise: one SA400 error listing every field problem, if any. */
void
saas_errors_raise(SaasErrors *e)
{
	if (e->n == 0)
		return;
	appendStringInfoChar(&e->json, ']');
	ereport(ERROR,
			(errcode(ERRCODE_SAAS_VALIDATION),
			 errmsg("request validation failed"),
			 errdetail_internal("%s", e->json.data)));
}

/* saas_raise_field_error: raise a 400 with one field error. */
void
saas_raise_field_error(const char *field, const char *message)
{
	SaasErrors	e;

	saas_errors_init(&e);
	saas_errors_add(&e, field, message);
	saas_errors_raise(&e);
}

/* saas_require_object: the body, which must be a JSON object. */
Jsonb *
saas_require_object(Jsonb *body)
{
	if (body == NULL || !JB_ROOT_IS_OBJECT(body) || JB_ROOT_IS_SCALAR(body))
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_VALIDATION),
				 errmsg("request body must be a JSON object")));
	return body;
}

/*
 * v_in: whether s (len bytes, not terminated) is one of the NULL-terminated choices.
 */
static bool
v_in(const char *s, int len, const char *const *choices)
{
	int			i;

	for (i = 0; choices && choices[i]; i++)
		if ((int) strlen(choices[i]) == len && memcmp(choices[i], s, len) == 0)
			return true;
	return false;
}

/* v_email_ok: a pragmatic address check: local@domain.tld, no spaces. */
static bool
v_email_ok(const char *s, int len)
{
	int			at = -1,
				i,
				lastdot = -1;

	if (len < 3 || len > 254)
		return false;
	for (i = 0; i < len; i++)
	{
		unsigned char c = s[i];

		if (c <= ' ' || c == 0x7f || c == '"' || c == '(' || c == ')' ||
			c == ',' || c == ';' || c == '<' || c == '>' || c == '[' || c == ']' || c == '\\')
			return false;
		if (c == '@')
		{
			if (at >= 0)
				return false;
			at = i;
		}
		else if (c == '.' && at >= 0)
		{
			if (i == at + 1 || i == lastdot + 1)
				return false;
			lastdot = i;
		}
	}
	return at > 0 && at <= 64 && lastdot > at + 1 && lastdot < len - 1;
}

/* v_slug_ok: lower-case letters, digits and inner hyphens, 1..63 chars. */
static bool
v_slug_ok(const char *s, int len)
{
	int			i;

	if (len < 1 || len > 63 || s[0] == '-' || s[len - 1] == '-')
		return false;
	for (i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

/* v_string_ok: valid text (no NUL, no control characters), length in chars. */
static const char *
v_string_problem(const char *s, int len, int min, int max)
{
	int			chars,
				i;

	for (i = 0; i < len; i++)
		if ((unsigned char) s[i] < 0x20 && s[i] != '\t')
			return "must not contain control characters";
	chars = pg_mbstrlen_with_len(s, len);
	if (chars < min)
		return min <= 1 ? "must not be empty" : "is too short";
	if (chars > max)
		return "is too long";
	return NULL;
}

/*
 * External ids (SF_STRING_MAP) name a service and hold a plain token: they
 * end up in outbound URLs and webhook mappings, so nothing else gets in.
 * The same rule is the CHECK saas._external_ids_valid() on the tables.
 */
static bool
v_external_key(const char *k, int len)
{
	static const char *const keys[] = {"user_service", "payment_service",
	"communication_service", "payment_customer", NULL};
	int			i;

	for (i = 0; keys[i]; i++)
		if ((int) strlen(keys[i]) == len && memcmp(keys[i], k, len) == 0)
			return true;
	return false;
}

/*
 * v_plain_token: 1..128 characters, an ASCII letter or digit first, then
 * letters, digits and "_.:-" only.
 */
static bool
v_plain_token(const char *s, int len)
{
	int			i;

#define V_ALNUM(c) (((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z') || ((c) >= '0' && (c) <= '9'))
	if (len < 1 || len > 128 || !V_ALNUM(s[0]))
		return false;
	for (i = 1; i < len; i++)
	{
		char		c = s[i];

		if (!(V_ALNUM(c) || c == '_' || c == '.' || c == ':' || c == '-'))
			return false;
	}
	return true;
#undef V_ALNUM
}

/*
 * v_field: check one present value against its field's rule, recording a
 * field error under path (prefix.name) instead of raising.
 */
static void
v_field(const SaasField *f, JsonbValue *v, const char *path, SaasErrors *e)
{
	char		msg[160];
	const char *why;

	if (v->type == jbvNull)
	{
		saas_errors_add(e, path, "must not be null");
		return;
	}
	switch (f->kind)
	{
		case SF_STRING:
		case SF_EMAIL:
		case SF_SLUG:
		case SF_PASSWORD:
		case SF_ENUM:
			if (v->type != jbvString)
			{
				saas_errors_add(e, path, "must be a string");
				return;
			}
			if (f->kind == SF_EMAIL && !v_email_ok(v->val.string.val, v->val.string.len))
				saas_errors_add(e, path, "must be a valid email address");
			else if (f->kind == SF_SLUG && !v_slug_ok(v->val.string.val, v->val.string.len))
				saas_errors_add(e, path, "must be 1-63 lower-case letters, digits or inner hyphens");
			else if (f->kind == SF_ENUM && !v_in(v->val.string.val, v->val.string.len, f->choices))
			{
				StringInfoData s;
				int			i;

				initStringInfo(&s);
				appendStringInfoString(&s, "must be one of: ");
				for (i = 0; f->choices[i]; i++)
					appendStringInfo(&s, "%s%s", i ? ", " : "", f->choices[i]);
				saas_errors_add(e, path, s.data);
			}
			else if (f->kind == SF_STRING &&
					 (why = v_string_problem(v->val.string.val, v->val.string.len, f->min, f->max)))
				saas_errors_add(e, path, why);
			else if (f->kind == SF_PASSWORD && v->val.string.len > 256)
				saas_errors_add(e, path, "must be at most 256 bytes long");
			break;
		case SF_INT:
			{
				int64		n;
				bool		ok = false;

				if (v->type == jbvNumeric &&
					!numeric_is_nan(v->val.numeric) && !numeric_is_inf(v->val.numeric))
				{
					Numeric		rounded = DatumGetNumeric(DirectFunctionCall2(numeric_round,
																				 NumericGetDatum(v->val.numeric),
																				 Int32GetDatum(0)));

					if (DatumGetBool(DirectFunctionCall2(numeric_eq, NumericGetDatum(rounded),
														 NumericGetDatum(v->val.numeric))))
					{
						bool		overflow = false;

						n = numeric_int4_opt_error(v->val.numeric, &overflow);
						ok = !overflow;
						if (ok && (n < f->min || n > f->max))
						{
							snprintf(msg, sizeof(msg), "must be an integer from %d to %d", f->min, f->max);
							saas_errors_add(e, path, msg);
							return;
						}
					}
				}
				if (!ok)
				{
					snprintf(msg, sizeof(msg), "must be an integer from %d to %d", f->min, f->max);
					saas_errors_add(e, path, msg);
				}
			}
			break;
		case SF_STRING_ARRAY:
		case SF_STRING_MAP:
		case SF_OBJECT:
			{
				bool		want_array = (f->kind == SF_STRING_ARRAY);
				JsonbIterator *it;
				JsonbValue	el;
				JsonbIteratorToken r;
				int			count = 0;
				bool		bad = false;

				if (v->type != jbvBinary ||
					(want_array && !JsonContainerIsArray(v->val.binary.data)) ||
					(!want_array && !JsonContainerIsObject(v->val.binary.data)))
				{
					saas_errors_add(e, path, want_array ? "must be an array of strings" : "must be an object");
					return;
				}
				if (f->kind == SF_OBJECT)
					return;
				it = JsonbIteratorInit(v->val.binary.data);
				while ((r = JsonbIteratorNext(&it, &el, true)) != WJB_DONE)
				{
					if (r == WJB_KEY && f->kind == SF_STRING_MAP &&
						!v_external_key(el.val.string.val, el.val.string.len))
					{
						saas_errors_add(e, path, "keys must be user_service, payment_service, communication_service or payment_customer");
						return;
					}
					if (r == WJB_ELEM || r == WJB_VALUE)
					{
						count++;
						if (el.type != jbvString || el.val.string.len == 0 ||
							v_string_problem(el.val.string.val, el.val.string.len, 1, 128))
							bad = true;
						else if (f->kind == SF_STRING_MAP &&
								 !v_plain_token(el.val.string.val, el.val.string.len))
						{
							saas_errors_add(e, path, "values must be plain tokens: a letter or digit, then letters, digits, _ . : - (at most 128)");
							return;
						}
					}
				}
				if (bad)
					saas_errors_add(e, path, want_array ?
									"must contain only non-empty strings of at most 128 characters" :
									"values must be non-empty strings of at most 128 characters");
				else if (count > f->max)
				{
					snprintf(msg, sizeof(msg), "must have at most %d entries", f->max);
					saas_errors_add(e, path, msg);
				}
			}
			break;
	}
}

/*
 * saas_validate: check obj against fields; problems go to e (prefix names
 * nested objects, e.g. "organization."). Unknown fields are errors.
 */
void
saas_validate(Jsonb *obj, const SaasField *fields, const char *prefix, SaasErrors *e)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken r;
	const SaasField *f;
	char		path[128];

	it = JsonbIteratorInit(&obj->root);
	while ((r = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (r != WJB_KEY)
			continue;
		for (f = fields; f->name; f++)
			if ((int) strlen(f->name) == v.val.string.len &&
				memcmp(f->name, v.val.string.val, v.val.string.len) == 0)
				break;
		if (f->name == NULL)
		{
			char	   *k = pnstrdup(v.val.string.val, Min(v.val.string.len, 64));

			snprintf(path, sizeof(path), "%s%s", prefix, k);
			saas_errors_add(e, path, "is not a known field");
		}
	}
	for (f = fields; f->name; f++)
	{
		JsonbValue *fv = saas_jsonb_get(obj, f->name);

		snprintf(path, sizeof(path), "%s%s", prefix, f->name);
		if (fv == NULL)
		{
			if (f->required)
				saas_errors_add(e, path, "is required");
			continue;
		}
		v_field(f, fv, path, e);
	}
}

/* saas_get_str: a string field as a C string, or NULL when absent or null. */
char *
saas_get_str(Jsonb *obj, const char *key)
{
	JsonbValue *v = saas_jsonb_get(obj, key);

	if (v == NULL || v->type != jbvString)
		return NULL;
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/*
 * saas_get_int: a numeric member of obj as int32; false when absent or not
 * a number (the validation checked the range before).
 */
bool
saas_get_int(Jsonb *obj, const char *key, int32 *out)
{
	JsonbValue *v = saas_jsonb_get(obj, key);

	if (v == NULL || v->type != jbvNumeric)
		return false;
	*out = DatumGetInt32(DirectFunctionCall1(numeric_int4, NumericGetDatum(v->val.numeric)));
	return true;
}

/* saas_get_jsonb: a nested array or object field as its own jsonb. */
Jsonb *
saas_get_jsonb(Jsonb *obj, const char *key)
{
	JsonbValue *v = saas_jsonb_get(obj, key);

	if (v == NULL || v->type != jbvBinary)
		return NULL;
	return JsonbValueToJsonb(v);
}

/* saas_has: whether obj has the key (with any value, null included). */
bool
saas_has(Jsonb *obj, const char *key)
{
	return saas_jsonb_get(obj, key) != NULL;
}
