/*
 * reload.c - the difference between two configurations (see reload.h).
 */
#include <stdlib.h>
#include <string.h>

#include "supervisor/reload.h"

static int
str_differs(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a != b;
	return strcmp(a, b) != 0;
}

static int
limits_differ(const struct cfg_limits *a, const struct cfg_limits *b)
{
	return a->address_space != b->address_space || a->cpu != b->cpu ||
	    a->open_files != b->open_files || a->core != b->core ||
	    a->file_size != b->file_size;
}

int
reload_queue_differs(const struct cfg_queue *a, const struct cfg_queue *b)
{
	return a->priority != b->priority ||
	    a->soft_time_limit_ms != b->soft_time_limit_ms ||
	    a->time_limit_ms != b->time_limit_ms ||
	    limits_differ(&a->limits, &b->limits) ||
	    a->max_tasks_per_child != b->max_tasks_per_child ||
	    a->max_memory_per_child != b->max_memory_per_child ||
	    a->nice != b->nice || a->acks_late != b->acks_late;
}

static int
task_differs(const struct cfg_task *a, const struct cfg_task *b)
{
	size_t i;

	if (str_differs(a->name, b->name) || a->run_kind != b->run_kind ||
	    str_differs(a->builtin, b->builtin) || a->argc != b->argc ||
	    str_differs(a->queue, b->queue) ||
	    a->max_retries != b->max_retries || a->acks_late != b->acks_late ||
	    a->soft_time_limit_ms != b->soft_time_limit_ms ||
	    a->time_limit_ms != b->time_limit_ms ||
	    a->retry_backoff_ms != b->retry_backoff_ms ||
	    a->retry_backoff_max_ms != b->retry_backoff_max_ms ||
	    a->ignore_result != b->ignore_result ||
	    limits_differ(&a->limits, &b->limits) ||
	    a->nautoretry != b->nautoretry)
		return 1;
	for (i = 0; i < a->argc; i++)
		if (str_differs(a->argv[i], b->argv[i]))
			return 1;
	for (i = 0; i < a->nautoretry; i++)
		if (str_differs(a->autoretry_for[i], b->autoretry_for[i]))
			return 1;
	return 0;
}

int
reload_global_differs(const struct config *a, const struct config *b)
{
	size_t i;

	if (str_differs(a->broker, b->broker) ||
	    str_differs(a->result_backend, b->result_backend) ||
	    str_differs(a->database, b->database) ||
	    str_differs(a->hostname, b->hostname) ||
	    a->result_expires_ms != b->result_expires_ms ||
	    a->track_started != b->track_started || a->events != b->events ||
	    a->log_target != b->log_target || a->log_level != b->log_level ||
	    str_differs(a->log_file, b->log_file) ||
	    str_differs(a->user, b->user) || str_differs(a->group, b->group) ||
	    a->environment != b->environment || a->ntasks != b->ntasks)
		return 1;
	for (i = 0; i < a->ntasks; i++)
		if (task_differs(&a->tasks[i], &b->tasks[i]))
			return 1;
	return 0;
}

int
reload_plan(const struct config *old, const struct config *new,
    struct reload_plan *p)
{
	const struct cfg_queue	*oq, *nq;
	struct reload_item	*it;
	size_t			 i;

	memset(p, 0, sizeof(*p));
	p->items = calloc(old->nqueues + new->nqueues + 1, sizeof(*p->items));
	if (p->items == NULL)
		return -1;
	p->global_changed = reload_global_differs(old, new);
	for (i = 0; i < old->nqueues; i++) {
		oq = &old->queues[i];
		it = &p->items[p->n++];
		it->name = oq->name;
		it->old_concurrency = oq->concurrency;
		if ((nq = cfg_queue_find(new, oq->name)) == NULL) {
			it->action = RELOAD_REMOVE;
			continue;
		}
		it->new_concurrency = nq->concurrency;
		if (p->global_changed || reload_queue_differs(oq, nq))
			it->action = RELOAD_RESTART;
		else if (oq->concurrency != nq->concurrency)
			it->action = RELOAD_RESIZE;
		else
			it->action = RELOAD_KEEP;
	}
	for (i = 0; i < new->nqueues; i++) {
		nq = &new->queues[i];
		if (cfg_queue_find(old, nq->name) != NULL)
			continue;
		it = &p->items[p->n++];
		it->name = nq->name;
		it->action = RELOAD_ADD;
		it->new_concurrency = nq->concurrency;
	}
	return 0;
}

void
reload_plan_free(struct reload_plan *p)
{
	free(p->items);
	memset(p, 0, sizeof(*p));
}

const char *
reload_action_name(enum reload_action a)
{
	switch (a) {
	case RELOAD_KEEP:	return "unchanged";
	case RELOAD_RESIZE:	return "resized";
	case RELOAD_RESTART:	return "restarted";
	case RELOAD_REMOVE:	return "removed";
	case RELOAD_ADD:	return "added";
	}
	return "?";
}

/* Does the beat schedule differ (the beat child must restart)? */
int
reload_beat_differs(const struct config *a, const struct config *b)
{
	size_t i;

	if (a->nbeat != b->nbeat)
		return 1;
	for (i = 0; i < a->nbeat; i++) {
		const struct cfg_beat_entry *x = &a->beat[i], *y = &b->beat[i];
		if (str_differs(x->name, y->name) ||
		    str_differs(x->task, y->task) || x->kind != y->kind ||
		    x->every_ms != y->every_ms ||
		    str_differs(x->cron, y->cron) ||
		    str_differs(x->timezone, y->timezone) ||
		    str_differs(x->args_json, y->args_json) ||
		    str_differs(x->kwargs_json, y->kwargs_json) ||
		    str_differs(x->queue, y->queue) ||
		    x->skip_missed != y->skip_missed)
			return 1;
	}
	return 0;
}

/* Do the http child's settings differ? */
int
reload_http_differs(const struct config *a, const struct config *b)
{
	return str_differs(a->http.listen, b->http.listen) ||
	    str_differs(a->http.monitor, b->http.monitor) ||
	    str_differs(a->http.token_file, b->http.token_file) ||
	    a->http.rate_limit != b->http.rate_limit ||
	    a->http.max_body != b->http.max_body ||
	    str_differs(a->state_dir, b->state_dir) ||
	    str_differs(a->reports_dir, b->reports_dir);
}
