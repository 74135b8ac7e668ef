/*
 * cron.c - cron expressions: parsing, and the search for matching
 * wall-clock times, pure calendar arithmetic (see cron.h).  Time zones
 * are crontz.c's.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "beat/cron.h"

#define CRON_YEARS	400	/* the Gregorian calendar repeats after this */

struct cron_field {
	const char		*name;
	int			 min;
	int			 max;
	const char *const	*names;		/* NULL: numbers only */
	int			 names_base;	/* value of names[0] */
};

static const char *const cron_months[] = {
	"jan", "feb", "mar", "apr", "may", "jun",
	"jul", "aug", "sep", "oct", "nov", "dec", NULL
};
static const char *const cron_days[] = {
	"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL
};

static const struct cron_field cron_fields[5] = {
	{ "minute", 0, 59, NULL, 0 },
	{ "hour", 0, 23, NULL, 0 },
	{ "day-of-month", 1, 31, NULL, 0 },
	{ "month", 1, 12, cron_months, 1 },
	{ "day-of-week", 0, 7, cron_days, 0 },
};

/*
 * Calendar arithmetic (proleptic Gregorian), after H. Hinnant's
 * days_from_civil: days since 1970-01-01.
 */
static int64_t
cron_days_from_civil(int y, int m, int d)
{
	int64_t		 era;
	unsigned	 yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (unsigned)((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1);
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static int
cron_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int
cron_mdays(int y, int m)
{
	static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31,
	    30, 31 };

	return m == 2 && cron_leap(y) ? 29 : days[m - 1];
}

/* 0 = Sunday; 1970-01-01 was a Thursday. */
static int
cron_weekday(int y, int m, int d)
{
	int64_t days = cron_days_from_civil(y, m, d);

	return (int)(((days % 7) + 11) % 7);
}

/*
 * Parsing.
 */

static int
cron_value(const struct cron_field *f, const char **pp, const char *end,
    int *v, char *err, size_t errlen)
{
	const char	*p = *pp, *s = p;
	long		 n = 0;
	int		 i;

	if (p < end && isdigit((unsigned char)*p)) {
		while (p < end && isdigit((unsigned char)*p) && n < 1000)
			n = n * 10 + (*p++ - '0');
		if (p < end && isdigit((unsigned char)*p))
			n = 1000;
		if (n < f->min || n > f->max) {
			snprintf(err, errlen, "%s: %.*s is out of range %d-%d",
			    f->name, (int)(p - s), s, f->min, f->max);
			return -1;
		}
		*v = (int)n;
		*pp = p;
		return 0;
	}
	while (p < end && isalpha((unsigned char)*p))
		p++;
	if (p == s) {
		snprintf(err, errlen, "%s: expected a number%s, found \"%.*s\"",
		    f->name, f->names ? " or a name" : "", (int)(end - s), s);
		return -1;
	}
	if (f->names == NULL) {
		snprintf(err, errlen, "%s: expected a number, found \"%.*s\"",
		    f->name, (int)(p - s), s);
		return -1;
	}
	for (i = 0; f->names[i] != NULL; i++)
		if (p - s == 3 && strncasecmp(s, f->names[i], 3) == 0) {
			*v = f->names_base + i;
			*pp = p;
			return 0;
		}
	snprintf(err, errlen, "%s: unknown name \"%.*s\" (expected %s..%s)",
	    f->name, (int)(p - s), s, f->names[0], f->names[i - 1]);
	return -1;
}

/* One list item: *, N, N-M, each with an optional /STEP. */
static int
cron_item(const struct cron_field *f, const char *p, const char *end,
    uint64_t *bits, char *err, size_t errlen)
{
	const char	*s = p;
	int		 lo, hi, step = 1, v, single = 0;

	if (p == end) {
		snprintf(err, errlen, "%s: empty list item", f->name);
		return -1;
	}
	if (*p == '*') {
		lo = f->min;
		hi = f->max;
		p++;
	} else {
		if (cron_value(f, &p, end, &lo, err, errlen) == -1)
			return -1;
		hi = lo;
		single = 1;
		if (p < end && *p == '-') {
			p++;
			if (cron_value(f, &p, end, &hi, err, errlen) == -1)
				return -1;
			single = 0;
			if (lo > hi) {
				snprintf(err, errlen, "%s: range %.*s is "
				    "reversed (wrap-around ranges are not "
				    "supported)", f->name, (int)(p - s), s);
				return -1;
			}
		}
	}
	if (p < end && *p == '/') {
		p++;
		for (v = 0; p < end && isdigit((unsigned char)*p) && v <= 1000;
		    p++)
			v = v * 10 + (*p - '0');
		if (p < end && isdigit((unsigned char)*p))
			v = 1001;
		if (p[-1] == '/' || v == 0 || v > f->max - f->min) {
			snprintf(err, errlen, "%s: step in \"%.*s\" must be a "
			    "number from 1 to %d", f->name, (int)(end - s), s,
			    f->max - f->min);
			return -1;
		}
		step = v;
		/* N/STEP: from N to the end of the field, as cronie reads it. */
		if (single)
			hi = f->max;
	}
	if (p != end) {
		snprintf(err, errlen, "%s: unexpected \"%.*s\" in \"%.*s\"",
		    f->name, (int)(end - p), p, (int)(end - s), s);
		return -1;
	}
	for (v = lo; v <= hi; v += step)
		*bits |= (uint64_t)1 << v;
	return 0;
}

static int
cron_field_parse(const struct cron_field *f, const char *s, const char *end,
    uint64_t *bits, char *err, size_t errlen)
{
	const char *comma;

	*bits = 0;
	for (;;) {
		comma = memchr(s, ',', (size_t)(end - s));
		if (cron_item(f, s, comma ? comma : end, bits, err,
		    errlen) == -1)
			return -1;
		if (comma == NULL)
			return 0;
		s = comma + 1;
	}
}

int
cron_parse(const char *text, struct cron_expr *e, char *err, size_t errlen)
{
	const char	*p = text, *start[6], *stop[6];
	uint64_t	 bits[5];
	int		 n = 0, i, m, d, ok;

	memset(e, 0, sizeof(*e));
	for (;;) {
		p += strspn(p, " \t");
		if (*p == '\0')
			break;
		if (n == 6)
			break;
		start[n] = p;
		p += strcspn(p, " \t");
		stop[n++] = p;
	}
	if (n != 5) {
		snprintf(err, errlen, "expected 5 fields (minute hour "
		    "day-of-month month day-of-week), got %s%d", n == 6 ?
		    "more than " : "", n == 6 ? 5 : n);
		return -1;
	}
	for (i = 0; i < 5; i++)
		if (cron_field_parse(&cron_fields[i], start[i], stop[i],
		    &bits[i], err, errlen) == -1)
			return -1;
	/* Day-of-week 7 is Sunday too. */
	if (bits[4] & (1u << 7))
		bits[4] = (bits[4] | 1u) & ~(uint64_t)(1u << 7);
	e->minute = bits[0];
	e->hour = (uint32_t)bits[1];
	e->dom = (uint32_t)bits[2];
	e->month = (uint16_t)bits[3];
	e->dow = (uint8_t)bits[4];
	e->dom_star = *start[2] == '*';
	e->dow_star = *start[4] == '*';

	/*
	 * With the AND rule the day of the month must exist in one of the
	 * months (February counts its 29th); with the OR rule every listed
	 * weekday comes round anyway.
	 */
	if (e->dom_star || e->dow_star) {
		ok = 0;
		for (m = 1; m <= 12 && !ok; m++)
			for (d = 1; d <= cron_mdays(2000, m) && !ok; d++)
				ok = (e->month & (1u << m)) &&
				    (e->dom & (1u << d));
		if (!ok) {
			snprintf(err, errlen, "day-of-month %.*s never occurs "
			    "in month %.*s", (int)(stop[2] - start[2]),
			    start[2], (int)(stop[3] - start[3]), start[3]);
			return -1;
		}
	}
	return 0;
}

/*
 * Matching and the wall-clock search.
 */

static int
cron_day_match(const struct cron_expr *e, int y, int m, int d)
{
	int dom = (e->dom >> d) & 1;
	int dow = (e->dow >> cron_weekday(y, m, d)) & 1;

	if (e->dom_star || e->dow_star)
		return dom && dow;
	return dom || dow;
}

int
cron_match(const struct cron_expr *e, const struct cron_wall *w)
{
	return ((e->month >> w->month) & 1) &&
	    cron_day_match(e, w->year, w->month, w->day) &&
	    ((e->hour >> w->hour) & 1) &&
	    ((e->minute >> w->minute) & 1);
}

static void
cron_next_day(struct cron_wall *c)
{
	c->hour = c->minute = 0;
	if (++c->day > cron_mdays(c->year, c->month)) {
		c->day = 1;
		if (++c->month > 12) {
			c->month = 1;
			c->year++;
		}
	}
}

int
cron_next_wall(const struct cron_expr *e, const struct cron_wall *w,
    struct cron_wall *out)
{
	struct cron_wall	 c = *w;
	int			 limit = w->year + CRON_YEARS;

	while (c.year <= limit) {
		if (!((e->month >> c.month) & 1)) {
			c.day = 1;
			c.hour = c.minute = 0;
			if (++c.month > 12) {
				c.month = 1;
				c.year++;
			}
			continue;
		}
		if (!cron_day_match(e, c.year, c.month, c.day)) {
			cron_next_day(&c);
			continue;
		}
		if (!((e->hour >> c.hour) & 1)) {
			c.minute = 0;
			if (++c.hour > 23)
				cron_next_day(&c);
			continue;
		}
		while (c.minute < 60 && !((e->minute >> c.minute) & 1))
			c.minute++;
		if (c.minute == 60) {
			c.minute = 0;
			if (++c.hour > 23)
				cron_next_day(&c);
			continue;
		}
		*out = c;
		return 0;
	}
	return -1;
}

int64_t
cron_wall_naive(const struct cron_wall *w)
{
	return cron_days_from_civil(w->year, w->month, w->day) * 86400 +
	    w->hour * 3600 + w->minute * 60;
}

void
cron_wall_add_minute(struct cron_wall *w)
{
	if (++w->minute == 60) {
		w->minute = 0;
		if (++w->hour == 24)
			cron_next_day(w);
	}
}
