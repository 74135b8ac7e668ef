/*
 * lease.c - the beat's leader lease in Redis (see lease.h).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "beat/lease.h"
#include "broker/redis.h"
#include "common/log.h"

/*
 * SET NX PX, with the token taken from INCR only when the SET will
 * succeed: a follower polling every second does not burn tokens.
 * Returns the token, or false if someone holds the lease.
 */
static const char lease_acquire_lua[] =
	"if redis.call('EXISTS', KEYS[1]) == 1 then return false end\n"
	"local t = redis.call('INCR', KEYS[2])\n"
	"redis.call('SET', KEYS[1], ARGV[1] .. ':' .. t, 'PX', ARGV[2])\n"
	"return t\n";

static const char lease_renew_lua[] =
	"if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
	"  return redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
	"end\n"
	"return 0\n";

static const char lease_release_lua[] =
	"if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
	"  return redis.call('DEL', KEYS[1])\n"
	"end\n"
	"return 0\n";

void
lease_init(struct lease *l, const char *host)
{
	memset(l, 0, sizeof(*l));
	snprintf(l->host, sizeof(l->host), "%s", host);
}

int
lease_acquire(redisContext *c, struct lease *l, int64_t now)
{
	redisReply	*r;
	char		 prefix[300];

	snprintf(prefix, sizeof(prefix), "%s:%ld", l->host, (long)getpid());
	r = redis_command(c, "EVAL %s 2 %s %s %s %d", lease_acquire_lua,
	    LEASE_KEY, LEASE_TOKEN_KEY, prefix, LEASE_TTL_MS);
	if (r == NULL)
		return -1;
	if (r->type != REDIS_REPLY_INTEGER) {
		freeReplyObject(r);
		return 0;
	}
	l->token = r->integer;
	freeReplyObject(r);
	snprintf(l->value, sizeof(l->value), "%s:%" PRId64, prefix, l->token);
	l->held = 1;
	l->valid_until = now + LEASE_TTL_MS - LEASE_MARGIN_MS;
	return 1;
}

int
lease_renew(redisContext *c, struct lease *l, int64_t now)
{
	redisReply	*r;
	long long	 ok;

	if (!l->held)
		return 0;
	r = redis_command(c, "EVAL %s 1 %s %s %d", lease_renew_lua, LEASE_KEY,
	    l->value, LEASE_TTL_MS);
	if (r == NULL) {
		/* Unknown outcome: stop acting until a renewal succeeds. */
		l->valid_until = 0;
		return -1;
	}
	ok = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
	freeReplyObject(r);
	if (ok != 1) {
		l->held = 0;
		l->valid_until = 0;
		return 0;
	}
	l->valid_until = now + LEASE_TTL_MS - LEASE_MARGIN_MS;
	return 1;
}

void
lease_release(redisContext *c, struct lease *l)
{
	redisReply *r;

	if (!l->held || c == NULL || c->err)
		return;
	r = redis_command(c, "EVAL %s 1 %s %s", lease_release_lua, LEASE_KEY,
	    l->value);
	if (r != NULL)
		freeReplyObject(r);
	l->held = 0;
	l->valid_until = 0;
}

int
lease_valid(const struct lease *l, int64_t now)
{
	return l->held && now < l->valid_until;
}

int
lease_parse(const char *value, char *host, size_t hostlen, long *pid,
    int64_t *token)
{
	const char	*t, *p;
	char		*end;

	if (value == NULL || (t = strrchr(value, ':')) == NULL || t == value)
		return -1;
	for (p = t - 1; p > value && *p != ':'; p--)
		;
	if (*p != ':' || p == value)
		return -1;
	*pid = strtol(p + 1, &end, 10);
	if (end != t)
		return -1;
	*token = strtoll(t + 1, &end, 10);
	if (*end != '\0' || end == t + 1)
		return -1;
	snprintf(host, hostlen, "%.*s", (int)(p - value), value);
	return 0;
}
