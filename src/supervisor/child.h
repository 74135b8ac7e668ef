/*
 * child.h - the master's table of slots, spawning, and the pure policies
 * that decide respawns and hard time limits (policy.c, unit-tested over a
 * fake clock).
 */
#ifndef CELERIAC_CHILD_H
#define CELERIAC_CHILD_H

#include <stdint.h>
#include <sys/types.h>

#include "common/config.h"
#include "common/scoreboard.h"

#define BACKOFF_MIN_MS		1000
#define BACKOFF_MAX_MS		60000
#define BACKOFF_RESET_MS	60000	/* ready this long: crashes forgiven */
#define SPAWN_MIN_INTERVAL_MS	1000	/* between crash respawns of a slot */

struct mslot {
	int			 used;
	int			 role;		/* enum sb_role */
	char			 queue[SB_QUEUELEN];
	int			 index;
	const struct cfg_queue	*q;
	pid_t			 pid;
	int			 draining;	/* do not respawn */
	int			 restart;	/* respawn at once when it exits */
	int64_t			 drain_deadline; /* SIGKILL after this */
	int			 parked;	/* refused to run: do not respawn */
	int			 crashes;	/* consecutive */
	int64_t			 next_spawn_ms;	/* 0: now */
	int64_t			 spawned_ms;
	int64_t			 ready_ms;	/* 0: not ready yet */
};

/* Set in daemon mode: children drop the launcher's stderr. */
extern int child_detach_stderr;

/* Fork a worker for slot i; returns its pid or -1. */
pid_t	child_spawn_worker(struct mslot *, int i, struct scoreboard *,
	    const struct config *, int notify_fd, int close_fd);

/* Fork a non-worker child (control, beat, http) into slot i. */
pid_t	child_spawn_role(struct mslot *, int i, struct scoreboard *,
	    const struct config *, int notify_fd, int close_fd);

/* Back-off after the n-th consecutive crash (n >= 1). */
int64_t	policy_backoff_ms(int crashes);

enum child_exit_kind {
	CHILD_EXIT_CLEAN = 0,
	CHILD_EXIT_RECYCLE,
	CHILD_EXIT_NORESPAWN,
	CHILD_EXIT_KILLED_BY_US,	/* hard limit, revoke: not a crash */
	CHILD_EXIT_CRASH
};

/* Classify a wait status, given why (if at all) the master killed it. */
enum child_exit_kind policy_classify_exit(int status, int kill_reason);

/*
 * When slot s may be respawned after an exit of that kind at `now`;
 * updates s->crashes.  Returns the time (ms, monotonic) or -1 for never.
 */
int64_t	policy_next_spawn(struct mslot *s, enum child_exit_kind, int64_t now);

/*
 * Circuit breaker: given the times of a queue's recent crashes (any
 * order, n of them), should the queue be parked at now?  limit crashes
 * within window_ms trip it.
 */
int	policy_should_park(const int64_t *crash_times, int n, int64_t now,
	    int limit, int64_t window_ms);

#define PARK_CRASH_LIMIT	5
#define PARK_WINDOW_MS		60000
#define PARK_HISTORY		16

/*
 * Hard time limit: 1 if a task that began at busy_since with limit_ms is
 * over its limit at now; otherwise 0 and *deadline is when it will be.
 */
int	policy_hard_limit_due(int64_t busy_since, int64_t limit_ms, int64_t now,
	    int64_t *deadline);

#endif
