/*
 * fetch.h - reliable fetch from a queue's priority lists.
 *
 * A message is moved atomically (a Lua script) from the first non-empty
 * bucket list, in kombu's order, to the slot's own processing list, where
 * it stays until its result is stored.  Redis cannot block on a move from
 * several lists, so an empty queue is waited on through keyspace
 * notifications of those lists: a push to any of them wakes the worker
 * at once, and nothing is polled.
 */
#ifndef CELERIAC_FETCH_H
#define CELERIAC_FETCH_H

#include <stddef.h>

#include <hiredis/hiredis.h>

#include "broker/message.h"
#include "broker/redis.h"

/* How long to wait between fetch attempts when notifications are off. */
#define FETCH_FALLBACK_POLL_MS	100

struct fetcher {
	redisContext		*cmd;		/* borrowed broker connection */
	redisContext		*sub;		/* owned; NULL while down */
	struct redis_url	 url;
	char			*lists[MSG_NBUCKETS];
	char			*processing;
	char			 sha[41];
	int			 notify;	/* notifications are on */
	int			 skip_first;	/* bucket 0 was empty last time */
	/* Messages on other subscribed channels (control) go here. */
	const char		*extra_channels[4];
	int			 nextra;
	void			(*on_message)(void *, const char *channel,
				    const char *payload, size_t len);
	void			*cb_arg;
};

int	fetch_init(struct fetcher *, redisContext *cmd, const struct redis_url *,
	    const char *queue, const char *processing);
void	fetch_free(struct fetcher *);

/*
 * One non-blocking attempt.  Returns 1 and a malloc'd message (and the
 * list it came from, malloc'd, if from is not NULL), 0 if every list is
 * empty, -1 on a connection error.
 */
int	fetch_try(struct fetcher *, char **msg, size_t *len, char **from);

/* The same, after nprefix pipelined commands (see fetch.c). */
int	fetch_try_after(struct fetcher *, int nprefix, int *prefix_ok,
	    char **msg, size_t *len, char **from);

/*
 * Sleep until a bucket list may have changed, wake_fd is readable, or
 * timeout_ms passes.  Returns 0, or -1 if the broker connection failed.
 */
int	fetch_wait(struct fetcher *, int timeout_ms, int wake_fd);

/* (Re)connect the notification connection; 0 or -1. */
int	fetch_subscribe(struct fetcher *);

/* Deliver pending channel messages without blocking; 0 or -1. */
int	fetch_poll_messages(struct fetcher *);

#endif
