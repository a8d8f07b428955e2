/*-------------------------------------------------------------------------
 *
 * idp_token.c
 *	  identity-provider: the token endpoint (authorization code with PKCE
 *	  S256, client_secret_basic or client_secret_post) and userinfo.
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
token_answer(IdpState *st, IdpCode *code, IdpUser *user, SimResponse *resp)
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
	code->access_token = sim_strdup(at);

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
void
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
	{
		/* a replayed code: the access token it gave is revoked (RFC 6749 §4.1.2) */
		if (code->access_token)
		{
			IdpToken   *tok = sim_map_remove(&st->tokens, code->access_token);

			if (tok)
				idp_token_free(tok);
		}
		idp_error(resp, 400, "invalid_grant", "the authorization code was already used");
	}
	else
	{
		/* from here on the code is spent, whatever the outcome */
		code->used = true;
		if (code->expires_ms < sim_now_ms())
			idp_error(resp, 400, "invalid_grant", "the authorization code has expired");
		else if (strcmp(code->redirect_uri, redirect_uri) != 0)
			idp_error(resp, 400, "invalid_grant", "redirect_uri differs from the authorization request's");
		else if (!idp_valid_pkce(verifier, 43, 128))
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
void
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
	if (idp_scope_has(tok->scope, "email"))
	{
		jw_kstr(&jw, "email", user->email);
		jw_kbool(&jw, "email_verified", user->email_verified);
	}
	if (idp_scope_has(tok->scope, "profile"))
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
