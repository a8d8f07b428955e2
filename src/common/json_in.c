/*-------------------------------------------------------------------------
 *
 * json_in.c
 *	  Reading JSON that arrives as text: a strict validity check (valid
 *	  UTF-8, no duplicate top-level keys) and jsonb key lookups.
 *
 * Tokens, webhook bodies and cursors all pass through the strict check
 * before PostgreSQL's jsonb_in sees them, so a duplicate key can never
 * pick which of two values wins.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/jsonapi.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "common/common.h"

/* State for the strict JSON check: depth and the top-level keys seen. */
typedef struct JsonStrictState
{
	int			depth;
	bool		top_is_object;
	bool		first;
	int			nkeys;
	char	   *keys[64];
	bool		dup;
} JsonStrictState;

static void
jstrict_object_start(void *state)
{
	JsonStrictState *s = state;

	if (s->first)
		s->top_is_object = true;
	s->first = false;
	s->depth++;
}

static void
jstrict_object_end(void *state)
{
	((JsonStrictState *) state)->depth--;
}

static void
jstrict_array_start(void *state)
{
	JsonStrictState *s = state;

	s->first = false;
	s->depth++;
}

static void
jstrict_array_end(void *state)
{
	((JsonStrictState *) state)->depth--;
}

/*
 * jstrict_scalar: any value ends "first" (the document is not an empty object).
 */
static void
jstrict_scalar(void *state, char *token, JsonTokenType tokentype)
{
	((JsonStrictState *) state)->first = false;
}

/*
 * jstrict_field: a top-level key; a repeated one (or more than 64) marks dup.
 */
static void
jstrict_field(void *state, char *fname, bool isnull)
{
	JsonStrictState *s = state;
	int			i;

	if (s->depth != 1)
		return;
	for (i = 0; i < s->nkeys; i++)
		if (strcmp(s->keys[i], fname) == 0)
			s->dup = true;
	if (s->nkeys < (int) lengthof(s->keys))
		s->keys[s->nkeys++] = fname;
	else
		s->dup = true;			/* more fields than any claim set needs */
}

/*
 * saas_json_valid_strict: true when json is valid UTF-8 JSON, at most 64
 * levels deep, without duplicate top-level keys (and an object when asked).
 * Never throws for bad input.
 */
bool
saas_json_valid_strict(const char *json, int len, bool top_object)
{
	JsonLexContext *lex;
	JsonSemAction sem = {0};
	JsonStrictState st = {0};
	JsonParseErrorType err;
	int			depth = 0,
				maxdepth = 0,
				i;
	bool		instr = false;

	if (!pg_verifymbstr(json, len, true))
		return false;
	/* Bound nesting before the recursive parser sees it. */
	for (i = 0; i < len; i++)
	{
		char		c = json[i];

		if (instr)
		{
			if (c == '\\')
				i++;
			else if (c == '"')
				instr = false;
		}
		else if (c == '"')
			instr = true;
		else if (c == '{' || c == '[')
		{
			if (++depth > maxdepth)
				maxdepth = depth;
		}
		else if (c == '}' || c == ']')
			depth--;
	}
	if (maxdepth > 64)
		return false;

	st.first = true;
	sem.semstate = &st;
	sem.object_start = jstrict_object_start;
	sem.object_end = jstrict_object_end;
	sem.array_start = jstrict_array_start;
	sem.array_end = jstrict_array_end;
	sem.object_field_start = jstrict_field;
	sem.scalar = jstrict_scalar;
	lex = makeJsonLexContextCstringLen(pnstrdup(json, len), len,
									   GetDatabaseEncoding(), true);
	err = pg_parse_json(lex, &sem);
	if (err != JSON_SUCCESS || st.dup)
		return false;
	if (top_object && !st.top_is_object)
		return false;
	return true;
}

/* saas_jsonb_from_text: jsonb of text already checked by saas_json_valid_strict. */
Jsonb *
saas_jsonb_from_text(const char *json, int len)
{
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
											  CStringGetDatum(pnstrdup(json, len))));
}

/* saas_jsonb_get: the value of a top-level key, or NULL. */
JsonbValue *
saas_jsonb_get(Jsonb *jb, const char *key)
{
	return saas_jsonb_container_get(&jb->root, key);
}

/* saas_jsonb_container_get: the value of a key of an object container, or NULL. */
JsonbValue *
saas_jsonb_container_get(JsonbContainer *c, const char *key)
{
	JsonbValue	k;

	if (!JsonContainerIsObject(c))
		return NULL;
	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	return findJsonbValueFromContainer(c, JB_FOBJECT, &k);
}

/* saas_header_get: a header by case-insensitive name from a JSON object, or NULL. */
char *
saas_header_get(Jsonb *headers, const char *name)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken r;
	bool		match = false;
	int			nlen = strlen(name);

	if (headers == NULL || !JB_ROOT_IS_OBJECT(headers) || JB_ROOT_IS_SCALAR(headers))
		return NULL;
	it = JsonbIteratorInit(&headers->root);
	while ((r = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (r == WJB_KEY)
			match = (v.val.string.len == nlen &&
					 pg_strncasecmp(v.val.string.val, name, nlen) == 0);
		else if (r == WJB_VALUE && match)
			return v.type == jbvString ? pnstrdup(v.val.string.val, v.val.string.len) : NULL;
	}
	return NULL;
}
