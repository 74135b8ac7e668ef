/*
 * ceiling.c - what Redis allows on this machine: the least a reliable
 * Celery consumer must do per message, in a minimal hiredis loop.
 *
 * Per message, exactly: an atomic move of the message into a processing
 * list (RPOPLPUSH queue processing), the result stored as Celery's Redis
 * backend stores it (MULTI, SETEX celery-task-meta-ID, PUBLISH on the same
 * key, EXEC) and the acknowledgement (DEL processing).  Nothing is decoded
 * but the task id; no task runs.
 *
 * Modes:
 *   naive      three round trips per message: the move; the MULTI..EXEC
 *              block (sent together); the DEL.
 *   pipelined  one round trip per message, as celeriac's worker does it:
 *              MULTI, SETEX, PUBLISH, DEL, EXEC of the previous message
 *              and the move of the next one, written together.
 *   script     as pipelined, but the move is celeriac's own fetch script
 *              (EVALSHA over the four priority lists of the queue), to
 *              show what that script costs over a plain RPOPLPUSH.
 *   protocol   as script, with celeriac's wake-up mechanism on as well:
 *              keyspace notifications for lists (notify-keyspace-events
 *              Kl) and, per connection, a second connection subscribed to
 *              the queue's four lists, whose notifications are read after
 *              each fetch (as celeriac's worker does).  This is celeriac's
 *              Redis protocol with a consumer that does nothing else.
 *
 * usage: ceiling HOST PORT QUEUE MODE CONNECTIONS [TTL]
 *
 * With CONNECTIONS > 1 it forks one process per connection.  They all
 * connect, then start together; the clock runs from the start to the
 * moment the last of them found the queue empty.  Prints one line:
 *   messages=N seconds=S rate=R cpu_user=U cpu_sys=S
 * (CPU of the consumer processes, from getrusage of the children).
 */
#include <sys/resource.h>
#include <poll.h>
#include <sys/time.h>
#include <sys/wait.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hiredis.h>

enum mode { NAIVE, PIPELINED, SCRIPT, PROTOCOL };

static const char fetch_lua[] =
	"local dst = KEYS[#KEYS]\n"
	"for i = 1, #KEYS - 1 do\n"
	"  local m = redis.call('RPOPLPUSH', KEYS[i], dst)\n"
	"  if m then return {KEYS[i], m} end\n"
	"end\n"
	"return false\n";

static const char *host, *queue;
static int port, ttl = 86400;
static enum mode mode;
static char sha[64];
static char lists[4][256];

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
die(const char *what, redisContext *c)
{
	fprintf(stderr, "ceiling: %s: %s\n", what, c && c->err ? c->errstr :
	    "unexpected reply");
	exit(1);
}

static redisReply *
get_reply(redisContext *c)
{
	void *r;

	if (redisGetReply(c, &r) != REDIS_OK)
		die("reply", c);
	if (((redisReply *)r)->type == REDIS_REPLY_ERROR) {
		fprintf(stderr, "ceiling: %s\n", ((redisReply *)r)->str);
		exit(1);
	}
	return r;
}

/* Celery's result meta for a no-op task, as celeriac writes it. */
static int
make_meta(const char *msg, size_t len, char *id, size_t idlen, char *meta,
    size_t metalen)
{
	const char	*p, *e;
	struct timespec	 ts;
	struct tm	 tm;
	char		 when[64];

	(void)len;
	if ((p = strstr(msg, "\"id\": \"")) == NULL)
		return -1;
	p += 7;
	if ((e = strchr(p, '"')) == NULL || (size_t)(e - p) >= idlen)
		return -1;
	memcpy(id, p, e - p);
	id[e - p] = '\0';
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(meta, metalen, "{\"status\": \"SUCCESS\", \"result\": null, "
	    "\"traceback\": null, \"children\": [], \"date_done\": "
	    "\"%s.%06ld\", \"task_id\": \"%s\"}", when, ts.tv_nsec / 1000, id);
	return 0;
}

static void
append_fetch(redisContext *c, const char *processing)
{
	const char *argv[8];
	int argc = 0, i;

	if (mode != SCRIPT && mode != PROTOCOL) {
		redisAppendCommand(c, "RPOPLPUSH %s %s", queue, processing);
		return;
	}
	argv[argc++] = "EVALSHA";
	argv[argc++] = sha;
	argv[argc++] = "5";
	for (i = 0; i < 4; i++)
		argv[argc++] = lists[i];
	argv[argc++] = processing;
	redisAppendCommandArgv(c, argc, argv, NULL);
}

/* The fetched message from a reply, or NULL when the queue is empty. */
static char *
fetched(redisReply *r, size_t *len)
{
	redisReply *m = r;

	if (mode == SCRIPT || mode == PROTOCOL) {
		if (r->type != REDIS_REPLY_ARRAY || r->elements != 2)
			return NULL;
		m = r->element[1];
	}
	if (m->type != REDIS_REPLY_STRING)
		return NULL;
	*len = m->len;
	return m->str;
}

/* Subscribe to the keyspace events of the queue's lists. */
static redisContext *
subscribe(void)
{
	redisContext	*s;
	char		 chans[4][300];
	const char	*argv[5];
	int		 i;

	if ((s = redisConnect(host, port)) == NULL || s->err)
		die("connect", s);
	argv[0] = "SUBSCRIBE";
	for (i = 0; i < 4; i++) {
		snprintf(chans[i], sizeof(chans[i]), "__keyspace@0__:%s",
		    lists[i]);
		argv[i + 1] = chans[i];
	}
	redisAppendCommandArgv(s, 5, argv, NULL);
	for (i = 0; i < 4; i++)
		freeReplyObject(get_reply(s));
	return s;
}

/* Read whatever notifications arrived, without blocking. */
static void
drain_notifications(redisContext *s)
{
	struct pollfd	 pfd;
	void		*r;

	pfd.fd = s->fd;
	pfd.events = POLLIN;
	if (poll(&pfd, 1, 0) <= 0)
		return;
	if (redisBufferRead(s) != REDIS_OK)
		die("notifications", s);
	while (redisGetReplyFromReader(s, &r) == REDIS_OK && r != NULL)
		freeReplyObject(r);
}

static redisContext *sub;

static long
consume(redisContext *c, int index)
{
	char		 processing[128], id[128], key[192], meta[512], ttls[32];
	redisReply	*r, *next;
	char		*msg;
	size_t		 len;
	long		 n = 0;
	int		 i;

	snprintf(processing, sizeof(processing), "ceiling.processing.%d",
	    index);
	snprintf(ttls, sizeof(ttls), "%d", ttl);
	if (mode == NAIVE) {
		for (;;) {
			r = redisCommand(c, "RPOPLPUSH %s %s", queue,
			    processing);
			if (r == NULL)
				die("RPOPLPUSH", c);
			if (r->type != REDIS_REPLY_STRING) {
				freeReplyObject(r);
				return n;
			}
			if (make_meta(r->str, r->len, id, sizeof(id), meta,
			    sizeof(meta)) == -1)
				die("no task id in message", NULL);
			freeReplyObject(r);
			snprintf(key, sizeof(key), "celery-task-meta-%s", id);
			redisAppendCommand(c, "MULTI");
			redisAppendCommand(c, "SETEX %s %s %s", key, ttls,
			    meta);
			redisAppendCommand(c, "PUBLISH %s %s", key, meta);
			redisAppendCommand(c, "EXEC");
			for (i = 0; i < 4; i++)
				freeReplyObject(get_reply(c));
			r = redisCommand(c, "DEL %s", processing);
			if (r == NULL)
				die("DEL", c);
			freeReplyObject(r);
			n++;
		}
	}
	/* Pipelined: the first fetch alone, then result + ack + next. */
	append_fetch(c, processing);
	r = get_reply(c);
	while ((msg = fetched(r, &len)) != NULL) {
		if (make_meta(msg, len, id, sizeof(id), meta,
		    sizeof(meta)) == -1)
			die("no task id in message", NULL);
		freeReplyObject(r);
		snprintf(key, sizeof(key), "celery-task-meta-%s", id);
		redisAppendCommand(c, "MULTI");
		redisAppendCommand(c, "SETEX %s %s %s", key, ttls, meta);
		redisAppendCommand(c, "PUBLISH %s %s", key, meta);
		redisAppendCommand(c, "DEL %s", processing);
		redisAppendCommand(c, "EXEC");
		append_fetch(c, processing);
		for (i = 0; i < 5; i++)
			freeReplyObject(get_reply(c));
		next = get_reply(c);
		r = next;
		n++;
		if (sub != NULL)
			drain_notifications(sub);
	}
	freeReplyObject(r);
	return n;
}

int
main(int argc, char **argv)
{
	int		 nconn, i, go[2], back[2], status;
	pid_t		 pid;
	double		 t0, t1;
	long		 total = 0, n;
	struct rusage	 ru;
	redisContext	*c;
	redisReply	*r;
	char		 ch;

	if (argc < 6) {
		fprintf(stderr, "usage: ceiling HOST PORT QUEUE "
		    "naive|pipelined|script|protocol CONNECTIONS [TTL]\n");
		return 2;
	}
	host = argv[1];
	port = atoi(argv[2]);
	queue = argv[3];
	if (strcmp(argv[4], "naive") == 0)
		mode = NAIVE;
	else if (strcmp(argv[4], "pipelined") == 0)
		mode = PIPELINED;
	else if (strcmp(argv[4], "script") == 0)
		mode = SCRIPT;
	else if (strcmp(argv[4], "protocol") == 0)
		mode = PROTOCOL;
	else {
		fprintf(stderr, "ceiling: unknown mode %s\n", argv[4]);
		return 2;
	}
	nconn = atoi(argv[5]);
	if (argc > 6)
		ttl = atoi(argv[6]);
	if (nconn < 1 || nconn > 64)
		return 2;
	/* kombu's priority lists, in service order, as celeriac reads them. */
	snprintf(lists[0], sizeof(lists[0]), "%s", queue);
	snprintf(lists[1], sizeof(lists[1]), "%s\x06\x16" "3", queue);
	snprintf(lists[2], sizeof(lists[2]), "%s\x06\x16" "6", queue);
	snprintf(lists[3], sizeof(lists[3]), "%s\x06\x16" "9", queue);
	if (mode == SCRIPT || mode == PROTOCOL) {
		if ((c = redisConnect(host, port)) == NULL || c->err)
			die("connect", c);
		if (mode == PROTOCOL) {
			r = redisCommand(c, "CONFIG SET notify-keyspace-events "
			    "Kl");
			if (r == NULL || r->type == REDIS_REPLY_ERROR)
				die("CONFIG SET", c);
			freeReplyObject(r);
		}
		r = redisCommand(c, "SCRIPT LOAD %s", fetch_lua);
		if (r == NULL || r->type != REDIS_REPLY_STRING)
			die("SCRIPT LOAD", c);
		snprintf(sha, sizeof(sha), "%s", r->str);
		freeReplyObject(r);
		redisFree(c);
	}
	if (pipe(go) == -1 || pipe(back) == -1)
		return 1;
	for (i = 0; i < nconn; i++) {
		if ((pid = fork()) == -1)
			return 1;
		if (pid == 0) {
			close(go[1]);
			close(back[0]);
			if ((c = redisConnect(host, port)) == NULL || c->err)
				die("connect", c);
			if (mode == PROTOCOL)
				sub = subscribe();
			(void)!write(back[1], "r", 1);
			if (read(go[0], &ch, 1) != 1)
				_exit(1);
			n = consume(c, i);
			redisFree(c);
			(void)!write(back[1], &n, sizeof(n));
			_exit(0);
		}
	}
	close(go[0]);
	close(back[1]);
	for (i = 0; i < nconn; i++)
		if (read(back[0], &ch, 1) != 1)
			return 1;
	t0 = now();
	for (i = 0; i < nconn; i++)
		(void)!write(go[1], "g", 1);
	for (i = 0; i < nconn; i++) {
		if (read(back[0], &n, sizeof(n)) != sizeof(n))
			return 1;
		total += n;
	}
	t1 = now();
	for (i = 0; i < nconn; i++) {
		if (wait(&status) == -1 || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0)
			return 1;
	}
	getrusage(RUSAGE_CHILDREN, &ru);
	printf("messages=%ld seconds=%.6f rate=%.1f cpu_user=%.3f "
	    "cpu_sys=%.3f\n", total, t1 - t0, total / (t1 - t0),
	    ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
	    ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
	return 0;
}
