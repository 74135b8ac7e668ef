/*
 * result.c - result-backend writes (see result.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/redis.h"
#include "broker/result.h"
#include "common/log.h"

int
result_store(redisContext *c, const char *task_id, const char *meta,
    int64_t ttl_s, const char *ack_list)
{
	char	 key[128], ttl[32];
	int	 n = 0;

	snprintf(key, sizeof(key), RESULT_KEY_PREFIX "%s", task_id);
	snprintf(ttl, sizeof(ttl), "%lld", (long long)ttl_s);
	/* Pipelined: one round trip for the whole transaction. */
	redisAppendCommand(c, "MULTI");
	n++;
	if (ttl_s > 0)
		redisAppendCommand(c, "SETEX %s %s %s", key, ttl, meta);
	else
		redisAppendCommand(c, "SET %s %s", key, meta);
	n++;
	redisAppendCommand(c, "PUBLISH %s %s", key, meta);
	n++;
	if (ack_list != NULL) {
		redisAppendCommand(c, "DEL %s", ack_list);
		n++;
	}
	redisAppendCommand(c, "EXEC");
	n++;
	return redis_read_replies(c, n, NULL);
}

char *
result_get(redisContext *c, const char *task_id)
{
	redisReply	*r;
	char		*s = NULL;

	r = redis_command(c, "GET " RESULT_KEY_PREFIX "%s", task_id);
	if (r == NULL)
		return NULL;
	if (r->type == REDIS_REPLY_STRING)
		s = strndup(r->str, r->len);
	freeReplyObject(r);
	return s;
}
