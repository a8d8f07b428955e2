/*-------------------------------------------------------------------------
 *
 * idp_control.c
 *	  The identity-provider on the control port, and its flags.
 *
 *	  GET  /_sim/oidc				issuer, clients (no secrets), users, kids,
 *									counters, the id_token fault
 *	  POST /_sim/oidc/clients		{client_id, client_secret, redirect_uris}
 *	  POST /_sim/oidc/users		{sub, email, given_name, family_name,
 *									 email_verified?, default?}
 *	  POST /_sim/oidc/faults		{"id_token": "none" | "wrong_aud" | ...}
 *	  POST /_sim/oidc/rotate		[{"drop_old": true}]
 *
 * Service faults (down, latency_ms, hang, error_rate ...) are the common
 * POST /_sim/faults/identity-provider.
 *
 *-------------------------------------------------------------------------
 */
#include "idp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

IdpConfig	sim_idp_config;

/* printable: 1..max bytes of printable ASCII */
static bool
printable(const char *s, size_t max)
{
	size_t		n = s ? strlen(s) : 0;

	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char) s[i] < 0x20 || (unsigned char) s[i] > 0x7e)
			return false;
	return true;
}

/*
 * idp_redirect_uri_valid: an absolute http(s) URL of printable ASCII
 * without spaces or a fragment (RFC 6749 §3.1.2), at most 1024 bytes.
 */
bool
idp_redirect_uri_valid(const char *uri)
{
	const char *host;

	if (!printable(uri, 1024) || strchr(uri, '#') || strchr(uri, ' '))
		return false;
	if (strncmp(uri, "http://", 7) == 0)
		host = uri + 7;
	else if (strncmp(uri, "https://", 8) == 0)
		host = uri + 8;
	else
		return false;
	return host[0] != '\0' && host[0] != '/';
}

IdpClient *
idp_client_new(const char *id, const char *secret)
{
	IdpClient  *c = sim_malloc(sizeof(IdpClient));

	memset(c, 0, sizeof(IdpClient));
	c->client_id = sim_strdup(id);
	c->client_secret = sim_strdup(secret);
	return c;
}

void
idp_client_free(IdpClient *c)
{
	if (c == NULL)
		return;
	free(c->client_id);
	free(c->client_secret);
	for (int i = 0; i < c->nredirects; i++)
		free(c->redirect_uris[i]);
	free(c);
}

/* sim_idp_set_issuer: --oidc-issuer */
bool
sim_idp_set_issuer(const char *url, char *err, size_t errlen)
{
	size_t		n = strlen(url);

	if (!idp_redirect_uri_valid(url) || strchr(url, '?') || n > 400 || url[n - 1] == '/')
	{
		snprintf(err, errlen, "expected an http(s) URL without query, fragment or trailing slash");
		return false;
	}
	free(sim_idp_config.issuer);
	sim_idp_config.issuer = sim_strdup(url);
	return true;
}

/* sim_idp_add_flag_client: --oidc-client ID:SECRET:REDIRECT_URI (the same ID again adds a URI) */
bool
sim_idp_add_flag_client(const char *spec, char *err, size_t errlen)
{
	const char *c1 = strchr(spec, ':');
	const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
	char	   *id,
			   *secret;
	IdpClient  *c = NULL;
	bool		ok = false;

	if (c2 == NULL)
	{
		snprintf(err, errlen, "expected ID:SECRET:REDIRECT_URI");
		return false;
	}
	id = sim_strndup(spec, (size_t) (c1 - spec));
	secret = sim_strndup(c1 + 1, (size_t) (c2 - c1 - 1));
	for (int i = 0; i < sim_idp_config.nclients; i++)
		if (strcmp(sim_idp_config.clients[i]->client_id, id) == 0)
			c = sim_idp_config.clients[i];
	if (!printable(id, 128) || !printable(secret, 256))
		snprintf(err, errlen, "ID and SECRET must be 1-128 and 1-256 printable ASCII characters");
	else if (!idp_redirect_uri_valid(c2 + 1))
		snprintf(err, errlen, "REDIRECT_URI must be an absolute http(s) URL without fragment");
	else if (c && strcmp(c->client_secret, secret) != 0)
		snprintf(err, errlen, "client %s is given twice with different secrets", id);
	else if ((c && c->nredirects == IDP_MAX_REDIRECTS) ||
			 (c == NULL && sim_idp_config.nclients == IDP_MAX_CLIENTS))
		snprintf(err, errlen, "too many clients or redirect URIs");
	else
	{
		if (c == NULL)
		{
			c = idp_client_new(id, secret);
			sim_idp_config.clients[sim_idp_config.nclients++] = c;
		}
		c->redirect_uris[c->nredirects++] = sim_strdup(c2 + 1);
		ok = true;
	}
	free(id);
	free(secret);
	return ok;
}

/* sim_idp_config_free: at exit */
void
sim_idp_config_free(void)
{
	for (int i = 0; i < sim_idp_config.nclients; i++)
		idp_client_free(sim_idp_config.clients[i]);
	sim_idp_config.nclients = 0;
	free(sim_idp_config.issuer);
	sim_idp_config.issuer = NULL;
}

/* ---- the control calls ---- */

static void
ctl_ok(SimResponse *resp, int status, SimJw *jw)
{
	resp->status = status;
	sbuf_reset(&resp->body);
	jw_init(jw, &resp->body);
}

static void
write_client(SimJw *jw, const IdpClient *c)
{
	jw_obj_begin(jw);
	jw_kstr(jw, "client_id", c->client_id);
	jw_key(jw, "redirect_uris");
	jw_arr_begin(jw);
	for (int i = 0; i < c->nredirects; i++)
		jw_str(jw, c->redirect_uris[i]);
	jw_arr_end(jw);
	jw_obj_end(jw);
}

static void
write_user(SimJw *jw, const IdpUser *u, bool is_default)
{
	jw_obj_begin(jw);
	jw_kstr(jw, "sub", u->sub);
	jw_kstr(jw, "email", u->email);
	jw_kstr(jw, "given_name", u->given_name);
	jw_kstr(jw, "family_name", u->family_name);
	jw_kbool(jw, "email_verified", u->email_verified);
	jw_kbool(jw, "default", is_default);
	jw_obj_end(jw);
}

static void
write_kids(SimJw *jw, IdpState *st)
{
	IdpKey	   *cur = idp_current_key(st);

	jw_kstr(jw, "kid", cur ? cur->kid : NULL);
	jw_key(jw, "kids");
	jw_arr_begin(jw);
	for (int i = st->nkeys - 1; i >= 0; i--)
		jw_str(jw, st->keys[i]->kid);
	jw_arr_end(jw);
}

/* oidc_show: GET /_sim/oidc; the lock is held */
static void
oidc_show(IdpState *st, SimResponse *resp)
{
	char		iss[512];
	SimJw		jw;

	idp_issuer(iss, sizeof(iss));
	ctl_ok(resp, 200, &jw);
	jw_obj_begin(&jw);
	jw_kstr(&jw, "issuer", iss);
	jw_kint(&jw, "port", __atomic_load_n(&sim_services[SIM_IDP].port, __ATOMIC_RELAXED));
	jw_key(&jw, "clients");
	jw_arr_begin(&jw);
	for (int i = 0; i < st->nclients; i++)
		write_client(&jw, st->clients[i]);
	jw_arr_end(&jw);
	jw_key(&jw, "users");
	jw_arr_begin(&jw);
	for (int i = 0; i < st->nusers; i++)
		write_user(&jw, st->users[i], i == st->default_user);
	jw_arr_end(&jw);
	write_kids(&jw, st);
	jw_kint(&jw, "codes_issued", (int64_t) st->codes_issued);
	jw_kint(&jw, "tokens_issued", (int64_t) st->tokens_issued);
	jw_kint(&jw, "code_ttl_s", st->code_ttl_s);
	jw_kint(&jw, "id_token_ttl_s", st->id_token_ttl_s);
	jw_key(&jw, "faults");
	jw_obj_begin(&jw);
	jw_kstr(&jw, "id_token", idp_fault_name(st->fault));
	jw_obj_end(&jw);
	jw_obj_end(&jw);
}

/* oidc_client: POST /_sim/oidc/clients; the lock is held */
static void
oidc_client(IdpState *st, json_t *body, SimResponse *resp)
{
	static const char *const fields[] = {"client_id", "client_secret", "redirect_uris", NULL};
	const char *id = sim_json_get_str(body, "client_id");
	const char *secret = sim_json_get_str(body, "client_secret");
	json_t	   *uris = json_object_get(body, "redirect_uris");
	IdpClient  *c,
			   *old;
	size_t		i;
	json_t	   *u;
	SimJw		jw;

	if (!sim_check_fields(body, fields, resp))
		return;
	if (!printable(id, 128) || !printable(secret, 256))
	{
		sim_resp_error(resp, 400, "VALIDATION_ERROR",
					   "client_id and client_secret must be 1-128 and 1-256 printable ASCII characters");
		return;
	}
	if (!json_is_array(uris) || json_array_size(uris) == 0 ||
		json_array_size(uris) > IDP_MAX_REDIRECTS)
	{
		sim_resp_error(resp, 400, "VALIDATION_ERROR", "redirect_uris must be an array of 1 to %d URLs",
					   IDP_MAX_REDIRECTS);
		return;
	}
	json_array_foreach(uris, i, u)
	{
		if (!json_is_string(u) || !idp_redirect_uri_valid(json_string_value(u)))
		{
			sim_resp_error(resp, 400, "VALIDATION_ERROR",
						   "redirect_uris[%zu] must be an absolute http(s) URL without fragment, "
						   "at most 1024 bytes", i);
			return;
		}
	}
	old = idp_find_client(st, id);
	if (old == NULL && st->nclients == IDP_MAX_CLIENTS)
	{
		sim_resp_error(resp, 400, "VALIDATION_ERROR", "at most %d clients", IDP_MAX_CLIENTS);
		return;
	}
	c = idp_client_new(id, secret);
	json_array_foreach(uris, i, u)
		c->redirect_uris[c->nredirects++] = sim_strdup(json_string_value(u));
	if (old)
	{
		for (int k = 0; k < st->nclients; k++)
			if (st->clients[k] == old)
				st->clients[k] = c;
		idp_client_free(old);
	}
	else
		st->clients[st->nclients++] = c;
	ctl_ok(resp, old ? 200 : 201, &jw);
	write_client(&jw, c);
}

/* oidc_user: POST /_sim/oidc/users; the lock is held */
static void
oidc_user(IdpState *st, json_t *body, SimResponse *resp)
{
	static const char *const fields[] = {"sub", "email", "given_name", "family_name",
	"email_verified", "default", NULL};
	const char *sub = sim_json_get_str(body, "sub");
	const char *email = sim_json_get_str(body, "email");
	const char *given = sim_json_get_str(body, "given_name");
	const char *family = sim_json_get_str(body, "family_name");
	json_t	   *verified = json_object_get(body, "email_verified");
	json_t	   *def = json_object_get(body, "default");
	const char *at;
	bool		exists = false;
	IdpUser    *u;
	SimJw		jw;

	if (!sim_check_fields(body, fields, resp))
		return;
	if (!printable(sub, 255) || !printable(email, 254) || !printable(given, 128) ||
		!printable(family, 128))
	{
		sim_resp_error(resp, 400, "VALIDATION_ERROR", "sub, email, given_name and family_name are "
					   "required: printable ASCII, at most 255, 254, 128 and 128 bytes");
		return;
	}
	at = strchr(email, '@');
	if (at == NULL || at == email || at[1] == '\0' || strchr(at + 1, '@') || strchr(email, ' '))
	{
		sim_resp_error(resp, 400, "VALIDATION_ERROR", "email is not an e-mail address");
		return;
	}
	if ((verified && !json_is_boolean(verified)) || (def && !json_is_boolean(def)))
	{
		sim_resp_error(resp, 400, "VALIDATION_ERROR", "email_verified and default must be booleans");
		return;
	}
	for (int i = 0; i < st->nusers; i++)
	{
		if (strcmp(st->users[i]->sub, sub) == 0)
			exists = true;
		else if (strcasecmp(st->users[i]->email, email) == 0)
		{
			sim_resp_error(resp, 409, "USER_ALREADY_EXISTS", "another user (sub %s) has this email",
						   st->users[i]->sub);
			return;
		}
	}
	if (!exists && st->nusers == IDP_MAX_USERS)
	{
		sim_resp_error(resp, 400, "VALIDATION_ERROR", "at most %d users", IDP_MAX_USERS);
		return;
	}
	u = sim_malloc(sizeof(IdpUser));
	u->sub = sim_strdup(sub);
	u->email = sim_strdup(email);
	u->given_name = sim_strdup(given);
	u->family_name = sim_strdup(family);
	u->email_verified = verified ? json_is_true(verified) : true;
	idp_put_user(st, u, def && json_is_true(def));
	ctl_ok(resp, exists ? 200 : 201, &jw);
	write_user(&jw, u, st->users[st->default_user] == u);
}

/* oidc_faults: POST /_sim/oidc/faults; the lock is held */
static void
oidc_faults(IdpState *st, json_t *body, SimResponse *resp)
{
	static const char *const fields[] = {"id_token", NULL};
	const char *name = sim_json_get_str(body, "id_token");
	IdpTokenFault f;
	SimJw		jw;

	if (!sim_check_fields(body, fields, resp))
		return;
	if (name == NULL || !idp_fault_parse(name, &f))
	{
		sim_resp_error(resp, 400, "VALIDATION_ERROR", "id_token must be one of none, wrong_aud, "
					   "wrong_iss, expired, future_iat, bad_signature, unknown_kid, alg_none, "
					   "alg_hs256, no_nonce, wrong_nonce");
		return;
	}
	st->fault = f;
	sim_log("identity-provider: id_token fault %s", idp_fault_name(f));
	ctl_ok(resp, 200, &jw);
	jw_obj_begin(&jw);
	jw_kstr(&jw, "id_token", idp_fault_name(f));
	jw_obj_end(&jw);
}

/* oidc_rotate: POST /_sim/oidc/rotate; takes the lock itself (keygen runs outside it) */
static void
oidc_rotate(const SimRequest *req, SimResponse *resp)
{
	static const char *const fields[] = {"drop_old", NULL};
	SimService *svc = &sim_services[SIM_IDP];
	bool		drop_old = false;
	IdpKey	   *k;
	SimJw		jw;

	if (req->body_len > 0)
	{
		json_t	   *body = sim_req_json_object(req, resp);
		json_t	   *d;

		if (body == NULL)
			return;
		d = json_object_get(body, "drop_old");
		if (!sim_check_fields(body, fields, resp))
		{
			json_decref(body);
			return;
		}
		if (d && !json_is_boolean(d))
		{
			json_decref(body);
			sim_resp_error(resp, 400, "VALIDATION_ERROR", "drop_old must be a boolean");
			return;
		}
		drop_old = d && json_is_true(d);
		json_decref(body);
	}
	if ((k = idp_key_generate()) == NULL)
	{
		sim_resp_error(resp, 500, "INTERNAL_ERROR", "cannot generate an RSA key");
		return;
	}
	pthread_mutex_lock(&svc->lock);
	idp_keys_add(idp_state(), k);
	if (drop_old)
		idp_keys_drop_old(idp_state());
	ctl_ok(resp, 200, &jw);
	jw_obj_begin(&jw);
	write_kids(&jw, idp_state());
	jw_obj_end(&jw);
	pthread_mutex_unlock(&svc->lock);
	sim_log("identity-provider: new signing key %s%s", k->kid, drop_old ? " (old keys dropped)" : "");
}

/* sim_idp_control: /_sim/oidc + sub ("" or "/clients" ...) */
void
sim_idp_control(const SimRequest *req, const char *sub, SimResponse *resp)
{
	SimService *svc = &sim_services[SIM_IDP];
	const char *allow = strcmp(sub, "") == 0 ? "GET" : "POST";
	json_t	   *body;

	if (strcmp(sub, "") != 0 && strcmp(sub, "/clients") != 0 && strcmp(sub, "/users") != 0 &&
		strcmp(sub, "/faults") != 0 && strcmp(sub, "/rotate") != 0)
	{
		sim_resp_error(resp, 404, "NOT_FOUND", "no such control endpoint: %s %s", req->method, req->path);
		return;
	}
	if (strcmp(req->method, allow) != 0)
	{
		sim_resp_error(resp, 405, "METHOD_NOT_ALLOWED", "%s is not allowed on %s", req->method, req->path);
		snprintf(resp->allow, sizeof(resp->allow), "%s", allow);
		return;
	}
	if (strcmp(sub, "/rotate") == 0)
	{
		oidc_rotate(req, resp);
		return;
	}
	if (strcmp(sub, "") == 0)
	{
		pthread_mutex_lock(&svc->lock);
		oidc_show(idp_state(), resp);
		pthread_mutex_unlock(&svc->lock);
		return;
	}
	if ((body = sim_req_json_object(req, resp)) == NULL)
		return;
	pthread_mutex_lock(&svc->lock);
	if (strcmp(sub, "/clients") == 0)
		oidc_client(idp_state(), body, resp);
	else if (strcmp(sub, "/users") == 0)
		oidc_user(idp_state(), body, resp);
	else
		oidc_faults(idp_state(), body, resp);
	pthread_mutex_unlock(&svc->lock);
	json_decref(body);
}
