/*-------------------------------------------------------------------------
 *
 * json.c
 *	  The JSON parser of saas-sim.
 *
 * A recursive descent over a bounded input (the request body is capped
 * before it gets here) with an explicit depth limit, so hostile input can
 * cost neither unbounded stack nor a crash.  The writer and the string
 * buffer are in json_write.c.
 *
 *-------------------------------------------------------------------------
 */
#include "json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- parser ---- */

typedef struct JsonParser
{
	const char *p;
	const char *end;
	const char *start;
	char	   *err;
	size_t		errlen;
	bool		failed;
} JsonParser;

static SimJson *json_parse_value(JsonParser *ps, int depth);

/* json_fail: record the first error with its byte offset */
static void
json_fail(JsonParser *ps, const char *msg)
{
	if (ps->failed)
		return;
	ps->failed = true;
	if (ps->err && ps->errlen)
		snprintf(ps->err, ps->errlen, "%s at byte %ld", msg, (long) (ps->p - ps->start));
}

/* json_skip_ws: skip the four whitespace characters JSON allows */
static void
json_skip_ws(JsonParser *ps)
{
	while (ps->p < ps->end &&
		   (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

/* json_new: a zeroed node of the given type */
static SimJson *
json_new(SimJsonType type)
{
	SimJson    *v = calloc(1, sizeof(SimJson));

	if (v == NULL)
		abort();
	v->type = type;
	return v;
}

/* json_hex4: four hex digits of a \u escape, or -1 */
static int
json_hex4(const char *p)
{
	int			v = 0;

	for (int i = 0; i < 4; i++)
	{
		char		c = p[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	return v;
}

/* json_put_utf8: encode one code point */
static void
json_put_utf8(SimBuf *b, unsigned cp)
{
	char		out[4];

	if (cp < 0x80)
		sbuf_putc(b, (char) cp);
	else if (cp < 0x800)
	{
		out[0] = (char) (0xC0 | (cp >> 6));
		out[1] = (char) (0x80 | (cp & 0x3F));
		sbuf_append(b, out, 2);
	}
	else if (cp < 0x10000)
	{
		out[0] = (char) (0xE0 | (cp >> 12));
		out[1] = (char) (0x80 | ((cp >> 6) & 0x3F));
		out[2] = (char) (0x80 | (cp & 0x3F));
		sbuf_append(b, out, 3);
	}
	else
	{
		out[0] = (char) (0xF0 | (cp >> 18));
		out[1] = (char) (0x80 | ((cp >> 12) & 0x3F));
		out[2] = (char) (0x80 | ((cp >> 6) & 0x3F));
		out[3] = (char) (0x80 | (cp & 0x3F));
		sbuf_append(b, out, 4);
	}
}

/*
 * sim_utf8_len
 *		Length of the valid UTF-8 sequence at p (at most end), or 0 if it is
 *		not valid (overlong forms, surrogates and > U+10FFFF are refused).
 */
int
sim_utf8_len(const unsigned char *p, const unsigned char *end)
{
	unsigned	c = p[0];
	int			n;
	unsigned	cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		n = 2, cp = c & 0x1F;
	else if (c >= 0xE0 && c <= 0xEF)
		n = 3, cp = c & 0x0F;
	else if (c >= 0xF0 && c <= 0xF4)
		n = 4, cp = c & 0x07;
	else
		return 0;
	if (end - p < n)
		return 0;
	for (int i = 1; i < n; i++)
	{
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3F);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
		(cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return n;
}

/* json_parse_string: a string literal, unescaped into a fresh C string */
static char *
json_parse_string(JsonParser *ps)
{
	SimBuf		b;

	sbuf_init(&b);
	ps->p++;					/* opening quote */
	while (ps->p < ps->end && *ps->p != '"')
	{
		unsigned char c = (unsigned char) *ps->p;

		if (c < 0x20)
		{
			json_fail(ps, "control character in string");
			goto fail;
		}
		if (c == '\\')
		{
			if (ps->end - ps->p < 2)
				break;
			char		e = ps->p[1];

			ps->p += 2;
			switch (e)
			{
				case '"':
				case '\\':
				case '/':
					sbuf_putc(&b, e);
					break;
				case 'b':
					sbuf_putc(&b, '\b');
					break;
				case 'f':
					sbuf_putc(&b, '\f');
					break;
				case 'n':
					sbuf_putc(&b, '\n');
					break;
				case 'r':
					sbuf_putc(&b, '\r');
					break;
				case 't':
					sbuf_putc(&b, '\t');
					break;
				case 'u':
					{
						int			hi,
									lo;
						unsigned	cp;

						if (ps->end - ps->p < 4 || (hi = json_hex4(ps->p)) < 0)
						{
							json_fail(ps, "bad \\u escape");
							goto fail;
						}
						ps->p += 4;
						cp = (unsigned) hi;
						if (hi >= 0xD800 && hi <= 0xDBFF)
						{
							/* a high surrogate must be followed by a low one */
							if (ps->end - ps->p < 6 || ps->p[0] != '\\' || ps->p[1] != 'u' ||
								(lo = json_hex4(ps->p + 2)) < 0xDC00 || lo > 0xDFFF)
							{
								json_fail(ps, "unpaired surrogate in \\u escape");
								goto fail;
							}
							ps->p += 6;
							cp = 0x10000 + (((unsigned) hi - 0xD800) << 10) + ((unsigned) lo - 0xDC00);
						}
						else if (hi >= 0xDC00 && hi <= 0xDFFF)
						{
							json_fail(ps, "unpaired surrogate in \\u escape");
							goto fail;
						}
						if (cp == 0)
						{
							json_fail(ps, "\\u0000 is not accepted");
							goto fail;
						}
						json_put_utf8(&b, cp);
						break;
					}
				default:
					ps->p -= 2;
					json_fail(ps, "bad escape in string");
					goto fail;
			}
			continue;
		}
		int			n = sim_utf8_len((const unsigned char *) ps->p,
									  (const unsigned char *) ps->end);

		if (n == 0)
		{
			json_fail(ps, "invalid UTF-8 in string");
			goto fail;
		}
		sbuf_append(&b, ps->p, (size_t) n);
		ps->p += n;
	}
	if (ps->p >= ps->end)
	{
		json_fail(ps, "unterminated string");
		goto fail;
	}
	ps->p++;					/* closing quote */
	return sbuf_steal(&b);

fail:
	sbuf_free(&b);
	return NULL;
}

/* json_parse_number: the strict JSON number grammar, then strtod */
static SimJson *
json_parse_number(JsonParser *ps)
{
	const char *s = ps->p;
	const char *q = s;
	bool		integral = true;
	char		tmp[64];
	SimJson    *v;

	if (q < ps->end && *q == '-')
		q++;
	if (q < ps->end && *q == '0')
		q++;
	else if (q < ps->end && *q >= '1' && *q <= '9')
		while (q < ps->end && *q >= '0' && *q <= '9')
			q++;
	else
	{
		json_fail(ps, "bad number");
		return NULL;
	}
	if (q < ps->end && *q == '.')
	{
		integral = false;
		q++;
		if (q >= ps->end || *q < '0' || *q > '9')
		{
			json_fail(ps, "bad number");
			return NULL;
		}
		while (q < ps->end && *q >= '0' && *q <= '9')
			q++;
	}
	if (q < ps->end && (*q == 'e' || *q == 'E'))
	{
		integral = false;
		q++;
		if (q < ps->end && (*q == '+' || *q == '-'))
			q++;
		if (q >= ps->end || *q < '0' || *q > '9')
		{
			json_fail(ps, "bad number");
			return NULL;
		}
		while (q < ps->end && *q >= '0' && *q <= '9')
			q++;
	}
	if ((size_t) (q - s) >= sizeof(tmp))
	{
		json_fail(ps, "number too long");
		return NULL;
	}
	memcpy(tmp, s, (size_t) (q - s));
	tmp[q - s] = '\0';
	v = json_new(SJ_NUMBER);
	errno = 0;
	v->number = strtod(tmp, NULL);
	if (!isfinite(v->number))
	{
		json_fail(ps, "number out of range");
		free(v);
		return NULL;
	}
	if (integral)
	{
		errno = 0;
		long long	ll = strtoll(tmp, NULL, 10);

		if (errno == 0)
		{
			v->is_integer = true;
			v->integer = ll;
		}
	}
	ps->p = q;
	return v;
}

/* json_add: append a child (and its key, for objects) */
static void
json_add(SimJson *parent, char *key, SimJson *child)
{
	if (parent->count == parent->cap)
	{
		parent->cap = parent->cap ? parent->cap * 2 : 4;
		parent->items = realloc(parent->items, parent->cap * sizeof(SimJson *));
		if (parent->type == SJ_OBJECT)
			parent->keys = realloc(parent->keys, parent->cap * sizeof(char *));
		if (parent->items == NULL || (parent->type == SJ_OBJECT && parent->keys == NULL))
			abort();
	}
	parent->items[parent->count] = child;
	if (parent->type == SJ_OBJECT)
		parent->keys[parent->count] = key;
	parent->count++;
}

/* json_parse_container: an array or an object, after its opening bracket */
static SimJson *
json_parse_container(JsonParser *ps, int depth, bool is_object)
{
	SimJson    *v = json_new(is_object ? SJ_OBJECT : SJ_ARRAY);
	char		close = is_object ? '}' : ']';

	ps->p++;
	json_skip_ws(ps);
	if (ps->p < ps->end && *ps->p == close)
	{
		ps->p++;
		return v;
	}
	for (;;)
	{
		char	   *key = NULL;
		SimJson    *child;

		json_skip_ws(ps);
		if (is_object)
		{
			if (ps->p >= ps->end || *ps->p != '"')
			{
				json_fail(ps, "expected a string key");
				goto fail;
			}
			key = json_parse_string(ps);
			if (key == NULL)
				goto fail;
			if (sim_json_get(v, key) != NULL)
			{
				json_fail(ps, "duplicate key");
				free(key);
				goto fail;
			}
			json_skip_ws(ps);
			if (ps->p >= ps->end || *ps->p != ':')
			{
				json_fail(ps, "expected ':'");
				free(key);
				goto fail;
			}
			ps->p++;
		}
		child = json_parse_value(ps, depth + 1);
		if (child == NULL)
		{
			free(key);
			goto fail;
		}
		json_add(v, key, child);
		json_skip_ws(ps);
		if (ps->p < ps->end && *ps->p == ',')
		{
			ps->p++;
			continue;
		}
		if (ps->p < ps->end && *ps->p == close)
		{
			ps->p++;
			return v;
		}
		json_fail(ps, is_object ? "expected ',' or '}'" : "expected ',' or ']'");
		goto fail;
	}
fail:
	sim_json_free(v);
	return NULL;
}

/* json_literal: true, false or null */
static bool
json_literal(JsonParser *ps, const char *word)
{
	size_t		n = strlen(word);

	if ((size_t) (ps->end - ps->p) >= n && memcmp(ps->p, word, n) == 0)
	{
		ps->p += n;
		return true;
	}
	return false;
}

/* json_parse_value: any value, with the depth limit enforced */
static SimJson *
json_parse_value(JsonParser *ps, int depth)
{
	SimJson    *v;

	if (depth > SIM_JSON_MAX_DEPTH)
	{
		json_fail(ps, "nesting too deep");
		return NULL;
	}
	json_skip_ws(ps);
	if (ps->p >= ps->end)
	{
		json_fail(ps, "unexpected end of input");
		return NULL;
	}
	switch (*ps->p)
	{
		case '{':
			return json_parse_container(ps, depth, true);
		case '[':
			return json_parse_container(ps, depth, false);
		case '"':
			{
				char	   *s = json_parse_string(ps);

				if (s == NULL)
					return NULL;
				v = json_new(SJ_STRING);
				v->string = s;
				return v;
			}
		case 't':
		case 'f':
		case 'n':
			if (json_literal(ps, "true") || json_literal(ps, "false"))
			{
				v = json_new(SJ_BOOL);
				v->boolean = (ps->p[-1] == 'e' && ps->p[-2] == 'u');	/* "true" */
				return v;
			}
			if (json_literal(ps, "null"))
				return json_new(SJ_NULL);
			json_fail(ps, "unexpected token");
			return NULL;
		default:
			if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9'))
				return json_parse_number(ps);
			json_fail(ps, "unexpected character");
			return NULL;
	}
}

/*
 * sim_json_parse
 *		Parse len bytes of text; NULL with a message in err when it is not
 *		exactly one valid JSON value (surrounding whitespace allowed).
 */
SimJson *
sim_json_parse(const char *text, size_t len, char *err, size_t errlen)
{
	JsonParser	ps = {text, text + len, text, err, errlen, false};
	SimJson    *v;

	if (err && errlen)
		err[0] = '\0';
	if (text == NULL)
	{
		ps.p = ps.end = ps.start = "";
	}
	v = json_parse_value(&ps, 1);
	if (v == NULL)
		return NULL;
	json_skip_ws(&ps);
	if (ps.p != ps.end)
	{
		json_fail(&ps, "trailing characters after the JSON value");
		sim_json_free(v);
		return NULL;
	}
	return v;
}

/* sim_json_free: free a tree (NULL is fine) */
void
sim_json_free(SimJson *v)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < v->count; i++)
	{
		sim_json_free(v->items[i]);
		if (v->keys)
			free(v->keys[i]);
	}
	free(v->items);
	free(v->keys);
	free(v->string);
	free(v);
}

/* sim_json_get: the value of key in an object, or NULL */
const SimJson *
sim_json_get(const SimJson *obj, const char *key)
{
	if (obj == NULL || obj->type != SJ_OBJECT)
		return NULL;
	for (size_t i = 0; i < obj->count; i++)
		if (strcmp(obj->keys[i], key) == 0)
			return obj->items[i];
	return NULL;
}

/* sim_json_get_str: the string value of key, or NULL if absent or not a string */
const char *
sim_json_get_str(const SimJson *obj, const char *key)
{
	const SimJson *v = sim_json_get(obj, key);

	return (v && v->type == SJ_STRING) ? v->string : NULL;
}

/* sim_json_type_name: for error messages */
const char *
sim_json_type_name(SimJsonType t)
{
	switch (t)
	{
		case SJ_NULL:
			return "null";
		case SJ_BOOL:
			return "boolean";
		case SJ_NUMBER:
			return "number";
		case SJ_STRING:
			return "string";
		case SJ_ARRAY:
			return "array";
		case SJ_OBJECT:
			return "object";
	}
	return "?";
}
