/*
 * schedule.c - beat entries' fire times and the catch-up policy (see
 * schedule.h).
 */
#include <stdio.h>
#include <string.h>

#include "beat/cron.h"
#include "beat/schedule.h"

#define BEAT_SCAN_STEPS	2000	/* fires walked one by one in a catch-up */

int
beat_sched_init(struct beat_sched *s, const struct cfg_beat_entry *e,
    char *err, size_t errlen)
{
	char why[CRON_ERRLEN];

	memset(s, 0, sizeof(*s));
	s->kind = e->kind;
	s->tz = e->timezone != NULL ? e->timezone : "UTC";
	if (!cron_tz_valid(s->tz)) {
		snprintf(err, errlen, "unknown time zone \"%s\" (not in the "
		    "system tz database)", s->tz);
		return -1;
	}
	if (e->kind == CFG_BEAT_EVERY) {
		if (e->every_ms <= 0) {
			snprintf(err, errlen, "every: must be positive");
			return -1;
		}
		s->every_ms = e->every_ms;
		return 0;
	}
	if (e->cron == NULL || cron_parse(e->cron, &s->cron, why,
	    sizeof(why)) == -1) {
		snprintf(err, errlen, "cron \"%s\": %s", e->cron ? e->cron : "",
		    e->cron ? why : "missing");
		return -1;
	}
	return 0;
}

static int64_t
beat_floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;

	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int64_t
beat_sched_next(const struct beat_sched *s, int64_t after_ms)
{
	int64_t next;

	if (s->kind == CFG_BEAT_EVERY)
		return (beat_floor_div(after_ms, s->every_ms) + 1) * s->every_ms;
	/* Cron fires on whole seconds: the next one after the second. */
	if (cron_next(&s->cron, s->tz, beat_floor_div(after_ms, 1000),
	    &next) == -1)
		return -1;
	return next * 1000;
}

/*
 * The latest cron fire at or before now, walking forward from one known
 * due fire.  After a long downtime with a frequent schedule the walk
 * would be long: it then restarts from windows ending at now (an hour, a
 * day, a month, a year, ten years), the first of which that holds a fire
 * is short to walk.  *count is then unknown (-1).
 */
static int64_t
beat_cron_latest(const struct beat_sched *s, int64_t first, int64_t now,
    int64_t *count)
{
	static const int64_t windows[] = { 3600000LL, 86400000LL,
	    32 * 86400000LL, 366 * 86400000LL, 3653 * 86400000LL };
	int64_t	 latest = first, m;
	size_t	 w;
	int	 steps;

	*count = 1;
	for (steps = 0; steps < BEAT_SCAN_STEPS; steps++) {
		if ((m = beat_sched_next(s, latest)) < 0 || m > now)
			return latest;
		latest = m;
		(*count)++;
	}
	*count = -1;
	for (w = 0; w < sizeof(windows) / sizeof(windows[0]); w++) {
		if (now - windows[w] <= latest)
			continue;
		if ((m = beat_sched_next(s, now - windows[w])) < 0 || m > now)
			continue;
		latest = m;
		for (steps = 0; steps < BEAT_SCAN_STEPS; steps++) {
			if ((m = beat_sched_next(s, latest)) < 0 || m > now)
				break;
			latest = m;
		}
		break;
	}
	return latest;
}

void
beat_sched_due(const struct beat_sched *s, int64_t cursor_ms, int64_t now_ms,
    int skip_missed, struct beat_due *d)
{
	int64_t	 first, latest, count, grace;

	memset(d, 0, sizeof(*d));
	first = beat_sched_next(s, cursor_ms);
	if (first < 0 || first > now_ms) {
		d->action = BEAT_WAIT;
		d->next_ms = first;
		return;
	}
	if (s->kind == CFG_BEAT_EVERY) {
		latest = beat_floor_div(now_ms, s->every_ms) * s->every_ms;
		count = (latest - first) / s->every_ms + 1;
	} else
		latest = beat_cron_latest(s, first, now_ms, &count);
	d->first_ms = first;
	d->fire_ms = latest;
	d->nmissed = count < 0 ? -1 : count - 1;
	d->next_ms = beat_sched_next(s, latest);
	grace = BEAT_MISSED_GRACE_MS;
	if (d->next_ms > latest && (d->next_ms - latest) / 2 < grace)
		grace = (d->next_ms - latest) / 2;
	d->action = skip_missed && now_ms - latest > grace ? BEAT_SKIP :
	    BEAT_FIRE;
}

const char *
beat_entry_queue(const struct config *cfg, const struct cfg_beat_entry *e)
{
	const struct cfg_task *t;

	if (e->queue != NULL)
		return e->queue;
	if ((t = cfg_task_find(cfg, e->task)) != NULL && t->queue != NULL)
		return t->queue;
	return "celery";
}

void
beat_sched_describe(const struct cfg_beat_entry *e, char *buf, size_t len)
{
	static const struct {
		const char	*unit;
		int64_t		 ms;
	} units[] = {
		{ "d", 86400000LL }, { "h", 3600000LL }, { "m", 60000LL },
		{ "s", 1000LL }, { "ms", 1LL }
	};
	size_t	 i;

	if (e->kind == CFG_BEAT_CRON) {
		snprintf(buf, len, "cron %s (%s)", e->cron ? e->cron : "?",
		    e->timezone ? e->timezone : "UTC");
		return;
	}
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (e->every_ms % units[i].ms == 0) {
			snprintf(buf, len, "every %lld%s",
			    (long long)(e->every_ms / units[i].ms),
			    units[i].unit);
			return;
		}
}
