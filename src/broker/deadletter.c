/*
 * deadletter.c - the dead-letter list (see deadletter.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "broker/deadletter.h"
#include "broker/message.h"
#include "broker/redis.h"
#include "common/celeriac.h"
#include "common/util.h"

int
dead_letter_push(redisContext *c, const char *queue, const char *reason,
    const char *task_id, const char *task, const char *raw, size_t rawlen,
    const char *ack_list)
{
	json_object	*e;
	char		 id[40];
	const char	*text;
	int		 n = 0, rc;

	msg_uuid4(id);
	e = json_object_new_object();
	json_object_object_add(e, "id", json_object_new_string(id));
	json_object_object_add(e, "time", json_object_new_double(now_unix()));
	json_object_object_add(e, "queue", queue ?
	    json_object_new_string(queue) : NULL);
	json_object_object_add(e, "reason", json_object_new_string(reason));
	json_object_object_add(e, "task_id", task_id && *task_id ?
	    json_object_new_string(task_id) : NULL);
	json_object_object_add(e, "task", task && *task ?
	    json_object_new_string(task) : NULL);
	json_object_object_add(e, "message",
	    json_object_new_string_len(raw, (int)rawlen));
	text = json_object_to_json_string_ext(e, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE);
	redisAppendCommand(c, "MULTI");
	n++;
	redisAppendCommand(c, "LPUSH %s %s", CELERIAC_DEAD_LETTERS, text);
	n++;
	if (ack_list) {
		redisAppendCommand(c, "DEL %s", ack_list);
		n++;
	}
	redisAppendCommand(c, "EXEC");
	n++;
	rc = redis_read_replies(c, n, NULL);
	json_object_put(e);
	return rc;
}

void
dead_letter_peek_ids(const char *raw, size_t len, char *id, size_t idlen,
    char *task, size_t tasklen)
{
	json_object	*env, *h, *v;

	id[0] = task[0] = '\0';
	env = json_tokener_parse(raw);
	(void)len;
	if (env == NULL)
		return;
	if (json_object_object_get_ex(env, "headers", &h) &&
	    json_object_is_type(h, json_type_object)) {
		if (json_object_object_get_ex(h, "id", &v) &&
		    json_object_is_type(v, json_type_string))
			snprintf(id, idlen, "%s", json_object_get_string(v));
		if (json_object_object_get_ex(h, "task", &v) &&
		    json_object_is_type(v, json_type_string))
			snprintf(task, tasklen, "%s",
			    json_object_get_string(v));
	}
	json_object_put(env);
}
