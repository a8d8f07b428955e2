/*-------------------------------------------------------------------------
 *
 * base64url.c
 *	  Strict unpadded base64url (RFC 4648 section 5), as JWS and the API's
 *	  page cursors use it.
 *
 * Hand-written because PostgreSQL's base64 is the other alphabet with
 * padding, and because strictness is the point: no padding, no other
 * alphabet, no impossible length, no non-zero trailing bits, so every byte
 * string has exactly one encoding.  Only StringInfo is needed, so
 * fuzz/fuzz_base64url.c builds this file on its own.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/common.h"

static const char b64url_alphabet[] =
"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* saas_b64url_encode: unpadded base64url, appended to out. */
void
saas_b64url_encode(const unsigned char *in, int len, StringInfo out)
{
	int			i;

	for (i = 0; i + 2 < len; i += 3)
	{
		uint32		v = (in[i] << 16) | (in[i + 1] << 8) | in[i + 2];

		appendStringInfoChar(out, b64url_alphabet[(v >> 18) & 63]);
		appendStringInfoChar(out, b64url_alphabet[(v >> 12) & 63]);
		appendStringInfoChar(out, b64url_alphabet[(v >> 6) & 63]);
		appendStringInfoChar(out, b64url_alphabet[v & 63]);
	}
	if (len - i == 1)
	{
		uint32		v = in[i] << 16;

		appendStringInfoChar(out, b64url_alphabet[(v >> 18) & 63]);
		appendStringInfoChar(out, b64url_alphabet[(v >> 12) & 63]);
	}
	else if (len - i == 2)
	{
		uint32		v = (in[i] << 16) | (in[i + 1] << 8);

		appendStringInfoChar(out, b64url_alphabet[(v >> 18) & 63]);
		appendStringInfoChar(out, b64url_alphabet[(v >> 12) & 63]);
		appendStringInfoChar(out, b64url_alphabet[(v >> 6) & 63]);
	}
}

/* base64url digit values; -1 for every byte outside the alphabet */
static int8 b64url_table[256];
static bool b64url_table_ready = false;

/* b64url_init_table: the decoding table, built once per backend. */
static void
b64url_init_table(void)
{
	int			i;

	memset(b64url_table, -1, sizeof(b64url_table));
	for (i = 0; i < 64; i++)
		b64url_table[(unsigned char) b64url_alphabet[i]] = (int8) i;
	b64url_table_ready = true;
}

/* b64url_value: the digit value of c, -1 outside the alphabet. */
static inline int
b64url_value(unsigned char c)
{
	return b64url_table[c];
}

/*
 * saas_b64url_decode: strict unpadded base64url. Rejects padding, other
 * alphabets, impossible lengths and non-zero trailing bits, so that every
 * token has exactly one encoding.
 */
bool
saas_b64url_decode(const char *in, int len, StringInfo out)
{
	uint32		acc = 0;
	int			bits = 0;
	int			i;
	char	   *dst;

	if (len % 4 == 1)
		return false;
	if (!b64url_table_ready)
		b64url_init_table();
	enlargeStringInfo(out, len * 3 / 4 + 1);
	dst = out->data + out->len;
	for (i = 0; i < len; i++)
	{
		int			v = b64url_value((unsigned char) in[i]);

		if (v < 0)
			return false;
		acc = (acc << 6) | v;
		bits += 6;
		if (bits >= 8)
		{
			bits -= 8;
			*dst++ = (char) ((acc >> bits) & 0xFF);
		}
	}
	out->len = dst - out->data;
	out->data[out->len] = '\0';
	/* leftover bits must be zero */
	if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
		return false;
	return true;
}
