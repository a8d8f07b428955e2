/*-------------------------------------------------------------------------
 *
 * log.h
 *	  One-line structured (logfmt) log records on stderr.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAAS_HTTP_LOG_H
#define SAAS_HTTP_LOG_H

#include <stddef.h>

/* A record is built in a fixed buffer and written with one write(2). */
#define SAAS_LOG_LINE_MAX 2048

typedef struct SaasLogLine
{
	char		buf[SAAS_LOG_LINE_MAX];
	size_t		len;
} SaasLogLine;

extern void saas_logline_begin(SaasLogLine *line, const char *level);
extern void saas_logline_str(SaasLogLine *line, const char *key, const char *value);
extern void saas_logline_int(SaasLogLine *line, const char *key, long long value);
extern void saas_logline_ms(SaasLogLine *line, const char *key, long long micros);
extern void saas_logline_end(SaasLogLine *line);

extern void saas_log(const char *level, const char *msg, const char *detail);

#endif							/* SAAS_HTTP_LOG_H */
