/*
 * retry.h - re-publishing a task for a retry, as Celery's Task.retry()
 * does: the same id, retries + 1, an eta, parent_id set to its own id.
 */
#ifndef CELERIAC_RETRY_H
#define CELERIAC_RETRY_H

#include <stdint.h>

#include "broker/message.h"

/* A new envelope for the retry due at eta; caller frees. */
char	*msg_encode_retry(const struct task_msg *, double eta);

/*
 * Delay before retry number `retries` + 1: with a back-off base, base *
 * 2^retries capped at max_ms, then full jitter (a uniform draw in
 * [0, delay], r in [0, 1)); without one, default_ms.  Pure, unit-tested.
 */
int64_t	retry_delay_ms(int retries, int64_t backoff_ms, int64_t max_ms,
	    int64_t default_ms, double r);

#endif
