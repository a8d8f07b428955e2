/*-------------------------------------------------------------------------
 *
 * sim.h
 *	  Shared types of saas-sim, the simulated external services of pg_saas.
 *
 * saas-sim runs three fake SaaS providers (user, payment, communication
 * service) and an OpenID Connect provider (identity-provider), each on its
 * own port, plus a control port for tests.  Every state change of the three
 * SaaS providers is sent as a signed Standard Webhooks delivery.
 *
 * Locking, written once here:
 *	- SimService.lock guards the service's data and its idempotency store;
 *	  a request holds it only while it looks up, applies and records, never
 *	  while it sleeps for an injected latency or hangs.
 *	- SimService.faults_lock guards the fault profile and the fault PRNG.
 *	- SimService.daemon_lock serializes opening and closing the listening
 *	  daemon (control thread and flap timer both do it).
 *	- Each delivery queue has its own lock (delivery.c); the webhook
 *	  settings have one global lock.
 *	- Counters are updated with atomic builtins and need no lock.
 *	Lock order: daemon_lock, then lock, then a delivery lock.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SIM_H
#define SIM_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "json.h"

#define SIM_VERSION "0.1.0"

typedef enum SimServiceId
{
	SIM_USER = 0,
	SIM_PAYMENT = 1,
	SIM_COMM = 2,
	SIM_IDP = 3,				/* identity-provider, the OIDC provider (idp.h) */
	SIM_NSERVICES = 4
} SimServiceId;

/* ---- util.c ---- */

/* splitmix64: small, seedable, and the same sequence on every platform */
typedef struct SimRng
{
	uint64_t	state;
} SimRng;

extern void sim_rng_seed(SimRng *rng, uint64_t seed);
extern uint64_t sim_rng_next(SimRng *rng);
extern double sim_rng_unit(SimRng *rng);
extern uint64_t sim_rng_below(SimRng *rng, uint64_t n);

/* a chained hash map from strings to pointers; the map owns copies of keys */
typedef struct SimMapEntry
{
	char	   *key;
	void	   *value;
	struct SimMapEntry *next;
} SimMapEntry;

typedef struct SimMap
{
	SimMapEntry **buckets;
	size_t		nbuckets;
	size_t		count;
} SimMap;

extern void sim_map_init(SimMap *map);
extern void *sim_map_get(const SimMap *map, const char *key);
extern void sim_map_put(SimMap *map, const char *key, void *value);
extern void *sim_map_remove(SimMap *map, const char *key);
extern void sim_map_free(SimMap *map, void (*free_value) (void *));

extern void *sim_malloc(size_t size);
extern void *sim_realloc(void *ptr, size_t size);
extern char *sim_strdup(const char *s);
extern char *sim_strndup(const char *s, size_t n);

extern int64_t sim_now_ms(void);
extern int64_t sim_mono_ms(void);
extern int64_t sim_mono_us(void);
extern void sim_format_time(int64_t ms, char *out, size_t outlen);
extern bool sim_parse_time(const char *s, int64_t *ms);
extern void sim_sleep_ms(int ms);

extern char *sim_base64_encode(const unsigned char *data, size_t len);
extern unsigned char *sim_base64_decode(const char *text, size_t *outlen);
extern void sim_sha256_hex(const char *data, size_t len, char out[65]);
extern bool sim_parse_int(const char *s, long min, long max, long *out);
extern bool sim_parse_double(const char *s, double *out);

extern void sim_log(const char *fmt,...) __attribute__((format(printf, 1, 2)));

/* ---- faults.c ---- */

typedef enum SimMode
{
	SIM_MODE_OK,
	SIM_MODE_DOWN,
	SIM_MODE_HANG,
	SIM_MODE_FLAP
} SimMode;

/* how a lost response is lost (the effect is applied in every case) */
typedef enum SimLost
{
	SIM_LOST_ERROR,				/* the answer is replaced by the injected error */
	SIM_LOST_DROP,				/* the connection is closed with no answer */
	SIM_LOST_HANG				/* no answer until the client gives up */
} SimLost;

typedef struct SimFaults
{
	double		error_rate;		/* share of requests answered with status */
	int			status;			/* status of an injected error */
	int			latency_ms;		/* added before every answer */
	int			jitter_ms;		/* plus uniform 0..jitter_ms */
	SimMode		mode;
	int			retry_after;	/* seconds; sets Retry-After on injected errors */
	int			flap_period_ms; /* length of each up and each down phase */
	double		lost_response_rate; /* effect applied, answer lost */
	SimLost		lost_response;	/* how it is lost */
	int			hang_max_ms;	/* a hang ends by itself after this long */
	int64_t		flap_started_ms;	/* monotonic; phase 0 (up) starts here */
} SimFaults;

/* what one request is to suffer, drawn from the service's fault PRNG */
typedef struct SimFaultDecision
{
	bool		hang;
	int			delay_ms;
	int			error_status;	/* 0: none */
	bool		lose_response;
	SimLost		lost_how;		/* with lose_response */
	int			retry_after;
} SimFaultDecision;

/* ---- idempotency.c ---- */

typedef struct SimIdemRecord
{
	char		fingerprint[65];
	int			status;
	char	   *body;
	size_t		body_len;
} SimIdemRecord;

typedef struct SimIdemStore
{
	SimMap		map;
	char	  **ring;			/* keys in insertion order, for eviction */
	size_t		ring_cap;
	size_t		ring_head;
	size_t		ring_count;
} SimIdemStore;

/* ---- the request and response a service handler sees ---- */

struct MHD_Connection;

typedef struct SimRequest
{
	struct MHD_Connection *conn;
	const char *method;
	const char *path;
	const char *body;
	size_t		body_len;
	const char *request_id;
	const char *idempotency_key;	/* NULL when absent */
	const char *correlation_id; /* idempotency key or request id */
} SimRequest;

typedef struct SimResponse
{
	int			status;
	SimBuf		body;
	char		allow[64];		/* Allow header for 405 */
	char		retry_after[16];
	bool		replayed;
	const char *note;			/* for the log line: fault, replay ... */
	/* headers only the identity-provider sets (empty: none) */
	char		location[4096]; /* a 302's target */
	char		www_authenticate[160];
	bool		no_store;		/* Cache-Control: no-store, Pragma: no-cache */
} SimResponse;

extern const char *sim_req_query(const SimRequest *req, const char *name);
extern void sim_resp_error(SimResponse *resp, int status, const char *code,
						   const char *fmt,...) __attribute__((format(printf, 4, 5)));
extern void sim_resp_begin_success(SimResponse *resp, int status, SimJw *jw);
extern void sim_resp_end_success(SimResponse *resp, SimJw *jw);
extern json_t *sim_req_json_object(const SimRequest *req, SimResponse *resp);
extern bool sim_check_fields(json_t *obj, const char *const *allowed,
							 SimResponse *resp);

/* ---- the services ---- */

typedef struct SimStats
{
	uint64_t	requests;
	uint64_t	faults_injected;
	uint64_t	idempotent_replays;
	uint64_t	idempotency_conflicts;
	uint64_t	effects;
	uint64_t	events_emitted;
	uint64_t	webhook_attempts;
	uint64_t	webhooks_sent;
	uint64_t	webhooks_failed;
	uint64_t	webhooks_retried;
	uint64_t	webhooks_duplicated;
	uint64_t	webhooks_dead;
	uint64_t	webhooks_dropped;
	uint64_t	responses_2xx;
	uint64_t	responses_4xx;
	uint64_t	responses_5xx;
} SimStats;

#define SIM_STAT_ADD(svc, field, n) \
	__atomic_add_fetch(&(svc)->stats.field, (n), __ATOMIC_RELAXED)

struct SimService;
struct SimSeed;

typedef struct SimServiceOps
{
	void		(*reset) (struct SimService *svc, const struct SimSeed *seed);
	void		(*free_state) (struct SimService *svc);
	void		(*handle) (struct SimService *svc, const SimRequest *req, SimResponse *resp);
	/* writes a state dump of one kind ("users" ...) as a JSON array; false if unknown */
	bool		(*dump) (struct SimService *svc, const char *kind, const char *org, SimJw *jw);
} SimServiceOps;

struct MHD_Daemon;
struct SimDelivery;

typedef struct SimService
{
	SimServiceId id;
	const char *name;			/* "user-service" */
	const char *key;			/* "user_service", as in external_ids */
	const char *base;			/* "/v1" */
	const char *default_secret_key; /* secret_key of integration_config.json */
	double		retry_multiplier;	/* retry_policy of integration_config.json */
	int			max_backoff_s;
	const char *const *event_types; /* as in integration_config.json */
	const SimServiceOps *ops;

	int			port;			/* the port asked for, then the port bound */
	char	   *secret;			/* "whsec_..." */
	unsigned char *secret_key;	/* its decoded bytes, the HMAC key */
	size_t		secret_key_len;

	pthread_mutex_t lock;
	void	   *state;
	SimIdemStore idem;
	SimRng		id_rng;			/* ids of created objects and events */
	int64_t		last_event_ms;	/* event timestamps strictly increase */
	char		last_event_id[48];	/* of the latest sim_emit_event */

	pthread_mutex_t faults_lock;
	SimFaults	faults;
	SimFaults	start_faults;	/* from --faults, restored by reset */
	SimRng		fault_rng;

	pthread_mutex_t daemon_lock;
	struct MHD_Daemon *daemon;
	unsigned	epoch;			/* bumped when the daemon closes */

	struct SimDelivery *delivery;
	SimStats	stats;
} SimService;

extern SimService sim_services[SIM_NSERVICES];
extern SimService *sim_service_by_name(const char *name);
extern void sim_services_init(void);
extern void sim_services_free(void);

extern const SimServiceOps sim_user_ops;
extern const SimServiceOps sim_payment_ops;
extern const SimServiceOps sim_comm_ops;
extern const SimServiceOps sim_idp_ops;

/* ---- global configuration (main.c) ---- */

typedef struct SimConfig
{
	const char *bind_address;
	int			control_port;
	uint64_t	seed;
	bool		seed_given;
	const char *seed_data_path;
	size_t		max_body;
	bool		quiet;
	int64_t		started_ms;		/* monotonic */
	volatile bool stopping;
} SimConfig;

extern SimConfig sim_config;

/* ---- seed.c ---- */

typedef struct SimSeedOrg
{
	char	   *id;
	char	   *name;
	char	   *tier;
	bool		payment_enabled;
	bool		communication_enabled;
} SimSeedOrg;

typedef struct SimSeedUser
{
	char	   *org;
	char	   *email;
	char	   *first_name;
	char	   *last_name;
	char	   *role;
	char	   *status;
	char	   *created_at;
	char	   *user_service_id;
	char	   *payment_service_id;
} SimSeedUser;

typedef struct SimSeed
{
	SimSeedOrg *orgs;
	size_t		norgs;
	SimSeedUser *users;
	size_t		nusers;
	char	   *path;			/* where it was read from, NULL if none */
} SimSeed;

extern void sim_seed_load(SimSeed *seed, const char *path);
extern void sim_seed_free(SimSeed *seed);
extern const SimSeed *sim_seed_get(void);
extern SimSeed *sim_seed_global(void);
extern bool sim_service_has_event_type(const SimService *svc, const char *type);

/* ---- faults.c ---- */

extern void sim_faults_default(SimFaults *f);
extern bool sim_faults_from_json(json_t *obj, SimFaults *f, char *err, size_t errlen);
extern bool sim_faults_from_spec(const char *spec, SimFaults *f, char *err, size_t errlen);
extern void sim_faults_write(SimJw *jw, const SimFaults *f);
extern bool sim_faults_should_listen(const SimFaults *f, int64_t mono_ms);
extern void sim_faults_decide(SimService *svc, SimFaultDecision *d);
extern const char *sim_mode_name(SimMode mode);
extern void sim_faults_set(SimService *svc, const SimFaults *f);
extern void sim_faults_get(SimService *svc, SimFaults *f);

/* ---- server.c ---- */

extern bool sim_server_start_control(void);
extern void sim_server_stop_control(void);
extern bool sim_server_reconcile(SimService *svc);
extern void sim_server_close_service(SimService *svc);
extern bool sim_server_is_listening(SimService *svc);

/* ---- idempotency.c ---- */

extern void sim_idem_init(SimIdemStore *store);
extern void sim_idem_clear(SimIdemStore *store);
extern const SimIdemRecord *sim_idem_get(SimIdemStore *store, const char *key);
extern void sim_idem_put(SimIdemStore *store, const char *key, const char *fingerprint,
						 int status, const char *body, size_t body_len);
extern void sim_idem_fingerprint(const SimRequest *req, char out[65]);
extern bool sim_idem_key_valid(const char *key);

/* ---- events and delivery (delivery.c) ---- */

typedef struct SimWebhookSettings
{
	char		url[512];		/* base; the service name is appended */
	bool		enabled;
	bool		paused;
	double		duplicate_rate;
	bool		shuffle;
	int			shuffle_window_ms;
	int			retry_base_ms;
	int			max_backoff_ms; /* 0: the service's own cap */
	int			max_attempts;
	int			timeout_ms;
	int			queue_max;
} SimWebhookSettings;

extern SimWebhookSettings sim_webhook_start_settings;

extern void sim_delivery_start_all(void);
extern void sim_delivery_stop_all(void);
extern void sim_delivery_clear(SimService *svc);
extern void sim_webhook_settings_get(SimWebhookSettings *s);
extern void sim_webhook_settings_set(const SimWebhookSettings *s);
extern bool sim_webhook_settings_from_json(json_t *obj, SimWebhookSettings *s,
										   char *err, size_t errlen);
extern void sim_webhook_settings_write(SimJw *jw, const SimWebhookSettings *s);
extern void sim_delivery_write_status(SimJw *jw, const char *service_filter);
extern size_t sim_delivery_pending(SimService *svc);

/* call with svc->lock held; data is a complete JSON value */
extern void sim_emit_event(SimService *svc, const char *event_type, const char *org,
						   const char *data_json, const char *correlation_id);
extern void sim_new_id(SimService *svc, const char *prefix, char *out, size_t outlen);
extern int64_t sim_event_time(SimService *svc);

/* ---- webhook_sign.c ---- */

extern bool sim_secret_decode(const char *whsec, unsigned char **key, size_t *keylen);
extern char *sim_secret_default(const char *secret_key);
extern void sim_sign(const unsigned char *key, size_t keylen, const char *msg_id,
					 long timestamp, const char *body, size_t body_len,
					 char *out, size_t outlen);

/* ---- control.c ---- */

extern void sim_control_handle(const SimRequest *req, SimResponse *resp);
/* /_sim/oidc[/...] (idp_control.c) */
extern void sim_idp_control(const SimRequest *req, const char *sub, SimResponse *resp);
extern void sim_reset_all(void);

/* ---- emit.c ---- */

extern int sim_emit_main(int argc, char **argv);

#endif							/* SIM_H */
