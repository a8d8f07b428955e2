/*-------------------------------------------------------------------------
 *
 * fuzz_sim_body.c
 *	  libFuzzer target: request bodies of saas-sim.
 *
 * The first byte picks what the rest of the input is handed to: the
 * user service's POST /v1/users (then, when it created a user, PUT on that
 * user with the same body), the payment service's POST /v2/customers or
 * /v2/subscriptions, the communication service's POST /v1/messages, or the
 * control port's parsers of fault profiles and webhook settings.  Every
 * input also goes through the identity-provider's form and HTTP Basic
 * parsers (its handlers read the connection, so they are not called).  Handlers
 * run in-process without libmicrohttpd (only GET handlers read the
 * connection); with SAAS_FUZZ_SEED_DATA naming platform_data.json, the
 * services start from the seeded organizations, users and customers.
 * Whatever the input, every answer must be valid JSON, and what jw_value
 * writes of a parsed body must parse again.
 *
 *-------------------------------------------------------------------------
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"
#include "idp.h"

/* sim_fuzz_call: one request to svc's handler; the answer must be JSON */
static void
sim_fuzz_call(SimService *svc, const char *method, const char *path,
			  const char *body, size_t len, SimResponse *resp)
{
	SimRequest	req = {NULL, method, path, body, len, "rid", NULL, "rid"};
	json_error_t jerr;
	json_t	   *doc;

	memset(resp, 0, sizeof(*resp));
	sbuf_init(&resp->body);
	pthread_mutex_lock(&svc->lock);
	svc->ops->handle(svc, &req, resp);
	pthread_mutex_unlock(&svc->lock);
	doc = json_loadb(resp->body.data ? resp->body.data : "", resp->body.len, 0, &jerr);
	if (doc == NULL || resp->status < 200 || resp->status > 599)
	{
		fprintf(stderr, "%s %s answered %d with invalid JSON (%s): %s\n", method, path,
				resp->status, jerr.text, resp->body.data ? resp->body.data : "");
		abort();
	}
	json_decref(doc);
}

/* sim_fuzz_roundtrip: what jw_value writes of a parsed body parses again */
static void
sim_fuzz_roundtrip(const char *body, size_t len)
{
	char		err[160];
	json_t	   *v = sim_json_parse(body, len, err, sizeof(err));
	SimBuf		out;
	SimJw		jw;
	json_t	   *again;

	if (v == NULL)
		return;
	sbuf_init(&out);
	jw_init(&jw, &out);
	jw_value(&jw, v);
	again = sim_json_parse(out.data, out.len, err, sizeof(err));
	if (again == NULL)
	{
		fprintf(stderr, "re-serialized body does not parse (%s): %s\n", err, out.data);
		abort();
	}
	json_decref(again);
	json_decref(v);
	sbuf_free(&out);
}

/* sim_fuzz_idp: the identity-provider's parsers of token request bodies and Basic credentials */
static void
sim_fuzz_idp(const char *body, size_t len)
{
	IdpForm		form;
	char		err[160];
	char	   *text = sim_strndup(body, len);
	char	   *id,
			   *secret;

	if (idp_form_parse(body, len, &form, err, sizeof(err)))
	{
		for (int i = 0; i < form.n; i++)
			if (idp_form_get(&form, form.keys[i]) != form.values[i])
				abort();		/* a name given twice was accepted */
		idp_form_free(&form);
	}
	if (idp_basic_credentials(text, &id, &secret) > 0)
	{
		if (id == NULL || secret == NULL || id[0] == '\0')
			abort();
		free(id);
		free(secret);
	}
	free(text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool initialized = false;
	const char *body = (const char *) data + 1;
	size_t		len;
	SimResponse resp;
	char		err[160];

	if (!initialized)
	{
		const char *seed = getenv("SAAS_FUZZ_SEED_DATA");

		sim_config.quiet = true;
		if (seed != NULL && seed[0] != '\0')
			sim_seed_load(sim_seed_global(), seed);
		sim_services_init();
		initialized = true;
	}
	if (size < 1)
		return 0;
	len = size - 1;
	/*
	 * Each input starts from the seeded state: what one input created must
	 * not be there for the next (inputs replay alone), and memory that
	 * outlives an input makes libFuzzer run a leak check after every one.
	 */
	for (int i = 0; i < SIM_NSERVICES; i++)
	{
		if (i == SIM_IDP)
			continue;			/* not fuzzed here; its reset makes RSA keys */
		sim_services[i].ops->free_state(&sim_services[i]);
		sim_services[i].ops->reset(&sim_services[i], sim_seed_get());
	}
	sim_fuzz_roundtrip(body, len);
	sim_fuzz_idp(body, len);
	switch (data[0] % 6)
	{
		case 0:
			sim_fuzz_call(&sim_services[SIM_USER], "POST", "/v1/users", body, len, &resp);
			if (resp.status == 201)
			{
				json_t	   *doc = json_loadb(resp.body.data, resp.body.len, 0, NULL);
				const char *id = json_string_value(json_object_get(json_object_get(doc, "data"), "id"));
				char		path[160];
				SimResponse put;

				snprintf(path, sizeof(path), "/v1/users/%s", id ? id : "none");
				sim_fuzz_call(&sim_services[SIM_USER], "PUT", path, body, len, &put);
				sbuf_free(&put.body);
				json_decref(doc);
			}
			break;
		case 1:
			sim_fuzz_call(&sim_services[SIM_PAYMENT], "POST", "/v2/customers", body, len, &resp);
			break;
		case 2:
			sim_fuzz_call(&sim_services[SIM_PAYMENT], "POST", "/v2/subscriptions", body, len, &resp);
			break;
		case 3:
			sim_fuzz_call(&sim_services[SIM_COMM], "POST", "/v1/messages", body, len, &resp);
			break;
		case 4:
			{
				json_t	   *v = sim_json_parse(body, len, err, sizeof(err));
				SimFaults	f;

				sim_faults_from_json(v, &f, err, sizeof(err));
				json_decref(v);
				return 0;
			}
		default:
			{
				json_t	   *v = sim_json_parse(body, len, err, sizeof(err));
				SimWebhookSettings s;

				sim_webhook_settings_get(&s);
				sim_webhook_settings_from_json(v, &s, err, sizeof(err));
				json_decref(v);
				return 0;
			}
	}
	sbuf_free(&resp.body);
	return 0;
}
