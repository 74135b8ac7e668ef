/*
 * reload.h - what a reload changes, decided by pure functions so the
 * decision is unit-tested apart from the processes it touches.
 */
#ifndef CELERIAC_RELOAD_H
#define CELERIAC_RELOAD_H

#include "common/config.h"

enum reload_action {
	RELOAD_KEEP = 0,	/* same settings, same concurrency: same pids */
	RELOAD_RESIZE,		/* only concurrency changed */
	RELOAD_RESTART,		/* other settings changed: new generation */
	RELOAD_REMOVE,		/* gone from the new file: drain */
	RELOAD_ADD		/* new queue: start */
};

struct reload_item {
	const char		*name;	/* borrowed from old or new */
	enum reload_action	 action;
	int			 old_concurrency;
	int			 new_concurrency;
};

struct reload_plan {
	struct reload_item	*items;
	size_t			 n;
	int			 global_changed; /* restart everything */
};

/* Returns 0, or -1 on allocation failure. Free with reload_plan_free. */
int	reload_plan(const struct config *old, const struct config *new,
	    struct reload_plan *);
void	reload_plan_free(struct reload_plan *);

/* Do the settings (all but concurrency) of two queues differ? */
int	reload_queue_differs(const struct cfg_queue *, const struct cfg_queue *);
/* Do settings every worker depends on (broker, tasks, ...) differ? */
int	reload_global_differs(const struct config *, const struct config *);

/* The beat schedule, and the http child's settings. */
int	reload_beat_differs(const struct config *, const struct config *);
int	reload_http_differs(const struct config *, const struct config *);

const char *reload_action_name(enum reload_action);

#endif
