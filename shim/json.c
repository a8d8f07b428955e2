/*-------------------------------------------------------------------------
 *
 * json.c
 *	  The little JSON the relay needs.
 *
 * The relay builds one JSON object (the request headers) and reads none:
 * the response headers come back as rows, which PostgreSQL's
 * jsonb_each_text takes out of saas.http's answer (pool.c).  Writing one
 * flat object of strings is too little to justify a JSON library and too
 * much to do with string pasting, hence this escaper, the buffer it writes
 * into, and the UTF-8 check the relay also applies to request bodies.
 * Everything else about JSON belongs to the extension.
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
