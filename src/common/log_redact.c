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

static void
saas_emit_log_hook(ErrorData *edata)
{
	redact_field(&edata->message);
	redact_field(&edata->detail);
	redact_field(&edata->detail_log);
	redact_field(&edata->hint);
	redact_field(&edata->context);
	redact_field(&edata->internalquery);
	/* The failing statement is logged as it is: leave it out when it holds one. */
	if (debug_query_string != NULL &&
		(strstr(debug_query_string, "saas.context") != NULL ||
		 strstr(debug_query_string, "$argon2") != NULL ||
		 api_key_secret(debug_query_string) != NULL))
		edata->hide_stmt = true;
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
