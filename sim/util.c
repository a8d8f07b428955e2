/*-------------------------------------------------------------------------
 *
 * util.c
 *	  Small helpers of saas-sim: PRNG, string map, clocks, RFC 3339 times,
 *	  base64, SHA-256, number parsing and the log.
 *
 *-------------------------------------------------------------------------
 */
#include "sim.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

/* ---- PRNG ---- */

/* sim_rng_seed: start a splitmix64 stream */
void
sim_rng_seed(SimRng *rng, uint64_t seed)
{
	rng->state = seed;
}

/* sim_rng_next: the next 64 random bits (splitmix64, public domain algorithm) */
uint64_t
sim_rng_next(SimRng *rng)
{
	uint64_t	z = (rng->state += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

/* sim_rng_unit: uniform in [0, 1), from the top 53 bits */
double
sim_rng_unit(SimRng *rng)
{
	return (double) (sim_rng_next(rng) >> 11) * (1.0 / 9007199254740992.0);
}

/* sim_rng_below: uniform in [0, n); n == 0 gives 0 */
uint64_t
sim_rng_below(SimRng *rng, uint64_t n)
{
	if (n == 0)
		return 0;
	return sim_rng_next(rng) % n;
}

/* ---- memory ---- */

/* sim_malloc: malloc that aborts instead of returning NULL */
void *
sim_malloc(size_t size)
{
	void	   *p = malloc(size ? size : 1);

	if (p == NULL)
	{
		fprintf(stderr, "saas-sim: out of memory\n");
		abort();
	}
	return p;
}

/* sim_realloc: realloc that aborts instead of returning NULL */
void *
sim_realloc(void *ptr, size_t size)
{
	void	   *p = realloc(ptr, size ? size : 1);

	if (p == NULL)
	{
		fprintf(stderr, "saas-sim: out of memory\n");
		abort();
	}
	return p;
}

/* sim_strdup: strdup that aborts on OOM; NULL stays NULL */
char *
sim_strdup(const char *s)
{
	return s ? sim_strndup(s, strlen(s)) : NULL;
}

/* sim_strndup: copy n bytes and terminate */
char *
sim_strndup(const char *s, size_t n)
{
	char	   *p = sim_malloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

/* ---- string map ---- */

/* map_hash: FNV-1a, good enough for ids and idempotency keys */
static uint64_t
map_hash(const char *s)
{
	uint64_t	h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char) *s) * 1099511628211ULL;
	return h;
}

/* sim_map_init: an empty map */
void
sim_map_init(SimMap *map)
{
	map->nbuckets = 64;
	map->count = 0;
	map->buckets = calloc(map->nbuckets, sizeof(SimMapEntry *));
	if (map->buckets == NULL)
		abort();
}

/* sim_map_get: the value for key, or NULL */
void *
sim_map_get(const SimMap *map, const char *key)
{
	for (SimMapEntry *e = map->buckets[map_hash(key) % map->nbuckets]; e; e = e->next)
		if (strcmp(e->key, key) == 0)
			return e->value;
	return NULL;
}

/* map_grow: double the buckets once the load passes 1 */
static void
map_grow(SimMap *map)
{
	size_t		n = map->nbuckets * 2;
	SimMapEntry **b = calloc(n, sizeof(SimMapEntry *));

	if (b == NULL)
		abort();
	for (size_t i = 0; i < map->nbuckets; i++)
	{
		SimMapEntry *e = map->buckets[i];

		while (e)
		{
			SimMapEntry *next = e->next;
			size_t		j = map_hash(e->key) % n;

			e->next = b[j];
			b[j] = e;
			e = next;
		}
	}
	free(map->buckets);
	map->buckets = b;
	map->nbuckets = n;
}

/* sim_map_put: set key to value, replacing any previous value (not freed) */
void
sim_map_put(SimMap *map, const char *key, void *value)
{
	size_t		i = map_hash(key) % map->nbuckets;
	SimMapEntry *e;

	for (e = map->buckets[i]; e; e = e->next)
		if (strcmp(e->key, key) == 0)
		{
			e->value = value;
			return;
		}
	if (map->count >= map->nbuckets)
	{
		map_grow(map);
		i = map_hash(key) % map->nbuckets;
	}
	e = sim_malloc(sizeof(SimMapEntry));
	e->key = sim_strdup(key);
	e->value = value;
	e->next = map->buckets[i];
	map->buckets[i] = e;
	map->count++;
}

/* sim_map_remove: drop key and return its value (or NULL) */
void *
sim_map_remove(SimMap *map, const char *key)
{
	SimMapEntry **pp = &map->buckets[map_hash(key) % map->nbuckets];

	for (; *pp; pp = &(*pp)->next)
	{
		SimMapEntry *e = *pp;

		if (strcmp(e->key, key) == 0)
		{
			void	   *v = e->value;

			*pp = e->next;
			free(e->key);
			free(e);
			map->count--;
			return v;
		}
	}
	return NULL;
}

/* sim_map_free: free every entry, and each value with free_value if given */
void
sim_map_free(SimMap *map, void (*free_value) (void *))
{
	if (map->buckets == NULL)
		return;
	for (size_t i = 0; i < map->nbuckets; i++)
	{
		SimMapEntry *e = map->buckets[i];

		while (e)
		{
			SimMapEntry *next = e->next;

			if (free_value)
				free_value(e->value);
			free(e->key);
			free(e);
			e = next;
		}
	}
	free(map->buckets);
	map->buckets = NULL;
	map->nbuckets = 0;
	map->count = 0;
}

/* ---- clocks and times ---- */

/* sim_now_ms: wall clock, milliseconds since the epoch */
int64_t
sim_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* sim_mono_ms: monotonic clock in milliseconds, for intervals and deadlines */
int64_t
sim_mono_ms(void)
{
	return sim_mono_us() / 1000;
}

/* sim_mono_us: monotonic clock in microseconds */
int64_t
sim_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* sim_format_time: RFC 3339 UTC with milliseconds, e.g. 2024-02-15T10:30:00.123Z */
void
sim_format_time(int64_t ms, char *out, size_t outlen)
{
	time_t		secs = (time_t) (ms / 1000);
	struct tm	tm;

	gmtime_r(&secs, &tm);
	snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
			 tm.tm_hour, tm.tm_min, tm.tm_sec, (int) (ms % 1000));
}

/* time_digits: n decimal digits at s, or -1 */
static int
time_digits(const char *s, int n)
{
	int			v = 0;

	for (int i = 0; i < n; i++)
	{
		if (!isdigit((unsigned char) s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/*
 * sim_parse_time
 *		Parse an RFC 3339 timestamp (a date alone means its midnight UTC);
 *		fractions and numeric offsets are accepted.
 */
bool
sim_parse_time(const char *s, int64_t *ms)
{
	struct tm	tm;
	int			y,
				mo,
				d,
				h = 0,
				mi = 0,
				se = 0,
				frac_ms = 0,
				offset_min = 0;
	const char *p;

	memset(&tm, 0, sizeof(tm));
	if (strlen(s) < 10 || s[4] != '-' || s[7] != '-')
		return false;
	y = time_digits(s, 4);
	mo = time_digits(s + 5, 2);
	d = time_digits(s + 8, 2);
	if (y < 0 || mo < 1 || mo > 12 || d < 1 || d > 31)
		return false;
	p = s + 10;
	if (*p == 'T' || *p == 't' || *p == ' ')
	{
		if (strlen(p) < 9 || p[3] != ':' || p[6] != ':')
			return false;
		h = time_digits(p + 1, 2);
		mi = time_digits(p + 4, 2);
		se = time_digits(p + 7, 2);
		if (h < 0 || h > 23 || mi < 0 || mi > 59 || se < 0 || se > 60)
			return false;
		p += 9;
		if (*p == '.')
		{
			int			scale = 100;

			p++;
			if (!isdigit((unsigned char) *p))
				return false;
			for (; isdigit((unsigned char) *p); p++)
			{
				frac_ms += (*p - '0') * scale;
				scale /= 10;
			}
		}
		if (*p == 'Z' || *p == 'z')
			p++;
		else if (*p == '+' || *p == '-')
		{
			int			oh = time_digits(p + 1, 2),
						om = (p[3] == ':') ? time_digits(p + 4, 2) : -1;

			if (oh < 0 || om < 0)
				return false;
			offset_min = (oh * 60 + om) * (*p == '-' ? -1 : 1);
			p += 6;
		}
		else
			return false;
	}
	if (*p != '\0')
		return false;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = se;
	*ms = ((int64_t) timegm(&tm) - (int64_t) offset_min * 60) * 1000 + frac_ms;
	return true;
}

/* sim_sleep_ms: sleep, restarting after signals */
void
sim_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long) (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* ---- encodings ---- */

/* sim_base64_encode: standard base64 with padding, malloc'd */
char *
sim_base64_encode(const unsigned char *data, size_t len)
{
	char	   *out = sim_malloc(4 * ((len + 2) / 3) + 1);

	EVP_EncodeBlock((unsigned char *) out, data, (int) len);
	return out;
}

/*
 * sim_base64_decode
 *		Decode standard base64 (padding required); NULL when the text is not
 *		base64.  EVP_DecodeBlock counts padding as zero bytes, so they are
 *		trimmed here.
 */
unsigned char *
sim_base64_decode(const char *text, size_t *outlen)
{
	size_t		len = strlen(text);
	unsigned char *out;
	int			n;

	if (len == 0 || len % 4 != 0)
		return NULL;
	for (size_t i = 0; i < len; i++)
	{
		char		c = text[i];

		if (!(isalnum((unsigned char) c) || c == '+' || c == '/' ||
			  (c == '=' && i >= len - 2)))
			return NULL;
	}
	out = sim_malloc(len / 4 * 3 + 1);
	n = EVP_DecodeBlock(out, (const unsigned char *) text, (int) len);
	if (n < 0)
	{
		free(out);
		return NULL;
	}
	if (text[len - 1] == '=')
		n--;
	if (text[len - 2] == '=')
		n--;
	*outlen = (size_t) n;
	return out;
}

/* sim_sha256_hex: lower-case hex digest */
void
sim_sha256_hex(const char *data, size_t len, char out[65])
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	unsigned int mdlen = 0;

	EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
	for (unsigned i = 0; i < SHA256_DIGEST_LENGTH; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	out[64] = '\0';
}

/* sim_parse_int: a whole decimal string within [min, max] */
bool
sim_parse_int(const char *s, long min, long max, long *out)
{
	char	   *end;
	long		v;

	if (s == NULL || *s == '\0')
		return false;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* sim_parse_double: a whole finite decimal number */
bool
sim_parse_double(const char *s, double *out)
{
	char	   *end;
	double		v;

	if (s == NULL || *s == '\0')
		return false;
	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || *end != '\0' || !isfinite(v))
		return false;
	*out = v;
	return true;
}

/* ---- log ---- */

/* sim_log: one line on stderr with a UTC timestamp; a single write keeps lines whole */
void
sim_log(const char *fmt,...)
{
	char		ts[40];
	SimBuf		b;
	va_list		ap;

	sim_format_time(sim_now_ms(), ts, sizeof(ts));
	sbuf_init(&b);
	sbuf_printf(&b, "%s saas-sim: ", ts);
	va_start(ap, fmt);
	sbuf_vprintf(&b, fmt, ap);
	va_end(ap);
	sbuf_putc(&b, '\n');
	fputs(b.data, stderr);
	sbuf_free(&b);
}
