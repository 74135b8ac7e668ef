/*
 * eta.h - messages due later wait in Redis, not in worker memory: the
 * sorted set celeriac.eta, scored by due time, survives restarts of any
 * process.  Any idle worker or the control child moves due messages to
 * the back of their queue's priority list.
 */
#ifndef CELERIAC_ETA_H
#define CELERIAC_ETA_H

#include <stddef.h>

#include <hiredis/hiredis.h>

#define ETA_KEY		"celeriac.eta"

/*
 * Park a received message until eta (Unix seconds) and delete ack_list in
 * the same transaction.  Returns 0 or -1.
 */
int	eta_defer(redisContext *c, const char *raw, size_t len, double eta,
	    const char *ack_list);

/*
 * Move up to 100 messages due at `now` to their queues.  Returns how many
 * moved (>= 0) and the due time of the next one in *next (0: none), or -1
 * on a connection error.
 */
int	eta_move_due(redisContext *c, double now, double *next);

#endif
