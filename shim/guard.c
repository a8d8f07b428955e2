/*-------------------------------------------------------------------------
 *
 * guard.c
 *	  Connection limits (in total and per client address) and the absolute
 *	  deadlines of a request's headers and body.
 *
 * Every connection costs a thread (main.c), so whoever holds connections
 * holds the relay.  Two things keep a few clients from starving the rest:
 *
 * Limits.  At most --max-connections connections are served, and at most
 * --max-connections-per-client from one client address (an IPv4 address,
 * or the /64 prefix of an IPv6 one: one host holds a whole /64).  A
 * connection over either limit is answered 503 at once and closed, rather
 * than dropped in silence or left waiting in the listen backlog.
 * libmicrohttpd's own limits would drop it silently, so its connection limit
 * is set above the relay's (saas_guard_mhd_limit) and the answer is written
 * here, in the connection-start callback, straight to the new socket: the
 * message is short enough for an empty send buffer, and shutting the socket
 * down makes libmicrohttpd's thread for it see the end at once.
 *
 * Deadlines.  libmicrohttpd's timeout is an idle timeout: a client sending a
 * header line every few seconds is never idle, so it would hold its
 * connection forever.  Here, a request's line and headers must be in within
 * --header-timeout of its first byte, and its body within --body-timeout of
 * the end of the headers, whatever the pace.  A watchdog thread checks every
 * connection a few times a second; at a deadline it writes a 408 to the
 * socket and shuts it down, which wakes libmicrohttpd's thread, and the
 * relay's next call for that request (saas_guard_enter) learns that it was
 * cut and gives up.  The 408 is written only while libmicrohttpd is reading
 * (phases HEADERS and BODY), so it never interleaves with an answer; the
 * relay's own answers to heads over its limits take the same way out
 * (saas_guard_answer), from the connection's thread.
 *
 * "First byte": between requests a connection is idle (its idle timeout
 * applies, as before), and the watchdog notices a new request by the TCP
 * byte count of the socket (TCP_INFO), since libmicrohttpd tells nothing
 * until the request line is complete, which a slow client may never send.
 *
 * The lock covers the list of connections, the per-client counts and every
 * use of a connection's socket by the watchdog; libmicrohttpd reports a
 * connection's end (saas_guard_close, under the lock) before it closes the
 * socket, so the watchdog never touches a descriptor that was reused.
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <netinet/in.h>
#include <linux/tcp.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "guard.h"
#include "http_errors.h"
#include "log.h"
#include "metrics.h"

/* How often the watchdog looks: the deadlines' granularity. */
#define GUARD_TICK_US		(200 * 1000)

/* Cuts logged per tick; more wait for the next tick. */
#define GUARD_CUTS_PER_TICK 64

/*
 * Connections libmicrohttpd accepts beyond --max-connections, only to be
 * answered 503: they live for microseconds, so a small reserve suffices;
 * past it, connections wait in the listen backlog until one ends.
 */
#define GUARD_REFUSE_RESERVE 64

/* Open connections per client key; count 0 marks an empty slot. */
typedef struct GuardClient
{
	uint8_t		key[16];
	int			count;
} GuardClient;

struct SaasGuard
{
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_t	thread;
	bool		running;
	bool		stopping;
	int			max_total;
	int			max_per_client;
	int64_t		header_us;
	int64_t		body_us;
	int			open;			/* connections accepted and not closed */
	SaasConn   *conns;			/* all of them, for the watchdog */
	GuardClient *clients;		/* open addressing, linear probing */
	size_t		mask;			/* slots - 1; slots >= 2 * max_total */
	uint64_t	seed;			/* so that slot clashes cannot be planned */
};

/* A cut to log once the lock is released. */
typedef struct GuardCut
{
	char		ip[INET6_ADDRSTRLEN];
	char		rid[SAAS_REQUEST_ID_MAX + 1];
	int64_t		elapsed_us;
} GuardCut;

/*
 * saas_guard_mhd_limit
 *		libmicrohttpd's connection limit: the relay's plus the reserve of
 *		connections accepted only to be refused (see GUARD_REFUSE_RESERVE).
 */
int
saas_guard_mhd_limit(const SaasHttpConfig *cfg)
{
	return cfg->max_connections + GUARD_REFUSE_RESERVE;
}

/*
 * saas_guard_create
 *		The guard for cfg's limits, with an empty client table big enough
 *		to stay at most half full.  NULL when out of memory.
 */
SaasGuard *
saas_guard_create(const SaasHttpConfig *cfg)
{
	SaasGuard  *g = calloc(1, sizeof(SaasGuard));
	pthread_condattr_t attr;
	size_t		slots = 16;

	if (g == NULL)
		return NULL;
	while (slots < 2 * (size_t) cfg->max_connections)
		slots *= 2;
	g->clients = calloc(slots, sizeof(GuardClient));
	if (g->clients == NULL)
	{
		free(g);
		return NULL;
	}
	g->mask = slots - 1;
	g->max_total = cfg->max_connections;
	g->max_per_client = cfg->max_per_client;
	g->header_us = 1000000LL * cfg->header_timeout_s;
	g->body_us = 1000000LL * cfg->body_timeout_s;
	if (getrandom(&g->seed, sizeof(g->seed), 0) != (ssize_t) sizeof(g->seed))
		g->seed = (uint64_t) saas_now_us() * 0x9E3779B97F4A7C15ULL;
	pthread_mutex_init(&g->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&g->wake, &attr);
	pthread_condattr_destroy(&attr);
	return g;
}

/*
 * guard_client_key
 *		The per-client key of an address, and the address as text for the
 *		log.  IPv4 and IPv4-mapped IPv6 are one space (::ffff:a.b.c.d); other
 *		IPv6 addresses count by their /64, which one host may own whole.
 */
static void
guard_client_key(const struct sockaddr *sa, uint8_t key[16], char *ip, size_t iplen)
{
	static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	memset(key, 0, 16);
	snprintf(ip, iplen, "unknown");
	if (sa != NULL && sa->sa_family == AF_INET)
	{
		const struct sockaddr_in *in = (const struct sockaddr_in *) sa;

		memcpy(key, v4mapped, 12);
		memcpy(key + 12, &in->sin_addr, 4);
		inet_ntop(AF_INET, &in->sin_addr, ip, (socklen_t) iplen);
	}
	else if (sa != NULL && sa->sa_family == AF_INET6)
	{
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) sa;

		memcpy(key, &in6->sin6_addr, 16);
		if (memcmp(key, v4mapped, 12) != 0)
			memset(key + 8, 0, 8);
		inet_ntop(AF_INET6, &in6->sin6_addr, ip, (socklen_t) iplen);
	}
}

/*
 * guard_home
 *		The home slot of a key: a keyed mix, so that nobody can pick
 *		addresses that crowd one run of slots.
 */
static size_t
guard_home(const SaasGuard *g, const uint8_t key[16])
{
	uint64_t	a,
				b,
				h;

	memcpy(&a, key, 8);
	memcpy(&b, key + 8, 8);
	h = (a ^ g->seed) * 0x9E3779B97F4A7C15ULL;
	h ^= h >> 29;
	h = (h ^ b) * 0xBF58476D1CE4E5B9ULL;
	h ^= h >> 32;
	return (size_t) h & g->mask;
}

/*
 * guard_slot
 *		The slot holding key, or the empty slot where it would go.  The
 *		table is never more than half full, so the probe ends.
 */
static size_t
guard_slot(const SaasGuard *g, const uint8_t key[16])
{
	size_t		i = guard_home(g, key);

	while (g->clients[i].count != 0 && memcmp(g->clients[i].key, key, 16) != 0)
		i = (i + 1) & g->mask;
	return i;
}

/*
 * guard_slot_remove
 *		Empty slot i and shift later members of its run back, so that every
 *		key stays reachable from its home slot without tombstones.
 */
static void
guard_slot_remove(SaasGuard *g, size_t i)
{
	size_t		j = i;

	g->clients[i].count = 0;
	for (;;)
	{
		size_t		home;

		j = (j + 1) & g->mask;
		if (g->clients[j].count == 0)
			return;
		home = guard_home(g, g->clients[j].key);
		/* stays if its home lies cyclically in (i, j] */
		if ((i < j) ? (home > i && home <= j) : (home > i || home <= j))
			continue;
		g->clients[i] = g->clients[j];
		g->clients[j].count = 0;
		i = j;
	}
}

/*
 * guard_send_and_shut
 *		Write a complete answer to a socket libmicrohttpd is reading from,
 *		then shut it down both ways: the client gets the answer and the end
 *		of the stream, libmicrohttpd's thread wakes to an end of input and
 *		closes the connection.  Never blocks.
 */
static size_t
guard_send_and_shut(int fd, SaasRelayError err, const char *rid)
{
	char		msg[SAAS_ERROR_RAW_MAX];
	size_t		body_len = 0;
	size_t		len = saas_error_raw(err, rid, msg, sizeof(msg), &body_len);

	if (len > 0)
		(void) send(fd, msg, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	(void) shutdown(fd, SHUT_RDWR);
	return body_len;
}

/*
 * guard_log_answer
 *		The access line of an answer the relay's request code never saw: a
 *		refused connection, or a request cut off before its request line was
 *		complete.  Same fields as relay.c's, so one query finds them all.
 */
static void
guard_log_answer(const char *ip, const char *rid, SaasRelayError err, const char *end,
				 int64_t elapsed_us)
{
	SaasLogLine line;

	saas_logline_begin(&line, "info");
	saas_logline_str(&line, "msg", "request");
	saas_logline_str(&line, "rid", rid);
	saas_logline_str(&line, "ip", ip);
	saas_logline_int(&line, "status", saas_error_status(err));
	saas_logline_ms(&line, "ms", elapsed_us);
	saas_logline_str(&line, "error", saas_error_code(err));
	saas_logline_str(&line, "end", end);
	saas_logline_end(&line);
}

/*
 * guard_count_cut
 *		A 408 for a request whose line never came in, counted like the
 *		relay's answers (route "other": there is no path to file it under).
 */
static void
guard_count_cut(int64_t elapsed_us)
{
	saas_metrics_request(saas_route_of(""), "", saas_error_status(SAAS_ERR_TIMEOUT), elapsed_us);
}

/*
 * saas_guard_open
 *		Connection-start callback's half: count the connection in, or refuse
 *		it with a 503 when the relay or its client address has as many open
 *		as allowed.  Returns the connection's state, or NULL when refused (the
 *		answer is sent and the socket shut; libmicrohttpd closes it next).
 */
SaasConn *
saas_guard_open(SaasGuard *g, struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ai =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const union MHD_ConnectionInfo *fi =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	SaasConn   *c = calloc(1, sizeof(SaasConn));
	uint8_t		key[16];
	char		ip[INET6_ADDRSTRLEN];
	char		rid[SAAS_REQUEST_ID_MAX + 1];
	SaasRelayError refusal = SAAS_ERR_CONN_LIMIT;
	bool		refused = true;

	guard_client_key(ai ? ai->client_addr : NULL, key, ip, sizeof(ip));
	if (fi == NULL)
	{
		free(c);
		return NULL;			/* cannot happen: then it is not a socket */
	}
	pthread_mutex_lock(&g->lock);
	if (c != NULL && g->open < g->max_total)
	{
		size_t		i = guard_slot(g, key);

		if (g->clients[i].count >= g->max_per_client)
			refusal = SAAS_ERR_CLIENT_CONN_LIMIT;
		else
		{
			memcpy(g->clients[i].key, key, 16);
			g->clients[i].count++;
			g->open++;
			c->fd = fi->connect_fd;
			memcpy(c->client, key, 16);
			memcpy(c->ip, ip, sizeof(ip));
			c->phase = SAAS_PHASE_IDLE;
			c->phase_start_us = saas_now_us();
			c->bytes_idle = 0;	/* a new socket: any byte starts a request */
			c->bytes_known = true;
			c->next = g->conns;
			if (g->conns != NULL)
				g->conns->prev = c;
			g->conns = c;
			refused = false;
		}
	}
	pthread_mutex_unlock(&g->lock);

	if (!refused)
	{
		saas_metrics_connections(1);
		return c;
	}
	free(c);
	saas_request_id_generate(rid);
	guard_send_and_shut(fi->connect_fd, refusal, rid);
	guard_log_answer(ip, rid, refusal, refusal == SAAS_ERR_CLIENT_CONN_LIMIT ?
					 "per_client_limit" : "connection_limit", 0);
	saas_metrics_refused(refusal == SAAS_ERR_CLIENT_CONN_LIMIT);
	return NULL;
}

/*
 * saas_guard_close
 *		Connection-end callback's half, before libmicrohttpd closes the
 *		socket: count the connection out and forget it.
 */
void
saas_guard_close(SaasGuard *g, SaasConn *c)
{
	size_t		i;

	pthread_mutex_lock(&g->lock);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		g->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	i = guard_slot(g, c->client);
	if (g->clients[i].count > 0 && --g->clients[i].count == 0)
		guard_slot_remove(g, i);
	g->open--;
	pthread_mutex_unlock(&g->lock);
	saas_metrics_connections(-1);
	free(c);
}

/*
 * guard_tcp_bytes_in
 *		Bytes the kernel has received on the socket so far, read or not
 *		(Linux TCP_INFO, 4.1 and later).  False when it cannot tell.
 */
static bool
guard_tcp_bytes_in(int fd, uint64_t *bytes)
{
	struct tcp_info ti;
	socklen_t	len = sizeof(ti);

	memset(&ti, 0, sizeof(ti));
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
		len < offsetof(struct tcp_info, tcpi_bytes_received) + sizeof(ti.tcpi_bytes_received))
		return false;
	*bytes = ti.tcpi_bytes_received;
	return true;
}

/*
 * saas_guard_enter
 *		The relay moves a connection's request to another phase: HEADERS
 *		when its request line is in (the deadline keeps counting from the
 *		first byte if the watchdog saw it), BODY when the headers are in
 *		(rid: the request's id, for a 408), ANSWER when the body is in or an
 *		answer is queued, IDLE when the answer is sent.  False when the
 *		connection was cut at a deadline: the caller must give up on it.
 */
bool
saas_guard_enter(SaasGuard *g, SaasConn *c, SaasPhase phase, const char *rid)
{
	uint64_t	bytes = 0;
	bool		known = phase == SAAS_PHASE_IDLE && guard_tcp_bytes_in(c->fd, &bytes);
	bool		ok;

	pthread_mutex_lock(&g->lock);
	ok = !c->cut;
	if (ok)
	{
		/* HEADERS after HEADERS: the watchdog saw the first byte; keep it */
		if (phase != c->phase)
			c->phase_start_us = saas_now_us();
		if (phase == SAAS_PHASE_HEADERS)
		{
			c->request_begun = true;
			c->rid[0] = '\0';
		}
		else if (phase == SAAS_PHASE_IDLE)
		{
			c->request_begun = false;
			c->bytes_idle = bytes;
			c->bytes_known = known;
		}
		if (rid != NULL)
			snprintf(c->rid, sizeof(c->rid), "%s", rid);
		c->phase = phase;
	}
	pthread_mutex_unlock(&g->lock);
	return ok;
}

/*
 * saas_guard_answer
 *		Write one of the relay's errors straight to the connection's socket
 *		and shut it, from the connection's own thread while libmicrohttpd
 *		waits on the access handler, so that nothing else writes: for a head
 *		that left libmicrohttpd no memory to build an answer with (relay.c).
 *		Returns the length of the body sent, or -1 when a deadline cut the
 *		request first (its 408 is out).
 */
long
saas_guard_answer(SaasGuard *g, SaasConn *c, SaasRelayError err, const char *rid)
{
	if (!saas_guard_enter(g, c, SAAS_PHASE_ANSWER, NULL))
		return -1;
	return (long) guard_send_and_shut(c->fd, err, rid);
}

/*
 * saas_guard_was_cut
 *		Did a deadline end this connection's request?  If so, in which phase
 *		and under which request id the 408 went out.
 */
bool
saas_guard_was_cut(SaasGuard *g, SaasConn *c, SaasPhase *phase,
				   char rid[SAAS_REQUEST_ID_MAX + 1])
{
	bool		cut;

	pthread_mutex_lock(&g->lock);
	cut = c->cut;
	if (cut)
	{
		*phase = c->cut_phase;
		memcpy(rid, c->rid, SAAS_REQUEST_ID_MAX + 1);
	}
	pthread_mutex_unlock(&g->lock);
	return cut;
}

/*
 * guard_check
 *		One connection at one tick, under the lock: notice the first byte of
 *		a request on an idle connection, and cut a request past its deadline.
 *		Returns true when it cut one that the relay will not log (no request
 *		line yet), filling *log.
 */
static bool
guard_check(SaasGuard *g, SaasConn *c, int64_t now, GuardCut *log)
{
	int64_t		limit;

	if (c->cut)
		return false;
	if (c->phase == SAAS_PHASE_IDLE)
	{
		uint64_t	bytes;

		if (c->bytes_known && guard_tcp_bytes_in(c->fd, &bytes) && bytes == c->bytes_idle)
			return false;		/* still idle: libmicrohttpd's idle timeout rules */
		c->phase = SAAS_PHASE_HEADERS;
		c->phase_start_us = now;
		return false;
	}
	if (c->phase == SAAS_PHASE_HEADERS)
		limit = g->header_us;
	else if (c->phase == SAAS_PHASE_BODY)
		limit = g->body_us;
	else
		return false;
	if (now - c->phase_start_us < limit)
		return false;

	c->cut = true;
	c->cut_phase = c->phase;
	if (c->rid[0] == '\0')
		saas_request_id_generate(c->rid);
	guard_send_and_shut(c->fd, SAAS_ERR_TIMEOUT, c->rid);
	saas_metrics_deadline(c->phase == SAAS_PHASE_BODY);
	if (c->request_begun)
		return false;			/* relay.c logs it with its request */
	memcpy(log->ip, c->ip, sizeof(log->ip));
	memcpy(log->rid, c->rid, sizeof(log->rid));
	log->elapsed_us = now - c->phase_start_us;
	return true;
}

/*
 * guard_watchdog
 *		The watchdog thread: every tick, check every connection; log the
 *		cuts after releasing the lock (a slow stderr must not hold up
 *		accepting connections).
 */
static void *
guard_watchdog(void *arg)
{
	SaasGuard  *g = arg;
	GuardCut	cuts[GUARD_CUTS_PER_TICK];

	pthread_mutex_lock(&g->lock);
	while (!g->stopping)
	{
		struct timespec until;
		int64_t		now = saas_now_us() + GUARD_TICK_US;
		int			n = 0;
		int			i;
		SaasConn   *c;

		until.tv_sec = (time_t) (now / 1000000);
		until.tv_nsec = (long) (now % 1000000) * 1000;
		while (!g->stopping &&
			   pthread_cond_timedwait(&g->wake, &g->lock, &until) != ETIMEDOUT)
			;
		if (g->stopping)
			break;
		now = saas_now_us();
		for (c = g->conns; c != NULL && n < GUARD_CUTS_PER_TICK; c = c->next)
			if (guard_check(g, c, now, &cuts[n]))
				n++;
		pthread_mutex_unlock(&g->lock);
		for (i = 0; i < n; i++)
		{
			guard_log_answer(cuts[i].ip, cuts[i].rid, SAAS_ERR_TIMEOUT, "header_deadline",
							 cuts[i].elapsed_us);
			guard_count_cut(cuts[i].elapsed_us);
		}
		pthread_mutex_lock(&g->lock);
	}
	pthread_mutex_unlock(&g->lock);
	return NULL;
}

/*
 * saas_guard_start
 *		Start the watchdog.  False if the thread cannot be created.
 */
bool
saas_guard_start(SaasGuard *g)
{
	g->running = pthread_create(&g->thread, NULL, guard_watchdog, g) == 0;
	return g->running;
}

/*
 * saas_guard_destroy
 *		Stop the watchdog and free the guard; after libmicrohttpd has
 *		stopped, so that no connection is left.
 */
void
saas_guard_destroy(SaasGuard *g)
{
	if (g == NULL)
		return;
	pthread_mutex_lock(&g->lock);
	g->stopping = true;
	pthread_cond_signal(&g->wake);
	pthread_mutex_unlock(&g->lock);
	if (g->running)
		pthread_join(g->thread, NULL);
	pthread_cond_destroy(&g->wake);
	pthread_mutex_destroy(&g->lock);
	free(g->clients);
	free(g);
}
