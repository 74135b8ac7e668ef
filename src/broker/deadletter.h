/*
 * deadletter.h - messages we refuse or cannot run are kept, with the
 * reason, in the list celeriac.dead: never dropped silently.
 */
#ifndef CELERIAC_DEADLETTER_H
#define CELERIAC_DEADLETTER_H

#include <stddef.h>

#include <hiredis/hiredis.h>

/*
 * LPUSH an entry {"id","time","queue","reason","task_id","task","message"}
 * and, when ack_list is not NULL, delete it in the same transaction.
 */
int	dead_letter_push(redisContext *c, const char *queue, const char *reason,
	    const char *task_id, const char *task, const char *raw, size_t rawlen,
	    const char *ack_list);

/*
 * Best effort: the headers.id and headers.task of an envelope that failed
 * to decode, so the client's get() can still be answered.  Writes "" when
 * unknown.
 */
void	dead_letter_peek_ids(const char *raw, size_t len, char *id, size_t idlen,
	    char *task, size_t tasklen);

#endif
