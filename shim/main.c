/*-------------------------------------------------------------------------
 *
 * main.c
 *	  saas-http: settings, startup, signals and a clean shutdown.
 *
 * Threads: libmicrohttpd runs a listening thread and one thread per HTTP
 * connection (relay.c); the pool may start short-lived cancel threads
 * (pool.c).  The main thread only waits for SIGTERM/SIGINT with
 * sigwait(): both signals are blocked before any thread exists, so every
 * thread inherits the mask and no handler ever runs in signal context.
 *
 * Shutdown lets in-flight requests finish: stop accepting (quiesce), answer
 * what is in flight with "Connection: close", wait until no request is
 * active (at most --timeout-ms plus two seconds, as no request may take
 * longer than its timeout), then stop the daemon and close the pool.  A
 * second signal cuts the wait short.
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "common.h"
#include "guard.h"
#include "log.h"
#include "negotiate.h"
#include "openapi.h"
#include "pool.h"
#include "relay.h"
#include "static.h"

#define SAAS_HTTP_VERSION "0.1.0"

static const char usage_text[] =
"saas-http: the HTTP relay of pg_saas; every API request becomes a call of\n"
"saas.http(method, path, headers, body) on a pooled PostgreSQL connection.\n"
"\n"
"Usage: saas-http [OPTION]...\n"
"\n"
"  --listen ADDR:PORT     address to bind (default 127.0.0.1:8080; [::1]:8080\n"
"                         for IPv6; port 0 picks a free port)   SAAS_HTTP_LISTEN\n"
"  --dsn CONNINFO         libpq connection string or URI (default: libpq's\n"
"                         defaults and PG* variables)            SAAS_HTTP_DSN\n"
"  --pool N               database connections (default 8)       SAAS_HTTP_POOL\n"
"  --max-body BYTES       largest request body (default 1048576) SAAS_HTTP_MAX_BODY\n"
"  --timeout-ms N         per request: waiting for a connection plus the\n"
"                         database call (default 5000)           SAAS_HTTP_TIMEOUT_MS\n"
"  --idle-timeout S       close a connection idle or stalled for S seconds\n"
"                         (default 15)                           SAAS_HTTP_IDLE_TIMEOUT\n"
"  --header-timeout S     a request's line and headers must be in within S\n"
"                         seconds of its first byte, else 408 (default 10)\n"
"                                                                SAAS_HTTP_HEADER_TIMEOUT\n"
"  --body-timeout S       its body within S seconds of the headers, else 408\n"
"                         (default 30)                           SAAS_HTTP_BODY_TIMEOUT\n"
"  --max-connections N    concurrent HTTP connections; more are answered 503\n"
"                         (default 256)                          SAAS_HTTP_MAX_CONNECTIONS\n"
"  --max-connections-per-client N\n"
"                         of which from one address (IPv6: one /64); more\n"
"                         are answered 503 (default 32)\n"
"                                                   SAAS_HTTP_MAX_CONNECTIONS_PER_CLIENT\n"
"  --openapi FILE         document served at GET /openapi.json (default:\n"
"                         ../docs/openapi.json from the binary's folder,\n"
"                         else the installed copy)               SAAS_HTTP_OPENAPI\n"
"  --static-dir DIR       folder of the dashboard (/admin/) and the API page\n"
"                         (/docs) (default: ../web from the binary's folder,\n"
"                         else the installed copy)            SAAS_HTTP_STATIC_DIR\n"
"  --cors-origins LIST    origins that browsers may call from, comma-separated\n"
"                         (https://app.example.com,http://localhost:3000),\n"
"                         or * for any (default: none)      SAAS_HTTP_CORS_ORIGINS\n"
"  --help                 show this help and exit\n"
"  --version              show the version and exit\n"
"\n"
"Also served: GET /metrics (Prometheus text format).  Logs: one logfmt line\n"
"per request on stderr.  SIGTERM or SIGINT: finish in-flight requests, exit 0.\n";

/* One option: its flag, its environment variable, where it goes. */
typedef struct MainOption
{
	const char *flag;
	const char *env;
	const char *value;
} MainOption;

enum
{
	OPT_LISTEN, OPT_DSN, OPT_POOL, OPT_MAX_BODY, OPT_TIMEOUT, OPT_IDLE,
	OPT_HEADER_TIMEOUT, OPT_BODY_TIMEOUT, OPT_MAXCONN, OPT_MAXCONN_CLIENT,
	OPT_OPENAPI, OPT_CORS, OPT_STATIC, N_OPTS,
	OPT_HELP, OPT_VERSION		/* not settings: getopt_long's codes only */
};

/*
 * main_die
 *		Report a startup error and exit 2 (bad usage) or 1 (cannot run).
 */
static void
main_die(int code, const char *msg, const char *detail)
{
	saas_log("fatal", msg, detail);
	exit(code);
}

/*
 * main_int
 *		Parse a decimal integer option within [lo, hi] or die naming it.
 */
static long long
main_int(const MainOption *opt, long long lo, long long hi)
{
	char	   *end;
	long long	v;

	errno = 0;
	v = strtoll(opt->value, &end, 10);
	if (errno != 0 || end == opt->value || *end != '\0' || v < lo || v > hi)
	{
		char		detail[256];

		snprintf(detail, sizeof(detail), "%s=\"%s\": expected an integer from %lld to %lld",
				 opt->flag, opt->value, lo, hi);
		main_die(2, "invalid option", detail);
	}
	return v;
}

/*
 * main_bad_flag
 *		Refuse an argument that is not one of the options, or an option
 *		without its value, with the usage text; exit 2.
 */
static void
main_bad_flag(const char *arg)
{
	fprintf(stderr, "saas-http: unknown or incomplete option \"%s\"\n\n%s", arg, usage_text);
	exit(2);
}

/*
 * main_flag_exact
 *		arg ("--name" or "--name=value", or a short option) spells its option
 *		in full: getopt_long would also take a unique abbreviation such as
 *		"--po", which the relay has never accepted.
 */
static bool
main_flag_exact(const char *arg, const struct option *long_opts)
{
	const struct option *o;
	size_t		n;

	if (strncmp(arg, "--", 2) != 0)
		return true;
	n = strcspn(arg + 2, "=");
	for (o = long_opts; o->name != NULL; o++)
		if (strlen(o->name) == n && strncmp(arg + 2, o->name, n) == 0)
			return true;
	return false;
}

/*
 * main_parse_args
 *		Fill cfg from defaults, then environment, then flags (flags win).
 *		getopt_long takes "--flag value" and "--flag=value"; arguments that
 *		are not options are refused, as are abbreviated flags.
 */
static void
main_parse_args(int argc, char **argv, SaasHttpConfig *cfg)
{
	MainOption	opts[N_OPTS] = {
		[OPT_LISTEN] = {"--listen", "SAAS_HTTP_LISTEN", "127.0.0.1:8080"},
		[OPT_DSN] = {"--dsn", "SAAS_HTTP_DSN", ""},
		[OPT_POOL] = {"--pool", "SAAS_HTTP_POOL", "8"},
		[OPT_MAX_BODY] = {"--max-body", "SAAS_HTTP_MAX_BODY", "1048576"},
		[OPT_TIMEOUT] = {"--timeout-ms", "SAAS_HTTP_TIMEOUT_MS", "5000"},
		[OPT_IDLE] = {"--idle-timeout", "SAAS_HTTP_IDLE_TIMEOUT", "15"},
		[OPT_HEADER_TIMEOUT] = {"--header-timeout", "SAAS_HTTP_HEADER_TIMEOUT", "10"},
		[OPT_BODY_TIMEOUT] = {"--body-timeout", "SAAS_HTTP_BODY_TIMEOUT", "30"},
		[OPT_MAXCONN] = {"--max-connections", "SAAS_HTTP_MAX_CONNECTIONS", "256"},
		[OPT_MAXCONN_CLIENT] = {"--max-connections-per-client",
		"SAAS_HTTP_MAX_CONNECTIONS_PER_CLIENT", "32"},
		[OPT_OPENAPI] = {"--openapi", "SAAS_HTTP_OPENAPI", NULL},
		[OPT_CORS] = {"--cors-origins", "SAAS_HTTP_CORS_ORIGINS", ""},
		[OPT_STATIC] = {"--static-dir", "SAAS_HTTP_STATIC_DIR", NULL},
	};
	static const struct option long_opts[] = {
		{"listen", required_argument, NULL, OPT_LISTEN},
		{"dsn", required_argument, NULL, OPT_DSN},
		{"pool", required_argument, NULL, OPT_POOL},
		{"max-body", required_argument, NULL, OPT_MAX_BODY},
		{"timeout-ms", required_argument, NULL, OPT_TIMEOUT},
		{"idle-timeout", required_argument, NULL, OPT_IDLE},
		{"header-timeout", required_argument, NULL, OPT_HEADER_TIMEOUT},
		{"body-timeout", required_argument, NULL, OPT_BODY_TIMEOUT},
		{"max-connections", required_argument, NULL, OPT_MAXCONN},
		{"max-connections-per-client", required_argument, NULL, OPT_MAXCONN_CLIENT},
		{"openapi", required_argument, NULL, OPT_OPENAPI},
		{"cors-origins", required_argument, NULL, OPT_CORS},
		{"static-dir", required_argument, NULL, OPT_STATIC},
		{"help", no_argument, NULL, OPT_HELP},
		{"version", no_argument, NULL, OPT_VERSION},
		{NULL, 0, NULL, 0}
	};
	const char *listen;
	const char *colon;
	const char *bad;
	int			c,
				k;

	for (k = 0; k < N_OPTS; k++)
	{
		const char *env = getenv(opts[k].env);

		if (env != NULL && env[0] != '\0')
			opts[k].value = env;
	}
	opterr = 0;					/* the errors are ours, worded as before */
	while ((c = getopt_long(argc, argv, "+h", long_opts, NULL)) != -1)
	{
		const char *arg = argv[optind - 1];

		/* "--flag value" leaves optind past the value: the flag is before it */
		if (optarg != NULL && optarg == arg && optind >= 2)
			arg = argv[optind - 2];
		if (c == '?' || !main_flag_exact(arg, long_opts))
			main_bad_flag(arg);
		else if (c == 'h' || c == OPT_HELP)
		{
			fputs(usage_text, stdout);
			exit(0);
		}
		else if (c == OPT_VERSION)
		{
			puts("saas-http " SAAS_HTTP_VERSION);
			exit(0);
		}
		else
			opts[c].value = optarg;
	}
	if (optind < argc)
		main_bad_flag(argv[optind]);

	/* ADDR:PORT, [V6ADDR]:PORT, or :PORT for the default address */
	listen = opts[OPT_LISTEN].value;
	if (listen[0] == '[')
	{
		const char *close = strchr(listen, ']');

		if (close == NULL || close[1] != ':')
			main_die(2, "invalid option", "--listen: expected [ADDRESS]:PORT");
		cfg->listen_host = strndup(listen + 1, (size_t) (close - listen - 1));
		colon = close + 1;
	}
	else
	{
		colon = strrchr(listen, ':');
		if (colon == NULL)
			main_die(2, "invalid option", "--listen: expected ADDRESS:PORT");
		cfg->listen_host = colon == listen ? strdup("127.0.0.1") :
			strndup(listen, (size_t) (colon - listen));
	}
	cfg->listen_port = strdup(colon + 1);
	cfg->dsn = strdup(opts[OPT_DSN].value);
	cfg->pool_size = (int) main_int(&opts[OPT_POOL], 1, 1000);
	cfg->max_body = (size_t) main_int(&opts[OPT_MAX_BODY], 1, 1LL << 30);
	cfg->timeout_ms = (int) main_int(&opts[OPT_TIMEOUT], 10, 3600000);
	cfg->idle_timeout_s = (int) main_int(&opts[OPT_IDLE], 1, 86400);
	cfg->header_timeout_s = (int) main_int(&opts[OPT_HEADER_TIMEOUT], 1, 3600);
	cfg->body_timeout_s = (int) main_int(&opts[OPT_BODY_TIMEOUT], 1, 86400);
	cfg->max_connections = (int) main_int(&opts[OPT_MAXCONN], 1, 100000);
	cfg->max_per_client = (int) main_int(&opts[OPT_MAXCONN_CLIENT], 1, 100000);
	cfg->openapi_path = opts[OPT_OPENAPI].value ? strdup(opts[OPT_OPENAPI].value) :
		saas_openapi_default_path();
	cfg->static_dir = opts[OPT_STATIC].value ? strdup(opts[OPT_STATIC].value) :
		saas_static_default_dir();
	if (!saas_cors_parse(opts[OPT_CORS].value, cfg, &bad))
	{
		char		detail[300];

		snprintf(detail, sizeof(detail),
				 "--cors-origins: \"%s\" is not an origin (scheme://host[:port]) or *", bad);
		main_die(2, "invalid option", detail);
	}
}

/*
 * main_mhd_logger
 *		libmicrohttpd's own messages (malformed requests, resource limits) as
 *		structured lines like the rest of the log.
 */
static void
main_mhd_logger(void *cls, const char *fmt, va_list ap)
{
	char		msg[512];
	size_t		n;
	SaasLogLine line;

	(void) cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	/* its error messages quote the HTML page they send: keep the words */
	if (strstr(msg, " ('<html>") != NULL)
		*strstr(msg, " ('<html>") = '\0';
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		msg[--n] = '\0';
	saas_logline_begin(&line, "warn");
	saas_logline_str(&line, "msg", msg);
	saas_logline_str(&line, "src", "microhttpd");
	saas_logline_end(&line);
}

/*
 * main_start_daemon
 *		Bind and start libmicrohttpd: thread per connection (a request may
 *		block on the database without holding up others), keep-alive by
 *		default, strict request parsing, and the relay's callbacks.  Its
 *		connection limit is above the relay's (guard.c answers the excess
 *		503; libmicrohttpd would drop it silently), and its memory per
 *		connection holds any head within the relay's limits (common.h).
 */
static struct MHD_Daemon *
main_start_daemon(const SaasHttpConfig *cfg, SaasRelay *relay)
{
	struct addrinfo hints = {0};
	struct addrinfo *ai = NULL;
	struct MHD_Daemon *daemon;
	unsigned int flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
		MHD_USE_POLL | MHD_USE_ITC | MHD_USE_ERROR_LOG;
	int			rc;

	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(cfg->listen_host, cfg->listen_port, &hints, &ai);
	if (rc != 0)
		main_die(2, "cannot resolve --listen address", gai_strerror(rc));
	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;

	daemon = MHD_start_daemon(flags, 0, NULL, NULL, saas_relay_handle, relay,
							  MHD_OPTION_EXTERNAL_LOGGER, main_mhd_logger, NULL,
							  MHD_OPTION_SOCK_ADDR, ai->ai_addr,
							  MHD_OPTION_URI_LOG_CALLBACK, saas_relay_begin, relay,
							  MHD_OPTION_NOTIFY_COMPLETED, saas_relay_completed, relay,
							  MHD_OPTION_NOTIFY_CONNECTION, saas_relay_connection, relay,
							  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) cfg->idle_timeout_s,
							  MHD_OPTION_CONNECTION_LIMIT, (unsigned int) saas_guard_mhd_limit(cfg),
							  MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) SAAS_CONN_MEMORY,
							  MHD_OPTION_STRICT_FOR_CLIENT, (int) 1,
							  MHD_OPTION_END);
	freeaddrinfo(ai);
	return daemon;
}

/*
 * main_log_listening
 *		The startup record; it names the port actually bound (--listen with
 *		port 0 picks one), which is how scripts and tests find the relay.
 */
static void
main_log_listening(const SaasHttpConfig *cfg, struct MHD_Daemon *daemon, int connected)
{
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT);
	char		addr[300];
	SaasLogLine line;

	snprintf(addr, sizeof(addr), strchr(cfg->listen_host, ':') ? "[%s]:%u" : "%s:%u",
			 cfg->listen_host, info ? (unsigned int) info->port : 0);
	saas_logline_begin(&line, "info");
	saas_logline_str(&line, "msg", "listening");
	saas_logline_str(&line, "addr", addr);
	saas_logline_int(&line, "pool", cfg->pool_size);
	saas_logline_int(&line, "connected", connected);
	saas_logline_int(&line, "max_body", (long long) cfg->max_body);
	saas_logline_int(&line, "timeout_ms", cfg->timeout_ms);
	saas_logline_int(&line, "max_connections", cfg->max_connections);
	saas_logline_int(&line, "per_client", cfg->max_per_client);
	saas_logline_int(&line, "header_timeout", cfg->header_timeout_s);
	saas_logline_int(&line, "body_timeout", cfg->body_timeout_s);
	saas_logline_str(&line, "version", SAAS_HTTP_VERSION);
	saas_logline_end(&line);
}

/*
 * main_drain
 *		After the first signal: stop accepting, let active requests finish
 *		(no request outlives --timeout-ms once its body is in, so the grace
 *		is that plus two seconds), unless a second signal comes.  Returns the
 *		requests still active when it gave up waiting.
 */
static int
main_drain(const SaasHttpConfig *cfg, SaasRelay *relay, struct MHD_Daemon *daemon,
		   const sigset_t *sigs)
{
	int64_t		grace_end = saas_now_us() + 1000LL * (cfg->timeout_ms + 2000);
	MHD_socket	listen_fd;

	atomic_store(&relay->draining, true);
	listen_fd = MHD_quiesce_daemon(daemon);
	if (listen_fd != MHD_INVALID_SOCKET)
		close(listen_fd);
	while (atomic_load(&relay->active) > 0 && saas_now_us() < grace_end)
	{
		struct timespec tick = {0, 20 * 1000 * 1000};

		if (sigtimedwait(sigs, NULL, &tick) > 0)
		{
			saas_log("warn", "second signal: stopping without waiting", NULL);
			break;
		}
	}
	return atomic_load(&relay->active);
}

/*
 * main
 *		Parse settings, connect the pool, serve until SIGTERM/SIGINT, then
 *		drain and exit 0.
 */
int
main(int argc, char **argv)
{
	SaasHttpConfig cfg = {0};
	SaasRelay	relay = {0};
	struct MHD_Daemon *daemon;
	sigset_t	sigs;
	int			sig = 0;
	int			connected;
	int			left;
	char		detail[512];

	main_parse_args(argc, argv, &cfg);

	/* before any thread exists, so that all of them inherit the mask */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	relay.config = &cfg;
	relay.pool = saas_pool_create(cfg.dsn, cfg.pool_size, cfg.timeout_ms);
	if (relay.pool == NULL)
		main_die(1, "out of memory", NULL);
	relay.guard = saas_guard_create(&cfg);
	if (relay.guard == NULL || !saas_guard_start(relay.guard))
		main_die(1, "cannot start the connection watchdog", NULL);
	if (!saas_openapi_load(cfg.openapi_path, &relay.openapi, &relay.openapi_len))
		saas_log("warn", "OpenAPI document not found; GET /openapi.json will answer 404",
				 cfg.openapi_path);

	relay.static_root = saas_static_resolve(cfg.static_dir);
	if (relay.static_root == NULL)
		saas_log("warn", "static folder not found; /admin/ and /docs will answer 404",
				 cfg.static_dir);

	connected = saas_pool_warm(relay.pool,
							   saas_now_us() + 1000LL * (cfg.timeout_ms < 5000 ? cfg.timeout_ms : 5000));
	if (connected < cfg.pool_size)
		saas_log("warn", "not every pooled connection could be opened at startup; "
				 "requests will be answered 503 until the database is reachable", NULL);

	daemon = main_start_daemon(&cfg, &relay);
	if (daemon == NULL)
	{
		snprintf(detail, sizeof(detail), "%s:%s", cfg.listen_host, cfg.listen_port);
		main_die(1, "cannot listen (address in use or not permitted?)", detail);
	}
	main_log_listening(&cfg, daemon, connected);

	while (sigwait(&sigs, &sig) != 0)
		;
	saas_log("info", sig == SIGTERM ? "SIGTERM: finishing in-flight requests" :
			 "SIGINT: finishing in-flight requests", NULL);
	left = main_drain(&cfg, &relay, daemon, &sigs);
	MHD_stop_daemon(daemon);
	saas_guard_destroy(relay.guard);
	saas_pool_destroy(relay.pool);
	snprintf(detail, sizeof(detail), "%d request(s) were still active and were cut off", left);
	saas_log("info", "stopped", left > 0 ? detail : NULL);

	free(relay.openapi);
	free(cfg.listen_host);
	free(cfg.listen_port);
	free(cfg.dsn);
	free(cfg.openapi_path);
	free(cfg.static_dir);
	free(relay.static_root);
	for (int i = 0; i < cfg.n_cors_origins; i++)
		free(cfg.cors_origins[i]);
	free(cfg.cors_origins);
	return 0;
}
