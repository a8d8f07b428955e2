/*-------------------------------------------------------------------------
 *
 * common.h
 *	  What every part of saas-http shares: its settings and a monotonic clock.
 *
 * saas-http is a relay: it parses HTTP, enforces the few limits HTTP must
 * (method, size, content type, time), and hands each request to
 * saas.http() on a pooled libpq connection.  Routing, rules and JSON
 * validation belong to the extension, not here.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAAS_HTTP_COMMON_H
#define SAAS_HTTP_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/*
 * Limits of a request's head, fixed (docs/relay.md): the relay answers 414
 * or 431 past them, with the API's error body.  libmicrohttpd's per-
 * connection memory (SAAS_CONN_MEMORY, main.c) holds a head within all of
 * them with room to spare, so that it is the relay, not libmicrohttpd, that
 * decides; only heads far beyond get libmicrohttpd's own short answer.
 */
#define SAAS_TARGET_MAX			8192	/* bytes of request target */
#define SAAS_QUERY_PARAMS_MAX	256		/* '&'-separated query fields */
#define SAAS_HEADER_FIELDS_MAX	100		/* header lines, repeats included */
#define SAAS_HEADER_BYTES_MAX	16384	/* names + values + 4 per field */
#define SAAS_CONN_MEMORY		(64 * 1024)

/* Settings, filled once by main.c from flags and environment, then read-only. */
typedef struct SaasHttpConfig
{
	char	   *listen_host;	/* numeric address to bind, e.g. 127.0.0.1 */
	char	   *listen_port;	/* port as text; "0" picks a free one */
	char	   *dsn;			/* libpq connection string */
	int			pool_size;		/* database connections */
	size_t		max_body;		/* largest request body accepted, bytes */
	int			timeout_ms;		/* pool wait + database call, per request */
	int			idle_timeout_s; /* an idle or stalled HTTP connection is closed */
	int			max_connections;	/* concurrent HTTP connections */
	int			max_per_client; /* of which from one client address */
	int			header_timeout_s;	/* request line and headers, absolute */
	int			body_timeout_s; /* body, from the end of the headers, absolute */
	char	   *openapi_path;	/* file served at GET /openapi.json */
	char	   *static_dir;		/* files of /admin/ and /docs (static.c) */
	char	  **cors_origins;	/* origins allowed cross-origin (negotiate.c) */
	int			n_cors_origins;
	bool		cors_any;		/* "*": every origin */
} SaasHttpConfig;

/*
 * saas_now_us
 *		Microseconds on the monotonic clock: for deadlines and latencies,
 *		which must not jump when the wall clock is set.
 */
static inline int64_t
saas_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

#endif							/* SAAS_HTTP_COMMON_H */
