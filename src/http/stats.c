/*
 * stats.c - the scoreboard summed per queue and per task, and queue
 * depths from the broker.  /metrics, /health, the queue status route and
 * the monitor all read these, so they agree with each other.
 *
 * Counters live in the worker slots and survive a worker's death; the
 * sum over slots is what a Prometheus counter needs.  The scoreboard is
 * read without locks: a number may be one task behind another, never
 * torn in a way that matters for monitoring.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/message.h"
#include "broker/redis.h"
#include "http/http_int.h"

#define HTTP_MAXTSTATS	1024	/* task/queue pairs, then "other" */

int
http_slot_live(const struct sb_slot *s)
{
	pid_t pid = s->pid;

	if (pid <= 0 || s->parked ||
	    (s->state != SB_IDLE && s->state != SB_BUSY))
		return 0;
	return kill(pid, 0) == 0 || errno == EPERM;
}

struct http_qstat *
http_agg_queue(struct http_agg *a, const char *name)
{
	struct http_qstat	*q;
	size_t			 i;

	for (i = 0; i < a->nq; i++)
		if (strcmp(a->q[i].name, name) == 0)
			return &a->q[i];
	if (a->nq == HTTP_MAXQ)
		return NULL;
	q = &a->q[a->nq++];
	memset(q, 0, sizeof(*q));
	snprintf(q->name, sizeof(q->name), "%s", name);
	q->concurrency = -1;
	return q;
}

static struct http_tstat *
tstat(struct http_agg *a, const char *task, const char *queue)
{
	struct http_tstat	*t;
	size_t			 i, cap;

	for (i = 0; i < a->nt; i++)
		if (strcmp(a->t[i].task, task) == 0 &&
		    strcmp(a->t[i].queue, queue) == 0)
			return &a->t[i];
	if (a->nt == HTTP_MAXTSTATS)
		return strcmp(task, "other") == 0 ? NULL :
		    tstat(a, "other", queue);
	if (a->nt == a->tcap) {
		cap = a->tcap ? a->tcap * 2 : 32;
		if ((t = realloc(a->t, cap * sizeof(*t))) == NULL)
			return NULL;
		a->t = t;
		a->tcap = cap;
	}
	t = &a->t[a->nt++];
	memset(t, 0, sizeof(*t));
	snprintf(t->task, sizeof(t->task), "%s", task);
	snprintf(t->queue, sizeof(t->queue), "%s", queue);
	return t;
}

static void
add_slot(struct http_agg *a, const struct sb_slot *s)
{
	struct http_qstat	*q;
	struct http_tstat	*t;
	char			 name[SB_TASKNAMELEN];
	int			 k, o, b;

	if ((q = http_agg_queue(a, s->queue)) == NULL)
		return;
	if (s->configured) {
		q->configured++;
		if (s->parked)
			q->parked++;
		else
			switch (s->state) {
			case SB_STARTING:	q->starting++; break;
			case SB_IDLE:		q->idle++; break;
			case SB_BUSY:		q->busy++; break;
			case SB_STOPPING:	q->stopping++; break;
			default:		q->down++; break;
			}
		if (s->pid > 0 && s->rss > 0)
			q->rss += s->rss;
	}
	q->restarts += s->restarts;
	for (k = 0; k < SB_NEXITS; k++)
		q->exits[k] += s->exits[k];
	q->timelimit_kills += s->kills[SB_KILL_TIMELIMIT];
	q->broker_reconnects += s->broker_reconnects;
	q->processed += s->processed;
	for (k = 0; k < SB_NSTATS && s->stats[k].name[0]; k++) {
		const struct sb_taskstat *st = &s->stats[k];
		char tn[SB_TASKNAMELEN];

		memcpy(tn, st->name, sizeof(tn));
		tn[sizeof(tn) - 1] = '\0';
		if ((t = tstat(a, tn, s->queue)) == NULL)
			continue;
		for (o = 0; o < SB_NOUTCOMES; o++) {
			t->count[o] += st->count[o];
			q->count[o] += st->count[o];
			a->total[o] += st->count[o];
		}
		for (b = 0; b < SB_NHIST; b++) {
			t->hist[b] += st->hist[b];
			a->nsum += st->hist[b];
		}
		t->sum += st->seconds_sum;
		a->sum += st->seconds_sum;
	}
	if (s->state == SB_BUSY && s->pid > 0 &&
	    sb_read_task(s, NULL, 0, name, sizeof(name), NULL) &&
	    name[0] && (t = tstat(a, name, s->queue)) != NULL)
		t->active++;
}

/* Fills a (free with http_agg_free); returns 0. */
int
http_agg_collect(struct http_agg *a)
{
	const struct config	*cfg = http.cfg;
	struct http_qstat	*q;
	size_t			 i;

	memset(a, 0, sizeof(*a));
	for (i = 0; i < cfg->nqueues; i++)
		if ((q = http_agg_queue(a, cfg->queues[i].name)) != NULL) {
			q->concurrency = cfg->queues[i].concurrency;
			q->priority = cfg->queues[i].priority;
		}
	for (i = 0; i < (size_t)http.sb->high; i++) {
		const struct sb_slot *s = &http.sb->slots[i];

		if (s->role != SB_ROLE_WORKER || s->queue[0] == '\0')
			continue;
		add_slot(a, s);
	}
	return 0;
}

void
http_agg_free(struct http_agg *a)
{
	free(a->t);
	a->t = NULL;
	a->nt = a->tcap = 0;
}

/*
 * LLEN of the queue's four priority lists, in the order of
 * msg_priority_steps.  Returns 0, or -1 with every depth -1 when the
 * broker does not answer.
 */
int
http_queue_depths(const char *queue, long long depth[4])
{
	redisContext	*c;
	redisReply	*r;
	void		*vr;
	char		*list;
	int		 i, sent = 0, rc = 0;

	for (i = 0; i < MSG_NBUCKETS; i++)
		depth[i] = -1;
	if ((c = http_redis(HTTP_BROKER)) == NULL)
		return -1;
	for (i = 0; i < MSG_NBUCKETS; i++) {
		if ((list = msg_bucket_list(queue, msg_priority_steps[i])) ==
		    NULL)
			break;
		redisAppendCommand(c, "LLEN %s", list);
		free(list);
		sent++;
	}
	for (i = 0; i < sent; i++) {
		if (redisGetReply(c, &vr) != REDIS_OK) {
			http_redis_check(HTTP_BROKER);
			return -1;
		}
		r = vr;
		if (r->type == REDIS_REPLY_INTEGER)
			depth[i] = r->integer;
		else
			rc = -1;
		freeReplyObject(r);
	}
	return sent == MSG_NBUCKETS ? rc : -1;
}
