/*
 * publish.h - putting task messages on queues the way a kombu producer
 * does (binding set, then LPUSH onto the priority bucket list).
 */
#ifndef CELERIAC_PUBLISH_H
#define CELERIAC_PUBLISH_H

#include <hiredis/hiredis.h>

/* Returns 0 or -1 (logged). */
int	publish_task(redisContext *c, const char *queue, int priority,
	    const char *envelope);

/*
 * Put a received message back at the FRONT of its queue's bucket-0 list
 * (RPUSH), as kombu restores unacknowledged messages, and delete
 * from_list in the same transaction when it is not NULL.
 */
int	publish_restore(redisContext *c, const char *queue,
	    const char *envelope, const char *from_list);

#endif
