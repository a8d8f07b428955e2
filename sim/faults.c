/*-------------------------------------------------------------------------
 *
 * faults.c
 *	  Fault profiles of the simulated services and the per-request draw.
 *
 * A profile is set whole (POST /_sim/faults/{service} or --faults); fields
 * it does not name take their defaults, so a profile never depends on the
 * one before it.  Decisions are drawn from the service's own seeded PRNG,
 * so the same seed and the same sequence of requests give the same faults.
 *
 *-------------------------------------------------------------------------
 */
#include "sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* sim_faults_default: a healthy service */
void
sim_faults_default(SimFaults *f)
{
	memset(f, 0, sizeof(*f));
	f->status = 503;
	f->mode = SIM_MODE_OK;
	f->flap_period_ms = 3000;
	f->hang_max_ms = 300000;
}

/* sim_mode_name: the name used in JSON */
const char *
sim_mode_name(SimMode mode)
{
	switch (mode)
	{
		case SIM_MODE_OK:
			return "ok";
		case SIM_MODE_DOWN:
			return "down";
		case SIM_MODE_HANG:
			return "hang";
		case SIM_MODE_FLAP:
			return "flap";
	}
	return "ok";
}

/* faults_number: v as a number within [min, max], or an error naming the field */
static bool
faults_number(const char *key, const json_t *v, double min, double max,
			  bool integral, double *out, char *err, size_t errlen)
{
	if (!json_is_number(v) || (integral && !json_is_integer(v)))
	{
		snprintf(err, errlen, "%s must be %s", key, integral ? "an integer" : "a number");
		return false;
	}
	if (json_number_value(v) < min || json_number_value(v) > max)
	{
		snprintf(err, errlen, "%s must be between %g and %g", key, min, max);
		return false;
	}
	*out = json_number_value(v);
	return true;
}

/* faults_set_field: apply one named field; false with err for unknown or bad ones */
static bool
faults_set_field(SimFaults *f, const char *key, const json_t *v, char *err, size_t errlen)
{
	double		d;

	if (strcmp(key, "mode") == 0)
	{
		const char *m = json_is_string(v) ? json_string_value(v) : "";

		if (strcmp(m, "ok") == 0)
			f->mode = SIM_MODE_OK;
		else if (strcmp(m, "down") == 0)
			f->mode = SIM_MODE_DOWN;
		else if (strcmp(m, "hang") == 0)
			f->mode = SIM_MODE_HANG;
		else if (strcmp(m, "flap") == 0)
			f->mode = SIM_MODE_FLAP;
		else
		{
			snprintf(err, errlen, "mode must be one of ok, down, hang, flap");
			return false;
		}
		return true;
	}
	if (strcmp(key, "error_rate") == 0)
	{
		if (!faults_number(key, v, 0, 1, false, &d, err, errlen))
			return false;
		f->error_rate = d;
	}
	else if (strcmp(key, "lost_response_rate") == 0)
	{
		if (!faults_number(key, v, 0, 1, false, &d, err, errlen))
			return false;
		f->lost_response_rate = d;
	}
	else if (strcmp(key, "lost_response") == 0)
	{
		const char *m = json_is_string(v) ? json_string_value(v) : "";

		if (strcmp(m, "error") == 0)
			f->lost_response = SIM_LOST_ERROR;
		else if (strcmp(m, "drop") == 0)
			f->lost_response = SIM_LOST_DROP;
		else if (strcmp(m, "hang") == 0)
			f->lost_response = SIM_LOST_HANG;
		else
		{
			snprintf(err, errlen, "lost_response must be one of error, drop, hang");
			return false;
		}
	}
	else if (strcmp(key, "status") == 0)
	{
		if (!faults_number(key, v, 400, 599, true, &d, err, errlen))
			return false;
		f->status = (int) d;
	}
	else if (strcmp(key, "latency_ms") == 0)
	{
		if (!faults_number(key, v, 0, 600000, true, &d, err, errlen))
			return false;
		f->latency_ms = (int) d;
	}
	else if (strcmp(key, "jitter_ms") == 0)
	{
		if (!faults_number(key, v, 0, 600000, true, &d, err, errlen))
			return false;
		f->jitter_ms = (int) d;
	}
	else if (strcmp(key, "retry_after") == 0)
	{
		if (!faults_number(key, v, 0, 86400, true, &d, err, errlen))
			return false;
		f->retry_after = (int) d;
	}
	else if (strcmp(key, "flap_period_ms") == 0)
	{
		if (!faults_number(key, v, 100, 3600000, true, &d, err, errlen))
			return false;
		f->flap_period_ms = (int) d;
	}
	else if (strcmp(key, "hang_max_ms") == 0)
	{
		if (!faults_number(key, v, 100, 3600000, true, &d, err, errlen))
			return false;
		f->hang_max_ms = (int) d;
	}
	else
	{
		snprintf(err, errlen, "unknown fault field \"%s\"", key);
		return false;
	}
	return true;
}

/*
 * sim_faults_from_json
 *		A complete profile from a JSON object; unknown fields are refused so
 *		that a typo does not silently leave a service healthy.
 */
bool
sim_faults_from_json(json_t *obj, SimFaults *f, char *err, size_t errlen)
{
	const char *key;
	json_t	   *value;

	sim_faults_default(f);
	if (obj == NULL || !json_is_object(obj))
	{
		snprintf(err, errlen, "the fault profile must be a JSON object");
		return false;
	}
	json_object_foreach(obj, key, value)
	{
		if (!faults_set_field(f, key, value, err, errlen))
			return false;
	}
	return true;
}

/*
 * sim_faults_from_spec
 *		A complete profile from the command-line form
 *		"error_rate=0.3,latency_ms=50,mode=down".
 */
bool
sim_faults_from_spec(const char *spec, SimFaults *f, char *err, size_t errlen)
{
	char	   *copy = sim_strdup(spec);
	char	   *save = NULL;
	bool		ok = true;

	sim_faults_default(f);
	for (char *tok = strtok_r(copy, ",", &save); tok && ok; tok = strtok_r(NULL, ",", &save))
	{
		char	   *eq = strchr(tok, '=');
		json_t	   *v;

		if (eq == NULL)
		{
			snprintf(err, errlen, "expected key=value, got \"%s\"", tok);
			ok = false;
			break;
		}
		*eq = '\0';
		if (strcmp(tok, "mode") == 0 || strcmp(tok, "lost_response") == 0)
		{
			json_t	   *s = json_string(eq + 1);

			ok = faults_set_field(f, tok, s, err, errlen);
			json_decref(s);
			continue;
		}
		v = sim_json_parse(eq + 1, strlen(eq + 1), NULL, 0);
		if (v == NULL)
		{
			snprintf(err, errlen, "%s: \"%s\" is not a number", tok, eq + 1);
			ok = false;
			break;
		}
		ok = faults_set_field(f, tok, v, err, errlen);
		json_decref(v);
	}
	free(copy);
	return ok;
}

/* sim_faults_write: the profile as a JSON object */
void
sim_faults_write(SimJw *jw, const SimFaults *f)
{
	jw_obj_begin(jw);
	jw_kstr(jw, "mode", sim_mode_name(f->mode));
	jw_knum(jw, "error_rate", f->error_rate);
	jw_kint(jw, "status", f->status);
	jw_kint(jw, "latency_ms", f->latency_ms);
	jw_kint(jw, "jitter_ms", f->jitter_ms);
	jw_kint(jw, "retry_after", f->retry_after);
	jw_kint(jw, "flap_period_ms", f->flap_period_ms);
	jw_knum(jw, "lost_response_rate", f->lost_response_rate);
	jw_kstr(jw, "lost_response", f->lost_response == SIM_LOST_DROP ? "drop" :
			f->lost_response == SIM_LOST_HANG ? "hang" : "error");
	jw_kint(jw, "hang_max_ms", f->hang_max_ms);
	jw_obj_end(jw);
}

/*
 * sim_faults_should_listen
 *		Whether the service's port should accept connections now: never in
 *		"down", in "flap" during the even periods (it starts up).
 */
bool
sim_faults_should_listen(const SimFaults *f, int64_t mono_ms)
{
	if (f->mode == SIM_MODE_DOWN)
		return false;
	if (f->mode == SIM_MODE_FLAP)
	{
		int64_t		phase = (mono_ms - f->flap_started_ms) / f->flap_period_ms;

		return phase % 2 == 0;
	}
	return true;
}

/* sim_faults_set: install a profile; a flap starts its first up period now */
void
sim_faults_set(SimService *svc, const SimFaults *f)
{
	pthread_mutex_lock(&svc->faults_lock);
	svc->faults = *f;
	svc->faults.flap_started_ms = sim_mono_ms();
	pthread_mutex_unlock(&svc->faults_lock);
}

/* sim_faults_get: a copy of the current profile */
void
sim_faults_get(SimService *svc, SimFaults *f)
{
	pthread_mutex_lock(&svc->faults_lock);
	*f = svc->faults;
	pthread_mutex_unlock(&svc->faults_lock);
}

/*
 * sim_faults_decide
 *		Draw what this request suffers.  The number of PRNG draws depends only
 *		on the profile, so the sequence of decisions is a function of the seed
 *		and the order of requests.
 */
void
sim_faults_decide(SimService *svc, SimFaultDecision *d)
{
	SimFaults  *f = &svc->faults;

	memset(d, 0, sizeof(*d));
	pthread_mutex_lock(&svc->faults_lock);
	if (f->mode == SIM_MODE_HANG)
		d->hang = true;
	else
	{
		d->delay_ms = f->latency_ms;
		if (f->jitter_ms > 0)
			d->delay_ms += (int) sim_rng_below(&svc->fault_rng, (uint64_t) f->jitter_ms + 1);
		if (f->error_rate > 0 && sim_rng_unit(&svc->fault_rng) < f->error_rate)
			d->error_status = f->status;
		else if (f->lost_response_rate > 0 &&
				 sim_rng_unit(&svc->fault_rng) < f->lost_response_rate)
		{
			d->error_status = f->status;
			d->lose_response = true;
			d->lost_how = f->lost_response;
		}
		d->retry_after = f->retry_after;
	}
	pthread_mutex_unlock(&svc->faults_lock);
	if (d->hang || d->error_status)
		SIM_STAT_ADD(svc, faults_injected, 1);
}
