/*-------------------------------------------------------------------------
 *
 * json.h
 *	  The little JSON the relay needs: a growable buffer, string escaping
 *	  and UTF-8 checking.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAAS_HTTP_JSON_H
#define SAAS_HTTP_JSON_H

#include <stdbool.h>
#include <stddef.h>

/* A growable byte buffer; "failed" latches on allocation failure. */
typedef struct SaasBuf
{
	char	   *data;
	size_t		len;
	size_t		cap;
	bool		failed;
} SaasBuf;

extern void saas_buf_init(SaasBuf *buf);
extern bool saas_buf_append(SaasBuf *buf, const char *bytes, size_t n);
extern bool saas_buf_puts(SaasBuf *buf, const char *str);
extern void saas_buf_free(SaasBuf *buf);

extern bool saas_utf8_valid(const char *s, size_t n);
extern void saas_json_string(SaasBuf *buf, const char *s);

#endif							/* SAAS_HTTP_JSON_H */
