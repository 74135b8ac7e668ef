/*
 * health.c - GET /health for init scripts and load balancers.
 *
 * 200 when the broker answers, the database answers (when there is one)
 * and every queue this host runs workers for has at least one live
 * worker; 503 otherwise, with the failing parts named in "failing".  A
 * queue of concurrency 0 (or run by another host) has no slot here and
 * needs nothing.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "broker/redis.h"
#include "common/util.h"
#include "http/http_int.h"

static json_object *
check_redis(enum http_redis_which w, const char *name, json_object *failing)
{
	json_object	*o = json_object_new_object();
	redisContext	*c;
	redisReply	*r = NULL;
	int64_t		 t0 = mono_us();

	if ((c = http_redis(w)) != NULL)
		r = redisCommand(c, "PING");
	if (r && (r->type == REDIS_REPLY_STATUS ||
	    r->type == REDIS_REPLY_STRING)) {
		json_object_object_add(o, "status", json_object_new_string(
		    "ok"));
		json_object_object_add(o, "latency_seconds",
		    json_object_new_double((mono_us() - t0) / 1e6));
	} else {
		json_object_object_add(o, "status", json_object_new_string(
		    "fail"));
		json_object_object_add(o, "error", json_object_new_string(
		    c == NULL ? "cannot connect" : c->err ? c->errstr :
		    r ? r->str : "no answer"));
		json_object_array_add(failing, json_object_new_string(name));
	}
	if (r)
		freeReplyObject(r);
	http_redis_check(w);
	return o;
}

static json_object *
check_db(json_object *failing)
{
	json_object	*o = json_object_new_object();
	PGresult	*res;
	int64_t		 t0 = mono_us();
	int		 down;

	if (!http.has_db) {
		json_object_object_add(o, "status", json_object_new_string(
		    "not configured"));
		return o;
	}
	if ((res = http_pg_query("SELECT 1", 0, NULL, &down)) != NULL) {
		json_object_object_add(o, "status", json_object_new_string(
		    "ok"));
		json_object_object_add(o, "latency_seconds",
		    json_object_new_double((mono_us() - t0) / 1e6));
		PQclear(res);
	} else {
		json_object_object_add(o, "status", json_object_new_string(
		    "fail"));
		json_object_object_add(o, "error", json_object_new_string(
		    down ? "cannot connect" : "query failed"));
		json_object_array_add(failing, json_object_new_string(
		    "database"));
	}
	return o;
}

static json_object *
check_queues(json_object *failing)
{
	json_object	*o = json_object_new_object(), *e;
	struct http_agg	 a;
	char		 what[SB_QUEUELEN + 8];
	size_t		 i;
	int		 k, live[HTTP_MAXQ];

	http_agg_collect(&a);
	memset(live, 0, sizeof(live));
	for (k = 0; k < (int)http.sb->high; k++) {
		const struct sb_slot *s = &http.sb->slots[k];
		struct http_qstat *q;

		if (s->role != SB_ROLE_WORKER || !s->configured ||
		    !http_slot_live(s))
			continue;
		if ((q = http_agg_queue(&a, s->queue)) != NULL)
			live[q - a.q]++;
	}
	for (i = 0; i < a.nq; i++) {
		const struct http_qstat *q = &a.q[i];
		const char *st;

		if (q->configured == 0)
			st = "no workers here";
		else if (live[i] > 0)
			st = "ok";
		else {
			st = q->parked ? "parked" : "no live worker";
			snprintf(what, sizeof(what), "queue %s", q->name);
			json_object_array_add(failing,
			    json_object_new_string(what));
		}
		e = json_object_new_object();
		json_object_object_add(e, "status", json_object_new_string(st));
		json_object_object_add(e, "live", json_object_new_int(live[i]));
		json_object_object_add(e, "configured",
		    json_object_new_int(q->configured));
		json_object_object_add(o, q->name, e);
	}
	http_agg_free(&a);
	return o;
}

void
health_route(struct http_req *q, struct http_resp *r)
{
	json_object	*o, *comp, *failing;
	int		 bad;

	if (strcmp(q->method, "GET") != 0) {
		http_error(r, 405, "method not allowed", NULL);
		r->allow = "GET";
		return;
	}
	failing = json_object_new_array();
	comp = json_object_new_object();
	json_object_object_add(comp, "broker", check_redis(HTTP_BROKER,
	    "broker", failing));
	if (http.cfg->result_backend && strcmp(http.cfg->result_backend,
	    http.cfg->broker) != 0)
		json_object_object_add(comp, "result_backend",
		    check_redis(HTTP_BACKEND, "result_backend", failing));
	json_object_object_add(comp, "database", check_db(failing));
	json_object_object_add(comp, "queues", check_queues(failing));
	bad = json_object_array_length(failing) > 0;
	o = json_object_new_object();
	json_object_object_add(o, "status", json_object_new_string(bad ?
	    "fail" : "ok"));
	json_object_object_add(o, "components", comp);
	json_object_object_add(o, "failing", failing);
	json_object_object_add(o, "master_pid",
	    json_object_new_int(http.sb->master_pid));
	json_object_object_add(o, "uptime_seconds", json_object_new_double(
	    (mono_ms() - http.sb->started_ms) / 1000.0));
	http_reply_json(r, bad ? 503 : 200, o);
}
