/*
 * events.h - Celery events (what `celery events` and Flower consume):
 * kombu's fanout emulation, PUBLISH /<db>.celeryev/<type with - as .>,
 * an envelope with a base64 JSON body.
 *
 * Events go out on a connection of their own, written without waiting
 * for the replies (they are read and dropped later), so sending them
 * costs a task a write(2), not a round trip.
 */
#ifndef CELERIAC_EVENTS_H
#define CELERIAC_EVENTS_H

#include <pthread.h>
#include <stdint.h>

#include <hiredis/hiredis.h>
#include <json-c/json.h>

#include "broker/redis.h"
#include "common/config.h"

struct events {
	redisContext		*c;		/* owned, may be NULL (down) */
	struct redis_url	 url;
	char			 node[300];	/* celeriac@HOST */
	int			 pid;		/* reported sender pid */
	int64_t			 clock;		/* Lamport clock */
	int			 pending;	/* replies not read yet */
	json_object		*batch;		/* task events waiting, or NULL */
	double			 batch_t0;	/* when the first one was queued */

	/* With a sender thread (events_start_thread), the batch is shared
	 * under mu and only the thread touches the connection. */
	int			 threaded;
	pthread_t		 thr;
	pthread_mutex_t		 mu;
	pthread_cond_t		 cv;
	int			 kick;		/* send what is waiting now */
	int			 stop;
};

#define EVENTS_BATCH_MAX	32	/* events per task.multi message */
#define EVENTS_BATCH_DELAY	0.05	/* seconds an event may wait */

/* "celeriac@" + the configured host name. */
void	events_node_name(const struct config *, char *buf, size_t len);

int	events_init(struct events *, const struct config *, int pid);
void	events_close(struct events *);

/*
 * Queue one event (fields: the type-specific fields; the common ones are
 * added) or, with a NULL type, a batch: fields is then a JSON array of
 * already built events sent on routing key task.multi.  Takes ownership
 * of fields.  Returns 0, or -1 if the connection is down (dropped: events
 * are best effort, as in Celery).
 */
int	events_send(struct events *, const char *type, json_object *fields);

/* Build one event object with the common fields (for batches). */
json_object *events_build(struct events *, const char *type,
	    json_object *fields);

/*
 * Queue a task event for the next task.multi message, as Celery buffers
 * its task events: sent when EVENTS_BATCH_MAX are waiting or the oldest
 * has waited EVENTS_BATCH_DELAY, and by events_flush().  Takes fields.
 */
void	events_add(struct events *, const char *type, json_object *fields);
void	events_flush(struct events *);

/*
 * Hand the sending to a thread of its own: events_add() then only
 * queues (a mutex, no system call) and the thread publishes a batch
 * when it is full or EVENTS_BATCH_DELAY old, even while a long task
 * runs.  events_close() sends what is left and joins it.
 */
int	events_start_thread(struct events *);

/* Read and drop replies that arrived; never blocks. */
void	events_drain(struct events *);

/* Seconds west of UTC // 3600, Python's floor division (POSIX sign). */
int	events_utcoffset(void);

#endif
