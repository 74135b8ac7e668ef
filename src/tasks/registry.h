/*
 * registry.h - built-in tasks by name.  Business tasks live in their own
 * files (reports.c, ...) and appear here only as table entries, so the
 * engine knows no business task.
 */
#ifndef CELERIAC_REGISTRY_H
#define CELERIAC_REGISTRY_H

#include <stddef.h>

#include "tasks/task.h"

struct task_param {
	const char	*name;
	int		 required;
};

struct builtin_task {
	const char		*name;		/* registry name */
	task_fn			 fn;
	const struct task_param	*params;
	int			 nparams;
	int			 variadic;	/* takes any args/kwargs */
	const char		*doc;
};

/*
 * The task called name; a task of MODULE_TASKS loads that module first
 * (NULL, logged, if it cannot be loaded).
 */
const struct builtin_task *task_registry_find(const char *name);
/* Whether name is a built-in task, without loading anything. */
int	task_registry_known(const char *name);
/* The i-th task built into every program (celeriac.*), NULL past the
 * end (for `registered` listings). */
const struct builtin_task *task_registry_at(size_t i);

/*
 * Bind a call's args and kwargs to the task's parameters the way Python
 * binds a call: fills ctx->param[].  Returns 0, or -1 with a Python-like
 * TypeError message in err.
 */
int	task_bind(const struct builtin_task *, struct task_ctx *, char *err,
	    size_t errlen);

/* Entry tables of each file of built-ins. */
extern const struct builtin_task task_core_table[];
extern const struct builtin_task task_system_table[];
/* In MODULE_TASKS: */
extern const struct builtin_task task_reports_table[];
extern const struct builtin_task task_documents_table[];
extern const struct builtin_task task_notifications_table[];
/* Its tables, NULL-terminated (module_tasks.c), and their names. */
extern const struct builtin_task *const task_module_tables[];
extern const char *const task_module_names[];

#endif
