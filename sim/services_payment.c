/*-------------------------------------------------------------------------
 *
 * services_payment.c
 *	  The simulated payment service (base /v2): customers and subscriptions.
 *
 *	  POST   /v2/customers
 *	  GET    /v2/customers/{id}
 *	  GET    /v2/customers/{id}/usage
 *	  POST   /v2/subscriptions
 *	  GET    /v2/subscriptions/{id}
 *	  PUT    /v2/subscriptions/{id}	change plan, amount, cycle, payment method
 *	  DELETE /v2/subscriptions/{id}	cancel
 *
 * A new subscription emits subscription.created, then (unless it starts
 * with a trial) invoice.created and payment.succeeded, or payment.failed
 * when its payment_method is "card_declined" or "insufficient_funds" (the
 * subscription is then past_due).  PUT emits subscription.updated, DELETE
 * subscription.canceled.  Creating a customer is a state change but has no
 * event type in integration_config.json, so it emits none.
 *
 * Callers hold svc->lock.
 *
 *-------------------------------------------------------------------------
 */
#include "services_payment.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* list prices per month of the known plans (the tiers of platform_data.json) */
static const struct
{
	const char *plan;
	double		monthly;
}			pay_prices[] = {
	{"starter", 49.99},
	{"professional", 299.99},
	{"enterprise", 999.99},
};

/* sim_pay_price: the monthly list price of plan, or -1 */
double
sim_pay_price(const char *plan)
{
	for (size_t i = 0; i < sizeof(pay_prices) / sizeof(pay_prices[0]); i++)
		if (strcmp(pay_prices[i].plan, plan) == 0)
			return pay_prices[i].monthly;
	return -1;
}

/* sim_pay_cents: round to cents, as money is shown */
double
sim_pay_cents(double v)
{
	return round(v * 100.0) / 100.0;
}

/* sim_pay_add_months: the same time n calendar months later (timegm normalizes) */
int64_t
sim_pay_add_months(int64_t ms, int n)
{
	time_t		t = (time_t) (ms / 1000);
	struct tm	tm;

	gmtime_r(&t, &tm);
	tm.tm_mon += n;
	return (int64_t) timegm(&tm) * 1000 + ms % 1000;
}

/* pay_write_customer: a customer object */
static void
pay_write_customer(SimJw *jw, const SimCustomer *c)
{
	char		ts[40];

	sim_format_time(c->created_ms, ts, sizeof(ts));
	jw_obj_begin(jw);
	jw_kstr(jw, "customer_id", c->customer_id);
	jw_kstr(jw, "organization_id", c->org);
	jw_kstr(jw, "email", c->email);
	jw_kstr(jw, "name", c->name);
	jw_kstr(jw, "created_at", ts);
	jw_obj_end(jw);
}

/* sim_pay_write_sub: a subscription (get_subscription of external_api_responses.json) */
void
sim_pay_write_sub(SimJw *jw, const SimSubscription *s)
{
	char		ts[40];

	jw_obj_begin(jw);
	jw_kstr(jw, "subscription_id", s->subscription_id);
	jw_kstr(jw, "customer_id", s->customer_id);
	jw_kstr(jw, "organization_id", s->org);
	jw_kstr(jw, "plan", s->plan);
	jw_kstr(jw, "status", s->status);
	jw_kstr(jw, "billing_cycle", s->billing_cycle);
	sim_format_time(s->period_start_ms, ts, sizeof(ts));
	jw_kstr(jw, "current_period_start", ts);
	sim_format_time(s->period_end_ms, ts, sizeof(ts));
	jw_kstr(jw, "current_period_end", ts);
	jw_knum(jw, "amount", s->amount);
	jw_kstr(jw, "currency", s->currency);
	jw_kstr(jw, "payment_method", s->payment_method);
	jw_key(jw, "trial_end");
	if (s->trial_end_ms)
	{
		sim_format_time(s->trial_end_ms, ts, sizeof(ts));
		jw_str(jw, ts);
	}
	else
		jw_null(jw);
	jw_key(jw, "canceled_at");
	if (s->canceled_ms)
	{
		sim_format_time(s->canceled_ms, ts, sizeof(ts));
		jw_str(jw, ts);
	}
	else
		jw_null(jw);
	sim_format_time(s->created_ms, ts, sizeof(ts));
	jw_kstr(jw, "created_at", ts);
	jw_obj_end(jw);
}

/* pay_add_customer: index a customer */
static void
pay_add_customer(PaymentState *st, SimCustomer *c)
{
	if (st->ncustomers == st->cap_customers)
	{
		st->cap_customers = st->cap_customers ? st->cap_customers * 2 : 32;
		st->customers = sim_realloc(st->customers, st->cap_customers * sizeof(SimCustomer *));
	}
	st->customers[st->ncustomers++] = c;
	sim_map_put(&st->customer_by_id, c->customer_id, c);
}

/* sim_pay_add_sub: index a subscription */
void
sim_pay_add_sub(PaymentState *st, SimSubscription *s)
{
	if (st->nsubs == st->cap_subs)
	{
		st->cap_subs = st->cap_subs ? st->cap_subs * 2 : 32;
		st->subs = sim_realloc(st->subs, st->cap_subs * sizeof(SimSubscription *));
	}
	st->subs[st->nsubs++] = s;
	sim_map_put(&st->sub_by_id, s->subscription_id, s);
}

/* sim_pay_str_field: an optional string field of at most 256 characters */
bool
sim_pay_str_field(const json_t *body, const char *key, bool required, const char **out,
			  SimResponse *resp)
{
	const json_t *v = json_object_get(body, key);

	*out = NULL;
	if (v == NULL)
	{
		if (required)
			sim_resp_error(resp, 400, "VALIDATION_ERROR", "%s is required", key);
		return !required;
	}
	if (!json_is_string(v) || json_string_value(v)[0] == '\0' || strlen(json_string_value(v)) > 256)
	{
		sim_resp_error(resp, 400, "VALIDATION_ERROR", "%s must be a string of 1 to 256 characters", key);
		return false;
	}
	*out = json_string_value(v);
	return true;
}

/* pay_create_customer: POST /v2/customers */
static void
pay_create_customer(SimService *svc, const SimRequest *req, SimResponse *resp)
{
	static const char *const fields[] = {"organization_id", "email", "name", NULL};
	PaymentState *st = svc->state;
	json_t	   *body = sim_req_json_object(req, resp);
	const char *org,
			   *email,
			   *name;
	SimCustomer *c;
	SimJw		jw;
	char		id[48];

	if (body == NULL)
		return;
	if (!sim_check_fields(body, fields, resp) ||
		!sim_pay_str_field(body, "organization_id", true, &org, resp) ||
		!sim_pay_str_field(body, "email", true, &email, resp) ||
		!sim_pay_str_field(body, "name", false, &name, resp))
		goto done;
	if (strchr(email, '@') == NULL)
	{
		sim_resp_error(resp, 400, "VALIDATION_ERROR", "email is not a valid address");
		goto done;
	}
	sim_new_id(svc, "cust_", id, sizeof(id));
	c = calloc(1, sizeof(SimCustomer));
	if (c == NULL)
		abort();
	c->customer_id = sim_strdup(id);
	c->org = sim_strdup(org);
	c->email = sim_strdup(email);
	c->name = sim_strdup(name);
	c->created_ms = sim_now_ms();
	pay_add_customer(st, c);
	SIM_STAT_ADD(svc, effects, 1);
	sim_resp_begin_success(resp, 201, &jw);
	pay_write_customer(&jw, c);
	sim_resp_end_success(resp, &jw);
done:
	json_decref(body);
}


/*
 * pay_usage: GET /v2/customers/{id}/usage.  Metrics are derived from a hash
 * of the customer id, so they are stable across restarts; the total adds
 * the customer's live subscriptions to the overage.
 */
static void
pay_usage(SimService *svc, SimResponse *resp, const SimCustomer *c)
{
	PaymentState *st = svc->state;
	uint64_t	h = 1469598103934665603ULL;
	long		api_calls;
	double		storage,
				compute,
				overage,
				subs = 0;
	char		period[40];
	SimJw		jw;

	for (const char *p = c->customer_id; *p; p++)
		h = (h ^ (unsigned char) *p) * 1099511628211ULL;
	api_calls = 1000 + (long) (h % 60000);
	storage = (double) ((h >> 20) % 20000) / 10.0;
	compute = (double) ((h >> 40) % 2000) / 10.0;
	overage = sim_pay_cents(api_calls > 40000 ? (api_calls - 40000) * 0.01 : 0);
	for (size_t i = 0; i < st->nsubs; i++)
		if (strcmp(st->subs[i]->customer_id, c->customer_id) == 0 &&
			strcmp(st->subs[i]->status, "canceled") != 0 &&
			strcmp(st->subs[i]->status, "trialing") != 0)
			subs += st->subs[i]->amount;
	sim_format_time(sim_now_ms(), period, sizeof(period));
	period[7] = '\0';
	sim_resp_begin_success(resp, 200, &jw);
	jw_obj_begin(&jw);
	jw_kstr(&jw, "customer_id", c->customer_id);
	jw_kstr(&jw, "billing_period", period);
	jw_key(&jw, "usage_metrics");
	jw_obj_begin(&jw);
	jw_kint(&jw, "api_calls", api_calls);
	jw_knum(&jw, "storage_gb", storage);
	jw_knum(&jw, "compute_hours", compute);
	jw_obj_end(&jw);
	jw_knum(&jw, "overage_charges", overage);
	jw_knum(&jw, "total_amount", sim_pay_cents(subs + overage));
	jw_obj_end(&jw);
	sim_resp_end_success(resp, &jw);
}

/* pay_method_not_allowed: 405 with the Allow header */
static void
pay_method_not_allowed(const SimRequest *req, SimResponse *resp, const char *allow)
{
	sim_resp_error(resp, 405, "METHOD_NOT_ALLOWED", "%s is not allowed on %s", req->method, req->path);
	snprintf(resp->allow, sizeof(resp->allow), "%s", allow);
}

/* pay_handle: route a request of the payment service */
static void
pay_handle(SimService *svc, const SimRequest *req, SimResponse *resp)
{
	PaymentState *st = svc->state;
	const char *p = req->path;
	const char *m = req->method;
	SimJw		jw;

	if (strcmp(p, "/v2/customers") == 0)
	{
		if (strcmp(m, "POST") == 0)
			pay_create_customer(svc, req, resp);
		else
			pay_method_not_allowed(req, resp, "POST");
		return;
	}
	if (strcmp(p, "/v2/subscriptions") == 0)
	{
		if (strcmp(m, "POST") == 0)
			sim_pay_create_sub(svc, req, resp);
		else
			pay_method_not_allowed(req, resp, "POST");
		return;
	}
	if (strncmp(p, "/v2/customers/", 14) == 0 && p[14] != '\0')
	{
		const char *id = p + 14;
		const char *slash = strchr(id, '/');
		char	   *cid = sim_strndup(id, slash ? (size_t) (slash - id) : strlen(id));
		SimCustomer *c = sim_map_get(&st->customer_by_id, cid);
		bool		usage = slash && strcmp(slash, "/usage") == 0;

		if (slash && !usage)
			sim_resp_error(resp, 404, "NOT_FOUND", "no such endpoint: %s %s", m, p);
		else if (strcmp(m, "GET") != 0)
			pay_method_not_allowed(req, resp, "GET");
		else if (c == NULL)
			sim_resp_error(resp, 404, "CUSTOMER_NOT_FOUND", "Customer with ID %s not found", cid);
		else if (usage)
			pay_usage(svc, resp, c);
		else
		{
			sim_resp_begin_success(resp, 200, &jw);
			pay_write_customer(&jw, c);
			sim_resp_end_success(resp, &jw);
		}
		free(cid);
		return;
	}
	if (strncmp(p, "/v2/subscriptions/", 18) == 0 && p[18] != '\0' && strchr(p + 18, '/') == NULL)
	{
		SimSubscription *s = sim_map_get(&st->sub_by_id, p + 18);

		if (strcmp(m, "GET") != 0 && strcmp(m, "PUT") != 0 && strcmp(m, "DELETE") != 0)
			pay_method_not_allowed(req, resp, "GET, PUT, DELETE");
		else if (s == NULL)
			sim_resp_error(resp, 404, "SUBSCRIPTION_NOT_FOUND", "Subscription with ID %s not found", p + 18);
		else if (strcmp(m, "GET") == 0)
		{
			sim_resp_begin_success(resp, 200, &jw);
			sim_pay_write_sub(&jw, s);
			sim_resp_end_success(resp, &jw);
		}
		else if (strcmp(m, "PUT") == 0)
			sim_pay_update_sub(svc, req, resp, s);
		else
			sim_pay_cancel_sub(svc, req, resp, s);
		return;
	}
	sim_resp_error(resp, 404, "NOT_FOUND", "no such endpoint: %s %s", m, p);
}

/* pay_free_state: free customers, subscriptions and indexes */
static void
pay_free_state(SimService *svc)
{
	PaymentState *st = svc->state;

	if (st == NULL)
		return;
	for (size_t i = 0; i < st->ncustomers; i++)
	{
		SimCustomer *c = st->customers[i];

		free(c->customer_id);
		free(c->org);
		free(c->email);
		free(c->name);
		free(c);
	}
	for (size_t i = 0; i < st->nsubs; i++)
	{
		SimSubscription *s = st->subs[i];

		free(s->subscription_id);
		free(s->customer_id);
		free(s->org);
		free(s->plan);
		free(s->status);
		free(s->billing_cycle);
		free(s->currency);
		free(s->payment_method);
		free(s);
	}
	free(st->customers);
	free(st->subs);
	sim_map_free(&st->customer_by_id, NULL);
	sim_map_free(&st->sub_by_id, NULL);
	free(st);
	svc->state = NULL;
}

/*
 * pay_reset: the seed's users with a payment_service id become customers;
 * the first customer of an organization whose payment integration is
 * enabled gets a subscription to the organization's tier.
 */
static void
pay_reset(SimService *svc, const SimSeed *seed)
{
	PaymentState *st;

	pay_free_state(svc);
	st = calloc(1, sizeof(PaymentState));
	if (st == NULL)
		abort();
	sim_map_init(&st->customer_by_id);
	sim_map_init(&st->sub_by_id);
	svc->state = st;
	for (size_t i = 0; seed && i < seed->nusers; i++)
	{
		const SimSeedUser *su = &seed->users[i];
		SimCustomer *c;
		SimBuf		name;
		int64_t		created = 0;

		if (su->payment_service_id == NULL || su->org == NULL ||
			sim_map_get(&st->customer_by_id, su->payment_service_id))
			continue;
		if (su->created_at == NULL || !sim_parse_time(su->created_at, &created))
			created = sim_now_ms();
		sbuf_init(&name);
		sbuf_printf(&name, "%s %s", su->first_name ? su->first_name : "",
					su->last_name ? su->last_name : "");
		c = calloc(1, sizeof(SimCustomer));
		if (c == NULL)
			abort();
		c->customer_id = sim_strdup(su->payment_service_id);
		c->org = sim_strdup(su->org);
		c->email = sim_strdup(su->email ? su->email : "");
		c->name = sbuf_steal(&name);
		c->created_ms = created;
		pay_add_customer(st, c);

		for (size_t k = 0; k < seed->norgs; k++)
		{
			const SimSeedOrg *o = &seed->orgs[k];
			SimSubscription *s;
			SimBuf		id;

			if (strcmp(o->id, su->org) != 0 || !o->payment_enabled || o->tier == NULL ||
				sim_pay_price(o->tier) < 0)
				continue;
			sbuf_init(&id);
			sbuf_printf(&id, "sub_%s_%s", o->tier, o->id);
			if (sim_map_get(&st->sub_by_id, id.data))
			{
				sbuf_free(&id);
				continue;
			}
			s = calloc(1, sizeof(SimSubscription));
			if (s == NULL)
				abort();
			s->subscription_id = sbuf_steal(&id);
			s->customer_id = sim_strdup(c->customer_id);
			s->org = sim_strdup(o->id);
			s->plan = sim_strdup(o->tier);
			s->status = sim_strdup("active");
			s->billing_cycle = sim_strdup("monthly");
			s->currency = sim_strdup("USD");
			s->payment_method = sim_strdup("card_ending_1234");
			s->amount = sim_pay_price(o->tier);
			s->created_ms = created;
			/* the current period: this month, from the 1st */
			{
				time_t		t = (time_t) (sim_now_ms() / 1000);
				struct tm	tm;

				gmtime_r(&t, &tm);
				tm.tm_mday = 1;
				tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
				s->period_start_ms = (int64_t) timegm(&tm) * 1000;
				s->period_end_ms = sim_pay_add_months(s->period_start_ms, 1);
			}
			sim_pay_add_sub(st, s);
		}
	}
}

/* pay_dump: GET /_sim/customers and /_sim/subscriptions */
static bool
pay_dump(SimService *svc, const char *kind, const char *org, SimJw *jw)
{
	PaymentState *st = svc->state;

	if (strcmp(kind, "customers") == 0)
	{
		jw_arr_begin(jw);
		for (size_t i = 0; i < st->ncustomers; i++)
			if (org == NULL || strcmp(st->customers[i]->org, org) == 0)
				pay_write_customer(jw, st->customers[i]);
		jw_arr_end(jw);
		return true;
	}
	if (strcmp(kind, "subscriptions") == 0)
	{
		jw_arr_begin(jw);
		for (size_t i = 0; i < st->nsubs; i++)
			if (org == NULL || strcmp(st->subs[i]->org, org) == 0)
				sim_pay_write_sub(jw, st->subs[i]);
		jw_arr_end(jw);
		return true;
	}
	return false;
}

const SimServiceOps sim_payment_ops = {
	.reset = pay_reset,
	.free_state = pay_free_state,
	.handle = pay_handle,
	.dump = pay_dump,
};
