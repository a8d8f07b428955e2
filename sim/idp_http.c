/*-------------------------------------------------------------------------
 *
 * idp_http.c
 *	  HTTP pieces of the identity-provider: OAuth error answers,
 *	  application/x-www-form-urlencoded bodies, query parameters (each at
 *	  most once, RFC 6749 §3.1), percent-encoding and HTTP Basic client
 *	  credentials (RFC 6749 §2.3.1).
 *
 *-------------------------------------------------------------------------
 */
#define _GNU_SOURCE
#include "idp.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <microhttpd.h>

/* idp_error: the RFC 6749 §5.2 error shape {"error", "error_description"} */
void
idp_error(SimResponse *resp, int status, const char *error, const char *fmt,...)
{
	SimBuf		msg;
	SimJw		jw;
	va_list		ap;

	sbuf_init(&msg);
	va_start(ap, fmt);
	sbuf_vprintf(&msg, fmt, ap);
	va_end(ap);
	resp->status = status;
	sbuf_reset(&resp->body);
	jw_init(&jw, &resp->body);
	jw_obj_begin(&jw);
	jw_kstr(&jw, "error", error);
	jw_kstr(&jw, "error_description", msg.data ? msg.data : "");
	jw_obj_end(&jw);
	sbuf_free(&msg);
}

/* hexval: a hex digit's value, or -1 */
static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * idp_form_decode: percent-decode s[0..len) ('+' is a space); NULL when a
 * % is not followed by two hex digits or the result holds a NUL byte.
 */
char *
idp_form_decode(const char *s, size_t len)
{
	char	   *out = sim_malloc(len + 1);
	size_t		o = 0;

	for (size_t i = 0; i < len; i++)
	{
		if (s[i] == '+')
			out[o++] = ' ';
		else if (s[i] == '%')
		{
			int			hi = i + 2 < len ? hexval(s[i + 1]) : -1;
			int			lo = i + 2 < len ? hexval(s[i + 2]) : -1;

			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
			{
				free(out);
				return NULL;
			}
			out[o++] = (char) (hi * 16 + lo);
			i += 2;
		}
		else if (s[i] == '\0')
		{
			free(out);
			return NULL;
		}
		else
			out[o++] = s[i];
	}
	out[o] = '\0';
	return out;
}

/* idp_form_free: the pairs of a parsed form */
void
idp_form_free(IdpForm *f)
{
	for (int i = 0; i < f->n; i++)
	{
		free(f->keys[i]);
		free(f->values[i]);
	}
	f->n = 0;
}

/* idp_form_get: the value of name, or NULL */
const char *
idp_form_get(const IdpForm *f, const char *name)
{
	for (int i = 0; i < f->n; i++)
		if (strcmp(f->keys[i], name) == 0)
			return f->values[i];
	return NULL;
}

/*
 * idp_form_parse
 *		An application/x-www-form-urlencoded body into f.  False, with the
 *		reason in err, on bad percent-encoding, too many parameters or a
 *		parameter given twice.
 */
bool
idp_form_parse(const char *body, size_t len, IdpForm *f, char *err, size_t errlen)
{
	size_t		i = 0;

	f->n = 0;
	while (i < len)
	{
		const char *amp = memchr(body + i, '&', len - i);
		size_t		end = amp ? (size_t) (amp - body) : len;
		const char *eq = memchr(body + i, '=', end - i);
		size_t		kend = eq ? (size_t) (eq - body) : end;
		char	   *k,
				   *v;

		if (end == i)
		{
			i = end + 1;		/* an empty pair: "a=1&&b=2" */
			continue;
		}
		k = idp_form_decode(body + i, kend - i);
		v = eq ? idp_form_decode(eq + 1, end - kend - 1) : sim_strdup("");
		if (k == NULL || v == NULL)
		{
			free(k);
			free(v);
			snprintf(err, errlen, "the body is not valid application/x-www-form-urlencoded");
			idp_form_free(f);
			return false;
		}
		if (idp_form_get(f, k) != NULL || f->n == IDP_FORM_MAX)
		{
			snprintf(err, errlen, f->n == IDP_FORM_MAX ? "too many parameters" :
					 "the parameter \"%.64s\" is given more than once", k);
			free(k);
			free(v);
			idp_form_free(f);
			return false;
		}
		f->keys[f->n] = k;
		f->values[f->n] = v;
		f->n++;
		i = end + 1;
	}
	return true;
}

typedef struct QueryCount
{
	const char *dup;			/* the first name seen twice */
	const char *seen[IDP_FORM_MAX];
	int			n;
} QueryCount;

static enum MHD_Result
query_count(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	QueryCount *qc = cls;

	(void) kind;
	(void) value;
	if (key == NULL || qc->dup)
		return MHD_YES;
	for (int i = 0; i < qc->n; i++)
		if (strcmp(qc->seen[i], key) == 0)
		{
			qc->dup = key;
			return MHD_YES;
		}
	if (qc->n < IDP_FORM_MAX)
		qc->seen[qc->n++] = key;
	else
		qc->dup = key;
	return MHD_YES;
}

/* idp_query_duplicate: the name of a query parameter given twice (or one too many), or NULL */
const char *
idp_query_duplicate(const SimRequest *req)
{
	QueryCount	qc;

	memset(&qc, 0, sizeof(qc));
	if (req->conn == NULL)
		return NULL;
	MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, query_count, &qc);
	return qc.dup;
}

/* idp_header: a request header, or NULL */
const char *
idp_header(const SimRequest *req, const char *name)
{
	if (req->conn == NULL)
		return NULL;
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

/* idp_url_encode: percent-encode s into b (RFC 3986 unreserved characters stay) */
void
idp_url_encode(SimBuf *b, const char *s)
{
	for (const unsigned char *p = (const unsigned char *) s; *p; p++)
	{
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
			*p == '-' || *p == '.' || *p == '_' || *p == '~')
			sbuf_putc(b, (char) *p);
		else
			sbuf_printf(b, "%%%02X", *p);
	}
}

/*
 * idp_basic_credentials
 *		"Basic base64(urlencode(id):urlencode(secret))" into *id and *secret
 *		(malloc'd).  Returns 0 when the header is not Basic, 1 when decoded,
 *		-1 when it is Basic but malformed.
 */
int
idp_basic_credentials(const char *header, char **id, char **secret)
{
	unsigned char *raw;
	size_t		rawlen;
	const char *colon;

	*id = *secret = NULL;
	if (header == NULL || strncasecmp(header, "Basic ", 6) != 0)
		return 0;
	header += 6;
	while (*header == ' ')
		header++;
	raw = sim_base64_decode(header, &rawlen);
	if (raw == NULL)
		return -1;
	colon = memchr(raw, ':', rawlen);
	if (colon == NULL)
	{
		free(raw);
		return -1;
	}
	*id = idp_form_decode((const char *) raw, (size_t) (colon - (const char *) raw));
	*secret = idp_form_decode(colon + 1, rawlen - (size_t) (colon + 1 - (const char *) raw));
	free(raw);
	if (*id == NULL || *secret == NULL || (*id)[0] == '\0')
	{
		free(*id);
		free(*secret);
		*id = *secret = NULL;
		return -1;
	}
	return 1;
}
