/*-------------------------------------------------------------------------
 *
 * pgwait.c
 *	  libpq calls that give up at a deadline.
 *
 * Blocking libpq calls (PQconnectdb, PQexec) wait as long as the network
 * and the server make them wait; a relay that promises an answer within
 * --timeout-ms cannot use them.  Here every step is the asynchronous form
 * (PQconnectStart/PQconnectPoll, PQsend* + PQflush, PQconsumeInput +
 * PQgetResult) driven by poll(2) against an absolute deadline on the
 * monotonic clock.  The connection is in nonblocking mode so that sending a
 * large body cannot block either.
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "log.h"
#include "pgwait.h"

/*
 * pgw_poll
 *		Wait until fd is ready for events or the deadline passes.
 *		Returns 1 when ready, 0 at the deadline, -1 on error.
 */
static int
pgw_poll(int fd, short events, int64_t deadline_us)
{
	for (;;)
	{
		struct pollfd pfd = {.fd = fd,.events = events};
		int64_t		left = deadline_us - saas_now_us();
		int			rc;

		if (fd < 0)
			return -1;
		if (left <= 0)
			return 0;
		rc = poll(&pfd, 1, (int) ((left + 999) / 1000));
		if (rc > 0)
			return 1;
		if (rc < 0 && errno != EINTR)
			return -1;
	}
}

/*
 * pgw_notice
 *		Database notices and warnings go to the structured log instead of
 *		libpq's default plain fprintf(stderr): this includes the FATAL that
 *		a server sends to idle sessions when it shuts down.
 */
static void
pgw_notice(void *arg, const char *message)
{
	(void) arg;
	saas_log("warn", "database notice", message);
}

/*
 * pgw_error_text
 *		libpq's last error for conn, without its trailing newline.
 */
static void
pgw_error_text(PGconn *conn, char *err, size_t errlen)
{
	size_t		n;

	snprintf(err, errlen, "%s", conn ? PQerrorMessage(conn) : "out of memory");
	n = strlen(err);
	while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' '))
		err[--n] = '\0';
}

/*
 * saas_pgw_connect
 *		Open a connection described by dsn (a conninfo string or URI) before
 *		the deadline, in nonblocking mode with notices logged.  Returns NULL
 *		with a reason in err when it cannot.  application_name defaults to
 *		saas-http, so that the relay's sessions are recognisable in
 *		pg_stat_activity, unless the DSN names one.
 */
PGconn *
saas_pgw_connect(const char *dsn, int64_t deadline_us, char *err, size_t errlen)
{
	const char *const keys[] = {"dbname", "fallback_application_name", NULL};
	const char *const vals[] = {dsn, "saas-http", NULL};
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	PGconn	   *conn;

	conn = PQconnectStartParams(keys, vals, 1);
	if (conn == NULL || PQstatus(conn) == CONNECTION_BAD)
	{
		pgw_error_text(conn, err, errlen);
		PQfinish(conn);
		return NULL;
	}
	while (st != PGRES_POLLING_OK)
	{
		int			rc;

		if (st == PGRES_POLLING_FAILED)
		{
			pgw_error_text(conn, err, errlen);
			PQfinish(conn);
			return NULL;
		}
		/* the socket can change while libpq tries several hosts or addresses */
		rc = pgw_poll(PQsocket(conn),
					  st == PGRES_POLLING_READING ? POLLIN : POLLOUT, deadline_us);
		if (rc <= 0)
		{
			snprintf(err, errlen, "%s", rc == 0 ? "connection attempt timed out" :
					 "connection attempt failed while waiting on its socket");
			PQfinish(conn);
			return NULL;
		}
		st = PQconnectPoll(conn);
	}
	PQsetNoticeProcessor(conn, pgw_notice, NULL);
	if (PQsetnonblocking(conn, 1) != 0)
	{
		pgw_error_text(conn, err, errlen);
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

/*
 * saas_pgw_flush
 *		Push libpq's output buffer to the server.  While the socket is not
 *		writable the server may be waiting for us to read (it blocks on a full
 *		socket too), so input is consumed meanwhile, as libpq's documentation
 *		asks of nonblocking senders.
 */
SaasPgWait
saas_pgw_flush(PGconn *conn, int64_t deadline_us)
{
	for (;;)
	{
		int			rc = PQflush(conn);
		int			ready;

		if (rc == 0)
			return SAAS_PGW_OK;
		if (rc < 0)
			return SAAS_PGW_BROKEN;
		ready = pgw_poll(PQsocket(conn), POLLOUT | POLLIN, deadline_us);
		if (ready == 0)
			return SAAS_PGW_TIMEOUT;
		if (ready < 0 || !PQconsumeInput(conn))
			return SAAS_PGW_BROKEN;
	}
}

/*
 * saas_pgw_result
 *		Collect the results of the command just sent, until libpq says there
 *		are no more.  *res gets the first error result if there is one, else
 *		the first result; the caller clears it.  BROKEN when the connection
 *		died (any partial result is dropped: the answer is 503 either way),
 *		TIMEOUT at the deadline with the command still running.
 */
SaasPgWait
saas_pgw_result(PGconn *conn, int64_t deadline_us, PGresult **res)
{
	*res = NULL;
	for (;;)
	{
		int			ready;

		while (!PQisBusy(conn))
		{
			PGresult   *r = PQgetResult(conn);

			if (r == NULL)
			{
				if (PQstatus(conn) == CONNECTION_BAD || *res == NULL)
				{
					PQclear(*res);
					*res = NULL;
					return SAAS_PGW_BROKEN;
				}
				return SAAS_PGW_OK;
			}
			if (*res == NULL)
				*res = r;
			else if (PQresultStatus(r) == PGRES_FATAL_ERROR &&
					 PQresultStatus(*res) != PGRES_FATAL_ERROR)
			{
				PQclear(*res);
				*res = r;
			}
			else
				PQclear(r);
		}
		ready = pgw_poll(PQsocket(conn), POLLIN, deadline_us);
		if (ready <= 0 || !PQconsumeInput(conn))
		{
			PQclear(*res);
			*res = NULL;
			return ready == 0 ? SAAS_PGW_TIMEOUT : SAAS_PGW_BROKEN;
		}
	}
}

/*
 * saas_pgw_idle_ok
 *		Is this idle pooled connection still usable?  An idle session has
 *		nothing to say, so a readable socket means the server spoke first:
 *		typically a FATAL before it closed the session (shutdown, restart,
 *		pg_terminate_backend).  Reading until EOF shows libpq the closed
 *		socket.  This costs one poll(2) with a zero timeout and lets a
 *		request go to a fresh connection instead of failing on a dead one.
 */
bool
saas_pgw_idle_ok(PGconn *conn)
{
	int			round;

	for (round = 0; round < 8; round++)
	{
		struct pollfd pfd = {.fd = PQsocket(conn),.events = POLLIN};
		PGnotify   *note;
		int			rc;

		if (PQstatus(conn) != CONNECTION_OK ||
			PQtransactionStatus(conn) != PQTRANS_IDLE)
			return false;
		rc = poll(&pfd, 1, 0);
		if (rc == 0)
			return true;
		if (rc < 0)
			return errno == EINTR;
		if ((pfd.revents & (POLLERR | POLLNVAL)) || !PQconsumeInput(conn))
			return false;
		while ((note = PQnotifies(conn)) != NULL)
			PQfreemem(note);
	}
	/* a server that keeps talking to an idle session is not one to trust */
	return false;
}
