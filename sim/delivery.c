/*-------------------------------------------------------------------------
 *
 * delivery.c
 *	  Events of the simulated services and their webhook deliveries.
 *
 * Request handlers only build the event and queue it (sim_emit_event); one
 * delivery thread per service sends it with libcurl, so a slow or dead
 * receiver never blocks request handling and never delays another
 * service's deliveries.  A delivery not answered 2xx is retried with
 * exponential backoff (the service's multiplier and cap, as in
 * integration_config.json), honouring the receiver's Retry-After.  Each
 * attempt is signed anew with the current timestamp, and keeps the event
 * id as webhook-id, as Standard Webhooks asks.
 *
 * Test options: duplicate_rate queues some deliveries twice, shuffle adds
 * a random delay (up to shuffle_window_ms) and picks at random among due
 * deliveries, paused holds everything until unpaused.
 *
 *-------------------------------------------------------------------------
 */
#include "sim.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#define DELIVERY_LOG_SIZE 256

typedef struct DeliveryItem
{
	char	   *webhook_id;
	char	   *event_type;
	char	   *body;
	size_t		body_len;
	int			attempts;
	int64_t		due_ms;			/* monotonic */
	uint64_t	seq;
	bool		duplicate;
} DeliveryItem;

typedef struct SimDelivery
{
	SimService *svc;
	pthread_t	thread;
	bool		started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	DeliveryItem **items;
	size_t		count;
	size_t		cap;
	uint64_t	next_seq;
	int			inflight;		/* taken from the queue, being sent */
	SimRng		rng;			/* duplicate and shuffle draws */
	volatile bool stop;
} SimDelivery;

typedef struct DeliveryLogEntry
{
	int64_t		at_ms;
	SimServiceId service;
	char		webhook_id[64];
	char		event_type[48];
	int			attempt;
	long		http_status;
	bool		duplicate;
	int			latency_ms;
	char		error[96];
} DeliveryLogEntry;

SimWebhookSettings sim_webhook_start_settings = {
	.url = "http://127.0.0.1:8080/webhooks",
	.enabled = true,
	.paused = false,
	.duplicate_rate = 0,
	.shuffle = false,
	.shuffle_window_ms = 250,
	.retry_base_ms = 500,
	.max_backoff_ms = 0,
	.max_attempts = 8,
	.timeout_ms = 5000,
	.queue_max = 20000,
};

static pthread_mutex_t settings_lock = PTHREAD_MUTEX_INITIALIZER;
static SimWebhookSettings settings;
static bool settings_ready = false;

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static DeliveryLogEntry delivery_log[DELIVERY_LOG_SIZE];
static size_t log_next;
static size_t log_count;

/* sim_webhook_settings_get: a consistent copy of the current settings */
void
sim_webhook_settings_get(SimWebhookSettings *s)
{
	pthread_mutex_lock(&settings_lock);
	if (!settings_ready)
	{
		settings = sim_webhook_start_settings;
		settings_ready = true;
	}
	*s = settings;
	pthread_mutex_unlock(&settings_lock);
}

/* sim_webhook_settings_set: install settings and wake the delivery threads */
void
sim_webhook_settings_set(const SimWebhookSettings *s)
{
	pthread_mutex_lock(&settings_lock);
	settings = *s;
	settings_ready = true;
	pthread_mutex_unlock(&settings_lock);
	for (int i = 0; i < SIM_NSERVICES; i++)
	{
		SimDelivery *dl = sim_services[i].delivery;

		if (dl == NULL)
			continue;
		pthread_mutex_lock(&dl->lock);
		pthread_cond_broadcast(&dl->cond);
		pthread_mutex_unlock(&dl->lock);
	}
}

/* dl_int_field: an integer setting within bounds */
static bool
dl_int_field(const char *key, const json_t *v, long min, long max, int *out,
			 char *err, size_t errlen)
{
	if (!json_is_number(v) || !json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
	{
		snprintf(err, errlen, "%s must be an integer between %ld and %ld", key, min, max);
		return false;
	}
	*out = (int) json_integer_value(v);
	return true;
}

/* dl_bool_field: a boolean setting */
static bool
dl_bool_field(const char *key, const json_t *v, bool *out, char *err, size_t errlen)
{
	if (!json_is_boolean(v))
	{
		snprintf(err, errlen, "%s must be true or false", key);
		return false;
	}
	*out = json_is_true(v);
	return true;
}

/*
 * sim_webhook_settings_from_json
 *		Merge the fields of obj into s (settings, unlike fault profiles, are
 *		changed one at a time); unknown fields are refused.
 */
bool
sim_webhook_settings_from_json(json_t *obj, SimWebhookSettings *s,
							   char *err, size_t errlen)
{
	const char *k;
	json_t	   *v;

	if (obj == NULL || !json_is_object(obj))
	{
		snprintf(err, errlen, "the webhook settings must be a JSON object");
		return false;
	}
	json_object_foreach(obj, k, v)
	{
		bool		ok = true;

		if (strcmp(k, "url") == 0)
		{
			size_t		n;

			if (!json_is_string(v) ||
				(strncmp(json_string_value(v), "http://", 7) != 0 && strncmp(json_string_value(v), "https://", 8) != 0) ||
				(n = strlen(json_string_value(v))) >= sizeof(s->url))
			{
				snprintf(err, errlen, "url must be an http:// or https:// URL");
				return false;
			}
			memcpy(s->url, json_string_value(v), n + 1);
			while (n > 0 && s->url[n - 1] == '/')
				s->url[--n] = '\0';
		}
		else if (strcmp(k, "enabled") == 0)
			ok = dl_bool_field(k, v, &s->enabled, err, errlen);
		else if (strcmp(k, "paused") == 0)
			ok = dl_bool_field(k, v, &s->paused, err, errlen);
		else if (strcmp(k, "shuffle") == 0)
			ok = dl_bool_field(k, v, &s->shuffle, err, errlen);
		else if (strcmp(k, "duplicate_rate") == 0)
		{
			if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 1)
			{
				snprintf(err, errlen, "duplicate_rate must be a number between 0 and 1");
				return false;
			}
			s->duplicate_rate = json_number_value(v);
		}
		else if (strcmp(k, "shuffle_window_ms") == 0)
			ok = dl_int_field(k, v, 0, 600000, &s->shuffle_window_ms, err, errlen);
		else if (strcmp(k, "retry_base_ms") == 0)
			ok = dl_int_field(k, v, 1, 3600000, &s->retry_base_ms, err, errlen);
		else if (strcmp(k, "max_backoff_ms") == 0)
			ok = dl_int_field(k, v, 0, 3600000, &s->max_backoff_ms, err, errlen);
		else if (strcmp(k, "max_attempts") == 0)
			ok = dl_int_field(k, v, 1, 1000, &s->max_attempts, err, errlen);
		else if (strcmp(k, "timeout_ms") == 0)
			ok = dl_int_field(k, v, 100, 600000, &s->timeout_ms, err, errlen);
		else if (strcmp(k, "queue_max") == 0)
			ok = dl_int_field(k, v, 1, 10000000, &s->queue_max, err, errlen);
		else
		{
			snprintf(err, errlen, "unknown webhook setting \"%s\"", k);
			return false;
		}
		if (!ok)
			return false;
	}
	return true;
}

/* sim_webhook_settings_write: the settings as a JSON object */
void
sim_webhook_settings_write(SimJw *jw, const SimWebhookSettings *s)
{
	jw_obj_begin(jw);
	jw_kstr(jw, "url", s->url);
	jw_kbool(jw, "enabled", s->enabled);
	jw_kbool(jw, "paused", s->paused);
	jw_knum(jw, "duplicate_rate", s->duplicate_rate);
	jw_kbool(jw, "shuffle", s->shuffle);
	jw_kint(jw, "shuffle_window_ms", s->shuffle_window_ms);
	jw_kint(jw, "retry_base_ms", s->retry_base_ms);
	jw_kint(jw, "max_backoff_ms", s->max_backoff_ms);
	jw_kint(jw, "max_attempts", s->max_attempts);
	jw_kint(jw, "timeout_ms", s->timeout_ms);
	jw_kint(jw, "queue_max", s->queue_max);
	jw_obj_end(jw);
}

/* dl_item_free: free one queued delivery */
static void
dl_item_free(DeliveryItem *it)
{
	free(it->webhook_id);
	free(it->event_type);
	free(it->body);
	free(it);
}

/* dl_push: queue an item; caller holds dl->lock */
static void
dl_push(SimDelivery *dl, DeliveryItem *it)
{
	if (dl->count == dl->cap)
	{
		dl->cap = dl->cap ? dl->cap * 2 : 64;
		dl->items = sim_realloc(dl->items, dl->cap * sizeof(DeliveryItem *));
	}
	it->seq = dl->next_seq++;
	dl->items[dl->count++] = it;
}

/* dl_log: remember one attempt for GET /_sim/webhooks and write the log line */
static void
dl_log(SimService *svc, const DeliveryItem *it, long status, int latency_ms,
	   const char *error, const char *outcome)
{
	DeliveryLogEntry *e;

	pthread_mutex_lock(&log_lock);
	e = &delivery_log[log_next];
	memset(e, 0, sizeof(*e));
	e->at_ms = sim_now_ms();
	e->service = svc->id;
	snprintf(e->webhook_id, sizeof(e->webhook_id), "%s", it->webhook_id);
	snprintf(e->event_type, sizeof(e->event_type), "%s", it->event_type);
	e->attempt = it->attempts;
	e->http_status = status;
	e->duplicate = it->duplicate;
	e->latency_ms = latency_ms;
	snprintf(e->error, sizeof(e->error), "%s", error ? error : "");
	log_next = (log_next + 1) % DELIVERY_LOG_SIZE;
	if (log_count < DELIVERY_LOG_SIZE)
		log_count++;
	pthread_mutex_unlock(&log_lock);
	if (!sim_config.quiet)
		sim_log("webhook %s %s %s attempt %d -> %ld%s%s (%d ms) %s", svc->name,
				it->webhook_id, it->event_type, it->attempts, status,
				error ? " " : "", error ? error : "", latency_ms, outcome);
}

/* dl_discard: libcurl write callback that drops the receiver's body */
static size_t
dl_discard(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	(void) ptr;
	(void) userdata;
	return size * nmemb;
}

/* dl_progress: aborts a transfer when the sim is stopping */
static int
dl_progress(void *clientp, curl_off_t dltotal, curl_off_t dlnow,
			curl_off_t ultotal, curl_off_t ulnow)
{
	SimDelivery *dl = clientp;

	(void) dltotal;
	(void) dlnow;
	(void) ultotal;
	(void) ulnow;
	return dl->stop ? 1 : 0;
}

/*
 * dl_send
 *		One signed POST; returns the HTTP status (0 on a transport error,
 *		with err set) and the receiver's Retry-After in seconds, if any.
 */
static long
dl_send(SimDelivery *dl, CURL *curl, const DeliveryItem *it, const SimWebhookSettings *s,
		long *retry_after, char *err, size_t errlen)
{
	SimService *svc = dl->svc;
	struct curl_slist *hdrs = NULL;
	char		url[600];
	char		line[256];
	char		sig[128];
	long		ts = (long) (sim_now_ms() / 1000);
	long		status = 0;
	CURLcode	rc;

	snprintf(url, sizeof(url), "%s/%s", s->url, svc->name);
	sim_sign(svc->secret_key, svc->secret_key_len, it->webhook_id, ts,
			 it->body, it->body_len, sig, sizeof(sig));
	hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	snprintf(line, sizeof(line), "webhook-id: %s", it->webhook_id);
	hdrs = curl_slist_append(hdrs, line);
	snprintf(line, sizeof(line), "webhook-timestamp: %ld", ts);
	hdrs = curl_slist_append(hdrs, line);
	snprintf(line, sizeof(line), "webhook-signature: %s", sig);
	hdrs = curl_slist_append(hdrs, line);
	hdrs = curl_slist_append(hdrs, "Expect:");

	curl_easy_reset(curl);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_POST, 1L);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, it->body);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) it->body_len);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "saas-sim/" SIM_VERSION);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long) s->timeout_ms);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long) (s->timeout_ms < 2000 ? s->timeout_ms : 2000));
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, dl_discard);
	curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, dl_progress);
	curl_easy_setopt(curl, CURLOPT_XFERINFODATA, dl);

	rc = curl_easy_perform(curl);
	*retry_after = 0;
	if (rc == CURLE_OK)
	{
		curl_off_t	ra = 0;

		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
		if (curl_easy_getinfo(curl, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0)
			*retry_after = (long) ra;
		err[0] = '\0';
	}
	else
		snprintf(err, errlen, "%s", curl_easy_strerror(rc));
	curl_slist_free_all(hdrs);
	return status;
}

/* dl_backoff_ms: the wait before attempt n+1 after n failed attempts */
static int64_t
dl_backoff_ms(SimService *svc, const SimWebhookSettings *s, int attempts, long retry_after)
{
	double		cap = s->max_backoff_ms > 0 ? s->max_backoff_ms : svc->max_backoff_s * 1000.0;
	double		d = s->retry_base_ms * pow(svc->retry_multiplier, attempts - 1);

	if (retry_after > 0 && retry_after * 1000.0 > d)
		d = retry_after * 1000.0;
	return (int64_t) (d < cap ? d : cap);
}

/*
 * dl_take
 *		Remove and return the next due item, or NULL with *wait_ms set to how
 *		long until one is due.  With shuffle, a random due item.  Caller holds
 *		dl->lock.
 */
static DeliveryItem *
dl_take(SimDelivery *dl, const SimWebhookSettings *s, int64_t *wait_ms)
{
	int64_t		now = sim_mono_ms();
	size_t		best = 0;
	size_t		ndue = 0;
	DeliveryItem *it;

	for (size_t i = 0; i < dl->count; i++)
	{
		DeliveryItem *c = dl->items[i];
		DeliveryItem *b = dl->items[best];

		if (c->due_ms <= now)
			ndue++;
		if (c->due_ms < b->due_ms || (c->due_ms == b->due_ms && c->seq < b->seq))
			best = i;
	}
	if (ndue == 0)
	{
		*wait_ms = dl->items[best]->due_ms - now;
		return NULL;
	}
	if (s->shuffle && ndue > 1)
	{
		uint64_t	k = sim_rng_below(&dl->rng, ndue);

		for (size_t i = 0; i < dl->count; i++)
			if (dl->items[i]->due_ms <= now && k-- == 0)
			{
				best = i;
				break;
			}
	}
	it = dl->items[best];
	dl->items[best] = dl->items[--dl->count];
	return it;
}

/* dl_timedwait: wait on the queue's condition for at most ms */
static void
dl_timedwait(SimDelivery *dl, int64_t ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L)
	{
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&dl->cond, &dl->lock, &ts);
}

/* dl_main: the delivery thread of one service */
static void *
dl_main(void *arg)
{
	SimDelivery *dl = arg;
	SimService *svc = dl->svc;
	CURL	   *curl = curl_easy_init();

	pthread_mutex_lock(&dl->lock);
	while (!dl->stop)
	{
		SimWebhookSettings s;
		DeliveryItem *it;
		int64_t		wait_ms = 0;
		long		status,
					retry_after;
		char		err[128];
		int64_t		t0;
		int			latency;

		sim_webhook_settings_get(&s);
		if (dl->count == 0 || s.paused)
		{
			dl_timedwait(dl, 1000);
			continue;
		}
		it = dl_take(dl, &s, &wait_ms);
		if (it == NULL)
		{
			dl_timedwait(dl, wait_ms > 0 ? wait_ms : 1);
			continue;
		}
		dl->inflight = 1;
		pthread_mutex_unlock(&dl->lock);

		it->attempts++;
		SIM_STAT_ADD(svc, webhook_attempts, 1);
		t0 = sim_mono_ms();
		status = dl_send(dl, curl, it, &s, &retry_after, err, sizeof(err));
		latency = (int) (sim_mono_ms() - t0);

		pthread_mutex_lock(&dl->lock);
		dl->inflight = 0;
		/* log before counting: whoever sees a counter move finds the entry */
		if (status >= 200 && status < 300)
		{
			dl_log(svc, it, status, latency, NULL, "delivered");
			SIM_STAT_ADD(svc, webhooks_sent, 1);
			dl_item_free(it);
			continue;
		}
		if (dl->stop)
		{
			SIM_STAT_ADD(svc, webhooks_failed, 1);
			dl_push(dl, it);	/* freed with the queue */
			break;
		}
		if (it->attempts >= s.max_attempts)
		{
			dl_log(svc, it, status, latency, err[0] ? err : NULL, "gave up");
			SIM_STAT_ADD(svc, webhooks_failed, 1);
			SIM_STAT_ADD(svc, webhooks_dead, 1);
			dl_item_free(it);
			continue;
		}
		it->due_ms = sim_mono_ms() + dl_backoff_ms(svc, &s, it->attempts, retry_after);
		dl_log(svc, it, status, latency, err[0] ? err : NULL, "will retry");
		SIM_STAT_ADD(svc, webhooks_failed, 1);
		SIM_STAT_ADD(svc, webhooks_retried, 1);
		dl_push(dl, it);
	}
	pthread_mutex_unlock(&dl->lock);
	curl_easy_cleanup(curl);
	return NULL;
}

/* sim_delivery_start_all: one queue and thread per service */
void
sim_delivery_start_all(void)
{
	for (int i = 0; i < SIM_NSERVICES; i++)
	{
		SimService *svc = &sim_services[i];
		SimDelivery *dl = calloc(1, sizeof(SimDelivery));
		pthread_condattr_t attr;

		if (dl == NULL)
			abort();
		dl->svc = svc;
		pthread_mutex_init(&dl->lock, NULL);
		pthread_condattr_init(&attr);
		pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
		pthread_cond_init(&dl->cond, &attr);
		pthread_condattr_destroy(&attr);
		sim_rng_seed(&dl->rng, sim_config.seed ^ (0xD1B54A32D192ED03ULL * (uint64_t) (i + 1)));
		svc->delivery = dl;
		if (pthread_create(&dl->thread, NULL, dl_main, dl) == 0)
			dl->started = true;
		else
			sim_log("cannot start the delivery thread of %s", svc->name);
	}
}

/* dl_free_items: drop every queued item; caller holds dl->lock */
static size_t
dl_free_items(SimDelivery *dl)
{
	size_t		n = dl->count;

	for (size_t i = 0; i < dl->count; i++)
		dl_item_free(dl->items[i]);
	dl->count = 0;
	return n;
}

/* sim_delivery_stop_all: stop the threads; undelivered events are dropped and counted */
void
sim_delivery_stop_all(void)
{
	for (int i = 0; i < SIM_NSERVICES; i++)
	{
		SimDelivery *dl = sim_services[i].delivery;
		size_t		n;

		if (dl == NULL)
			continue;
		pthread_mutex_lock(&dl->lock);
		dl->stop = true;
		pthread_cond_broadcast(&dl->cond);
		pthread_mutex_unlock(&dl->lock);
		if (dl->started)
			pthread_join(dl->thread, NULL);
		n = dl_free_items(dl);
		if (n > 0)
			sim_log("%s: %zu undelivered webhooks dropped at exit", sim_services[i].name, n);
		free(dl->items);
		pthread_mutex_destroy(&dl->lock);
		pthread_cond_destroy(&dl->cond);
		free(dl);
		sim_services[i].delivery = NULL;
	}
}

/* sim_delivery_clear: forget the queue (reset), and re-seed its PRNG */
void
sim_delivery_clear(SimService *svc)
{
	SimDelivery *dl = svc->delivery;

	if (dl == NULL)
		return;
	pthread_mutex_lock(&dl->lock);
	dl_free_items(dl);
	sim_rng_seed(&dl->rng, sim_config.seed ^ (0xD1B54A32D192ED03ULL * (uint64_t) (svc->id + 1)));
	pthread_mutex_unlock(&dl->lock);
	pthread_mutex_lock(&log_lock);
	log_count = 0;
	log_next = 0;
	pthread_mutex_unlock(&log_lock);
}

/* sim_delivery_pending: deliveries waiting (retries included) or being sent */
size_t
sim_delivery_pending(SimService *svc)
{
	SimDelivery *dl = svc->delivery;
	size_t		n;

	if (dl == NULL)
		return 0;
	pthread_mutex_lock(&dl->lock);
	n = dl->count + (size_t) dl->inflight;
	pthread_mutex_unlock(&dl->lock);
	return n;
}

/* sim_delivery_write_status: settings, queue lengths and the recent attempts */
void
sim_delivery_write_status(SimJw *jw, const char *service_filter)
{
	SimWebhookSettings s;
	char		ts[40];

	sim_webhook_settings_get(&s);
	jw_obj_begin(jw);
	jw_key(jw, "settings");
	sim_webhook_settings_write(jw, &s);
	jw_key(jw, "pending");
	jw_obj_begin(jw);
	for (int i = 0; i < SIM_NSERVICES; i++)
		jw_kint(jw, sim_services[i].name, (int64_t) sim_delivery_pending(&sim_services[i]));
	jw_obj_end(jw);
	jw_key(jw, "recent");
	jw_arr_begin(jw);
	pthread_mutex_lock(&log_lock);
	for (size_t k = 0; k < log_count; k++)
	{
		size_t		idx = (log_next + DELIVERY_LOG_SIZE - log_count + k) % DELIVERY_LOG_SIZE;
		DeliveryLogEntry *e = &delivery_log[idx];
		const char *name = sim_services[e->service].name;

		if (service_filter && strcmp(service_filter, name) != 0)
			continue;
		sim_format_time(e->at_ms, ts, sizeof(ts));
		jw_obj_begin(jw);
		jw_kstr(jw, "at", ts);
		jw_kstr(jw, "service", name);
		jw_kstr(jw, "webhook_id", e->webhook_id);
		jw_kstr(jw, "event_type", e->event_type);
		jw_kint(jw, "attempt", e->attempt);
		jw_kint(jw, "status", e->http_status);
		jw_kbool(jw, "duplicate", e->duplicate);
		jw_kint(jw, "latency_ms", e->latency_ms);
		jw_kstr(jw, "error", e->error[0] ? e->error : NULL);
		jw_obj_end(jw);
	}
	pthread_mutex_unlock(&log_lock);
	jw_arr_end(jw);
	jw_obj_end(jw);
}

/* sim_new_id: prefix + 16 hex digits from the service's id PRNG; caller holds svc->lock */
void
sim_new_id(SimService *svc, const char *prefix, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s%016llx", prefix,
			 (unsigned long long) sim_rng_next(&svc->id_rng));
}

/* sim_event_time: now in ms, but strictly after the service's previous event */
int64_t
sim_event_time(SimService *svc)
{
	int64_t		now = sim_now_ms();

	if (now <= svc->last_event_ms)
		now = svc->last_event_ms + 1;
	svc->last_event_ms = now;
	return now;
}

/* dl_enqueue: queue one delivery (and maybe its duplicate) for svc */
static void
dl_enqueue(SimService *svc, const char *event_id, const char *event_type,
		   const char *body, size_t body_len, const SimWebhookSettings *s)
{
	SimDelivery *dl = svc->delivery;
	int			copies = 1;

	if (dl == NULL)
		return;
	pthread_mutex_lock(&dl->lock);
	if (s->duplicate_rate > 0 && sim_rng_unit(&dl->rng) < s->duplicate_rate)
		copies = 2;
	for (int c = 0; c < copies; c++)
	{
		DeliveryItem *it;

		if (dl->count >= (size_t) s->queue_max)
		{
			SIM_STAT_ADD(svc, webhooks_dropped, 1);
			continue;
		}
		it = calloc(1, sizeof(DeliveryItem));
		if (it == NULL)
			abort();
		it->webhook_id = sim_strdup(event_id);
		it->event_type = sim_strdup(event_type);
		it->body = sim_strndup(body, body_len);
		it->body_len = body_len;
		it->duplicate = (c == 1);
		it->due_ms = sim_mono_ms();
		if (s->shuffle && s->shuffle_window_ms > 0)
			it->due_ms += (int64_t) sim_rng_below(&dl->rng, (uint64_t) s->shuffle_window_ms + 1);
		else if (c == 1)
			it->due_ms += 20;	/* the copy goes right after the original */
		if (c == 1)
			SIM_STAT_ADD(svc, webhooks_duplicated, 1);
		dl_push(dl, it);
	}
	pthread_cond_broadcast(&dl->cond);
	pthread_mutex_unlock(&dl->lock);
}

/*
 * sim_emit_event
 *		Build the event envelope of webhook_events.json and queue its
 *		delivery.  Caller holds svc->lock, which keeps ids and timestamps in
 *		the order the changes were applied.
 */
void
sim_emit_event(SimService *svc, const char *event_type, const char *org,
			   const char *data_json, const char *correlation_id)
{
	SimWebhookSettings s;
	char		event_id[48];
	char		ts[40];
	SimBuf		body;
	SimJw		jw;

	sim_new_id(svc, "evt_", event_id, sizeof(event_id));
	memcpy(svc->last_event_id, event_id, sizeof(svc->last_event_id));
	sim_format_time(sim_event_time(svc), ts, sizeof(ts));
	sbuf_init(&body);
	jw_init(&jw, &body);
	jw_obj_begin(&jw);
	jw_kstr(&jw, "event_id", event_id);
	jw_kstr(&jw, "event_type", event_type);
	jw_kstr(&jw, "timestamp", ts);
	jw_kstr(&jw, "organization_id", org);
	jw_key(&jw, "data");
	jw_raw(&jw, data_json);
	jw_key(&jw, "metadata");
	jw_obj_begin(&jw);
	jw_kstr(&jw, "source", "saas-sim");
	jw_kstr(&jw, "version", "1.0");
	jw_kstr(&jw, "service", svc->name);
	if (correlation_id)
		jw_kstr(&jw, "correlation_id", correlation_id);
	jw_obj_end(&jw);
	jw_obj_end(&jw);

	SIM_STAT_ADD(svc, events_emitted, 1);
	sim_webhook_settings_get(&s);
	if (s.enabled)
		dl_enqueue(svc, event_id, event_type, body.data, body.len, &s);
	sbuf_free(&body);
}
