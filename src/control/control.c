/*
 * control.c - the per-host control child (see control.h).
 *
 * It reuses the worker's connection and recovery code with a worker
 * struct of its own: its "slot" is its own processing list, into which
 * it moves one message at a time from a dead host's list, so that a crash
 * of the control child itself loses nothing either.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "broker/eta.h"
#include "broker/redis.h"
#include "broker/revoke.h"
#include "common/celeriac.h"
#include "common/log.h"
#include "common/proctitle.h"
#include "common/util.h"
#include "control/control.h"
#include "control/pidbox.h"
#include "store/store.h"
#include "broker/events.h"
#include "worker/recover.h"
#include "worker/worker.h"

static int wake[2] = { -1, -1 };
static int master_fd = -1;
static struct pidbox pbox;
static struct events ev;

#define EVENT_FREQ_S	2.0

static void
worker_event(const char *type)
{
	json_object	*f = json_object_new_object(), *la;
	double		 l[3];
	int		 active, i;
	uint64_t	 processed;

	pidbox_host_counts(pbox.sb, &active, &processed);
	json_object_object_add(f, "freq", json_object_new_double(EVENT_FREQ_S));
	json_object_object_add(f, "active", json_object_new_int(active));
	json_object_object_add(f, "processed",
	    json_object_new_int64((int64_t)processed));
	la = json_object_new_array();
	if (getloadavg(l, 3) != 3)
		l[0] = l[1] = l[2] = 0;
	for (i = 0; i < 3; i++)
		json_object_array_add(la, json_object_new_double(
		    (double)(int64_t)(l[i] * 100 + 0.5) / 100));
	json_object_object_add(f, "loadavg", la);
	json_object_object_add(f, "sw_ident",
	    json_object_new_string(CELERIAC_SW_IDENT));
	json_object_object_add(f, "sw_ver",
	    json_object_new_string(PACKAGE_VERSION));
	json_object_object_add(f, "sw_sys", json_object_new_string("Linux"));
	events_send(&ev, type, f);
}

/*
 * Pop one message from a dead host's list into ours, only while that
 * host's heartbeat is still absent: two hosts recovering the same list
 * never both take a message.
 */
static const char steal_lua[] =
	"if redis.call('EXISTS', KEYS[1]) == 1 then return false end\n"
	"return redis.call('RPOPLPUSH', KEYS[2], KEYS[3])\n";

static volatile sig_atomic_t reopen;

static void
control_signal(int sig)
{
	int saved = errno;

	if (sig == SIGUSR1)
		reopen = 1;
	else
		worker_stop = 1;
	(void)!write(wake[1], "", 1);
	errno = saved;
}

static const char *
me(const struct config *cfg)
{
	return cfg->hostname ? cfg->hostname : host_name();
}

static void
heartbeat(struct worker *w, struct scoreboard *sb)
{
	char		 key[300], val[256];
	redisReply	*r;

	snprintf(key, sizeof(key), HOST_KEY_PREFIX "%s", me(w->cfg));
	snprintf(val, sizeof(val), "{\"pid\":%d,\"master_pid\":%d,"
	    "\"time\":%.3f}", (int)getpid(), (int)sb->master_pid, now_unix());
	r = redis_command(w->broker, "SET %s %s PX %d", key, val, HOST_TTL_MS);
	if (r)
		freeReplyObject(r);
}

/*
 * The host's scoreboard as JSON under celeriac.status.HOST, for
 * `celeriac status` on any machine that reaches the broker.
 */
static void
publish_status(struct worker *w, struct scoreboard *sb)
{
	json_object	*o, *slots, *e, *tasks;
	char		 key[300], id[SB_TASKIDLEN], name[SB_TASKNAMELEN];
	int64_t		 since, now = mono_ms();
	redisReply	*r;
	int		 i, k;

	o = json_object_new_object();
	json_object_object_add(o, "host", json_object_new_string(me(w->cfg)));
	json_object_object_add(o, "master_pid",
	    json_object_new_int(sb->master_pid));
	json_object_object_add(o, "uptime", json_object_new_double(
	    (now - sb->started_ms) / 1000.0));
	json_object_object_add(o, "time", json_object_new_double(now_unix()));
	slots = json_object_new_array();
	for (i = 0; i < (int)sb->high; i++) {
		struct sb_slot *s = &sb->slots[i];
		uint64_t failed = 0;
		if (!s->configured || s->role != SB_ROLE_WORKER)
			continue;
		e = json_object_new_object();
		json_object_object_add(e, "queue", json_object_new_string(
		    s->queue));
		json_object_object_add(e, "index", json_object_new_int(
		    s->index));
		json_object_object_add(e, "pid", json_object_new_int(s->pid));
		json_object_object_add(e, "state", json_object_new_string(
		    s->parked ? "parked" : sb_state_name(s->state)));
		if (sb_read_task(s, id, sizeof(id), name, sizeof(name),
		    &since)) {
			json_object_object_add(e, "task_id",
			    json_object_new_string(id));
			json_object_object_add(e, "task",
			    json_object_new_string(name));
			json_object_object_add(e, "busy_seconds",
			    json_object_new_double(since > 0 ?
			    (now - since) / 1000.0 : 0));
		}
		tasks = json_object_new_object();
		for (k = 0; k < SB_NSTATS && s->stats[k].name[0]; k++) {
			failed += s->stats[k].count[SB_FAILED];
			json_object_object_add(tasks, s->stats[k].name,
			    json_object_new_int64((int64_t)
			    (s->stats[k].count[SB_SUCCEEDED] +
			    s->stats[k].count[SB_FAILED])));
		}
		json_object_object_add(e, "processed",
		    json_object_new_int64((int64_t)s->processed));
		json_object_object_add(e, "failed",
		    json_object_new_int64((int64_t)failed));
		json_object_object_add(e, "restarts",
		    json_object_new_int64((int64_t)s->restarts));
		json_object_object_add(e, "last_exit",
		    json_object_new_int(s->last_status));
		json_object_object_add(e, "last_kill",
		    json_object_new_int(s->last_kill));
		json_object_object_add(e, "tasks", tasks);
		json_object_array_add(slots, e);
	}
	json_object_object_add(o, "workers", slots);
	snprintf(key, sizeof(key), "celeriac.status.%s", me(w->cfg));
	r = redis_command(w->broker, "SET %s %s PX %d", key,
	    json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
	    HOST_TTL_MS);
	if (r)
		freeReplyObject(r);
	json_object_put(o);
}

static void
recover_list(struct worker *w, const char *list, const char *host)
{
	char		 hb[300];
	redisReply	*r;
	int		 n = 0;

	snprintf(hb, sizeof(hb), HOST_KEY_PREFIX "%s", host);
	for (;;) {
		r = redis_command(w->broker, "EVAL %s 3 %s %s %s", steal_lua,
		    hb, list, w->processing);
		if (r == NULL)
			return;
		if (r->type != REDIS_REPLY_STRING) {
			freeReplyObject(r);
			break;
		}
		log_notice("host %s is gone (no heartbeat); recovering a "
		    "message from %s", host, list);
		recover_message(w, r->str, r->len);
		freeReplyObject(r);
		n++;
	}
	/* Forget the list once it is empty and its host still dead. */
	r = redis_command(w->broker, "EVAL %s 3 %s %s %s",
	    "if redis.call('EXISTS', KEYS[1]) == 0 and "
	    "redis.call('LLEN', KEYS[2]) == 0 then "
	    "return redis.call('HDEL', KEYS[3], KEYS[2]) end return 0",
	    hb, list, PROCESSING_INDEX);
	if (r)
		freeReplyObject(r);
	(void)n;
}

/* Is list the processing list of a slot in the running configuration? */
static int
list_is_live(struct worker *w, struct scoreboard *sb, const char *list)
{
	char	name[512];
	int	i;

	if (strcmp(list, w->processing) == 0)
		return 1;
	for (i = 0; i < (int)sb->high; i++) {
		struct sb_slot *s = &sb->slots[i];
		if (s->role != SB_ROLE_WORKER || (!s->configured && s->pid <= 0))
			continue;
		/* A parked slot has no owner to recover its message. */
		if (s->parked && s->pid <= 0)
			continue;
		snprintf(name, sizeof(name), "celeriac.processing.%s.%s.%d",
		    me(w->cfg), s->queue, s->index);
		if (strcmp(name, list) == 0)
			return 1;
	}
	return 0;
}

/*
 * A list of our own host that no slot owns any more (a reload removed
 * the queue or lowered its concurrency while a task was killed in it):
 * nobody else would look at it, so we do.
 */
static void
recover_orphans(struct worker *w, struct scoreboard *sb, const char *list)
{
	redisReply	*r;

	if (list_is_live(w, sb, list))
		return;
	for (;;) {
		r = redis_command(w->broker, "RPOPLPUSH %s %s", list,
		    w->processing);
		if (r == NULL || r->type != REDIS_REPLY_STRING) {
			if (r)
				freeReplyObject(r);
			break;
		}
		log_notice("recovering a message from %s, whose slot is gone",
		    list);
		recover_message(w, r->str, r->len);
		freeReplyObject(r);
	}
	r = redis_command(w->broker, "HDEL %s %s", PROCESSING_INDEX, list);
	if (r)
		freeReplyObject(r);
}

static void
recover_dead_hosts(struct worker *w, struct scoreboard *sb)
{
	redisReply	*r, *e;
	size_t		 i;
	char		 key[300];

	r = redis_command(w->broker, "HGETALL %s", PROCESSING_INDEX);
	if (r == NULL)
		return;
	for (i = 0; i + 1 < r->elements; i += 2) {
		const char *list = r->element[i]->str;
		const char *host = r->element[i + 1]->str;
		if (strcmp(host, me(w->cfg)) == 0) {
			recover_orphans(w, sb, list);
			continue;
		}
		snprintf(key, sizeof(key), HOST_KEY_PREFIX "%s", host);
		e = redis_command(w->broker, "EXISTS %s", key);
		if (e && e->integer == 0)
			recover_list(w, list, host);
		if (e)
			freeReplyObject(e);
	}
	freeReplyObject(r);
}

/* revoke --terminate: find the slot running the task, ask the master. */
static void
on_control(void *arg, const char *channel, const char *payload, size_t len)
{
	struct scoreboard	*sb = arg;
	if (strcmp(channel, pbox.channel) == 0) {
		pidbox_handle(&pbox, payload, len);
		return;
	}
	char			 id[128], cur[SB_TASKIDLEN];
	int			 terminate, signo, i;

	if (!revoke_parse(payload, id, sizeof(id), &terminate, &signo) ||
	    !terminate)
		return;
	for (i = 0; i < (int)sb->high; i++) {
		struct sb_slot *s = &sb->slots[i];
		if (s->pid <= 0 || s->role != SB_ROLE_WORKER ||
		    !sb_read_task(s, cur, sizeof(cur), NULL, 0, NULL) ||
		    strcmp(cur, id) != 0)
			continue;
		snprintf(s->kill_task_id, sizeof(s->kill_task_id), "%.39s", id);
		__atomic_thread_fence(__ATOMIC_RELEASE);
		s->kill_request = signo > 0 ? signo : SIGTERM;
		log_notice("terminating task %s (worker pid %d, signal %d)",
		    id, (int)s->pid, s->kill_request);
		(void)!write(master_fd, "k", 1);
	}
}

void
control_main(const struct control_args *a)
{
	struct worker		 w;
	struct sb_slot		*slot = &a->sb->slots[a->slot];
	int64_t			 next_hb = 0, next_rec = 0, now, next_ev;
	double			 next_eta = 0, nx;
	char			 err[256], buf[64];
	redisReply		*r;
	int			 wait_ms;

	memset(&w, 0, sizeof(w));
	w.cfg = a->cfg;
	w.queue = NULL;
	w.slot = slot;
	w.notify_fd = a->notify_fd;
	master_fd = a->notify_fd;
	w.result_ttl_s = a->cfg->result_expires_ms / 1000;
	snprintf(w.name, sizeof(w.name), "control");
	snprintf(w.processing, sizeof(w.processing),
	    "celeriac.processing.%s.control.0", me(a->cfg));
	log_set_ident("control");
	proctitle_set("celeriacd: control");

	if (pipe2(wake, O_CLOEXEC | O_NONBLOCK) == -1)
		exit(EXIT_CRASH);
	child_signals(control_signal);

	if (redis_url_parse(a->cfg->broker, &w.broker_url, err,
	    sizeof(err)) == -1 ||
	    redis_url_parse(a->cfg->result_backend ? a->cfg->result_backend :
	    a->cfg->broker, &w.backend_url, err, sizeof(err)) == -1) {
		log_errx("%s", err);
		exit(EXIT_NORESPAWN);
	}
	/* The fetcher only carries the control-channel subscription here. */
	if (fetch_init(&w.fetch, NULL, &w.broker_url, "celeriac.control.none",
	    w.processing) == -1)
		exit(EXIT_CRASH);
	w.fetch.extra_channels[w.fetch.nextra++] = CONTROL_CHANNEL;
	w.fetch.on_message = on_control;
	w.fetch.cb_arg = a->sb;
	w.fetch.notify = -1;	/* no queue to watch */
	/* Tasks it recovers get their transitions recorded too. */
	w.store = store_open(a->cfg, "control");
	pidbox_init(&pbox, &w, a->sb, &ev, a->notify_fd);
	w.fetch.extra_channels[w.fetch.nextra++] = pbox.channel;
	if (worker_connect(&w) == -1)
		exit(EXIT_CLEAN);
	events_init(&ev, a->cfg, a->sb->master_pid);
	pidbox_declare(&pbox);
	r = redis_command(w.broker, "HSET %s %s %s", PROCESSING_INDEX,
	    w.processing, me(a->cfg));
	if (r)
		freeReplyObject(r);
	recover_slot(&w);
	fetch_subscribe(&w.fetch);
	slot->state = SB_IDLE;
	worker_notify(&w);
	worker_event("worker-online");
	next_ev = mono_ms() + (int64_t)(EVENT_FREQ_S * 1000);

	while (!worker_stop) {
		if (reopen) {
			reopen = 0;
			log_reopen();
		}
		if (getppid() == 1)
			break;
		if (w.broker == NULL && worker_connect(&w) == -1)
			break;
		now = mono_ms();
		if (now >= next_ev) {
			worker_event("worker-heartbeat");
			next_ev = now + (int64_t)(EVENT_FREQ_S * 1000);
		}
		events_drain(&ev);
		store_flush(w.store, 0);
		if (now >= next_hb) {
			heartbeat(&w, a->sb);
			publish_status(&w, a->sb);
			next_hb = now + HEARTBEAT_EVERY_MS;
		}
		if (now >= next_rec) {
			recover_dead_hosts(&w, a->sb);
			next_rec = now + RECOVERY_EVERY_MS;
		}
		/* Delayed messages move even when every worker is busy. */
		if (now_unix() >= next_eta) {
			if (eta_move_due(w.broker, now_unix(), &nx) >= 0)
				next_eta = nx > 0 && nx < now_unix() + 1.0 ? nx :
				    now_unix() + 1.0;
		}
		if (w.broker && w.broker->err)
			worker_connect(&w);
		wait_ms = (int)((next_eta - now_unix()) * 1000) + 1;
		if (next_ev - mono_ms() < wait_ms)
			wait_ms = (int)(next_ev - mono_ms());
		fetch_wait(&w.fetch, wait_ms < 0 ? 0 : wait_ms > 250 ? 250 :
		    wait_ms, wake[0]);
		while (read(wake[0], buf, sizeof(buf)) > 0)
			;
	}
	slot->state = SB_STOPPING;
	worker_event("worker-offline");
	pidbox_leave(&pbox);
	events_close(&ev);
	store_close(w.store);
	fetch_free(&w.fetch);
	if (w.backend && w.backend != w.broker)
		redisFree(w.backend);
	if (w.broker)
		redisFree(w.broker);
	exit(EXIT_CLEAN);
}
