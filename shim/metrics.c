/*-------------------------------------------------------------------------
 *
 * metrics.c
 *	  Counters for GET /metrics (Prometheus text format).
 *
 * Requests are counted by route template, method and status.  The route is
 * the API table's template with ids written ":id" (/users/:id), and any
 * path that is not in the table counts as "other": a label's values must
 * stay few, or a client sending random paths would grow the metrics
 * without bound.  For the same reason methods outside the usual seven count
 * as OTHER.  All counters are fixed arrays of atomics: counting costs a few
 * nanoseconds and no lock on the request path.
 *
 * Beside its own, the relay serves the database's: the background worker's
 * queue, calls, latency and breakers, from saas.metrics_text(), read on
 * each scrape through the pool (saas_metrics_render_db).  The worker's
 * counters live in the database server's shared memory, so the relay only
 * relays them; when the database cannot answer in time the relay's own
 * metrics are still served, with saas_http_db_metrics_ok 0.
 *
 *-------------------------------------------------------------------------
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common.h"
#include "metrics.h"

/* The paths of the API (API.md) and the relay's own two. */
static const char *const route_names[] = {
	"/auth/register",
	"/auth/login",
	"/organizations",
	"/organizations/:id",
	"/users",
	"/users/:id",
	"/audit-logs",
	"/webhooks/user-service",
	"/webhooks/payment-service",
	"/webhooks/communication-service",
	"/integrations/status",
	"/jobs",
	"/jobs/:id/retry",
	"/healthz",
	"/openapi.json",
	"/metrics",
	"other"
};

#define N_ROUTES	((int) (sizeof(route_names) / sizeof(route_names[0])))
#define ROUTE_OTHER (N_ROUTES - 1)

static const char *const method_names[] = {
	"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "OTHER"
};

#define N_METHODS	((int) (sizeof(method_names) / sizeof(method_names[0])))

#define STATUS_MIN	100
#define STATUS_MAX	599

/* Upper bounds of the latency buckets, in microseconds (+Inf implied). */
static const int64_t bucket_us[] = {
	1000, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000, 10000000
};

#define N_BUCKETS	((int) (sizeof(bucket_us) / sizeof(bucket_us[0])))

static atomic_uint_fast64_t requests[N_ROUTES][N_METHODS][STATUS_MAX - STATUS_MIN + 1];
static atomic_uint_fast64_t aborted[N_ROUTES];
static atomic_uint_fast64_t latency_buckets[N_BUCKETS + 1];
static atomic_uint_fast64_t latency_sum_us;
static atomic_int in_flight;
static atomic_int connections_open;
static atomic_uint_fast64_t refused[2];	/* max_connections, per_client */
static atomic_uint_fast64_t deadlines[2];	/* headers, body */

/*
 * route_match
 *		Does the path [p, end) match the template?  ":id" matches any one
 *		non-empty segment.
 */
static bool
route_match(const char *tmpl, const char *p, const char *end)
{
	while (*tmpl != '\0' && p < end)
	{
		const char *ts,
				   *ps;

		if (*tmpl != '/' || *p != '/')
			return false;
		ts = ++tmpl;
		ps = ++p;
		while (*tmpl != '\0' && *tmpl != '/')
			tmpl++;
		while (p < end && *p != '/')
			p++;
		if (tmpl - ts == 3 && memcmp(ts, ":id", 3) == 0)
		{
			if (p == ps)
				return false;
		}
		else if (tmpl - ts != p - ps || memcmp(ts, ps, (size_t) (p - ps)) != 0)
			return false;
	}
	return *tmpl == '\0' && p == end;
}

/*
 * saas_route_of
 *		The route index of a request target (path plus optional query).
 */
int
saas_route_of(const char *target)
{
	const char *end = target + strcspn(target, "?#");
	int			i;

	for (i = 0; i < ROUTE_OTHER; i++)
		if (route_match(route_names[i], target, end))
			return i;
	return ROUTE_OTHER;
}

/*
 * saas_route_name
 *		The template of a route index.
 */
const char *
saas_route_name(int route)
{
	return route_names[route];
}

/*
 * metrics_method_index
 *		Label index of a method; anything unusual is OTHER.
 */
static int
metrics_method_index(const char *method)
{
	int			i;

	for (i = 0; i < N_METHODS - 1; i++)
		if (strcmp(method, method_names[i]) == 0)
			return i;
	return N_METHODS - 1;
}

/*
 * saas_metrics_request
 *		Count one finished request.  Status 0 means no answer was sent (the
 *		client went away, or the HTTP layer refused the request first): it is
 *		counted as aborted and kept out of the latency histogram.
 */
void
saas_metrics_request(int route, const char *method, int status, int64_t micros)
{
	int			b;

	if (status < STATUS_MIN || status > STATUS_MAX)
	{
		atomic_fetch_add(&aborted[route], 1);
		return;
	}
	atomic_fetch_add(&requests[route][metrics_method_index(method)][status - STATUS_MIN], 1);
	for (b = 0; b < N_BUCKETS && micros > bucket_us[b]; b++)
		;
	atomic_fetch_add(&latency_buckets[b], 1);
	atomic_fetch_add(&latency_sum_us, (uint64_t) (micros > 0 ? micros : 0));
}

/*
 * saas_metrics_in_flight
 *		Requests begun but not finished, for the gauge.
 */
void
saas_metrics_in_flight(int delta)
{
	atomic_fetch_add(&in_flight, delta);
}

/*
 * saas_metrics_connections
 *		Connections accepted within the limits and not yet closed.
 */
void
saas_metrics_connections(int delta)
{
	atomic_fetch_add(&connections_open, delta);
}

/*
 * saas_metrics_refused
 *		A connection answered 503 and closed at once: the relay's limit, or
 *		its client address's.
 */
void
saas_metrics_refused(bool per_client)
{
	atomic_fetch_add(&refused[per_client ? 1 : 0], 1);
}

/*
 * saas_metrics_deadline
 *		A request cut off with a 408: headers or body not in by its deadline.
 */
void
saas_metrics_deadline(bool body)
{
	atomic_fetch_add(&deadlines[body ? 1 : 0], 1);
}

/*
 * metrics_printf
 *		Append formatted text; every call here formats well under the buffer.
 */
static void
metrics_printf(SaasBuf *out, const char *fmt,...)
{
	char		line[1024];
	va_list		ap;
	int			n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n > 0)
		saas_buf_append(out, line, (size_t) n < sizeof(line) ? (size_t) n : sizeof(line) - 1);
}

/*
 * saas_metrics_render
 *		The whole exposition, in Prometheus text format 0.0.4.
 */
void
saas_metrics_render(SaasBuf *out, SaasPool *pool)
{
	SaasPoolStats ps;
	uint64_t	cumulative = 0;
	uint64_t	sum_us;
	int			r,
				m,
				s,
				b;

	metrics_printf(out, "# HELP saas_http_requests_total Requests answered, by route template, "
				   "method and status.\n"
				   "# TYPE saas_http_requests_total counter\n");
	for (r = 0; r < N_ROUTES; r++)
		for (m = 0; m < N_METHODS; m++)
			for (s = 0; s <= STATUS_MAX - STATUS_MIN; s++)
			{
				uint64_t	v = atomic_load(&requests[r][m][s]);

				if (v != 0)
					metrics_printf(out, "saas_http_requests_total"
								   "{route=\"%s\",method=\"%s\",status=\"%d\"} %llu\n",
								   route_names[r], method_names[m], s + STATUS_MIN,
								   (unsigned long long) v);
			}

	metrics_printf(out, "# HELP saas_http_requests_aborted_total Requests that ended without an "
				   "answer from the relay (client gone, malformed HTTP).\n"
				   "# TYPE saas_http_requests_aborted_total counter\n");
	for (r = 0; r < N_ROUTES; r++)
	{
		uint64_t	v = atomic_load(&aborted[r]);

		if (v != 0)
			metrics_printf(out, "saas_http_requests_aborted_total{route=\"%s\"} %llu\n",
						   route_names[r], (unsigned long long) v);
	}

	metrics_printf(out, "# HELP saas_http_request_duration_seconds Time from request line to answer queued.\n"
				   "# TYPE saas_http_request_duration_seconds histogram\n");
	for (b = 0; b <= N_BUCKETS; b++)
	{
		cumulative += atomic_load(&latency_buckets[b]);
		if (b < N_BUCKETS)
			metrics_printf(out, "saas_http_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
						   bucket_us[b] / 1e6, (unsigned long long) cumulative);
		else
			metrics_printf(out, "saas_http_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
						   (unsigned long long) cumulative);
	}
	sum_us = atomic_load(&latency_sum_us);
	metrics_printf(out, "saas_http_request_duration_seconds_sum %llu.%06llu\n"
				   "saas_http_request_duration_seconds_count %llu\n",
				   (unsigned long long) (sum_us / 1000000), (unsigned long long) (sum_us % 1000000),
				   (unsigned long long) cumulative);

	metrics_printf(out, "# HELP saas_http_requests_in_flight Requests begun and not yet finished.\n"
				   "# TYPE saas_http_requests_in_flight gauge\n"
				   "saas_http_requests_in_flight %d\n", atomic_load(&in_flight));
	metrics_printf(out, "# HELP saas_http_connections_open HTTP connections open (accepted within "
				   "the limits).\n"
				   "# TYPE saas_http_connections_open gauge\n"
				   "saas_http_connections_open %d\n", atomic_load(&connections_open));
	metrics_printf(out, "# HELP saas_http_connections_refused_total Connections answered 503 and "
				   "closed at once: --max-connections open, or --max-connections-per-client open "
				   "from the same address.\n"
				   "# TYPE saas_http_connections_refused_total counter\n"
				   "saas_http_connections_refused_total{limit=\"max_connections\"} %llu\n"
				   "saas_http_connections_refused_total{limit=\"per_client\"} %llu\n",
				   (unsigned long long) atomic_load(&refused[0]),
				   (unsigned long long) atomic_load(&refused[1]));
	metrics_printf(out, "# HELP saas_http_request_deadlines_total Requests answered 408: headers not "
				   "in within --header-timeout, or body within --body-timeout.\n"
				   "# TYPE saas_http_request_deadlines_total counter\n"
				   "saas_http_request_deadlines_total{phase=\"headers\"} %llu\n"
				   "saas_http_request_deadlines_total{phase=\"body\"} %llu\n",
				   (unsigned long long) atomic_load(&deadlines[0]),
				   (unsigned long long) atomic_load(&deadlines[1]));

	saas_pool_stats(pool, &ps);
	metrics_printf(out, "# HELP saas_http_pool_size Database connections the pool may hold.\n"
				   "# TYPE saas_http_pool_size gauge\nsaas_http_pool_size %d\n", ps.size);
	metrics_printf(out, "# HELP saas_http_pool_in_use Pooled connections taken by a request.\n"
				   "# TYPE saas_http_pool_in_use gauge\nsaas_http_pool_in_use %d\n", ps.in_use);
	metrics_printf(out, "# HELP saas_http_pool_connected Pooled connections currently open.\n"
				   "# TYPE saas_http_pool_connected gauge\nsaas_http_pool_connected %d\n", ps.connected);
	metrics_printf(out, "# HELP saas_http_pool_waits_total Requests that found no free connection and waited.\n"
				   "# TYPE saas_http_pool_waits_total counter\nsaas_http_pool_waits_total %llu\n",
				   (unsigned long long) ps.waits);
	metrics_printf(out, "# HELP saas_http_pool_wait_timeouts_total Waits that ended at the request's deadline.\n"
				   "# TYPE saas_http_pool_wait_timeouts_total counter\nsaas_http_pool_wait_timeouts_total %llu\n",
				   (unsigned long long) ps.wait_timeouts);
	metrics_printf(out, "# HELP saas_http_db_connects_total Database connections opened.\n"
				   "# TYPE saas_http_db_connects_total counter\nsaas_http_db_connects_total %llu\n",
				   (unsigned long long) ps.connects);
	metrics_printf(out, "# HELP saas_http_db_errors_total Database failures: connect (cannot "
				   "connect), lost (connection died), timeout (call cancelled at the deadline), "
				   "sql (other error raised by saas.http).\n"
				   "# TYPE saas_http_db_errors_total counter\n"
				   "saas_http_db_errors_total{kind=\"connect\"} %llu\n"
				   "saas_http_db_errors_total{kind=\"lost\"} %llu\n"
				   "saas_http_db_errors_total{kind=\"timeout\"} %llu\n"
				   "saas_http_db_errors_total{kind=\"sql\"} %llu\n",
				   (unsigned long long) ps.connect_failures, (unsigned long long) ps.lost,
				   (unsigned long long) ps.timeouts, (unsigned long long) ps.sql_errors);
}

/* The database's part of the exposition: one text value. */
#define METRICS_DB_SQL		"SELECT saas.metrics_text()"
#define METRICS_DB_MAX_MS	2000

/*
 * saas_metrics_render_db
 *		Append saas.metrics_text() from the database, within
 *		min(timeout_ms, 2 s), and saas_http_db_metrics_ok saying whether it
 *		came.  A database that is down, busy (no pooled connection free) or
 *		without pg_saas leaves the relay's own metrics as they are.
 */
void
saas_metrics_render_db(SaasBuf *out, SaasPool *pool, int timeout_ms)
{
	PGresult   *res = NULL;
	SaasCallStatus st;
	bool		ok = false;
	int			ms = timeout_ms < METRICS_DB_MAX_MS ? timeout_ms : METRICS_DB_MAX_MS;

	st = saas_pool_query(pool, METRICS_DB_SQL, saas_now_us() + 1000LL * ms, &res);
	if (st == SAAS_CALL_OK && PQntuples(res) == 1 && PQnfields(res) == 1 &&
		!PQgetisnull(res, 0, 0))
	{
		saas_buf_append(out, PQgetvalue(res, 0, 0), (size_t) PQgetlength(res, 0, 0));
		ok = true;
	}
	if (res != NULL)
		PQclear(res);
	metrics_printf(out, "# HELP saas_http_db_metrics_ok 1 when this scrape includes the database's "
				   "metrics (saas.metrics_text()), 0 when the database could not give them in time.\n"
				   "# TYPE saas_http_db_metrics_ok gauge\nsaas_http_db_metrics_ok %d\n", ok ? 1 : 0);
}
