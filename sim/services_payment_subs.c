/*-------------------------------------------------------------------------
 *
 * services_payment_subs.c
 *	  Subscriptions of the simulated payment service and their events.
 *
 * A new subscription emits subscription.created, then (unless it starts
 * with a trial) invoice.created and payment.succeeded, or payment.failed
 * when its payment_method is "card_declined" or "insufficient_funds" (the
 * subscription is then past_due).  PUT emits subscription.updated with
 * changes and previous_values; DELETE cancels and emits
 * subscription.canceled, once.
 *
 * Callers hold svc->lock.
 *
 *-------------------------------------------------------------------------
 */
#include "services_payment.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* pay_money_event: data of invoice.created and payment.* */
static void
pay_money_event(SimService *svc, const SimSubscription *s, const char *type,
				const char *invoice_id, const char *corr)
{
	SimBuf		data;
	SimJw		jw;
	char		id[48];
	char		ts[40];

	sbuf_init(&data);
	jw_init(&jw, &data);
	jw_obj_begin(&jw);
	if (strcmp(type, "invoice.created") == 0)
	{
		jw_kstr(&jw, "invoice_id", invoice_id);
		jw_kstr(&jw, "status", "open");
		sim_format_time(s->period_start_ms, ts, sizeof(ts));
		jw_kstr(&jw, "period_start", ts);
		sim_format_time(s->period_end_ms, ts, sizeof(ts));
		jw_kstr(&jw, "period_end", ts);
	}
	else
	{
		sim_new_id(svc, "pay_", id, sizeof(id));
		jw_kstr(&jw, "payment_id", id);
		jw_kstr(&jw, "invoice_id", invoice_id);
	}
	jw_kstr(&jw, "subscription_id", s->subscription_id);
	jw_kstr(&jw, "customer_id", s->customer_id);
	jw_knum(&jw, "amount", s->amount);
	jw_kstr(&jw, "currency", s->currency);
	if (strcmp(type, "payment.failed") == 0)
	{
		jw_kstr(&jw, "failure_reason", "insufficient_funds");
		jw_kstr(&jw, "failure_code", "card_declined");
		sim_format_time(sim_now_ms() + 3 * 86400000LL, ts, sizeof(ts));
		jw_kstr(&jw, "retry_at", ts);
		jw_kint(&jw, "attempt_number", 1);
	}
	else if (strcmp(type, "payment.succeeded") == 0)
		jw_kstr(&jw, "payment_method", s->payment_method);
	jw_obj_end(&jw);
	sim_emit_event(svc, type, s->org, data.data, corr);
	sbuf_free(&data);
}

/* sim_pay_create_sub: POST /v2/subscriptions */
void
sim_pay_create_sub(SimService *svc, const SimRequest *req, SimResponse *resp)
{
	static const char *const fields[] = {"customer_id", "plan", "amount", "currency",
	"billing_cycle", "payment_method", "trial_days", NULL};
	PaymentState *st = svc->state;
	json_t	   *body = sim_req_json_object(req, resp);
	const char *cust_id,
			   *plan,
			   *currency,
			   *cycle,
			   *method;
	const json_t *amount_v,
			   *trial_v;
	SimCustomer *c;
	SimSubscription *s;
	double		amount;
	long		trial_days = 0;
	SimBuf		data;
	SimJw		jw;
	char		id[48];

	if (body == NULL)
		return;
	if (!sim_check_fields(body, fields, resp) ||
		!sim_pay_str_field(body, "customer_id", true, &cust_id, resp) ||
		!sim_pay_str_field(body, "plan", true, &plan, resp) ||
		!sim_pay_str_field(body, "currency", false, &currency, resp) ||
		!sim_pay_str_field(body, "billing_cycle", false, &cycle, resp) ||
		!sim_pay_str_field(body, "payment_method", false, &method, resp))
		goto done;
	if (cycle && strcmp(cycle, "monthly") != 0 && strcmp(cycle, "yearly") != 0)
	{
		sim_resp_error(resp, 400, "VALIDATION_ERROR", "billing_cycle must be monthly or yearly");
		goto done;
	}
	if (currency && (strlen(currency) != 3 || strspn(currency, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != 3))
	{
		sim_resp_error(resp, 400, "VALIDATION_ERROR", "currency must be a three-letter code like USD");
		goto done;
	}
	amount_v = json_object_get(body, "amount");
	if (amount_v && (!json_is_number(amount_v) || json_number_value(amount_v) < 0 || json_number_value(amount_v) > 1e9))
	{
		sim_resp_error(resp, 400, "VALIDATION_ERROR", "amount must be a number from 0 to 1e9");
		goto done;
	}
	trial_v = json_object_get(body, "trial_days");
	if (trial_v && (!json_is_number(trial_v) || !json_is_integer(trial_v) ||
					json_integer_value(trial_v) < 0 || json_integer_value(trial_v) > 365))
	{
		sim_resp_error(resp, 400, "VALIDATION_ERROR", "trial_days must be an integer from 0 to 365");
		goto done;
	}
	if (trial_v)
		trial_days = (long) json_integer_value(trial_v);
	if (amount_v)
		amount = json_number_value(amount_v);
	else if (sim_pay_price(plan) >= 0)
		amount = sim_pay_price(plan) * ((cycle && strcmp(cycle, "yearly") == 0) ? 10 : 1);
	else
	{
		sim_resp_error(resp, 400, "VALIDATION_ERROR",
					   "amount is required for plan \"%s\" (known plans: starter, professional, enterprise)", plan);
		goto done;
	}
	c = sim_map_get(&st->customer_by_id, cust_id);
	if (c == NULL)
	{
		sim_resp_error(resp, 404, "CUSTOMER_NOT_FOUND", "Customer with ID %s not found", cust_id);
		goto done;
	}

	sim_new_id(svc, "sub_", id, sizeof(id));
	s = calloc(1, sizeof(SimSubscription));
	if (s == NULL)
		abort();
	s->subscription_id = sim_strdup(id);
	s->customer_id = sim_strdup(c->customer_id);
	s->org = sim_strdup(c->org);
	s->plan = sim_strdup(plan);
	s->billing_cycle = sim_strdup(cycle ? cycle : "monthly");
	s->currency = sim_strdup(currency ? currency : "USD");
	s->payment_method = sim_strdup(method ? method : "card_ending_4242");
	s->amount = sim_pay_cents(amount);
	s->created_ms = s->period_start_ms = sim_now_ms();
	s->period_end_ms = sim_pay_add_months(s->period_start_ms, strcmp(s->billing_cycle, "yearly") == 0 ? 12 : 1);
	if (trial_days > 0)
		s->trial_end_ms = s->created_ms + trial_days * 86400000LL;
	if (trial_days > 0)
		s->status = sim_strdup("trialing");
	else if (strcmp(s->payment_method, "card_declined") == 0 ||
			 strcmp(s->payment_method, "insufficient_funds") == 0)
		s->status = sim_strdup("past_due");
	else
		s->status = sim_strdup("active");
	sim_pay_add_sub(st, s);
	SIM_STAT_ADD(svc, effects, 1);

	sbuf_init(&data);
	jw_init(&jw, &data);
	jw_obj_begin(&jw);
	jw_kstr(&jw, "subscription_id", s->subscription_id);
	jw_kstr(&jw, "customer_id", s->customer_id);
	jw_kstr(&jw, "plan", s->plan);
	jw_kstr(&jw, "status", s->status);
	jw_kstr(&jw, "billing_cycle", s->billing_cycle);
	jw_knum(&jw, "amount", s->amount);
	jw_kstr(&jw, "currency", s->currency);
	if (s->trial_end_ms)
	{
		char		ts[40];

		sim_format_time(s->trial_end_ms, ts, sizeof(ts));
		jw_kstr(&jw, "trial_end", ts);
	}
	jw_obj_end(&jw);
	sim_emit_event(svc, "subscription.created", s->org, data.data, req->correlation_id);
	sbuf_free(&data);
	if (trial_days == 0)
	{
		char		inv[48];

		sim_new_id(svc, "inv_", inv, sizeof(inv));
		pay_money_event(svc, s, "invoice.created", inv, req->correlation_id);
		pay_money_event(svc, s, strcmp(s->status, "past_due") == 0 ? "payment.failed" : "payment.succeeded",
						inv, req->correlation_id);
	}
	sim_resp_begin_success(resp, 201, &jw);
	sim_pay_write_sub(&jw, s);
	sim_resp_end_success(resp, &jw);
done:
	json_decref(body);
}

/* pay_replace: set *field to value when it differs, recording the change */
static void
pay_replace(char **field, const char *name, const char *value, SimJw *chg, SimJw *prev,
			bool *changed)
{
	if (value == NULL || strcmp(*field, value) == 0)
		return;
	jw_kstr(chg, name, value);
	jw_kstr(prev, name, *field);
	free(*field);
	*field = sim_strdup(value);
	*changed = true;
}

/* sim_pay_update_sub: PUT /v2/subscriptions/{id}; emits subscription.updated */
void
sim_pay_update_sub(SimService *svc, const SimRequest *req, SimResponse *resp, SimSubscription *s)
{
	static const char *const fields[] = {"plan", "amount", "billing_cycle", "payment_method", NULL};
	json_t	   *body = sim_req_json_object(req, resp);
	const char *plan,
			   *cycle,
			   *method;
	const json_t *amount_v;
	double		amount = s->amount;
	bool		changed = false;
	SimBuf		chg,
				prev,
				data;
	SimJw		jc,
				jp,
				jw;

	if (body == NULL)
		return;
	if (!sim_check_fields(body, fields, resp) ||
		!sim_pay_str_field(body, "plan", false, &plan, resp) ||
		!sim_pay_str_field(body, "billing_cycle", false, &cycle, resp) ||
		!sim_pay_str_field(body, "payment_method", false, &method, resp))
		goto done;
	if (strcmp(s->status, "canceled") == 0)
	{
		sim_resp_error(resp, 409, "SUBSCRIPTION_CANCELED",
					   "Subscription %s is canceled and cannot change", s->subscription_id);
		goto done;
	}
	if (cycle && strcmp(cycle, "monthly") != 0 && strcmp(cycle, "yearly") != 0)
	{
		sim_resp_error(resp, 400, "VALIDATION_ERROR", "billing_cycle must be monthly or yearly");
		goto done;
	}
	amount_v = json_object_get(body, "amount");
	if (amount_v && (!json_is_number(amount_v) || json_number_value(amount_v) < 0 || json_number_value(amount_v) > 1e9))
	{
		sim_resp_error(resp, 400, "VALIDATION_ERROR", "amount must be a number from 0 to 1e9");
		goto done;
	}
	if (amount_v)
		amount = sim_pay_cents(json_number_value(amount_v));
	else if (plan && sim_pay_price(plan) >= 0)
		amount = sim_pay_price(plan) * (strcmp(cycle ? cycle : s->billing_cycle, "yearly") == 0 ? 10 : 1);
	else if (plan && strcmp(plan, s->plan) != 0)
	{
		sim_resp_error(resp, 400, "VALIDATION_ERROR", "amount is required for plan \"%s\"", plan);
		goto done;
	}

	sbuf_init(&chg);
	sbuf_init(&prev);
	jw_init(&jc, &chg);
	jw_init(&jp, &prev);
	jw_obj_begin(&jc);
	jw_obj_begin(&jp);
	pay_replace(&s->plan, "plan", plan, &jc, &jp, &changed);
	pay_replace(&s->billing_cycle, "billing_cycle", cycle, &jc, &jp, &changed);
	pay_replace(&s->payment_method, "payment_method", method, &jc, &jp, &changed);
	if (amount != s->amount)
	{
		jw_knum(&jc, "amount", amount);
		jw_knum(&jp, "amount", s->amount);
		s->amount = amount;
		changed = true;
	}
	jw_obj_end(&jc);
	jw_obj_end(&jp);
	if (changed)
	{
		sbuf_init(&data);
		jw_init(&jw, &data);
		jw_obj_begin(&jw);
		jw_kstr(&jw, "subscription_id", s->subscription_id);
		jw_kstr(&jw, "customer_id", s->customer_id);
		jw_kstr(&jw, "status", s->status);
		jw_key(&jw, "changes");
		jw_raw(&jw, chg.data);
		jw_key(&jw, "previous_values");
		jw_raw(&jw, prev.data);
		jw_obj_end(&jw);
		SIM_STAT_ADD(svc, effects, 1);
		sim_emit_event(svc, "subscription.updated", s->org, data.data, req->correlation_id);
		sbuf_free(&data);
	}
	sbuf_free(&chg);
	sbuf_free(&prev);
	sim_resp_begin_success(resp, 200, &jw);
	sim_pay_write_sub(&jw, s);
	sim_resp_end_success(resp, &jw);
done:
	json_decref(body);
}

/* sim_pay_cancel_sub: DELETE /v2/subscriptions/{id}; a second cancel changes nothing */
void
sim_pay_cancel_sub(SimService *svc, const SimRequest *req, SimResponse *resp, SimSubscription *s)
{
	SimJw		jw;

	if (strcmp(s->status, "canceled") != 0)
	{
		SimBuf		data;
		char		ts[40];

		free(s->status);
		s->status = sim_strdup("canceled");
		s->canceled_ms = sim_now_ms();
		sim_format_time(s->canceled_ms, ts, sizeof(ts));
		sbuf_init(&data);
		jw_init(&jw, &data);
		jw_obj_begin(&jw);
		jw_kstr(&jw, "subscription_id", s->subscription_id);
		jw_kstr(&jw, "customer_id", s->customer_id);
		jw_kstr(&jw, "plan", s->plan);
		jw_kstr(&jw, "status", "canceled");
		jw_kstr(&jw, "canceled_at", ts);
		jw_kstr(&jw, "cancellation_reason", "customer_request");
		jw_obj_end(&jw);
		SIM_STAT_ADD(svc, effects, 1);
		sim_emit_event(svc, "subscription.canceled", s->org, data.data, req->correlation_id);
		sbuf_free(&data);
	}
	sim_resp_begin_success(resp, 200, &jw);
	sim_pay_write_sub(&jw, s);
	sim_resp_end_success(resp, &jw);
}
