/*-------------------------------------------------------------------------
 *
 * main.c
 *	  saas-sim: options, start-up, the flap timer and a clean stop.
 *
 * The main thread blocks SIGINT and SIGTERM before any other thread starts
 * (so every thread inherits the mask) and then waits for them with
 * sigtimedwait, which doubles as the 50 ms tick that opens and closes the
 * ports of flapping services.
 *
 *-------------------------------------------------------------------------
 */
#include "sim.h"
#include "idp.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

/* main_usage: --help */
static void
main_usage(FILE *out)
{
	fprintf(out,
			"saas-sim: the simulated external services of pg_saas\n"
			"\n"
			"Usage:\n"
			"  saas-sim [OPTIONS]\n"
			"  saas-sim emit --service NAME [EMIT OPTIONS]   (saas-sim emit --help)\n"
			"\n"
			"Ports (all on --bind, 127.0.0.1 by default; 0 picks a free port):\n"
			"  --control-port N         control API /_sim/* (default 4000)\n"
			"  --user-port N            user-service, base /v1 (default 4001)\n"
			"  --payment-port N         payment-service, base /v2 (default 4002)\n"
			"  --communication-port N   communication-service, base /v1 (default 4003)\n"
			"  --oidc-port N            identity-provider, an OpenID Connect provider (default 4004)\n"
			"  --bind ADDR              IPv4 address to listen on (default 127.0.0.1)\n"
			"\n"
			"Webhooks:\n"
			"  --webhook-url URL        deliveries go to URL/{service}\n"
			"                           (default http://127.0.0.1:8080/webhooks; \"none\" disables)\n"
			"  --secret SERVICE=whsec_… signing secret of a service (repeatable); default\n"
			"                           whsec_ + base64(secret_key of integration_config.json)\n"
			"  --duplicate-rate F       share of deliveries sent twice (0..1, default 0)\n"
			"  --shuffle                deliver out of order (random delay and pick)\n"
			"  --shuffle-window-ms N    the random delay's range with --shuffle (default 250)\n"
			"  --webhook-retry-base-ms N  first retry delay (default 500; then x the service's\n"
			"                           backoff_multiplier, capped at its max_backoff_seconds)\n"
			"  --webhook-max-attempts N attempts before a delivery is given up (default 8)\n"
			"  --webhook-timeout-ms N   time allowed for one delivery (default 5000)\n"
			"\n"
			"Identity provider (OpenID Connect):\n"
			"  --oidc-issuer URL        its issuer (default http://127.0.0.1:<oidc port>)\n"
			"  --oidc-client ID:SECRET:REDIRECT_URI  a registered client (repeatable; the same\n"
			"                           ID again adds a redirect URI)\n"
			"  --oidc-code-ttl S        lifetime of an authorization code (default 60)\n"
			"  --oidc-id-token-ttl S    exp - iat of id_tokens (default 300)\n"
			"\n"
			"Behaviour:\n"
			"  --seed N                 seed of every PRNG (ids, faults, shuffles); default: time\n"
			"  --seed-data PATH         platform_data.json to seed organizations and users\n"
			"                           (default: ../shared/reference-data/platform_data.json\n"
			"                           from the working directory, if it exists)\n"
			"  --faults SERVICE=SPEC    start-up faults, e.g. user-service=error_rate=0.3,latency_ms=50\n"
			"                           (repeatable; keys as in POST /_sim/faults)\n"
			"  --max-body BYTES         largest request body accepted (default 1048576)\n"
			"  --quiet                  no per-request log lines\n"
			"  --help, --version\n");
}

enum
{
	OPT_CONTROL = 256, OPT_USER, OPT_PAYMENT, OPT_COMM, OPT_BIND, OPT_WEBHOOK_URL, OPT_SECRET,
	OPT_SEED, OPT_SEED_DATA, OPT_FAULTS, OPT_DUP, OPT_SHUFFLE, OPT_SHUFFLE_WIN, OPT_RETRY_BASE,
	OPT_MAX_ATTEMPTS, OPT_TIMEOUT, OPT_MAX_BODY, OPT_QUIET, OPT_HELP, OPT_VERSION,
	OPT_OIDC_PORT, OPT_OIDC_ISSUER, OPT_OIDC_CLIENT, OPT_OIDC_CODE_TTL, OPT_OIDC_ID_TTL
};

/* main_int: an integer option value or exit 64 */
static long
main_int(const char *opt, const char *val, long min, long max)
{
	long		v;

	if (!sim_parse_int(val, min, max, &v))
	{
		fprintf(stderr, "saas-sim: %s needs an integer from %ld to %ld, not \"%s\"\n", opt, min, max, val);
		exit(64);
	}
	return v;
}

/* main_split: "SERVICE=rest" into the service and rest, or exit 64 */
static SimService *
main_split(const char *opt, const char *val, const char **rest)
{
	const char *eq = strchr(val, '=');
	char	   *name;
	SimService *svc;

	if (eq == NULL)
	{
		fprintf(stderr, "saas-sim: %s expects SERVICE=VALUE, not \"%s\"\n", opt, val);
		exit(64);
	}
	name = sim_strndup(val, (size_t) (eq - val));
	svc = sim_service_by_name(name);
	if (svc == NULL)
	{
		fprintf(stderr, "saas-sim: %s: unknown service \"%s\"\n", opt, name);
		free(name);
		exit(64);
	}
	free(name);
	*rest = eq + 1;
	return svc;
}

/* main_parse: the command line into sim_config, the services and the webhook settings */
static void
main_parse(int argc, char **argv)
{
	static const struct option opts[] = {
		{"control-port", required_argument, NULL, OPT_CONTROL},
		{"user-port", required_argument, NULL, OPT_USER},
		{"payment-port", required_argument, NULL, OPT_PAYMENT},
		{"communication-port", required_argument, NULL, OPT_COMM},
		{"oidc-port", required_argument, NULL, OPT_OIDC_PORT},
		{"oidc-issuer", required_argument, NULL, OPT_OIDC_ISSUER},
		{"oidc-client", required_argument, NULL, OPT_OIDC_CLIENT},
		{"oidc-code-ttl", required_argument, NULL, OPT_OIDC_CODE_TTL},
		{"oidc-id-token-ttl", required_argument, NULL, OPT_OIDC_ID_TTL},
		{"bind", required_argument, NULL, OPT_BIND},
		{"webhook-url", required_argument, NULL, OPT_WEBHOOK_URL},
		{"secret", required_argument, NULL, OPT_SECRET},
		{"seed", required_argument, NULL, OPT_SEED},
		{"seed-data", required_argument, NULL, OPT_SEED_DATA},
		{"faults", required_argument, NULL, OPT_FAULTS},
		{"duplicate-rate", required_argument, NULL, OPT_DUP},
		{"shuffle", no_argument, NULL, OPT_SHUFFLE},
		{"shuffle-window-ms", required_argument, NULL, OPT_SHUFFLE_WIN},
		{"webhook-retry-base-ms", required_argument, NULL, OPT_RETRY_BASE},
		{"webhook-max-attempts", required_argument, NULL, OPT_MAX_ATTEMPTS},
		{"webhook-timeout-ms", required_argument, NULL, OPT_TIMEOUT},
		{"max-body", required_argument, NULL, OPT_MAX_BODY},
		{"quiet", no_argument, NULL, OPT_QUIET},
		{"help", no_argument, NULL, OPT_HELP},
		{"version", no_argument, NULL, OPT_VERSION},
		{NULL, 0, NULL, 0}
	};
	SimWebhookSettings *ws = &sim_webhook_start_settings;
	int			c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1)
	{
		const char *rest;
		SimService *svc;
		char		err[160];
		double		d;

		switch (c)
		{
			case OPT_CONTROL:
				sim_config.control_port = (int) main_int("--control-port", optarg, 0, 65535);
				break;
			case OPT_USER:
				sim_services[SIM_USER].port = (int) main_int("--user-port", optarg, 0, 65535);
				break;
			case OPT_PAYMENT:
				sim_services[SIM_PAYMENT].port = (int) main_int("--payment-port", optarg, 0, 65535);
				break;
			case OPT_COMM:
				sim_services[SIM_COMM].port = (int) main_int("--communication-port", optarg, 0, 65535);
				break;
			case OPT_OIDC_PORT:
				sim_services[SIM_IDP].port = (int) main_int("--oidc-port", optarg, 0, 65535);
				break;
			case OPT_OIDC_ISSUER:
				if (!sim_idp_set_issuer(optarg, err, sizeof(err)))
				{
					fprintf(stderr, "saas-sim: --oidc-issuer: %s\n", err);
					exit(64);
				}
				break;
			case OPT_OIDC_CLIENT:
				if (!sim_idp_add_flag_client(optarg, err, sizeof(err)))
				{
					fprintf(stderr, "saas-sim: --oidc-client: %s\n", err);
					exit(64);
				}
				break;
			case OPT_OIDC_CODE_TTL:
				sim_idp_config.code_ttl_s = (int) main_int("--oidc-code-ttl", optarg, 1, 86400);
				break;
			case OPT_OIDC_ID_TTL:
				sim_idp_config.id_token_ttl_s = (int) main_int("--oidc-id-token-ttl", optarg, 1, 86400 * 30);
				break;
			case OPT_BIND:
				sim_config.bind_address = optarg;
				break;
			case OPT_WEBHOOK_URL:
				if (strcmp(optarg, "none") == 0)
					ws->enabled = false;
				else if ((strncmp(optarg, "http://", 7) != 0 && strncmp(optarg, "https://", 8) != 0) ||
						 strlen(optarg) >= sizeof(ws->url))
				{
					fprintf(stderr, "saas-sim: --webhook-url must be an http:// or https:// URL or \"none\"\n");
					exit(64);
				}
				else
				{
					size_t		n = strlen(optarg);

					memcpy(ws->url, optarg, n + 1);
					while (n > 0 && ws->url[n - 1] == '/')
						ws->url[--n] = '\0';
				}
				break;
			case OPT_SECRET:
				svc = main_split("--secret", optarg, &rest);
				free(svc->secret_key);
				free(svc->secret);
				svc->secret_key = NULL;
				if (!sim_secret_decode(rest, &svc->secret_key, &svc->secret_key_len))
				{
					fprintf(stderr, "saas-sim: --secret %s: expected whsec_ followed by base64\n", svc->name);
					exit(64);
				}
				svc->secret = sim_strdup(rest);
				break;
			case OPT_SEED:
				{
					char	   *end;

					errno = 0;
					sim_config.seed = strtoull(optarg, &end, 10);
					if (errno || *end || optarg[0] == '-' || optarg[0] == '\0')
					{
						fprintf(stderr, "saas-sim: --seed needs a non-negative integer\n");
						exit(64);
					}
					sim_config.seed_given = true;
				}
				break;
			case OPT_SEED_DATA:
				sim_config.seed_data_path = optarg;
				break;
			case OPT_FAULTS:
				svc = main_split("--faults", optarg, &rest);
				if (!sim_faults_from_spec(rest, &svc->start_faults, err, sizeof(err)))
				{
					fprintf(stderr, "saas-sim: --faults %s: %s\n", svc->name, err);
					exit(64);
				}
				break;
			case OPT_DUP:
				if (!sim_parse_double(optarg, &d) || d < 0 || d > 1)
				{
					fprintf(stderr, "saas-sim: --duplicate-rate needs a number from 0 to 1\n");
					exit(64);
				}
				ws->duplicate_rate = d;
				break;
			case OPT_SHUFFLE:
				ws->shuffle = true;
				break;
			case OPT_SHUFFLE_WIN:
				ws->shuffle_window_ms = (int) main_int("--shuffle-window-ms", optarg, 0, 600000);
				break;
			case OPT_RETRY_BASE:
				ws->retry_base_ms = (int) main_int("--webhook-retry-base-ms", optarg, 1, 3600000);
				break;
			case OPT_MAX_ATTEMPTS:
				ws->max_attempts = (int) main_int("--webhook-max-attempts", optarg, 1, 1000);
				break;
			case OPT_TIMEOUT:
				ws->timeout_ms = (int) main_int("--webhook-timeout-ms", optarg, 100, 600000);
				break;
			case OPT_MAX_BODY:
				sim_config.max_body = (size_t) main_int("--max-body", optarg, 64, 1L << 30);
				break;
			case OPT_QUIET:
				sim_config.quiet = true;
				break;
			case 'h':
			case OPT_HELP:
				main_usage(stdout);
				exit(0);
			case OPT_VERSION:
				printf("saas-sim %s\n", SIM_VERSION);
				exit(0);
			default:
				main_usage(stderr);
				exit(64);
		}
	}
	if (optind < argc)
	{
		fprintf(stderr, "saas-sim: unexpected argument \"%s\" (see --help)\n", argv[optind]);
		exit(64);
	}
}

/* main: run the services until SIGINT or SIGTERM */
int
main(int argc, char **argv)
{
	sigset_t	sigs;
	int			rc = 0;
	struct timespec tick = {0, 50 * 1000000L};

	if (argc > 1 && strcmp(argv[1], "emit") == 0)
		return sim_emit_main(argc - 1, argv + 1);

	for (int i = 0; i < SIM_NSERVICES; i++)
		sim_faults_default(&sim_services[i].start_faults);
	main_parse(argc, argv);
	if (!sim_config.seed_given)
		sim_config.seed = (uint64_t) time(NULL) ^ ((uint64_t) getpid() << 32);
	sim_config.started_ms = sim_mono_ms();

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);

	sim_seed_load(sim_seed_global(), sim_config.seed_data_path);
	sim_services_init();
	sim_delivery_start_all();

	/* services first: once the control port answers, every service is bound */
	for (int i = 0; rc == 0 && i < SIM_NSERVICES; i++)
		if (!sim_server_reconcile(&sim_services[i]))
			rc = 1;
	if (rc == 0 && !sim_server_start_control())
		rc = 1;
	if (rc == 0)
	{
		SimWebhookSettings ws;

		sim_webhook_settings_get(&ws);
		sim_log("saas-sim %s up: control %s:%d, user-service :%d, payment-service :%d, "
				"communication-service :%d, identity-provider :%d, webhooks %s, seed %llu",
				SIM_VERSION, sim_config.bind_address, sim_config.control_port,
				sim_services[SIM_USER].port, sim_services[SIM_PAYMENT].port,
				sim_services[SIM_COMM].port, sim_services[SIM_IDP].port, ws.enabled ? ws.url : "off",
				(unsigned long long) sim_config.seed);
		for (;;)
		{
			int			sig = sigtimedwait(&sigs, NULL, &tick);

			if (sig == SIGINT || sig == SIGTERM)
			{
				sim_log("signal %d: stopping", sig);
				break;
			}
			for (int i = 0; i < SIM_NSERVICES; i++)
				sim_server_reconcile(&sim_services[i]);
		}
	}

	sim_config.stopping = true;
	for (int i = 0; i < SIM_NSERVICES; i++)
		sim_server_close_service(&sim_services[i]);
	sim_server_stop_control();
	sim_delivery_stop_all();
	sim_services_free();
	sim_idp_config_free();
	sim_seed_free(sim_seed_global());
	curl_global_cleanup();
	sim_log("stopped");
	return rc;
}
