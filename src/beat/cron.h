/*
 * cron.h - 5-field cron expressions and their fire times in an IANA time
 * zone: cron.c parses and searches the calendar, crontz.c maps wall-clock
 * times to instants.
 *
 * Syntax (Vixie cron): minute hour day-of-month month day-of-week, each a
 * comma-separated list of `*`, `N`, `N-M`, with an optional `/STEP` after
 * `*`, a range or a single value (`N/STEP` runs from N to the field's
 * maximum).  Months and days of the week also take their English
 * three-letter names (jan..dec, sun..sat, any case); day-of-week 0 and 7
 * are both Sunday.  When day-of-month and day-of-week are both restricted
 * a day matches if either matches (the Vixie OR rule); a field whose
 * text starts with `*` (including `*` followed by a step) counts as
 * unrestricted for that rule, as in Vixie cron.
 *
 * Time zones come from the system tz database: a computation switches
 * the process's TZ to the entry's zone (setenv + tzset) and restores it
 * before returning, so callers must be single-threaded (the beat child
 * and the CLI are).
 *
 * Daylight-saving rules, applied to each wall-clock time the expression
 * matches:
 *  - a time that does not exist (the spring-forward gap, 02:30 on the
 *    last Sunday of March in Europe/Paris) fires once, at the first
 *    valid instant after the gap (03:00 local); several matches inside
 *    one gap still fire once;
 *  - a time that occurs twice (the fall-back overlap, 02:30 on the last
 *    Sunday of October) fires once, at its first occurrence (02:30
 *    summer time); the repeated hour is not run again.
 * Zone transitions are assumed to be more than two days apart, true of
 * every zone in the database since the 1970s.
 */
#ifndef CELERIAC_CRON_H
#define CELERIAC_CRON_H

#include <stddef.h>
#include <stdint.h>

#define CRON_ERRLEN	160

struct cron_expr {
	uint64_t	 minute;	/* bits 0..59 */
	uint32_t	 hour;		/* bits 0..23 */
	uint32_t	 dom;		/* bits 1..31 */
	uint16_t	 month;		/* bits 1..12 */
	uint8_t		 dow;		/* bits 0..6, Sunday = 0 */
	int		 dom_star;	/* field text began with '*' */
	int		 dow_star;
};

/* A naive wall-clock time, minute resolution. */
struct cron_wall {
	int	 year;
	int	 month;		/* 1..12 */
	int	 day;		/* 1..31 */
	int	 hour;
	int	 minute;
};

/*
 * Parse an expression.  Returns 0, or -1 with a one-line reason in err
 * ("day-of-week: 8 is out of range 0-7").  Expressions that can never
 * fire (`0 0 31 4 *`) are refused too.
 */
int	 cron_parse(const char *, struct cron_expr *, char *err,
	    size_t errlen);

/* Does this wall-clock day/time match (ignoring time zones)? */
int	 cron_match(const struct cron_expr *, const struct cron_wall *);

/*
 * The first matching wall-clock time at or after w (minute resolution),
 * ignoring time zones.  Returns 0, or -1 if none within 400 years.
 */
int	 cron_next_wall(const struct cron_expr *, const struct cron_wall *w,
	    struct cron_wall *out);

/*
 * The first fire instant strictly after `after` (Unix seconds) for the
 * expression in zone tz, with the DST rules above.  Returns 0 and sets
 * *next, or -1 if the expression never fires again.
 */
int	 cron_next(const struct cron_expr *, const char *tz, int64_t after,
	    int64_t *next);

/*
 * Is tz a zone of the system database ("UTC", "Europe/Paris")?  Names
 * with ".." or a leading '/' are refused.
 */
int	 cron_tz_valid(const char *tz);

/* Seconds of a wall-clock time read as UTC; one minute later. */
int64_t	 cron_wall_naive(const struct cron_wall *);
void	 cron_wall_add_minute(struct cron_wall *);

/*
 * The instant a wall-clock time in zone tz stands for, with the DST rules
 * above (first occurrence; end of a gap).  Unix seconds.
 */
int64_t	 cron_wall_to_unix(const struct cron_wall *, const char *tz);

/*
 * Format Unix milliseconds (shown only when not zero) in zone tz:
 * "2026-03-29T03:00:00+02:00", or "...Z" for UTC.  buf >= 40 bytes.
 */
void	 cron_format(int64_t ms, const char *tz, char *buf, size_t len);

#endif
