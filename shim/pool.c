/*-------------------------------------------------------------------------
 *
 * pool.c
 *	  A fixed pool of libpq connections, each with saas.http() prepared,
 *	  and the one call the relay makes on them.
 *
 * Request threads (one per HTTP connection, see relay.c) share N slots.
 * A thread takes a free slot under the mutex, or waits on the condition
 * variable until one is released or its request's deadline passes.  The
 * slot's connection is then used outside the lock: only its owner touches
 * it.  The lock guards only which slots are taken and the reconnect state.
 *
 * Connections are made lazily and remade by themselves:
 *	- an idle connection is checked before use (saas_pgw_idle_ok), so after
 *	  a database restart the first request gets a fresh connection instead
 *	  of an error;
 *	- a connection that breaks during a call is dropped (that request gets
 *	  503) and its slot reconnects on next use;
 *	- while connecting fails, further attempts wait for a backoff that
 *	  doubles from 100 ms to 2 s, with jitter, so that a database that is
 *	  down gets a trickle of attempts, not one per request, and requests
 *	  are answered 503 at once instead of each waiting for a refusal.
 *	- a call that outlives its deadline is cancelled (PQcancel) and its
 *	  connection closed by a short-lived reaper thread, so the request is
 *	  answered on time even when the cancel itself is slow.
 * The server-side statement_timeout is set to the same budget, so that a
 * query is stopped even if the relay dies before it can cancel.
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "common.h"
#include "log.h"
#include "pgwait.h"
#include "pool.h"

/*
 * The prepared statement; parameters are sent as text (type 25).  Its rows
 * are saas.http's answer (answer = true: status, body, and whether the
 * headers keep the contract of a flat object) and then one row per response
 * header (answer = false: name, value), which PostgreSQL's jsonb_each_text
 * takes apart so that the relay parses no JSON.  A null value means no
 * header; the columns are the SAAS_COL_* of pool.h.
 */
#define POOL_STMT_NAME	"saas_http"
#define POOL_STMT_SQL \
	"WITH r AS MATERIALIZED (" \
	" SELECT status, headers, body FROM saas.http($1, $2, $3::pg_catalog.jsonb, $4))" \
	" SELECT true, r.status, r.body," \
	"  CASE WHEN r.headers IS NULL THEN true" \
	"   WHEN pg_catalog.jsonb_typeof(r.headers) OPERATOR(pg_catalog.<>) 'object' THEN false" \
	"   ELSE NOT EXISTS (SELECT FROM pg_catalog.jsonb_each(r.headers) AS e" \
	"    WHERE pg_catalog.jsonb_typeof(e.value) OPERATOR(pg_catalog.=) ANY ('{object,array}'))" \
	"  END, NULL::text, NULL::text FROM r" \
	" UNION ALL" \
	" SELECT false, NULL, NULL, NULL, h.key, h.value FROM r," \
	"  pg_catalog.jsonb_each_text(CASE WHEN pg_catalog.jsonb_typeof(r.headers)" \
	"   OPERATOR(pg_catalog.=) 'object' THEN r.headers END) AS h" \
	" WHERE h.value IS NOT NULL"
#define POOL_TEXTOID	25

#define POOL_BACKOFF_MIN_MS		100
#define POOL_BACKOFF_MAX_MS		2000

/*
 * A request connects its slot with what is left of its own budget.  With
 * less than POOL_CONNECT_MIN_US left it does not try; and a connect that
 * runs out of a budget smaller than POOL_CONNECT_FAIR_US says that the
 * request was short of time, not that the database is down: neither backs
 * the pool off or answers "database unavailable".
 */
#define POOL_CONNECT_MIN_US		(50 * 1000)
#define POOL_CONNECT_FAIR_US	(1000 * 1000)

typedef enum PoolConnect
{
	POOL_CONNECTED,
	POOL_CONNECT_FAILED,		/* the database refused, or is backing off */
	POOL_CONNECT_NO_TIME		/* the request's deadline came first */
} PoolConnect;

typedef struct PoolSlot
{
	PGconn	   *conn;			/* NULL until connected; owned by the taker */
	bool		in_use;			/* guarded by pool->lock */
} PoolSlot;

struct SaasPool
{
	char	   *dsn;
	int			size;
	int			statement_timeout_ms;
	PoolSlot   *slots;

	pthread_mutex_t lock;
	pthread_cond_t freed;		/* a slot was released */
	int			in_use;			/* guarded by lock */
	int64_t		retry_at_us;	/* no connect attempt before this; lock */
	int			backoff_ms;		/* current backoff; lock */
	bool		down;			/* last attempt failed; lock */

	atomic_int	connected;
	atomic_int	reapers;		/* cancel threads still running */
	atomic_uint_fast64_t waits;
	atomic_uint_fast64_t wait_timeouts;
	atomic_uint_fast64_t connects;
	atomic_uint_fast64_t connect_failures;
	atomic_uint_fast64_t lost;
	atomic_uint_fast64_t timeouts;
	atomic_uint_fast64_t sql_errors;
};

static SaasCallStatus pool_run(SaasPool *pool, const char *sql, const char *const params[4],
								int64_t deadline_us, PGresult **res);

/* What a reaper thread needs. */
typedef struct PoolReap
{
	SaasPool   *pool;
	PGconn	   *conn;
} PoolReap;

/*
 * saas_pool_create
 *		An empty pool of size slots; nothing is connected yet.  NULL on
 *		allocation failure.
 */
SaasPool *
saas_pool_create(const char *dsn, int size, int statement_timeout_ms)
{
	SaasPool   *pool = calloc(1, sizeof(SaasPool));
	pthread_condattr_t attr;

	if (pool == NULL)
		return NULL;
	pool->dsn = strdup(dsn);
	pool->slots = calloc((size_t) size, sizeof(PoolSlot));
	if (pool->dsn == NULL || pool->slots == NULL)
	{
		free(pool->dsn);
		free(pool->slots);
		free(pool);
		return NULL;
	}
	pool->size = size;
	pool->statement_timeout_ms = statement_timeout_ms;
	pthread_mutex_init(&pool->lock, NULL);
	/* deadlines are on the monotonic clock, so the wait must be too */
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&pool->freed, &attr);
	pthread_condattr_destroy(&attr);
	return pool;
}

/*
 * pool_acquire
 *		Take a free slot, preferring one that is connected, waiting for one
 *		until deadline_us.  NULL when none became free in time.
 */
static PoolSlot *
pool_acquire(SaasPool *pool, int64_t deadline_us)
{
	PoolSlot   *slot = NULL;
	bool		waited = false;
	int			i;

	pthread_mutex_lock(&pool->lock);
	while (pool->in_use >= pool->size)
	{
		struct timespec ts = {
			.tv_sec = deadline_us / 1000000,
			.tv_nsec = (deadline_us % 1000000) * 1000
		};

		if (!waited)
		{
			waited = true;
			atomic_fetch_add(&pool->waits, 1);
		}
		if (pthread_cond_timedwait(&pool->freed, &pool->lock, &ts) == ETIMEDOUT &&
			pool->in_use >= pool->size)
		{
			pthread_mutex_unlock(&pool->lock);
			atomic_fetch_add(&pool->wait_timeouts, 1);
			return NULL;
		}
	}
	for (i = 0; i < pool->size; i++)
	{
		PoolSlot   *s = &pool->slots[i];

		if (s->in_use)
			continue;
		if (slot == NULL || (slot->conn == NULL && s->conn != NULL))
			slot = s;
		if (slot->conn != NULL)
			break;
	}
	slot->in_use = true;
	pool->in_use++;
	pthread_mutex_unlock(&pool->lock);
	return slot;
}

/*
 * pool_release
 *		Give a slot back and wake one waiter.
 */
static void
pool_release(SaasPool *pool, PoolSlot *slot)
{
	pthread_mutex_lock(&pool->lock);
	slot->in_use = false;
	pool->in_use--;
	pthread_cond_signal(&pool->freed);
	pthread_mutex_unlock(&pool->lock);
}

/*
 * pool_reaper_main
 *		Cancel whatever the connection is running, then close it.  Runs on its
 *		own detached thread because PQcancel opens a new connection to the
 *		server and blocks until the server has taken the request.
 */
static void *
pool_reaper_main(void *arg)
{
	PoolReap   *reap = arg;
	PGcancel   *cancel = PQgetCancel(reap->conn);

	if (cancel != NULL)
	{
		char		err[256];

		if (!PQcancel(cancel, err, sizeof(err)))
			saas_log("warn", "cancel request failed", err);
		PQfreeCancel(cancel);
	}
	PQfinish(reap->conn);
	atomic_fetch_sub(&reap->pool->reapers, 1);
	free(reap);
	return NULL;
}

/*
 * pool_discard
 *		Drop the slot's connection; the slot will reconnect on next use.
 *		With cancel, the connection is still running a call: it is handed to
 *		a reaper thread (or reaped here if no thread can be started).
 */
static void
pool_discard(SaasPool *pool, PoolSlot *slot, bool cancel)
{
	PGconn	   *conn = slot->conn;

	if (conn == NULL)
		return;
	slot->conn = NULL;
	atomic_fetch_sub(&pool->connected, 1);
	if (cancel)
	{
		PoolReap   *reap = malloc(sizeof(PoolReap));
		pthread_attr_t attr;
		pthread_t	tid;
		int			rc = -1;

		if (reap != NULL)
		{
			reap->pool = pool;
			reap->conn = conn;
			atomic_fetch_add(&pool->reapers, 1);
			pthread_attr_init(&attr);
			pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
			rc = pthread_create(&tid, &attr, pool_reaper_main, reap);
			pthread_attr_destroy(&attr);
			if (rc == 0)
				return;
			atomic_fetch_sub(&pool->reapers, 1);
			free(reap);
		}
		/* no thread: fall back to closing at once; the server's
		 * statement_timeout will stop the query */
	}
	PQfinish(conn);
}

/*
 * pool_setup
 *		Make a new connection ready for calls: statement_timeout set to the
 *		request budget, and the call prepared once for the connection's life.
 */
static bool
pool_setup(SaasPool *pool, PGconn *conn, int64_t deadline_us, char *err, size_t errlen)
{
	const Oid	types[4] = {POOL_TEXTOID, POOL_TEXTOID, POOL_TEXTOID, POOL_TEXTOID};
	char		timeout[32];
	const char *params[1] = {timeout};
	PGresult   *res = NULL;
	int			step;

	snprintf(timeout, sizeof(timeout), "%d", pool->statement_timeout_ms);
	for (step = 0; step < 2; step++)
	{
		int			sent;
		SaasPgWait	w;

		if (step == 0)
			sent = PQsendQueryParams(conn,
									 "SELECT pg_catalog.set_config('statement_timeout', $1, false)",
									 1, NULL, params, NULL, NULL, 0);
		else
			sent = PQsendPrepare(conn, POOL_STMT_NAME, POOL_STMT_SQL, 4, types);
		w = sent ? saas_pgw_flush(conn, deadline_us) : SAAS_PGW_BROKEN;
		if (w == SAAS_PGW_OK)
			w = saas_pgw_result(conn, deadline_us, &res);
		if (w != SAAS_PGW_OK)
		{
			snprintf(err, errlen, "%s", w == SAAS_PGW_TIMEOUT ?
					 "connection setup timed out" : PQerrorMessage(conn));
			return false;
		}
		if (PQresultStatus(res) != (step == 0 ? PGRES_TUPLES_OK : PGRES_COMMAND_OK))
		{
			snprintf(err, errlen, "%s%s", step == 0 ? "" : "cannot prepare saas.http(): ",
					 PQresultErrorMessage(res));
			PQclear(res);
			return false;
		}
		PQclear(res);
	}
	return true;
}

/*
 * pool_jitter_ms
 *		A random duration in [ms/2, ms]: spreads the reconnect attempts of
 *		several relays restarting against the same database.
 */
static int
pool_jitter_ms(int ms)
{
	unsigned int r = 0;

	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r))
		r = (unsigned int) saas_now_us();
	return ms / 2 + (int) (r % (unsigned int) (ms / 2 + 1));
}

/*
 * pool_connect_slot
 *		Connect the slot unless the pool is backing off or the request has no
 *		time for it.  The first failure after a success and the first success
 *		after a failure are logged, not every attempt: a database that is
 *		down must not flood the log.
 */
static PoolConnect
pool_connect_slot(SaasPool *pool, PoolSlot *slot, int64_t deadline_us)
{
	char		err[512] = "";
	int64_t		start = saas_now_us();
	PGconn	   *conn;
	bool		was_down;

	if (deadline_us - start < POOL_CONNECT_MIN_US)
		return POOL_CONNECT_NO_TIME;
	pthread_mutex_lock(&pool->lock);
	if (start < pool->retry_at_us)
	{
		pthread_mutex_unlock(&pool->lock);
		return POOL_CONNECT_FAILED;
	}
	pthread_mutex_unlock(&pool->lock);

	conn = saas_pgw_connect(pool->dsn, deadline_us, err, sizeof(err));
	if (conn != NULL && !pool_setup(pool, conn, deadline_us, err, sizeof(err)))
	{
		PQfinish(conn);
		conn = NULL;
	}
	if (conn == NULL && saas_now_us() >= deadline_us &&
		deadline_us - start < POOL_CONNECT_FAIR_US)
		return POOL_CONNECT_NO_TIME;

	pthread_mutex_lock(&pool->lock);
	was_down = pool->down;
	if (conn == NULL)
	{
		pool->backoff_ms = pool->backoff_ms == 0 ? POOL_BACKOFF_MIN_MS :
			pool->backoff_ms * 2;
		if (pool->backoff_ms > POOL_BACKOFF_MAX_MS)
			pool->backoff_ms = POOL_BACKOFF_MAX_MS;
		pool->retry_at_us = saas_now_us() + 1000LL * pool_jitter_ms(pool->backoff_ms);
		pool->down = true;
	}
	else
	{
		pool->backoff_ms = 0;
		pool->retry_at_us = 0;
		pool->down = false;
	}
	pthread_mutex_unlock(&pool->lock);

	if (conn == NULL)
	{
		atomic_fetch_add(&pool->connect_failures, 1);
		if (!was_down)
			saas_log("error", "database unavailable; reconnecting with backoff", err);
		return POOL_CONNECT_FAILED;
	}
	if (was_down)
		saas_log("info", "database reachable again", NULL);
	slot->conn = conn;
	atomic_fetch_add(&pool->connected, 1);
	atomic_fetch_add(&pool->connects, 1);
	return POOL_CONNECTED;
}

/*
 * saas_pool_warm
 *		Connect every slot at startup so that the first requests do not pay
 *		for it.  Stops at the first failure: the relay starts anyway and
 *		answers 503 until the database is back.  Returns the slots connected.
 */
int
saas_pool_warm(SaasPool *pool, int64_t deadline_us)
{
	int			i;

	for (i = 0; i < pool->size; i++)
		if (pool_connect_slot(pool, &pool->slots[i], deadline_us) != POOL_CONNECTED)
			break;
	return i;
}

/*
 * saas_pool_call
 *		Run saas.http(method, path, headers, body) on a pooled connection and
 *		return how it went; with OK or SQL_ERROR, *res holds the result for
 *		the caller to read and PQclear.  Never waits past deadline_us.
 *
 *		A failed send on a connection that looked alive is reported as LOST,
 *		not retried: the call may have reached the server, and a relay must
 *		not run a POST twice.
 */
SaasCallStatus
saas_pool_call(SaasPool *pool, const char *const params[4], int64_t deadline_us,
			   PGresult **res)
{
	return pool_run(pool, NULL, params, deadline_us, res);
}

/*
 * saas_pool_query
 *		Run one fixed, parameterless SQL text (the relay's own reads, e.g.
 *		the database's part of /metrics) on a pooled connection, under the
 *		same rules as saas_pool_call.  Its SQL errors are not counted as
 *		saas.http errors: saas_http_db_errors_total{kind="sql"} stays about
 *		the API.
 */
SaasCallStatus
saas_pool_query(SaasPool *pool, const char *sql, int64_t deadline_us, PGresult **res)
{
	return pool_run(pool, sql, NULL, deadline_us, res);
}

/*
 * pool_run
 *		saas_pool_call's work: with sql NULL, the prepared saas.http() with
 *		params; else sql alone.
 */
static SaasCallStatus
pool_run(SaasPool *pool, const char *sql, const char *const params[4], int64_t deadline_us,
		 PGresult **res)
{
	PoolSlot   *slot;
	SaasPgWait	w = SAAS_PGW_BROKEN;
	SaasCallStatus status;

	*res = NULL;
	slot = pool_acquire(pool, deadline_us);
	if (slot == NULL)
		return SAAS_CALL_BUSY;

	if (slot->conn != NULL && !saas_pgw_idle_ok(slot->conn))
	{
		atomic_fetch_add(&pool->lost, 1);
		pool_discard(pool, slot, false);
	}
	if (slot->conn == NULL)
	{
		PoolConnect pc = pool_connect_slot(pool, slot, deadline_us);

		if (pc != POOL_CONNECTED)
		{
			pool_release(pool, slot);
			if (pc == POOL_CONNECT_FAILED)
				return SAAS_CALL_UNAVAILABLE;
			atomic_fetch_add(&pool->wait_timeouts, 1);
			return SAAS_CALL_BUSY;
		}
	}

	if (sql != NULL ? PQsendQueryParams(slot->conn, sql, 0, NULL, NULL, NULL, NULL, 0) :
		PQsendQueryPrepared(slot->conn, POOL_STMT_NAME, 4, params, NULL, NULL, 0))
		w = saas_pgw_flush(slot->conn, deadline_us);
	if (w == SAAS_PGW_OK)
		w = saas_pgw_result(slot->conn, deadline_us, res);

	if (w == SAAS_PGW_TIMEOUT)
	{
		atomic_fetch_add(&pool->timeouts, 1);
		pool_discard(pool, slot, true);
		status = SAAS_CALL_TIMEOUT;
	}
	else if (w == SAAS_PGW_BROKEN)
	{
		saas_log("error", "database connection lost during a call",
				 PQerrorMessage(slot->conn));
		atomic_fetch_add(&pool->lost, 1);
		pool_discard(pool, slot, false);
		status = SAAS_CALL_LOST;
	}
	else
	{
		status = PQresultStatus(*res) == PGRES_TUPLES_OK ? SAAS_CALL_OK : SAAS_CALL_SQL_ERROR;
		if (status == SAAS_CALL_SQL_ERROR)
		{
			const char *sqlstate = PQresultErrorField(*res, PG_DIAG_SQLSTATE);

			/* statement_timeout fired first: a timeout like any other */
			if (sqlstate != NULL && strcmp(sqlstate, "57014") == 0)
				atomic_fetch_add(&pool->timeouts, 1);
			else if (sql == NULL)
				atomic_fetch_add(&pool->sql_errors, 1);
		}
		/* a call must leave its session idle and outside any transaction */
		if (PQstatus(slot->conn) != CONNECTION_OK ||
			PQtransactionStatus(slot->conn) != PQTRANS_IDLE)
			pool_discard(pool, slot, false);
	}
	pool_release(pool, slot);
	return status;
}

/*
 * saas_pool_stats
 *		A consistent-enough snapshot for /metrics.
 */
void
saas_pool_stats(SaasPool *pool, SaasPoolStats *stats)
{
	pthread_mutex_lock(&pool->lock);
	stats->in_use = pool->in_use;
	pthread_mutex_unlock(&pool->lock);
	stats->size = pool->size;
	stats->connected = atomic_load(&pool->connected);
	stats->waits = atomic_load(&pool->waits);
	stats->wait_timeouts = atomic_load(&pool->wait_timeouts);
	stats->connects = atomic_load(&pool->connects);
	stats->connect_failures = atomic_load(&pool->connect_failures);
	stats->lost = atomic_load(&pool->lost);
	stats->timeouts = atomic_load(&pool->timeouts);
	stats->sql_errors = atomic_load(&pool->sql_errors);
}

/*
 * saas_pool_destroy
 *		Close every connection.  Called after the HTTP server has stopped, so
 *		no slot is in use; reapers get a moment to finish their cancels.
 */
void
saas_pool_destroy(SaasPool *pool)
{
	int			i;

	for (i = 0; i < 300 && atomic_load(&pool->reapers) > 0; i++)
		usleep(10000);
	for (i = 0; i < pool->size; i++)
		if (pool->slots[i].conn != NULL)
			PQfinish(pool->slots[i].conn);
	pthread_cond_destroy(&pool->freed);
	pthread_mutex_destroy(&pool->lock);
	free(pool->slots);
	free(pool->dsn);
	free(pool);
}
