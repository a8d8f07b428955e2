/*-------------------------------------------------------------------------
 *
 * services_payment.h
 *	  Private types of the simulated payment service, shared by
 *	  services_payment.c (routing, customers, usage, seed) and
 *	  services_payment_subs.c (subscriptions and their events).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SIM_SERVICES_PAYMENT_H
#define SIM_SERVICES_PAYMENT_H

#include "sim.h"

typedef struct SimCustomer
{
	char	   *customer_id;
	char	   *org;
	char	   *email;
	char	   *name;
	int64_t		created_ms;
} SimCustomer;

typedef struct SimSubscription
{
	char	   *subscription_id;
	char	   *customer_id;
	char	   *org;
	char	   *plan;
	char	   *status;			/* active, trialing, past_due, canceled */
	char	   *billing_cycle;	/* monthly, yearly */
	char	   *currency;
	char	   *payment_method;
	double		amount;
	int64_t		period_start_ms;
	int64_t		period_end_ms;
	int64_t		trial_end_ms;	/* 0: no trial */
	int64_t		created_ms;
	int64_t		canceled_ms;
} SimSubscription;

typedef struct PaymentState
{
	SimCustomer **customers;
	size_t		ncustomers;
	size_t		cap_customers;
	SimSubscription **subs;
	size_t		nsubs;
	size_t		cap_subs;
	SimMap		customer_by_id;
	SimMap		sub_by_id;
} PaymentState;

extern double sim_pay_price(const char *plan);
extern double sim_pay_cents(double v);
extern int64_t sim_pay_add_months(int64_t ms, int n);
extern void sim_pay_write_sub(SimJw *jw, const SimSubscription *s);
extern void sim_pay_add_sub(PaymentState *st, SimSubscription *s);
extern bool sim_pay_str_field(const json_t *body, const char *key, bool required,
							  const char **out, SimResponse *resp);
extern void sim_pay_create_sub(SimService *svc, const SimRequest *req, SimResponse *resp);
extern void sim_pay_update_sub(SimService *svc, const SimRequest *req, SimResponse *resp,
							   SimSubscription *s);
extern void sim_pay_cancel_sub(SimService *svc, const SimRequest *req, SimResponse *resp,
							   SimSubscription *s);

#endif							/* SIM_SERVICES_PAYMENT_H */
