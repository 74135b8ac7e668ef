/*
 * task.h - what a task sees while it runs, and how it reports its outcome.
 *
 * The worker engine fills a struct task_ctx and calls the task's entry
 * point; the task sets either a result (success) or an error (failure).
 * The engine knows no business task: they register themselves by name in
 * the registry (registry.c).
 */
#ifndef CELERIAC_TASK_H
#define CELERIAC_TASK_H

#include <signal.h>
#include <stdint.h>

#include <json-c/json.h>

#define TASK_MAXPARAMS	8

struct config;

struct task_ctx {
	const struct config *cfg;	/* the running configuration */
	const char	*id;
	const char	*name;
	const char	*queue;
	int		 retries;
	json_object	*args;		/* array, borrowed */
	json_object	*kwargs;	/* object, borrowed */
	/* Arguments bound to the built-in's parameters (NULL if absent). */
	json_object	*param[TASK_MAXPARAMS];

	/* Set asynchronously when the soft time limit passes. */
	volatile sig_atomic_t *soft_timeout;

	/*
	 * Report progress: stores a PROGRESS state with meta (borrowed)
	 * in the result backend, as Celery's update_state() does.  May be
	 * NULL (inline runs).
	 */
	void		(*progress)(struct task_ctx *, json_object *meta);
	void		*progress_arg;

	/* Outcome: exactly one of result or exc_type is set by the task. */
	json_object	*result;	/* owned by the ctx once set */
	char		 exc_type[64];
	char		 exc_module[64];
	json_object	*exc_message;	/* array, owned */
	char		*traceback;	/* malloc'd or NULL */
	int		 retry;		/* the task asks to be retried */
};

typedef int (*task_fn)(struct task_ctx *);

/*
 * Report a failure from a task: sets exc_type/exc_module and a one-element
 * exc_message built from fmt.  Returns -1 so a task can write
 * "return task_fail(ctx, ...)".
 */
int	task_fail(struct task_ctx *, const char *exc_type, const char *exc_module,
	    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Set a success result (takes ownership of v) and return 0. */
int	task_succeed(struct task_ctx *, json_object *v);
void	task_ctx_clear(struct task_ctx *);

#endif
