/*
 * registry.c - lookup and argument binding of built-in tasks, and the
 * small helpers tasks use to report their outcome.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/module.h"
#include "tasks/registry.h"

/* Built into every program: the engine's own tasks. */
static const struct builtin_task *const registry_tables[] = {
	task_core_table,
	task_system_table,
};

/*
 * The tasks of MODULE_TASKS (reports, documents, notifications), by name
 * only, so a name can be checked (config, `registered`) without loading
 * their libraries; tests/unit/check_config.c keeps this list equal to the
 * module's tables.
 */
const char *const task_module_names[] = {
	"documents.process",
	"notifications.webhook",
	"notifications.email",
	"reports.dummy",
	"reports.heavy",
	NULL
};

/* Linked in by programs that carry the module's code (the CLI, tests);
 * the daemon has no definition and opens the module instead. */
extern const struct builtin_task *const task_module_tables[]
    __attribute__((weak));

static const struct builtin_task *
find_in(const struct builtin_task *t, const char *name)
{
	for (; t->name != NULL; t++)
		if (strcmp(t->name, name) == 0)
			return t;
	return NULL;
}

static int
module_task(const char *name)
{
	size_t i;

	for (i = 0; task_module_names[i] != NULL; i++)
		if (strcmp(task_module_names[i], name) == 0)
			return 1;
	return 0;
}

int
task_registry_known(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(registry_tables) / sizeof(*registry_tables);
	    i++)
		if (find_in(registry_tables[i], name) != NULL)
			return 1;
	return module_task(name);
}

const struct builtin_task *
task_registry_find(const char *name)
{
	const struct builtin_task *const	*mod;
	const struct builtin_task		*t;
	char					 err[512];
	size_t					 i;

	for (i = 0; i < sizeof(registry_tables) / sizeof(*registry_tables);
	    i++)
		if ((t = find_in(registry_tables[i], name)) != NULL)
			return t;
	if (!module_task(name))
		return NULL;
	if ((mod = task_module_tables) == NULL &&
	    (mod = module_sym(MODULE_TASKS, "task_module_tables", err,
	    sizeof(err))) == NULL) {
		log_warnx("task %s: %s", name, err);
		return NULL;
	}
	for (; *mod != NULL; mod++)
		if ((t = find_in(*mod, name)) != NULL)
			return t;
	return NULL;
}

const struct builtin_task *
task_registry_at(size_t n)
{
	const struct builtin_task	*t;
	size_t				 i;

	for (i = 0; i < sizeof(registry_tables) / sizeof(*registry_tables);
	    i++)
		for (t = registry_tables[i]; t->name != NULL; t++)
			if (n-- == 0)
				return t;
	return NULL;
}

static const char *
short_name(const char *name)
{
	const char *dot = strrchr(name, '.');

	return dot ? dot + 1 : name;
}

int
task_bind(const struct builtin_task *t, struct task_ctx *ctx, char *err,
    size_t errlen)
{
	size_t			 nargs, i;
	int			 p, missing = 0;
	struct json_object_iterator it, end;

	memset(ctx->param, 0, sizeof(ctx->param));
	if (t->variadic)
		return 0;
	nargs = ctx->args ? json_object_array_length(ctx->args) : 0;
	if (nargs > (size_t)t->nparams) {
		snprintf(err, errlen, "%s() takes %d positional argument%s "
		    "but %zu were given", short_name(t->name), t->nparams,
		    t->nparams == 1 ? "" : "s", nargs);
		return -1;
	}
	for (i = 0; i < nargs; i++)
		ctx->param[i] = json_object_array_get_idx(ctx->args, i);
	if (ctx->kwargs) {
		it = json_object_iter_begin(ctx->kwargs);
		end = json_object_iter_end(ctx->kwargs);
		for (; !json_object_iter_equal(&it, &end);
		    json_object_iter_next(&it)) {
			const char *k = json_object_iter_peek_name(&it);
			for (p = 0; p < t->nparams; p++)
				if (strcmp(t->params[p].name, k) == 0)
					break;
			if (p == t->nparams) {
				snprintf(err, errlen, "%s() got an unexpected "
				    "keyword argument '%s'",
				    short_name(t->name), k);
				return -1;
			}
			if ((size_t)p < nargs) {
				snprintf(err, errlen, "%s() got multiple "
				    "values for argument '%s'",
				    short_name(t->name), k);
				return -1;
			}
			ctx->param[p] = json_object_iter_peek_value(&it);
			if (ctx->param[p] == NULL)	/* JSON null */
				ctx->param[p] = NULL;
		}
	}
	for (p = 0; p < t->nparams; p++)
		if (t->params[p].required && ctx->param[p] == NULL &&
		    !((size_t)p < nargs))
			missing++;
	if (missing) {
		int len;
		len = snprintf(err, errlen, "%s() missing %d required "
		    "positional argument%s:", short_name(t->name), missing,
		    missing == 1 ? "" : "s");
		for (p = 0; p < t->nparams && len > 0 && (size_t)len < errlen;
		    p++)
			if (t->params[p].required && ctx->param[p] == NULL &&
			    !((size_t)p < nargs))
				len += snprintf(err + len, errlen - len,
				    " '%s'", t->params[p].name);
		return -1;
	}
	return 0;
}

int
task_fail(struct task_ctx *ctx, const char *exc_type, const char *exc_module,
    const char *fmt, ...)
{
	char	 msg[1024];
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(ctx->exc_type, sizeof(ctx->exc_type), "%s", exc_type);
	snprintf(ctx->exc_module, sizeof(ctx->exc_module), "%s",
	    exc_module ? exc_module : "");
	json_object_put(ctx->exc_message);
	ctx->exc_message = json_object_new_array();
	json_object_array_add(ctx->exc_message, json_object_new_string(msg));
	json_object_put(ctx->result);
	ctx->result = NULL;
	return -1;
}

int
task_succeed(struct task_ctx *ctx, json_object *v)
{
	json_object_put(ctx->result);
	ctx->result = v;
	ctx->exc_type[0] = '\0';
	return 0;
}

void
task_ctx_clear(struct task_ctx *ctx)
{
	json_object_put(ctx->result);
	json_object_put(ctx->exc_message);
	free(ctx->traceback);
	ctx->result = NULL;
	ctx->exc_message = NULL;
	ctx->traceback = NULL;
	ctx->exc_type[0] = ctx->exc_module[0] = '\0';
	ctx->retry = 0;
}
