/*
 * schedule.h - when a beat entry fires, as pure functions of a cursor
 * (the last scheduled time dealt with) and a fake or real "now".
 *
 * Times are Unix milliseconds.  `every:` entries fire at the multiples of
 * their interval counted from the Unix epoch, so every host computes the
 * same fire times; `cron:` entries follow cron.h in their time zone.
 */
#ifndef CELERIAC_SCHEDULE_H
#define CELERIAC_SCHEDULE_H

#include <stddef.h>
#include <stdint.h>

#include "beat/cron.h"
#include "common/config.h"

/*
 * A fire is "missed" (for skip_missed) when it is later than this, or
 * than half the time to the following fire when that is shorter: a
 * leader hand-over (lease TTL plus one acquisition attempt) is not
 * downtime, a beat that was stopped across the fire time is.
 */
#define BEAT_MISSED_GRACE_MS	10000

struct beat_sched {
	enum cfg_beat_kind	 kind;
	int64_t			 every_ms;
	struct cron_expr	 cron;
	const char		*tz;		/* borrowed */
};

enum beat_action {
	BEAT_WAIT = 0,		/* nothing due: next_ms is the next fire */
	BEAT_FIRE,		/* fire fire_ms now */
	BEAT_SKIP		/* skip_missed: fires up to fire_ms dropped */
};

struct beat_due {
	enum beat_action	 action;
	int64_t			 fire_ms;	/* FIRE/SKIP: the latest due fire */
	int64_t			 next_ms;	/* the fire after it (-1: never) */
	int64_t			 first_ms;	/* FIRE/SKIP: the oldest due fire */
	int64_t			 nmissed;	/* due fires before fire_ms, -1 if
						   more than could be counted */
};

/* Returns 0, or -1 with the reason (bad cron, unknown zone) in err. */
int	 beat_sched_init(struct beat_sched *, const struct cfg_beat_entry *,
	    char *err, size_t errlen);

/* The first fire strictly after after_ms; -1 if it never fires again. */
int64_t	 beat_sched_next(const struct beat_sched *, int64_t after_ms);

/*
 * What to do at now_ms given the cursor (the scheduled time of the last
 * fire, or the time the schedule started counting).  Several fires due
 * at once (downtime) fold into one fire of the latest, the catch-up; with
 * skip_missed the latest is dropped too when it is later than the grace
 * (the caller then moves its cursor to fire_ms without firing).
 */
void	 beat_sched_due(const struct beat_sched *, int64_t cursor_ms,
	    int64_t now_ms, int skip_missed, struct beat_due *);

/* Where an entry's messages go: its queue, its task's, else "celery". */
const char *beat_entry_queue(const struct config *,
	    const struct cfg_beat_entry *);

/* "every 1s", "every 250ms", "cron 0 0 * * * (Europe/Paris)". */
void	 beat_sched_describe(const struct cfg_beat_entry *, char *buf,
	    size_t len);

#endif
