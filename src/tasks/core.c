/*
 * core.c - the celeriac.* built-in tasks: small, predictable tasks for
 * tests, health checks and benchmarks.
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tasks/registry.h"

static int
core_noop(struct task_ctx *ctx)
{
	return task_succeed(ctx, NULL);
}

static int
core_echo(struct task_ctx *ctx)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "args", ctx->args ?
	    json_object_get(ctx->args) : json_object_new_array());
	json_object_object_add(o, "kwargs", ctx->kwargs ?
	    json_object_get(ctx->kwargs) : json_object_new_object());
	return task_succeed(ctx, o);
}

/* Sleeps in short steps so a soft time limit is noticed within 10 ms. */
static int
core_sleep(struct task_ctx *ctx)
{
	json_object	*arg = ctx->param[0];
	double		 secs, left;
	struct timespec	 ts, end, now;

	if (!json_object_is_type(arg, json_type_int) &&
	    !json_object_is_type(arg, json_type_double))
		return task_fail(ctx, "TypeError", "builtins",
		    "sleep() argument 'seconds' must be a number");
	secs = json_object_get_double(arg);
	if (!(secs >= 0) || secs > 86400 * 7)
		return task_fail(ctx, "ValueError", "builtins",
		    "sleep() seconds out of range: %g", secs);
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += (time_t)secs;
	end.tv_nsec += (long)((secs - floor(secs)) * 1e9);
	if (end.tv_nsec >= 1000000000L) {
		end.tv_sec++;
		end.tv_nsec -= 1000000000L;
	}
	for (;;) {
		if (ctx->soft_timeout && *ctx->soft_timeout)
			return task_fail(ctx, "SoftTimeLimitExceeded",
			    "billiard.exceptions", "soft time limit exceeded");
		clock_gettime(CLOCK_MONOTONIC, &now);
		left = (end.tv_sec - now.tv_sec) +
		    (end.tv_nsec - now.tv_nsec) / 1e9;
		if (left <= 0)
			break;
		if (left > 0.01)
			left = 0.01;
		ts.tv_sec = 0;
		ts.tv_nsec = (long)(left * 1e9);
		nanosleep(&ts, NULL);
	}
	return task_succeed(ctx, json_object_get(arg));
}

static int
core_fail(struct task_ctx *ctx)
{
	const char *msg = "celeriac.fail";

	if (ctx->param[0] != NULL)
		msg = json_object_get_string(ctx->param[0]);
	return task_fail(ctx, "RuntimeError", "builtins", "%s", msg);
}

/* Dies the way a buggy task would; the master replaces the worker. */
static int
core_crash(struct task_ctx *ctx)
{
	signal(SIGABRT, SIG_DFL);
	abort();
}

/* Ignores the soft limit on purpose: only the hard limit stops it. */
static int
core_spin(struct task_ctx *ctx)
{
	volatile uint64_t n = 0;

	for (;;)
		n++;
	return task_succeed(ctx, json_object_new_int64((int64_t)n));
}

static int
core_alloc(struct task_ctx *ctx)
{
	int64_t		 n;
	unsigned char	*p;
	size_t		 i;

	if (!json_object_is_type(ctx->param[0], json_type_int))
		return task_fail(ctx, "TypeError", "builtins",
		    "alloc() argument 'bytes' must be an integer");
	n = json_object_get_int64(ctx->param[0]);
	if (n < 0)
		return task_fail(ctx, "ValueError", "builtins",
		    "alloc() bytes must be >= 0");
	if ((uint64_t)n > SIZE_MAX || (p = malloc((size_t)n ? n : 1)) == NULL)
		return task_fail(ctx, "MemoryError", "builtins",
		    "cannot allocate %lld bytes", (long long)n);
	/* Touch every page so the memory is really resident. */
	for (i = 0; i < (size_t)n; i += 4096)
		p[i] = (unsigned char)i;
	free(p);
	return task_succeed(ctx, json_object_new_int64(n));
}

static const struct task_param p_seconds[] = { { "seconds", 1 } };
static const struct task_param p_message[] = { { "message", 0 } };
static const struct task_param p_bytes[] = { { "bytes", 1 } };

const struct builtin_task task_core_table[] = {
	{ "celeriac.noop", core_noop, NULL, 0, 0, "does nothing" },
	{ "celeriac.echo", core_echo, NULL, 0, 1,
	    "returns {\"args\": args, \"kwargs\": kwargs}" },
	{ "celeriac.sleep", core_sleep, p_seconds, 1, 0,
	    "sleeps, honouring the soft time limit" },
	{ "celeriac.fail", core_fail, p_message, 1, 0,
	    "raises RuntimeError(message)" },
	{ "celeriac.crash", core_crash, NULL, 0, 0, "aborts its process" },
	{ "celeriac.spin", core_spin, NULL, 0, 0,
	    "busy loop ignoring the soft time limit" },
	{ "celeriac.alloc", core_alloc, p_bytes, 1, 0,
	    "allocates and touches bytes of memory" },
	{ NULL, NULL, NULL, 0, 0, NULL }
};
