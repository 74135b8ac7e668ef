/*
 * queues.c - GET /api/v1/reports/queues/status: per queue, the depth of
 * each priority list, the workers by state, how long the oldest message
 * has waited, the rates of the last minute and the totals.
 */
#include <stdio.h>
#include <string.h>

#include "broker/message.h"
#include "broker/redis.h"
#include "common/util.h"
#include "http/http_int.h"

void
api_queues_status(struct http_req *q, struct http_resp *r)
{
	struct http_agg	 a;
	json_object	*o, *arr, *e, *d, *w, *rt, *tot;
	redisContext	*c;
	redisReply	*rep;
	long long	 depth[MSG_NBUCKETS], total;
	double		 since, proc, fail, now = now_unix();
	char		 key[4];
	size_t		 i;
	int		 b, known, broker = 1;

	http_agg_collect(&a);
	arr = json_object_new_array();
	for (i = 0; i < a.nq; i++) {
		const struct http_qstat *s = &a.q[i];

		e = json_object_new_object();
		json_object_object_add(e, "name", json_object_new_string(
		    s->name));
		json_object_object_add(e, "concurrency", json_object_new_int(
		    s->concurrency >= 0 ? s->concurrency : s->configured));
		json_object_object_add(e, "priority",
		    json_object_new_int(s->priority));
		if (http_queue_depths(s->name, depth) == -1)
			broker = 0;
		d = json_object_new_object();
		total = 0;
		for (b = 0; b < MSG_NBUCKETS; b++) {
			snprintf(key, sizeof(key), "%d", msg_priority_steps[b]);
			json_object_object_add(d, key, depth[b] < 0 ? NULL :
			    json_object_new_int64(depth[b]));
			total += depth[b] > 0 ? depth[b] : 0;
		}
		json_object_object_add(e, "depth", d);
		json_object_object_add(e, "messages", depth[0] < 0 ? NULL :
		    json_object_new_int64(total));
		w = json_object_new_object();
		json_object_object_add(w, "busy", json_object_new_int(s->busy));
		json_object_object_add(w, "idle", json_object_new_int(s->idle));
		json_object_object_add(w, "starting",
		    json_object_new_int(s->starting));
		json_object_object_add(w, "stopping",
		    json_object_new_int(s->stopping));
		json_object_object_add(w, "down", json_object_new_int(s->down));
		json_object_object_add(w, "parked",
		    json_object_new_int(s->parked));
		json_object_object_add(e, "workers", w);
		json_object_object_add(e, "parked", json_object_new_boolean(
		    s->parked > 0));
		since = http_oldest_since(s->name, &known);
		json_object_object_add(e, "oldest_message_age_seconds",
		    depth[0] < 0 ? NULL : total == 0 ?
		    json_object_new_double(0) :
		    since > 0 ? json_object_new_double((long)((now - since) *
		    1000) / 1000.0) : NULL);
		json_object_object_add(e, "oldest_message_age_exact",
		    json_object_new_boolean(total == 0 || known));
		http_rates(s->name, &proc, &fail);
		rt = json_object_new_object();
		json_object_object_add(rt, "processed_per_second",
		    json_object_new_double((long)(proc * 1000) / 1000.0));
		json_object_object_add(rt, "failed_per_second",
		    json_object_new_double((long)(fail * 1000) / 1000.0));
		json_object_object_add(rt, "window_seconds",
		    json_object_new_int(60));
		json_object_object_add(e, "rates", rt);
		tot = json_object_new_object();
		json_object_object_add(tot, "succeeded", json_object_new_int64(
		    s->count[SB_SUCCEEDED]));
		json_object_object_add(tot, "failed", json_object_new_int64(
		    s->count[SB_FAILED]));
		json_object_object_add(tot, "retried", json_object_new_int64(
		    s->count[SB_RETRIED]));
		json_object_object_add(tot, "revoked", json_object_new_int64(
		    s->count[SB_REVOKED]));
		json_object_object_add(e, "totals", tot);
		json_object_object_add(e, "restarts",
		    json_object_new_int64(s->restarts));
		json_object_array_add(arr, e);
	}
	http_agg_free(&a);
	o = json_object_new_object();
	json_object_object_add(o, "queues", arr);
	rep = NULL;
	if (broker && (c = http_redis(HTTP_BROKER)) != NULL &&
	    (rep = redis_command(c, "ZCARD %s", "celeriac.eta")) != NULL &&
	    rep->type == REDIS_REPLY_INTEGER)
		json_object_object_add(o, "scheduled",
		    json_object_new_int64(rep->integer));
	else
		json_object_object_add(o, "scheduled", NULL);
	if (rep)
		freeReplyObject(rep);
	json_object_object_add(o, "broker", json_object_new_string(broker ?
	    "ok" : "unavailable"));
	json_object_object_add(o, "time", json_object_new_double(now));
	http_reply_json(r, 200, o);
}
