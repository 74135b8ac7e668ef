/*
 * events.h - Celery events (what `celery events` and Flower consume):
 * kombu's fanout emulation, PUBLISH /<db>.celeryev/<type with - as .>,
 * an envelope with a base64 JSON body.
 *
 * Events go out on a connection of their own, written without waiting
 * for the replies (they are read and dropped later), so sending them
 * costs a task a write(2), not a round trip.
 *
 * Task events are on every task's path, so they are written by hand
 * straight into the text of the pending task.multi batch (no json-c
 * objects, no allocation once the buffers have grown); the few worker
 * events of the control child still go through json-c.
 */
#ifndef CELERIAC_EVENTS_H
#define CELERIAC_EVENTS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>
#include <json-c/json.h>

#include "broker/redis.h"
#include "common/config.h"

/*
 * A growable text buffer.  A failed allocation leaves the text as it
 * was and sets oom, so a writer appends without checking each step and
 * looks once at the end: a half-built event is dropped, never sent.
 */
struct evbuf {
	char	*p;
	size_t	 len;
	size_t	 cap;
	int	 oom;
};

#define EVENTS_BATCH_MAX	32	/* events per task.multi message */
#define EVENTS_BATCH_DELAY	0.05	/* seconds an event may wait */
#define EVENTS_QUEUE_MAX	4096	/* waiting past this: dropped */

/*
 * Task events waiting: task.multi bodies of at most EVENTS_BATCH_MAX
 * events each, one after the other in text ("[ev,ev][ev,..", the last
 * left open), the i-th starting at body[i].  A sender held up (a busy
 * CPU, a slow Redis) finds several and sends them in one write.
 */
struct evbatch {
	struct evbuf	 text;
	size_t		 body[EVENTS_QUEUE_MAX / EVENTS_BATCH_MAX];
	int		 nbody;
	int		 n;		/* events */
	double		 t0;		/* when the first was queued */
};

struct events {
	redisContext		*c;		/* owned, may be NULL (down) */
	struct redis_url	 url;
	char			 node[300];	/* celeriac@HOST */
	int			 pid;		/* reported sender pid */
	int64_t			 clock;		/* Lamport clock */
	int			 pending;	/* replies not read yet */

	/* The event being built (events_begin .. events_end), with the
	 * fields every event starts with: the owner's only. */
	struct evbuf		 ev;
	struct evbuf		 head;		/* {"hostname":..,"clock": */
	int64_t			 head_minute;	/* when its utcoffset was taken */
	int64_t			 ev_us;		/* the event's time */

	struct evbatch		 batch;		/* task events waiting */
	unsigned long		 dropped;	/* queue full or no memory */

	/* The sender's own (the thread's, or the owner's without one):
	 * the batch it took and an envelope. */
	struct evbatch		 out;
	struct evbuf		 env;

	/* With a sender thread (events_start_thread), the batch is shared
	 * under mu and only the thread touches the connection. */
	int			 threaded;
	pthread_t		 thr;
	pthread_mutex_t		 mu;
	pthread_cond_t		 cv;
	int			 kick;		/* send what is waiting now */
	int			 stop;
	int			 idle;		/* thread waits with no deadline */
};

/* "celeriac@" + the configured host name. */
void	events_node_name(const struct config *, char *buf, size_t len);

int	events_init(struct events *, const struct config *, int pid);
void	events_close(struct events *);

/*
 * Publish one event now (fields: the type-specific fields; the common
 * ones are added), for the control child's worker events.  Takes
 * fields.  Returns 0, or -1 if the connection is down (dropped: events
 * are best effort, as in Celery).
 */
int	events_send(struct events *, const char *type, json_object *fields);

/*
 * A task event, built field by field and queued for the next task.multi
 * message, as Celery buffers its task events: sent when EVENTS_BATCH_MAX
 * are waiting or the oldest has waited EVENTS_BATCH_DELAY, and by
 * events_flush().
 *
 *	events_begin(e, id);
 *	events_str(e, "result", repr);
 *	events_secs(e, "runtime", us);
 *	events_end(e, "task-succeeded");
 *
 * events_begin writes hostname, utcoffset, pid, clock and uuid (left
 * out if NULL); events_end adds timestamp and type.  Keys are written
 * as given (they are constant names); values are escaped as JSON, a
 * NULL string being null.  Only the owner (the worker's own thread)
 * builds events.
 */
void	events_begin(struct events *, const char *uuid);
void	events_str(struct events *, const char *key, const char *val);
void	events_int(struct events *, const char *key, long long);
void	events_bool(struct events *, const char *key, int);
/* Seconds given in microseconds, as a float Python reads as us / 1e6. */
void	events_secs(struct events *, const char *key, int64_t us);
void	events_end(struct events *, const char *type);

/*
 * What events_end queues: closes the event and returns its JSON text
 * (*len bytes, NUL-terminated, valid until the next events_begin), or
 * NULL if memory ran out.  For tests.
 */
const char *events_finish(struct events *, const char *type, size_t *len);

void	events_flush(struct events *);

/*
 * The kombu envelope around body (len bytes of JSON) into b (b->len
 * bytes, NUL-terminated), with the fields and values kombu_envelope()
 * writes and a fresh delivery_tag: 0, or -1 if memory ran out.
 */
int	events_envelope(struct evbuf *b, const char *node,
	    const char *routing_key, const char *body, size_t len);

/*
 * Hand the sending to a thread of its own: events_end() then only
 * queues (a mutex, and a wake-up when the thread idles or a batch is
 * full; never I/O) and the thread publishes a batch when it is full or
 * EVENTS_BATCH_DELAY old, even while a long task runs.  events_close()
 * sends what is left and joins it.
 */
int	events_start_thread(struct events *);

/* Read and drop replies that arrived; never blocks. */
void	events_drain(struct events *);

/* Seconds west of UTC // 3600, Python's floor division (POSIX sign). */
int	events_utcoffset(void);

#endif
