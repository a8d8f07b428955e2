/*-------------------------------------------------------------------------
 *
 * fuzz_relay_request.c
 *	  libFuzzer target: what saas-http decides about a request before any
 *	  database call.
 *
 * The input is split at newlines into the fields of a request: method,
 * target, Content-Type, X-Request-Id, a Transfer-Encoding list, header
 * fields as "name:value" lines, and after an empty line the body.  Each
 * goes through the relay's own checks (checks.c, request_id.c), the
 * request headers become the JSON object saas.http takes (headers.c, whose
 * static helpers are reached by including the file), and an error answer
 * is written with the chosen request id (http_errors.c).  The oracles:
 * jansson must parse every JSON text the relay writes, decoding each
 * header back to its value when that value is valid UTF-8; the chosen
 * request id is always sane; the body's UTF-8 verdict agrees with
 * jansson's (which also refuses NUL-free invalid UTF-8).
 *
 *-------------------------------------------------------------------------
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/* the statics of these two files are part of what is fuzzed */
#include "checks.c"
#include "headers.c"

#include "http_errors.h"
#include "request_id.h"

#define FUZZ_MAX_HEADERS 64

/* fuzz_line: the next newline-terminated field of [*p, end), NUL-terminated in a copy */
static char *
fuzz_line(const char **p, const char *end)
{
	const char *nl = memchr(*p, '\n', (size_t) (end - *p));
	size_t		n = (nl ? nl : end) - *p;
	char	   *s = strndup(*p, n);

	if (s == NULL)
		abort();
	*p = nl ? nl + 1 : end;
	return s;
}

/* fuzz_must_parse: text must be one JSON value; returns it */
static json_t *
fuzz_must_parse(const char *what, const char *text, size_t len)
{
	json_error_t jerr;
	json_t	   *v = json_loadb(text, len, 0, &jerr);

	if (v == NULL)
	{
		fprintf(stderr, "%s is not JSON (%s): %.*s\n", what, jerr.text, (int) len, text);
		abort();
	}
	return v;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *) data;
	const char *end = p + size;
	char	   *method = fuzz_line(&p, end);
	char	   *target = fuzz_line(&p, end);
	char	   *ctype = fuzz_line(&p, end);
	char	   *client_rid = fuzz_line(&p, end);
	char	   *codings = fuzz_line(&p, end);
	char	   *names[FUZZ_MAX_HEADERS];
	char	   *values[FUZZ_MAX_HEADERS];
	int			nheaders = 0;
	char		rid[SAAS_REQUEST_ID_MAX + 1];
	SaasRelayError err;
	HdrList		hs = {0};
	SaasBuf		out;
	json_t	   *doc;
	char		raw[4096];
	size_t		body_len;

	(void) saas_check_method(method);
	(void) saas_check_target_size(target, &err);
	(void) saas_check_target_form(target);
	(void) saas_check_json(ctype);
	(void) check_codings(codings);
	(void) saas_error_for_sqlstate(codings);

	saas_request_id_choose(client_rid, rid);
	if (!saas_request_id_is_sane(rid))
		abort();
	if (saas_request_id_is_sane(client_rid) && strcmp(rid, client_rid) != 0)
		abort();

	/* header fields up to an empty line; the rest is the body */
	while (p < end && nheaders < FUZZ_MAX_HEADERS)
	{
		char	   *line = fuzz_line(&p, end);
		char	   *colon = strchr(line, ':');

		if (line[0] == '\0')
		{
			free(line);
			break;
		}
		if (colon != NULL)
			*colon = '\0';
		names[nheaders] = line;
		values[nheaders] = colon ? colon + 1 : NULL;
		(void) hdr_name_ok(line);
		(void) hdr_value_ok(values[nheaders] ? values[nheaders] : "");
		hdr_collect(&hs, MHD_HEADER_KIND, line, values[nheaders]);
		nheaders++;
	}

	/* the JSON object headers.c writes from what hdr_collect merged */
	saas_buf_init(&out);
	saas_buf_puts(&out, "{");
	for (int i = 0; i < hs.n; i++)
	{
		saas_json_string(&out, hs.items[i].name);
		saas_buf_puts(&out, ":");
		saas_json_string(&out, hs.items[i].value.data ? hs.items[i].value.data : "");
		saas_buf_puts(&out, ",");
	}
	saas_buf_puts(&out, "\"x-request-id\":");
	saas_json_string(&out, rid);
	saas_buf_puts(&out, "}");
	if (!out.failed)
	{
		doc = fuzz_must_parse("the request headers", out.data, out.len);
		for (int i = 0; i < hs.n; i++)
		{
			const char *v = hs.items[i].value.data ? hs.items[i].value.data : "";
			const char *got = json_string_value(json_object_get(doc, hs.items[i].name));

			if (saas_utf8_valid(v, strlen(v)) && saas_utf8_valid(hs.items[i].name, strlen(hs.items[i].name)) &&
				(got == NULL || strcmp(got, v) != 0))
			{
				fprintf(stderr, "header %s: %s became %s\n", hs.items[i].name, v, got ? got : "(none)");
				abort();
			}
		}
		json_decref(doc);
	}
	saas_buf_free(&out);
	for (int i = 0; i < hs.n; i++)
	{
		free(hs.items[i].name);
		saas_buf_free(&hs.items[i].value);
	}
	free(hs.items);

	/* the body: the relay's UTF-8 verdict is jansson's, NUL aside */
	{
		size_t		n = (size_t) (end - p);
		json_t	   *s = json_stringn(p, n);
		bool		ours = saas_utf8_valid(p, n);
		bool		theirs = s != NULL && memchr(p, '\0', n) == NULL;

		json_decref(s);
		if (ours != theirs)
		{
			fprintf(stderr, "UTF-8 verdicts differ: relay %d, jansson %d\n", ours, theirs);
			abort();
		}
	}

	/* an error answer (one per input, by its size), with this request id, has a JSON body */
	{
		SaasRelayError e = (SaasRelayError) (size % (SAAS_ERR_CLIENT_CONN_LIMIT + 1));
		size_t		n = saas_error_raw(e, rid, raw, sizeof(raw), &body_len);

		if (n == 0 || body_len > n)
			abort();
		json_decref(fuzz_must_parse("an error body", raw + n - body_len, body_len));
	}

	for (int i = 0; i < nheaders; i++)
		free(names[i]);
	free(method);
	free(target);
	free(ctype);
	free(client_rid);
	free(codings);
	return 0;
}
