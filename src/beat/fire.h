/*
 * fire.h - one fire of a beat entry: the Celery message and its record,
 * queued by one Lua script that first checks the lease still holds the
 * leader's exact value (the fencing) and that no fire of the same or a
 * later scheduled time is recorded for the entry.  A fire is thus
 * recorded exactly when its message is queued, a stale leader fires
 * nothing, and no scheduled time fires twice.
 */
#ifndef CELERIAC_BEAT_FIRE_H
#define CELERIAC_BEAT_FIRE_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>
#include <json-c/json.h>

#include "beat/lease.h"
#include "beat/schedule.h"
#include "common/config.h"

struct beat_entry {
	const struct cfg_beat_entry *cfg;
	struct beat_sched	 sched;
	int			 ok;		/* valid schedule and arguments */
	int			 have_cursor;
	int64_t			 cursor_ms;	/* scheduled time of the last fire */
	const char		*queue;
	int			 priority;
	int			 ignore_result;
	json_object		*args;
	json_object		*kwargs;
};

enum beat_fire_result {
	BEAT_FIRE_OK = 1,
	BEAT_FIRE_LOST = 0,		/* the lease is not ours: nothing sent */
	BEAT_FIRE_ERROR = -1,		/* Redis error: outcome unknown */
	BEAT_FIRE_ALREADY = -2		/* this or a later fire is recorded */
};

/*
 * Prepare an entry (schedule, arguments, route).  Returns 0, or -1 with
 * the reason in err; e->ok tells which.  Free with beat_entry_free().
 */
int	 beat_entry_init(struct beat_entry *, const struct config *,
	    const struct cfg_beat_entry *, char *err, size_t errlen);
void	 beat_entry_free(struct beat_entry *);

/* Send the fire d->fire_ms of e; logs it.  Returns enum beat_fire_result. */
int	 beat_fire(redisContext *, const struct lease *,
	    const struct beat_entry *, const struct beat_due *, int64_t now);

/* The scheduled time (ms) of a BEAT_LAST_KEY record; -1 if unreadable. */
int64_t	 beat_record_ms(const char *json);

#endif
