/*-------------------------------------------------------------------------
 *
 * json_write.c
 *	  The JSON writer of saas-sim and the string buffer it writes into.
 *
 * The writer streams: handlers write values in order into a SimBuf and it
 * places commas and colons itself, so they cannot produce malformed JSON by
 * forgetting a separator.  Strings are escaped by jansson; numbers are
 * written here (jw_num keeps the shortest form that reads back the same
 * double, which jansson's fixed precision does not).
 *
 *-------------------------------------------------------------------------
 */
#include "json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- SimBuf ---- */

/*
 * sbuf_grow
 *		Make room for n more bytes plus the terminating NUL; abort on OOM,
 *		as a simulator has nothing better to do.
 */
static void
sbuf_grow(SimBuf *b, size_t n)
{
	size_t		need = b->len + n + 1;

	if (need <= b->cap)
		return;
	size_t		cap = b->cap ? b->cap : 256;

	while (cap < need)
		cap *= 2;
	b->data = realloc(b->data, cap);
	if (b->data == NULL)
	{
		fprintf(stderr, "saas-sim: out of memory\n");
		abort();
	}
	b->cap = cap;
}

/* sbuf_init: an empty buffer; data stays NULL until the first append */
void
sbuf_init(SimBuf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

/* sbuf_free: release the buffer's memory */
void
sbuf_free(SimBuf *b)
{
	free(b->data);
	sbuf_init(b);
}

/* sbuf_reset: empty the buffer but keep its memory */
void
sbuf_reset(SimBuf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

/* sbuf_append: append n bytes */
void
sbuf_append(SimBuf *b, const char *s, size_t n)
{
	sbuf_grow(b, n);
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

/* sbuf_puts: append a C string */
void
sbuf_puts(SimBuf *b, const char *s)
{
	sbuf_append(b, s, strlen(s));
}

/* sbuf_putc: append one byte */
void
sbuf_putc(SimBuf *b, char c)
{
	sbuf_append(b, &c, 1);
}

/* sbuf_vprintf: append formatted text */
void
sbuf_vprintf(SimBuf *b, const char *fmt, va_list ap)
{
	va_list		ap2;
	int			n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return;
	sbuf_grow(b, (size_t) n);
	vsnprintf(b->data + b->len, (size_t) n + 1, fmt, ap);
	b->len += (size_t) n;
}

/* sbuf_printf: append formatted text */
void
sbuf_printf(SimBuf *b, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	sbuf_vprintf(b, fmt, ap);
	va_end(ap);
}

/* sbuf_steal: hand the (never NULL) string to the caller, leaving b empty */
char *
sbuf_steal(SimBuf *b)
{
	char	   *s;

	if (b->data == NULL)
	{
		sbuf_grow(b, 0);
		b->data[0] = '\0';
	}
	s = b->data;
	sbuf_init(b);
	return s;
}

/* ---- writer ---- */

/* jw_dump_cb: jansson's output callback, appending to a SimBuf */
static int
jw_dump_cb(const char *text, size_t size, void *data)
{
	sbuf_append((SimBuf *) data, text, size);
	return 0;
}

/*
 * jw_string_value
 *		s as a jansson string.  Bytes that are not valid UTF-8 (a URL path can
 *		carry any) become U+FFFD, so the output is always valid JSON: jansson
 *		itself says how long each valid character is.
 */
static json_t *
jw_string_value(const char *s)
{
	json_t	   *j = json_string(s);
	SimBuf		clean;
	size_t		len;

	if (j != NULL)
		return j;
	sbuf_init(&clean);
	len = strlen(s);
	for (size_t i = 0; i < len;)
	{
		size_t		n = 0;

		for (size_t k = 1; k <= 4 && i + k <= len && n == 0; k++)
		{
			json_t	   *c = json_stringn(s + i, k);

			if (c != NULL)
				n = k;
			json_decref(c);
		}
		if (n == 0)
		{
			sbuf_puts(&clean, "\xEF\xBF\xBD");
			i++;
		}
		else
		{
			sbuf_append(&clean, s + i, n);
			i += n;
		}
	}
	j = json_stringn(clean.data ? clean.data : "", clean.len);
	sbuf_free(&clean);
	if (j == NULL)
		abort();
	return j;
}

/* sim_json_escape: a quoted JSON string, escaped by jansson; NULL is written as null */
void
sim_json_escape(SimBuf *b, const char *s)
{
	json_t	   *j;

	if (s == NULL)
	{
		sbuf_puts(b, "null");
		return;
	}
	j = jw_string_value(s);
	if (json_dump_callback(j, jw_dump_cb, b, JSON_ENCODE_ANY) != 0)
		abort();
	json_decref(j);
}

/* jw_init: start writing into buf */
void
jw_init(SimJw *jw, SimBuf *buf)
{
	memset(jw, 0, sizeof(*jw));
	jw->buf = buf;
}

/* jw_sep: the comma before a value or key, unless it follows a key */
static void
jw_sep(SimJw *jw)
{
	if (jw->after_key)
	{
		jw->after_key = false;
		return;
	}
	if (jw->need_comma[jw->depth])
		sbuf_putc(jw->buf, ',');
	jw->need_comma[jw->depth] = true;
}

/* jw_open: begin an object or array */
static void
jw_open(SimJw *jw, char c)
{
	jw_sep(jw);
	sbuf_putc(jw->buf, c);
	if (jw->depth < SIM_JSON_MAX_DEPTH)
		jw->depth++;
	jw->need_comma[jw->depth] = false;
}

/* jw_close: end an object or array */
static void
jw_close(SimJw *jw, char c)
{
	sbuf_putc(jw->buf, c);
	if (jw->depth > 0)
		jw->depth--;
}

/* jw_obj_begin: open an object (as a value: after a key, in an array, or at top) */
void
jw_obj_begin(SimJw *jw)
{
	jw_open(jw, '{');
}

/* jw_obj_end: close the innermost object */
void
jw_obj_end(SimJw *jw)
{
	jw_close(jw, '}');
}

/* jw_arr_begin: open an array */
void
jw_arr_begin(SimJw *jw)
{
	jw_open(jw, '[');
}

/* jw_arr_end: close the innermost array */
void
jw_arr_end(SimJw *jw)
{
	jw_close(jw, ']');
}

/* jw_key: an object key; the next value belongs to it */
void
jw_key(SimJw *jw, const char *key)
{
	jw_sep(jw);
	sim_json_escape(jw->buf, key);
	sbuf_putc(jw->buf, ':');
	jw->after_key = true;
}

/* jw_str: a string value, escaped; NULL writes null */
void
jw_str(SimJw *jw, const char *s)
{
	jw_sep(jw);
	sim_json_escape(jw->buf, s);
}

/* jw_int: an integer value */
void
jw_int(SimJw *jw, int64_t v)
{
	jw_sep(jw);
	sbuf_printf(jw->buf, "%lld", (long long) v);
}

/* jw_num: shortest form that reads back the same double (999.99, not 999.99000000000001) */
void
jw_num(SimJw *jw, double v)
{
	char		tmp[40];

	jw_sep(jw);
	if (!isfinite(v))
	{
		sbuf_puts(jw->buf, "null");
		return;
	}
	for (int prec = 15; prec <= 17; prec++)
	{
		snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
		if (strtod(tmp, NULL) == v)
			break;
	}
	sbuf_puts(jw->buf, tmp);
}

/* jw_bool: true or false */
void
jw_bool(SimJw *jw, bool v)
{
	jw_sep(jw);
	sbuf_puts(jw->buf, v ? "true" : "false");
}

/* jw_null: null */
void
jw_null(SimJw *jw)
{
	jw_sep(jw);
	sbuf_puts(jw->buf, "null");
}

/* jw_raw: a value that is already JSON text */
void
jw_raw(SimJw *jw, const char *json)
{
	jw_sep(jw);
	sbuf_puts(jw->buf, json);
}

/* jw_value: serialize a parsed tree (numbers as jw_int and jw_num write them) */
void
jw_value(SimJw *jw, json_t *v)
{
	const char *key;
	json_t	   *child;
	size_t		i;

	switch (v ? json_typeof(v) : JSON_NULL)
	{
		case JSON_NULL:
			jw_null(jw);
			break;
		case JSON_TRUE:
		case JSON_FALSE:
			jw_bool(jw, json_is_true(v));
			break;
		case JSON_INTEGER:
			jw_int(jw, json_integer_value(v));
			break;
		case JSON_REAL:
			jw_num(jw, json_real_value(v));
			break;
		case JSON_STRING:
			jw_str(jw, json_string_value(v));
			break;
		case JSON_ARRAY:
			jw_arr_begin(jw);
			json_array_foreach(v, i, child)
				jw_value(jw, child);
			jw_arr_end(jw);
			break;
		case JSON_OBJECT:
			jw_obj_begin(jw);
			json_object_foreach(v, key, child)
			{
				jw_key(jw, key);
				jw_value(jw, child);
			}
			jw_obj_end(jw);
			break;
	}
}

/* jw_kstr: "key": string (or null) */
void
jw_kstr(SimJw *jw, const char *key, const char *s)
{
	jw_key(jw, key);
	jw_str(jw, s);
}

/* jw_kint: "key": integer */
void
jw_kint(SimJw *jw, const char *key, int64_t v)
{
	jw_key(jw, key);
	jw_int(jw, v);
}

/* jw_knum: "key": number */
void
jw_knum(SimJw *jw, const char *key, double v)
{
	jw_key(jw, key);
	jw_num(jw, v);
}

/* jw_kbool: "key": boolean */
void
jw_kbool(SimJw *jw, const char *key, bool v)
{
	jw_key(jw, key);
	jw_bool(jw, v);
}
