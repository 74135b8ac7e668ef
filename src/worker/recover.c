/*
 * recover.c - a slot's new owner handles its predecessor's message.
 *
 * The message in the processing list was being run when the previous
 * child died.  Why it died (recorded by the master in the scoreboard)
 * and the task's acks_late setting decide between running it again and
 * recording a failure, as Celery does: acks_late means at-least-once,
 * the default is at-most-once.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "broker/deadletter.h"
#include "broker/message.h"
#include "broker/publish.h"
#include "broker/redis.h"
#include "common/log.h"
#include "common/scoreboard.h"
#include "worker/execute.h"
#include "worker/recover.h"

enum recover_action
recover_decide(int kill_reason, int acks_late)
{
	switch (kill_reason) {
	case SB_KILL_TIMELIMIT:
		/* Running it again would hit the same limit. */
		return RECOVER_FAIL_TIMELIMIT;
	case SB_KILL_REVOKE:
		return RECOVER_REVOKED;
	case SB_KILL_SHUTDOWN:
		/* We stopped it, not the task: run it again. */
		return RECOVER_REQUEUE;
	default:
		return acks_late ? RECOVER_REQUEUE : RECOVER_FAIL_LOST;
	}
}

static void
describe_exit(int status, char *buf, size_t len)
{
	if (WIFSIGNALED(status))
		snprintf(buf, len, "Worker exited prematurely: signal %d (SIG%s)",
		    WTERMSIG(status), sigabbrev_np(WTERMSIG(status)) ?
		    sigabbrev_np(WTERMSIG(status)) : "?");
	else if (WIFEXITED(status))
		snprintf(buf, len, "Worker exited prematurely: exitcode %d",
		    WEXITSTATUS(status));
	else
		snprintf(buf, len, "Worker exited prematurely");
}

/*
 * w->queue is the slot's queue; the control child passes NULL and the
 * queue is then the message's own routing key.
 */
int
recover_message(struct worker *w, const char *raw, size_t len)
{
	struct task_msg		 m;
	struct exec_target	 t;
	const struct cfg_queue	*q = w->queue;
	const char		*qname;
	char			 err[512], why[128], *meta = NULL, *env;
	json_object		*em;
	enum recover_action	 act;
	int			 acks_late, rc;

	if (msg_decode(raw, len, &m, err, sizeof(err)) == -1) {
		char id[64], task[256];
		dead_letter_peek_ids(raw, len, id, sizeof(id), task,
		    sizeof(task));
		return dead_letter_push(w->broker, q ? q->name : NULL, err, id,
		    task, raw, len, w->processing);
	}
	if (q == NULL && m.routing_key != NULL)
		q = cfg_queue_find(w->cfg, m.routing_key);
	qname = q ? q->name : m.routing_key ? m.routing_key : "celery";
	acks_late = q ? q->acks_late : 0;
	if (exec_resolve(w->cfg, q, m.task, &t, err, sizeof(err)) == EXEC_OK)
		acks_late = t.acks_late;
	act = recover_decide(w->slot->last_kill, acks_late);
	em = json_object_new_array();
	switch (act) {
	case RECOVER_REQUEUE:
		log_notice("re-queueing %s[%s] left by a dead worker "
		    "(acks_late)", m.task, m.id);
		env = msg_encode_redelivered(&m);
		rc = publish_restore(w->broker, qname, env ? env : raw,
		    w->processing);
		if (rc == 0)
			store_record_task(w->store, STORE_QUEUED, m.id, m.task,
			    qname, m.retries, NULL, NULL, NULL, NULL, NULL);
		free(env);
		json_object_put(em);
		msg_clear(&m);
		return rc;
	case RECOVER_FAIL_TIMELIMIT:
		json_object_array_add(em, json_object_new_double(
		    w->slot->hard_limit_ms / 1000.0));
		meta = msg_result_failure("FAILURE", m.id, "TimeLimitExceeded",
		    "billiard.exceptions", em, NULL, m.parent_id);
		log_notice("task %s[%s] killed by its hard time limit",
		    m.task, m.id);
		store_record_task(w->store, STORE_FAILED, m.id, m.task, qname,
		    m.retries, NULL, NULL, NULL, "TimeLimitExceeded", em);
		break;
	case RECOVER_REVOKED:
		json_object_array_add(em, json_object_new_string("terminated"));
		meta = msg_result_failure("REVOKED", m.id, "TaskRevokedError",
		    "celery.exceptions", em, NULL, m.parent_id);
		store_record_task(w->store, STORE_REVOKED, m.id, m.task, qname,
		    m.retries, NULL, NULL, NULL, "TaskRevokedError", em);
		break;
	case RECOVER_FAIL_LOST:
		if (w->queue == NULL)
			snprintf(why, sizeof(why), "Worker lost: its host or "
			    "slot is gone (no heartbeat or no owner)");
		else
			describe_exit(w->slot->last_status, why, sizeof(why));
		json_object_array_add(em, json_object_new_string(why));
		meta = msg_result_failure("FAILURE", m.id, "WorkerLostError",
		    "billiard.exceptions", em, NULL, m.parent_id);
		log_notice("task %s[%s] lost: %s", m.task, m.id, why);
		store_record_task(w->store, STORE_FAILED, m.id, m.task, qname,
		    m.retries, NULL, NULL, NULL, "WorkerLostError", em);
		break;
	}
	json_object_put(em);
	sb_task_end(w->slot, m.task, SB_FAILED, 0);
	worker_finish(w, m.id, meta);
	free(meta);
	msg_clear(&m);
	return 0;
}

int
recover_slot(struct worker *w)
{
	redisReply	*r;
	size_t		 i;
	int		 rc = 0;

	r = redis_command(w->broker, "LRANGE %s 0 -1", w->processing);
	if (r == NULL)
		return -1;
	for (i = 0; i < r->elements; i++)
		if (recover_message(w, r->element[i]->str, r->element[i]->len) ==
		    -1)
			rc = -1;
	freeReplyObject(r);
	/* Whatever happened is handled; the slot starts afresh. */
	w->slot->last_kill = SB_KILL_NONE;
	return rc;
}
