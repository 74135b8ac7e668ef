/*
 * recover.h - what a slot's new owner does with the message its previous
 * owner left in the processing list: re-queue it (acks_late) or record
 * why it failed (WorkerLostError, TimeLimitExceeded, REVOKED).
 */
#ifndef CELERIAC_RECOVER_H
#define CELERIAC_RECOVER_H

#include "worker/worker.h"

enum recover_action {
	RECOVER_REQUEUE = 0,
	RECOVER_FAIL_LOST,
	RECOVER_FAIL_TIMELIMIT,
	RECOVER_REVOKED
};

/* The pure decision, unit-tested: what to do given how the owner died. */
enum recover_action recover_decide(int kill_reason, int acks_late);

/* Handle one such message; w->queue NULL: use the message's queue. */
int	recover_message(struct worker *, const char *raw, size_t len);

/* Handle every message in w->processing; 0, or -1 on a broker error. */
int	recover_slot(struct worker *);

#endif
