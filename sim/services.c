/*-------------------------------------------------------------------------
 *
 * services.c
 *	  The table of the simulated services, and their start and end.
 *
 * Names, keys, secret keys and retry policies follow
 * ../shared/reference-data/integration_config.json.  main.c parses the
 * options into this table, then calls sim_services_init; the fuzz target
 * of request bodies (fuzz/fuzz_sim_body.c) does the same without main.
 *
 *-------------------------------------------------------------------------
 */
#include "sim.h"

#include <stdlib.h>
#include <string.h>

static const char *const user_event_types[] = {
	"user.created", "user.updated", "user.deleted", "user.activated", "user.deactivated", NULL
};
static const char *const payment_event_types[] = {
	"subscription.created", "subscription.updated", "subscription.canceled",
	"payment.succeeded", "payment.failed", "invoice.created", NULL
};
static const char *const comm_event_types[] = {
	"message.sent", "message.delivered", "message.bounced", "message.clicked", "message.opened", NULL
};
static const char *const idp_event_types[] = {NULL};	/* the OIDC provider sends no webhooks */

/* secret keys and retry policies: ../shared/reference-data/integration_config.json */
SimService	sim_services[SIM_NSERVICES] = {
	{.id = SIM_USER, .name = "user-service", .key = "user_service", .base = "/v1",
		.default_secret_key = "user_webhook_secret_123", .retry_multiplier = 2.0,
		.max_backoff_s = 300, .event_types = user_event_types, .ops = &sim_user_ops, .port = 4001},
	{.id = SIM_PAYMENT, .name = "payment-service", .key = "payment_service", .base = "/v2",
		.default_secret_key = "payment_webhook_secret_456", .retry_multiplier = 1.5,
		.max_backoff_s = 600, .event_types = payment_event_types, .ops = &sim_payment_ops, .port = 4002},
	{.id = SIM_COMM, .name = "communication-service", .key = "communication_service", .base = "/v1",
		.default_secret_key = "email_webhook_secret_789", .retry_multiplier = 2.0,
		.max_backoff_s = 120, .event_types = comm_event_types, .ops = &sim_comm_ops, .port = 4003},
	/* no webhook secret: it emits no events (a --secret for it is accepted and unused) */
	{.id = SIM_IDP, .name = "identity-provider", .key = "identity_provider", .base = "/",
		.default_secret_key = NULL, .retry_multiplier = 2.0,
		.max_backoff_s = 120, .event_types = idp_event_types, .ops = &sim_idp_ops, .port = 4004},
};

SimConfig	sim_config = {
	.bind_address = "127.0.0.1",
	.control_port = 4000,
	.max_body = 1024 * 1024,
};

/*
 * sim_service_by_name: "user-service", "user_service" or "user" (and the
 * same for payment and communication; "identity-provider",
 * "identity_provider", "identity", "idp" or "oidc"); NULL if none.
 */
SimService *
sim_service_by_name(const char *name)
{
	if (strcmp(name, "idp") == 0 || strcmp(name, "oidc") == 0)
		return &sim_services[SIM_IDP];
	for (int i = 0; i < SIM_NSERVICES; i++)
	{
		SimService *svc = &sim_services[i];
		size_t		n = strlen(name);

		if (strcmp(name, svc->name) == 0 || strcmp(name, svc->key) == 0 ||
			(n > 0 && strncmp(name, svc->name, n) == 0 && svc->name[n] == '-'))
			return svc;
	}
	return NULL;
}

/* sim_service_has_event_type: whether type is one of the service's event types */
bool
sim_service_has_event_type(const SimService *svc, const char *type)
{
	for (const char *const *t = svc->event_types; *t; t++)
		if (strcmp(*t, type) == 0)
			return true;
	return false;
}

/* sim_services_init: locks, secrets, PRNGs and seeded state, before any daemon starts */
void
sim_services_init(void)
{
	for (int i = 0; i < SIM_NSERVICES; i++)
	{
		SimService *svc = &sim_services[i];

		pthread_mutex_init(&svc->lock, NULL);
		pthread_mutex_init(&svc->faults_lock, NULL);
		pthread_mutex_init(&svc->daemon_lock, NULL);
		if (svc->secret == NULL && svc->default_secret_key != NULL)
		{
			svc->secret = sim_secret_default(svc->default_secret_key);
			if (!sim_secret_decode(svc->secret, &svc->secret_key, &svc->secret_key_len))
				abort();
		}
		sim_rng_seed(&svc->fault_rng, sim_config.seed * 3 + (uint64_t) i);
		sim_rng_seed(&svc->id_rng, sim_config.seed * 7 + (uint64_t) i);
		svc->faults = svc->start_faults;
		svc->faults.flap_started_ms = sim_mono_ms();
		sim_idem_init(&svc->idem);
		svc->ops->reset(svc, sim_seed_get());
	}
}

/* sim_services_free: everything sim_services_init made */
void
sim_services_free(void)
{
	for (int i = 0; i < SIM_NSERVICES; i++)
	{
		SimService *svc = &sim_services[i];

		svc->ops->free_state(svc);
		sim_idem_clear(&svc->idem);
		free(svc->secret);
		free(svc->secret_key);
		pthread_mutex_destroy(&svc->lock);
		pthread_mutex_destroy(&svc->faults_lock);
		pthread_mutex_destroy(&svc->daemon_lock);
	}
}
