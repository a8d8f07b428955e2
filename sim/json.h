/*-------------------------------------------------------------------------
 *
 * json.h
 *	  JSON in saas-sim: jansson parses, a small streaming writer writes.
 *
 * Parsed documents are jansson trees (json_t).  sim_json_parse adds the
 * simulator's rules to jansson's: duplicate keys are refused
 * (JSON_REJECT_DUPLICATES), so are \u0000 and invalid UTF-8 (jansson's
 * defaults), and nesting is bounded by SIM_JSON_MAX_DEPTH, well inside
 * jansson's own compile-time limit (JSON_PARSER_MAX_DEPTH, 2048).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SIM_JSON_H
#define SIM_JSON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define SIM_JSON_MAX_DEPTH 64

/* a growable byte buffer, always NUL-terminated */
typedef struct SimBuf
{
	char	   *data;
	size_t		len;
	size_t		cap;
} SimBuf;

extern void sbuf_init(SimBuf *b);
extern void sbuf_free(SimBuf *b);
extern void sbuf_reset(SimBuf *b);
extern void sbuf_append(SimBuf *b, const char *s, size_t n);
extern void sbuf_puts(SimBuf *b, const char *s);
extern void sbuf_putc(SimBuf *b, char c);
extern void sbuf_printf(SimBuf *b, const char *fmt,...) __attribute__((format(printf, 2, 3)));
extern void sbuf_vprintf(SimBuf *b, const char *fmt, va_list ap);
extern char *sbuf_steal(SimBuf *b);

/* parsing: a jansson tree, freed with json_decref */
extern json_t *sim_json_parse(const char *text, size_t len, char *err, size_t errlen);
extern const char *sim_json_get_str(const json_t *obj, const char *key);
extern const char *sim_json_type_name(const json_t *v);

/* A streaming writer: it places commas and colons itself. */
typedef struct SimJw
{
	SimBuf	   *buf;
	int			depth;
	bool		need_comma[SIM_JSON_MAX_DEPTH + 1];
	bool		after_key;
} SimJw;

extern void jw_init(SimJw *jw, SimBuf *buf);
extern void jw_obj_begin(SimJw *jw);
extern void jw_obj_end(SimJw *jw);
extern void jw_arr_begin(SimJw *jw);
extern void jw_arr_end(SimJw *jw);
extern void jw_key(SimJw *jw, const char *key);
extern void jw_str(SimJw *jw, const char *s);
extern void jw_int(SimJw *jw, int64_t v);
extern void jw_num(SimJw *jw, double v);
extern void jw_bool(SimJw *jw, bool v);
extern void jw_null(SimJw *jw);
extern void jw_raw(SimJw *jw, const char *json);
extern void jw_value(SimJw *jw, json_t *v);

/* key-value shorthands */
extern void jw_kstr(SimJw *jw, const char *key, const char *s);
extern void jw_kint(SimJw *jw, const char *key, int64_t v);
extern void jw_knum(SimJw *jw, const char *key, double v);
extern void jw_kbool(SimJw *jw, const char *key, bool v);

extern void sim_json_escape(SimBuf *b, const char *s);

#endif							/* SIM_JSON_H */
