/*-------------------------------------------------------------------------
 *
 * json.h
 *	  A small JSON parser (to a tree) and writer for saas-sim.
 *
 * Strict RFC 8259: no comments, no trailing commas, no duplicate keys,
 * valid UTF-8 only, no NUL in strings, nesting at most SIM_JSON_MAX_DEPTH.
 * Anything else is an error with a message a client can act on.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SIM_JSON_H
#define SIM_JSON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

typedef enum SimJsonType
{
	SJ_NULL,
	SJ_BOOL,
	SJ_NUMBER,
	SJ_STRING,
	SJ_ARRAY,
	SJ_OBJECT
} SimJsonType;

typedef struct SimJson
{
	SimJsonType type;
	bool		boolean;
	double		number;
	bool		is_integer;		/* no fraction or exponent, fits int64 */
	int64_t		integer;
	char	   *string;
	struct SimJson **items;		/* array elements or object values */
	char	  **keys;			/* object keys, parallel to items */
	size_t		count;
	size_t		cap;
} SimJson;

extern SimJson *sim_json_parse(const char *text, size_t len, char *err, size_t errlen);
extern void sim_json_free(SimJson *v);
extern const SimJson *sim_json_get(const SimJson *obj, const char *key);
extern const char *sim_json_get_str(const SimJson *obj, const char *key);
extern const char *sim_json_type_name(SimJsonType t);

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
extern void jw_value(SimJw *jw, const SimJson *v);

/* key-value shorthands */
extern void jw_kstr(SimJw *jw, const char *key, const char *s);
extern void jw_kint(SimJw *jw, const char *key, int64_t v);
extern void jw_knum(SimJw *jw, const char *key, double v);
extern void jw_kbool(SimJw *jw, const char *key, bool v);

extern void sim_json_escape(SimBuf *b, const char *s);
extern int	sim_utf8_len(const unsigned char *p, const unsigned char *end);

#endif							/* SIM_JSON_H */
