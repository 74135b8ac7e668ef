/*
 * publish.c - producers' side of kombu's Redis transport.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/message.h"
#include "broker/publish.h"
#include "broker/redis.h"
#include "common/log.h"

int
publish_task(redisContext *c, const char *queue, int priority,
    const char *envelope)
{
	char	 binding[300], member[300];
	char	*list;
	int	 rc;

	if ((list = msg_bucket_list(queue, priority)) == NULL)
		return -1;
	/* Celery declares and binds the queue before the first publish. */
	snprintf(binding, sizeof(binding), "_kombu.binding.%s", queue);
	snprintf(member, sizeof(member), "%s" MSG_SEP MSG_SEP "%s", queue,
	    queue);
	redisAppendCommand(c, "SADD %s %s", binding, member);
	redisAppendCommand(c, "LPUSH %s %s", list, envelope);
	rc = redis_read_replies(c, 2, NULL);
	free(list);
	return rc;
}

int
publish_restore(redisContext *c, const char *queue, const char *envelope,
    const char *from_list)
{
	int n = 0;

	redisAppendCommand(c, "MULTI");
	n++;
	redisAppendCommand(c, "RPUSH %s %s", queue, envelope);
	n++;
	if (from_list) {
		redisAppendCommand(c, "DEL %s", from_list);
		n++;
	}
	redisAppendCommand(c, "EXEC");
	n++;
	return redis_read_replies(c, n, NULL);
}
