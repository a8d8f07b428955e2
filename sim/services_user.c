/*-------------------------------------------------------------------------
 *
 * services_user.c
 *	  The simulated user service (base /v1): an HR-style user directory.
 *
 *	  GET    /v1/users?organization_id&updated_since&status&page&per_page
 *	  POST   /v1/users
 *	  GET    /v1/users/{id}
 *	  PUT    /v1/users/{id}		partial update
 *	  DELETE /v1/users/{id}
 *
 * Users belong to an organization reference ("org_001"); an email is
 * unique within its organization.  Changes emit user.created, user.updated
 * (with changes and previous_values, as in webhook_events.json),
 * user.activated / user.deactivated on a status change, and user.deleted.
 * A PUT that changes nothing is not an effect and emits nothing.
 *
 * Callers hold svc->lock (server.c), so nothing here locks.
 *
 *-------------------------------------------------------------------------
 */
#include "sim.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define USERS_PREFIX "/v1/users"
#define USER_MAX_FIELD 256

typedef struct SimUser
{
	char	   *user_id;
	char	   *org;
	char	   *email;
	char	   *first_name;
	char	   *last_name;
	char	   *department;
	char	   *title;
	char	   *status;
	char	   *manager_id;
	char	   *hire_date;
	char	   *role;
	int64_t		created_ms;
	int64_t		updated_ms;
} SimUser;

typedef struct UserState
{
	SimUser   **users;			/* in creation order, for stable pages */
	size_t		count;
	size_t		cap;
	SimMap		by_id;
	SimMap		by_email;		/* org + "\n" + lower-case email */
} UserState;

/* the fields a PUT may change, in the order changes are reported */
static const char *const user_mutable[] = {
	"email", "first_name", "last_name", "department", "title", "status",
	"manager_id", "hire_date", "role", NULL
};

static const char *const user_create_fields[] = {
	"organization_id", "email", "first_name", "last_name", "department", "title",
	"status", "manager_id", "hire_date", "role", NULL
};

/* us_field: the address of a mutable string field by name */
static char **
us_field(SimUser *u, const char *name)
{
	if (strcmp(name, "email") == 0)
		return &u->email;
	if (strcmp(name, "first_name") == 0)
		return &u->first_name;
	if (strcmp(name, "last_name") == 0)
		return &u->last_name;
	if (strcmp(name, "department") == 0)
		return &u->department;
	if (strcmp(name, "title") == 0)
		return &u->title;
	if (strcmp(name, "status") == 0)
		return &u->status;
	if (strcmp(name, "manager_id") == 0)
		return &u->manager_id;
	if (strcmp(name, "hire_date") == 0)
		return &u->hire_date;
	if (strcmp(name, "role") == 0)
		return &u->role;
	return NULL;
}

/* us_email_key: the key of the per-organization email index */
static void
us_email_key(const char *org, const char *email, SimBuf *out)
{
	sbuf_reset(out);
	sbuf_printf(out, "%s\n", org);
	for (const char *p = email; *p; p++)
		sbuf_putc(out, (char) tolower((unsigned char) *p));
}

/* us_user_free: free one user */
static void
us_user_free(SimUser *u)
{
	free(u->user_id);
	free(u->org);
	free(u->email);
	free(u->first_name);
	free(u->last_name);
	free(u->department);
	free(u->title);
	free(u->status);
	free(u->manager_id);
	free(u->hire_date);
	free(u->role);
	free(u);
}

/* us_add: index a new user */
static void
us_add(UserState *st, SimUser *u)
{
	SimBuf		k;

	if (st->count == st->cap)
	{
		st->cap = st->cap ? st->cap * 2 : 64;
		st->users = sim_realloc(st->users, st->cap * sizeof(SimUser *));
	}
	st->users[st->count++] = u;
	sim_map_put(&st->by_id, u->user_id, u);
	sbuf_init(&k);
	us_email_key(u->org, u->email, &k);
	sim_map_put(&st->by_email, k.data, u);
	sbuf_free(&k);
}

/* us_write_user: a user as the service shows it (get_user of external_api_responses.json) */
static void
us_write_user(SimJw *jw, const SimUser *u)
{
	char		created[40],
				updated[40];

	sim_format_time(u->created_ms, created, sizeof(created));
	sim_format_time(u->updated_ms, updated, sizeof(updated));
	jw_obj_begin(jw);
	jw_kstr(jw, "user_id", u->user_id);
	jw_kstr(jw, "organization_id", u->org);
	jw_kstr(jw, "email", u->email);
	jw_kstr(jw, "first_name", u->first_name);
	jw_kstr(jw, "last_name", u->last_name);
	jw_kstr(jw, "department", u->department);
	jw_kstr(jw, "title", u->title);
	jw_kstr(jw, "status", u->status);
	jw_kstr(jw, "manager_id", u->manager_id);
	jw_kstr(jw, "hire_date", u->hire_date);
	jw_kstr(jw, "role", u->role);
	jw_kstr(jw, "created_at", created);
	jw_kstr(jw, "last_updated", updated);
	jw_obj_end(jw);
}

/* us_valid_org: an organization reference: 1-64 of [A-Za-z0-9_.:-] */
static bool
us_valid_org(const char *s)
{
	size_t		n = strlen(s);

	return n > 0 && n <= 64 &&
		strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-") == n;
}

/* us_valid_email: one '@' with text on both sides, no spaces */
static bool
us_valid_email(const char *s)
{
	const char *at = strchr(s, '@');

	return at && at != s && at[1] != '\0' && strchr(at + 1, '@') == NULL &&
		strchr(s, ' ') == NULL && strlen(s) <= 254;
}

/* us_valid_date: YYYY-MM-DD */
static bool
us_valid_date(const char *s)
{
	int64_t		ms;

	return strlen(s) == 10 && sim_parse_time(s, &ms);
}

/*
 * us_check_value
 *		Validate one user field's JSON value; *out is the string or NULL.
 *		Names and email may not be null; status and role are enumerations.
 */
static bool
us_check_value(const char *key, const json_t *v, const char **out, SimResponse *resp)
{
	bool		nullable = strcmp(key, "department") == 0 || strcmp(key, "title") == 0 ||
		strcmp(key, "manager_id") == 0 || strcmp(key, "hire_date") == 0;

	*out = NULL;
	if (json_is_null(v) && nullable)
		return true;
	if (!json_is_string(v))
	{
		sim_resp_error(resp, 400, "VALIDATION_ERROR", "%s must be a string%s", key,
					   nullable ? " or null" : "");
		return false;
	}
	if (strlen(json_string_value(v)) > USER_MAX_FIELD || (json_string_value(v)[0] == '\0' && !nullable))
	{
		sim_resp_error(resp, 400, "VALIDATION_ERROR", "%s must be 1 to %d characters",
					   key, USER_MAX_FIELD);
		return false;
	}
	if (strcmp(key, "email") == 0 && !us_valid_email(json_string_value(v)))
	{
		sim_resp_error(resp, 400, "VALIDATION_ERROR", "email is not a valid address");
		return false;
	}
	if (strcmp(key, "status") == 0 && strcmp(json_string_value(v), "active") != 0 &&
		strcmp(json_string_value(v), "inactive") != 0 && strcmp(json_string_value(v), "suspended") != 0)
	{
		sim_resp_error(resp, 400, "VALIDATION_ERROR",
					   "status must be one of active, inactive, suspended");
		return false;
	}
	if (strcmp(key, "role") == 0 && strcmp(json_string_value(v), "admin") != 0 &&
		strcmp(json_string_value(v), "user") != 0 && strcmp(json_string_value(v), "super_admin") != 0)
	{
		sim_resp_error(resp, 400, "VALIDATION_ERROR", "role must be one of admin, user, super_admin");
		return false;
	}
	if (strcmp(key, "hire_date") == 0 && !us_valid_date(json_string_value(v)))
	{
		sim_resp_error(resp, 400, "VALIDATION_ERROR", "hire_date must be a date, YYYY-MM-DD");
		return false;
	}
	*out = json_string_value(v);
	return true;
}

/* us_list: GET /v1/users, filtered, in creation order, one page */
static void
us_list(SimService *svc, const SimRequest *req, SimResponse *resp)
{
	UserState  *st = svc->state;
	const char *org = sim_req_query(req, "organization_id");
	const char *since_s = sim_req_query(req, "updated_since");
	const char *status = sim_req_query(req, "status");
	const char *page_s = sim_req_query(req, "page");
	const char *per_s = sim_req_query(req, "per_page");
	long		page = 1,
				per_page = 50;
	int64_t		since = 0;
	size_t		total = 0,
				first,
				written = 0;
	SimJw		jw;

	if (org && !us_valid_org(org))
	{
		sim_resp_error(resp, 400, "INVALID_PARAMETER",
					   "organization_id must be 1 to 64 of letters, digits, _ . : -");
		return;
	}
	if (page_s && !sim_parse_int(page_s, 1, 1000000, &page))
	{
		sim_resp_error(resp, 400, "INVALID_PARAMETER", "page must be an integer >= 1");
		return;
	}
	if (per_s && !sim_parse_int(per_s, 1, 100, &per_page))
	{
		sim_resp_error(resp, 400, "INVALID_PARAMETER", "per_page must be an integer from 1 to 100");
		return;
	}
	if (since_s && !sim_parse_time(since_s, &since))
	{
		sim_resp_error(resp, 400, "INVALID_PARAMETER",
					   "updated_since must be an RFC 3339 timestamp");
		return;
	}
	first = (size_t) (page - 1) * (size_t) per_page;
	sim_resp_begin_success(resp, 200, &jw);
	jw_obj_begin(&jw);
	jw_key(&jw, "users");
	jw_arr_begin(&jw);
	for (size_t i = 0; i < st->count; i++)
	{
		SimUser    *u = st->users[i];

		if ((org && strcmp(u->org, org) != 0) || (since_s && u->updated_ms < since) ||
			(status && strcmp(u->status, status) != 0))
			continue;
		if (total >= first && written < (size_t) per_page)
		{
			us_write_user(&jw, u);
			written++;
		}
		total++;
	}
	jw_arr_end(&jw);
	jw_key(&jw, "pagination");
	jw_obj_begin(&jw);
	jw_kint(&jw, "total", (int64_t) total);
	jw_kint(&jw, "page", page);
	jw_kint(&jw, "per_page", per_page);
	jw_kbool(&jw, "has_more", first + written < total);
	jw_obj_end(&jw);
	jw_obj_end(&jw);
	sim_resp_end_success(resp, &jw);
}

/* us_create: POST /v1/users; emits user.created */
static void
us_create(SimService *svc, const SimRequest *req, SimResponse *resp)
{
	UserState  *st = svc->state;
	json_t	   *body = sim_req_json_object(req, resp);
	const char *org,
			   *vals[10] = {0};
	SimUser    *u;
	SimBuf		key,
				data;
	SimJw		jw;
	char		id[48];

	if (body == NULL)
		return;
	if (!sim_check_fields(body, user_create_fields, resp))
		goto done;
	org = sim_json_get_str(body, "organization_id");
	if (org == NULL || !us_valid_org(org))
	{
		sim_resp_error(resp, 400, "VALIDATION_ERROR",
					   "organization_id is required: 1 to 64 of letters, digits, _ . : -");
		goto done;
	}
	for (int i = 0; user_mutable[i]; i++)
	{
		const json_t *v = json_object_get(body, user_mutable[i]);

		if (v && !us_check_value(user_mutable[i], v, &vals[i], resp))
			goto done;
	}
	if (!vals[0] || !vals[1] || !vals[2])
	{
		sim_resp_error(resp, 400, "VALIDATION_ERROR", "email, first_name and last_name are required");
		goto done;
	}
	sbuf_init(&key);
	us_email_key(org, vals[0], &key);
	if (sim_map_get(&st->by_email, key.data) != NULL)
	{
		sbuf_free(&key);
		sim_resp_error(resp, 409, "USER_ALREADY_EXISTS",
					   "a user with email %s already exists in organization %s", vals[0], org);
		goto done;
	}
	sbuf_free(&key);

	sim_new_id(svc, "ext_user_", id, sizeof(id));
	u = calloc(1, sizeof(SimUser));
	if (u == NULL)
		abort();
	u->user_id = sim_strdup(id);
	u->org = sim_strdup(org);
	for (int i = 0; user_mutable[i]; i++)
		*us_field(u, user_mutable[i]) = sim_strdup(vals[i]);
	if (u->status == NULL)
		u->status = sim_strdup("active");
	if (u->role == NULL)
		u->role = sim_strdup("user");
	u->created_ms = u->updated_ms = sim_now_ms();
	us_add(st, u);
	SIM_STAT_ADD(svc, effects, 1);

	sbuf_init(&data);
	jw_init(&jw, &data);
	us_write_user(&jw, u);
	sim_emit_event(svc, "user.created", u->org, data.data, req->correlation_id);
	sbuf_free(&data);

	sim_resp_begin_success(resp, 201, &jw);
	us_write_user(&jw, u);
	sim_resp_end_success(resp, &jw);
done:
	json_decref(body);
}

/* us_streq: equal strings, NULL equal only to NULL */
static bool
us_streq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* us_status_event: data of user.activated / user.deactivated */
static void
us_status_event(SimService *svc, const SimUser *u, const char *previous, const char *corr)
{
	SimBuf		data;
	SimJw		jw;
	bool		now_active = strcmp(u->status, "active") == 0;
	bool		was_active = strcmp(previous, "active") == 0;

	if (now_active == was_active)
		return;
	sbuf_init(&data);
	jw_init(&jw, &data);
	jw_obj_begin(&jw);
	jw_kstr(&jw, "user_id", u->user_id);
	jw_kstr(&jw, "email", u->email);
	jw_kstr(&jw, "status", u->status);
	jw_kstr(&jw, "previous_status", previous);
	jw_obj_end(&jw);
	sim_emit_event(svc, now_active ? "user.activated" : "user.deactivated", u->org,
				   data.data, corr);
	sbuf_free(&data);
}

/* us_update: PUT /v1/users/{id}; emits user.updated and maybe a status event */
static void
us_update(SimService *svc, const SimRequest *req, SimResponse *resp, SimUser *u)
{
	UserState  *st = svc->state;
	json_t	   *body = sim_req_json_object(req, resp);
	const char *vals[10] = {0};
	bool		given[10] = {0};
	bool		changed = false;
	char	   *prev_status = NULL;
	SimBuf		data,
				key;
	SimJw		jw;

	if (body == NULL)
		return;
	if (!sim_check_fields(body, user_mutable, resp))
		goto done;
	for (int i = 0; user_mutable[i]; i++)
	{
		const json_t *v = json_object_get(body, user_mutable[i]);

		if (v == NULL)
			continue;
		if (!us_check_value(user_mutable[i], v, &vals[i], resp))
			goto done;
		given[i] = true;
		if (!us_streq(vals[i], *us_field(u, user_mutable[i])))
			changed = true;
	}
	sbuf_init(&key);
	if (given[0] && strcasecmp(vals[0], u->email) != 0)
	{
		us_email_key(u->org, vals[0], &key);
		if (sim_map_get(&st->by_email, key.data) != NULL)
		{
			sbuf_free(&key);
			sim_resp_error(resp, 409, "USER_ALREADY_EXISTS",
						   "a user with email %s already exists in organization %s", vals[0], u->org);
			goto done;
		}
	}
	if (changed)
	{
		/* the event says what changed and what it was */
		sbuf_init(&data);
		jw_init(&jw, &data);
		jw_obj_begin(&jw);
		jw_kstr(&jw, "user_id", u->user_id);
		jw_key(&jw, "changes");
		jw_obj_begin(&jw);
		for (int i = 0; user_mutable[i]; i++)
			if (given[i] && !us_streq(vals[i], *us_field(u, user_mutable[i])))
				jw_kstr(&jw, user_mutable[i], vals[i]);
		jw_obj_end(&jw);
		jw_key(&jw, "previous_values");
		jw_obj_begin(&jw);
		for (int i = 0; user_mutable[i]; i++)
			if (given[i] && !us_streq(vals[i], *us_field(u, user_mutable[i])))
				jw_kstr(&jw, user_mutable[i], *us_field(u, user_mutable[i]));
		jw_obj_end(&jw);
		jw_obj_end(&jw);

		if (given[0] && strcmp(vals[0], u->email) != 0)
		{
			SimBuf		old;

			sbuf_init(&old);
			us_email_key(u->org, u->email, &old);
			sim_map_remove(&st->by_email, old.data);
			sbuf_free(&old);
		}
		prev_status = sim_strdup(u->status);
		for (int i = 0; user_mutable[i]; i++)
			if (given[i])
			{
				char	  **f = us_field(u, user_mutable[i]);

				free(*f);
				*f = sim_strdup(vals[i]);
			}
		us_email_key(u->org, u->email, &key);
		sim_map_put(&st->by_email, key.data, u);
		u->updated_ms = sim_now_ms();
		SIM_STAT_ADD(svc, effects, 1);
		sim_emit_event(svc, "user.updated", u->org, data.data, req->correlation_id);
		us_status_event(svc, u, prev_status, req->correlation_id);
		free(prev_status);
		sbuf_free(&data);
	}
	sbuf_free(&key);
	sim_resp_begin_success(resp, 200, &jw);
	us_write_user(&jw, u);
	sim_resp_end_success(resp, &jw);
done:
	json_decref(body);
}

/* us_delete: DELETE /v1/users/{id}; emits user.deleted */
static void
us_delete(SimService *svc, const SimRequest *req, SimResponse *resp, SimUser *u)
{
	UserState  *st = svc->state;
	SimBuf		data,
				key;
	SimJw		jw;
	char		today[40];

	sim_format_time(sim_now_ms(), today, sizeof(today));
	today[10] = '\0';
	sbuf_init(&data);
	jw_init(&jw, &data);
	jw_obj_begin(&jw);
	jw_kstr(&jw, "user_id", u->user_id);
	jw_kstr(&jw, "email", u->email);
	jw_kstr(&jw, "deletion_reason", "deleted_via_api");
	jw_kstr(&jw, "termination_date", today);
	jw_obj_end(&jw);
	sim_emit_event(svc, "user.deleted", u->org, data.data, req->correlation_id);
	sbuf_free(&data);

	sim_map_remove(&st->by_id, u->user_id);
	sbuf_init(&key);
	us_email_key(u->org, u->email, &key);
	sim_map_remove(&st->by_email, key.data);
	sbuf_free(&key);
	for (size_t i = 0; i < st->count; i++)
		if (st->users[i] == u)
		{
			memmove(&st->users[i], &st->users[i + 1], (st->count - i - 1) * sizeof(SimUser *));
			st->count--;
			break;
		}
	SIM_STAT_ADD(svc, effects, 1);

	sim_resp_begin_success(resp, 200, &jw);
	jw_obj_begin(&jw);
	jw_kstr(&jw, "user_id", u->user_id);
	jw_kbool(&jw, "deleted", true);
	jw_obj_end(&jw);
	sim_resp_end_success(resp, &jw);
	us_user_free(u);
}

/* us_handle: route a request of the user service */
static void
us_handle(SimService *svc, const SimRequest *req, SimResponse *resp)
{
	UserState  *st = svc->state;
	const char *p = req->path;
	size_t		plen = strlen(USERS_PREFIX);

	if (strcmp(p, USERS_PREFIX) == 0 || strcmp(p, USERS_PREFIX "/") == 0)
	{
		if (strcmp(req->method, "GET") == 0)
			us_list(svc, req, resp);
		else if (strcmp(req->method, "POST") == 0)
			us_create(svc, req, resp);
		else
		{
			sim_resp_error(resp, 405, "METHOD_NOT_ALLOWED", "%s is not allowed on %s",
						   req->method, p);
			snprintf(resp->allow, sizeof(resp->allow), "GET, POST");
		}
		return;
	}
	if (strncmp(p, USERS_PREFIX "/", plen + 1) == 0 && p[plen + 1] != '\0' &&
		strchr(p + plen + 1, '/') == NULL)
	{
		const char *id = p + plen + 1;
		SimUser    *u;

		if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "PUT") != 0 &&
			strcmp(req->method, "DELETE") != 0)
		{
			sim_resp_error(resp, 405, "METHOD_NOT_ALLOWED", "%s is not allowed on %s",
						   req->method, p);
			snprintf(resp->allow, sizeof(resp->allow), "GET, PUT, DELETE");
			return;
		}
		u = sim_map_get(&st->by_id, id);
		if (u == NULL)
		{
			sim_resp_error(resp, 404, "USER_NOT_FOUND", "User with ID %s not found", id);
			return;
		}
		if (strcmp(req->method, "GET") == 0)
		{
			SimJw		jw;

			sim_resp_begin_success(resp, 200, &jw);
			us_write_user(&jw, u);
			sim_resp_end_success(resp, &jw);
		}
		else if (strcmp(req->method, "PUT") == 0)
			us_update(svc, req, resp, u);
		else
			us_delete(svc, req, resp, u);
		return;
	}
	sim_resp_error(resp, 404, "NOT_FOUND", "no such endpoint: %s %s", req->method, p);
}

/* us_free_state: free every user and the indexes */
static void
us_free_state(SimService *svc)
{
	UserState  *st = svc->state;

	if (st == NULL)
		return;
	for (size_t i = 0; i < st->count; i++)
		us_user_free(st->users[i]);
	free(st->users);
	sim_map_free(&st->by_id, NULL);
	sim_map_free(&st->by_email, NULL);
	free(st);
	svc->state = NULL;
}

/* us_reset: the state of a fresh start: the seed's users that have a user_service id */
static void
us_reset(SimService *svc, const SimSeed *seed)
{
	UserState  *st;

	us_free_state(svc);
	st = calloc(1, sizeof(UserState));
	if (st == NULL)
		abort();
	sim_map_init(&st->by_id);
	sim_map_init(&st->by_email);
	svc->state = st;
	for (size_t i = 0; seed && i < seed->nusers; i++)
	{
		const SimSeedUser *su = &seed->users[i];
		SimUser    *u;
		int64_t		created = 0;

		if (su->user_service_id == NULL || su->org == NULL || su->email == NULL ||
			sim_map_get(&st->by_id, su->user_service_id) != NULL)
			continue;
		u = calloc(1, sizeof(SimUser));
		if (u == NULL)
			abort();
		u->user_id = sim_strdup(su->user_service_id);
		u->org = sim_strdup(su->org);
		u->email = sim_strdup(su->email);
		u->first_name = sim_strdup(su->first_name ? su->first_name : "");
		u->last_name = sim_strdup(su->last_name ? su->last_name : "");
		u->status = sim_strdup(su->status ? su->status : "active");
		u->role = sim_strdup(su->role ? su->role : "user");
		if (su->created_at == NULL || !sim_parse_time(su->created_at, &created))
			created = sim_now_ms();
		u->created_ms = u->updated_ms = created;
		us_add(st, u);
	}
}

/* us_dump: GET /_sim/users: every user (of one organization) */
static bool
us_dump(SimService *svc, const char *kind, const char *org, SimJw *jw)
{
	UserState  *st = svc->state;

	if (strcmp(kind, "users") != 0)
		return false;
	jw_arr_begin(jw);
	for (size_t i = 0; i < st->count; i++)
		if (org == NULL || strcmp(st->users[i]->org, org) == 0)
			us_write_user(jw, st->users[i]);
	jw_arr_end(jw);
	return true;
}

const SimServiceOps sim_user_ops = {
	.reset = us_reset,
	.free_state = us_free_state,
	.handle = us_handle,
	.dump = us_dump,
};
