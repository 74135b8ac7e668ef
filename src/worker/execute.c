/*
 * execute.c - resolve and run one task (see execute.h).
 */
#include <sys/wait.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "worker/execute.h"
#include "worker/external.h"

/* Built-ins under this prefix may run on any queue unless configured. */
#define EXEC_OPEN_PREFIX	"celeriac."

static int64_t
pick(int64_t task_value, int64_t queue_value)
{
	if (task_value != CFG_UNSET)
		return task_value;
	return queue_value != CFG_UNSET ? queue_value : 0;
}

enum exec_status
exec_resolve(const struct config *cfg, const struct cfg_queue *q,
    const char *name, struct exec_target *t, char *err, size_t errlen)
{
	const struct cfg_task *ct;

	memset(t, 0, sizeof(*t));
	t->name = name;
	t->max_retries = 3;
	if ((ct = cfg_task_find(cfg, name)) != NULL) {
		if (q != NULL && strcmp(ct->queue, q->name) != 0) {
			snprintf(err, errlen, "task %s may run only on queue "
			    "%s, not on %s", name, ct->queue, q->name);
			return EXEC_QUEUE_REFUSED;
		}
		if (q == NULL)
			q = cfg_queue_find(cfg, ct->queue);
		t->ct = ct;
		if (ct->run_kind == CFG_RUN_BUILTIN &&
		    (t->bt = task_registry_find(ct->builtin)) == NULL) {
			snprintf(err, errlen, "task %s: unknown built-in %s",
			    name, ct->builtin);
			return EXEC_NOT_REGISTERED;
		}
		t->max_retries = ct->max_retries;
		t->ignore_result = ct->ignore_result;
		t->soft_ms = pick(ct->soft_time_limit_ms,
		    q ? q->soft_time_limit_ms : CFG_UNSET);
		t->hard_ms = pick(ct->time_limit_ms,
		    q ? q->time_limit_ms : CFG_UNSET);
		t->acks_late = ct->acks_late != CFG_UNSET ? ct->acks_late :
		    (q ? q->acks_late : 0);
		return EXEC_OK;
	}
	if (strncmp(name, EXEC_OPEN_PREFIX, strlen(EXEC_OPEN_PREFIX)) == 0 &&
	    (t->bt = task_registry_find(name)) != NULL) {
		if (q != NULL) {
			t->soft_ms = pick(CFG_UNSET, q->soft_time_limit_ms);
			t->hard_ms = pick(CFG_UNSET, q->time_limit_ms);
			t->acks_late = q->acks_late;
		}
		return EXEC_OK;
	}
	snprintf(err, errlen, "%s", name);
	return EXEC_NOT_REGISTERED;
}

static int
exec_builtin(const struct exec_target *t, struct task_ctx *ctx)
{
	char err[512];

	if (task_bind(t->bt, ctx, err, sizeof(err)) == -1)
		return task_fail(ctx, "TypeError", "builtins", "%s", err);
	if (t->bt->fn(ctx) == -1 || ctx->exc_type[0] != '\0') {
		if (ctx->exc_type[0] == '\0')
			task_fail(ctx, "RuntimeError", "builtins",
			    "%s failed", t->name);
		return -1;
	}
	return 0;
}

static int
exec_external(const struct exec_target *t, struct task_ctx *ctx)
{
	struct ext_result	 res;
	json_object		*in, *out;
	const char		*text;
	char			*why;
	int			 rc;

	in = json_object_new_object();
	json_object_object_add(in, "args", ctx->args ?
	    json_object_get(ctx->args) : json_object_new_array());
	json_object_object_add(in, "kwargs", ctx->kwargs ?
	    json_object_get(ctx->kwargs) : json_object_new_object());
	json_object_object_add(in, "id", json_object_new_string(ctx->id ?
	    ctx->id : ""));
	text = json_object_to_json_string_ext(in, JSON_C_TO_STRING_PLAIN);
	rc = ext_run(t->ct->argv, text, strlen(text), ctx->soft_timeout, &res);
	json_object_put(in);
	if (rc == -1)
		return task_fail(ctx, "ExternalTaskError", "celeriac.errors",
		    "cannot start %s", t->ct->argv[0]);
	if (res.soft_killed) {
		ext_result_clear(&res);
		return task_fail(ctx, "SoftTimeLimitExceeded",
		    "billiard.exceptions", "soft time limit exceeded");
	}
	if (WIFEXITED(res.status) && WEXITSTATUS(res.status) == 0) {
		if (res.truncated) {
			ext_result_clear(&res);
			return task_fail(ctx, "ExternalTaskError",
			    "celeriac.errors", "output larger than the limit");
		}
		if (res.outlen == 0 || strspn(res.out, " \t\r\n") == res.outlen)
			out = NULL;
		else if ((out = json_tokener_parse(res.out)) == NULL) {
			ext_result_clear(&res);
			return task_fail(ctx, "ExternalTaskError",
			    "celeriac.errors",
			    "%s: standard output is not JSON", t->ct->argv[0]);
		}
		ext_result_clear(&res);
		return task_succeed(ctx, out);
	}
	if (WIFEXITED(res.status) && WEXITSTATUS(res.status) == EXT_EXIT_RETRY)
		ctx->retry = 1;
	why = ext_describe_failure(&res);
	task_fail(ctx, "ExternalTaskError", "celeriac.errors", "%s: %s",
	    t->ct->argv[0], why ? why : "failed");
	free(why);
	ext_result_clear(&res);
	return -1;
}

int
exec_run(const struct exec_target *t, struct task_ctx *ctx)
{
	ctx->name = t->name;
	if (t->bt != NULL)
		return exec_builtin(t, ctx);
	return exec_external(t, ctx);
}
