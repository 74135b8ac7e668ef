/*
 * monitor_tasks.c - the monitor's task lists, a task's details, and the
 * revoke and retry buttons.
 *
 * Running tasks come from the scoreboard (the truth about what runs
 * now).  Recent and failed tasks come from the job table when there is
 * a database, else from the result backend (celery-task-meta-*, which
 * knows no task names).  Revoke and retry change things, so they exist
 * only when a token is configured, and the server checked it already.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/redis.h"
#include "common/util.h"
#include "http/http_int.h"

#define MON_SCAN_ROUNDS	20	/* SCAN calls per listing, at most */

static const char sql_tasks[] =
	"SELECT coalesce(json_agg(x ORDER BY x.created_at DESC, "
	"x.job_id DESC), '[]'::json) FROM ("
	"SELECT id AS job_id, task_id, task_name AS name, queue, status, "
	"retries, worker_host, worker_pid, created_at, started_at, "
	"finished_at, extract(epoch FROM coalesce(finished_at, now()) - "
	"started_at) AS runtime, error_type, error_message FROM jobs "
	"WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR "
	"left(task_id, length($2)) = $2 OR "
	"strpos(lower(task_name), lower($2)) > 0 OR id::text = $2) "
	"ORDER BY created_at DESC, id DESC LIMIT $3::int) x";

static const char sql_retry_src[] =
	"SELECT task_name, queue, job_type, coalesce(params::text, '{}') "
	"FROM jobs WHERE id = $1::bigint OR task_id = $2";

static int
matches(const char *search, const char *id, const char *name)
{
	size_t n = strlen(search), i, k;

	if (n == 0)
		return 1;
	if (strncmp(id, search, n) == 0)
		return 1;
	for (i = 0; name && name[i]; i++) {
		for (k = 0; k < n && name[i + k] &&
		    tolower((unsigned char)name[i + k]) ==
		    tolower((unsigned char)search[k]); k++)
			;
		if (k == n)
			return 1;
	}
	return 0;
}

static json_object *
running(const char *search)
{
	json_object	*arr = json_object_new_array(), *e;
	char		 id[SB_TASKIDLEN], name[SB_TASKNAMELEN], w[96];
	int64_t		 since, now = mono_ms();
	int		 i;

	for (i = 0; i < (int)http.sb->high; i++) {
		const struct sb_slot *s = &http.sb->slots[i];

		if (s->role != SB_ROLE_WORKER || s->state != SB_BUSY ||
		    s->pid <= 0 || !sb_read_task(s, id, sizeof(id), name,
		    sizeof(name), &since) || !matches(search, id, name))
			continue;
		e = json_object_new_object();
		json_object_object_add(e, "task_id",
		    json_object_new_string(id));
		json_object_object_add(e, "name",
		    json_object_new_string(name));
		json_object_object_add(e, "queue",
		    json_object_new_string(s->queue));
		json_object_object_add(e, "status",
		    json_object_new_string("started"));
		snprintf(w, sizeof(w), "%s#%d (pid %d)", s->queue, s->index,
		    (int)s->pid);
		json_object_object_add(e, "worker", json_object_new_string(w));
		json_object_object_add(e, "runtime", json_object_new_double(
		    since > 0 ? (now - since) / 1000.0 : 0));
		json_object_array_add(arr, e);
	}
	return arr;
}

/* Celery's states to ours. */
static const char *
celery_status(const char *s)
{
	if (strcmp(s, "SUCCESS") == 0)
		return "succeeded";
	if (strcmp(s, "FAILURE") == 0)
		return "failed";
	if (strcmp(s, "REVOKED") == 0)
		return "revoked";
	if (strcmp(s, "RETRY") == 0)
		return "retrying";
	if (strcmp(s, "STARTED") == 0)
		return "started";
	return "pending";
}

static int
by_date_desc(const void *a, const void *b)
{
	json_object	*x = *(json_object *const *)a;
	json_object	*y = *(json_object *const *)b;
	json_object	*dx = NULL, *dy = NULL;
	const char	*sx, *sy;

	json_object_object_get_ex(x, "finished_at", &dx);
	json_object_object_get_ex(y, "finished_at", &dy);
	sx = dx ? json_object_get_string(dx) : "";
	sy = dy ? json_object_get_string(dy) : "";
	return strcmp(sy, sx);
}

static void
add_result(json_object *arr, const char *want, const char *search,
    const char *id, const char *text)
{
	json_object	*m, *e, *v;
	const char	*st, *name;

	if ((m = json_tokener_parse(text)) == NULL)
		return;
	st = json_object_object_get_ex(m, "status", &v) ?
	    celery_status(json_object_get_string(v)) : "pending";
	name = json_object_object_get_ex(m, "name", &v) ?
	    json_object_get_string(v) : NULL;
	if ((want == NULL || strcmp(want, st) == 0) &&
	    matches(search, id, name)) {
		e = json_object_new_object();
		json_object_object_add(e, "task_id",
		    json_object_new_string(id));
		json_object_object_add(e, "name", name ?
		    json_object_new_string(name) : NULL);
		json_object_object_add(e, "status", json_object_new_string(st));
		json_object_object_add(e, "finished_at",
		    json_object_object_get_ex(m, "date_done", &v) ?
		    json_object_get(v) : NULL);
		json_object_array_add(arr, e);
	}
	json_object_put(m);
}

/*
 * Recent results from the backend, when there is no job table: a
 * bounded SCAN (the newest are not first in a SCAN, so this is a
 * sample on a busy backend; the job table is the real history).
 */
static json_object *
from_results(const char *want, const char *search, int limit)
{
	json_object	*arr = json_object_new_array();
	redisContext	*c = http_redis(HTTP_BACKEND);
	redisReply	*r, *keys, *vals;
	const char	*argv[501];
	char		 cursor[32] = "0";
	int		 round;
	size_t		 i;

	for (round = 0; c && round < MON_SCAN_ROUNDS; round++) {
		r = redis_command(c, "SCAN %s MATCH celery-task-meta-* "
		    "COUNT 500", cursor);
		if (r == NULL || r->type != REDIS_REPLY_ARRAY ||
		    r->elements != 2) {
			if (r)
				freeReplyObject(r);
			break;
		}
		snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
		keys = r->element[1];
		argv[0] = "MGET";
		for (i = 0; i < keys->elements && i < 500; i++)
			argv[i + 1] = keys->element[i]->str;
		vals = i > 0 ? redis_commandv(c, i + 1, argv, NULL) : NULL;
		for (i = 0; vals && vals->type == REDIS_REPLY_ARRAY &&
		    i < vals->elements; i++)
			if (vals->element[i]->type == REDIS_REPLY_STRING)
				add_result(arr, want, search,
				    keys->element[i]->str + 17,
				    vals->element[i]->str);
		if (vals)
			freeReplyObject(vals);
		freeReplyObject(r);
		if (strcmp(cursor, "0") == 0)
			break;
	}
	http_redis_check(HTTP_BACKEND);
	json_object_array_sort(arr, by_date_desc);
	if ((int)json_object_array_length(arr) > limit)
		json_object_array_del_idx(arr, limit,
		    json_object_array_length(arr) - limit);
	return arr;
}

void
monitor_tasks(struct http_req *q, struct http_resp *r)
{
	json_object	*o, *list = NULL;
	PGresult	*res;
	const char	*view, *search, *want = NULL, *v[3];
	char		 lim[16];
	long long	 limit = 50;
	int		 down;

	view = http_arg(q, "view");
	search = http_arg(q, "q");
	if (view == NULL)
		view = "recent";
	if (search && strlen(search) > 128) {
		http_error(r, 422, "search text too long", "q");
		return;
	}
	if (http_arg(q, "limit") && http_parse_int(http_arg(q, "limit"), 1,
	    200, &limit) != 0) {
		http_error(r, 422, "limit must be between 1 and 200", "limit");
		return;
	}
	if (strcmp(view, "failed") == 0)
		want = "failed";
	else if (strcmp(view, "running") != 0 && strcmp(view, "recent") != 0) {
		http_error(r, 422, "view must be running, recent or failed",
		    "view");
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "view", json_object_new_string(view));
	if (strcmp(view, "running") == 0) {
		list = running(search ? search : "");
		json_object_object_add(o, "source",
		    json_object_new_string("scoreboard"));
	} else if (http.has_db) {
		snprintf(lim, sizeof(lim), "%lld", limit);
		v[0] = want;
		v[1] = search && *search ? search : NULL;
		v[2] = lim;
		if ((res = http_pg_query(sql_tasks, 3, v, &down)) != NULL) {
			list = json_tokener_parse(PQgetvalue(res, 0, 0));
			PQclear(res);
		}
		json_object_object_add(o, "source",
		    json_object_new_string("database"));
		if (list == NULL)
			json_object_object_add(o, "error",
			    json_object_new_string(down ?
			    "database unavailable" : "database error"));
	} else {
		list = from_results(want, search ? search : "", (int)limit);
		json_object_object_add(o, "source",
		    json_object_new_string("results"));
	}
	json_object_object_add(o, "tasks", list ? list :
	    json_object_new_array());
	http_reply_json(r, 200, o);
}

/* A task the job table does not know: its result, and its worker. */
static void
task_from_backend(const char *id, struct http_resp *r)
{
	json_object	*o, *m = NULL, *run, *e;
	redisContext	*c;
	redisReply	*g = NULL;
	size_t		 i;

	if ((c = http_redis(HTTP_BACKEND)) != NULL &&
	    (g = redis_command(c, "GET celery-task-meta-%s", id)) != NULL &&
	    g->type == REDIS_REPLY_STRING)
		m = json_tokener_parse(g->str);
	if (g)
		freeReplyObject(g);
	http_redis_check(HTTP_BACKEND);
	run = running("");
	for (i = 0, e = NULL; i < json_object_array_length(run); i++) {
		json_object *x = json_object_array_get_idx(run, i), *t;
		if (json_object_object_get_ex(x, "task_id", &t) &&
		    strcmp(json_object_get_string(t), id) == 0)
			e = json_object_get(x);
	}
	json_object_put(run);
	if (m == NULL && e == NULL) {
		http_error(r, 404, "no such task", "task_id");
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "task_id", json_object_new_string(id));
	json_object_object_add(o, "source", json_object_new_string("results"));
	json_object_object_add(o, "meta", m);
	json_object_object_add(o, "running", e);
	http_reply_json(r, 200, o);
}

void
monitor_task(struct http_req *q, struct http_resp *r, const char *id)
{
	if (http.has_db) {
		api_job_detail(id, r);
		if (r->status != 404 && r->status != 503)
			return;
		free(r->body);
		memset(r, 0, sizeof(*r));
	}
	task_from_backend(id, r);
}

static void
retry(const char *ref, struct http_resp *r)
{
	struct http_job	 j;
	PGresult	*res;
	json_object	*p, *args = NULL, *kwargs = NULL, *o;
	const char	*v[2];
	long long	 n;
	int		 down, prio;

	if (!http.has_db) {
		http_error(r, 409, "retry needs the job database", NULL);
		return;
	}
	v[0] = http_parse_int(ref, 1, INT64_MAX, &n) == 0 ? ref : NULL;
	v[1] = ref;
	if ((res = http_pg_query(sql_retry_src, 2, v, &down)) == NULL) {
		http_error(r, 503, down ? "database unavailable" :
		    "database error", NULL);
		return;
	}
	if (PQntuples(res) == 0) {
		PQclear(res);
		http_error(r, 404, "no such job", "task_id");
		return;
	}
	p = json_tokener_parse(PQgetvalue(res, 0, 3));
	if (p && json_object_object_get_ex(p, "args", &args) &&
	    json_object_is_type(args, json_type_array))
		args = json_object_get(args);
	else
		args = json_object_new_array();
	if (p && json_object_object_get_ex(p, "kwargs", &kwargs) &&
	    json_object_is_type(kwargs, json_type_object))
		kwargs = json_object_get(kwargs);
	else
		kwargs = json_object_new_object();
	json_object_put(p);
	memset(&j, 0, sizeof(j));
	j.task = PQgetvalue(res, 0, 0);
	j.queue = PQgetvalue(res, 0, 1)[0] ? PQgetvalue(res, 0, 1) :
	    http_task_queue(j.task, "celery", &prio);
	j.job_type = PQgetvalue(res, 0, 2)[0] ? PQgetvalue(res, 0, 2) : NULL;
	j.args = args;
	j.kwargs = kwargs;
	if (http_job_submit(&j) == -1)
		http_error(r, 503, "broker unavailable", NULL);
	else {
		o = json_object_new_object();
		json_object_object_add(o, "job_id", j.job_id >= 0 ?
		    json_object_new_int64(j.job_id) : NULL);
		json_object_object_add(o, "task_id",
		    json_object_new_string(j.task_id));
		json_object_object_add(o, "status", json_object_new_string(
		    j.queued ? "queued" : "pending"));
		json_object_object_add(o, "queue",
		    json_object_new_string(j.queue));
		json_object_object_add(o, "retry_of",
		    json_object_new_string(ref));
		http_reply_json(r, 200, o);
	}
	PQclear(res);
	json_object_put(args);
	json_object_put(kwargs);
}

void
monitor_action(struct http_req *q, struct http_resp *r, const char *id,
    const char *action)
{
	json_object *o;

	if (http.token == NULL) {
		http_error(r, 403, "the monitor is read-only: set "
		    "http.token_file to enable revoke and retry", NULL);
		return;
	}
	if (strcmp(action, "retry") == 0) {
		retry(id, r);
		return;
	}
	if (strcmp(action, "revoke") != 0) {
		http_error(r, 404, "no such action", NULL);
		return;
	}
	if (http.has_db) {
		api_job_cancel(id, "monitor", r);
		if (r->status != 404)
			return;
		free(r->body);
		memset(r, 0, sizeof(*r));
	}
	/* Not a job of ours: revoke the task id as `celery revoke` does. */
	if (http_revoke(id) == -1) {
		http_error(r, 503, "broker unavailable: cannot revoke", NULL);
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "task_id", json_object_new_string(id));
	json_object_object_add(o, "status", json_object_new_string(
	    "revoke sent"));
	http_reply_json(r, 200, o);
}
