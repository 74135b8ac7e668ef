/*
 * run.c - `celeriac run`: execute a task inline, in this process, through
 * the worker's own resolve-and-run code, with no broker: the design
 * note's "inline jobs for tests".
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/message.h"
#include "ctl/ctl.h"
#include "worker/execute.h"

int
ctl_run(struct config *cfg, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "args", required_argument, NULL, 'a' },
		{ "kwargs", required_argument, NULL, 'k' },
		{ NULL, 0, NULL, 0 }
	};
	static volatile sig_atomic_t never;
	struct exec_target	 t;
	struct task_ctx		 ctx;
	json_object		*args = NULL, *kwargs = NULL;
	char			 err[512], id[40], *meta;
	int			 ch, rc = 1;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "a:k:", opts, NULL)) != -1) {
		switch (ch) {
		case 'a':
			if ((args = ctl_parse_json("--args", optarg,
			    json_type_array)) == NULL)
				goto out;
			break;
		case 'k':
			if ((kwargs = ctl_parse_json("--kwargs", optarg,
			    json_type_object)) == NULL)
				goto out;
			break;
		default:
			rc = 2;
			goto out;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "usage: celeriac run TASK [--args JSON] "
		    "[--kwargs JSON]\n");
		rc = 2;
		goto out;
	}
	if (exec_resolve(cfg, NULL, argv[optind], &t, err, sizeof(err)) !=
	    EXEC_OK) {
		fprintf(stderr, "NotRegistered: %s\n", err);
		goto out;
	}
	msg_uuid4(id);
	memset(&ctx, 0, sizeof(ctx));
	ctx.cfg = cfg;
	ctx.id = id;
	ctx.args = args ? args : (args = json_object_new_array());
	ctx.kwargs = kwargs ? kwargs : (kwargs = json_object_new_object());
	ctx.soft_timeout = &never;
	if (exec_run(&t, &ctx) == 0)
		meta = msg_result_success(id, ctx.result, NULL);
	else
		meta = msg_result_failure("FAILURE", id, ctx.exc_type,
		    ctx.exc_module, ctx.exc_message, ctx.traceback, NULL);
	task_ctx_clear(&ctx);
	rc = meta ? ctl_print_outcome(meta) : 1;
	free(meta);
out:
	json_object_put(args);
	json_object_put(kwargs);
	return rc;
}
