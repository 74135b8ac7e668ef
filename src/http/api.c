/*
 * api.c - the job API of the design note, under /api/v1/reports.
 *
 * Parameters come from the query string or, for the POST routes, from a
 * JSON object body; the query string wins.  A value of the wrong shape
 * ("pages=abc", a malformed body) is a 400, a well-formed value outside
 * what the route accepts (an unknown report type, pages=0) a 422; both
 * name the parameter.  The job list and details are built as JSON by
 * PostgreSQL itself, which escapes and formats every value.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/message.h"
#include "broker/redis.h"
#include "common/util.h"
#include "http/http_int.h"

#define API_PREFIX	"/api/v1/reports"
#define API_JOBS	API_PREFIX "/jobs/"
#define API_JOBSLEN	(sizeof(API_JOBS) - 1)

static const char *const api_statuses[] = { "pending", "queued", "started",
	"retrying", "succeeded", "failed", "revoked", NULL };

/*
 * Newest first by created_at, which the indexes of 001_jobs.sql serve
 * for each filter; the total is counted up to API_COUNT_CAP so that a
 * large table does not make every page cost a full count.
 */
#define API_COUNT_CAP	"1000"
#define API_FILTER	"WHERE ($1::text IS NULL OR status = $1) " \
	"AND ($2::text IS NULL OR queue = $2) "

static const char sql_list[] =
	"WITH f AS (SELECT id AS job_id, task_id, task_name, job_type, queue, "
	"status, retries, worker_host, worker_pid, created_at, queued_at, "
	"started_at, finished_at, error_type, error_message, file_path "
	"FROM jobs " API_FILTER
	"ORDER BY created_at DESC, id DESC LIMIT $3::int OFFSET $4::int), "
	"c AS (SELECT count(*) AS n FROM (SELECT 1 FROM jobs " API_FILTER
	"LIMIT " API_COUNT_CAP " + 1) x) "
	"SELECT json_build_object("
	"'jobs', coalesce((SELECT json_agg(f ORDER BY f.created_at DESC, "
	"f.job_id DESC) FROM f), '[]'::json), "
	"'total', least(c.n, " API_COUNT_CAP "), "
	"'total_capped', c.n > " API_COUNT_CAP ", "
	"'status', $1, 'queue', $2, 'limit', $3::int, 'offset', $4::int) "
	"FROM c";

static const char sql_detail[] =
	"SELECT json_build_object('job_id', j.id, 'task_id', j.task_id, "
	"'task_name', j.task_name, 'job_type', j.job_type, 'queue', j.queue, "
	"'status', j.status, 'retries', j.retries, 'params', j.params, "
	"'worker_host', j.worker_host, 'worker_pid', j.worker_pid, "
	"'created_at', j.created_at, 'queued_at', j.queued_at, "
	"'started_at', j.started_at, 'finished_at', j.finished_at, "
	"'duration_seconds', extract(epoch FROM j.finished_at - j.started_at), "
	"'result', j.result, 'error', CASE WHEN j.error_type IS NULL AND "
	"j.error_message IS NULL THEN NULL ELSE json_build_object('type', "
	"j.error_type, 'message', j.error_message) END, "
	"'file_path', j.file_path, 'events', coalesce((SELECT json_agg("
	"json_build_object('status', e.status, 'at', e.at, 'detail', e.detail) "
	"ORDER BY e.at, e.id) FROM job_events e WHERE e.job_id = j.id), "
	"'[]'::json)) FROM jobs j "
	"WHERE j.id = $1::bigint OR j.task_id = $2";

static const char sql_find[] =
	"SELECT id, task_id, status FROM jobs "
	"WHERE id = $1::bigint OR task_id = $2";

static const char sql_cancel[] =
	"WITH u AS (UPDATE jobs SET status = 'revoked', finished_at = now() "
	"WHERE id = $1 AND status IN ('pending', 'queued', 'started', "
	"'retrying') RETURNING id), "
	"e AS (INSERT INTO job_events (job_id, status, at, detail) "
	"SELECT id, 'revoked', now(), $2::jsonb FROM u) "
	"SELECT count(*) FROM u";

/*
 * PostgreSQL made the JSON; it goes through json-c once more so that
 * every answer has the same compact layout.
 */
static void
reply_pg_json(struct http_resp *r, PGresult *res)
{
	json_object *o = json_tokener_parse(PQgetvalue(res, 0, 0));

	if (o == NULL)
		http_error(r, 500, "bad JSON from the database", NULL);
	else
		http_reply_json(r, 200, o);
}

static void
db_unavailable(struct http_resp *r, int down)
{
	if (!http.has_db)
		http_error(r, 503, "no database configured", NULL);
	else if (down)
		http_error(r, 503, "database unavailable", NULL);
	else
		http_error(r, 500, "database error", NULL);
}

/*
 * A parameter from the query string, else from the JSON body, as text
 * in buf.  NULL when absent; *bad when the body gives it a type that is
 * not a string or a number.
 */
static const char *
param(struct http_req *q, json_object *body, const char *name, char *buf,
    size_t len, int *bad)
{
	const char	*s;
	json_object	*v;

	*bad = 0;
	if ((s = http_arg(q, name)) != NULL) {
		snprintf(buf, len, "%s", s);
		return buf;
	}
	if (body == NULL || !json_object_object_get_ex(body, name, &v) ||
	    v == NULL)
		return NULL;
	switch (json_object_get_type(v)) {
	case json_type_string:
		snprintf(buf, len, "%s", json_object_get_string(v));
		return buf;
	case json_type_int:
		snprintf(buf, len, "%lld", (long long)json_object_get_int64(v));
		return buf;
	case json_type_double:
		snprintf(buf, len, "%.17g", json_object_get_double(v));
		return buf;
	default:
		*bad = 1;
		return NULL;
	}
}

/* The request body as a JSON object, NULL when empty; -1 if malformed. */
static int
parse_body(struct http_req *q, struct http_resp *r, json_object **out)
{
	const char *p = q->body;

	*out = NULL;
	while (*p && isspace((unsigned char)*p))
		p++;
	if (*p == '\0')
		return 0;
	*out = json_tokener_parse(q->body);
	if (*out == NULL || !json_object_is_type(*out, json_type_object)) {
		json_object_put(*out);
		*out = NULL;
		http_error(r, 400, "the body must be a JSON object", "body");
		return -1;
	}
	return 0;
}

static void
submit(struct http_job *j, struct http_resp *r, json_object *extra)
{
	json_object	*o;

	if (http_job_submit(j) == -1) {
		json_object_put(extra);
		http_error(r, 503, "broker unavailable and no database to keep "
		    "the job", NULL);
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "job_id", j->job_id >= 0 ?
	    json_object_new_int64(j->job_id) : NULL);
	json_object_object_add(o, "task_id", json_object_new_string(
	    j->task_id));
	json_object_object_add(o, "status", json_object_new_string(
	    j->queued ? "queued" : "pending"));
	json_object_object_add(o, "queue", json_object_new_string(j->queue));
	json_object_object_add(o, "task", json_object_new_string(j->task));
	json_object_object_add(o, "broker", json_object_new_string(
	    j->broker_ok ? "ok" : "unavailable"));
	json_object_object_add(o, "database", json_object_new_string(
	    !http.has_db ? "not configured" : j->db_ok ? "ok" :
	    "unavailable"));
	if (extra) {
		json_object_object_foreach(extra, k, v)
			json_object_object_add(o, k, json_object_get(v));
	}
	json_object_put(extra);
	http_reply_json(r, 200, o);
}

static void
post_dummy(struct http_req *q, struct http_resp *r)
{
	struct http_job	 j;
	json_object	*body, *args, *kwargs, *extra;
	const char	*id;
	char		 buf[300], gen[40];
	int		 bad, prio;

	if (parse_body(q, r, &body) == -1)
		return;
	id = param(q, body, "report_id", buf, sizeof(buf), &bad);
	if (bad || (id && (strlen(id) == 0 || strlen(id) > 256))) {
		json_object_put(body);
		http_error(r, 422, "report_id must be a string of 1 to 256 "
		    "characters", "report_id");
		return;
	}
	if (id == NULL) {
		msg_uuid4(gen);
		id = gen;
	}
	args = json_object_new_array();
	json_object_array_add(args, json_object_new_string(id));
	kwargs = json_object_new_object();
	memset(&j, 0, sizeof(j));
	j.task = "reports.generate_dummy_report";
	j.queue = http_task_queue(j.task, "reports", &prio);
	j.priority = prio;
	j.job_type = "dummy";
	j.args = args;
	j.kwargs = kwargs;
	extra = json_object_new_object();
	json_object_object_add(extra, "report_id", json_object_new_string(id));
	submit(&j, r, extra);
	json_object_put(args);
	json_object_put(kwargs);
	json_object_put(body);
}

/* An integer parameter within [min, max] (400/422 otherwise). */
static int
int_param(struct http_req *q, struct http_resp *r, json_object *body,
    const char *name, long long min, long long max, long long dflt,
    long long *out)
{
	const char	*s;
	char		 buf[64], msg[128];
	int		 bad, rc;

	s = param(q, body, name, buf, sizeof(buf), &bad);
	if (s == NULL && !bad) {
		*out = dflt;
		return 0;
	}
	if (bad || (rc = http_parse_int(s, min, max, out)) == -1) {
		snprintf(msg, sizeof(msg), "%s must be an integer", name);
		http_error(r, 400, msg, name);
		return -1;
	}
	if (rc == -2) {
		snprintf(msg, sizeof(msg), "%s must be between %lld and %lld",
		    name, min, max);
		http_error(r, 422, msg, name);
		return -1;
	}
	return 0;
}

static void
post_heavy(struct http_req *q, struct http_resp *r)
{
	static const char *const types[] = { "pdf", "excel", "analysis", NULL };
	struct http_job	 j;
	json_object	*body, *kwargs, *args, *extra;
	const char	*type;
	char		 buf[64];
	long long	 pages, secs;
	int		 bad, prio, i;

	if (parse_body(q, r, &body) == -1)
		return;
	type = param(q, body, "report_type", buf, sizeof(buf), &bad);
	if (type == NULL && !bad)
		type = "pdf";
	for (i = 0; type && types[i]; i++)
		if (strcmp(type, types[i]) == 0)
			break;
	if (type == NULL || types[i] == NULL) {
		json_object_put(body);
		http_error(r, 422, "report_type must be one of pdf, excel, "
		    "analysis", "report_type");
		return;
	}
	type = types[i];
	if (int_param(q, r, body, "pages", 1, 1000, 10, &pages) == -1 ||
	    int_param(q, r, body, "processing_time", 1, 3600, 5, &secs) ==
	    -1) {
		json_object_put(body);
		return;
	}
	json_object_put(body);
	args = json_object_new_array();
	kwargs = json_object_new_object();
	json_object_object_add(kwargs, "report_type",
	    json_object_new_string(type));
	json_object_object_add(kwargs, "pages", json_object_new_int64(pages));
	json_object_object_add(kwargs, "processing_time",
	    json_object_new_int64(secs));
	memset(&j, 0, sizeof(j));
	j.task = "reports.generate_heavy_report";
	j.queue = http_task_queue(j.task, "reports", &prio);
	j.priority = prio;
	j.job_type = "heavy";
	j.args = args;
	j.kwargs = kwargs;
	extra = json_object_new_object();
	json_object_object_add(extra, "report_type",
	    json_object_new_string(type));
	json_object_object_add(extra, "pages", json_object_new_int64(pages));
	json_object_object_add(extra, "processing_time",
	    json_object_new_int64(secs));
	submit(&j, r, extra);
	json_object_put(args);
	json_object_put(kwargs);
}

static void
get_jobs(struct http_req *q, struct http_resp *r)
{
	PGresult	*res;
	const char	*st, *queue, *v[4];
	char		 lim[16], off[24];
	long long	 limit, offset;
	int		 i, down;

	st = http_arg(q, "status");
	if (st && strcmp(st, "completed") == 0)
		st = "succeeded";	/* the design note's word */
	if (st && *st == '\0')
		st = NULL;
	for (i = 0; st && api_statuses[i]; i++)
		if (strcmp(st, api_statuses[i]) == 0)
			break;
	if (st && api_statuses[i] == NULL) {
		http_error(r, 422, "status must be one of completed, pending, "
		    "queued, started, retrying, succeeded, failed, revoked",
		    "status");
		return;
	}
	queue = http_arg(q, "queue");
	if (queue && *queue == '\0')
		queue = NULL;
	if (queue && strlen(queue) >= SB_QUEUELEN) {
		http_error(r, 422, "no such queue", "queue");
		return;
	}
	if (int_param(q, r, NULL, "limit", 1, HTTP_JOBS_MAXLIMIT, 20,
	    &limit) == -1 || int_param(q, r, NULL, "offset", 0, 1000000000,
	    0, &offset) == -1)
		return;
	snprintf(lim, sizeof(lim), "%lld", limit);
	snprintf(off, sizeof(off), "%lld", offset);
	v[0] = st;
	v[1] = queue;
	v[2] = lim;
	v[3] = off;
	if ((res = http_pg_query(sql_list, 4, v, &down)) == NULL) {
		db_unavailable(r, down);
		return;
	}
	reply_pg_json(r, res);
	PQclear(res);
}

/* A job reference: a job id, or a task id.  0, or -1 (answered 400). */
static int
job_ref(const char *ref, const char **id, const char **task,
    struct http_resp *r)
{
	long long	 n;
	size_t		 i;

	*id = *task = NULL;
	if (http_parse_int(ref, 1, INT64_MAX, &n) == 0) {
		*id = ref;
		return 0;
	}
	for (i = 0; ref[i]; i++)
		if (!isalnum((unsigned char)ref[i]) && ref[i] != '-' &&
		    ref[i] != '_')
			break;
	if (ref[i] != '\0' || i == 0 || i > 64) {
		http_error(r, 400, "job_id must be a job number or a task id",
		    "job_id");
		return -1;
	}
	*task = ref;
	return 0;
}

void
api_job_detail(const char *ref, struct http_resp *r)
{
	PGresult	*res;
	const char	*v[2];
	int		 down;

	if (job_ref(ref, &v[0], &v[1], r) == -1)
		return;
	if ((res = http_pg_query(sql_detail, 2, v, &down)) == NULL) {
		db_unavailable(r, down);
		return;
	}
	if (PQntuples(res) == 0)
		http_error(r, 404, "no such job", "job_id");
	else
		reply_pg_json(r, res);
	PQclear(res);
}

void
api_job_cancel(const char *ref, const char *by, struct http_resp *r)
{
	PGresult	*res;
	json_object	*o;
	const char	*v[2];
	char		 id[32], task[80], status[32], detail[128];
	int		 down;

	if (job_ref(ref, &v[0], &v[1], r) == -1)
		return;
	if ((res = http_pg_query(sql_find, 2, v, &down)) == NULL) {
		db_unavailable(r, down);
		return;
	}
	if (PQntuples(res) == 0) {
		PQclear(res);
		http_error(r, 404, "no such job", "job_id");
		return;
	}
	snprintf(id, sizeof(id), "%s", PQgetvalue(res, 0, 0));
	snprintf(task, sizeof(task), "%s", PQgetvalue(res, 0, 1));
	snprintf(status, sizeof(status), "%s", PQgetvalue(res, 0, 2));
	PQclear(res);
	if (strcmp(status, "succeeded") == 0 || strcmp(status, "failed") == 0 ||
	    strcmp(status, "revoked") == 0)
		goto finished;
	/* A pending job never reached the broker: the row is enough. */
	if (http_revoke(task) == -1 && strcmp(status, "pending") != 0) {
		http_error(r, 503, "broker unavailable: cannot revoke", NULL);
		return;
	}
	snprintf(detail, sizeof(detail), "{\"by\":\"%s\",\"terminate\":true,"
	    "\"previous\":\"%s\"}", by, status);
	v[0] = id;
	v[1] = detail;
	if ((res = http_pg_query(sql_cancel, 2, v, &down)) == NULL) {
		db_unavailable(r, down);
		return;
	}
	if (strcmp(PQgetvalue(res, 0, 0), "0") == 0) {
		/* It finished while we were revoking it. */
		PQclear(res);
		snprintf(status, sizeof(status), "finished");
		goto finished;
	}
	PQclear(res);
	o = json_object_new_object();
	json_object_object_add(o, "job_id", json_object_new_int64(atoll(id)));
	json_object_object_add(o, "task_id", json_object_new_string(task));
	json_object_object_add(o, "status", json_object_new_string("revoked"));
	json_object_object_add(o, "previous_status",
	    json_object_new_string(status));
	http_reply_json(r, 200, o);
	return;
finished:
	o = json_object_new_object();
	json_object_object_add(o, "error", json_object_new_string(
	    "job already finished"));
	json_object_object_add(o, "parameter", json_object_new_string(
	    "job_id"));
	json_object_object_add(o, "status", json_object_new_string(status));
	http_reply_json(r, 409, o);
}

static int
method(struct http_req *q, struct http_resp *r, const char *allow)
{
	char m[16];

	snprintf(m, sizeof(m), "%s", q->method);
	if (strcmp(m, "GET") == 0 && strstr(allow, "GET"))
		return 1;
	if (strstr(allow, m) && (strcmp(m, "POST") == 0 ||
	    strcmp(m, "DELETE") == 0))
		return 1;
	http_error(r, 405, "method not allowed", NULL);
	r->allow = allow;
	return 0;
}

void
api_route(struct http_req *q, struct http_resp *r)
{
	const char *p = q->path;

	if (strcmp(p, API_PREFIX "/dummy") == 0 ||
	    strcmp(p, "/reports/dummy") == 0) {
		if (method(q, r, "POST"))
			post_dummy(q, r);
	} else if (strcmp(p, API_PREFIX "/heavy") == 0) {
		if (method(q, r, "POST"))
			post_heavy(q, r);
	} else if (strcmp(p, API_PREFIX "/jobs") == 0 ||
	    strcmp(p, API_PREFIX "/jobs/") == 0) {
		if (method(q, r, "GET"))
			get_jobs(q, r);
	} else if (strncmp(p, API_JOBS, API_JOBSLEN) == 0 &&
	    strchr(p + API_JOBSLEN, '/') == NULL) {
		if (!method(q, r, "GET, DELETE"))
			return;
		if (strcmp(q->method, "DELETE") == 0)
			api_job_cancel(p + API_JOBSLEN, "api", r);
		else
			api_job_detail(p + API_JOBSLEN, r);
	} else if (strcmp(p, API_PREFIX "/queues/status") == 0) {
		if (method(q, r, "GET"))
			api_queues_status(q, r);
	} else
		http_error(r, 404, "no such route", NULL);
}
