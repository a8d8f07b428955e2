/*-------------------------------------------------------------------------
 *
 * json_out.c
 *	  JSON answers written straight from tuples: no intermediate jsonb, so a
 *	  page of users costs one pass over its columns.
 *
 * Timestamps are RFC 3339 in UTC with microseconds ("...T09:30:00.000000Z").
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"

#include "pg_saas.h"
#include "common/common.h"

/* saas_json_key: the separator (unless first) and "key": */
void
saas_json_key(StringInfo out, bool *first, const char *key)
{
	if (!*first)
		appendStringInfoChar(out, ',');
	*first = false;
	escape_json(out, key);
	appendStringInfoChar(out, ':');
}

/* saas_json_string: a JSON string (escaped), or null for NULL. */
void
saas_json_string(StringInfo out, const char *s)
{
	if (s == NULL)
		appendStringInfoString(out, "null");
	else
		escape_json(out, s);
}

/* saas_json_uuid: a uuid as a JSON string. */
void
saas_json_uuid(StringInfo out, const pg_uuid_t *u)
{
	char		buf[37];

	saas_uuid_to_cstr(u, buf);
	appendStringInfoChar(out, '"');
	appendStringInfoString(out, buf);
	appendStringInfoChar(out, '"');
}

/*
 * saas_json_timestamptz: "YYYY-MM-DDTHH:MM:SS.ffffffZ" (UTC), or null for
 * infinity and years outside 0..9999.
 */
void
saas_json_timestamptz(StringInfo out, TimestampTz ts)
{
	struct pg_tm tm;
	fsec_t		fsec;

	if (TIMESTAMP_NOT_FINITE(ts) || timestamp2tm(ts, NULL, &tm, &fsec, NULL, NULL) != 0)
	{
		appendStringInfoString(out, "null");
		return;
	}
	if (tm.tm_year < 0 || tm.tm_year > 9999)
	{
		appendStringInfoString(out, "null");
		return;
	}
	{
		/* "YYYY-MM-DDTHH:MM:SS.ffffffZ" without the cost of a format string */
		char		b[30];
		int			v[7] = {tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int) fsec};
		static const int width[7] = {4, 2, 2, 2, 2, 2, 6};
		static const char sep[7] = {'-', '-', 'T', ':', ':', '.', 'Z'};
		char	   *p = b;
		int			f,
					k;

		*p++ = '"';
		for (f = 0; f < 7; f++)
		{
			for (k = width[f] - 1; k >= 0; k--)
			{
				p[k] = '0' + v[f] % 10;
				v[f] /= 10;
			}
			p += width[f];
			*p++ = sep[f];
		}
		*p++ = '"';
		appendBinaryStringInfo(out, b, p - b);
	}
}

/* json_text_array: a one-dimensional text[] as a JSON array of strings. */
static void
json_text_array(StringInfo out, Datum d)
{
	ArrayType  *arr = DatumGetArrayTypeP(d);
	Datum	   *elems;
	bool	   *nulls;
	int			n,
				i;

	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	appendStringInfoChar(out, '[');
	for (i = 0; i < n; i++)
	{
		if (i > 0)
			appendStringInfoChar(out, ',');
		if (nulls[i])
			appendStringInfoString(out, "null");
		else
			escape_json(out, TextDatumGetCString(elems[i]));
	}
	appendStringInfoChar(out, ']');
}

void
saas_json_column(StringInfo out, HeapTuple tup, TupleDesc desc, int attno)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, attno, &isnull);

	saas_json_datum(out, d, isnull, SPI_gettypeid(desc, attno));
}

/* saas_json_datum: one value as JSON, by its type. */
void
saas_json_datum(StringInfo out, Datum d, bool isnull, Oid typ)
{
	if (isnull)
	{
		appendStringInfoString(out, "null");
		return;
	}
	switch (typ)
	{
		case TEXTOID:
		case VARCHAROID:
			escape_json(out, TextDatumGetCString(d));
			break;
		case UUIDOID:
			saas_json_uuid(out, DatumGetUUIDP(d));
			break;
		case INT2OID:
			appendStringInfo(out, "%d", (int) DatumGetInt16(d));
			break;
		case INT4OID:
			appendStringInfo(out, "%d", DatumGetInt32(d));
			break;
		case INT8OID:
			appendStringInfo(out, INT64_FORMAT, DatumGetInt64(d));
			break;
		case BOOLOID:
			appendStringInfoString(out, DatumGetBool(d) ? "true" : "false");
			break;
		case TIMESTAMPTZOID:
			saas_json_timestamptz(out, DatumGetTimestampTz(d));
			break;
		case JSONBOID:
			{
				Jsonb	   *jb = DatumGetJsonbP(d);

				(void) JsonbToCString(out, &jb->root, VARSIZE(jb));
			}
			break;
		case JSONOID:
			appendStringInfoString(out, TextDatumGetCString(d));
			break;
		case TEXTARRAYOID:
			json_text_array(out, d);
			break;
		default:
			{
				/* numeric and anything else: its text form, quoted unless numeric */
				Oid			outfn;
				bool		varlena;
				char	   *s;

				getTypeOutputInfo(typ, &outfn, &varlena);
				s = OidOutputFunctionCall(outfn, d);
				if (typ == NUMERICOID || typ == FLOAT8OID || typ == FLOAT4OID)
					appendStringInfoString(out, s);
				else
					escape_json(out, s);
			}
			break;
	}
}

/* saas_json_row: {"name":value,...} of every column of one tuple. */
void
saas_json_row(StringInfo out, HeapTuple tup, TupleDesc desc)
{
	saas_json_rows(out, &tup, 1, desc, false);
}

/*
 * saas_json_rows: n tuples as JSON objects, comma-separated (as an array's
 * body when as_list). Each tuple is deformed once, and the escaped keys are
 * made once for all rows.
 */
void
saas_json_rows(StringInfo out, HeapTuple *tups, int n, TupleDesc desc, bool as_list)
{
	int			natts = desc->natts;
	char	  **keys = palloc(sizeof(char *) * natts);
	Datum	   *values = palloc(sizeof(Datum) * natts);
	bool	   *nulls = palloc(sizeof(bool) * natts);
	int			i,
				r;

	for (i = 0; i < natts; i++)
	{
		StringInfoData k;

		initStringInfo(&k);
		escape_json(&k, NameStr(TupleDescAttr(desc, i)->attname));
		appendStringInfoChar(&k, ':');
		keys[i] = k.data;
	}
	for (r = 0; r < n; r++)
	{
		bool		first = true;

		if (as_list && r > 0)
			appendStringInfoChar(out, ',');
		heap_deform_tuple(tups[r], desc, values, nulls);
		appendStringInfoChar(out, '{');
		for (i = 0; i < natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, i);

			if (att->attisdropped)
				continue;
			if (!first)
				appendStringInfoChar(out, ',');
			first = false;
			appendStringInfoString(out, keys[i]);
			saas_json_datum(out, values[i], nulls[i], att->atttypid);
		}
		appendStringInfoChar(out, '}');
	}
}

/*
 * Cursors are the base64url of the last row's sort key. Opaque to clients;
 * decoding validates the alphabet, so a forged cursor is just a bad cursor.
 */
char *
saas_cursor_encode(const char *key)
{
	StringInfoData s;

	initStringInfo(&s);
	saas_b64url_encode((const unsigned char *) key, strlen(key), &s);
	return s.data;
}

/*
 * saas_cursor_decode: the key a cursor stands for, or NULL when it is not
 * strict base64url of printable ASCII (at most 256 characters).
 */
char *
saas_cursor_decode(const char *cursor)
{
	StringInfoData s;
	int			i;

	if (cursor == NULL || strlen(cursor) > 256)
		return NULL;
	initStringInfo(&s);
	if (!saas_b64url_decode(cursor, strlen(cursor), &s))
		return NULL;
	for (i = 0; i < s.len; i++)
		if ((unsigned char) s.data[i] < 0x20 || (unsigned char) s.data[i] > 0x7e)
			return NULL;
	return s.data;
}

/*
 * saas_cursor_uuid: the id a list's page cursor stands for (lists sorted by
 * a uuid key); false when the cursor is not one that saas_page_json wrote.
 */
bool
saas_cursor_uuid(const char *cursor, pg_uuid_t *after)
{
	char	   *key = saas_cursor_decode(cursor);

	return key != NULL && saas_uuid_from_cstr(key, after);
}
