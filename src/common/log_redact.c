/*-------------------------------------------------------------------------
 *
 * log_redact.c
 *	  Secrets never leave a backend in a message: tenant-context tokens and
 *	  password hashes are cut out of every message before it is sent to the
 *	  client or written to the server log.
 *
 * On Citus the context travels to the worker nodes as the text of a
 * SET LOCAL "saas.context" = '<token>' command (citus_env.c), and Citus
 * echoes the commands it sends when citus.log_remote_commands is on, a
 * setting every user may change: without this hook a session could read
 * tokens that the extension minted for its own work (trusted contexts) in
 * its NOTICEs, and the server log would keep them. Errors raised on a
 * worker node while it runs such a command would also log the command as
 * the failing STATEMENT. The secret part of an API key (sk_<org>_<id>_
 * <secret>, src/auth/api_keys.c) is cut out too: a key passed to
 * saas.authenticate_api_key() would otherwise be logged with a failing
 * statement.
 *
 * Messages for the server log only (log_statement's "statement:" lines,
 * the "parameters:" detail of a prepared statement, log_duration's) also
 * lose the request secrets they may quote: refresh, invitation and reset
 * tokens (rt_, inv_, rst_), access tokens (JWTs), and the values of the
 * JSON members password, current_password and client_secret. A failing
 * statement that holds one is not logged. Messages sent to the client are
 * left as they are: the client sent them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "tcop/tcopprot.h"
#include "utils/elog.h"

#include "common/common.h"

static emit_log_hook_type prev_emit_log_hook = NULL;

/* What follows a marker up to the closing quote is a secret. */
static const char *const quoted_markers[] = {
	"\"saas.context\" = '",
	"saas.context = '",
	"saas.context TO '",
};

/*
 * api_key_secret: the secret part of the first API key in text at or after
 * p ("sk_", 32 hex digits, "_", 32 hex digits, "_", then the secret), or
 * NULL.
 */
static const char *
api_key_secret(const char *p)
{
	const char *k;

	for (k = strstr(p, "sk_"); k != NULL; k = strstr(k + 1, "sk_"))
	{
		const char *q = k + 3;
		int			part,
					i;
		bool		ok = true;

		for (part = 0; part < 2 && ok; part++)
		{
			for (i = 0; i < 32 && ok; i++)
				ok = saas_hex_value(q[i]) >= 0;
			ok = ok && q[32] == '_';
			q += 33;
		}
		if (ok)
			return q;
	}
	return NULL;
}

/*
 * redact_text: TEXT with each secret replaced by [redacted], or NULL when
 * there is none. Quoted markers end at the next quote; a password hash
 * ($argon2...) ends at a quote, a blank or the end.
 */
static char *
redact_text(const char *text)
{
	StringInfoData out;
	const char *p = text;
	bool		changed = false;

	if (text == NULL || (strstr(text, "saas.context") == NULL && strstr(text, "$argon2") == NULL &&
						 api_key_secret(text) == NULL))
		return NULL;
	initStringInfo(&out);
	while (*p)
	{
		const char *hit = NULL;
		const char *value = NULL;
		bool		quoted = false;
		size_t		i;

		for (i = 0; i < lengthof(quoted_markers); i++)
		{
			const char *m = strstr(p, quoted_markers[i]);

			if (m != NULL && (hit == NULL || m < hit))
			{
				hit = m;
				value = m + strlen(quoted_markers[i]);
				quoted = true;
			}
		}
		{
			const char *h = strstr(p, "$argon2");

			if (h != NULL && (hit == NULL || h < hit))
			{
				hit = h;
				value = h;
				quoted = false;
			}
		}
		{
			const char *k = api_key_secret(p);

			if (k != NULL && (hit == NULL || k < hit))
			{
				hit = k;
				value = k;
				quoted = false;
			}
		}
		if (hit == NULL)
		{
			appendStringInfoString(&out, p);
			break;
		}
		appendBinaryStringInfo(&out, p, value - p);
		appendStringInfoString(&out, "[redacted]");
		p = value;
		if (quoted)
			while (*p && *p != '\'')
				p++;
		else
			while (*p && *p != '\'' && *p != ' ' && *p != '\n' && *p != '"')
				p++;
		changed = true;
	}
	if (!changed)
	{
		pfree(out.data);
		return NULL;
	}
	return out.data;
}

static void
redact_field(char **field)
{
	char	   *r = redact_text(*field);

	if (r != NULL)
		*field = r;
}

/* JSON members whose string value is a secret. */
static const char *const secret_members[] = {
	"password", "current_password", "client_secret",
};

/* Prefixes of the API's opaque tokens (refresh, invitation, reset). */
static const char *const token_prefixes[] = {"rt_", "inv_", "rst_"};

#define IS_B64URL(c) (((c) >= 'A' && (c) <= 'Z') || ((c) >= 'a' && (c) <= 'z') || \
					  ((c) >= '0' && (c) <= '9') || (c) == '-' || (c) == '_')

/* b64url_run: how many base64url characters start at p. */
static size_t
b64url_run(const char *p)
{
	size_t		n = 0;

	while (IS_B64URL(p[n]))
		n++;
	return n;
}

/*
 * secret_at: if a secret starts at p (text begins at start), the length of
 * what to keep before [redacted] in *keep and the length of the secret's
 * value in *len; else false.
 */
static bool
secret_at(const char *start, const char *p, size_t *keep, size_t *len)
{
	size_t		i;

	/* An opaque token: a prefix at a word start, then at least 40 characters. */
	if (p == start || !IS_B64URL(p[-1]))
	{
		for (i = 0; i < lengthof(token_prefixes); i++)
		{
			size_t		pl = strlen(token_prefixes[i]);

			if (strncmp(p, token_prefixes[i], pl) == 0 && b64url_run(p + pl) >= 40)
			{
				*keep = pl;
				*len = b64url_run(p + pl);
				return true;
			}
		}
		/* A JWT: eyJ<header>.<payload>.<signature> */
		if (strncmp(p, "eyJ", 3) == 0)
		{
			size_t		a = b64url_run(p);

			if (p[a] == '.' && b64url_run(p + a + 1) > 0 && p[a + 1 + b64url_run(p + a + 1)] == '.')
			{
				size_t		b = a + 1 + b64url_run(p + a + 1);

				*keep = 0;
				*len = b + 1 + b64url_run(p + b + 1);
				return true;
			}
		}
	}
	/* A secret member's value: "key": "value", or \"key\": \"value\" inside a string. */
	if (*p == '"')
	{
		for (i = 0; i < lengthof(secret_members); i++)
		{
			size_t		kl = strlen(secret_members[i]);
			int			escaped = (p > start && p[-1] == '\\') ? 1 : 0;
			const char *v;
			const char *e;

			if (strncmp(p + 1, secret_members[i], kl) != 0)
				continue;
			v = p + 1 + kl;
			/* the key's closing quote, escaped as its opening one is */
			if (escaped && v[0] == '\\' && v[1] == '"')
				v += 2;
			else if (!escaped && v[0] == '"')
				v++;
			else
				continue;
			while (*v == ' ' || *v == '\t')
				v++;
			if (*v != ':')
				continue;
			v++;
			while (*v == ' ' || *v == '\t')
				v++;
			if (escaped && *v == '\\')
				v++;
			if (*v != '"')
				continue;
			v++;
			/* The closing quote: preceded by as many backslashes as the key's (0 or 1). */
			for (e = v; *e; e++)
			{
				int			bs = 0;

				if (*e != '"')
					continue;
				while (e - bs > v && e[-bs - 1] == '\\')
					bs++;
				if (bs == escaped)
					break;
			}
			*keep = (v - p);
			*len = (*e == '\0') ? (size_t) (e - v) : (size_t) (e - v) - escaped;
			return true;
		}
	}
	return false;
}

/* redact_secrets: TEXT with the request secrets replaced, or NULL when there is none. */
static char *
redact_secrets(const char *text)
{
	StringInfoData out;
	const char *p;
	const char *copied;
	bool		changed = false;

	if (text == NULL)
		return NULL;
	initStringInfo(&out);
	copied = text;
	for (p = text; *p; p++)
	{
		size_t		keep,
					len;

		if (!secret_at(text, p, &keep, &len))
			continue;
		appendBinaryStringInfo(&out, copied, (p - copied) + keep);
		appendStringInfoString(&out, "[redacted]");
		p += keep + len;
		copied = p;
		changed = true;
		if (*p == '\0')
			break;
	}
	if (!changed)
	{
		pfree(out.data);
		return NULL;
	}
	appendStringInfoString(&out, copied);
	return out.data;
}

static void
redact_secrets_field(char **field)
{
	char	   *r = redact_secrets(*field);

	if (r != NULL)
		*field = r;
}

static void
saas_emit_log_hook(ErrorData *edata)
{
	redact_field(&edata->message);
	redact_field(&edata->detail);
	redact_field(&edata->detail_log);
	redact_field(&edata->hint);
	redact_field(&edata->context);
	redact_field(&edata->internalquery);
	/* Citus's refusal of a second user, as the SQL caller sees it: what to do. */
	if (edata->output_to_client && edata->elevel >= ERROR && edata->hint == NULL &&
		saas_citus_two_users_error(edata))
		edata->hint = pstrdup(SAAS_CITUS_TWO_USERS_HINT);
	/* The failing statement is logged as it is: leave it out when it holds one. */
	if (debug_query_string != NULL &&
		(strstr(debug_query_string, "saas.context") != NULL ||
		 strstr(debug_query_string, "$argon2") != NULL ||
		 api_key_secret(debug_query_string) != NULL))
		edata->hide_stmt = true;
	/* The server log's own lines: the request secrets too. */
	if (edata->output_to_server)
	{
		if (!edata->output_to_client)
		{
			redact_secrets_field(&edata->message);
			redact_secrets_field(&edata->detail);
			redact_secrets_field(&edata->context);
		}
		redact_secrets_field(&edata->detail_log);
		if (debug_query_string != NULL && !edata->hide_stmt)
		{
			char	   *r = redact_secrets(debug_query_string);

			if (r != NULL)
			{
				edata->hide_stmt = true;
				pfree(r);
			}
		}
	}
	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
}

/* saas_log_redact_init: from _PG_init. */
void
saas_log_redact_init(void)
{
	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = saas_emit_log_hook;
}
