/*
 * redis.c - URL parsing and connection set-up for hiredis.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "broker/redis.h"
#include "common/log.h"
#include "common/util.h"

static int
url_fail(char *err, size_t errlen, const char *url, const char *why)
{
	snprintf(err, errlen, "bad Redis URL \"%s\": %s", url, why);
	return -1;
}

int
redis_url_parse(const char *url, struct redis_url *u, char *err,
    size_t errlen)
{
	const char	*p, *at, *slash, *colon, *q;
	char		*end;
	long		 v;
	size_t		 n;

	memset(u, 0, sizeof(*u));
	u->port = 6379;
	if (strncmp(url, "unix://", 7) == 0) {
		p = url + 7;
		q = strchr(p, '?');
		n = q ? (size_t)(q - p) : strlen(p);
		if (n == 0 || n >= sizeof(u->socket))
			return url_fail(err, errlen, url, "bad socket path");
		memcpy(u->socket, p, n);
		if (q && strncmp(q, "?db=", 4) == 0) {
			v = strtol(q + 4, &end, 10);
			if (*end || v < 0 || v > 65535)
				return url_fail(err, errlen, url, "bad db");
			u->db = v;
		}
		return 0;
	}
	if (strncmp(url, "redis://", 8) != 0)
		return url_fail(err, errlen, url,
		    "expected redis://host:port/db or unix:///path");
	p = url + 8;
	slash = strchr(p, '/');
	at = strchr(p, '@');
	if (at && (!slash || at < slash)) {
		/* redis://[user]:password@host: only the password is used. */
		colon = memchr(p, ':', at - p);
		q = colon ? colon + 1 : p;
		n = at - q;
		if (n >= sizeof(u->password))
			return url_fail(err, errlen, url, "password too long");
		memcpy(u->password, q, n);
		p = at + 1;
	}
	n = slash ? (size_t)(slash - p) : strlen(p);
	colon = memchr(p, ':', n);
	if (colon) {
		v = strtol(colon + 1, &end, 10);
		if (end != p + n || v <= 0 || v > 65535)
			return url_fail(err, errlen, url, "bad port");
		u->port = v;
		n = colon - p;
	}
	if (n == 0)
		snprintf(u->host, sizeof(u->host), "127.0.0.1");
	else if (n >= sizeof(u->host))
		return url_fail(err, errlen, url, "host too long");
	else
		memcpy(u->host, p, n);
	if (slash && slash[1] != '\0') {
		v = strtol(slash + 1, &end, 10);
		if (*end != '\0' || v < 0 || v > 65535)
			return url_fail(err, errlen, url, "bad database number");
		u->db = v;
	}
	return 0;
}

int
redis_url_same_server(const struct redis_url *a, const struct redis_url *b)
{
	return strcmp(a->host, b->host) == 0 && a->port == b->port &&
	    strcmp(a->socket, b->socket) == 0 && a->db == b->db &&
	    strcmp(a->password, b->password) == 0;
}

redisContext *
redis_connect(const struct redis_url *u, int timeout_ms, char *err,
    size_t errlen)
{
	redisContext	*c;
	redisReply	*r;
	struct timeval	 tv;

	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	if (u->socket[0])
		c = redisConnectUnixWithTimeout(u->socket, tv);
	else
		c = redisConnectWithTimeout(u->host, u->port, tv);
	if (c == NULL) {
		snprintf(err, errlen, "cannot allocate a Redis context");
		return NULL;
	}
	if (c->err) {
		snprintf(err, errlen, "Redis %s:%d: %s", u->host, u->port,
		    c->errstr);
		redisFree(c);
		return NULL;
	}
	fd_cloexec(c->fd);
	/* Replies of a healthy server come within this; a hang is an error. */
	tv.tv_sec = 30;
	tv.tv_usec = 0;
	redisSetTimeout(c, tv);
	if (u->password[0]) {
		r = redisCommand(c, "AUTH %s", u->password);
		if (r == NULL || r->type == REDIS_REPLY_ERROR) {
			snprintf(err, errlen, "Redis AUTH failed: %s",
			    r ? r->str : c->errstr);
			goto fail;
		}
		freeReplyObject(r);
	}
	if (u->db != 0) {
		r = redisCommand(c, "SELECT %d", u->db);
		if (r == NULL || r->type == REDIS_REPLY_ERROR) {
			snprintf(err, errlen, "Redis SELECT %d failed: %s",
			    u->db, r ? r->str : c->errstr);
			goto fail;
		}
		freeReplyObject(r);
	}
	return c;
fail:
	if (r)
		freeReplyObject(r);
	redisFree(c);
	return NULL;
}

static redisReply *
redis_check(redisContext *c, redisReply *r, const char *what)
{
	if (r == NULL) {
		log_warnx("redis %s: %s", what, c->errstr[0] ? c->errstr :
		    "connection lost");
		if (c->err == 0)
			c->err = REDIS_ERR_IO;
		return NULL;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		log_warnx("redis %s: %s", what, r->str);
		freeReplyObject(r);
		return NULL;
	}
	return r;
}

redisReply *
redis_command(redisContext *c, const char *fmt, ...)
{
	va_list	 ap;
	void	*r;
	char	 what[48];

	va_start(ap, fmt);
	r = redisvCommand(c, fmt, ap);
	va_end(ap);
	snprintf(what, sizeof(what), "%.*s", (int)strcspn(fmt, " "), fmt);
	return redis_check(c, r, what);
}

redisReply *
redis_commandv(redisContext *c, int argc, const char **argv,
    const size_t *argvlen)
{
	void *r;

	r = redisCommandArgv(c, argc, argv, argvlen);
	return redis_check(c, r, argc > 0 ? argv[0] : "?");
}

int
redis_read_replies(redisContext *c, int n, redisReply **last)
{
	redisReply	*r;
	void		*vr;
	int		 i, bad = 0;

	if (last)
		*last = NULL;
	for (i = 0; i < n; i++) {
		if (redisGetReply(c, &vr) != REDIS_OK) {
			log_warnx("redis: %s", c->errstr);
			return -1;
		}
		r = vr;
		if (r->type == REDIS_REPLY_ERROR) {
			log_warnx("redis: %s", r->str);
			bad = 1;
		}
		if (i == n - 1 && last)
			*last = r;
		else
			freeReplyObject(r);
	}
	return bad ? -1 : 0;
}
