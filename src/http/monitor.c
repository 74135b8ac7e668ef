/*
 * monitor.c - the monitor (Flower's place, port 5555): the page, built
 * into the binary from share/monitor, and its overview and graph data.
 * Task lists, details and the revoke/retry actions are in
 * monitor_tasks.c.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/message.h"
#include "common/util.h"
#include "http/http_int.h"

#define MON_API		"/monitor/api/"
#define MON_TASKS	MON_API "tasks/"
#define MON_TASKSLEN	(sizeof(MON_TASKS) - 1)

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

/* The q-quantile of a duration histogram, interpolated in its bucket. */
static double
quantile(const uint64_t *hist, double q)
{
	uint64_t	 n = 0, cum = 0;
	double		 lo, hi, rank;
	int		 k;

	for (k = 0; k < SB_NHIST; k++)
		n += hist[k];
	if (n == 0)
		return 0;
	rank = q * n;
	for (k = 0; k < SB_NHIST; k++) {
		if (cum + hist[k] >= rank && hist[k] > 0) {
			lo = k == 0 ? 0 : sb_hist_bounds[k - 1];
			hi = sb_hist_bounds[k];
			if (hi >= 1e300)
				return lo;
			return lo + (hi - lo) * (rank - cum) / hist[k];
		}
		cum += hist[k];
	}
	return sb_hist_bounds[SB_NHIST - 2];
}

static json_object *
jdouble(double v)
{
	return json_object_new_double(round(v * 1000) / 1000);
}

static json_object *
workers_json(int64_t now)
{
	json_object	*arr = json_object_new_array(), *e;
	char		 id[SB_TASKIDLEN], name[SB_TASKNAMELEN];
	int64_t		 since;
	int		 i, k;

	for (i = 0; i < (int)http.sb->high; i++) {
		const struct sb_slot *s = &http.sb->slots[i];
		uint64_t fail = 0, ok = 0;

		if (!s->configured || s->role != SB_ROLE_WORKER)
			continue;
		e = json_object_new_object();
		json_object_object_add(e, "queue", json_object_new_string(
		    s->queue));
		json_object_object_add(e, "index", json_object_new_int(
		    s->index));
		json_object_object_add(e, "pid", json_object_new_int(s->pid));
		json_object_object_add(e, "state", json_object_new_string(
		    s->parked ? "parked" : s->state == SB_FREE ? "down" :
		    sb_state_name(s->state)));
		if (s->state == SB_BUSY && sb_read_task(s, id, sizeof(id), name,
		    sizeof(name), &since)) {
			json_object_object_add(e, "task_id",
			    json_object_new_string(id));
			json_object_object_add(e, "task",
			    json_object_new_string(name));
			json_object_object_add(e, "busy_seconds", jdouble(
			    since > 0 ? (now - since) / 1000.0 : 0));
		}
		for (k = 0; k < SB_NSTATS && s->stats[k].name[0]; k++) {
			ok += s->stats[k].count[SB_SUCCEEDED];
			fail += s->stats[k].count[SB_FAILED];
		}
		json_object_object_add(e, "processed",
		    json_object_new_int64(s->processed));
		json_object_object_add(e, "succeeded",
		    json_object_new_int64(ok));
		json_object_object_add(e, "failed",
		    json_object_new_int64(fail));
		json_object_object_add(e, "restarts",
		    json_object_new_int64(s->restarts));
		json_object_object_add(e, "rss", json_object_new_int64(
		    s->pid > 0 ? s->rss : 0));
		json_object_object_add(e, "last_exit",
		    json_object_new_int(s->last_status));
		json_object_array_add(arr, e);
	}
	return arr;
}

static json_object *
processes_json(void)
{
	static const char *const roles[] = { "worker", "control", "beat",
	    "http" };
	json_object	*arr = json_object_new_array(), *e;
	int		 i;

	for (i = 0; i < (int)http.sb->high; i++) {
		const struct sb_slot *s = &http.sb->slots[i];

		if (!s->configured || s->role == SB_ROLE_WORKER ||
		    s->role < 0 || s->role > SB_ROLE_HTTP)
			continue;
		e = json_object_new_object();
		json_object_object_add(e, "role",
		    json_object_new_string(roles[s->role]));
		json_object_object_add(e, "pid", json_object_new_int(s->pid));
		json_object_object_add(e, "state", json_object_new_string(
		    s->state == SB_FREE ? "down" : sb_state_name(s->state)));
		json_object_object_add(e, "restarts",
		    json_object_new_int64(s->restarts));
		json_object_array_add(arr, e);
	}
	return arr;
}

static json_object *
queues_json(struct http_agg *a, int *broker)
{
	json_object	*arr = json_object_new_array(), *e;
	long long	 depth[MSG_NBUCKETS], tot;
	double		 since, proc, fail, now = now_unix();
	size_t		 i;
	int		 b, known;

	for (i = 0; i < a->nq; i++) {
		const struct http_qstat *q = &a->q[i];

		e = json_object_new_object();
		json_object_object_add(e, "name", json_object_new_string(
		    q->name));
		json_object_object_add(e, "concurrency",
		    json_object_new_int(q->configured));
		json_object_object_add(e, "priority",
		    json_object_new_int(q->priority));
		json_object_object_add(e, "busy", json_object_new_int(q->busy));
		json_object_object_add(e, "idle", json_object_new_int(q->idle));
		json_object_object_add(e, "starting",
		    json_object_new_int(q->starting));
		json_object_object_add(e, "down", json_object_new_int(q->down +
		    q->stopping));
		json_object_object_add(e, "parked",
		    json_object_new_int(q->parked));
		if (http_queue_depths(q->name, depth) == -1)
			*broker = 0;
		for (b = 0, tot = 0; b < MSG_NBUCKETS; b++)
			tot += depth[b] > 0 ? depth[b] : 0;
		json_object_object_add(e, "messages", depth[0] < 0 ? NULL :
		    json_object_new_int64(tot));
		since = http_oldest_since(q->name, &known);
		json_object_object_add(e, "oldest_age", depth[0] < 0 ||
		    tot == 0 || since <= 0 ? NULL : jdouble(now - since));
		http_rates(q->name, &proc, &fail);
		json_object_object_add(e, "rate", jdouble(proc));
		json_object_object_add(e, "fail_rate", jdouble(fail));
		json_object_object_add(e, "succeeded",
		    json_object_new_int64(q->count[SB_SUCCEEDED]));
		json_object_object_add(e, "failed",
		    json_object_new_int64(q->count[SB_FAILED]));
		json_object_object_add(e, "restarts",
		    json_object_new_int64(q->restarts));
		json_object_array_add(arr, e);
	}
	return arr;
}

static json_object *
task_stats_json(struct http_agg *a)
{
	json_object	*arr = json_object_new_array(), *e;
	uint64_t	 n;
	size_t		 i;
	int		 k;

	for (i = 0; i < a->nt; i++) {
		const struct http_tstat *t = &a->t[i];

		for (k = 0, n = 0; k < SB_NHIST; k++)
			n += t->hist[k];
		e = json_object_new_object();
		json_object_object_add(e, "task", json_object_new_string(
		    t->task));
		json_object_object_add(e, "queue", json_object_new_string(
		    t->queue));
		json_object_object_add(e, "succeeded",
		    json_object_new_int64(t->count[SB_SUCCEEDED]));
		json_object_object_add(e, "failed",
		    json_object_new_int64(t->count[SB_FAILED]));
		json_object_object_add(e, "retried",
		    json_object_new_int64(t->count[SB_RETRIED]));
		json_object_object_add(e, "revoked",
		    json_object_new_int64(t->count[SB_REVOKED]));
		json_object_object_add(e, "active",
		    json_object_new_int(t->active));
		json_object_object_add(e, "avg_seconds", jdouble(n ?
		    t->sum / n : 0));
		json_object_object_add(e, "p50_seconds",
		    jdouble(quantile(t->hist, 0.5)));
		json_object_object_add(e, "p95_seconds",
		    jdouble(quantile(t->hist, 0.95)));
		json_object_array_add(arr, e);
	}
	return arr;
}

static void
overview(struct http_resp *r)
{
	struct http_agg	 a;
	json_object	*o, *tot;
	int64_t		 now = mono_ms();
	int		 broker = 1;

	http_agg_collect(&a);
	o = json_object_new_object();
	json_object_object_add(o, "host", json_object_new_string(
	    http.cfg->hostname ? http.cfg->hostname : ""));
	json_object_object_add(o, "version", json_object_new_string(
	    PACKAGE_VERSION));
	json_object_object_add(o, "time", jdouble(now_unix()));
	json_object_object_add(o, "uptime_seconds", jdouble(
	    (now - http.sb->started_ms) / 1000.0));
	json_object_object_add(o, "master_pid",
	    json_object_new_int(http.sb->master_pid));
	json_object_object_add(o, "auth", json_object_new_boolean(
	    http.token != NULL));
	json_object_object_add(o, "database", json_object_new_boolean(
	    http.has_db));
	json_object_object_add(o, "queues", queues_json(&a, &broker));
	json_object_object_add(o, "broker", json_object_new_string(broker ?
	    "ok" : "unavailable"));
	json_object_object_add(o, "workers", workers_json(now));
	json_object_object_add(o, "processes", processes_json());
	json_object_object_add(o, "tasks", task_stats_json(&a));
	tot = json_object_new_object();
	json_object_object_add(tot, "succeeded",
	    json_object_new_int64(a.total[SB_SUCCEEDED]));
	json_object_object_add(tot, "failed",
	    json_object_new_int64(a.total[SB_FAILED]));
	json_object_object_add(tot, "retried",
	    json_object_new_int64(a.total[SB_RETRIED]));
	json_object_object_add(tot, "revoked",
	    json_object_new_int64(a.total[SB_REVOKED]));
	json_object_object_add(tot, "avg_seconds", jdouble(a.nsum ?
	    a.sum / a.nsum : 0));
	json_object_object_add(o, "totals", tot);
	http_agg_free(&a);
	http_reply_json(r, 200, o);
}

static void
asset(const char *path, struct http_resp *r)
{
	const struct http_asset *a;

	if (strcmp(path, "/index.html") == 0)
		path = "/";
	for (a = http_assets; a->path; a++)
		if (strcmp(a->path, path) == 0) {
			r->status = 200;
			r->ctype = a->ctype;
			r->static_body = a->data;
			r->len = a->len;
			return;
		}
	if (strcmp(path, "/favicon.ico") == 0) {
		r->status = 204;
		r->ctype = "image/x-icon";
		r->static_body = "";
		return;
	}
	http_error(r, 404, "no such page", NULL);
}

void
monitor_route(struct http_req *q, struct http_resp *r)
{
	const char	*p = q->path, *id, *slash, *since;
	char		 ref[80];
	int		 get = strcmp(q->method, "GET") == 0;

	if (strncmp(p, MON_API, sizeof(MON_API) - 1) != 0) {
		if (!get) {
			http_error(r, 405, "method not allowed", NULL);
			r->allow = "GET";
		} else
			asset(p, r);
		return;
	}
	if (strncmp(p, MON_TASKS, MON_TASKSLEN) == 0) {
		id = p + MON_TASKSLEN;
		slash = strchr(id, '/');
		snprintf(ref, sizeof(ref), "%.*s", slash ? (int)(slash - id) :
		    (int)strlen(id), id);
		if (slash == NULL && get)
			monitor_task(q, r, ref);
		else if (slash && strcmp(q->method, "POST") == 0)
			monitor_action(q, r, ref, slash + 1);
		else {
			http_error(r, 405, "method not allowed", NULL);
			r->allow = slash ? "POST" : "GET";
		}
		return;
	}
	if (!get) {
		http_error(r, 405, "method not allowed", NULL);
		r->allow = "GET";
	} else if (strcmp(p, MON_API "overview") == 0)
		overview(r);
	else if (strcmp(p, MON_API "tasks") == 0)
		monitor_tasks(q, r);
	else if (strcmp(p, MON_API "series") == 0) {
		since = http_arg(q, "since");
		http_reply_json(r, 200, http_series_json(since ?
		    atof(since) : 0));
	} else
		http_error(r, 404, "no such route", NULL);
}
