/*-------------------------------------------------------------------------
 *
 * headers.c
 *	  HTTP headers both ways: the request's as the JSON object saas.http
 *	  takes, and the response headers it returns (as rows, see pool.c).
 *
 * Inbound, names are lower-cased (HTTP names are case-insensitive; the
 * router can then look them up exactly), repeated headers are joined with
 * ", " (RFC 9110 5.3), and the relay's own x-client-addr and x-request-id
 * replace whatever the client sent under those names.  Outbound, only
 * what cannot break the response is copied: names must be tokens, values
 * must hold no CR, LF or other controls (response splitting), and the
 * headers that frame the message are left to libmicrohttpd.
 *
 *-------------------------------------------------------------------------
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "checks.h"
#include "headers.h"
#include "log.h"

/* One request header, merged over repetitions. */
typedef struct HdrItem
{
	char	   *name;			/* lower-cased */
	SaasBuf		value;
} HdrItem;

typedef struct HdrList
{
	HdrItem    *items;
	int			n;
	int			cap;
	bool		failed;
} HdrList;

/*
 * hdr_collect
 *		Header iterator: lower-case the name and merge repeats with ", "
 *		(RFC 9110 5.3).  The relay's own x-client-addr and x-request-id
 *		replace whatever the client sent.
 */
static enum MHD_Result
hdr_collect(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	HdrList *hs = cls;
	char	   *name;
	int			i;

	(void) kind;
	if (key == NULL || hs->failed || saas_check_is_decoy(key))
		return MHD_YES;
	if (strcasecmp(key, "x-client-addr") == 0 || strcasecmp(key, "x-request-id") == 0)
		return MHD_YES;
	name = strdup(key);
	if (name == NULL)
	{
		hs->failed = true;
		return MHD_YES;
	}
	for (i = 0; name[i] != '\0'; i++)
		name[i] = (char) tolower((unsigned char) name[i]);
	for (i = 0; i < hs->n; i++)
		if (strcmp(hs->items[i].name, name) == 0)
			break;
	if (i == hs->n)
	{
		if (hs->n == hs->cap)
		{
			int			cap = hs->cap ? hs->cap * 2 : 16;
			HdrItem *grown = realloc(hs->items, (size_t) cap * sizeof(HdrItem));

			if (grown == NULL)
			{
				free(name);
				hs->failed = true;
				return MHD_YES;
			}
			hs->items = grown;
			hs->cap = cap;
		}
		hs->items[i].name = name;
		saas_buf_init(&hs->items[i].value);
		saas_buf_puts(&hs->items[i].value, "");
		hs->n++;
	}
	else
	{
		free(name);
		saas_buf_puts(&hs->items[i].value, ", ");
	}
	saas_buf_puts(&hs->items[i].value, value ? value : "");
	return MHD_YES;
}

/*
 * saas_headers_to_json
 *		The request headers as the JSON object saas.http expects, plus the
 *		relay's x-client-addr and x-request-id.  False on allocation failure.
 */
bool
saas_headers_to_json(struct MHD_Connection *conn, const char *client_addr,
					 const char *request_id, SaasBuf *out)
{
	HdrList		hs = {0};
	int			i;

	MHD_get_connection_values(conn, MHD_HEADER_KIND, hdr_collect, &hs);
	saas_buf_puts(out, "{");
	for (i = 0; i < hs.n; i++)
	{
		saas_json_string(out, hs.items[i].name);
		saas_buf_puts(out, ":");
		saas_json_string(out, hs.items[i].value.data ? hs.items[i].value.data : "");
		saas_buf_puts(out, ",");
		hs.failed |= hs.items[i].value.failed;
		free(hs.items[i].name);
		saas_buf_free(&hs.items[i].value);
	}
	free(hs.items);
	saas_buf_puts(out, "\"x-client-addr\":");
	saas_json_string(out, client_addr);
	saas_buf_puts(out, ",\"x-request-id\":");
	saas_json_string(out, request_id);
	saas_buf_puts(out, "}");
	return !hs.failed && !out->failed;
}

/*
 * hdr_name_ok
 *		An HTTP token (RFC 9110 5.6.2), so that a name from the database can
 *		not break the response's framing.
 */
static bool
hdr_name_ok(const char *name)
{
	const char *p;

	if (*name == '\0')
		return false;
	for (p = name; *p != '\0'; p++)
		if (!isalnum((unsigned char) *p) && strchr("!#$%&'*+-.^_`|~", *p) == NULL)
			return false;
	return true;
}

/*
 * hdr_value_ok
 *		No control characters but tab: above all no CR or LF, which would let
 *		a value inject headers (response splitting).
 */
static bool
hdr_value_ok(const char *value)
{
	const unsigned char *p;

	for (p = (const unsigned char *) value; *p != '\0'; p++)
		if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
			return false;
	return true;
}

/*
 * saas_header_to_response
 *		Copy one header of saas.http's answer to the HTTP response, and note
 *		in seen whether it was Content-Type or X-Request-Id.  Framing and
 *		connection headers belong to the HTTP layer, which computes them
 *		itself; invalid names or values are dropped and logged rather than
 *		sent.
 */
void
saas_header_to_response(struct MHD_Response *resp, const char *name, const char *value,
						const char *request_id, SaasRespHeaders *seen)
{
	static const char *const hop_by_hop[] = {
		"connection", "content-length", "transfer-encoding", "keep-alive",
		"upgrade", "te", "trailer", "date", NULL
	};
	int			i;

	for (i = 0; hop_by_hop[i] != NULL; i++)
		if (strcasecmp(name, hop_by_hop[i]) == 0)
			return;
	if (!hdr_name_ok(name) || !hdr_value_ok(value) ||
		MHD_add_response_header(resp, name, value) != MHD_YES)
	{
		SaasLogLine line;

		saas_logline_begin(&line, "warn");
		saas_logline_str(&line, "msg", "response header from saas.http dropped");
		saas_logline_str(&line, "rid", request_id);
		saas_logline_str(&line, "header", name);
		saas_logline_end(&line);
		return;
	}
	if (strcasecmp(name, "content-type") == 0)
		seen->has_content_type = true;
	if (strcasecmp(name, "x-request-id") == 0)
		seen->has_request_id = true;
}
