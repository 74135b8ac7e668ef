/*
 * result.h - writing task states to the result backend the way Celery
 * does: one MULTI with SETEX and PUBLISH, so AsyncResult.get() wakes at
 * once.
 */
#ifndef CELERIAC_RESULT_H
#define CELERIAC_RESULT_H

#include <stdint.h>

#include <hiredis/hiredis.h>

#define RESULT_KEY_PREFIX	"celery-task-meta-"

/*
 * Store meta (a JSON text from msg_result_*) for task_id with a TTL in
 * seconds (0: no expiry).  When ack_list is not NULL the same transaction
 * deletes it: the result and the acknowledgement land together or not at
 * all.  Returns 0 or -1 (connection error: c->err is set).
 */
int	result_store(redisContext *c, const char *task_id, const char *meta,
	    int64_t ttl_s, const char *ack_list);

/* GET celery-task-meta-<id>; malloc'd text or NULL (absent or error). */
char	*result_get(redisContext *c, const char *task_id);

#endif
