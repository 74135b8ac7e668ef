/*
 * eta.c - the delayed-message set (see eta.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/eta.h"
#include "broker/redis.h"
#include "common/log.h"

/*
 * Runs inside Redis so that a message is never in both places nor in
 * neither.  The target list is computed from the envelope as kombu does:
 * the routing key, plus SEP and the priority step for priorities >= 3.
 * An envelope Lua cannot decode goes to the dead letters with its reason.
 */
static const char eta_lua[] =
	"local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1],"
	"  'LIMIT', 0, 100)\n"
	"for _, m in ipairs(due) do\n"
	"  redis.call('ZREM', KEYS[1], m)\n"
	"  local ok, env = pcall(cjson.decode, m)\n"
	"  local rk = nil\n"
	"  local pri = 0\n"
	"  if ok and type(env) == 'table' and type(env.properties) == 'table'"
	"  then\n"
	"    local di = env.properties.delivery_info\n"
	"    if type(di) == 'table' and type(di.routing_key) == 'string' then\n"
	"      rk = di.routing_key end\n"
	"    if type(env.properties.priority) == 'number' then\n"
	"      pri = env.properties.priority end\n"
	"  end\n"
	"  if rk then\n"
	"    local step = 0\n"
	"    if pri >= 9 then step = 9 elseif pri >= 6 then step = 6\n"
	"    elseif pri >= 3 then step = 3 end\n"
	"    local list = rk\n"
	"    if step > 0 then list = rk .. '\\6\\22' .. step end\n"
	"    redis.call('LPUSH', list, m)\n"
	"  else\n"
	"    redis.call('LPUSH', KEYS[2], cjson.encode({reason ="
	"      'ETA message without a routing key', message = m,"
	"      time = tonumber(ARGV[1])}))\n"
	"  end\n"
	"end\n"
	"local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')\n"
	"return {#due, nxt[2] or ''}\n";

static char eta_sha[41];

int
eta_defer(redisContext *c, const char *raw, size_t len, double eta,
    const char *ack_list)
{
	char score[64];

	snprintf(score, sizeof(score), "%.6f", eta);
	redisAppendCommand(c, "MULTI");
	redisAppendCommand(c, "ZADD %s %s %b", ETA_KEY, score, raw, len);
	redisAppendCommand(c, "DEL %s", ack_list);
	redisAppendCommand(c, "EXEC");
	return redis_read_replies(c, 4, NULL);
}

int
eta_move_due(redisContext *c, double now, double *next)
{
	redisReply	*r;
	char		 ts[64];
	int		 n, tries;

	*next = 0;
	snprintf(ts, sizeof(ts), "%.6f", now);
	for (tries = 0; tries < 2; tries++) {
		if (eta_sha[0] == '\0') {
			r = redis_command(c, "SCRIPT LOAD %s", eta_lua);
			if (r == NULL)
				return -1;
			snprintf(eta_sha, sizeof(eta_sha), "%s", r->str);
			freeReplyObject(r);
		}
		r = redisCommand(c, "EVALSHA %s 2 %s celeriac.dead %s", eta_sha,
		    ETA_KEY, ts);
		if (r == NULL)
			return -1;
		if (r->type == REDIS_REPLY_ERROR &&
		    strncmp(r->str, "NOSCRIPT", 8) == 0) {
			freeReplyObject(r);
			eta_sha[0] = '\0';
			continue;
		}
		break;
	}
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
		log_warnx("eta: %s", r->type == REDIS_REPLY_ERROR ? r->str :
		    "unexpected reply");
		freeReplyObject(r);
		return 0;
	}
	n = (int)r->element[0]->integer;
	if (r->element[1]->type == REDIS_REPLY_STRING && r->element[1]->len)
		*next = atof(r->element[1]->str);
	freeReplyObject(r);
	return n;
}
