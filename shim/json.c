/*-------------------------------------------------------------------------
 *
 * json.c
 *	  The little JSON the relay needs.
 *
 * The relay builds one JSON object (the request headers) and reads one
 * (the response headers, which the extension returns as jsonb text: a flat
 * object of name -> string).  That is too little to justify a JSON library
 * and too much to do with string pasting, hence this file.  Everything
 * else about JSON belongs to the extension.
 *
 *-------------------------------------------------------------------------
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

/*
 * saas_buf_init
 *		An empty buffer; no allocation until the first append.
 */
void
saas_buf_init(SaasBuf *buf)
{
	buf->data = NULL;
	buf->len = 0;
	buf->cap = 0;
	buf->failed = false;
}

/*
 * saas_buf_append
 *		Append n bytes, keeping the content NUL-terminated.  On allocation
 *		failure the buffer keeps what it had and is marked failed, so callers
 *		can check once at the end.
 */
bool
saas_buf_append(SaasBuf *buf, const char *bytes, size_t n)
{
	if (buf->failed)
		return false;
	if (buf->len + n + 1 > buf->cap)
	{
		size_t		cap = buf->cap ? buf->cap : 256;
		char	   *grown;

		while (cap < buf->len + n + 1)
			cap *= 2;
		grown = realloc(buf->data, cap);
		if (grown == NULL)
		{
			buf->failed = true;
			return false;
		}
		buf->data = grown;
		buf->cap = cap;
	}
	memcpy(buf->data + buf->len, bytes, n);
	buf->len += n;
	buf->data[buf->len] = '\0';
	return true;
}

/*
 * saas_buf_puts
 *		Append a C string.
 */
bool
saas_buf_puts(SaasBuf *buf, const char *str)
{
	return saas_buf_append(buf, str, strlen(str));
}

/*
 * saas_buf_free
 *		Release the buffer's memory and leave it empty.
 */
void
saas_buf_free(SaasBuf *buf)
{
	free(buf->data);
	saas_buf_init(buf);
}

/*
 * utf8_seq_len
 *		Length of the well-formed UTF-8 sequence at s (n bytes available),
 *		or 0 when it is not one.  Overlong forms, surrogates and code points
 *		above U+10FFFF are not well-formed (RFC 3629), and PostgreSQL would
 *		refuse them in a text parameter.
 */
static size_t
utf8_seq_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	unsigned char lo = 0x80,
				hi = 0xbf;
	size_t		len,
				i;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
	{
		len = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	}
	else if (c >= 0xf0 && c <= 0xf4)
	{
		len = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	}
	else
		return 0;
	if (n < len)
		return 0;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

/*
 * saas_utf8_valid
 *		True when the n bytes are well-formed UTF-8 without NUL, i.e. what a
 *		PostgreSQL text value in a UTF8 database can hold.
 */
bool
saas_utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *) s;
	size_t		i = 0;

	while (i < n)
	{
		size_t		len;

		if (p[i] == 0)
			return false;
		len = utf8_seq_len(p + i, n - i);
		if (len == 0)
			return false;
		i += len;
	}
	return true;
}

/*
 * saas_json_string
 *		Append s as a quoted JSON string.  Bytes that are not well-formed
 *		UTF-8 become U+FFFD: header values are octets on the wire, JSON text
 *		is Unicode, and a lossy but valid string is better than a request
 *		the database cannot accept.
 */
void
saas_json_string(SaasBuf *buf, const char *s)
{
	const unsigned char *p = (const unsigned char *) s;
	size_t		n = strlen(s);
	size_t		i = 0;

	saas_buf_append(buf, "\"", 1);
	while (i < n)
	{
		unsigned char c = p[i];
		size_t		len;
		char		esc[8];

		if (c == '"' || c == '\\')
		{
			esc[0] = '\\';
			esc[1] = (char) c;
			saas_buf_append(buf, esc, 2);
			i++;
			continue;
		}
		if (c < 0x20 || c == 0x7f)
		{
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			saas_buf_append(buf, esc, 6);
			i++;
			continue;
		}
		len = utf8_seq_len(p + i, n - i);
		if (len == 0)
		{
			saas_buf_append(buf, "\\ufffd", 6);
			i++;
			continue;
		}
		saas_buf_append(buf, s + i, len);
		i += len;
	}
	saas_buf_append(buf, "\"", 1);
}

/* A cursor over the text being parsed. */
typedef struct JsonCursor
{
	const char *p;
} JsonCursor;

/*
 * json_skip_ws
 *		Skip JSON whitespace.
 */
static void
json_skip_ws(JsonCursor *cur)
{
	while (*cur->p == ' ' || *cur->p == '\t' || *cur->p == '\n' || *cur->p == '\r')
		cur->p++;
}

/*
 * json_hex4
 *		Read four hex digits at s; -1 if they are not.
 */
static long
json_hex4(const char *s)
{
	long		v = 0;
	int			i;

	for (i = 0; i < 4; i++)
	{
		char		c = s[i];

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

/*
 * json_put_utf8
 *		Encode code point cp as UTF-8 at out; returns the bytes written.
 */
static size_t
json_put_utf8(char *out, long cp)
{
	if (cp < 0x80)
	{
		out[0] = (char) cp;
		return 1;
	}
	if (cp < 0x800)
	{
		out[0] = (char) (0xc0 | (cp >> 6));
		out[1] = (char) (0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000)
	{
		out[0] = (char) (0xe0 | (cp >> 12));
		out[1] = (char) (0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char) (0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char) (0xf0 | (cp >> 18));
	out[1] = (char) (0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char) (0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char) (0x80 | (cp & 0x3f));
	return 4;
}

/*
 * json_parse_string
 *		Decode the string at the cursor (which is on its opening quote) into
 *		a malloc'd C string.  NULL when malformed, including \u0000, which
 *		no C string can carry.  The decoded form is never longer than the
 *		source, which sizes the allocation.
 */
static char *
json_parse_string(JsonCursor *cur)
{
	const char *s = cur->p + 1;
	const char *end = s;
	char	   *out,
			   *o;

	while (*end != '"')
	{
		if (*end == '\0')
			return NULL;
		if (*end == '\\' && end[1] != '\0')
			end++;
		end++;
	}
	out = malloc((size_t) (end - s) + 1);
	if (out == NULL)
		return NULL;
	o = out;
	while (s < end)
	{
		long		cp;

		if ((unsigned char) *s < 0x20)
			goto bad;
		if (*s != '\\')
		{
			*o++ = *s++;
			continue;
		}
		s++;
		switch (*s++)
		{
			case '"':
				*o++ = '"';
				break;
			case '\\':
				*o++ = '\\';
				break;
			case '/':
				*o++ = '/';
				break;
			case 'b':
				*o++ = '\b';
				break;
			case 'f':
				*o++ = '\f';
				break;
			case 'n':
				*o++ = '\n';
				break;
			case 'r':
				*o++ = '\r';
				break;
			case 't':
				*o++ = '\t';
				break;
			case 'u':
				if (end - s < 4 || (cp = json_hex4(s)) <= 0)
					goto bad;
				s += 4;
				if (cp >= 0xd800 && cp <= 0xdbff)
				{
					long		lo;

					if (end - s < 6 || s[0] != '\\' || s[1] != 'u' ||
						(lo = json_hex4(s + 2)) < 0xdc00 || lo > 0xdfff)
						goto bad;
					s += 6;
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				}
				else if (cp >= 0xdc00 && cp <= 0xdfff)
					goto bad;
				o += json_put_utf8(o, cp);
				break;
			default:
				goto bad;
		}
	}
	*o = '\0';
	cur->p = end + 1;
	return out;

bad:
	free(out);
	return NULL;
}

/*
 * saas_json_flat_object
 *		Walk a JSON object whose values are scalars, calling fn(key, value)
 *		for each member.  Strings are decoded; numbers and true/false are
 *		passed as their text; null members are skipped.  Nested objects or
 *		arrays, or anything malformed, make the whole call fail: response
 *		headers are a flat map by contract, and a half-read map would send
 *		half the headers.
 */
bool
saas_json_flat_object(const char *json, SaasJsonPairFn fn, void *arg)
{
	JsonCursor	cur = {json};

	json_skip_ws(&cur);
	if (*cur.p++ != '{')
		return false;
	json_skip_ws(&cur);
	if (*cur.p == '}')
	{
		cur.p++;
		json_skip_ws(&cur);
		return *cur.p == '\0';
	}
	for (;;)
	{
		char	   *key;
		char	   *value = NULL;
		bool		ok;

		json_skip_ws(&cur);
		if (*cur.p != '"' || (key = json_parse_string(&cur)) == NULL)
			return false;
		json_skip_ws(&cur);
		if (*cur.p++ != ':')
		{
			free(key);
			return false;
		}
		json_skip_ws(&cur);
		if (*cur.p == '"')
		{
			value = json_parse_string(&cur);
			ok = value != NULL;
		}
		else
		{
			const char *start = cur.p;
			size_t		n;

			while ((*cur.p >= '0' && *cur.p <= '9') || (*cur.p >= 'a' && *cur.p <= 'z') ||
				   *cur.p == '-' || *cur.p == '+' || *cur.p == '.' || *cur.p == 'E')
				cur.p++;
			n = (size_t) (cur.p - start);
			ok = n > 0;
			if (ok && !(n == 4 && memcmp(start, "null", 4) == 0))
			{
				value = strndup(start, n);
				ok = value != NULL;
			}
		}
		if (ok && value != NULL)
			ok = fn(arg, key, value);
		free(key);
		free(value);
		if (!ok)
			return false;
		json_skip_ws(&cur);
		if (*cur.p == ',')
		{
			cur.p++;
			continue;
		}
		if (*cur.p++ != '}')
			return false;
		json_skip_ws(&cur);
		return *cur.p == '\0';
	}
}
