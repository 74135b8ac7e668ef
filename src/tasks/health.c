/*
 * health.c - celeriac.health_check: Redis, PostgreSQL, each queue's
 * depth, live workers and oldest waiting message, and the live hosts.
 *
 * The outcome is kept where /health and `celeriac status` read it: the
 * Redis key celeriac.health (JSON, 15 minutes) and a health_checks row.
 *
 * How long the oldest message has waited: a Celery message carries no
 * sending time, so each check notes the id at the tail of each list and
 * when it first saw it there (celeriac.health.oldest); a message still at
 * the tail on the next check has waited at least that long.  When the
 * jobs table knows the task (the API or celeriac send recorded it), its
 * queued or created time gives the real age.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/message.h"
#include "broker/redis.h"
#include "common/util.h"
#include "store/pg.h"
#include "tasks/system.h"

/* A number with three decimals, printed as such. */
static json_object *
jnum(double d)
{
	char buf[64];

	snprintf(buf, sizeof(buf), "%.3f", d);
	return json_object_new_double_s(d, buf);
}

static json_object *
parse_obj(const char *s, size_t len)
{
	json_tokener	*tok;
	json_object	*o;

	if ((tok = json_tokener_new()) == NULL)
		return NULL;
	o = json_tokener_parse_ex(tok, s, (int)len);
	json_tokener_free(tok);
	if (o != NULL && !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		o = NULL;
	}
	return o;
}

/* {suffix: parsed value} of the keys prefix* holding JSON objects. */
static json_object *
scan_json(redisContext *r, const char *prefix)
{
	json_object	*out = json_object_new_object(), *v;
	redisReply	*rep, *val, *keys;
	char		 cursor[32] = "0", pattern[128];
	size_t		 i;

	snprintf(pattern, sizeof(pattern), "%s*", prefix);
	do {
		rep = redis_command(r, "SCAN %s MATCH %s COUNT 1000", cursor,
		    pattern);
		if (rep == NULL || rep->type != REDIS_REPLY_ARRAY ||
		    rep->elements != 2) {
			if (rep)
				freeReplyObject(rep);
			break;
		}
		snprintf(cursor, sizeof(cursor), "%s", rep->element[0]->str);
		keys = rep->element[1];
		for (i = 0; i < keys->elements; i++) {
			val = redis_command(r, "GET %b", keys->element[i]->str,
			    keys->element[i]->len);
			if (val && val->type == REDIS_REPLY_STRING &&
			    (v = parse_obj(val->str, val->len)) != NULL)
				json_object_object_add(out,
				    keys->element[i]->str + strlen(prefix), v);
			if (val)
				freeReplyObject(val);
		}
		freeReplyObject(rep);
	} while (strcmp(cursor, "0") != 0);
	return out;
}

static double
jdouble(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) ?
	    json_object_get_double(v) : 0;
}

static const char *
jstring(json_object *o, const char *key)
{
	const char *s = json_str(o, key);

	return s ? s : "";
}

/* Live hosts, and per queue the workers' states, from every host. */
static json_object *
health_hosts(redisContext *r, double now, json_object *perq)
{
	struct json_object_iterator	 it, end;
	json_object	*beats, *status, *hosts, *h, *ws, *w, *q;
	const char	*state;
	size_t		 i;

	beats = scan_json(r, "celeriac.host.");
	hosts = json_object_new_array();
	it = json_object_iter_begin(beats);
	end = json_object_iter_end(beats);
	for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
		w = json_object_iter_peek_value(&it);
		h = json_object_new_object();
		json_object_object_add(h, "host", json_object_new_string(
		    json_object_iter_peek_name(&it)));
		json_object_object_add(h, "master_pid", json_object_new_int(
		    (int)jdouble(w, "master_pid")));
		json_object_object_add(h, "heartbeat_age_s",
		    jnum(now - jdouble(w, "time")));
		json_object_array_add(hosts, h);
	}
	json_object_put(beats);
	status = scan_json(r, "celeriac.status.");
	it = json_object_iter_begin(status);
	end = json_object_iter_end(status);
	for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
		if (!json_object_object_get_ex(json_object_iter_peek_value(&it),
		    "workers", &ws) || !json_object_is_type(ws,
		    json_type_array))
			continue;
		for (i = 0; i < json_object_array_length(ws); i++) {
			w = json_object_array_get_idx(ws, i);
			if (!json_object_object_get_ex(perq, jstring(w,
			    "queue"), &q)) {
				q = json_object_new_object();
				json_object_object_add(perq, jstring(w,
				    "queue"), q);
			}
			state = jstring(w, "state");
			if (strcmp(state, "idle") && strcmp(state, "busy") &&
			    strcmp(state, "parked"))
				state = "other";
			json_object_object_add(q, state, json_object_new_int(
			    (int)jdouble(q, state) + 1));
		}
	}
	json_object_put(status);
	return hosts;
}

/* The id of a message (headers.id), or "" if it has none. */
static void
message_id(const redisReply *m, char *id, size_t len)
{
	json_object *o, *h;

	*id = '\0';
	if (m == NULL || m->type != REDIS_REPLY_STRING ||
	    (o = parse_obj(m->str, m->len)) == NULL)
		return;
	if (json_object_object_get_ex(o, "headers", &h))
		snprintf(id, len, "%s", jstring(h, "id"));
	json_object_put(o);
}

/*
 * How long the message id at the tail of list has waited, at least: from
 * when a check first saw it there, or from its job row.
 */
static double
waited(redisContext *r, PGconn *c, const char *list, const char *id,
    double now)
{
	redisReply	*rep;
	PGresult	*res;
	const char	*p[1] = { id };
	char		 seen[192], *sp;
	double		 since = now;
	int		 known = 0;

	rep = redis_command(r, "HGET %s %s", HEALTH_OLDEST_KEY, list);
	if (rep && rep->type == REDIS_REPLY_STRING &&
	    (sp = strchr(rep->str, ' ')) != NULL &&
	    (size_t)(sp - rep->str) == strlen(id) &&
	    strncmp(rep->str, id, sp - rep->str) == 0) {
		since = strtod(sp + 1, NULL);
		known = 1;
	}
	if (rep)
		freeReplyObject(rep);
	if (!known) {
		snprintf(seen, sizeof(seen), "%s %.3f", id, now);
		if ((rep = redis_command(r, "HSET %s %s %s", HEALTH_OLDEST_KEY,
		    list, seen)) != NULL)
			freeReplyObject(rep);
	}
	if (c != NULL) {
		res = PQexecParams(c, "SELECT extract(epoch FROM coalesce("
		    "queued_at, created_at))::double precision FROM jobs "
		    "WHERE task_id = $1", 1, NULL, p, NULL, NULL, 0);
		if (PQresultStatus(res) == PGRES_TUPLES_OK &&
		    PQntuples(res) == 1 && atof(PQgetvalue(res, 0, 0)) <
		    since)
			since = atof(PQgetvalue(res, 0, 0));
		PQclear(res);
	}
	return now - since;
}

static json_object *
health_queue(redisContext *r, PGconn *c, const struct cfg_queue *q,
    double now, json_object *perq, json_object *problems)
{
	json_object	*o, *prio, *w;
	redisReply	*rep;
	char		*list, id[128], oldest_id[128] = "", msg[256];
	long long	 depth = 0, n;
	double		 age, oldest = -1;
	int		 i, live;

	o = json_object_new_object();
	prio = json_object_new_object();
	for (i = 0; i < MSG_NBUCKETS; i++) {
		if ((list = msg_bucket_list(q->name,
		    msg_priority_steps[i])) == NULL)
			continue;
		rep = redis_command(r, "LLEN %s", list);
		n = rep && rep->type == REDIS_REPLY_INTEGER ? rep->integer : 0;
		if (rep)
			freeReplyObject(rep);
		snprintf(id, sizeof(id), "%d", msg_priority_steps[i]);
		json_object_object_add(prio, id, json_object_new_int64(n));
		depth += n;
		if (n == 0) {
			if ((rep = redis_command(r, "HDEL %s %s",
			    HEALTH_OLDEST_KEY, list)) != NULL)
				freeReplyObject(rep);
		} else {
			/* kombu pushes on the left, consumers pop right. */
			rep = redis_command(r, "LINDEX %s -1", list);
			message_id(rep, id, sizeof(id));
			if (rep)
				freeReplyObject(rep);
			if (*id && (age = waited(r, c, list, id, now)) >
			    oldest) {
				oldest = age;
				snprintf(oldest_id, sizeof(oldest_id), "%s",
				    id);
			}
		}
		free(list);
	}
	json_object_object_add(o, "depth", json_object_new_int64(depth));
	json_object_object_add(o, "by_priority", prio);
	json_object_object_add(o, "oldest_task_id", *oldest_id ?
	    json_object_new_string(oldest_id) : NULL);
	json_object_object_add(o, "oldest_waiting_s", oldest >= 0 ?
	    jnum(oldest) : NULL);
	if (!json_object_object_get_ex(perq, q->name, &w))
		w = NULL;
	live = (int)(jdouble(w, "idle") + jdouble(w, "busy"));
	json_object_object_add(o, "workers", json_object_new_int(live));
	json_object_object_add(o, "busy", json_object_new_int(
	    (int)jdouble(w, "busy")));
	json_object_object_add(o, "parked", json_object_new_int(
	    (int)jdouble(w, "parked")));
	/* A queue nobody serves is a problem only if it is meant to be
	 * served here or has messages waiting. */
	json_object_object_add(o, "ok", json_object_new_boolean(live > 0 ||
	    (q->concurrency == 0 && depth == 0)));
	if (!(live > 0 || (q->concurrency == 0 && depth == 0))) {
		snprintf(msg, sizeof(msg), "queue %s: no live worker%s",
		    q->name, jdouble(w, "parked") > 0 ? " (parked)" : "");
		json_object_array_add(problems, json_object_new_string(msg));
	}
	return o;
}

static json_object *
component(int ok, double ms, const char *err)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "ok", json_object_new_boolean(ok));
	if (ok)
		json_object_object_add(o, "latency_ms", jnum(ms));
	else
		json_object_object_add(o, "error", json_object_new_string(err));
	return o;
}

static double
timed(redisContext *r, PGconn *c, char *err, size_t errlen)
{
	int64_t		 t0 = mono_us();
	redisReply	*rep;
	PGresult	*res;
	int		 ok;

	if (r != NULL) {
		rep = redis_command(r, "PING");
		ok = rep != NULL && rep->type == REDIS_REPLY_STATUS;
		snprintf(err, errlen, "%s", r->err ? r->errstr : "no PONG");
		if (rep)
			freeReplyObject(rep);
	} else {
		res = PQexec(c, "SELECT 1");
		ok = PQresultStatus(res) == PGRES_TUPLES_OK;
		if (!ok)
			store_pg_error(c, res, err, errlen);
		PQclear(res);
	}
	return ok ? (mono_us() - t0) / 1000.0 : -1;
}

static void
save(redisContext *r, PGconn *c, json_object *o, int ok)
{
	const char	*text, *p[2];
	redisReply	*rep;
	PGresult	*res;

	text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	if (r && (rep = redis_command(r, "SET %s %s EX %d", HEALTH_KEY, text,
	    HEALTH_TTL_S)) != NULL)
		freeReplyObject(rep);
	if (c == NULL)
		return;
	p[0] = ok ? "true" : "false";
	p[1] = text;
	res = PQexecParams(c, "INSERT INTO health_checks (ok, detail) VALUES "
	    "($1, $2::jsonb)", 2, NULL, p, NULL, NULL, 0);
	PQclear(res);
}

int
sys_health_check(struct task_ctx *ctx)
{
	const struct config	*cfg = ctx->cfg;
	json_object		*o, *queues, *perq, *problems;
	redisContext		*r;
	PGconn			*c = NULL;
	char			 err[512], when[64];
	double			 now = now_unix(), ms = 0;
	time_t			 t = (time_t)now;
	struct tm		 tm;
	size_t			 i;
	int			 ok = 1;

	o = json_object_new_object();
	problems = json_object_new_array();
	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_object_object_add(o, "time", json_object_new_string(when));
	json_object_object_add(o, "checked_by", json_object_new_string(
	    cfg->hostname ? cfg->hostname : host_name()));

	if ((r = sys_redis(cfg->broker, err, sizeof(err))) != NULL &&
	    (ms = timed(r, NULL, err, sizeof(err))) < 0) {
		redisFree(r);
		r = NULL;
	}
	json_object_object_add(o, "redis", component(r != NULL, ms, err));
	if (r == NULL) {
		ok = 0;
		json_object_array_add(problems,
		    json_object_new_string("redis unreachable"));
	}

	if (cfg->database == NULL || *cfg->database == '\0')
		json_object_object_add(o, "database", NULL);
	else {
		if ((c = sys_pg(cfg, 3, err, sizeof(err))) != NULL &&
		    (ms = timed(NULL, c, err, sizeof(err))) < 0) {
			PQfinish(c);
			c = NULL;
		}
		json_object_object_add(o, "database", component(c != NULL, ms,
		    err));
		if (c == NULL) {
			ok = 0;
			json_object_array_add(problems,
			    json_object_new_string("database unreachable"));
		}
	}

	if (r != NULL) {
		perq = json_object_new_object();
		json_object_object_add(o, "hosts", health_hosts(r, now, perq));
		queues = json_object_new_object();
		for (i = 0; i < cfg->nqueues; i++)
			json_object_object_add(queues, cfg->queues[i].name,
			    health_queue(r, c, &cfg->queues[i], now, perq,
			    problems));
		json_object_object_add(o, "queues", queues);
		json_object_put(perq);
	}
	if (json_object_array_length(problems) > 0)
		ok = 0;
	json_object_object_add(o, "ok", json_object_new_boolean(ok));
	json_object_object_add(o, "problems", problems);
	save(r, c, o, ok);
	if (r)
		redisFree(r);
	if (c)
		PQfinish(c);
	return task_succeed(ctx, o);
}
