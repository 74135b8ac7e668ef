/*
 * events.c - Celery event publishing (see events.h).
 */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/envelope.h"
#include "broker/events.h"
#include "broker/message.h"
#include "common/log.h"
#include "common/util.h"

void
events_node_name(const struct config *cfg, char *buf, size_t len)
{
	snprintf(buf, len, "celeriac@%s", cfg->hostname ? cfg->hostname :
	    host_name());
}

int
events_utcoffset(void)
{
	struct tm	tm;
	time_t		now = time(NULL);
	long		west;

	localtime_r(&now, &tm);
	west = -tm.tm_gmtoff;
	/* Python's // rounds toward minus infinity. */
	return (int)(west >= 0 ? west / 3600 : -((-west + 3599) / 3600));
}

static int
events_connect(struct events *e)
{
	char err[256];

	if (e->c)
		return 0;
	e->c = redis_connect(&e->url, 1000, err, sizeof(err));
	e->pending = 0;
	if (e->c == NULL) {
		log_debug("events: %s", err);
		return -1;
	}
	return 0;
}

int
events_init(struct events *e, const struct config *cfg, int pid)
{
	char err[256];

	memset(e, 0, sizeof(*e));
	events_node_name(cfg, e->node, sizeof(e->node));
	e->pid = pid;
	if (redis_url_parse(cfg->broker, &e->url, err, sizeof(err)) == -1)
		return -1;
	return events_connect(e);
}

static void *
events_thread(void *arg)
{
	struct events	*e = arg;
	json_object	*batch;
	struct timespec	 ts;
	double		 due;
	int		 stop;

	for (;;) {
		pthread_mutex_lock(&e->mu);
		while (!e->stop && !e->kick && e->batch == NULL)
			pthread_cond_wait(&e->cv, &e->mu);
		while (!e->stop && !e->kick && e->batch != NULL &&
		    (due = e->batch_t0 + EVENTS_BATCH_DELAY) > now_unix()) {
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec = (time_t)due;
			ts.tv_nsec = (long)((due - (double)ts.tv_sec) * 1e9);
			pthread_cond_timedwait(&e->cv, &e->mu, &ts);
		}
		batch = e->batch;
		e->batch = NULL;
		e->kick = 0;
		stop = e->stop;
		pthread_mutex_unlock(&e->mu);
		if (batch != NULL)
			events_send(e, NULL, batch);
		if (stop)
			return NULL;
	}
}

int
events_start_thread(struct events *e)
{
	sigset_t all, old;

	if (e->threaded)
		return 0;
	pthread_mutex_init(&e->mu, NULL);
	pthread_cond_init(&e->cv, NULL);
	/* The thread takes no signal: they stay the worker's. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	if (pthread_create(&e->thr, NULL, events_thread, e) != 0) {
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		return -1;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	e->threaded = 1;
	return 0;
}

void
events_close(struct events *e)
{
	if (e->threaded) {
		pthread_mutex_lock(&e->mu);
		e->stop = 1;
		pthread_cond_signal(&e->cv);
		pthread_mutex_unlock(&e->mu);
		pthread_join(e->thr, NULL);
		e->threaded = 0;
	}
	json_object_put(e->batch);
	e->batch = NULL;
	if (e->c)
		redisFree(e->c);
	e->c = NULL;
}

json_object *
events_build(struct events *e, const char *type, json_object *fields)
{
	json_object			*ev;
	struct json_object_iterator	 it, end;

	ev = json_object_new_object();
	json_object_object_add(ev, "hostname", json_object_new_string(e->node));
	json_object_object_add(ev, "utcoffset",
	    json_object_new_int(events_utcoffset()));
	json_object_object_add(ev, "pid", json_object_new_int(e->pid));
	json_object_object_add(ev, "clock", json_object_new_int64(++e->clock));
	if (fields) {
		it = json_object_iter_begin(fields);
		end = json_object_iter_end(fields);
		for (; !json_object_iter_equal(&it, &end);
		    json_object_iter_next(&it))
			json_object_object_add(ev, json_object_iter_peek_name(&it),
			    json_object_get(json_object_iter_peek_value(&it)));
		json_object_put(fields);
	}
	json_object_object_add(ev, "timestamp",
	    json_object_new_double(now_unix()));
	json_object_object_add(ev, "type", json_object_new_string(type));
	return ev;
}

int
events_send(struct events *e, const char *type, json_object *fields)
{
	json_object	*body, *env, *h;
	char		 rk[64], chan[128];
	int		 done = 0;
	size_t		 i;

	if (type != NULL)
		body = events_build(e, type, fields);
	else
		body = fields;
	snprintf(rk, sizeof(rk), "%s", type ? type : "task.multi");
	for (i = 0; rk[i]; i++)
		if (rk[i] == '-')
			rk[i] = '.';
	h = json_object_new_object();
	json_object_object_add(h, "hostname", json_object_new_string(e->node));
	if ((env = kombu_envelope(body, h, "celeryev", rk)) == NULL)
		return -1;
	snprintf(chan, sizeof(chan), "/%d.celeryev/%s", e->url.db, rk);

	if (events_connect(e) == -1) {
		json_object_put(env);
		return -1;
	}
	redisAppendCommand(e->c, "PUBLISH %s %s", chan,
	    json_object_to_json_string_ext(env, JSON_C_TO_STRING_PLAIN));
	json_object_put(env);
	e->pending++;
	/* Write it now; the reply is read later by events_drain(). */
	while (!done)
		if (redisBufferWrite(e->c, &done) != REDIS_OK) {
			events_close(e);
			return -1;
		}
	events_drain(e);
	return 0;
}

void
events_drain(struct events *e)
{
	struct pollfd	 pfd;
	void		*r;

	if (e->c == NULL || e->pending == 0)
		return;
	pfd.fd = e->c->fd;
	pfd.events = POLLIN;
	if (poll(&pfd, 1, 0) <= 0)
		return;
	if (redisBufferRead(e->c) != REDIS_OK) {
		events_close(e);
		return;
	}
	while (redisGetReplyFromReader(e->c, &r) == REDIS_OK && r != NULL) {
		freeReplyObject(r);
		e->pending--;
	}
}

void
events_add(struct events *e, const char *type, json_object *fields)
{
	json_object *ev;

	if (e->threaded) {
		ev = events_build(e, type, fields);
		pthread_mutex_lock(&e->mu);
		if (e->batch == NULL) {
			e->batch = json_object_new_array();
			e->batch_t0 = now_unix();
			pthread_cond_signal(&e->cv);
		}
		json_object_array_add(e->batch, ev);
		if (json_object_array_length(e->batch) >= EVENTS_BATCH_MAX) {
			e->kick = 1;
			pthread_cond_signal(&e->cv);
		}
		pthread_mutex_unlock(&e->mu);
		return;
	}
	if (e->batch == NULL) {
		e->batch = json_object_new_array();
		e->batch_t0 = now_unix();
	}
	json_object_array_add(e->batch, events_build(e, type, fields));
	if (json_object_array_length(e->batch) >= EVENTS_BATCH_MAX ||
	    now_unix() - e->batch_t0 >= EVENTS_BATCH_DELAY)
		events_flush(e);
}

void
events_flush(struct events *e)
{
	json_object *batch;

	if (e->threaded) {
		pthread_mutex_lock(&e->mu);
		if (e->batch != NULL) {
			e->kick = 1;
			pthread_cond_signal(&e->cv);
		}
		pthread_mutex_unlock(&e->mu);
		return;
	}
	batch = e->batch;

	if (batch == NULL)
		return;
	e->batch = NULL;
	events_send(e, NULL, batch);
}
