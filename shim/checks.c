/*-------------------------------------------------------------------------
 *
 * checks.c
 *	  What the relay checks in a request's head before it goes on: target,
 *	  header fields, method, body framing and type.
 *
 * Each check answers with the API's error body (http_errors.c), so a client
 * learns what was wrong whatever it sent: 414 for a target longer than
 * SAAS_TARGET_MAX, 431 for too many query parameters or header fields, 400
 * or 501 for a Transfer-Encoding the relay cannot read, and so on.  The
 * target's size is checked as soon as the request line is in, the rest
 * once the headers are (relay.c).
 *
 * libmicrohttpd 0.9.75 gets two things wrong before the relay can look, and
 * saas_check_shield steps around both in the URI callback:
 *
 *	- It parses the query into a record per '&' in its per-connection
 *	  memory pool, right after the URI callback.  A query with a
 *	  thousand parameters fills the pool, and the failure path queues a 431
 *	  and then overwrites the connection's state, so nothing is ever sent.
 *	  The relay forwards the raw target and never reads those records, so it
 *	  ends the query for the parser: the URI callback's argument points into
 *	  libmicrohttpd's own (writable) read buffer, and the byte after '?' is
 *	  set to NUL.  libmicrohttpd then cuts the target at '?' itself, as it
 *	  always does, and finds no parameter.  The relay's copy, taken before,
 *	  is untouched.
 *
 *	- It splits the Cookie header into a record per cookie, with the same
 *	  failure.  It looks the header up by name, taking the first match, so
 *	  an empty decoy "Cookie" added from the URI callback (before any real
 *	  header exists) is what it parses.  The decoy is told apart by the
 *	  address of its name (libmicrohttpd keeps the pointer it is given) and
 *	  skipped wherever the relay reads headers.
 *
 * Later libmicrohttpd releases handle both failures themselves; the shield
 * is harmless there.  test/relay/test_limits.py checks both cases.  The
 * decoy costs about 80 bytes of the pool when the head is parsed, so a head
 * that fills the pool to within that is still closed in silence: a narrow
 * band far beyond the relay's limits (docs/relay.md), against every Cookie
 * header of a thousand cookies without it.
 *
 *-------------------------------------------------------------------------
 */
#include <string.h>
#include <strings.h>

#include "checks.h"
#include "common.h"
#include "json.h"

/* The decoy's name: compared by address, so it must be this array. */
static const char decoy_cookie[] = "Cookie";

/*
 * saas_check_shield
 *		From the URI callback, after the relay copied the target: keep
 *		libmicrohttpd from parsing query parameters and cookies (see the
 *		file header for why).
 */
void
saas_check_shield(struct MHD_Connection *conn, const char *uri)
{
	char	   *q = uri != NULL ? strchr(uri, '?') : NULL;

	if (q != NULL && q[1] != '\0')
		q[1] = '\0';
	(void) MHD_set_connection_value(conn, MHD_HEADER_KIND, decoy_cookie, "");
}

/*
 * saas_check_is_decoy
 *		Is this header the decoy saas_check_shield added?
 */
bool
saas_check_is_decoy(const char *key)
{
	return key == decoy_cookie;
}

/*
 * saas_check_target_size
 *		A target of at most SAAS_TARGET_MAX bytes (else 414) and at most
 *		SAAS_QUERY_PARAMS_MAX '&'-separated query fields (else 431).  The
 *		router parses the query; the limit bounds what a client can make it
 *		do.  Checked as soon as the request line is in (relay.c).
 */
bool
saas_check_target_size(const char *target, SaasRelayError *err)
{
	const char *q;
	int			params = 1;

	if (strlen(target) > SAAS_TARGET_MAX)
	{
		*err = SAAS_ERR_TARGET_TOO_LONG;
		return false;
	}
	q = strchr(target, '?');
	if (q != NULL && q[1] != '\0')
	{
		for (q++; *q != '\0'; q++)
			params += *q == '&';
		if (params > SAAS_QUERY_PARAMS_MAX)
		{
			*err = SAAS_ERR_TOO_MANY_PARAMS;
			return false;
		}
	}
	return true;
}

/*
 * saas_check_target_form
 *		A target the relay will forward: origin-form ("/..."), printable
 *		ASCII only: RFC 3986 has no raw spaces, controls or 8-bit bytes; a
 *		non-ASCII character arrives percent-encoded (else 400).
 */
bool
saas_check_target_form(const char *target)
{
	size_t		i;

	if (target[0] != '/')
		return false;
	for (i = 0; target[i] != '\0'; i++)
		if ((unsigned char) target[i] <= 0x20 || (unsigned char) target[i] >= 0x7f)
			return false;
	return true;
}

/* Header fields counted for the limits. */
typedef struct HeaderTally
{
	int			fields;
	size_t		bytes;
} HeaderTally;

/*
 * check_tally_header
 *		Header iterator filling a HeaderTally; the decoy does not count.
 */
static enum MHD_Result
check_tally_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	HeaderTally *t = cls;

	(void) kind;
	if (key == NULL || saas_check_is_decoy(key))
		return MHD_YES;
	t->fields++;
	t->bytes += strlen(key) + (value ? strlen(value) : 0) + 4;	/* ": " CRLF */
	return MHD_YES;
}

/*
 * saas_check_headers
 *		At most SAAS_HEADER_FIELDS_MAX header fields and SAAS_HEADER_BYTES_MAX
 *		bytes of them (else 431): everything the relay forwards must stay
 *		cheap to copy, escape and send to the database.
 */
bool
saas_check_headers(struct MHD_Connection *conn, SaasRelayError *err)
{
	HeaderTally t = {0, 0};

	MHD_get_connection_values(conn, MHD_HEADER_KIND, check_tally_header, &t);
	*err = SAAS_ERR_HEADERS_TOO_LARGE;
	return t.fields <= SAAS_HEADER_FIELDS_MAX && t.bytes <= SAAS_HEADER_BYTES_MAX;
}

/*
 * saas_check_method
 *		Methods the API may use.  Others (TRACE, CONNECT, made-up tokens)
 *		never reach the database.
 */
bool
saas_check_method(const char *method)
{
	static const char *const ok[] = {
		"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", NULL
	};
	int			i;

	for (i = 0; ok[i] != NULL; i++)
		if (strcmp(method, ok[i]) == 0)
			return true;
	return false;
}

/* The headers that say where a body ends, counted and joined. */
typedef struct Framing
{
	int			content_length;
	int			transfer_encoding;
	SaasBuf		codings;		/* every Transfer-Encoding value, ", "-joined */
	const char *first_coding;	/* the first value, as libmicrohttpd reads it */
} Framing;

/*
 * check_framing_header
 *		Header iterator filling a Framing.
 */
static enum MHD_Result
check_framing_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	Framing    *f = cls;

	(void) kind;
	if (key == NULL)
		return MHD_YES;
	if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0)
		f->content_length++;
	if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0)
	{
		if (f->transfer_encoding++ == 0)
			f->first_coding = value ? value : "";
		else
			saas_buf_puts(&f->codings, ",");
		saas_buf_puts(&f->codings, value ? value : "");
	}
	return MHD_YES;
}

/*
 * check_codings
 *		Why a Transfer-Encoding other than plain "chunked" is refused, by
 *		RFC 9112: when chunked is not the final coding, or is applied twice,
 *		the body's length cannot be known (6.3, 7: 400); when chunked is
 *		final but something else comes first ("gzip, chunked"), the relay
 *		does not implement that coding (6.1: 501).  Names are compared
 *		without regard to case (7), list elements are trimmed of spaces and
 *		tabs, empty ones skipped, parameters after ';' ignored.
 */
static SaasRelayError
check_codings(const char *list)
{
	const char *p = list;
	int			n = 0,
				chunked = 0;
	bool		last_chunked = false;

	while (*p != '\0')
	{
		const char *start,
				   *end;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '\0')
			break;
		start = p;
		while (*p != '\0' && *p != ',' && *p != ';')
			p++;
		end = p;
		while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		while (*p != '\0' && *p != ',')
			p++;				/* parameters */
		n++;
		last_chunked = end - start == 7 && strncasecmp(start, "chunked", 7) == 0;
		chunked += last_chunked;
	}
	if (n == 0 || !last_chunked || chunked > 1)
		return SAAS_ERR_BAD_CODING;
	return SAAS_ERR_CODING_UNSUPPORTED;
}

/*
 * saas_check_framing
 *		One way to tell where the body ends.  At most one Content-Length,
 *		and not together with Transfer-Encoding: disagreeing lengths are how
 *		request smuggling starts (RFC 9112 6.3); refusing them costs nothing.
 *		A Transfer-Encoding must be exactly one "chunked" (any case), the
 *		only coding libmicrohttpd decodes; it would read the body of any
 *		other until the client closed, so the request would never be
 *		answered.  HTTP/1.0 has no Transfer-Encoding (RFC 9112 6.1: faulty
 *		framing).
 */
bool
saas_check_framing(struct MHD_Connection *conn, const char *version, SaasRelayError *err)
{
	Framing		f = {0, 0, {0}, NULL};
	bool		ok = true;

	saas_buf_init(&f.codings);
	MHD_get_connection_values(conn, MHD_HEADER_KIND, check_framing_header, &f);
	*err = SAAS_ERR_BAD_FRAMING;
	if (f.content_length > 1 || (f.content_length > 0 && f.transfer_encoding > 0))
		ok = false;
	else if (f.transfer_encoding > 0 && strcmp(version, MHD_HTTP_VERSION_1_0) == 0)
	{
		*err = SAAS_ERR_BAD_CODING;
		ok = false;
	}
	else if (f.transfer_encoding == 1 && strcasecmp(f.first_coding, "chunked") == 0)
		ok = true;
	else if (f.transfer_encoding > 0)
	{
		*err = f.codings.failed || f.codings.data == NULL ? SAAS_ERR_BAD_CODING :
			check_codings(f.codings.data);
		ok = false;
	}
	saas_buf_free(&f.codings);
	return ok;
}

/*
 * saas_check_json
 *		Is this Content-Type JSON?  application/json, any case, with or
 *		without parameters (charset): the same rule as the router's, so a
 *		body gets the same 415 whichever of the two looks first.
 */
bool
saas_check_json(const char *ctype)
{
	if (ctype == NULL)
		return false;
	while (*ctype == ' ' || *ctype == '\t')
		ctype++;
	return strncasecmp(ctype, "application/json", 16) == 0 &&
		(ctype[16] == '\0' || ctype[16] == ';' || ctype[16] == ' ' || ctype[16] == '\t');
}
