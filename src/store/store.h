/*
 * store.h - the PostgreSQL job store, as the worker sees it.
 *
 * Recording a transition never waits on the database: events go to a
 * bounded queue in memory, then to an append-only spill file under the
 * state directory, and are written in order when PostgreSQL answers.
 */
#ifndef CELERIAC_STORE_H
#define CELERIAC_STORE_H

#include <json-c/json.h>

#include "common/config.h"

enum store_status {
	STORE_PENDING = 0,	/* accepted, not yet on the broker */
	STORE_QUEUED,
	STORE_STARTED,
	STORE_RETRYING,
	STORE_SUCCEEDED,
	STORE_FAILED,
	STORE_REVOKED
};

struct store_event {
	const char		*task_id;
	const char		*task_name;
	const char		*queue;
	enum store_status	 status;
	int			 retries;
	double			 time;		/* Unix seconds */
	const char		*params_json;	/* {"args":[...],"kwargs":{...}} or NULL */
	const char		*result_json;	/* or NULL */
	const char		*error_type;	/* or NULL */
	const char		*error_message;	/* or NULL */
	const char		*host;
	int			 pid;
};

struct store;

/* Recorded events are sent once this many milliseconds old at the latest
 * (while the owner calls in), or sooner in a full batch or a flush. */
#define STORE_BATCH_MS		50

/*
 * A store for this process (call after fork), or NULL when the
 * configuration has no database.  who names the spill file
 * ("worker-reports-0").  Connects lazily.
 */
struct store	*store_open(const struct config *, const char *who);
void		 store_close(struct store *);	/* flushes for up to 1 s */

/* Queue one transition; copies what it needs. */
void		 store_record(struct store *, const struct store_event *);

/*
 * The same from what a worker has at hand: args and kwargs (the job's
 * parameters; give them with the first event the process records for a
 * task), the result of a success, the exception of a failure or retry
 * (a one-string exc_message becomes the error text).  Host and pid are
 * this process's, the time is now.  Any pointer may be NULL.
 */
void		 store_record_task(struct store *, enum store_status,
		    const char *task_id, const char *task_name,
		    const char *queue, int retries, json_object *args,
		    json_object *kwargs, json_object *result,
		    const char *exc_type, json_object *exc_message);

/*
 * Write pending transitions if the database answers, within timeout_ms;
 * with 0, send them without waiting (if no batch is in flight).  On its
 * own, store_record() sends once 200 events wait or the oldest has waited
 * 50 ms; call this when going idle, and after recording a start so that a
 * long task shows as started.  While the database is down it returns at
 * once and tries again later (100 ms doubling to 5 s).
 */
void		 store_flush(struct store *, int timeout_ms);

const char	*store_status_name(enum store_status);

/* Counters since store_open(), for logs and metrics. */
struct store_stats {
	unsigned long long	 recorded;	/* given to store_record */
	unsigned long long	 written;	/* committed */
	unsigned long long	 spilled;	/* written to a spill file */
	unsigned long long	 dropped;	/* lost (logged) */
	unsigned long long	 connects;	/* connection attempts */
	unsigned long long	 failures;	/* of connections, batches */
	unsigned long long	 spill_errors;
	size_t			 queued;	/* in memory, not written */
	long long		 spill_bytes;	/* spilled, not written */
	int			 connected;	/* the database answers */
};

void		 store_get_stats(const struct store *, struct store_stats *);

#endif
