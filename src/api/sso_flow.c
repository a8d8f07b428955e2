/*-------------------------------------------------------------------------
 *
 * sso_flow.c
 *	  Signing in with the organization's OpenID Connect provider:
 *	  GET /auth/sso/{slug}/start (302 to the provider, with state, nonce and
 *	  PKCE) and GET /auth/sso/callback (code exchanged, id_token verified,
 *	  the user found or created, the session issued as login issues it).
 *
 * The state is "<org id>.<32 random bytes, base64url>": the organization
 * is known without a search (on Citus the request goes to its shard), and
 * only SHA-256(state) is stored, for 10 minutes, consumed by the callback
 * that succeeds. The nonce and the PKCE verifier are HMAC-SHA256 of a label
 * keyed by the state, so nothing stored is worth stealing and a code or an
 * id_token from another sign-in cannot match.
 *
 * The provider is called (oidc_http.c) before the request writes anything
 * or takes a lock, and without a tenant context; the writes (the state
 * consumed, the user created or linked, last_login) follow, in the
 * request's transaction.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"


#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "common/common.h"
#include "auth/auth.h"
#include "auth/oidc.h"
#include "api/api.h"

#define SSO_STATE_RANDOM	32
#define SSO_STATE_LEN		(36 + 1 + 43)
#define SSO_BINDING_LEN		43
#define SSO_REQUEST_TTL		"10 minutes"
#define SSO_ID_TOKEN_MAX_AGE_S	600

static SaasPlan plan_org_by_slug = {
	"SELECT id, status FROM saas.organizations WHERE slug = $1",
	1, {TEXTOID}
};

static SaasPlan plan_conn_for_start = {
	"SELECT id, issuer, client_id, redirect_uri FROM saas.sso_connections"
	" WHERE org_id = $1 AND enabled",
	1, {UUIDOID}
};

static SaasPlan plan_request_purge = {
	"DELETE FROM saas._sso_requests WHERE org_id = $1 AND expires_at < pg_catalog.now()",
	1, {UUIDOID}
};

static SaasPlan plan_request_insert = {
	"INSERT INTO saas._sso_requests (org_id, state_hash, connection_id, expires_at)"
	" VALUES ($1, $2, $3, pg_catalog.now() + interval '" SSO_REQUEST_TTL "')",
	3, {UUIDOID, BYTEAOID, UUIDOID}
};

static SaasPlan plan_request_get = {
	"SELECT c.id, c.issuer, c.client_id, c.redirect_uri, c.allowed_domains, c.default_role,"
	" s.client_secret, o.status"
	" FROM saas._sso_requests r"
	" JOIN saas.sso_connections c ON c.org_id = r.org_id AND c.id = r.connection_id"
	" JOIN saas._sso_secrets s ON s.org_id = c.org_id AND s.connection_id = c.id"
	" JOIN saas.organizations o ON o.id = r.org_id"
	" WHERE r.org_id = $1 AND r.state_hash = $2 AND r.expires_at > pg_catalog.now() AND c.enabled",
	2, {UUIDOID, BYTEAOID}
};

static SaasPlan plan_request_consume = {
	"DELETE FROM saas._sso_requests WHERE org_id = $1 AND state_hash = $2"
	" AND expires_at > pg_catalog.now() RETURNING 1",
	2, {UUIDOID, BYTEAOID}
};

static SaasPlan plan_identity_get = {
	"SELECT user_id FROM saas._sso_identities WHERE org_id = $1 AND issuer = $2 AND subject = $3",
	3, {UUIDOID, TEXTOID, TEXTOID}
};

static SaasPlan plan_identity_put = {
	"INSERT INTO saas._sso_identities (org_id, issuer, subject, user_id) VALUES ($1, $2, $3, $4)"
	" ON CONFLICT (org_id, issuer, subject) DO UPDATE SET user_id = EXCLUDED.user_id",
	4, {UUIDOID, TEXTOID, TEXTOID, UUIDOID}
};

static SaasPlan plan_user_by_email = {
	"SELECT id FROM saas.users WHERE org_id = $1 AND email = lower($2)",
	2, {UUIDOID, TEXTOID}
};

static SaasPlan plan_user_state = {
	"SELECT u.role, u.status, coalesce(s.generation, 0) FROM saas.users u"
	" LEFT JOIN saas._sessions s ON s.org_id = u.org_id AND s.user_id = u.id"
	" WHERE u.org_id = $1 AND u.id = $2",
	2, {UUIDOID, UUIDOID}
};

static SaasPlan plan_user_create = {
	"INSERT INTO saas.users (org_id, id, email, first_name, last_name, role)"
	" VALUES ($1, $2, lower($3), $4, $5, $6) RETURNING id",
	6, {UUIDOID, UUIDOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID}
};

/* sso_b64_hmac: base64url(HMAC-SHA256(key = state, label)). */
static char *
sso_b64_hmac(const char *state, const char *label)
{
	unsigned char mac[SAAS_HMAC_SHA256_LEN];
	StringInfoData s;

	saas_hmac_sha256(state, strlen(state), label, strlen(label), mac);
	initStringInfo(&s);
	saas_b64url_encode(mac, sizeof(mac), &s);
	return s.data;
}

/*
 * sso_state_hash: SHA-256 of "<state>.<binding>", as a bytea Datum. The
 * binding is the secret of the cookie the start route set in the browser:
 * a state is only found again with the cookie of the browser that started
 * the sign-in, so a callback link is worth nothing in another browser
 * (login CSRF).
 */
static Datum
sso_state_hash(const char *state, const char *binding)
{
	bytea	   *b = palloc(VARHDRSZ + 32);
	char	   *input = psprintf("%s.%s", state, binding);

	SET_VARSIZE(b, VARHDRSZ + 32);
	saas_sha256(input, strlen(input), (unsigned char *) VARDATA(b));
	pfree(input);
	return PointerGetDatum(b);
}

/* sso_query_add: "&name=value" (or "?" first), value percent-encoded (RFC 3986). */
static void
sso_query_add(StringInfo url, const char *name, const char *value)
{
	appendStringInfoChar(url, strchr(url->data, '?') ? '&' : '?');
	appendStringInfo(url, "%s=", name);
	for (const unsigned char *p = (const unsigned char *) value; *p; p++)
	{
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
			*p == '-' || *p == '.' || *p == '_' || *p == '~')
			appendStringInfoChar(url, *p);
		else
			appendStringInfo(url, "%%%02X", *p);
	}
}

/* sso_form_add: "name=value" to a form body, "&"-separated. */
static void
sso_form_add(StringInfo form, const char *name, const char *value)
{
	if (form->len > 0)
		appendStringInfoChar(form, '&');
	appendStringInfo(form, "%s=", name);
	for (const unsigned char *p = (const unsigned char *) value; *p; p++)
	{
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
			*p == '-' || *p == '.' || *p == '_' || *p == '~')
			appendStringInfoChar(form, *p);
		else
			appendStringInfo(form, "%%%02X", *p);
	}
}

static void
sso_not_found(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_SAAS_NOT_FOUND),
			 errmsg("this organization has no single sign-on")));
}

/*
 * GET /auth/sso/{slug}/start: the provider's authorization URL for a new
 * sign-in (the router answers 302 to it). login_hint is passed on.
 */
void
saas_op_sso_start(const char *slug, const char *login_hint, StringInfo out, char **location,
				  char **binding)
{
	SaasElevation elev;
	Datum		vals[3];
	bool		isnull;
	pg_uuid_t	org_id,
				conn_id;
	char	   *issuer,
			   *client_id,
			   *redirect,
			   *nonce,
			   *verifier;
	unsigned char rnd[SSO_STATE_RANDOM],
				bind_rnd[SSO_STATE_RANDOM],
				challenge[32];
	char		org_str[37];
	StringInfoData state,
				url,
				ch,
				bind;
	SaasOidcProvider prov;

	if (strlen(slug) > 63)
		sso_not_found();
	if (login_hint && (strlen(login_hint) > 254 || login_hint[0] == '\0'))
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_VALIDATION),
				 errmsg("login_hint must be 1 to 254 characters"),
				 errdetail_internal("[{\"field\":\"login_hint\",\"message\":\"must be 1 to 254 characters\"}]")));
	saas_spi_connect();
	saas_elevate(&elev);
	vals[0] = CStringGetTextDatum(slug);
	if (saas_exec(&plan_org_by_slug, vals, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not look up the organization");
	if (SPI_processed == 0)
		sso_not_found();
	org_id = *DatumGetUUIDP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (strcmp(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2), "active") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_FORBIDDEN),
				 errmsg("this organization is not active")));
	vals[0] = saas_uuid_datum(&org_id);
	if (saas_exec(&plan_conn_for_start, vals, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the SSO connection");
	if (SPI_processed == 0)
		sso_not_found();
	conn_id = *DatumGetUUIDP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	issuer = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	client_id = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);
	redirect = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4);
	saas_unelevate(&elev);

	/* The network first (cached after the first sign-in), before any write. */
	saas_oidc_discover(issuer, &prov);

	saas_random_bytes(rnd, sizeof(rnd));
	saas_uuid_to_cstr(&org_id, org_str);
	initStringInfo(&state);
	appendStringInfo(&state, "%s.", org_str);
	saas_b64url_encode(rnd, sizeof(rnd), &state);
	nonce = sso_b64_hmac(state.data, "pg_saas sso nonce");
	verifier = sso_b64_hmac(state.data, "pg_saas sso pkce");
	saas_sha256(verifier, strlen(verifier), challenge);
	initStringInfo(&ch);
	saas_b64url_encode(challenge, sizeof(challenge), &ch);
	saas_random_bytes(bind_rnd, sizeof(bind_rnd));
	initStringInfo(&bind);
	saas_b64url_encode(bind_rnd, sizeof(bind_rnd), &bind);

	saas_elevate(&elev);
	vals[0] = saas_uuid_datum(&org_id);
	saas_exec(&plan_request_purge, vals, NULL, false, 0);
	vals[1] = sso_state_hash(state.data, bind.data);
	vals[2] = saas_uuid_datum(&conn_id);
	if (saas_exec(&plan_request_insert, vals, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not record the sign-in");
	saas_unelevate(&elev);
	SPI_finish();

	initStringInfo(&url);
	appendStringInfoString(&url, prov.authorization_endpoint);
	sso_query_add(&url, "response_type", "code");
	sso_query_add(&url, "client_id", client_id);
	sso_query_add(&url, "redirect_uri", redirect);
	sso_query_add(&url, "scope", "openid email profile");
	sso_query_add(&url, "state", state.data);
	sso_query_add(&url, "nonce", nonce);
	sso_query_add(&url, "code_challenge", ch.data);
	sso_query_add(&url, "code_challenge_method", "S256");
	if (login_hint)
		sso_query_add(&url, "login_hint", login_hint);
	*location = url.data;
	*binding = bind.data;
	appendStringInfoString(out, "{\"authorization_url\":");
	saas_json_string(out, url.data);
	appendStringInfoString(out, ",\"expires_in\":600}");
}

/* sso_bad_state: the one answer for a state that is malformed, unknown, expired or used. */
static void
sso_bad_state(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_SAAS_VALIDATION),
			 errmsg("invalid or expired sign-in state; start the sign-in again"),
			 errdetail_internal("[{\"field\":\"state\",\"message\":\"is invalid, expired or already used\"}]")));
}

/* sso_refused: 401 with why the provider's answer is not accepted. */
static void
sso_refused(const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_SAAS_UNAUTHORIZED),
			 errmsg("single sign-on failed: %s", why)));
}

/* sso_plain: the provider's error code, if it is a plain word; else "error". */
static const char *
sso_plain(const char *s)
{
	if (s == NULL || s[0] == '\0' || strlen(s) > 64)
		return "error";
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || *p == '_'))
			return "error";
	return s;
}

/*
 * sso_exchange: the code for the provider's id_token (token endpoint,
 * client_secret_post, PKCE verifier). A refusal is 401; the provider down
 * or answering nonsense, 503 (oidc_http.c).
 */
static char *
sso_exchange(const SaasOidcProvider *prov, const char *code, const char *redirect,
			 const char *verifier, const char *client_id, const char *secret)
{
	StringInfoData form;
	SaasOidcAnswer a = {0};
	Jsonb	   *doc = NULL;
	JsonbValue *v;

	initStringInfo(&form);
	sso_form_add(&form, "grant_type", "authorization_code");
	sso_form_add(&form, "code", code);
	sso_form_add(&form, "redirect_uri", redirect);
	sso_form_add(&form, "code_verifier", verifier);
	sso_form_add(&form, "client_id", client_id);
	sso_form_add(&form, "client_secret", secret);
	saas_oidc_fetch(prov->token_endpoint, form.data, &a);
	if (saas_json_valid_strict(a.body, a.len, true))
		doc = saas_jsonb_from_text(a.body, a.len);
	if (a.status == 400 || a.status == 401)
	{
		v = doc ? saas_jsonb_get(doc, "error") : NULL;
		sso_refused(psprintf("the identity provider refused the code (%s)",
							 sso_plain(v && v->type == jbvString ?
									   pnstrdup(v->val.string.val, v->val.string.len) : NULL)));
	}
	if (a.status != 200 || doc == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_UNAVAILABLE),
				 errmsg("the identity provider is unavailable"),
				 errdetail_log("token endpoint answered %ld", a.status)));
	v = saas_jsonb_get(doc, "id_token");
	if (v == NULL || v->type != jbvString)
		sso_refused("the identity provider sent no id_token");
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/* sso_claim: a string claim, or NULL. */
static char *
sso_claim(Jsonb *claims, const char *key, int maxlen)
{
	JsonbValue *v = saas_jsonb_get(claims, key);

	if (v == NULL || v->type != jbvString || v->val.string.len == 0 || v->val.string.len > maxlen)
		return NULL;
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/* sso_domain_allowed: the email's domain is one of the connection's (exactly). */
static bool
sso_domain_allowed(const char *email, Datum domains)
{
	const char *at = strrchr(email, '@');
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	if (at == NULL || at == email || at[1] == '\0')
		return false;
	deconstruct_array(DatumGetArrayTypeP(domains), TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
		if (!nulls[i] && pg_strcasecmp(TextDatumGetCString(elems[i]), at + 1) == 0)
			return true;
	return false;
}

/* sso_name: a name claim fit for the users table (1..100 characters). */
static char *
sso_name(const char *s, const char *fallback)
{
	if (s == NULL || s[0] == '\0')
		s = fallback;
	if (pg_mbstrlen(s) > 100)
		return pnstrdup(s, pg_mbcharcliplen(s, strlen(s), 100));
	return pstrdup(s);
}

/*
 * GET /auth/sso/callback?code&state: the provider sent the browser back.
 * Parameters other than code, state, error and error_description (a
 * provider may add iss, session_state, scope...) are ignored.
 */
void
saas_op_sso_callback(const SaasParams *p, const char *binding, StringInfo out)
{
	const char *state = saas_param(p, "state");
	const char *code = saas_param(p, "code");
	const char *error = saas_param(p, "error");
	char		org_str[37];
	pg_uuid_t	org_id,
				conn_id,
				user_id;
	Datum		vals[6],
				state_hash,
				domains;
	bool		isnull;
	SaasElevation elev;
	char	   *issuer,
			   *client_id,
			   *redirect,
			   *default_role,
			   *secret,
			   *id_token,
			   *email,
			   *sub,
			   *role;
	SaasOidcProvider prov;
	SaasOidcExpect x;
	SaasOidcStatus st;
	Jsonb	   *jwks,
			   *claims;
	JsonbValue *verified;
	int64		gen;
	HeapTuple	tup;
	TupleDesc	desc;

	if (state == NULL || strlen(state) != SSO_STATE_LEN || state[36] != '.')
		sso_bad_state();
	memcpy(org_str, state, 36);
	org_str[36] = '\0';
	if (!saas_uuid_from_cstr(org_str, &org_id))
		sso_bad_state();
	if (error)
		sso_refused(psprintf("the identity provider answered %s", sso_plain(error)));
	if (code == NULL || code[0] == '\0' || strlen(code) > 2048)
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_VALIDATION),
				 errmsg("code is required"),
				 errdetail_internal("[{\"field\":\"code\",\"message\":\"is required\"}]")));

	/* The browser that started it: its cookie, or no sign-in. */
	if (binding == NULL || strlen(binding) != SSO_BINDING_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_VALIDATION),
				 errmsg("the sign-in must end in the browser that started it: its cookie " SAAS_SSO_COOKIE " is missing"),
				 errdetail_internal("[{\"field\":\"state\",\"message\":\"has no sign-in cookie with it\"}]")));

	/* What the sign-in was: read only, no lock, no tenant context. */
	state_hash = sso_state_hash(state, binding);
	saas_spi_connect();
	saas_elevate(&elev);
	vals[0] = saas_uuid_datum(&org_id);
	vals[1] = state_hash;
	if (saas_exec(&plan_request_get, vals, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the sign-in");
	if (SPI_processed == 0)
		sso_bad_state();
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	conn_id = *DatumGetUUIDP(SPI_getbinval(tup, desc, 1, &isnull));
	issuer = SPI_getvalue(tup, desc, 2);
	client_id = SPI_getvalue(tup, desc, 3);
	redirect = SPI_getvalue(tup, desc, 4);
	domains = datumCopy(SPI_getbinval(tup, desc, 5, &isnull), false, -1);
	default_role = SPI_getvalue(tup, desc, 6);
	secret = SPI_getvalue(tup, desc, 7);
	if (strcmp(SPI_getvalue(tup, desc, 8), "active") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_FORBIDDEN),
				 errmsg("this organization is not active")));
	saas_unelevate(&elev);

	/* The network: discovery (cached), the code exchange, the keys (cached). */
	saas_oidc_discover(issuer, &prov);
	id_token = sso_exchange(&prov, code, redirect, sso_b64_hmac(state, "pg_saas sso pkce"),
							client_id, secret);
	x.issuer = issuer;
	x.client_id = client_id;
	x.nonce = sso_b64_hmac(state, "pg_saas sso nonce");
	x.now = (int64) (GetCurrentTimestamp() / USECS_PER_SEC) +
		(POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY;
	x.leeway_s = saas_jwt_leeway_s;
	x.max_age_s = SSO_ID_TOKEN_MAX_AGE_S;
	jwks = saas_oidc_jwks(prov.jwks_uri, NULL);
	st = saas_oidc_verify(id_token, jwks, &x, &claims);
	if (st == SAAS_OIDC_UNKNOWN_KID && saas_oidc_token_kid(id_token) != NULL)
	{
		/* The provider may have rotated its keys: a fresh copy. */
		jwks = saas_oidc_jwks(prov.jwks_uri, saas_oidc_token_kid(id_token));
		st = saas_oidc_verify(id_token, jwks, &x, &claims);
	}
	if (st != SAAS_OIDC_OK)
		sso_refused(saas_oidc_message(st));

	/* Who it is. */
	sub = sso_claim(claims, "sub", 255);
	email = sso_claim(claims, "email", 254);
	verified = saas_jsonb_get(claims, "email_verified");
	if (email == NULL)
		sso_refused("the id_token has no email");
	if (verified == NULL || verified->type != jbvBool || !verified->val.boolean)
		sso_refused("the identity provider has not verified the email");
	if (!sso_domain_allowed(email, domains))
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_FORBIDDEN),
				 errmsg("the email's domain is not allowed to sign in to this organization")));

	/* The sign-in is used up: a second callback with this state finds nothing. */
	saas_elevate(&elev);
	vals[0] = saas_uuid_datum(&org_id);
	vals[1] = state_hash;
	if (saas_exec(&plan_request_consume, vals, NULL, false, 0) != SPI_OK_DELETE_RETURNING ||
		SPI_processed != 1)
		sso_bad_state();

	/* The user: linked by subject, else by email in the organization, else new. */
	vals[1] = CStringGetTextDatum(issuer);
	vals[2] = CStringGetTextDatum(sub);
	if (saas_exec(&plan_identity_get, vals, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the identity");
	if (SPI_processed == 1)
		user_id = *DatumGetUUIDP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	else
	{
		vals[1] = CStringGetTextDatum(email);
		if (saas_exec(&plan_user_by_email, vals, NULL, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not look up the user");
		if (SPI_processed == 1)
			user_id = *DatumGetUUIDP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		else
		{
			/* Just-in-time: as the organization's trusted admin; the rules count employee_limit. */
			SaasElevation wr;
			bool		welev;
			int			nest;
			const char *at = strchr(email, '@');
			char	   *local = pnstrdup(email, at ? (size_t) (at - email) : strlen(email));
			char	   *given = sso_claim(claims, "given_name", 400);
			char	   *family = sso_claim(claims, "family_name", 400);

			saas_unelevate(&elev);
			saas_uuid_v7(&user_id);
			welev = saas_elevate_citus(&wr);
			nest = saas_context_push_trusted(&org_id, &user_id, SAAS_ROLE_ADMIN);
			saas_user_dir_set(&org_id, &user_id, email, NULL);
			vals[0] = saas_uuid_datum(&org_id);
			vals[1] = saas_uuid_datum(&user_id);
			vals[2] = CStringGetTextDatum(email);
			vals[3] = CStringGetTextDatum(sso_name(given, local));
			vals[4] = CStringGetTextDatum(sso_name(family, "-"));
			vals[5] = CStringGetTextDatum(default_role);
			if (saas_exec(&plan_user_create, vals, NULL, false, 0) != SPI_OK_INSERT_RETURNING ||
				SPI_processed != 1)
				elog(ERROR, "could not create the user");
			saas_context_pop(nest);
			if (welev)
				saas_unelevate(&wr);
			saas_elevate(&elev);
		}
		vals[0] = saas_uuid_datum(&org_id);
		vals[1] = CStringGetTextDatum(issuer);
		vals[2] = CStringGetTextDatum(sub);
		vals[3] = saas_uuid_datum(&user_id);
		saas_exec(&plan_identity_put, vals, NULL, false, 0);
	}
	vals[0] = saas_uuid_datum(&org_id);
	vals[1] = saas_uuid_datum(&user_id);
	if (saas_exec(&plan_user_state, vals, NULL, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		sso_refused("the account is gone");
	role = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	if (strcmp(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2), "active") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_SAAS_FORBIDDEN),
				 errmsg("this account is not active")));
	gen = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
	saas_unelevate(&elev);
	(void) conn_id;

	saas_login_answer(&org_id, &user_id, role, gen, out);
	SPI_finish();
}
