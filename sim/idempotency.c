/*-------------------------------------------------------------------------
 *
 * idempotency.c
 *	  The Idempotency-Key store of a simulated service.
 *
 * The first answer to a mutating call with a key is kept with a fingerprint
 * of the request; a replay with the same key and the same request gets the
 * same status and body and changes nothing, a replay with a different
 * request is refused (422), as Stripe does.  Callers hold the service lock
 * across lookup, effect and store, so two concurrent calls with one key
 * cannot both take effect.  The store is bounded: the oldest keys go first.
 *
 *-------------------------------------------------------------------------
 */
#include "sim.h"

#include <stdlib.h>
#include <string.h>

#define IDEM_MAX_KEYS 100000
#define IDEM_MAX_KEY_LEN 255

/* idem_record_free: free one stored answer */
static void
idem_record_free(void *p)
{
	SimIdemRecord *r = p;

	if (r == NULL)
		return;
	free(r->body);
	free(r);
}

/* sim_idem_init: an empty store */
void
sim_idem_init(SimIdemStore *store)
{
	sim_map_init(&store->map);
	store->ring_cap = IDEM_MAX_KEYS;
	store->ring = calloc(store->ring_cap, sizeof(char *));
	if (store->ring == NULL)
		abort();
	store->ring_head = 0;
	store->ring_count = 0;
}

/* sim_idem_clear: forget every key and free the store's memory */
void
sim_idem_clear(SimIdemStore *store)
{
	sim_map_free(&store->map, idem_record_free);
	if (store->ring)
	{
		for (size_t i = 0; i < store->ring_cap; i++)
			free(store->ring[i]);
		free(store->ring);
	}
	store->ring = NULL;
	store->ring_cap = 0;
	store->ring_count = 0;
	store->ring_head = 0;
}

/* sim_idem_get: the stored answer for key, or NULL */
const SimIdemRecord *
sim_idem_get(SimIdemStore *store, const char *key)
{
	return sim_map_get(&store->map, key);
}

/* sim_idem_put: remember the first answer for key, evicting the oldest key when full */
void
sim_idem_put(SimIdemStore *store, const char *key, const char *fingerprint,
			 int status, const char *body, size_t body_len)
{
	SimIdemRecord *r;
	size_t		slot;

	if (sim_map_get(&store->map, key) != NULL)
		return;
	slot = (store->ring_head + store->ring_count) % store->ring_cap;
	if (store->ring_count == store->ring_cap)
	{
		/* full: the slot to write is the oldest key */
		idem_record_free(sim_map_remove(&store->map, store->ring[slot]));
		free(store->ring[slot]);
		store->ring_head = (store->ring_head + 1) % store->ring_cap;
	}
	else
		store->ring_count++;
	store->ring[slot] = sim_strdup(key);

	r = sim_malloc(sizeof(SimIdemRecord));
	memcpy(r->fingerprint, fingerprint, 65);
	r->status = status;
	r->body = sim_strndup(body ? body : "", body ? body_len : 0);
	r->body_len = body ? body_len : 0;
	sim_map_put(&store->map, key, r);
}

/* sim_idem_fingerprint: SHA-256 of method, path and raw body */
void
sim_idem_fingerprint(const SimRequest *req, char out[65])
{
	SimBuf		b;

	sbuf_init(&b);
	sbuf_printf(&b, "%s\n%s\n", req->method, req->path);
	if (req->body_len)
		sbuf_append(&b, req->body, req->body_len);
	sim_sha256_hex(b.data, b.len, out);
	sbuf_free(&b);
}

/* sim_idem_key_valid: 1 to 255 printable ASCII characters */
bool
sim_idem_key_valid(const char *key)
{
	size_t		n = strlen(key);

	if (n == 0 || n > IDEM_MAX_KEY_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if (key[i] < 0x21 || key[i] > 0x7E)
			return false;
	return true;
}
