/*-------------------------------------------------------------------------
 *
 * jwt_time.c
 *	  The time claims of a token (exp, nbf, iat): NumericDates read exactly,
 *	  and the one rule that checks them with a leeway.
 *
 * RFC 7519 allows a non-integer NumericDate and libraries emit them (jose:
 * 1700000000.5). Checks compare whole seconds; rounding exp down and
 * nbf/iat up answers exactly as the unrounded value would.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "pg_saas.h"
#include "common/common.h"
#include "auth/auth.h"

/*
 * Bounds of a NumericDate: 2^53 seconds either side of the epoch, the range
 * where every JSON number is exact in an IEEE double (RFC 7493, I-JSON),
 * hundreds of millions of years away. Beyond it a time claim is invalid,
 * which also keeps "exp + leeway" far from int64 overflow.
 */
#define JWT_NUMERIC_DATE_MAX	(INT64CONST(1) << 53)

/*
 * saas_jwt_numeric_date: a NumericDate, the text of a JSON number token
 * (RFC 7519 section 2: seconds since the epoch, possibly non-integer, e.g.
 * "1700000000.5" or "1.7e9"), as whole seconds, rounded down or up. False
 * for anything but a JSON number, and beyond +/- 2^53 s. Never throws.
 *
 * Why a rounding direction: callers compare whole seconds, "now > exp +
 * leeway" and "now + leeway < nbf" (or iat). For a whole number x and any
 * real y, x > y exactly when x > floor(y), and x < y exactly when
 * x < ceil(y); so exp rounded down and nbf and iat rounded up give the
 * answer the exact value would, neither longer nor shorter validity.
 *
 * Exact decimal arithmetic on the digits, no floating point: 1700000000.5
 * floors to 1700000000 however many digits follow.
 */
bool
saas_jwt_numeric_date(const char *num, bool round_up, int64 *out)
{
	const char *p = num,
			   *int_start,
			   *frac_start = NULL;
	int			int_len,
				frac_len = 0;
	bool		neg = false,
				fraction = false;
	int64		exp10 = 0,
				point,
				i,
				v = 0;

	if (num == NULL)
		return false;
	/* JSON grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
	if (*p == '-')
	{
		neg = true;
		p++;
	}
	int_start = p;
	if (*p == '0')
		p++;
	else if (*p >= '1' && *p <= '9')
		while (*p >= '0' && *p <= '9')
			p++;
	else
		return false;
	int_len = p - int_start;
	if (*p == '.')
	{
		frac_start = ++p;
		while (*p >= '0' && *p <= '9')
			p++;
		frac_len = p - frac_start;
		if (frac_len == 0)
			return false;
	}
	if (*p == 'e' || *p == 'E')
	{
		bool		eneg = false;

		p++;
		if (*p == '+' || *p == '-')
			eneg = (*p++ == '-');
		if (!(*p >= '0' && *p <= '9'))
			return false;
		while (*p >= '0' && *p <= '9')
		{
			/* saturate: past a million digits either way the answer is fixed */
			if (exp10 < 1000000)
				exp10 = exp10 * 10 + (*p - '0');
			p++;
		}
		if (eneg)
			exp10 = -exp10;
	}
	if (*p != '\0')
		return false;

	/*
	 * The digits d (integer then fraction digits) with the decimal point
	 * after the first "point" of them: the integer part is d[0..point),
	 * padded with zeros when point is past the end; any non-zero digit from
	 * point on is a fraction.
	 */
	point = int_len + exp10;
	for (i = 0; i < int_len + frac_len; i++)
	{
		char		d = i < int_len ? int_start[i] : frac_start[i - int_len];

		if (i < point)
		{
			v = v * 10 + (d - '0');
			if (v > JWT_NUMERIC_DATE_MAX)
				return false;
		}
		else if (d != '0')
			fraction = true;
	}
	for (; v != 0 && i < point; i++)
	{
		v *= 10;
		if (v > JWT_NUMERIC_DATE_MAX)
			return false;
	}
	if (neg)
		v = -v;
	if (fraction)
	{
		if (neg && !round_up)
			v--;
		else if (!neg && round_up)
			v++;
	}
	if (v > JWT_NUMERIC_DATE_MAX || v < -JWT_NUMERIC_DATE_MAX)
		return false;
	*out = v;
	return true;
}

/*
 * jwt_numeric_claim: a top-level NumericDate claim, rounded as asked;
 * false if it is not a number or out of range. Its jsonb numeric is read
 * through numeric_out (plain decimal digits), so tokens verified here and
 * by the context's own parser follow the one rule of saas_jwt_numeric_date.
 */
static bool
jwt_numeric_claim(Jsonb *claims, const char *key, bool round_up, int64 *out, bool *present)
{
	JsonbValue *v = saas_jsonb_get(claims, key);

	*present = (v != NULL);
	if (v == NULL)
		return true;
	if (v->type != jbvNumeric)
		return false;
	return saas_jwt_numeric_date(DatumGetCString(DirectFunctionCall1(numeric_out,
																	 NumericGetDatum(v->val.numeric))),
								 round_up, out);
}

/*
 * saas_jwt_check_times: exp, nbf and iat against now (Unix seconds) with
 * leeway. iat in the future beyond the leeway is refused too. Non-integer
 * NumericDates are valid (RFC 7519), rounded by saas_jwt_numeric_date.
 */
SaasJwtStatus
saas_jwt_check_times(Jsonb *claims, int64 now, int leeway, bool require_exp)
{
	SaasJwtTimes t = {0};

	if (!jwt_numeric_claim(claims, "exp", false, &t.exp, &t.has_exp) ||
		!jwt_numeric_claim(claims, "nbf", true, &t.nbf, &t.has_nbf) ||
		!jwt_numeric_claim(claims, "iat", true, &t.iat, &t.has_iat))
		return SAAS_JWT_BAD_CLAIMS;
	return saas_jwt_check_time_values(&t, now, leeway, require_exp);
}

/*
 * saas_jwt_check_time_values: the one rule for time claims, used for new
 * tokens and again for cached ones: exp (required when asked), nbf and iat
 * (not in the future) against now, each with leeway.
 */
SaasJwtStatus
saas_jwt_check_time_values(const SaasJwtTimes *t, int64 now, int leeway, bool require_exp)
{
	if (require_exp && !t->has_exp)
		return SAAS_JWT_BAD_CLAIMS;
	if (t->has_exp && now > t->exp + leeway)
		return SAAS_JWT_EXPIRED;
	if (t->has_nbf && now + leeway < t->nbf)
		return SAAS_JWT_NOT_YET_VALID;
	if (t->has_iat && now + leeway < t->iat)
		return SAAS_JWT_NOT_YET_VALID;
	return SAAS_JWT_OK;
}
