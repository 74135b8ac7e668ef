/*
 * sampler.c - what the http child learns by watching over time.
 *
 * Every HTTP_SAMPLE_MS it stores the scoreboard totals and queue depths
 * in a ring of one hour, which the monitor draws and the queue status
 * turns into rates.  It also follows the oldest message of each queue:
 * a message carries no send time, so the time it has waited since is
 * taken, best first, from its job row (queued_at), from its ETA, or from
 * when the sampler first saw it at the tail of its list.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/message.h"
#include "common/util.h"
#include "http/http_int.h"

#define HTTP_CHECK_MS	500

struct http_sample {
	double		 t;
	uint64_t	 total[SB_NOUTCOMES];
	double		 sum;
	uint64_t	 n;
	int		 busy, live;
	long long	 depth[HTTP_MAXQ];
	uint64_t	 qdone[HTTP_MAXQ], qfail[HTTP_MAXQ];
};

struct http_tail {
	char		 id[64];
	double		 since;
	int		 known;		/* exact, not first seen */
};

static struct {
	pthread_t		 th;
	int			 running;
	pthread_mutex_t		 mu;
	pthread_cond_t		 cv;
	char			 q[HTTP_MAXQ][SB_QUEUELEN];
	size_t			 nq;
	struct http_sample	*ring;
	size_t			 head, n;
	struct http_tail	 tail[HTTP_MAXQ][MSG_NBUCKETS];
} S = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

static int
qindex(const char *name)
{
	size_t i;

	for (i = 0; i < S.nq; i++)
		if (strcmp(S.q[i], name) == 0)
			return i;
	if (S.nq == HTTP_MAXQ)
		return -1;
	snprintf(S.q[S.nq], SB_QUEUELEN, "%s", name);
	return S.nq++;
}

/* When the job of task id was put on its queue, from the database. */
static int
queued_at(const char *id, double *t)
{
	PGresult	*res;
	const char	*v[1] = { id };
	int		 ok = 0;

	if (!http.has_db)
		return 0;
	res = http_pg_query("SELECT extract(epoch FROM queued_at) FROM jobs "
	    "WHERE task_id = $1 AND queued_at IS NOT NULL", 1, v, NULL);
	if (res && PQntuples(res) == 1) {
		*t = atof(PQgetvalue(res, 0, 0));
		ok = 1;
	}
	PQclear(res);
	return ok;
}

/* Called without S.mu: the job lookup waits on the database. */
static void
follow_tail(int qi, int b, const char *raw, double now)
{
	struct http_tail	*t = &S.tail[qi][b];
	json_object		*env, *h, *v;
	const char		*id = "", *eta = NULL;
	double			 when, since = now;
	int			 same, known = 0;

	env = json_tokener_parse(raw);
	if (env && json_object_object_get_ex(env, "headers", &h)) {
		if (json_object_object_get_ex(h, "id", &v) &&
		    json_object_is_type(v, json_type_string))
			id = json_object_get_string(v);
		if (json_object_object_get_ex(h, "eta", &v) &&
		    json_object_is_type(v, json_type_string))
			eta = json_object_get_string(v);
	}
	pthread_mutex_lock(&S.mu);
	same = t->id[0] != '\0' && strcmp(t->id, id) == 0;
	pthread_mutex_unlock(&S.mu);
	if (!same) {
		if (eta && msg_parse_iso8601(eta, &when) == 0 && when <= now) {
			since = when;
			known = 1;
		}
		if (id[0] && queued_at(id, &when) && when <= now) {
			since = when;
			known = 1;
		}
		pthread_mutex_lock(&S.mu);
		snprintf(t->id, sizeof(t->id), "%s", id[0] ? id : "?");
		t->since = since;
		t->known = known;
		pthread_mutex_unlock(&S.mu);
	}
	json_object_put(env);
}

/* Depths and tails of every queue; S.mu is NOT held (Redis waits). */
static void
sample_broker(struct http_sample *smp, double now)
{
	redisContext	*c = http_redis(HTTP_BROKER);
	redisReply	*r;
	void		*vr;
	char		*list;
	size_t		 i;
	int		 b;

	for (i = 0; i < S.nq; i++)
		smp->depth[i] = -1;
	if (c == NULL)
		return;
	for (i = 0; i < S.nq; i++)
		for (b = 0; b < MSG_NBUCKETS; b++) {
			list = msg_bucket_list(S.q[i], msg_priority_steps[b]);
			redisAppendCommand(c, "LLEN %s", list ? list : "");
			redisAppendCommand(c, "LINDEX %s -1", list ? list : "");
			free(list);
		}
	for (i = 0; i < S.nq; i++)
		for (b = 0; b < MSG_NBUCKETS; b++) {
			if (redisGetReply(c, &vr) != REDIS_OK)
				goto broken;
			r = vr;
			if (r->type == REDIS_REPLY_INTEGER)
				smp->depth[i] = (smp->depth[i] < 0 ? 0 :
				    smp->depth[i]) + r->integer;
			freeReplyObject(r);
			if (redisGetReply(c, &vr) != REDIS_OK)
				goto broken;
			r = vr;
			if (r->type == REDIS_REPLY_STRING)
				follow_tail(i, b, r->str, now);
			else {
				pthread_mutex_lock(&S.mu);
				S.tail[i][b].id[0] = '\0';
				pthread_mutex_unlock(&S.mu);
			}
			freeReplyObject(r);
		}
	return;
broken:
	http_redis_check(HTTP_BROKER);
}

static void
take_sample(void)
{
	struct http_sample	 smp;
	struct http_agg		 a;
	size_t			 i;
	int			 k, qi, map[HTTP_MAXQ];

	memset(&smp, 0, sizeof(smp));
	smp.t = now_unix();
	http_agg_collect(&a);
	/* Only this thread adds queues, always under the lock. */
	pthread_mutex_lock(&S.mu);
	for (i = 0; i < a.nq; i++)
		map[i] = qindex(a.q[i].name);
	pthread_mutex_unlock(&S.mu);
	sample_broker(&smp, smp.t);
	for (k = 0; k < SB_NOUTCOMES; k++)
		smp.total[k] = a.total[k];
	smp.sum = a.sum;
	smp.n = a.nsum;
	for (i = 0; i < a.nq; i++) {
		smp.busy += a.q[i].busy;
		smp.live += a.q[i].busy + a.q[i].idle;
		if ((qi = map[i]) < 0)
			continue;
		smp.qdone[qi] = a.q[i].count[SB_SUCCEEDED] +
		    a.q[i].count[SB_FAILED];
		smp.qfail[qi] = a.q[i].count[SB_FAILED];
	}
	http_agg_free(&a);
	pthread_mutex_lock(&S.mu);
	S.ring[S.head] = smp;
	S.head = (S.head + 1) % HTTP_NSAMPLES;
	if (S.n < HTTP_NSAMPLES)
		S.n++;
	pthread_mutex_unlock(&S.mu);
}

static void *
sampler_loop(void *arg)
{
	struct timespec	 ts;
	int64_t		 next = 0, now;

	pthread_mutex_lock(&S.mu);
	while (!http.stop) {
		now = mono_ms();
		if (now >= next) {
			pthread_mutex_unlock(&S.mu);
			take_sample();
			pthread_mutex_lock(&S.mu);
			next = now + HTTP_SAMPLE_MS;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += HTTP_CHECK_MS * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		if (!http.stop)
			pthread_cond_timedwait(&S.cv, &S.mu, &ts);
	}
	pthread_mutex_unlock(&S.mu);
	return NULL;
}

int
http_sampler_start(void)
{
	if ((S.ring = calloc(HTTP_NSAMPLES, sizeof(*S.ring))) == NULL)
		return -1;
	if (pthread_create(&S.th, NULL, sampler_loop, NULL) != 0) {
		free(S.ring);
		S.ring = NULL;
		return -1;
	}
	S.running = 1;
	return 0;
}

void
http_sampler_stop(void)
{
	if (!S.running)
		return;
	pthread_mutex_lock(&S.mu);
	pthread_cond_broadcast(&S.cv);
	pthread_mutex_unlock(&S.mu);
	pthread_join(S.th, NULL);
	S.running = 0;
	free(S.ring);
	S.ring = NULL;
}

double
http_oldest_since(const char *queue, int *known)
{
	double	 since = 0;
	size_t	 i;
	int	 b;

	*known = 0;
	pthread_mutex_lock(&S.mu);
	for (i = 0; i < S.nq; i++) {
		if (strcmp(S.q[i], queue) != 0)
			continue;
		for (b = 0; b < MSG_NBUCKETS; b++) {
			const struct http_tail *t = &S.tail[i][b];
			if (t->id[0] == '\0')
				continue;
			if (since == 0 || t->since < since) {
				since = t->since;
				*known = t->known;
			}
		}
	}
	pthread_mutex_unlock(&S.mu);
	return since;
}

/* Over the samples of the last minute (or fewer, just after start). */
void
http_rates(const char *queue, double *processed, double *failed)
{
	const struct http_sample *a, *b;
	size_t	 i, back;
	double	 dt;

	*processed = *failed = 0;
	pthread_mutex_lock(&S.mu);
	if (S.ring == NULL || S.n < 2)
		goto out;
	back = 60000 / HTTP_SAMPLE_MS;
	if (back > S.n - 1)
		back = S.n - 1;
	b = &S.ring[(S.head + HTTP_NSAMPLES - 1) % HTTP_NSAMPLES];
	a = &S.ring[(S.head + HTTP_NSAMPLES - 1 - back) % HTTP_NSAMPLES];
	if ((dt = b->t - a->t) <= 0)
		goto out;
	for (i = 0; i < S.nq; i++) {
		if (strcmp(S.q[i], queue) != 0)
			continue;
		if (b->qdone[i] >= a->qdone[i])
			*processed = (b->qdone[i] - a->qdone[i]) / dt;
		if (b->qfail[i] >= a->qfail[i])
			*failed = (b->qfail[i] - a->qfail[i]) / dt;
	}
out:
	pthread_mutex_unlock(&S.mu);
}

/*
 * {"interval": s, "queues": [...], "samples": [{"t", "succeeded",
 * "failed", "retried", "revoked", "duration_sum", "duration_count",
 * "busy", "live", "depth": [per queue, null if unknown]}]}, the samples
 * taken after since, oldest first.
 */
json_object *
http_series_json(double since)
{
	json_object	*o, *qs, *arr, *e, *d;
	size_t		 i, k;

	o = json_object_new_object();
	json_object_object_add(o, "interval",
	    json_object_new_double(HTTP_SAMPLE_MS / 1000.0));
	qs = json_object_new_array();
	arr = json_object_new_array();
	pthread_mutex_lock(&S.mu);
	for (i = 0; i < S.nq; i++)
		json_object_array_add(qs, json_object_new_string(S.q[i]));
	for (i = 0; S.ring && i < S.n; i++) {
		const struct http_sample *s = &S.ring[(S.head + HTTP_NSAMPLES -
		    S.n + i) % HTTP_NSAMPLES];
		if (s->t <= since)
			continue;
		e = json_object_new_object();
		json_object_object_add(e, "t", json_object_new_double(
		    floor(s->t * 1000) / 1000));
		json_object_object_add(e, "succeeded",
		    json_object_new_int64(s->total[SB_SUCCEEDED]));
		json_object_object_add(e, "failed",
		    json_object_new_int64(s->total[SB_FAILED]));
		json_object_object_add(e, "retried",
		    json_object_new_int64(s->total[SB_RETRIED]));
		json_object_object_add(e, "revoked",
		    json_object_new_int64(s->total[SB_REVOKED]));
		json_object_object_add(e, "duration_sum",
		    json_object_new_double(s->sum));
		json_object_object_add(e, "duration_count",
		    json_object_new_int64(s->n));
		json_object_object_add(e, "busy", json_object_new_int(s->busy));
		json_object_object_add(e, "live", json_object_new_int(s->live));
		d = json_object_new_array();
		for (k = 0; k < S.nq; k++)
			json_object_array_add(d, s->depth[k] < 0 ? NULL :
			    json_object_new_int64(s->depth[k]));
		json_object_object_add(e, "depth", d);
		json_object_array_add(arr, e);
	}
	pthread_mutex_unlock(&S.mu);
	json_object_object_add(o, "queues", qs);
	json_object_object_add(o, "samples", arr);
	return o;
}
