/*
 * isotime.c - the ISO 8601 date-times Celery puts in task headers (eta,
 * expires) and in result values (date_done), to and from Unix seconds.
 *
 * Python's datetime.isoformat() writes "YYYY-MM-DDTHH:MM:SS", then
 * ".ffffff" only when the microseconds are not zero, then the UTC offset
 * for aware values ("+00:00").  We parse that, plus 'Z' and 1-9 fraction
 * digits from other producers, and write exactly what Python would.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "broker/message.h"

/* Largest value we format; far beyond any eta, and safe for time_t. */
#define ISO_MAX_SECONDS		253402300799.0	/* 9999-12-31T23:59:59 */
#define ISO_MIN_SECONDS		-62135596800.0	/* 0001-01-01T00:00:00 */

/* Read exactly n decimal digits; -1 if any is missing. */
static int
iso_digits(const char **sp, int n)
{
	const char	*s = *sp;
	int		 v = 0, i;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*sp = s + n;
	return v;
}

static int
iso_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int
iso_mdays(int y, int m)
{
	static const int days[12] = {
		31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31
	};

	if (m == 2 && iso_leap(y))
		return 29;
	return days[m - 1];
}

/*
 * Parse "YYYY-MM-DDTHH:MM:SS[.f{1,9}][Z|+HH:MM|-HH:MM]".  A value with no
 * offset is taken as UTC: Celery clients send aware UTC values (and a C
 * worker has no Python timezone setting to apply to naive ones).
 */
int
msg_parse_iso8601(const char *s, double *out)
{
	struct tm	 tm;
	time_t		 t;
	double		 frac = 0.0, scale = 0.1;
	int		 y, mo, d, h, mi, sec, ndig, sign, oh, om, off = 0;

	if (s == NULL || out == NULL)
		return -1;
	if ((y = iso_digits(&s, 4)) < 0 || *s++ != '-' ||
	    (mo = iso_digits(&s, 2)) < 0 || *s++ != '-' ||
	    (d = iso_digits(&s, 2)) < 0 || *s++ != 'T' ||
	    (h = iso_digits(&s, 2)) < 0 || *s++ != ':' ||
	    (mi = iso_digits(&s, 2)) < 0 || *s++ != ':' ||
	    (sec = iso_digits(&s, 2)) < 0)
		return -1;
	if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > iso_mdays(y, mo) ||
	    h > 23 || mi > 59 || sec > 59)
		return -1;
	if (*s == '.') {
		s++;
		for (ndig = 0; *s >= '0' && *s <= '9'; ndig++, s++) {
			frac += (*s - '0') * scale;
			scale /= 10;
		}
		if (ndig < 1 || ndig > 9)
			return -1;
	}
	if (*s == 'Z') {
		s++;
	} else if (*s == '+' || *s == '-') {
		sign = *s++ == '-' ? -1 : 1;
		if ((oh = iso_digits(&s, 2)) < 0 || *s++ != ':' ||
		    (om = iso_digits(&s, 2)) < 0 || oh > 23 || om > 59)
			return -1;
		off = sign * (oh * 3600 + om * 60);
	}
	if (*s != '\0')
		return -1;

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	/* "+01:00" means local = UTC + 1h, so UTC = local - offset. */
	*out = (double)t - off + frac;
	return 0;
}

/*
 * Split t into broken-down UTC time and microseconds, rounding to the
 * nearest microsecond as Python's datetime.fromtimestamp() does.
 */
static void
iso_split(double t, struct tm *tm, long *usec)
{
	time_t	 secs;
	double	 fl;

	if (!isfinite(t))
		t = 0.0;
	if (t > ISO_MAX_SECONDS)
		t = ISO_MAX_SECONDS;
	if (t < ISO_MIN_SECONDS)
		t = ISO_MIN_SECONDS;
	fl = floor(t);
	secs = (time_t)fl;
	*usec = lround((t - fl) * 1e6);
	if (*usec >= 1000000) {
		secs++;
		*usec -= 1000000;
	}
	if (gmtime_r(&secs, tm) == NULL)
		memset(tm, 0, sizeof(*tm));
}

/* Python's isoformat() without offset; the fraction only if non-zero. */
static void
iso_format(double t, const char *suffix, char *buf, size_t len)
{
	struct tm	 tm;
	long		 usec;

	if (buf == NULL || len == 0)
		return;
	iso_split(t, &tm, &usec);
	if (usec != 0)
		snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%06ld%s",
		    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
		    tm.tm_hour, tm.tm_min, tm.tm_sec, usec, suffix);
	else
		snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d%s",
		    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
		    tm.tm_hour, tm.tm_min, tm.tm_sec, suffix);
}

void
msg_format_date_done(double t, char *buf, size_t len)
{
	iso_format(t, "", buf, len);
}

void
msg_format_iso8601(double t, char *buf, size_t len)
{
	iso_format(t, "+00:00", buf, len);
}
