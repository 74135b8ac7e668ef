/*
 * fetch.c - reliable fetch (see fetch.h).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/fetch.h"
#include "common/log.h"

/*
 * KEYS[1..n-1] are the bucket lists in service order, KEYS[n] the
 * processing list.  RPOPLPUSH (not LMOVE) keeps Redis 5 servers usable.
 */
static const char fetch_lua[] =
	"local dst = KEYS[#KEYS]\n"
	"for i = 1, #KEYS - 1 do\n"
	"  local m = redis.call('RPOPLPUSH', KEYS[i], dst)\n"
	"  if m then return {KEYS[i], m} end\n"
	"end\n"
	"return false\n";

int
fetch_init(struct fetcher *f, redisContext *cmd, const struct redis_url *url,
    const char *queue, const char *processing)
{
	int i;

	memset(f, 0, sizeof(*f));
	f->cmd = cmd;
	f->url = *url;
	for (i = 0; i < MSG_NBUCKETS; i++)
		if ((f->lists[i] = msg_bucket_list(queue,
		    msg_priority_steps[i])) == NULL)
			return -1;
	if ((f->processing = strdup(processing)) == NULL)
		return -1;
	return 0;
}

void
fetch_free(struct fetcher *f)
{
	int i;

	for (i = 0; i < MSG_NBUCKETS; i++)
		free(f->lists[i]);
	free(f->processing);
	if (f->sub)
		redisFree(f->sub);
	memset(f, 0, sizeof(*f));
}

static int
fetch_load_script(struct fetcher *f)
{
	redisReply *r;

	r = redis_command(f->cmd, "SCRIPT LOAD %s", fetch_lua);
	if (r == NULL)
		return -1;
	snprintf(f->sha, sizeof(f->sha), "%s", r->str ? r->str : "");
	freeReplyObject(r);
	return 0;
}

/*
 * Send the fetch script after `nprefix` commands the caller already
 * appended (a result and its acknowledgement), so that both travel in
 * one round trip; read their replies first.  *prefix_ok tells whether
 * they all succeeded.
 */
static int
fetch_take(redisReply *r, int from_first, struct fetcher *f, char **msg,
    size_t *len, char **from)
{
	redisReply *m = from_first ? r : r->element[1];

	if ((*msg = malloc(m->len + 1)) == NULL)
		return -1;
	memcpy(*msg, m->str, m->len);
	(*msg)[m->len] = '\0';
	*len = m->len;
	if (from)
		*from = from_first ? strdup(f->lists[0]) :
		    strndup(r->element[0]->str, r->element[0]->len);
	return 1;
}

/*
 * Send the fetch after `nprefix` commands the caller already appended (a
 * result and its acknowledgement), so that both travel in one round
 * trip; read their replies first.  *prefix_ok tells whether they all
 * succeeded.
 *
 * Most traffic has the default priority, which lands in the first
 * bucket: a native RPOPLPUSH from it costs Redis less than the script,
 * so it is tried first, and the script (all buckets in kombu's order,
 * the first one included) only when the first bucket was empty -- then
 * directly until the script finds the first bucket busy again.
 */
int
fetch_try_after(struct fetcher *f, int nprefix, int *prefix_ok, char **msg,
    size_t *len, char **from)
{
	const char	*argv[3 + MSG_NBUCKETS + 1];
	char		 nkeys[8];
	redisReply	*r;
	void		*vr;
	int		 argc = 0, i, retried = 0, rc;

	*msg = NULL;
	if (from)
		*from = NULL;
	if (prefix_ok)
		*prefix_ok = 1;
	if (!f->skip_first) {
		argv[0] = "RPOPLPUSH";
		argv[1] = f->lists[0];
		argv[2] = f->processing;
		if (redisAppendCommandArgv(f->cmd, 3, argv, NULL) != REDIS_OK)
			return -1;
		goto replies;
	}
again:
	if (f->sha[0] == '\0' && nprefix == 0 && fetch_load_script(f) == -1)
		return -1;
	argc = 0;
	argv[argc++] = f->sha[0] ? "EVALSHA" : "EVAL";
	argv[argc++] = f->sha[0] ? f->sha : fetch_lua;
	snprintf(nkeys, sizeof(nkeys), "%d", MSG_NBUCKETS + 1);
	argv[argc++] = nkeys;
	for (i = 0; i < MSG_NBUCKETS; i++)
		argv[argc++] = f->lists[i];
	argv[argc++] = f->processing;
	if (redisAppendCommandArgv(f->cmd, argc, argv, NULL) != REDIS_OK)
		return -1;
replies:
	if (nprefix > 0) {
		if (redis_read_replies(f->cmd, nprefix, NULL) == -1 &&
		    prefix_ok)
			*prefix_ok = 0;
		if (f->cmd->err)
			return -1;
		nprefix = 0;
	}
	if (redisGetReply(f->cmd, &vr) != REDIS_OK) {
		log_warnx("fetch: %s", f->cmd->errstr);
		return -1;
	}
	r = vr;
	if (!f->skip_first) {
		/* The native move's answer: a message or nil. */
		if (r->type == REDIS_REPLY_STRING) {
			rc = fetch_take(r, 1, f, msg, len, from);
			freeReplyObject(r);
			return rc;
		}
		rc = r->type == REDIS_REPLY_ERROR ? -1 : 0;
		if (rc == -1)
			log_warnx("fetch: %s", r->str);
		freeReplyObject(r);
		if (rc == -1)
			return -1;
		f->skip_first = 1;
		goto again;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		/* A restarted or flushed server forgot the script. */
		int noscript = strncmp(r->str, "NOSCRIPT", 8) == 0;
		if (!noscript)
			log_warnx("fetch: %s", r->str);
		freeReplyObject(r);
		if (noscript && !retried) {
			retried = 1;
			f->sha[0] = '\0';
			goto again;
		}
		return -1;
	}
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
		freeReplyObject(r);
		return 0;
	}
	/* Traffic in the first bucket again: back to the native move. */
	if (r->element[0]->len == strlen(f->lists[0]) &&
	    memcmp(r->element[0]->str, f->lists[0], r->element[0]->len) == 0)
		f->skip_first = 0;
	rc = fetch_take(r, 0, f, msg, len, from);
	freeReplyObject(r);
	return rc;
}

int
fetch_try(struct fetcher *f, char **msg, size_t *len, char **from)
{
	return fetch_try_after(f, 0, NULL, msg, len, from);
}

/*
 * Keyspace notifications must include list events ('l') on keyspace
 * channels ('K').  We add them to whatever the server already has; a
 * server that refuses CONFIG leaves us polling, which we log once.
 */
static int
fetch_enable_notifications(struct fetcher *f)
{
	redisReply	*r;
	char		 flags[64] = "";
	int		 has_k, has_l;

	r = redisCommand(f->cmd, "CONFIG GET notify-keyspace-events");
	if (r == NULL)
		return -1;
	if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
	    r->element[1]->type == REDIS_REPLY_STRING)
		snprintf(flags, sizeof(flags), "%s", r->element[1]->str);
	else {
		freeReplyObject(r);
		return -1;
	}
	freeReplyObject(r);
	has_k = strchr(flags, 'K') != NULL;
	has_l = strchr(flags, 'l') != NULL || strchr(flags, 'A') != NULL;
	if (has_k && has_l)
		return 0;
	if (!has_k)
		strncat(flags, "K", sizeof(flags) - strlen(flags) - 1);
	if (!has_l)
		strncat(flags, "l", sizeof(flags) - strlen(flags) - 1);
	r = redisCommand(f->cmd, "CONFIG SET notify-keyspace-events %s", flags);
	if (r == NULL || r->type == REDIS_REPLY_ERROR) {
		if (r)
			freeReplyObject(r);
		return -1;
	}
	freeReplyObject(r);
	return 0;
}

int
fetch_subscribe(struct fetcher *f)
{
	char		 err[256];
	const char	*argv[5 + MSG_NBUCKETS];
	char		 chans[MSG_NBUCKETS][300];
	int		 i, argc = 0, notify;
	void		*vr;

	if (f->sub) {
		redisFree(f->sub);
		f->sub = NULL;
	}
	notify = fetch_enable_notifications(f) == 0;
	if (!notify && f->notify != -1) {
		log_warnx("keyspace notifications unavailable (CONFIG "
		    "refused); polling queues every %d ms",
		    FETCH_FALLBACK_POLL_MS);
		f->notify = -1;
	}
	if ((f->sub = redis_connect(&f->url, 2000, err, sizeof(err))) == NULL) {
		log_warnx("notifications: %s", err);
		if (f->notify == 1)
			f->notify = 0;
		return -1;
	}
	argv[argc++] = "SUBSCRIBE";
	for (i = 0; i < f->nextra; i++)
		argv[argc++] = f->extra_channels[i];
	for (i = 0; notify && i < MSG_NBUCKETS; i++) {
		snprintf(chans[i], sizeof(chans[i]), "__keyspace@%d__:%s",
		    f->url.db, f->lists[i]);
		argv[argc++] = chans[i];
	}
	if (argc == 1) {
		redisFree(f->sub);
		f->sub = NULL;
		return -1;
	}
	if (redisAppendCommandArgv(f->sub, argc, argv, NULL) != REDIS_OK)
		goto fail;
	/* One confirmation per channel. */
	for (i = 1; i < argc; i++) {
		if (redisGetReply(f->sub, &vr) != REDIS_OK)
			goto fail;
		freeReplyObject(vr);
	}
	if (notify)
		f->notify = 1;
	return notify ? 0 : -1;
fail:
	log_warnx("notifications: subscribe: %s", f->sub->errstr);
	redisFree(f->sub);
	f->sub = NULL;
	return -1;
}

/* Read whatever notifications arrived; they only mean "look again". */
static int
fetch_drain(struct fetcher *f)
{
	void *vr;

	if (redisBufferRead(f->sub) != REDIS_OK)
		return -1;
	for (;;) {
		redisReply *r;
		if (redisGetReplyFromReader(f->sub, &vr) != REDIS_OK)
			return -1;
		if (vr == NULL)
			return 0;
		r = vr;
		if (f->on_message && f->nextra > 0 &&
		    r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
		    r->element[0]->type == REDIS_REPLY_STRING &&
		    strcmp(r->element[0]->str, "message") == 0 &&
		    r->element[1]->type == REDIS_REPLY_STRING &&
		    strncmp(r->element[1]->str, "__keyspace@", 11) != 0 &&
		    r->element[2]->type == REDIS_REPLY_STRING)
			f->on_message(f->cb_arg, r->element[1]->str,
			    r->element[2]->str, r->element[2]->len);
		freeReplyObject(r);
	}
}

int
fetch_poll_messages(struct fetcher *f)
{
	struct pollfd pfd;

	if (f->sub == NULL)
		return 0;
	pfd.fd = f->sub->fd;
	pfd.events = POLLIN;
	if (poll(&pfd, 1, 0) <= 0)
		return 0;
	if (fetch_drain(f) == -1) {
		redisFree(f->sub);
		f->sub = NULL;
		if (f->notify == 1)
			f->notify = 0;
		return -1;
	}
	return 0;
}

int
fetch_wait(struct fetcher *f, int timeout_ms, int wake_fd)
{
	struct pollfd	pfd[2];
	int		n = 0, rc;

	if (f->sub == NULL)
		fetch_subscribe(f);
	if (f->notify != 1 && timeout_ms > FETCH_FALLBACK_POLL_MS)
		timeout_ms = FETCH_FALLBACK_POLL_MS;
	if (f->sub) {
		pfd[n].fd = f->sub->fd;
		pfd[n++].events = POLLIN;
	}
	if (wake_fd >= 0) {
		pfd[n].fd = wake_fd;
		pfd[n++].events = POLLIN;
	}
	rc = poll(pfd, n, timeout_ms);
	if (rc <= 0)
		return 0;	/* timeout or EINTR: the caller looks again */
	if (f->sub && (pfd[0].revents & (POLLIN | POLLHUP | POLLERR))) {
		if (fetch_drain(f) == -1) {
			log_warnx("notifications: connection lost; "
			    "reconnecting");
			redisFree(f->sub);
			f->sub = NULL;
			if (f->notify == 1)
				f->notify = 0;
		}
	}
	return 0;
}
