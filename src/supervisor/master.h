/*
 * master.h - the supervisor's main loop: fork, reap, respawn, enforce
 * hard time limits, reload and shut down.  It never talks to Redis or
 * PostgreSQL and never runs a task.
 */
#ifndef CELERIAC_MASTER_H
#define CELERIAC_MASTER_H

#include "common/config.h"

#define MASTER_ROLE_WORKERS	0x01
#define MASTER_ROLE_CONTROL	0x02
#define MASTER_ROLE_BEAT	0x04
#define MASTER_ROLE_HTTP	0x08
#define MASTER_ROLE_ALL		0x0f

struct master_opts {
	int		 roles;		/* MASTER_ROLE_* to run */
	const char	*config_path;
	const char	*queues;	/* --queues "a=4,b" or NULL: all */
	int		 ready_fd;	/* -1, or told 'R' once ready (-d) */
};

/*
 * Parse and validate a configuration as the daemon would run it: the
 * file, built-in task names, and the --queues filter.  Returns a new
 * tree or NULL with "file:line:column: key: ..." in err.
 */
struct config *master_load_config(const char *path, const char *queues,
		    char *err, size_t errlen);

/* Runs until shutdown and frees cfg; returns the exit status. */
int	master_run(struct config *cfg, const struct master_opts *);

/*
 * Apply a --queues filter to cfg: queues not named get concurrency 0,
 * "name=N" sets the concurrency.  Returns 0 or -1 with err.
 */
int	master_filter_queues(struct config *cfg, const char *spec, char *err,
	    size_t errlen);

#endif
