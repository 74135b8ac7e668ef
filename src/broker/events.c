/*
 * events.c - Celery event publishing (see events.h).
 *
 * Task events are the hot path: each is written by hand into e->ev,
 * appended under the lock to the text of the pending batch, and the
 * sender takes the whole batch by swapping buffers, so the worker never
 * waits on the sender's base64, envelope or write(2).
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

/* ------------------------------------------------------------ text */

/* Room for n more bytes and a NUL: 0, or -1 with oom set. */
static int
evbuf_room(struct evbuf *b, size_t n)
{
	size_t	 cap;
	char	*p;

	if (b->oom)
		return -1;
	if (n < b->cap - b->len)
		return 0;
	cap = b->cap ? b->cap : 1024;
	while (cap - b->len <= n) {
		if (cap > SIZE_MAX / 2) {
			b->oom = 1;
			return -1;
		}
		cap *= 2;
	}
	if ((p = realloc(b->p, cap)) == NULL) {
		b->oom = 1;
		return -1;
	}
	b->p = p;
	b->cap = cap;
	return 0;
}

static void
evbuf_add(struct evbuf *b, const void *s, size_t n)
{
	if (evbuf_room(b, n) == -1)
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

#define evbuf_lit(b, s)	evbuf_add((b), (s), sizeof(s) - 1)

#define EVBUF_KEEP	(1024 * 1024)	/* bytes a buffer may keep between uses */

static void
evbuf_putc(struct evbuf *b, char c)
{
	if (evbuf_room(b, 1) == 0)
		b->p[b->len++] = c;
}

static void
evbuf_free(struct evbuf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/*
 * Give back a buffer that one huge event (a long traceback) grew: the
 * next use starts small again rather than keeping megabytes per worker.
 */
static void
evbuf_trim(struct evbuf *b)
{
	if (b->cap > EVBUF_KEEP)
		evbuf_free(b);
}

/* Digits by hand: snprintf's format parsing costs more than the event. */
static void
evbuf_ll(struct evbuf *b, long long v)
{
	char			 tmp[24], *p = tmp + sizeof(tmp);
	unsigned long long	 u;

	u = v < 0 ? -(unsigned long long)v : (unsigned long long)v;
	do
		*--p = (char)('0' + u % 10);
	while ((u /= 10) != 0);
	if (v < 0)
		*--p = '-';
	evbuf_add(b, p, (size_t)(tmp + sizeof(tmp) - p));
}

/*
 * Microseconds as decimal seconds, "1795882983.282354", trailing zeros
 * dropped but one fraction digit kept so that Python reads a float.
 * Python's float() rounds the exact decimal, IEEE division rounds the
 * exact quotient: the reader gets the very double us / 1e6, with no
 * inf or nan possible and no %.17g noise.
 */
static void
evbuf_secs(struct evbuf *b, int64_t us)
{
	char			 frac[7];
	unsigned long long	 u;
	unsigned long		 f;
	size_t			 n;
	int			 i;

	u = us < 0 ? -(unsigned long long)us : (unsigned long long)us;
	if (us < 0)
		evbuf_putc(b, '-');
	evbuf_ll(b, (long long)(u / 1000000));
	f = (unsigned long)(u % 1000000);
	frac[0] = '.';
	for (i = 6; i >= 1; i--) {
		frac[i] = (char)('0' + f % 10);
		f /= 10;
	}
	for (n = 7; n > 2 && frac[n - 1] == '0'; n--)
		;
	evbuf_add(b, frac, n);
}

/*
 * Length of the well-formed UTF-8 sequence at s (RFC 3629, which is
 * what Python's strict decoder accepts), or 0.  A NUL is not a
 * continuation byte, so nothing past the string is read.
 */
static size_t
utf8_seq(const unsigned char *s)
{
	unsigned char	lo = 0x80, hi = 0xbf;
	size_t		i, n;

	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		if (s[0] == 0xe0)
			lo = 0xa0;		/* overlong */
		else if (s[0] == 0xed)
			hi = 0x9f;		/* surrogates */
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		if (s[0] == 0xf0)
			lo = 0x90;		/* overlong */
		else if (s[0] == 0xf4)
			hi = 0x8f;		/* past U+10FFFF */
	} else
		return 0;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

/*
 * s as a JSON string.  Runs of plain bytes are copied at once; quote,
 * backslash and control characters are escaped; UTF-8 passes through.
 * A byte that is not UTF-8 becomes U+FFFD: kombu decodes the body
 * strictly, and one bad byte would otherwise lose the whole batch.
 */
static void
evbuf_str(struct evbuf *b, const char *s)
{
	static const char	 hex[] = "0123456789abcdef";
	const unsigned char	*p = (const unsigned char *)s, *run;
	char			 esc[6];
	size_t			 n;

	if (s == NULL) {
		evbuf_lit(b, "null");
		return;
	}
	evbuf_putc(b, '"');
	for (;;) {
		for (run = p; *p >= 0x20 && *p < 0x80 && *p != '"' &&
		    *p != '\\'; p++)
			;
		evbuf_add(b, run, (size_t)(p - run));
		if (*p == '\0')
			break;
		if (*p >= 0x80) {
			if ((n = utf8_seq(p)) > 0) {
				evbuf_add(b, p, n);
				p += n;
			} else {
				evbuf_lit(b, "\\ufffd");
				p++;
			}
			continue;
		}
		esc[0] = '\\';
		n = 2;
		switch (*p) {
		case '"':
		case '\\':
			esc[1] = (char)*p;
			break;
		case '\b':
			esc[1] = 'b';
			break;
		case '\f':
			esc[1] = 'f';
			break;
		case '\n':
			esc[1] = 'n';
			break;
		case '\r':
			esc[1] = 'r';
			break;
		case '\t':
			esc[1] = 't';
			break;
		default:
			memcpy(esc + 1, "u00", 3);
			esc[4] = hex[*p >> 4];
			esc[5] = hex[*p & 0xf];
			n = 6;
		}
		evbuf_add(b, esc, n);
		p++;
	}
	evbuf_putc(b, '"');
}

/* ,"key": (keys are constant names, written as they are) */
static void
evbuf_key(struct evbuf *b, const char *key)
{
	evbuf_lit(b, ",\"");
	evbuf_add(b, key, strlen(key));
	evbuf_lit(b, "\":");
}

/* ------------------------------------------------------- connection */

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

/* Drop the connection (the sender's own): the next send reconnects. */
static void
events_disconnect(struct events *e)
{
	if (e->c)
		redisFree(e->c);
	e->c = NULL;
	e->pending = 0;
}

int
events_init(struct events *e, const struct config *cfg, int pid)
{
	char err[256];

	memset(e, 0, sizeof(*e));
	events_node_name(cfg, e->node, sizeof(e->node));
	e->pid = pid;
	e->head_minute = -1;
	if (redis_url_parse(cfg->broker, &e->url, err, sizeof(err)) == -1)
		return -1;
	return events_connect(e);
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
		events_disconnect(e);
		return;
	}
	while (redisGetReplyFromReader(e->c, &r) == REDIS_OK && r != NULL) {
		freeReplyObject(r);
		e->pending--;
	}
}

/* ---------------------------------------------------------- sending */

int
events_envelope(struct evbuf *b, const char *node, const char *routing_key,
    const char *body, size_t len)
{
	char	tag[40];

	b->len = 0;
	b->oom = 0;
	evbuf_lit(b, "{\"body\":\"");
	/* Encoded in place: the body is the bulk of the message. */
	if (evbuf_room(b, MSG_BASE64_LEN(len)) == 0)
		b->len += msg_base64_encode_buf(b->p + b->len,
		    (const unsigned char *)body, len);
	evbuf_lit(b, "\",\"content-encoding\":\"utf-8\","
	    "\"content-type\":\"application/json\",\"headers\":{\"hostname\":");
	evbuf_str(b, node);
	evbuf_lit(b, "},\"properties\":{\"delivery_mode\":1,"
	    "\"delivery_info\":{\"exchange\":\"celeryev\",\"routing_key\":");
	evbuf_str(b, routing_key);
	evbuf_lit(b, "},\"priority\":0,\"body_encoding\":\"base64\","
	    "\"delivery_tag\":\"");
	/* kombu reads delivery_tag unconditionally: a fresh one each time. */
	msg_uuid4(tag);
	evbuf_add(b, tag, strlen(tag));
	evbuf_lit(b, "\"}}");
	if (evbuf_room(b, 0) == -1)
		return -1;
	b->p[b->len] = '\0';
	return 0;
}

/*
 * PUBLISH body in an envelope on routing_key's channel, into the
 * connection's output buffer: several go out in one events_write().
 * Only the sender calls this.
 */
static int
events_queue_publish(struct events *e, const char *routing_key,
    const char *body, size_t len)
{
	const char	*argv[3];
	size_t		 argvlen[3];
	char		 chan[128];

	if (events_envelope(&e->env, e->node, routing_key, body, len) == -1)
		return -1;
	snprintf(chan, sizeof(chan), "/%d.celeryev/%s", e->url.db,
	    routing_key);
	argv[0] = "PUBLISH";
	argvlen[0] = 7;
	argv[1] = chan;
	argvlen[1] = strlen(chan);
	argv[2] = e->env.p;
	argvlen[2] = e->env.len;
	if (redisAppendCommandArgv(e->c, 3, argv, argvlen) != REDIS_OK) {
		events_disconnect(e);
		return -1;
	}
	e->pending++;
	return 0;
}

/* Write what is queued now; the replies are read later by events_drain(). */
static int
events_write(struct events *e)
{
	int done = 0;

	while (!done)
		if (redisBufferWrite(e->c, &done) != REDIS_OK) {
			events_disconnect(e);
			return -1;
		}
	events_drain(e);
	return 0;
}

/* Send the batch taken into b, and leave b empty for reuse. */
static void
events_send_batch(struct events *e, struct evbatch *b)
{
	size_t	 end;
	int	 i;

	evbuf_putc(&b->text, ']');
	if (!b->text.oom && events_connect(e) == 0) {
		for (i = 0; i < b->nbody; i++) {
			end = i + 1 < b->nbody ? b->body[i + 1] : b->text.len;
			if (events_queue_publish(e, "task.multi",
			    b->text.p + b->body[i], end - b->body[i]) == -1)
				break;
		}
		if (e->c != NULL)
			events_write(e);
	}
	b->text.len = 0;
	b->text.oom = 0;
	b->nbody = 0;
	b->n = 0;
	evbuf_trim(&b->text);
	evbuf_trim(&e->env);
}

/* One event object with the common fields, for the control child. */
static json_object *
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
	json_object	*body;
	const char	*text;
	char		 rk[64];
	size_t		 i;
	int		 rc;

	body = events_build(e, type, fields);
	text = json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN);
	snprintf(rk, sizeof(rk), "%s", type);
	for (i = 0; rk[i]; i++)
		if (rk[i] == '-')
			rk[i] = '.';
	rc = -1;
	if (events_connect(e) == 0 &&
	    events_queue_publish(e, rk, text, strlen(text)) == 0)
		rc = events_write(e);
	json_object_put(body);
	return rc;
}

/* ------------------------------------------------------ task events */

/*
 * {"hostname":..,"utcoffset":..,"pid":..,"clock": is the same for every
 * event but the utcoffset, which a DST change moves: rebuilt once a
 * minute (offsets change on whole minutes) rather than a localtime_r()
 * per event.
 */
static void
events_head(struct events *e, int64_t minute)
{
	struct evbuf *h = &e->head;

	h->len = 0;
	h->oom = 0;
	evbuf_lit(h, "{\"hostname\":");
	evbuf_str(h, e->node);
	evbuf_key(h, "utcoffset");
	evbuf_ll(h, events_utcoffset());
	evbuf_key(h, "pid");
	evbuf_ll(h, e->pid);
	evbuf_key(h, "clock");
	e->head_minute = h->oom ? -1 : minute;
}

void
events_begin(struct events *e, const char *uuid)
{
	struct evbuf *b = &e->ev;

	evbuf_trim(b);
	e->ev_us = now_unix_us();
	if (e->ev_us / 60000000 != e->head_minute)
		events_head(e, e->ev_us / 60000000);
	b->len = 0;
	b->oom = e->head.oom;
	evbuf_add(b, e->head.p, e->head.len);
	evbuf_ll(b, ++e->clock);
	if (uuid != NULL) {
		evbuf_key(b, "uuid");
		evbuf_str(b, uuid);
	}
}

void
events_str(struct events *e, const char *key, const char *val)
{
	evbuf_key(&e->ev, key);
	evbuf_str(&e->ev, val);
}

void
events_int(struct events *e, const char *key, long long v)
{
	evbuf_key(&e->ev, key);
	evbuf_ll(&e->ev, v);
}

void
events_bool(struct events *e, const char *key, int v)
{
	evbuf_key(&e->ev, key);
	if (v)
		evbuf_lit(&e->ev, "true");
	else
		evbuf_lit(&e->ev, "false");
}

void
events_secs(struct events *e, const char *key, int64_t us)
{
	evbuf_key(&e->ev, key);
	evbuf_secs(&e->ev, us);
}

const char *
events_finish(struct events *e, const char *type, size_t *len)
{
	struct evbuf *b = &e->ev;

	evbuf_key(b, "timestamp");
	evbuf_secs(b, e->ev_us);
	evbuf_key(b, "type");
	evbuf_str(b, type);
	evbuf_putc(b, '}');
	if (evbuf_room(b, 0) == -1)
		return NULL;
	b->p[b->len] = '\0';
	*len = b->len;
	return b->p;
}

/*
 * Append one event to the batch, opening a new body every
 * EVENTS_BATCH_MAX; the caller holds the lock if there is a thread.
 * Returns the number now waiting, or 0 if it was dropped.
 */
static int
events_append(struct events *e, const char *text, size_t len)
{
	struct evbatch	*b = &e->batch;
	size_t		 len0 = b->text.len;
	int		 nbody0 = b->nbody;

	if (b->n >= EVENTS_QUEUE_MAX) {
		e->dropped++;
		return 0;
	}
	if (b->n % EVENTS_BATCH_MAX == 0) {
		if (b->n > 0)
			evbuf_putc(&b->text, ']');
		b->body[b->nbody++] = b->text.len;
		evbuf_putc(&b->text, '[');
	} else
		evbuf_putc(&b->text, ',');
	evbuf_add(&b->text, text, len);
	if (b->text.oom) {
		b->text.len = len0;
		b->text.oom = 0;
		b->nbody = nbody0;
		e->dropped++;
		return 0;
	}
	if (b->n == 0)
		b->t0 = (double)e->ev_us / 1e6;
	return ++b->n;
}

void
events_end(struct events *e, const char *type)
{
	const char	*text;
	size_t		 len;
	int		 n;

	if ((text = events_finish(e, type, &len)) == NULL) {
		e->dropped++;
		return;
	}
	if (!e->threaded) {
		n = events_append(e, text, len);
		if (n >= EVENTS_BATCH_MAX || (n > 0 && (double)e->ev_us / 1e6 -
		    e->batch.t0 >= EVENTS_BATCH_DELAY))
			events_flush(e);
		return;
	}
	pthread_mutex_lock(&e->mu);
	n = events_append(e, text, len);
	/*
	 * A sender busy with the previous batch, or already timing this
	 * one, needs no wake-up until the batch is full: one futex wake per
	 * batch under load rather than one per event.
	 */
	if ((n == 1 && e->idle) || n == EVENTS_BATCH_MAX)
		pthread_cond_signal(&e->cv);
	pthread_mutex_unlock(&e->mu);
}

/* Take the waiting batch into e->out (empty): the two trade places. */
static int
events_take(struct events *e)
{
	struct evbatch tmp;

	tmp = e->batch;
	e->batch = e->out;
	e->out = tmp;
	return e->out.n;
}

void
events_flush(struct events *e)
{
	if (e->threaded) {
		pthread_mutex_lock(&e->mu);
		if (e->batch.n > 0) {
			e->kick = 1;
			pthread_cond_signal(&e->cv);
		}
		pthread_mutex_unlock(&e->mu);
		return;
	}
	if (events_take(e) > 0)
		events_send_batch(e, &e->out);
}

/* ----------------------------------------------------------- thread */

/* Wait, the lock held, until a batch is due (full, old, kicked) or stop. */
static void
events_wait(struct events *e)
{
	struct timespec	 ts;
	double		 due;

	while (!e->stop && !e->kick && e->batch.n == 0) {
		e->idle = 1;
		pthread_cond_wait(&e->cv, &e->mu);
	}
	e->idle = 0;
	while (!e->stop && !e->kick && e->batch.n > 0 &&
	    e->batch.n < EVENTS_BATCH_MAX &&
	    (due = e->batch.t0 + EVENTS_BATCH_DELAY) > now_unix()) {
		ts.tv_sec = (time_t)due;
		ts.tv_nsec = (long)((due - (double)ts.tv_sec) * 1e9);
		pthread_cond_timedwait(&e->cv, &e->mu, &ts);
	}
}

static void *
events_thread(void *arg)
{
	struct events	*e = arg;
	int		 n, stop;

	pthread_mutex_lock(&e->mu);
	for (;;) {
		events_wait(e);
		n = events_take(e);
		e->kick = 0;
		stop = e->stop;
		pthread_mutex_unlock(&e->mu);
		/* Base64, envelope and write(2) outside the lock. */
		if (n > 0)
			events_send_batch(e, &e->out);
		if (stop)
			return NULL;
		pthread_mutex_lock(&e->mu);
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
		pthread_cond_destroy(&e->cv);
		pthread_mutex_destroy(&e->mu);
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
		pthread_cond_destroy(&e->cv);
		pthread_mutex_destroy(&e->mu);
		e->threaded = 0;
		e->stop = 0;
	} else if (e->batch.n > 0)
		events_flush(e);
	if (e->dropped > 0)
		log_debug("events: %lu task events dropped", e->dropped);
	evbuf_free(&e->ev);
	evbuf_free(&e->head);
	evbuf_free(&e->batch.text);
	evbuf_free(&e->out.text);
	evbuf_free(&e->env);
	e->batch.n = e->out.n = 0;
	e->batch.nbody = e->out.nbody = 0;
	e->head_minute = -1;
	events_disconnect(e);
}
