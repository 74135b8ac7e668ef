/*
 * crontz.c - cron fire times in a time zone (see cron.h).
 *
 * The search runs on naive wall-clock times (cron.c), and only the
 * candidate that matched is turned into an instant under the entry's
 * zone.  The mapping wall clock -> instant (first occurrence, end of a
 * gap) never goes backwards as the wall clock advances, so the first
 * candidate whose instant lies after `after` is the answer.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "beat/cron.h"

#define CRON_MAXSTEPS	100000	/* candidates tried by cron_next() */

/*
 * TZ is switched for the length of one computation and put
 * back, so log timestamps and the rest of the process keep their zone.
 */

static char	cron_saved_tz[256];
static int	cron_saved_set;

static void
cron_tz_enter(const char *tz)
{
	const char *cur = getenv("TZ");

	cron_saved_set = cur != NULL;
	if (cur != NULL)
		snprintf(cron_saved_tz, sizeof(cron_saved_tz), "%s", cur);
	setenv("TZ", tz != NULL && *tz != '\0' ? tz : "UTC", 1);
	tzset();
}

static void
cron_tz_leave(void)
{
	if (cron_saved_set)
		setenv("TZ", cron_saved_tz, 1);
	else
		unsetenv("TZ");
	tzset();
}

int
cron_tz_valid(const char *tz)
{
	struct stat	 st;
	const char	*dir, *p;
	char		 path[1024];

	if (tz == NULL || *tz == '\0' || *tz == '/' || strstr(tz, "..") != NULL)
		return 0;
	for (p = tz; *p != '\0'; p++)
		if (!isalnum((unsigned char)*p) && strchr("/_-+", *p) == NULL)
			return 0;
	if (strcmp(tz, "UTC") == 0)
		return 1;
	if ((dir = getenv("TZDIR")) == NULL || *dir == '\0')
		dir = "/usr/share/zoneinfo";
	snprintf(path, sizeof(path), "%s/%s", dir, tz);
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static long
cron_offset_at(int64_t t)
{
	time_t		 tt = (time_t)t;
	struct tm	 tm;

	if (localtime_r(&tt, &tm) == NULL)
		return 0;
	return tm.tm_gmtoff;
}

static void
cron_wall_of(int64_t t, struct cron_wall *w)
{
	time_t		 tt = (time_t)t;
	struct tm	 tm;

	memset(&tm, 0, sizeof(tm));
	localtime_r(&tt, &tm);
	w->year = tm.tm_year + 1900;
	w->month = tm.tm_mon + 1;
	w->day = tm.tm_mday;
	w->hour = tm.tm_hour;
	w->minute = tm.tm_min;
}

/*
 * The instant of a wall-clock time in the current TZ.  Its candidates
 * are the times that the offsets in force a day before, at and a day
 * after give; a candidate is real when the zone maps it back to the same
 * wall clock.  Two real ones: an overlap, take the first.  None: a gap,
 * take the transition (found by bisection), the first instant whose wall
 * clock lies past the wanted one.
 */
static int64_t
cron_instant(const struct cron_wall *w)
{
	int64_t	 naive, t, best = INT64_MAX, lo, hi, mid;
	long	 off[3], omin, omax;
	int	 i;

	naive = cron_wall_naive(w);
	off[0] = cron_offset_at(naive - 86400);
	off[1] = cron_offset_at(naive);
	off[2] = cron_offset_at(naive + 86400);
	omin = omax = off[0];
	for (i = 0; i < 3; i++) {
		t = naive - off[i];
		if (t + cron_offset_at(t) == naive && t < best)
			best = t;
		if (off[i] < omin)
			omin = off[i];
		if (off[i] > omax)
			omax = off[i];
	}
	if (best != INT64_MAX)
		return best;
	if (omin == omax)
		return naive - omin;
	lo = naive - omax;
	hi = naive - omin;
	while (hi - lo > 1) {
		mid = lo + (hi - lo) / 2;
		if (mid + cron_offset_at(mid) > naive)
			hi = mid;
		else
			lo = mid;
	}
	return hi;
}

int64_t
cron_wall_to_unix(const struct cron_wall *w, const char *tz)
{
	int64_t t;

	cron_tz_enter(tz);
	t = cron_instant(w);
	cron_tz_leave();
	return t;
}

int
cron_next(const struct cron_expr *e, const char *tz, int64_t after,
    int64_t *next)
{
	struct cron_wall	 w;
	int64_t			 f;
	int			 i, rc = -1;

	cron_tz_enter(tz);
	/* The wall clock of `after` maps to an instant <= after: start there. */
	cron_wall_of(after, &w);
	for (i = 0; i < CRON_MAXSTEPS; i++) {
		if (cron_next_wall(e, &w, &w) == -1)
			break;
		f = cron_instant(&w);
		if (f > after) {
			*next = f;
			rc = 0;
			break;
		}
		cron_wall_add_minute(&w);
	}
	cron_tz_leave();
	return rc;
}

void
cron_format(int64_t ms, const char *tz, char *buf, size_t len)
{
	time_t		 t;
	struct tm	 tm;
	char		 frac[8] = "";
	long		 off, rem;
	size_t		 n;

	rem = (long)(ms % 1000);
	if (rem < 0)
		rem += 1000;
	t = (time_t)((ms - rem) / 1000);
	cron_tz_enter(tz);
	memset(&tm, 0, sizeof(tm));
	localtime_r(&t, &tm);
	cron_tz_leave();
	if (rem != 0)
		snprintf(frac, sizeof(frac), ".%03ld", rem);
	n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	off = tm.tm_gmtoff;
	if (tz == NULL || strcmp(tz, "UTC") == 0 || strcmp(tz, "Etc/UTC") == 0)
		snprintf(buf + n, len - n, "%sZ", frac);
	else
		snprintf(buf + n, len - n, "%s%c%02ld:%02ld", frac,
		    off < 0 ? '-' : '+', labs(off) / 3600, labs(off) % 3600 / 60);
}
