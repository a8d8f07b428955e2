/*-------------------------------------------------------------------------
 *
 * services_idp.c
 *	  identity-provider: a simulated OpenID Connect provider.
 *
 *	  GET  /.well-known/openid-configuration	discovery
 *	  GET  /jwks								the signing keys
 *	  GET  /authorize						no page: signs the test user in and
 *											redirects back with a code
 *	  POST /token							authorization code + PKCE S256
 *	  GET  /userinfo (or POST)				the user's claims, with the access token
 *
 * Errors are those of RFC 6749 §4.1.2.1 (as a redirect, except for an unknown
 * client or an unregistered redirect_uri: a 400 JSON answer, never a
 * redirect) and §5.2 (400/401 {"error","error_description"}).
 *
 * The provider's users are seeded from sso_responses.json of the reference
 * data (john.doe@techcorp.com, the default, and alice.johnson@startupxyz.com);
 * clients come from --oidc-client and POST /_sim/oidc/clients.
 *
 *-------------------------------------------------------------------------
 */
#define _GNU_SOURCE
#include "idp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

/* idp_state: the provider's state; the caller holds the service's lock */
IdpState *
idp_state(void)
{
	return sim_services[SIM_IDP].state;
}

/* idp_issuer: --oidc-issuer, else http://127.0.0.1:<bound port> */
void
idp_issuer(char *out, size_t outlen)
{
	const char *host = sim_config.bind_address;

	if (sim_idp_config.issuer)
	{
		snprintf(out, outlen, "%s", sim_idp_config.issuer);
		return;
	}
	if (host == NULL || strcmp(host, "0.0.0.0") == 0)
		host = "127.0.0.1";
	snprintf(out, outlen, "http://%s:%d", host,
			 __atomic_load_n(&sim_services[SIM_IDP].port, __ATOMIC_RELAXED));
}

/* ---- state ---- */

void
idp_user_free(IdpUser *u)
{
	if (u == NULL)
		return;
	free(u->sub);
	free(u->email);
	free(u->given_name);
	free(u->family_name);
	free(u);
}

static void
code_free(void *p)
{
	IdpCode    *c = p;

	free(c->client_id);
	free(c->redirect_uri);
	free(c->challenge);
	free(c->nonce);
	free(c->scope);
	free(c->sub);
	free(c);
}

static void
token_free(void *p)
{
	IdpToken   *t = p;

	free(t->sub);
	free(t->scope);
	free(t->client_id);
	free(t);
}

/* idp_find_client: a registered client, or NULL */
IdpClient *
idp_find_client(IdpState *st, const char *client_id)
{
	for (int i = 0; i < st->nclients; i++)
		if (strcmp(st->clients[i]->client_id, client_id) == 0)
			return st->clients[i];
	return NULL;
}

/* idp_find_user_by: a user by sub, or (case-insensitively) by email; NULL if none */
static IdpUser *
idp_find_user_by(IdpState *st, const char *sub, const char *email)
{
	for (int i = 0; i < st->nusers; i++)
		if ((sub && strcmp(st->users[i]->sub, sub) == 0) ||
			(email && strcasecmp(st->users[i]->email, email) == 0))
			return st->users[i];
	return NULL;
}

/*
 * idp_put_user: add u, or replace the user with its sub (its email must not
 * be another user's: the caller checked).  The provider takes u.
 */
void
idp_put_user(IdpState *st, IdpUser *u, bool make_default)
{
	int			at = -1;

	for (int i = 0; i < st->nusers; i++)
		if (strcmp(st->users[i]->sub, u->sub) == 0)
			at = i;
	if (at >= 0)
	{
		idp_user_free(st->users[at]);
		st->users[at] = u;
	}
	else
	{
		at = st->nusers++;
		st->users[at] = u;
	}
	if (make_default)
		st->default_user = at;
}

static IdpUser *
user_new(const char *sub, const char *email, const char *given, const char *family, bool verified)
{
	IdpUser    *u = sim_malloc(sizeof(IdpUser));

	u->sub = sim_strdup(sub);
	u->email = sim_strdup(email);
	u->given_name = sim_strdup(given);
	u->family_name = sim_strdup(family);
	u->email_verified = verified;
	return u;
}

/* idp_clear: everything but the keys */
static void
idp_clear(IdpState *st)
{
	for (int i = 0; i < st->nclients; i++)
		idp_client_free(st->clients[i]);
	st->nclients = 0;
	for (int i = 0; i < st->nusers; i++)
		idp_user_free(st->users[i]);
	st->nusers = 0;
	sim_map_free(&st->codes, code_free);
	sim_map_free(&st->tokens, token_free);
}

/*
 * idp_reset: clients from the flags, the seeded users, no codes or tokens,
 * faults off.  The keys stay (a fresh provider would have new ones anyway);
 * the first reset, at start, makes them.
 */
static void
idp_reset(SimService *svc, const SimSeed *seed)
{
	IdpState   *st = svc->state;

	(void) seed;
	if (st == NULL)
	{
		st = sim_malloc(sizeof(IdpState));
		memset(st, 0, sizeof(IdpState));
		svc->state = st;
	}
	else
		idp_clear(st);
	if (st->nkeys == 0)
	{
		IdpKey	   *k = idp_key_generate();

		if (k == NULL || (st->stray = idp_key_generate()) == NULL)
		{
			sim_log("identity-provider: cannot generate an RSA key");
			abort();
		}
		idp_keys_add(st, k);
	}
	sim_map_init(&st->codes);
	sim_map_init(&st->tokens);
	for (int i = 0; i < sim_idp_config.nclients; i++)
	{
		const IdpClient *f = sim_idp_config.clients[i];
		IdpClient  *c = idp_client_new(f->client_id, f->client_secret);

		for (int j = 0; j < f->nredirects; j++)
			c->redirect_uris[c->nredirects++] = sim_strdup(f->redirect_uris[j]);
		st->clients[st->nclients++] = c;
	}
	/* ../shared/reference-data/sso_responses.json: azure_ad_response and okta_response */
	idp_put_user(st, user_new("11111111-2222-3333-4444-555555555555", "john.doe@techcorp.com",
							  "John", "Doe", true), true);
	idp_put_user(st, user_new("00u123456789abcdef", "alice.johnson@startupxyz.com",
							  "Alice", "Johnson", true), false);
	st->codes_issued = 0;
	st->tokens_issued = 0;
	st->fault = IDP_FAULT_NONE;
	st->code_ttl_s = sim_idp_config.code_ttl_s > 0 ? sim_idp_config.code_ttl_s : 60;
	st->id_token_ttl_s = sim_idp_config.id_token_ttl_s > 0 ? sim_idp_config.id_token_ttl_s : 300;
	st->access_token_ttl_s = 3600;
}

static void
idp_free_state(SimService *svc)
{
	IdpState   *st = svc->state;

	if (st == NULL)
		return;
	idp_clear(st);
	for (int i = 0; i < st->nkeys; i++)
		idp_key_free(st->keys[i]);
	idp_key_free(st->stray);
	free(st);
	svc->state = NULL;
}

/* idp_sweep: drop expired codes and tokens once the maps are large */
static void
idp_sweep(SimMap *map, size_t limit, bool codes)
{
	int64_t		now = sim_now_ms();

	if (map->count < limit)
		return;
	for (size_t b = 0; b < map->nbuckets; b++)
	{
		SimMapEntry **pp = &map->buckets[b];

		while (*pp)
		{
			SimMapEntry *e = *pp;
			int64_t		exp = codes ? ((IdpCode *) e->value)->expires_ms :
				((IdpToken *) e->value)->expires_ms;

			if (exp < now)
			{
				*pp = e->next;
				if (codes)
					code_free(e->value);
				else
					token_free(e->value);
				free(e->key);
				free(e);
				map->count--;
			}
			else
				pp = &e->next;
		}
	}
}

/* ---- endpoints ---- */

/* idp_discovery: GET /.well-known/openid-configuration */
static void
idp_discovery(SimResponse *resp)
{
	char		iss[512];
	SimBuf		u;
	SimJw		jw;
	static const char *const ep[][2] = {
		{"authorization_endpoint", "/authorize"}, {"token_endpoint", "/token"},
		{"jwks_uri", "/jwks"}, {"userinfo_endpoint", "/userinfo"}
	};

	idp_issuer(iss, sizeof(iss));
	resp->status = 200;
	sbuf_reset(&resp->body);
	jw_init(&jw, &resp->body);
	jw_obj_begin(&jw);
	jw_kstr(&jw, "issuer", iss);
	sbuf_init(&u);
	for (size_t i = 0; i < sizeof(ep) / sizeof(ep[0]); i++)
	{
		sbuf_reset(&u);
		sbuf_printf(&u, "%s%s", iss, ep[i][1]);
		jw_kstr(&jw, ep[i][0], u.data);
	}
	sbuf_free(&u);
#define LIST(key, ...) do { \
		static const char *const v_[] = {__VA_ARGS__}; \
		jw_key(&jw, key); \
		jw_arr_begin(&jw); \
		for (size_t i_ = 0; i_ < sizeof(v_) / sizeof(v_[0]); i_++) \
			jw_str(&jw, v_[i_]); \
		jw_arr_end(&jw); \
	} while (0)
	LIST("response_types_supported", "code");
	LIST("grant_types_supported", "authorization_code");
	LIST("id_token_signing_alg_values_supported", "RS256");
	LIST("code_challenge_methods_supported", "S256");
	LIST("token_endpoint_auth_methods_supported", "client_secret_post", "client_secret_basic");
	LIST("scopes_supported", "openid", "email", "profile");
	LIST("subject_types_supported", "public");
	LIST("claims_supported", "iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "email",
		 "email_verified", "name", "given_name", "family_name");
#undef LIST
	jw_obj_end(&jw);
}

/* valid_b64url: 43..128 characters of the PKCE alphabet (RFC 7636 §4.1) */
static bool
valid_pkce(const char *s, size_t min, size_t max)
{
	size_t		n = strlen(s);

	return n >= min && n <= max &&
		strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~") == n;
}

/* scope_has: whether the space-separated scope holds word */
static bool
scope_has(const char *scope, const char *word)
{
	size_t		n = strlen(word);

	for (const char *p = scope; p && *p;)
	{
		const char *sp = strchr(p, ' ');
		size_t		len = sp ? (size_t) (sp - p) : strlen(p);

		if (len == n && strncmp(p, word, n) == 0)
			return true;
		p = sp ? sp + 1 : NULL;
	}
	return false;
}

/* authorize_redirect: 302 to redirect_uri with params (NULL-terminated name, value pairs) */
static void
authorize_redirect(SimResponse *resp, const char *redirect_uri, const char *const *params)
{
	SimBuf		loc;
	char		sep = strchr(redirect_uri, '?') ? '&' : '?';

	sbuf_init(&loc);
	sbuf_puts(&loc, redirect_uri);
	for (int i = 0; params[i]; i += 2)
	{
		if (params[i + 1] == NULL)
			continue;
		sbuf_putc(&loc, sep);
		sep = '&';
		sbuf_puts(&loc, params[i]);
		sbuf_putc(&loc, '=');
		idp_url_encode(&loc, params[i + 1]);
	}
	if (loc.len >= sizeof(resp->location))
		idp_error(resp, 400, "invalid_request", "the redirect would be longer than %zu bytes "
				  "(state or redirect_uri too long)", sizeof(resp->location) - 1);
	else
	{
		memcpy(resp->location, loc.data, loc.len + 1);
		resp->status = 302;
		sbuf_reset(&resp->body);
	}
	sbuf_free(&loc);
}

/* authorize_fail: the §4.1.2.1 error redirect */
static void
authorize_fail(SimResponse *resp, const char *redirect_uri, const char *error,
			   const char *description, const char *state)
{
	const char *const params[] = {"error", error, "error_description", description,
	"state", state, NULL};

	authorize_redirect(resp, redirect_uri, params);
	resp->note = error;
}

/* idp_authorize: GET /authorize */
static void
idp_authorize(IdpState *st, const SimRequest *req, SimResponse *resp)
{
	const char *client_id = sim_req_query(req, "client_id");
	const char *redirect_uri = sim_req_query(req, "redirect_uri");
	const char *response_type = sim_req_query(req, "response_type");
	const char *scope = sim_req_query(req, "scope");
	const char *state = sim_req_query(req, "state");
	const char *nonce = sim_req_query(req, "nonce");
	const char *challenge = sim_req_query(req, "code_challenge");
	const char *method = sim_req_query(req, "code_challenge_method");
	const char *hint = sim_req_query(req, "login_hint");
	const char *dup = idp_query_duplicate(req);
	IdpClient  *client;
	IdpUser    *user;
	IdpCode    *code;
	bool		registered = false;
	char		code_text[64];
	SimBuf		granted;

	/* no redirect until the client and its redirect_uri are known good */
	if (dup && (strcmp(dup, "client_id") == 0 || strcmp(dup, "redirect_uri") == 0))
	{
		idp_error(resp, 400, "invalid_request", "%s is given more than once", dup);
		return;
	}
	if (client_id == NULL || client_id[0] == '\0')
	{
		idp_error(resp, 400, "invalid_request", "client_id is required");
		return;
	}
	if ((client = idp_find_client(st, client_id)) == NULL)
	{
		idp_error(resp, 400, "invalid_client", "unknown client_id");
		return;
	}
	for (int i = 0; redirect_uri && i < client->nredirects; i++)
		if (strcmp(client->redirect_uris[i], redirect_uri) == 0)
			registered = true;
	if (!registered)
	{
		idp_error(resp, 400, "invalid_request",
				  redirect_uri ? "redirect_uri is not registered for this client" :
				  "redirect_uri is required");
		return;
	}
	if (state && strlen(state) > 1024)
		state = NULL;			/* not echoed: the error below says why */

	if (dup)
		authorize_fail(resp, redirect_uri, "invalid_request", "a parameter is given more than once", state);
	else if (sim_req_query(req, "state") && state == NULL)
		authorize_fail(resp, redirect_uri, "invalid_request", "state is longer than 1024 bytes", NULL);
	else if (response_type == NULL)
		authorize_fail(resp, redirect_uri, "invalid_request", "response_type is required", state);
	else if (strcmp(response_type, "code") != 0)
		authorize_fail(resp, redirect_uri, "unsupported_response_type",
					   "only response_type=code is supported", state);
	else if (scope == NULL || !scope_has(scope, "openid"))
		authorize_fail(resp, redirect_uri, "invalid_request", "scope must include openid", state);
	else if (challenge == NULL)
		authorize_fail(resp, redirect_uri, "invalid_request", "code_challenge is required (PKCE)", state);
	else if (method == NULL || strcmp(method, "S256") != 0)
		authorize_fail(resp, redirect_uri, "invalid_request", "code_challenge_method must be S256", state);
	else if (strlen(challenge) != 43 || !valid_pkce(challenge, 43, 43) || strchr(challenge, '.') ||
			 strchr(challenge, '~'))
		authorize_fail(resp, redirect_uri, "invalid_request",
					   "code_challenge must be BASE64URL(SHA256(code_verifier)), 43 characters", state);
	else if (nonce && (nonce[0] == '\0' || strlen(nonce) > 512))
		authorize_fail(resp, redirect_uri, "invalid_request", "nonce must be 1 to 512 bytes", state);
	else if (st->nusers == 0)
		authorize_fail(resp, redirect_uri, "access_denied", "no test user is configured", state);
	else
	{
		user = hint ? idp_find_user_by(st, NULL, hint) : NULL;
		if (user == NULL)
			user = st->users[st->default_user];
		sbuf_init(&granted);
		sbuf_puts(&granted, "openid");
		if (scope_has(scope, "email"))
			sbuf_puts(&granted, " email");
		if (scope_has(scope, "profile"))
			sbuf_puts(&granted, " profile");
		idp_sweep(&st->codes, IDP_MAX_CODES, true);
		idp_random_token(code_text, 32);
		code = sim_malloc(sizeof(IdpCode));
		memset(code, 0, sizeof(IdpCode));
		code->client_id = sim_strdup(client_id);
		code->redirect_uri = sim_strdup(redirect_uri);
		code->challenge = sim_strdup(challenge);
		code->nonce = nonce ? sim_strdup(nonce) : NULL;
		code->scope = sbuf_steal(&granted);
		code->sub = sim_strdup(user->sub);
		code->issued_s = sim_now_ms() / 1000;
		code->expires_ms = sim_now_ms() + (int64_t) st->code_ttl_s * 1000;
		{
			const char *const params[] = {"code", code_text, "state", state, NULL};

			authorize_redirect(resp, redirect_uri, params);
		}
		if (resp->status == 302)
		{
			sim_map_put(&st->codes, code_text, code);
			st->codes_issued++;
			SIM_STAT_ADD(&sim_services[SIM_IDP], effects, 1);
		}
		else
			code_free(code);
	}
}

/* secret_equal: constant time, also in the length (digests are compared) */
static bool
secret_equal(const char *a, const char *b)
{
	unsigned char da[SHA256_DIGEST_LENGTH],
				db[SHA256_DIGEST_LENGTH];

	SHA256((const unsigned char *) a, strlen(a), da);
	SHA256((const unsigned char *) b, strlen(b), db);
	return CRYPTO_memcmp(da, db, sizeof(da)) == 0;
}

/*
 * token_client: authenticate the client (client_secret_basic or
 * client_secret_post, not both); NULL with a 400/401 in resp.
 */
static IdpClient *
token_client(IdpState *st, const SimRequest *req, const IdpForm *form, SimResponse *resp)
{
	const char *auth = idp_header(req, "Authorization");
	char	   *bid,
			   *bsecret;
	int			basic = idp_basic_credentials(auth, &bid, &bsecret);
	const char *id = idp_form_get(form, "client_id");
	const char *secret = idp_form_get(form, "client_secret");
	IdpClient  *client = NULL;

	if (basic < 0 || (auth && basic == 0))
	{
		idp_error(resp, 401, "invalid_client", "the Authorization header is not valid Basic credentials");
		snprintf(resp->www_authenticate, sizeof(resp->www_authenticate),
				 "Basic realm=\"saas-sim identity-provider\"");
		return NULL;
	}
	if (basic > 0 && secret)
		idp_error(resp, 400, "invalid_request", "use one client authentication method, not two");
	else if (basic > 0 && id && strcmp(id, bid) != 0)
		idp_error(resp, 400, "invalid_request", "client_id differs from the Basic credentials");
	else
	{
		if (basic > 0)
		{
			id = bid;
			secret = bsecret;
		}
		client = id && secret ? idp_find_client(st, id) : NULL;
		if (client == NULL || !secret_equal(client->client_secret, secret))
		{
			client = NULL;
			idp_error(resp, 401, "invalid_client",
					  id && secret ? "client authentication failed" : "client authentication is required");
			snprintf(resp->www_authenticate, sizeof(resp->www_authenticate),
					 "Basic realm=\"saas-sim identity-provider\"");
		}
	}
	free(bid);
	free(bsecret);
	return client;
}

/* token_answer: the 200 of a redeemed code */
static void
token_answer(IdpState *st, const IdpCode *code, IdpUser *user, SimResponse *resp)
{
	char		iss[512];
	char		at[64];
	char	   *id_token;
	IdpToken   *tok;
	SimJw		jw;

	idp_issuer(iss, sizeof(iss));
	id_token = idp_make_id_token(st, code, user, iss);
	if (id_token == NULL)
	{
		idp_error(resp, 500, "server_error", "the id_token could not be signed");
		return;
	}
	idp_sweep(&st->tokens, IDP_MAX_TOKENS, false);
	idp_random_token(at, 32);
	tok = sim_malloc(sizeof(IdpToken));
	tok->sub = sim_strdup(user->sub);
	tok->scope = sim_strdup(code->scope);
	tok->client_id = sim_strdup(code->client_id);
	tok->expires_ms = sim_now_ms() + (int64_t) st->access_token_ttl_s * 1000;
	sim_map_put(&st->tokens, at, tok);
	st->tokens_issued++;

	resp->status = 200;
	sbuf_reset(&resp->body);
	jw_init(&jw, &resp->body);
	jw_obj_begin(&jw);
	jw_kstr(&jw, "access_token", at);
	jw_kstr(&jw, "token_type", "Bearer");
	jw_kint(&jw, "expires_in", st->access_token_ttl_s);
	jw_kstr(&jw, "scope", code->scope);
	jw_kstr(&jw, "id_token", id_token);
	jw_obj_end(&jw);
	free(id_token);
	SIM_STAT_ADD(&sim_services[SIM_IDP], effects, 1);
}

/* idp_token: POST /token */
static void
idp_token(IdpState *st, const SimRequest *req, SimResponse *resp)
{
	const char *ctype = idp_header(req, "Content-Type");
	IdpForm		form;
	char		err[160];
	IdpClient  *client;
	const char *grant,
			   *code_text,
			   *redirect_uri,
			   *verifier;
	IdpCode    *code;
	IdpUser    *user;

	resp->no_store = true;
	if (ctype == NULL || strncasecmp(ctype, "application/x-www-form-urlencoded", 33) != 0 ||
		(ctype[33] != '\0' && ctype[33] != ';' && ctype[33] != ' '))
	{
		idp_error(resp, 400, "invalid_request", "the body must be application/x-www-form-urlencoded");
		return;
	}
	if (!idp_form_parse(req->body ? req->body : "", req->body_len, &form, err, sizeof(err)))
	{
		idp_error(resp, 400, "invalid_request", "%s", err);
		return;
	}
	if ((client = token_client(st, req, &form, resp)) == NULL)
	{
		idp_form_free(&form);
		return;
	}
	grant = idp_form_get(&form, "grant_type");
	code_text = idp_form_get(&form, "code");
	redirect_uri = idp_form_get(&form, "redirect_uri");
	verifier = idp_form_get(&form, "code_verifier");
	code = code_text ? sim_map_get(&st->codes, code_text) : NULL;
	if (grant == NULL)
		idp_error(resp, 400, "invalid_request", "grant_type is required");
	else if (strcmp(grant, "authorization_code") != 0)
		idp_error(resp, 400, "unsupported_grant_type", "only authorization_code is supported");
	else if (code_text == NULL || redirect_uri == NULL || verifier == NULL)
		idp_error(resp, 400, "invalid_request", "code, redirect_uri and code_verifier are required");
	else if (code == NULL || strcmp(code->client_id, client->client_id) != 0)
		idp_error(resp, 400, "invalid_grant", "unknown authorization code");
	else if (code->used)
		idp_error(resp, 400, "invalid_grant", "the authorization code was already used");
	else
	{
		/* from here on the code is spent, whatever the outcome */
		code->used = true;
		if (code->expires_ms < sim_now_ms())
			idp_error(resp, 400, "invalid_grant", "the authorization code has expired");
		else if (strcmp(code->redirect_uri, redirect_uri) != 0)
			idp_error(resp, 400, "invalid_grant", "redirect_uri differs from the authorization request's");
		else if (!valid_pkce(verifier, 43, 128))
			idp_error(resp, 400, "invalid_grant", "code_verifier must be 43 to 128 unreserved characters");
		else if (!idp_s256_matches(verifier, code->challenge))
			idp_error(resp, 400, "invalid_grant", "code_verifier does not match the code_challenge");
		else if ((user = idp_find_user_by(st, code->sub, NULL)) == NULL)
			idp_error(resp, 400, "invalid_grant", "the signed-in user no longer exists");
		else
			token_answer(st, code, user, resp);
	}
	idp_form_free(&form);
}

/* idp_userinfo: GET or POST /userinfo with "Authorization: Bearer <access token>" */
static void
idp_userinfo(IdpState *st, const SimRequest *req, SimResponse *resp)
{
	const char *auth = idp_header(req, "Authorization");
	IdpToken   *tok = NULL;
	IdpUser    *user = NULL;
	SimBuf		name;
	SimJw		jw;

	if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0)
	{
		idp_error(resp, 401, "invalid_request", "an access token is required (Authorization: Bearer)");
		snprintf(resp->www_authenticate, sizeof(resp->www_authenticate),
				 "Bearer realm=\"saas-sim identity-provider\"");
		return;
	}
	tok = sim_map_get(&st->tokens, auth + 7);
	if (tok && tok->expires_ms >= sim_now_ms())
		user = idp_find_user_by(st, tok->sub, NULL);
	if (user == NULL)
	{
		idp_error(resp, 401, "invalid_token", "the access token is unknown or expired");
		snprintf(resp->www_authenticate, sizeof(resp->www_authenticate),
				 "Bearer realm=\"saas-sim identity-provider\", error=\"invalid_token\"");
		return;
	}
	resp->status = 200;
	sbuf_reset(&resp->body);
	jw_init(&jw, &resp->body);
	jw_obj_begin(&jw);
	jw_kstr(&jw, "sub", user->sub);
	if (scope_has(tok->scope, "email"))
	{
		jw_kstr(&jw, "email", user->email);
		jw_kbool(&jw, "email_verified", user->email_verified);
	}
	if (scope_has(tok->scope, "profile"))
	{
		sbuf_init(&name);
		sbuf_printf(&name, "%s %s", user->given_name, user->family_name);
		jw_kstr(&jw, "name", name.data);
		sbuf_free(&name);
		jw_kstr(&jw, "given_name", user->given_name);
		jw_kstr(&jw, "family_name", user->family_name);
	}
	jw_obj_end(&jw);
}

/* idp_method: 405 unless the method is one of allow */
static bool
idp_method(const SimRequest *req, SimResponse *resp, const char *allow)
{
	if (strcmp(req->method, allow) == 0 ||
		(strcmp(allow, "GET, POST") == 0 &&
		 (strcmp(req->method, "GET") == 0 || strcmp(req->method, "POST") == 0)))
		return true;
	idp_error(resp, 405, "invalid_request", "%s is not allowed here", req->method);
	snprintf(resp->allow, sizeof(resp->allow), "%s", allow);
	return false;
}

/* idp_handle: route a request; the service lock is held */
static void
idp_handle(SimService *svc, const SimRequest *req, SimResponse *resp)
{
	IdpState   *st = svc->state;
	const char *p = req->path;
	SimJw		jw;

	if (strcmp(p, "/.well-known/openid-configuration") == 0)
	{
		if (idp_method(req, resp, "GET"))
			idp_discovery(resp);
	}
	else if (strcmp(p, "/jwks") == 0)
	{
		if (idp_method(req, resp, "GET"))
		{
			resp->status = 200;
			sbuf_reset(&resp->body);
			jw_init(&jw, &resp->body);
			idp_keys_write_jwks(&jw, st);
		}
	}
	else if (strcmp(p, "/authorize") == 0)
	{
		if (idp_method(req, resp, "GET"))
			idp_authorize(st, req, resp);
	}
	else if (strcmp(p, "/token") == 0)
	{
		if (idp_method(req, resp, "POST"))
			idp_token(st, req, resp);
	}
	else if (strcmp(p, "/userinfo") == 0)
	{
		if (idp_method(req, resp, "GET, POST"))
			idp_userinfo(st, req, resp);
	}
	else
		idp_error(resp, 404, "not_found", "no such endpoint");
}

/* idp_dump: the provider has no /_sim/{kind} dump (see GET /_sim/oidc) */
static bool
idp_dump(SimService *svc, const char *kind, const char *org, SimJw *jw)
{
	(void) svc;
	(void) kind;
	(void) org;
	(void) jw;
	return false;
}

const SimServiceOps sim_idp_ops = {
	.reset = idp_reset,
	.free_state = idp_free_state,
	.handle = idp_handle,
	.dump = idp_dump,
};
