/*
 * fire.c - one fire of a beat entry, fenced by the lease (see fire.h).
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "beat/cron.h"
#include "beat/fire.h"
#include "broker/message.h"
#include "broker/redis.h"
#include "common/log.h"

/*
 * KEYS: lease, last-fire hash, kombu binding set, queue list, history.
 * ARGV: lease value, entry, fire time (s), record, binding member,
 * envelope, history record, last history index.  Returns 1 fired, 0
 * lease lost, -1 this fire (or a later one) is already recorded.
 */
static const char beat_fire_lua[] =
	"if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end\n"
	"local old = redis.call('HGET', KEYS[2], ARGV[2])\n"
	"if old then\n"
	"  local ok, o = pcall(cjson.decode, old)\n"
	"  if ok and type(o) == 'table' and tonumber(o['fire_time']) and\n"
	"      tonumber(o['fire_time']) >= tonumber(ARGV[3]) - 0.0005 then\n"
	"    return -1\n"
	"  end\n"
	"end\n"
	"redis.call('HSET', KEYS[2], ARGV[2], ARGV[4])\n"
	"redis.call('SADD', KEYS[3], ARGV[5])\n"
	"redis.call('LPUSH', KEYS[4], ARGV[6])\n"
	"redis.call('LPUSH', KEYS[5], ARGV[7])\n"
	"redis.call('LTRIM', KEYS[5], 0, tonumber(ARGV[8]))\n"
	"return 1\n";

int
beat_entry_init(struct beat_entry *e, const struct config *cfg,
    const struct cfg_beat_entry *ce, char *err, size_t errlen)
{
	const struct cfg_task	*t;
	const struct cfg_queue	*q;

	memset(e, 0, sizeof(*e));
	e->cfg = ce;
	if (beat_sched_init(&e->sched, ce, err, errlen) == -1)
		return -1;
	e->args = json_tokener_parse(ce->args_json ? ce->args_json : "[]");
	e->kwargs = json_tokener_parse(ce->kwargs_json ? ce->kwargs_json :
	    "{}");
	if (!json_object_is_type(e->args, json_type_array) ||
	    !json_object_is_type(e->kwargs, json_type_object)) {
		snprintf(err, errlen, "args must be a list and kwargs a "
		    "mapping");
		return -1;
	}
	/* Routed like any task: the entry's queue, the task's, celery. */
	t = cfg_task_find(cfg, ce->task);
	e->queue = beat_entry_queue(cfg, ce);
	q = cfg_queue_find(cfg, e->queue);
	e->priority = q ? q->priority : 0;
	e->ignore_result = t ? t->ignore_result : 0;
	e->ok = 1;
	return 0;
}

void
beat_entry_free(struct beat_entry *e)
{
	json_object_put(e->args);
	json_object_put(e->kwargs);
	e->args = e->kwargs = NULL;
	e->ok = 0;
}

int64_t
beat_record_ms(const char *json)
{
	json_object	*o, *v;
	int64_t		 ms = -1;

	if ((o = json_tokener_parse(json)) == NULL)
		return -1;
	if (json_object_object_get_ex(o, "fire_time", &v))
		ms = (int64_t)llround(json_object_get_double(v) * 1000.0);
	json_object_put(o);
	return ms;
}

int
beat_fire(redisContext *c, const struct lease *l,
    const struct beat_entry *e, const struct beat_due *d, int64_t now)
{
	struct msg_new	 m;
	json_object	*rec;
	redisReply	*r;
	char		 id[37] = "", when[48], ft[32], sent[32];
	char		 binding[300], member[300];
	char		*env = NULL, *list = NULL, *rec_s = NULL, *hist_s = NULL;
	char		 trim[16];
	const char	*argv[16];
	size_t		 len[16];
	int		 i, rc = BEAT_FIRE_ERROR;

	memset(&m, 0, sizeof(m));
	m.task = e->cfg->task;
	m.queue = e->queue;
	m.args = e->args;
	m.kwargs = e->kwargs;
	m.priority = e->priority;
	m.ignore_result = e->ignore_result;
	if ((env = msg_encode(&m, id)) == NULL ||
	    (list = msg_bucket_list(e->queue, e->priority)) == NULL) {
		log_warnx("%s: cannot build the message", e->cfg->name);
		goto out;
	}
	snprintf(trim, sizeof(trim), "%d", BEAT_HISTORY_LEN - 1);
	snprintf(ft, sizeof(ft), "%" PRId64 ".%03d", d->fire_ms / 1000,
	    (int)(d->fire_ms % 1000));
	cron_format(d->fire_ms, e->sched.tz, when, sizeof(when));
	rec = json_object_new_object();
	json_object_object_add(rec, "fire_time",
	    json_object_new_double_s((double)d->fire_ms / 1000.0, ft));
	json_object_object_add(rec, "scheduled", json_object_new_string(when));
	json_object_object_add(rec, "token",
	    json_object_new_int64(l->token));
	json_object_object_add(rec, "task_id", json_object_new_string(id));
	json_object_object_add(rec, "host",
	    json_object_new_string(l->host));
	snprintf(sent, sizeof(sent), "%" PRId64 ".%03d", now / 1000,
	    (int)(now % 1000));
	json_object_object_add(rec, "sent_at",
	    json_object_new_double_s((double)now / 1000.0, sent));
	rec_s = strdup(json_object_to_json_string_ext(rec,
	    JSON_C_TO_STRING_PLAIN));
	json_object_object_add(rec, "entry",
	    json_object_new_string(e->cfg->name));
	hist_s = strdup(json_object_to_json_string_ext(rec,
	    JSON_C_TO_STRING_PLAIN));
	json_object_put(rec);
	if (rec_s == NULL || hist_s == NULL) {
		log_warnx("%s: out of memory", e->cfg->name);
		goto out;
	}
	/* Declare and bind the queue, as publish_task() and Celery do. */
	snprintf(binding, sizeof(binding), "_kombu.binding.%s", e->queue);
	snprintf(member, sizeof(member), "%s" MSG_SEP MSG_SEP "%s", e->queue,
	    e->queue);

	argv[0] = "EVAL";
	argv[1] = beat_fire_lua;
	argv[2] = "5";
	argv[3] = LEASE_KEY;
	argv[4] = BEAT_LAST_KEY;
	argv[5] = binding;
	argv[6] = list;
	argv[7] = BEAT_HISTORY_KEY;
	argv[8] = l->value;
	argv[9] = e->cfg->name;
	argv[10] = ft;
	argv[11] = rec_s;
	argv[12] = member;
	argv[13] = env;
	argv[14] = hist_s;
	argv[15] = trim;
	for (i = 0; i < 16; i++)
		len[i] = strlen(argv[i]);
	r = redis_commandv(c, 16, argv, len);
	if (r == NULL)
		goto out;
	rc = r->type != REDIS_REPLY_INTEGER ? BEAT_FIRE_ERROR :
	    r->integer == 1 ? BEAT_FIRE_OK : r->integer == 0 ?
	    BEAT_FIRE_LOST : BEAT_FIRE_ALREADY;
	freeReplyObject(r);
	if (rc != BEAT_FIRE_OK)
		goto out;
	if (d->nmissed != 0) {
		char first[48], count[32] = "many";

		cron_format(d->first_ms, e->sched.tz, first, sizeof(first));
		if (d->nmissed > 0)
			snprintf(count, sizeof(count), "%" PRId64,
			    d->nmissed);
		if (e->cfg->skip_missed)
			log_notice("%s: skipped %s missed fire(s) since "
			    "%s (skip_missed)", e->cfg->name, count, first);
		else
			log_notice("%s: catch-up: %s missed fire(s) "
			    "since %s run once, as the one scheduled %s",
			    e->cfg->name, count, first, when);
	}
	log_info("fired %s: task %s id %s queue %s scheduled %s lag "
	    "%" PRId64 " ms token %" PRId64, e->cfg->name, e->cfg->task, id,
	    e->queue, when, now - d->fire_ms, l->token);
out:
	free(env);
	free(list);
	free(rec_s);
	free(hist_s);
	return rc;
}
