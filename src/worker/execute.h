/*
 * execute.h - from a task name to its outcome: resolution against the
 * configuration and the registry, validation by queue and signature, and
 * the call itself (built-in or external program).  No broker I/O here, so
 * `celeriac run` executes tasks inline through exactly this code.
 */
#ifndef CELERIAC_EXECUTE_H
#define CELERIAC_EXECUTE_H

#include <stdint.h>

#include "common/config.h"
#include "tasks/registry.h"
#include "tasks/task.h"

enum exec_status {
	EXEC_OK = 0,
	EXEC_NOT_REGISTERED,	/* no such task */
	EXEC_QUEUE_REFUSED	/* configured for another queue */
};

struct exec_target {
	const char		*name;
	const struct cfg_task	*ct;	/* NULL for an unconfigured built-in */
	const struct builtin_task *bt;	/* NULL for an external program */
	int64_t			 soft_ms;	/* 0: none */
	int64_t			 hard_ms;	/* 0: none */
	int			 acks_late;
	int			 max_retries;
	int			 ignore_result;
};

/*
 * Find what runs task `name` arriving on queue q (NULL: inline, any
 * queue) and the limits that apply.  Returns EXEC_OK or the refusal, with
 * a one-line reason in err.
 */
enum exec_status exec_resolve(const struct config *, const struct cfg_queue *q,
		    const char *name, struct exec_target *, char *err,
		    size_t errlen);

/*
 * Run the target with ctx's args/kwargs; the outcome is left in ctx
 * (result, or exc_type/exc_message, or retry).  Returns 0 on success, -1
 * on failure.
 */
int		 exec_run(const struct exec_target *, struct task_ctx *);

#endif
