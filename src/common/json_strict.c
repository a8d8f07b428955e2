/*-------------------------------------------------------------------------
 *
 * json_strict.c
 *	  The strict JSON check of text that arrives from outside: tokens,
 *	  request and webhook bodies, cursors.
 *
 * Valid UTF-8, at most 64 levels deep, no duplicate top-level keys (so a
 * duplicate can never pick which of two values wins once PostgreSQL's
 * jsonb_in sees the text). It needs only PostgreSQL's JSON lexer and
 * palloc, never a backend service, so the fuzz targets (fuzz/) build it
 * with fuzz/pg_stub.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/jsonapi.h"
#include "mb/pg_wchar.h"

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

static void
jstrict_scalar(void *state, char *token, JsonTokenType tokentype)
{
	((JsonStrictState *) state)->first = false;
}

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
