/*
 * reports.c - the report tasks of MonAssurance's design note.
 */
#include <string.h>

#include "tasks/registry.h"

/* generate_dummy_report(report_id, job_id=None) -> {"report_id": ...} */
static int
reports_dummy(struct task_ctx *ctx)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "report_id",
	    json_object_get(ctx->param[0]));
	return task_succeed(ctx, o);
}

static const struct task_param p_dummy[] = {
	{ "report_id", 1 }, { "job_id", 0 }
};

const struct builtin_task task_reports_table[] = {
	{ "reports.dummy", reports_dummy, p_dummy, 2, 0,
	    "generate_dummy_report(report_id, job_id=None)" },
	{ NULL, NULL, NULL, 0, 0, NULL }
};
