/*
 * worker.h - a worker process: one slot of one queue.  It connects to
 * Redis after fork, recovers what its slot's previous owner left, then
 * loops fetch -> run -> store result and acknowledge.
 */
#ifndef CELERIAC_WORKER_H
#define CELERIAC_WORKER_H

#include <signal.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "broker/events.h"
#include "broker/fetch.h"
#include "broker/redis.h"
#include "broker/revoke.h"
#include "common/config.h"
#include "common/scoreboard.h"
#include "store/store.h"

struct worker_args {
	struct scoreboard	*sb;
	const struct config	*cfg;
	const struct cfg_queue	*queue;
	int			 index;		/* slot number in the queue */
	struct sb_slot		*slot;
	int			 notify_fd;	/* write end of the master's pipe */
};

/* Internal state, shared by the files of src/worker only. */
#define WORKER_RATE_SLOTS	16

struct worker {
	struct scoreboard	*sb;
	struct events		 ev;		/* task events, when enabled */
	struct {
		char	 task[128];
		double	 last;			/* Unix time of the last start */
	} rate[WORKER_RATE_SLOTS];
	struct {
		char	 task[128];
		double	 secs;			/* its last run took */
	} ran[WORKER_RATE_SLOTS];
	unsigned		 ran_next;	/* the entry to reuse next */
	const struct config	*cfg;
	const struct cfg_queue	*queue;
	int			 index;
	struct sb_slot		*slot;
	int			 notify_fd;
	struct redis_url	 broker_url;
	struct redis_url	 backend_url;
	redisContext		*broker;
	redisContext		*backend;	/* == broker when the same server */
	struct fetcher		 fetch;
	char			 processing[512];
	char			 name[128];	/* "reports#1" */
	int64_t			 result_ttl_s;
	uint64_t		 done;
	uint64_t		 max_tasks;	/* 0: unlimited, jittered */
	struct revset		 revoked;	/* live revoked ids */
	double			 next_eta;	/* next delayed message, 0: none */
	double			 last_eta_scan;
	int64_t			 rss_at;	/* last /proc read */
	/* A finished task whose result goes out with the next fetch. */
	int			 pend;
	char			 pend_id[128];
	char			*pend_meta;	/* NULL: ignore_result */
	char			*pend_raw;	/* the finished message */
	struct store		*store;		/* job store, NULL: none */
	size_t			 pend_rawlen;
};

void	worker_main(const struct worker_args *) __attribute__((noreturn));

/* Wake the master so it re-reads this slot (state or task changed). */
void	worker_notify(struct worker *);

/*
 * Store a result (meta may be NULL for ignore_result) and acknowledge the
 * message in the processing list.  Retries through broker outages until
 * it succeeds: a finished task's result is never lost.
 */
void	worker_finish(struct worker *, const char *task_id, const char *meta);

/* (Re)connect to the broker and the backend, with back-off; 0 or -1 if
 * asked to stop meanwhile. */
int	worker_connect(struct worker *);

extern volatile sig_atomic_t worker_stop;
extern volatile sig_atomic_t worker_soft;

#endif
