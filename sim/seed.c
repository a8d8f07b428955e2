/*-------------------------------------------------------------------------
 *
 * seed.c
 *	  The start-up state of saas-sim, read from platform_data.json.
 *
 * Organizations keep their ids ("org_001") as the services' organization
 * references; a user exists at a service when its external_user_ids has
 * that service's key (user_service, payment_service).  A missing or bad
 * file is reported and the sim starts empty: it must run without it.
 *
 *-------------------------------------------------------------------------
 */
#include "sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static SimSeed global_seed;

/* seed_read_file: the whole file, or NULL */
static char *
seed_read_file(const char *path, size_t *len)
{
	FILE	   *f = fopen(path, "rb");
	SimBuf		b;
	char		chunk[8192];
	size_t		n;

	if (f == NULL)
		return NULL;
	sbuf_init(&b);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
	{
		sbuf_append(&b, chunk, n);
		if (b.len > 64 * 1024 * 1024)
			break;
	}
	fclose(f);
	*len = b.len;
	return sbuf_steal(&b);
}

/* seed_str: a copy of a string member, or NULL */
static char *
seed_str(const json_t *obj, const char *key)
{
	return sim_strdup(sim_json_get_str(obj, key));
}

/* seed_enabled: external_integrations.<key>.enabled is true */
static bool
seed_enabled(const json_t *org, const char *key)
{
	const json_t *ints = json_object_get(org, "external_integrations");
	const json_t *e = json_object_get(ints, key);
	const json_t *en = json_object_get(e, "enabled");

	return en && json_is_boolean(en) && json_is_true(en);
}

/*
 * sim_seed_load
 *		Read path into seed; when path is NULL, try the usual places relative
 *		to the working directory.
 */
void
sim_seed_load(SimSeed *seed, const char *path)
{
	static const char *const candidates[] = {
		"../shared/reference-data/platform_data.json",
		"../../shared/reference-data/platform_data.json",
		"shared/reference-data/platform_data.json",
		NULL
	};
	char	   *text = NULL;
	size_t		len = 0;
	char		err[160];
	json_t	   *root;
	const json_t *orgs,
			   *users;

	memset(seed, 0, sizeof(*seed));
	if (path)
		text = seed_read_file(path, &len);
	else
		for (int i = 0; candidates[i] && text == NULL; i++)
			if ((text = seed_read_file(candidates[i], &len)) != NULL)
				path = candidates[i];
	if (text == NULL)
	{
		if (path)
			sim_log("cannot read seed data %s: starting with no organizations", path);
		else
			sim_log("no seed data found (--seed-data): starting with no organizations");
		return;
	}
	root = sim_json_parse(text, len, err, sizeof(err));
	free(text);
	if (root == NULL || !json_is_object(root))
	{
		sim_log("seed data %s is not a JSON object (%s): starting with no organizations",
				path, root ? "wrong type" : err);
		json_decref(root);
		return;
	}
	orgs = json_object_get(root, "organizations");
	users = json_object_get(root, "users");
	if (orgs && json_is_array(orgs))
	{
		size_t		n = json_array_size(orgs);

		seed->orgs = calloc(n ? n : 1, sizeof(SimSeedOrg));
		for (size_t i = 0; i < n; i++)
		{
			const json_t *o = json_array_get(orgs, i);
			SimSeedOrg *so;

			if (sim_json_get_str(o, "id") == NULL)
				continue;
			so = &seed->orgs[seed->norgs++];
			so->id = seed_str(o, "id");
			so->name = seed_str(o, "name");
			so->tier = seed_str(o, "subscription_tier");
			so->payment_enabled = seed_enabled(o, "payment_service");
			so->communication_enabled = seed_enabled(o, "communication_service");
		}
	}
	if (users && json_is_array(users))
	{
		size_t		n = json_array_size(users);

		seed->users = calloc(n ? n : 1, sizeof(SimSeedUser));
		for (size_t i = 0; i < n; i++)
		{
			const json_t *u = json_array_get(users, i);
			const json_t *ext = json_object_get(u, "external_user_ids");
			SimSeedUser *su;

			if (sim_json_get_str(u, "organization_id") == NULL || sim_json_get_str(u, "email") == NULL)
				continue;
			su = &seed->users[seed->nusers++];
			su->org = seed_str(u, "organization_id");
			su->email = seed_str(u, "email");
			su->first_name = seed_str(u, "first_name");
			su->last_name = seed_str(u, "last_name");
			su->role = seed_str(u, "role");
			su->status = seed_str(u, "status");
			su->created_at = seed_str(u, "created_at");
			su->user_service_id = seed_str(ext, "user_service");
			su->payment_service_id = seed_str(ext, "payment_service");
		}
	}
	json_decref(root);
	seed->path = sim_strdup(path);
	sim_log("seed data %s: %zu organizations, %zu users", path, seed->norgs, seed->nusers);
}

/* sim_seed_free: free what sim_seed_load read */
void
sim_seed_free(SimSeed *seed)
{
	for (size_t i = 0; i < seed->norgs; i++)
	{
		free(seed->orgs[i].id);
		free(seed->orgs[i].name);
		free(seed->orgs[i].tier);
	}
	for (size_t i = 0; i < seed->nusers; i++)
	{
		SimSeedUser *u = &seed->users[i];

		free(u->org);
		free(u->email);
		free(u->first_name);
		free(u->last_name);
		free(u->role);
		free(u->status);
		free(u->created_at);
		free(u->user_service_id);
		free(u->payment_service_id);
	}
	free(seed->orgs);
	free(seed->users);
	free(seed->path);
	memset(seed, 0, sizeof(*seed));
}

/* sim_seed_get: the seed loaded at start-up (main.c fills it) */
const SimSeed *
sim_seed_get(void)
{
	return &global_seed;
}

/* sim_seed_global: the seed's storage, for main.c */
SimSeed *
sim_seed_global(void)
{
	return &global_seed;
}
