/*
 * metrics.c - GET /metrics, Prometheus text format 0.0.4.
 *
 * Everything is summed over the worker slots of the scoreboard, so one
 * scrape describes the whole host whatever the number of processes.  The
 * design note's report_jobs_* keep their names; the supervisor's own are
 * celeriac_*, in base units, with _total only on counters.  Broker-side
 * numbers (queue depths, dead letters, beat) are read at scrape time in
 * one pipelined round trip; a missing broker leaves them out and sets
 * celeriac_broker_up to 0.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/message.h"
#include "broker/redis.h"
#include "common/celeriac.h"
#include "common/util.h"
#include "http/http_int.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

static const char *const outcome_names[SB_NOUTCOMES] = {
	"succeeded", "failed", "retried", "revoked"
};

/* A label value with \, " and newline escaped, into buf. */
static const char *
esc(const char *s, char *buf, size_t len)
{
	size_t i = 0;

	for (; *s && i + 3 < len; s++) {
		if (*s == '\\' || *s == '"') {
			buf[i++] = '\\';
			buf[i++] = *s;
		} else if (*s == '\n') {
			buf[i++] = '\\';
			buf[i++] = 'n';
		} else
			buf[i++] = *s;
	}
	buf[i] = '\0';
	return buf;
}

static void
family(struct http_buf *b, const char *name, const char *type,
    const char *help)
{
	http_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
	    type);
}

/* The bound of a histogram bucket as Prometheus writes it. */
static void
le(double v, char *buf, size_t len)
{
	if (v >= 1e300)
		snprintf(buf, len, "+Inf");
	else
		snprintf(buf, len, "%g", v);
}

static void
report_metrics(struct http_buf *b, struct http_agg *a)
{
	char	 t[2 * SB_TASKNAMELEN], q[2 * SB_QUEUELEN], l[32];
	size_t	 i;
	int	 o, k;
	uint64_t cum;

	family(b, "report_jobs_total", "counter",
	    "Tasks finished, by task name, outcome and queue.");
	for (i = 0; i < a->nt; i++)
		for (o = 0; o < SB_NOUTCOMES; o++)
			http_buf_printf(b, "report_jobs_total{job_type=\"%s\","
			    "status=\"%s\",queue=\"%s\"} %llu\n",
			    esc(a->t[i].task, t, sizeof(t)), outcome_names[o],
			    esc(a->t[i].queue, q, sizeof(q)),
			    (unsigned long long)a->t[i].count[o]);
	family(b, "report_jobs_duration_seconds", "histogram",
	    "Run time of finished tasks.");
	for (i = 0; i < a->nt; i++) {
		esc(a->t[i].task, t, sizeof(t));
		esc(a->t[i].queue, q, sizeof(q));
		for (k = 0, cum = 0; k < SB_NHIST; k++) {
			cum += a->t[i].hist[k];
			le(sb_hist_bounds[k], l, sizeof(l));
			http_buf_printf(b, "report_jobs_duration_seconds_bucket"
			    "{job_type=\"%s\",queue=\"%s\",le=\"%s\"} %llu\n",
			    t, q, l, (unsigned long long)cum);
		}
		http_buf_printf(b, "report_jobs_duration_seconds_sum"
		    "{job_type=\"%s\",queue=\"%s\"} %.6f\n", t, q, a->t[i].sum);
		http_buf_printf(b, "report_jobs_duration_seconds_count"
		    "{job_type=\"%s\",queue=\"%s\"} %llu\n", t, q,
		    (unsigned long long)cum);
	}
	family(b, "report_jobs_active", "gauge", "Tasks running now.");
	for (i = 0; i < a->nt; i++)
		http_buf_printf(b, "report_jobs_active{job_type=\"%s\","
		    "queue=\"%s\"} %d\n", esc(a->t[i].task, t, sizeof(t)),
		    esc(a->t[i].queue, q, sizeof(q)), a->t[i].active);
	family(b, "report_jobs_retries_total", "counter",
	    "Retries asked for by tasks.");
	for (i = 0; i < a->nt; i++)
		http_buf_printf(b, "report_jobs_retries_total{job_type=\"%s\","
		    "queue=\"%s\"} %llu\n", esc(a->t[i].task, t, sizeof(t)),
		    esc(a->t[i].queue, q, sizeof(q)),
		    (unsigned long long)a->t[i].count[SB_RETRIED]);
}

static void
worker_metrics(struct http_buf *b, struct http_agg *a)
{
	static const char *const states[] = { "starting", "idle", "busy",
	    "stopping", "down", "parked" };
	char	 q[2 * SB_QUEUELEN];
	size_t	 i;
	int	 k, n[6];

	family(b, "celeriac_workers", "gauge",
	    "Worker processes by queue and state.");
	for (i = 0; i < a->nq; i++) {
		const struct http_qstat *s = &a->q[i];
		n[0] = s->starting;
		n[1] = s->idle;
		n[2] = s->busy;
		n[3] = s->stopping;
		n[4] = s->down;
		n[5] = s->parked;
		esc(s->name, q, sizeof(q));
		for (k = 0; k < 6; k++)
			http_buf_printf(b, "celeriac_workers{queue=\"%s\","
			    "state=\"%s\"} %d\n", q, states[k], n[k]);
	}
	family(b, "celeriac_queue_concurrency", "gauge",
	    "Worker processes configured per queue.");
	for (i = 0; i < a->nq; i++)
		http_buf_printf(b, "celeriac_queue_concurrency{queue=\"%s\"} "
		    "%d\n", esc(a->q[i].name, q, sizeof(q)),
		    a->q[i].configured);
	family(b, "celeriac_queue_parked", "gauge",
	    "1 when the queue's workers are parked after crashing in a loop.");
	for (i = 0; i < a->nq; i++)
		http_buf_printf(b, "celeriac_queue_parked{queue=\"%s\"} %d\n",
		    esc(a->q[i].name, q, sizeof(q)), a->q[i].parked > 0);
	family(b, "celeriac_worker_restarts_total", "counter",
	    "Worker processes that ended, by why they ended.");
	for (i = 0; i < a->nq; i++) {
		int e;
		for (e = 0; e < SB_NEXITS; e++)
			http_buf_printf(b, "celeriac_worker_restarts_total"
			    "{queue=\"%s\",reason=\"%s\"} %llu\n",
			    esc(a->q[i].name, q, sizeof(q)), sb_exit_names[e],
			    (unsigned long long)a->q[i].exits[e]);
	}
	family(b, "celeriac_time_limit_kills_total", "counter",
	    "Workers killed on a hard time limit.");
	for (i = 0; i < a->nq; i++)
		http_buf_printf(b, "celeriac_time_limit_kills_total"
		    "{queue=\"%s\"} %llu\n", esc(a->q[i].name, q, sizeof(q)),
		    (unsigned long long)a->q[i].timelimit_kills);
	family(b, "celeriac_broker_reconnects_total", "counter",
	    "Worker reconnections to the broker after an outage.");
	for (i = 0; i < a->nq; i++)
		http_buf_printf(b, "celeriac_broker_reconnects_total"
		    "{queue=\"%s\"} %llu\n", esc(a->q[i].name, q, sizeof(q)),
		    (unsigned long long)a->q[i].broker_reconnects);
	family(b, "celeriac_worker_resident_memory_bytes", "gauge",
	    "Resident memory of the live workers.");
	for (i = 0; i < a->nq; i++)
		http_buf_printf(b, "celeriac_worker_resident_memory_bytes"
		    "{queue=\"%s\"} %lld\n", esc(a->q[i].name, q, sizeof(q)),
		    (long long)a->q[i].rss);
}

/*
 * One celeriac.beat.last value: {"fire_time" (scheduled), "sent_at",
 * ...} as beat/fire.c records it, or a bare number.  Returns the time
 * it was sent and its lag behind the schedule (-1 when unknown).
 */
static double
beat_time(const char *v, double *lag)
{
	json_object	*o, *x;
	char		*end;
	double		 t = strtod(v, &end), sched = -1;

	*lag = -1;
	if (end != v && *end == '\0')
		return t;
	t = -1;
	if ((o = json_tokener_parse(v)) == NULL)
		return -1;
	if (json_object_object_get_ex(o, "fire_time", &x) &&
	    (json_object_is_type(x, json_type_double) ||
	    json_object_is_type(x, json_type_int)))
		sched = json_object_get_double(x);
	if ((json_object_object_get_ex(o, "sent_at", &x) ||
	    json_object_object_get_ex(o, "time", &x)) &&
	    (json_object_is_type(x, json_type_double) ||
	    json_object_is_type(x, json_type_int)))
		t = json_object_get_double(x);
	if (t < 0)
		t = sched;
	else if (sched >= 0)
		*lag = t > sched ? t - sched : 0;
	json_object_put(o);
	return t;
}

static void
beat_metrics(struct http_buf *b, redisReply *h)
{
	char	 e[300];
	double	 t, lag;
	size_t	 k;

	family(b, "celeriac_beat_last_fire_timestamp_seconds", "gauge",
	    "When each periodic entry was last sent.");
	if (h->type != REDIS_REPLY_ARRAY)
		return;
	for (k = 0; k + 1 < h->elements; k += 2)
		if (h->element[k + 1]->type == REDIS_REPLY_STRING &&
		    (t = beat_time(h->element[k + 1]->str, &lag)) >= 0)
			http_buf_printf(b, "celeriac_beat_last_fire_timestamp_"
			    "seconds{entry=\"%s\"} %.3f\n",
			    esc(h->element[k]->str, e, sizeof(e)), t);
	family(b, "celeriac_beat_last_fire_lag_seconds", "gauge",
	    "How late each entry's last fire was sent after its schedule.");
	for (k = 0; k + 1 < h->elements; k += 2) {
		if (h->element[k + 1]->type != REDIS_REPLY_STRING)
			continue;
		(void)beat_time(h->element[k + 1]->str, &lag);
		if (lag >= 0)
			http_buf_printf(b, "celeriac_beat_last_fire_lag_seconds"
			    "{entry=\"%s\"} %.3f\n",
			    esc(h->element[k]->str, e, sizeof(e)), lag);
	}
}

/* The integer of a reply, or -1 when it is not one (a key of a wrong
 * type answers an error: that one number is left out, not the scrape). */
static long long
integer(const redisReply *r)
{
	return r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
}

static void
depth_metrics(struct http_buf *b, struct http_agg *a, redisReply **r)
{
	char		 q[2 * SB_QUEUELEN];
	long long	 v, tot;
	double		 since, now = now_unix();
	size_t		 i, k;
	int		 known;

	family(b, "celeriac_queue_depth", "gauge",
	    "Messages waiting, by queue and priority bucket.");
	for (i = 0; i < a->nq; i++)
		for (k = 0; k < MSG_NBUCKETS; k++)
			if ((v = integer(r[i * MSG_NBUCKETS + k])) >= 0)
				http_buf_printf(b, "celeriac_queue_depth"
				    "{queue=\"%s\",priority=\"%d\"} %lld\n",
				    esc(a->q[i].name, q, sizeof(q)),
				    msg_priority_steps[k], v);
	family(b, "celeriac_queue_oldest_message_age_seconds", "gauge",
	    "How long the oldest waiting message has waited (0 when the "
	    "queue is empty).");
	for (i = 0; i < a->nq; i++) {
		for (k = 0, tot = 0; k < MSG_NBUCKETS; k++)
			if ((v = integer(r[i * MSG_NBUCKETS + k])) > 0)
				tot += v;
		since = http_oldest_since(a->q[i].name, &known);
		http_buf_printf(b, "celeriac_queue_oldest_message_age_seconds"
		    "{queue=\"%s\"} %.3f\n", esc(a->q[i].name, q, sizeof(q)),
		    tot == 0 || since <= 0 ? 0.0 : now - since);
	}
}

/*
 * Queue depths, dead letters, ETA set and beat, in one round trip.
 * Returns 1 when the broker answered.
 */
static int
broker_metrics(struct http_buf *b, struct http_agg *a)
{
	redisContext	*c = http_redis(HTTP_BROKER);
	redisReply	*r[HTTP_MAXQ * MSG_NBUCKETS + 3];
	void		*vr;
	char		*list;
	size_t		 i, k, n = 0, got;
	long long	 v;

	if (c == NULL)
		return 0;
	for (i = 0; i < a->nq; i++)
		for (k = 0; k < MSG_NBUCKETS; k++) {
			list = msg_bucket_list(a->q[i].name,
			    msg_priority_steps[k]);
			redisAppendCommand(c, "LLEN %s", list ? list : "");
			free(list);
			n++;
		}
	redisAppendCommand(c, "LLEN %s", CELERIAC_DEAD_LETTERS);
	redisAppendCommand(c, "ZCARD %s", "celeriac.eta");
	redisAppendCommand(c, "HGETALL %s", "celeriac.beat.last");
	n += 3;
	for (got = 0; got < n; got++) {
		if (redisGetReply(c, &vr) != REDIS_OK)
			break;
		r[got] = vr;
	}
	if (got == n) {
		depth_metrics(b, a, r);
		i = a->nq * MSG_NBUCKETS;
		family(b, "celeriac_dead_letters", "gauge",
		    "Messages kept in celeriac.dead.");
		if ((v = integer(r[i])) >= 0)
			http_buf_printf(b, "celeriac_dead_letters %lld\n", v);
		family(b, "celeriac_scheduled_messages", "gauge",
		    "Messages waiting for their ETA.");
		if ((v = integer(r[i + 1])) >= 0)
			http_buf_printf(b, "celeriac_scheduled_messages %lld\n",
			    v);
		beat_metrics(b, r[i + 2]);
	} else
		http_redis_check(HTTP_BROKER);
	for (k = 0; k < got; k++)
		freeReplyObject(r[k]);
	return got == n;
}

void
metrics_route(struct http_req *q, struct http_resp *r)
{
	struct http_agg	 a;
	struct http_buf	 b;
	PGresult	*res;
	int		 broker, db = 0;

	if (strcmp(q->method, "GET") != 0) {
		http_error(r, 405, "method not allowed", NULL);
		r->allow = "GET";
		return;
	}
	memset(&b, 0, sizeof(b));
	http_agg_collect(&a);
	report_metrics(&b, &a);
	worker_metrics(&b, &a);
	broker = broker_metrics(&b, &a);
	http_agg_free(&a);
	family(&b, "celeriac_broker_up", "gauge",
	    "1 when the broker answers the http child.");
	http_buf_printf(&b, "celeriac_broker_up %d\n", broker);
	if (http.has_db) {
		res = http_pg_query("SELECT 1", 0, NULL, NULL);
		db = res != NULL;
		PQclear(res);
		family(&b, "celeriac_database_up", "gauge",
		    "1 when the job database answers the http child.");
		http_buf_printf(&b, "celeriac_database_up %d\n", db);
	}
	family(&b, "celeriac_start_time_seconds", "gauge",
	    "When the master started, Unix time.");
	http_buf_printf(&b, "celeriac_start_time_seconds %.3f\n", now_unix() -
	    (mono_ms() - http.sb->started_ms) / 1000.0);
	family(&b, "celeriac_build_info", "gauge", "The running version.");
	http_buf_printf(&b, "celeriac_build_info{version=\"%s\"} 1\n",
	    PACKAGE_VERSION);
	family(&b, "celeriac_up", "gauge", "1 while celeriacd runs.");
	http_buf_printf(&b, "celeriac_up 1\n");
	if (b.oom) {
		http_buf_free(&b);
		http_error(r, 500, "out of memory", NULL);
		return;
	}
	http_reply_text(r, 200, "text/plain; version=0.0.4; charset=utf-8",
	    b.s, b.len);
}
