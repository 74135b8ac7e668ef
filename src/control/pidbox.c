/*
 * pidbox.c - remote control on kombu's Redis pidbox (see pidbox.h and
 * celery-wire.md section 9).
 *
 * Requests are broadcast on /<db>.celery.pidbox; each node filters by
 * destination.  Replies are LPUSHed to the reply queues found through the
 * binding set _kombu.binding.reply.celery.pidbox, never blindly, so a
 * client that already left gets nothing left behind.
 */
#include <sys/resource.h>

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fnmatch.h>

#include <json-c/json.h>

#include "broker/envelope.h"
#include "broker/eta.h"
#include "broker/message.h"
#include "broker/redis.h"
#include "broker/revoke.h"
#include "common/celeriac.h"
#include "common/log.h"
#include "common/util.h"
#include "control/pidbox.h"
#include "tasks/registry.h"

#define OWN_BINDINGS	"_kombu.binding.celery.pidbox"

void
pidbox_init(struct pidbox *p, struct worker *w, struct scoreboard *sb,
    struct events *ev, int notify_fd)
{
	memset(p, 0, sizeof(*p));
	p->w = w;
	p->sb = sb;
	p->ev = ev;
	p->notify_fd = notify_fd;
	p->started = now_unix();
	snprintf(p->channel, sizeof(p->channel), "/%d.celery.pidbox",
	    w->broker_url.db);
}

void
pidbox_declare(struct pidbox *p)
{
	char		 member[400];
	redisReply	*r;

	snprintf(member, sizeof(member), MSG_SEP MSG_SEP "%s.celery.pidbox",
	    p->ev->node);
	if (p->w->broker && (r = redis_command(p->w->broker, "SADD %s %s",
	    OWN_BINDINGS, member)) != NULL)
		freeReplyObject(r);
}

void
pidbox_leave(struct pidbox *p)
{
	char		 member[400];
	redisReply	*r;

	snprintf(member, sizeof(member), MSG_SEP MSG_SEP "%s.celery.pidbox",
	    p->ev->node);
	if (p->w->broker && (r = redis_command(p->w->broker, "SREM %s %s",
	    OWN_BINDINGS, member)) != NULL)
		freeReplyObject(r);
}

void
pidbox_host_counts(const struct scoreboard *sb, int *active,
    uint64_t *processed)
{
	int i;

	*active = 0;
	*processed = 0;
	for (i = 0; i < (int)sb->high; i++) {
		const struct sb_slot *s = &sb->slots[i];
		if (s->role != SB_ROLE_WORKER || !s->configured)
			continue;
		if (s->pid > 0 && s->state == SB_BUSY)
			(*active)++;
		*processed += s->processed;
	}
}

/* ---- helpers ---------------------------------------------------- */

static json_object *
ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static json_object *
ok(const char *fmt, ...)
{
	json_object	*o = json_object_new_object();
	char		 buf[2048];
	va_list		 ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	json_object_object_add(o, "ok", json_object_new_string(buf));
	return o;
}

static json_object *
error(const char *msg)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "error", json_object_new_string(msg));
	return o;
}

static const struct cfg_queue *
default_queue(const struct config *cfg, json_object *args)
{
	const char		*name = json_str(args, "queue");
	const struct cfg_queue	*q;

	if (name)
		return cfg_queue_find(cfg, name);
	if ((q = cfg_queue_find(cfg, "celery")) != NULL)
		return q;
	return cfg->nqueues ? &cfg->queues[0] : NULL;
}

/* The request info of a message (Celery's Request.info()). */
static json_object *
request_info(struct pidbox *p, const char *raw, size_t len, int active,
    int pid, double started)
{
	struct task_msg	 m;
	json_object	*o, *di;
	char		 err[256];

	if (msg_decode(raw, len, &m, err, sizeof(err)) == -1)
		return NULL;
	o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_string(m.id));
	json_object_object_add(o, "name", json_object_new_string(m.task));
	json_object_object_add(o, "args", json_object_get(m.args));
	json_object_object_add(o, "kwargs", json_object_get(m.kwargs));
	json_object_object_add(o, "type", json_object_new_string(m.task));
	json_object_object_add(o, "hostname", json_object_new_string(
	    p->ev->node));
	json_object_object_add(o, "time_start", active ?
	    json_object_new_double(started) : NULL);
	json_object_object_add(o, "acknowledged",
	    json_object_new_boolean(active));
	di = json_object_new_object();
	json_object_object_add(di, "exchange", json_object_new_string(
	    m.exchange ? m.exchange : ""));
	json_object_object_add(di, "routing_key", m.routing_key ?
	    json_object_new_string(m.routing_key) : NULL);
	json_object_object_add(di, "priority", json_object_new_int(m.priority));
	json_object_object_add(di, "redelivered",
	    json_object_new_boolean(m.redelivered));
	json_object_object_add(o, "delivery_info", di);
	json_object_object_add(o, "worker_pid", active ?
	    json_object_new_int(pid) : NULL);
	msg_clear(&m);
	return o;
}

/* ---- inspect ---------------------------------------------------- */

static json_object *
do_active(struct pidbox *p)
{
	json_object	*list = json_object_new_array(), *info;
	redisReply	*r;
	char		 key[512], id[SB_TASKIDLEN];
	int64_t		 since;
	int		 i;

	for (i = 0; i < (int)p->sb->high; i++) {
		struct sb_slot *s = &p->sb->slots[i];
		if (s->role != SB_ROLE_WORKER || s->pid <= 0 ||
		    s->state != SB_BUSY ||
		    !sb_read_task(s, id, sizeof(id), NULL, 0, &since))
			continue;
		/* The message itself is in the slot's processing list. */
		snprintf(key, sizeof(key), "celeriac.processing.%s.%s.%d",
		    p->w->cfg->hostname, s->queue, s->index);
		r = redis_command(p->w->broker, "LINDEX %s 0", key);
		if (r && r->type == REDIS_REPLY_STRING &&
		    (info = request_info(p, r->str, r->len, 1, s->pid,
		    now_unix() - (mono_ms() - since) / 1000.0)) != NULL)
			json_object_array_add(list, info);
		if (r)
			freeReplyObject(r);
	}
	return list;
}

static json_object *
do_scheduled(struct pidbox *p)
{
	json_object	*list = json_object_new_array(), *e, *info;
	redisReply	*r;
	char		 iso[48];
	size_t		 i;

	r = redis_command(p->w->broker, "ZRANGE %s 0 999 WITHSCORES", ETA_KEY);
	for (i = 0; r && i + 1 < r->elements; i += 2) {
		struct task_msg m;
		char err[256];
		if ((info = request_info(p, r->element[i]->str,
		    r->element[i]->len, 0, 0, 0)) == NULL)
			continue;
		e = json_object_new_object();
		msg_format_iso8601(atof(r->element[i + 1]->str), iso,
		    sizeof(iso));
		json_object_object_add(e, "eta", json_object_new_string(iso));
		if (msg_decode(r->element[i]->str, r->element[i]->len, &m, err,
		    sizeof(err)) == 0) {
			json_object_object_add(e, "priority",
			    json_object_new_int(m.priority));
			msg_clear(&m);
		}
		json_object_object_add(e, "request", info);
		json_object_array_add(list, e);
	}
	if (r)
		freeReplyObject(r);
	return list;
}

static json_object *
do_registered(struct pidbox *p)
{
	json_object			*list = json_object_new_array();
	const struct builtin_task	*t;
	size_t				 i;

	for (i = 0; i < p->w->cfg->ntasks; i++)
		json_object_array_add(list, json_object_new_string(
		    p->w->cfg->tasks[i].name));
	for (i = 0; (t = task_registry_at(i)) != NULL; i++)
		if (strncmp(t->name, "celeriac.", 9) == 0)
			json_object_array_add(list,
			    json_object_new_string(t->name));
	return list;
}

static json_object *
do_revoked(struct pidbox *p)
{
	json_object	*list = json_object_new_array();
	redisReply	*r;
	char		 now[64];
	size_t		 i;

	snprintf(now, sizeof(now), "%.3f", now_unix());
	r = redis_command(p->w->broker, "ZRANGEBYSCORE %s %s +inf",
	    REVOKED_KEY, now);
	for (i = 0; r && i < r->elements; i++)
		json_object_array_add(list, json_object_new_string(
		    r->element[i]->str));
	if (r)
		freeReplyObject(r);
	return list;
}

static json_object *
queue_description(const char *name)
{
	json_object *q = json_object_new_object(), *x;

	json_object_object_add(q, "name", json_object_new_string(name));
	x = json_object_new_object();
	json_object_object_add(x, "name", json_object_new_string(name));
	json_object_object_add(x, "type", json_object_new_string("direct"));
	json_object_object_add(x, "arguments", NULL);
	json_object_object_add(x, "durable", json_object_new_boolean(1));
	json_object_object_add(x, "passive", json_object_new_boolean(0));
	json_object_object_add(x, "auto_delete", json_object_new_boolean(0));
	json_object_object_add(x, "delivery_mode", NULL);
	json_object_object_add(x, "no_declare", json_object_new_boolean(0));
	json_object_object_add(q, "exchange", x);
	json_object_object_add(q, "routing_key", json_object_new_string(name));
	json_object_object_add(q, "queue_arguments", NULL);
	json_object_object_add(q, "binding_arguments", NULL);
	json_object_object_add(q, "consumer_arguments", NULL);
	json_object_object_add(q, "durable", json_object_new_boolean(1));
	json_object_object_add(q, "exclusive", json_object_new_boolean(0));
	json_object_object_add(q, "auto_delete", json_object_new_boolean(0));
	json_object_object_add(q, "no_ack", json_object_new_boolean(0));
	json_object_object_add(q, "alias", NULL);
	json_object_object_add(q, "bindings", json_object_new_array());
	json_object_object_add(q, "no_declare", NULL);
	json_object_object_add(q, "expires", NULL);
	json_object_object_add(q, "message_ttl", NULL);
	json_object_object_add(q, "max_length", NULL);
	json_object_object_add(q, "max_length_bytes", NULL);
	json_object_object_add(q, "max_priority", NULL);
	return q;
}

static json_object *
do_active_queues(struct pidbox *p)
{
	json_object	*list = json_object_new_array();
	size_t		 i;

	for (i = 0; i < p->w->cfg->nqueues; i++)
		if (p->w->cfg->queues[i].concurrency > 0)
			json_object_array_add(list, queue_description(
			    p->w->cfg->queues[i].name));
	return list;
}

static json_object *
do_stats(struct pidbox *p)
{
	const struct config	*cfg = p->w->cfg;
	json_object		*o, *total, *pool, *procs, *br, *ru, *to;
	struct rusage		 r;
	int			 i, k, n = 0;

	o = json_object_new_object();
	total = json_object_new_object();
	procs = json_object_new_array();
	for (i = 0; i < (int)p->sb->high; i++) {
		struct sb_slot *s = &p->sb->slots[i];
		if (s->role != SB_ROLE_WORKER || !s->configured)
			continue;
		n++;
		if (s->pid > 0)
			json_object_array_add(procs,
			    json_object_new_int(s->pid));
		for (k = 0; k < SB_NSTATS && s->stats[k].name[0]; k++) {
			struct sb_taskstat *st = &s->stats[k];
			json_object *v;
			int64_t c = (int64_t)(st->count[SB_SUCCEEDED] +
			    st->count[SB_FAILED] + st->count[SB_REVOKED]);
			if (json_object_object_get_ex(total, st->name, &v))
				c += json_object_get_int64(v);
			json_object_object_add(total, st->name,
			    json_object_new_int64(c));
		}
	}
	json_object_object_add(o, "total", total);
	json_object_object_add(o, "pid", json_object_new_int(
	    p->sb->master_pid));
	{
		char clock[32];
		snprintf(clock, sizeof(clock), "%lld",
		    (long long)p->ev->clock);
		json_object_object_add(o, "clock",
		    json_object_new_string(clock));
	}
	json_object_object_add(o, "uptime", json_object_new_int64(
	    (mono_ms() - p->sb->started_ms) / 1000));
	pool = json_object_new_object();
	json_object_object_add(pool, "max-concurrency", json_object_new_int(n));
	json_object_object_add(pool, "processes", procs);
	json_object_object_add(pool, "max-tasks-per-child",
	    json_object_new_string("N/A"));
	json_object_object_add(pool, "put-guarded-by-semaphore",
	    json_object_new_boolean(0));
	to = json_object_new_array();
	json_object_array_add(to, json_object_new_int(0));
	json_object_array_add(to, json_object_new_int(0));
	json_object_object_add(pool, "timeouts", to);
	json_object_object_add(o, "pool", pool);
	br = json_object_new_object();
	json_object_object_add(br, "hostname", json_object_new_string(
	    p->w->broker_url.host));
	json_object_object_add(br, "userid", NULL);
	{
		char db[16];
		snprintf(db, sizeof(db), "%d", p->w->broker_url.db);
		json_object_object_add(br, "virtual_host",
		    json_object_new_string(db));
	}
	json_object_object_add(br, "port", json_object_new_int(
	    p->w->broker_url.port));
	json_object_object_add(br, "transport", json_object_new_string(
	    "redis"));
	json_object_object_add(br, "ssl", json_object_new_boolean(0));
	json_object_object_add(o, "broker", br);
	json_object_object_add(o, "prefetch_count", json_object_new_int(n));
	getrusage(RUSAGE_CHILDREN, &r);
	ru = json_object_new_object();
	json_object_object_add(ru, "utime", json_object_new_double(
	    r.ru_utime.tv_sec + r.ru_utime.tv_usec / 1e6));
	json_object_object_add(ru, "stime", json_object_new_double(
	    r.ru_stime.tv_sec + r.ru_stime.tv_usec / 1e6));
	json_object_object_add(ru, "maxrss", json_object_new_int64(
	    r.ru_maxrss));
	json_object_object_add(ru, "minflt", json_object_new_int64(
	    r.ru_minflt));
	json_object_object_add(ru, "majflt", json_object_new_int64(
	    r.ru_majflt));
	json_object_object_add(ru, "nvcsw", json_object_new_int64(r.ru_nvcsw));
	json_object_object_add(ru, "nivcsw", json_object_new_int64(
	    r.ru_nivcsw));
	json_object_object_add(o, "rusage", ru);
	json_object_object_add(o, "sw_ident", json_object_new_string(
	    CELERIAC_SW_IDENT));
	json_object_object_add(o, "sw_ver", json_object_new_string(
	    PACKAGE_VERSION));
	(void)cfg;
	return o;
}

static json_object *
do_conf(struct pidbox *p)
{
	const struct config	*cfg = p->w->cfg;
	json_object		*o = json_object_new_object(), *a;

	/* A safe subset: no URLs (they may carry passwords). */
	json_object_object_add(o, "task_serializer",
	    json_object_new_string("json"));
	json_object_object_add(o, "result_serializer",
	    json_object_new_string("json"));
	a = json_object_new_array();
	json_object_array_add(a, json_object_new_string("json"));
	json_object_object_add(o, "accept_content", a);
	json_object_object_add(o, "result_expires", json_object_new_int64(
	    cfg->result_expires_ms / 1000));
	json_object_object_add(o, "task_track_started",
	    json_object_new_boolean(cfg->track_started));
	json_object_object_add(o, "worker_send_task_events",
	    json_object_new_boolean(p->sb->task_events));
	json_object_object_add(o, "environment", json_object_new_string(
	    cfg_environment_name(cfg->environment)));
	return o;
}

static json_object *
do_report(struct pidbox *p)
{
	int		active;
	uint64_t	processed;

	pidbox_host_counts(p->sb, &active, &processed);
	return ok("celeriac %s on %s: %d task%s running, %llu processed",
	    PACKAGE_VERSION, p->ev->node, active, active == 1 ? "" : "s",
	    (unsigned long long)processed);
}

/* ---- control ---------------------------------------------------- */

static json_object *
do_revoke(struct pidbox *p, json_object *args, int force_terminate)
{
	json_object	*ids, *v;
	const char	*sig = json_str(args, "signal");
	char		 list[1024] = "";
	int		 terminate = force_terminate, n = 0, found = 0;
	size_t		 i, cnt;

	if (json_object_object_get_ex(args, "terminate", &v))
		terminate |= json_object_get_boolean(v);
	if (!json_object_object_get_ex(args, "task_id", &ids))
		return error("revoke: task_id missing");
	cnt = json_object_is_type(ids, json_type_array) ?
	    json_object_array_length(ids) : 1;
	for (i = 0; i < cnt; i++) {
		const char *id = json_object_get_string(
		    json_object_is_type(ids, json_type_array) ?
		    json_object_array_get_idx(ids, i) : ids);
		if (id == NULL)
			continue;
		revoke_publish(p->w->broker, id, terminate, sig ? sig :
		    "SIGTERM", now_unix());
		snprintf(list + strlen(list), sizeof(list) - strlen(list),
		    "%s%s", n++ ? ", " : "", id);
		if (terminate) {
			int k;
			char cur[SB_TASKIDLEN];
			for (k = 0; k < (int)p->sb->high; k++)
				if (sb_read_task(&p->sb->slots[k], cur,
				    sizeof(cur), NULL, 0, NULL) &&
				    strcmp(cur, id) == 0)
					found++;
		}
	}
	if (terminate)
		return found ? ok("terminate: %s", list) :
		    ok("terminate: tasks unknown");
	return ok("tasks %s flagged as revoked", list);
}

static void
pool_request(struct pidbox *p, const char *queue, int concurrency)
{
	struct sb_pool_request *r = &p->sb->pool_req;

	snprintf(r->queue, sizeof(r->queue), "%s", queue);
	r->concurrency = concurrency;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	r->seq++;
	(void)!write(p->notify_fd, "p", 1);
}

static int
queue_workers(struct pidbox *p, const char *queue)
{
	int i, n = 0;

	for (i = 0; i < (int)p->sb->high; i++)
		if (p->sb->slots[i].role == SB_ROLE_WORKER &&
		    p->sb->slots[i].configured &&
		    strcmp(p->sb->slots[i].queue, queue) == 0)
			n++;
	return n;
}

static json_object *
do_pool(struct pidbox *p, json_object *args, int dir)
{
	const struct cfg_queue	*q = default_queue(p->w->cfg, args);
	json_object		*v;
	int			 n = 1, cur;

	if (json_object_object_get_ex(args, "n", &v))
		n = json_object_get_int(v);
	if (q == NULL)
		return error("no such queue");
	cur = queue_workers(p, q->name);
	cur += dir * n;
	if (cur < 0)
		cur = 0;
	if (cur > 256)
		cur = 256;
	pool_request(p, q->name, cur);
	return ok(dir > 0 ? "pool will grow" : "pool will shrink");
}

static json_object *
do_consumer(struct pidbox *p, json_object *args, int add)
{
	const char		*name = json_str(args, "queue");
	const struct cfg_queue	*q;

	if (name == NULL || (q = cfg_queue_find(p->w->cfg, name)) == NULL)
		return error("add_consumer: queue not in the configuration");
	if (add) {
		if (queue_workers(p, name) > 0)
			return ok("already consuming from '%s'", name);
		pool_request(p, name, q->concurrency > 0 ? q->concurrency : 1);
		return ok("add consumer %s", name);
	}
	pool_request(p, name, 0);
	return ok("no longer consuming from '%s'", name);
}

static struct sb_task_limit *
limit_slot(struct pidbox *p, const char *task)
{
	int i;

	for (i = 0; i < SB_NLIMITS; i++) {
		struct sb_task_limit *l = &p->sb->limits[i];
		if (l->task[0] == '\0') {
			snprintf(l->task, sizeof(l->task), "%s", task);
			return l;
		}
		if (strcmp(l->task, task) == 0)
			return l;
	}
	return NULL;
}

static json_object *
do_time_limit(struct pidbox *p, json_object *args)
{
	const char		*task = json_str(args, "task_name");
	struct sb_task_limit	*l;
	json_object		*v;

	if (task == NULL)
		return error("time_limit: task_name missing");
	if ((l = limit_slot(p, task)) == NULL)
		return error("time_limit: too many overrides");
	if (json_object_object_get_ex(args, "hard", &v) && v)
		l->hard_ms = (int64_t)(json_object_get_double(v) * 1000);
	if (json_object_object_get_ex(args, "soft", &v) && v)
		l->soft_ms = (int64_t)(json_object_get_double(v) * 1000);
	return ok("time limits set successfully");
}

static json_object *
do_rate_limit(struct pidbox *p, json_object *args)
{
	const char		*task = json_str(args, "task_name");
	const char		*spec = json_str(args, "rate_limit");
	struct sb_task_limit	*l;
	double			 rate = 0;
	char			*end;

	if (task == NULL)
		return error("rate_limit: task_name missing");
	if (spec != NULL && *spec) {
		rate = strtod(spec, &end);
		if (*end == '/' && end[1] == 'm')
			rate /= 60;
		else if (*end == '/' && end[1] == 'h')
			rate /= 3600;
		else if (*end != '\0' && strcmp(end, "/s") != 0)
			return error("rate_limit: expected N, N/s, N/m or N/h");
	}
	if ((l = limit_slot(p, task)) == NULL)
		return error("rate_limit: too many overrides");
	l->rate = rate;
	return ok(rate > 0 ? "new rate limit set successfully" :
	    "rate limit disabled successfully");
}

static json_object *
dispatch(struct pidbox *p, const char *method, json_object *args, int *noreply)
{
	char buf[300];

	if (strcmp(method, "ping") == 0)
		return ok("pong");
	if (strcmp(method, "stats") == 0)
		return do_stats(p);
	if (strcmp(method, "active") == 0)
		return do_active(p);
	if (strcmp(method, "reserved") == 0)
		return json_object_new_array();
	if (strcmp(method, "scheduled") == 0)
		return do_scheduled(p);
	if (strcmp(method, "registered") == 0)
		return do_registered(p);
	if (strcmp(method, "revoked") == 0)
		return do_revoked(p);
	if (strcmp(method, "active_queues") == 0)
		return do_active_queues(p);
	if (strcmp(method, "conf") == 0)
		return do_conf(p);
	if (strcmp(method, "report") == 0)
		return do_report(p);
	if (strcmp(method, "clock") == 0) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "clock",
		    json_object_new_int64(p->ev->clock));
		return o;
	}
	if (strcmp(method, "hello") == 0) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "revoked", json_object_new_object());
		json_object_object_add(o, "clock",
		    json_object_new_int64(p->ev->clock));
		return o;
	}
	if (strcmp(method, "revoke") == 0)
		return do_revoke(p, args, 0);
	if (strcmp(method, "terminate") == 0)
		return do_revoke(p, args, 1);
	if (strcmp(method, "shutdown") == 0) {
		log_notice("remote control: shutdown requested");
		kill(p->sb->master_pid, SIGTERM);
		return ok("shutdown");
	}
	if (strcmp(method, "pool_grow") == 0)
		return do_pool(p, args, 1);
	if (strcmp(method, "pool_shrink") == 0)
		return do_pool(p, args, -1);
	if (strcmp(method, "add_consumer") == 0)
		return do_consumer(p, args, 1);
	if (strcmp(method, "cancel_consumer") == 0)
		return do_consumer(p, args, 0);
	if (strcmp(method, "rate_limit") == 0)
		return do_rate_limit(p, args);
	if (strcmp(method, "time_limit") == 0)
		return do_time_limit(p, args);
	if (strcmp(method, "enable_events") == 0) {
		int was = p->sb->task_events;
		p->sb->task_events = 1;
		return ok(was ? "task events already enabled" :
		    "task events enabled");
	}
	if (strcmp(method, "disable_events") == 0) {
		p->sb->task_events = 0;
		return ok("task events disabled");
	}
	if (strcmp(method, "heartbeat") == 0) {
		json_object *f = json_object_new_object();
		json_object_object_add(f, "freq", json_object_new_int(5));
		json_object_object_add(f, "sw_ident",
		    json_object_new_string(CELERIAC_SW_IDENT));
		json_object_object_add(f, "sw_ver",
		    json_object_new_string(PACKAGE_VERSION));
		json_object_object_add(f, "sw_sys",
		    json_object_new_string("Linux"));
		events_send(p->ev, "worker-heartbeat", f);
		return NULL;
	}
	/* What kombu answers: the repr of the KeyError. */
	snprintf(buf, sizeof(buf), "KeyError('%s')", method);
	(void)noreply;
	return error(buf);
}

/* A node handles a request addressed to it, or to everyone matching. */
static int
addressed_to_us(struct pidbox *p, json_object *body)
{
	json_object	*dest, *pat, *matcher;
	size_t		 i, n;

	if (json_object_object_get_ex(body, "destination", &dest) && dest &&
	    json_object_is_type(dest, json_type_array) &&
	    (n = json_object_array_length(dest)) > 0) {
		for (i = 0; i < n; i++)
			if (strcmp(json_object_get_string(
			    json_object_array_get_idx(dest, i)),
			    p->ev->node) == 0)
				return 1;
		return 0;
	}
	if (json_object_object_get_ex(body, "pattern", &pat) && pat &&
	    json_object_is_type(pat, json_type_string)) {
		json_object_object_get_ex(body, "matcher", &matcher);
		/* glob by default; pcre patterns are treated as globs. */
		return fnmatch(json_object_get_string(pat), p->ev->node, 0) ==
		    0;
	}
	return 1;
}

static void
reply(struct pidbox *p, json_object *reply_to, const char *ticket,
    json_object *payload)
{
	json_object	*body, *env, *h, *rk;
	redisReply	*r;
	const char	*text, *want;
	size_t		 i;

	if (!json_object_object_get_ex(reply_to, "routing_key", &rk))
		return;
	want = json_object_get_string(rk);
	body = json_object_new_object();
	json_object_object_add(body, p->ev->node, payload);
	h = json_object_new_object();
	if (ticket)
		json_object_object_add(h, "ticket",
		    json_object_new_string(ticket));
	json_object_object_add(h, "clock", json_object_new_int64(
	    ++p->ev->clock));
	if ((env = kombu_envelope(body, h, "reply.celery.pidbox", want)) ==
	    NULL)
		return;
	text = json_object_to_json_string_ext(env, JSON_C_TO_STRING_PLAIN);

	r = redis_command(p->w->broker, "SMEMBERS %s", PIDBOX_REPLY_BINDINGS);
	for (i = 0; r && i < r->elements; i++) {
		/* member = routing_key SEP pattern SEP queue */
		const char *m = r->element[i]->str, *s1, *s2;
		redisReply *x;
		if ((s1 = strstr(m, MSG_SEP)) == NULL ||
		    (s2 = strstr(s1 + 2, MSG_SEP)) == NULL)
			continue;
		if ((size_t)(s1 - m) != strlen(want) ||
		    strncmp(m, want, s1 - m) != 0)
			continue;
		x = redis_command(p->w->broker, "LPUSH %s %s", s2 + 2, text);
		if (x)
			freeReplyObject(x);
	}
	if (r)
		freeReplyObject(r);
	json_object_put(env);
}

void
pidbox_handle(struct pidbox *p, const char *payload, size_t len)
{
	json_object	*env, *v, *body = NULL, *args = NULL, *reply_to = NULL;
	json_object	*res;
	unsigned char	*raw;
	size_t		 rawlen;
	const char	*method, *ticket = NULL;
	int		 noreply = 0;

	if ((env = json_tokener_parse(payload)) == NULL)
		return;
	if (!json_object_object_get_ex(env, "body", &v) ||
	    (raw = msg_base64_decode(json_object_get_string(v),
	    json_object_get_string_len(v), &rawlen)) == NULL) {
		json_object_put(env);
		return;
	}
	body = json_tokener_parse((const char *)raw);
	free(raw);
	json_object_put(env);
	if (body == NULL || !json_object_object_get_ex(body, "method", &v) ||
	    !addressed_to_us(p, body)) {
		json_object_put(body);
		return;
	}
	method = json_object_get_string(v);
	json_object_object_get_ex(body, "arguments", &args);
	if (json_object_object_get_ex(body, "ticket", &v) && v)
		ticket = json_object_get_string(v);
	json_object_object_get_ex(body, "reply_to", &reply_to);
	log_debug("remote control: %s", method);
	(void)len;
	res = dispatch(p, method, args, &noreply);
	if (reply_to && json_object_is_type(reply_to, json_type_object))
		reply(p, reply_to, ticket, res);
	else
		json_object_put(res);
	json_object_put(body);
}
