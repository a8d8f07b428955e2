/*-------------------------------------------------------------------------
 *
 * emit.c
 *	  saas-sim emit: generated, signed events at a steady rate, for load
 *	  tests of a webhook receiver.
 *
 * Events are generated first (deterministic under --seed), then shuffled
 * and duplicated as asked, grouped into batches, and sent open-loop: request
 * k starts at k * batch / rate seconds whatever the receiver's latency (up
 * to --concurrency in flight), so a slow receiver shows up as latency, not
 * as a lower offered rate.  It prints what it sent and how it was answered,
 * and exits 0 when every request got a 2xx, 1 when some did not, 2 when
 * the receiver could not be reached at all, 64 on a usage error.
 *
 *-------------------------------------------------------------------------
 */
#include "sim.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

typedef struct EmitEvent
{
	char	   *id;
	char	   *type;
	char	   *json;
} EmitEvent;

typedef struct EmitSend
{
	double		key;			/* position in the send order */
	size_t		event;
	bool		duplicate;
} EmitSend;

typedef struct EmitRequest
{
	char	   *webhook_id;
	char	   *body;
	size_t		nevents;
	int64_t		start_us;
	long		status;			/* 0: transport error */
	double		latency_ms;
	CURLcode	curl_rc;
	bool		finished;
	CURL	   *handle;			/* while in flight */
	struct curl_slist *hdrs;
	char		err[CURL_ERROR_SIZE];
} EmitRequest;

typedef struct EmitOptions
{
	SimService *svc;
	double		rate;
	long		count;
	const char *url;
	double		duplicates;
	bool		shuffle;
	long		batch;
	const char *org;
	const char *secret;
	uint64_t	seed;
	long		concurrency;
	long		timeout_ms;
	bool		object_format;
	bool		verbose;
} EmitOptions;

/* emit_usage: saas-sim emit --help */
static void
emit_usage(FILE *out)
{
	fprintf(out,
			"Usage: saas-sim emit --service NAME [OPTIONS]\n"
			"Send generated, Standard-Webhooks-signed events to URL/{service}.\n"
			"\n"
			"  --service NAME       user-service, payment-service or communication-service\n"
			"  --rate R             events per second (default 10; 0 = as fast as possible)\n"
			"  --count N            events to generate (default 10)\n"
			"  --webhook-url URL    receiver base (default http://127.0.0.1:8080/webhooks)\n"
			"  --duplicates F       share of events sent a second time, later (0..1)\n"
			"  --shuffle            send the events in a random order\n"
			"  --batch B            events per request (default 1; >1 sends a JSON array)\n"
			"  --bulk-format F      array (default) or object: {\"events\":[...]}\n"
			"  --org REF            organization_id of the events (default org_001)\n"
			"  --secret whsec_...   signing secret (default: the service's default secret)\n"
			"  --seed N             seed of the generator (default 1)\n"
			"  --concurrency C      requests in flight at most (default 16)\n"
			"  --timeout-ms N       per request (default 10000)\n"
			"  --verbose            one line per request\n"
			"Exit: 0 all answered 2xx, 1 some not, 2 receiver unreachable, 64 usage.\n");
}

/* emit_user_data: data of a generated user.* event */
static void
emit_user_data(SimJw *jw, const char *type, const char *uid, const char *email, SimRng *rng)
{
	static const char *const first[] = {"Alice", "Bob", "Carol", "Dan", "Erin", "Frank"};
	static const char *const depts[] = {"Engineering", "Product", "Sales", "Support"};

	jw_obj_begin(jw);
	jw_kstr(jw, "user_id", uid);
	if (strcmp(type, "user.created") == 0)
	{
		jw_kstr(jw, "email", email);
		jw_kstr(jw, "first_name", first[sim_rng_below(rng, 6)]);
		jw_kstr(jw, "last_name", "Emitted");
		jw_kstr(jw, "department", depts[sim_rng_below(rng, 4)]);
		jw_kstr(jw, "status", "active");
	}
	else if (strcmp(type, "user.updated") == 0)
	{
		jw_key(jw, "changes");
		jw_obj_begin(jw);
		jw_kstr(jw, "department", depts[sim_rng_below(rng, 4)]);
		jw_obj_end(jw);
		jw_key(jw, "previous_values");
		jw_obj_begin(jw);
		jw_kstr(jw, "department", depts[sim_rng_below(rng, 4)]);
		jw_obj_end(jw);
	}
	else
	{
		jw_kstr(jw, "email", email);
		if (strcmp(type, "user.deleted") == 0)
			jw_kstr(jw, "deletion_reason", "employment_terminated");
		else
			jw_kstr(jw, "status", strcmp(type, "user.activated") == 0 ? "active" : "inactive");
	}
	jw_obj_end(jw);
}

/* emit_generate: n events of the service, in a plausible order (created before updated) */
static EmitEvent *
emit_generate(const EmitOptions *o, SimRng *rng)
{
	EmitEvent  *ev = calloc((size_t) o->count, sizeof(EmitEvent));
	char	  **known = calloc((size_t) o->count, sizeof(char *));
	size_t		nknown = 0;
	int64_t		ts_ms = sim_now_ms();

	if (ev == NULL || known == NULL)
		abort();
	for (long i = 0; i < o->count; i++)
	{
		const char *type;
		char		obj_id[64],
					email[96],
					ts[40],
					eid[48];
		double		r = sim_rng_unit(rng);
		bool		fresh = nknown == 0;
		SimBuf		b;
		SimJw		jw;
		size_t		pick = 0;

		snprintf(eid, sizeof(eid), "evt_emit_%016llx", (unsigned long long) sim_rng_next(rng));
		if (!fresh)
			pick = sim_rng_below(rng, nknown);
		switch (o->svc->id)
		{
			case SIM_USER:
				fresh = fresh || r < 0.45;
				type = fresh ? "user.created" : r < 0.8 ? "user.updated" : r < 0.87 ? "user.deactivated" :
					r < 0.94 ? "user.activated" : "user.deleted";
				break;
			case SIM_PAYMENT:
				fresh = fresh || r < 0.3;
				type = fresh ? "subscription.created" : r < 0.5 ? "invoice.created" :
					r < 0.75 ? "payment.succeeded" : r < 0.8 ? "payment.failed" :
					r < 0.95 ? "subscription.updated" : "subscription.canceled";
				break;
			default:
				fresh = fresh || r < 0.35;
				type = fresh ? "message.sent" : r < 0.65 ? "message.delivered" :
					r < 0.8 ? "message.opened" : r < 0.9 ? "message.clicked" : "message.bounced";
				break;
		}
		if (fresh)
		{
			snprintf(obj_id, sizeof(obj_id), "%s%016llx",
					 o->svc->id == SIM_USER ? "ext_user_emit_" : o->svc->id == SIM_PAYMENT ? "sub_emit_" : "msg_emit_",
					 (unsigned long long) sim_rng_next(rng));
			known[nknown++] = sim_strdup(obj_id);
		}
		else
			snprintf(obj_id, sizeof(obj_id), "%s", known[pick]);
		snprintf(email, sizeof(email), "%s@emit.example.com", obj_id);

		sbuf_init(&b);
		jw_init(&jw, &b);
		sim_format_time(ts_ms + i, ts, sizeof(ts));	/* strictly increasing */
		jw_obj_begin(&jw);
		jw_kstr(&jw, "event_id", eid);
		jw_kstr(&jw, "event_type", type);
		jw_kstr(&jw, "timestamp", ts);
		jw_kstr(&jw, "organization_id", o->org);
		jw_key(&jw, "data");
		if (o->svc->id == SIM_USER)
			emit_user_data(&jw, type, obj_id, email, rng);
		else
		{
			jw_obj_begin(&jw);
			jw_kstr(&jw, o->svc->id == SIM_PAYMENT ? "subscription_id" : "message_id", obj_id);
			if (o->svc->id == SIM_PAYMENT)
			{
				jw_kstr(&jw, "customer_id", "cust_emit");
				jw_kstr(&jw, "plan", "professional");
				jw_knum(&jw, "amount", 299.99);
				jw_kstr(&jw, "currency", "USD");
			}
			else
				jw_kstr(&jw, "recipient", email);
			jw_obj_end(&jw);
		}
		jw_key(&jw, "metadata");
		jw_obj_begin(&jw);
		jw_kstr(&jw, "source", "saas-sim emit");
		jw_kstr(&jw, "version", "1.0");
		jw_kint(&jw, "sequence", i);
		jw_obj_end(&jw);
		jw_obj_end(&jw);
		ev[i].id = sim_strdup(eid);
		ev[i].type = sim_strdup(type);
		ev[i].json = sbuf_steal(&b);
	}
	for (size_t i = 0; i < nknown; i++)
		free(known[i]);
	free(known);
	return ev;
}

/* emit_cmp_send: order sends by key, ties by event then original first */
static int
emit_cmp_send(const void *a, const void *b)
{
	const EmitSend *x = a,
			   *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	if (x->event != y->event)
		return x->event < y->event ? -1 : 1;
	return (int) x->duplicate - (int) y->duplicate;
}

/*
 * emit_plan: the send order.  With --shuffle a Fisher-Yates permutation;
 * a duplicate goes 1 to 50 positions after its original, as a redelivery
 * would.
 */
static EmitSend *
emit_plan(const EmitOptions *o, SimRng *rng, size_t *nsends)
{
	size_t		n = (size_t) o->count;
	size_t	   *order = calloc(n, sizeof(size_t));
	EmitSend   *s = calloc(2 * n, sizeof(EmitSend));
	size_t		k = 0;

	if (order == NULL || s == NULL)
		abort();
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	if (o->shuffle)
		for (size_t i = n - 1; i > 0; i--)
		{
			size_t		j = sim_rng_below(rng, i + 1),
						t = order[i];

			order[i] = order[j];
			order[j] = t;
		}
	for (size_t pos = 0; pos < n; pos++)
	{
		s[k++] = (EmitSend)
		{
			(double) pos, order[pos], false
		};
		if (o->duplicates > 0 && sim_rng_unit(rng) < o->duplicates)
			s[k++] = (EmitSend)
		{
			(double) pos + 1.5 + (double) sim_rng_below(rng, 50), order[pos], true
		};
	}
	qsort(s, k, sizeof(EmitSend), emit_cmp_send);
	free(order);
	*nsends = k;
	return s;
}

/* emit_build_requests: group the sends into request bodies */
static EmitRequest *
emit_build_requests(const EmitOptions *o, EmitEvent *ev, EmitSend *sends, size_t nsends,
					size_t *nreq, SimRng *rng)
{
	size_t		n = (nsends + (size_t) o->batch - 1) / (size_t) o->batch;
	EmitRequest *r = calloc(n ? n : 1, sizeof(EmitRequest));

	if (r == NULL)
		abort();
	for (size_t i = 0; i < n; i++)
	{
		size_t		first = i * (size_t) o->batch;
		size_t		last = first + (size_t) o->batch;
		SimBuf		b;
		char		id[48];

		if (last > nsends)
			last = nsends;
		sbuf_init(&b);
		if (o->batch == 1)
		{
			/* a single event keeps its id as webhook-id, duplicates included */
			sbuf_puts(&b, ev[sends[first].event].json);
			r[i].webhook_id = sim_strdup(ev[sends[first].event].id);
		}
		else
		{
			sbuf_puts(&b, o->object_format ? "{\"events\":[" : "[");
			for (size_t k = first; k < last; k++)
			{
				if (k > first)
					sbuf_putc(&b, ',');
				sbuf_puts(&b, ev[sends[k].event].json);
			}
			sbuf_puts(&b, o->object_format ? "]}" : "]");
			snprintf(id, sizeof(id), "msg_%016llx", (unsigned long long) sim_rng_next(rng));
			r[i].webhook_id = sim_strdup(id);
		}
		r[i].nevents = last - first;
		r[i].body = sbuf_steal(&b);
	}
	*nreq = n;
	return r;
}

/* emit_discard: libcurl write callback that drops the receiver's body */
static size_t
emit_discard(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	(void) ptr;
	(void) userdata;
	return size * nmemb;
}

/* emit_start: sign and add one request to the multi handle */
static CURL *
emit_start(CURLM *multi, const EmitOptions *o, const unsigned char *key, size_t keylen,
		   const char *url, EmitRequest *r)
{
	CURL	   *h = curl_easy_init();
	char		line[256],
				sig[128];
	long		ts = (long) (sim_now_ms() / 1000);

	sim_sign(key, keylen, r->webhook_id, ts, r->body, strlen(r->body), sig, sizeof(sig));
	r->hdrs = curl_slist_append(r->hdrs, "Content-Type: application/json");
	snprintf(line, sizeof(line), "webhook-id: %s", r->webhook_id);
	r->hdrs = curl_slist_append(r->hdrs, line);
	snprintf(line, sizeof(line), "webhook-timestamp: %ld", ts);
	r->hdrs = curl_slist_append(r->hdrs, line);
	snprintf(line, sizeof(line), "webhook-signature: %s", sig);
	r->hdrs = curl_slist_append(r->hdrs, line);
	r->hdrs = curl_slist_append(r->hdrs, "Expect:");
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, r->body);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, r->hdrs);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "saas-sim-emit/" SIM_VERSION);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, o->timeout_ms);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PRIVATE, r);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, r->err);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, emit_discard);
	r->start_us = sim_mono_us();
	r->handle = h;
	curl_multi_add_handle(multi, h);
	return h;
}

/* emit_cmp_double: for sorting latencies */
static int
emit_cmp_double(const void *a, const void *b)
{
	double		x = *(const double *) a,
				y = *(const double *) b;

	return x < y ? -1 : x > y;
}

/* emit_parse: the emit options, exiting 64 on a usage error */
static void
emit_parse(int argc, char **argv, EmitOptions *o)
{
	static const struct option opts[] = {
		{"service", required_argument, NULL, 's'}, {"rate", required_argument, NULL, 'r'},
		{"count", required_argument, NULL, 'n'}, {"webhook-url", required_argument, NULL, 'u'},
		{"duplicates", required_argument, NULL, 'd'}, {"shuffle", no_argument, NULL, 'S'},
		{"batch", required_argument, NULL, 'b'}, {"org", required_argument, NULL, 'o'},
		{"secret", required_argument, NULL, 'k'}, {"seed", required_argument, NULL, 'e'},
		{"concurrency", required_argument, NULL, 'c'}, {"timeout-ms", required_argument, NULL, 't'},
		{"bulk-format", required_argument, NULL, 'f'}, {"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}
	};
	int			c;
	long		v;

	memset(o, 0, sizeof(*o));
	o->rate = 10;
	o->count = 10;
	o->url = "http://127.0.0.1:8080/webhooks";
	o->batch = 1;
	o->org = "org_001";
	o->seed = 1;
	o->concurrency = 16;
	o->timeout_ms = 10000;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1)
	{
		bool		ok = true;

		switch (c)
		{
			case 's':
				ok = (o->svc = sim_service_by_name(optarg)) != NULL;
				break;
			case 'r':
				ok = sim_parse_double(optarg, &o->rate) && o->rate >= 0 && o->rate <= 1e7;
				break;
			case 'n':
				ok = sim_parse_int(optarg, 1, 10000000, &o->count);
				break;
			case 'u':
				o->url = optarg;
				ok = strncmp(optarg, "http://", 7) == 0 || strncmp(optarg, "https://", 8) == 0;
				break;
			case 'd':
				ok = sim_parse_double(optarg, &o->duplicates) && o->duplicates >= 0 && o->duplicates <= 1;
				break;
			case 'S':
				o->shuffle = true;
				break;
			case 'b':
				ok = sim_parse_int(optarg, 1, 10000, &o->batch);
				break;
			case 'o':
				o->org = optarg;
				break;
			case 'k':
				o->secret = optarg;
				break;
			case 'e':
				ok = sim_parse_int(optarg, 0, __LONG_MAX__, &v);
				o->seed = (uint64_t) v;
				break;
			case 'c':
				ok = sim_parse_int(optarg, 1, 1000, &o->concurrency);
				break;
			case 't':
				ok = sim_parse_int(optarg, 100, 600000, &o->timeout_ms);
				break;
			case 'f':
				ok = strcmp(optarg, "array") == 0 || strcmp(optarg, "object") == 0;
				o->object_format = strcmp(optarg, "object") == 0;
				break;
			case 'v':
				o->verbose = true;
				break;
			case 'h':
				emit_usage(stdout);
				exit(0);
			default:
				emit_usage(stderr);
				exit(64);
		}
		if (!ok)
		{
			const char *name = "?";

			for (const struct option *op = opts; op->name; op++)
				if (op->val == c)
					name = op->name;
			fprintf(stderr, "saas-sim emit: bad value for --%s: \"%s\" (see --help)\n",
					name, optarg ? optarg : "");
			exit(64);
		}
	}
	if (o->svc == NULL || optind < argc)
	{
		fprintf(stderr, "saas-sim emit: --service is required (see --help)\n");
		exit(64);
	}
}

/* emit_report: what was sent and how it was answered */
static void
emit_report(const EmitOptions *o, const char *url, EmitEvent *ev, EmitSend *sends,
			size_t nsends, const EmitRequest *req, size_t nreq, size_t done, double secs)
{
	long		statuses[600] = {0};
	long		transport = 0;
	double	   *lat = calloc(done ? done : 1, sizeof(double));
	size_t		nlat = 0,
				ndup = 0;
	const char *const *types = o->svc->event_types;

	if (lat == NULL)
		abort();
	for (size_t i = 0; i < nsends; i++)
		ndup += sends[i].duplicate;
	printf("emit: %s -> %s\n", o->svc->name, url);
	printf("sent: %zu events (%ld distinct, %zu duplicates) in %zu of %zu requests, batch %ld%s%s\n",
		   nsends, o->count, ndup, done, nreq, o->batch,
		   o->batch > 1 ? (o->object_format ? " as {\"events\":[...]}" : " as a JSON array") : "",
		   o->shuffle ? ", shuffled" : "");
	if (o->rate > 0)
		printf("time: %.2f s, target %.1f events/s, ", secs, o->rate);
	else
		printf("time: %.2f s, unthrottled, ", secs);
	printf("achieved %.1f events/s\n",
		   secs > 0 ? (double) nsends * ((double) done / (double) (nreq ? nreq : 1)) / secs : 0.0);
	printf("events by type:");
	for (; *types; types++)
	{
		long		n = 0;

		for (size_t i = 0; i < nsends; i++)
			n += strcmp(ev[sends[i].event].type, *types) == 0;
		if (n)
			printf(" %s=%ld", *types, n);
	}
	printf("\n");
	for (size_t i = 0; i < nreq; i++)
	{
		if (!req[i].finished)
			continue;
		if (req[i].status > 0 && req[i].status < 600)
			statuses[req[i].status]++;
		else
			transport++;
		lat[nlat++] = req[i].latency_ms;
	}
	printf("answers:");
	for (int s = 0; s < 600; s++)
		if (statuses[s])
			printf(" %d=%ld", s, statuses[s]);
	if (transport)
		printf(" transport-error=%ld", transport);
	printf("\n");
	if (nlat)
	{
		qsort(lat, nlat, sizeof(double), emit_cmp_double);
		printf("latency ms: min %.2f p50 %.2f p95 %.2f p99 %.2f max %.2f\n", lat[0],
			   lat[nlat / 2], lat[(size_t) (nlat * 0.95)], lat[(size_t) (nlat * 0.99)], lat[nlat - 1]);
	}
	free(lat);
}

/* sim_emit_main: saas-sim emit */
int
sim_emit_main(int argc, char **argv)
{
	EmitOptions o;
	SimRng		rng;
	EmitEvent  *ev;
	EmitSend   *sends;
	EmitRequest *req;
	size_t		nsends,
				nreq,
				next = 0,
				done = 0,
				inflight = 0,
				ok2xx = 0;
	unsigned char *key = NULL;
	size_t		keylen = 0;
	char	   *secret;
	char		url[600];
	CURLM	   *multi;
	int64_t		t0;
	bool		unreachable = false;
	int			rc;

	emit_parse(argc, argv, &o);
	secret = o.secret ? sim_strdup(o.secret) : sim_secret_default(o.svc->default_secret_key);
	if (!sim_secret_decode(secret, &key, &keylen))
	{
		fprintf(stderr, "saas-sim emit: --secret must be whsec_ followed by base64\n");
		free(secret);
		return 64;
	}
	free(secret);
	snprintf(url, sizeof(url), "%s%s%s", o.url,
			 o.url[strlen(o.url) - 1] == '/' ? "" : "/", o.svc->name);

	sim_rng_seed(&rng, o.seed);
	ev = emit_generate(&o, &rng);
	sends = emit_plan(&o, &rng, &nsends);
	req = emit_build_requests(&o, ev, sends, nsends, &nreq, &rng);

	curl_global_init(CURL_GLOBAL_DEFAULT);
	multi = curl_multi_init();
	t0 = sim_mono_us();
	while ((next < nreq || inflight > 0) && !unreachable)
	{
		int64_t		now = sim_mono_us();
		int			running,
					wait_ms = 100;
		CURLMsg    *msg;
		int			left;

		/* open loop: start whatever is due, up to the concurrency limit */
		while (next < nreq && inflight < (size_t) o.concurrency)
		{
			int64_t		due = o.rate > 0 ? t0 + (int64_t) ((double) next * (double) o.batch / o.rate * 1e6) : now;

			if (due > now)
			{
				wait_ms = (int) ((due - now) / 1000);
				break;
			}
			emit_start(multi, &o, key, keylen, url, &req[next]);
			next++;
			inflight++;
		}
		curl_multi_perform(multi, &running);
		while ((msg = curl_multi_info_read(multi, &left)) != NULL)
		{
			EmitRequest *r;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &r);
			r->curl_rc = msg->data.result;
			r->latency_ms = (double) (sim_mono_us() - r->start_us) / 1000.0;
			if (r->curl_rc == CURLE_OK)
				curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &r->status);
			if (r->status >= 200 && r->status < 300)
				ok2xx++;
			if (o.verbose)
				printf("request %zu %s (%zu events) -> %ld %.2f ms%s%s\n", (size_t) (r - req),
					   r->webhook_id, r->nevents, r->status, r->latency_ms,
					   r->curl_rc != CURLE_OK ? " " : "", r->curl_rc != CURLE_OK ? r->err : "");
			if ((r->curl_rc == CURLE_COULDNT_CONNECT || r->curl_rc == CURLE_COULDNT_RESOLVE_HOST) &&
				done == 0)
			{
				fprintf(stderr, "saas-sim emit: receiver unreachable: %s (%s)\n", url, r->err);
				unreachable = true;
			}
			curl_multi_remove_handle(multi, msg->easy_handle);
			curl_easy_cleanup(msg->easy_handle);
			curl_slist_free_all(r->hdrs);
			r->hdrs = NULL;
			r->handle = NULL;
			r->finished = true;
			inflight--;
			done++;
		}
		if (next < nreq || inflight > 0)
			curl_multi_poll(multi, NULL, 0, wait_ms > 0 ? wait_ms : 1, NULL);
	}
	/* requests still in flight after an abort are dropped unanswered */
	for (size_t i = 0; i < nreq; i++)
	{
		if (req[i].handle)
		{
			curl_multi_remove_handle(multi, req[i].handle);
			curl_easy_cleanup(req[i].handle);
			req[i].handle = NULL;
		}
		curl_slist_free_all(req[i].hdrs);
		req[i].hdrs = NULL;
	}
	curl_multi_cleanup(multi);
	curl_global_cleanup();
	emit_report(&o, url, ev, sends, nsends, req, nreq, done, (double) (sim_mono_us() - t0) / 1e6);
	if (unreachable)
		rc = 2;
	else
		rc = (ok2xx == nreq) ? 0 : 1;

	for (long i = 0; i < o.count; i++)
	{
		free(ev[i].id);
		free(ev[i].type);
		free(ev[i].json);
	}
	for (size_t i = 0; i < nreq; i++)
	{
		free(req[i].webhook_id);
		free(req[i].body);
	}
	free(ev);
	free(sends);
	free(req);
	free(key);
	return rc;
}
