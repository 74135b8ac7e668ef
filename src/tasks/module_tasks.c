/*
 * module_tasks.c - what MODULE_TASKS (mod_tasks.so) exports: the tables
 * of the tasks that need libhpdf, libxlsxwriter, libcurl or libcrypto.
 */
#include "tasks/registry.h"

const struct builtin_task *const task_module_tables[] = {
	task_reports_table,
	task_documents_table,
	task_notifications_table,
	NULL
};
