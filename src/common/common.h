/*-------------------------------------------------------------------------
 *
 * common.h
 *	  The interface of src/common: the plumbing every subsystem of pg_saas
 *	  uses and that depends on none of them.
 *
 *	  - spi_util.c	saved SPI plans, the pinned execution environment
 *	  - json_out.c	JSON answers written from SPI tuples; page cursors
 *	  - json_in.c	strict JSON validity check, jsonb key lookups
 *	  - base64url.c	strict unpadded base64url
 *	  - uuid.c		UUIDv7 and text conversions
 *	  - util.c		constant-time compare, random bytes, HMAC-SHA256
 *	  - services.c	the external services and their indexes
 *	  - shmem.c		the shared memory registry, and the locking rules
 *	  - citus_env.c	what changes where Citus is loaded
 *	  - worker_link.c what the extension knows of the background worker
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAAS_COMMON_H
#define SAAS_COMMON_H

#include "access/htup.h"
#include "access/tupdesc.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "storage/lwlock.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "pg_saas.h"

/* spi_util.c */
extern ErrorData *saas_subxact_run(void (*fn) (void *arg), void *arg, bool keep);
/* A statement prepared once per backend and kept (SPI_keepplan). */
typedef struct SaasPlan
{
	const char *sql;
	int			nargs;
	Oid			types[12];
	SPIPlanPtr	plan;
	bool		custom_plan;	/* re-plan per use (data-dependent statements) */
} SaasPlan;

extern int	saas_exec(SaasPlan *p, Datum *values, const char *nulls,
					  bool read_only, long count);
extern int	saas_env_push(void);
extern void saas_env_pop(int nestlevel);
extern void saas_spi_connect(void);

/* json_out.c: writing JSON answers straight from SPI tuples into a StringInfo. */
extern void saas_json_key(StringInfo out, bool *first, const char *key);
extern void saas_json_string(StringInfo out, const char *s);
extern void saas_json_uuid(StringInfo out, const pg_uuid_t *u);
extern void saas_json_timestamptz(StringInfo out, TimestampTz ts);

/*
 * saas_json_column: append column attno of tup as a JSON value, by its type
 * (text, uuid, int, bool, timestamptz, jsonb, text[]); NULL becomes null.
 */
extern void saas_json_column(StringInfo out, HeapTuple tup, TupleDesc desc, int attno);

/* saas_json_row: {"name":value,...} of every column, names as in desc. */
extern void saas_json_row(StringInfo out, HeapTuple tup, TupleDesc desc);
extern void saas_json_rows(StringInfo out, HeapTuple *tups, int n, TupleDesc desc, bool as_list);
extern void saas_json_datum(StringInfo out, Datum d, bool isnull, Oid typ);

/* Cursor tokens for pagination: opaque base64url of the last key. */
extern char *saas_cursor_encode(const char *key);
extern char *saas_cursor_decode(const char *cursor);	/* NULL if invalid */
extern bool saas_cursor_uuid(const char *cursor, pg_uuid_t *after);

/* json_in.c */
extern bool saas_json_valid_strict(const char *json, int len, bool top_object);
extern Jsonb *saas_jsonb_from_text(const char *json, int len);
extern JsonbValue *saas_jsonb_get(Jsonb *jb, const char *key);
extern JsonbValue *saas_jsonb_container_get(JsonbContainer *c, const char *key);
extern char *saas_header_get(Jsonb *headers, const char *name);

/* base64url.c */
extern void saas_b64url_encode(const unsigned char *in, int len, StringInfo out);
extern bool saas_b64url_decode(const char *in, int len, StringInfo out);

/* uuid.c */
extern void saas_uuid_v7(pg_uuid_t *out);
extern void saas_uuid_to_cstr(const pg_uuid_t *u, char *buf /* 37 bytes */ );
extern bool saas_uuid_from_cstr(const char *s, pg_uuid_t *out);

/* util.c */
#define SAAS_HMAC_SHA256_LEN 32
#define SAAS_SHA256_LEN 32
extern bool saas_timingsafe_eq(const void *a, const void *b, size_t len);
extern void saas_random_bytes(void *buf, size_t len);
extern int	saas_hex_value(char c);
extern void saas_sha256(const void *data, size_t len, unsigned char *out);
extern void saas_hmac_sha256(const void *key, int keylen, const void *data, size_t len,
							 unsigned char *out);

/*
 * services.c: the external services. saas.integrations is the source (the
 * columns that name a service reference it); shared memory keeps one slot
 * per service (breakers, metrics), so C code knows them by index, and asks
 * for an index with saas_service_index instead of spelling names. The
 * regression tests check that this list and the table agree.
 */
#define SAAS_NSERVICES 3
extern const char *const saas_service_names[SAAS_NSERVICES + 1];	/* NULL-terminated */
extern int	saas_service_index(const char *service);

/*
 * shmem.c: the shared memory registry. Each subsystem that keeps state in
 * shared memory registers itself from _PG_init (while preloading): its
 * size, how many LWLocks it needs (a tranche of its own, named after it)
 * and the function that creates or attaches its structures at startup.
 * The locking rules of all of them are written once, in shmem.c's header.
 */
typedef struct SaasShmemModule
{
	const char *name;			/* shmem struct and LWLock tranche name */
	Size		(*size) (void);
	int			nlocks;			/* 0: no tranche */
	void		(*init) (LWLockPadded *locks);	/* locks: NULL if nlocks = 0 */
} SaasShmemModule;

extern void saas_shmem_register(const SaasShmemModule *module);
extern void saas_shmem_install_hooks(void);

/* schema_version.c: the release of this database's pg_saas objects (the library may be newer). */
extern bool saas_schema_at_least(const char *version);
/* The release whose objects sessions, API keys, invitations, SSO and the dashboard need. */
#define SAAS_RELEASE_0_2 "0.2.0"
extern char *saas_schema_version_text(void);

/* citus_env.c: what pg_saas does differently where Citus is loaded (docs/scale-out.md). */
extern bool saas_citus_loaded(void);
extern void saas_citus_guard_gucs(bool citus_loaded);
extern void saas_citus_propagate(const char *name);
extern void saas_citus_sync(void);
extern void saas_citus_init(void);
extern void saas_citus_nested_reads(void);
extern bool saas_citus_two_users_error(const ErrorData *edata);
#define SAAS_CITUS_TWO_USERS_MESSAGE \
	"on Citus this operation of pg_saas acts as the extension owner, which cannot follow this " \
	"transaction's own writes to the same organization: run it in a transaction of its own, " \
	"or before those writes (docs/scale-out.md)"
#define SAAS_CITUS_TWO_USERS_HINT \
	"On Citus, setting or changing a password acts as the pg_saas extension owner, which cannot " \
	"follow this transaction's own writes to the same organization: do it in a transaction of its " \
	"own, or before those writes (docs/scale-out.md)."

/* log_redact.c: context tokens and password hashes cut out of every logged message. */
extern void saas_log_redact_init(void);

/*
 * worker_link.c: what the extension needs of its background worker, owned
 * by the extension so that the worker depends on it and not the reverse.
 * The worker announces itself (attach/detach); backends wake it.
 */
#define SAAS_WORKER_MAX_PROCS 8	/* most processes saas.worker_processes may ask for */
extern void saas_worker_link_register(void);
extern void saas_worker_link_attach(int slot);
extern void saas_worker_link_detach(int slot);
extern bool saas_worker_running(void);
extern void saas_worker_wake_at_commit(void);
extern uint64 saas_worker_wakeups(void);

#endif							/* SAAS_COMMON_H */
