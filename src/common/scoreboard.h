/*
 * scoreboard.h - the shared-memory table every process reads.
 *
 * The master maps it (MAP_SHARED|MAP_ANONYMOUS) before the first fork, so
 * every child inherits the same pages.  Each slot has one writer: the
 * child that owns it, except the fields marked "master" which only the
 * master writes.  Counters live in the slot, not in the process, so they
 * survive a child's death and are read by the replacement child, the
 * master (hard time limits, recycling) and the http child (metrics).
 */
#ifndef CELERIAC_SCOREBOARD_H
#define CELERIAC_SCOREBOARD_H

#include <stdint.h>
#include <sys/types.h>

#define SB_MAXSLOTS	512
#define SB_QUEUELEN	64
#define SB_TASKIDLEN	40
#define SB_TASKNAMELEN	128
#define SB_NSTATS	24	/* distinct task names counted per slot */
#define SB_NHIST	12	/* duration histogram buckets */

enum sb_state {
	SB_FREE = 0,		/* no child */
	SB_STARTING,		/* forked, not ready yet */
	SB_IDLE,		/* waiting for a message */
	SB_BUSY,		/* running a task */
	SB_STOPPING		/* finishing, then exit */
};

enum sb_role {
	SB_ROLE_WORKER = 0,
	SB_ROLE_CONTROL,	/* one per host: control, heartbeat, recovery */
	SB_ROLE_BEAT,		/* one per host; one active per cluster */
	SB_ROLE_HTTP		/* one per host: API, metrics, monitor */
};

enum sb_kill_reason {
	SB_KILL_NONE = 0,
	SB_KILL_TIMELIMIT,	/* master: hard time limit */
	SB_KILL_REVOKE,		/* master: revoke --terminate */
	SB_KILL_SHUTDOWN	/* master: shutdown timeout passed */
};

/* Why a child ended, as the master classified it (see policy.c). */
enum sb_exit {
	SB_EXIT_CLEAN = 0,
	SB_EXIT_RECYCLE,
	SB_EXIT_NORESPAWN,
	SB_EXIT_KILLED,		/* by us: hard limit, revoke, drain */
	SB_EXIT_CRASH,
	SB_NEXITS
};

#define SB_NKILLS	4	/* SB_KILL_NONE .. SB_KILL_SHUTDOWN */

extern const char *const sb_exit_names[SB_NEXITS];

enum sb_outcome {
	SB_SUCCEEDED = 0,
	SB_FAILED,
	SB_RETRIED,
	SB_REVOKED,
	SB_NOUTCOMES
};

/* Upper bounds of the duration histogram, seconds (last is +Inf). */
extern const double sb_hist_bounds[SB_NHIST];

struct sb_taskstat {
	char		 name[SB_TASKNAMELEN];
	uint64_t	 count[SB_NOUTCOMES];
	uint64_t	 hist[SB_NHIST];
	double		 seconds_sum;
};

struct sb_slot {
	/* written by the child */
	volatile int32_t pid;
	volatile int32_t state;			/* enum sb_state */
	volatile uint32_t seq;			/* odd while task fields change */
	char		 task_id[SB_TASKIDLEN];
	char		 task_name[SB_TASKNAMELEN];
	volatile int64_t busy_since_ms;		/* monotonic */
	volatile int64_t hard_limit_ms;		/* 0: none */
	volatile uint64_t processed;
	volatile int64_t rss;
	volatile uint64_t broker_reconnects;
	struct sb_taskstat stats[SB_NSTATS];

	/* written by the control child: "terminate this task" */
	volatile int32_t kill_request;		/* signal number, 0: none */
	char		 kill_task_id[SB_TASKIDLEN];

	/* written by the master */
	char		 queue[SB_QUEUELEN];	/* "" for non-worker roles */
	int32_t		 role;			/* enum sb_role */
	int32_t		 index;			/* slot number within its queue */
	uint32_t	 generation;
	volatile int32_t kill_reason;		/* enum sb_kill_reason */
	volatile int32_t kill_signal;
	volatile uint64_t restarts;
	volatile int32_t last_status;		/* wait status of the last child */
	volatile int32_t last_kill;		/* kill_reason of the last child */
	volatile int32_t parked;		/* not respawned (why: last_status) */
	/* Ends of this slot's children by kind (enum sb_exit) and kills by
	 * reason (enum sb_kill_reason): counters for /metrics. */
	volatile uint64_t exits[SB_NEXITS];
	volatile uint64_t kills[SB_NKILLS];
	volatile int32_t configured;		/* slot belongs to the running config */
};

/* A per-task override set by remote control until the next reload. */
struct sb_task_limit {
	char		 task[SB_TASKNAMELEN];
	volatile int64_t soft_ms;		/* 0: unchanged */
	volatile int64_t hard_ms;		/* 0: unchanged */
	volatile double	 rate;			/* tasks/s per worker, 0: none */
};

#define SB_NLIMITS	32

/* "Set queue Q to N workers": control child -> master mailbox. */
struct sb_pool_request {
	volatile uint32_t seq;			/* bumped by the writer */
	char		 queue[SB_QUEUELEN];
	volatile int32_t concurrency;
};

struct scoreboard {
	uint32_t	 nslots;
	/* One past the highest slot ever used (master): readers stop there,
	 * so slots never used are never touched, nor resident. */
	volatile uint32_t high;
	volatile int32_t task_events;		/* task events on (enable_events) */
	struct sb_pool_request pool_req;
	struct sb_task_limit limits[SB_NLIMITS];	/* written by control */
	volatile int32_t master_pid;
	volatile int64_t started_ms;
	struct sb_slot	 slots[SB_MAXSLOTS];
};

struct scoreboard *sb_create(void);
void		 sb_destroy(struct scoreboard *);

/* Child side. */
void	sb_task_begin(struct sb_slot *, const char *id, const char *name,
	    int64_t hard_limit_ms);
void	sb_task_end(struct sb_slot *, const char *name, enum sb_outcome,
	    double seconds);
void	sb_set_state(struct sb_slot *, enum sb_state);
/* Read id/name consistently (seqlock); returns 0 if the slot is busy. */
int	sb_read_task(const struct sb_slot *, char *id, size_t idlen,
	    char *name, size_t namelen, int64_t *since_ms);

const char *sb_state_name(int);

/* The override for a task name, or NULL. */
const struct sb_task_limit *sb_limit_find(const struct scoreboard *,
	    const char *task);

#endif
