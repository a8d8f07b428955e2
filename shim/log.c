/*-------------------------------------------------------------------------
 *
 * log.c
 *	  One-line structured (logfmt) log records on stderr.
 *
 * Every record is "ts=... level=... key=value ..." so that the access log
 * and the operational messages can be read by the same tools.  A record is
 * formatted into a stack buffer and written with a single write(2): lines
 * from concurrent request threads never interleave (stderr writes below
 * PIPE_BUF are atomic on pipes, and one call is one line on files).
 * Values that came from the client are escaped, never trusted: a request
 * path cannot forge a second log line.
 *
 *-------------------------------------------------------------------------
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* The longest value written for one key; longer ones are cut with "...". */
#define LOG_VALUE_MAX 512

/*
 * log_append
 *		Append raw text, silently truncating at the buffer's end (a log line
 *		that is cut is better than one that is lost).  One byte is kept for
 *		the newline.
 */
static void
log_append(SaasLogLine *line, const char *text, size_t n)
{
	size_t		room = SAAS_LOG_LINE_MAX - 1 - line->len;

	if (n > room)
		n = room;
	memcpy(line->buf + line->len, text, n);
	line->len += n;
}

/*
 * saas_logline_begin
 *		Start a record with the wall-clock time (RFC 3339 UTC, milliseconds)
 *		and a level.
 */
void
saas_logline_begin(SaasLogLine *line, const char *level)
{
	struct timeval tv;
	struct tm	tm;
	char		ts[64];
	int			n;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	n = snprintf(ts, sizeof(ts), "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03dZ level=%s",
				 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
				 tm.tm_hour, tm.tm_min, tm.tm_sec, (int) (tv.tv_usec / 1000),
				 level);
	line->len = 0;
	log_append(line, ts, (size_t) n);
}

/*
 * saas_logline_str
 *		Append key=value.  The value is quoted when it holds anything but
 *		plain characters, with quotes, backslashes and bytes outside printable
 *		ASCII escaped (\" \\ \xNN), so client input stays on its line.  NULL
 *		is written as "-".
 */
void
saas_logline_str(SaasLogLine *line, const char *key, const char *value)
{
	char		out[LOG_VALUE_MAX * 4 + 8];
	size_t		o = 0;
	size_t		i;
	int			quote = 0;

	if (value == NULL)
		value = "-";
	for (i = 0; value[i] != '\0' && i < LOG_VALUE_MAX; i++)
	{
		unsigned char c = (unsigned char) value[i];

		if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c >= 0x7f)
			quote = 1;
	}
	if (value[0] == '\0')
		quote = 1;

	log_append(line, " ", 1);
	log_append(line, key, strlen(key));
	log_append(line, "=", 1);
	if (quote)
		out[o++] = '"';
	for (i = 0; value[i] != '\0' && i < LOG_VALUE_MAX; i++)
	{
		unsigned char c = (unsigned char) value[i];

		if (c == '"' || c == '\\')
		{
			out[o++] = '\\';
			out[o++] = (char) c;
		}
		else if (c < ' ' || c >= 0x7f)
			o += (size_t) snprintf(out + o, 5, "\\x%02x", c);
		else
			out[o++] = (char) c;
	}
	if (value[i] != '\0')
	{
		memcpy(out + o, "...", 3);
		o += 3;
	}
	if (quote)
		out[o++] = '"';
	log_append(line, out, o);
}

/*
 * saas_logline_int
 *		Append key=<integer>.
 */
void
saas_logline_int(SaasLogLine *line, const char *key, long long value)
{
	char		tmp[128];
	int			n = snprintf(tmp, sizeof(tmp), " %s=%lld", key, value);

	log_append(line, tmp, (size_t) n);
}

/*
 * saas_logline_ms
 *		Append key=<milliseconds with three decimals>, given microseconds.
 */
void
saas_logline_ms(SaasLogLine *line, const char *key, long long micros)
{
	char		tmp[128];
	int			n = snprintf(tmp, sizeof(tmp), " %s=%lld.%03lld",
							 key, micros / 1000, micros % 1000);

	log_append(line, tmp, (size_t) n);
}

/*
 * saas_logline_end
 *		Terminate the record and write it in one system call.
 */
void
saas_logline_end(SaasLogLine *line)
{
	ssize_t		rc;

	line->buf[line->len++] = '\n';
	rc = write(STDERR_FILENO, line->buf, line->len);
	(void) rc;					/* nowhere left to report a failed log write */
}

/*
 * saas_log
 *		An operational message: level, msg and an optional detail.  The
 *		detail's whitespace runs (libpq's messages span lines and indent with
 *		tabs) become single spaces, and it loses trailing whitespace.
 */
void
saas_log(const char *level, const char *msg, const char *detail)
{
	SaasLogLine line;
	char		flat[LOG_VALUE_MAX + 1];

	saas_logline_begin(&line, level);
	saas_logline_str(&line, "msg", msg);
	if (detail != NULL)
	{
		size_t		o = 0;
		const char *p;

		for (p = detail; *p != '\0' && o < LOG_VALUE_MAX; p++)
		{
			bool		space = (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r');

			if (!space)
				flat[o++] = *p;
			else if (o > 0 && flat[o - 1] != ' ')
				flat[o++] = ' ';
		}
		while (o > 0 && flat[o - 1] == ' ')
			o--;
		flat[o] = '\0';
		saas_logline_str(&line, "detail", flat);
	}
	saas_logline_end(&line);
}
